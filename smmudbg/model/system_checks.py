"""`check` findings of the system around the SMMUs, each with its fix:

- the MSI path of every vector of every PCI device with MSI/MSI-X (model/msi.py, dry: the
  pending state is put back), the first broken vector of a device reported;
- IORT consistency (Iort.check with the PCI topology: overlapping or missing ranges, ...);
- ITS command queues that stalled or commands that failed;
- S2 HWPT sharing: iommufd devices on more nesting-parent S2s than the kernel's rules need
  (plan_s2), or a device the plan says cannot nest.

Each finding: {area, severity (error/warning), subject, message, fix}.
"""
from __future__ import annotations

from ..errors import ModelError
from . import msi as msipath


def findings(system) -> list[dict]:
    out = []
    out += _msi_paths(system)
    out += _iort(system)
    out += _its(system)
    out += _s2_sharing(system)
    return out


def _f(area, severity, subject, message, fix):
    return {"area": area, "severity": severity, "subject": subject, "message": message,
            "fix": fix}


def _msi_paths(system):
    out = []
    pci = system.pci
    if pci is None:
        return out
    for name, d in pci.devices.items():
        n = len(d.msix) if d.msix else (d.msi or {}).get("vectors", 0) if d.msi else 0
        for v in range(n):
            try:
                r = msipath.from_device(system, name, v, dry=True)
            except ModelError as e:
                out.append(_f("msi", "error", f"{name} vector {v}", str(e), "fix the device's "
                              "MSI programming"))
                break
            if not r["ok"]:
                out.append(_f("msi", "error", f"{name} vector {v}",
                              f"the MSI path breaks at {r['failed']}: {r['reason']}",
                              r["fix"]))
                break
    return out


def _iort(system):
    if system.iort is None:
        return []
    return [_f("iort", f.severity, f.node, f.message, f.fix)
            for f in system.iort.check(system.pci)]


def _its(system):
    out = []
    for name, its in system.its.items():
        if its.stalled:
            out.append(_f("its", "error", name, "the command queue is stalled "
                          "(GITS_CREADR.Stalled): later commands are not processed",
                          "fix the failing command, then write GITS_CWRITER with Retry=1"))
        for c in its.log:
            if not c.ok:
                out.append(_f("its", "warning", name, f"command at {c.offset:#x} {c.name} "
                              f"failed: {c.error}: {c.reason}", "reissue it with valid "
                              "arguments"))
    return out


def _s2_sharing(system):
    vmm = system.iommufd
    if vmm is None:
        return []
    from .iommufd import DeviceNeed, IommuCaps, plan_s2
    fd = vmm.fd
    devs = [d for d in fd.objects.values() if type(d).__name__ == "Device" and d.hwpt]
    if not devs:
        return []
    plan = plan_s2([DeviceNeed(d.name, d.smmu.name, d.canwbs) for d in devs],
                   {d.smmu.name: IommuCaps.from_smmu(d.smmu) for d in devs})
    used = {id(d.hwpt if not hasattr(d.hwpt, "parent") else d.hwpt.parent) for d in devs}
    out = []
    if len(used) > len(plan.s2s):
        out.append(_f("iommufd", "warning", "S2 HWPTs",
                      f"{len(used)} nesting-parent S2s where {len(plan.s2s)} suffice: "
                      + "; ".join(f"{c.device}: {c.reason}" for c in plan.choices),
                      "allocate one NEST_PARENT HWPT per SMMU and coherency class and attach "
                      "every device that can share it (one IOAS, one set of S2 tables)"))
    for c in plan.choices:
        if c.s2 == "-":
            out.append(_f("iommufd", "error", c.device, c.reason,
                          "use an SMMU with nesting (and S2FWB for a non-coherent device)"))
    return out
