"""Where the STE for a StreamID and the CD for a SubstreamID live: stream-table and CD-table
geometry, in one place for the Python layers (the walker, core_cy, has its own nogil copy).

IHI 0070 3.3.2 / 6.3.24 / 6.3.25 (stream table: SMMU_STRTAB_BASE, _CFG.FMT/SPLIT/LOG2SIZE, the
L1STD Span), 3.3.3 / 5.3 (CD table: STE.S1Fmt, S1CDMax, L1CD.L2Ptr). The effective values are
the ones the SMMU uses: the base aligned to the table size, reserved SPLIT values as 6, reserved
FMT / S1Fmt values as linear, LOG2SIZE capped by SMMU_IDR1.SIDSIZE, S1Fmt IGNORED when
S1CDMax == 0. Entry sizes come from the field tables (STE and CD: 64 bytes; L1STD, L1CD: 8).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..fieldtable import fmt
from . import consts as C

STE_SIZE = fmt("STE").size
CD_SIZE = fmt("CD").size
L1_SIZE = fmt("L1STD").size          # == fmt("L1CD").size
# IHI 0070 6.3.25: SPLIT 6, 8 or 10 (4KB, 16KB, 64KB level-2 arrays); others reserved, as 6.
SPLITS = (6, 8, 10)
# IHI 0070 5.1: Span 1..11 is an L2 array of 2^(Span-1) STEs; 0 invalid, 12..31 reserved.
MAX_SPAN = 11
# IHI 0070 5.2 S1Fmt: a 2-level CD table's leaf arrays hold 2^n CDs (4KB or 64KB).
CD_LEAF_BITS = {C.STE_S1Fmt_2lvl_4k: 6, C.STE_S1Fmt_2lvl_64k: 10}

_L1STD_SPAN = fmt("L1STD").field("Span")
_L1STD_L2PTR = fmt("L1STD").field("L2Ptr")
_L1CD_V = fmt("L1CD").field("V")
_L1CD_L2PTR = fmt("L1CD").field("L2Ptr")
_BASE_ADDR = fmt("SMMU_STRTAB_BASE").field("ADDR")


def _align(addr: int, log2: int) -> int:
    return addr & ~((1 << log2) - 1)


@dataclass(frozen=True)
class StrtabGeometry:
    """The stream table as the SMMU uses it."""
    base: int            # effective base PA of the linear or level-1 table
    two_level: bool
    split: int           # effective SPLIT (0 when linear)
    log2size: int        # StreamIDs below 2^log2size exist (LOG2SIZE capped by SIDSIZE)

    @property
    def fmt(self) -> int:
        return C.SMMU_STRTAB_BASE_CFG_FMT_2level if self.two_level \
            else C.SMMU_STRTAB_BASE_CFG_FMT_linear

    def in_range(self, sid: int) -> bool:
        return 0 <= sid and not sid >> self.log2size

    @property
    def n_l1(self) -> int:
        """Number of L1STDs (2-level)."""
        return max(1, 1 << max(0, self.log2size - self.split))

    @property
    def table_bytes(self) -> int:
        """Bytes of the linear table or of the level-1 table."""
        return L1_SIZE * self.n_l1 if self.two_level else STE_SIZE << self.log2size

    def l1_index(self, sid: int) -> int:
        return sid >> self.split

    def l1_addr(self, sid: int) -> int:
        """PA of the L1STD that covers sid (2-level)."""
        return self.l1_entry_addr(self.l1_index(sid))

    def l1_entry_addr(self, index: int) -> int:
        """PA of L1STD number `index` (2-level)."""
        return self.base + L1_SIZE * index

    def l2_index(self, sid: int) -> int:
        return sid & ((1 << self.split) - 1)

    def ste_addr(self, sid: int) -> int:
        """PA of sid's STE in a linear table."""
        return self.base + STE_SIZE * sid

    def span_ok(self, span: int) -> bool:
        """An L1STD.Span that points at an L2 array (IHI 0070 5.1, 7.3.3)."""
        return 0 < span <= MAX_SPAN and span <= self.split + 1

    def l2_ste_addr(self, l1std: int, sid: int) -> int | None:
        """PA of sid's STE through its L1STD (dword), or None if Span does not cover it."""
        span = _L1STD_SPAN.get([l1std])
        idx = self.l2_index(sid)
        if not self.span_ok(span) or idx >> (span - 1):
            return None
        # The L2 array is aligned to its size (2^(Span-1) STEs).
        return _align(_L1STD_L2PTR.address([l1std]), span - 1 + 6) + STE_SIZE * idx

    def l2_sids(self, l1_index: int, l1std: int) -> range:
        """The StreamIDs an L1STD's L2 array holds (empty for an invalid Span)."""
        span = _L1STD_SPAN.get([l1std])
        if not self.span_ok(span):
            return range(0)
        first = l1_index << self.split
        return range(first, first + (1 << (span - 1)))


def strtab_geometry(base: int, fmt_: int, split: int, log2size: int,
                    sidsize: int | None = None) -> StrtabGeometry:
    """The effective geometry from SMMU_STRTAB_BASE (the register value), _CFG.FMT, SPLIT and
    LOG2SIZE; sidsize (SMMU_IDR1.SIDSIZE) caps the StreamIDs that exist."""
    base = _BASE_ADDR.address([base])
    size = log2size if sidsize is None else min(log2size, sidsize)
    if fmt_ == C.SMMU_STRTAB_BASE_CFG_FMT_2level:
        split = split if split in SPLITS else SPLITS[0]
        # The level-1 table is aligned to its size, at least 64 bytes.
        return StrtabGeometry(_align(base, max(6, log2size - split + 3)), True, split, size)
    return StrtabGeometry(_align(base, log2size + 6), False, 0, size)


@dataclass(frozen=True)
class CdGeometry:
    """The CD table an STE points at."""
    base: int            # S1ContextPtr as an address (an IPA when stage 2 is on)
    two_level: bool
    leaf_bits: int       # log2 CDs per leaf array (0 when linear)
    s1cdmax: int

    @property
    def n_cds(self) -> int:
        return 1 << self.s1cdmax

    @property
    def n_l1(self) -> int:
        """Number of L1CDs (2-level)."""
        return 1 << max(0, self.s1cdmax - self.leaf_bits)

    @property
    def table_bytes(self) -> int:
        """Bytes of the linear table or of the level-1 table."""
        return L1_SIZE * self.n_l1 if self.two_level else CD_SIZE << self.s1cdmax

    @property
    def leaf_bytes(self) -> int:
        return CD_SIZE << self.leaf_bits

    def in_range(self, ssid: int) -> bool:
        return 0 <= ssid and not ssid >> self.s1cdmax

    def l1_index(self, ssid: int) -> int:
        return ssid >> self.leaf_bits

    def l1_addr(self, ssid: int) -> int:
        """Address of the L1CD that covers ssid (2-level)."""
        return self.base + L1_SIZE * self.l1_index(ssid)

    def l2_index(self, ssid: int) -> int:
        return ssid & ((1 << self.leaf_bits) - 1)

    def cd_addr(self, ssid: int) -> int:
        """Address of ssid's CD in a linear table."""
        return self.base + CD_SIZE * ssid

    def l2_cd_addr(self, l1cd: int, ssid: int) -> int | None:
        """Address of ssid's CD through its L1CD (dword), or None if the L1CD is invalid."""
        if not _L1CD_V.get([l1cd]):
            return None
        return _L1CD_L2PTR.address([l1cd]) + CD_SIZE * self.l2_index(ssid)

    @staticmethod
    def l1cd(leaf: int) -> int:
        """A valid L1CD pointing at a leaf array."""
        return fmt("L1CD").encode(V=1, L2Ptr=_L1CD_L2PTR.from_address(leaf))[0]


def cd_geometry(ste_words) -> CdGeometry:
    """The CD table of an STE (its eight dwords, or dword 0, which holds every field used)."""
    ste = fmt("STE")
    w = list(ste_words)
    return cd_table(ste.field("S1ContextPtr").address(w), ste.field("S1Fmt").get(w),
                    ste.field("S1CDMax").get(w))


def cd_table(base: int, s1fmt: int, s1cdmax: int) -> CdGeometry:
    """The CD table at `base` with STE.S1Fmt and S1CDMax (S1Fmt IGNORED when S1CDMax == 0)."""
    n = CD_LEAF_BITS.get(s1fmt) if s1cdmax else None
    return CdGeometry(base, n is not None, n or 0, s1cdmax)
