# cython: language_level=3
"""The SMMUv3 configuration layer and translate().

Stream table, STE and CD decode with the architected checks (IHI 0070 5.2-5.5), SubstreamID
rules, and the translation of one transaction: configuration, IOTLB, the VMSAv8-64 walks of
core_cy.vmsa, and the SMMUv3 event a walk fault becomes. Rules: docs/walk-rules.md. Field
positions come from core_cy/_fields.pxd, codes, encodings and reasons from core_cy/_smmuv3.pxd
(both generated from the field tables); core_cy/consts.pxd has the few that are no field's.
"""
from libc.string cimport memcpy, memset
from libc.stdint cimport uint64_t, uint32_t, uint16_t
from core_cy.wtypes cimport (WalkResult, WalkFault, NOADDR, lowmask, PUR_CFG, PUR_IN, PUR_NONE, trace_add, trace_outcome,
                             WF_NONE, WF_TRANSLATION, WF_ADDR_SIZE, WF_ACCESS, WF_PERMISSION,
                             WF_EABT, PERM_R, PERM_W, PERM_X, PERM_WCLEAN, STEP_TLB, OUT_OK, OUT_INVALID,
                             OUT_FAULT, OUT_EABT, OUT_CACHED)
from core_cy.physmem cimport WIN_STE, WIN_CD
from core_cy.vmsa cimport (VmsaEnv, S1Cfg, S2Cfg, S1Out, S2Out, as_read64_w, as_read_block_w,
                           s2_setup, tt_setup, s1_walk, s2_walk, shifts_of, s1_region, GEOM_OK,
                           GEOM_TG, GEOM_SL0, GEOM_TSZ, GEOM_TTB)
from core_cy.caches cimport (TlbEntry, ste_cache_get, ste_cache_put, cd_cache_get, cd_cache_put,
                             tlb_lookup, tlb_insert, TLB_S1, TLB_S2, TLB_NESTED, TLB_EL2)
from core_cy._smmuv3 cimport *
from core_cy.consts cimport *
from core_cy._fields cimport *

# consts.pxd's array geometry agrees with the structure sizes of the field tables.
assert (1 << STE_LOG2) == STE_BYTES == CD_BYTES and (1 << L1_LOG2) == L1STD_BYTES == L1CD_BYTES


# Zero a decoded STE/CD buffer with unrolled 16-byte stores: memset of these sizes compiles to
# `rep stosq`, one step per word, and every cold walk zeroes one of each. The struct's size is a
# multiple of 8 (it holds uint64_t fields); may_alias keeps the stores visible to field reads.
cdef extern from *:
    """
    typedef uint64_t __attribute__((__may_alias__)) smmudbg_u64a;
    #define SMMUDBG_ZERO_STRUCT(p) do { \
        _Static_assert(sizeof(*(p)) % 8 == 0, "struct size not a multiple of 8"); \
        smmudbg_u64a* q_ = (smmudbg_u64a*)(p); \
        _Pragma("GCC unroll 64") \
        for (size_t i_ = 0; i_ < sizeof(*(p)) / 8; i_++) q_[i_] = 0; \
    } while (0)
    """
    void zero_ste "SMMUDBG_ZERO_STRUCT"(SteCfg* p) noexcept nogil
    void zero_cd "SMMUDBG_ZERO_STRUCT"(CdCfg* p) noexcept nogil

# ---------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------

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
    set_fault(f, typ, False, PUR_NONE, 0, NOADDR, typ != T_ABORT, False, reason)

cdef inline void fetch_abort(Fault* f, int typ, uint64_t addr) noexcept nogil:
    set_fault(f, typ, False, PUR_NONE, 0, addr, True, False, 0)

cdef int walk_event(SteCfg* ste, CdCfg* cd, WalkFault* w, Fault* f) noexcept nogil:
    """The SMMUv3 event of a walk fault (IHI 0070 7.3.12-7.3.16): F_TRANSLATION, F_ADDR_SIZE,
    F_ACCESS, F_PERMISSION, or F_WALK_EABT for an aborted table read. Stage-2 faults report
    S2=1, CLASS (what was being translated) and the IPA, and follow STE.S2R/S2S; stage-1 faults
    follow CD.R/CD.S. An external abort is always recorded. Returns -1."""
    cdef int typ
    cdef bint s2 = w.stage == 2
    cdef bint record = ste.s2_record if s2 else cd.record
    cdef bint stall = ste.s2_stall if s2 else cd.stall
    if w.kind == WF_EABT:
        typ = F_WALK_EABT
        record = True
    elif w.kind == WF_ADDR_SIZE:
        typ = F_ADDR_SIZE
    elif w.kind == WF_ACCESS:
        typ = F_ACCESS
    elif w.kind == WF_PERMISSION:
        typ = F_PERMISSION
    else:
        typ = F_TRANSLATION
    # CLASS: wtypes.Purpose has the values of the event's CLASS field (checked in walk.pyx).
    set_fault(f, typ, s2, w.purpose, w.ipa if s2 else 0, w.fetch_addr, record, stall, 0)
    return -1

# ---------------------------------------------------------------------------------------------
# STE and CD decode + architected checks
# ---------------------------------------------------------------------------------------------

cdef int s2_geometry(Caps* k, uint64_t* w, S2Cfg* s2) noexcept nogil:
    """Stage-2 geometry from STE words (IHI 0070 STES2T0SZInvalid, Arm ARM S2InvalidSL)."""
    cdef int r = s2_setup(&k.v, s2, STE_S2TG_granule_shift(STE_S2TG(w)), <int>STE_S2SL0(w),
                          <int>STE_S2T0SZ(w), STE_S2PS_addr_bits(STE_S2PS(w)), STE_S2TTB_addr(w))
    if r == GEOM_TG:
        return R_STE_S2TG
    if r == GEOM_SL0:
        return R_STE_S2SL0
    if r == GEOM_TSZ:
        return R_STE_S2T0SZ
    if r == GEOM_TTB:
        return R_STE_S2TTB
    s2.vmid = <uint16_t>STE_S2VMID(w)
    s2.affd = STE_S2AFFD(w) != 0
    s2.ha = STE_S2HA(w) != 0 and k.v.httu >= 1
    s2.hd = s2.ha and STE_S2HD(w) != 0 and k.v.httu >= 2     # {S2HA,S2HD}=0b01 acts as 0b00
    return R_NONE


cdef int ste_s2_checks(Caps* k, uint64_t* w, SteCfg* s) noexcept nogil:
    if STE_S2AA64(w) == 0:
        return R_STE_S2AA64
    if (k.ttendian == SMMU_IDR0_TTENDIAN_LE and STE_S2ENDI(w)) or (k.ttendian == SMMU_IDR0_TTENDIAN_BE and not STE_S2ENDI(w)):
        return R_STE_S2ENDI
    if (STE_S2HA(w) and k.v.httu < 1) or (STE_S2HD(w) and k.v.httu < 2):
        return R_STE_S2HTTU
    if (STE_S2S(w) and k.stall_model == SMMU_IDR0_STALL_MODEL_terminate) or (not STE_S2S(w) and k.stall_model == SMMU_IDR0_STALL_MODEL_stall_forced):
        return R_STE_S2S
    s.s2_stall = STE_S2S(w) != 0
    # IHI 0070 5.5: a fault that stalls is always recorded.
    s.s2_record = STE_S2R(w) != 0 or s.s2_stall
    return s2_geometry(k, w, &s.s2)


cdef int ste_s1_checks(Caps* k, uint64_t* w, SteCfg* s) noexcept nogil:
    # S1CDMax and S1Fmt are IGNORED when IDR1.SSIDSIZE == 0; S1Fmt also when S1CDMax == 0.
    s.s1cdmax = <int>STE_S1CDMax(w) if k.ssidsize else 0
    if s.s1cdmax > k.ssidsize:
        return R_STE_CDMAX
    s.s1fmt = <int>STE_S1Fmt(w) if s.s1cdmax else STE_S1Fmt_linear
    if s.s1fmt > STE_S1Fmt_2lvl_64k:
        s.s1fmt = STE_S1Fmt_linear            # reserved: behaves as linear
    if s.s1fmt != STE_S1Fmt_linear and not k.cd2l:
        return R_STE_CD2L
    s.s1stalld = STE_S1STALLD(w) != 0
    if s.s1stalld and k.stall_model != SMMU_IDR0_STALL_MODEL_stall_terminate:
        return R_STE_S1STALLD
    s.s1dss = <int>STE_S1DSS(w)
    s.ctxptr = STE_S1ContextPtr_addr(w)
    # S1ContextPtr must lie within the OAS (a PA) or the IAS (an IPA; IAS = OAS here).
    if s.ctxptr >> k.v.oas_bits:
        return R_STE_CTXPTR
    return R_NONE


cdef int decode_ste(WalkCtx* c, uint64_t* w, SteCfg* s) noexcept nogil:
    """Decode and check an STE (w: its words; may be s.raw) into s, which the caller zeroed;
    returns a Reason (R_NONE, R_STE_ABORT, or why it is illegal)."""
    cdef Caps* k = &c.caps
    cdef int cfg, r
    cdef bint s1, s2, strw_used
    if w != s.raw:
        memcpy(s.raw, w, 64)
    if STE_V(w) == 0:
        return R_STE_V
    cfg = <int>STE_Config(w)
    if cfg < STE_Config_bypass:             # 0b0xx: abort
        s.kind = STE_Config_abort
        return R_STE_ABORT
    s.kind = cfg
    s1 = (config_stages(cfg) & 1) != 0
    s2 = (config_stages(cfg) & 2) != 0
    if s1 and not k.s1p:
        return R_STE_S1P
    if s2 and not k.s2p:
        return R_STE_S2P
    s.vmid = <uint16_t>STE_S2VMID(w) if k.s2p else 0
    # STRW is only used for a stage-1-only STE on an SMMU with stage 1 and Hyp; otherwise it is
    # IGNORED and the StreamWorld is NS-EL1 (IHI 0070 5.2 STRW).
    strw_used = cfg == STE_Config_s1_trans and k.hyp
    s.strw_el2 = strw_used and STE_STRW(w) == STE_STRW_EL2
    if strw_used and STE_STRW(w) != STE_STRW_NS_EL1 and STE_STRW(w) != STE_STRW_EL2:
        return R_STE_STRW
    # S2VMID is checked wherever it tags translations: every translating STE on an SMMU with
    # stage 2, except stage-1-only EL2 streams (IgnoreSTES2VMID).
    if k.s2p and not k.vmid16 and (STE_S2VMID(w) >> VMID8_BITS) and not s.strw_el2:
        return R_STE_VMID16
    if k.ats and cfg != STE_Config_bypass:
        if STE_EATS(w) == STE_EATS_s1chk and (cfg != STE_Config_nested or STE_S2S(w)):
            return R_STE_EATS
        if STE_EATS(w) == STE_EATS_trans and STE_S2S(w) and s2:
            return R_STE_EATS
    if s1:
        r = ste_s1_checks(k, w, s)
        if r != R_NONE:
            return r
    if s2:
        return ste_s2_checks(k, w, s)
    return R_NONE


cdef inline int tt_reason(int geom) noexcept nogil:
    if geom == GEOM_TG:
        return R_CD_TG
    if geom == GEOM_TSZ:
        return R_CD_TSZ
    if geom == GEOM_TTB:
        return R_CD_TTB
    return R_NONE


cdef int decode_cd(WalkCtx* c, SteCfg* ste, uint64_t* w, CdCfg* d) noexcept nogil:
    """Decode and check a CD (w: its words; may be d.raw) into d, which the caller zeroed;
    returns a Reason."""
    cdef Caps* k = &c.caps
    cdef S1Cfg* s = &d.s1
    cdef int r, ips
    cdef bint epd0, epd1
    if w != d.raw:
        memcpy(d.raw, w, 64)
    if CD_V(w) == 0:
        return R_CD_V
    if CD_AA64(w) == 0:
        return R_CD_AA64
    s.el2 = ste.strw_el2
    # EL2 (E2H=0) has one VA range: EPD0/EPD1 are IGNORED (0) and there is no TTB1.
    epd0 = CD_EPD0(w) != 0 and not s.el2
    epd1 = CD_EPD1(w) != 0 or s.el2
    if not (epd0 and epd1):
        if (k.ttendian == SMMU_IDR0_TTENDIAN_LE and CD_ENDI(w)) or (k.ttendian == SMMU_IDR0_TTENDIAN_BE and not CD_ENDI(w)):
            return R_CD_ENDI
    if (CD_HA(w) and k.v.httu < 1) or (CD_HD(w) and k.v.httu < 2):
        return R_CD_HTTU
    if (CD_ASID(w) >> ASID8_BITS) and not k.asid16 and not s.el2:
        return R_CD_ASID16
    ips = CD_IPS_addr_bits(CD_IPS(w))
    if ips > k.v.oas_bits:
        ips = k.v.oas_bits
    if CD_A(w) == 0 and k.term_model == 1:
        return R_CD_A_TERM
    if (CD_S(w) and k.stall_model == SMMU_IDR0_STALL_MODEL_terminate) or (not CD_S(w) and k.stall_model == SMMU_IDR0_STALL_MODEL_stall_forced):
        return R_CD_S_STALL
    if CD_S(w) and ste.s1stalld:
        return R_CD_S_STALLD
    s.ips_bits = ips
    if not epd0:
        r = tt_reason(tt_setup(&k.v, &s.tt[0], CD_TG0_granule_shift(CD_TG0(w)), <int>CD_T0SZ(w),
                               CD_TTB0_addr(w), CD_TBI0(w) != 0, CD_HAD0(w) != 0, ips))
        if r != R_NONE:
            return r
    if not epd1:
        r = tt_reason(tt_setup(&k.v, &s.tt[1], CD_TG1_granule_shift(CD_TG1(w)), <int>CD_T1SZ(w),
                               CD_TTB1_addr(w), CD_TBI1(w) != 0, CD_HAD1(w) != 0, ips))
        if r != R_NONE:
            return r
    s.asid = 0 if s.el2 else <uint16_t>CD_ASID(w)
    s.affd = CD_AFFD(w) != 0
    d.stall = CD_S(w) != 0
    d.record = CD_R(w) != 0 or d.stall        # IHI 0070 5.5: R only suppresses if S == 0
    s.wxn = CD_WXN(w) != 0
    s.uwxn = CD_UWXN(w) != 0
    s.pan = CD_PAN(w) != 0
    s.ha = CD_HA(w) != 0
    s.hd = CD_HD(w) != 0
    return R_NONE

# ---------------------------------------------------------------------------------------------
# Stream table
# ---------------------------------------------------------------------------------------------

cdef inline int locate_ste(WalkCtx* c, uint32_t sid, SteLoc* loc, Fault* f) noexcept nogil:
    """Find the STE of sid (IHI 0070 3.3, 7.3.3): fills loc.pa, or faults."""
    cdef uint64_t l1, nsid
    cdef int log2size = c.strtab_log2size, span
    loc.table = c.strtab_base
    loc.l1_pa = NOADDR
    loc.l1 = 0
    loc.pa = NOADDR
    if log2size > c.caps.sidsize:
        log2size = c.caps.sidsize
    if <uint64_t>sid >> log2size:
        cfg_fault(f, C_BAD_STREAMID, R_SID_RANGE)
        return -1
    if c.strtab_fmt != SMMU_STRTAB_BASE_CFG_FMT_2level:
        loc.index = sid
        loc.pa = c.strtab_base + (<uint64_t>sid << STE_LOG2)
        return 0
    loc.l1_pa = c.strtab_base + (<uint64_t>(sid >> c.strtab_split) << L1_LOG2)
    if as_read64_w(&c.env.space, loc.l1_pa, &l1, WIN_STE) != 0:
        trace_add(&c.env.trace, STEP_L1STD, 0, -1, PUR_NONE, OUT_EABT, sid >> c.strtab_split,
                  sid, c.strtab_base, NOADDR, loc.l1_pa, 0)
        fetch_abort(f, F_STE_FETCH, loc.l1_pa)
        return -1
    loc.l1 = l1
    span = <int>L1STD_Span_v(l1)
    trace_add(&c.env.trace, STEP_L1STD, 0, -1, PUR_NONE, OUT_OK, sid >> c.strtab_split, sid,
              c.strtab_base, NOADDR, loc.l1_pa, l1)
    # IHI 0070 7.3.3: Span 0, reserved spans and Span > SPLIT + 1 are invalid.
    if span == 0 or span > MAX_SPAN or span > c.strtab_split + 1:
        trace_outcome(&c.env.trace, OUT_INVALID)
        cfg_fault(f, C_BAD_STREAMID, R_L1STD_SPAN)
        return -1
    nsid = sid & lowmask(c.strtab_split)
    if nsid >> (span - 1):
        trace_outcome(&c.env.trace, OUT_FAULT)
        cfg_fault(f, C_BAD_STREAMID, R_L2_INDEX)
        return -1
    # The L2 array is aligned to its size.
    loc.table = L1STD_L2Ptr_addr_v(l1) & ~lowmask(span - 1 + STE_LOG2)
    loc.index = nsid
    loc.pa = loc.table + (nsid << STE_LOG2)
    return 0


cdef int read_ste(WalkCtx* c, uint32_t sid, SteCfg* out, SteLoc* loc, Fault* f) noexcept nogil:
    return _read_ste(c, sid, out, loc, f)


cdef inline int _read_ste(WalkCtx* c, uint32_t sid, SteCfg* out, SteLoc* loc,
                          Fault* f) noexcept nogil:
    """Read and check the STE of sid from memory (no cache). 0, or -1 with f filled (an abort
    STE gives T_ABORT and leaves out decoded)."""
    cdef uint64_t* w = out.raw         # read in place: decode_ste keeps it
    cdef int r
    zero_ste(out)
    if locate_ste(c, sid, loc, f) != 0:
        return -1
    if as_read_block_w(&c.env.space, loc.pa, w, 8, WIN_STE) != 0:
        trace_add(&c.env.trace, STEP_STE, 0, -1, PUR_NONE, OUT_EABT, <uint32_t>loc.index, sid,
                  c.strtab_base, NOADDR, loc.pa, 0)
        fetch_abort(f, F_STE_FETCH, loc.pa)
        return -1
    trace_add(&c.env.trace, STEP_STE, 0, -1, PUR_NONE, OUT_OK, <uint32_t>loc.index, sid,
              c.strtab_base, NOADDR, loc.pa, w[0])
    r = decode_ste(c, w, out)
    out.ste_pa = loc.pa
    if r == R_STE_ABORT:
        cfg_fault(f, T_ABORT, R_STE_ABORT)
        return -1
    if r != R_NONE:
        trace_outcome(&c.env.trace, OUT_FAULT)
        cfg_fault(f, C_BAD_STE, r)
        return -1
    return 0


cdef int fetch_ste(WalkCtx* c, Txn* t, SteCfg* out, SteCfg** use, Fault* f) noexcept nogil:
    """The STE for t: from the config cache, else read (and cached, abort STEs too)."""
    cdef SteCfg* hit
    cdef SteLoc loc
    if c.caching:
        hit = ste_cache_get(&c.cfg, t.sid)
        if hit != NULL:
            trace_add(&c.env.trace, STEP_STE, 0, -1, PUR_NONE, OUT_CACHED, t.sid, t.sid,
                      c.strtab_base, NOADDR, hit.ste_pa, hit.raw[0])
            if hit.kind == STE_Config_abort:
                cfg_fault(f, T_ABORT, R_STE_ABORT)
                return -1
            use[0] = hit
            return 0
    if _read_ste(c, t.sid, out, &loc, f) != 0:
        if f.type == T_ABORT and c.caching:
            ste_cache_put(&c.cfg, t.sid, out)
        return -1
    if c.caching:
        ste_cache_put(&c.cfg, t.sid, out)
    use[0] = out
    return 0

# ---------------------------------------------------------------------------------------------
# Context descriptors
# ---------------------------------------------------------------------------------------------

cdef inline int cd_addr(WalkCtx* c, SteCfg* ste, uint64_t ipa, uint64_t* pa,
                        Fault* f) noexcept nogil:
    """Nested: S1ContextPtr and L1CD.L2Ptr are IPAs, translated through stage 2 (CLASS=CD)."""
    cdef S2Out o
    cdef WalkFault w
    pa[0] = ipa
    if ste.kind != STE_Config_nested:
        return 0
    if s2_walk(&c.env, &ste.s2, ipa, PUR_CFG, PERM_R | (PERM_R << 3), &o, &w) != 0:
        pa[0] = NOADDR
        return walk_event(ste, NULL, &w, f)
    pa[0] = o.pa
    return 0


cdef inline int locate_cd(WalkCtx* c, SteCfg* ste, uint32_t ssid, CdLoc* loc, Fault* f) noexcept nogil:
    """Find the CD of ssid (IHI 0070 3.3, 5.3): fills loc.cd_ipa, or faults."""
    cdef bint nested = ste.kind == STE_Config_nested
    cdef uint64_t base = ste.ctxptr, l1
    cdef int n
    loc.l1_ipa = NOADDR
    loc.l1_pa = NOADDR
    loc.l1 = 0
    loc.table = base
    loc.index = ssid
    if ste.s1fmt == STE_S1Fmt_linear or ste.s1cdmax == 0:
        loc.cd_ipa = base + (<uint64_t>ssid << STE_LOG2)
        return 0
    n = CD_LEAF_4K if ste.s1fmt == STE_S1Fmt_2lvl_4k else CD_LEAF_64K
    loc.l1_ipa = base + (<uint64_t>(ssid >> n) << L1_LOG2)
    if cd_addr(c, ste, loc.l1_ipa, &loc.l1_pa, f) != 0:
        return -1
    if as_read64_w(&c.env.space, loc.l1_pa, &l1, WIN_CD) != 0:
        trace_add(&c.env.trace, STEP_L1CD, 0, -1, PUR_NONE, OUT_EABT, ssid >> n, ssid, base,
                  loc.l1_ipa if nested else NOADDR, loc.l1_pa, 0)
        fetch_abort(f, F_CD_FETCH, loc.l1_pa)
        return -1
    loc.l1 = l1
    trace_add(&c.env.trace, STEP_L1CD, 0, -1, PUR_NONE, OUT_OK, ssid >> n, ssid, base,
              loc.l1_ipa if nested else NOADDR, loc.l1_pa, l1)
    if L1CD_V_v(l1) == 0:
        trace_outcome(&c.env.trace, OUT_INVALID)
        cfg_fault(f, C_BAD_SUBSTREAMID, R_L1CD_V)
        return -1
    if L1CD_L2Ptr_addr_v(l1) >> c.caps.v.oas_bits:
        trace_outcome(&c.env.trace, OUT_FAULT)
        cfg_fault(f, C_BAD_SUBSTREAMID, R_L1CD_RANGE)
        return -1
    loc.table = L1CD_L2Ptr_addr_v(l1)
    loc.index = ssid & lowmask(n)
    loc.cd_ipa = loc.table + (loc.index << STE_LOG2)
    return 0


cdef int read_cd(WalkCtx* c, SteCfg* ste, uint32_t ssid, CdCfg* out, CdLoc* loc,
                 Fault* f) noexcept nogil:
    return _read_cd(c, ste, ssid, out, loc, f)


cdef inline int _read_cd(WalkCtx* c, SteCfg* ste, uint32_t ssid, CdCfg* out, CdLoc* loc,
                         Fault* f) noexcept nogil:
    """Read and check CD ssid of a (stage-1) STE from memory (no cache). 0 or -1 with f."""
    cdef bint nested = ste.kind == STE_Config_nested
    cdef uint64_t* w = out.raw         # read in place: decode_cd keeps it
    cdef int r
    zero_cd(out)
    loc.cd_pa = NOADDR
    if locate_cd(c, ste, ssid, loc, f) != 0:
        return -1
    if cd_addr(c, ste, loc.cd_ipa, &loc.cd_pa, f) != 0:
        return -1
    if as_read_block_w(&c.env.space, loc.cd_pa, w, 8, WIN_CD) != 0:
        trace_add(&c.env.trace, STEP_CD, 0, -1, PUR_NONE, OUT_EABT, ssid, ssid, ste.ctxptr,
                  loc.cd_ipa if nested else NOADDR, loc.cd_pa, 0)
        fetch_abort(f, F_CD_FETCH, loc.cd_pa)
        return -1
    trace_add(&c.env.trace, STEP_CD, 0, -1, PUR_NONE, OUT_OK, ssid, ssid, ste.ctxptr,
              loc.cd_ipa if nested else NOADDR, loc.cd_pa, w[0])
    r = decode_cd(c, ste, w, out)
    out.cd_pa = loc.cd_pa
    if r != R_NONE:
        trace_outcome(&c.env.trace, OUT_FAULT)
        cfg_fault(f, C_BAD_CD, r)
        return -1
    return 0


cdef int fetch_cd(WalkCtx* c, Txn* t, SteCfg* ste, uint32_t ssid, CdCfg* out, CdCfg** use,
                  Fault* f) noexcept nogil:
    cdef CdCfg* hit
    cdef CdLoc loc
    if c.caching:
        hit = cd_cache_get(&c.cfg, t.sid, ssid)
        if hit != NULL:
            trace_add(&c.env.trace, STEP_CD, 0, -1, PUR_NONE, OUT_CACHED, ssid, ssid,
                      ste.ctxptr, NOADDR, hit.cd_pa, hit.raw[0])
            use[0] = hit
            return 0
    if _read_cd(c, ste, ssid, out, &loc, f) != 0:
        return -1
    if c.caching:
        cd_cache_put(&c.cfg, t.sid, ssid, out)
    use[0] = out
    return 0

# ---------------------------------------------------------------------------------------------
# Translation
# ---------------------------------------------------------------------------------------------

cdef inline int need_bits(Txn* t) noexcept nogil:
    cdef int n = PERM_X if t.instr else (PERM_W if t.write else PERM_R)
    return n if t.priv else n << 3


cdef inline int grant(WalkResult* r, Txn* t, uint64_t out, int perm) noexcept nogil:
    r.out = out
    r.perm = (perm >> (0 if t.priv else 3)) & 7
    return 0


cdef int stream_stages(WalkCtx* c, Txn* t, SteCfg* ste, uint32_t* ssid, Fault* f) noexcept nogil:
    return _stream_stages(c, t, ste, ssid, f)


cdef inline int _stream_stages(WalkCtx* c, Txn* t, SteCfg* ste, uint32_t* ssid,
                               Fault* f) noexcept nogil:
    """The stages this transaction goes through (bit 0 stage 1, bit 1 stage 2) and the CD to
    use, by the SubstreamID rules (IHI 0070 5.2 S1DSS, 3.9); -1 with f on a fault."""
    cdef int stages = config_stages(ste.kind)
    ssid[0] = 0
    if not (stages & 1):
        if t.ssv:
            cfg_fault(f, C_BAD_SUBSTREAMID, R_SSV_NO_S1)
            return -1
        return stages
    if t.ssv:
        if ste.s1cdmax == 0:
            cfg_fault(f, C_BAD_SUBSTREAMID, R_SSV_CDMAX0)
            return -1
        if <uint64_t>t.ssid >> ste.s1cdmax:
            cfg_fault(f, C_BAD_SUBSTREAMID, R_SSID_RANGE)
            return -1
        if t.ssid == 0 and ste.s1dss == STE_S1DSS_substream0:
            # IHI 0070 5.2 S1DSS=0b10, 7.3.7: terminated as F_STREAM_DISABLED.
            cfg_fault(f, F_STREAM_DISABLED, R_SSID0_DISABLED)
            return -1
        ssid[0] = t.ssid
    elif ste.s1cdmax != 0:
        if ste.s1dss != STE_S1DSS_bypass and ste.s1dss != STE_S1DSS_substream0:
            cfg_fault(f, F_STREAM_DISABLED, R_S1DSS_TERMINATE)
            return -1
        if ste.s1dss == STE_S1DSS_bypass:
            stages &= 2                       # S1DSS=bypass: stage 1 is skipped
    return stages


cdef int no_stages(WalkCtx* c, Txn* t, WalkResult* r, Fault* f) noexcept nogil:
    """Full bypass: the address must fit the PA size."""
    if t.addr >> c.caps.v.oas_bits:
        set_fault(f, F_ADDR_SIZE, False, PUR_IN, 0, NOADDR, True, False, 0)
        return -1
    return grant(r, t, t.addr, 0x3F)


cdef int translate_s2(WalkCtx* c, Txn* t, SteCfg* ste, WalkResult* r, Fault* f) noexcept nogil:
    """Stage 2 only: the input is an IPA, first checked against IAS (= OAS, AArch64 only)."""
    cdef int need = need_bits(t)
    cdef TlbEntry* hit
    cdef TlbEntry e
    cdef S2Out o
    if t.addr >> c.caps.v.oas_bits:
        set_fault(f, F_ADDR_SIZE, False, PUR_IN, 0, NOADDR, True, False, 0)
        return -1
    if c.caching:
        hit = tlb_lookup(&c.tlb, TLB_S2, ste.s2.vmid, 0, t.addr, shifts_of(ste.s2.g, ste.s2.start))
        if hit != NULL:
            c.tlb.hits += 1
            r.hit = 1
            trace_add(&c.env.trace, STEP_TLB, 2, hit.s2level, PUR_IN, OUT_CACHED, 0, t.addr,
                      hit.in_base, NOADDR, NOADDR, hit.out_base)
            if (hit.s2perm & need) != need:
                set_fault(f, F_PERMISSION, True, PUR_IN, t.addr, NOADDR, ste.s2_record,
                          ste.s2_stall, 0)
                return -1
            return grant(r, t, hit.out_base | (t.addr & lowmask(hit.shift)), hit.s2perm)
        c.tlb.misses += 1
    if s2_walk(&c.env, &ste.s2, t.addr, PUR_IN, need, &o, &r.fault) != 0:
        return walk_event(ste, NULL, &r.fault, f)
    if c.caching and not o.perm & PERM_WCLEAN:
        memset(&e, 0, sizeof(TlbEntry))
        e.kind = TLB_S2
        e.vmid = ste.s2.vmid
        e.in_base = t.addr & ~lowmask(o.shift)
        e.out_base = o.pa & ~lowmask(o.shift)
        e.shift = o.shift
        e.s2level = o.level
        e.s1perm = 0x3F
        e.s2perm = o.perm
        tlb_insert(&c.tlb, &e)
    return grant(r, t, o.pa, o.perm)


cdef int s1_tlb_hit(WalkCtx* c, Txn* t, SteCfg* ste, CdCfg* cd, int tkind, WalkResult* r,
                    Fault* f) noexcept nogil:
    """Look the transaction up in the IOTLB: 1 hit (r or f filled), 0 miss."""
    cdef S1Cfg* s1 = &cd.s1
    cdef bint nested = tkind == TLB_NESTED
    cdef int need = need_bits(t)
    cdef int region = s1_region(s1, t.addr)
    cdef uint64_t shifts, ipa
    cdef TlbEntry* hit
    if not s1.tt[region].enabled:
        return 0
    shifts = shifts_of(s1.tt[region].g, s1.tt[region].start)
    if nested:
        shifts |= shifts_of(ste.s2.g, ste.s2.start)
    hit = tlb_lookup(&c.tlb, tkind, 0 if s1.el2 else ste.vmid, s1.asid, t.addr, shifts)
    if hit == NULL:
        c.tlb.misses += 1
        return 0
    c.tlb.hits += 1
    r.hit = 1
    trace_add(&c.env.trace, STEP_TLB, 1, hit.s1level, PUR_IN, OUT_CACHED, 0, t.addr,
              hit.in_base, NOADDR, NOADDR, hit.out_base)
    ipa = hit.ipa_base | (t.addr & lowmask(hit.shift))
    if (hit.s1perm & need) != need:
        set_fault(f, F_PERMISSION, False, PUR_IN, 0, NOADDR, cd.record, cd.stall, 0)
    elif (hit.s2perm & need) != need:
        set_fault(f, F_PERMISSION, True, PUR_IN, ipa, NOADDR, ste.s2_record, ste.s2_stall, 0)
    else:
        if nested:
            r.ipa = ipa
        grant(r, t, hit.out_base | (t.addr & lowmask(hit.shift)), hit.s1perm & hit.s2perm)
    return 1


cdef void s1_tlb_fill(WalkCtx* c, Txn* t, SteCfg* ste, CdCfg* cd, int tkind, S1Out* o1,
                      S2Out* o2, uint64_t pa) noexcept nogil:
    cdef TlbEntry e
    memset(&e, 0, sizeof(TlbEntry))
    e.kind = tkind
    e.vmid = 0 if cd.s1.el2 else ste.vmid
    e.asid = cd.s1.asid
    e.is_global = o1.is_global or cd.s1.el2
    e.shift = o1.shift if o1.shift < o2.shift else o2.shift
    e.in_base = t.addr & ~lowmask(e.shift)
    e.out_base = pa & ~lowmask(e.shift)
    e.ipa_base = o1.ipa & ~lowmask(e.shift)
    e.s1level = o1.level
    e.s2level = o2.level
    e.s1perm = o1.perm
    e.s2perm = o2.perm
    tlb_insert(&c.tlb, &e)


cdef int translate_s1(WalkCtx* c, Txn* t, SteCfg* ste, CdCfg* cd, bint nested, WalkResult* r,
                      Fault* f) noexcept nogil:
    """Stage 1, then stage 2 of its output when nested (stage-1 tables read through stage 2)."""
    cdef int need = need_bits(t)
    cdef int tkind = TLB_EL2 if cd.s1.el2 else (TLB_NESTED if nested else TLB_S1)
    cdef S1Out o1
    cdef S2Out o2
    if c.caching and s1_tlb_hit(c, t, ste, cd, tkind, r, f):
        return -1 if f.type != EVT_NONE else 0
    if s1_walk(&c.env, &cd.s1, &ste.s2 if nested else NULL, t.addr, need, &o1, &r.fault) != 0:
        return walk_event(ste, cd, &r.fault, f)
    o2.pa = o1.ipa
    o2.perm = 0x3F
    o2.shift = 64
    o2.level = 0
    if nested:
        r.ipa = o1.ipa
        if s2_walk(&c.env, &ste.s2, o1.ipa, PUR_IN, need, &o2, &r.fault) != 0:
            return walk_event(ste, cd, &r.fault, f)
    if c.caching and not (o1.perm | o2.perm) & PERM_WCLEAN:
        s1_tlb_fill(c, t, ste, cd, tkind, &o1, &o2, o2.pa)
    return grant(r, t, o2.pa, o1.perm & o2.perm)


cdef int translate(WalkCtx* c, Txn* t, WalkResult* r, Fault* f) noexcept nogil:
    """Translate one transaction: 0 with r filled, or -1 with the event (or T_ABORT) in f."""
    cdef SteCfg ste_buf
    cdef CdCfg cd_buf
    cdef SteCfg* ste
    cdef CdCfg* cd
    cdef uint32_t ssid
    cdef int stages
    r.out = NOADDR
    r.ipa = NOADDR
    r.perm = 0
    r.hit = 0
    r.fault.kind = WF_NONE
    f.type = EVT_NONE
    f.reason = 0
    if not c.smmuen:
        if c.gbpa_abort or t.addr >> c.caps.v.oas_bits:
            cfg_fault(f, T_ABORT, R_GBPA_ABORT if c.gbpa_abort else R_BYPASS_OAS)
            return -1
        return grant(r, t, t.addr, 0x3F)
    if fetch_ste(c, t, &ste_buf, &ste, f) != 0:
        return -1
    stages = _stream_stages(c, t, ste, &ssid, f)
    if stages < 0:
        return -1
    if stages == 0:
        return no_stages(c, t, r, f)
    if stages == 2:
        return translate_s2(c, t, ste, r, f)
    if fetch_cd(c, t, ste, ssid, &cd_buf, &cd, f) != 0:
        return -1
    return translate_s1(c, t, ste, cd, stages == 3, r, f)
