"""End to end: the real `smmudbg` command opens the full-screen UI in a real terminal (tmux),
a walk typed in the command line is stepped through, and the screen is read back.

Skipped when tmux is not installed. Its own tmux server socket and state directory."""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Screen:
    def __init__(self, tmp_path, size=(100, 30), args=()):
        self.sock = f"smmudbg-tui-{uuid.uuid4().hex[:8]}"
        self.name = f"t{uuid.uuid4().hex[:8]}"
        self.env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"),
                        TERM="xterm-256color", SMMUDBG_AUTOSAVE=str(tmp_path / "autosave.json"),
                        PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        cmd = (f"{shlex.quote(sys.executable)} -m smmudbg.cli "
               + " ".join(shlex.quote(a) for a in args)
               + "; echo SMMUDBG-EXITED-$?; sleep 60")
        self.tmux("new-session", "-d", "-s", self.name, "-x", str(size[0]), "-y",
                  str(size[1]), "-c", ROOT, cmd, env=self.env)

    def tmux(self, *args, env=None):
        return subprocess.run(["tmux", "-L", self.sock, *args], check=True, env=env,
                              capture_output=True, text=True, timeout=20).stdout

    def keys(self, *keys):
        self.tmux("send-keys", "-t", self.name, *keys)

    def footer(self) -> str:
        return self.text().rstrip("\n").splitlines()[-1]

    def until(self, cond, what: str, timeout: float = 30.0):
        end = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > end:
                raise AssertionError(f"{what}:\n{self.text()}")
            time.sleep(0.1)

    def line(self, text: str):
        """Type a command line as a user does, one step at a time (a focus change applies only
        after the keys already queued, so each step waits to see the last one land): `:` when
        a view has the focus (its footer offers `: cmd`), the text, seen in the command line,
        Enter, the command line emptied, and the screen settled where the result put it."""
        if ": cmd" in self.footer():
            self.keys(":")
            self.until(lambda: ": cmd" not in self.footer(), "the command line never took "
                       "the focus")
        self.keys("-l", text)
        self.until(lambda: text in self.text().splitlines()[-2], f"{text!r} not typed")
        self.keys("Enter")
        self.until(lambda: text not in self.text().splitlines()[-2], f"{text!r} not run")
        last, since = self.text(), time.monotonic()
        while time.monotonic() - since < 0.5:
            time.sleep(0.1)
            if self.text() != last:
                last, since = self.text(), time.monotonic()

    def view_key(self, key: str):
        """A key for the views: Esc first if the command line has the focus (and wait for it
        to leave: Esc and a key sent together read as Alt+key)."""
        if ": cmd" not in self.footer():
            self.keys("Escape")
            self.until(lambda: ": cmd" in self.footer(), "Esc did not leave the command line")
        self.keys(key)

    def text(self) -> str:
        return self.tmux("capture-pane", "-t", self.name, "-p")

    def wait_for(self, needle: str, timeout: float = 30.0) -> str:
        end = time.monotonic() + timeout
        while True:
            screen = self.text()
            if needle in screen:
                return screen
            if time.monotonic() > end:
                raise AssertionError(f"{needle!r} not on screen:\n{screen}")
            time.sleep(0.2)

    def close(self):
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], capture_output=True)


@pytest.fixture
def screen(tmp_path):
    s = Screen(tmp_path)
    try:
        yield s
    finally:
        s.close()


def test_walk_in_the_ui(screen, tmp_path):
    # default scenario (smmudbg/data/default.toml): nic0 is SID 0x8, nested
    screen.wait_for("nic0 0x8 nested")
    screen.wait_for("Ctrl-P lists every command")     # the welcome line: ready for keys
    time.sleep(0.5)
    screen.keys(":")
    screen.keys("-l", "walk nic0 0x10000000")
    screen.keys("Enter")
    # nic0-dma maps 0x1000_0000 -> IPA 0x4100_0000; vm0 IPA 0x4000_0000 -> PA 0x6000_0000
    screen.wait_for("16 steps")                    # the output line; the Walk tab is
    out = screen.wait_for("step 1/16: L1STD")      # built when first shown, a frame later
    assert "PA 0x61000000" in out
    for _ in range(7):
        screen.keys("n")
    out = screen.wait_for("step 8/16: S1 L0")
    assert "table 0x4f000000 index 0" in out      # nic0-dma's root (pool base), an IPA
    screen.keys("p")
    screen.wait_for("step 7/16: S2 L2 (for TT)")
    screen.keys("C-q")
    screen.wait_for("SMMUDBG-EXITED-0")
    import json
    log = json.load(open(tmp_path / "autosave.json"))["log"]
    assert [e["command"] for e in log] == ["walk nic0 0x10000000"]


def test_done_when_of_the_ui(screen, tmp_path):
    """Issue 13's 'done when', as a new user does it: the default scenario opens; find nic0
    (SID 0x8, nested); step through its nested walk and its MSI; inject a lost invalidation,
    see the stale IOTLB entry and the check that names the fix; save; replay.

    Expected values from smmudbg/data/default.toml: nic0-dma maps IOVA 0x1000_0000 -> IPA
    0x4100_0000, vm0 IPA 0x4000_0000 -> PA 0x6000_0000; nic0 MSI-X vector 1 = data 1 at
    gIOVA 0x800_0040 -> its0 GITS_TRANSLATER 0x809_0040 -> LPI 8193, collection 1 ->
    redistributor 1."""
    screen.wait_for("Ctrl-P lists every command")
    time.sleep(0.5)
    # find the device: the stream table starts on the first stream; Enter opens its STE
    screen.keys("Enter")
    out = screen.wait_for("Config=nested")
    assert "nic0" in out and "SID 0x8" in out
    # its nested walk, from the walk form (w: the form filled with the stream in focus)
    screen.keys("w")
    # typed once the form's address field has the focus (the footer drops ": cmd" while a
    # text field has it): the tab is built on its first show, which a loaded machine slows
    screen.until(lambda: ": cmd" not in screen.footer(), "the walk form never took the focus")
    screen.keys("-l", "0x10000000")
    screen.keys("Enter")
    out = screen.wait_for("16 steps")
    assert "IPA 0x41000000" in out and "PA 0x61000000" in out
    for _ in range(15):
        screen.keys("n")
    out = screen.wait_for("step 16/16")
    assert "input 0x41000000" in out                  # the final stage 2: the IPA
    # its MSI, vector 1, stepped to the LPI
    screen.line("msi nic0 1 dry")
    out = screen.wait_for("MSI step 1/")
    assert "LPI 8193 collection 1" in out and "0x8090040" in out
    for _ in range(40):
        screen.keys("n")
    out = screen.wait_for("MSI step 29/29: LPI")
    assert "LPI 8193 pending on PE 1" in out and "dry: pending state put back" in out
    # the lost invalidation: the IOTLB caches the walk, the guest unmaps it, the TLBI is lost
    for line in ("walk nic0 0x10000000", "drop-invalidations smmu0 1",
                 "inject unmap nic0-dma 0x10000000", "cmd smmu0 CMD_TLBI_NH_ASID ASID=1"):
        screen.line(line)
    # a real transaction: served by the entry the lost TLBI left (a working one would have
    # removed it, and the walk would fault: stage 1 maps nothing any more)
    screen.line("walk nic0 0x10000000")
    out = screen.wait_for("(IOTLB hit)")
    assert "PA 0x61000000" in out
    screen.view_key("6")                              # the Caches tab
    out = screen.wait_for("NESTED")
    assert "IOTLB: 1 entries" in out and "0x10000000" in out and "0x61000000" in out
    screen.view_key("c")                              # check: the finding and its fix
    out = screen.wait_for("CMD_TLBI_NH_VA")
    assert "problem(s)" in out and "stale" in out
    # save, then replay the saved session in the UI
    path = str(tmp_path / "done-when.json")
    screen.line(f"save {path}")
    screen.wait_for("saved 8 commands")
    screen.line(f"replay {path}")
    out = screen.wait_for("replayed", timeout=60)
    assert "identically" in out or "identical" in out
    screen.keys("C-q")
    screen.wait_for("SMMUDBG-EXITED-0")
    import json
    log = [e["command"] for e in json.load(open(path))["log"]]
    assert log[:2] == ["walk nic0 0x10000000 dry", "msi nic0 1 dry"]
    assert log[-2:] == ["walk nic0 0x10000000", "check"] and len(log) == 8
    # and the same file replays from the shell
    r = subprocess.run([sys.executable, "-m", "smmudbg.cli", "replay", path], cwd=ROOT,
                       env=screen.env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_done_when_of_the_ui_on_vtd(tmp_path):
    """Issue 16's 'done when' in the UI, on examples/vtd-nested.toml: walk nic0's DMA through
    the PASID entry and both stages step by step, follow its MSI through the IRTE, inject a
    missing PASID-based invalidation, see the stale IOTLB entry and the check that names
    the descriptor that fixes it.

    Expected values from the scenario: nic0 (RID 0x10) PASID 0 is nested: guest-fs maps
    0x7F00_0000_0000 -> GPA 0x0200_0000 (4 levels; its tables in vm0's RAM, each fetched
    through vm0-s2's 3 levels to a 2M leaf), vm0 GPA 0 -> PA 0x6000_0000: 4 configuration
    steps + 4 x (3 + 1) + 3 = 23 steps. nic0's IRTE 1: vector 0x42, destination 1."""
    s = Screen(tmp_path, size=(120, 40), args=("examples/vtd-nested.toml",))
    try:
        s.wait_for("dmar0 VT-d")
        s.wait_for("nic0 00:02.0 RID 0x10")
        s.wait_for("c checks, : types a command")
        time.sleep(0.5)
        s.keys(":")
        s.keys("-l", "walk nic0 0x7f0000001234 dry")
        s.keys("Enter")
        s.wait_for("23 steps")
        out = s.wait_for("step 1/23: root entry")
        assert "GPA 0x2001234 -> PA 0x62001234" in out
        for _ in range(3):
            s.keys("n")
        out = s.wait_for("step 4/23: PASID entry")
        assert "PASID_ENTRY: P=0x1 AW=48bit PGTT=nested SLPTPTR=0x40003000" in out
        s.keys("n")
        s.wait_for("step 5/23: SS PML4E (FS table)")
        for _ in range(3):
            s.keys("n")
        out = s.wait_for("step 8/23: FS PML4E")
        assert "FS_PML4E" in out
        for _ in range(15):
            s.keys("n")
        out = s.wait_for("step 23/23: SS PDE")
        assert "SS_PDE_2M" in out and "input 0x2001234" in out
        # its MSI through the IRTE
        s.line("msi nic0 1 dry")
        out = s.wait_for("vector 0x42")
        assert "IRTE" in out
        s.keys("n")
        out = s.wait_for("step 2/3: IRTE")
        assert "IRTE at" in out
        # the missing PASID-based invalidation
        s.line("walk nic0 0x7f0000001234")
        s.line("inject clear-present nic0 0x7f0000001234")
        out = s.wait_for("is now STALE")
        assert "IOTLB entry DID 2 PASID 0 0x7f0000001000" in out
        s.line("check")
        out = s.wait_for("P_IOTLB_INV_DSC G=page DID=2 PASID=0")
        assert "SFS_2" in out
        s.keys("C-q")
        s.wait_for("SMMUDBG-EXITED-0")
        import json
        log = [e["command"] for e in json.load(open(tmp_path / "autosave.json"))["log"]]
        assert log == ["walk nic0 0x7f0000001234 dry", "msi nic0 1 dry",
                       "walk nic0 0x7f0000001234", "inject clear-present nic0 0x7f0000001234",
                       "check"]
    finally:
        s.close()
