"""Property tests: random mappings and addresses against an independent model of the mapping,
and the Cython walker against the pure-Python reference walker (smmudbg.refwalk) on random,
often illegal, configurations, field by field and fetch by fetch."""
import random

from hypothesis import HealthCheck, given, settings, strategies as st

from smmudbg import refwalk
from walkkit import GIPA, GPA, GSZ, STE, CD, Kit

GRANS = [4096, 16384, 65536]
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _ranges(draw, gran, limit, n):
    """n disjoint granule-aligned ranges below limit: [(start, npages)]."""
    starts = draw(st.lists(st.integers(0, limit // gran - 64), min_size=1, max_size=n,
                           unique=True))
    out, taken = [], []
    for s in sorted(starts):
        npages = draw(st.integers(1, 40))
        lo, hi = s * gran, (s + npages) * gran
        if any(lo < b and a < hi for a, b in taken):
            continue
        taken.append((lo, hi))
        out.append((lo, npages))
    return out


@st.composite
def stage1_case(draw):
    gran = draw(st.sampled_from(GRANS))
    vabits = draw(st.sampled_from([39, 42, 48] if gran != 16384 else [40, 47, 48]))
    maps = _ranges(draw, gran, 1 << vabits, 6)
    perms = [draw(st.sampled_from(["rw", "r", "rwx", "rx"])) for _ in maps]
    probes = draw(st.lists(st.integers(0, (1 << vabits) - 1), min_size=5, max_size=20))
    return gran, vabits, maps, perms, probes


@SETTINGS
@given(stage1_case(), st.randoms(use_true_random=False))
def test_stage1_translates_exactly_the_mapping(case, rnd):
    gran, vabits, maps, perms, probes = case
    k = Kit()
    s1 = k.stage1(gran, vabits)
    model = {}
    out = 0x1_0000_0000
    for (va, npages), perm in zip(maps, perms):
        s1.map(va, out, npages * gran, write="w" in perm, exec_="x" in perm)
        for p in range(npages):
            model[va // gran + p] = (out + p * gran, perm)
        out += npages * gran + gran * rnd.randint(0, 3)
    cd = k.put_cd(k.cd_words(s1))
    k.put_ste(1, V=1, Config=5, S1ContextPtr=cd >> 6)
    # Probe inside every mapping as well as at random.
    addrs = probes + [va + rnd.randrange(npages * gran) for va, npages in maps]
    for a in addrs:
        r = k.walker.translate(1, a)
        if a // gran in model:
            pa, perm = model[a // gran]
            assert r["fault"] is None, (hex(a), r["fault"])
            assert r["pa"] == pa + a % gran
            assert r["perm"] == ("rw-" if "w" in perm else "r--")[:2] + ("x" if "x" in perm
                                                                         else "-")
        else:
            assert r["fault"]["type"] == "F_TRANSLATION" and not r["fault"]["s2"]


@SETTINGS
@given(st.sampled_from(GRANS), st.sampled_from(GRANS), st.integers(0, 2**32),
       st.lists(st.integers(0, (1 << 30) - 1), min_size=3, max_size=12))
def test_nested_equals_stage2_of_stage1_with_tables_fetched_through_stage2(g1, g2, seed,
                                                                          probes):
    rnd = random.Random(seed)
    k = Kit()
    s2 = k.stage2(g2, 40, guest_ram=False)
    # Stage 2: the guest's table area maps linearly (the kit writes tables through that
    # window); the area stage 1 points into maps page by page in shuffled order, so an output
    # that skipped stage 2 would land on the wrong PA (or on nothing).
    s2.map(GIPA, GPA, 0x200_0000)
    s2map = {(GIPA + o) // g2: GPA + o for o in range(0, 0x200_0000, g2)}
    gpages = 0x200_0000 // g2
    perm = list(range(gpages))
    rnd.shuffle(perm)
    for j in range(gpages):
        s2.map(GIPA + 0x200_0000 + j * g2, GPA + 0x200_0000 + perm[j] * g2, g2)
        s2map[(GIPA + 0x200_0000 + j * g2) // g2] = GPA + 0x200_0000 + perm[j] * g2
    s1 = k.stage1(g1, 30, nested=True)
    s1map = {}
    for n in range(8):
        va = rnd.randrange(0, (1 << 30) // g1 - 8) * g1
        ipa = GIPA + 0x0200_0000 + rnd.randrange(0, 0x0200_0000 // g1) * g1
        try:
            s1.map(va, ipa, g1)
        except ValueError:
            continue
        s1map[va // g1] = ipa
    cd = k.put_cd(k.cd_words(s1), nested=True)
    k.put_ste(1, V=1, Config=7, S1ContextPtr=cd >> 6, **k.ste_s2_fields())
    k.walker.configure(caching=False)
    for a in probes + [v * g1 + 8 for v in s1map]:
        r = k.walk(1, a)
        if a // g1 not in s1map:
            assert r["fault"]["type"] == "F_TRANSLATION" and r["fault"]["s2"] is False
            continue
        ipa = s1map[a // g1] + a % g1
        assert r["ipa"] == ipa
        assert r["pa"] == s2map[ipa // g2] + ipa % g2
        for i, s in enumerate(r["steps"]):
            if s["what"] == "S1":
                prev = r["steps"][i - 1]
                assert prev["what"] == "S2" and prev["purpose"] == "TT"
                dipa = s["desc_ipa"]
                assert s["desc_pa"] == s2map[dipa // g2] + dipa % g2


# ---- differential: Cython walker vs refwalk ---------------------------------------------------

FAULT_KEYS = ("type", "sid", "ssid", "ssv", "input_addr", "rnw", "ind", "pnu", "s2", "class",
              "ipa", "fetch_addr", "record")


def _fetches(steps):
    return [{"what": s["what"], "level": s["level"], "pa": s["desc_pa"]}
            for s in steps if s["desc_pa"] is not None and s["what"] != "TLB"]


def _compare(k, sid, addr, ssid, write, instr, priv, fetches=True):
    cy = k.walker.translate(sid, addr, ssid, write=write, instr=instr, priv=priv, trace=True)

    def read64(pa):
        try:
            return k.mem.read_u64(pa)
        except Exception:
            return None
    ref = refwalk.translate(read64, k.caps, k.strtab, sid, addr, ssid=ssid, write=write,
                            exec_=instr, priv=priv)
    where = f"sid={sid} addr={addr:#x} ssid={ssid} w={write} x={instr} p={priv}"
    assert (cy["fault"] is None) == (ref["fault"] is None), (where, cy["fault"], ref["fault"])
    if cy["fault"] is None:
        assert cy["pa"] == ref["pa"], where
        assert cy["perm"] == ref["perm"], where
    else:
        for key in FAULT_KEYS:
            assert cy["fault"][key] == ref["fault"][key], (where, key, cy["fault"], ref["fault"])
    if fetches:                     # (an IOTLB hit fetches nothing; refwalk has no caches)
        assert _fetches(cy["steps"]) == ref["fetches"], where


# Fields mutated at random to reach the legality checks and odd geometries.
STE_MUT = {"Config": range(8), "S1DSS": range(4), "S1CDMax": [0, 1, 2, 9], "S1Fmt": range(4),
           "S2T0SZ": [16, 20, 24, 25, 30, 33, 40], "S2SL0": range(4), "S2TG": range(4),
           "S2PS": range(8), "S2AFFD": [0, 1], "S2R": [0, 1], "S2AA64": [0, 1],
           "STRW": range(4), "S2VMID": [1, 0x100]}
CD_MUT = {"T0SZ": [12, 16, 25, 30, 40], "TG0": range(4), "IPS": range(8), "EPD0": [0, 1],
          "EPD1": [0, 1], "TBI0": [0, 1], "AFFD": [0, 1], "R": [0, 1], "A": [0, 1],
          "PAN": [0, 1], "WXN": [0, 1], "V": [0, 1, 1, 1], "T1SZ": [16, 25], "TG1": range(4)}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32), st.sampled_from(GRANS), st.sampled_from(GRANS), st.booleans())
def test_cython_walker_agrees_with_reference(seed, g1, g2, caching):
    rnd = random.Random(seed)
    k = Kit(caps={"SSIDSIZE": 4})
    s2 = k.stage2(g2, 40)
    s1 = k.stage1(g1, 39 if g1 == 4096 else 42 if g1 == 65536 else 40, nested=True)
    for _ in range(6):
        va = rnd.randrange(0, 1 << 30) & ~(g1 - 1)
        ipa = GIPA + 0x200_0000 + (rnd.randrange(0, 0x200_0000) & ~(g1 - 1))
        try:
            s1.map(va, ipa, g1, write=rnd.random() < 0.7, exec_=rnd.random() < 0.3,
                   user=rnd.random() < 0.8, af=rnd.random() < 0.9)
        except ValueError:
            pass
    if rnd.random() < 0.3:                      # hole in stage 2 under some guest page
        s2.unmap(GIPA + (rnd.randrange(0, GSZ) & ~0xFFFF & ~(g2 - 1)), g2)
    cdw = k.cd_words(s1)
    for _ in range(rnd.randint(0, 3)):
        f = rnd.choice(list(CD_MUT))
        cdw = CD.encode(cdw, **{f: rnd.choice(list(CD_MUT[f]))})
    cd = k.put_cd(cdw, nested=True)
    fields = dict(V=1, Config=7, S1ContextPtr=cd >> 6, **k.ste_s2_fields())
    for _ in range(rnd.randint(0, 3)):
        f = rnd.choice(list(STE_MUT))
        fields[f] = rnd.choice(list(STE_MUT[f]))
    k.put_ste(1, **fields)
    # With caching, each transaction runs twice: the second may hit the config caches and the
    # IOTLB, and must still equal refwalk (which has no caches).
    k.walker.configure(caching=caching)
    vas = [rnd.randrange(0, 1 << 30) for _ in range(4)]
    for _ in range(8):
        a = rnd.choice(vas + [0, 1 << 40, rnd.randrange(0, 1 << 64)])
        ssid = rnd.choice([None, None, 0, 1, 7, 20])
        access = rnd.choice([(False, False), (True, False), (False, True)])
        sid, priv = rnd.choice([1, 1, 1, 2, 300]), rnd.random() < 0.5
        for _ in range(2 if caching else 1):
            _compare(k, sid, a, ssid, access[0], access[1], priv, fetches=not caching)


# ---- differential with HTTU (IHI 0070 3.13) and the IOTLB -------------------------------------

DBM, AP2, S2AP_W, AF = 1 << 51, 1 << 7, 1 << 7, 1 << 10


def _flip(k, builder, va, nested_s1, set_bits=0, clear_bits=0):
    """Edit the leaf that maps va in a builder's tables (a guest table sits at an IPA)."""
    hit = builder.lookup(va)
    if hit is None:
        return
    _, daddr, d = hit
    pa = k.ipa_pa(daddr) if nested_s1 else daddr
    k.mem.write_u64(pa, (d | set_bits) & ~clear_bits)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32), st.sampled_from(GRANS), st.sampled_from(GRANS),
       st.sampled_from([0, 1, 2]), st.booleans())
def test_walker_agrees_with_reference_on_httu_and_with_caching(seed, g1, g2, httu, caching):
    """HA/HD/DBM at both stages (CD.HA/HD, STE.S2HA/S2HD, IDR0.HTTU) on random leaves: AF=0,
    read-only (AP[2]=1 / S2AP[1]=0) with or without DBM. With caching=True every address is
    translated twice, so the second may come from the IOTLB, and both must equal refwalk."""
    rnd = random.Random(seed)
    k = Kit(caps={"SSIDSIZE": 4, "HTTU": httu})
    s2 = k.stage2(g2, 40)
    s1 = k.stage1(g1, 39 if g1 == 4096 else 42 if g1 == 65536 else 40, nested=True)
    vas = []
    for _ in range(6):
        va = rnd.randrange(0, 1 << 30) & ~(g1 - 1)
        ipa = GIPA + 0x200_0000 + (rnd.randrange(0, 0x200_0000) & ~(g1 - 1))
        try:
            s1.map(va, ipa, g1, write=rnd.random() < 0.5, exec_=rnd.random() < 0.3,
                   user=rnd.random() < 0.8, af=rnd.random() < 0.6)
        except ValueError:
            continue
        vas.append(va)
        if rnd.random() < 0.6:
            _flip(k, s1, va, True, set_bits=DBM)
        # The stage-2 leaf under this page: sometimes read-only, DBM, or AF=0.
        r = rnd.random()
        if r < 0.25:
            _flip(k, s2, ipa, False, set_bits=DBM, clear_bits=S2AP_W)
        elif r < 0.4:
            _flip(k, s2, ipa, False, clear_bits=S2AP_W)
        elif r < 0.5:
            _flip(k, s2, ipa, False, clear_bits=AF)
    ha, hd = rnd.choice([(0, 0), (1, 0), (1, 1), (0, 1)])
    cd = k.put_cd(k.cd_words(s1, HA=ha if httu or rnd.random() < 0.2 else 0,
                             HD=hd if httu == 2 or rnd.random() < 0.2 else 0,
                             WXN=int(rnd.random() < 0.3)), nested=True)
    s2ha, s2hd = rnd.choice([(0, 0), (1, 0), (1, 1), (0, 1)])
    k.put_ste(1, V=1, Config=7, S1ContextPtr=cd >> 6, **k.ste_s2_fields(),
              S2HA=s2ha if httu or rnd.random() < 0.2 else 0,
              S2HD=s2hd if httu == 2 or rnd.random() < 0.2 else 0)
    k.walker.configure(caching=caching)
    for _ in range(10):
        a = rnd.choice(vas) + rnd.randrange(0, g1) if vas else rnd.randrange(0, 1 << 30)
        access = rnd.choice([(False, False), (True, False), (True, False), (False, True)])
        priv = rnd.random() < 0.5
        for _ in range(2 if caching else 1):
            _compare(k, 1, a, None, access[0], access[1], priv, fetches=not caching)
