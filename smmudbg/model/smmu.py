"""One SMMUv3 instance: its registers, stream table, queues in modeled memory, and the walker.

The walker (core_cy.walk.Walker) does translation and holds the caches; this class is the
programming interface around it, as software and the scenario builder see it.
"""
from __future__ import annotations

from core_cy.physmem import MemFault
from core_cy.ptbuild import BumpAllocator, BuildError
from core_cy.walk import Walker

from ..arch.fieldtable import fmt
from ..arch.smmuv3 import consts as C
from ..arch.smmuv3 import registers as R
from ..arch.smmuv3.events import CMD_SIZE, EVENT_SIZE, decode_cmd
from ..arch.smmuv3.geometry import (L1_SIZE, SPLITS, STE_SIZE, StrtabGeometry,
                                    strtab_geometry)
from ..errors import ModelError
from .cmdq import CommandQueue, to_bytes
from .evtq import EventQueue
from .views import SmmuViews

STE = fmt("STE")
CD = fmt("CD")
L1STD = fmt("L1STD")
L1CD = fmt("L1CD")
_L2PTR = L1STD.field("L2Ptr")

# Capabilities the scenario may set, by IDR field name, and the register that holds each.
IDR_OF = {}
for _reg in ("SMMU_IDR0", "SMMU_IDR1", "SMMU_IDR3", "SMMU_IDR5"):
    for _f in fmt(_reg).fields:
        IDR_OF.setdefault(_f.name.upper(), (_reg, _f))

# Defaults: an SMMU with both stages, AArch64 tables, little-endian. Without IDR3.HAD/XNX
# (mandatory from v3.1) it reports SMMUv3.0 in AIDR (arch_minor); a scenario adds them.
DEFAULT_FEATURES = {"S1P": 1, "S2P": 1, "TTF": 2, "TTENDIAN": 2, "COHACC": 1, "ASID16": 1,
                    "VMID16": 1, "CD2L": 1, "ST_LEVEL": 1, "SIDSIZE": 16, "SSIDSIZE": 8,
                    "CMDQS": 19, "EVENTQS": 19, "OAS": 5, "GRAN4K": 1, "GRAN16K": 1,
                    "GRAN64K": 1, "RIL": 1, "STALL_MODEL": 1, "MSI": 1}

# Names the walker takes (IDR field names, normalised to upper case).
WALKER_CAPS = ("S1P", "S2P", "CD2L", "VMID16", "ASID16", "HYP", "HAD", "XNX", "STT", "ATS",
               "GRAN4K", "GRAN16K", "GRAN64K", "TTF", "TTENDIAN", "HTTU", "STALL_MODEL",
               "TERM_MODEL", "SSIDSIZE", "SIDSIZE", "OAS")


# ID-register values each SMMUv3.x requires (IHI 0070 6.3.4 SMMU_IDR3, 6.3.1 SMMU_IDR0), as
# (field, applies-when) pairs. AIDR reports the highest version whose requirements all hold.
_VERSION_RULES = (
    (1, (("HAD", lambda f: f.get("S1P")),      # "In SMMUv3.1 and later ... mandatory when S1P"
         ("XNX", lambda f: f.get("S2P")))),    # "In SMMUv3.1 and later ... mandatory when S2P"
    (2, (("RIL", lambda f: True),              # "RIL is 1 in ... SMMUv3.2 or later"
         ("FWB", lambda f: True),              # "FWB is 1 in ... SMMUv3.2 or later"
         ("BBML", lambda f: True),             # "BBML is 0b01 or 0b10 in ... SMMUv3.2 or later"
         ("HYP", lambda f: f.get("S1P") and f.get("S2P")))),   # IDR0.Hyp, 6.3.1
    (3, (("E0PD", lambda f: True),             # "1 in all implementations of SMMUv3.3 and later"
         ("PTWNNC", lambda f: f.get("S2P")))),
)


def arch_minor(features: dict) -> int:
    """SMMUv3.x minor revision (SMMU_AIDR.ArchMinorRev, 6.3.8) that an SMMU with these IDR
    features can claim: the highest x whose mandatory features are all present."""
    minor = 0
    for rev, rules in _VERSION_RULES:
        if not all(features.get(name) or not when(features) for name, when in rules):
            break
        minor = rev
    return minor


# Registers that are RO while an enable bit or its acknowledgement is 1: "In SMMUv3.2 and later,
# a write while SMMU_CR0.SMMUEN == 1 is IGNORED" (IHI 0070 6.3.24, 6.3.25; the same for the
# IRQ_CFG registers and their IRQEN, 6.3.21). Before v3.2 such a write is CONSTRAINED
# UNPREDICTABLE and "The write is ignored" is one of the permitted behaviours, so whichever
# version AIDR reports, ignoring it is architected.
_IGNORED_WHILE = {"SMMU_STRTAB_BASE": ("CR0", "SMMUEN"), "SMMU_STRTAB_BASE_CFG": ("CR0", "SMMUEN")}
_IGNORED_WHILE.update({f"SMMU_{q}_IRQ_CFG{i}": ("IRQ_CTRL", en) for i in range(3)
                       for q, en in (("GERROR", "GERROR_IRQEN"), ("EVENTQ", "EVENTQ_IRQEN"),
                                     ("PRIQ", "PRIQ_IRQEN"))})


MAX_PENDING_SHOWN = 1024        # queued commands `cmdq` lists (a queue may hold 2^19)


def _canon(name: str) -> str:
    """Accept SMMU_IDR0, IDR0, smmu_evtq_base...: return the architected register name."""
    n = name.upper()
    if not n.startswith("SMMU_"):
        n = "SMMU_" + n
    return R.ALIASES.get(n, n)


class Smmu(SmmuViews):
    def __init__(self, name: str, mem, features: dict | None = None, pool=None, base: int = 0):
        self.name = name
        self.mem = mem
        self.base = base
        feats = dict(DEFAULT_FEATURES)
        for k, v in (features or {}).items():
            k = k.upper()
            if k not in IDR_OF:
                raise ModelError(f"{name}: unknown SMMU feature {k!r} (an IDR0/1/3/5 field)")
            feats[k] = v
        self.features = feats
        self.regs = {n: 0 for n in R.FORMATS}
        for n, v in getattr(R, "RESET", {}).items():
            if n in self.regs:
                self.regs[n] = v
        for k, v in feats.items():
            reg, f = IDR_OF[k]
            if v < 0 or v > f.mask:
                raise ModelError(f"{name}: feature {k}={v} does not fit {reg}.{f.name}")
            self.regs[reg] = (self.regs[reg] & ~(f.mask << f.lo)) | (v << f.lo)
        self.regs["SMMU_AIDR"] = fmt("SMMU_AIDR").encode(ArchMajorRev=0,
                                                         ArchMinorRev=arch_minor(feats))[0]
        self.walker = Walker(mem, {k: feats.get(k, 0) for k in WALKER_CAPS})
        self.alloc = BumpAllocator(pool["base"], pool["size"]) if pool else None
        self.l2_span = {}
        self.cmdq = CommandQueue(self)
        self.evtq = EventQueue(self)
        self.irqs: list[dict] = []       # interrupts the SMMU signalled, oldest first

    # -- registers ------------------------------------------------------------------------------
    def reg(self, name: str) -> int:
        n = _canon(name)
        if n not in self.regs:
            raise ModelError(f"{self.name} has no register {name!r}")
        return self.regs[n]

    def field(self, reg: str, field: str) -> int:
        return fmt(_canon(reg)).field(field).get([self.reg(reg)])

    def reg_address(self, reg: str, field: str = "ADDR") -> int:
        """The address an address field of a register holds (e.g. CMDQ_BASE.ADDR)."""
        return fmt(_canon(reg)).field(field).address([self.reg(reg)])

    def gerror_pending(self, flag: str) -> bool:
        """GERROR.<flag> is active: it differs from GERRORN.<flag> (7.5)."""
        f = fmt("SMMU_GERROR").field(flag)
        return bool(f.get([self.regs["SMMU_GERROR"] ^ self.regs["SMMU_GERRORN"]]))

    # Registers only the SMMU writes, and registers software may write only while the queue
    # or the SMMU is disabled (IHI 0070 6.3: "Guarded by ...").
    _GUARDS = {"SMMU_CMDQ_BASE": "CMDQEN", "SMMU_CMDQ_CONS": "CMDQEN",
               "SMMU_EVENTQ_BASE": "EVENTQEN", "SMMU_EVENTQ_PROD": "EVENTQEN"}

    def write_ignored(self, name: str) -> bool:
        """A software write to this register now would be IGNORED (see _IGNORED_WHILE)."""
        guard = _IGNORED_WHILE.get(_canon(name))
        if guard is None:
            return False
        reg, en = guard
        return bool(self.field(reg, en) or self.field(reg + "ACK", en))

    def set_reg(self, name: str, value: int):
        """A register write by software, with its side effects. Writing SMMU_CMDQ_PROD (or
        acknowledging CMDQ_ERR in SMMU_GERRORN, or setting CR0.CMDQEN) makes the SMMU consume
        commands; the per-command log of that is returned (else None)."""
        n = _canon(name)
        if n not in self.regs:
            raise ModelError(f"{self.name} has no register {name!r}")
        if n.startswith("SMMU_IDR") or n in ("SMMU_IIDR", "SMMU_AIDR", "SMMU_CR0ACK",
                                             "SMMU_IRQ_CTRLACK", "SMMU_GERROR"):
            raise ModelError(f"{n} is read-only")
        size = fmt(n).size
        if value < 0 or value >> (8 * size):
            raise ModelError(f"{n}: {value:#x} does not fit in {8 * size} bits")
        guard = self._GUARDS.get(n)
        if guard and self.field("CR0", guard):
            raise ModelError(f"{n} may only be written while SMMU_CR0.{guard}=0 "
                             f"(it is guarded by {guard}, IHI 0070 6.3)")
        if self.write_ignored(n):
            return None
        old = self.regs[n]
        self.regs[n] = value
        return self._apply(n, old)

    def _apply(self, n: str, old: int = 0):
        if n == "SMMU_CR0":
            self.regs["SMMU_CR0ACK"] = self.regs["SMMU_CR0"]
            self.walker.configure(smmuen=bool(self.field("CR0", "SMMUEN")))
            if self.field("CR0", "EVENTQEN"):
                self.evtq.drain_pending()
            if self.field("CR0", "CMDQEN") and not fmt(n).field("CMDQEN").get([old]):
                return self.cmdq.consume()      # 6.3.9.3: processing starts on enable
        elif n == "SMMU_IRQ_CTRL":
            self.regs["SMMU_IRQ_CTRLACK"] = self.regs["SMMU_IRQ_CTRL"]
        elif n == "SMMU_GBPA":
            # GBPA takes effect only when written with Update=1; the SMMU clears Update.
            v = self.regs["SMMU_GBPA"]
            upd = fmt("SMMU_GBPA").field("Update")
            if upd.get([v]):
                self.regs["SMMU_GBPA"] = v & ~(upd.mask << upd.lo)
                self.walker.configure(gbpa_abort=bool(self.field("GBPA", "ABORT")))
            else:
                self.regs["SMMU_GBPA"] = old     # ignored without Update (6.3.14)
        elif n in ("SMMU_STRTAB_BASE", "SMMU_STRTAB_BASE_CFG"):
            # The walker takes the values as written and uses the effective ones (6.3.24/25).
            self.walker.configure(strtab_base=self.reg("STRTAB_BASE"),
                                  strtab_fmt=self.field("STRTAB_BASE_CFG", "FMT"),
                                  strtab_split=self.field("STRTAB_BASE_CFG", "SPLIT"),
                                  strtab_log2size=self.field("STRTAB_BASE_CFG", "LOG2SIZE"))
        elif n == "SMMU_CMDQ_PROD":
            return self.cmdq.consume()          # 6.3.27: a PROD write rings the doorbell
        elif n == "SMMU_GERRORN":
            # 7.1: acknowledging CMDQ_ERR restarts consumption at CONS (the failed command is
            # re-fetched); a PROD write is not needed.
            acked = fmt("SMMU_GERROR").field("CMDQ_ERR").get([old ^ self.regs["SMMU_GERROR"]])
            if acked and not self.cmdq.error_active():
                return self.cmdq.consume()
            if not self.gerror_pending("EVENTQ_ABT_ERR"):
                self.evtq.drain_pending()
        elif n == "SMMU_EVENTQ_CONS":
            self.evtq.drain_pending()
        return None

    # -- errors and interrupts ----------------------------------------------------------------
    def gerror_active(self) -> list[str]:
        """Names of the active global errors (GERROR[x] != GERRORN[x], 7.5)."""
        return [f.name for f in fmt("SMMU_GERROR").fields if self.gerror_pending(f.name)]

    def raise_gerror(self, flag: str) -> bool:
        """Activate a global error by toggling its GERROR bit, unless already active (7.5).
        Returns True if it was newly activated."""
        if self.gerror_pending(flag):
            return False
        self.regs["SMMU_GERROR"] ^= fmt("SMMU_GERROR").field(flag).inplace_mask
        # 7.5.1: a GERROR interrupt, except for MSI_GERROR_ABT_ERR.
        if self.field("IRQ_CTRL", "GERROR_IRQEN") and flag != "MSI_GERROR_ABT_ERR":
            self.signal_irq("GERROR", flag)
        return True

    def msi_write(self, addr: int, data: int) -> bool:
        """An MSI: a 32-bit write of data at addr, truncated to the OAS (the ADDR bits above it
        are RES0, 6.3.21). Returns False if the write aborted: nothing there (strict memory
        raises MemFault for a write outside declared RAM and device regions)."""
        addr &= (1 << self.walker.oas_bits) - 1
        try:
            self.mem.write(addr, (data & 0xFFFFFFFF).to_bytes(4, "little"))
        except MemFault:
            return False
        return True

    # Interrupts that may be MSIs, with their IRQ_CFG registers and the GERROR flag an aborted
    # MSI activates (6.3.19: MSI_EVENTQ_ABT_ERR [5], MSI_GERROR_ABT_ERR [7]).
    _MSI = {"EVENTQ": ("EVENTQ_IRQ_CFG0", "EVENTQ_IRQ_CFG1", "MSI_EVENTQ_ABT_ERR"),
            "GERROR": ("GERROR_IRQ_CFG0", "GERROR_IRQ_CFG1", "MSI_GERROR_ABT_ERR")}

    def signal_irq(self, source: str, what: str) -> None:
        """Signal the EVENTQ or GERROR interrupt: noted, and sent as an MSI when IDR0.MSI == 1
        and IRQ_CFG0.ADDR != 0 ("If ADDR == 0, no MSI is sent", 6.3.21, 6.3.30). An MSI that
        aborts activates GERROR.MSI_*_ABT_ERR; "Activation of this error does not affect
        future MSIs" (6.3.19)."""
        cfg0, cfg1, abt = self._MSI[source]
        addr = self.reg_address(cfg0)
        if self.features.get("MSI") and addr:
            data = self.field(cfg1, "DATA")
            if self.msi_write(addr, data):
                what += f"; MSI {data:#x} to PA {addr:#x}"
            else:
                what += f"; MSI to PA {addr:#x} aborted"
                self.note_irq(source, what)
                self.raise_gerror(abt)
                return
        self.note_irq(source, what)

    def note_irq(self, source: str, what: str) -> None:
        """Remember an interrupt the SMMU signalled (CMD_SYNC, EVENTQ, GERROR)."""
        self.irqs.append({"source": source, "what": what})
        if len(self.irqs) > 1024:
            del self.irqs[:-1024]

    # -- queues ---------------------------------------------------------------------------------
    def setup_queues(self, cmdq_log2size: int, evtq_log2size: int) -> dict:
        """Allocate both queues from the SMMU's pool and program SMMU_CMDQ_BASE/PROD/CONS and
        SMMU_EVENTQ_BASE/PROD/CONS (both queues empty), as a driver does before enabling them."""
        for what, n, cap in (("command", cmdq_log2size, "CMDQS"),
                             ("event", evtq_log2size, "EVENTQS")):
            if not 0 <= n <= self.features.get(cap, 19):
                raise ModelError(f"{self.name}: {what} queue LOG2SIZE {n} exceeds "
                                 f"IDR1.{cap}={self.features.get(cap, 19)}")
        if self.field("CR0", "CMDQEN") or self.field("CR0", "EVENTQEN"):
            raise ModelError(f"{self.name}: disable CMDQEN and EVENTQEN before moving the queues")
        # Queues are aligned to their size, and at least to what BASE.ADDR can hold.
        cqb, eqb = fmt("SMMU_CMDQ_BASE"), fmt("SMMU_EVENTQ_BASE")
        csize = max(1 << cqb.field("ADDR").address_shift, CMD_SIZE << cmdq_log2size)
        esize = max(1 << eqb.field("ADDR").address_shift, EVENT_SIZE << evtq_log2size)
        cq, eq = self._take(csize), self._take(esize)
        self._sw_write(cq, bytes(csize))
        self._sw_write(eq, bytes(esize))
        self.set_reg("CMDQ_BASE", cqb.encode(ADDR=cqb.field("ADDR").from_address(cq),
                                             LOG2SIZE=cmdq_log2size)[0])
        self.set_reg("CMDQ_PROD", 0)
        self.set_reg("CMDQ_CONS", 0)
        self.set_reg("EVENTQ_BASE", eqb.encode(ADDR=eqb.field("ADDR").from_address(eq),
                                               LOG2SIZE=evtq_log2size)[0])
        self.set_reg("EVENTQ_PROD", 0)
        self.set_reg("EVENTQ_CONS", 0)
        return {"cmdq": cq, "evtq": eq}

    def submit(self, cmds) -> list[dict]:
        """Software side of the command queue: write each command (16 bytes, or a
        (name, {field: value}) tuple) at SMMU_CMDQ_PROD, then write PROD (the doorbell).
        Returns the per-command log of what the SMMU did: command, fields, effect, error.
        When the queue fills up, the commands written so far are submitted first (as a driver
        does); if the SMMU has stopped on an error, the rest cannot be queued (ModelError)."""
        raws = [to_bytes(c) for c in cmds]
        if self.field("CMDQ_BASE", "ADDR") == 0:
            raise ModelError(f"{self.name}: SMMU_CMDQ_BASE is not programmed")
        log = []
        ring = self.cmdq.ring
        prod = ring.ptr(self.regs["SMMU_CMDQ_PROD"])
        written = False
        for raw in raws:
            if ring.full(prod, self.regs["SMMU_CMDQ_CONS"]):
                log += self.set_reg("CMDQ_PROD", prod) or []
                written = False
                if ring.full(prod, self.regs["SMMU_CMDQ_CONS"]):
                    why = ("stopped by " + ", ".join(self.gerror_active())
                           if self.cmdq.error_active() else "not enabled (CR0.CMDQEN=0)")
                    raise ModelError(f"{self.name}: the command queue is full and {why}")
            self._sw_write(self.cmdq.slot_pa(prod), raw)
            prod = ring.inc(prod)
            written = True
        if written or not raws:
            log += self.set_reg("CMDQ_PROD", prod) or []
        return log

    def cmdq_entries(self, history: int = 16) -> list[dict]:
        """For display: the last `history` consumed commands (state 'done', 'dropped' or the
        error), then the commands between CONS and PROD still waiting ('pending'; the first
        is 'error' when the queue is stopped on it), the first MAX_PENDING_SHOWN of them."""
        out = []
        for rec in self.cmdq.history[-history:] if history else []:
            state = rec.get("error") or ("dropped" if rec.get("dropped") else "done")
            out.append({"index": rec["index"], "pa": rec["pa"], "command": rec["command"],
                        "fields": rec["fields"], "state": state, "effect": rec["effect"]})
        if out and out[-1]["state"] not in ("done", "dropped"):
            out.pop()                      # it is still in the queue: listed below
        ring = self.cmdq.ring
        prod, cons = self.regs["SMMU_CMDQ_PROD"], self.regs["SMMU_CMDQ_CONS"]
        p = cons
        err = self.cmdq.error_active()
        for i in range(min(ring.count(prod, cons), MAX_PENDING_SHOWN)):
            pa = self.cmdq.slot_pa(p)
            try:
                raw = self.mem.read(pa, 16)
                name, fields = decode_cmd(raw)
            except Exception:              # unreadable slot: show it, do not fail the view
                name, fields = "UNREADABLE", {}
            state = "pending"
            if i == 0 and err:
                state = fmt("SMMU_CMDQ_CONS").field("ERR").value_name(
                    self.field("CMDQ_CONS", "ERR")) or "error"
            out.append({"index": ring.idx(p), "pa": pa, "command": name, "fields": fields,
                        "state": state, "effect": ""})
            p = ring.inc(p)
        return out

    def drop_next_invalidations(self, n: int) -> None:
        """Fault injection: the SMMU consumes the next n CMD_CFGI_*/CMD_TLBI_* commands without
        acting on them (logged as DROPPED), to reproduce a lost invalidation."""
        if n < 0:
            raise ModelError("the number of invalidations to drop cannot be negative")
        self.cmdq.drop_budget = n

    def events(self) -> list[dict]:
        """The event records software can read: decoded entries from EVENTQ_CONS to PROD."""
        return self.evtq.entries()

    def consume_events(self, n=None) -> int:
        """Software consumes n event records (all if None) by advancing SMMU_EVENTQ_CONS and
        acknowledges any overflow. Returns how many were consumed."""
        return self.evtq.consume(n)

    @property
    def evtq_overflow(self) -> bool:
        """An Event queue overflow is pending: PROD.OVFLG != CONS.OVACKFLG (7.4)."""
        return self.field("EVENTQ_PROD", "OVFLG") != self.field("EVENTQ_CONS", "OVACKFLG")

    # -- stream table ---------------------------------------------------------------------------
    def _sw_write(self, pa: int, data: bytes) -> None:
        """A store by software (the driver side) into a structure: with strict memory, a store
        to nothing is the user's configuration error, not an SMMU abort."""
        try:
            self.mem.write(pa, data)
        except MemFault as e:
            raise ModelError(f"{self.name}: {e}") from None

    def _take(self, size: int) -> int:
        if self.alloc is None:
            raise ModelError(f"{self.name} has no memory pool for its structures")
        try:
            return self.alloc.alloc(size)
        except BuildError as e:
            raise ModelError(f"{self.name}: {e}") from None

    def setup_stream_table(self, fmt_name: str, log2size: int, split: int = 8) -> int:
        """Allocate and program a linear or 2-level stream table; returns its PA."""
        sidsize = self.features.get("SIDSIZE", 0)
        if log2size > sidsize:
            raise ModelError(f"{self.name}: stream table LOG2SIZE {log2size} exceeds "
                             f"IDR1.SIDSIZE {sidsize}")
        if fmt_name == "2lvl":
            if not self.features.get("ST_LEVEL"):
                raise ModelError(f"{self.name}: a 2-level stream table needs IDR0.ST_LEVEL=1")
            if split not in SPLITS:
                raise ModelError(f"{self.name}: SPLIT {split} is not 6, 8 or 10")
            f = C.SMMU_STRTAB_BASE_CFG_FMT_2level
        else:
            f, split = C.SMMU_STRTAB_BASE_CFG_FMT_linear, 0
        geo = StrtabGeometry(0, f == C.SMMU_STRTAB_BASE_CFG_FMT_2level, split, log2size)
        sb = fmt("SMMU_STRTAB_BASE")
        # Aligned to its size, and at least to what BASE.ADDR can hold.
        base = self._take(max(1 << sb.field("ADDR").address_shift, geo.table_bytes))
        self._sw_write(base, bytes(geo.table_bytes))
        self.set_reg("STRTAB_BASE", sb.encode(ADDR=sb.field("ADDR").from_address(base))[0])
        self.set_reg("STRTAB_BASE_CFG", fmt("SMMU_STRTAB_BASE_CFG").encode(
            LOG2SIZE=log2size, SPLIT=split, FMT=f)[0])
        return base

    @property
    def strtab_geometry(self) -> StrtabGeometry:
        """The stream table as the SMMU uses it: effective base, FMT and SPLIT (6.3.24/25).
        Derived again only when the registers it comes from change."""
        key = (self.regs["SMMU_STRTAB_BASE"], self.regs["SMMU_STRTAB_BASE_CFG"],
               self.features.get("SIDSIZE", 0))
        memo = getattr(self, "_strtab_memo", None)
        if memo is None or memo[0] != key:
            geo = strtab_geometry(key[0], self.field("STRTAB_BASE_CFG", "FMT"),
                                  self.field("STRTAB_BASE_CFG", "SPLIT"),
                                  self.field("STRTAB_BASE_CFG", "LOG2SIZE"), key[2])
            memo = self._strtab_memo = (key, geo)
        return memo[1]

    @property
    def strtab(self) -> dict:
        """{base, fmt, split, log2size} as the SMMU uses them: the effective base, FMT and SPLIT
        (SPLIT 0 when linear) and the effective size, min(STRTAB_BASE_CFG.LOG2SIZE,
        IDR1.SIDSIZE) (StreamIDs beyond SIDSIZE do not exist)."""
        geo = self.strtab_geometry
        return {"base": geo.base, "fmt": geo.fmt, "split": geo.split, "log2size": geo.log2size}

    def ste_addr(self, sid: int, create: bool = False) -> int:
        """PA of the STE for sid; with create, allocate its L2 array in a 2-level table."""
        geo = self.strtab_geometry
        if not geo.in_range(sid):
            raise ModelError(f"{self.name}: StreamID {sid:#x} is beyond the stream table "
                             f"(LOG2SIZE {self.field('STRTAB_BASE_CFG', 'LOG2SIZE')})")
        if not geo.two_level:
            return geo.ste_addr(sid)
        l1pa = geo.l1_addr(sid)
        l1 = self.mem.read_u64(l1pa)
        span = L1STD.field("Span").get([l1])
        if span == 0:
            if not create:
                raise ModelError(f"{self.name}: StreamID {sid:#x} has no L2 stream table "
                                 f"(L1STD at {l1pa:#x} has Span=0)")
            size = STE_SIZE << geo.split
            l2 = self._take(size)
            self._sw_write(l2, bytes(size))
            l1 = L1STD.encode(Span=geo.split + 1, L2Ptr=_L2PTR.from_address(l2))[0]
            self._sw_write(l1pa, l1.to_bytes(L1_SIZE, "little"))
        pa = geo.l2_ste_addr(l1, sid)
        if pa is None:
            raise ModelError(f"{self.name}: StreamID {sid:#x} is beyond L1STD.Span="
                             f"{L1STD.field('Span').get([l1])}")
        return pa

    def read_ste(self, sid: int) -> list[int]:
        return self.mem.read_words(self.ste_addr(sid), STE.nwords)

    def write_ste(self, sid: int, words) -> None:
        """Software writes the STE as eight 64-bit stores (dword 0 last when it makes V=1
        visible is the caller's job: see the hazard check)."""
        pa = self.ste_addr(sid, create=True)
        for i, w in enumerate(words):
            self._sw_write(pa + 8 * i, w.to_bytes(8, "little"))

    def ste_run(self, sid: int, n: int) -> int:
        """How many of the n StreamIDs from sid have their STEs side by side with sid's (in
        its L2 array, or the linear table)."""
        geo = self.strtab_geometry
        if not geo.two_level:
            return n
        return min(n, ((geo.l1_index(sid) + 1) << geo.split) - sid)

    def write_stes(self, first: int, rows) -> None:
        """Software fills the STEs of StreamIDs first.. with rows (an (n, 8) uint64 array), an
        L2 array (2-level, allocated as needed) or the linear table at a time: how a scenario
        with many streams is built. Nothing may cache them yet (a fresh stream table)."""
        n, i = len(rows), 0
        while i < n:
            k = self.ste_run(first + i, n - i)
            self._sw_write(self.ste_addr(first + i, create=True),
                           rows[i:i + k].astype("<u8").tobytes())
            i += k

    # -- translation ----------------------------------------------------------------------------
    def translate(self, sid: int, addr: int, ssid=None, *, access: str = "read",
                  priv: bool = False, trace: bool = False) -> dict:
        if access not in ("read", "write", "exec"):
            raise ModelError(f"access must be read, write or exec, not {access!r}")
        if addr < 0 or addr >> 64:
            raise ModelError(f"address {addr:#x} is not a 64-bit address")
        if sid < 0 or sid >> 32:
            raise ModelError(f"StreamID {sid:#x} does not fit in 32 bits")
        try:
            r = self.walker.translate(sid, addr, ssid, write=access == "write",
                                      instr=access == "exec", priv=priv, trace=trace)
        except ValueError as e:
            raise ModelError(str(e)) from None
        r["event"] = self.record_event(r["fault"]) if r["fault"] else None
        if trace:
            self.locate_ste_step(r.get("steps"), sid)
        return r

    def record_event(self, fault: dict):
        """Write the event record for a fault into the event queue, if the fault is one the
        configuration records (walker: fault["record"]). Returns the queue index written, or
        None (not recorded, or discarded: queue disabled, full or aborted)."""
        if not fault.get("record"):
            return None
        # 7.3.3: C_BAD_STREAMID is recorded only when SMMU_CR2.RECINVSID == 1 (its reset
        # value is UNKNOWN, 6.3.12; this model resets it to 0, as every register).
        if fault["type"] == "C_BAD_STREAMID" and not self.field("CR2", "RECINVSID"):
            return None
        return self.evtq.record(fault)
