"""The SMMU state that matters, read from guest memory: streams, their STEs and CDs, and the
mappings of their page tables; and the difference between two such states.

Everything here reads through a `read(pa, length) -> bytes` callable (a live RAM mapping, a
snapshot's pages, or any System's memory), so a live guest, a snapshot and an imported dump are
compared the same way. `Tracker` wraps a reader and records the pages it touched: a snapshot
copies exactly those (plus the queues) while the VM is stopped.

Page tables are read by the walker's rules, as `pt` and `find` read them: the tree's geometry
as the walker sets it up from the CD or STE (core_cy.vmsa.s1_tree / s2_tree: starting level,
a concatenated stage-2 initial table, the aligned root), each descriptor decoded by
core_cy.vmsa.descriptor, and a leaf's permission by the walker's permission rule
(model.tables.Geometry.perms, with APTable gathered on the way down): "r" where privileged
writes are not allowed, else "rw". Only the tables themselves are read through `read` (so a
Tracker sees every table page). Stage-1 tables of a nested STE are IPAs, not read here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core_cy.vmsa import descriptor, region_bits, s1_tree, s2_tree

from ..arch.fieldtable import fmt
from ..arch.smmuv3 import consts as C
from ..arch.smmuv3.geometry import STE_SIZE, cd_geometry, strtab_geometry
from ..model.tables import Geometry, rwx

STE = fmt("STE")
CD = fmt("CD")
L1STD = fmt("L1STD")
DESC_VALID = fmt("S1_TABLE").field("Valid")
PAGE = 4096
MAX_CDS = 64                    # CDs read per stream (SubstreamIDs beyond are not followed)
MAX_LEAVES = 1 << 20            # per table tree: a bound against a corrupt or hostile tree
# Config names as the field table spells them (as `ste` shows them).
_CONFIG = dict(STE.field("Config").enum)


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
        for k in np.nonzero(STE.field("V").get_rows(words))[0].tolist():
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
        for k in np.nonzero(CD.field("V").get_rows(words))[0].tolist():
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
def leaves(read, geo: Geometry) -> list[tuple]:
    """[(iova, size, pa, perm)] of every block and page of the table tree geo describes."""
    out: list[tuple] = []
    valid = np.uint64(DESC_VALID.inplace_mask)

    def walk(table: int, level: int, base: int, tbl: tuple):
        d = _u64s(read, table, geo.entries(level))
        shift = region_bits(geo.g, level)
        for i in np.nonzero(d & valid)[0].tolist():
            v = int(d[i])
            kind, nxt = descriptor(v, level, geo.g)
            ia = base + (i << shift)
            if kind == "table":
                walk(nxt, level + 1, ia, geo.table_attrs(tbl, v))
            elif kind != "invalid":
                perm = "rw" if "w" in rwx(geo.perms(v, tbl)) else "r"
                out.append((ia, 1 << shift, nxt, perm))
            if len(out) > MAX_LEAVES:
                raise Unreadable(f"table tree at {geo.root:#x} has over {MAX_LEAVES} leaves")

    walk(geo.root, geo.start, geo.va_base, (0, False, False))
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


def _caps(regs: dict) -> dict:
    """What the walker's geometry checks take from the ID registers: PA size and STT."""
    oas = fmt("SMMU_IDR5").field("OAS")
    return {"oas_bits": oas.addr_bits[_reg_field(regs, "SMMU_IDR5", "OAS")],
            "stt": bool(_reg_field(regs, "SMMU_IDR3", "STT"))}


def cd_trees(cd, caps: dict) -> list[Geometry]:
    """The stage-1 table trees of a CD the walker would use: TTB0 unless EPD0, TTB1 (the top
    of the VA space) unless EPD1; a tree the walker would fault (reserved granule, TnSZ out
    of range, a base beyond the IPS) is left out."""
    out = []
    ips = CD.field("IPS").addr_bits[CD.field("IPS").get(cd)]
    for n in (0, 1):
        if CD.field(f"EPD{n}").get(cd):
            continue
        tg = CD.field(f"TG{n}")
        g = tg.granule_shift.get(tg.get(cd))
        if g is None:
            continue
        try:
            start, ia, root = s1_tree(g, CD.field(f"T{n}SZ").get(cd),
                                      CD.field(f"TTB{n}").address(cd), ips, **caps)
        except ValueError:
            continue
        geo = Geometry(1, g, start, ia, root, name=f"stage 1 (TTB{n})")
        geo.va_base = 0 if n == 0 else (1 << 64) - (1 << ia)
        out.append(geo)
    return out


def s2_tree_of(ste, caps: dict) -> Geometry | None:
    """The stage-2 table tree of an STE as the walker sets it up, or None where it would
    fault the STE."""
    tg = STE.field("S2TG")
    g = tg.granule_shift.get(tg.get(ste))
    if g is None:
        return None
    ps = STE.field("S2PS").addr_bits[STE.field("S2PS").get(ste)]
    try:
        start, ia, root = s2_tree(g, STE.field("S2SL0").get(ste), STE.field("S2T0SZ").get(ste),
                                  STE.field("S2TTB").address(ste), ps, **caps)
    except ValueError:
        return None
    return Geometry(2, g, start, ia, root, name="stage 2")


def tree_leaves(read, geo: Geometry, memo: dict) -> list[tuple]:
    """leaves() of geo, once per tree (streams sharing a domain share it)."""
    key = (geo.stage, geo.root, geo.g, geo.start, geo.ia, geo.va_base)
    if key not in memo:
        memo[key] = leaves(read, geo)
    return memo[key]


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
    caps = _caps(regs)
    for sid, ste in read_stes(read, regs).items():
        cfg = STE.field("Config").get(ste)
        s = Stream(ste, config_name(cfg))
        out[sid] = s
        try:
            leafs = []
            if cfg == C.STE_Config_s1_trans:
                s.cds = read_cds(read, ste)
                for cd in s.cds.values():
                    for geo in cd_trees(cd, caps):
                        leafs += tree_leaves(read, geo, memo)
            elif cfg in (C.STE_Config_s2_trans, C.STE_Config_nested):
                geo = s2_tree_of(ste, caps)
                if geo is not None:
                    leafs = tree_leaves(read, geo, memo)
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
