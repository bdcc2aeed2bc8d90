# cython: language_level=3
"""The Intel VT-d DMA translation core, scalable mode (VT-d spec 3.4-3.8, 9.1-9.8, fault
conditions 7.1.3), and its Python face, VtdWalker.

RID -> root entry (lower/upper half by devfn) -> scalable-mode context entry -> PASID directory
(PASID[19:6]) -> PASID table entry (PASID[5:0]) -> by PGTT: first stage (x86 4/5-level paging),
second stage (3/4/5 levels by AW), nested (every first-stage table fetch and the output through
the second stage) or pass-through. Requests without PASID use the context entry's RID_PASID.

Same design as the SMMUv3 core: nogil, no Python object per entry, a trace by pointer into the
shared wtypes.Trace, the paging walks' faults as the shared wtypes.WalkFault, which translate()
turns into a VT-d fault record with the architected fault reason. Every bit position comes from
the generated accessors (core_cy/_vtd_fields.pxd, core_cy/_vtd.pxd) of smmudbg/arch/vtd. The
choices where the spec leaves room are the reference walker's (smmudbg/vtd_refwalk.py, listed
in docs/vtd.md); tests/test_vtd_walk.py compares the two.
"""
from libc.stdint cimport uint64_t, uint32_t, uint8_t
from libc.stdlib cimport calloc, free
from libc.string cimport memset, memcpy
cimport numpy as cnp
import numpy as np
from core_cy.batch import batch_inputs
from core_cy.physmem cimport PhysMem
from core_cy.wtypes cimport (WalkFault, Trace, TraceStep, NOADDR, lowmask, trace_add,
                             trace_outcome, wfault, WF_NONE, WF_TRANSLATION, WF_ADDR_SIZE,
                             WF_ACCESS, WF_PERMISSION, WF_EABT, WF_RESERVED, PUR_CFG, PUR_TT,
                             PUR_IN, PERM_R, PERM_W, PERM_X, STEP_S1, STEP_S2, OUT_OK, OUT_TABLE,
                             OUT_BLOCK, OUT_PAGE, OUT_INVALID, OUT_FAULT, OUT_EABT, OUT_CACHED,
                             STEP_TLB)
from core_cy.vmsa cimport AS_PHYS, as_read64, as_read_block, as_write64
from core_cy._vtd cimport *
from core_cy._vtd_fields cimport *

cnp.import_array()

# Table geometry, not field encodings (VT-d 9.4-9.8, smmudbg/arch/vtd entries.py and
# paging.py CODES): a PASID table holds 2^6 entries indexed by PASID[5:0]; the directory,
# indexed by PASID[19:6], has 2^(PDTS+7) entries; paging tables resolve 9 bits a level.
cdef enum:
    PT_INDEX_BITS = PASID_TABLE_INDEX_BITS
    PDTS_BASE = PASID_DIR_PDTS_BASE
    PAGE_SHIFT = PAGING_PAGE_SHIFT
    LEVEL_BITS = PAGING_LEVEL_BITS
    MAX_PEND = 96
    MAX_PSC_FILL = 40    # non-leaf entries one translation reads: nested 5+5 levels, 6 SS walks

# The interrupt address range (VT-d 3.15; smmudbg/arch/vtd/interrupt.py INTERRUPT_RANGE, checked
# at import below).
cdef uint64_t INT_FIRST = 0xFEE00000
cdef uint64_t INT_LAST = 0xFEEFFFFF

# Reserved bits of the configuration structures: what no field of the table covers.
cdef uint64_t CTX0_FIELDS = (SM_CONTEXT_ENTRY_P_MASK | SM_CONTEXT_ENTRY_FPD_MASK |
                             SM_CONTEXT_ENTRY_DTE_MASK | SM_CONTEXT_ENTRY_PASIDE_MASK |
                             SM_CONTEXT_ENTRY_PRE_MASK | SM_CONTEXT_ENTRY_PDTS_MASK |
                             SM_CONTEXT_ENTRY_PASIDDIRPTR_MASK)
cdef uint64_t PDE_FIELDS = (PASID_DIR_ENTRY_P_MASK | PASID_DIR_ENTRY_FPD_MASK |
                            PASID_DIR_ENTRY_SMPTBLPTR_MASK)
cdef uint64_t PE0_FIELDS = (PASID_ENTRY_P_MASK | PASID_ENTRY_FPD_MASK | PASID_ENTRY_AW_MASK |
                            PASID_ENTRY_SLEE_MASK | PASID_ENTRY_PGTT_MASK |
                            PASID_ENTRY_SLADE_MASK | PASID_ENTRY_SLPTPTR_MASK)
cdef uint64_t PE1_FIELDS = (PASID_ENTRY_DID_MASK | PASID_ENTRY_PWSNP_MASK |
                            PASID_ENTRY_PGSNP_MASK | PASID_ENTRY_CD_MASK |
                            PASID_ENTRY_EMTE_MASK | PASID_ENTRY_EMT_MASK |
                            PASID_ENTRY_PWT_MASK | PASID_ENTRY_PCD_MASK | PASID_ENTRY_PAT_MASK)
cdef uint64_t PE2_FIELDS = (PASID_ENTRY_SRE_MASK | PASID_ENTRY_ERE_MASK |
                            PASID_ENTRY_FLPM_MASK | PASID_ENTRY_WPE_MASK |
                            PASID_ENTRY_NXE_MASK | PASID_ENTRY_SMEP_MASK |
                            PASID_ENTRY_EAFE_MASK | PASID_ENTRY_FLPTPTR_MASK)

# ---------------------------------------------------------------------------------------------
# Fault records
# ---------------------------------------------------------------------------------------------

cdef inline bint not_qualified(int reason) noexcept nogil:
    """Faults FPD cannot suppress: found before a context entry, or errors accessing one of
    the configuration structures (VT-d 7.1.2)."""
    return reason in (RTA_1, RTA_2, SRT_1, SRT_2, SRT_3, SCT_1, SPD_1, SPT_1)


cdef inline int cfg_fail(VtdFault* f, VtdTxn* t, VtdCfg* g, int reason) noexcept nogil:
    f.reason = reason
    f.qualified = not not_qualified(reason)
    f.recorded = not (f.qualified and g.fpd)
    f.fi = t.addr & ~lowmask(PAGE_SHIFT)
    return -1


cdef int walk_reason(VtdFault* f) noexcept nogil:
    """The fault reason of a paging-walk fault (VT-d 7.1.3, scalable mode)."""
    cdef WalkFault* w = &f.walk
    cdef bint root = w.level == f.start
    if w.stage == 2:
        if w.purpose == PUR_TT:                      # a first-stage table fetch (nested)
            if w.kind == WF_TRANSLATION and w.level < 0:
                return SFS_5
            if w.kind == WF_PERMISSION:
                if f.missing & PERM_W:
                    return SFS_8
                return SFS_6 if f.fs_level == f.fs_start else SFS_7
        if w.kind == WF_TRANSLATION:
            return SGN_5 if w.level < 0 else SSS_2
        if w.kind == WF_RESERVED:
            return SSS_3
        if w.kind == WF_EABT:
            return SSS_4 if root else SSS_1
        if w.kind == WF_ACCESS:
            return SSS_5
        if w.kind == WF_PERMISSION:
            if f.missing & PERM_W:
                return SGN_6
            if f.missing & PERM_R:
                return SGN_7
            return SGN_3
        return 0
    if w.kind == WF_TRANSLATION:
        return SGN_1 if w.level < 0 else SFS_2
    if w.kind == WF_RESERVED:
        return SFS_3
    if w.kind == WF_EABT:
        return SFS_4 if root else SFS_1
    if w.kind == WF_ACCESS:
        return SFS_9
    if w.kind == WF_PERMISSION:
        if f.missing & PERM_R:
            return SGN_2
        if f.missing & PERM_W:
            return SGN_6
        return SGN_3
    return 0

# ---------------------------------------------------------------------------------------------
# Root, context, PASID directory, PASID table entry
# ---------------------------------------------------------------------------------------------

cdef inline void cfg_step(VtdCtx* c, int kind, int outcome, uint32_t index, uint64_t in_addr,
                          uint64_t table, uint64_t pa, uint64_t desc) noexcept nogil:
    trace_add(&c.trace, kind, 0, -1, PUR_CFG, outcome, index, in_addr, table, NOADDR, pa, desc)


cdef inline bint cache_on(VtdCtx* c) noexcept nogil:
    return c.caching and not c.dry and c.cache.ctx != NULL


cdef inline uint32_t mix(uint64_t a, uint64_t b) noexcept nogil:
    cdef uint64_t h = (a * <uint64_t>0x9E3779B97F4A7C15) ^ (b * <uint64_t>0xC2B2AE3D27D4EB4F)
    return <uint32_t>(h ^ (h >> 29))


cdef inline CtxSlot* ctx_slot(VtdCtx* c, uint32_t sid) noexcept nogil:
    return &c.cache.ctx[mix(sid, 1) & c.cache.ctx_mask]


cdef inline PasidSlot* pc_slot(VtdCtx* c, uint32_t sid, uint32_t pasid) noexcept nogil:
    return &c.cache.pc[mix(sid, pasid) & c.cache.pc_mask]


cdef inline TlbSlot* tlb_slot(VtdCtx* c, uint32_t did, uint32_t pasid, uint64_t addr,
                              int shift) noexcept nogil:
    return &c.cache.tlb[mix((<uint64_t>did << 20) | pasid, (addr >> shift) * 64 + shift)
                        & c.cache.tlb_mask]


cdef int vtd_config(VtdCtx* c, VtdTxn* t, VtdCfg* g, VtdFault* f) noexcept nogil:
    """Read the structures from the root entry to the PASID table entry and check them; the
    context entry and the PASID table entry come from the context- and PASID-caches when
    there (they hold valid entries only, which go through the same checks)."""
    cdef VtdUnit* u = &c.unit
    cdef uint64_t ptr_rsvd = ~lowmask(u.haw)      # pointer bits above the host address width
    cdef uint32_t devfn = t.sid & 0xFF
    cdef int ttm = <int>RTADDR_REG_TTM_v(u.rtaddr)
    cdef CtxSlot* cs = NULL
    cdef bint ctx_hit = False
    memset(g, 0, sizeof(VtdCfg))
    # Legacy mode never gets here (translate); TTM=10b is reserved.
    if (ttm != RTADDR_REG_TTM_scalable and ttm != RTADDR_REG_TTM_abort_dma) or \
            (ttm == RTADDR_REG_TTM_scalable and not ECAP_REG_SMTS_v(u.ecap)) or \
            (ttm == RTADDR_REG_TTM_abort_dma and not ECAP_REG_ADMS_v(u.ecap)):
        return cfg_fail(f, t, g, RTA_1)
    if cache_on(c):
        cs = ctx_slot(c, t.sid)
        ctx_hit = cs.valid and cs.sid == t.sid
    if ctx_hit:
        g.root_pa = cs.root_pa
        g.root = cs.root
        g.ctx_pa = cs.ctx_pa
        memcpy(g.ctx, cs.ctx, sizeof(g.ctx))
        g.reached = 2
        cfg_step(c, VSTEP_CONTEXT, OUT_CACHED, devfn & lowmask(SM_CONTEXT_INDEX_BITS), t.sid,
                 g.ctx_pa - SM_CONTEXT_ENTRY_BYTES * (devfn & lowmask(SM_CONTEXT_INDEX_BITS)),
                 g.ctx_pa, g.ctx[0])
        g.fpd = SM_CONTEXT_ENTRY_FPD(g.ctx) != 0
    else:
        if read_root_context(c, t, g, f, ptr_rsvd) != 0:
            return -1
    if not ctx_hit and cs != NULL:
        cs.valid = True
        cs.sid = t.sid
        cs.root_pa = g.root_pa
        cs.root = g.root
        cs.ctx_pa = g.ctx_pa
        memcpy(cs.ctx, g.ctx, sizeof(g.ctx))
    return pasid_path(c, t, g, f, ptr_rsvd)


cdef int read_root_context(VtdCtx* c, VtdTxn* t, VtdCfg* g, VtdFault* f,
                           uint64_t ptr_rsvd) noexcept nogil:
    """Root entry and context entry from memory, with the checks of a present entry."""
    cdef VtdUnit* u = &c.unit
    cdef uint64_t w[2]
    cdef uint64_t rta = RTADDR_REG_RTA_addr_v(u.rtaddr), half, ctp, rsvd, rsvd1
    cdef uint32_t bus = (t.sid >> 8) & 0xFF, devfn = t.sid & 0xFF
    cdef bint upper = (devfn >> SM_CONTEXT_INDEX_BITS) != 0
    # Root entry: 16 bytes per bus; the lower half for devfn 0-127, the upper for 128-255.
    g.root_pa = rta + SM_ROOT_ENTRY_BYTES * bus
    half = 8 if upper else 0
    if as_read_block(&c.space, g.root_pa, w, 2) != 0:
        cfg_step(c, VSTEP_ROOT, OUT_EABT, bus, t.sid, rta, g.root_pa + half, 0)
        return cfg_fail(f, t, g, SRT_1)
    g.reached = 1
    g.root = w[1] if upper else w[0]
    g.root_pa += half
    cfg_step(c, VSTEP_ROOT, OUT_OK, bus, t.sid, rta, g.root_pa, g.root)
    if upper:
        if not SM_ROOT_ENTRY_UP(w):
            trace_outcome(&c.trace, OUT_INVALID)
            return cfg_fail(f, t, g, SRT_2)
        rsvd = (w[1] & ~(SM_ROOT_ENTRY_UP_MASK | SM_ROOT_ENTRY_UCTP_MASK)) | (w[1] & ptr_rsvd)
        ctp = SM_ROOT_ENTRY_UCTP_addr(w)
    else:
        if not SM_ROOT_ENTRY_LP(w):
            trace_outcome(&c.trace, OUT_INVALID)
            return cfg_fail(f, t, g, SRT_2)
        rsvd = (w[0] & ~(SM_ROOT_ENTRY_LP_MASK | SM_ROOT_ENTRY_LCTP_MASK)) | (w[0] & ptr_rsvd)
        ctp = SM_ROOT_ENTRY_LCTP_addr(w)
    if rsvd:
        trace_outcome(&c.trace, OUT_FAULT)
        return cfg_fail(f, t, g, SRT_3)
    # Scalable-mode context entry: 32 bytes, 128 per table.
    g.ctx_pa = ctp + SM_CONTEXT_ENTRY_BYTES * (devfn & lowmask(SM_CONTEXT_INDEX_BITS))
    if as_read_block(&c.space, g.ctx_pa, g.ctx, 4) != 0:
        cfg_step(c, VSTEP_CONTEXT, OUT_EABT, devfn, t.sid, ctp, g.ctx_pa, 0)
        return cfg_fail(f, t, g, SCT_1)
    g.reached = 2
    cfg_step(c, VSTEP_CONTEXT, OUT_OK, devfn & lowmask(SM_CONTEXT_INDEX_BITS), t.sid, ctp,
             g.ctx_pa, g.ctx[0])
    g.fpd = SM_CONTEXT_ENTRY_FPD(g.ctx) != 0
    if not SM_CONTEXT_ENTRY_P(g.ctx):
        trace_outcome(&c.trace, OUT_INVALID)
        return cfg_fail(f, t, g, SCT_2)
    rsvd1 = ~(SM_CONTEXT_ENTRY_RID_PASID_MASK |
              (SM_CONTEXT_ENTRY_RID_PRIV_MASK if ECAP_REG_RPRIVS_v(u.ecap) else 0))
    if (g.ctx[0] & (~CTX0_FIELDS | ptr_rsvd)) or (g.ctx[1] & rsvd1) or g.ctx[2] or g.ctx[3] or \
            (SM_CONTEXT_ENTRY_DTE(g.ctx) and not ECAP_REG_DT_v(u.ecap)) or \
            (SM_CONTEXT_ENTRY_PRE(g.ctx) and not ECAP_REG_PRS_v(u.ecap)):
        trace_outcome(&c.trace, OUT_FAULT)
        return cfg_fail(f, t, g, SCT_3)
    return 0


cdef int pasid_path(VtdCtx* c, VtdTxn* t, VtdCfg* g, VtdFault* f,
                    uint64_t ptr_rsvd) noexcept nogil:
    """The request's checks against the context entry, then the PASID directory and table
    entries (from the PASID-cache when there), and their checks."""
    cdef VtdUnit* u = &c.unit
    cdef uint64_t base
    cdef uint32_t pasid
    cdef int pgtt, aw, flpm
    cdef PasidSlot* ps = NULL
    cdef bint pc_hit = False
    if t.at == FRCD_REG_AT_translation_request and not SM_CONTEXT_ENTRY_DTE(g.ctx):
        trace_outcome(&c.trace, OUT_FAULT)
        return cfg_fail(f, t, g, SCT_5)
    if t.pv:
        if not SM_CONTEXT_ENTRY_PASIDE(g.ctx):
            trace_outcome(&c.trace, OUT_FAULT)
            return cfg_fail(f, t, g, SCT_6)
        pasid = t.pasid
        g.priv = t.priv
    else:
        pasid = <uint32_t>SM_CONTEXT_ENTRY_RID_PASID(g.ctx)
        g.priv = SM_CONTEXT_ENTRY_RID_PRIV(g.ctx) != 0 and ECAP_REG_RPRIVS_v(u.ecap) != 0
    g.pasid = pasid
    if (pasid >> PT_INDEX_BITS) >= (<uint64_t>1 << (SM_CONTEXT_ENTRY_PDTS(g.ctx) + PDTS_BASE)):
        trace_outcome(&c.trace, OUT_FAULT)
        return cfg_fail(f, t, g, SCT_7 if t.pv else SCT_4)
    if cache_on(c):
        ps = pc_slot(c, t.sid, pasid)
        pc_hit = ps.valid and ps.sid == t.sid and ps.pasid == pasid
    if pc_hit:
        g.dir_pa = ps.dir_pa
        g.pde = ps.pde
        g.pe_pa = ps.pe_pa
        memcpy(g.pe, ps.pe, sizeof(g.pe))
        g.reached = 4
        g.fpd = g.fpd or PASID_DIR_ENTRY_FPD_v(g.pde) != 0 or PASID_ENTRY_FPD(g.pe) != 0
        cfg_step(c, VSTEP_PASID_ENTRY, OUT_CACHED, pasid & lowmask(PT_INDEX_BITS), pasid,
                 g.pe_pa - PASID_ENTRY_BYTES * (pasid & lowmask(PT_INDEX_BITS)), g.pe_pa, g.pe[0])
        return pasid_entry_checks(c, t, g, f, ptr_rsvd, NULL, True)
    # PASID directory entry.
    base = SM_CONTEXT_ENTRY_PASIDDIRPTR_addr(g.ctx)
    g.dir_pa = base + 8 * (pasid >> PT_INDEX_BITS)
    if as_read64(&c.space, g.dir_pa, &g.pde) != 0:
        cfg_step(c, VSTEP_PASID_DIR, OUT_EABT, pasid >> PT_INDEX_BITS, pasid, base, g.dir_pa, 0)
        return cfg_fail(f, t, g, SPD_1)
    g.reached = 3
    cfg_step(c, VSTEP_PASID_DIR, OUT_OK, pasid >> PT_INDEX_BITS, pasid, base, g.dir_pa, g.pde)
    g.fpd = g.fpd or PASID_DIR_ENTRY_FPD_v(g.pde) != 0
    if not PASID_DIR_ENTRY_P_v(g.pde):
        trace_outcome(&c.trace, OUT_INVALID)
        return cfg_fail(f, t, g, SPD_2)
    if g.pde & (~PDE_FIELDS | ptr_rsvd):
        trace_outcome(&c.trace, OUT_FAULT)
        return cfg_fail(f, t, g, SPD_3)
    # PASID table entry: 64 bytes.
    base = PASID_DIR_ENTRY_SMPTBLPTR_addr_v(g.pde)
    g.pe_pa = base + PASID_ENTRY_BYTES * (pasid & lowmask(PT_INDEX_BITS))
    if as_read_block(&c.space, g.pe_pa, g.pe, 8) != 0:
        cfg_step(c, VSTEP_PASID_ENTRY, OUT_EABT, pasid & lowmask(PT_INDEX_BITS), pasid, base,
                 g.pe_pa, 0)
        return cfg_fail(f, t, g, SPT_1)
    g.reached = 4
    cfg_step(c, VSTEP_PASID_ENTRY, OUT_OK, pasid & lowmask(PT_INDEX_BITS), pasid, base, g.pe_pa,
             g.pe[0])
    g.fpd = g.fpd or PASID_ENTRY_FPD(g.pe) != 0
    if not PASID_ENTRY_P(g.pe):
        trace_outcome(&c.trace, OUT_INVALID)
        return cfg_fail(f, t, g, SPT_2)
    return pasid_entry_checks(c, t, g, f, ptr_rsvd, ps, False)


cdef int pasid_entry_checks(VtdCtx* c, VtdTxn* t, VtdCfg* g, VtdFault* f, uint64_t ptr_rsvd,
                            PasidSlot* fill, bint cached) noexcept nogil:
    """The checks of a present PASID table entry; a valid one is cached in fill (if given)
    before the checks that depend on the request (ERE, SRE)."""
    cdef VtdUnit* u = &c.unit
    cdef int pgtt, aw, flpm
    trace_outcome(&c.trace, OUT_FAULT)             # until every check below passes
    if (g.pe[0] & ~PE0_FIELDS) or (g.pe[1] & ~PE1_FIELDS) or (g.pe[2] & ~PE2_FIELDS) or \
            g.pe[3] or g.pe[4] or g.pe[5] or g.pe[6] or g.pe[7]:
        return cfg_fail(f, t, g, SPT_3)
    pgtt = <int>PASID_ENTRY_PGTT(g.pe)
    if not ((pgtt == PASID_ENTRY_PGTT_first_stage and ECAP_REG_FLTS_v(u.ecap)) or
            (pgtt == PASID_ENTRY_PGTT_second_stage and ECAP_REG_SLTS_v(u.ecap)) or
            (pgtt == PASID_ENTRY_PGTT_nested and ECAP_REG_NEST_v(u.ecap)) or
            (pgtt == PASID_ENTRY_PGTT_pass_through and ECAP_REG_PT_v(u.ecap))):
        return cfg_fail(f, t, g, SPT_4)
    g.pgtt = pgtt
    if pgtt == PASID_ENTRY_PGTT_second_stage or pgtt == PASID_ENTRY_PGTT_nested:
        aw = <int>PASID_ENTRY_AW(g.pe)
        if PASID_ENTRY_AW_addr_bits(aw) == 0 or not (CAP_REG_SAGAW_v(u.cap) >> aw) & 1:
            return cfg_fail(f, t, g, SPT_4)
        if g.pe[0] & ptr_rsvd:
            return cfg_fail(f, t, g, SPT_3)
    if pgtt == PASID_ENTRY_PGTT_first_stage or pgtt == PASID_ENTRY_PGTT_nested:
        flpm = <int>PASID_ENTRY_FLPM(g.pe)
        if PASID_ENTRY_FLPM_addr_bits(flpm) == 0 or \
                (flpm == PASID_ENTRY_FLPM_5level and not CAP_REG_FL5LP_v(u.cap)):
            return cfg_fail(f, t, g, SPT_4)
        if g.pe[2] & ptr_rsvd:
            return cfg_fail(f, t, g, SPT_3)
    if fill != NULL:
        fill.valid = True
        fill.sid = t.sid
        fill.pasid = g.pasid
        fill.did = <uint32_t>PASID_ENTRY_DID(g.pe)
        fill.dir_pa = g.dir_pa
        fill.pde = g.pde
        fill.pe_pa = g.pe_pa
        memcpy(fill.pe, g.pe, sizeof(g.pe))
    if t.exe and not PASID_ENTRY_ERE(g.pe):
        return cfg_fail(f, t, g, SPT_5)
    if g.priv and not PASID_ENTRY_SRE(g.pe):
        return cfg_fail(f, t, g, SPT_6)
    trace_outcome(&c.trace, OUT_CACHED if cached else OUT_OK)
    return 0

# ---------------------------------------------------------------------------------------------
# Paging walks
# ---------------------------------------------------------------------------------------------

cdef struct SsOut:
    uint64_t pa          # the translated address
    int shift
    int r, w, x          # accumulated over the levels
    uint64_t leaf_pa, leaf
    uint64_t used[5]
    int nused

cdef struct FsEntry:     # a first-stage entry used, for its A/D update after the walk
    uint64_t pa, e
    int level
    bint leaf
    uint64_t ss_leaf_pa  # nested: the second-stage leaf of the entry's table page
    bint ss_w

cdef struct PscFill:     # a non-leaf entry the walk read, cached when the translation succeeds
    int stage, level, levels
    bint nested
    uint64_t tag, table, entry_pa, next
    int r, w, x

cdef struct Walk:
    VtdCtx* c
    VtdTxn* t
    VtdCfg* g
    VtdFault* f
    int ss_levels, ss_width
    AdPend pend[MAX_PEND]
    int npend
    FsEntry fse[5]
    int nfse
    bint psc             # paging-structure caches in use (caching on, not dry)
    uint32_t did
    PscFill pf[MAX_PSC_FILL]
    int npf


cdef inline void walk_init(Walk* w, VtdCtx* c, VtdTxn* t, VtdCfg* g, VtdFault* f) noexcept nogil:
    """Every field of a walk's state, set in one place for each walk that uses one."""
    cdef int aw
    w.c = c
    w.t = t
    w.g = g
    w.f = f
    w.npend = 0
    w.nfse = 0
    w.npf = 0
    w.psc = cache_on(c)
    w.did = <uint32_t>PASID_ENTRY_DID(g.pe)
    aw = <int>PASID_ENTRY_AW(g.pe)
    w.ss_width = PASID_ENTRY_AW_addr_bits(aw)
    w.ss_levels = (w.ss_width - PAGE_SHIFT) // LEVEL_BITS
    if <int>CAP_REG_MGAW_v(c.unit.cap) + 1 < w.ss_width:
        w.ss_width = <int>CAP_REG_MGAW_v(c.unit.cap) + 1


cdef inline void pend(Walk* w, uint64_t pa, uint64_t bits, int stage) noexcept nogil:
    if w.npend < MAX_PEND:
        w.pend[w.npend].pa = pa
        w.pend[w.npend].bits = bits
        w.pend[w.npend].stage = stage
        w.npend += 1


cdef inline uint64_t haw_rsvd(VtdCtx* c) noexcept nogil:
    """Address bits of a paging entry above the host address width (reserved)."""
    return SS_PTE_ADDR_MASK & ~lowmask(c.unit.haw)


cdef inline PscSlot* psc_slot(VtdCtx* c, int stage, uint32_t did, uint32_t pasid, int level,
                              uint64_t tag) noexcept nogil:
    return &c.cache.psc[mix((<uint64_t>did << 32) | (<uint64_t>pasid << 8) |
                            <uint64_t>(stage << 4 | level), tag) & c.cache.psc_mask]


cdef inline PscSlot* psc_find(Walk* w, int stage, int level, int levels, bint nested,
                              uint64_t tag) noexcept nogil:
    """The paging-structure-cache entry of this walk's tags, or NULL."""
    cdef uint32_t pasid = w.g.pasid if stage == 1 else 0
    cdef PscSlot* p = psc_slot(w.c, stage, w.did, pasid, level, tag)
    if p.valid and p.stage == stage and p.level == level and p.levels == levels and \
            p.nested == nested and p.did == w.did and p.pasid == pasid and p.tag == tag:
        return p
    return NULL


cdef inline void psc_record(Walk* w, int stage, int level, int levels, bint nested, uint64_t tag,
                            uint64_t table, uint64_t entry_pa, uint64_t nxt, int r, int wr,
                            int x) noexcept nogil:
    cdef PscFill* f
    if w.npf < MAX_PSC_FILL:
        f = &w.pf[w.npf]
        w.npf += 1
        f.stage = stage
        f.level = level
        f.levels = levels
        f.nested = nested
        f.tag = tag
        f.table = table
        f.entry_pa = entry_pa
        f.next = nxt
        f.r = r
        f.w = wr
        f.x = x


cdef void psc_commit(Walk* w) noexcept nogil:
    """Cache the non-leaf entries of a successful translation, as memory holds them now (with
    the accessed flags the translation set)."""
    cdef int i
    cdef PscFill* f
    cdef PscSlot* p
    cdef uint64_t e
    for i in range(w.npf):
        f = &w.pf[i]
        if as_read64(&w.c.space, f.entry_pa, &e) != 0:
            continue
        p = psc_slot(w.c, f.stage, w.did, w.g.pasid if f.stage == 1 else 0, f.level, f.tag)
        p.valid = True
        p.stage = f.stage
        p.level = f.level
        p.levels = f.levels
        p.nested = f.nested
        p.did = w.did
        p.pasid = w.g.pasid if f.stage == 1 else 0
        p.tag = f.tag
        p.table = f.table
        p.entry_pa = f.entry_pa
        p.entry = e
        p.next = f.next
        p.r = f.r
        p.w = f.w
        p.x = f.x


cdef int ss_walk(Walk* w, uint64_t gpa, int purpose, SsOut* o) noexcept nogil:
    """Walk the second stage for gpa (purpose PUR_IN: the request's address; PUR_TT: a
    first-stage table in nested mode), without the permission checks."""
    cdef VtdCtx* c = w.c
    cdef int level, shift, k
    cdef uint64_t table = PASID_ENTRY_SLPTPTR_addr(w.g.pe), idx, pa, e, rsvd
    cdef bint leaf
    cdef PscSlot* p
    w.f.start = w.ss_levels
    if gpa >> w.ss_width:
        wfault(&w.f.walk, WF_TRANSLATION, 2, -1, purpose, gpa, NOADDR)
        return -1
    o.r = o.w = o.x = 1
    o.nused = 0
    level = w.ss_levels
    if w.psc:
        # The deepest cached non-leaf entry for gpa: the walk goes on below it.
        for k in range(2, w.ss_levels + 1):
            shift = PAGE_SHIFT + LEVEL_BITS * (k - 1)
            p = psc_find(w, 2, k, w.ss_levels, False, gpa >> shift)
            if p != NULL:
                trace_add(&c.trace, STEP_S2, 2, k, purpose, OUT_CACHED,
                          <uint32_t>((gpa >> shift) & lowmask(LEVEL_BITS)), gpa, p.table,
                          NOADDR, p.entry_pa, p.entry)
                table = p.next
                o.r = p.r
                o.w = p.w
                o.x = p.x
                level = k - 1
                break
    while level >= 1:
        shift = PAGE_SHIFT + LEVEL_BITS * (level - 1)
        idx = (gpa >> shift) & lowmask(LEVEL_BITS)
        pa = table + 8 * idx
        if as_read64(&c.space, pa, &e) != 0:
            trace_add(&c.trace, STEP_S2, 2, level, purpose, OUT_EABT, <uint32_t>idx, gpa, table,
                      NOADDR, pa, 0)
            wfault(&w.f.walk, WF_EABT, 2, level, purpose, gpa, pa)
            return -1
        trace_add(&c.trace, STEP_S2, 2, level, purpose, OUT_TABLE, <uint32_t>idx, gpa, table,
                  NOADDR, pa, e)
        if not SS_PTE_R_v(e) and not SS_PTE_W_v(e):      # R=W=0: not present
            trace_outcome(&c.trace, OUT_INVALID)
            wfault(&w.f.walk, WF_TRANSLATION, 2, level, purpose, gpa, NOADDR)
            return -1
        leaf = level == 1 or ((level == 2 or level == 3) and SS_PDE_2M_PS_v(e))
        # SNP and TM exist in leaf entries only, with snoop control (ECAP_REG.SC) and
        # device-TLBs (ECAP_REG.DT) respectively.
        rsvd = haw_rsvd(c)
        if level >= 4:
            rsvd |= SS_PML4E_PS_MASK
        if not leaf:
            rsvd |= SS_PTE_SNP_MASK | SS_PTE_TM_MASK
        else:
            if not ECAP_REG_SC_v(c.unit.ecap):
                rsvd |= SS_PTE_SNP_MASK
            if not ECAP_REG_DT_v(c.unit.ecap):
                rsvd |= SS_PTE_TM_MASK
        if leaf and level == 2:
            rsvd |= (lowmask(SS_PDE_2M_ADDR_SHIFT) & ~lowmask(SS_PTE_ADDR_SHIFT)) | \
                (0 if CAP_REG_SLLPS_v(c.unit.cap) & 1 else SS_PDE_2M_PS_MASK)
        elif leaf and level == 3:
            rsvd |= (lowmask(SS_PDPE_1G_ADDR_SHIFT) & ~lowmask(SS_PTE_ADDR_SHIFT)) | \
                (0 if CAP_REG_SLLPS_v(c.unit.cap) & 2 else SS_PDPE_1G_PS_MASK)
        if e & rsvd:
            trace_outcome(&c.trace, OUT_FAULT)
            wfault(&w.f.walk, WF_RESERVED, 2, level, purpose, gpa, NOADDR)
            return -1
        o.r &= <int>SS_PTE_R_v(e)
        o.w &= <int>SS_PTE_W_v(e)
        o.x &= <int>SS_PTE_X_v(e)
        o.used[o.nused] = pa
        o.nused += 1
        if leaf:
            trace_outcome(&c.trace, OUT_PAGE if level == 1 else OUT_BLOCK)
            o.shift = shift
            o.pa = (e & SS_PTE_ADDR_MASK & ~lowmask(shift)) | (gpa & lowmask(shift))
            o.leaf_pa = pa
            o.leaf = e
            return 0
        table = e & SS_PML4E_ADDR_MASK
        if w.psc:
            psc_record(w, 2, level, w.ss_levels, False, gpa >> shift, pa & ~lowmask(PAGE_SHIFT),
                       pa, table, o.r, o.w, o.x)
        level -= 1
    return -1


cdef int ss_translate(Walk* w, uint64_t gpa, int purpose, bint write, bint exe,
                      SsOut* o) noexcept nogil:
    """Second-stage translation with its permission checks and A/D bookkeeping."""
    cdef int missing = 0, i
    cdef bint slee = PASID_ENTRY_SLEE(w.g.pe) != 0
    if ss_walk(w, gpa, purpose, o) != 0:
        return -1
    if purpose != PUR_IN:
        if not o.r:
            missing = PERM_R
    elif write and not o.w:
        missing = PERM_W
    elif not write and not o.r:
        missing = PERM_R                   # a read, or an execute (which is a read)
    if not missing and purpose == PUR_IN and exe and slee and not o.x:
        missing = PERM_X
    if missing:
        trace_outcome(&w.c.trace, OUT_FAULT)
        w.f.missing = missing
        wfault(&w.f.walk, WF_PERMISSION, 2, (o.shift - PAGE_SHIFT) // LEVEL_BITS + 1, purpose,
               gpa, NOADDR)
        return -1
    if PASID_ENTRY_SLADE(w.g.pe):
        # A is bit 8 and D bit 9 at every level (SS_PML5E_A ... SS_PTE_A share the position).
        for i in range(o.nused):
            pend(w, o.used[i], SS_PTE_A_MASK, 2)
        if write:
            pend(w, o.leaf_pa, SS_PTE_D_MASK, 2)
    if not slee:
        o.x = o.r
    return 0


cdef struct FsOut:
    uint64_t gpa
    int shift
    int us, rw, xd
    int level


cdef int fs_walk(Walk* w, bint nested, FsOut* o) noexcept nogil:
    """Walk the first stage (x86 4/5-level paging) for the request's address; in nested mode
    every table entry's address is a GPA translated through the second stage first."""
    cdef VtdCtx* c = w.c
    cdef uint64_t va = w.t.addr, sign, table, idx, entry_gpa, entry_pa, e, rsvd
    cdef int flpm = <int>PASID_ENTRY_FLPM(w.g.pe)
    cdef int levels = 5 if flpm == PASID_ENTRY_FLPM_5level else 4
    cdef int top = PASID_ENTRY_FLPM_addr_bits(flpm), level, shift, k
    cdef bint ps, leaf
    cdef SsOut so
    cdef FsEntry* fe
    cdef PscSlot* p
    w.f.fs_start = levels
    w.f.start = levels
    sign = va >> (top - 1)
    if sign != 0 and sign != lowmask(64 - top + 1):
        wfault(&w.f.walk, WF_TRANSLATION, 1, -1, PUR_IN, va, NOADDR)
        return -1
    table = PASID_ENTRY_FLPTPTR_addr(w.g.pe)
    o.us = o.rw = 1
    o.xd = 0
    w.nfse = 0
    level = levels
    if w.psc:
        for k in range(2, levels + 1):
            shift = PAGE_SHIFT + LEVEL_BITS * (k - 1)
            p = psc_find(w, 1, k, levels, nested, va >> shift)
            if p != NULL:
                idx = (va >> shift) & lowmask(LEVEL_BITS)
                trace_add(&c.trace, STEP_S1, 1, k, PUR_IN, OUT_CACHED, <uint32_t>idx, va,
                          p.table, p.table + 8 * idx if nested else NOADDR, p.entry_pa,
                          p.entry)
                table = p.next
                o.us = p.r
                o.rw = p.w
                o.xd = p.x
                level = k - 1
                break
    while level >= 1:
        shift = PAGE_SHIFT + LEVEL_BITS * (level - 1)
        idx = (va >> shift) & lowmask(LEVEL_BITS)
        entry_gpa = table + 8 * idx
        so.leaf_pa = NOADDR
        so.w = 1
        if nested:
            w.f.fs_level = level
            if ss_translate(w, entry_gpa, PUR_TT, False, False, &so) != 0:
                return -1
            w.f.fs_level = 0
            entry_pa = so.pa
        else:
            entry_pa = entry_gpa
        w.f.start = levels
        if as_read64(&c.space, entry_pa, &e) != 0:
            trace_add(&c.trace, STEP_S1, 1, level, PUR_IN, OUT_EABT, <uint32_t>idx, va, table,
                      entry_gpa if nested else NOADDR, entry_pa, 0)
            wfault(&w.f.walk, WF_EABT, 1, level, PUR_IN, va, entry_pa)
            return -1
        trace_add(&c.trace, STEP_S1, 1, level, PUR_IN, OUT_TABLE, <uint32_t>idx, va, table,
                  entry_gpa if nested else NOADDR, entry_pa, e)
        if not FS_PTE_P_v(e):
            trace_outcome(&c.trace, OUT_INVALID)
            wfault(&w.f.walk, WF_TRANSLATION, 1, level, PUR_IN, va, NOADDR)
            return -1
        ps = (level == 2 or level == 3) and FS_PDE_PS_v(e) != 0
        leaf = level == 1 or ps
        rsvd = FS_PTE_ADDR_MASK & ~lowmask(c.unit.haw)
        if level >= 4:
            rsvd |= FS_PML4E_PS_MASK
        elif level == 3 and ps:
            rsvd |= (lowmask(FS_PDPE_1G_ADDR_SHIFT) & ~lowmask(FS_PDPE_1G_PAT_SHIFT + 1)) | \
                (0 if CAP_REG_FL1GP_v(c.unit.cap) else FS_PDPE_1G_PS_MASK)
        elif level == 2 and ps:
            rsvd |= lowmask(FS_PDE_2M_ADDR_SHIFT) & ~lowmask(FS_PDE_2M_PAT_SHIFT + 1)
        if e & rsvd:
            trace_outcome(&c.trace, OUT_FAULT)
            wfault(&w.f.walk, WF_RESERVED, 1, level, PUR_IN, va, NOADDR)
            return -1
        o.us &= <int>FS_PTE_US_v(e)
        o.rw &= <int>FS_PTE_RW_v(e)
        o.xd |= <int>FS_PTE_XD_v(e)
        fe = &w.fse[w.nfse]
        w.nfse += 1
        fe.pa = entry_pa
        fe.e = e
        fe.level = level
        fe.leaf = leaf
        fe.ss_leaf_pa = so.leaf_pa
        fe.ss_w = so.w
        if leaf:
            trace_outcome(&c.trace, OUT_PAGE if level == 1 else OUT_BLOCK)
            o.gpa = (e & FS_PTE_ADDR_MASK & ~lowmask(shift)) | (va & lowmask(shift))
            o.shift = shift
            o.level = level
            return 0
        table = e & FS_PML4E_ADDR_MASK
        if w.psc:
            psc_record(w, 1, level, levels, nested, va >> shift, entry_gpa - 8 * idx, entry_pa,
                       table, o.us, o.rw, o.xd)
        level -= 1
    return -1


cdef int fs_perms(Walk* w, FsOut* o, int* perm) noexcept nogil:
    """First-stage permission checks after the walk: U/S, R/W (supervisor writes ignore R/W
    unless WPE=1), XD."""
    cdef bint wpe = PASID_ENTRY_WPE(w.g.pe) != 0, priv = w.g.priv
    cdef int missing = 0
    if not priv and not o.us:
        missing = PERM_R
    elif w.t.write and not o.rw and (not priv or wpe):
        missing = PERM_W
    elif w.t.exe and o.xd:
        missing = PERM_X
    if missing:
        w.f.missing = missing
        w.f.start = w.f.fs_start
        wfault(&w.f.walk, WF_PERMISSION, 1, o.level, PUR_IN, w.t.addr, NOADDR)
        return -1
    perm[0] = PERM_R | (PERM_W if (o.rw or (priv and not wpe)) else 0) | \
        (0 if o.xd else PERM_X)
    return 0


cdef int fs_ad(Walk* w, bint nested) noexcept nogil:
    """The first-stage A (EA with EAFE=1) and D flags a successful walk sets; in nested mode
    their table page must be writable at the second stage (SFS.8)."""
    cdef uint64_t want
    cdef int i
    cdef FsEntry* fe
    for i in range(w.nfse):
        fe = &w.fse[i]
        want = FS_PTE_A_MASK | (FS_PTE_EA_MASK if PASID_ENTRY_EAFE(w.g.pe) else 0) | \
            (FS_PTE_D_MASK if fe.leaf and w.t.write else 0)
        if fe.e & want == want:
            continue
        if nested:
            if not fe.ss_w:
                w.f.missing = PERM_W
                w.f.fs_level = fe.level
                wfault(&w.f.walk, WF_PERMISSION, 2, 1, PUR_TT, fe.pa, NOADDR)
                return -1
            if PASID_ENTRY_SLADE(w.g.pe):
                pend(w, fe.ss_leaf_pa, SS_PTE_D_MASK, 2)
        pend(w, fe.pa, want, 1)
    return 0


cdef int ad_apply(Walk* w, VtdResult* r) noexcept nogil:
    """Make the pending A/D updates, in order, each once; an update needed while page walks do
    not snoop (PWSNP=0) is a fault instead (SFS.9 / SSS.5) and nothing is written."""
    cdef uint64_t pa[MAX_PEND]
    cdef uint64_t val[MAX_PEND]
    cdef int n = 0, i, j
    cdef uint64_t old
    cdef bint found
    for i in range(w.npend):
        found = False
        for j in range(n - 1, -1, -1):
            if pa[j] == w.pend[i].pa:
                old = val[j]
                found = True
                break
        if not found and as_read64(&w.c.space, w.pend[i].pa, &old) != 0:
            continue
        if old | w.pend[i].bits == old:
            continue
        if not PASID_ENTRY_PWSNP(w.g.pe):
            w.f.start = 0
            wfault(&w.f.walk, WF_ACCESS, w.pend[i].stage, -1, PUR_IN, w.t.addr, NOADDR)
            return -1
        pa[n] = w.pend[i].pa
        val[n] = old | w.pend[i].bits
        n += 1
    if not w.c.dry:
        for i in range(n):
            as_write64(&w.c.space, pa[i], val[i])
    r.nad = n
    return 0


cdef inline int walk_fail(Walk* w) noexcept nogil:
    cdef VtdFault* f = w.f
    f.reason = walk_reason(f)
    f.qualified = True
    f.recorded = not w.g.fpd
    f.fi = w.t.addr & ~lowmask(PAGE_SHIFT)
    return -1


cdef int vtd_translate(VtdCtx* c, VtdTxn* t, VtdResult* r, VtdFault* f) noexcept nogil:
    """Translate one DMA request. 0 with r filled (r.kind says translated, not remapped,
    interrupt, blocked, unsupported), or -1 with f filled (r.kind VK_FAULT)."""
    cdef Walk w
    cdef VtdCfg g
    cdef SsOut so
    cdef FsOut fo
    cdef int ttm = <int>RTADDR_REG_TTM_v(c.unit.rtaddr), perm, aw
    cdef bint nested
    memset(f, 0, sizeof(VtdFault))
    f.walk.fetch_addr = NOADDR
    memset(r, 0, sizeof(VtdResult))
    r.gpa = NOADDR
    r.out = NOADDR
    c.trace.n = 0
    if not GSTS_REG_TES_v(c.unit.gsts):
        r.kind = VK_NOT_REMAPPED
        r.out = t.addr
        r.shift = PAGE_SHIFT
        r.perm = PERM_R | PERM_W | PERM_X
        return 0
    if not t.pv and INT_FIRST <= t.addr <= INT_LAST:
        r.kind = VK_INTERRUPT if t.write else VK_BLOCKED
        return 0
    if ttm == RTADDR_REG_TTM_legacy:
        if t.pv:
            memset(&g, 0, sizeof(VtdCfg))
            r.kind = VK_FAULT
            return cfg_fail(f, t, &g, RTA_2)
        r.kind = VK_UNSUPPORTED
        return 0
    if ttm == RTADDR_REG_TTM_abort_dma and ECAP_REG_ADMS_v(c.unit.ecap):
        r.kind = VK_BLOCKED
        return 0
    r.kind = VK_FAULT
    if vtd_config(c, t, &g, f) != 0:
        r.pasid = g.pasid
        return -1
    r.pasid = g.pasid
    r.pgtt = g.pgtt
    r.did = <uint32_t>PASID_ENTRY_DID(g.pe)
    r.snoop = PASID_ENTRY_PGSNP(g.pe) != 0
    if cache_on(c) and tlb_lookup(c, t, &g, r):
        return 0
    walk_init(&w, c, t, &g, f)
    if g.pgtt == PASID_ENTRY_PGTT_pass_through:
        if t.addr >> c.unit.haw:
            return cfg_fail(f, t, &g, SGN_4)
        r.out = t.addr
        r.shift = PAGE_SHIFT
        r.perm = PERM_R | PERM_W | PERM_X
    elif g.pgtt == PASID_ENTRY_PGTT_second_stage:
        if ss_translate(&w, t.addr, PUR_IN, t.write, t.exe, &so) != 0:
            return walk_fail(&w)
        r.out = so.pa
        r.shift = so.shift
        r.perm = (PERM_R if so.r else 0) | (PERM_W if so.w else 0) | (PERM_X if so.x else 0)
        r.snoop = r.snoop or SS_PTE_SNP_v(so.leaf) != 0
    else:
        nested = g.pgtt == PASID_ENTRY_PGTT_nested
        if fs_walk(&w, nested, &fo) != 0:
            return walk_fail(&w)
        if fs_perms(&w, &fo, &perm) != 0:
            return walk_fail(&w)
        r.shift = fo.shift
        if nested:
            r.gpa = fo.gpa
            if ss_translate(&w, fo.gpa, PUR_IN, t.write, t.exe, &so) != 0:
                return walk_fail(&w)
            r.out = so.pa
            if so.shift < r.shift:
                r.shift = so.shift
            perm &= (PERM_R if so.r else 0) | (PERM_W if so.w else 0) | (PERM_X if so.x else 0)
            r.snoop = r.snoop or SS_PTE_SNP_v(so.leaf) != 0
        else:
            r.out = fo.gpa
        r.perm = perm
        if fs_ad(&w, nested) != 0:
            return walk_fail(&w)
    if INT_FIRST <= r.out <= INT_LAST:
        return cfg_fail(f, t, &g, SGN_8)
    if ad_apply(&w, r) != 0:
        return walk_fail(&w)
    r.kind = VK_TRANSLATED
    if w.psc:
        psc_commit(&w)
    if cache_on(c):
        tlb_fill(c, t, &g, r)
    return 0


cdef bint tlb_lookup(VtdCtx* c, VtdTxn* t, VtdCfg* g, VtdResult* r) noexcept nogil:
    """An IOTLB entry for the request (DID, PASID, address, privilege) that grants it."""
    cdef int sh, need, k
    cdef TlbSlot* ts
    need = PERM_W if t.write else (PERM_X if t.exe else PERM_R)
    for k in range(3):                         # 4 KiB, 2 MiB and 1 GiB translations
        sh = PAGE_SHIFT + k * LEVEL_BITS
        ts = tlb_slot(c, r.did, g.pasid, t.addr, sh)
        if not (ts.valid and ts.shift == sh and ts.did == r.did and ts.pasid == g.pasid and
                ts.in_base == t.addr & ~lowmask(sh) and ts.priv == g.priv and
                ts.pgtt == g.pgtt):
            continue
        # A write needs an entry a write filled (the first-stage D flag is set), else the walk
        # runs again; so does a request the cached permissions do not grant.
        if (ts.perm & need) != need or (t.write and not ts.dirty):
            break
        c.cache.hits += 1
        r.kind = VK_TRANSLATED
        r.out = ts.out_base | (t.addr & lowmask(sh))
        r.gpa = NOADDR if ts.gpa_base == NOADDR else ts.gpa_base | (t.addr & lowmask(sh))
        r.shift = sh
        r.perm = ts.perm
        r.snoop = ts.snoop
        r.hit = True
        trace_add(&c.trace, STEP_TLB, 0, -1, PUR_IN, OUT_CACHED, 0, t.addr, ts.in_base, NOADDR,
                  NOADDR, ts.out_base)
        return True
    c.cache.misses += 1
    return False


cdef void tlb_fill(VtdCtx* c, VtdTxn* t, VtdCfg* g, VtdResult* r) noexcept nogil:
    cdef TlbSlot* ts = tlb_slot(c, r.did, g.pasid, t.addr, r.shift)
    ts.valid = True
    ts.did = r.did
    ts.pasid = g.pasid
    ts.sid = t.sid
    ts.pgtt = g.pgtt
    ts.shift = r.shift
    ts.in_base = t.addr & ~lowmask(r.shift)
    ts.out_base = r.out & ~lowmask(r.shift)
    ts.gpa_base = NOADDR if r.gpa == NOADDR else r.gpa & ~lowmask(r.shift)
    ts.perm = r.perm
    ts.priv = g.priv
    ts.dirty = t.write
    ts.snoop = r.snoop
    ts.pv = t.pv

# ---------------------------------------------------------------------------------------------
# Invalidation (VT-d 6.5.2): each removes exactly the cached entries its descriptor names
# ---------------------------------------------------------------------------------------------

cdef inline bint in_range(uint64_t base, int shift, uint64_t addr, int am) noexcept nogil:
    """Does the cached range [base, base + 2^shift) overlap 2^am pages from addr? (Inclusive
    last addresses: a range may end at 2^64, as the high half of a 64-bit VA space does.)"""
    cdef uint64_t lo = addr & ~lowmask(PAGE_SHIFT + am)
    return base <= lo + lowmask(PAGE_SHIFT + am) and lo <= base + lowmask(shift)


cdef int inv_context(VtdCaches* k, int g, uint32_t sid, int fm) noexcept nogil:
    """CC_INV_DSC: global and domain-selective (scalable-mode context entries carry no DID:
    every entry) or device-selective (SID, the function bits FM masks)."""
    cdef uint32_t i, mask = 0xFFFF
    cdef int n = 0
    if fm:
        mask &= ~(<uint32_t>(0x4 if fm == 1 else (0x6 if fm == 2 else 0x7)))
    for i in range(k.ctx_mask + 1):
        if k.ctx[i].valid and (g != CC_INV_DSC_G_device or (k.ctx[i].sid & mask) == (sid & mask)):
            k.ctx[i].valid = False
            n += 1
    return n


cdef int inv_pasid(VtdCaches* k, int g, uint32_t did, uint32_t pasid) noexcept nogil:
    """PC_INV_DSC: domain-selective (DID), PASID-selective (DID and PASID) or global."""
    cdef uint32_t i
    cdef int n = 0
    cdef PasidSlot* p
    for i in range(k.pc_mask + 1):
        p = &k.pc[i]
        if p.valid and (g == PC_INV_DSC_G_global or (p.did == did and (
                g == PC_INV_DSC_G_domain or p.pasid == pasid))):
            p.valid = False
            n += 1
    return n


cdef int inv_psc(VtdCaches* k, int stage, bint all_dids, uint32_t did, bint any_pasid,
                 uint32_t pasid, bint nested_only, bint ranged, uint64_t addr,
                 int am) noexcept nogil:
    """Remove the paging-structure-cache entries of a stage (0: both) that match: DID (unless
    all_dids), PASID (unless any_pasid), nested first-stage entries only, and (ranged) those
    whose region overlaps 2^AM pages from addr."""
    cdef uint32_t i
    cdef int n = 0, sh
    cdef PscSlot* p
    for i in range(k.psc_mask + 1):
        p = &k.psc[i]
        if not p.valid or (stage and p.stage != stage) or (not all_dids and p.did != did) or \
                (not any_pasid and p.pasid != pasid) or (nested_only and not p.nested):
            continue
        sh = PAGE_SHIFT + LEVEL_BITS * (p.level - 1)
        if ranged and not in_range(p.tag << sh, sh, addr, am):
            continue
        p.valid = False
        n += 1
    return n


cdef int inv_iotlb(VtdCaches* k, int g, uint32_t did, uint64_t addr, int am, bint ih,
                   int* psc) noexcept nogil:
    """IOTLB_INV_DSC: global (every IOTLB and paging-structure-cache entry), or domain- /
    page-selective on the DID's second-stage, pass-through and nested entries (first-stage-only
    ones need the PASID-based invalidation). ADDR is a second-stage input address: a nested
    entry matches by the GPA its translation went through. The second-stage paging-structure
    caches of the DID go too (domain-selective: also the DID's nested first-stage ones), except
    page-selective with IH=1 (only leaf entries changed)."""
    cdef uint32_t i
    cdef int n = 0
    cdef TlbSlot* e
    for i in range(k.tlb_mask + 1):
        e = &k.tlb[i]
        if not e.valid:
            continue
        if g != IOTLB_INV_DSC_G_global:
            if e.did != did or e.pgtt == PASID_ENTRY_PGTT_first_stage:
                continue
            if g == IOTLB_INV_DSC_G_page and not in_range(
                    e.gpa_base if e.pgtt == PASID_ENTRY_PGTT_nested else e.in_base, e.shift,
                    addr, am):
                continue
        e.valid = False
        n += 1
    if g == IOTLB_INV_DSC_G_global:
        psc[0] = inv_psc(k, 0, True, 0, True, 0, False, False, 0, 0)
    elif g == IOTLB_INV_DSC_G_domain:
        psc[0] = inv_psc(k, 2, False, did, True, 0, False, False, 0, 0) + \
            inv_psc(k, 1, False, did, True, 0, True, False, 0, 0)
    elif g == IOTLB_INV_DSC_G_page and not ih:
        psc[0] = inv_psc(k, 2, False, did, True, 0, False, True, addr, am)
    else:
        psc[0] = 0
    return n


cdef int inv_piotlb(VtdCaches* k, int g, uint32_t did, uint32_t pasid, uint64_t addr,
                    int am, bint ih, int* psc) noexcept nogil:
    """P_IOTLB_INV_DSC: the first-stage and nested entries of (DID, PASID), all of them or
    those overlapping 2^AM pages from ADDR; and the first-stage paging-structure-cache entries
    of (DID, PASID): all of them, or page-selective with IH=0 those whose region overlaps."""
    cdef uint32_t i
    cdef int n = 0
    cdef TlbSlot* e
    for i in range(k.tlb_mask + 1):
        e = &k.tlb[i]
        if not e.valid or e.did != did or e.pasid != pasid or \
                (e.pgtt != PASID_ENTRY_PGTT_first_stage and e.pgtt != PASID_ENTRY_PGTT_nested):
            continue
        if g == P_IOTLB_INV_DSC_G_page and not in_range(e.in_base, e.shift, addr, am):
            continue
        e.valid = False
        n += 1
    if g == P_IOTLB_INV_DSC_G_page:
        psc[0] = 0 if ih else inv_psc(k, 1, False, did, False, pasid, False, True, addr, am)
    else:
        psc[0] = inv_psc(k, 1, False, did, False, pasid, False, False, 0, 0)
    return n


cdef int inv_iec(VtdCaches* k, int g, uint32_t iidx, int im) noexcept nogil:
    """IEC_INV_DSC: global, or index-selective: the 2^IM entries from IIDX (its low IM bits
    ignored)."""
    cdef uint32_t i
    cdef int n = 0
    cdef IecSlot* e
    for i in range(k.iec_mask + 1):
        e = &k.iec[i]
        if e.valid and (g == IEC_INV_DSC_G_global or (e.index >> im) == (iidx >> im)):
            e.valid = False
            n += 1
    return n

# ---------------------------------------------------------------------------------------------
# Interrupt remapping (VT-d 5.1, 9.9, 9.10; faults 5.1.4.1)
# ---------------------------------------------------------------------------------------------

# IRTE bits no field covers (reserved), per form; with xAPIC (IRTA_REG.EIME=0) the destination
# is DST[15:8] and the rest of DST is reserved.
cdef uint64_t IRTE0_FIELDS = (IRTE_P_MASK | IRTE_FPD_MASK | IRTE_DM_MASK | IRTE_RH_MASK |
                              IRTE_TM_MASK | IRTE_DLM_MASK | IRTE_AVAIL_MASK | IRTE_IM_MASK |
                              IRTE_V_MASK | IRTE_DST_MASK)
cdef uint64_t IRTE1_FIELDS = IRTE_SID_MASK | IRTE_SQ_MASK | IRTE_SVT_MASK
cdef uint64_t PIRTE0_FIELDS = (IRTE_POSTED_P_MASK | IRTE_POSTED_FPD_MASK |
                               IRTE_POSTED_AVAIL_MASK | IRTE_POSTED_URG_MASK |
                               IRTE_POSTED_IM_MASK | IRTE_POSTED_VV_MASK |
                               IRTE_POSTED_PDA_L_MASK)
cdef uint64_t PIRTE1_FIELDS = (IRTE_POSTED_SID_MASK | IRTE_POSTED_SQ_MASK |
                               IRTE_POSTED_SVT_MASK | IRTE_POSTED_PDA_H_MASK)
cdef int HANDLE_BITS = int(MSI_ADDR_REMAP_HANDLE_MASK >> MSI_ADDR_REMAP_HANDLE_SHIFT).bit_length()
cdef uint64_t XAPIC_DST = <uint64_t>IRTE_DST_XAPIC_APIC_ID_MASK << IRTE_DST_SHIFT


cdef inline int irq_fail(VtdFault* f, VtdIrq* o, uint32_t sid, int reason,
                         bint fpd) noexcept nogil:
    f.reason = reason
    f.qualified = True
    f.recorded = not fpd
    f.fi = (<uint64_t>o.index << FI_INTR_INDEX_SHIFT) if o.has_index else 0
    o.ok = False
    return -1


cdef inline void compat(VtdIrq* o, uint64_t addr, uint32_t data) noexcept nogil:
    o.ok = True
    o.remapped = False
    o.vector = <int>MSI_DATA_COMPAT_VECTOR_v(data)
    o.delivery = <int>MSI_DATA_COMPAT_DLM_v(data)
    o.trigger = <int>MSI_DATA_COMPAT_TM_v(data)
    o.dest = <uint32_t>MSI_ADDR_COMPAT_DEST_v(addr)
    o.dest_mode = <int>MSI_ADDR_COMPAT_DM_v(addr)
    o.rh = <int>MSI_ADDR_COMPAT_RH_v(addr)


cdef inline bint sid_ok(uint64_t hi, uint32_t sid) noexcept nogil:
    """Source-ID verification by the IRTE's SVT, SQ and SID (VT-d 9.9)."""
    cdef uint64_t w[2]
    cdef uint32_t want, ignore
    cdef int svt, sq
    w[0] = 0
    w[1] = hi
    svt = <int>IRTE_SVT(w)
    sq = <int>IRTE_SQ(w)
    want = <uint32_t>IRTE_SID(w)
    if svt == IRTE_SVT_none:
        return True
    if svt == IRTE_SVT_requester_id:
        # SQ: which function-number bit of the requester ID is not compared.
        ignore = 0 if sq == IRTE_SQ_all_16 else (4 if sq == IRTE_SQ_ignore_bit2 else (
            2 if sq == IRTE_SQ_ignore_bit1 else 1))
        return (sid & ~ignore & 0xFFFF) == (want & ~ignore & 0xFFFF)
    if svt == IRTE_SVT_bus_range:       # SID[15:8] the first bus, SID[7:0] the last
        return (want >> 8) <= (sid >> 8) <= (want & 0xFF)
    return False


cdef int vtd_remap(VtdCtx* c, uint32_t sid, uint64_t addr, uint32_t data, VtdIrq* o,
                   VtdFault* f) noexcept nogil:
    """Remap an interrupt request: a DWORD write of data to addr (0xFEEx_xxxx) by sid."""
    cdef VtdUnit* u = &c.unit
    cdef uint32_t handle
    cdef uint64_t lo, hi, rsvd_lo, rsvd_hi, base
    cdef bint fpd, posted, eime = IRTA_REG_EIME_v(u.irta) != 0, bad
    cdef int dlm
    cdef IecSlot* slot = NULL
    memset(o, 0, sizeof(VtdIrq))
    memset(f, 0, sizeof(VtdFault))
    f.walk.fetch_addr = NOADDR
    o.remappable = MSI_ADDR_REMAP_IF_v(addr) == MSI_ADDR_REMAP_IF_remappable
    if not GSTS_REG_IRES_v(u.gsts):
        o.remappable = False            # remapping disabled: every request is compatibility
        compat(o, addr, data)
        return 0
    if not o.remappable:
        if GSTS_REG_CFIS_v(u.gsts) and not eime:
            compat(o, addr, data)
            return 0
        return irq_fail(f, o, sid, IR_COMPAT_BLOCKED, False)
    # Handle[15] sits above the HANDLE field's bits (14:0): its place is HANDLE's width.
    handle = <uint32_t>((MSI_ADDR_REMAP_HANDLE_15_v(addr) << HANDLE_BITS) |
                        MSI_ADDR_REMAP_HANDLE_v(addr))
    o.index = handle
    o.has_index = True
    if data & ~(<uint32_t>MSI_DATA_REMAP_SUBHANDLE_MASK):
        return irq_fail(f, o, sid, IR_REQ_RSVD, False)
    if MSI_ADDR_REMAP_SHV_v(addr):
        o.index = handle + <uint32_t>MSI_DATA_REMAP_SUBHANDLE_v(data)
    if o.index >= (<uint64_t>1 << (IRTA_REG_S_v(u.irta) + 1)):
        return irq_fail(f, o, sid, IR_INDEX_OVER, False)
    base = IRTA_REG_IRTA_addr_v(u.irta)
    o.irte_pa = base + IRTE_BYTES * <uint64_t>o.index
    if cache_on(c):
        slot = &c.cache.iec[o.index & c.cache.iec_mask]
        if slot.valid and slot.index == o.index:
            o.irte[0] = slot.irte[0]
            o.irte[1] = slot.irte[1]
            o.irte_pa = slot.irte_pa
            o.cached = True
    if not o.cached and as_read_block(&c.space, o.irte_pa, o.irte, 2) != 0:
        return irq_fail(f, o, sid, IR_IRTE_ACCESS, False)
    lo = o.irte[0]
    hi = o.irte[1]
    if not IRTE_P_v(lo):
        return irq_fail(f, o, sid, IR_IRTE_NOT_PRESENT, False)
    fpd = IRTE_FPD_v(lo) != 0
    posted = IRTE_IM_v(lo) == IRTE_IM_posted
    if posted:
        bad = (lo & ~PIRTE0_FIELDS) != 0 or not CAP_REG_PI_v(u.cap)
        rsvd_hi = ~PIRTE1_FIELDS
    else:
        rsvd_lo = ~IRTE0_FIELDS | (0 if eime else IRTE_DST_MASK & ~XAPIC_DST)
        dlm = <int>IRTE_DLM_v(lo)
        bad = (lo & rsvd_lo) != 0 or (dlm != IRTE_DLM_fixed and dlm != IRTE_DLM_lowest_priority
                                      and dlm != IRTE_DLM_SMI and dlm != IRTE_DLM_NMI and
                                      dlm != IRTE_DLM_INIT and dlm != IRTE_DLM_ExtINT)
        rsvd_hi = ~IRTE1_FIELDS
    if bad or (hi & rsvd_hi) or IRTE_SVT(o.irte) > IRTE_SVT_bus_range:
        return irq_fail(f, o, sid, IR_IRTE_RSVD, fpd)
    if slot != NULL and not o.cached:
        # A valid IRTE is cached; source-ID verification is per request.
        slot.valid = True
        slot.index = o.index
        slot.irte_pa = o.irte_pa
        slot.irte[0] = lo
        slot.irte[1] = hi
    if not sid_ok(hi, sid):
        return irq_fail(f, o, sid, IR_SID_VERIFY, fpd)
    o.ok = True
    o.remapped = True
    if posted:
        o.posted = True
        o.vector = <int>IRTE_POSTED_VV(o.irte)
        o.pda = IRTE_POSTED_PDA_L_addr(o.irte) | IRTE_POSTED_PDA_H_addr(o.irte)
        o.urgent = <int>IRTE_POSTED_URG(o.irte)
        return 0
    o.vector = <int>IRTE_V_v(lo)
    o.dest = <uint32_t>(IRTE_DST_v(lo) if eime else IRTE_DST_XAPIC_APIC_ID_v(IRTE_DST_v(lo)))
    o.dest_mode = <int>IRTE_DM_v(lo)
    o.delivery = <int>IRTE_DLM_v(lo)
    o.trigger = <int>IRTE_TM_v(lo)
    o.rh = <int>IRTE_RH_v(lo)
    return 0


# ---------------------------------------------------------------------------------------------
# Python face
# ---------------------------------------------------------------------------------------------

from smmudbg.arch.vtd.consts import FAULT_NAMES as _FAULT_NAMES
from smmudbg.arch.vtd.faults import FAULT_REASONS as _FAULT_REASONS
from smmudbg.arch.vtd.interrupt import INTERRUPT_RANGE as _INTERRUPT_RANGE
from smmudbg.arch.fieldtable import fmt as _fmt

assert _INTERRUPT_RANGE == (INT_FIRST, INT_LAST)

KINDS = {VK_TRANSLATED: "translated", VK_FAULT: "fault", VK_NOT_REMAPPED: "not_remapped",
         VK_INTERRUPT: "interrupt", VK_BLOCKED: "blocked", VK_UNSUPPORTED: "unsupported"}
PGTT_NAMES = {v: n for v, n in _fmt("PASID_ENTRY", "vtd").field("PGTT").enum.items()
              if not n.startswith("reserved")}
STEP_NAMES = {VSTEP_ROOT: "root", VSTEP_CONTEXT: "context", VSTEP_PASID_DIR: "pasid_dir",
              VSTEP_PASID_ENTRY: "pasid_entry", STEP_S1: "fs", STEP_S2: "ss", STEP_TLB: "iotlb"}
OUTCOMES = {OUT_OK: "ok", OUT_TABLE: "table", OUT_BLOCK: "large", OUT_PAGE: "page",
            OUT_INVALID: "not_present", OUT_FAULT: "fault", OUT_EABT: "abort",
            OUT_CACHED: "cached"}
PURPOSES = {PUR_CFG: None, PUR_TT: "fs_table", PUR_IN: "input"}
WALK_KINDS = {WF_NONE: None, WF_TRANSLATION: "translation", WF_ADDR_SIZE: "address_size",
              WF_ACCESS: "access", WF_PERMISSION: "permission", WF_EABT: "abort",
              WF_RESERVED: "reserved"}
REGISTERS = ("cap", "ecap", "gsts", "rtaddr", "irta", "haw")
DLM_NAMES = {v: n for v, n in _fmt("IRTE", "vtd").field("DLM").enum.items()
             if not n.startswith("reserved")}


def perm_str(int p):
    return ("r" if p & PERM_R else "-") + ("w" if p & PERM_W else "-") + \
        ("x" if p & PERM_X else "-")


cdef int make_txn(VtdTxn* t, uint32_t sid, uint64_t addr, pasid, bint write, bint exe,
                  bint priv, int at) except -1:
    if sid > 0xFFFF:
        raise ValueError(f"requester ID {sid:#x} does not fit in 16 bits")
    if pasid is not None and not 0 <= pasid < (1 << 20):
        raise ValueError(f"PASID {pasid:#x} does not fit in 20 bits")
    if pasid is None and (exe or priv):
        raise ValueError("execute and privileged requests need a PASID")
    if at not in (0, 1):
        raise ValueError(f"AT={at}: only untranslated (0) and translation requests (1) are "
                         f"modeled")
    t.sid = sid
    t.pv = pasid is not None
    t.pasid = pasid if pasid is not None else 0
    t.addr = addr
    t.write = write
    t.exe = exe
    t.priv = priv
    t.at = at
    return 0


cdef dict fault_dict(VtdFault* f, VtdTxn* t):
    name = _FAULT_NAMES.get(f.reason)
    w = f.walk
    return {
        "reason": f.reason, "name": name,
        "meaning": _FAULT_REASONS[f.reason][1] if f.reason in _FAULT_REASONS else "",
        "fi": f.fi, "sid": t.sid, "pasid": t.pasid if t.pv else None,
        "write": bool(t.write), "exe": bool(t.exe), "priv": bool(t.priv), "at": t.at,
        "recorded": bool(f.recorded), "qualified": bool(f.qualified),
        "walk": None if w.kind == WF_NONE else {
            "kind": WALK_KINDS[w.kind], "stage": w.stage,
            "level": None if w.level < 0 else w.level, "purpose": PURPOSES.get(w.purpose),
            "input": w.ipa, "fetch_addr": None if w.fetch_addr == NOADDR else w.fetch_addr,
            "fs_level": f.fs_level or None},
    }


cdef class VtdWalker:
    """One VT-d remapping unit's DMA translation over a PhysMem: registers in, results out.

    VtdWalker(mem, cap=..., ecap=..., gsts=..., rtaddr=..., irta=..., haw=48, caching=False)
    w.translate(sid, addr, pasid=None, write=False, exe=False, priv=False, at=0, trace=False,
                dry=False) -> dict
    """
    cdef VtdCtx ctx
    cdef PhysMem mem
    cdef TraceStep* trace_buf
    cdef int _psc_removed

    def __cinit__(self, PhysMem mem, *, bint caching=False, **regs):
        self.mem = mem
        memset(&self.ctx, 0, sizeof(VtdCtx))
        self.ctx.space.kind = AS_PHYS
        self.ctx.space.mem = &mem.core
        self.ctx.space.physmem = <void*>mem
        self.ctx.unit.haw = 48
        self.trace_buf = <TraceStep*>calloc(256, sizeof(TraceStep))
        self.ctx.cache.ctx = <CtxSlot*>calloc(1024, sizeof(CtxSlot))
        self.ctx.cache.pc = <PasidSlot*>calloc(1024, sizeof(PasidSlot))
        self.ctx.cache.tlb = <TlbSlot*>calloc(4096, sizeof(TlbSlot))
        self.ctx.cache.psc = <PscSlot*>calloc(1024, sizeof(PscSlot))
        self.ctx.cache.iec = <IecSlot*>calloc(1024, sizeof(IecSlot))
        if self.trace_buf == NULL or self.ctx.cache.ctx == NULL or self.ctx.cache.pc == NULL \
                or self.ctx.cache.tlb == NULL or self.ctx.cache.psc == NULL or \
                self.ctx.cache.iec == NULL:
            raise MemoryError()
        self.ctx.cache.ctx_mask = self.ctx.cache.pc_mask = 1023
        self.ctx.cache.psc_mask = self.ctx.cache.iec_mask = 1023
        self.ctx.cache.tlb_mask = 4095
        self.ctx.trace.cap = 256
        self.ctx.caching = caching
        self.configure(**regs)

    def __dealloc__(self):
        free(self.trace_buf)
        free(self.ctx.cache.ctx)
        free(self.ctx.cache.pc)
        free(self.ctx.cache.tlb)
        free(self.ctx.cache.psc)
        free(self.ctx.cache.iec)

    @property
    def caching(self):
        """Whether the context-cache, PASID-cache, IOTLB, paging-structure caches and interrupt
        entry cache are used (off: every request walks from the root entry, as the reference
        walker, and every interrupt reads its IRTE)."""
        return bool(self.ctx.caching)

    @caching.setter
    def caching(self, bint on):
        self.ctx.caching = on
        if not on:
            self.invalidate_all()

    def invalidate_all(self):
        cdef int psc
        inv_context(&self.ctx.cache, CC_INV_DSC_G_global, 0, 0)
        inv_pasid(&self.ctx.cache, PC_INV_DSC_G_global, 0, 0)
        inv_iotlb(&self.ctx.cache, IOTLB_INV_DSC_G_global, 0, 0, 0, False, &psc)
        inv_iec(&self.ctx.cache, IEC_INV_DSC_G_global, 0, 0)

    def invalidate_context(self, int g, uint32_t sid=0, int fm=0):
        """CC_INV_DSC by its fields (G, SID, FM); returns how many entries it removed."""
        return inv_context(&self.ctx.cache, g, sid, fm)

    def invalidate_pasid(self, int g, uint32_t did=0, uint32_t pasid=0):
        """PC_INV_DSC (G, DID, PASID)."""
        return inv_pasid(&self.ctx.cache, g, did, pasid)

    def invalidate_iotlb(self, int g, uint32_t did=0, uint64_t addr=0, int am=0,
                         bint ih=False):
        """IOTLB_INV_DSC (G, DID, ADDR, AM, IH); returns how many IOTLB entries it removed
        (psc_removed: how many paging-structure-cache entries)."""
        return inv_iotlb(&self.ctx.cache, g, did, addr, am, ih, &self._psc_removed)

    def invalidate_piotlb(self, int g, uint32_t did, uint32_t pasid, uint64_t addr=0,
                          int am=0, bint ih=False):
        """P_IOTLB_INV_DSC (G, DID, PASID, ADDR, AM, IH); as invalidate_iotlb."""
        return inv_piotlb(&self.ctx.cache, g, did, pasid, addr, am, ih, &self._psc_removed)

    @property
    def psc_removed(self):
        """Paging-structure-cache entries the last IOTLB / PASID-based IOTLB invalidation
        removed."""
        return self._psc_removed

    def invalidate_iec(self, int g, uint32_t iidx=0, int im=0):
        """IEC_INV_DSC (G, IIDX, IM); returns how many cached IRTEs it removed."""
        if not 0 <= im <= 16:
            raise ValueError(f"IM={im}: an index mask is 0..16 bits")
        return inv_iec(&self.ctx.cache, g, iidx, im)

    def psc_entries(self):
        """[{stage, level, levels, nested, did, pasid, region, size, entry_pa, entry, next,
        perm}] in the paging-structure caches: region is the input address range the entry
        maps (GPA at the second stage, VA at the first); perm the accumulated permissions
        (second stage R/W/X, first stage U/S R/W XD as 'u', 'w', 'x' when they grant)."""
        cdef uint32_t i
        cdef PscSlot* e
        cdef int sh
        out = []
        for i in range(self.ctx.cache.psc_mask + 1):
            e = &self.ctx.cache.psc[i]
            if not e.valid:
                continue
            sh = PAGE_SHIFT + LEVEL_BITS * (e.level - 1)
            if e.stage == 2:
                perm = ("r" if e.r else "-") + ("w" if e.w else "-") + ("x" if e.x else "-")
            else:
                perm = ("u" if e.r else "s") + ("w" if e.w else "-") + ("-" if e.x else "x")
            out.append({"stage": e.stage, "level": e.level, "levels": e.levels,
                        "nested": bool(e.nested), "did": e.did,
                        "pasid": e.pasid if e.stage == 1 else None,
                        "region": e.tag << sh, "size": (<uint64_t>1) << sh,
                        "table": e.table, "entry_pa": e.entry_pa, "entry": e.entry,
                        "next": e.next,
                        "perm": perm})
        return sorted(out, key=lambda x: (x["stage"], x["did"], x["pasid"] or 0, -x["level"],
                                          x["region"]))

    def iec_entries(self):
        """[{index, irte_pa, irte}] in the interrupt entry cache."""
        cdef uint32_t i
        cdef IecSlot* e
        out = []
        for i in range(self.ctx.cache.iec_mask + 1):
            e = &self.ctx.cache.iec[i]
            if e.valid:
                out.append({"index": e.index, "irte_pa": e.irte_pa,
                            "irte": [e.irte[0], e.irte[1]]})
        return sorted(out, key=lambda x: x["index"])

    def cached_contexts(self):
        """[{sid, root_pa, root, ctx_pa, ctx}] in the context-cache."""
        cdef uint32_t i
        cdef CtxSlot* e
        out = []
        for i in range(self.ctx.cache.ctx_mask + 1):
            e = &self.ctx.cache.ctx[i]
            if e.valid:
                out.append({"sid": e.sid, "root_pa": e.root_pa, "root": e.root,
                            "ctx_pa": e.ctx_pa, "ctx": [e.ctx[j] for j in range(4)]})
        return sorted(out, key=lambda x: x["sid"])

    def cached_pasids(self):
        """[{sid, pasid, did, dir_pa, pde, pe_pa, pe}] in the PASID-cache."""
        cdef uint32_t i
        cdef PasidSlot* e
        out = []
        for i in range(self.ctx.cache.pc_mask + 1):
            e = &self.ctx.cache.pc[i]
            if e.valid:
                out.append({"sid": e.sid, "pasid": e.pasid, "did": e.did, "dir_pa": e.dir_pa,
                            "pde": e.pde, "pe_pa": e.pe_pa, "pe": [e.pe[j] for j in range(8)]})
        return sorted(out, key=lambda x: (x["sid"], x["pasid"]))

    def tlb_entries(self):
        """[{did, pasid, sid, pgtt, in_base, size, out_base, gpa_base, perm, priv, dirty}]."""
        cdef uint32_t i
        cdef TlbSlot* e
        out = []
        for i in range(self.ctx.cache.tlb_mask + 1):
            e = &self.ctx.cache.tlb[i]
            if e.valid:
                out.append({"did": e.did, "pasid": e.pasid, "sid": e.sid, "pv": bool(e.pv),
                            "pgtt": PGTT_NAMES.get(e.pgtt), "in_base": e.in_base,
                            "size": 1 << e.shift, "out_base": e.out_base,
                            "gpa_base": None if e.gpa_base == NOADDR else e.gpa_base,
                            "perm": perm_str(e.perm), "priv": bool(e.priv),
                            "dirty": bool(e.dirty)})
        return sorted(out, key=lambda x: (x["did"], x["pasid"], x["in_base"]))

    def export_caches(self):
        """Every cache (context, PASID, IOTLB, paging-structure, interrupt entry) as bytes
        (session checkpoints)."""
        cdef VtdCaches* k = &self.ctx.cache
        return (b"VTDC2" + (<char*>k.ctx)[:(k.ctx_mask + 1) * sizeof(CtxSlot)] +
                (<char*>k.pc)[:(k.pc_mask + 1) * sizeof(PasidSlot)] +
                (<char*>k.tlb)[:(k.tlb_mask + 1) * sizeof(TlbSlot)] +
                (<char*>k.psc)[:(k.psc_mask + 1) * sizeof(PscSlot)] +
                (<char*>k.iec)[:(k.iec_mask + 1) * sizeof(IecSlot)])

    def import_caches(self, bytes data):
        cdef VtdCaches* k = &self.ctx.cache
        cdef size_t a = (k.ctx_mask + 1) * sizeof(CtxSlot)
        cdef size_t b = (k.pc_mask + 1) * sizeof(PasidSlot)
        cdef size_t c = (k.tlb_mask + 1) * sizeof(TlbSlot)
        cdef size_t d = (k.psc_mask + 1) * sizeof(PscSlot)
        cdef size_t e = (k.iec_mask + 1) * sizeof(IecSlot)
        cdef const char* p = data
        if len(data) != 5 + a + b + c + d + e or not data.startswith(b"VTDC2"):
            raise ValueError("not this walker's exported caches")
        memcpy(k.ctx, p + 5, a)
        memcpy(k.pc, p + 5 + a, b)
        memcpy(k.tlb, p + 5 + a + b, c)
        memcpy(k.psc, p + 5 + a + b + c, d)
        memcpy(k.iec, p + 5 + a + b + c + d, e)

    @property
    def tlb_stats(self):
        return {"hits": self.ctx.cache.hits, "misses": self.ctx.cache.misses}

    def configure(self, **regs):
        """Set register values by name: cap, ecap, gsts, rtaddr, irta (CAP_REG ... IRTA_REG),
        and haw, the host address width the platform reports (DMAR table)."""
        unknown = set(regs) - set(REGISTERS)
        if unknown:
            raise ValueError(f"unknown register {sorted(unknown)[0]!r}")
        cdef VtdUnit* u = &self.ctx.unit
        u.cap = regs.get("cap", u.cap)
        u.ecap = regs.get("ecap", u.ecap)
        u.gsts = regs.get("gsts", u.gsts)
        u.rtaddr = regs.get("rtaddr", u.rtaddr)
        u.irta = regs.get("irta", u.irta)
        haw = regs.get("haw", u.haw)
        if not 12 <= haw <= 64:
            raise ValueError(f"host address width {haw} is not within 12..64 bits")
        u.haw = haw

    @property
    def registers(self):
        u = self.ctx.unit
        return {"cap": u.cap, "ecap": u.ecap, "gsts": u.gsts, "rtaddr": u.rtaddr,
                "irta": u.irta, "haw": u.haw}

    def translate(self, uint32_t sid, uint64_t addr, pasid=None, *, bint write=False,
                  bint exe=False, bint priv=False, int at=0, bint trace=False, bint dry=False):
        """Translate one DMA request from requester sid (bus << 8 | devfn). pasid=None: a
        request without PASID (RID_PASID applies). dry: no A/D flag is written.

        Returns {kind, pa, gpa, size, perm, pgtt, did, pasid, snoop, ad_writes, fault, steps}."""
        cdef VtdTxn t
        cdef VtdResult r
        cdef VtdFault f
        make_txn(&t, sid, addr, pasid, write, exe, priv, at)
        self.ctx.trace.buf = self.trace_buf if trace else NULL
        self.ctx.dry = dry
        with nogil:
            vtd_translate(&self.ctx, &t, &r, &f)
        self.ctx.trace.buf = NULL
        self.ctx.dry = False
        if r.kind == VK_UNSUPPORTED:
            raise ValueError("legacy mode (RTADDR_REG.TTM=00b) is not modeled")
        ok = r.kind != VK_FAULT
        out = {
            "kind": KINDS[r.kind],
            "pa": r.out if ok and r.out != NOADDR else None,
            "gpa": None if r.gpa == NOADDR or not ok else r.gpa,
            "size": (1 << r.shift) if ok and r.shift else None,
            "perm": perm_str(r.perm) if ok else "---",
            "pgtt": PGTT_NAMES.get(r.pgtt) if r.kind in (VK_TRANSLATED, VK_FAULT) else None,
            "did": r.did if r.kind == VK_TRANSLATED else None,
            "pasid": r.pasid if r.kind in (VK_TRANSLATED, VK_FAULT) else None,
            "snoop": bool(r.snoop), "ad_writes": r.nad, "hit": bool(r.hit),
            "fault": fault_dict(&f, &t) if r.kind == VK_FAULT else None,
        }
        if trace:
            out["steps"] = self._steps()
        return out

    cdef list _steps(self):
        cdef int i
        cdef TraceStep* s
        steps = []
        for i in range(self.ctx.trace.n):
            s = &self.trace_buf[i]
            steps.append({
                "what": STEP_NAMES[s.kind], "stage": s.stage,
                "level": None if s.level < 0 else s.level,
                "purpose": PURPOSES[s.purpose] if s.kind == STEP_S2 else None,
                "outcome": OUTCOMES[s.outcome], "index": s.index, "in_addr": s.in_addr,
                "table": s.table, "desc_gpa": None if s.desc_ipa == NOADDR else s.desc_ipa,
                "desc_pa": None if s.desc_pa == NOADDR else s.desc_pa, "desc": s.desc,
            })
        return steps

    def read_config(self, uint32_t sid, pasid=None):
        """The configuration path of requester sid (and PASID; None: RID_PASID), as the walk
        reads it: {root_pa, root, ctx_pa, ctx (4 words), dir_pa, pde, pe_pa, pe (8 words),
        pasid, reached ('root', 'context', 'pasid_dir', 'pasid_entry' or None), fault (the
        configuration fault's record, or None)}. Addresses of structures not reached are None.
        """
        cdef VtdTxn t
        cdef VtdCfg g
        cdef VtdFault f
        cdef int bad
        make_txn(&t, sid, 0, pasid, False, False, False, 0)
        memset(&f, 0, sizeof(VtdFault))
        f.walk.fetch_addr = NOADDR
        self.ctx.trace.buf = NULL
        self.ctx.dry = True                  # memory as it is: no cache read or fill
        with nogil:
            bad = vtd_config(&self.ctx, &t, &g, &f)
        self.ctx.dry = False
        reached = g.reached
        return {
            "root_pa": g.root_pa if reached >= 1 else None,
            "root": g.root if reached >= 1 else None,
            "ctx_pa": g.ctx_pa if reached >= 2 else None,
            "ctx": [g.ctx[i] for i in range(4)] if reached >= 2 else None,
            "dir_pa": g.dir_pa if reached >= 3 else None,
            "pde": g.pde if reached >= 3 else None,
            "pe_pa": g.pe_pa if reached >= 4 else None,
            "pe": [g.pe[i] for i in range(8)] if reached >= 4 else None,
            "pasid": g.pasid if reached >= 2 else None,
            "reached": (None, "root", "context", "pasid_dir", "pasid_entry")[reached],
            "fault": fault_dict(&f, &t) if bad else None,
        }

    def lookup(self, uint32_t sid, uint64_t addr, pasid=None, int stage=1, bint trace=False):
        """One address through one stage of a requester's tables as the walk reads them (the
        reader behind `pt`): no permission check, no cache, no A/D update. stage 1: the first
        stage (each table fetch through the second stage when the PASID entry is nested; addr
        is the request's address); stage 2: the second stage alone (addr is the GPA or IOVA).

        Returns {ok, out, size, level, leaf, leaf_pa, r, w, x, us, xd (the permission bits
        accumulated over the levels, as the walk accumulates them), pgtt, fault_level, fault
        (the walk's fault kind: translation, reserved, eabt; or a configuration fault's
        name), steps (with trace)}."""
        cdef VtdTxn t
        cdef VtdCfg g
        cdef VtdFault f
        cdef Walk w
        cdef SsOut so
        cdef FsOut fo
        cdef int bad, aw, rc = -1
        cdef bint nested
        cdef TraceStep* last
        cdef uint64_t e, tpa
        cdef uint32_t j
        make_txn(&t, sid, addr, pasid, False, False, False, 0)
        memset(&f, 0, sizeof(VtdFault))
        f.walk.fetch_addr = NOADDR
        # traced always: a non-present entry's table (the last step) is where the scan skips
        self.ctx.trace.buf = self.trace_buf
        self.ctx.trace.n = 0
        self.ctx.dry = True
        with nogil:
            bad = vtd_config(&self.ctx, &t, &g, &f)
        out = {"ok": False, "out": None, "size": None, "level": None, "leaf": None,
               "leaf_pa": None, "r": None, "w": None, "x": None, "us": None, "xd": None,
               "pgtt": None, "fault_level": None, "fault": None}
        if bad:
            self.ctx.dry = False
            self.ctx.trace.buf = NULL
            out["fault"] = _FAULT_NAMES.get(f.reason)
            if trace:
                out["steps"] = self._steps()
            return out
        out["pgtt"] = PGTT_NAMES.get(g.pgtt)
        walk_init(&w, &self.ctx, &t, &g, &f)          # dry: no paging-structure cache
        nested = g.pgtt == PASID_ENTRY_PGTT_nested
        if stage == 2 and (g.pgtt == PASID_ENTRY_PGTT_second_stage or nested):
            with nogil:
                rc = ss_walk(&w, addr, PUR_IN, &so)
            if rc == 0:
                # Without SLEE execute is a read (ss_translate's rule).
                out.update(ok=True, out=so.pa, size=1 << so.shift,
                           level=(so.shift - PAGE_SHIFT) // LEVEL_BITS + 1, leaf=so.leaf,
                           leaf_pa=so.leaf_pa, r=so.r, w=so.w,
                           x=so.x if PASID_ENTRY_SLEE(g.pe) else so.r)
        elif stage == 1 and (g.pgtt == PASID_ENTRY_PGTT_first_stage or nested):
            with nogil:
                rc = fs_walk(&w, nested, &fo)
            if rc == 0:
                out.update(ok=True, out=fo.gpa, size=1 << fo.shift, level=fo.level,
                           leaf=w.fse[w.nfse - 1].e, leaf_pa=w.fse[w.nfse - 1].pa, us=fo.us,
                           w=fo.rw, xd=fo.xd, r=1)
        else:
            self.ctx.dry = False
            self.ctx.trace.buf = NULL
            raise ValueError(f"the PASID entry (PGTT={PGTT_NAMES.get(g.pgtt)}) has no "
                             f"{'first' if stage == 1 else 'second'}-stage tables")
        self.ctx.dry = False
        self.ctx.trace.buf = NULL
        if rc != 0:
            out["fault"] = WALK_KINDS[f.walk.kind]
            out["fault_level"] = None if f.walk.level < 0 else f.walk.level
            out["fault_stage"] = f.walk.stage
            out["fs_level"] = f.fs_level or None     # nested: the FS table the SS fault hit
            # skip: how many entries of the non-present entry's table, from it on, are not
            # present either (by the walk's own test: FS P, SS R|W), so a scan moves past them
            out["skip"] = 1
            if f.walk.kind == WF_TRANSLATION and f.walk.level >= 1 and f.walk.stage == stage \
                    and self.ctx.trace.n > 0:
                last = &self.trace_buf[self.ctx.trace.n - 1]       # the non-present entry
                if last.kind == (STEP_S1 if stage == 1 else STEP_S2):
                    tpa = last.desc_pa - 8 * <uint64_t>last.index
                    j = last.index + 1
                    while j < 512:
                        if as_read64(&self.ctx.space, tpa + 8 * j, &e) != 0:
                            break
                        if (stage == 1 and FS_PTE_P_v(e)) or \
                                (stage == 2 and (SS_PTE_R_v(e) or SS_PTE_W_v(e))):
                            break
                        j += 1
                    out["skip"] = j - last.index
        if trace:
            out["steps"] = self._steps()
        return out

    def remap_msi(self, uint32_t sid, uint64_t addr, uint64_t data, bint dry=False):
        """Remap an interrupt request (a DWORD write of data to addr in 0xFEEx_xxxx by
        requester sid): {ok, remapped, format, index, irte_pa, irte, vector, dest, dest_mode,
        delivery, trigger, redirection_hint, posted, pda, urgent, fault, cached}. dry: the IRTE
        as memory holds it, the interrupt entry cache neither read nor filled."""
        cdef VtdIrq o
        cdef VtdFault f
        cdef VtdTxn t
        if not INT_FIRST <= addr <= INT_LAST:
            raise ValueError(f"{addr:#x} is not in the interrupt address range "
                             f"0xfee00000-0xfeefffff")
        if data >> 32:
            raise ValueError(f"data {data:#x} does not fit in 32 bits")
        if sid > 0xFFFF:
            raise ValueError(f"requester ID {sid:#x} does not fit in 16 bits")
        self.ctx.dry = dry
        with nogil:
            vtd_remap(&self.ctx, sid, addr, <uint32_t>data, &o, &f)
        self.ctx.dry = False
        make_txn(&t, sid, addr, None, True, False, False, 0)
        fault = None
        if not o.ok:
            fault = fault_dict(&f, &t)
            fault["pasid"] = None
        return {
            "ok": bool(o.ok), "remapped": bool(o.remapped),
            "format": "remappable" if o.remappable else "compatibility",
            "index": o.index if o.has_index else None,
            "irte_pa": o.irte_pa if o.irte_pa else None,
            "irte": [o.irte[0], o.irte[1]] if o.irte_pa else None,
            "vector": o.vector if o.ok else None,
            "dest": o.dest if o.ok and not o.posted else None,
            "dest_mode": ("logical" if o.dest_mode else "physical") if o.ok and not o.posted
            else "",
            "delivery": DLM_NAMES.get(o.delivery, "reserved") if o.ok and not o.posted else "",
            "trigger": ("level" if o.trigger else "edge") if o.ok and not o.posted else "",
            "redirection_hint": o.rh, "posted": bool(o.posted),
            "pda": o.pda if o.posted else None, "urgent": o.urgent, "fault": fault,
            "cached": bool(o.cached),
        }

    def translate_batch(self, sids, addrs, pasids=None, access=None, bint priv=False):
        """Translate many requests without tracing or A/D writes (benchmarks, scans). pasids:
        -1 for a request without PASID; access: 0 read, 1 write, 2 execute per request.
        Returns (pa, fault reason, perm) arrays; pa is 0 where the request faulted."""
        b = batch_inputs(sids, addrs, pasids, access, "pasids")
        cdef cnp.ndarray[cnp.uint32_t, ndim=1] s_ = b[0]
        cdef cnp.ndarray[cnp.uint64_t, ndim=1] a_ = b[1]
        cdef cnp.ndarray[cnp.int64_t, ndim=1] p_ = b[2]
        cdef cnp.ndarray[cnp.uint8_t, ndim=1] ac_ = b[3]
        cdef Py_ssize_t n = s_.shape[0], i
        cdef cnp.ndarray[cnp.uint64_t, ndim=1] out = np.zeros(n, dtype=np.uint64)
        cdef cnp.ndarray[cnp.uint8_t, ndim=1] reason = np.zeros(n, dtype=np.uint8)
        cdef cnp.ndarray[cnp.uint8_t, ndim=1] perm = np.zeros(n, dtype=np.uint8)
        cdef VtdTxn t
        cdef VtdResult r
        cdef VtdFault f
        self.ctx.trace.buf = NULL
        self.ctx.dry = True
        with nogil:
            for i in range(n):
                t.sid = s_[i] & 0xFFFF
                t.pv = p_[i] >= 0
                t.pasid = <uint32_t>(p_[i] & 0xFFFFF) if t.pv else 0
                t.addr = a_[i]
                t.write = ac_[i] == 1
                t.exe = ac_[i] == 2 and t.pv
                t.priv = priv and t.pv
                t.at = 0
                if vtd_translate(&self.ctx, &t, &r, &f) == 0:
                    out[i] = r.out if r.out != NOADDR else 0
                    perm[i] = r.perm
                else:
                    reason[i] = f.reason
        self.ctx.dry = False
        return out, reason, perm
