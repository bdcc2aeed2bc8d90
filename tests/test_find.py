"""`find`: reverse lookup from PA (or IPA) ranges to (SMMU, StreamID, SSID, IOVA range).

Expected hits come from the mappings each test makes on the default scenario
(smmudbg/data/default.toml): vm0's RAM is IPA 0x4000_0000 -> PA 0x6000_0000 (256M), mapped by
vm0-s2 (VMID 1) in 2 MiB blocks; nic0 (SID 8) is nested (CD 0: nic0-dma, CD 1: nic0-pasid1,
tables in vm0's RAM); gpu0 (0x200) is stage 2 only over vm0-s2; nvme0 (0x100) is stage 1 only
(host-dma, 64K granule); legacy0 (0x300) bypasses (maps every PA to itself); quarantine0
(0x301) aborts (maps nothing).
"""
import pytest

from smmudbg.session import Session

RAM_IPA, RAM_PA = 0x4000_0000, 0x6000_0000


def pa_of(ipa):
    return RAM_PA + ipa - RAM_IPA


def ok(s, line):
    out = s.execute(line)
    assert out.ok, f"{line}: {out.error}"
    return out.result.to_json()


def hits(r):
    return {(h["sid"], h["ssid"], h["stage"], h["iova"], h["size"], h["ipa"], h["pa"])
            for h in r["hits"]}


@pytest.fixture
def s():
    s = Session()
    # One PA page mapped by two streams' stage 1s (and, through vm0's RAM, by stage 2):
    #   nvme0: IOVA 0x30_0000_0000 -> PA 0x6800_0000 (host-dma, 64K)
    #   nic0 : IOVA 0x3000_0000 -> IPA 0x4800_0000 -> PA 0x6800_0000 (nic0-dma, 4K, read-only)
    ok(s, "map host-dma 0x3000000000 0x68000000 64K perm=rw")
    ok(s, "map nic0-dma 0x30000000 0x48000000 4K perm=r")
    # A stage-1 block: nic0 IOVA 0x4000_0000 -> IPA 0x4a00_0000, 2 MiB (level 2).
    ok(s, "map nic0-dma 0x40000000 0x4a000000 2M perm=rw")
    return s


def test_page_mapped_twice_and_through_both_stages(s):
    p = pa_of(0x4800_0000)
    r = ok(s, f"find pa={p:#x}+4K")
    assert hits(r) == {
        (0x100, None, "1", 0x30_0000_0000, 0x1000, None, p),          # nvme0, stage 1
        (0x8, None, "nested", 0x3000_0000, 0x1000, 0x4800_0000, p),   # nic0, IOVA -> IPA -> PA
        (0x200, None, "2", 0x4800_0000, 0x1000, None, p),          # gpu0, IPA = its input
        (0x300, None, "bypass", p, 0x1000, None, p),               # legacy0
    }
    nic = next(h for h in r["hits"] if h["sid"] == 8)
    # Stage 1 read-only (perm "r"), stage 2 rwx (vm0-s2 perm "rwx"): effective r--.
    assert nic["s1_perm"].startswith("r-") and nic["s2_perm"] == "rwx"
    assert nic["priv"] == "r--" and nic["level"] == 3 and nic["vmid"] == 1 and nic["asid"] == 1
    nvme = next(h for h in r["hits"] if h["sid"] == 0x100)
    assert nvme["priv"][:2] == "rw" and nvme["s2_perm"] is None and nvme["asid"] == 16
    # Distinct trees scanned once each: vm0-s2 (shared by nic0 and gpu0), nic0-dma,
    # nic0-pasid1, host-dma.
    assert r["scanned"]["trees"] == 4


def test_a_pa_inside_a_page_gives_that_byte(s):
    p = pa_of(0x4800_0000) + 0x123
    r = ok(s, f"find pa={p:#x} sid=8")
    assert hits(r) == {(0x8, None, "nested", 0x3000_0123, 1, 0x4800_0123, p)}


def test_block_mappings(s):
    # Stage-1 block (level 2) of nic0 and the 2 MiB stage-2 block of vm0-s2 for gpu0.
    p = pa_of(0x4a00_0000)
    r = ok(s, f"find pa={p + 0x1000:#x}..{p + 0x3000:#x} smmu0")
    got = {h["sid"]: h for h in r["hits"]}
    assert (got[8]["iova"], got[8]["size"], got[8]["ipa"], got[8]["level"]) == \
        (0x4000_1000, 0x2000, 0x4a00_1000, 2)
    assert (got[0x200]["iova"], got[0x200]["size"], got[0x200]["level"]) == \
        (0x4a00_1000, 0x2000, 2)
    # The whole 2 MiB: one row per stream (runs merged), not 512 pages.
    r = ok(s, f"find pa={p:#x}+2M sid=8")
    assert hits(r) == {(0x8, None, "nested", 0x4000_0000, 0x20_0000, 0x4a00_0000, p)}


def test_no_hit(s):
    # Nothing of nic0 maps vm0's last RAM page; outside every RAM and stream only bypass does.
    p = pa_of(0x4fff_f000)
    assert ok(s, f"find pa={p:#x}+4K sid=8")["hits"] == []
    assert hits(ok(s, "find pa=0x7_0000_0000+4K")) == \
        {(0x300, None, "bypass", 0x7_0000_0000, 0x1000, None, 0x7_0000_0000)}
    assert ok(s, "find pa=0x7_0000_0000+4K sid=0x301")["hits"] == []      # abort


def test_find_ipa(s):
    r = ok(s, "find ipa=0x48000000+4K vm=vm0")
    assert hits(r) == {
        (0x8, None, "nested", 0x3000_0000, 0x1000, 0x4800_0000, pa_of(0x4800_0000)),
        (0x200, None, "2", 0x4800_0000, 0x1000, 0x4800_0000, pa_of(0x4800_0000)),
    }
    # nic0's CD 1 (nic0-pasid1) maps IOVA 0x7f00_0000_0000 -> IPA 0x4400_0000 (64K).
    r = ok(s, "find ipa=0x44000000+64K sid=8")
    assert hits(r) == {(0x8, 1, "nested", 0x7f00_0000_0000, 0x1_0000, 0x4400_0000,
                        pa_of(0x4400_0000))}


def test_find_ipa_not_mapped_at_stage_2(s):
    # Stage 1 may output an IPA stage 2 does not map: reported with pa null.
    ok(s, "map nic0-dma 0x50000000 0x90000000 4K perm=rw")
    r = ok(s, "find ipa=0x90000000+4K")
    assert hits(r) == {(0x8, None, "nested", 0x5000_0000, 0x1000, 0x9000_0000, None)}


@pytest.mark.parametrize("line, msg", [
    ("find", "one of pa=RANGE or ipa=RANGE"),
    ("find pa=1 ipa=2", "one of pa=RANGE or ipa=RANGE"),
    ("find pa=zz", "is not ADDR"),
    ("find pa=0x2000..0x1000", "END must be above ADDR"),
    ("find pa=0x1000 vm=vm0", "vm= goes with ipa="),
])
def test_errors(s, line, msg):
    out = s.execute(line)
    assert not out.ok and msg in out.error and "\n" not in out.error


def test_real_qemu_dump_every_live_translation_is_found():
    # tests/fixtures/qemu/translations.json: what QEMU itself translated, with still_mapped.
    # Every translation still mapped at the snapshot must be found from its PA.
    import json
    from pathlib import Path
    q = Path(__file__).parent / "fixtures" / "qemu"
    s = Session()
    ok(s, f"import qemu {q / 'memory.elf.xz'} --regs {q / 'regs.json'}")
    live = [t for t in json.loads((q / "translations.json").read_text()) if t["still_mapped"]]
    assert live
    for t in live:
        pa, iova = int(t["pa"], 16), int(t["iova"], 16)
        r = ok(s, f"find pa={pa:#x} sid={t['sid']}")
        assert any(h["iova"] == iova and h["pa"] == pa for h in r["hits"]), t


def test_af0_leaf_is_flagged(s):
    # A leaf with AF=0 still maps, but a walk faults F_ACCESS (CD.AFFD=0, no HA): af is false.
    ok(s, "inject clear-af host-dma 0x3000000000")
    r = ok(s, f"find pa={pa_of(0x4800_0000):#x}+4K sid=0x100")
    assert [h["af"] for h in r["hits"]] == [False]
    assert ok(s, "walk nvme0 0x3000000000 dry")["fault"]["type"] == "F_ACCESS"


@pytest.mark.parametrize("table", ['{ format = "linear", log2size = 16 }',
                                   '{ format = "2lvl", log2size = 16, split = 8 }'])
def test_valid_stes_scan_matches_the_stream_table(table):
    # find asks every valid STE; the core scan must see the same StreamIDs as reading the
    # stream table entry by entry (model.views.stream_table_entries), linear and 2-level.
    from smmudbg.model import scenario as sc
    text = sc.builtin("default").replace(
        'stream_table = { format = "2lvl", log2size = 16, split = 8 }', f"stream_table = {table}")
    s = Session(text, "t")
    m = s.system.smmu("smmu0")
    assert s.execute("set ste smmu0 0x1234 V=1 Config=bypass").ok
    want = [e["sid"] for e in m.stream_table_entries(0, 1 << 20)[0]]
    assert m.valid_sids() == want == [8, 0x100, 0x200, 0x300, 0x301, 0x1234]
    hits = ok(s, "find pa=0x61000000")["hits"]
    assert {h["sid"] for h in hits} == {8, 0x200, 0x300, 0x1234}


def test_bypass_stops_at_the_oas(s):
    # smmu0 has OAS=0b101 (48 bits): a bypassed address at or above 2^48 faults F_ADDR_SIZE.
    r = ok(s, f"find pa={(1 << 48) - 0x1000:#x}+8K sid=0x300")
    assert hits(r) == {(0x300, None, "bypass", (1 << 48) - 0x1000, 0x1000, None,
                        (1 << 48) - 0x1000)}
    assert ok(s, f"walk legacy0 {1 << 48:#x} dry")["fault"]["type"] == "F_ADDR_SIZE"
    assert ok(s, f"find pa={1 << 48:#x}")["hits"] == []


@pytest.mark.parametrize("line", ["find pa=-1", "find pa=0x10+-1", "find pa=0xffffffffffffffff"])
def test_out_of_range_addresses_are_refused(s, line):
    out = s.execute(line)
    assert not out.ok and "internal error" not in out.error


# -- TTB1, S1DSS and the SubstreamID of each row ------------------------------------------------
# IHI 0070 5.2/5.4 and Arm ARM D8.2.4: a CD's TTB1 translates the top of the VA space,
# [2^64 - 2^(64 - T1SZ), 2^64); EPD1=1 disables walks through it. With S1CDMax=0 every
# transaction uses CD 0 and carries no SubstreamID; with S1CDMax != 0, STE.S1DSS says what
# transactions without one do: 0b00 terminate, 0b01 bypass stage 1, 0b10 use CD 0 (and then
# SubstreamID 0 is terminated). The expected IOVAs below are computed from those rules by hand;
# each is cross-checked against the walker, which is separate code from the scan.
TOP48 = (1 << 64) - (1 << 48)          # T1SZ=16: the 48-bit upper range starts here
TG1_OF_SHIFT = {12: 2, 14: 1, 16: 3}    # CD.TG1 encoding (not TG0's)
TG0_SHIFT = {0: 12, 1: 16, 2: 14}


def point_ttb1_at_ttb0(s, sid, ssid, epd1=0):
    """Make a CD's TTB1 the same tree as its TTB0 (same granule and size)."""
    cd = ok(s, f"cd smmu0 {sid:#x} {ssid}")
    f = cd["fields"]
    ok(s, f"set cd smmu0 {sid:#x} ssid={ssid} TTB1={cd['addresses']['TTB0']:#x} "
          f"T1SZ={f['T0SZ']} TG1={TG1_OF_SHIFT[TG0_SHIFT[f['TG0']]]} EPD1={epd1}")
    assert f["T0SZ"] == 16
    return cd


def test_ttb1_stage_1(s):
    point_ttb1_at_ttb0(s, 0x100, 0)
    p = pa_of(0x4800_0000)
    r = ok(s, f"find pa={p:#x}+4K sid=0x100")
    assert {(h["ssid"], h["iova"], h["size"], h["pa"], h["ttb"]) for h in r["hits"]} == {
        (None, 0x30_0000_0000, 0x1000, p, "TTB0"),
        (None, TOP48 + 0x30_0000_0000, 0x1000, p, "TTB1"),
    }
    assert ok(s, f"walk smmu0 0x100 {TOP48 + 0x30_0000_0000:#x} dry")["pa"] == p
    # EPD1=1: no walk goes through TTB1, so nothing is found there.
    ok(s, "set cd smmu0 0x100 EPD1=1")
    assert [h["ttb"] for h in ok(s, f"find pa={p:#x}+4K sid=0x100")["hits"]] == ["TTB0"]
    assert ok(s, f"walk smmu0 0x100 {TOP48 + 0x30_0000_0000:#x} dry")["fault"] is not None


def test_ttb1_nested_pa_and_ipa(s):
    # nic0 CD 1 (nic0-pasid1, 4K granule) maps IOVA 0x7f00_0000_0000 -> IPA 0x4400_0000.
    point_ttb1_at_ttb0(s, 0x8, 1)
    iova = TOP48 + 0x7f00_0000_0000
    r = ok(s, f"find pa={pa_of(0x4400_0000):#x}+64K sid=8")
    assert hits(r) == {
        (0x8, 1, "nested", 0x7f00_0000_0000, 0x1_0000, 0x4400_0000, pa_of(0x4400_0000)),
        (0x8, 1, "nested", iova, 0x1_0000, 0x4400_0000, pa_of(0x4400_0000)),
    }
    r = ok(s, "find ipa=0x44000000+64K sid=8")
    assert {(h["iova"], h["ttb"]) for h in r["hits"]} == {(0x7f00_0000_0000, "TTB0"),
                                                          (iova, "TTB1")}
    assert ok(s, f"walk smmu0 8 {iova:#x} ssid=1 dry")["pa"] == pa_of(0x4400_0000)


def test_s1dss_substream0_cd0_serves_traffic_without_a_substreamid(s):
    # nic0: S1CDMax=2, S1DSS=substream0. Its CD 0 row has no SubstreamID; SubstreamID 0 faults.
    p = pa_of(0x4800_0000)
    assert hits(ok(s, f"find pa={p:#x}+4K sid=8")) == \
        {(0x8, None, "nested", 0x3000_0000, 0x1000, 0x4800_0000, p)}
    assert ok(s, "walk smmu0 8 0x30000000 dry")["pa"] == p
    assert ok(s, "walk smmu0 8 0x30000000 ssid=0 dry")["fault"]["type"] == "F_STREAM_DISABLED"


def test_s1dss_terminate(s):
    ok(s, "set ste smmu0 8 S1DSS=terminate")
    p = pa_of(0x4800_0000)
    # CD 0 now serves SubstreamID 0; traffic without a SubstreamID is terminated: no row.
    assert hits(ok(s, f"find pa={p:#x}+4K sid=8")) == \
        {(0x8, 0, "nested", 0x3000_0000, 0x1000, 0x4800_0000, p)}
    assert ok(s, "walk smmu0 8 0x30000000 ssid=0 dry")["pa"] == p
    assert ok(s, "walk smmu0 8 0x30000000 dry")["fault"]["type"] == "F_STREAM_DISABLED"


def test_s1dss_bypass_nested_is_stage_2_only_without_a_substreamid(s):
    ok(s, "set ste smmu0 8 S1DSS=bypass")
    p = pa_of(0x4800_0000)
    r = ok(s, f"find pa={p:#x}+4K sid=8")
    # Without a SubstreamID the IOVA is the IPA (stage 2 only): vm0 maps IPA 0x4800_0000 there.
    assert hits(r) == {(0x8, 0, "nested", 0x3000_0000, 0x1000, 0x4800_0000, p),
                       (0x8, None, "2", 0x4800_0000, 0x1000, None, p)}
    s2row = next(h for h in r["hits"] if h["ssid"] is None)
    assert "S1DSS=bypass" in s2row["note"] and s2row["s2_perm"] == "rwx"
    assert ok(s, "walk smmu0 8 0x48000000 dry")["pa"] == p
    r = ok(s, "find ipa=0x48000000+4K sid=8")
    assert {(h["ssid"], h["stage"], h["iova"]) for h in r["hits"]} == \
        {(0, "nested", 0x3000_0000), (None, "2", 0x4800_0000)}


def test_s1dss_bypass_stage_1_only_is_identity_without_a_substreamid(s):
    # nvme0 (stage 1 only) with two SubstreamIDs and S1DSS=bypass: traffic without one
    # reaches every PA below the OAS untranslated; CD 0 serves SubstreamID 0.
    ok(s, "set ste smmu0 0x100 S1CDMax=1 S1DSS=bypass")
    p = pa_of(0x4800_0000)
    r = ok(s, f"find pa={p:#x}+4K sid=0x100")
    assert hits(r) == {(0x100, 0, "1", 0x30_0000_0000, 0x1000, None, p),
                       (0x100, None, "bypass", p, 0x1000, None, p)}
    assert ok(s, f"walk smmu0 0x100 {p:#x} dry")["pa"] == p
    assert ok(s, "walk smmu0 0x100 0x3000000000 ssid=0 dry")["pa"] == p
    assert ok(s, "find pa=0x7_0000_0000 sid=0x100")["hits"][0]["priv"] == "rwx"


def test_limit_truncates_and_says_so():
    """A whole-space lookup lists at most limit= mappings and says when there are more; with
    the limit at the full count nothing is left out (the count from an unlimited-enough run)."""
    s = Session()
    full = ok(s, "find pa=0..0x10000000000000")
    n = len(full["hits"])
    assert n >= 2 and full["truncated"] is False
    exact = ok(s, f"find pa=0..0x10000000000000 limit={n}")
    assert exact["truncated"] is False and exact["hits"] == full["hits"]
    cut = ok(s, f"find pa=0..0x10000000000000 limit={n - 1}")
    assert cut["truncated"] is True and len(cut["hits"]) == n - 1
    assert all(h in full["hits"] for h in cut["hits"])
    out = ok(s, "find pa=0..0x10000000000000 limit=1")
    assert "there are more" in out["message"] and "limit=" in out["message"]
    assert not s.execute("find pa=0 limit=0").ok
