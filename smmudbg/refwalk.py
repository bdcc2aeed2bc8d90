"""Slow, obviously-correct reference walker for SMMUv3 (nested) translation.

This is the oracle the differential tests and the benchmark compare the Cython walker
(core_cy/walk.pyx) with. It was derived independently from docs/walk-rules.md, the SMMUv3
architecture (Arm IHI 0070: 3.3, 3.4, 3.9, 5.1-5.5, 6.3.25, 7.3) and the VMSAv8-64 translation
rules of the Arm ARM. Where the rules doc and the architecture disagree this file follows the
architecture; each such place is marked "SPEC:" below.

Design: one plain function per step, plain ints, one loop iteration per table level, and an
exception (_Fault) that carries a fault from wherever it is found back to translate(). Every
field is read through the field tables (smmudbg.arch.fieldtable), never by a hard-coded bit
position. Nothing here imports core_cy.

Not modelled (as docs/walk-rules.md): AArch32 tables, 52-bit OA/LPA2 descriptor formats (an OA is
bits [47:granule]), stalls (a stalling fault is reported with stall=True and terminates), ATS/PRI,
Secure/Realm streams, MPAM, permission indirection/overlays, VMS, SMMU_CR2.E2H (taken as 0).
Hardware AF/dirty updates (HTTU) are modelled as "the access is allowed" without writing memory.
"""
from __future__ import annotations

from smmudbg.arch.fieldtable import fmt

_STE = fmt("STE")
_CD = fmt("CD")
_L1STD = fmt("L1STD")
_L1CD = fmt("L1CD")
_S1_TABLE = fmt("S1_TABLE")
_S1_LEAF = fmt("S1_BLOCK")
_S2_TABLE = fmt("S2_TABLE")
_S2_LEAF = fmt("S2_BLOCK")

MASK64 = (1 << 64) - 1

# Address-size encodings shared by IDR5.OAS, STE.S2PS and CD.IPS (IHI 0070 5.2 S2PS, 5.4 IPS).
# 0b111 is 56 bits in v3.4 (reserved, behaving as 52 bits, before); it is always capped to the
# OAS (at most 52 bits), so either reading gives the same effective size.
PS_BITS = {0: 32, 1: 36, 2: 40, 3: 42, 4: 44, 5: 48, 6: 52, 7: 56}

# Granule encodings: log2 of the granule size. STE.S2TG and CD.TG0 share one encoding, CD.TG1
# has its own (IHI 0070 5.2 S2TG, 5.4 TG0/TG1). None marks the reserved value.
TG0_GRANULE = {0: 12, 1: 16, 2: 14, 3: None}
TG1_GRANULE = {0: None, 1: 14, 2: 12, 3: 16}
GRANULE_CAP = {12: "GRAN4K", 14: "GRAN16K", 16: "GRAN64K"}

# Event CLASS values (IHI 0070 7.3).
CLASS_CD, CLASS_TT, CLASS_IN = "CD", "TT", "IN"

# The four "translation-related" faults whose recording is governed by R/S (IHI 0070 5.5).
TRANSLATION_RELATED = ("F_TRANSLATION", "F_ADDR_SIZE", "F_ACCESS", "F_PERMISSION")


def _bit(value: int, n: int) -> int:
    return (value >> n) & 1


def _low_mask(nbits: int) -> int:
    return (1 << nbits) - 1 if nbits > 0 else 0


def _align_down(addr: int, nbits: int) -> int:
    return addr & ~_low_mask(nbits)


def _level_shift(g: int, level: int) -> int:
    """Input-address bit where the index of `level` starts: g + (3 - level) * stride."""
    return g + (3 - level) * (g - 3)


def _perm_string(r: bool, w: bool, x: bool) -> str:
    return ("r" if r else "-") + ("w" if w else "-") + ("x" if x else "-")


def _swap64(value: int) -> int:
    return int.from_bytes(value.to_bytes(8, "little"), "big")


class _Fault(Exception):
    """A fault or termination found somewhere in the walk."""

    def __init__(self, type_: str, *, s2: bool = False, cls=None, ipa=None, fetch_addr=None,
                 stall: bool = False, record: bool = True):
        super().__init__(type_)
        self.type = type_
        self.s2 = s2
        self.cls = cls
        self.ipa = ipa
        self.fetch_addr = fetch_addr
        self.stall = stall
        self.record = record


class _Stage2:
    """Decoded, validated stage 2 configuration of one STE."""

    g: int            # granule shift
    start: int        # start level
    ias: int          # input size in bits, 64 - S2T0SZ
    pa_bits: int      # effective output size, min(S2PS, OAS)
    ttb: int          # root table address, aligned to the (concatenated) root table size
    affd: bool
    ha: bool          # hardware AF update (treat AF=0 as accessible)
    hd: bool          # hardware dirty update (DBM makes a page writable)
    record: bool      # S2R
    stall: bool       # S2S
    xnx: bool         # IDR3.XNX: XN is the two-bit field
    big_endian: bool  # S2ENDI (legal only when IDR0.TTENDIAN allows it)


class _Stage1:
    """Decoded stage 1 configuration of the selected TTBn region."""

    g: int
    tsz: int
    ttb: int
    had: bool


class _Walk:
    """State of one translation: inputs, the STE/CD once fetched, and the fetch log."""

    def __init__(self, read64, caps, strtab, sid, addr, ssid, write, exec_, priv):
        self.read64 = read64
        self.caps = caps
        self.strtab = strtab
        self.sid = sid
        self.addr = addr & MASK64
        self.ssv = ssid is not None
        self.ssid = ssid if ssid is not None else 0
        self.write = bool(write)
        # An instruction fetch is a read (IHI 0070 7.3: InD == 0 when RnW == 0).
        self.exec_ = bool(exec_) and not self.write
        self.priv = bool(priv)
        self.fetches = []
        self.ste = None
        self.cd = None
        self.oas_bits = PS_BITS[self.cap("OAS")]
        # IHI 0070 3.4: IAS = OAS when VMSAv8-32 LPAE is not supported (ours: AArch64 only).
        self.ias_bits = self.oas_bits

    # ----------------------------------------------------------------------------- helpers
    def cap(self, name: str) -> int:
        return int(self.caps.get(name, 0))

    def ste_field(self, name: str) -> int:
        return _STE.field(name).get(self.ste)

    def cd_field(self, name: str) -> int:
        return _CD.field(name).get(self.cd)

    def log_fetch(self, what: str, pa: int, level=None):
        self.fetches.append({"what": what, "level": level, "pa": pa})

    def read_struct(self, what: str, pa: int, fault_type: str) -> list:
        """Read a 64-byte STE or CD (eight words); any aborting word aborts the fetch."""
        self.log_fetch(what, pa)
        words = []
        for i in range(8):
            word = self.read64(pa + 8 * i)
            if word is None:
                raise _Fault(fault_type, fetch_addr=pa)
            words.append(word & MASK64)
        return words

    def read_word(self, what: str, pa: int, fault_type: str) -> int:
        """Read an 8-byte L1STD or L1CD."""
        self.log_fetch(what, pa)
        word = self.read64(pa)
        if word is None:
            raise _Fault(fault_type, fetch_addr=pa)
        return word & MASK64

    def access_allowed(self, r: bool, w: bool, x: bool) -> bool:
        if self.exec_:
            return x          # an instruction fetch needs execute permission only
        if self.write:
            return w
        return r

    # ----------------------------------------------------------------------------- run
    def run(self, smmuen: bool, gbpa_abort: bool):
        # Rule 1 / IHI 0070 3.4: SMMU disabled.
        if not smmuen:
            if gbpa_abort:
                raise _Fault("ABORT", record=False)
            # SPEC: IHI 0070 3.4 "If the input address of a transaction exceeds the size of the
            # OAS, the transaction is terminated with an abort and no event is recorded."
            if self.addr >= (1 << self.oas_bits):
                raise _Fault("ABORT", record=False)
            return self.addr, "rwx"

        self.ste = self.fetch_ste()
        self.check_ste()
        self.apply_overrides()
        config = self.ste_field("Config")
        s1_enabled = bool(config & 1)
        s2_enabled = bool(config & 2)
        s2 = self.stage2_config() if s2_enabled else None

        # Substream checks come before any translation fault (IHI 0070 7.3.22 priorities 5, 6).
        use_s1, cd_index = self.substream(s1_enabled)

        if not use_s1:
            # Stage 1 bypassed (Config 0b100 / 0b110, or S1DSS=bypass). IHI 0070 3.4: the input
            # is checked against the IAS: stage 1 F_ADDR_SIZE, CLASS=IN. No CD is involved, so
            # the event is always recorded.
            if self.addr >= (1 << self.ias_bits):
                raise _Fault("F_ADDR_SIZE", cls=CLASS_IN)
            if s2 is None:
                return self.addr, "rwx"
            pa, (r, w, x) = self.stage2(s2, self.addr, CLASS_IN)
            return pa, _perm_string(r, w, x)

        self.cd = self.fetch_cd(s2, cd_index)
        self.check_cd()
        ipa, (r1, w1, x1) = self.stage1(s2)
        if s2 is None:
            return ipa, _perm_string(r1, w1, x1)
        pa, (r2, w2, x2) = self.stage2(s2, ipa, CLASS_IN)
        # Rule 11: nested permission = stage 1 AND stage 2.
        return pa, _perm_string(r1 and r2, w1 and w2, x1 and x2)

    # ----------------------------------------------------------------------------- stream table
    def fetch_ste(self) -> list:
        """Rule 2, IHI 0070 3.3.2, 5.1, 6.3.25 and 7.3.3."""
        log2size = int(self.strtab.get("log2size", 0))
        eff_log2size = min(log2size, self.cap("SIDSIZE"))
        if self.sid < 0 or self.sid >= (1 << eff_log2size):
            raise _Fault("C_BAD_STREAMID")
        base = int(self.strtab.get("base", 0)) & _low_mask(56) & ~_low_mask(6)

        if int(self.strtab.get("fmt", 0)) != 1:          # reserved FMT values behave as linear
            # SPEC: 6.3.24 ADDR: a linear table base is aligned to the table size, using the
            # literal LOG2SIZE: ADDR[LOG2SIZE + 5:0] = 0.
            base = _align_down(base, log2size + 6)
            return self.read_struct("STE", base + self.sid * 64, "F_STE_FETCH")

        split = int(self.strtab.get("split", 6))
        if split not in (6, 8, 10):
            split = 6                          # SPEC: 6.3.25 "Other values are reserved, behave as 6"
        # SPEC: 6.3.24: a 2-level base is aligned to max(64 bytes, the L1 table size).
        base = _align_down(base, max(5, log2size - split - 1 + 3) + 1)
        l1std_addr = base + (self.sid >> split) * 8
        l1std = [self.read_word("L1STD", l1std_addr, "F_STE_FETCH")]
        span = _L1STD.field("Span").get(l1std)
        # SPEC: 7.3.3 also makes Span > SPLIT + 1 an invalid StreamID.
        if span == 0 or span > 11 or span > split + 1:
            raise _Fault("C_BAD_STREAMID")
        l2_index = self.sid & _low_mask(split)
        if l2_index >= (1 << (span - 1)):
            raise _Fault("C_BAD_STREAMID")
        # 5.1 L2Ptr: bits [5 + (Span - 1):0] are treated as 0 (the array is aligned to its size).
        l2ptr = _align_down(_L1STD.field("L2Ptr").get(l1std) << 6, span + 5)
        return self.read_struct("STE", l2ptr + l2_index * 64, "F_STE_FETCH")

    def check_ste(self):
        """Rule 3, IHI 0070 5.2 and the SteIllegal() pseudocode of 5.2.2."""
        if not self.ste_field("V"):
            raise _Fault("C_BAD_STE")
        config = self.ste_field("Config")
        if config < 0b100:
            raise _Fault("ABORT", record=False)      # 0b000 and reserved 0b0xx: silent abort
        s1_enabled = bool(config & 1)
        s2_enabled = bool(config & 2)
        bad = False
        if s1_enabled and not self.cap("S1P"):
            bad = True
        if s2_enabled and not self.cap("S2P"):
            bad = True

        # ATS (5.2 EATS): the field is IGNORED without IDR0.ATS and for Config 0b100.
        if self.cap("ATS") and config != 0b100:
            eats = self.ste_field("EATS")
            s2s = self.ste_field("S2S")
            if eats == 0b10 and (config != 0b111 or s2s or self.cap("NS1ATS")):
                bad = True
            if eats == 0b01 and s2s and s2_enabled:
                bad = True

        # STRW (5.2 STRW, IgnoreSTESTRW): only used for a stage-1-only STE on an SMMU with
        # stage 1 and Hyp support; otherwise IGNORED (effective StreamWorld NS-EL1).
        if self.strw_used() and self.ste_field("STRW") & 1:
            bad = True

        if s1_enabled:
            if self.ste_field("S1STALLD") and self.cap("STALL_MODEL") != 0:
                bad = True
            ssidsize = self.cap("SSIDSIZE")
            # SPEC: S1CDMax and S1Fmt are IGNORED when IDR1.SSIDSIZE == 0; S1Fmt is only
            # checked when substreams are enabled (S1CDMax != 0).
            if ssidsize != 0 and self.ste_field("S1CDMax") > ssidsize:
                bad = True
            if (ssidsize != 0 and self.ste_field("S1CDMax") != 0 and not self.cap("CD2L")
                    and self.ste_field("S1Fmt") in (1, 2)):
                bad = True
            # SPEC: STES1ContextPtrOutOfRange: the pointer must be within the OAS (stage 1
            # only, a PA) or the IAS (stage 2 on, an IPA). IAS == OAS here.
            if (self.ste_field("S1ContextPtr") << 6) >= (1 << self.oas_bits):
                bad = True

        if s2_enabled:
            s2s = self.ste_field("S2S")
            if s2s and self.cap("STALL_MODEL") == 0b01:
                bad = True
            if not s2s and self.cap("STALL_MODEL") == 0b10:
                bad = True
            if not self.ste_field("S2AA64"):
                bad = True                            # VMSAv8-32 LPAE is not modelled
            httu = self.cap("HTTU")
            if (self.ste_field("S2HA") or self.ste_field("S2HD")) and httu == 0:
                bad = True
            if self.ste_field("S2HD") and httu == 1:
                bad = True
            if self.stage2_geometry_invalid():
                bad = True
            ttendian = self.cap("TTENDIAN")
            if ttendian == 0b10 and self.ste_field("S2ENDI") == 1:
                bad = True
            if ttendian == 0b11 and self.ste_field("S2ENDI") == 0:
                bad = True

        # SPEC: IgnoreSTES2VMID: S2VMID is checked for every translating STE on an SMMU with
        # stage 2, unless it is stage-1-only with a non-EL1 StreamWorld.
        s2vmid_used = (self.cap("S2P") and config != 0b100
                       and not (self.strw_used() and self.ste_field("STRW") != 0))
        if s2vmid_used and not self.cap("VMID16") and (self.ste_field("S2VMID") >> 8) != 0:
            bad = True
        if bad:
            raise _Fault("C_BAD_STE")

    def apply_overrides(self):
        """STE.PRIVCFG/INSTCFG (IHI 0070 5.2, 13): only with IDR1.ATTR_PERMS_OVR.

        The event's PnU/InD are the post-override values (IHI 0070 7.3).
        """
        if not self.cap("ATTR_PERMS_OVR"):
            return
        privcfg = self.ste_field("PRIVCFG")
        if privcfg == 0b10:
            self.priv = False
        elif privcfg == 0b11:
            self.priv = True
        instcfg = self.ste_field("INSTCFG")
        if instcfg == 0b10:
            self.exec_ = False
        elif instcfg == 0b11 and not self.write:
            self.exec_ = True        # INSTCFG=instruction applies to reads only

    def strw_used(self) -> bool:
        config = self.ste_field("Config")
        return bool(self.cap("S1P") and self.cap("HYP") and config == 0b101)

    def stream_world_el2(self) -> bool:
        """StreamWorld NS-EL2 (CR2.E2H is taken as 0): one VA range, all accesses privileged."""
        return self.strw_used() and self.ste_field("STRW") == 0b10

    # ----------------------------------------------------------------------------- stage 2 setup
    def s2_granule(self):
        return TG0_GRANULE[self.ste_field("S2TG")]

    def s2_pa_bits(self) -> int:
        return min(PS_BITS[self.ste_field("S2PS")], self.oas_bits)

    def s2_start_level(self):
        """Start level from S2SL0 (Arm ARM AArch64.S2InvalidSL/S2StartLevel), or None if invalid.

        PAMax in the Arm ARM is the implemented PA size: IDR5.OAS here.
        """
        g = self.s2_granule()
        sl0 = self.ste_field("S2SL0")
        if g == 12:
            if sl0 == 2 and self.oas_bits < 44:
                return None
            if sl0 == 3 and not self.cap("STT"):    # level 3 start needs FEAT_TTST (IDR3.STT)
                return None
            return {0: 2, 1: 1, 2: 0, 3: 3}[sl0]
        if sl0 == 3:                                 # 16K needs LPA2 (DS); 64K: reserved
            return None
        if sl0 == 2 and self.oas_bits < (42 if g == 14 else 44):
            return None
        return 3 - sl0

    def stage2_geometry_invalid(self) -> bool:
        """S2TG, S2T0SZ, S2SL0 and S2TTB checks (rule 4, SteIllegal, STES2T0SZInvalid)."""
        g = self.s2_granule()
        if g is None or not self.cap(GRANULE_CAP[g]):
            return True
        t0sz = self.ste_field("S2T0SZ")
        # SPEC: STES2T0SZInvalid: min = MAX(16, 64 - IAS) (MAX(12, ..) for 64K), IAS = OAS.
        if self.cap("STT"):
            tsz_max = 47 if g == 16 else 48
        else:
            tsz_max = 39
        tsz_min = max(12 if g == 16 else 16, 64 - self.ias_bits)
        if t0sz < tsz_min or t0sz > tsz_max:
            return True
        start = self.s2_start_level()
        if start is None:
            return True
        stride = g - 3
        ias = 64 - t0sz
        levels = 3 - start
        min_ias = levels * stride + g + 1
        max_ias = min_ias + (stride - 1) + 4            # at most 16 concatenated tables
        if ias < min_ias or ias > max_ias:
            return True
        ttb_limit = self.s2_pa_bits()
        if g != 16:
            ttb_limit = min(ttb_limit, 48)
        if (self.ste_field("S2TTB") << 4) >= (1 << ttb_limit):
            return True
        return False

    def stage2_config(self) -> _Stage2:
        s2 = _Stage2()
        s2.g = self.s2_granule()
        s2.start = self.s2_start_level()
        s2.ias = 64 - self.ste_field("S2T0SZ")
        s2.pa_bits = self.s2_pa_bits()
        # The root (possibly concatenated) table holds the IPA bits [ias-1:shift(start)]; its
        # base is aligned to its size (Arm ARM TTBaseAddress).
        root_bits = s2.ias - _level_shift(s2.g, s2.start)
        s2.ttb = _align_down(self.ste_field("S2TTB") << 4, root_bits + 3)
        s2.affd = bool(self.ste_field("S2AFFD"))
        s2.ha = bool(self.ste_field("S2HA"))
        s2.hd = bool(self.ste_field("S2HD") and self.ste_field("S2HA"))
        s2.record = bool(self.ste_field("S2R"))
        s2.stall = bool(self.ste_field("S2S"))
        s2.xnx = bool(self.cap("XNX"))
        s2.big_endian = bool(self.ste_field("S2ENDI"))
        return s2

    # ----------------------------------------------------------------------------- substreams
    def substream(self, s1_enabled: bool):
        """Rule 6, IHI 0070 5.2 S1CDMax/S1DSS, 7.3.7 and 7.3.9.

        Returns (use stage 1, CD index).
        """
        if not s1_enabled:
            if self.ssv:
                raise _Fault("C_BAD_SUBSTREAMID")
            return False, 0
        # S1CDMax is IGNORED (effectively 0) when IDR1.SSIDSIZE == 0.
        cdmax = self.ste_field("S1CDMax") if self.cap("SSIDSIZE") else 0
        s1dss = self.ste_field("S1DSS")
        if self.ssv:
            if cdmax == 0:
                raise _Fault("C_BAD_SUBSTREAMID")
            if self.ssid >= (1 << cdmax):
                raise _Fault("C_BAD_SUBSTREAMID")
            if self.ssid == 0 and s1dss == 0b10:
                # SPEC: 5.2 S1DSS=0b10 and 7.3.7: SubstreamID 0 with SSV is F_STREAM_DISABLED.
                raise _Fault("F_STREAM_DISABLED")
            return True, self.ssid
        if cdmax == 0:
            return True, 0
        if s1dss == 0b01:
            return False, 0
        if s1dss == 0b10:
            return True, 0
        raise _Fault("F_STREAM_DISABLED")             # 0b00 terminate, 0b11 reserved

    # ----------------------------------------------------------------------------- CD fetch
    def config_address(self, s2, ipa: int) -> int:
        """Rule 7: with stage 2 on, a CD-table address is an IPA translated by stage 2."""
        if s2 is None:
            return ipa
        pa, _ = self.stage2(s2, ipa, CLASS_CD)
        return pa

    def fetch_cd(self, s2, index: int) -> list:
        """Rule 7, IHI 0070 5.2 S1Fmt, 5.3 L1CD, 3.4.3."""
        ctx_ptr = self.ste_field("S1ContextPtr") << 6
        cdmax = self.ste_field("S1CDMax") if self.cap("SSIDSIZE") else 0
        s1fmt = self.ste_field("S1Fmt")
        if cdmax == 0 or s1fmt in (0, 3):
            cd_addr = ctx_ptr + index * 64
            return self.read_struct("CD", self.config_address(s2, cd_addr), "F_CD_FETCH")

        leaf_bits = 6 if s1fmt == 1 else 10            # 4KB leaves of 64 CDs / 64KB of 1024
        l1cd_addr = ctx_ptr + (index >> leaf_bits) * 8
        l1cd = [self.read_word("L1CD", self.config_address(s2, l1cd_addr), "F_CD_FETCH")]
        if not _L1CD.field("V").get(l1cd):
            raise _Fault("C_BAD_SUBSTREAMID")
        l2ptr = _L1CD.field("L2Ptr").get(l1cd) << 12
        # SPEC: 3.4.3 / 7.3.9: an out-of-range L1CD.L2Ptr is C_BAD_SUBSTREAMID (v3.1+).
        if l2ptr >= (1 << self.oas_bits):
            raise _Fault("C_BAD_SUBSTREAMID")
        cd_addr = l2ptr + (index & _low_mask(leaf_bits)) * 64
        return self.read_struct("CD", self.config_address(s2, cd_addr), "F_CD_FETCH")

    # ----------------------------------------------------------------------------- CD checks
    def ttb_disabled(self, n: int) -> bool:
        """Effective EPDn: EPD0/EPD1 are IGNORED (0) at EL2, which has no TTB1 at all."""
        if self.stream_world_el2():
            return n == 1
        return bool(self.cd_field(f"EPD{n}"))

    def region_granule(self, n: int):
        tg = self.cd_field(f"TG{n}")
        return TG0_GRANULE[tg] if n == 0 else TG1_GRANULE[tg]

    def ips_bits(self) -> int:
        return min(PS_BITS[self.cd_field("IPS")], self.oas_bits)

    def check_cd(self):
        """Rule 8, IHI 0070 5.4 and the CdIllegal() pseudocode of 5.4.2."""
        bad = False
        if not self.cd_field("V"):
            raise _Fault("C_BAD_CD")
        if not self.cd_field("AA64"):
            bad = True                                  # VMSAv8-32 LPAE is not modelled
        if self.ste_field("S1STALLD") and self.cd_field("S"):
            bad = True
        if self.cap("TERM_MODEL") and not self.cd_field("A"):
            bad = True
        stall_model = self.cap("STALL_MODEL")
        if stall_model == 0b01 and self.cd_field("S"):
            bad = True
        if stall_model == 0b10 and not self.cd_field("S"):
            bad = True
        if not (self.ttb_disabled(0) and self.ttb_disabled(1)):
            ttendian = self.cap("TTENDIAN")
            if ttendian == 0b10 and self.cd_field("ENDI") == 1:
                bad = True
            if ttendian == 0b11 and self.cd_field("ENDI") == 0:
                bad = True
        httu = self.cap("HTTU")
        if (self.cd_field("HA") or self.cd_field("HD")) and httu == 0:
            bad = True
        if self.cd_field("HD") and httu == 1:
            bad = True
        # The ASID is IGNORED at EL2 (no ASID in that StreamWorld).
        if (not self.stream_world_el2() and not self.cap("ASID16")
                and (self.cd_field("ASID") >> 8) != 0):
            bad = True
        for n in (0, 1):
            if self.ttb_disabled(n):
                continue
            g = self.region_granule(n)
            if g is None or not self.cap(GRANULE_CAP[g]):
                bad = True
                continue
            tsz = self.cd_field(f"T{n}SZ")
            if self.cap("STT"):
                tsz_max = 47 if g == 16 else 48
            else:
                tsz_max = 39
            tsz_min = 12 if (g == 16 and self.cap("VAX") in (1, 2)) else 16
            if tsz < tsz_min or tsz > tsz_max:
                bad = True
            ttb_limit = self.ips_bits()
            if g != 16:
                ttb_limit = min(ttb_limit, 48)
            if (self.cd_field(f"TTB{n}") << 4) >= (1 << ttb_limit):
                bad = True
        if bad:
            raise _Fault("C_BAD_CD")

    # ----------------------------------------------------------------------------- fault helpers
    def s1_fault(self, type_: str) -> _Fault:
        """A stage 1 translation-related fault: CLASS=IN, governed by CD.R/CD.S (5.5)."""
        stall = bool(self.cd_field("S"))
        # SPEC: 5.5: R only suppresses the record when S == 0 (a stall is always reported).
        record = bool(self.cd_field("R")) or stall
        return _Fault(type_, cls=CLASS_IN, stall=stall, record=record)

    @staticmethod
    def s2_fault(s2: _Stage2, type_: str, cls: str, ipa: int) -> _Fault:
        return _Fault(type_, s2=True, cls=cls, ipa=ipa, stall=s2.stall,
                      record=s2.record or s2.stall)

    # ----------------------------------------------------------------------------- stage 1
    def select_region(self) -> _Stage1:
        """Rule 9 / IHI 0070 3.4.1: pick TTB0 or TTB1 and check the VA is in its range."""
        va = self.addr
        el2 = self.stream_world_el2()
        n = 0 if (el2 or _bit(va, 55) == 0) else 1
        tbi = bool(self.cd_field(f"TBI{n}"))
        addr_top = 55 if tbi else 63
        tsz = self.cd_field(f"T{n}SZ")
        va_bits = 64 - tsz
        upper = (va >> va_bits) & _low_mask(addr_top - va_bits + 1)
        expected = 0 if n == 0 else _low_mask(addr_top - va_bits + 1)
        if upper != expected:
            raise self.s1_fault("F_TRANSLATION")
        if self.ttb_disabled(n):
            raise self.s1_fault("F_TRANSLATION")
        # E0PDn (IDR3.E0PD): an unprivileged access to the region is a Translation fault.
        if (self.cap("E0PD") and not el2 and not self.priv
                and self.cd_field(f"E0PD{n}")):
            raise self.s1_fault("F_TRANSLATION")
        region = _Stage1()
        region.g = self.region_granule(n)
        region.tsz = tsz
        region.ttb = self.cd_field(f"TTB{n}") << 4
        region.had = bool(self.cap("HAD") and self.cd_field(f"HAD{n}"))
        return region

    def block_allowed(self, g: int, level: int) -> bool:
        """Arm ARM AArch64.BlockDescSupported without DS/LPA2/D128 (4K: L1-2, 16K/64K: L2)."""
        if g == 12:
            return level in (1, 2)
        return level == 2

    def stage1(self, s2):
        """Stage 1 walk (rule 9). Returns (output address, (r, w, x) for this transaction)."""
        region = self.select_region()
        g = region.g
        stride = g - 3
        va_bits = 64 - region.tsz
        start = 4 - (va_bits - g + stride - 1) // stride
        eff_ips = self.ips_bits()
        big_endian = bool(self.cd_field("ENDI"))
        start_bits = va_bits - _level_shift(g, start)
        table = _align_down(region.ttb, start_bits + 3)

        # Hierarchical attributes collected from table descriptors.
        ap_table = 0
        pxn_table = 0
        uxn_table = 0
        level = start
        while True:
            shift = _level_shift(g, level)
            width = start_bits if level == start else stride
            index = (self.addr >> shift) & _low_mask(width)
            desc_addr = table + index * 8
            # In a nested STE the descriptor address is an IPA, translated on every fetch.
            if s2 is not None:
                desc_pa, _ = self.stage2(s2, desc_addr, CLASS_TT)
            else:
                desc_pa = desc_addr
            self.log_fetch("S1", desc_pa, level)
            raw = self.read64(desc_pa)
            if raw is None:
                raise _Fault("F_WALK_EABT", cls=CLASS_TT, fetch_addr=desc_pa)
            desc = [_swap64(raw) if big_endian else raw & MASK64]

            if not _S1_TABLE.field("Valid").get(desc):
                raise self.s1_fault("F_TRANSLATION")
            is_table_or_page = _S1_TABLE.field("Type").get(desc) == 1
            if level < 3 and is_table_or_page:
                next_table = _align_down(_S1_TABLE.field("NLTA").get(desc) << 12, g)
                if next_table >= (1 << eff_ips):
                    raise self.s1_fault("F_ADDR_SIZE")
                if not region.had:
                    ap_table |= _S1_TABLE.field("APTable").get(desc)
                    pxn_table |= _S1_TABLE.field("PXNTable").get(desc)
                    uxn_table |= _S1_TABLE.field("UXNTable").get(desc)
                table = next_table
                level += 1
                continue
            if level == 3 and not is_table_or_page:
                raise self.s1_fault("F_TRANSLATION")          # 0b01 at level 3 is reserved
            if level < 3 and not self.block_allowed(g, level):
                raise self.s1_fault("F_TRANSLATION")
            break

        # Leaf: block (levels 1-2) or page (level 3). Fault order: address size, AF, permission.
        oa = _align_down(_S1_LEAF.field("OA").get(desc) << 12, shift) | (self.addr & _low_mask(shift))
        if oa >= (1 << eff_ips):
            raise self.s1_fault("F_ADDR_SIZE")
        ha = bool(self.cd_field("HA"))
        if not _S1_LEAF.field("AF").get(desc) and not ha and not self.cd_field("AFFD"):
            raise self.s1_fault("F_ACCESS")
        perms = self.s1_permissions(desc, ap_table, pxn_table, uxn_table)
        if not self.access_allowed(*perms):
            raise self.s1_fault("F_PERMISSION")
        return oa, perms

    def s1_permissions(self, desc, ap_table: int, pxn_table: int, uxn_table: int):
        """Stage 1 direct permissions (Arm ARM AArch64.S1DirectBasePermissions, rule 9)."""
        ap = _S1_LEAF.field("AP").get(desc)
        ap2 = _bit(ap, 1)         # AP[2]: read-only
        ap1 = _bit(ap, 0)         # AP[1]: EL0 access
        # Hardware dirty state: with HA and HD, DBM=1 makes a read-only page writable-clean.
        if (self.cd_field("HD") and self.cd_field("HA")
                and _S1_LEAF.field("DBM").get(desc)):
            ap2 = 0
        pxn = _S1_LEAF.field("PXN").get(desc)
        uxn = _S1_LEAF.field("UXN").get(desc)
        wxn = bool(self.cd_field("WXN"))

        if self.stream_world_el2():
            # Single-EL regime: AP[1], APTable[0] and PXN(Table) are not used; bit 54 is XN
            # and bit 60 XNTable. Every access is privileged.
            r = True
            w = not ap2 and not _bit(ap_table, 1)
            x = not uxn and not uxn_table
            if wxn and w:
                x = False
            return r, w, x

        pr = True
        pw = not ap2
        ur = bool(ap1)
        uw = bool(ap1) and not ap2
        if _bit(ap_table, 0):                 # APTable[0]: no EL0 access below
            ur = uw = False
        if _bit(ap_table, 1):                 # APTable[1]: no write access below
            pw = uw = False
        px = not (pxn or pxn_table or uw)     # EL0-writable memory is never privileged-executable
        ux = not (uxn or uxn_table)
        if wxn:
            if pw:
                px = False
            if uw:
                ux = False
        if not self.priv:
            return ur, uw, ux
        # PAN: privileged data accesses to EL0-accessible memory fail (EPAN: also EL0-executable).
        if self.cd_field("PAN"):
            pan = ur or uw or (bool(self.cap("EPAN") and self.cd_field("EPAN")) and ux)
            if pan:
                pr = pw = False
        return pr, pw, px

    # ----------------------------------------------------------------------------- stage 2
    def stage2(self, s2: _Stage2, ipa: int, cls: str):
        """Stage 2 walk (rule 10). Returns (PA, (r, w, x)).

        cls is what the walk is for: CLASS_CD (CD/L1CD fetch) or CLASS_TT (stage 1 descriptor
        fetch), which are data reads, or CLASS_IN for the transaction itself.
        """
        if ipa >= (1 << s2.ias):
            raise self.s2_fault(s2, "F_TRANSLATION", cls, ipa)
        g = s2.g
        stride = g - 3
        root_bits = s2.ias - _level_shift(g, s2.start)
        table = s2.ttb
        level = s2.start
        while True:
            shift = _level_shift(g, level)
            width = root_bits if level == s2.start else stride
            index = (ipa >> shift) & _low_mask(width)
            desc_pa = table + index * 8
            self.log_fetch("S2", desc_pa, level)
            raw = self.read64(desc_pa)
            if raw is None:
                raise _Fault("F_WALK_EABT", s2=True, cls=cls, ipa=ipa, fetch_addr=desc_pa)
            desc = [_swap64(raw) if s2.big_endian else raw & MASK64]

            if not _S2_TABLE.field("Valid").get(desc):
                raise self.s2_fault(s2, "F_TRANSLATION", cls, ipa)
            is_table_or_page = _S2_TABLE.field("Type").get(desc) == 1
            if level < 3 and is_table_or_page:
                next_table = _align_down(_S2_TABLE.field("NLTA").get(desc) << 12, g)
                if next_table >= (1 << s2.pa_bits):
                    raise self.s2_fault(s2, "F_ADDR_SIZE", cls, ipa)
                table = next_table
                level += 1
                continue
            if level == 3 and not is_table_or_page:
                raise self.s2_fault(s2, "F_TRANSLATION", cls, ipa)
            if level < 3 and not self.block_allowed(g, level):
                raise self.s2_fault(s2, "F_TRANSLATION", cls, ipa)
            break

        pa = _align_down(_S2_LEAF.field("OA").get(desc) << 12, shift) | (ipa & _low_mask(shift))
        if pa >= (1 << s2.pa_bits):
            raise self.s2_fault(s2, "F_ADDR_SIZE", cls, ipa)
        if not _S2_LEAF.field("AF").get(desc) and not s2.ha and not s2.affd:
            raise self.s2_fault(s2, "F_ACCESS", cls, ipa)
        r, w, x = self.s2_permissions(s2, desc)
        if cls == CLASS_IN:
            allowed = self.access_allowed(r, w, x)
        else:
            allowed = r       # the SMMU reads CDs and stage 1 descriptors (data reads)
        if not allowed:
            raise self.s2_fault(s2, "F_PERMISSION", cls, ipa)
        return pa, (r, w, x)

    def s2_permissions(self, s2: _Stage2, desc):
        """Stage 2 permissions (Arm ARM AArch64.S2CheckPermissions): S2AP, XN / XN[1:0]."""
        s2ap = _S2_LEAF.field("S2AP").get(desc)
        r = bool(_bit(s2ap, 0))
        w = bool(_bit(s2ap, 1)) or bool(s2.hd and _S2_LEAF.field("DBM").get(desc))
        xn = _S2_LEAF.field("XN").get(desc)
        if not s2.xnx:
            x = not _bit(xn, 1)                      # bit 54 alone: execute-never
        elif self.priv:
            x = xn in (0b00, 0b11)                   # 0b01 and 0b10 forbid privileged execution
        else:
            x = xn in (0b00, 0b01)                   # 0b10 and 0b11 forbid unprivileged execution
        return r, w, x


def translate(read64, caps, strtab, sid, addr, *, ssid=None, write=False, exec_=False,
              priv=False, smmuen=True, gbpa_abort=False) -> dict:
    """Translate one transaction; see the module docstring and docs/walk-rules.md.

    Returns {"pa", "perm", "fault", "fetches"} as described in docs/walk-rules.md.
    """
    walk = _Walk(read64, caps, strtab, sid, addr, ssid, write, exec_, priv)
    try:
        pa, perm = walk.run(smmuen, gbpa_abort)
        return {"pa": pa, "perm": perm, "fault": None, "fetches": walk.fetches}
    except _Fault as f:
        stall = f.stall and f.type in TRANSLATION_RELATED
        fault = {
            "type": f.type,
            "sid": sid,
            "ssid": walk.ssid,
            "ssv": walk.ssv,
            "input_addr": walk.addr,
            "rnw": not walk.write,
            "ind": walk.exec_,
            "pnu": walk.priv,
            "s2": f.s2,
            "class": f.cls,
            "ipa": f.ipa if f.s2 else None,
            "fetch_addr": f.fetch_addr,
            "stall": stall,
            "record": f.record if f.type != "ABORT" else False,
        }
        return {"pa": None, "perm": "---", "fault": fault, "fetches": walk.fetches}
