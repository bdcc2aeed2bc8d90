"""The command-line fuzzer (issue 15): command lines generated from the registry's own argument
types, with hostile numbers (negative, >= 2^64, thousands of digits), hostile paths (NUL, FIFO,
/dev/zero, a directory, a 3 GiB sparse file), unicode, and hostile memory states (tables that
point at themselves, at nothing, at an SMMU's MMIO register file).

Each case runs a hostile setup and a few generated lines in a fresh Session and asserts, per
line: an answer within TIME_LIMIT, a Result that serializes or a one-line error, never
"internal error" or a traceback, and no change to any file the line could name. The short
profile runs by default; `python -m pytest -m fuzz tests/test_fuzz_commands.py` or
`python scripts/fuzz.py --kinds commands` runs the long one. (tests/test_commands_fuzz.py, the
older word-salad fuzzer of the parser, stays: it covers completion too.)
"""
from __future__ import annotations

import heapq
import os
import random
import resource
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smmudbg.commands import REGISTRY
from smmudbg.commands.registry import (AddressT, BoolT, ChoiceT, IntT, NameT, StreamT,
                                       TextT)
from smmudbg.model import checkpoint as ckpt
from smmudbg.session import Session

from test_fuzz_inputs import (MAX_MESSAGE, TIME_LIMIT, Hang, bounded, collect, digest,
                              hostile_paths, unfreeze)

MEMORY_LIMIT = 1 << 30           # bytes one line may add to the process's peak RSS
SMMU_MMIO = 0x0905_0000          # smmu0's register file in the default scenario (an MMIO region)
# Commands that would leave the scratch directory or wait for a person.
SKIP = {"help"}
FILE_COMMANDS = {"load", "save", "replay", "import qemu"}


def hostile_number(rng: random.Random) -> str:
    return rng.choice([
        lambda: "0", lambda: "1", lambda: "-1", lambda: "-0x1000", lambda: "0x1000",
        lambda: "0xffffffffffffffff", lambda: "0x10000000000000000", lambda: "18446744073709551616",
        lambda: "0x7fffffffffffffff", lambda: "0x8000000000000000", lambda: "4K", lambda: "2M",
        lambda: "1G", lambda: "1T", lambda: "0b101", lambda: "0o17", lambda: "1_000",
        lambda: "9" * rng.randrange(1, 6000), lambda: "0x" + "f" * rng.randrange(1, 3000),
        lambda: hex(rng.randrange(-2 ** 70, 2 ** 70)), lambda: str(rng.randrange(2 ** 66)),
        lambda: hex(rng.randrange(2 ** 48) & ~0xFFF), lambda: hex(0x4000_0000 + 0x1000 *
                                                                   rng.randrange(0x40000)),
        lambda: hex(SMMU_MMIO + 8 * rng.randrange(0x40)), lambda: "", lambda: "x",
        lambda: "0x", lambda: "-", lambda: "1e9", lambda: "٣", lambda: "0x1_0000_0000_0000_0000",
        lambda: str(rng.randrange(0, 64)), lambda: hex(1 << rng.randrange(70)),
    ])()


def hostile_text(rng: random.Random) -> str:
    return rng.choice(["", "x", "é", "日本", "\u202e", "a" * 300, "'", '"', "#", "\\", "=",
                       "nested", "s2_trans", "CMD_SYNC", "CMD_TLBI_NSNH_ALL", "CR0",
                       "STRTAB_BASE_CFG", "EVENTQ_BASE", "smmu0", "gpu0", "vm0", "\x00"])


def quote(text: str) -> str:
    """A token as the registry's splitter reads it back (shell-style quotes when needed)."""
    if text and not any(c.isspace() or c in "'\"#\\" for c in text):
        return text
    return "'" + text.replace("'", "'\"'\"'") + "'"


def hostile_path(rng: random.Random, tmp: Path, write: bool = False) -> str:
    """A path to read from, or (write) to save to: never one of the input files."""
    paths = hostile_paths(tmp)
    extra = {"unicode": str(tmp / "séssion-日本.json"), "relative": "out.json",
             "dotdot": "../out.json"}
    if write:
        # Saves go to the scratch directory only: a save that (by a bug) replaced /dev/null
        # or a file outside it would damage the machine the fuzzer runs on.
        paths = {k: v for k, v in paths.items() if k != "empty" and
                 (not v.startswith("/") or v.startswith(str(tmp)))}
        extra.pop("dotdot")
    else:
        extra.update({"session": str(tmp / "in.json"), "script": str(tmp / "in.txt")})
    return rng.choice(list(paths.values()) + list(extra.values()))


def arg_token(rng: random.Random, session: Session, a, tmp: Path, cmd: str = "") -> list[str]:
    t = a.type
    sysm = session.system
    if rng.random() < 0.08:
        return [quote(hostile_text(rng))]
    if isinstance(t, StreamT):
        if rng.random() < 0.6:
            return [rng.choice(list(sysm.devices))]
        return [rng.choice(list(sysm.smmus)), hostile_number(rng)]
    if isinstance(t, (IntT, AddressT)):
        return [hostile_number(rng)]
    if isinstance(t, NameT):
        names = t.names(session)
        return [rng.choice(names) if names and rng.random() < 0.9 else hostile_text(rng)]
    if isinstance(t, ChoiceT):
        return [rng.choice(t.choices) if rng.random() < 0.9 else hostile_text(rng)]
    if isinstance(t, BoolT):
        return [rng.choice(["true", "false", "1", "0", "maybe"])]
    if isinstance(t, TextT):
        if a.name in ("file",):
            return [quote(hostile_path(rng, tmp, write=a.name == "file" and "save" in cmd))]
        cands = t.candidates(session, {}) if rng.random() < 0.7 else []
        return [quote(rng.choice(cands) if cands else hostile_text(rng))]
    return [quote(hostile_text(rng))]


def field_assignments(rng: random.Random, session: Session, cmd, tokens) -> list[str]:
    out = []
    fmt_ = None
    if cmd.assignments.fields is not None:
        try:
            fmt_ = cmd.assignments.fields(session, tokens)
        except Exception:        # noqa: BLE001 - completion-only helper; a bad prefix is fine
            fmt_ = None
    names = [f.name for f in fmt_.fields] if fmt_ is not None else \
        ["ADDR", "LOG2SIZE", "SMMUEN", "CMDQEN", "EVENTQEN", "FMT", "SPLIT", "StreamID",
         "SubstreamID", "Addr", "VMID", "ASID", "Leaf"]
    for _ in range(rng.randrange(1, 4)):
        name = rng.choice(names) + (".raw" if rng.random() < 0.1 else "")
        out.append(f"{name}={quote(hostile_number(rng))}")
    return out


def command_line(rng: random.Random, session: Session, tmp: Path) -> str:
    name = rng.choice([n for n in REGISTRY.names() if n not in SKIP])
    cmd = REGISTRY.commands[name]
    if cmd.raw:
        if name == "import qemu":
            return (f"import qemu {quote(hostile_path(rng, tmp))} --regs "
                    f"{quote(hostile_path(rng, tmp))}"
                    + (f" --ram-base {hostile_number(rng)}" if rng.random() < 0.5 else ""))
        return f"{name} " + rng.choice(["ok", "error", "len(steps) == 3", "fault.type == x",
                                        "(" * 200, hostile_text(rng), hostile_number(rng)])
    toks = [name]
    for a in cmd.args:
        if a.keyword or a.flag:
            if rng.random() < 0.3:
                if a.flag:
                    toks.append(a.name)
                else:
                    toks.append(f"{a.name}={arg_token(rng, session, a, tmp, name)[-1]}")
            continue
        if a.optional and rng.random() < 0.3:
            continue
        toks += arg_token(rng, session, a, tmp, name)
    if name == "set reg" and rng.random() < 0.8:
        toks[3:] = [rng.choice(["CR0", "STRTAB_BASE", "STRTAB_BASE_CFG", "CMDQ_BASE",
                                "CMDQ_PROD", "CMDQ_CONS", "EVENTQ_BASE", "EVENTQ_PROD",
                                "EVENTQ_CONS", "GERRORN", "GBPA", "IRQ_CTRL",
                                "EVENTQ_IRQ_CFG0"])]
        if rng.random() < 0.3:
            toks.append(hostile_number(rng))
    if cmd.assignments is not None and (cmd.assignments.required or rng.random() < 0.5) \
            and not (name == "set reg" and len(toks) > 4):
        toks += field_assignments(rng, session, cmd, toks)
    if rng.random() < 0.05:
        toks.insert(rng.randrange(1, len(toks) + 1), quote(hostile_text(rng)))
    return " ".join(toks)


# Hostile memory: what a broken guest or a hand-typed register file leaves behind.
SETUPS = [
    [],
    ["set reg smmu0 CR0 SMMUEN=0", "set reg smmu0 STRTAB_BASE 0", "set reg smmu0 CR0 SMMUEN=1"],
    ["set reg smmu0 CR0 SMMUEN=0", f"set reg smmu0 STRTAB_BASE {SMMU_MMIO:#x}",
     "set reg smmu0 CR0 SMMUEN=1"],
    ["set reg smmu0 CR0 SMMUEN=0", "set reg smmu0 STRTAB_BASE_CFG FMT=0 LOG2SIZE=40",
     "set reg smmu0 CR0 SMMUEN=1"],
    ["set reg smmu0 CR0 SMMUEN=0", "set reg smmu0 STRTAB_BASE_CFG FMT=1 LOG2SIZE=16 SPLIT=6",
     "set reg smmu0 CR0 SMMUEN=1"],
    ["set ste nvme0 S1ContextPtr=0x1000"],
    [f"set ste nvme0 S1ContextPtr={SMMU_MMIO:#x}"],
    ["set ste nic0 S1CDMax=20 S1Fmt=2"],
    ["set ste gpu0 S2TTB=0x40004000 S2SL0=2"],                  # stage 2 table at its own root
    [f"set ste gpu0 S2TTB={SMMU_MMIO:#x}"],
    ["set ste gpu0 S2TTB=0xfffffffff000"],
    ["set desc 0x40004008 stage=2 kind=table NLTA=0x40004000"],  # a table pointing at itself
    [f"set desc 0x40004008 stage=2 kind=table NLTA={SMMU_MMIO:#x}"],
    ["set desc 0x40004008 stage=2 kind=table NLTA=0xfffffffff000"],
    ["set reg smmu0 CR0 EVENTQEN=0", "set reg smmu0 EVENTQ_BASE ADDR=0xfffff000000 LOG2SIZE=19",
     "set reg smmu0 CR0 EVENTQEN=1"],
    ["set reg smmu0 CR0 EVENTQEN=0", f"set reg smmu0 EVENTQ_BASE ADDR={SMMU_MMIO:#x} LOG2SIZE=7",
     "set reg smmu0 CR0 EVENTQEN=1"],
    ["set reg smmu0 CR0 CMDQEN=0", "set reg smmu0 CMDQ_BASE ADDR=0xfffff000000 LOG2SIZE=19",
     "set reg smmu0 CMDQ_PROD 0x7ffff", "set reg smmu0 CR0 CMDQEN=1"],
    ["set reg smmu0 CR0 CMDQEN=0", f"set reg smmu0 CMDQ_BASE ADDR={SMMU_MMIO:#x} LOG2SIZE=8",
     "set reg smmu0 CR0 CMDQEN=1"],
    [f"set reg smmu0 EVENTQ_IRQ_CFG0 ADDR={SMMU_MMIO >> 2:#x}", "set reg smmu0 IRQ_CTRL 7"],
    ["drop-invalidations smmu0 0xffffffffffffffff"],
]


def _fresh_inputs(tmp: Path) -> list[Path]:
    """Regular files a line may name as input: they must never change."""
    sess, script = tmp / "in.json", tmp / "in.txt"
    if not sess.exists():
        s = Session()
        s.execute("walk gpu0 0x40000000")
        s.save(str(sess))
    if not script.exists():
        script.write_text("smmus\nwalk gpu0 0x1000\n")
    hostile_paths(tmp)                  # (makes the empty file, the FIFO, ...)
    return [sess, script, tmp / "empty"]


def check_line(session: Session, line: str, inputs, before=None) -> str:
    """Run one line under the bounds; 'ok' or 'error'. before: the inputs' digests (taken
    now when not given)."""
    if before is None:
        before = [digest(p) for p in inputs]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.monotonic()
    try:
        with bounded():
            out = session.execute(line)
            if out.ok:
                out.result.to_json()
    except Hang:
        raise AssertionError(f"hang: {line[:200]!r} gave no answer within {TIME_LIMIT} s")
    took = time.monotonic() - t0        # (not asserted: bounded() catches a hang)
    if took > SLOWEST[0][0]:                # the slowest lines, for scripts/fuzz.py to show
        heapq.heapreplace(SLOWEST, (took, line[:120]))
    grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) << 10
    assert grew <= MEMORY_LIMIT, f"{line[:200]!r} raised the peak RSS by {grew >> 20} MiB"
    assert [digest(p) for p in inputs] == before, f"{line[:200]!r} changed an input file"
    if out.ok:
        return "ok"
    msg = out.error
    assert msg and "\n" not in msg, f"{line[:200]!r}: not one line: {msg[:300]!r}"
    assert len(msg) <= MAX_MESSAGE, f"{line[:200]!r}: {len(msg)}-character error"
    assert "internal error" not in msg and "Traceback" not in msg, f"{line[:200]!r}: {msg}"
    return "error"


LINES: Counter = Counter()          # generated lines run, by outcome (scripts/fuzz.py prints it)
SLOWEST: list[tuple[float, str]] = [(0.0, "")] * 8     # a min-heap of (seconds, line)


class Pool:
    """One Session reused by every case. Each hostile setup runs once (its lines checked like
    any other); the state after it is kept as a checkpoint with the session's log, and a case
    starts by putting that back (a restore costs the pages written since, not a scenario
    build, the setup's commands and a full garbage collection)."""

    def __init__(self):
        self.session = s = Session()
        self.system = s.system
        self.base = s._checkpoints[0]
        self.state = dict(vars(s))
        self.after: list[tuple[ckpt.Checkpoint, dict]] = []
        for setup in SETUPS:
            self._reset(self.base, self.state)
            for line in setup:
                check_line(s, line, [])
            assert s.system is self.system, f"setup {setup} replaced the system"
            cp = ckpt.capture(s.system, self.base)
            assert cp is not None, "the default scenario's walkers cannot be checkpointed"
            self.after.append((cp, dict(vars(s))))

    def _reset(self, cp: ckpt.Checkpoint, state: dict) -> Session:
        s = self.session
        attach = vars(s).get("attach_state")
        if attach is not None and attach is not state.get("attach_state"):
            attach.close()
        vars(s).clear()
        vars(s).update(state)
        s.system = self.system
        s.log = list(state["log"])
        s._checkpoints = {0: self.base}
        s._latest = self.base
        cp.restore()
        return s

    def fresh(self, setup: int) -> Session:
        """The session as it is after SETUPS[setup]."""
        return self._reset(*self.after[setup])

    def close(self) -> None:
        unfreeze()


_POOL: Pool | None = None


def pool() -> Pool:
    global _POOL
    if _POOL is None:
        _POOL = Pool()
    return _POOL


def command_case(rng: random.Random, tmp: Path) -> str:
    """One case: a hostile setup, then 1-4 generated lines; the last line's outcome."""
    inputs = _fresh_inputs(tmp)
    old = os.getcwd()
    os.chdir(tmp)                       # `save out.json` and friends write in the scratch dir
    try:
        s = pool().fresh(rng.randrange(len(SETUPS)))
        before = [digest(p) for p in inputs]
        outcome = "ok"
        for _ in range(rng.randrange(1, 5)):
            outcome = check_line(s, command_line(rng, s, tmp), inputs, before)
            LINES[outcome] += 1
        return outcome
    finally:
        os.chdir(old)
        s = None
        collect()           # (a system a case built maps 1 GiB of RAM: free it now)


SHORT = settings(max_examples=int(os.environ.get("SMMUDBG_FUZZ_SHORT", 200)), deadline=None,
                 database=None, suppress_health_check=list(HealthCheck))
LONG = settings(max_examples=int(os.environ.get("SMMUDBG_FUZZ_EXAMPLES", 100_000)),
                deadline=None, database=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    global _POOL
    yield tmp_path_factory.mktemp("fuzz-commands")
    if _POOL is not None:       # the rest of the suite collects its garbage as usual
        _POOL.close()
        _POOL = None


def test_every_setup_is_answered(scratch):
    """Each hostile memory state is reached without an internal error (so the cases start from
    it), and the commands that read the structures answer on it."""
    for setup in SETUPS:
        s = Session()
        for line in setup + ["ste gpu0", "cd nvme0", "cdtable nic0 all", "strtab smmu0",
                             "walk gpu0 0x40000000", "walk nic0 0x1000", "pt gpu0",
                             "events smmu0", "cmdq smmu0", "check", "mem 0x9050000 0x100"]:
            check_line(s, line, [])


@SHORT
@given(rng=st.randoms(use_true_random=False))
def test_fuzz_commands_short(rng, scratch):
    command_case(rng, scratch)


@pytest.mark.fuzz
@LONG
@given(rng=st.randoms(use_true_random=False))
def test_fuzz_commands_long(rng, scratch):
    command_case(rng, scratch)
