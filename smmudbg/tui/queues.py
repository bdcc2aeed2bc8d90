"""The event queue, the command queue (with what each command did, dropped invalidations
included) and the IOTLB / configuration cache of one SMMU: `events`, `cmdq`, `tlb`,
`cfgcache` as tables. On an Intel VT-d unit the same tabs show its fault records, its
invalidation queue and its IOTLB, context-cache and PASID-cache (the commands' VT-d results,
as the REPL renders them)."""
from __future__ import annotations

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from .fmt import hx

_CLASS = {0: "CD", 1: "TTD", 2: "IN"}


class _SmmuTables(VerticalScroll):
    def __init__(self, bridge, **kw):
        super().__init__(**kw)
        self.bridge = bridge
        self.smmu: str | None = None

    def show(self, smmu: str) -> None:
        self.smmu = smmu
        self.refresh_view()

    def refresh_view(self) -> None:           # pragma: no cover - overridden
        raise NotImplementedError

    def _vtd(self, head: str, *results) -> bool:
        """Show VT-d results (kind vtd-*) in the head, the tables empty; False if not VT-d."""
        rs = [r for r in results if r is not None]
        if not rs or not all(r["kind"].startswith("vtd-") for r in rs):
            return False
        for t in self.query(DataTable):
            t.clear()
        from rich.console import Group

        from ..render import render         # (after the first frame: see app._load)
        self.query_one(head, Static).update(Group(*(render(r) for r in rs)))
        return True


class EventsView(_SmmuTables):
    def compose(self):
        yield Static("", id="ev-head")
        yield DataTable(id="ev-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self):
        self.query_one(DataTable).add_columns("#", "event", "SID", "SSID", "input", "rw",
                                              "S2", "class", "IPA/fetch")

    def refresh_view(self) -> None:
        if self.smmu is None:
            return
        r = self.bridge.try_query(f"events {self.smmu}")
        if self._vtd("#ev-head", r):
            return
        t = self.query_one(DataTable)
        t.clear()
        if r is None:
            return
        self.query_one("#ev-head", Static).update(Text(
            f"{self.smmu} event queue: PROD {hx(r['prod'])} CONS {hx(r['cons'])}, "
            f"{len(r['entries'])} unread" + ("  OVERFLOW" if r["overflow"] else "")))
        for e in r["entries"]:
            f = e["fields"]
            extra = e.get("fetch_addr") if e.get("fetch_addr") is not None else \
                (e.get("ipa") if f.get("S2") else None)
            t.add_row(str(e["index"]), Text(e["event"], style="bold red"),
                      hx(f.get("StreamID")), hx(f.get("SubstreamID")) if f.get("SSV") else "-",
                      hx(f.get("InputAddr")), ("r" if f.get("RnW") else "w") if "RnW" in f
                      else "-", str(f["S2"]) if "S2" in f else "-",
                      _CLASS.get(f.get("CLASS"), "-"), hx(extra))


class CmdqView(_SmmuTables):
    def compose(self):
        yield Static("", id="cq-head")
        yield DataTable(id="cq-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self):
        self.query_one(DataTable).add_columns("#", "command", "fields", "state", "effect")

    def refresh_view(self) -> None:
        if self.smmu is None:
            return
        r = self.bridge.try_query(f"cmdq {self.smmu} history=256")
        if self._vtd("#cq-head", r):
            return
        t = self.query_one(DataTable)
        t.clear()
        if r is None:
            return
        self.query_one("#cq-head", Static).update(Text(
            f"{self.smmu} command queue: PROD {hx(r['prod'])} CONS {hx(r['cons'])}"
            + (f"  GERROR {' '.join(r['gerror'])}" if r["gerror"] else "")
            + (f"  dropping next {r['drop_budget']} invalidations" if r["drop_budget"]
               else "")))
        for e in r["entries"]:
            fields = " ".join(f"{k}={hx(v)}" for k, v in (e.get("fields") or {}).items()
                              if k != "Opcode")
            state = e.get("state") or ""
            bad = state in ("dropped", "error") or e.get("error")
            t.add_row(str(e.get("index", "")), e.get("command") or "?", fields,
                      Text(state, style="bold red" if bad else ""),
                      Text(str(e.get("error") or e.get("effect") or ""),
                           style="red" if bad else ""))


class CacheView(_SmmuTables):
    def compose(self):
        yield Static("", id="tlb-head")
        yield DataTable(id="tlb-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="cfg-head")
        yield DataTable(id="cfg-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self):
        self.query_one("#tlb-table", DataTable).add_columns(
            "kind", "VMID", "ASID", "input", "size", "output", "IPA", "lvl", "perm")
        self.query_one("#cfg-table", DataTable).add_columns("what", "SID", "SSID", "at",
                                                            "device", "state")

    def refresh_view(self) -> None:
        if self.smmu is None:
            return
        tlb = self.bridge.try_query(f"tlb {self.smmu}")
        cfg = self.bridge.try_query(f"cfgcache {self.smmu}")
        if self._vtd("#tlb-head", tlb, cfg):
            self.query_one("#cfg-head", Static).update("")
            return
        t = self.query_one("#tlb-table", DataTable)
        c = self.query_one("#cfg-table", DataTable)
        t.clear()
        c.clear()
        if tlb is not None:
            st = tlb["stats"]
            self.query_one("#tlb-head", Static).update(Text(
                f"{self.smmu} IOTLB: {len(tlb['entries'])} entries, "
                + " ".join(f"{k}={v}" for k, v in st.items() if k != "entries")))
            for e in tlb["entries"]:
                lvl = "/".join(str(e[k]) for k in ("s1level", "s2level")
                               if e.get(k) is not None)
                t.add_row(e["kind"], hx(e.get("vmid")), hx(e.get("asid")), hx(e["in_base"]),
                          hx(e["size"]), hx(e["out_base"]), hx(e.get("ipa_base")), lvl,
                          f"{e.get('perm_priv')}/{e.get('perm_unpriv')}")
        if cfg is not None:
            self.query_one("#cfg-head", Static).update(Text(
                f"configuration cache: {len(cfg['stes'])} STEs, {len(cfg['cds'])} CDs"))
            for e in cfg["stes"]:
                c.add_row("STE", hx(e["sid"]), "-", hx(e["addr"]), e.get("device") or "-",
                          Text("STALE" if e["stale"] else "same as memory",
                               style="bold red" if e["stale"] else ""))
            for e in cfg["cds"]:
                c.add_row("CD", hx(e["sid"]), str(e["ssid"]), hx(e["pa"]), "-",
                          Text("STALE" if e["stale"] else "same as memory",
                               style="bold red" if e["stale"] else ""))
