"""IORT ID mappings resolved as Linux drivers/acpi/arm64/iort.c does (iort_id_map,
iort_node_map_id, RMRs), typed explain steps, consistency findings. Expected IDs are computed
by hand from the mapping rule out = output_base + (id - input_base), range inclusive of
input_base + count."""
import pytest

from smmudbg.errors import ScenarioError
from smmudbg.model.iort import IdMapping, Iort, id_map
from smmudbg.model.pci import PciTopology


def m(ib, cnt, ob, out, single=False):
    t = {"input_base": ib, "count": cnt, "output_base": ob, "output": out}
    if single:
        t["single"] = True
    return t


# Two SMMUs, two ITS groups. RC: RIDs 0..0x7fff -> smmu0 SIDs 0..0x7fff; RIDs 0x8000..0xbfff ->
# smmu1 SIDs 0x100..; RIDs 0xc000..0xffff -> its1 directly (no SMMU).
# smmu0: SIDs -> its0, identity; smmu1: SIDs -> its1 DeviceIDs 0x10000 + SID.
TWO = {
    "its_group": [{"name": "its0", "its_ids": [0]}, {"name": "its1", "its_ids": [1]}],
    "smmuv3": [{"name": "smmu0", "base": 0x9050000, "id_mappings": [m(0, 0xFFFF, 0, "its0")]},
               {"name": "smmu1", "base": 0x9070000,
                "id_mappings": [m(0, 0xFFFF, 0x10000, "its1")]}],
    "root_complex": [{"name": "rc0", "segment": 0,
                      "id_mappings": [m(0, 0x7FFF, 0, "smmu0"), m(0x8000, 0x3FFF, 0x100, "smmu1"),
                                      m(0xC000, 0x3FFF, 0xC000, "its1")]}],
}


def test_id_map_count_is_n_minus_one():
    mp = IdMapping(0x100, 0xFF, 0x1000, "x")        # 256 IDs: 0x100..0x1ff
    assert id_map(mp, "smmuv3", 0x100, False) == ("ok", 0x1000)
    assert id_map(mp, "smmuv3", 0x1FE, False) == ("ok", 0x10FE)
    # the last ID matches, provisionally (-EAGAIN)
    assert id_map(mp, "smmuv3", 0x1FF, False) == ("last", 0x10FF)
    assert id_map(mp, "smmuv3", 0x200, False)[0] == "miss"
    assert id_map(mp, "smmuv3", 0xFF, False)[0] == "miss"
    # count 0 = one ID, and that match is not provisional
    assert id_map(IdMapping(5, 0, 9, "x"), "smmuv3", 5, False) == ("ok", 9)


def test_single_mapping_ignores_input_only_on_rc_and_nc():
    mp = IdMapping(0, 0, 0x42, "x", single=True)
    assert id_map(mp, "root_complex", 0x1234, False) == ("ok", 0x42)
    assert id_map(mp, "named_component", 7, False) == ("ok", 0x42)
    assert id_map(mp, "smmuv3", 0, False)[0] == "single-not-allowed"


def test_last_id_of_a_range_resolves_alone():
    i = Iort.from_spec(TWO)
    p = i.explain(0x7FFF)                 # last ID of mapping 0, nothing else starts there
    assert (p.smmu, p.stream_id, p.device_id) == ("smmu0", 0x7FFF, 0x7FFF)
    assert "last ID of mapping 0" in p.steps[0].note


def test_off_by_one_firmware_workaround():
    # Firmware wrote the number of IDs (0x100) instead of 0xff: mapping 0 covers 0..0x100 and
    # mapping 1 starts at 0x100. Linux hands 0x100 to mapping 1.
    spec = {"its_group": [{"name": "its0", "its_ids": [0]}],
            "smmuv3": [{"name": "s0", "base": 0, "id_mappings": [m(0, 0xFFFF, 0, "its0")]},
                       {"name": "s1", "base": 0x20000, "id_mappings": [m(0, 0xFFFF, 0, "its0")]}],
            "root_complex": [{"name": "rc", "id_mappings": [m(0, 0x100, 0, "s0"),
                                                            m(0x100, 0xFF, 0x500, "s1")]}]}
    i = Iort.from_spec(spec)
    p = i.explain(0x100)
    assert (p.smmu, p.stream_id) == ("s1", 0x500)
    assert p.steps[0].mapping_index == 1 and "supersedes mapping 0" in p.steps[0].note
    assert (i.explain(0xFF).smmu, i.explain(0xFF).stream_id) == ("s0", 0xFF)
    f = [x for x in i.check() if "looks like the number of IDs" in x.message]
    assert len(f) == 1 and f[0].node == "rc" and "0xff" in f[0].fix


def test_overlap_first_match_wins():
    spec = {"its_group": [{"name": "its0", "its_ids": [0]}],
            "root_complex": [{"name": "rc", "id_mappings": [m(0, 0xFF, 0, "its0"),
                                                            m(0x80, 0xFF, 0x1000, "its0")]}]}
    i = Iort.from_spec(spec)
    p = i.explain(0x90)
    assert p.device_id == 0x90 and p.steps[0].mapping_index == 0
    assert "Linux takes the first match" in p.steps[0].note
    # 0xff is the last ID of mapping 0; mapping 1 covers it but does not start there: dropped.
    p = i.explain(0xFF)
    assert p.device_id == 0xFF and "disregards" in p.steps[0].note
    # past mapping 0 only mapping 1 applies: 0x100 -> 0x1000 + (0x100 - 0x80)
    assert i.explain(0x100).device_id == 0x1080
    f = [x for x in i.check() if "both cover" in x.message]
    assert len(f) == 1 and "0x80..0xff" in f[0].message


def test_rid_sid_deviceid_through_two_smmus_and_two_its_groups():
    i = Iort.from_spec(TWO)
    p = i.explain(0x0100)
    assert (p.root_complex, p.smmu, p.stream_id, p.its_group, p.device_id) == \
        ("rc0", "smmu0", 0x100, "its0", 0x100)
    assert [s.node for s in p.steps] == ["rc0", "smmu0", "its0"]
    # 0x8108 -> smmu1 SID 0x100 + 0x108 = 0x208 -> its1 DeviceID 0x10000 + 0x208
    p = i.explain(0x8108)
    assert (p.smmu, p.stream_id, p.its_group, p.device_id) == ("smmu1", 0x208, "its1", 0x10208)
    assert (p.steps[0].mapping_index, p.steps[1].input_id, p.steps[1].output_id) == \
        (1, 0x208, 0x10208)
    assert p.ok and i.check() == []


def test_rc_to_its_bypass():
    p = Iort.from_spec(TWO).explain(0xC123)
    assert p.ok and p.smmu is None and p.stream_id is None
    assert (p.its_group, p.device_id) == ("its1", 0xC123)


def test_smmu_deviceid_mapping_is_skipped():
    spec = {"its_group": [{"name": "its0", "its_ids": [0]}],
            "smmuv3": [{"name": "s", "base": 0, "deviceid_mapping": 0,
                        "id_mappings": [m(0, 0, 0x7000, "its0", single=True),
                                        m(0, 0xFFFF, 0x100, "its0")]}],
            "root_complex": [{"name": "rc", "id_mappings": [m(0, 0xFFFF, 0, "s")]}]}
    i = Iort.from_spec(spec)
    assert i.explain(5).device_id == 0x105
    assert i.check() == []
    # Without the index the single mapping is first; Linux ignores single on an SMMU node,
    # so mapping 1 is still used, and check() says mapping 0 is skipped.
    spec["smmuv3"][0].pop("deviceid_mapping")
    i = Iort.from_spec(spec)
    p = i.explain(5)
    assert p.device_id == 0x105 and "Linux ignores" in p.steps[1].note
    assert any("single-mapping flag" in f.message for f in i.check())


def test_failures():
    i = Iort.from_spec(TWO)
    p = i.explain(0x10, segment=1)
    assert not p.ok and "no root complex node for segment 1" in p.failure and p.steps == ()
    p = i.explain(0x10000)
    assert "no ID mapping of rc0 covers 0x10000" in p.failure and p.steps[0].failure
    assert p.linux_msi_id == 0x10000

    bad = {**TWO, "root_complex": [{"name": "rc0", "id_mappings": [m(0, 0xFFFF, 0, "smmu9")]}]}
    i = Iort.from_spec(bad)
    p = i.explain(0x100)
    assert "points to a missing node 'smmu9'" in p.failure
    assert any("missing node 'smmu9'" in f.message for f in i.check())

    # smmu1 maps only SIDs 0..0xff: SID 0x208 reaches it but goes no further.
    short = {**TWO, "smmuv3": [TWO["smmuv3"][0], {"name": "smmu1", "base": 0x9070000,
                                                   "id_mappings": [m(0, 0xFF, 0, "its1")]}]}
    i = Iort.from_spec(short)
    p = i.explain(0x8108)
    assert (p.smmu, p.stream_id, p.device_id) == ("smmu1", 0x208, None)
    assert "falls back to the input ID 0x8108" in p.failure and p.linux_msi_id == 0x8108
    assert any(f.node == "smmu1" and "0x100..0x40ff" in f.message for f in i.check())

    # Linux would follow an SMMU -> SMMU reference; the model stops with the wrong node type.
    loop = {"smmuv3": [{"name": "a", "base": 0, "id_mappings": [m(0, 0xFFFF, 0, "b")]},
                       {"name": "b", "base": 0, "id_mappings": [m(0, 0xFFFF, 0, "a")]}],
            "root_complex": [{"name": "rc", "id_mappings": [m(0, 0xFFFF, 0, "a")]}]}
    p = Iort.from_spec(loop).explain(1)
    assert "points to b, a smmuv3 node" in p.failure

    wrong = {"rmr": [{"name": "r", "ranges": [{"base": 0x8000000, "length": 0x100000}],
                      "id_mappings": [m(0, 0, 0, "rc")]}],
             "root_complex": [{"name": "rc", "id_mappings": [m(0, 0xFFFF, 0, "r")]}]}
    p = Iort.from_spec(wrong).explain(1)
    assert "points to r, a rmr node" in p.failure


def test_single_mapping_on_rc_hides_later_mappings():
    spec = {"its_group": [{"name": "its0", "its_ids": [0]}],
            "root_complex": [{"name": "rc", "id_mappings": [m(0, 0, 0x77, "its0", single=True),
                                                            m(0, 0xFFFF, 0, "its0")]}]}
    i = Iort.from_spec(spec)
    assert i.explain(0x1234).device_id == 0x77
    assert any("never used" in f.message for f in i.check())


RMR = {
    "its_group": [{"name": "its0", "its_ids": [0]}],
    "smmuv3": [{"name": "smmu0", "base": 0, "id_mappings": [m(0, 0xFFFF, 0, "its0")]}],
    "root_complex": [{"name": "rc0", "preserve_config": True,
                      "id_mappings": [m(0, 0xFFFF, 0, "smmu0")]}],
    "rmr": [{"name": "msi", "flags": 0, "ranges": [{"base": 0x8000000, "length": 0x100000}],
             "id_mappings": [m(0, 0xFF, 0x100, "smmu0")]},
            {"name": "fb", "flags": 1 | 2 | 5 << 2,
             "ranges": [{"base": 0x8000800, "length": 0x1000}],
             "id_mappings": [m(0, 0, 0x300, "smmu0")]}],
}


def test_rmr_ranges():
    i = Iort.from_spec(RMR)
    r = i.rmr_regions("smmu0")
    assert [(x.rmr, x.base, x.length) for x in r] == [
        ("msi", 0x8000000, 0x100000),
        # 0x8000800+0x1000 is not 64K aligned: page-aligned to 0x8000000, 0x2000 bytes
        ("fb", 0x8000000, 0x2000)]
    assert r[0].type == "direct" and r[0].prot == ("read", "write", "mmio")
    assert r[0].stream_ids == ((0x100, 0x1FF),)
    assert r[1].type == "direct-relaxable" and r[1].prot == ("read", "write", "priv", "cache")
    # a device's StreamIDs select the RMRs: the range end is inclusive
    assert [x.rmr for x in i.rmr_regions("smmu0", stream_ids=[0x1FF])] == ["msi"]
    assert i.rmr_regions("smmu0", stream_ids=[0x200]) == ()
    assert i.rmr_regions("smmu1") == ()
    assert i.rmr_regions("smmu0", [0x100], pci_device=True, preserve_config=False) == ()
    old = Iort.from_spec({**RMR, "revision": 4})
    assert old.rmr_regions("smmu0") == ()
    assert any("revision 4" in f.message for f in old.check())
    assert any("not 64 KiB aligned" in f.message for f in i.check())


def _topo():
    return PciTopology.from_spec({
        "host_bridge": [{"name": "pcie.0"},
                        {"name": "pxb1", "kind": "pxb-pcie", "parent": "pcie.0", "addr": "2",
                         "bus": 0x80}],
        "device": [{"name": "rp1", "kind": "root_port", "parent": "pcie.0", "addr": "1"},
                   {"name": "ppb", "kind": "pcie_pci_bridge", "parent": "rp1", "addr": "0"},
                   {"name": "old", "parent": "ppb", "addr": "3", "pcie": False,
                    "msi": {"address": 0x8090040, "data": 0}},
                   {"name": "rp2", "kind": "root_port", "parent": "pxb1", "addr": "0"},
                   {"name": "nic", "parent": "rp2", "addr": "0",
                    "msix": [{"address": 0x8090040, "data": 0}]}]})


def test_device_path_through_pcie_to_pci_bridge():
    # rp1 sec 1, ppb 01:00.0 sec 2, old 02:03.0 = 0x218; alias 02:00.0 = 0x200.
    # QEMU-style RC: pcie.0 buses 0..0x7f -> smmu0, pxb buses 0x80..0xff -> smmu1.
    iort = Iort.from_spec({
        "its_group": [{"name": "its0", "its_ids": [0]}],
        "smmuv3": [{"name": "smmu0", "base": 0, "id_mappings": [m(0, 0xFFFF, 0, "its0")]},
                   {"name": "smmu1", "base": 0x20000, "id_mappings": [m(0, 0xFFFF, 0, "its0")]}],
        "root_complex": [{"name": "rc0", "id_mappings": [m(0, 0x7FFF, 0, "smmu0"),
                                                         m(0x8000, 0x7FFF, 0x8000, "smmu1")]}]})
    t = _topo()
    p = iort.explain_device(t, "old")
    assert p.bdf == "0000:02:03.0"
    assert [(a.rid, a.smmu, a.stream_id) for a in p.aliases] == [
        (0x218, "smmu0", 0x218), (0x200, "smmu0", 0x200)]
    assert p.stream_ids == (0x218, 0x200)
    assert p.msi_rid == 0x200 and p.msi.device_id == 0x200 and p.failure is None
    q = iort.explain_device(t, "nic")        # 81:00.0 behind the pxb
    assert (q.aliases[0].smmu, q.aliases[0].stream_id, q.msi.device_id) == ("smmu1", 0x8100, 0x8100)
    assert iort.check(t) == []


def test_aliases_on_two_smmus_is_an_error():
    # 0x200 (the bridge alias) and 0x218 (own RID) split between two SMMUs
    iort = Iort.from_spec({
        "its_group": [{"name": "its0", "its_ids": [0]}],
        "smmuv3": [{"name": "a", "base": 0, "id_mappings": [m(0, 0xFFFF, 0, "its0")]},
                   {"name": "b", "base": 0x20000, "id_mappings": [m(0, 0xFFFF, 0, "its0")]}],
        "root_complex": [{"name": "rc0", "id_mappings": [m(0, 0x20F, 0, "a"),
                                                         m(0x210, 0xFDEF, 0x210, "b")]}]})
    p = iort.explain_device(_topo(), "old")
    assert "several SMMUs (a, b)" in p.failure and "-EINVAL" in p.failure


def test_check_with_topology_missing_ranges():
    # RC covers only bus 0..1: the device at 02:03.0 and its alias 02:00.0 are not covered,
    # nor is the pxb's bus range.
    iort = Iort.from_spec({
        "its_group": [{"name": "its0", "its_ids": [0]}],
        "smmuv3": [{"name": "s", "base": 0, "id_mappings": [m(0, 0xFFFF, 0, "its0")]}],
        "root_complex": [{"name": "rc0", "id_mappings": [m(0, 0x1FF, 0, "s")]}],
        "rmr": [{"name": "r", "ranges": [{"base": 0x8000000, "length": 0x100000}],
                 "id_mappings": [m(0, 0x1FF, 0, "s")]}]})
    f = iort.check(_topo())
    msgs = [x.message for x in f]
    assert any("RID 02:03.0 of old" in x and "no ID mapping of rc0 covers 0x218" in x for x in msgs)
    assert any("RID 02:00.0 of old" in x for x in msgs)
    assert any("host bridge pcie.0" in x and "02:00.0" in x for x in msgs)
    assert any("host bridge pxb1" in x for x in msgs)
    assert all(x.fix for x in f)


def test_check_rmr_needs_preserve_config():
    t = PciTopology.from_spec({"host_bridge": [{"name": "h"}],
                               "device": [{"name": "e", "parent": "h", "addr": "1"}]})
    spec = {**RMR, "root_complex": [{"name": "rc0", "id_mappings": [m(0, 0xFFFF, 0, "smmu0")]}],
            "rmr": [{"name": "msi", "ranges": [{"base": 0x8000000, "length": 0x100000}],
                     "id_mappings": [m(0, 0xFF, 0, "smmu0")]}]}
    f = Iort.from_spec(spec).check(t)
    assert any("preserve_config" in x.fix and x.node == "rc0" for x in f)
    spec["root_complex"][0]["preserve_config"] = True
    assert Iort.from_spec(spec).check(t) == []


def test_round_trip():
    for spec in (TWO, RMR):
        i = Iort.from_spec(spec)
        s = i.to_spec()
        assert Iort.from_spec(s).to_spec() == s
        assert Iort.from_spec(s).explain(0x8108) == i.explain(0x8108)


@pytest.mark.parametrize("spec, msg", [
    ({"root_complex": [{"name": "rc", "id_mappings": [{"input_base": 0, "output_base": 0,
                                                       "output": "x"}]}]},
     r"iort\.root_complex\[rc\]\.id_mappings\[0\]\.count: missing "
     r"\(count is the number of IDs minus one\)"),
    ({"root_complex": [{"name": "rc", "id_mappings": [m(0xFFFFFFF0, 0x20, 0, "x")]}]},
     r"id_mappings\[0\]: the range .* passes 32 bits"),
    ({"smmuv3": [{"name": "s"}]}, r"iort\.smmuv3\[s\]\.base: missing"),
    ({"its_group": [{"name": "a"}], "rmr": [{"name": "a"}]},
     r"iort\.rmr\[0\]\.name: 'a' is already used"),
    ({"pmcg": []}, r"iort: unknown key 'pmcg'"),
])
def test_spec_errors(spec, msg):
    with pytest.raises(ScenarioError, match=msg) as e:
        Iort.from_spec(spec)
    assert "\n" not in str(e.value)


def test_qemu_virt_layout_two_smmus_on_pxb():
    from smmudbg.model.iort import qemu_virt_iort
    t = _topo()     # pcie.0 uses buses 0..2, pxb1 (bus_nr 0x80) buses 0x80..0x81
    i = qemu_virt_iort(t, [{"name": "smmu0", "buses": ["pcie.0"], "accel": True},
                           {"name": "smmu1", "buses": ["pxb1"], "accel": True}])
    rc = i.nodes["rc"].mappings
    # RC: 0..0x2ff -> smmu0, 0x8000..0x81ff -> smmu1, the gaps 0x300..0x7fff and
    # 0x8200..0xffff straight to the ITS group. Counts are number of IDs - 1.
    assert [(x.input_base, x.count, x.output) for x in rc] == [
        (0, 0x2FF, "smmu0"), (0x8000, 0x1FF, "smmu1"),
        (0x300, 0x7CFF, "its"), (0x8200, 0x7DFF, "its")]
    assert i.nodes["rc"].preserve_config and i.nodes["rc"].ats
    assert i.explain(0x218).smmu == "smmu0" and i.explain(0x8100).stream_id == 0x8100
    p = i.explain(0x400)
    assert p.ok and p.smmu is None and p.device_id == 0x400
    r = i.rmr_regions("smmu1", stream_ids=[0x8100], pci_device=True, preserve_config=True)
    assert [(x.base, x.length, x.stream_ids) for x in r] == \
        [(0x8000000, 0x100000, ((0x8000, 0x81FF),))]
    assert i.check(t) == []


def test_qemu_legacy_count_relies_on_the_linux_workaround():
    from smmudbg.model.iort import qemu_virt_iort
    i = qemu_virt_iort(_topo(), [{"name": "smmu0", "buses": ["pcie.0"]}], legacy_count=True)
    # RC mapping 0 is written 0..0x300 (count 0x300): RID 0x300 is its last ID, and the ITS
    # range starts there, so Linux sends 0x300 to the ITS directly.
    p = i.explain(0x300)
    assert p.smmu is None and p.device_id == 0x300
    assert i.explain(0x2FF).smmu == "smmu0"
    assert any("looks like the number of IDs" in f.message for f in i.check())


def test_two_segments_each_with_its_root_complex():
    t = PciTopology.from_spec({
        "host_bridge": [{"name": "h0"}, {"name": "h1", "segment": 1}],   # both start at bus 0
        "device": [{"name": "a", "parent": "h0", "addr": "1"},
                   {"name": "b", "parent": "h1", "addr": "1"}]})
    assert t.bdf("a") == "0000:00:01.0" and t.bdf("b") == "0001:00:01.0"
    assert t.device_at(1, 0x08).name == "b"
    i = Iort.from_spec({
        "its_group": [{"name": "its0", "its_ids": [0]}],
        "smmuv3": [{"name": "s0", "base": 0, "id_mappings": [m(0, 0xFFFF, 0, "its0")]},
                   {"name": "s1", "base": 0x20000, "id_mappings": [m(0, 0xFFFF, 0x10000, "its0")]}],
        "root_complex": [{"name": "rc0", "segment": 0, "id_mappings": [m(0, 0xFFFF, 0, "s0")]},
                         {"name": "rc1", "segment": 1, "id_mappings": [m(0, 0xFFFF, 0, "s1")]}]})
    pa, pb = i.explain_device(t, "a"), i.explain_device(t, "b")
    assert (pa.msi.root_complex, pa.aliases[0].smmu, pa.msi.device_id) == ("rc0", "s0", 0x08)
    assert (pb.msi.root_complex, pb.aliases[0].smmu, pb.msi.device_id) == ("rc1", "s1", 0x10008)
    assert i.check(t) == []


def test_alias_split_between_smmu_and_bypass_is_an_error():
    # own RID 0x218 -> smmu a; the bridge alias 0x200 -> straight to the ITS
    iort = Iort.from_spec({
        "its_group": [{"name": "its0", "its_ids": [0]}],
        "smmuv3": [{"name": "a", "base": 0, "id_mappings": [m(0, 0xFFFF, 0, "its0")]}],
        "root_complex": [{"name": "rc0", "id_mappings": [m(0x200, 0, 0x200, "its0"),
                                                         m(0, 0xFFFF, 0, "a")]}]})
    t = _topo()
    p = iort.explain_device(t, "old")
    assert [(x.rid, x.smmu) for x in p.aliases] == [(0x218, "a"), (0x200, None)]
    assert p.aliases[1].failure is None          # on its own a bypass is no failure
    assert "alias 02:00.0 of old reaches no SMMU while others do" in p.failure
    assert any("reaches no SMMU" in f.message for f in iort.check(t))


def test_named_component_single_mapping_path():
    iort = Iort.from_spec({
        "its_group": [{"name": "its0", "its_ids": [0]}],
        "smmuv3": [{"name": "s", "base": 0, "id_mappings": [m(0, 0xFFFF, 0x20000, "its0")]}],
        "named_component": [{"name": "dma0", "device_name": "\\_SB.DMA0",
                             "id_mappings": [m(0, 0, 0x42, "s", single=True)]}]})
    p = iort.explain_from("dma0", 0x999)         # single mapping: the input ID is ignored
    assert (p.smmu, p.stream_id, p.device_id) == ("s", 0x42, 0x20042)
    assert p.root_complex is None and "single mapping" in p.steps[0].note
