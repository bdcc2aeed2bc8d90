"""The SMMUv3 Command queue (IHI 0070 3.5, chapter 4, 7.1) in modeled memory.

Software writes 16-byte commands at SMMU_CMDQ_PROD and moves PROD; the SMMU consumes them up to
PROD when CR0.CMDQEN == 1 and no CMDQ_ERR is active, advancing SMMU_CMDQ_CONS. Commands are read
from memory and decoded with the field tables (smmudbg.arch.smmuv3.events.decode_cmd), so what
is executed is exactly the bytes in the queue.

Effects on the caches go through the Walker's invalidate_* methods. What is not modelled, and so
has no cache effect beyond being checked for legality: ATS (CMD_ATC_INV), PRI (CMD_PRI_RESP),
stalls (CMD_RESUME, CMD_STALL_TERM) and prefetch (CMD_PREFETCH_*: the architecture allows an
implementation to prefetch nothing, 4.2).
"""
from __future__ import annotations

from core_cy.physmem import MemFault

from ..arch.fieldtable import FieldError, fmt
from ..arch.smmuv3 import consts as C
from ..arch.smmuv3.events import CMD_SIZE, decode_cmd, encode_cmd
from ..arch.smmuv3.fields_queue import CERROR, OPCODES, OTHER_OPCODES
from ..errors import ModelError

ALL_KINDS = ("S1", "S2", "NESTED", "EL2")
_NAME_OF = {op: name for name, op in OPCODES.items()}
_CONS_RD = fmt("SMMU_CMDQ_CONS").field("RD")
_STREAMID = fmt("CMD_CFGI_STE_RANGE").field("StreamID")
_CFGI = ("CMD_CFGI_STE", "CMD_CFGI_STE_RANGE", "CMD_CFGI_ALL", "CMD_CFGI_CD", "CMD_CFGI_CD_ALL")


class Ring:
    """PROD/CONS arithmetic of a 2^log2size circular queue with a wrap bit (IHI 0070 3.5.1)."""

    def __init__(self, log2size: int):
        self.log2size = log2size
        self.size = 1 << log2size
        self.mask = self.size - 1

    def idx(self, v: int) -> int:
        return v & self.mask

    def wrap(self, v: int) -> int:
        return (v >> self.log2size) & 1

    def ptr(self, v: int) -> int:
        """Index and wrap bit only (bits above the wrap bit are ignored, 3.5.1)."""
        return v & ((self.size << 1) - 1)

    def empty(self, prod: int, cons: int) -> bool:
        return self.ptr(prod) == self.ptr(cons)

    def full(self, prod: int, cons: int) -> bool:
        return self.idx(prod) == self.idx(cons) and self.wrap(prod) != self.wrap(cons)

    def count(self, prod: int, cons: int) -> int:
        return (self.ptr(prod) - self.ptr(cons)) % (self.size << 1)

    def inc(self, v: int, n: int = 1) -> int:
        return (self.ptr(v) + n) % (self.size << 1)


class CommandError(Exception):
    """A command the SMMU rejects: carries the CMDQ_CONS.ERR code and why."""

    def __init__(self, code: str, why: str):
        super().__init__(why)
        self.code = code
        self.why = why


def to_bytes(cmd) -> bytes:
    """One command as 16 bytes: bytes/bytearray of 16, or (name, {field: value}) encoded with
    the field tables."""
    if isinstance(cmd, (bytes, bytearray, memoryview)):
        raw = bytes(cmd)
        if len(raw) != CMD_SIZE:
            raise ModelError(f"a command is {CMD_SIZE} bytes, got {len(raw)}")
        return raw
    if isinstance(cmd, (tuple, list)) and len(cmd) == 2 and isinstance(cmd[0], str):
        name, fields = cmd
        try:
            return encode_cmd(name, **dict(fields or {}))
        except FieldError as e:
            raise ModelError(f"{name}: {e}") from None
    if isinstance(cmd, str):
        try:
            return encode_cmd(cmd)
        except FieldError as e:
            raise ModelError(str(e)) from None
    raise ModelError(f"a command is 16 bytes or (name, fields), not {type(cmd).__name__}")


def describe(name: str, fields: dict) -> str:
    """'CMD_TLBI_NH_VA VMID=0x1 ASID=0x1 Address=0x10000 ...' with the non-zero fields."""
    parts = [f"{k}={v:#x}" for k, v in fields.items() if k != "Opcode" and v]
    return " ".join([name] + parts)


class CommandQueue:
    """Consumer side of SMMU_CMDQ_*: reads, checks and executes commands for one Smmu."""

    def __init__(self, smmu):
        self.smmu = smmu
        self.drop_budget = 0          # the next N CFGI/TLBI commands are consumed but ignored
        self.history: list[dict] = []  # what each consumed command did, newest last
        self.history_max = 4096
        self.processed = 0

    # -- register views -----------------------------------------------------------------------
    @property
    def ring(self) -> Ring:
        return Ring(self.log2size)

    @property
    def log2size(self) -> int:
        # LOG2SIZE above IDR1.CMDQS behaves as CMDQS (the implemented maximum, 6.3.26).
        return min(self.smmu.field("CMDQ_BASE", "LOG2SIZE"), self.smmu.features.get("CMDQS", 19))

    @property
    def base(self) -> int:
        return self.smmu.reg_address("CMDQ_BASE")

    def slot_pa(self, ptr: int) -> int:
        return self.base + self.ring.idx(ptr) * CMD_SIZE

    def error_active(self) -> bool:
        return self.smmu.gerror_pending("CMDQ_ERR")

    # -- consumption --------------------------------------------------------------------------
    def consume(self) -> list[dict]:
        """Process commands from CONS up to PROD (4.1.2). Stops at the first error (7.1).
        Returns one log record per command consumed or rejected."""
        s = self.smmu
        out = []
        if not s.field("CR0", "CMDQEN") or self.error_active():
            return out
        ring = self.ring
        while True:
            prod, cons = s.regs["SMMU_CMDQ_PROD"], s.regs["SMMU_CMDQ_CONS"]
            if ring.empty(prod, cons):
                break
            pa = self.slot_pa(cons)
            try:
                raw = s.mem.read(pa, CMD_SIZE)
            except MemFault:
                out.append(self._fail(cons, pa, None, CommandError(
                    "CERROR_ABT", f"external abort reading the command at PA {pa:#x}")))
                break
            try:
                rec = self.execute(raw)
            except CommandError as e:
                out.append(self._fail(cons, pa, raw, e))
                break
            rec.update(index=ring.idx(cons), pa=pa, raw=raw.hex())
            self._log(rec)
            out.append(rec)
            self.processed += 1
            # CONS passes the command only once it is consumed (4.1.4); ERR is left as it was.
            err = s.regs["SMMU_CMDQ_CONS"] & ~_CONS_RD.inplace_mask
            s.regs["SMMU_CMDQ_CONS"] = err | ring.inc(cons)
        return out

    def _fail(self, cons, pa, raw, e: CommandError) -> dict:
        """7.1: CONS.RD stays on the bad command, CONS.ERR gets the code, then GERROR.CMDQ_ERR
        is activated by toggling (only if not already active, 7.5)."""
        s = self.smmu
        code = CERROR[e.code]
        errf = fmt("SMMU_CMDQ_CONS").field("ERR")
        cons_v = s.regs["SMMU_CMDQ_CONS"] & ~(errf.mask << errf.lo)
        s.regs["SMMU_CMDQ_CONS"] = cons_v | (code << errf.lo)
        s.raise_gerror("CMDQ_ERR")
        name = decode_cmd(raw)[0] if raw else None
        rec = {"index": self.ring.idx(cons), "pa": pa, "raw": raw.hex() if raw else None,
               "command": name, "fields": decode_cmd(raw)[1] if raw else {},
               "effect": f"{e.code}: {e.why}; queue stopped (GERROR.CMDQ_ERR)",
               "error": e.code}
        self._log(rec)
        return rec

    def _log(self, rec):
        self.history.append(rec)
        if len(self.history) > self.history_max:
            del self.history[: len(self.history) - self.history_max]

    # -- one command --------------------------------------------------------------------------
    def execute(self, raw: bytes) -> dict:
        """Check one command and apply it. Raises CommandError for CERROR_ILL."""
        name, f = decode_cmd(raw)
        self.check(name, f, raw)
        rec = {"command": name, "fields": f, "error": None}
        if self.drop_budget and (name in _CFGI or name.startswith("CMD_TLBI_")):
            self.drop_budget -= 1
            rec["effect"] = f"DROPPED (drop_next_invalidations; {self.drop_budget} more to drop)"
            rec["dropped"] = True
            return rec
        rec["effect"] = getattr(self, "_do_" + name[4:].lower())(f)
        return rec

    def check(self, name: str, f: dict, raw: bytes) -> None:
        """CERROR_ILL conditions of IHI 0070 4.1.3 and of each command's description."""
        feats = self.smmu.features
        op = raw[0]
        if name == "UNKNOWN":
            raise CommandError("CERROR_ILL", f"opcode {op:#04x} is Reserved (4.1.1)")
        if name in OTHER_OPCODES:
            why = {
                "CMD_CFGI_VMS_PIDM": "needs IDR3.MPAM (MPAM is not implemented here, 4.3.5)",
                "CMD_TLBI_EL3_ALL": "is only valid on the Secure Command queue (4.4.2.5)",
                "CMD_TLBI_EL3_VA": "is only valid on the Secure Command queue (4.4.2.6)",
                "CMD_DPTI_ALL": "needs IDR3.DPT (4.6.1)",
                "CMD_DPTI_PA": "needs IDR3.DPT (4.6.2)",
            }.get(name, "is a Secure-queue command, illegal on the Non-secure queue (4.4)")
            raise CommandError("CERROR_ILL", f"{name} {why}")
        words = fmt(name).from_bytes(raw)
        # 4.1.5: Reserved (RES0) fields may be checked; this SMMU checks them.
        stray = fmt(name).reserved_bits(words)
        if stray:
            dw, m = stray[0]
            raise CommandError("CERROR_ILL", f"{name}: RES0 bits {m:#x} set in dword {dw} (4.1.5)")
        if f.get("SSec"):
            raise CommandError("CERROR_ILL", f"{name}: SSec=1 on the Non-secure Command queue "
                                             f"(4.1.6)")
        if name.startswith("CMD_TLBI_NH_") and not feats.get("S1P"):
            raise CommandError("CERROR_ILL", f"{name} needs stage 1 (IDR0.S1P=0, 4.4.2)")
        if name.startswith("CMD_TLBI_EL2_") and not feats.get("HYP"):
            raise CommandError("CERROR_ILL", f"{name} needs IDR0.Hyp=1 (4.4.2.7)")
        if name in ("CMD_TLBI_S12_VMALL", "CMD_TLBI_S2_IPA") and not feats.get("S2P"):
            raise CommandError("CERROR_ILL", f"{name} needs stage 2 (IDR0.S2P=0, 4.4.3)")
        if name in ("CMD_CFGI_CD", "CMD_CFGI_CD_ALL") and not feats.get("S1P"):
            raise CommandError("CERROR_ILL", f"{name} needs stage 1 (IDR0.S1P=0, 4.3.3)")
        if name == "CMD_SYNC" and fmt(name).field("CS").is_reserved(f["CS"]):
            raise CommandError("CERROR_ILL", "CMD_SYNC: CS=0b11 is Reserved (4.7.3)")
        if name == "CMD_ATC_INV" and not feats.get("ATS"):
            raise CommandError("CERROR_ILL", "CMD_ATC_INV needs IDR0.ATS=1 (4.5.1)")
        if name == "CMD_PRI_RESP":
            if not feats.get("PRI"):
                raise CommandError("CERROR_ILL", "CMD_PRI_RESP needs IDR0.PRI=1 (4.5.2)")
            if fmt(name).field("Resp").is_reserved(f["Resp"]):
                raise CommandError("CERROR_ILL", "CMD_PRI_RESP: Resp=0b11 is Reserved (4.5.2)")
        if name in ("CMD_RESUME", "CMD_STALL_TERM") and feats.get("STALL_MODEL") == \
                C.SMMU_IDR0_STALL_MODEL_terminate:
            raise CommandError("CERROR_ILL", f"{name}: this SMMU has no stall model "
                                             f"(IDR0.STALL_MODEL=0b01, 4.7)")
        if "TG" in f:
            self._check_range(name, f)

    def _check_range(self, name, f):
        """4.4.1.1: the range/level fields."""
        if not self.smmu.features.get("RIL"):
            if f["TG"] or f["TTL"] or f["NUM"] or f["SCALE"] or f["TTL128"]:
                raise CommandError("CERROR_ILL", f"{name}: TG/TTL/NUM/SCALE are RES0 without "
                                                 f"IDR3.RIL (4.4.1.1)")
            return
        if f["TTL128"]:
            raise CommandError("CERROR_ILL", f"{name}: TTL128 is RES0 (no 128-bit descriptors, "
                                             f"IDR5.D128=0)")
        scale = fmt(name).field("SCALE")
        if f["SCALE"] >> (scale.width - 1) and not self.smmu.features.get("DS"):
            raise CommandError("CERROR_ILL", f"{name}: SCALE bit 25 is RES0 without IDR5.DS")
        if fmt(name).field("TG").granule_shift.get(f["TG"]) is None:      # TG=0: no range
            if f["TTL"] or f["NUM"] or f["SCALE"]:
                raise CommandError("CERROR_ILL", f"{name}: TTL/NUM/SCALE are RES0 when TG=0 "
                                                 f"(4.4.1.1)")
            return
        # "The parameter combination of NUM == 0, SCALE == 0 and TTL = 0b00 is Reserved. Use of
        # this Reserved combination of parameters causes CERROR_ILL" - with TTL as the SMMU
        # treats it, so TG=16K, TTL=0b01 without DS is illegal only for a single granule.
        if f["NUM"] == 0 and f["SCALE"] == 0 and self._ttl(f) == 0:
            why = ("TTL=1 with TG=16K is treated as TTL=0 without IDR5.DS, " if f["TTL"] else "")
            raise CommandError("CERROR_ILL", f"{name}: {why}TG!=0 with NUM=0, SCALE=0, TTL=0 "
                                             f"is Reserved (4.4.1.1)")

    def _ttl(self, f) -> int:
        """The level hint as the SMMU uses it (4.4.1.1): with TG=16K and IDR5.DS == 0, TTL=0b01
        is "Reserved, and hardware treats as TTL == 0b00" (any level)."""
        tg = fmt(_NAME_OF[f["Opcode"]]).field("TG")
        if tg.value_name(f["TG"]) == "16K" and f["TTL"] == 1 and not self.smmu.features.get("DS"):
            return 0
        return f["TTL"]

    # -- cache effects ------------------------------------------------------------------------
    @property
    def w(self):
        return self.smmu.walker

    def _sid_ok(self, sid) -> bool:
        return not (sid >> self.smmu.features.get("SIDSIZE", 32))

    def _range(self, f):
        """(lo, hi, level) of an address-based TLBI (4.4.1.1). TG=0: the one address; else
        [Address, Address + (NUM+1) * 2^SCALE * granule) and TTL as a level hint."""
        cmd = fmt(_NAME_OF[f["Opcode"]])
        addr = cmd.field("Address").to_address(f["Address"])
        g = cmd.field("TG").granule_shift.get(f["TG"])
        if g is None:                                   # TG=0: no range
            return addr, addr, None, "single address"
        # SCALE is 6 bits with IDR5.DS; "values ... greater than 39 are treated as 39".
        span = (f["NUM"] + 1) << (min(f["SCALE"], 39) + g)
        hi = min(addr + span - 1, (1 << 64) - 1)       # the top of the 64-bit address space
        level = self._ttl(f) or None
        what = f"range {addr:#x}..{hi:#x} ({f['NUM'] + 1} x 2^{f['SCALE']} x {1 << g >> 10}K)"
        if level:
            what += f", level {level} only"
        elif f["TTL"]:
            what += f", TTL={f['TTL']} treated as 0: any level"
        return addr, hi, level, what

    def _vmid(self, f):
        # NH_* match VMID only when stage 2 is implemented (4.4.2); else VMID is RES0.
        return f["VMID"] if self.smmu.features.get("S2P") else None

    def _tlbi(self, kinds, what, **kw) -> str:
        before = self.w.tlb_entries()
        n = self.w.invalidate_tlb(kinds=kinds, **kw)
        after = {(e["kind"], e["vmid"], e["asid"], e["in_base"], e["size"])
                 for e in self.w.tlb_entries()}
        gone = [e for e in before
                if (e["kind"], e["vmid"], e["asid"], e["in_base"], e["size"]) not in after]
        desc = ", ".join(f"{e['kind']} vmid={e['vmid']} asid={e['asid']} "
                         f"{e['in_base']:#x}+{e['size']:#x}" for e in gone[:8])
        more = f" (+{len(gone) - 8} more)" if len(gone) > 8 else ""
        return f"{what}: removed {n} IOTLB entr{'y' if n == 1 else 'ies'}" + \
            (f": {desc}{more}" if n else "")

    def _do_prefetch_config(self, f):
        return "no effect (prefetch is optional, 4.2; not modelled)"

    def _do_prefetch_addr(self, f):
        return "no effect (prefetch is optional, 4.2; not modelled)"

    def _do_cfgi_ste(self, f):
        sid = f["StreamID"]
        if not self._sid_ok(sid):
            return f"StreamID {sid:#x} is out of range (IDR1.SIDSIZE): no effect (4.1.7)"
        # Leaf only matters for cached L1STDs, which this model does not cache.
        n = self.w.invalidate_ste(sid, sid)
        return f"StreamID {sid:#x}: removed {n} cached STE/CD entr{'y' if n == 1 else 'ies'}"

    def _do_cfgi_ste_range(self, f):
        r = f["Range"]
        lo = f["StreamID"] & ~((1 << (r + 1)) - 1)
        hi = lo + (1 << (r + 1)) - 1
        n = self.w.invalidate_ste(lo, min(hi, _STREAMID.mask))
        return f"StreamIDs {lo:#x}..{hi:#x}: removed {n} cached STE/CD entr" + \
            ("y" if n == 1 else "ies")

    def _do_cfgi_all(self, f):
        n = self.w.invalidate_ste(0, _STREAMID.mask)
        return f"all StreamIDs: removed {n} cached STE/CD entr{'y' if n == 1 else 'ies'}"

    def _do_cfgi_cd(self, f):
        sid, ssid = f["StreamID"], f["SubstreamID"]
        if not self._sid_ok(sid):
            return f"StreamID {sid:#x} is out of range (IDR1.SIDSIZE): no effect (4.1.7)"
        n = self.w.invalidate_cd(sid, sid, ssid)
        return f"StreamID {sid:#x} SubstreamID {ssid:#x}: removed {n} cached CD" + \
            ("" if n == 1 else "s")

    def _do_cfgi_cd_all(self, f):
        sid = f["StreamID"]
        n = self.w.invalidate_cd(sid, sid, None)
        return f"StreamID {sid:#x}: removed {n} cached CD" + ("" if n == 1 else "s")

    def _do_tlbi_nh_all(self, f):
        # VMALLE1 scope: stage 1 NS-EL1 entries of VMID, global ones included; combined
        # stage 1+2 entries are stage-1 entries too (4.4.3.1 expects NH_ALL to clean them).
        return self._tlbi(("S1", "NESTED"), "NH_ALL", vmid=self._vmid(f))

    def _do_tlbi_nh_asid(self, f):
        # ASIDE1 scope: non-global entries of (VMID, ASID) only.
        return self._tlbi(("S1", "NESTED"), "NH_ASID", vmid=self._vmid(f), asid=f["ASID"],
                          keep_global=True)

    def _do_tlbi_nh_va(self, f):
        lo, hi, level, what = self._range(f)
        # VA{L}E1: (VMID, ASID, VA) plus global entries of VMID at VA.
        return self._tlbi(("S1", "NESTED"), f"NH_VA {what}", vmid=self._vmid(f),
                          asid=f["ASID"], lo=lo, hi=hi, level=level)

    def _do_tlbi_nh_vaa(self, f):
        lo, hi, level, what = self._range(f)
        return self._tlbi(("S1", "NESTED"), f"NH_VAA {what}", vmid=self._vmid(f), lo=lo,
                          hi=hi, level=level)

    def _do_tlbi_el2_all(self, f):
        return self._tlbi(("EL2",), "EL2_ALL")

    def _do_tlbi_el2_asid(self, f):
        # Only ASID-tagged (EL2-E2H) entries; the walker inserts EL2 entries without an ASID
        # (E2H is not modelled), which this command is not required to touch (4.4.2.10).
        return self._tlbi(("EL2",), "EL2_ASID", asid=f["ASID"], keep_global=True)

    def _do_tlbi_el2_va(self, f):
        lo, hi, level, what = self._range(f)
        # CR2.E2H=0: the ASID is ignored (4.4.2.8); E2H=1: ASID or global - EL2 entries here
        # carry no ASID, so both read the same.
        return self._tlbi(("EL2",), f"EL2_VA {what}", lo=lo, hi=hi, level=level)

    def _do_tlbi_el2_vaa(self, f):
        lo, hi, level, what = self._range(f)
        return self._tlbi(("EL2",), f"EL2_VAA {what}", lo=lo, hi=hi, level=level)

    def _do_tlbi_s12_vmall(self, f):
        # VMALLS12E1: every non-Hyp entry of VMID at all stages (4.4.3.2).
        return self._tlbi(("S1", "S2", "NESTED"), "S12_VMALL", vmid=f["VMID"])

    def _do_tlbi_s2_ipa(self, f):
        lo, hi, level, what = self._range(f)
        # IPAS2{L}E1: stage-2-only entries. Combined stage 1+2 entries need not be touched
        # (4.4.3.1), so they stay: software must follow with NH_ALL/NH_VAA or S12_VMALL.
        return self._tlbi(("S2",), f"S2_IPA {what}", vmid=f["VMID"], lo=lo, hi=hi,
                          level=level, s2level=True)

    def _do_tlbi_nsnh_all(self, f):
        # ALLE1: every Non-secure non-EL2 entry at all stages (4.4.4.1).
        return self._tlbi(("S1", "S2", "NESTED"), "NSNH_ALL")

    def _do_atc_inv(self, f):
        return "accepted; ATS is not modelled, so there is no ATC to invalidate"

    def _do_pri_resp(self, f):
        return "accepted; PRI is not modelled (no page request groups are outstanding)"

    def _do_resume(self, f):
        return "accepted; stalls are not modelled (no stalled transaction matches the STAG)"

    def _do_stall_term(self, f):
        return "accepted; stalls are not modelled (no stalled transactions)"

    def _do_sync(self, f):
        """4.7.3: every earlier command here has already completed (the model executes in
        order), so completion is immediate; then the completion signal."""
        s = self.smmu
        parts = ["all prior commands complete"]
        if f["CS"] == C.CMD_SYNC_CS_SIG_IRQ:
            # A wired completion interrupt is asserted whatever MSIAddress says; an MSI is
            # sent as well when MSIs are implemented and MSIAddress != 0.
            s.note_irq("CMD_SYNC", "CMD_SYNC completion (SIG_IRQ)")
            parts.append("completion interrupt")
            addr = fmt("CMD_SYNC").field("MSIAddress").to_address(f["MSIAddress"])
            if s.features.get("MSI") and addr:
                # The MSI is a 32-bit write of MSIData (4.7.3); a write to nothing aborts and
                # activates GERROR.MSI_CMDQ_ABT_ERR (6.3.19).
                if s.msi_write(addr, f["MSIData"]):
                    parts.append(f"MSI: wrote {f['MSIData']:#010x} to PA "
                                 f"{addr & ((1 << s.walker.oas_bits) - 1):#x}")
                else:
                    s.raise_gerror("MSI_CMDQ_ABT_ERR")
                    parts.append(f"MSI write to PA {addr:#x} aborted (GERROR.MSI_CMDQ_ABT_ERR)")
        elif f["CS"] == C.CMD_SYNC_CS_SIG_SEV:
            if s.features.get("SEV"):
                parts.append("WFE wake-up event sent")
            else:
                parts.append("SIG_SEV without IDR0.SEV: no event (acts as SIG_NONE)")
        return "; ".join(parts)


def ring_history(cq, skip: int, n: int) -> dict:
    """The commands behind CONS that the ring memory still holds, newest first: from the
    (skip+1)-th slot before CONS back at most n slots (a dump's history before the snapshot).

    The history stops being trustworthy where
      * the slots before it are the pending ones (CONS..PROD) of the previous lap: the ring
        holds at most 2^LOG2SIZE - (PROD - CONS) consumed commands;
      * it crosses index 0 with CONS.WRAP=0: older slots are from an earlier lap only if the
        queue wrapped, which the registers cannot tell (the rows are marked lap -1);
      * a slot does not hold a command: unreadable memory, a Reserved opcode (an all-zero
        slot is never written), or one this SMMU rejects (CERROR_ILL: RES0 bits set, a
        Secure-only command) - software never had it consumed, so it is not history.
    Returns {entries: [{index, pa, command, fields, raw, state: "consumed", lap, back}],
    stop: null (n reached) or {index, back, why}}."""
    s = cq.smmu
    ring = cq.ring
    prod, cons = s.regs["SMMU_CMDQ_PROD"], s.regs["SMMU_CMDQ_CONS"]
    room = ring.size - ring.count(prod, cons)       # slots not pending
    cidx, wrapped = ring.idx(cons), bool(ring.wrap(cons))
    out, stop = [], None
    for back in range(skip + 1, skip + n + 1):
        i = (cidx - back) % ring.size
        if back > room:
            stop = {"index": i, "back": back, "why": "the slots before hold the pending "
                    "commands (CONS..PROD) of this lap: older history is overwritten"}
            break
        pa = cq.base + i * CMD_SIZE
        try:
            raw = bytes(s.mem.read(pa, CMD_SIZE))
        except MemFault:
            stop = {"index": i, "back": back, "why": f"no memory at PA {pa:#x} (not in the "
                    f"dump)"}
            break
        name, f = decode_cmd(raw)
        why = None
        try:
            cq.check(name, f, raw)
        except CommandError as e:
            why = f"{e.code}: {e.why}"
        if why:
            if not any(raw):
                why = "an all-zero slot (never written)"
            stop = {"index": i, "back": back, "why": f"no command at index {i:#x}: {why}"}
            break
        lap = 0 if back <= cidx else -1
        out.append({"index": i, "pa": pa, "command": name, "fields": f, "raw": raw.hex(),
                    "state": "consumed" if lap == 0 or wrapped else
                    "consumed (earlier lap, if the queue wrapped)", "lap": lap, "back": back})
    return {"entries": out, "stop": stop}
