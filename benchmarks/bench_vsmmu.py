"""The vSMMU trap-and-forward flow: how long the REPL takes for a guest command through the VMM
and iommufd to the physical SMMU, and to build a VM with an accelerated vSMMU.

- build: examples/vsmmu-vm.toml from its text (the guest's boot: 2 STEs installed through
  CMD_CFGI_STE -> nested HWPT -> host STE);
- vcmd CFGI_STE: a guest STE re-installed (read the guest STE, IOMMU_HWPT_ALLOC, attach: the
  host STE written, CFGI_STE + SYNC on smmu0, the old HWPT freed), rendered;
- vcmd TLBI: a guest CMD_TLBI_NH_VA forwarded by IOMMU_HWPT_INVALIDATE, rendered;
- vsmmu: the side-by-side view, rendered.
Target: < 20 ms median for each command (the REPL's latency target).

    python benchmarks/bench_vsmmu.py [--quick]
"""
from __future__ import annotations

import os
import statistics
import sys
import time

from smmudbg.render import render_text
from smmudbg.session import Session

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def timed(fn, reps):
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3, max(ts) * 1e3


def main():
    reps = 20 if "--quick" in sys.argv else 200
    text = open(os.path.join(EXAMPLES, "vsmmu-vm.toml")).read()
    med, worst = timed(lambda: Session(text, "bench"), max(3, reps // 20))
    print(f"build vsmmu-vm.toml:          median {med:7.2f} ms  max {worst:7.2f} ms")
    s = Session(text, "bench")

    def run(line):
        out = s.execute(line)
        assert out.ok, out.error
        render_text(out.result)

    for label, line in (("vcmd CMD_CFGI_STE", "vcmd vsmmu0 CMD_CFGI_STE StreamID=0x100 Leaf=1"),
                        ("vcmd CMD_TLBI_NH_VA", "vcmd vsmmu0 CMD_TLBI_NH_VA ASID=1 "
                                                "Addr=0x10000000"),
                        ("vsmmu", "vsmmu vm0")):
        med, worst = timed(lambda: run(line), reps)
        print(f"{label + ':':<29} median {med:7.2f} ms  max {worst:7.2f} ms  ({reps} runs)")


if __name__ == "__main__":
    main()
