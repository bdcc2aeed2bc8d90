"""Rich rendering of command Results for terminals: tables, bit views, walk steps.

Front ends call render(result) to get a rich renderable, or render_text(result, width) for a
plain string. Renderers read only the Result (plus the static field tables for bit positions);
they never look at the model.
"""
from __future__ import annotations

import io

from rich.console import Console, Group
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
           "hits", "misses", "entries", "dword", "stores"}


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
    else:
        line = Text("-> PA ", style=GOOD)
        line.append(f"{d['pa']:#x}", style="bold " + GOOD)
        if d["ipa"] is not None:
            line.append(f"   (IPA {d['ipa']:#x})")
        line.append(f"   perm {d['perm']}" + ("   IOTLB hit" if d["hit"] else ""))
        parts.append(line)
    return Group(*parts)


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
        else:
            n = f" x{r['count']}" if r["count"] > 1 else ""
            txt = Text(f"{r['in']:#x}-{r['end']:#x} -> {r['out']:#x}-{r['out_end']:#x}  ")
            txt.append(f"L{r['level']} {r['kind']}{n}  {r['perm']}"
                       + ("" if r["af"] else "  AF=0"), style=GOOD if r["af"] else BAD)
            parent.add(txt)
    if d.get("truncated"):
        tree.add(Text("... (limit reached: limit=N for more, or addr=ADDRESS for one "
                      "address)", style=DIM))
    return tree


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
                t.add_row(e["kind"], key, e["problem"], Text(e["fix"], style="bold"))
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
            t.add_row(a["usage"], a["help"] + (f" (default {a['default']})"
                                               if a["default"] not in (None, "") else ""))
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
    title = d["what"] + (f" {d['smmu']}" if d.get("smmu") else "") + \
        (f" SID {d['sid']:#x}" if d.get("sid") is not None else "") + \
        (f" SSID {d['ssid']}" if d.get("ssid") is not None else "")
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
    parts = [Text(d.get("message", ""), style="bold"), _kv(pairs)]
    for w in d.get("warnings") or []:
        parts.append(Text(f"warning: {w}", style="yellow"))
    for g in d.get("gerror") or []:
        parts.append(Text(f"active global error: {g}", style=BAD))
    if d.get("streams"):
        parts.append(_rows("streams", d["streams"], list(d["streams"][0])))
    return Group(*parts)


_CLASS = {0: "CD", 1: "TT", 2: "IN", 3: "-"}


def _events(d):
    head = Text(f"{d['smmu']} event queue @ {d['base']:#x}, 2^{d['log2size']} entries, "
                f"PROD {d['prod']:#x} CONS {d['cons']:#x}"
                + ("  OVERFLOW" if d.get("overflow") else ""), style="bold")
    t = _table("#", "event", "StreamID", "SSID", "InputAddr", "access", "S2", "CLASS",
               "IPA / FetchAddr")
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
        t.add_row(str(e["index"]), Text(e["event"], style=BAD), hx(f.get("StreamID")),
                  hx(f["SubstreamID"]) if f.get("SSV") else "-", hx(f.get("InputAddr")), acc,
                  str(f["S2"]) if "S2" in f else "-", _CLASS.get(f.get("CLASS"), "-")
                  if "CLASS" in f else "-", hx(extra))
    return Group(head, t) if d["entries"] else Group(head, Text("no events", style=DIM))


RENDERERS = {
    "events": _events,
    "import": _import,
    "goto": lambda d: Text(f"at {d['position']} of {d['length']} (was at {d['from']}; "
                           f"re-ran {d['reran']} commands)"),
    "walk": _walk,
    "ste": lambda d: _ste_cd(d, "STE"),
    "cd": lambda d: _ste_cd(d, "CD"),
    "pt": _pt,
    "pt-lookup": _pt_lookup,
    "mem": _mem,
    "check": _check,
    "help-index": _help_index,
    "help": _help,
    "set": _set,
    "set-desc": _set,
    "set-reg": _set,
    "topology": _topology,
    "register": lambda d: Group(Text(f"{d['name']} = {d['value']:#x}", style="bold"),
                                _fields(d["fields"])),
    "registers": lambda d: _rows(f"{d['smmu']} registers", d["registers"],
                                 ["name", "offset", "value"]),
    "strtab": lambda d: Group(Text(f"{d['smmu']} stream table {d['format']} @ {d['base']:#x}, "
                                   f"2^{d['log2size']} entries"
                                   + (f", split {d['split']}" if d["split"] else ""),
                                   style="bold"),
                              _rows(None, d["entries"], ["sid", "device", "config", "addr",
                                                         "s2vmid", "s1contextptr", "s1cdmax",
                                                         "s2ttb"]),
                              Text("... more: strtab SMMU sid=N" if d["more"] else "")),
    "tlb": lambda d: Group(_rows(f"{d['smmu']} IOTLB", d["entries"],
                                 ["kind", "vmid", "asid", "in_base", "size", "out_base",
                                  "ipa_base", "s1level", "s2level", "perm_priv", "perm_unpriv"]),
                           Text(" ".join(f"{k}={v}" for k, v in d["stats"].items()),
                                style=DIM)),
    "history": lambda d: _rows(None, [dict(r, n=(">" if r["current"] else " ") + str(r["n"]))
                                      for r in d["entries"]], ["n", "command", "ok"]),
}


def render(result):
    """A rich renderable for a Result (smmudbg.results.Result or its to_json() dict).

    A renderer that fails raises: a result it cannot show is a bug to find in the tests
    (tests/test_render.py renders every command's result), not something to hide."""
    d = result.to_json() if hasattr(result, "to_json") else result
    return RENDERERS.get(d.get("kind"), _generic)(d)


def render_text(result, width: int = 120, color: bool = False) -> str:
    """The Result rendered to a string (ANSI colours only if color)."""
    buf = io.StringIO()
    con = Console(file=buf, width=width, color_system="standard" if color else None,
                  force_terminal=color, highlight=False, soft_wrap=False)
    con.print(render(result))
    return buf.getvalue()


def error_text(message: str) -> Text:
    return Text(message, style=BAD)
