"""`pt` and `find` on Intel VT-d: the tree scan through the core walker's reader
(core_cy.vtd.VtdWalker.lookup, one address at a time, skipping what a non-present entry
covers). Builds a scenario whose first stage maps N scattered 4 KiB pages (nested over a second
stage of 2 MiB leaves), then times `pt DEVICE` (stage 1), `pt DEVICE stage=nested` and
`find pa=` over the guest's RAM. Prints medians over several runs, and lookups per second.

    python benchmarks/bench_vtd_pt.py [--pages 2000] [--runs 5]
"""
import argparse
import statistics
import time

from smmudbg.session import Session


def scenario(pages: int) -> str:
    maps = ",\n".join(f"  {{ in = {0x7F00_0000_0000 + i * 0x20_0000 + 0x1000:#x}, out = "
                      f"{0x0200_0000 + i * 0x1000:#x}, size = 0x1000, perm = \"rw\" }}"
                      for i in range(pages))
    return f'''name = "bench-vtd-pt"
[[ram]]
base = 0x4000_0000
size = 0x8000_0000
[[vm]]
name = "vm0"
ram = [{{ ipa = 0x0, size = 0x2000_0000, pa = 0x6000_0000 }}]
[[vtd]]
name = "dmar0"
base = 0xFED9_0000
haw = 46
pool = {{ base = 0x4000_0000, size = 0x0100_0000 }}
[[vtd_domain]]
name = "s2"
vtd = "dmar0"
stage = "second"
levels = 4
did = 1
map_vm = "vm0"
perm = "rwx"
[[vtd_domain]]
name = "fs"
vtd = "dmar0"
stage = "first"
levels = 4
did = 2
vm = "vm0"
pool = {{ base = 0x0100_0000, size = 0x0100_0000 }}
maps = [
{maps}
]
[[vtd_device]]
name = "nic0"
vtd = "dmar0"
rid = 0x10
rid_pasid = 0
pasids = [{{ pasid = 0, pgtt = "nested", fs = "fs", ss = "s2" }}]
'''


def timed(s, line, runs):
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        o = s.execute(line)
        out.append(time.perf_counter() - t)
        assert o.ok, o.error
    return statistics.median(out), o.result.to_json()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    s = Session(scenario(a.pages), "bench")
    w = s.system.vtd("dmar0").walker
    for line in (f"pt nic0 limit={a.pages}", f"pt nic0 stage=nested limit={a.pages}",
                 "find pa=0x60000000+0x20000000 dmar0"):
        t, r = timed(s, line, a.runs)
        n = len(r.get("rows", r.get("hits", [])))
        print(f"{line:45s} median {t * 1e3:8.1f} ms  {n} rows")
    t0 = time.perf_counter()
    k = 100_000
    for i in range(k):
        w.lookup(0x10, 0x7F00_0000_1000 + (i % a.pages) * 0x20_0000, None, 1)
    dt = time.perf_counter() - t0
    print(f"VtdWalker.lookup (nested first stage, 4+4x3 reads): {k / dt / 1e3:.0f} k/s")


if __name__ == "__main__":
    main()
