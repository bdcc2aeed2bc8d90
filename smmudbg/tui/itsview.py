"""A GICv3 ITS as `its [ITS] [device=N]` returns it: one summary line (r: the registers, the
tables GITS_BASER<n> describe, collections and pending LPIs), the DTE of the DeviceID in focus,
and one of its tables as rows: the device table (valid DTEs), the ITT of the DeviceID in focus
(valid ITEs), the collection table (valid CTEs), or every EventID -> LPI mapping, with the PCI
device each DeviceID belongs to (`iort`). t (or a click on the bar) picks the table; the MSI
stepper jumps here with its DTE, ITE or CTE row in focus."""
from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Static

from .fmt import hx


def its_names(bridge) -> list[str]:
    """The ITSs of the system, from the `its` command's completion (the registry's list)."""
    return [w for w in bridge.complete("its ") if not w.endswith("=")]


def device_names(bridge) -> dict[int, str]:
    """DeviceID -> PCI device name, through `iort` (empty when there is no IORT)."""
    r = bridge.try_query("iort")
    return {d["device_id"]: d["device"] for d in (r or {}).get("devices", [])
            if d["device_id"] is not None}


def head_text(r: dict) -> Text:
    t = Text()
    t.append(f"ITS {r['name']}", style="bold")
    t.append(f" @ {hx(r['base'])}  GITS_TRANSLATER {hx(r['translater'])}  ")
    t.append("enabled" if r["enabled"] else "disabled (GITS_CTLR.Enabled=0)",
             style="green" if r["enabled"] else "bold red")
    if r["stalled"]:
        t.append("  STALLED", style="bold red")
    t.append(f"  {r['commands']} commands")
    if r["errors"]:
        t.append(f", {len(r['errors'])} failed: ", style="bold red")
        t.append("; ".join(f"{e['name']} {e['error']}" for e in r["errors"][:3]),
                 style="red")
    t.append("\n")
    regs = [(n, v) for n, v in r["registers"].items()
            if not (n.startswith("GITS_BASER") and not v)]
    t.append("  ".join(f"{n[5:]}={hx(v)}" for n, v in regs), style="dim")
    for tb in r["tables"]:
        t.append(f"\nBASER{tb['n']} {tb['kind']}: {hx(tb['base'])}, {tb['pages']} x "
                 f"{tb['page_size'] >> 10}K pages, {tb['entry_size']}-byte entries, "
                 f"{'2-level' if tb['indirect'] else 'flat'}, {tb['capacity']} IDs"
                 + ("" if tb["valid"] else " (not Valid)"))
    t.append("\ncollections: " + (", ".join(f"ICID {c['icid']} -> redistributor "
                                             f"{c['target']}" for c in r["collections"])
                                   or "none"))
    if r["pending"]:
        t.append("\npending LPIs: " + "; ".join(
            f"redistributor {p['target']}: {', '.join(map(str, p['intids'][:8]))}"
            + (" ..." if len(p["intids"]) > 8 else "") for p in r["pending"]), style="yellow")
    return t


def dte_text(dev: dict, name: str | None) -> Text:
    """One DeviceID's DTE read (`its device=N`) in one line: the last read (the DTE, or the
    level-1 entry that failed), with its fields."""
    t = Text()
    t.append(f"DeviceID {hx(dev['device_id'])}", style="bold")
    if name:
        t.append(f" ({name})")
    if dev["steps"]:
        s = dev["steps"][-1]
        t.append(f" {s['what']} @ {hx(s['address'])} = {hx(s['raw'])}: ")
        t.append(s["outcome"], style="green" if s["ok"] else "bold red")
        # the fields as the command decodes them (their meaning is the layout's, not ours)
        if s["fields"]:
            t.append("  " + " ".join(f"{k}={hx(v)}" for k, v in s["fields"].items()))
    return t


def summary_text(r: dict) -> Text:
    """The ITS in one line: where, state, commands, collections, pending LPIs."""
    t = Text()
    t.append(f"ITS {r['name']}", style="bold")
    t.append(f" @{hx(r['base'])} ")
    t.append("enabled" if r["enabled"] else "disabled",
             style="green" if r["enabled"] else "bold red")
    if r["stalled"]:
        t.append(" STALLED", style="bold red")
    t.append(f", {r['commands']} cmds")
    if r["errors"]:
        t.append(f" ({len(r['errors'])} failed)", style="bold red")
    npend = sum(len(p["intids"]) for p in r["pending"])
    if npend:
        t.append(f", {npend} LPI(s) pending", style="yellow")
    t.append("  (r: details)", style="dim")
    return t


# The tables the panel shows, in the order the hardware reads them (the mappings: all of it).
KINDS = {"devices": "Devices", "itt": "ITT", "collections": "Collections",
         "mappings": "Mappings"}
COLUMNS = {"devices": ("DeviceID", "device", "DTE @", "DTE", "Size", "ITT @", "events"),
           "itt": ("EventID", "ITE @", "ITE", "INTID", "ICID", "target"),
           "collections": ("ICID", "CTE @", "CTE", "RDbase", "target"),
           "mappings": ("DeviceID", "device", "EventID", "LPI", "ICID", "redistributor")}


class KindBar(Static):
    """Which table is shown: one line, each name clickable (t cycles; the footer says so)."""
    class Pick(Message):
        def __init__(self, kind: str):
            super().__init__()
            self.kind = kind

    spans: list = []

    def show(self, current: str, device: int | None) -> None:
        t = Text()
        self.spans = []
        for k, label in KINDS.items():
            if k == "itt" and device is not None:
                label = f"ITT {hx(device)}"
            start = len(t)
            t.append(f" {label} ", style=Style(reverse=k == current, bold=k == current))
            self.spans.append((start, len(t), k))
            t.append(" ")
        self.update(t)

    def on_click(self, event) -> None:
        at = event.get_content_offset(self)
        if at is None:
            return
        kind = next((k for a, b, k in self.spans if a <= at.x < b), None)
        if kind is not None:
            self.post_message(self.Pick(kind))


class ItsView(Vertical):
    BINDINGS = [Binding("t", "next_kind", "next ITS table"),
                Binding("r", "details", "ITS details")]

    def __init__(self, bridge, **kw):
        super().__init__(**kw)
        self.bridge = bridge
        self.its: str | None = None            # the ITS shown (None: the only one)
        self.device: int | None = None          # the DeviceID in focus
        self.kind = "mappings"                  # the table shown
        self.mark: int | None = None            # the row in focus: DeviceID, EventID, ICID
        self.result: dict | None = None
        self.names: dict[int, str] = {}
        self.keys: list = []                    # per table row: what it is (for the mark)
        self.columns: str | None = None         # the table whose columns the DataTable has

    def compose(self):
        yield Static("", id="its-head")
        yield Static("", id="its-dte")
        with VerticalScroll(id="its-more-box"):
            yield Static("", id="its-more")
        yield KindBar("", id="its-kinds")
        yield DataTable(id="its-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one("#its-more-box").display = False
        self.refresh_view()

    def show(self, name: str | None = None, device: int | None = None) -> None:
        if name is not None:
            self.its = name
        self.device = device
        self.mark = None
        self.refresh_view()

    def jump(self, name: str | None, kind: str, device: int | None,
             index: int | None) -> None:
        """Show one table with one row in focus (the MSI stepper's DTE/ITE/CTE steps):
        kind devices (index: DeviceID), itt (of device; index: EventID), collections (ICID)."""
        if name is not None:
            self.its = name
        self.kind, self.device, self.mark = kind, device, index
        self.refresh_view()
        self.query_one(DataTable).focus()

    def focus_device(self, device_id: int | None) -> None:
        """Show the ITS whose device table maps this DeviceID, its DTE and mappings."""
        for n in its_names(self.bridge):
            r = self.bridge.try_query(f"its {n} device={device_id}")
            if r and r["device"] and any(s["what"] == "DTE" and s["ok"]
                                         for s in r["device"]["steps"]):
                self.show(n, device_id)
                return
        self.show(self.its, device_id)

    def action_next_kind(self) -> None:
        ks = list(KINDS)
        self.kind = ks[(ks.index(self.kind) + 1) % len(ks)]
        self.mark = None
        self.refresh_view()

    def on_kind_bar_pick(self, event: KindBar.Pick) -> None:
        self.kind, self.mark = event.kind, None
        self.refresh_view()

    def action_details(self) -> None:
        box = self.query_one("#its-more-box")
        box.display = not box.display

    def refresh_view(self) -> None:
        head = self.query_one("#its-head", Static)
        t = self.query_one(DataTable)
        target = f"its {self.its}" if self.its else "its"
        try:
            r = self.bridge.query(target)
        except Exception as e:
            head.update(Text(str(e), style="dim"))
            self.result = None
            for w in ("#its-dte", "#its-more"):
                self.query_one(w, Static).update("")
            self.query_one(KindBar).display = False
            t.clear(columns=True)
            self.columns = None
            return
        self.result, self.its = r, r["name"]
        self.query_one(KindBar).display = True
        self.names = device_names(self.bridge)
        head.update(summary_text(r))
        self.query_one("#its-more", Static).update(head_text(r))
        if self.device is None and r["dtes"] and self.kind == "itt":
            self.device = r["dtes"][0]["index"]
        d = self.bridge.try_query(f"its {self.its} device={self.device}") \
            if self.device is not None else None
        self.query_one("#its-dte", Static).update(
            dte_text(d["device"], self.names.get(self.device)) if d and d["device"]
            else Text("Select a device (tree) for its DTE and ITT.", style="dim"))
        rows = self._rows(r, d)
        self.query_one(KindBar).show(self.kind, self.device)
        if self.columns != self.kind:      # new columns only with another table
            t.clear(columns=True)
            t.add_columns(*COLUMNS[self.kind])
            self.columns = self.kind
        else:
            t.clear()
        self.keys = []
        cursor = None
        for key, mine, cells in rows:
            if mine and cursor is None:
                cursor = len(self.keys)
            self.keys.append(key)
            st = "bold" if mine else ""
            t.add_row(*(Text(c, style=st) if isinstance(c, str) else c for c in cells))
        if cursor is not None:
            t.move_cursor(row=cursor)

    def _rows(self, r: dict, d: dict | None) -> list[tuple]:
        """(key, in focus, cells) of the table shown."""
        out = []
        if self.kind == "devices":
            for e in r["dtes"]:
                f = e["fields"]
                mine = e["index"] == (self.mark if self.mark is not None else self.device)
                out.append((e["index"], mine, [
                    hx(e["index"]), self.names.get(e["index"], "-"), hx(e["address"]),
                    hx(e["raw"]), str(f.get("Size")), hx(e.get("itt")), str(e.get("events"))]))
        elif self.kind == "itt":
            targets = {(m["device_id"], m["event_id"]): m["target"] for m in r["mappings"]}
            for e in (d or {}).get("itt") or []:
                f = e["fields"]
                out.append((e["index"], e["index"] == self.mark, [
                    str(e["index"]), hx(e["address"]), hx(e["raw"]), str(f.get("INTID")),
                    str(f.get("ICID")), str(targets.get((self.device, e["index"]), "-"))]))
        elif self.kind == "collections":
            live = {c["icid"] for c in r["collections"]}
            for e in r["ctes"]:
                rd = e["fields"].get("RDbase")
                out.append((e["index"], e["index"] == self.mark, [
                    str(e["index"]), hx(e["address"]) if e["address"] is not None
                    else "in the ITS", hx(e["raw"]), str(rd),
                    Text(str(rd)) if e["index"] in live else Text("no such PE",
                                                                   style="bold red")]))
        else:
            for m in r["mappings"]:
                mine = m["device_id"] == self.device and (self.mark is None
                                                          or m["event_id"] == self.mark)
                out.append(((m["device_id"], m["event_id"]), mine, [
                    hx(m["device_id"]), self.names.get(m["device_id"], "-"),
                    str(m["event_id"]), str(m["intid"]), str(m["icid"]), str(m["target"])]))
        return out
