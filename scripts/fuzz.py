#!/usr/bin/env python3
"""The long fuzz run: hostile scenarios, sessions, dumps, register files, paths, command lines.

    python scripts/fuzz.py                         # 100,000 inputs, spread over every kind
    python scripts/fuzz.py -n 20000 --kinds elf    # one kind
    python scripts/fuzz.py --kinds commands        # command lines on hostile memory states
    python scripts/fuzz.py --minutes 10            # as many as fit in 10 minutes

Uses the mutators and checks of tests/test_fuzz_inputs.py and tests/test_fuzz_commands.py (the
same ones the test suite runs under hypothesis): each input must give a result or a one-line
error of the reader's own type within the time bound, with no traceback or "internal error",
and leave its file unchanged. A commands case is a hostile setup and 1-4 generated lines (the
count of lines is printed too).
Case i of kind K is random.Random(f"{seed}:{K}:{i}"), so a failure is replayed with
`--kinds K --first i -n 1`. Prints counts per kind and outcome; exit status 1 on any failure.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import test_fuzz_commands as fc  # noqa: E402
import test_fuzz_inputs as fz  # noqa: E402

KINDS = {**fz.KINDS, "commands": fc.command_case}


def signature(msg: str) -> str:
    """A failure's message without its numbers and quoted tokens (one line per root cause)."""
    msg = re.sub(r"'[^']*'|\"[^\"]*\"", "'.'", msg)
    return re.sub(r"\d+", "N", msg)[:160]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-n", type=int, default=100_000, help="inputs in all (default 100,000)")
    p.add_argument("--kinds", default=",".join(sorted(KINDS)),
                   help=f"comma-separated, of {', '.join(sorted(KINDS))}")
    p.add_argument("--seed", default="0")
    p.add_argument("--first", type=int, default=0, help="index of the first case")
    p.add_argument("--minutes", type=float, default=None, help="stop after this long")
    p.add_argument("--memory-gib", type=float, default=8.0,
                   help="address-space limit of this process (an unbounded allocation fails)")
    args = p.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    for k in kinds:
        if k not in KINDS:
            p.error(f"unknown kind {k!r}")
    limit = int(args.memory_gib * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    deadline = time.monotonic() + args.minutes * 60 if args.minutes else None

    counts: Counter = Counter()
    failures: list[str] = []
    kinds_seen: Counter = Counter()         # failures by signature
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="smmudbg-fuzz-") as tmp:
        tmp = Path(tmp)
        # Hostile paths against every reader, once each (they are few and deterministic).
        for label, fn, kinds_ok in fz.path_cases(tmp):
            try:
                counts["paths", fz.run_case(fn, kinds_ok)] += 1
            except AssertionError as e:
                counts["paths", "FAIL"] += 1
                failures.append(f"paths {label}: {e}")
        done = 0
        for i in range(args.first, args.first + args.n):
            kind = kinds[i % len(kinds)]
            rng = random.Random(f"{args.seed}:{kind}:{i}")
            try:
                counts[kind, KINDS[kind](rng, tmp)] += 1
            except AssertionError as e:
                counts[kind, "FAIL"] += 1
                msg = str(e).splitlines()[0] if str(e) else "AssertionError"
                sig = (kind, signature(msg))
                kinds_seen[sig] += 1
                if kinds_seen[sig] <= 2 and len(failures) < 60:   # every root cause shows
                    failures.append(f"{kind} case {i}: {msg[:300]}")
            done += 1
            if done % 5000 == 0:
                rate = done / (time.monotonic() - t0)
                print(f"  {done} inputs, {rate:.0f}/s", file=sys.stderr, flush=True)
            if deadline and time.monotonic() > deadline:
                break
    elapsed = time.monotonic() - t0
    total = sum(counts.values())
    ru = resource.getrusage(resource.RUSAGE_SELF)
    cpu = ru.ru_utime + ru.ru_stime
    print(f"{total} inputs in {elapsed:.0f} s ({total / elapsed:.0f}/s; CPU {cpu:.0f} s, "
          f"{total / max(cpu, 1e-9):.0f}/CPU-s), max RSS {ru.ru_maxrss >> 10} MiB")
    for kind in ["paths"] + kinds:
        row = {o: counts[kind, o] for o in ("ok", "error", "FAIL")}
        print(f"  {kind:9} ok {row['ok']:7}  one-line error {row['error']:7}  "
              f"FAIL {row['FAIL']}")
    if fc.LINES:
        lines = sum(fc.LINES.values())
        print(f"  commands: {lines} generated lines ({lines / elapsed:.0f}/s; ok "
              f"{fc.LINES['ok']}, one-line error {fc.LINES['error']}) after hostile setups")
        print("  slowest lines: " + "; ".join(f"{t:.2f} s {line[:60]!r}" for t, line in
                                             sorted(fc.SLOWEST, reverse=True) if line))
    for f in failures:
        print("FAIL", f)
    if kinds_seen:
        print(f"{len(kinds_seen)} distinct failure signatures:")
        for (kind, sig), n in kinds_seen.most_common():
            print(f"  {n:6}  {kind}: {sig[:200]}")
    return 1 if failures else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
