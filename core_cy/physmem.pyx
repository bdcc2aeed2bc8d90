# cython: language_level=3
"""Modeled physical memory: a system map.

Declared RAM regions are flat memory (one anonymous mapping each, so untouched pages cost
nothing) that table walks read directly. An imported dump is a read-only image whose written
pages are copied into a page hash. Device regions (MMIO) belong to an owner: a write landing in
one (an MSI, a CMD_SYNC completion write) is passed to the owner's callback. Table walks read
only memory: an MMIO page, like an address nothing backs, reads as NULL and the walker turns that
into an external abort (F_WALK_EABT, F_STE_FETCH, F_CD_FETCH) instead of reading zero. With
strict=True only declared regions exist: a write to nothing raises MemFault naming the address.

Snapshots (snapshot() / restore()) are copy-on-write at page granularity: a page's content
before its first write since tracking began is saved once; a snapshot copies the pages written
since the previous one and shares the rest; a restore rewrites only the pages that differ. The
cost follows the pages written, not the size of memory.
"""
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memset
from libc.stdint cimport uint64_t, uint32_t, uint8_t
from posix.mman cimport (mmap, munmap, PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS,
                         MAP_NORESERVE, MAP_FAILED)
import hashlib

cdef extern from "sys/mman.h" nogil:
    enum: MADV_HUGEPAGE
    int madvise(void* addr, size_t length, int advice)
from collections import namedtuple

cdef enum:
    HUGE_MIN = 64 << 20      # RAM regions this large get transparent huge pages by default
    SLAB_PAGES = 256         # hash pages are carved from 1 MiB slabs (calloc: lazily zeroed)

_KIND_NAMES = ("ram", "image", "mmio")
_MISSING = object()


class MemFault(Exception):
    """An access to physical memory that nothing backs."""


MemRegion = namedtuple("MemRegion", "base size kind owner")
MemRegion.__doc__ = "A region of the system map: kind 'ram', 'image' or 'mmio'; owner for MMIO."


class Snapshot:
    """The memory contents at one moment (PhysMem.snapshot()); give it to PhysMem.restore().
    pages: pfn -> page bytes (None: no page) for every page written since tracking began, as
    it was at this moment; other pages hold their content from before tracking. copied: pages
    copied to take it."""
    __slots__ = ("mem", "pages", "copied", "__weakref__")

    def __init__(self, mem, pages, copied):
        self.mem = mem
        self.pages = pages
        self.copied = copied


# -- page hash (open addressing, linear probing) ----------------------------------------------
cdef int pm_init(PageMap* h, uint64_t capacity) noexcept nogil:
    cdef uint64_t cap = 16
    while cap < capacity * 2:
        cap <<= 1
    h.slots = <PageSlot*>calloc(cap, sizeof(PageSlot))
    h.mask = cap - 1
    h.count = 0
    return 0 if h.slots != NULL else -1


cdef PageSlot* pm_find(PageMap* h, uint64_t pfn) noexcept nogil:
    cdef uint64_t i = _slot_of(pfn, h.mask), key = pfn + 1
    while h.slots[i].key != 0:
        if h.slots[i].key == key:
            return &h.slots[i]
        i = (i + 1) & h.mask
    return NULL


cdef int pm_grow(PageMap* h) noexcept nogil:
    cdef uint64_t oldcap = h.mask + 1, newcap = oldcap * 2, i, j
    cdef PageSlot* old = h.slots
    cdef PageSlot* ns = <PageSlot*>calloc(newcap, sizeof(PageSlot))
    if ns == NULL:
        return -1
    for i in range(oldcap):
        if old[i].key != 0:
            j = _slot_of(old[i].key - 1, newcap - 1)
            while ns[j].key != 0:
                j = (j + 1) & (newcap - 1)
            ns[j] = old[i]
    free(old)
    h.slots = ns
    h.mask = newcap - 1
    return 0


cdef PageSlot* pm_insert(PageMap* h, uint64_t pfn, uint8_t* page) noexcept nogil:
    """Insert pfn (not present); NULL when out of memory."""
    cdef uint64_t i
    if (h.count + 1) * 2 > h.mask + 1:
        if pm_grow(h) != 0:
            return NULL
    i = _slot_of(pfn, h.mask)
    while h.slots[i].key != 0:
        i = (i + 1) & h.mask
    h.slots[i].key = pfn + 1
    h.slots[i].page = page
    h.slots[i].stamp = 0
    h.count += 1
    return &h.slots[i]


cdef void pm_delete(PageMap* h, uint64_t pfn) noexcept nogil:
    """Remove pfn, shifting later entries of its probe run back (no tombstones)."""
    cdef PageSlot* s = pm_find(h, pfn)
    cdef uint64_t i, j, k
    if s == NULL:
        return
    i = <uint64_t>(s - h.slots)
    j = i
    while True:
        j = (j + 1) & h.mask
        if h.slots[j].key == 0:
            break
        k = _slot_of(h.slots[j].key - 1, h.mask)
        # The entry at j may move to i unless its home k lies cyclically in (i, j].
        if (i <= j and i < k <= j) or (i > j and (k > i or k <= j)):
            continue
        h.slots[i] = h.slots[j]
        i = j
    h.slots[i].key = 0
    h.slots[i].page = NULL
    h.slots[i].stamp = 0
    h.count -= 1


cdef inline int _region_of(MemCore* m, uint64_t pa) noexcept nogil:
    cdef int i
    for i in range(m.nregions):
        if pa - m.regions[i].base < m.regions[i].size:
            return i
    return -1


cdef const uint8_t* mc_page_slow(MemCore* m, uint64_t pfn) noexcept nogil:
    """mc_page for a page in neither the last RAM region hit nor the page hash."""
    cdef uint64_t pa = pfn << PAGE_SHIFT
    cdef int i = _region_of(m, pa)
    cdef Region* r
    if i < 0:
        return NULL                          # nothing there
    r = &m.regions[i]
    if r.kind == KIND_RAM:
        m.flat2_base = m.flat_base
        m.flat2_size = m.flat_size
        m.flat2_data = m.flat_data
        m.flat_base = r.base
        m.flat_size = r.size
        m.flat_data = r.data
        return r.data + (pa - r.base)
    if r.kind == KIND_MMIO:
        return NULL
    # An image page not written since: its bytes, until a write copies it (page_for_write
    # then caches the copy).
    m.last_pfn = pfn
    m.last_page = r.data + (pa - r.base)
    return m.last_page


cdef const uint8_t* mc_win_slow(MemCore* m, uint64_t pfn, Window* win) noexcept nogil:
    """mc_win_page for a page outside the page hash: a RAM region (the window becomes the
    region), an image page not written since (the window becomes that page until a write copies
    it: page_for_write forgets the windows), MMIO or nothing (NULL, the window is left alone)."""
    cdef uint64_t pa = pfn << PAGE_SHIFT
    cdef int i = _region_of(m, pa)
    cdef Region* r
    if i < 0:
        return NULL
    r = &m.regions[i]
    if r.kind == KIND_MMIO:
        return NULL
    if r.kind == KIND_RAM:
        win.base = r.base
        win.size = r.size
    else:
        win.base = pa
        win.size = PAGE_SIZE
    win.data = r.data + (win.base - r.base)
    return r.data + (pa - r.base)


cdef void* _map_zero(uint64_t size):
    cdef void* p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
    return NULL if p == MAP_FAILED else p


cdef class PhysMem:
    """A 64-bit physical address space of 4 KiB pages (little-endian).

    ram(base, size) declares zero-filled flat RAM; image(base, buffer) maps a read-only image
    (a dump) that is copied page by page on first write; add_mmio(...) gives an address range
    to a device. With strict=False (tests, hand-built memory) a write outside every region
    creates a page there; with strict=True it raises MemFault.
    """

    def __cinit__(self, bint strict=False, uint64_t capacity=1 << 12):
        memset(&self.core, 0, sizeof(MemCore))
        memset(&self.base, 0, sizeof(PageMap))
        if pm_init(&self.core.hash, capacity) != 0 or pm_init(&self.base, 16) != 0:
            raise MemoryError()
        self.core.last_pfn = <uint64_t>-1
        self.core.last_page = NULL
        self.slabs = NULL
        self.nslabs = 0
        self.slab_cap = 0
        self.slab_free = 0
        self._buffers = []
        self._mmio = {}
        self.strict = strict
        self.gen = 0
        self.dirty = NULL
        self.ndirty = 0
        self.dirty_cap = 0
        self._cur = None

    def __dealloc__(self):
        cdef size_t i
        cdef Region* r
        for i in range(self.nslabs):
            free(self.slabs[i])
        free(self.slabs)
        free(self.core.hash.slots)
        for i in range(<size_t>self.core.nregions):
            r = &self.core.regions[i]
            if r.kind == KIND_RAM:
                munmap(r.data, r.size)
                munmap(r.stamps, (r.size >> PAGE_SHIFT) * sizeof(uint32_t))
        free(self.core.regions)
        if self.base.slots != NULL:
            for i in range(self.base.mask + 1):
                if self.base.slots[i].key:
                    free(self.base.slots[i].page)
            free(self.base.slots)
        free(self.dirty)

    # -- regions ------------------------------------------------------------------------------
    cdef _add_region(self, uint64_t base, uint64_t size, uint8_t* data, int kind):
        if base & (PAGE_SIZE - 1) or size & (PAGE_SIZE - 1) or size == 0:
            raise ValueError(f"region {base:#x}+{size:#x} is not page aligned")
        if base + size < base:
            raise ValueError(f"region {base:#x}+{size:#x} wraps the address space")
        for r in self.regions():
            if base < r[0] + r[1] and r[0] < base + size:
                raise ValueError(f"region {base:#x}+{size:#x} overlaps {r[0]:#x}+{r[1]:#x}")
        cdef uint32_t* stamps = NULL
        if kind == KIND_RAM:
            data = <uint8_t*>_map_zero(size)
            stamps = <uint32_t*>_map_zero((size >> PAGE_SHIFT) * sizeof(uint32_t))
            if data == NULL or stamps == NULL:
                if data != NULL:
                    munmap(data, size)
                raise MemoryError(f"cannot map {size:#x} bytes of RAM at {base:#x}")
        cdef Region* nr = <Region*>realloc(self.core.regions,
                                           (self.core.nregions + 1) * sizeof(Region))
        if nr == NULL:
            raise MemoryError()
        self.core.regions = nr
        nr[self.core.nregions].base = base
        nr[self.core.nregions].size = size
        nr[self.core.nregions].data = data
        nr[self.core.nregions].stamps = stamps
        nr[self.core.nregions].kind = kind
        self.core.nregions += 1
        mc_forget(&self.core)
        if kind == KIND_RAM:
            self._adopt_pages(base, size)

    cdef _adopt_pages(self, uint64_t base, uint64_t size):
        """Move pages written before the RAM was declared (non-strict) into it."""
        cdef uint64_t i, pfn
        cdef list moved = []
        for i in range(self.core.hash.mask + 1):
            pfn = self.core.hash.slots[i].key - 1
            if self.core.hash.slots[i].key and (pfn << PAGE_SHIFT) - base < size:
                moved.append(pfn)
        cdef Region* r = &self.core.regions[self.core.nregions - 1]
        for pfn in moved:
            memcpy(r.data + ((pfn << PAGE_SHIFT) - base),
                   pm_find(&self.core.hash, pfn).page, PAGE_SIZE)
            pm_delete(&self.core.hash, pfn)
        mc_forget(&self.core)

    def ram(self, uint64_t base, uint64_t size, huge=None):
        """Declare zero-filled RAM at [base, base+size) (flat memory). huge: back it with
        transparent huge pages where the kernel allows (default: for 64 MiB and more). Walks
        of large tables then miss the CPU's TLB far less (about 1.3x faster at 1M pages);
        the cost is memory touched in 2 MiB steps."""
        cdef Region* r
        self._add_region(base, size, NULL, KIND_RAM)
        if huge if huge is not None else size >= HUGE_MIN:
            r = &self.core.regions[self.core.nregions - 1]
            madvise(r.data, r.size, MADV_HUGEPAGE)      # advice only: failure is harmless

    def image(self, uint64_t base, buffer):
        """Map a read-only image (bytes, mmap, memoryview) at base; writes copy the page."""
        cdef const uint8_t[::1] view = memoryview(buffer).cast("B")
        cdef uint64_t size = view.shape[0]
        if size == 0:
            raise ValueError("empty image")
        self._add_region(base, (size + PAGE_SIZE - 1) & ~<uint64_t>(PAGE_SIZE - 1),
                         <uint8_t*>&view[0], KIND_IMAGE)
        self._buffers.append(view)
        if size & (PAGE_SIZE - 1):
            # The image's last partial page must read zero past its end: copy it now.
            tail = bytes(view[size & ~<uint64_t>(PAGE_SIZE - 1):])
            self.write(base + (size & ~<uint64_t>(PAGE_SIZE - 1)), tail + bytes(PAGE_SIZE - len(tail)))

    def add_mmio(self, uint64_t base, uint64_t size, owner, write=None, read=None):
        """Give [base, base+size) to a device. write(pa, data: bytes) is called for a write
        landing there (an MSI, a completion write), read(pa, length) -> bytes for a read by
        read()/read_u64(); without one, that access raises MemFault. Table walks never read
        MMIO: to them it is an external abort."""
        self._add_region(base, size, NULL, KIND_MMIO)
        self._mmio[base] = (owner, write, read)

    def regions(self):
        """[(base, size, kind)] with kind 'ram', 'image' or 'mmio', in declaration order."""
        return [(self.core.regions[i].base, self.core.regions[i].size,
                 _KIND_NAMES[self.core.regions[i].kind]) for i in range(self.core.nregions)]

    def region_at(self, uint64_t pa):
        """What is at an address: the MemRegion holding pa (base, size, kind 'ram', 'image' or
        'mmio', owner: the device for MMIO), a one-page MemRegion of kind 'page' for a page
        written outside every region (non-strict memory), or None for nothing."""
        cdef int i = _region_of(&self.core, pa)
        cdef Region* r
        if i < 0:
            if self.core.hash.count and pm_find(&self.core.hash, pa >> PAGE_SHIFT) != NULL:
                return MemRegion(pa & ~<uint64_t>(PAGE_SIZE - 1), PAGE_SIZE, "page", None)
            return None
        r = &self.core.regions[i]
        return MemRegion(r.base, r.size, _KIND_NAMES[r.kind],
                         self._mmio[r.base][0] if r.kind == KIND_MMIO else None)

    # -- pages --------------------------------------------------------------------------------
    cdef uint8_t* _alloc_page(self) noexcept nogil:
        cdef uint8_t** ns
        cdef uint8_t* p
        if self.slab_free == 0:
            if self.nslabs == self.slab_cap:
                ns = <uint8_t**>realloc(self.slabs, (self.slab_cap * 2 + 16) * sizeof(uint8_t*))
                if ns == NULL:
                    return NULL
                self.slab_cap = self.slab_cap * 2 + 16
                self.slabs = ns
            self.slabs[self.nslabs] = <uint8_t*>calloc(SLAB_PAGES, PAGE_SIZE)
            if self.slabs[self.nslabs] == NULL:
                return NULL
            self.nslabs += 1
            self.slab_free = SLAB_PAGES
        p = self.slabs[self.nslabs - 1] + (SLAB_PAGES - self.slab_free) * PAGE_SIZE
        self.slab_free -= 1
        return p

    cdef int _track(self, uint64_t pfn, uint8_t* page, uint32_t* stamp) noexcept nogil:
        """First write to a page since the last snapshot: list it as dirty, and save its
        content (page; NULL: no page there) the first time since tracking began."""
        cdef uint8_t* copy = NULL
        cdef uint64_t* nd
        if self.ndirty == self.dirty_cap:
            nd = <uint64_t*>realloc(self.dirty, (self.dirty_cap * 2 + 64) * sizeof(uint64_t))
            if nd == NULL:
                return -1
            self.dirty = nd
            self.dirty_cap = self.dirty_cap * 2 + 64
        if stamp[0] == 0 and pm_find(&self.base, pfn) == NULL:
            if page != NULL:
                copy = <uint8_t*>malloc(PAGE_SIZE)
                if copy == NULL:
                    return -1
                memcpy(copy, page, PAGE_SIZE)
            if pm_insert(&self.base, pfn, copy) == NULL:
                free(copy)
                return -1
        self.dirty[self.ndirty] = pfn
        self.ndirty += 1
        stamp[0] = self.gen
        return 0

    cdef uint8_t* page_for_write(self, uint64_t pfn) noexcept nogil:
        """The writable page pfn: in its RAM region, or a page of the hash (created, from its
        image if any). NULL for MMIO, for nothing when strict, or when out of memory."""
        cdef uint64_t pa = pfn << PAGE_SHIFT, off
        cdef int i = _region_of(&self.core, pa)
        cdef Region* r
        cdef const uint8_t* src = NULL
        cdef PageSlot* s
        cdef uint8_t* p
        cdef uint32_t none = 0
        if i >= 0:
            r = &self.core.regions[i]
            off = pa - r.base
            if r.kind == KIND_RAM:
                p = r.data + off
                if self.gen != 0 and r.stamps[off >> PAGE_SHIFT] != self.gen:
                    if self._track(pfn, p, &r.stamps[off >> PAGE_SHIFT]) != 0:
                        return NULL
                return p
            if r.kind == KIND_MMIO:
                return NULL
            src = r.data + off
        s = pm_find(&self.core.hash, pfn)
        if s != NULL:
            if self.gen != 0 and s.stamp != self.gen:
                if self._track(pfn, s.page, &s.stamp) != 0:
                    return NULL
            return s.page
        if src == NULL and self.strict:
            return NULL
        p = self._alloc_page()
        if p == NULL:
            return NULL
        if self.gen != 0 and self._track(pfn, NULL, &none) != 0:
            return NULL
        s = pm_insert(&self.core.hash, pfn, p)
        if s == NULL:
            return NULL
        s.stamp = self.gen
        if src != NULL:
            memcpy(p, src, PAGE_SIZE)
        mc_forget(&self.core)                 # a window may hold the image page
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
        """Number of pages held in the page hash (written outside RAM regions, or copied from
        an image); RAM regions are flat and not counted."""
        return self.core.hash.count

    def is_backed(self, uint64_t pa):
        """Whether a table walk can read pa (RAM or an image; not MMIO, not nothing)."""
        return mc_page(&self.core, pa >> PAGE_SHIFT) != NULL

    def _mmio_region(self, uint64_t pa):
        """(region base, end, owner, write, read) if pa is in an MMIO region, else None."""
        cdef int i = _region_of(&self.core, pa)
        if i < 0 or self.core.regions[i].kind != KIND_MMIO:
            return None
        b = self.core.regions[i].base
        return (b, b + self.core.regions[i].size) + self._mmio[b]

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
                dev = self._mmio_region(addr)
                if dev is None:
                    raise MemFault(f"no memory at PA {addr:#x}")
                if dev[4] is None:
                    raise MemFault(f"PA {addr:#x} is MMIO of {dev[2]}, which takes no reads")
                n = min(length - done, <Py_ssize_t>(dev[1] - addr))
                data = bytes(dev[4](addr, n))
                if len(data) != n:
                    raise MemFault(f"MMIO read at {addr:#x}: {dev[2]} returned {len(data)} "
                                   f"bytes, not {n}")
                out[done:done + n] = data
                done += n
                continue
            n = min(length - done, PAGE_SIZE - <Py_ssize_t>(addr & (PAGE_SIZE - 1)))
            memcpy(dst + done, p + (addr & (PAGE_SIZE - 1)), n)
            done += n
        return bytes(out)

    def write(self, uint64_t pa, data):
        """Write bytes at pa. A write landing in an MMIO region goes to its owner's write
        callback; a write to nothing raises MemFault when strict (else creates a page)."""
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
                dev = self._mmio_region(addr)
                if dev is None:
                    raise MemFault(f"no RAM at PA {addr:#x}")
                if dev[3] is None:
                    raise MemFault(f"PA {addr:#x} is MMIO of {dev[2]}, which takes no writes")
                n = min(length - done, <Py_ssize_t>(dev[1] - addr))
                dev[3](addr, bytes(src[done:done + n]))
                done += n
                continue
            n = min(length - done, PAGE_SIZE - <Py_ssize_t>(addr & (PAGE_SIZE - 1)))
            memcpy(p + (addr & (PAGE_SIZE - 1)), &src[done], n)
            done += n

    def read_u64(self, uint64_t pa):
        cdef uint64_t v
        if pa & 7:
            raise MemFault(f"unaligned 64-bit read at {pa:#x}")
        if mc_read64(&self.core, pa, &v) != 0:
            return int.from_bytes(self.read(pa, 8), "little")      # MMIO, or MemFault
        return v

    def write_u64(self, uint64_t pa, uint64_t value):
        if pa & 7:
            raise MemFault(f"unaligned 64-bit write at {pa:#x}")
        if self.write64(pa, value) != 0:
            self.write(pa, int(value).to_bytes(8, "little"))           # MMIO, or MemFault

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
        """Sorted page numbers of every page in the page hash."""
        cdef uint64_t i
        out = []
        for i in range(self.core.hash.mask + 1):
            if self.core.hash.slots[i].key:
                out.append(self.core.hash.slots[i].key - 1)
        out.sort()
        return out

    def written_pfns(self):
        """Sorted page numbers of every page written since tracking began (the first
        snapshot()); [] before. Two memories built alike differ at most in these pages."""
        cdef uint64_t i
        out = [self.base.slots[i].key - 1 for i in range(self.base.mask + 1)
               if self.base.slots[i].key]
        out.sort()
        return out

    # -- snapshots ----------------------------------------------------------------------------
    cdef uint8_t* _page_raw(self, uint64_t pfn) noexcept:
        """The page as written (RAM or hash), NULL when there is none; no tracking."""
        cdef int i = _region_of(&self.core, pfn << PAGE_SHIFT)
        cdef PageSlot* s
        if i >= 0 and self.core.regions[i].kind == KIND_RAM:
            return self.core.regions[i].data + ((pfn << PAGE_SHIFT) - self.core.regions[i].base)
        s = pm_find(&self.core.hash, pfn)
        return s.page if s != NULL else NULL

    cdef _set_raw(self, uint64_t pfn, const uint8_t* content):
        """Make page pfn hold content (NULL: remove it from the hash), without tracking."""
        cdef uint8_t* p
        cdef PageSlot* s
        mc_forget(&self.core)                 # the page behind pfn may change
        if content == NULL:
            pm_delete(&self.core.hash, pfn)
            return
        p = self._page_raw(pfn)
        if p == NULL:
            p = self._alloc_page()
            if p == NULL or pm_insert(&self.core.hash, pfn, p) == NULL:
                raise MemoryError()
        memcpy(p, content, PAGE_SIZE)

    def snapshot(self):
        """A Snapshot of the memory now. The first one starts tracking writes; each later one
        copies only the pages written since the previous snapshot or restore."""
        cdef uint64_t i, pfn
        cdef uint8_t* p
        if self.gen == 0:
            pages, copied = {}, 0
            self.gen = 1
        else:
            pages = dict(self._cur.pages)
            for i in range(self.ndirty):
                pfn = self.dirty[i]
                p = self._page_raw(pfn)
                pages[pfn] = None if p == NULL else (<char*>p)[:PAGE_SIZE]
            copied = self.ndirty
            self.gen += 1
        self.ndirty = 0
        snap = Snapshot(self, pages, copied)
        self._cur = snap
        return snap

    def restore(self, snap):
        """Make memory hold what it held at snapshot `snap` (of this PhysMem). Rewrites only the
        pages that differ; returns how many. Every snapshot stays valid (back and forth)."""
        cdef uint64_t i, pfn
        cdef PageSlot* s
        cdef const uint8_t* src
        if not isinstance(snap, Snapshot) or snap.mem is not self:
            raise ValueError("restore: not a snapshot of this memory")
        cur, tgt = self._cur.pages, snap.pages
        todo = set()
        for i in range(self.ndirty):
            todo.add(self.dirty[i])
        if cur is not tgt:
            for pfn, v in cur.items():
                if tgt.get(pfn, _MISSING) is not v:
                    todo.add(pfn)
            for pfn in tgt:
                if pfn not in cur:
                    todo.add(pfn)
        for pfn in todo:
            v = tgt.get(pfn, _MISSING)
            if v is _MISSING:
                s = pm_find(&self.base, pfn)        # as before tracking began
                src = s.page if s != NULL else NULL
            elif v is None:
                src = NULL
            else:
                src = <const uint8_t*><char*>v
            self._set_raw(pfn, src)
        self.ndirty = 0
        self.gen += 1
        self._cur = snap
        return len(todo)
