"""Coherence check: stale cached STE/CD/TLB entries and the command that fixes each."""
from smmudbg.arch.fieldtable import fmt
from smmudbg.model.coherence import stale_entries
from smmudbg.model.system import System

STE, CD = fmt("STE"), fmt("CD")


def test_clean_system_has_no_stale_entries():
    m = System.default().smmu()
    for sid, va, ssid in ((8, 0x1000_0000, None), (8, 0x7f00_0000_0000, 1),
                          (0x100, 0xffff_0000, None), (0x200, 0x4000_0000, None)):
        assert m.translate(sid, va, ssid)["fault"] is None
    assert stale_entries(m) == []


def test_stale_ste_and_its_fix():
    m = System.default().smmu()
    m.translate(0x200, 0x4000_0000)
    m.write_ste(0x200, STE.encode(m.read_ste(0x200), S2VMID=5))   # no CFGI
    st = [e for e in stale_entries(m) if e["kind"] == "STE"]
    assert len(st) == 1 and st[0]["fix"] == "CMD_CFGI_STE StreamID=0x200 Leaf=1"
    assert "dword 2" in st[0]["problem"]
    m.submit([st[0]["command"], ("CMD_SYNC", {})])
    assert not [e for e in stale_entries(m) if e["kind"] == "STE"]


def test_stale_cd_and_its_fix():
    m = System.default().smmu()
    m.translate(0x100, 0xffff_0000)
    cd = m.walker.cached_cds()[0]
    m.mem.write_words(cd["cd_pa"], CD.encode(cd["words"], ASID=17))
    st = [e for e in stale_entries(m) if e["kind"] == "CD"]
    assert st[0]["fix"] == "CMD_CFGI_CD StreamID=0x100 SubstreamID=0x0 Leaf=1"


def test_stale_tlb_entry_after_unmap_without_tlbi():
    sysm = System.default()
    m = sysm.smmu()
    va = 0x1000_0000
    assert m.translate(8, va)["fault"] is None
    r = m.walker.translate_uncached(8, va, trace=True)
    leaf = [s for s in r["steps"] if s["what"] == "S1"][-1]
    m.mem.write_u64(leaf["desc_pa"], 0)                      # guest unmaps, forgets the TLBI
    assert m.translate(8, va)["fault"] is None               # still translated: stale
    st = stale_entries(m)
    assert [e["fix"] for e in st] == ["CMD_TLBI_NH_VA VMID=0x1 ASID=0x1 Addr=0x10000000"]
    assert "F_TRANSLATION" in st[0]["problem"]
    m.submit([st[0]["command"], ("CMD_SYNC", {})])
    assert stale_entries(m) == []
    assert m.translate(8, va)["fault"]["type"] == "F_TRANSLATION"


def test_stale_s2_entry_fix_is_s2_ipa():
    m = System.default().smmu()
    m.translate(0x200, 0x4000_0000)
    r = m.walker.translate_uncached(0x200, 0x4000_0000, trace=True)
    leaf = [s for s in r["steps"] if s["what"] == "S2"][-1]
    m.mem.write_u64(leaf["desc_pa"], leaf["desc"] & ~(1 << 7))   # S2AP: drop write
    st = [e for e in stale_entries(m) if e["kind"] == "TLB"]
    assert st[0]["fix"] == "CMD_TLBI_S2_IPA VMID=0x1 Addr=0x40000000"
    assert "permission r" in st[0]["problem"]
