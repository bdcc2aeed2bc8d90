"""Scripts: expect lines, stop at the first error, --keep-going, `expect error`, --json."""
import glob
import io
import json
import os

import pytest

from smmudbg.script import commands_of, run_script
from smmudbg.session import Session

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(text, **kw):
    out, err = io.StringIO(), io.StringIO()
    rc = run_script(text.splitlines(), Session(), out=out, err=err, **kw)
    return rc, out.getvalue(), err.getvalue()


def test_comments_and_blank_lines():
    assert commands_of(["# c", "", "  walk nic0 1 # x", "   "]) == [(3, "walk nic0 1 # x")]


def test_expect_pass_and_fail():
    rc, out, err = run("walk nic0 0x10000123\nexpect pa == 0x61000123\nexpect ipa == 0x41000123\n"
                       "expect fault == null\n")
    assert rc == 0 and err == ""
    rc, out, err = run("walk nic0 0x10000123\nexpect pa == 0x61000124\nste nic0\n")
    assert rc == 1
    assert err == "script:2: expect pa == 0x61000124: got 0x61000123\n"
    assert "> ste nic0" not in out                     # stopped at the first error


def test_expect_fault_fields():
    rc, _, err = run("inject unmap vm0-s2 0x41000000\nwalk nic0 0x10000123\n"
                     "expect fault.type == F_TRANSLATION\nexpect fault.s2 == true\n"
                     "expect fault.class == IN\nexpect fault.ipa == 0x41000123\n"
                     "expect fault.rnw == true\nexpect steps[0].what == L1STD\n"
                     "expect len(steps) >= 10\nexpect fault.reason contains ''\n")
    assert rc == 0, err


@pytest.mark.parametrize("expr,msg", [
    ("nope == 1", "the result has no 'nope'"),
    ("fault.type == X", "fault is null, not an object"),
    ("pa = 1", "is not one of"),
    ("pa <", "use PATH OP VALUE"),
    ("steps[99].what == x", "has only"),
    ("perm < 3", "compares numbers"),
    ("len(pa) == 1", "has no length"),
    ("1abc == 2", "is not a result path"),
])
def test_expect_errors_are_one_line(expr, msg):
    rc, _, err = run(f"walk nic0 0x10000123\nexpect {expr}\n")
    assert rc == 1 and msg in err and err.count("\n") == 1


def test_keep_going_and_exit_status():
    rc, out, err = run("bogus\nwalk nic0 1 ssid=x\nste nic0\n", keep_going=True)
    assert rc == 1
    assert "script:1: unknown command 'bogus'" in err
    assert "script:2: walk: ssid: 'x' is not a number" in err
    assert "> ste nic0" in out


def test_expect_error_continues():
    rc, _, err = run("walk nic0 1 ssid=x\nexpect error contains \"ssid\"\nste nic0\n"
                     "expect ok\n")
    assert rc == 0, err
    rc, _, err = run("ste nic0\nexpect error\n")
    assert rc == 1 and "succeeded" in err


def test_json_output():
    rc, out, _ = run("walk nic0 0x10000123\nbogus\n", as_json=True, keep_going=True)
    lines = [json.loads(x) for x in out.splitlines()]
    assert lines[0]["command"] == "walk nic0 0x10000123" and lines[0]["ok"] is True
    r = lines[0]["result"]
    assert r["pa"] == 0x61000123 and r["fault"] is None and isinstance(r["steps"], list)
    assert lines[1] == {"command": "bogus", "ok": False,
                        "error": "unknown command 'bogus' (try: help)"}
    assert rc == 1


def test_json_fault_object():
    rc, out, _ = run("walk nic0 0x30000000\n", as_json=True)
    r = json.loads(out)["result"]
    assert r["pa"] is None and r["fault"]["type"] == "F_TRANSLATION"
    for k in ("sid", "ssid", "ssv", "input_addr", "rnw", "ind", "pnu", "s2", "class", "ipa"):
        assert k in r["fault"]


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "examples", "*.smmu"))))
def test_example_scripts_pass(path):
    out, err = io.StringIO(), io.StringIO()
    rc = run_script(open(path).read().splitlines(), Session(), out=out, err=err, where=path)
    assert rc == 0, err.getvalue()
