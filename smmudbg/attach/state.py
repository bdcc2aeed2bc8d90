"""The SMMU state that matters, read from guest memory: streams, their STEs and CDs, and the
mappings of their page tables; and the difference between two such states.

Everything here reads through a `read(pa, length) -> bytes` callable (a live RAM mapping, a
snapshot's pages, or any System's memory), so a live guest, a snapshot and an imported dump are
compared the same way. `Tracker` wraps a reader and records the pages it touched: a snapshot
copies exactly those (plus the queues) while the VM is stopped.

Page tables are read as Arm VMSAv8-64 long descriptors (4K/16K/64K granules, up to 48-bit
output): descriptor bits [1:0] = 0b11 below the last level is a table, 0b01 above it a block,
0b11 at the last level a page; AP[2:1] (bits [7:6]) bit 2 set is read-only. Stage-1 tables of a
nested STE are IPAs, not read here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..arch.fieldtable import fmt
from ..arch.smmuv3 import consts as C
from ..arch.smmuv3.geometry import STE_SIZE, cd_geometry, strtab_geometry

STE = fmt("STE")
CD = fmt("CD")
L1STD = fmt("L1STD")
PAGE = 4096
MAX_CDS = 64                    # CDs read per stream (SubstreamIDs beyond are not followed)
MAX_LEAVES = 1 << 20            # per table tree: a bound against a corrupt or hostile tree
_GRANULE = {0: 12, 1: 16, 2: 14}        # TG0 / S2TG encodings
_TG1 = {2: 12, 3: 16, 1: 14}            # TG1 encodings differ (IHI 0070 CD.TG1)
# Config names as the field table spells them (as `ste` shows them).
_CONFIG = dict(STE.field("Config").enum)
_OA_MASK = (1 << 48) - 1


class Unreadable(Exception):
    """An address the reader does not hold."""


class Tracker:
    """A reader that remembers which 4 KiB pages were read."""

    def __init__(self, read):
        self._read = read
        self.pages: set[int] = set()

    def __call__(self, pa: int, n: int) -> bytes:
        first, last = pa & ~(PAGE - 1), (pa + n - 1) & ~(PAGE - 1)
        self.pages.update(range(first, last + PAGE, PAGE))
        return self._read(pa, n)


def config_name(code: int) -> str:
    return _CONFIG.get(code, f"reserved{code}")


def _u64s(read, pa: int, n: int):
    try:
        return np.frombuffer(read(pa, 8 * n), dtype="<u8")
    except Exception as e:
        raise Unreadable(f"{pa:#x}: {e}") from None


def _reg_field(regs: dict, reg: str, name: str) -> int:
    return fmt(reg).field(name).get([regs.get(reg, 0)])


# ---------------------------------------------------------------------------------------------
# Streams
# ---------------------------------------------------------------------------------------------
def ste_addrs(read, regs: dict) -> dict[int, int]:
    """{StreamID: STE address} of every STE the stream table holds (valid L1 descriptors'
    L2 tables, or the whole linear table)."""
    if "SMMU_STRTAB_BASE" not in regs:
        return {}
    geo = strtab_geometry(regs["SMMU_STRTAB_BASE"], _reg_field(regs, "SMMU_STRTAB_BASE_CFG",
                                                                "FMT"),
                          _reg_field(regs, "SMMU_STRTAB_BASE_CFG", "SPLIT"),
                          _reg_field(regs, "SMMU_STRTAB_BASE_CFG", "LOG2SIZE"),
                          _reg_field(regs, "SMMU_IDR1", "SIDSIZE"))
    out = {}
    if not geo.two_level:
        n = min(1 << geo.log2size, 1 << 16)
        for sid in range(n):
            out[sid] = geo.base + STE_SIZE * sid
        return out
    l1 = _u64s(read, geo.base, geo.n_l1)
    for i in np.nonzero(l1)[0].tolist():
        d = int(l1[i])
        span = L1STD.field("Span").get([d])
        if span == 0 or not geo.span_ok(span):
            continue
        sids = geo.l2_sids(i, d)
        base = geo.l2_ste_addr(d, sids.start)
        for k, sid in enumerate(sids):
            out[sid] = base + STE_SIZE * k
    return out


def read_stes(read, regs: dict) -> dict[int, tuple]:
    """{StreamID: STE words} of every valid STE whose Config is not abort."""
    addrs = ste_addrs(read, regs)
    out = {}
    # Read STEs a table at a time: contiguous runs of addresses.
    sids = sorted(addrs)
    i = 0
    while i < len(sids):
        j = i
        while j + 1 < len(sids) and addrs[sids[j + 1]] == addrs[sids[j]] + STE_SIZE:
            j += 1
        words = _u64s(read, addrs[sids[i]], (j - i + 1) * STE.nwords).reshape(-1, STE.nwords)
        for k in np.nonzero(words[:, 0] & 1)[0].tolist():
            w = tuple(int(x) for x in words[k])
            if STE.field("Config").get(w) != C.STE_Config_abort:
                out[sids[i + k]] = w
        i = j + 1
    return out


def read_cds(read, ste) -> dict[int, tuple]:
    """{SubstreamID: CD words} of the valid CDs of an S1 STE (at most MAX_CDS)."""
    geo = cd_geometry(ste)
    out = {}
    n = min(geo.n_cds, MAX_CDS)
    if not geo.two_level:
        words = _u64s(read, geo.base, n * CD.nwords).reshape(-1, CD.nwords)
        for k in np.nonzero(words[:, 0] & (1 << CD.field("V").lo))[0].tolist():
            out[k] = tuple(int(x) for x in words[k])
        return out
    for ssid in range(n):
        l1 = int(_u64s(read, geo.l1_addr(ssid), 1)[0])
        addr = geo.l2_cd_addr(l1, ssid)
        if addr is None:
            continue
        w = tuple(int(x) for x in _u64s(read, addr, CD.nwords))
        if CD.field("V").get(w):
            out[ssid] = w
    return out


# ---------------------------------------------------------------------------------------------
# Page tables
# ---------------------------------------------------------------------------------------------
def leaves(read, root: int, grain: int, ia_bits: int, va_base: int = 0) -> list[tuple]:
    """[(iova, size, pa, perm)] of every block and page of the table tree at root."""
    stride = grain - 3
    levels = max(1, -(-(ia_bits - grain) // stride))
    start = 4 - levels
    out: list[tuple] = []
    addr_mask = _OA_MASK & ~((1 << grain) - 1)

    def walk(table: int, level: int, base: int, nbits: int):
        n = 1 << nbits
        d = _u64s(read, table & addr_mask, n)
        shift = grain + stride * (3 - level)
        for i in np.nonzero(d & 1)[0].tolist():
            v = int(d[i])
            ia = base + (i << shift)
            if level < 3 and v & 2:
                walk(v & addr_mask, level + 1, ia, stride)
            elif level == 3 and v & 2 or level < 3 and not v & 2 and level > 0:
                perm = "r" if v >> 7 & 1 else "rw"
                out.append((ia, 1 << shift, v & _OA_MASK & ~((1 << shift) - 1), perm))
            if len(out) > MAX_LEAVES:
                raise Unreadable(f"table tree at {root:#x} has over {MAX_LEAVES} leaves")

    top_bits = ia_bits - grain - stride * (levels - 1)
    walk(root, start, va_base, top_bits)
    return out


def ranges(leafs) -> list[dict]:
    """Leaves merged into ranges where IOVA and PA are contiguous and the permission is the
    same: [{iova, size, pa, perm}]."""
    out: list[dict] = []
    for ia, size, pa, perm in sorted(leafs):
        if out:
            r = out[-1]
            if r["iova"] + r["size"] == ia and r["pa"] + r["size"] == pa and r["perm"] == perm:
                r["size"] += size
                continue
        out.append({"iova": ia, "size": size, "pa": pa, "perm": perm})
    return out


def cd_leaves(read, cd, memo: dict) -> list[tuple]:
    out = []
    for ttb, epd, tg, tsz, hi in (("TTB0", "EPD0", "TG0", "T0SZ", False),
                                  ("TTB1", "EPD1", "TG1", "T1SZ", True)):
        try:
            if CD.field(epd).get(cd):
                continue
        except Exception:
            continue
        grain = (_TG1 if hi else _GRANULE).get(CD.field(tg).get(cd))
        if grain is None:
            continue
        ia = 64 - CD.field(tsz).get(cd)
        root = CD.field(ttb).address(cd)
        base = ((1 << 64) - (1 << ia)) if hi else 0
        key = (root, grain, ia, base)
        if key not in memo:
            memo[key] = leaves(read, root, grain, ia, base)
        out += memo[key]
    return out


# ---------------------------------------------------------------------------------------------
# The state
# ---------------------------------------------------------------------------------------------
@dataclass
class Stream:
    ste: tuple
    config: str
    cds: dict = field(default_factory=dict)          # ssid -> words
    maps: list = field(default_factory=list)         # ranges (stage 1 of CD 0, or stage 2)
    problem: str | None = None                       # a table that could not be read


def capture(read, regs: dict) -> dict[int, Stream]:
    """{StreamID: Stream} read from memory through `read` with the given registers."""
    out: dict[int, Stream] = {}
    memo: dict = {}
    if not _reg_field(regs, "SMMU_CR0", "SMMUEN") and "SMMU_STRTAB_BASE" not in regs:
        return out
    for sid, ste in read_stes(read, regs).items():
        cfg = STE.field("Config").get(ste)
        s = Stream(ste, config_name(cfg))
        out[sid] = s
        try:
            leafs = []
            if cfg == C.STE_Config_s1_trans:
                s.cds = read_cds(read, ste)
                for cd in s.cds.values():
                    leafs += cd_leaves(read, cd, memo)
            elif cfg in (C.STE_Config_s2_trans, C.STE_Config_nested):
                grain = _GRANULE.get(STE.field("S2TG").get(ste))
                if grain is not None:
                    root = STE.field("S2TTB").address(ste)
                    ia = 64 - STE.field("S2T0SZ").get(ste)
                    key = (root, grain, ia, 0)
                    if key not in memo:
                        memo[key] = leaves(read, root, grain, ia)
                    leafs = memo[key]
            s.maps = ranges(leafs)
        except Unreadable as e:
            s.problem = f"unreadable {e}"
    return out


def diff(old: dict[int, Stream], new: dict[int, Stream]) -> list[dict]:
    """What changed per stream: [{sid, change: added|removed|changed, config: [old, new],
    ste_fields: {field: [old, new]}, cds: [{ssid, fields}], mapped: [ranges], unmapped:
    [ranges]}] (only the keys that apply)."""
    out = []
    for sid in sorted(set(old) | set(new)):
        a, b = old.get(sid), new.get(sid)
        if a is None:
            out.append({"sid": sid, "change": "added", "config": [None, b.config],
                        "mapped": b.maps})
            continue
        if b is None:
            out.append({"sid": sid, "change": "removed", "config": [a.config, None],
                        "unmapped": a.maps})
            continue
        row: dict = {"sid": sid, "change": "changed"}
        if a.ste != b.ste:
            row["config"] = [a.config, b.config]
            row["ste_fields"] = _field_diff(STE, a.ste, b.ste)
        cds = []
        for ssid in sorted(set(a.cds) | set(b.cds)):
            x, y = a.cds.get(ssid), b.cds.get(ssid)
            if x != y:
                cds.append({"ssid": ssid, "fields": _field_diff(CD, x, y)})
        if cds:
            row["cds"] = cds
        ma = {(r["iova"], r["size"], r["pa"], r["perm"]) for r in a.maps}
        mb = {(r["iova"], r["size"], r["pa"], r["perm"]) for r in b.maps}
        if ma != mb:
            row["mapped"] = _rows(mb - ma)
            row["unmapped"] = _rows(ma - mb)
        if len(row) > 2:
            out.append(row)
    return out


def _rows(s) -> list[dict]:
    return [{"iova": i, "size": n, "pa": p, "perm": m} for i, n, p, m in sorted(s)]


def _field_diff(f, a, b) -> dict:
    da = f.decode(list(a)) if a is not None else {}
    db = f.decode(list(b)) if b is not None else {}
    return {k: [da.get(k), db.get(k)] for k in sorted(set(da) | set(db))
            if da.get(k) != db.get(k)}
