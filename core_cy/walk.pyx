# cython: language_level=3
"""The SMMUv3 translation core (one walker; tracing is a flag, not a second implementation).

Rules: docs/walk-rules.md. Field positions come from core_cy/_fields.pxd, generated from the
field tables in smmudbg/arch/smmuv3/fields.py.
"""
cimport numpy as cnp
import numpy as np
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset
from libc.stdint cimport uint64_t, uint32_t, uint16_t, uint8_t, int8_t, int64_t
from core_cy.physmem cimport (MemCore, PhysMem, mc_read64, mc_read_block, PAGE_SHIFT)
from core_cy._fields cimport *

cnp.import_array()

cdef uint64_t ALL1 = <uint64_t>0xFFFFFFFFFFFFFFFFULL
cdef uint64_t NOADDR = ALL1

# Why a configuration is illegal: indexes into REASONS (Python, below). Keep the two in step.
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

REASONS = [
    "",
    "STE.V=0",
    "stage 1 enabled (Config) but SMMU_IDR0.S1P=0",
    "stage 2 enabled (Config) but SMMU_IDR0.S2P=0",
    "STE.S1Fmt selects a 2-level CD table but SMMU_IDR0.CD2L=0",
    "STE.S1CDMax exceeds SMMU_IDR1.SSIDSIZE",
    "STE.S1STALLD=1 but SMMU_IDR0.STALL_MODEL is not 0b00",
    "STE.STRW is reserved (0b01/0b11) for a Non-secure stream",
    "STE.STRW=EL2 but SMMU_IDR0.HYP=0",
    "STE.S2AA64=0 (AArch32 stage 2 tables are not supported: SMMU_IDR0.TTF)",
    "STE.S2ENDI=1 but SMMU_IDR0.TTENDIAN is little-endian only",
    "STE.S2TG is reserved or the granule is not supported by SMMU_IDR5",
    "STE.S2PS is reserved",
    "STE.S2S does not match SMMU_IDR0.STALL_MODEL",
    "STE.S2HA/S2HD set but SMMU_IDR0.HTTU does not support it",
    "STE.S2VMID[15:8] is nonzero but SMMU_IDR0.VMID16=0",
    "STE.S2SL0 is not a valid starting level for S2TG and the PA size",
    "STE.S2T0SZ is inconsistent with S2SL0/S2TG or exceeds the PA size",
    "STE.S2TTB is beyond the effective S2PS",
    "STE.EATS is illegal for this configuration (S1CHK without nesting, or with S2S=1)",
    "STE.S1ContextPtr is beyond the address size",
    "L1CD.L2Ptr is beyond the address size",
    "SubstreamID 0 given with STE.S1DSS=substream0",
    "StreamID is beyond SMMU_STRTAB_BASE_CFG.LOG2SIZE / SMMU_IDR1.SIDSIZE",
    "L1STD.Span is 0 (invalid) or reserved",
    "StreamID's L2 index is beyond L1STD.Span",
    "SubstreamID given but stage 1 is not enabled in the STE",
    "SubstreamID given but STE.S1CDMax=0",
    "SubstreamID is beyond STE.S1CDMax",
    "SubstreamID 0 given with STE.S1DSS=substream0",
    "L1CD.V=0",
    "CD.V=0",
    "CD.AA64=0 (AArch32 stage 1 tables are not supported: SMMU_IDR0.TTF)",
    "CD.ENDI=1 but SMMU_IDR0.TTENDIAN is little-endian only",
    "CD.HA/HD set but SMMU_IDR0.HTTU does not support it",
    "CD.ASID[15:8] is nonzero but SMMU_IDR0.ASID16=0",
    "CD.IPS is reserved",
    "CD.A=0 but SMMU_IDR0.TERM_MODEL=1",
    "CD.S does not match SMMU_IDR0.STALL_MODEL",
    "CD.S=1 with STE.S1STALLD=1",
    "CD.TG0/TG1 is reserved or the granule is not supported by SMMU_IDR5",
    "CD.T0SZ/T1SZ is out of range",
    "CD.TTB0/TTB1 is beyond the effective IPS",
    "no SubstreamID and STE.S1DSS=terminate",
    "STE.Config=abort",
    "SMMUEN=0 and SMMU_GBPA.ABORT=1",
    "SMMUEN=0 and the address is beyond the OAS",
]

STEP_NAMES = {STEP_L1STD: "L1STD", STEP_STE: "STE", STEP_L1CD: "L1CD", STEP_CD: "CD",
              STEP_S1: "S1", STEP_S2: "S2", 7: "TLB"}
OUTCOMES = {OUT_OK: "ok", OUT_TABLE: "table", OUT_BLOCK: "block", OUT_PAGE: "page",
            OUT_INVALID: "invalid", OUT_FAULT: "fault", OUT_EABT: "abort", 7: "cached"}
CLASSES = {CLASS_CD: "CD", CLASS_TT: "TT", CLASS_IN: "IN", CLASS_NONE: None}
EVENT_NAMES = {
    0x01: "F_UUT", 0x02: "C_BAD_STREAMID", 0x03: "F_STE_FETCH", 0x04: "C_BAD_STE",
    0x05: "F_BAD_ATS_TREQ", 0x06: "F_STREAM_DISABLED", 0x07: "F_TRANSL_FORBIDDEN",
    0x08: "C_BAD_SUBSTREAMID", 0x09: "F_CD_FETCH", 0x0A: "C_BAD_CD", 0x0B: "F_WALK_EABT",
    0x10: "F_TRANSLATION", 0x11: "F_ADDR_SIZE", 0x12: "F_ACCESS", 0x13: "F_PERMISSION",
    0xFF: "ABORT",
}
EVENT_CODES = {v: k for k, v in EVENT_NAMES.items()}
cdef enum:
    STEP_TLB = 7
    OUT_CACHED = 7

# ---------------------------------------------------------------------------------------------
# Small architectural helpers
# ---------------------------------------------------------------------------------------------

cdef inline int ps_bits(uint64_t enc) noexcept nogil:
    """IDR5.OAS / CD.IPS / STE.S2PS encoding to bits; 0 for reserved encodings."""
    if enc == 0: return 32
    if enc == 1: return 36
    if enc == 2: return 40
    if enc == 3: return 42
    if enc == 4: return 44
    if enc == 5: return 48
    if enc == 6: return 52
    return 56

cdef inline int tg0_shift(uint64_t tg) noexcept nogil:
    """CD.TG0 / STE.S2TG: 0 4K, 1 64K, 2 16K."""
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

cdef inline bint gran_ok(Caps* k, int g) noexcept nogil:
    return (g == 12 and k.gran4k) or (g == 14 and k.gran16k) or (g == 16 and k.gran64k)

cdef inline int level_shift(int g, int level) noexcept nogil:
    return g + (3 - level) * (g - 3)

cdef inline int block_min_level(int g) noexcept nogil:
    # Without LPA/LPA2: 4K blocks at levels 1-2, 16K and 64K at level 2 only.
    return 1 if g == 12 else 2

cdef inline uint64_t lowmask(int bits) noexcept nogil:
    if bits >= 64:
        return ALL1
    return (<uint64_t>1 << bits) - 1

cdef inline int cap_pa(int bits, int g) noexcept nogil:
    # 52-bit output needs LPA (64K) or LPA2; without them the usable size is 48 bits.
    if bits > 48 and g != 16:
        return 48
    return bits

cdef inline void set_fault(Fault* f, int typ, bint s2, int cls, uint64_t ipa, uint64_t fetch,
                           bint record, bint stall, int reason) noexcept nogil:
    f.type = typ
    f.s2 = s2
    f.cls = cls
    f.ipa = ipa
    f.fetch_addr = fetch
    f.record = record
    f.stall = stall
    f.reason = reason

cdef inline void cfg_fault(Fault* f, int typ, int reason) noexcept nogil:
    set_fault(f, typ, False, CLASS_NONE, 0, NOADDR, typ != T_ABORT, False, reason)

cdef inline void trace_add(WalkCtx* c, int kind, int stage, int level, int purpose, int outcome,
                           uint32_t index, uint64_t in_addr, uint64_t table, uint64_t desc_ipa,
                           uint64_t desc_pa, uint64_t desc) noexcept nogil:
    cdef TraceStep* s
    if c.trace == NULL or c.ntrace >= c.trace_cap:
        return
    s = &c.trace[c.ntrace]
    c.ntrace += 1
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

cdef inline void trace_outcome(WalkCtx* c, int outcome) noexcept nogil:
    if c.trace != NULL and c.ntrace > 0 and c.ntrace <= c.trace_cap:
        c.trace[c.ntrace - 1].outcome = outcome

# ---------------------------------------------------------------------------------------------
# STE and CD decode + architected checks
# ---------------------------------------------------------------------------------------------

cdef int s2_geometry(Caps* k, uint64_t* w, S2Cfg* s2) noexcept nogil:
    """Fill s2 from STE words; return a Reason (R_NONE if legal).

    Arm ARM AArch64.S2InvalidSL / S2InconsistentSL with PAMax = IDR5.OAS, and IHI 0070
    STES2T0SZInvalid: S2T0SZ >= MAX(16, 64 - IAS), IAS = OAS (AArch64-only tables)."""
    cdef int g = tg0_shift(STE_S2TG(w))
    cdef int stride, sl0, start, levels, mn, mx, ps, ias, tszmax, tsz
    if g == 0 or not gran_ok(k, g):
        return R_STE_S2TG
    ps = ps_bits(STE_S2PS(w))
    if ps > k.oas_bits:
        ps = k.oas_bits
    stride = g - 3
    sl0 = <int>STE_S2SL0(w)
    if g == 12:
        if sl0 == 3:
            if not k.stt:
                return R_STE_S2SL0
            start = 3
        else:
            start = 2 - sl0
        if sl0 == 2 and k.oas_bits < 44:
            return R_STE_S2SL0
    else:
        if sl0 == 3:
            return R_STE_S2SL0
        start = 3 - sl0
        if sl0 == 2 and k.oas_bits < (42 if g == 14 else 44):
            return R_STE_S2SL0
    tsz = <int>STE_S2T0SZ(w)
    tszmax = (47 if g == 16 else 48) if k.stt else 39
    if tsz > tszmax or tsz < 16 or tsz < 64 - k.oas_bits:
        return R_STE_S2T0SZ
    ias = 64 - tsz
    levels = 3 - start
    mn = levels * stride + g + 1
    mx = mn + stride - 1 + 4
    if ias < mn or ias > mx:
        return R_STE_S2T0SZ
    s2.g = g
    s2.start = start
    s2.ias = ias
    s2.ps_bits = ps
    s2.ttb = STE_S2TTB_raw(w)
    if s2.ttb >> cap_pa(ps, g):
        return R_STE_S2TTB
    # The concatenated initial table is aligned to its own size.
    s2.ttb &= ~lowmask(3 + ias - level_shift(g, start))
    s2.vmid = <uint16_t>STE_S2VMID(w)
    s2.affd = STE_S2AFFD(w) != 0
    s2.stall = STE_S2S(w) != 0
    # IHI 0070 5.5: a fault that stalls is always recorded.
    s2.record = STE_S2R(w) != 0 or s2.stall
    s2.ha = STE_S2HA(w) != 0 and k.httu >= 1
    s2.hd = s2.ha and STE_S2HD(w) != 0 and k.httu >= 2     # {S2HA,S2HD}=0b01 acts as 0b00
    return R_NONE


cdef int decode_ste(WalkCtx* c, uint64_t* w, SteCfg* s) noexcept nogil:
    """Decode and check an STE; returns a Reason (R_NONE, R_STE_ABORT, or why it is illegal)."""
    cdef Caps* k = &c.caps
    cdef int cfg, r
    cdef bint s1, s2, strw_used
    memcpy(s.raw, w, 64)
    if STE_V(w) == 0:
        return R_STE_V
    cfg = <int>STE_Config(w)
    if cfg < 4:
        s.kind = CFG_ABORT
        return R_STE_ABORT
    s.kind = cfg
    s1 = (cfg & 1) != 0
    s2 = (cfg & 2) != 0
    if s1 and not k.s1p:
        return R_STE_S1P
    if s2 and not k.s2p:
        return R_STE_S2P
    s.vmid = <uint16_t>STE_S2VMID(w) if k.s2p else 0
    # STRW is only used for a stage-1-only STE on an SMMU with stage 1 and Hyp; otherwise it is
    # IGNORED and the StreamWorld is NS-EL1 (IHI 0070 5.2 STRW).
    strw_used = cfg == CFG_S1 and k.hyp
    s.strw_el2 = strw_used and STE_STRW(w) == 2
    if strw_used and (STE_STRW(w) & 1):
        return R_STE_STRW
    # S2VMID is checked wherever it tags translations: every translating STE on an SMMU with
    # stage 2, except stage-1-only EL2 streams (IgnoreSTES2VMID).
    if k.s2p and not k.vmid16 and (STE_S2VMID(w) >> 8) and not s.strw_el2:
        return R_STE_VMID16
    if k.ats and cfg != CFG_BYPASS:
        if STE_EATS(w) == 2 and (cfg != CFG_NESTED or STE_S2S(w)):
            return R_STE_EATS
        if STE_EATS(w) == 1 and STE_S2S(w) and s2:
            return R_STE_EATS
    if s1:
        # S1CDMax and S1Fmt are IGNORED when IDR1.SSIDSIZE == 0; S1Fmt also when S1CDMax == 0.
        s.s1cdmax = <int>STE_S1CDMax(w) if k.ssidsize else 0
        if s.s1cdmax > k.ssidsize:
            return R_STE_CDMAX
        s.s1fmt = <int>STE_S1Fmt(w) if s.s1cdmax else 0
        if s.s1fmt == 3:
            s.s1fmt = 0
        if s.s1fmt != 0 and not k.cd2l:
            return R_STE_CD2L
        s.s1stalld = STE_S1STALLD(w) != 0
        if s.s1stalld and k.stall_model != 0:
            return R_STE_S1STALLD
        s.s1dss = <int>STE_S1DSS(w)
        s.ctxptr = STE_S1ContextPtr_raw(w)
        # S1ContextPtr must lie within the OAS (a PA) or the IAS (an IPA; IAS = OAS here).
        if s.ctxptr >> k.oas_bits:
            return R_STE_CTXPTR
    if s2:
        if STE_S2AA64(w) == 0:
            return R_STE_S2AA64
        if (k.ttendian == 2 and STE_S2ENDI(w)) or (k.ttendian == 3 and not STE_S2ENDI(w)):
            return R_STE_S2ENDI
        if (STE_S2HA(w) and k.httu < 1) or (STE_S2HD(w) and k.httu < 2):
            return R_STE_S2HTTU
        if (STE_S2S(w) and k.stall_model == 1) or (not STE_S2S(w) and k.stall_model == 2):
            return R_STE_S2S
        r = s2_geometry(k, w, &s.s2)
        if r != R_NONE:
            return r
    return R_NONE


cdef int tt_setup(Caps* k, TTCfg* tt, int g, int tsz, uint64_t ttb, bint tbi, bint had,
                  int ips) noexcept nogil:
    cdef int maxtsz
    if g == 0 or not gran_ok(k, g):
        return R_CD_TG
    maxtsz = 39
    if k.stt:
        maxtsz = 47 if g == 16 else 48
    if tsz < 16 or tsz > maxtsz:
        return R_CD_TSZ
    tt.enabled = True
    tt.g = g
    tt.vabits = 64 - tsz
    # start = 4 - ceil((vabits - g) / stride)
    tt.start = 4 - (tt.vabits - g + (g - 3) - 1) // (g - 3)
    if ttb >> cap_pa(ips, g):
        return R_CD_TTB
    tt.ttb = ttb & ~lowmask(3 + tt.vabits - level_shift(g, tt.start))
    tt.tbi = tbi
    tt.had = had and k.had
    return R_NONE


cdef int decode_cd(WalkCtx* c, SteCfg* ste, uint64_t* w, CdCfg* d) noexcept nogil:
    cdef Caps* k = &c.caps
    cdef S1Cfg* s = &d.s1
    cdef int r, ips
    cdef bint epd0, epd1
    memcpy(d.raw, w, 64)
    memset(s, 0, sizeof(S1Cfg))
    if CD_V(w) == 0:
        return R_CD_V
    if CD_AA64(w) == 0:
        return R_CD_AA64
    s.el2 = ste.strw_el2
    # EL2 (E2H=0) has one VA range: EPD0/EPD1 are IGNORED (0) and there is no TTB1.
    epd0 = CD_EPD0(w) != 0 and not s.el2
    epd1 = CD_EPD1(w) != 0 or s.el2
    if not (epd0 and epd1):
        if (k.ttendian == 2 and CD_ENDI(w)) or (k.ttendian == 3 and not CD_ENDI(w)):
            return R_CD_ENDI
    if (CD_HA(w) and k.httu < 1) or (CD_HD(w) and k.httu < 2):
        return R_CD_HTTU
    if (CD_ASID(w) >> 8) and not k.asid16 and not s.el2:
        return R_CD_ASID16
    ips = ps_bits(CD_IPS(w))
    if ips > k.oas_bits:
        ips = k.oas_bits
    if CD_A(w) == 0 and k.term_model == 1:
        return R_CD_A_TERM
    if (CD_S(w) and k.stall_model == 1) or (not CD_S(w) and k.stall_model == 2):
        return R_CD_S_STALL
    if CD_S(w) and ste.s1stalld:
        return R_CD_S_STALLD
    s.ips_bits = ips
    if not epd0:
        r = tt_setup(k, &s.tt[0], tg0_shift(CD_TG0(w)), <int>CD_T0SZ(w), CD_TTB0_raw(w),
                     CD_TBI0(w) != 0, CD_HAD0(w) != 0, ips)
        if r != R_NONE:
            return r
    if not epd1:
        r = tt_setup(k, &s.tt[1], tg1_shift(CD_TG1(w)), <int>CD_T1SZ(w), CD_TTB1_raw(w),
                     CD_TBI1(w) != 0, CD_HAD1(w) != 0, ips)
        if r != R_NONE:
            return r
    s.asid = 0 if s.el2 else <uint16_t>CD_ASID(w)
    s.affd = CD_AFFD(w) != 0
    s.stall = CD_S(w) != 0
    s.record = CD_R(w) != 0 or s.stall        # IHI 0070 5.5: R only suppresses if S == 0
    s.wxn = CD_WXN(w) != 0
    s.uwxn = CD_UWXN(w) != 0
    s.pan = CD_PAN(w) != 0
    s.ha = CD_HA(w) != 0
    s.hd = CD_HD(w) != 0
    return R_NONE

# ---------------------------------------------------------------------------------------------
# Stage 2
# ---------------------------------------------------------------------------------------------

cdef enum:
    PERM_WCLEAN = 64        # perm_out flag: a writable-clean leaf, not to be cached (3.13.3)


cdef inline int s2_perms(Caps* k, uint64_t d) noexcept nogil:
    """Stage-2 leaf permissions: privileged rwx in bits 0-2, unprivileged in bits 3-5."""
    cdef int ap = <int>S2_BLOCK_S2AP_v(d)
    cdef int rw = (PERM_R if ap & 1 else 0) | (PERM_W if ap & 2 else 0)
    cdef int xn = <int>S2_BLOCK_XN_v(d)
    cdef bint px, ux
    if not k.xnx:
        xn &= 2
    px = xn == 0 or xn == 3
    ux = xn == 0 or xn == 1
    return (rw | (PERM_X if px else 0)) | ((rw | (PERM_X if ux else 0)) << 3)


cdef int s2_walk(WalkCtx* c, S2Cfg* s2, uint64_t ipa, int cls, Txn* t, int need,
                 uint64_t* pa_out, int* perm_out, int* shift_out, int* level_out,
                 Fault* f) noexcept nogil:
    """Translate an IPA through stage 2. need: PERM_* bits for this transaction's privilege
    (bits 0-2 privileged, 3-5 unprivileged). Returns 0 or -1 with f filled."""
    cdef int g = s2.g, stride = g - 3, level = s2.start, sh, bits
    cdef uint64_t table = s2.ttb, idx, dpa, d, oa
    cdef int perm
    cdef bint wclean
    if ipa >> s2.ias:
        trace_add(c, STEP_S2, 2, level, cls, OUT_FAULT, 0, ipa, table, NOADDR, NOADDR, 0)
        set_fault(f, F_TRANSLATION, True, cls, ipa, NOADDR, s2.record, s2.stall, 0)
        return -1
    bits = s2.ias - level_shift(g, level)
    while True:
        sh = level_shift(g, level)
        idx = (ipa >> sh) & lowmask(bits)
        dpa = table + idx * 8
        if mc_read64(c.mem, dpa, &d) != 0:
            trace_add(c, STEP_S2, 2, level, cls, OUT_EABT, <uint32_t>idx, ipa, table, NOADDR,
                      dpa, 0)
            set_fault(f, F_WALK_EABT, True, cls, ipa, dpa, True, s2.stall, 0)
            return -1
        trace_add(c, STEP_S2, 2, level, cls, OUT_TABLE, <uint32_t>idx, ipa, table, NOADDR, dpa, d)
        if (d & 1) == 0 or ((d & 3) == 1 and level < block_min_level(g)) or \
                ((d & 3) == 1 and level == 3):
            trace_outcome(c, OUT_INVALID)
            set_fault(f, F_TRANSLATION, True, cls, ipa, NOADDR, s2.record, s2.stall, 0)
            return -1
        if (d & 3) == 3 and level < 3:
            table = d & lowmask(48) & ~lowmask(g)
            if table >> s2.ps_bits:
                trace_outcome(c, OUT_FAULT)
                set_fault(f, F_ADDR_SIZE, True, cls, ipa, NOADDR, s2.record, s2.stall, 0)
                return -1
            level += 1
            bits = stride
            continue
        # Leaf: block or page.
        trace_outcome(c, OUT_PAGE if level == 3 else OUT_BLOCK)
        oa = d & lowmask(48) & ~lowmask(sh)
        if oa >> s2.ps_bits:
            trace_outcome(c, OUT_FAULT)
            set_fault(f, F_ADDR_SIZE, True, cls, ipa, NOADDR, s2.record, s2.stall, 0)
            return -1
        if S2_BLOCK_AF_v(d) == 0 and not s2.affd:
            if s2.ha and c.physmem != NULL:
                d |= <uint64_t>1 << S2_BLOCK_AF_SHIFT
                (<PhysMem>c.physmem).write64(dpa, d)
            else:
                trace_outcome(c, OUT_FAULT)
                set_fault(f, F_ACCESS, True, cls, ipa, NOADDR, s2.record, s2.stall, 0)
                return -1
        # IHI 0070 3.13.3: with S2HD, DBM=1 and S2AP[1]=0 is writable-clean (writable); a write
        # sets S2AP[1]. Not cached until dirty (PERM_WCLEAN), so a later write still updates.
        wclean = s2.hd and c.physmem != NULL and S2_BLOCK_DBM_v(d) != 0 and \
            not (d >> (S2_BLOCK_S2AP_SHIFT + 1)) & 1
        perm = s2_perms(&c.caps, d | (<uint64_t>wclean << (S2_BLOCK_S2AP_SHIFT + 1)))
        if (perm & need) != need:
            trace_outcome(c, OUT_FAULT)
            set_fault(f, F_PERMISSION, True, cls, ipa, NOADDR, s2.record, s2.stall, 0)
            return -1
        if wclean and need & (PERM_W | (PERM_W << 3)):
            (<PhysMem>c.physmem).write64(dpa, d | (<uint64_t>1 << (S2_BLOCK_S2AP_SHIFT + 1)))
            wclean = False
        pa_out[0] = oa | (ipa & lowmask(sh))
        perm_out[0] = perm | (PERM_WCLEAN if wclean else 0)
        shift_out[0] = sh
        level_out[0] = level
        return 0

# ---------------------------------------------------------------------------------------------
# Stage 1
# ---------------------------------------------------------------------------------------------

cdef inline int need_bits(Txn* t) noexcept nogil:
    cdef int n = PERM_X if t.instr else (PERM_W if t.write else PERM_R)
    return n if t.priv else n << 3


cdef int s1_leaf_perms(S1Cfg* s, uint64_t d, int tbl_ap, bint tbl_pxn, bint tbl_uxn) noexcept nogil:
    """Stage-1 permissions (Arm ARM AArch64.S1DirectBasePermissions): privileged rwx in bits
    0-2, unprivileged in bits 3-5."""
    cdef int ap = <int>S1_BLOCK_AP_v(d)
    cdef bint ro = (ap & 2) != 0 or (tbl_ap & 2) != 0
    cdef bint el0, pw, uw
    cdef int p, u
    if s.el2:
        # Single-EL regime: AP[1], APTable[0] and PXN are not used; bit 54 is XN and bit 60
        # XNTable; every access is treated as privileged.
        p = PERM_R | (0 if ro else PERM_W)
        if not (S1_BLOCK_UXN_v(d) or tbl_uxn or (s.wxn and not ro)):
            p |= PERM_X
        return p | (p << 3)
    el0 = (ap & 1) != 0 and (tbl_ap & 1) == 0
    pw = not ro
    uw = el0 and not ro
    p = PERM_R | (PERM_W if pw else 0)
    u = (PERM_R | (PERM_W if uw else 0)) if el0 else 0
    if s.pan and el0:
        p = 0                        # PAN: privileged data access to EL0-accessible memory
    # Memory writable at EL0 is never executable at EL1.
    if not (S1_BLOCK_PXN_v(d) or tbl_pxn or uw or (s.wxn and pw)):
        p |= PERM_X
    if not (S1_BLOCK_UXN_v(d) or tbl_uxn or (s.wxn and uw)):
        u |= PERM_X
    return p | (u << 3)


cdef int s1_walk(WalkCtx* c, SteCfg* ste, S1Cfg* s, Txn* t, bint nested, int need,
                 uint64_t* ipa_out, int* perm_out, int* shift_out, int* level_out,
                 bint* global_out, Fault* f) noexcept nogil:
    cdef uint64_t va = t.addr, top, table, idx, dipa, dpa, d, oa, s2pa
    cdef int region, level, g, stride, sh, bits, tbl_ap = 0, perm, s2perm, s2sh, s2lvl, ips
    cdef bint tbl_pxn = False, tbl_uxn = False, tbi, wclean
    cdef TTCfg* tt
    # Region: bit 55 picks the TBI setting; the top bits must be all 0 (TTB0) or all 1 (TTB1).
    region = 1 if (va >> 55) & 1 else 0
    if s.el2:
        region = 0
    tt = &s.tt[region]
    if not tt.enabled:
        trace_add(c, STEP_S1, 1, -1, CLASS_IN, OUT_FAULT, 0, va, 0, NOADDR, NOADDR, 0)
        set_fault(f, F_TRANSLATION, False, CLASS_IN, 0, NOADDR, s.record, s.stall, 0)
        return -1
    # With TBI the top byte is ignored: only bits [55:VAbits] must equal the region bit.
    tbi = tt.tbi
    top = (va >> tt.vabits) & lowmask((56 if tbi else 64) - tt.vabits)
    if top != (lowmask((56 if tbi else 64) - tt.vabits) if region else 0):
        trace_add(c, STEP_S1, 1, -1, CLASS_IN, OUT_FAULT, 0, va, 0, NOADDR, NOADDR, 0)
        set_fault(f, F_TRANSLATION, False, CLASS_IN, 0, NOADDR, s.record, s.stall, 0)
        return -1
    g = tt.g
    stride = g - 3
    level = tt.start
    table = tt.ttb
    ips = cap_pa(s.ips_bits, g)
    bits = tt.vabits - level_shift(g, level)
    while True:
        sh = level_shift(g, level)
        idx = (va >> sh) & lowmask(bits)
        dipa = table + idx * 8
        if nested:
            if s2_walk(c, &ste.s2, dipa, CLASS_TT, t, PERM_R | (PERM_R << 3), &s2pa, &s2perm,
                       &s2sh, &s2lvl, f) != 0:
                return -1
            dpa = s2pa
        else:
            dpa = dipa
        if mc_read64(c.mem, dpa, &d) != 0:
            trace_add(c, STEP_S1, 1, level, CLASS_TT, OUT_EABT, <uint32_t>idx, va, table,
                      dipa if nested else NOADDR, dpa, 0)
            set_fault(f, F_WALK_EABT, False, CLASS_TT, 0, dpa, True, s.stall, 0)
            return -1
        trace_add(c, STEP_S1, 1, level, CLASS_TT, OUT_TABLE, <uint32_t>idx, va, table,
                  dipa if nested else NOADDR, dpa, d)
        if (d & 1) == 0 or ((d & 3) == 1 and (level < block_min_level(g) or level == 3)):
            trace_outcome(c, OUT_INVALID)
            set_fault(f, F_TRANSLATION, False, CLASS_IN, 0, NOADDR, s.record, s.stall, 0)
            return -1
        if (d & 3) == 3 and level < 3:
            table = d & lowmask(48) & ~lowmask(g)
            if table >> ips:
                trace_outcome(c, OUT_FAULT)
                set_fault(f, F_ADDR_SIZE, False, CLASS_IN, 0, NOADDR, s.record, s.stall, 0)
                return -1
            if not tt.had:
                tbl_ap |= <int>S1_TABLE_APTable_v(d)
                tbl_pxn = tbl_pxn or S1_TABLE_PXNTable_v(d) != 0
                tbl_uxn = tbl_uxn or S1_TABLE_UXNTable_v(d) != 0
            level += 1
            bits = stride
            continue
        trace_outcome(c, OUT_PAGE if level == 3 else OUT_BLOCK)
        oa = d & lowmask(48) & ~lowmask(sh)
        if oa >> ips:
            trace_outcome(c, OUT_FAULT)
            set_fault(f, F_ADDR_SIZE, False, CLASS_IN, 0, NOADDR, s.record, s.stall, 0)
            return -1
        if S1_BLOCK_AF_v(d) == 0 and not s.affd:
            if s.ha and c.caps.httu >= 1 and c.physmem != NULL:
                d |= <uint64_t>1 << S1_BLOCK_AF_SHIFT
                (<PhysMem>c.physmem).write64(dpa, d)
            else:
                trace_outcome(c, OUT_FAULT)
                set_fault(f, F_ACCESS, False, CLASS_IN, 0, NOADDR, s.record, s.stall, 0)
                return -1
        # IHI 0070 3.13.3: with HA and HD, DBM=1 and AP[2]=1 is writable-clean: writable (for
        # WXN too, Arm ARM D8.5.2.2); a write clears AP[2]. Not cached until dirty.
        wclean = s.hd and s.ha and c.caps.httu >= 2 and c.physmem != NULL and \
            S1_BLOCK_DBM_v(d) != 0 and (d >> (S1_BLOCK_AP_SHIFT + 1)) & 1
        perm = s1_leaf_perms(s, d & ~(<uint64_t>wclean << (S1_BLOCK_AP_SHIFT + 1)), tbl_ap,
                             tbl_pxn, tbl_uxn)
        if (perm & need) != need:
            trace_outcome(c, OUT_FAULT)
            set_fault(f, F_PERMISSION, False, CLASS_IN, 0, NOADDR, s.record, s.stall, 0)
            return -1
        if wclean and t.write:
            (<PhysMem>c.physmem).write64(dpa, d & ~(<uint64_t>1 << (S1_BLOCK_AP_SHIFT + 1)))
            wclean = False
        ipa_out[0] = oa | (va & lowmask(sh))
        perm_out[0] = perm | (PERM_WCLEAN if wclean else 0)
        shift_out[0] = sh
        level_out[0] = level
        # nG=0 marks a global entry (matches any ASID in the TLB).
        global_out[0] = S1_BLOCK_nG_v(d) == 0
        return 0

# ---------------------------------------------------------------------------------------------
# Configuration caches (per StreamID STE, per StreamID+SubstreamID CD)
# ---------------------------------------------------------------------------------------------

cdef inline uint64_t mix64(uint64_t x) noexcept nogil:
    x ^= x >> 33
    x *= <uint64_t>0xff51afd7ed558ccdULL
    x ^= x >> 33
    x *= <uint64_t>0xc4ceb9fe1a85ec53ULL
    x ^= x >> 33
    return x

cdef void ste_cache_clear(WalkCtx* c) noexcept nogil:
    memset(c.stes, 0, (c.ste_mask + 1) * sizeof(SteSlot))
    c.ste_count = 0

cdef void cd_cache_clear(WalkCtx* c) noexcept nogil:
    memset(c.cds, 0, (c.cd_mask + 1) * sizeof(CdSlot))
    c.cd_count = 0

cdef SteCfg* ste_cache_get(WalkCtx* c, uint32_t sid) noexcept nogil:
    cdef uint64_t i = mix64(sid) & c.ste_mask
    while c.stes[i].used:
        if c.stes[i].sid == sid:
            return &c.stes[i].cfg
        i = (i + 1) & c.ste_mask
    return NULL

cdef void ste_cache_put(WalkCtx* c, uint32_t sid, SteCfg* cfg) noexcept nogil:
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

cdef CdCfg* cd_cache_get(WalkCtx* c, uint32_t sid, uint32_t ssid) noexcept nogil:
    cdef uint64_t i = mix64((<uint64_t>sid << 32) | ssid) & c.cd_mask
    while c.cds[i].used:
        if c.cds[i].sid == sid and c.cds[i].ssid == ssid:
            return &c.cds[i].cfg
        i = (i + 1) & c.cd_mask
    return NULL

cdef void cd_cache_put(WalkCtx* c, uint32_t sid, uint32_t ssid, CdCfg* cfg) noexcept nogil:
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

# ---------------------------------------------------------------------------------------------
# IOTLB
# ---------------------------------------------------------------------------------------------

cdef inline uint64_t tlb_hash(int kind, uint32_t vmid, uint64_t base, int shift) noexcept nogil:
    return mix64(base ^ (<uint64_t>vmid << 40) ^ (<uint64_t>shift << 56) ^ (<uint64_t>kind << 62))

cdef void tlb_insert(Tlb* t, TlbEntry* e) noexcept nogil:
    cdef uint64_t i
    cdef TlbEntry* x
    if t.count + 1 > t.capacity:
        memset(t.e, 0, (t.mask + 1) * sizeof(TlbEntry))
        t.count = 0
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
        memset(t.e, 0, n * sizeof(TlbEntry))
        t.count = 0
        return 0
    for i in range(n):
        if t.e[i].used:
            if inv_matches(s, &t.e[i]):
                removed += 1
            else:
                keep[kept] = t.e[i]
                kept += 1
    memset(t.e, 0, n * sizeof(TlbEntry))
    t.count = 0
    for i in range(kept):
        tlb_insert(t, &keep[i])
    free(keep)
    return removed

# ---------------------------------------------------------------------------------------------
# Configuration fetch
# ---------------------------------------------------------------------------------------------

cdef int fetch_ste(WalkCtx* c, Txn* t, SteCfg* out, SteCfg** use, Fault* f) noexcept nogil:
    cdef uint64_t w[8]
    cdef uint64_t l1, l1pa, pa, nsid
    cdef int log2size = c.strtab_log2size, span, r
    cdef uint32_t sid = t.sid
    cdef SteCfg* hit
    if c.caching:
        hit = ste_cache_get(c, sid)
        if hit != NULL:
            trace_add(c, STEP_STE, 0, -1, CLASS_NONE, OUT_CACHED, sid, sid, c.strtab_base,
                      NOADDR, hit.ste_pa, hit.raw[0])
            if hit.kind == CFG_ABORT:
                cfg_fault(f, T_ABORT, R_STE_ABORT)
                return -1
            use[0] = hit
            return 0
    if log2size > c.caps.sidsize:
        log2size = c.caps.sidsize
    if <uint64_t>sid >> log2size:
        cfg_fault(f, C_BAD_STREAMID, R_SID_RANGE)
        return -1
    if c.strtab_fmt == 1:
        l1pa = c.strtab_base + (<uint64_t>(sid >> c.strtab_split)) * 8
        if mc_read64(c.mem, l1pa, &l1) != 0:
            trace_add(c, STEP_L1STD, 0, -1, CLASS_NONE, OUT_EABT, sid >> c.strtab_split, sid,
                      c.strtab_base, NOADDR, l1pa, 0)
            set_fault(f, F_STE_FETCH, False, CLASS_NONE, 0, l1pa, True, False, 0)
            return -1
        span = <int>L1STD_Span_v(l1)
        trace_add(c, STEP_L1STD, 0, -1, CLASS_NONE, OUT_OK, sid >> c.strtab_split, sid,
                  c.strtab_base, NOADDR, l1pa, l1)
        # IHI 0070 7.3.3: Span 0, reserved spans and Span > SPLIT + 1 are invalid.
        if span == 0 or span > 11 or span > c.strtab_split + 1:
            trace_outcome(c, OUT_INVALID)
            cfg_fault(f, C_BAD_STREAMID, R_L1STD_SPAN)
            return -1
        nsid = sid & lowmask(c.strtab_split)
        if nsid >> (span - 1):
            trace_outcome(c, OUT_FAULT)
            cfg_fault(f, C_BAD_STREAMID, R_L2_INDEX)
            return -1
        # The L2 array is aligned to its size.
        pa = ((l1 & lowmask(56) & ~lowmask(6)) & ~lowmask(span - 1 + 6)) + nsid * 64
    else:
        nsid = sid
        pa = c.strtab_base + <uint64_t>sid * 64
    if mc_read_block(c.mem, pa, w, 8) != 0:
        trace_add(c, STEP_STE, 0, -1, CLASS_NONE, OUT_EABT, <uint32_t>nsid, sid, c.strtab_base,
                  NOADDR, pa, 0)
        set_fault(f, F_STE_FETCH, False, CLASS_NONE, 0, pa, True, False, 0)
        return -1
    trace_add(c, STEP_STE, 0, -1, CLASS_NONE, OUT_OK, <uint32_t>nsid, sid, c.strtab_base,
              NOADDR, pa, w[0])
    memset(out, 0, sizeof(SteCfg))
    r = decode_ste(c, w, out)
    out.ste_pa = pa
    if r == R_STE_ABORT:
        cfg_fault(f, T_ABORT, R_STE_ABORT)
        if c.caching:
            ste_cache_put(c, sid, out)
        return -1
    if r != R_NONE:
        trace_outcome(c, OUT_FAULT)
        cfg_fault(f, C_BAD_STE, r)
        return -1
    if c.caching:
        ste_cache_put(c, sid, out)
    use[0] = out
    return 0


cdef int fetch_cd(WalkCtx* c, Txn* t, SteCfg* ste, uint32_t ssid, CdCfg* out, CdCfg** use,
                  Fault* f) noexcept nogil:
    cdef bint nested = ste.kind == CFG_NESTED
    cdef uint64_t w[8]
    cdef uint64_t base = ste.ctxptr, l1ipa, l1pa, l1, cdipa, cdpa
    cdef int n, r, perm, sh, lvl
    cdef CdCfg* hit
    if c.caching:
        hit = cd_cache_get(c, t.sid, ssid)
        if hit != NULL:
            trace_add(c, STEP_CD, 0, -1, CLASS_NONE, OUT_CACHED, ssid, ssid, base, NOADDR,
                      hit.cd_pa, hit.raw[0])
            use[0] = hit
            return 0
    if ste.s1fmt == 0 or ste.s1cdmax == 0:
        cdipa = base + <uint64_t>ssid * 64
    else:
        n = 6 if ste.s1fmt == 1 else 10
        l1ipa = base + <uint64_t>(ssid >> n) * 8
        l1pa = l1ipa
        if nested and s2_walk(c, &ste.s2, l1ipa, CLASS_CD, t, PERM_R | (PERM_R << 3), &l1pa,
                              &perm, &sh, &lvl, f) != 0:
            return -1
        if mc_read64(c.mem, l1pa, &l1) != 0:
            trace_add(c, STEP_L1CD, 0, -1, CLASS_NONE, OUT_EABT, ssid >> n, ssid, base,
                      l1ipa if nested else NOADDR, l1pa, 0)
            set_fault(f, F_CD_FETCH, False, CLASS_NONE, 0, l1pa, True, False, 0)
            return -1
        trace_add(c, STEP_L1CD, 0, -1, CLASS_NONE, OUT_OK, ssid >> n, ssid, base,
                  l1ipa if nested else NOADDR, l1pa, l1)
        if L1CD_V_v(l1) == 0:
            trace_outcome(c, OUT_INVALID)
            cfg_fault(f, C_BAD_SUBSTREAMID, R_L1CD_V)
            return -1
        if L1CD_L2Ptr_raw(&l1) >> c.caps.oas_bits:
            trace_outcome(c, OUT_FAULT)
            cfg_fault(f, C_BAD_SUBSTREAMID, R_L1CD_RANGE)
            return -1
        cdipa = (l1 & lowmask(56) & ~lowmask(12)) + <uint64_t>(ssid & lowmask(n)) * 64
    cdpa = cdipa
    if nested and s2_walk(c, &ste.s2, cdipa, CLASS_CD, t, PERM_R | (PERM_R << 3), &cdpa, &perm,
                          &sh, &lvl, f) != 0:
        return -1
    if mc_read_block(c.mem, cdpa, w, 8) != 0:
        trace_add(c, STEP_CD, 0, -1, CLASS_NONE, OUT_EABT, ssid, ssid, base,
                  cdipa if nested else NOADDR, cdpa, 0)
        set_fault(f, F_CD_FETCH, False, CLASS_NONE, 0, cdpa, True, False, 0)
        return -1
    trace_add(c, STEP_CD, 0, -1, CLASS_NONE, OUT_OK, ssid, ssid, base,
              cdipa if nested else NOADDR, cdpa, w[0])
    memset(out, 0, sizeof(CdCfg))
    r = decode_cd(c, ste, w, out)
    out.cd_pa = cdpa
    if r != R_NONE:
        trace_outcome(c, OUT_FAULT)
        cfg_fault(f, C_BAD_CD, r)
        return -1
    if c.caching:
        cd_cache_put(c, t.sid, ssid, out)
    use[0] = out
    return 0

# ---------------------------------------------------------------------------------------------
# Translation
# ---------------------------------------------------------------------------------------------

cdef inline uint64_t shifts_of(int g, int start) noexcept nogil:
    cdef uint64_t m = 0
    cdef int l
    for l in range(block_min_level(g) if block_min_level(g) > start else start, 4):
        m |= <uint64_t>1 << level_shift(g, l)
    return m


cdef int translate(WalkCtx* c, Txn* t, WalkResult* r) noexcept nogil:
    cdef SteCfg ste_buf
    cdef CdCfg cd_buf
    cdef SteCfg* ste
    cdef CdCfg* cd
    cdef Fault* f = &r.fault
    cdef int need = need_bits(t), perm1, perm2, sh1, sh2, lv1, lv2, kind, tkind, region
    cdef bint s1on, s2on, nested, glob
    cdef uint64_t ipa, pa, shifts
    cdef uint32_t ssid
    cdef TlbEntry* hit
    cdef TlbEntry e
    cdef S1Cfg* s1
    r.out = NOADDR
    r.ipa = NOADDR
    r.perm = 0
    r.hit = 0
    f.type = EVT_NONE
    f.reason = 0
    if not c.smmuen:
        if c.gbpa_abort or t.addr >> c.caps.oas_bits:
            cfg_fault(f, T_ABORT, R_GBPA_ABORT if c.gbpa_abort else R_BYPASS_OAS)
            return -1
        r.out = t.addr
        r.perm = PERM_R | PERM_W | PERM_X
        return 0
    if fetch_ste(c, t, &ste_buf, &ste, f) != 0:
        return -1
    kind = ste.kind
    s1on = (kind & 1) != 0
    s2on = (kind & 2) != 0
    # Substream rules (IHI 0070 5.2 S1DSS).
    if not s1on:
        if t.ssv:
            cfg_fault(f, C_BAD_SUBSTREAMID, R_SSV_NO_S1)
            return -1
    else:
        if t.ssv:
            if ste.s1cdmax == 0:
                cfg_fault(f, C_BAD_SUBSTREAMID, R_SSV_CDMAX0)
                return -1
            if <uint64_t>t.ssid >> ste.s1cdmax:
                cfg_fault(f, C_BAD_SUBSTREAMID, R_SSID_RANGE)
                return -1
            if t.ssid == 0 and ste.s1dss == 2:
                # IHI 0070 5.2 S1DSS=0b10, 7.3.7: terminated as F_STREAM_DISABLED.
                cfg_fault(f, F_STREAM_DISABLED, R_SSID0_DISABLED)
                return -1
            ssid = t.ssid
        else:
            ssid = 0
            if ste.s1cdmax != 0:
                if ste.s1dss == 0 or ste.s1dss == 3:
                    cfg_fault(f, F_STREAM_DISABLED, R_S1DSS_TERMINATE)
                    return -1
                if ste.s1dss == 1:
                    s1on = False
    if not s1on and not s2on:
        # Full bypass: the address must fit the PA size.
        if t.addr >> c.caps.oas_bits:
            set_fault(f, F_ADDR_SIZE, False, CLASS_IN, 0, NOADDR, True, False, 0)
            return -1
        r.out = t.addr
        r.perm = PERM_R | PERM_W | PERM_X
        return 0
    if not s1on:
        # Stage 2 only: the input is an IPA, first checked against IAS (= OAS, AArch64 only).
        if t.addr >> c.caps.oas_bits:
            set_fault(f, F_ADDR_SIZE, False, CLASS_IN, 0, NOADDR, True, False, 0)
            return -1
        if c.caching:
            hit = tlb_lookup(&c.tlb, TLB_S2, ste.s2.vmid, 0, t.addr,
                             shifts_of(ste.s2.g, ste.s2.start))
            if hit != NULL:
                c.tlb.hits += 1
                r.hit = 1
                trace_add(c, STEP_TLB, 2, hit.s2level, CLASS_IN, OUT_CACHED, 0, t.addr,
                          hit.in_base, NOADDR, NOADDR, hit.out_base)
                if (hit.s2perm & need) != need:
                    set_fault(f, F_PERMISSION, True, CLASS_IN, t.addr, NOADDR, ste.s2.record,
                              ste.s2.stall, 0)
                    return -1
                r.out = hit.out_base | (t.addr & lowmask(hit.shift))
                r.perm = (hit.s2perm >> (0 if t.priv else 3)) & 7
                return 0
            c.tlb.misses += 1
        if s2_walk(c, &ste.s2, t.addr, CLASS_IN, t, need, &pa, &perm2, &sh2, &lv2, f) != 0:
            return -1
        if c.caching and not perm2 & PERM_WCLEAN:
            memset(&e, 0, sizeof(TlbEntry))
            e.kind = TLB_S2
            e.vmid = ste.s2.vmid
            e.in_base = t.addr & ~lowmask(sh2)
            e.out_base = pa & ~lowmask(sh2)
            e.shift = sh2
            e.s2level = lv2
            e.s1perm = 0x3F
            e.s2perm = perm2
            tlb_insert(&c.tlb, &e)
        r.out = pa
        r.perm = (perm2 >> (0 if t.priv else 3)) & 7
        return 0
    # Stage 1 (possibly nested).
    if fetch_cd(c, t, ste, ssid, &cd_buf, &cd, f) != 0:
        return -1
    s1 = &cd.s1
    nested = s2on
    if s1.el2:
        tkind = TLB_EL2
    else:
        tkind = TLB_NESTED if nested else TLB_S1
    if c.caching:
        region = 1 if (t.addr >> 55) & 1 and not s1.el2 else 0
        if s1.tt[region].enabled:
            shifts = shifts_of(s1.tt[region].g, s1.tt[region].start)
            if nested:
                shifts |= shifts_of(ste.s2.g, ste.s2.start)
            hit = tlb_lookup(&c.tlb, tkind, 0 if s1.el2 else ste.vmid, s1.asid, t.addr, shifts)
            if hit != NULL:
                c.tlb.hits += 1
                r.hit = 1
                trace_add(c, STEP_TLB, 1, hit.s1level, CLASS_IN, OUT_CACHED, 0, t.addr,
                          hit.in_base, NOADDR, NOADDR, hit.out_base)
                if (hit.s1perm & need) != need:
                    set_fault(f, F_PERMISSION, False, CLASS_IN, 0, NOADDR, s1.record, s1.stall, 0)
                    return -1
                if (hit.s2perm & need) != need:
                    ipa = hit.ipa_base | (t.addr & lowmask(hit.shift))
                    set_fault(f, F_PERMISSION, True, CLASS_IN, ipa, NOADDR, ste.s2.record,
                              ste.s2.stall, 0)
                    return -1
                r.out = hit.out_base | (t.addr & lowmask(hit.shift))
                if nested:
                    r.ipa = hit.ipa_base | (t.addr & lowmask(hit.shift))
                r.perm = ((hit.s1perm & hit.s2perm) >> (0 if t.priv else 3)) & 7
                return 0
            c.tlb.misses += 1
    if s1_walk(c, ste, s1, t, nested, need, &ipa, &perm1, &sh1, &lv1, &glob, f) != 0:
        return -1
    perm2 = 0x3F
    sh2 = 64
    lv2 = 0
    pa = ipa
    if nested:
        r.ipa = ipa
        if s2_walk(c, &ste.s2, ipa, CLASS_IN, t, need, &pa, &perm2, &sh2, &lv2, f) != 0:
            return -1
    if c.caching and not (perm1 | perm2) & PERM_WCLEAN:
        memset(&e, 0, sizeof(TlbEntry))
        e.kind = tkind
        e.vmid = 0 if s1.el2 else ste.vmid
        e.asid = s1.asid
        e.is_global = glob or s1.el2
        e.shift = sh1 if sh1 < sh2 else sh2
        e.in_base = t.addr & ~lowmask(e.shift)
        e.out_base = pa & ~lowmask(e.shift)
        e.ipa_base = ipa & ~lowmask(e.shift)
        e.s1level = lv1
        e.s2level = lv2
        e.s1perm = perm1
        e.s2perm = perm2
        tlb_insert(&c.tlb, &e)
    r.out = pa
    r.perm = ((perm1 & perm2) >> (0 if t.priv else 3)) & 7
    return 0

# ---------------------------------------------------------------------------------------------
# Python API
# ---------------------------------------------------------------------------------------------

CAP_FIELDS = ("S1P", "S2P", "CD2L", "VMID16", "ASID16", "HYP", "HAD", "XNX", "STT", "ATS",
              "GRAN4K", "GRAN16K", "GRAN64K", "TTF", "TTENDIAN", "HTTU", "STALL_MODEL",
              "TERM_MODEL", "SSIDSIZE", "SIDSIZE", "OAS")

cdef uint64_t _pow2_at_least(uint64_t n):
    cdef uint64_t c = 16
    while c < n:
        c <<= 1
    return c


def perm_str(int p):
    return ("r" if p & 1 else "-") + ("w" if p & 2 else "-") + ("x" if p & 4 else "-")


cdef dict fault_dict(Fault* f, Txn* t):
    if f.type == EVT_NONE:
        return None
    return {
        "type": EVENT_NAMES.get(f.type, f"0x{f.type:02x}"),
        "code": f.type if f.type != T_ABORT else None,
        "sid": t.sid, "ssid": t.ssid if t.ssv else 0, "ssv": bool(t.ssv),
        "input_addr": t.addr, "rnw": not t.write, "ind": bool(t.instr), "pnu": bool(t.priv),
        "s2": bool(f.s2), "class": CLASSES[f.cls],
        "ipa": f.ipa if f.s2 else None,
        "fetch_addr": None if f.fetch_addr == NOADDR else f.fetch_addr,
        "stall": bool(f.stall) and 0x10 <= f.type <= 0x13, "record": bool(f.record) and f.type != T_ABORT,
        "reason": REASONS[f.reason] if 0 < f.reason < len(REASONS) else "",
    }


cdef class Walker:
    """One SMMU's translation unit over a PhysMem: stream table, walks, config cache, IOTLB.

    Usable on its own (tests, batch translation) and owned by the SMMU device model, which
    maps registers and commands onto configure() and the invalidate_* methods.
    """

    def __cinit__(self, PhysMem mem, caps=None, uint64_t tlb_capacity=4096,
                  uint64_t cfg_capacity=1024):
        self.mem = mem
        memset(&self.ctx, 0, sizeof(WalkCtx))
        self.ctx.mem = &mem.core
        self.ctx.physmem = <void*>mem
        self.ctx.smmuen = True
        self.ctx.caching = True
        cdef uint64_t n = _pow2_at_least(tlb_capacity * 2)
        self.ctx.tlb.e = <TlbEntry*>calloc(n, sizeof(TlbEntry))
        self.ctx.tlb.mask = n - 1
        self.ctx.tlb.capacity = tlb_capacity
        n = _pow2_at_least(cfg_capacity * 2)
        self.ctx.stes = <SteSlot*>calloc(n, sizeof(SteSlot))
        self.ctx.ste_mask = n - 1
        self.ctx.cds = <CdSlot*>calloc(n, sizeof(CdSlot))
        self.ctx.cd_mask = n - 1
        self.trace_buf = <TraceStep*>calloc(512, sizeof(TraceStep))
        if (self.ctx.tlb.e == NULL or self.ctx.stes == NULL or self.ctx.cds == NULL or
                self.trace_buf == NULL):
            raise MemoryError()
        self.ctx.trace_cap = 512
        self._strtab = [0, 0, 0, 0]
        self.set_caps(caps or {})

    def __dealloc__(self):
        free(self.ctx.tlb.e)
        free(self.ctx.stes)
        free(self.ctx.cds)
        free(self.trace_buf)

    # -- configuration ------------------------------------------------------------------------
    def set_caps(self, caps):
        """Capabilities by IDR field name (S1P, S2P, OAS as the IDR5 encoding, ...)."""
        unknown = set(caps) - set(CAP_FIELDS)
        if unknown:
            raise ValueError(f"unknown capability {sorted(unknown)[0]}")
        cdef Caps* k = &self.ctx.caps
        g = lambda n, d=0: int(caps.get(n, d))
        k.s1p, k.s2p, k.cd2l = g("S1P"), g("S2P"), g("CD2L")
        k.vmid16, k.asid16, k.hyp = g("VMID16"), g("ASID16"), g("HYP")
        k.had, k.xnx, k.stt, k.ats = g("HAD"), g("XNX"), g("STT"), g("ATS")
        k.gran4k, k.gran16k, k.gran64k = g("GRAN4K"), g("GRAN16K"), g("GRAN64K")
        k.ttf, k.ttendian, k.httu = g("TTF", 2), g("TTENDIAN"), g("HTTU")
        k.stall_model, k.term_model = g("STALL_MODEL"), g("TERM_MODEL")
        k.ssidsize, k.sidsize = g("SSIDSIZE"), g("SIDSIZE", 16)
        k.oas_bits = ps_bits(g("OAS", 5))
        if k.oas_bits == 0:
            raise ValueError(f"IDR5.OAS={g('OAS')} is reserved")

    def configure(self, *, strtab_base=None, strtab_fmt=None, strtab_split=None,
                  strtab_log2size=None, smmuen=None, gbpa_abort=None, caching=None):
        """Program the walker as SMMU_STRTAB_BASE/_CFG, CR0.SMMUEN and GBPA.ABORT would.
        Values are taken as written; the effective ones follow IHI 0070 6.3.24/6.3.25."""
        if strtab_base is not None:
            self._strtab[0] = strtab_base
        if strtab_fmt is not None:
            self._strtab[1] = strtab_fmt
        if strtab_split is not None:
            self._strtab[2] = strtab_split
        if strtab_log2size is not None:
            self._strtab[3] = strtab_log2size
        base, f, split, log2size = self._strtab
        base &= lowmask(56) & ~lowmask(6)
        if f == 1:
            if split not in (6, 8, 10):
                split = 6                     # other SPLIT values are reserved, behave as 6
            # The L1 table is aligned to its size (at least 64 bytes).
            base &= ~lowmask(max(6, log2size - split + 3))
        else:
            f = 0                             # reserved FMT values behave as linear
            split = 0
            base &= ~lowmask(log2size + 6)    # a linear table is aligned to its size
        self.ctx.strtab_base = base
        self.ctx.strtab_fmt = f
        self.ctx.strtab_split = split
        self.ctx.strtab_log2size = log2size
        if smmuen is not None:
            self.ctx.smmuen = smmuen
        if gbpa_abort is not None:
            self.ctx.gbpa_abort = gbpa_abort
        if caching is not None:
            self.ctx.caching = caching
            if not caching:
                self.invalidate_all()

    @property
    def caching(self):
        return bool(self.ctx.caching)

    @property
    def oas_bits(self):
        return self.ctx.caps.oas_bits

    # -- translation --------------------------------------------------------------------------
    def translate(self, uint32_t sid, uint64_t addr, ssid=None, *, bint write=False,
                  bint instr=False, bint priv=False, bint trace=False):
        """Translate one transaction. Returns a dict: pa, ipa, perm, hit, fault, steps."""
        cdef Txn t
        cdef WalkResult r
        if ssid is not None and (ssid < 0 or ssid >= (1 << 20)):
            raise ValueError(f"SubstreamID {ssid:#x} does not fit in 20 bits")
        t.sid = sid
        t.ssv = ssid is not None
        t.ssid = ssid if ssid is not None else 0
        t.addr = addr
        t.write = write
        t.instr = instr
        t.priv = priv
        self.ctx.ntrace = 0
        self.ctx.trace = self.trace_buf if trace else NULL
        translate(&self.ctx, &t, &r)
        self.ctx.trace = NULL
        out = {
            "pa": None if r.fault.type != EVT_NONE else r.out,
            "ipa": None if r.ipa == NOADDR else r.ipa,
            "perm": perm_str(r.perm) if r.fault.type == EVT_NONE else "---",
            "hit": bool(r.hit),
            "fault": fault_dict(&r.fault, &t),
        }
        if trace:
            out["steps"] = self._steps()
        return out

    cdef list _steps(self):
        cdef int i
        cdef TraceStep* s
        steps = []
        for i in range(self.ctx.ntrace):
            s = &self.trace_buf[i]
            steps.append({
                "what": STEP_NAMES[s.kind], "stage": s.stage,
                "level": None if s.level < 0 else s.level,
                "purpose": CLASSES[s.purpose] if s.kind == STEP_S2 else None,
                "outcome": OUTCOMES[s.outcome], "index": s.index, "in_addr": s.in_addr,
                "table": s.table, "desc_ipa": None if s.desc_ipa == NOADDR else s.desc_ipa,
                "desc_pa": None if s.desc_pa == NOADDR else s.desc_pa, "desc": s.desc,
            })
        return steps

    def translate_batch(self, sids, addrs, ssids=None, access=None, bint priv=False):
        """Batch translation. sids, addrs (uint64), ssids (int64, -1 = no SubstreamID) and
        access (uint8: 0 read, 1 write, 2 exec) are equal-length arrays. Returns (out uint64,
        fault uint8 event code (0 ok, 0xFF silent abort), perm uint8 rwx bits)."""
        cdef cnp.ndarray[cnp.uint32_t, ndim=1] s_ = np.ascontiguousarray(sids, dtype=np.uint32)
        cdef cnp.ndarray[cnp.uint64_t, ndim=1] a_ = np.ascontiguousarray(addrs, dtype=np.uint64)
        cdef Py_ssize_t n = s_.shape[0], i
        if a_.shape[0] != n:
            raise ValueError("sids and addrs differ in length")
        cdef cnp.ndarray[cnp.int64_t, ndim=1] ss_ = (
            np.full(n, -1, dtype=np.int64) if ssids is None
            else np.ascontiguousarray(ssids, dtype=np.int64))
        cdef cnp.ndarray[cnp.uint8_t, ndim=1] ac_ = (
            np.zeros(n, dtype=np.uint8) if access is None
            else np.ascontiguousarray(access, dtype=np.uint8))
        if ss_.shape[0] != n or ac_.shape[0] != n:
            raise ValueError("ssids/access differ in length from sids")
        cdef cnp.ndarray[cnp.uint64_t, ndim=1] out = np.empty(n, dtype=np.uint64)
        cdef cnp.ndarray[cnp.uint8_t, ndim=1] fault = np.empty(n, dtype=np.uint8)
        cdef cnp.ndarray[cnp.uint8_t, ndim=1] perm = np.empty(n, dtype=np.uint8)
        cdef Txn t
        cdef WalkResult r
        self.ctx.trace = NULL
        with nogil:
            for i in range(n):
                t.sid = s_[i]
                t.ssv = ss_[i] >= 0
                t.ssid = <uint32_t>ss_[i] if ss_[i] >= 0 else 0
                t.addr = a_[i]
                t.write = ac_[i] == 1
                t.instr = ac_[i] == 2
                t.priv = priv
                translate(&self.ctx, &t, &r)
                fault[i] = <uint8_t>r.fault.type
                out[i] = r.out if r.fault.type == EVT_NONE else 0
                perm[i] = <uint8_t>r.perm if r.fault.type == EVT_NONE else 0
        return out, fault, perm

    # -- checks on raw structures (for display and `check`) -----------------------------------
    def check_ste(self, words):
        """Reason string why this STE is illegal ('' if legal; 'STE.Config=abort' for abort)."""
        cdef uint64_t w[8]
        cdef SteCfg s
        for i in range(8):
            w[i] = words[i]
        memset(&s, 0, sizeof(SteCfg))
        return REASONS[decode_ste(&self.ctx, w, &s)]

    def check_cd(self, words, ste_words=None):
        cdef uint64_t w[8]
        cdef uint64_t sw[8]
        cdef SteCfg s
        cdef CdCfg d
        memset(&s, 0, sizeof(SteCfg))
        if ste_words is not None:
            for i in range(8):
                sw[i] = ste_words[i]
            decode_ste(&self.ctx, sw, &s)
        for i in range(8):
            w[i] = words[i]
        return REASONS[decode_cd(&self.ctx, &s, w, &d)]

    # -- caches -------------------------------------------------------------------------------
    def invalidate_all(self):
        """Drop every cached STE, CD and TLB entry."""
        ste_cache_clear(&self.ctx)
        cd_cache_clear(&self.ctx)
        memset(self.ctx.tlb.e, 0, (self.ctx.tlb.mask + 1) * sizeof(TlbEntry))
        self.ctx.tlb.count = 0

    def invalidate_ste(self, uint32_t lo, uint32_t hi):
        """Drop cached STEs (and the CDs fetched through them) for StreamIDs lo..hi."""
        cdef uint64_t i
        cdef int n = 0
        for i in range(self.ctx.ste_mask + 1):
            if self.ctx.stes[i].used and lo <= self.ctx.stes[i].sid <= hi:
                n += 1
        survivors = [self.ctx.stes[i] for i in range(self.ctx.ste_mask + 1)
                     if self.ctx.stes[i].used and not (lo <= self.ctx.stes[i].sid <= hi)]
        ste_cache_clear(&self.ctx)
        cdef SteSlot slot
        for s in survivors:
            slot = s
            ste_cache_put(&self.ctx, slot.sid, &slot.cfg)
        return n + self.invalidate_cd(lo, hi, None)

    def invalidate_cd(self, uint32_t lo, uint32_t hi, ssid):
        """Drop cached CDs of StreamIDs lo..hi (one SubstreamID, or all if ssid is None)."""
        cdef uint64_t i
        cdef int n = 0
        cdef CdSlot slot
        keep = []
        for i in range(self.ctx.cd_mask + 1):
            if not self.ctx.cds[i].used:
                continue
            if lo <= self.ctx.cds[i].sid <= hi and (ssid is None or self.ctx.cds[i].ssid == ssid):
                n += 1
            else:
                keep.append(self.ctx.cds[i])
        cd_cache_clear(&self.ctx)
        for s in keep:
            slot = s
            cd_cache_put(&self.ctx, slot.sid, slot.ssid, &slot.cfg)
        return n

    def invalidate_tlb(self, kinds=("S1", "S2", "NESTED", "EL2"), vmid=None, asid=None,
                       bint keep_global=False, lo=None, hi=None, level=None,
                       bint s2level=False):
        """Drop IOTLB entries matching every given key; returns how many went.

        kinds: entry kinds (S1, S2, NESTED, EL2). asid matches non-global entries of that
        ASID and all global ones unless keep_global. lo..hi (inclusive) selects entries that
        overlap the input-address range. level (TTL) limits to entries of that level."""
        cdef InvSpec s
        memset(&s, 0, sizeof(InvSpec))
        names = {"S1": TLB_S1, "S2": TLB_S2, "NESTED": TLB_NESTED, "EL2": TLB_EL2}
        for k in kinds:
            s.kinds |= 1 << names[k]
        if vmid is not None:
            s.match_vmid = True
            s.vmid = vmid
        if asid is not None:
            s.match_asid = True
            s.asid = asid
        s.keep_global = keep_global
        if lo is not None:
            s.match_range = True
            s.lo = lo
            s.hi = hi if hi is not None else lo
        s.level = -1 if level is None else level
        s.s2level = s2level
        return tlb_invalidate(&self.ctx.tlb, &s)

    def tlb_entries(self):
        names = {TLB_S1: "S1", TLB_S2: "S2", TLB_NESTED: "NESTED", TLB_EL2: "EL2"}
        out = []
        cdef uint64_t i
        cdef TlbEntry* x
        for i in range(self.ctx.tlb.mask + 1):
            x = &self.ctx.tlb.e[i]
            if not x.used:
                continue
            out.append({"kind": names[x.kind], "vmid": x.vmid,
                        # Stage-2-only entries carry no ASID (IHI 0070 3.17): show None.
                        "asid": None if x.is_global or x.kind == TLB_S2 else x.asid,
                        "global": bool(x.is_global),
                        "in_base": x.in_base, "size": 1 << x.shift, "out_base": x.out_base,
                        "ipa_base": x.ipa_base if x.kind == TLB_NESTED else None,
                        "s1level": x.s1level if x.kind != TLB_S2 else None,
                        "s2level": x.s2level if x.kind in (TLB_S2, TLB_NESTED) else None,
                        "perm_priv": perm_str(x.s1perm & x.s2perm & 7),
                        "perm_unpriv": perm_str(((x.s1perm & x.s2perm) >> 3) & 7)})
        out.sort(key=lambda d: (d["kind"], d["vmid"], d["asid"] or 0, d["in_base"]))
        return out

    def cached_stes(self):
        cdef uint64_t i
        out = []
        for i in range(self.ctx.ste_mask + 1):
            if self.ctx.stes[i].used:
                out.append({"sid": self.ctx.stes[i].sid, "ste_pa": self.ctx.stes[i].cfg.ste_pa,
                            "words": [self.ctx.stes[i].cfg.raw[j] for j in range(8)]})
        return sorted(out, key=lambda d: d["sid"])

    def cached_cds(self):
        cdef uint64_t i
        out = []
        for i in range(self.ctx.cd_mask + 1):
            if self.ctx.cds[i].used:
                out.append({"sid": self.ctx.cds[i].sid, "ssid": self.ctx.cds[i].ssid,
                            "cd_pa": self.ctx.cds[i].cfg.cd_pa,
                            "words": [self.ctx.cds[i].cfg.raw[j] for j in range(8)]})
        return sorted(out, key=lambda d: (d["sid"], d["ssid"]))

    def tlb_stats(self):
        return {"entries": self.ctx.tlb.count, "capacity": self.ctx.tlb.capacity,
                "hits": self.ctx.tlb.hits, "misses": self.ctx.tlb.misses}

    def translate_uncached(self, uint32_t sid, uint64_t addr, ssid=None, *, bint write=False,
                           bint instr=False, bint priv=False, bint trace=False):
        """translate() against the tables as they are in memory now: the config cache and the
        IOTLB are neither read nor filled, and the hit/miss counters are left alone. This is
        the "fresh walk" the coherence check compares cached entries with."""
        cdef bint was = self.ctx.caching
        self.ctx.caching = False
        try:
            return self.translate(sid, addr, ssid, write=write, instr=instr, priv=priv,
                                  trace=trace)
        finally:
            self.ctx.caching = was
