"""Side-effect-free readers of the core: translate(dry=True), read_ste, read_cd, stage_config,
and cache checkpoints (export_caches / import_caches).

Expected addresses and geometries are derived here from the structures the tests place (table
bases, indexes, the stage-2 IPA->PA window of walkkit) and from the architecture's arithmetic,
not from the walker.
"""
import pytest

from core_cy.walk import Walker
from walkkit import CD, GIPA, GPA, L1CD, L1STD, STE, STRTAB, Kit, nested_kit, s1_kit

AF = 1 << 10


def tables_image(k):
    """Every byte the walker could write: the host pool and the guest table pool in use."""
    host = k.mem.read(STRTAB, k.host.next - STRTAB)
    guest = k.mem.read(GPA, k.guest.next - GIPA)
    return host, guest


def cache_state(w):
    return w.cached_stes(), w.cached_cds(), w.tlb_entries(), w.tlb_stats()


# -- dry ----------------------------------------------------------------------------------------

def httu_nested_kit():
    """Nested stream with HTTU: stage-1 page and stage-2 block at 0x2000 have AF=0, S2HA and
    CD.HA set, so a real walk writes AF into both descriptors."""
    k = Kit(caps=dict(HTTU=1))
    s2 = k.stage2()
    s1 = k.stage1(nested=True)
    s1.map(0x2000, GIPA + 0x0800_0000, 0x1000, af=False)
    s2.unmap(GIPA + 0x0800_0000, 0x20_0000)
    s2.map(GIPA + 0x0800_0000, GPA + 0x0800_0000, 0x20_0000, af=False)
    cd = k.put_cd(k.cd_words(s1, HA=1), nested=True)
    k.put_ste(1, V=1, Config=7, S1ContextPtr=cd >> 6, S2HA=1, **k.ste_s2_fields())
    s1.map(0x1000, GIPA + 0x100_0000, 0x1000)
    return k, s1, s2


def test_dry_walk_changes_nothing_and_matches_an_uncached_walk():
    k, s1, s2 = httu_nested_kit()
    w = k.walker
    assert w.translate(1, 0x1008)["pa"] == GPA + 0x100_0008      # fill the caches
    before_mem, before_caches = tables_image(k), cache_state(w)
    dry = w.translate(1, 0x2010, write=True, trace=True, dry=True)
    assert dry["pa"] == GPA + 0x0800_0010 and dry["hit"] is False
    assert tables_image(k) == before_mem                          # no AF written
    assert cache_state(w) == before_caches                        # nothing filled, counters kept
    fresh = w.translate_uncached(1, 0x2010, write=True, trace=True)
    assert dry == fresh
    # The uncached walk did update AF in both stages: the dry walk skipped real writes.
    _, s1pa, s1d = s1.lookup(0x2000)
    assert k.mem.read_u64(GPA + s1pa - GIPA) & AF
    _, s2pa, _ = s2.lookup(GIPA + 0x0800_0000)
    assert k.mem.read_u64(s2pa) & AF
    assert tables_image(k) != before_mem


def test_dry_walk_ignores_stale_cache_entries():
    k, s1, cd = s1_kit()
    s1.map(0x5000, 0x4A00_0000, 0x1000)
    w = k.walker
    assert w.translate(1, 0x5004)["pa"] == 0x4A00_0004
    s1.unmap(0x5000, 0x1000)
    s1.map(0x5000, 0x4B00_0000, 0x1000)                   # remapped without invalidation
    cached = w.translate(1, 0x5004)
    assert cached["hit"] and cached["pa"] == 0x4A00_0004
    stats = w.tlb_stats()
    dry = w.translate(1, 0x5004, dry=True)
    assert not dry["hit"] and dry["pa"] == 0x4B00_0004
    assert w.tlb_stats() == stats


def test_dry_walk_reports_the_same_fault():
    k, s1, cd = s1_kit()
    w = k.walker
    dry = w.translate(1, 0x9000, trace=True, dry=True)
    assert dry["fault"]["type"] == "F_TRANSLATION"
    assert dry == w.translate_uncached(1, 0x9000, trace=True)
    assert w.cached_stes() == [] and w.tlb_stats()["misses"] == 0


# -- read_ste -----------------------------------------------------------------------------------

def test_read_ste_linear():
    k = Kit()
    words = STE.encode(V=1, Config=4)
    k.put_ste(7, V=1, Config=4)
    k.put_ste(8, V=0)
    r = k.walker.read_ste(7)
    assert r["words"] == list(words)
    assert (r["ste_pa"], r["table"], r["index"]) == (STRTAB + 7 * 64, STRTAB, 7)
    assert (r["l1_pa"], r["l1"], r["reason"], r["fault"]) == (None, None, "", None)
    assert [s["what"] for s in r["steps"]] == ["STE"]
    bad = k.walker.read_ste(8)
    assert bad["reason"] == "STE.V=0" and bad["fault"]["type"] == "C_BAD_STE"
    assert k.walker.cached_stes() == []                   # caching is on, yet nothing cached


def test_read_ste_two_level():
    k = Kit()
    l1, l2 = 0x4100_0000, 0x4101_0000
    l1d = L1STD.encode(Span=9, L2Ptr=l2 >> 6)[0]
    k.mem.write_u64(l1 + 8 * 0x12, l1d)
    k.mem.write_words(l2 + 64 * 0x34, STE.encode(V=1, Config=4))
    k.walker.configure(strtab_base=l1, strtab_fmt=1, strtab_split=8, strtab_log2size=16)
    r = k.walker.read_ste(0x1234)
    assert (r["l1_pa"], r["l1"]) == (l1 + 8 * 0x12, l1d)
    assert (r["table"], r["index"], r["ste_pa"]) == (l2, 0x34, l2 + 64 * 0x34)
    assert [s["what"] for s in r["steps"]] == ["L1STD", "STE"]
    span0 = k.walker.read_ste(0x1334)                     # L1STD[0x13] is zero: Span=0
    assert span0["words"] is None and span0["fault"]["type"] == "C_BAD_STREAMID"
    assert span0["reason"] == "L1STD.Span is 0 (invalid) or reserved"


def test_read_ste_fetch_abort():
    k = Kit()
    k.walker.configure(strtab_base=0x7_0000_0000)
    r = k.walker.read_ste(3)
    assert r["words"] is None and r["fault"]["type"] == "F_STE_FETCH"
    assert r["fault"]["fetch_addr"] == r["ste_pa"] == 0x7_0000_0000 + 3 * 64


# -- read_cd ------------------------------------------------------------------------------------

def test_read_cd_nested_goes_through_stage2():
    k, s1, cd = nested_kit()
    r = k.walker.read_cd(1)
    assert r["words"] == list(k.cd_words(s1))
    assert r["cd_ipa"] == cd and r["cd_pa"] == GPA + cd - GIPA
    assert r["ste_pa"] == STRTAB + 64
    whats = [(s["what"], s["purpose"]) for s in r["steps"]]
    assert whats[0] == ("STE", None) and whats[-1] == ("CD", None)
    assert all(w == ("S2", "CD") for w in whats[1:-1]) and len(whats) > 2
    assert k.walker.cached_cds() == [] and k.walker.tlb_stats()["misses"] == 0


def test_read_cd_two_level_and_errors():
    k = Kit()
    s1 = k.stage1()
    l1 = k.host.alloc(64)
    leaf = k.host.alloc(64 * 1024)
    l1d = L1CD.encode(V=1, L2Ptr=leaf >> 12)[0]
    k.mem.write_u64(l1 + 8, l1d)
    k.mem.write_words(leaf + 64 * 5, k.cd_words(s1))
    k.put_ste(1, V=1, Config=5, S1ContextPtr=l1 >> 6, S1Fmt=2, S1CDMax=11, S1DSS=1)
    k.walker.set_caps(dict(k.caps, SSIDSIZE=12))
    r = k.walker.read_cd(1, 0x405)
    assert (r["l1_pa"], r["l1"], r["l1_ipa"]) == (l1 + 8, l1d, None)
    assert (r["table"], r["index"], r["cd_pa"]) == (leaf, 5, leaf + 64 * 5)
    assert r["words"] == list(k.cd_words(s1)) and r["cd_ipa"] is None
    bad = k.walker.read_cd(1, 0x005)                      # L1CD[0] is zero: V=0
    assert bad["reason"] == "L1CD.V=0" and bad["words"] is None
    with pytest.raises(ValueError, match="does not use stage 1"):
        k.walker.read_cd(1)                               # S1DSS=bypass without SubstreamID
    k.put_ste(2, V=1, Config=4)
    with pytest.raises(ValueError, match="StreamID 2"):
        k.walker.read_cd(2)


def test_read_cd_illegal_cd_gives_words_and_reason():
    k, s1, cd = s1_kit(cd_extra=dict(T0SZ=8))
    r = k.walker.read_cd(1)
    assert r["words"] == list(k.cd_words(s1, T0SZ=8))
    assert r["reason"] == "CD.T0SZ/T1SZ is out of range" and r["fault"]["type"] == "C_BAD_CD"


# -- stage_config -------------------------------------------------------------------------------

def test_stage_config_nested():
    k, s1, cd = nested_kit()
    c = k.walker.stage_config(1)
    assert c["config"] == "nested" and c["s1_tables_in_ipa"] and c["fault"] is None
    t0 = c["stage1"]["ttb0"]
    # 48-bit VA, 4K granule: 48 - 12 = 36 bits over 9-bit levels = 4 levels, starting at 0.
    assert t0 == dict(enabled=True, granule=4096, vabits=48, start_level=0, ttb=s1.root,
                      tbi=False, had=False)
    assert c["stage1"]["ttb1"]["enabled"] is False        # EPD1=1
    assert c["stage1"]["asid"] == 1 and c["stage1"]["ips_bits"] == 48   # IPS=0b101
    s2 = c["stage2"]
    # IAS 40, 4K: 28 bits over 9-bit levels from level 1 needs 3 levels + 1 bit: two
    # concatenated level-1 tables (S2SL0=1), an 8 KiB root aligned to its size.
    assert (s2["granule"], s2["start_level"], s2["ias"], s2["ps_bits"], s2["vmid"]) == \
        (4096, 1, 40, 48, 1)
    assert s2["ttb"] == k.s2.root and s2["ttb"] % 0x2000 == 0


def test_stage_config_aligns_ttb_and_reports_16k():
    # 16K granule, 47-bit VA: 47 - 14 = 33 bits over 11-bit levels: levels 1..3.
    # TTB0 low bits below the table size are ignored (the walker aligns the base).
    k = Kit()
    s1 = k.stage1(16384, 47)
    cd = k.put_cd(k.cd_words(s1, TTB0=(s1.root | 0x70) >> 4))
    k.put_ste(1, V=1, Config=5, S1ContextPtr=cd >> 6)
    t0 = k.walker.stage_config(1)["stage1"]["ttb0"]
    assert (t0["granule"], t0["vabits"], t0["start_level"], t0["ttb"]) == (16384, 47, 1, s1.root)
    c = k.walker.stage_config(1)
    assert c["stage2"] is None and not c["s1_tables_in_ipa"]


def test_stage_config_faults():
    k = Kit()
    k.put_ste(1, V=1, Config=0)
    c = k.walker.stage_config(1)
    assert c["config"] == "abort" and c["reason"] == "STE.Config=abort"
    assert c["stage1"] is None and c["stage2"] is None
    k.put_ste(2, V=1, Config=5, S1ContextPtr=0x7_0000_0000 >> 6)
    c = k.walker.stage_config(2)
    assert c["fault"]["type"] == "F_CD_FETCH" and c["stage1"] is None


# -- cache checkpoints --------------------------------------------------------------------------

def test_export_import_caches_round_trip():
    k, s1, cd = nested_kit()
    s1.map(0x10_0000, GIPA + 0x40_0000, 0x4000)
    w = k.walker
    addrs = [0x10_0000 + i * 0x1000 + 0x18 for i in range(4)]
    pas = [w.translate(1, a)["pa"] for a in addrs]
    assert pas == [GPA + 0x40_0000 + i * 0x1000 + 0x18 for i in range(4)]
    state = cache_state(w)
    image = w.export_caches()
    w.invalidate_all()
    assert w.tlb_entries() == [] and w.cached_stes() == [] and w.cached_cds() == []
    w.import_caches(image)
    assert cache_state(w) == state
    # The restored entries serve translations: remap in memory without invalidation and the
    # walker still answers from the restored IOTLB.
    s1.unmap(0x10_0000, 0x4000)
    for a, pa in zip(addrs, pas):
        r = w.translate(1, a)
        assert r["hit"] and r["pa"] == pa


def test_import_caches_rejects_other_geometry():
    k = Kit()
    image = k.walker.export_caches()
    other = Walker(k.mem, k.caps, tlb_capacity=128)
    with pytest.raises(ValueError, match="geometry|does not fit"):
        other.import_caches(image)
