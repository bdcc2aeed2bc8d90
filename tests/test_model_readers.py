"""The model's inspection methods read with the core's readers (Walker.read_ste / read_cd /
translate(dry=True)) and change nothing; the stream table is where IHI 0070 places it
(3.3.2, 5.1, 6.3.24/25); event records hold FetchAddr[55:3] (7.3). Expected values are written
out here from the spec, not taken from the code."""
import struct

import pytest

from core_cy.physmem import PhysMem
from smmudbg.arch.fieldtable import fmt
from smmudbg.errors import ModelError
from smmudbg.model.smmu import Smmu
from smmudbg.model.system import System
from test_device import FEATURE_SYS      # PRI=1, STALL_MODEL=0, RIL=1 (default)

STE = fmt("STE")
RAM = 0x4000_0000


def two_level():
    mem = PhysMem(strict=True)
    mem.ram(RAM, 0x10_0000)
    m = Smmu("s", mem, pool={"base": RAM, "size": 0x10_0000})
    base = m.setup_stream_table("2lvl", 16, split=8)
    return m, mem, base


def bypass_ste():
    return STE.encode(V=1, Config=0b100)            # 5.2: Config 0b100 = bypass


def test_ste_entry_two_level_reports_l2_array_and_index():
    m, mem, base = two_level()
    m.write_ste(0x1234, bypass_ste())
    # 3.3.2: L1STD number StreamID[15:SPLIT] (8 bytes each), then STE StreamID[SPLIT-1:0] of
    # the L2 array. 5.1: L1STD.Span [4:0], L2Ptr [55:6].
    l1pa = base + 8 * 0x12
    l1 = mem.read_u64(l1pa)
    assert l1 & 0x1F == 8 + 1                       # Span = SPLIT + 1: the whole L2 array
    l2 = l1 & ((1 << 56) - 1) & ~0x3F
    e = m.ste_entry(0x1234)
    assert (e["l1_pa"], e["l1"], e["table"], e["index"]) == (l1pa, l1, l2, 0x34)
    assert e["pa"] == l2 + 64 * 0x34 == m.ste_location(0x1234)
    assert e["words"] == bypass_ste() == m.ste_words(0x1234) and e["problem"] == ""
    assert m.walker.cached_stes() == []             # a look, not a fetch: nothing cached


def test_ste_entry_not_reached_is_one_line_error():
    m, _mem, _base = two_level()
    with pytest.raises(ModelError, match="StreamID 0x2000"):
        m.ste_entry(0x2000)                         # L1STD 0x20 has Span=0
    with pytest.raises(ModelError, match="StreamID 0x10000"):
        m.ste_words(0x1_0000)                       # beyond LOG2SIZE 16


def test_stream_table_entries_skip_uncovered_l1_blocks():
    m, _mem, _base = two_level()
    for sid in (0x5, 0x1234, 0x12FF, 0xFF00):
        m.write_ste(sid, bypass_ste())
    rows, more = m.stream_table_entries(0, 8)
    assert [r["sid"] for r in rows] == [0x5, 0x1234, 0x12FF, 0xFF00] and not more
    rows, more = m.stream_table_entries(0x6, 2)
    assert [r["sid"] for r in rows] == [0x1234, 0x12FF] and more


def test_strtab_base_is_the_effective_one():
    # 6.3.24: a linear table is aligned to its size (2^LOG2SIZE STEs of 64 bytes): the ADDR
    # bits below that are taken as zero. Software's stores and the SMMU's reads agree on it.
    mem = PhysMem(strict=True)
    mem.ram(RAM, 0x10_0000)
    m = Smmu("s", mem, pool={"base": RAM, "size": 0x10_0000})
    base = m.setup_stream_table("linear", 4)
    assert base % (16 * 64) == 0
    m.set_reg("STRTAB_BASE", base + 0x100)
    assert m.strtab["base"] == base
    m.write_ste(3, bypass_ste())
    assert m.ste_location(3) == base + 3 * 64
    assert mem.read_words(base + 3 * 64, 8) == bypass_ste() == m.ste_words(3)


def test_translate_dry_changes_nothing():
    m = System.default().smmu()
    before = (m.tlb_stats(), m.walker.cached_stes(), m.tlb_entries())
    r = m.translate_dry(0x8, 0x1000, 1)             # nic0: unmapped VA
    assert r["fault"]["type"] == "F_TRANSLATION" and r["event"] is None and r["steps"]
    ok = m.translate_dry(0x200, 0x4000_0000)        # gpu0: stage 2, vm0 RAM
    assert ok["fault"] is None and ok["pa"] == 0x6000_0000
    assert m.events() == []
    assert (m.tlb_stats(), m.walker.cached_stes(), m.tlb_entries()) == before
    assert m.translate(0x8, 0x1000, 1)["event"] == 0      # the same walk, not dry, records


def test_fetch_abort_record_holds_fetch_addr():
    # F_STE_FETCH (7.3.4): FetchAddr[55:3] in bits [55:3] of dword 3, the PA of the fetch.
    m, mem, base = two_level()
    m.setup_queues(2, 2)
    m.set_reg("CR0", 0b0101)                        # SMMUEN, EVENTQEN
    nowhere = 0x8000_0000                           # no memory there
    mem.write_u64(base + 8 * 0x3, (nowhere & ~0x3F) | 9)     # L2Ptr=nowhere, Span=9
    r = m.translate(0x345, 0)
    assert r["fault"]["type"] == "F_STE_FETCH" and r["event"] == 0
    dw = struct.unpack("<4Q", bytes.fromhex(m.events()[0]["raw"]))
    assert dw[0] & 0xFF == 0x03 and dw[0] >> 32 == 0x345
    assert dw[3] == nowhere + 64 * 0x45


@pytest.mark.parametrize("cmd,why", [
    # 4.5.2: CMD_PRI_RESP.Resp 0b11 is Reserved (CERROR_ILL).
    (("CMD_PRI_RESP", {"StreamID": 1, "Resp": 3}), "Resp=0b11"),
    # 4.4.1.1: SCALE bit 25 (the field's top bit) is RES0 unless IDR5.DS == 1.
    (("CMD_TLBI_NH_VAA", {"Address": 1, "TG": 1, "SCALE": 0x20}), "SCALE bit 25"),
])
def test_reserved_command_values(cmd, why):
    log = System.from_text(FEATURE_SYS).smmu().submit([cmd])
    assert log[-1]["error"] == "CERROR_ILL" and why in log[-1]["effect"]


def test_scale_below_bit_25_and_resp_success_are_legal():
    m = System.from_text(FEATURE_SYS).smmu()
    log = m.submit([("CMD_PRI_RESP", {"StreamID": 1, "Resp": 2}),
                    ("CMD_TLBI_NH_VAA", {"Address": 1, "TG": 1, "SCALE": 0x1F})])
    assert [r["error"] for r in log] == [None, None]
    # (0+1) x 2^31 x 4K from VA 0x1000 (4.4.1.1).
    assert f"range {0x1000:#x}..{0x1000 + (1 << 43) - 1:#x}" in log[1]["effect"]
