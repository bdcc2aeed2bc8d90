"""Cold-walk throughput of the VT-d core walker (core_cy.vtd) beside the SMMUv3 one.

Every VT-d translation reads the root entry, the context entry, the PASID directory entry and
the PASID table entry, then the paging entries: translate_batch runs without the caches (context,
PASID, IOTLB, paging-structure), so every walk is cold, like bench_walk.py's with caching off. Three shapes, 4 KiB pages scattered over the input
range so walks share few tables: first stage only (4 levels), second stage only (4 levels, AW
48 bits) and nested 4+4 (every first-stage table fetched through a 4-level second stage, then
the output: 24 paging-entry reads). Prints walks/s (median of several runs) in declared RAM, the
pure-Python reference walker's rate (smmudbg.vtd_refwalk) and the ratio, and the SMMUv3 figures
of the same shapes from bench_walk.py beside them.

    python benchmarks/bench_vtd.py [--n 200000] [--runs 5] [--no-smmu]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

import core_cy
from core_cy.physmem import PhysMem
from core_cy.vtd import VtdWalker
from smmudbg.arch.fieldtable import fmt
from smmudbg.vtd_refwalk import Unit, port, translate as ref_translate

NPAGES = 4096
HOST_RAM, HOST_RAM_SIZE = 0x4000_0000, 0x1000_0000
GIPA, GPA, GSZ = 0x8000_0000, 0x1_0000_0000, 0x4000_0000      # guest RAM window for nesting
ROOT, CTX, PDIR, PTBL = HOST_RAM, HOST_RAM + 0x1000, HOST_RAM + 0x2000, HOST_RAM + 0x3000
SID, PASID = 0x0100, 1
# CAP_REG: SAGAW 48 bits, MGAW 48, SLLPS 2M/1G, FL1GP; ECAP_REG: PT, NEST, SMTS, SLTS, FLTS, PASID.
CAP = (0b00100 << 8) | (47 << 16) | (0b11 << 34) | (1 << 56)
ECAP = sum(1 << b for b in (6, 26, 40, 43, 46, 47))
GSTS = 1 << 31


def e(name, **kw):
    return fmt(name, "vtd").encode(**kw)[0]


class Pt:
    """Four-level x86-style tables: stage 'fs' or 'ss'; tables allocated at `next`, written at
    `next + off` (a first stage in guest memory: allocated as GPAs, stored at their PAs)."""
    NAMES = {"fs": ("FS_PML4E", "FS_PDPE", "FS_PDE", "FS_PTE"),
             "ss": ("SS_PML4E", "SS_PDPE", "SS_PDE", "SS_PTE")}

    def __init__(self, mem, start, off=0, stage="fs"):
        self.mem, self.next, self.off, self.stage = mem, start, off, stage
        self.root = self.alloc()

    def alloc(self):
        a = self.next
        self.next += 0x1000
        return a

    def entry(self, name, addr):
        perm = dict(P=1, RW=1, US=1) if self.stage == "fs" else dict(R=1, W=1, X=1)
        return e(name, ADDR=addr >> 12, **perm)

    def map(self, va, pa):
        table = self.root
        for i, name in enumerate(self.NAMES[self.stage]):
            shift = 12 + 9 * (3 - i)
            ea = table + 8 * ((va >> shift) & 0x1FF) + self.off
            if i == 3:
                self.mem.write_u64(ea, self.entry(name, pa))
                return
            ent = self.mem.read_u64(ea)
            if not ent & 1:
                ent = self.entry(name, self.alloc())
                self.mem.write_u64(ea, ent)
            table = ent & 0x000F_FFFF_FFFF_F000


def build(kind):
    mem = PhysMem()
    mem.ram(HOST_RAM, HOST_RAM_SIZE)
    mem.ram(GPA, 0x1000_0000)
    rng = np.random.default_rng(1)
    pages = np.unique(rng.integers(0, 1 << 35, NPAGES * 2))[:NPAGES].astype(np.uint64)
    addrs = pages << np.uint64(12)
    mem.write_u64(ROOT + 16 * (SID >> 8), e("SM_ROOT_ENTRY", LP=1, LCTP=CTX >> 12))
    mem.write_words(CTX + 32 * (SID & 0x7F), fmt("SM_CONTEXT_ENTRY", "vtd").encode(
        P=1, PASIDE=1, PDTS=0, PASIDDIRPTR=PDIR >> 12, RID_PASID=PASID))
    mem.write_u64(PDIR, e("PASID_DIR_ENTRY", P=1, SMPTBLPTR=PTBL >> 12))
    host_next = HOST_RAM + 0x10000
    if kind == "ss":
        ss = Pt(mem, host_next, stage="ss")
        for i, a in enumerate(addrs):
            ss.map(int(a), 0x2_0000_0000 + i * 4096)
        pe = dict(PGTT=2, AW=2, SLPTPTR=ss.root >> 12)
    elif kind == "fs":
        fs = Pt(mem, host_next)
        for i, a in enumerate(addrs):
            fs.map(int(a), 0x2_0000_0000 + (i % 4096) * 4096)
        pe = dict(PGTT=1, FLPTPTR=fs.root >> 12)
    else:
        ss = Pt(mem, host_next, stage="ss")
        for off in range(0, 0x1000_0000, 0x1000):          # guest RAM, 4 KiB pages
            ss.map(GIPA + off, GPA + off)
        fs = Pt(mem, GIPA, off=GPA - GIPA)
        for i, a in enumerate(addrs):
            fs.map(int(a), GIPA + 0x800_0000 + (i % 4096) * 4096)
        pe = dict(PGTT=3, AW=2, SLPTPTR=ss.root >> 12, FLPTPTR=fs.root >> 12)
    mem.write_words(PTBL + 64 * PASID, fmt("PASID_ENTRY", "vtd").encode(P=1, DID=1, PWSNP=1,
                                                                        **pe))
    regs = dict(cap=CAP, ecap=ECAP, gsts=GSTS, rtaddr=ROOT | (1 << 10), haw=48)
    return mem, VtdWalker(mem, **regs), regs, addrs


def bench_core(w, addrs, n, runs):
    a = addrs[np.random.default_rng(2).integers(0, len(addrs), n)] + np.uint64(0x123)
    sids = np.full(n, SID, dtype=np.uint32)
    _out, reason, _perm = w.translate_batch(sids, a)
    assert not reason.any(), f"benchmark tables do not translate: {set(reason.tolist())}"
    rates = []
    for _ in range(runs):
        t0 = time.perf_counter()
        w.translate_batch(sids, a)
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def bench_ref(mem, regs, addrs, n, runs):
    unit = Unit(cap=regs["cap"], ecap=regs["ecap"], gsts=regs["gsts"], rtaddr=regs["rtaddr"],
                haw=regs["haw"])
    p = port(mem)
    rng = np.random.default_rng(3)
    rates = []
    for _ in range(runs):
        sample = [int(x) + 0x123 for x in addrs[rng.integers(0, len(addrs), n)]]
        t0 = time.perf_counter()
        for a in sample:
            assert ref_translate(p, unit, SID, a, apply_ad=False).ok
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def smmu_rates(n, runs):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_walk
    out = {}
    for kind in ("s1", "s2", "nested"):
        _m, w, _s, addrs = bench_walk.build(kind, flat=True)
        out[kind] = bench_walk.bench_cython(w, addrs, n, runs)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--py-n", type=int, default=2_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-smmu", action="store_true", help="VT-d only")
    args = ap.parse_args()
    print(f"core_cy from {os.path.dirname(os.path.abspath(core_cy.__file__))}")
    smmu = {} if args.no_smmu else smmu_rates(args.n, args.runs)
    print(f"{'VT-d walk':<10} {'pt-reads':>8} {'walks/s':>12} {'python/s':>10} {'ratio':>7}   "
          f"{'SMMUv3 same shape':<18} {'walks/s':>12}")
    for kind, twin in (("fs", "s1"), ("ss", "s2"), ("nested", "nested")):
        mem, w, regs, addrs = build(kind)
        steps = w.translate(SID, int(addrs[0]) + 0x123, trace=True, dry=True)["steps"]
        pt = sum(1 for s in steps if s["what"] in ("fs", "ss"))
        cy = bench_core(w, addrs, args.n, args.runs)
        py = bench_ref(mem, regs, addrs, args.py_n, args.runs)
        other = f"{smmu[twin]:>12,.0f}" if smmu else f"{'-':>12}"
        print(f"{kind:<10} {pt:>8} {cy:>12,.0f} {py:>10,.0f} {cy / py:>6.0f}x   {twin:<18} "
              f"{other}")


if __name__ == "__main__":
    main()
