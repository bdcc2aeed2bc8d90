# The SMMUv3 translation core: configuration fetch and checks, stage 1 / stage 2 / nested walks,
# the step trace, and the caches a walk consults (config cache, IOTLB). See docs/walk-rules.md.
from libc.stdint cimport uint64_t, uint32_t, uint16_t, uint8_t, int8_t, int32_t
from core_cy.physmem cimport MemCore, PhysMem

cdef enum EventType:
    EVT_NONE = 0
    F_UUT = 0x01
    C_BAD_STREAMID = 0x02
    F_STE_FETCH = 0x03
    C_BAD_STE = 0x04
    F_BAD_ATS_TREQ = 0x05
    F_STREAM_DISABLED = 0x06
    F_TRANSL_FORBIDDEN = 0x07
    C_BAD_SUBSTREAMID = 0x08
    F_CD_FETCH = 0x09
    C_BAD_CD = 0x0A
    F_WALK_EABT = 0x0B
    F_TRANSLATION = 0x10
    F_ADDR_SIZE = 0x11
    F_ACCESS = 0x12
    F_PERMISSION = 0x13
    T_ABORT = 0xFF          # terminated without an event (Config=abort, GBPA.ABORT)

cdef enum:
    CLASS_CD = 0
    CLASS_TT = 1
    CLASS_IN = 2
    CLASS_NONE = 3

cdef enum:
    PERM_R = 1
    PERM_W = 2
    PERM_X = 4

cdef enum StepKind:
    STEP_L1STD = 1
    STEP_STE = 2
    STEP_L1CD = 3
    STEP_CD = 4
    STEP_S1 = 5
    STEP_S2 = 6

cdef enum Outcome:
    OUT_OK = 0           # STE/CD/L1 descriptor read and accepted
    OUT_TABLE = 1
    OUT_BLOCK = 2
    OUT_PAGE = 3
    OUT_INVALID = 4      # descriptor invalid or reserved: translation fault
    OUT_FAULT = 5        # descriptor read but the walk faults here (AF, permission, size, config)
    OUT_EABT = 6         # the read itself aborted

cdef enum CfgKind:
    CFG_ABORT = 0
    CFG_BYPASS = 4
    CFG_S1 = 5
    CFG_S2 = 6
    CFG_NESTED = 7

cdef enum TlbKind:
    TLB_S1 = 1           # stage-1-only (NS-EL1): VMID, ASID/global
    TLB_S2 = 2           # stage-2-only: VMID, keyed by IPA
    TLB_NESTED = 3       # combined stage 1 + stage 2: VMID, ASID/global
    TLB_EL2 = 4          # EL2 stage 1 (STRW=EL2): no VMID, no ASID

cdef struct Caps:
    bint s1p, s2p, cd2l, vmid16, asid16, hyp, had, xnx, stt, ats
    bint gran4k, gran16k, gran64k
    int ttf, ttendian, httu, stall_model, term_model, ssidsize, sidsize, oas_bits

cdef struct Txn:
    uint32_t sid
    uint32_t ssid
    bint ssv
    uint64_t addr
    bint write
    bint instr
    bint priv

cdef struct Fault:
    int type
    bint s2
    int cls
    uint64_t ipa
    uint64_t fetch_addr
    bint record
    bint stall
    int reason            # which check failed, for C_BAD_* (index into REASONS)

cdef struct TTCfg:       # one stage-1 translation table (TTB0 or TTB1)
    bint enabled
    int g                # granule shift 12/14/16
    int vabits
    int start
    uint64_t ttb
    bint tbi
    bint had

cdef struct S1Cfg:
    TTCfg tt[2]
    int ips_bits
    uint16_t asid
    bint affd, record, stall, wxn, uwxn, pan, el2, ha, hd

cdef struct S2Cfg:
    int g
    int start
    int ias
    int ps_bits
    uint64_t ttb
    uint16_t vmid
    bint affd, record, stall, ha, hd

cdef struct SteCfg:      # a decoded, checked STE (what the config cache holds per StreamID)
    int kind
    uint64_t raw[8]
    uint64_t ste_pa
    uint64_t ctxptr
    int s1fmt
    int s1cdmax
    int s1dss
    bint s1stalld
    bint strw_el2
    uint16_t vmid
    S2Cfg s2

cdef struct CdCfg:       # a decoded, checked CD (config cache, per StreamID + SubstreamID)
    uint64_t raw[8]
    uint64_t cd_pa
    S1Cfg s1

cdef struct TraceStep:
    int8_t kind
    int8_t stage
    int8_t level
    int8_t purpose       # for stage-2 steps: CLASS_* of what is being translated
    int8_t outcome
    uint32_t index
    uint64_t in_addr     # address being translated at this step (VA, IPA, or SID/SSID)
    uint64_t table       # table base (IPA for nested stage-1 tables)
    uint64_t desc_ipa    # IPA of the descriptor (nested stage 1, nested CD), else ~0
    uint64_t desc_pa     # PA read
    uint64_t desc        # raw descriptor (first word for STE/CD)

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

cdef struct WalkCtx:
    MemCore* mem
    void* physmem        # PhysMem, for hardware access-flag updates
    Caps caps
    uint64_t strtab_base
    int strtab_fmt
    int strtab_split
    int strtab_log2size
    bint smmuen
    bint gbpa_abort
    bint caching
    Tlb tlb
    SteSlot* stes
    uint64_t ste_mask
    uint64_t ste_count
    CdSlot* cds
    uint64_t cd_mask
    uint64_t cd_count
    TraceStep* trace
    int ntrace
    int trace_cap

cdef struct WalkResult:
    uint64_t out
    uint64_t ipa         # stage-1 output (nested) for display
    int perm             # effective rwx for this transaction's privilege
    int hit              # 1 if the translation came from the IOTLB
    Fault fault

cdef int translate(WalkCtx* c, Txn* t, WalkResult* r) noexcept nogil

cdef class Walker:
    cdef WalkCtx ctx
    cdef PhysMem mem
    cdef TraceStep* trace_buf
    cdef list _strtab
    cdef list _steps(self)
