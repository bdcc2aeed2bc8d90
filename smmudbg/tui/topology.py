"""The topology tree: whatever the system holds, as its commands return it: SMMUs with their
streams (`topology`), translation domains, VMs with their RAM and their vSMMUs (`vsmmu`: each
guest device's vSID -> the host device and pSID), the PCI topology (`pci`: host bridge -> root
port / switch / bridge -> endpoint, each endpoint with its RID and its StreamIDs at their SMMU),
ITSs (`its`), iommufd objects (`iommufd`); rebuilt after every change. Selecting a node posts a
Focus message the app turns into "show this in the other views"."""
from __future__ import annotations

from textual.message import Message
from textual.widgets import Tree

from .fmt import hx
from .iommufdview import objects
from .itsview import its_names


class TopologyTree(Tree):
    class Focus(Message):
        """kind: smmu, stream, cd, domain, vm (topology rows), device (a `pci` endpoint
        row), bridge ({pci: the `pci` result, name}: a host bridge or a port/bridge), vsmmu
        (a `vsmmu` row), vdevice ({vsmmu, row}: one of its devices rows), its ({name}),
        iommufd ({kind, ...row}), vtd (a `vtds` unit), vtd-device (its device row with
        unit, and pasid when chosen)."""
        def __init__(self, kind: str, data: dict):
            super().__init__()
            self.kind, self.data = kind, data

    def __init__(self, bridge, **kw):
        super().__init__("system", **kw)
        self.bridge = bridge
        self.show_root = True
        self.guide_depth = 2
        self.devices: dict[str, dict] = {}      # PCI endpoint name -> its `pci` row
        self.pci: dict | None = None             # the `pci` result

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
        self._devices()
        vsmmus: dict[str, list] = {}
        for v in (self.bridge.try_query("vsmmu") or {}).get("vsmmus", []):
            vsmmus.setdefault(v["vm"], []).append(v)
        vms = self.root.add("VMs", expand=True)
        for v in topo["vms"]:
            vn = vms.add(v["name"], data=("vm", v), expand=bool(vsmmus.get(v["name"])))
            for r in v["ram"]:
                vn.add_leaf(f"IPA {hx(r['ipa'])} -> PA {hx(r['pa'])}", data=("vm", v))
            self._vsmmus(vn, vsmmus.get(v["name"], []))
        self._pci_tree()
        self._vtds()
        names = its_names(self.bridge)
        if names:
            its = self.root.add("ITSs", expand=False)
            for n in names:
                its.add_leaf(n, data=("its", {"name": n}))
        fd = objects(self.bridge)
        if fd is not None:
            node = self.root.add("iommufd", expand=False)
            for kind, label in (("ioas", "IOAS"), ("hwpt", "HWPT"), ("viommu", "vIOMMU"),
                                ("vdevice", "vDEVICE")):
                for o in fd[kind]:
                    node.add_leaf(f"{label} {o['id']} {o.get('name') or o.get('device') or ''}",
                                  data=("iommufd", {"kind": kind, **o}))
        self.root.expand()
        return topo

    def _vsmmus(self, parent, rows: list) -> None:
        """A VM's vSMMUs (`vsmmu`), each with its guest devices: vSID -> pSID."""
        for v in rows:
            smmus = ",".join(dict.fromkeys(x["smmu"] for x in v["viommus"])) or "-"
            vn = parent.add(f"vSMMU {v['name']} on {smmus}", data=("vsmmu", v), expand=True)
            for d in v["devices"]:
                vn.add_leaf(f"{d['guest_device'] or '?'} vSID {hx(d['vsid'])} -> {d['device']} "
                            f"pSID {hx(d['psid'])}" + ("" if d["in_sync"] is not False
                                                       else " !"),
                            data=("vdevice", {"vsmmu": v, "row": d}))

    def _devices(self) -> None:
        """The `pci` result: endpoints by name (for the stream nodes to find their device)."""
        self.pci = self.bridge.try_query("pci")
        self.devices = {d["name"]: d for d in (self.pci or {}).get("devices", [])
                        if not d["bridge"]}

    def _pci_tree(self) -> None:
        """PCI: host bridge -> root port / switch port / bridge -> endpoint, as `pci` holds
        them (depth first, so a parent's node is there before its children)."""
        r = self.pci
        if not r or not r["hosts"]:
            return
        from ..render import pci_device_label, pci_host_label   # (after the first frame)
        node = self.root.add("PCI", expand=True)
        nodes = {}
        for h in r["hosts"]:
            nodes[h["name"]] = node.add(pci_host_label(h), expand=True,
                                        data=("bridge", {"pci": r, "name": h["name"]}))
        for d in r["devices"]:
            parent = nodes[d["parent"]]
            if d["bridge"]:
                nodes[d["name"]] = parent.add(pci_device_label(d), expand=True,
                                              data=("bridge", {"pci": r, "name": d["name"]}))
            else:
                parent.add_leaf(pci_device_label(d), data=("device", d))

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
