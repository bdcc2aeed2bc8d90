"""Which nesting-parent S2 each device of a VM gets, and why.

One S2 (a NEST_PARENT HWPT holding the guest's IPA -> PA map) serves every device it can; a
further one is needed only when the kernel refuses a device on the ones that exist. The rules,
in the order a VMM meets them when it attaches devices one by one:

- Nesting at all: a vIOMMU needs ARM_SMMU_FEAT_NESTING, and on SMMUv3 a device that is not
  coherent (arm_smmu_master_canwbs) only on an SMMU with S2FWB (arm_smmu_get_viommu_size).
- One S2 per physical SMMU in mainline: arm_vsmmu_init refuses an S2 parent of another SMMU
  with -EINVAL. (share_across_iommus models the proposed series that moves the VMID to the
  vSMMU so that one S2 serves vSMMUs on several SMMUs.)
- Cache coherency (SMMUv3): an S2 allocated for a coherent device enforces coherency
  (iommufd_hwpt_paging_alloc); a non-coherent device then cannot attach to it
  (arm_smmu_attach_prepare, -EINVAL). An S2 allocated for a non-coherent device cannot be
  upgraded when a coherent one attaches (iommufd_hwpt_paging_enforce_cc ->
  arm_smmu_enforce_cache_coherency fails while a non-canwbs master is attached, -EINVAL).
  So coherent and non-coherent devices never share an S2 on SMMUv3.
- Read-only S2 mappings: an IOMMU with VT-d's ERRATA_772415 (Sapphire Rapids) must not use a
  nesting parent that has read-only mappings; such a device needs an S2 without them.

This planner serves SMMUv3. VT-d's decisions (snoop control per unit, Linux refusing read-only
mappings on every VT-d nesting parent) are made by attach attempts in vtd_vmm.py.
"""
from __future__ import annotations

from dataclasses import dataclass

from .results import S2Choice, S2Plan


@dataclass(frozen=True)
class IommuCaps:
    """What the decision needs to know of a physical IOMMU."""
    name: str
    kind: str = "smmuv3"              # "smmuv3" or "vtd"
    nesting: bool = True              # ARM_SMMU_FEAT_NESTING / VT-d nested translation
    s2fwb: bool = False               # SMMU_IDR3.FWB
    no_readonly_s2: bool = False      # VT-d ERRATA_772415: no read-only nesting-parent maps

    @classmethod
    def from_smmu(cls, smmu) -> "IommuCaps":
        f = smmu.features
        return cls(smmu.name, "smmuv3", bool(f.get("S1P") and f.get("S2P")), bool(f.get("FWB")))


@dataclass(frozen=True)
class DeviceNeed:
    name: str
    iommu: str
    coherent: bool = True             # SMMUv3: canwbs (IOMMU_CAP_ENFORCE_CACHE_COHERENCY)


class _S2:
    def __init__(self, n, iommu, kind, coherent, readonly):
        self.label = f"S2#{n}"
        self.iommu, self.kind = iommu, kind
        self.enforce_cc = coherent
        self.has_readonly = readonly
        self.devices: list[str] = []


def plan_s2(devices, iommus, *, readonly_maps: bool = False,
            share_across_iommus: bool = False) -> S2Plan:
    """devices: DeviceNeed in attach order; iommus: {name: IommuCaps}; readonly_maps: the
    guest memory map has read-only areas. Returns the S2s and each device's choice."""
    s2s: list[_S2] = []
    choices = []
    for d in devices:
        caps = iommus[d.iommu]
        if not caps.nesting:
            choices.append(S2Choice(d.name, d.iommu, "-", f"{d.iommu} cannot nest (no "
                                    f"ARM_SMMU_FEAT_NESTING): no vIOMMU for {d.name}"))
            continue
        if caps.kind == "smmuv3" and not d.coherent and not caps.s2fwb:
            choices.append(S2Choice(d.name, d.iommu, "-", f"{d.name} is not coherent and "
                                    f"{d.iommu} has no S2FWB: IOMMU_VIOMMU_ALLOC fails "
                                    f"(-EOPNOTSUPP, arm_smmu_get_viommu_size)"))
            continue
        cc = d.coherent if caps.kind == "smmuv3" else True
        ro_ok = not caps.no_readonly_s2
        refusals = []
        chosen = None
        for s in s2s:
            if s.iommu != d.iommu and not (share_across_iommus and s.kind == caps.kind):
                refusals.append(f"{s.label} is on {s.iommu} (arm_vsmmu_init: one S2 parent "
                                f"per SMMU)")
            elif caps.kind == "smmuv3" and s.enforce_cc and not cc:
                refusals.append(f"{s.label} enforces cache coherency and {d.name} is not "
                                f"coherent (arm_smmu_attach_prepare: -EINVAL)")
            elif caps.kind == "smmuv3" and cc and not s.enforce_cc:
                refusals.append(f"{s.label} holds a non-coherent device and cannot be made to "
                                f"enforce coherency for {d.name} (iommufd_hwpt_paging_enforce_cc: "
                                f"-EINVAL)")
            elif s.has_readonly and not ro_ok:
                refusals.append(f"{s.label} has read-only mappings and {d.iommu} has "
                                f"ERRATA_772415")
            else:
                chosen = s
                break
        if chosen is not None:
            peers = ", ".join(chosen.devices)
            reason = f"shares {chosen.label} with {peers}"
            if refusals:
                reason += " (" + "; ".join(refusals) + ")"
        else:
            chosen = _S2(len(s2s) + 1, d.iommu, caps.kind, cc, readonly_maps and ro_ok)
            s2s.append(chosen)
            reason = (f"new {chosen.label}: " + "; ".join(refusals) if refusals else
                      f"new {chosen.label}: first device that nests")
            if readonly_maps and not ro_ok:
                reason += " (without the read-only mappings: ERRATA_772415)"
        chosen.devices.append(d.name)
        choices.append(S2Choice(d.name, d.iommu, chosen.label, reason))
    return S2Plan(s2s=tuple((s.label, tuple(s.devices)) for s in s2s), choices=tuple(choices))
