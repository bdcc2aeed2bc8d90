"""The MSI path end to end (`msi`): RID -> IORT -> StreamID -> STE -> S1 -> S2 -> the region
it lands on -> GITS_TRANSLATER -> DTE/ITE/CTE -> LPI, and every way it breaks.

Expected INTIDs, collections and targets are read from the scenario text of examples/*.toml
(the [[its]] lpis and collections), StreamIDs and DeviceIDs from the PCI bus numbers (QEMU virt's
IORT maps RIDs identity to the SMMU and StreamIDs identity to the ITS group)."""
from pathlib import Path

import pytest

from smmudbg.session import Session

ROOT = Path(__file__).resolve().parent.parent
BARE = (ROOT / "examples" / "msi-its.toml").read_text()
NESTED = (ROOT / "examples" / "nested-msi.toml").read_text()
# The built-in default scenario without its GIC, PCI and ITS tables (they close the file).
NO_ITS = (ROOT / "smmudbg" / "data" / "default.toml").read_text().split("\n[gic]")[0]


def session(text, name="t"):
    return Session(text, name)


def msi(s, line):
    out = s.execute(line)
    assert out.ok, out.error
    return out.result


def broken(r, step, *words):
    assert not r.ok and r.failed == step, (r.failed, r.reason)
    assert r.steps[-1]["what"] == step and r.steps[-1]["ok"] is False
    assert r.intid is None and r.fix
    for w in words:
        assert w in r.reason + " | " + r.fix, (w, r.reason, r.fix)


# -- the path that works ----------------------------------------------------------------------
def test_bare_metal_msix_vector_reaches_its_lpi():
    s = session(BARE)
    r = msi(s, "msi nic0 1")
    # nic0 is on bus 1 (below rp0 on pcie.0): RID 0x0100 = StreamID = DeviceID
    assert (r.rid, r.sid, r.device_id) == (0x100, 0x100, 0x100)
    # msix[1] = {address 0x0800_0040, data 1}; the S1 maps IOVA 0x800_0000 -> 0x809_0000
    assert (r.address, r.msi_data, r.pa) == (0x0800_0040, 1, 0x0809_0040)
    # lpis: event 1 -> intid 8193, icid 1; collections: icid 1 -> target 1
    assert (r.intid, r.icid, r.target) == (8193, 1, 1)
    assert r.its == "its0" and r.ok and r.failed is None
    assert [st["what"] for st in r.steps] == ["msi", "iort", "smmu", "region", "its"]
    walk = r.steps[2]["walk"]
    assert walk[0]["what"] == "STE" and walk[-1]["outcome"] == "page"
    its = r.steps[4]["its_steps"]
    # QEMU layout: DTE 8 bytes at device table + DeviceID * 8; the device table is the first
    # allocation of the ITS pool (0x4200_0000)
    assert its[0]["what"] == "DTE" and its[0]["address"] == 0x4200_0000 + 0x100 * 8
    assert its[1]["what"] == "ITE" and its[1]["fields"]["INTID"] == 8193
    # the write was made: LPI 8193 pending on redistributor 1 only
    assert s.system.gic.pending[1] == {8193} and not s.system.gic.pending[0]


def test_dry_leaves_the_pending_state_alone():
    s = session(BARE)
    r = msi(s, "msi nic0 0 dry")
    assert (r.intid, r.icid, r.target) == (8192, 0, 0)
    assert not any(s.system.gic.pending)


def test_nested_gIOVA_gDB_hDB_to_lpi_for_both_devices_on_one_s2():
    s = session(NESTED)
    r = msi(s, "msi nic0 1")
    # gIOVA 0x800_0040 -> gDB 0x0809_0040 (guest S1) -> hDB 0x0809_0040 (the VMM's S2 map)
    assert (r.address, r.ipa, r.pa) == (0x0800_0040, 0x0809_0040, 0x0809_0040)
    assert (r.intid, r.icid, r.target) == (8193, 1, 2)
    r = msi(s, "msi nic1 0")
    assert (r.sid, r.device_id) == (0x200, 0x200)       # bus 2 below rp1
    assert (r.intid, r.icid, r.target) == (8224, 1, 2)
    assert s.system.gic.pending[2] == {8193, 8224}


def test_raw_write_form():
    s = session(BARE)
    r = msi(s, "msi smmu0 0x100 0x8000040 data=1")
    assert (r.device_id, r.intid, r.target) == (0x100, 8193, 1)
    r = msi(s, "msi smmu0 0x100 0x8000040 data=0 devid=0x100")
    assert r.intid == 8192
    assert "data=N" in s.execute("msi smmu0 0x100 0x8000040").error
    assert s.execute("msi nic9 0").error.startswith("msi: ")


# -- every way it breaks ----------------------------------------------------------------------
def test_no_iort_mapping_for_the_rid():
    text = BARE + '''
[iort]
its_group = [{ name = "its", its_ids = [0] }]
smmuv3 = [{ name = "smmu0", base = 0x0905_0000, id_mappings = [{ input_base = 0, count = 0xffff, output_base = 0, output = "its" }] }]
root_complex = [{ name = "rc", id_mappings = [{ input_base = 0, count = 0xff, output_base = 0, output = "smmu0" }] }]
'''
    text = text.replace('devices = [{ device = "nic0"', 'devices = [{ device_id = 0x100')
    broken(msi(session(text), "msi nic0 0"), "iort", "rc")


def test_ste_abort():
    text = BARE.replace('config = "s1"\ncds = [{ ssid = 0, domain = "nic0-dma" }]',
                        'config = "abort"')
    broken(msi(session(text), "msi nic0 0"), "smmu", "Config=abort")


def test_stage1_fault_at_the_giova():
    text = BARE.replace("msix = [{ address = 0x0800_0040", "msix = [{ address = 0x0900_0040")
    r = msi(session(text), "msi nic0 0")
    broken(r, "smmu", "stage 1", "0x9000000")
    assert r.steps[-1]["fault"] == "F_TRANSLATION"


def test_s2_lacks_the_its_page_and_one_map_fixes_it():
    s = session(NESTED)
    assert s.execute("inject unmap vm0-s2 0x8090000").ok
    r = msi(s, "msi nic0 1")
    broken(r, "smmu", "stage 2", "gDB 0x8090040", "IOMMU_IOAS_MAP", "map vm0-s2 0x8090000")
    assert r.ipa == 0x0809_0040
    fix = r.fix.split("`")[1]
    assert s.execute(fix).ok
    assert msi(s, "msi nic0 1").intid == 8193


def test_lands_on_ram_not_a_doorbell():
    text = BARE.replace("msix = [{ address = 0x0800_0040", "msix = [{ address = 0x1000_0040")
    r = msi(session(text), "msi nic0 0")
    broken(r, "region", "RAM", "0x8090040")
    assert r.pa == 0x4100_0040


def test_its_disabled():
    text = BARE.replace('base = 0x0808_0000\n', 'base = 0x0808_0000\nenabled = false\n')
    broken(msi(session(text), "msi nic0 0"), "its", "ITS_DISABLED", "GITS_CTLR.Enabled")


def test_unmapped_device():
    text = BARE.replace('devices = [{ device = "nic0"', 'devices = [{ device_id = 0x101')
    broken(msi(session(text), "msi nic0 0"), "its", "UNMAPPED_DEVICE", "MAPD DeviceID=0x100")


def test_event_id_beyond_the_itt():
    text = BARE.replace("{ address = 0x0800_0040, data = 1 }", "{ address = 0x0800_0040, data = 32 }")
    r = msi(session(text), "msi nic0 1")       # events = 32: EventIDs 0..31
    broken(r, "its", "ID_OOR")
    assert r.steps[-1]["error_code"] == 0x010305


def test_unmapped_interrupt():
    text = BARE.replace("{ address = 0x0800_0040, data = 1 }", "{ address = 0x0800_0040, data = 7 }")
    broken(msi(session(text), "msi nic0 1"), "its", "UNMAPPED_INTERRUPT", "MAPTI")


def test_invalid_collection():
    text = BARE.replace("{ event = 1, intid = 8193, icid = 1 }", "{ event = 1, intid = 8193, icid = 5 }")
    broken(msi(session(text), "msi nic0 1"), "its", "UNMAPPED_COLLECTION", "MAPC")


def test_no_its_in_the_system_lands_elsewhere():
    s = session(NO_ITS)                # no ITS
    r = msi(s, "msi smmu0 0x300 0x8090040 data=0 devid=0x300")   # bypass stream
    broken(r, "region", "this system has no ITS")


# -- check ------------------------------------------------------------------------------------
def test_check_reports_each_broken_msi_path_with_its_fix():
    s = session(NESTED)
    assert s.run("check").system == []
    s.run("inject unmap vm0-s2 0x8090000")
    found = [f for f in s.run("check").system if f["area"] == "msi"]
    assert [f["subject"] for f in found] == ["nic0 vector 0", "nic1 vector 0"]
    assert all("map vm0-s2 0x8090000 0x8090000 4K" in f["fix"] for f in found)
    assert not any(s.system.gic.pending)          # check looks only
    assert s.run("check").problems >= 2


def test_check_reports_iort_gaps():
    text = BARE + '''
[iort]
its_group = [{ name = "its", its_ids = [0] }]
smmuv3 = [{ name = "smmu0", base = 0x0905_0000, id_mappings = [{ input_base = 0, count = 0xffff, output_base = 0, output = "its" }] }]
root_complex = [{ name = "rc", id_mappings = [{ input_base = 0, count = 0xff, output_base = 0, output = "smmu0" }] }]
'''
    text = text.replace('devices = [{ device = "nic0"', 'devices = [{ device_id = 0x100')
    found = session(text).run("check").system
    assert any(f["area"] == "iort" and "0x100" in f["message"].lower() for f in found), found
    assert any(f["area"] == "msi" and f["subject"] == "nic0 vector 0" for f in found)


def test_check_reports_an_s2_more_than_needed():
    text = (ROOT / "examples" / "vsmmu-accel.toml").read_text()
    text = text.replace('hwpt = [{ name = "s2", device = "nic0", ioas = "ioas0", nest_parent = true }]',
                        'hwpt = [{ name = "s2", device = "nic0", ioas = "ioas0" },\n'
                        '        { name = "s2b", device = "nic1", ioas = "ioas0" }]')
    text = text.replace('viommu = [{ name = "vsmmu0", device = "nic0", hwpt = "s2" }]',
                        'viommu = [{ name = "vsmmu0", device = "nic0", hwpt = "s2" },\n'
                        '          { name = "vsmmu1", device = "nic1", hwpt = "s2b" }]')
    text = text.replace('{ viommu = "vsmmu0", device = "nic1", vsid = 0x10 }',
                        '{ viommu = "vsmmu1", device = "nic1", vsid = 0x10 }')
    text = text.replace('{ name = "nic1-s1", viommu = "vsmmu0"', '{ name = "nic1-s1", viommu = "vsmmu1"')
    found = [f for f in session(text).run("check").system if f["area"] == "iommufd"]
    assert len(found) == 1 and "2 nesting-parent S2s where 1 suffice" in found[0]["message"]


# -- inject -----------------------------------------------------------------------------------
def test_inject_its_page_takes_the_doorbell_out_of_the_s2():
    s = session(NESTED)
    r = s.run("inject its-page nic0")
    assert r.inject == "its-page" and r.domain == "vm0-s2" and r.size == 0x1000
    assert r.new == r.old & ~1 and r.level == 3
    m = msi(s, "msi nic0 0")
    broken(m, "smmu", "stage 2", "gDB 0x8090040")
    assert s.execute(m.fix.split("`")[1]).ok
    assert msi(s, "msi nic0 0").ok


def test_inject_its_page_without_a_stage_2_takes_the_s1_leaf():
    s = session(BARE)
    r = s.run("inject its-page nic0")
    assert r.domain == "nic0-dma" and r.size == 0x1000
    broken(msi(s, "msi nic0 0"), "smmu", "stage 1", "0x8000040")


def test_inject_iort_breaks_the_mapping_the_device_takes():
    s = session(BARE)
    r = s.run("inject iort nic0")
    # QEMU virt's root complex maps the RIDs of pcie.0's buses 0..1 (0x0..0x1ff) to smmu0 first
    assert (r.node, r.mapping_index) == ("rc", 0)
    assert (r.mapping["input_base"], r.mapping["count"], r.mapping["output"]) == (0, 0x1FF,
                                                                               "smmu0")
    broken(msi(s, "msi nic0 0"), "iort", "rc")
    assert s.run("iort nic0").path["failure"]
    s.run("goto 0")                 # before the inject: the mapping is back
    assert msi(s, "msi nic0 0").ok
