"""iommufd objects as the `iommufd` command returns them: which HWPT each device uses and why
(`iommufd explain`, with the S2 sharing decision), then the IOAS, HWPTs, vIOMMUs and vDEVICEs.
Focusing a device marks its row and every object that names it."""
from __future__ import annotations

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from .fmt import hx

VIEWS = ("ioas", "hwpt", "viommu", "vdevice")


def objects(bridge) -> dict[str, list] | None:
    """{view: rows} of every object kind; None when the system has no iommufd objects."""
    out = {}
    for v in ("explain", *VIEWS):
        r = bridge.try_query(f"iommufd {v}")
        if r is None:
            return None
        out[v] = r["rows"]
        if v == "explain":
            out["plan"] = r["plan"]
    return out


def _name(o: dict) -> str:
    return f"{o['id']}" + (f" {o['name']}" if o.get("name") else "")


def object_lines(objs: dict, device: str | None) -> list[tuple[str, bool]]:
    """(line, names the focused device) for every object, kind by kind."""
    hw = {h["id"]: h for h in objs["hwpt"]}
    out = []
    for a in objs["ioas"]:
        out.append((f"IOAS {_name(a)}: " + ", ".join(
            f"IOVA {hx(m['iova'])}+{hx(m['length'])} -> PA {hx(m['pa'])}"
            for m in a["areas"]) + f"; HWPTs {', '.join(map(str, a['hwpts'])) or '-'}", False))
        for rv in a["reserved"]:
            out.append((f"    reserved {hx(rv['start'])}-{hx(rv['last'])}: {rv['owner']}",
                        bool(device) and rv["owner"].split()[0] == device))
    for h in objs["hwpt"]:
        if h["kind"] == "nested":
            what = (f"nested on vIOMMU {h['viommu']}, vSTE Config={h['config']}, "
                    f"VMID {h['vmid']}")
        else:
            what = ("nesting parent" if h["nest_parent"] else "paging") + \
                f" S{h['stage'] or 2} on IOAS {h['ioas']}, VMID {hx(h['vmid'])}, root " \
                f"{hx(h['root'])}" + (", coherent" if h["enforce_cache_coherency"] else "")
        out.append((f"HWPT {_name(h)} ({h['smmu']}): {what}; devices "
                    f"{', '.join(h['devices']) or '-'}", device in h["devices"]))
    for v in objs["viommu"]:
        parent = hw.get(v["parent"], {})
        out.append((f"vIOMMU {_name(v)} ({v['smmu']}): parent HWPT {v['parent']}"
                    + (f" {parent['name']}" if parent.get("name") else "")
                    + f", VMID {v['vmid']}; vDEVICEs "
                    + (", ".join(f"{d} vSID {hx(s)}" for s, d in v["vdevices"]) or "-"),
                    any(d == device for _, d in v["vdevices"])))
    for d in objs["vdevice"]:
        out.append((f"vDEVICE {_name(d)}: {d['device']} on vIOMMU {d['viommu']}, vSID "
                     f"{hx(d['vsid'])} -> StreamID {hx(d['psid'])}", d["device"] == device))
    return out


class IommufdView(VerticalScroll):
    def __init__(self, bridge, **kw):
        super().__init__(**kw)
        self.bridge = bridge
        self.device: str | None = None          # the device in focus
        self.objs: dict | None = None
        self.lines: list[tuple[str, bool]] = []

    def compose(self):
        yield Static("", id="fd-head")
        yield DataTable(id="fd-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="fd-objects")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("device", "SID", "HWPT", "S2", "shared with",
                                              "why")
        self.refresh_view()

    def focus_device(self, device: str | None) -> None:
        self.device = device
        self.refresh_view()

    def refresh_view(self) -> None:
        head = self.query_one("#fd-head", Static)
        t = self.query_one(DataTable)
        t.clear()
        self.objs = objects(self.bridge)
        if self.objs is None:
            head.update(Text("this system has no iommufd objects (add an [iommufd] table)",
                             style="dim"))
            self.query_one("#fd-objects", Static).update("")
            self.lines = []
            return
        plan = self.objs["plan"] or {"s2s": [], "choices": []}
        ht = Text("which HWPT each device uses, and why", style="bold")
        for label, devs in plan["s2s"]:
            ht.append(f"\nS2 plan: {label} for {', '.join(devs)}")
        head.update(ht)
        names = {h["id"]: h.get("name") for h in self.objs["hwpt"]}
        cursor = None
        for i, e in enumerate(self.objs["explain"]):
            mine = e["device"] == self.device
            if mine:
                cursor = i
            st = "bold" if mine else ""
            t.add_row(Text(e["device"], style=st), hx(e["sid"]),
                      f"{e['hwpt']}" + (f" {names[e['hwpt']]}" if names.get(e["hwpt"]) else ""),
                      f"{e['s2']}" + (f" {names[e['s2']]}" if names.get(e["s2"]) else ""),
                      ", ".join(e["shared_with"]) or "-", e["reason"])
        if cursor is not None:
            t.move_cursor(row=cursor)
        self.lines = object_lines(self.objs, self.device)
        body = Text(no_wrap=False)
        for line, mine in self.lines:
            body.append(line + "\n", style="bold reverse" if mine else "")
        self.query_one("#fd-objects", Static).update(body)
