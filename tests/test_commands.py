"""Every command through the registry, on the built-in default scenario.

Expected values come from the scenario (smmudbg/data/default.toml) and the architecture:
nic0 (SID 8) is nested; its CD 0 maps IOVA 0x10000000 -> IPA 0x41000000 (2M, rw) and
0x20000000 -> 0x43000000 (16K, r); vm0's RAM is IPA 0x40000000 -> PA 0x60000000 (256M), mapped
by vm0-s2 (VMID 1); gpu0 (0x200) is stage 2 only over vm0-s2; nvme0 (0x100) is stage 1 only
(host-dma, 64K granule, 0xffff0000 -> 0x50000000, 1M); legacy0 (0x300) bypasses;
quarantine0 (0x301) aborts.
"""
import json

import pytest

from smmudbg.commands import REGISTRY
from smmudbg.render import render_text
from smmudbg.session import Session

NIC_PA = 0x61000123        # IOVA 0x10000123 -> IPA 0x41000123 -> PA 0x61000123


@pytest.fixture
def s():
    return Session()


def ok(s, line):
    out = s.execute(line)
    assert out.ok, f"{line}: {out.error}"
    json.dumps(out.result.to_json())                      # plain data
    render_text(out.result)                               # and renderable
    return out.result.to_json()


def err(s, line):
    out = s.execute(line)
    assert not out.ok, f"{line} should fail"
    assert "\n" not in out.error
    return out.error


# -- registry ---------------------------------------------------------------------------------
def test_every_command_has_help_and_usage():
    for name, c in REGISTRY.commands.items():
        assert c.help and c.summary, name
        assert c.usage.startswith(name)


MODULES_TESTED_HERE = {"inspect", "walk", "change", "inject", "check", "session_cmds", "meta"}


def test_every_command_is_exercised_here():
    src = open(__file__).read()
    for name, c in REGISTRY.commands.items():
        if c.area not in MODULES_TESTED_HERE:     # commands of other modules: their own tests
            continue
        assert f'"{name} ' in src or f'"{name}"' in src or f"'{name}" in src, name


def test_help(s):
    idx = ok(s, "help")
    names = {c["name"] for a in idx["areas"] for c in a["commands"]}
    assert {"walk", "ste", "set ste", "inject unmap", "check", "goto"} <= names
    h = ok(s, "help walk")
    assert h["usage"].startswith("walk DEVICE|SMMU SID ADDRESS")
    assert "step" in h["help"]
    assert ok(s, "help set ste")["name"] == "set ste"
    assert ok(s, "help inject")["kind"] == "help-index"
    assert "no command" in err(s, "help nosuch")


def test_json_mode(s):
    assert ok(s, "json on")["on"] is True
    assert ok(s, "json")["on"] is True
    assert ok(s, "json off")["on"] is False
    assert "on or off" in err(s, "json maybe")


def test_parse_errors_name_the_argument(s):
    assert err(s, "walk nic0 0x1000 ssid=x") == "walk: ssid: 'x' is not a number"
    assert err(s, "walk smmu0 x 0x1000") == "walk: sid: 'x' is not a number"
    assert err(s, "walk nic0 zz") == "walk: address: 'zz' is not an address"
    assert err(s, "walk nic0 0x1 access=fly") == \
        "walk: access: 'fly' is not one of read, write, exec"
    assert err(s, "walk nic0") .startswith("walk: missing ADDRESS")
    assert err(s, "walk nosuch 0x1").startswith("walk: target: 'nosuch' is neither")
    assert err(s, "walk nic0 1 2").startswith("walk: unexpected '2'")
    assert err(s, "walk nic0 1 color=red").startswith("walk: unknown option 'color'")
    assert err(s, "walk nic0 1 ssid=1 ssid=2") == "walk: ssid: given twice"
    assert err(s, "frobnicate") == "unknown command 'frobnicate' (try: help)"
    assert err(s, "set") .startswith("set: missing: one of")
    assert err(s, "set frob").startswith("set: 'frob' is not one of")
    assert err(s, "walk 'nic0").startswith("cannot split the line")
    assert err(s, "regs nosuch").startswith("regs: smmu: no SMMU or VT-d unit named 'nosuch'")
    assert err(s, "") == "empty command"
    # parse errors are not logged
    assert s.log == []


def test_completion(s):
    c = lambda text: REGISTRY.complete(s, text)
    assert "walk" in c("wa")
    assert set(c("set ")) == {"cd", "context", "desc", "pasid", "reg", "ste"}
    assert "smmu0" in c("ste ") and "nic0" in c("ste ")
    assert c("ste smmu0 0x1") == ["0x100"]
    assert "0x8" in c("ste smmu0 ")
    assert "ssid=" in c("walk nic0 0x1000 ")
    assert "access=write" in c("walk nic0 0x1000 access=")
    assert "priv" in c("walk nic0 0x1000 ")
    assert "S2T0SZ=" in c("set ste nic0 ")
    assert "Config=nested" in c("set ste nic0 Config=")
    assert "AF=" in c("set desc 0x1000 stage=2 ")
    assert "S2AP=" in c("set desc 0x1000 stage=2 ")
    assert "CMD_CFGI_STE" in c("cmd smmu0 ")
    assert "StreamID=" in c("cmd smmu0 CMD_CFGI_STE ")
    assert "nic0-dma" in c("map ")
    assert "F_TRANSLATION" in c("inject event smmu0 ")
    assert c("walk 'unterminated") == []
    assert c("nosuch ") == []


# -- inspect ----------------------------------------------------------------------------------
def test_topology_smmus_vms(s):
    t = ok(s, "topology")
    assert [x["name"] for x in t["smmus"]] == ["smmu0"]
    assert {x["name"] for x in t["streams"]} >= {"nic0", "nvme0", "gpu0", "legacy0"}
    assert ok(s, "smmus")["smmus"][0]["strtab"]["format"] == "2lvl"
    assert ok(s, "vms")["vms"][0]["ram"] == [{"ipa": 0x40000000, "size": 0x10000000,
                                              "pa": 0x60000000}]


def test_regs(s):
    r = ok(s, "regs smmu0")
    names = {x["name"] for x in r["registers"]}
    assert {"SMMU_IDR0", "SMMU_CR0", "SMMU_STRTAB_BASE_CFG"} <= names
    cr0 = ok(s, "regs smmu0 CR0")
    assert cr0["offset"] == 0x20                      # IHI 0070 6.3.9
    fields = {f["field"]: f["value"] for f in cr0["fields"]}
    assert fields["SMMUEN"] == 1
    cfg = ok(s, "regs smmu0 STRTAB_BASE_CFG")
    f = {x["field"]: x["value"] for x in cfg["fields"]}
    assert (f["FMT"], f["SPLIT"], f["LOG2SIZE"]) == (1, 8, 16)   # scenario: 2lvl, 16, 8


def test_ste(s):
    r = ok(s, "ste nic0")
    assert r["sid"] == 8 and r["config"] == "nested" and r["legal"]
    assert r["fields"]["S2VMID"] == 1 and r["fields"]["S1CDMax"] == 2
    assert r["fields"]["S2T0SZ"] == 64 - 40                     # vm0-s2: 40-bit IPA
    assert ok(s, "ste smmu0 0x8")["words"] == r["words"]
    q = ok(s, "ste quarantine0")
    assert q["config"] == "abort" and q["legal"]
    assert "beyond" in err(s, "ste smmu0 0x10000")


def test_cd_and_cdtable(s):
    c = ok(s, "cd nic0")
    assert c["fields"]["ASID"] == 1 and c["valid"] and c["legal"]
    # the CD table lives in guest RAM: its IPA is PA - 0x20000000
    assert c["pa"] - c["addr"] == 0x60000000 - 0x40000000
    assert ok(s, "cd nic0 1")["fields"]["ASID"] == 2
    t = ok(s, "cdtable nic0")
    assert t["format"] == "linear" and t["s1cdmax"] == 2 and t["ipa"]
    assert [x["ssid"] for x in t["cds"]] == [0, 1]
    assert "no stage 1" in err(s, "cd gpu0")
    assert "S1CDMax" in err(s, "cd nic0 4")


def test_strtab(s):
    r = ok(s, "strtab smmu0")
    assert [e["sid"] for e in r["entries"]] == [0x8, 0x100, 0x200, 0x300, 0x301]
    r = ok(s, "strtab smmu0 sid=0x200 count=1")
    assert [e["sid"] for e in r["entries"]] == [0x200] and r["more"]


def test_pt(s):
    r = ok(s, "pt nic0-dma")
    leaves = [x for x in r["rows"] if x["kind"] in ("block", "page")]
    # the guest's MSI doorbell page: IOVA 0x800_0000 (SW_MSI) -> gDB page 0x809_0000
    assert (leaves[0]["in"], leaves[0]["out"], leaves[0]["kind"]) == (0x8000000, 0x8090000,
                                                                       "page")
    assert (leaves[1]["in"], leaves[1]["out"], leaves[1]["kind"]) == (0x10000000, 0x41000000,
                                                                       "block")
    assert leaves[1]["end"] == 0x10000000 + 0x200000 - 1
    assert leaves[2]["in"] == 0x20000000 and leaves[2]["count"] == 4   # 16K of 4K pages
    assert leaves[2]["perm"].startswith("r-")
    assert ok(s, "pt nic0")["rows"] == r["rows"]                        # CD 0's tables
    s2 = ok(s, "pt nic0 stage=2")
    assert s2["stage"] == 2
    assert any(x.get("in") == 0x40000000 and x.get("out") == 0x60000000 for x in s2["rows"])
    assert ok(s, "pt smmu0 0x100")["granule"] == 0x10000
    lk = ok(s, "pt vm0-s2 addr=0x41000123")
    assert lk["out"] == NIC_PA
    assert ok(s, "pt nic0 ssid=1 addr=0x7f0000000010")["out"] == 0x44000010
    assert "missing the StreamID" in err(s, "pt smmu0")
    assert "no stage 2" in err(s, "pt nvme0 stage=2")


def test_mem(s):
    s.system.mem.write(0x60001000, bytes(range(16)))
    r = ok(s, "mem 0x60001000 16")
    assert r["chunks"][0]["data"] == bytes(range(16)).hex()
    g = ok(s, "mem vm=vm0 0x40001000 16")                 # IPA 0x40001000 = PA 0x60001000
    assert g["chunks"][0]["data"] == bytes(range(16)).hex()
    u = ok(s, "mem 0x10 16")
    assert u["chunks"][0]["unbacked"] == 16
    n = ok(s, "mem vm=vm0 0x10 8")
    assert n["chunks"][0]["why"] == "not guest RAM"
    assert "vm: no VM named" in err(s, "mem vm=nope 0x0")


# -- walk -------------------------------------------------------------------------------------
def test_walk_nested(s):
    r = ok(s, "walk nic0 0x10000123")
    assert r["pa"] == NIC_PA and r["ipa"] == 0x41000123 and r["fault"] is None
    whats = [x["what"] for x in r["steps"]]
    assert whats[:2] == ["L1STD", "STE"] and "CD" in whats
    # 4 stage-1 levels for a 48-bit VA with 4K... the block is at level 2: 3 S1 fetches,
    # each table address translated through stage 2 (2 levels: a 2M block)
    assert whats.count("S1") == 3
    assert ok(s, "walk smmu0 8 0x10000123")["pa"] == NIC_PA


def test_walk_faults(s):
    r = ok(s, "walk nic0 0x20000000 access=write")
    assert r["pa"] is None and r["fault"]["type"] == "F_PERMISSION"
    assert r["fault"]["s2"] is False and r["fault"]["rnw"] is False
    r = ok(s, "walk nic0 0x30000000")
    f = r["fault"]
    assert f["type"] == "F_TRANSLATION" and f["input_addr"] == 0x30000000
    assert f["class"] == "IN" and f["sid"] == 8
    r = ok(s, "walk quarantine0 0x1000")
    assert r["pa"] is None
    assert ok(s, "walk legacy0 0x1234")["pa"] == 0x1234
    assert ok(s, "walk gpu0 0x40000010")["pa"] == 0x60000010
    assert ok(s, "walk nvme0 0xffff0010 priv")["pa"] == 0x50000010
    assert ok(s, "walk nic0 0x7f0000000000 ssid=1")["pa"] == 0x64000000


# -- change -----------------------------------------------------------------------------------
def test_set_ste_does_not_invalidate(s):
    assert ok(s, "walk gpu0 0x40001000")["pa"] == 0x60001000
    r = ok(s, "set ste gpu0 S2T0SZ=8")                 # a 56-bit IPA: no valid walk
    assert not r["legal"] and r["stores"] == [2]
    assert r["changes"] == [{"field": "S2T0SZ", "old": 24, "new": 8, "address": False,
                            "meaning": ""}]
    assert ok(s, "walk gpu0 0x40001000")["pa"] == 0x60001000      # cached STE still used
    assert ok(s, "ste gpu0")["cached"]["stale"] is True
    ok(s, "cmd smmu0 CMD_CFGI_STE StreamID=0x200 Leaf=1")
    assert ok(s, "walk gpu0 0x40001000")["fault"]["type"] == "C_BAD_STE"
    assert "Config: 'bogus' is not a number" in err(s, "set ste gpu0 Config=bogus")
    assert "has no field" in err(s, "set ste gpu0 Nope=1")
    assert "does not fit" in err(s, "set ste gpu0 S2VMID=0x10000")


def test_set_cd_and_hazards(s):
    ok(s, "walk nic0 0x10000000")
    r = ok(s, "set cd nic0 ASID=7")
    assert r["changes"][0]["new"] == 7 and r["stores"] == [0]
    assert r["hazards"] is not None and r["hazards"]["torn"] is False
    assert ok(s, "cd nic0")["fields"]["ASID"] == 7
    two = ok(s, "set ste nic0 S2VMID=9 S1CDMax=1")      # qwords 0 and 2
    assert two["stores"] == [2, 0]


def test_set_desc(s):
    lk = ok(s, "pt host-dma addr=0xffff0000")
    leaf = lk["leaf"]["desc_addr"]
    r = ok(s, f"set desc {leaf:#x} AF=0")
    assert r["what"] == "S1_BLOCK" and r["changes"][0]["old"] == 1
    assert ok(s, "walk nvme0 0xffff0000")["fault"]["type"] == "F_ACCESS"
    # a guest's descriptor, by IPA
    g = ok(s, "pt nic0-dma addr=0x10000000")["leaf"]["desc_addr"]
    ok(s, f"set desc {g:#x} vm=vm0 AP=2")
    assert ok(s, "walk nic0 0x10000000 access=write")["fault"]["type"] == "F_PERMISSION"
    assert "aligned" in err(s, "set desc 0x60000004 AF=0")


def test_set_reg(s):
    r = ok(s, "set reg smmu0 CR0 SMMUEN=0")
    assert r["new"] & 1 == 0
    # SMMUEN=0: transactions follow SMMU_GBPA (ABORT=0 at reset: bypass)
    assert ok(s, "walk nic0 0x10000123")["pa"] == 0x10000123
    assert "read-only" in err(s, "set reg smmu0 IDR0 0")
    assert "not both" in err(s, "set reg smmu0 CR0 1 SMMUEN=1")


def test_map_unmap(s):
    r = ok(s, "map host-dma 0x100000 0x70000000 64K perm=rw")
    assert r["leaves"] == 1
    assert ok(s, "walk nvme0 0x100010")["pa"] == 0x70000010
    ok(s, "unmap host-dma 0x100000 64K")
    assert ok(s, "walk nvme0 0x100010")["pa"] == 0x70000010     # IOTLB: no TLBI issued
    ok(s, "cmd smmu0 CMD_TLBI_NH_ALL VMID=0")
    assert ok(s, "walk nvme0 0x100010")["fault"]["type"] == "F_TRANSLATION"
    assert "perm" in err(s, "map host-dma 0x200000 0x70000000 64K perm=q")
    assert "map host-dma" in err(s, "map host-dma 0x200001 0x70000000 64K")


# -- inject -----------------------------------------------------------------------------------
def test_inject_unmap_s2_gives_s2_fault(s):
    ok(s, "inject unmap vm0-s2 0x41000000")
    r = ok(s, "walk nic0 0x10000123")
    f = r["fault"]
    assert f["type"] == "F_TRANSLATION" and f["s2"] is True and f["class"] == "IN"
    assert f["ipa"] == 0x41000123
    assert "not mapped" in err(s, "inject unmap vm0-s2 0x41000000")


def test_inject_unmap_s2_during_s1_walk(s):
    # The guest's stage-1 tables are in the pool at IPA 0x4f000000: take its 2M block away
    ok(s, "inject unmap vm0-s2 0x4f000000")
    f = ok(s, "walk nic0 0x10000123")["fault"]
    assert f["type"] == "F_TRANSLATION" and f["s2"] is True
    assert f["class"] in ("CD", "TT")


def test_inject_clear_af_and_drop_perm(s):
    ok(s, "inject clear-af host-dma 0xffff0000")
    assert ok(s, "walk nvme0 0xffff0000")["fault"]["type"] == "F_ACCESS"
    ok(s, "inject drop-perm vm0-s2 0x40000000 perm=w")
    assert ok(s, "walk gpu0 0x40000000 access=write")["fault"]["type"] == "F_PERMISSION"
    assert ok(s, "walk gpu0 0x40000000")["pa"] == 0x60000000
    assert "cannot take away read" in err(s, "inject drop-perm host-dma 0xffff0000 perm=r")


def test_inject_ste_faults(s):
    r = ok(s, "inject invalidate-ste gpu0")
    assert r["problem"] == "STE.V=0"
    assert ok(s, "walk gpu0 0x40000000")["fault"]["type"] == "C_BAD_STE"
    r = ok(s, "inject reserved-ste nic0")                # S2TG=0b11: reserved
    assert (r["new"][2] >> 46) & 3 == 3 and r["problem"]
    assert ok(s, "walk nic0 0x10000000")["fault"]["type"] == "C_BAD_STE"
    r = ok(s, "inject reserved-ste legacy0")             # no stage 2: Config=0b001
    assert r["new"][0] & 0xE == 0b0010
    # Config 0b0xx aborts without an event (IHI 0070 5.2, STE.Config)
    assert ok(s, "walk legacy0 0x1000")["fault"]["type"] == "ABORT"
    ok(s, "inject corrupt-ste nvme0")                    # s1 (0b101) -> 0b001
    assert ok(s, "walk nvme0 0xffff0000")["fault"]["type"] == "ABORT"
    assert "no reserved value" in err(s, "inject reserved-ste nic0 field=S2VMID")


def test_inject_cd_faults(s):
    ok(s, "inject invalidate-cd nic0 ssid=1")
    assert ok(s, "walk nic0 0x7f0000000000 ssid=1")["fault"]["type"] == "C_BAD_CD"
    r = ok(s, "inject corrupt-cd nic0")
    assert r["problem"]
    assert ok(s, "walk nic0 0x10000000")["fault"]["type"] == "C_BAD_CD"


def test_inject_event_events_consume(s):
    r = ok(s, "inject event smmu0 F_TRANSLATION StreamID=8 InputAddr=0x1000 RnW=1")
    assert r["written"] and r["index"] == 0
    ev = ok(s, "events smmu0")
    assert ev["entries"][0]["event"] == "F_TRANSLATION"
    assert ev["entries"][0]["fields"]["StreamID"] == 8
    assert ok(s, "consume-events smmu0")["consumed"] == 1
    assert ok(s, "events smmu0")["entries"] == []
    assert "unknown event" in err(s, "inject event smmu0 F_NOPE")


def test_cmd_cmdq_drop_invalidations(s):
    r = ok(s, "cmd smmu0 CMD_SYNC")
    assert r["log"][0]["command"] == "CMD_SYNC" and r["log"][0]["error"] is None
    ok(s, "walk nic0 0x10000123")
    ok(s, "drop-invalidations smmu0 1")
    r = ok(s, "cmd smmu0 TLBI_NH_VA VMID=1 ASID=1 Addr=0x10000000")
    assert r["log"][0]["dropped"] is True
    assert r["log"][0]["fields"]["Address"] == 0x10000000 >> 12
    assert ok(s, "walk nic0 0x10000123")["hit"] is True
    ok(s, "cmd smmu0 TLBI_NH_VA VMID=1 ASID=1 Addr=0x10000000")
    assert ok(s, "walk nic0 0x10000123")["hit"] is False
    q = ok(s, "cmdq smmu0")
    assert [e["command"] for e in q["entries"]][-1] == "CMD_TLBI_NH_VA"
    assert "unknown command" in err(s, "cmd smmu0 CMD_NOPE")
    assert "has no field" in err(s, "cmd smmu0 CMD_SYNC Bogus=1")


def test_tlb_cfgcache(s):
    assert ok(s, "tlb smmu0")["entries"] == []
    ok(s, "walk nic0 0x10000123")
    t = ok(s, "tlb smmu0")["entries"]
    assert t[0]["kind"] == "NESTED" and t[0]["vmid"] == 1 and t[0]["asid"] == 1
    assert t[0]["in_base"] == 0x10000000 and t[0]["out_base"] == 0x61000000
    assert ok(s, "tlb smmu0 vmid=2")["entries"] == []
    c = ok(s, "cfgcache smmu0")
    assert [x["sid"] for x in c["stes"]] == [8] and not c["stes"][0]["stale"]
    assert c["cds"][0]["ssid"] == 0


# -- check ------------------------------------------------------------------------------------
def test_check(s):
    assert ok(s, "check")["clean"]
    ok(s, "walk gpu0 0x40000000")
    ok(s, "set ste gpu0 S2VMID=5")
    r = ok(s, "check smmu0")
    assert not r["clean"]
    stale = r["smmus"][0]["stale"]
    assert stale[0]["kind"] == "STE" and stale[0]["fix"] == "CMD_CFGI_STE StreamID=0x200 Leaf=1"
    assert r["smmus"][0]["hazards"][0]["changed_qwords"] == [2]
    ok(s, "cmd smmu0 " + stale[0]["fix"])
    assert all(x["kind"] != "STE" for x in ok(s, "check")["smmus"][0]["stale"])
    ok(s, "inject reserved-ste nic0")
    ill = ok(s, "check")["smmus"][0]["illegal"]
    assert ill and ill[0]["sid"] == 8 and ill[0]["problem"].startswith("C_BAD_STE")


# -- vsmmu on a system without vSMMUs ------------------------------------------------------------
def test_vsmmu_without_vsmmus_says_what_to_add(s):
    assert "no vSMMU" in err(s, "vsmmu vm0")


# -- session commands through the registry ---------------------------------------------------------
def test_history_goto_back_forward(s):
    ok(s, "walk nic0 0x10000123")
    ok(s, "inject unmap vm0-s2 0x41000000")
    ok(s, "cmd smmu0 CMD_TLBI_S12_VMALL VMID=1")
    assert ok(s, "walk nic0 0x10000123")["fault"]["s2"] is True
    h = ok(s, "history")
    assert [e["n"] for e in h["entries"]] == [1, 2, 3, 4] and h["position"] == 4
    assert ok(s, "history 2")["entries"][0]["n"] == 3
    ok(s, "goto 1")
    assert ok(s, "walk nic0 0x10000123")["pa"] == NIC_PA     # back before the unmap
    assert len(s.log) == 2                                     # a walk changes state: the
    ok(s, "goto 0")                                            # future was replaced
    assert ok(s, "tlb smmu0")["entries"] == []
    ok(s, "forward")
    assert len(ok(s, "tlb smmu0")["entries"]) == 1
    ok(s, "back")
    assert ok(s, "tlb smmu0")["entries"] == []
    assert "outside the log" in err(s, "goto 99")


def test_save_load_replay_commands(s, tmp_path):
    ok(s, "walk nic0 0x10000123")
    ok(s, "set ste gpu0 S2VMID=5")
    p = tmp_path / "s.json"
    assert ok(s, f"save {p}")["commands"] == 2
    ok(s, "walk gpu0 0x40000000")
    r = ok(s, f"load {p}")
    assert r["identical"] and r["replayed"] == 2 and len(s.log) == 2
    assert ok(s, f"replay {p}")["identical"]
    assert ok(s, "replay")["identical"]
    assert "No such file" in err(s, f"load {tmp_path / 'nope.json'}")


def test_expect_through_registry(s):
    ok(s, "walk nic0 0x10000123")
    ok(s, "expect pa == 0x61000123")
    ok(s, "expect len(steps) > 5")
    ok(s, "expect steps[0].what == L1STD")
    ok(s, "expect fault == null")
    assert err(s, "expect pa == 1") == "expect pa == 1: got 0x61000123"
