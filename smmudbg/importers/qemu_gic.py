"""The GICv3 part of `import qemu`: the ITS and the redistributors of a real guest.

The register file (REGS.json, or a second file like it) may give, beside the SMMU's:

- ITS registers by their architected names: GITS_CTLR, GITS_IIDR, GITS_TYPER, GITS_CBASER,
  GITS_CWRITER, GITS_CREADR, GITS_BASER0..GITS_BASER7 (GITS_TRANSLATER is write-only);
- redistributor registers, one set per redistributor: GICR_CTLR[n], GICR_IIDR[n],
  GICR_TYPER[n], GICR_WAKER[n], GICR_PROPBASER[n], GICR_PENDBASER[n], n being the frame's index
  (QEMU virt: RD_base of frame n at 0x080a0000 + n * 0x20000); GICR_X alone is GICR_X[0].

With any GITS_* register, the import builds ITS `its0` at the board's ITS base (QEMU virt:
0x08080000, GITS_TRANSLATER at 0x08090040) over the dump: its registers are the snapshot's values
(nothing is replayed), its device table (flat or two-level), ITTs and collection table are read
from the dump in QEMU's entry layout (smmudbg.arch.gicv3.layouts "qemu": DTE 8 bytes, ITE 12
bytes, CTE 8 bytes, the same in QEMU 7.0 to 10.x), so `its` and `msi` work on the real guest.
GITS_CTLR and GITS_TYPER are required (whether the ITS translates, and its DeviceID/EventID
bits and ITE size). The redistributors are the GICR frames given (numbered by
GICR_TYPER.Processor_Number, the RDbase of a collection since GITS_TYPER.PTA = 0); without
any, as many as the collection table targets. The IORT is QEMU virt's (the dump holds none):
RID = StreamID = DeviceID, one ITS group.

Registers not given are "not provided" in `its`, never shown as 0. Errors are one line naming
the file and the register.
"""
from __future__ import annotations

import re

from ..arch.fieldtable import fmt
from ..arch.gicv3 import consts as G
from ..arch.gicv3.layouts import LAYOUTS
from ..arch.gicv3.registers import (BASER_TYPES, GICR_OFFSETS, GICR_STRIDE, OFFSETS,
                                     REGISTER_FORMAT)
from ..errors import ModelError, SmmuDbgError, brief
from ..model.iort import IdMapping, Iort, ItsGroup, RootComplex, SmmuV3
from ..model.its import Its, ItsError, ItsFeatures
from ..model.platform import Platform

__all__ = ["ITS_NAME", "QEMU_VIRT_ITS", "QEMU_VIRT_GICR", "is_gic_key", "parse_gic_regs",
           "check_gic", "build_gic"]

ITS_NAME = "its0"
QEMU_VIRT_ITS = 0x0808_0000       # hw/arm/virt.c base_memmap VIRT_GIC_ITS
QEMU_VIRT_GICR = 0x080A_0000      # VIRT_GIC_REDIST
LAYOUT = "qemu"
REQUIRED = ("GITS_CTLR", "GITS_TYPER")
MAX_FRAMES = 1 << 16              # Processor_Number is 16 bits
ITS_REGS = tuple(n for n in OFFSETS if n != "GITS_TRANSLATER")
_GICR_KEY = re.compile(r"(GICR_[A-Z]+)(?:\[(\d+)\])?")
_BASER = fmt("GITS_BASER", "gicv3")
_TYPER = fmt("GITS_TYPER", "gicv3")
_CBASER = fmt("GITS_CBASER", "gicv3")
_GICR_TYPER = fmt("GICR_TYPER", "gicv3")
_ENTRY = {"Devices": "DTE", "Collections": "CTE"}


def is_gic_key(key) -> bool:
    return isinstance(key, str) and key.strip().upper().startswith(("GITS_", "GICR_"))


def _error(where, text):
    from .qemu import QemuImportError
    return QemuImportError(f"{where}: {text}")


def _value(raw, key, name, where) -> int:
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise _error(where, f"{brief(key)}: expected an integer or a hex string")
    if isinstance(raw, str):
        t = raw.strip()
        try:
            v = int(t, 0) if t[:2].lower() in ("0x", "0b", "0o") else int(t, 10)
        except ValueError:
            raise _error(where, f"{brief(key)}: {brief(raw)} is not a number (write hex as "
                                f"\"0x...\")") from None
    else:
        v = raw
    bits = 8 * fmt(name, "gicv3").size
    if v < 0:
        raise _error(where, f"{brief(key)}: {brief(raw)} is negative")
    if v >> bits:
        raise _error(where, f"{brief(key)}: {brief(v)} does not fit in the {bits}-bit register "
                            f"{name}")
    return v


def parse_gic_regs(obj: dict, where: str) -> dict:
    """The GITS_*/GICR_* entries of a register map: {"its": {name: value}, "redists":
    {frame: {name: value}}}. Other keys are ignored (the SMMU's)."""
    its: dict[str, int] = {}
    redists: dict[int, dict[str, int]] = {}
    given: dict[tuple, str] = {}
    for key, raw in obj.items():
        if not is_gic_key(key):
            continue
        n = key.strip().upper()
        if n.startswith("GITS_"):
            if n == "GITS_TRANSLATER":
                raise _error(where, f"{brief(key)}: GITS_TRANSLATER is write-only (an MSI "
                                    f"doorbell): it has no value to import")
            if n not in ITS_REGS:
                raise _error(where, f"unknown ITS register {brief(key)} (known: "
                                    f"{', '.join(ITS_REGS)})")
            slot, fmt_name = (n,), REGISTER_FORMAT[n]
        else:
            m = _GICR_KEY.fullmatch(n)
            if m is None or m.group(1) not in GICR_OFFSETS:
                raise _error(where, f"unknown redistributor register {brief(key)} (known: "
                                    f"{', '.join(GICR_OFFSETS)}, each as NAME[n] for "
                                    f"redistributor frame n)")
            frame = int(m.group(2) or 0)
            if frame >= MAX_FRAMES:
                raise _error(where, f"{brief(key)}: redistributor {frame} is beyond "
                                    f"{MAX_FRAMES - 1}")
            n = m.group(1)
            slot, fmt_name = (n, frame), n
        if slot in given:
            raise _error(where, f"{brief(key)} and {brief(given[slot])} are the same register")
        given[slot] = key
        v = _value(raw, key, fmt_name, where)
        if len(slot) == 1:
            its[n] = v
        else:
            redists.setdefault(slot[1], {})[n] = v
    return {"its": its, "redists": dict(sorted(redists.items()))}


def _f(reg_fmt, field, v) -> int:
    return reg_fmt.field(field).get([v])


def check_gic(gic: dict, where: str) -> list[str]:
    """Registers that contradict each other or QEMU's ITS layout: raise (one line naming the
    register). Returns warnings."""
    warnings: list[str] = []
    its, redists = gic["its"], gic["redists"]
    if redists and not its:
        warnings.append("GICR_* registers without any GITS_* register: no ITS is imported")
    if its:
        for r in REQUIRED:
            if r not in its:
                raise _error(where, f"{r} is missing (an imported ITS needs GITS_CTLR, whether "
                                    f"it translates, and GITS_TYPER, its ID bits and ITE size)")
        typer = its["GITS_TYPER"]
        if not _f(_TYPER, "Physical", typer) or _f(_TYPER, "PTA", typer):
            raise _error(where, f"GITS_TYPER {typer:#x}: only a physical ITS with PTA=0 "
                                f"(RDbase = processor number) is modelled")
        ite = _f(_TYPER, "ITT_entry_size", typer) + 1
        if ite != LAYOUTS[LAYOUT]["ITE"][1]:
            raise _error(where, f"GITS_TYPER.ITT_entry_size={ite - 1}: {ite}-byte ITEs, but "
                                f"QEMU's ITS layout has {LAYOUTS[LAYOUT]['ITE'][1]}-byte ones "
                                f"(is this QEMU's ITS?)")
        seen: dict[int, str] = {}
        for n in range(8):
            name = f"GITS_BASER{n}"
            v = its.get(name)
            if v is None or not _f(_BASER, "Valid", v):
                continue
            typ = _f(_BASER, "Type", v)
            kind = {G.GITS_BASER_Type_Devices: "Devices",
                    G.GITS_BASER_Type_Collections: "Collections"}.get(typ)
            if kind is None:
                what = BASER_TYPES.get(typ, typ)
                warnings.append(f"{name}.Type={typ} ({what}) is Valid but not modelled")
                continue
            if typ in seen:
                raise _error(where, f"{name} and {seen[typ]} both hold the {kind} table")
            seen[typ] = name
            entry = LAYOUTS[LAYOUT][_ENTRY[kind]][1]
            es = _f(_BASER, "Entry_Size", v) + 1
            if es != entry:
                raise _error(where, f"{name}.Entry_Size={es - 1}: {es}-byte {kind} entries, but "
                                    f"QEMU's {_ENTRY[kind]} is {entry} bytes")
            if _f(_BASER, "Page_Size", v) == 3:
                warnings.append(f"{name}.Page_Size=3 is reserved: taken as 64 KB, as QEMU does")
        for kind, code in (("Devices", G.GITS_BASER_Type_Devices),
                           ("Collections", G.GITS_BASER_Type_Collections)):
            if code not in seen:
                warnings.append(f"no Valid GITS_BASER<n> of Type {kind} given: the ITS has no "
                                f"{'device' if kind == 'Devices' else 'collection'} table")
        cb = its.get("GITS_CBASER")
        if cb is not None and _f(_CBASER, "Valid", cb):
            size = (_f(_CBASER, "Size", cb) + 1) * 4096
            for r in ("GITS_CWRITER", "GITS_CREADR"):
                if r in its:
                    off = fmt(r, "gicv3").field("Offset").address([its[r]])
                    if off >= size:
                        raise _error(where, f"{r}.Offset {off:#x} is beyond the {size}-byte "
                                            f"command queue (GITS_CBASER.Size)")
            if "GITS_CWRITER" in its and "GITS_CREADR" in its:
                off = fmt("GITS_CWRITER", "gicv3").field("Offset")
                wr, rd = off.address([its["GITS_CWRITER"]]), off.address([its["GITS_CREADR"]])
                if wr != rd:
                    n = ((wr - rd) % size) // 32
                    warnings.append(f"{n} ITS command(s) pending between GITS_CREADR {rd:#x} and "
                                    f"GITS_CWRITER {wr:#x}: a snapshot, not executed")
        if "GITS_CREADR" in its and its["GITS_CREADR"] & G.GITS_CREADR_Stalled_MASK:
            warnings.append("GITS_CREADR.Stalled=1: the ITS command queue is stalled on an error")
    if redists:
        frames = sorted(redists)
        if frames != list(range(len(frames))):
            gap = next(i for i in range(len(frames) + 1) if i not in redists)
            raise _error(where, f"GICR_*[{gap}] is missing: redistributor frames are numbered "
                                f"0..N-1 ({len(frames)} given, up to [{frames[-1]}])")
        procs: dict[int, int] = {}
        for n, regs in redists.items():
            if "GICR_TYPER" not in regs:
                continue
            pn = _f(_GICR_TYPER, "Processor_Number", regs["GICR_TYPER"])
            if pn in procs:
                raise _error(where, f"GICR_TYPER[{n}] and GICR_TYPER[{procs[pn]}] both have "
                                    f"Processor_Number {pn}")
            procs[pn] = n
            if not _f(_GICR_TYPER, "PLPIS", regs["GICR_TYPER"]):
                warnings.append(f"GICR_TYPER[{n}].PLPIS=0: redistributor {n} has no LPIs")
        for n, regs in redists.items():
            ctlr = regs.get("GICR_CTLR")
            if ctlr is not None and not ctlr & G.GICR_CTLR_EnableLPIs_MASK:
                warnings.append(f"GICR_CTLR[{n}].EnableLPIs=0: LPIs targeting redistributor "
                                f"{n} are not delivered")
    return warnings


# ---------------------------------------------------------------------------------------------
def _affinity(v: int) -> str:
    """Aff3.Aff2.Aff1.Aff0 of a GICR_TYPER.Affinity_Value."""
    d = fmt("GICR_AFFINITY", "gicv3").decode([v])
    return ".".join(str(d[a]) for a in ("Aff3", "Aff2", "Aff1", "Aff0"))


def redistributor_rows(redists: dict) -> list[dict]:
    """One row per redistributor frame: its RD_base, processor number and affinity (None when
    GICR_TYPER was not given), and every GICR register (None: not provided)."""
    rows = []
    for n, regs in redists.items():
        typer = regs.get("GICR_TYPER")
        rows.append({
            "frame": n, "rd_base": QEMU_VIRT_GICR + n * GICR_STRIDE,
            "processor": None if typer is None else _f(_GICR_TYPER, "Processor_Number", typer),
            "affinity": None if typer is None else _affinity(
                _f(_GICR_TYPER, "Affinity_Value", typer)),
            "registers": {r: regs.get(r) for r in GICR_OFFSETS}})
    return rows


def _virt_iort(smmu: str, smmu_base: int) -> Iort:
    """QEMU virt's ID mappings (its DT msi-map and iommu-map, or build_iort): every RID to the
    SMMU as the same StreamID, every StreamID to the one ITS group as the same DeviceID."""
    iort = Iort()
    iort.nodes["its"] = ItsGroup("its", (), (0,))
    iort.nodes[smmu] = SmmuV3(smmu, (IdMapping(0, 0xFFFF, 0, "its"),), smmu_base)
    iort.nodes["rc"] = RootComplex("rc", (IdMapping(0, 0xFFFF, 0, smmu),), 0)
    return iort


def _check_tables(its: Its, cov, warnings: list[str]) -> None:
    """The tables the ITS uses must be in the dump while it is enabled; ITTs may be missing
    (a warning each, as for the SMMU's lower tables)."""
    for kind in ("Devices", "Collections"):
        t = its.table(kind)
        if t is None or not t.valid:
            continue
        size = t.pages * t.page_size
        what = f"GITS_BASER{t.n}"
        if not cov.contains(t.base):
            if its.enabled:
                raise cov.not_in_dump(f"{what} ({kind} table)", t.base)
            warnings.append(f"{what} {t.base:#x} ({kind} table) is not in the dump (ITS "
                            f"disabled)")
            continue
        gap = cov.missing(t.base, size)
        if gap is not None:
            warnings.append(f"the {kind} table {t.base:#x}-{t.base + size - 1:#x} "
                            f"({what}) is only partly in the dump (first missing byte {gap:#x})")


def build_gic(system, gic: dict, cov, smmu_name: str, smmu_base: int,
              its_base: int = QEMU_VIRT_ITS) -> tuple[dict | None, list[str]]:
    """Add the imported ITS, redistributors and QEMU virt's IORT to `system`. Returns (the
    report's "its" part or None, warnings)."""
    warnings: list[str] = []
    regs, redists = gic["its"], gic["redists"]
    if not regs:
        return None, warnings
    procs = [r["processor"] if r["processor"] is not None else r["frame"]
             for r in redistributor_rows(redists)]
    propbits = [fmt("GICR_PROPBASER", "gicv3").field("IDbits").get([r["GICR_PROPBASER"]]) + 1
                for r in redists.values() if "GICR_PROPBASER" in r]
    lpi_bits = min(max(min(propbits), 14), 32) if propbits else 16
    try:
        if procs:
            pes = max(procs) + 1
        else:
            # Read the collection table with one redistributor, to size the GIC.
            probe = Its(system.mem, ItsFeatures.from_typer(regs["GITS_TYPER"], 1,
                                                           layout=LAYOUT), its_base)
            probe.load_registers(_with_unprovided(regs))
            pes = max([rd for _, rd in probe.collection_entries()] + [0]) + 1
            warnings.append(f"no GICR_* registers: {pes} redistributor(s) assumed, as many as "
                            f"the collection table targets")
        platform = Platform(system, {"gic": {"redistributors": pes}})
        feats = ItsFeatures.from_typer(regs["GITS_TYPER"], pes, layout=LAYOUT,
                                       lpi_bits=lpi_bits, on_error="ignore")
        its = Its(system.mem, feats, its_base, gic=platform.gic)
        its.load_registers(_with_unprovided(regs))
    except (ItsError, ModelError, ValueError) as e:
        raise SmmuDbgError(f"GITS_TYPER: {e}") from None
    its.regs_provided = frozenset(regs)
    _check_tables(its, cov, warnings)
    platform.add_its(its, ITS_NAME)
    platform.iort = _virt_iort(smmu_name, smmu_base)
    platform.redistributors = redistributor_rows(redists)
    system.platform = platform
    report = {"name": ITS_NAME, "base": its_base, "translater": its_base + OFFSETS[
              "GITS_TRANSLATER"], "enabled": its.enabled, "registers": len(regs),
              "redistributors": pes, "layout": LAYOUT,
              "iort": "QEMU virt ID mappings: RID = StreamID = DeviceID (assumed: the dump "
                      "holds no IORT)"}
    return report, warnings


def _with_unprovided(regs: dict) -> dict:
    """The snapshot's registers, with the GITS_BASER<n> not given as 0 (no table of any Type:
    a table the file does not describe is not invented from reset values)."""
    out = {f"GITS_BASER{n}": 0 for n in range(8)}
    out.update(regs)
    return out
