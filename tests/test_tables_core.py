"""The core readers `pt` and `find` inspect tables with: descriptor decode and table geometry
(core_cy.vmsa), the IPA space of a stream's stage 2 (Walker.ipa_space).

Expected values come from the Arm ARM VMSAv8-64 descriptor formats (D8.3: bits[1:0] 0b11 is a
table at levels 0-2 and a page at level 3, 0b01 a block, reserved at level 3; the output address
is bits [47:n] with n the log2 of the size the level maps) and the walkkit's IPA->PA window.
"""
import pytest

from core_cy.vmsa import descriptor, region_bits, table_entries
from walkkit import GIPA, GPA, s1_kit, nested_kit

UPPER = 1 << 54              # an upper attribute (UXN/XN), never part of an address
AF = 1 << 10


def test_descriptor_kinds_and_addresses_4k():
    assert descriptor(0, 1, 12) == ("invalid", None)
    assert descriptor(0x1234_5000 | 3 | UPPER, 0, 12) == ("table", 0x1234_5000)
    assert descriptor(0x8000_1000 | 3 | AF, 3, 12) == ("page", 0x8000_1000)
    assert descriptor(0x8000_1000 | 1 | AF, 3, 12) == ("invalid", None)   # block at level 3
    # Level 1 maps 1 GiB, level 2 2 MiB: address bits below that size are not the output.
    assert descriptor(0x4000_0000 | 0x20_0000 | 1 | AF, 1, 12) == ("block", 0x4000_0000)
    assert descriptor(0x4020_0000 | 0x1000 | 1 | AF | UPPER, 2, 12) == ("block", 0x4020_0000)


def test_descriptor_next_table_is_granule_aligned():
    # 64K granule: the next-level table address is bits [47:16].
    assert descriptor(0x1_2345_0000 | 0x8000 | 3, 1, 16) == ("table", 0x1_2345_0000)
    # 16K: level 2 maps 32 MiB.
    assert descriptor(0x4200_0000 | 0x4000 | 1, 2, 14) == ("block", 0x4200_0000)


@pytest.mark.parametrize("g,level,bits", [(12, 3, 12), (12, 2, 21), (12, 1, 30), (12, 0, 39),
                                          (14, 3, 14), (14, 2, 25), (14, 1, 36),
                                          (16, 3, 16), (16, 2, 29), (16, 1, 42)])
def test_region_bits(g, level, bits):
    assert region_bits(g, level) == bits


def test_table_entries():
    assert table_entries(12, 0, 48, 0) == 512
    assert table_entries(12, 0, 48, 2) == 512
    assert table_entries(12, 1, 40, 1) == 1024       # two concatenated level-1 tables
    assert table_entries(12, 0, 39, 0) == 1          # 39-bit VA from level 0: one entry
    assert table_entries(14, 1, 47, 1) == 2048
    assert table_entries(16, 1, 42, 1) == 1          # 64K, 42 bits: one level-1 entry
    assert table_entries(16, 2, 42, 2) == 8192


def test_ipa_space_of_a_nested_stream_is_its_stage_2():
    k, s1, cd = nested_kit()
    a = k.walker.ipa_space(1)
    assert a.kind == "IPA"
    # walkkit's stage 2 maps the 256 MiB guest window GIPA -> GPA.
    assert a.translate(GIPA + 0x0234_5678) == GPA + 0x0234_5678
    assert a.read64(cd) == k.mem.read_u64(GPA + cd - GIPA)


def test_ipa_space_needs_a_stage_2():
    k, s1, cd = s1_kit()
    with pytest.raises(ValueError, match="has no stage 2"):
        k.walker.ipa_space(1)
    with pytest.raises(ValueError, match="StreamID 0x2"):
        k.walker.ipa_space(2)                         # V=0: not a legal STE to read through


def test_pt_follows_the_walker_on_what_a_cd_disables():
    """pt reads the geometry the walker uses: with CD.EPD0=1 there are no TTB0 walks, and a
    reserved CD.TG0 makes the CD illegal (C_BAD_CD): both are one-line errors naming the
    stream, not a dump of tables the SMMU would never walk."""
    from smmudbg.session import Session
    s = Session()
    assert s.execute("pt nic0").ok
    assert s.execute("set cd nic0 EPD0=1").ok
    out = s.execute("pt nic0")
    assert not out.ok and out.error.endswith(
        "StreamID 0x8 SubstreamID 0: TTB0 walks are disabled (CD.EPD0=1)")
    assert s.execute("set cd nic0 EPD0=0 TG0=3").ok
    out = s.execute("pt nic0")
    assert not out.ok and "has no usable stage 1" in out.error and "TG0" in out.error
    assert "\n" not in out.error


def test_blocks_where_the_granule_has_none_are_reserved():
    """Without LPA/LPA2 a 4K granule has blocks at levels 1-2 only, 16K and 64K at level 2
    only (Arm ARM D8.3): a block encoding above that translates nothing, for the walk, for
    descriptor() and for pt's table scan alike."""
    from core_cy.physmem import PhysMem
    from core_cy.ptbuild import scan_table
    assert descriptor(0x80_0000_0000 | 1 | AF, 0, 12) == ("invalid", None)
    assert descriptor(0x10_0000_0000 | 1 | AF, 1, 14) == ("invalid", None)
    assert descriptor(0x400_0000_0000 | 1 | AF, 1, 16) == ("invalid", None)
    mem = PhysMem()
    mem.ram(0, 0x10000)
    mem.write_u64(0x1000 + 1 * 8, 0x80_0000_0000 | 1 | AF)      # level 0: a 512 GiB "block"
    mem.write_u64(0x1000 + 2 * 8, 0x2000 | 3)                    # level 0: a table
    assert scan_table(mem, 0x1000, 512, 0, 12) == [("table", 2, 1, 0x2003)]
    mem.write_u64(0x2000 + 4 * 8, 0x1_0000_0000 | 1 | AF)        # level 1: a 1 GiB block
    assert scan_table(mem, 0x2000, 512, 1, 12) == [("block", 4, 1, 0x1_0000_0000 | 1 | AF)]
