"""A VT-d requester's page tables as ranges (`pt` on a VT-d device): the first stage, the second
stage, or both composed (nested), read through the core walker's reader
(core_cy.vtd.VtdWalker.lookup), so a row says what the walk would find: no second table reader.

The scan asks the reader for one address at a time: a leaf gives a row and the scan moves past
it; a non-present (or reserved, unbacked) entry at level L gives no row (a problem row for
reserved/unbacked) and the scan skips the 2^(12+9(L-1)) bytes that entry covers, times the run
of non-present entries the reader found after it in the same table (its `skip`). Entries are
named by their field-table formats (FS_PML4E ... FS_PTE, SS_PML4E ... SS_PTE).
"""
from __future__ import annotations

from ..arch.fieldtable import fmt
from ..errors import ModelError
from ..arch.vtd import consts as VC
from ..arch.vtd.paging import FS_LEVELS as _FS_NAMES
from ..arch.vtd.paging import SS_LEVELS as _SS_NAMES

PAGE_SHIFT = VC.PAGING_PAGE_SHIFT
LEVEL_BITS = VC.PAGING_LEVEL_BITS


def _span(level: int) -> int:
    return 1 << (PAGE_SHIFT + LEVEL_BITS * (level - 1))


def geometry(unit, rid: int, pasid: int | None, stage: int) -> dict:
    """Levels and input width of one stage of a requester's PASID entry."""
    c = unit.config(rid, pasid)
    if c["fault"] is not None:
        f = c["fault"]
        raise ModelError(f"{unit.name}: RID {rid:#x}: the configuration path stops with "
                         f"{f['name']} ({f['meaning']})")
    pe = fmt("PASID_ENTRY", "vtd").decode(c["pe"])
    cap = fmt("CAP_REG", "vtd").decode([unit.walker.registers["cap"]])
    if stage == 1:
        levels = 5 if pe["FLPM"] == 1 else 4
        width = PAGE_SHIFT + LEVEL_BITS * levels
    else:
        levels = pe["AW"] + 2
        width = min(PAGE_SHIFT + LEVEL_BITS * levels, cap["MGAW"] + 1)
    pgtt = fmt("PASID_ENTRY", "vtd").field("PGTT").value_name(pe["PGTT"])
    return {"levels": levels, "width": width, "pasid": c["pasid"], "pgtt": pgtt,
            "did": pe["DID"],
            "root": (pe["FLPTPTR"] << 12) if stage == 1 else (pe["SLPTPTR"] << 12)}


def _canonical(u: int, width: int) -> int:
    """The address of index u in a first stage's input space: the upper half sign-extended."""
    if u >> (width - 1):
        return (u | ~((1 << width) - 1)) & ((1 << 64) - 1)
    return u


def _entry_name(stage: int, level: int) -> str:
    names = (_FS_NAMES if stage == 1 else _SS_NAMES)[level]
    return names[1] or names[0]


def _attrs(stage: int, name: str, leaf: int) -> dict:
    """The leaf's non-address fields (from the field table), for display and merging."""
    v = fmt(name, "vtd").decode([leaf])
    keep = ("A", "D", "G", "PAT", "PCD", "PWT", "EA") if stage == 1 else \
        ("A", "D", "SNP", "EMT", "IPAT", "TM")
    return {k: v[k] for k in keep if k in v and v[k]}


def _perm(stage: int, r: dict) -> str:
    if stage == 1:
        # A present first-stage leaf always permits reads; U/S: user (unprivileged) access.
        return "r" + ("w" if r["w"] else "-") + ("-" if r["xd"] else "x") + \
            ("u" if r["us"] else "-")
    return ("r" if r["r"] else "-") + ("w" if r["w"] else "-") + ("x" if r["x"] else "-")


def leaves(unit, rid, pasid, stage, start=0, end=None, limit=None):
    """(rows, problems, truncated): the stage's leaves over its input space (or [start, end)),
    consecutive leaves with contiguous output and the same permissions and attributes merged."""
    g = geometry(unit, rid, pasid, stage)
    w = unit.walker
    width = g["width"]
    space = 1 << width
    u = start if stage == 2 else start
    stop = min(space, end) if end is not None else space
    rows, problems = [], []
    truncated = False
    while u < stop:
        addr = _canonical(u, width) if stage == 1 else u
        r = w.lookup(rid, addr, pasid, stage)
        if r["ok"]:
            size = r["size"]
            base = addr & ~(size - 1)
            skip = size - (addr - base)
            name = _entry_name(stage, r["level"])
            row = {"in": addr, "size": skip, "out": r["out"], "level": r["level"],
                   "entry": name, "perm": _perm(stage, r), "attrs": _attrs(stage, name, r["leaf"]),
                   "leaves": 1}
            prev = rows[-1] if rows else None
            if prev and prev["in"] + prev["size"] == addr and \
                    prev["out"] + prev["size"] == r["out"] and prev["level"] == r["level"] and \
                    prev["perm"] == row["perm"] and prev["attrs"] == row["attrs"]:
                prev["size"] += skip
                prev["leaves"] += 1
            else:
                if limit is not None and len(rows) >= limit:
                    truncated = True
                    break
                rows.append(row)
            u += skip
            continue
        lvl = r["fault_level"]
        if r["fault"] is None or lvl is None:
            break                                   # outside the input space
        if r.get("fault_stage") == 2 and stage == 1:
            # A nested first stage's table the second stage does not map: the region that
            # table's parent entry covers is unreachable.
            lvl = (r.get("fs_level") or 1) + 1
            lvl = min(lvl, g["levels"])
        span = _span(lvl)
        if r["fault"] != "translation" or r.get("fault_stage") == 2 and stage == 1:
            problems.append({"in": addr, "level": lvl, "size": span,
                             "problem": f"{r['fault']} at level {r['fault_level']}"
                             + (" of the second stage (a first-stage table)"
                                if r.get("fault_stage") == 2 and stage == 1 else "")})
        # the reader says how many entries of that table from this one on are not present
        u = (u & ~(span - 1)) + span * (r.get("skip") or 1)
    return g, rows, problems, truncated


def dump(unit, rid, pasid, stage, limit):
    """One stage's tree as rows: {in, size, out, level, entry, perm, attrs, leaves}."""
    g, rows, problems, truncated = leaves(unit, rid, pasid, stage, limit=limit)
    return dict(g, stage=stage, rows=rows, problems=problems, truncated=truncated)


def nested(unit, rid, pasid, limit):
    """The first stage composed with the second: rows {in, size, gpa, pa, fs_entry, ss_entry,
    fs_perm, ss_perm, perm (both allow)}; an IOVA range whose GPA the second stage does not
    map shows pa null."""
    g = geometry(unit, rid, pasid, 1)
    if g["pgtt"] != "nested":
        raise ModelError(f"{unit.name}: RID {rid:#x}: the PASID entry is {g['pgtt']}, "
                         f"not nested")
    _, fs_rows, problems, truncated = leaves(unit, rid, pasid, 1, limit=limit)
    out = []
    for fr in fs_rows:
        gpa, iova, left = fr["out"], fr["in"], fr["size"]
        while left > 0:
            if len(out) >= limit:
                return dict(g, rows=out, problems=problems, truncated=True)
            r = unit.walker.lookup(rid, gpa, pasid, 2)
            if r["ok"]:
                n = min(left, r["size"] - (gpa & (r["size"] - 1)))
                ssp = _perm(2, r)
                eff = "".join(a if a == b and a != "-" else "-"
                              for a, b in zip(fr["perm"][:3], ssp))
                out.append({"in": iova, "size": n, "gpa": gpa, "pa": r["out"],
                            "fs_entry": fr["entry"], "ss_entry": _entry_name(2, r["level"]),
                            "fs_perm": fr["perm"], "ss_perm": ssp, "perm": eff})
            else:
                span = _span(r["fault_level"]) if r["fault_level"] else left
                n = min(left, span - (gpa & (span - 1)))
                out.append({"in": iova, "size": n, "gpa": gpa, "pa": None,
                            "fs_entry": fr["entry"], "ss_entry": None, "fs_perm": fr["perm"],
                            "ss_perm": "---", "perm": "---"})
            gpa += n
            iova += n
            left -= n
    return dict(g, rows=out, problems=problems, truncated=truncated)


def lookup(unit, rid, pasid, stage, addr):
    """One address down one stage, level by level (the reader's trace)."""
    g = geometry(unit, rid, pasid, stage)
    r = unit.walker.lookup(rid, addr, pasid, stage, trace=True)
    steps = []
    for s in r["steps"]:
        if s["what"] not in ("fs", "ss"):
            continue
        st = 1 if s["what"] == "fs" else 2
        leaf = s["outcome"] in ("page", "large")
        names = (_FS_NAMES if st == 1 else _SS_NAMES)[s["level"]]
        steps.append(dict(s, entry=(names[1] if leaf else names[0]) or names[0] or names[1]))
    return dict(g, stage=stage, addr=addr, steps=steps, out=r["out"], size=r["size"],
                perm=_perm(stage, r) if r["ok"] else None,
                fault=None if r["ok"] else r["fault"])


def find(unit, addr: int, size: int, rid: int | None = None, limit: int = 10_000) -> dict:
    """Who maps PA [addr, addr+size) behind a VT-d unit: each requester's RID_PASID entry and
    the PASIDs its scenario gave it, read through the walker's reader (nested: IOVA -> GPA ->
    PA; first or second stage alone: IOVA -> PA; pass-through: the PA itself below the host
    address width). Hits as results.Find's, with smmu the unit, sid the RID, ssid the PASID."""
    hits, trees, truncated = [], 0, False
    end = addr + size
    for r, dev in sorted(unit.devices.items()):
        if rid is not None and r != rid:
            continue
        spec = getattr(dev, "spec", None) or {}
        pasids = [None] + sorted({p["pasid"] for p in spec.get("pasids", [])})
        seen = set()
        for pasid in pasids:
            try:
                g = geometry(unit, r, pasid, 2)
            except ModelError:
                continue
            if g["pasid"] in seen:
                continue
            seen.add(g["pasid"])
            trees += 1
            pgtt = g["pgtt"]
            if pgtt == "nested":
                rows = [(x["in"], x["size"], x["gpa"], x["pa"], x["fs_perm"], x["ss_perm"],
                         x["perm"], "nested") for x in nested(unit, r, pasid, 1 << 20)["rows"]
                        if x["pa"] is not None]
            elif pgtt in ("first_stage", "second_stage"):
                st = 1 if pgtt == "first_stage" else 2
                rows = [(x["in"], x["size"], None, x["out"], x["perm"] if st == 1 else None,
                         x["perm"] if st == 2 else None, x["perm"][:3], str(st))
                        for x in dump(unit, r, pasid, st, 1 << 20)["rows"]]
            elif pgtt == "pass_through":
                top = 1 << unit.haw
                rows = [(0, top, None, 0, None, None, "rwx", "pass-through")] if addr < top \
                    else []
            else:
                continue
            for iova, n, gpa, pa, p1, p2, perm, stage in rows:
                lo, hi = max(pa, addr), min(pa + n, end)
                if lo >= hi:
                    continue
                if len(hits) >= limit:
                    return {"hits": hits, "trees": trees, "truncated": True}
                off = lo - pa
                hits.append({"smmu": unit.name, "sid": r, "device": dev.name,
                             "ssid": g["pasid"], "stage": stage, "iova": iova + off,
                             "size": hi - lo, "ipa": None if gpa is None else gpa + off,
                             "pa": lo, "level": None, "s1_perm": p1, "s2_perm": p2,
                             "priv": perm, "unpriv": perm, "vmid": None, "asid": None,
                             "af": True, "ttb": None, "note": f"VT-d PASID {g['pasid']} "
                             f"({pgtt}, DID {g['did']})"})
    return {"hits": hits, "trees": trees, "truncated": truncated}
