# cython: language_level=3
"""The VMSAv8-64 table walk: stage-1 and stage-2 geometry checks, descriptors, permissions,
the access flag, nested fetches of stage-1 tables through stage 2, and table address spaces.

Faults come back as a WalkFault (kind, stage, level, purpose, IPA, fetch address); the IOMMU
layer above turns them into its own events. Rules: docs/walk-rules.md.
"""
from libc.stdint cimport uint64_t, uint32_t, uint16_t
from libc.string cimport memcpy
from core_cy.physmem cimport (PhysMem, Window, mc_read64, mc_read_block, mc_page, PAGE_SHIFT,
                             PAGE_SIZE, WIN_S1, WIN_S2)
from core_cy.physmem import MemFault
from core_cy._smmuv3 cimport *
from core_cy.wtypes cimport (WalkFault, Trace, NOADDR, lowmask, trace_add, trace_outcome, wfault,
                             WF_NONE, WF_TRANSLATION, WF_ADDR_SIZE, WF_ACCESS, WF_PERMISSION,
                             WF_EABT, PUR_TT, PUR_IN, PERM_R, PERM_W, PERM_X, PERM_WCLEAN, STEP_S1, STEP_S2,
                             OUT_TABLE, OUT_BLOCK, OUT_PAGE, OUT_INVALID, OUT_FAULT, OUT_EABT)
from core_cy._fields cimport *

# The bit hardware dirty-state management flips in a writable-clean leaf, from the field tables:
# stage 1 AP[2] (set in AP=RO_EL1 and RO_any: write-disable), stage 2 S2AP[1] (set in WO and RW:
# write-enable).
cdef uint64_t S1_AP_RO = <uint64_t>S1_BLOCK_AP_RO_EL1 << S1_BLOCK_AP_SHIFT
cdef uint64_t S2AP_W = <uint64_t>S2_BLOCK_S2AP_WO << S2_BLOCK_S2AP_SHIFT

# ---------------------------------------------------------------------------------------------
# Geometry
# ---------------------------------------------------------------------------------------------

cdef int s2_setup(VmsaCaps* k, S2Cfg* s2, int g, int sl0, int tsz, int ps,
                  uint64_t ttb) noexcept nogil:
    """Check a stage-2 geometry and fill s2 (g, start, ias, ps_bits, ttb); GEOM_OK if legal.

    Arm ARM AArch64.S2InvalidSL / S2InconsistentSL with PAMax = oas_bits, and
    S2T0SZ >= MAX(16, 64 - IAS), IAS = OAS (AArch64-only tables). ps: output size in bits."""
    cdef int stride, start, levels, mn, mx, ias, tszmax
    if g == 0 or not gran_ok(k, g):
        return GEOM_TG
    if ps > k.oas_bits:
        ps = k.oas_bits
    stride = g - 3
    if g == 12:
        if sl0 == 3:
            if not k.stt:
                return GEOM_SL0
            start = 3
        else:
            start = 2 - sl0
        if sl0 == 2 and k.oas_bits < 44:
            return GEOM_SL0
    else:
        if sl0 == 3:
            return GEOM_SL0
        start = 3 - sl0
        if sl0 == 2 and k.oas_bits < (42 if g == 14 else 44):
            return GEOM_SL0
    tszmax = (47 if g == 16 else 48) if k.stt else 39
    if tsz > tszmax or tsz < 16 or tsz < 64 - k.oas_bits:
        return GEOM_TSZ
    ias = 64 - tsz
    levels = 3 - start
    mn = levels * stride + g + 1
    mx = mn + stride - 1 + 4
    if ias < mn or ias > mx:
        return GEOM_TSZ
    s2.g = g
    s2.start = start
    s2.ias = ias
    s2.ps_bits = ps
    s2.ttb = ttb
    if ttb >> cap_pa(ps, g):
        return GEOM_TTB
    # The concatenated initial table is aligned to its own size.
    s2.ttb &= ~lowmask(3 + ias - level_shift(g, start))
    return GEOM_OK


cdef int tt_setup(VmsaCaps* k, TTCfg* tt, int g, int tsz, uint64_t ttb, bint tbi, bint had,
                  int ips) noexcept nogil:
    """Check one stage-1 table's geometry and fill tt; GEOM_OK if legal."""
    cdef int maxtsz
    if g == 0 or not gran_ok(k, g):
        return GEOM_TG
    maxtsz = 39
    if k.stt:
        maxtsz = 47 if g == 16 else 48
    if tsz < 16 or tsz > maxtsz:
        return GEOM_TSZ
    tt.enabled = True
    tt.g = g
    tt.vabits = 64 - tsz
    # start = 4 - ceil((vabits - g) / stride)
    tt.start = 4 - (tt.vabits - g + (g - 3) - 1) // (g - 3)
    if ttb >> cap_pa(ips, g):
        return GEOM_TTB
    tt.ttb = ttb & ~lowmask(3 + tt.vabits - level_shift(g, tt.start))
    tt.tbi = tbi
    tt.had = had and k.had
    return GEOM_OK

# ---------------------------------------------------------------------------------------------
# Address spaces
# ---------------------------------------------------------------------------------------------

cdef int as_translate(AddrSpace* a, uint64_t addr, uint64_t* pa) noexcept nogil:
    """The host PA behind addr (AS_IPA: a read through stage 2); -1 on a stage-2 fault."""
    cdef VmsaEnv e
    cdef S2Out o
    cdef WalkFault f
    if a.kind == AS_PHYS:
        pa[0] = addr
        return 0
    # The stage-2 tables are in host PA; no trace, and no access-flag write from a read.
    e.space.kind = AS_PHYS
    e.space.mem = a.mem
    e.space.physmem = NULL
    e.caps = a.caps
    e.trace.buf = NULL
    e.trace.n = 0
    e.trace.cap = 0
    e.dry = True
    if s2_walk(&e, &a.s2, addr, PUR_TT, PERM_R, &o, &f) != 0:
        return -1
    pa[0] = o.pa
    return 0


cdef int as_read_ipa(AddrSpace* a, uint64_t addr, uint64_t* out, int nwords) noexcept nogil:
    cdef uint64_t pa
    if as_translate(a, addr, &pa) != 0:
        return -1
    if nwords == 1:
        return mc_read64(a.mem, pa, out)
    return mc_read_block(a.mem, pa, out, nwords)


cdef int as_write64(AddrSpace* a, uint64_t addr, uint64_t value) noexcept nogil:
    """Descriptor write (hardware access-flag update); -1 if the space cannot be written."""
    cdef uint64_t pa
    if a.physmem == NULL or as_translate(a, addr, &pa) != 0:
        return -1
    return (<PhysMem>a.physmem).write64(pa, value)


cdef inline bint hw_af_update(VmsaEnv* e, uint64_t dpa, uint64_t d) noexcept nogil:
    """Store descriptor d at dpa as HTTU hardware does (access flag, dirty state); False if no
    update is possible. A dry walk behaves as if the update happened but writes nothing."""
    if e.space.physmem == NULL:
        return False
    if not e.dry:
        as_write64(&e.space, dpa, d)
    return True

# ---------------------------------------------------------------------------------------------
# Stage 2
# ---------------------------------------------------------------------------------------------

cdef inline bint desc_invalid(uint64_t d, int level, int g) noexcept nogil:
    """Invalid, or a block where the level cannot hold one (reserved): translation fault."""
    return (d & S1_BLOCK_Valid_MASK) == 0 or ((d & S1_BLOCK_DESC_TYPE_MASK) == S1_BLOCK_DESC_block
                                             and (level < block_min_level(g) or level == 3))


cdef inline int s2_fail(VmsaEnv* e, WalkFault* f, int kind, int level, int purpose,
                        uint64_t ipa) noexcept nogil:
    trace_outcome(&e.trace, OUT_FAULT if kind != WF_TRANSLATION else OUT_INVALID)
    wfault(f, kind, 2, level, purpose, ipa, NOADDR)
    return -1


cdef int s2_walk(VmsaEnv* e, S2Cfg* s2, uint64_t ipa, int purpose, int need, S2Out* o,
                 WalkFault* f) noexcept nogil:
    """Translate an IPA through stage 2. need: PERM_* bits for this transaction's privilege
    (bits 0-2 privileged, 3-5 unprivileged). Returns 0 or -1 with f filled."""
    cdef int g = s2.g, level = s2.start, sh, perm
    cdef uint64_t table = s2.ttb, idx, dpa, d, oa, imask
    cdef uint64_t smask = lowmask(g - 3), tmask = S2_TABLE_NLTA_MASK & ~lowmask(g)
    cdef bint wclean
    cdef Window* win = &e.space.mem.win[WIN_S2 + (level & 3)]    # one read window per level
    if ipa >> s2.ias:
        trace_add(&e.trace, STEP_S2, 2, level, purpose, OUT_FAULT, 0, ipa, table, NOADDR, NOADDR, 0)
        wfault(f, WF_TRANSLATION, 2, -1, purpose, ipa, NOADDR)
        return -1
    sh = level_shift(g, level)
    imask = lowmask(s2.ias - sh)         # index bits: the initial level's, then g - 3 per level
    while True:
        idx = (ipa >> sh) & imask
        dpa = table + idx * 8
        if as_read64_win(&e.space, dpa, &d, win) != 0:
            trace_add(&e.trace, STEP_S2, 2, level, purpose, OUT_EABT, <uint32_t>idx, ipa, table,
                      NOADDR, dpa, 0)
            wfault(f, WF_EABT, 2, level, purpose, ipa, dpa)
            return -1
        trace_add(&e.trace, STEP_S2, 2, level, purpose, OUT_TABLE, <uint32_t>idx, ipa, table,
                  NOADDR, dpa, d)
        if desc_invalid(d, level, g):
            return s2_fail(e, f, WF_TRANSLATION, level, purpose, ipa)
        if (d & S2_TABLE_DESC_TYPE_MASK) == S2_TABLE_DESC_table and level < 3:
            table = d & tmask
            if table >> s2.ps_bits:
                return s2_fail(e, f, WF_ADDR_SIZE, level, purpose, ipa)
            level += 1
            win += 1
            sh -= g - 3
            imask = smask
            continue
        # Leaf: block or page.
        trace_outcome(&e.trace, OUT_PAGE if level == 3 else OUT_BLOCK)
        oa = d & S2_BLOCK_OA_MASK & ~lowmask(sh)
        if oa >> s2.ps_bits:
            return s2_fail(e, f, WF_ADDR_SIZE, level, purpose, ipa)
        if S2_BLOCK_AF_v(d) == 0 and not s2.affd:
            if not (s2.ha and hw_af_update(e, dpa, d | (<uint64_t>1 << S2_BLOCK_AF_SHIFT))):
                return s2_fail(e, f, WF_ACCESS, level, purpose, ipa)
        # IHI 0070 3.13.3: with S2HD, DBM=1 and S2AP[1]=0 is writable-clean (writable); a write
        # sets S2AP[1]. Not cached until dirty (PERM_WCLEAN), so a later write still updates.
        wclean = s2.hd and e.space.physmem != NULL and S2_BLOCK_DBM_v(d) != 0 and \
            not d & S2AP_W
        perm = s2_perms(&e.caps, d | (S2AP_W if wclean else 0))
        if (perm & need) != need:
            return s2_fail(e, f, WF_PERMISSION, level, purpose, ipa)
        if wclean and need & (PERM_W | (PERM_W << 3)):
            hw_af_update(e, dpa, d | S2AP_W)
            wclean = False
        o.pa = oa | (ipa & lowmask(sh))
        o.perm = perm | (PERM_WCLEAN if wclean else 0)
        o.shift = sh
        o.level = level
        return 0

# ---------------------------------------------------------------------------------------------
# Stage 1
# ---------------------------------------------------------------------------------------------

cdef struct S1Hier:      # hierarchical attributes gathered from table descriptors
    int ap
    bint pxn
    bint uxn


cdef inline TTCfg* s1_select(VmsaEnv* e, S1Cfg* s, uint64_t va, WalkFault* f) noexcept nogil:
    """The table (TTB0/TTB1) translating va, or NULL with a translation fault.

    s1_region picks the table; the bits above the VA size must all equal it, except
    the top byte when TBI is set."""
    cdef int region = s1_region(s, va)
    cdef TTCfg* tt = &s.tt[region]
    cdef int topbits
    if tt.enabled:
        topbits = (56 if tt.tbi else 64) - tt.vabits
        if ((va >> tt.vabits) & lowmask(topbits)) == (lowmask(topbits) if region else 0):
            return tt
    trace_add(&e.trace, STEP_S1, 1, -1, PUR_IN, OUT_FAULT, 0, va, 0, NOADDR, NOADDR, 0)
    wfault(f, WF_TRANSLATION, 1, -1, PUR_IN, 0, NOADDR)
    return NULL


cdef inline int s1_fetch(VmsaEnv* e, S2Cfg* nest, uint64_t va, int level, uint64_t table,
                         uint64_t idx, uint64_t* dpa, uint64_t* d, Window* win,
                         WalkFault* f) noexcept nogil:
    """Read one stage-1 descriptor (through read window win); nested: its IPA goes through
    stage 2 first."""
    cdef uint64_t dipa = table + idx * 8
    cdef S2Out o
    dpa[0] = dipa
    if nest != NULL:
        if s2_walk(e, nest, dipa, PUR_TT, PERM_R | (PERM_R << 3), &o, f) != 0:
            return -1
        dpa[0] = o.pa
    if as_read64_win(&e.space, dpa[0], d, win) != 0:
        trace_add(&e.trace, STEP_S1, 1, level, PUR_TT, OUT_EABT, <uint32_t>idx, va, table,
                  dipa if nest != NULL else NOADDR, dpa[0], 0)
        wfault(f, WF_EABT, 1, level, PUR_TT, 0, dpa[0])
        return -1
    trace_add(&e.trace, STEP_S1, 1, level, PUR_TT, OUT_TABLE, <uint32_t>idx, va, table,
              dipa if nest != NULL else NOADDR, dpa[0], d[0])
    return 0


cdef inline int s1_fail(VmsaEnv* e, WalkFault* f, int kind, int level) noexcept nogil:
    trace_outcome(&e.trace, OUT_FAULT if kind != WF_TRANSLATION else OUT_INVALID)
    wfault(f, kind, 1, level, PUR_IN, 0, NOADDR)
    return -1


cdef inline int s1_leaf(VmsaEnv* e, S1Cfg* s, uint64_t va, int level, int sh, int ips,
                        uint64_t dpa, uint64_t d, S1Hier* h, int need, S1Out* o,
                        WalkFault* f) noexcept nogil:
    """A block or page descriptor: output size, access flag, permissions."""
    cdef uint64_t oa = d & S1_BLOCK_OA_MASK & ~lowmask(sh)
    cdef int perm
    cdef bint wclean
    trace_outcome(&e.trace, OUT_PAGE if level == 3 else OUT_BLOCK)
    if oa >> ips:
        return s1_fail(e, f, WF_ADDR_SIZE, level)
    if S1_BLOCK_AF_v(d) == 0 and not s.affd:
        if not (s.ha and e.caps.httu >= 1 and
                hw_af_update(e, dpa, d | (<uint64_t>1 << S1_BLOCK_AF_SHIFT))):
            return s1_fail(e, f, WF_ACCESS, level)
    # IHI 0070 3.13.3: with HA and HD, DBM=1 and AP[2]=1 is writable-clean: writable (for WXN
    # too, Arm ARM D8.5.2.2); a write clears AP[2]. Not cached until dirty (PERM_WCLEAN).
    wclean = s.hd and s.ha and e.caps.httu >= 2 and e.space.physmem != NULL and \
        S1_BLOCK_DBM_v(d) != 0 and d & S1_AP_RO != 0
    perm = s1_leaf_perms(s, d & ~(S1_AP_RO if wclean else 0), h.ap, h.pxn, h.uxn)
    if (perm & need) != need:
        return s1_fail(e, f, WF_PERMISSION, level)
    if wclean and need & (PERM_W | (PERM_W << 3)):
        hw_af_update(e, dpa, d & ~S1_AP_RO)
        wclean = False
    o.ipa = oa | (va & lowmask(sh))
    o.perm = perm | (PERM_WCLEAN if wclean else 0)
    o.shift = sh
    o.level = level
    o.is_global = S1_BLOCK_nG_v(d) == 0      # nG=0: matches any ASID in the TLB
    return 0


cdef int s1_walk(VmsaEnv* e, S1Cfg* s, S2Cfg* nest, uint64_t va, int need, S1Out* o,
                 WalkFault* f) noexcept nogil:
    """Translate va through stage 1 (nest: the stage 2 its table IPAs go through, or NULL).
    need: PERM_* bits as for s2_walk. Returns 0 or -1 with f filled."""
    cdef TTCfg* tt = s1_select(e, s, va, f)
    cdef S1Hier h
    cdef uint64_t table, idx, dpa, d
    cdef uint64_t th = 0        # the table descriptors OR'ed: their APTable/PXNTable/UXNTable
    cdef uint64_t imask, smask, tmask
    cdef int level, g, sh, ips
    cdef Window* win
    if tt == NULL:
        return -1
    g = tt.g
    level = tt.start
    table = tt.ttb
    ips = cap_pa(s.ips_bits, g)
    sh = level_shift(g, level)
    imask = lowmask(tt.vabits - sh)      # index bits: the initial level's, then g - 3 per level
    smask = lowmask(g - 3)
    tmask = S1_TABLE_NLTA_MASK & ~lowmask(g)
    win = &e.space.mem.win[WIN_S1 + (level & 3)]      # one read window per level
    while True:
        idx = (va >> sh) & imask
        if s1_fetch(e, nest, va, level, table, idx, &dpa, &d, win, f) != 0:
            return -1
        if desc_invalid(d, level, g):
            return s1_fail(e, f, WF_TRANSLATION, level)
        if (d & S1_BLOCK_DESC_TYPE_MASK) == S1_BLOCK_DESC_block or level == 3:
            # Hierarchical attributes: each is the OR over the table levels walked.
            h.ap = <int>S1_TABLE_APTable_v(th)
            h.pxn = S1_TABLE_PXNTable_v(th) != 0
            h.uxn = S1_TABLE_UXNTable_v(th) != 0
            return s1_leaf(e, s, va, level, sh, ips, dpa, d, &h, need, o, f)
        table = d & tmask
        if table >> ips:
            return s1_fail(e, f, WF_ADDR_SIZE, level)
        if not tt.had:
            th |= d
        level += 1
        win += 1
        sh -= g - 3
        imask = smask

# ---------------------------------------------------------------------------------------------
# Python face of descriptors and geometry (inspection: pt, inject), by the walker's rules
# ---------------------------------------------------------------------------------------------

def descriptor(uint64_t d, int level, int g):
    """(kind, address) of descriptor d at level of a tree of granule 2^g: kind 'invalid',
    'table' (address: the next-level table), 'block' or 'page' (address: the output base,
    aligned to the size the level maps). A block encoding where the level holds no block (level
    3, or above the granule's first block level) is reserved: invalid, as the walk reads it."""
    if (d & S1_BLOCK_Valid_MASK) == 0:
        return "invalid", None
    if (d & S1_TABLE_DESC_TYPE_MASK) == S1_TABLE_DESC_table:
        if level < 3:
            return "table", d & S1_TABLE_NLTA_MASK & ~lowmask(g)
        return "page", d & S1_BLOCK_OA_MASK & ~lowmask(g)
    if desc_invalid(d, level, g):
        return "invalid", None
    return "block", d & S1_BLOCK_OA_MASK & ~lowmask(level_shift(g, level))


_TREE_ERRORS = {GEOM_TG: "the granule is reserved or not supported",
                GEOM_SL0: "the starting level is not valid for the granule and the PA size",
                GEOM_TSZ: "TnSZ is out of range or inconsistent with the starting level",
                GEOM_TTB: "the table base is beyond the output size"}


cdef VmsaCaps _tree_caps(int oas_bits, bint stt):
    cdef VmsaCaps k
    k.gran4k = k.gran16k = k.gran64k = True
    k.xnx = k.had = False
    k.stt = stt
    k.httu = 0
    k.oas_bits = oas_bits
    return k


def s1_tree(int g, int tsz, uint64_t ttb, int ips_bits=48, int oas_bits=48, bint stt=False):
    """(start level, input bits, root) of a stage-1 table tree of granule 2^g and TxSZ tsz, as
    the walker sets it up (the root aligned to the initial table's size). ValueError naming the
    check the walker would fault the CD on."""
    cdef VmsaCaps k = _tree_caps(oas_bits, stt)
    cdef TTCfg tt
    cdef int r = tt_setup(&k, &tt, g, tsz, ttb, False, False, min(ips_bits, oas_bits))
    if r != GEOM_OK:
        raise ValueError(_TREE_ERRORS[r])
    return tt.start, tt.vabits, tt.ttb


def s2_tree(int g, int sl0, int tsz, uint64_t ttb, int ps_bits=48, int oas_bits=48,
            bint stt=False):
    """(start level, input bits, root) of a stage-2 table tree of granule 2^g, S2SL0 sl0 and
    S2T0SZ tsz, as the walker sets it up (the starting level from SL0, a concatenated initial
    table, the root aligned to it). ValueError naming the check the walker would fault the STE
    on."""
    cdef VmsaCaps k = _tree_caps(oas_bits, stt)
    cdef S2Cfg s2
    cdef int r = s2_setup(&k, &s2, g, sl0, tsz, ps_bits, ttb)
    if r != GEOM_OK:
        raise ValueError(_TREE_ERRORS[r])
    return s2.start, s2.ias, s2.ttb


def region_bits(int g, int level):
    """log2 of the input region one descriptor at level maps (granule 2^g)."""
    return level_shift(g, level)


def table_entries(int g, int start, int ias, int level):
    """Descriptors in a table at level of a tree with ias input bits starting at start (the
    initial table may be concatenated at stage 2, or smaller)."""
    if level == start:
        return <uint64_t>1 << (ias - level_shift(g, start))
    return <uint64_t>1 << (g - 3)

# ---------------------------------------------------------------------------------------------
# Python face of an address space
# ---------------------------------------------------------------------------------------------

_GEOM_ERRORS = {GEOM_TG: "S2TG is reserved or the granule is not supported",
                GEOM_SL0: "S2SL0 is not a valid starting level for S2TG and the PA size",
                GEOM_TSZ: "S2T0SZ is inconsistent with S2SL0/S2TG or out of range",
                GEOM_TTB: "S2TTB is beyond the PA size"}


cdef class AddressSpace:
    """Where a walker reads its tables: host physical memory, or a VM's IPA space.

    AddressSpace(mem) is host PA. With s2ttb (and the other stage-2 fields, encoded as in an
    STE or VTCR_EL2: s2tg 0 4K / 1 64K / 2 16K, s2sl0, s2t0sz, s2ps 0..7) every address is an IPA
    translated through that stage-2 table (in host PA) first; a stage-2 fault reads as nothing
    there. oas_bits is the PA size the stage-2 configuration is checked against.
    """

    def __init__(self, PhysMem mem, *, s2ttb=None, int s2t0sz=16, int s2sl0=2, int s2tg=0,
                 int s2ps=5, bint s2affd=False, int oas_bits=48, bint stt=False):
        cdef int r
        self.mem = mem
        self.a.kind = AS_PHYS
        self.a.mem = &mem.core
        self.a.physmem = <void*>mem
        if s2ttb is None:
            return
        self.a.caps.gran4k = self.a.caps.gran16k = self.a.caps.gran64k = True
        self.a.caps.xnx = True
        self.a.caps.stt = stt
        self.a.caps.oas_bits = oas_bits
        if not 0 <= s2ps <= 7:
            raise ValueError(f"IPA space: S2PS={s2ps} is not a 3-bit encoding")
        r = s2_setup(&self.a.caps, &self.a.s2, STE_S2TG_granule_shift(s2tg), s2sl0, s2t0sz,
                     STE_S2PS_addr_bits(s2ps), s2ttb)
        if r != GEOM_OK:
            raise ValueError(f"IPA space: {_GEOM_ERRORS[r]} (S2TTB={s2ttb:#x} S2T0SZ={s2t0sz} "
                             f"S2SL0={s2sl0} S2TG={s2tg} S2PS={s2ps})")
        self.a.s2.affd = s2affd
        self.a.kind = AS_IPA

    @property
    def kind(self):
        """'PA' (host physical) or 'IPA' (a VM's IPA space)."""
        return "IPA" if self.a.kind == AS_IPA else "PA"

    def __repr__(self):
        if self.a.kind == AS_PHYS:
            return "AddressSpace(PA)"
        return (f"AddressSpace(IPA, S2TTB={self.a.s2.ttb:#x}, IAS={self.a.s2.ias}, "
                f"granule={1 << self.a.s2.g:#x}, start level {self.a.s2.start})")

    def translate(self, uint64_t addr):
        """The host PA behind addr; MemFault if stage 2 does not map it for reading."""
        cdef uint64_t pa
        if as_translate(&self.a, addr, &pa) != 0:
            raise MemFault(f"no stage-2 translation for IPA {addr:#x}")
        return pa

    def read64(self, uint64_t addr):
        """The little-endian 64-bit word at addr (8-byte aligned); MemFault names the address
        when nothing is there."""
        cdef uint64_t v
        if addr & 7:
            raise ValueError(f"read64 at {addr:#x}: not 8-byte aligned")
        if as_read64(&self.a, addr, &v) != 0:
            raise MemFault(self._nothing_at(addr))
        return v

    def read(self, uint64_t addr, Py_ssize_t n):
        """n bytes from addr; MemFault names the first address with nothing behind it."""
        cdef bytearray out = bytearray(n)
        cdef unsigned char* dst = out
        cdef Py_ssize_t done = 0, chunk
        cdef uint64_t a, pa
        cdef const unsigned char* page
        if n < 0 or (n and addr + <uint64_t>(n - 1) < addr):
            raise ValueError(f"read of {n} bytes at {addr:#x} is out of range")
        while done < n:
            a = addr + <uint64_t>done
            chunk = min(n - done, PAGE_SIZE - <Py_ssize_t>(a & (PAGE_SIZE - 1)))
            if as_translate(&self.a, a, &pa) != 0:
                raise MemFault(self._nothing_at(a))
            page = mc_page(self.a.mem, pa >> PAGE_SHIFT)
            if page == NULL:
                raise MemFault(self._nothing_at(a))
            memcpy(dst + done, page + (pa & (PAGE_SIZE - 1)), chunk)
            done += chunk
        return bytes(out)

    def _nothing_at(self, uint64_t addr):
        cdef uint64_t pa
        if self.a.kind == AS_PHYS:
            return f"no memory at PA {addr:#x}"
        if as_translate(&self.a, addr, &pa) != 0:
            return f"nothing at IPA {addr:#x}: stage 2 does not map it"
        return f"nothing at IPA {addr:#x}: no memory at PA {pa:#x}"
