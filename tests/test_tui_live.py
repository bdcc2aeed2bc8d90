"""The TUI's live mode (tui/live.py) against the fake QEMU (tests/attach_fake.py): while
attached, the UI polls `attach poll` through the bridge, shows live vs snapshot and the time of
the last read, highlights what changed (the STE row of the stream whose Config changed, the
commands consumed, new events) and refreshes the views; `l` pauses and resumes it.

Expected values come from the fixture (tests/fixtures/qemu/README.md: SID 0x8 is stage 1,
Config 0b101) and from what the fake guest does (moves SID 0x8 to bypass with CMD_CFGI_STE)."""
import asyncio
import os
import shutil
import tempfile

import pytest

pytest.importorskip("qemu.qmp")
pytest.importorskip("textual")

from attach_fake import FakeQemu, write_ram  # noqa: E402
from smmudbg.arch.smmuv3.events import encode_event  # noqa: E402
from smmudbg.session import Session  # noqa: E402
from smmudbg.tui.app import SmmuDbgApp  # noqa: E402
from smmudbg.tui.live import LivePanel, LiveStatus  # noqa: E402
from smmudbg.tui.streamtable import StreamTable  # noqa: E402
from test_attach import EVTQ, make_bypass  # noqa: E402


@pytest.fixture
def vm():
    d = tempfile.mkdtemp(prefix="atl", dir="/tmp")
    ram = os.path.join(d, "ram")
    write_ram(ram)
    fake = FakeQemu(os.path.join(d, "qmp.sock"), ram)
    yield fake
    fake.close()
    shutil.rmtree(d, ignore_errors=True)


def drive(session, body):
    async def main():
        app = SmmuDbgApp(session)
        app.live_interval = 0.05
        async with app.run_test(size=(140, 44)) as pilot:
            await pilot.pause()
            await body(app, pilot)
    asyncio.run(main())


async def until(pilot, cond, what, tries=100):
    for _ in range(tries):
        await pilot.pause(0.05)
        if cond():
            return
    raise AssertionError(f"timed out waiting for {what}")


def status(app) -> str:
    w = app.query(LiveStatus)
    return str(w.first().render()) if w else ""


def panel(app) -> list[str]:
    w = app.query(LivePanel)
    return [s.text for s in w.first().lines] if w else []


def test_live_mode_follows_the_vm(vm):
    s = Session()
    assert s.execute(f"attach qemu {vm.path} ram={vm.ram_path}").ok

    async def body(app, pilot):
        live = app.live
        await until(pilot, lambda: live.polls >= 2 and "LIVE" in status(app), "a live status")
        assert f"QEMU at {vm.path}" in status(app) and "last read" in status(app)
        st = app.query_one(StreamTable)
        assert st.row(8)["config"] == "s1_trans"
        first = live.last["read_at"]
        # The guest moves SID 0x8 to bypass and says so with CMD_CFGI_STE + CMD_SYNC.
        make_bypass(vm)
        await until(pilot, lambda: any("StreamID 0x8" in x and "STE" in x
                                       for x in panel(app)), "the STE change")
        lines = panel(app)
        assert any("CMD_CFGI_STE StreamID 0x8" in x for x in lines)
        assert any("Config s1_trans -> bypass" in x for x in lines)
        assert live.last["read_at"] > first                 # the time of the last read moves
        await until(pilot, lambda: st.row(8)["config"] == "bypass", "the refreshed row")
        # Highlighted: the STE row bold yellow, commands cyan.
        styles = {str(seg.style) for line in app.query_one(LivePanel).lines for seg in line}
        assert any("yellow" in x for x in styles) and any("cyan" in x for x in styles)
        # l pauses: a new event is not read until l again.
        await pilot.press("l")
        await pilot.pause(0.1)
        assert "paused" in status(app)
        n = live.polls
        prod = vm.regs["SMMU_EVENTQ_PROD"]
        vm.poke(EVTQ + 32 * prod, encode_event("F_TRANSLATION", StreamID=0x10,
                                               InputAddr=0x1234000))
        vm.regs["SMMU_EVENTQ_PROD"] = prod + 1
        await pilot.pause(0.3)
        assert live.polls == n and not any("F_TRANSLATION" in x for x in panel(app))
        # A snapshot taken while paused: the status line says the views are of it.
        app.run_line("snapshot")
        await until(pilot, lambda: "SNAPSHOT s1" in status(app), "the snapshot while paused")
        app.run_line("view live")
        await until(pilot, lambda: "paused" in status(app), "live (paused) again")
        await pilot.press("l")
        await until(pilot, lambda: any("event  F_TRANSLATION StreamID 0x10" in x
                                       for x in panel(app)), "the new event")
        assert "paused" not in status(app) and "LIVE" in status(app)
        # A snapshot: the views are of a stopped VM, and the status line says so.
        app.run_line("snapshot")
        await until(pilot, lambda: "SNAPSHOT s2" in status(app), "the snapshot status")
        assert "consistent" in status(app)
        app.run_line("view live")
        await until(pilot, lambda: status(app).startswith("LIVE"), "live again")

    drive(s, body)


def test_vm_gone_keeps_the_last_snapshot_and_says_so(vm):
    s = Session()
    assert s.execute(f"attach qemu {vm.path} ram={vm.ram_path}").ok
    assert s.execute("snapshot").ok
    assert s.execute("view live").ok

    async def body(app, pilot):
        await until(pilot, lambda: status(app).startswith("LIVE"), "a live status")
        vm.close()                                  # QEMU exits
        await until(pilot, lambda: "VM gone" in status(app), "the VM gone")
        assert "the view is now snapshot s1" in status(app) and "\n" not in status(app)
        assert "connection was closed" in status(app)
        await pilot.pause(0.3)                      # later polls: not attached, same line
        assert "VM gone" in status(app) and app.live.last["attached"] is False
        assert s.system.name == "snapshot:s1"

    drive(s, body)


def test_not_attached_shows_nothing(vm):
    async def body(app, pilot):
        await until(pilot, lambda: app.live.polls >= 2, "two polls")
        # Nothing mounted: the layout of a session never attached is unchanged.
        assert not app.query(LiveStatus) and not app.query(LivePanel)
    drive(Session(), body)
