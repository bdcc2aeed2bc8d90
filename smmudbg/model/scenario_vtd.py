"""Scenario tables of Intel VT-d remapping units: [[vtd]], [[vtd_domain]], [[vtd_device]].

Checked before anything is built; every error names the table, index and key (the scenario
loader adds the file and line). The format is in docs/scenario.md ("Intel VT-d").
"""
from __future__ import annotations

from ..arch.fieldtable import fmt
from ..errors import ScenarioError
from ..errors import brief as _show

# The PGTT a PASID entry can be given, by its field-table name.
PGTTS = {n: v for v, n in fmt("PASID_ENTRY", "vtd").field("PGTT").enum.items()
         if not n.startswith("reserved")}
# Second-stage levels by PASID_ENTRY.AW (39, 48, 57 bits: 3, 4, 5 levels); first-stage levels
# by FLPM (4 or 5).
SS_LEVELS = (3, 4, 5)
FS_LEVELS = (4, 5)
_CAP = {f.name: f for f in fmt("CAP_REG", "vtd").fields}
_ECAP = {f.name: f for f in fmt("ECAP_REG", "vtd").fields}
PASID_BITS = 20
IRT_ENTRIES = 256           # the interrupt remapping table the builder makes (IRTA_REG.S=7)
DLMS = {v: n for v, n in fmt("IRTE", "vtd").field("DLM").enum.items()
        if not n.startswith("reserved")}
DLMS = {n: v for v, n in DLMS.items()}
MAX_VTD_DEVICES = 1 << 12


def normalize(doc: dict, out: dict, h) -> None:
    """Check doc's vtd, vtd_domain and vtd_device tables into out (h: the scenario module,
    for its checkers)."""
    units, domains = {}, {}
    out["vtd"], out["vtd_domain"], out["vtd_device"] = [], [], []
    taken = {x["name"] for k in ("smmu", "vm", "domain", "stream") for x in out[k]
             if x.get("name")}

    def new_name(w, t):
        n = t.get("name")
        if not isinstance(n, str) or not n:
            raise ScenarioError(f"{w}.name: missing or not a string")
        if n in taken:
            raise ScenarioError(f"{w}.name: {_show(n)} is already used")
        taken.add(n)
        return n

    for i, u in enumerate(h._list(doc, "vtd")):
        w = f"vtd[{i}]"
        u = h._table(w, u)
        h._known(w, u, ("name", "base", "haw", "pool", "features", "translation",
                        "interrupt_remapping", "x2apic", "compat_interrupts"))
        if "pool" not in u:
            raise ScenarioError(f"{w}.pool: missing (host memory for the root, context and "
                                f"PASID tables)")
        feats = {}
        for k, v in h._table(f"{w}.features", u.get("features", {})).items():
            f = _CAP.get(k) or _ECAP.get(k)
            if f is None:
                raise ScenarioError(f"{w}.features: {_show(k)} is not a CAP_REG or ECAP_REG "
                                    f"field")
            feats[k] = h._bounded(f"{w}.features.{k}", v, 0, (1 << f.width) - 1)
        unit = {"name": new_name(w, u), "base": h._addr(f"{w}.base", u.get("base", 0)),
                "haw": h._bounded(f"{w}.haw", u.get("haw", 48), 32, 52,
                                  " (host address width)"),
                "pool": h._pool(f"{w}.pool", u["pool"]), "features": feats,
                "translation": h._bool(f"{w}.translation", u.get("translation", True)),
                "interrupt_remapping": h._bool(f"{w}.interrupt_remapping",
                                               u.get("interrupt_remapping", True)),
                "x2apic": h._bool(f"{w}.x2apic", u.get("x2apic", False)),
                "compat_interrupts": h._bool(f"{w}.compat_interrupts",
                                             u.get("compat_interrupts", False))}
        units[unit["name"]] = unit
        out["vtd"].append(unit)
    vms = {v["name"]: v for v in out["vm"]}
    for i, d in enumerate(h._list(doc, "vtd_domain")):
        w = f"vtd_domain[{i}]"
        d = h._table(w, d)
        h._known(w, d, ("name", "vtd", "stage", "levels", "did", "vm", "pool", "maps",
                        "map_vm", "perm"))
        stage = h._choice(f"{w}.stage", d.get("stage"), ("first", "second"))
        levels = h._int(f"{w}.levels", d.get("levels", 4))
        allowed = FS_LEVELS if stage == "first" else SS_LEVELS
        if levels not in allowed:
            raise ScenarioError(f"{w}.levels: {_show(levels)} is not one of "
                                f"{', '.join(map(str, allowed))} for a {stage}-stage table")
        vm = d.get("vm")
        if vm is not None:
            h._ref(f"{w}.vm", vm, vms, "vm")
        map_vm = d.get("map_vm")
        if map_vm is not None:
            h._ref(f"{w}.map_vm", map_vm, vms, "vm")
            if stage != "second":
                raise ScenarioError(f"{w}.map_vm: only a second-stage table maps a VM's RAM")
        if vm is not None and stage == "first" and "pool" not in d:
            raise ScenarioError(f"{w}.pool: a first-stage table in {vm}'s memory needs a pool "
                                f"(a GPA range of its RAM)")
        maps = []
        for j, m in enumerate(h._array(f"{w}.maps", d.get("maps", []))):
            wm = f"{w}.maps[{j}]"
            m = h._table(wm, m)
            h._known(wm, m, ("in", "out", "size", "perm"))
            a, o = h._addr(f"{wm}.in", m.get("in")), h._addr(f"{wm}.out", m.get("out"))
            size = h._addr(f"{wm}.size", m.get("size"))
            if not size or (a | o | size) & 0xFFF:
                raise ScenarioError(f"{wm}: in, out and size must be 4 KiB aligned and the size "
                                    f"not 0")
            h._range(wm, a, size)
            h._range(wm, o, size)
            maps.append({"in": a, "out": o, "size": size,
                         "perm": h._perm(f"{wm}.perm", m.get("perm", "rw"))})
        dom = {"name": new_name(w, d), "vtd": h._ref(f"{w}.vtd", d.get("vtd"), units, "vtd unit"),
               "stage": stage, "levels": levels,
               "did": h._bounded(f"{w}.did", d.get("did", 1), 0, 0xFFFF, " (16-bit DID)"),
               "vm": vm, "map_vm": map_vm, "perm": h._perm(f"{w}.perm", d.get("perm", "rw")),
               "pool": h._pool(f"{w}.pool", d["pool"]) if "pool" in d else None, "maps": maps}
        domains[dom["name"]] = dom
        out["vtd_domain"].append(dom)
    rids = set()
    for i, dv in enumerate(h._list(doc, "vtd_device")):
        w = f"vtd_device[{i}]"
        if i >= MAX_VTD_DEVICES:
            raise ScenarioError(f"{w}: the model builds at most {MAX_VTD_DEVICES} VT-d devices")
        dv = h._table(w, dv)
        h._known(w, dv, ("name", "vtd", "rid", "rid_pasid", "pasids", "irtes", "ats"))
        unit = h._ref(f"{w}.vtd", dv.get("vtd"), units, "vtd unit")
        ats = h._bool(f"{w}.ats", dv.get("ats", False))
        if ats and units[unit]["features"].get("DT", 1) == 0:
            raise ScenarioError(f"{w}.ats: {unit} has features.DT = 0 (no device-TLB "
                                f"support)")
        rid = h._bounded(f"{w}.rid", dv.get("rid"), 0, 0xFFFF, " (requester ID: bus << 8 | "
                                                               "devfn)")
        if (unit, rid) in rids:
            raise ScenarioError(f"{w}.rid: {rid:#06x} is already a device of {unit}")
        rids.add((unit, rid))
        pasids = []
        for j, p in enumerate(h._array(f"{w}.pasids", dv.get("pasids", []))):
            wp = f"{w}.pasids[{j}]"
            p = h._table(wp, p)
            h._known(wp, p, ("pasid", "pgtt", "fs", "ss", "did", "sre"))
            pgtt = h._choice(f"{wp}.pgtt", p.get("pgtt"), tuple(PGTTS))
            entry = {"pasid": h._bounded(f"{wp}.pasid", p.get("pasid"), 0,
                                         (1 << PASID_BITS) - 1),
                     "pgtt": pgtt, "fs": None, "ss": None,
                     "sre": h._bool(f"{wp}.sre", p.get("sre", False))}
            for key, stage, need in (("fs", "first", ("first_stage", "nested")),
                                     ("ss", "second", ("second_stage", "nested"))):
                if pgtt in need:
                    ref = h._ref(f"{wp}.{key}", p.get(key), domains, "vtd_domain")
                    if domains[ref]["stage"] != stage:
                        raise ScenarioError(f"{wp}.{key}: {ref} is not a {stage}-stage table")
                    if domains[ref]["vtd"] != unit:
                        raise ScenarioError(f"{wp}.{key}: {ref} belongs to "
                                            f"{domains[ref]['vtd']}, not {unit}")
                    entry[key] = ref
                elif key in p:
                    raise ScenarioError(f"{wp}.{key}: PGTT {pgtt} uses no {stage}-stage table")
            default_did = (domains[entry["fs"] or entry["ss"]]["did"]
                           if entry["fs"] or entry["ss"] else 1)
            entry["did"] = h._bounded(f"{wp}.did", p.get("did", default_did), 0, 0xFFFF)
            if any(q["pasid"] == entry["pasid"] for q in pasids):
                raise ScenarioError(f"{wp}.pasid: {entry['pasid']} is given twice")
            pasids.append(entry)
        rid_pasid = h._bounded(f"{w}.rid_pasid", dv.get("rid_pasid", 0), 0,
                               (1 << PASID_BITS) - 1)
        irtes = []
        for j, e in enumerate(h._array(f"{w}.irtes", dv.get("irtes", []))):
            we = f"{w}.irtes[{j}]"
            e = h._table(we, e)
            h._known(we, e, ("index", "vector", "dest", "delivery", "mode", "trigger",
                             "verify"))
            irtes.append({
                "index": h._bounded(f"{we}.index", e.get("index"), 0, IRT_ENTRIES - 1,
                                    f" (the interrupt remapping table has {IRT_ENTRIES} "
                                    f"entries)"),
                "vector": h._bounded(f"{we}.vector", e.get("vector"), 0x10, 0xFF),
                "dest": h._bounded(f"{we}.dest", e.get("dest", 0), 0, (1 << 32) - 1),
                "delivery": h._choice(f"{we}.delivery", e.get("delivery", "fixed"),
                                      tuple(DLMS)),
                "mode": h._choice(f"{we}.mode", e.get("mode", "physical"),
                                  ("physical", "logical")),
                "trigger": h._choice(f"{we}.trigger", e.get("trigger", "edge"),
                                     ("edge", "level")),
                "verify": h._bool(f"{we}.verify", e.get("verify", True))})
            if not units[unit]["x2apic"] and irtes[-1]["dest"] > 0xFF:
                raise ScenarioError(f"{we}.dest: {irtes[-1]['dest']:#x} is not an 8-bit xAPIC ID "
                                    f"(x2apic = false)")
        out["vtd_device"].append({"name": new_name(w, dv), "vtd": unit, "rid": rid,
                                  "rid_pasid": rid_pasid, "pasids": pasids, "irtes": irtes,
                                  "ats": ats})
