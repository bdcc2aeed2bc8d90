"""Plain paging HWPTs: arm_smmu_domain_alloc_paging_flags prefers stage 1 (an ASID, a CD
table of one CD for a device without PASID) and falls back to stage 2 without S1P."""
import errno

from test_iommufd_ioas import FIXED, R, RW, errno_of, make_system

from smmudbg.model.iommufd import Iommufd

IOVA, PA = 0x10_0000, 0x5000_0000


def setup(features=None, smmus=("smmu0",)):
    s = make_system(smmus=smmus, features=features)
    fd = Iommufd()
    dev = fd.bind("nic0", s.smmu(smmus[0]), 0x100)
    io = fd.ioas_alloc()
    fd.ioas_map(io.id, 0x4000, PA, RW | FIXED, IOVA)
    fd.ioas_map(io.id, 0x1000, PA + 0x10_0000, R | FIXED, IOVA + 0x10_0000)
    return s, fd, dev, io


def test_stage1_paging_hwpt_translates_through_a_cd():
    s, fd, dev, io = setup()
    hw = fd.hwpt_alloc(dev.id, io.id)
    assert hw.stage == 1 and hw.asid == 1
    w = fd.attach(dev.id, hw.id)
    assert (w[0] >> 1) & 7 == 0b101                          # STE.Config = S1 translate
    assert (w[0] >> 6) << 6 & ((1 << 52) - 1) == dev.cdtab   # S1ContextPtr -> the CD table
    assert w[1] & 3 == 0b10                                  # S1DSS = substream 0
    cd = s.mem.read_words(dev.cdtab, 8)
    assert cd[0] >> 31 & 1 and cd[0] >> 48 == 1              # CD.V, CD.ASID
    assert cd[1] >> 4 << 4 & ((1 << 52) - 1) == hw.tables.root   # TTB0
    # io-pgtable's MAIR: attr0 WBRWA 0xff, attr1 NC 0x44, attr2 nGnRE 0x04, attr3 0xf4
    assert cd[3] == 0xF40444FF
    smmu = s.smmu()
    assert smmu.translate(0x100, IOVA + 0x2010)["pa"] == PA + 0x2010
    r = smmu.translate(0x100, IOVA + 0x10_0000, access="write")     # a read-only area
    assert r["pa"] is None and r["fault"]["type"] == "F_PERMISSION"
    fd.ioas_unmap(io.id, IOVA, 0x4000)
    r = smmu.translate(0x100, IOVA + 0x2010)
    assert r["pa"] is None and r["fault"]["type"] == "F_TRANSLATION"


def test_stage1_hwpt_is_not_a_nesting_parent():
    s, fd, dev, io = setup()
    hw = fd.hwpt_alloc(dev.id, io.id)
    # iommufd_viommu_alloc_ioctl: !hwpt_paging->nest_parent -> -EINVAL
    assert errno_of(fd.viommu_alloc, dev.id, hw.id) == errno.EINVAL


def test_without_stage1_a_paging_hwpt_is_stage2():
    s, fd, dev, io = setup(features="S1P = 0, S2P = 1, VMID16 = 1, OAS = 5")
    hw = fd.hwpt_alloc(dev.id, io.id)
    assert hw.stage == 2 and hw.vmid == 1 and not hw.nest_parent
    w = fd.attach(dev.id, hw.id)
    assert (w[0] >> 1) & 7 == 0b110
    assert s.smmu().translate(0x100, IOVA + 0x40)["pa"] == PA + 0x40
    # still not a nesting parent (and this SMMU cannot nest anyway)
    assert errno_of(fd.viommu_alloc, dev.id, hw.id) == errno.EOPNOTSUPP


def test_asids_are_one_space_across_smmus():
    s = make_system(smmus=("smmu0", "smmu1"))
    fd = Iommufd()
    a = fd.bind("a", s.smmu("smmu0"), 1)
    b = fd.bind("b", s.smmu("smmu1"), 1)
    io = fd.ioas_alloc()
    assert fd.hwpt_alloc(a.id, io.id).asid == 1
    assert fd.hwpt_alloc(b.id, io.id).asid == 2


def test_non_coherent_smmu_walks_non_cacheable():
    s, fd, dev, io = setup(features="S1P = 1, S2P = 1, OAS = 5, COHACC = 0")
    hw = fd.hwpt_alloc(dev.id, io.id)
    w = fd.attach(dev.id, hw.id)
    cd = s.mem.read_words(dev.cdtab, 8)
    # CD IR0 [9:8], OR0 [11:10] non-cacheable (0), SH0 [13:12] outer shareable (0b10)
    assert (cd[0] >> 8) & 0xF == 0 and (cd[0] >> 12) & 3 == 0b10
    # STE S1CIR [3:2], S1COR [5:4] NC, S1CSH [7:6] OSH
    assert (w[1] >> 2) & 0xF == 0 and (w[1] >> 6) & 3 == 0b10


def test_hw_info_reads_the_id_registers():
    s, fd, dev, io = setup(features="S1P = 1, S2P = 1, OAS = 5, SIDSIZE = 16")
    info = fd.hw_info(dev.id)
    assert info.type == 2                                   # IOMMU_HW_INFO_TYPE_ARM_SMMUV3
    assert (info.idr[0] >> 0) & 3 == 0b11                   # IDR0.S2P [0], S1P [1]
    assert info.idr[1] & 0x3F == 16                         # IDR1.SIDSIZE [5:0]
    assert info.idr[5] & 7 == 5                             # IDR5.OAS [2:0]
    assert info.aidr == s.smmu().reg("AIDR")
    assert errno_of(fd.hw_info, dev.id, 1) == errno.EOPNOTSUPP
