"""The REPL driven through prompt_toolkit's test input: completion, history, errors, output."""
from __future__ import annotations

import io
import os
import re
import threading
import time

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import to_plain_text
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

from smmudbg import repl as repl_mod
from smmudbg.completion import RegistryCompleter, complete_line
from smmudbg.lexer import STREAMID, CommandLexer
from smmudbg.repl import Repl
from smmudbg.session import Session

UP = "\x1b[A"
CTRL_C = "\x03"
CTRL_D = "\x04"


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("SMMUDBG_AUTOSAVE", raising=False)
    return tmp_path


def make(inp, session=None, history=None, width=160, **kw):
    buf = io.StringIO()
    con = Console(file=buf, width=width, highlight=False, markup=False, color_system=None)
    r = Repl(session or Session(), console=con, input=inp, output=DummyOutput(),
             history=history, **kw)
    return r, buf


def drive(keys: str, session=None, history=None, **kw):
    """Run a REPL on the keys (ending with Ctrl-D unless given); returns (repl, output)."""
    if not keys.endswith(CTRL_D):
        keys += CTRL_D
    with create_pipe_input() as inp:
        inp.send_text(keys)
        r, buf = make(inp, session, history, **kw)
        assert r.run() == 0
    return r, buf.getvalue()


# ---------------------------------------------------------------------------------------------
# completion
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def session():
    return Session()


def texts(session, line):
    return complete_line(session, line)


def test_complete_command_name(session):
    assert texts(session, "wal") == ["walk"]
    assert texts(session, "wa") == ["walk", "watch"]
    assert "set" in texts(session, "se")


def test_complete_subcommand(session):
    assert texts(session, "set ") == ["cd", "context", "desc", "pasid", "reg", "ste"]
    assert texts(session, "set s") == ["ste"]


def test_complete_smmu_name(session):
    assert texts(session, "ste smmu") == ["smmu0"]


def test_complete_device_names(session):
    got = texts(session, "walk n")
    assert "nic0" in got and "nvme0" in got


def test_complete_streamids_present(session):
    assert texts(session, "walk smmu0 0x") == ["0x8", "0x100", "0x200", "0x300", "0x301"]
    assert texts(session, "walk smmu0 0x1") == ["0x100"]


def test_complete_ste_field_names(session):
    assert texts(session, "set ste smmu0 0x8 S2T") == ["S2T0SZ=", "S2TG=", "S2TTB="]


def test_complete_cd_field_names(session):
    got = texts(session, "set cd nic0 T0")
    assert "T0SZ=" in got


def test_complete_enum_values(session):
    got = texts(session, "set ste smmu0 0x8 Config=")
    assert "Config=nested" in got and "Config=s2_trans" in got
    assert texts(session, "set ste nic0 Config=s2") == ["Config=s2_trans"]


def test_complete_opcodes(session):
    got = texts(session, "cmd smmu0 CMD_TLBI_NH_")
    assert got == ["CMD_TLBI_NH_ALL", "CMD_TLBI_NH_ASID", "CMD_TLBI_NH_VA", "CMD_TLBI_NH_VAA"]
    assert "CMD_CFGI_STE" in texts(session, "cmd smmu0 ")


def test_complete_options(session):
    got = texts(session, "walk nic0 0x1000 ")
    assert {"ssid=", "access=", "priv"} <= set(got)
    assert texts(session, "walk nic0 0x1000 access=w") == ["access=write"]


def test_completion_replaces_the_word_and_describes_it(session):
    comp = RegistryCompleter(session)
    [c] = list(comp.get_completions(Document("set ste nic0 Config=ne"), CompleteEvent()))
    assert c.text == "Config=nested" and c.start_position == -len("Config=ne")
    assert c.display_text == "nested"
    [w] = list(comp.get_completions(Document("wal"), CompleteEvent()))
    assert w.start_position == -3 and "Translate" in w.display_meta_text


def test_completion_never_raises(session):
    comp = RegistryCompleter(session)
    for line in ['walk "unterminated', "walk smmu0 0x8 0x1 # comment", "set ste nosuch S2",
                 "\x00", "cmd smmu0 NOPE F=", "=", "walk nic0 0x1 ssid="]:
        list(comp.get_completions(Document(line), CompleteEvent()))


def test_completion_through_the_prompt(state):
    """Tab in the running prompt completes `ste smm` to `ste smmu0`, then the line runs."""
    with create_pipe_input() as inp:
        r, buf = make(inp, history=str(state / "h"))

        def typist():
            inp.send_text("ste smm")
            time.sleep(0.3)
            inp.send_text("\t")
            time.sleep(0.5)
            inp.send_text(" 0x8\r")
            time.sleep(0.5)
            inp.send_text(CTRL_D)

        t = threading.Thread(target=typist)
        t.start()
        r.run()
        t.join()
    out = buf.getvalue()
    assert "STE smmu0 SID 0x8" in out, out
    assert "ste smmu0 0x8" in r.history.get_strings()


# ---------------------------------------------------------------------------------------------
# running lines
# ---------------------------------------------------------------------------------------------
def test_unknown_command_is_one_line_and_repl_keeps_running(state):
    r, out = drive("frobnicate 12\rste nic0\r", history=str(state / "h"))
    lines = [ln for ln in out.splitlines() if "frobnicate" in ln]
    assert lines == ["unknown command 'frobnicate' (try: help)"]
    assert "Traceback" not in out
    assert "STE smmu0 SID 0x8 (nic0)" in out      # the next line still ran


def test_argument_error_is_one_line(state):
    r, out = drive("walk nic0 0x1000 ssid=x\r", history=str(state / "h"))
    assert "walk: ssid: 'x' is not a number" in out.splitlines()


def test_walk_prints_its_steps(state):
    r, out = drive("walk nic0 0x10000123\r", history=str(state / "h"))
    assert "-> PA 0x61000123" in out and "IPA 0x41000123" in out
    for what in ("STE", "CD", "S2 (TT)", "S1", "S2 (IN)"):
        assert what in out
    steps = [ln for ln in out.splitlines() if re.match(r"^\d+\s+\S", ln) and "0x" in ln]
    assert len(steps) == 16                         # every table fetch of the nested walk


def test_walk_fault_shows_the_event(state):
    r, out = drive("walk nic0 0x1000\r", history=str(state / "h"))
    assert "F_TRANSLATION" in out and "Traceback" not in out


def test_ste_shows_config_nested(state):
    r, out = drive("ste smmu0 0x8\r", history=str(state / "h"))
    assert "nested" in out and "S2TTB" in out and "S1ContextPtr" in out


def test_help_and_help_command(state):
    r, out = drive("help\rhelp walk\r", history=str(state / "h"))
    assert "walk" in out and "ste" in out and "topology" in out
    assert "[ssid=N]" in out                        # usage is printed as text, not markup
    assert "Translate ADDRESS" in out


def test_internal_error_is_one_line(state, monkeypatch):
    import smmudbg.render as render

    def boom(result):
        raise RuntimeError("boom")

    monkeypatch.setattr(render, "render", boom)
    r, out = drive("smmus\rhistory\r", history=str(state / "h"))
    assert "internal error: RuntimeError: boom" in out.splitlines()
    assert "Traceback" not in out


def test_ctrl_c_cancels_the_line(state):
    r, out = drive("ste nic0" + CTRL_C + "smmus\r", history=str(state / "h"))
    assert "STE smmu0" not in out
    assert "smmu0" in out
    assert r.session.log[-1].command == "smmus"
    assert [e.command for e in r.session.log] == ["smmus"]


def test_ctrl_d_and_quit_leave(state):
    r, out = drive("quit\rsmmus\r", history=str(state / "h"))
    assert r.session.log == []
    r, out = drive("", history=str(state / "h"))
    assert "smmudbg" in out                         # the banner, then a clean exit


def test_blank_and_comment_lines_do_nothing(state):
    r, out = drive("\r   \r# just a note\r", history=str(state / "h"))
    assert r.session.log == [] and "error" not in out.lower()


# ---------------------------------------------------------------------------------------------
# prompt, history, autosave
# ---------------------------------------------------------------------------------------------
def test_prompt_shows_scenario_and_time_travel(state):
    r, out = drive("smmus\rmap nic0-dma 0x30000000 0x41000000 0x1000\rback\r",
                   history=str(state / "h"))
    assert to_plain_text(r._message()) == "smmudbg[default @1/2]> "
    r2, _ = drive("", history=str(state / "h"))
    assert to_plain_text(r2._message()) == "smmudbg[default]> "


def test_history_persists_across_two_repls(state):
    h = state / "state" / "smmudbg" / "history"       # the default place, created on demand
    assert not h.exists()
    r1, _ = drive("ste nic0\rsmmus\r")
    assert h.exists()
    assert r1.history.get_strings()[-2:] == ["ste nic0", "smmus"]
    # A new REPL sees it: Up Up recalls `ste nic0`, Enter runs it again.
    r2, out = drive(UP + UP + "\r")
    assert "STE smmu0 SID 0x8 (nic0)" in out
    assert [e.command for e in r2.session.log] == ["ste nic0"]


def test_history_path_follows_xdg(state, monkeypatch):
    assert repl_mod.history_path() == str(state / "state" / "smmudbg" / "history")
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(state / "home"))
    assert repl_mod.history_path() == str(state / "home" / ".local" / "state" / "smmudbg" /
                                          "history")


def test_unwritable_history_is_not_fatal(state):
    blocker = state / "file"
    blocker.write_text("not a directory")
    r, out = drive("smmus\rsmmus\r", history=str(blocker / "history"))
    warnings = [ln for ln in out.splitlines() if ln.startswith("warning: history")]
    assert len(warnings) == 1                       # warned once
    assert [e.command for e in r.session.log] == ["smmus", "smmus"]


def test_autosave_on_exit(state):
    s = Session()
    s.autosave_path = str(state / "auto.json")
    r, out = drive("map nic0-dma 0x30000000 0x41000000 0x1000\r", session=s,
                   history=str(state / "h"))
    assert os.path.exists(s.autosave_path)
    loaded, report = Session.load(s.autosave_path)
    assert [e.command for e in loaded.log] == ["map nic0-dma 0x30000000 0x41000000 0x1000"]
    assert report["identical"]
    assert f"session saved to {s.autosave_path}" in out


def test_autosave_after_a_command_once_the_interval_passed(state):
    s = Session()
    s.autosave_path = str(state / "auto.json")
    with create_pipe_input() as inp:
        r, _ = make(inp, s, str(state / "h"), autosave_interval=0.0)
        r.handle("smmus")
        assert os.path.exists(s.autosave_path)       # saved without leaving the REPL


def test_autosave_failure_is_a_warning(state):
    s = Session()
    s.autosave_path = str(state / "no" / "such" / "dir" / "auto.json")
    r, out = drive("smmus\r", session=s, history=str(state / "h"))
    assert "Traceback" not in out
    assert any(ln.startswith("warning: autosave:") for ln in out.splitlines())


# ---------------------------------------------------------------------------------------------
# lexer and entry point
# ---------------------------------------------------------------------------------------------
def test_lexer_tokens():
    from pygments.token import Comment, Error, Keyword, Name, Number, Operator
    lx = CommandLexer(commands=["walk", "set ste"], smmus=["smmu0"], devices=["nic0"])
    toks = [(t, v) for _, t, v in lx.get_tokens_unprocessed(
        "walk smmu0 0x8 0x1000 ssid=1 # note") if not v.isspace()]
    assert toks == [(Keyword, "walk"), (Name.Namespace, "smmu0"), (STREAMID, "0x8"),
                    (Number.Hex, "0x1000"), (Name.Attribute, "ssid"), (Operator, "="),
                    (Number, "1"), (Comment.Single, "# note")]
    toks = [(t, v) for _, t, v in lx.get_tokens_unprocessed("set ste nic0 Config=nested")
            if not v.isspace()]
    assert toks == [(Keyword, "set"), (Keyword, "ste"), (Name.Variable, "nic0"),
                    (Name.Attribute, "Config"), (Operator, "="), (Name.Constant, "nested")]
    assert [t for _, t, v in lx.get_tokens_unprocessed("bogus 1")][0] is Error
    assert [t for _, t, v in lx.get_tokens_unprocessed("wa")][0] is Name   # still typing


def test_cli_opens_this_repl():
    import smmudbg.cli as cli
    assert callable(repl_mod.run)
    assert "repl.run(session)" in open(cli.__file__).read()


def test_autosave_while_the_prompt_waits(state):
    """Changes not yet saved are written by the background task while the user is idle."""
    s = Session()
    s.autosave_path = str(state / "auto.json")
    s.execute("map nic0-dma 0x30000000 0x41000000 0x1000")     # dirty before the REPL starts
    seen = {}
    with create_pipe_input() as inp:
        r, _ = make(inp, s, str(state / "h"), autosave_interval=0.0)

        def idle_user():
            time.sleep(2.0)                                     # the task runs every >= 1 s
            seen["saved"] = os.path.exists(s.autosave_path)
            inp.send_text(CTRL_D)

        t = threading.Thread(target=idle_user)
        t.start()
        r.run()
        t.join()
    assert seen["saved"]
