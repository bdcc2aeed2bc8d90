"""Attach figures on the live fixture (scripts/attach_fixture: run prepare.sh first).

Boots the fixture guest, attaches to it and prints: boot time to the guest's first DMA, attach
time, one register read over QMP (HMP xp), a command on the live view (registers read again
before it), snapshot pauses (how long the VM is stopped) and snapshot cost in new pages, and a
watch poll.

    python benchmarks/bench_attach.py [--snapshots N]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time

from smmudbg.session import Session

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _boot_module():
    spec = importlib.util.spec_from_file_location(
        "attach_boot", os.path.join(ROOT, "scripts", "attach_fixture", "boot.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def ms(xs):
    return (f"min {min(xs):.1f} ms, median {statistics.median(xs):.1f} ms, "
            f"max {max(xs):.1f} ms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--snapshots", type=int, default=20)
    a = ap.parse_args()
    boot = _boot_module()
    why = boot.available()
    if why:
        raise SystemExit(why)
    vm = boot.boot(name="smmudbg-attach-bench")
    try:
        print(f"boot to the guest's first DMA: {vm.boot_s:.1f} s")
        s = Session()
        t = time.perf_counter()
        r = s.run(f"attach qemu {vm.qmp} ram={vm.ram}")
        print(f"attach: {(time.perf_counter() - t) * 1000:.1f} ms ({len(r.streams)} streams)")
        att = s.attach_state.att
        xs = []
        for _ in range(50):
            t = time.perf_counter()
            att.read_regs(("SMMU_CR0",))
            xs.append((time.perf_counter() - t) * 1000)
        print(f"one register (xp over QMP): {ms(xs)}")
        xs = []
        for _ in range(20):
            t = time.perf_counter()
            s.run("ste smmu0 0x8")
            xs.append((time.perf_counter() - t) * 1000)
        print(f"`ste` on the live view (registers read first): {ms(xs)}")
        pauses, new = [], []
        for _ in range(a.snapshots):
            r = s.run("snapshot")
            pauses.append(r.pause_ms)
            new.append(r.new_pages)
            s.run("view live")
            time.sleep(0.1)
        print(f"snapshot pause ({a.snapshots}, VM running): {ms(pauses)}; pages "
              f"{r.pages}, new pages per snapshot after the first: median "
              f"{statistics.median(new[1:]) if len(new) > 1 else new[0]}")
        w = s.run("watch 3 interval=20")
        print(f"watch 3 s: {w.polls} polls, {len(w.commands)} commands, {len(w.changes)} "
              f"stream changes")
        s.run("detach")
    finally:
        vm.stop()


if __name__ == "__main__":
    main()
