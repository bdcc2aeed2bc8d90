"""The UI on an Intel VT-d system (issue 16 item 7), driven by Textual's Pilot: the tree's VT-d
branch, the walk stepper through root, context, PASID directory and PASID entries, each
first-stage level with its second-stage sub-walk and the final second stage, the MSI stepper
through the IRTE, and a missing PASID-based invalidation that `check` names.

Expected values come from examples/vtd-nested.toml: nic0 is RID 0x10 (00:02.0), its PASID 0 is
nested (guest-fs over vm0-s2, 4 levels each); guest-fs maps 0x7F00_0000_0000 -> GPA
0x0200_0000, vm0's GPA 0 is PA 0x6000_0000 (2M second-stage leaves: SS_PDE_2M); nic0's IRTE 1
holds vector 0x42, destination 1, lowest priority (its MSI-X vector 1)."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytest.importorskip("textual")

from textual.widgets import DataTable, Static, Tree  # noqa: E402

from smmudbg.session import Session  # noqa: E402
from smmudbg.tui.app import SmmuDbgApp  # noqa: E402
from smmudbg.tui.checkview import CheckView  # noqa: E402
from smmudbg.tui.walkstepper import WalkStepper  # noqa: E402
from test_tui_steps import cells, command, out_text, text_of  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "examples" / "vtd-nested.toml"
VA = 0x7F00_0000_1234


def drive(body, size=(140, 44)):
    async def main():
        app = SmmuDbgApp(Session(SCENARIO.read_text(), "examples/vtd-nested.toml"))
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await body(app, pilot)
    asyncio.run(main())


def shown(w) -> str:
    """What a Static holding a rich renderable shows, as plain text."""
    import io
    from rich.console import Console
    c = Console(width=200, record=True, file=io.StringIO())
    c.print(w.content)
    return c.export_text()


def labels(tree: Tree) -> list[str]:
    out = []

    def walk(n):
        out.append(str(n.label))
        for c in n.children:
            walk(c)
    walk(tree.root)
    return out


def test_tree_shows_the_vtd_unit_its_devices_and_pasids():
    async def body(app, pilot):
        ls = labels(app.query_one("#topo", Tree))
        assert "dmar0 VT-d" in ls
        assert "nic0 00:02.0 RID 0x10 nested" in ls
        assert "gpu0 03:12.0 RID 0x390 second_stage" in ls
        assert "PASID 9: nested" in ls
        # no SMMU here: the Events, CmdQ and Caches tabs are the unit's
        assert app.vtd_unit == "dmar0" and app.smmu is None
        app.show_tab("events")
        await pilot.pause()
        await pilot.pause()
        assert "dmar0 fault records" in shown(app.query_one("#ev-head", Static))
    drive(body)


def test_walk_stepper_steps_the_pasid_entry_and_both_stages():
    async def body(app, pilot):
        await command(app, pilot, f"walk nic0 {VA:#x} dry")
        st = app.query_one(WalkStepper)
        names = [r[1] for r in cells(st.query_one("#walk-steps", DataTable))]
        assert names[:4] == ["root entry", "context entry", "PASID dir entry", "PASID entry"]
        # each first-stage level: its table's GPA through the 3 second-stage levels (2M leaf),
        # then the entry; then the output GPA through the second stage
        fs = ["FS PML4E", "FS PDPE", "FS PDE", "FS PTE"]
        sub = ["SS PML4E (FS table)", "SS PDPE (FS table)", "SS PDE (FS table)"]
        assert names[4:] == sum(([*sub, f] for f in fs), []) + ["SS PML4E", "SS PDPE", "SS PDE"]
        summary = text_of(st.query_one("#walk-summary", Static))
        assert "GPA 0x2001234 -> PA 0x62001234" in summary and "nested" in summary
        detail = st.query_one("#walk-detail", Static)
        table = st.query_one("#walk-steps", DataTable)
        table.focus()
        for _ in range(3):
            await pilot.press("n")
            await pilot.pause()
        assert st.index == 3
        d = text_of(detail)
        assert "step 4/" in d and "PASID_ENTRY" in d and "nested" in d and "PGTT" in d
        await pilot.press("n")
        await pilot.pause()
        assert "SS_PML4E" in text_of(detail) and "GPA" not in text_of(detail).split("\n")[1]
        while st.index < len(names) - 1:
            await pilot.press("n")
            await pilot.pause()
        d = text_of(detail)
        assert "SS_PDE_2M" in d and "PS" in d and "large" in d
        await pilot.press("p")
        await pilot.pause()
        assert st.index == len(names) - 2
    drive(body)


def test_msi_stepper_follows_the_irte():
    async def body(app, pilot):
        await command(app, pilot, "msi nic0 1 dry")
        st = app.query_one(WalkStepper)
        rows = cells(st.query_one("#walk-steps", DataTable))
        assert [r[1] for r in rows] == ["interrupt request", "IRTE", "interrupt"]
        assert rows[1][3] == "1"                                  # IRTE index 1
        assert "vector 0x42 dest 0x1" in rows[2][5] and rows[2][6] == "lowest_priority"
        summary = text_of(st.query_one("#walk-summary", Static))
        assert "vector 0x42" in summary and "logical" in summary
        st.query_one("#walk-steps", DataTable).focus()
        await pilot.press("n")
        await pilot.pause()
        d = text_of(st.query_one("#walk-detail", Static))
        assert "IRTE at" in d and "DLM" in d and "0x42" in d
        # gpu0 using nic0's IRTE 0: source-ID verification fails (26h)
        await command(app, pilot, "msi dmar0 0x390 0xfee00010 data=0 dry")
        rows = cells(st.query_one("#walk-steps", DataTable))
        assert rows[-1][6] == "fault" and "IR_SID_VERIFY" in \
            text_of(st.query_one("#walk-summary", Static))
    drive(body)


def test_missing_pasid_invalidation_is_stale_and_check_names_the_descriptor():
    async def body(app, pilot):
        await command(app, pilot, f"walk nic0 {VA:#x}")
        await command(app, pilot, f"inject clear-present nic0 {VA:#x}")
        out = out_text(app)
        assert "P_IOTLB_INV_DSC" in out
        # the change report: the IOTLB entry the walk filled is now stale
        assert "dmar0 IOTLB entry DID 2 PASID 0 0x7f0000001000+0x1000 is now STALE" in out
        await command(app, pilot, "tlb dmar0")                 # the Caches tab, on dmar0
        await pilot.pause()
        head = shown(app.query_one("#tlb-head", Static))
        assert "dmar0 IOTLB (1)" in head and "STALE: P_IOTLB_INV_DSC" in head \
            and "0x7f0000001000" in head
        await command(app, pilot, "cmdq dmar0")
        await pilot.pause()
        assert "invalidation queue" in shown(app.query_one("#cq-head", Static))
        await command(app, pilot, "check")
        cv = app.query_one(CheckView)
        rows = cells(cv.query_one(DataTable))
        assert rows and rows[0][0] == "dmar0" and "SFS_2" in rows[0][2]
        assert rows[0][3] == "P_IOTLB_INV_DSC G=page DID=2 PASID=0 ADDR=0x7f0000001000 AM=0"
        cv.query_one(DataTable).focus()
        await pilot.press("f")                                    # run the fix
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        await command(app, pilot, f"walk nic0 {VA:#x}")
        st = app.query_one(WalkStepper)
        assert "SFS_2" in text_of(st.query_one("#walk-summary", Static))
    drive(body)


def test_choosing_a_vtd_device_in_the_tree_fills_the_walk_form():
    async def body(app, pilot):
        tree = app.query_one("#topo", Tree)
        node = next(n for n in tree._tree_nodes.values()
                    if str(n.label) == "PASID 9: nested")
        tree.select_node(node)
        for _ in range(20):
            await pilot.pause()
        st = app.query_one(WalkStepper)
        assert st.query_one("#walk-target").value == "gpu0"
        assert st.query_one("#walk-ssid").value == "9"
        assert "RID 0x0390 (03:12.0) behind dmar0, PASID 9" in out_text(app)
    drive(body)


def test_inject_menu_on_vtd_offers_the_vtd_injections():
    from smmudbg.tui.inject import InjectMenu, menu_lines
    lines = [line for line, _ in menu_lines(None, None, "dmar0", "nic0")]
    assert "inject clear-present nic0 " in lines            # still needs the address
    assert "inject invalidate-pasid nic0" in lines and "inject corrupt-context nic0" in lines
    assert "drop-invalidations dmar0 1" in lines and "cmd dmar0 PC_INV_DSC G=global" in lines
    assert not any(x.startswith(("inject corrupt-ste", "inject unmap")) for x in lines)

    async def body(app, pilot):
        await command(app, pilot, f"walk nic0 {VA:#x} dry")
        app.action_inject()
        await pilot.pause()
        menu = app.screen
        assert isinstance(menu, InjectMenu)
        assert ("inject invalidate-pasid nic0",) in {(x[0],) for x in menu.lines}
        await pilot.press("escape")
    drive(body)


def test_tables_tab_follows_the_vtd_walk_steps():
    """A first-stage step shows nic0's first-stage ranges with the one holding the IOVA under
    the cursor and the entry the step read; a second-stage step the second stage, at the GPA."""
    from smmudbg.tui.pagetables import PageTableView

    async def body(app, pilot):
        await command(app, pilot, f"walk nic0 {VA:#x} dry")
        st = app.query_one(WalkStepper)
        st.query_one("#walk-steps", DataTable).focus()
        for _ in range(7):                 # root, context, PASID dir, PASID, 3 SS: FS PML4E
            await pilot.press("n")
            await pilot.pause()
        app.show_tab("tables")
        await pilot.pause()
        await pilot.pause()
        pv = app.query_one(PageTableView)
        head = text_of(pv.query_one("#pt-head", Static))
        assert head.startswith("pt nic0 stage=1") and "first stage" in head and "nested" in head
        tree = pv.query_one("#pt-tree", Tree)
        row = pv.rows[tree.cursor_node.data]
        # guest-fs maps 0x7F00_0000_0000 -> GPA 0x0200_0000: the range holding VA
        assert row["in"] <= VA <= row["end"]
        assert row["out"] - row["in"] == 0x200_0000 - 0x7F00_0000_0000
        assert "FS_PML4E" in text_of(pv.query_one("#pt-vtd", Static))
        assert pv.query_one("#pt-bits-box").display
        app.show_tab("walk")
        await pilot.pause()
        st.query_one("#walk-steps", DataTable).focus()
        while st.index < len(st.walk["steps"]) - 1:
            await pilot.press("n")
            await pilot.pause()
        app.show_tab("tables")
        await pilot.pause()
        await pilot.pause()
        head = text_of(pv.query_one("#pt-head", Static))
        assert head.startswith("pt nic0 stage=2") and "second stage" in head
        row = pv.rows[tree.cursor_node.data]
        gpa = 0x200_0000 + (VA & 0xFFFF)
        # vm0's GPA 0 is PA 0x6000_0000, mapped with 2M second-stage leaves
        assert row["in"] <= gpa <= row["end"] and row["out"] - row["in"] == 0x6000_0000
        assert "SS_PDE_2M" in text_of(pv.query_one("#pt-vtd", Static))
    drive(body)
