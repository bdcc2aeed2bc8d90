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
from ..arch.smmuv3.events import event_format
from ..errors import ModelError
from . import hazards
from . import tables as T

STE = fmt("STE")
CD = fmt("CD")
L1STD = fmt("L1STD")
L1CD = fmt("L1CD")

# Event record fields that hold an address, and the key the address goes under.
EVENT_ADDRESSES = (("IPA", "ipa"), ("FetchAddr", "fetch_addr"))


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


_ODD = bytes(b & 1 for b in range(256))
_SPAN = bytes(int(b & 0x1F != 0) for b in range(256))


def _ones(flags: bytes):
    """Indexes of the 1 bytes in a string of 0/1 bytes."""
    i = flags.find(1)
    while i >= 0:
        yield i
        i = flags.find(1, i + 1)


class SmmuViews:
    """Mixed into Smmu: needs self.mem, self.walker, self.name, self.ste_addr, self.events."""

    # -- memory as software sees it ------------------------------------------------------------
    def read_words(self, pa: int, n: int = 8, what: str = "") -> list[int]:
        """n dwords at pa (ModelError when the memory is not there)."""
        return read_words(self.mem, pa, n, what)

    def store_words(self, pa: int, old: list, new: list) -> list[int]:
        """Software's stores of the dwords that changed, dword 0 last; returns the order."""
        return store_words(self.mem, pa, old, new)

    def ste_location(self, sid: int, create: bool = False) -> int:
        """PA of the STE of sid (ModelError when the stream table does not reach it)."""
        try:
            return self.ste_addr(sid, create=create)
        except MemFault as e:
            raise ModelError(f"{self.name}: L1STD of StreamID {sid:#x}: {e}") from None

    def ste_words(self, sid: int) -> list[int]:
        """The STE of sid as in memory (ModelError when it is not there)."""
        addr = self.ste_location(sid)
        return read_words(self.mem, addr, 8, f"{self.name}: STE {sid:#x}")

    def cd_entry(self, sid: int, ssid: int) -> dict:
        """The CD of (sid, ssid) found through the STE as the SMMU finds it: {ste (words),
        addr (an IPA when the STE is nested), pa, l1 (address of the L1CD or None), words}."""
        ste = self.ste_words(sid)
        loc = T.cd_location(self.mem, ste, ssid)
        return {"ste": ste, "addr": loc["addr"], "pa": loc["pa"], "l1": loc["l1"],
                "words": read_words(self.mem, loc["pa"], 8, "CD")}

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
        st = self.strtab
        total, scanned = 1 << st["log2size"], 0
        if st["fmt"] != 1:
            s = first
            while s < total:
                stes, step = self._ste_span(st["base"] + 64 * s, s, total - s, all)
                scanned += step if stes is not None else 1
                yield scanned, stes or []
                s += step
            return
        split = st["split"]
        l1i, n_l1 = first >> split, max(1, total >> split)
        while l1i < n_l1:
            l1pa = st["base"] + 8 * l1i
            l1s, k = self._backed_words(l1pa, n_l1 - l1i)
            if l1s is None:
                read_words(self.mem, l1pa, 1, f"{self.name}: L1STD")     # raises ModelError
            scanned += k
            # Span is bits [4:0] of each L1STD's first byte: find the non-zero ones at once.
            for j in _ones(l1s.obj[::8].translate(_SPAN)):
                l1 = l1s[j]
                span = L1STD.field("Span").get([l1])
                n_l2 = min(1 << split, 1 << (span - 1), total - ((l1i + j) << split))
                s0 = (l1i + j) << split
                idx = first - s0 if first > s0 else 0
                l2 = L1STD.field("L2Ptr").get([l1]) << 6
                while idx < n_l2:
                    stes, step = self._ste_span(l2 + 64 * idx, s0 + idx, n_l2 - idx, all)
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
        # V is bit 0 of each STE's first byte: find the odd ones without a Python loop over
        # the page (most of a big table is V=0).
        idx = range(k // 8) if all else \
            _ones(dwords.obj[:64 * (k // 8):64].translate(_ODD))
        return [(sid + i, addr + 64 * i, dwords[8 * i:8 * i + 8].tolist()) for i in idx], step

    def cd_table(self, sid: int, all: bool = False, max_cds: int = 4096) -> dict:
        """The CD table of a stream: {ste, ipa (table addresses are IPAs), l1: [{index, addr,
        words}], cds: [{ssid, addr, pa, words}], truncated}; valid entries only unless all."""
        ste = self.ste_words(sid)
        if not T.ste_has_s1(ste):
            cfg = STE.field("Config")
            raise ModelError(f"{self.name} StreamID {sid:#x}: STE.Config="
                             f"{cfg.value_name(cfg.get(ste))} has no stage 1, so no CD table")
        v = STE.decode(ste)
        n_cds = 1 << v["S1CDMax"]
        cds, l1s = [], []
        for ssid in range(min(n_cds, max_cds)):
            try:
                loc = T.cd_location(self.mem, ste, ssid)
                words = read_words(self.mem, loc["pa"], 8)
            except ModelError:
                continue
            if CD.field("V").get(words) or all:
                cds.append({"ssid": ssid, "addr": loc["addr"], "pa": loc["pa"], "words": words})
        if v["S1Fmt"] in (1, 2) and v["S1CDMax"]:
            n = 6 if v["S1Fmt"] == 1 else 10
            xlate = T.s2_xlate(self.mem, ste) if T.ste_has_s2(ste) else (lambda a: a)
            base = v["S1ContextPtr"] << STE.field("S1ContextPtr").lo
            for i in range(max(1, n_cds >> n)):
                a = base + 8 * i
                try:
                    d = read_words(self.mem, xlate(a), 1)[0]
                except ModelError:
                    continue
                if L1CD.field("V").get([d]) or all:
                    l1s.append({"index": i, "addr": a, "words": [d]})
        return {"ste": ste, "ipa": T.ste_has_s2(ste), "l1": l1s, "cds": cds,
                "truncated": n_cds > max_cds}

    def stream_tables(self, sid: int, ssid: int | None = None, stage: int | None = None):
        """The translation tables a stream uses (Tables): stage 1 of its CD for ssid (default
        0; through stage 2 when nested) or stage 2; default stage 1 when the STE has one."""
        ste = self.ste_words(sid)
        want = stage or (1 if T.ste_has_s1(ste) else 2)
        if want == 2:
            if not T.ste_has_s2(ste):
                raise ModelError(f"{self.name} StreamID {sid:#x}: the STE has no stage 2")
            return T.Geometry.from_ste_s2(ste).bind(self.mem)
        loc = T.cd_location(self.mem, ste, ssid or 0)
        cdw = read_words(self.mem, loc["pa"], 8, "CD")
        geo = T.Geometry.from_cd(cdw, loc["xlate"] if T.ste_has_s2(ste) else None)
        return geo.bind(self.mem)

    def is_nested(self, sid: int) -> bool:
        """The STE of sid has both stages (its stage-1 tables are IPAs)."""
        ste = self.ste_words(sid)
        return T.ste_has_s1(ste) and T.ste_has_s2(ste)

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
        for lst, key in ((self.walker.cached_stes(), "ste_pa"),
                         (self.walker.cached_cds(), "cd_pa")):
            rows = []
            for c in lst:
                try:
                    mem = self.mem.read_words(c[key], 8)
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
        """translate(..., trace=True) that changes nothing: no config-cache or IOTLB fill, no
        hit/miss count, no event recorded, memory as it was (a hardware Access-flag update
        the walk made is put back). result["event"] is None."""
        if access not in ("read", "write", "exec"):
            raise ModelError(f"access must be read, write or exec, not {access!r}")
        # Until the core's Walker.translate(..., dry=True) lands (it replaces this): an
        # uncached walk, no record_event, and the descriptors the walk read restored.
        try:
            r = self.walker.translate_uncached(sid, addr, ssid, write=access == "write",
                                               instr=access == "exec", priv=priv, trace=True)
        except (ValueError, OverflowError) as e:
            raise ModelError(str(e)) from None
        first: dict[int, int] = {}      # a descriptor read twice shows the update the 2nd time
        for st in r["steps"]:
            pa, d = st.get("desc_pa"), st.get("desc")
            if pa is not None and d is not None and st.get("outcome") != "cached":
                first.setdefault(pa, d)
        for pa, d in first.items():
            try:
                if self.mem.read_u64(pa) != d:
                    self.mem.write_u64(pa, d)
            except MemFault:
                pass
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
