"""Read-only views of in-memory tables for inspection (pt, find, diff, inject): page-table
dumps as trees of ranges and one-address lookups.

These never touch the walker's caches (an inspection must not change what a later walk sees).
The geometry of a stream's tables is the walker's own (Walker.stage_config), a nested stream's
stage-1 tables are read through its stage 2 as the walker reads them (Walker.ipa_space), and
descriptors decode by the walker's rules (core_cy.vmsa.descriptor). Faults are ModelError lines.
"""
from __future__ import annotations

import numpy as np

from core_cy.physmem import MemFault
from core_cy.ptbuild import scan_table
from core_cy.scan import find_leaves, leaf_perms
from core_cy.vmsa import descriptor, region_bits, table_entries

from ..arch.fieldtable import fmt
from ..arch.smmuv3 import consts as C
from ..errors import ModelError

S1_BLOCK = fmt("S1_BLOCK")
S2_BLOCK = fmt("S2_BLOCK")
S1_TABLE = fmt("S1_TABLE")

PERM_CTX = {"el2": False, "pan": False, "wxn": False, "had": False, "xnx": True}


def read_u64(mem, pa: int, what: str) -> int:
    try:
        return mem.read_u64(pa)
    except MemFault as e:
        raise ModelError(f"{what}: {e}") from None


def space_xlate(space):
    """A function address -> PA through an AddressSpace (a VM's IPA space): ModelError where
    stage 2 does not map it."""
    def xlate(addr):
        try:
            return space.translate(addr)
        except MemFault:
            raise ModelError(f"IPA {addr:#x} is not mapped at stage 2") from None
    return xlate


class Geometry:
    """One translation table tree: granule, start level, input bits, root (as the walker sees
    it), and a function that turns a table address into a PA (identity unless the tables are
    IPAs under a stage 2)."""

    def __init__(self, stage: int, g: int, start: int, ia: int, root: int, xlate=None,
                 name: str = "", ctx: dict | None = None):
        self.stage, self.g, self.start, self.ia, self.root = stage, g, start, ia, root
        self.xlate = xlate or (lambda a: a)
        self.name = name
        # The permission context the walker applies to the leaves (stage 1: STE.STRW=EL2, CD.PAN,
        # CD.WXN, CD.HAD0 with SMMU_IDR3.HAD; stage 2: SMMU_IDR3.XNX).
        self.ctx = dict(PERM_CTX, **(ctx or {}))
        self.va_base = 0            # input address of entry 0 (TTB1: the top of the VA space)

    def perms(self, d: int, tbl: tuple = (0, False, False)) -> int:
        """Permission bits of leaf d (privileged rwx in bits 0-2, unprivileged in 3-5), by the
        walker's rule, under the APTable/PXNTable/UXNTable gathered on the way down."""
        c = self.ctx
        return leaf_perms(self.stage, d, *tbl, el2=c["el2"], pan=c["pan"], wxn=c["wxn"],
                          xnx=c["xnx"])

    def table_attrs(self, tbl: tuple, d: int) -> tuple:
        """The hierarchical attributes below table descriptor d (none at stage 2 or with
        HAD)."""
        if self.stage != 1 or self.ctx["had"]:
            return tbl
        return (tbl[0] | S1_TABLE.field("APTable").get([d]),
                tbl[1] or bool(S1_TABLE.field("PXNTable").get([d])),
                tbl[2] or bool(S1_TABLE.field("UXNTable").get([d])))

    def scan_spec(self, root: int | None = None) -> tuple:
        """This tree for core_cy.scan.find_leaves."""
        c = self.ctx
        return (self.stage, self.g, self.start, self.ia, self.root if root is None else root,
                c["el2"], c["pan"], c["wxn"], c["had"], c["xnx"])

    @classmethod
    def from_stage_config(cls, cfg: dict, stage: int, xlate=None, xnx: bool = True,
                          ttb: int = 0) -> "Geometry":
        """The tree of Walker.stage_config()'s "stage1" (its TTB0 table, or with ttb=1 its
        TTB1 table: inputs at the top of the VA space, va_base = 2^64 - 2^vabits, Arm ARM
        D8.2.4) or "stage2" dict, with the walker's geometry and permission context (xnx:
        SMMU_IDR3.XNX, stage 2)."""
        if stage == 2:
            return cls(2, cfg["granule"].bit_length() - 1, cfg["start_level"], cfg["ias"],
                       cfg["ttb"], name="stage 2", ctx={"xnx": xnx})
        tt = cfg[f"ttb{ttb}"]
        if not tt["enabled"]:
            raise ModelError(f"TTB{ttb} walks are disabled (CD.EPD{ttb}=1)")
        ctx = {"el2": cfg["el2"], "pan": cfg["pan"], "wxn": cfg["wxn"], "had": tt["had"]}
        geo = cls(1, tt["granule"].bit_length() - 1, tt["start_level"], tt["vabits"],
                  tt["ttb"], xlate, name=f"stage 1 (TTB{ttb})", ctx=ctx)
        geo.va_base = 0 if ttb == 0 else (1 << 64) - (1 << tt["vabits"])
        return geo

    @classmethod
    def from_builder(cls, tb, xlate=None) -> "Geometry":
        return cls(tb.stage, tb.g, tb.start, tb.ias, tb.root, xlate,
                   name=f"stage {tb.stage}")

    def entries(self, level: int) -> int:
        return table_entries(self.g, self.start, self.ia, level)

    def bind(self, mem) -> "Tables":
        return Tables(self, mem)

    # -- one address --------------------------------------------------------------------------
    def lookup(self, mem, addr: int) -> dict:
        """Follow addr down the tree. Returns {steps, leaf (dict) or None}."""
        if addr >> self.ia:
            raise ModelError(f"{addr:#x} is beyond the {self.ia}-bit input range of "
                             f"the {self.name} tables")
        table, level, steps = self.root, self.start, []
        while True:
            size = 1 << region_bits(self.g, level)
            idx = addr // size % self.entries(level)
            daddr = table + 8 * idx
            dpa = self.xlate(daddr)
            d = read_u64(mem, dpa, f"level-{level} descriptor at {daddr:#x}")
            kind, nxt = descriptor(d, level, self.g)
            steps.append({"level": level, "table": table, "index": idx, "desc_addr": daddr,
                          "desc_pa": dpa, "desc": d, "kind": kind})
            if kind == "table":
                table, level = nxt, level + 1
                continue
            if kind == "invalid":
                return {"steps": steps, "leaf": None}
            return {"steps": steps, "leaf": {"level": level, "desc_addr": daddr, "desc": d,
                                             "out": nxt + addr % size, "size": size}}

    # -- the whole tree -----------------------------------------------------------------------
    def dump(self, mem, limit: int = 4000) -> dict:
        """Rows of a page-table dump: tables and runs of leaves with contiguous output and
        equal attributes, in input-address order, each with its depth in the tree."""
        rows: list[dict] = []
        state = {"truncated": False}
        self._dump(mem, self.root, self.start, 0, rows, limit, state, (0, False, False))
        return {"rows": rows, "truncated": state["truncated"]}

    def dump_rows(self, mem, limit: int = 4000) -> dict:
        """dump() without the internal table-attribute keys."""
        d = self.dump(mem, limit)
        for r in d["rows"]:
            r.pop("_tbl", None)
        return d

    def _entries(self, mem, table, level):
        """(kind, index, count, first descriptor) for one table, scanned in core_cy. A table in
        IPA space is read 4 KiB at a time: each page of it is translated on its own, as the
        walker translates each descriptor fetch."""
        n = self.entries(level)
        out = []
        for first in range(0, n, 512):
            cnt = min(512, n - first)
            for kind, idx, count, d in scan_table(mem, self.xlate(table + 8 * first), cnt,
                                                  level, self.g):
                out.append((kind, first + idx, count, d))
        return out

    def _dump(self, mem, table, level, base, rows, limit, state, tbl):
        sh = region_bits(self.g, level)
        try:
            entries = self._entries(mem, table, level)
        except (MemFault, ModelError) as e:
            rows.append({"depth": level - self.start, "level": level, "kind": "fault",
                         "in": base, "end": base, "table": table, "error": str(e)})
            return
        for kind, idx, count, d in entries:
            if len(rows) >= limit:
                state["truncated"] = True
                return
            va = base + (idx << sh)
            nxt = descriptor(d, level, self.g)[1]
            if kind == "table":
                rows.append({"depth": level - self.start, "level": level, "kind": "table",
                             "in": va, "end": va + (1 << sh) - 1, "table": table,
                             "index": idx, "next": nxt, "desc": d})
                self._dump(mem, nxt, level + 1, va, rows, limit, state,
                           self.table_attrs(tbl, d))
                continue
            out, size = nxt, count << sh
            rows.append({"depth": level - self.start, "level": level, "kind": kind, "in": va,
                         "end": va + size - 1, "out": out, "out_end": out + size - 1,
                         "count": count, "table": table, "index": idx, "desc": d,
                         **perm_fields(self.stage, self.perms(d, tbl)),
                         "af": bool(leaf_af(self.stage, d)), "_tbl": tbl})


def nested_dump(s1: "Geometry", s2: "Geometry", mem, limit: int = 4000) -> dict:
    """The combined view of a nested stream: the stage-1 tree, and under each stage-1 leaf run
    the IOVA -> IPA -> PA ranges stage 2 makes of it (kind "nested"), merged only where the
    IPA and PA continue and both stages' attributes are equal. Rows as Geometry.dump, plus for
    nested rows: ipa, ipa_end, out/out_end (PA, null where stage 2 maps nothing), s1_perm,
    s2_perm, s2_level, priv and unpriv (effective, both stages)."""
    # Stage 2 by input once (every leaf, merged runs), then clipped per stage-1 run.
    try:
        s2all, _, _ = find_leaves(mem, s2.scan_spec(),
                                  np.array([(0, (1 << 64) - 1, 0)], dtype=np.uint64))
    except ValueError as e:
        raise ModelError(f"stage 2 tables at {s2.root:#x}: {e}") from None
    starts = s2all[:, 0] if len(s2all) else None
    d = s1.dump(mem, limit)
    rows: list[dict] = []
    truncated = d["truncated"]
    for r in d["rows"]:
        if len(rows) >= limit:
            truncated = True
            break
        rows.append(r)
        if r["kind"] not in ("block", "page"):
            continue
        p1 = s1.perms(r["desc"], r.pop("_tbl", (0, False, False)))
        ipa, end = r["out"], r["out_end"] + 1
        k = 0
        if starts is not None:
            k = max(0, int(np.searchsorted(starts, np.uint64(ipa), side="right")) - 1)
        cur = ipa
        while cur < end and len(rows) < limit:
            piece = None
            while starts is not None and k < len(s2all):
                a, n = int(s2all[k, 0]), int(s2all[k, 1])
                if a + n <= cur:
                    k += 1
                    continue
                piece = (a, n, int(s2all[k, 2]), int(s2all[k, 5]), int(s2all[k, 6]))
                break
            if piece is None or piece[0] >= end:
                nxt, pa, lvl, p2 = end, None, None, 0
            elif piece[0] > cur:
                nxt, pa, lvl, p2 = piece[0], None, None, 0
            else:
                a, n, out, lvl, p2 = piece
                nxt, pa = min(a + n, end), out + (cur - a)
            eff = p1 & p2
            rows.append({"depth": r["depth"] + 1, "level": r["level"], "kind": "nested",
                         "in": r["in"] + (cur - ipa), "end": r["in"] + (nxt - ipa) - 1,
                         "ipa": cur, "ipa_end": nxt - 1, "out": pa,
                         "out_end": None if pa is None else pa + (nxt - cur) - 1,
                         "s1_perm": perm_str(1, p1),
                         "s2_perm": None if pa is None else rwx(p2), "s2_level": lvl,
                         "priv": rwx(eff), "unpriv": rwx(eff >> 3)})
            cur = nxt
        if cur < end:
            truncated = True
    for r in rows:
        r.pop("_tbl", None)
    return {"rows": rows, "truncated": truncated}


class Tables:
    """A Geometry over the memory it lives in: what `pt` and the inject commands look at."""

    def __init__(self, geo: Geometry, mem):
        self.geo, self.mem = geo, mem
        self.stage, self.granule, self.start_level = geo.stage, 1 << geo.g, geo.start
        self.input_bits, self.root = geo.ia, geo.root

    def lookup(self, addr: int) -> dict:
        """Follow addr down the tree: {steps, leaf (with desc_pa) or None}."""
        r = self.geo.lookup(self.mem, addr)
        if r["leaf"] is not None:
            r["leaf"]["desc_pa"] = self.geo.xlate(r["leaf"]["desc_addr"])
        return r

    def dump(self, limit: int = 4000) -> dict:
        return self.geo.dump_rows(self.mem, limit)


def leaf_af(stage: int, d: int) -> int:
    return (S1_BLOCK if stage == 1 else S2_BLOCK).field("AF").get([d])


def rwx(bits: int) -> str:
    return ("r" if bits & 1 else "-") + ("w" if bits & 2 else "-") + ("x" if bits & 4 else "-")


def perm_str(stage: int, bits: int) -> str:
    """Permission bits as letters: stage 1 'rwx' for privileged access then 'u' (EL0 may read)
    and 'X' (EL0 may execute); stage 2 'rwx' (privileged; see perm_fields for both)."""
    if stage == 1:
        return rwx(bits) + ("u" if bits & 8 else "-") + ("X" if bits & 32 else "-")
    return rwx(bits)


def perm_fields(stage: int, bits: int) -> dict:
    """A leaf row's permission keys: perm (perm_str), priv and unpriv ('rwx' each)."""
    return {"perm": perm_str(stage, bits), "priv": rwx(bits), "unpriv": rwx(bits >> 3)}
