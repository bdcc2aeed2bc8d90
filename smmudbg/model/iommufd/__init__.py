"""iommufd objects as Linux has them: IOAS, HWPTs (nesting-parent S2 and nested from an
SMMUv3 vSTE), vIOMMU, vDEVICE, vEVENTQ, HWPT_INVALIDATE, and the S2 sharing decision.
See docs/iommufd.md."""
from .ctx import MSI_IOVA_BASE, MSI_IOVA_LENGTH, Device, Iommufd
from .errors import IommufdError
from .hwpt import (IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_DATA_ARM_SMMUV3, HwptNested,
                   HwptPaging, validate_vste)
from .ioas import (IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_WRITEABLE,
                   Ioas)
from .results import (AreaInfo, DeviceHwpt, DeviceInfo, ForwardInfo, HwInfo, HwptInfo,
                      InvalidationResult, IoasInfo, ReservedInfo, S2Choice, S2Plan,
                      VdeviceInfo, VeventInfo, ViommuInfo)
from .sharing import DeviceNeed, IommuCaps, plan_s2
from .viommu import IOMMU_VEVENTQ_FLAG_LOST_EVENTS, Vdevice, Veventq, Viommu

__all__ = [n for n in dir() if not n.startswith("_")]
