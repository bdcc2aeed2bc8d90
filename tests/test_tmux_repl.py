"""The real `smmudbg` console script in a real terminal (tmux): what a user sees on screen.

Skipped when tmux is not installed. Uses its own tmux server socket and a private
XDG_STATE_HOME, so it touches neither the user's tmux sessions nor their history.
"""
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


def _command() -> str:
    exe = shutil.which("smmudbg")
    if exe:
        return shlex.quote(exe)
    # The package is not installed as a console script: run the same entry point.
    return f"{shlex.quote(sys.executable)} -m smmudbg.cli"


class Screen:
    def __init__(self, tmp_path):
        self.sock = f"smmudbg-test-{uuid.uuid4().hex[:8]}"
        self.name = "t"
        env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"), TERM="xterm-256color",
                   SMMUDBG_AUTOSAVE=str(tmp_path / "autosave.json"))
        env.pop("NO_COLOR", None)
        # After smmudbg exits, say so and keep the pane open to read the last lines.
        shell = f"{_command()} --repl; echo SMMUDBG-EXITED-$?; sleep 60"   # the REPL, not the UI
        self.tmux("new-session", "-d", "-s", self.name, "-x", "160", "-y", "50", shell, env=env)

    def tmux(self, *args, env=None):
        return subprocess.run(["tmux", "-L", self.sock, *args], check=True, env=env,
                              capture_output=True, text=True, timeout=20).stdout

    def send(self, *keys):
        self.tmux("send-keys", "-t", self.name, *keys)

    def type(self, line):
        self.send("-l", line)
        self.send("Enter")

    def text(self) -> str:
        return self.tmux("capture-pane", "-t", self.name, "-p", "-S", "-200")

    def wait_for(self, needle: str, timeout: float = 30.0, count: int = 1) -> str:
        end = time.monotonic() + timeout
        while True:
            screen = self.text()
            if screen.count(needle) >= count:
                return screen
            if time.monotonic() > end:
                raise AssertionError(f"{needle!r} not on screen after {timeout}s:\n{screen}")
            time.sleep(0.1)

    def close(self):
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], capture_output=True)


@pytest.fixture
def screen(tmp_path):
    s = Screen(tmp_path)
    try:
        yield s
    finally:
        s.close()


PROMPT = "smmudbg[default]>"         # capture-pane drops trailing blanks


def test_prompt_appears(screen):
    screen.wait_for(PROMPT)
    assert "scenario default" in screen.text()


def test_ste_shows_config_nested(screen):
    screen.wait_for(PROMPT)
    screen.type("ste smmu0 0x8")
    out = screen.wait_for(PROMPT, count=2)
    assert "STE smmu0 SID 0x8 (nic0)" in out
    config = [ln for ln in out.splitlines() if ln.startswith("Config")]
    assert config and "nested" in config[0], out


def test_bad_command_is_one_error_line(screen):
    screen.wait_for(PROMPT)
    screen.type("frobnicate smmu0")
    out = screen.wait_for(PROMPT, count=2)
    lines = out.splitlines()
    i = next(i for i, ln in enumerate(lines) if ln.startswith(PROMPT + " frobnicate"))
    assert lines[i + 1] == "unknown command 'frobnicate' (try: help)"
    assert lines[i + 2].startswith(PROMPT)          # one line, then the prompt again
    assert "Traceback" not in out


def test_tab_completion_and_walk(screen):
    screen.wait_for(PROMPT)
    screen.send("-l", "walk smm")
    screen.wait_for(PROMPT + " walk smm")           # typed text echoed before completing
    screen.send("Tab")
    screen.wait_for(PROMPT + " walk smmu0")
    screen.send("-l", " 0x")
    screen.wait_for("0x301")                        # the StreamIDs present, in the menu
    screen.send("-l", "8 0x10000123")
    screen.send("Enter")
    out = screen.wait_for("-> PA 0x61000123")
    assert "IPA 0x4f002400 -> PA 0x6f002400" in out    # a stage-1 descriptor fetched via S2


def test_ctrl_c_then_ctrl_d_exits_cleanly(screen, tmp_path):
    screen.wait_for(PROMPT)
    screen.type("map nic0-dma 0x30000000 0x41000000 0x1000")
    screen.wait_for(PROMPT, count=2)
    screen.send("-l", "ste nic0")
    screen.send("C-c")
    screen.wait_for(PROMPT, count=3)
    screen.send("C-d")
    out = screen.wait_for("SMMUDBG-EXITED-")
    assert "SMMUDBG-EXITED-0" in out
    assert "Traceback" not in out
    assert os.path.exists(tmp_path / "autosave.json")
    assert (tmp_path / "state" / "smmudbg" / "history").exists()
