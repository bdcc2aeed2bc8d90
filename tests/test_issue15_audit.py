"""Issue 15 audit: every reproducer the issue lists, as written there, through the real command
line (`smmudbg run`, `smmudbg replay`, `smmudbg import-qemu`, `smmudbg --repl`), in a child
process under an address-space limit.

Each bullet is one child that calls the CLI's main(argv) once per invocation listed (with its
own argv and standard input, as a shell would), so a bullet costs one interpreter start-up; the
REPL and the kill -9 cases are processes of their own. The subprocess timeout is a hang guard,
not a timing measurement (tests/test_hostile_*.py time each reproducer in-process). Every
invocation must: exit 0 or 1 (never 70, the CLI's internal-error status, nor a signal), print
no traceback and no "internal error", print errors as single short lines, and keep the child's
peak RSS under RSS_LIMIT.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from smmudbg.session import Session, digest

from test_hostile_inputs import SCENARIO_CASES, elf_with

ROOT = Path(__file__).resolve().parent.parent
REGS = ROOT / "tests" / "fixtures" / "qemu" / "regs.json"
# The child's address space: the default scenario reserves 1 GiB for its modeled RAM, a
# replay or a load holds a second system while it is built, and the interpreter and its
# libraries take about 300 MiB more. 3 GiB leaves no room for the gigabytes the issue saw.
AS_LIMIT = 3 << 30
RSS_LIMIT = 1 << 30     # resident memory actually touched (pt once took 1.2 GB)
HANG_GUARD = 60         # seconds for a whole child, on a loaded 2-core machine
MAX_ERROR = 400         # characters in one error line

CHILD = r"""
import contextlib, gc, io, json, os, re, resource, sys
limit, calls_path, out_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from smmudbg.cli import main
calls = json.load(open(calls_path))
with open(out_path, "w") as log:
    for i, call in enumerate(calls):
        log.write(json.dumps({"i": i, "started": call["argv"]}) + "\n")
        log.flush()
        out, err = io.StringIO(), io.StringIO()
        sys.stdin = io.TextIOWrapper(io.BytesIO(call.get("stdin", "").encode("utf-8",
                                                                            "surrogatepass")))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(call["argv"])
            except SystemExit as e:             # argparse usage errors
                rc = e.code if isinstance(e.code, int) else 2
        gc.collect()            # (what the process's exit would free: its systems' RAM)
        # VmHWM: this process's own peak (ru_maxrss keeps the parent's across fork and exec).
        peak = int(re.search(r"VmHWM:\s+(\d+) kB", open("/proc/self/status").read())[1]) << 10
        log.write(json.dumps({"i": i, "rc": rc, "stdout": out.getvalue(),
                              "stderr": err.getvalue(), "peak": peak}) + "\n")
        log.flush()
"""


def _limit_address_space():
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))


def env_for(tmp: Path) -> dict:
    # Autosaves of --repl go to the scratch directory, never to the user's state directory.
    return {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1",
            "SMMUDBG_AUTOSAVE": str(tmp / "autosave" / "last-session.json")}


def cli(tmp: Path, calls: list[dict]) -> list[dict]:
    """Run calls ({argv, stdin}) through smmudbg.cli.main in one child under AS_LIMIT, in tmp;
    the results ({rc, stdout, stderr, peak}), each already checked by check()."""
    calls_path, out_path = tmp / "calls.json", tmp / "results.jsonl"
    calls_path.write_text(json.dumps(calls))
    try:
        p = subprocess.run([sys.executable, "-c", CHILD, str(AS_LIMIT), str(calls_path),
                            str(out_path)], capture_output=True, text=True, cwd=tmp,
                           env=env_for(tmp), timeout=HANG_GUARD)
    except subprocess.TimeoutExpired:
        last = out_path.read_text().splitlines()[-1] if out_path.exists() else "(none)"
        raise AssertionError(f"hang: no answer within {HANG_GUARD} s; last: {last[:300]}")
    assert p.returncode == 0 and p.stderr == "", p.stderr[-2000:]
    results = [json.loads(x) for x in out_path.read_text().splitlines()]
    results = [r for r in results if "rc" in r]
    assert len(results) == len(calls)
    for call, r in zip(calls, results):
        check(call["argv"], r)
    return results


def check(argv, r: dict) -> None:
    text = r["stdout"] + r["stderr"]
    assert r["rc"] in (0, 1), f"{argv}: exit status {r['rc']}: {text[-500:]}"
    assert "Traceback" not in text and "internal error" not in text, f"{argv}: {text[-800:]}"
    assert r["peak"] < RSS_LIMIT, f"{argv}: peak RSS {r['peak'] >> 20} MiB"
    for line in r["stderr"].splitlines():
        assert len(line) <= MAX_ERROR, f"{argv}: {len(line)}-character error line"
    for line in r["stdout"].splitlines():
        if line.startswith("{"):                        # run --json: one object per command
            d = json.loads(line)
            if not d["ok"]:
                assert "\n" not in d["error"] and len(d["error"]) <= MAX_ERROR, d["error"]


def run_json(script: list[str], *extra: str) -> dict:
    """`smmudbg run - --json --keep-going`: every line runs, one JSON object per line."""
    return {"argv": ["run", "-", "--json", "--keep-going", *extra],
            "stdin": "\n".join(script) + "\n"}


def outcomes(r: dict) -> list[dict]:
    return [json.loads(x) for x in r["stdout"].splitlines()]


def error_line(r: dict) -> str:
    lines = r["stderr"].splitlines()
    assert len(lines) == 1, r["stderr"][-500:]
    return lines[0]


# -- 1. No hang, no unbounded work -----------------------------------------------------------------
def test_strtab_log2size_40(tmp_path):
    """`set reg smmu0 STRTAB_BASE_CFG FMT=0 LOG2SIZE=40` then `strtab smmu0` (as written: the
    write is ignored while SMMUEN=1) and with the SMMU disabled first so the write lands."""
    literal = ["set reg smmu0 STRTAB_BASE_CFG FMT=0 LOG2SIZE=40", "strtab smmu0"]
    a, b = cli(tmp_path, [run_json(literal),
                          run_json(["set reg smmu0 CR0 SMMUEN=0"] + literal + ["strtab smmu0 all",
                                                                               "check"])])
    assert [o["ok"] for o in outcomes(a)] == [True, True]
    out = outcomes(b)
    assert all(o["ok"] for o in out)
    assert out[1]["result"]["changes"][1] == {"field": "LOG2SIZE", "old": 16, "new": 40,
                                              "address": False, "meaning": ""}
    # The effective size, not the raw field: 2^min(LOG2SIZE, SIDSIZE 16).
    assert out[2]["result"]["log2size"] == 16 and out[3]["result"]["log2size"] == 16


SIZE_LIKE = ["s1cdmax = 0xffffffff", "LOG2SIZE 40", "split 7", "SIDSIZE 33", "SSIDSIZE 21",
             "linear 2^32 stream table", "count 2^32", "ram wraps", "cmdq_log2size 99",
             "ssid beyond s1cdmax"]


def _scenario_calls(tmp_path, labels):
    cases = {c[0]: c for c in SCENARIO_CASES}
    calls, want = [], []
    for i, label in enumerate(labels):
        _, text, message = cases[label]
        p = tmp_path / f"s{i}.toml"
        p.write_text(text)
        calls.append({"argv": ["run", "-", "--scenario", str(p)], "stdin": "smmus\n"})
        want.append((p, message))
    return calls, want


def _check_scenario_errors(tmp_path, labels):
    calls, want = _scenario_calls(tmp_path, labels)
    for r, (p, message) in zip(cli(tmp_path, calls), want):
        assert r["rc"] == 1
        line = error_line(r)
        assert line.startswith(f"{p}:") and line.endswith(message), line


def test_scenario_size_like_keys_checked_before_allocation(tmp_path):
    """`s1cdmax = 0xffffffff` (24 s and 4.2 GB) and every other size-like key."""
    _check_scenario_errors(tmp_path, SIZE_LIKE)


def test_files_regular_and_bounded(tmp_path):
    """`smmudbg run /dev/zero`, `--scenario /dev/urandom`, a FIFO named in a session's
    `import qemu` line (blocked `smmudbg replay` forever), and the other readers."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    s = Session()
    s.execute("smmus")
    sess = tmp_path / "fifo-session.json"
    s.save(str(sess))
    doc = json.loads(sess.read_text())
    line = f"import qemu {fifo} --regs {REGS}"
    doc["log"].append({"command": line, "digest": digest({"error": "x"}), "ok": False})
    sess.write_text(json.dumps(doc))
    calls = [{"argv": ["run", "/dev/zero"]},
             {"argv": ["run", "-", "--scenario", "/dev/urandom"], "stdin": "smmus\n"},
             {"argv": ["replay", str(sess)]},
             {"argv": ["run", str(fifo)]},
             {"argv": ["run", "-", "--scenario", str(fifo)], "stdin": "smmus\n"},
             {"argv": ["import-qemu", "/dev/zero", "--regs", str(REGS), "--run", "-"]},
             {"argv": ["import-qemu", str(REGS), "--regs", "/dev/zero", "--run", "-"]},
             run_json([f"load {fifo}", "load /dev/zero", f"replay {fifo}", line])]
    r = cli(tmp_path, calls)
    assert error_line(r[0]) == "/dev/zero: not a script (a character device, not a regular file)"
    assert error_line(r[1]) == ("/dev/urandom: not a scenario file (a character device, not a "
                                "regular file)")
    assert r[2]["rc"] == 1 and f"{fifo}: not a memory dump (a FIFO, not a regular file)" in \
        r[2]["stdout"] + r[2]["stderr"]
    assert error_line(r[3]) == f"{fifo}: not a script (a FIFO, not a regular file)"
    assert "a FIFO, not a regular file" in error_line(r[4])
    assert "/dev/zero: not a memory dump (a character device" in error_line(r[5])
    assert "/dev/zero: not a register file (a character device" in error_line(r[6])
    assert [o["ok"] for o in outcomes(r[7])] == [False] * 4


def test_elf_pt_load_beyond_the_file_or_the_address_space(tmp_path):
    """A PT_LOAD whose p_memsz or p_filesz exceeds the file or the address space
    (`OSError: Cannot allocate memory` / `OverflowError`), through `smmudbg import-qemu`."""
    dumps = []
    for i, fields in enumerate([{"p_filesz": 1 << 40, "p_memsz": 1 << 40},
                                {"p_memsz": 2 ** 64 - 1}, {"p_paddr": 0, "p_memsz": 1 << 50},
                                {"p_offset": 2 ** 64 - 0x1000}]):
        d = tmp_path / f"d{i}"
        d.mkdir()
        dumps.append(elf_with(d, 1 if i < 2 else 0, **fields)[0])
    r = cli(tmp_path, [{"argv": ["import-qemu", d, "--regs", str(REGS), "--run", "-"]}
                       for d in dumps])
    wants = ["past the end of the file", "beyond the 64-bit physical address space",
             "p_memsz 0x4000000000000 exceeds p_filesz 0x2000", "p_offset 0xfffffffffffff000"]
    for res, d, want in zip(r, dumps, wants):
        assert res["rc"] == 1
        line = error_line(res)
        assert line.startswith(f"{d}: PT_LOAD #") and want in line, line


def test_pt_of_a_huge_mapping_with_the_largest_limit(tmp_path):
    """`pt` of 2,101,256 leaves that do not merge with the largest `limit` (33 s, 1.2 GB and a
    225 MB JSON line): the tables are written with `set desc` as a user would."""
    from smmudbg.commands.inspect import PT_MAX_ROWS
    root = Session().run("pt vm0-s2 limit=1").to_json()["root"]
    t2, t3 = 0x40f00000, 0x40f01000         # pool pages the default scenario leaves unused
    script = [f"set desc {t3 + 8 * i:#x} stage=2 kind=leaf Valid=1 Type=1 AF=1 "
              f"OA={0x60000000 + (i << 12):#x} S2AP={1 if i & 1 else 3}" for i in range(512)]
    script += [f"set desc {t2 + 8 * i:#x} stage=2 kind=table Valid=1 Type=1 NLTA={t3:#x}"
               for i in range(512)]
    script += [f"set desc {root + 8 * i:#x} stage=2 kind=table Valid=1 Type=1 NLTA={t2:#x}"
               for i in range(8, 16)]
    script += [f"pt vm0-s2 limit={PT_MAX_ROWS}", f"pt vm0-s2 limit={PT_MAX_ROWS + 1}",
               "pt vm0-s2 addr=0x200003000"]
    r, = cli(tmp_path, [run_json(script)])
    out = outcomes(r)
    assert all(o["ok"] for o in out[:-3])
    big, over, one = out[-3:]
    assert len(big["result"]["rows"]) == PT_MAX_ROWS and big["result"]["truncated"] is True
    assert over["error"] == f"pt: limit: {PT_MAX_ROWS + 1} is above {PT_MAX_ROWS:#x}"
    assert one["result"]["out"] == 0x60003000


# -- 2. No internal error --------------------------------------------------------------------------
def test_tables_and_queues_pointing_at_nothing(tmp_path):
    """`set reg smmu0 STRTAB_BASE 0` then `ste gpu0`; `set ste nvme0 S1ContextPtr=0x1000` then
    `cd nvme0`; an event queue moved beyond RAM then `events`/`check` (each as written, and
    with the SMMU or queue disabled first where the register is guarded)."""
    beyond = "set reg smmu0 EVENTQ_BASE ADDR=0xfffff000000 LOG2SIZE=19"
    r = cli(tmp_path, [
        run_json(["set reg smmu0 STRTAB_BASE 0", "ste gpu0"]),
        run_json(["set reg smmu0 CR0 SMMUEN=0", "set reg smmu0 STRTAB_BASE 0",
                  "set reg smmu0 CR0 SMMUEN=1", "ste gpu0", "strtab smmu0", "check"]),
        run_json(["set ste nvme0 S1ContextPtr=0x1000", "cd nvme0"]),
        run_json([beyond, "events smmu0", "check"]),
        run_json(["set reg smmu0 CR0 EVENTQEN=0", beyond, "set reg smmu0 CR0 EVENTQEN=1",
                  "events smmu0", "check"])])
    ste, strtab, check = outcomes(r[1])[3:]
    # StreamID 0x200 of the 2-level table (SPLIT 8) reads L1STD 2 at 0x10: nothing there.
    assert ste["error"] == "smmu0: STE of StreamID 0x200: F_STE_FETCH at 0x10"
    assert strtab["error"] == "smmu0: L1STD at 0x0: no memory at PA 0x0"
    assert check["ok"]
    cd = outcomes(r[2])[1]
    assert cd["error"] == ("smmu0: CD of StreamID 0x100 SubstreamID 0 at 0x1000: F_CD_FETCH "
                           "at 0x1000")
    assert all(o["ok"] for o in outcomes(r[4])[3:])        # events and check answer


def test_numbers_outside_64_bits(tmp_path):
    """`map vm0-s2 0x0 0x0 0x10000000000000000`; `in = 0x1_0000_0000_0000_0000`; `out = -1`;
    `vabits = 2^63-1`."""
    r, = cli(tmp_path, [run_json(["map vm0-s2 0x0 0x0 0x10000000000000000"])])
    assert outcomes(r)[0]["error"] == "map: size: 0x10000000000000000 is above " \
                                      "0xffffffffffffffff"
    _check_scenario_errors(tmp_path, ["in = 2^64", "out = -1", "vabits = 2^63-1"])


def test_wrong_toml_types_huge_integers_deep_nesting(tmp_path):
    """`vm = []`, integers of thousands of digits, nesting 1,000 deep."""
    _check_scenario_errors(tmp_path, ["vm = []", "thousands of digits",
                                      "more digits than Python converts", "nesting 1000 deep",
                                      "caching = []", "config = []", "a huge string"])


def test_drop_invalidations_huge_then_cmdq(tmp_path):
    """`drop-invalidations smmu0 <huge>` stored the value before failing, and the next `cmdq`
    aborted the whole script (exit 70)."""
    script = ["drop-invalidations smmu0 99999999999999999999999", "cmdq smmu0", "check"]
    r = cli(tmp_path, [run_json(script), {"argv": ["run", "-"], "stdin": "\n".join(script)}])
    out = outcomes(r[0])
    assert not out[0]["ok"] and out[1]["ok"] and out[2]["ok"]
    assert r[1]["rc"] == 1 and error_line(r[1]).startswith("<stdin>:1: drop-invalidations:")


def test_nul_byte_in_file_names(tmp_path):
    """A NUL byte in a file name (`load`, `save`, `replay`, `import qemu`)."""
    r, = cli(tmp_path, [run_json(["load a\0b", "save a\0b", "replay a\0b",
                                  f"import qemu a\0b --regs {REGS}",
                                  f"import qemu {REGS} --regs a\0b"])])
    for o in outcomes(r):
        assert "file name contains a NUL byte" in o["error"] and "'a\\x00b'" in o["error"]
    assert sorted(os.listdir(tmp_path)) == ["calls.json", "results.jsonl"]


def test_ram_base_negative(tmp_path):
    """`--ram-base -0x1000` (argparse took the negative number for an option)."""
    want = "import qemu: ram_base: -0x1000 is not a 64-bit address"
    r = cli(tmp_path, [{"argv": ["import-qemu", str(REGS), "--regs", str(REGS), "--ram-base",
                                 "-0x1000", "--run", "-"]},
                       {"argv": [str(REGS), "--regs", str(REGS), "--ram-base", "-0x1000",
                                 "--repl"]}])
    assert [error_line(x) for x in r] == [want, want]


# -- 3. Clean saves: kill -9 during save -----------------------------------------------------------
KILL_MID_SAVE = r"""
import io, os, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[2]),) * 2)
from smmudbg import session
from smmudbg.cli import main
def stop(fd):            # the temporary is written and flushed: die before the rename
    os.kill(os.getpid(), 9)
session.os.fsync = stop
sys.stdin = io.TextIOWrapper(io.BytesIO(("smmus\nsave " + sys.argv[1] + "\n").encode()))
main(["run", "-"])
"""


def _kill_mid_save(tmp: Path, target: Path) -> None:
    p = subprocess.run([sys.executable, "-c", KILL_MID_SAVE, str(target), str(AS_LIMIT)],
                       cwd=tmp, env=env_for(tmp), timeout=HANG_GUARD, capture_output=True)
    assert p.returncode == -9, p.stderr[-1000:]
    assert [n for n in os.listdir(target.parent) if n.startswith(".smmudbg-")], \
        "the kill left no temporary: the test did not kill mid-save"


def test_kill_9_during_save_leaves_no_temporary_on_the_next_save_or_start(tmp_path):
    auto = tmp_path / "autosave"
    auto.mkdir()
    target = auto / "s.json"
    # Next save: `smmudbg run` saving beside the temporary removes it.
    _kill_mid_save(tmp_path, target)
    cli(tmp_path, [{"argv": ["run", "-"], "stdin": f"save {target}\n"}])
    assert os.listdir(auto) == ["s.json"]
    json.loads(target.read_text())
    # Next start: the REPL removes temporaries in its autosave directory when it starts.
    target.unlink()
    _kill_mid_save(tmp_path, target)
    p = subprocess.run([sys.executable, "-m", "smmudbg.cli", "--repl"], input="quit\n",
                       capture_output=True, text=True, cwd=tmp_path, env=env_for(tmp_path),
                       timeout=HANG_GUARD, preexec_fn=_limit_address_space)
    assert p.returncode == 0, p.stderr[-1000:]
    assert "Traceback" not in p.stdout + p.stderr
    assert not [n for n in os.listdir(auto) if n.startswith(".smmudbg-")], os.listdir(auto)


# -- 4. Replay cost grows linearly (a hang guard here; benchmarks time it) --------------------------
def test_replay_of_an_8000_command_session(tmp_path):
    s = Session()
    for line in ("smmus", "regs smmu0 CR0"):     # (neither changes the state)
        s.execute(line)
    f = tmp_path / "long.json"
    s.save(str(f))
    doc = json.loads(f.read_text())
    doc["log"] *= 4000
    doc["position"] = 8000
    f.write_text(json.dumps(doc))
    r, = cli(tmp_path, [{"argv": ["replay", str(f)]}])
    assert r["rc"] == 0 and "replayed 8000 commands identically" in r["stdout"], r["stdout"][-300:]


# -- found by this audit ---------------------------------------------------------------------------
def test_loads_and_replays_in_a_row_under_an_address_space_limit(tmp_path):
    """Each system reserves its modeled RAM (1 GiB here); a dropped one waited for the cycle
    collector, so the third `load` under the limit failed with 'internal error: MemoryError'."""
    f = tmp_path / "s.json"
    script = ["smmus", f"save {f}"] + [f"load {f}", f"replay {f}", "replay",
                                       f"import qemu {ROOT}/tests/fixtures/qemu/memory.elf.xz "
                                       f"--regs {REGS}", "goto 0"] * 3
    r, = cli(tmp_path, [run_json(script)])
    assert all(o["ok"] for o in outcomes(r)), [o.get("error") for o in outcomes(r)]


def test_ram_that_cannot_be_reserved_is_one_line(tmp_path):
    """Below what the scenario's RAM needs, the start is a one-line error naming the RAM."""
    p = subprocess.run([sys.executable, "-c", "import resource, sys; resource.setrlimit("
                        "resource.RLIMIT_AS, (1 << 30, 1 << 30)); from smmudbg.cli import main; "
                        "sys.exit(main(['run', '-']))"], input="smmus\n", capture_output=True,
                       text=True, cwd=tmp_path, env=env_for(tmp_path), timeout=HANG_GUARD)
    assert p.returncode == 1, p.stderr[-1000:]
    assert p.stderr == ("scenario 'default': ram[0]: cannot reserve 0x40000000 bytes of address "
                        "space at 0x40000000 for the modeled RAM (is `ulimit -v` set?)\n")
