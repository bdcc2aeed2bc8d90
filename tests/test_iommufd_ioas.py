"""IOAS semantics of drivers/iommu/iommufd/io_pagetable.c and ioas.c, with the kernel's
errnos (each test names the function whose check it exercises)."""
import errno

import pytest

from smmudbg.model.iommufd import (IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_IOAS_MAP_FIXED_IOVA,
                                   IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_WRITEABLE,
                                   Iommufd, IommufdError)
from smmudbg.model.system import System

R, W, FIXED = IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_WRITEABLE, IOMMU_IOAS_MAP_FIXED_IOVA
RW = R | W
U64_MAX = (1 << 64) - 1


def make_system(smmus=("smmu0",), features=None):
    """Host RAM at 1 GiB..2 GiB; each SMMU has its own 16 MiB structure pool."""
    feats = features or "S1P = 1, S2P = 1, VMID16 = 1, OAS = 5"
    text = 'name = "t"\n[[ram]]\nbase = 0x4000_0000\nsize = 0x4000_0000\n'
    for i, n in enumerate(smmus):
        text += (f'[[smmu]]\nname = "{n}"\nfeatures = {{ {feats} }}\n'
                 'stream_table = { format = "2lvl", log2size = 16, split = 8 }\n'
                 'cmdq_log2size = 8\nevtq_log2size = 4\ncaching = true\n'
                 f'pool = {{ base = {0x4000_0000 + i * 0x100_0000:#x}, size = 0x100_0000 }}\n')
    return System.from_text(text)


def errno_of(fn, *a, **k):
    with pytest.raises(IommufdError) as e:
        fn(*a, **k)
    return e.value.errno


@pytest.fixture
def fd():
    return Iommufd()


@pytest.fixture
def ioas(fd):
    return fd.ioas_alloc()


# -- IOMMU_IOAS_MAP (iommufd_ioas_map) --------------------------------------------------------
def test_map_unknown_flag_is_eopnotsupp(ioas):
    assert errno_of(ioas.map, 0x1000, 0x5000_0000, RW | 8) == errno.EOPNOTSUPP


def test_map_iova_at_ulong_max_is_eoverflow(ioas):
    assert errno_of(ioas.map, 0x1000, 0x5000_0000, RW | FIXED, U64_MAX) == errno.EOVERFLOW


def test_map_without_read_or_write_is_einval(ioas):
    assert errno_of(ioas.map, 0x1000, 0x5000_0000, FIXED, 0x1000) == errno.EINVAL


def test_map_zero_length_is_einval(ioas):
    # iopt_alloc_area_pages: "(length & (iova_alignment - 1)) || !length" -> -EINVAL
    assert errno_of(ioas.map, 0, 0x5000_0000, RW | FIXED, 0x1000) == errno.EINVAL


def test_map_over_an_area_is_eexist(ioas):
    ioas.map(0x4000, 0x5000_0000, RW | FIXED, 0x10_0000)
    # iopt_check_iova: "Check that there is not already a mapping in the range" -> -EEXIST
    assert errno_of(ioas.map, 0x1000, 0x5100_0000, RW | FIXED, 0x10_3000) == errno.EEXIST


def test_map_without_fixed_iova_allocates_aligned_nonzero(ioas):
    # iopt_alloc_iova: alignment = min(roundup_pow_of_two(length), lowest set bit of uptr),
    # search from PAGE_SIZE (never IOVA 0), first hole.
    a = ioas.map(0x3000, 0x5000_0000, RW)
    assert a == 0x4000                   # roundup_pow_of_two(0x3000) = 0x4000, first >= 0x1000
    b = ioas.map(0x1000, 0x5001_0000, RW)
    assert b == 0x1000
    c = ioas.map(0x2000, 0x5002_1000, RW)     # uptr alignment 0x1000 caps the alignment
    assert c == 0x2000


# -- alignment and domains (iopt_table_add_domain) ---------------------------------------------
def test_unaligned_map_is_fine_without_a_domain_then_blocks_one(fd, ioas):
    s = make_system()
    dev = fd.bind("nic0", s.smmu(), 0x100)
    # iopt_init_table: iova_alignment = 1 until a domain is added
    ioas.map(0x800, 0x5000_0800, RW | FIXED, 0x10_0800)
    # iopt_check_iova_alignment: every area must conform to the new page size -> -EADDRINUSE
    assert errno_of(fd.hwpt_alloc, dev.id, ioas.id, IOMMU_HWPT_ALLOC_NEST_PARENT) == \
        errno.EADDRINUSE


def test_domain_raises_alignment_to_page_size(fd, ioas):
    s = make_system()
    dev = fd.bind("nic0", s.smmu(), 0x100)
    fd.hwpt_alloc(dev.id, ioas.id, IOMMU_HWPT_ALLOC_NEST_PARENT)
    assert ioas.iova_alignment == 4096
    # iopt_check_iova: IOVA not aligned to iova_alignment -> -EINVAL
    assert errno_of(ioas.map, 0x1000, 0x5000_0000, RW | FIXED, 0x10_0800) == errno.EINVAL
    # iopt_alloc_area_pages: length not a multiple -> -EINVAL
    assert errno_of(ioas.map, 0x1800, 0x5000_0000, RW | FIXED, 0x10_0000) == errno.EINVAL
    # iopt_insert_area: page offset of the memory not aligned -> -EINVAL
    assert errno_of(ioas.map, 0x1000, 0x5000_0800, RW | FIXED, 0x10_0000) == errno.EINVAL


def test_domain_aperture_is_reserved(fd, ioas):
    s = make_system()
    dev = fd.bind("nic0", s.smmu(), 0x100)
    fd.hwpt_alloc(dev.id, ioas.id, IOMMU_HWPT_ALLOC_NEST_PARENT)
    # OAS=5 is 48 bits: the S2 input range is 48 bits; above it is reserved, so a fixed map
    # there meets a reserved range (iopt_check_iova -> -EINVAL).
    assert errno_of(ioas.map, 0x1000, 0x5000_0000, RW | FIXED, 1 << 48) == errno.EINVAL
    assert ioas.iova_ranges() == [(0, (1 << 48) - 1)]


# -- reserved regions: the SW_MSI window (iopt_table_enforce_dev_resv_regions) ---------------
def test_attach_reserves_sw_msi_and_map_over_it_fails(fd, ioas):
    s = make_system()
    dev = fd.bind("nic0", s.smmu(), 0x100)
    hw = fd.hwpt_alloc(dev.id, ioas.id, IOMMU_HWPT_ALLOC_NEST_PARENT)
    fd.attach(dev.id, hw.id)
    # arm-smmu-v3.h MSI_IOVA_BASE 0x8000000, MSI_IOVA_LENGTH 0x100000
    assert any(r.start == 0x800_0000 and r.last == 0x80F_FFFF for r in ioas.info().reserved)
    # iopt_check_iova: "No reserved IOVA intersects the range" -> -EINVAL
    assert errno_of(ioas.map, 0x2000, 0x5000_0000, RW | FIXED, 0x80F_F000) == errno.EINVAL
    assert (0x800_0000, 0x80F_FFFF) not in ioas.iova_ranges()
    assert (0, 0x7FF_FFFF) in ioas.iova_ranges()


def test_attach_with_an_area_in_the_sw_msi_window_is_eaddrinuse(fd, ioas):
    s = make_system()
    dev = fd.bind("nic0", s.smmu(), 0x100)
    ioas.map(0x1000, 0x5000_0000, RW | FIXED, 0x800_0000)
    hw = fd.hwpt_alloc(dev.id, ioas.id, IOMMU_HWPT_ALLOC_NEST_PARENT)
    # iopt_reserve_iova: an area in the way -> -EADDRINUSE
    assert errno_of(fd.attach, dev.id, hw.id) == errno.EADDRINUSE


# -- IOMMU_IOAS_UNMAP (iopt_unmap_iova_range) --------------------------------------------------
def test_unmap_nothing_is_enoent(ioas):
    assert errno_of(ioas.unmap, 0x1000, 0x1000) == errno.ENOENT


def test_unmap_zero_length_is_einval(ioas):
    assert errno_of(ioas.unmap, 0x1000, 0) == errno.EINVAL


def test_unmap_cutting_an_area_is_enoent_and_leaves_it(ioas):
    ioas.map(0x4000, 0x5000_0000, RW | FIXED, 0x10_0000)
    # "Splitting/truncating IOVA mappings is not allowed" -> -ENOENT
    assert errno_of(ioas.unmap, 0x10_1000, 0x1000) == errno.ENOENT
    assert ioas.translate(0x10_1000) == 0x5000_1000


def test_unmap_whole_areas_returns_bytes(ioas):
    ioas.map(0x4000, 0x5000_0000, RW | FIXED, 0x10_0000)
    ioas.map(0x2000, 0x5100_0000, RW | FIXED, 0x20_0000)
    assert ioas.unmap(0x10_0000, 0x20_0000) == 0x6000
    assert ioas.translate(0x10_0000) is None


def test_unmap_stops_at_a_cut_area_after_removing_earlier_ones(ioas):
    ioas.map(0x1000, 0x5000_0000, RW | FIXED, 0x10_0000)
    ioas.map(0x4000, 0x5100_0000, RW | FIXED, 0x20_0000)
    # lowest area first: [0x100000] goes, then [0x200000, 0x203fff] is cut -> -ENOENT
    assert errno_of(ioas.unmap, 0x10_0000, 0x10_2000) == errno.ENOENT
    assert ioas.translate(0x10_0000) is None
    assert ioas.translate(0x20_0000) == 0x5100_0000


def test_unmap_all_on_empty_succeeds(ioas):
    # iopt_unmap_all: "If the IOVAs are empty then unmap all succeeds"
    assert ioas.unmap(0, U64_MAX) == 0


def test_unmap_length_at_ulong_max_is_eoverflow(ioas):
    assert errno_of(ioas.unmap, 0x1000, U64_MAX) == errno.EOVERFLOW


# -- IOMMU_IOAS_COPY (iommufd_ioas_copy, iopt_get_pages) --------------------------------------
def test_copy_shares_the_pages(fd):
    a, b = fd.ioas_alloc(), fd.ioas_alloc()
    a.map(0x2000, 0x5000_0000, RW | FIXED, 0x10_0000)
    a.map(0x1000, 0x5100_0000, R | FIXED, 0x10_2000)
    iova = fd.ioas_copy(b.id, a.id, 0x2000, 0x10_1000, R | FIXED, 0x70_0000)
    assert iova == 0x70_0000
    assert b.translate(0x70_0000) == 0x5000_1000
    assert b.translate(0x70_1000) == 0x5100_0000


def test_copy_of_a_hole_is_enoent(fd):
    a, b = fd.ioas_alloc(), fd.ioas_alloc()
    a.map(0x1000, 0x5000_0000, RW | FIXED, 0x10_0000)
    assert errno_of(fd.ioas_copy, b.id, a.id, 0x2000, 0x10_0000, R | FIXED, 0) == errno.ENOENT


def test_copy_of_read_only_pages_as_writeable_is_eperm(fd):
    a, b = fd.ioas_alloc(), fd.ioas_alloc()
    a.map(0x1000, 0x5000_0000, R | FIXED, 0x10_0000)
    # iopt_insert_area: IOMMU_WRITE on pages pinned without write -> -EPERM
    assert errno_of(fd.ioas_copy, b.id, a.id, 0x1000, 0x10_0000, RW | FIXED, 0x1000) == \
        errno.EPERM


def test_copy_checks_the_source_before_looking_up_the_destination(fd):
    a = fd.ioas_alloc()
    a.map(0x1000, 0x5000_0000, RW | FIXED, 0x10_0000)
    # iommufd_ioas_copy: iopt_get_pages on the source (length 0 -> -EINVAL) comes before
    # iommufd_get_ioas on the destination (missing -> -ENOENT)
    assert errno_of(fd.ioas_copy, 999, a.id, 0, 0x10_0000, R, 0) == errno.EINVAL
    assert errno_of(fd.ioas_copy, 999, a.id, 0x1000, 0x10_0000, R, 0) == errno.ENOENT


# -- IOMMU_IOAS_ALLOW_IOVAS (iommufd_ioas_load_iovas, iopt_set_allow_iova) -------------------
def test_allow_iovas_start_not_below_last_is_einval(ioas):
    assert errno_of(ioas.allow_iovas, [(0x2000, 0x2000)]) == errno.EINVAL


def test_allow_iovas_overlapping_ranges_is_einval(ioas):
    assert errno_of(ioas.allow_iovas, [(0x1000, 0x4fff), (0x4000, 0x8fff)]) == errno.EINVAL


def test_allow_iovas_over_reserved_is_eaddrinuse_and_keeps_old(fd, ioas):
    s = make_system()
    dev = fd.bind("nic0", s.smmu(), 0x100)
    fd.attach(dev.id, fd.hwpt_alloc(dev.id, ioas.id, IOMMU_HWPT_ALLOC_NEST_PARENT).id)
    ioas.allow_iovas([(0x1000_0000, 0x1fff_ffff)])
    assert errno_of(ioas.allow_iovas, [(0x0, 0x8ff_ffff)]) == errno.EADDRINUSE
    assert ioas.allowed == [(0x1000_0000, 0x1fff_ffff)]


def test_allocation_stays_in_allowed_ranges(ioas):
    ioas.allow_iovas([(0x1000_0000, 0x1fff_ffff)])
    assert ioas.map(0x1000, 0x5000_0000, RW) == 0x1000_0000


def test_no_room_is_enospc(ioas):
    ioas.allow_iovas([(0x1000_0000, 0x1000_1fff)])
    assert errno_of(ioas.map, 0x4000, 0x5000_0000, RW) == errno.ENOSPC
