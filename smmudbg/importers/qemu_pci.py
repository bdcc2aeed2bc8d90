"""Device names for an imported QEMU guest, from the monitor's `info pci` text.

QEMU's HMP `info pci` (hw/pci/pci-hmp-cmds.c) prints each function as

      Bus  0, device   1, function 0:
        SCSI controller: PCI device 1af4:1042
          ...
          id "disk0"

On the arm virt board the SMMU's StreamID of a function is its PCI Requester ID (bus << 8 |
device << 3 | function: the IORT/DT iommu-map is the identity there). A function is named by its
`-device ...,id=` when it has one, else by the QEMU device model its vendor:device ID stands
for (virtio-net, virtio-blk, ...), else by its class; repeated names get the BDF appended.
The file is optional: next to REGS.json as info-pci.txt (or given to import_qemu as pci=).
"""
from __future__ import annotations

import re

from ..textfile import read_text

class _Unreadable(Exception):
    pass


PCI_FILES = ("info-pci.txt", "info_pci.txt", "pci.txt")
MAX_PCI_BYTES = 4 << 20

# vendor:device IDs of QEMU's device models (QEMU include/hw/pci/pci_ids.h and virtio's
# modern IDs 0x1040 + device type, virtio 1.x spec 4.1.2)
KNOWN = {(0x1AF4, 0x1000): "virtio-net", (0x1AF4, 0x1001): "virtio-blk",
         (0x1AF4, 0x1041): "virtio-net", (0x1AF4, 0x1042): "virtio-blk",
         (0x1AF4, 0x1043): "virtio-console", (0x1AF4, 0x1044): "virtio-rng",
         (0x1AF4, 0x1048): "virtio-scsi", (0x1AF4, 0x1050): "virtio-gpu",
         (0x1B36, 0x0008): "gpex-host", (0x1B36, 0x000C): "pcie-root-port",
         (0x1B36, 0x000D): "qemu-xhci", (0x1B36, 0x0010): "nvme", (0x8086, 0x10D3): "e1000e"}

_HEAD = re.compile(r"^\s*Bus\s+(\d+),\s*device\s+(\d+),\s*function\s+(\d+):\s*$")
_DEV = re.compile(r"^\s*(.+?):\s*PCI device ([0-9a-fA-F]{4}):([0-9a-fA-F]{4})\s*$")
_ID = re.compile(r'^\s*id "(.*)"\s*$')


def parse_info_pci(text: str, where: str = "info pci") -> tuple[list[dict], list[str]]:
    """([{rid, bdf, desc, vendor, device, id}], warnings) from `info pci` text."""
    out, warnings, cur = [], [], None
    for n, line in enumerate(text.splitlines(), 1):
        m = _HEAD.match(line)
        if m:
            bus, dev, fn = (int(x) for x in m.groups())
            if bus > 255 or dev > 31 or fn > 7:
                warnings.append(f"{where}:{n}: Bus {bus}, device {dev}, function {fn} is not "
                                f"a PCI address: skipped")
                cur = None
                continue
            cur = {"rid": bus << 8 | dev << 3 | fn, "bdf": f"{bus:02x}:{dev:02x}.{fn}",
                   "desc": None, "vendor": None, "device": None, "id": ""}
            out.append(cur)
            continue
        if cur is None:
            continue
        m = _DEV.match(line)
        if m and cur["desc"] is None:
            cur["desc"], cur["vendor"], cur["device"] = \
                m.group(1), int(m.group(2), 16), int(m.group(3), 16)
            continue
        m = _ID.match(line)
        if m:
            cur["id"] = m.group(1)
    if text.strip() and not out:
        warnings.append(f"{where}: no 'Bus N, device N, function N:' line: not `info pci` "
                        f"output, no device names taken from it")
    return out, warnings


def device_names(funcs: list[dict]) -> dict[int, str]:
    """{RID: name}: the -device id, else the QEMU model name, else the class; unique."""
    base = {}
    for f in funcs:
        base[f["rid"]] = f["id"] or KNOWN.get((f["vendor"], f["device"])) or \
            re.sub(r"[^a-z0-9]+", "-", (f["desc"] or "pci").lower()).strip("-")
    used = list(base.values())
    return {f["rid"]: base[f["rid"]] if used.count(base[f["rid"]]) == 1
            else f"{base[f['rid']]}@{f['bdf']}" for f in funcs}


def load_info_pci(path: str) -> tuple[dict[int, str], list[str]]:
    """Device names by RID from an `info pci` file, and warnings (never an error: the file
    only adds names)."""
    try:
        text = read_text(path, _Unreadable, "`info pci` text", MAX_PCI_BYTES)
    except _Unreadable as e:            # optional input: a warning, not a failed import
        return {}, [str(e)]
    funcs, warnings = parse_info_pci(text, path)
    return device_names(funcs), warnings
