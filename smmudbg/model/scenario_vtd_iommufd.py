"""The `[vtd_iommufd]` table of a scenario: a VM's VFIO devices behind VT-d units, bound to
iommufd and given a nesting-parent S2 and a nested HWPT as a VMM (QEMU's intel_iommu with
x-flts=on) does. Checked here; built by model/iommufd/vtd_vmm.py. docs/scenario.md."""
from __future__ import annotations

from ..errors import ScenarioError
from ..errors import brief as _show
from .iommufd.vtd import S1_FLAGS

KEYS = ("vm", "rom", "errata_772415", "devices")
DEVICE_KEYS = ("name", "vtd", "rid", "fs", "pgtbl_addr", "addr_width", "flags")


def normalize(doc: dict, out: dict, h) -> None:
    """Check doc's [vtd_iommufd] into out["vtd_iommufd"] (None when absent); h is the scenario
    module with its checkers."""
    out["vtd_iommufd"] = None
    if "vtd_iommufd" not in doc:
        return
    w = "vtd_iommufd"
    t = h._table(w, doc["vtd_iommufd"])
    h._known(w, t, KEYS)
    vms = {v["name"]: v for v in out["vm"]}
    vm = h._ref(f"{w}.vm", t.get("vm"), vms, "vm")
    units = {u["name"] for u in out["vtd"]}
    domains = {d["name"]: d for d in out["vtd_domain"]}
    rom = []
    for j, r in enumerate(h._array(f"{w}.rom", t.get("rom", []))):
        wr = f"{w}.rom[{j}]"
        r = h._table(wr, r)
        h._known(wr, r, ("gpa", "size", "pa"))
        gpa, size, pa = (h._addr(f"{wr}.{k}", r.get(k)) for k in ("gpa", "size", "pa"))
        if not size or (gpa | size | pa) & 0xFFF:
            raise ScenarioError(f"{wr}: gpa, pa and size must be 4 KiB aligned and the size "
                                f"not 0")
        h._range(wr, gpa, size)
        h._range(wr, pa, size)
        for x in vms[vm]["ram"]:
            if gpa < x["ipa"] + x["size"] and x["ipa"] < gpa + size:
                raise ScenarioError(f"{wr}: [{gpa:#x}, {gpa + size:#x}) overlaps {vm}'s RAM")
        rom.append({"gpa": gpa, "size": size, "pa": pa})
    errata = {}
    for k, v in h._table(f"{w}.errata_772415", t.get("errata_772415", {})).items():
        errata[h._ref(f"{w}.errata_772415", k, units, "vtd unit")] = \
            h._bool(f"{w}.errata_772415.{k}", v)
    taken = {x["name"] for k in ("smmu", "vm", "domain", "stream", "vtd", "vtd_domain",
                                 "vtd_device") for x in out.get(k, []) if x.get("name")}
    rids = {(d["vtd"], d["rid"]) for d in out["vtd_device"]}
    devices = []
    for i, d in enumerate(h._array(f"{w}.devices", t.get("devices", []))):
        wd = f"{w}.devices[{i}]"
        d = h._table(wd, d)
        h._known(wd, d, DEVICE_KEYS)
        name = d.get("name")
        if not isinstance(name, str) or not name:
            raise ScenarioError(f"{wd}.name: missing or not a string")
        if name in taken:
            raise ScenarioError(f"{wd}.name: {_show(name)} is already used")
        taken.add(name)
        unit = h._ref(f"{wd}.vtd", d.get("vtd"), units, "vtd unit")
        rid = h._bounded(f"{wd}.rid", d.get("rid"), 0, 0xFFFF, " (requester ID)")
        if (unit, rid) in rids:
            raise ScenarioError(f"{wd}.rid: {rid:#06x} is already a device of {unit}")
        rids.add((unit, rid))
        if "fs" in d and "pgtbl_addr" in d:
            raise ScenarioError(f"{wd}: give fs (a first-stage vtd_domain) or pgtbl_addr, "
                                f"not both")
        fs = None
        if "fs" in d:
            fs = h._ref(f"{wd}.fs", d["fs"], domains, "vtd_domain")
            if domains[fs]["stage"] != "first" or domains[fs]["vm"] != vm:
                raise ScenarioError(f"{wd}.fs: {fs} is not a first-stage table in {vm}'s "
                                    f"memory")
        flags = d.get("flags", [])
        if isinstance(flags, list):
            bits = 0
            for f in flags:
                bits |= S1_FLAGS[h._choice(f"{wd}.flags", f, tuple(S1_FLAGS))]
        else:
            bits = h._bounded(f"{wd}.flags", flags, 0, (1 << 64) - 1)
        nested = fs is not None or "pgtbl_addr" in d
        for k in ("addr_width", "flags"):
            if k in d and not nested:
                raise ScenarioError(f"{wd}.{k}: only with fs or pgtbl_addr (a nested HWPT)")
        devices.append({
            "name": name, "vtd": unit, "rid": rid, "fs": fs, "nested": nested,
            "pgtbl_addr": h._addr(f"{wd}.pgtbl_addr", d["pgtbl_addr"])
            if "pgtbl_addr" in d else None,
            # any 32-bit value: the kernel, not the scenario, refuses a width it cannot use
            "addr_width": h._bounded(f"{wd}.addr_width", d.get("addr_width", 48), 0,
                                     (1 << 32) - 1),
            "flags": bits})
    out["vtd_iommufd"] = {"vm": vm, "rom": rom, "errata_772415": errata, "devices": devices}
