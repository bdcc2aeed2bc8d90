"""The inspecting front ends on an Intel VT-d system (issue 16 item 7): `pt` through the walker's
reader, VT-d injections and what `check` then names, completion. Expected values come from the
scenario (examples/vtd-nested.toml: its maps and vm0's RAM window) and from the independent
reference walker (smmudbg/vtd_refwalk.py), never from the reader under test."""
from __future__ import annotations

from pathlib import Path

import pytest

from smmudbg import vtd_refwalk as ref
from smmudbg.completion import complete_line
from smmudbg.session import Session

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = (ROOT / "examples" / "vtd-nested.toml").read_text()
FIXTURE = ROOT / "tests" / "fixtures" / "qemu_vtd"
VM0_PA = 0x6000_0000              # vm0's GPA 0 (the scenario's [[vm]] ram window)


@pytest.fixture
def s():
    return Session(SCENARIO, "examples/vtd-nested.toml")


def run(s, line):
    out = s.execute(line)
    assert out.ok, (line, out.error)
    return out.result.to_json()


def refwalk(s, rid, addr, pasid=None, write=False):
    u = s.system.vtd("dmar0")
    regs = {k.upper() + "_REG": v for k, v in u.walker.registers.items() if k != "haw"}
    return ref.translate(ref.port(s.system.mem), ref.Unit.from_registers(regs, haw=u.haw), rid, addr,
                         pasid=pasid, write=write, apply_ad=False)


def test_pt_first_stage_lists_the_guest_maps(s):
    r = run(s, "pt nic0")
    assert r["kind"] == "vtd-pt" and r["stage"] == "1" and r["pgtt"] == "nested"
    assert r["levels"] == 4 and r["width"] == 48
    # guest-fs's three maps: 16 4K pages rw, one 4K page r, one 2M page rw (a PDE with PS=1)
    got = [(x["in"], x["size"], x["out"], x["entry"], x["perm"][:2]) for x in r["rows"]]
    assert got == [(0x7F00_0000_0000, 0x10000, 0x0200_0000, "FS_PTE", "rw"),
                   (0x7F00_0001_0000, 0x1000, 0x0300_0000, "FS_PTE", "r-"),
                   (0x7F00_0020_0000, 0x20_0000, 0x0400_0000, "FS_PDE_2M", "rw")]
    assert [x["leaves"] for x in r["rows"]] == [16, 1, 1]
    assert all(x["perm"][2] == "-" and x["perm"][3] == "u" for x in r["rows"])   # XD=1, U/S=1


def test_pt_second_stage_and_nested_agree_with_the_reference_walker(s):
    r = run(s, "pt nic0 stage=2")
    assert [(x["in"], x["size"], x["out"], x["entry"]) for x in r["rows"]] == \
        [(0, 0x2000_0000, VM0_PA, "SS_PDE_2M")]
    n = run(s, "pt nic0 stage=nested")
    assert n["stage"] == "nested" and len(n["rows"]) == 3
    for row in n["rows"]:
        assert row["pa"] == VM0_PA + row["gpa"]
        for off in (0, row["size"] - 8):
            t = refwalk(s, 0x10, row["in"] + off)
            assert t.ok and t.output == row["pa"] + off
        w = refwalk(s, 0x10, row["in"], write=True)
        assert w.ok == ("w" in row["perm"])


def test_pt_by_unit_and_rid_pasid_and_addr(s):
    assert run(s, "pt dmar0 0x100")["rows"][0]["out"] == 0x5000_0000       # nvme0: host-dma
    assert run(s, "pt gpu0")["stage"] == "2"                                # PASID 0: SS only
    assert run(s, "pt gpu0 pasid=9")["pgtt"] == "nested"
    lk = run(s, "pt nic0 addr=0x7f0000001234")
    assert lk["kind"] == "vtd-pt-lookup" and lk["out"] == 0x0200_1234
    fs = [x["entry"] for x in lk["steps"] if x["what"] == "fs"]
    assert fs == ["FS_PML4E", "FS_PDPE", "FS_PDE", "FS_PTE"]
    # every first-stage table fetch went through the second stage first (nested)
    assert sum(1 for x in lk["steps"] if x["purpose"] == "fs_table") == 4 * 3
    lk2 = run(s, "pt nvme0 addr=0x10001000")
    assert [x["entry"] for x in lk2["steps"]] == ["SS_PML4E", "SS_PDPE", "SS_PDE", "SS_PTE"]
    assert lk2["out"] == 0x5000_1000


def test_pt_refusals_are_one_line(s):
    for line, want in [("pt nvme0 stage=1", "no first-stage tables"),
                       ("pt dmar0 0x55", "SCT_2"), ("pt dmar0", "requester ID"),
                       ("pt gpu0 stage=nested", "not nested"),
                       ("pt nic0 stage=nested addr=0x1000", "addr=")]:
        out = s.execute(line)
        assert not out.ok and want in out.error and "\n" not in out.error, (line, out.error)


def test_pt_on_the_imported_guest_matches_the_reference_walker():
    s = Session()
    out = s.execute(f"import qemu {FIXTURE / 'memory.elf.xz'} --regs {FIXTURE / 'regs.json'}")
    assert out.ok, out.error
    u = s.system.vtd("dmar0")
    regs = {k.upper() + "_REG": v for k, v in u.walker.registers.items() if k != "haw"}
    unit = ref.Unit.from_registers(regs, haw=u.haw)
    seen = 0
    for rid in u.devices:
        r = run(s, f"pt dmar0 {rid:#x} limit=50")
        for row in r["rows"]:
            t = ref.translate(ref.port(s.system.mem), unit, rid, row["in"], apply_ad=False)
            assert t.ok and t.output == row["out"], (hex(rid), row)
            seen += 1
    assert seen > 0


# -- inject on VT-d ------------------------------------------------------------------------------
NIC_VA = 0x7F00_0000_1234          # guest-fs maps 0x7F00_0000_0000 -> GPA 0x0200_0000 (rw)
NIC_PA = VM0_PA + 0x0200_1234
P_IOTLB_FIX = "P_IOTLB_INV_DSC G=page DID=2 PASID=0 ADDR=0x7f0000001000 AM=0"


def test_clear_present_leaves_a_stale_iotlb_entry_that_check_names(s):
    assert run(s, f"walk nic0 {NIC_VA:#x}")["pa"] == NIC_PA
    r = run(s, f"inject clear-present nic0 {NIC_VA:#x}")
    assert r["kind"] == "vtd-inject" and r["entry"] == "FS_PTE" and r["what"] == "P=0"
    assert r["old"][0] & 1 == 1 and r["new"][0] == r["old"][0] & ~1
    assert s.system.mem.read_u64(r["addr"]) == r["new"][0]
    assert r["fault"]["name"] == "SFS_2" and r["cached"] and r["fix"] == "P_IOTLB_INV_DSC"
    # the IOTLB still answers; memory says not present
    again = run(s, f"walk nic0 {NIC_VA:#x}")
    assert again["pa"] == NIC_PA and again["fault"] is None
    assert run(s, f"walk nic0 {NIC_VA:#x} dry")["fault"]["name"] == "SFS_2"
    c = run(s, "check dmar0")
    fixes = [f for u in c["smmus"] for st in u["stale"] for f in st["fix_commands"]]
    assert fixes == [f"cmd dmar0 {P_IOTLB_FIX}"]
    # a dropped descriptor leaves it stale; the same descriptor again removes it
    run(s, "drop-invalidations dmar0 1")
    assert run(s, f"cmd dmar0 {P_IOTLB_FIX}")["log"][0]["removed"] == 0
    assert not run(s, "check dmar0")["clean"]
    assert run(s, f"cmd dmar0 {P_IOTLB_FIX}")["log"][0]["removed"] == 1
    w = run(s, f"walk nic0 {NIC_VA:#x}")
    assert w["fault"]["name"] == "SFS_2" and w["fault_index"] == 0
    assert run(s, "events dmar0")["faults"][0]["name"] == "SFS_2"


def test_clear_present_at_a_level_and_at_the_second_stage(s):
    r = run(s, "inject clear-present nvme0 0x10000000 level=2")       # host-dma: an SS_PDE
    assert r["entry"] == "SS_PDE" and r["what"] == "R=W=X=0" and r["new"][0] & 7 == 0
    assert run(s, "walk nvme0 0x10001000 dry")["fault"]["name"] == "SSS_2"
    r2 = run(s, "inject clear-present nic0 0x2000000 stage=2")         # vm0-s2's 2M leaf
    assert r2["entry"] == "SS_PDE_2M" and r2["fault"] is None
    # the nested walk's output GPA 0x2001234 now has no second-stage leaf
    assert run(s, f"walk nic0 {NIC_VA:#x} dry")["fault"]["name"] == "SSS_2"


def test_pasid_and_context_entry_injections(s):
    assert run(s, "walk gpu0 0x1000")["pa"] == VM0_PA + 0x1000
    r = run(s, "inject invalidate-pasid gpu0")
    assert r["entry"] == "PASID_ENTRY" and r["fault"]["name"] == "SPT_2" and r["cached"]
    assert run(s, "walk gpu0 0x1000")["fault"] is None              # the PASID-cache answers
    c = run(s, "check dmar0")
    fixes = [f for u in c["smmus"] for st in u["stale"] for f in st["fix_commands"]]
    assert "cmd dmar0 PC_INV_DSC G=pasid DID=1 PASID=0" in fixes
    run(s, "cmd dmar0 PC_INV_DSC G=pasid DID=1 PASID=0")
    run(s, "cmd dmar0 IOTLB_INV_DSC G=domain DID=1")
    assert run(s, "walk gpu0 0x1000")["fault"]["name"] == "SPT_2"
    r = run(s, "inject corrupt-context nvme0")
    assert r["entry"] == "SM_CONTEXT_ENTRY" and r["fault"]["name"] == "SCT_3"
    assert not r["cached"] and r["new"][0] ^ r["old"][0] == 1 << 5     # bit 5: reserved
    assert run(s, "walk nvme0 0x10000000")["fault"]["name"] == "SCT_3"
    r = run(s, "inject invalidate-context nic0")
    assert r["new"][0] == r["old"][0] & ~1 and r["fault"]["name"] == "SCT_2"
    r = run(s, "inject corrupt-pasid gpu0 pasid=9 dword=1 bit=16")
    assert r["new"][1] ^ r["old"][1] == 1 << 16


def test_vtd_injections_refuse_in_one_line(s):
    for line in ["inject clear-present nic0 0x1000", "inject clear-present nic0 0x7f0000001000 "
                 "level=5", "inject corrupt-context nic0 dword=4", "inject invalidate-pasid "
                 "gpu0 pasid=5", "inject invalidate-context dmar0 0x55",
                 "inject clear-present nvme0 0x10000000 stage=1"]:
        out = s.execute(line)
        assert not out.ok and out.error.startswith("inject ") and "\n" not in out.error, \
            (line, out.error)
    for name in ("clear-present", "invalidate-context", "corrupt-context", "invalidate-pasid",
                 "corrupt-pasid"):
        h = run(s, f"help inject {name}")
        assert "VT-d" in str(h)


def test_tlb_cfgcache_and_regs_on_a_vtd_unit(s):
    run(s, f"walk nic0 {NIC_VA:#x}")
    run(s, "walk gpu0 0x1000")
    t = run(s, "tlb dmar0")
    assert t["kind"] == "vtd-caches" and t["which"] == "tlb"
    name = {0x0010: "nic0", 0x0390: "gpu0"}                   # the scenario's requester IDs
    got = {(name[e["sid"]], e["in_base"], e["size"], e["out_base"], e["stale"])
           for e in t["iotlb"]}
    # nic0's nested 4K page; gpu0's second stage maps vm0's RAM with 2M pages
    assert got == {("nic0", 0x7F00_0000_1000, 0x1000, NIC_PA & ~0xFFF, False),
                   ("gpu0", 0, 0x20_0000, VM0_PA, False)}
    run(s, f"inject clear-present nic0 {NIC_VA:#x}")
    run(s, "inject invalidate-pasid gpu0")
    t = run(s, "tlb dmar0")
    assert {name[e["sid"]] for e in t["iotlb"] if e["stale"]} == {"nic0", "gpu0"}
    c = run(s, "cfgcache dmar0")
    assert {(name[e["sid"]], e["stale"]) for e in c["context"]} == {("nic0", False),
                                                                    ("gpu0", False)}
    assert {(name[e["sid"]], e["pasid"], e["stale"]) for e in c["pasid"]} == \
        {("nic0", 0, False), ("gpu0", 0, True)}
    r = run(s, "regs dmar0 GSTS")
    assert r["name"] == "GSTS_REG" and r["offset"] == 0x1C                 # VT-d 11.4.5
    f = {x["field"]: x["value"] for x in r["fields"]}
    assert f["TES"] == 1 and f["QIES"] == 1 and f["IRES"] == 1
    run(s, "cmd dmar0 INV_WAIT_DSC")
    assert run(s, "regs dmar0 IQT_REG")["value"] == 1 << 4     # QT: descriptor 1, bits 18:4
    assert not s.execute("tlb dmar0 vmid=1").ok
    assert not s.execute("regs dmar0 CR0").ok


def test_set_context_and_pasid_by_field_name(s):
    r = run(s, "set pasid gpu0 AW=3")        # 57-bit, 5 levels: not in the scenario's SAGAW
    assert r["what"] == "PASID_ENTRY" and not r["legal"] and r["problem"].startswith("SPT_4")
    assert r["new"][0] >> 2 & 7 == 3                       # AW is PASID entry bits 4:2 (9.6)
    r = run(s, "set context nic0 RID_PASID=3")
    assert r["legal"] and r["new"][1] & 0xFFFFF == 3        # RID_PASID: context bits 83:64
    assert s.system.mem.read_u64(r["addr"] + 8) == r["new"][1]
    assert not s.execute("set pasid gpu0 NOPE=1").ok


def test_completion_knows_vtd_names(s):
    assert {"0x10", "0x390", "0x100"} <= set(complete_line(s, "pt dmar0 "))
    assert "pasid=" in complete_line(s, "pt nic0 ")
    assert "type=SFS_2" in complete_line(s, "events dmar0 type=SF")
    assert "type=F_TRANSLATION" not in complete_line(s, "events dmar0 type=")
    assert "PGTT=nested" in complete_line(s, "set pasid nic0 PGTT=")
    assert "PASIDDIRPTR=" in complete_line(s, "set context nic0 PAS")
    assert "GSTS_REG" in complete_line(s, "regs dmar0 G")
    assert "P_IOTLB_INV_DSC" in complete_line(s, "cmd dmar0 P_")
    assert {"nic0", "gpu0", "nvme0", "dmar0"} <= set(complete_line(s, "inject clear-present "))
    assert "clear-present" in complete_line(s, "inject cl")
    # pasid=: the requester's PASIDs (gpu0: RID_PASID 0 and PASID 9 of the scenario)
    for line in ("walk gpu0 0x1000 pasid=", "walk dmar0 0x390 0x1000 pasid=", "pt gpu0 pasid=",
                 "pt dmar0 0x390 pasid=", "pasid gpu0 pasid=", "set pasid gpu0 pasid=",
                 "inject invalidate-pasid gpu0 pasid="):
        assert complete_line(s, line) == ["pasid=0", "pasid=9"], line


def test_cmdq_shows_the_invalidation_queue_as_cmd_takes_it(s):
    run(s, "cmd dmar0 CC_INV_DSC G=device SID=0x10")
    run(s, "drop-invalidations dmar0 1")
    run(s, f"cmd dmar0 {P_IOTLB_FIX}")
    q = run(s, "cmdq dmar0")
    assert q["kind"] == "vtd-iq" and (q["iqh"], q["iqt"]) == (2, 2) and q["desc_size"] == 16
    got = [(d["index"], d["state"], d["type"], d["text"]) for d in q["descriptors"]]
    assert got == [(0, "consumed", "CC_INV_DSC", "G=device SID=0x10"),
                   (1, "consumed", "P_IOTLB_INV_DSC", "G=page DID=0x2 ADDR=0x7f0000001000")]
    # the text is what `cmd` takes: the same descriptor again, word for word
    again = run(s, f"cmd dmar0 P_IOTLB_INV_DSC {got[1][3]}")
    assert again["words"] == q["descriptors"][1]["words"]
    assert [d["index"] for d in run(s, "cmdq dmar0 history=1")["descriptors"]] == [2]


def test_find_on_vtd_names_every_requester_and_pasid(s):
    r = run(s, "find pa=0x62000000+0x2000")
    got = {(h["smmu"], h["device"], h["ssid"], h["stage"], h["iova"], h["ipa"], h["pa"],
            h["size"]) for h in r["hits"]}
    # vm0-s2 maps GPA x -> PA 0x6000_0000 + x; guest-fs maps 0x7F00_0000_0000 -> GPA 0x200_0000
    assert got == {("dmar0", "nic0", 0, "nested", 0x7F00_0000_0000, 0x200_0000, VM0_PA +
                    0x200_0000, 0x2000),
                   ("dmar0", "gpu0", 0, "2", 0x200_0000, None, VM0_PA + 0x200_0000, 0x2000),
                   ("dmar0", "gpu0", 9, "nested", 0x7F00_0000_0000, 0x200_0000, VM0_PA +
                    0x200_0000, 0x2000)}
    one = run(s, "find pa=0x50001000+1 dmar0 sid=0x100")["hits"]
    assert [(h["device"], h["iova"]) for h in one] == [("nvme0", 0x1000_1000)]
    assert not s.execute("find ipa=0x0+1 dmar0").ok


def test_injections_and_find_on_the_imported_guest():
    s = Session()
    out = s.execute(f"import qemu {FIXTURE / 'memory.elf.xz'} --regs {FIXTURE / 'regs.json'}")
    assert out.ok, out.error
    row = run(s, "pt dmar0 0x18 limit=1")["rows"][0]
    hits = run(s, f"find pa={row['out']:#x}+0x1000 dmar0")["hits"]
    assert any(h["sid"] == 0x18 and h["iova"] == row["in"] for h in hits)
    r = run(s, f"inject clear-present dmar0 0x18 {row['in']:#x}")
    assert r["entry"] == "FS_PTE" and r["fault"]["name"] == "SFS_2"
    assert run(s, f"walk dmar0 0x18 {row['in']:#x} dry")["fault"]["name"] == "SFS_2"


def test_pt_finds_every_scattered_leaf():
    """Scattered 4K pages, one per 2M region and some in the upper (sign-extended) half: the
    scan skips runs of non-present entries and still lists every map, in order."""
    ins = [0x7F00_0000_0000 + i * 0x20_0000 + 0x1000 * (i % 7) for i in range(40)] + \
        [0xFFFF_8000_0000_0000 + 0x40_0000 * i for i in range(3)]
    maps = ",\n".join(f'  {{ in = {a:#x}, out = {0x0200_0000 + i * 0x1000:#x}, size = 0x1000, '
                      f'perm = "rw" }}' for i, a in enumerate(ins))
    text = SCENARIO.replace('''maps = [
  { in = 0x7F00_0000_0000, out = 0x0200_0000, size = 0x0001_0000, perm = "rw" },
  { in = 0x7F00_0001_0000, out = 0x0300_0000, size = 0x0000_1000, perm = "r" },
  { in = 0x7F00_0020_0000, out = 0x0400_0000, size = 0x0020_0000, perm = "rw" },
]''', f"maps = [\n{maps}\n]")
    assert text != SCENARIO
    s = Session(text, "scattered")
    rows = run(s, "pt nic0")["rows"]
    assert [(r["in"], r["out"], r["size"]) for r in rows] == \
        [(a, 0x0200_0000 + i * 0x1000, 0x1000) for i, a in enumerate(ins)]


def test_retarget_irte_without_iec_invalidation_keeps_the_old_vector(s):
    # examples/vtd-nested.toml: nic0's IRTE 0 delivers vector 0x41 (fixed, xAPIC 0).
    first = run(s, "msi nic0 0")
    assert first["vector"] == 0x41 and not first["iec_hit"]
    r = run(s, "inject retarget-irte dmar0 0 vector=0x51")
    assert r["entry"] == "IRTE" and r["cached"] and r["fix"] == "IEC_INV_DSC"
    assert r["new"][0] >> 16 & 0xFF == 0x51                # IRTE.V is bits 23:16 (9.10)
    assert r["new"][0] & ~(0xFF << 16) == r["old"][0] & ~(0xFF << 16)
    assert r["new"][1] == r["old"][1]
    stale = run(s, "msi nic0 0")                           # the interrupt entry cache answers
    assert stale["vector"] == 0x41 and stale["iec_hit"]
    assert run(s, "msi nic0 0 dry")["vector"] == 0x51      # memory says 0x51
    c = run(s, "check dmar0")
    fixes = [f for u in c["smmus"] for st in u["stale"] for f in st["fix_commands"]]
    assert fixes == ["cmd dmar0 IEC_INV_DSC G=index IIDX=0 IM=0"]
    run(s, "cmd dmar0 IEC_INV_DSC G=index IIDX=0 IM=0")
    after = run(s, "msi nic0 0")
    assert after["vector"] == 0x51 and not after["iec_hit"]
    for line, words in (("inject retarget-irte dmar0 256", "256 IRTEs"),
                        ("inject retarget-irte dmar0 2", "not present"),
                        ("inject retarget-irte nic0 0", "no SMMU or VT-d unit named")):
        out = s.execute(line)
        assert not out.ok and words in out.error and "\n" not in out.error, (line, out.error)
