"""A VMM's iommufd objects for VFIO devices behind VT-d units (the [vtd_iommufd] table), made
as QEMU's intel_iommu (x-scalable-mode=on,x-flts=on) and VFIO make them, through the modelled
ioctls (vtd.py), and the reason for every decision:

- Container (IOAS): one per read-only policy. A device whose unit reports
  IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 in IOMMU_GET_HW_INFO goes to a container that leaves
  the VM's read-only areas out (QEMU's HOST_IOMMU_QUIRK_NESTING_PARENT_BYPASS_RO); the others
  go to one holding read-write and read-only areas. (Linux's VT-d driver refuses read-only
  mappings on every nesting parent, so such a container cannot hold a nesting parent while the
  VM has read-only areas.)
- S2: the device is attached to each nesting-parent HWPT of its container in turn (VFIO's
  iommufd_cdev_autodomains_get); the first the kernel accepts is shared. When every one is
  refused (a coherent S2 and a unit without snoop control: paging_domain_compatible; a
  non-coherent S2 with mappings and a unit with snoop control:
  iommufd_hwpt_paging_enforce_cc; other unit properties), a new IOMMU_HWPT_ALLOC_NEST_PARENT
  HWPT is allocated for it.
- Nested: the guest's first-stage table pointer (the vIOMMU's PASID entry) becomes an
  IOMMU_HWPT_DATA_VTD_S1 nested HWPT on the device's S2, attached in place of the S2.
"""
from __future__ import annotations

import errno as E

from ...errors import ModelError
from .errors import IommufdError
from .ioas import IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_WRITEABLE
from .hwpt import IOMMU_HWPT_ALLOC_NEST_PARENT
from .vtd import (IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17, IOMMU_HWPT_DATA_VTD_S1, VtdIommufd,
                  VtdNested, VtdS2, ecap)

RW, RO = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE, IOMMU_IOAS_MAP_READABLE
RW_ONLY, RW_RO = "RW only", "RW & RO"


def errname(err: int) -> str:
    """The kernel's name of an errno (Python names 95 ENOTSUP; Linux returns EOPNOTSUPP)."""
    return "EOPNOTSUPP" if err == E.EOPNOTSUPP else E.errorcode[err]


def _err(e: IommufdError) -> str:
    return f"-{errname(e.errno)}: {e.why} ({e.source})"


class VtdVmm:
    """The scenario's VT-d iommufd objects: .fd (VtdIommufd), .devices (name -> VtdDev),
    .containers (policy -> Ioas), .decisions (one dict per device, in realize order)."""

    def __init__(self, system, spec):
        self.fd = VtdIommufd()
        self.vm = system.vms[spec["vm"]]
        self.rom = spec["rom"]
        self.errata = spec["errata_772415"]
        self.containers: dict[str, object] = {}
        self.devices: dict[str, object] = {}
        self.decisions: list[dict] = []
        for dv in spec["devices"]:
            self._realize(system, dv)

    # -- names --------------------------------------------------------------------------------
    def s2s(self, policy):
        ioas = self.containers.get(policy)
        return [d for d in ioas.domains if isinstance(d, VtdS2)] if ioas else []

    @staticmethod
    def _used_dids(unit) -> set[int]:
        """The DIDs the unit's scenario tables use: iommufd's domains take others."""
        dids = {d.did for d in unit.domains.values()}
        dids |= {p["did"] for d in unit.devices.values() for p in d.spec.get("pasids", [])}
        return dids

    # -- one device -------------------------------------------------------------------------------
    def _container(self, policy, steps):
        ioas = self.containers.get(policy)
        if ioas is not None:
            steps.append(f"container {policy}: IOAS {ioas.id} exists")
            return ioas
        ioas = self.fd.ioas_alloc()
        for gpa, size, pa in self.vm.ram:
            ioas.map(size, pa, RW | IOMMU_IOAS_MAP_FIXED_IOVA, gpa)
        what = f"{self.vm.name}'s RAM read-write"
        if policy == RW_RO:
            for r in self.rom:
                ioas.map(r["size"], r["pa"], RO | IOMMU_IOAS_MAP_FIXED_IOVA, r["gpa"])
            if self.rom:
                what += f" and {len(self.rom)} read-only area(s)"
        elif self.rom:
            what += f" (its {len(self.rom)} read-only area(s) left out)"
        steps.append(f"container {policy}: new IOAS {ioas.id} with {what}")
        self.containers[policy] = ioas
        return ioas

    def _realize(self, system, dv):
        unit = system.vtd(dv["vtd"])
        fd = self.fd
        dev = fd.bind(dv["name"], unit, dv["rid"], self._used_dids(unit))
        self.devices[dv["name"]] = dev
        system.vtd_devices[dv["name"]] = unit.devices[dv["rid"]]
        steps = []
        info = fd.hw_info(dev.id, errata=self.errata.get(unit.name, True))
        errata = bool(info["flags"] & IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17)
        policy = RW_ONLY if errata else RW_RO
        steps.append(f"IOMMU_GET_HW_INFO: {unit.name} "
                     f"{'reports' if errata else 'does not report'} ERRATA_772415_SPR17, "
                     f"ECAP.SC={ecap(unit, 'SC')} (snoop control: "
                     f"{'coherent' if dev.enforce_cache_coherency else 'non-coherent'})")
        dec = {"device": dev.name, "unit": unit.name, "rid": dev.rid, "errata": errata,
               "coherent": dev.enforce_cache_coherency, "container": policy, "ioas": None,
               "s2": None, "shared": False, "nested": None, "did": None, "steps": steps,
               "error": None}
        self.decisions.append(dec)
        try:
            ioas = self._container(policy, steps)
        except (IommufdError, ModelError) as e:
            dec["error"] = f"IOAS: {e}"
            steps.append(dec["error"])
            return
        dec["ioas"] = ioas.id
        s2 = None
        for cand in self.s2s(policy):
            try:
                fd.attach(dev.id, cand.id)
            except IommufdError as e:
                steps.append(f"attach to S2 {cand.label} ({self._s2_text(cand)}) refused: "
                             f"{_err(e)}")
                continue
            s2 = cand
            dec["shared"] = True
            others = [d.name for d in cand.devices if d is not dev]
            steps.append(f"attach to S2 {cand.label} accepted: shared with {', '.join(others)}")
            break
        if s2 is None:
            try:
                s2 = fd.hwpt_alloc(dev.id, ioas.id, flags=IOMMU_HWPT_ALLOC_NEST_PARENT)
                fd.attach(dev.id, s2.id)
            except IommufdError as e:
                dec["error"] = f"no S2: IOMMU_HWPT_ALLOC(NEST_PARENT) {_err(e)}"
                steps.append(dec["error"])
                return
            steps.append(f"new S2 {s2.label} (IOMMU_HWPT_ALLOC_NEST_PARENT on {unit.name}): "
                         f"{self._s2_text(s2)}")
        dec["s2"] = s2.id
        dec["did"] = s2.dids.get(unit.name)
        if not dv["nested"]:
            return
        # the guest's table: a first-stage vtd_domain in the VM's RAM (root is a GPA)
        root = next(u.domains[dv["fs"]].root for u in system.vtds.values()
                    if dv["fs"] in u.domains) if dv["fs"] else dv["pgtbl_addr"]
        data = {"flags": dv["flags"], "pgtbl_addr": root, "addr_width": dv["addr_width"]}
        try:
            n = fd.hwpt_alloc(dev.id, s2.id, data_type=IOMMU_HWPT_DATA_VTD_S1, data=data)
        except IommufdError as e:
            dec["error"] = f"nested HWPT refused at IOMMU_HWPT_ALLOC: {_err(e)}"
            steps.append(dec["error"])
            return
        try:
            fd.attach(dev.id, n.id)
        except IommufdError as e:
            dec["error"] = f"nested HWPT {n.id} refused at attach: {_err(e)}"
            steps.append(dec["error"])
            return
        dec["nested"] = n.id
        dec["did"] = n.dids[unit.name]
        steps.append(f"nested HWPT {n.id} (IOMMU_HWPT_DATA_VTD_S1 pgtbl_addr={root:#x}, "
                     f"addr_width={dv['addr_width']}, flags={dv['flags']:#x}) on S2 {s2.label} "
                     f"attached: PASID entry PGTT=nested, DID {dec['did']}")

    @staticmethod
    def _s2_text(s2) -> str:
        return (f"{'coherent, snoop forced' if s2.force_snooping else 'non-coherent'}, "
                f"{s2.gaw}-bit, on {', '.join(sorted({d.unit.name for d in s2.devices})) or '-'}")

    # -- the view ---------------------------------------------------------------------------------
    def view(self) -> dict:
        """The containers, their S2s and the devices on each, and every device's decision:
        the seed's diagram (VTDIOASContainer -> VTDS2Hwpt -> devices) as data."""
        containers = []
        for policy, ioas in self.containers.items():
            s2s = []
            for s in self.s2s(policy):
                nested = sorted({d.hwpt.id for d in s.devices if isinstance(d.hwpt, VtdNested)})
                s2s.append({"hwpt": s.id, "coherent": s.force_snooping, "root": s.tables.root,
                            "levels": s.agaw + 2, "units": sorted({d.unit.name
                                                                   for d in s.devices}),
                            "devices": [d.name for d in s.devices], "nested": nested})
            containers.append({"policy": policy, "ioas": ioas.id,
                               "areas": [{"iova": a.iova, "length": a.length, "pa": a.pa,
                                          "writeable": a.write} for a in ioas.areas],
                               "reserved": [{"start": a, "last": b, "owner": o}
                                            for a, b, o in sorted(ioas.reserved)],
                               "s2s": s2s})
        return {"vm": self.vm.name, "containers": containers,
                "devices": [dict(d, steps=list(d["steps"])) for d in self.decisions]}

    def device(self, name):
        if name not in self.devices:
            raise ModelError(f"{name!r} is not a [vtd_iommufd] device "
                             f"({', '.join(self.devices) or 'there are none'})")
        return self.devices[name]

    def invalidate(self, name, entries, data_type=0, entry_len=24) -> dict:
        """IOMMU_HWPT_INVALIDATE on the nested HWPT of device name."""
        dev = self.device(name)
        if not isinstance(dev.hwpt, VtdNested):
            raise ModelError(f"{name} is not attached to a nested HWPT")
        return self.fd.hwpt_invalidate(dev.hwpt.id, entries, data_type, entry_len)
