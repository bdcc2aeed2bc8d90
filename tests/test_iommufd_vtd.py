"""iommufd on VT-d (issue 16 item 4): the nesting-parent S2 and the IOMMU_HWPT_DATA_VTD_S1
nested HWPT accepted and refused as Linux does, the PASID entry an attach writes (decoded here
by the VT-d specification's bit positions, not through the field tables), the PASID-based IOTLB
invalidation IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 becomes, and the S2 sharing decisions.

Expected errnos are read off the Linux source, cited at each test: drivers/iommu/iommufd/
hw_pagetable.c, drivers/iommu/intel/{iommu.c, nested.c, pasid.c, cache.c}."""
import errno as E
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smmudbg.model import scenario as sc
from smmudbg.model.iommufd import (IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_READABLE,
                                   IOMMU_IOAS_MAP_WRITEABLE, IommufdError)
from smmudbg.model.iommufd.vtd import VtdIommufd, psi_aligned
from smmudbg.model.system import System

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "vtd-iommufd.toml"
RW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_FIXED_IOVA
RO = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_FIXED_IOVA
NEST_PARENT = 1                      # IOMMU_HWPT_ALLOC_NEST_PARENT
VTD_S1 = 1                           # IOMMU_HWPT_DATA_VTD_S1
SRE, EAFE, WPE = 1, 2, 4             # IOMMU_VTD_S1_*
U64_MAX = (1 << 64) - 1
FS_VA = 0x7F00_0000_0000             # the guest-fs mappings of the example

UNITS = """
[[ram]]
base = 0x4000_0000
size = 0x8000_0000

[[vm]]
name = "vm0"
ram = [{ ipa = 0x0, size = 0x2000_0000, pa = 0x6000_0000 }]

[[vtd]]
name = "dmar0"
pool = { base = 0x4000_0000, size = 0x0100_0000 }
features = { SRS = 1, EAFS = 1, FL5LP = 1 }

[[vtd]]
name = "plain"                      # the default unit: no SRS, EAFS, FL5LP
pool = { base = 0x4100_0000, size = 0x0100_0000 }

[[vtd]]
name = "nonest"
pool = { base = 0x4200_0000, size = 0x0100_0000 }
features = { NEST = 0 }

[[vtd]]
name = "nosc"
pool = { base = 0x4300_0000, size = 0x0100_0000 }
features = { SC = 0 }

[[vtd_domain]]
name = "guest-fs"
vtd = "dmar0"
stage = "first"
vm = "vm0"
pool = { base = 0x0100_0000, size = 0x0010_0000 }
maps = [{ in = 0x7F00_0000_0000, out = 0x0200_0000, size = 0x0001_0000, perm = "rw" }]
"""


@pytest.fixture
def box():
    s = System(sc.parse(UNITS))
    fd = VtdIommufd()
    ioas = fd.ioas_alloc()
    ioas.map(0x2000_0000, 0x6000_0000, RW, 0)
    return s, fd, ioas


def bind(s, fd, unit, rid=0x0500):
    return fd.bind(f"d{rid:x}", s.vtds[unit], rid)


def errno_of(fn, *a, **k):
    with pytest.raises(IommufdError) as ei:
        fn(*a, **k)
    return ei.value.errno


def s1(flags=0, addr_width=48, pgtbl=0x0100_0000):
    return dict(flags=flags, pgtbl_addr=pgtbl, addr_width=addr_width)


# -- IOMMU_HWPT_ALLOC: the S2 --------------------------------------------------------------------
def test_s2_alloc_checks(box):
    s, fd, ioas = box
    d = bind(s, fd, "dmar0")
    # iommufd_hwpt_alloc: data_len with IOMMU_HWPT_DATA_NONE -> -EINVAL
    assert errno_of(fd.hwpt_alloc, d.id, ioas.id, NEST_PARENT, 0, None, data_len=24) == E.EINVAL
    # iommufd_hwpt_paging_alloc: flags beyond NEST_PARENT|DIRTY|FAULT_ID|PASID -> -EOPNOTSUPP
    assert errno_of(fd.hwpt_alloc, d.id, ioas.id, 1 << 7) == E.EOPNOTSUPP
    # intel_iommu_domain_alloc_paging_flags: user data on a paging domain -> -EOPNOTSUPP
    assert errno_of(fd.hwpt_alloc, d.id, ioas.id, NEST_PARENT, VTD_S1, s1()) == E.EOPNOTSUPP
    # intel_iommu_domain_alloc_second_stage: NEST_PARENT without nested_supported -> -EOPNOTSUPP
    n = bind(s, fd, "nonest", 0x0600)
    assert errno_of(fd.hwpt_alloc, n.id, ioas.id, NEST_PARENT) == E.EOPNOTSUPP
    # iommufd_hwpt_paging_alloc: FAULT_ID_VALID with NEST_PARENT -> -EOPNOTSUPP
    assert errno_of(fd.hwpt_alloc, d.id, ioas.id, NEST_PARENT | 1 << 2) == E.EOPNOTSUPP
    # an unknown pt_id -> -EINVAL (iommufd_hwpt_alloc)
    assert errno_of(fd.hwpt_alloc, d.id, 999, NEST_PARENT) == E.EINVAL
    s2 = fd.hwpt_alloc(d.id, ioas.id, NEST_PARENT)
    assert s2.nest_parent and s2.force_snooping      # ECAP.SC device: coherency set first


def test_s2_refuses_read_only_mappings(box):
    """__domain_mapping / vtdss_pt_iommu_set_prot: a nesting parent takes no read-only
    mapping (-EINVAL), whether the IOAS had it first or gets it later."""
    s, fd, ioas = box
    d = bind(s, fd, "dmar0")
    ioas.map(0x4_0000, 0x5FFC_0000, RO, 0xFFFC_0000)
    assert errno_of(fd.hwpt_alloc, d.id, ioas.id, NEST_PARENT) == E.EINVAL
    assert not ioas.domains
    ioas2 = fd.ioas_alloc()
    ioas2.map(0x2000_0000, 0x6000_0000, RW, 0)
    fd.hwpt_alloc(d.id, ioas2.id, NEST_PARENT)
    assert errno_of(ioas2.map, 0x1000, 0x5FFC_0000, RO, 0xFFFC_0000) == E.EINVAL


# -- IOMMU_HWPT_ALLOC: the nested HWPT -----------------------------------------------------------
def test_nested_alloc_checks(box):
    s, fd, ioas = box
    d = bind(s, fd, "dmar0")
    s2 = fd.hwpt_alloc(d.id, ioas.id, NEST_PARENT)
    a = fd.hwpt_alloc
    # iommufd_hwpt_nested_alloc: flags beyond FAULT_ID_VALID|PASID -> -EOPNOTSUPP
    assert errno_of(a, d.id, s2.id, 1 << 5, VTD_S1, s1()) == E.EOPNOTSUPP
    # IOMMU_HWPT_ALLOC_PASID is accepted by both (iommufd_hwpt_nested_alloc,
    # intel_iommu_domain_alloc_nested)
    a(d.id, s2.id, 1 << 3, VTD_S1, s1())
    # intel_iommu_domain_alloc_nested: a data type other than IOMMU_HWPT_DATA_VTD_S1 -> -EOPNOTSUPP
    assert errno_of(a, d.id, s2.id, 0, 2, s1()) == E.EOPNOTSUPP
    # iommu_copy_struct_from_user: shorter than struct iommu_hwpt_vtd_s1 (24) -> -EINVAL;
    # copy_struct_from_user: nonzero bytes past it -> -E2BIG; zero bytes past it are fine
    assert errno_of(a, d.id, s2.id, 0, VTD_S1, s1(), data_len=16) == E.EINVAL
    assert errno_of(a, d.id, s2.id, 0, VTD_S1, s1(), trailing=b"\0\1") == E.E2BIG
    a(d.id, s2.id, 0, VTD_S1, s1(), trailing=b"\0" * 8)
    # iommufd_hwpt_nested_alloc: a parent that is not a nesting parent -> -EINVAL
    s2.nest_parent = False
    assert errno_of(a, d.id, s2.id, 0, VTD_S1, s1()) == E.EINVAL
    s2.nest_parent = True
    # the driver: a device on a unit without nested translation -> -EOPNOTSUPP
    n = bind(s, fd, "nonest", 0x0600)
    assert errno_of(a, n.id, s2.id, 0, VTD_S1, s1()) == E.EOPNOTSUPP
    # allocation keeps addr_width and the flags unchecked (intel_iommu_domain_alloc_nested):
    # 39 bits, SRE on a unit without SRS and unknown flag bits are all accepted here
    p = bind(s, fd, "plain", 0x0700)
    a(p.id, s2.id, 0, VTD_S1, s1(flags=SRE | 1 << 9, addr_width=39))


@pytest.mark.parametrize("unit,flags,aw", [
    ("dmar0", 0, 39),          # intel_pasid_setup_nested: neither ADDR_WIDTH_4LEVEL nor 5LEVEL
    ("dmar0", 0, 0),
    ("plain", 0, 57),          # 5-level without CAP_REG.FL5LP
    ("plain", SRE, 48),        # IOMMU_VTD_S1_SRE without ECAP.SRS
    ("plain", EAFE, 48),       # IOMMU_VTD_S1_EAFE without ECAP.EAFS
])
def test_attach_refuses_what_the_unit_cannot(box, unit, flags, aw):
    s, fd, ioas = box
    d = bind(s, fd, unit)
    s2 = fd.hwpt_alloc(d.id, ioas.id, NEST_PARENT)
    n = fd.hwpt_alloc(d.id, s2.id, 0, VTD_S1, s1(flags, aw))
    assert errno_of(fd.attach, d.id, n.id) == E.EINVAL
    assert d.hwpt is None


def test_attach_reserves_the_interrupt_window(box):
    """intel_iommu_get_resv_regions reports 0xFEE00000-0xFEEFFFFF as IOMMU_RESV_MSI;
    iopt_table_enforce_dev_resv_regions refuses an IOAS that maps it (-EADDRINUSE) and
    reserves it in one that does not (a later IOAS_MAP there is refused, -EINVAL)."""
    s, fd, ioas = box
    d = bind(s, fd, "dmar0")
    bad = fd.ioas_alloc()
    bad.map(0x10_0000, 0x7000_0000, RW, 0xFEE0_0000)
    s2 = fd.hwpt_alloc(d.id, bad.id, NEST_PARENT)
    assert errno_of(fd.attach, d.id, s2.id) == E.EADDRINUSE and d.hwpt is None
    good = fd.hwpt_alloc(d.id, ioas.id, NEST_PARENT)
    fd.attach(d.id, good.id)
    assert (0xFEE0_0000, 0xFEEF_FFFF, f"{d.name} MSI") in ioas.reserved
    assert errno_of(ioas.map, 0x1000, 0x7000_0000, RW, 0xFEE0_0000) == E.EINVAL


# -- the PASID entry -----------------------------------------------------------------------------
def bits(words, hi, lo):
    """Bits hi:lo of a 512-bit entry given as eight 64-bit words (VT-d spec numbering)."""
    v = sum(w << (64 * i) for i, w in enumerate(words))
    return (v >> lo) & ((1 << (hi - lo + 1)) - 1)


def pasid_entry(unit, rid):
    return unit.config(rid)["pe"]


@pytest.mark.parametrize("flags,aw", [(SRE | WPE | EAFE, 57), (WPE, 48), (0, 48)])
def test_nested_pasid_entry(box, flags, aw):
    """VT-d spec 9.6, scalable-mode PASID table entry, as pasid_pte_config_nestd fills it."""
    s, fd, ioas = box
    u = s.vtds["dmar0"]
    d = bind(s, fd, "dmar0")
    s2 = fd.hwpt_alloc(d.id, ioas.id, NEST_PARENT)
    pgtbl = 0x0100_0000 | 0x123            # low bits: dropped by pasid_set_flptr's mask
    n = fd.hwpt_alloc(d.id, s2.id, 0, VTD_S1, s1(flags | 1 << 9, aw, pgtbl))
    fd.attach(d.id, n.id)
    pe = pasid_entry(u, d.rid)
    assert bits(pe, 0, 0) == 1                                  # P
    assert bits(pe, 1, 1) == 0                                  # FPD clear: faults reported
    assert bits(pe, 4, 2) == 2                                  # AW: 48-bit, 4-level S2
    assert bits(pe, 8, 6) == 0b011                              # PGTT: nested
    assert bits(pe, 63, 12) << 12 == s2.tables.root             # SLPTPTR
    assert bits(pe, 79, 64) == n.dids["dmar0"] >= 2             # DID (IDA_START_DID 2)
    assert bits(pe, 87, 87) == 1                                # PWSNP (ECAP.SMPWCS)
    assert bits(pe, 88, 88) == 1                                # PGSNP: the S2 forces snoop
    assert bits(pe, 128, 128) == int(bool(flags & SRE))         # SRE
    assert bits(pe, 131, 130) == (1 if aw == 57 else 0)         # FLPM: 5- or 4-level
    assert bits(pe, 132, 132) == int(bool(flags & SRE and flags & WPE))   # WPE only with SRE
    assert bits(pe, 135, 135) == int(bool(flags & EAFE))        # EAFE
    assert bits(pe, 191, 140) << 12 == 0x0100_0000              # FLPTPTR
    # nothing else: the unknown flag bit 9 reached no field
    known = {(0, 0), (4, 2), (8, 6), (63, 12), (79, 64), (87, 87), (88, 88), (128, 128),
             (131, 130), (132, 132), (135, 135), (191, 140)}
    mask = sum(((1 << (hi - lo + 1)) - 1) << lo for hi, lo in known)
    assert sum(w << (64 * i) for i, w in enumerate(pe)) & ~mask == 0


def test_attach_translates_through_both_stages(box):
    s, fd, ioas = box
    u = s.vtds["dmar0"]
    d = bind(s, fd, "dmar0")
    s2 = fd.hwpt_alloc(d.id, ioas.id, NEST_PARENT)
    fd.attach(d.id, s2.id)
    assert bits(pasid_entry(u, d.rid), 8, 6) == 0b010        # attached to the S2: second stage
    root = u.domains["guest-fs"].root
    n = fd.hwpt_alloc(d.id, s2.id, 0, VTD_S1, s1(pgtbl=root))
    log = fd.attach(d.id, n.id)
    # the replace tore the second-stage entry down first (intel_pasid_tear_down_entry)
    assert [x["type"] for x in log] == ["PC_INV_DSC", "IOTLB_INV_DSC", "INV_WAIT_DSC"]
    r = u.translate(d.rid, FS_VA + 0x1234)
    # guest-fs maps FS_VA -> GPA 0x2000000; vm0's RAM puts GPA 0 at PA 0x60000000
    assert r["kind"] == "translated" and r["pa"] == 0x6200_1234


# -- IOMMU_HWPT_INVALIDATE -----------------------------------------------------------------------
def test_psi_aligned_range():
    """cache.c calculate_psi_aligned_address, worked by hand: one page; pages 1-2 need the
    aligned 4 pages 0-3; a range across a 2 MiB line needs order 10 from 0; all."""
    assert psi_aligned(0x5000, 0x5FFF) == (0x5000, 0)
    assert psi_aligned(0x1000, 0x2FFF) == (0x0, 2)
    assert psi_aligned(0x2000, 0x3FFF) == (0x2000, 1)
    assert psi_aligned(0x1FF000, 0x200FFF) == (0x0, 10)
    assert psi_aligned(0, (U64_MAX << 12 & U64_MAX) - 1) == (0, 52)


def example():
    return System(sc.parse(EXAMPLE.read_text()))


def fill(s, dev, pages):
    u = s.vtds[s.vtd_iommufd.devices[dev].unit.name]
    rid = s.vtd_iommufd.devices[dev].rid
    for p in pages:
        assert u.translate(rid, FS_VA + p * 0x1000)["kind"] == "translated"


def cached(s, dev):
    d = s.vtd_iommufd.devices[dev]
    did = d.hwpt.dids[d.unit.name]
    return sorted((e["in_base"] - FS_VA) >> 12 for e in d.unit.walker.tlb_entries()
                  if e["did"] == did)


def test_invalidation_removes_exactly_the_named_entries():
    s = example()
    v = s.vtd_iommufd
    fill(s, "nic1", range(6))
    fill(s, "gpu1", range(6))
    assert cached(s, "nic1") == cached(s, "gpu1") == [0, 1, 2, 3, 4, 5]
    r = v.invalidate("nic1", [{"addr": FS_VA + 0x1000, "npages": 1,
                               "flags": 1}])            # IOMMU_VTD_INV_FLAGS_LEAF
    assert (r["handled"], r["errno"]) == (1, 0)
    piotlb = r["log"][0]
    assert piotlb["type"] == "P_IOTLB_INV_DSC" and r["log"][1]["type"] == "INV_WAIT_DSC"
    f = piotlb["fields"]
    d = v.devices["nic1"]
    assert (f["G"], f["DID"], f["PASID"], f["ADDR"] << 12, f["AM"], f["IH"]) == \
        (3, d.hwpt.dids["dmar0"], 0, FS_VA + 0x1000, 0, 1)
    assert cached(s, "nic1") == [0, 2, 3, 4, 5]
    assert cached(s, "gpu1") == [0, 1, 2, 3, 4, 5]       # another DID: untouched
    # pages 1-2: the aligned 4-page range 0-3 goes (AM=2), 4 and 5 stay
    r = v.invalidate("nic1", [{"addr": FS_VA + 0x1000, "npages": 2}])
    assert r["log"][0]["fields"]["AM"] == 2 and r["log"][0]["fields"]["IH"] == 0
    assert cached(s, "nic1") == [4, 5]
    # everything: npages U64_MAX with addr 0 -> PASID-selective (G=2) on the DID
    r = v.invalidate("nic1", [{"addr": 0, "npages": U64_MAX}])
    assert r["log"][0]["fields"]["G"] == 2
    assert cached(s, "nic1") == [] and cached(s, "gpu1") == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("entry,kw,err", [
    ({"addr": FS_VA, "npages": 1, "flags": 2}, {}, E.EOPNOTSUPP),     # flags beyond LEAF
    ({"addr": FS_VA, "npages": 1, "reserved": 1}, {}, E.EOPNOTSUPP),  # __reserved set
    ({"addr": FS_VA + 0x800, "npages": 1}, {}, E.EINVAL),             # not 4 KiB aligned
    ({"addr": 0x1000, "npages": U64_MAX}, {}, E.EINVAL),              # "all" with an addr
    ({"addr": FS_VA, "npages": 1}, {"entry_len": 16}, E.EINVAL),      # shorter than 24
    ({"addr": FS_VA, "npages": 1}, {"data_type": 1}, E.EINVAL),       # not DATA_VTD_S1
])
def test_invalidation_refusals(entry, kw, err):
    """intel_nested_cache_invalidate_user's checks: the refused entry and those after it are
    not handled; the ones before it are."""
    s = example()
    fill(s, "nic1", range(2))
    good = {"addr": FS_VA, "npages": 1}
    r = s.vtd_iommufd.invalidate("nic1", [good, entry], **kw)
    before = 0 if "data_type" in kw or "entry_len" in kw else 1
    assert (r["handled"], r["errno"]) == (before, err)
    assert cached(s, "nic1") == ([1] if before else [0, 1])


def test_invalidate_needs_a_nested_hwpt():
    s = example()
    fd = s.vtd_iommufd.fd
    s2 = s.vtd_iommufd.devices["nic1"].hwpt.parent
    assert errno_of(fd.hwpt_invalidate, s2.id, [{}]) == E.EINVAL    # iommufd_hwpt_invalidate
    assert errno_of(fd.hwpt_invalidate, 999, [{}]) == E.ENOENT


# -- S2 sharing ----------------------------------------------------------------------------------
def test_example_sharing_decisions():
    s = example()
    v = s.vtd_iommufd
    dec = {d["device"]: d for d in v.decisions}
    nic, gpu, fpga = (v.devices[n] for n in ("nic1", "gpu1", "fpga0"))
    # one host IOMMU, coherent: one S2 (the same SLPTPTR in both PASID entries)
    assert nic.hwpt.parent is gpu.hwpt.parent and dec["gpu1"]["shared"]
    pe = [pasid_entry(d.unit, d.rid) for d in (nic, gpu, fpga)]
    assert bits(pe[0], 63, 12) == bits(pe[1], 63, 12) != bits(pe[2], 63, 12)
    # dmar1 has no snoop control: the coherent S2 refuses it, its own S2 does not force snoop
    assert fpga.hwpt.parent is not nic.hwpt.parent and not dec["fpga0"]["shared"]
    assert any("refused: -EINVAL" in x and "ECAP.SC=0" in x and "paging_domain_compatible" in x
               for x in dec["fpga0"]["steps"])
    assert (bits(pe[0], 88, 88), bits(pe[2], 88, 88)) == (1, 0)           # PGSNP
    # and the S2 leaves: SNP (bit 11 of a second-stage leaf, VT-d spec 9.8) only when forced
    gpa = 0x0200_0000
    for d, snp in ((nic, 1), (fpga, 0)):
        _, leaf, _ = d.hwpt.parent.tables.leaf(gpa)
        assert (leaf >> 11) & 1 == snp and leaf & 3 == 3                    # R and W
    # ERRATA_772415: dmar0 and dmar1 report it -> the container without read-only areas
    view = v.view()
    rw_only = next(c for c in view["containers"] if c["policy"] == "RW only")
    assert all(a["writeable"] for a in rw_only["areas"])
    assert {s2["hwpt"] for s2 in rw_only["s2s"]} == {nic.hwpt.parent.id, fpga.hwpt.parent.id}
    # dmar2 does not: its container keeps the vBIOS read-only and Linux refuses a nesting
    # parent over it (-EINVAL)
    assert dec["acc0"]["container"] == "RW & RO" and dec["acc0"]["s2"] is None
    assert "-EINVAL" in dec["acc0"]["error"] and "read-only" in dec["acc0"]["error"]


def test_a_coherent_device_cannot_join_a_non_coherent_s2():
    """iommufd_hwpt_paging_enforce_cc: an S2 made for a device behind a unit without snoop
    control has mappings and cannot start enforcing coherency (-EINVAL), so a coherent device
    gets another S2 even when it comes second."""
    text = EXAMPLE.read_text().replace(
        '{ name = "nic1", vtd = "dmar0", rid = 0x0500, fs = "guest-fs", flags = ["SRE", "WPE"] },',
        "").replace('{ name = "fpga0", vtd = "dmar1", rid = 0x0700, fs = "guest-fs" },',
                    '{ name = "fpga0", vtd = "dmar1", rid = 0x0700, fs = "guest-fs" },\n'
                    '  { name = "nic1", vtd = "dmar0", rid = 0x0500, fs = "guest-fs" },')
    s = System(sc.parse(text))
    dec = {d["device"]: d for d in s.vtd_iommufd.decisions}
    # gpu1 first makes the coherent S2; fpga0 its own; nic1 then shares gpu1's
    assert dec["gpu1"]["s2"] == dec["nic1"]["s2"] != dec["fpga0"]["s2"]
    text2 = text.replace('{ name = "gpu1", vtd = "dmar0", rid = 0x0600, fs = "guest-fs" },', "")
    dec = {d["device"]: d for d in System(sc.parse(text2)).vtd_iommufd.decisions}
    assert dec["nic1"]["s2"] != dec["fpga0"]["s2"]
    assert any("iommufd_hwpt_paging_enforce_cc" in x and "-EINVAL" in x
               for x in dec["nic1"]["steps"])


def test_scenario_errors_are_one_line():
    base = EXAMPLE.read_text()
    for old, new, what in [
        ('vm = "vm0"\n# vm0', 'vm = "vm9"\n# vm0', "vtd_iommufd.vm"),
        ('rid = 0x0600', 'rid = 0x0500', "devices[1].rid"),
        ('flags = ["SRE", "WPE"]', 'flags = ["XYZ"]', "devices[0].flags"),
        ('{ name = "acc0", vtd = "dmar2", rid = 0x0800, fs = "guest-fs" }',
         '{ name = "acc0", vtd = "dmar2", rid = 0x0800, addr_width = 57 }', "devices[3]"),
        ('gpa = 0xFFFC_0000', 'gpa = 0x0000_1000', "rom[0]"),
    ]:
        assert old in base, old
        with pytest.raises(Exception) as ei:
            System(sc.parse(base.replace(old, new)))
        assert what in str(ei.value) and "\n" not in str(ei.value), str(ei.value)


def test_cli_shows_why_devices_share_or_not():
    """The user's view: `iommufd` on the example names the shared S2, the refusal that split
    fpga0 off and the erratum that decided each container."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1", COLUMNS="200")
    r = subprocess.run([sys.executable, "-m", "smmudbg.cli", "run", "-", "--scenario",
                        str(EXAMPLE)], input="iommufd\niommufd-invalidate nic1 0x7f0000001000 "
                        "1 leaf\ncheck\n", capture_output=True, text=True, cwd=ROOT, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "container RW only" in out and "container RW & RO" in out
    assert "attach to S2 HWPT 3 accepted: shared with nic1" in out
    assert "refused: -EINVAL: HWPT 3 enforces snooping and dmar1 has no snoop control" in out
    assert "dmar2 does not report ERRATA_772415_SPR17" in out
    assert "P_IOTLB_INV_DSC" in out
    assert "iommufd: acc0: no S2: IOMMU_HWPT_ALLOC(NEST_PARENT) -EINVAL" in out    # check


def test_units_alike_share_one_s2():
    """paging_domain_compatible compares the S2 with the device's unit, not the unit it was made
    on: when dmar2 reports the erratum too, acc0 joins the read-write container and shares
    dmar0's coherent S2 (one more DID, on dmar2), and no container keeps the read-only area."""
    text = EXAMPLE.read_text().replace("errata_772415 = { dmar2 = false }", "")
    s = System(sc.parse(text))
    v = s.vtd_iommufd
    dec = {d["device"]: d for d in v.decisions}
    acc, nic = v.devices["acc0"], v.devices["nic1"]
    assert dec["acc0"]["error"] is None and dec["acc0"]["shared"]
    assert acc.hwpt.parent is nic.hwpt.parent
    assert set(acc.hwpt.parent.dids) == {"dmar0", "dmar2"}
    assert [c["policy"] for c in v.view()["containers"]] == ["RW only"]
    pe = pasid_entry(acc.unit, acc.rid)
    assert bits(pe, 63, 12) << 12 == nic.hwpt.parent.tables.root
    assert s.vtds["dmar2"].translate(acc.rid, FS_VA + 0x10)["pa"] == 0x6200_0010


def test_check_names_the_invalidation_the_vmm_did_not_forward():
    """The guest rewrites a first-stage leaf without IOMMU_HWPT_INVALIDATE: the unit's IOTLB
    keeps the old translation; check names the iommufd-invalidate that removes it, and after
    it the walk sees the new leaf."""
    from smmudbg.model.system_checks import findings
    s = example()
    v = s.vtd_iommufd
    dev = v.devices["nic1"]
    u = dev.unit
    fill(s, "nic1", [1])
    fs = u.domains["guest-fs"].tables
    gpa_leaf, leaf, _ = fs.leaf(FS_VA + 0x1000)          # its entry address is a PA here
    u.mem.write_u64(gpa_leaf, leaf & ~(0xFFFFFFFFFF << 12) | (0x0210_0000 >> 12) << 12)
    assert u.translate(dev.rid, FS_VA + 0x1000)["pa"] == 0x6200_1000        # stale
    f = [x for x in findings(s) if x["subject"] == "nic1"]
    assert len(f) == 1 and f[0]["fix"].startswith(f"iommufd-invalidate nic1 {FS_VA + 0x1000:#x} 1 ")
    v.invalidate("nic1", [{"addr": FS_VA + 0x1000, "npages": 1}])
    assert not [x for x in findings(s) if x["subject"] == "nic1"]
    assert u.translate(dev.rid, FS_VA + 0x1000)["pa"] == 0x6210_0000
