"""The [iommufd] scenario table: objects created through the modelled ioctls, the host STEs
they write walking like any other, S2 sharing and its explanation, and errors naming the entry.

Expected values: VMIDs from 1 per SMMU (ida_alloc_range(1, ...)); STE.Config nested = 0b111,
S2VMID = STE[143:128] (IHI 0070 5.2); addresses from the scenario text (guest RAM IPA
0x4000_0000 -> PA 0x6000_0000; nic0's S1 maps 0x1000_0000 -> IPA 0x4100_0000)."""
from pathlib import Path

import pytest

from smmudbg.errors import ScenarioError
from smmudbg.model.system import System
from smmudbg.session import Session

ROOT = Path(__file__).resolve().parent.parent
ACCEL = (ROOT / "examples" / "vsmmu-accel.toml").read_text()
NONCOH = (ROOT / "examples" / "noncoherent-s2.toml").read_text()


def ste(sysm, sid):
    return sysm.smmu("smmu0").read_ste(sid)


def test_two_vfio_devices_share_one_nesting_parent_s2():
    sysm = System.from_text(ACCEL)
    a, b = ste(sysm, 0x100), ste(sysm, 0x200)
    for w in (a, b):
        assert w[0] & 1 and (w[0] >> 1) & 7 == 0b111          # V, Config = nested
        assert w[2] & 0xFFFF == 1                              # S2VMID: the first VMID
    assert a[3] == b[3]                                        # one S2TTB: the shared S2
    assert a[0] != b[0]                                        # each its own guest CD table
    r = sysm.smmu("smmu0").translate(0x100, 0x1000_0040)
    assert (r["ipa"], r["pa"]) == (0x4100_0040, 0x6100_0040)
    r = sysm.smmu("smmu0").translate(0x200, 0x1000_0040)       # nic1's S1: -> IPA 0x4200_0000
    assert (r["ipa"], r["pa"]) == (0x4200_0040, 0x6200_0040)


def test_iommufd_explain_names_the_shared_s2():
    s = Session(ACCEL, "t")
    r = s.run("iommufd")
    rows = {x["device"]: x for x in r.rows}
    assert rows["nic0"]["s2"] == rows["nic1"]["s2"]
    assert rows["nic0"]["shared_with"] == ["nic1"] and rows["nic1"]["shared_with"] == ["nic0"]
    assert "nesting parent" in rows["nic0"]["reason"]
    assert r.plan["s2s"] == [["S2#1", ["nic0", "nic1"]]]
    names = {x["name"] for x in s.run("iommufd hwpt").rows}
    assert names == {"s2", "nic0-s1", "nic1-s1"}
    assert [(x["vsid"], x["psid"]) for x in s.run("iommufd vdevice").rows] == \
        [(0x08, 0x100), (0x10, 0x200)]
    assert s.execute("iommufd nope").error.startswith("iommufd: ")
    assert Session().execute("iommufd").error.startswith("iommufd: this system has no")


def test_sw_msi_places_the_host_its_page_at_the_guest_doorbell_gpa():
    sysm = System.from_text(ACCEL)
    s2 = sysm.iommufd.objects["s2"]
    # sw_msi_start = 0x0809_0000: the first (only) doorbell page at the window's start
    assert s2.sw_msi == {0x0809_0000: 0x0809_0000}
    s = Session(ACCEL, "t")
    r = s.run("msi nic1 0")
    assert (r.ipa, r.pa, r.intid, r.target) == (0x0809_0040, 0x0809_0040, 8200, 1)


def test_noncoherent_device_gets_a_second_s2_and_the_plan_says_why():
    sysm = System.from_text(NONCOH)
    a, b = ste(sysm, 0x100), ste(sysm, 0x300)
    assert (a[2] & 0xFFFF, b[2] & 0xFFFF) == (1, 2)       # two S2s, two VMIDs
    assert a[3] != b[3]
    r = Session(NONCOH, "t").run("iommufd")
    assert [x[0] for x in r.plan["s2s"]] == ["S2#1", "S2#2"]
    assert "arm_smmu_attach_prepare" in r.plan["choices"][1]["reason"]


def test_refused_ioctl_names_the_entry():
    # gpu0 (not coherent) nested on the coherent S2's vIOMMU: the attach is refused
    text = NONCOH.replace('{ viommu = "vsmmu0-nc", device = "gpu0", vsid = 0x18 }',
                          '{ viommu = "vsmmu0", device = "gpu0", vsid = 0x18 }')
    text = text.replace('{ name = "gpu0-s1", viommu = "vsmmu0-nc"',
                        '{ name = "gpu0-s1", viommu = "vsmmu0"')
    with pytest.raises(ScenarioError, match=r"iommufd\.attach\[1\]: .*-EINVAL"):
        System.from_text(text)


@pytest.mark.parametrize("old,new,key", [
    ('ioas = "ioas0" }]\nviommu', 'ioas = "ioas9" }]\nviommu', "iommufd.hwpt[1].ioas"),
    ("sid = 0x300", "sid = 0x30000", "iommufd.devices[1].sid"),
    ('domain = "gpu0-dma" }', 'domain = "nope" }', "iommufd.nested[1].domain"),
    ('[iommufd]\n', '[iommufd]\nbogus = 1\n', "iommufd: unknown key 'bogus'"),
])
def test_scenario_errors_name_the_key_and_line(old, new, key):
    assert old in NONCOH
    text = NONCOH.replace(old, new)
    with pytest.raises(ScenarioError) as e:
        System.from_text(text, "t.toml")
    assert key in str(e.value)
    if "[" in key:
        line = int(str(e.value).split(":")[1])
        assert key.split(".")[-1].split("[")[0] in text.splitlines()[line - 1]


def test_accelerated_vsmmu_msi_breaks_without_the_its_page_and_one_command_fixes_it():
    s = Session(ACCEL, "t")
    r = s.run("inject its-page nic0")
    assert r.domain == "s2"                       # the nesting-parent HWPT, by scenario name
    assert (r.desc_pa, r.size) == (r.desc_addr, 0x1000)
    m = s.run("msi nic0 0")
    assert m.failed == "smmu" and "gDB 0x8090040" in m.reason and m.ipa == 0x0809_0040
    fix = m.fix.split("`")[1]
    assert fix == "map s2 0x8090000 0x8090000 4K"
    assert s.execute(fix).ok
    m = s.run("msi nic0 0")
    assert (m.intid, m.icid, m.target) == (8192, 0, 0)
    # nic1 shares the S2: its MSI broke and is fixed with nic0's
    assert s.run("msi nic1 0").intid == 8200
    assert s.execute("pt s2 limit=3").ok
    assert [d["name"] for d in s.run("topology").domains][-1] == "s2"


def test_hwpt_names_must_not_clash_with_domains():
    text = ACCEL.replace('hwpt = [{ name = "s2"', 'hwpt = [{ name = "nic0-dma"').replace(
        'hwpt = "s2" }', 'hwpt = "nic0-dma" }')
    with pytest.raises(ScenarioError, match=r"iommufd\.hwpt\[0\]\.name: .*already a \[\[domain\]\]"):
        System.from_text(text)
