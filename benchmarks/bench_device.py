"""SMMU device benchmark: IOTLB-hit translations/s (Walker.translate_batch on a warmed TLB),
commands processed/s (Smmu.submit through the modeled command queue), events written/s.
Prints the median of several runs of each."""
import statistics
import time

import numpy as np

from smmudbg.model.system import System

RUNS = 5


def median_rate(fn, runs=RUNS):
    rates = []
    for _ in range(runs):
        n, dt = fn()
        rates.append(n / dt)
    return statistics.median(rates)


def bench_tlb_hits(m):
    # nic0 (nested, 2MB blocks): 2 blocks -> every address below hits the IOTLB after warm-up.
    n = 2_000_000
    addrs = (0x1000_0000 + (np.arange(n, dtype=np.uint64) * 4096) % 0x20_0000).astype(np.uint64)
    sids = np.full(n, 8, dtype=np.uint32)
    out, fault, _ = m.walker.translate_batch(sids[:16], addrs[:16])     # warm
    assert not fault.any()

    def run():
        t = time.perf_counter()
        out, fault, _ = m.walker.translate_batch(sids, addrs)
        dt = time.perf_counter() - t
        assert not fault.any()
        return n, dt
    return median_rate(run)


def bench_commands(m):
    cmds = [("CMD_TLBI_NH_VA", {"VMID": 1, "ASID": 1, "Address": 0x10000}),
            ("CMD_CFGI_CD", {"StreamID": 8, "SubstreamID": 0, "Leaf": 1}),
            ("CMD_TLBI_S2_IPA", {"VMID": 1, "Address": 0x40000}),
            ("CMD_SYNC", {})] * 50

    def run():
        t = time.perf_counter()
        log = m.submit(cmds)
        dt = time.perf_counter() - t
        assert len(log) == len(cmds)
        return len(cmds), dt
    return median_rate(run)


def bench_events(m):
    n = 2000

    def run():
        t = time.perf_counter()
        for i in range(n):
            m.translate(0x302, i << 12)        # C_BAD_STE: one record each
            if i % 64 == 63:
                m.consume_events()
        dt = time.perf_counter() - t
        m.consume_events()
        return n, dt
    return median_rate(run)


def main():
    m = System.default().smmu()
    print(f"IOTLB-hit translations/s (translate_batch): {bench_tlb_hits(m):,.0f}")
    print(f"commands processed/s (submit + consume):   {bench_commands(m):,.0f}")
    print(f"events written/s (translate + record):      {bench_events(m):,.0f}")


if __name__ == "__main__":
    main()
