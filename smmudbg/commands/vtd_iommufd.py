"""iommufd on VT-d: IOMMU_HWPT_INVALIDATE on a [vtd_iommufd] device's nested HWPT (the view of
the containers and S2 HWPTs is `iommufd vtd`, in system.py)."""
from __future__ import annotations

from .. import results as res
from ..errors import ModelError
from ..model.iommufd.vtd_vmm import errname
from .registry import CommandError, Flag, Int, Text, command, shown


def _names(ctx, args):
    v = ctx.system.vtd_iommufd
    return list(v.devices) if v else []


@command("iommufd-invalidate", Text("device", "a [vtd_iommufd] device with a nested HWPT",
                                    metavar="DEVICE", complete=_names),
         Int("addr", "the first address (IOVA of the stage 1), 4 KiB aligned"),
         Int("npages", "4 KiB pages; 0xffffffffffffffff with addr 0: everything"),
         Flag("leaf", "IOMMU_VTD_INV_FLAGS_LEAF: only leaf entries changed (IH=1)"),
         Int("flags", "the raw flags word (the kernel refuses bits beyond LEAF)", keyword=True,
             hi=(1 << 32) - 1),
         Int("reserved", "the entry's __reserved word (must be 0)", keyword=True,
             hi=(1 << 32) - 1),
         Int("entry_len", "the entry length userspace declares (default 24)", keyword=True,
             hi=(1 << 32) - 1),
         Int("data_type", "IOMMU_HWPT_INVALIDATE_DATA_* (default 0, VTD_S1)", keyword=True,
             hi=(1 << 32) - 1))
def iommufd_invalidate(ctx, device, addr, npages, leaf=False, flags=None, reserved=None,
                       entry_len=None, data_type=None):
    """IOMMU_HWPT_INVALIDATE with one IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 entry {addr, npages,
    flags} on DEVICE's nested HWPT, as a VMM sends it when the guest invalidates its
    first-stage table (intel_nested_cache_invalidate_user).

    iommufd-invalidate DEVICE ADDR NPAGES [leaf] [flags=N reserved=N entry_len=N data_type=N]

    The kernel's checks and errnos, then the PASID-based IOTLB invalidation it queues on the
    device's unit (P_IOTLB_INV_DSC, page-selective over the naturally aligned range that covers
    [ADDR, ADDR + NPAGES pages), or PASID-selective for everything) and the wait; the log shows
    what each descriptor removed from the unit's IOTLB."""
    v = ctx.system.vtd_iommufd
    if v is None:
        raise CommandError("iommufd-invalidate: this system has no [vtd_iommufd] devices")
    if device not in v.devices:
        raise CommandError(f"iommufd-invalidate: {shown(device)} is not a [vtd_iommufd] device "
                           f"({', '.join(v.devices) or 'none'})")
    f = (flags if flags is not None else 0) | (1 if leaf else 0)
    try:
        r = v.invalidate(device, [{"addr": addr, "npages": npages, "flags": f,
                                   "reserved": reserved or 0}],
                         0 if data_type is None else data_type,
                         24 if entry_len is None else entry_len)
    except ModelError as e:
        raise CommandError(f"iommufd-invalidate: {e}") from None
    dev = v.devices[device]
    return res.VtdHwptInvalidate(
        device=device, hwpt=dev.hwpt.id, unit=dev.unit.name, handled=r["handled"],
        errno=-r["errno"], error=(f"-{errname(r['errno'])}: {r['error']}"
                                  if r["errno"] else ""),
        log=[{k: x.get(k) for k in ("index", "type", "fields", "removed", "note")}
             for x in r["log"]])
