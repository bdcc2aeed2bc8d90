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


def snapshot(bridge, probes=()) -> dict:
    """{smmu: {tlb: set, ste: {sid: stale}, cd: {(sid, ssid): stale}, events: [names]}}, and
    under "_translations" {(target, address, ssid): (text, key)} for each probe."""
    out = {"_translations": {p: translation(bridge, *p) for p in probes}}
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
    for smmu, a in after.items():
        if smmu == "_translations":
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
