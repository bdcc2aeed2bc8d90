"""Typed results of the iommufd model: one dataclass per listed object, for the `iommufd`
command, `--json` and the UI to render. Addresses are ints; JSON renders them as hex."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class HwInfo:
    """IOMMU_GET_HW_INFO for SMMUv3 (struct iommu_hw_info_arm_smmuv3, arm_smmu_hw_info):
    SMMU_IDR0..5, SMMU_IIDR and SMMU_AIDR as the host reads them."""
    type: int                        # IOMMU_HW_INFO_TYPE_ARM_SMMUV3 = 2
    idr: tuple[int, int, int, int, int, int]
    iidr: int
    aidr: int


@dataclass(frozen=True)
class AreaInfo:
    """One IOAS area: IOVA [iova, iova+length) -> host PA, with IOMMU_IOAS_MAP_* permissions."""
    iova: int
    length: int
    pa: int
    readable: bool
    writeable: bool


@dataclass(frozen=True)
class ReservedInfo:
    """A reserved IOVA range and who reserved it (a device's SW_MSI window, an aperture)."""
    start: int
    last: int
    owner: str


@dataclass(frozen=True)
class IoasInfo:
    id: int
    areas: tuple[AreaInfo, ...]
    reserved: tuple[ReservedInfo, ...]
    allowed: tuple[tuple[int, int], ...]
    iova_alignment: int
    hwpts: tuple[int, ...]


@dataclass(frozen=True)
class HwptInfo:
    """A HWPT: kind 'paging' (nest_parent or not) or 'nested'. For paging: the table geometry
    (s2t0sz holds T0SZ for a stage-1 domain) and root; for nested: the validated vSTE words
    and the vIOMMU."""
    id: int
    kind: str
    smmu: str
    nest_parent: bool = False
    ioas: int | None = None
    vmid: int | None = None
    root: int | None = None
    s2t0sz: int | None = None
    s2sl0: int | None = None
    s2tg: int | None = None
    enforce_cache_coherency: bool = False
    viommu: int | None = None
    vste: tuple[int, int] | None = None
    config: str | None = None
    enable_ats: bool = False
    devices: tuple[str, ...] = ()
    stage: int | None = None         # paging: 1 (stage-1 domain, ASID) or 2 (VMID)
    asid: int | None = None


@dataclass(frozen=True)
class ViommuInfo:
    id: int
    smmu: str
    parent: int
    vmid: int
    vdevices: tuple[tuple[int, str], ...]     # (vSID, device)
    veventq: int | None


@dataclass(frozen=True)
class VdeviceInfo:
    id: int
    viommu: int
    device: str
    vsid: int
    psid: int


@dataclass(frozen=True)
class DeviceInfo:
    id: int
    name: str
    smmu: str
    sid: int
    canwbs: bool
    hwpt: int | None


@dataclass(frozen=True)
class VeventInfo:
    """One record read from a vEVENTQ: the header {flags, sequence} and the 32-byte event
    (empty for the lost-events header, flags = IOMMU_VEVENTQ_FLAG_LOST_EVENTS)."""
    sequence: int
    lost_events: bool
    event: str | None = None
    vsid: int | None = None
    raw: bytes = b""


@dataclass(frozen=True)
class InvalidationResult:
    """HWPT_INVALIDATE: how many entries were handled (entry_num out), the errno if one was
    refused (0 if none), and the commands sent to the physical command queue."""
    handled: int
    errno: int
    error: str
    sent: tuple[str, ...] = ()


@dataclass(frozen=True)
class S2Choice:
    """The S2 (nesting-parent HWPT) a device is given and why."""
    device: str
    smmu: str
    s2: str
    reason: str


@dataclass(frozen=True)
class S2Plan:
    """explain(): the S2 HWPTs needed, each with the devices on it, and each device's reason."""
    s2s: tuple[tuple[str, tuple[str, ...]], ...]
    choices: tuple[S2Choice, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class ForwardInfo:
    """What the host driver did with one event record (arm_smmu_handle_event): 'forwarded'
    to a vEVENTQ with the vSID, or why not."""
    event: str
    sid: int
    outcome: str
    vsid: int | None = None
    viommu: int | None = None


@dataclass(frozen=True)
class DeviceHwpt:
    """explain(): the HWPT a device is attached to, the S2 behind it and why."""
    device: str
    smmu: str
    sid: int
    hwpt: int | None
    s2: int | None
    shared_with: tuple[str, ...]
    reason: str
