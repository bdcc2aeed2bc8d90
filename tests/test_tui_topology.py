"""The topology tree's PCI and vSMMU parts, the vSMMU tab, the MSI stepper's jump to the ITS
tables and the ITS panel at 80x24, driven by Pilot; and the `pci` command behind the tree.

Expected values, derived from the scenario files (not from the code):
- default (smmudbg/data/default.toml): one host bridge pcie.0 owning buses 00-ff; nic0 on its
  root bus at addr 01.0: RID 0x0008; the IORT is derived (identity), so StreamID 0x8 at smmu0,
  DeviceID 0x8. its0: nic0 has 8 events (DTE.Size = 3 EventID bits - 1 = 2), EventID 0 ->
  LPI 8192 on ICID 0, EventID 1 -> LPI 8193 on ICID 1; collections ICID 0 -> redistributor 0,
  ICID 1 -> 1. nic0's MSI-X vector 1 writes data 1: EventID 1.
- examples/two-vsmmu.toml: pcie.0 and the pxb-pcie pxb1 (bus_nr 0x80, at 00:03.0 on pcie.0);
  pcie.0 owns the buses below 0x80 (00-7f), pxb1 80-ff. rp0 at 00:01.0 takes secondary bus 1:
  nic0 RID 0x0100 -> smmu0 SID 0x100. rp1 at 80:00.0 takes bus 0x81: nic1 RID 0x8100 -> smmu1
  SID 0x8100. vm0's vsmmu0 (on smmu0) has gnic0 vSID 0x100 -> nic0 pSID 0x100, vsmmu1 (smmu1)
  gnic1 vSID 0x8100 -> nic1 pSID 0x8100; VMIDs: viommu0 2 on smmu0, viommu1 1 on smmu1.
"""
from __future__ import annotations

import os

import pytest

pytest.importorskip("textual")

from textual.widgets import DataTable, RichLog, Static, TabbedContent, Tree  # noqa: E402

from smmudbg.session import Session  # noqa: E402
from smmudbg.tui.itsview import ItsView  # noqa: E402
from smmudbg.tui.vsmmuview import VsmmuView  # noqa: E402
from smmudbg.tui.walkstepper import WalkStepper  # noqa: E402
from test_tui import cells, command, drive, text_of  # noqa: E402
from test_tui_system import labels, node  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TWO = os.path.join(ROOT, "examples", "two-vsmmu.toml")


def two():
    return Session.from_file(TWO)


def logged(app, text: str) -> bool:
    """text is in the output pane (which wraps long lines at a space: compared without
    whitespace)."""
    out = "".join(line.text for line in app.query_one("#out", RichLog).lines)
    return "".join(text.split()) in "".join(out.split())


async def select(app, pilot, prefix):
    tree = app.query_one("#topo", Tree)
    tree.select_node(node(tree, prefix))
    await pilot.pause()
    await pilot.pause()


# -- item 1: host bridge -> root port -> endpoint -----------------------------------------------
def test_default_tree_has_the_host_bridge_over_its_endpoint():
    async def body(app, pilot):
        t = labels(app.query_one("#topo", Tree))
        assert t["PCI"] == ["pcie.0 bus 00-ff"]
        assert t["pcie.0 bus 00-ff"] == ["nic0 RID 0x8 smmu0 SID 0x8"]    # on the root bus
        await select(app, pilot, "pcie.0 bus")
        assert logged(app, "pcie.0: host bridge, segment 0, root bus 00, buses 00-ff "
                           "(enumeration used 00-00); on its root bus: nic0")
        await select(app, pilot, "nic0 RID 0x8")            # the endpoint: its stream
        assert app.current == ("smmu0", 0x8)
    drive(body)


def test_two_vsmmu_tree_has_both_host_bridges_ports_and_endpoints():
    async def body(app, pilot):
        t = labels(app.query_one("#topo", Tree))
        assert t["PCI"] == ["pcie.0 bus 00-7f", "pxb1 pxb-pcie bus 80-ff"]
        assert t["pcie.0 bus 00-7f"] == ["rp0 RP 00:01.0 bus 01"]
        assert t["rp0 RP 00:01.0 bus 01"] == ["nic0 RID 0x100 smmu0 SID 0x100"]
        assert t["pxb1 pxb-pcie bus 80-ff"] == ["rp1 RP 80:00.0 bus 81"]
        assert t["rp1 RP 80:00.0 bus 81"] == ["nic1 RID 0x8100 smmu1 SID 0x8100"]
        # selecting a port or a bridge shows its details
        await select(app, pilot, "rp1 RP")
        assert logged(app, "rp1: root port 0000:80:00.0 RID 0x8000 on pxb1; secondary bus "
                           "81, subordinate 81; below: nic1")
        await select(app, pilot, "pxb1 pxb-pcie")
        assert logged(app, "pxb1: pxb-pcie expander at 0000:00:03.0 on pcie.0")
        assert logged(app, "buses 80-ff (enumeration used 80-81)")
        # an endpoint focuses its stream at its own SMMU
        await select(app, pilot, "nic1 RID 0x8100")
        assert app.current == ("smmu1", 0x8100)
    drive(body, session=two())


def test_pci_command_on_a_switch():
    """`pci` on a topology with a switch: the ports' bus ranges as enumeration gives them
    (depth first in devfn order: rp0 takes 1, the upstream port 2, the downstream ports 3 and
    4), the endpoints' RIDs and, through the derived (identity) IORT, their StreamIDs."""
    text = open(os.path.join(ROOT, "smmudbg", "data", "default.toml")).read()
    head = text[:text.index("[[pci.host_bridge]]")]
    head = head[:head.index("[gic]")]
    s = Session(head + """
[[pci.host_bridge]]
name = "pcie.0"
[[pci.device]]
name = "rp0"
kind = "root_port"
parent = "pcie.0"
addr = "1"
[[pci.device]]
name = "usp"
kind = "upstream_port"
parent = "rp0"
addr = "0"
[[pci.device]]
name = "dsp0"
kind = "downstream_port"
parent = "usp"
addr = "0"
[[pci.device]]
name = "dsp1"
kind = "downstream_port"
parent = "usp"
addr = "1"
[[pci.device]]
name = "ep0"
parent = "dsp0"
addr = "0"
[[pci.device]]
name = "ep1"
parent = "dsp1"
addr = "0"
""", "switch")
    r = s.run("pci").to_json()
    assert [(h["name"], h["bus"], h["bus_end"], h["used"]) for h in r["hosts"]] == \
        [("pcie.0", 0, 0xFF, 4)]
    rows = {d["name"]: d for d in r["devices"]}
    assert [d["name"] for d in r["devices"]] == ["rp0", "usp", "dsp0", "ep0", "dsp1", "ep1"]
    assert [(rows[n]["secondary"], rows[n]["subordinate"]) for n in
            ("rp0", "usp", "dsp0", "dsp1")] == [(1, 4), (2, 4), (3, 3), (4, 4)]
    assert (rows["ep0"]["rid"], rows["ep1"]["rid"]) == (0x300, 0x400)
    assert rows["ep1"]["stream_ids"] == [["smmu0", 0x400]] and rows["ep1"]["device_id"] == 0x400
    assert rows["dsp1"]["parent"] == "usp" and rows["ep1"]["depth"] == 3

    async def body(app, pilot):
        t = labels(app.query_one("#topo", Tree))
        assert t["rp0 RP 00:01.0 bus 01-04"] == ["usp switch USP 01:00.0 bus 02-04"]
        assert t["usp switch USP 01:00.0 bus 02-04"] == ["dsp0 switch DSP 02:00.0 bus 03",
                                                          "dsp1 switch DSP 02:01.0 bus 04"]
        assert t["dsp1 switch DSP 02:01.0 bus 04"] == ["ep1 RID 0x400 smmu0 SID 0x400"]
    drive(body, session=s)


def test_pci_command_without_a_pci_table():
    s = Session.from_file(os.path.join(ROOT, "examples", "pasid-2lvl.toml"))
    r = s.run("pci").to_json()
    assert r["hosts"] == [] and "no PCI topology" in r["message"]


# -- item 2: vSMMUs under their VM, the vSMMU tab -------------------------------------------------
def test_vsmmu_nodes_under_the_vm_and_the_vsmmu_tab():
    async def body(app, pilot):
        t = labels(app.query_one("#topo", Tree))
        assert t["vm0"][1:] == ["vSMMU vsmmu0 on smmu0", "vSMMU vsmmu1 on smmu1"]
        assert t["vSMMU vsmmu0 on smmu0"] == ["gnic0 vSID 0x100 -> nic0 pSID 0x100"]
        assert t["vSMMU vsmmu1 on smmu1"] == ["gnic1 vSID 0x8100 -> nic1 pSID 0x8100"]
        await select(app, pilot, "vSMMU vsmmu1")
        assert app.query_one(TabbedContent).active == "vsmmu"
        v = app.query_one(VsmmuView)
        head = text_of(app.query_one("#vs-head", Static))
        assert head.startswith("vsmmu1 of vm0: accelerated") and "on smmu1 VMID 1" in head
        rows = cells(app.query_one("#vs-table", DataTable))
        # guest side | host side: vSID, guest device, ... | device, pSID, ..., S2VMID, sync
        assert len(rows) == 1
        assert rows[0][:2] == ["0x8100", "gnic1"] and rows[0][-1] == "vsmmu1"
        assert rows[0][5:7] == ["nic1", "0x8100"] and rows[0][8] == "0x1"
        assert rows[0][9] == "yes"
        # a guest device node: its vSMMU with the row in focus; Enter opens the host stream
        await select(app, pilot, "gnic0 vSID")
        t = app.query_one("#vs-table", DataTable)
        assert cells(t)[t.cursor_row][:2] == ["0x100", "gnic0"]
        assert cells(t)[t.cursor_row][8] == "0x2"             # viommu0's VMID on smmu0
        assert v.target == "vsmmu0"
        t.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert app.current == ("smmu0", 0x100)
        assert app.query_one(TabbedContent).active == "streams"
    drive(body, session=two())


def test_vsmmu_command_shows_the_tab():
    async def body(app, pilot):
        await command(app, pilot, "vsmmu vm0")
        assert app.query_one(TabbedContent).active == "vsmmu"
        assert [r[-1] for r in cells(app.query_one("#vs-table", DataTable))] == \
            ["vsmmu0", "vsmmu1"]
    drive(body, session=two())


# -- items 3 and 4: MSI stepper -> ITS tables; the ITS panel at 80x24 -----------------------------
async def msi_at(app, pilot, name):
    await command(app, pilot, "msi nic0 1 dry")
    st = app.query_one(WalkStepper)
    i = next(k for k, x in enumerate(st.msi_rows) if x["name"] == name)
    st.query_one("#walk-steps", DataTable).move_cursor(row=i)
    await pilot.pause()
    return st


def its_rows(app):
    t = app.query_one("#its-table", DataTable)
    return cells(t), t.cursor_row


def test_msi_ite_step_jumps_to_the_itt_row():
    async def body(app, pilot):
        st = await msi_at(app, pilot, "ITS ITE")
        assert "its0 itt row 0x1 in the ITS panel" in text_of(st.query_one("#walk-detail"))
        await pilot.press("j")
        await pilot.pause()
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "its"
        its = app.query_one(ItsView)
        assert (its.kind, its.device, its.mark) == ("itt", 0x8, 1)
        rows, cur = its_rows(app)
        # nic0's ITT: EventID 0 -> LPI 8192 ICID 0, EventID 1 -> 8193 ICID 1; the cursor on 1
        assert [[r[0], r[3], r[4], r[5]] for r in rows] == [["0", "8192", "0", "0"],
                                                           ["1", "8193", "1", "1"]]
        assert cur == 1 and app.focused is app.query_one("#its-table")
        assert text_of(app.query_one("#its-dte")).startswith("DeviceID 0x8 (nic0) DTE @")
    drive(body, size=(80, 24))


def test_msi_dte_cte_and_translater_steps_jump_by_enter_and_click():
    async def body(app, pilot):
        await msi_at(app, pilot, "ITS CTE")
        await pilot.press("enter")                     # Enter on the step
        await pilot.pause()
        await pilot.pause()
        rows, cur = its_rows(app)
        assert app.query_one(ItsView).kind == "collections"
        assert [[r[0], r[3]] for r in rows] == [["0", "0"], ["1", "1"]] and cur == 1
        app.show_tab("walk")
        await pilot.pause()
        await msi_at(app, pilot, "ITS DTE")
        await pilot.click("#walk-detail", offset=(4, 2))   # the "-> ITS panel" link line
        await pilot.pause()
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "its"
        rows, cur = its_rows(app)
        # the device table: nic0's DTE, 8 events (Size 2)
        assert app.query_one(ItsView).kind == "devices"
        assert [r[0] for r in rows] == ["0x8"] and rows[0][1] == "nic0"
        assert rows[0][4:] == ["2", "0x41003000", "8"] and cur == 0
        app.show_tab("walk")
        await pilot.pause()
        await msi_at(app, pilot, "region")            # GITS_TRANSLATER: the write's DTE
        await pilot.press("j")
        await pilot.pause()
        await pilot.pause()
        assert app.query_one(ItsView).kind == "devices"
    drive(body, size=(80, 24))


def test_its_panel_at_80x24_shows_table_rows():
    async def body(app, pilot):
        app.show_tab("its")
        await pilot.pause()
        await pilot.pause()
        head = app.query_one("#its-head")
        assert head.size.height <= 2
        t = app.query_one("#its-table", DataTable)
        # the mappings of the default scenario: two rows, both on screen below the header
        assert cells(t) == [["0x8", "nic0", "0", "8192", "0", "0"],
                            ["0x8", "nic0", "1", "8193", "1", "1"]]
        assert t.region.height >= 3 and t.region.bottom <= app.screen.size.height
        # details on demand; t walks the tables
        assert not app.query_one("#its-more-box").display
        t.focus()
        await pilot.press("r")
        await pilot.pause()
        assert app.query_one("#its-more-box").display
        assert "collections: ICID 0 -> redistributor 0" in text_of(app.query_one("#its-more"))
        await pilot.press("r", "t")
        await pilot.pause()
        assert app.query_one(ItsView).kind == "devices" and cells(t)[0][0] == "0x8"
        await pilot.click("#its-kinds", offset=(20, 0))       # " Collections " on the bar
        await pilot.pause()
        assert app.query_one(ItsView).kind == "collections"
    drive(body, size=(80, 24))
