#!/usr/bin/env python3
"""Load (replay) cost of a long saved session: it must grow linearly with the log.

    python benchmarks/bench_replay.py [N ...]        # default: 1000 2000 4000 8000 commands

Builds a session of N commands on the built-in default scenario (a mix of walks, STE/CD
writes, invalidations, maps and inspections, as a debugging session has), saves it, and
times Session.load (which re-runs every command and compares digests). Prints seconds per
thousand commands for each N: a flat figure is linear cost.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smmudbg.session import Session  # noqa: E402

MIX = ["walk nic0 0x{a:x}", "walk gpu0 0x{a:x}", "set ste gpu0 S2VMID={v}",
       "cmd smmu0 CMD_CFGI_STE StreamID=0x200", "cmd smmu0 CMD_SYNC", "ste nic0",
       "map vm0-s2 0x{m:x} 0x{m:x} 0x1000", "walk nvme0 0x{a:x}", "tlb smmu0", "check smmu0"]


def commands(n: int) -> list[str]:
    out = []
    for i in range(n):
        out.append(MIX[i % len(MIX)].format(a=0x1000 * (i % 512), v=1 + i % 7,
                                            m=0x100000000 + 0x1000 * i))
    return out


def main(argv) -> None:
    sizes = [int(a) for a in argv] or [1000, 2000, 4000, 8000]
    with tempfile.TemporaryDirectory() as d:
        for n in sizes:
            s = Session()
            t0 = time.perf_counter()
            for line in commands(n):
                s.execute(line)
            run = time.perf_counter() - t0
            path = os.path.join(d, f"s{n}.json")
            s.save(path)
            t0 = time.perf_counter()
            loaded, report = Session.load(path)
            took = time.perf_counter() - t0
            assert report["identical"], report["diverged"]
            print(f"{n:6} commands: run {run:6.2f} s, load {took:6.2f} s "
                  f"({took / n * 1000:.3f} s per 1000)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
