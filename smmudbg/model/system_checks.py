"""`check` findings of the system around the SMMUs, each with its fix:

- the MSI path of every vector of every PCI device with MSI/MSI-X (model/msi.py, dry: the
  pending state is put back), the first broken vector of a device reported;
- IORT consistency (Iort.check with the PCI topology: overlapping or missing ranges, ...);
- ITS command queues that stalled or commands that failed;
- S2 HWPT sharing: iommufd devices on more nesting-parent S2s than the kernel's rules need
  (plan_s2), or a device the plan says cannot nest;
- vSMMUs (model/vsmmu.py): the accelerated-mode topology rules over the guest PCI topology;
  guest STEs the host refused or that changed without CMD_CFGI_STE (guest and host out of
  sync); a stopped guest command queue; guest invalidations the VMM did not forward, with the
  stale host IOTLB entries they left.

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
    out += _vtd_iommufd(system)
    out += _vsmmus(system)
    return out


def _vtd_iommufd(system):
    """[vtd_iommufd] devices the kernel refused an S2 or a nested HWPT (iommufd vtd)."""
    v = getattr(system, "vtd_iommufd", None)
    out = []
    for d in (v.decisions if v else ()):
        if not d["error"]:
            continue
        fix = ("give the device a container without the VM's read-only areas (the unit's "
               "hw_info reports ERRATA_772415_SPR17 on mainline) or drop them"
               if "read-only" in d["error"] else
               "a nested HWPT the unit supports (addr_width 48/57 per CAP.FL5LP, SRE/EAFE per "
               "ECAP.SRS/EAFS)" if "nested" in d["error"] else "see iommufd vtd")
        out.append(_f("iommufd", "error", d["device"], d["error"], fix))
    # A stale IOTLB entry of a nested HWPT: the guest changed its first-stage table and the
    # VMM did not forward the invalidation (IOMMU_HWPT_INVALIDATE on the nested HWPT).
    for name, dev in (v.devices.items() if v else ()):
        hw = dev.hwpt
        did = getattr(hw, "dids", {}).get(dev.unit.name) if hw is not None else None
        if did is None or hw.kind != "nested":
            continue
        for e in dev.unit.stale_entries():
            k = e["key"]
            if e["kind"] != "iotlb" or k["did"] != did or k["pasid"] != 0:
                continue
            out.append(_f("iommufd", "warning", name,
                          f"nested HWPT {hw.id} on {dev.unit.name}: {e['problem']}",
                          f"iommufd-invalidate {name} {k['in_base']:#x} {k['size'] >> 12} "
                          f"(IOMMU_HWPT_INVALIDATE: {e['fix']})"))
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


def _vsmmus(system):
    from . import coherence
    from .vsmmu import accel_topology, command_text
    out = []
    for vs in system.vsmmus.values():
        for t in accel_topology(system, vs):
            if t["severity"]:
                out.append(_f("vsmmu", t["severity"], f"{vs.name} {t['device']}", t["message"],
                              t["fix"]))
        for vsid in sorted(vs.vsids):
            row = vs.device_row(vsid, None)
            if row["in_sync"] is False:
                inst = vs.installed.get(vsid, {})
                if inst.get("error"):
                    out.append(_f("vsmmu", "error", f"{vs.name} vSID {vsid:#x}",
                                  f"the host refused the guest STE ({inst['error']}); "
                                  f"{row['device']} still uses HWPT {row['hwpt']['id']}",
                                  "the guest must write an STE the kernel accepts "
                                  "(arm_smmu_validate_vste: V, Config abort/bypass/s1_trans, "
                                  "EATS abort/trans, only the NESTING_ALLOWED fields), then "
                                  f"`vcmd {vs.name} CMD_CFGI_STE StreamID={vsid:#x}`"))
                else:
                    out.append(_f("vsmmu", "warning", f"{vs.name} vSID {vsid:#x}",
                                  f"the guest STE changed since its last CMD_CFGI_STE: the "
                                  f"host STE of {row['device']} still follows the old one",
                                  f"vcmd {vs.name} CMD_CFGI_STE StreamID={vsid:#x} Leaf=1"))
        if vs.cmdq.error:
            out.append(_f("vsmmu", "error", f"{vs.name} command queue",
                          f"the guest command queue stopped on {vs.cmdq.error} at CONS "
                          f"{vs.cmdq.cons:#x}: later guest commands are not forwarded",
                          f"fix the cause, then `vcmd {vs.name} resume`"))
        for lost in vs.lost:
            m = system.smmus[lost["smmu"]]
            stale = [e for e in coherence.stale_entries(m) if e["kind"] == "TLB"
                     and e["key"].get("vmid") == lost["vmid"]]
            what = command_text(lost["command"], lost["fields"])
            msg = (f"the VMM did not forward the guest's {what} to {lost['viommu']} "
                   f"({lost['smmu']}, VMID {lost['vmid']})")
            n = len(stale)
            verb = "entry still translates" if n == 1 else "entries still translate"
            msg += (f": {n} stale IOTLB {verb} (VMID {lost['vmid']} on {lost['smmu']}) what "
                    f"the guest invalidated" if stale else
                    "; the host IOTLB holds nothing stale now")
            out.append(_f("vsmmu", "error" if stale else "warning", f"{vs.name} invalidation",
                          msg, f"forward it: `vcmd {vs.name} {what}` (the VMM issues "
                               f"IOMMU_HWPT_INVALIDATE on {lost['viommu']})"))
    return out
