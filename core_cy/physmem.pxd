# Modeled physical memory: a 64-bit system map of flat RAM regions, read-only images (dumps,
# copied page by page on write), device (MMIO) regions, and sparse pages outside them.
from libc.stdint cimport uint64_t, uint32_t, uint8_t, int64_t
from libc.string cimport memcpy

cdef enum:
    PAGE_SHIFT = 12
    PAGE_SIZE = 4096

cdef enum:
    KIND_RAM = 0          # flat, writable, zero-filled memory
    KIND_IMAGE = 1        # read-only bytes; written pages are copied into the page hash
    KIND_MMIO = 2         # a device's registers: never read by table walks

cdef struct PageSlot:
    uint64_t key          # pfn + 1; 0 marks an empty slot
    uint8_t* page
    uint32_t stamp        # snapshot generation of the page's last first-write (0: none)

cdef struct PageMap:
    PageSlot* slots
    uint64_t mask         # capacity - 1 (capacity is a power of two)
    uint64_t count

cdef struct Region:
    uint64_t base         # page aligned
    uint64_t size         # page multiple
    uint8_t* data         # RAM: the flat memory; image: its bytes; MMIO: NULL
    uint32_t* stamps      # RAM: per-page snapshot generation (see PageSlot.stamp)
    int kind

# Read windows: the memory a read site hit last, so that its next read is a subtract and compare
# whatever kind of memory lies there. A window is a whole RAM region, or one page (of the hash,
# or an image page not written since). The walker gives each stage and level its own window: a
# nested walk's stage-2 and stage-1 tables stay in their regions, and over page-hash memory the
# upper-level tables (the same few pages for every walk) do not cost a hash probe.
cdef enum:
    WIN_S2 = 0            # stage-2 table reads, + level (0-3)
    WIN_S1 = 4            # stage-1 table reads, + level (0-3)
    WIN_STE = 8           # stream table (L1STD, STE)
    WIN_CD = 9            # context descriptors (L1CD, CD)
    NWIN = 16

cdef struct Window:
    uint64_t base         # page aligned
    uint64_t size         # 0: empty
    const uint8_t* data
    uint64_t pad          # 32-byte stride

cdef struct MemCore:
    Window win[NWIN]
    # The two RAM regions hit last: a walk stays in one region, or alternates between two (a
    # nested walk: stage-2 tables in host RAM, stage-1 tables in guest RAM), so a read is a
    # subtract and compare.
    uint64_t flat_base
    uint64_t flat_size    # 0 until a RAM region is hit
    uint8_t* flat_data
    uint64_t flat2_base   # the one hit before
    uint64_t flat2_size
    uint8_t* flat2_data
    PageMap hash          # pages outside RAM regions: image copies, non-strict pages
    uint64_t last_pfn     # one-entry lookup cache of non-RAM pages (hash, image): reset
    uint8_t* last_page    # whenever the page behind a pfn changes
    Region* regions
    int nregions

cdef extern from *:
    """
    #define SMMUDBG_LIKELY(x) __builtin_expect(!!(x), 1)
    """
    bint likely "SMMUDBG_LIKELY"(bint) noexcept nogil

cdef inline uint64_t _slot_of(uint64_t pfn, uint64_t mask) noexcept nogil:
    return ((pfn + 1) * <uint64_t>0x9E3779B97F4A7C15ULL >> 20) & mask

# Out of line (cold): another RAM region, an image page not written since, MMIO, nothing.
cdef const uint8_t* mc_page_slow(MemCore* m, uint64_t pfn) noexcept nogil
# Out of line: mc_win_page for a page in neither the window nor the page hash.
cdef const uint8_t* mc_win_slow(MemCore* m, uint64_t pfn, Window* win) noexcept nogil

cdef inline void mc_forget(MemCore* m) noexcept nogil:
    """Drop the lookup caches that may hold a page pointer (last page, windows): call whenever
    the page behind a pfn changes (a page created, copied on write, removed; a region added)."""
    cdef int i
    m.last_pfn = <uint64_t>-1
    for i in range(NWIN):
        m.win[i].size = 0

cdef inline const uint8_t* mc_page(MemCore* m, uint64_t pfn) noexcept nogil:
    """The bytes of page pfn for reading, or NULL when no memory is there (external abort).
    MMIO pages are NULL too: the model's table walks read only memory.

    Inline: the last two RAM regions hit (a subtract and compare each), then the last other
    page read and the page hash (written pages: image copies, non-strict memory), whose pages take
    precedence over an image's bytes and never lie in RAM regions."""
    cdef uint64_t off = (pfn << PAGE_SHIFT) - m.flat_base
    cdef uint64_t i, key
    if likely(off < m.flat_size):
        return m.flat_data + off
    off = (pfn << PAGE_SHIFT) - m.flat2_base
    if off < m.flat2_size:
        return m.flat2_data + off
    if pfn == m.last_pfn:
        return m.last_page
    i = _slot_of(pfn, m.hash.mask)
    key = pfn + 1
    while m.hash.slots[i].key != 0:
        if m.hash.slots[i].key == key:
            m.last_pfn = pfn
            m.last_page = m.hash.slots[i].page
            return m.last_page
        i = (i + 1) & m.hash.mask
    return mc_page_slow(m, pfn)

cdef inline const uint8_t* mc_win_page(MemCore* m, uint64_t pfn, Window* win) noexcept nogil:
    """mc_page for a read site with its own window win (&m.win[WIN_*]): a window miss goes to
    the page hash first (RAM pages are never in it), then to the regions; what it finds fills
    the window."""
    cdef uint64_t i, key = pfn + 1
    cdef uint8_t* p
    i = _slot_of(pfn, m.hash.mask)
    while m.hash.slots[i].key != 0:
        if m.hash.slots[i].key == key:
            p = m.hash.slots[i].page
            win.base = pfn << PAGE_SHIFT
            win.size = PAGE_SIZE
            win.data = p
            return p
        i = (i + 1) & m.hash.mask
    return mc_win_slow(m, pfn, win)

cdef inline int mc_read64_w(MemCore* m, Window* win, uint64_t pa, uint64_t* out) noexcept nogil:
    """mc_read64 through read window win (&m.win[WIN_*])."""
    cdef uint64_t off = (pa & ~<uint64_t>7) - win.base
    cdef const uint8_t* p
    if likely(off < win.size):
        memcpy(out, win.data + off, 8)
        return 0
    p = mc_win_page(m, pa >> PAGE_SHIFT, win)
    if p == NULL:
        return -1
    memcpy(out, p + (pa & (PAGE_SIZE - 8)), 8)
    return 0

cdef inline int mc_read_block_w(MemCore* m, Window* win, uint64_t pa, uint64_t* out,
                                int nwords) noexcept nogil:
    """mc_read_block through read window win (&m.win[WIN_*])."""
    cdef uint64_t off = (pa & ~<uint64_t>7) - win.base
    cdef const uint8_t* p
    if likely(off < win.size):
        memcpy(out, win.data + off, 8 * nwords)
        return 0
    p = mc_win_page(m, pa >> PAGE_SHIFT, win)
    if p == NULL:
        return -1
    memcpy(out, p + (pa & (PAGE_SIZE - 8)), 8 * nwords)
    return 0

cdef inline int mc_read64(MemCore* m, uint64_t pa, uint64_t* out) noexcept nogil:
    """Little-endian 64-bit read at an 8-byte aligned PA; -1 if unbacked."""
    cdef const uint8_t* p = mc_page(m, pa >> PAGE_SHIFT)
    if p == NULL:
        return -1
    memcpy(out, p + (pa & (PAGE_SIZE - 8)), 8)
    return 0

cdef inline int mc_read_block(MemCore* m, uint64_t pa, uint64_t* out, int nwords) noexcept nogil:
    """Read nwords aligned words that lie in one page (STE, CD: 64 bytes); -1 if unbacked."""
    cdef const uint8_t* p = mc_page(m, pa >> PAGE_SHIFT)
    if p == NULL:
        return -1
    memcpy(out, p + (pa & (PAGE_SIZE - 8)), 8 * nwords)
    return 0


cdef class PhysMem:
    cdef MemCore core
    cdef uint8_t** slabs
    cdef size_t nslabs
    cdef size_t slab_cap
    cdef size_t slab_free     # pages left in the newest slab
    cdef list _buffers        # keeps region images alive
    cdef dict _mmio           # region base -> (owner, write, read)
    cdef public bint strict   # writes outside declared regions are errors
    # Snapshots (see snapshot()): generation stamped on first write, pages written since the
    # last snapshot/restore, and each page's content before its first write since tracking.
    cdef uint32_t gen         # 0: not tracking
    cdef uint64_t* dirty
    cdef uint64_t ndirty
    cdef uint64_t dirty_cap
    cdef PageMap base         # pfn -> copy of the page before tracking (page NULL: absent)
    cdef object _cur          # the Snapshot the current state started from

    cdef uint8_t* page_for_write(self, uint64_t pfn) noexcept nogil
    cdef int write64(self, uint64_t pa, uint64_t value) noexcept nogil
    cdef uint8_t* _alloc_page(self) noexcept nogil
    cdef int _track(self, uint64_t pfn, uint8_t* page, uint32_t* stamp) noexcept nogil
    cdef _add_region(self, uint64_t base, uint64_t size, uint8_t* data, int kind)
    cdef _adopt_pages(self, uint64_t base, uint64_t size)
    cdef uint8_t* _page_raw(self, uint64_t pfn) noexcept
    cdef _set_raw(self, uint64_t pfn, const uint8_t* content)
