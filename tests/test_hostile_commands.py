"""Issue 15 reproducers at the command, session and model level, each with the exact input from
the issue: an answer or a one-line error naming what and where, never a hang and never
"internal error" (how fast: benchmarks/bench_hostile.py)."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smmudbg.session import Session

from test_fuzz_inputs import bounded

ROOT = Path(__file__).resolve().parent.parent


def run(lines, within: float = 1.0, session: Session | None = None):
    """Execute each line in a fresh session (or the one given); every line must answer (a
    hang, no answer within 10 x `within` seconds, fails; speed is bench_hostile.py's) and any
    error must be one line, not an internal error. Returns the Outcomes."""
    s = session or Session()
    outs = []
    for line in lines:
        with bounded(max(10.0, within * 10)):       # a hang fails instead of blocking
            out = s.execute(line)
        if not out.ok:
            assert "\n" not in out.error and len(out.error) < 300, out.error
            assert "internal error" not in out.error, (line, out.error)
        else:
            out.result.to_json()
        outs.append(out)
    return outs


# -- numbers the registry's types refuse ----------------------------------------------------------
def test_map_size_beyond_64_bits():
    out, = run(["map vm0-s2 0x0 0x0 0x10000000000000000"])
    assert out.error == "map: size: 0x10000000000000000 is above 0xffffffffffffffff"


@pytest.mark.parametrize("line,message", [
    ("map vm0-s2 0x0 0x0 -1", "map: size: -1 is below 0x1"),
    ("unmap vm0-s2 0x0 0x10000000000000000",
     "unmap: size: 0x10000000000000000 is above 0xffffffffffffffff"),
    ("mem -0x1000", "mem: address: -0x1000 is not a 64-bit address"),
    ("goto 0x10000000000000000", "goto: n: 0x10000000000000000 is above 0xffffffffffffffff"),
    ("strtab smmu0 sid=-5", "strtab: sid: -5 is negative"),
])
def test_numbers_outside_64_bits_are_refused_by_the_type(line, message):
    out, = run([line])
    assert out.error == message


def test_thousands_of_digits_are_refused_quickly_and_quoted_short():
    for digits in ("9" * 5000, "0x" + "f" * 5000):
        out, = run([f"drop-invalidations smmu0 {digits}"])
        assert out.error.startswith("drop-invalidations: n: ") and "is not a number" in out.error
        assert f"({len(digits)} chars)" in out.error


def test_drop_invalidations_huge_is_refused_before_it_is_stored():
    """Issue: the value was stored, and the next `cmdq` aborted the script (exit 70)."""
    s = Session()
    out, = run(["drop-invalidations smmu0 99999999999999999999999"], session=s)
    assert out.error == ("drop-invalidations: n: 99999999999999999999999 is above "
                         "0xffffffffffffffff")
    assert s.system.smmu("smmu0").cmdq.drop_budget == 0
    cmdq, = run(["cmdq smmu0"], session=s)
    assert cmdq.ok and cmdq.result.to_json()["drop_budget"] == 0


def test_unmap_beyond_the_input_range_is_refused_not_wrapped():
    """vm0-s2 has a 40-bit IPA space (default scenario): the tables index IPA bits [39:12]
    only, so an unmap past 2^40 used to wrap around and walk them again and again."""
    out, = run(["unmap vm0-s2 0x1000 0x8000000000000000"])
    assert out.error == "unmap vm0-s2: 0x1000+0x8000000000000000 exceeds the 40-bit input range"


# -- stream table: bounded by its effective size and by what memory holds -------------------------
def test_strtab_log2size_40_is_bounded_by_sidsize():
    """Issue: `set reg smmu0 STRTAB_BASE_CFG FMT=0 LOG2SIZE=40` then `strtab smmu0` ran for
    minutes. IDR1.SIDSIZE is 16 in the default scenario: 2^16 STEs exist, no more."""
    s = Session()
    run(["set reg smmu0 CR0 SMMUEN=0"], session=s)      # (STRTAB_BASE_CFG is guarded by SMMUEN)
    _, out = run(["set reg smmu0 STRTAB_BASE_CFG FMT=0 LOG2SIZE=40", "strtab smmu0"], session=s)
    d = out.result.to_json()
    assert d["log2size"] == 16          # the effective size, not the raw field (40)
    assert all(e["sid"] < 1 << 16 for e in d["entries"])
    err, = run(["ste smmu0 0x10000"], session=s)
    assert err.error == ("smmu0: STE of StreamID 0x10000: StreamID is beyond "
                         "SMMU_STRTAB_BASE_CFG.LOG2SIZE / SMMU_IDR1.SIDSIZE")
    run(["strtab smmu0 all", "strtab smmu0 sid=0xfff0 count=0x100000", "check"], session=s)


def _sidsize32(text: str) -> str:
    return text.replace("SIDSIZE = 16", "SIDSIZE = 32")


def test_strtab_of_2_to_the_32_linear_stes_skips_what_has_no_memory():
    """SIDSIZE 32, linear LOG2SIZE 32: 256 GiB of STEs architected, 1 GiB of RAM behind the
    base. The listing reads what memory holds, and stops after SCAN_SLOTS slots with more=True
    (sid= continues)."""
    from smmudbg.model import scenario as sc
    from smmudbg.model.views import SmmuViews
    s = Session(_sidsize32(sc.builtin("default")))
    run(["set reg smmu0 CR0 SMMUEN=0",
         "set reg smmu0 STRTAB_BASE_CFG FMT=0 LOG2SIZE=32 SPLIT=0"], session=s)
    out, more = run(["strtab smmu0 all", "strtab smmu0 sid=0x1000000"], session=s)
    assert out.result.to_json()["log2size"] == 32 and len(out.result.to_json()["entries"]) == 64
    d = more.result.to_json()
    # A linear table is aligned to its size (IHI 0070 6.3.24): 2^32 STEs of 64 bytes make the
    # effective base 0, as the walker reads it. StreamIDs below 0x1000000 have nothing behind
    # them (RAM starts at 0x40000000) and are skipped, not read; from 0x1000000 on the STEs are
    # read from RAM at 64 * StreamID.
    assert d["entries"] and all(e["addr"] == 64 * e["sid"] for e in d["entries"])
    assert SmmuViews.SCAN_SLOTS < 1 << 32


def test_check_over_a_2_to_the_32_linear_table_is_bounded():
    from smmudbg.model import scenario as sc
    s = Session(_sidsize32(sc.builtin("default")))
    # An IOTLB entry makes `check` look for every context that can hit it (coherence.py):
    # over 1 GiB of RAM read as 2^24 STEs, not 2^32 read one by one.
    run(["walk gpu0 0x40000000", "set reg smmu0 CR0 SMMUEN=0",
         "set reg smmu0 STRTAB_BASE_CFG FMT=0 LOG2SIZE=32 SPLIT=0",
         "set reg smmu0 CR0 SMMUEN=1", "set desc 0x40004008 stage=2 Valid=0", "check",
         "tlb smmu0"], within=3.0, session=s)
    run(["set reg smmu0 CR0 SMMUEN=0",
         "set reg smmu0 STRTAB_BASE_CFG FMT=1 LOG2SIZE=32 SPLIT=6",
         "set reg smmu0 CR0 SMMUEN=1", "check", "strtab smmu0"], within=3.0, session=s)


# -- files named in commands and on the command line ----------------------------------------------
REGS = ROOT / "tests" / "fixtures" / "qemu" / "regs.json"


@pytest.mark.parametrize("line", ["load a\0b", "save a\0b", "replay a\0b",
                                  f"import qemu a\0b --regs {REGS}",
                                  f"import qemu {REGS} --regs a\0b"])
def test_nul_byte_in_a_file_name(line, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out, = run([line])
    assert "file name contains a NUL byte" in out.error and "'a\\x00b'" in out.error
    assert os.listdir(tmp_path) == []


def cli(*argv, stdin=None, timeout=30):
    return subprocess.run([sys.executable, "-m", "smmudbg.cli", *argv], input=stdin,
                          capture_output=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"})


def test_ram_base_negative_on_the_command_line(tmp_path):
    """Issue: argparse took `-0x1000` for an option ("expected one argument")."""
    p = cli("import-qemu", str(REGS), "--regs", str(REGS), "--ram-base", "-0x1000", "--run",
            "-", stdin=b"")
    err = p.stderr.decode()
    assert p.returncode == 1, err
    assert err.strip() == "import qemu: ram_base: -0x1000 is not a 64-bit address"


def test_run_dev_zero_and_scenario_urandom():
    p = cli("run", "/dev/zero")
    assert p.returncode == 1
    assert p.stderr.decode().strip() == \
        "/dev/zero: not a script (a character device, not a regular file)"
    p = cli("run", "-", "--scenario", "/dev/urandom", stdin=b"smmus\n")
    assert p.returncode == 1
    assert p.stderr.decode().strip() == \
        "/dev/urandom: not a scenario file (a character device, not a regular file)"


def test_script_from_stdin_is_size_bounded():
    from smmudbg.script import ScriptError, read_lines
    from smmudbg.textfile import MAX_TEXT_BYTES

    class Endless(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, b):
            b[:] = b"\0" * len(b)
            return len(b)

    stream = io.TextIOWrapper(io.BufferedReader(Endless()))
    with bounded(20):
        with pytest.raises(ScriptError) as e:
            read_lines("-", stdin=stream)
    assert str(e.value) == f"<stdin>: not a script (larger than {MAX_TEXT_BYTES >> 20} MiB)"
    assert read_lines("-", stdin=io.TextIOWrapper(io.BytesIO(b"smmus\nvms\n"))) == \
        ["smmus", "vms"]


def test_damaged_session_names_the_path_once(tmp_path):
    from smmudbg.session import SessionError, read_session
    s = Session()
    f = tmp_path / "s.json"
    s.save(str(f))
    doc = json.loads(f.read_text())
    doc["scenario"] = "vm = 5"
    f.write_text(json.dumps(doc))
    with pytest.raises(SessionError) as e:
        read_session(str(f))
    msg = str(e.value)
    assert msg == f"{f}: damaged session: scenario: vm: expected an array of tables ([[vm]])"


@pytest.mark.parametrize("key,value,message", [
    ("position", 10 ** 130, "damaged session: position a 432-bit integer is outside the log "
                            "(0..0)"),
    ("version", 10 ** 130, "session version a 432-bit integer is not supported"),
    ("format", "x" * 5000, "not a session file (format is '" + "x" * 49 + "...' (5000 "
                           "characters), expected 'smmudbg-session')"),
    ("y" * 5000, 1, "damaged session: unknown key '" + "y" * 49 + "...' (5000 characters)"),
], ids=["position", "version", "format", "key"])
def test_damaged_session_quotes_values_short(tmp_path, key, value, message):
    """Found by the session fuzzer: a session's out-of-range position was quoted in full (a
    972-character line for 10**130)."""
    from smmudbg.session import SessionError
    f = tmp_path / "s.json"
    Session().save(str(f))
    doc = json.loads(f.read_text())
    doc[key] = value
    f.write_text(json.dumps(doc))
    with pytest.raises(SessionError) as e:
        Session.load(str(f))
    assert str(e.value).startswith(f"{f}: ") and message in str(e.value), str(e.value)[:300]
    assert len(str(e.value)) < 300


# -- clean saves ----------------------------------------------------------------------------------
def test_save_removes_a_stale_temporary_of_a_dead_process(tmp_path):
    from smmudbg.session import STALE_AFTER
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".smmudbg-{dead.pid}-abc123.tmp"
    stale.write_text("{half a sess")
    old_style = tmp_path / ".smmudbg-x1y2z3.tmp"
    old_style.write_text("{")
    os.utime(old_style, (time.time() - STALE_AFTER - 5,) * 2)
    young = tmp_path / ".smmudbg-q9w8e7.tmp"       # may be another process's save in flight
    young.write_text("{")
    alive = tmp_path / f".smmudbg-{os.getppid()}-zzz.tmp"
    alive.write_text("{")
    mine = tmp_path / "notes.tmp"
    mine.write_text("keep")
    Session().save(str(tmp_path / "s.json"))
    assert sorted(os.listdir(tmp_path)) == sorted(["s.json", young.name, alive.name, "notes.tmp"])


KILLER = r"""
import os, sys
sys.path.insert(0, sys.argv[2])
from smmudbg import session
real = os.fsync
def stop(fd):                 # the temporary is written: die before the rename
    os.kill(os.getpid(), 9)
session.os.fsync = stop
s = session.Session()
s.save(sys.argv[1])
"""


def test_kill_9_mid_save_leaves_nothing_after_the_next_save(tmp_path):
    target = tmp_path / "s.json"
    p = subprocess.run([sys.executable, "-c", KILLER, str(target), str(ROOT)], timeout=60)
    assert p.returncode == -9
    left = [n for n in os.listdir(tmp_path) if n.startswith(".smmudbg-")]
    assert len(left) == 1 and not target.exists()         # the kill left its temporary
    Session().save(str(target))
    assert os.listdir(tmp_path) == ["s.json"]
    json.loads(target.read_text())


def test_start_removes_stale_temporaries_in_the_autosave_directory(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    auto = tmp_path / "state" / "last-session.json"
    auto.parent.mkdir()
    stale = auto.parent / f".smmudbg-{dead.pid}-abc.tmp"
    stale.write_text("{")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SMMUDBG_AUTOSAVE": str(auto)}
    p = subprocess.run([sys.executable, "-c", "import sys; from smmudbg import cli, repl; "
                        "repl.run = lambda s: 0; sys.exit(cli.main([]))"], env=env,
                       capture_output=True, timeout=60, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert not stale.exists()


# -- queues as large as IDR1 allows, and queues with nothing behind them ------------------------
def test_events_and_check_over_a_full_2_to_the_19_event_queue():
    s = Session()
    _, _, _, _, ev, chk = run([
        "set reg smmu0 CR0 EVENTQEN=0",
        "set reg smmu0 EVENTQ_BASE ADDR=0x40000000 LOG2SIZE=19",
        "set reg smmu0 EVENTQ_PROD 0x7ffff", "set reg smmu0 CR0 EVENTQEN=1",
        "events smmu0", "check"], session=s)
    assert len(ev.result.to_json()["entries"]) == 1024                  # the oldest shown
    assert chk.result.to_json()["smmus"][0]["unread_events"] == 0x7ffff     # all counted


def test_event_queue_moved_beyond_ram_then_events_and_check():
    s = Session()
    outs = run(["set reg smmu0 CR0 EVENTQEN=0",
                "set reg smmu0 EVENTQ_BASE ADDR=0xfffff000000 LOG2SIZE=19",
                "set reg smmu0 CR0 EVENTQEN=1", "walk gpu0 0x123456789000",
                "events smmu0", "check", "consume-events smmu0"], session=s)
    assert "GERROR.EVENTQ_ABT_ERR active" in outs[5].result.to_json()["smmus"][0]["errors"]


def test_cmdq_over_a_2_to_the_19_command_queue_and_beyond_ram():
    s = Session()
    outs = run(["set reg smmu0 CR0 CMDQEN=0",
                "set reg smmu0 CMDQ_BASE ADDR=0x40000000 LOG2SIZE=19",
                "set reg smmu0 CMDQ_PROD 0x7ffff", "cmdq smmu0"], session=s)
    from smmudbg.model.smmu import MAX_PENDING_SHOWN
    assert len(outs[-1].result.to_json()["entries"]) == MAX_PENDING_SHOWN
    outs = run(["set reg smmu0 CMDQ_BASE ADDR=0xfffff000000 LOG2SIZE=19",
                "set reg smmu0 CMDQ_PROD 0x7", "cmdq smmu0", "set reg smmu0 CR0 CMDQEN=1",
                "cmd smmu0 CMD_SYNC", "cmdq smmu0 history=100000", "check"], session=s)
    assert "GERROR.CMDQ_ERR active" in outs[-1].result.to_json()["smmus"][0]["errors"]


def test_strtab_base_0_then_ste():
    """Issue: `set reg smmu0 STRTAB_BASE 0` then `ste gpu0`: internal error: MemFault. (The
    register is guarded by SMMUEN, so SMMUEN=0 first, as software must.)"""
    outs = run(["set reg smmu0 CR0 SMMUEN=0", "set reg smmu0 STRTAB_BASE 0", "ste gpu0",
                "strtab smmu0", "walk gpu0 0x1000", "check"])
    assert outs[2].error == "smmu0: STE of StreamID 0x200: F_STE_FETCH at 0x10"
    assert outs[3].error == "smmu0: L1STD at 0x0: no memory at PA 0x0"


def test_s1contextptr_0x1000_then_cd():
    outs = run(["set ste nvme0 S1ContextPtr=0x1000", "cd nvme0", "cdtable nvme0 all",
                "walk nvme0 0x1000", "check"])
    assert outs[1].error == ("smmu0: CD of StreamID 0x100 SubstreamID 0 at 0x1000: "
                             "F_CD_FETCH at 0x1000")


def test_cdtable_over_the_largest_s1cdmax():
    outs = run(["set ste nvme0 S1CDMax=20 S1Fmt=0", "cdtable nvme0", "cdtable nvme0 all",
                "cd nvme0 0xfffff", "check"])
    assert outs[2].ok and outs[2].result.to_json()["truncated"] is True


# -- pt of tables full of leaves that do not merge -------------------------------------------------
def _unmergeable_tables(s: Session) -> None:
    """8 level-1 entries of vm0-s2 -> one level-2 table of 512 table descriptors -> one
    level-3 table of 512 pages alternating S2AP (so no two leaves merge): 2,101,256 rows."""
    import struct
    root = s.run("pt vm0-s2 limit=1").to_json()["root"]
    t2, t3 = 0x40f00000, 0x40f01000         # pool pages the default scenario leaves unused
    mem = s.system.mem
    mem.write(t3, b"".join(struct.pack("<Q", (0x60000000 + (i << 12)) | 0x403
                                       | (0x40 if i & 1 else 0xC0)) for i in range(512)))
    mem.write(t2, struct.pack("<Q", t3 | 3) * 512)
    mem.write(root + 8 * 8, struct.pack("<Q", t2 | 3) * 8)


def test_pt_of_a_huge_mapping_with_the_largest_limit():
    """Issue: 33 s, 1.2 GB and a 225 MB JSON line with the largest limit. The largest limit
    the type takes is PT_MAX_ROWS; a larger one says so."""
    from smmudbg.commands.inspect import PT_MAX_ROWS
    from smmudbg.render import render_text
    s = Session()
    _unmergeable_tables(s)
    big, = run([f"pt vm0-s2 limit={PT_MAX_ROWS + 1}"], session=s)
    assert big.error == f"pt: limit: {PT_MAX_ROWS + 1} is above {PT_MAX_ROWS:#x}"
    out, = run([f"pt vm0-s2 limit={PT_MAX_ROWS}"], session=s)
    d = out.result.to_json()
    assert len(d["rows"]) == PT_MAX_ROWS and d["truncated"] is True
    assert len(json.dumps(d)) < 8 << 20
    assert "addr=ADDRESS for one address" in render_text(out.result)
    one, = run(["pt vm0-s2 addr=0x200003000"], session=s)     # (level-1 index 8)
    assert one.result.to_json()["out"] == 0x60003000


def test_expect_of_a_long_path_is_a_short_error():
    """Found by the long fuzz run: `expect` quoted a 200-character path twice (716 chars)."""
    s = Session()
    run(["smmus"], session=s)
    out = s.execute("expect " + "a" * 200)
    assert out.error == ("expect: " + "a" * 40 + "... (200 chars): the result has no '"
                         + "a" * 40 + "'... (200 chars) (it has: kind, smmus)")


@pytest.mark.parametrize("lines,message", [
    (["diff " + "9" * 5000], "diff: '" + "9" * 40 + "'... (5000 chars) is neither @N, now, "
                             "live, a snapshot (none taken) nor a file"),
    (["load " + "/x" * 1000], "/x" * 35 + "..." + "/x" * 35 + " (2000 characters): cannot "
                              "open: No such file or directory"),
    (["diff @" + "x" * 300], "diff: '@" + "x" * 39 + "'... (301 chars) is not a log position "
                             "(@N)"),
    (["attach qemu \x00 pid=3"], "attach: '\\x00': file name contains a NUL byte"),
    (["snapshot " + "a" * 300, "expect fault.type == x"],
     "expect: the previous command failed: snapshot: not attached (attach qemu QMP_SOCKET "
     "ram=FILE first); no snapshot named '" + "a" * 40 + "'... (300 chars) either"),
    (["iommufd " + "a" * 300, "expect ok"],
     "expect ok: the command failed: iommufd: '" + "a" * 40 + "'... (300 chars) is not one of "
     "explain, devices, ioas, hwpt, viommu, vdevice, vtd"),
], ids=["diff-long-name", "load-long-name", "diff-position", "attach-nul", "expect-after-long",
        "expect-ok-after-long-token"])
def test_found_by_the_long_command_fuzz_run(lines, message, monkeypatch, tmp_path):
    """Errors of 400 to 5,000 characters (a long file name or token quoted whole, an error
    quoted inside another) and a NUL byte that reached os.stat() as 'internal error'."""
    monkeypatch.chdir(tmp_path)
    *_, out = run(lines)
    assert out.error == message
