"""Translations and faults with every expected value derived by hand from the architecture
(IHI 0070 chapter 3/5/7, Arm ARM D8), not from the walker."""
import pytest

from walkkit import GIPA, GPA, STE, CD, STRTAB, Kit, nested_kit, s1_kit, L1STD, L1CD


def steps_of(r, what):
    return [s for s in r["steps"] if s["what"] == what]


# ---- successful walks ------------------------------------------------------------------------

def test_stage1_4k_four_levels():
    k, s1, _ = s1_kit()
    s1.map(0x7F12_3456_7000, 0x4800_0000, 0x1000)
    r = k.walk(1, 0x7F12_3456_7ABC)
    assert r["fault"] is None and r["pa"] == 0x4800_0ABC and r["perm"] == "rw-"
    # 4K, 48-bit VA: levels 0..3 index VA[47:39], [38:30], [29:21], [20:12].
    idx = [s["index"] for s in steps_of(r, "S1")]
    va = 0x7F12_3456_7ABC
    assert idx == [(va >> 39) & 511, (va >> 30) & 511, (va >> 21) & 511, (va >> 12) & 511]
    assert [s["level"] for s in steps_of(r, "S1")] == [0, 1, 2, 3]
    assert steps_of(r, "S1")[0]["desc_pa"] == s1.root + 8 * ((va >> 39) & 511)


def test_stage1_64k_starts_at_level1_for_48bit():
    k, s1, _ = s1_kit(gran=65536)
    s1.map(0x1234_0000_0000, 0x4810_0000, 0x10000)
    r = k.walk(1, 0x1234_0000_FFF8)
    assert r["pa"] == 0x4810_FFF8
    # 64K: stride 13; 48-bit VA starts at level 1 (VA[47:42]), then [41:29], [28:16].
    assert [s["level"] for s in steps_of(r, "S1")] == [1, 2, 3]
    assert steps_of(r, "S1")[0]["index"] == (0x1234_0000_FFF8 >> 42) & 0x3F


def test_stage1_16k_block_at_level2():
    k, s1, _ = s1_kit(gran=16384)
    s1.map(0x200_0000_0000, 0x4A00_0000, 0x200_0000)     # 32 MiB block (16K level 2)
    r = k.walk(1, 0x200_01AB_CDE0)
    assert r["pa"] == 0x4A00_0000 + 0x1AB_CDE0
    assert steps_of(r, "S1")[-1]["outcome"] == "block" and steps_of(r, "S1")[-1]["level"] == 2


def test_stage1_ttb1_selected_by_top_bits():
    k = Kit()
    t0 = k.stage1(4096, 48)
    t1 = k.stage1(4096, 39)
    t1.map(0x7F_FFFF_F000, 0x4C00_0000, 0x1000)          # 39-bit table
    cd = k.put_cd(CD.encode(V=1, AA64=1, T0SZ=16, TG0=0, T1SZ=25, TG1=2, IPS=5, R=1, A=1,
                            TTB0=t0.root >> 4, TTB1=t1.root >> 4))
    k.put_ste(1, V=1, Config=5, S1ContextPtr=cd >> 6)
    # VA with bits [63:39] all ones selects TTB1; its table sees VA[38:0].
    r = k.walk(1, 0xFFFF_FFFF_FFFF_F010)
    assert r["pa"] == 0x4C00_0010
    # Bits [63:39] mixed: neither range -> stage 1 F_TRANSLATION, CLASS=IN.
    f = k.walk(1, 0xFFFF_0000_0000_0010)["fault"]
    assert (f["type"], f["s2"], f["class"]) == ("F_TRANSLATION", False, "IN")


def test_tbi_ignores_top_byte():
    k, s1, _ = s1_kit(cd_extra={"TBI0": 1})
    s1.map(0x1000_0000, 0x4800_0000, 0x1000)
    r = k.walk(1, 0xAB00_0000_1000_0040)
    assert r["pa"] == 0x4800_0040
    assert k.walk(1, 0xAB00_0000_1000_0040)["fault"] is None
    k2, t2, _ = s1_kit()
    t2.map(0x1000_0000, 0x4800_0000, 0x1000)
    f = k2.walk(1, 0xAB00_0000_1000_0040)["fault"]
    assert f["type"] == "F_TRANSLATION" and f["input_addr"] == 0xAB00_0000_1000_0040


def test_epd0_disables_ttb0():
    k, s1, _ = s1_kit(cd_extra={"EPD0": 1})
    s1.map(0x1000_0000, 0x4800_0000, 0x1000)
    f = k.walk(1, 0x1000_0000)["fault"]
    assert f["type"] == "F_TRANSLATION" and not f["s2"]


def test_stage2_concatenated_root_second_table():
    # 4K, S2T0SZ=24 (40-bit IPA), SL0=1 -> start level 1 resolving IPA[39:30]: 1024 entries,
    # two concatenated 4K tables. IPA bit 39 selects the second table (QEMU gets this wrong).
    k = Kit()
    s2 = k.stage2(4096, 40, guest_ram=False)
    assert (s2.start, s2.sl0, s2.concatenated) == (1, 1, 2)
    s2.map(0x80_4000_0000 & ((1 << 40) - 1) | (1 << 39), 0x4D00_0000, 0x1000)
    ipa = (1 << 39) | 0x4000_0000 | 0x18
    k.put_ste(1, V=1, Config=6, **k.ste_s2_fields())
    r = k.walk(1, ipa)
    assert r["pa"] == 0x4D00_0018
    first = steps_of(r, "S2")[0]
    assert first["index"] == (ipa >> 30) & 1023 and first["index"] >= 512
    assert first["desc_pa"] == s2.root + 8 * ((ipa >> 30) & 1023)   # in the 2nd 4K table


def test_nested_result_and_every_stage1_fetch_through_stage2():
    k, s1, cd = nested_kit()
    s1.map(0x1000_0000, GIPA + 0x200_0000, 0x1000)
    r = k.walk(1, 0x1000_0ABC, write=True)
    assert r["ipa"] == GIPA + 0x200_0ABC
    assert r["pa"] == GPA + 0x200_0ABC            # stage 2 maps guest RAM linearly
    steps = r["steps"]
    s1_steps = [i for i, s in enumerate(steps) if s["what"] == "S1"]
    assert len(s1_steps) == 4
    for i in s1_steps:
        # The stage-2 walk just before each stage-1 fetch translates that descriptor's IPA.
        prev = steps[i - 1]
        assert prev["what"] == "S2" and prev["purpose"] == "TT"
        assert prev["in_addr"] == steps[i]["desc_ipa"]
        assert steps[i]["desc_pa"] == steps[i]["desc_ipa"] - GIPA + GPA
    # 4 stage-1 fetches, each after a stage-2 walk, then the output's stage-2 walk.
    s2_for_tt = [s for s in steps if s["what"] == "S2" and s["purpose"] == "TT"]
    s2_for_in = [s for s in steps if s["what"] == "S2" and s["purpose"] == "IN"]
    assert len(s2_for_in) == len(s2_for_tt) // 4
    cd_step = steps_of(r, "CD")[0]
    assert cd_step["desc_ipa"] == cd and cd_step["desc_pa"] == cd - GIPA + GPA


def test_nested_permission_is_and_of_both_stages():
    k = Kit()
    s2 = k.stage2()
    s2.unmap(GIPA + 0x300_0000, 0x1000)
    s2.map(GIPA + 0x300_0000, GPA + 0x300_0000, 0x1000, write=False)   # stage 2 read-only
    s1 = k.stage1(nested=True)
    s1.map(0x2000_0000, GIPA + 0x300_0000, 0x1000, write=True)          # stage 1 read-write
    cd = k.put_cd(k.cd_words(s1), nested=True)
    k.put_ste(1, V=1, Config=7, S1ContextPtr=cd >> 6, **k.ste_s2_fields())
    r = k.walk(1, 0x2000_0010)
    assert r["perm"] == "r--"
    f = k.walk(1, 0x2000_0010, write=True)["fault"]
    # The write is refused by stage 2: S2=1, CLASS=IN, IPA = the stage-1 output.
    assert (f["type"], f["s2"], f["class"], f["ipa"]) == ("F_PERMISSION", True, "IN",
                                                          GIPA + 0x300_0010)


# ---- faults ----------------------------------------------------------------------------------

def test_stage2_fault_while_fetching_stage1_table():
    k, s1, _ = nested_kit()
    s1.map(0x1000_0000, GIPA + 0x200_0000, 0x1000)
    va = 0x1000_0000
    # Remove the stage-2 mapping of the stage-1 level-1 table's page.
    l0 = s1.root + 8 * ((va >> 39) & 511)
    l1_table = k.mem.read_u64(k.ipa_pa(l0)) & 0xFFFF_FFFF_F000
    desc_ipa = l1_table + 8 * ((va >> 30) & 511)
    k.s2.unmap(l1_table & ~0xFFF, 0x1000)
    f = k.walk(1, va)["fault"]
    assert f["type"] == "F_TRANSLATION"
    assert f["s2"] is True and f["class"] == "TT"
    assert f["ipa"] == desc_ipa                 # IHI 0070 7.3.13: the IPA of the fetch
    assert f["input_addr"] == va


def test_stage2_fault_during_cd_fetch():
    k, s1, cd = nested_kit()
    k.s2.unmap(cd & ~0xFFF, 0x1000)
    f = k.walk(1, 0x1000)["fault"]
    assert (f["type"], f["s2"], f["class"], f["ipa"]) == ("F_TRANSLATION", True, "CD", cd)


def test_walk_eabt_stage1_reports_fetch_pa():
    k, s1, cd = s1_kit()
    s1.map(0x1000_0000, 0x4800_0000, 0x1000)
    # Point the level-0 descriptor at a table outside any memory.
    va = 0x1000_0000
    l0 = s1.root + 8 * ((va >> 39) & 511)
    k.mem.write_u64(l0, 0x7_0000_0000 | 3)
    f = k.walk(1, va)["fault"]
    assert (f["type"], f["s2"], f["class"]) == ("F_WALK_EABT", False, "TT")
    assert f["fetch_addr"] == 0x7_0000_0000 + 8 * ((va >> 30) & 511)
    assert f["record"] is True


def test_walk_eabt_stage2_in_nested_table_fetch():
    k, s1, _ = nested_kit()
    s1.map(0x1000_0000, GIPA + 0x200_0000, 0x1000)
    # Make the stage-2 level-3... here: point a stage-2 table descriptor at nowhere.
    top = k.s2.root + 8 * ((GIPA >> 30) & 1023)
    k.mem.write_u64(top, 0x7_0000_0000 | 3)
    f = k.walk(1, 0x1000_0000)["fault"]
    # The first stage-2 walk is the CD fetch's: S2=1, CLASS=CD, FetchAddr = the S2 desc PA.
    assert (f["type"], f["s2"], f["class"]) == ("F_WALK_EABT", True, "CD")
    assert f["fetch_addr"] == 0x7_0000_0000 + 8 * ((GIPA >> 21) & 511)


def test_access_flag_fault_and_affd():
    k, s1, _ = s1_kit()
    s1.map(0x1000_0000, 0x4800_0000, 0x1000, af=False)
    f = k.walk(1, 0x1000_0000)["fault"]
    assert (f["type"], f["s2"], f["class"]) == ("F_ACCESS", False, "IN")
    k2, t2, _ = s1_kit(cd_extra={"AFFD": 1})
    t2.map(0x1000_0000, 0x4800_0000, 0x1000, af=False)
    assert k2.walk(1, 0x1000_0000)["pa"] == 0x4800_0000


def test_stage1_permissions():
    k, s1, _ = s1_kit()
    s1.map(0x1000_0000, 0x4800_0000, 0x1000, write=False)                 # AP=0b11 RO any
    s1.map(0x1000_1000, 0x4800_1000, 0x1000, user=False)                  # AP=0b00 EL1 RW
    s1.map(0x1000_2000, 0x4800_2000, 0x1000, exec_=True, write=False)     # executable RO
    f = k.walk(1, 0x1000_0000, write=True)["fault"]
    assert f["type"] == "F_PERMISSION" and f["rnw"] is False
    assert k.walk(1, 0x1000_1000)["fault"]["type"] == "F_PERMISSION"      # unprivileged
    assert k.walk(1, 0x1000_1000, priv=True, write=True)["pa"] == 0x4800_1000
    assert k.walk(1, 0x1000_2000, instr=True)["pa"] == 0x4800_2000
    f = k.walk(1, 0x1000_0000, instr=True)["fault"]                       # XN
    assert f["type"] == "F_PERMISSION" and f["ind"] is True


def test_aptable_removes_write_below():
    k, s1, _ = s1_kit()
    s1.map(0x1000_0000, 0x4800_0000, 0x1000)
    va = 0x1000_0000
    l0 = s1.root + 8 * ((va >> 39) & 511)
    k.mem.write_u64(l0, k.mem.read_u64(l0) | (1 << 62))     # APTable[1]: no write below
    assert k.walk(1, va, write=True)["fault"]["type"] == "F_PERMISSION"
    assert k.walk(1, va)["pa"] == 0x4800_0000


def test_output_address_size_fault():
    k, s1, _ = s1_kit(cd_extra={"IPS": 2})          # 40-bit IPS
    s1.map(0x1000_0000, 0x100_0000_0000, 0x1000)     # output at 2^40
    f = k.walk(1, 0x1000_0000)["fault"]
    assert (f["type"], f["s2"]) == ("F_ADDR_SIZE", False)


def test_stage2_only_input_beyond_ias_is_stage1_addr_size():
    k = Kit()
    k.stage2(4096, 40)
    k.put_ste(1, V=1, Config=6, **k.ste_s2_fields())
    f = k.walk(1, 1 << 48)["fault"]                  # OAS=48 bits: IAS = 48
    assert (f["type"], f["s2"], f["class"]) == ("F_ADDR_SIZE", False, "IN")
    f = k.walk(1, 1 << 41)["fault"]                  # < IAS but beyond S2T0SZ's 40 bits
    assert (f["type"], f["s2"], f["ipa"]) == ("F_TRANSLATION", True, 1 << 41)


def test_config_abort_is_silent_and_bypass_passes_through():
    k = Kit()
    k.put_ste(1, V=1, Config=0)
    k.put_ste(2, V=1, Config=4)
    r = k.walk(1, 0x1000)
    assert r["fault"]["type"] == "ABORT" and r["fault"]["record"] is False
    r = k.walk(2, 0x1234_5678)
    assert r["pa"] == 0x1234_5678 and r["perm"] == "rwx"


def test_bad_streamid_and_ste_fetch():
    k = Kit(log2size=4)
    f = k.walk(16, 0)["fault"]
    assert f["type"] == "C_BAD_STREAMID" and f["sid"] == 16
    k.walker.configure(strtab_base=0x7_0000_0000)
    f = k.walk(3, 0)["fault"]
    assert f["type"] == "F_STE_FETCH" and f["fetch_addr"] == 0x7_0000_0000 + 3 * 64


def test_two_level_stream_table():
    k = Kit()
    l1 = 0x4100_0000
    l2 = 0x4101_0000
    # SPLIT=8: L1STD index = SID[15:8]; Span=9 -> 256 STEs.
    k.mem.write_u64(l1 + 8 * 0x12, L1STD.encode(Span=9, L2Ptr=l2 >> 6)[0])
    k.mem.write_words(l2 + 64 * 0x34, STE.encode(V=1, Config=4))
    k.walker.configure(strtab_base=l1, strtab_fmt=1, strtab_split=8, strtab_log2size=16)
    r = k.walk(0x1234, 0x5000)
    assert r["pa"] == 0x5000
    assert [s["desc_pa"] for s in r["steps"]] == [l1 + 8 * 0x12, l2 + 64 * 0x34]
    assert k.walk(0x1334, 0)["fault"]["type"] == "C_BAD_STREAMID"       # Span=0
    k.mem.write_u64(l1 + 8 * 0x12, L1STD.encode(Span=2, L2Ptr=l2 >> 6)[0])
    assert k.walk(0x1202, 0)["fault"]["type"] == "C_BAD_STREAMID"       # index 2 >= 2^(2-1)


@pytest.mark.parametrize("fields,reason", [
    (dict(V=0), "STE.V=0"),
    (dict(S2TG=3), "S2TG"),
    (dict(S2SL0=3), "S2SL0"),
    (dict(S2T0SZ=16), "S2T0SZ"),       # 48-bit IPA with start level 1 (4K) needs level 0
    (dict(S2AA64=0), "S2AA64"),
    (dict(S2VMID=0x100), None),        # VMID16 supported: legal
])
def test_c_bad_ste(fields, reason):
    k = Kit()
    k.stage2(4096, 40)
    base = dict(V=1, Config=6, **k.ste_s2_fields())
    base.update(fields)
    k.put_ste(1, **base)
    f = k.walk(1, GIPA)["fault"]
    if reason is None:
        assert f is None
    else:
        assert f["type"] == "C_BAD_STE" and reason in f["reason"]


def test_c_bad_ste_cdmax_over_ssidsize_and_missing_s2p():
    k = Kit(caps={"SSIDSIZE": 4})
    k.put_ste(1, V=1, Config=5, S1CDMax=5)
    assert "S1CDMax" in k.walk(1, 0)["fault"]["reason"]
    k2 = Kit(caps={"S2P": 0})
    k2.put_ste(1, V=1, Config=6)
    assert k2.walk(1, 0)["fault"]["type"] == "C_BAD_STE"


def test_c_bad_cd():
    for extra, reason in [(dict(V=0), "CD.V=0"), (dict(T0SZ=10), "T0SZ"), (dict(TG0=3), "TG0"),
                          (dict(AA64=0), "AA64"), (dict(TG0=1, T0SZ=16), None)]:
        k, s1, _ = s1_kit(cd_extra=extra)
        f = k.walk(1, 0x1000)["fault"]
        if reason is None:
            # TG0=64K while the tables are 4K: legal, walks garbage-free empty tables.
            assert f["type"] == "F_TRANSLATION", (extra, f)
        else:
            assert f["type"] == "C_BAD_CD" and reason in f["reason"], (extra, f)


def test_cd_ips_0b111_is_reserved_and_capped_to_oas():
    # IHI 0070 5.4 IPS: 0b111 is 56 bits in v3.4 (reserved before); either way the effective
    # size is capped to the OAS (48 bits here), so an output at 2^47 is fine and 2^48 is not.
    k, s1, _ = s1_kit(cd_extra={"IPS": 7})
    s1.map(0x1000_0000, 1 << 47, 0x1000)
    assert k.walk(1, 0x1000_0000)["pa"] == 1 << 47


def test_substream_rules():
    k = Kit()
    s1 = k.stage1()
    s1.map(0x1000, 0x4800_0000, 0x1000)
    table = k.host.alloc(64 * 4)
    k.mem.write_words(table + 64 * 2, k.cd_words(s1, asid=5))
    k.mem.write_words(table, k.cd_words(s1, asid=6))
    for s1dss, nossid in [(0, "F_STREAM_DISABLED"), (1, None), (2, 0x4800_0000)]:
        k.put_ste(1, V=1, Config=5, S1ContextPtr=table >> 6, S1CDMax=2, S1DSS=s1dss)
        k.walker.invalidate_all()
        r = k.walk(1, 0x1000)
        if nossid == "F_STREAM_DISABLED":
            assert r["fault"]["type"] == nossid
        elif nossid is None:
            assert r["pa"] == 0x1000                 # stage 1 bypassed, no stage 2
        else:
            assert r["pa"] == nossid
        assert k.walk(1, 0x1000, ssid=2)["pa"] == 0x4800_0000
        assert k.walk(1, 0x1000, ssid=4)["fault"]["type"] == "C_BAD_SUBSTREAMID"
    # S1DSS=substream0 reserves CD 0: SSID 0 given explicitly is terminated with
    # F_STREAM_DISABLED (IHI 0070 5.2 S1DSS=0b10, 7.3.7).
    assert k.walk(1, 0x1000, ssid=0)["fault"]["type"] == "F_STREAM_DISABLED"
    k.put_ste(2, V=1, Config=4)
    assert k.walk(2, 0x1000, ssid=1)["fault"]["type"] == "C_BAD_SUBSTREAMID"


def test_two_level_cd_table_64k_leaves():
    k = Kit()
    s1 = k.stage1()
    s1.map(0x1000, 0x4800_0000, 0x1000)
    l1 = k.host.alloc(64)
    leaf = k.host.alloc(64 * 1024)
    # S1Fmt=2: L1CD index = SSID[7:10]... SSID 0x405 -> L1 index 1, leaf index 5.
    k.mem.write_u64(l1 + 8, L1CD.encode(V=1, L2Ptr=leaf >> 12)[0])
    k.mem.write_words(leaf + 64 * 5, k.cd_words(s1))
    k.put_ste(1, V=1, Config=5, S1ContextPtr=l1 >> 6, S1Fmt=2, S1CDMax=11, S1DSS=1)
    k.walker.set_caps(dict(k.caps, SSIDSIZE=12))
    r = k.walk(1, 0x1000, ssid=0x405)
    assert r["pa"] == 0x4800_0000
    assert [s["desc_pa"] for s in r["steps"][1:3]] == [l1 + 8, leaf + 64 * 5]
    f = k.walk(1, 0x1000, ssid=0x805)["fault"]        # L1CD[2].V=0
    assert f["type"] == "C_BAD_SUBSTREAMID"


def test_cd_fetch_abort():
    k = Kit()
    k.put_ste(1, V=1, Config=5, S1ContextPtr=0x7_0000_0000 >> 6)
    f = k.walk(1, 0)["fault"]
    assert f["type"] == "F_CD_FETCH" and f["fetch_addr"] == 0x7_0000_0000


def test_fault_not_recorded_when_cd_r_is_0():
    k, s1, _ = s1_kit(cd_extra={"R": 0})
    f = k.walk(1, 0x1000)["fault"]
    assert f["type"] == "F_TRANSLATION" and f["record"] is False


def test_batch_matches_single():
    import numpy as np
    k, s1, _ = s1_kit()
    s1.map(0x1000_0000, 0x4800_0000, 0x4000)
    addrs = np.array([0x1000_0000, 0x1000_1008, 0x2000_0000, 0x1000_3FFF], dtype=np.uint64)
    out, fault, perm = k.walker.translate_batch(np.ones(4, np.uint32), addrs,
                                                access=np.array([0, 1, 0, 0], np.uint8))
    assert list(out) == [0x4800_0000, 0x4800_1008, 0, 0x4800_3FFF]
    assert list(fault) == [0, 0, 0x10, 0]          # F_TRANSLATION = 0x10
    assert list(perm) == [3, 3, 0, 3]


def test_scan_table_merges_only_equal_attributes():
    from core_cy.ptbuild import scan_table
    k = Kit()
    s1 = k.stage1()
    s1.map(0x1000_0000, 0x4800_0000, 0x2000, write=True)
    s1.map(0x1000_2000, 0x4800_2000, 0x1000, write=False)     # AP differs: a new run
    s1.map(0x1000_4000, 0x4800_5000, 0x1000, write=False)     # output not contiguous
    lvl, daddr, _ = s1.lookup(0x1000_0000)
    table = daddr & ~0xFFF
    rows = scan_table(k.mem, table, 512, 3, 12)
    assert [(kind, idx, n) for kind, idx, n, _ in rows] == [("page", 0, 2), ("page", 2, 1),
                                                            ("page", 4, 1)]
