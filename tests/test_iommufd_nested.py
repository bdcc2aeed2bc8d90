"""Nested iommufd flow on SMMUv3: nesting-parent S2, vIOMMU, vDEVICE, nested HWPT from a guest
vSTE, the host STE in the physical stream table, HWPT_INVALIDATE and vEVENTQ; each errno from
the kernel function named in the test (arm-smmu-v3-iommufd.c, iommufd/*.c)."""
import errno

import pytest
from core_cy.ptbuild import BumpAllocator, TableBuilder
from test_iommufd_ioas import FIXED, RW, errno_of, make_system

from smmudbg.arch.fieldtable import fmt
from smmudbg.arch.smmuv3.events import encode_cmd
from smmudbg.model.iommufd import (IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_DATA_ARM_SMMUV3,
                                   Iommufd, validate_vste)

STE, CD = fmt("STE"), fmt("CD")
GUEST_IPA, GUEST_PA, GUEST_SIZE = 0x4000_0000, 0x6000_0000, 0x1000_0000
PSID, VSID = 0x100, 0x10
GIOVA, GIPA = 0x1000_0000, 0x4100_0000
ASID = 1
# STE bit positions from IHI 0070 (5.2 STE): V = STE[0], Config = STE[3:1], MEV = STE[83],
# S2VMID = STE[143:128], S2TTB = STE[243:196], EATS = STE[93:92].
V_BIT, CFG_SHIFT = 1, 1


def vste(config, ctx=0, **extra):
    w = STE.encode(V=1, Config=config, S1ContextPtr=ctx >> 6, S1CIR=1, S1COR=1, S1CSH=3,
                   **extra)
    return w[0], w[1]


class Guest:
    """A VM with one accelerated vSMMU over smmu0 and one vfio device (PSID 0x100, vSID 0x10),
    its CD and stage-1 tables in guest RAM, built here from the test's own mappings."""

    def __init__(self, features=None, canwbs=True, depth=8):
        self.sys = make_system(features=features)
        self.smmu = self.sys.smmu()
        self.fd = Iommufd()
        self.dev = self.fd.bind("nic0", self.smmu, PSID, canwbs=canwbs)
        self.ioas = self.fd.ioas_alloc()
        self.fd.ioas_map(self.ioas.id, GUEST_SIZE, GUEST_PA, RW | FIXED, GUEST_IPA)
        self.s2 = self.fd.hwpt_alloc(self.dev.id, self.ioas.id, IOMMU_HWPT_ALLOC_NEST_PARENT)
        self.viommu = self.fd.viommu_alloc(self.dev.id, self.s2.id)
        self.vdev = self.fd.vdevice_alloc(self.viommu.id, self.dev.id, VSID)
        self.veventq = self.fd.veventq_alloc(self.viommu.id, depth)
        win = [(GUEST_IPA, GUEST_SIZE, GUEST_PA)]
        self.galloc = BumpAllocator(0x4f00_0000, 0x10_0000)       # guest IPA for tables
        self.s1 = TableBuilder(self.sys.mem, 1, 4096, 48, self.galloc, windows=win)
        self.s1.map(GIOVA, GIPA, 0x2000)
        self.cd_ipa = self.galloc.alloc(64)
        cd = CD.encode(V=1, AA64=1, T0SZ=self.s1.tsz, TG0=self.s1.tg, IR0=1, OR0=1, SH0=3,
                       EPD1=1, IPS=5, R=1, A=1, ASID=ASID,
                       TTB0=CD.field("TTB0").from_address(self.s1.root), MAIR0=0x0404FF)
        self.sys.mem.write_words(GUEST_PA + self.cd_ipa - GUEST_IPA, cd)

    def nested(self, config=5, **extra):
        return self.fd.hwpt_alloc(self.dev.id, self.viommu.id, 0, IOMMU_HWPT_DATA_ARM_SMMUV3,
                                  vste(config, self.cd_ipa, **extra))

    def attach_s1(self):
        hw = self.nested()
        return hw, self.fd.attach(self.dev.id, hw.id)

    def tlbi_nh_va(self, giova):
        # the guest's command as the guest wrote it: its own VMID field (0), its vSID world
        return encode_cmd("CMD_TLBI_NH_VA", ASID=ASID, Address=giova >> 12, Leaf=1)


@pytest.fixture
def g():
    return Guest()


# -- the full flow ------------------------------------------------------------------------------
def test_full_flow_translates_giova_to_host_pa(g):
    hw, words = g.attach_s1()
    assert g.smmu.read_ste(PSID) == words            # written into the physical stream table
    r = g.smmu.translate(PSID, GIOVA + 0x123)
    assert r["fault"] is None
    # gIOVA -> gIPA by the guest S1 (GIOVA -> GIPA), gIPA -> PA by the IOAS (IPA base -> PA base)
    assert r["ipa"] == GIPA + 0x123
    assert r["pa"] == GUEST_PA + (GIPA - GUEST_IPA) + 0x123


def test_host_ste_fields(g):
    hw, w = g.attach_s1()
    assert w[0] & V_BIT and (w[0] >> CFG_SHIFT) & 7 == 0b111           # V, Config = nested
    assert w[0] >> 6 & ((1 << 46) - 1) == g.cd_ipa >> 6                  # guest S1ContextPtr
    assert (w[1] >> 19) & 1 == 1                                          # MEV (STE[83])
    assert w[1] & 0xFF == 0xD4                 # guest S1DSS 0, S1CIR 1, S1COR 1, S1CSH 3
    assert w[2] & 0xFFFF == g.viommu.vmid == g.s2.vmid == 1               # first VMID is 1
    assert (w[3] >> 4) << 4 == g.s2.tables.root                            # S2TTB
    assert (w[2] >> 32) & 0x3F == 64 - 48                                 # S2T0SZ: 48-bit IPA


def test_bypass_vste_gives_the_parent_s2_ste(g):
    hw = g.nested(config=4)
    w = g.fd.attach(g.dev.id, hw.id)
    assert (w[0] >> CFG_SHIFT) & 7 == 0b110                                # S2 translate
    r = g.smmu.translate(PSID, GIPA + 0x40)             # bypass S1: the address is an IPA
    assert r["pa"] == GUEST_PA + (GIPA - GUEST_IPA) + 0x40


@pytest.mark.parametrize("ste0,ste1", [(0x1, 0), (0x0, 0), (0xFFF0, 0xFFFF)])
def test_abort_and_invalid_vste_give_an_abort_ste(ste0, ste1):
    g = Guest()
    hw = g.fd.hwpt_alloc(g.dev.id, g.viommu.id, 0, IOMMU_HWPT_DATA_ARM_SMMUV3, (ste0, ste1))
    w = g.fd.attach(g.dev.id, hw.id)
    assert w == [0x1] + [0] * 7           # arm_smmu_make_abort_ste: V=1, Config=0, rest 0
    assert g.smmu.translate(PSID, GIOVA)["pa"] is None


# -- arm_smmu_validate_vste ---------------------------------------------------------------------
def test_invalid_vste_is_zeroed_and_accepted():
    assert validate_vste(0xDEAD_BEE0, 0xFFFF) == (0, 0, False)


@pytest.mark.parametrize("ste0,ste1,why", [
    (0x1 | 6 << 1, 0, "Config s2_trans"),
    (0x1 | 7 << 1, 0, "Config nested"),
    (0x1 | 1 << 1, 0, "Config reserved"),
    (0x1 | 5 << 1 | 1 << 52, 0, "S1ContextPtr bit 52: Linux's S1CTXPTR_MASK is [51:6]"),
    (0x1 | 5 << 1 | 1 << 56, 0, "a reserved dw0 bit"),
    (0x1 | 5 << 1, 1 << 19, "MEV is the host's"),
    (0x1 | 5 << 1, 2 << 28, "EATS s1chk"),
    (0x1 | 5 << 1, 1 << 44, "SHCFG"),
])
def test_vste_rejected_with_eio(ste0, ste1, why):
    # arm_smmu_validate_vste: "EIO is reserved for invalid STE data"
    g = Guest()
    assert errno_of(g.fd.hwpt_alloc, g.dev.id, g.viommu.id, 0, IOMMU_HWPT_DATA_ARM_SMMUV3,
                    (ste0, ste1)) == errno.EIO, why


def test_vste_eats_trans_enables_ats_and_is_stripped():
    s0, s1, ats = validate_vste(0x1 | 5 << 1, 1 << 28)
    assert (s0, s1, ats) == (0x1 | 5 << 1, 0, True)
    assert validate_vste(0x1 | 4 << 1, 1 << 28)[2] is False   # only with S1_TRANS


def test_nested_alloc_errnos(g):
    fd = g.fd
    v = (0x1 | 5 << 1, 0)
    # iommufd_viommu_alloc_hwpt_nested: any flag but FAULT_ID_VALID -> -EOPNOTSUPP
    assert errno_of(fd.hwpt_alloc, g.dev.id, g.viommu.id, 1, IOMMU_HWPT_DATA_ARM_SMMUV3, v) \
        == errno.EOPNOTSUPP
    # iommufd_hwpt_alloc: data_type NONE with data -> -EINVAL
    assert errno_of(fd.hwpt_alloc, g.dev.id, g.viommu.id, 0, 0, v) == errno.EINVAL
    # iommu_copy_struct_from_user: the wrong data type -> -EINVAL
    assert errno_of(fd.hwpt_alloc, g.dev.id, g.viommu.id, 0, 1, v) == errno.EINVAL
    # iommufd_hwpt_alloc: pt_id that is no object -> -EINVAL; dev_id that is none -> -ENOENT
    assert errno_of(fd.hwpt_alloc, g.dev.id, 999, 0, IOMMU_HWPT_DATA_ARM_SMMUV3, v) == \
        errno.EINVAL
    assert errno_of(fd.hwpt_alloc, 999, g.viommu.id, 0, IOMMU_HWPT_DATA_ARM_SMMUV3, v) == \
        errno.ENOENT
    # SMMUv3 has no ops->domain_alloc_nested: a nested HWPT on the S2 HWPT -> -EOPNOTSUPP
    assert errno_of(fd.hwpt_alloc, g.dev.id, g.s2.id, 0, IOMMU_HWPT_DATA_ARM_SMMUV3, v) == \
        errno.EOPNOTSUPP


# -- nesting parent -------------------------------------------------------------------------------
def test_nest_parent_errnos():
    s = make_system(features="S1P = 0, S2P = 1, OAS = 5")
    fd = Iommufd()
    dev = fd.bind("d", s.smmu(), 1)
    io = fd.ioas_alloc()
    # arm_smmu_domain_alloc_paging_flags: NEST_PARENT without FEAT_NESTING -> -EOPNOTSUPP
    assert errno_of(fd.hwpt_alloc, dev.id, io.id, IOMMU_HWPT_ALLOC_NEST_PARENT) == \
        errno.EOPNOTSUPP
    # iommufd_hwpt_paging_alloc: unknown flag, FAULT_ID_VALID with NEST_PARENT, dirty
    # tracking without HTTU -> -EOPNOTSUPP
    assert errno_of(fd.hwpt_alloc, dev.id, io.id, 1 << 5) == errno.EOPNOTSUPP
    assert errno_of(fd.hwpt_alloc, dev.id, io.id, 1 | 4) == errno.EOPNOTSUPP
    assert errno_of(fd.hwpt_alloc, dev.id, io.id, 1 | 2) == errno.EOPNOTSUPP


def test_s2_kept_in_sync_with_the_ioas(g):
    g.fd.attach(g.dev.id, g.s2.id)               # S2-only: device DMA is guest-physical
    assert g.smmu.translate(PSID, GIPA)["pa"] == GUEST_PA + (GIPA - GUEST_IPA)
    g.fd.ioas_map(g.ioas.id, 0x1000, 0x7000_0000, RW | FIXED, 0x9000_0000)
    assert g.smmu.translate(PSID, 0x9000_0010)["pa"] == 0x7000_0010
    g.fd.ioas_unmap(g.ioas.id, 0x9000_0000, 0x1000)
    # the unmap's TLB invalidation removed the cached translation: now a fault
    r = g.smmu.translate(PSID, 0x9000_0010)
    assert r["pa"] is None and r["fault"]["type"] == "F_TRANSLATION"


# -- vIOMMU ---------------------------------------------------------------------------------------
def test_viommu_errnos():
    s = make_system(smmus=("smmu0", "smmu1"))
    fd = Iommufd()
    a = fd.bind("a", s.smmu("smmu0"), 1)
    b = fd.bind("b", s.smmu("smmu1"), 1)
    io = fd.ioas_alloc()
    s2a = fd.hwpt_alloc(a.id, io.id, IOMMU_HWPT_ALLOC_NEST_PARENT)
    # iommufd_viommu_alloc_ioctl: flags or type DEFAULT -> -EOPNOTSUPP
    assert errno_of(fd.viommu_alloc, a.id, s2a.id, 1, 1) == errno.EOPNOTSUPP
    assert errno_of(fd.viommu_alloc, a.id, s2a.id, 0) == errno.EOPNOTSUPP
    # no such HWPT -> -ENOENT (iommufd_get_hwpt_paging)
    assert errno_of(fd.viommu_alloc, a.id, 999) == errno.ENOENT
    # arm_vsmmu_init: the S2 parent of another SMMU -> -EINVAL
    assert errno_of(fd.viommu_alloc, b.id, s2a.id) == errno.EINVAL
    va = fd.viommu_alloc(a.id, s2a.id)
    assert va.vmid == s2a.vmid


def test_viommu_vmid_per_viommu_shares_one_s2_across_smmus():
    s = make_system(smmus=("smmu0", "smmu1"))
    fd = Iommufd(vmid_per_viommu=True)
    a = fd.bind("a", s.smmu("smmu0"), 1)
    b = fd.bind("b", s.smmu("smmu1"), 1)
    io = fd.ioas_alloc()
    s2 = fd.hwpt_alloc(a.id, io.id, IOMMU_HWPT_ALLOC_NEST_PARENT)
    va = fd.viommu_alloc(a.id, s2.id)
    vb = fd.viommu_alloc(b.id, s2.id)
    assert va.parent is vb.parent is s2
    assert va.vmid == 2 and vb.vmid == 1        # smmu0: 1 is the S2's; smmu1 starts at 1


def test_non_coherent_device_needs_s2fwb_for_a_viommu():
    # arm_smmu_get_viommu_size: !canwbs && !S2FWB -> 0 -> -EOPNOTSUPP
    with pytest.raises(Exception) as e:
        Guest(canwbs=False)
    assert getattr(e.value, "errno", None) == errno.EOPNOTSUPP
    g = Guest(features="S1P = 1, S2P = 1, VMID16 = 1, OAS = 5, FWB = 1", canwbs=False)
    assert not g.s2.enforce_cache_coherency
    _hw, w = g.attach_s1()
    assert (w[1] >> 25) & 1 == 1                 # S2FWB (STE[89]) from IDR3.FWB


# -- vDEVICE --------------------------------------------------------------------------------------
def test_vdevice_errnos(g):
    fd = g.fd
    other = fd.bind("nic1", g.smmu, 0x200)
    # iommufd_vdevice_alloc_ioctl: the vSID taken -> -EEXIST; the device has one -> -EEXIST
    assert errno_of(fd.vdevice_alloc, g.viommu.id, other.id, VSID) == errno.EEXIST
    assert errno_of(fd.vdevice_alloc, g.viommu.id, g.dev.id, 0x11) == errno.EEXIST
    # virt_id > ULONG_MAX -> -EINVAL
    assert errno_of(fd.vdevice_alloc, g.viommu.id, other.id, 1 << 64) == errno.EINVAL
    assert errno_of(fd.vdevice_alloc, 999, other.id, 0x11) == errno.ENOENT
    fd.vdevice_alloc(g.viommu.id, other.id, 0x11)


def test_vdevice_on_another_smmu_is_einval():
    s = make_system(smmus=("smmu0", "smmu1"))
    fd = Iommufd()
    a = fd.bind("a", s.smmu("smmu0"), 1)
    b = fd.bind("b", s.smmu("smmu1"), 1)
    s2 = fd.hwpt_alloc(a.id, fd.ioas_alloc().id, IOMMU_HWPT_ALLOC_NEST_PARENT)
    v = fd.viommu_alloc(a.id, s2.id)
    assert errno_of(fd.vdevice_alloc, v.id, b.id, 5) == errno.EINVAL


def test_attach_translating_nested_needs_a_vdevice():
    g = Guest()
    other = g.fd.bind("nic1", g.smmu, 0x200)
    hw = g.nested()
    # arm_smmu_attach_prepare_vmaster: iommufd_viommu_get_vdev_id -> -ENOENT
    assert errno_of(g.fd.attach, other.id, hw.id) == errno.ENOENT
    # abort and bypass domains may attach without one (the GBPA case)
    g.fd.attach(other.id, g.nested(config=0).id)
    g.fd.attach(other.id, g.nested(config=4).id)


def test_non_coherent_device_on_a_coherent_s2_is_einval():
    g = Guest(features="S1P = 1, S2P = 1, VMID16 = 1, OAS = 5, FWB = 1")
    nc = g.fd.bind("nc", g.smmu, 0x300, canwbs=False)
    assert g.s2.enforce_cache_coherency
    # arm_smmu_attach_prepare: enforce_cache_coherency and !canwbs -> -EINVAL
    assert errno_of(g.fd.attach, nc.id, g.s2.id) == errno.EINVAL
    # the failed attach takes the device's reserved regions back out of the IOAS
    assert [r.owner for r in g.ioas.info().reserved if r.owner.startswith("nc")] == []


# -- IOMMU_HWPT_INVALIDATE ------------------------------------------------------------------------
def cached(g, giova):
    return g.smmu.translate(PSID, giova)["hit"]


def test_tlbi_nh_va_reaches_the_iotlb_with_the_viommu_vmid(g):
    g.attach_s1()
    assert g.smmu.translate(PSID, GIOVA)["pa"] is not None
    assert cached(g, GIOVA)
    g.s1.unmap(GIOVA, 0x1000)             # the guest unmaps; the IOTLB still has it
    assert g.smmu.translate(PSID, GIOVA)["pa"] is not None
    res = g.fd.hwpt_invalidate(g.viommu.id, [g.tlbi_nh_va(GIOVA)])
    assert (res.handled, res.errno) == (1, 0)
    last = [h for h in g.smmu.cmdq.history if h["command"] == "CMD_TLBI_NH_VA"][-1]
    assert last["fields"]["VMID"] == g.viommu.vmid and last["fields"]["ASID"] == ASID
    r = g.smmu.translate(PSID, GIOVA)
    assert r["pa"] is None and r["fault"]["type"] == "F_TRANSLATION"


def test_dropped_tlbi_leaves_the_entry_stale(g):
    g.attach_s1()
    g.smmu.translate(PSID, GIOVA)
    g.s1.unmap(GIOVA, 0x1000)
    g.smmu.drop_next_invalidations(1)
    res = g.fd.hwpt_invalidate(g.viommu.id, [g.tlbi_nh_va(GIOVA)])
    assert res.handled == 1                          # the kernel cannot tell
    assert g.smmu.translate(PSID, GIOVA)["pa"] == GUEST_PA + (GIPA - GUEST_IPA)


def test_cfgi_cd_gets_the_physical_sid(g):
    g.attach_s1()
    cmd = encode_cmd("CMD_CFGI_CD", StreamID=VSID, SubstreamID=0, Leaf=1)
    res = g.fd.hwpt_invalidate(g.viommu.id, [cmd])
    assert (res.handled, res.errno) == (1, 0)
    last = [h for h in g.smmu.cmdq.history if h["command"] == "CMD_CFGI_CD"][-1]
    assert last["fields"]["StreamID"] == PSID


def test_nsnh_all_becomes_nh_all_on_the_vmid(g):
    res = g.fd.hwpt_invalidate(g.viommu.id, [encode_cmd("CMD_TLBI_NSNH_ALL")])
    assert res.errno == 0
    last = g.smmu.cmdq.history[-2]
    assert last["command"] == "CMD_TLBI_NH_ALL" and last["fields"]["VMID"] == g.viommu.vmid


@pytest.mark.parametrize("cmd", ["CMD_CFGI_STE", "CMD_TLBI_S2_IPA", "CMD_TLBI_S12_VMALL",
                                 "CMD_SYNC", "CMD_PREFETCH_CONFIG", "CMD_TLBI_EL2_ALL"])
def test_other_commands_are_eio(g, cmd):
    # arm_vsmmu_convert_user_cmd: default -> -EIO
    ok = g.tlbi_nh_va(GIOVA)
    res = g.fd.hwpt_invalidate(g.viommu.id, [ok, ok, encode_cmd(cmd), ok])
    assert (res.handled, res.errno) == (2, errno.EIO)


def test_unknown_vsid_is_eio(g):
    # arm_vsmmu_vsid_to_sid: no vDEVICE -> -EIO
    res = g.fd.hwpt_invalidate(g.viommu.id, [encode_cmd("CMD_ATC_INV", StreamID=0x77)])
    assert (res.handled, res.errno) == (0, errno.EIO)


def test_refused_entry_drops_the_unissued_batch(g):
    """arm_vsmmu_cache_invalidate issues a batch only at CMDQ_BATCH_ENTRIES - 1 commands or at
    the end; a refused entry jumps out first, so the converted commands before it in the batch
    are counted in entry_num but never reach the command queue."""
    g.attach_s1()
    g.smmu.translate(PSID, GIOVA)
    g.s1.unmap(GIOVA, 0x1000)
    n = len(g.smmu.cmdq.history)
    res = g.fd.hwpt_invalidate(g.viommu.id, [g.tlbi_nh_va(GIOVA), encode_cmd("CMD_CFGI_STE")])
    assert (res.handled, res.errno) == (1, errno.EIO)
    assert len(g.smmu.cmdq.history) == n                      # nothing was issued
    assert g.smmu.translate(PSID, GIOVA)["pa"] is not None      # still stale


def test_batches_of_63_each_end_with_a_sync(g):
    res = g.fd.hwpt_invalidate(g.viommu.id, [g.tlbi_nh_va(GIOVA)] * 64)
    assert res.handled == 64
    syncs = [i for i, c in enumerate(res.sent) if c.startswith("CMD_SYNC")]
    assert syncs == [63, 65]                      # 63 commands + SYNC, then 1 + SYNC


def test_entry_len_other_than_16(g):
    ok = g.tlbi_nh_va(GIOVA)
    # copy_struct_from_user: longer entries with non-zero tail -> -E2BIG; zero tail is fine
    assert errno_of(g.fd.hwpt_invalidate, g.viommu.id, [ok + b"\1" * 8], 1, 24) == errno.E2BIG
    assert g.fd.hwpt_invalidate(g.viommu.id, [ok + bytes(8)], 1, 24).handled == 1
    # the data type is checked: -EINVAL
    assert errno_of(g.fd.hwpt_invalidate, g.viommu.id, [ok], 2) == errno.EINVAL


def test_invalidate_on_a_nested_hwpt_or_ioas(g):
    hw = g.nested()
    # SMMUv3 nested domains have no cache_invalidate_user -> -EOPNOTSUPP
    assert errno_of(g.fd.hwpt_invalidate, hw.id, []) == errno.EOPNOTSUPP
    # iommufd_hwpt_invalidate: neither nested HWPT nor vIOMMU -> -EINVAL
    assert errno_of(g.fd.hwpt_invalidate, g.ioas.id, []) == errno.EINVAL


# -- vEVENTQ --------------------------------------------------------------------------------------
def test_veventq_errnos(g):
    # iommufd_veventq_alloc: second queue of a type -> -EEXIST; depth 0 -> -EINVAL
    assert errno_of(g.fd.veventq_alloc, g.viommu.id, 4) == errno.EEXIST
    assert errno_of(g.fd.veventq_alloc, g.viommu.id, 0) == errno.EINVAL
    assert errno_of(g.fd.veventq_alloc, g.viommu.id, 4, 1, 1) == errno.EOPNOTSUPP


def test_fault_forwarded_with_the_vsid(g):
    g.attach_s1()
    r = g.smmu.translate(PSID, 0x2000_0000)          # not mapped by the guest S1
    assert r["fault"]["type"] == "F_TRANSLATION" and r["event"] is not None
    fw = g.fd.forward_events(g.smmu)
    assert [(f.event, f.sid, f.outcome, f.vsid) for f in fw] == \
        [("F_TRANSLATION", PSID, "forwarded", VSID)]
    got = g.veventq.read()
    assert len(got) == 1 and got[0].sequence == 0 and got[0].vsid == VSID
    assert int.from_bytes(got[0].raw[4:8], "little") == VSID      # dw0[63:32] StreamID
    assert g.smmu.events() == []                     # the host consumed its queue


def test_stage2_fault_stays_with_the_host(g):
    """arm_smmu_handle_event: only "master->vmaster && !event->s2" goes to the vIOMMU."""
    g.s1.map(0x3000_0000, 0x3000_0000, 0x1000)       # a gIPA outside guest RAM: S2 fault
    g.attach_s1()
    r = g.smmu.translate(PSID, 0x3000_0000)
    assert r["fault"]["type"] == "F_TRANSLATION" and r["fault"]["s2"] is True
    fw = g.fd.forward_events(g.smmu)
    assert fw[0].outcome.startswith("host logs it") and g.veventq.read() == []


def test_veventq_overflow_lost_events_header():
    g = Guest(depth=2)
    g.attach_s1()
    for i in range(4):
        g.smmu.translate(PSID, 0x2000_0000 + i * 0x1000)
        g.fd.forward_events(g.smmu)
    got = g.veventq.read()
    # e0 seq 0, e1 seq 1, then full: the lost header takes seq 2, and again seq 3 (moved)
    assert [(x.sequence, x.lost_events) for x in got] == [(0, False), (1, False), (3, True)]
    g.smmu.translate(PSID, 0x2800_0000)
    g.fd.forward_events(g.smmu)
    assert [(x.sequence, x.lost_events) for x in g.veventq.read()] == [(4, False)]


# -- explain --------------------------------------------------------------------------------------
def test_explain_shows_the_shared_s2(g):
    other = g.fd.bind("nic1", g.smmu, 0x200)
    g.fd.vdevice_alloc(g.viommu.id, other.id, 0x11)
    g.attach_s1()
    g.fd.attach(other.id, g.nested().id)
    ex = {e.device: e for e in g.fd.explain()}
    assert ex["nic0"].s2 == ex["nic1"].s2 == g.s2.id
    assert ex["nic0"].shared_with == ("nic1",) and "vIOMMU" in ex["nic0"].reason
    assert g.smmu.translate(0x200, GIOVA)["pa"] == GUEST_PA + (GIPA - GUEST_IPA)


# -- software MSI (iommufd_sw_msi) ----------------------------------------------------------------
def test_sw_msi_maps_each_doorbell_page_in_the_window(g):
    g.fd.attach(g.dev.id, g.s2.id)
    other = g.fd.bind("nic1", g.smmu, 0x200)
    g.fd.attach(other.id, g.s2.id)
    # the first doorbell page goes at sw_msi_start (MSI_IOVA_BASE), the next distinct one a
    # page later; a device with the same doorbell reuses the IOVA
    assert g.fd.sw_msi(g.dev.id, 0x0809_0040) == 0x800_0040
    assert g.fd.sw_msi(other.id, 0x0809_0040) == 0x800_0040
    assert g.fd.sw_msi(other.id, 0x0A09_0040) == 0x800_1040
    assert g.smmu.translate(PSID, 0x800_0040, access="write")["pa"] == 0x0809_0040
    assert g.smmu.translate(0x200, 0x800_1040, access="write")["pa"] == 0x0A09_0040
