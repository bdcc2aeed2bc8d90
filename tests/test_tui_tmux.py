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
    def __init__(self, tmp_path, size=(100, 30)):
        self.sock = f"smmudbg-tui-{uuid.uuid4().hex[:8]}"
        env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"), TERM="xterm-256color",
                   SMMUDBG_AUTOSAVE=str(tmp_path / "autosave.json"),
                   PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        cmd = f"{shlex.quote(sys.executable)} -m smmudbg.cli; echo SMMUDBG-EXITED-$?; sleep 60"
        self.tmux("new-session", "-d", "-s", "t", "-x", str(size[0]), "-y", str(size[1]),
                  "-c", ROOT, cmd, env=env)

    def tmux(self, *args, env=None):
        return subprocess.run(["tmux", "-L", self.sock, *args], check=True, env=env,
                              capture_output=True, text=True, timeout=20).stdout

    def keys(self, *keys):
        self.tmux("send-keys", "-t", "t", *keys)

    def text(self) -> str:
        return self.tmux("capture-pane", "-t", "t", "-p")

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
