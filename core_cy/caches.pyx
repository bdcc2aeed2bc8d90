# cython: language_level=3
"""The SMMU's configuration cache and IOTLB: open-addressed hash tables, inserted on a walk,
looked up before one, dropped by invalidation commands (or wholesale when full: a cache may
evict anything)."""
from libc.stdlib cimport free, malloc
from libc.string cimport memset
from libc.stdint cimport uint64_t, uint32_t, uint16_t
from core_cy.wtypes cimport lowmask


cdef void ste_cache_clear(CfgCache* c) noexcept nogil:
    memset(c.stes, 0, (c.ste_mask + 1) * sizeof(SteSlot))
    c.ste_count = 0


cdef void cd_cache_clear(CfgCache* c) noexcept nogil:
    memset(c.cds, 0, (c.cd_mask + 1) * sizeof(CdSlot))
    c.cd_count = 0


cdef void ste_cache_put(CfgCache* c, uint32_t sid, SteCfg* cfg) noexcept nogil:
    cdef uint64_t i
    if (c.ste_count + 1) * 2 > c.ste_mask + 1:
        ste_cache_clear(c)                   # full: a cache may evict anything
    i = mix64(sid) & c.ste_mask
    while c.stes[i].used and c.stes[i].sid != sid:
        i = (i + 1) & c.ste_mask
    if not c.stes[i].used:
        c.ste_count += 1
    c.stes[i].used = 1
    c.stes[i].sid = sid
    c.stes[i].cfg = cfg[0]


cdef void cd_cache_put(CfgCache* c, uint32_t sid, uint32_t ssid, CdCfg* cfg) noexcept nogil:
    cdef uint64_t i
    if (c.cd_count + 1) * 2 > c.cd_mask + 1:
        cd_cache_clear(c)
    i = mix64((<uint64_t>sid << 32) | ssid) & c.cd_mask
    while c.cds[i].used and not (c.cds[i].sid == sid and c.cds[i].ssid == ssid):
        i = (i + 1) & c.cd_mask
    if not c.cds[i].used:
        c.cd_count += 1
    c.cds[i].used = 1
    c.cds[i].sid = sid
    c.cds[i].ssid = ssid
    c.cds[i].cfg = cfg[0]


cdef inline uint64_t tlb_hash(int kind, uint32_t vmid, uint64_t base, int shift) noexcept nogil:
    return mix64(base ^ (<uint64_t>vmid << 40) ^ (<uint64_t>shift << 56) ^ (<uint64_t>kind << 62))


cdef void tlb_clear(Tlb* t) noexcept nogil:
    memset(t.e, 0, (t.mask + 1) * sizeof(TlbEntry))
    t.count = 0


cdef void tlb_insert(Tlb* t, TlbEntry* e) noexcept nogil:
    cdef uint64_t i
    cdef TlbEntry* x
    if t.count + 1 > t.capacity:
        tlb_clear(t)
    i = tlb_hash(e.kind, e.vmid, e.in_base, e.shift) & t.mask
    while t.e[i].used:
        x = &t.e[i]
        if (x.kind == e.kind and x.vmid == e.vmid and x.in_base == e.in_base and
                x.shift == e.shift and x.is_global == e.is_global and
                (e.is_global or x.asid == e.asid)):
            t.e[i] = e[0]
            t.e[i].used = 1
            return
        i = (i + 1) & t.mask
    t.e[i] = e[0]
    t.e[i].used = 1
    t.count += 1


cdef TlbEntry* tlb_lookup(Tlb* t, int kind, uint32_t vmid, uint16_t asid, uint64_t addr,
                          uint64_t shifts) noexcept nogil:
    """shifts: bitmask of candidate entry sizes (log2)."""
    cdef int sh
    cdef uint64_t i, base
    cdef TlbEntry* x
    if t.count == 0:
        return NULL
    for sh in range(12, 48):
        if not (shifts >> sh) & 1:
            continue
        base = addr & ~lowmask(sh)
        i = tlb_hash(kind, vmid, base, sh) & t.mask
        while t.e[i].used:
            x = &t.e[i]
            if (x.kind == kind and x.vmid == vmid and x.in_base == base and x.shift == sh and
                    (x.is_global or x.asid == asid)):
                return x
            i = (i + 1) & t.mask
    return NULL


cdef inline bint inv_matches(InvSpec* s, TlbEntry* x) noexcept nogil:
    cdef uint64_t end
    if not (s.kinds >> x.kind) & 1:
        return False
    if s.match_vmid and x.vmid != s.vmid:
        return False
    if s.match_asid and not x.is_global and x.asid != s.asid:
        return False
    if s.keep_global and x.is_global:
        return False
    if s.match_range:
        end = x.in_base + lowmask(x.shift)
        if end < s.lo or x.in_base > s.hi:
            return False
    if s.level >= 0 and (x.s2level if s.s2level else x.s1level) != s.level:
        return False
    return True


cdef uint64_t tlb_invalidate(Tlb* t, InvSpec* s) noexcept nogil:
    cdef uint64_t i, n = t.mask + 1, removed = 0, kept = 0
    cdef TlbEntry* keep = <TlbEntry*>malloc(n * sizeof(TlbEntry))
    if keep == NULL:
        tlb_clear(t)
        return 0
    for i in range(n):
        if t.e[i].used:
            if inv_matches(s, &t.e[i]):
                removed += 1
            else:
                keep[kept] = t.e[i]
                kept += 1
    tlb_clear(t)
    for i in range(kept):
        tlb_insert(t, &keep[i])
    free(keep)
    return removed
