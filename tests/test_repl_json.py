"""JSON from the REPL (issue 14, item 8): a trailing --json on any command line, and the
`json on|off` toggle, print exactly the line `smmudbg run --json` prints for that command."""
from __future__ import annotations

import io
import json

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

from smmudbg.repl import Repl
from smmudbg.script import run_script
from smmudbg.session import Session

LINES = ["walk nic0 0x10000000", "ste nic0", "walk nic0 0x90000000 access=write",
         "pt nic0-dma", "regs smmu0 CR0", "walk nosuch 0x1"]


@pytest.fixture(autouse=True)
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("SMMUDBG_AUTOSAVE", raising=False)


def repl_output(lines, width=40):
    buf = io.StringIO()
    con = Console(file=buf, width=width, highlight=False, markup=False, color_system=None)
    with create_pipe_input() as inp:
        inp.send_text("".join(line + "\r" for line in lines) + "\x04")
        r = Repl(Session(), console=con, input=inp, output=DummyOutput(), history=None)
        r.run(banner=False)
    return buf.getvalue()


def run_json(lines):
    out = io.StringIO()
    run_script(lines, Session(), as_json=True, keep_going=True, out=out, err=io.StringIO())
    return out.getvalue().splitlines()


def json_lines(text):
    return [line for line in text.splitlines() if line.startswith("{")]


def test_trailing_json_prints_what_run_json_prints():
    got = json_lines(repl_output([line + " --json" for line in LINES]))
    want = run_json(LINES)
    assert got == want
    assert len(got) == len(LINES)
    first = json.loads(got[0])
    assert first["command"] == "walk nic0 0x10000000" and first["ok"]
    assert first["result"]["kind"] == "walk"
    assert json.loads(got[-1])["ok"] is False


def test_json_toggle():
    text = repl_output(["json on"] + LINES + ["json off", "ste nic0", "json"])
    assert json_lines(text) == run_json(LINES)
    assert "json output on" in text and text.rstrip().endswith("json output off")
    assert "STE smmu0 SID 0x8" in text            # the table again after json off


def test_json_without_a_command_is_an_error():
    out = Session().execute("json maybe")
    assert not out.ok and "on or off" in out.error


def test_basic_loop_takes_json_too(monkeypatch, capsys):
    from smmudbg import cli
    lines = iter(["walk nic0 0x10000000 --json", "json on", "ste nic0", "quit"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    assert cli._basic_loop(Session()) == 0
    got = json_lines(capsys.readouterr().out.replace("smmudbg> ", ""))
    assert got == run_json(["walk nic0 0x10000000", "ste nic0"])
