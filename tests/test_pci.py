"""PCI topology: bus enumeration, RIDs, DMA aliases (Linux pci_for_each_dma_alias), MSI RID
(get_msi_id_cb), MSI/MSI-X messages, spec errors. Expected numbers are worked out by hand in
the comments, from the enumeration rule (depth first, devfn order, next free bus) and the alias
rules of drivers/pci/search.c."""
import pytest

from smmudbg.errors import ModelError, ScenarioError
from smmudbg.model.pci import PciTopology


def dev(name, parent, addr, kind="endpoint", **kw):
    return {"name": name, "kind": kind, "parent": parent, "addr": addr, **kw}


# pcie.0 (root bus 0) with a switch and a PCIe-to-PCI bridge, plus a pxb-pcie at bus_nr 0x80.
TREE = {
    "host_bridge": [{"name": "pcie.0"},
                    {"name": "pxb1", "kind": "pxb-pcie", "parent": "pcie.0", "addr": "2",
                     "bus": 0x80}],
    "device": [
        dev("rp1", "pcie.0", "1", "root_port"),
        dev("rp2", "pcie.0", "3", "root_port"),
        dev("igd", "pcie.0", "4", "rc_endpoint"),
        dev("up", "rp1", "0", "upstream_port"),
        dev("dp2", "up", "2", "downstream_port"),     # listed first, enumerated last
        dev("dp0", "up", "0", "downstream_port"),
        dev("dp1", "up", "1", "downstream_port"),
        dev("nvme", "dp0", "0"),
        dev("br", "dp2", "0", "pcie_pci_bridge"),
        dev("old5", "br", "5", pcie=False),
        dev("old6", "br", "6", pcie=False),
        dev("nic", "rp2", "0"),
        dev("rp3", "pxb1", "0", "root_port"),
        dev("gpu", "rp3", "0"),
    ]}


def test_enumeration_switch_and_pxb():
    t = PciTopology.from_spec(TREE)
    # Bus 0 in devfn order: rp1 (01.0) -> secondary 1; below it the upstream port on bus 1
    # takes 2; its downstream ports on bus 2 in devfn order: dp0 -> 3, dp1 -> 4 (empty),
    # dp2 -> 5; the PCIe-to-PCI bridge on bus 5 takes 6. rp2 (03.0) then takes 7.
    expect = {"rp1": (0, 1, 6), "up": (1, 2, 6), "dp0": (2, 3, 3), "dp1": (2, 4, 4),
              "dp2": (2, 5, 6), "br": (5, 6, 6), "rp2": (0, 7, 7), "rp3": (0x80, 0x81, 0x81)}
    for name, (bus, sec, sub) in expect.items():
        d = t.devices[name]
        assert (d.bus, d.secondary, d.subordinate) == (bus, sec, sub), name
    assert t.bdf("nvme") == "0000:03:00.0" and t.rid("nvme") == 0x0300
    assert t.rid("old6") == 0x0600 | 6 << 3 == 0x0630
    assert t.rid("nic") == 0x0700
    assert t.rid("igd") == 0x0020
    assert t.rid("gpu") == 0x8100           # the pxb's own root bus starts at bus_nr
    # pcie.0 owns the buses below the pxb's bus_nr (QEMU), the pxb the rest.
    assert (t.hosts["pcie.0"].bus_end, t.hosts["pxb1"].bus_end) == (0x7F, 0xFF)
    assert t.used_bus_range("pcie.0") == (0, 7) and t.used_bus_range("pxb1") == (0x80, 0x81)


def test_alias_behind_pcie_to_pci_bridge():
    t = PciTopology.from_spec(TREE)
    a = t.dma_aliases("old5")
    # own RID 06:05.0, then the bridge's secondary bus with devfn 0: 06:00.0
    assert [x.rid for x in a] == [0x0628, 0x0600]
    assert a[1].via == "br"
    assert t.msi_rid("old5") == 0x0600
    # Every device behind the bridge ends with the same alias.
    assert t.dma_aliases("old6")[-1].rid == 0x0600


def test_no_alias_behind_switch_or_pxb():
    t = PciTopology.from_spec(TREE)
    assert [x.rid for x in t.dma_aliases("nvme")] == [0x0300]
    assert t.msi_rid("nvme") == 0x0300
    # A pxb-pcie bus is a root bus: the walk stops there.
    assert [x.rid for x in t.dma_aliases("gpu")] == [0x8100]


def _conv(bridge_extra=None, parent_kind="root_port"):
    spec = {"host_bridge": [{"name": "pcie.0"}],
            "device": [dev("rp", "pcie.0", "1", parent_kind),
                       dev("pb", "rp", "0", "pci_bridge", **(bridge_extra or {})),
                       dev("ep", "pb", "3", pcie=False)]}
    return PciTopology.from_spec(spec)


def test_conventional_bridge_aliases_to_itself():
    t = _conv()
    # rp: bus 0 -> secondary 1; pb on 01:00.0 -> secondary 2; ep 02:03.0 = 0x0218.
    assert [x.rid for x in t.dma_aliases("ep")] == [0x0218, 0x0100]
    assert t.msi_rid("ep") == 0x0100


def test_conventional_bridge_with_pcie_bridge_alias_quirk():
    # ASMedia ASM1083 (1b21:1080) below a PCIe root port gets PCI_DEV_FLAG_PCIE_BRIDGE_ALIAS:
    # the alias becomes its secondary bus, devfn 0.
    t = _conv({"vendor": 0x1B21, "device": 0x1080})
    assert [x.rid for x in t.dma_aliases("ep")] == [0x0218, 0x0200]
    assert t.pcie_bridge_alias_flag(t.devices["pb"])


def test_quirk_needs_pcie_parent_that_is_not_a_pcie_to_pci_bridge():
    spec = {"host_bridge": [{"name": "pcie.0"}],
            "device": [dev("rp", "pcie.0", "1", "root_port"),
                       dev("ppb", "rp", "0", "pcie_pci_bridge"),
                       dev("pb", "ppb", "1", "pci_bridge", alias_quirk=True),
                       dev("ep", "pb", "0", pcie=False)]}
    t = PciTopology.from_spec(spec)
    # rp sec 1; ppb 01:00.0 sec 2; pb 02:01.0 sec 3; ep 03:00.0.
    # pb's parent is a PCIe-to-PCI bridge: no quirk flag, pb aliases to its own RID 02:01.0,
    # then ppb substitutes 02:00.0.
    assert not t.pcie_bridge_alias_flag(t.devices["pb"])
    assert [x.rid for x in t.dma_aliases("ep")] == [0x0300, 0x0208, 0x0200]
    assert t.msi_rid("ep") == 0x0200


def test_reverse_bridge_and_xlate_root():
    spec = {"host_bridge": [{"name": "pcie.0"}],
            "device": [dev("ppb", "pcie.0", "1", "pcie_pci_bridge", xlate_root=True),
                       dev("rev", "ppb", "2", "pci_pcie_bridge"),
                       dev("ep", "rev", "0")]}
    t = PciTopology.from_spec(spec)
    # ppb 00:01.0 sec 1; rev 01:02.0 sec 2; ep 02:00.0. rev aliases to its own RID 01:02.0;
    # ppb is a translation root: the walk stops before it.
    assert [x.rid for x in t.dma_aliases("ep")] == [0x0200, 0x0110]


def test_quirk_devfn_alias_is_reported_but_not_used_for_msi():
    spec = {"host_bridge": [{"name": "pcie.0"}],
            "device": [dev("sata", "pcie.0", "5", dma_alias=["5.1"])]}
    t = PciTopology.from_spec(spec)
    assert [x.rid for x in t.dma_aliases("sata")] == [0x0028, 0x0029]
    # get_msi_id_cb ignores aliases on the device's own bus (phantom functions)
    assert t.msi_rid("sata") == 0x0028


def test_given_bus_numbers():
    spec = {"host_bridge": [{"name": "pcie.0"}],
            "device": [dev("rp1", "pcie.0", "1", "root_port", secondary=0x10, subordinate=0x1F),
                       dev("ep1", "rp1", "0"),
                       dev("rp2", "pcie.0", "2", "root_port")]}
    t = PciTopology.from_spec(spec)
    assert (t.devices["rp1"].secondary, t.devices["rp1"].subordinate) == (0x10, 0x1F)
    assert t.rid("ep1") == 0x1000
    assert t.devices["rp2"].secondary == 0x20       # next after the highest number in use


def test_msi_and_msix_messages():
    spec = {"host_bridge": [{"name": "pcie.0"}],
            "device": [dev("a", "pcie.0", "1", msi={"address": 0x8090040, "data": 0x20,
                                                     "vectors": 4}),
                       dev("b", "pcie.0", "2", msix=[{"address": 0x8090040, "data": 7},
                                                     {"address": 0x80A0040, "data": 9,
                                                      "masked": True}])]}
    t = PciTopology.from_spec(spec)
    m = t.msi_message("a", 2)
    assert (m.kind, m.address, m.data) == ("msi", 0x8090040, 0x22)
    m = t.msi_message("b", 1)
    assert (m.kind, m.address, m.data, m.masked) == ("msix", 0x80A0040, 9, True)
    assert len(t.msi_messages("a")) == 4
    with pytest.raises(ModelError, match="MSI-X vectors 0..1"):
        t.msi_message("b", 2)


def test_round_trip():
    t = PciTopology.from_spec(TREE)
    s = t.to_spec()
    t2 = PciTopology.from_spec(s)
    assert t2.to_spec() == s
    assert {n: d.rid for n, d in t2.devices.items()} == {n: d.rid for n, d in t.devices.items()}


@pytest.mark.parametrize("spec, msg", [
    # two root buses overlapping
    ({"host_bridge": [{"name": "h", "bus_end": 0x90},
                      {"name": "x", "kind": "pxb-pcie", "parent": "h", "addr": "1", "bus": 0x80}]},
     r"host_bridge\[h\]\.bus_end: bus overlap"),
    # two functions on one devfn
    ({"host_bridge": [{"name": "h"}],
      "device": [dev("a", "h", "3"), dev("b", "h", "3.0")]},
     r"device\[b\]\.addr: devfn clash: 03\.0 on h's bus is already a"),
    # the pxb's devfn on pcie.0 counts too
    ({"host_bridge": [{"name": "h"},
                      {"name": "x", "kind": "pxb-pcie", "parent": "h", "addr": "1", "bus": 0x80}],
      "device": [dev("a", "h", "1")]},
     r"devfn clash: 01\.0 on h's bus is already x"),
    # pcie.0 gets buses 0..2 only (pxb at 3): the third root port needs bus 3
    ({"host_bridge": [{"name": "h"},
                      {"name": "x", "kind": "pxb-pcie", "parent": "h", "addr": "9", "bus": 3}],
      "device": [dev("r1", "h", "1", "root_port"), dev("r2", "h", "2", "root_port"),
                 dev("r3", "h", "3", "root_port")]},
     r"device\[r3\]: bus range exhausted: needs bus 0x3 but h's range ends at 0x2"),
    # a given secondary colliding with an enumerated one
    ({"host_bridge": [{"name": "h"}],
      "device": [dev("r1", "h", "1", "root_port"),
                 dev("r2", "h", "2", "root_port", secondary=1)]},
     r"device\[r2\]\.secondary: bus overlap: bus 0x1 is already r1's"),
    ({"host_bridge": [{"name": "h"}],
      "device": [dev("r1", "h", "1", "root_port"), dev("e", "r1", "1")]},
     r"device\[e\]\.addr: slot 0x1 below root_port r1: a PCIe link carries device 0 only"),
    ({"host_bridge": [{"name": "h"}],
      "device": [dev("r1", "h", "1", "root_port"), dev("u", "r1", "0", "upstream_port"),
                 dev("e", "u", "0")]},
     r"device\[e\]\.kind: endpoint is not allowed on the bus below upstream_port u"),
    ({"host_bridge": [{"name": "h"}],
      "device": [dev("p", "h", "1", "pcie_pci_bridge"), dev("rev", "p", "0", "pci_pcie_bridge"),
                 dev("e", "rev", "2")]},
     r"device\[e\]\.addr: slot 0x2 below pci_pcie_bridge rev"),
    ({"host_bridge": [{"name": "h"}], "device": [dev("e", "h", "3.2")]},
     r"device\[e\]\.addr: 03\.2 on h's bus has no function 0 in its slot"),
    # a given subordinate that leaves no room for the bridges below
    ({"host_bridge": [{"name": "h"}],
      "device": [dev("r1", "h", "1", "root_port", secondary=1, subordinate=1),
                 dev("u", "r1", "0", "upstream_port")]},
     r"device\[u\]: bus range exhausted: needs bus 0x2 but r1's range ends at 0x1"),
    ({"host_bridge": [{"name": "h"}], "device": [dev("e", "nope", "0")]},
     r"device\[e\]\.parent: no host bridge or bridge named 'nope'"),
    ({"host_bridge": [{"name": "h"}],
      "device": [dev("e", "h", "1", msi={"address": 0x8090040, "data": 1, "vectors": 2})]},
     r"device\[e\]\.msi\.data: 0x1 has its low 1 bits set"),
    ({"host_bridge": [{"name": "h"}], "device": [dev("e", "h", "1", colour="red")]},
     r"device\[0\]: unknown key 'colour'"),
    ({"host_bridge": [{"name": "h"}], "device": [dev("e", "h", "20.0")]},
     r"device\[e\]\.addr: slot 0x20"),
])
def test_spec_errors(spec, msg):
    with pytest.raises(ScenarioError, match=msg) as e:
        PciTopology.from_spec(spec)
    assert "\n" not in str(e.value)
