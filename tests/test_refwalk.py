"""Focused tests of the reference walker (smmudbg/refwalk.py) on small hand-built tables.

STEs and CDs are encoded through the field table (the only source of their bit positions);
translation table descriptors are written by hand from the VMSAv8-64 descriptor format
(Arm ARM D8.3) so that the walker's descriptor decoding is checked against an independent
encoding. Every expected value is derived by hand in a comment from the architecture:
granule shift g (12/14/16), stride = g - 3, shift(L) = g + (3 - L) * stride,
index(L) = (addr >> shift(L)) masked to stride bits (to the remaining bits at the start level).
"""
from smmudbg.arch.fieldtable import fmt
from smmudbg.refwalk import translate

# ---------------------------------------------------------------------------------------------
# Hand-written VMSAv8-64 descriptor bits (Arm ARM D8.3).
BLOCK = 0b01             # valid block (levels 1-2)
TABLE = 0b11             # valid table (levels 0-2)
PAGE = 0b11              # valid page (level 3)
AF = 1 << 10


def AP(v):               # stage 1 AP[2:1] in bits [7:6]: 00 EL1 RW, 01 RW any, 10 EL1 RO, 11 RO
    return v << 6


def S2AP(v):             # stage 2 S2AP in bits [7:6]: bit 6 read, bit 7 write
    return v << 6


def S2XN(v):             # stage 2 XN[1:0] in bits [54:53]
    return v << 53


PXN = 1 << 53
UXN = 1 << 54
DBM = 1 << 51
PXN_TABLE = 1 << 59
UXN_TABLE = 1 << 60


def AP_TABLE(v):         # APTable in bits [62:61]: bit 61 no EL0, bit 62 no write
    return v << 61


S1_RW = PAGE | AF | AP(0b01) | PXN | UXN      # RW at EL1 and EL0, never executable
S2_RW = PAGE | AF | S2AP(0b11) | S2XN(0b10)   # read/write, no execute

CAPS = dict(S1P=1, S2P=1, TTF=2, CD2L=1, VMID16=1, ASID16=1, HYP=1, HTTU=0, STALL_MODEL=0,
            TERM_MODEL=0, TTENDIAN=2, SSIDSIZE=8, SIDSIZE=16, OAS=5, GRAN4K=1, GRAN16K=1,
            GRAN64K=1, HAD=1, XNX=1, STT=0)

STE = fmt("STE")
CD = fmt("CD")

STRTAB_BASE = 0x10000
CD_PA = 0x20000
S1_TABLES = 0x100000
S2_TABLES = 0x1000000


def shift(g, level):
    return g + (3 - level) * (g - 3)


class Mem:
    """Physical memory as a dict of 64-bit words; a missing word aborts the read."""

    def __init__(self):
        self.words = {}

    def w64(self, pa, value):
        assert pa % 8 == 0
        self.words[pa] = value

    def read64(self, pa):
        return self.words.get(pa)

    def write_struct(self, pa, words):
        for i, w in enumerate(words):
            self.w64(pa + 8 * i, w)


class Alloc:
    """Bump allocator of naturally aligned table pages."""

    def __init__(self, start):
        self.next = start

    def __call__(self, size):
        addr = (self.next + size - 1) & ~(size - 1)
        self.next = addr + size
        return addr


class Tables:
    """A VMSAv8-64 translation table tree built by hand.

    Table addresses live in the table's own address space (a PA, or an IPA for a nested stage 1);
    place(addr) gives the PA at which the word at that address is stored.
    """

    def __init__(self, mem, g, in_bits, start, alloc, place=lambda a: a):
        self.mem, self.g, self.in_bits, self.start = mem, g, in_bits, start
        self.raw_alloc, self.place = alloc, place
        root_bytes = 8 << (in_bits - shift(g, start))
        self.root = self.alloc(max(root_bytes, 1 << g))

    def alloc(self, size):
        """A new table, zero-filled (all entries invalid) so that its reads do not abort."""
        table = self.raw_alloc(size)
        for offset in range(0, size, 8):
            self.mem.w64(self.place(table + offset), 0)
        return table

    def index(self, addr, level):
        width = self.in_bits - shift(self.g, level) if level == self.start else self.g - 3
        return (addr >> shift(self.g, level)) & ((1 << width) - 1)

    def slot(self, addr, level):
        """Address of the descriptor for addr at level (creating the tables above it)."""
        table = self.root
        for lvl in range(self.start, level):
            slot = table + self.index(addr, lvl) * 8
            word = self.mem.words.get(self.place(slot), 0)
            if not word & 1:
                new = self.alloc(1 << self.g)
                self.mem.w64(self.place(slot), new | TABLE)
                table = new
            else:
                table = word & 0x0000FFFFFFFFF000 & ~((1 << self.g) - 1)
        return table + self.index(addr, level) * 8

    def map(self, addr, leaf, level=3):
        slot = self.slot(addr, level)
        self.mem.w64(self.place(slot), leaf)
        return slot


class World:
    def __init__(self, **caps):
        self.mem = Mem()
        self.caps = dict(CAPS, **caps)
        self.strtab = {"base": STRTAB_BASE, "fmt": 0, "split": 6, "log2size": 8}

    def ste(self, sid, **fields):
        words = STE.encode(V=1, **fields)
        self.mem.write_struct(STRTAB_BASE + sid * 64, words)
        return words

    def cd(self, pa, **fields):
        self.mem.write_struct(pa, CD.encode(**fields))

    def tr(self, sid, addr, **kw):
        return translate(self.mem.read64, self.caps, self.strtab, sid, addr, **kw)


def cd_fields(ttb0, **over):
    f = dict(V=1, AA64=1, A=1, R=1, T0SZ=16, TG0=0, IPS=5, EPD1=1, TTB0=ttb0 >> 4, ASID=1)
    f.update(over)
    return f


def s2_fields(ttb, t0sz=16, sl0=2, tg=0, **over):
    f = dict(S2T0SZ=t0sz, S2SL0=sl0, S2TG=tg, S2PS=5, S2AA64=1, S2R=1, S2TTB=ttb >> 4)
    f.update(over)
    return f


def s1_world(t0sz=16, tg0=0, g=12, start=0, **cd_over):
    """A stage-1-only STE (SID 1) whose CD (at CD_PA) points at a fresh table tree."""
    w = World()
    pt = Tables(w.mem, g, 64 - t0sz, start, Alloc(S1_TABLES))
    w.ste(1, Config=0b101, S1ContextPtr=CD_PA >> 6)
    w.cd(CD_PA, **cd_fields(pt.root, T0SZ=t0sz, TG0=tg0, **cd_over))
    return w, pt


def kinds(fetches):
    return [(f["what"], f["level"]) for f in fetches]


def fault_type(res):
    return res["fault"]["type"] if res["fault"] else None


# =============================================================================================
# Stream table
def test_linear_stream_table_bypass():
    # Linear: STE at base + SID*64 = 0x10000 + 5*64 = 0x10140. Config=0b100 bypass: PA = input.
    w = World()
    w.ste(5, Config=0b100)
    res = w.tr(5, 0x1234_5678, write=True)
    assert res["pa"] == 0x1234_5678 and res["perm"] == "rwx" and res["fault"] is None
    assert res["fetches"] == [{"what": "STE", "level": None, "pa": 0x10140}]


def test_two_level_stream_table():
    # FMT=1, SPLIT=6: SID 0x85 = 133 -> L1 index 133 >> 6 = 2 -> L1STD at 0x30000 + 2*8 = 0x30010.
    # L1STD Span=7 -> 2^6 = 64 STEs at L2Ptr 0x40000; L2 index 133 & 63 = 5 -> STE 0x40140.
    w = World()
    w.strtab = {"base": 0x30000, "fmt": 1, "split": 6, "log2size": 10}
    w.mem.w64(0x30010, 0x40000 | 7)
    w.mem.write_struct(0x40000 + 5 * 64, STE.encode(V=1, Config=0b100))
    res = w.tr(0x85, 0xABC)
    assert res["pa"] == 0xABC
    assert res["fetches"] == [{"what": "L1STD", "level": None, "pa": 0x30010},
                              {"what": "STE", "level": None, "pa": 0x40140}]

    # Span=4 -> 8 STEs; L2 index 5 < 8 is fine, SID 0x89 has L2 index 9 >= 8: C_BAD_STREAMID.
    w.mem.w64(0x30010, 0x40000 | 4)
    assert w.tr(0x85, 0)["fault"] is None
    res = w.tr(0x89, 0)
    assert fault_type(res) == "C_BAD_STREAMID" and res["fault"]["record"]
    assert kinds(res["fetches"]) == [("L1STD", None)]

    # Span=0: invalid. Span=8 > SPLIT+1 = 7: invalid (IHI 0070 7.3.3 case 2c).
    for span in (0, 8, 12):
        w.mem.w64(0x30010, 0x40000 | span)
        assert fault_type(w.tr(0x85, 0)) == "C_BAD_STREAMID"

    # SID >= 2^min(LOG2SIZE=10, SIDSIZE=16) = 1024: C_BAD_STREAMID before any fetch.
    res = w.tr(1024, 0)
    assert fault_type(res) == "C_BAD_STREAMID" and res["fetches"] == []

    # Unbacked L1STD (SID 0x100 -> L1 index 4 -> 0x30020): F_STE_FETCH at that address.
    res = w.tr(0x100, 0)
    assert fault_type(res) == "F_STE_FETCH" and res["fault"]["fetch_addr"] == 0x30020


def test_sidsize_limits_stream_ids_and_ste_fetch_abort():
    # SIDSIZE=4: SID 16 >= 2^min(8, 4) -> C_BAD_STREAMID.
    w = World(SIDSIZE=4)
    assert fault_type(w.tr(16, 0)) == "C_BAD_STREAMID"
    # SID 3 has no STE in memory: F_STE_FETCH with FetchAddr = 0x10000 + 3*64.
    res = w.tr(3, 0)
    assert fault_type(res) == "F_STE_FETCH" and res["fault"]["fetch_addr"] == 0x100C0
    assert res["fault"]["class"] is None and res["fault"]["record"]


# =============================================================================================
# STE configuration
def test_config_abort_is_silent():
    w = World()
    for config in (0b000, 0b001, 0b010, 0b011):
        w.ste(2, Config=config)
        res = w.tr(2, 0x1000)
        assert res["pa"] is None and res["perm"] == "---"
        assert fault_type(res) == "ABORT" and res["fault"]["record"] is False


def test_bad_ste_cases():
    w = World(SSIDSIZE=4)
    w.mem.write_struct(STRTAB_BASE + 64, STE.encode(V=0, Config=0b100))
    assert fault_type(w.tr(1, 0)) == "C_BAD_STE"

    ok = s2_fields(S2_TABLES)                 # 4K, S2T0SZ=16 (48 bits), SL0=2 -> level 0
    w.ste(1, Config=0b110, **ok)
    assert fault_type(w.tr(1, 0)) != "C_BAD_STE"

    w.ste(1, Config=0b110, **dict(ok, S2TG=3))            # reserved granule
    assert fault_type(w.tr(1, 0)) == "C_BAD_STE"

    # 4K, S2T0SZ=24 (IAS 40) with SL0=0 (start level 2): levels 1, min = 9+12+1 = 22,
    # max = 22 + 8 + 4 = 34 < 40: inconsistent.
    w.ste(1, Config=0b110, **dict(ok, S2T0SZ=24, S2SL0=0))
    assert fault_type(w.tr(1, 0)) == "C_BAD_STE"

    # S2SL0=3 with a 64K granule is reserved.
    w.ste(1, Config=0b110, **dict(ok, S2TG=1, S2SL0=3))
    assert fault_type(w.tr(1, 0)) == "C_BAD_STE"

    # S1CDMax=5 > SSIDSIZE=4.
    w.ste(1, Config=0b101, S1ContextPtr=CD_PA >> 6, S1CDMax=5)
    assert fault_type(w.tr(1, 0)) == "C_BAD_STE"
    w.ste(1, Config=0b101, S1ContextPtr=CD_PA >> 6, S1CDMax=4)
    assert fault_type(w.tr(1, 0)) != "C_BAD_STE"

    # Stage 2 on an SMMU without stage 2.
    w2 = World(S2P=0)
    w2.ste(1, Config=0b110, **ok)
    assert fault_type(w2.tr(1, 0)) == "C_BAD_STE"

    # S2TTB beyond the effective PS: S2PS=0 (32 bits), S2TTB = 2^32. (S2T0SZ=32: IAS 32 with
    # SL0=1 -> start level 1: min 31, max 43.)
    w.ste(1, Config=0b110, **s2_fields(1 << 32, t0sz=32, sl0=1, S2PS=0))
    assert fault_type(w.tr(1, 0)) == "C_BAD_STE"


def test_s1cdmax_ignored_without_substreams():
    # IHI 0070 5.2 S1CDMax: IGNORED when IDR1.SSIDSIZE == 0 (SteIllegal checks it only when
    # SSIDSIZE != 0), so S1CDMax=3 is not ILLEGAL and the stream has a single CD.
    w, pt = s1_world()
    w.caps["SSIDSIZE"] = 0
    w.ste(1, Config=0b101, S1ContextPtr=CD_PA >> 6, S1CDMax=3)
    pt.map(0x1000, 0x7000 | S1_RW)
    assert w.tr(1, 0x1000)["pa"] == 0x7000
    assert fault_type(w.tr(1, 0x1000, ssid=1)) == "C_BAD_SUBSTREAMID"


def test_bypass_address_size():
    # Config=0b100 with an input >= 2^OAS (OAS=5: 48 bits): stage 1 F_ADDR_SIZE, CLASS=IN,
    # always recorded (IHI 0070 3.4).
    w = World()
    w.ste(1, Config=0b100)
    res = w.tr(1, 1 << 48, write=True)
    f = res["fault"]
    assert f["type"] == "F_ADDR_SIZE" and f["s2"] is False and f["class"] == "IN"
    assert f["record"] and f["rnw"] is False and f["input_addr"] == 1 << 48


def test_smmu_disabled():
    w = World()
    assert w.tr(0, 0x1234, smmuen=False)["pa"] == 0x1234
    res = w.tr(0, 0x1234, smmuen=False, gbpa_abort=True)
    assert fault_type(res) == "ABORT" and res["fault"]["record"] is False
    # IHI 0070 3.4: bypass with an input beyond the OAS is aborted without an event.
    res = w.tr(0, 1 << 48, smmuen=False)
    assert fault_type(res) == "ABORT" and res["fault"]["record"] is False


# =============================================================================================
# Context descriptors and substreams
def test_bad_cd_cases():
    w, pt = s1_world()
    pt.map(0x1000, 0x7000 | S1_RW)
    assert w.tr(1, 0x1000)["pa"] == 0x7000
    bad = [dict(V=0), dict(T0SZ=10), dict(TG0=3), dict(AA64=0),
           dict(TTB0=(1 << 40) >> 4, IPS=2),        # TTB0 = 2^40 >= 2^40 (IPS 40 bits)
           dict(EPD1=0, TG1=0)]                     # TG1=0 is reserved (TG1 encoding)
    for over in bad:
        w.cd(CD_PA, **cd_fields(pt.root, **over))
        res = w.tr(1, 0x1000)
        assert fault_type(res) == "C_BAD_CD", over
        assert kinds(res["fetches"]) == [("STE", None), ("CD", None)]
    # TERM_MODEL=1 requires CD.A=1.
    w.caps["TERM_MODEL"] = 1
    w.cd(CD_PA, **cd_fields(pt.root, A=0))
    assert fault_type(w.tr(1, 0x1000)) == "C_BAD_CD"


def test_cd_fetch_abort():
    w = World()
    w.ste(1, Config=0b101, S1ContextPtr=0x5550000 >> 6)
    res = w.tr(1, 0)
    assert fault_type(res) == "F_CD_FETCH" and res["fault"]["fetch_addr"] == 0x5550000


def test_substream_rules():
    w, pt = s1_world()
    pt.map(0x1000, 0x7000 | S1_RW)
    # S1CDMax=0: one CD; SSV=1 -> C_BAD_SUBSTREAMID.
    assert fault_type(w.tr(1, 0x1000, ssid=1)) == "C_BAD_SUBSTREAMID"

    # S1CDMax=2 (4 CDs) linear: SSID 3 -> CD at 0x20000 + 3*64 = 0x200C0; SSID 4 is out of range.
    w.ste(1, Config=0b101, S1ContextPtr=CD_PA >> 6, S1CDMax=2, S1DSS=0)
    w.cd(CD_PA + 3 * 64, **cd_fields(pt.root))
    res = w.tr(1, 0x1000, ssid=3)
    assert res["pa"] == 0x7000 and res["fetches"][1] == {"what": "CD", "level": None,
                                                        "pa": 0x200C0}
    res = w.tr(1, 0x1000, ssid=4)
    assert fault_type(res) == "C_BAD_SUBSTREAMID"
    assert res["fault"]["ssid"] == 4 and res["fault"]["ssv"] is True
    # No SubstreamID with S1DSS=terminate: F_STREAM_DISABLED.
    res = w.tr(1, 0x1000)
    assert fault_type(res) == "F_STREAM_DISABLED" and res["fault"]["ssv"] is False
    # S1DSS=bypass: stage 1 skipped, no CD fetched, output = input (stage 2 off).
    w.ste(1, Config=0b101, S1ContextPtr=CD_PA >> 6, S1CDMax=2, S1DSS=1)
    res = w.tr(1, 0x1000)
    assert res["pa"] == 0x1000 and res["perm"] == "rwx" and kinds(res["fetches"]) == [("STE", None)]
    # S1DSS=substream0: no SubstreamID uses CD 0; SSV with SSID 0 is F_STREAM_DISABLED
    # (IHI 0070 5.2 S1DSS=0b10, 7.3.7).
    w.ste(1, Config=0b101, S1ContextPtr=CD_PA >> 6, S1CDMax=2, S1DSS=2)
    res = w.tr(1, 0x1000)
    assert res["pa"] == 0x7000 and res["fetches"][1]["pa"] == CD_PA
    assert fault_type(w.tr(1, 0x1000, ssid=0)) == "F_STREAM_DISABLED"
    assert w.tr(1, 0x1000, ssid=3)["pa"] == 0x7000

    # Stage 1 disabled (stage 2 only) with a SubstreamID: C_BAD_SUBSTREAMID.
    w.ste(2, Config=0b110, **s2_fields(S2_TABLES))
    assert fault_type(w.tr(2, 0x1000, ssid=1)) == "C_BAD_SUBSTREAMID"


def test_two_level_cd_table():
    # S1Fmt=1 (4KB leaves of 64 CDs), S1CDMax=8. SSID 0x45 = 69: L1 index 69 >> 6 = 1 ->
    # L1CD at 0x20000 + 8; L2 index 69 & 63 = 5 -> CD at L2Ptr 0x50000 + 5*64 = 0x50140.
    w, pt = s1_world()
    pt.map(0x1000, 0x7000 | S1_RW)
    w.ste(1, Config=0b101, S1ContextPtr=CD_PA >> 6, S1CDMax=8, S1Fmt=1)
    w.mem.w64(CD_PA + 8, 0x50000 | 1)
    w.cd(0x50140, **cd_fields(pt.root))
    res = w.tr(1, 0x1000, ssid=0x45)
    assert res["pa"] == 0x7000
    assert res["fetches"][:3] == [{"what": "STE", "level": None, "pa": 0x10040},
                                  {"what": "L1CD", "level": None, "pa": 0x20008},
                                  {"what": "CD", "level": None, "pa": 0x50140}]
    # L1CD.V=0: C_BAD_SUBSTREAMID.
    w.mem.w64(CD_PA + 8, 0x50000)
    assert fault_type(w.tr(1, 0x1000, ssid=0x45)) == "C_BAD_SUBSTREAMID"


# =============================================================================================
# Stage 1 geometry
def test_s1_4k_four_levels():
    # 4K, T0SZ=16: 48-bit VA, start level 4 - ceil((48-12)/9) = 0. VA = 2^39 + 2^30 + 2^21 +
    # 2^12 + 0xABC has index 1 at every level (bits 39, 30, 21, 12). Tables are allocated at
    # 0x100000 (root), 0x101000, 0x102000, 0x103000, so descriptors are at table + 8.
    w, pt = s1_world()
    va = (1 << 39) | (1 << 30) | (1 << 21) | (1 << 12) | 0xABC
    pt.map(va, 0x5555_5000 | S1_RW)
    res = w.tr(1, va, priv=True)
    assert res["pa"] == 0x5555_5ABC and res["perm"] == "rw-"
    assert res["fetches"] == [
        {"what": "STE", "level": None, "pa": 0x10040},
        {"what": "CD", "level": None, "pa": CD_PA},
        {"what": "S1", "level": 0, "pa": 0x100008},
        {"what": "S1", "level": 1, "pa": 0x101008},
        {"what": "S1", "level": 2, "pa": 0x102008},
        {"what": "S1", "level": 3, "pa": 0x103008}]


def test_s1_4k_three_levels():
    # T0SZ=25: 39-bit VA, start level 4 - ceil(27/9) = 1. VA = 2^30 + 2^21 + 2^12 + 0x10.
    w, pt = s1_world(t0sz=25, start=1)
    va = (1 << 30) | (1 << 21) | (1 << 12) | 0x10
    pt.map(va, 0x9000 | S1_RW)
    res = w.tr(1, va)
    assert res["pa"] == 0x9010
    assert [f["pa"] for f in res["fetches"][2:]] == [0x100008, 0x101008, 0x102008]
    assert kinds(res["fetches"][2:]) == [("S1", 1), ("S1", 2), ("S1", 3)]
    # A VA at bit 39 is outside the 39-bit TTB0 range: F_TRANSLATION, CLASS=IN, no S1 fetch.
    res = w.tr(1, 1 << 39)
    assert fault_type(res) == "F_TRANSLATION" and res["fault"]["class"] == "IN"
    assert len(res["fetches"]) == 2


def test_s1_64k():
    # 64K (TG0=1), T0SZ=16: start level 4 - ceil((48-16)/13) = 1; L1 index VA[47:42] (6 bits,
    # root table 64 entries), L2 VA[41:29], L3 VA[28:16]. VA = 2^42 + 2^29 + 2^16 + 0x1234.
    # Tables at 0x100000 (root, 64K aligned), 0x110000, 0x120000.
    w, pt = s1_world(t0sz=16, tg0=1, g=16, start=1)
    va = (1 << 42) | (1 << 29) | (1 << 16) | 0x1234
    pt.map(va, 0x3_0000 | S1_RW)
    res = w.tr(1, va)
    assert res["pa"] == 0x3_1234
    assert [f["pa"] for f in res["fetches"][2:]] == [0x100008, 0x110008, 0x120008]
    # T0SZ=22 (42 bits): start level 4 - ceil(26/13) = 2.
    w, pt = s1_world(t0sz=22, tg0=1, g=16, start=2)
    va = (1 << 29) | (1 << 16) | 0x1234
    pt.map(va, 0x3_0000 | S1_RW)
    res = w.tr(1, va)
    assert res["pa"] == 0x3_1234 and kinds(res["fetches"][2:]) == [("S1", 2), ("S1", 3)]


def test_s1_16k():
    # 16K (TG0=2), T0SZ=17: 47 bits, start 4 - ceil(33/11) = 1; L1 VA[46:36], L2 VA[35:25],
    # L3 VA[24:14]. VA = 2^36 + 2^25 + 2^14 + 0x123; tables 0x100000, 0x104000, 0x108000.
    w, pt = s1_world(t0sz=17, tg0=2, g=14, start=1)
    va = (1 << 36) | (1 << 25) | (1 << 14) | 0x123
    pt.map(va, 0x8000 | S1_RW)
    res = w.tr(1, va)
    assert res["pa"] == 0x8123
    assert [f["pa"] for f in res["fetches"][2:]] == [0x100008, 0x104008, 0x108008]
    # T0SZ=16: 48 bits, start 4 - ceil(34/11) = 0 with a 2-entry level 0 (VA[47]).
    w, pt = s1_world(t0sz=16, tg0=2, g=14, start=0)
    va = (1 << 47) | (1 << 36) | (1 << 25) | (1 << 14) | 0x123
    pt.map(va, 0x8000 | S1_RW)
    res = w.tr(1, va)
    assert res["pa"] == 0x8123 and res["fetches"][2] == {"what": "S1", "level": 0,
                                                        "pa": 0x100008}


def test_ttb1_selection():
    # TTB1 with T1SZ=25 (39 bits) and TG1=2 (4K in the TG1 encoding): VA 0xFFFF_FF80_4020_1010
    # has bits [63:39] all ones -> TTB1; start level 1; indices VA[38:30] = 1, VA[29:21] = 1,
    # VA[20:12] = 1.
    w = World()
    pt0 = Tables(w.mem, 12, 48, 0, Alloc(S1_TABLES))
    pt1 = Tables(w.mem, 12, 39, 1, Alloc(0x200000))
    w.ste(1, Config=0b101, S1ContextPtr=CD_PA >> 6)
    w.cd(CD_PA, **cd_fields(pt0.root, EPD1=0, T1SZ=25, TG1=2, TTB1=pt1.root >> 4))
    va = 0xFFFF_FF80_4020_1010
    pt1.map(va, 0xC000 | S1_RW)
    res = w.tr(1, va)
    assert res["pa"] == 0xC010
    assert [f["pa"] for f in res["fetches"][2:]] == [0x200008, 0x201008, 0x202008]
    # 0xFFFF_0000_0000_0000: bit 55 selects TTB1 but bits [63:39] are not all ones.
    assert fault_type(w.tr(1, 0xFFFF_0000_0000_0000)) == "F_TRANSLATION"
    # With EPD1=1 the TTB1 region faults before any walk.
    w.cd(CD_PA, **cd_fields(pt0.root, EPD1=1, T1SZ=25, TG1=2, TTB1=pt1.root >> 4))
    res = w.tr(1, va)
    assert fault_type(res) == "F_TRANSLATION" and len(res["fetches"]) == 2


def test_tbi():
    # TBI0=1: VA[63:56] ignored; 0xAB00_0080_4020_1ABC translates as 0x80_4020_1ABC.
    w, pt = s1_world(TBI0=1)
    va = (1 << 39) | (1 << 30) | (1 << 21) | (1 << 12) | 0xABC
    pt.map(va, 0x5555_5000 | S1_RW)
    assert w.tr(1, 0xAB00_0000_0000_0000 | va)["pa"] == 0x5555_5ABC
    # Without TBI the top byte must be zero; the event keeps the full input address.
    w.cd(CD_PA, **cd_fields(pt.root, TBI0=0))
    res = w.tr(1, 0xAB00_0000_0000_0000 | va)
    assert fault_type(res) == "F_TRANSLATION"
    assert res["fault"]["input_addr"] == 0xAB00_0000_0000_0000 | va


def test_epd0():
    w, pt = s1_world(EPD0=1, EPD1=0, T1SZ=16, TG1=2, TTB1=0x300000 >> 4)
    pt.map(0x1000, 0x7000 | S1_RW)
    res = w.tr(1, 0x1000)
    assert fault_type(res) == "F_TRANSLATION" and res["fault"]["class"] == "IN"
    assert kinds(res["fetches"]) == [("STE", None), ("CD", None)]


def test_block_mappings():
    # 4K, 48-bit VA. Level 1 block (1GB): VA = 2^39 + 2^30 + 0x12345, OA 0x4000_0000
    # -> PA 0x4000_0000 + (VA & (2^30 - 1)) = 0x4001_2345.
    w, pt = s1_world()
    va1 = (1 << 39) | (1 << 30) | 0x12345
    pt.map(va1, 0x4000_0000 | BLOCK | AF | AP(0b01) | PXN | UXN, level=1)
    res = w.tr(1, va1)
    assert res["pa"] == 0x4001_2345 and kinds(res["fetches"][2:]) == [("S1", 0), ("S1", 1)]
    # Level 2 block (2MB): VA = 2^40 + 2^21 + 0x1_2345, OA 0x60_0000 -> PA 0x61_2345.
    va2 = (1 << 40) | (1 << 21) | 0x1_2345
    pt.map(va2, 0x60_0000 | BLOCK | AF | AP(0b01) | PXN | UXN, level=2)
    assert w.tr(1, va2)["pa"] == 0x61_2345
    # Block descriptors at level 0 (4K) and 0b01 at level 3 are invalid: F_TRANSLATION.
    va0 = 3 << 39
    pt.map(va0, 0x80_0000_0000 | BLOCK | AF, level=0)
    assert fault_type(w.tr(1, va0)) == "F_TRANSLATION"
    va3 = (1 << 39) | (2 << 30) | (2 << 21) | (7 << 12)     # not under the 1GB block above
    pt.map(va3, 0x7000 | BLOCK | AF, level=3)
    assert fault_type(w.tr(1, va3)) == "F_TRANSLATION"


def test_16k_level1_block_is_invalid():
    # Arm ARM AArch64.BlockDescSupported: 16K has blocks at level 2 only (level 1 needs DS).
    w, pt = s1_world(t0sz=17, tg0=2, g=14, start=1)
    va = 1 << 36
    pt.map(va, 0x10_0000_0000 | BLOCK | AF, level=1)
    assert fault_type(w.tr(1, va)) == "F_TRANSLATION"
    # A level 2 block (32MB): OA 0x200_0000 -> PA 0x200_0000 + (VA & (2^25 - 1)).
    va2 = (2 << 36) | (1 << 25) | 0x4567
    pt.map(va2, 0x200_0000 | BLOCK | AF | AP(0b01), level=2)
    assert w.tr(1, va2)["pa"] == 0x200_4567


# =============================================================================================
# Faults at stage 1
def test_access_flag():
    w, pt = s1_world()
    pt.map(0x1000, 0x7000 | PAGE | AP(0b01))   # AF=0
    res = w.tr(1, 0x1000)
    assert fault_type(res) == "F_ACCESS" and res["fault"]["s2"] is False
    assert res["fault"]["class"] == "IN" and res["fault"]["ipa"] is None
    w.cd(CD_PA, **cd_fields(pt.root, AFFD=1))
    assert w.tr(1, 0x1000)["pa"] == 0x7000


def test_stage1_permissions():
    w, pt = s1_world()
    ro = pt.map(0x1000, 0x7000 | PAGE | AF | AP(0b10) | PXN | UXN)        # EL1 read-only
    res = w.tr(1, 0x1000, write=True, priv=True)
    assert fault_type(res) == "F_PERMISSION" and res["fault"]["rnw"] is False
    res = w.tr(1, 0x1000, priv=True)
    assert res["pa"] == 0x7000 and res["perm"] == "r--"
    assert ro == 0x103008       # the descriptor for VA 0x1000: level 3 index 1

    pt.map(0x2000, 0x8000 | PAGE | AF | AP(0b00) | UXN)                    # EL1 only
    res = w.tr(1, 0x2000, priv=False)
    assert fault_type(res) == "F_PERMISSION" and res["fault"]["pnu"] is False
    assert w.tr(1, 0x2000, priv=True)["perm"] == "rwx"                     # PXN=0
    assert w.tr(1, 0x2000, priv=True, exec_=True)["pa"] == 0x8000

    # AP=01 (RW at EL0 too): EL0-writable memory is never privileged-executable.
    pt.map(0x3000, 0x9000 | PAGE | AF | AP(0b01))
    res = w.tr(1, 0x3000, priv=True, exec_=True)
    assert fault_type(res) == "F_PERMISSION" and res["fault"]["ind"] is True
    assert w.tr(1, 0x3000, priv=False)["perm"] == "rwx"

    # UXN forbids unprivileged execution, PXN privileged execution.
    pt.map(0x4000, 0xA000 | PAGE | AF | AP(0b11) | UXN)
    assert fault_type(w.tr(1, 0x4000, exec_=True)) == "F_PERMISSION"
    assert w.tr(1, 0x4000, exec_=True, priv=True)["perm"] == "r-x"
    pt.map(0x5000, 0xB000 | PAGE | AF | AP(0b11) | PXN)
    assert fault_type(w.tr(1, 0x5000, exec_=True, priv=True)) == "F_PERMISSION"
    assert w.tr(1, 0x5000, exec_=True)["perm"] == "r-x"

    # CD.R=0: the stage 1 fault is not recorded (the transaction still terminates).
    w.cd(CD_PA, **cd_fields(pt.root, R=0))
    res = w.tr(1, 0x1000, write=True, priv=True)
    assert fault_type(res) == "F_PERMISSION" and res["fault"]["record"] is False


def test_table_attributes_and_had():
    # APTable=0b10 (no write) on the level 2 table descriptor makes the page read-only.
    w, pt = s1_world()
    pt.map(0x1000, 0x7000 | S1_RW)
    l2 = pt.slot(0x1000, 2)
    w.mem.w64(l2, w.mem.words[l2] | AP_TABLE(0b10))
    assert w.tr(1, 0x1000, priv=True)["perm"] == "r--"
    assert fault_type(w.tr(1, 0x1000, write=True, priv=True)) == "F_PERMISSION"
    # HAD0=1 (with IDR3.HAD) disables the hierarchical attributes.
    w.cd(CD_PA, **cd_fields(pt.root, HAD0=1))
    assert w.tr(1, 0x1000, priv=True)["perm"] == "rw-"


def test_stage1_addr_size():
    # IPS=0 (32 bits): a page at OA 2^32 faults with a stage 1 F_ADDR_SIZE, CLASS=IN.
    w, pt = s1_world(IPS=0)
    pt.map(0x1000, (1 << 32) | S1_RW)
    res = w.tr(1, 0x1000)
    assert fault_type(res) == "F_ADDR_SIZE" and res["fault"]["class"] == "IN"
    assert res["fault"]["s2"] is False
    # A table descriptor pointing at 2^33 faults after its own fetch (level 0, index 1).
    va = 1 << 39
    w.mem.w64(pt.root + 8, (1 << 33) | TABLE)
    res = w.tr(1, va)
    assert fault_type(res) == "F_ADDR_SIZE"
    assert res["fetches"][-1] == {"what": "S1", "level": 0, "pa": pt.root + 8}


def test_stage1_walk_external_abort():
    # The level 0 descriptor points at an unbacked table at 0x7770000: the level 1 fetch of
    # VA 2^39 + 5*2^30 (index 5) at 0x7770000 + 40 aborts: F_WALK_EABT, S2=0, CLASS=TT.
    w, pt = s1_world()
    w.mem.w64(pt.root + 8, 0x777_0000 | TABLE)
    res = w.tr(1, (1 << 39) | (5 << 30))
    f = res["fault"]
    assert f["type"] == "F_WALK_EABT" and f["s2"] is False and f["class"] == "TT"
    assert f["fetch_addr"] == 0x777_0028 and f["record"] and f["ipa"] is None
    assert res["fetches"][-1] == {"what": "S1", "level": 1, "pa": 0x777_0028}


def test_stall_is_always_recorded():
    # IHI 0070 5.5: R only suppresses the record when S == 0 (STALL_MODEL=0 allows S=1).
    w, pt = s1_world(R=0, S=1)
    res = w.tr(1, 0x1000)
    assert fault_type(res) == "F_TRANSLATION"
    assert res["fault"]["stall"] is True and res["fault"]["record"] is True


def test_el2_stream_world():
    # STRW=EL2 (with IDR0.HYP): single VA range, all accesses privileged, bit 54 is XN and
    # PXN (bit 53) is not used; EPD0 is IGNORED.
    w, pt = s1_world(EPD0=1)
    w.ste(1, Config=0b101, S1ContextPtr=CD_PA >> 6, STRW=2)
    pt.map(0x1000, 0x7000 | PAGE | AF | AP(0b00) | PXN)
    res = w.tr(1, 0x1000, priv=False, exec_=True)
    assert res["pa"] == 0x7000 and res["perm"] == "rwx"
    pt.map(0x2000, 0x8000 | PAGE | AF | AP(0b00) | UXN)
    assert fault_type(w.tr(1, 0x2000, priv=True, exec_=True)) == "F_PERMISSION"


# =============================================================================================
# Stage 2
def test_stage2_only():
    # 4K, S2T0SZ=16, SL0=2 -> start level 0 (OAS 48 >= 44). IPA 0x1234_5000 -> PA 0x9_8765_4000.
    w = World()
    s2 = Tables(w.mem, 12, 48, 0, Alloc(S2_TABLES))
    w.ste(1, Config=0b110, **s2_fields(s2.root))
    s2.map(0x1234_5000, 0x9_8765_4000 | S2_RW)
    res = w.tr(1, 0x1234_5678, write=True)
    assert res["pa"] == 0x9_8765_4678 and res["perm"] == "rw-"
    assert kinds(res["fetches"]) == [("STE", None), ("S2", 0), ("S2", 1), ("S2", 2), ("S2", 3)]
    # An input >= 2^IAS (= OAS, 48 bits): stage 1 F_ADDR_SIZE (S2=0), CLASS=IN (IHI 0070 3.4).
    res = w.tr(1, 1 << 48)
    assert fault_type(res) == "F_ADDR_SIZE" and res["fault"]["s2"] is False
    # Unmapped IPA: stage 2 F_TRANSLATION with IPA = the input.
    res = w.tr(1, 0x5000)
    f = res["fault"]
    assert f["type"] == "F_TRANSLATION" and f["s2"] and f["class"] == "IN" and f["ipa"] == 0x5000


def test_concatenated_stage2_root():
    # 4K, S2T0SZ=24 -> IAS 40; SL0=1 -> start level 1: levels 2, min 31, max 43. Level 1
    # resolves IPA[39:30], 10 bits = two concatenated 512-entry tables (8KB, S2TTB 8KB aligned).
    # IPA = 2^39 + 2^21 + 2^12 + 0x10: root index 512 -> S2TTB + 512*8 = S2TTB + 0x1000, the
    # first entry of the second table. Level 2 index 1, level 3 index 1.
    w = World()
    s2 = Tables(w.mem, 12, 40, 1, Alloc(S2_TABLES))
    assert s2.root == S2_TABLES
    w.ste(1, Config=0b110, **s2_fields(s2.root, t0sz=24, sl0=1))
    ipa = (1 << 39) | (1 << 21) | (1 << 12) | 0x10
    s2.map(ipa, 0xA000 | S2_RW)
    res = w.tr(1, ipa)
    assert res["pa"] == 0xA010
    assert res["fetches"][1] == {"what": "S2", "level": 1, "pa": S2_TABLES + 0x1000}
    assert kinds(res["fetches"][1:]) == [("S2", 1), ("S2", 2), ("S2", 3)]
    # IPA 2^40 is beyond IAS2: stage 2 F_TRANSLATION (it is within the 48-bit IAS).
    res = w.tr(1, 1 << 40)
    assert fault_type(res) == "F_TRANSLATION" and res["fault"]["s2"]
    assert len(res["fetches"]) == 1


def test_stage2_access_flag_permission_and_xn():
    w = World()
    s2 = Tables(w.mem, 12, 48, 0, Alloc(S2_TABLES))
    w.ste(1, Config=0b110, **s2_fields(s2.root))
    s2.map(0x1000, 0x7000 | PAGE | S2AP(0b11))                        # AF=0
    res = w.tr(1, 0x1000)
    assert fault_type(res) == "F_ACCESS" and res["fault"]["s2"] and res["fault"]["ipa"] == 0x1000
    w.ste(1, Config=0b110, **s2_fields(s2.root, S2AFFD=1))
    assert w.tr(1, 0x1000)["pa"] == 0x7000

    s2.map(0x2000, 0x8000 | PAGE | AF | S2AP(0b01) | S2XN(0b10))     # read-only
    res = w.tr(1, 0x2000, write=True)
    f = res["fault"]
    assert f["type"] == "F_PERMISSION" and f["s2"] and f["class"] == "IN" and f["ipa"] == 0x2000
    assert w.tr(1, 0x2000)["perm"] == "r--"
    # S2R=0: not recorded.
    w.ste(1, Config=0b110, **s2_fields(s2.root, S2AFFD=1, S2R=0))
    assert w.tr(1, 0x2000, write=True)["fault"]["record"] is False

    # XNX: XN=0b01 forbids privileged execution only, 0b11 unprivileged only.
    s2.map(0x3000, 0x9000 | PAGE | AF | S2AP(0b01) | S2XN(0b01))
    assert fault_type(w.tr(1, 0x3000, exec_=True, priv=True)) == "F_PERMISSION"
    assert w.tr(1, 0x3000, exec_=True, priv=False)["perm"] == "r-x"
    s2.map(0x4000, 0xA000 | PAGE | AF | S2AP(0b00) | S2XN(0b11))     # execute-only for EL1
    assert w.tr(1, 0x4000, exec_=True, priv=True)["perm"] == "--x"
    assert fault_type(w.tr(1, 0x4000, exec_=True, priv=False)) == "F_PERMISSION"
    assert fault_type(w.tr(1, 0x4000, priv=True)) == "F_PERMISSION"


# =============================================================================================
# Nested
IPA_TO_PA = 0x1_0000_0000        # the test's stage 2 maps IPA x to PA x + 4GB
S1_IPA_TABLES = 0x4000_0000
CD_IPA = 0x3000_0000


def nested_world(s1_t0sz=16, s2_map_tables=True, **cd_over):
    """STE SID 1 nested: 4K stage 2 (48-bit IPA, level 0 start) mapping IPA -> IPA + 4GB for
    the CD and stage 1 table pages; 4K stage 1 (start level 0) with tables in IPA space."""
    w = World()
    s2 = Tables(w.mem, 12, 48, 0, Alloc(S2_TABLES))
    w.ste(1, Config=0b111, S1ContextPtr=CD_IPA >> 6, **s2_fields(s2.root))

    def place(ipa):
        return ipa + IPA_TO_PA

    alloc_ipa = Alloc(S1_IPA_TABLES)

    def s1_alloc(size):
        ipa = alloc_ipa(size)
        if s2_map_tables:
            s2.map(ipa, place(ipa) | S2_RW)
        return ipa

    s2.map(CD_IPA, place(CD_IPA) | S2_RW)
    s1 = Tables(w.mem, 12, 64 - s1_t0sz, 0, s1_alloc, place)
    w.mem.write_struct(place(CD_IPA), CD.encode(**cd_fields(s1.root, T0SZ=s1_t0sz, **cd_over)))
    return w, s1, s2


def test_nested_fetch_count():
    # 4-level stage 1 over a 4-level stage 2: STE, the CD's stage 2 walk (4) and the CD, then
    # for each of the 4 stage 1 levels a 4-level stage 2 walk of the descriptor IPA followed by
    # the descriptor fetch (4 * 5 = 20), then a final 4-level stage 2 walk of the output IPA:
    # 1 + 4 + 1 + 20 + 4 = 30 fetches, 24 of them page-table fetches after the CD.
    w, s1, s2 = nested_world()
    va = (1 << 39) | (1 << 30) | (1 << 21) | (1 << 12) | 0x42
    s1.map(va, 0x7000_0000 | S1_RW)
    s2.map(0x7000_0000, 0x2_0000_0000 | S2_RW)
    res = w.tr(1, va, priv=True)
    assert res["fault"] is None and res["pa"] == 0x2_0000_0042
    f = res["fetches"]
    assert len(f) == 30
    s2_walk = [("S2", 0), ("S2", 1), ("S2", 2), ("S2", 3)]
    expected = [("STE", None)] + s2_walk + [("CD", None)]
    for level in range(4):
        expected += s2_walk + [("S1", level)]
    expected += s2_walk
    assert kinds(f) == expected
    # The CD is read at the PA of its IPA; the stage 1 root descriptor (index 1) likewise.
    assert f[5] == {"what": "CD", "level": None, "pa": CD_IPA + IPA_TO_PA}
    assert f[10] == {"what": "S1", "level": 0, "pa": S1_IPA_TABLES + 8 + IPA_TO_PA}
    assert res["perm"] == "rw-"


def test_nested_permissions_are_the_and_of_both_stages():
    # Stage 1 AP=01 (RW any; UXN, PXN) over stage 2 S2AP=01 (read-only): perm "r--", a write
    # faults at stage 2 with the output IPA.
    w, s1, s2 = nested_world()
    s1.map(0x1000, 0x7000_0000 | PAGE | AF | AP(0b01) | PXN | UXN)
    s2.map(0x7000_0000, 0x2_0000_0000 | PAGE | AF | S2AP(0b01) | S2XN(0b10))
    res = w.tr(1, 0x1234, priv=True)
    assert res["pa"] == 0x2_0000_0234 and res["perm"] == "r--"
    res = w.tr(1, 0x1234, write=True, priv=True)
    f = res["fault"]
    assert f["type"] == "F_PERMISSION" and f["s2"] and f["class"] == "IN"
    assert f["ipa"] == 0x7000_0234

    # Stage 1 AP=10 (EL1 RO, executable) over stage 2 RW + executable: "r-x" AND "rwx" = "r-x".
    s1.map(0x2000, 0x7000_1000 | PAGE | AF | AP(0b10) | UXN)
    s2.map(0x7000_1000, 0x2_0000_1000 | PAGE | AF | S2AP(0b11) | S2XN(0b00))
    assert w.tr(1, 0x2000, priv=True)["perm"] == "r-x"

    # A stage 1 permission fault comes before the final stage 2 walk.
    res = w.tr(1, 0x2000, write=True, priv=True)
    assert fault_type(res) == "F_PERMISSION" and res["fault"]["s2"] is False
    assert res["fetches"][-1]["what"] == "S1"


def test_stage2_fault_during_cd_fetch():
    # S1ContextPtr IPA 0x3000_0000 has no stage 2 mapping: stage 2 F_TRANSLATION, CLASS=CD,
    # IPA = the CD address.
    w = World()
    s2 = Tables(w.mem, 12, 48, 0, Alloc(S2_TABLES))
    s2.map(0x5000_0000, 0x5000_0000 | S2_RW)        # something else, so the tables exist
    w.ste(1, Config=0b111, S1ContextPtr=0x3000_0000 >> 6, **s2_fields(s2.root))
    res = w.tr(1, 0x1000)
    f = res["fault"]
    assert f["type"] == "F_TRANSLATION" and f["s2"] and f["class"] == "CD"
    assert f["ipa"] == 0x3000_0000 and f["record"]
    assert res["fetches"][-1]["what"] == "S2"


def test_stage2_external_abort_during_stage1_table_fetch():
    # The stage 1 level 0 descriptor (index 1) points at the level 1 table IPA 0x5000_0000,
    # whose stage 2 level 2 descriptor points at an unbacked level 3 table at PA 0x6660_0000.
    # Fetching the stage 1 level 1 descriptor (IPA 0x5000_0000 + 5*8) walks stage 2 and aborts
    # on the level 3 descriptor for IPA 0x5000_0028: 0x6660_0000 + ((0x5000_0028 >> 12) & 511)*8
    # = 0x6660_0000 (index 0). F_WALK_EABT, S2=1, CLASS=TT, ipa = 0x5000_0028.
    w, s1, s2 = nested_world()
    w.mem.w64(s1.place(s1.root + 8), 0x5000_0000 | TABLE)
    l2_slot = s2.slot(0x5000_0000, 2)
    w.mem.w64(l2_slot, 0x6660_0000 | TABLE)
    res = w.tr(1, (1 << 39) | (5 << 30))
    f = res["fault"]
    assert f["type"] == "F_WALK_EABT" and f["s2"] is True and f["class"] == "TT"
    assert f["ipa"] == 0x5000_0028 and f["fetch_addr"] == 0x6660_0000
    assert res["fetches"][-1] == {"what": "S2", "level": 3, "pa": 0x6660_0000}


def test_stage2_translation_fault_on_stage1_table():
    # Stage 1 level 0 descriptor points at a level 1 table IPA 0x5800_0000 that stage 2 does not
    # map: the descriptor fetch faults at stage 2 with CLASS=TT and IPA = descriptor IPA
    # 0x5800_0000 + 3*8.
    w, s1, s2 = nested_world()
    w.mem.w64(s1.place(s1.root + 8), 0x5800_0000 | TABLE)
    res = w.tr(1, (1 << 39) | (3 << 30))
    f = res["fault"]
    assert f["type"] == "F_TRANSLATION" and f["s2"] and f["class"] == "TT"
    assert f["ipa"] == 0x5800_0018


# =============================================================================================
# Points where the architecture differs from docs/walk-rules.md (see the module docstring of
# smmudbg/refwalk.py and the report that came with it).
def test_spec_points_not_in_the_rules():
    ok = s2_fields(S2_TABLES)
    # S2PS=7 is not ILLEGAL: it behaves as the largest size and is capped to the OAS (5.2 S2PS).
    w = World()
    s2 = Tables(w.mem, 12, 48, 0, Alloc(S2_TABLES))
    s2.map(0x1000, 0x7000 | S2_RW)
    w.ste(1, Config=0b110, **dict(ok, S2PS=7))
    assert w.tr(1, 0x1000)["pa"] == 0x7000
    # S2T0SZ=16 (48-bit IPA) with S2PS=2 (40-bit output) is legal: the minimum S2T0SZ is
    # MAX(16, 64 - IAS) with IAS = OAS = 48 (STES2T0SZInvalid), not 64 - S2PS.
    w.ste(1, Config=0b110, **dict(ok, S2PS=2))
    assert w.tr(1, 0x1000)["pa"] == 0x7000
    # ...but a 40-bit OAS makes it ILLEGAL, and so is SL0=2 (level 0 needs PAMax >= 44).
    w.caps["OAS"] = 2
    assert fault_type(w.tr(1, 0x1000)) == "C_BAD_STE"
    w.ste(1, Config=0b110, **dict(ok, S2T0SZ=24, S2SL0=2))
    assert fault_type(w.tr(1, 0x1000)) == "C_BAD_STE"
    w.caps["OAS"] = 5

    # CD.IPS=7 is not ILLEGAL either (5.4 IPS), capped to the OAS.
    w1, pt = s1_world(IPS=7)
    pt.map(0x1000, 0x7000 | S1_RW)
    assert w1.tr(1, 0x1000)["pa"] == 0x7000

    # Without IDR0.HYP, STRW is RES0/IGNORED (IgnoreSTESTRW): STRW=0b01 is not ILLEGAL.
    w1.caps["HYP"] = 0
    w1.ste(1, Config=0b101, S1ContextPtr=CD_PA >> 6, STRW=1)
    assert w1.tr(1, 0x1000)["pa"] == 0x7000
    w1.caps["HYP"] = 1
    assert fault_type(w1.tr(1, 0x1000)) == "C_BAD_STE"

    # S2VMID[15:8] is checked for a stage-1-only NS-EL1 STE too (IgnoreSTES2VMID).
    w1.caps["VMID16"] = 0
    w1.ste(1, Config=0b101, S1ContextPtr=CD_PA >> 6, S2VMID=0x100)
    assert fault_type(w1.tr(1, 0x1000)) == "C_BAD_STE"

    # C_BAD_SUBSTREAMID has priority over a bypass F_ADDR_SIZE (7.3.22: 5 before 10).
    w.ste(2, Config=0b100)
    assert fault_type(w.tr(2, 1 << 50, ssid=1)) == "C_BAD_SUBSTREAMID"


def test_linear_stream_table_base_is_aligned_to_its_size():
    # 6.3.24: ADDR[LOG2SIZE + 5:0] = 0; LOG2SIZE=8 -> base 0x10040 is used as 0x10000.
    w = World()
    w.strtab["base"] = STRTAB_BASE + 0x40
    w.ste(2, Config=0b100)
    assert w.tr(2, 0x42)["fetches"] == [{"what": "STE", "level": None, "pa": 0x10080}]
