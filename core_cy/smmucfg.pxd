# SMMUv3 configuration types: capabilities, a transaction, the event a fault becomes, and the
# decoded, checked STE and CD the walker (and its config cache) works from.
from libc.stdint cimport uint64_t, uint32_t, uint16_t
from core_cy.vmsa cimport VmsaCaps, S1Cfg, S2Cfg

cdef struct Caps:
    VmsaCaps v           # what the table walk needs (granules, XNX, HAD, STT, HTTU, OAS)
    bint s1p, s2p, cd2l, vmid16, asid16, hyp, ats
    int ttf, ttendian, stall_model, term_model, ssidsize, sidsize

cdef struct Txn:
    uint32_t sid
    uint32_t ssid
    bint ssv
    uint64_t addr
    bint write
    bint instr
    bint priv

cdef struct Fault:       # an SMMUv3 event (or a silent termination, T_ABORT)
    int type
    bint s2
    int cls
    uint64_t ipa
    uint64_t fetch_addr
    bint record
    bint stall
    int reason            # which check failed, for C_BAD_* (index into REASONS)

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
    bint s2_record, s2_stall

cdef struct CdCfg:       # a decoded, checked CD (config cache, per StreamID + SubstreamID)
    uint64_t raw[8]
    uint64_t cd_pa
    S1Cfg s1
    bint record, stall
