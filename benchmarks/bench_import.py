#!/usr/bin/env python3
"""Time load_memory() on 1 GiB sparse dumps (raw pmemsave-style and ELF core), plus the
committed QEMU fixture. The loader mmaps the file, so load time must not depend on its size.

    python benchmarks/bench_import.py [--size-gib N] [--dir DIR]
"""
import argparse
import os
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from smmudbg.importers.qemu_dump import load_memory  # noqa: E402

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                       "qemu", "memory.elf.xz")


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
    if os.path.exists(FIXTURE):
        bench("QEMU fixture (.xz)", FIXTURE)


if __name__ == "__main__":
    main()
