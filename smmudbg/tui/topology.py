"""The topology tree: whatever `topology` returns (SMMUs, their streams and devices, domains,
VMs), rebuilt after every change. Selecting a node posts a Focus message the app turns into
"show this in the other views"."""
from __future__ import annotations

from textual.message import Message
from textual.widgets import Tree

from .fmt import hx


class TopologyTree(Tree):
    class Focus(Message):
        """kind: smmu, stream, domain, vm; data: the topology row."""
        def __init__(self, kind: str, data: dict):
            super().__init__()
            self.kind, self.data = kind, data

    def __init__(self, bridge, **kw):
        super().__init__("system", **kw)
        self.bridge = bridge
        self.show_root = True
        self.guide_depth = 2

    def reload(self) -> dict | None:
        topo = self.bridge.try_query("topology")
        self.clear()
        if topo is None:
            return None
        self.root.set_label(topo["name"])
        self.root.data = ("system", topo)
        for m in topo["smmus"]:
            stages = "+".join(s for s, on in (("S1", m["stage1"]), ("S2", m["stage2"])) if on)
            node = self.root.add(f"{m['name']} {stages or '-'}"
                                 + ("" if m["smmuen"] else " (off)"),
                                 data=("smmu", m), expand=True)
            for st in (s for s in topo["streams"] if s["smmu"] == m["name"]):
                sid = hx(st["sid"]) if st["count"] == 1 else \
                    f"{hx(st['sid'])}+{st['count']}"
                label = f"{st['name'] or '?'} {sid} {st['config']}"
                snode = node.add(label, data=("stream", st), expand=False)
                for c in st["cds"]:
                    snode.add_leaf(f"ssid {c['ssid']}: {c['domain']}",
                                   data=("cd", dict(c, stream=st)))
                if st.get("s2"):
                    snode.add_leaf(f"s2: {st['s2']}", data=("domain", {"name": st["s2"]}))
        doms = self.root.add("domains", expand=False)
        for d in topo["domains"]:
            tag = f"asid {d['asid']}" if d["stage"] == 1 else f"vmid {d['vmid']}"
            doms.add_leaf(f"{d['name']} S{d['stage']} {tag}", data=("domain", d))
        vms = self.root.add("VMs", expand=True)
        for v in topo["vms"]:
            vn = vms.add(v["name"], data=("vm", v), expand=False)
            for r in v["ram"]:
                vn.add_leaf(f"IPA {hx(r['ipa'])} -> PA {hx(r['pa'])}", data=("vm", v))
        self.root.expand()
        return topo

    def on_tree_node_selected(self, event: Tree.NodeSelected) -> None:
        if event.node.data:
            kind, data = event.node.data
            self.post_message(self.Focus(kind, data))
