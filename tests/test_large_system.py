"""examples/large-system.toml builds what its text describes (issue 12 item 9): 4 SMMUs, each a
2-level stream table of 65,536 valid STEs in the configurations the stream entries give, and
1,000,000 scattered stage-2 4 KiB pages. Expected values are derived here from the TOML text
(read with tomllib) and the architecture's arithmetic, not from the builder; the counts come
from reading the tables back (core scans), translations from the walker.
"""
import os
import tomllib

import numpy as np
import pytest

from smmudbg.errors import ScenarioError

from core_cy.scan import find_leaves
from smmudbg.arch.fieldtable import fmt
from smmudbg.model.system import StreamMap, System

PATH = os.path.join(os.path.dirname(__file__), "..", "examples", "large-system.toml")
CONFIG = fmt("STE").field("Config")
CONFIG_OF = {"abort": 0b000, "bypass": 0b100, "s1": 0b101, "s2": 0b110, "nested": 0b111}
PAGE = 0x1000


@pytest.fixture(scope="module")
def large():
    with open(PATH, "rb") as f:
        doc = tomllib.load(f)
    return doc, System.from_file(PATH)


def _doms(doc):
    return {d["name"]: d for d in doc["domain"]}


def test_four_smmus_with_every_streamid_valid(large):
    doc, s = large
    assert sorted(s.smmus) == [f"smmu{i}" for i in range(4)] == [x["name"] for x in doc["smmu"]]
    for x in doc["smmu"]:
        assert x["stream_table"] == {"format": "2lvl", "log2size": 16, "split": 8}
        m = s.smmu(x["name"])
        sids = m.valid_sids()                 # read back from the tables by the core's scan
        assert len(sids) == 1 << 16 and sids[0] == 0 and sids[-1] == 0xFFFF
    assert len(s.streams) == 4 << 16


def test_stream_count_per_smmu_from_the_ranges(large):
    # StreamMap.count (what `topology` reports) against the TOML's counts and the StreamIDs
    # the map iterates
    doc, s = large
    for x in doc["smmu"]:
        declared = sum(st.get("count", 1) for st in doc["stream"] if st["smmu"] == x["name"])
        assert s.streams.count(x["name"]) == declared == 1 << 16
        assert sum(1 for sm, _ in s.streams if sm == x["name"]) == declared
    assert s.streams.count("no-such-smmu") == 0


def test_stream_count_after_a_range_is_broken_up():
    # a stream set or deleted inside a range makes the range single entries
    m = StreamMap()
    m.add_range({"name": None, "smmu": "a", "sid": 0x10, "count": 0x100})
    m.add_range({"name": "one", "smmu": "b", "sid": 0x20, "count": 1})
    assert (m.count("a"), m.count("b")) == (0x100, 1)
    m[("a", 0x11)] = m[("a", 0x11)]
    assert (m.count("a"), m.count("b")) == (0x100, 1)
    del m[("a", 0x12)]
    assert (m.count("a"), m.count("b"), len(m)) == (0xFF, 1, 0x100)


def test_each_stream_entry_has_its_configuration(large):
    doc, s = large
    for st in doc["stream"]:
        m = s.smmu(st["smmu"])
        first, n = st["sid"], st.get("count", 1)
        for sid in (first, first + n // 2, first + n - 1):
            assert CONFIG.get(m.ste_words(sid)) == CONFIG_OF[st["config"]], (st, sid)


def test_one_million_scattered_stage2_pages(large):
    doc, s = large
    doms = _doms(doc)
    total = 0
    for st in (x for x in doc["stream"] if x["config"] == "s2"):
        d = doms[st["s2"]]
        want = sum(m["count"] for m in d["maps"] if m["size"] == PAGE)
        geo = s.smmu(st["smmu"]).stage_geometry(st["sid"], 2)
        hits, _, bad = find_leaves(s.mem, geo.scan_spec(),
                                   np.array([(0, (1 << 64) - 1, 0)], dtype=np.uint64))
        assert bad == 0
        pages = hits[hits[:, 5] == 3]                  # level-3 leaves: 4 KiB pages
        assert len(pages) == want                       # none merged: no two side by side
        assert int(pages[:, 1].sum()) == want * PAGE
        # The VM's RAM, mapped with 2 MiB blocks (level 2), and nothing else.
        vm = next(v for v in doc["vm"] if v["name"] == d["map_vm"])
        blocks = hits[hits[:, 5] == 2]
        assert int(blocks[:, 1].sum()) == sum(r["size"] for r in vm["ram"])
        assert len(hits) == len(pages) + len(blocks)
        total += want
    assert total == 1_000_000


def test_translations_derived_from_the_text(large):
    doc, s = large
    doms = _doms(doc)
    vms = {v["name"]: v for v in doc["vm"]}
    for st in doc["stream"]:
        w = s.smmu(st["smmu"]).walker
        sid = st["sid"] + st.get("count", 1) // 3
        if st["config"] == "s2":
            for m in doms[st["s2"]]["maps"]:
                for k in (0, m["count"] // 2 + 7, m["count"] - 1):
                    ipa = m["in"] + k * m["stride"] + 0x18
                    r = w.translate(sid, ipa)
                    assert r["pa"] == m["out"] + k * m["out_stride"] + 0x18
                    # Write permission as the entry's perm says.
                    r = w.translate(sid, ipa, write=True)
                    assert (r["fault"] is None) == ("w" in m["perm"])
                    # The page between two mappings is not mapped.
                    r = w.translate(sid, ipa + PAGE)
                    assert r["fault"]["type"] == "F_TRANSLATION"
        elif st["config"] == "nested":
            g = doms[st["cds"][0]["domain"]]["maps"][0]
            vm = vms[doms[st["s2"]]["map_vm"]]["ram"][0]
            iova = g["in"] + 0x12_3458
            ipa = g["out"] + 0x12_3458
            assert w.translate(sid, iova)["pa"] == vm["pa"] + ipa - vm["ipa"]
        elif st["config"] == "s1":
            h = doms[st["cds"][0]["domain"]]["maps"][0]
            assert w.translate(sid, h["in"] + 0x4_5678)["pa"] == h["out"] + 0x4_5678
        elif st["config"] == "bypass":
            assert w.translate(sid, 0x1234_5678)["pa"] == 0x1234_5678


# -- `maps` entries with count and stride (docs/scenario.md) ------------------------------------
MAPS = """[[ram]]
base = 0x4000_0000
size = 0x100_0000
[[smmu]]
name = "a"
pool = { base = 0x4000_0000, size = 0x80_0000 }
[[domain]]
name = "d"
smmu = "a"
stage = 2
maps = [
  { in = 0x1000_0000, out = 0x4080_0000, size = 0x1000, %s },
]
"""


def _load_maps(keys):
    return System.from_text(MAPS % keys, "t.toml")


def test_count_and_stride_map_each_page():
    tb = _load_maps("count = 3, stride = 0x3000").domain("d").tables
    # out_stride defaults to stride: the k-th page maps 0x1000_0000 + k*0x3000 to
    # 0x4080_0000 + k*0x3000; the pages between are not mapped.
    for k in range(3):
        level, _, d = tb.lookup(0x1000_0000 + k * 0x3000)
        assert level == 3 and d & 0xFFFF_FFFF_F000 == 0x4080_0000 + k * 0x3000
        assert tb.lookup(0x1000_1000 + k * 0x3000) is None
    assert tb.lookup(0x1000_9000) is None
    tb = _load_maps("count = 2, stride = 0x4000, out_stride = 0x1000").domain("d").tables
    assert tb.lookup(0x1000_4000)[2] & 0xFFFF_FFFF_F000 == 0x4080_1000


@pytest.mark.parametrize("keys,error", [
    ("count = 3, stride = 0x800",
     "domain[0].maps[0].stride: 0x800 is smaller than size 0x1000 (the mappings would overlap)"),
    ("count = 3, stride = 0x2000, out_stride = 0",
     "domain[0].maps[0].out_stride: 0 is smaller than size 0x1000 (the mappings would overlap)"),
    ("count = 0", "domain[0].maps[0].count: 0 is outside 1..0x400000 (mappings one entry makes)"),
    ("count = 0x400001", "domain[0].maps[0].count: 0x400001 is outside 1..0x400000"),
    ("stride = 'far'", "domain[0].maps[0].stride: expected a number, got 'far'"),
    ("count = 2, stride = 0xffff_ffff_ffff_f000",
     "domain[0].maps[0].stride: 2 mappings from 0x10000000 every 0xfffffffffffff000 wrap "
     "past 2^64"),
    ("colour = 1", "domain[0].maps[0]: unknown key 'colour'"),
])
def test_maps_errors_name_the_key_and_line(keys, error):
    with pytest.raises(ScenarioError) as e:
        _load_maps(keys)
    msg = str(e.value)
    # The entry's line; an unknown key, as everywhere, at the line of the array holding it.
    line = 11 if "unknown" in error else 12
    assert msg.startswith(f"t.toml:{line}: ") and error in msg, msg
    assert "\n" not in msg


def test_maps_beyond_the_input_range_is_one_line():
    with pytest.raises(ScenarioError) as e:
        _load_maps("count = 0x10_0000, stride = 0x100_0000")    # 2^20 x 16 MiB: past 2^40
    assert "exceed the 40-bit input range" in str(e.value) and "\n" not in str(e.value)


def test_mappings_are_bounded_per_scenario():
    two = "count = 0x300000, stride = 0x1000 },\n  { in = 0x1_0000_0000, out = 0, size = 0x1000, " \
          "count = 0x300000"
    with pytest.raises(ScenarioError) as e:
        _load_maps(two)
    assert "domain[0].maps[1].count: more than 4194304 mappings in one scenario" in str(e.value)
