"""What commands ask of an SMMU beyond programming it: inspection without side effects,
software's stores to STEs/CDs, cache listings, event records with their addresses.

Smmu inherits SmmuViews (model/smmu.py). Every method returns model data (ints, lists, dicts)
and turns core exceptions (MemFault, ...) into one-line ModelErrors, so the commands above
never import core_cy.
"""
from __future__ import annotations

import numpy as np

from core_cy.physmem import MemFault
from core_cy.ptbuild import BuildError
from core_cy.scan import spanned_l1stds, valid_stes
from core_cy.vmsa import region_bits

from ..arch.fieldtable import fmt
from ..arch.smmuv3 import consts as C
from ..arch.smmuv3.events import event_format
from ..arch.smmuv3.geometry import cd_geometry
from ..errors import ModelError
from . import hazards
from .cmdq import ring_history
from . import tables as T

STE = fmt("STE")
CD = fmt("CD")
L1STD = fmt("L1STD")
L1CD = fmt("L1CD")
_L1CD_V = L1CD.field("V")
# Why Walker.read_cd rejects SubstreamID 0 where CD 0 is the no-SubstreamID CD.
_SSID0_ILLEGAL = {C.REASON_TEXT[r] for r in (C.R_SSV_CDMAX0, C.R_SSID0_S1DSS,
                                               C.R_SSID0_DISABLED)}

# Event types a dry walk of the recorded transaction can explain (model/explain.py).
EXPLAINED = {"C_BAD_STREAMID", "F_STE_FETCH", "C_BAD_STE", "F_STREAM_DISABLED",
             "C_BAD_SUBSTREAMID", "F_CD_FETCH", "C_BAD_CD", "F_WALK_EABT", "F_TRANSLATION",
             "F_ADDR_SIZE", "F_ACCESS", "F_PERMISSION"}

# Event record fields that hold an address, and the key the address goes under.
EVENT_ADDRESSES = (("IPA", "ipa"), ("FetchAddr", "fetch_addr"))


def _with_addresses(e: dict) -> dict:
    """An event record with ipa (from IPA[55:12]) and fetch_addr (from FetchAddr[55:3]) as
    addresses, or None when the record type has no such field."""
    f = event_format(int(e["raw"][:2], 16))
    for name, key in EVENT_ADDRESSES:
        v = e["fields"].get(name)
        e[key] = None if v is None else v << f.field(name).lo
    return e


def _why(r: dict) -> str:
    """What a core reader's result says went wrong: the reason, else the fault."""
    f = r["fault"]
    if r["reason"]:
        return r["reason"]
    if f is None:
        return "not read"
    at = f" at {f['fetch_addr']:#x}" if f.get("fetch_addr") is not None else ""
    return f"{f['type']}{at}"


def _l1(r: dict, fetch_fault: str):
    """The L1 descriptor a reader result holds, or None when it was not read."""
    f = r["fault"]
    if r["l1"] is None or (f and f["type"] == fetch_fault and f["fetch_addr"] == r["l1_pa"]):
        return None
    return r["l1"]


def store_words(mem, pa: int, old: list, new: list) -> list[int]:
    """Write the dwords that changed as 64-bit stores, dword 0 last (so a V=1 in dword 0 is
    the last thing software makes visible). Returns the dword order written."""
    order = [i for i in range(1, len(new)) if new[i] != old[i]]
    if new[0] != old[0]:
        order.append(0)
    for i in order:
        try:
            mem.write_u64(pa + 8 * i, new[i])
        except MemFault as e:
            raise ModelError(f"store to {pa + 8 * i:#x}: {e}") from None
    return order


def read_words(mem, pa: int, n: int, what: str = "") -> list[int]:
    try:
        return mem.read_words(pa, n)
    except MemFault as e:
        raise ModelError(f"{what + ' at ' if what else ''}{pa:#x}: {e}") from None



class SmmuViews:
    """Mixed into Smmu: needs self.mem, self.walker, self.name, self.ste_addr, self.events."""

    # -- memory as software sees it ------------------------------------------------------------
    def read_words(self, pa: int, n: int = 8, what: str = "") -> list[int]:
        """n dwords at pa (ModelError when the memory is not there)."""
        return read_words(self.mem, pa, n, what)

    def store_words(self, pa: int, old: list, new: list) -> list[int]:
        """Software's stores of the dwords that changed, dword 0 last; returns the order."""
        return store_words(self.mem, pa, old, new)

    def ste_entry(self, sid: int) -> dict:
        """The STE of sid as the SMMU finds it now (Walker.read_ste: caches bypassed, nothing
        changed): {sid, pa, words, table (the linear table or the L2 array), index (in it),
        l1_pa, l1 (the L1STD, 2-level, else None), problem (why the SMMU rejects it, or "")}.
        ModelError when the stream table does not reach it or it cannot be read."""
        r = self._read_ste(sid)
        if r["words"] is None:
            where = f" at {r['ste_pa']:#x}" if r["ste_pa"] is not None else ""
            raise ModelError(f"{self.name}: STE of StreamID {sid:#x}{where}: "
                             f"{_why(r)}")
        return {"sid": sid, "pa": r["ste_pa"], "words": r["words"], "table": r["table"],
                "index": r["index"], "l1_pa": r["l1_pa"], "l1": r["l1"],
                "problem": r["reason"]}

    def _read_ste(self, sid: int) -> dict:
        try:
            return self.walker.read_ste(sid)
        except OverflowError:
            raise ModelError(f"StreamID {sid:#x} does not fit in 32 bits") from None

    def ste_location(self, sid: int, create: bool = False) -> int:
        """PA of the STE of sid (ModelError when the stream table does not reach it); with
        create, software allocates the L2 array of a 2-level table first if it has none."""
        if create:
            try:
                return self.ste_addr(sid, create=True)
            except MemFault as e:
                raise ModelError(f"{self.name}: L1STD of StreamID {sid:#x}: {e}") from None
        return self.ste_entry(sid)["pa"]

    def ste_words(self, sid: int) -> list[int]:
        """The STE of sid as in memory (ModelError when it is not there)."""
        return self.ste_entry(sid)["words"]

    def _read_cd(self, sid: int, ssid) -> dict:
        """Walker.read_cd for CD number ssid of the stream's CD table (None: the CD a
        transaction without a SubstreamID uses). CD 0 is also the one traffic without a
        SubstreamID uses where a SubstreamID of 0 is not allowed (S1CDMax=0, S1DSS=substream0),
        so it is read that way there."""
        return self._as_ssid0(self.walker.read_cd, sid, ssid)

    def _as_ssid0(self, reader, sid: int, ssid):
        """reader(sid, ssid) of a core reader, SubstreamID 0 read as no SubstreamID where CD 0
        is the one traffic without a SubstreamID uses; core errors as ModelErrors."""
        try:
            r = reader(sid, ssid)
            if ssid == 0 and r["reason"] in _SSID0_ILLEGAL:
                r = reader(sid, None)
        except (ValueError, OverflowError) as e:
            raise ModelError(f"{self.name}: {e}") from None
        return r

    def _ste_with_s1(self, sid: int) -> list[int]:
        """The STE words of sid; ModelError when its Config has no stage 1 (no CD table)."""
        ste = self.ste_words(sid)
        cfg = STE.field("Config").get(ste)
        if cfg not in hazards.S1_CONFIGS:
            raise ModelError(f"{self.name} StreamID {sid:#x}: STE.Config="
                             f"{STE.field('Config').value_name(cfg)} has no stage 1, "
                             f"so no CD table")
        return ste

    def cd_entry(self, sid: int, ssid: int) -> dict:
        """The CD of (sid, ssid) found through the STE as the SMMU finds it (Walker.read_cd):
        {ste (words), addr (an IPA when the STE is nested), pa, l1 (address of the L1CD or
        None), table, index (in the linear table or the leaf array), words}."""
        ste = self._ste_with_s1(sid)
        r = self._read_cd(sid, ssid)
        if r["words"] is None:
            where = f" at {r['cd_pa']:#x}" if r["cd_pa"] is not None else ""
            raise ModelError(f"{self.name}: CD of StreamID {sid:#x} SubstreamID {ssid}{where}: "
                             f"{_why(r)}")
        nested = r["cd_ipa"] is not None
        return {"ste": ste, "addr": r["cd_ipa"] if nested else r["cd_pa"], "pa": r["cd_pa"],
                "l1": r["l1_ipa"] if nested else r["l1_pa"], "table": r["table"],
                "index": r["index"], "words": r["words"]}

    #: STE and L1STD slots one `strtab` looks at, at most: a table as large as the architecture
    #: allows (2^32 STEs) is listed in bounded time; `more` says where to continue.
    SCAN_SLOTS = 1 << 18

    def _backed_words(self, pa: int, n: int) -> tuple[list[int] | None, int]:
        """(up to n dwords from pa to the end of its page, or of its 64 KiB in flat RAM
        (little-endian, as the host), or None where no memory is; how many dwords that
        covers). Nothing-behind spans are skipped up to the next region."""
        page_end = (pa | 0xFFF) + 1
        if self.mem.is_backed(pa):
            r = self.mem.region_at(pa)
            if r is not None and r.kind in ("ram", "image"):
                # flat: read up to 64 KiB (below malloc's mmap threshold: a bigger buffer is
                # fresh pages each time, and faulting them in costs more than the copy)
                page_end = min(r.base + r.size, (pa | 0xFFFF) + 1)
            k = min(n, (page_end - pa) // 8)
            return memoryview(self.mem.read(pa, 8 * k)).cast("Q"), k
        nxt = min((b for b, size, kind in self.mem.regions() if b > pa and kind != "mmio"),
                  default=1 << 64)
        if self.mem.region_at(pa) is not None:
            nxt = page_end       # (MMIO, or non-strict memory: go page by page)
        return None, max(1, min(n, (nxt - pa) // 8))

    def stream_table_entries(self, first: int, count: int, all: bool = False):
        """STEs from StreamID first on: ([{sid, addr, words}] of valid ones (every one with
        all), at most count; whether more may follow). The table's effective size bounds the
        walk (min(LOG2SIZE, SIDSIZE)); 2-level: L1 descriptors with Span=0 are skipped as a
        block; memory with nothing behind it is skipped; after SCAN_SLOTS slots, more=True."""
        rows = []
        for scanned, stes in self.scan_stream_table(first, all):
            for sid, a, words in stes:
                if len(rows) >= count:
                    return rows, True
                rows.append({"sid": sid, "addr": a, "words": words})
            if scanned >= self.SCAN_SLOTS:
                return rows, True
        return rows, False

    def scan_stream_table(self, first: int = 0, all: bool = False):
        """Yields (slots scanned so far, [(sid, addr, words)] of the valid STEs (all with all)
        of the next span): memory is read a page (or a MiB of RAM) at a time, L1STDs with
        Span=0 and nothing-behind spans are skipped in bulk, so the work follows the memory
        behind the table, not its architected size (2^32 STEs, 2^26 L1STDs)."""
        geo = self.strtab_geometry
        total, scanned = 1 << geo.log2size, 0
        if not geo.two_level:
            s = first
            while s < total:
                stes, step = self._ste_span(geo.ste_addr(s), s, total - s, all)
                scanned += step if stes is not None else 1
                yield scanned, stes or []
                s += step
            return
        split = geo.split
        l1i, n_l1 = first >> split, max(1, total >> split)
        while l1i < n_l1:
            l1pa = geo.l1_entry_addr(l1i)
            l1s, k = self._backed_words(l1pa, n_l1 - l1i)
            if l1s is None:
                read_words(self.mem, l1pa, 1, f"{self.name}: L1STD")     # raises ModelError
            scanned += k
            # The L1STDs with Span != 0, found by the core's scan.
            for j, l1, span in zip(*(a.tolist() for a in spanned_l1stds(self.mem, l1pa, k))):
                if not geo.span_ok(span):
                    continue         # reserved: no STEs reached (C_BAD_STREAMID), as the walker
                s0 = (l1i + j) << split
                n_l2 = min(len(geo.l2_sids(l1i + j, l1)), total - s0)
                idx = first - s0 if first > s0 else 0
                # The L2 array is aligned to its size, as the walker reads it.
                l2 = geo.l2_ste_addr(l1, s0)
                while idx < n_l2:
                    stes, step = self._ste_span(l2 + STE.size * idx, s0 + idx, n_l2 - idx, all)
                    scanned += step if stes is not None else 1
                    yield scanned, stes or []
                    idx += step
            yield scanned, []
            l1i += k

    def _ste_span(self, addr: int, sid: int, n: int, all: bool):
        """([(sid, addr, words)] of the valid (all: every) STEs of up to n from addr, or None
        where nothing is behind addr; how many STEs that covers)."""
        dwords, k = self._backed_words(addr, 8 * n)
        step = max(1, k // 8)
        if dwords is None:
            return None, step
        # The valid ones by the core's scan (most of a big table is V=0).
        idx = range(k // 8) if all else valid_stes(self.mem, addr, k // 8).tolist()
        return [(sid + i, addr + 64 * i, dwords[8 * i:8 * i + 8].tolist()) for i in idx], step

    def valid_sids(self) -> list[int]:
        """StreamIDs whose STE has V=1, found by a scan in the core (a 2-level table: the L2
        arrays its L1STDs reach, as far as each Span covers)."""
        return [first + x for first, base, n in self._ste_arrays()
                for x in valid_stes(self.mem, base, n).tolist()]

    def valid_ste_words(self):
        """valid_sids() and their STEs, both read by the core: (StreamIDs as a uint64 array,
        their STEs as a (k, 8) uint64 array of dwords), in StreamID order."""
        sids, words = [np.empty(0, np.uint64)], [np.empty((0, 8), np.uint64)]
        for first, base, n in self._ste_arrays():
            i, w = valid_stes(self.mem, base, n, words=True)
            sids.append(i + np.uint64(first))
            words.append(w)
        return np.concatenate(sids), np.concatenate(words)

    def _ste_arrays(self):
        """(first StreamID, address, number of STEs) of each array of STEs the stream table
        reaches: the linear table, or the L2 arrays of the L1STDs whose Span covers some."""
        geo = self.strtab_geometry
        n = 1 << geo.log2size
        if not geo.two_level:
            yield 0, geo.base, n
            return
        for i, l1, span in zip(*(a.tolist() for a in spanned_l1stds(self.mem, geo.base,
                                                                    geo.n_l1))):
            if not geo.span_ok(span):
                continue                 # reserved: no STEs reached (C_BAD_STREAMID)
            first = i << geo.split
            n_l2 = min(len(geo.l2_sids(i, l1)), n - first)
            yield first, geo.l2_ste_addr(l1, first), n_l2

    def cd_table(self, sid: int, all: bool = False, max_cds: int = 4096) -> dict:
        """The CD table of a stream: {ste, ipa (table addresses are IPAs), l1: [{index, addr,
        words}], cds: [{ssid, addr, pa, words}], truncated}; valid entries only unless all.
        Read with Walker.read_cd, so through stage 2 when nested, as the SMMU reads it."""
        ste = self._ste_with_s1(sid)
        cfg = STE.field("Config").get(ste)
        geo = cd_geometry(ste)
        cds, l1s = [], []
        ssid = 0
        while ssid < min(geo.n_cds, max_cds):
            r = self._read_cd(sid, ssid)
            if geo.two_level and ssid == geo.l1_index(ssid) << geo.leaf_bits:
                l1 = _l1(r, "F_CD_FETCH")
                if l1 is not None and (_L1CD_V.get([l1]) or all):
                    l1s.append({"index": geo.l1_index(ssid),
                                "addr": r["l1_ipa"] if r["l1_ipa"] is not None else r["l1_pa"],
                                "words": [l1]})
                if r["cd_pa"] is None:          # no leaf array: skip its SubstreamIDs
                    ssid = (geo.l1_index(ssid) + 1) << geo.leaf_bits
                    continue
            if r["words"] is not None and (CD.field("V").get(r["words"]) or all):
                cds.append({"ssid": ssid, "pa": r["cd_pa"], "words": r["words"],
                            "addr": r["cd_ipa"] if r["cd_ipa"] is not None else r["cd_pa"]})
            ssid += 1
        if geo.two_level:       # L1CDs beyond max_cds
            for i in range(geo.l1_index(ssid - 1) + 1 if ssid else 0, geo.n_l1):
                r = self._read_cd(sid, i << geo.leaf_bits)
                l1 = _l1(r, "F_CD_FETCH")
                if l1 is not None and (_L1CD_V.get([l1]) or all):
                    l1s.append({"index": i, "words": [l1],
                                "addr": r["l1_ipa"] if r["l1_ipa"] is not None else r["l1_pa"]})
        return {"ste": ste, "ipa": cfg == C.STE_Config_nested, "l1": l1s, "cds": cds,
                "truncated": geo.n_cds > max_cds}

    def stage_config(self, sid: int, ssid=None) -> dict:
        """Walker.stage_config for (sid, ssid): the checked translation configuration the
        walker would use (SubstreamID 0 read as the no-SubstreamID CD where that is CD 0)."""
        return self._as_ssid0(self.walker.stage_config, sid, ssid)

    def stage_geometry(self, sid: int, stage: int, ssid: int | None = None, xlate=None):
        """The Geometry (tables.py) of the stream's stage-1 tables for the CD of ssid (default
        0) or of its stage-2 tables, as the walker configures them; ModelError when the walker
        would not use that stage (the reason, or the fault)."""
        r = self.stage_config(sid, (ssid or 0) if stage == 1 else ssid)
        if stage == 2 and r["stage2"] is None and ssid is None:
            # traffic without a SubstreamID may be terminated (S1DSS=terminate) while
            # SubstreamID 0 reaches the same stage 2
            r2 = self.stage_config(sid, 0)
            r = r2 if r2["stage2"] is not None else r
        cfg = r["stage1" if stage == 1 else "stage2"]
        if cfg is None:
            what = f"SubstreamID {ssid or 0} " if stage == 1 else ""
            raise ModelError(f"{self.name} StreamID {sid:#x} {what}has no usable stage {stage}: "
                             f"{_why(r)}")
        try:
            return T.Geometry.from_stage_config(cfg, stage, xlate,
                                                xnx=bool(self.features.get("XNX", 1)))
        except ModelError as e:
            raise ModelError(f"{self.name} StreamID {sid:#x} SubstreamID {ssid or 0}: "
                             f"{e}") from None

    def stream_tables(self, sid: int, ssid: int | None = None, stage: int | None = None):
        """The translation tables a stream uses (Tables): stage 1 of its CD for ssid (default
        0; through stage 2 when nested) or stage 2; default stage 1 when the STE has one."""
        ste = self.ste_words(sid)
        cfg = STE.field("Config").get(ste)
        want = stage or (1 if cfg in hazards.S1_CONFIGS else 2)
        if want == 2:
            if cfg not in hazards.S2_CONFIGS:
                raise ModelError(f"{self.name} StreamID {sid:#x}: the STE has no stage 2")
            return self.stage_geometry(sid, 2).bind(self.mem)
        self.cd_entry(sid, ssid or 0)          # a CD that cannot be read says why
        xlate = None
        if cfg == C.STE_Config_nested:
            try:
                xlate = T.space_xlate(self.walker.ipa_space(sid))
            except ValueError as e:
                raise ModelError(f"{self.name}: {e}") from None
        return self.stage_geometry(sid, 1, ssid, xlate).bind(self.mem)

    def nested_tables(self, sid: int, ssid: int | None = None, limit: int = 4000) -> dict:
        """The combined IOVA -> IPA -> PA view of a nested stream (tables.nested_dump) for the
        CD of ssid (default 0): {s1 (Tables), s2 (Tables), rows, truncated}."""
        ste = self.ste_words(sid)
        if STE.field("Config").get(ste) != C.STE_Config_nested:
            raise ModelError(f"{self.name} StreamID {sid:#x}: the STE is not nested (Config="
                             f"{STE.field('Config').value_name(STE.field('Config').get(ste))})")
        s1 = self.stream_tables(sid, ssid, 1)
        s2 = self.stream_tables(sid, None, 2)
        d = T.nested_dump(s1.geo, s2.geo, self.mem, limit)
        return {"s1": s1, "s2": s2, "rows": d["rows"], "truncated": d["truncated"]}

    def is_nested(self, sid: int) -> bool:
        """The STE of sid has both stages (its stage-1 tables are IPAs)."""
        return STE.field("Config").get(self.ste_words(sid)) == C.STE_Config_nested

    def stream_domains(self, sid: int, max_ssids: int = 64) -> dict:
        """The translation contexts a stream's STE selects, as keys streams can share:
        {s2: (VMID, S2TTB) or None, s1: [(ssid, ASID, TTB0)] of its valid CDs (the first
        max_ssids SubstreamIDs; TTB0 an IPA when nested)}. Unreadable parts are left out."""
        try:
            ste = self.ste_words(sid)
        except ModelError:
            return {"s2": None, "s1": []}
        out = {"s2": None, "s1": []}
        if not STE.field("V").get(ste) or self.check_ste(ste):
            return out
        cfg = STE.field("Config").get(ste)
        if cfg in hazards.S2_CONFIGS:
            out["s2"] = (STE.field("S2VMID").get(ste), STE.field("S2TTB").address(ste))
        if cfg in hazards.S1_CONFIGS:
            try:
                t = self.cd_table(sid, max_cds=max_ssids)
            except ModelError:
                return out
            for e in t["cds"]:
                out["s1"].append((e["ssid"], CD.field("ASID").get(e["words"]),
                                  CD.field("TTB0").address(e["words"])))
        return out

    def register_provided(self, name: str) -> bool:
        """Whether the register holds a known value: always for a modeled SMMU; for an
        imported snapshot only the registers it gave (importers set regs_provided)."""
        provided = getattr(self, "regs_provided", None)
        return provided is None or name in provided

    # -- architected checks --------------------------------------------------------------------
    def check_ste(self, words) -> str:
        """Why the SMMU would reject this STE (C_BAD_STE), "STE.Config=abort", or ""."""
        return self.walker.check_ste(list(words))

    def check_cd(self, words, ste_words) -> str:
        """Why the SMMU would reject this CD under this STE (C_BAD_CD), or ""."""
        return self.walker.check_cd(list(words), list(ste_words))

    def update_hazards(self, old, new, kind: str, order=None) -> dict:
        """hazards.analyze for an STE ("ste") or CD ("cd") update from old to new."""
        return hazards.analyze(old, new, kind, order=order, walker=self.walker)

    # -- caches --------------------------------------------------------------------------------
    def cached_ste(self, sid: int) -> dict | None:
        return next((c for c in self.walker.cached_stes() if c["sid"] == sid), None)

    def cached_cd(self, sid: int, ssid: int) -> dict | None:
        return next((c for c in self.walker.cached_cds()
                     if c["sid"] == sid and c["ssid"] == ssid), None)

    def cached_entries(self) -> tuple[list[dict], list[dict]]:
        """(cached STEs, cached CDs): {sid, (ssid,) pa, words, memory (words now in memory,
        or None when unreadable), stale}."""
        out = []
        for lst, key, n in ((self.walker.cached_stes(), "ste_pa", STE.nwords),
                            (self.walker.cached_cds(), "cd_pa", CD.nwords)):
            rows = []
            for c in lst:
                try:
                    mem = self.mem.read_words(c[key], n)
                except MemFault:
                    mem = None
                row = {"sid": c["sid"], "pa": c[key], "words": c["words"], "memory": mem,
                       "stale": mem != c["words"]}
                if "ssid" in c:
                    row["ssid"] = c["ssid"]
                rows.append(row)
            out.append(rows)
        return out[0], out[1]

    def tlb_entries(self, vmid: int | None = None, asid: int | None = None) -> list[dict]:
        return [e for e in self.walker.tlb_entries()
                if (vmid is None or e["vmid"] == vmid) and (asid is None or e["asid"] == asid)]

    def tlb_stats(self) -> dict:
        return self.walker.tlb_stats()

    # -- events --------------------------------------------------------------------------------
    def event_records(self) -> list[dict]:
        """events() with the addresses a record holds as addresses: ipa (from IPA[55:12]) and
        fetch_addr (from FetchAddr[55:3]), or None when the record type has no such field."""
        out = []
        try:
            records = self.events()
        except MemFault as e:
            raise ModelError(f"{self.name}: event queue: {e}") from None
        for e in records:
            out.append(self._explained(_with_addresses(dict(e, state="pending"))))
        return out

    def _explained(self, e: dict) -> dict:
        """e with its explanation (explain_event; None for records without an InputAddr)."""
        inp = e["fields"].get("InputAddr")
        e["explanation"] = None if inp is None else self.explain_event(
            e["event"], e["fields"],
            inp << event_format(int(e["raw"][:2], 16)).field("InputAddr").lo)
        return e

    def explain_event(self, typ: str, fields: dict, addr: int) -> str | None:
        """For a translation or configuration event: the explanation of a dry walk of the
        transaction it records (StreamID, SubstreamID, addr: the InputAddr, RnW, InD, PnU) in
        the state now, or None for other records. The state may have changed since the event: when the
        walk now ends differently, the text says so."""
        if "StreamID" not in fields or typ not in EXPLAINED:
            return None
        access = "exec" if fields.get("InD") else ("read" if fields.get("RnW", 1) else "write")
        ssid = fields.get("SubstreamID") if fields.get("SSV") else None
        try:
            r = self.translate_dry(fields["StreamID"], addr, ssid,
                                   access=access, priv=bool(fields.get("PnU")))
        except ModelError as e:
            return f"a walk of this transaction now fails: {e}"
        if not r["fault"]:
            return "a walk of this transaction now translates (the state changed since)"
        e = self.explain_fault(fields["StreamID"], ssid, r["fault"], r["steps"])
        if r["fault"]["type"] != typ:
            return f"a walk of this transaction now gives {e['text']}"
        return e["text"]

    def command_log(self, history: int = 16) -> list[dict]:
        """cmdq_entries() with core faults as ModelError (a queue in memory that is gone)."""
        return self.command_history(history)["entries"]

    def command_history(self, history: int = 16) -> dict:
        """The last `history` consumed commands, then the pending ones: {entries, stop}.

        Commands this model consumed come with what they did (cmdq_entries); older ones, as a
        dump's commands from before the snapshot, are read back from the ring memory behind
        CONS (cmdq.ring_history: state "consumed", no effect) as far as they are intact.
        stop: null, or {index, back, why} where the ring's history stops being trustworthy."""
        try:
            entries = self.cmdq_entries(history)
        except MemFault as e:
            raise ModelError(f"{self.name}: command queue: {e}") from None
        seen = sum(1 for e in entries if e["state"] in ("done", "dropped"))
        stop = None
        if history > seen:
            r = ring_history(self.cmdq, seen, history - seen)
            old = [{k: e[k] for k in ("index", "pa", "command", "fields", "state", "lap")}
                   for e in reversed(r["entries"])]
            for e in old:
                e["effect"] = ""
            entries = old + entries
            stop = r["stop"]
        return {"entries": entries, "stop": stop}

    def event_history(self) -> dict:
        """EventQueue.history() with the record addresses and explanations as in
        event_records(), core faults as ModelError."""
        try:
            h = self.evtq.history()
        except MemFault as e:
            raise ModelError(f"{self.name}: event queue: {e}") from None
        h["entries"] = [self._explained(_with_addresses(e)) for e in h["entries"]]
        return h

    # -- walks ---------------------------------------------------------------------------------
    def explain_fault(self, sid: int, ssid, fault: dict | None, steps: list) -> dict | None:
        """model/explain.explain for a walk of this SMMU: the STE and CD as in memory now
        (None where they cannot be read) and the SMMU's features as context."""
        from .explain import explain
        if not fault:
            return None
        ctx = {"features": self.features, "ste": None, "cd": None}
        try:
            ctx["ste"] = self.ste_words(sid)
            ctx["cd"] = self.cd_entry(sid, ssid or 0)["words"]
        except (ModelError, MemFault, ValueError):
            pass
        e = explain(fault, steps, ctx)
        if e["rule"].endswith(":cached"):
            # Served by the IOTLB: say what the tables in memory say now (a dry walk).
            f = fault
            acc = "exec" if f.get("ind") else ("read" if f.get("rnw") else "write")
            try:
                r = self.translate_dry(sid, f["input_addr"], ssid, access=acc,
                                       priv=bool(f.get("pnu")))
            except ModelError:
                return e
            if r["fault"] is None:
                e["text"] = (f"{f['type']} from the IOTLB: the cached entry refuses the access "
                             f"but the tables in memory now allow it; {e['change']}")
            else:
                t = explain(r["fault"], r["steps"], ctx)
                e = dict(t, text=f"{f['type']} from the IOTLB; the tables agree: {t['text']}",
                         rule=t["rule"] + ":cached")
        return e

    def translate_dry(self, sid: int, addr: int, ssid=None, *, access: str = "read",
                      priv: bool = False) -> dict:
        """translate(..., trace=True) that changes nothing (Walker.translate(dry=True)): no
        config-cache or IOTLB read or fill, no hit/miss count, no hardware Access-flag or dirty
        update written, no event recorded. result["event"] is None."""
        if access not in ("read", "write", "exec"):
            raise ModelError(f"access must be read, write or exec, not {access!r}")
        try:
            r = self.walker.translate(sid, addr, ssid, write=access == "write",
                                      instr=access == "exec", priv=priv, trace=True, dry=True)
        except (ValueError, OverflowError) as e:
            raise ModelError(str(e)) from None
        r["event"] = None
        self.locate_ste_step(r["steps"], sid)
        return r

    def locate_ste_step(self, steps, sid: int) -> None:
        """Name, in the STE step of a walk trace, the table the STE was read from and its index
        there: the L2 array and SID[SPLIT-1:0] for a 2-level stream table, the table and the
        StreamID for a linear one (3.3.2), the same for a config-cache hit as for a fetch."""
        st = self.strtab
        for step in steps or ():
            pa = step.get("desc_pa")
            if step.get("what") != "STE" or pa is None:
                continue
            if st["fmt"] == 1:
                idx = sid & ((1 << st["split"]) - 1)
                step["table"], step["index"] = pa - STE.size * idx, idx
            else:
                step["table"], step["index"] = st["base"], sid


class SystemViews:
    """Mixed into System: memory reads and stores as software makes them, the tables of a
    domain, map/unmap with core errors as ModelErrors."""

    def read_u64(self, pa: int, what: str = "") -> int:
        return read_words(self.mem, pa, 1, what)[0]

    def store_words(self, pa: int, old: list, new: list) -> list[int]:
        return store_words(self.mem, pa, old, new)

    @staticmethod
    def leaf_size(granule_shift: int, level: int) -> int:
        """Bytes a leaf at level maps in a tree of granule 2^granule_shift."""
        return 1 << region_bits(granule_shift, level)

    def domain_tables(self, name: str):
        """The Tables of a domain (stage-1 tables of a VM are IPAs of that VM)."""
        dom = self.domain(name)
        xlate = dom.vm.ipa_to_pa if dom.vm is not None else None
        geo = T.Geometry.from_builder(dom.tables, xlate)
        if dom.stage == 2:
            geo.ctx["xnx"] = bool(self.smmu(dom.spec.get("smmu")).features.get("XNX", 1))
        return geo.bind(self.mem)

    def find_mappings(self, space: str, addr: int, size: int, smmu: str | None = None,
                      sid: int | None = None, vm: str | None = None,
                      limit: int = 10_000) -> dict:
        """Who maps [addr, addr+size) of PA space ("pa") or of IPA space ("ipa", streams with
        a stage 2; vm: only the VMIDs of the stage-2 domains that map that VM's RAM):
        {hits, scanned, truncated} as in results.Find, at most limit hits."""
        from .find import Finder
        # The scan keeps exclusive ends in 64 bits: the last byte of the space is left out.
        if size <= 0 or addr + size >= 1 << 64:
            raise ModelError(f"find: range {addr:#x}+{size:#x} is empty or reaches the end "
                             f"of the 64-bit space")
        if smmu is not None:
            self.smmu(smmu)
        f = Finder(self, limit)
        if space == "pa":
            hits = f.find_pa(addr, addr + size, smmu, sid)
        else:
            vmids = None
            if vm is not None:
                self.vm(vm)
                vmids = {d.vmid for d in self.domains.values()
                         if d.stage == 2 and d.spec.get("map_vm") == vm}
                if not vmids:
                    raise ModelError(f"find: VM {vm!r} has no stage-2 domain (no VMID)")
            hits = f.find_ipa(addr, addr + size, smmu, sid, vmids)
        return {"hits": hits, "scanned": {"streams": f.nstreams, "trees": f.trees,
                                          "descriptors": f.descriptors,
                                          "unreadable": f.unreadable},
                "truncated": f.truncated}

    def map_range(self, name: str, iova: int, out: int, size: int, perm: str = "rw") -> int:
        """Map in a domain's tables; returns the number of leaves written."""
        try:
            return self.map(self.domain(name), iova, out, size, perm)
        except (BuildError, MemFault, ValueError) as e:
            raise ModelError(f"map {name}: {e}") from None

    def unmap_range(self, name: str, iova: int, size: int) -> int:
        tables = self.domain(name).tables
        if iova + size > 1 << tables.ias:
            # (the tables index only the low IAS bits: beyond them unmap would wrap around
            # and walk the same tables again and again)
            raise ModelError(f"unmap {name}: {iova:#x}+{size:#x} exceeds the {tables.ias}-bit "
                             f"input range")
        try:
            return tables.unmap(iova, size)
        except (BuildError, MemFault, ValueError) as e:
            raise ModelError(f"unmap {name}: {e}") from None

    def memory_chunks(self, address: int, length: int, vm: str | None = None) -> list[dict]:
        """Memory from address (a PA, or an IPA of vm) for length bytes, page by page merged:
        [{addr, pa, data (hex)}] where memory exists, [{addr, pa, unbacked (bytes), why}]
        where it does not (never zeros for nothing)."""
        chunks, a, end = [], address, address + length
        while a < end:
            nxt = min(end, (a | 0xFFF) + 1)
            if vm is not None:
                try:
                    pa = self.vm(vm).ipa_to_pa(a)
                except ModelError:
                    pa = None
            else:
                pa = a
            if pa is not None and self.mem.is_backed(pa):
                data = bytes(self.mem.read(pa, nxt - a)).hex()
                last = chunks[-1] if chunks else None
                if last and "data" in last and last["pa"] + len(last["data"]) // 2 == pa:
                    last["data"] += data
                else:
                    chunks.append({"addr": a, "pa": pa, "data": data})
            else:
                if chunks and "unbacked" in chunks[-1]:
                    chunks[-1]["unbacked"] += nxt - a
                else:
                    chunks.append({"addr": a, "pa": pa, "unbacked": nxt - a,
                                   "why": "not guest RAM" if pa is None else "no memory"})
            a = nxt
        return chunks
