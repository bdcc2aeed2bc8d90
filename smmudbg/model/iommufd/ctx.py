"""One iommufd context (an open /dev/iommu): the object table and the ioctls, with the
kernel's checks in the kernel's order and its errnos.

Devices are bound VFIO devices (VFIO_DEVICE_BIND_IOMMUFD) on a physical SMMU StreamID.
Attaching (VFIO_DEVICE_ATTACH_IOMMUFD_PT) writes the host STE into the physical stream table.
"""
from __future__ import annotations

import errno as E

from ...arch.smmuv3 import consts as C
from ...errors import ModelError
from .errors import fail
from .hwpt import (IOMMU_HWPT_ALLOC_DIRTY_TRACKING, IOMMU_HWPT_ALLOC_NEST_PARENT,
                   IOMMU_HWPT_DATA_ARM_SMMUV3, IOMMU_HWPT_DATA_NONE, IOMMU_HWPT_FAULT_ID_VALID,
                   HwptNested, HwptPaging)
from .ioas import PAGE_SIZE, ULONG_MAX, Ioas
from .results import (DeviceHwpt, DeviceInfo, ForwardInfo, HwInfo, HwptInfo, VdeviceInfo,
                      ViommuInfo)
from .viommu import (FORWARDED_EVENTS, IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
                     IOMMU_VIOMMU_TYPE_ARM_SMMUV3, Vdevice, Veventq, Viommu, event_sid)

# arm-smmu-v3.h: the software MSI window arm_smmu_get_resv_regions reports (IOMMU_RESV_SW_MSI)
MSI_IOVA_BASE = 0x8000000
MSI_IOVA_LENGTH = 0x100000
# The proposed IOMMU_OPTION_SW_MSI_START/SIZE (include/uapi/linux/iommufd.h in the patch)
IOMMU_OPTION_SW_MSI_START = 2
IOMMU_OPTION_SW_MSI_SIZE = 3
IOMMU_OPTION_OP_SET = 0
IOMMU_OPTION_OP_GET = 1
PHYS_ADDR_MAX = (1 << 64) - 1


class Device:
    """A bound device: one StreamID on one SMMU (iommufd supports single-SID PCI devices)."""

    def __init__(self, dev_id, name, smmu, sid, canwbs, ats, sw_msi):
        self.id = dev_id
        self.name = name
        self.smmu = smmu
        self.sid = sid
        self.canwbs = canwbs          # arm_smmu_master_canwbs: coherent, no No-Snoop escape
        self.ats = ats
        self.sw_msi_start = MSI_IOVA_BASE if sw_msi else None
        # IOMMU_OPTION_SW_MSI_START/SIZE (proposed): idev->sw_msi_start/size; size 0 keeps the
        # driver's window (the start option alone is ignored)
        self.opt_start: int | None = None
        self.opt_size = 0
        self.resv: list[tuple[int, int, str]] = []     # the device's other reserved regions
        self.hwpt = None
        self.cdtab: int | None = None   # the CD table the driver allocates on S1 attach
        self.vdev: Vdevice | None = None
        self.vmaster: tuple[Viommu, int] | None = None   # (vIOMMU, vSID) while nested


def nesting(smmu) -> bool:
    """ARM_SMMU_FEAT_NESTING: both stages (IDR0.S1P and IDR0.S2P)."""
    return bool(smmu.features.get("S1P") and smmu.features.get("S2P"))


class Iommufd:
    def __init__(self, vmid_per_viommu: bool = False):
        """vmid_per_viommu: model the proposed series that moves the VMID from the S2 parent
        to each vSMMU and lets one S2 parent serve vSMMUs on several SMMUs (not mainline:
        mainline arm_vsmmu_init refuses a parent of another SMMU with -EINVAL)."""
        self.objects: dict[int, object] = {}
        self.next_id = 1
        self.vmids: dict[str, set[int]] = {}
        self.asids: set[int] = set()          # arm_smmu_asid_xa: one ASID space for all SMMUs
        self.vmid_per_viommu = vmid_per_viommu
        # ictx->sw_msi_list: doorbell page -> page offset in the SW_MSI window, per start
        self.sw_msi_maps: dict[tuple[int, int], int] = {}

    # -- object table --------------------------------------------------------------------------
    def _add(self, obj) -> int:
        i = self.next_id
        self.next_id += 1
        obj.id = i
        self.objects[i] = obj
        return i

    def _get(self, op, oid, cls, err=E.ENOENT):
        obj = self.objects.get(oid)
        if not isinstance(obj, cls):
            fail(err, op, f"object {oid} is not of type {cls.__name__}", "iommufd_get_object")
        return obj

    def _alloc_vmid(self, smmu) -> int:
        """ida_alloc_range(&smmu->vmid_map, 1, (1 << vmid_bits) - 1): the lowest free VMID."""
        used = self.vmids.setdefault(smmu.name, set())
        top = (1 << (16 if smmu.features.get("VMID16") else 8)) - 1
        for v in range(1, top + 1):
            if v not in used:
                used.add(v)
                return v
        raise ModelError(f"{smmu.name}: no free VMID")

    def _alloc_asid(self, smmu) -> int:
        """xa_alloc(&arm_smmu_asid_xa, ..., XA_LIMIT(1, (1 << asid_bits) - 1))."""
        top = (1 << (16 if smmu.features.get("ASID16") else 8)) - 1
        for a in range(1, top + 1):
            if a not in self.asids:
                self.asids.add(a)
                return a
        raise ModelError(f"{smmu.name}: no free ASID")

    # -- devices and IOAS ----------------------------------------------------------------------
    def bind(self, name: str, smmu, sid: int, canwbs: bool = True, ats: bool = False,
             sw_msi: bool = True) -> Device:
        dev = Device(0, name, smmu, sid, canwbs, ats, sw_msi)
        self._add(dev)
        return dev

    def hw_info(self, dev_id, info_type: int = 0) -> HwInfo:
        """IOMMU_GET_HW_INFO (arm_smmu_hw_info): type DEFAULT or ARM_SMMUV3 (2); any other
        type needs impl_ops -> -EOPNOTSUPP."""
        op = "IOMMU_GET_HW_INFO"
        dev = self._get(op, dev_id, Device)
        if info_type not in (0, 2):
            fail(E.EOPNOTSUPP, op, f"type {info_type} is not ARM_SMMUV3", "arm_smmu_hw_info")
        r = dev.smmu.reg
        return HwInfo(2, tuple(r(f"IDR{i}") for i in range(6)), r("IIDR"), r("AIDR"))

    def ioas_alloc(self) -> Ioas:
        ioas = Ioas(0)
        self._add(ioas)
        return ioas

    def ioas(self, ioas_id) -> Ioas:
        return self._get("IOMMU_IOAS", ioas_id, Ioas)

    def ioas_map(self, ioas_id, length, pa, flags, iova=0) -> int:
        return self._get("IOMMU_IOAS_MAP", ioas_id, Ioas).map(length, pa, flags, iova)

    def ioas_unmap(self, ioas_id, iova, length) -> int:
        return self._get("IOMMU_IOAS_UNMAP", ioas_id, Ioas).unmap(iova, length)

    def ioas_copy(self, dst_id, src_id, length, src_iova, flags, dst_iova=0) -> int:
        src = self._get("IOMMU_IOAS_COPY", src_id, Ioas)
        # iommufd_ioas_copy looks the destination up after reading the source's pages
        return src.copy_to(lambda: self._get("IOMMU_IOAS_COPY", dst_id, Ioas), length,
                           src_iova, flags, dst_iova)

    def ioas_allow_iovas(self, ioas_id, ranges) -> None:
        self._get("IOMMU_IOAS_ALLOW_IOVAS", ioas_id, Ioas).allow_iovas(ranges)

    # -- IOMMU_OPTION: SW_MSI_START / SW_MSI_SIZE (proposed) -----------------------------------
    def option_sw_msi(self, option_id: int, op: int, dev_id: int, val64: int = 0) -> int:
        """IOMMU_OPTION with IOMMU_OPTION_SW_MSI_START (2) or _SIZE (3) on a device, as the
        proposed patch (Nicolin Chen, v2, Oct 2025: iommufd_option_sw_msi) has it: the device
        must not be attached (-EBUSY); START 1 MB aligned, SIZE in MB, the window (at least 1 MB)
        must not overlap the device's other reserved regions (-EADDRINUSE) nor wrap
        (-EOVERFLOW). SIZE 0 means the driver's window. Returns val64 (GET) or 0 (SET)."""
        name = {IOMMU_OPTION_SW_MSI_START: "SW_MSI_START",
                IOMMU_OPTION_SW_MSI_SIZE: "SW_MSI_SIZE"}.get(option_id)
        what = f"IOMMU_OPTION({name or option_id})"
        dev = self._get(what, dev_id, Device)
        if dev.hwpt is not None:
            fail(E.EBUSY, what, f"{dev.name} is attached: the window is enforced at attach",
                 "iommufd_option_sw_msi")
        if op not in (IOMMU_OPTION_OP_SET, IOMMU_OPTION_OP_GET) or name is None:
            fail(E.EOPNOTSUPP, what, f"op {op} / option {option_id}", "iommufd_option_sw_msi")
        if op == IOMMU_OPTION_OP_GET:
            return (dev.opt_start or 0) if name == "SW_MSI_START" else dev.opt_size >> 20
        start, size = dev.opt_start or 0, dev.opt_size
        if name == "SW_MSI_START":
            if val64 > PHYS_ADDR_MAX:
                fail(E.EINVAL, what, f"{val64:#x} is beyond PHYS_ADDR_MAX",
                     "iommufd_option_sw_msi")
            start = val64
            self._sw_msi_test(what, dev, start, size)
            dev.opt_start = start
        else:
            if val64 > ULONG_MAX >> 20:
                fail(E.EINVAL, what, f"{val64} MB does not fit SIZE_MAX", "iommufd_option_sw_msi")
            size = val64 << 20
            if size:
                self._sw_msi_test(what, dev, start, size)
            dev.opt_size = size
        if dev.opt_size and dev.sw_msi_start is not None:
            dev.sw_msi_start = dev.opt_start or 0          # the window the attach reserves
        elif dev.sw_msi_start is not None:
            dev.sw_msi_start = MSI_IOVA_BASE
        return 0

    @staticmethod
    def _sw_msi_test(what, dev, start, size):
        """iommufd_option_sw_msi_test."""
        mb = (1 << 20) - 1
        if start & mb or size & mb:
            fail(E.EINVAL, what, f"start {start:#x} / size {size:#x} not 1 MB aligned",
                 "iommufd_option_sw_msi_test")
        size = max(size, 1 << 20)
        last = start + size - 1
        if last > PHYS_ADDR_MAX:
            fail(E.EOVERFLOW, what, f"{start:#x} + {size:#x} wraps",
                 "iommufd_option_sw_msi_test")
        for first, rlast, kind in dev.resv:
            if kind != "direct-relaxable" and first <= last and rlast >= start:
                fail(E.EADDRINUSE, what, f"[{start:#x}, {last:#x}] overlaps the {kind} "
                     f"reserved region [{first:#x}, {rlast:#x}]", "iommufd_option_sw_msi_test")

    def sw_msi_window(self, dev) -> tuple[int, int] | None:
        """(start, size) of the device's SW_MSI window: the options' when SIZE is set, else
        the driver's MSI_IOVA_BASE, 1 MiB (None without IOMMU_RESV_SW_MSI)."""
        if dev.sw_msi_start is None:
            return None
        return (dev.sw_msi_start, dev.opt_size) if dev.opt_size else \
            (dev.sw_msi_start, MSI_IOVA_LENGTH)

    # -- IOMMU_HWPT_ALLOC ----------------------------------------------------------------------
    def hwpt_alloc(self, dev_id, pt_id, flags=0, data_type=IOMMU_HWPT_DATA_NONE, data=None):
        """IOMMU_HWPT_ALLOC (iommufd_hwpt_alloc): pt_id an IOAS gives a paging HWPT (with
        NEST_PARENT: the S2 a vIOMMU needs); pt_id a vIOMMU with data_type
        IOMMU_HWPT_DATA_ARM_SMMUV3 and data = (ste0, ste1) gives a nested HWPT."""
        op = "IOMMU_HWPT_ALLOC"
        if (data_type == IOMMU_HWPT_DATA_NONE) != (data is None):
            fail(E.EINVAL, op, "data_type and data disagree", "iommufd_hwpt_alloc")
        dev = self._get(op, dev_id, Device)
        pt = self.objects.get(pt_id)
        if pt is None:
            fail(E.EINVAL, op, f"no object {pt_id}", "iommufd_hwpt_alloc")
        if isinstance(pt, Ioas):
            return self._hwpt_paging(op, dev, pt, flags, data)
        if isinstance(pt, HwptPaging):
            # SMMUv3 has no ops->domain_alloc_nested: nesting goes through a vIOMMU
            fail(E.EOPNOTSUPP, op, "SMMUv3 allocates nested domains on a vIOMMU, not on a "
                 "HWPT", "iommufd_hwpt_nested_alloc")
        if isinstance(pt, Viommu):
            if pt.smmu is not dev.smmu:
                fail(E.EINVAL, op, f"{dev.name} is behind {dev.smmu.name}, the vIOMMU on "
                     f"{pt.smmu.name}", "iommufd_hwpt_alloc")
            if flags & ~IOMMU_HWPT_FAULT_ID_VALID:
                fail(E.EOPNOTSUPP, op, f"flags {flags:#x}", "iommufd_viommu_alloc_hwpt_nested")
            if flags:
                raise ModelError(f"{op}: FAULT_ID_VALID (an IOPF fault queue) is not modelled")
            if data_type != IOMMU_HWPT_DATA_ARM_SMMUV3:
                fail(E.EINVAL, op, f"data_type {data_type} is not IOMMU_HWPT_DATA_ARM_SMMUV3",
                     "iommu_copy_struct_from_user")
            if len(data) != 2:
                raise ModelError(f"{op}: IOMMU_HWPT_DATA_ARM_SMMUV3 data is two 64-bit words "
                                 f"(vSTE dw0, dw1)")
            hw = HwptNested(0, pt, data[0], data[1])
            self._add(hw)
            return hw
        fail(E.EINVAL, op, f"object {pt_id} is neither an IOAS, a HWPT nor a vIOMMU",
             "iommufd_hwpt_alloc")

    def _hwpt_paging(self, op, dev, ioas, flags, data):
        valid = IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING | \
            IOMMU_HWPT_FAULT_ID_VALID
        if flags & ~valid:
            fail(E.EOPNOTSUPP, op, f"flags {flags:#x}", "iommufd_hwpt_paging_alloc")
        f = dev.smmu.features
        # IOMMU_CAP_DIRTY_TRACKING is arm_smmu_dbm_capable: HTTU with dirty state (HD) on a
        # coherent SMMU
        if flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING and not (f.get("HTTU", 0) >= 2 and
                                                            f.get("COHACC")):
            fail(E.EOPNOTSUPP, op, "DIRTY_TRACKING without IOMMU_CAP_DIRTY_TRACKING "
                 "(IDR0.HTTU dirty and COHACC)", "iommufd_hwpt_paging_alloc")
        if flags & IOMMU_HWPT_FAULT_ID_VALID and flags & IOMMU_HWPT_ALLOC_NEST_PARENT:
            fail(E.EOPNOTSUPP, op, "FAULT_ID_VALID with NEST_PARENT", "iommufd_hwpt_paging_alloc")
        if data is not None:
            fail(E.EOPNOTSUPP, op, "user data on a paging domain",
                 "arm_smmu_domain_alloc_paging_flags")
        if flags & (IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_FAULT_ID_VALID):
            raise ModelError(f"{op}: dirty tracking and IOPF fault queues are not modelled")
        nest_parent = bool(flags & IOMMU_HWPT_ALLOC_NEST_PARENT)
        if nest_parent and not nesting(dev.smmu):
            fail(E.EOPNOTSUPP, op, f"{dev.smmu.name} lacks ARM_SMMU_FEAT_NESTING (S1P and S2P)",
                 "arm_smmu_domain_alloc_paging_flags")
        # arm_smmu_domain_alloc_paging_flags: a nesting parent is stage 2; otherwise stage 1
        # if the SMMU has it ("Prefer S1 if available")
        stage = 2 if nest_parent or not dev.smmu.features.get("S1P") else 1
        vmid = self._alloc_vmid(dev.smmu) if stage == 2 else 0
        asid = self._alloc_asid(dev.smmu) if stage == 1 else 0
        # iommufd_hwpt_paging_alloc: a device with IOMMU_CAP_ENFORCE_CACHE_COHERENCY (canwbs
        # on SMMUv3) makes the new domain enforce coherency (none attached yet: it succeeds).
        hw = HwptPaging(0, ioas, dev.smmu, vmid, nest_parent, enforce_cc=dev.canwbs,
                        stage=stage, asid=asid)
        self._add(hw)
        hw.label = f"HWPT {hw.id}"
        try:
            ioas.add_domain(op, hw)
        except Exception:
            del self.objects[hw.id]
            self.vmids.get(dev.smmu.name, set()).discard(vmid)
            self.asids.discard(asid)
            raise
        return hw

    # -- vIOMMU / vDEVICE / vEVENTQ ----------------------------------------------------------
    def viommu_alloc(self, dev_id, hwpt_id, viommu_type=IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
                     flags=0) -> Viommu:
        """IOMMU_VIOMMU_ALLOC (iommufd_viommu_alloc_ioctl, arm_smmu_get_viommu_size,
        arm_vsmmu_init)."""
        op = "IOMMU_VIOMMU_ALLOC"
        if flags or viommu_type == 0:
            fail(E.EOPNOTSUPP, op, "flags set or type DEFAULT", "iommufd_viommu_alloc_ioctl")
        dev = self._get(op, dev_id, Device)
        smmu = dev.smmu
        if not nesting(smmu):
            fail(E.EOPNOTSUPP, op, f"{smmu.name} lacks ARM_SMMU_FEAT_NESTING",
                 "arm_smmu_get_viommu_size")
        if not dev.canwbs and not smmu.features.get("FWB"):
            fail(E.EOPNOTSUPP, op, f"{dev.name} is not coherent (canwbs) and {smmu.name} has no "
                 f"S2FWB", "arm_smmu_get_viommu_size")
        if viommu_type != IOMMU_VIOMMU_TYPE_ARM_SMMUV3:
            fail(E.EOPNOTSUPP, op, f"type {viommu_type} needs impl_ops (e.g. Tegra241 CMDQV)",
                 "arm_smmu_get_viommu_size")
        parent = self._get(op, hwpt_id, HwptPaging)
        if not parent.nest_parent:
            fail(E.EINVAL, op, f"HWPT {hwpt_id} is not a nesting parent",
                 "iommufd_viommu_alloc_ioctl")
        if self.vmid_per_viommu:
            vmid = self._alloc_vmid(smmu)
        else:
            if parent.smmu is not smmu:
                fail(E.EINVAL, op, f"the S2 parent HWPT {hwpt_id} belongs to {parent.smmu.name},"
                     f" the device to {smmu.name}", "arm_vsmmu_init")
            vmid = parent.vmid                   # "FIXME Move VMID allocation ... to here"
        v = Viommu(0, smmu, parent, vmid)
        self._add(v)
        return v

    def vdevice_alloc(self, viommu_id, dev_id, virt_id) -> Vdevice:
        """IOMMU_VDEVICE_ALLOC (iommufd_vdevice_alloc_ioctl): virt_id is the vSID."""
        op = "IOMMU_VDEVICE_ALLOC"
        if virt_id > ULONG_MAX:
            fail(E.EINVAL, op, "virt_id > ULONG_MAX", "iommufd_vdevice_alloc_ioctl")
        v = self._get(op, viommu_id, Viommu)
        dev = self._get(op, dev_id, Device)
        if v.smmu is not dev.smmu:
            fail(E.EINVAL, op, f"{dev.name} is behind {dev.smmu.name}, the vIOMMU on "
                 f"{v.smmu.name}", "iommufd_vdevice_alloc_ioctl")
        if dev.vdev is not None:
            fail(E.EEXIST, op, f"{dev.name} already has vDEVICE {dev.vdev.id}",
                 "iommufd_vdevice_alloc_ioctl")
        if virt_id in v.vdevs:
            fail(E.EEXIST, op, f"vSID {virt_id:#x} is already {v.vdevs[virt_id].device.name}",
                 "iommufd_vdevice_alloc_ioctl")
        vd = Vdevice(0, v, dev, virt_id)
        self._add(vd)
        v.vdevs[virt_id] = vd
        dev.vdev = vd
        return vd

    def veventq_alloc(self, viommu_id, depth, q_type=IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
                      flags=0) -> Veventq:
        op = "IOMMU_VEVENTQ_ALLOC"
        if flags or q_type == 0:
            fail(E.EOPNOTSUPP, op, "flags set or type DEFAULT", "iommufd_veventq_alloc")
        if not depth:
            fail(E.EINVAL, op, "veventq_depth is 0", "iommufd_veventq_alloc")
        v = self._get(op, viommu_id, Viommu)
        if v.veventq is not None:
            fail(E.EEXIST, op, f"vIOMMU {viommu_id} already has vEVENTQ {v.veventq.id}",
                 "iommufd_veventq_alloc")
        q = Veventq(0, v, depth)
        self._add(q)
        v.veventq = q
        return q

    # -- attach ----------------------------------------------------------------------------------
    def attach(self, dev_id, hwpt_id) -> list[int]:
        """VFIO_DEVICE_ATTACH_IOMMUFD_PT to a HWPT (iommufd_hw_pagetable_attach, then the
        driver's attach_dev); on an attached device it replaces the HWPT, as VFIO does with
        iommufd_device_replace. Returns the host STE words written."""
        op = "ATTACH"
        dev = self._get(op, dev_id, Device)
        hw = self.objects.get(hwpt_id)
        if isinstance(hw, Ioas):
            raise ModelError(f"{op}: attaching to an IOAS allocates an automatic stage-1 "
                             f"domain, which is not modelled: allocate a NEST_PARENT HWPT")
        if not isinstance(hw, (HwptPaging, HwptNested)):
            fail(E.ENOENT, op, f"object {hwpt_id} is not a HWPT", "iommufd_get_object")
        paging = hw if isinstance(hw, HwptPaging) else hw.parent
        # iommufd_hwpt_paging_attach: try to upgrade the domain to enforce coherency for a
        # coherent device; on SMMUv3 it fails when a non-canwbs device is attached already.
        others = [d for d in paging.devices if d is not dev]
        if dev.canwbs and not paging.enforce_cache_coherency:
            if any(not d.canwbs for d in others):
                fail(E.EINVAL, op, f"HWPT {paging.id} cannot enforce cache coherency: "
                     f"{next(d.name for d in others if not d.canwbs)} is not coherent",
                     "iommufd_hwpt_paging_enforce_cc")
            paging.enforce_cache_coherency = True
        owner = f"{dev.name} SW_MSI"
        added = False
        win = self.sw_msi_window(dev)
        if win is not None and not any(r[2] == owner for r in paging.ioas.reserved):
            paging.ioas.reserve(op, win[0], win[0] + win[1] - 1,
                                owner)          # iopt_table_enforce_dev_resv_regions
            added = True
        try:
            words = self._driver_attach(op, dev, hw, paging)
        except Exception:
            if added:                          # the error path drops the device's regions
                paging.ioas.remove_reserved(owner)
            raise
        old = dev.hwpt
        if old is not None:
            old_s2 = old if isinstance(old, HwptPaging) else old.parent
            for h in (old, old_s2):
                if dev in h.devices:
                    h.devices.remove(dev)
        dev.hwpt = hw
        for h in (hw, paging):
            if dev not in h.devices:
                h.devices.append(dev)
        self._install_ste(dev, words)
        return words

    def _driver_attach(self, op, dev, hw, paging) -> list[int]:
        """arm_smmu_attach_dev / arm_smmu_attach_dev_nested: the checks, then the STE."""
        if isinstance(hw, HwptPaging):
            if hw.smmu is not dev.smmu:
                fail(E.EINVAL, op, f"HWPT {hw.id} is on {hw.smmu.name}", "arm_smmu_attach_dev")
            self._check_cc(op, hw, dev)
            if hw.stage == 1:
                self._install_cd(dev, hw)
                words = hw.cdtable_ste(dev.cdtab, dev.ats)
            else:
                words = hw.s2_ste(dev.ats)
            dev.vmaster = None
        else:
            v = hw.viommu
            if v.smmu is not dev.smmu:
                fail(E.EINVAL, op, f"vIOMMU {v.id} is on {v.smmu.name}, {dev.name} on "
                     f"{dev.smmu.name}", "arm_smmu_attach_dev_nested")
            vdev = dev.vdev if dev.vdev is not None and dev.vdev.viommu is v else None
            if vdev is None and hw.config == C.STE_Config_s1_trans:
                fail(E.ENOENT, op, f"{dev.name} has no vDEVICE on vIOMMU {v.id}: a translating "
                     f"nested domain needs its vSID", "arm_smmu_attach_prepare_vmaster")
            self._check_cc(op, paging, dev)
            words = hw.host_ste(dev.ats and hw.enable_ats)
            dev.vmaster = (v, vdev.vsid) if vdev is not None else None
        return words

    @staticmethod
    def _check_cc(op, paging, dev):
        if paging.enforce_cache_coherency and not dev.canwbs:
            fail(E.EINVAL, op, f"HWPT {paging.id} enforces cache coherency and {dev.name} is "
                 f"not coherent (canwbs)", "arm_smmu_attach_prepare")

    @staticmethod
    def _install_ste(dev, words):
        """arm_smmu_install_ste_for_dev: the STE in the stream table, then CMD_CFGI_STE and
        CMD_SYNC (the kernel's hitless writer may take up to three such steps)."""
        dev.smmu.write_ste(dev.sid, words)
        if dev.smmu.field("CMDQ_BASE", "ADDR"):
            dev.smmu.submit([("CMD_CFGI_STE", {"StreamID": dev.sid, "Leaf": 1}), "CMD_SYNC"])

    @staticmethod
    def _install_cd(dev, hw):
        """arm_smmu_alloc_cd_tables (once: a linear table of one CD, the device has no PASID),
        then arm_smmu_write_cd_entry for SSID 0 and CMD_CFGI_CD + CMD_SYNC."""
        smmu = dev.smmu
        if dev.cdtab is None:
            dev.cdtab = smmu.alloc.alloc(64)
            smmu.mem.write_words(dev.cdtab, [0] * 8)
        smmu.mem.write_words(dev.cdtab, hw.s1_cd())
        if smmu.field("CMDQ_BASE", "ADDR"):
            smmu.submit([("CMD_CFGI_CD", {"StreamID": dev.sid, "SubstreamID": 0, "Leaf": 1}),
                         "CMD_SYNC"])

    def sw_msi(self, dev_id, doorbell_pa: int) -> int:
        """iommufd_sw_msi: map the doorbell page into the device's S2 at the SW_MSI window
        (the n-th distinct doorbell at sw_msi_start + n pages); returns the IOVA."""
        dev = self._get("sw_msi", dev_id, Device)
        if dev.sw_msi_start is None or dev.hwpt is None:
            raise ModelError(f"{dev.name}: no SW_MSI window or not attached")
        paging = dev.hwpt if isinstance(dev.hwpt, HwptPaging) else dev.hwpt.parent
        page = doorbell_pa & ~(PAGE_SIZE - 1)
        maps = self.sw_msi_maps
        pgoff = maps.setdefault((dev.sw_msi_start, page),
                                sum(1 for k in maps if k[0] == dev.sw_msi_start))
        iova = dev.sw_msi_start + pgoff * PAGE_SIZE
        paging.map_sw_msi(iova, page)
        return iova + (doorbell_pa - page)

    # -- invalidation and events --------------------------------------------------------------
    def hwpt_invalidate(self, hwpt_id, entries, data_type=1, entry_len=16):
        """IOMMU_HWPT_INVALIDATE with hwpt_id a vIOMMU (iommufd_hwpt_invalidate)."""
        op = "IOMMU_HWPT_INVALIDATE"
        obj = self.objects.get(hwpt_id)
        if obj is None:
            fail(E.ENOENT, op, f"no object {hwpt_id}", "iommufd_get_object")
        if isinstance(obj, HwptNested):
            fail(E.EOPNOTSUPP, op, "SMMUv3 nested domains have no cache_invalidate_user: "
                 "invalidate through the vIOMMU", "iommufd_hwpt_invalidate")
        if not isinstance(obj, Viommu):
            fail(E.EINVAL, op, f"object {hwpt_id} is neither a nested HWPT nor a vIOMMU",
                 "iommufd_hwpt_invalidate")
        return obj.invalidate(entries, data_type, entry_len)

    def forward_events(self, smmu) -> list[ForwardInfo]:
        """The host driver's event thread (arm_smmu_evtq_thread -> arm_smmu_handle_event):
        consume smmu's event queue; events of a device attached to a translating nested
        domain, not stage-2 faults and not stalls, go to its vIOMMU's vEVENTQ with the vSID."""
        out = []
        by_sid = {d.sid: d for d in self.objects.values()
                  if isinstance(d, Device) and d.smmu is smmu}
        for e in smmu.events():
            raw = bytes.fromhex(e["raw"])
            name, sid, s2, stall = event_sid(raw)
            dev = by_sid.get(sid)
            if name not in FORWARDED_EVENTS:
                out.append(ForwardInfo(name, sid, "not handled (-EOPNOTSUPP)"))
            elif dev is None:                       # arm_smmu_find_master fails
                out.append(ForwardInfo(name, sid, "no bound device (-EINVAL)"))
            elif stall:
                out.append(ForwardInfo(name, sid, "stall: IOPF, not modelled"))
            elif dev.vmaster is None or s2:
                why = "a stage-2 fault stays with the host" if s2 else "no vmaster"
                out.append(ForwardInfo(name, sid, f"host logs it ({why})"))
            else:
                v, vsid = dev.vmaster
                try:
                    v.report_event(raw, vsid)
                    out.append(ForwardInfo(name, sid, "forwarded", vsid, v.id))
                except ModelError as err:
                    out.append(ForwardInfo(name, sid, str(err), vsid, v.id))
        smmu.consume_events()
        return out

    # -- results ------------------------------------------------------------------------------
    def devices(self) -> list[DeviceInfo]:
        return [DeviceInfo(d.id, d.name, d.smmu.name, d.sid, d.canwbs,
                           d.hwpt.id if d.hwpt else None)
                for d in self.objects.values() if isinstance(d, Device)]

    def hwpts(self) -> list[HwptInfo]:
        out = []
        for h in self.objects.values():
            if isinstance(h, HwptPaging):
                t = h.tables
                out.append(HwptInfo(h.id, "paging", h.smmu.name, h.nest_parent, h.ioas.id,
                                    h.vmid if h.stage == 2 else None, t.root, t.tsz,
                                    t.sl0 if h.stage == 2 else None, t.tg,
                                    h.enforce_cache_coherency, stage=h.stage,
                                    asid=h.asid if h.stage == 1 else None,
                                    devices=tuple(d.name for d in h.devices)))
            elif isinstance(h, HwptNested):
                out.append(HwptInfo(h.id, "nested", h.viommu.smmu.name, viommu=h.viommu.id,
                                    vmid=h.viommu.vmid, vste=(h.ste0, h.ste1),
                                    config=_cfg_name(h.config),
                                    enable_ats=h.enable_ats,
                                    devices=tuple(d.name for d in h.devices)))
        return out

    def viommus(self) -> list[ViommuInfo]:
        return [ViommuInfo(v.id, v.smmu.name, v.parent.id, v.vmid,
                           tuple((s, vd.device.name) for s, vd in sorted(v.vdevs.items())),
                           v.veventq.id if v.veventq else None)
                for v in self.objects.values() if isinstance(v, Viommu)]

    def vdevices(self) -> list[VdeviceInfo]:
        return [VdeviceInfo(x.id, x.viommu.id, x.device.name, x.vsid, x.device.sid)
                for x in self.objects.values() if isinstance(x, Vdevice)]

    def explain(self) -> list[DeviceHwpt]:
        """Which HWPT each device uses, the S2 behind it, who shares that S2, and why."""
        out = []
        for d in self.objects.values():
            if not isinstance(d, Device):
                continue
            if d.hwpt is None:
                out.append(DeviceHwpt(d.name, d.smmu.name, d.sid, None, None, (), "not attached"))
                continue
            s2 = d.hwpt if isinstance(d.hwpt, HwptPaging) else d.hwpt.parent
            peers = tuple(x.name for x in s2.devices if x is not d)
            if isinstance(d.hwpt, HwptNested):
                v = d.hwpt.viommu
                why = (f"nested HWPT {d.hwpt.id} ({_cfg_name(d.hwpt.config)}) on vIOMMU {v.id} "
                       f"(VMID {v.vmid}); S2 is the vIOMMU's nesting parent HWPT {s2.id}")
            elif s2.stage == 1:
                why = f"stage-1 paging HWPT {s2.id} (ASID {s2.asid}), no S2"
            elif s2.nest_parent:
                why = f"S2-only on nesting parent HWPT {s2.id} (VMID {s2.vmid})"
            else:
                why = f"stage-2 paging HWPT {s2.id} (VMID {s2.vmid}; not a nesting parent)"
            why += ("; coherency enforced" if s2.enforce_cache_coherency else
                    "; coherency not enforced (a non-coherent device is on it)")
            out.append(DeviceHwpt(d.name, d.smmu.name, d.sid, d.hwpt.id,
                                  s2.id if s2.stage == 2 else None, peers, why))
        return out


def _cfg_name(cfg: int) -> str:
    return {C.STE_Config_abort: "abort", C.STE_Config_bypass: "bypass",
            C.STE_Config_s1_trans: "s1_trans"}.get(cfg, str(cfg))
