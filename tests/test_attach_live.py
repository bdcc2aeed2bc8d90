"""attach on a real QEMU guest (scripts/attach_fixture: Debian's qemu-system-aarch64 and arm64
kernel, `-M virt,iommu=smmuv3`, RAM shared through /dev/shm, a guest that keeps moving its
virtio-blk (StreamID 0x8) between its DMA domain and identity). Registers and STEs are checked
against QEMU's own `xp` reads over the fixture's other QMP socket, with a plain JSON client
(not smmudbg's). Skips with the reason when QEMU or the kernel is not installed (.ci/run
installs them)."""
import importlib.util
import json
import socket
import time
from pathlib import Path

import pytest

pytest.importorskip("qemu.qmp")

from smmudbg.arch.fieldtable import fmt  # noqa: E402
from smmudbg.arch.smmuv3 import registers as R  # noqa: E402
from smmudbg.session import Session  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("attach_boot",
                                               ROOT / "scripts" / "attach_fixture" / "boot.py")
boot = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(boot)


class RawQmp:
    """The fixture's own QMP client: newline-delimited JSON over the socket."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.f = self.s.makefile("rwb", buffering=0)
        self._read()
        self.cmd("qmp_capabilities")

    def _read(self):
        while True:
            msg = json.loads(self.f.readline())
            if "event" not in msg:
                return msg

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}).encode() + b"\n")
        r = self._read()
        assert "error" not in r, r
        return r["return"]

    def xp(self, fmt_, addr):
        out = self.cmd("human-monitor-command", **{"command-line": f"xp {fmt_} {addr:#x}"})
        vals = []
        for line in out.strip().splitlines():
            vals += [int(v, 16) for v in line.split(":")[1].split()]
        return vals


@pytest.fixture(scope="module")
def vm():
    why = boot.available()
    if why:
        pytest.skip(why)
    v = boot.boot(name="smmudbg-attach-test")
    print(f"\n[attach live] boot to SMMUDBG-READY: {v.boot_s:.1f} s")
    v.raw = RawQmp(v.qmp_fixture)
    yield v
    v.stop()


@pytest.fixture
def session(vm):
    s = Session()
    s.watch_output = None
    out = s.execute(f"attach qemu {vm.qmp} ram={vm.ram}")
    assert out.ok, out.error
    yield s
    if s.attach_state.att is not None:
        s.execute("detach")


def test_registers_and_stes_match_qemus_xp(vm, session):
    vm.raw.cmd("stop")              # hold the guest still while both sides read
    try:
        regs = session.run("regs smmu0").registers
        got = {r["name"]: r["value"] for r in regs}
        for name in ("SMMU_IDR0", "SMMU_IDR1", "SMMU_IDR5", "SMMU_CR0", "SMMU_STRTAB_BASE",
                     "SMMU_STRTAB_BASE_CFG", "SMMU_CMDQ_BASE", "SMMU_CMDQ_PROD",
                     "SMMU_CMDQ_CONS"):
            size = fmt(name).size
            want = vm.raw.xp("/1gx" if size == 8 else "/1wx",
                             boot.SMMU_BASE + R.OFFSETS[name])[0]
            short = name[len("SMMU_"):]
            assert got.get(name, got.get(short)) == want, name
        ste = session.run("ste smmu0 0x8")
        assert ste.config in ("s1_trans", "bypass")
        assert ste.words == vm.raw.xp("/8gx", ste.addr)
    finally:
        vm.raw.cmd("cont")


def test_watch_sees_the_ste_change_and_its_cfgi_ste(vm, session):
    # The guest flips every 1.5-3 s (slower on a loaded machine): 10 s sees a few.
    w = session.run("watch 10 interval=10")
    cfgi = [c for c in w.commands if c["command"] == "CMD_CFGI_STE"
            and c["fields"]["StreamID"] == 0x8]
    flips = [c for c in w.changes if c["sid"] == 0x8 and "config" in c
             and sorted(c["config"]) == ["bypass", "s1_trans"]]
    seen = f"commands {sorted({c['command'] for c in w.commands})}, changes {w.changes}"
    assert cfgi, seen
    assert flips, seen
    # A flip is announced by a CFGI_STE of StreamID 0x8 seen at the same poll (Linux writes
    # the STE, then issues CMD_CFGI_STE and CMD_SYNC) or, when a poll fell between the two,
    # at one of the next polls: before the guest's next flip (t_ms orders the polls).
    ts = sorted(f["t_ms"] for f in flips) + [float("inf")]
    assert any(ts[i] <= c["t_ms"] < ts[i + 1] for i in range(len(ts) - 1) for c in cfgi), \
        (ts[:-1], [c["t_ms"] for c in cfgi])


def test_snapshot_pauses_briefly_and_leaves_the_vm_running(vm, session):
    pauses = []
    for _ in range(5):
        r = session.run("snapshot")
        assert r.vm_was_running and r.pages > 500
        pauses.append(r.pause_ms)
        assert vm.raw.cmd("query-status")["running"]
        session.run("view live")
    print(f"\n[attach live] snapshot pause ms: {sorted(pauses)}")
    st = session.run("attach status")
    assert len(st.snapshots) == 5 and st.vm_running


def test_detach_leaves_a_paused_vm_paused(vm, session):
    vm.raw.cmd("stop")
    try:
        session.run("snapshot")
        d = session.run("detach")
        assert d.vm_running is False
        time.sleep(0.2)
        assert not vm.raw.cmd("query-status")["running"]
    finally:
        vm.raw.cmd("cont")


def test_pid_mode_reads_ram_through_proc_mem(vm):
    s = Session()
    r = s.run(f"attach qemu {vm.qmp} pid={vm.proc.pid}")
    try:
        assert r.view == "copy" and [x["sid"] for x in r.streams] == [0x8]
        assert "copy" in s.run("topology").description
        vm.raw.cmd("stop")
        try:
            s.run("view live")                      # copies RAM again
            ste = s.run("ste smmu0 0x8")
            assert ste.words == vm.raw.xp("/8gx", ste.addr)
        finally:
            vm.raw.cmd("cont")
    finally:
        s.execute("detach")


def test_tui_live_mode_sees_the_ste_flip(vm, session):
    # The UI's live mode on the real guest: it polls through `attach poll`, says LIVE with the
    # time of the last read, and highlights SID 0x8's STE flipping and the CMD_CFGI_STE.
    import asyncio
    pytest.importorskip("textual")
    from smmudbg.tui.app import SmmuDbgApp
    from smmudbg.tui.live import LivePanel, LiveStatus

    async def main():
        app = SmmuDbgApp(session)
        app.live_interval = 0.05
        async with app.run_test(size=(140, 44)) as pilot:
            lines = []
            for _ in range(400):                       # the guest flips every 1.5-3 s
                await pilot.pause(0.05)
                panel = app.query(LivePanel)         # mounted once there is something
                lines = [s.text for s in panel.first().lines] if panel else []
                if any("StreamID 0x8" in x and "Config" in x for x in lines) and \
                        any("CMD_CFGI_STE StreamID 0x8" in x for x in lines):
                    break
            status = str(app.query_one(LiveStatus).render())
            assert status.startswith("LIVE") and "last read" in status, status
            assert any("CMD_CFGI_STE StreamID 0x8" in x for x in lines), lines
            assert any("StreamID 0x8" in x and ("s1_trans -> bypass" in x or
                                                "bypass -> s1_trans" in x) for x in lines), lines
    asyncio.run(main())
