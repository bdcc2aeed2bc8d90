"""An Intel VT-d remapping unit taken from a real system's registers (an imported QEMU q35
guest, smmudbg/importers/qemu_vtd.py) rather than built from a scenario.

It is a VtdUnit whose structures are the ones already in memory: the root table at
RTADDR_REG.RTA (its translation-table mode from RTADDR_REG.TTM), the invalidation queue at
IQA_REG with the snapshot's IQH_REG/IQT_REG, the interrupt remapping table at IRTA_REG, and
the fault records the fault recording registers hold. Nothing is allocated or written at
construction: the walk, `context`, `pasid` and `events` read what the guest left.
"""
from __future__ import annotations

from core_cy.vtd import VtdWalker

from ..arch.fieldtable import fmt
from ..arch.vtd.consts import FAULT_NAMES
from ..arch.vtd.faults import FAULT_REASONS
from .vtd import VtdDevice, VtdUnit

_FRCD = fmt("FRCD_REG", "vtd")
# FRCD_REG.T2:T1 (VT-d 11.4.9.4): 00 write, 01 read, 10 page request, 11 AtomicOp.
_REQUEST = {(0, 0): "write", (0, 1): "read", (1, 0): "page_request", (1, 1): "atomic"}


def _field(reg: str, name: str, value: int) -> int:
    return fmt(reg, "vtd").field(name).get([value])


def fault_record(n: int, words) -> dict:
    """A fault recording register's contents as the fault record `events` lists (the keys of
    a walk's recorded fault), with its FRCD index and whether F is still set (software clears
    F after reading the record; the contents stay)."""
    g = {f.name: f.get(words) for f in _FRCD.fields}
    req = _REQUEST[(g["T2"], g["T1"])]
    reason = g["FR"]
    return {"index": n, "reason": reason, "name": FAULT_NAMES.get(reason),
            "meaning": FAULT_REASONS[reason][1] if reason in FAULT_REASONS else "",
            "fi": _FRCD.field("FI").address(words), "sid": g["SID"],
            "pasid": g["PV"] if g["PP"] else None,
            "write": req == "write", "exe": bool(g["EXE"]), "priv": bool(g["PRIV"]),
            "at": g["AT"], "request": req, "F": g["F"], "recorded": True}


class ImportedVtdUnit(VtdUnit):
    """A VT-d unit over memory that already holds its structures (see the module doc).

    regs: {spec register name: value} of the registers the snapshot gives (FRCD_REG[n] 128
    bits); haw: the host address width; devices: {RID: name or None} of the requesters found
    with a present context entry."""

    def __init__(self, name: str, base: int, mem, regs: dict, haw: int, devices: dict):
        # Not VtdUnit.__init__: that one builds structures from a scenario.
        self.name, self.base, self.mem, self.haw = name, base, mem, haw
        self.alloc = None
        self.regs = dict(regs)
        self.regs_provided = frozenset(regs)
        get = lambda r: regs.get(r, 0)          # noqa: E731  (absent: reset value 0)
        self.cap, self.ecap, self.gsts = get("CAP_REG"), get("ECAP_REG"), get("GSTS_REG")
        self.rtaddr, self.irta = get("RTADDR_REG"), get("IRTA_REG")
        self.root_table = fmt("RTADDR_REG", "vtd").field("RTA").address([self.rtaddr])
        self.ttm = fmt("RTADDR_REG", "vtd").field("TTM").meaning(_field("RTADDR_REG", "TTM",
                                                                         self.rtaddr))
        # The invalidation queue as the snapshot left it (VT-d 6.5.2, 11.4.9): IQA_REG.QS
        # gives 2^QS 4 KiB pages of 128-bit descriptors (256-bit with DW=1); IQH/IQT_REG hold
        # byte offsets (QH/QT are descriptor indexes in the field tables).
        iqa = get("IQA_REG")
        self.iqa = iqa
        self.iq_base = fmt("IQA_REG", "vtd").field("IQA").address([iqa])
        wide = _field("IQA_REG", "DW", iqa)
        self.IQ_DESC = fmt("CC_INV_DSC", "vtd").size << wide
        self.IQ_ENTRIES = (4096 << _field("IQA_REG", "QS", iqa)) // self.IQ_DESC
        self.iqh = _field("IQH_REG", "QH", get("IQH_REG")) >> wide
        self.iqt = _field("IQT_REG", "QT", get("IQT_REG")) >> wide
        self.ics_iwc = _field("ICS_REG", "IWC", get("ICS_REG"))
        self.iq_error = ("invalidation_queue_error" if _field("FSTS_REG", "IQE", get("FSTS_REG"))
                         else None)
        self.walker = VtdWalker(mem, cap=self.cap, ecap=self.ecap, gsts=self.gsts,
                                rtaddr=self.rtaddr, irta=self.irta, haw=haw)
        self.domains = {}
        self._ctx_tables = {}
        self.devices = {rid: VtdDevice({"name": nm, "vtd": name, "rid": rid})
                        for rid, nm in sorted(devices.items())}
        self.device_tlbs = {}           # a snapshot says nothing of the devices' ATS caches
        # The fault records the snapshot holds, by FRCD index (an empty register, all zero,
        # is no record); faults the session's walks record follow them.
        frcd = {int(k[9:-1]): v for k, v in regs.items() if k.startswith("FRCD_REG[") and v}
        self.faults = [fault_record(n, [v & (2**64 - 1), v >> 64])
                       for n, v in sorted(frcd.items())]
