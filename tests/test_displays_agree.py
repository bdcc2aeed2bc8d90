"""Displays that agree (issue 14, item 7): check's fixes, no false stale entries, the STE row of
a walk, help, replay, inject, piped output."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from smmudbg.session import Session

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "qemu"


def stale(s):
    return [x for sm in s.run("check").data["smmus"] for x in sm["stale"]]


# ---------------------------------------------------------------------------------------------
# check
# ---------------------------------------------------------------------------------------------
def test_check_fixes_are_complete_and_fix():
    s = Session()
    s.run("walk nic0 0x10000123")
    s.run("walk nvme0 0xffff0000")
    s.run("walk gpu0 0x40000000")
    s.run("inject unmap vm0-s2 0x41000000")      # stage 2 loses the page: no TLBI
    s.run("inject unmap host-dma 0xffff0000")
    s.run("set ste gpu0 S2VMID=3")
    found = stale(s)
    assert {x["kind"] for x in found} == {"TLB", "STE"}
    for x in found:
        assert len(x["fix_commands"]) == 2
        assert x["fix_commands"][0] == "cmd smmu0 " + x["fix"]
        assert x["fix_commands"][1] == "cmd smmu0 CMD_SYNC"
    for x in found:
        for line in x["fix_commands"]:
            s.run(line)
    assert stale(s) == []


@pytest.mark.parametrize("line", [
    "walk nic0 0x10000000 priv", "walk nic0 0x10000000 priv access=write",
    "walk nic0 0x20000000 priv", "walk nic0 0x7f0000000010 ssid=1 priv access=write",
    "walk nic0 0x10000000 priv access=exec", "walk gpu0 0x40000000 priv access=exec"])
def test_no_false_stale_entries_after_a_privileged_walk(line):
    # Nothing changed in memory after the walk: a fresh walk with the same privilege and
    # access agrees with every cached entry.
    s = Session()
    s.run(line)
    s.run(line.replace(" priv", ""))
    assert stale(s) == []


def test_no_false_stale_entry_for_a_substream_above_255():
    s = Session(open(ROOT / "examples" / "pasid-2lvl.toml").read())
    s.run("walk accel0 0x40000000 priv ssid=300")
    assert s.run("tlb smmu0").data["entries"]
    assert stale(s) == []


@pytest.mark.parametrize("bad", ["inject reserved-ste nic0", "set ste nic0 S2T0SZ=0"])
def test_iotlb_entries_under_an_illegal_ste_are_not_blamed(bad):
    s = Session()
    s.run("walk nic0 0x10000000")
    s.run(bad)
    r = s.run("check").data["smmus"][0]
    assert [x["sid"] for x in r["illegal"]] == [0x8]
    assert [x["kind"] for x in r["stale"]] == ["STE"]     # the STE change, not its IOTLB


# ---------------------------------------------------------------------------------------------
# walk: the STE row names the table the STE was read from
# ---------------------------------------------------------------------------------------------
def ste_row(s, line):
    return next(st for st in s.run(line).data["steps"] if st["what"] == "STE")


def test_ste_row_names_the_l2_array_cached_or_not():
    # default scenario: 2-level stream table, SPLIT=8; nic0 is SID 8, gpu0 0x200
    s = Session()
    first = ste_row(s, "walk nic0 0x10000000")
    again = ste_row(s, "walk nic0 0x10000000")
    assert again["outcome"] == "cached"
    assert first["index"] == again["index"] == 8
    assert first["table"] == again["table"] == first["desc_pa"] - 8 * 64
    l2 = s.run("strtab smmu0").data
    assert first["table"] != l2["base"]
    gpu = ste_row(s, "walk gpu0 0x40000000 dry")
    assert gpu["index"] == 0x200 & 0xFF and gpu["table"] == gpu["desc_pa"] - 64 * gpu["index"]


def test_ste_row_on_the_qemu_dump():
    # README: L1 #0 -> L2 0x4ba60000, #1 -> L2 0x4ba64000; SPLIT=8; STE 0x100 at 0x4ba64000
    s = Session()
    s.run(f"import qemu {FIXTURE / 'memory.elf.xz'} --regs {FIXTURE / 'regs.json'}")
    for line, table, index in (("walk smmu0 0x8 0x1000 dry", 0x4BA60000, 8),
                               ("walk smmu0 0x100 0x1000", 0x4BA64000, 0),
                               ("walk smmu0 0x100 0x1000", 0x4BA64000, 0)):
        row = ste_row(s, line)
        assert (row["table"], row["index"]) == (table, index), line


# ---------------------------------------------------------------------------------------------
# help, replay, inject, piped output, README, docs
# ---------------------------------------------------------------------------------------------
def test_help_shows_each_default_once():
    from smmudbg.commands.registry import REGISTRY
    from smmudbg.render import render_text
    s = Session()
    for name in REGISTRY.names():
        text = render_text(s.run(f"help {name}"), width=None)
        for line in text.splitlines():
            assert line.count("default") <= 1, (name, line)
    assert "(default 0) (default 0)" not in render_text(s.run("help cd"), width=None)


def test_help_index_summaries_are_whole_sentences():
    s = Session()
    for area in s.run("help").data["areas"]:
        for c in area["commands"]:
            assert not c["summary"].endswith(":"), c
    check = next(c for a in s.run("help").data["areas"] for c in a["commands"]
                 if c["name"] == "check")
    assert "stale" in check["summary"] and check["summary"].endswith(".")


def cli(*args, stdin=""):
    env = dict(__import__("os").environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "smmudbg.cli", *args], input=stdin,
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def test_replay_divergence_is_a_table(tmp_path):
    s = Session()
    s.run("walk nic0 0x10000123")
    p = tmp_path / "s.json"
    s.save(str(p), results=True)
    doc = json.loads(p.read_text())
    doc["log"][0]["result"]["pa"] = 0x61000999          # as if recorded differently
    doc["log"][0]["digest"] = "0" * 64
    p.write_text(json.dumps(doc))
    r = cli("replay", str(p))
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert lines[0].startswith("command #1 diverged: walk nic0 0x10000123")
    row = next(line for line in lines if line.startswith("pa "))
    assert "0x61000999" in row and "0x61000123" in row
    assert "{'" not in r.stdout and '"kind"' not in r.stdout      # no dict dump


def test_replay_json_reports_errors_as_json(tmp_path):
    r = cli("replay", str(tmp_path / "missing.json"), "--json")
    assert r.returncode == 1 and r.stderr == ""
    d = json.loads(r.stdout)
    assert d["ok"] is False and "missing.json" in d["error"]
    r = cli("replay", "sessions/nested-walk.json", "--json")
    d = json.loads(r.stdout)
    assert r.returncode == 0 and d["ok"] and d["result"]["identical"]


def test_inject_shows_old_and_new_words_in_hex():
    from smmudbg.render import render_text
    s = Session()
    ste = s.run("ste nic0").data["words"]
    text = render_text(s.run("inject corrupt-ste nic0"), width=None)
    # default: dword 0 bit 3 flipped
    assert f"{ste[0]:016x}" in text and f"{ste[0] ^ 8:016x}" in text
    assert str(ste[0]) not in text
    text = render_text(s.run("inject clear-af nic0-dma 0x10000000"), width=None)
    d = s.last.result.data
    assert f"{d['old']:016x}" in text and f"{d['new']:016x}" in text


def test_piped_output_is_not_padded_or_wrapped():
    long_line = "walk nic0 0x10000123"
    r = cli("run", "-", stdin=f"{long_line}\nhelp\nregs smmu0\n")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert all(line == line.rstrip() for line in lines)
    # help's replay summary is longer than 120 columns with its usage: one line, not folded
    replay = [line for line in lines if line.startswith("replay [FILE]")]
    assert len(replay) == 1 and "compare every result" in replay[0]
    assert max(len(line) for line in lines) > 120


def test_readme_tells_what_else_there_is():
    text = (ROOT / "README.md").read_text()
    first = text.split("```sh\n", 1)[1].splitlines()[:2]
    assert first == ["pip install . && smmudbg",
                     "pip install -e '.[test]' && python -m pytest tests"]
    for needle in ("smmudbg run", "smmudbg replay", "import qemu", "examples/", "quit"):
        assert needle in text, needle


def test_docs_cite_only_what_a_user_can_reach():
    for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = p.read_text()
        assert "../" not in text and "/work/" not in text and "smmu-facts" not in text, p
