"""Fuzzing the input layers: scenarios, register files, ELF/raw memory dumps, session files
(loaded and replayed as `load` and `smmudbg replay` do) and hostile paths.

Whatever the input, the reader answers with a result or a one-line error of its own type
(ScenarioError, DumpError, QemuImportError, SessionError), within a time bound, without a traceback or an
"internal error" in the message, and without changing the input file.

The mutators take a random.Random, so the same code runs under hypothesis (which draws the
Random and shrinks its choices) and in scripts/fuzz.py (the long run, >= 100,000 inputs).
A short profile runs by default; `python -m pytest -m fuzz` runs the long profile.
"""
from __future__ import annotations

import gc
import hashlib
import json
import lzma
import math
import os
import random
import signal
import struct
import tomllib
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smmudbg.importers.qemu import QemuImportError, import_qemu, load_regs
from smmudbg.importers.qemu_dump import DumpError, load_memory
from smmudbg.model import scenario as sc
from smmudbg.model.system import System
from smmudbg.errors import ScenarioError

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "qemu"
SCENARIOS = {p.name: p.read_text() for p in sorted((ROOT / "examples").glob("*.toml"))}
SCENARIOS["default.toml"] = sc.builtin("default")
# Scenarios small enough to build on every case; large.toml (65,536 streams, seconds to build)
# is parsed and checked only.
BUILD = {"default.toml", "pasid-2lvl.toml"}
TIME_LIMIT = 5.0                 # seconds per input, on a busy 2-core machine
MAX_MESSAGE = 400                # characters of a one-line error


class Hang(Exception):
    """An input took longer than TIME_LIMIT."""


@contextmanager
def bounded(seconds: float = TIME_LIMIT):
    """Raise Hang in the main thread if the body takes longer than `seconds` (a blocking open()
    or read() is interrupted too)."""
    def alarm(signum, frame):
        raise Hang(f"no answer within {seconds} s")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def check_error(err: BaseException, kinds) -> str:
    """The message of an expected, user-facing error; AssertionError for anything else."""
    msg = str(err)
    assert isinstance(err, kinds), f"{type(err).__name__} escaped: {msg[:300]}"
    assert msg and "\n" not in msg, f"not one line: {msg[:300]!r}"
    assert len(msg) <= MAX_MESSAGE, f"{len(msg)}-character error: {msg[:200]!r}..."
    assert "Traceback" not in msg and "internal error" not in msg, msg[:300]
    return msg


def digest(path) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


_FROZEN = []


def collect() -> None:
    """Free the cyclic garbage a case left (a System and its platform refer to each other, so
    its 1 GiB RAM mapping waits for a collection). The first call freezes what is alive then,
    so each later collection looks only at what the cases made (a full one takes 20-100 ms)."""
    if not _FROZEN:
        gc.collect()
        gc.freeze()
        _FROZEN.append(True)
    gc.collect()


def unfreeze() -> None:
    """Undo collect()'s freeze (after a fuzz module: the rest of a run collects as usual)."""
    if _FROZEN:
        gc.unfreeze()
        _FROZEN.clear()


def run_case(fn, kinds, inputs=()) -> str:
    """fn() under the time bound; 'ok' or 'error'. Inputs must be unchanged afterwards."""
    before = [digest(p) for p in inputs]
    try:
        with bounded():
            fn()
        outcome = "ok"
    except Hang:
        raise AssertionError(f"hang: no answer within {TIME_LIMIT} s")
    except Exception as e:        # noqa: BLE001 - any other type is the failure reported
        check_error(e, kinds)
        outcome = "error"
    assert [digest(p) for p in inputs] == before, "an input file was changed"
    return outcome


# ---------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------
def toml_value(v) -> str:
    """Inline TOML for a parsed value (enough for what tomllib returns)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) \
            else repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def toml_dump(doc: dict) -> str:
    lines = []
    for k, v in doc.items():
        if not (isinstance(v, list) and v and all(isinstance(x, dict) for x in v)):
            lines.append(f"{json.dumps(k)} = {toml_value(v)}")
    for k, v in doc.items():
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for t in v:
                lines.append(f"[[{json.dumps(k)}]]")
                lines.extend(f"{json.dumps(a)} = {toml_value(b)}" for a, b in t.items())
    return "\n".join(lines) + "\n"


def hostile_value(rng: random.Random, old=1):
    if isinstance(old, int) and not isinstance(old, bool) and rng.random() < 0.4:
        # Near the old value: often still valid, so the build runs with it.
        return rng.choice([old + 1, old - 1, old * 2, old // 2, old ^ (1 << rng.randrange(64)),
                           old + rng.choice([0x1000, 0x10000, 0x1000_0000]), old << 8])
    choices = [
        lambda: -1, lambda: 0, lambda: 1, lambda: 2 ** 64, lambda: 2 ** 64 - 1,
        lambda: 2 ** 63 - 1, lambda: -(2 ** 63), lambda: 2 ** 32, lambda: 0xffffffff,
        lambda: rng.randrange(-2 ** 70, 2 ** 70), lambda: rng.randrange(64),
        lambda: 10 ** rng.randrange(20, 4000),
        lambda: rng.choice([6, 7, 8, 10, 12, 16, 20, 21, 32, 33, 52, 53, 63, 64]),
        lambda: "", lambda: "x", lambda: "0x" + "f" * rng.randrange(1, 40), lambda: "nested",
        lambda: "2lvl", lambda: "smmu0", lambda: "vm0", lambda: "\0", lambda: "é" * 3,
        lambda: "9" * rng.randrange(1, 6000), lambda: [], lambda: {}, lambda: True, lambda: 1.5,
        lambda: float("inf"), lambda: float("nan"),
        lambda: nested(rng.randrange(1, 60)), lambda: [old, old], lambda: {"x": old},
        lambda: str(old)[:100] if not isinstance(old, (list, dict)) else old,
        lambda: rng.choice([4096, 16384, 65536, 8192, 0x1000_0000]),
        lambda: rng.choice([0x4000_0000, 0x8000_0000, 0xffff_ffff_f000, 2 ** 48, 2 ** 56]),
    ]
    return rng.choice(choices)()


def nested(depth: int):
    v = 1
    for _ in range(depth):
        v = [v]
    return v


def _paths(v, path=()):
    """Every (container path, key) in a parsed document."""
    if isinstance(v, dict):
        for k, x in v.items():
            yield path, k
            yield from _paths(x, path + (k,))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield path, i
            yield from _paths(x, path + (i,))


def _get(doc, path):
    for p in path:
        doc = doc[p]
    return doc


def mutate_doc(rng: random.Random, doc: dict, n: int) -> dict:
    for _ in range(n):
        paths = list(_paths(doc))
        if not paths:
            break
        path, key = rng.choice(paths)
        parent = _get(doc, path)
        op = rng.random()
        if op < 0.15:
            del parent[key]
        elif op < 0.25 and isinstance(parent, dict):
            parent[rng.choice(["bogus", "count", "s1cdmax", "log2size", "split", "vm", "sid",
                               "pool", "maps", "ias", "vabits"])] = hostile_value(rng)
        elif op < 0.35 and isinstance(parent, list):
            parent.append(parent[key] if rng.random() < 0.7 else hostile_value(rng))
        else:
            parent[key] = hostile_value(rng, parent[key])
    return doc


def mutate_scenario_text(rng: random.Random, base: str | None = None) -> str:
    """A hostile scenario: a mutated example (parsed, changed, written back) or a text-level
    mutation (random bytes, truncation, deep nesting, huge numbers)."""
    name = rng.choice(sorted(SCENARIOS)) if base is None else base
    text = SCENARIOS[name]
    r = rng.random()
    if r < 0.7:
        doc = mutate_doc(rng, tomllib.loads(text), rng.randrange(1, 4))
        return toml_dump(doc)
    if r < 0.78:
        cut = rng.randrange(len(text))
        return text[:cut] + text[cut + rng.randrange(0, 50):]
    if r < 0.84:
        depth = rng.choice([10, 100, 500, 1000, 3000])
        return text + "\nx = " + "[" * depth + "]" * depth + "\n"
    if r < 0.9:
        return text.replace(rng.choice(["= 2", "= 8", "= 16", "= 0x", "= 1"]),
                            "= " + "9" * rng.randrange(100, 6000), 1)
    raw = bytearray(text.encode())
    for _ in range(rng.randrange(1, 20)):
        raw[rng.randrange(len(raw))] = rng.randrange(256)
    return raw.decode("utf-8", "replace") if rng.random() < 0.5 else raw.decode("latin-1")


def small(spec: dict) -> bool:
    """Whether a checked scenario builds in well under the time bound (large.toml's 65,536
    streams take seconds: such scenarios are parsed and checked only)."""
    return len(spec["stream"]) <= 16 and sum(s["count"] for s in spec["stream"]) <= 4096


def scenario_case(rng: random.Random, tmp: Path) -> str:
    text = mutate_scenario_text(rng)
    path = tmp / "fuzz.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))

    def go():
        spec = sc.load(str(path))
        if small(spec):
            System(spec)
    return run_case(go, (ScenarioError,), [path])


# ---------------------------------------------------------------------------------------------
# ELF dumps
# ---------------------------------------------------------------------------------------------
PHDR = struct.Struct("<IIQQQQQQ")      # p_type p_flags p_offset p_vaddr p_paddr filesz memsz align
EHDR = struct.Struct("<16sHHIQQQIHHHHHH")


def tiny_elf(segments=((0x4000_0000, 0x2000), (0x4001_0000, 0x1000))) -> bytearray:
    """A valid AArch64 ET_CORE with one PT_LOAD per (pa, size), data after the headers."""
    phoff = EHDR.size
    data_at = (phoff + PHDR.size * len(segments) + 0xFFF) & ~0xFFF
    ph, off = [], data_at
    for pa, size in segments:
        ph.append(PHDR.pack(1, 6, off, 0, pa, size, size, 0x1000))
        off += size
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    eh = EHDR.pack(ident, 4, 183, 1, 0, phoff, 0, 0, EHDR.size, PHDR.size, len(segments),
                   64, 0, 0)
    raw = bytearray(eh + b"".join(ph))
    raw += bytes(data_at - len(raw))
    for i, (_, size) in enumerate(segments):
        raw += bytes([(i + 1) & 0xFF]) * size
    return raw


_PH_FIELDS = {"p_type": 0, "p_offset": 8, "p_paddr": 24, "p_filesz": 32, "p_memsz": 40}


def hostile_u64(rng: random.Random, size: int) -> int:
    return rng.choice([0, 1, 0xFFF, 0x1000, size - 1, size, size + 1, 2 ** 63, 2 ** 63 - 1,
                       2 ** 64 - 1, 2 ** 64 - 0x1000, 2 ** 48, 2 ** 40, 2 ** 30,
                       rng.randrange(2 ** 64), rng.randrange(2 * size + 1)])


def mutate_elf(rng: random.Random) -> bytes:
    segs = rng.choice([((0x4000_0000, 0x2000),),
                       ((0x4000_0000, 0x2000), (0x4001_0000, 0x1000)),
                       ((0x4000_0000, 0x1000), (0x4000_1000, 0x1000), (0x8000_0000, 0x3000))])
    raw = tiny_elf(segs)
    size = len(raw)
    phnum = len(segs)

    def put(fmt, at, value):           # a truncated file has no bytes at `at` to change
        if at + struct.calcsize(fmt) <= len(raw):
            struct.pack_into(fmt, raw, at, value)

    for _ in range(rng.randrange(1, 4)):
        r = rng.random()
        if r < 0.55:
            i = rng.randrange(phnum)
            name = rng.choice(list(_PH_FIELDS))
            at = EHDR.size + i * PHDR.size + _PH_FIELDS[name]
            if name == "p_type":
                put("<I", at, rng.choice([0, 1, 2, 4, 0x6474e551, 2 ** 32 - 1]))
            else:
                put("<Q", at, hostile_u64(rng, size))
        elif r < 0.65:
            put("<H", 56, rng.choice([0, 1, 2, 3, 100, 0xFFFE, 0xFFFF,
                                                        rng.randrange(0x10000)]))   # e_phnum
        elif r < 0.72:
            put("<Q", 32, hostile_u64(rng, size))                 # e_phoff
        elif r < 0.77:
            put("<H", 54, rng.choice([0, 32, 55, 56, 57, 64, 0xFFFF]))
        elif r < 0.82:                                                             # sections
            put("<Q", 40, hostile_u64(rng, size))                 # e_shoff
            put("<H", 60, rng.choice([0, 1, 0xFFFF]))            # e_shnum
            put("<H", 62, rng.choice([0, 1, 0xFFFF]))            # e_shstrndx
        elif r < 0.9:
            if raw:                    # down to an empty file
                del raw[rng.randrange(len(raw)):]
        else:
            for _ in range(rng.randrange(1, 16)):
                if raw:
                    raw[rng.randrange(min(len(raw), 64 + PHDR.size * phnum))] = rng.randrange(256)
    return bytes(raw)


def elf_case(rng: random.Random, tmp: Path) -> str:
    path = tmp / "fuzz.elf"
    data = mutate_elf(rng)
    if rng.random() < 0.05:
        data = lzma.compress(data)
    path.write_bytes(data)

    def go():
        segs = load_memory(str(path))
        for s in segs:       # the data is there and readable
            assert len(s.data) == s.size and s.pa + s.size <= 1 << 64
            if s.size:
                s.data[0], s.data[s.size - 1]
    return run_case(go, (DumpError,), [path])


# ---------------------------------------------------------------------------------------------
# Register files, imported over the fixture dump
# ---------------------------------------------------------------------------------------------
REGS = json.loads((FIXTURE / "regs.json").read_text())


def _flip(rng: random.Random, value):
    """The register value with one bit of 64 flipped (0 if it is not a hex string)."""
    try:
        return hex(int(value, 16) ^ (1 << rng.randrange(64)))
    except (TypeError, ValueError):
        return 0


def mutate_regs(rng: random.Random):
    regs = dict(REGS)
    for _ in range(rng.randrange(1, 5)):
        r = rng.random()
        key = rng.choice(sorted(regs)) if regs else "SMMU_IDR0"
        if r < 0.35:
            regs[key] = _flip(rng, regs.get(key))
        elif r < 0.55:
            regs[key] = rng.choice([
                hex(rng.randrange(2 ** 32)), hex(rng.randrange(2 ** 64)), -1, 2 ** 64,
                _flip(rng, regs.get(key)), "0x", "zz", None, [], {}, 1.5, True,
                "9" * rng.randrange(1, 5000), hex(rng.randrange(64) << rng.randrange(60))])
        elif r < 0.7:
            regs.pop(key, None)
        elif r < 0.8:
            regs[rng.choice(["SMMU_IDR1", "SMMU_STRTAB_BASE_CFG", "SMMU_CMDQ_BASE",
                             "SMMU_EVENTQ_BASE", "smmu_evtq_prod", "SMMU_BOGUS"])] = hex(
                rng.randrange(2 ** 32))
        elif r < 0.9:
            regs["SMMU_STRTAB_BASE"] = hex(rng.choice([0, 2 ** 56 - 64, 0x4000_0000,
                                                       rng.randrange(2 ** 56) & ~63]))
        else:
            return rng.choice(["[]", "{", "", "null", "{" * 5000 + "}" * 5000,
                               json.dumps(regs) + "x", json.dumps(regs).replace('"', "'", 3)])
    return json.dumps(regs)


_DUMP = {}


def fixture_dump(tmp: Path) -> Path:
    """The fixture ELF, decompressed once per directory (xz is tested elsewhere)."""
    if tmp not in _DUMP:
        p = tmp / "memory.elf"
        p.write_bytes(lzma.decompress((FIXTURE / "memory.elf.xz").read_bytes()))
        _DUMP[tmp] = p
    return _DUMP[tmp]


def regs_case(rng: random.Random, tmp: Path) -> str:
    dump = fixture_dump(tmp)
    path = tmp / "regs.json"
    path.write_text(mutate_regs(rng))

    def go():
        system, report = import_qemu(str(dump), str(path))
        json.dumps(report)
    return run_case(go, (QemuImportError,), [path, dump])


# ---------------------------------------------------------------------------------------------
# Sessions, loaded as `load` and `smmudbg replay` load them (the log is replayed)
# ---------------------------------------------------------------------------------------------
def hostile_logged(rng: random.Random, tmp: Path) -> str:
    """A command line a damaged or crafted session's log may hold: the issue's reproducers,
    file readers pointed at hostile paths, commands that are never logged."""
    paths = list(hostile_paths(tmp).values())
    big = rng.choice(["0x10000000000000000", "-1", "9" * rng.randrange(1, 5000),
                      "0xffffffffffffffff", str(rng.randrange(2 ** 64))])
    return rng.choice([
        "set reg smmu0 CR0 SMMUEN=0", "set reg smmu0 STRTAB_BASE_CFG FMT=0 LOG2SIZE=40",
        "set reg smmu0 STRTAB_BASE 0", "set reg smmu0 CR0 SMMUEN=1", "strtab smmu0 all",
        "ste gpu0", "set ste nvme0 S1ContextPtr=0x1000", "cd nvme0", "check", "events smmu0",
        "set reg smmu0 EVENTQ_BASE ADDR=0xfffff000000 LOG2SIZE=19", "cmdq smmu0",
        f"map vm0-s2 0x0 0x0 {big}", f"drop-invalidations smmu0 {big}", f"pt vm0-s2 limit={big}",
        f"walk gpu0 {big}", f"mem {big} 0x100",
        f"import qemu {json.dumps(rng.choice(paths))} --regs {json.dumps(rng.choice(paths))}",
        f"import qemu {FIXTURE / 'regs.json'} --regs {rng.choice(paths)!r}",
        f"save {rng.choice(paths)!r}", "goto 0", "replay", "load x", "help", "",
        "\u202e", "smmus # comment", "'", "walk", "a" * rng.randrange(1, 5000),
    ])


_SESSION: dict[str, str] = {}


def base_session() -> str:
    """A saved session (JSON text) with a few logged commands, made once."""
    if "text" not in _SESSION:
        from smmudbg.session import Session
        s = Session()
        for line in ("walk gpu0 0x40000000", "set ste nvme0 S1ContextPtr=0x1000", "cd nvme0",
                     "map vm0-s2 0x50000000 0x50000000 0x1000", "pt vm0-s2", "check"):
            s.execute(line)
        _SESSION["text"] = json.dumps(s.to_json(results=True))
    return _SESSION["text"]


def mutate_session(rng: random.Random, tmp: Path) -> str:
    doc = json.loads(base_session())
    r = rng.random()
    if r < 0.35:
        return json.dumps(mutate_doc(rng, doc, rng.randrange(1, 4)))
    if r < 0.5:
        doc["scenario"] = mutate_scenario_text(rng)
    elif r < 0.75:
        log = doc["log"]
        for _ in range(rng.randrange(1, 4)):
            entry = dict(rng.choice(log))
            entry["command"] = hostile_logged(rng, tmp)
            if rng.random() < 0.5:
                entry["digest"] = rng.choice(["0" * 64, "x", "", "f" * 64])
            log.insert(rng.randrange(len(log) + 1), entry)
        if rng.random() < 0.3:
            doc["position"] = hostile_value(rng, len(log))
    elif r < 0.8:
        # Long, but linear to replay (8,000 commands: tests/test_hostile_commands.py).
        doc["log"] = doc["log"] * rng.choice([5, 20, 100])
        doc["position"] = rng.randrange(len(doc["log"]) + 1)
    elif r < 0.87:
        doc["version"] = 2
        doc["snapshots"] = {"file": rng.choice(["fifo", "link-to-fifo", "sparse", "empty",
                                                "..", "missing", "a\0b", "in.json"]),
                            "sha256": "0" * 64}
    else:
        text = json.dumps(doc)
        r = rng.random()
        if r < 0.4:
            return text[:rng.randrange(len(text))]
        if r < 0.7:
            depth = rng.choice([100, 1000, 100_000])
            return text[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}"
        raw = bytearray(text.encode())
        for _ in range(rng.randrange(1, 20)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        return raw.decode("latin-1")
    return json.dumps(doc)


def session_case(rng: random.Random, tmp: Path) -> str:
    from smmudbg.session import Session, SessionError, read_session
    path = tmp / "fuzz-session.json"
    path.write_bytes(mutate_session(rng, tmp).encode("utf-8", "surrogatepass"))

    def go():
        if not small(sc.parse(read_session(str(path))["scenario"])):
            return
        s, report = Session.load(str(path))
        json.dumps(report)
        for e in s.log:        # what replay ran answered with a result or a one-line error
            assert e.error is None or ("\n" not in e.error and "internal error" not in
                                       e.error and len(e.error) <= MAX_MESSAGE), e.error[:300]
    try:
        return run_case(go, (SessionError, ScenarioError), [path])
    finally:
        collect()           # (a session's system maps 1 GiB of RAM: free it before the next)


# ---------------------------------------------------------------------------------------------
# Hostile paths
# ---------------------------------------------------------------------------------------------
def hostile_paths(tmp: Path) -> dict[str, str]:
    fifo = tmp / "fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    link = tmp / "link-to-fifo"
    if not link.exists():
        link.symlink_to(fifo)
    sparse = tmp / "sparse"
    if not sparse.exists():
        with open(sparse, "wb") as f:
            f.truncate(3 << 30)             # 3 GiB of holes: larger than any text limit
    empty = tmp / "empty"
    empty.touch()
    return {"fifo": str(fifo), "symlink to fifo": str(link), "directory": str(tmp),
            "/dev/zero": "/dev/zero", "/dev/urandom": "/dev/urandom", "/dev/null": "/dev/null",
            "NUL in name": str(tmp / "a\0b"), "newline in name": str(tmp / "a\nb"),
            "missing": str(tmp / "missing"), "empty": str(empty), "sparse 3 GiB": str(sparse),
            "empty name": ""}


READERS = {
    "scenario": (lambda p: sc.load(p), (ScenarioError,)),
    "scenario build": (lambda p: System.from_file(p), (ScenarioError,)),
    "register file": (lambda p: load_regs(p), (QemuImportError,)),
    "memory dump": (lambda p: load_memory(p), (DumpError,)),
    "import (dump)": (lambda p: import_qemu(p, FIXTURE / "regs.json"), (QemuImportError,)),
}


def path_cases(tmp: Path):
    for what, path in hostile_paths(tmp).items():
        for reader, (fn, kinds) in READERS.items():
            yield f"{reader} <- {what}", (lambda fn=fn, path=path: fn(path)), kinds


KINDS = {"scenario": scenario_case, "elf": elf_case, "regs": regs_case,
         "session": session_case}


# ---------------------------------------------------------------------------------------------
# Tests: the short profile runs by default; -m fuzz runs the long one.
# ---------------------------------------------------------------------------------------------
SHORT = settings(max_examples=60, deadline=None, database=None,
                 suppress_health_check=list(HealthCheck))
# Four kinds x 25,000 >= 100,000 inputs; SMMUDBG_FUZZ_EXAMPLES changes the count per kind.
LONG = settings(max_examples=int(os.environ.get("SMMUDBG_FUZZ_EXAMPLES", 25000)), deadline=None,
                database=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    yield tmp_path_factory.mktemp("fuzz-inputs")
    unfreeze()


def test_hostile_paths_every_reader(scratch):
    """A FIFO, a directory, a device, a NUL or newline in the name, a sparse 3 GiB file: every
    reader answers (never blocks) with a one-line error (or, for a raw dump, loads it)."""
    for label, fn, kinds in path_cases(scratch):
        try:
            with bounded():                  # a FIFO or device read that blocks: a hang
                fn()
        except Hang:
            raise AssertionError(f"{label}: hang")
        except Exception as e:    # noqa: BLE001
            msg = check_error(e, kinds)
        else:
            # Only a raw dump of a large regular file, and an empty scenario (no SMMUs, a valid
            # TOML document), may load; nothing else succeeds.
            assert label in ("memory dump <- sparse 3 GiB", "import (dump) <- sparse 3 GiB",
                             "scenario <- empty", "scenario build <- empty"), \
                f"{label}: accepted"
            continue
        assert msg, label


def test_tiny_elf_is_valid(scratch):
    """The fuzzer's seed ELF loads as built (so mutations start from a valid dump)."""
    p = scratch / "tiny.elf"
    p.write_bytes(tiny_elf())
    segs = load_memory(str(p))
    assert [(s.pa, s.size) for s in segs] == [(0x4000_0000, 0x2000), (0x4001_0000, 0x1000)]
    assert bytes(segs[1].data[:4]) == b"\x02" * 4


def test_unmutated_scenarios_load(scratch):
    """The serializer round-trips every example (so mutations start from valid scenarios)."""
    for name, text in SCENARIOS.items():
        assert sc.parse(toml_dump(tomllib.loads(text)), name) == sc.parse(text, name)


@pytest.mark.parametrize("kind", sorted(KINDS))
@SHORT
@given(rng=st.randoms(use_true_random=False))
def test_fuzz_short(kind, rng, scratch):
    KINDS[kind](rng, scratch)


@pytest.mark.fuzz
@pytest.mark.parametrize("kind", sorted(KINDS))
@LONG
@given(rng=st.randoms(use_true_random=False))
def test_fuzz_long(kind, rng, scratch):
    KINDS[kind](rng, scratch)
