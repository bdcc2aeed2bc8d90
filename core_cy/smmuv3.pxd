# The SMMUv3 configuration layer: stream table (linear, 2-level), STE decode and checks, CD fetch
# (linear, 2-level, through stage 2 when nested) and checks, SubstreamID rules, and translate(),
# which runs the VMSAv8-64 walks (core_cy.vmsa) and turns their faults into SMMUv3 events.
from libc.stdint cimport uint64_t, uint32_t
from core_cy.wtypes cimport WalkResult, WalkFault
from core_cy.vmsa cimport VmsaEnv
from core_cy.smmucfg cimport Caps, Txn, Fault, SteCfg, CdCfg
from core_cy.caches cimport Tlb, CfgCache

cdef struct WalkCtx:
    VmsaEnv env          # table address space, walk capabilities (= caps.v), trace, dry
    Caps caps
    uint64_t strtab_base
    int strtab_fmt
    int strtab_split
    int strtab_log2size
    bint smmuen
    bint gbpa_abort
    bint caching
    Tlb tlb
    CfgCache cfg

cdef struct SteLoc:      # where an STE was read from
    uint64_t table       # the linear table, or the L2 array (2-level)
    uint64_t index       # index in that table
    uint64_t l1_pa       # 2-level: the L1STD read (else NOADDR)
    uint64_t l1
    uint64_t pa          # the STE (NOADDR if not reached)

cdef struct CdLoc:       # where a CD was read from (addresses in the table space; IPAs if nested)
    uint64_t table       # the linear CD table, or the L2 CD table (2-level)
    uint64_t index
    uint64_t l1_ipa      # 2-level: the L1CD (else NOADDR)
    uint64_t l1_pa
    uint64_t l1
    uint64_t cd_ipa      # the CD (IPA when nested, else equal to cd_pa)
    uint64_t cd_pa

cdef int decode_ste(WalkCtx* c, uint64_t* w, SteCfg* s) noexcept nogil
cdef int decode_cd(WalkCtx* c, SteCfg* ste, uint64_t* w, CdCfg* d) noexcept nogil
cdef int read_ste(WalkCtx* c, uint32_t sid, SteCfg* out, SteLoc* loc, Fault* f) noexcept nogil
cdef int read_cd(WalkCtx* c, SteCfg* ste, uint32_t ssid, CdCfg* out, CdLoc* loc,
                 Fault* f) noexcept nogil
cdef int stream_stages(WalkCtx* c, Txn* t, SteCfg* ste, uint32_t* ssid, Fault* f) noexcept nogil
cdef int translate(WalkCtx* c, Txn* t, WalkResult* r, Fault* f) noexcept nogil
