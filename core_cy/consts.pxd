# What the SMMUv3 core uses that no format's field encodes; everything that is a field value, a
# code, a reason or a mask comes from the field tables (core_cy/_smmuv3.pxd, cimported here so
# one cimport gives both). Each constant below says why it is not in the tables.
from core_cy._smmuv3 cimport *

cdef enum:
    # Fault.type when there is no event: 0 is not an event code (IHI 0070 7.3 starts at 0x01).
    EVT_NONE = 0
    # Fault.type of a transaction terminated without an event (STE.Config=abort, GBPA.ABORT):
    # a pseudo-code of this model (walk.pyx shows it as "ABORT"), 0xFF is not an event code.
    T_ABORT = 0xFF

# Configuration steps of the trace, the trace's own kinds (wtypes has the page-table steps, 5..7).
cdef enum:
    STEP_L1STD = 1
    STEP_STE = 2
    STEP_L1CD = 3
    STEP_CD = 4

# Table geometry (IHI 0070 5.1, 5.2, 6.3.25): sizes of arrays, not field encodings; the Python
# layers have the same in smmudbg/arch/smmuv3/geometry.py; smmuv3.pyx checks them against the
# field tables' structure sizes (STE_BYTES, L1STD_BYTES, ...) at import.
cdef enum:
    STE_LOG2 = 6           # an STE, and a CD, is 64 bytes
    L1_LOG2 = 3            # an L1STD, and an L1CD, is 8 bytes
    MAX_SPAN = 11          # L1STD.Span 1..11: 2^(Span-1) STEs; 12..31 reserved
    CD_LEAF_4K = 6         # S1Fmt=2lvl_4k: a leaf CD array holds 2^6 CDs (4KB)
    CD_LEAF_64K = 10       # S1Fmt=2lvl_64k: 2^10 CDs (64KB)

# The stages an STE.Config enables (IHI 0070 5.2: Config[0] stage 1, Config[1] stage 2, for the
# translating values 0b1xx): bit 0 stage 1, bit 1 stage 2, as translate() combines them.
cdef inline int config_stages(int cfg) noexcept nogil:
    if cfg == STE_Config_s1_trans:
        return 1
    if cfg == STE_Config_s2_trans:
        return 2
    if cfg == STE_Config_nested:
        return 3
    return 0
