# The Intel VT-d translation core (scalable mode): RID -> root entry -> scalable-mode context
# entry -> PASID directory -> PASID table entry -> first stage, second stage, nested or
# pass-through. The paging walks report the shared wtypes.WalkFault; translate() turns it into a
# VT-d fault record with the architected fault reason (VT-d 7.1.3). Rules: docs/vtd.md.
from libc.stdint cimport uint64_t, uint32_t, uint8_t
from core_cy.wtypes cimport WalkFault, Trace
from core_cy.vmsa cimport AddrSpace

# Configuration steps of the trace (wtypes has the paging steps: STEP_S1 = first stage, STEP_S2 =
# second stage).
cdef enum:
    VSTEP_ROOT = 1
    VSTEP_CONTEXT = 2
    VSTEP_PASID_DIR = 3
    VSTEP_PASID_ENTRY = 4

# What became of a request.
cdef enum VtdKind:
    VK_TRANSLATED = 0
    VK_FAULT = 1
    VK_NOT_REMAPPED = 2  # GSTS_REG.TES=0: DMA is not remapped
    VK_INTERRUPT = 3     # a write without PASID to 0xFEEx_xxxx: an interrupt request
    VK_BLOCKED = 4       # no fault recorded: abort-DMA mode, a read of the interrupt range
    VK_UNSUPPORTED = 5   # legacy mode (TTM=00b) without PASID: not modeled

cdef struct VtdUnit:     # the registers the walk reads, and the platform's host address width
    uint64_t cap, ecap, gsts, rtaddr, irta
    int haw

cdef struct VtdTxn:
    uint32_t sid         # requester ID: bus << 8 | devfn
    bint pv              # the request carries a PASID
    uint32_t pasid
    uint64_t addr
    bint write, exe, priv
    int at               # 0 untranslated, 1 translation request

cdef struct VtdFault:
    int reason           # VtdFaultReason (0: no fault)
    bint qualified       # FPD can suppress it
    bint recorded        # not suppressed by an FPD bit
    uint64_t fi          # FRCD_REG.FI: the page address of the request
    int start            # the start level of the paging walk that faulted
    int fs_level         # nested: the first-stage level whose table fetch faulted at the second
    int fs_start         #   stage (0: none), and the first stage's start level
    int missing          # WF_PERMISSION: the PERM_* bits that were missing (PERM_R at the first
                         #   stage: a user request to a supervisor page)
    WalkFault walk       # the paging walk's record (kind WF_NONE: a configuration fault)

cdef struct VtdCfg:      # what the configuration path read (addresses are host PAs)
    uint64_t root_pa, root
    uint64_t ctx_pa
    uint64_t ctx[4]
    uint64_t dir_pa, pde
    uint64_t pe_pa
    uint64_t pe[8]
    uint32_t pasid       # the PASID used (the request's, or RID_PASID)
    int pgtt
    bint fpd, priv
    int reached          # 0 nothing, 1 root, 2 context, 3 PASID directory, 4 PASID entry

cdef struct VtdResult:
    int kind             # VtdKind
    uint64_t out
    uint64_t gpa         # the first-stage output (nested), else NOADDR
    int shift            # log2 of the translation's size
    int perm             # PERM_R/W/X as granted to this request's privilege
    int pgtt
    uint32_t did, pasid
    bint snoop
    int nad              # A/D flag writes made (or, dry, that would be made)
    bint hit             # served from the IOTLB

cdef struct AdPend:      # an accessed/dirty update the translation makes when it succeeds
    uint64_t pa
    uint64_t bits
    int stage

# Caches (VT-d 6.2): direct-mapped, so an entry may be evicted at any time (hardware may drop
# cached entries); only a missing invalidation leaves one stale.
cdef struct CtxSlot:     # context-cache: a context entry by source-id
    bint valid
    uint32_t sid
    uint64_t root_pa, root, ctx_pa
    uint64_t ctx[4]

cdef struct PasidSlot:   # PASID-cache: a PASID table entry by source-id and PASID, tagged DID
    bint valid
    uint32_t sid, pasid
    uint32_t did
    uint64_t dir_pa, pde, pe_pa
    uint64_t pe[8]

cdef struct TlbSlot:     # IOTLB: a translation tagged with DID and PASID
    bint valid
    bint pv              # filled by a request with PASID (else RID_PASID)
    uint32_t did, pasid, sid
    int pgtt
    uint64_t in_base, out_base, gpa_base
    int shift
    int perm             # PERM_* for the privilege it was filled with
    bint priv
    bint dirty           # filled by a write (first-stage D set): a write may hit it
    bint snoop

cdef struct PscSlot:     # paging-structure caches (VT-d 6.2.5): a non-leaf entry, tagged DID
    bint valid           #   (second stage), DID and PASID (first stage) and the input address
    int stage            #   bits above the level's shift. 1: first stage, 2: second stage.
    int level            # the entry's level: 5 PML5E, 4 PML4E, 3 PDPE, 2 PDE
    int levels           # the paging mode (levels) of the walk that made it
    bint nested          # a first-stage entry of a nested walk (next is a GPA)
    uint32_t did, pasid
    uint64_t tag         # input address >> the level's shift
    uint64_t table       # the table that holds the entry (a GPA: nested first stage)
    uint64_t entry_pa, entry
    uint64_t next        # the next table's address
    int r, w, x          # permissions accumulated down to this entry: second stage R/W/X,
                         #   first stage U/S, R/W, XD

cdef struct IecSlot:     # interrupt entry cache (VT-d 6.2.6): an IRTE by interrupt index
    bint valid
    uint32_t index
    uint64_t irte_pa
    uint64_t irte[2]

cdef struct VtdCaches:
    CtxSlot* ctx
    PasidSlot* pc
    TlbSlot* tlb
    PscSlot* psc
    IecSlot* iec
    uint32_t ctx_mask, pc_mask, tlb_mask, psc_mask, iec_mask
    uint64_t hits, misses

cdef struct VtdCtx:
    AddrSpace space      # where every structure and table is read from (host PA)
    VtdUnit unit
    Trace trace
    bint dry             # no A/D writes, no cache lookup or fill
    bint caching
    VtdCaches cache

cdef int vtd_config(VtdCtx* c, VtdTxn* t, VtdCfg* g, VtdFault* f) noexcept nogil
cdef int vtd_translate(VtdCtx* c, VtdTxn* t, VtdResult* r, VtdFault* f) noexcept nogil

cdef struct VtdIrq:      # an interrupt request after remapping (VT-d 5.1)
    bint ok, remapped, posted
    bint remappable      # handled in remappable format (IRES=1 and the request's IF=1)
    bint has_index
    uint32_t index
    uint64_t irte_pa
    uint64_t irte[2]
    int vector, dest_mode, delivery, trigger, rh, urgent
    uint32_t dest
    uint64_t pda
    bint cached          # the IRTE came from the interrupt entry cache

cdef int vtd_remap(VtdCtx* c, uint32_t sid, uint64_t addr, uint32_t data, VtdIrq* o,
                   VtdFault* f) noexcept nogil
