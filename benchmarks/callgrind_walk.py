"""Instructions per cold walk, counted by valgrind's callgrind: a figure that does not move with
the machine's load, for comparing two builds of the core (bench_walk.py's walks/s do move).

The shapes of bench_walk.py (4K granule; stage 1 only, 4 levels; stage 2 only, 4 levels; nested
4+4 levels), each built twice: with the tables in declared RAM (flat memory, as scenarios declare
it) and in the page hash (no RAM declared: memory that exists because it was written, as the
pages of a dump or snapshot that were copied on write). Caches are off, so every walk fetches
the STE, the CD and every descriptor. Each shape runs in its own process under

    valgrind --tool=callgrind --toggle-collect=<the core's translate()> python THIS --child ...

so only the instructions inside the core's per-transaction translate() are counted (inclusive
of everything it calls: STE/CD fetch, table walks, memory reads), not building the tables or
the batch loop around it. Printed: instructions per walk (collected instructions / walks).

    PYTHONPATH=$PWD python benchmarks/callgrind_walk.py [--n 5000] [--shapes s1,s2,nested]
                                                       [--memory flat,hash]

Needs valgrind (apt-get install valgrind). Takes about a minute per shape on an idle machine.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

# The Cython core's per-transaction entry point (core_cy/smmuv3.pyx translate()), as the
# generated C names it.
ENTRY = "__pyx_f_7core_cy_6smmuv3_translate"
KINDS = ("s1", "s2", "nested")
MEMORY = ("flat", "hash")


def child(kind: str, memory: str, n: int) -> None:
    """Build the shape and run n walks through the public batch API (the measured process)."""
    import numpy as np

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_walk import build

    _mem, w, _strtab, addrs = build(kind, flat=memory == "flat")
    idx = np.random.default_rng(2).integers(0, len(addrs), n)
    a = addrs[idx] + np.uint64(0x123)
    _out, fault, _perm = w.translate_batch(np.ones(n, dtype=np.uint32), a)
    assert not fault.any(), "benchmark tables do not translate"


def measure(kind: str, memory: str, n: int, tmp: str) -> float:
    """Instructions per walk of one shape, from a callgrind run of child()."""
    out = os.path.join(tmp, f"callgrind.{kind}.{memory}")
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
           f"--toggle-collect={ENTRY}", sys.executable, os.path.abspath(__file__),
           "--child", kind, memory, "--n", str(n)]
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise SystemExit(f"callgrind run of {kind}/{memory} failed:\n{p.stderr[-2000:]}")
    with open(out) as f:
        m = re.search(r"^summary:\s*(\d+)", f.read(), re.M)
    if m is None:
        raise SystemExit(f"no summary line in {out}")
    return int(m.group(1)) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000, help="walks per shape")
    ap.add_argument("--shapes", default=",".join(KINDS))
    ap.add_argument("--memory", default=",".join(MEMORY))
    ap.add_argument("--child", nargs=2, metavar=("KIND", "MEMORY"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.n)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("callgrind_walk: valgrind is not installed")
    import core_cy
    print(f"core_cy from {os.path.dirname(os.path.abspath(core_cy.__file__))}")
    kinds = [k for k in args.shapes.split(",") if k]
    mems = [m for m in args.memory.split(",") if m]
    for k in kinds + mems:
        if k not in KINDS + MEMORY:
            raise SystemExit(f"callgrind_walk: unknown shape or memory {k!r}")
    print(f"instructions per walk ({args.n:,} walks, caches off)")
    print(f"{'walk':<8}" + "".join(f"{m:>10}" for m in mems))
    with tempfile.TemporaryDirectory(prefix="callgrind-walk-") as tmp:
        for kind in kinds:
            row = [measure(kind, m, args.n, tmp) for m in mems]
            print(f"{kind:<8}" + "".join(f"{v:>10.0f}" for v in row), flush=True)


if __name__ == "__main__":
    main()
