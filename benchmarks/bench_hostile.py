"""How long the hostile inputs of issue 15 take: the figures the tests (tests/test_hostile_*.py,
tests/test_fuzz_*.py) no longer assert, since a test checks behaviour and a hang, not speed.

Prints the median of --runs for: the issue's heaviest hostile command lines (in a fresh session
each run, in the order tests/test_hostile_commands.py runs them), the default scenario built with the largest
architected values (SIDSIZE 32 with a 2-level stream table of LOG2SIZE 32, SSIDSIZE 20 with a
2-level CD table of S1CDMax 20, 2^19-entry queues), and a QEMU import of 16 MiB of random bytes
read as a linear (LOG2SIZE 32) and as a 2-level (SPLIT 6) stream table.

    python benchmarks/bench_hostile.py [--runs 5]
"""
import argparse
import json
import os
import random
import statistics
import tempfile
import time

from smmudbg.arch.fieldtable import fmt
from smmudbg.importers.qemu import import_qemu
from smmudbg.model import scenario as sc
from smmudbg.model.system import System
from smmudbg.session import Session

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGS = os.path.join(ROOT, "tests", "fixtures", "qemu", "regs.json")
# (scenario edit, lines) as tests/test_hostile_commands.py runs them; each run a fresh session.
SIDSIZE32 = (("SIDSIZE = 16", "SIDSIZE = 32"),)
SEQUENCES = [
    ((), ["map vm0-s2 0x0 0x0 0x10000000000000000", "unmap vm0-s2 0x1000 0x8000000000000000"]),
    (SIDSIZE32, ["walk gpu0 0x40000000", "set reg smmu0 CR0 SMMUEN=0",
                 "set reg smmu0 STRTAB_BASE_CFG FMT=0 LOG2SIZE=32 SPLIT=0",
                 "set reg smmu0 CR0 SMMUEN=1", "set desc 0x40004008 stage=2 Valid=0",
                 "check", "tlb smmu0", "set reg smmu0 CR0 SMMUEN=0",
                 "set reg smmu0 STRTAB_BASE_CFG FMT=1 LOG2SIZE=32 SPLIT=6",
                 "set reg smmu0 CR0 SMMUEN=1", "check", "strtab smmu0"]),
]


def median_ms(fn, runs):
    xs = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        xs.append((time.perf_counter() - t) * 1000)
    return statistics.median(xs)


def largest_text():
    text = sc.builtin("default")
    for old, new in (("SSIDSIZE = 8, SIDSIZE = 16", "SSIDSIZE = 20, SIDSIZE = 32"),
                     ('format = "2lvl", log2size = 16, split = 8',
                      'format = "2lvl", log2size = 32, split = 10'),
                     ('cd_table = { format = "linear", s1cdmax = 2 }',
                      'cd_table = { format = "2lvl_64k", s1cdmax = 20 }'),
                     ("cmdq_log2size = 8\nevtq_log2size = 7",
                      "cmdq_log2size = 19\nevtq_log2size = 19"),
                     ("pool = { base = 0x4000_0000, size = 0x0100_0000 }",
                      "pool = { base = 0x4000_0000, size = 0x0800_0000 }")):
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def garbage_inputs(tmp, **cfg):
    """A register file whose stream table (at 0, SMMUEN 0) has the cfg fields, and 16 MiB of
    random bytes as the dump (as tests/test_hostile_inputs.py builds them)."""
    with open(REGS) as f:
        regs = json.load(f)
    idr1 = [int(regs["SMMU_IDR1"], 16)]
    fmt("SMMU_IDR1").field("SIDSIZE").put(idr1, 32)
    regs.update(SMMU_IDR1=hex(idr1[0]), SMMU_CR0="0x0", SMMU_STRTAB_BASE="0x0",
                SMMU_STRTAB_BASE_CFG=hex(fmt("SMMU_STRTAB_BASE_CFG").encode(**cfg)[0]))
    r, d = os.path.join(tmp, "regs.json"), os.path.join(tmp, "garbage.raw")
    with open(r, "w") as f:
        json.dump(regs, f)
    with open(d, "wb") as f:
        f.write(random.Random(15).randbytes(16 << 20))
    return d, r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    for edits, lines in SEQUENCES:
        text = sc.builtin("default")
        for old, new in edits:
            assert old in text, old
            text = text.replace(old, new, 1)
        times = [[] for _ in lines]
        for _ in range(a.runs):
            s = Session(text)
            for i, line in enumerate(lines):
                t = time.perf_counter()
                s.execute(line)
                times[i].append((time.perf_counter() - t) * 1000)
        for line, xs in zip(lines, times):
            print(f"{line:58s} {statistics.median(xs):9.1f} ms")
    text = largest_text()
    t = median_ms(lambda: System.from_text(text, "largest"), a.runs)
    print(f"{'largest architected values: build':58s} {t:9.1f} ms")
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        for what, cfg in (("linear, LOG2SIZE 32", dict(FMT=0, LOG2SIZE=32)),
                          ("2-level, LOG2SIZE 32, SPLIT 6", dict(FMT=1, LOG2SIZE=32, SPLIT=6))):
            d, r = garbage_inputs(tmp, **cfg)
            t = median_ms(lambda: import_qemu(d, r, ram_base=0), a.runs)
            print(f"{'import of 16 MiB garbage, ' + what:58s} {t:9.1f} ms")


if __name__ == "__main__":
    main()
