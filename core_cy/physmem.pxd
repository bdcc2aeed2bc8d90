# Modeled physical memory: a sparse 64-bit address space of 4 KiB pages.
from libc.stdint cimport uint64_t, uint8_t, int64_t
from libc.string cimport memcpy

cdef enum:
    PAGE_SHIFT = 12
    PAGE_SIZE = 4096

cdef struct PageSlot:
    uint64_t key          # pfn + 1; 0 marks an empty slot
    uint8_t* page

cdef struct Region:
    uint64_t base         # page aligned
    uint64_t size         # page multiple
    const uint8_t* data   # NULL: RAM that reads as zero until written; else a read-only image

cdef struct MemCore:
    PageSlot* slots
    uint64_t mask         # capacity - 1 (capacity is a power of two)
    uint64_t count
    uint64_t last_pfn     # one-entry lookup cache: walks touch the same page repeatedly
    uint8_t* last_page
    Region* regions
    int nregions
    const uint8_t* zero_page

cdef inline uint64_t _slot_of(uint64_t pfn, uint64_t mask) noexcept nogil:
    return ((pfn + 1) * <uint64_t>0x9E3779B97F4A7C15ULL >> 20) & mask

cdef inline uint8_t* mc_resident(MemCore* m, uint64_t pfn) noexcept nogil:
    """The written page holding pfn, or NULL."""
    cdef uint64_t i, key = pfn + 1
    if pfn == m.last_pfn:
        return m.last_page
    i = _slot_of(pfn, m.mask)
    while m.slots[i].key != 0:
        if m.slots[i].key == key:
            m.last_pfn = pfn
            m.last_page = m.slots[i].page
            return m.slots[i].page
        i = (i + 1) & m.mask
    return NULL

cdef const uint8_t* mc_region_page(MemCore* m, uint64_t pfn) noexcept nogil

cdef inline const uint8_t* mc_page(MemCore* m, uint64_t pfn) noexcept nogil:
    """The bytes of page pfn for reading, or NULL when no memory is there (external abort)."""
    cdef uint8_t* p = mc_resident(m, pfn)
    if p != NULL:
        return p
    return mc_region_page(m, pfn)

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
    cdef public bint strict   # writes outside declared regions are errors

    cdef uint8_t* page_for_write(self, uint64_t pfn) noexcept nogil
    cdef int write64(self, uint64_t pa, uint64_t value) noexcept nogil
    cdef int _grow(self) noexcept nogil
    cdef _add_region(self, uint64_t base, uint64_t size, const uint8_t* data)
