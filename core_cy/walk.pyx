# cython: language_level=3
"""The Python face of the SMMUv3 translation core (one walker; tracing is a flag, not a second
implementation).

The work is done in typed modules below this one: core_cy.smmuv3 (stream table, STE, CD,
translate), core_cy.vmsa (VMSAv8-64 stage-1/stage-2 walks, address spaces), core_cy.caches
(config cache, IOTLB), with shared types in core_cy/wtypes.pxd, constants from the field tables
in core_cy/_smmuv3.pxd and the few that are no field's in core_cy/consts.pxd.
Rules: docs/walk-rules.md.
"""
cimport numpy as cnp
import numpy as np
from core_cy.batch import batch_inputs
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset
from libc.stdint cimport uint64_t, uint32_t, uint16_t, uint8_t
from core_cy.physmem cimport PhysMem
from core_cy.wtypes cimport (TraceStep, WalkResult, NOADDR, lowmask, PERM_R, PERM_W, PERM_X,
                             PUR_CFG, PUR_TT, PUR_IN, PUR_NONE,
                             STEP_S1, STEP_S2, STEP_TLB, OUT_OK, OUT_TABLE, OUT_BLOCK, OUT_PAGE,
                             OUT_INVALID, OUT_FAULT, OUT_EABT, OUT_CACHED)
from core_cy.vmsa cimport AS_PHYS, AS_IPA, AddressSpace as CAddressSpace
from core_cy.vmsa import AddressSpace
from core_cy.smmucfg cimport Caps, Txn, Fault, SteCfg, CdCfg
from core_cy.caches cimport (TlbEntry, Tlb, CfgCache, SteSlot, CdSlot, InvSpec, ste_cache_clear, cd_cache_clear,
                             ste_cache_put, cd_cache_put, tlb_clear, tlb_invalidate, TLB_S1,
                             TLB_S2, TLB_NESTED, TLB_EL2)
from core_cy.vmsa cimport S1Cfg, S2Cfg, TTCfg
from core_cy.smmuv3 cimport (decode_ste, decode_cd, translate, read_ste, read_cd, stream_stages,
                             SteLoc, CdLoc)
from core_cy._smmuv3 cimport *
from core_cy.consts cimport *
from smmudbg.arch.fieldtable import fmt
from smmudbg.arch.smmuv3 import consts as _C
from smmudbg.arch.smmuv3.geometry import strtab_geometry


def _reserved(name):
    return name.startswith("reserved")

cnp.import_array()

# Text of each Reason (index = the generated enum value), from the generated C array.
REASONS = [REASON_TEXT[i].decode() for i in range(REASON_COUNT)]

STEP_NAMES = {STEP_L1STD: "L1STD", STEP_STE: "STE", STEP_L1CD: "L1CD", STEP_CD: "CD",
              STEP_S1: "S1", STEP_S2: "S2", 7: "TLB"}
OUTCOMES = {OUT_OK: "ok", OUT_TABLE: "table", OUT_BLOCK: "block", OUT_PAGE: "page",
            OUT_INVALID: "invalid", OUT_FAULT: "fault", OUT_EABT: "abort", 7: "cached"}
# Event CLASS names from the tables; wtypes.Purpose is the walk's copy of those values.
assert (PUR_CFG, PUR_TT, PUR_IN) == (EVT_F_TRANSLATION_CLASS_CD, EVT_F_TRANSLATION_CLASS_TT,
                                     EVT_F_TRANSLATION_CLASS_IN)
CLASSES = {v: n for v, n in fmt("EVT_F_TRANSLATION").field("CLASS").enum.items()
           if not _reserved(n)}
CLASSES[PUR_NONE] = None
EVENT_NAMES = dict(_C.EVENT_NAMES)
EVENT_NAMES[T_ABORT] = "ABORT"            # this model's pseudo-code: terminated, no event
EVENT_CODES = {v: k for k, v in EVENT_NAMES.items()}

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


cdef int make_txn(Txn* t, uint32_t sid, uint64_t addr, ssid, bint write, bint instr,
                  bint priv) except -1:
    if ssid is not None and (ssid < 0 or ssid >= (1 << 20)):
        raise ValueError(f"SubstreamID {ssid:#x} does not fit in 20 bits")
    t.sid = sid
    t.ssv = ssid is not None
    t.ssid = ssid if ssid is not None else 0
    t.addr = addr
    t.write = write
    t.instr = instr
    t.priv = priv
    return 0


cdef _addr(uint64_t a):
    return None if a == NOADDR else a


CONFIG_NAMES = {v: n for v, n in fmt("STE").field("Config").enum.items()
                if not _reserved(n)}
CACHE_MAGIC = 0x534D4D5543414331      # "SMMUCAC1": bump when a cached struct changes


cdef dict _tt_dict(TTCfg* tt):
    if not tt.enabled:
        return {"enabled": False, "granule": None, "vabits": None, "start_level": None,
                "ttb": None, "tbi": None, "had": None}
    return {"enabled": True, "granule": 1 << tt.g, "vabits": tt.vabits,
            "start_level": tt.start, "ttb": tt.ttb, "tbi": bool(tt.tbi), "had": bool(tt.had)}


cdef dict _s1_dict(S1Cfg* s):
    return {"ttb0": _tt_dict(&s.tt[0]), "ttb1": _tt_dict(&s.tt[1]), "asid": s.asid,
            "ips_bits": s.ips_bits, "el2": bool(s.el2), "affd": bool(s.affd), "ha": bool(s.ha),
            "hd": bool(s.hd), "wxn": bool(s.wxn), "uwxn": bool(s.uwxn), "pan": bool(s.pan)}


cdef dict _s2_dict(S2Cfg* s):
    return {"granule": 1 << s.g, "start_level": s.start, "ias": s.ias, "ps_bits": s.ps_bits,
            "ttb": s.ttb, "vmid": s.vmid, "affd": bool(s.affd), "ha": bool(s.ha)}


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
        "stall": bool(f.stall) and F_TRANSLATION <= f.type <= F_PERMISSION, "record": bool(f.record) and f.type != T_ABORT,
        "reason": REASONS[f.reason] if 0 < f.reason < len(REASONS) else "",
    }


cdef class Walker:
    """One SMMU's translation unit over a PhysMem: stream table, walks, config cache, IOTLB.

    Usable on its own (tests, batch translation) and owned by the SMMU device model, which
    maps registers and commands onto configure() and the invalidate_* methods.
    """

    def __cinit__(self, PhysMem mem, caps=None, uint64_t tlb_capacity=4096,
                  uint64_t cfg_capacity=1024, *, ipa_space=None):
        self.mem = mem
        memset(&self.ctx, 0, sizeof(WalkCtx))
        self.ctx.env.space.kind = AS_PHYS
        self.ctx.env.space.mem = &mem.core
        self.ctx.env.space.physmem = <void*>mem
        self.ctx.smmuen = True
        self.ctx.caching = True
        cdef uint64_t n = _pow2_at_least(tlb_capacity * 2)
        self.ctx.tlb.e = <TlbEntry*>calloc(n, sizeof(TlbEntry))
        self.ctx.tlb.mask = n - 1
        self.ctx.tlb.capacity = tlb_capacity
        n = _pow2_at_least(cfg_capacity * 2)
        self.ctx.cfg.stes = <SteSlot*>calloc(n, sizeof(SteSlot))
        self.ctx.cfg.ste_mask = n - 1
        self.ctx.cfg.cds = <CdSlot*>calloc(n, sizeof(CdSlot))
        self.ctx.cfg.cd_mask = n - 1
        self.trace_buf = <TraceStep*>calloc(512, sizeof(TraceStep))
        if (self.ctx.tlb.e == NULL or self.ctx.cfg.stes == NULL or self.ctx.cfg.cds == NULL or
                self.trace_buf == NULL):
            raise MemoryError()
        self.ctx.env.trace.cap = 512
        self._strtab = [0, 0, 0, 0]
        self.set_caps(caps or {})
        self._space = None
        if ipa_space is not None:
            self._set_space(ipa_space)

    cdef _set_space(self, space):
        """Read every table (stream table, CDs, stage-1 and stage-2 tables) through space: an
        AddressSpace over this walker's memory, or a dict of its stage-2 fields (s2ttb, s2t0sz,
        s2sl0, s2tg, s2ps, ...) making a VM's IPA space, as a vSMMU sees its guest's RAM."""
        cdef CAddressSpace a
        if isinstance(space, dict):
            space = AddressSpace(self.mem, oas_bits=self.ctx.caps.v.oas_bits, **space)
        if not isinstance(space, AddressSpace):
            raise TypeError(f"ipa_space must be a dict or an AddressSpace, not "
                            f"{type(space).__name__}")
        a = space
        if a.mem is not self.mem:
            raise ValueError("ipa_space is over a different PhysMem than the walker")
        self._space = a
        self.ctx.env.space = a.a

    @property
    def table_space(self):
        """The AddressSpace tables are read from (host PA unless built with ipa_space)."""
        return self._space if self._space is not None else AddressSpace(self.mem)

    def __dealloc__(self):
        free(self.ctx.tlb.e)
        free(self.ctx.cfg.stes)
        free(self.ctx.cfg.cds)
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
        k.v.had, k.v.xnx, k.v.stt, k.ats = g("HAD"), g("XNX"), g("STT"), g("ATS")
        k.v.gran4k, k.v.gran16k, k.v.gran64k = g("GRAN4K"), g("GRAN16K"), g("GRAN64K")
        k.ttf, k.ttendian, k.v.httu = g("TTF", 2), g("TTENDIAN"), g("HTTU")
        k.stall_model, k.term_model = g("STALL_MODEL"), g("TERM_MODEL")
        k.ssidsize, k.sidsize = g("SSIDSIZE"), g("SIDSIZE", 16)
        k.v.oas_bits = SMMU_IDR5_OAS_addr_bits(g("OAS", SMMU_IDR5_OAS_48bit))
        self.ctx.env.caps = k.v

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
        # Effective values: aligned base, reserved SPLIT as 6, reserved FMT as linear.
        geo = strtab_geometry(base, f, split, log2size)
        self.ctx.strtab_base = geo.base
        self.ctx.strtab_fmt = geo.fmt
        self.ctx.strtab_split = geo.split
        self.ctx.strtab_log2size = geo.log2size
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
        return self.ctx.caps.v.oas_bits

    # -- translation --------------------------------------------------------------------------
    def translate(self, uint32_t sid, uint64_t addr, ssid=None, *, bint write=False,
                  bint instr=False, bint priv=False, bint trace=False, bint dry=False):
        """Translate one transaction. Returns a dict: pa, ipa, perm, hit, fault, steps.

        dry: look without changing anything: the config cache and the IOTLB are neither read
        nor filled, their hit/miss counters stay, and a hardware access-flag update is not
        written (the walk goes on as if it had been)."""
        cdef Txn t
        cdef WalkResult r
        cdef Fault f
        cdef bint was = self.ctx.caching
        make_txn(&t, sid, addr, ssid, write, instr, priv)
        self.ctx.env.trace.n = 0
        self.ctx.env.trace.buf = self.trace_buf if trace else NULL
        if dry:
            self.ctx.caching = False
            self.ctx.env.dry = True
        translate(&self.ctx, &t, &r, &f)
        self.ctx.caching = was
        self.ctx.env.dry = False
        self.ctx.env.trace.buf = NULL
        out = {
            "pa": None if f.type != EVT_NONE else r.out,
            "ipa": None if r.ipa == NOADDR else r.ipa,
            "perm": perm_str(r.perm) if f.type == EVT_NONE else "---",
            "hit": bool(r.hit),
            "fault": fault_dict(&f, &t),
        }
        if trace:
            out["steps"] = self._steps()
        return out

    cdef list _steps(self):
        cdef int i
        cdef TraceStep* s
        steps = []
        for i in range(self.ctx.env.trace.n):
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
        b = batch_inputs(sids, addrs, ssids, access, "ssids")
        cdef cnp.ndarray[cnp.uint32_t, ndim=1] s_ = b[0]
        cdef cnp.ndarray[cnp.uint64_t, ndim=1] a_ = b[1]
        cdef cnp.ndarray[cnp.int64_t, ndim=1] ss_ = b[2]
        cdef cnp.ndarray[cnp.uint8_t, ndim=1] ac_ = b[3]
        cdef Py_ssize_t n = s_.shape[0], i
        cdef cnp.ndarray[cnp.uint64_t, ndim=1] out = np.empty(n, dtype=np.uint64)
        cdef cnp.ndarray[cnp.uint8_t, ndim=1] fault = np.empty(n, dtype=np.uint8)
        cdef cnp.ndarray[cnp.uint8_t, ndim=1] perm = np.empty(n, dtype=np.uint8)
        cdef Txn t
        cdef WalkResult r
        cdef Fault f
        self.ctx.env.trace.buf = NULL
        with nogil:
            for i in range(n):
                t.sid = s_[i]
                t.ssv = ss_[i] >= 0
                t.ssid = <uint32_t>ss_[i] if ss_[i] >= 0 else 0
                t.addr = a_[i]
                t.write = ac_[i] == 1
                t.instr = ac_[i] == 2
                t.priv = priv
                translate(&self.ctx, &t, &r, &f)
                fault[i] = <uint8_t>f.type
                out[i] = r.out if f.type == EVT_NONE else 0
                perm[i] = <uint8_t>r.perm if f.type == EVT_NONE else 0
        return out, fault, perm

    # -- readers: the walker's own table code, caches bypassed, no side effects ----------------
    cdef int _begin_read(self) except -1:
        self.ctx.env.trace.n = 0
        self.ctx.env.trace.buf = self.trace_buf
        self.ctx.env.dry = True
        return 0

    cdef int _end_read(self) except -1:
        self.ctx.env.trace.buf = NULL
        self.ctx.env.dry = False
        return 0

    cdef dict _ste(self, uint32_t sid, SteCfg* cfg, Fault* f):
        cdef SteLoc loc
        cdef Txn t
        make_txn(&t, sid, 0, None, False, False, False)
        f.type = EVT_NONE
        f.reason = 0
        read_ste(&self.ctx, sid, cfg, &loc, f)
        read = f.type == EVT_NONE or f.type == C_BAD_STE or f.type == T_ABORT
        return {
            "sid": sid,
            "words": [cfg.raw[i] for i in range(8)] if read else None,
            "ste_pa": _addr(loc.pa),
            "table": loc.table, "index": loc.index if loc.pa != NOADDR else None,
            "l1_pa": _addr(loc.l1_pa), "l1": loc.l1 if loc.l1_pa != NOADDR else None,
            "reason": REASONS[f.reason] if f.type != EVT_NONE else "",
            "fault": fault_dict(f, &t),
        }

    def read_ste(self, uint32_t sid):
        """The STE of a StreamID as the walker finds it in memory now (caches bypassed, nothing
        changed): words (8 ints, None if not read), ste_pa, table (the linear table or the L2
        array) and index in it, l1_pa/l1 (the L1STD, 2-level), reason ('' if legal, else the
        REASONS text), fault (None or the fault dict), steps (the trace)."""
        cdef SteCfg cfg
        cdef Fault f
        self._begin_read()
        try:
            out = self._ste(sid, &cfg, &f)
            out["steps"] = self._steps()
        finally:
            self._end_read()
        return out

    cdef int _cd_ssid(self, uint32_t sid, ssid, SteCfg* ste, Fault* f, uint32_t* use) except -2:
        """The STE's stage use for (sid, ssid) by the SubstreamID rules: -1 on a fault."""
        cdef Txn t
        make_txn(&t, sid, 0, ssid, False, False, False)
        return stream_stages(&self.ctx, &t, ste, use, f)

    def read_cd(self, uint32_t sid, ssid=None):
        """The CD a transaction of (sid, ssid) would use (ssid None: no SubstreamID), read as
        the walker reads it (through stage 2 when nested; caches bypassed, nothing changed):
        words, cd_pa, cd_ipa (nested: the IPA, else None), table and index (the linear CD table
        or the L2 table), l1_ipa/l1_pa/l1 (the L1CD, 2-level), ste_pa, reason, fault, steps.
        ValueError if that stream does not use stage 1."""
        cdef SteCfg ste
        cdef CdCfg cd
        cdef CdLoc loc
        cdef Fault f
        cdef Txn t
        cdef uint32_t use = 0
        cdef int stages
        cdef bint nested
        make_txn(&t, sid, 0, ssid, False, False, False)
        self._begin_read()
        try:
            st = self._ste(sid, &ste, &f)
            out = {"sid": sid, "ssid": ssid, "words": None, "cd_pa": None, "cd_ipa": None,
                   "table": None, "index": None, "l1_ipa": None, "l1_pa": None, "l1": None,
                   "ste_pa": st["ste_pa"], "reason": st["reason"], "fault": st["fault"]}
            if f.type == EVT_NONE:
                stages = self._cd_ssid(sid, ssid, &ste, &f, &use)
                if stages >= 0 and not stages & 1:
                    raise ValueError(f"StreamID {sid}" + ("" if ssid is None else
                                     f" SubstreamID {ssid}") + " does not use stage 1: no CD")
                if stages >= 0:
                    nested = ste.kind == STE_Config_nested
                    loc.cd_ipa = NOADDR
                    loc.table = NOADDR
                    read_cd(&self.ctx, &ste, use, &cd, &loc, &f)
                    read = f.type == EVT_NONE or f.type == C_BAD_CD
                    out.update({
                        "words": [cd.raw[i] for i in range(8)] if read else None,
                        "cd_pa": _addr(loc.cd_pa),
                        "cd_ipa": _addr(loc.cd_ipa) if nested else None,
                        "table": _addr(loc.table), "index": loc.index,
                        "l1_ipa": _addr(loc.l1_ipa) if nested else None,
                        "l1_pa": _addr(loc.l1_pa),
                        "l1": loc.l1 if loc.l1_pa != NOADDR else None})
                out["reason"] = REASONS[f.reason] if f.type != EVT_NONE else ""
                out["fault"] = fault_dict(&f, &t)
            out["steps"] = self._steps()
        finally:
            self._end_read()
        return out

    def ipa_space(self, uint32_t sid):
        """The IPA space of the stream's stage 2, as an AddressSpace (what a nested stream's CDs
        and stage-1 tables are read through), from its STE as the walker reads it now (caches
        bypassed, nothing changed). ValueError if the STE cannot be read, is not legal or has
        no stage 2."""
        cdef SteCfg ste
        cdef Fault f
        cdef CAddressSpace a
        self._begin_read()
        try:
            r = self._ste(sid, &ste, &f)
        finally:
            self._end_read()
        if f.type != EVT_NONE:
            raise ValueError(f"StreamID {sid:#x}: " + (r["reason"] or
                             EVENT_NAMES.get(f.type, f"event {f.type:#x}")))
        if not config_stages(ste.kind) & 2:
            raise ValueError(f"StreamID {sid:#x}: STE.Config={CONFIG_NAMES.get(ste.kind)} "
                             f"has no stage 2")
        a = AddressSpace(self.mem)
        a.a.kind = AS_IPA
        a.a.s2 = ste.s2
        a.a.caps = self.ctx.caps.v
        return a

    def stage_config(self, uint32_t sid, ssid=None):
        """The decoded, checked translation configuration a transaction of (sid, ssid) would
        use, as the walker reads it now (caches bypassed, nothing changed):
        config (STE.Config name), stage1 (None if not used, else ttb0/ttb1 each with enabled,
        granule, vabits, start_level, ttb, tbi, had; asid, ips_bits, el2, affd, ha, hd, wxn,
        uwxn, pan), stage2 (None if not used, else granule, start_level, ias, ps_bits, ttb
        aligned as the walker aligns it, vmid, affd, ha), s1_tables_in_ipa (nested), reason and
        fault (of the STE, the SubstreamID rules or the CD)."""
        cdef SteCfg ste
        cdef CdCfg cd
        cdef CdLoc loc
        cdef Fault f
        cdef Txn t
        cdef uint32_t use = 0
        cdef int stages = -1
        make_txn(&t, sid, 0, ssid, False, False, False)
        self._begin_read()
        try:
            self._ste(sid, &ste, &f)
            out = {"sid": sid, "ssid": ssid, "config": None, "stage1": None, "stage2": None,
                   "s1_tables_in_ipa": False}
            if f.type == EVT_NONE or f.type == T_ABORT:
                out["config"] = CONFIG_NAMES.get(ste.kind)
            if f.type == EVT_NONE:
                stages = self._cd_ssid(sid, ssid, &ste, &f, &use)
            if stages >= 0 and stages & 2:
                out["stage2"] = _s2_dict(&ste.s2)
            if stages >= 0 and stages & 1:
                out["s1_tables_in_ipa"] = stages == 3
                if read_cd(&self.ctx, &ste, use, &cd, &loc, &f) == 0:
                    out["stage1"] = _s1_dict(&cd.s1)
            out["reason"] = REASONS[f.reason] if f.type != EVT_NONE else ""
            out["fault"] = fault_dict(&f, &t)
        finally:
            self._end_read()
        return out

    # -- cache checkpoints ----------------------------------------------------------------------
    def export_caches(self):
        """The exact contents of the config cache and the IOTLB, with their counters, as bytes
        for import_caches() on a walker of the same geometry (a model checkpoint)."""
        cdef CfgCache* c = &self.ctx.cfg
        cdef Tlb* t = &self.ctx.tlb
        head = np.array([CACHE_MAGIC, sizeof(SteSlot), sizeof(CdSlot), sizeof(TlbEntry),
                         c.ste_mask, c.cd_mask, t.mask, t.capacity, c.ste_count, c.cd_count,
                         t.count, t.hits, t.misses], dtype=np.uint64)
        return b"".join([head.tobytes(),
                         (<char*>c.stes)[:(c.ste_mask + 1) * sizeof(SteSlot)],
                         (<char*>c.cds)[:(c.cd_mask + 1) * sizeof(CdSlot)],
                         (<char*>t.e)[:(t.mask + 1) * sizeof(TlbEntry)]])

    def import_caches(self, bytes data):
        """Restore what export_caches() returned (ValueError if it is from another geometry)."""
        cdef CfgCache* c = &self.ctx.cfg
        cdef Tlb* t = &self.ctx.tlb
        cdef size_t nste = (c.ste_mask + 1) * sizeof(SteSlot)
        cdef size_t ncd = (c.cd_mask + 1) * sizeof(CdSlot)
        cdef size_t ntlb = (t.mask + 1) * sizeof(TlbEntry)
        cdef const char* p = data
        want = [CACHE_MAGIC, sizeof(SteSlot), sizeof(CdSlot), sizeof(TlbEntry), c.ste_mask,
                c.cd_mask, t.mask, t.capacity]
        if len(data) != 13 * 8 + nste + ncd + ntlb:
            raise ValueError(f"cache image of {len(data)} bytes does not fit this walker")
        head = [int(x) for x in np.frombuffer(data[:13 * 8], dtype=np.uint64)]
        if head[:8] != want:
            raise ValueError("cache image is from a walker of another geometry or version")
        p += 13 * 8
        memcpy(c.stes, p, nste)
        memcpy(c.cds, p + nste, ncd)
        memcpy(t.e, p + nste + ncd, ntlb)
        c.ste_count, c.cd_count, t.count, t.hits, t.misses = head[8:13]

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
        memset(&d, 0, sizeof(CdCfg))
        return REASONS[decode_cd(&self.ctx, &s, w, &d)]

    # -- caches -------------------------------------------------------------------------------
    def invalidate_all(self):
        """Drop every cached STE, CD and TLB entry."""
        ste_cache_clear(&self.ctx.cfg)
        cd_cache_clear(&self.ctx.cfg)
        tlb_clear(&self.ctx.tlb)

    def invalidate_ste(self, uint32_t lo, uint32_t hi):
        """Drop cached STEs (and the CDs fetched through them) for StreamIDs lo..hi."""
        cdef uint64_t i
        cdef int n = 0
        for i in range(self.ctx.cfg.ste_mask + 1):
            if self.ctx.cfg.stes[i].used and lo <= self.ctx.cfg.stes[i].sid <= hi:
                n += 1
        survivors = [self.ctx.cfg.stes[i] for i in range(self.ctx.cfg.ste_mask + 1)
                     if self.ctx.cfg.stes[i].used and not (lo <= self.ctx.cfg.stes[i].sid <= hi)]
        ste_cache_clear(&self.ctx.cfg)
        cdef SteSlot slot
        for s in survivors:
            slot = s
            ste_cache_put(&self.ctx.cfg, slot.sid, &slot.cfg)
        return n + self.invalidate_cd(lo, hi, None)

    def invalidate_cd(self, uint32_t lo, uint32_t hi, ssid):
        """Drop cached CDs of StreamIDs lo..hi (one SubstreamID, or all if ssid is None)."""
        cdef uint64_t i
        cdef int n = 0
        cdef CdSlot slot
        keep = []
        for i in range(self.ctx.cfg.cd_mask + 1):
            if not self.ctx.cfg.cds[i].used:
                continue
            if lo <= self.ctx.cfg.cds[i].sid <= hi and (ssid is None or self.ctx.cfg.cds[i].ssid == ssid):
                n += 1
            else:
                keep.append(self.ctx.cfg.cds[i])
        cd_cache_clear(&self.ctx.cfg)
        for s in keep:
            slot = s
            cd_cache_put(&self.ctx.cfg, slot.sid, slot.ssid, &slot.cfg)
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
        for i in range(self.ctx.cfg.ste_mask + 1):
            if self.ctx.cfg.stes[i].used:
                out.append({"sid": self.ctx.cfg.stes[i].sid, "ste_pa": self.ctx.cfg.stes[i].cfg.ste_pa,
                            "words": [self.ctx.cfg.stes[i].cfg.raw[j] for j in range(8)]})
        return sorted(out, key=lambda d: d["sid"])

    def cached_cds(self):
        cdef uint64_t i
        out = []
        for i in range(self.ctx.cfg.cd_mask + 1):
            if self.ctx.cfg.cds[i].used:
                out.append({"sid": self.ctx.cfg.cds[i].sid, "ssid": self.ctx.cfg.cds[i].ssid,
                            "cd_pa": self.ctx.cfg.cds[i].cfg.cd_pa,
                            "words": [self.ctx.cfg.cds[i].cfg.raw[j] for j in range(8)]})
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
