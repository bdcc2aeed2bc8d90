"""A VT-d unit in the system model: the [[vtd]] scenario tables, examples/vtd-nested.toml, and
the commands (walk, context, pasid, events) picking VT-d from the target.

Expected addresses are derived by hand from the scenario text: vm0's RAM is GPA 0 -> PA
0x6000_0000; guest-fs maps VA 0x7F00_0000_0000 -> GPA 0x0200_0000 (64 KiB, rw), VA
0x7F00_0001_0000 -> GPA 0x0300_0000 (4 KiB, r) and VA 0x7F00_0020_0000 -> GPA 0x0400_0000
(2 MiB, rw); its tables are allocated from GPA 0x0100_0000; host-dma maps IOVA 0x1000_0000 ->
PA 0x5000_0000 (128 KiB). Fault reason codes are the spec's (VT-d 7.1.3).
"""
import pathlib

import pytest

from smmudbg.errors import ScenarioError
from smmudbg.model import scenario as sc
from smmudbg.session import Session

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "vtd-nested.toml"
TEXT = EXAMPLE.read_text()


@pytest.fixture
def s():
    return Session(TEXT, str(EXAMPLE))


def run(s, line):
    o = s.execute(line)
    assert o.error is None, o.error
    return o.result.to_json()


def test_nested_walk_through_both_stages(s):
    r = run(s, "walk nic0 0x7f0000001234")
    assert r["kind"] == "vtd-walk"
    assert (r["outcome"], r["pa"], r["gpa"], r["pgtt"], r["did"], r["pasid_used"], r["perm"]) \
        == ("translated", 0x6000_0000 + 0x0200_1234, 0x0200_1234, "nested", 2, 0, "rw-")
    what = [s_["what"] for s_ in r["steps"]]
    assert what[:4] == ["root", "context", "pasid_dir", "pasid_entry"]
    fs = [x for x in r["steps"] if x["what"] == "fs"]
    assert [x["level"] for x in fs] == [4, 3, 2, 1]
    # Each first-stage entry was read at its GPA (in the guest-fs pool) through vm0-s2.
    assert all(0x0100_0000 <= x["desc_gpa"] < 0x0110_0000 for x in fs)
    assert all(x["desc_pa"] == x["desc_gpa"] + 0x6000_0000 for x in fs)
    # Before each first-stage entry, second-stage steps translating its table (fs_table).
    i = what.index("fs")
    assert r["steps"][i - 1]["what"] == "ss" and r["steps"][i - 1]["purpose"] == "fs_table"
    # After the last first-stage entry, the output GPA's second-stage walk.
    assert r["steps"][-1]["what"] == "ss" and r["steps"][-1]["purpose"] == "input"


def test_requester_upper_half_pasid_and_second_stage(s):
    # A 2 MiB first-stage page over vm0-s2's 2 MiB pages (PA 0x6000_0000 is 2 MiB but not
    # 1 GiB aligned): the translation is 2 MiB.
    r = run(s, "walk gpu0 0x7f0000200010 pasid=9 access=write")
    assert (r["pa"], r["size"], r["pasid_used"]) == (0x6400_0010, 0x20_0000, 9)
    root = r["steps"][0]
    assert root["desc_pa"] == root["table"] + 16 * 3 + 8              # bus 3, upper half
    r = run(s, "walk gpu0 0x1234")                                   # RID_PASID 0: SS only
    assert (r["pgtt"], r["pa"], r["did"]) == ("second_stage", 0x6000_1234, 1)
    r = run(s, "walk dmar0 0x0100 0x1001f000 access=write")          # nvme0 by unit and RID
    assert (r["device"], r["pa"], r["did"]) == ("nvme0", 0x5001_F000, 3)


def test_faults_have_their_reason_and_are_recorded(s):
    r = run(s, "walk gpu0 0x7f0000010000 pasid=9 access=write")     # guest page read-only
    assert (r["fault"]["reason"], r["fault"]["name"], r["fault_index"]) == (0x85, "SGN_6", 0)
    r = run(s, "walk nvme0 0x10020000")                              # past host-dma's 128 KiB
    assert r["fault"]["reason"] == 0x79                              # SSS.2: not present
    r = run(s, "walk nic0 0x1000 pasid=5")                          # nic0's PASID table: only 0
    assert r["fault"]["reason"] == 0x59                              # SPT.2
    r = run(s, "walk dmar0 0x0200 0x1000")                           # no root entry for bus 2
    assert r["fault"]["reason"] == 0x39                              # SRT.2
    dry = run(s, "walk nvme0 0x10020000 dry")
    assert dry["fault"]["reason"] == 0x79 and dry["fault_index"] is None
    ev = run(s, "events dmar0")
    assert [(f["index"], f["reason"], f["sid"], f["pasid"]) for f in ev["faults"]] == [
        (0, 0x85, 0x0390, 9), (1, 0x79, 0x0100, None), (2, 0x59, 0x0010, 5),
        (3, 0x39, 0x0200, None)]
    assert [f["index"] for f in run(s, "events dmar0 sid=0x100")["faults"]] == [1]
    assert [f["index"] for f in run(s, "events dmar0 type=srt_2")["faults"]] == [3]


def test_entry_views(s):
    c = run(s, "context gpu0")
    names = [e["name"] for e in c["entries"]]
    assert names == ["SM_ROOT_ENTRY", "SM_CONTEXT_ENTRY"]
    rows = {r["field"]: r["value"] for r in c["entries"][1]["rows"]}
    assert rows["P"] == 1 and rows["PASIDE"] == 1 and "RID_PASID" not in rows    # 0 not shown
    root_rows = {r["field"] for r in c["entries"][0]["rows"]}
    assert root_rows == {"UP", "UCTP"}                               # devfn 0x90: upper half
    p = run(s, "pasid gpu0 pasid=9")
    pe = {r["field"]: (r["value"], r["meaning"]) for r in p["entries"][1]["rows"]}
    assert pe["PGTT"] == (3, "nested") and pe["DID"][0] == 2 and pe["AW"] == (2, "48bit")
    assert pe["FLPTPTR"][0] == 0x0100_0000 >> 12                     # guest-fs root: a GPA
    assert pe["SRE"][0] == 1
    p = run(s, "pasid nic0 pasid=3")
    assert p["fault"]["name"] == "SPT_2" and len(p["entries"]) == 2


def test_commands_pick_the_architecture_from_the_target(s):
    for line, err in (("ste nic0", "dmar0"), ("context dmar0 0x10000", "16-bit requester ID"),
                      ("walk nic0 0x1000 access=exec", "need a PASID")):
        o = s.execute(line)
        assert o.error and err in o.error, (line, o.error)
    # The SMMUv3 default scenario walks as before.
    d = Session()
    assert run(d, "walk nic0 0x20000123")["kind"] == "walk"
    o = d.execute("context nic0")
    assert o.error and "not a VT-d unit" in o.error


BASE = """
[[ram]]
base = 0x4000_0000
size = 0x1000_0000
[[vtd]]
name = "dmar0"
pool = { base = 0x4000_0000, size = 0x0100_0000 }
[[vtd_domain]]
name = "s2"
vtd = "dmar0"
stage = "second"
maps = [{ in = 0x0, out = 0x4800_0000, size = 0x1000 }]
"""


@pytest.mark.parametrize("tail, message", [
    ('[[vtd_device]]\nname = "d"\nvtd = "dmar0"\nrid = 0x10\n'
     'pasids = [{ pasid = 0, pgtt = "nested", fs = "s2", ss = "s2" }]',
     ":17: vtd_device[0].pasids[0].fs: s2 is not a first-stage table"),
    ('[[vtd_device]]\nname = "d"\nvtd = "dmar1"\nrid = 0x10',
     ":15: vtd_device[0].vtd: 'dmar1' is not a declared vtd unit"),
    ('[[vtd_device]]\nname = "d"\nvtd = "dmar0"\nrid = 0x10000',
     ":16: vtd_device[0].rid: 0x10000 is outside 0..0xffff"),
    ('[[vtd_domain]]\nname = "f"\nvtd = "dmar0"\nstage = "first"\nlevels = 3',
     ":17: vtd_domain[1].levels: 3 is not one of 4, 5 for a first-stage table"),
    ('[[vtd_device]]\nname = "d"\nvtd = "dmar0"\nrid = 0x10\n'
     'pasids = [{ pasid = 0, pgtt = "pass_through", ss = "s2" }]',
     "vtd_device[0].pasids[0].ss: PGTT pass_through uses no second-stage table"),
])
def test_scenario_errors_name_key_and_line(tail, message):
    with pytest.raises(ScenarioError) as e:
        sc.parse(BASE + tail, "t.toml")
    assert message in str(e.value), str(e.value)
    assert str(e.value).startswith("t.toml")


def test_features_are_cap_and_ecap_fields():
    with pytest.raises(ScenarioError, match=r"vtd\[0\]\.features: 'BOGUS' is not a CAP_REG"):
        sc.parse(BASE.replace('pool = {', 'features = { BOGUS = 1 }\npool = {'), "t.toml")
    # FL1GP=0: the builder maps no 1 GiB first-stage pages; NEST=0: a nested entry is refused.
    text = BASE.replace('pool = {', 'features = { NEST = 0 }\npool = {') + (
        '[[vtd_domain]]\nname = "f"\nvtd = "dmar0"\nstage = "first"\n'
        'maps = [{ in = 0x1000, out = 0x0, size = 0x1000 }]\n'
        '[[vtd_device]]\nname = "d"\nvtd = "dmar0"\nrid = 0x10\n'
        'pasids = [{ pasid = 0, pgtt = "nested", fs = "f", ss = "s2" }]\n')
    r = run(Session(text, "t.toml"), "walk d 0x1000")
    assert r["fault"]["reason"] == 0x5B                              # SPT.4: PGTT not supported


# -- interrupt remapping: nic0's irtes in the example: IRTE 0 vector 0x41 to xAPIC 0, fixed;
# IRTE 1 vector 0x42 to 1, logical, lowest priority; both verify the requester ID 0x0010.
def test_msi_through_the_irte(s):
    r = run(s, "msi nic0 1")
    assert r["kind"] == "vtd-msi"
    # Remappable format, handle 1, SHV=0: address 0xFEE00000 | 1 << 5 | IF (bit 4).
    assert (r["address"], r["format"], r["index"]) == (0xFEE0_0030, "remappable", 1)
    assert (r["vector"], r["dest"], r["dest_mode"], r["delivery"], r["trigger"]) == (
        0x42, 1, "logical", "lowest_priority", "edge")
    assert r["irte_pa"] == s.system.vtd("dmar0").irt + 16
    # The window is not translated by the DMA tables: a write without PASID is an interrupt.
    assert r["dma_walk"] == "interrupt"
    assert run(s, "walk nic0 0xfee00030 access=write")["outcome"] == "interrupt"
    assert run(s, "walk nic0 0xfee00030")["outcome"] == "blocked"


def test_msi_faults(s):
    r = run(s, "msi dmar0 0x0390 0xfee00010 data=0")       # gpu0 using nic0's IRTE 0
    assert (r["fault"]["reason"], r["fault_index"]) == (0x26, 0)     # source-ID verification
    r = run(s, "msi dmar0 0x0010 0xfee00050 data=0")       # IRTE 2: not present
    assert (r["fault"]["reason"], r["fault"]["fi"]) == (0x22, 2 << 48)
    r = run(s, "msi dmar0 0x0010 0xfee00018 data=0x1ff")    # SHV: 0 + 0x1ff > 255 entries
    assert r["fault"]["reason"] == 0x21
    r = run(s, "msi dmar0 0x0010 0xfee01000 data=0x41")     # compatibility format, CFIS=0
    assert (r["format"], r["fault"]["reason"]) == ("compatibility", 0x25)
    assert [f["reason"] for f in run(s, "events dmar0")["faults"]] == [0x26, 0x22, 0x21, 0x25]
    o = s.execute("msi dmar0 0x0010 0x1000 data=0")
    assert o.error and "interrupt address range" in o.error


def test_msi_dry_records_nothing_and_leaves_the_interrupt_entry_cache(s):
    r = run(s, "msi dmar0 0x0390 0xfee00010 data=0 dry")   # gpu0 using nic0's IRTE 0
    assert r["fault"]["reason"] == 0x26 and r["fault_index"] is None
    assert run(s, "events dmar0")["faults"] == []
    assert run(s, "cfgcache dmar0")["iec"] == []
    ok = run(s, "msi nic0 0 dry")
    assert ok["vector"] == 0x41 and not ok["iec_hit"]
    assert run(s, "cfgcache dmar0")["iec"] == []            # a dry look caches no IRTE


def test_compatibility_format_when_allowed():
    text = TEXT.replace('haw = 46 ', 'compat_interrupts = true\nhaw = 46 ')
    r = run(Session(text, "t.toml"), "msi dmar0 0x0010 0xfee05004 data=0x4041")
    # Compatibility format: DEST = address[19:12] = 5, DM = bit 2 (logical), vector 0x41,
    # DLM = data[10:8] = 0 (fixed), TM = data[15] = 0... data 0x4041 has bit 14 (level assert).
    assert (r["ok"], r["remapped"], r["vector"], r["dest"], r["dest_mode"]) == (
        True, False, 0x41, 5, "logical")
