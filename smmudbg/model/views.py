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
from .cmdq import ring_history
from . import tables as T

STE = fmt("STE")
CD = fmt("CD")
L1STD = fmt("L1STD")
L1CD = fmt("L1CD")

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

    def stream_table_entries(self, first: int, count: int, all: bool = False):
        """STEs from StreamID first on: ([{sid, addr, words}] of valid ones (every one with
        all), at most count; whether more follow). 2-level: L1 descriptors with Span=0 are
        skipped as a block."""
        st = self.strtab
        rows, s, total = [], first, 1 << st["log2size"]
        while s < total:
            if st["fmt"] == 1:
                l1pa = st["base"] + (s >> st["split"]) * 8
                l1 = read_words(self.mem, l1pa, 1, f"{self.name}: L1STD")[0]
                if L1STD.field("Span").get([l1]) == 0:
                    s = ((s >> st["split"]) + 1) << st["split"]
                    continue
            try:
                addr = self.ste_location(s)
                words = read_words(self.mem, addr, 8)
            except ModelError:
                s += 1
                continue
            if STE.field("V").get(words) or all:
                if len(rows) >= count:
                    return rows, True
                rows.append({"sid": s, "addr": addr, "words": words})
            s += 1
        return rows, False

    def valid_sids(self) -> list[int]:
        """StreamIDs whose STE has V=1, found by a scan in the core (a 2-level table: the L2
        arrays its L1STDs reach, as far as each Span covers)."""
        from core_cy.scan import valid_stes
        st = self.strtab
        n = 1 << min(st["log2size"], self.features.get("SIDSIZE", 0))
        if st["fmt"] == 0:
            return [int(x) for x in valid_stes(self.mem, st["base"], n)]
        out = []
        split = st["split"]
        for i in range(max(1, n >> split)):
            l1pa = st["base"] + 8 * i
            try:
                l1 = self.mem.read_u64(l1pa)
            except MemFault:
                continue
            span = L1STD.field("Span").get([l1])
            if span == 0 or span > 11 or span > split + 1:
                continue                 # invalid or reserved: no STEs reached (C_BAD_STREAMID)
            # The L2 array is aligned to its size: low L2Ptr bits are ignored, as the walker.
            l2 = (L1STD.field("L2Ptr").get([l1]) << L1STD.field("L2Ptr").lo) & \
                ~((1 << (span - 1 + 6)) - 1)
            out += [(i << split) + int(x)
                    for x in valid_stes(self.mem, l2, min(1 << (span - 1), n))]
        return out

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
            return T.Geometry.from_ste_s2(ste, self.features).bind(self.mem)
        loc = T.cd_location(self.mem, ste, ssid or 0)
        cdw = read_words(self.mem, loc["pa"], 8, "CD")
        geo = T.Geometry.from_cd(cdw, loc["xlate"] if T.ste_has_s2(ste) else None, ste,
                                 self.features)
        return geo.bind(self.mem)

    def nested_tables(self, sid: int, ssid: int | None = None, limit: int = 4000) -> dict:
        """The combined IOVA -> IPA -> PA view of a nested stream (tables.nested_dump) for the
        CD of ssid (default 0): {s1 (Tables), s2 (Tables), rows, truncated}."""
        ste = self.ste_words(sid)
        if not (T.ste_has_s1(ste) and T.ste_has_s2(ste)):
            raise ModelError(f"{self.name} StreamID {sid:#x}: the STE is not nested (Config="
                             f"{STE.field('Config').value_name(STE.field('Config').get(ste))})")
        s1 = self.stream_tables(sid, ssid, 1)
        s2 = self.stream_tables(sid, None, 2)
        d = T.nested_dump(s1.geo, s2.geo, self.mem, limit)
        return {"s1": s1, "s2": s2, "rows": d["rows"], "truncated": d["truncated"]}

    def is_nested(self, sid: int) -> bool:
        """The STE of sid has both stages (its stage-1 tables are IPAs)."""
        ste = self.ste_words(sid)
        return T.ste_has_s1(ste) and T.ste_has_s2(ste)

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
        if T.ste_has_s2(ste):
            out["s2"] = (STE.field("S2VMID").get(ste), STE.field("S2TTB").address(ste))
        if T.ste_has_s1(ste):
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
            e = _with_addresses(dict(e, state="pending"))
            inp = e["fields"].get("InputAddr")
            e["explanation"] = None if inp is None else self.explain_event(
                e["event"], e["fields"],
                inp << event_format(int(e["raw"][:2], 16)).field("InputAddr").lo)
            out.append(e)
        return out

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
        """EventQueue.history() with the record addresses as in event_records(), core faults
        as ModelError."""
        try:
            h = self.evtq.history()
        except MemFault as e:
            raise ModelError(f"{self.name}: event queue: {e}") from None
        h["entries"] = [_with_addresses(e) for e in h["entries"]]
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

    def domain_tables(self, name: str):
        """The Tables of a domain (stage-1 tables of a VM are IPAs of that VM)."""
        dom = self.domain(name)
        xlate = dom.vm.ipa_to_pa if dom.vm is not None else None
        geo = T.Geometry.from_builder(dom.tables, xlate)
        if dom.stage == 2:
            geo.ctx["xnx"] = bool(self.smmu(dom.spec.get("smmu")).features.get("XNX", 1))
        return geo.bind(self.mem)

    def find_mappings(self, space: str, addr: int, size: int, smmu: str | None = None,
                      sid: int | None = None, vm: str | None = None) -> dict:
        """Who maps [addr, addr+size) of PA space ("pa") or of IPA space ("ipa", streams with
        a stage 2; vm: only the VMIDs of the stage-2 domains that map that VM's RAM):
        {hits, scanned} as in results.Find."""
        from .find import Finder
        # The scan keeps exclusive ends in 64 bits: the last byte of the space is left out.
        if size <= 0 or addr + size >= 1 << 64:
            raise ModelError(f"find: range {addr:#x}+{size:#x} is empty or reaches the end "
                             f"of the 64-bit space")
        if smmu is not None:
            self.smmu(smmu)
        f = Finder(self)
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
                                          "unreadable": f.unreadable}}

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
