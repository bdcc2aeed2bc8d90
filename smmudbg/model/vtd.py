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
from ..arch.vtd import consts as VC
from ..arch.vtd.consts import INV_DSC_NAMES
from ..arch.vtd.paging import FS_LEVELS, SS_LEVELS
from ..errors import ModelError
from .scenario_vtd import DLMS, IRT_ENTRIES, PGTTS
from .vtd_cache import DeviceTlb, ats_range, cache_view
from .vtd_cache import stale_entries as _stale_entries

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
_INDEX_BITS = VC.PAGING_LEVEL_BITS


def _level_shift(level):
    """log2 of the input region one entry at `level` maps (1: PTE ... 5: PML5E)."""
    return VC.PAGING_PAGE_SHIFT + _INDEX_BITS * (level - 1)


def _enc(name, **kw):
    return fmt(name, "vtd").encode(**kw)


def _addr_shift(name, field):
    return fmt(name, "vtd").field(field).address_shift


def _addr(name, field, address):
    """The value of address field `field` of `name` that holds `address`."""
    return fmt(name, "vtd").field(field).from_address(address)


class VtdTables:
    """A first- or second-stage page-table tree (x86 512-entry tables), built by map().
    Tables are allocated in the table address space (a VM's GPAs for a first stage in guest
    memory: windows give GPA -> PA), and written at their PA."""

    def __init__(self, mem, stage, levels, alloc, *, windows=None, large=(True, True)):
        self.mem, self.stage, self.levels, self.alloc = mem, stage, levels, alloc
        self.windows = windows
        self.large = large                      # 2 MiB, 1 GiB leaves allowed
        self.names = FS_LEVELS if stage == "first" else SS_LEVELS
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
        a = fmt(name, "vtd").field("ADDR").from_address(addr)
        if self.stage == "first":
            return _enc(name, P=1, RW=1, US=1, A=1, ADDR=a)[0]
        return _enc(name, R=1, W=1, X=1, ADDR=a)[0]

    def _leaf(self, level, out, perm):
        name = self.names[level][1]
        a = fmt(name, "vtd").field("ADDR").from_address(out)
        extra = {"PS": 1} if level > 1 else {}
        if self.stage == "first":
            return _enc(name, P=1, RW=int("w" in perm), US=int("p" not in perm),
                        XD=int("x" not in perm), A=1, D=int("w" in perm), ADDR=a, **extra)[0]
        return _enc(name, R=int("r" in perm), W=int("w" in perm), X=int("x" in perm),
                    ADDR=a, **extra)[0]

    def _slot(self, table, addr, level):
        """PA of the entry of `table` (at `level`) that addr selects."""
        idx = (addr >> _level_shift(level)) & ((1 << _INDEX_BITS) - 1)
        return self.to_pa(table + 8 * idx)

    def _present(self, level, ent):
        """First stage: P; second stage: R or W (R=W=0 is not present)."""
        f = fmt(self.names[level][0] or self.names[level][1], "vtd")
        if self.stage == "first":
            return f.field("P").get([ent])
        return f.field("R").get([ent]) or f.field("W").get([ent])

    def _is_page(self, level, ent):
        """A PDPE or PDE with PS=1 maps a page (PML4E and PML5E have no page form)."""
        table, page = self.names[level]
        return table is not None and page is not None and fmt(table, "vtd").field("PS").get([ent])

    def _next(self, level, ent):
        return fmt(self.names[level][0], "vtd").field("ADDR").address([ent])

    def leaf(self, addr):
        """(PA of the leaf entry that maps addr, its value, level), or None."""
        table = self.root
        for lvl in range(self.levels, 0, -1):
            ea = self._slot(table, addr, lvl)
            ent = self.mem.read_u64(ea)
            if not self._present(lvl, ent):
                return None
            if lvl == 1 or self._is_page(lvl, ent):
                return ea, ent, lvl
            table = self._next(lvl, ent)
        return None

    def map(self, addr, out, size, perm="rw"):
        if self.stage == "second" and not ("r" in perm or "w" in perm):
            raise ModelError("a second-stage mapping needs r or w (R=W=0 is not present)")
        end = addr + size
        while addr < end:
            level = 1
            for lvl, ok in ((3, self.large[1]), (2, self.large[0])):
                sz = 1 << _level_shift(lvl)
                if ok and not (addr | out) & (sz - 1) and end - addr >= sz:
                    level = lvl
                    break
            self._map_one(addr, out, level, perm)
            step = 1 << _level_shift(level)
            addr += step
            out += step

    def _map_one(self, addr, out, level, perm):
        table = self.root
        for lvl in range(self.levels, level, -1):
            ea = self._slot(table, addr, lvl)
            ent = self.mem.read_u64(ea)
            present = self._present(lvl, ent)
            if present and self._is_page(lvl, ent):
                raise ModelError(f"{addr:#x}: already mapped by a larger page")
            if not present:
                ent = self._table_entry(lvl, self._new())
                self.mem.write_u64(ea, ent)
            table = self._next(lvl, ent)
        self.mem.write_u64(self._slot(table, addr, level), self._leaf(level, out, perm))


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
    device to (unit, requester ID) as they do an SMMU stream. ats: it has a device-TLB."""

    def __init__(self, spec):
        self.name = spec["name"]
        self.smmu = spec["vtd"]
        self.sid = spec["rid"]
        self.ats = spec.get("ats", False)
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
        if any(d.get("ats") for d in devices_spec):
            ecap["DT"] = 1                   # a unit with ATS devices supports device-TLBs
        for k, v in spec["features"].items():
            (cap if k in {f.name for f in fmt("CAP_REG", "vtd").fields} else ecap)[k] = v
        self.cap = _enc("CAP_REG", **cap)[0]
        self.ecap = _enc("ECAP_REG", **ecap)[0]
        self.root_table = self._page()
        # The invalidation queue: 256 128-bit descriptors (IQA_REG.QS=0, DW=0).
        self.iq_base = self._page()
        self.iqa = _enc("IQA_REG", IQA=_addr("IQA_REG", "IQA", self.iq_base), QS=0, DW=0)[0]
        self.iqh = self.iqt = 0                  # descriptor indices (IQH_REG.QH, IQT_REG.QT)
        self.ics_iwc = 0
        self.iq_error = None
        self.rtaddr = _enc("RTADDR_REG", RTA=_addr("RTADDR_REG", "RTA", self.root_table),
                           TTM="scalable")[0]
        ir = spec.get("interrupt_remapping", True)
        self.gsts = _enc("GSTS_REG", TES=int(spec["translation"]), RTPS=1, QIES=1,
                         IRES=int(ir), IRTPS=int(ir),
                         CFIS=int(spec.get("compat_interrupts", False)))[0]
        # The interrupt remapping table: IRT_ENTRIES 16-byte IRTEs (IRTA_REG.S: 2^(S+1)).
        self.irt = self._page(fmt("IRTE", "vtd").size * IRT_ENTRIES)
        self.irta = _enc("IRTA_REG", IRTA=_addr("IRTA_REG", "IRTA", self.irt),
                         S=IRT_ENTRIES.bit_length() - 2,
                         EIME=int(spec.get("x2apic", False)))[0]
        self.regs = {"CAP_REG": self.cap, "ECAP_REG": self.ecap, "GSTS_REG": self.gsts,
                     "RTADDR_REG": self.rtaddr, "IRTA_REG": self.irta}
        self.walker = VtdWalker(mem, cap=self.cap, ecap=self.ecap, gsts=self.gsts,
                                rtaddr=self.rtaddr, irta=self.irta, haw=self.haw, caching=True)
        self.domains: dict[str, VtdDomain] = {}
        self.devices: dict[int, VtdDevice] = {}
        self.device_tlbs: dict[int, DeviceTlb] = {}     # by RID: the ATS devices' caches
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
            re_pa = self.root_table + fmt("SM_ROOT_ENTRY", "vtd").size * bus
            words = [self.mem.read_u64(re_pa), self.mem.read_u64(re_pa + 8)]
            ctp = self._ctx_tables[key]
            half = dict(UP=1, UCTP=_addr("SM_ROOT_ENTRY", "UCTP", ctp)) if upper else \
                dict(LP=1, LCTP=_addr("SM_ROOT_ENTRY", "LCTP", ctp))
            new = _enc("SM_ROOT_ENTRY", **half)
            words[1 if upper else 0] = new[1 if upper else 0]
            self.mem.write_words(re_pa, words)
        return self._ctx_tables[key]

    def _build_device(self, dv):
        rid = dv["rid"]
        bus, devfn = rid >> 8, rid & 0xFF                  # PCI requester ID: bus, devfn
        entries = [p["pasid"] for p in dv["pasids"]] + [dv["rid_pasid"]]
        dir_entries = (max(entries) >> VC.PASID_TABLE_INDEX_BITS) + 1
        pdts = max(0, (dir_entries - 1).bit_length() - VC.PASID_DIR_PDTS_BASE)
        pdir = self._page(max(PAGE, fmt("PASID_DIR_ENTRY", "vtd").size
                              << (pdts + VC.PASID_DIR_PDTS_BASE)))
        upper, slot = divmod(devfn, 1 << VC.SM_CONTEXT_INDEX_BITS)
        ctx = self._context_table(bus, bool(upper)) + fmt("SM_CONTEXT_ENTRY", "vtd").size * slot
        # DTE: translation requests and translated requests of an ATS device are allowed.
        self.mem.write_words(ctx, _enc("SM_CONTEXT_ENTRY", P=1, PASIDE=1, PDTS=pdts,
                                       PASIDDIRPTR=_addr("SM_CONTEXT_ENTRY", "PASIDDIRPTR",
                                                         pdir),
                                       RID_PASID=dv["rid_pasid"],
                                       DTE=int(bool(dv.get("ats")))))
        tables = {}
        for p in dv["pasids"]:
            hi, lo = divmod(p["pasid"], 1 << VC.PASID_TABLE_INDEX_BITS)
            if hi not in tables:
                tables[hi] = self._page()
                self.mem.write_u64(pdir + 8 * hi, _enc(
                    "PASID_DIR_ENTRY", P=1,
                    SMPTBLPTR=_addr("PASID_DIR_ENTRY", "SMPTBLPTR", tables[hi]))[0])
            fields = dict(P=1, PGTT=PGTTS[p["pgtt"]], DID=p["did"], PWSNP=1, SRE=int(p["sre"]))
            if p["ss"]:
                ss = self.domains[p["ss"]]
                fields.update(AW=AW_OF_LEVELS[ss.levels],
                              SLPTPTR=_addr("PASID_ENTRY", "SLPTPTR", ss.root))
            if p["fs"]:
                fs = self.domains[p["fs"]]
                fields.update(FLPM=FLPM_OF_LEVELS[fs.levels],
                              FLPTPTR=_addr("PASID_ENTRY", "FLPTPTR", fs.root))
            self.mem.write_words(tables[hi] + fmt("PASID_ENTRY", "vtd").size * lo,
                                 _enc("PASID_ENTRY", **fields))
        x2apic = bool(fmt("IRTA_REG", "vtd").field("EIME").get([self.irta]))
        for e in dv.get("irtes", []):
            # xAPIC destination IDs sit in DST[15:8] (VT-d 9.10); x2APIC uses all 32 bits.
            fields = dict(P=1, V=e["vector"], DST=e["dest"] if x2apic else
                          _enc("IRTE_DST_XAPIC", APIC_ID=e["dest"])[0],
                          DLM=DLMS[e["delivery"]], DM=int(e["mode"] == "logical"),
                          TM=int(e["trigger"] == "level"))
            if e["verify"]:
                fields.update(SVT="requester_id", SQ="all_16", SID=rid)
            self.mem.write_words(self.irt + 16 * e["index"], _enc("IRTE", **fields))
        self.devices[rid] = VtdDevice(dv)
        if dv.get("ats"):
            self.device_tlbs[rid] = DeviceTlb(rid)

    def cap_field(self, name):
        """A CAP_REG field's value."""
        return fmt("CAP_REG", "vtd").field(name).get([self.cap])

    def add_device(self, spec) -> VtdDevice:
        """A requester added after the build (a device bound to iommufd): its context entry
        and PASID directory, as a [[vtd_device]] spec without PASID entries gets them."""
        self._build_device(spec)
        return self.devices[spec["rid"]]

    # -- translation --------------------------------------------------------------------------
    def translate(self, rid, addr, pasid=None, *, access="read", priv=False, dry=False):
        """One DMA request through the unit, traced. A recorded fault (FPD clear) is logged in
        `faults` unless dry; dry also leaves the A/D flags as they are.

        A device with a device-TLB (ats) looks there first: a hit is a translated request the
        unit does not walk (the one step is `devtlb`); a miss is a translation request (AT=01b)
        whose translation the device caches. dry looks at memory only: no device-TLB."""
        atc = None if dry or not self.walker.caching else self.device_tlbs.get(rid)
        if atc is not None and (pasid is not None or not priv):
            e = atc.lookup(addr, pasid, access, priv)
            if e is not None:
                off = addr - e["base"]
                return {"kind": "translated", "pa": e["pa"] + off, "gpa": None,
                        "size": e["size"], "perm": e["perm"], "pgtt": e["pgtt"],
                        "did": e["did"], "pasid": e["pasid_used"], "snoop": False,
                        "ad_writes": 0, "hit": True, "fault": None, "fault_index": None,
                        "device_tlb": True,
                        "steps": [{"what": "devtlb", "stage": 0, "level": None,
                                   "purpose": None, "outcome": "cached", "index": 0,
                                   "in_addr": addr, "table": e["base"], "desc_gpa": None,
                                   "desc_pa": None, "desc": e["pa"]}]}
        try:
            r = self.walker.translate(rid, addr, pasid, write=access == "write",
                                      exe=access == "exec", priv=priv, trace=True, dry=dry,
                                      at=1 if atc is not None else 0)
        except ValueError as e:
            raise ModelError(f"{self.name}: {e}") from None
        if atc is not None and r["kind"] == "translated":
            atc.fill(addr, pasid, priv, r)
        f = r["fault"]
        r["fault_index"] = None
        if f and f["recorded"] and not dry:
            r["fault_index"] = len(self.faults)
            self.faults.append(dict(f, index=len(self.faults)))
        return r

    # -- queued invalidation (VT-d 6.5.2) --------------------------------------------------------
    IQ_ENTRIES = 256
    # Bytes per descriptor: a 128-bit one, or twice that with IQA_REG.DW=1 (256-bit descriptors).
    IQ_DESC = fmt("CC_INV_DSC", "vtd").size
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
        lo = t.field("TYPE_LO")
        code = (t.field("TYPE_HI").get(w) << lo.width) | lo.get(w)
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
        psc = None
        if name == "CC_INV_DSC":
            n = k.invalidate_context(v["G"], v["SID"], v["FM"])
        elif name == "PC_INV_DSC":
            n = k.invalidate_pasid(v["G"], v["DID"], v["PASID"])
        elif name == "IOTLB_INV_DSC":
            n = k.invalidate_iotlb(v["G"], v["DID"], f.field("ADDR").address(w), v["AM"],
                                   v["IH"])
            psc = k.psc_removed
        elif name == "P_IOTLB_INV_DSC":
            n = k.invalidate_piotlb(v["G"], v["DID"], v["PASID"], f.field("ADDR").address(w),
                                    v["AM"], v["IH"])
            psc = k.psc_removed
        elif name == "IEC_INV_DSC":
            try:
                n = k.invalidate_iec(v["G"], v["IIDX"], v["IM"])
            except ValueError as e:
                return {"type": name, "code": code, "fields": v, "removed": 0,
                        "note": str(e)}
            note = "interrupt entry cache"
        elif name in ("DEV_TLB_INV_DSC", "P_DEV_TLB_INV_DSC"):
            base, size = ats_range(v["ADDR"], v["S"])
            atc = self.device_tlbs.get(v["SID"])
            if atc is None:
                n = 0
                note = f"{v['SID']:#06x} has no device-TLB"
            else:
                pasid = v["PASID"] if name == "P_DEV_TLB_INV_DSC" else None
                # G=1 also names every PASID's global translations; the model caches none.
                n = atc.invalidate(pasid, base, size)
                note = f"device-TLB of {v['SID']:#06x}: {base:#x} size {size:#x}"
        elif name == "INV_WAIT_DSC":
            n = 0
            if v["SW"]:
                a = f.field("STATUS_ADDR").address(w)
                self.mem.write(a, v["STATUS_DATA"].to_bytes(4, "little"))
                note = f"status {v['STATUS_DATA']:#x} written at {a:#x}"
            if v["IF"]:
                self.ics_iwc = 1
                note += ("; " if note else "") + "ICS_REG.IWC=1"
        if psc is not None:
            note = f"and {psc} paging-structure-cache entries" + (
                " (IH=1: non-leaf entries kept)" if v["IH"] and v["G"] == 3 else "")
        return {"type": name, "code": code, "fields": v, "removed": n, "note": note,
                "removed_psc": psc}

    def stale_entries(self):
        """Cached entries memory no longer matches, each with the descriptor that removes it:
        {kind (context, pasid, iotlb, psc, iec, devtlb), key, problem, fix (descriptor and
        fields)}."""
        return _stale_entries(self)

    def caches(self):
        """Every cache of the unit and its devices' device-TLBs, entries marked stale:
        model/vtd_cache.cache_view."""
        return cache_view(self)

    def remap_msi(self, rid, addr, data, dry=False):
        """An interrupt request through the unit's interrupt remapping; a recorded fault is
        logged in `faults` unless dry (dry: the IRTE from memory, no interrupt entry cache
        read or fill, nothing recorded)."""
        try:
            r = self.walker.remap_msi(rid, addr, data, dry)
        except ValueError as e:
            raise ModelError(f"{self.name}: {e}") from None
        f = r["fault"]
        r["fault_index"] = None
        if f and f["recorded"] and not dry:
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
