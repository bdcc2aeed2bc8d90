"""Import a real system: a QEMU guest's memory dump plus its SMMUv3 register values.

    system, report = import_qemu("memory.elf", "regs.json")            # ELF dump-guest-memory
    system, report = import_qemu("ram.raw", "regs.json", ram_base=0x40000000)   # pmemsave

The result is an ordinary :class:`~smmudbg.model.system.System` with one SMMU named ``smmu0``:

- its memory is the dump: every segment is mapped with ``PhysMem.image`` (read-only, copied a
  page at a time on first write; nothing is read at import time but the tables the import
  checks), and the memory is strict: an address outside the dump is unbacked, so a walk that
  reaches it is an external abort (F_STE_FETCH, F_CD_FETCH, F_WALK_EABT), never zeros;
- its ID registers are exactly the given values, decoded into the SMMU's features and the
  walker's capabilities (S1P, S2P, TTF, CD2L, ASID16, VMID16, SSIDSIZE, SIDSIZE, OAS, GRAN*,
  HTTU, STALL_MODEL, TERM_MODEL, TTENDIAN, HYP, XNX, HAD, STT, ATS, ...);
- its other registers hold the given values as a snapshot (not replayed as writes: a
  snapshot's pending commands stay pending, nothing is executed), and the walker is configured
  from them as the SMMU would be: stream table (SMMU_STRTAB_BASE/_CFG), CR0.SMMUEN, GBPA.ABORT;
  CR0ACK/IRQ_CTRLACK follow CR0/IRQ_CTRL when not given;
- the streams whose STE is valid and not Config=abort are found by reading the stream table
  and declared (``topology``, ``check`` and completion list them).

REGS.json is one JSON object mapping architected register names (``SMMU_IDR0``,
``SMMU_STRTAB_BASE``, ``SMMU_EVENTQ_PROD``, or Linux/QEMU's ``SMMU_EVTQ_*``; case does not
matter) to values: integers or strings (``"0x0d40101a"``, or decimal). SMMU_IDR0, SMMU_IDR1 and
SMMU_IDR5 are required: without them the SMMU's capabilities are unknown.

It may also give the GICv3 ITS's and redistributors' registers (``GITS_CTLR``, ``GITS_TYPER``,
``GITS_BASER0``, ..., ``GICR_TYPER[0]``, ...), or they come in a second file like it (``gic=``):
then the system also has ITS ``its0`` with its tables read from the dump, the redistributors,
and QEMU virt's IORT, so ``its`` and ``msi`` work on the guest (smmudbg/importers/qemu_gic.py).

A register file of DMAR_* names is an x86-64 q35 guest's Intel VT-d unit instead: import_qemu
hands it to qemu_vtd.py (a System with VT-d unit ``dmar0``; docs/vtd.md). The dump's ELF
e_machine must agree with the register names.

Errors are :class:`QemuImportError` (a SmmuDbgError), one line naming the file and the register
or address at fault. Registers that contradict each other, or a dump that does not hold the
tables the registers point at (stream table while SMMUEN=1, a queue while it is enabled), are
errors; parts of the tables missing further down (an L2 stream table, a CD, a page-table root)
are warnings in the report, since a sparse dump of a big system may hold only what matters.
"""
from __future__ import annotations

import bisect
import json
import os

import numpy as np

from core_cy.scan import spanned_l1stds, valid_stes

from ..arch.fieldtable import fmt
from ..arch.smmuv3 import consts as C
from ..arch.smmuv3 import registers as R
from ..arch.smmuv3.events import CMD_SIZE, EVENT_SIZE
from ..arch.smmuv3.geometry import L1_SIZE, MAX_SPAN, SPLITS, STE_SIZE, strtab_geometry
from ..errors import ModelError, SmmuDbgError, brief
from ..model.smmu import IDR_OF, Smmu
from ..model.scenario import IDR_MAX
from ..model.system import CONFIG_CODES, System
from .qemu_dump import DEFAULT_RAM_BASE, MACHINES, DumpError, load_dump
from .qemu_gic import build_gic, check_gic, is_gic_key, parse_gic_regs
from .qemu_pci import PCI_FILES, load_info_pci
from ..textfile import display_name, read_text

__all__ = ["QemuImportError", "import_qemu", "load_regs", "parse_regs", "build_system",
           "SMMU_NAME", "DEFAULT_RAM_BASE"]

SMMU_NAME = "smmu0"
QEMU_VIRT_SMMU = 0x0905_0000        # hw/arm/virt.c base_memmap VIRT_SMMU
MAX_REGS_BYTES = 1 << 20
REQUIRED = ("SMMU_IDR0", "SMMU_IDR1", "SMMU_IDR5")
# Registers the programming interface cannot hold as a value (page-1 aliases are in ALIASES).
_IDRS = ("SMMU_IDR0", "SMMU_IDR1", "SMMU_IDR2", "SMMU_IDR3", "SMMU_IDR4", "SMMU_IDR5",
         "SMMU_IIDR", "SMMU_AIDR")
_CONFIG_NAMES = {v: k for k, v in CONFIG_CODES.items()}
_PAGE = 4096
# Streams an import declares at most (as a scenario may: smmudbg.model.scenario.MAX_STREAMS),
# and level-2 stream tables it reads at most, so a dump full of valid-looking entries is
# bounded work; the report says when discovery stopped early.
MAX_STREAMS = 1 << 16
MAX_L2_TABLES = 1 << 16



class QemuImportError(SmmuDbgError):
    """A memory dump or register file that cannot be imported (one line, names file and what)."""


# ---------------------------------------------------------------------------------------------
# Registers
# ---------------------------------------------------------------------------------------------
def canonical_name(key: str) -> str | None:
    """The architected name for a REGS.json key, or None if it names no register."""
    n = key.strip().upper()
    n = R.ALIASES.get(n, n)
    return n if n in R.FORMATS else None


def _no_dup_pairs(where):
    def hook(pairs):
        out = {}
        for k, v in pairs:
            if k in out:
                raise QemuImportError(f"{where}: key {brief(k)} is given twice")
            out[k] = v
        return out
    return hook


def parse_regs(obj, where: str = "regs") -> dict[str, int]:
    """Check a register map (already parsed JSON) and return {architected name: value}."""
    if not isinstance(obj, dict):
        raise QemuImportError(f"{where}: expected a JSON object mapping register names to "
                              f"values, got {_json_type(obj)}")
    out: dict[str, int] = {}
    given: dict[str, str] = {}
    for key, raw in obj.items():
        if is_gic_key(key):
            continue                # the ITS's and redistributors': parse_gic_regs
        name = canonical_name(key) if isinstance(key, str) else None
        if name is None:
            raise QemuImportError(f"{where}: unknown register {brief(key)} (expected an SMMUv3 "
                                  f"register name such as SMMU_CR0, SMMU_STRTAB_BASE, "
                                  f"SMMU_EVTQ_PROD, or a GICv3 one: GITS_CTLR, "
                                  f"GICR_TYPER[0], ...)")
        if name in given:
            raise QemuImportError(f"{where}: {brief(key)} and {brief(given[name])} are the same "
                                  f"register ({name})")
        given[name] = key
        out[name] = _value(raw, key, name, where)
    return out


def _is_vtd(obj, where: str) -> bool:
    """Whether a register file is a VT-d unit's (every key DMAR_*) rather than an SMMUv3's
    (with GITS_*/GICR_*); a file mixing the two is an error."""
    if not isinstance(obj, dict):
        return False
    dmar = [k for k in obj if isinstance(k, str) and k.strip().upper().startswith("DMAR_")]
    if dmar and len(dmar) != len(obj):
        other = next(k for k in obj if k not in dmar)
        raise QemuImportError(f"{where}: {brief(dmar[0])} is an Intel VT-d register but "
                              f"{brief(other)} is not: a register file is one guest's, "
                              f"Arm (SMMU_*, GITS_*, GICR_*) or x86 (DMAR_*)")
    return bool(dmar)


def _json_type(v) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null", float: "a number with a fraction"}.get(type(v), "a number")


def _value(raw, key, name, where) -> int:
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise QemuImportError(f"{where}: {brief(key)}: expected an integer or a hex string, got "
                              f"{_json_type(raw)}")
    if isinstance(raw, str):
        t = raw.strip()
        try:
            v = int(t, 0) if t[:2].lower() in ("0x", "0b", "0o") else int(t, 10)
        except ValueError:
            raise QemuImportError(f"{where}: {brief(key)}: {brief(raw)} is not a number (write "
                                  f"hex as \"0x...\")") from None
    else:
        v = raw
    bits = 8 * fmt(name).size
    if v < 0:
        raise QemuImportError(f"{where}: {brief(key)}: {brief(raw)} is negative")
    if v >> bits:
        raise QemuImportError(f"{where}: {brief(key)}: {brief(v)} does not fit in the {bits}-bit "
                              f"register {name}")
    return v


def load_regs(path) -> dict[str, int]:
    """Read and check a REGS.json file (its SMMU registers)."""
    obj, name = load_regs_json(path)
    return parse_regs(obj, name)


def load_regs_json(path):
    """A register file as parsed JSON (keys checked for duplicates), and its display name."""
    text = read_text(path, QemuImportError, "register file", MAX_REGS_BYTES)
    name = display_name(os.fspath(path))
    if not text.strip():
        raise QemuImportError(f"{name}: file is empty (expected a JSON object)")
    try:
        obj = json.loads(text, object_pairs_hook=_no_dup_pairs(name))
    except ValueError as e:
        if isinstance(e, QemuImportError):
            raise
        msg = str(e).split("\n")[0]
        raise QemuImportError(f"{name}: not valid JSON: {msg}") from None
    except RecursionError:
        raise QemuImportError(f"{name}: not valid JSON: nested too deeply") from None
    return obj, name


def _f(regs: dict, reg: str, field: str) -> int:
    return fmt(reg).field(field).get([regs.get(reg, 0)])


def features_of(regs: dict) -> dict[str, int]:
    """Every IDR0/1/3/5 field, by the (upper-case) name the model and the walker use."""
    feats = {}
    for key, (reg, f) in IDR_OF.items():
        feats[key] = f.get([regs.get(reg, 0)])
    return feats


def check_regs(regs: dict, where: str) -> list[str]:
    """Registers that contradict each other or the ID registers: raise. Returns warnings for
    values the architecture defines a behaviour for but a driver would not program."""
    warnings = []
    for r in REQUIRED:
        if r not in regs:
            raise QemuImportError(f"{where}: {r} is missing (the SMMU's capabilities are read "
                                  f"from SMMU_IDR0, SMMU_IDR1 and SMMU_IDR5)")
    for key, mx in IDR_MAX.items():
        reg, f = IDR_OF[key]
        if reg in regs and f.get([regs[reg]]) > mx:
            raise QemuImportError(f"{where}: {reg}.{f.name}={f.get([regs[reg]])} exceeds the "
                                  f"architectural maximum {mx} (IHI 0070 6.3.2)")
    cr0 = regs.get("SMMU_CR0", 0)
    if "SMMU_CR0ACK" in regs and regs["SMMU_CR0ACK"] != cr0:
        raise QemuImportError(f"{where}: SMMU_CR0ACK {regs['SMMU_CR0ACK']:#x} != SMMU_CR0 "
                              f"{cr0:#x} (an update was in flight; snapshot the registers "
                              f"again once CR0ACK matches)")
    if "SMMU_IRQ_CTRLACK" in regs and regs["SMMU_IRQ_CTRLACK"] != regs.get("SMMU_IRQ_CTRL", 0):
        raise QemuImportError(f"{where}: SMMU_IRQ_CTRLACK {regs['SMMU_IRQ_CTRLACK']:#x} != "
                              f"SMMU_IRQ_CTRL {regs.get('SMMU_IRQ_CTRL', 0):#x} (an update "
                              f"was in flight)")
    # Stream table.
    smmuen = _f(regs, "SMMU_CR0", "SMMUEN")
    has_st = "SMMU_STRTAB_BASE" in regs and "SMMU_STRTAB_BASE_CFG" in regs
    if smmuen and not has_st:
        miss = "SMMU_STRTAB_BASE" if "SMMU_STRTAB_BASE" not in regs else "SMMU_STRTAB_BASE_CFG"
        raise QemuImportError(f"{where}: SMMU_CR0.SMMUEN=1 but {miss} is not given (no "
                              f"stream table)")
    if "SMMU_STRTAB_BASE_CFG" in regs:
        stfmt = _f(regs, "SMMU_STRTAB_BASE_CFG", "FMT")
        level = _f(regs, "SMMU_IDR0", "ST_LEVEL")
        log2size = _f(regs, "SMMU_STRTAB_BASE_CFG", "LOG2SIZE")
        split = _f(regs, "SMMU_STRTAB_BASE_CFG", "SPLIT")
        sidsize = _f(regs, "SMMU_IDR1", "SIDSIZE")
        two_level = stfmt == C.SMMU_STRTAB_BASE_CFG_FMT_2level
        if two_level and level == C.SMMU_IDR0_ST_LEVEL_linear:
            raise QemuImportError(f"{where}: SMMU_STRTAB_BASE_CFG.FMT=1 (2-level) but "
                                  f"SMMU_IDR0.ST_LEVEL=0 (linear stream tables only)")
        if fmt("SMMU_STRTAB_BASE_CFG").field("FMT").is_reserved(stfmt):
            warnings.append(f"SMMU_STRTAB_BASE_CFG.FMT={stfmt} is reserved: the SMMU treats "
                            f"it as linear")
        if log2size > sidsize:
            raise QemuImportError(f"{where}: SMMU_STRTAB_BASE_CFG.LOG2SIZE={log2size} exceeds "
                                  f"SMMU_IDR1.SIDSIZE={sidsize}")
        if two_level and split not in SPLITS:
            warnings.append(f"SMMU_STRTAB_BASE_CFG.SPLIT={split} is reserved: the SMMU uses "
                            f"{SPLITS[0]}")
    # Queues.
    for q, en, cap in (("CMDQ", "CMDQEN", "CMDQS"), ("EVENTQ", "EVENTQEN", "EVENTQS")):
        base = f"SMMU_{q}_BASE"
        enabled = _f(regs, "SMMU_CR0", en)
        if enabled and base not in regs:
            raise QemuImportError(f"{where}: SMMU_CR0.{en}=1 but {base} is not given")
        if base not in regs:
            continue
        qs = _f(regs, base, "LOG2SIZE")
        mx = _f(regs, "SMMU_IDR1", cap)
        if qs > mx:
            raise QemuImportError(f"{where}: {base}.LOG2SIZE={qs} exceeds SMMU_IDR1.{cap}={mx}")
        for ptr, index in ((f"SMMU_{q}_PROD", "WR"), (f"SMMU_{q}_CONS", "RD")):
            if ptr not in regs:
                continue
            wr = _f(regs, ptr, index)
            if wr >> (qs + 1):
                raise QemuImportError(f"{where}: {ptr} {regs[ptr]:#x} has index bits above the "
                                      f"wrap bit (bit {qs}) for {base}.LOG2SIZE={qs}")
    return warnings


# ---------------------------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------------------------
class Coverage:
    """Which guest-physical ranges the dump holds (its segments)."""

    def __init__(self, segments, name: str):
        self.ranges = [(s.pa, s.end) for s in segments]
        self.starts = [a for a, _ in self.ranges]
        self.name = name

    def contains(self, pa: int, size: int = 1) -> bool:
        i = bisect.bisect_right(self.starts, pa) - 1
        while i >= 0 and i < len(self.ranges):
            lo, hi = self.ranges[i]
            if not lo <= pa < hi:
                return False
            if pa + size <= hi:
                return True
            size -= hi - pa
            pa = hi
            i += 1
        return False

    def missing(self, pa: int, size: int) -> int | None:
        """The first address of [pa, pa+size) the dump does not hold, or None."""
        end = pa + size
        while pa < end:
            i = bisect.bisect_right(self.starts, pa) - 1
            if i < 0 or pa >= self.ranges[i][1]:
                return pa
            pa = self.ranges[i][1]
        return None

    def overlaps(self, lo: int, hi: int):
        """The parts of [lo, hi) the dump holds, as (start, end) pairs in address order."""
        i = max(0, bisect.bisect_right(self.starts, lo) - 1)
        while i < len(self.ranges) and self.ranges[i][0] < hi:
            a, b = self.ranges[i]
            if b > lo:
                yield max(a, lo), min(b, hi)
            i += 1

    def describe(self, limit: int = 6) -> str:
        parts = [f"{lo:#x}-{hi - 1:#x}" for lo, hi in self.ranges[:limit]]
        if len(self.ranges) > limit:
            parts.append(f"... {len(self.ranges)} in all")
        return ", ".join(parts)

    def not_in_dump(self, what: str, addr: int) -> QemuImportError:
        return QemuImportError(f"{what} {addr:#x} is not in the dump {self.name} "
                               f"(segments: {self.describe()})")


# ---------------------------------------------------------------------------------------------
# The system
# ---------------------------------------------------------------------------------------------
def import_qemu(memory, regs, ram_base: int | None = None, name: str | None = None,
                pci=None, gic=None):
    """Load MEMORY (ELF core or raw image, optionally xz) and REGS (a path or a dict of register
    values) into a System. Returns (system, report). pci: QEMU `info pci` text naming the
    devices (a path; default: info-pci.txt next to REGS when there is one). gic: a second
    register file (path or dict) with GITS_*/GICR_* registers, if REGS does not hold them."""
    mem_name = display_name(os.fspath(memory))
    if isinstance(regs, dict):
        obj, regs_name = regs, "regs"
    else:
        obj, regs_name = load_regs_json(regs)
    if _is_vtd(obj, regs_name):
        if gic is not None:
            raise QemuImportError(f"{regs_name}: a VT-d (DMAR_*) register file goes without "
                                  f"--gic (the GICv3 ITS is Arm's)")
        from .qemu_vtd import import_vtd
        return import_vtd(memory, obj, regs_name, ram_base, name, pci,
                          None if isinstance(regs, dict) else regs)
    values = parse_regs(obj, regs_name)
    gic_regs = parse_gic_regs(obj, regs_name) if isinstance(obj, dict) else None
    if gic is not None:
        gobj, gname = (gic, "gic") if isinstance(gic, dict) else load_regs_json(gic)
        if not isinstance(gobj, dict):
            raise QemuImportError(f"{gname}: expected a JSON object mapping GITS_*/GICR_* "
                                  f"register names to values")
        other = [k for k in gobj if not is_gic_key(k)]
        if other:
            raise QemuImportError(f"{gname}: {brief(other[0])} is not a GITS_* or GICR_* "
                                  f"register (SMMU registers go in the register file)")
        more = parse_gic_regs(gobj, gname)
        for r in more["its"]:
            if r in gic_regs["its"]:
                raise QemuImportError(f"{gname}: {r} is also given in {regs_name}")
        for n, rr in more["redists"].items():
            for r in rr:
                if r in gic_regs["redists"].get(n, {}):
                    raise QemuImportError(f"{gname}: {r}[{n}] is also given in {regs_name}")
        gic_regs["its"].update(more["its"])
        for n, rr in more["redists"].items():
            gic_regs["redists"].setdefault(n, {}).update(rr)
        gic_regs["redists"] = dict(sorted(gic_regs["redists"].items()))
        regs_name = f"{regs_name} + {gname}"
    if not isinstance(regs, dict):
        if pci is None:
            here = os.path.dirname(os.path.abspath(os.fspath(regs)))
            pci = next((os.path.join(here, f) for f in PCI_FILES
                        if os.path.isfile(os.path.join(here, f))), None)
    # Registers first: a bad register file fails before a large dump is touched.
    warnings = check_regs(values, regs_name)
    warnings += check_gic(gic_regs, regs_name)
    names = {}
    if pci is not None:
        names, more = load_info_pci(os.fspath(pci))
        warnings += more
    try:
        segments, machine = load_dump(memory, ram_base, machines=tuple(MACHINES.values()))
    except DumpError as e:
        raise QemuImportError(str(e)) from None
    if machine == "x86_64":
        raise QemuImportError(f"{mem_name}: an x86-64 dump with SMMUv3 registers in "
                              f"{regs_name}: a q35 guest's IOMMU is VT-d (DMAR_* registers)")
    system, report = build_system(segments, values, mem_name, regs_name, warnings, name, names,
                                  gic_regs)
    report["pci"] = os.fspath(pci) if pci is not None else None
    return system, report


def build_system(segments, values: dict, mem_name: str, regs_name: str,
                 warnings: list[str] | None = None, name: str | None = None,
                 device_names: dict | None = None, gic: dict | None = None):
    """device_names: {StreamID: name} (from `info pci`: StreamID = RID on the virt board).
    gic: the GITS_*/GICR_* registers (parse_gic_regs), checked with check_gic."""
    warnings = list(warnings or [])
    device_names = device_names or {}
    cov = Coverage(segments, mem_name)
    sysname = name or f"qemu:{os.path.basename(mem_name)}"
    system = System.empty(sysname, f"imported from {mem_name} and {regs_name}", strict=True)
    for s in segments:
        if s.pa & (_PAGE - 1):
            raise QemuImportError(f"{mem_name}: segment at PA {s.pa:#x} is not 4 KiB aligned")
        try:
            system.mem.image(s.pa, s.data)
        except ValueError as e:
            raise QemuImportError(f"{mem_name}: segment at PA {s.pa:#x}: {e}") from None

    feats = features_of(values)
    try:
        smmu = Smmu(SMMU_NAME, system.mem, feats)
    except (ModelError, ValueError) as e:
        raise QemuImportError(f"{regs_name}: ID registers: {e}") from None
    # The snapshot's values, as read (no write side effects: nothing is replayed).
    for reg, v in values.items():
        smmu.regs[reg] = v
    if "SMMU_CR0ACK" not in values:
        smmu.regs["SMMU_CR0ACK"] = smmu.regs["SMMU_CR0"]
    if "SMMU_IRQ_CTRLACK" not in values:
        smmu.regs["SMMU_IRQ_CTRLACK"] = smmu.regs["SMMU_IRQ_CTRL"]
    # What the snapshot holds: every other register is "not provided", never shown as 0.
    # The ACKs follow the register they acknowledge when that one was given.
    provided = set(values)
    provided |= {ack for ack, reg in (("SMMU_CR0ACK", "SMMU_CR0"),
                                      ("SMMU_IRQ_CTRLACK", "SMMU_IRQ_CTRL")) if reg in values}
    smmu.regs_provided = frozenset(provided)
    st = smmu.strtab
    two_level = st["fmt"] == C.SMMU_STRTAB_BASE_CFG_FMT_2level
    smmu.walker.configure(strtab_base=st["base"], strtab_fmt=st["fmt"],
                          strtab_split=st["split"], strtab_log2size=st["log2size"],
                          smmuen=bool(smmu.field("CR0", "SMMUEN")),
                          gbpa_abort=bool(smmu.field("GBPA", "ABORT")))
    system.add_smmu(smmu)

    _check_coverage(smmu, values, cov, warnings)
    streams = discover_streams(smmu, cov, warnings) if "SMMU_STRTAB_BASE" in values else []
    for sid, config in streams:
        system.add_stream(SMMU_NAME, sid, config, device_names.get(sid))
    _check_stream_coverage(smmu, streams, cov, warnings)
    its_report = None
    if gic is not None:
        try:
            its_report, more = build_gic(system, gic, cov, SMMU_NAME, QEMU_VIRT_SMMU)
        except QemuImportError:
            raise
        except SmmuDbgError as e:
            raise QemuImportError(f"{regs_name}: {e}") from None
        warnings += more

    report = {
        "system": sysname, "smmu": SMMU_NAME, "memory": mem_name, "regs": regs_name,
        "segments": [{"pa": s.pa, "size": s.size} for s in segments],
        "bytes": sum(s.size for s in segments),
        "registers": len(values),
        "smmuen": bool(smmu.field("CR0", "SMMUEN")),
        "strtab": {"base": st["base"], "format": "2lvl" if two_level else "linear",
                   "log2size": st["log2size"], "split": st["split"] if two_level else None},
        "streams": [{"sid": sid, "config": c, "device": device_names.get(sid)}
                    for sid, c in streams],
        "pending_commands": smmu.cmdq.ring.count(smmu.regs["SMMU_CMDQ_PROD"],
                                                 smmu.regs["SMMU_CMDQ_CONS"])
        if "SMMU_CMDQ_BASE" in values else 0,
        "gerror": smmu.gerror_active(),
        "its": its_report,
        "warnings": warnings,
    }
    return system, report


def _strtab_geometry(smmu):
    """The stream table as the SMMU uses it (effective base, SPLIT and size)."""
    st = smmu.strtab
    return strtab_geometry(smmu.reg("STRTAB_BASE"), st["fmt"], st["split"], st["log2size"],
                           smmu.features.get("SIDSIZE", 0))


def _check_coverage(smmu, values, cov: Coverage, warnings: list[str]):
    """The structures the registers point at and the SMMU is using must be in the dump."""
    if "SMMU_STRTAB_BASE" in values:
        geo = _strtab_geometry(smmu)
        base, size = geo.base, geo.table_bytes
        raw = fmt("SMMU_STRTAB_BASE").field("ADDR").address([values["SMMU_STRTAB_BASE"]])
        if raw != base:
            warnings.append(f"SMMU_STRTAB_BASE {raw:#x} is not aligned to its table size: the "
                            f"SMMU uses {base:#x}")
        what = "level-1 stream table" if geo.two_level else "stream table"
        if not cov.contains(base):
            if smmu.field("CR0", "SMMUEN"):
                raise cov.not_in_dump("SMMU_STRTAB_BASE", base)
            warnings.append(f"SMMU_STRTAB_BASE {base:#x} is not in the dump (SMMUEN=0)")
        else:
            gap = cov.missing(base, size)
            if gap is not None:
                warnings.append(f"the {what} {base:#x}-{base + size - 1:#x} is only partly in "
                                f"the dump (first missing byte {gap:#x})")
    for q, en, esize in (("CMDQ", "CMDQEN", CMD_SIZE), ("EVENTQ", "EVENTQEN", EVENT_SIZE)):
        reg = f"SMMU_{q}_BASE"
        if reg not in values:
            continue
        qs = smmu.field(reg, "LOG2SIZE")
        addr = fmt(reg).field("ADDR")
        # The queue is aligned to its size, and at least to what BASE.ADDR can hold.
        size = max(1 << addr.address_shift, esize << qs)
        base = addr.address([smmu.reg(reg)]) & ~(size - 1)
        if not cov.contains(base):
            if smmu.field("CR0", en):
                raise cov.not_in_dump(reg, base)
            continue
        gap = cov.missing(base, size)
        if gap is not None:
            warnings.append(f"the {'command' if q == 'CMDQ' else 'event'} queue {base:#x}-"
                            f"{base + size - 1:#x} is only partly in the dump (first missing "
                            f"byte {gap:#x})")


def _entries_in_dump(cov: Coverage, base: int, count: int, stride: int):
    """The runs of whole entries of a table of `count` entries of `stride` bytes at base that
    the dump holds, as (first index, number) pairs: the table is read only there, so the work
    is bounded by the dump's size, not by the table's."""
    for lo, hi in cov.overlaps(base, base + count * stride):
        first = -(-(lo - base) // stride)
        last = min(count, (hi - base) // stride)
        if first < last:
            yield first, last - first


def _valid_stes(mem, cov: Coverage, base: int, count: int):
    """(StreamID offsets, STE.Config values) of the V=1 STEs of a linear table or an L2 array,
    found by the core's scan (core_cy.scan.valid_stes) where the dump holds the table; and the
    number of STEs the dump lacks."""
    sids, cfgs, found = [], [], 0
    for first, n in _entries_in_dump(cov, base, count, STE_SIZE):
        i, c = valid_stes(mem, base + first * STE_SIZE, n, configs=True)
        sids.append(i + np.uint64(first))
        cfgs.append(c)
        found += n
    if not sids:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint8), count
    return np.concatenate(sids), np.concatenate(cfgs), count - found


def _ste_rows(sids, cfgs, out):
    """Add (sid, config) of the valid, non-abort STEs (sids and their STE.Config values),
    vectorised: a dump may hold millions of them. Stops adding past MAX_STREAMS (the caller
    warns)."""
    abort = cfgs == C.STE_Config_abort
    out["abort"] += int(np.count_nonzero(abort))
    keep = np.nonzero(~abort)[0]
    room = MAX_STREAMS + 1 - len(out["streams"])
    for sid, c in zip(sids[keep[:max(0, room)]].tolist(), cfgs[keep[:max(0, room)]].tolist()):
        out["streams"].append((sid, _CONFIG_NAMES.get(c, f"reserved{c}")))


_WARN_EACH = 8     # warnings of one kind listed one by one before they are counted


def _warn_some(warnings, counts, kind, text):
    counts[kind] = counts.get(kind, 0) + 1
    if counts[kind] <= _WARN_EACH:
        warnings.append(text)


def _more(warnings, counts, kinds: dict, tail: str = ""):
    """One warning counting the warnings of each kind that _warn_some left out."""
    for kind, what in kinds.items():
        extra = counts.get(kind, 0) - _WARN_EACH
        if extra > 0:
            warnings.append(f"... and {extra} more {what}" + (f" {tail}" if tail else ""))


def discover_streams(smmu, cov: Coverage, warnings: list[str]) -> list[tuple[int, str]]:
    """(StreamID, config name) of every valid STE that is not Config=abort, read from the
    stream table in the dump. Missing parts of the table are reported in warnings."""
    geo = _strtab_geometry(smmu)
    base = geo.base
    if not cov.contains(base):
        return []
    mem = smmu.mem
    out = {"streams": [], "abort": 0}
    if not geo.two_level:
        sids, cfgs, missing = _valid_stes(mem, cov, base, 1 << geo.log2size)
        _ste_rows(sids, cfgs, out)
        if missing:
            warnings.append(f"{missing} STEs of the linear stream table are not in the dump")
    else:
        parts, found = [], 0
        for first, n in _entries_in_dump(cov, base, geo.n_l1, L1_SIZE):
            i, d, sp = spanned_l1stds(mem, base + first * L1_SIZE, n)
            parts.append((i + np.uint64(first), d, sp))
            found += n
        missing = geo.n_l1 - found
        if missing:
            warnings.append(f"{missing} L1STDs of the level-1 stream table at {base:#x} are not "
                            f"in the dump")
        l1i = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.uint64)
        l1v = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.uint64)
        spans = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.uint8)
        # Every L1STD with Span != 0 at once: a garbage level-1 table may hold millions.
        usable = np.isin(spans, [v for v in range(1, MAX_SPAN + 1) if geo.span_ok(v)])
        reserved = np.nonzero(~usable)[0]
        for k in reserved[:_WARN_EACH].tolist():
            i = int(l1i[k])
            _warn_some(warnings, out, "span", f"L1STD #{i} at {geo.l1_entry_addr(i):#x} has "
                                              f"reserved Span={int(spans[k])}")
        out["span"] = len(reserved)
        keep = np.nonzero(usable)[0]
        if len(keep) > MAX_L2_TABLES:
            warnings.append(f"{len(keep)} L1STDs point at level-2 tables: only the first "
                            f"{MAX_L2_TABLES} are read")
            keep = keep[:MAX_L2_TABLES]
        for i, d in zip(l1i[keep].tolist(), l1v[keep].tolist()):
            if len(out["streams"]) > MAX_STREAMS:
                warnings.append(f"stream discovery stopped at L1STD #{i}: more than "
                                f"{MAX_STREAMS} streams")
                break
            in_l2 = geo.l2_sids(i, d)
            first_sid, n = in_l2.start, len(in_l2)
            l2 = geo.l2_ste_addr(d, first_sid)
            if not cov.contains(l2, STE_SIZE * n):
                _warn_some(warnings, out, "l2", f"L2 stream table of L1STD #{i} (StreamIDs "
                                                f"{first_sid:#x}-{first_sid + n - 1:#x}) at "
                                                f"{l2:#x} is not (wholly) in the dump")
            sids, cfgs, _ = _valid_stes(mem, cov, l2, n)
            _ste_rows(sids + np.uint64(first_sid), cfgs, out)
        _more(warnings, out, {"span": "L1STDs with a reserved Span",
                              "l2": "L2 stream tables not (wholly) in the dump"})
    if len(out["streams"]) > MAX_STREAMS:
        warnings.append(f"more than {MAX_STREAMS} streams found; only the first "
                        f"{MAX_STREAMS} are declared")
        out["streams"].sort()
        del out["streams"][MAX_STREAMS:]
    out["streams"].sort()
    return out["streams"]


def _check_stream_coverage(smmu, streams, cov: Coverage, warnings: list[str]):
    """Warn about the CD tables and page-table roots of the found streams that the dump lacks,
    as the walker finds them (Walker.stage_config: caches bypassed, nothing changed). The
    stage-1 pointers of nested streams are IPAs and are not checked here."""
    seen = set()
    counts: dict = {}
    s1_only = _CONFIG_NAMES[C.STE_Config_s1_trans]
    for sid, config in streams:
        try:
            r = smmu.stage_config(sid)
        except ModelError:
            continue
        s2 = r["stage2"]
        if s2 is not None:
            ttb = s2["ttb"]
            if ("s2", ttb) not in seen and not cov.contains(ttb):
                _warn_some(warnings, counts, "s2", f"StreamID {sid:#x}: stage-2 table {ttb:#x} "
                                                   f"(STE.S2TTB) is not in the dump")
            seen.add(("s2", ttb))
        if config != s1_only:
            continue
        f = r["fault"]
        if f is not None and f["type"] == "F_CD_FETCH":
            at = f["fetch_addr"]
            if ("cd", at) not in seen:
                _warn_some(warnings, counts, "cd", f"StreamID {sid:#x}: CD table entry {at:#x} "
                                                   f"is not in the dump")
            seen.add(("cd", at))
            continue
        if r["stage1"] is None:
            continue
        for t in ("ttb0", "ttb1"):
            tt = r["stage1"][t]
            if not tt["enabled"]:
                continue
            ttb = tt["ttb"]
            if ("tt", ttb) not in seen and not cov.contains(ttb):
                _warn_some(warnings, counts, "tt", f"StreamID {sid:#x}: CD.{t.upper()} {ttb:#x} "
                                                   f"is not in the dump")
            seen.add(("tt", ttb))
    _more(warnings, counts, {"s2": "stage-2 tables", "cd": "CD tables",
                             "tt": "stage-1 tables"}, "not in the dump")
