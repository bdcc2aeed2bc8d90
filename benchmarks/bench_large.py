"""Loading the large system: examples/large-system.toml (4 SMMUs x 65,536 streams, 1,000,000
scattered stage-2 4 KiB pages), and the table builder's speed on that many pages.

Each load runs in a fresh process (so its peak RSS is its own): printed are the median load
time (parse, check and build: System.from_file; wall clock, and the process's CPU time, which
a loaded machine inflates less), the peak RSS of a loading process
(resource.getrusage ru_maxrss) beside that of one that only imported smmudbg, and the table
builder's pages/s mapping 1,000,000 scattered 4 KiB pages in one TableBuilder.map_range call
(median of several runs). Goals (issue 12 item 9): load < 2 s, peak RSS < 1 GiB, >= 1,000,000
pages/s.

    python benchmarks/bench_large.py [--runs 5] [--scenario PATH]

The core is imported as an installed package (pip install ., or an editable install; set
PYTHONPATH to measure a build in another tree).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENARIO = os.path.join(ROOT, "examples", "large-system.toml")
PAGES = 1_000_000


def one_load(path: str, build: bool) -> dict:
    """In this process: import, then (build) load the scenario. Times and peak RSS."""
    t0 = time.perf_counter()
    from smmudbg.model.system import System
    imported, cpu0 = time.perf_counter(), time.process_time()
    n = 0
    if build:
        s = System.from_file(path)
        n = len(s.streams)
    done, cpu = time.perf_counter(), time.process_time() - cpu0
    return {"import_s": imported - t0, "load_s": done - imported, "cpu_s": cpu, "streams": n,
            "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def in_child(path: str, build: bool) -> dict:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", path,
                          "--build" if build else "--no-build"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def builder_rate(runs: int) -> float:
    from core_cy.physmem import PhysMem
    from core_cy.ptbuild import BumpAllocator, TableBuilder
    rates = []
    for _ in range(runs):
        mem = PhysMem(strict=True)
        mem.ram(0x4000_0000, 0x1000_0000)
        tb = TableBuilder(mem, 2, 4096, 40, BumpAllocator(0x4000_0000, 0x1000_0000))
        t0 = time.perf_counter()
        n = tb.map_range(0x10_0000_0000, 0x2_0000_0000, 0x1000, PAGES, 0x2000, 0x1000,
                         blocks=False)
        rates.append(n / (time.perf_counter() - t0))
        assert n == PAGES
    return statistics.median(rates)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--scenario", default=SCENARIO)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--build", dest="build", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--no-build", dest="build", action="store_false", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(one_load(args.child, args.build)))
        return
    import core_cy
    print(f"core_cy from {os.path.dirname(os.path.abspath(core_cy.__file__))}")
    base = in_child(args.scenario, False)
    loads = [in_child(args.scenario, True) for _ in range(args.runs)]
    t = statistics.median(x["load_s"] for x in loads)
    rss = max(x["maxrss_kib"] for x in loads) / 1024
    print(f"scenario {os.path.relpath(args.scenario)}: {loads[0]['streams']:,} streams")
    print(f"load (System.from_file): median {t:.3f} s of {args.runs} "
          f"(min {min(x['load_s'] for x in loads):.3f}, max "
          f"{max(x['load_s'] for x in loads):.3f}; CPU time median "
          f"{statistics.median(x['cpu_s'] for x in loads):.3f} s)  goal < 2 s: "
          f"{'ok' if t < 2 else 'MISSED'}")
    print(f"peak RSS of a loading process: {rss:.0f} MiB (after importing smmudbg only: "
          f"{base['maxrss_kib'] / 1024:.0f} MiB)  goal < 1024 MiB: "
          f"{'ok' if rss < 1024 else 'MISSED'}")
    r = builder_rate(args.runs)
    print(f"table builder: {r:,.0f} pages/s (median of {args.runs}, {PAGES:,} scattered 4 KiB "
          f"pages, TableBuilder.map_range)  goal >= 1,000,000: "
          f"{'ok' if r >= 1e6 else 'MISSED'}")


if __name__ == "__main__":
    main()
