"""Scenario tables of the system around the SMMUs: `gic`, `pci`, `iort` and `[[its]]`.

Checked here before anything is built, with one-line errors naming the table and key (the PCI
and IORT tables by the node's name: `pci.device[nvme0].msix[1].address: ...`). docs/scenario.md
is the schema. PCI and IORT specs are checked by building them (PciTopology / Iort.from_spec do
every check); the ITS tables are checked against the features of that ITS.
"""
from __future__ import annotations

import re

from ..errors import ModelError, ScenarioError
from ..errors import brief as _show
from ..errors import listing
from .iort import Iort
from .its import ItsError, ItsFeatures
from .pci import PciTopology

ITS_FEATURES = ("devbits", "idbits", "cidbits", "hcc", "seis", "lpi_bits", "layout",
                "on_error")
PAGE_SIZES = (0x1000, 0x4000, 0x10000)       # GITS_BASER<n>.Page_Size: 4, 16, 64 KB
ITS_FRAME = 0x2_0000                        # control frame + translation frame, 64 KiB each


def _short(msg: str) -> str:
    """A model's error with any very long word (a huge number or name) cut."""
    return re.sub(r"\S{48,}", lambda m: m.group(0)[:32] + "...", msg)


def _from_spec(where, build, spec):
    """PciTopology / Iort from_spec: their ScenarioErrors name the node; input of a shape
    they do not expect (a list for a name, ...) is one line naming the table."""
    try:
        return build(spec)
    except ScenarioError as e:
        raise ScenarioError(_short(str(e))) from None
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, RecursionError) as e:
        raise ScenarioError(_short(f"{where}: malformed table ({type(e).__name__}: {e})")) \
            from None


def _is_name(v) -> bool:
    return isinstance(v, str) and bool(v)


def normalize(doc: dict, out: dict, h) -> None:
    """Check the system tables of `doc` into `out`. h: the scenario module's helpers."""
    g = h._table("gic", doc.get("gic", {}))
    h._known("gic", g, ("redistributors",))
    out["gic"] = {"redistributors": h._bounded("gic.redistributors", g.get("redistributors", 1),
                                               1, 1 << 16, " (processor numbers 0..N-1)")}
    out["pci"] = None
    topo = None
    if "pci" in doc:
        topo = _from_spec("pci", PciTopology.from_spec, doc["pci"])   # names pci.KIND[NAME]
        out["pci"] = doc["pci"]
    out["iort"] = _iort(doc, out, topo, h)
    out["its"] = []
    pes = out["gic"]["redistributors"]
    for i, t in enumerate(h._list(doc, "its")):
        out["its"].append(_its(f"its[{i}]", t, pes, topo, h))
    normalize_iommufd(doc, out, h)


def _iort(doc, out, topo, h):
    """{"nodes": spec} as given, or {"derive": [...]} for qemu_virt_iort, or None."""
    smmus = {s["name"]: s for s in out["smmu"]}
    if "iort" not in doc:
        if topo is None:
            return None
        if len(smmus) != 1:
            raise ScenarioError("iort: missing: with pci and more than one SMMU, say which "
                                "host bridges each SMMU translates (iort.derive)")
        return {"derive": [{"smmu": next(iter(smmus)), "host_bridges": list(topo.hosts),
                            "accel": False}], "legacy_count": False}
    t = h._table("iort", doc["iort"])
    if "derive" not in t:
        _from_spec("iort", Iort.from_spec, t)      # every check, naming iort.TYPE[NAME].KEY
        return {"nodes": t}
    h._known("iort", t, ("derive", "legacy_count"))
    if topo is None:
        raise ScenarioError("iort.derive: needs a pci table (the host bridges' bus ranges)")
    derive = []
    for j, d in enumerate(h._array("iort.derive", t["derive"])):
        w = f"iort.derive[{j}]"
        d = h._table(w, d)
        h._known(w, d, ("smmu", "host_bridges", "accel"))
        smmu = h._ref(f"{w}.smmu", d.get("smmu"), set(smmus), "SMMU")
        hbs = h._array(f"{w}.host_bridges", d.get("host_bridges", []))
        for k, hb in enumerate(hbs):
            if not _is_name(hb) or hb not in topo.hosts:
                raise ScenarioError(f"{w}.host_bridges[{k}]: {_show(hb)} is not a host bridge "
                                    f"(have: {listing(topo.hosts)})")
        derive.append({"smmu": smmu, "host_bridges": list(hbs),
                       "accel": h._bool(f"{w}.accel", d.get("accel", False))})
    return {"derive": derive,
            "legacy_count": h._bool("iort.legacy_count", t.get("legacy_count", False))}


def _its(w, t, pes, topo, h):
    t = h._table(w, t)
    h._known(w, t, ("name", "base", "pool", "features", "enabled", "device_table",
                    "collection_table", "cmdq_pages", "collections", "devices"))
    name = t.get("name")
    if not isinstance(name, str) or not name:
        raise ScenarioError(f"{w}.name: missing or not a string")
    if "base" not in t:
        raise ScenarioError(f"{w}.base: missing (the ITS control frame; GITS_TRANSLATER is at "
                            f"base + 0x10040)")
    base = h._addr(f"{w}.base", t["base"])
    if base & 0xFFFF:
        raise ScenarioError(f"{w}.base: {base:#x} is not 64 KiB aligned (the ITS frames are "
                            f"64 KiB pages)")
    h._range(f"{w}.base", base, ITS_FRAME)
    if "pool" not in t:
        raise ScenarioError(f"{w}.pool: missing (host RAM for the ITS tables, queue and ITTs)")
    pool = h._pool(f"{w}.pool", t["pool"])
    feats = h._table(f"{w}.features", t.get("features", {}))
    h._known(f"{w}.features", feats, ITS_FEATURES)
    try:
        f = ItsFeatures(pes=pes, **feats)
        f.check()
    except (ItsError, TypeError) as e:
        raise ScenarioError(_short(f"{w}.features: {e}")) from None
    tables = {}
    for key, default_pages in (("device_table", 1), ("collection_table", 1)):
        tt = h._table(f"{w}.{key}", t.get(key, {}))
        h._known(f"{w}.{key}", tt, ("page_size", "pages", "indirect"))
        ps = h._int(f"{w}.{key}.page_size", tt.get("page_size", 0x1000))
        if ps not in PAGE_SIZES:
            raise ScenarioError(f"{w}.{key}.page_size: {ps:#x} is not 4K, 16K or 64K "
                                f"(GITS_BASER<n>.Page_Size)")
        tables[key] = {"page_size": ps,
                       "pages": h._bounded(f"{w}.{key}.pages", tt.get("pages", default_pages),
                                           1, 256, " (GITS_BASER<n>.Size + 1)"),
                       "indirect": h._bool(f"{w}.{key}.indirect", tt.get("indirect", False))}
    colls = []
    for j, c in enumerate(h._array(f"{w}.collections", t.get("collections", []))):
        wc = f"{w}.collections[{j}]"
        c = h._table(wc, c)
        h._known(wc, c, ("icid", "target"))
        colls.append({"icid": h._bounded(f"{wc}.icid", c.get("icid", j), 0,
                                         (1 << f.cidbits) - 1, f" (ICID bits: {f.cidbits})"),
                      "target": h._bounded(f"{wc}.target", c.get("target", 0), 0, pes - 1,
                                           f" (gic.redistributors is {pes})")})
    devs = []
    for j, d in enumerate(h._array(f"{w}.devices", t.get("devices", []))):
        wd = f"{w}.devices[{j}]"
        d = h._table(wd, d)
        h._known(wd, d, ("device", "device_id", "events", "lpis"))
        if ("device" in d) == ("device_id" in d):
            raise ScenarioError(f"{wd}: give device (a pci device name: its DeviceID from the "
                                f"IORT) or device_id, not both or neither")
        dev = None
        if "device" in d:
            dev = d["device"]
            if topo is None or not isinstance(dev, str) or dev not in topo.devices:
                raise ScenarioError(f"{wd}.device: {_show(dev)} is not a pci device")
        dev_id = (h._bounded(f"{wd}.device_id", d["device_id"], 0, (1 << f.devbits) - 1,
                             f" (Devbits: {f.devbits})") if "device_id" in d else None)
        events = h._bounded(f"{wd}.events", d.get("events", 32), 2, 1 << f.idbits,
                            f" (EventIDs; at most 2^{f.idbits})")
        if events & (events - 1):
            raise ScenarioError(f"{wd}.events: {events} is not a power of two (MAPD.Size + 1 "
                                f"is log2 of the EventIDs)")
        lpis = []
        for k, lp in enumerate(h._array(f"{wd}.lpis", d.get("lpis", []))):
            wl = f"{wd}.lpis[{k}]"
            lp = h._table(wl, lp)
            h._known(wl, lp, ("event", "intid", "icid"))
            lpis.append({"event": h._bounded(f"{wl}.event", lp.get("event", k), 0, events - 1,
                                             f" (the ITT holds {events} events)"),
                         "intid": h._bounded(f"{wl}.intid", lp.get("intid"), 8192,
                                             (1 << f.lpi_bits) - 1, " (an LPI INTID)"),
                         "icid": h._bounded(f"{wl}.icid", lp.get("icid", 0), 0,
                                            (1 << f.cidbits) - 1, "")})
        devs.append({"device": dev, "device_id": dev_id, "events": events, "lpis": lpis})
    return {"name": name, "base": base, "pool": pool, "features": dict(feats),
            "enabled": h._bool(f"{w}.enabled", t.get("enabled", True)),
            **tables, "cmdq_pages": h._bounded(f"{w}.cmdq_pages", t.get("cmdq_pages", 1), 1, 256,
                                               " (GITS_CBASER.Size + 1)"),
            "collections": colls, "devices": devs}


def check_names(out: dict) -> None:
    """ITS names must not clash with the other named things of the scenario."""
    taken = {x["name"] for k in ("smmu", "vm", "domain") for x in out[k]}
    seen = set()
    for i, t in enumerate(out["its"]):
        if t["name"] in taken or t["name"] in seen:
            raise ScenarioError(f"its[{i}].name: {_show(t['name'])} is already used")
        seen.add(t["name"])


__all__ = ["normalize", "check_names", "ModelError"]


# -- [iommufd]: the objects a VMM creates -------------------------------------------------------
IOMMUFD_KEYS = ("ioas", "devices", "hwpt", "viommu", "vdevice", "nested", "attach",
                "vmid_per_viommu")
NESTED_CONFIGS = ("abort", "bypass", "s1")


def normalize_iommufd(doc: dict, out: dict, h) -> None:
    """Check `[iommufd]` into out["iommufd"] (None when absent). Every reference is checked:
    objects are named and each names the objects it is made from."""
    out["iommufd"] = None
    if "iommufd" not in doc:
        return
    t = h._table("iommufd", doc["iommufd"])
    h._known("iommufd", t, IOMMUFD_KEYS)
    smmus = {s["name"]: s for s in out["smmu"]}
    vms = {v["name"] for v in out["vm"]}
    s1doms = {d["name"] for d in out["domain"] if d["stage"] == 1 and d["vm"]}
    its = {i["name"] for i in out["its"]}
    res = {"vmid_per_viommu": h._bool("iommufd.vmid_per_viommu",
                                      t.get("vmid_per_viommu", False))}
    names: dict[str, str] = {}              # object name -> kind

    def entries(key, keys):
        for j, e in enumerate(h._array(f"iommufd.{key}", t.get(key, []))):
            w = f"iommufd.{key}[{j}]"
            e = h._table(w, e)
            h._known(w, e, keys)
            yield w, e

    def new_name(w, e, kind):
        n = e.get("name")
        if not isinstance(n, str) or not n:
            raise ScenarioError(f"{w}.name: missing or not a string")
        if n in names:
            raise ScenarioError(f"{w}.name: {_show(n)} is already an iommufd {names[n]}")
        names[n] = kind
        return n

    def ref(w, e, key, kind):
        v = e.get(key)
        if not _is_name(v) or names.get(v) != kind:
            have = [n for n, k in names.items() if k == kind]
            raise ScenarioError(f"{w}.{key}: {_show(v)} is not an iommufd {kind} declared "
                                f"before (have: {listing(have)})")
        return v

    res["ioas"] = []
    for w, e in entries("ioas", ("name", "map_vm", "maps")):
        maps = []
        if "map_vm" in e:
            h._ref(f"{w}.map_vm", e["map_vm"], vms, "VM")
        for k, m in enumerate(h._array(f"{w}.maps", e.get("maps", []))):
            wm = f"{w}.maps[{k}]"
            m = h._table(wm, m)
            h._known(wm, m, ("iova", "pa", "size", "perm"))
            mm = {x: h._addr(f"{wm}.{x}", m.get(x)) for x in ("iova", "pa", "size")}
            mm["perm"] = h._perm(f"{wm}.perm", m.get("perm", "rw"))
            maps.append(mm)
        res["ioas"].append({"name": new_name(w, e, "ioas"), "map_vm": e.get("map_vm"),
                            "maps": maps})
    res["devices"] = []
    for w, e in entries("devices", ("name", "smmu", "sid", "canwbs", "sw_msi",
                                    "sw_msi_start", "msi_its")):
        smmu = h._ref(f"{w}.smmu", e.get("smmu"), set(smmus), "SMMU")
        if "sid" not in e:
            raise ScenarioError(f"{w}.sid: missing (the device's physical StreamID)")
        log2 = smmus[smmu]["stream_table"]["log2size"]
        sid = h._bounded(f"{w}.sid", e["sid"], 0, (1 << log2) - 1,
                         f" (the stream table of {smmu} holds 2^{log2} StreamIDs)")
        msi_its = e.get("msi_its")
        if msi_its is not None and (not _is_name(msi_its) or msi_its not in its):
            raise ScenarioError(f"{w}.msi_its: {_show(msi_its)} is not an [[its]]")
        start = e.get("sw_msi_start")
        res["devices"].append({
            "name": new_name(w, e, "device"), "smmu": smmu, "sid": sid,
            "canwbs": h._bool(f"{w}.canwbs", e.get("canwbs", True)),
            "sw_msi": h._bool(f"{w}.sw_msi", e.get("sw_msi", True)),
            "sw_msi_start": None if start is None else h._addr(f"{w}.sw_msi_start", start),
            "msi_its": msi_its})
    res["hwpt"] = []
    domains = {d["name"] for d in out["domain"]}
    for w, e in entries("hwpt", ("name", "device", "ioas", "nest_parent")):
        if _is_name(e.get("name")) and e["name"] in domains:
            raise ScenarioError(f"{w}.name: {_show(e['name'])} is already a [[domain]] (a "
                                f"paging HWPT is also a domain: map, pt, inject unmap)")
        res["hwpt"].append({"name": new_name(w, e, "hwpt"),
                            "device": ref(w, e, "device", "device"),
                            "ioas": ref(w, e, "ioas", "ioas"),
                            "nest_parent": h._bool(f"{w}.nest_parent",
                                                   e.get("nest_parent", True))})
    res["viommu"] = []
    for w, e in entries("viommu", ("name", "device", "hwpt")):
        res["viommu"].append({"name": new_name(w, e, "viommu"),
                              "device": ref(w, e, "device", "device"),
                              "hwpt": ref(w, e, "hwpt", "hwpt")})
    res["vdevice"] = []
    for w, e in entries("vdevice", ("viommu", "device", "vsid")):
        res["vdevice"].append({"viommu": ref(w, e, "viommu", "viommu"),
                               "device": ref(w, e, "device", "device"),
                               "vsid": h._addr(f"{w}.vsid", e.get("vsid"))})
    res["nested"] = []
    for w, e in entries("nested", ("name", "viommu", "device", "config", "domain")):
        cfg = e.get("config", "s1")
        if not _is_name(cfg) or cfg not in NESTED_CONFIGS:
            raise ScenarioError(f"{w}.config: {_show(cfg)} is not one of "
                                f"{', '.join(NESTED_CONFIGS)} (the vSTE's Config)")
        dom = e.get("domain")
        if cfg == "s1" and (not _is_name(dom) or dom not in s1doms):
            raise ScenarioError(f"{w}.domain: {_show(dom)} is not a stage-1 domain with its "
                                f"tables in a VM (the guest's S1 the vSTE points at)")
        res["nested"].append({"name": new_name(w, e, "hwpt"),
                              "viommu": ref(w, e, "viommu", "viommu"),
                              "device": ref(w, e, "device", "device"),
                              "config": cfg, "domain": dom if cfg == "s1" else None})
    res["attach"] = []
    for w, e in entries("attach", ("device", "hwpt")):
        res["attach"].append({"device": ref(w, e, "device", "device"),
                              "hwpt": ref(w, e, "hwpt", "hwpt")})
    out["iommufd"] = res
