"""What an action changed, from before/after queries: IOTLB entries that went or came, cached
STEs/CDs that went or turned stale, event records added, commands consumed. The result of the
action itself (its own `changes`, `effect`) is shown by the renderer; this adds the caches and
queues it touched."""
from __future__ import annotations


def snapshot(bridge) -> dict:
    """{smmu: {tlb: set, ste: {sid: stale}, cd: {(sid, ssid): stale}, events: [names]}}."""
    out = {}
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
    for smmu, a in after.items():
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
