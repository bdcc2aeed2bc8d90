"""Stream-table and CD-table geometry (smmudbg.arch.smmuv3.geometry) against IHI 0070.

Expected addresses are worked out by hand from the spec:
  * 3.3.2 / 6.3.24-25: a linear table holds 2^LOG2SIZE 64-byte STEs and is aligned to its size;
    a 2-level table has 2^(LOG2SIZE-SPLIT) 8-byte L1STDs (aligned to that size, at least 64
    bytes), StreamID[LOG2SIZE-1:SPLIT] indexes it and StreamID[SPLIT-1:0] the L2 array; SPLIT
    other than 6, 8, 10 behaves as 6; FMT 0b10/0b11 as linear; LOG2SIZE is capped by SIDSIZE.
  * 5.1: L1STD.Span 1..11 = 2^(Span-1) STEs at L2Ptr[55:6], aligned to the array size.
  * 3.3.3 / 5.2 / 5.3: S1Fmt 1 = 4KB leaves (64 CDs), 2 = 64KB leaves (1024 CDs); the L1CD
    table has 2^(S1CDMax - leaf bits) entries; L1CD.L2Ptr[55:12]; S1Fmt IGNORED when S1CDMax
    is 0; 0b11 reserved (linear).
"""
from smmudbg.arch.fieldtable import fmt
from smmudbg.arch.smmuv3.geometry import cd_geometry, cd_table, strtab_geometry


def test_linear_stream_table():
    g = strtab_geometry(0x4000_2040 | (1 << 62), 0, 0, 8)       # RA bit and low bits ignored
    assert (g.base, g.two_level, g.split, g.log2size) == (0x4000_0000, False, 0, 8)
    assert g.table_bytes == 256 * 64
    assert g.ste_addr(5) == 0x4000_0000 + 5 * 64
    assert g.in_range(255) and not g.in_range(256)


def test_linear_capped_by_sidsize_and_reserved_fmt():
    g = strtab_geometry(0x4000_0000, 2, 8, 12, sidsize=4)        # FMT 0b10: linear
    assert not g.two_level and g.log2size == 4 and not g.in_range(16)
    assert g.base == 0x4000_0000 and g.table_bytes == 16 * 64


def test_two_level_stream_table():
    g = strtab_geometry(0x4000_0A00, 1, 8, 16)
    # 2^(16-8) L1STDs of 8 bytes: 2 KB, so the base is 2 KB aligned.
    assert (g.base, g.split, g.n_l1, g.table_bytes) == (0x4000_0800, 8, 256, 2048)
    sid = 0x1234
    assert (g.l1_index(sid), g.l2_index(sid)) == (0x12, 0x34)
    assert g.l1_addr(sid) == 0x4000_0800 + 0x12 * 8
    l1 = fmt("L1STD").encode(Span=9, L2Ptr=0x5000_0040 >> 6)[0]
    # Span 9: 256 STEs = 16 KB, aligned: L2Ptr's low bits below 16 KB are ignored.
    assert g.l2_ste_addr(l1, sid) == 0x5000_0000 + 0x34 * 64
    assert list(g.l2_sids(0x12, l1)) == list(range(0x1200, 0x1300))
    small = fmt("L1STD").encode(Span=3, L2Ptr=0x5000_0000 >> 6)[0]
    assert g.l2_ste_addr(small, 0x1203) == 0x5000_0000 + 3 * 64
    assert g.l2_ste_addr(small, 0x1204) is None                   # beyond 2^(3-1) STEs
    for bad in (0, 10, 12):                                       # invalid; > SPLIT+1; reserved
        d = fmt("L1STD").encode(Span=bad, L2Ptr=0x5000_0000 >> 6)[0]
        assert g.l2_ste_addr(d, sid) is None and len(g.l2_sids(0x12, d)) == 0


def test_reserved_split_behaves_as_6():
    g = strtab_geometry(0x4000_0000, 1, 7, 10)
    assert g.split == 6 and g.n_l1 == 16 and g.l1_index(0x3C5) == 0xF


def test_cd_tables():
    lin = cd_table(0x6000_0000, 0, 4)
    assert not lin.two_level and lin.cd_addr(3) == 0x6000_0000 + 3 * 64
    assert lin.table_bytes == 16 * 64 and lin.in_range(15) and not lin.in_range(16)
    g4 = cd_table(0x6000_0000, 1, 10)
    assert (g4.leaf_bits, g4.n_l1, g4.table_bytes, g4.leaf_bytes) == (6, 16, 128, 4096)
    assert (g4.l1_index(0x85), g4.l2_index(0x85)) == (2, 5)
    assert g4.l1_addr(0x85) == 0x6000_0000 + 2 * 8
    l1 = fmt("L1CD").encode(V=1, L2Ptr=0x6000_3000 >> 12)[0]
    assert g4.l1cd(0x6000_3000) == l1
    assert g4.l2_cd_addr(l1, 0x85) == 0x6000_3000 + 5 * 64
    assert g4.l2_cd_addr(fmt("L1CD").encode(V=0, L2Ptr=0x60003)[0], 0x85) is None
    g64 = cd_table(0x6000_0000, 2, 12)
    assert (g64.leaf_bits, g64.n_l1, g64.l1_index(0x805), g64.l2_index(0x805)) == (10, 4, 2, 5)
    # S1Fmt is IGNORED with S1CDMax 0; 0b11 is reserved and behaves as linear.
    assert not cd_table(0x6000_0000, 1, 0).two_level
    assert not cd_table(0x6000_0000, 3, 5).two_level


def test_cd_geometry_from_ste():
    ste = fmt("STE").encode(V=1, Config=5, S1ContextPtr=0x6000_0040 >> 6, S1Fmt=2, S1CDMax=12)
    g = cd_geometry(ste)
    assert (g.base, g.two_level, g.leaf_bits, g.s1cdmax) == (0x6000_0040, True, 10, 12)
