"""diff: two states that differ in known ways (issue 14, item 4). Expected values come from the
scenario (the default one's maps) and from the fixture (translations.json, README), not from
the code under test."""
from __future__ import annotations

import json
import lzma
import struct
from pathlib import Path

from smmudbg.render import render_text
from smmudbg.session import Session

FIXTURE = Path(__file__).parent / "fixtures" / "qemu"
MEM = FIXTURE / "memory.elf.xz"
REGS = FIXTURE / "regs.json"

# default scenario: nic0 (SID 8) CD 0 is nic0-dma, which maps 0x20000000 -> 0x43000000 (16K,
# read-only); gpu0 (SID 0x200) uses vm0-s2, VMID 1.
CHANGES = ["map nic0-dma 0x30000000 0x42000000 64K perm=rw",
           "inject unmap nic0-dma 0x20000000",
           "set ste gpu0 S2VMID=3",
           "walk nic0 0x90000000"]          # nothing mapped: F_TRANSLATION, one event


def changed_session():
    s = Session()
    s.run("walk nic0 0x10000000")
    for line in CHANGES:
        s.run(line)
    return s


def check_known_changes(d, a_label, b_label):
    assert d["from"] == a_label and d["to"] == b_label and d["identical"] is False
    m = d["smmus"][0]
    assert m["smmu"] == "smmu0" and m["only"] is None
    assert m["stes"] == [{"sid": 0x200, "change": "changed",
                          "fields": [{"field": "S2VMID", "a": 1, "b": 3}]}]
    assert m["cds"] == []
    maps = [(r["sid"], r["ssid"], r["stage"], r["change"], r["in"], r["end"], r["a_out"],
             r["b_out"]) for r in m["mappings"]]
    assert maps == [(0x8, 0, 1, "removed", 0x20000000, 0x20000FFF, 0x43000000, None),
                    (0x8, 0, 1, "added", 0x30000000, 0x3000FFFF, None, 0x42000000)]
    added = m["mappings"][1]
    assert added["b_perm"].startswith("rw")
    assert m["registers"] == [{"name": "SMMU_EVENTQ_PROD", "a": 0, "b": 1}]
    assert m["queues"]["eventq"] == {"a": {"prod": 0, "cons": 0}, "b": {"prod": 1, "cons": 0}}
    assert m["queues"]["cmdq"]["a"] == m["queues"]["cmdq"]["b"]
    ev = m["events"]
    assert [(e["index"], e["event"], e["sid"], e["fields"]["InputAddr"]) for e in ev] == \
        [(0, "F_TRANSLATION", 0x8, 0x90000000)]


def test_diff_with_a_session_position():
    s = changed_session()
    before = s.system
    d = s.run("diff @1").data          # after the first walk, before the changes
    check_known_changes(d, "@1", "now")
    assert s.system is before and s.position == len(s.log)   # this session is not changed
    assert s.run(f"diff @{len(s.log) - 1}").data["identical"] is True  # diff is not logged
    # as a table and as JSON
    text = render_text(s.run("diff @1"), width=None)
    assert "0x20000000-0x20000fff" in text and "S2VMID 0x1 -> 0x3" in text
    assert json.loads(json.dumps(s.last.result.to_json()))["kind"] == "diff"


def test_diff_with_a_saved_session(tmp_path):
    s = changed_session()
    p = tmp_path / "later.json"
    s.save(str(p))
    fresh = Session()
    fresh.run("walk nic0 0x10000000")
    d = fresh.run(f"diff {p}").data
    check_known_changes(d, "now", str(p))


def test_diff_position_out_of_range_and_nothing_to_compare():
    s = Session()
    assert "outside the log" in s.execute("diff @3").error
    assert "compare with what" in s.execute("diff").error
    assert s.run("diff @0").data["identical"] is True


# ---------------------------------------------------------------------------------------------
# two dumps of the guest
# ---------------------------------------------------------------------------------------------
def patched_elf(tmp_path, patches: dict[int, bytes]) -> Path:
    """The fixture's ELF with bytes replaced at guest PAs (a 'later dump')."""
    elf = bytearray(lzma.decompress(MEM.read_bytes()))
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for pa, data in patches.items():
        for i in range(phnum):
            p_type, _, off, _, paddr, filesz, _, _ = struct.unpack_from(
                "<IIQQQQQQ", elf, phoff + i * phentsize)
            if p_type == 1 and paddr <= pa and pa + len(data) <= paddr + filesz:
                elf[off + pa - paddr:off + pa - paddr + len(data)] = data
                break
        else:
            raise AssertionError(f"{pa:#x} is not stored in the ELF")
    out = tmp_path / "later.elf"
    out.write_bytes(bytes(elf))
    return out


def test_diff_two_dumps(tmp_path):
    # The later dump: one still-mapped page of SID 0x100 unmapped (its leaf zeroed), and two
    # more commands consumed (CMDQ PROD/CONS 0x1c0 -> 0x1c2).
    t = next(x for x in json.loads((FIXTURE / "translations.json").read_text())
             if x["sid"] == 0x100 and x["still_mapped"])
    iova, pa = int(t["iova"], 16) & ~0xFFF, int(t["pa"], 16) & ~0xFFF
    s = Session()
    s.run(f"import qemu {MEM} --regs {REGS}")
    leaf = s.run(f"pt smmu0 0x100 addr={iova:#x}").data["leaf"]   # where the leaf is
    assert leaf["size"] == 0x1000
    later = patched_elf(tmp_path, {leaf["desc_pa"]: bytes(8)})
    regs = json.loads(REGS.read_text())
    regs.update(SMMU_CMDQ_PROD="0x1c2", SMMU_CMDQ_CONS="0x1c2")
    (tmp_path / "regs.json").write_text(json.dumps(regs))
    d = s.run(f"diff import qemu {later} --regs {tmp_path / 'regs.json'}").data
    assert d["from"] == "now" and d["to"] == str(later)
    m = d["smmus"][0]
    # 0x10 and 0x100 share the tables (README): both lose the page; 0x8 is untouched
    assert [(r["sid"], r["change"], r["in"], r["end"], r["a_out"], r["b_out"])
            for r in m["mappings"]] == [(0x10, "removed", iova, iova + 0xFFF, pa, None),
                                        (0x100, "removed", iova, iova + 0xFFF, pa, None)]
    assert m["stes"] == [] and m["cds"] == [] and m["events"] == []
    assert m["registers"] == [{"name": "SMMU_CMDQ_PROD", "a": 0x1C0, "b": 0x1C2},
                              {"name": "SMMU_CMDQ_CONS", "a": 0x1C0, "b": 0x1C2}]
    assert m["queues"]["cmdq"]["b"] == {"prod": 0x1C2, "cons": 0x1C2}
    assert s.system.name == "qemu:memory.elf.xz"        # the session still has the first


def test_range_diff_merges_and_splits():
    from smmudbg.model.diff import range_diff
    a = [(0x0, 0x1FFF, 0x1000, "rw"), (0x4000, 0x4FFF, 0x9000, "r")]
    b = [(0x0, 0x0FFF, 0x1000, "rw"), (0x1000, 0x1FFF, 0x7000, "rw"),
         (0x4000, 0x5FFF, 0x9000, "r")]
    assert range_diff(a, b) == [
        {"change": "changed", "in": 0x1000, "end": 0x1FFF, "a_out": 0x2000, "b_out": 0x7000,
         "a_perm": "rw", "b_perm": "rw"},
        {"change": "added", "in": 0x5000, "end": 0x5FFF, "a_out": None, "b_out": 0xA000,
         "a_perm": None, "b_perm": "r"}]


def test_diff_argument_forms_and_errors():
    # The forms `diff` takes besides @N/FILE/import (issue 17 folds attach-diff into it).
    s = Session()
    assert s.execute("map nic0-dma 0x50000000 0x42000000 4K").ok
    assert s.run("diff @0 now").from_ == "@0" and not s.run("diff @0 now").identical
    assert s.run("diff now @0").to == "@0"
    for line, msg in [("diff live", "not attached"), ("diff s1", "neither @N"),
                      ("diff @0 now now", "one state or two")]:
        out = s.execute(line)
        assert not out.ok and msg in out.error and "\n" not in out.error, (line, out.error)
