"""Rich rendering of command Results for terminals: tables, bit views, walk steps.

Front ends call render(result) to get a rich renderable, or render_text(result, width) for a
plain string. Renderers read only the Result (plus the static field tables for bit positions);
they never look at the model.
"""
from __future__ import annotations

import io

from rich.console import Console, Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from .arch.fieldtable import fmt

NUM = "cyan"
DIM = "dim"
BAD = "bold red"
GOOD = "green"


def hx(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:#x}"
    return str(v)


# Counts, levels, indexes and sizes given as a power of two print in decimal; addresses, words
# and other values in hex.
DECIMAL = {"level", "s1level", "s2level", "start_level", "count", "n", "index", "s1cdmax",
           "t0sz", "leaves", "consumed", "replayed", "differing", "commands", "position",
           "length", "reran", "problems", "unread_events", "depth", "log2size", "split",
           "input_bits", "bits", "streams", "registers", "pending_commands", "syncs_needed",
           "hits", "misses", "entries", "dword", "stores", "removed"}


def num(key: str, v) -> str:
    """v as text: decimal for the DECIMAL keys, hex for other numbers."""
    if key in DECIMAL and isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    return hx(v)


class _PlainTable(Table):
    """A Table whose string cells are plain text: usages like `[ssid=N]` must not be read as
    rich markup."""

    def add_row(self, *cells, **kw):
        super().add_row(*(Text(c) if isinstance(c, str) else c for c in cells), **kw)


def _table(*cols, title=None) -> Table:
    t = _PlainTable(title=title, title_justify="left", show_edge=False, pad_edge=False,
                    header_style="bold", expand=False)
    for c in cols:
        t.add_column(c, overflow="fold")
    return t


def _kv(pairs, title=None) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    for k, v in pairs:
        t.add_row(k, v if isinstance(v, Text) else Text(hx(v)))
    if title:
        return Group(Text(title, style="bold underline"), t)
    return t


def _words(words) -> Text:
    return Text("  ".join(f"{w:016x}" for w in words), style=NUM)


def _fields(rows, title=None) -> Table:
    t = _table("field", "bits", "value", "meaning", title=title)
    for r in rows:
        bits = f"{r['dword']}[{r['bits']}]" if "dword" in r else r["bits"]
        t.add_row(r["field"], Text(bits, style=DIM), Text(hx(r["value"]), style=NUM),
                  r.get("meaning", ""))
    return t


def _verdict(legal, problem) -> Text:
    if legal:
        return Text("legal" + (f" ({problem})" if problem else ""), style=GOOD)
    return Text(f"illegal: {problem}", style=BAD)


def bitview(format_name: str, words, nonzero: bool = True) -> Table:
    """Fields of one structure with their bit positions and values, dword by dword."""
    f = fmt(format_name)
    t = _table("dword", "bits", "field", "value", "meaning")
    for x in f.fields:
        v = x.get(words)
        if nonzero and not v:
            continue
        t.add_row(str(x.dword), f"{x.hi}:{x.lo}" if x.hi != x.lo else str(x.lo), x.name,
                  Text(hx(v), style=NUM), x.value_name(v) or "")
    return t


# ---------------------------------------------------------------------------------------------
def _walk(d):
    head = Text()
    who = d["device"] or f"SID {d['sid']:#x}"
    head.append(f"{d['smmu']} {who} ", style="bold")
    head.append(f"{d['access']} {d['address']:#x}", style=NUM)
    if d["ssid"] is not None:
        head.append(f" ssid={d['ssid']}")
    if d["priv"]:
        head.append(" priv")
    t = _table("#", "fetch", "level", "table", "index", "descriptor at", "descriptor", "outcome")
    for i, s in enumerate(d["steps"]):
        what = s["what"] + (f" ({s['purpose']})" if s.get("purpose") else "")
        at = hx(s["desc_pa"])
        if s.get("desc_ipa") is not None and s["desc_ipa"] != s["desc_pa"]:
            at = f"IPA {s['desc_ipa']:#x} -> PA {hx(s['desc_pa'])}"
        style = BAD if s["outcome"] not in ("ok", "table", "block", "page", "cached",
                                            "hit") else ""
        t.add_row(str(i), what, "-" if s["level"] is None else str(s["level"]), hx(s["table"]),
                  str(s["index"]), at,
                  Text(f"{s['desc']:016x}", style=NUM), Text(s["outcome"], style=style))
    parts = [head, t]
    if d["fault"]:
        f = d["fault"]
        line = Text("fault ", style=BAD)
        line.append(f["type"], style=BAD)
        extra = [f"s2={int(f['s2'])}", f"class={f['class']}"] if f.get("class") else []
        if f.get("ipa") is not None:
            extra.append(f"ipa={f['ipa']:#x}")
        if f.get("fetch_addr") is not None:
            extra.append(f"fetch={f['fetch_addr']:#x}")
        if f.get("reason"):
            extra.append(f"({f['reason']})")
        if d.get("event") is not None:
            extra.append(f"event queue index {d['event']}")
        elif f.get("record") is False:
            extra.append("not recorded")
        line.append("  " + " ".join(extra))
        parts.append(line)
        if d.get("explanation"):
            parts.append(Text("why: " + d["explanation"]["text"]))
    else:
        line = Text("-> PA ", style=GOOD)
        line.append(f"{d['pa']:#x}", style="bold " + GOOD)
        if d["ipa"] is not None:
            line.append(f"   (IPA {d['ipa']:#x})")
        line.append(f"   perm {d['perm']}" + ("   IOTLB hit" if d["hit"] else ""))
        parts.append(line)
    return Group(*parts)


# VT-d step names as the spec calls the structures and paging levels.
_VTD_WHAT = {"root": "root entry", "context": "context entry", "pasid_dir": "PASID dir entry",
             "pasid_entry": "PASID entry", "iotlb": "IOTLB", "devtlb": "device-TLB"}
_FS_LEVEL = {5: "FS PML5E", 4: "FS PML4E", 3: "FS PDPE", 2: "FS PDE", 1: "FS PTE"}
_SS_LEVEL = {5: "SS PML5E", 4: "SS PML4E", 3: "SS PDPE", 2: "SS PDE", 1: "SS PTE"}


def _vtd_step_name(s):
    if s["what"] == "fs":
        return _FS_LEVEL.get(s["level"], "FS")
    if s["what"] == "ss":
        return _SS_LEVEL.get(s["level"], "SS") + (" (FS table)" if s.get("purpose") ==
                                                  "fs_table" else "")
    return _VTD_WHAT.get(s["what"], s["what"])


def _vtd_walk(d):
    head = Text()
    who = d["device"] or f"RID {d['rid']:#06x}"
    head.append(f"{d['unit']} {who} ", style="bold")
    head.append(f"{d['access']} {d['address']:#x}", style=NUM)
    head.append(f" pasid={d['pasid']}" if d["pasid"] is not None else " (no PASID)")
    if d["priv"]:
        head.append(" priv")
    t = _table("#", "entry", "table", "index", "entry at", "value", "outcome")
    for i, s in enumerate(d["steps"]):
        at = hx(s["desc_pa"])
        if s.get("desc_gpa") is not None:
            at = f"GPA {s['desc_gpa']:#x} -> {hx(s['desc_pa'])}"
        style = BAD if s["outcome"] not in ("ok", "table", "large", "page", "cached") else ""
        t.add_row(str(i), _vtd_step_name(s), hx(s["table"]), str(s["index"]), at,
                  Text(f"{s['desc']:016x}", style=NUM), Text(s["outcome"], style=style))
    parts = [head, t]
    f = d["fault"]
    if f:
        line = Text("fault ", style=BAD)
        line.append(f"{f['name'] or '?'} ({f['reason']:#04x})", style=BAD)
        line.append(f"  {f['meaning']}")
        if not f["recorded"]:
            line.append("  not recorded (FPD)")
        elif d.get("fault_index") is not None:
            line.append(f"  fault record {d['fault_index']}")
        parts.append(line)
    elif d["outcome"] == "translated":
        line = Text("-> PA ", style=GOOD)
        line.append(f"{d['pa']:#x}", style="bold " + GOOD)
        if d["gpa"] is not None:
            line.append(f"   (GPA {d['gpa']:#x})")
        line.append(f"   {d['pgtt']}  perm {d['perm']}  size {d['size']:#x}  DID {d['did']}"
                    f"  PASID {d['pasid_used']}" + ("  snoop" if d["snoop"] else ""))
        parts.append(line)
    else:
        parts.append(Text({"not_remapped": "not remapped (GSTS_REG.TES=0): PA = address",
                           "interrupt": "an interrupt request (0xFEEx_xxxx without PASID): "
                                        "not translated, see msi",
                           "blocked": "blocked without a fault"}.get(d["outcome"],
                                                                     d["outcome"]),
                          style=DIM))
    return Group(*parts)


def _vtd_entries(d):
    who = d["device"] or f"RID {d['rid']:#06x}"
    parts = [Text(f"{d['unit']} {who}" + (f" PASID {d['pasid']}" if d["pasid"] is not None
                                           else ""), style="bold")]
    for e in d["entries"]:
        parts.append(_kv([("where", Text(hx(e["addr"]))), ("words", _words(e["words"]))],
                         e["name"]))
        parts.append(_rows(None, e["rows"], ["field", "dword", "bits", "value", "meaning"]))
    if d["fault"]:
        parts.append(Text(f"stops: {d['fault']['name']} ({d['fault']['reason']:#04x}) "
                          f"{d['fault']['meaning']}", style=BAD))
    return Group(*parts)


_VTD_CACHE_COLS = {
    "context": ("context-cache", ["sid", "ctx_pa", "stale"]),
    "pasid": ("PASID-cache", ["sid", "pasid", "did", "pe_pa", "stale"]),
    "iec": ("interrupt entry cache", ["index", "irte_pa", "irte", "stale"]),
    "iotlb": ("IOTLB", ["did", "pasid", "pgtt", "in_base", "size", "out_base", "gpa_base",
                        "perm", "stale"]),
    "psc": ("paging-structure caches", ["cache", "did", "pasid", "region", "size", "entry_pa",
                                        "next", "perm", "stale"]),
    "devtlb": ("device-TLBs", ["sid", "pasid", "base", "size", "pa", "perm", "stale"]),
}


def _vtd_caches(d):
    parts = []
    for key, (title, cols) in _VTD_CACHE_COLS.items():
        if d.get(key) is None:
            continue
        rows = [dict(e, irte=" ".join(f"{w:016x}" for w in e["irte"])) if key == "iec" else e
                for e in d[key]]
        cols = cols[:-1]
        t = _table(*cols, "state", title=f"{d['unit']} {title} ({len(rows)})")
        for e in rows:
            # STALE with the descriptor that removes it, as check names it
            t.add_row(*[Text(num(c, e.get(c)), style=NUM if isinstance(e.get(c), int)
                             and not isinstance(e.get(c), bool) else "") for c in cols],
                      Text(f"STALE: {e.get('fix') or 'invalidate'}", style=BAD)
                      if e["stale"] else Text("same as memory", style=DIM))
        parts.append(t)
    if d["which"] == "tlb":
        parts.append(Text(" ".join(f"{k}={v}" for k, v in d["stats"].items()), style=DIM))
    return Group(*parts)


def _vtd_pt(d):
    who = d["device"] or f"RID {d['rid']:#06x}"
    stage = {"1": "first stage", "2": "second stage", "nested": "nested (first over second)"}
    head = Text(f"{d['unit']} {who} PASID {d['pasid']} {stage[d['stage']]}: {d['pgtt']}, "
                f"DID {d['did']}, {d['levels']} levels, {d['width']}-bit input, root "
                f"{d['root']:#x}", style="bold")
    if d["stage"] == "nested":
        t = _table("IOVA", "size", "GPA", "PA", "FS entry", "SS entry", "FS", "SS", "perm")
        for r in d["rows"]:
            t.add_row(hx(r["in"]), hx(r["size"]), hx(r["gpa"]), hx(r["pa"]) if r["pa"]
                      is not None else Text("unmapped", style=BAD), r["fs_entry"],
                      r["ss_entry"] or "-", r["fs_perm"], r["ss_perm"], r["perm"])
    else:
        t = _table("input", "size", "output", "entry", "perm", "attrs", "leaves")
        for r in d["rows"]:
            t.add_row(hx(r["in"]), hx(r["size"]), hx(r["out"]), r["entry"], r["perm"],
                      " ".join(f"{k}" if v == 1 else f"{k}={v}" for k, v in r["attrs"].items()),
                      str(r["leaves"]))
    parts = [head, t]
    for p in d["problems"]:
        parts.append(Text(f"{p['in']:#x} (+{p['size']:#x}): {p['problem']}", style=BAD))
    if d["truncated"]:
        parts.append(Text("truncated (limit=)", style=DIM))
    return Group(*parts)


def _vtd_pt_lookup(d):
    who = d["device"] or f"RID {d['rid']:#06x}"
    head = Text(f"{d['unit']} {who} PASID {d['pasid']} "
                f"{'first' if d['stage'] == '1' else 'second'} stage: {d['addr']:#x}",
                style="bold")
    t = _table("#", "entry", "table", "index", "entry at", "value", "outcome")
    for i, s in enumerate(d["steps"]):
        at = hx(s["desc_pa"])
        if s.get("desc_gpa") is not None:
            at = f"GPA {s['desc_gpa']:#x} -> {hx(s['desc_pa'])}"
        name = s["entry"] + (" (FS table)" if s.get("purpose") == "fs_table" else "")
        t.add_row(str(i), name, hx(s["table"]), str(s["index"]), at,
                  Text(f"{s['desc']:016x}", style=NUM), s["outcome"])
    end = Text(f"-> {d['out']:#x}  size {d['size']:#x}  perm {d['perm']}", style=GOOD) \
        if d["out"] is not None else Text(f"no leaf: {d['fault']}", style=BAD)
    return Group(head, t, end)


def _vtd_inject(d):
    who = d["device"] or (f"RID {d['rid']:#06x}" if d["rid"] is not None else "")
    parts = [Text(f"inject {d['inject']}: {d['unit']}" + (f" {who}" if who else "") +
                  (f" PASID {d['pasid']}" if d["pasid"] is not None else "") +
                  f": {d['entry']} at {d['addr']:#x}: {d['what']}", style="bold"),
             _kv([("old", _words(d["old"])), ("new", _words(d["new"]))])]
    if d["fault"]:
        parts.append(Text(f"a request now faults: {d['fault']['name']} "
                          f"({d['fault']['reason']:#04x}) {d['fault']['meaning']}", style=BAD))
    if d["cached"]:
        parts.append(Text(f"the unit still holds a cached copy: stale until {d['fix']} "
                          f"(check {d['unit']} names it)", style=DIM))
    return Group(*parts)


def _vtd_units(d):
    parts = []
    for u in d["units"]:
        parts.append(Text(f"{u['name']} at {u['base']:#x}: HAW {u['haw']}, translation "
                          f"{'on' if u['translation'] else 'off'}, interrupt remapping "
                          f"{'on' if u['interrupt_remapping'] else 'off'}", style="bold"))
        t = _table("device", "RID", "BDF", "RID_PASID", "PGTT", "PASIDs")
        for x in u["devices"]:
            t.add_row(x["name"] or "-", f"{x['rid']:#06x}", x["bdf"], str(x["rid_pasid"]),
                      x["pgtt"] or (x["fault"] or "-"),
                      " ".join(f"{p['pasid']}:{p['pgtt']}" for p in x["pasids"]))
        parts.append(t)
    return Group(*parts) if parts else Text("no VT-d unit", style=DIM)


def _vtd_iq(d):
    head = Text(f"{d['unit']} invalidation queue at {d['base']:#x}: {d['entries']} x "
                f"{d['desc_size']} bytes, IQH={d['iqh']} IQT={d['iqt']}", style="bold")
    if d["error"]:
        head.append(f"  stopped: {d['error']}", style=BAD)
    if d["drop_budget"]:
        head.append(f"  the next {d['drop_budget']} descriptors will be dropped", style=BAD)
    t = _table("slot", "state", "descriptor", "fields")
    for x in d["descriptors"]:
        t.add_row(str(x["index"]), x["state"], x["type"] or "-", x["text"])
    return Group(head, t)


def _vtd_msi(d):
    who = d["device"] or f"RID {d['rid']:#06x}"
    head = Text(f"{d['unit']} {who} interrupt request {d['address']:#x} data={d['msi_data']:#x} "
                f"({d['format']} format)", style="bold")
    pairs = []
    if d["index"] is not None:
        pairs.append(("IRTE", Text(f"index {d['index']}" + (
            f" at {d['irte_pa']:#x}: {d['irte'][0]:016x} {d['irte'][1]:016x}"
            if d["irte"] else "") + ("  (from the interrupt entry cache)" if d.get("iec_hit")
                                     else ""))))
    if d["ok"]:
        if d["posted"]:
            pairs.append(("posted", Text(f"vector {d['vector']:#x} descriptor {hx(d['pda'])} "
                                         f"urgent {d['urgent']}", style=GOOD)))
        else:
            pairs.append(("->", Text(f"vector {d['vector']:#x} dest {d['dest']:#x} "
                                     f"{d['dest_mode']} {d['delivery']} {d['trigger']}"
                                     + ("" if d["remapped"] else "  (not remapped)"),
                                     style=GOOD)))
    else:
        f = d["fault"]
        pairs.append(("fault", Text(f"{f['name']} ({f['reason']:#04x}) {f['meaning']}"
                                    + ("" if f["recorded"] else "  not recorded (FPD)"),
                                    style=BAD)))
    pairs.append(("DMA tables", Text("a DMA write there without PASID: " + d["dma_walk"] +
                                     " (0xFEE00000-0xFEEFFFFF is not translated)", style=DIM)))
    return Group(head, _kv(pairs))


def _ste_cd(d, name):
    pairs = [("where", Text(f"{hx(d.get('addr'))}" + (f" (PA {d['pa']:#x})" if d.get("pa")
                                                     and d["pa"] != d["addr"] else "")))]
    pairs.append(("words", _words(d["words"])))
    pairs.append(("check", _verdict(d["legal"], d["problem"])))
    if d.get("cached"):
        pairs.append(("cached", Text("STALE: differs from memory", style=BAD)
                      if d["cached"]["stale"] else Text("cached, same as memory", style=DIM)))
    title = f"{name} {d['smmu']} SID {d['sid']:#x}" + (f" SSID {d['ssid']}" if "ssid" in d
                                                        else "") + \
        (f" ({d['device']})" if d.get("device") else "")
    return Group(_kv(pairs, title), _fields(d["rows"]))


def _pt(d):
    where = d.get("domain") or f"{d['smmu']} SID {d['sid']:#x}"
    tree = Tree(Text(f"{where}: stage {d['stage']}, {d['granule'] >> 10}K granule, "
                     f"{d['input_bits']}-bit input, root {d['root']:#x}"
                     + (" (IPA)" if d.get("tables_are_ipa") else ""), style="bold"))
    stack = [(-1, tree)]
    for r in d["rows"]:
        while stack[-1][0] >= r["depth"]:
            stack.pop()
        parent = stack[-1][1]
        if r["kind"] == "table":
            node = parent.add(Text(f"{r['in']:#x}-{r['end']:#x}  L{r['level']} table -> "
                                   f"{r['next']:#x}", style=DIM))
            stack.append((r["depth"], node))
        elif r["kind"] == "fault":
            parent.add(Text(f"table {r['table']:#x}: {r['error']}", style=BAD))
        elif r["kind"] == "nested":
            parent.add(_pt_nested_row(r))
        else:
            n = f" x{r['count']}" if r["count"] > 1 else ""
            txt = Text(f"{r['in']:#x}-{r['end']:#x} -> {r['out']:#x}-{r['out_end']:#x}  ")
            txt.append(f"L{r['level']} {r['kind']}{n}  {r['perm']}"
                       + ("" if r["af"] else "  AF=0"), style=GOOD if r["af"] else BAD)
            node = parent.add(txt)
            stack.append((r["depth"], node))
    if d.get("truncated"):
        tree.add(Text("... (limit reached: limit=N for more, or addr=ADDRESS for one "
                      "address)", style=DIM))
    return tree


def _pt_nested(d):
    """The stage-1 tree with IOVA -> IPA -> PA rows under each leaf run."""
    tree = _pt(d)
    tree.label.append(f";  stage 2: {d['s2']['granule'] >> 10}K granule, "
                      f"{d['s2']['input_bits']}-bit input, root {d['s2']['root']:#x}")
    return tree


def _pt_nested_row(r) -> Text:
    t = Text(f"{r['in']:#x}-{r['end']:#x} -> IPA {r['ipa']:#x}-{r['ipa_end']:#x} -> ")
    if r["out"] is None:
        t.append("not mapped at stage 2", style=BAD)
        return t
    t.append(f"PA {r['out']:#x}-{r['out_end']:#x}  ")
    t.append(f"s1 {r['s1_perm']} s2 {r['s2_perm']} (L{r['s2_level']}) = "
             f"{r['priv']}/{r['unpriv']}", style=GOOD if r["priv"] != "---" or
             r["unpriv"] != "---" else BAD)
    return t


def _pt_lookup(d):
    t = _table("level", "table", "index", "descriptor at", "descriptor", "kind")
    for s in d["steps"]:
        at = hx(s["desc_addr"]) + (f" (PA {s['desc_pa']:#x})" if s["desc_pa"] != s["desc_addr"]
                                   else "")
        t.add_row(str(s["level"]), hx(s["table"]), str(s["index"]), at,
                  Text(f"{s['desc']:016x}", style=NUM), s["kind"])
    out = Text(f"{d['addr']:#x} -> " + (hx(d["out"]) if d["out"] is not None else "not mapped"),
               style=GOOD if d["out"] is not None else BAD)
    return Group(t, out)


def _mem(d):
    lines = []
    for c in d["chunks"]:
        if "unbacked" in c:
            lines.append(Text(f"{c['addr']:016x}  <{c['unbacked']:#x} bytes: {c['why']}>",
                              style=BAD))
            continue
        data = bytes.fromhex(c["data"])
        base = c["addr"]
        for off in range(0, len(data), 16):
            chunk = data[off:off + 16]
            hexs = " ".join(f"{b:02x}" for b in chunk)
            asc = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
            line = Text(f"{base + off:016x}  ", style=DIM)
            line.append(f"{hexs:<47}", style=NUM)
            line.append(f"  {asc}")
            lines.append(line)
    return Group(*lines) if lines else Text("(nothing)")


def _check(d):
    parts = []
    for s in d["smmus"]:
        parts.append(Text(f"{s['smmu']}: {s['problems']} problem(s)",
                          style=BAD if s["problems"] else GOOD))
        if s["stale"]:
            t = _table("stale", "key", "problem", "fix")
            for e in s["stale"]:
                key = " ".join(f"{k}={hx(v)}" for k, v in e["key"].items())
                fix = e.get("fix_commands") or [e["fix"]]
                t.add_row(e["kind"], key, e["problem"], Text("\n".join(fix), style="bold"))
            parts.append(t)
        for h in s["hazards"]:
            txt = Text(f"  {h['kind']} SID {h['sid']:#x}"
                       + (f" SSID {h['ssid']}" if h.get("ssid") is not None else "")
                       + f": qwords {h['changed_qwords']} changed; "
                       + ("hitless update possible" if h["hitless"] else "needs a break (V=0)")
                       + f" in {h['syncs_needed']} sync step(s)")
            if h["torn"]:
                txt.append("; a reader could see a torn entry", style=BAD)
            parts.append(txt)
        for e in s["illegal"]:
            parts.append(Text(f"  SID {e['sid']:#x} {e['device'] or ''}: {e['problem']}",
                              style=BAD))
        for e in s["errors"]:
            parts.append(Text(f"  {e}", style=BAD))
        if s["unread_events"]:
            parts.append(Text(f"  {s['unread_events']} event record(s) not read yet "
                              f"(events {s['smmu']})"))
    for f in d.get("system") or []:
        parts.append(Text(f"{f['area']}: {f['subject']}: {f['message']}",
                          style=BAD if f["severity"] == "error" else ""))
        parts.append(Text(f"  fix: {f['fix']}", style="bold"))
    for n in d["not_checked"]:
        parts.append(Text(f"not checked: {n}", style=DIM))
    return Group(*parts)


def _help_index(d):
    parts = []
    for a in d["areas"]:
        t = _table(a["area"], "")
        for c in a["commands"]:
            t.add_row(Text(c["usage"], style="bold" if c["available"] else DIM),
                      c["summary"] + ("" if c["available"] else " [not modelled yet]"))
        parts.append(t)
    parts.append(Text("help COMMAND for details", style=DIM))
    return Group(*parts)


def _help(d):
    parts = [Text(d["usage"], style="bold"), Text(d["help"])]
    if d["args"]:
        t = _table("argument", "")
        for a in d["args"]:
            said = "default" in (a["help"] or "")       # the help text names it already
            t.add_row(a["usage"], a["help"] + (f" (default {a['default']})"
                                               if a["default"] not in (None, "") and not said
                                               else ""))
        parts.append(t)
    if not d["available"]:
        parts.append(Text(d["why"], style=BAD))
    return Group(*parts)


def _rows(title, rows, cols):
    t = _table(*cols, title=title)
    for r in rows:
        t.add_row(*[Text(num(c, r.get(c)), style=NUM if isinstance(r.get(c), int)
                         and not isinstance(r.get(c), bool) else "") for c in cols])
    return t


def _set(d):
    parts = []
    vtd = d["what"] in ("SM_CONTEXT_ENTRY", "PASID_ENTRY")     # VT-d names for VT-d entries
    title = d["what"] + (f" {d['smmu']}" if d.get("smmu") else "") + \
        (f" {'RID' if vtd else 'SID'} {d['sid']:#x}" if d.get("sid") is not None else "") + \
        (f" {'PASID' if vtd else 'SSID'} {d['ssid']}" if d.get("ssid") is not None else "")
    if d.get("addr") is not None:
        title += f" at {d['addr']:#x}"
    parts.append(Text(title, style="bold"))
    for c in d.get("changes", []):
        parts.append(Text(f"  {c['field']}: {hx(c['old'])} -> {hx(c['new'])} "
                          f"{c.get('meaning', '')}"))
    if "legal" in d:
        parts.append(_verdict(d["legal"], d["problem"]))
    h = d.get("hazards")
    if h:
        parts.append(Text(f"stores to qwords {d['stores']} without a sync: "
                          + ("a reader could see a torn entry" if h["torn"] else "no torn state")
                          + f"; a hitless update {'is' if h['hitless_possible'] else 'is not'}"
                          f" possible ({h['syncs_needed']} sync step(s))",
                          style=BAD if h["torn"] else DIM))
    if d["what"] in ("STE", "CD"):
        parts.append(Text("not invalidated: the SMMU may use a cached copy (see check)",
                          style=DIM))
    return Group(*parts)


def _generic(d):
    pairs = []
    for k, v in d.items():
        if k in ("kind", "message"):
            continue
        if isinstance(v, list) and v and isinstance(v[0], dict):
            continue
        pairs.append((k, Text(num(k, v) if not isinstance(v, (list, dict)) else str(v))))
    parts = [_kv(pairs)] if pairs else []
    for k, v in d.items():
        if isinstance(v, list) and v and isinstance(v[0], dict):
            cols = [c for c in v[0] if not isinstance(v[0][c], (dict, list))]
            parts.append(_rows(k, v, cols))
    if d.get("message"):
        parts.insert(0, Text(d["message"]))
    return Group(*parts)


def _topology(d):
    tree = Tree(Text(f"{d['name']}: {d['description']}", style="bold"))
    for s in d["smmus"]:
        st = s["strtab"]
        n = tree.add(Text(f"{s['name']} @ {s['base']:#x}  stream table {st['format']} "
                          f"2^{st['log2size']} @ {st['base']:#x}  "
                          f"{'S1 ' if s['stage1'] else ''}{'S2 ' if s['stage2'] else ''}"
                          f"{'' if s['smmuen'] else 'SMMUEN=0'}"))
        for x in d["streams"]:
            if x["smmu"] != s["name"]:
                continue
            sid = f"{x['sid']:#x}" + (f"..{x['sid'] + x['count'] - 1:#x}" if x["count"] > 1
                                      else "")
            cds = ", ".join(f"ssid {c['ssid']}: {c['domain']}" for c in x["cds"])
            n.add(f"{x['name'] or '(streams)'}  SID {sid}  {x['config']}"
                  + (f"  s2={x['s2']}" if x["s2"] else "") + (f"  [{cds}]" if cds else ""))
    for v in d["vms"]:
        n = tree.add(Text(f"VM {v['name']}", style="bold"))
        for r in v["ram"]:
            n.add(f"IPA {r['ipa']:#x}+{r['size']:#x} -> PA {r['pa']:#x}")
    if d.get("shared"):
        sh = tree.add(Text("shared translation contexts", style="bold"))
        for g in d["shared"]:
            k = g["key"]
            what = (f"{g['smmu']} {g['stage']}: " + (f"VMID {hx(k['vmid'])} " if k["vmid"]
                                                      is not None else "")
                    + (f"S2TTB {k['s2ttb']:#x}" if "s2ttb" in k else
                       f"ASID {k['asid']:#x} TTB0 {k['ttb0']:#x}"))
            who = ", ".join((x["device"] or f"SID {x['sid']:#x}")
                            + (f" (+{x['count'] - 1} more)" if x["count"] > 1 else "")
                            + (f" ssid {x['ssid']}" if x["ssid"] else "")
                            for x in g["streams"])
            sh.add(f"{what}  <-  {who}")
    dn = tree.add(Text("domains", style="bold"))
    for x in d["domains"]:
        dn.add(f"{x['name']}  stage {x['stage']}  {x['granule'] >> 10}K  {x['bits']}-bit  "
               f"root {x['root']:#x}" + (f"  asid {x['asid']}" if x["asid"] is not None else "")
               + (f"  vmid {x['vmid']}" if x["vmid"] is not None else "")
               + (f"  (tables in {x['vm']})" if x["vm"] else ""))
    return tree


def _import(d):
    st = d.get("strtab") or {}
    pairs = [("system", Text(str(d.get("system")))), ("memory", Text(str(d.get("memory")))),
             ("registers", Text(f"{d.get('regs')} ({d.get('registers')} values)")),
             ("dump", Text(f"{len(d.get('segments', []))} segments, {d.get('bytes', 0):#x} bytes")),
             ("SMMUEN", Text(hx(d.get("smmuen")))),
             ("stream table", Text(f"{st.get('format')} 2^{st.get('log2size')} @ "
                                   f"{hx(st.get('base'))}" if st else "-")),
             ("pending commands", Text(str(d.get("pending_commands", 0))))]
    its = d.get("its")
    if its:
        pairs.append(("ITS", Text(f"{its['name']} @ {its['base']:#x} (GITS_TRANSLATER "
                                  f"{its['translater']:#x}), enabled {hx(its['enabled'])}, "
                                  f"{its['redistributors']} redistributor(s), {its['layout']} "
                                  f"layout; {its['iort']}")))
    parts = [Text(d.get("message", ""), style="bold"), _kv(pairs)]
    for w in d.get("warnings") or []:
        parts.append(Text(f"warning: {w}", style="yellow"))
    for g in d.get("gerror") or []:
        parts.append(Text(f"active global error: {g}", style=BAD))
    if d.get("streams"):
        parts.append(_rows("streams", d["streams"], list(d["streams"][0])))
    return Group(*parts)


def _vtd_import(d):
    iq, irt = d.get("iq"), d.get("irta")
    pairs = [("system", Text(str(d["system"]))), ("memory", Text(str(d["memory"]))),
             ("registers", Text(f"{d['regs']} ({d['registers']} values)")),
             ("dump", Text(f"{d['machine'] or 'raw'}, {len(d['segments'])} segments, "
                           f"{d['bytes']:#x} bytes")),
             ("TES", Text(hx(d["translation"]))),
             ("root table", Text(f"{d['mode']} @ {d['root_table']:#x}, HAW {d['haw']}")),
             ("invalidation queue", Text(f"{iq['entries']} entries @ {iq['base']:#x}, IQH "
                                         f"{iq['head']} IQT {iq['tail']}" if iq else "-")),
             ("interrupt remapping", Text(f"{irt['entries']} IRTEs @ {irt['base']:#x}, IRES "
                                          f"{hx(irt['enabled'])}" if irt else "-")),
             ("fault records", Text(str(d["faults"])))]
    parts = [Text(d.get("message", ""), style="bold"), _kv(pairs)]
    for w in d.get("warnings") or []:
        parts.append(Text(f"warning: {w}", style="yellow"))
    if d.get("devices"):
        parts.append(_rows("devices", d["devices"], ["rid", "device"]))
    return Group(*parts)


_CLASS = {0: "CD", 1: "TT", 2: "IN", 3: "-"}


class _NotedRows:
    """A table whose rows may each carry a note (an event's explanation) on its own line below
    the row, wrapped to the width. Columns take their widest cell; when the table is wider
    than the console the widest columns fold first (as a rich Table's do)."""

    def __init__(self, cols, rows, notes, prefix="why: "):
        self.cols, self.rows, self.notes, self.prefix = cols, rows, notes, prefix

    def __rich_console__(self, console, options):
        n = len(self.cols)
        data = [max([2] + [r[i].cell_len for r in self.rows]) for i in range(n)]
        w = [max(len(c), data[i]) for i, c in enumerate(self.cols)]
        over = sum(w) + 3 * (n - 1) - options.max_width
        # Too wide: fold the headers wider than their cells first, then the widest columns.
        for i in range(n):
            cut = min(max(over, 0), w[i] - data[i])
            w[i] -= cut
            over -= cut
        while over > 0 and max(w) > 4:
            w[w.index(max(w))] -= 1
            over -= 1

        def line(cells, sep):
            out = Text()
            for i, c in enumerate(cells):
                c = c.copy()
                c.pad_right(w[i] - c.cell_len)
                out.append_text(c)
                if i < n - 1:
                    out.append(sep)
            return out

        def lines(cells, sep):
            wrapped = [list(c.wrap(console, w[i], overflow="fold")) for i, c in enumerate(cells)]
            for k in range(max(len(x) for x in wrapped)):
                yield line([x[k] if k < len(x) else Text() for x in wrapped], sep)

        yield from lines([Text(c, style="bold") for c in self.cols], " ┃ ")
        yield Text("╇".join("━" * (w[i] + (1 if i in (0, n - 1) else 2)) for i in range(n)))
        for row, note in zip(self.rows, self.notes):
            yield from lines(row, " │ ")
            if note:
                yield Padding(Text(self.prefix + note, style=DIM), (0, 0, 0, 2))


def _events(d):
    head = Text(f"{d['smmu']} event queue @ {d['base']:#x}, 2^{d['log2size']} entries, "
                f"PROD {d['prod']:#x} CONS {d['cons']:#x}"
                + ("  OVERFLOW" if d.get("overflow") else ""), style="bold")
    cols = ["#", "event", "StreamID", "SSID", "InputAddr", "access", "S2", "CLASS",
            "IPA/FetchAddr"]
    scope_all = d.get("scope") == "all"
    rows, whys = [], []
    for e in d["entries"]:
        f = e.get("fields", {})
        acc = ("read" if f.get("RnW") else "write") if "RnW" in f else "-"
        if f.get("InD"):
            acc = "exec"
        if "PnU" in f:
            acc += " priv" if f["PnU"] else ""
        # addresses, not the raw IPA[55:12] / FetchAddr[55:3] fields
        extra = e["fetch_addr"] if e.get("fetch_addr") is not None else \
            (e.get("ipa") if f.get("S2") else None)
        rows.append([Text(str(e["index"])), Text(e["event"], style=BAD),
                     Text(hx(f.get("StreamID"))),
                     Text(hx(f["SubstreamID"]) if f.get("SSV") else "-"),
                     Text(hx(f.get("InputAddr"))), Text(acc),
                     Text(str(f["S2"]) if "S2" in f else "-"),
                     Text(_CLASS.get(f.get("CLASS"), "-") if "CLASS" in f else "-"),
                     Text(hx(extra)),
                     *([Text(e["state"], style=DIM if e["state"] != "pending" else "")]
                       if scope_all else [])])
        whys.append(e.get("explanation"))
    parts = [head, _NotedRows(cols + ["state"] if scope_all else cols, rows, whys)] \
        if d["entries"] else [head, Text("no events", style=DIM)]
    nr = d.get("not_records")
    if nr:
        parts.append(Text(f"every slot read: {nr['empty']} empty, {nr['unbacked']} outside "
                          f"the memory, {nr['unknown']} with an unknown event type",
                          style=DIM))
    if d.get("summary") is not None:
        st = _table("StreamID", "device", "records", "events")
        for r in d["summary"]:
            st.add_row(hx(r["sid"]), r["device"] or "-", str(r["records"]),
                       ", ".join(f"{k} x{v}" for k, v in r["events"].items()))
        parts.append(st if d["summary"] else Text("no records to summarize", style=DIM))
    return Group(*parts)


def _cmd_value(command, field: str, v: int) -> int:
    """A command field as shown: an address field (TLBI Address[63:12], CMD_SYNC
    MSIAddress[51:2]) as the address it holds, not its raw value."""
    try:
        f = fmt(command).field(field)
    except Exception:           # an unknown opcode or field: the raw value
        return v
    return f.to_address(v) if f.is_address else v


def _cmdq(d):
    head = Text(f"{d['smmu']} command queue @ {d['base']:#x}, 2^{d['log2size']} entries, "
                f"PROD {d['prod']:#x} CONS {d['cons']:#x}"
                + (f"  GERROR: {', '.join(d['gerror'])}" if d["gerror"] else "")
                + (f"  dropping the next {d['drop_budget']} invalidations"
                   if d["drop_budget"] else ""), style="bold")
    t = _table("#", "command", "state", "effect")
    stop = d.get("history_stop")
    if stop:
        t.add_row(Text(f"{stop['index']:#x}", style=DIM),
                  Text(f"history stops here: {stop['why']}", style="yellow"), "", "")
    for e in d["entries"]:
        fields = " ".join(f"{k}={_cmd_value(e['command'], k, v):#x}"
                          for k, v in e["fields"].items() if k != "Opcode" and v)
        t.add_row(f"{e['index']:#x}" + ("'" if e.get("lap") == -1 else ""),
                  Text((e["command"] or "?") + (" " + fields if fields else "")),
                  Text(e["state"], style=BAD if e["state"] not in
                       ("done", "consumed", "pending", "dropped") else ""),
                  e.get("effect") or "")
    parts = [head, t] if d["entries"] or stop else [head, Text("no commands", style=DIM)]
    if any(e.get("lap") == -1 for e in d["entries"]):
        parts.append(Text("' : a slot of the lap before CONS's", style=DIM))
    return Group(*parts)


def _inject_entry(d):
    title = f"inject {d['inject']}: {d['smmu']} SID {d['sid']:#x}" + \
        (f" SSID {d['ssid']}" if d.get("ssid") is not None else "") + \
        f" at {d['addr']:#x}" + (f" (PA {d['pa']:#x})" if d.get("pa") not in (None, d["addr"])
                                 else "")
    t = _table("dword", "old", "new", "")
    for i, (o, n) in enumerate(zip(d["old"], d["new"])):
        t.add_row(str(i), Text(f"{o:016x}", style=NUM), Text(f"{n:016x}", style=NUM),
                  Text("changed", style=BAD) if o != n else "")
    parts = [Text(title, style="bold"), t]
    if d.get("problem"):
        parts.append(Text(f"the SMMU now: {d['problem']}", style=BAD))
    return Group(*parts)


def _inject_desc(d):
    pairs = [("descriptor at", Text(f"{d['desc_addr']:#x}" + (
                f" (PA {d['desc_pa']:#x})" if d["desc_pa"] != d["desc_addr"] else ""))),
             ("level", Text(str(d["level"]))), ("maps", Text(f"{d['size']:#x} bytes")),
             ("old", Text(f"{d['old']:016x}", style=NUM)),
             ("new", Text(f"{d['new']:016x}", style=NUM)), ("change", Text(d["what"]))]
    return _kv(pairs, f"inject {d['inject']} in {d['domain']}")


def _short(v, limit=60) -> str:
    import json as _json
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:#x}"
    t = v if isinstance(v, str) else _json.dumps(v, separators=(",", ":"))
    return t if len(t) <= limit else t[:limit - 3] + "..."


def _differences(a, b, path="", out=None, limit=12):
    """[(path, a, b)] where two JSON values differ, leaves first found (at most limit)."""
    out = [] if out is None else out
    if len(out) >= limit:
        return out
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if a.get(k, "<absent>") != b.get(k, "<absent>"):
                _differences(a.get(k, "<absent>"), b.get(k, "<absent>"),
                             f"{path}.{k}" if path else str(k), out, limit)
    elif isinstance(a, str) and a.startswith("<") and a.endswith(("fields>", "entries>")):
        pass        # a session summary left this part out: nothing to compare
    elif isinstance(a, list) and isinstance(b, list):
        cut = bool(a) and isinstance(a[-1], str) and a[-1].startswith("... ")
        if cut:     # a summary keeps the first entries only
            a, b = a[:-1], b[:len(a) - 1]
        for i in range(max(len(a), len(b))):
            x = a[i] if i < len(a) else "<absent>"
            y = b[i] if i < len(b) else "<absent>"
            if x != y:
                _differences(x, y, f"{path}[{i}]", out, limit)
    elif a != b:
        out.append((path or "result", a, b))
    return out


def _replay(d):
    where = d.get("file") or d.get("path") or "this session's log"
    if d["identical"]:
        return Text(f"replayed {d['replayed']} commands identically ({where})", style=GOOD)
    v = d["diverged"]
    exp, got = v["expected"], v["got"]
    parts = [Text(f"command #{v['index']} diverged: {v['command']}  ({d['differing']} of "
                  f"{d['replayed']} commands differ; {where})", style=BAD)]
    t = _table("", "recorded", "now")
    t.add_row("status", "ok" if exp["ok"] else "error", "ok" if got["ok"] else "error")
    t.add_row("digest", exp["digest"][:16], got["digest"][:16])
    if exp.get("error") or not got["ok"]:
        t.add_row("error", exp.get("error") or "-", got["result"].get("error", "-")
                  if not got["ok"] else "-")
    recorded = exp.get("result", exp.get("summary"))
    if recorded is not None and got["ok"]:
        for path, a, b in _differences(recorded, got["result"]):
            t.add_row(path, _short(a), _short(b))
        if "result" not in exp:
            t.add_row("", Text("(recorded: the saved summary only; `save FILE results` "
                               "keeps whole results)", style=DIM), "")
    parts.append(t)
    return Group(*parts)


def _diff(d):
    parts = [Text(f"diff {d['from']} -> {d['to']}" + ("  (no differences)" if d["identical"]
                                                       else ""), style="bold")]
    for m in d["smmus"]:
        if m.get("only"):
            parts.append(Text(f"{m['smmu']}: only in {d['from'] if m['only'] == 'a' else d['to']}",
                              style=BAD))
            continue
        if m["registers"]:
            t = _table("register", d["from"], d["to"], title=f"{m['smmu']} registers")
            for r in m["registers"]:
                t.add_row(r["name"], "not provided" if r["a"] is None else hx(r["a"]),
                          "not provided" if r["b"] is None else hx(r["b"]))
            parts.append(t)
        for what, rows in (("STE", m["stes"]), ("CD", m["cds"])):
            if not rows:
                continue
            t = _table("StreamID", "SSID", "change", "fields", title=f"{m['smmu']} {what}s")
            for r in rows:
                t.add_row(hx(r["sid"]), str(r["ssid"]) if "ssid" in r else "-", r["change"],
                          ", ".join(f"{f['field']} {hx(f['a'])} -> {hx(f['b'])}"
                                    for f in r["fields"]))
            parts.append(t)
        if m["mappings"]:
            t = _table("StreamID", "SSID", "stage", "input range", "change",
                       f"{d['from']}", f"{d['to']}", title=f"{m['smmu']} mappings")
            for r in m["mappings"]:
                side = [(f"{r[o]:#x} {r[p]}" if r[o] is not None else "-")
                        for o, p in (("a_out", "a_perm"), ("b_out", "b_perm"))]
                t.add_row(hx(r["sid"]), "-" if r["ssid"] is None else str(r["ssid"]),
                          str(r["stage"]), f"{r['in']:#x}-{r['end']:#x}",
                          Text(r["change"], style=GOOD if r["change"] == "added" else BAD),
                          *side)
            parts.append(t)
        if m.get("stes_truncated"):
            parts.append(Text("(only the first 4096 valid STEs compared)", style=DIM))
        if m.get("mappings_truncated"):
            parts.append(Text("(mappings of more stream configurations not compared)",
                              style=DIM))
        q = m["queues"]
        moved = [f"{n} PROD {v['a']['prod']:#x}->{v['b']['prod']:#x} CONS "
                 f"{v['a']['cons']:#x}->{v['b']['cons']:#x}" for n, v in q.items()
                 if v["a"] != v["b"]]
        if moved:
            parts.append(Text(f"{m['smmu']} queues: " + "; ".join(moved)))
        if m["events"]:
            t = _table("#", "event", "StreamID", "state", title=f"{m['smmu']} new events")
            for e in m["events"]:
                t.add_row(str(e["index"]), e["event"], hx(e["sid"]), e["state"])
            parts.append(t)
    return Group(*parts)


def _find(d):
    head = Text(f"{d['space'].upper()} {d['addr']:#x}+{d['size']:#x}: {len(d['hits'])} "
                f"mapping(s); scanned {d['scanned']['trees']} table trees, "
                f"{d['scanned']['descriptors']} descriptors", style="bold")
    if d["scanned"].get("unreadable"):
        head.append(f" ({d['scanned']['unreadable']} table pages unreadable)", style=BAD)
    rows = [dict(h, device=h["device"] or "-", ssid="-" if h["ssid"] is None else h["ssid"],
                 stage=h["stage"] + (" TTB1" if h.get("ttb") == "TTB1" else "")
                 + (" *" if h.get("note") else ""),
                 perm=f"{h['priv']}/{h['unpriv']}" + ("" if h.get("af", True) else " AF=0"),
                 S1=h["s1_perm"], S2=h["s2_perm"])
            for h in d["hits"]]
    cols = ["smmu", "sid", "device", "ssid", "stage", "iova", "size", "ipa", "pa", "S1", "S2",
            "perm"]
    # Columns no row has a value in (no device names, no SubstreamIDs, no IPAs, no stage 2)
    # are left out: the rest then fit a terminal's width.
    optional = {"smmu": len({h["smmu"] for h in d["hits"]}) > 1, "device": None, "ssid": None,
                "ipa": None, "S1": None, "S2": None}
    cols = [c for c in cols if c not in optional or (optional[c] if optional[c] is not None
            else any(r.get(c) not in (None, "-") for r in rows))]
    parts = [head, _rows(None, rows, cols)]
    for note in sorted({h["note"] for h in d["hits"] if h.get("note")}):
        parts.append(Text(f"* {note}", style=DIM))
    return Group(*parts)


RENDERERS = {
    "json-mode": lambda d: Text(f"json output {'on' if d['on'] else 'off'}"),
    "diff": _diff,
    "events": _events,
    "find": _find,
    "inject-entry": _inject_entry,
    "inject-desc": _inject_desc,
    "replay": _replay,
    "loaded": _replay,
    "cmdq": _cmdq,
    "import": _import,
    "vtd-import": _vtd_import,
    "goto": lambda d: Text(f"at {d['position']} of {d['length']} (was at {d['from']}; "
                           f"re-ran {d['reran']} commands)"),
    "walk": _walk,
    "vtd-walk": _vtd_walk,
    "vtd-pt": _vtd_pt,
    "vtd-iq": _vtd_iq,
    "vtd-units": _vtd_units,
    "vtd-inject": _vtd_inject,
    "vtd-pt-lookup": _vtd_pt_lookup,
    "vtd-entries": _vtd_entries,
    "vtd-msi": _vtd_msi,
    "vtd-caches": _vtd_caches,
    "vtd-inv": lambda d: Group(
        Text(f"{d['unit']} {d['descriptor']} {d['words'][0]:016x} {d['words'][1]:016x}  "
             f"IQH={d['iqh']} IQT={d['iqt']}" + (f"  queue error {d['error']}" if d["error"]
                                                  else ""), style="bold"),
        _rows(None, d["log"], ["index", "type", "removed", "note"])),
    "vtd-faults": lambda d: _rows(f"{d['unit']} fault records", d["faults"],
                                  ["index", "name", "reason", "sid", "pasid", "fi", "write",
                                   "exe", "priv"]),
    "ste": lambda d: _ste_cd(d, "STE"),
    "cd": lambda d: _ste_cd(d, "CD"),
    "pt": _pt,
    "pt-lookup": _pt_lookup,
    "pt-nested": _pt_nested,
    "mem": _mem,
    "check": _check,
    "help-index": _help_index,
    "help": _help,
    "set": _set,
    "set-desc": _set,
    "set-reg": _set,
    "topology": _topology,
    "register": lambda d: Group(Text(f"{d['name']} = {d['value']:#x}", style="bold"),
                                _fields(d["fields"])) if d.get("provided", True) else
    Text(f"{d['name']}: not provided (the imported register file does not give it)",
         style=DIM),
    "registers": lambda d: _rows(f"{d['smmu']} registers",
                                 [dict(r, value=r["value"] if r.get("provided", True)
                                       else "not provided") for r in d["registers"]],
                                 ["name", "offset", "value"]),
    "strtab": lambda d: Group(Text(f"{d['smmu']} stream table {d['format']} @ {d['base']:#x}, "
                                   f"2^{d['log2size']} entries"
                                   + (f", split {d['split']}" if d["split"] else ""),
                                   style="bold"),
                              _rows(None, d["entries"], ["sid", "device", "config", "addr",
                                                         "s2vmid", "s1contextptr", "s1cdmax",
                                                         "s2ttb", "problem"]),
                              Text("... more: strtab SMMU sid=N" if d["more"] else "")),
    "tlb": lambda d: Group(_rows(f"{d['smmu']} IOTLB", d["entries"],
                                 ["kind", "vmid", "asid", "in_base", "size", "out_base",
                                  "ipa_base", "s1level", "s2level", "perm_priv", "perm_unpriv"]),
                           Text(" ".join(f"{k}={v}" for k, v in d["stats"].items()),
                                style=DIM)),
    "history": lambda d: _rows(None, [dict(r, n=(">" if r["current"] else " ") + str(r["n"]))
                                      for r in d["entries"]], ["n", "command", "ok"]),
}


# -- the system around the SMMUs: the MSI path (like a walk), the IORT, an ITS ---------------------
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


def _msi(d):
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
        cpu = d.get("cpu")
        parts.append(Text(f"-> LPI {d['intid']} (collection {d['icid']}) pending on "
                          f"redistributor {d['target']}"
                          + (f", CPU affinity {cpu['affinity']}" if cpu else ""),
                          style="bold " + GOOD))
    return Group(*parts)


def _iort(d):
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


def _its(d):
    parts = [_kv([("ITS", d["name"]), ("base", d["base"]),
                  ("GITS_TRANSLATER", d["translater"]),
                  ("enabled", d["enabled"]), ("stalled", d["stalled"]),
                  ("commands", Text(str(d["commands"])))])]
    parts.append(_rows("registers", [{"name": k, "value": "not provided" if v is None else v}
                                     for k, v in d["registers"].items()], ["name", "value"]))
    if d.get("redistributors"):
        names = list(d["redistributors"][0]["registers"])
        parts.append(_rows("redistributors", [
            {"frame": r["frame"], "RD_base": r["rd_base"],
             "processor": "not provided" if r["processor"] is None else r["processor"],
             "affinity": r["affinity"] or "not provided",
             **{n[5:]: "not provided" if r["registers"][n] is None else r["registers"][n]
                for n in names}} for r in d["redistributors"]],
            ["frame", "RD_base", "processor", "affinity"] + [n[5:] for n in names]))
    parts.append(_rows("tables", d["tables"], ["n", "kind", "valid", "indirect", "page_size",
                                               "entry_size", "base", "pages", "capacity"]))
    parts.append(_rows("collections", d["collections"], ["icid", "target"]))
    if d.get("dtes"):
        parts.append(Text("device table (valid DTEs)", style="bold"))
        parts.append(_its_steps(d["dtes"]))
    if d.get("ctes"):
        parts.append(Text("collection table (valid collections)", style="bold"))
        parts.append(_its_steps(d["ctes"]))
    if d["device"]:
        parts.append(Text(f"DeviceID {d['device']['device_id']:#x}", style="bold"))
        parts.append(_its_steps(d["device"]["steps"]))
        if d.get("itt"):
            parts.append(Text(f"ITT of DeviceID {d['device']['device_id']:#x} (valid ITEs)",
                              style="bold"))
            parts.append(_its_steps(d["itt"]))
    parts.append(_rows("mapped events", d["mappings"],
                       ["device_id", "event_id", "intid", "icid", "target"]))
    parts.append(_rows("pending LPIs", [{"target": p["target"],
                                         "intids": ", ".join(map(str, p["intids"]))}
                                        for p in d["pending"]], ["target", "intids"]))
    for e in d["errors"]:
        parts.append(Text(f"command at {e['offset']:#x} {e['name']}: {e['error']}: "
                          f"{e['reason']}", style=BAD))
    return Group(*parts)


PCI_KIND = {"root_port": "RP", "upstream_port": "switch USP", "downstream_port": "switch DSP",
            "pcie_pci_bridge": "PCIe-PCI", "pci_bridge": "PCI-PCI", "pci_pcie_bridge": "PCI-PCIe",
            "rc_endpoint": "RCiEP", "endpoint": ""}


def pci_host_label(h) -> str:
    """A `pci` host bridge row in one short line (the REPL and the UI's tree say the same)."""
    return (f"{h['name']} " + ("pxb-pcie " if h["kind"] == "pxb-pcie" else "")
            + (f"seg {h['segment']} " if h["segment"] else "")
            + f"bus {h['bus']:02x}-{h['bus_end']:02x}")


def pci_device_label(d) -> str:
    """A `pci` device row in one short line: a bridge's bus range, an endpoint's RID and its
    StreamIDs at their SMMU."""
    kind = PCI_KIND.get(d["kind"], d["kind"])
    if d["bridge"]:
        sec, sub = d["secondary"], d["subordinate"]
        return (f"{d['name']} {kind} {d['bdf'][5:]} bus {sec:02x}"
                + (f"-{sub:02x}" if sub != sec else ""))
    out = f"{d['name']} " + (f"{kind} " if kind else "") + f"RID {hx(d['rid'])}"
    sids = d["stream_ids"]
    if sids:
        for smmu in dict.fromkeys(m for m, _ in sids):
            out += f" {smmu} SID " + ",".join(hx(x) for m, x in sids if m == smmu)
    elif sids is not None:
        out += " no SMMU"
    return out + (" !" if d["failure"] else "")


def pci_details(r, name) -> str:
    """What the `pci` result says about one host bridge or device (by name)."""
    h = next((x for x in r["hosts"] if x["name"] == name), None)
    below = [d["name"] for d in r["devices"] if d["parent"] == name] + \
        [x["name"] for x in r["hosts"] if x["parent"] == name]
    if h is not None:
        what = ("pxb-pcie expander at " + h["bdf"] + f" on {h['parent']}" if h["parent"]
                else "host bridge")
        return (f"{name}: {what}, segment {h['segment']}, root bus {h['bus']:02x}, buses "
                f"{h['bus']:02x}-{h['bus_end']:02x} (enumeration used {h['bus']:02x}-"
                f"{h['used']:02x}); on its root bus: {', '.join(below) or 'nothing'}")
    d = next(x for x in r["devices"] if x["name"] == name)
    out = (f"{name}: {d['kind'].replace('_', ' ')} {d['bdf']} RID {hx(d['rid'])} on "
           f"{d['parent']}")
    if d["bridge"]:
        out += (f"; secondary bus {d['secondary']:02x}, subordinate {d['subordinate']:02x}; "
                f"below: {', '.join(below) or 'nothing'}")
    if d["stream_ids"] is not None:
        out += ("; StreamIDs " + (", ".join(f"{hx(x)} at {m}" for m, x in d["stream_ids"])
                                  or "none") + f"; MSI RID {hx(d['msi_rid'])} -> DeviceID "
                f"{hx(d['device_id'])}")
    if d["failure"]:
        out += f"; {d['failure']}"
    return out


def _pci(d):
    if d.get("message"):
        return Text(d["message"])
    tree = Tree(Text("PCI", style="bold"))
    nodes = {}
    for h in d["hosts"]:
        nodes[h["name"]] = tree.add(Text(pci_host_label(h), style="bold"))
    for x in d["devices"]:
        label = Text(pci_device_label(x), style=BAD if x["failure"] else "")
        if not x["bridge"] and x["device_id"] is not None:
            label.append(f" DevID {hx(x['device_id'])}", style=DIM)
        nodes[x["name"]] = nodes[x["parent"]].add(label)
    return tree


RENDERERS.update({"msi": _msi, "iort": _iort, "its": _its, "pci": _pci})


def render(result):
    """A rich renderable for a Result (smmudbg.results.Result or its to_json() dict).

    A renderer that fails raises: a result it cannot show is a bug to find in the tests
    (tests/test_render.py renders every command's result), not something to hide."""
    d = result.to_json() if hasattr(result, "to_json") else result
    return RENDERERS.get(d.get("kind"), _generic)(d)


PLAIN_WIDTH = 1 << 12      # "no terminal": wide enough that nothing wraps


def render_text(result, width: int | None = 120, color: bool = False) -> str:
    """The Result rendered to a string (ANSI colours only if color). width=None: for a file or
    a pipe, not a terminal: nothing wrapped to a width, no padding at the ends of lines."""
    buf = io.StringIO()
    con = Console(file=buf, width=width or PLAIN_WIDTH,
                  color_system="standard" if color else None,
                  force_terminal=color, highlight=False, soft_wrap=False)
    con.print(render(result))
    text = buf.getvalue()
    if width is None:
        text = "\n".join(line.rstrip() for line in text.split("\n"))
    return text


def error_text(message: str) -> Text:
    return Text(message, style=BAD)


# -- vSMMUs: guest side next to host side, and the trap-and-forward steps --------------------------
def _dwords(ws, n=2):
    return " ".join(f"{w:016x}" for w in (ws or [])[:n]) if ws else "-"


def _vsmmu(d):
    parts = []
    for v in d["vsmmus"]:
        vis = ", ".join(f"{x['name']} (id {x['id']}) on {x['smmu']} VMID {x['vmid']}, S2 "
                        f"{x['parent']}" for x in v["viommus"])
        parts.append(Text(f"{v['name']} of {v['vm']}: {'accelerated' if v['accel'] else 'emulated'}"
                          f", SMMUEN={int(v['enabled'])} GBPA={v['gbpa']}; vIOMMU {vis}",
                          style="bold"))
        c, e = v["cmdq"], v["evtq"]
        parts.append(Text(f"  guest stream table IPA {v['strtab']['base']:#x} (2^"
                          f"{v['strtab']['log2size']} STEs); cmdq IPA {c['base']:#x} PROD "
                          f"{c['prod']:#x} CONS {c['cons']:#x}"
                          + (f" stopped: {c['error']}" if c["error"] else "")
                          + f"; evtq IPA {e['base']:#x} PROD {e['prod']:#x} CONS {e['cons']:#x}"
                          + (f"; GERROR {', '.join(v['gerror'])}" if v["gerror"] else ""),
                          style=BAD if c["error"] else DIM))
        t = _table("vSID", "guest", "guest STE @IPA", "config", "guest CD", "|", "device",
                   "pSID", "host STE @PA", "config", "HWPT", "vIOMMU", "vDEV", "sync")
        for r in v["devices"]:
            g, h, cd = r["guest_ste"] or {}, r["host_ste"] or {}, r["guest_cd"]
            cdt = ("-" if cd is None else f"{hx(cd['ipa'])} ASID {hx(cd['asid'])} TTB0 "
                   f"{hx(cd['ttb0'])}" if not cd.get("problem") else cd["problem"])
            hw = r["hwpt"]
            t.add_row(hx(r["vsid"]), r["guest_device"] or "-",
                      f"{hx(g.get('ipa'))} {_dwords(g.get('words'))}", g.get("config", "-"),
                      cdt, "|", r["device"], hx(r["psid"]),
                      f"{hx(h.get('pa'))} {_dwords(h.get('words'), 2)}", h.get("config", "-"),
                      f"{hw['id']} {hw['name'] or ''}" if hw else "-",
                      f"{r['viommu']['id']} VMID {r['viommu']['vmid']}" if r["viommu"] else "-",
                      hx(r["vdevice"]),
                      Text("yes" if r["in_sync"] else "NO" if r["in_sync"] is False else "-",
                           style=BAD if r["in_sync"] is False else GOOD))
        parts.append(t)
        for r in v["devices"]:
            if r["note"]:
                parts.append(Text(f"  vSID {r['vsid']:#x}: {r['note']}", style=BAD))
        for x in v["lost"]:
            parts.append(Text(f"  lost: {x['command']} {x['fields']} -> {x['viommu']} "
                              f"({x['smmu']}) never forwarded", style=BAD))
        if v["topology"]:
            parts.append(_rows("guest PCI behind the vSMMU", v["topology"],
                               ["device", "kind", "bdf", "address_space", "role", "severity"]))
            for x in v["topology"]:
                if x["severity"]:
                    parts.append(Text(f"  {x['severity']}: {x['message']} -- fix: {x['fix']}",
                                      style=BAD if x["severity"] == "error" else ""))
    return Group(*parts)


def _vcmd_log(log):
    parts = []
    for r in log:
        f = " ".join(f"{k}={hx(v)}" for k, v in r["fields"].items() if v)
        parts.append(Text(f"guest cmdq[{r['index']}] @ IPA {r['ipa']:#x}: {r['command']} {f}",
                          style="bold" if r["outcome"] == "done" else BAD))
        for i, s in enumerate(r["steps"]):
            line = Text(f"  {i} {s['what']:<22} ", style="bold")
            line.append(s.get("detail") or "", style="" if s.get("ok", True) else BAD)
            parts.append(line)
            if s.get("host_ste"):
                parts.append(Text(f"      host STE {_dwords(s['host_ste'], 8)}", style=NUM))
            if s.get("host_command"):
                hf = " ".join(f"{k}={hx(v)}" for k, v in (s["host_fields"] or {}).items() if v)
                parts.append(Text(f"      as sent: {s['host_command']} {hf}", style=NUM))
    return parts


def _vcmd(d):
    q = d["cmdq"]
    parts = _vcmd_log(d["log"]) or [Text("nothing to consume")]
    parts.append(Text(f"guest cmdq PROD {q['prod']:#x} CONS {q['cons']:#x}"
                      + (f" stopped: {q['error']} (vcmd {d['vsmmu']} resume)" if q["error"]
                         else ""), style=BAD if q["error"] else DIM))
    return Group(*parts)


def _vste(d):
    return Group(Text(f"{d['vsmmu']} guest STE of vSID {d['vsid']:#x} at IPA {d['ipa']:#x} "
                      f"(PA {d['pa']:#x}): {d['config']}", style="bold"),
                 Text(f"  old {_dwords(d['old'], 8)}", style=DIM),
                 Text(f"  new {_dwords(d['new'], 8)}", style=NUM),
                 _rows(None, d["changes"], ["field", "old", "new", "meaning"]),
                 Text(f"not forwarded until the guest issues CMD_CFGI_STE (vcmd {d['vsmmu']} "
                      f"CMD_CFGI_STE StreamID={d['vsid']:#x})", style=DIM))


RENDERERS.update({
    "vsmmu": _vsmmu, "vcmd": _vcmd, "vste": _vste,
    "inject-vsmmu": lambda d: Group(Text(d["what"]), *_vcmd_log(d.get("log") or [])),
})


def _vtd_iommufd(d):
    """`iommufd vtd`: the seed's diagram (container -> S2 HWPT -> devices), then each device's
    decisions."""
    tree = Tree(Text(f"{d['vm']}: iommufd on VT-d", style="bold"))
    for c in d["containers"]:
        ro = sum(1 for a in c["areas"] if not a["writeable"])
        ct = tree.add(Text(f"container {c['policy']}: IOAS {c['ioas']} ({len(c['areas'])} "
                           f"area(s), {ro} read-only; {len(c['reserved'])} reserved range(s))"))
        if not c["s2s"]:
            ct.add(Text("no S2 HWPT", style="red"))
        for s in c["s2s"]:
            cc = "CC, snoop forced" if s["coherent"] else "non-CC"
            st = ct.add(Text(f"S2 HWPT {s['hwpt']} ({cc}) {s['levels']}-level at "
                             f"{s['root']:#x} on {', '.join(s['units'])}"))
            for name in s["devices"]:
                dev = next(x for x in d["devices"] if x["device"] == name)
                nested = f", nested HWPT {dev['nested']}" if dev["nested"] else ""
                st.add(Text(f"{name} ({dev['unit']} {dev['rid']:#06x}, "
                            f"{'CC' if dev['coherent'] else 'non-CC'}"
                            f"{', errata' if dev['errata'] else ''}){nested} DID {dev['did']}"))
    out = [tree]
    for dev in d["devices"]:
        out.append(Text(f"{dev['device']}:", style="bold red" if dev["error"] else "bold"))
        out += [Text(f"  {s}") for s in dev["steps"]]
    return Group(*out)


def _vtd_hwpt_inv(d):
    head = (f"{d['device']} nested HWPT {d['hwpt']} on {d['unit']}: {d['handled']} entry "
            f"handled" + (f", {d['error']}" if d["errno"] else ""))
    rows = [{"index": x["index"], "type": x["type"],
             "fields": " ".join(f"{k}={v:#x}" for k, v in (x.get("fields") or {}).items()
                                if not k.startswith("TYPE")),
             "removed": x["removed"], "note": x["note"]} for x in d["log"]]
    return Group(Text(head, style="bold red" if d["errno"] else "bold"),
                 _rows(None, rows, ["index", "type", "fields", "removed", "note"]))


RENDERERS.update({"vtd-iommufd": _vtd_iommufd, "vtd-hwpt-inv": _vtd_hwpt_inv})
