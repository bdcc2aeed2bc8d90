"""Scenario tables of the system around the SMMUs: `gic`, `pci`, `iort` and `[[its]]`.

Checked here before anything is built, with one-line errors naming the table and key (the PCI
and IORT tables by the node's name: `pci.device[nvme0].msix[1].address: ...`). docs/scenario.md
is the schema. PCI and IORT specs are checked by building them (PciTopology / Iort.from_spec do
every check); the ITS tables are checked against the features of that ITS.
"""
from __future__ import annotations

import re

from ..arch.gicv3.registers import (ITS_FRAMES, LPI_BASE, OFFSETS, PAGE_SHIFT,
                                     TRANSLATION_FRAME)
from ..errors import ModelError, ScenarioError
from ..errors import brief as _show
from ..errors import listing
from .iort import Iort
from .its import ItsError, ItsFeatures
from .pci import PciTopology

ITS_FEATURES = ("devbits", "idbits", "cidbits", "hcc", "seis", "lpi_bits", "layout",
                "on_error")
PAGE_SIZES = tuple(sorted({1 << s for s in PAGE_SHIFT.values()}))   # GITS_BASER<n>.Page_Size
ITS_FRAME = ITS_FRAMES                      # control frame + translation frame, 64 KiB each


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
    normalize_vsmmu(doc, out, h)


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
                            f"base + {OFFSETS['GITS_TRANSLATER']:#x})")
    base = h._addr(f"{w}.base", t["base"])
    if base % TRANSLATION_FRAME:
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
                         "intid": h._bounded(f"{wl}.intid", lp.get("intid"), LPI_BASE,
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
IOMMUFD_KEYS = ("ioas", "devices", "hwpt", "viommu", "veventq", "vdevice", "nested", "attach",
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
                                    "sw_msi_start", "sw_msi_size", "msi_its")):
        smmu = h._ref(f"{w}.smmu", e.get("smmu"), set(smmus), "SMMU")
        if "sid" not in e:
            raise ScenarioError(f"{w}.sid: missing (the device's physical StreamID)")
        log2 = smmus[smmu]["stream_table"]["log2size"]
        sid = h._bounded(f"{w}.sid", e["sid"], 0, (1 << log2) - 1,
                         f" (the stream table of {smmu} holds 2^{log2} StreamIDs)")
        msi_its = e.get("msi_its")
        msi_its = [] if msi_its is None else [msi_its] if isinstance(msi_its, str) else msi_its
        if not isinstance(msi_its, list):
            raise ScenarioError(f"{w}.msi_its: an [[its]] name or a list of them")
        for k, x in enumerate(msi_its):
            if not _is_name(x) or x not in its:
                raise ScenarioError(f"{w}.msi_its: {_show(x)} is not an [[its]]")
        size = e.get("sw_msi_size")
        if size is not None:
            size = h._bounded(f"{w}.sw_msi_size", size, 0, (1 << 44) - 1,
                              " (IOMMU_OPTION_SW_MSI_SIZE, in MB)")
        start = e.get("sw_msi_start")
        res["devices"].append({
            "name": new_name(w, e, "device"), "smmu": smmu, "sid": sid,
            "canwbs": h._bool(f"{w}.canwbs", e.get("canwbs", True)),
            "sw_msi": h._bool(f"{w}.sw_msi", e.get("sw_msi", True)),
            "sw_msi_start": None if start is None else h._addr(f"{w}.sw_msi_start", start),
            "sw_msi_size": size, "msi_its": msi_its})
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
    res["veventq"] = []
    seen_q = set()
    for w, e in entries("veventq", ("viommu", "depth")):
        v = ref(w, e, "viommu", "viommu")
        if v in seen_q:
            raise ScenarioError(f"{w}.viommu: {v} has a vEVENTQ already (one per type: "
                                f"-EEXIST)")
        seen_q.add(v)
        res["veventq"].append({"viommu": v, "depth": h._bounded(
            f"{w}.depth", e.get("depth"), 1, (1 << 32) - 1, " (veventq_depth: at least 1)")})
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


# -- [[vsmmu]]: a VM's accelerated vSMMU (model/vsmmu.py) -------------------------------------
VSMMU_KEYS = ("name", "vm", "viommu", "accel", "stream_table", "cmdq", "evtq", "enabled",
              "gbpa", "streams", "primary_bus", "vfio", "hotplug")
VSMMU_CONFIGS = ("abort", "bypass", "s1")


def normalize_vsmmu(doc: dict, out: dict, h) -> None:
    """Check `[[vsmmu]]` into out["vsmmu"] and each VM's guest PCI topology (`vm.pci`) into
    out["vm_pci"] {vm: spec}. A vSMMU needs the [iommufd] objects it runs on."""
    out["vsmmu"] = []
    out["vm_pci"] = {}
    guest_topos = {}
    for i, v in enumerate(h._list(doc, "vm")):
        if isinstance(v, dict) and "pci" in v:
            try:
                topo = _from_spec(f"vm[{i}].pci", PciTopology.from_spec, v["pci"])
            except ScenarioError as e:      # the guest's topology: name the VM
                msg = str(e)
                raise ScenarioError(msg if msg.startswith("vm[") else f"vm[{i}].{msg}") \
                    from None
            out["vm_pci"][out["vm"][i]["name"]] = v["pci"]
            guest_topos[out["vm"][i]["name"]] = topo
    entries = h._list(doc, "vsmmu")
    if not entries:
        return
    fd = out.get("iommufd")
    if fd is None:
        raise ScenarioError("vsmmu[0]: an accelerated vSMMU runs on iommufd objects: add an "
                            "[iommufd] table with its vIOMMU")
    viommus = {v["name"] for v in fd["viommu"]}
    devices = {d["name"]: d for d in fd["devices"]}
    vms = {v["name"] for v in out["vm"]}
    s1doms = {d["name"] for d in out["domain"] if d["stage"] == 1 and d["vm"]}
    taken = {x["name"] for k in ("smmu", "vm", "domain", "its") for x in out[k]}
    seen = set()
    for i, t in enumerate(entries):
        w = f"vsmmu[{i}]"
        t = h._table(w, t)
        h._known(w, t, VSMMU_KEYS)
        name = t.get("name")
        if not _is_name(name):
            raise ScenarioError(f"{w}.name: missing or not a string")
        if name in taken or name in seen:
            raise ScenarioError(f"{w}.name: {_show(name)} is already used")
        seen.add(name)
        vm = h._ref(f"{w}.vm", t.get("vm"), vms, "VM")
        vi = t.get("viommu")
        vi = [vi] if isinstance(vi, str) else vi
        if not isinstance(vi, list) or not vi:
            raise ScenarioError(f"{w}.viommu: the iommufd vIOMMU (a name, or a list: one per "
                                f"physical SMMU) the vSMMU runs on")
        for k, x in enumerate(vi):
            h._ref(f"{w}.viommu[{k}]" if len(vi) > 1 else f"{w}.viommu", x, viommus,
                   "iommufd vIOMMU")
        queues = {}
        for key, entry, default in (("stream_table", 64, 8), ("cmdq", 16, 8),
                                    ("evtq", 32, 7)):
            q = h._table(f"{w}.{key}", t.get(key, {}))
            h._known(f"{w}.{key}", q, ("base", "log2size"))
            if "base" not in q:
                raise ScenarioError(f"{w}.{key}.base: missing (an IPA in the guest's RAM)")
            log2 = h._bounded(f"{w}.{key}.log2size", q.get("log2size", default), 1,
                              16 if key == "stream_table" else 19, "")
            base = h._addr(f"{w}.{key}.base", q["base"])
            size = entry << log2
            if base & (max(size, 32) - 1):
                raise ScenarioError(f"{w}.{key}.base: {base:#x} is not aligned to the "
                                    f"table's size ({size:#x} bytes)")
            ram = [r for v in out["vm"] if v["name"] == vm for r in v["ram"]]
            if not any(r["ipa"] <= base and base + size <= r["ipa"] + r["size"] for r in ram):
                raise ScenarioError(f"{w}.{key}.base: [{base:#x}, +{size:#x}) is not in the "
                                    f"RAM of {vm}")
            queues[key] = {"base": base, "log2size": log2}
        spans = sorted((q["base"], q["base"] + (e << q["log2size"]), k) for (k, q), e in
                       zip(queues.items(), (64, 16, 32)))
        for (a0, a1, k0), (b0, b1, k1) in zip(spans, spans[1:]):
            if b0 < a1:
                raise ScenarioError(f"{w}.{k1}.base: overlaps {w}.{k0}")
        streams = []
        vsids = set()
        for k, st in enumerate(h._array(f"{w}.streams", t.get("streams", []))):
            ws = f"{w}.streams[{k}]"
            st = h._table(ws, st)
            h._known(ws, st, ("device", "vsid", "config", "domain"))
            dev = h._ref(f"{ws}.device", st.get("device"), set(devices), "iommufd device")
            if "vsid" not in st:
                raise ScenarioError(f"{ws}.vsid: missing (the guest's StreamID of {dev})")
            vsid = h._bounded(f"{ws}.vsid", st["vsid"], 0,
                              (1 << queues["stream_table"]["log2size"]) - 1,
                              f" (the guest stream table holds "
                              f"2^{queues['stream_table']['log2size']} STEs)")
            if vsid in vsids:
                raise ScenarioError(f"{ws}.vsid: {vsid:#x} is given twice")
            vsids.add(vsid)
            cfg = st.get("config", "s1")
            if not _is_name(cfg) or cfg not in VSMMU_CONFIGS:
                raise ScenarioError(f"{ws}.config: {_show(cfg)} is not one of "
                                    f"{', '.join(VSMMU_CONFIGS)} (the guest STE's Config)")
            dom = st.get("domain")
            if cfg == "s1" and (not _is_name(dom) or dom not in s1doms):
                raise ScenarioError(f"{ws}.domain: {_show(dom)} is not a stage-1 domain with "
                                    f"its tables in a VM (the guest's S1 its CD points at)")
            streams.append({"device": dev, "vsid": vsid, "config": cfg,
                            "domain": dom if cfg == "s1" else None})
        topo = guest_topos.get(vm)
        bus = t.get("primary_bus")
        if bus is not None:
            if topo is None:
                raise ScenarioError(f"{w}.primary_bus: {vm} has no guest PCI topology "
                                    f"(vm.pci)")
            h._ref(f"{w}.primary_bus", bus, set(topo.hosts), f"host bridge of {vm}'s pci")
        vfio = h._table(f"{w}.vfio", t.get("vfio", {}))
        for g, d in vfio.items():
            if topo is None or g not in topo.devices:
                raise ScenarioError(f"{w}.vfio.{g}: not a device of {vm}'s guest PCI topology")
            h._ref(f"{w}.vfio.{g}", d, set(devices), "iommufd device")
        hot = h._array(f"{w}.hotplug", t.get("hotplug", []))
        for k, g in enumerate(hot):
            if topo is None or not _is_name(g) or g not in topo.devices:
                raise ScenarioError(f"{w}.hotplug[{k}]: {_show(g)} is not a device of "
                                    f"{vm}'s guest PCI topology")
        out["vsmmu"].append({
            "name": name, "vm": vm, "viommu": list(vi),
            "accel": h._bool(f"{w}.accel", t.get("accel", True)), **queues,
            "enabled": h._bool(f"{w}.enabled", t.get("enabled", True)),
            "gbpa": h._choice(f"{w}.gbpa", t.get("gbpa", "abort"), ("abort", "bypass")),
            "streams": streams, "primary_bus": bus, "vfio": dict(vfio),
            "hotplug": list(hot)})
