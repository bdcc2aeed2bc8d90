"""A GICv3 Interrupt Translation Service over modeled physical memory (Arm IHI 0069, chapter 5).

    its = Its(mem, ItsFeatures(pes=4))          # registers at reset, tables in `mem`
    its.write("GITS_BASER0", ...); its.write("GITS_CBASER", ...); its.write("GITS_CTLR", 1)
    its.submit("MAPD", DeviceID=..., ...)        # a driver writing the command queue
    r = its.translate(device_id, event_id)      # a write to GITS_TRANSLATER
    r.intid, r.target, r.steps, r.error

The registers have their architected side effects: writing GITS_CWRITER processes the command
queue up to it, writing GITS_CBASER resets GITS_CREADR, GITS_BASER<n>.Type and Entry_Size are
read-only and GITS_TYPER comes from the features. The device table (flat or two-level), the
interrupt translation tables and the collection table live in `mem` in a named entry layout
(smmudbg.arch.gicv3.layouts, "qemu" first); collections below GITS_TYPER.HCC are held in the
ITS. Every table read is a step (ItsStep) with its address, raw value, decoded fields and
outcome, so the MSI path can show it like a walk.

A command error (IHI 0069 5.5: its name and encoding, e.g. MAPD_DEVICE_OOR = 0x010801) either
stalls the queue (GITS_CREADR.Stalled = 1, GITS_CREADR.Offset left at the failing command; with
GITS_TYPER.SEIS a system error is also reported in `sei`) or is ignored and processing goes
on, as ItsFeatures.on_error says: the architecture allows both, QEMU ignores parameter errors
and stalls on memory aborts. A memory abort reading the queue or a table always stalls.
GITS_CWRITER.Retry = 1 restarts a stalled queue at the command that failed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core_cy.physmem import MemFault
from smmudbg.arch import fmt
from smmudbg.arch.gicv3 import consts as C
from smmudbg.arch.gicv3.commands import ERRORS, GICV4_OPCODES, OPCODES
from smmudbg.arch.gicv3.layouts import LAYOUTS
from smmudbg.arch.gicv3.registers import (BASER_ADDRESS_FORMAT, CBASER_PAGE_SHIFT, LPI_BASE,
                                          OFFSETS, PAGE_SHIFT, REGISTER_FORMAT, RESET)

from .gic import Redistributors

_CMD = fmt("ITS_CMD", "gicv3")
_L1E = fmt("ITS_L1E", "gicv3")
CMD_SIZE = _CMD.size                    # bytes per command
CMDQ_PAGE = 1 << CBASER_PAGE_SHIFT      # what GITS_CBASER.Size counts
L1E_SIZE = _L1E.size                    # bytes per level-1 entry of a two-level table
TRANSLATER = OFFSETS["GITS_TRANSLATER"]
# Listing every mapping scans tables and ITTs in bulk: in chunks, and at most SCAN_MAX bytes of
# each, so a DTE claiming 2^32 events (or a huge table) in a hostile dump is bounded work.
SCAN_CHUNK = 1 << 20
SCAN_MAX = 64 << 20

_REG = {name: fmt(REGISTER_FORMAT[name], "gicv3") for name in OFFSETS}
_CTLR_RW = C.GITS_CTLR_Enabled_MASK
_BASER_RO = C.GITS_BASER_Type_MASK | C.GITS_BASER_Entry_Size_MASK
_CWRITER_RW = C.GITS_CWRITER_Offset_MASK
_M64 = (1 << 64) - 1


class ItsError(ValueError):
    """A request the model cannot honour (unknown register, feature out of range): one line."""


@dataclass(frozen=True)
class ItsFeatures:
    """What the implementation supports; GITS_TYPER and GITS_BASER<n> follow from it."""
    devbits: int = 16          # DeviceID bits (GITS_TYPER.Devbits + 1)
    idbits: int = 16           # EventID bits (GITS_TYPER.ID_bits + 1)
    cidbits: int = 16          # ICID bits: below 16 sets GITS_TYPER.CIL and CIDbits
    hcc: int = 0               # collections held in the ITS (GITS_TYPER.HCC)
    seis: bool = False         # command errors raise a system error (GITS_TYPER.SEIS)
    pes: int = 1               # redistributors (processor numbers 0..pes-1)
    lpi_bits: int = 16         # INTID bits of the GIC (GICD_TYPER.IDbits + 1)
    layout: str = "qemu"       # entry layout of the DTE, ITE and CTE
    on_error: str = "stall"    # a command error stalls the queue, or is "ignore"d
    iidr: int = 0x43B          # GITS_IIDR (Arm, as QEMU reports its GIC)

    def check(self) -> None:
        for name, lo, hi in (("devbits", 1, 32), ("idbits", 1, 32), ("cidbits", 1, 16),
                             ("hcc", 0, 255), ("pes", 1, 1 << 16), ("lpi_bits", 14, 32)):
            v = getattr(self, name)
            if not isinstance(v, int) or not lo <= v <= hi:
                raise ItsError(f"ITS feature {name}={v!r} is not in {lo}..{hi}")
        if self.layout not in LAYOUTS:
            raise ItsError(f"ITS layout {self.layout!r} is unknown; known: "
                           f"{', '.join(LAYOUTS)}")
        if self.on_error not in ("stall", "ignore"):
            raise ItsError(f"ITS on_error={self.on_error!r}: use stall or ignore")

    @classmethod
    def from_typer(cls, typer: int, pes: int, **others) -> "ItsFeatures":
        """The features a GITS_TYPER value reports (an imported ITS), with `pes`
        redistributors; `others` sets the rest (layout, on_error, ...)."""
        d = _REG["GITS_TYPER"].decode([typer])
        if not d["Physical"] or d["PTA"]:
            raise ItsError(f"GITS_TYPER {typer:#x}: only a physical ITS with PTA=0 (RDbase is "
                           f"a processor number) is modelled")
        return cls(devbits=d["Devbits"] + 1, idbits=d["ID_bits"] + 1,
                   cidbits=d["CIDbits"] + 1 if d["CIL"] else 16, hcc=d["HCC"],
                   seis=bool(d["SEIS"]), pes=pes, **others)

    def typer(self, ite_size: int) -> int:
        t = _REG["GITS_TYPER"]
        return t.encode(Physical=1, ITT_entry_size=ite_size - 1, ID_bits=self.idbits - 1,
                        Devbits=self.devbits - 1, SEIS=int(self.seis), HCC=self.hcc,
                        CIDbits=self.cidbits - 1 if self.cidbits < 16 else 0,
                        CIL=int(self.cidbits < 16))[0]


# -- results ------------------------------------------------------------------------------------
@dataclass
class ItsStep:
    """One table read (or the final delivery) of a translation or a command."""
    what: str                  # "L1 device table", "DTE", "ITE", "L1 collection table", "CTE",
                               # "collection (held in the ITS)", "redistributor"
    index: int                 # the DeviceID, EventID, ICID or processor number it is for
    address: int | None        # where it was read (None: held in the ITS, or not read)
    raw: int | None            # the entry as read (little-endian), None on an abort
    fields: dict               # decoded fields
    outcome: str               # "valid", "invalid", "abort", or what happened
    ok: bool = True


@dataclass
class ItsTranslation:
    """A write of EventID to GITS_TRANSLATER by DeviceID: the LPI and its target, or why not."""
    device_id: int
    event_id: int
    steps: list[ItsStep] = field(default_factory=list)
    intid: int | None = None
    icid: int | None = None
    target: int | None = None          # processor number of the target redistributor
    error: str | None = None           # DEVICE_OOR, UNMAPPED_DEVICE, ID_OOR, ...
    error_code: int | None = None      # its INT_* encoding (IHI 0069 5.5), where it has one
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class ItsCommand:
    """One command the ITS processed from its queue."""
    offset: int                        # byte offset in the queue
    opcode: int
    name: str                          # MAPD, MAPC, ..., or the number of an unknown one
    fields: dict
    steps: list[ItsStep] = field(default_factory=list)
    error: str | None = None           # e.g. MAPD_DEVICE_OOR
    error_code: int | None = None
    reason: str = ""                   # what it did, or why it failed
    stalled: bool = False              # the error stalled the queue

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class ItsTable:
    """A table as GITS_BASER<n> describes it."""
    n: int
    kind: str                          # "Devices" or "Collections"
    valid: bool
    indirect: bool
    page_size: int
    entry_size: int
    base: int
    pages: int

    @property
    def capacity(self) -> int:
        """Entries the allocated table can hold (flat), or address (two-level)."""
        if not self.valid:
            return 0
        size = self.pages * self.page_size
        if self.indirect:
            return (size // L1E_SIZE) * (self.page_size // self.entry_size)
        return size // self.entry_size


class _Fail(Exception):
    """A lookup failed: `kind` is the error suffix (UNMAPPED_DEVICE, ...) or ABORT."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind, self.reason = kind, reason


def baser_address(value: int) -> int:
    """The table base GITS_BASER<n> holds: the OR of the addresses of the address fields of
    the form its Page_Size uses (with 64 KB pages bits [15:12] are PA[51:48])."""
    page_size = _REG["GITS_BASER0"].field("Page_Size").get([value])
    form = fmt(BASER_ADDRESS_FORMAT[page_size], "gicv3")
    pa = 0
    for f in form.fields:
        if f.is_address:
            pa |= f.address([value])
    return pa


def baser_value(value: int, *, base: int, page_size: int, pages: int,
                indirect: bool) -> int:
    """`value` (a GITS_BASER<n> as read: Type, Entry_Size) with a Valid table of `pages` pages
    of `page_size` bytes at `base` (the Physical_Address form of that page size). ItsError if
    the page size is not one the register encodes or base does not fit that form."""
    f = _REG["GITS_BASER0"]
    codes = [c for c, s in sorted(PAGE_SHIFT.items())
             if 1 << s == page_size and not f.field("Page_Size").is_reserved(c)]
    if not codes:
        raise ItsError(f"GITS_BASER: page size {page_size:#x} is not 4KB, 16KB or 64KB")
    words = f.encode([value], Valid=1, Indirect=int(indirect), Page_Size=codes[0],
                     Size=pages - 1)
    for fld in fmt(BASER_ADDRESS_FORMAT[codes[0]], "gicv3").fields:
        if fld.is_address:
            fld.put(words, (base >> fld.address_shift) & fld.mask)
    if baser_address(words[0]) != base:
        raise ItsError(f"GITS_BASER: table base {base:#x} is not a {page_size:#x}-byte page "
                       f"the register can hold")
    return words[0]


class Its:
    """One ITS: registers, command queue and tables in `mem`, LPIs raised in `gic`."""

    def __init__(self, mem, features: ItsFeatures | None = None, base: int = 0,
                 gic: Redistributors | None = None):
        self.features = features or ItsFeatures()
        self.features.check()
        self.mem = mem
        self.base = base
        self.gic = gic if gic is not None else Redistributors(self.features.pes)
        if len(self.gic) != self.features.pes:
            raise ItsError(f"the ITS targets {self.features.pes} redistributors but the GIC "
                           f"has {len(self.gic)}")
        lay = LAYOUTS[self.features.layout]
        self.dte_fmt, self.dte_size = fmt(lay["DTE"][0], "gicv3"), lay["DTE"][1]
        self.ite_fmt, self.ite_size = fmt(lay["ITE"][0], "gicv3"), lay["ITE"][1]
        self.cte_fmt, self.cte_size = fmt(lay["CTE"][0], "gicv3"), lay["CTE"][1]
        self.log: list[ItsCommand] = []        # every command processed, in order
        self.sei: ItsCommand | None = None     # the last command error reported as an SEI
        self.hcc = [(False, 0)] * self.features.hcc   # (valid, RDbase) of ICIDs < HCC
        self.reset()

    # -- registers ------------------------------------------------------------------------------
    def reset(self) -> None:
        self.regs = {n: 0 for n in OFFSETS if n != "GITS_TRANSLATER"}
        self.regs.update(RESET)
        self.regs["GITS_IIDR"] = self.features.iidr
        self.regs["GITS_TYPER"] = self.features.typer(self.ite_size)
        baser = _REG["GITS_BASER0"]
        self.regs["GITS_BASER0"] = baser.encode(Type="Devices",
                                                Entry_Size=self.dte_size - 1)[0]
        self.regs["GITS_BASER1"] = baser.encode(Type="Collections",
                                                Entry_Size=self.cte_size - 1)[0]
        self.hcc = [(False, 0)] * self.features.hcc

    def _name(self, name: str) -> str:
        n = name.upper()
        if not n.startswith("GITS_"):
            n = "GITS_" + n
        if n not in OFFSETS:
            raise ItsError(f"unknown ITS register {name!r}; known: {', '.join(OFFSETS)}")
        return n

    @property
    def enabled(self) -> bool:
        return bool(self.regs["GITS_CTLR"] & C.GITS_CTLR_Enabled_MASK)

    @property
    def stalled(self) -> bool:
        return bool(self.regs["GITS_CREADR"] & C.GITS_CREADR_Stalled_MASK)

    def read(self, name: str) -> int:
        """A register's value by its architected name (GITS_CTLR, GITS_BASER1, ...)."""
        n = self._name(name)
        if n == "GITS_TRANSLATER":
            return 0                    # write-only
        v = self.regs[n]
        if n == "GITS_CTLR":
            # Quiescent: commands run to completion when written, so the ITS is idle whenever
            # it is disabled.
            v = (v & ~C.GITS_CTLR_Quiescent_MASK) | (0 if self.enabled else
                                                     C.GITS_CTLR_Quiescent_MASK)
        return v

    def write(self, name: str, value: int, device_id: int | None = None):
        """Write a register with its side effects. A write to GITS_TRANSLATER needs the
        writer's DeviceID and returns the ItsTranslation."""
        n = self._name(name)
        value &= _M64 if _REG[n].size == 8 else 0xFFFF_FFFF
        if n == "GITS_TRANSLATER":
            if device_id is None:
                raise ItsError("a write to GITS_TRANSLATER needs the writer's DeviceID")
            return self.translate(device_id, value)
        if n == "GITS_CTLR":
            was = self.enabled
            self.regs[n] = value & _CTLR_RW
            if self.enabled and not was:
                self._process()
        elif n == "GITS_CBASER":
            # IHI 0069: writing GITS_CBASER while the ITS is enabled is UNPREDICTABLE; like
            # QEMU the write is ignored. A write sets GITS_CREADR to 0.
            if not self.enabled:
                self.regs[n] = value
                self.regs["GITS_CREADR"] = 0
        elif n == "GITS_CWRITER":
            self.regs[n] = value & _CWRITER_RW
            if value & C.GITS_CWRITER_Retry_MASK and self.stalled:
                self.regs["GITS_CREADR"] &= ~C.GITS_CREADR_Stalled_MASK
            self._process()
        elif n.startswith("GITS_BASER"):
            old = self.regs[n]
            # An unimplemented GITS_BASER<n> (Type 0) is RAZ/WI; written while enabled, it is
            # UNPREDICTABLE and ignored (as QEMU does).
            if old & C.GITS_BASER_Type_MASK and not self.enabled:
                self.regs[n] = (old & _BASER_RO) | (value & ~_BASER_RO & _M64)
        # GITS_IIDR, GITS_TYPER and GITS_CREADR are read-only.
        return None

    def load_registers(self, values: dict) -> None:
        """Take register values as they are (an imported dump, REGS.json style: ints or
        "0x..." strings): no side effects, GITS_TYPER included. Names as read() takes them."""
        for name, v in values.items():
            n = self._name(name)
            try:
                v = int(v, 0) if isinstance(v, str) else int(v)
            except (TypeError, ValueError):
                raise ItsError(f"{n}: {v!r} is not a number") from None
            if n != "GITS_TRANSLATER":
                self.regs[n] = v & _M64

    def read_offset(self, offset: int, size: int = 4) -> int:
        """An MMIO read of `size` bytes at `offset` from the ITS base (32-bit halves of the
        64-bit registers included); unknown offsets read as zero."""
        for n, off in OFFSETS.items():
            if off <= offset < off + _REG[n].size:
                shift = 8 * (offset - off)
                return (self.read(n) >> shift) & ((1 << (8 * size)) - 1)
        return 0

    def write_offset(self, offset: int, value: int, size: int = 4,
                     device_id: int | None = None):
        """An MMIO write at `offset` from the ITS base; a 32-bit write to half of a 64-bit
        register merges with the other half. Unknown offsets are ignored."""
        for n, off in OFFSETS.items():
            if off <= offset < off + _REG[n].size:
                if n == "GITS_TRANSLATER":
                    return self.translate(device_id, value & ((1 << (8 * size)) - 1))
                shift = 8 * (offset - off)
                mask = ((1 << (8 * size)) - 1) << shift
                merged = (self.regs[n] & ~mask) | ((value << shift) & mask)
                if n == "GITS_CWRITER" and shift:
                    self.regs[n] = merged & _CWRITER_RW     # the high half holds nothing
                    return None
                return self.write(n, merged)
        return None

    def doorbell(self, addr: int, data: int, device_id: int, size: int = 4):
        """A DMA write of `data` at physical `addr` by requester `device_id`: the MMIO
        callback of the ITS translation frame. A write to GITS_TRANSLATER translates; any
        other address in the frame is RES0 and does nothing (None)."""
        if addr - self.base != TRANSLATER:
            return None
        return self.translate(device_id, data & ((1 << (8 * min(size, 4))) - 1))

    # -- tables ---------------------------------------------------------------------------------
    def table(self, kind: str) -> ItsTable | None:
        """The Devices or Collections table as its GITS_BASER<n> describes it."""
        code = {"Devices": C.GITS_BASER_Type_Devices,
                "Collections": C.GITS_BASER_Type_Collections}[kind]
        f = _REG["GITS_BASER0"]
        for n in range(8):
            v = self.regs[f"GITS_BASER{n}"]
            if f.field("Type").get([v]) != code:
                continue
            d = f.decode([v])
            page = 1 << PAGE_SHIFT[d["Page_Size"]]
            return ItsTable(n, kind, bool(d["Valid"]), bool(d["Indirect"]), page,
                            d["Entry_Size"] + 1, baser_address(v), d["Size"] + 1)
        return None

    def _read_entry(self, what, index, addr, size, f, steps) -> list:
        try:
            data = self.mem.read(addr, size)
        except MemFault as e:
            steps.append(ItsStep(what, index, addr, None, {}, "abort", False))
            raise _Fail("ABORT", f"{what} read at {addr:#x} aborted: {e}") from None
        words = f.from_bytes(data)
        ok = bool(f.field("Valid").get(words))
        steps.append(ItsStep(what, index, addr, int.from_bytes(data, "little"), f.decode(words),
                             "valid" if ok else "invalid", ok))
        return words

    def _entry_address(self, kind: str, index: int, steps: list) -> int:
        """Where entry `index` of the Devices or Collections table is: reads the level-1
        entry of a two-level table. _Fail(OOR) if the table does not hold it."""
        t = self.table(kind)
        what = "device" if kind == "Devices" else "collection"
        oor = "DEVICE_OOR" if kind == "Devices" else "COLLECTION_OOR"
        if t is None:
            raise _Fail(oor, f"no {what} table: no GITS_BASER<n> has Type {kind}")
        if not t.valid:
            raise _Fail(oor, f"no {what} table: GITS_BASER{t.n}.Valid is 0")
        if index >= t.capacity:
            raise _Fail(oor, f"{what} {index:#x} is beyond the {what} table "
                             f"({t.capacity} entries in GITS_BASER{t.n})")
        if not t.indirect:
            return t.base + index * t.entry_size
        per_page = t.page_size // t.entry_size
        l1 = t.base + (index // per_page) * L1E_SIZE
        words = self._read_entry(f"L1 {what} table", index // per_page, l1, L1E_SIZE, _L1E,
                                 steps)
        if not _L1E.field("Valid").get(words):
            # No level-2 page: the ID is outside the table as allocated.
            raise _Fail(oor, f"{what} {index:#x}: level-1 entry {index // per_page} at "
                             f"{l1:#x} is not Valid (no level-2 page)")
        page = _L1E.field("Physical_Address").address(words) & ~(t.page_size - 1)
        return page + (index % per_page) * t.entry_size

    def lookup_device(self, device_id: int, steps: list) -> dict:
        """The DTE of `device_id` (decoded), or _Fail(DEVICE_OOR / UNMAPPED_DEVICE / ABORT)."""
        if device_id >= 1 << self.features.devbits or device_id < 0:
            raise _Fail("DEVICE_OOR", f"DeviceID {device_id:#x} needs more than "
                                      f"{self.features.devbits} bits (GITS_TYPER.Devbits)")
        addr = self._entry_address("Devices", device_id, steps)
        words = self._read_entry("DTE", device_id, addr, self.dte_size, self.dte_fmt, steps)
        dte = self.dte_fmt.decode(words)
        if not dte["Valid"]:
            raise _Fail("UNMAPPED_DEVICE", f"DeviceID {device_id:#x} is not mapped "
                                           f"(DTE at {addr:#x} is not Valid: no MAPD)")
        dte["ITT"] = self.dte_fmt.field("ITT_addr").address(words)
        dte["_addr"] = addr
        return dte

    def lookup_event(self, device_id: int, event_id: int, steps: list) -> tuple[dict, dict]:
        """(DTE, ITE) of (DeviceID, EventID), or _Fail(... ID_OOR / UNMAPPED_INTERRUPT)."""
        dte = self.lookup_device(device_id, steps)
        n = 1 << (dte["Size"] + 1)
        if not 0 <= event_id < n:
            raise _Fail("ID_OOR", f"EventID {event_id:#x} is beyond the ITT of DeviceID "
                                  f"{device_id:#x} ({n} events: DTE.Size={dte['Size']})")
        addr = dte["ITT"] + event_id * self.ite_size
        words = self._read_entry("ITE", event_id, addr, self.ite_size, self.ite_fmt, steps)
        ite = self.ite_fmt.decode(words)
        ite["_addr"] = addr
        if not ite["Valid"]:
            raise _Fail("UNMAPPED_INTERRUPT", f"EventID {event_id:#x} of DeviceID "
                                              f"{device_id:#x} is not mapped (ITE at "
                                              f"{addr:#x} is not Valid: no MAPTI/MAPI)")
        if ite["IntType"] != C.ITE_QEMU_IntType_physical:
            raise _Fail("UNMAPPED_INTERRUPT", f"the ITE at {addr:#x} maps a virtual LPI "
                                              f"(GICv4), which this ITS does not support")
        return dte, ite

    def _icid_oor(self, icid: int) -> None:
        if not 0 <= icid < 1 << self.features.cidbits:
            raise _Fail("COLLECTION_OOR", f"ICID {icid:#x} needs more than "
                                          f"{self.features.cidbits} bits (GITS_TYPER.CIDbits)")

    def _collection_slot(self, icid: int, steps: list) -> int | None:
        """Where collection `icid` is: None if held in the ITS, else its CTE address."""
        self._icid_oor(icid)
        if icid < self.features.hcc:
            return None
        return self._entry_address("Collections", icid, steps)

    def lookup_collection(self, icid: int, steps: list) -> int:
        """The target processor number of collection `icid`, or _Fail(COLLECTION_OOR /
        UNMAPPED_COLLECTION / ABORT)."""
        addr = self._collection_slot(icid, steps)
        if addr is None:
            valid, rd = self.hcc[icid]
            steps.append(ItsStep("collection (held in the ITS)", icid, None, None,
                                 {"Valid": int(valid), "RDbase": rd},
                                 "valid" if valid else "invalid", valid))
        else:
            words = self._read_entry("CTE", icid, addr, self.cte_size, self.cte_fmt, steps)
            cte = self.cte_fmt.decode(words)
            valid, rd = bool(cte["Valid"]), cte["RDbase"]
        if not valid:
            where = "in the ITS" if addr is None else f"at {addr:#x}"
            raise _Fail("UNMAPPED_COLLECTION", f"collection {icid:#x} is not mapped (CTE "
                                               f"{where} is not Valid: no MAPC)")
        if not self.gic.exists(rd):
            raise _Fail("PROCNUM_OOR", f"collection {icid:#x} targets redistributor {rd}, "
                                       f"but there are {len(self.gic)}")
        return rd

    # -- GITS_TRANSLATER ------------------------------------------------------------------------
    def translate(self, device_id: int, event_id: int) -> ItsTranslation:
        """A write of `event_id` to GITS_TRANSLATER by `device_id`: find the LPI and its
        target through the DTE, ITE and CTE, and make it pending there."""
        r = ItsTranslation(device_id, event_id)
        if device_id is None:
            raise ItsError("a write to GITS_TRANSLATER needs the writer's DeviceID")
        if not self.enabled:
            r.error, r.reason = "ITS_DISABLED", "GITS_CTLR.Enabled is 0: the write is ignored"
            return r
        try:
            _dte, ite = self.lookup_event(device_id, event_id, r.steps)
            r.intid, r.icid = ite["INTID"], ite["ICID"]
            r.target = self.lookup_collection(ite["ICID"], r.steps)
        except _Fail as f:
            r.error, r.reason = f.kind, f.reason
            r.error_code = ERRORS.get(f"INT_{f.kind}")
            return r
        self.gic.set_pending(r.target, r.intid)
        r.steps.append(ItsStep("redistributor", r.target, None, None,
                               {"INTID": r.intid}, f"LPI {r.intid} pending on PE {r.target}"))
        r.reason = f"LPI {r.intid} (collection {r.icid}) pending on redistributor {r.target}"
        return r

    # -- the command queue ----------------------------------------------------------------------
    def cmdq(self) -> tuple[int, int] | None:
        """(base, size in bytes) of the command queue, or None when GITS_CBASER is not Valid."""
        v = self.regs["GITS_CBASER"]
        f = _REG["GITS_CBASER"]
        if not f.field("Valid").get([v]):
            return None
        return (f.field("Physical_Address").address([v]),
                (f.field("Size").get([v]) + 1) * CMDQ_PAGE)

    def _process(self) -> None:
        """Run commands from GITS_CREADR up to GITS_CWRITER, unless disabled or stalled."""
        q = self.cmdq()
        if not self.enabled or self.stalled or q is None:
            return
        base, size = q
        wr = self.regs["GITS_CWRITER"] & C.GITS_CWRITER_Offset_MASK
        if wr >= size:
            # UNPREDICTABLE; the model stalls rather than read beyond the queue.
            self._stall(ItsCommand(wr, -1, "-", {}, error="CWRITER_OOR",
                                   reason=f"GITS_CWRITER.Offset {wr:#x} is beyond the "
                                          f"{size}-byte command queue"))
            return
        while True:
            rd = self.regs["GITS_CREADR"] & C.GITS_CREADR_Offset_MASK
            if rd == wr:
                return
            try:
                words = self.mem.read_words(base + rd, 4)
            except MemFault as e:
                self._stall(ItsCommand(rd, -1, "-", {}, error="ABORT",
                                       reason=f"command read at {base + rd:#x} aborted: {e}"))
                return
            cmd = self._execute(rd, words)
            self.log.append(cmd)
            if cmd.error and (cmd.error == "ABORT" or self.features.on_error == "stall"):
                self._stall(cmd)
                return
            if cmd.error and self.features.seis:
                self.sei = cmd
            rd = (rd + CMD_SIZE) % size
            self.regs["GITS_CREADR"] = rd

    def _stall(self, cmd: ItsCommand) -> None:
        cmd.stalled = True
        if cmd.opcode < 0:
            self.log.append(cmd)
        self.regs["GITS_CREADR"] |= C.GITS_CREADR_Stalled_MASK
        if self.features.seis:
            self.sei = cmd

    def _execute(self, offset: int, words: list) -> ItsCommand:
        ctype = _CMD.field("CommandType")
        op = ctype.get(words)
        name = ctype.value_name(op)
        if name is None or f"GITS_CMD_{name}" in GICV4_OPCODES:
            what = f"{name} (GICv4; GITS_TYPER.Virtual is 0)" if name else f"{op:#04x}"
            return ItsCommand(offset, op, name or f"{op:#04x}", {}, error="UNKNOWN_COMMAND",
                              reason=f"command {what} is not a command this ITS supports")
        f = fmt(name, "gicv3")
        cmd = ItsCommand(offset, op, name, f.decode(words))
        try:
            cmd.reason = getattr(self, f"_cmd_{name.lower()}")(cmd.fields, cmd.steps)
        except _Fail as e:
            cmd.error = e.kind if e.kind == "ABORT" else f"{name}_{e.kind}"
            cmd.error_code = ERRORS.get(cmd.error)
            cmd.reason = e.reason
        return cmd

    def _write_entry(self, addr: int, words: list, size: int, what: str) -> None:
        data = b"".join(w.to_bytes(8, "little") for w in words)[:size]
        try:
            self.mem.write(addr, data)
        except MemFault as e:
            raise _Fail("ABORT", f"{what} write at {addr:#x} aborted: {e}") from None

    def _check_pintid(self, intid: int) -> None:
        if not LPI_BASE <= intid < 1 << self.features.lpi_bits:
            raise _Fail("PHYSICALID_OOR", f"pINTID {intid} is not an LPI "
                                          f"({LPI_BASE}..{(1 << self.features.lpi_bits) - 1})")

    def _cmd_mapd(self, c: dict, steps: list) -> str:
        dev = c["DeviceID"]
        if dev >= 1 << self.features.devbits:
            raise _Fail("DEVICE_OOR", f"DeviceID {dev:#x} needs more than "
                                      f"{self.features.devbits} bits (GITS_TYPER.Devbits)")
        if c["V"] and c["Size"] > self.features.idbits - 1:
            raise _Fail("ITTSIZE_OOR", f"Size {c['Size']} asks for {c['Size'] + 1} EventID bits; "
                                       f"the ITS has {self.features.idbits} (GITS_TYPER.ID_bits)")
        addr = self._entry_address("Devices", dev, steps)
        itt = fmt("MAPD", "gicv3").field("ITT_addr").to_address(c["ITT_addr"])
        words = (self.dte_fmt.encode(Valid=1, Size=c["Size"],
                                     ITT_addr=self.dte_fmt.field("ITT_addr").from_address(itt))
                 if c["V"] else [0] * self.dte_fmt.nwords)
        self._write_entry(addr, words, self.dte_size, "DTE")
        if c["V"]:
            return (f"DeviceID {dev:#x} -> ITT at {itt:#x}, {1 << (c['Size'] + 1)} events "
                    f"(DTE at {addr:#x})")
        return f"DeviceID {dev:#x} unmapped (DTE at {addr:#x})"

    def _cmd_mapc(self, c: dict, steps: list) -> str:
        icid, rd = c["ICID"], c["RDbase"]
        if c["V"] and not self.gic.exists(rd):
            raise _Fail("PROCNUM_OOR", f"RDbase {rd} is not a redistributor "
                                       f"(there are {len(self.gic)})")
        addr = self._collection_slot(icid, steps)
        if addr is None:
            self.hcc[icid] = (bool(c["V"]), rd if c["V"] else 0)
        else:
            words = (self.cte_fmt.encode(Valid=1, RDbase=rd) if c["V"]
                     else [0] * self.cte_fmt.nwords)
            self._write_entry(addr, words, self.cte_size, "CTE")
        where = "held in the ITS" if addr is None else f"CTE at {addr:#x}"
        if c["V"]:
            return f"collection {icid:#x} -> redistributor {rd} ({where})"
        return f"collection {icid:#x} unmapped ({where})"

    def _cmd_mapti(self, c: dict, steps: list, pintid: int | None = None) -> str:
        dev, ev, icid = c["DeviceID"], c["EventID"], c["ICID"]
        intid = c["pINTID"] if pintid is None else pintid
        if dev >= 1 << self.features.devbits:
            raise _Fail("DEVICE_OOR", f"DeviceID {dev:#x} needs more than "
                                      f"{self.features.devbits} bits (GITS_TYPER.Devbits)")
        self._collection_slot(icid, steps)            # COLLECTION_OOR
        dte = self.lookup_device(dev, steps)
        n = 1 << (dte["Size"] + 1)
        if ev >= n:
            raise _Fail("ID_OOR", f"EventID {ev:#x} is beyond the ITT of DeviceID {dev:#x} "
                                  f"({n} events)")
        self._check_pintid(intid)
        addr = dte["ITT"] + ev * self.ite_size
        words = self.ite_fmt.encode(Valid=1, IntType="physical", INTID=intid, ICID=icid,
                                    Doorbell="none")
        self._write_entry(addr, words, self.ite_size, "ITE")
        return (f"DeviceID {dev:#x} EventID {ev:#x} -> LPI {intid}, collection {icid:#x} "
                f"(ITE at {addr:#x})")

    def _cmd_mapi(self, c: dict, steps: list) -> str:
        return self._cmd_mapti(c, steps, pintid=c["EventID"])

    def _cmd_movi(self, c: dict, steps: list) -> str:
        dev, ev, new = c["DeviceID"], c["EventID"], c["ICID"]
        self._icid_oor(new)
        _dte, ite = self.lookup_event(dev, ev, steps)
        old_rd = self.lookup_collection(ite["ICID"], steps)
        new_rd = self.lookup_collection(new, steps)
        self.gic.move(ite["INTID"], old_rd, new_rd)
        words = self.ite_fmt.encode(**{k: v for k, v in ite.items() if not k.startswith("_")})
        self.ite_fmt.field("ICID").put(words, new)
        self._write_entry(ite["_addr"], words, self.ite_size, "ITE")
        return (f"LPI {ite['INTID']} moved from collection {ite['ICID']:#x} (PE {old_rd}) to "
                f"{new:#x} (PE {new_rd})")

    def _cmd_movall(self, c: dict, steps: list) -> str:
        src, dst = c["RDbase1"], c["RDbase2"]
        for rd in (src, dst):
            if not self.gic.exists(rd):
                raise _Fail("PROCNUM_OOR", f"RDbase {rd} is not a redistributor "
                                           f"(there are {len(self.gic)})")
        moved = len(self.gic.pending[src]) if src != dst else 0
        self.gic.move_all(src, dst)
        return f"{moved} pending LPI(s) moved from redistributor {src} to {dst}"

    def _event_target(self, c: dict, steps: list) -> tuple[dict, int]:
        _dte, ite = self.lookup_event(c["DeviceID"], c["EventID"], steps)
        return ite, self.lookup_collection(ite["ICID"], steps)

    def _cmd_int(self, c: dict, steps: list) -> str:
        ite, rd = self._event_target(c, steps)
        self.gic.set_pending(rd, ite["INTID"])
        return f"LPI {ite['INTID']} pending on redistributor {rd}"

    def _cmd_clear(self, c: dict, steps: list) -> str:
        ite, rd = self._event_target(c, steps)
        self.gic.clear_pending(rd, ite["INTID"])
        return f"LPI {ite['INTID']} no longer pending on redistributor {rd}"

    def _cmd_discard(self, c: dict, steps: list) -> str:
        ite, rd = self._event_target(c, steps)
        self.gic.clear_pending(rd, ite["INTID"])
        self._write_entry(ite["_addr"], [0] * self.ite_fmt.nwords, self.ite_size, "ITE")
        return (f"DeviceID {c['DeviceID']:#x} EventID {c['EventID']:#x} unmapped; LPI "
                f"{ite['INTID']} no longer pending on redistributor {rd}")

    def _cmd_inv(self, c: dict, steps: list) -> str:
        ite, rd = self._event_target(c, steps)
        # No LPI configuration is cached in this model: nothing to reload.
        return f"LPI {ite['INTID']} configuration reloaded on redistributor {rd}"

    def _cmd_invall(self, c: dict, steps: list) -> str:
        rd = self.lookup_collection(c["ICID"], steps)
        return f"LPI configuration of collection {c['ICID']:#x} reloaded on redistributor {rd}"

    def _cmd_sync(self, c: dict, steps: list) -> str:
        # Every command takes effect when processed: SYNC has nothing left to wait for.
        return f"redistributor {c['RDbase']} synchronised"

    # -- a driver's view ------------------------------------------------------------------------
    def submit(self, name: str, **values) -> list[ItsCommand]:
        """Write one command at GITS_CWRITER and advance GITS_CWRITER past it (wrapping), as a
        driver does; returns the commands that this processed."""
        q = self.cmdq()
        if q is None:
            raise ItsError("GITS_CBASER is not Valid: there is no command queue")
        base, size = q
        words = encode_command(name, **values)
        wr = self.regs["GITS_CWRITER"] & C.GITS_CWRITER_Offset_MASK
        self.mem.write_words(base + wr, words)
        before = len(self.log)
        self.write("GITS_CWRITER", (wr + CMD_SIZE) % size)
        return self.log[before:]

    def _backed(self, lo: int, hi: int):
        """The parts of [lo, hi) that memory holds: on strict memory (an imported dump) only
        RAM and image regions, so a scan costs what the dump holds, not what a table claims."""
        if not getattr(self.mem, "strict", False):
            yield lo, hi
            return
        for base, size, kind in sorted(self.mem.regions()):
            a, b = max(lo, base), min(hi, base + size)
            if kind != "mmio" and a < b:
                yield a, b

    def _scan(self, base: int, count: int, size: int, valid):
        """Indexes i < count of the `size`-byte entries at base + i * size whose Valid bit
        (`valid`, a field of dword 0) is set: a bulk read of what memory holds, at most
        SCAN_MAX bytes per table, chunk by chunk (unreadable chunks are skipped)."""
        budget = SCAN_MAX
        for lo, hi in self._backed(base, base + count * size):
            first, last = -(-(lo - base) // size), (hi - base) // size
            while first < last and budget > 0:
                n = min(last - first, max(1, SCAN_CHUNK // size))
                try:
                    raw = self.mem.read(base + first * size, n * size)
                except MemFault:
                    first += n
                    continue
                budget -= n * size
                d0 = np.frombuffer(raw, dtype=np.uint8).reshape(n, size)[:, :8].copy()
                d0 = d0.view("<u8").ravel()
                hits = np.nonzero((d0 >> np.uint64(valid.lo)) & np.uint64(valid.mask))[0]
                for j in hits.tolist():
                    yield first + j
                first += n

    def _valid_slots(self, kind: str, limit: int):
        """(index, address) of the entries of the Devices or Collections table below `limit`
        whose Valid bit is set (level-2 pages only where the level-1 entry is Valid). A bulk
        scan: each hit is then read again through the lookups, with its steps."""
        t = self.table(kind)
        if t is None or not t.valid:
            return
        f = self.dte_fmt if kind == "Devices" else self.cte_fmt
        valid = f.field("Valid")
        if valid.dword != 0 or t.entry_size < 8:
            raise ItsError(f"{kind} entries of {t.entry_size} bytes: Valid is not in dword 0")
        per = t.page_size // t.entry_size
        size = t.pages * t.page_size
        if not t.indirect:
            for i in self._scan(t.base, min(size // t.entry_size, limit), t.entry_size, valid):
                yield i, t.base + i * t.entry_size
            return
        for l1 in list(self._scan(t.base, min(size // L1E_SIZE, -(-limit // per)), L1E_SIZE,
                                  _L1E.field("Valid"))):
            e = self.mem.read_u64(t.base + l1 * L1E_SIZE)
            page = _L1E.field("Physical_Address").address([e]) & ~(t.page_size - 1)
            for j in self._scan(page, min(per, limit - l1 * per), t.entry_size, valid):
                yield l1 * per + j, page + j * t.entry_size

    def collection_entries(self) -> list[tuple[int, int]]:
        """(ICID, RDbase) of every valid collection, held in the ITS or a CTE in memory
        (unreadable entries skipped), whether or not that redistributor exists."""
        out = [(i, rd) for i, (v, rd) in enumerate(self.hcc) if v]
        limit = 1 << self.features.cidbits
        for icid, addr in self._valid_slots("Collections", limit):
            if icid < self.features.hcc:
                continue
            cte = self.cte_fmt.decode(self.cte_fmt.from_bytes(self.mem.read(addr, self.cte_size)))
            out.append((icid, cte["RDbase"]))
        return out

    # The tables' valid entries, each as the read a lookup makes (an ItsStep: where, the raw
    # entry, its fields), for the views of the device table, an ITT and the collection table.
    def dte_reads(self) -> list[ItsStep]:
        """The DTE of every DeviceID whose DTE is Valid (the device table scanned in bulk)."""
        out = []
        for dev, _addr in list(self._valid_slots("Devices", 1 << self.features.devbits)):
            steps: list[ItsStep] = []
            try:
                self.lookup_device(dev, steps)
            except _Fail:
                pass
            out += [s for s in steps if s.what == "DTE"]
        return out

    def ite_reads(self, device_id: int) -> list[ItsStep]:
        """The Valid ITEs of one DeviceID's ITT (none when its DTE is not Valid)."""
        try:
            dte = self.lookup_device(device_id, [])
        except _Fail:
            return []
        out = []
        for ev in list(self._scan(dte["ITT"], 1 << (dte["Size"] + 1), self.ite_size,
                                  self.ite_fmt.field("Valid"))):
            steps: list[ItsStep] = []
            try:
                self.lookup_event(device_id, ev, steps)
            except _Fail:
                pass
            out += [s for s in steps if s.what == "ITE"]
        return out

    def cte_reads(self) -> list[ItsStep]:
        """Every valid collection: held in the ITS (ICID < HCC, no address) or a CTE."""
        out = [ItsStep("collection (held in the ITS)", i, None, None,
                       {"Valid": 1, "RDbase": rd}, "valid")
               for i, (v, rd) in enumerate(self.hcc) if v]
        for icid, _addr in list(self._valid_slots("Collections", 1 << self.features.cidbits)):
            if icid < self.features.hcc:
                continue
            steps: list[ItsStep] = []
            try:
                self.lookup_collection(icid, steps)
            except _Fail:
                pass
            out += [s for s in steps if s.what == "CTE"]
        return out

    def mappings(self) -> list[tuple[int, int, int, int, int | None]]:
        """Every mapped event: (DeviceID, EventID, INTID, ICID, target PE or None), from each
        valid DTE of the device table and its ITT (tables and ITTs scanned in bulk, at most
        SCAN_MAX bytes of each)."""
        out = []
        for dev, _addr in list(self._valid_slots("Devices", 1 << self.features.devbits)):
            try:
                dte = self.lookup_device(dev, [])
            except _Fail:
                continue
            for ev in list(self._scan(dte["ITT"], 1 << (dte["Size"] + 1), self.ite_size,
                                      self.ite_fmt.field("Valid"))):
                try:
                    _d, ite = self.lookup_event(dev, ev, [])
                except _Fail:
                    continue
                try:
                    rd = self.lookup_collection(ite["ICID"], [])
                except _Fail:
                    rd = None
                out.append((dev, ev, ite["INTID"], ite["ICID"], rd))
        return out


def encode_command(name: str, **values) -> list[int]:
    """The four words of ITS command `name` (MAPD, MAPTI, ...) with its CommandType set.
    Any command number may be given as CommandType=N to build an illegal one."""
    key = name.upper()
    if f"GITS_CMD_{key}" not in OPCODES:
        raise ItsError(f"unknown ITS command {name!r}; known: "
                       f"{', '.join(k[len('GITS_CMD_'):] for k in OPCODES)}")
    f = fmt(key, "gicv3")
    values.setdefault("CommandType", OPCODES[f"GITS_CMD_{key}"])
    return f.encode(**values)
