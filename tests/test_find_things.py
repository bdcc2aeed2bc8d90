"""Find things (issue 14, item 5): shared domains in topology, device names from QEMU `info pci`,
strtab filters, registers a snapshot did not give shown as not provided."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from smmudbg.importers.qemu_pci import device_names, parse_info_pci
from smmudbg.render import render_text
from smmudbg.session import Session

FIXTURE = Path(__file__).parent / "fixtures" / "qemu"
MEM = FIXTURE / "memory.elf.xz"
REGS = FIXTURE / "regs.json"

# `info pci` as QEMU's hw/pci/pci-hmp-cmds.c prints it, written for the fixture's command line
# (README: 00:01.0 virtio-blk-pci, 00:02.0 pcie-root-port id=rp0, 01:00.0 virtio-net-pci
# behind it; the host bridge at 00:00.0). Only the lines the parser reads matter; BARs omitted.
INFO_PCI = """\
  Bus  0, device   0, function 0:
    Host bridge: PCI device 1b36:0008
      PCI subsystem 1af4:1100
      id ""
  Bus  0, device   1, function 0:
    SCSI controller: PCI device 1af4:1042
      PCI subsystem 1af4:1100
      IRQ 0, pin A
      id ""
  Bus  0, device   2, function 0:
    PCI bridge: PCI device 1b36:000c
      IRQ 0, pin A
      BUS 0.
      secondary bus 1.
      subordinate bus 1.
      id "rp0"
  Bus  1, device   0, function 0:
    Ethernet controller: PCI device 1af4:1041
      PCI subsystem 1af4:1100
      IRQ 0, pin A
      id ""
"""


def imported(regs=REGS):
    s = Session()
    out = s.execute(f"import qemu {MEM} --regs {regs}")
    assert out.ok, out.error
    return s, out.result.data


# ---------------------------------------------------------------------------------------------
# registers not provided
# ---------------------------------------------------------------------------------------------
def test_registers_missing_from_regs_json_are_not_provided():
    given = set(json.loads(REGS.read_text()))
    s, _ = imported()
    rows = {r["name"]: r for r in s.run("regs smmu0").data["registers"]}
    assert rows["SMMU_IIDR"]["provided"] is False and rows["SMMU_IIDR"]["value"] is None
    assert rows["SMMU_STATUSR"]["value"] is None
    assert rows["SMMU_IDR0"] == dict(rows["SMMU_IDR0"], value=0x0D40101A, provided=True)
    # REGS.json spells the event queue SMMU_EVTQ_*: given, under the architected name
    assert rows["SMMU_EVENTQ_BASE"]["value"] == 0x400000004BC0000F
    # CR0ACK follows the CR0 that was given
    assert rows["SMMU_CR0ACK"]["value"] == 0xD
    not_given = {n for n, r in rows.items() if not r["provided"]}
    assert not_given and all(n not in given for n in not_given)
    assert "SMMU_IDR1" not in not_given and "SMMU_GBPA" not in not_given
    one = s.run("regs smmu0 IIDR").data
    assert one["provided"] is False and one["value"] is None and one["fields"] == []
    text = render_text(s.run("regs smmu0"), width=None)
    assert "SMMU_IIDR" in text and "not provided" in text
    line = next(x for x in text.splitlines() if x.startswith("SMMU_AIDR"))
    assert "not provided" in line and "0x" not in line.split()[-1]


def test_a_modeled_smmu_provides_every_register():
    rows = Session().run("regs smmu0").data["registers"]
    assert all(r["provided"] and r["value"] is not None for r in rows)


# ---------------------------------------------------------------------------------------------
# device names from info pci
# ---------------------------------------------------------------------------------------------
def test_parse_info_pci():
    funcs, warnings = parse_info_pci(INFO_PCI)
    assert warnings == []
    assert [(f["rid"], f["vendor"], f["device"], f["id"]) for f in funcs] == [
        (0x0, 0x1B36, 0x0008, ""), (0x8, 0x1AF4, 0x1042, ""), (0x10, 0x1B36, 0x000C, "rp0"),
        (0x100, 0x1AF4, 0x1041, "")]
    assert device_names(funcs) == {0x0: "gpex-host", 0x8: "virtio-blk", 0x10: "rp0",
                                   0x100: "virtio-net"}


def test_duplicate_names_get_the_bdf():
    funcs, _ = parse_info_pci(INFO_PCI.replace("1af4:1041", "1af4:1042"))
    names = device_names(funcs)
    assert names[0x8] == "virtio-blk@00:01.0" and names[0x100] == "virtio-blk@01:00.0"


def test_import_names_devices_from_info_pci_next_to_regs(tmp_path):
    shutil.copy(REGS, tmp_path / "regs.json")
    (tmp_path / "info-pci.txt").write_text(INFO_PCI)
    s, rep = imported(tmp_path / "regs.json")
    assert rep["pci"].endswith("info-pci.txt")
    assert [(x["sid"], x["device"]) for x in rep["streams"]] == [
        (0x8, "virtio-blk"), (0x10, "rp0"), (0x100, "virtio-net")]
    assert s.run("walk virtio-blk 0x1000 dry").data["sid"] == 0x8
    rows = s.run("strtab smmu0 device=virtio-net").data["entries"]
    assert [(r["sid"], r["device"]) for r in rows] == [(0x100, "virtio-net")]
    topo = s.run("topology").data
    assert [x["name"] for x in topo["streams"]] == ["virtio-blk", "rp0", "virtio-net"]


def test_bad_info_pci_is_a_warning(tmp_path):
    shutil.copy(REGS, tmp_path / "regs.json")
    (tmp_path / "info-pci.txt").write_text("this is not it\n")
    s, rep = imported(tmp_path / "regs.json")
    assert any("info pci" in w for w in rep["warnings"])
    assert all(x["device"] is None for x in rep["streams"])


# ---------------------------------------------------------------------------------------------
# shared domains in topology
# ---------------------------------------------------------------------------------------------
def test_topology_groups_streams_sharing_a_domain_on_the_dump():
    # README: the root port (0x10) and virtio-net (0x100) share one domain: same CD, ASID 1,
    # TTB0 0x4816d000; virtio-blk (0x8) has ASID 2 alone.
    s, _ = imported()
    shared = s.run("topology").data["shared"]
    assert shared == [{"stage": "stage 1", "smmu": "smmu0",
                       "key": {"vmid": None, "asid": 1, "ttb0": 0x4816D000},
                       "streams": [{"sid": 0x10, "count": 1, "device": None, "ssid": 0},
                                   {"sid": 0x100, "count": 1, "device": None, "ssid": 0}]}]


def test_topology_groups_a_shared_stage_2():
    # default scenario: nic0 (nested) and gpu0 (s2) both use vm0-s2 (VMID 1)
    s = Session()
    shared = s.run("topology").data["shared"]
    root = s.run("pt vm0-s2").data["root"]
    assert [(g["stage"], g["key"], [x["device"] for x in g["streams"]]) for g in shared] == \
        [("stage 2", {"vmid": 1, "s2ttb": root}, ["nic0", "gpu0"])]


# ---------------------------------------------------------------------------------------------
# strtab filters
# ---------------------------------------------------------------------------------------------
def sids(s, line):
    return [r["sid"] for r in s.run(line).data["entries"]]


def test_strtab_filters():
    s = Session()          # nic0 0x8 nested, nvme0 0x100 s1, gpu0 0x200 s2, 0x300, 0x301
    assert sids(s, "strtab smmu0") == [0x8, 0x100, 0x200, 0x300, 0x301]
    assert sids(s, "strtab smmu0 config=s2_trans") == [0x200]
    assert sids(s, "strtab smmu0 config=abort") == [0x301]
    assert sids(s, "strtab smmu0 illegal") == []
    s.run("inject reserved-ste nic0")        # S2TG reserved: C_BAD_STE
    assert sids(s, "strtab smmu0 illegal") == [0x8]
    r = s.run("strtab smmu0 illegal").data["entries"][0]
    assert r["legal"] is False and r["problem"]
    assert sids(s, "strtab smmu0 legal") == [0x100, 0x200, 0x300, 0x301]
    assert sids(s, "strtab smmu0 legal count=2") == [0x100, 0x200]
    assert s.run("strtab smmu0 legal count=2").data["more"] is True
    assert sids(s, "strtab smmu0 device=gpu0") == [0x200]
    for bad in ("strtab smmu0 config=nope", "strtab smmu0 legal illegal",
                "strtab smmu0 device=nosuch", "strtab smmu0 legal=no illegal=no"):
        assert not s.execute(bad).ok


def test_strtab_legal_no_lists_the_illegal_stes():
    # legal=no is a filter's answer, not "no filter" (as a flag's name=false would be)
    s = Session()          # nic0 0x8 nested, nvme0 0x100 s1, gpu0 0x200 s2, 0x300, 0x301
    s.run("inject reserved-ste nic0")        # S2TG reserved: C_BAD_STE
    every = [0x8, 0x100, 0x200, 0x300, 0x301]
    assert sids(s, "strtab smmu0") == every
    for line in ("strtab smmu0 legal=no", "strtab smmu0 legal=NO", "strtab smmu0 illegal",
                 "strtab smmu0 illegal=yes", "strtab smmu0 legal=no illegal"):
        assert sids(s, line) == [0x8], line
    for line in ("strtab smmu0 legal", "strtab smmu0 legal=yes", "strtab smmu0 illegal=no"):
        assert sids(s, line) == [0x100, 0x200, 0x300, 0x301], line
    r = s.execute("strtab smmu0 legal=maybe")
    assert not r.ok and "\n" not in r.error and "legal" in r.error and "yes or no" in r.error


def test_strtab_on_the_dump_counts_the_abort_stes():
    # README: every other STE of the two L2 arrays is V=1 Config=abort (509 of them)
    s, _ = imported()
    assert sids(s, "strtab smmu0 config=s1_trans") == [0x8, 0x10, 0x100]
    assert len(sids(s, "strtab smmu0 config=abort count=2000")) == 509
