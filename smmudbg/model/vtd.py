"""An Intel VT-d remapping unit in scalable mode, built from a scenario: registers, the root
table, scalable-mode context tables, PASID directories and tables, and first/second-stage page
tables in modeled memory, with the core walker (core_cy.vtd.VtdWalker) translating over them.

Every structure is encoded through the VT-d field tables (smmudbg/arch/vtd); the walk, the entry
views and the recorded faults come from the core walker. docs/vtd.md, docs/scenario.md.
"""
from __future__ import annotations

from core_cy.ptbuild import BuildError, BumpAllocator
from core_cy.vtd import VtdWalker

from ..arch.fieldtable import fmt
from ..errors import ModelError
from ..arch.vtd.consts import INV_DSC_NAMES
from .scenario_vtd import DLMS, IRT_ENTRIES, PGTTS

PAGE = 4096
# CAP_REG / ECAP_REG of a scalable-mode unit with first-stage, second-stage, nested and
# pass-through translation, as a recent Intel server reports (a scenario's features override
# single fields). FRO: the fault recording registers at 0x220, NFR: 8 of them; IRO: the IOTLB
# registers at 0x100.
DEFAULT_CAP = dict(ND=2, SAGAW=0b00110, MGAW=47, FRO=0x22, SLLPS=0b11, PSI=1, NFR=7, MAMV=9,
                   DWD=1, DRD=1, FL1GP=1, PI=1)
DEFAULT_ECAP = dict(C=1, QI=1, DT=0, IR=1, EIM=1, PT=1, SC=1, IRO=0x10, MHMV=15, NEST=1,
                    PASID=1, PSS=19, SMTS=1, SLADS=1, SLTS=1, FLTS=1, SMPWCS=1)
AW_OF_LEVELS = {3: 1, 4: 2, 5: 3}
FLPM_OF_LEVELS = {4: 0, 5: 1}
_FS_NAMES = {5: ("FS_PML5E", None), 4: ("FS_PML4E", None), 3: ("FS_PDPE", "FS_PDPE_1G"),
             2: ("FS_PDE", "FS_PDE_2M"), 1: (None, "FS_PTE")}
_SS_NAMES = {5: ("SS_PML5E", None), 4: ("SS_PML4E", None), 3: ("SS_PDPE", "SS_PDPE_1G"),
             2: ("SS_PDE", "SS_PDE_2M"), 1: (None, "SS_PTE")}


def _enc(name, **kw):
    return fmt(name, "vtd").encode(**kw)


class VtdTables:
    """A first- or second-stage page-table tree (x86 512-entry tables), built by map().
    Tables are allocated in the table address space (a VM's GPAs for a first stage in guest
    memory: windows give GPA -> PA), and written at their PA."""

    def __init__(self, mem, stage, levels, alloc, *, windows=None, large=(True, True)):
        self.mem, self.stage, self.levels, self.alloc = mem, stage, levels, alloc
        self.windows = windows
        self.large = large                      # 2 MiB, 1 GiB leaves allowed
        self.names = _FS_NAMES if stage == "first" else _SS_NAMES
        self.root = self._new()

    def to_pa(self, addr):
        if self.windows is None:
            return addr
        for base, size, pa in self.windows:
            if base <= addr < base + size:
                return pa + addr - base
        raise ModelError(f"table address {addr:#x} is not in the VM's RAM")

    def _new(self):
        a = self.alloc.alloc(PAGE)
        pa = self.to_pa(a)
        self.mem.write(pa, bytes(PAGE))
        return a

    def _table_entry(self, level, addr):
        name = self.names[level][0]
        if self.stage == "first":
            return _enc(name, P=1, RW=1, US=1, A=1, ADDR=addr >> 12)[0]
        return _enc(name, R=1, W=1, X=1, ADDR=addr >> 12)[0]

    def _leaf(self, level, out, perm):
        name = self.names[level][1]
        shift = 12 + 9 * (level - 1)
        extra = {"PS": 1} if level > 1 else {}
        if self.stage == "first":
            return _enc(name, P=1, RW=int("w" in perm), US=int("p" not in perm),
                        XD=int("x" not in perm), A=1, D=int("w" in perm), ADDR=out >> shift,
                        **extra)[0]
        return _enc(name, R=int("r" in perm), W=int("w" in perm), X=int("x" in perm),
                    ADDR=out >> shift, **extra)[0]

    def leaf(self, addr):
        """(PA of the leaf entry that maps addr, its value, level), or None."""
        table = self.root
        for lvl in range(self.levels, 0, -1):
            ea = self.to_pa(table + 8 * ((addr >> (12 + 9 * (lvl - 1))) & 0x1FF))
            ent = self.mem.read_u64(ea)
            present = ent & 1 if self.stage == "first" else ent & 3
            if not present:
                return None
            if lvl == 1 or (lvl in (2, 3) and (ent >> 7) & 1):
                return ea, ent, lvl
            table = ent & 0x000F_FFFF_FFFF_F000
        return None

    def map(self, addr, out, size, perm="rw"):
        if self.stage == "second" and not ("r" in perm or "w" in perm):
            raise ModelError("a second-stage mapping needs r or w (R=W=0 is not present)")
        end = addr + size
        while addr < end:
            level = 1
            for lvl, ok in ((3, self.large[1]), (2, self.large[0])):
                sz = 1 << (12 + 9 * (lvl - 1))
                if ok and not (addr | out) & (sz - 1) and end - addr >= sz:
                    level = lvl
                    break
            self._map_one(addr, out, level, perm)
            step = 1 << (12 + 9 * (level - 1))
            addr += step
            out += step

    def _map_one(self, addr, out, level, perm):
        table = self.root
        for lvl in range(self.levels, level, -1):
            ea = self.to_pa(table + 8 * ((addr >> (12 + 9 * (lvl - 1))) & 0x1FF))
            ent = self.mem.read_u64(ea)
            present = ent & 1 if self.stage == "first" else ent & 3
            if present and lvl in (2, 3) and (ent >> 7) & 1:
                raise ModelError(f"{addr:#x}: already mapped by a larger page")
            if not present:
                ent = self._table_entry(lvl, self._new())
                self.mem.write_u64(ea, ent)
            table = ent & 0x000F_FFFF_FFFF_F000
        ea = self.to_pa(table + 8 * ((addr >> (12 + 9 * (level - 1))) & 0x1FF))
        self.mem.write_u64(ea, self._leaf(level, out, perm))


class VtdDomain:
    def __init__(self, spec, tables: VtdTables):
        self.name = spec["name"]
        self.stage = spec["stage"]
        self.levels = spec["levels"]
        self.did = spec["did"]
        self.vm = spec["vm"]
        self.spec = spec
        self.tables = tables

    @property
    def root(self):
        return self.tables.root


class VtdDevice:
    """A requester behind a VT-d unit. `smmu` holds the unit's name: commands resolve a
    device to (unit, requester ID) as they do an SMMU stream."""

    def __init__(self, spec):
        self.name = spec["name"]
        self.smmu = spec["vtd"]
        self.sid = spec["rid"]
        self.spec = spec


class VtdUnit:
    """One remapping unit: registers, structures in memory, the core walker, recorded faults."""
    arch = "vtd"

    def __init__(self, spec, mem, domains_spec, devices_spec, vms):
        self.name = spec["name"]
        self.base = spec["base"]
        self.mem = mem
        self.haw = spec["haw"]
        self.alloc = BumpAllocator(spec["pool"]["base"], spec["pool"]["size"])
        cap, ecap = dict(DEFAULT_CAP), dict(DEFAULT_ECAP)
        for k, v in spec["features"].items():
            (cap if k in {f.name for f in fmt("CAP_REG", "vtd").fields} else ecap)[k] = v
        self.cap = _enc("CAP_REG", **cap)[0]
        self.ecap = _enc("ECAP_REG", **ecap)[0]
        self.root_table = self._page()
        # The invalidation queue: 256 128-bit descriptors (IQA_REG.QS=0, DW=0).
        self.iq_base = self._page()
        self.iqa = _enc("IQA_REG", IQA=self.iq_base >> 12, QS=0, DW=0)[0]
        self.iqh = self.iqt = 0                  # descriptor indices (IQH_REG.QH, IQT_REG.QT)
        self.ics_iwc = 0
        self.iq_error = None
        self.rtaddr = _enc("RTADDR_REG", RTA=self.root_table >> 12, TTM="scalable")[0]
        ir = spec.get("interrupt_remapping", True)
        self.gsts = _enc("GSTS_REG", TES=int(spec["translation"]), RTPS=1, QIES=1,
                         IRES=int(ir), IRTPS=int(ir),
                         CFIS=int(spec.get("compat_interrupts", False)))[0]
        # The interrupt remapping table: IRT_ENTRIES 16-byte IRTEs (IRTA_REG.S: 2^(S+1)).
        self.irt = self._page(16 * IRT_ENTRIES)
        self.irta = _enc("IRTA_REG", IRTA=self.irt >> 12, S=IRT_ENTRIES.bit_length() - 2,
                         EIME=int(spec.get("x2apic", False)))[0]
        self.regs = {"CAP_REG": self.cap, "ECAP_REG": self.ecap, "GSTS_REG": self.gsts,
                     "RTADDR_REG": self.rtaddr, "IRTA_REG": self.irta}
        self.walker = VtdWalker(mem, cap=self.cap, ecap=self.ecap, gsts=self.gsts,
                                rtaddr=self.rtaddr, irta=self.irta, haw=self.haw, caching=True)
        self.domains: dict[str, VtdDomain] = {}
        self.devices: dict[int, VtdDevice] = {}
        self.faults: list[dict] = []        # recorded faults, oldest first (FRCD_REG contents)
        self._ctx_tables = {}                # (bus, upper) -> context table
        f = fmt("CAP_REG", "vtd")
        large = (bool(f.field("SLLPS").get([self.cap]) & 1), bool(f.field("FL1GP").get([self.cap])))
        for d in domains_spec:
            self._build_domain(d, vms, large)
        for dv in devices_spec:
            self._build_device(dv)

    # -- construction -------------------------------------------------------------------------
    def _page(self, size=PAGE):
        a = self.alloc.alloc(size)
        self.mem.write(a, bytes(size))
        return a

    def _build_domain(self, d, vms, large):
        windows = None
        alloc = self.alloc
        if d["stage"] == "first" and d["vm"]:
            windows = vms[d["vm"]].ram
            alloc = BumpAllocator(d["pool"]["base"], d["pool"]["size"])
        elif d["pool"]:
            alloc = BumpAllocator(d["pool"]["base"], d["pool"]["size"])
        # A first stage's 1 GiB pages need CAP_REG.FL1GP (2 MiB always exist); a second stage's
        # large pages need CAP_REG.SLLPS.
        big = (True, large[1]) if d["stage"] == "first" else (large[0], large[0])
        t = VtdTables(self.mem, d["stage"], d["levels"], alloc, windows=windows, large=big)
        dom = VtdDomain(d, t)
        if d["map_vm"]:
            for ipa, size, pa in vms[d["map_vm"]].ram:
                t.map(ipa, pa, size, d["perm"])
        for m in d["maps"]:
            t.map(m["in"], m["out"], m["size"], m["perm"])
        self.domains[d["name"]] = dom

    def _context_table(self, bus, upper):
        key = (bus, upper)
        if key not in self._ctx_tables:
            self._ctx_tables[key] = self._page()
            re_pa = self.root_table + 16 * bus
            words = [self.mem.read_u64(re_pa), self.mem.read_u64(re_pa + 8)]
            half = dict(UP=1, UCTP=self._ctx_tables[key] >> 12) if upper else \
                dict(LP=1, LCTP=self._ctx_tables[key] >> 12)
            new = _enc("SM_ROOT_ENTRY", **half)
            words[1 if upper else 0] = new[1 if upper else 0]
            self.mem.write_words(re_pa, words)
        return self._ctx_tables[key]

    def _build_device(self, dv):
        rid = dv["rid"]
        bus, devfn = rid >> 8, rid & 0xFF
        entries = [p["pasid"] for p in dv["pasids"]] + [dv["rid_pasid"]]
        dir_entries = (max(entries) >> 6) + 1
        pdts = max(0, (dir_entries - 1).bit_length() - 7)
        pdir = self._page(max(PAGE, 8 << (pdts + 7)))
        ctx = self._context_table(bus, devfn >= 128) + 32 * (devfn & 0x7F)
        self.mem.write_words(ctx, _enc("SM_CONTEXT_ENTRY", P=1, PASIDE=1, PDTS=pdts,
                                       PASIDDIRPTR=pdir >> 12, RID_PASID=dv["rid_pasid"]))
        tables = {}
        for p in dv["pasids"]:
            hi = p["pasid"] >> 6
            if hi not in tables:
                tables[hi] = self._page()
                self.mem.write_u64(pdir + 8 * hi, _enc("PASID_DIR_ENTRY", P=1,
                                                       SMPTBLPTR=tables[hi] >> 12)[0])
            fields = dict(P=1, PGTT=PGTTS[p["pgtt"]], DID=p["did"], PWSNP=1, SRE=int(p["sre"]))
            if p["ss"]:
                ss = self.domains[p["ss"]]
                fields.update(AW=AW_OF_LEVELS[ss.levels], SLPTPTR=ss.root >> 12)
            if p["fs"]:
                fs = self.domains[p["fs"]]
                fields.update(FLPM=FLPM_OF_LEVELS[fs.levels], FLPTPTR=fs.root >> 12)
            self.mem.write_words(tables[hi] + 64 * (p["pasid"] & 0x3F),
                                 _enc("PASID_ENTRY", **fields))
        x2apic = bool(fmt("IRTA_REG", "vtd").field("EIME").get([self.irta]))
        for e in dv.get("irtes", []):
            # xAPIC destination IDs sit in DST[15:8] (VT-d 9.10); x2APIC uses all 32 bits.
            fields = dict(P=1, V=e["vector"], DST=e["dest"] if x2apic else e["dest"] << 8,
                          DLM=DLMS[e["delivery"]], DM=int(e["mode"] == "logical"),
                          TM=int(e["trigger"] == "level"))
            if e["verify"]:
                fields.update(SVT="requester_id", SQ="all_16", SID=rid)
            self.mem.write_words(self.irt + 16 * e["index"], _enc("IRTE", **fields))
        self.devices[rid] = VtdDevice(dv)

    # -- translation --------------------------------------------------------------------------
    def translate(self, rid, addr, pasid=None, *, access="read", priv=False, dry=False):
        """One DMA request through the unit, traced. A recorded fault (FPD clear) is logged in
        `faults` unless dry; dry also leaves the A/D flags as they are."""
        try:
            r = self.walker.translate(rid, addr, pasid, write=access == "write",
                                      exe=access == "exec", priv=priv, trace=True, dry=dry)
        except ValueError as e:
            raise ModelError(f"{self.name}: {e}") from None
        f = r["fault"]
        r["fault_index"] = None
        if f and f["recorded"] and not dry:
            r["fault_index"] = len(self.faults)
            self.faults.append(dict(f, index=len(self.faults)))
        return r

    # -- queued invalidation (VT-d 6.5.2) --------------------------------------------------------
    IQ_ENTRIES = 256
    IQ_DESC = 16        # bytes per descriptor: 16, or 32 with IQA_REG.DW=1 (256-bit descriptors)
    drop_budget = 0     # invalidation descriptors still to drop (drop-invalidations: a lost one)

    def submit(self, descriptors):
        """Write 128-bit descriptors ([lo, hi] words) at IQT_REG, move the tail, and let the
        unit process the queue from IQH_REG to the tail. Returns a log entry per descriptor
        processed: {index, type, removed, note}; an invalid descriptor stops the queue
        (FSTS_REG.IQE, IQERCD_REG.IQEI) as hardware does."""
        pad = [0] * (self.IQ_DESC // 8 - 2)     # a 256-bit descriptor's upper half: reserved
        for words in descriptors:
            self.mem.write_words(self.iq_base + self.IQ_DESC * self.iqt, list(words) + pad)
            self.iqt = (self.iqt + 1) % self.IQ_ENTRIES
        log = []
        while self.iq_error is None and self.iqh != self.iqt:
            at = self.iq_base + self.IQ_DESC * self.iqh
            w = [self.mem.read_u64(at), self.mem.read_u64(at + 8)]
            entry = self._process(w)
            entry["index"] = self.iqh
            log.append(entry)
            if entry["type"] is None:
                self.iq_error = "invalid_descriptor_type"      # IQH stays at the descriptor
                break
            self.iqh = (self.iqh + 1) % self.IQ_ENTRIES
        return log

    def _process(self, w):
        t = fmt("CC_INV_DSC", "vtd")
        code = (t.field("TYPE_HI").get(w) << 4) | t.field("TYPE_LO").get(w)
        name = INV_DSC_NAMES.get(code)
        if name is None:
            return {"type": None, "code": code, "removed": 0,
                    "note": f"invalid descriptor type {code:#x}: FSTS_REG.IQE"}
        f = fmt(name, "vtd")
        v = f.decode(w)
        k = self.walker
        note = ""
        if self.drop_budget and name != "INV_WAIT_DSC":
            self.drop_budget -= 1
            return {"type": name, "code": code, "fields": v, "removed": 0,
                    "note": "DROPPED (drop-invalidations): nothing removed"}
        if name == "CC_INV_DSC":
            n = k.invalidate_context(v["G"], v["SID"], v["FM"])
        elif name == "PC_INV_DSC":
            n = k.invalidate_pasid(v["G"], v["DID"], v["PASID"])
        elif name == "IOTLB_INV_DSC":
            n = k.invalidate_iotlb(v["G"], v["DID"], v["ADDR"] << 12, v["AM"])
        elif name == "P_IOTLB_INV_DSC":
            n = k.invalidate_piotlb(v["G"], v["DID"], v["PASID"], v["ADDR"] << 12, v["AM"])
        elif name == "INV_WAIT_DSC":
            n = 0
            if v["SW"]:
                a = v["STATUS_ADDR"] << 2
                self.mem.write(a, v["STATUS_DATA"].to_bytes(4, "little"))
                note = f"status {v['STATUS_DATA']:#x} written at {a:#x}"
            if v["IF"]:
                self.ics_iwc = 1
                note += ("; " if note else "") + "ICS_REG.IWC=1"
        else:
            # Device-TLBs (ECAP_REG.DT=0 here) and the interrupt entry cache are not cached by
            # this model: nothing to remove.
            n = 0
            note = "nothing cached of this kind in the model"
        return {"type": name, "code": code, "fields": v, "removed": n, "note": note}

    def stale_entries(self):
        """Cached entries memory no longer matches, each with the descriptor that removes it:
        {kind (context, pasid, iotlb), key, problem, fix (descriptor and fields)}."""
        out = []
        k = self.walker
        for e in k.cached_contexts():
            now = [self.mem.read_u64(e["ctx_pa"] + 8 * i) for i in range(4)]
            root = self.mem.read_u64(e["root_pa"])
            if now != e["ctx"] or root != e["root"]:
                out.append({"kind": "context", "key": {"sid": e["sid"]},
                            "problem": "the root or context entry in memory differs from the "
                                       "context-cache",
                            "fix": f"CC_INV_DSC G=device SID={e['sid']:#x} FM=0"})
        for e in k.cached_pasids():
            now = [self.mem.read_u64(e["pe_pa"] + 8 * i) for i in range(8)]
            if now != e["pe"] or self.mem.read_u64(e["dir_pa"]) != e["pde"]:
                out.append({"kind": "pasid", "key": {"sid": e["sid"], "pasid": e["pasid"],
                                                     "did": e["did"]},
                            "problem": "the PASID entry in memory differs from the PASID-cache",
                            "fix": f"PC_INV_DSC G=pasid DID={e['did']} PASID={e['pasid']}"})
        for e in k.tlb_entries():
            pasid = e["pasid"] if e["pv"] else None
            r = k.translate(e["sid"], e["in_base"], pasid, priv=e["priv"] and e["pv"],
                            dry=True)
            same = r["kind"] == "translated" and r["pa"] == e["out_base"] and \
                r["perm"] == e["perm"] and r["size"] >= e["size"]
            if same:
                continue
            am = (e["size"] >> 12).bit_length() - 1
            if e["pgtt"] in ("first_stage", "nested"):
                fix = (f"P_IOTLB_INV_DSC G=page DID={e['did']} PASID={e['pasid']} "
                       f"ADDR={e['in_base']:#x} AM={am}")
            else:
                fix = f"IOTLB_INV_DSC G=page DID={e['did']} ADDR={e['in_base']:#x} AM={am}"
            now = (f"now {r['fault']['name']}" if r["fault"] else
                   f"now {r['pa']:#x} {r['perm']}" if r["pa"] is not None else f"now {r['kind']}")
            out.append({"kind": "iotlb", "key": {"did": e["did"], "pasid": e["pasid"],
                                                 "in_base": e["in_base"], "size": e["size"]},
                        "problem": f"cached {e['in_base']:#x} -> {e['out_base']:#x} "
                                   f"{e['perm']} ({e['pgtt']}), tables {now}",
                        "fix": fix})
        return out

    def remap_msi(self, rid, addr, data):
        """An interrupt request through the unit's interrupt remapping; a recorded fault is
        logged in `faults`."""
        try:
            r = self.walker.remap_msi(rid, addr, data)
        except ValueError as e:
            raise ModelError(f"{self.name}: {e}") from None
        f = r["fault"]
        r["fault_index"] = None
        if f and f["recorded"]:
            r["fault_index"] = len(self.faults)
            self.faults.append(dict(f, index=len(self.faults)))
        return r

    def config(self, rid, pasid=None):
        """The root, context, PASID directory and PASID table entries of a requester."""
        return self.walker.read_config(rid, pasid)


def build_units(system, spec) -> dict[str, VtdUnit]:
    """The VT-d units of a scenario spec, built in the system's memory."""
    units = {}
    for u in spec.get("vtd", []):
        try:
            units[u["name"]] = VtdUnit(
                u, system.mem, [d for d in spec["vtd_domain"] if d["vtd"] == u["name"]],
                [d for d in spec["vtd_device"] if d["vtd"] == u["name"]], system.vms)
        except BuildError as e:
            raise ModelError(f"vtd {u['name']}: {e}") from None
    return units
