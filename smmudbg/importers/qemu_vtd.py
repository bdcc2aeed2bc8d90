"""Import a QEMU q35 guest with Intel VT-d: its dump-guest-memory ELF (x86-64: RAM and the BIOS
ROM, every segment) and its DMAR registers (REGS.json with DMAR_* names, read by
qemu_vtd_regs.py). importers/qemu.py sends a register file of DMAR_* names here.

    system, report = import_vtd("memory.elf", obj, "regs.json")

The system has one VT-d unit, dmar0 (smmudbg/model/vtd_imported.py), over the dump's memory
(strict: an address outside every segment is unbacked, a walk there faults): the root table at
RTADDR_REG (scalable mode from RTADDR_REG.TTM), the invalidation queue at IQA_REG with
IQH/IQT_REG, the interrupt remapping table at IRTA_REG, the fault records the FRCD_REGs hold.
The requesters are those with a present context entry, found by reading the root and context
tables the dump holds (bounded: 256 root entries, 2 x 128 context entries each).

The host address width is not a register (the ACPI DMAR table gives it): QEMU's is its
aw-bits, which is also CAP_REG.MGAW + 1 (hw/i386/acpi-build.c, intel_iommu.c), so that is used.

Errors are QemuImportError, one line naming the file and the register or address.
"""
from __future__ import annotations

import os

import numpy as np

from core_cy.physmem import MemFault

from ..arch.fieldtable import fmt
from ..arch.vtd import consts as VC
from ..errors import SmmuDbgError
from ..model.system import System
from ..model.vtd_imported import ImportedVtdUnit
from ..textfile import display_name
from .qemu_dump import DumpError, load_dump
from .qemu_pci import PCI_FILES, load_info_pci
from .qemu_vtd_regs import parse_vtd_regs

__all__ = ["import_vtd", "UNIT_NAME", "Q35_DMAR_BASE", "is_vtd_key"]

UNIT_NAME = "dmar0"
Q35_DMAR_BASE = 0xFED9_0000         # QEMU q35: Q35_HOST_BRIDGE_IOMMU_ADDR
REQUIRED = ("CAP_REG", "ECAP_REG", "GSTS_REG", "RTADDR_REG")
_PAGE = 4096
_ROOT = fmt("SM_ROOT_ENTRY", "vtd")
_CTX = fmt("SM_CONTEXT_ENTRY", "vtd")


def is_vtd_key(key) -> bool:
    return isinstance(key, str) and key.strip().upper().startswith("DMAR_")


def _error(msg):
    from .qemu import QemuImportError           # one error class for `import qemu`
    return QemuImportError(msg)


def _f(reg, field, value):
    return fmt(reg, "vtd").field(field).get([value])


def check_regs(regs: dict, where: str) -> list[str]:
    """Missing or unusable registers raise; returns warnings."""
    for r in REQUIRED:
        if r not in regs:
            raise _error(f"{where}: DMAR_{r} is missing (the unit's capabilities and root table "
                         f"are read from DMAR_CAP_REG, DMAR_ECAP_REG, DMAR_GSTS_REG and "
                         f"DMAR_RTADDR_REG)")
    ttm = fmt("RTADDR_REG", "vtd").field("TTM")
    mode = ttm.meaning(ttm.get([regs["RTADDR_REG"]]))
    if mode != "scalable":
        raise _error(f"{where}: DMAR_RTADDR_REG.TTM={mode}: only scalable-mode translation "
                     f"is modeled")
    warnings = []
    if not _f("GSTS_REG", "RTPS", regs["GSTS_REG"]):
        warnings.append("GSTS_REG.RTPS=0: the root table pointer was not latched; the walk "
                        "uses DMAR_RTADDR_REG as given")
    if _f("ECAP_REG", "SMTS", regs["ECAP_REG"]) == 0:
        warnings.append("ECAP_REG.SMTS=0 but RTADDR_REG.TTM=scalable")
    return warnings


def _read(mem, pa, size):
    try:
        return mem.read(pa, size)
    except MemFault:
        return None


def discover_devices(mem, root: int, warnings: list[str]) -> list[int]:
    """The RIDs whose scalable-mode context entry is present (P=1), from the root table at
    root and the context tables it points at; tables the dump lacks are warnings."""
    raw = _read(mem, root, _PAGE)
    if raw is None:
        warnings.append(f"the root table {root:#x} (RTADDR_REG) is not in the dump")
        return []
    words = np.frombuffer(raw, dtype="<u8").reshape(256, 2)
    rids = []
    for bus in range(256):
        w = [int(words[bus, 0]), int(words[bus, 1])]
        for upper, p, ptr in ((0, "LP", "LCTP"), (1, "UP", "UCTP")):
            if not _ROOT.field(p).get(w):
                continue
            ct = _ROOT.field(ptr).address(w)
            data = _read(mem, ct, _PAGE)
            if data is None:
                warnings.append(f"bus {bus:#04x}: the {'upper' if upper else 'lower'} context "
                                f"table {ct:#x} is not in the dump")
                continue
            ctx = np.frombuffer(data, dtype="<u8").reshape(1 << VC.SM_CONTEXT_INDEX_BITS,
                                                           _CTX.nwords)
            for i in np.nonzero(_CTX.field("P").get_rows(ctx))[0].tolist():
                rids.append(bus << 8 | (upper << VC.SM_CONTEXT_INDEX_BITS) + i)
    return rids


def import_vtd(memory, obj: dict, regs_name: str, ram_base: int | None = None,
               name: str | None = None, pci=None, regs_path=None):
    """Build the system of a VT-d guest: MEMORY (ELF or raw, optionally xz) and the register
    file's parsed JSON object. Returns (system, report)."""
    mem_name = display_name(os.fspath(memory))
    try:
        vregs = parse_vtd_regs(obj, regs_name)
    except SmmuDbgError as e:
        raise _error(str(e)) from None
    regs = dict(vregs.values)
    warnings = list(vregs.warnings)
    warnings += check_regs(regs, regs_name)
    names: dict = {}
    if pci is None and regs_path is not None:
        here = os.path.dirname(os.path.abspath(os.fspath(regs_path)))
        pci = next((os.path.join(here, f) for f in PCI_FILES
                    if os.path.isfile(os.path.join(here, f))), None)
    if pci is not None:
        names, more = load_info_pci(os.fspath(pci))
        warnings += more
    try:
        # A raw image of a q35 guest's RAM starts at 0.
        segments, machine = load_dump(memory, ram_base, machines=("aarch64", "x86_64"),
                                      default_base=0)
    except DumpError as e:
        raise _error(str(e)) from None
    if machine == "aarch64":
        raise _error(f"{mem_name}: an AArch64 dump with VT-d (DMAR_*) registers in "
                     f"{regs_name}: an Arm guest's IOMMU is an SMMUv3 (SMMU_* registers)")
    sysname = name or f"qemu:{os.path.basename(mem_name)}"
    system = System.empty(sysname, f"imported from {mem_name} and {regs_name}", strict=True)
    for s in segments:
        if s.pa & (_PAGE - 1):
            raise _error(f"{mem_name}: segment at PA {s.pa:#x} is not 4 KiB aligned")
        try:
            system.mem.image(s.pa, s.data)
        except ValueError as e:
            raise _error(f"{mem_name}: segment at PA {s.pa:#x}: {e}") from None
    haw = _f("CAP_REG", "MGAW", regs["CAP_REG"]) + 1
    root = fmt("RTADDR_REG", "vtd").field("RTA").address([regs["RTADDR_REG"]])
    rids = discover_devices(system.mem, root, warnings)
    try:
        unit = ImportedVtdUnit(UNIT_NAME, Q35_DMAR_BASE, system.mem, regs, haw,
                               {r: names.get(r) for r in rids})
    except ValueError as e:
        raise _error(f"{regs_name}: {e}") from None
    system.vtds[UNIT_NAME] = unit
    system.vtd_devices = {d.name: d for d in unit.devices.values() if d.name}
    if unit.iqa and _read(system.mem, unit.iq_base, _PAGE) is None:
        warnings.append(f"the invalidation queue {unit.iq_base:#x} (IQA_REG) is not in the dump")
    irt = fmt("IRTA_REG", "vtd").field("IRTA").address([unit.irta])
    if irt and _read(system.mem, irt, 16) is None:
        warnings.append(f"the interrupt remapping table {irt:#x} (IRTA_REG) is not in the dump")
    report = {
        "system": sysname, "unit": UNIT_NAME, "memory": mem_name, "regs": regs_name,
        "machine": machine, "segments": [{"pa": s.pa, "size": s.size} for s in segments],
        "bytes": sum(s.size for s in segments), "registers": len(regs),
        "translation": bool(_f("GSTS_REG", "TES", regs["GSTS_REG"])),
        "mode": unit.ttm, "root_table": root, "haw": haw,
        "iq": {"base": unit.iq_base, "entries": unit.IQ_ENTRIES, "head": unit.iqh,
               "tail": unit.iqt} if unit.iqa else None,
        "irta": {"base": irt, "entries": 2 << _f("IRTA_REG", "S", unit.irta),
                 "enabled": bool(_f("GSTS_REG", "IRES", regs["GSTS_REG"]))}
        if unit.irta else None,
        "devices": [{"rid": r, "device": names.get(r)} for r in rids],
        "faults": len(unit.faults),
        "pci": os.fspath(pci) if pci is not None else None,
        "warnings": warnings,
    }
    return system, report
