"""One SMMUv3 instance: its registers, stream table, queues in modeled memory, and the walker.

The walker (core_cy.walk.Walker) does translation and holds the caches; this class is the
programming interface around it, as software and the scenario builder see it.
"""
from __future__ import annotations

from core_cy.ptbuild import BumpAllocator, BuildError
from core_cy.walk import Walker

from ..arch.fieldtable import fmt
from ..arch.smmuv3 import registers as R
from ..errors import ModelError

STE = fmt("STE")
CD = fmt("CD")
L1STD = fmt("L1STD")
L1CD = fmt("L1CD")

# Capabilities the scenario may set, by IDR field name, and the register that holds each.
IDR_OF = {}
for _reg in ("SMMU_IDR0", "SMMU_IDR1", "SMMU_IDR3", "SMMU_IDR5"):
    for _f in fmt(_reg).fields:
        IDR_OF.setdefault(_f.name.upper(), (_reg, _f))

# Defaults: a v3.1-style SMMU with both stages, AArch64 tables, little-endian.
DEFAULT_FEATURES = {"S1P": 1, "S2P": 1, "TTF": 2, "TTENDIAN": 2, "COHACC": 1, "ASID16": 1,
                    "VMID16": 1, "CD2L": 1, "ST_LEVEL": 1, "SIDSIZE": 16, "SSIDSIZE": 8,
                    "CMDQS": 19, "EVENTQS": 19, "OAS": 5, "GRAN4K": 1, "GRAN16K": 1,
                    "GRAN64K": 1, "RIL": 1, "STALL_MODEL": 1}

# Names the walker takes (IDR field names, normalised to upper case).
WALKER_CAPS = ("S1P", "S2P", "CD2L", "VMID16", "ASID16", "HYP", "HAD", "XNX", "STT", "ATS",
               "GRAN4K", "GRAN16K", "GRAN64K", "TTF", "TTENDIAN", "HTTU", "STALL_MODEL",
               "TERM_MODEL", "SSIDSIZE", "SIDSIZE", "OAS")


def _canon(name: str) -> str:
    """Accept SMMU_IDR0, IDR0, smmu_evtq_base...: return the architected register name."""
    n = name.upper()
    if not n.startswith("SMMU_"):
        n = "SMMU_" + n
    return R.ALIASES.get(n, n)


class Smmu:
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
        self.walker = Walker(mem, {k: feats.get(k, 0) for k in WALKER_CAPS})
        self.alloc = BumpAllocator(pool["base"], pool["size"]) if pool else None
        self.l2_span = {}

    # -- registers ------------------------------------------------------------------------------
    def reg(self, name: str) -> int:
        n = _canon(name)
        if n not in self.regs:
            raise ModelError(f"{self.name} has no register {name!r}")
        return self.regs[n]

    def field(self, reg: str, field: str) -> int:
        return fmt(_canon(reg)).field(field).get([self.reg(reg)])

    def set_reg(self, name: str, value: int) -> None:
        """A register write by software, with its side effects."""
        n = _canon(name)
        if n not in self.regs:
            raise ModelError(f"{self.name} has no register {name!r}")
        if n.startswith("SMMU_IDR") or n in ("SMMU_IIDR", "SMMU_AIDR", "SMMU_CR0ACK",
                                             "SMMU_IRQ_CTRLACK", "SMMU_GERROR"):
            raise ModelError(f"{n} is read-only")
        size = fmt(n).size
        if value < 0 or value >> (8 * size):
            raise ModelError(f"{n}: {value:#x} does not fit in {8 * size} bits")
        self.regs[n] = value
        self._apply(n)

    def _apply(self, n: str) -> None:
        if n == "SMMU_CR0":
            self.regs["SMMU_CR0ACK"] = self.regs["SMMU_CR0"]
            self.walker.configure(smmuen=bool(self.field("CR0", "SMMUEN")))
        elif n == "SMMU_IRQ_CTRL":
            self.regs["SMMU_IRQ_CTRLACK"] = self.regs["SMMU_IRQ_CTRL"]
        elif n == "SMMU_GBPA":
            # GBPA takes effect only when written with Update=1; the SMMU clears Update.
            v = self.regs["SMMU_GBPA"]
            upd = fmt("SMMU_GBPA").field("Update")
            if upd.get([v]):
                self.regs["SMMU_GBPA"] = v & ~(upd.mask << upd.lo)
                self.walker.configure(gbpa_abort=bool(self.field("GBPA", "ABORT")))
        elif n in ("SMMU_STRTAB_BASE", "SMMU_STRTAB_BASE_CFG"):
            base = self.reg("STRTAB_BASE") & (((1 << 56) - 1) & ~0x3F)
            self.walker.configure(strtab_base=base,
                                  strtab_fmt=self.field("STRTAB_BASE_CFG", "FMT"),
                                  strtab_split=self.field("STRTAB_BASE_CFG", "SPLIT"),
                                  strtab_log2size=self.field("STRTAB_BASE_CFG", "LOG2SIZE"))

    # -- stream table ---------------------------------------------------------------------------
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
            if split not in (6, 8, 10):
                raise ModelError(f"{self.name}: SPLIT {split} is not 6, 8 or 10")
            n_l1 = 1 << max(0, log2size - split)
            base = self._take(max(64, n_l1 * 8))
            self.mem.write(base, bytes(n_l1 * 8))
            f = 1
        else:
            base = self._take(64 << log2size)
            self.mem.write(base, bytes(64 << log2size))
            f, split = 0, 0
        self.set_reg("STRTAB_BASE", base)
        self.set_reg("STRTAB_BASE_CFG", fmt("SMMU_STRTAB_BASE_CFG").encode(
            LOG2SIZE=log2size, SPLIT=split, FMT=f)[0])
        return base

    @property
    def strtab(self) -> dict:
        return {"base": self.reg("STRTAB_BASE") & (((1 << 56) - 1) & ~0x3F),
                "fmt": self.field("STRTAB_BASE_CFG", "FMT"),
                "split": self.field("STRTAB_BASE_CFG", "SPLIT"),
                "log2size": self.field("STRTAB_BASE_CFG", "LOG2SIZE")}

    def ste_addr(self, sid: int, create: bool = False) -> int:
        """PA of the STE for sid; with create, allocate its L2 array in a 2-level table."""
        st = self.strtab
        if sid < 0 or sid >> min(st["log2size"], self.features.get("SIDSIZE", 0)):
            raise ModelError(f"{self.name}: StreamID {sid:#x} is beyond the stream table "
                             f"(LOG2SIZE {st['log2size']})")
        if st["fmt"] == 0:
            return st["base"] + sid * 64
        l1pa = st["base"] + (sid >> st["split"]) * 8
        l1 = self.mem.read_u64(l1pa)
        span = L1STD.field("Span").get([l1])
        if span == 0:
            if not create:
                raise ModelError(f"{self.name}: StreamID {sid:#x} has no L2 stream table "
                                 f"(L1STD at {l1pa:#x} has Span=0)")
            l2 = self._take(64 << st["split"])
            self.mem.write(l2, bytes(64 << st["split"]))
            l1 = L1STD.encode(Span=st["split"] + 1, L2Ptr=l2 >> 6)[0]
            self.mem.write_u64(l1pa, l1)
            span = st["split"] + 1
        idx = sid & ((1 << st["split"]) - 1)
        if idx >> (span - 1):
            raise ModelError(f"{self.name}: StreamID {sid:#x} is beyond L1STD.Span={span}")
        return (L1STD.field("L2Ptr").get([l1]) << 6) + idx * 64

    def read_ste(self, sid: int) -> list[int]:
        return self.mem.read_words(self.ste_addr(sid), 8)

    def write_ste(self, sid: int, words) -> None:
        """Software writes the STE as eight 64-bit stores (dword 0 last when it makes V=1
        visible is the caller's job: see the hazard check)."""
        pa = self.ste_addr(sid, create=True)
        for i, w in enumerate(words):
            self.mem.write_u64(pa + 8 * i, w)

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
        return r

    def record_event(self, fault: dict):
        """Write the event record for a fault into the event queue (if it is recorded).
        Returns the queue index written, or None."""
        hook = getattr(self, "_evtq_write", None)
        if hook is None or not fault.get("record"):
            return None
        return hook(fault)
