# Hand-written constants (SMMUv3 codes and VMSAv8-64 encodings), gathered here so that replacing
# them by generated ones (from the field tables) is a one-file change: event codes, CLASS values, reason codes for illegal
# configurations (REASONS in walk.pyx holds their text, in the same order), STE.Config kinds,
# configuration trace steps, and the PS / TG encodings.
from libc.stdint cimport uint64_t

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

# Event CLASS: same values as wtypes.Purpose.
cdef enum:
    CLASS_CD = 0
    CLASS_TT = 1
    CLASS_IN = 2
    CLASS_NONE = 3

# Configuration steps of the trace (wtypes has the page-table steps, 5..7).
cdef enum:
    STEP_L1STD = 1
    STEP_STE = 2
    STEP_L1CD = 3
    STEP_CD = 4

# STE.Config
cdef enum CfgKind:
    CFG_ABORT = 0
    CFG_BYPASS = 4
    CFG_S1 = 5
    CFG_S2 = 6
    CFG_NESTED = 7

# Output addresses in descriptors and table pointers: bits [47:granule] (no LPA/LPA2).
cdef enum:
    OA_BITS = 48

# Why a configuration is illegal: indexes into REASONS (walk.pyx). Keep the two in step.
cdef enum Reason:
    R_NONE = 0
    R_STE_V
    R_STE_S1P
    R_STE_S2P
    R_STE_CD2L
    R_STE_CDMAX
    R_STE_S1STALLD
    R_STE_STRW
    R_STE_STRW_EL2
    R_STE_S2AA64
    R_STE_S2ENDI
    R_STE_S2TG
    R_STE_S2PS
    R_STE_S2S
    R_STE_S2HTTU
    R_STE_VMID16
    R_STE_S2SL0
    R_STE_S2T0SZ
    R_STE_S2TTB
    R_STE_EATS
    R_STE_CTXPTR
    R_L1CD_RANGE
    R_SSID0_DISABLED
    R_SID_RANGE
    R_L1STD_SPAN
    R_L2_INDEX
    R_SSV_NO_S1
    R_SSV_CDMAX0
    R_SSID_RANGE
    R_SSID0_S1DSS
    R_L1CD_V
    R_CD_V
    R_CD_AA64
    R_CD_ENDI
    R_CD_HTTU
    R_CD_ASID16
    R_CD_IPS
    R_CD_A_TERM
    R_CD_S_STALL
    R_CD_S_STALLD
    R_CD_TG
    R_CD_TSZ
    R_CD_TTB
    R_S1DSS_TERMINATE
    R_STE_ABORT
    R_GBPA_ABORT
    R_BYPASS_OAS

cdef inline int ps_bits(uint64_t enc) noexcept nogil:
    """IDR5.OAS / CD.IPS / STE.S2PS encoding to bits."""
    if enc == 0: return 32
    if enc == 1: return 36
    if enc == 2: return 40
    if enc == 3: return 42
    if enc == 4: return 44
    if enc == 5: return 48
    if enc == 6: return 52
    return 56

cdef inline int tg0_shift(uint64_t tg) noexcept nogil:
    """CD.TG0 / STE.S2TG: 0 4K, 1 64K, 2 16K; 0 for reserved."""
    if tg == 0: return 12
    if tg == 1: return 16
    if tg == 2: return 14
    return 0

cdef inline int tg1_shift(uint64_t tg) noexcept nogil:
    """CD.TG1 has its own encoding: 1 16K, 2 4K, 3 64K."""
    if tg == 1: return 14
    if tg == 2: return 12
    if tg == 3: return 16
    return 0
