"""Which nesting-parent S2 each device gets: the decision (plan_s2) and the same kernel rules
on live objects."""
import errno

from test_iommufd_ioas import FIXED, RW, errno_of, make_system

from smmudbg.model.iommufd import (IOMMU_HWPT_ALLOC_NEST_PARENT, DeviceNeed, IommuCaps,
                                   Iommufd, plan_s2)

SMMU0, SMMU1 = IommuCaps("smmu0", s2fwb=True), IommuCaps("smmu1", s2fwb=True)


def s2_of(plan):
    return {c.device: c.s2 for c in plan.choices}


def test_coherent_devices_on_one_smmu_share_one_s2():
    p = plan_s2([DeviceNeed("a", "smmu0"), DeviceNeed("b", "smmu0")], {"smmu0": SMMU0})
    assert p.s2s == (("S2#1", ("a", "b")),)
    assert "shares S2#1 with a" in p.choices[1].reason


def test_mainline_needs_one_s2_per_smmu():
    iommus = {"smmu0": SMMU0, "smmu1": SMMU1}
    devs = [DeviceNeed("a", "smmu0"), DeviceNeed("b", "smmu1"), DeviceNeed("c", "smmu1")]
    p = plan_s2(devs, iommus)
    assert s2_of(p) == {"a": "S2#1", "b": "S2#2", "c": "S2#2"}
    assert "arm_vsmmu_init" in p.choices[1].reason
    # the proposed VMID-per-vSMMU series lets one S2 serve both SMMUs
    assert set(s2_of(plan_s2(devs, iommus, share_across_iommus=True)).values()) == {"S2#1"}


def test_non_coherent_device_forces_a_second_s2_in_either_order():
    iommus = {"smmu0": SMMU0}
    p = plan_s2([DeviceNeed("a", "smmu0"), DeviceNeed("nc", "smmu0", coherent=False)], iommus)
    assert s2_of(p) == {"a": "S2#1", "nc": "S2#2"}
    assert "arm_smmu_attach_prepare" in p.choices[1].reason
    p = plan_s2([DeviceNeed("nc", "smmu0", coherent=False), DeviceNeed("a", "smmu0"),
                 DeviceNeed("b", "smmu0")], iommus)
    assert s2_of(p) == {"nc": "S2#1", "a": "S2#2", "b": "S2#2"}
    assert "iommufd_hwpt_paging_enforce_cc" in p.choices[1].reason


def test_non_coherent_device_without_s2fwb_cannot_nest():
    p = plan_s2([DeviceNeed("nc", "smmu0", coherent=False)], {"smmu0": IommuCaps("smmu0")})
    assert p.s2s == () and p.choices[0].s2 == "-"
    assert "arm_smmu_get_viommu_size" in p.choices[0].reason


def test_vtd_erratum_772415_splits_only_with_read_only_maps():
    iommus = {"vtd0": IommuCaps("vtd0", kind="vtd"),
              "vtd1": IommuCaps("vtd1", kind="vtd", no_readonly_s2=True)}
    devs = [DeviceNeed("a", "vtd0"), DeviceNeed("b", "vtd1")]
    both = plan_s2(devs, iommus, readonly_maps=True, share_across_iommus=True)
    assert s2_of(both) == {"a": "S2#1", "b": "S2#2"}
    assert "ERRATA_772415" in both.choices[1].reason
    assert set(s2_of(plan_s2(devs, iommus, share_across_iommus=True)).values()) == {"S2#1"}
    # VT-d enforces coherency by snoop control: a non-coherent device does not split
    nc = plan_s2([DeviceNeed("a", "vtd0"), DeviceNeed("n", "vtd0", coherent=False)], iommus)
    assert set(s2_of(nc).values()) == {"S2#1"}


def test_iommu_without_nesting_gets_no_s2():
    s = make_system(features="S1P = 0, S2P = 1, OAS = 5")
    p = plan_s2([DeviceNeed("a", "smmu0")], {"smmu0": IommuCaps.from_smmu(s.smmu())})
    assert p.choices[0].s2 == "-" and "NESTING" in p.choices[0].reason


def test_live_objects_follow_the_same_rules():
    s = make_system(features="S1P = 1, S2P = 1, VMID16 = 1, OAS = 5, FWB = 1")
    fd = Iommufd()
    nc = fd.bind("nc", s.smmu(), 1, canwbs=False)
    a = fd.bind("a", s.smmu(), 2)
    io = fd.ioas_alloc()
    fd.ioas_map(io.id, 0x10_0000, 0x5000_0000, RW | FIXED, 0x4000_0000)
    s2nc = fd.hwpt_alloc(nc.id, io.id, IOMMU_HWPT_ALLOC_NEST_PARENT)
    assert not s2nc.enforce_cache_coherency
    fd.attach(nc.id, s2nc.id)
    # a coherent device cannot upgrade an S2 with a non-coherent device on it
    assert errno_of(fd.attach, a.id, s2nc.id) == errno.EINVAL
    s2a = fd.hwpt_alloc(a.id, io.id, IOMMU_HWPT_ALLOC_NEST_PARENT)
    fd.attach(a.id, s2a.id)
    ex = {e.device: e for e in fd.explain()}
    assert ex["nc"].s2 == s2nc.id and ex["a"].s2 == s2a.id and s2a.vmid != s2nc.vmid
    assert "not enforced" in ex["nc"].reason and "coherency enforced" in ex["a"].reason
    # both S2s map the same IOAS
    assert s.smmu().translate(1, 0x4000_0040)["pa"] == 0x5000_0040
    assert s.smmu().translate(2, 0x4000_0040)["pa"] == 0x5000_0040
