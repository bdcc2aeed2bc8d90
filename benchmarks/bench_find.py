"""`find` on a large system: 1 GiB of guest RAM mapped page by page.

The system: one SMMU, a VM with 1 GiB of RAM (IPA 0x4000_0000 -> PA 0x1_0000_0000), its stage
2 mapping that RAM as 262,144 4 KiB pages (no blocks), and a nested device whose guest stage 1
maps --pages 4 KiB IOVA pages (default 1,048,576: 4 GiB of IOVA) onto that RAM in reverse
page order, wrapping around (so no two neighbouring IOVA pages are contiguous in IPA, and each
RAM page is mapped about four times): 1.3M leaf descriptors in all, plus a second nested
device sharing both trees (its scan is shared) and a stage-2-only device. Prints the time of
`find pa=` for one page, for a 2 MiB range, and `find ipa=` for one page (median of --runs),
through the command registry (the same path as the REPL), and the descriptors scanned.

Then `find` over the whole of examples/large-system.toml (4 SMMUs x 65,536 streams, every
STE valid): the whole PA and IPA space (the first 10,000 mappings), one PA nothing but the
bypass streams maps (every stream asked), and one stage-2 page of smmu0 (limit=100000, the
whole answer): the cost of asking every stream of a large stream table.

    python benchmarks/bench_find.py [--pages 1048576] [--runs 5] [--only large-system]
"""
import os
import argparse
import statistics
import time

from smmudbg.model.system import System
from smmudbg.session import Session

SCENARIO = """
name = "bench-find"
description = "1 GiB guest, page-granular stage 2 and nested stage 1"

[[ram]]
base = 0x4000_0000
size = 0x4000_0000

[[ram]]
base = 0x1_0000_0000
size = 0x4000_0000

[[smmu]]
name = "smmu0"
base = 0x0905_0000
stream_table = { format = "2lvl", log2size = 16, split = 8 }
pool = { base = 0x4000_0000, size = 0x1000_0000 }
[smmu.features]
S1P = 1
S2P = 1
CD2L = 1
ASID16 = 1
VMID16 = 1
XNX = 1
HAD = 1
ST_LEVEL = 1
COHACC = 1
STALL_MODEL = 1
GRAN4K = 1
SSIDSIZE = 8
SIDSIZE = 16
OAS = 5
TTENDIAN = 2
TTF = 2

[[vm]]
name = "vm0"
ram = [{ ipa = 0x4000_0000, pa = 0x1_0000_0000, size = 0x4000_0000 }]

[[domain]]
name = "vm0-s2"
smmu = "smmu0"
stage = 2
granule = 4096
ias = 40
vmid = 1
map_vm = "vm0"

[[domain]]
name = "guest-dma"
smmu = "smmu0"
stage = 1
granule = 4096
vabits = 48
asid = 1
vm = "vm0"
pool = { base = 0x4000_0000, size = 0x0100_0000 }

[[stream]]
name = "nic0"
smmu = "smmu0"
sid = 0x0008
config = "nested"
s2 = "vm0-s2"
cds = [{ ssid = 0, domain = "guest-dma" }]

[[stream]]
name = "nic1"
smmu = "smmu0"
sid = 0x0009
config = "nested"
s2 = "vm0-s2"
cds = [{ ssid = 0, domain = "guest-dma" }]

[[stream]]
name = "gpu0"
smmu = "smmu0"
sid = 0x0200
config = "s2"
s2 = "vm0-s2"
"""
GIB = 1 << 30
IPA, PA = 0x4000_0000, 0x1_0000_0000
IOVA = 0x10_0000_0000


def build(pages):
    t0 = time.perf_counter()
    s = System.from_text(SCENARIO, "bench_find")
    s2 = s.domains["vm0-s2"].tables
    # Stage 2: the guest's 1 GiB as 4 KiB pages (blocks=False: one leaf per page).
    s2.unmap(IPA, GIB)              # map_vm used 2 MiB blocks
    n2 = s2.map(IPA, PA, GIB, exec_=True, blocks=False)
    s1 = s.domains["guest-dma"].tables
    npages_ram = GIB >> 12
    # Stage 1 tables live in guest RAM at IPA 0x4000_0000.. (the domain's pool, 16 MiB); the
    # IOVA pages map the RAM above the pool in reverse order, wrapping around as needed.
    first = (0x4100_0000 - IPA) >> 12
    usable = npages_ram - first
    n1 = 0
    for i in range(pages):
        j = first + (usable - 1 - (i % usable))
        n1 += s1.map(IOVA + (i << 12), IPA + (j << 12), 4096, blocks=False)
    return s, n2, n1, time.perf_counter() - t0


def timed(sess, line, runs):
    times, r = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = sess.execute(line)
        times.append(time.perf_counter() - t0)
        assert out.ok, out.error
        r = out.result
    return statistics.median(times), r


LARGE_SYSTEM = os.path.join(os.path.dirname(__file__), "..", "examples", "large-system.toml")


def large_system(runs):
    with open(LARGE_SYSTEM) as f:
        sess = Session(f.read(), LARGE_SYSTEM)
    for line in ("find pa=0..0xffffffffffffffff", "find ipa=0..0xffffffffffffffff",
                 "find pa=0x1234", "find pa=0x2_0000_5000 smmu0 limit=100000"):
        t, r = timed(sess, line, runs)
        sc = r.scanned
        print(f"large-system: {line:42s} {t * 1e3:8.1f} ms  {len(r.hits):6d} hits  "
              f"{sc['streams']} streams, {sc['trees']} trees, {sc['descriptors']} descriptors")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=1 << 20, help="stage-1 4 KiB mappings")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", choices=["pages", "large-system"],
                    help="run one of the two systems only")
    a = ap.parse_args()
    if a.only != "pages":
        large_system(a.runs)
    if a.only == "large-system":
        return
    s, n2, n1, tb = build(a.pages)
    print(f"built: {n2} stage-2 + {n1} stage-1 4 KiB leaves ({n2 + n1} mappings) "
          f"in {tb:.1f} s")
    sess = Session(SCENARIO, "bench_find")
    sess.system = s             # the session's fresh system, with the mappings built above
    target_pa = PA + (npick := (GIB >> 12) // 2) * 4096
    for line in (f"find pa={target_pa:#x}", f"find pa={target_pa:#x}+2M",
                 f"find ipa={IPA + npick * 4096:#x} vm=vm0"):
        t, r = timed(sess, line, a.runs)
        sc = r.scanned
        print(f"{line:40s} {t * 1e3:8.1f} ms  {len(r.hits):5d} hits  "
              f"{sc['trees']} trees, {sc['descriptors']} descriptors scanned")


if __name__ == "__main__":
    main()
