"""A GICv3 ITS as `its [ITS] [device=N]` returns it: registers, the device and collection
tables GITS_BASER<n> describe, collections, and every EventID -> LPI mapping (the ITTs), with
the PCI device each DeviceID belongs to (`iort`). Focusing a DeviceID reads its DTE (the ITT
address and size) and marks its mappings."""
from __future__ import annotations

from rich.text import Text
from textual.containers import VerticalScroll
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
    """One DeviceID's DTE read (`its device=N`): Valid, Size, ITT_addr."""
    t = Text()
    t.append(f"DeviceID {hx(dev['device_id'])}", style="bold")
    if name:
        t.append(f" ({name})")
    for s in dev["steps"]:
        f = s["fields"]
        t.append(f"\n{s['what']}[{hx(s['index'])}] @ {hx(s['address'])} = {hx(s['raw'])}: ")
        t.append(s["outcome"], style="green" if s["ok"] else "bold red")
        # the fields as the command decodes them (their meaning is the layout's, not ours)
        if f:
            t.append("  " + " ".join(f"{k}={hx(v)}" for k, v in f.items()))
    return t


class ItsView(VerticalScroll):
    def __init__(self, bridge, **kw):
        super().__init__(**kw)
        self.bridge = bridge
        self.its: str | None = None            # the ITS shown (None: the only one)
        self.device: int | None = None          # the DeviceID in focus
        self.result: dict | None = None
        self.names: dict[int, str] = {}

    def compose(self):
        yield Static("", id="its-head")
        yield Static("", id="its-dte")
        yield DataTable(id="its-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("DeviceID", "device", "EventID", "LPI",
                                              "ICID", "redistributor")
        self.refresh_view()

    def show(self, name: str | None = None, device: int | None = None) -> None:
        if name is not None:
            self.its = name
        self.device = device
        self.refresh_view()

    def focus_device(self, device_id: int | None) -> None:
        """Show the ITS whose device table maps this DeviceID, its DTE and mappings."""
        for n in its_names(self.bridge):
            r = self.bridge.try_query(f"its {n} device={device_id}")
            if r and r["device"] and any(s["what"] == "DTE" and s["ok"]
                                         for s in r["device"]["steps"]):
                self.show(n, device_id)
                return
        self.show(self.its, device_id)

    def refresh_view(self) -> None:
        head = self.query_one("#its-head", Static)
        target = f"its {self.its}" if self.its else "its"
        try:
            r = self.bridge.query(target)
        except Exception as e:
            head.update(Text(str(e), style="dim"))
            self.result = None
            self.query_one("#its-dte", Static).update("")
            self.query_one(DataTable).clear()
            return
        self.result, self.its = r, r["name"]
        self.names = device_names(self.bridge)
        head.update(head_text(r))
        dte = self.query_one("#its-dte", Static)
        d = self.bridge.try_query(f"its {self.its} device={self.device}") \
            if self.device is not None else None
        dte.update(dte_text(d["device"], self.names.get(self.device)) if d and d["device"]
                   else Text("Select a device (tree) for its DTE and ITT.", style="dim"))
        dte.display = True
        t = self.query_one(DataTable)
        t.clear()
        cursor = None
        for i, m in enumerate(r["mappings"]):
            mine = m["device_id"] == self.device
            if mine and cursor is None:
                cursor = i
            st = "bold" if mine else ""
            t.add_row(Text(hx(m["device_id"]), style=st),
                      Text(self.names.get(m["device_id"], "-"), style=st),
                      str(m["event_id"]), str(m["intid"]), str(m["icid"]), str(m["target"]))
        if cursor is not None:
            t.move_cursor(row=cursor)
