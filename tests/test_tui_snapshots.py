"""Snapshots of the main screens at 80x24 and 160x48 (pytest-textual-snapshot). The SVGs in
tests/__snapshots__/ are the baseline; after an intended change of the screens, look at the
new ones and accept them with `pytest tests/test_tui_snapshots.py --snapshot-update`."""
from __future__ import annotations

import os

import pytest

pytest.importorskip("pytest_textual_snapshot")

from smmudbg.session import Session  # noqa: E402
from smmudbg.tui.app import SmmuDbgApp  # noqa: E402
from tui_pilot import run  # noqa: E402

SIZES = [(80, 24), (160, 48)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_streams(snap_compare, size):
    assert snap_compare(SmmuDbgApp(Session()), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_ste_detail(snap_compare, size):
    async def before(pilot):
        await run(pilot, "inject reserved-ste gpu0")
        pilot.app.focus_stream("smmu0", 0x200)
        pilot.app.action_focus_view()
        await pilot.pause()
    assert snap_compare(SmmuDbgApp(Session()), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_walk_stepper(snap_compare, size):
    async def before(pilot):
        await run(pilot, "walk nic0 0x10000000 dry")
        await pilot.press("n", "n", "n", "n", "n", "n", "n")
        await pilot.pause()
    assert snap_compare(SmmuDbgApp(Session()), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_check_stale_iotlb(snap_compare, size):
    async def before(pilot):
        for line in ("walk nic0 0x10000000", "drop-invalidations smmu0 1",
                     "inject unmap nic0-dma 0x10000000", "cmd smmu0 CMD_TLBI_NH_ASID ASID=1",
                     "check"):
            await run(pilot, line)
        pilot.app.action_focus_view()
        await pilot.pause()
    assert snap_compare(SmmuDbgApp(Session()), terminal_size=size, run_before=before)


def test_walk_stepper_light_theme(snap_compare):
    async def before(pilot):
        pilot.app.theme = "textual-light"
        await run(pilot, "inject unmap nic0-dma 0x10000000")
        await run(pilot, "walk nic0 0x10000000 dry")
        await pilot.press(*["n"] * 13)
        await pilot.pause()
    assert snap_compare(SmmuDbgApp(Session()), terminal_size=(100, 30), run_before=before)


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def accel(monkeypatch):
    """vsmmu-accel.toml opened by a path relative to the checkout, which the screen shows (an
    absolute one would make the snapshot depend on where the tree is)."""
    monkeypatch.chdir(ROOT)
    return Session.from_file(os.path.join("examples", "vsmmu-accel.toml"))


async def select_device(pilot, prefix, tab):
    """Select a tree node (which shows the Streams tab), then show `tab`."""
    await pilot.pause()
    tree = pilot.app.query_one("#topo")
    tree.focus()        # as a user's click does; the focus stays there (a stable screen)
    await pilot.pause()
    node = next(n for n in tree._tree_nodes.values() if str(n.label).startswith(prefix))
    tree.select_node(node)
    for _ in range(50):
        await pilot.pause()
        if pilot.app.current is not None and pilot.app.current[1] == node.data[1]["stream_ids"][0][1]:
            break
    await pilot.pause()
    pilot.app.show_tab(tab)
    await pilot.pause()
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_its_panel(snap_compare, size, monkeypatch):
    async def before(pilot):
        await select_device(pilot, "nic1 RID 0x200", "its")
    assert snap_compare(SmmuDbgApp(accel(monkeypatch)), terminal_size=size,
                        run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_iommufd_panel(snap_compare, size, monkeypatch):
    async def before(pilot):
        await select_device(pilot, "nic1 RID 0x200", "iommufd")
    assert snap_compare(SmmuDbgApp(accel(monkeypatch)), terminal_size=size,
                        run_before=before)


def test_iommufd_panel_light_theme(snap_compare, monkeypatch):
    async def before(pilot):
        pilot.app.theme = "textual-light"
        await select_device(pilot, "nic0 RID 0x100", "iommufd")
    assert snap_compare(SmmuDbgApp(accel(monkeypatch)), terminal_size=(100, 30),
                        run_before=before)


def vtd(monkeypatch):
    """examples/vtd-nested.toml, by a path relative to the checkout (the screen shows it)."""
    monkeypatch.chdir(ROOT)
    return Session.from_file(os.path.join("examples", "vtd-nested.toml"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_vtd_walk_stepper(snap_compare, size, monkeypatch):
    """A VT-d system: the tree's VT-d branch and nic0's nested walk stepped to its PASID
    entry (issue 16)."""
    async def before(pilot):
        await run(pilot, "walk nic0 0x7f0000001234 dry")
        await pilot.press("n", "n", "n")
        await pilot.pause()
    assert snap_compare(SmmuDbgApp(vtd(monkeypatch)), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_vsmmu_tab(snap_compare, size, monkeypatch):
    """two-vsmmu.toml: the tree's host bridges, root ports and vSMMUs; the vSMMU tab of
    vsmmu1 (guest side beside host side) with gnic1 in focus."""
    async def before(pilot):
        await pilot.pause()
        tree = pilot.app.query_one("#topo")
        tree.focus()
        await pilot.pause()
        tree.select_node(next(n for n in tree._tree_nodes.values()
                              if str(n.label).startswith("gnic1 vSID")))
        await pilot.pause()
        await pilot.pause()
    monkeypatch.chdir(ROOT)
    session = Session.from_file(os.path.join("examples", "two-vsmmu.toml"))
    assert snap_compare(SmmuDbgApp(session), terminal_size=size, run_before=before)
