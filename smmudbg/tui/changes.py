"""What an action changed, from before/after queries: IOTLB entries that went or came, cached
STEs/CDs that went or turned stale, event records added, commands consumed. The result of the
action itself (its own `changes`, `effect`) is shown by the renderer; this adds the caches and
queues it touched, and the translations the tables in memory now give differently for the
addresses the user is looking at (the walk stepper's walk and MSI: `probes`)."""
from __future__ import annotations


def translation(bridge, target: str, address: int, ssid: int | None) -> tuple:
    """What the tables in memory make of address for a stream now, through `pt ... addr=`
    (read-only: the walk itself fills caches): (text, key), key comparing the leaf descriptors
    and the output, so a permission or attribute change counts too."""
    extra = f" ssid={ssid}" if ssid else ""
    r = bridge.try_query(f"pt {target} addr={address:#x}{extra}")
    if r is None:
        return "no tables", None
    if r["kind"] == "vtd-pt-lookup":
        return _vtd_translation(bridge, target, r, extra)
    leaf1 = r["leaf"]
    if leaf1 is None:
        return f"stage {r['stage']} maps nothing", ("none", r["stage"])
    if not r["tables_are_ipa"]:
        return f"PA {r['out']:#x}", (leaf1["desc"], r["out"])
    r2 = bridge.try_query(f"pt {target} stage=2 addr={r['out']:#x}")
    if r2 is None or r2["leaf"] is None:
        return f"IPA {r['out']:#x}, stage 2 maps nothing", (leaf1["desc"], r["out"], None)
    return (f"IPA {r['out']:#x} -> PA {r2['out']:#x}",
            (leaf1["desc"], r["out"], r2["leaf"]["desc"], r2["out"]))


def _vtd_translation(bridge, target: str, r: dict, extra: str) -> tuple:
    """translation() on a VT-d requester: its first stage (or second stage alone), and for a
    nested PASID entry the output GPA through the second stage."""
    leaf = r["steps"][-1]["desc"] if r["steps"] else None
    if r["out"] is None:
        return f"stage {r['stage']} maps nothing ({r['fault']})", ("none", r["stage"], leaf)
    if r["pgtt"] != "nested":
        return f"PA {r['out']:#x} {r['perm']}", (leaf, r["out"], r["perm"])
    r2 = bridge.try_query(f"pt {target} stage=2 addr={r['out']:#x}{extra}")
    if r2 is None or r2["out"] is None:
        return f"GPA {r['out']:#x}, the second stage maps nothing", (leaf, r["out"], None)
    return (f"GPA {r['out']:#x} -> PA {r2['out']:#x}",
            (leaf, r["out"], r["perm"], r2["steps"][-1]["desc"], r2["out"]))


def _vtd_snapshot(bridge) -> dict:
    """{unit: {tlb, psc, devtlb, pasid, ctx, iec: {key: stale}, faults: [names]}} from the
    unit's `tlb` and `cfgcache` (vtd-caches) and `events`."""
    out = {}
    for u in (bridge.try_query("vtds") or {}).get("units", []):
        name = u["name"]
        tlb = bridge.try_query(f"tlb {name}") or {}
        cfg = bridge.try_query(f"cfgcache {name}") or {}
        ev = bridge.try_query(f"events {name}") or {"faults": []}
        out[name] = {"tlb": {(e["did"], e["pasid"], e["in_base"], e["size"]): e["stale"]
                             for e in tlb.get("iotlb") or []},
                     "psc": {(e["cache"], e["did"], e["pasid"], e["region"]): e["stale"]
                             for e in tlb.get("psc") or []},
                     "devtlb": {(e["sid"], e["pasid"], e["base"], e["size"]): e["stale"]
                                for e in tlb.get("devtlb") or []},
                     "pasid": {(e["sid"], e["pasid"]): e["stale"]
                               for e in cfg.get("pasid") or []},
                     "ctx": {e["sid"]: e["stale"] for e in cfg.get("context") or []},
                     "iec": {e["index"]: e["stale"] for e in cfg.get("iec") or []},
                     "faults": [f["name"] for f in ev["faults"]]}
    return out


def _vtd_changes(unit: str, b: dict, a: dict) -> list[str]:
    lines = []
    for what, label, show in (("tlb", "IOTLB entry", lambda k: f"DID {k[0]} PASID {k[1]} "
                               f"{k[2]:#x}+{k[3]:#x}"),
                              ("psc", "paging-structure cache entry", lambda k: f"{k[0]} DID "
                               f"{k[1]} PASID {k[2]} {k[3]:#x}"),
                              ("devtlb", "device-TLB entry", lambda k: f"RID {k[0]:#x} PASID "
                               f"{k[1]} {k[2]:#x}+{k[3]:#x}"),
                              ("pasid", "PASID-cache entry", lambda k: f"RID {k[0]:#x} "
                               f"PASID {k[1]}"),
                              ("ctx", "context-cache entry", lambda k: f"RID {k:#x}"),
                              ("iec", "interrupt entry cache entry", lambda k: f"IRTE {k}")):
        gone = [k for k in b[what] if k not in a[what]]
        stale = [k for k, v in a[what].items() if v and not b[what].get(k, False)]
        if gone:
            lines.append(f"{unit} {label.replace('entry', 'entries')} went: "
                         + "; ".join(show(k) for k in gone[:4]))
        if stale:
            lines.append(f"{unit} {label} " + "; ".join(show(k) for k in stale[:4])
                         + " is now STALE (memory changed, no invalidation: check names it)")
    if len(a["faults"]) > len(b["faults"]):
        new = a["faults"][len(b["faults"]):]
        lines.append(f"{unit} faults: +{len(new)} (" + ", ".join(new[:6]) + ")")
    return lines


def snapshot(bridge, probes=()) -> dict:
    """{smmu: {tlb: set, ste: {sid: stale}, cd: {(sid, ssid): stale}, events: [names]}},
    under "_translations" {(target, address, ssid): (text, key)} for each probe, and under
    "_vtd" the VT-d units' caches and faults."""
    out = {"_translations": {p: translation(bridge, *p) for p in probes},
           "_vtd": _vtd_snapshot(bridge)}
    smmus = bridge.try_query("smmus")
    for m in (smmus or {}).get("smmus", []):
        name = m["name"]
        tlb = bridge.try_query(f"tlb {name}") or {"entries": []}
        cfg = bridge.try_query(f"cfgcache {name}") or {"stes": [], "cds": []}
        ev = bridge.try_query(f"events {name}") or {"entries": [], "prod": 0}
        out[name] = {
            "tlb": {(e["kind"], e.get("vmid"), e.get("asid"), e["in_base"], e["size"])
                    for e in tlb["entries"]},
            "ste": {e["sid"]: e["stale"] for e in cfg["stes"]},
            "cd": {(e["sid"], e["ssid"]): e["stale"] for e in cfg["cds"]},
            "events": [e["event"] for e in ev["entries"]], "evprod": ev["prod"]}
    return out


def _tlb_key(k) -> str:
    kind, vmid, asid, base, size = k
    return f"{kind} VMID {vmid} ASID {asid} {base:#x}+{size:#x}"


def describe_changes(before: dict, after: dict) -> list[str]:
    lines = []
    bt, at = before.get("_translations", {}), after.get("_translations", {})
    for p, (text, key) in at.items():
        if p in bt and bt[p][1] != key:
            target, address, ssid = p
            lines.append(f"translation {target} {address:#x}" + (f" ssid={ssid}" if ssid else "")
                         + f" (tables in memory): was {bt[p][0]}, now {text}")
    for unit, a in after.get("_vtd", {}).items():
        if unit in before.get("_vtd", {}):
            lines += _vtd_changes(unit, before["_vtd"][unit], a)
    for smmu, a in after.items():
        if smmu in ("_translations", "_vtd"):
            continue
        b = before.get(smmu)
        if b is None:
            continue
        gone = b["tlb"] - a["tlb"]
        came = a["tlb"] - b["tlb"]
        if gone:
            lines.append(f"{smmu} IOTLB: {len(gone)} entr{'y' if len(gone) == 1 else 'ies'} "
                         f"went: " + "; ".join(map(_tlb_key, sorted(gone, key=str)[:4])))
        if came:
            lines.append(f"{smmu} IOTLB: {len(came)} new: "
                         + "; ".join(map(_tlb_key, sorted(came, key=str)[:4])))
        for what, fmt in (("ste", lambda k: f"SID {k:#x}"),
                          ("cd", lambda k: f"SID {k[0]:#x} SSID {k[1]}")):
            gone = [k for k in b[what] if k not in a[what]]
            stale = [k for k, v in a[what].items() if v and not b[what].get(k, False)]
            if gone:
                lines.append(f"{smmu} config cache: {what.upper()} "
                             + ", ".join(fmt(k) for k in gone[:6]) + " went")
            if stale:
                lines.append(f"{smmu} config cache: cached {what.upper()} "
                             + ", ".join(fmt(k) for k in stale[:6])
                             + " is now STALE (memory changed, not invalidated)")
        added = a["evprod"] != b["evprod"] or len(a["events"]) > len(b["events"])
        if added and len(a["events"]) > len(b["events"]):
            new = a["events"][len(b["events"]):]
            lines.append(f"{smmu} events: +{len(new)} (" + ", ".join(new[:6]) + ")")
    return lines
