#!/usr/bin/env python3
"""Time load_memory() on 1 GiB sparse dumps (raw pmemsave-style and ELF core), plus the
committed QEMU fixture. The loader mmaps the file, so load time must not depend on its size.

Then time the whole import (`import_qemu`: dump + registers -> a System with smmu0, stream
table read, streams found) of 1 GiB dumps that hold the fixture's guest pages at their PAs
(target: < 3 s), and walk every still-mapped QEMU translation on the result.

    python benchmarks/bench_import.py [--size-gib N] [--dir DIR]
"""
import argparse
import os
import struct
import sys
import tempfile
import time

from smmudbg.importers.qemu import import_qemu
from smmudbg.importers.qemu_dump import load_memory

FIXTURE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                           "qemu")
FIXTURE = os.path.join(FIXTURE_DIR, "memory.elf.xz")
REGS = os.path.join(FIXTURE_DIR, "regs.json")
TRANSLATIONS = os.path.join(FIXTURE_DIR, "translations.json")
RAM_BASE = 0x40000000
TARGET_S = 3.0


def make_raw(path, size):
    with open(path, "wb") as f:
        f.truncate(size)
        f.seek(size // 2)
        f.write(b"MARK")


def make_elf(path, size):
    off = 0x1000
    ph = struct.pack("<IIQQQQQQ", 1, 0, off, 0x40000000, 0x40000000, size, size, 0)
    eh = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + b"\0" * 9, 4, 183, 1, 0,
                     64, 0, 0, 64, 56, 1, 64, 0, 0)
    with open(path, "wb") as f:
        f.write(eh + ph)
        f.truncate(off + size)
        f.seek(off + size // 2)
        f.write(b"MARK")


def bench(label, path, **kw):
    t0 = time.perf_counter()
    segs = load_memory(path, **kw)
    t1 = time.perf_counter()
    total = sum(len(s.data) for s in segs)
    print(f"{label:<28} {len(segs):3d} segment(s) {total / (1 << 20):10.1f} MiB  "
          f"load {1000 * (t1 - t0):8.2f} ms")
    return segs


def place_fixture(path, size, offset):
    """Write the fixture's guest pages into a sparse dump file: guest PA p at file offset
    offset + (p - RAM_BASE)."""
    with open(path, "r+b") as f:
        for seg in load_memory(FIXTURE):
            f.seek(offset + seg.pa - RAM_BASE)
            f.write(bytes(seg.data))


def bench_system(label, path, **kw):
    import json
    t0 = time.perf_counter()
    system, report = import_qemu(path, REGS, **kw)
    t1 = time.perf_counter()
    m = system.smmu("smmu0")
    ts = [t for t in json.load(open(TRANSLATIONS)) if t["still_mapped"]]
    bad = sum(1 for t in ts
              if m.translate(t["sid"], int(t["iova"], 16), access="write")["pa"] !=
              int(t["pa"], 16))
    t2 = time.perf_counter()
    verdict = "ok" if t1 - t0 < TARGET_S else f"OVER the {TARGET_S:.0f} s target"
    print(f"{label:<28} {report['bytes'] / (1 << 20):10.1f} MiB  import {1000 * (t1 - t0):8.2f} ms"
          f" ({verdict}); {len(report['streams'])} streams; {len(ts)} QEMU translations walked "
          f"in {1000 * (t2 - t1):.1f} ms, {bad} disagree")
    return t1 - t0, bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-gib", type=float, default=1.0)
    ap.add_argument("--dir", default=None)
    a = ap.parse_args()
    size = int(a.size_gib * (1 << 30)) & ~0xFFF
    with tempfile.TemporaryDirectory(dir=a.dir) as d:
        raw, elf = os.path.join(d, "mem.raw"), os.path.join(d, "mem.elf")
        make_raw(raw, size)
        make_elf(elf, size)
        (s,) = bench("sparse raw (pmemsave)", raw)
        assert bytes(s.data[size // 2:size // 2 + 4]) == b"MARK"
        (s,) = bench("sparse ELF core", elf)
        assert bytes(s.data[size // 2:size // 2 + 4]) == b"MARK"
        if os.path.exists(FIXTURE) and size >= 0x10000000:
            place_fixture(raw, size, 0)
            place_fixture(elf, size, 0x1000)
            results = [bench_system("import raw as System", raw),
                       bench_system("import ELF as System", elf)]
    if os.path.exists(FIXTURE):
        bench("QEMU fixture (.xz)", FIXTURE)
        bench_system("import fixture as System", FIXTURE)
        if size >= 0x10000000 and any(t >= TARGET_S or bad for t, bad in results):
            sys.exit(1)


if __name__ == "__main__":
    main()
