# cython: language_level=3
"""Build VMSAv8-64 stage-1 and stage-2 translation tables in modeled memory.

Mappings use real descriptors and the block-or-table choice Linux io-pgtable-arm makes: a block
wherever the level supports blocks and the range's size and alignment allow it, tables
otherwise; a partial unmap of a block splits it into a next-level table first. Stage 2 folds a
small level-0 table into concatenated level-1 tables (at most 16), as io-pgtable-arm does.
Tables may live in a guest's IPA space: `windows` maps IPA ranges to the PA that backs them.
"""
from libc.stdint cimport uint64_t, int64_t, uint8_t
from core_cy.physmem cimport PhysMem, mc_read64, MemCore
from core_cy.physmem import MemFault
from core_cy.vmsa cimport AddressSpace, AddrSpace, AS_PHYS, as_read64, block_min_level

from core_cy._fields cimport (S1_BLOCK_AF_SHIFT, S1_BLOCK_AP_SHIFT, S1_BLOCK_SH_SHIFT,
                              S1_BLOCK_nG_SHIFT, S1_BLOCK_PXN_SHIFT, S1_BLOCK_UXN_SHIFT,
                              S1_BLOCK_AttrIndx_SHIFT, S2_BLOCK_AF_SHIFT, S2_BLOCK_S2AP_SHIFT,
                              S2_BLOCK_SH_SHIFT, S2_BLOCK_MemAttr_SHIFT, S2_BLOCK_XN_SHIFT)
from core_cy._smmuv3 cimport *

# Stage-1 and stage-2 descriptors share Valid/Type, the output address [47:12] and the
# attribute bits (the tables say so: S2_* masks equal the S1_* ones), so one set serves both.
cdef uint64_t OA_MASK = S1_BLOCK_OA_MASK
cdef uint64_t ATTR_MASK = S1_BLOCK_ATTR_MASK          # upper [63:48] and lower [11:2]
cdef uint64_t TYPE_MASK = S1_BLOCK_DESC_TYPE_MASK
cdef uint64_t VALID = S1_BLOCK_Valid_MASK
cdef uint64_t MEMATTR_MAX = S2_BLOCK_MemAttr_MASK >> S2_BLOCK_MemAttr_SHIFT
cdef uint64_t ATTRINDX_MAX = S1_BLOCK_AttrIndx_MASK >> S1_BLOCK_AttrIndx_SHIFT
assert S2_BLOCK_OA_MASK == OA_MASK and S2_BLOCK_ATTR_MASK == ATTR_MASK


cdef inline bint is_table(uint64_t d, int level) noexcept nogil:
    return (d & TYPE_MASK) == S1_TABLE_DESC_table and level < 3


cdef inline uint64_t leaf_type(int level) noexcept nogil:
    return S1_BLOCK_DESC_page if level == 3 else S1_BLOCK_DESC_block


class BuildError(ValueError):
    """A mapping request the tables cannot express (alignment, range, overlap)."""


class BumpAllocator:
    """Hands out zeroed, naturally aligned table memory from [base, base+size)."""

    def __init__(self, base, size):
        self.base = base
        self.next = base
        self.end = base + size

    def alloc(self, size):
        addr = (self.next + size - 1) & ~(size - 1)
        if addr + size > self.end:
            raise BuildError(f"table memory exhausted at {addr:#x} (pool {self.base:#x}.."
                             f"{self.end:#x})")
        self.next = addr + size
        return addr

    def alloc_many(self, size, n):
        """n naturally aligned blocks of size (a power of two) back to back: the first's
        address (the k-th is at first + k * size)."""
        first = self.alloc(size)
        if n > 1:
            if first + n * size > self.end:
                raise BuildError(f"table memory exhausted at {first:#x} (pool {self.base:#x}.."
                                 f"{self.end:#x}: {n} blocks of {size:#x})")
            self.next = first + n * size
        return first

    @property
    def used(self):
        return self.next - self.base


cdef class TableBuilder:
    """map()/unmap() into one translation table tree.

    stage: 1 or 2. granule: 4096, 16384 or 65536. ias: input address bits (64 - TnSZ).
    alloc: an object with alloc(size) -> address (in the table address space). windows:
    [(ipa, size, pa)] when tables live in a guest's IPA space; PA space if None.
    """
    cdef PhysMem mem
    cdef readonly int stage, g, stride, ias, start, root_bits
    cdef readonly uint64_t root
    cdef readonly object alloc
    cdef readonly list windows

    def __init__(self, PhysMem mem, int stage, int granule, int ias, alloc, windows=None,
                 root=None, bint concat=True):
        if stage not in (1, 2):
            raise BuildError(f"stage must be 1 or 2, not {stage}")
        if granule not in (4096, 16384, 65536):
            raise BuildError(f"granule must be 4K, 16K or 64K, not {granule:#x}")
        self.mem = mem
        self.stage = stage
        self.g = granule.bit_length() - 1
        self.stride = self.g - 3
        if ias < 25 or ias > 48:
            raise BuildError(f"input size {ias} bits is outside 25..48")
        self.ias = ias
        levels = (ias - self.g + self.stride - 1) // self.stride
        self.start = 4 - levels
        self.root_bits = ias - self._shift(self.start)
        if stage == 2 and concat and self.start == 0 and (1 << self.root_bits) <= 16:
            self.start = 1
            self.root_bits += self.stride
        self.alloc = alloc
        self.windows = list(windows or [])
        root_size = max(8 << self.root_bits, 64)
        if root is None:
            self.root = alloc.alloc(root_size)
        else:
            if root & (root_size - 1):
                raise BuildError(f"root table {root:#x} is not aligned to {root_size:#x}")
            self.root = root
        # Fresh tables must read as zero (invalid): clear the root.
        self._write_zero(self.root, root_size)

    cdef int _shift(self, int level):
        return self.g + (3 - level) * self.stride

    # Stage-2 STE encodings and stage-1 CD encodings of this geometry.
    @property
    def tsz(self):
        return 64 - self.ias

    @property
    def sl0(self):
        return (2 - self.start) if self.g == 12 else (3 - self.start)

    @property
    def tg(self):
        """TG0 / S2TG encoding (0 4K, 1 64K, 2 16K)."""
        return {12: 0, 16: 1, 14: 2}[self.g]

    @property
    def tg1(self):
        return {12: 2, 14: 1, 16: 3}[self.g]

    @property
    def concatenated(self):
        return 1 << max(0, self.root_bits - self.stride)

    cdef uint64_t _pa(self, uint64_t addr) except? 0xFFFFFFFFFFFFFFFF:
        if not self.windows:
            return addr
        for ipa, size, pa in self.windows:
            if ipa <= addr < ipa + size:
                return pa + (addr - ipa)
        raise BuildError(f"table address {addr:#x} is outside the guest's memory")

    cdef uint64_t _rd(self, uint64_t addr) except? 0xFFFFFFFFFFFFFFFF:
        cdef uint64_t v
        if mc_read64(&self.mem.core, self._pa(addr), &v) != 0:
            raise BuildError(f"no memory behind table address {addr:#x}")
        return v

    cdef int _wr(self, uint64_t addr, uint64_t v) except -1:
        if self.mem.write64(self._pa(addr), v) != 0:
            raise BuildError(f"no RAM behind table address {addr:#x}")
        return 0

    cdef _write_zero(self, uint64_t addr, uint64_t size):
        cdef uint64_t off
        for off in range(0, size, 8):
            self._wr(addr + off, 0)

    cdef uint64_t _new_table(self) except? 0xFFFFFFFFFFFFFFFF:
        cdef uint64_t t = self.alloc.alloc(1 << self.g)
        self._write_zero(t, 1 << self.g)
        return t

    cdef bint _block_ok(self, int level):
        return level == 3 or level >= (1 if self.g == 12 else 2)

    def leaf_attrs(self, bint read=True, bint write=True, bint exec_=False, bint user=True,
                   bint af=True, bint ng=True, int attrindx=0, int memattr=0xF):
        """Attribute bits of a leaf descriptor (no address, no type bits)."""
        cdef uint64_t a = 0
        if self.stage == 1:
            # AP[2]: read-only; AP[1]: EL0 may access. Stage 1 cannot express no-read.
            if write:
                a |= <uint64_t>(S1_BLOCK_AP_RW_any if user else S1_BLOCK_AP_RW_EL1) << S1_BLOCK_AP_SHIFT
            else:
                a |= <uint64_t>(S1_BLOCK_AP_RO_any if user else S1_BLOCK_AP_RO_EL1) << S1_BLOCK_AP_SHIFT
            a |= <uint64_t>S1_BLOCK_SH_ISH << S1_BLOCK_SH_SHIFT
            a |= (<uint64_t>attrindx & ATTRINDX_MAX) << S1_BLOCK_AttrIndx_SHIFT
            if ng:
                a |= <uint64_t>1 << S1_BLOCK_nG_SHIFT
            if not exec_:
                a |= (<uint64_t>1 << S1_BLOCK_PXN_SHIFT) | (<uint64_t>1 << S1_BLOCK_UXN_SHIFT)
            if af:
                a |= <uint64_t>1 << S1_BLOCK_AF_SHIFT
        else:
            a |= <uint64_t>((S2_BLOCK_S2AP_RO if read else 0) | (S2_BLOCK_S2AP_WO if write else 0)) \
                << S2_BLOCK_S2AP_SHIFT
            a |= <uint64_t>S2_BLOCK_SH_ISH << S2_BLOCK_SH_SHIFT
            a |= (<uint64_t>memattr & MEMATTR_MAX) << S2_BLOCK_MemAttr_SHIFT
            if not exec_:
                a |= <uint64_t>S2_BLOCK_XN_no_exec << S2_BLOCK_XN_SHIFT
            if af:
                a |= <uint64_t>1 << S2_BLOCK_AF_SHIFT
        return a

    def map(self, uint64_t va, uint64_t pa, uint64_t size, *, bint read=True, bint write=True,
            bint exec_=False, bint user=True, bint af=True, bint ng=True, int attrindx=0,
            int memattr=0xF, bint blocks=True):
        """Map [va, va+size) to pa. Returns the number of leaf descriptors written."""
        cdef uint64_t gmask = (<uint64_t>1 << self.g) - 1
        cdef uint64_t attrs, end
        if (va | pa | size) & gmask:
            raise BuildError(f"map {va:#x} -> {pa:#x} size {size:#x}: not aligned to the "
                             f"{1 << self.g:#x} granule")
        if size == 0:
            return 0
        end = va + size
        if end > (<uint64_t>1 << self.ias) or end < va:
            raise BuildError(f"map {va:#x}+{size:#x} exceeds the {self.ias}-bit input range")
        if (pa + size - 1) & ~(OA_MASK | gmask):
            raise BuildError(f"output {pa:#x}+{size:#x} exceeds 48 bits")
        attrs = self.leaf_attrs(read, write, exec_, user, af, ng, attrindx, memattr)
        return self._map_run(va, pa, size, attrs, blocks)

    cdef uint64_t _map_run(self, uint64_t va, uint64_t pa, uint64_t size, uint64_t attrs,
                           bint blocks) except? 0xFFFFFFFFFFFFFFFF:
        """Map [va, va+size) to pa (checked by the caller): the leaves written."""
        cdef uint64_t end = va + size, n = 0, chunk
        while va < end:
            chunk = self._map_one(va, pa, end - va, attrs, blocks)
            va += chunk
            pa += chunk
            n += 1
        return n

    def map_range(self, uint64_t va, uint64_t pa, uint64_t size, uint64_t count,
                  uint64_t stride, uint64_t out_stride, *, bint read=True, bint write=True,
                  bint exec_=False, bint user=True, bint af=True, bint ng=True,
                  int attrindx=0, int memattr=0xF, bint blocks=True):
        """count mappings of size: the k-th maps [va + k*stride, +size) to pa + k*out_stride
        (stride and out_stride at least size, so they do not overlap). One loop in C: the way
        to map a million scattered pages. Returns the number of leaf descriptors written."""
        cdef uint64_t gmask = (<uint64_t>1 << self.g) - 1
        cdef uint64_t attrs, k, n = 0, last
        if count == 0 or size == 0:
            return 0
        if (va | pa | size | stride | out_stride) & gmask:
            raise BuildError(f"map {va:#x} -> {pa:#x} size {size:#x} stride {stride:#x}/"
                             f"{out_stride:#x}: not aligned to the {1 << self.g:#x} granule")
        if count > 1 and (stride < size or out_stride < size):
            raise BuildError(f"map {va:#x}: stride {stride:#x} / {out_stride:#x} is smaller "
                             f"than the size {size:#x} (the mappings would overlap)")
        # The last mapping's end, checked without wrapping.
        if (count - 1) > (~<uint64_t>0 - va - size) // (stride if stride else 1):
            raise BuildError(f"map {va:#x}: {count} mappings exceed the {self.ias}-bit input range")
        last = va + (count - 1) * stride + size
        if last > (<uint64_t>1 << self.ias) or last < va:
            raise BuildError(f"map {va:#x}: {count} mappings exceed the {self.ias}-bit input "
                             f"range")
        if (count - 1) > (OA_MASK - pa) // (out_stride if out_stride else 1) or \
                (pa + (count - 1) * out_stride + size - 1) & ~(OA_MASK | gmask):
            raise BuildError(f"output {pa:#x}: {count} mappings exceed 48 bits")
        attrs = self.leaf_attrs(read, write, exec_, user, af, ng, attrindx, memattr)
        for k in range(count):
            n += self._map_run(va + k * stride, pa + k * out_stride, size, attrs, blocks)
        return n

    cdef uint64_t _map_one(self, uint64_t va, uint64_t pa, uint64_t remaining, uint64_t attrs,
                           bint blocks) except 0:
        cdef int level = self.start, sh, bits = self.root_bits
        cdef uint64_t table = self.root, idx, daddr, d, bsize
        while True:
            sh = self._shift(level)
            bsize = <uint64_t>1 << sh
            idx = (va >> sh) & ((<uint64_t>1 << bits) - 1)
            daddr = table + idx * 8
            d = self._rd(daddr)
            if (level == 3 or (blocks and self._block_ok(level))) and \
                    remaining >= bsize and ((va | pa) & (bsize - 1)) == 0:
                if is_table(d, level):
                    raise BuildError(f"{va:#x}: a table is already mapped here at level {level}")
                if d & VALID:
                    raise BuildError(f"{va:#x} is already mapped (level {level})")
                self._wr(daddr, (pa & OA_MASK) | attrs | leaf_type(level))
                return bsize
            if d & VALID == 0:
                nt = self._new_table()
                self._wr(daddr, (nt & OA_MASK) | S1_TABLE_DESC_table)
                table = nt
            elif (d & TYPE_MASK) == S1_BLOCK_DESC_block:
                raise BuildError(f"{va:#x} is already mapped by a level-{level} block")
            else:
                table = d & OA_MASK & ~((<uint64_t>1 << self.g) - 1)
            level += 1
            bits = self.stride

    def unmap(self, uint64_t va, uint64_t size):
        """Invalidate leaves covering [va, va+size), splitting blocks that straddle the edges.
        Returns the number of bytes that were mapped."""
        cdef uint64_t gmask = (<uint64_t>1 << self.g) - 1, end = va + size, done = 0, step
        if (va | size) & gmask:
            raise BuildError(f"unmap {va:#x} size {size:#x}: not aligned to the granule")
        while va < end:
            step = self._unmap_one(va, end - va)
            if step & (<uint64_t>1 << 63):
                va += step & ~(<uint64_t>1 << 63)      # hole: nothing was mapped there
            else:
                done += step
                va += step
        return done

    cdef uint64_t _unmap_one(self, uint64_t va, uint64_t remaining) except? 0:
        cdef int level = self.start, sh, bits = self.root_bits
        cdef uint64_t table = self.root, idx, daddr, d, bsize, hole = <uint64_t>1 << 63
        while True:
            sh = self._shift(level)
            bsize = <uint64_t>1 << sh
            idx = (va >> sh) & ((<uint64_t>1 << bits) - 1)
            daddr = table + idx * 8
            d = self._rd(daddr)
            if d & VALID == 0:
                return hole | min(bsize - (va & (bsize - 1)), remaining)
            if is_table(d, level):
                table = d & OA_MASK & ~((<uint64_t>1 << self.g) - 1)
                level += 1
                bits = self.stride
                continue
            if (va & (bsize - 1)) == 0 and remaining >= bsize:
                self._wr(daddr, 0)
                return bsize
            # Partial unmap of a block: replace it by a table of next-level leaves.
            self._split(daddr, d, level)

    cdef _split(self, uint64_t daddr, uint64_t d, int level):
        cdef uint64_t nt = self._new_table(), i, child = <uint64_t>1 << self._shift(level + 1)
        cdef uint64_t base = d & OA_MASK & ~((<uint64_t>1 << self._shift(level)) - 1)
        cdef uint64_t attrs = d & ATTR_MASK
        cdef uint64_t typ = leaf_type(level + 1)
        for i in range(<uint64_t>1 << self.stride):
            self._wr(nt + i * 8, (base + i * child) | attrs | typ)
        self._wr(daddr, (nt & OA_MASK) | S1_TABLE_DESC_table)

    def lookup(self, uint64_t va):
        """(level, descriptor address, descriptor) of the entry that maps va, or None."""
        cdef int level = self.start, sh, bits = self.root_bits
        cdef uint64_t table = self.root, idx, daddr, d
        while True:
            sh = self._shift(level)
            idx = (va >> sh) & ((<uint64_t>1 << bits) - 1)
            daddr = table + idx * 8
            d = self._rd(daddr)
            if d & VALID == 0:
                return None
            if is_table(d, level):
                table = d & OA_MASK & ~((<uint64_t>1 << self.g) - 1)
                level += 1
                bits = self.stride
                continue
            return level, daddr, d


def scan_table(mem, uint64_t pa, int nentries, int level, int granule_shift):
    """One table's entries for a page-table dump, scanned in C: a list of
    (kind, first index, count, first descriptor) with kind 'table', 'block' or 'page'. Runs of
    leaves whose outputs are contiguous and whose attributes are equal are merged; invalid and
    reserved entries are left out. mem: a PhysMem (pa is a PA) or an AddressSpace (pa is an
    address in it, e.g. the IPA of a nested stage-1 table). Raises MemFault if the table is
    not there."""
    cdef uint64_t d, prev_out = 0, prev_attrs = 0, out, attrs, size
    cdef int i, sh = granule_shift + (3 - level) * (granule_shift - 3)
    cdef bint in_run = False
    cdef list out_rows = []
    cdef list run = None
    cdef AddrSpace phys
    cdef AddrSpace* space
    cdef PhysMem pm
    if isinstance(mem, AddressSpace):
        space = &(<AddressSpace>mem).a
    else:
        pm = mem
        phys.kind = AS_PHYS
        phys.mem = &pm.core
        phys.physmem = NULL
        space = &phys
    if pa & 7 or nentries <= 0:
        raise ValueError(f"table at {pa:#x} with {nentries} entries is misaligned")
    size = <uint64_t>1 << sh
    for i in range(nentries):
        if as_read64(space, pa + 8 * <uint64_t>i, &d) != 0:
            if space.kind == AS_PHYS:
                raise MemFault(f"no memory at PA {pa + 8 * <uint64_t>i:#x}")
            raise MemFault(f"nothing at IPA {pa + 8 * <uint64_t>i:#x}")
        if not d & VALID:
            in_run = False
            continue
        if is_table(d, level):
            in_run = False
            out_rows.append(("table", i, 1, d))
            continue
        if (d & TYPE_MASK) == S1_BLOCK_DESC_block and (level == 3 or
                                                       level < block_min_level(granule_shift)):
            in_run = False                 # reserved: not a block level (as the walk reads it)
            continue
        out = d & OA_MASK & ~(size - 1)
        attrs = d & ATTR_MASK
        if in_run and attrs == prev_attrs and out == prev_out + size:
            run[2] += 1
        else:
            run = ["page" if level == 3 else "block", i, 1, d]
            out_rows.append(run)
            in_run = True
        prev_out = out
        prev_attrs = attrs
    return [tuple(r) for r in out_rows]
