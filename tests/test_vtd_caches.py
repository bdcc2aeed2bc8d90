"""VT-d caches and queued invalidation on examples/vtd-nested.toml: the context-cache,
PASID-cache and IOTLB a missing invalidation leaves stale, the invalidation queue removing
exactly what each descriptor names (VT-d 6.5.2), and `check` naming the descriptor that fixes a
stale entry.

Expected translations are derived from the scenario text as in test_vtd_system.py: nic0 (RID
0x10, DID 2, nested) maps VA 0x7F00_0000_1234 -> GPA 0x0200_1234 -> PA 0x6200_1234; gpu0
(RID 0x390) without PASID uses vm0-s2 alone (DID 1): 0x1234 -> PA 0x6000_1234.
"""
import pathlib

import pytest

from smmudbg.arch import fmt
from smmudbg.session import Session

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "vtd-nested.toml"


@pytest.fixture
def s():
    return Session(EXAMPLE.read_text(), str(EXAMPLE))


def run(s, line):
    o = s.execute(line)
    assert o.error is None, (line, o.error)
    return o.result.to_json()


def outcomes(r):
    return [(x["what"], x["outcome"]) for x in r["steps"]]


def removed(s, line):
    return [e["removed"] for e in run(s, line)["log"]]


def test_second_walk_is_served_by_the_caches(s):
    first = run(s, "walk nic0 0x7f0000001234")
    again = run(s, "walk nic0 0x7f0000001234")
    assert again["pa"] == first["pa"] == 0x6200_1234
    assert outcomes(again) == [("context", "cached"), ("pasid_entry", "cached"),
                               ("iotlb", "cached")]
    # dry looks at memory only: the whole walk again.
    assert run(s, "walk nic0 0x7f0000001234 dry")["steps"][0]["what"] == "root"


def test_stale_iotlb_entry_and_the_pasid_based_invalidation_that_fixes_it(s):
    run(s, "walk nic0 0x7f0000001234")
    u = s.system.vtd("dmar0")
    pa, _old, _lvl = u.domains["guest-fs"].tables.leaf(0x7F00_0000_1000)
    s.system.mem.write_u64(pa, 0)                       # the guest unmaps, no invalidation
    r = run(s, "walk nic0 0x7f0000001234")
    assert r["pa"] == 0x6200_1234 and r["steps"][-1]["what"] == "iotlb"     # stale answer
    c = run(s, "check dmar0")
    [rep] = c["smmus"]
    [st] = rep["stale"]
    assert st["kind"] == "IOTLB"
    assert st["fix"] == "P_IOTLB_INV_DSC G=page DID=2 PASID=0 ADDR=0x7f0000001000 AM=0"
    assert "SFS_2" in st["problem"]
    # An IOTLB_INV_DSC of another domain, or a PASID-based one of another PASID, leaves it.
    assert removed(s, "cmd dmar0 IOTLB_INV_DSC G=domain DID=3") == [0]
    assert removed(s, "cmd dmar0 P_IOTLB_INV_DSC G=pasid DID=2 PASID=9") == [0]
    assert run(s, "check dmar0")["smmus"][0]["stale"]
    assert removed(s, f"cmd dmar0 {st['fix']}") == [1]
    assert run(s, "check dmar0")["smmus"][0]["stale"] == []
    assert run(s, "walk nic0 0x7f0000001234")["fault"]["reason"] == 0x71      # SFS.2


def test_iotlb_invalidation_scope(s):
    run(s, "walk nic0 0x7f0000001234")                  # nested, DID 2, PASID 0
    run(s, "walk gpu0 0x1234")                          # second stage, DID 1, RID_PASID 0
    run(s, "walk gpu0 0x7f0000200000 pasid=9")          # nested, DID 2, PASID 9
    tlb = s.system.vtd("dmar0").walker.tlb_entries
    assert sorted((e["did"], e["pasid"], e["pgtt"]) for e in tlb()) == [
        (1, 0, "second_stage"), (2, 0, "nested"), (2, 9, "nested")]
    # Domain-selective IOTLB invalidation: DID 1's second-stage entry only.
    assert removed(s, "cmd dmar0 IOTLB_INV_DSC G=domain DID=1") == [1]
    # Page-selective PASID-based: the page of PASID 9 only (a 2 MiB translation, AM=9).
    assert removed(s, "cmd dmar0 P_IOTLB_INV_DSC G=page DID=2 PASID=9 ADDR=0x7f0000200000 "
                      "AM=9") == [1]
    assert [(e["did"], e["pasid"]) for e in tlb()] == [(2, 0)]
    assert removed(s, "cmd dmar0 IOTLB_INV_DSC G=global") == [1]
    assert tlb() == []


def test_pasid_and_context_cache_invalidation_scope(s):
    run(s, "walk nic0 0x7f0000001234")
    run(s, "walk gpu0 0x1234")
    run(s, "walk gpu0 0x7f0000001000 pasid=9")
    k = s.system.vtd("dmar0").walker
    assert sorted((e["sid"], e["pasid"], e["did"]) for e in k.cached_pasids()) == [
        (0x10, 0, 2), (0x390, 0, 1), (0x390, 9, 2)]
    assert removed(s, "cmd dmar0 PC_INV_DSC G=pasid DID=2 PASID=9") == [1]
    assert removed(s, "cmd dmar0 PC_INV_DSC G=domain DID=2") == [1]            # nic0's
    assert [(e["sid"], e["pasid"]) for e in k.cached_pasids()] == [(0x390, 0)]
    assert [e["sid"] for e in k.cached_contexts()] == [0x10, 0x390]
    # Device-selective with FM=3 (function bits 2:0 ignored): 0x391 names 03:12.x, i.e. gpu0.
    assert removed(s, "cmd dmar0 CC_INV_DSC G=device SID=0x391 FM=3") == [1]
    assert removed(s, "cmd dmar0 CC_INV_DSC G=device SID=0x11 FM=0") == [0]
    assert removed(s, "cmd dmar0 CC_INV_DSC G=global") == [1]


def test_stale_context_and_pasid_entries(s):
    run(s, "walk nic0 0x7f0000001234")
    u = s.system.vtd("dmar0")
    c = u.config(0x10)
    ctx = fmt("SM_CONTEXT_ENTRY", "vtd")
    words = list(c["ctx"])
    ctx.field("P").put(words, 0)
    s.system.mem.write_words(c["ctx_pa"], words)        # context entry cleared, no CC_INV
    pe = list(c["pe"])
    fmt("PASID_ENTRY", "vtd").field("PGTT").put(pe, 2)   # nested -> second stage, no PC_INV
    s.system.mem.write_words(c["pe_pa"], pe)
    stale = {e["kind"]: e["fix"] for e in run(s, "check dmar0")["smmus"][0]["stale"]}
    assert stale["CONTEXT"] == "CC_INV_DSC G=device SID=0x10 FM=0"
    assert stale["PASID"] == "PC_INV_DSC G=pasid DID=2 PASID=0"
    # The IOTLB entry those entries made is stale too: the tables now fault SCT.2.
    assert stale["IOTLB"] == "P_IOTLB_INV_DSC G=page DID=2 PASID=0 ADDR=0x7f0000001000 AM=0"
    assert run(s, "walk nic0 0x7f0000001234")["pa"] == 0x6200_1234   # still the caches
    for fix in stale.values():
        assert removed(s, f"cmd dmar0 {fix}") == [1]
    assert run(s, "check dmar0")["smmus"][0]["stale"] == []
    assert run(s, "walk nic0 0x7f0000001234")["fault"]["reason"] == 0x41      # SCT.2


def test_wait_descriptor_and_queue_errors(s):
    r = run(s, "cmd dmar0 INV_WAIT_DSC SW=1 STATUS_DATA=0x5a STATUS_ADDR=0x40f00000")
    assert r["log"][0]["type"] == "INV_WAIT_DSC" and (r["iqh"], r["iqt"]) == (1, 1)
    assert s.system.mem.read_u64(0x40F0_0000) & 0xFFFF_FFFF == 0x5A
    o = s.execute("cmd dmar0 CMD_SYNC")
    assert o.error and "not a VT-d invalidation descriptor" in o.error
    # A descriptor of an undefined type stops the queue at it (FSTS_REG.IQE).
    u = s.system.vtd("dmar0")
    log = u.submit([[0x9, 0], [fmt("CC_INV_DSC", "vtd").encode(TYPE_LO=1, G=1)[0], 0]])
    assert [e["type"] for e in log] == [None] and u.iq_error == "invalid_descriptor_type"
    assert (u.iqh, u.iqt) == (1, 3)


def test_session_back_restores_the_caches(s):
    run(s, "walk nic0 0x7f0000001234")
    run(s, "walk gpu0 0x1234")
    run(s, "back")
    assert [e["did"] for e in s.system.vtd("dmar0").walker.tlb_entries()] == [2]
    run(s, "forward")
    assert len(s.system.vtd("dmar0").walker.tlb_entries()) == 2
