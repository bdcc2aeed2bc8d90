# The SMMU's caches: the configuration cache (STEs per StreamID, CDs per StreamID + SubstreamID)
# and the IOTLB. Lookups are inline (they run on every cached translation).
from libc.stdint cimport uint64_t, uint32_t, uint16_t, uint8_t
from core_cy.smmucfg cimport SteCfg, CdCfg

cdef enum TlbKind:
    TLB_S1 = 1           # stage-1-only (NS-EL1): VMID, ASID/global
    TLB_S2 = 2           # stage-2-only: VMID, keyed by IPA
    TLB_NESTED = 3       # combined stage 1 + stage 2: VMID, ASID/global
    TLB_EL2 = 4          # EL2 stage 1 (STRW=EL2): no VMID, no ASID

cdef struct TlbEntry:
    uint64_t in_base     # VA (or IPA for TLB_S2) aligned to the entry size
    uint64_t out_base    # PA
    uint64_t ipa_base    # nested: IPA of the stage-1 output, for stage-2 fault reports
    uint32_t vmid
    uint16_t asid
    uint8_t kind
    uint8_t shift        # log2 of the entry size
    uint8_t s1level
    uint8_t s2level
    uint8_t s1perm       # rwx for privileged in bits 0-2, unprivileged in bits 3-5
    uint8_t s2perm
    uint8_t is_global
    uint8_t used

cdef struct Tlb:
    TlbEntry* e
    uint64_t mask
    uint64_t count
    uint64_t capacity    # entries held before the whole TLB is flushed (hardware may evict)
    uint64_t hits
    uint64_t misses

cdef struct SteSlot:
    uint32_t sid
    uint8_t used
    SteCfg cfg

cdef struct CdSlot:
    uint32_t sid
    uint32_t ssid
    uint8_t used
    CdCfg cfg

cdef struct CfgCache:
    SteSlot* stes
    uint64_t ste_mask
    uint64_t ste_count
    CdSlot* cds
    uint64_t cd_mask
    uint64_t cd_count

cdef struct InvSpec:
    int kinds            # bitmask of 1 << TlbKind
    bint match_vmid
    uint32_t vmid
    bint match_asid
    uint16_t asid
    bint keep_global     # TLBI by ASID leaves global entries
    bint match_range
    uint64_t lo
    uint64_t hi          # inclusive
    int level            # -1: any level (TTL=0)
    bint s2level         # compare level against the stage-2 level of the entry

cdef inline uint64_t mix64(uint64_t x) noexcept nogil:
    x ^= x >> 33
    x *= <uint64_t>0xff51afd7ed558ccdULL
    x ^= x >> 33
    x *= <uint64_t>0xc4ceb9fe1a85ec53ULL
    x ^= x >> 33
    return x

cdef inline SteCfg* ste_cache_get(CfgCache* c, uint32_t sid) noexcept nogil:
    cdef uint64_t i = mix64(sid) & c.ste_mask
    while c.stes[i].used:
        if c.stes[i].sid == sid:
            return &c.stes[i].cfg
        i = (i + 1) & c.ste_mask
    return NULL

cdef inline CdCfg* cd_cache_get(CfgCache* c, uint32_t sid, uint32_t ssid) noexcept nogil:
    cdef uint64_t i = mix64((<uint64_t>sid << 32) | ssid) & c.cd_mask
    while c.cds[i].used:
        if c.cds[i].sid == sid and c.cds[i].ssid == ssid:
            return &c.cds[i].cfg
        i = (i + 1) & c.cd_mask
    return NULL

cdef void ste_cache_clear(CfgCache* c) noexcept nogil
cdef void cd_cache_clear(CfgCache* c) noexcept nogil
cdef void ste_cache_put(CfgCache* c, uint32_t sid, SteCfg* cfg) noexcept nogil
cdef void cd_cache_put(CfgCache* c, uint32_t sid, uint32_t ssid, CdCfg* cfg) noexcept nogil
cdef void tlb_clear(Tlb* t) noexcept nogil
cdef void tlb_insert(Tlb* t, TlbEntry* e) noexcept nogil
cdef TlbEntry* tlb_lookup(Tlb* t, int kind, uint32_t vmid, uint16_t asid, uint64_t addr,
                          uint64_t shifts) noexcept nogil
cdef uint64_t tlb_invalidate(Tlb* t, InvSpec* s) noexcept nogil
