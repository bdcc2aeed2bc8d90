"""find over a whole stream table (examples/large-system.toml: 65,536 streams per SMMU) reads
every STE and single CD in the core and asks each distinct configuration once
(model/find.Finder.stream_groups). The rows must be those each stream gives alone (sid=N reads
the STE through the walker, one stream at a time), and those the scenario's text describes:
expected values are derived here from examples/large-system.toml's comments and entries
(vm0: IPA 0x4000_0000 -> PA 0x1_0000_0000; guest-dma0: IOVA 0x1000_0000 -> IPA 0x4100_0000;
vm0-s2: IPA 0x10_0000_0000 + k * 0x2000 -> PA 0x2_0000_0000 + k * 0x1000), not from the code.
A stream whose STE or CD differs from its neighbours' must not take their rows.
"""
import os

import pytest

from smmudbg.arch.fieldtable import fmt
from smmudbg.model.system import System

PATH = os.path.join(os.path.dirname(__file__), "..", "examples", "large-system.toml")
STE, CD = fmt("STE"), fmt("CD")
NESTED = range(0x0000, 0x4000)
S2 = range(0x4000, 0xC000)
S1 = range(0xC000, 0xF000)
BYPASS = range(0xF000, 0x10000)
SAMPLE = (0x0000, 0x0001, 0x0005, 0x2A2A, 0x3FFF, 0x4000, 0x7777, 0xBFFF, 0xC000, 0xEFFF,
          0xF000, 0xFFFF)


@pytest.fixture(scope="module")
def large():
    return System.from_file(PATH)


def rows(s, lo, end, sid=None, limit=200_000):
    r = s.find_mappings("pa", lo, end - lo, "smmu0", sid, None, limit)
    assert not r["truncated"]
    return r


def key(h):
    return (h["sid"], h["stage"], h["ssid"], h["iova"], h["size"], h["ipa"], h["pa"])


def by_sid(hits):
    out = {}
    for h in hits:
        out.setdefault(h["sid"], []).append(h)
    return out


def test_a_stage2_page_is_found_for_every_passthrough_and_bypass_stream(large):
    k = 5                                   # the 6th read-write page of vm0-s2
    pa, ipa = 0x2_0000_0000 + k * 0x1000, 0x10_0000_0000 + k * 0x2000
    r = rows(large, pa, pa + 0x1000)
    want = {(sid, "2", None, ipa, 0x1000, None, pa) for sid in S2} | \
        {(sid, "bypass", None, pa, 0x1000, None, pa) for sid in BYPASS}
    assert sorted(map(key, r["hits"])) == sorted(want)
    assert r["scanned"]["streams"] == 1 << 16      # every STE of smmu0 is valid and legal
    assert all(h["s2_perm"].startswith("rw") for h in r["hits"] if h["stage"] == "2")


def test_guest_ram_is_found_nested_through_stage2_and_bypass(large):
    pa = 0x1_0100_0000                      # vm0's IPA 0x4100_0000, guest-dma0's IOVA 0x1000_0000
    r = rows(large, pa, pa + 0x2000)
    want = {(sid, "nested", None, 0x1000_0000, 0x2000, 0x4100_0000, pa) for sid in NESTED} | \
        {(sid, "2", None, 0x4100_0000, 0x2000, None, pa) for sid in S2} | \
        {(sid, "bypass", None, pa, 0x2000, None, pa) for sid in BYPASS}
    assert sorted(map(key, r["hits"])) == sorted(want)


@pytest.mark.parametrize("pa,end", [(0x1_0100_0000, 0x1_0100_2000), (0x9000_0000, 0x9000_1000),
                                    (0x2_3200_3000, 0x2_3200_4000)])
def test_whole_table_rows_are_each_streams_own(large, pa, end):
    whole = by_sid(rows(large, pa, end)["hits"])
    for sid in SAMPLE:
        alone = rows(large, pa, end, sid=sid)
        assert alone["scanned"]["streams"] == 1
        assert whole.get(sid, []) == alone["hits"], hex(sid)


def test_a_stream_whose_ste_or_cd_differs_keeps_its_own_rows():
    s = System.from_file(PATH)
    m = s.smmu("smmu0")
    mem = s.mem
    # sid 5: its CD made invalid (CD.V=0): nested traffic faults, no rows.
    cd = m.cd_entry(5, 0)
    w = list(cd["words"])
    CD.field("V").put(w, 0)
    mem.write_u64(cd["pa"], w[0])
    # sid 9: its S1ContextPtr points at an IPA vm0-s2 does not map (the CD fetch faults).
    ste_pa = m.ste_location(9)
    w = m.ste_words(9)
    STE.field("S1ContextPtr").put(w, 0x7F_0000_0000 >> 6)
    mem.write_u64(ste_pa, w[0])
    # sid 0x4001: STE.V=0, not asked. sid 0xF001: Config=abort, not asked either.
    mem.write_u64(m.ste_location(0x4001), 0)
    w = m.ste_words(0xF001)
    STE.field("Config").put(w, 0)
    mem.write_u64(m.ste_location(0xF001), w[0])
    pa = 0x1_0100_0000
    r = rows(s, pa, pa + 0x1000)
    got = by_sid(r["hits"])
    assert 5 not in got and 9 not in got and 0x4001 not in got and 0xF001 not in got
    assert [h["stage"] for h in got[4]] == [h["stage"] for h in got[6]] == ["nested"]
    assert r["scanned"]["streams"] == (1 << 16) - 2
    for sid in (4, 5, 6, 9, 0x4001, 0xF001):
        assert got.get(sid, []) == rows(s, pa, pa + 0x1000, sid=sid)["hits"], hex(sid)


def test_limit_cuts_the_same_rows_as_one_stream_at_a_time(large):
    pa = 0x1_0100_0000
    r = large.find_mappings("pa", pa, 0x1000, "smmu0", None, None, 100)
    assert r["truncated"] and len(r["hits"]) == 100
    assert [h["sid"] for h in r["hits"]] == list(range(100))
    assert r["scanned"]["streams"] == 101
