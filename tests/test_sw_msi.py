"""The software-MSI window of an iommufd device and how the nested MSI path breaks around it:
the proposed IOMMU_OPTION_SW_MSI_START/SIZE (per device; their checks and errnos), several ITS
pages in one window (only the first is reliably at the start), and the RMR window the guest
must identity-map.

Expected values from the sources, not from the model:
- the option patch (Nicolin Chen, "iommufd: Add IOMMU_OPTION_SW_MSI_START/SIZE ioctls", v2, Oct
  2025; ../shared/smmu-facts.md 8.2): per device; -EBUSY once attached; START and SIZE 1 MB
  aligned (-EINVAL), SIZE in MB, a window of at least 1 MB; -EOVERFLOW when it wraps;
  -EADDRINUSE when it overlaps another reserved region that is not DIRECT_RELAXABLE; SIZE 0 =
  the driver's window (MSI_IOVA_BASE 0x800_0000, 1 MiB);
- iommufd_sw_msi_get_map: the doorbell pages of one start get page offsets 0, 1, ... in the
  order they are first requested, fd-wide;
- QEMU virt's IORT for an accelerated SMMU has an RMR over [0x800_0000, +1 MiB), no remapping
  (IOMMU_RESV_DIRECT): the guest maps that IOVA window identity;
- the scenarios' numbers: its0 at 0x0808_0000 (GITS_TRANSLATER 0x0809_0040), guest S1 of nic0
  maps gIOVA 0x800_0000 -> gDB 0x0809_0000, nic0 (RID 0x100) -> LPI 8192.
"""
import errno
from pathlib import Path

import pytest

from smmudbg.errors import ModelError, ScenarioError
from smmudbg.model.iommufd import MSI_IOVA_BASE, MSI_IOVA_LENGTH, IommufdError
from smmudbg.model.iommufd.ctx import (IOMMU_OPTION_OP_GET, IOMMU_OPTION_OP_SET,
                                       IOMMU_OPTION_SW_MSI_SIZE, IOMMU_OPTION_SW_MSI_START)
from smmudbg.model.system import System
from smmudbg.session import Session

ROOT = Path(__file__).resolve().parent.parent
ACCEL = (ROOT / "examples" / "vsmmu-accel.toml").read_text()
TWO = (ROOT / "examples" / "two-vsmmu.toml").read_text()
START, SIZE, SET, GET = (IOMMU_OPTION_SW_MSI_START, IOMMU_OPTION_SW_MSI_SIZE,
                         IOMMU_OPTION_OP_SET, IOMMU_OPTION_OP_GET)
MB = 1 << 20


def errno_of(fn, *a):
    with pytest.raises(IommufdError) as e:
        fn(*a)
    return e.value.errno


def fresh(sysm, sid=0x400):
    """A newly bound device (not attached) on smmu0."""
    return sysm.iommufd.fd.bind("x", sysm.smmu("smmu0"), sid)


def test_option_checks_and_errnos():
    sysm = System.from_text(ACCEL)
    fd = sysm.iommufd.fd
    dev = fresh(sysm)
    opt = fd.option_sw_msi
    assert errno_of(opt, START, SET, dev.id, 0x0809_0000) == errno.EINVAL     # not 1 MB aligned
    assert opt(START, SET, dev.id, (1 << 64) - MB) == 0             # the last 1 MB: fits
    assert errno_of(opt, SIZE, SET, dev.id, 2) == errno.EOVERFLOW      # 2 MB from there wraps
    assert opt(START, SET, dev.id, 0x0810_0000) == 0
    assert opt(START, GET, dev.id) == 0x0810_0000 and opt(SIZE, GET, dev.id) == 0
    # START alone: the driver's window stays (SIZE 0)
    assert fd.sw_msi_window(dev) == (MSI_IOVA_BASE, MSI_IOVA_LENGTH)
    assert opt(SIZE, SET, dev.id, 2) == 0 and opt(SIZE, GET, dev.id) == 2
    assert fd.sw_msi_window(dev) == (0x0810_0000, 2 * MB)
    dev.resv = [(0x0820_0000, 0x0820_ffff, "direct")]
    assert errno_of(opt, SIZE, SET, dev.id, 3) == errno.EADDRINUSE           # [0x810.., +3M)
    dev.resv = [(0x0820_0000, 0x0820_ffff, "direct-relaxable")]
    assert opt(SIZE, SET, dev.id, 3) == 0                                    # not enforced
    assert errno_of(opt, 7, SET, dev.id, 0) == errno.EOPNOTSUPP
    # attached: the window is enforced at attach, the options are refused
    nic0 = sysm.iommufd.objects["nic0"]
    assert errno_of(opt, START, SET, nic0.id, 0x0810_0000) == errno.EBUSY
    assert errno_of(opt, START, GET, nic0.id) == errno.EBUSY


def test_attach_reserves_the_option_window():
    sysm = System.from_text(ACCEL)
    fd = sysm.iommufd.fd
    dev = fresh(sysm)
    fd.option_sw_msi(START, SET, dev.id, 0x0900_0000)
    fd.option_sw_msi(SIZE, SET, dev.id, 4)
    s2 = sysm.iommufd.objects["s2"]
    fd.attach(dev.id, s2.id)
    assert (0x0900_0000, 0x0900_0000 + 4 * MB - 1, "x SW_MSI") in s2.ioas.reserved


def test_scenario_sw_msi_size_goes_through_the_option():
    # QEMU virt's doorbell page 0x0809_0000 is not 1 MB aligned: the option refuses it
    text = ACCEL.replace('sid = 0x100, sw_msi_start = 0x0809_0000,',
                         'sid = 0x100, sw_msi_start = 0x0809_0000, sw_msi_size = 1,')
    with pytest.raises(ScenarioError) as e:
        System.from_text(text, "t.toml")
    assert "iommufd.devices[0]" in str(e.value) and "-EINVAL" in str(e.value)


def test_option_window_at_the_default_start_misses_the_guest_doorbell():
    # SW_MSI_START 0x800_0000, 1 MB: the host ITS page lands at IPA 0x800_0000, but the guest's
    # stage 1 sends gIOVA 0x800_0040 to its doorbell gDB 0x0809_0040, which the S2 lacks
    text = ACCEL.replace('sw_msi_start = 0x0809_0000,', 'sw_msi_start = 0x0800_0000, '
                         'sw_msi_size = 1,')
    s = Session(text, "t")
    assert s.system.iommufd.objects["s2"].sw_msi == {0x800_0000: 0x0809_0000}
    m = s.run("msi nic0 0")
    assert not m.ok and m.failed == "smmu" and "stage 2" in m.reason and "0x8090040" in m.reason
    # with the window at the doorbell GPA for one device only, the shared S2 serves both
    text = ACCEL.replace('sid = 0x200, sw_msi_start = 0x0809_0000,',
                         'sid = 0x200, sw_msi_start = 0x0800_0000, sw_msi_size = 1,')
    s = Session(text, "t")
    assert s.run("msi nic0 0").ok and s.run("msi nic1 0").ok


TWO_ITS = ACCEL + '''
[[its]]
name = "its1"
base = 0x0a00_0000
pool = { base = 0x4210_0000, size = 0x0010_0000 }
collections = [{ icid = 0, target = 0 }]
'''


@pytest.mark.parametrize("order,ok0", [('["its0", "its1"]', True), ('["its1", "its0"]', False)])
def test_several_its_pages_only_the_first_is_at_the_start(order, ok0):
    text = TWO_ITS.replace('sid = 0x100, sw_msi_start = 0x0809_0000, msi_its = "its0"',
                           f'sid = 0x100, sw_msi_start = 0x0809_0000, msi_its = {order}')
    s = Session(text, "t")
    s2 = s.system.iommufd.objects["s2"]
    first = "its0" if ok0 else "its1"
    second = "its1" if ok0 else "its0"
    base = {n: s.system.its[n].base + 0x1_0000 for n in ("its0", "its1")}
    # iommufd_sw_msi_get_map: pgoff 0 for the first page requested, 1 for the next
    assert s2.sw_msi[0x0809_0000] == base[first]
    assert s2.sw_msi[0x0809_1000] == base[second]
    m = s.run("msi nic0 0")
    assert m.ok is ok0
    if not ok0:
        # gDB 0x0809_0040 now reaches its1's GITS_TRANSLATER, where nic0 has no DTE
        assert m.failed == "its" and m.its == "its1" and "UNMAPPED_DEVICE" in m.reason
        # the map is fd-global: nic1, which only uses its0, meets its1 at the start too
        assert not s.run("msi nic1 0").ok


def test_rmr_window_must_be_identity_mapped_by_the_guest():
    # the driver's window (no sw_msi_start): the host ITS page at IPA 0x800_0000, which the
    # accelerated IORT's RMR asks the guest to map IOVA = IPA
    text = TWO.replace(', sw_msi_start = 0x0809_0000, msi_its = "its0" }', ', msi_its = "its0" }')
    s = Session(text, "t")
    rmr = [r for r in s.system.iort.rmr_regions("smmu0", [0x100])]
    assert [(r.base, r.length, r.type) for r in rmr] == [(0x800_0000, 0x10_0000, "direct")]
    m = s.run("msi nic0 0")
    assert not m.ok and m.failed == "smmu" and "RMR" in m.reason
    assert "identity-map the RMR window: map IOVA 0x8000000 -> IPA 0x8000000" in m.fix
    # the guest maps its MSI page identity: gIOVA 0x800_0040 -> gDB 0x800_0040 -> its0
    assert s.execute("unmap nic0-dma 0x8000000 4K").ok
    assert s.execute("map nic0-dma 0x8000000 0x8000000 4K").ok
    m = s.run("msi nic0 0")
    assert m.ok and (m.ipa, m.pa) == (0x800_0040, 0x0809_0040) and m.intid == 8192


def test_option_start_on_the_rmr_is_refused():
    # the accelerated IORT's RMR is a DIRECT region of the device: a window over it -EADDRINUSE
    text = TWO.replace('sid = 0x100, sw_msi_start = 0x0809_0000,',
                       'sid = 0x100, sw_msi_start = 0x0800_0000, sw_msi_size = 1,')
    with pytest.raises(ScenarioError, match="EADDRINUSE"):
        System.from_text(text, "t.toml")


def test_sw_msi_needs_an_attached_device():
    sysm = System.from_text(ACCEL)
    dev = fresh(sysm)
    with pytest.raises(ModelError, match="not attached"):
        sysm.iommufd.fd.sw_msi(dev.id, 0x0809_0040)
