"""`pt` permissions agree with the walker, and the combined nested view of `pt`.

Permissions: for every stage-1 AP/PXN/UXN combination (Arm ARM D8.4 / AArch64.S1DirectBase-
Permissions for the EL1&0 regime: AP[2] read-only, AP[1] EL0 access, PXN/UXN, and "a location
writable at EL0 is never executable at EL1"), the letters `pt` shows for a leaf must match what
`walk ... access=A [priv]` allows on that page. Stage 2 likewise for S2AP x XN.
"""
import pytest

from smmudbg.arch.fieldtable import fmt
from smmudbg.session import Session

S1_BLOCK, S2_BLOCK = fmt("S1_BLOCK"), fmt("S2_BLOCK")
# host-dma (default scenario): stage 1 only, 64K granule, used by nvme0 (SMMU smmu0 SID 0x100).
BASE, PA, STEP = 0x40_0000_0000, 0x5200_0000, 0x2_0000


def ok(s, line):
    out = s.execute(line)
    assert out.ok, f"{line}: {out.error}"
    return out.result.to_json()


def rewrite(s, domain, iova, **fields):
    """Set fields of the leaf that maps iova, in memory."""
    leaf = s.system.domain_tables(domain).lookup(iova)["leaf"]
    fmt_ = S1_BLOCK if s.system.domains[domain].stage == 1 else S2_BLOCK
    words = [leaf["desc"]]
    for k, v in fields.items():
        fmt_.field(k).put(words, v)
    s.system.mem.write_u64(leaf["desc_pa"], words[0])


def allowed(s, target, iova):
    """{(access, priv): bool} from dry walks."""
    out = {}
    for access in ("read", "write", "exec"):
        for priv in (False, True):
            r = ok(s, f"walk {target} {iova:#x} access={access}{' priv' if priv else ''} dry")
            out[(access, priv)] = r["fault"] is None
    return out


def letters(row, priv):
    """What the row says for one privilege, as {access: bool}."""
    t = row["priv"] if priv else row["unpriv"]
    return {"read": t[0] == "r", "write": t[1] == "w", "exec": t[2] == "x"}


def expected_s1(ap, pxn, uxn):
    """Independent statement of the EL1&0 rule (Arm ARM AArch64.S1DirectBasePermissions):
    EL0 execution depends on UXN only (AP[1]=0 with UXN=0 is EL0 execute-only memory, as
    Linux's PAGE_EXECONLY), and a location writable at EL0 is never executable at EL1."""
    el0 = bool(ap & 1)
    ro = bool(ap & 2)
    priv = {"read": True, "write": not ro, "exec": not pxn and not (el0 and not ro)}
    unpriv = {"read": el0, "write": el0 and not ro, "exec": not uxn}
    return priv, unpriv


@pytest.fixture(scope="module")
def s1():
    s = Session()
    combos = [(ap, pxn, uxn) for ap in range(4) for pxn in (0, 1) for uxn in (0, 1)]
    for i, (ap, pxn, uxn) in enumerate(combos):
        iova = BASE + i * STEP
        s.system.map_range("host-dma", iova, PA + i * 0x1_0000, 0x1_0000, "rw")
        rewrite(s, "host-dma", iova, AP=ap, PXN=pxn, UXN=uxn)
    return s, combos


def test_pt_s1_perms_equal_walk_for_every_ap_pxn_uxn(s1):
    s, combos = s1
    rows = {r["in"]: r for r in ok(s, "pt nvme0")["rows"] if r["kind"] != "table"}
    for i, (ap, pxn, uxn) in enumerate(combos):
        iova = BASE + i * STEP
        row = rows[iova]
        walked = allowed(s, "nvme0", iova + 0x40)
        want_p, want_u = expected_s1(ap, pxn, uxn)
        for priv, want in ((True, want_p), (False, want_u)):
            shown = letters(row, priv)
            for access in ("read", "write", "exec"):
                assert shown[access] == walked[(access, priv)] == want[access], \
                    (f"AP={ap:#04b} PXN={pxn} UXN={uxn} {access} priv={priv}: pt {row['perm']}"
                     f" walk {walked[(access, priv)]} rule {want[access]}")


def test_ap01_page_is_privileged_execute_never(s1):
    # The case of issue 14: AP=0b01 (EL0 read/write), PXN=0, UXN=0. pt used to say rwxuX.
    s, combos = s1
    i = combos.index((1, 0, 0))
    row = next(r for r in ok(s, "pt nvme0")["rows"] if r.get("in") == BASE + i * STEP)
    assert row["perm"] == "rw-uX"
    assert ok(s, f"walk nvme0 {BASE + i * STEP:#x} access=exec priv dry")["fault"]["type"] == \
        "F_PERMISSION"


def test_pt_s2_perms_equal_walk():
    # gpu0 (SID 0x200) is stage 2 only over vm0-s2 (VMID 1). Stage 2 has no privilege split
    # except XN[0] with SMMU_IDR3.XNX=1 (Arm ARM D8.4.2: XN 0b01 PXN-like, 0b11 UXN-like).
    s = Session()
    base = 0x5000_0000      # beyond vm0's RAM (IPA 0x4000_0000 + 256M)
    combos = [(s2ap, xn) for s2ap in range(4) for xn in range(4)]
    for i, (s2ap, xn) in enumerate(combos):
        ipa = base + i * 0x2000
        s.system.map_range("vm0-s2", ipa, 0x7000_0000 + i * 0x1000, 0x1000, "rw")
        rewrite(s, "vm0-s2", ipa, S2AP=s2ap, XN=xn)
    rows = {r["in"]: r for r in ok(s, "pt gpu0")["rows"] if r["kind"] != "table"}
    for i, (s2ap, xn) in enumerate(combos):
        ipa = base + i * 0x2000
        walked = allowed(s, "gpu0", ipa)
        for priv in (True, False):
            shown = letters(rows[ipa], priv)
            want = {"read": bool(s2ap & 1), "write": bool(s2ap & 2),
                    "exec": xn in ((0, 3) if priv else (0, 1))}
            for access in ("read", "write", "exec"):
                assert shown[access] == walked[(access, priv)] == want[access], \
                    f"S2AP={s2ap:#04b} XN={xn:#04b} {access} priv={priv}"


# ---- the combined nested view ------------------------------------------------------------------
def nested_rows(r):
    return [(x["in"], x["end"], x["ipa"], x["ipa_end"], x["out"], x["out_end"], x["s1_perm"],
             x["s2_perm"], x["priv"], x["unpriv"]) for x in r["rows"] if x["kind"] == "nested"]


def test_pt_nested_shows_iova_ipa_pa_in_one_tree():
    # default.toml: nic0 CD 0 (nic0-dma) maps IOVA 0x1000_0000 -> IPA 0x4100_0000 (2M, "rw":
    # AP=0b01, XN) and 0x2000_0000 -> 0x4300_0000 (16K, "r": AP=0b11); vm0-s2 maps vm0's RAM
    # IPA 0x4000_0000 -> PA 0x6000_0000 (256M) "rwx" in 2M blocks. The MSI doorbell: IOVA
    # 0x800_0000 -> gDB 0x809_0000 (4K, "rw"), which vm0-s2 maps to PA 0x809_0000 ("rw").
    s = Session()
    # Three more stage-1 pages that stage 2 treats three ways: the last page of vm0's RAM
    # (rwx), an IPA stage 2 maps read-only to PA 0x7000_0000, and an IPA it does not map.
    ok(s, "map vm0-s2 0x50000000 0x70000000 4K perm=r")
    ok(s, "map nic0-dma 0x30000000 0x4ffff000 8K")
    ok(s, "map nic0-dma 0x30002000 0x90000000 4K")
    r = ok(s, "pt nic0 stage=nested")
    assert r["kind"] == "pt-nested" and r["tables_are_ipa"] and r["s2"]["granule"] == 4096
    assert nested_rows(r) == [
        (0x0800_0000, 0x0800_0fff, 0x0809_0000, 0x0809_0fff, 0x0809_0000, 0x0809_0fff,
         "rw-u-", "rw-", "rw-", "rw-"),
        (0x1000_0000, 0x101f_ffff, 0x4100_0000, 0x411f_ffff, 0x6100_0000, 0x611f_ffff,
         "rw-u-", "rwx", "rw-", "rw-"),
        (0x2000_0000, 0x2000_3fff, 0x4300_0000, 0x4300_3fff, 0x6300_0000, 0x6300_3fff,
         "r--u-", "rwx", "r--", "r--"),
        # One stage-1 run (8K, equal attributes) split where stage 2 changes attributes.
        (0x3000_0000, 0x3000_0fff, 0x4fff_f000, 0x4fff_ffff, 0x6fff_f000, 0x6fff_ffff,
         "rw-u-", "rwx", "rw-", "rw-"),
        (0x3000_1000, 0x3000_1fff, 0x5000_0000, 0x5000_0fff, 0x7000_0000, 0x7000_0fff,
         "rw-u-", "r--", "r--", "r--"),
        (0x3000_2000, 0x3000_2fff, 0x9000_0000, 0x9000_0fff, None, None,
         "rw-u-", None, "---", "---"),
    ]
    # Each nested row sits under its stage-1 leaf row (depth + 1).
    rows = r["rows"]
    for i, x in enumerate(rows):
        if x["kind"] == "nested":
            parent = next(p for p in reversed(rows[:i]) if p["kind"] in ("block", "page"))
            assert x["depth"] == parent["depth"] + 1 and parent["in"] <= x["in"] <= parent["end"]
    # CD 1 (nic0-pasid1): IOVA 0x7f00_0000_0000 -> IPA 0x4400_0000 (64K) -> PA 0x6400_0000.
    r = ok(s, "pt nic0 stage=nested ssid=1")
    assert nested_rows(r) == [(0x7f00_0000_0000, 0x7f00_0000_ffff, 0x4400_0000, 0x4400_ffff,
                               0x6400_0000, 0x6400_ffff, "rw-u-", "rwx", "rw-", "rw-")]


def test_pt_nested_refuses_a_stream_that_is_not_nested():
    s = Session()
    out = s.execute("pt gpu0 stage=nested")
    assert not out.ok and "not nested" in out.error


def test_core_leaf_perms_equal_the_walker_for_every_combination():
    # core_cy.scan.leaf_perms (what pt and find use) against the walker itself, for every
    # AP x PXN x UXN x APTable x PXNTable x UXNTable, under CD.WXN x CD.PAN, and in the EL2
    # regime (STE.STRW=EL2 with SMMU_IDR0.HYP), for read/write/exec x privileged/unprivileged.
    import itertools
    from core_cy.scan import leaf_perms
    from walkkit import Kit, STRTAB
    S1_TABLE = fmt("S1_TABLE")
    k = Kit(caps={"HYP": 1})
    s1 = k.stage1()
    combos = list(itertools.product(range(4), (0, 1), (0, 1), range(4), (0, 1), (0, 1)))
    for i, (ap, pxn, uxn, tap, tpxn, tuxn) in enumerate(combos):
        va = i << 39                                  # its own level-0 entry
        s1.map(va, 0x4800_0000 + (i << 12), 0x1000)
        _, daddr, d = s1.lookup(va)
        w = [d]
        for name, v in (("AP", ap), ("PXN", pxn), ("UXN", uxn)):
            S1_BLOCK.field(name).put(w, v)
        k.mem.write_u64(daddr, w[0])
        l0 = s1.root + 8 * i
        t = [k.mem.read_u64(l0)]
        for name, v in (("APTable", tap), ("PXNTable", tpxn), ("UXNTable", tuxn)):
            S1_TABLE.field(name).put(t, v)
        k.mem.write_u64(l0, t[0])
    regimes = []
    for sid, (wxn, pan, el2) in enumerate(itertools.product((0, 1), (0, 1), (0, 1)), 1):
        if el2 and pan:
            continue                                  # PAN is not used in the EL2 regime
        cd = k.put_cd(k.cd_words(s1, asid=sid, WXN=wxn, PAN=pan))   # own IOTLB entries
        k.put_ste(sid, V=1, Config=5, S1ContextPtr=cd >> 6, STRW=2 if el2 else 0)
        regimes.append((sid, wxn, pan, el2))
    assert k.mem.read_u64(STRTAB + 64) != 0
    for sid, wxn, pan, el2 in regimes:
        k.walker.invalidate_all()          # EL2 entries have no ASID: regimes would share them
        for i, (ap, pxn, uxn, tap, tpxn, tuxn) in enumerate(combos):
            va = i << 39
            d = s1.lookup(va)[2]
            bits = leaf_perms(1, d, tap, bool(tpxn), bool(tuxn), el2=bool(el2), pan=bool(pan),
                              wxn=bool(wxn))
            for priv in (False, True):
                have = (bits if priv else bits >> 3) & 7
                for acc, bit in (("read", 1), ("write", 2), ("exec", 4)):
                    r = k.walker.translate(sid, va, None, write=acc == "write",
                                           instr=acc == "exec", priv=priv)
                    assert (r["fault"] is None) == bool(have & bit), \
                        (sid, wxn, pan, el2, ap, pxn, uxn, tap, tpxn, tuxn, acc, priv)
