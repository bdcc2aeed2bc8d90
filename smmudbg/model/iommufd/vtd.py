"""iommufd on Intel VT-d: the nesting-parent S2 HWPT, the nested HWPT from
IOMMU_HWPT_DATA_VTD_S1, attach (the PASID entry written in memory) and
IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 (PASID-based IOTLB descriptors on the unit's invalidation
queue), with the Linux checks in Linux's order and its errnos.

Sources (Linux, drivers/iommu/): iommufd/hw_pagetable.c (iommufd_hwpt_alloc,
iommufd_hwpt_paging_alloc, iommufd_hwpt_paging_enforce_cc, iommufd_hwpt_nested_alloc,
iommufd_hwpt_invalidate), intel/iommu.c (intel_iommu_hw_info, intel_iommu_capable,
intel_iommu_domain_alloc_second_stage, paging_domain_compatible,
intel_iommu_enforce_cache_coherency), intel/nested.c (intel_iommu_domain_alloc_nested,
intel_nested_attach_dev, intel_nested_cache_invalidate_user), intel/pasid.c
(intel_pasid_setup_nested, pasid_pte_config_nestd, intel_pasid_tear_down_entry), intel/cache.c
(cache_tag_flush_range, calculate_psi_aligned_address, qi_desc_piotlb(_all)),
include/uapi/linux/iommufd.h. Every PASID entry and descriptor is encoded through the VT-d field
tables (smmudbg/arch/vtd).
"""
from __future__ import annotations

import errno as E

from ...arch.fieldtable import fmt
from ...arch.vtd.invalidation import INV_DSC_TYPES
from ...errors import ModelError
from ..vtd import AW_OF_LEVELS, PAGE, VtdTables
from .errors import IommufdError, fail
from .hwpt import IOMMU_HWPT_ALLOC_DIRTY_TRACKING, IOMMU_HWPT_ALLOC_NEST_PARENT, \
    IOMMU_HWPT_DATA_NONE, IOMMU_HWPT_FAULT_ID_VALID
from .ioas import Ioas

# include/uapi/linux/iommufd.h
IOMMU_HWPT_ALLOC_PASID = 1 << 3
IOMMU_HWPT_DATA_VTD_S1 = 1
IOMMU_VTD_S1_SRE = 1 << 0
IOMMU_VTD_S1_EAFE = 1 << 1
IOMMU_VTD_S1_WPE = 1 << 2
S1_FLAGS = {"SRE": IOMMU_VTD_S1_SRE, "EAFE": IOMMU_VTD_S1_EAFE, "WPE": IOMMU_VTD_S1_WPE}
IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 = 0
IOMMU_VTD_INV_FLAGS_LEAF = 1 << 0
IOMMU_HW_INFO_TYPE_INTEL_VTD = 1
IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 = 1 << 0
# sizeof(struct iommu_hwpt_vtd_s1) {u64 flags, pgtbl_addr; u32 addr_width, __reserved} and of
# struct iommu_hwpt_vtd_s1_invalidate {u64 addr, npages; u32 flags, __reserved}: the minimum
# length iommu_copy_struct_from_user(_array) takes (offsetofend of __reserved).
VTD_S1_LEN = 24
VTD_S1_INV_LEN = 24
U64_MAX = (1 << 64) - 1
# intel/iommu.h
ADDR_WIDTH_4LEVEL, ADDR_WIDTH_5LEVEL = 48, 57
IDA_START_DID = 2                   # DIDs 0 (caching mode) and 1 (FLPT_DEFAULT_DID) are reserved
MAX_AGAW_PFN_WIDTH = 64 - 12        # MAX_AGAW_WIDTH - VTD_PAGE_SHIFT
QI_DONE = 2                         # the status qi_submit_sync's wait descriptor writes
IOMMU_NO_PASID = 0
IOAPIC_RANGE_START, IOAPIC_RANGE_END = 0xFEE0_0000, 0xFEEF_FFFF   # the interrupt window

_CAP = fmt("CAP_REG", "vtd")
_ECAP = fmt("ECAP_REG", "vtd")
_PE = fmt("PASID_ENTRY", "vtd")
_CTX = fmt("SM_CONTEXT_ENTRY", "vtd")
_PDE = fmt("PASID_DIR_ENTRY", "vtd")
_WAIT_ADDR = fmt("INV_WAIT_DSC", "vtd").field("STATUS_ADDR")
_PIOTLB_ADDR = fmt("P_IOTLB_INV_DSC", "vtd").field("ADDR")


def cap(unit, name) -> int:
    return _CAP.field(name).get([unit.cap])


def ecap(unit, name) -> int:
    return _ECAP.field(name).get([unit.ecap])


def nested_supported(unit) -> bool:
    """nested_supported(): scalable mode (ECAP.SMTS) and nested translation (ECAP.NEST)."""
    return bool(ecap(unit, "SMTS") and ecap(unit, "NEST"))


def agaw(unit) -> int:
    """iommu->agaw (iommu_calculate_agaw): the largest SAGAW level not above 57 bits."""
    sagaw = cap(unit, "SAGAW")
    for a in (3, 2, 1):
        if sagaw >> a & 1:
            return a
    raise ModelError(f"{unit.name}: CAP_REG.SAGAW {sagaw:#b} has no 39/48/57-bit support")


def domain_gaw(unit) -> int:
    """paging_domain_alloc: agaw_to_width(iommu->agaw) capped at cap_mgaw (MGAW + 1)."""
    return min(30 + 9 * agaw(unit), cap(unit, "MGAW") + 1)


def psi_aligned(start: int, last: int) -> tuple[int, int]:
    """calculate_psi_aligned_address: (address, size order) of the one naturally aligned
    power-of-two range that covers [start, last]; order MAX_AGAW_PFN_WIDTH means all."""
    start &= ~(PAGE - 1) & U64_MAX
    sz_lg2 = (start ^ last).bit_length()
    if sz_lg2 <= 12:
        return start, 0
    if sz_lg2 >= MAX_AGAW_PFN_WIDTH:
        return 0, MAX_AGAW_PFN_WIDTH
    return start & ~((1 << sz_lg2) - 1) & U64_MAX, sz_lg2 - 12


class SnoopTables(VtdTables):
    """A second stage whose leaves carry SNP once the domain forces snooping
    (domain_set_force_snooping: set_pte_snp, the per-PTE snoop control of a second stage)."""

    snp = False

    def _leaf(self, level, out, perm):
        ent = super()._leaf(level, out, perm)
        if self.snp:
            ent |= fmt(self.names[level][1], "vtd").field("SNP").inplace_mask
        return ent


class VtdDev:
    """A VFIO device bound to iommufd, one requester ID behind one VT-d unit. Its context
    entry and PASID directory are set up at bind, as intel_iommu_probe_device does."""

    def __init__(self, name, unit, rid):
        self.id = 0
        self.name, self.unit, self.rid = name, unit, rid
        self.hwpt = None
        # idev->enforce_cache_coherency = device_iommu_capable(IOMMU_CAP_ENFORCE_CACHE_
        # COHERENCY), which intel_iommu_capable answers with ECAP.SC (snoop control)
        self.enforce_cache_coherency = bool(ecap(unit, "SC"))


class VtdS2:
    """A paging HWPT on VT-d allocated with IOMMU_HWPT_ALLOC_NEST_PARENT: a second-stage
    table (intel_iommu_domain_alloc_second_stage) filled from its IOAS."""

    kind = "paging"
    page_size = PAGE

    def __init__(self, hwpt_id, ioas, unit):
        self.id = hwpt_id
        self.label = f"HWPT {hwpt_id}"
        self.ioas, self.unit = ioas, unit
        self.nest_parent = True
        self.agaw = agaw(unit)
        self.gaw = domain_gaw(unit)
        # what paging_domain_compatible compares with each unit a device is behind
        self.iommu_coherency = bool(ecap(unit, "SMPWCS"))   # scalable mode: ECAP.SMPWC
        self.superpage = cap(unit, "SLLPS")
        self.force_snooping = False
        self.has_mappings = False
        self.read_only_mapped = False
        self.tables = SnoopTables(unit.mem, "second", self.agaw + 2, unit.alloc,
                                large=(bool(self.superpage & 1), bool(self.superpage & 1)))
        self.aperture_end = (1 << self.gaw) - 1
        self.devices: list[VtdDev] = []          # attached directly or through a nested HWPT
        self.dids: dict[str, int] = {}           # unit -> DID, when attached directly

    def map_area(self, area) -> None:
        # __domain_mapping / vtdss_pt_iommu_set_prot: a nesting parent refuses read-only
        # mappings on every VT-d unit (PT_FEAT_VTDSS_FORCE_WRITEABLE, ERRATA_772415_SPR17)
        if not area.write:
            fail(E.EINVAL, "IOMMU_HWPT_ALLOC/IOAS_MAP", f"read-only area at IOVA "
                 f"{area.iova:#x} for a nesting parent: VT-d disallows read-only mappings on "
                 f"a nesting parent (ERRATA_772415_SPR17)", "intel/iommu.c __domain_mapping")
        self.tables.map(area.iova, area.pa, area.length, "rw")
        self.has_mappings = True

    def unmap_area(self, area) -> None:
        raise ModelError(f"{self.label}: unmapping from a VT-d S2 is not modelled")

    def enforce_cache_coherency(self) -> bool:
        """intel_iommu_enforce_cache_coherency: possible while every attached device's unit
        has ECAP.SC and, for a second stage, before the first mapping."""
        if self.force_snooping:
            return True
        if any(not ecap(d.unit, "SC") for d in self.devices) or self.has_mappings:
            return False
        self.force_snooping = self.tables.snp = True
        return True


class VtdNested:
    """A nested HWPT from IOMMU_HWPT_DATA_VTD_S1 (intel_iommu_domain_alloc_nested): the
    guest's first-stage table pointer and attributes over a nesting-parent S2."""

    kind = "nested"

    def __init__(self, hwpt_id, parent: VtdS2, flags, pgtbl_addr, addr_width):
        self.id = hwpt_id
        self.parent = parent
        self.flags, self.pgtbl_addr, self.addr_width = flags, pgtbl_addr, addr_width
        self.devices: list[VtdDev] = []
        self.dids: dict[str, int] = {}           # unit -> DID (domain_attach_iommu)


class VtdIommufd:
    """One iommufd context on a VT-d host: the object table and the ioctls."""

    def __init__(self):
        self.objects: dict[int, object] = {}
        self.next_id = 1
        self.dids: dict[str, set[int]] = {}       # unit -> DIDs in use
        self.status: dict[str, int] = {}          # unit -> qi_submit_sync's status slot

    # -- objects ---------------------------------------------------------------------------------
    def _add(self, obj) -> int:
        obj.id = self.next_id
        self.objects[obj.id] = obj
        self.next_id += 1
        return obj.id

    def _get(self, op, oid, cls, err=E.ENOENT):
        obj = self.objects.get(oid)
        if not isinstance(obj, cls):
            fail(err, op, f"object {oid} is not a {cls.__name__}", "iommufd_get_object")
        return obj

    def bind(self, name, unit, rid, used_dids=()) -> VtdDev:
        """VFIO_DEVICE_BIND_IOMMUFD for a requester of unit: its context entry and PASID
        directory (intel_pasid_setup_sm_context) are written here."""
        if rid in unit.devices:
            raise ModelError(f"{unit.name}: requester {rid:#06x} is already "
                             f"{unit.devices[rid].name}")
        unit.add_device({"name": name, "vtd": unit.name, "rid": rid, "rid_pasid": 0,
                         "pasids": [], "irtes": []})
        self.dids.setdefault(unit.name, set()).update(used_dids)
        dev = VtdDev(name, unit, rid)
        self._add(dev)
        return dev

    def hw_info(self, dev_id, errata: bool = True) -> dict:
        """IOMMU_GET_HW_INFO (intel_iommu_hw_info): type INTEL_VTD, CAP_REG, ECAP_REG and
        flags. Mainline sets IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 on every unit; errata=False
        models a kernel that reports it only on affected parts."""
        dev = self._get("IOMMU_GET_HW_INFO", dev_id, VtdDev)
        return {"type": IOMMU_HW_INFO_TYPE_INTEL_VTD,
                "flags": IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 if errata else 0,
                "cap_reg": dev.unit.cap, "ecap_reg": dev.unit.ecap}

    def ioas_alloc(self) -> Ioas:
        ioas = Ioas(0)
        self._add(ioas)
        return ioas

    def _alloc_did(self, unit) -> int:
        """domain_attach_iommu: ida_alloc_range(IDA_START_DID, cap_ndoms - 1)."""
        used = self.dids.setdefault(unit.name, set())
        top = (1 << (4 + 2 * cap(unit, "ND"))) - 1
        for d in range(IDA_START_DID, top + 1):
            if d not in used:
                used.add(d)
                return d
        fail(E.ENOSPC, "ATTACH", f"{unit.name} has no free domain ID", "domain_attach_iommu")

    # -- IOMMU_HWPT_ALLOC ----------------------------------------------------------------------
    def hwpt_alloc(self, dev_id, pt_id, flags=0, data_type=IOMMU_HWPT_DATA_NONE, data=None,
                   data_len=None, trailing=b""):
        """IOMMU_HWPT_ALLOC (iommufd_hwpt_alloc). pt_id an IOAS with NEST_PARENT: the S2;
        pt_id a nesting-parent HWPT with data_type IOMMU_HWPT_DATA_VTD_S1 and data
        {flags, pgtbl_addr, addr_width}: the nested HWPT. data_len defaults to
        sizeof(struct iommu_hwpt_vtd_s1); trailing: bytes userspace passes beyond it."""
        op = "IOMMU_HWPT_ALLOC"
        if data_len is None:
            data_len = VTD_S1_LEN + len(trailing) if data is not None else 0
        if data_type == IOMMU_HWPT_DATA_NONE and data_len:
            fail(E.EINVAL, op, "data_len without a data_type", "iommufd_hwpt_alloc")
        dev = self._get(op, dev_id, VtdDev)
        pt = self.objects.get(pt_id)
        if isinstance(pt, Ioas):
            return self._alloc_s2(op, dev, pt, flags, data_len)
        if isinstance(pt, VtdS2):
            return self._alloc_nested(op, dev, pt, flags, data_type, data, data_len, trailing)
        fail(E.EINVAL, op, f"object {pt_id} is neither an IOAS nor a paging HWPT",
             "iommufd_hwpt_alloc")

    def _alloc_s2(self, op, dev, ioas, flags, data_len):
        valid = (IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING |
                 IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID)
        if flags & ~valid:
            fail(E.EOPNOTSUPP, op, f"unknown flags {flags:#x}", "iommufd_hwpt_paging_alloc")
        if flags & IOMMU_HWPT_FAULT_ID_VALID and flags & IOMMU_HWPT_ALLOC_NEST_PARENT:
            fail(E.EOPNOTSUPP, op, "FAULT_ID_VALID with NEST_PARENT", "iommufd_hwpt_paging_alloc")
        unit = dev.unit
        if data_len:
            fail(E.EOPNOTSUPP, op, "user data on a paging domain",
                 "intel_iommu_domain_alloc_paging_flags")
        if not flags & IOMMU_HWPT_ALLOC_NEST_PARENT:
            raise ModelError(f"{op}: a VT-d paging HWPT without NEST_PARENT (a first-stage "
                             f"domain) is not modelled")
        if flags & ~(IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_PASID):
            raise ModelError(f"{op}: dirty tracking and IOPF fault queues are not modelled")
        if not nested_supported(unit):
            fail(E.EOPNOTSUPP, op, f"{unit.name} cannot nest (ECAP.SMTS={ecap(unit, 'SMTS')},"
                 f" ECAP.NEST={ecap(unit, 'NEST')})", "intel_iommu_domain_alloc_second_stage")
        if not ecap(unit, "SLTS"):
            fail(E.EOPNOTSUPP, op, f"{unit.name} has no second-stage translation (ECAP.SLTS)",
                 "intel_iommu_domain_alloc_second_stage")
        hw = VtdS2(0, ioas, unit)
        self._add(hw)
        hw.label = f"HWPT {hw.id}"
        # iommufd_hwpt_paging_alloc: the coherency mode is set before any mapping
        if dev.enforce_cache_coherency and not hw.enforce_cache_coherency():
            raise ModelError(f"{op}: enforce_cache_coherency failed on a new domain")
        try:
            ioas.add_domain(op, hw)
        except Exception:
            del self.objects[hw.id]
            raise
        return hw

    def _alloc_nested(self, op, dev, parent, flags, data_type, data, data_len, trailing):
        if flags & ~(IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID) or not data_len:
            fail(E.EOPNOTSUPP, op, f"flags {flags:#x} or no data", "iommufd_hwpt_nested_alloc")
        if not parent.nest_parent:
            fail(E.EINVAL, op, f"{parent.label} is not a nesting parent",
                 "iommufd_hwpt_nested_alloc")
        unit = dev.unit
        # iommufd_hwpt_nested_alloc hands the driver flags & ~IOMMU_HWPT_FAULT_ID_VALID
        if not nested_supported(unit):
            fail(E.EOPNOTSUPP, op, f"{unit.name} cannot nest (ECAP.NEST={ecap(unit, 'NEST')}, "
                 f"ECAP.SMTS={ecap(unit, 'SMTS')})", "intel_iommu_domain_alloc_nested")
        if data_type != IOMMU_HWPT_DATA_VTD_S1:
            fail(E.EOPNOTSUPP, op, f"data_type {data_type} is not IOMMU_HWPT_DATA_VTD_S1",
                 "intel_iommu_domain_alloc_nested")
        if data_len < VTD_S1_LEN:
            fail(E.EINVAL, op, f"data_len {data_len} < sizeof(struct iommu_hwpt_vtd_s1) "
                 f"{VTD_S1_LEN}", "iommu_copy_struct_from_user")
        if any(trailing):
            fail(E.E2BIG, op, "nonzero bytes beyond struct iommu_hwpt_vtd_s1",
                 "copy_struct_from_user")
        if flags & IOMMU_HWPT_FAULT_ID_VALID:
            raise ModelError(f"{op}: FAULT_ID_VALID (an IOPF fault queue) is not modelled")
        # The driver keeps flags, pgtbl_addr and addr_width as given: they are checked when
        # the PASID entry is set up (intel_pasid_setup_nested), not here.
        hw = VtdNested(0, parent, data["flags"], data["pgtbl_addr"], data["addr_width"])
        self._add(hw)
        return hw

    # -- attach ----------------------------------------------------------------------------------
    def attach(self, dev_id, hwpt_id) -> list:
        """VFIO_DEVICE_ATTACH_IOMMUFD_PT (iommufd_hw_pagetable_attach, then the driver's
        attach_dev) for RID_PASID; on an attached device it replaces. Returns the invalidation
        log of the unit's queue (the old entry's tear-down)."""
        op = "ATTACH"
        dev = self._get(op, dev_id, VtdDev)
        hw = self.objects.get(hwpt_id)
        if not isinstance(hw, (VtdS2, VtdNested)):
            fail(E.ENOENT, op, f"object {hwpt_id} is not a HWPT", "iommufd_get_object")
        s2 = hw if isinstance(hw, VtdS2) else hw.parent
        if isinstance(hw, VtdS2) and dev.enforce_cache_coherency and not \
                s2.enforce_cache_coherency():
            fail(E.EINVAL, op, f"{s2.label} does not enforce cache coherency and cannot now "
                 f"(it has mappings, or a device behind a unit without ECAP.SC), while "
                 f"{dev.unit.name} has snoop control", "iommufd_hwpt_paging_enforce_cc")
        self.compatible(op, s2, dev)
        if isinstance(hw, VtdNested):
            self._check_s1(op, hw, dev.unit)
        # iopt_table_enforce_dev_resv_regions on the paging HWPT's (or nested HWPT's parent's)
        # IOAS: intel_iommu_get_resv_regions reports the interrupt window as IOMMU_RESV_MSI,
        # which no IOAS area may cover (-EADDRINUSE)
        owner = f"{dev.name} MSI"
        added = not any(r[2] == owner for r in s2.ioas.reserved)
        if added:
            s2.ioas.reserve(op, IOAPIC_RANGE_START, IOAPIC_RANGE_END, owner)
        did = hw.dids.get(dev.unit.name)
        if did is None:
            try:
                did = hw.dids[dev.unit.name] = self._alloc_did(dev.unit)
            except IommufdError:
                if added:
                    s2.ioas.remove_reserved(owner)
                raise
        log = self._block(dev)
        self._write_entry(dev, hw, did)
        old = dev.hwpt
        if old is not None:
            old_s2 = old if isinstance(old, VtdS2) else old.parent
            if old_s2.ioas is not s2.ioas:         # the old IOAS drops the device's regions
                old_s2.ioas.remove_reserved(owner)
            for h in (old, old_s2):
                if dev in h.devices:
                    h.devices.remove(dev)
        dev.hwpt = hw
        for h in (hw, s2):
            if dev not in h.devices:
                h.devices.append(dev)
        return log

    @staticmethod
    def compatible(op, s2: VtdS2, dev: VtdDev) -> None:
        """paging_domain_compatible: the S2 against the device's unit (intel_iommu_attach_device
        and, for the parent of a nested domain, intel_nested_attach_dev)."""
        u = dev.unit
        src = "paging_domain_compatible"
        if s2.force_snooping and not ecap(u, "SC"):
            fail(E.EINVAL, op, f"{s2.label} enforces snooping and {u.name} has no snoop "
                 f"control (ECAP.SC=0)", src)
        if s2.iommu_coherency != bool(ecap(u, "SMPWCS")):
            fail(E.EINVAL, op, f"{s2.label}'s page-walk coherency differs from {u.name}'s "
                 f"(ECAP.SMPWCS)", src)
        if s2.superpage != cap(u, "SLLPS"):
            fail(E.EINVAL, op, f"{s2.label}'s large pages (SLLPS {s2.superpage:#b}) differ from "
                 f"{u.name}'s ({cap(u, 'SLLPS'):#b})", src)
        if s2.gaw > domain_gaw(u) or s2.agaw > agaw(u):
            fail(E.EINVAL, op, f"{s2.label} is {s2.gaw}-bit, wider than {u.name}", src)

    @staticmethod
    def _check_s1(op, hw: VtdNested, unit) -> None:
        """intel_pasid_setup_nested: the stage-1 address width and attributes against the
        unit (at attach: allocation keeps them unchecked)."""
        src = "intel_pasid_setup_nested"
        if hw.addr_width == ADDR_WIDTH_5LEVEL:
            if not cap(unit, "FL5LP"):
                fail(E.EINVAL, op, f"addr_width 57 (5-level paging) and {unit.name} has no "
                     f"CAP_REG.FL5LP", src)
        elif hw.addr_width != ADDR_WIDTH_4LEVEL:
            fail(E.EINVAL, op, f"addr_width {hw.addr_width} is neither 48 nor 57", src)
        if hw.flags & IOMMU_VTD_S1_SRE and not ecap(unit, "SRS"):
            fail(E.EINVAL, op, f"IOMMU_VTD_S1_SRE and {unit.name} has no supervisor requests "
                 f"(ECAP.SRS)", src)
        if hw.flags & IOMMU_VTD_S1_EAFE and not ecap(unit, "EAFS"):
            fail(E.EINVAL, op, f"IOMMU_VTD_S1_EAFE and {unit.name} has no extended accessed "
                 f"flag (ECAP.EAFS)", src)

    # -- the PASID entry -------------------------------------------------------------------------
    def entry_pa(self, dev, alloc=True) -> int:
        """intel_pasid_get_entry for RID_PASID: the PASID table (allocated on first use and
        hooked into the directory) and the entry's address."""
        u = dev.unit
        words = u.config(dev.rid)["ctx"]
        if words is None:
            raise ModelError(f"{dev.name}: {u.name} has no context entry for {dev.rid:#06x}")
        dirptr = _CTX.field("PASIDDIRPTR").address(words)
        pde = u.mem.read_u64(dirptr)
        if not _PDE.field("P").get([pde]):
            if not alloc:
                return 0
            table = u.alloc.alloc(PAGE)
            u.mem.write(table, bytes(PAGE))
            pde = _PDE.encode(P=1, SMPTBLPTR=_PDE.field("SMPTBLPTR").from_address(table))[0]
            u.mem.write_u64(dirptr, pde)
        return _PDE.field("SMPTBLPTR").address([pde]) + _PE.size * IOMMU_NO_PASID

    def _write_entry(self, dev, hw, did) -> None:
        """pasid_pte_config_nestd / pasid_pte_config_second_level: cleared, then the fields,
        written through the PASID_ENTRY field table."""
        s2 = hw if isinstance(hw, VtdS2) else hw.parent
        f = dict(P=1, DID=did, SLPTPTR=_PE.field("SLPTPTR").from_address(s2.tables.root),
                 AW=AW_OF_LEVELS[s2.agaw + 2],
                 PWSNP=int(ecap(dev.unit, "SMPWCS")), PGSNP=int(s2.force_snooping))
        if isinstance(hw, VtdNested):
            f.update(PGTT="nested",
                     FLPM=int(hw.addr_width == ADDR_WIDTH_5LEVEL),
                     # pasid_set_flptr keeps bits 63:12 (VTD_PAGE_MASK): low bits are dropped
                     FLPTPTR=_PE.field("FLPTPTR").from_address(
                         hw.pgtbl_addr & U64_MAX & ~(PAGE - 1)),
                     SRE=int(bool(hw.flags & IOMMU_VTD_S1_SRE)),
                     # WPE only with SRE (pasid_pte_config_nestd)
                     WPE=int(bool(hw.flags & IOMMU_VTD_S1_SRE and hw.flags & IOMMU_VTD_S1_WPE)),
                     EAFE=int(bool(hw.flags & IOMMU_VTD_S1_EAFE)))
        else:
            f.update(PGTT="second_stage")
        dev.unit.mem.write_words(self.entry_pa(dev), _PE.encode(**f))

    def _block(self, dev) -> list:
        """device_block_translation -> intel_pasid_tear_down_entry on an attached device: the
        entry cleared, then PC_INV_DSC (PASID-selective), the IOTLB by domain (a nested or
        second-stage entry: IOTLB_INV_DSC domain-selective) and a wait."""
        if dev.hwpt is None:
            return []
        pa = self.entry_pa(dev, alloc=False)
        old = [dev.unit.mem.read_u64(pa + 8 * i) for i in range(8)]
        did = _PE.field("DID").get(old)
        dev.unit.mem.write_words(pa, [0] * 8)
        return self._submit(dev.unit, [
            ("PC_INV_DSC", dict(G="pasid", DID=did, PASID=IOMMU_NO_PASID)),
            ("IOTLB_INV_DSC", dict(G="domain", DID=did))])

    def _submit(self, unit, descs) -> list:
        """qi_submit_sync: the descriptors, then INV_WAIT_DSC with SW=1 writing QI_DONE to a
        status slot."""
        if unit.name not in self.status:
            self.status[unit.name] = unit.alloc.alloc(PAGE)
            unit.mem.write(self.status[unit.name], bytes(PAGE))
        status = _WAIT_ADDR.from_address(self.status[unit.name])
        descs = list(descs) + [("INV_WAIT_DSC", dict(SW=1, STATUS_DATA=QI_DONE,
                                                     STATUS_ADDR=status))]
        words = []
        for n, f in descs:
            code = INV_DSC_TYPES[n + "_TYPE"]
            t = fmt(n, "vtd")
            lo = t.field("TYPE_LO")         # the type's low bits; TYPE_HI holds the rest
            words.append(t.encode(TYPE_LO=code & lo.mask, TYPE_HI=code >> lo.width, **f))
        return unit.submit(words)

    # -- IOMMU_HWPT_INVALIDATE -------------------------------------------------------------------
    def hwpt_invalidate(self, hwpt_id, entries, data_type=IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
                        entry_len=VTD_S1_INV_LEN):
        """IOMMU_HWPT_INVALIDATE on a nested HWPT (intel_nested_cache_invalidate_user).
        entries: [{addr, npages, flags, reserved}]. Returns {handled, errno, error, log}: the
        entries processed before one was refused, and the unit queue's log."""
        op = "IOMMU_HWPT_INVALIDATE"
        obj = self.objects.get(hwpt_id)
        if obj is None:
            fail(E.ENOENT, op, f"no object {hwpt_id}", "iommufd_get_object")
        if entries and not entry_len:
            fail(E.EINVAL, op, "entry_num without entry_len", "iommufd_hwpt_invalidate")
        if not isinstance(obj, VtdNested):
            fail(E.EINVAL, op, f"object {hwpt_id} is not a nested HWPT",
                 "iommufd_hwpt_invalidate")
        handled, err, why, log = 0, 0, "", []
        src = "intel_nested_cache_invalidate_user"
        if data_type != IOMMU_HWPT_INVALIDATE_DATA_VTD_S1:
            return dict(handled=0, errno=E.EINVAL, error=f"data_type {data_type} is not "
                        f"IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 ({src})", log=[])
        for i, ent in enumerate(entries):
            addr, npages = ent.get("addr", 0), ent.get("npages", 0)
            flags, reserved = ent.get("flags", 0), ent.get("reserved", 0)
            if entry_len < VTD_S1_INV_LEN:
                err, why = E.EINVAL, f"entry_len {entry_len} < {VTD_S1_INV_LEN} " \
                                     f"(iommu_copy_struct_from_user_array)"
            elif flags & ~IOMMU_VTD_INV_FLAGS_LEAF or reserved:
                err, why = E.EOPNOTSUPP, f"entry {i}: flags {flags:#x} beyond " \
                                         f"IOMMU_VTD_INV_FLAGS_LEAF or __reserved set ({src})"
            elif addr & (PAGE - 1) or (npages == U64_MAX and addr):
                err, why = E.EINVAL, f"entry {i}: addr {addr:#x} not 4 KiB aligned, or " \
                                     f"npages U64_MAX (all) with a nonzero addr ({src})"
            if err:
                break
            log += self.flush_range(obj, addr, (addr + ((npages << 12) & U64_MAX) - 1) & U64_MAX,
                                    bool(flags & IOMMU_VTD_INV_FLAGS_LEAF))
            handled += 1
        return dict(handled=handled, errno=err, error=why, log=log)

    def flush_range(self, hw: VtdNested, start, last, ih) -> list:
        """cache_tag_flush_range on a nested domain: one PASID-based IOTLB descriptor per
        cache tag (one per unit and DID the domain is attached with, PASID RID_PASID),
        page-selective over the aligned range or, for order MAX_AGAW_PFN_WIDTH, all of the
        PASID (qi_desc_piotlb_all). Devices without ATS: no device-TLB tags."""
        addr, order = psi_aligned(start, last)
        log = []
        units = {d.unit.name: d.unit for d in hw.devices}
        for name, did in hw.dids.items():
            if name not in units:
                continue
            if order >= MAX_AGAW_PFN_WIDTH:
                d = ("P_IOTLB_INV_DSC", dict(G="pasid", DID=did, PASID=IOMMU_NO_PASID))
            else:
                d = ("P_IOTLB_INV_DSC", dict(G="page", DID=did, PASID=IOMMU_NO_PASID,
                                             ADDR=_PIOTLB_ADDR.from_address(addr), AM=order,
                                             IH=int(ih)))
            log += self._submit(units[name], [d])
        return log


__all__ = ["VtdIommufd", "VtdDev", "VtdS2", "VtdNested", "psi_aligned", "S1_FLAGS",
           "IOMMU_HWPT_DATA_VTD_S1", "IOMMU_VTD_S1_SRE", "IOMMU_VTD_S1_EAFE", "IOMMU_VTD_S1_WPE",
           "IOMMU_VTD_INV_FLAGS_LEAF", "IOMMU_HWPT_INVALIDATE_DATA_VTD_S1",
           "IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17", "IOMMU_HWPT_ALLOC_PASID"]
