"""What commands ask of an SMMU beyond programming it: inspection without side effects,
software's stores to STEs/CDs, cache listings, event records with their addresses.

Smmu inherits SmmuViews (model/smmu.py). Every method returns model data (ints, lists, dicts)
and turns core exceptions (MemFault, ...) into one-line ModelErrors, so the commands above
never import core_cy.
"""
from __future__ import annotations

from core_cy.physmem import MemFault
from core_cy.ptbuild import BuildError

from ..arch.fieldtable import fmt
from ..arch.smmuv3 import consts as C
from ..arch.smmuv3.events import event_format
from ..arch.smmuv3.geometry import cd_geometry
from ..errors import ModelError
from . import hazards
from . import tables as T

STE = fmt("STE")
CD = fmt("CD")
L1STD = fmt("L1STD")
L1CD = fmt("L1CD")
_L1CD_V = L1CD.field("V")
# Why Walker.read_cd rejects SubstreamID 0 where CD 0 is the no-SubstreamID CD.
_SSID0_ILLEGAL = {C.REASON_TEXT[r] for r in (C.R_SSV_CDMAX0, C.R_SSID0_S1DSS,
                                               C.R_SSID0_DISABLED)}

# Event record fields that hold an address, and the key the address goes under.
EVENT_ADDRESSES = (("IPA", "ipa"), ("FetchAddr", "fetch_addr"))


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
        try:
            r = self.walker.read_cd(sid, ssid)
            if ssid == 0 and r["reason"] in _SSID0_ILLEGAL:
                r = self.walker.read_cd(sid, None)
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

    def stream_table_entries(self, first: int, count: int, all: bool = False):
        """STEs from StreamID first on: ([{sid, addr, words}] of valid ones (every one with
        all), at most count; whether more follow). 2-level: the StreamIDs an L1 descriptor
        does not cover (Span=0, or beyond its Span) are skipped as a block."""
        geo = self.strtab_geometry
        rows, s = [], first
        while geo.in_range(s):
            r = self._read_ste(s)
            if r["words"] is None:
                if geo.two_level and r["ste_pa"] is None:
                    l1 = _l1(r, "F_STE_FETCH")
                    if l1 is None:
                        raise ModelError(f"{self.name}: L1STD at {r['l1_pa']:#x}: {_why(r)}")
                    # Not in this L1STD's L2 array: on to the next L1STD.
                    covered = geo.l2_sids(geo.l1_index(s), l1)
                    if s not in covered:
                        s = (geo.l1_index(s) + 1) << geo.split
                        continue
                s += 1
                continue
            if STE.field("V").get(r["words"]) or all:
                if len(rows) >= count:
                    return rows, True
                rows.append({"sid": s, "addr": r["ste_pa"], "words": r["words"]})
            s += 1
        return rows, False

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

    def stream_tables(self, sid: int, ssid: int | None = None, stage: int | None = None):
        """The translation tables a stream uses (Tables): stage 1 of its CD for ssid (default
        0; through stage 2 when nested) or stage 2; default stage 1 when the STE has one."""
        ste = self.ste_words(sid)
        cfg = STE.field("Config").get(ste)
        want = stage or (1 if cfg in hazards.S1_CONFIGS else 2)
        if want == 2:
            if cfg not in hazards.S2_CONFIGS:
                raise ModelError(f"{self.name} StreamID {sid:#x}: the STE has no stage 2")
            return T.Geometry.from_ste_s2(ste).bind(self.mem)
        cdw = self.cd_entry(sid, ssid or 0)["words"]
        xlate = T.s2_xlate(self.mem, ste) if cfg == C.STE_Config_nested else None
        return T.Geometry.from_cd(cdw, xlate).bind(self.mem)

    def is_nested(self, sid: int) -> bool:
        """The STE of sid has both stages (its stage-1 tables are IPAs)."""
        return STE.field("Config").get(self.ste_words(sid)) == C.STE_Config_nested

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
            f = event_format(int(e["raw"][:2], 16))
            e = dict(e)
            for name, key in EVENT_ADDRESSES:
                v = e["fields"].get(name)
                e[key] = None if v is None else v << f.field(name).lo
            out.append(e)
        return out

    def command_log(self, history: int = 16) -> list[dict]:
        """cmdq_entries() with core faults as ModelError (a queue in memory that is gone)."""
        try:
            return self.cmdq_entries(history)
        except MemFault as e:
            raise ModelError(f"{self.name}: command queue: {e}") from None

    # -- walks ---------------------------------------------------------------------------------
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
        return r


class SystemViews:
    """Mixed into System: memory reads and stores as software makes them, the tables of a
    domain, map/unmap with core errors as ModelErrors."""

    def read_u64(self, pa: int, what: str = "") -> int:
        return read_words(self.mem, pa, 1, what)[0]

    def store_words(self, pa: int, old: list, new: list) -> list[int]:
        return store_words(self.mem, pa, old, new)

    def domain_tables(self, name: str):
        """The Tables of a domain (stage-1 tables of a VM are IPAs of that VM)."""
        dom = self.domain(name)
        xlate = dom.vm.ipa_to_pa if dom.vm is not None else None
        return T.Geometry.from_builder(dom.tables, xlate).bind(self.mem)

    def map_range(self, name: str, iova: int, out: int, size: int, perm: str = "rw") -> int:
        """Map in a domain's tables; returns the number of leaves written."""
        try:
            return self.map(self.domain(name), iova, out, size, perm)
        except (BuildError, MemFault, ValueError) as e:
            raise ModelError(f"map {name}: {e}") from None

    def unmap_range(self, name: str, iova: int, size: int) -> int:
        try:
            return self.domain(name).tables.unmap(iova, size)
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
