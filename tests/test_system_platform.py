"""The system around the SMMUs as a scenario builds it: gic, pci, iort and [[its]] tables, the
ITS frames in the system map, and the `iort` / `its` commands.

Expected values come from the scenario text and the architecture: QEMU's DTE is 8 bytes at
device table + DeviceID * 8 (flat) or, two-level, through the level-1 entry of DeviceID // (page
/ 8) (IHI 0069 GITS_BASER<n>.Indirect; ITS_L1E Valid [63]); GITS_TRANSLATER is at +0x10040."""
from pathlib import Path

import pytest

from core_cy.physmem import MemFault
from smmudbg.errors import ScenarioError
from smmudbg.model.its import Its
from smmudbg.model.system import System
from smmudbg.session import Session

ROOT = Path(__file__).resolve().parent.parent
BARE = (ROOT / "examples" / "msi-its.toml").read_text()
NESTED = (ROOT / "examples" / "nested-msi.toml").read_text()
# The built-in default scenario without its GIC, PCI and ITS tables (they close the file).
NO_ITS = (ROOT / "smmudbg" / "data" / "default.toml").read_text().split("\n[gic]")[0]


def load(text):
    return System.from_text(text, "t.toml")


def error(text):
    with pytest.raises(ScenarioError) as e:
        load(text)
    return str(e.value)


# -- scenario errors name the table, key and line ---------------------------------------------
def line_of(text, needle):
    return next(i for i, t in enumerate(text.splitlines(), 1) if needle in t)


def test_its_base_must_be_64k_aligned_naming_key_and_line():
    text = BARE.replace("base = 0x0808_0000", "base = 0x0808_1000")
    msg = error(text)
    assert msg.startswith(f"t.toml:{line_of(text, 'base = 0x0808_1000')}: its[0].base:")
    assert "64 KiB" in msg


@pytest.mark.parametrize("old,new,key", [
    ('devices = [{ device = "nic0"', 'devices = [{ device = "nic9"', "its[0].devices[0].device"),
    ("collections = [{ icid = 0, target = 0 }", "collections = [{ icid = 0, target = 4 }",
     "its[0].collections[0].target"),
    ('pool = { base = 0x4200_0000, size = 0x0010_0000 }',
     'pool = { base = 0x4200_0000, size = 0x0010_0000 }\nfeatures = { devbits = 40 }',
     "its[0].features"),
    ('name = "its0"', 'name = "its0"\nbogus = 1', "its[0]: unknown key 'bogus'"),
    ("{ event = 1, intid = 8193", "{ event = 1, intid = 100", "its[0].devices[0].lpis[1].intid"),
    ("events = 32", "events = 24", "its[0].devices[0].events"),
])
def test_its_errors_name_the_key(old, new, key):
    assert old in BARE
    assert key in error(BARE.replace(old, new))


def test_pci_errors_name_the_node_and_line():
    text = BARE.replace("msix = [{ address = 0x0800_0040", "msix = [{ address = 0x0800_0041")
    msg = error(text)
    assert "pci.device[nic0].msix" in msg
    assert msg.startswith(f"t.toml:{line_of(text, 'msix = ')}:"), msg


def test_iort_derive_names_the_smmu_key():
    text = BARE + '\n[iort]\nderive = [{ smmu = "smmu9", host_bridges = ["pcie.0"] }]\n'
    assert "iort.derive[0].smmu" in error(text)
    text = BARE + '\n[iort]\nderive = [{ smmu = "smmu0", host_bridges = ["pcie.9"] }]\n'
    assert "iort.derive[0].host_bridges[0]" in error(text)


def test_scenarios_without_the_new_tables_build_as_before():
    s = load(NO_ITS)
    assert s.its == {} and s.pci is None and s.iort is None


# -- what the system builds -------------------------------------------------------------------
def test_its_frames_are_mmio_of_the_its():
    s = load(BARE)
    its = s.its["its0"]
    for pa in (0x0808_0000, 0x0809_0040):
        r = s.mem.region_at(pa)
        assert r.kind == "mmio" and r.owner is its
        assert (r.base, r.size) == (0x0808_0000, 0x2_0000)
    # a write to GITS_TRANSLATER needs the DeviceID that only the DMA path carries
    with pytest.raises(MemFault, match="without a DeviceID"):
        s.mem.write(0x0809_0040, (0).to_bytes(4, "little"))
    t = s.dma_write(0x0809_0040, (1).to_bytes(4, "little"), 0x100)
    assert (t.intid, t.target) == (8193, 1)
    # the control frame is the ITS's registers: GITS_CTLR.Enabled at +0
    assert s.mem.read(0x0808_0000, 4) == (1).to_bytes(4, "little")
    s.mem.write(0x0808_0000, (0).to_bytes(4, "little"))
    assert not its.enabled
    assert s.dma_write(0x0809_0040, (1).to_bytes(4, "little"), 0x100).error == "ITS_DISABLED"


def test_its_tables_are_written_by_its_commands_in_qemu_layout():
    s = load(BARE)
    its = s.its["its0"]
    assert [c.name for c in its.log] == ["MAPC", "MAPC", "MAPD", "MAPTI", "MAPTI"]
    dte = s.mem.read_u64(0x4200_0000 + 0x100 * 8)
    assert dte & 1 and (dte >> 1) & 0x1F == 4          # Valid, Size = log2(32) - 1
    itt = ((dte >> 6) & ((1 << 44) - 1)) << 8
    ite = int.from_bytes(s.mem.read(itt + 1 * 12, 12), "little")   # EventID 1, 12 bytes each
    assert ite & 1 and (ite >> 2) & 0xFFFFFF == 8193 and (ite >> 32) & 0xFFFF == 1


def test_two_level_device_table():
    s = load(NESTED)
    its = s.its["its0"]
    dt = its.table("Devices")
    assert dt.indirect and dt.page_size == 0x1000
    per = 0x1000 // 8
    for dev in (0x100, 0x200):
        l1 = s.mem.read_u64(dt.base + (dev // per) * 8)
        assert l1 >> 63 == 1
        page = l1 & 0x000F_FFFF_FFFF_F000
        assert s.mem.read_u64(page + (dev % per) * 8) & 1


# -- commands ---------------------------------------------------------------------------------
def test_iort_command_explains_a_device_node_by_node():
    s = Session(BARE, "t")
    r = s.run("iort nic0")
    p = r.path
    assert [(st["node"], st["input_id"], st["output_id"]) for st in p["steps"]] == \
        [("rc", 0x100, 0x100), ("smmu0", 0x100, 0x100), ("its", 0x100, None)]
    assert (p["smmu"], p["stream_id"], p["device_id"]) == ("smmu0", 0x100, 0x100)
    assert r.derived and r.findings == []
    # bus 2 is beyond pcie.0's buses (0..1): QEMU's IORT sends it to the ITS, bypassing the SMMU
    p = s.run("iort 02:00.0").path
    assert p["smmu"] is None and p["device_id"] == 0x200
    assert s.run("iort 0:0x200").path == p
    assert s.execute("iort zz").error.startswith("iort: ")


def test_its_command_lists_what_the_scenario_mapped():
    s = Session(BARE, "t")
    r = s.run("its")
    assert [(m["device_id"], m["event_id"], m["intid"], m["icid"], m["target"])
            for m in r.mappings] == [(0x100, 0, 8192, 0, 0), (0x100, 1, 8193, 1, 1)]
    assert r.collections == [{"icid": 0, "target": 0}, {"icid": 1, "target": 1}]
    assert r.translater == 0x0809_0040 and r.enabled and r.errors == [] and r.pending == []
    s.run("msi nic0 1")
    assert s.run("its").pending == [{"target": 1, "intids": [8193]}]
    d = s.run("its device=0x100").device
    assert d["steps"][0]["what"] == "DTE" and d["steps"][0]["address"] == 0x4200_0800
    assert Session(NO_ITS, "t").execute("its").error.startswith("its: this system has no ITS")


def test_its_state_follows_back():
    s = Session(BARE, "t")
    s.run("msi nic0 1")
    assert s.system.gic.pending[1] == {8193}
    s.run("back")
    assert not s.system.gic.pending[1]
