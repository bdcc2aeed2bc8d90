"""Renderers of the system results: `msi` (a path of steps, like a walk), `iort` and `its`."""
from __future__ import annotations

from rich.console import Group
from rich.text import Text

from .render import BAD, DIM, GOOD, NUM, _kv, _rows, _table, _walk, hx


def _iort_steps(steps):
    t = _table("node", "type", "ID in", "mapping", "ID out", "to", "note")
    for s in steps:
        t.add_row(s["node"], s["type"], hx(s["input_id"]),
                  "-" if s["mapping"] is None else str(s["mapping"]), hx(s["output_id"]),
                  s["output_node"] or "-",
                  Text(s["failure"] or s["note"] or "", style=BAD if s["failure"] else ""))
    return t


def _its_steps(steps):
    t = _table("read", "index", "at", "entry", "fields", "outcome")
    for s in steps:
        t.add_row(s["what"], hx(s["index"]), hx(s["address"]), hx(s["raw"]),
                  " ".join(f"{k}={hx(v)}" for k, v in s["fields"].items()),
                  Text(s["outcome"], style="" if s["ok"] else BAD))
    return t


def msi(d):
    head = Text()
    head.append((d["device"] and f"{d['device']} vector {d['vector']}") or
                f"{d['smmu']} SID {hx(d['sid'])}", style="bold")
    head.append(f"  write {hx(d['msi_data'])} to {hx(d['address'])}", style=NUM)
    parts = [head]
    for i, s in enumerate(d["steps"]):
        line = Text(f"{i} {s['what']:<7}", style="bold")
        line.append(f" {hx(s.get('input'))} -> {hx(s.get('output'))}  ")
        line.append(s.get("detail") or "", style=DIM if s["ok"] else "")
        parts.append(line)
        if s["what"] == "iort" and s.get("nodes"):
            parts.append(_iort_steps(s["nodes"]))
        if s["what"] == "smmu":
            parts.append(_walk({"device": s.get("stream"), "sid": d["sid"], "smmu": d["smmu"],
                                "access": "write", "address": d["address"], "ssid": None,
                                "priv": False, "steps": s["walk"],
                                "fault": None if s["ok"] else {"type": s.get("fault") or ""},
                                "pa": s.get("output"), "ipa": s.get("ipa"), "perm": "-",
                                "hit": False, "event": None}).renderables[1])
        if s.get("its_steps"):
            parts.append(_its_steps(s["its_steps"]))
        if not s["ok"]:
            parts.append(Text(f"  broken: {s['reason']}", style=BAD))
            parts.append(Text(f"  fix: {s['fix']}", style="bold"))
    if d["ok"]:
        parts.append(Text(f"-> LPI {d['intid']} (collection {d['icid']}) pending on "
                          f"redistributor {d['target']}", style="bold " + GOOD))
    return Group(*parts)


def iort(d):
    parts = []
    if d.get("message"):
        parts.append(Text(d["message"]))
    p = d["path"]
    if p:
        who = p["device"] or ""
        parts.append(Text(f"{who} {p['bdf'] or ''} segment {p['segment']} RID {p['rid']:#x}"
                          f" (MSI RID {p['msi_rid']:#x})", style="bold"))
        if p["aliases"]:
            parts.append(_rows("DMA aliases -> StreamIDs", p["aliases"],
                               ["rid", "reason", "smmu", "stream_id", "failure"]))
        parts.append(_iort_steps(p["steps"]))
        if p["failure"]:
            parts += [Text(f"broken: {p['failure']}", style=BAD), Text(f"fix: {p['fix']}")]
        else:
            parts.append(Text(f"-> StreamID {hx(p['stream_id'])} at {p['smmu'] or '-'}, "
                              f"DeviceID {hx(p['device_id'])} at {p['its_group']}",
                              style=GOOD))
        return Group(*parts)
    parts.append(Text(f"IORT revision {d['revision']}" +
                      (" (derived as QEMU virt builds it)" if d["derived"] else ""),
                      style="bold"))
    for n in d["nodes"]:
        line = f"{n['name']} ({n['type']})"
        if n["its_ids"]:
            line += f" ITS IDs {n['its_ids']}"
        if n["base"] is not None:
            line += f" base {n['base']:#x}"
        parts.append(Text(line, style="bold"))
        for i, m in enumerate(n["mappings"]):
            parts.append(Text(f"  [{i}] {m['input_base']:#x}..+{m['count']:#x} -> "
                              f"{m['output']} {m['output_base']:#x}"
                              + (" single" if m["single"] else "")))
        for r in n["ranges"]:
            parts.append(Text(f"  range {r['base']:#x} +{r['length']:#x}"))
    if d["devices"]:
        parts.append(_rows("devices", d["devices"], ["device", "bdf", "rid", "msi_rid",
                                                     "device_id", "failure"]))
    for f in d["findings"]:
        parts.append(Text(f"{f['severity']}: {f['node']}: {f['message']} -- fix: {f['fix']}",
                          style=BAD if f["severity"] == "error" else ""))
    return Group(*parts)


def its(d):
    parts = [_kv([("ITS", d["name"]), ("base", d["base"]),
                  ("GITS_TRANSLATER", d["translater"]),
                  ("enabled", d["enabled"]), ("stalled", d["stalled"]),
                  ("commands", Text(str(d["commands"])))])]
    parts.append(_rows("registers", [{"name": k, "value": v} for k, v in
                                     d["registers"].items()], ["name", "value"]))
    parts.append(_rows("tables", d["tables"], ["n", "kind", "valid", "indirect", "page_size",
                                               "entry_size", "base", "pages", "capacity"]))
    parts.append(_rows("collections", d["collections"], ["icid", "target"]))
    if d["device"]:
        parts.append(Text(f"DeviceID {d['device']['device_id']:#x}", style="bold"))
        parts.append(_its_steps(d["device"]["steps"]))
    parts.append(_rows("mapped events", d["mappings"],
                       ["device_id", "event_id", "intid", "icid", "target"]))
    parts.append(_rows("pending LPIs", [{"target": p["target"],
                                         "intids": ", ".join(map(str, p["intids"]))}
                                        for p in d["pending"]], ["target", "intids"]))
    for e in d["errors"]:
        parts.append(Text(f"command at {e['offset']:#x} {e['name']}: {e['error']}: "
                          f"{e['reason']}", style=BAD))
    return Group(*parts)


RENDERERS = {"msi": msi, "iort": iort, "its": its}
