"""Command latency and replay speed.

REPL latency: dispatch through the registry (parse, run, log with digest) and rendering the
Result to a string, for `ste` and `walk` on examples/large.toml (65,536 streams sharing
domains). Target: < 20 ms median each.

Replay: a walk-heavy session (walks on many streams, with faults and invalidations among them)
re-run from its log on a fresh system with every result digest compared. Target: >= 5,000
commands/s. The time to build the system from the scenario is reported separately.

Time travel: `goto` to positions spread over that session (back and forth), from checkpoints.
Target: < 100 ms median. The walker caches are checkpointed through Walker.export_caches; a
walker without it (and caching on) cannot be checkpointed, so goto then rebuilds: the figure is
reported for the scenario as written and with caching off.

    python benchmarks/bench_commands.py [--quick]
"""
from __future__ import annotations

import os
import statistics
import sys
import time

from smmudbg.render import render_text
from smmudbg.session import Entry, Session

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def latency(s, lines, reps):
    ts = []
    for i in range(reps):
        line = lines[i % len(lines)]
        t = time.perf_counter()
        out = s.execute(line)
        assert out.ok, out.error
        render_text(out.result)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3, max(ts) * 1e3


def walk_session(s, n):
    lines = []
    for i in range(n):
        sid = (i * 7919) & 0xFFFF
        if sid < 0x8000:
            lines.append(f"walk smmu0 {sid:#x} {0x10000000 + (i % 4096) * 0x1000 + (i & 0xff):#x}")
        elif sid < 0xC000:
            lines.append(f"walk smmu0 {sid:#x} {0x40000000 + (i % 65536) * 0x1000:#x} "
                         f"access=write")
        else:
            lines.append(f"walk smmu0 {sid:#x} {0x80000000 + (i % 256) * 0x1000:#x}")
        if i % 500 == 250:
            lines.append("walk smmu0 0x10 0x30000000")                 # F_TRANSLATION
            lines.append("cmd smmu0 CMD_TLBI_S12_VMALL VMID=1")
    for line in lines:
        out = s.execute(line)
        assert out.ok, out.error
    return [Entry(e.command, e.digest, e.ok) for e in s.log]


def main():
    quick = "--quick" in sys.argv
    scenario = os.path.join(EXAMPLES, "large.toml")
    t = time.perf_counter()
    s = Session.from_file(scenario)
    build = time.perf_counter() - t
    print(f"large scenario: {len(s.system.streams)} streams, built in {build:.2f} s")
    reps = 50 if quick else 300
    ste_lines = [f"ste smmu0 {sid:#x}" for sid in (0x0, 0x1234, 0x8001, 0xc123, 0xfffe)]
    walk_lines = [f"walk smmu0 {sid:#x} {0x10000000 + sid * 0x1000:#x}"
                  for sid in (0x1, 0x77, 0x1234, 0x7ffe)] + ["walk hdev0 0x80000010"]
    med, worst = latency(s, ste_lines, reps)
    print(f"ste  latency (dispatch + render): median {med:.2f} ms  max {worst:.2f} ms  "
          f"(target < 20 ms)")
    med, worst = latency(s, walk_lines, reps)
    print(f"walk latency (dispatch + render): median {med:.2f} ms  max {worst:.2f} ms  "
          f"(target < 20 ms)")

    n = 2000 if quick else 20000
    rec = Session.from_file(scenario)
    entries = walk_session(rec, n)
    rates = []
    for _ in range(1 if quick else 3):
        fresh = Session.from_file(scenario)
        t = time.perf_counter()
        report = fresh.replay_log(entries)
        dt = time.perf_counter() - t
        assert report["identical"], report["diverged"]
        rates.append(len(entries) / dt)
    print(f"replay: {len(entries)} commands (walk-heavy), median "
          f"{statistics.median(rates):,.0f} commands/s (target >= 5,000; scenario build "
          f"{build:.2f} s not included)")

    with open(scenario, encoding="utf-8") as f:
        text = f.read()
    nocache = text.replace('pool = { base = 0x4000_0000, size = 0x0800_0000 }',
                           'pool = { base = 0x4000_0000, size = 0x0800_0000 }\ncaching = false', 1)
    assert nocache != text
    for label, body in (("as written", text), ("caching off", nocache)):
        s = Session(body, scenario)
        for e in entries:
            s.execute(e.command)
        length = len(s.log)
        targets = [length // 2, 10, length, length - 300, 1500, length // 3, length]
        if quick:
            targets = targets[:4]
        ts, ran = [], []
        for n in targets:
            t = time.perf_counter()
            ran.append(s.goto(n))
            ts.append(time.perf_counter() - t)
        print(f"goto ({label}, {len(s._checkpoints)} checkpoints): median "
              f"{statistics.median(ts) * 1e3:.1f} ms  max {max(ts) * 1e3:.1f} ms over "
              f"{len(ts)} jumps in {length} commands, re-ran median {statistics.median(ran):.0f} "
              f"commands (target < 100 ms)")


if __name__ == "__main__":
    main()
