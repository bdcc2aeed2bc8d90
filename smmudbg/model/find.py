"""Reverse lookup: which (SMMU, StreamID, SubstreamID, input range) maps an output range.

`find pa=` asks every valid, legal STE of every SMMU: stage 1 (each CD's TTB0 and TTB1 trees,
as CD.EPD0/EPD1 allow), stage 2, nested (stage 2 inverted first: the IPA ranges that land in the
PA range; then stage 1 for outputs in those IPA ranges, its tables read through the same stage
2), bypass (Config=0b100: IOVA == PA, so every PA below the OAS) and the traffic without a
SubstreamID that STE.S1DSS=bypass sends past stage 1. `find ipa=` asks the streams with a
stage 2 (a VM's view): nested stage 1 outputs in the IPA range, and stage-2-only traffic
(Config=0b110, or S1DSS=bypass under a nested STE) whose stage 2 maps it. The scans run in core_cy.scan.find_leaves; each
distinct tree (root, geometry, permission context, stage 2 it is read through) is scanned once
per lookup, so streams sharing a domain share the result.
"""
from __future__ import annotations

import numpy as np

from core_cy.scan import fetch_cds, find_leaves

from ..arch.fieldtable import fmt
from ..arch.smmuv3 import consts as C
from ..errors import ModelError
from . import tables as T
from .hazards import S1_CONFIGS, S2_CONFIGS

STE = fmt("STE")
CD = fmt("CD")
_CONFIG = STE.field("Config")
ALL = (1 << 64) - 1
BYPASS_NOTE = "S1DSS=bypass: traffic without a SubstreamID skips stage 1"


def _row(m, sid, device, ssid, stage, iova, size, ipa, pa, level, p1, p2, vmid, asid,
         af=True, ttb=None, note=None):
    eff = p1 & p2
    return {"af": af, "ttb": ttb, "note": note, "smmu": m.name, "sid": sid, "device": device, "ssid": ssid, "stage": stage,
            "iova": iova, "size": size, "ipa": ipa, "pa": pa, "level": level,
            "s1_perm": None if p1 == 0x3F and stage in ("2", "bypass") else T.perm_str(1, p1),
            "s2_perm": None if p2 == 0x3F and stage in ("1", "bypass") else T.rwx(p2),
            "priv": T.rwx(eff), "unpriv": T.rwx(eff >> 3), "vmid": vmid, "asid": asid}


_UNSEEN = object()


class _Full(Exception):
    """The lookup has found more rows than its limit."""


class _Rows(list):
    """Result rows, at most limit of them: one more ends the lookup (a whole-space query of a
    large system would otherwise build millions of rows)."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit

    def append(self, row) -> None:
        if len(self) >= self.limit:
            raise _Full
        super().append(row)


class Finder:
    """One lookup over a System: scans cached by tree for its duration."""

    def __init__(self, system, limit: int = 10_000):
        self.system = system
        self.limit = limit
        self.truncated = False
        self.cache: dict = {}
        self.trees = 0
        self.descriptors = 0
        self.unreadable = 0
        self.nstreams = 0

    def scan(self, geo: T.Geometry, targets, s2geo: T.Geometry | None = None):
        """find_leaves over geo (read through s2geo), cached by tree and targets."""
        spec = geo.scan_spec()
        s2spec = s2geo.scan_spec() if s2geo is not None else None
        t = np.asarray(targets, dtype=np.uint64).reshape(-1, 3)
        key = (spec, s2spec, geo.va_base, t.tobytes())
        hit = self.cache.get(key)
        if hit is None:
            try:
                hit, descs, bad = find_leaves(self.system.mem, spec, t, s2spec, geo.va_base)
            except ValueError as e:
                raise ModelError(f"find: {geo.name} tables at {geo.root:#x}: {e}") from None
            self.trees += 1
            self.descriptors += descs
            self.unreadable += bad
            self.cache[key] = hit
        return hit

    # -- streams -------------------------------------------------------------------------------
    def each_stream(self, rows, smmu, sid, rows_of) -> None:
        """rows_of(out, Smmu, sid, STE words, device name) for every valid, legal STE in scope,
        in SMMU and StreamID order, its rows added to rows.

        The whole stream table is read by the core and streams are grouped by configuration
        (stream_groups: the same STE, or the same STE and single CD): the translation a stream
        gives is a function of its STE and CD (and the memory and SMMU behind them), never of
        its StreamID, so rows_of runs once per group, for its first stream, and the others
        take its rows with their own sid and device. (A large system has few distinct
        configurations among many thousands of streams.)"""
        for m in self.system.smmus.values():
            if smmu is not None and m.name != smmu:
                continue
            if sid is not None:
                try:
                    sids, uniq, group = [sid], [m.ste_words(sid)], [0]
                except ModelError:
                    continue
            else:
                sids, uniq, group = self.stream_groups(m)
            done: dict = {}            # group -> _rows_of_ste(): (first sid, rows, more) or None
            for s, g in zip(sids, group):
                t = done.get(g, _UNSEEN)
                if t is _UNSEEN:
                    t = done[g] = self._rows_of_ste(rows, m, s, uniq[g], rows_of)
                if t is None:
                    continue
                self.nstreams += 1
                rep, got, more = t
                if got and s != rep:
                    st = self.system.streams.get((m.name, s))
                    dev = st.name if st else None
                    got = [dict(r, sid=s, device=dev) for r in got]
                for r in got:
                    rows.append(r)
                if more:
                    raise _Full

    def stream_groups(self, m):
        """(StreamIDs, STE words of each group, group of each stream) of the valid STEs of m,
        streams grouped where their translation cannot differ: the same STE, or the same STE
        but for S1ContextPtr where the STE has a single CD (S1CDMax=0) and the CDs fetched
        (through the same stage 2, by leaves with the same attributes) are the same. Both the
        STEs and the CDs are read by the core (Smmu.valid_ste_words, core_cy.scan.fetch_cds);
        a CD fetch that does not simply succeed keeps the stream's own STE as its key."""
        sids, words = m.valid_ste_words()
        key = np.zeros((len(sids), 18), dtype=np.uint64)
        key[:, :8] = words
        one_cd = np.isin(_column(words, _CONFIG), list(S1_CONFIGS)) & \
            (_column(words, STE.field("S1CDMax")) == 0)
        if one_cd.any():
            self._key_by_cd(m, sids, words, np.nonzero(one_cd)[0], key)
        _, first, group = np.unique(key, axis=0, return_index=True, return_inverse=True)
        return sids.tolist(), words[first].tolist(), group.reshape(-1).tolist()

    def _key_by_cd(self, m, sids, words, idx, key):
        """key rows of the single-CD streams idx: their STE without S1ContextPtr, the CD words
        and the stage-2 leaf attributes of its fetch, and a 1 (a CD key)."""
        ptr = STE.field("S1ContextPtr")
        masked = words[idx].copy()
        masked[:, ptr.dword] &= ~np.uint64(ptr.inplace_mask)
        addrs = _column(words[idx], ptr) << np.uint64(ptr.address_shift)
        _, first, same = np.unique(masked, axis=0, return_index=True, return_inverse=True)
        same = same.reshape(-1)
        order = np.argsort(same, kind="stable")
        bounds = np.searchsorted(same[order], np.arange(len(first) + 1))
        for g in range(len(first)):
            members = order[bounds[g]:bounds[g + 1]]        # indexes into idx
            s2spec = None
            if _CONFIG.get(masked[first[g]].tolist()) in S2_CONFIGS:
                s2 = self.stage2(m, int(sids[idx[first[g]]]))
                if s2 is None:
                    continue                 # no usable stage 2: grouped by whole STE
                s2spec = s2.scan_spec()
            try:
                cd, leaf, ok = fetch_cds(self.system.mem, addrs[members], m.walker.oas_bits,
                                         s2spec)
            except ValueError:
                continue
            rows = idx[members[ok]]
            key[rows, :8] = masked[members[ok]]
            key[rows, 8:16] = cd[ok]
            key[rows, 16] = leaf[ok]
            key[rows, 17] = 1

    def _rows_of_ste(self, rows, m, s, ste, rows_of):
        """(s, its rows, more) of the stream s with this STE: at most as many rows as rows has
        room for (more: it has others, so the lookup ends with it), or None when the STE is
        not asked: invalid, illegal (C_BAD_STE) or Config=abort."""
        if not STE.field("V").get(ste) or m.check_ste(ste):
            return None
        st = self.system.streams.get((m.name, s))
        out = _Rows(rows.limit - len(rows))
        try:
            rows_of(out, m, s, ste, st.name if st else None)
        except _Full:
            return s, list(out), True
        return s, list(out), False

    @staticmethod
    def stage2(m, sid):
        """The stream's stage-2 Geometry, or None when the walker would not use it."""
        try:
            return m.stage_geometry(sid, 2)
        except ModelError:
            return None

    def cds(self, m, sid, ste):
        """(ssid, stage-1 Geometry, ASID) of every table tree of every CD of the stream the
        walker would use (its geometry: Walker.stage_config): TTB0 unless CD.EPD0, TTB1 (the top
        of the VA space) unless CD.EPD1 or the stream is EL2 (one VA range). ssid is the
        SubstreamID the traffic using the CD carries, None for traffic without one (IHI 0070
        5.2: with S1CDMax=0 every transaction uses CD 0; with S1DSS=substream0 CD 0 serves only
        transactions without a SubstreamID, those with SubstreamID 0 are terminated)."""
        try:
            t = m.cd_table(sid)
        except ModelError:
            return
        nested = _CONFIG.get(ste) == C.STE_Config_nested
        cdmax = STE.field("S1CDMax").get(ste)
        s1dss = STE.field("S1DSS").get(ste)
        for c in t["cds"]:
            ssid = c["ssid"]
            if cdmax == 0 or (ssid == 0 and s1dss == C.STE_S1DSS_substream0):
                ssid = None
            elif ssid >> cdmax:
                continue                       # beyond S1CDMax: no transaction reaches it
            cfg = m.stage_config(sid, ssid)["stage1"]
            if cfg is None:
                continue                       # illegal CD, or no stage 1 for that traffic
            for n in (0, 1):
                if n == 1 and cfg["el2"]:
                    continue                   # EL2 (E2H=0): no TTB1
                try:
                    geo = T.Geometry.from_stage_config(cfg, 1, xnx=bool(
                        m.features.get("XNX", 1)), ttb=n)
                except ModelError:
                    continue                   # walks through this table disabled (EPDn)
                if nested:
                    geo.name = f"nested stage 1 (TTB{n})"
                yield ssid, geo, cfg["asid"]

    @staticmethod
    def s1_bypassed(ste) -> bool:
        """Whether transactions without a SubstreamID skip stage 1 (S1CDMax != 0 and
        S1DSS=0b01 bypass, IHI 0070 5.2): they see only stage 2 (Config=nested) or none."""
        return bool(_CONFIG.get(ste) in S1_CONFIGS and STE.field("S1CDMax").get(ste) and
                    STE.field("S1DSS").get(ste) == C.STE_S1DSS_bypass)

    # -- find pa= ------------------------------------------------------------------------------
    def find_pa(self, lo: int, end: int, smmu=None, sid=None) -> list[dict]:
        """Every mapping of PA [lo, end), as rows (see results.Find); the first `limit` rows
        (truncated set) when there are more."""
        rows = _Rows(self.limit)
        try:
            self._find_pa(rows, lo, end, smmu, sid)
        except _Full:
            self.truncated = True
        return list(rows)

    def _find_pa(self, rows, lo, end, smmu, sid):
        target = [(lo, end, lo)]
        self.each_stream(rows, smmu, sid,
                         lambda out, m, s, ste, dev: self._pa_rows(out, m, s, ste, dev, target,
                                                                   lo, end))

    def _pa_rows(self, rows, m, s, ste, dev, target, lo, end):
        """The rows of the stream s (STE ste) that map PA [lo, end) (target)."""
        cfg = _CONFIG.get(ste)
        vmid = STE.field("S2VMID").get(ste) if cfg in S2_CONFIGS else None
        bypassed = self.s1_bypassed(ste)
        note = BYPASS_NOTE if bypassed else None
        if cfg == C.STE_Config_bypass or (bypassed and cfg not in S2_CONFIGS):
            # Bypass maps each PA to itself, within the OAS (beyond it: F_ADDR_SIZE).
            top = min(end, 1 << m.walker.oas_bits)
            if lo < top:
                rows.append(_row(m, s, dev, None, "bypass", lo, top - lo, None, lo, None,
                                 0x3F, 0x3F, None, None,
                                 note=None if cfg == C.STE_Config_bypass else note))
            if cfg == C.STE_Config_bypass:
                return
        s2 = self.stage2(m, s) if cfg in S2_CONFIGS else None
        if cfg in S2_CONFIGS and s2 is None:
            return
        if s2 is not None and (cfg not in S1_CONFIGS or bypassed):
            for h in self.scan(s2, target):
                rows.append(_row(m, s, dev, None, "2", int(h[0]), int(h[1]), None,
                                 int(h[3]), int(h[5]), 0x3F, int(h[6]), vmid, None,
                                 _af(2, h[4]), note=note))
            if cfg not in S1_CONFIGS:
                return
        if s2 is None:
            for ssid, geo, asid in self.cds(m, s, ste):
                for h in self.scan(geo, target):
                    rows.append(_row(m, s, dev, ssid, "1", int(h[0]), int(h[1]), None,
                                     int(h[3]), int(h[5]), int(h[6]), 0x3F, None, asid,
                                     _af(1, h[4]), _ttb(geo)))
            return
        # Nested: IPA ranges that land in the PA range, then stage 1 into them.
        inv = self.scan(s2, target)
        if not len(inv):
            return
        ipa_targets = np.stack([inv[:, 0], inv[:, 0] + inv[:, 1], inv[:, 3]], axis=1)
        for ssid, geo, asid in self.cds(m, s, ste):
            for h in self.scan(geo, ipa_targets, s2):
                ipa = int(h[2])
                k = int(np.searchsorted(inv[:, 0], np.uint64(ipa), side="right")) - 1
                rows.append(_row(m, s, dev, ssid, "nested", int(h[0]), int(h[1]), ipa,
                                 int(h[3]), int(h[5]), int(h[6]), int(inv[k, 6]), vmid,
                                 asid, _af(1, h[4]) and _af(2, inv[k, 4]), _ttb(geo)))

    # -- find ipa= -----------------------------------------------------------------------------
    def find_ipa(self, lo: int, end: int, smmu=None, sid=None, vmids=None) -> list[dict]:
        """find_ipa_rows, at most `limit` rows (truncated set when there are more)."""
        rows = _Rows(self.limit)
        try:
            self._find_ipa(rows, lo, end, smmu, sid, vmids)
        except _Full:
            self.truncated = True
        rows = list(rows)
        rows.sort(key=lambda r: (r["smmu"], r["sid"], -1 if r["ssid"] is None else r["ssid"],
                                 r["iova"]))
        return rows

    def _find_ipa(self, rows, lo, end, smmu, sid, vmids):
        """Every mapping of IPA [lo, end) by streams with a stage 2 (VMID in vmids if given):
        nested stage-1 inputs whose output is in the range, and stage-2-only streams (whose
        input is the IPA) where their stage 2 maps it. pa: where the IPA lands (or null)."""
        self.each_stream(rows, smmu, sid,
                         lambda out, m, s, ste, dev: self._ipa_rows(out, m, s, ste, dev, lo,
                                                                    end, vmids))

    def _ipa_rows(self, rows, m, s, ste, dev, lo, end, vmids):
        """The rows of the stream s (STE ste) that map IPA [lo, end)."""
        cfg = _CONFIG.get(ste)
        if cfg not in S2_CONFIGS:
            return
        vmid = STE.field("S2VMID").get(ste)
        if vmids is not None and vmid not in vmids:
            return
        s2 = self.stage2(m, s)
        if s2 is None:
            return
        # Stage 2 by input: every leaf (all outputs), then clipped to the IPA range.
        s2all = self.scan(s2, [(0, ALL, 0)])
        bypassed = self.s1_bypassed(ste)
        if cfg not in S1_CONFIGS or bypassed:
            for h in _clip_inputs(s2all, lo, end):
                rows.append(_row(m, s, dev, None, "2", h[0], h[1], h[0], h[2], h[3],
                                 0x3F, h[4], vmid, None,
                                 note=BYPASS_NOTE if bypassed else None))
            if cfg not in S1_CONFIGS:
                return
        for ssid, geo, asid in self.cds(m, s, ste):
            for h in self.scan(geo, [(lo, end, lo)], s2):
                ipa, size = int(h[2]), int(h[1])
                # Split by how stage 2 maps the IPAs (or does not).
                cur = ipa
                for p in _clip_inputs(s2all, ipa, ipa + size) + [(ipa + size, 0)]:
                    if p[0] > cur:         # IPAs stage 2 does not map
                        rows.append(_row(m, s, dev, ssid, "nested", int(h[0]) + cur - ipa,
                                         p[0] - cur, cur, None, int(h[5]), int(h[6]), 0,
                                         vmid, asid, ttb=_ttb(geo)))
                    if p[1]:
                        rows.append(_row(m, s, dev, ssid, "nested",
                                         int(h[0]) + p[0] - ipa, p[1], p[0], p[2],
                                         int(h[5]), int(h[6]), p[4], vmid, asid,
                                         ttb=_ttb(geo)))
                    cur = p[0] + p[1]


def _column(words, f):
    """Field f of every row of an (n, dwords) uint64 array."""
    return (words[:, f.dword] >> np.uint64(f.lo)) & np.uint64(f.mask)


def _ttb(geo) -> str:
    return "TTB1" if geo.va_base else "TTB0"


def _af(stage: int, d) -> bool:
    """The leaf's access flag (AF=0: a walk faults F_ACCESS unless AFFD or hardware update)."""
    return bool(T.leaf_af(stage, int(d)))


def _clip_inputs(hits, lo: int, end: int) -> list:
    """Leaves of a full scan (rows in input order) whose input overlaps [lo, end), clipped:
    [(input, size, output, level, perm)]."""
    if not len(hits):
        return []
    starts = hits[:, 0]
    k = max(0, int(np.searchsorted(starts, np.uint64(lo), side="right")) - 1)
    out = []
    while k < len(hits) and int(starts[k]) < end:
        a, n = int(hits[k, 0]), int(hits[k, 1])
        b = max(a, lo)
        e = min(a + n, end)
        if b < e:
            out.append((b, e - b, int(hits[k, 2]) + b - a, int(hits[k, 5]), int(hits[k, 6])))
        k += 1
    return out
