"""The registers of an Intel VT-d remapping unit from a register file (REGS.json).

Keys are the registers' names as QEMU and Linux spell them, DMAR_ + the spec's name
(smmudbg/arch/vtd/registers.py): DMAR_VER_REG, DMAR_CAP_REG, DMAR_GSTS_REG, DMAR_RTADDR_REG,
DMAR_IRTA_REG, ... The fault recording registers are DMAR_FRCD_REG[n] (128 bits, n = 0 ..
CAP_REG.NFR); DMAR_FRCD_REG alone is DMAR_FRCD_REG[0]. Values are integers or strings ("0x..."
hex, or decimal). A register's value must fit its width in the field tables.

Registers not in the file are "not provided" (VtdRegs.get -> None), never read as 0: what the
snapshot did not capture is not invented. Errors are VtdRegsError, one line naming the file and
the register; bits no field of the register's table covers are warnings, not errors (the value
is what the hardware read).

    regs = load_vtd_regs("tests/fixtures/qemu_vtd/regs.json")
    regs.get("CAP_REG"), regs.get("FRCD_REG[0]"), regs.missing(), regs.warnings
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

from ..arch.fieldtable import fmt
from ..arch.vtd.registers import FORMATS, IOTLB_OFFSETS, OFFSETS
from ..errors import SmmuDbgError, brief
from ..textfile import display_name, read_text

__all__ = ["VtdRegsError", "VtdRegs", "REGISTERS", "parse_vtd_regs", "load_vtd_regs"]

MAX_REGS_BYTES = 1 << 20
#: Every register a file may give (FRCD_REG as FRCD_REG[n]), in register-offset order.
REGISTERS = tuple(sorted(OFFSETS, key=OFFSETS.get)) + tuple(IOTLB_OFFSETS) + ("FRCD_REG",)
_KEY = re.compile(r"DMAR_([A-Z0-9_]+?)(?:\[(\d+)\])?")
_MAX_FRCD = 256             # CAP_REG.NFR is 8 bits: at most 256 fault recording registers


class VtdRegsError(SmmuDbgError):
    """A malformed VT-d register file: the message names the file and the register."""


@dataclass
class VtdRegs:
    """Register values by spec name ('CAP_REG', 'FRCD_REG[0]'); absent = not provided."""
    values: dict = field(default_factory=dict)
    source: str = ""
    warnings: list = field(default_factory=list)

    def get(self, name: str) -> int | None:
        """The value, or None when the file does not provide this register."""
        return self.values.get(name)

    def frcd(self) -> dict[int, int]:
        """The fault recording registers given: {n: 128-bit value}."""
        out = {}
        for k, v in self.values.items():
            if k.startswith("FRCD_REG["):
                out[int(k[9:-1])] = v
        return dict(sorted(out.items()))

    def missing(self) -> list[str]:
        """Registers of the field tables the file does not provide (fault recording registers:
        those below CAP_REG.NFR + 1 when CAP_REG is given)."""
        out = [n for n in REGISTERS if n != "FRCD_REG" and n not in self.values]
        cap = self.values.get("CAP_REG")
        if cap is not None:
            nfr = fmt("CAP_REG", "vtd").field("NFR").get([cap]) + 1
            out += [f"FRCD_REG[{n}]" for n in range(nfr) if f"FRCD_REG[{n}]" not in self.values]
        return out

    def words(self, name: str) -> list | None:
        """The value as the field tables' little-endian 64-bit words (FRCD_REG[n]: two)."""
        v = self.get(name)
        if v is None:
            return None
        return [v & (2**64 - 1), v >> 64] if name.startswith("FRCD_REG") else [v]


def _value(raw, key: str, bits: int, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise VtdRegsError(f"{where}: {brief(key)}: expected an integer or a hex string")
    if isinstance(raw, str):
        t = raw.strip().replace("_", "")
        try:
            v = int(t, 0) if t[:2].lower() in ("0x", "0b", "0o") else int(t, 10)
        except ValueError:
            raise VtdRegsError(f"{where}: {brief(key)}: {brief(raw)} is not a number (write "
                               f"hex as \"0x...\")") from None
    else:
        v = raw
    if v < 0:
        raise VtdRegsError(f"{where}: {brief(key)}: {brief(raw)} is negative")
    if v >> bits:
        raise VtdRegsError(f"{where}: {brief(key)}: {brief(v)} does not fit in the {bits}-bit "
                           f"register")
    return v


def parse_vtd_regs(obj, where: str = "register file") -> VtdRegs:
    """Check a parsed register file (a JSON object) against the VT-d field tables."""
    if not isinstance(obj, dict):
        raise VtdRegsError(f"{where}: expected a JSON object of DMAR_* registers")
    regs = VtdRegs(source=where)
    for key, raw in obj.items():
        m = _KEY.fullmatch(key.strip().upper()) if isinstance(key, str) else None
        if m is None:
            raise VtdRegsError(f"{where}: {brief(key)} is not a VT-d register name (DMAR_ + "
                               f"the spec's name, e.g. DMAR_CAP_REG, DMAR_FRCD_REG[0])")
        name, index = m.group(1), m.group(2)
        if name not in FORMATS or name not in REGISTERS:
            raise VtdRegsError(f"{where}: unknown VT-d register {brief(key)} (the names are "
                               f"DMAR_ + those of VT-d chapter 11, e.g. DMAR_GSTS_REG)")
        if name == "FRCD_REG":
            n = int(index or 0)
            if n >= _MAX_FRCD:
                raise VtdRegsError(f"{where}: {brief(key)}: fault recording register {n} is "
                                   f"beyond {_MAX_FRCD - 1} (CAP_REG.NFR is 8 bits)")
            name = f"FRCD_REG[{n}]"
        elif index is not None:
            raise VtdRegsError(f"{where}: {brief(key)}: only DMAR_FRCD_REG takes an index")
        if name in regs.values:
            raise VtdRegsError(f"{where}: {brief(key)} is given twice")
        f = fmt(name.split("[")[0], "vtd")
        regs.values[name] = _value(raw, key, 8 * f.size, where)
    _check(regs, where)
    return regs


def _check(regs: VtdRegs, where: str) -> None:
    cap = regs.values.get("CAP_REG")
    if cap is not None:
        nfr = fmt("CAP_REG", "vtd").field("NFR").get([cap]) + 1
        extra = [n for n in regs.frcd() if n >= nfr]
        if extra:
            raise VtdRegsError(f"{where}: DMAR_FRCD_REG[{extra[0]}]: CAP_REG.NFR={nfr - 1} "
                               f"gives only {nfr} fault recording register(s)")
    for name in regs.values:
        f = fmt(name.split("[")[0], "vtd")
        for dw, mask in f.reserved_bits(regs.words(name)):
            regs.warnings.append(f"DMAR_{name}: bits {mask << (64 * dw):#x} set outside any "
                                 f"field of {f.name}")


def load_vtd_regs(path) -> VtdRegs:
    """Read and check a VT-d register file."""
    text = read_text(path, VtdRegsError, "register file", MAX_REGS_BYTES)
    name = display_name(os.fspath(path))
    try:
        obj = json.loads(text, object_pairs_hook=_no_dups(name))
    except VtdRegsError:
        raise
    except ValueError as e:
        raise VtdRegsError(f"{name}: not valid JSON: {str(e).splitlines()[0]}") from None
    except RecursionError:
        raise VtdRegsError(f"{name}: not valid JSON: nested too deeply") from None
    return parse_vtd_regs(obj, name)


def _no_dups(name):
    def hook(pairs):
        seen = set()
        for k, _ in pairs:
            if k in seen:
                raise VtdRegsError(f"{name}: {brief(k)} is given twice")
            seen.add(k)
        return dict(pairs)
    return hook
