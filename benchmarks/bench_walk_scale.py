"""Nested walk speed at scale, beside a tight C walker of the same shape run in the same run.

The shape of benchmarks/c_walk_limit.c: 1,000,000 scattered 4 KiB pages in a 64 GiB VA window,
stage 1 (4 levels, tables in guest memory: their addresses are IPAs, each table page mapped by
stage 2 with its own 4 KiB leaf) over stage 2 (4 levels), every output IPA mapped by stage 2
with its own 4 KiB leaf. Caches off, so every walk reads 24 descriptors (plus, for smmudbg, the
STE and the CD through stage 2, and every architectural check). The tables are far larger than
the CPU caches, unlike bench_walk.py's.

smmudbg runs Walker.translate_batch over declared RAM (flat memory, transparent huge pages as
PhysMem.ram gives a region this large), and for comparison over flat RAM with 4 KiB pages and
over the page hash (no RAM declared, as memory was before flat regions). The C program is compiled
(gcc -O2, in a temporary directory) and run here; it prints walks/s over dense memory and over
a page hash. Printed: walks/s (median of several runs) and smmudbg's ratio to each C figure.
Goal: >= 1.0x the C hash walker, approaching the dense one.

    python benchmarks/bench_walk_scale.py [--pages 1000000] [--n 2000000] [--runs 5]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time

import numpy as np

from core_cy.physmem import PhysMem
from core_cy.ptbuild import BumpAllocator, TableBuilder
from core_cy.walk import Walker
from smmudbg.arch.fieldtable import fmt

HERE = os.path.dirname(os.path.abspath(__file__))
C_SOURCE = os.path.join(HERE, "c_walk_limit.c")

STE, CD = fmt("STE"), fmt("CD")
CAPS = dict(S1P=1, S2P=1, GRAN4K=1, OAS=5, SSIDSIZE=8, SIDSIZE=16, VMID16=1, ASID16=1,
            CD2L=1, TTENDIAN=2, TTF=2)

RAM, RAM_SIZE = 0x4000_0000, 0x8000_0000         # one host RAM region (flat)
HOST_POOL = (0x4000_0000, 0x2000_0000)          # stream table, stage-2 tables
GIPA, GPA, GSZ = 0x4000_0000, 0x8000_0000, 0x2000_0000   # guest RAM: stage-1 tables, CD
VA_WINDOW = (1 << 40, 64 << 30)                 # as the C program: 64 GiB at 1 TiB
OUT_IPA = 8 << 30                               # each VA's own output IPA: 8 GiB + i * 4 KiB
OUT_PA = 0x10_0000_0000                         # stage 2 maps those (data is never read)


def build(npages: int, memory: str = "flat", seed: int = 1):
    """The system: (walker, memory, the mapped VAs, seconds to build). memory: "flat" (RAM
    as PhysMem.ram declares it), "flat-4k" (no huge pages) or "hash" (no RAM: page hash)."""
    t0 = time.perf_counter()
    mem = PhysMem(strict=memory != "hash", capacity=1 << 18)
    if memory != "hash":
        mem.ram(RAM, RAM_SIZE, huge=None if memory == "flat" else False)
    host = BumpAllocator(*HOST_POOL)
    strtab = host.alloc(64 * 4)
    s2 = TableBuilder(mem, 2, 4096, 48, host, concat=False)     # 4 levels, as the C walker
    assert s2.start == 0
    s2.map(GIPA, GPA, GSZ, blocks=False)        # guest RAM: a 4 KiB leaf per page
    s2.map(OUT_IPA, OUT_PA, npages << 12, blocks=False)
    guest = BumpAllocator(GIPA, GSZ)
    s1 = TableBuilder(mem, 1, 4096, 48, guest, windows=[(GIPA, GSZ, GPA)])
    assert s1.start == 0
    rng = np.random.default_rng(seed)
    pages = rng.choice(VA_WINDOW[1] >> 12, npages, replace=False).astype(np.uint64)
    vas = np.uint64(VA_WINDOW[0]) + (pages << np.uint64(12))
    m = s1.map
    for i, va in enumerate(vas.tolist()):
        m(va, OUT_IPA + (i << 12), 4096)
    cd_ipa = guest.alloc(64)
    mem.write_words(GPA + cd_ipa - GIPA,
                    CD.encode(V=1, AA64=1, T0SZ=16, TG0=0, EPD1=1, IPS=5, R=1, A=1, ASID=1,
                              TTB0=s1.root >> 4))
    mem.write_words(strtab + 64, STE.encode(
        V=1, Config="nested", S1ContextPtr=cd_ipa >> 6, S2VMID=1, S2T0SZ=16, S2SL0=s2.sl0,
        S2TG=0, S2PS=5, S2AA64=1, S2R=1, S2TTB=s2.root >> 4))
    w = Walker(mem, CAPS)
    w.configure(strtab_base=strtab, strtab_fmt=0, strtab_log2size=2, caching=False)
    return w, mem, vas, time.perf_counter() - t0


def queries(vas, n, seed=2):
    rng = np.random.default_rng(seed)
    return vas[rng.integers(0, len(vas), n)] | rng.integers(0, 4096, n).astype(np.uint64)


def smmudbg_run(w, addrs):
    """Nested walks/s of one translate_batch over addrs (StreamID 1, caches off)."""
    sids = np.ones(len(addrs), dtype=np.uint32)
    t0 = time.perf_counter()
    out, fault, _ = w.translate_batch(sids, addrs)
    rate = len(addrs) / (time.perf_counter() - t0)
    assert not fault.any(), "the benchmark tables do not translate"
    return rate


def compile_c(d):
    """Path of the compiled C walker in directory d, or None without a compiler."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None or not os.path.exists(C_SOURCE):
        return None
    exe = os.path.join(d, "cwl")
    subprocess.run([cc, "-O2", "-o", exe, C_SOURCE], check=True)
    return exe


def c_run(exe, pages):
    """{'dense': walks/s, 'hash': walks/s} of one run of the C walker."""
    out = subprocess.run([exe, str(pages)], check=True, capture_output=True, text=True).stdout
    return {kind: float(rate) * 1e6 for kind, rate in
            re.findall(r"^(dense|hash)\s+nested_4x4\s+([\d.]+) Mwalks/s", out, re.M)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=1_000_000)
    ap.add_argument("--n", type=int, default=2_000_000, help="walks per run")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--c-runs", type=int, default=3)
    ap.add_argument("--memory", default="flat,flat-4k,hash",
                    help="smmudbg memory models to run (flat, flat-4k, hash)")
    args = ap.parse_args()
    systems = {}
    for memory in args.memory.split(","):
        w, mem, vas, secs = build(args.pages, memory)
        steps = len(w.translate(1, int(vas[0]), trace=True)["steps"])
        systems[memory] = (w, mem, queries(vas, args.n))
        print(f"smmudbg {memory:<8} {len(vas):,} pages, tables built in {secs:.1f} s; {steps} "
              f"reads per walk (the C walker: 24; smmudbg also reads the STE and the CD)")
    # Runs alternate between the C walker and each smmudbg memory model, so that load from
    # other processes falls on all of them alike; medians are printed.
    rates = {m: [] for m in systems}
    crates = {"hash": [], "dense": []}
    with tempfile.TemporaryDirectory(prefix="cwl-") as d:
        exe = compile_c(d)
        for r in range(max(args.runs, args.c_runs)):
            if exe is not None and r < args.c_runs:
                for k, v in c_run(exe, args.pages).items():
                    crates[k].append(v)
            if r < args.runs:
                for m, (w, mem, addrs) in systems.items():
                    rates[m].append(smmudbg_run(w, addrs))
    med = {m: statistics.median(v) for m, v in rates.items()}
    for m, v in med.items():
        print(f"smmudbg {m:<8} {v:>11,.0f} nested walks/s  (median of {args.runs} runs of "
              f"{args.n:,})")
    if exe is None:
        print("C reference: not run (no C compiler or no c_walk_limit.c)")
        return
    hashed, dense = statistics.median(crates["hash"]), statistics.median(crates["dense"])
    print(f"C walker hash    {hashed:>11,.0f} nested walks/s   dense {dense:,.0f}  (median of "
          f"{args.c_runs} runs)")
    for m, v in med.items():
        print(f"ratio smmudbg {m:<8} / C hash {v / hashed:.2f}x   / C dense {v / dense:.2f}x")
    rate = med.get("flat", next(iter(med.values())))
    print(f"goal: smmudbg (flat) >= 1.0x the C hash walker: "
          f"{'ok' if rate >= hashed else 'MISSED'}")


if __name__ == "__main__":
    main()
