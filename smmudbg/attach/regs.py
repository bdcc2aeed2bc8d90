"""SMMU registers of a running QEMU, read with the monitor's `xp` (a CPU-like load through
QEMU's MMIO path: no side effects, no need to stop the VM).

One register per `xp`: `/1wx` for the 32-bit ones, `/1gx` for the 64-bit *_BASE ones. QEMU
answers `xp /Nwx` with N > 1 in 8-byte chunks, and its SMMUv3 reads 0 for a 32-bit register
read that way, so a register file is never read in one go.
"""
from __future__ import annotations

import re

from ..arch.fieldtable import fmt
from ..arch.smmuv3 import registers as R
from .qmp import AttachError

# What the importer uses (ID registers, control, stream table, queues, errors), in the
# architecture's spelling. SMMU_EVENTQ_PROD/CONS are read in page 1, where they live.
NAMES = ("SMMU_IDR0", "SMMU_IDR1", "SMMU_IDR2", "SMMU_IDR3", "SMMU_IDR4", "SMMU_IDR5",
         "SMMU_IIDR", "SMMU_AIDR", "SMMU_CR0", "SMMU_CR0ACK", "SMMU_CR1", "SMMU_CR2",
         "SMMU_GBPA", "SMMU_IRQ_CTRL", "SMMU_IRQ_CTRLACK", "SMMU_GERROR", "SMMU_GERRORN",
         "SMMU_STRTAB_BASE", "SMMU_STRTAB_BASE_CFG", "SMMU_CMDQ_BASE", "SMMU_CMDQ_PROD",
         "SMMU_CMDQ_CONS", "SMMU_EVENTQ_BASE", "SMMU_EVENTQ_PROD", "SMMU_EVENTQ_CONS")
# All but the ID registers (which never change once read).
STATE = tuple(n for n in NAMES if not n.startswith(("SMMU_IDR", "SMMU_IIDR", "SMMU_AIDR")))
# What `watch` polls.
WATCHED = ("SMMU_CMDQ_PROD", "SMMU_CMDQ_CONS", "SMMU_EVENTQ_PROD", "SMMU_GERROR",
           "SMMU_GERRORN")
# Registers whose change means the tables moved: the view is rebuilt.
LAYOUT = ("SMMU_CR0", "SMMU_STRTAB_BASE", "SMMU_STRTAB_BASE_CFG", "SMMU_CMDQ_BASE",
          "SMMU_EVENTQ_BASE", "SMMU_GBPA")

_XP = re.compile(r"^\s*([0-9a-fA-F]+):\s*0x([0-9a-fA-F]+)\s*$")


def xp_command(addr: int, size: int) -> str:
    return f"xp /1{'gx' if size == 8 else 'wx'} {addr:#x}"


def parse_xp(text: str, addr: int, where: str) -> int:
    """The value of one `xp /1wx` or `/1gx` answer ("0000000009050000: 0x0d40101a")."""
    m = _XP.match(text.strip().splitlines()[0] if text.strip() else "")
    if not m or int(m.group(1), 16) != addr:
        first = text.strip().splitlines()[0] if text.strip() else "nothing"
        raise AttachError(f"{where}: xp {addr:#x} answered {first!r}")
    return int(m.group(2), 16)


def read_reg(qmp, smmu_base: int, name: str) -> int:
    off = R.OFFSETS[name]
    size = fmt(name).size
    addr = smmu_base + off
    return parse_xp(qmp.hmp(xp_command(addr, size)), addr, qmp.path)


def read_regs(qmp, smmu_base: int, names=NAMES) -> dict[str, int]:
    return {n: read_reg(qmp, smmu_base, n) for n in names}


def check_smmu(regs: dict, smmu_base: int, where: str) -> None:
    """An SMMUv3 answers with plausible ID registers: IDR1 has a StreamID size and a queue
    size, IDR5 an output address size and a granule; unbacked MMIO reads 0 (or all ones)."""
    idr1, idr5 = regs.get("SMMU_IDR1", 0), regs.get("SMMU_IDR5", 0)
    granules = sum(fmt("SMMU_IDR5").field(g).get([idr5]) for g in ("GRAN4K", "GRAN16K", "GRAN64K"))
    if idr1 in (0, 0xFFFFFFFF) or idr5 in (0, 0xFFFFFFFF) or not granules:
        raise AttachError(f"attach: {where}: no SMMUv3 at {smmu_base:#x} (SMMU_IDR1={idr1:#x}, "
                          f"SMMU_IDR5={idr5:#x}; give smmu-base=ADDR: the virt board's is "
                          f"0x9050000)")
