"""VT-d paging-structure caches, the interrupt entry cache and device-TLBs (VT-d 6.2, 6.5.2) on
examples/vtd-nested.toml plus one ATS device: what each cache holds after a walk or an interrupt,
the stale answer a missing invalidation leaves, each descriptor removing exactly what it names
(granularity, IH, IIDX/IM, SID/PASID/S-encoded range), and `check` naming the missing one.

Expected values are derived from the scenario text: vm0-s2 (DID 1 for gpu0, but DID 2 inside
nic0's nested PASID entry) maps vm0's GPA x -> PA 0x6000_0000 + x with 2 MiB pages (0x6000_0000
is not 1 GiB aligned), so its 4-level walk has two non-leaf entries (SL-PML4E, SL-PDPE) and a
2 MiB leaf; guest-fs (4 levels) maps VA 0x7F00_0000_0000 + o -> GPA 0x0200_0000 + o with 4 KiB
pages: three non-leaf entries (PML4E, PDPE, PDE) per walk; host-dma (DID 3) maps IOVA
0x1000_0000 + o -> 0x5000_0000 + o with 4 KiB pages. nic0's IRTEs: index 0 vector 0x41 dest 0,
index 1 vector 0x42 dest 1.
"""
import pathlib

import pytest

from smmudbg.arch import fmt
from smmudbg.errors import ScenarioError
from smmudbg.model import scenario as sc
from smmudbg.model.vtd_cache import ats_encode, ats_range
from smmudbg.session import Session

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "vtd-nested.toml"
ATS = """
[[vtd_device]]
name = "ats0"               # 02:00.0, host-owned, with a device-TLB (PCIe ATS)
vtd = "dmar0"
rid = 0x0200
ats = true
pasids = [{ pasid = 0, pgtt = "second_stage", ss = "host-dma" },
          { pasid = 5, pgtt = "nested", fs = "guest-fs", ss = "vm0-s2" }]
"""
FS_PDE_SPAN = 1 << 21
NEW_PT_GPA = 0x0180_0000            # a free page of vm0's RAM (guest-fs's pool ends at 0x0110_0000)


@pytest.fixture
def s():
    return Session(EXAMPLE.read_text() + ATS, str(EXAMPLE))


def run(s, line):
    o = s.execute(line)
    assert o.error is None, (line, o.error)
    return o.result.to_json()


def removed(s, line):
    [e] = run(s, line)["log"]
    return e["removed"], e.get("removed_psc")


def stale(s):
    return [(e["kind"], e["fix"]) for e in run(s, "check dmar0")["smmus"][0]["stale"]]


def steps(r):
    return [(x["what"], x["level"], x["outcome"]) for x in r["steps"]]


def psc(s):
    return [(e["stage"], e["level"], e["did"], e["pasid"], e["region"])
            for e in s.system.vtd("dmar0").walker.psc_entries()]


def enc(name, **kw):
    return fmt(name, "vtd").encode(**kw)


def step_pa(r, what, level):
    [x] = [x for x in r["steps"] if x["what"] == what and x["level"] == level and
           x["purpose"] in (None, "input")]
    return x["desc_pa"]


# -- paging-structure caches ---------------------------------------------------------------------

def test_a_walk_fills_the_paging_structure_caches_with_its_non_leaf_entries(s):
    run(s, "walk nic0 0x7f0000001234")
    va = 0x7F00_0000_0000
    assert psc(s) == [(1, 4, 2, 0, va), (1, 3, 2, 0, va), (1, 2, 2, 0, va),
                      (2, 4, 2, None, 0), (2, 3, 2, None, 0)]
    sizes = [e["size"] for e in s.system.vtd("dmar0").walker.psc_entries()]
    assert sizes == [1 << 39, 1 << 30, 1 << 21, 1 << 39, 1 << 30]
    # The next page of the same 2 MiB region: the walk starts below the cached FS PDE; each
    # second-stage walk below the cached SL-PDPE.
    r = run(s, "walk nic0 0x7f0000002234")
    assert r["pa"] == 0x6200_2234
    assert steps(r)[2:] == [("fs", 2, "cached"), ("ss", 3, "cached"), ("ss", 2, "large"),
                            ("fs", 1, "page"), ("ss", 3, "cached"), ("ss", 2, "large")]


def test_caches_agree_with_memory_while_nothing_changes(s):
    addrs = [0x7F00_0000_0000 + o for o in range(0, 0x10000, 0x1000)] + \
        [0x7F00_0020_0000 + o for o in range(0, 0x200000, 0x40000)]
    for a in addrs:
        for access in ("read", "write"):
            hot = run(s, f"walk nic0 {a:#x} access={access}")
            cold = run(s, f"walk nic0 {a:#x} access={access} dry")
            assert (hot["pa"], hot["perm"], hot["size"]) == \
                (cold["pa"], cold["perm"], cold["size"]), a
    assert stale(s) == []


def _repoint_fs_pde(s):
    """The guest points the PDE of VA 0x7F00_0000_0000's 2 MiB region at a new page table
    (index 3 -> GPA 0x0500_0000) without invalidating: returns the walk's original PDE PA."""
    r = run(s, "walk nic0 0x7f0000001234 dry")
    pde_pa = step_pa(r, "fs", 2)
    mem = s.system.mem
    vm_pa = 0x6000_0000                                  # vm0: GPA x at PA 0x6000_0000 + x
    mem.write(vm_pa + NEW_PT_GPA, bytes(4096))
    mem.write_u64(vm_pa + NEW_PT_GPA + 8 * 3,
                  enc("FS_PTE", P=1, RW=1, US=1, A=1, ADDR=0x0500_0000 >> 12)[0])
    f = fmt("FS_PDE", "vtd")
    words = [mem.read_u64(pde_pa)]
    f.field("ADDR").put(words, NEW_PT_GPA >> 12)
    mem.write_u64(pde_pa, words[0])
    return pde_pa


def test_a_changed_non_leaf_entry_without_invalidation_gives_the_cached_path(s):
    run(s, "walk nic0 0x7f0000001234")
    _repoint_fs_pde(s)
    # 0x7f0000003234 was never translated (no IOTLB entry): the cached PDE still leads to the old
    # page table, as hardware would; memory alone (dry) gives the new one.
    assert run(s, "walk nic0 0x7f0000003234 dry")["pa"] == 0x6500_0234
    r = run(s, "walk nic0 0x7f0000003234")
    assert r["pa"] == 0x6200_3234 and ("fs", 2, "cached") in steps(r)
    found = stale(s)
    assert ("PSC", "P_IOTLB_INV_DSC G=page DID=2 PASID=0 ADDR=0x7f0000000000 AM=9 IH=0") \
        in found
    # IH=1 says only leaf entries changed: the PDE cache entry stays, and so does the answer.
    assert removed(s, "cmd dmar0 P_IOTLB_INV_DSC G=page DID=2 PASID=0 ADDR=0x7f0000003000 "
                      "AM=0 IH=1") == (1, 0)
    assert run(s, "walk nic0 0x7f0000004234")["pa"] == 0x6200_4234
    # IH=0: the PDE-cache entry mapping the page goes, with the PDPE and PML4E entries above
    # it (their regions hold the page too); the walk reads the new table.
    assert removed(s, "cmd dmar0 P_IOTLB_INV_DSC G=page DID=2 PASID=0 ADDR=0x7f0000003000 "
                      "AM=0 IH=0") == (0, 3)
    assert run(s, "walk nic0 0x7f0000003234")["pa"] == 0x6500_0234
    # Left: the IOTLB entries of 0x7f0000001000 and 0x7f0000004000 (the new table maps neither).
    assert [(k, f.split()[4]) for k, f in stale(s)] == [("IOTLB", "ADDR=0x7f0000001000"),
                                                        ("IOTLB", "ADDR=0x7f0000004000")]


def test_the_fix_check_names_removes_the_stale_pde_entry(s):
    run(s, "walk nic0 0x7f0000001234")
    _repoint_fs_pde(s)
    [fix] = [f for k, f in stale(s) if k == "PSC"]
    # AM=9 from the region's base: the 2 MiB holds the 0x7f0000001000 IOTLB entry too.
    assert removed(s, f"cmd dmar0 {fix}") == (1, 3)
    assert stale(s) == []
    assert run(s, "walk nic0 0x7f0000003234")["pa"] == 0x6500_0234


def test_second_stage_non_leaf_change_and_iotlb_inv_ih(s):
    run(s, "walk gpu0 0x1234")                          # vm0-s2 alone, DID 1, 2 MiB leaf
    assert psc(s) == [(2, 4, 1, None, 0), (2, 3, 1, None, 0)]
    r = run(s, "walk gpu0 0x1234 dry")
    pdpe_pa = step_pa(r, "ss", 3)
    mem = s.system.mem
    new_pd = 0x4080_0000                                 # free host RAM past dmar0's pool
    mem.write(new_pd, bytes(4096))
    mem.write_u64(new_pd + 8 * 1, enc("SS_PDE_2M", R=1, W=1, PS=1, ADDR=0x7000_0000 >> 21)[0])
    words = [mem.read_u64(pdpe_pa)]
    fmt("SS_PDPE", "vtd").field("ADDR").put(words, new_pd >> 12)
    mem.write_u64(pdpe_pa, words[0])
    # 0x20_0000 is outside the cached 2 MiB IOTLB entry: the SL-PDPE cache still gives the old
    # page directory.
    assert run(s, "walk gpu0 0x200000")["pa"] == 0x6020_0000
    assert run(s, "walk gpu0 0x200000 dry")["pa"] == 0x7000_0000
    assert ("PSC", "IOTLB_INV_DSC G=page DID=1 ADDR=0x0 AM=9 IH=0") in stale(s)
    # Another domain, or IH=1, leaves it.
    assert removed(s, "cmd dmar0 IOTLB_INV_DSC G=page DID=3 ADDR=0x200000 AM=0") == (0, 0)
    assert removed(s, "cmd dmar0 IOTLB_INV_DSC G=page DID=1 ADDR=0x400000 AM=0 IH=1") == (0, 0)
    assert run(s, "walk gpu0 0x400000")["pa"] == 0x6040_0000
    # IH=0 on a page of the region: SL-PML4E and SL-PDPE go (the leaf IOTLB entries at 0 and
    # 0x20_0000, 0x40_0000 do not overlap 0x60_0000's page).
    assert removed(s, "cmd dmar0 IOTLB_INV_DSC G=page DID=1 ADDR=0x600000 AM=0") == (0, 2)
    assert run(s, "walk gpu0 0x201000 dry")["pa"] == 0x7000_1000
    assert run(s, "walk gpu0 0x601000")["fault"]["name"] == "SSS_2"   # new PD: index 3 empty


def test_invalidation_scope_over_the_paging_structure_caches(s):
    run(s, "walk nic0 0x7f0000001234")                  # FS 3 entries (DID 2, PASID 0), SS 2
    run(s, "walk gpu0 0x7f0000001000 pasid=9")          # FS 3 entries (DID 2, PASID 9)
    run(s, "walk gpu0 0x1234")                          # SS 2 entries (DID 1)
    assert len(psc(s)) == 3 + 3 + 2 + 2
    assert removed(s, "cmd dmar0 P_IOTLB_INV_DSC G=pasid DID=2 PASID=7") == (0, 0)
    assert removed(s, "cmd dmar0 P_IOTLB_INV_DSC G=pasid DID=3 PASID=9") == (0, 0)
    # Page-selective, IH=0, a VA outside PASID 9's regions: nothing.
    assert removed(s, "cmd dmar0 P_IOTLB_INV_DSC G=page DID=2 PASID=9 ADDR=0x1000 AM=0") == \
        (0, 0)
    assert removed(s, "cmd dmar0 P_IOTLB_INV_DSC G=pasid DID=2 PASID=9") == (1, 3)
    assert {(st, d, p) for st, _l, d, p, _r in psc(s)} == {(1, 2, 0), (2, 2, None),
                                                           (2, 1, None)}
    # Domain-selective IOTLB: DID 1's second-stage entries only.
    assert removed(s, "cmd dmar0 IOTLB_INV_DSC G=domain DID=1") == (1, 2)
    # Domain-selective on DID 2: its second-stage entries and the nested first-stage ones.
    assert removed(s, "cmd dmar0 IOTLB_INV_DSC G=domain DID=2") == (1, 5)
    assert psc(s) == []
    run(s, "walk nic0 0x7f0000001234")
    assert removed(s, "cmd dmar0 IOTLB_INV_DSC G=global") == (1, 5)


def test_caching_off_uses_no_paging_structure_cache(s):
    k = s.system.vtd("dmar0").walker
    k.caching = False
    run(s, "walk nic0 0x7f0000001234")
    assert k.psc_entries() == [] and k.iec_entries() == []
    r = run(s, "walk nic0 0x7f0000002234")
    assert "cached" not in [o for _w, _l, o in steps(r)]


# -- interrupt entry cache -----------------------------------------------------------------------

def test_irte_change_without_iec_invalidation_keeps_the_old_interrupt(s):
    first = run(s, "msi nic0 0")
    assert (first["vector"], first["dest"], first["iec_hit"]) == (0x41, 0, False)
    assert run(s, "msi nic0 0")["iec_hit"] is True
    u = s.system.vtd("dmar0")
    irte = enc("IRTE", P=1, V=0x51, DST=2 << 8, SVT="requester_id", SQ="all_16", SID=0x10)
    s.system.mem.write_words(first["irte_pa"], irte)
    again = run(s, "msi nic0 0")
    assert (again["vector"], again["dest"], again["iec_hit"]) == (0x41, 0, True)
    assert stale(s) == [("IEC", "IEC_INV_DSC G=index IIDX=0 IM=0")]
    assert [e["stale"] for e in run(s, "cfgcache dmar0")["iec"]] == [True]
    assert removed(s, "cmd dmar0 IEC_INV_DSC G=index IIDX=1 IM=0") == (0, None)
    assert removed(s, "cmd dmar0 IEC_INV_DSC G=index IIDX=0 IM=0") == (1, None)
    now = run(s, "msi nic0 0")
    assert (now["vector"], now["dest"], now["iec_hit"]) == (0x51, 2, False)
    assert u.walker.iec_entries()[0]["irte"] == list(irte)
    assert stale(s) == []


def test_iec_invalidation_granularity(s):
    run(s, "msi nic0 0")
    run(s, "msi nic0 1")
    assert [e["index"] for e in s.system.vtd("dmar0").walker.iec_entries()] == [0, 1]
    # IM=1: IIDX's bit 0 ignored, so IIDX=1 names entries 0 and 1.
    assert removed(s, "cmd dmar0 IEC_INV_DSC G=index IIDX=1 IM=1") == (2, None)
    run(s, "msi nic0 0")
    run(s, "msi nic0 1")
    assert removed(s, "cmd dmar0 IEC_INV_DSC G=index IIDX=1") == (1, None)
    assert removed(s, "cmd dmar0 IEC_INV_DSC G=global") == (1, None)
    assert s.system.vtd("dmar0").walker.iec_entries() == []


def test_a_faulting_irte_is_not_cached(s):
    u = s.system.vtd("dmar0")
    # gpu0 using nic0's IRTE 0: the IRTE is valid (cached), the source-ID check fails per request.
    assert run(s, "msi dmar0 0x0390 0xfee00010 data=0")["fault"]["name"] == "IR_SID_VERIFY"
    assert [e["index"] for e in u.walker.iec_entries()] == [0]
    s.system.mem.write_words(u.irt + 16 * 7, [0, 0])         # not present
    addr = fmt("MSI_ADDR_REMAP", "vtd").encode(FEE=0xFEE, IF="remappable", HANDLE=7)[0]
    assert run(s, f"msi dmar0 0x10 {addr:#x} data=0")["fault"]["name"] == \
        "IR_IRTE_NOT_PRESENT"
    assert [e["index"] for e in u.walker.iec_entries()] == [0]


# -- device-TLB ----------------------------------------------------------------------------------

@pytest.mark.parametrize("field,s_bit,base,size", [
    (0x10000, 0, 0x1000_0000, 0x1000),
    (0x10000, 1, 0x1000_0000, 0x2000),              # bit 12 clear: 8 KiB
    (0x10007, 1, 0x1000_0000, 0x10000),             # three 1s from bit 12: 2^(13+3)
    (0x10001, 1, 0x1000_0000, 0x4000),
    ((1 << 51) - 1, 1, 0, 1 << 64),                 # bit 63 clear, 62:12 set: everything
])
def test_ats_size_encoding(field, s_bit, base, size):
    assert ats_range(field, s_bit) == (base, size)
    assert ats_encode(base, size) == (field, s_bit) or size == 1 << 64


def test_device_tlb_serves_the_device_and_stays_stale_after_an_iotlb_only_invalidation(s):
    u = s.system.vtd("dmar0")
    assert fmt("ECAP_REG", "vtd").field("DT").get([u.ecap]) == 1
    assert fmt("SM_CONTEXT_ENTRY", "vtd").field("DTE").get(u.config(0x200)["ctx"]) == 1
    first = run(s, "walk ats0 0x10000010")
    assert first["pa"] == 0x5000_0010 and first["steps"][0]["what"] == "root"
    again = run(s, "walk ats0 0x10000ff0")
    assert again["pa"] == 0x5000_0FF0 and steps(again) == [("devtlb", None, "cached")]
    # The host unmaps the page and invalidates the IOTLB, but not the device-TLB.
    leaf = u.domains["host-dma"].tables.leaf(0x1000_0000)[0]
    s.system.mem.write_u64(leaf, 0)
    # IH=0: host-dma's three non-leaf entries (4 levels, 4 KiB leaves) go with the leaf.
    assert removed(s, "cmd dmar0 IOTLB_INV_DSC G=page DID=3 ADDR=0x10000000 AM=0") == (1, 3)
    assert run(s, "walk ats0 0x10000010")["pa"] == 0x5000_0010          # the device's copy
    assert stale(s) == [("DEVTLB", "DEV_TLB_INV_DSC SID=0x200 ADDR=0x10000000 S=0")]
    assert removed(s, "cmd dmar0 DEV_TLB_INV_DSC SID=0x10 ADDR=0x10000000") == (0, None)
    assert removed(s, "cmd dmar0 DEV_TLB_INV_DSC SID=0x200 ADDR=0x10000000") == (1, None)
    assert stale(s) == []
    assert run(s, "walk ats0 0x10000010")["fault"]["name"] == "SSS_2"


def test_device_tlb_invalidation_scope(s):
    u = s.system.vtd("dmar0")
    for a in (0x1000_0000, 0x1000_F000, 0x1001_0000):
        run(s, f"walk ats0 {a:#x}")
    run(s, "walk ats0 0x7f0000001000 pasid=5")
    atc = u.device_tlbs[0x200]
    assert sorted((e["pasid"] or 0, e["base"]) for e in atc.export()) == [
        (0, 0x1000_0000), (0, 0x1000_F000), (0, 0x1001_0000), (5, 0x7F00_0000_1000)]
    # Without PASID: only the entries of requests without PASID.
    assert removed(s, "cmd dmar0 DEV_TLB_INV_DSC SID=0x200 ADDR=0x7f0000001000") == (0, None)
    # S=1, ADDR bits 14:12 set and 15 clear: the 64 KiB from 0x1000_0000.
    assert removed(s, "cmd dmar0 DEV_TLB_INV_DSC SID=0x200 ADDR=0x10007000 S=1") == (2, None)
    assert removed(s, "cmd dmar0 P_DEV_TLB_INV_DSC SID=0x200 PASID=4 ADDR=0x7f0000001000") \
        == (0, None)
    assert removed(s, "cmd dmar0 P_DEV_TLB_INV_DSC SID=0x200 PASID=5 ADDR=0x7f0000001000") \
        == (1, None)
    assert [e["base"] for e in atc.export()] == [0x1001_0000]
    r = run(s, "tlb dmar0")
    assert [(e["sid"], e["base"], e["stale"]) for e in r["devtlb"]] == \
        [(0x200, 0x1001_0000, False)]


def test_a_pasid_device_tlb_entry_is_named_with_the_pasid_based_descriptor(s):
    run(s, "walk ats0 0x7f0000001000 pasid=5")
    _repoint_fs_pde(s)
    leaf = s.system.vtd("dmar0").domains["guest-fs"].tables
    pa = leaf.leaf(0x7F00_0000_1000)
    assert pa is None                 # the new page table has no entry 1: the page is unmapped
    found = dict((k, f) for k, f in stale(s) if k in ("DEVTLB", "IOTLB"))
    assert found["DEVTLB"] == "P_DEV_TLB_INV_DSC SID=0x200 PASID=5 ADDR=0x7f0000001000 S=0"
    assert found["IOTLB"] == "P_IOTLB_INV_DSC G=page DID=2 PASID=5 ADDR=0x7f0000001000 AM=0"


def test_ats_needs_device_tlb_support():
    text = EXAMPLE.read_text().replace("haw = 46", "haw = 46\nfeatures = { DT = 0 }") + ATS
    with pytest.raises(ScenarioError) as e:
        sc.parse(text, "t.toml")
    assert "vtd_device[3].ats: dmar0 has features.DT = 0" in str(e.value)


def test_session_back_restores_every_cache(s):
    run(s, "walk nic0 0x7f0000001234")
    run(s, "msi nic0 0")
    run(s, "walk ats0 0x10000000")
    k = s.system.vtd("dmar0").walker
    before = (k.psc_entries(), k.iec_entries(), s.system.vtd("dmar0").device_tlbs[0x200].export())
    run(s, "cmd dmar0 IOTLB_INV_DSC G=global")
    run(s, "cmd dmar0 IEC_INV_DSC G=global")
    run(s, "cmd dmar0 DEV_TLB_INV_DSC SID=0x200 ADDR=0x10000000")
    assert k.psc_entries() == [] and k.iec_entries() == []
    for _ in range(3):
        run(s, "back")
    k = s.system.vtd("dmar0").walker
    assert (k.psc_entries(), k.iec_entries(),
            s.system.vtd("dmar0").device_tlbs[0x200].export()) == before


def test_ranged_invalidation_at_the_top_of_the_address_space():
    # The last page of a 4-level first stage's high half: the PML4E, PDPE and PDE regions and
    # the page itself end at 2^64; a page-selective invalidation (IH=0) still names them all.
    import vtdkit
    b = vtdkit.Box()
    root = b.fs_table()
    va = 0xFFFF_FFFF_FFFF_F000
    b.fs_map(root, va, 0x9000_0000, levels=4)
    b.pasid(1, PGTT=1, FLPTPTR=root[0] >> 12, DID=9)
    w = b.core_walker()
    w.caching = True
    assert w.translate(vtdkit.SID, va + 0x10, 1)["pa"] == 0x9000_0010
    assert [(e["level"], e["region"], e["size"]) for e in w.psc_entries()] == [
        (4, 0xFFFF_FF80_0000_0000, 1 << 39), (3, 0xFFFF_FFFF_C000_0000, 1 << 30),
        (2, 0xFFFF_FFFF_FFE0_0000, 1 << 21)]
    assert w.invalidate_piotlb(3, 9, 1, va, 0) == 1 and w.psc_removed == 3
    assert w.psc_entries() == [] and w.tlb_entries() == []
