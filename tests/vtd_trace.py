"""QEMU 10.0's VT-d trace of the fixture (tests/fixtures/qemu_vtd) read on its own terms: the
translations it traced (with the leaf entry and domain of the IOTLB fill or hit), the
invalidation descriptors it processed, and the DMA faults it recorded. Shared by the fixture's
reference-walker test (test_vtd_fixture.py) and the import test (test_import_qemu_vtd.py): the
trace is the oracle for both.
"""
from __future__ import annotations

import lzma
import re
from pathlib import Path

from smmudbg.arch.fieldtable import fmt

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "qemu_vtd"
TRACE = lzma.decompress((FIXTURE / "trace.log.xz").read_bytes()).decode().splitlines()
CONSOLE = (FIXTURE / "console.log").read_text().splitlines()
PAGE = 4096
A_D = (1 << 5) | (1 << 6)           # accessed / dirty: set by the walks, not part of a mapping

_LINE = re.compile(r"^(?:\d+@[\d.]+:)?(\w+) ?(.*)$")
_HEX = r"(0x[0-9a-f]+)"


def events():
    for i, line in enumerate(TRACE):
        m = _LINE.match(line)
        if m:
            yield i, m.group(1), m.group(2)


def _sid(bus, dev, fn):
    return int(bus, 16) << 8 | int(dev, 16) << 3 | int(fn, 16)


def _inv_descs():
    """(trace index, type, [dword0, dword1]) of every invalidation descriptor QEMU processed.
    vtd_inv_desc prints the descriptor's bits 127:64 as "high", 63:0 as "low"."""
    out = []
    for i, name, args in events():
        if name == "vtd_inv_desc":
            m = re.fullmatch(r"invalidate desc type (\S+) high " + _HEX + " low " + _HEX, args)
            out.append((i, m.group(1), [int(m.group(3), 16), int(m.group(2), 16)]))
        elif name in ("vtd_iotlb_reset", "vtd_context_cache_reset"):
            out.append((i, "reset", [0, 0]))
    return out


def _invalidates(kind, words, did, iova):
    """Could this descriptor drop a cached translation of `iova` in domain `did`? Conservative:
    PASID-based invalidations count whatever PASID they name; any context-cache or PASID-cache
    invalidation (or a QEMU cache reset) counts for every translation."""
    def g(fmt_name, field):
        return fmt(fmt_name, "vtd").field(field).get(words)
    if kind in ("reset", "context-cache", "pasid-cache"):
        return True
    if kind in ("iotlb", "p-iotlb"):
        name = "IOTLB_INV_DSC" if kind == "iotlb" else "P_IOTLB_INV_DSC"
        gran = fmt(name, "vtd").field("G").meaning(g(name, "G"))
        if gran == "global":
            return True
        if g(name, "DID") != did:
            return False
        if gran != "page":
            return True
        base = g(name, "ADDR") << 12
        span = PAGE << g(name, "AM")
        base &= ~(span - 1)
        return base <= iova < base + span
    # waits, interrupt entry cache and device-TLB invalidations (no ATS here) change no IOTLB
    # entry; a kind this test does not know must be looked at, not ignored
    assert kind in ("wait", "iec", "device-iotlb"), f"unknown invalidation descriptor {kind!r}"
    return False


def traced_translations():
    """The last vtd_dmar_translate of each (SID, IOVA page) with the leaf entry and domain of the
    IOTLB hit or update just before it, and whether a later invalidation may have changed it."""
    last = {}
    leaf = {}
    for i, name, args in events():
        if name in ("vtd_iotlb_page_hit", "vtd_iotlb_page_update"):
            m = re.search(r"sid " + _HEX + " iova " + _HEX + " slpte " + _HEX + " domain " + _HEX,
                          args)
            sid, iova, pte, did = (int(x, 16) for x in m.groups())
            leaf[sid] = (iova, pte, did)
        elif name == "vtd_dmar_translate":
            m = re.fullmatch(r"dev (\w+):(\w+)\.(\w+) iova " + _HEX + " -> gpa " + _HEX +
                             " mask " + _HEX, args)
            sid = _sid(*m.groups()[:3])
            iova, gpa, mask = (int(x, 16) for x in m.groups()[3:])
            l_iova, pte, did = leaf[sid]
            assert l_iova & ~mask == iova & ~mask, TRACE[i]
            last[(sid, iova & ~(PAGE - 1))] = dict(index=i, sid=sid, iova=iova, gpa=gpa,
                                                   mask=mask, pte=pte, did=did)
    invs = _inv_descs()
    for t in last.values():
        t["valid"] = not any(j > t["index"] and _invalidates(k, w, t["did"], t["iova"])
                             for j, k, w in invs)
    return list(last.values())


def traced_faults():
    """[trace index, SID, fault reason, address, write, (FRCD index, high, low)] of every
    vtd_dmar_fault, with the fault recording register QEMU wrote for it (vtd_frr_new)."""
    faults = []
    for i, name, args in events():
        if name == "vtd_dmar_fault":
            m = re.fullmatch(r"sid " + _HEX + r" fault (\d+) addr " + _HEX + r" write (\d)", args)
            faults.append([i, int(m.group(1), 16), int(m.group(2)), int(m.group(3), 16),
                           m.group(4) == "1"])
        elif name == "vtd_frr_new":
            m = re.fullmatch(r"index (\d+) high " + _HEX + " low " + _HEX, args)
            faults[-1].append((int(m.group(1)), int(m.group(2), 16), int(m.group(3), 16)))
    return faults


def host_address_width():
    """The HAW the guest's kernel read from the ACPI DMAR table (console.log)."""
    return next(int(m.group(1)) for line in CONSOLE
                if (m := re.search(r"DMAR: Host address width (\d+)", line)))
