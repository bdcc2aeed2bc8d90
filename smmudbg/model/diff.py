"""Differences between two states of a system (two dumps of one guest, two session positions):
registers, STEs, CDs, the mappings of each stream as ranges, queue positions and the event
records the second state has that the first has not.

Everything is read from memory and registers through the model's side-effect-free views (no
walk, no cache touched). SMMUs are matched by name, streams by StreamID, CDs by (StreamID,
SubstreamID), mappings by input address.
"""
from __future__ import annotations

from ..arch.fieldtable import fmt
from ..arch.smmuv3 import registers as R
from ..errors import ModelError
from .hazards import S1_CONFIGS, S2_CONFIGS

STE = fmt("STE")
_CONFIG = STE.field("Config")
CD = fmt("CD")
MAX_STREAMS = 4096          # StreamIDs compared per SMMU
MAX_CDS = 64                # SubstreamIDs compared per stream
MAX_ROWS = 20000            # page-table rows read per table tree
MAX_CONFIGS = 256           # distinct stream configurations whose mappings are compared


def _fields(f, a, b) -> list[dict]:
    va, vb = f.decode(a), f.decode(b)
    return [{"field": k, "a": va[k], "b": vb[k]} for k in va if va[k] != vb[k]]


def _registers(ma, mb) -> list[dict]:
    out = []
    for name in R.FORMATS:
        pa, pb = ma.register_provided(name), mb.register_provided(name)
        a = ma.regs[name] if pa else None
        b = mb.regs[name] if pb else None
        if a != b:
            out.append({"name": name, "a": a, "b": b})
    return out


def _stes(m) -> tuple[dict[int, list], bool]:
    rows, more = m.stream_table_entries(0, MAX_STREAMS)
    return {r["sid"]: r["words"] for r in rows}, more


def _cds(m, sid) -> dict[int, list]:
    try:
        return {e["ssid"]: e["words"] for e in m.cd_table(sid, max_cds=MAX_CDS)["cds"]}
    except ModelError:
        return {}


def _all_cds(m, stes) -> dict[int, dict]:
    """_cds of every stage-1 stream; streams with the same STE words (the same CD table) are
    read once."""
    by_words, out = {}, {}
    for sid, w in stes.items():
        if _CONFIG.get(w) not in S1_CONFIGS:
            continue
        key = tuple(w)
        if key not in by_words:
            by_words[key] = _cds(m, sid)
        out[sid] = by_words[key]
    return out


def _leaves(m, sid, ssid, stage) -> list[tuple] | None:
    """[(in, end, out, perm)] of a stream's tables, or None when they cannot be read."""
    try:
        d = m.stream_tables(sid, ssid, stage).dump(MAX_ROWS)
    except ModelError:
        return None
    return [(r["in"], r["end"], r["out"], r["perm"]) for r in d["rows"]
            if r["kind"] in ("block", "page")]


def _at(leaves, lo, hi):
    """The leaf covering [lo, hi] (leaves sorted, non-overlapping) as (out at lo, perm)."""
    import bisect
    i = bisect.bisect_right([x[0] for x in leaves], lo) - 1
    if i >= 0 and leaves[i][1] >= hi:
        return leaves[i][2] + (lo - leaves[i][0]), leaves[i][3]
    return None


def range_diff(a: list[tuple], b: list[tuple]) -> list[dict]:
    """Ranges where two sets of leaves (in, end, out, perm) differ: [{change (added, removed,
    changed), in, end, a_out, b_out, a_perm, b_perm}], adjacent pieces of one change merged
    when their outputs continue each other."""
    cuts = sorted({x[0] for x in a + b} | {x[1] + 1 for x in a + b})
    out = []
    for lo, nxt in zip(cuts, cuts[1:]):
        hi = nxt - 1
        x, y = _at(a, lo, hi), _at(b, lo, hi)
        if x == y:
            continue
        change = "added" if x is None else "removed" if y is None else "changed"
        row = {"change": change, "in": lo, "end": hi,
               "a_out": x[0] if x else None, "b_out": y[0] if y else None,
               "a_perm": x[1] if x else None, "b_perm": y[1] if y else None}
        last = out[-1] if out else None
        if last and last["change"] == change and last["end"] + 1 == lo \
                and last["a_perm"] == row["a_perm"] and last["b_perm"] == row["b_perm"] \
                and all(last[k] is None and row[k] is None or last[k] is not None and
                        row[k] is not None and last[k] + (lo - last["in"]) == row[k]
                        for k in ("a_out", "b_out")):
            last["end"] = hi
        else:
            out.append(row)
    return out


def _mappings(ma, mb, sids, cds_a, cds_b, stes_a, stes_b) -> tuple[list, bool]:
    out, seen, truncated = [], {}, False
    for sid in sids:
        ctxs = set()
        for stes, cds in ((stes_a, cds_a), (stes_b, cds_b)):
            w = stes.get(sid)
            if w is None:
                continue
            if _CONFIG.get(w) in S1_CONFIGS:
                ctxs |= {(ssid, 1) for ssid in cds.get(sid, {})}
            elif _CONFIG.get(w) in S2_CONFIGS:
                ctxs.add((None, 2))
        for ssid, stage in sorted(ctxs, key=lambda c: (c[0] or 0, c[1])):
            key = (tuple(stes_a.get(sid) or ()), tuple(stes_b.get(sid) or ()),
                   tuple(cds_a.get(sid, {}).get(ssid) or ()),
                   tuple(cds_b.get(sid, {}).get(ssid) or ()), ssid, stage)
            if key not in seen:
                if len(seen) >= MAX_CONFIGS:
                    truncated = True
                    continue
                la = _leaves(ma, sid, ssid, stage) if sid in stes_a else []
                lb = _leaves(mb, sid, ssid, stage) if sid in stes_b else []
                seen[key] = range_diff(la or [], lb or [])
            for r in seen[key]:
                out.append(dict(r, sid=sid, ssid=ssid, stage=stage))
    return out, truncated


def _queues(ma, mb) -> dict:
    q = {}
    for name, prod, cons in (("cmdq", "SMMU_CMDQ_PROD", "SMMU_CMDQ_CONS"),
                             ("eventq", "SMMU_EVENTQ_PROD", "SMMU_EVENTQ_CONS")):
        q[name] = {"a": {"prod": ma.regs[prod], "cons": ma.regs[cons]},
                   "b": {"prod": mb.regs[prod], "cons": mb.regs[cons]}}
    return q


def _new_events(ma, mb) -> list[dict]:
    """Event records in b's queue memory that a's does not hold (slot by slot)."""
    try:
        old = {(e["index"], e["raw"]) for e in ma.event_history()["entries"]}
        new = mb.event_history()["entries"]
    except ModelError:
        return []
    return [{"index": e["index"], "event": e["event"], "sid": e["fields"].get("StreamID"),
             "state": e["state"], "fields": e["fields"]}
            for e in new if (e["index"], e["raw"]) not in old]


def diff_systems(a, b) -> dict:
    """{smmus: [{smmu, only (None, "a" or "b"), registers, stes, stes_truncated (more than
    MAX_STREAMS valid STEs: the rest not compared), cds, mappings, mappings_truncated, queues,
    events}], identical}."""
    smmus = []
    for name in list(a.smmus) + [n for n in b.smmus if n not in a.smmus]:
        if name not in a.smmus or name not in b.smmus:
            smmus.append({"smmu": name, "only": "a" if name in a.smmus else "b"})
            continue
        ma, mb = a.smmus[name], b.smmus[name]
        (stes_a, more_a), (stes_b, more_b) = _stes(ma), _stes(mb)
        sids = sorted(set(stes_a) | set(stes_b))
        stes = []
        for sid in sids:
            x, y = stes_a.get(sid), stes_b.get(sid)
            if x == y:
                continue
            stes.append({"sid": sid, "change": "added" if x is None else "removed"
                         if y is None else "changed",
                         "fields": _fields(STE, x, y) if x and y else []})
        cds_a, cds_b = _all_cds(ma, stes_a), _all_cds(mb, stes_b)
        cds = []
        for sid in sids:
            ca, cb = cds_a.get(sid, {}), cds_b.get(sid, {})
            for ssid in sorted(set(ca) | set(cb)):
                x, y = ca.get(ssid), cb.get(ssid)
                if x == y:
                    continue
                cds.append({"sid": sid, "ssid": ssid, "change": "added" if x is None else
                            "removed" if y is None else "changed",
                            "fields": _fields(CD, x, y) if x and y else []})
        maps, cut = _mappings(ma, mb, sids, cds_a, cds_b, stes_a, stes_b)
        queues = _queues(ma, mb)
        smmus.append({"smmu": name, "only": None, "registers": _registers(ma, mb),
                      "stes": stes, "stes_truncated": more_a or more_b,
                      "cds": cds, "mappings": maps, "mappings_truncated": cut,
                      "queues": queues, "events": _new_events(ma, mb)})
    same = all(s["only"] is None and not (s["registers"] or s["stes"] or s["cds"]
                                           or s["mappings"] or s["events"])
               for s in smmus)
    return {"smmus": smmus, "identical": same}
