# cython: language_level=3
"""Sparse modeled physical memory.

Pages that have been written live in an open-addressing hash table keyed by page number. Reads
of a page nobody wrote fall back to the declared regions: RAM reads as zero, an imported dump
reads from its (mmap'd) image, and an address outside every region is unbacked, so a walk into
it becomes an external abort (F_WALK_EABT, F_STE_FETCH, F_CD_FETCH) instead of reading zero.
"""
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memset
from libc.stdint cimport uint64_t, uint8_t

cdef enum:
    SLAB_PAGES = 256         # pages are carved from 1 MiB slabs (calloc: lazily zeroed by the OS)

cdef uint8_t _ZERO[4096]
memset(_ZERO, 0, 4096)


class MemFault(Exception):
    """An access to physical memory that nothing backs."""


cdef const uint8_t* mc_region_page(MemCore* m, uint64_t pfn) noexcept nogil:
    cdef uint64_t pa = pfn << PAGE_SHIFT
    cdef int i
    for i in range(m.nregions):
        if pa - m.regions[i].base < m.regions[i].size:
            if m.regions[i].data == NULL:
                return m.zero_page
            return m.regions[i].data + (pa - m.regions[i].base)
    return NULL


cdef class PhysMem:
    """A sparse 64-bit physical address space of 4 KiB pages (little-endian).

    ram(base, size) declares zero-filled RAM; image(base, buffer) maps a read-only image (a
    dump) that is copied page by page on first write. With strict=False (the default for
    tests and scenario building) a write anywhere creates RAM there.
    """

    def __cinit__(self, bint strict=False, uint64_t capacity=1 << 12):
        cdef uint64_t cap = 16
        while cap < capacity * 2:
            cap <<= 1
        self.core.slots = <PageSlot*>calloc(cap, sizeof(PageSlot))
        if self.core.slots == NULL:
            raise MemoryError()
        self.core.mask = cap - 1
        self.core.count = 0
        self.core.last_pfn = <uint64_t>-1
        self.core.last_page = NULL
        self.core.regions = NULL
        self.core.nregions = 0
        self.core.zero_page = _ZERO
        self.slabs = NULL
        self.nslabs = 0
        self.slab_cap = 0
        self.slab_free = 0
        self._buffers = []
        self.strict = strict

    def __dealloc__(self):
        cdef size_t i
        for i in range(self.nslabs):
            free(self.slabs[i])
        free(self.slabs)
        free(self.core.slots)
        free(self.core.regions)

    # -- regions ------------------------------------------------------------------------------
    cdef _add_region(self, uint64_t base, uint64_t size, const uint8_t* data):
        if base & (PAGE_SIZE - 1) or size & (PAGE_SIZE - 1) or size == 0:
            raise ValueError(f"region {base:#x}+{size:#x} is not page aligned")
        if base + size < base:
            raise ValueError(f"region {base:#x}+{size:#x} wraps the address space")
        for r in self.regions():
            if base < r[0] + r[1] and r[0] < base + size:
                raise ValueError(f"region {base:#x}+{size:#x} overlaps {r[0]:#x}+{r[1]:#x}")
        cdef Region* nr = <Region*>realloc(self.core.regions,
                                           (self.core.nregions + 1) * sizeof(Region))
        if nr == NULL:
            raise MemoryError()
        self.core.regions = nr
        nr[self.core.nregions].base = base
        nr[self.core.nregions].size = size
        nr[self.core.nregions].data = data
        self.core.nregions += 1

    def ram(self, uint64_t base, uint64_t size):
        """Declare zero-filled RAM at [base, base+size)."""
        self._add_region(base, size, NULL)

    def image(self, uint64_t base, buffer):
        """Map a read-only image (bytes, mmap, memoryview) at base; writes copy the page."""
        cdef const uint8_t[::1] view = memoryview(buffer).cast("B")
        cdef uint64_t size = view.shape[0]
        if size == 0:
            raise ValueError("empty image")
        self._add_region(base, (size + PAGE_SIZE - 1) & ~<uint64_t>(PAGE_SIZE - 1),
                         &view[0])
        self._buffers.append(view)
        if size & (PAGE_SIZE - 1):
            # The image's last partial page must read zero past its end: copy it now.
            tail = bytes(view[size & ~<uint64_t>(PAGE_SIZE - 1):])
            self.write(base + (size & ~<uint64_t>(PAGE_SIZE - 1)), tail + bytes(PAGE_SIZE - len(tail)))

    def regions(self):
        """[(base, size, kind)] with kind 'ram' or 'image'."""
        return [(self.core.regions[i].base, self.core.regions[i].size,
                 "ram" if self.core.regions[i].data == NULL else "image")
                for i in range(self.core.nregions)]

    # -- pages --------------------------------------------------------------------------------
    cdef int _grow(self) noexcept nogil:
        cdef uint64_t newcap = (self.core.mask + 1) * 2
        cdef PageSlot* old = self.core.slots
        cdef uint64_t oldcap = self.core.mask + 1
        cdef PageSlot* ns = <PageSlot*>calloc(newcap, sizeof(PageSlot))
        cdef uint64_t i, j
        if ns == NULL:
            return -1
        for i in range(oldcap):
            if old[i].key != 0:
                j = _slot_of(old[i].key - 1, newcap - 1)
                while ns[j].key != 0:
                    j = (j + 1) & (newcap - 1)
                ns[j] = old[i]
        free(old)
        self.core.slots = ns
        self.core.mask = newcap - 1
        return 0

    cdef uint8_t* page_for_write(self, uint64_t pfn) noexcept nogil:
        """The writable page pfn, allocating it (from its region's image if any); NULL if
        strict and no region covers it, or out of memory."""
        cdef uint8_t* p = mc_resident(&self.core, pfn)
        cdef const uint8_t* src
        cdef uint64_t i
        cdef uint8_t** ns
        if p != NULL:
            return p
        src = mc_region_page(&self.core, pfn)
        if src == NULL and self.strict:
            return NULL
        if (self.core.count + 1) * 2 > self.core.mask + 1:
            if self._grow() != 0:
                return NULL
        if self.slab_free == 0:
            if self.nslabs == self.slab_cap:
                self.slab_cap = self.slab_cap * 2 + 16
                ns = <uint8_t**>realloc(self.slabs, self.slab_cap * sizeof(uint8_t*))
                if ns == NULL:
                    return NULL
                self.slabs = ns
            self.slabs[self.nslabs] = <uint8_t*>calloc(SLAB_PAGES, PAGE_SIZE)
            if self.slabs[self.nslabs] == NULL:
                return NULL
            self.nslabs += 1
            self.slab_free = SLAB_PAGES
        p = self.slabs[self.nslabs - 1] + (SLAB_PAGES - self.slab_free) * PAGE_SIZE
        self.slab_free -= 1
        if src != NULL and src != self.core.zero_page:
            memcpy(p, src, PAGE_SIZE)
        i = _slot_of(pfn, self.core.mask)
        while self.core.slots[i].key != 0:
            i = (i + 1) & self.core.mask
        self.core.slots[i].key = pfn + 1
        self.core.slots[i].page = p
        self.core.count += 1
        self.core.last_pfn = pfn
        self.core.last_page = p
        return p

    cdef int write64(self, uint64_t pa, uint64_t value) noexcept nogil:
        cdef uint8_t* p = self.page_for_write(pa >> PAGE_SHIFT)
        if p == NULL:
            return -1
        memcpy(p + (pa & (PAGE_SIZE - 8)), &value, 8)
        return 0

    # -- Python API ---------------------------------------------------------------------------
    @property
    def resident_pages(self):
        """Number of pages that have been written (held in the page table)."""
        return self.core.count

    def is_backed(self, uint64_t pa):
        return mc_page(&self.core, pa >> PAGE_SHIFT) != NULL

    def read(self, uint64_t pa, Py_ssize_t length):
        """length bytes from pa; MemFault names the first unbacked address."""
        cdef bytearray out = bytearray(length)
        cdef uint8_t* dst = out
        cdef Py_ssize_t done = 0, n
        cdef const uint8_t* p
        cdef uint64_t addr
        if length < 0:
            raise ValueError("negative length")
        while done < length:
            addr = pa + <uint64_t>done
            if addr < pa:
                raise MemFault(f"read of {length} bytes at {pa:#x} wraps the address space")
            p = mc_page(&self.core, addr >> PAGE_SHIFT)
            if p == NULL:
                raise MemFault(f"no memory at PA {addr:#x}")
            n = min(length - done, PAGE_SIZE - <Py_ssize_t>(addr & (PAGE_SIZE - 1)))
            memcpy(dst + done, p + (addr & (PAGE_SIZE - 1)), n)
            done += n
        return bytes(out)

    def write(self, uint64_t pa, data):
        """Write bytes at pa (creating pages; MemFault outside RAM when strict)."""
        cdef const uint8_t[::1] src = memoryview(data).cast("B")
        cdef Py_ssize_t length = src.shape[0], done = 0, n
        cdef uint8_t* p
        cdef uint64_t addr
        while done < length:
            addr = pa + <uint64_t>done
            if addr < pa:
                raise MemFault(f"write of {length} bytes at {pa:#x} wraps the address space")
            p = self.page_for_write(addr >> PAGE_SHIFT)
            if p == NULL:
                raise MemFault(f"no RAM at PA {addr:#x}")
            n = min(length - done, PAGE_SIZE - <Py_ssize_t>(addr & (PAGE_SIZE - 1)))
            memcpy(p + (addr & (PAGE_SIZE - 1)), &src[done], n)
            done += n

    def read_u64(self, uint64_t pa):
        cdef uint64_t v
        if pa & 7:
            raise MemFault(f"unaligned 64-bit read at {pa:#x}")
        if mc_read64(&self.core, pa, &v) != 0:
            raise MemFault(f"no memory at PA {pa:#x}")
        return v

    def write_u64(self, uint64_t pa, uint64_t value):
        if pa & 7:
            raise MemFault(f"unaligned 64-bit write at {pa:#x}")
        if self.write64(pa, value) != 0:
            raise MemFault(f"no RAM at PA {pa:#x}")

    def read_words(self, uint64_t pa, int n):
        """n little-endian 64-bit words from pa (list of int)."""
        import struct
        return list(struct.unpack(f"<{n}Q", self.read(pa, 8 * n)))

    def write_words(self, uint64_t pa, words):
        import struct
        self.write(pa, struct.pack(f"<{len(words)}Q", *[w & 0xFFFFFFFFFFFFFFFF for w in words]))

    def fill_pages(self, uint64_t base, uint64_t npages, uint64_t value=0):
        """Write `value` into the first word of npages consecutive pages (a quick way to make
        pages resident; used by benchmarks and capacity tests)."""
        cdef uint64_t i = 0
        with nogil:
            while i < npages:
                if self.write64(base + (i << PAGE_SHIFT), value) != 0:
                    break
                i += 1
        if i != npages:
            raise MemFault(f"no RAM at PA {base + (i << PAGE_SHIFT):#x}")

    def resident_pfns(self):
        """Sorted page numbers of every written page."""
        cdef uint64_t i
        out = []
        for i in range(self.core.mask + 1):
            if self.core.slots[i].key:
                out.append(self.core.slots[i].key - 1)
        out.sort()
        return out
