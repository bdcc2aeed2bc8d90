"""The full-screen UI driven by Textual's Pilot: what each view shows and what each action
does. Expected values come from the default scenario's TOML (smmudbg/data/default.toml):

  nic0   SID 0x8    nested: vm0-s2 (VMID 1) under nic0-dma (ASID 1), IOVA 0x1000_0000 ->
                    IPA 0x4100_0000 (2M), vm0 maps IPA 0x4000_0000 -> PA 0x6000_0000, so
                    PA 0x6100_0000; S1CDMax 2 (linear CD table), ssid 1: nic0-pasid1 (ASID 2)
  nvme0  SID 0x100  stage 1 only (host-dma, 64K granule)
  gpu0   SID 0x200  stage 2 only (vm0-s2)
  legacy0 0x300 bypass, quarantine0 0x301 abort
  2-level stream table, 2^16 StreamIDs, split 8: SIDs 0x400.. have no L2 array.
"""
from __future__ import annotations

import asyncio
import threading

import pytest

pytest.importorskip("textual")

from textual import events  # noqa: E402
from textual.widgets import DataTable, Input, Static, TabbedContent, Tree  # noqa: E402

from smmudbg.session import Session  # noqa: E402
from smmudbg.tui.app import SmmuDbgApp  # noqa: E402
from smmudbg.tui.commandline import CommandLine  # noqa: E402
from tui_pilot import command  # noqa: E402
from smmudbg.tui.entryview import EntryView  # noqa: E402
from smmudbg.tui.streamtable import StreamTable  # noqa: E402
from smmudbg.tui.topology import TopologyTree  # noqa: E402
from smmudbg.tui.walkstepper import WalkStepper  # noqa: E402

NIC_PA = 0x6100_0000


def drive(body, size=(120, 40), session=None):
    """Run body(app, pilot) inside a headless app."""
    async def main():
        app = SmmuDbgApp(session or Session())
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await body(app, pilot)
        return app
    return asyncio.run(main())


def cells(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def text_of(w) -> str:
    return str(w.render())


async def tab(app, pilot, name):
    """Show a tab (hidden views refresh when shown, as a user sees them)."""
    app.show_tab(name)
    await pilot.pause()
    await pilot.pause()


def visible_line(table: StreamTable, sid: int) -> str:
    return table.render_line(sid - table.scroll_offset.y).text


# ---------------------------------------------------------------------------------------------
def test_topology_tree_lists_the_scenario():
    async def body(app, pilot):
        tree = app.query_one("#topo", Tree)
        labels = []

        def walk(n):
            labels.append(str(n.label))
            for c in n.children:
                walk(c)
        walk(tree.root)
        assert "smmu0 S1+S2" in labels
        for want in ("nic0 0x8 nested", "nvme0 0x100 s1", "gpu0 0x200 s2",
                     "legacy0 0x300 bypass", "quarantine0 0x301 abort", "ssid 1: nic0-pasid1",
                     "vm0-s2 S2 vmid 1", "nic0-dma S1 asid 1"):
            assert want in labels, want
    drive(body)


def test_stream_table_rows_and_scrolling():
    async def body(app, pilot):
        t = app.query_one(StreamTable)
        assert t.total == 1 << 16
        line = visible_line(t, 0x8)
        assert "nic0" in line and "nested" in line and "0x40004000" in line  # S2TTB of vm0-s2
        assert line.split()[3] == "yes"                                      # legal
        t.go(0x300)
        await pilot.pause()
        assert "legacy0" in visible_line(t, 0x300) and "bypass" in visible_line(t, 0x300)
        await pilot.press("end")
        await pilot.pause()
        assert t.cursor == 0xffff and "no STE here" in visible_line(t, 0xffff)
        await pilot.press("home", "n")            # next valid STE after 0: nic0
        await pilot.pause()
        assert t.cursor == 0x8
        await pilot.press("n", "n")
        assert t.cursor == 0x200
        fetched = t.fetches
        for _ in range(30):
            await pilot.press("pagedown")
        await pilot.pause()
        assert t.cursor == 0x200 + 600 and t.fetches - fetched <= 6     # pages, not rows
    drive(body)


def test_ste_detail_bit_view_and_illegal_field():
    async def body(app, pilot):
        t = app.query_one(StreamTable)
        t.focus()
        t.go(0x200)
        await pilot.press("enter")
        await pilot.pause()
        # the detail opens under the table: same tab, the table keeps the focus
        assert app.query_one(TabbedContent).active == "streams" and app.focused is t
        assert app.query_one("#entryview").display
        rows = {r[0]: r for r in app.query_one(EntryView).ste_rows}
        assert rows["Config"][2] == "3:1" and rows["Config"][3] == "0x6"   # 0b110: S2 only
        assert rows["S2VMID"][3] == "0x1"
        assert rows["S1CDMax"][3] == "0x0"        # every field, zero ones too
        assert "legal" in app.query_one(EntryView).ste_head.plain
        ev = app.query_one(EntryView)              # what is drawn: the lines on screen
        drawn = [ev.render_line(y).text for y in range(ev.scrollable_content_region.height)]
        assert drawn[0].startswith("STE smmu0 SID 0x200 @ ") and "gpu0" in drawn[0]
        assert any(d.split()[:4] == ["Config", "0", "3:1", "0x6"] for d in drawn)
        await command(app, pilot, "inject reserved-ste gpu0")
        head = app.query_one(EntryView).ste_head.plain
        assert "ILLEGAL" in head and "S2TG" in head
        rows = {r[0]: r for r in app.query_one(EntryView).ste_rows}
        assert "<-" in rows["S2TG"][4]             # the field named by the reason
        t.focus()
        await pilot.press("escape")                # closes the detail
        await pilot.pause()
        assert not app.query_one("#entryview").display
    drive(body)


def test_cd_under_a_nested_ste():
    async def body(app, pilot):
        await command(app, pilot, "cd nic0 1")
        rows = {r[0]: r for r in app.query_one(EntryView).cd_rows}
        assert rows["ASID"][3] == "0x2"           # nic0-pasid1
        assert "SSID 1" in app.query_one(EntryView).cd_head.plain
    drive(body)


def test_walk_stepper_form_and_steps():
    async def body(app, pilot):
        await pilot.press("w")
        await pilot.pause()
        st = app.query_one(WalkStepper)
        st.query_one("#walk-target", Input).value = "nic0"
        st.query_one("#walk-addr", Input).value = "0x10000000"
        await pilot.click("#walk-go")
        await pilot.pause()
        w = st.walk
        assert w is not None and w["dry"] and w["pa"] == NIC_PA
        assert app.session.log[-1].command == "walk nic0 0x10000000 dry"     # logged, dry
        steps = cells(st.query_one("#walk-steps", DataTable))
        names = [r[1] for r in steps]
        assert names[:2] == ["L1STD", "STE"]
        assert "CD" in names
        s1 = [n for n in names if n.startswith("S1 ")]
        assert s1 == ["S1 L0", "S1 L1", "S1 L2"]                # 4K, 48 bits, a 2M block
        assert names[-1].startswith("S2")                       # the final stage 2
        assert f"PA {NIC_PA:#x}" in text_of(st.query_one("#walk-summary", Static))
        st.query_one("#walk-steps").focus()
        await pilot.press("n")
        await pilot.pause()
        assert "step 2/" in text_of(st.query_one("#walk-detail", Static))
        await pilot.press("p", "p")
        assert st.index == 0
        for _ in range(len(names)):
            await pilot.press("right")
        assert st.index == len(names) - 1
    drive(body)


def test_walk_fault_and_page_table_highlight():
    async def body(app, pilot):
        await command(app, pilot, "inject unmap nic0-dma 0x10000000")
        await command(app, pilot, "walk nic0 0x10000000 dry")
        st = app.query_one(WalkStepper)
        assert st.walk["fault"]["type"] == "F_TRANSLATION"
        assert "F_TRANSLATION" in text_of(st.query_one("#walk-summary", Static))
        st.query_one("#walk-steps").focus()
        await pilot.press(*["right"] * len(st.walk["steps"]))
        await pilot.pause()
        detail = text_of(st.query_one("#walk-detail", Static))
        assert "fault F_TRANSLATION" in detail and "input_addr=0x10000000" in detail
        assert "no event recorded" in detail
        assert "MSI stepping" in detail          # the labelled place for MSI
        # the page-table view follows the stepper: stage 1 of nic0, the faulting L2 entry
        # (built and shown when its tab is)
        await tab(app, pilot, "tables")
        pt = app.query_one("#ptview")
        assert pt.source == "smmu0 0x8" and pt.stage == 1
        node = app.query_one("#pt-tree", Tree).cursor_node
        assert node is not None and "L" in str(node.label)
    drive(body)


def test_actions_show_what_changed_and_check_names_the_fix():
    async def body(app, pilot):
        await command(app, pilot, "walk nic0 0x10000000")          # fills the IOTLB
        await command(app, pilot, "drop-invalidations smmu0 1")
        await command(app, pilot, "inject unmap nic0-dma 0x10000000")
        await command(app, pilot, "cmd smmu0 CMD_TLBI_NH_ASID ASID=1")   # dropped
        await tab(app, pilot, "caches")
        caches = cells(app.query_one("#tlb-table", DataTable))
        assert len(caches) == 1 and caches[0][0] == "NESTED" and caches[0][3] == "0x10000000"
        await tab(app, pilot, "cmdq")
        cq = cells(app.query_one("#cq-table", DataTable))
        assert cq[-1][1] == "CMD_TLBI_NH_ASID" and cq[-1][3] == "dropped"
        app.action_focus_view()                   # out of the command line: c is a key
        await pilot.press("c")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "check"
        rows = cells(app.query_one("#check-table", DataTable))
        assert rows and rows[0][1] == "stale" and "CMD_TLBI_NH_VA" in rows[0][3]
        app.query_one("#check-table").focus()
        await pilot.press("f")                    # run the fix the check names
        await pilot.pause()
        assert app.session.log[-1].command.startswith("cmd smmu0 CMD_TLBI_NH_VA")
        out = "\n".join(str(x.text) for x in app.query_one("#out").lines)
        assert "IOTLB: 1 entry went" in out
        await tab(app, pilot, "caches")
        assert cells(app.query_one("#tlb-table", DataTable)) == []
        app.query_one("#check-table").focus()
        await pilot.press("c")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "clean" in text_of(app.query_one("#check-head", Static))
    drive(body)


def test_check_finding_jumps_to_the_stream():
    async def body(app, pilot):
        await command(app, pilot, "walk nic0 0x10000000")
        await command(app, pilot, "drop-invalidations smmu0 1")
        await command(app, pilot, "inject unmap nic0-dma 0x10000000")
        await command(app, pilot, "cmd smmu0 CMD_TLBI_NH_ASID ASID=1")
        await command(app, pilot, "check")
        app.query_one("#check-table").focus()
        await pilot.press("enter")
        await pilot.pause()
        assert app.current == ("smmu0", 0x8)
        assert app.query_one(TabbedContent).active == "streams"
        assert "nic0" in app.query_one(EntryView).ste_head.plain
    drive(body)


def test_events_view_after_a_real_fault():
    async def body(app, pilot):
        await command(app, pilot, "walk nic0 0x30000000")     # nic0-dma maps no 0x3000_0000
        await tab(app, pilot, "events")
        rows = cells(app.query_one("#ev-table", DataTable))
        assert len(rows) == 1 and rows[0][1] == "F_TRANSLATION"
        assert rows[0][2] == "0x8" and rows[0][4] == "0x30000000"
    drive(body)


def test_history_and_time_travel():
    async def body(app, pilot):
        await command(app, pilot, "inject invalidate-ste gpu0")
        await command(app, pilot, "walk gpu0 0x41000000 dry")
        assert app.query_one(WalkStepper).walk["fault"]["type"] == "C_BAD_STE"
        await pilot.press("escape")
        await pilot.press("[", "[")                 # back twice: before the inject
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.session.position == 0 and "@0/2" in app.sub_title
        t = app.query_one(StreamTable)
        assert "yes" in visible_line(t, 0x200) or t.row(0x200)["legal"]
        await tab(app, pilot, "history")
        hist = cells(app.query_one("#hist-table", DataTable))
        assert hist[0][0] == ">" and hist[1][2] == "inject invalidate-ste gpu0"
        app.show_tab("history")
        await pilot.pause()
        tbl = app.query_one("#hist-table", DataTable)
        tbl.focus()
        tbl.move_cursor(row=1)
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.session.position == 1
        assert app.query_one(StreamTable).row(0x200)["v"] == 0
    drive(body)


def test_command_line_completion_and_history():
    async def body(app, pilot):
        cl = app.query_one(CommandLine)
        cl.focus()
        await pilot.press("w", "a", "tab")
        assert cl.value == "walk"
        cl.value = "walk ni"
        await pilot.press("tab")
        assert cl.value == "walk nic0"
        await command(app, pilot, "ste gpu0")
        await command(app, pilot, "bogus")
        out = "\n".join(str(x.text) for x in app.query_one("#out").lines)
        assert "unknown command 'bogus'" in out
        cl.focus()
        await pilot.press("up", "up")
        assert cl.value == "ste gpu0"
    drive(body)


def test_palette_lists_registry_commands():
    from smmudbg.commands.registry import REGISTRY
    from smmudbg.tui.palette import entries
    names = [e[0] for e in entries()]
    assert "walk" in names and "inject unmap" in names and "check" in names
    assert "msi" in names and "vsmmu" in names and "vcmd" in names   # vSMMUs are modelled now
    assert len(names) == sum(1 for c in REGISTRY.commands.values() if c.available is None)

    async def body(app, pilot):
        app.palette_pick("walk", True)
        await pilot.pause()
        assert app.query_one(CommandLine).value == "walk "
    drive(body)


def test_inject_menu_runs_through_the_registry():
    async def body(app, pilot):
        app.focus_stream("smmu0", 0x200, tab="streams")
        app.query_one(StreamTable).focus()
        await pilot.press("i")
        await pilot.pause()
        menu = app.screen.query_one("#menu")
        labels = [str(menu.get_option_at_index(i).prompt) for i in range(menu.option_count)]
        i = next(i for i, s in enumerate(labels) if s.startswith("inject invalidate-ste gpu0"))
        menu.highlighted = i
        await pilot.press("enter")
        await pilot.pause()
        assert app.session.log[-1].command == "inject invalidate-ste gpu0"
        await tab(app, pilot, "streams")
        assert "V=0" in app.query_one(EntryView).ste_head.plain
    drive(body)


def test_replay_with_progress(tmp_path):
    s = Session()
    s.run("walk nic0 0x10000000")
    s.run("inject unmap nic0-dma 0x10000000")
    path = str(tmp_path / "s.json")
    s.save(path)

    async def body(app, pilot):
        app.replay(path)
        await app.workers.wait_for_complete()
        await pilot.pause()
        out = "\n".join(str(x.text) for x in app.query_one("#out").lines)
        assert "replayed 2 commands identically" in out
        assert not app.query_one("#progress-row").display
    drive(body)


def test_loader_in_a_worker_and_load_error():
    async def main(loader):
        app = SmmuDbgApp(loader=loader, where="x")
        async with app.run_test(size=(80, 24)) as pilot:
            try:
                await app.workers.wait_for_complete()
            except Exception:           # the failed load ends the app (and its worker)
                return app, None
            for _ in range(100):
                await pilot.pause(0.02)
                if app.query(StreamTable) and app.query_one(StreamTable).total:
                    break
            total = app.query_one(StreamTable).total if app.query(StreamTable) else None
            return app, total

    app, total = asyncio.run(main(Session))
    assert app.session is not None and total == 1 << 16

    def bad():
        from smmudbg.errors import SmmuDbgError
        raise SmmuDbgError("x.toml: line 1: broken")
    app, total = asyncio.run(main(bad))
    # the (hidden) workspace never got a session: no stream table rows
    assert not total and app.load_error == "x.toml: line 1: broken"


def _gated_loader():
    """A loader that waits for gate.set(): the test acts while the model is loading."""
    gate = threading.Event()

    def loader():
        assert gate.wait(30)
        return Session()
    return gate, loader


async def _until(pilot, cond, tries=400):
    for _ in range(tries):
        if cond():
            return True
        await pilot.pause(0.02)
    return cond()


def out_text(app) -> str:
    return "\n".join(str(x.text) for x in app.query_one("#out").lines)


def test_keys_while_loading_typed_ahead_runs_once_loaded():
    # the frame is there while the loader runs: the tree and tabs wait (disabled), the
    # progress row says what loads, keys needing the model do nothing, the command line
    # takes a line, which runs when the model is there
    gate, loader = _gated_loader()

    async def main():
        app = SmmuDbgApp(loader=loader, where="big.toml")
        async with app.run_test(size=(120, 40)) as pilot:
            assert await _until(pilot, lambda: app.query(TopologyTree)
                                and app.query_one(TopologyTree).disabled)
            assert app.query_one("#progress-row").display
            assert str(app.query_one("#progress-label").render()) == "loading big.toml ..."
            assert app.session is None
            await pilot.press("c", "4")             # check, Events tab: need the model
            assert app.query_one(TabbedContent).active == "streams"
            await pilot.press("colon")
            assert isinstance(app.focused, CommandLine)
            await pilot.press(*"tlb smmu0", "enter")
            await pilot.pause()
            assert "> tlb smmu0  (runs once big.toml is loaded)" in out_text(app)
            assert app.session is None and app.typed_ahead == ["tlb smmu0"]
            gate.set()
            assert await _until(pilot, lambda: app.session is not None and
                                not app.typed_ahead)
            await pilot.pause()
            assert not app.query_one(TopologyTree).disabled
            assert not app.query_one("#progress-row").display
            assert app.query_one(StreamTable).total == 1 << 16
            # the typed line ran (recorded in the log, its result shown in the Caches tab);
            # the "c" pressed while loading did not
            assert [e.command for e in app.session.log] == ["tlb smmu0"]
            assert app.query_one(TabbedContent).active == "caches"
    asyncio.run(main())


def test_keys_read_with_the_colon_reach_the_command_line():
    # a busy app reads the colon and the keys typed after it at once: they go to the command
    # line, not to the stream table that had the focus (its "n" and "w" would act)
    async def body(app, pilot):
        t = app.query_one(StreamTable)
        t.focus()
        await pilot.pause()
        for ch in ":walk nic0":
            key = {":": "colon", " ": "space"}.get(ch, ch)
            app.post_message(events.Key(key, ch))       # queued together, none handled yet
        await pilot.pause()
        cl = app.query_one(CommandLine)
        assert app.focused is cl and cl.value == "walk nic0"
        assert app.query_one(TabbedContent).active == "streams"
        # in a text field the colon is a character
        for ch in " a:b":
            app.post_message(events.Key({":": "colon", " ": "space"}.get(ch, ch), ch))
        await pilot.pause()
        assert app.focused is cl and cl.value == "walk nic0 a:b"
    drive(body)


def test_quit_while_loading():
    gate, loader = _gated_loader()

    async def main():
        app = SmmuDbgApp(loader=loader, where="big.toml")
        try:
            async with app.run_test(size=(80, 24)) as pilot:
                assert await _until(pilot, lambda: app.query(TopologyTree)
                                    and app.query_one(TopologyTree).disabled)
                await pilot.press("ctrl+q")
                await pilot.pause()
                assert not app.is_running
        finally:
            gate.set()                  # the loader's thread ends (the app is gone)
        return app
    app = asyncio.run(main())
    assert app.session is None and app.load_error is None


def test_pt_command_shows_in_the_tables_tab_built_on_first_show():
    async def body(app, pilot):
        assert not app.query("#ptview")              # not built before its tab is shown
        await command(app, pilot, "pt nic0-dma")
        assert app.query_one(TabbedContent).active == "tables"
        pt = app.query_one("#ptview")
        assert pt.source == "nic0-dma"
        assert str(app.query_one("#pt-tree", Tree).root.label).startswith("root 0x")
    drive(body)


def test_leaving_the_streams_tab_with_the_detail_open_stays_left():
    # the focused table is hidden by the switch; the focus must not hop to the detail
    # beside it (which would switch back to Streams)
    async def body(app, pilot):
        t = app.query_one(StreamTable)
        t.focus()
        t.go(0x200)
        await pilot.press("enter")
        await pilot.pause()
        await tab(app, pilot, "events")
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "events"
        assert app.focused is None or app.focused not in (t, app.query_one(EntryView))
        await pilot.press("1")                     # back: the table takes the focus again
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "streams" and app.focused is t
    drive(body)
