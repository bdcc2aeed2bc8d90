"""Faults that explain themselves (model/explain.py): one test per rule the walker can fire.

Each test builds the configuration by hand (tests/walkkit.py), walks it, and checks the key facts
of the explanation against what the test built: the stage and level, the descriptor value, the
field values the rule reads, and the rule (Arm ARM VMSAv8-64 permission rules, IHI 0070 events).
"""
import pytest

from smmudbg.model.explain import explain
from smmudbg.session import Session
from walkkit import CD, GIPA, STE, STRTAB, Kit, nested_kit, s1_kit

VA = 0x1000_0000
PA = 0x4800_0000


def ex(k, sid, va, ssid=None, cd_pa=None, **kw):
    r = k.walk(sid, va, ssid, **kw)
    assert r["fault"] is not None, r
    ctx = {"features": k.caps, "ste": k.mem.read_words(STRTAB + 64 * sid, 8),
           "cd": k.mem.read_words(cd_pa, 8) if cd_pa is not None else None}
    e = explain(r["fault"], r["steps"], ctx)
    assert e["text"].startswith(r["fault"]["type"]) or r["fault"]["type"] == "ABORT"
    return r, e


def leaf(tb, va):
    level, daddr, d = tb.lookup(va)
    return level, d


# ---- stage-1 permission rules ----------------------------------------------------------------
def s1_case(**map_kw):
    k, s1, cd = s1_kit(cd_extra=map_kw.pop("cd", None))
    s1.map(VA, PA, 0x1000, **map_kw)
    return k, s1, cd


def test_s1_unprivileged_access_to_el1_only_page():
    k, s1, cd = s1_case(user=False)                       # AP=0b00
    r, e = ex(k, 1, VA, cd_pa=cd)
    level, d = leaf(s1, VA)
    assert (e["rule"], e["stage"], e["level"], e["descriptor"]) == \
        ("F_PERMISSION:s1:unprivileged", 1, level, d)
    assert e["fields"]["AP"] == 0 and level == 3
    assert "stage 1 level 3" in e["text"] and "AP=0b00 grants EL1 only" in e["text"]
    assert "unprivileged (PnU=0)" in e["text"] and "privileged access" in e["change"]
    assert k.walk(1, VA, priv=True)["fault"] is None      # the change it names does change it


def test_s1_write_to_read_only():
    k, s1, cd = s1_case(write=False)                      # AP=0b11
    r, e = ex(k, 1, VA, cd_pa=cd, write=True)
    assert e["rule"] == "F_PERMISSION:s1:ro" and e["fields"]["AP"] == 3
    assert "AP=0b11 is read-only" in e["text"] and "AP[2]=0" in e["change"]


def test_s1_pxn_and_uxn():
    k, s1, cd = s1_case()                                 # exec_=False: PXN=UXN=1
    _, e = ex(k, 1, VA, cd_pa=cd, instr=True, priv=True)
    assert e["rule"] == "F_PERMISSION:s1:pxn" and e["fields"]["PXN"] == 1
    assert "PXN=1" in e["text"]
    _, e = ex(k, 1, VA, cd_pa=cd, instr=True)
    assert e["rule"] == "F_PERMISSION:s1:uxn" and e["fields"]["UXN"] == 1


def test_s1_el0_writable_is_privileged_execute_never():
    k, s1, cd = s1_case(exec_=True)                       # AP=0b01, PXN=UXN=0
    _, e = ex(k, 1, VA, cd_pa=cd, instr=True, priv=True)
    assert e["rule"] == "F_PERMISSION:s1:el0-writable"
    assert (e["fields"]["AP"], e["fields"]["PXN"]) == (1, 0)
    assert "AP=0b01" in e["text"] and "never executable at EL1" in e["text"]


def test_s1_wxn():
    k, s1, cd = s1_case(exec_=True, user=False, cd={"WXN": 1})   # AP=0b00 writable, WXN
    _, e = ex(k, 1, VA, cd_pa=cd, instr=True, priv=True)
    assert e["rule"] == "F_PERMISSION:s1:wxn" and e["fields"]["WXN"] == 1
    assert "CD.WXN=1" in e["text"]


def test_s1_pan():
    k, s1, cd = s1_case(cd={"PAN": 1})                    # AP=0b01: EL0-accessible
    _, e = ex(k, 1, VA, cd_pa=cd, priv=True)
    assert e["rule"] == "F_PERMISSION:s1:pan" and "CD.PAN=1" in e["text"]


def test_s1_table_attributes():
    k, s1, cd = s1_case(exec_=True, user=True)
    l0 = s1.root + 8 * ((VA >> 39) & 511)
    d0 = k.mem.read_u64(l0)
    k.mem.write_u64(l0, d0 | (1 << 62))                    # APTable[1]: read-only below
    _, e = ex(k, 1, VA, cd_pa=cd, write=True)
    assert e["rule"] == "F_PERMISSION:s1:ro" and "APTable[1]=1" in e["text"]
    assert "level-0 table descriptor has APTable=0x2" in e["text"]
    k.mem.write_u64(l0, d0 | (1 << 61))                    # APTable[0]: no EL0 access below
    k.walker.invalidate_all()
    _, e = ex(k, 1, VA, cd_pa=cd)
    assert e["rule"] == "F_PERMISSION:s1:unprivileged" and "APTable[0]=1" in e["text"]
    # PXNTable, on a leaf that only it keeps from privileged execution (AP=0b00, PXN=0).
    k2, s2, cd2 = s1_case(exec_=True, user=False)         # AP=0b00: only PXNTable forbids
    l0 = s2.root + 8 * ((VA >> 39) & 511)
    k2.mem.write_u64(l0, k2.mem.read_u64(l0) | (1 << 59))
    _, e = ex(k2, 1, VA, cd_pa=cd2, instr=True, priv=True)
    assert e["rule"] == "F_PERMISSION:s1:pxn-table" and "PXNTable=1" in e["text"]


# ---- stage-2 permission rules ----------------------------------------------------------------
def s2_only(**map_kw):
    k = Kit()
    s2 = k.stage2(guest_ram=False)
    s2.map(GIPA, 0x4800_0000, 0x1000, **map_kw)
    k.put_ste(1, V=1, Config=6, **k.ste_s2_fields())
    return k, s2


def test_s2ap_read_write_and_xn():
    k, s2 = s2_only(read=False, write=True)               # S2AP=0b10
    _, e = ex(k, 1, GIPA)
    level, d = leaf(s2, GIPA)
    assert (e["rule"], e["stage"], e["level"], e["descriptor"]) == \
        ("F_PERMISSION:s2:s2ap-read", 2, level, d)
    assert e["fields"]["S2AP"] == 2 and "S2AP=0b10 does not grant read" in e["text"]
    k, s2 = s2_only(write=False)                           # S2AP=0b01
    _, e = ex(k, 1, GIPA, write=True)
    assert e["rule"] == "F_PERMISSION:s2:s2ap-write" and "S2AP=0b01" in e["text"]
    k, s2 = s2_only()                                      # exec_=False: XN=0b10
    _, e = ex(k, 1, GIPA, instr=True)
    assert e["rule"] == "F_PERMISSION:s2:xn" and e["fields"]["XN"] == 2
    assert "XN=0b10" in e["text"]


def test_s2_permission_on_a_stage1_table_fetch():
    k, s1, cd = nested_kit()
    s1.map(VA, GIPA + 0x200_0000, 0x1000)
    table_ipa = s1.root & ~0xFFF
    k.s2.unmap(table_ipa, 0x1000)
    k.s2.map(table_ipa, k.ipa_pa(table_ipa), 0x1000, read=False, write=True)
    r, e = ex(k, 1, VA)
    assert r["fault"]["class"] == "TT"
    assert e["rule"] == "F_PERMISSION:s2:s2ap-read" and "(CLASS=TT)" in e["text"]
    assert f"{r['fault']['ipa']:#x}" in e["text"]


# ---- translation, address size, access flag, aborts --------------------------------------------
def test_translation_faults():
    k, s1, cd = s1_case()
    _, e = ex(k, 1, VA + 0x1000, cd_pa=cd)                 # unmapped page, same L3 table
    assert e["rule"] == "F_TRANSLATION:invalid" and e["level"] == 3
    assert e["descriptor"] == 0 and "Valid=0" in e["text"]
    _, e = ex(k, 1, 1 << 50, cd_pa=cd)                     # beyond 48-bit T0SZ
    assert e["rule"] == "F_TRANSLATION:s1-input-size" and e["fields"]["T0SZ"] == 16
    k2, s12, cd2 = s1_case(cd={"EPD0": 1, "EPD1": 0, "T1SZ": 16, "TG1": 2})
    _, e = ex(k2, 1, VA, cd_pa=cd2)
    assert e["rule"] == "F_TRANSLATION:EPD0" and "CD.EPD0=1" in e["text"]
    # Stage 2: IPA beyond S2T0SZ (40 bits), and an unmapped IPA.
    k3, s2 = s2_only()
    _, e = ex(k3, 1, 1 << 41)
    assert e["rule"] == "F_TRANSLATION:s2-input-size" and e["stage"] == 2
    _, e = ex(k3, 1, GIPA + 0x1000)
    assert e["rule"] == "F_TRANSLATION:invalid" and e["stage"] == 2 and e["level"] == 3


def test_translation_fault_at_stage2_during_cd_fetch():
    k, s1, cd = nested_kit()
    k.s2.unmap(cd & ~0xFFF, 0x1000)
    _, e = ex(k, 1, VA)
    assert e["stage"] == 2 and "(CLASS=CD)" in e["text"] and f"{cd:#x}" in e["text"]


def test_reserved_level3_descriptor():
    k, s1, cd = s1_case()
    level, daddr, d = s1.lookup(VA)
    k.mem.write_u64(daddr, d & ~2)                         # bits[1:0]=0b01 at level 3
    _, e = ex(k, 1, VA, cd_pa=cd)
    assert e["rule"] == "F_TRANSLATION:reserved" and "reserved at level 3" in e["text"]


def test_address_size_faults():
    k, s1, cd = s1_kit(cd_extra={"IPS": 2})                # 40-bit IPS
    s1.map(VA, 1 << 40, 0x1000)
    _, e = ex(k, 1, VA, cd_pa=cd)
    assert e["rule"] == "F_ADDR_SIZE:stage1" and e["level"] == 3 and "CD.IPS" in e["text"]
    assert f"{1 << 40:#x}" in e["text"]
    k2, _ = s2_only()
    _, e = ex(k2, 1, 1 << 48)                              # beyond the OAS (48 bits)
    assert e["rule"] == "F_ADDR_SIZE:input" and "OAS" in e["text"]


def test_access_flag_faults():
    k, s1, cd = s1_case(af=False)
    _, e = ex(k, 1, VA, cd_pa=cd)
    assert e["rule"] == "F_ACCESS:stage1" and e["fields"]["AF"] == 0 and e["level"] == 3
    assert "CD.AFFD=0" in e["text"] and "CD.AFFD=1" in e["change"]
    k2, _ = s2_only(af=False)
    _, e = ex(k2, 1, GIPA)
    assert e["rule"] == "F_ACCESS:stage2" and "STE.S2AFFD=0" in e["text"]


def test_walk_external_aborts():
    k, s1, cd = s1_case()
    l0 = s1.root + 8 * ((VA >> 39) & 511)
    k.mem.write_u64(l0, 0x7_0000_0000 | 3)
    r, e = ex(k, 1, VA, cd_pa=cd)
    assert e["rule"] == "F_WALK_EABT:stage1" and e["level"] == 1
    assert f"{r['fault']['fetch_addr']:#x}" in e["text"]
    k2, _ = s2_only()
    top = k2.s2.root + 8 * ((GIPA >> 30) & 1023)
    k2.mem.write_u64(top, 0x7_0000_0000 | 3)
    _, e = ex(k2, 1, GIPA)
    assert e["rule"] == "F_WALK_EABT:stage2" and e["stage"] == 2


def test_ste_and_cd_fetch_aborts():
    k = Kit()
    k.put_ste(1, V=1, Config=5, S1ContextPtr=0x7_0000_0000 >> 6)
    _, e = ex(k, 1, 0)
    assert e["rule"] == "F_CD_FETCH:abort" and "0x700000000" in e["text"]
    k.walker.configure(strtab_base=0x7_0000_0000)
    _, e = ex(k, 3, 0)
    assert e["rule"] == "F_STE_FETCH:abort" and f"{0x7_0000_0000 + 3 * 64:#x}" in e["text"]


# ---- configuration faults --------------------------------------------------------------------
@pytest.mark.parametrize("fields,reason", [
    (dict(V=0), "STE.V=0"),
    (dict(S2TG=3), "STE.S2TG"),
    (dict(S2SL0=3), "STE.S2SL0"),
    (dict(S2T0SZ=16), "STE.S2T0SZ"),
    (dict(S2AA64=0), "STE.S2AA64"),
])
def test_c_bad_ste(fields, reason):
    k = Kit()
    k.stage2(4096, 40)
    base = dict(V=1, Config=6, **k.ste_s2_fields())
    base.update(fields)
    k.put_ste(1, **base)
    r, e = ex(k, 1, GIPA)
    assert e["rule"] == f"C_BAD_STE:{r['fault']['reason']}" and reason in e["text"]
    assert f"PA {STRTAB + 64:#x}" in e["text"] and e["change"]


@pytest.mark.parametrize("extra,reason", [(dict(V=0), "CD.V=0"), (dict(T0SZ=10), "T0SZ"),
                                          (dict(TG0=3), "TG0")])
def test_c_bad_cd(extra, reason):
    k, s1, cd = s1_kit(cd_extra=extra)
    _, e = ex(k, 1, 0x1000, cd_pa=cd)
    assert e["rule"].startswith("C_BAD_CD:") and reason in e["text"] and e["change"]
    assert f"PA {cd:#x}" in e["text"]


def test_substream_and_stream_faults():
    k = Kit(log2size=4)
    s1 = k.stage1()
    table = k.host.alloc(64 * 4)
    k.mem.write_words(table, k.cd_words(s1))
    k.put_ste(1, V=1, Config=5, S1ContextPtr=table >> 6, S1CDMax=2, S1DSS=0)
    _, e = ex(k, 1, 0x1000)
    assert e["rule"] == "F_STREAM_DISABLED:no SubstreamID and STE.S1DSS=terminate"
    assert "S1DSS" in e["change"]
    _, e = ex(k, 1, 0x1000, ssid=4)
    assert e["rule"] == "C_BAD_SUBSTREAMID:SubstreamID is beyond STE.S1CDMax"
    k.put_ste(2, V=1, Config=4)
    _, e = ex(k, 2, 0x1000, ssid=1)
    assert "stage 1 is not enabled" in e["text"]
    k.put_ste(3, V=1, Config=5, S1ContextPtr=table >> 6, S1CDMax=2, S1DSS=2)
    _, e = ex(k, 3, 0x1000, ssid=0)
    assert e["rule"].startswith("F_STREAM_DISABLED:SubstreamID 0")
    _, e = ex(k, 16, 0)
    assert e["rule"].startswith("C_BAD_STREAMID:StreamID is beyond") and "LOG2SIZE" in e["change"]
    k.put_ste(5, V=1, Config=0)
    _, e = ex(k, 5, 0)
    assert e["rule"] == "ABORT:STE.Config=abort" and "terminated without an event" in e["text"]


# ---- through the walk command ----------------------------------------------------------------
def test_walk_result_carries_the_explanation():
    s = Session()
    out = s.execute("walk nic0 0x20000000 access=write dry")     # nic0-dma 0x20000000: "r"
    assert out.ok
    e = out.result.explanation
    assert e["rule"] == "F_PERMISSION:s1:ro" and e["stage"] == 1 and e["fields"]["AP"] & 2
    from smmudbg.render import render_text
    assert "why: F_PERMISSION at stage 1 level 3" in render_text(out.result, width=400)
    ok = s.execute("walk nic0 0x10000000 dry")
    assert ok.result.explanation is None


def test_event_rows_carry_the_explanation():
    s = Session()
    assert s.execute("walk nic0 0x20000000 access=write").ok       # records F_PERMISSION
    assert s.execute("walk nic0 0x30000000").ok                    # records F_TRANSLATION
    ents = s.execute("events smmu0").result.entries
    assert [e["event"] for e in ents] == ["F_PERMISSION", "F_TRANSLATION"]
    assert "AP=0b11 is read-only" in ents[0]["explanation"]
    assert ents[1]["explanation"].startswith("F_TRANSLATION at stage 1 level 2")
    # The state changes after the event: the row says the walk now translates.
    assert s.execute("map nic0-dma 0x30000000 0x41000000 4K").ok
    ents = s.execute("events smmu0").result.entries
    assert "now translates" in ents[1]["explanation"]


def test_permission_fault_from_the_iotlb():
    s = Session()
    # A read fills the IOTLB for nic0-dma's read-only 16K (IOVA 0x2000_0000); a write then
    # faults on the cached entry. The tables agree (AP=0b11): the explanation says both.
    assert s.execute("walk nic0 0x20000000").ok
    out = s.execute("walk nic0 0x20000000 access=write")
    assert out.result.steps[-1]["outcome"] == "cached"
    e = out.result.explanation
    assert e["rule"] == "F_PERMISSION:s1:ro:cached" and "from the IOTLB" in e["text"]
    assert "AP=0b11 is read-only" in e["text"]
    # Make the page writable in memory without invalidating: the cached entry still refuses.
    leaf = s.system.domain_tables("nic0-dma").lookup(0x2000_0000)["leaf"]
    assert s.execute(f"set desc {leaf['desc_pa']:#x} AP=1").ok
    e = s.execute("walk nic0 0x20000000 access=write").result.explanation
    assert e["rule"] == "F_PERMISSION:s1:cached" and "tables in memory now allow it" in e["text"]
    assert "invalidation" in e["text"]
