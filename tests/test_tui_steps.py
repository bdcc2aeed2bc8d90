"""The UI's MSI stepping, nested page-table view and field editor, driven by Textual's Pilot.

Expected values come from the default scenario's TOML (smmudbg/data/default.toml) and the
architecture, not from the code under test:

  nic0   PCI 00:01.0, so RID 0x0008; the IORT is derived (QEMU virt: RID -> StreamID identity,
         StreamID -> DeviceID identity), so StreamID 0x8 and DeviceID 0x8.
         MSI-X vector N writes data N to IOVA 0x0800_0040 (Linux's SW_MSI window).
         nic0-dma (stage 1, tables at IPA pool 0x4f00_0000) maps IOVA 0x0800_0000 -> IPA
         0x0809_0000 (4K) and 0x1000_0000 -> IPA 0x4100_0000 (2M block at level 2, entry 128
         of the level-2 table); vm0-s2 maps IPA 0x0809_0000 -> PA 0x0809_0000 and vm0's RAM
         IPA 0x4000_0000 -> PA 0x6000_0000.
  its0   base 0x0808_0000: GITS_TRANSLATER is in the translation frame, base + 0x1_0040 =
         0x0809_0040 (IHI 0069). nic0's event 1 is LPI 8193 in collection 1, collection 1
         targets redistributor 1; event 0 is LPI 8192, collection 0 -> redistributor 0.
"""
from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("textual")

from textual.widgets import DataTable, Input, Static, TabbedContent, Tree  # noqa: E402

from smmudbg.session import Session  # noqa: E402
from smmudbg.tui.app import SmmuDbgApp  # noqa: E402
from tui_pilot import command  # noqa: E402
from smmudbg.tui.fieldedit import FieldEditor, check_value  # noqa: E402
from smmudbg.tui.msisteps import msi_line  # noqa: E402
from smmudbg.tui.walkstepper import WalkStepper  # noqa: E402
from smmudbg.arch.fieldtable import fmt  # noqa: E402

GITS_TRANSLATER = 0x0808_0000 + 0x1_0040


def drive(body, size=(120, 40)):
    async def main():
        app = SmmuDbgApp(Session())
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await body(app, pilot)
    asyncio.run(main())


def cells(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def text_of(w) -> str:
    return str(w.render())


def out_text(app) -> str:
    """The output pane's text, its wrapped lines joined."""
    return " ".join(" ".join(str(x.text) for x in app.query_one("#out").lines).split())


async def look(app, pilot, tab):
    """Show a tab: a hidden view follows the stepper when it is next shown."""
    app.show_tab(tab)
    await pilot.pause()


async def step_to(pilot, st, name):
    """Step forward (key n) until the current row is called name."""
    table = st.query_one("#walk-steps", DataTable)
    table.focus()
    for _ in range(table.row_count):
        if str(table.get_row_at(st.index)[1]) == name:
            return
        await pilot.press("n")
        await pilot.pause()
    raise AssertionError(f"no row {name!r}: {[r[1] for r in cells(table)]}")


# -- MSI stepping ------------------------------------------------------------------------------
def test_msi_line_forms():
    assert msi_line("nic0", "1") == "msi nic0 1 dry"
    assert msi_line("nic0", "0", dry=False) == "msi nic0 0"
    assert msi_line("smmu0 0x8", "1", "0x8000040") == "msi smmu0 0x8 0x8000040 data=1 dry"


def test_msi_steps_from_the_rid_to_the_lpi():
    async def body(app, pilot):
        await pilot.press("w")
        await pilot.pause()
        st = app.query_one(WalkStepper)
        st.query_one("#walk-target", Input).value = "nic0"
        st.query_one("#msi-vector", Input).value = "1"
        await pilot.click("#msi-go")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.session.log[-1].command == "msi nic0 1 dry"     # dry by default, logged
        r = st.msi
        assert r is not None and r["ok"] and st.walk is None
        rows = cells(st.query_one("#walk-steps", DataTable))
        names = [x[1] for x in rows]
        # the layers in the order the write meets them
        assert names[0] == "RID" and rows[0][2] == "0000:00:01.0"
        assert names[1:4] == ["IORT rc", "IORT smmu0", "IORT its"]
        assert names[4:6] == ["L1STD", "STE"]
        assert "CD" in names and [n for n in names if n.startswith("S1 ")] == \
            ["S1 L0", "S1 L1", "S1 L2", "S1 L3"]      # a 4K page: levels 0..3
        i_region = names.index("region")
        assert names[i_region - 1].startswith("S2 ")   # the final stage 2 before the region
        assert names[i_region + 1:] == ["ITS DTE", "ITS ITE", "ITS CTE", "LPI"]
        assert rows[names.index("ITS DTE")][3] == "0x8"            # DeviceID
        assert rows[names.index("ITS ITE")][3] == "0x1"            # EventID = the data
        summary = text_of(st.query_one("#walk-summary", Static))
        assert "LPI 8193 collection 1 redistributor 1" in summary
        assert f"{GITS_TRANSLATER:#x}" in summary and "0x8000040" in summary
        # stepping: the STE row shows nic0's STE in the bit view, a stage-1 row the tables
        await step_to(pilot, st, "STE")
        assert app.query_one("#entryview").target == ("smmu0", 0x8)
        await step_to(pilot, st, "CD")
        await pilot.pause()
        assert "SSID 0" in app.query_one("#entryview").cd_head.plain
        await step_to(pilot, st, "S1 L2")
        await look(app, pilot, "tables")
        pt = app.query_one("#ptview")
        assert pt.source == "smmu0 0x8" and pt.stage == 1
        node = app.query_one("#pt-tree", Tree).cursor_node
        assert node is not None and "0x8000000-0x81fffff" in str(node.label)
        await look(app, pilot, "walk")
        await step_to(pilot, st, "ITS ITE")
        detail = text_of(st.query_one("#walk-detail", Static))
        assert "INTID=0x2001" in detail and "ICID=1" in detail      # 8193 = 0x2001
        await step_to(pilot, st, "LPI")
        assert "redistributor 1" in text_of(st.query_one("#walk-detail", Static))
        # dry: the LPI was put back, nothing pending
        assert app.bridge.query("its its0")["pending"] == []
        await command(app, pilot, "msi nic0 1")                   # not dry: the LPI pends
        assert app.bridge.query("its its0")["pending"] == [{"target": 1, "intids": [8193]}]
    drive(body)


def test_msi_raw_form_from_smmu_sid_address_data():
    async def body(app, pilot):
        await pilot.press("w")
        await pilot.pause()
        st = app.query_one(WalkStepper)
        st.query_one("#walk-target", Input).value = "smmu0 0x8"
        st.query_one("#walk-addr", Input).value = "0x8000040"
        st.query_one("#msi-vector", Input).value = "0"
        st.query_one("#msi-vector", Input).focus()
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.session.log[-1].command == "msi smmu0 0x8 0x8000040 data=0 dry"
        assert "LPI 8192 collection 0 redistributor 0" in text_of(
            st.query_one("#walk-summary", Static))
        # with the DeviceID given (no IORT lookup) the result still names the SMMU and SID
        await command(app, pilot, "msi smmu0 0x8 0x8000040 data=1 devid=0x8 dry")
        summary = text_of(st.query_one("#walk-summary", Static))
        assert "MSI smmu0 SID 0x8 raw" in summary and "LPI 8193" in summary
    drive(body)


def test_broken_msi_stops_at_the_failing_step_with_reason_and_fix():
    async def body(app, pilot):
        await command(app, pilot, "inject its-page nic0")     # the doorbell page unmapped
        await command(app, pilot, "msi nic0 0 dry")
        st = app.query_one(WalkStepper)
        r = st.msi
        assert not r["ok"] and r["failed"] == "smmu"
        rows = cells(st.query_one("#walk-steps", DataTable))
        names = [x[1] for x in rows]
        assert "region" not in names and not any(n.startswith("ITS") for n in names)
        assert names[-1].startswith("S2 ")          # stops in the SMMU's walk
        assert rows[-1][6] == "F_TRANSLATION"
        assert "broken at smmu" in text_of(st.query_one("#walk-summary", Static))
        await step_to(pilot, st, names[-1])
        while st.index < len(names) - 1:
            await pilot.press("n")
        detail = text_of(st.query_one("#walk-detail", Static))
        assert f"broken: {r['reason']}" in detail and f"fix: {r['fix']}" in detail
    drive(body)


# -- nested page tables ------------------------------------------------------------------------
def test_nested_page_table_view_and_stepper_highlight():
    async def body(app, pilot):
        await command(app, pilot, "pt nic0 stage=nested")
        assert app.query_one(TabbedContent).active == "tables"
        pt = app.query_one("#ptview")
        assert pt.stage == "nested"
        head = text_of(app.query_one("#pt-head", Static))
        assert "IOVA -> IPA -> PA" in head
        tree = app.query_one("#pt-tree", Tree)

        def labels(node):
            out = [str(node.label)]
            for c in node.children:
                out += labels(c)
            return out
        # lazily: the ranges under the stage-1 block are not nodes until it is opened
        assert not any("IPA 0x41000000 -> PA" in x for x in labels(tree.root))
        assert pt.select_range(0x1000_0000)
        await pilot.pause()
        node = tree.cursor_node
        assert "0x10000000-0x101fffff -> IPA 0x41000000 -> PA 0x61000000" in str(node.label)
        assert "s1 rw" in str(node.label)
        # the walk stepper drives the same view: its stage-1 level 2 step is the block row,
        # with the descriptor's fields in the bit view; its final stage 2 the nested range
        await command(app, pilot, "walk nic0 0x10000000 dry")
        st = app.query_one(WalkStepper)
        await step_to(pilot, st, "S1 L2")
        await look(app, pilot, "tables")
        assert pt.stage == "nested"
        assert "L2 0x10000000-0x101fffff block -> 0x41000000" in str(tree.cursor_node.label)
        bits = {r[0]: r for r in app.query_one("#pt-bits").rows}
        assert bits["OA"][4] == "address 0x41000000" and bits["AF"][3] == "0x1"
        assert "S1_BLOCK" in text_of(app.query_one("#pt-bits-head", Static))
        await look(app, pilot, "walk")
        st.query_one("#walk-steps", DataTable).focus()
        await pilot.press(*["n"] * (len(st.walk["steps"]) - 1 - st.index))
        await pilot.pause()
        await look(app, pilot, "tables")
        assert "-> IPA 0x41000000 -> PA 0x61000000" in str(tree.cursor_node.label)
        # an MSI's walk drives it the same way: its final stage 2 is the doorbell page's range
        # (IOVA 0x800_0000 -> gDB 0x809_0000 -> hDB 0x809_0000)
        await command(app, pilot, "msi nic0 0 dry")
        names = [r[1] for r in cells(st.query_one("#walk-steps", DataTable))]
        await step_to(pilot, st, names[names.index("region") - 1])
        await pilot.pause()
        await look(app, pilot, "tables")
        assert pt.stage == "nested"
        assert "0x8000000-0x8000fff -> IPA 0x8090000 -> PA 0x8090000" in str(
            tree.cursor_node.label)
        # key g cycles stage 1, 2, nested
        app.show_tab("tables")
        app.query_one("#pt-tree").focus()
        await pilot.pause()
        seen = []
        for _ in range(3):
            await pilot.press("g")
            await pilot.pause()
            seen.append(pt.stage)
        assert seen == [1, 2, "nested"]
        # a stage-1-only stream (nvme0: host-dma) has neither a stage 2 nor a nested view
        pt.show("smmu0 0x100", 1)
        assert pt.next_stage() == 1
    drive(body)


# -- the field editor --------------------------------------------------------------------------
def test_check_value_by_the_field_table():
    ste = fmt("STE")
    assert check_value(ste.field("Config"), "9")[0] is None          # 3 bits
    assert "3 bits" in check_value(ste.field("Config"), "9")[1]
    v, meaning = check_value(ste.field("Config"), "4")
    assert v == 4 and meaning                                        # 0b100: bypass
    assert check_value(ste.field("S2TTB"), "0x40004001")[0] is None  # not 16-byte aligned
    assert check_value(ste.field("S2TTB"), "0x40004000")[0] == 0x40004000 >> 4
    assert check_value(ste.field("V"), "1 2")[0] is None


def test_field_editor_sets_a_descriptor_and_shows_what_changed():
    async def body(app, pilot):
        await command(app, pilot, "walk nic0 0x10000000 dry")
        st = app.query_one(WalkStepper)
        await step_to(pilot, st, "S1 L2")
        await pilot.press("e")
        await pilot.pause()
        ed = app.screen
        assert isinstance(ed, FieldEditor)
        # the walk step's descriptor first: the level-2 block, entry 128 of the level-2 table
        # at IPA 0x4f00_2000 -> PA 0x6f00_2000 (vm0: IPA 0x4000_0000 -> PA 0x6000_0000)
        t = ed.targets[0]
        assert (t.kind, t.stage, t.dkind, t.address) == ("desc", 1, "leaf", 0x6f00_2400)
        assert [x.kind for x in ed.targets[1:]] == ["ste", "cd"]
        table = ed.query_one("#fe-fields", DataTable)
        names = [r[0] for r in cells(table)]
        table.move_cursor(row=names.index("Valid"))
        await pilot.pause()
        about = text_of(ed.query_one("#fe-about", Static))
        assert "S1_BLOCK.Valid" in about and "bits [0:0]" in about and "now 0x1" in about
        ed.query_one("#fe-value", Input).focus()
        await pilot.press("2")
        await pilot.pause()
        assert "does not fit in 1 bits" in text_of(ed.query_one("#fe-check", Static))
        await pilot.press("enter")                  # refused: nothing is issued
        await pilot.pause()
        assert app.screen is ed and app.session.log[-1].command.startswith("walk")
        await pilot.press("backspace", "0", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.session.log[-1].command == "set desc 0x6f002400 stage=1 kind=leaf Valid=0"
        out = out_text(app)
        assert ("translation smmu0 0x8 0x10000000 (tables in memory): was IPA 0x41000000 -> "
                "PA 0x61000000, now stage 1 maps nothing") in out
    drive(body)


def test_field_editor_on_the_ste_shows_the_stale_cached_copy():
    async def body(app, pilot):
        await command(app, pilot, "walk nic0 0x10000000")      # caches the STE
        app.focus_stream("smmu0", 0x8)
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause()
        ed = app.screen
        assert isinstance(ed, FieldEditor) and ed.targets[0].kind == "ste"
        table = ed.query_one("#fe-fields", DataTable)
        names = [r[0] for r in cells(table)]
        table.move_cursor(row=names.index("S2VMID"))
        await pilot.pause()
        assert "now 0x1" in text_of(ed.query_one("#fe-about", Static))    # vm0-s2: VMID 1
        ed.query_one("#fe-value", Input).value = "2"
        ed.query_one("#fe-value", Input).focus()
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.session.log[-1].command == "set ste nic0 S2VMID=2"
        assert "cached STE SID 0x8 is now STALE" in out_text(app)
    drive(body)


def test_field_editor_on_a_cd_and_escape():
    async def body(app, pilot):
        await command(app, pilot, "walk nic0 0x10000000")      # caches STE and CD 0
        app.focus_stream("smmu0", 0x8)
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause()
        ed = app.screen
        assert [t.label for t in ed.targets] == ["STE of nic0", "CD 0 of nic0"]
        await pilot.press("escape")                           # closes, issues nothing
        await pilot.pause()
        assert not isinstance(app.screen, FieldEditor)
        assert app.session.log[-1].command == "walk nic0 0x10000000"
        await pilot.press("e")
        await pilot.pause()
        ed = app.screen
        ed.query_one("#fe-target").value = 1                 # the CD
        await pilot.pause()
        table = ed.query_one("#fe-fields", DataTable)
        names = [r[0] for r in cells(table)]
        assert "ASID" in names and "TTB0" in names
        table.move_cursor(row=names.index("TTB0"))
        await pilot.pause()
        assert "an address" in text_of(ed.query_one("#fe-about", Static))
        value = ed.query_one("#fe-value", Input)
        value.focus()
        value.value = "0x4f000008"                            # TTB0 holds bits [55:4]
        await pilot.pause()
        assert "16-byte aligned" in text_of(ed.query_one("#fe-check", Static))
        table.move_cursor(row=names.index("ASID"))
        await pilot.pause()
        assert "now 0x1" in text_of(ed.query_one("#fe-about", Static))    # nic0-dma: ASID 1
        value.value = "9"
        value.focus()
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.session.log[-1].command == "set cd nic0 ssid=0 ASID=9"
        assert "cached CD SID 0x8 SSID 0 is now STALE" in out_text(app)
    drive(body)
