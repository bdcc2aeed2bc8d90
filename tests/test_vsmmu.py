"""VMs with accelerated vSMMUs: the guest's structures in guest RAM, the VMM's trap-and-forward
flow through iommufd to the physical SMMU, the vEVENTQ, the accelerated-mode topology rules,
the injects of the nested system and the `check` findings.

Expected values come from the scenario text of examples/vsmmu-vm.toml and two-vsmmu.toml and
from the architecture and the kernel's rules, not from the model:
- guest RAM: IPA 0x4000_0000 -> PA 0x6000_0000 (so PA = IPA + 0x2000_0000); the guest stream
  table is linear at IPA 0x4e00_0000, 64-byte STEs indexed by the vSID (IHI 0070 5.2);
- vSIDs are the guest RIDs (gnic0 01:00.0 = 0x100, gnic1 02:00.0 = 0x200); pSIDs the host RIDs
  (nic0 bus 2 = 0x200, nic1 bus 3 = 0x300);
- STE.Config (IHI 0070 5.2): 0b000 abort, 0b100 bypass, 0b101 S1, 0b110 S2, 0b111 nested,
  in STE bits [3:1]; S2VMID STE[143:128]; VMIDs from 1 per SMMU (ida_alloc_range(1, ...));
- arm_vsmmu_convert_user_cmd: NH_* get the vIOMMU's VMID, CFGI_CD the pSID, the rest -EIO;
- arm_smmu_make_nested_domain_ste: S1 -> Config nested, bypass -> the S2 STE, abort -> abort;
- nic0's guest S1 maps IOVA 0x1000_0000 -> IPA 0x4100_0000 (PA 0x6100_0000) and the MSI page
  0x0800_0000 -> 0x0809_0000; its0's GITS_TRANSLATER is 0x0808_0000 + 0x1_0040; nic0's
  vector 0 is LPI 8192 on collection 0 -> redistributor 0, vector 1 LPI 8193 on collection 1.
"""
import errno
from pathlib import Path

import pytest

from smmudbg.errors import ScenarioError
from smmudbg.model.system import System
from smmudbg.session import Session

ROOT = Path(__file__).resolve().parent.parent
VM = (ROOT / "examples" / "vsmmu-vm.toml").read_text()
TWO = (ROOT / "examples" / "two-vsmmu.toml").read_text()
GUEST_PA = 0x2000_0000            # PA - IPA of vm0's RAM
STRTAB = 0x4e00_0000
CFG_ABORT, CFG_BYPASS, CFG_S1, CFG_S2, CFG_NESTED = 0b000, 0b100, 0b101, 0b110, 0b111


def ok(s, line):
    out = s.execute(line)
    assert out.ok, (line, out.error)
    return out.result


def config(words):
    return (words[0] >> 1) & 7


def host_ste(s, sid, smmu="smmu0"):
    return s.system.smmu(smmu).read_ste(sid)


def guest_ste(s, vsid):
    return s.system.mem.read_words(STRTAB + 64 * vsid + GUEST_PA, 8)


def host_cmds(s, smmu="smmu0", n=4):
    return [(e["command"], {k: v for k, v in e["fields"].items() if k != "Opcode"})
            for e in s.system.smmu(smmu).cmdq_entries(64)][-n:]


# -- the guest side lives in guest RAM, the host side is the kernel's -----------------------------
def test_boot_installs_each_guest_ste_through_iommufd():
    s = Session(VM, "t")
    for vsid, psid in ((0x100, 0x200), (0x200, 0x300)):
        g, h = guest_ste(s, vsid), host_ste(s, psid)
        assert g[0] & 1 and config(g) == CFG_S1
        assert h[0] & 1 and config(h) == CFG_NESTED
        # dw0 keeps the guest's S1ContextPtr (the CD table's IPA): bits [51:6]
        mask = ((1 << 52) - 1) & ~0x3F
        assert h[0] & mask == g[0] & mask
        assert h[2] & 0xFFFF == 1                    # S2VMID: the parent's VMID, the first
    r = ok(s, "vsmmu vm0").vsmmus[0]
    rows = {d["vsid"]: d for d in r["devices"]}
    assert {v: (d["device"], d["psid"], d["guest_device"]) for v, d in rows.items()} == \
        {0x100: ("nic0", 0x200, "gnic0"), 0x200: ("nic1", 0x300, "gnic1")}
    d = rows[0x100]
    assert d["guest_ste"]["ipa"] == STRTAB + 64 * 0x100
    assert d["guest_ste"]["config"] == "s1_trans" and d["host_ste"]["config"] == "nested"
    assert d["guest_cd"]["asid"] == 1 and d["in_sync"] is True
    assert d["hwpt"]["kind"] == "nested" and d["viommu"]["vmid"] == 1
    # the device walks like any other: S1 in guest RAM, S2 the shared parent
    w = ok(s, "walk nic0 0x10000040")
    assert (w.ipa, w.pa) == (0x4100_0040, 0x6100_0040)


def test_guest_ste_write_then_cfgi_ste_replaces_the_nested_hwpt():
    s = Session(VM, "t")
    old_hwpt = ok(s, "vsmmu").vsmmus[0]["devices"][0]["hwpt"]["id"]
    r = ok(s, "vste vsmmu0 0x100 Config=bypass")
    assert r.pa == STRTAB + 64 * 0x100 + GUEST_PA and config(r.new) == CFG_BYPASS
    # written but not yet invalidated: the host still follows the old STE
    row = ok(s, "vsmmu").vsmmus[0]["devices"][0]
    assert row["in_sync"] is False and config(host_ste(s, 0x200)) == CFG_NESTED
    f = [x for x in ok(s, "check").system if x["area"] == "vsmmu"]
    assert f and f[0]["fix"] == "vcmd vsmmu0 CMD_CFGI_STE StreamID=0x100 Leaf=1"
    log = ok(s, "vcmd vsmmu0 CMD_CFGI_STE StreamID=0x100 Leaf=1").log
    steps = [x["what"] for x in log[0]["steps"]]
    assert steps == ["guest STE", "ATTACH", "IOMMU_DESTROY"]
    attach = log[0]["steps"][1]
    # bypass: the plain S2 STE of the parent (arm_smmu_make_nested_domain_ste)
    h = host_ste(s, 0x200)
    assert attach["host_ste"] == h and config(h) == CFG_S2 and attach["psid"] == 0x200
    assert log[0]["steps"][2]["object"] == old_hwpt
    assert ok(s, "walk nic0 0x41000040").pa == 0x6100_0040     # no stage 1: IOVA = IPA
    ok(s, "vste vsmmu0 0x100 V=0")
    ok(s, "vcmd vsmmu0 CMD_CFGI_STE StreamID=0x100")
    h = host_ste(s, 0x200)
    assert h[0] & 1 and config(h) == CFG_ABORT     # V=0 -> the abort HWPT: V=1, Config abort
    ok(s, "vste vsmmu0 0x100 V=1 Config=s1_trans")
    log = ok(s, "vcmd vsmmu0 CMD_CFGI_STE_RANGE StreamID=0x100 Range=0").log
    assert [x["what"] for x in log[0]["steps"]] == ["guest STE", "IOMMU_HWPT_ALLOC", "ATTACH"]
    assert config(host_ste(s, 0x200)) == CFG_NESTED
    assert ok(s, "walk nic0 0x10000040").pa == 0x6100_0040


def test_guest_smmu_disabled_follows_gbpa():
    text = VM.replace('viommu = "viommu0"\n', 'viommu = "viommu0"\nenabled = false\n'
                      'gbpa = "bypass"\n')
    s = Session(text, "t")
    assert config(host_ste(s, 0x200)) == CFG_S2        # SMMUEN=0, GBPA.ABORT=0: bypass HWPT
    s = Session(text.replace('gbpa = "bypass"', 'gbpa = "abort"'), "t")
    assert config(host_ste(s, 0x200)) == CFG_ABORT


def test_tlbi_and_cfgi_cd_are_forwarded_with_vmid_and_psid_rewritten():
    s = Session(VM, "t")
    st = ok(s, "vcmd vsmmu0 CMD_TLBI_NH_VA ASID=1 Addr=0x10000000").log[0]["steps"]
    assert [x["what"] for x in st] == ["IOMMU_HWPT_INVALIDATE"]
    assert st[0]["host_command"] == "CMD_TLBI_NH_VA"
    assert st[0]["host_fields"]["VMID"] == 1 and st[0]["host_fields"]["ASID"] == 1
    assert st[0]["host_fields"]["Address"] == 0x10000000 >> 12
    cmds = host_cmds(s, n=2)
    assert cmds[0][0] == "CMD_TLBI_NH_VA" and cmds[0][1]["VMID"] == 1 and cmds[1][0] == "CMD_SYNC"
    st = ok(s, "vcmd vsmmu0 CMD_CFGI_CD StreamID=0x200 SubstreamID=0 Leaf=1").log[0]["steps"]
    assert st[0]["host_fields"]["StreamID"] == 0x300           # vSID 0x200 -> nic1's pSID
    assert host_cmds(s, n=2)[0] == ("CMD_CFGI_CD", {"SSec": 0, "SubstreamID": 0,
                                                    "StreamID": 0x300, "Leaf": 1})
    # a vSID without a vDEVICE: nothing reaches the host
    before = len(s.system.smmu("smmu0").cmdq.history)
    st = ok(s, "vcmd vsmmu0 CMD_CFGI_CD StreamID=0x55").log[0]["steps"]
    assert "no vDEVICE" in st[0]["detail"]
    assert len(s.system.smmu("smmu0").cmdq.history) == before
    # CMD_SYNC is completed by the VMM
    assert ok(s, "vcmd vsmmu0 CMD_SYNC").log[0]["steps"][0]["what"] == "vmm"


def test_stage2_tlbi_stops_the_guest_queue_until_resumed():
    s = Session(VM, "t")
    r = ok(s, "vcmd vsmmu0 CMD_TLBI_S2_IPA VMID=1 Addr=0x1000")
    assert r.log[0]["error"] == "CERROR_ILL" and r.cmdq["error"] == "CERROR_ILL"
    assert r.gerror == ["CMDQ_ERR"]
    # a later command waits behind the stopped queue
    r = ok(s, "vcmd vsmmu0 CMD_TLBI_NH_ASID ASID=1")
    assert r.log == [] and r.cmdq["prod"] == r.cmdq["cons"] + 2
    f = [x for x in ok(s, "check").system if x["subject"] == "vsmmu0 command queue"]
    assert f and f[0]["severity"] == "error" and "vcmd vsmmu0 resume" in f[0]["fix"]
    r = ok(s, "vcmd vsmmu0 resume")
    assert [x["command"] for x in r.log] == ["CMD_TLBI_NH_ASID"] and r.cmdq["error"] is None
    assert r.gerror == []


@pytest.mark.parametrize("how,word", [("eats", "EATS"), ("config", "Config")])
def test_guest_ste_the_host_refuses(how, word):
    s = Session(VM, "t")
    before = host_ste(s, 0x300)
    r = ok(s, f"inject vste-reject vsmmu0 0x200 how={how}")
    alloc = r.log[0]["steps"][1]
    assert alloc["what"] == "IOMMU_HWPT_ALLOC" and alloc["errno"] == -errno.EIO
    assert word in alloc["detail"] and "arm_smmu_validate_vste" in alloc["detail"]
    assert r.log[0]["error"] == "CERROR_ILL"
    assert host_ste(s, 0x300) == before                        # nic1 keeps its HWPT
    row = ok(s, "vsmmu").vsmmus[0]["devices"][1]
    assert row["in_sync"] is False and "-EIO" in row["note"]
    f = [x for x in ok(s, "check").system if x["subject"] == "vsmmu0 vSID 0x200"]
    assert f and f[0]["severity"] == "error" and "EIO" in f[0]["message"]


def test_lost_forwarded_invalidation_leaves_a_stale_host_iotlb():
    s = Session(VM, "t")
    assert ok(s, "walk nic0 0x10000000").pa == 0x6100_0000          # cached in smmu0's IOTLB
    ok(s, "inject unmap nic0-dma 0x10000000")                       # the guest unmaps
    ok(s, "inject vtlbi-lost vsmmu0")
    st = ok(s, "vcmd vsmmu0 CMD_TLBI_NH_VA ASID=1 Addr=0x10000000").log[0]["steps"]
    assert st[0]["lost"] is True
    assert ok(s, "walk nic0 0x10000000").hit is True                # stale: still translates
    c = ok(s, "check")
    f = [x for x in c.system if x["subject"] == "vsmmu0 invalidation"]
    assert f and f[0]["severity"] == "error" and "1 stale IOTLB entry" in f[0]["message"]
    assert f[0]["fix"].startswith("forward it: `vcmd vsmmu0 CMD_TLBI_NH_VA ASID=0x1 "
                                  "Addr=0x10000000`")
    assert c.smmus[0]["stale"][0]["kind"] == "TLB"
    fix = f[0]["fix"].split("`")[1]
    ok(s, fix)                                                      # the fix, as printed
    c = ok(s, "check")
    assert c.clean and not [x for x in c.system if x["area"] == "vsmmu"]
    assert ok(s, "walk nic0 0x10000000").fault["type"] == "F_TRANSLATION"


def test_sid_less_invalidation_reaches_every_physical_smmu_of_the_vsmmu():
    # one vSMMU backed by two vIOMMUs (one per physical SMMU), one shared S2 parent
    text = TWO.replace('viommu = "viommu0"\nprimary_bus = "pcie.0"\nvfio = { gnic0 = "nic0" }',
                       'viommu = ["viommu0", "viommu1"]\nprimary_bus = "pcie.0"\n'
                       'vfio = { gnic0 = "nic0" }')
    text = text.replace('streams = [{ device = "nic0", vsid = 0x100, config = "s1", '
                        'domain = "nic0-dma" }]',
                        'streams = [{ device = "nic0", vsid = 0x100, config = "s1", '
                        'domain = "nic0-dma" },\n {device = "nic1", vsid = 0x200, '
                        'config = "s1", domain = "nic1-dma" }]')
    text = text[:text.index('[[vsmmu]]\nname = "vsmmu1"')]
    s = Session(text, "t")
    st = ok(s, "vcmd vsmmu0 CMD_TLBI_NH_ASID ASID=1").log[0]["steps"]
    # VMIDs: smmu0's first VMID is the parent's (1), so viommu0 has 2; viommu1 is smmu1's 1
    assert [(x["smmu"], x["host_fields"]["VMID"]) for x in st] == [("smmu0", 2), ("smmu1", 1)]
    assert host_cmds(s, "smmu0", 2)[0][0] == host_cmds(s, "smmu1", 2)[0][0] == \
        "CMD_TLBI_NH_ASID"
    # a command with a StreamID goes to the vIOMMU of that vSID only
    st = ok(s, "vcmd vsmmu0 CMD_CFGI_CD StreamID=0x200").log[0]["steps"]
    assert [(x["smmu"], x["host_fields"]["StreamID"]) for x in st] == [("smmu1", 0x8100)]


def test_two_vsmmus_over_two_smmus_share_one_s2_parent():
    s = Session(TWO, "t")
    a, b = host_ste(s, 0x100, "smmu0"), host_ste(s, 0x8100, "smmu1")
    assert config(a) == config(b) == CFG_NESTED
    assert a[3] == b[3]                                  # one S2TTB: the shared parent
    assert (a[2] & 0xFFFF, b[2] & 0xFFFF) == (2, 1)      # per-vIOMMU VMIDs
    r = ok(s, "vsmmu").vsmmus
    assert [(v["name"], [d["vsid"] for d in v["devices"]]) for v in r] == \
        [("vsmmu0", [0x100]), ("vsmmu1", [0x8100])]
    assert {t["device"]: t["address_space"] for t in r[1]["topology"]} == \
        {"grp1": "iommu", "gnic1": "system"}
    for dev, intid in (("nic0", 8192), ("nic1", 8300)):
        assert ok(s, f"msi {dev} 0").intid == intid
    # a TLBI on vsmmu1 reaches smmu1 only, with viommu1's VMID
    st = ok(s, "vcmd vsmmu1 CMD_TLBI_NH_ASID ASID=2").log[0]["steps"]
    assert [(x["smmu"], x["host_fields"]["VMID"]) for x in st] == [("smmu1", 1)]
    assert ok(s, "check").clean


def test_host_events_reach_the_guest_event_queue_with_vsid_and_sequence():
    text = VM.replace("evtq = { base = 0x4e41_0000, log2size = 7 }",
                      "evtq = { base = 0x4e41_0000, log2size = 1 }")    # 2 entries: vEVENTQ depth 2
    s = Session(text, "t")
    for i in range(3):
        ok(s, f"inject event smmu0 F_TRANSLATION StreamID=0x200 InputAddr={0x1000 * (i + 1):#x}")
    r = ok(s, "vevents vsmmu0")
    assert [h["vsid"] for h in r.host] == [0x100] * 3
    assert [(v["sequence"], v["lost_events"], v["vsid"]) for v in r.vevents] == \
        [(0, False, 0x100), (1, False, 0x100), (2, True, None)]
    assert [g["vsid"] for g in r.guest] == [0x100, 0x100]
    assert r.vevents[0]["written"] == 0x4e41_0000 and r.vevents[1]["written"] == 0x4e41_0020
    # the record in guest RAM: type F_TRANSLATION (0x10), StreamID (dw0[63:32]) = the vSID
    raw = s.system.mem.read(0x4e41_0000 + GUEST_PA, 32)
    assert raw[0] == 0x10 and int.from_bytes(raw[4:8], "little") == 0x100
    # a stage-2 fault stays with the host
    ok(s, "inject event smmu0 F_TRANSLATION StreamID=0x200 S2=1")
    assert "stage-2" in ok(s, "vevents vsmmu0").host[0]["outcome"]


def test_hwpt_invalidate_command():
    s = Session(VM, "t")
    r = ok(s, "hwpt-invalidate viommu0 CMD_TLBI_NSNH_ALL")
    assert (r.handled, r.errno, r.host_command) == (1, 0, "CMD_TLBI_NH_ALL")
    assert r.host_fields["VMID"] == 1 and r.sent == ["CMD_TLBI_NH_ALL", "CMD_SYNC"]
    r = ok(s, "hwpt-invalidate viommu0 CMD_TLBI_S12_VMALL VMID=1")
    assert (r.handled, r.errno, r.sent) == (0, -errno.EIO, [])
    assert s.execute("hwpt-invalidate s2 CMD_SYNC").error.startswith("hwpt-invalidate: no vIOMMU")


# -- accelerated-mode topology rules ---------------------------------------------------------------
EMULATED = VM.replace('  { name = "gnic1", parent = "grp1", addr = "0" },\n',
                      '  { name = "gnic1", parent = "grp1", addr = "0" },\n'
                      '  { name = "grp2", kind = "root_port", parent = "pcie.0", addr = "3" },\n'
                      '  { name = "gblk", parent = "grp2", addr = "0" },\n')


def test_emulated_endpoint_cold_plugged_is_an_error_hot_plugged_a_warning():
    s = Session(EMULATED, "t")
    topo = {t["device"]: t for t in ok(s, "vsmmu").vsmmus[0]["topology"]}
    assert topo["gnic0"]["address_space"] == "system" and topo["grp2"]["address_space"] == \
        "iommu"
    assert topo["gblk"]["severity"] == "error" and topo["grp2"]["severity"] is None
    f = [x for x in ok(s, "check").system if x["subject"] == "vsmmu0 gblk"]
    assert f and f[0]["severity"] == "error" and "cold-plugged" in f[0]["message"]
    assert "non-accelerated vSMMU" in f[0]["fix"]
    s = Session(EMULATED.replace('vfio = { gnic0 = "nic0", gnic1 = "nic1" }',
                                 'vfio = { gnic0 = "nic0", gnic1 = "nic1" }\n'
                                 'hotplug = ["gblk"]'), "t")
    f = [x for x in ok(s, "check").system if x["subject"] == "vsmmu0 gblk"]
    assert f and f[0]["severity"] == "warning" and "hot-plugged" in f[0]["message"]


def test_vsid_must_be_the_guest_rid():
    s = Session(VM.replace('{ device = "nic1", vsid = 0x200,', '{ device = "nic1", vsid = 0x210,'),
                "t")
    f = [x for x in ok(s, "check").system if x["subject"] == "vsmmu0 gnic1"]
    assert f and "RID 0x200" in f[0]["message"] and "vsid = 0x200" in f[0]["fix"]


# -- scenario errors name the key and the line -----------------------------------------------------
@pytest.mark.parametrize("old,new,where", [
    ('stream_table = { base = 0x4e00_0000, log2size = 16 }',
     'stream_table = { base = 0x7e00_0000, log2size = 16 }', "vsmmu[0].stream_table.base"),
    ('cmdq = { base = 0x4e40_0000, log2size = 8 }', 'cmdq = { base = 0x4e40_0008, log2size = 8 }',
     "vsmmu[0].cmdq.base"),
    ('viommu = "viommu0"\nprimary_bus', 'viommu = "nope"\nprimary_bus', "vsmmu[0].viommu"),
    ('primary_bus = "pcie.0"', 'primary_bus = "pcie.9"', "vsmmu[0].primary_bus"),
    ('vfio = { gnic0 = "nic0",', 'vfio = { gnicX = "nic0",', "vsmmu[0].vfio.gnicX"),
    ('{ device = "nic1", vsid = 0x200, config = "s1"', '{ device = "nic1", vsid = 0x200, '
     'config = "s2"', "vsmmu[0].streams[1].config"),
    ('domain = "nic1-dma" }', 'domain = "nope" }', "vsmmu[0].streams[1].domain"),
    ('{ device = "nic1", vsid = 0x200', '{ device = "nic1", vsid = 0x100',
     "vsmmu[0].streams[1].vsid"),
    ('name = "vsmmu0"', 'name = "vsmmu0"\nbogus = 1', "vsmmu[0]: unknown key 'bogus'"),
])
def test_vsmmu_scenario_errors_name_key_and_line(old, new, where):
    assert old in VM
    text = VM.replace(old, new, 1)
    with pytest.raises(ScenarioError) as e:
        System.from_text(text, "t.toml")
    msg = str(e.value)
    assert msg.startswith("t.toml:") and where in msg, msg
    line = int(msg.split(":")[1])
    key = where.split(".")[-1].split("[")[0].split(":")[0]
    if key not in ("vsmmu", "gnicX"):
        assert key in text.splitlines()[line - 1] or "[[vsmmu]]" in text.splitlines()[line - 1]


def test_vsmmu_needs_iommufd():
    text = VM[:VM.index("[iommufd]")]
    with pytest.raises(ScenarioError, match="an accelerated vSMMU runs on iommufd objects"):
        System.from_text(text + VM[VM.index("[[vsmmu]]"):], "t.toml")


# -- ITS injects -----------------------------------------------------------------------------------
def test_its_discard_breaks_the_msi_at_the_its():
    s = Session(VM, "t")
    r = ok(s, "inject its-discard nic0")
    assert r.command == "DISCARD" and r.fields == {"DeviceID": 0x200, "EventID": 0} and r.ok
    m = ok(s, "msi nic0 0")
    assert not m.ok and m.failed == "its" and m.reason.startswith("UNMAPPED_INTERRUPT")
    assert m.fix.startswith("MAPTI DeviceID=0x200 EventID=0x0")
    assert ok(s, "msi nic0 1").intid == 8193                        # the other event is intact


def test_its_movi_to_an_unmapped_collection_stalls_the_its():
    s = Session(VM, "t")
    r = ok(s, "inject its-movi nic0 vector=1")
    # collections 0 and 1 are mapped (MAPC): the lowest unmapped one is 2
    assert r.fields == {"DeviceID": 0x200, "EventID": 1, "ICID": 2}
    assert not r.ok and r.error == "MOVI_UNMAPPED_COLLECTION"
    assert ok(s, "msi nic0 1").intid == 8193                        # the ITE did not move
    its = ok(s, "its its0")
    assert its.stalled and its.errors[0]["name"] == "MOVI"
    f = [x for x in ok(s, "check").system if x["area"] == "its"]
    assert any(x["severity"] == "error" and "stalled" in x["message"] for x in f)


# -- Done when: the whole flow in the REPL's commands ----------------------------------------------
def test_done_when_msi_breaks_is_fixed_and_guest_ste_and_tlbi_flow_to_the_smmu():
    s = Session(VM, "t")
    m = ok(s, "msi nic0 0")
    assert m.ok and (m.address, m.ipa, m.pa) == (0x0800_0040, 0x0809_0040, 0x0809_0040)
    assert (m.intid, m.icid, m.target) == (8192, 0, 0)
    ok(s, "inject its-page nic0")                       # the S2 loses the ITS page
    m = ok(s, "msi nic0 0")
    assert not m.ok and m.failed == "smmu" and "stage 2" in m.reason
    fix = m.fix.split("`")[1]
    assert fix == "map s2 0x8090000 0x8090000 4K"
    ok(s, fix)                                          # one command
    m = ok(s, "msi nic0 0")
    assert m.ok and m.intid == 8192
    # the guest writes its STE and invalidates: the host STE follows through iommufd
    ok(s, "vste vsmmu0 0x100 Config=bypass")
    log = ok(s, "vcmd vsmmu0 CMD_CFGI_STE StreamID=0x100 Leaf=1").log
    assert log[0]["steps"][1]["what"] == "ATTACH"
    assert config(host_ste(s, 0x200)) == CFG_S2
    # time travel restores the guest and the host side together
    ok(s, "back")
    assert config(host_ste(s, 0x200)) == CFG_NESTED
    assert ok(s, "vsmmu").vsmmus[0]["devices"][0]["in_sync"] is False
    ok(s, "forward")
    assert config(host_ste(s, 0x200)) == CFG_S2
    ok(s, "vste vsmmu0 0x100 Config=s1_trans")
    ok(s, "vcmd vsmmu0 CMD_CFGI_STE StreamID=0x100 Leaf=1")
    assert config(host_ste(s, 0x200)) == CFG_NESTED
    st = ok(s, "vcmd vsmmu0 CMD_TLBI_NH_ASID ASID=1").log[0]["steps"][0]
    assert st["what"] == "IOMMU_HWPT_INVALIDATE" and st["host_fields"] == {"VMID": 1, "ASID": 1}
    assert host_cmds(s, n=2) == [("CMD_TLBI_NH_ASID", {"VMID": 1, "ASID": 1}),
                                 ("CMD_SYNC", host_cmds(s, n=1)[0][1])]
    assert ok(s, "check").clean


def test_scenario_veventq_sets_the_depth():
    text = VM.replace('viommu = [{ name = "viommu0", device = "nic0", hwpt = "s2" }]',
                      'viommu = [{ name = "viommu0", device = "nic0", hwpt = "s2" }]\n'
                      'veventq = [{ viommu = "viommu0", depth = 1 }]')
    s = Session(text, "t")
    for _ in range(2):
        ok(s, "inject event smmu0 C_BAD_STE StreamID=0x300")
    r = ok(s, "vevents vsmmu0")
    # depth 1: the second event finds the queue full -> the lost-events header
    assert [(v["sequence"], v["lost_events"], v["vsid"]) for v in r.vevents] == \
        [(0, False, 0x200), (1, True, None)]
    with pytest.raises(ScenarioError, match=r"iommufd.veventq\[1\].viommu: viommu0 has a vEVENTQ"):
        System.from_text(text.replace('depth = 1 }]', 'depth = 1 }, { viommu = "viommu0", '
                                      'depth = 2 }]'), "t.toml")


def test_vmm_reads_guest_ram_the_smmu_reads_through_the_s2():
    s = Session(VM, "t")
    # the S2 loses the 2 MiB of guest RAM holding the guest stream table (IPA 0x4e00_0000)
    # and the one holding the guest CD tables (IPA 0x4f00_0000)
    ok(s, "inject unmap s2 0x4e000000")
    ok(s, "inject unmap s2 0x4f000000")
    # QEMU still reads the guest STE from guest RAM: the install works
    log = ok(s, "vcmd vsmmu0 CMD_CFGI_STE StreamID=0x100").log
    assert log[0]["outcome"] == "done" and log[0]["steps"][0]["config"] == "s1_trans"
    # the physical SMMU fetches the CD through the S2 and cannot
    row = ok(s, "vsmmu").vsmmus[0]["devices"][0]
    assert "cannot fetch the CD through the S2" in row["guest_cd"]["problem"]
    assert "IPA 0x4f004000" in row["guest_cd"]["problem"]
    w = ok(s, "walk nic0 0x10000000")
    assert w.fault["type"] == "F_TRANSLATION" and w.fault["s2"] and w.fault["class"] == "CD"
    m = ok(s, "msi nic0 0")
    assert m.failed == "smmu" and "fetching the guest's CD at IPA 0x4f004000" in m.reason


def test_guest_pci_errors_name_the_vm():
    text = VM.replace('{ name = "gnic1", parent = "grp1", addr = "0" }',
                      '{ name = "gnic1", parent = "grp9", addr = "0" }')
    with pytest.raises(ScenarioError) as e:
        System.from_text(text, "t.toml")
    msg = str(e.value)
    assert "vm[0].pci" in msg and "gnic1" in msg
    line = int(msg.split(":")[1])
    assert "pci = {" in text.splitlines()[line - 1]


def test_full_guest_event_queue_overflows_until_the_guest_reads():
    text = VM.replace("evtq = { base = 0x4e41_0000, log2size = 7 }",
                      "evtq = { base = 0x4e41_0000, log2size = 1 }")
    text = text.replace('viommu = [{ name = "viommu0", device = "nic0", hwpt = "s2" }]',
                        'viommu = [{ name = "viommu0", device = "nic0", hwpt = "s2" }]\n'
                        'veventq = [{ viommu = "viommu0", depth = 8 }]')
    s = Session(text, "t")
    for _ in range(3):
        ok(s, "inject event smmu0 F_TRANSLATION StreamID=0x300")
    r = ok(s, "vevents vsmmu0 consume")
    # the vEVENTQ (depth 8) takes all three; the guest queue holds 2: the third is lost there
    assert [v["written"] is not None for v in r.vevents] == [True, True, False]
    assert r.overflow and [g["vsid"] for g in r.guest] == [0x200, 0x200]
    ok(s, "inject event smmu0 F_TRANSLATION StreamID=0x300")
    r = ok(s, "vevents vsmmu0")             # the guest read and acknowledged: room again
    assert not r.overflow and [g["vsid"] for g in r.guest] == [0x200]
