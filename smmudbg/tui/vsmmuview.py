"""A VM's vSMMU as `vsmmu [VM|VSMMU]` returns it: the guest side (vSID, guest device, the guest
STE and CD read from guest RAM) beside the host side (the physical device and StreamID, the host
STE the kernel wrote, the nested HWPT, the vIOMMU's VMID), one row per vSID, with whether the
host STE is what the guest STE makes. Enter on a row opens the physical stream."""
from __future__ import annotations

from rich.text import Text
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from .fmt import hx

COLUMNS = ("vSID", "guest", "guest STE", "CD", "|", "device", "pSID", "host STE", "VMID",
           "sync", "HWPT", "vSMMU")


def head_text(vsmmus: list) -> Text:
    t = Text()
    for i, v in enumerate(vsmmus):
        if i:
            t.append("\n")
        t.append(f"{v['name']}", style="bold")
        t.append(f" of {v['vm']}: {'accelerated' if v['accel'] else 'emulated'}, "
                 f"SMMUEN={int(v['enabled'])} GBPA={v['gbpa']}; ")
        t.append("; ".join(f"vIOMMU {x['name'] or x['id']} on {x['smmu']} VMID {x['vmid']}"
                           f" (S2 {x['parent']})" for x in v["viommus"]) or "no vIOMMU")
        c, e = v["cmdq"], v["evtq"]
        t.append(f"\n  cmdq PROD {hx(c['prod'])} CONS {hx(c['cons'])}"
                 + (f" stopped: {c['error']}" if c["error"] else "")
                 + f", evtq PROD {hx(e['prod'])} CONS {hx(e['cons'])}"
                 + (f", GERROR {', '.join(v['gerror'])}" if v["gerror"] else "")
                 + (f", {len(v['lost'])} lost invalidation(s)" if v["lost"] else ""),
                 style="bold red" if c["error"] or v["lost"] else "dim")
    return t


def row_cells(v: dict, r: dict) -> list:
    g, h, cd, hw = r["guest_ste"] or {}, r["host_ste"] or {}, r["guest_cd"], r["hwpt"]
    cdt = "-" if cd is None else (cd["problem"] or f"ASID {hx(cd['asid'])}")
    sync = Text("yes" if r["in_sync"] else "NO" if r["in_sync"] is False else "-",
                style="bold red" if r["in_sync"] is False else "green")
    # the entries' addresses are in the detail box: the row stays narrow
    return [hx(r["vsid"]), r["guest_device"] or "-", g.get("config", "-"), cdt, "|",
            r["device"] or "-", hx(r["psid"]), h.get("config", "-"), hx(h.get("s2vmid")), sync,
            f"{hw['id']} {hw['name'] or ''}".strip() if hw else "-", v["name"]]


class VsmmuView(Vertical):
    class Chosen(Message):
        """Enter on a row: the physical stream behind the vSID."""
        def __init__(self, smmu: str, sid: int):
            super().__init__()
            self.smmu, self.sid = smmu, sid

    def __init__(self, bridge, **kw):
        super().__init__(**kw)
        self.bridge = bridge
        self.target: str | None = None      # a vSMMU or VM name (None: every vSMMU)
        self.vsid: int | None = None        # the row in focus
        self.rows: list[tuple[dict, dict]] = []

    def compose(self):
        yield Static("", id="vs-head")
        yield DataTable(id="vs-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="vs-detail")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*COLUMNS)
        self.refresh_view()

    def show(self, target: str | None, vsid: int | None = None) -> None:
        self.target, self.vsid = target, vsid
        self.refresh_view()

    def refresh_view(self) -> None:
        head = self.query_one("#vs-head", Static)
        t = self.query_one(DataTable)
        t.clear()
        self.rows = []
        r = self.bridge.try_query("vsmmu" + (f" {self.target}" if self.target else ""))
        if r is None and self.target:           # gone (goto, load): every vSMMU
            self.target = None
            r = self.bridge.try_query("vsmmu")
        if r is None:
            head.update(Text("this system has no vSMMU (a [[vsmmu]] table models one)",
                             style="dim"))
            self.query_one("#vs-detail", Static).update("")
            return
        head.update(head_text(r["vsmmus"]))
        cursor = None
        for v in r["vsmmus"]:
            for d in v["devices"]:
                if d["vsid"] == self.vsid and cursor is None:
                    cursor = len(self.rows)
                self.rows.append((v, d))
                t.add_row(*row_cells(v, d))
        if self.rows:
            t.move_cursor(row=cursor or 0)
        self._detail(cursor or 0)

    def _detail(self, i: int) -> None:
        box = self.query_one("#vs-detail", Static)
        if not self.rows:
            box.update("")
            return
        v, d = self.rows[i]
        g, h = d["guest_ste"] or {}, d["host_ste"] or {}
        t = Text()
        t.append(f"vSID {hx(d['vsid'])} ({d['guest_device'] or '?'}) -> {d['device']} "
                 f"{d['smmu']} pSID {hx(d['psid'])}", style="bold")
        t.append(f"\nguest STE @IPA {hx(g.get('ipa'))}: {g.get('config', '-')}, "
                 f"S1ContextPtr {hx(g.get('s1contextptr'))}; host STE @PA {hx(h.get('pa'))}: "
                 f"{h.get('config', '-')}, S2VMID {hx(h.get('s2vmid'))}, S2TTB "
                 f"{hx(h.get('s2ttb'))}")
        if d["note"]:
            t.append(f"\n{d['note']}", style="bold red" if d["in_sync"] is False else "")
        box.update(t)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if 0 <= event.cursor_row < len(self.rows):
            self.vsid = self.rows[event.cursor_row][1]["vsid"]
            self._detail(event.cursor_row)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if 0 <= event.cursor_row < len(self.rows):
            _v, d = self.rows[event.cursor_row]
            if d["smmu"] and d["psid"] is not None:
                event.stop()
                self.post_message(self.Chosen(d["smmu"], d["psid"]))
