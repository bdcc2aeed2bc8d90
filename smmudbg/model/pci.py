"""PCI topology: segments, host bridges (and QEMU pxb-pcie expanders), ports, switches, bridges,
endpoints; bus numbers, RIDs, DMA aliases and the MSI/MSI-X messages drivers programmed.

Built from a compact spec (a dict shaped like a scenario table, see docs/pci-iort.md):

    {"host_bridge": [{"name": "pcie.0"},
                     {"name": "pxb1", "kind": "pxb-pcie", "parent": "pcie.0", "addr": "2",
                      "bus": 0x80}],
     "device": [{"name": "rp1", "kind": "root_port", "parent": "pcie.0", "addr": "1"},
                {"name": "nvme", "parent": "rp1", "msix": [{"address": 0x8090040, "data": 0}]}]}

Bus numbers come from depth-first enumeration as firmware and Linux do it (each bridge, visited
in devfn order, takes the next free number as its secondary bus; its subordinate is the highest
number below it), or are taken as given (`secondary`/`subordinate`). RID = bus << 8 | devfn.
DMA aliases follow Linux drivers/pci/search.c pci_for_each_dma_alias(); the RID an MSI carries
follows drivers/pci/msi/irqdomain.c get_msi_id_cb(). Bad input raises ScenarioError, one line
naming the node.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ModelError, ScenarioError

# Device kinds and the PCIe capability type Linux reads (pci_pcie_type); None = no PCIe capability
# (a conventional PCI function).
PCIE_TYPE = {
    "endpoint": "PCI_EXP_TYPE_ENDPOINT",
    "rc_endpoint": "PCI_EXP_TYPE_RC_END",
    "root_port": "PCI_EXP_TYPE_ROOT_PORT",
    "upstream_port": "PCI_EXP_TYPE_UPSTREAM",
    "downstream_port": "PCI_EXP_TYPE_DOWNSTREAM",
    "pcie_pci_bridge": "PCI_EXP_TYPE_PCI_BRIDGE",    # PCIe to PCI/PCI-X bridge
    "pci_pcie_bridge": "PCI_EXP_TYPE_PCIE_BRIDGE",   # PCI/PCI-X to PCIe bridge (reverse)
    "pci_bridge": None,                              # conventional PCI-to-PCI bridge
}
BRIDGE_KINDS = ("root_port", "upstream_port", "downstream_port", "pcie_pci_bridge",
                "pci_pcie_bridge", "pci_bridge")
# Bridges whose secondary side is a PCIe link (pcie_downstream_port()): Linux scans only device 0
# below them (drivers/pci/probe.c only_one_child()), so a function at another slot is never found.
LINK_BELOW = ("root_port", "downstream_port", "pci_pcie_bridge")
# Which kinds may sit on the bus below each parent kind ("root" = a host bridge's root bus).
ALLOWED_ON = {
    "root": ("endpoint", "rc_endpoint", "root_port", "pcie_pci_bridge", "pci_bridge"),
    "root_port": ("endpoint", "upstream_port", "pcie_pci_bridge", "pci_bridge"),
    "downstream_port": ("endpoint", "upstream_port", "pcie_pci_bridge", "pci_bridge"),
    "upstream_port": ("downstream_port",),
    "pcie_pci_bridge": ("endpoint", "pci_bridge", "pci_pcie_bridge"),
    "pci_bridge": ("endpoint", "pci_bridge", "pci_pcie_bridge"),
    "pci_pcie_bridge": ("endpoint", "upstream_port", "pcie_pci_bridge", "pci_bridge"),
}
# Conventional PCIe-to-PCI bridges without a PCIe capability that Linux flags with
# PCI_DEV_FLAG_PCIE_BRIDGE_ALIAS (drivers/pci/quirks.c quirk_use_pcie_bridge_dma_alias):
# ASMedia ASM1083/1085, Tundra 8113, ITE 8892, Intel 82801.
PCIE_BRIDGE_ALIAS_IDS = {(0x1B21, 0x1080), (0x10E3, 0x8113), (0x1283, 0x8892), (0x8086, 0x244E)}
HOST_KINDS = ("host", "pxb-pcie")
MSI_VECTORS = (1, 2, 4, 8, 16, 32)


# --- spec reading helpers (shared with iort.py) -----------------------------------------------

def spec_int(where, value, lo=0, hi=None):
    """An integer from a spec value (int or "0x.." string), range-checked."""
    if isinstance(value, bool):
        raise ScenarioError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, str):
        try:
            value = int(value.replace("_", ""), 0)
        except ValueError:
            raise ScenarioError(f"{where}: expected a number, got {value!r}") from None
    if not isinstance(value, int):
        raise ScenarioError(f"{where}: expected a number, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        top = f"{hi:#x}" if hi is not None else "..."
        raise ScenarioError(f"{where}: {value:#x} is outside {lo:#x}..{top}")
    return value


def spec_table(where, value):
    if not isinstance(value, dict):
        raise ScenarioError(f"{where}: expected a table, got {type(value).__name__}")
    return value


def spec_list(where, value):
    if value is None:
        return []
    if not isinstance(value, list):
        raise ScenarioError(f"{where}: expected an array, got {type(value).__name__}")
    return value


def spec_known(where, table, keys):
    extra = sorted(set(table) - set(keys))
    if extra:
        raise ScenarioError(f"{where}: unknown key {extra[0]!r} (known: {', '.join(sorted(keys))})")


def spec_name(where, table, names):
    n = table.get("name")
    if not isinstance(n, str) or not n:
        raise ScenarioError(f"{where}.name: missing or not a string")
    if n in names:
        raise ScenarioError(f"{where}.name: {n!r} is already used")
    names.add(n)
    return n


def spec_bool(where, value):
    if not isinstance(value, bool):
        raise ScenarioError(f"{where}: expected true or false, got {value!r}")
    return value


def parse_addr(where, value):
    """QEMU's addr= spelling: "SS" or "SS.F" with the slot in hex; returns devfn."""
    if isinstance(value, int) and not isinstance(value, bool):
        slot, fn = value, 0
    elif isinstance(value, str):
        s, _, f = value.partition(".")
        try:
            slot, fn = int(s, 16), int(f or "0", 16)
        except ValueError:
            raise ScenarioError(f"{where}: {value!r} is not SLOT or SLOT.FN (hex slot)") from None
    else:
        raise ScenarioError(f"{where}: expected \"SLOT.FN\", got {value!r}")
    if not 0 <= slot <= 31 or not 0 <= fn <= 7:
        raise ScenarioError(f"{where}: slot {slot:#x} / function {fn} outside 0..0x1f / 0..7")
    return slot << 3 | fn


def fmt_addr(devfn):
    return f"{devfn >> 3:02x}.{devfn & 7}"


def rid_str(rid):
    return f"{rid >> 8:02x}:{(rid >> 3) & 0x1f:02x}.{rid & 7}"


# --- model ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MsiMessage:
    """One vector's message as the device will write it: address and data the driver programmed."""
    device: str
    kind: str          # "msi" or "msix"
    vector: int
    address: int
    data: int
    masked: bool = False


@dataclass(frozen=True)
class DmaAlias:
    """One call of pci_for_each_dma_alias(): the alias RID and the device it is reported for."""
    rid: int
    via: str           # the pci_dev passed to the callback (the device itself or a bridge)
    via_bus: int       # that pci_dev's own bus number (get_msi_id_cb compares it)
    reason: str

    @property
    def bdf(self):
        return rid_str(self.rid)


@dataclass
class HostBridge:
    name: str
    kind: str = "host"          # "host" or "pxb-pcie" (QEMU expander: a separate root bus)
    segment: int = 0
    bus: int = 0                # root bus number (pxb-pcie: its bus_nr property)
    bus_end: int | None = None  # last bus number of its range (None: derived)
    parent: str | None = None   # pxb-pcie: the host bridge whose root bus it is plugged into
    devfn: int | None = None    # pxb-pcie: its own function on that bus
    given_bus_end: int | None = None
    max_bus: int = 0            # highest bus number enumeration assigned below it


@dataclass
class Device:
    name: str
    kind: str
    parent: str
    devfn: int
    vendor: int | None = None
    device: int | None = None
    class_code: int | None = None
    pcie: bool = True           # endpoint: False for a conventional PCI function
    given_secondary: int | None = None
    given_subordinate: int | None = None
    xlate_root: bool = False    # PCI_DEV_FLAGS_BRIDGE_XLATE_ROOT: alias walk stops here
    alias_quirk: bool | None = None   # PCIE_BRIDGE_ALIAS quirk list membership (None: by IDs)
    dma_alias_devfns: tuple = ()
    msi: dict | None = None     # {"address", "data", "vectors"}
    msix: tuple = ()            # ({"address", "data", "masked"}, ...)
    # assigned by enumeration
    bus: int = 0
    secondary: int | None = None
    subordinate: int | None = None
    host: str = ""
    segment: int = 0

    @property
    def rid(self):
        return self.bus << 8 | self.devfn

    @property
    def is_bridge(self):
        return self.kind in BRIDGE_KINDS

    @property
    def is_pcie(self):
        return self.kind != "pci_bridge" and (self.kind != "endpoint" or self.pcie)


@dataclass
class PciTopology:
    hosts: dict = field(default_factory=dict)     # name -> HostBridge, in spec order
    devices: dict = field(default_factory=dict)   # name -> Device, in spec order

    # --- queries --------------------------------------------------------------------------
    def node(self, name) -> Device:
        try:
            return self.devices[name]
        except KeyError:
            raise ModelError(f"pci: no device named {name!r}") from None

    def bdf(self, name):
        d = self.node(name)
        return f"{d.segment:04x}:{rid_str(d.rid)}"

    def rid(self, name):
        return self.node(name).rid

    def children(self, parent):
        return sorted((d for d in self.devices.values() if d.parent == parent),
                      key=lambda d: d.devfn)

    def endpoints(self):
        return [d for d in self.devices.values() if not d.is_bridge]

    def device_at(self, segment, rid):
        for d in self.devices.values():
            if d.segment == segment and d.rid == rid:
                return d
        return None

    def used_bus_range(self, host):
        """(first, last) bus numbers in use below a host bridge, as QEMU's pci_bus_range()."""
        h = self.hosts[host]
        return h.bus, h.max_bus

    def _bus_self(self, d):
        """The bridge whose secondary bus device d sits on, or None on a root bus."""
        return self.devices.get(d.parent)

    def pcie_bridge_alias_flag(self, b: Device):
        """PCI_DEV_FLAG_PCIE_BRIDGE_ALIAS as quirk_use_pcie_bridge_dma_alias() sets it: a
        conventional bridge on the quirk list, not on a root bus, whose upstream bridge is PCIe
        and not itself a PCIe-to-PCI bridge."""
        if b.kind != "pci_bridge":
            return False
        listed = (b.alias_quirk if b.alias_quirk is not None
                  else (b.vendor, b.device) in PCIE_BRIDGE_ALIAS_IDS)
        up = self._bus_self(b)
        return bool(listed and up is not None and up.is_pcie and up.kind != "pcie_pci_bridge")

    def dma_aliases(self, name) -> tuple:
        """Every RID Linux's pci_for_each_dma_alias() reports for a device, in its order: the
        device's own RID, its quirk devfn aliases on the same bus, then one per bridge on the way
        to the root bus that substitutes the requester ID. The last one is what reaches the root
        complex."""
        d = self.node(name)
        out = [DmaAlias(d.rid, d.name, d.bus, "own RID")]
        for fn in d.dma_alias_devfns:
            out.append(DmaAlias(d.bus << 8 | fn, d.name, d.bus,
                                f"quirk DMA alias devfn {fmt_addr(fn)} on the same bus"))
        cur = d
        while (b := self._bus_self(cur)) is not None:      # stops at the root bus
            cur = b
            if b.xlate_root:
                break
            if b.kind in ("root_port", "upstream_port", "downstream_port"):
                continue        # PCIe ports pass the requester ID through
            if b.kind == "pcie_pci_bridge" or self.pcie_bridge_alias_flag(b):
                why = ("PCIe-to-PCI/X bridge" if b.kind == "pcie_pci_bridge"
                       else "PCI bridge with the PCIE_BRIDGE_ALIAS quirk")
                out.append(DmaAlias(b.secondary << 8, b.name, b.bus,
                                    f"{why} {b.name}: its secondary bus {b.secondary:02x}, "
                                    f"devfn 00.0"))
            else:
                why = ("PCI/PCI-X-to-PCIe bridge" if b.kind == "pci_pcie_bridge"
                       else "conventional PCI bridge")
                out.append(DmaAlias(b.rid, b.name, b.bus, f"{why} {b.name}: its own RID"))
        return tuple(out)

    def msi_rid(self, name):
        """The RID Linux hands to the MSI mapping (pci_msi_domain_get_msi_rid): start from the
        device's RID and take each alias whose device or RID is on another bus (same-bus quirk
        aliases, i.e. phantom functions, are ignored); the last such alias wins."""
        d = self.node(name)
        rid = d.rid
        for a in self.dma_aliases(name):
            bus = rid >> 8
            if a.via_bus != bus or a.rid >> 8 != bus:
                rid = a.rid
        return rid

    def msi_message(self, name, vector) -> MsiMessage:
        """The message one vector writes. Multi-message MSI: the function replaces the low
        log2(N) bits of Message Data with the vector number."""
        d = self.node(name)
        if d.msix:
            if not 0 <= vector < len(d.msix):
                raise ModelError(f"pci: {name} has MSI-X vectors 0..{len(d.msix) - 1}, "
                                 f"not {vector}")
            e = d.msix[vector]
            return MsiMessage(name, "msix", vector, e["address"], e["data"], e.get("masked", False))
        if d.msi:
            n = d.msi.get("vectors", 1)
            if not 0 <= vector < n:
                raise ModelError(f"pci: {name} has MSI vectors 0..{n - 1}, not {vector}")
            return MsiMessage(name, "msi", vector, d.msi["address"],
                              (d.msi["data"] & ~(n - 1)) | vector)
        raise ModelError(f"pci: {name} has no MSI or MSI-X programmed")

    def msi_messages(self, name):
        d = self.node(name)
        n = len(d.msix) if d.msix else (d.msi or {}).get("vectors", 0)
        return tuple(self.msi_message(name, v) for v in range(n))

    # --- spec -----------------------------------------------------------------------------
    @classmethod
    def from_spec(cls, spec) -> "PciTopology":
        return _build(spec)

    def to_spec(self) -> dict:
        hosts = []
        for h in self.hosts.values():
            t = {"name": h.name}
            if h.kind != "host":
                t["kind"] = h.kind
            if h.segment:
                t["segment"] = h.segment
            if h.bus or h.kind != "host":
                t["bus"] = h.bus
            if h.given_bus_end is not None:
                t["bus_end"] = h.given_bus_end
            if h.parent is not None:
                t["parent"] = h.parent
                t["addr"] = fmt_addr(h.devfn)
            hosts.append(t)
        devs = []
        for d in self.devices.values():
            t = {"name": d.name}
            if d.kind != "endpoint":
                t["kind"] = d.kind
            t["parent"] = d.parent
            t["addr"] = fmt_addr(d.devfn)
            for k, v in (("vendor", d.vendor), ("device", d.device), ("class", d.class_code),
                         ("secondary", d.given_secondary),
                         ("subordinate", d.given_subordinate), ("alias_quirk", d.alias_quirk)):
                if v is not None:
                    t[k] = v
            if not d.pcie and d.kind == "endpoint":
                t["pcie"] = False
            if d.xlate_root:
                t["xlate_root"] = True
            if d.dma_alias_devfns:
                t["dma_alias"] = [fmt_addr(f) for f in d.dma_alias_devfns]
            if d.msi:
                t["msi"] = dict(d.msi)
            if d.msix:
                t["msix"] = [dict(e) for e in d.msix]
            devs.append(t)
        return {"host_bridge": hosts, "device": devs}


# --- building ---------------------------------------------------------------------------------

def _read_msi(where, m):
    m = spec_table(where, m)
    spec_known(where, m, ("address", "data", "vectors"))
    if "address" not in m or "data" not in m:
        raise ScenarioError(f"{where}: needs address and data (as the driver programmed them)")
    addr = spec_int(f"{where}.address", m["address"], 0, (1 << 64) - 1)
    if addr & 3:
        raise ScenarioError(f"{where}.address: {addr:#x} is not 4-byte aligned "
                            f"(Message Address[1:0] are 0)")
    data = spec_int(f"{where}.data", m["data"], 0, 0xFFFF)
    n = spec_int(f"{where}.vectors", m.get("vectors", 1), 1, 32)
    if n not in MSI_VECTORS:
        raise ScenarioError(f"{where}.vectors: {n} is not a power of two up to 32")
    if data & (n - 1):
        raise ScenarioError(f"{where}.data: {data:#x} has its low {n.bit_length() - 1} bits set; "
                            f"with {n} vectors the device puts the vector number there")
    return {"address": addr, "data": data, "vectors": n}


def _read_msix(where, entries):
    out = []
    for i, e in enumerate(spec_list(where, entries)):
        w = f"{where}[{i}]"
        e = spec_table(w, e)
        spec_known(w, e, ("address", "data", "masked"))
        if "address" not in e or "data" not in e:
            raise ScenarioError(f"{w}: needs address and data (as the driver programmed them)")
        addr = spec_int(f"{w}.address", e["address"], 0, (1 << 64) - 1)
        if addr & 3:
            raise ScenarioError(f"{w}.address: {addr:#x} is not 4-byte aligned "
                                f"(Message Address[1:0] are 0)")
        out.append({"address": addr, "data": spec_int(f"{w}.data", e["data"], 0, 0xFFFFFFFF),
                    "masked": spec_bool(f"{w}.masked", e.get("masked", False))})
    if len(out) > 2048:
        raise ScenarioError(f"{where}: {len(out)} entries; an MSI-X table holds at most 2048")
    return tuple(out)


def _build(spec) -> PciTopology:
    spec = spec_table("pci", spec)
    spec_known("pci", spec, ("host_bridge", "device"))
    topo = PciTopology()
    names = set()
    for i, h in enumerate(spec_list("pci.host_bridge", spec.get("host_bridge"))):
        w = f"pci.host_bridge[{i}]"
        h = spec_table(w, h)
        spec_known(w, h, ("name", "kind", "segment", "bus", "bus_end", "parent", "addr"))
        name = spec_name(w, h, names)
        w = f"pci.host_bridge[{name}]"
        kind = h.get("kind", "host")
        if kind not in HOST_KINDS:
            raise ScenarioError(f"{w}.kind: {kind!r} is not one of {', '.join(HOST_KINDS)}")
        hb = HostBridge(name, kind, spec_int(f"{w}.segment", h.get("segment", 0), 0, 0xFFFF),
                        spec_int(f"{w}.bus", h.get("bus", 0), 0, 0xFF))
        if "bus_end" in h:
            hb.given_bus_end = spec_int(f"{w}.bus_end", h["bus_end"], hb.bus, 0xFF)
        if kind == "pxb-pcie":
            for k in ("parent", "addr", "bus"):
                if k not in h:
                    raise ScenarioError(f"{w}.{k}: missing (a pxb-pcie sits on a root bus at addr "
                                        f"and starts its own root bus at bus=bus_nr)")
            hb.parent = h["parent"]
            hb.devfn = parse_addr(f"{w}.addr", h["addr"])
            if hb.bus == 0:
                raise ScenarioError(f"{w}.bus: a pxb-pcie needs bus_nr > 0 "
                                    f"(bus 0 is the main root bus)")
        elif "parent" in h or "addr" in h:
            raise ScenarioError(f"{w}: parent/addr are for kind = \"pxb-pcie\" only")
        topo.hosts[name] = hb
    if not topo.hosts and spec.get("device"):
        raise ScenarioError("pci.host_bridge: devices need a host bridge "
                            "(e.g. {name = \"pcie.0\"})")
    for hb in topo.hosts.values():
        if hb.parent is not None:
            p = topo.hosts.get(hb.parent)
            if p is None or p.kind != "host":
                raise ScenarioError(f"pci.host_bridge[{hb.name}].parent: {hb.parent!r} is not a "
                                    f"host bridge of kind \"host\" (pxb-pcie plugs into a main "
                                    f"root bus)")
            hb.segment = p.segment
    _bus_ranges(topo)

    for i, t in enumerate(spec_list("pci.device", spec.get("device"))):
        w = f"pci.device[{i}]"
        t = spec_table(w, t)
        spec_known(w, t, ("name", "kind", "parent", "addr", "vendor", "device", "class", "pcie",
                          "secondary", "subordinate", "xlate_root", "alias_quirk", "dma_alias",
                          "msi", "msix"))
        name = spec_name(w, t, names)
        w = f"pci.device[{name}]"
        kind = t.get("kind", "endpoint")
        if kind not in PCIE_TYPE:
            raise ScenarioError(f"{w}.kind: {kind!r} is not one of {', '.join(PCIE_TYPE)}")
        if "parent" not in t or "addr" not in t:
            raise ScenarioError(f"{w}: needs parent (a host bridge or bridge) "
                                f"and addr (\"SLOT.FN\")")
        d = Device(name, kind, t["parent"], parse_addr(f"{w}.addr", t["addr"]))
        for k, attr, hi in (("vendor", "vendor", 0xFFFF), ("device", "device", 0xFFFF),
                            ("class", "class_code", 0xFFFFFF)):
            if k in t:
                setattr(d, attr, spec_int(f"{w}.{k}", t[k], 0, hi))
        if "pcie" in t:
            if kind != "endpoint":
                raise ScenarioError(f"{w}.pcie: only an endpoint can be a conventional PCI "
                                    f"function (kind pci_bridge is the conventional bridge)")
            d.pcie = spec_bool(f"{w}.pcie", t["pcie"])
        bridge_keys = [k for k in ("secondary", "subordinate", "xlate_root", "alias_quirk")
                       if k in t]
        if bridge_keys and kind not in BRIDGE_KINDS:
            raise ScenarioError(f"{w}.{bridge_keys[0]}: only bridges have that ({kind} is not one)")
        if "secondary" in t:
            d.given_secondary = spec_int(f"{w}.secondary", t["secondary"], 1, 0xFF)
        if "subordinate" in t:
            d.given_subordinate = spec_int(f"{w}.subordinate", t["subordinate"], 1, 0xFF)
            if d.given_secondary is None:
                raise ScenarioError(f"{w}.subordinate: give secondary too")
            if d.given_subordinate < d.given_secondary:
                raise ScenarioError(f"{w}.subordinate: {d.given_subordinate:#x} is below "
                                    f"secondary {d.given_secondary:#x}")
        d.xlate_root = spec_bool(f"{w}.xlate_root", t.get("xlate_root", False))
        if "alias_quirk" in t:
            if kind != "pci_bridge":
                raise ScenarioError(f"{w}.alias_quirk: the PCIE_BRIDGE_ALIAS quirk is for "
                                    f"kind pci_bridge")
            d.alias_quirk = spec_bool(f"{w}.alias_quirk", t["alias_quirk"])
        aliases = spec_list(f"{w}.dma_alias", t.get("dma_alias"))
        d.dma_alias_devfns = tuple(parse_addr(f"{w}.dma_alias[{j}]", a)
                                   for j, a in enumerate(aliases))
        if "msi" in t or "msix" in t:
            if kind in BRIDGE_KINDS and kind not in ("root_port", "downstream_port"):
                raise ScenarioError(f"{w}: MSI on a {kind} is not modelled")
        if "msi" in t:
            d.msi = _read_msi(f"{w}.msi", t["msi"])
        if "msix" in t:
            d.msix = _read_msix(f"{w}.msix", t["msix"])
        topo.devices[name] = d

    _place(topo)
    for hb in topo.hosts.values():
        _enumerate(topo, hb)
    return topo


def _bus_ranges(topo):
    """Each host bridge's bus range: given, or up to the next root bus in its segment (QEMU gives
    the main root bus the numbers below the lowest pxb-pcie bus_nr)."""
    by_seg = {}
    for hb in topo.hosts.values():
        by_seg.setdefault(hb.segment, []).append(hb)
    for seg, hbs in by_seg.items():
        hbs.sort(key=lambda h: h.bus)
        for a, b in zip(hbs, hbs[1:]):
            if a.bus == b.bus:
                raise ScenarioError(f"pci.host_bridge[{b.name}].bus: bus overlap: root bus "
                                    f"{b.bus:#x} of segment {seg} is already {a.name}'s")
        for k, hb in enumerate(hbs):
            nxt = hbs[k + 1] if k + 1 < len(hbs) else None
            hb.bus_end = hb.given_bus_end if hb.given_bus_end is not None else (
                nxt.bus - 1 if nxt else 0xFF)
            if nxt and hb.bus_end >= nxt.bus:
                raise ScenarioError(f"pci.host_bridge[{hb.name}].bus_end: bus overlap: "
                                    f"{hb.bus:#x}..{hb.bus_end:#x} reaches {nxt.name}'s root bus "
                                    f"{nxt.bus:#x}")
            hb.max_bus = hb.bus


def _place(topo):
    """Check parents, kinds and devfns on each bus."""
    occupied = {}   # parent name -> {devfn: node name}
    for hb in topo.hosts.values():
        if hb.parent is not None:
            occupied.setdefault(hb.parent, {})[hb.devfn] = hb.name
    for d in topo.devices.values():
        w = f"pci.device[{d.name}]"
        if d.parent in topo.hosts:
            pkind = "root"
        elif d.parent in topo.devices:
            pkind = topo.devices[d.parent].kind
            if pkind not in BRIDGE_KINDS:
                raise ScenarioError(f"{w}.parent: {d.parent!r} is a {pkind}, not a bridge")
        else:
            raise ScenarioError(f"{w}.parent: no host bridge or bridge named {d.parent!r}")
        if d.kind not in ALLOWED_ON[pkind]:
            where = "a root bus" if pkind == "root" else f"the bus below {pkind} {d.parent}"
            raise ScenarioError(f"{w}.kind: {d.kind} is not allowed on {where} "
                                f"(allowed: {', '.join(ALLOWED_ON[pkind])})")
        if pkind in LINK_BELOW and d.devfn >> 3 != 0:
            raise ScenarioError(f"{w}.addr: slot {d.devfn >> 3:#x} below {pkind} {d.parent}: a "
                                f"PCIe link carries device 0 only (Linux scans only slot 0 there)")
        bus = occupied.setdefault(d.parent, {})
        if d.devfn in bus:
            raise ScenarioError(f"{w}.addr: devfn clash: {fmt_addr(d.devfn)} on {d.parent}'s bus "
                                f"is already {bus[d.devfn]}")
        bus[d.devfn] = d.name
        for fn in d.dma_alias_devfns:
            if fn == d.devfn:
                raise ScenarioError(f"{w}.dma_alias: {fmt_addr(fn)} is the device's own devfn")
    # pci_scan_slot() reads functions 1..7 of a slot only after finding function 0.
    for parent, bus in occupied.items():
        for devfn, name in sorted(bus.items()):
            if devfn & 7 and (devfn & ~7) not in bus:
                kind = "host_bridge" if name in topo.hosts else "device"
                raise ScenarioError(f"pci.{kind}[{name}].addr: {fmt_addr(devfn)} on {parent}'s "
                                    f"bus has no function 0 in its slot: Linux scans functions "
                                    f"1-7 only after function 0")
    # A cycle (a bridge below itself) has no path to a host bridge.
    for d in topo.devices.values():
        seen, cur = set(), d
        while cur.parent in topo.devices:
            if cur.name in seen:
                raise ScenarioError(f"pci.device[{d.name}].parent: the chain of parents loops")
            seen.add(cur.name)
            cur = topo.devices[cur.parent]


def _enumerate(topo, hb):
    """Depth-first bus numbering below one root bus, as firmware / Linux pci_scan_bridge():
    devices in devfn order; a bridge takes the next free bus as its secondary, numbers its
    children, and its subordinate is the highest number below it. Given numbers are checked
    against the parent's window and against every number already in use."""
    owner = {hb.bus: hb.name}       # bus number -> the node whose secondary/root bus it is
    window = {}                     # bus number -> the bridge whose window holds it
    state = {"max": hb.bus}

    def visit(parent_name, bus, hi, ancestors):
        for d in topo.children(parent_name):
            d.bus, d.host, d.segment = bus, hb.name, hb.segment
            if not d.is_bridge:
                continue
            w = f"pci.device[{d.name}]"
            if d.given_secondary is not None:
                sec = d.given_secondary
                if not bus < sec <= hi:
                    raise ScenarioError(f"{w}.secondary: {sec:#x} is outside the window "
                                        f"{bus + 1:#x}..{hi:#x} of its parent {parent_name}")
            else:
                sec = state["max"] + 1
                if sec > hi:
                    raise ScenarioError(f"{w}: bus range exhausted: needs bus {sec:#x} but "
                                        f"{parent_name}'s range ends at {hi:#x}")
            last = d.given_subordinate if d.given_subordinate is not None else sec
            for b in range(sec, last + 1):
                if b in owner or (b in window and window[b] not in ancestors):
                    other = owner.get(b) or window[b]
                    raise ScenarioError(f"{w}.secondary: bus overlap: bus {b:#x} is already "
                                        f"{other}'s")
            owner[sec] = d.name
            for b in range(sec, last + 1):
                window[b] = d.name
            d.secondary = sec
            state["max"] = max(state["max"], sec)
            sub_hi = d.given_subordinate if d.given_subordinate is not None else hi
            visit(d.name, sec, sub_hi, ancestors | {d.name})
            d.subordinate = (d.given_subordinate if d.given_subordinate is not None
                             else state["max"])
            for b in range(sec, d.subordinate + 1):
                window.setdefault(b, d.name)
            state["max"] = max(state["max"], d.subordinate)

    visit(hb.name, hb.bus, hb.bus_end, frozenset())
    hb.max_bus = state["max"]
