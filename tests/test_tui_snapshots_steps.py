"""Snapshots of the walk stepper on an MSI and of the nested page-table view, at 80x24 and
160x48 (pytest-textual-snapshot; accept an intended change with --snapshot-update after
looking at the SVG). The default scenario: nic0's MSI-X vector 1 is LPI 8193."""
from __future__ import annotations

import pytest

pytest.importorskip("pytest_textual_snapshot")

from smmudbg.session import Session  # noqa: E402
from smmudbg.tui.app import SmmuDbgApp  # noqa: E402
from tui_pilot import run  # noqa: E402

SIZES = [(80, 24), (160, 48)]


async def step_to(pilot, name):
    st = pilot.app.query_one("#stepper")
    table = st.query_one("#walk-steps")
    while str(table.get_row_at(st.index)[1]) != name:
        await pilot.press("n")
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_msi_stepper(snap_compare, size):
    async def before(pilot):
        await run(pilot, "msi nic0 1 dry")
        await step_to(pilot, "ITS ITE")
    assert snap_compare(SmmuDbgApp(Session()), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_nested_page_tables(snap_compare, size):
    async def before(pilot):
        await run(pilot, "pt nic0 stage=nested")
        await run(pilot, "walk nic0 0x10000000 dry")
        await step_to(pilot, "S1 L2")
        await pilot.press("3")              # the Tables tab, where the stepper left its cursor
        await pilot.pause()
    assert snap_compare(SmmuDbgApp(Session()), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_msi_its_jump(snap_compare, size):
    """j on the MSI's ITE step: the ITS panel with nic0's ITT, EventID 1 in focus."""
    async def before(pilot):
        await run(pilot, "msi nic0 1 dry")
        await step_to(pilot, "ITS ITE")
        await pilot.press("j")
        await pilot.pause()
        await pilot.pause()
    assert snap_compare(SmmuDbgApp(Session()), terminal_size=size, run_before=before)
