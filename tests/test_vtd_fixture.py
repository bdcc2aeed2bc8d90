"""The QEMU VT-d fixture (tests/fixtures/qemu_vtd, made by scripts/make_vtd_fixture.sh) against
QEMU's own trace: smmudbg/vtd_refwalk.py over the snapshot's memory must reproduce every DMA
translation QEMU traced that is still valid at the snapshot, the recorded DMA fault, and every
virtio MSI QEMU remapped. Also the DMAR register file parser (smmudbg/importers/qemu_vtd_regs.py).

The trace is read on its own terms (QEMU 10.0's vtd_* event formats, tests/vtd_trace.py); the
memory with pyelftools. Nothing boots: the stored outputs are the oracle.
"""
from __future__ import annotations

import io
import json
import lzma
import re
import pytest
from elftools.elf.elffile import ELFFile

from smmudbg import vtd_refwalk as RW
from smmudbg.arch.fieldtable import fmt
from smmudbg.importers.qemu_vtd_regs import (REGISTERS, VtdRegsError, load_vtd_regs,
                                             parse_vtd_regs)
from vtd_trace import (A_D, CONSOLE, FIXTURE, PAGE, _HEX, _inv_descs, _sid, events,
                       host_address_width, traced_faults, traced_translations)


class ElfMem:
    """Guest-physical reads over a dump-guest-memory ELF (PT_LOAD p_paddr; p_memsz beyond
    p_filesz reads as zero). Addresses outside every segment raise (the walker's 'no memory')."""

    def __init__(self, data: bytes):
        elf = ELFFile(io.BytesIO(data))
        self.segs = []
        for s in elf.iter_segments():
            if s["p_type"] == "PT_LOAD":
                self.segs.append((s["p_paddr"], s["p_memsz"], s.data()))

    def read64(self, pa):
        for base, memsz, data in self.segs:
            if base <= pa and pa + 8 <= base + memsz:
                return int.from_bytes(data[pa - base:pa - base + 8].ljust(8, b"\0"), "little")
        raise KeyError(f"no memory at {pa:#x}")

    def write64(self, pa, value):
        raise AssertionError(f"the snapshot is read-only (write at {pa:#x})")


@pytest.fixture(scope="module")
def mem():
    return ElfMem(lzma.decompress((FIXTURE / "memory.elf.xz").read_bytes()))


@pytest.fixture(scope="module")
def regs():
    return load_vtd_regs(FIXTURE / "regs.json")


@pytest.fixture(scope="module")
def unit(regs):
    # HAW is not a register: the platform's DMAR table gives it (Linux prints it).
    haw = host_address_width()
    return RW.Unit.from_registers(regs.values, haw=haw)


def test_translations_still_valid_are_reproduced(mem, unit):
    ts = traced_translations()
    valid = [t for t in ts if t["valid"]]
    # the live mappings of the snapshot: both devices' virtqueues and virtio-net's RX buffers
    assert len(valid) >= 10 and {t["sid"] for t in valid} == {0x0018, 0x0100}
    assert len(ts) > len(valid)         # strict mode: the disk's data buffers were unmapped
    for t in valid:
        where = f"sid {t['sid']:#06x} iova {t['iova']:#x} (trace line {t['index'] + 1})"
        r = RW.translate(mem, unit, t["sid"], t["iova"], apply_ad=False)
        assert r.ok, f"{where}: {r.kind} {r.fault}"
        assert r.pgtt == "first_stage" and r.pasid == 0, where
        assert r.size - 1 == t["mask"], where
        assert r.output == t["gpa"] | (t["iova"] & t["mask"]), where
        assert r.did == t["did"], where
        # the walker ends at the entry QEMU cached (A/D aside: QEMU sets them as it walks)
        assert r.steps[-1].what == "fs"
        assert r.steps[-1].value & ~A_D == t["pte"] & ~A_D, where
        # permissions: the upper levels allow writes (Linux sets R/W in every table entry), so
        # the leaf's R/W decides (first stage: present = readable; XD absent = no execute
        # request without PASID to check)
        uppers = [s for s in r.steps if s.what == "fs"][:-1]
        assert all(s.value & 2 for s in uppers), where
        assert r.perm[:2] == "r" + ("w" if t["pte"] & 2 else "-"), where
        w = RW.translate(mem, unit, t["sid"], t["iova"], write=True, apply_ad=False)
        assert w.ok == bool(t["pte"] & 2), where


def test_recorded_fault_comes_back_with_its_reason(mem, unit, regs):
    faults = traced_faults()
    assert len(faults) == 1
    _, sid, reason, addr, write, (index, hi, lo) = faults[0]
    # the guest pointed virtio-net's MSI-X entry 1 at IOVA 0x1000 (console.log)
    assert (sid, addr, write) == (0x0100, 0x1000, True)
    r = RW.translate(mem, unit, sid, addr, write=write, apply_ad=False)
    assert r.kind == "fault" and r.fault.recorded
    assert r.fault.reason == reason == 0x71 and r.fault.name == "SFS_2"
    assert (r.fault.fi, r.fault.sid, r.fault.write) == (addr & ~(PAGE - 1), sid, True)
    # the fault recording register the snapshot holds is the one QEMU wrote
    frcd = fmt("FRCD_REG", "vtd")
    words = regs.words(f"FRCD_REG[{index}]")
    got = {k: frcd.field(k).get(words) for k in ("FR", "SID", "FI", "T1", "T2", "AT")}
    assert got == {"FR": r.fault.reason, "SID": sid, "FI": addr >> 12, "T1": 0, "T2": 0,
                   "AT": 0}
    f_bit = frcd.field("F")
    assert [lo, hi & ~(f_bit.mask << f_bit.lo)] == [words[0], words[1] & ~(f_bit.mask << f_bit.lo)]
    # Linux's fault handler cleared F (W1C) after logging it
    assert f_bit.get(words) == 0
    assert any("fault reason 0x71" in line for line in CONSOLE)


def virtio_msix():
    """{(address, data): SID} of every virtio MSI-X entry the guest programmed (console.log)."""
    out = {}
    for line in CONSOLE:
        m = re.search(r"SMMUDBG: msix \w+:(\w+):(\w+)\.(\w) \d+ addr=(0x\w+) upper=(0x\w+) "
                      r"data=(0x\w+)", line)
        if m and int(m.group(4), 16):
            out[(int(m.group(5), 16) << 32 | int(m.group(4), 16), int(m.group(6), 16))] = \
                _sid(*m.groups()[:3])
    return out


def traced_msis():
    """Each virtio MSI QEMU remapped: request, IRTE read, remap result, delivered message."""
    msix = virtio_msix()
    out, cur = [], None
    for i, name, args in events():
        if name == "vtd_ir_remap_msi_req":
            a, d = (int(x, 16) for x in re.fullmatch("addr " + _HEX + " data " + _HEX,
                                                     args).groups())
            cur = {"index_line": i, "addr": a, "data": d} if (a, d) in msix else None
            if cur:
                cur["sid"] = msix[(a, d)]
        elif cur is None:
            continue
        elif name == "vtd_ir_irte_get":
            m = re.fullmatch(r"index (\d+) low " + _HEX + " high " + _HEX, args)
            # QEMU prints the IRTE's bits 127:64 as "low" and 63:0 as "high"
            cur["irte"] = (int(m.group(3), 16), int(m.group(2), 16))
        elif name == "vtd_ir_remap":
            m = re.fullmatch(r"index (\d+) trigger (\d+) vector (\d+) deliver (\d+) dest " + _HEX
                             + r" mode (\d+)", args)
            cur.update(index=int(m.group(1)), trigger=int(m.group(2)), vector=int(m.group(3)),
                       deliver=int(m.group(4)), dest=int(m.group(5), 16), mode=int(m.group(6)))
        elif name == "vtd_ir_remap_type":
            cur["type"] = args
        elif name == "vtd_ir_remap_msi":
            m = re.fullmatch(r"\(addr " + _HEX + ", data " + _HEX + r"\) -> \(addr " + _HEX +
                             ", data " + _HEX + r"\)", args)
            cur["out_addr"], cur["out_data"] = int(m.group(3), 16), int(m.group(4), 16)
            out.append(cur)
            cur = None
    return out


def _iec_after(index_line, irte_index):
    iec = fmt("IEC_INV_DSC", "vtd")
    for j, kind, words in _inv_descs():
        if j <= index_line or kind not in ("iec", "reset"):
            continue
        if kind == "reset" or iec.field("G").get(words) == 0:
            return True
        first = iec.field("IIDX").get(words)
        if first <= irte_index < first + (1 << iec.field("IM").get(words)):
            return True
    return False


def test_virtio_msis_resolve_through_the_irte(mem, unit):
    msis = traced_msis()
    assert {m["sid"] for m in msis} == {0x0018, 0x0100}
    last = {}
    for m in msis:
        assert m["type"] == "MSI"
        last[(m["sid"], m["addr"], m["data"])] = m
    checked, dests = 0, set()
    for (sid, addr, data), m in last.items():
        if _iec_after(m["index_line"], m["index"]):
            continue                    # the IRTE may have changed since
        where = f"MSI {addr:#x}/{data:#x} from {sid:#06x} (trace line {m['index_line'] + 1})"
        r = RW.remap_msi(mem, unit, sid, addr, data)
        assert r.ok and r.remapped and not r.posted, f"{where}: {r.fault}"
        assert r.index == m["index"], where
        assert r.steps[-1].value == m["irte"], where
        assert (r.vector, r.dest) == (m["vector"], m["dest"]), where
        assert r.trigger == ("level" if m["trigger"] else "edge"), where
        assert r.delivery == RW.DLM_NAMES[m["deliver"]], where
        assert r.dest_mode == ("logical" if m["mode"] else "physical"), where
        # what QEMU delivered: a compatibility-format message to the local APIC
        assert (m["out_data"] & 0xFF, (m["out_addr"] >> 12) & 0xFF) == (r.vector, r.dest), where
        checked += 1
        dests.add(r.dest)
    # the vectors that fired (blk: req.0, req.1; net: config, input.0, output.0) and whose IRTE
    # no later invalidation touched; with two CPUs they target both local APICs
    assert checked >= 4 and dests == {0, 1}


# ---- the DMAR register file -------------------------------------------------------------------

def test_fixture_registers_parse(regs):
    assert regs.source.endswith("regs.json") and regs.warnings == []
    assert regs.missing() == []
    cap = fmt("CAP_REG", "vtd")
    assert cap.field("NFR").get([regs.get("CAP_REG")]) + 1 == len(regs.frcd())
    rt = fmt("RTADDR_REG", "vtd")
    assert rt.field("TTM").meaning(rt.field("TTM").get([regs.get("RTADDR_REG")])).startswith(
        "scalable")
    raw = json.loads((FIXTURE / "regs.json").read_text())
    assert all(k.startswith("DMAR_") for k in raw)
    assert {k[5:].split("[")[0] for k in raw} == set(REGISTERS)


def test_missing_registers_are_not_provided():
    r = parse_vtd_regs({"DMAR_GSTS_REG": "0xc7000000"}, "g.json")
    assert r.get("GSTS_REG") == 0xC7000000
    assert r.get("CAP_REG") is None and r.get("FRCD_REG[0]") is None
    assert "CAP_REG" in r.missing() and "GSTS_REG" not in r.missing()


@pytest.mark.parametrize("obj, message", [
    ({"DMAR_FOO_REG": 1}, "r.json: unknown VT-d register 'DMAR_FOO_REG'"),
    ({"CAP_REG": 1}, "r.json: 'CAP_REG' is not a VT-d register name"),
    ({"DMAR_GSTS_REG": "0x100000000"}, "r.json: 'DMAR_GSTS_REG': 0x100000000 does not fit in "
                                       "the 32-bit register"),
    ({"DMAR_CAP_REG": -1}, "r.json: 'DMAR_CAP_REG': -1 is negative"),
    ({"DMAR_CAP_REG": "zz"}, "r.json: 'DMAR_CAP_REG': 'zz' is not a number"),
    ({"DMAR_CAP_REG": [1]}, "r.json: 'DMAR_CAP_REG': expected an integer or a hex string"),
    ({"DMAR_GSTS_REG[1]": 0}, "r.json: 'DMAR_GSTS_REG[1]': only DMAR_FRCD_REG takes an index"),
    ({"DMAR_FRCD_REG[0]": 1, "DMAR_FRCD_REG": 2}, "r.json: 'DMAR_FRCD_REG' is given twice"),
    ({"DMAR_CAP_REG": 0, "DMAR_FRCD_REG[1]": 0},
     "r.json: DMAR_FRCD_REG[1]: CAP_REG.NFR=0 gives only 1 fault recording register(s)"),
    ([1, 2], "r.json: expected a JSON object"),
])
def test_register_file_errors_name_the_register(obj, message):
    with pytest.raises(VtdRegsError) as e:
        parse_vtd_regs(obj, "r.json")
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_register_file_json_errors(tmp_path):
    p = tmp_path / "r.json"
    p.write_text('{"DMAR_CAP_REG": 1, "DMAR_CAP_REG": 2}')
    with pytest.raises(VtdRegsError, match=r"r\.json: 'DMAR_CAP_REG' is given twice"):
        load_vtd_regs(p)
    p.write_text("{")
    with pytest.raises(VtdRegsError, match=r"r\.json: not valid JSON"):
        load_vtd_regs(p)


def test_bits_outside_every_field_are_warnings():
    # GSTS_REG bits 22:0 are reserved
    r = parse_vtd_regs({"DMAR_GSTS_REG": "0xc7000001"}, "r.json")
    assert r.get("GSTS_REG") == 0xC7000001
    assert r.warnings == ["DMAR_GSTS_REG: bits 0x1 set outside any field of GSTS_REG"]
