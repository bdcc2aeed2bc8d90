"""The smmudbg command: run, replay, --version, the basic loop, and never a traceback."""
import json
import os
import subprocess
import sys

import pytest

from smmudbg import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def smmudbg(*args, stdin="", env=None):
    e = dict(os.environ, PYTHONPATH=ROOT, NO_COLOR="1")
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "smmudbg.cli", *args], input=stdin,
                          capture_output=True, text=True, cwd=ROOT, env=e, timeout=120)


def test_version():
    r = smmudbg("--version")
    assert r.returncode == 0 and r.stdout.startswith("smmudbg ")


def test_run_stdin_json():
    r = smmudbg("run", "-", "--json", stdin="walk nic0 0x10000123\nexpect pa == 0x61000123\n")
    assert r.returncode == 0, r.stderr
    first = json.loads(r.stdout.splitlines()[0])
    assert first["ok"] and first["result"]["pa"] == 0x61000123


def test_run_error_exit_and_one_line():
    r = smmudbg("run", "-", stdin="walk nic0 zz\n")
    assert r.returncode == 1
    assert r.stderr == "<stdin>:1: walk: address: 'zz' is not an address\n"


def test_run_with_scenario(tmp_path):
    r = smmudbg("run", "-", "--scenario", "examples/large.toml",
                stdin="walk smmu0 0x1234 0x10000123\nexpect pa == 0x61000123\n"
                      "walk hdev0 0x80000010\nexpect pa == 0x50000010\n")
    assert r.returncode == 0, r.stderr


def test_bad_files_are_one_line(tmp_path):
    r = smmudbg("run", str(tmp_path / "nope.smmu"))
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[[smmu]]\nname = 1\n")
    r = smmudbg(str(bad), stdin="")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    r = smmudbg("replay", str(bad))
    assert r.returncode == 1 and "not a session file" in r.stderr


def test_replay_example_session():
    r = smmudbg("replay", "sessions/stale-iotlb.json")
    assert r.returncode == 0 and r.stdout.startswith("replayed ") and "identically" in r.stdout


def test_replay_divergence_exit(tmp_path):
    doc = json.load(open(os.path.join(ROOT, "sessions", "nested-walk.json")))
    doc["log"][0]["digest"] = "f" * 64
    p = tmp_path / "d.json"
    p.write_text(json.dumps(doc))
    r = smmudbg("replay", str(p))
    assert r.returncode == 1 and "command #1 diverged" in r.stdout


def test_basic_loop_and_autosave(tmp_path):
    auto = tmp_path / "auto.json"
    r = smmudbg("--repl", stdin="walk nic0 0x10000123\nbogus\nquit\n",
                env={"SMMUDBG_AUTOSAVE": str(auto)})
    assert r.returncode == 0 and "Traceback" not in r.stdout + r.stderr
    assert "unknown command 'bogus'" in r.stdout
    assert json.load(open(auto))["log"][0]["command"] == "walk nic0 0x10000123"


def test_internal_error_is_one_line(monkeypatch, capsys):
    def boom(*a, **k):
        raise RuntimeError("kaput")
    monkeypatch.setattr(cli, "_run", boom)
    assert cli.main(["run", "x"]) == cli.EXIT_INTERNAL
    assert capsys.readouterr().err == "internal error: RuntimeError: kaput\n"


def test_internal_error_in_a_command_is_one_line(monkeypatch):
    from smmudbg.commands import REGISTRY
    from smmudbg.session import Session
    cmd = REGISTRY.commands["smmus"]

    def boom(ctx):
        raise KeyError("x")
    monkeypatch.setattr(cmd, "handler", boom)
    out = Session().execute("smmus")
    assert out.error == "internal error: KeyError: 'x'"
