"""Cold-walk throughput of the Cython walker against a pure-Python walk of the same tables.

Caches are off, so every translation fetches the STE, the CD (through stage 2 when nested) and
every table descriptor. Three shapes, 4K granule: stage 1 only (4 levels), stage 2 only
(4 levels), and nested 4+4 levels (24 page-table fetches per walk). Prints walks/s (median of
several runs) with the tables in declared RAM (flat memory, as scenarios declare it) and, for
comparison, in the page hash (memory that exists because it was written), and the ratio of the
flat figure to the pure-Python reference walker (smmudbg.refwalk).

    python benchmarks/bench_walk.py [--n 200000] [--runs 5] [--no-hash]

The core is imported as an installed package (pip install ., or an editable install; set
PYTHONPATH to measure a build in another tree); the first line says which one was measured.
"""
import argparse
import os
import statistics
import time

import numpy as np

import core_cy
from core_cy.physmem import PhysMem
from core_cy.ptbuild import BumpAllocator, TableBuilder
from core_cy.walk import Walker
from smmudbg.arch.fieldtable import fmt

STE, CD = fmt("STE"), fmt("CD")
CAPS = dict(S1P=1, S2P=1, GRAN4K=1, GRAN16K=1, GRAN64K=1, OAS=5, SSIDSIZE=8, SIDSIZE=16,
            VMID16=1, ASID16=1, CD2L=1, TTENDIAN=2, TTF=2)
NPAGES = 4096
VA_BASE = 0x7F12_3400_0000
GIPA, GPA, GSZ = 0x8000_0000, 0x1_0000_0000, 0x4000_0000
HOST_RAM, HOST_RAM_SIZE = 0x4000_0000, 0x1000_0000


def build(kind, flat=True):
    """A system with one stream (SID 1) of the given kind; returns (mem, walker, caps, strtab,
    addresses that translate). flat: the tables live in declared RAM (flat memory, as scenarios
    declare it); else in the page hash (memory made by writing to it)."""
    mem = PhysMem()
    if flat:
        mem.ram(HOST_RAM, HOST_RAM_SIZE)         # stream table, CDs, host tables
        mem.ram(GPA, 0x1000_0000)                # the guest's first 256 MiB: its tables
    host = BumpAllocator(HOST_RAM, HOST_RAM_SIZE)
    strtab = host.alloc(64 * 4)
    rng = np.random.default_rng(1)
    # Scatter pages over the whole input range so walks do not share lower-level tables.
    pages = np.unique(rng.integers(0, 1 << 36, NPAGES * 2))[:NPAGES].astype(np.uint64)
    if kind == "s2":
        s2 = TableBuilder(mem, 2, 4096, 48, host)
        addrs = (pages << np.uint64(12)) & np.uint64((1 << 48) - 1)
        for i, a in enumerate(addrs):
            s2.map(int(a), 0x2_0000_0000 + i * 4096, 4096, blocks=False)
        ste = STE.encode(V=1, Config="s2_trans", S2VMID=1, S2T0SZ=16, S2SL0=s2.sl0, S2TG=0,
                         S2PS=5, S2AA64=1, S2R=1, S2TTB=s2.root >> 4)
        mem.write_words(strtab + 64, ste)
        assert s2.start == 0
    else:
        nested = kind == "nested"
        if nested:
            s2 = TableBuilder(mem, 2, 4096, 48, host)
            assert s2.start == 0
            s2.map(GIPA, GPA, GSZ, blocks=False)     # 4K pages: 4-level stage-2 walks
            talloc = BumpAllocator(GIPA, 0x1000_0000)
            s1 = TableBuilder(mem, 1, 4096, 48, talloc, windows=[(GIPA, GSZ, GPA)])
            out_base = GIPA + 0x2000_0000
        else:
            s1 = TableBuilder(mem, 1, 4096, 48, host)
            out_base = 0x2_0000_0000
        addrs = (pages << np.uint64(12)) & np.uint64((1 << 47) - 1)
        for i, a in enumerate(addrs):
            s1.map(int(a), out_base + (i % 4096) * 4096, 4096)
        cd_addr = (talloc if nested else host).alloc(64)
        cd = CD.encode(V=1, AA64=1, T0SZ=16, TG0=0, EPD1=1, IPS=5, R=1, A=1, ASID=1,
                       TTB0=s1.root >> 4)
        mem.write_words(GPA + cd_addr - GIPA if nested else cd_addr, cd)
        fields = dict(V=1, Config="nested" if nested else "s1_trans", S1ContextPtr=cd_addr >> 6,
                      S2VMID=1)
        if nested:
            fields.update(S2T0SZ=16, S2SL0=s2.sl0, S2TG=0, S2PS=5, S2AA64=1, S2R=1,
                          S2TTB=s2.root >> 4)
        mem.write_words(strtab + 64, STE.encode(**fields))
    w = Walker(mem, CAPS)
    w.configure(strtab_base=strtab, strtab_fmt=0, strtab_log2size=2, caching=False)
    return mem, w, {"base": strtab, "fmt": 0, "split": 0, "log2size": 2}, addrs


def bench_cython(w, addrs, n, runs):
    idx = np.random.default_rng(2).integers(0, len(addrs), n)
    a = addrs[idx] + np.uint64(0x123)
    sids = np.ones(n, dtype=np.uint32)
    out, fault, _ = w.translate_batch(sids, a)
    assert not fault.any(), "benchmark tables do not translate"
    rates = []
    for _ in range(runs):
        t0 = time.perf_counter()
        w.translate_batch(sids, a)
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def bench_python(mem, strtab, addrs, n, runs):
    from smmudbg import refwalk

    def read64(pa):
        try:
            return mem.read_u64(pa)
        except Exception:
            return None
    rng = np.random.default_rng(3)
    rates = []
    for _ in range(runs):
        sample = [int(x) + 0x123 for x in addrs[rng.integers(0, len(addrs), n)]]
        t0 = time.perf_counter()
        for a in sample:
            r = refwalk.translate(read64, CAPS, strtab, 1, a)
            assert r["fault"] is None, r["fault"]
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--py-n", type=int, default=3_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-hash", action="store_true", help="flat memory only")
    args = ap.parse_args()
    targets = {"s1": 4e6, "s2": 4e6, "nested": 1e6}
    print(f"core_cy from {os.path.dirname(os.path.abspath(core_cy.__file__))}")
    print(f"{'walk':<8} {'pt-fetch':>8} {'flat walks/s':>13} {'hash walks/s':>13} "
          f"{'python walks/s':>15} {'ratio':>7}  target (flat)")
    for kind in ("s1", "s2", "nested"):
        mem, w, strtab, addrs = build(kind, flat=True)
        steps = w.translate(1, int(addrs[0]) + 0x123, trace=True)["steps"]
        # Page-table fetches of the walk proper (the CD's own stage-2 walk is not counted).
        pt = sum(1 for s in steps if s["what"] == "S1" or
                 (s["what"] == "S2" and s["purpose"] != "CD"))
        cy = bench_cython(w, addrs, args.n, args.runs)
        hashed = "-"
        if not args.no_hash:
            _m, wh, _s, addrs_h = build(kind, flat=False)
            hashed = f"{bench_cython(wh, addrs_h, args.n, args.runs):,.0f}"
        py = bench_python(mem, strtab, addrs, args.py_n, args.runs)
        ok = "ok" if cy >= targets[kind] and cy / py >= 100 else "MISSED"
        print(f"{kind:<8} {pt:>8} {cy:>13,.0f} {hashed:>13} {py:>15,.0f} {cy / py:>6.0f}x  "
              f">= {targets[kind]:,.0f}/s and >= 100x: {ok}")


if __name__ == "__main__":
    main()
