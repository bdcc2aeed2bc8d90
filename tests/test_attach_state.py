"""attach's reading of page tables from guest memory (smmudbg.attach.state) on hand-built
tables: stage 1 (TTB0, TTB1, APTable, reserved encodings) and a stage 2 with a concatenated
initial table.

The descriptors are written here from the Arm ARM VMSAv8-64 formats (D8.3: bits [1:0] 0b11
table/page, 0b01 block; next-level/output address [47:12]; stage 1 AP[2] bit 7 read-only,
APTable [62:61]; stage 2 S2AP [7:6] (bit 6 read, bit 7 write)), and the expected leaves derived
by hand from the level sizes (4 KiB granule: 1 GiB at level 1, 2 MiB at level 2, 4 KiB at level
3) and the stage-2 starting level rules (S2SL0=1 with a 4 KiB granule: level 1; an IAS of 40
bits then needs two concatenated level-1 tables, 1024 entries). The STE, CD and registers are
set up with the field tables (setup only); nothing expected is read from the code under test.
"""
from smmudbg.arch.fieldtable import fmt
from smmudbg.attach import state as S

STE, CD = fmt("STE"), fmt("CD")
STRTAB, CDADDR = 0x10000, 0x11000
TABLE, BLOCK, PAGE = 0b11, 0b01, 0b11
AF = 1 << 10
RO = 1 << 7                         # stage 1 AP[2]
GiB, MiB2, KiB4 = 1 << 30, 1 << 21, 1 << 12


class Mem:
    """Guest memory as {8-byte aligned address: descriptor}; reads of other words are 0."""

    def __init__(self):
        self.words: dict[int, int] = {}

    def put(self, addr, value):
        self.words[addr] = value

    def put_words(self, addr, words):
        for i, w in enumerate(words):
            self.words[addr + 8 * i] = w

    def read(self, pa, n):
        return b"".join(self.words.get(a, 0).to_bytes(8, "little") for a in range(pa, pa + n, 8))


def regs(**extra):
    r = {"SMMU_CR0": 1,                                    # SMMUEN
         "SMMU_STRTAB_BASE": STRTAB,                       # ADDR [55:6]
         "SMMU_STRTAB_BASE_CFG": 1,                        # linear, LOG2SIZE 1: SIDs 0..1
         "SMMU_IDR1": 1,                                   # SIDSIZE 1
         "SMMU_IDR5": 5}                                   # OAS 48 bits
    r.update(extra)
    return r


def s1_stream(mem, cd):
    mem.put_words(STRTAB, STE.encode(V=1, Config="s1_trans", S1ContextPtr=CDADDR >> 6))
    mem.put_words(CDADDR, cd)


def test_stage1_leaves_by_hand():
    mem = Mem()
    # T0SZ=25: 39-bit VA, 4 KiB granule: levels 1-3, level 1 at 0x20000.
    l1, l2, l3 = 0x20000, 0x21000, 0x22000
    mem.put(l1 + 0 * 8, l2 | TABLE)
    mem.put(l1 + 1 * 8, 0x8000_0000 | AF | RO | BLOCK)                    # 1 GiB, read-only
    mem.put(l1 + 2 * 8, 0x4000_0000 | AF | 1 << 62 | TABLE)              # APTable=0b10, below:
    mem.put(l2 + 3 * 8, 0x4020_0000 | AF | BLOCK)                        # 2 MiB block
    mem.put(l2 + 4 * 8, l3 | TABLE)
    mem.put(l3 + 0 * 8, 0x5000_0000 | AF | PAGE)
    mem.put(l3 + 1 * 8, 0x5000_1000 | AF | PAGE)
    mem.put(l3 + 2 * 8, 0x5000_2000 | AF | RO | PAGE)
    mem.put(l3 + 3 * 8, 0x5000_3000 | AF | BLOCK)                        # reserved at level 3
    mem.put(l3 + 4 * 8, 0x5000_4000 | AF | 0b10)                         # bit 0 clear: invalid
    # The table under l1[2] (at 0x40000000) holds one writable page, made read-only by
    # APTable[1] above it.
    mem.put(0x4000_0000 + 7 * 8, 0x6000_0000 | AF | TABLE)                # level 2: a table
    mem.put(0x6000_0000 + 9 * 8, 0x6100_0000 | AF | PAGE)                 # level 3: a page
    s1_stream(mem, CD.encode(V=1, AA64=1, T0SZ=25, TG0="4K", EPD1=1, IPS="48bit",
                             TTB0=l1 >> 4))
    streams = S.capture(S.Tracker(mem.read), regs())
    leaves = sorted((r["iova"], r["size"], r["pa"], r["perm"]) for r in streams[0].maps)
    assert leaves == sorted([
        (1 * GiB, GiB, 0x8000_0000, "r"),
        (3 * MiB2, MiB2, 0x4020_0000, "rw"),
        (4 * MiB2, 2 * KiB4, 0x5000_0000, "rw"),               # two pages merged
        (4 * MiB2 + 2 * KiB4, KiB4, 0x5000_2000, "r"),
        (2 * GiB + 7 * MiB2 + 9 * KiB4, KiB4, 0x6100_0000, "r"),
    ])
    assert streams[0].config == "s1_trans" and streams[0].problem is None


def test_tracker_records_every_table_page():
    mem = Mem()
    l2, l3 = 0x20000, 0x21000
    mem.put(l2, l3 | TABLE)
    mem.put(l3, 0x4000_0000 | AF | PAGE)
    # T0SZ=34: a 30-bit VA, levels 2 and 3.
    s1_stream(mem, CD.encode(V=1, AA64=1, T0SZ=34, TG0="4K", EPD1=1, IPS="48bit",
                             TTB0=l2 >> 4))
    t = S.Tracker(mem.read)
    (r,) = S.capture(t, regs())[0].maps
    assert (r["iova"], r["size"], r["pa"]) == (0, KiB4, 0x4000_0000)
    assert {STRTAB, CDADDR, l2, l3} <= t.pages


def test_ttb1_covers_the_top_of_the_va_space():
    mem = Mem()
    l1 = 0x30000
    mem.put(l1 + 511 * 8, 0xC000_0000 | AF | BLOCK)
    # TG1 encodes 4 KiB as 0b10; T1SZ=25: the top 2^39 bytes, starting at 2^64 - 2^39.
    s1_stream(mem, CD.encode(V=1, AA64=1, EPD0=1, T1SZ=25, TG1="4K", IPS="48bit",
                             TTB1=l1 >> 4))
    (r,) = S.capture(mem.read, regs())[0].maps
    assert (r["iova"], r["size"], r["pa"]) == ((1 << 64) - GiB, GiB, 0xC000_0000)


def test_level0_block_is_reserved_with_4k_granule():
    mem = Mem()
    l0 = 0x40000
    mem.put(l0 + 1 * 8, 0x80_0000_0000 | AF | BLOCK)             # a 512 GiB block: reserved
    mem.put(l0 + 2 * 8, 0x100_0000_0000 | AF | TABLE)            # a table (empty)
    s1_stream(mem, CD.encode(V=1, AA64=1, T0SZ=16, TG0="4K", EPD1=1, IPS="48bit",
                             TTB0=l0 >> 4))
    assert S.capture(mem.read, regs())[0].maps == []


def test_stage2_concatenated_initial_table_and_s2ap():
    mem = Mem()
    root = 0x50000                  # 8 KiB aligned: two concatenated level-1 tables
    mem.put(root + 600 * 8, 0x8000_0000 | AF | 0b11 << 6 | BLOCK)         # S2AP RW
    mem.put(root + 601 * 8, 0xC000_0000 | AF | 0b01 << 6 | BLOCK)         # S2AP RO
    mem.put_words(STRTAB, STE.encode(V=1, Config="s2_trans", S2T0SZ=24, S2SL0=1, S2TG="4K",
                                     S2PS="48bit", S2AA64=1, S2TTB=root >> 4))
    maps = S.capture(mem.read, regs())[0].maps
    assert [(r["iova"], r["size"], r["pa"], r["perm"]) for r in maps] == [
        (600 * GiB, GiB, 0x8000_0000, "rw"), (601 * GiB, GiB, 0xC000_0000, "r")]
