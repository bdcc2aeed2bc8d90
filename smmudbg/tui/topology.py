"""The topology tree: whatever the system holds, as its commands return it: SMMUs with their
streams (`topology`), translation domains, VMs with their RAM and vSMMUs (iommufd vIOMMUs whose
IOAS maps the VM's RAM), PCI devices with their StreamIDs and ITS DeviceIDs (`iort`), ITSs
(`its`), iommufd objects (`iommufd`); rebuilt after every change. Selecting a node posts a
Focus message the app turns into "show this in the other views"."""
from __future__ import annotations

from textual.message import Message
from textual.widgets import Tree

from .fmt import hx
from .iommufdview import objects
from .itsview import its_names


def vm_of(ioas: dict, vms: list) -> str | None:
    """The VM whose RAM an IOAS maps (every area IOVA = IPA -> the same PA): a vIOMMU over
    that IOAS is that VM's vSMMU."""
    for v in vms:
        ram = {(r["ipa"], r["size"], r["pa"]) for r in v["ram"]}
        if ioas["areas"] and all((a["iova"], a["length"], a["pa"]) in ram
                                 for a in ioas["areas"]):
            return v["name"]
    return None


class TopologyTree(Tree):
    class Focus(Message):
        """kind: smmu, stream, cd, domain, vm (topology rows), device (an `iort` devices
        row), its ({name}), viommu (an `iommufd viommu` row), iommufd ({kind, ...row}),
        vtd (a `vtds` unit), vtd-device (its device row with unit, and pasid when chosen)."""
        def __init__(self, kind: str, data: dict):
            super().__init__()
            self.kind, self.data = kind, data

    def __init__(self, bridge, **kw):
        super().__init__("system", **kw)
        self.bridge = bridge
        self.show_root = True
        self.guide_depth = 2
        self.devices: dict[str, dict] = {}      # PCI device name -> its `iort` row

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
        fd = objects(self.bridge)
        vsmmus: dict[str, list] = {}
        if fd is not None:
            ioas_vm = {a["id"]: vm_of(a, topo["vms"]) for a in fd["ioas"]}
            hw = {h["id"]: h for h in fd["hwpt"]}
            for v in fd["viommu"]:
                vm = ioas_vm.get(hw.get(v["parent"], {}).get("ioas"))
                vsmmus.setdefault(vm, []).append(v)
        vms = self.root.add("VMs", expand=True)
        for v in topo["vms"]:
            vn = vms.add(v["name"], data=("vm", v), expand=bool(vsmmus.get(v["name"])))
            for r in v["ram"]:
                vn.add_leaf(f"IPA {hx(r['ipa'])} -> PA {hx(r['pa'])}", data=("vm", v))
            self._vsmmus(vn, vsmmus.get(v["name"], []))
        self._devices()
        self._vtds()
        names = its_names(self.bridge)
        if names:
            its = self.root.add("ITSs", expand=False)
            for n in names:
                its.add_leaf(n, data=("its", {"name": n}))
        if fd is not None:
            self._vsmmus(self.root, vsmmus.get(None, []))      # no VM's RAM behind them
            node = self.root.add("iommufd", expand=False)
            for kind, label in (("ioas", "IOAS"), ("hwpt", "HWPT"), ("viommu", "vIOMMU"),
                                ("vdevice", "vDEVICE")):
                for o in fd[kind]:
                    node.add_leaf(f"{label} {o['id']} {o.get('name') or o.get('device') or ''}",
                                  data=("iommufd", {"kind": kind, **o}))
        self.root.expand()
        return topo

    def _vsmmus(self, parent, rows: list) -> None:
        for v in rows:
            vn = parent.add(f"vSMMU {v.get('name') or v['id']} on {v['smmu']}",
                            data=("viommu", v), expand=True)
            for vsid, dev in v["vdevices"]:
                d = self.devices.get(dev)
                vn.add_leaf(f"{dev} vSID {hx(vsid)}", data=("device", d or {"device": dev}))

    def _devices(self) -> None:
        """PCI devices (endpoints) through the IORT: BDF, StreamIDs, ITS DeviceID."""
        r = self.bridge.try_query("iort")
        rows = (r or {}).get("devices") or []
        self.devices = {d["device"]: d for d in rows}
        if not rows:
            return
        node = self.root.add("PCI devices", expand=True)
        for d in rows:
            sids = ", ".join(f"{hx(s)}" for _, s in d["stream_ids"]) or "no SID"
            node.add_leaf(f"{d['device']} {d['bdf'][5:]} SID {sids}"
                          + (f" DevID {hx(d['device_id'])}" if d["device_id"] is not None
                             else ""), data=("device", d))

    def _vtds(self) -> None:
        """Intel VT-d units (`vtds`) with their requesters and, under each, its PASIDs."""
        r = self.bridge.try_query("vtds")
        for u in (r or {}).get("units", []):
            un = self.root.add(f"{u['name']} VT-d" + ("" if u["translation"] else " (off)"),
                               data=("vtd", u), expand=True)
            for d in u["devices"]:
                row = dict(d, unit=u["name"])
                label = f"{d['name'] or '?'} {d['bdf']} RID {hx(d['rid'])} " \
                    f"{d['pgtt'] or d['fault'] or '-'}"
                if len(d["pasids"]) > 1:
                    dn = un.add(label, data=("vtd-device", row), expand=False)
                    for p in d["pasids"]:
                        dn.add_leaf(f"PASID {p['pasid']}: {p['pgtt']}",
                                    data=("vtd-device", dict(row, pasid=p["pasid"])))
                else:
                    un.add_leaf(label, data=("vtd-device", row))

    def on_tree_node_selected(self, event: Tree.NodeSelected) -> None:
        if event.node.data:
            kind, data = event.node.data
            self.post_message(self.Focus(kind, data))
