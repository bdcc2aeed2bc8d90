# Types every IOMMU walker shares (the SMMUv3 core now, Intel VT-d later): the walk's fault
# record, the trace step and the walk result. Nothing here names an SMMU structure or event:
# each IOMMU layer turns a WalkFault into its own fault record (SMMUv3: an event; VT-d: a fault
# reason), as QEMU's smmu-common.c walk hands a small record to smmuv3.c.
from libc.stdint cimport uint64_t, uint32_t, int8_t

cdef extern from *:
    """
    #define SMMUDBG_ALL1 0xFFFFFFFFFFFFFFFFULL
    """
    const uint64_t ALL1 "SMMUDBG_ALL1"
    const uint64_t NOADDR "SMMUDBG_ALL1"     # no address (not read, not applicable)

# What a page-table walk can report (Arm ARM VMSAv8-64 fault kinds, and x86's reserved-bit fault).
cdef enum WalkFaultKind:
    WF_NONE = 0
    WF_TRANSLATION = 1   # invalid/reserved descriptor, input beyond the range
    WF_ADDR_SIZE = 2     # output or next-table address beyond the output size
    WF_ACCESS = 3        # AF=0 and no hardware update
    WF_PERMISSION = 4
    WF_EABT = 5          # the read of a table descriptor aborted (fetch_addr says where)
    WF_RESERVED = 6      # reserved bits set in a present entry (x86 paging, VT-d; Arm reports
                         # these as translation faults)

# Why an address is being translated (a stage-2 walk reports it; SMMUv3 CLASS uses the values).
cdef enum Purpose:
    PUR_CFG = 0          # a configuration structure (context descriptor, ...)
    PUR_TT = 1           # a stage-1 translation-table descriptor
    PUR_IN = 2           # the transaction's own input address
    PUR_NONE = 3

cdef enum:
    PERM_R = 1
    PERM_W = 2
    PERM_X = 4
    PERM_WCLEAN = 64     # with the perm bits: a writable-clean leaf (HTTU dirty state), not to
                         # be cached until dirty so a later write still updates it (IHI 0070 3.13.3)

cdef enum:
    STEP_S1 = 5          # values below 5 are the IOMMU layer's own configuration steps
    STEP_S2 = 6
    STEP_TLB = 7

cdef enum Outcome:
    OUT_OK = 0           # a configuration structure or L1 descriptor read and accepted
    OUT_TABLE = 1
    OUT_BLOCK = 2
    OUT_PAGE = 3
    OUT_INVALID = 4      # descriptor invalid or reserved: translation fault
    OUT_FAULT = 5        # descriptor read but the walk faults here (AF, permission, size, config)
    OUT_EABT = 6         # the read itself aborted
    OUT_CACHED = 7       # served from a cache

cdef struct WalkFault:
    int kind             # WF_*
    int stage            # 1 or 2
    int level            # -1 when before any table (input range)
    int purpose          # Purpose of the faulting translation
    uint64_t ipa         # stage-2 faults: the IPA being translated
    uint64_t fetch_addr  # WF_EABT: the address read, else NOADDR

cdef struct TraceStep:
    int8_t kind
    int8_t stage
    int8_t level
    int8_t purpose       # for stage-2 steps: Purpose of what is being translated
    int8_t outcome
    uint32_t index
    uint64_t in_addr     # address being translated at this step (VA, IPA, or an ID)
    uint64_t table       # table base (IPA for nested stage-1 tables)
    uint64_t desc_ipa    # IPA of the descriptor (nested stage 1, nested config), else NOADDR
    uint64_t desc_pa     # PA read
    uint64_t desc        # raw descriptor (first word of a configuration structure)

cdef struct Trace:       # buf == NULL: not tracing
    TraceStep* buf
    int n
    int cap

cdef struct WalkResult:
    uint64_t out
    uint64_t ipa         # stage-1 output (nested) for display
    int perm             # effective rwx for this transaction's privilege
    int hit              # 1 if the translation came from the IOTLB
    WalkFault fault      # the page-table walk's fault (kind WF_NONE if the walk did not fault)

cdef inline uint64_t lowmask(int bits) noexcept nogil:
    if bits >= 64:
        return ALL1
    return (<uint64_t>1 << bits) - 1

cdef inline void trace_add(Trace* tr, int kind, int stage, int level, int purpose, int outcome,
                           uint32_t index, uint64_t in_addr, uint64_t table, uint64_t desc_ipa,
                           uint64_t desc_pa, uint64_t desc) noexcept nogil:
    cdef TraceStep* s
    if tr.buf == NULL or tr.n >= tr.cap:
        return
    s = &tr.buf[tr.n]
    tr.n += 1
    s.kind = kind
    s.stage = stage
    s.level = level
    s.purpose = purpose
    s.outcome = outcome
    s.index = index
    s.in_addr = in_addr
    s.table = table
    s.desc_ipa = desc_ipa
    s.desc_pa = desc_pa
    s.desc = desc

cdef inline void trace_outcome(Trace* tr, int outcome) noexcept nogil:
    if tr.buf != NULL and tr.n > 0 and tr.n <= tr.cap:
        tr.buf[tr.n - 1].outcome = outcome

cdef inline void wfault(WalkFault* f, int kind, int stage, int level, int purpose, uint64_t ipa,
                        uint64_t fetch) noexcept nogil:
    f.kind = kind
    f.stage = stage
    f.level = level
    f.purpose = purpose
    f.ipa = ipa
    f.fetch_addr = fetch
