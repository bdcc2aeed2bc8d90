"""Inspect commands: topology, registers, stream and CD tables, page tables, caches, queues,
memory. None of them changes state: they ask the model's inspection methods (model/views.py),
which read memory without the walker's caches."""
from __future__ import annotations

from ..arch.fieldtable import FieldError, fmt
from ..arch.smmuv3 import registers as R
from .. import results as res
from .registry import (Address, Choice, CommandError, Filter, Flag, Int, Iommu, Smmu, Stream,
                       StreamT, Text, Vm, command, parse_int, shown)
from .vtd import pasid_values

STE = fmt("STE")
CD = fmt("CD")
L1STD = fmt("L1STD")
L1CD = fmt("L1CD")


def field_rows(f, words, nonzero=False):
    rows = []
    for x in f.fields:
        v = x.get(words)
        if nonzero and not v:
            continue
        rows.append({"field": x.name, "dword": x.dword,
                     "bits": f"{x.hi}:{x.lo}" if x.hi != x.lo else str(x.lo),
                     "value": v, "meaning": x.meaning(v)})
    return rows


def address_of(f, name: str, values: dict) -> int:
    """The address a field holds (its bits sit in place: address = value << lo)."""
    fld = f.field(name)
    return values[fld.name] << fld.lo


def addresses(f, words) -> dict:
    """{field: address} for the fields of f that hold an address (value << lo)."""
    return {x.name: x.get(words) << x.lo for x in f.fields if x.is_address}


def stream_of(ctx, target):
    smmu_name, sid = target
    return ctx.system.smmu(smmu_name), sid


def device_name(ctx, smmu, sid):
    st = ctx.system.streams.get((smmu, sid))
    return st.name if st is not None else None


# ---------------------------------------------------------------------------------------------
@command("topology", pure=True)
def topology(ctx):
    """The system: SMMUs, VMs, translation domains and streams (devices).

    Streams declared with a count show as one row with their StreamID range."""
    s = ctx.system
    smmus = []
    for name, m in s.smmus.items():
        st = m.strtab
        smmus.append({"name": name, "base": m.base,
                      "strtab": {"base": st["base"], "format": "2lvl" if st["fmt"] == 1
                                 else "linear", "log2size": st["log2size"],
                                 "split": st["split"]},
                      "smmuen": bool(m.field("CR0", "SMMUEN")),
                      "stage1": bool(m.features.get("S1P")),
                      "stage2": bool(m.features.get("S2P")),
                      "streams": s.streams.count(name)})
    vms = [{"name": v.name, "ram": [{"ipa": b, "size": sz, "pa": pa} for b, sz, pa in v.ram]}
           for v in s.vms.values()]
    domains = [{"name": d.name, "smmu": d.spec["smmu"], "stage": d.stage,
                "granule": 1 << d.tables.g, "bits": d.tables.ias, "root": d.root,
                "asid": d.asid if d.stage == 1 else None,
                "vmid": d.vmid if d.stage == 2 else None,
                "vm": d.vm.name if d.vm else None} for d in s.domains.values()]
    streams = []
    for sp in s.spec["stream"]:
        streams.append({"name": sp["name"], "smmu": sp["smmu"], "sid": sp["sid"],
                        "count": sp["count"], "config": sp["config"], "s2": sp["s2"],
                        "cds": [{"ssid": c["ssid"], "domain": c["domain"]} for c in sp["cds"]]})
    return res.Topology(**{"name": s.name, "description": s.spec.get("description", ""),
                               "smmus": smmus, "vms": vms, "domains": domains,
                               "streams": streams, "shared": shared_domains(ctx)})


def shared_domains(ctx) -> list:
    """Streams that share a translation context, from their STEs and CDs in memory: the same
    stage 2 (VMID and S2TTB) or the same stage 1 (ASID and TTB0, under the same VMID when
    nested). A stream declared with a count is one row (its first StreamID stands for all)."""
    groups: dict = {}
    for sp in ctx.system.spec["stream"]:
        m = ctx.system.smmu(sp["smmu"])
        d = m.stream_domains(sp["sid"])
        who = {"sid": sp["sid"], "count": sp["count"], "device": sp["name"]}
        vmid = d["s2"][0] if d["s2"] else None
        if d["s2"]:
            key = ("stage 2", sp["smmu"], d["s2"])
            groups.setdefault(key, []).append(dict(who, ssid=None))
        for ssid, asid, ttb0 in d["s1"]:
            key = ("stage 1", sp["smmu"], (vmid, asid, ttb0))
            groups.setdefault(key, []).append(dict(who, ssid=ssid))
    out = []
    for (stage, smmu, k), members in groups.items():
        if len(members) < 2 and members[0]["count"] < 2:
            continue
        ctxkey = {"vmid": k[0], "s2ttb": k[1]} if stage == "stage 2" else \
            {"vmid": k[0], "asid": k[1], "ttb0": k[2]}
        out.append({"stage": stage, "smmu": smmu, "key": ctxkey, "streams": members})
    return out


@command("smmus", pure=True)
def smmus(ctx):
    """List the SMMUs: name, base address, stages, stream table."""
    r = topology(ctx)
    return res.Smmus(**{"smmus": r.data["smmus"]})


@command("vms", pure=True)
def vms(ctx):
    """List the VMs and their memory (guest IPA ranges and the host PA behind each).

    A VM's vSMMUs: `vsmmu VM`; the iommufd objects behind them: `iommufd`."""
    return res.Vms(**{"vms": topology(ctx).data["vms"]})


def _reg_names(ctx, a):
    if ctx is not None and a.get("smmu") in ctx.system.vtds:
        from ..arch.vtd.registers import FORMATS
        return list(FORMATS)
    return [n[5:] for n in R.FORMATS]


@command("regs", Iommu(), Text("register", "one register (e.g. CR0, IDR0, STRTAB_BASE_CFG; "
                               "VT-d: CAP_REG, GSTS_REG, ...)",
                               optional=True, metavar="REGISTER", complete=_reg_names),
         pure=True)
def regs(ctx, smmu, register=None):
    """SMMU registers with their decoded fields.

    regs SMMU            every register (offset, value)
    regs SMMU REGISTER   one register, field by field (REGISTER as CR0 or SMMU_CR0)

    On an imported snapshot, a register its register file did not give is "not provided"
    (value null), never 0.

    On a VT-d unit: its registers by the spec's names (CAP_REG, ECAP_REG, GSTS_REG, RTADDR_REG,
    IQA_REG, IQH_REG, IQT_REG, IRTA_REG, FSTS_REG, ...), decoded by field."""
    if smmu in ctx.system.vtds:
        from .vtd import regs_vtd
        return regs_vtd(ctx, smmu, register)
    m = ctx.system.smmu(smmu)
    if register is not None:
        v = m.reg(register)
        name = "SMMU_" + register.upper() if not register.upper().startswith("SMMU_") \
            else register.upper()
        name = R.ALIASES.get(name, name)
        given = m.register_provided(name)
        return res.Register(**{"smmu": smmu, "name": name, "offset": R.OFFSETS.get(name),
                                   "size": fmt(name).size, "value": v if given else None,
                                   "fields": field_rows(fmt(name), [v]) if given else [],
                                   "provided": given})
    rows = []
    for name in R.FORMATS:
        given = m.register_provided(name)
        rows.append({"name": name, "offset": R.OFFSETS.get(name), "size": fmt(name).size,
                     "value": m.regs[name] if given else None, "provided": given})
    return res.Registers(**{"smmu": smmu, "registers": rows})


def _config_names(ctx, args):
    return [n for n in STE.field("Config").enum.values() if not n.startswith("reserved")]


@command("strtab", Smmu(), Int("sid", "first StreamID to list", keyword=True, default=0),
         Int("count", "how many STEs at most", keyword=True, default=64, lo=1, hi=1 << 20),
         Flag("all", "list invalid (V=0) STEs too"),
         Text("config", "only STEs with this Config (s1_trans, s2_trans, nested, bypass, "
              "abort)", keyword=True, metavar="CONFIG", complete=_config_names),
         Filter("legal", "only STEs the SMMU accepts (legal=no: only those it rejects)"),
         Filter("illegal", "only STEs the SMMU rejects, C_BAD_STE (illegal=no: only those "
                "it accepts)"),
         Text("device", "only the STE of this device", keyword=True, metavar="DEVICE",
              complete=lambda ctx, a: list(ctx.system.devices)),
         pure=True)
def strtab(ctx, smmu, sid=0, count=64, all=False, config=None, legal=None, illegal=None,
           device=None):
    """The stream table: its base and format, and the valid STEs from sid= on (count= at most).

    Filters: config=NAME, legal or illegal (whether the SMMU accepts the STE; a row's problem
    says why not: legal and legal=yes keep the accepted STEs, legal=no the rejected ones,
    illegal the same the other way round), device=NAME. Each row names its device when one is
    known (a scenario's, or an imported guest's from QEMU `info pci`)."""
    m = ctx.system.smmu(smmu)
    st = m.strtab
    info = {"smmu": smmu, "base": st["base"], "format": "2lvl" if st["fmt"] else "linear",
            "log2size": st["log2size"], "split": st["split"] if st["fmt"] else None}
    if legal is not None and illegal is not None and legal == illegal:
        raise CommandError("strtab: legal and illegal exclude each other")
    want = legal if legal is not None else None if illegal is None else not illegal
    cfg_field = STE.field("Config")
    if config is not None and config not in _config_names(ctx, {}):
        raise CommandError(f"strtab: config: {shown(config)} is not one of "
                           f"{', '.join(_config_names(ctx, {}))}")
    if device is not None:
        d = ctx.system.devices.get(device)
        if d is None or d.smmu != smmu:
            raise CommandError(f"strtab: device: no device {shown(device)} on {smmu}")
        sid, count = d.sid, 1
    rows, more, first = [], False, sid
    while len(rows) < count:
        found, more = m.stream_table_entries(first, count, all)
        for e in found:
            v = STE.decode(e["words"])
            name = cfg_field.value_name(v["Config"])
            problem = m.check_ste(e["words"])
            ok = problem in ("", "STE.Config=abort")
            if config is not None and name != config or want is not None and ok != want \
                    or device is not None and e["sid"] != sid:
                continue
            if len(rows) == count:
                more = True
                break
            rows.append({"sid": e["sid"], "addr": e["addr"],
                         "device": device_name(ctx, smmu, e["sid"]), "v": v["V"],
                         "config": name, "s2vmid": v["S2VMID"],
                         "s1contextptr": address_of(STE, "S1ContextPtr", v),
                         "s1cdmax": v["S1CDMax"], "s2ttb": address_of(STE, "S2TTB", v),
                         "legal": ok, "problem": None if ok else problem})
        if not more or not found or device is not None:
            break
        first = found[-1]["sid"] + 1
    if device is not None:
        more = False
    info.update({"entries": rows, "more": more})
    return res.Strtab(**info)


@command("ste", Stream("target", "DEVICE, or SMMU SID"),
         Flag("all", "list every field in rows, zero ones too"), pure=True)
def ste(ctx, target, all=False):
    """One Stream Table Entry: where it is, its words, every non-zero field decoded (every
    field with all), and whether the SMMU would accept it (the reason it is illegal, as
    C_BAD_STE would report)."""
    m, sid = stream_of(ctx, target)
    addr = m.ste_location(sid)
    words = m.read_words(addr, 8, "STE")
    problem = m.check_ste(words)
    cached = m.cached_ste(sid)
    cfg = STE.field("Config").get(words)
    return res.Ste(**{
        "smmu": m.name, "sid": sid, "device": device_name(ctx, m.name, sid), "addr": addr,
        "words": words, "fields": STE.decode(words), "addresses": addresses(STE, words),
        "rows": field_rows(STE, words, not all),
        "config": STE.field("Config").value_name(cfg), "valid": bool(STE.field("V").get(words)),
        "legal": problem == "" or problem == "STE.Config=abort", "problem": problem or None,
        "reserved_bits": [{"dword": d, "mask": mk} for d, mk in STE.reserved_bits(words)],
        "cached": None if cached is None else {"words": cached["words"],
                                               "stale": cached["words"] != words}})


@command("cd", Stream("target", "DEVICE, or SMMU SID"),
         Int("ssid", "SubstreamID (default 0)", optional=True, default=0, hi=(1 << 20) - 1),
         Flag("all", "list every field in rows, zero ones too"), pure=True)
def cd(ctx, target, ssid=0, all=False):
    """One Context Descriptor: found through the STE (S1ContextPtr, S1Fmt, S1CDMax; through
    stage 2 when the STE is nested), its words, non-zero fields (every field with all), and
    whether it is legal."""
    m, sid = stream_of(ctx, target)
    loc = m.cd_entry(sid, ssid)
    words = loc["words"]
    problem = m.check_cd(words, loc["ste"])
    cached = m.cached_cd(sid, ssid)
    return res.Cd(**{
        "smmu": m.name, "sid": sid, "ssid": ssid, "device": device_name(ctx, m.name, sid),
        "addr": loc["addr"], "pa": loc["pa"], "l1cd": loc["l1"], "words": words,
        "fields": CD.decode(words), "addresses": addresses(CD, words),
        "rows": field_rows(CD, words, not all),
        "valid": bool(CD.field("V").get(words)), "legal": problem == "",
        "problem": problem or None,
        "cached": None if cached is None else {"words": cached["words"],
                                               "stale": cached["words"] != words}})


@command("cdtable", Stream("target", "DEVICE, or SMMU SID"), Flag("all", "list invalid CDs too"),
         pure=True)
def cdtable(ctx, target, all=False):
    """The CD table of a stream: format, S1CDMax, the L1 descriptors of a 2-level table, and
    each valid CD with its ASID and TTB0."""
    m, sid = stream_of(ctx, target)
    t = m.cd_table(sid, all)
    v = STE.decode(t["ste"])
    rows = []
    for e in t["cds"]:
        fv = CD.decode(e["words"])
        rows.append({"ssid": e["ssid"], "addr": e["addr"], "pa": e["pa"], "v": fv["V"],
                     "asid": fv["ASID"], "ttb0": address_of(CD, "TTB0", fv), "t0sz": fv["T0SZ"],
                     "tg0": CD.field("TG0").value_name(fv["TG0"]) or fv["TG0"],
                     "epd0": fv["EPD0"], "epd1": fv["EPD1"]})
    l1s = [{"index": e["index"], "addr": e["addr"], "v": L1CD.field("V").get(e["words"]),
            "l2ptr": address_of(L1CD, "L2Ptr", L1CD.decode(e["words"]))} for e in t["l1"]]
    return res.CdTable(smmu=m.name, sid=sid, format=STE.field("S1Fmt").value_name(v["S1Fmt"]),
                       base=address_of(STE, "S1ContextPtr", v), s1cdmax=v["S1CDMax"],
                       ipa=t["ipa"], l1=l1s, cds=rows, truncated=t["truncated"])


def _pt_ids(ctx, args):
    """Completion of pt's second word: the StreamIDs (or VT-d requester IDs) present."""
    t = args.get("target")
    if ctx is None or not (t in ctx.system.smmus or t in ctx.system.vtds):
        return []
    return StreamT.sids(ctx, t)


# Rows one `pt` may list: tables full of unmergeable leaves give 512 rows a table, so the
# limit, not the tables, bounds the time and memory (2^14 rows: about 0.3 s and 3.5 MB of JSON).
PT_MAX_ROWS = 1 << 14


@command("pt", Text("target", "a domain, a device, or an SMMU and a StreamID",
                    metavar="DOMAIN|DEVICE|SMMU",
                    complete=lambda ctx, a: list(ctx.system.domains) + list(ctx.system.devices)
                    + list(ctx.system.smmus) + list(ctx.system.vtd_devices)
                    + list(ctx.system.vtds)),
         Text("sid", "StreamID (after an SMMU name; VT-d: the requester ID after the unit)",
              optional=True, metavar="SID", complete=_pt_ids),
         Int("ssid", "SubstreamID of the CD (default 0)", keyword=True, default=None,
             hi=(1 << 20) - 1),
         Choice("stage", ("1", "2", "nested"), "which stage's tables (default: stage 1 if the "
                "stream has one); nested: IOVA -> IPA -> PA in one tree"),
         Int("limit", f"at most this many rows (default 2000, at most {PT_MAX_ROWS})",
             keyword=True, default=2000, lo=1, hi=PT_MAX_ROWS),
         Address("addr", "follow one address down the tree instead", keyword=True),
         Int("pasid", "VT-d: the PASID entry (default: RID_PASID); on an SMMU the same as "
             "ssid", keyword=True, hi=(1 << 20) - 1, complete=pasid_values),
         pure=True)
def pt(ctx, target, sid=None, ssid=None, stage=None, limit=2000, addr=None, pasid=None):
    """Page tables as a tree of ranges (like a page-table dump).

    pt DOMAIN                       the domain's tables
    pt DEVICE|SMMU SID [ssid=N]     the stage-1 tables of the stream's CD (through stage 2
                                    when nested), or stage=2 for its stage-2 tables
    pt DEVICE|SMMU SID stage=nested one tree of IOVA -> IPA -> PA ranges with both stages'
                                    permissions and the effective one
    addr=ADDRESS                    only the descriptors that map ADDRESS, level by level

    Consecutive leaves with contiguous output and equal attributes are merged into one row.
    Permissions read r/w/x for privileged access, then u (EL0 may access) and X (EL0 may
    execute) at stage 1, by the walker's rule (memory writable at EL0 is never executable
    privileged; table-level APTable/PXNTable/UXNTable apply).

    On Intel VT-d (a VT-d device, or UNIT RID):
    pt DEVICE|UNIT RID [pasid=N] [stage=1|2|nested] [addr=ADDRESS]
    the tables of the requester's PASID entry (pasid=N, default RID_PASID): stage=1 the first
    stage (4/5-level x86 paging; nested: its tables are GPAs read through the second stage),
    stage=2 the second stage (SAGAW levels), stage=nested IOVA -> GPA -> PA with both stages'
    permissions (default: the first stage, or the second for a second-stage-only entry).
    Rows name the entries as the field tables do (FS_PTE, FS_PDE_2M, SS_PDPE_1G, ...) with
    perm r/w/x and u (U/S=1) at the first stage, r/w/x at the second (X as read without SLEE),
    and the leaf's A, D, SNP, ... bits. They come from the walker's own reader."""
    s = ctx.system
    if pasid is not None and ssid is not None and pasid != ssid:
        raise CommandError("pt: ssid and pasid name the same thing; give one")
    vtd_target = target in s.vtd_devices and sid is None or target in s.vtds
    if vtd_target:
        from .vtd import pt_vtd
        if target in s.vtds:
            if sid is None:
                raise CommandError(f"pt: sid: missing the requester ID after {target}")
            try:
                rid = parse_int(sid)
            except ValueError:
                raise CommandError(f"pt: sid: {shown(sid)} is not a number") from None
            if rid >> 16:
                raise CommandError(f"pt: sid: {rid:#x} is not a 16-bit requester ID")
            unit = target
        else:
            d = s.vtd_devices[target]
            unit, rid = d.smmu, d.sid
        return pt_vtd(ctx, unit, rid, pasid if pasid is not None else ssid, stage, limit, addr)
    if pasid is not None:
        ssid = pasid
    if target in s.domains and sid is None:
        tables = s.domain_tables(target)
        where = {"domain": target, "stage": tables.stage}
        ipa = tables.stage == 1 and s.domains[target].vm is not None
    else:
        if target in s.devices and sid is None:
            st = s.devices[target]
            smmu_name, sidv = st.smmu, st.sid
        elif target in s.smmus:
            if sid is None:
                raise CommandError(f"pt: sid: missing the StreamID after {target}")
            try:
                sidv = parse_int(sid)
            except ValueError:
                raise CommandError(f"pt: sid: {shown(sid)} is not a number") from None
            smmu_name = target
        else:
            raise CommandError(f"pt: target: {shown(target)} is not a domain, device or SMMU")
        m = s.smmu(smmu_name)
        if stage == "nested":
            return _pt_nested(m, smmu_name, sidv, ssid, limit, addr)
        tables = m.stream_tables(sidv, ssid, int(stage) if stage else None)
        where = {"smmu": smmu_name, "sid": sidv, "stage": tables.stage}
        if tables.stage == 1:
            where["ssid"] = ssid or 0
        ipa = tables.stage == 1 and m.is_nested(sidv)
    info = dict(where, granule=tables.granule, start_level=tables.start_level,
                input_bits=tables.input_bits, root=tables.root, tables_are_ipa=ipa)
    if addr is not None:
        r = tables.lookup(addr)
        info.update({"addr": addr, "steps": r["steps"], "leaf": r["leaf"],
                     "out": r["leaf"]["out"] if r["leaf"] else None})
        return res.PageTableLookup(**info)
    d = tables.dump(limit)
    for row in d["rows"]:
        row.pop("attrs", None)
    info.update(d)
    return res.PageTables(**info)


def _pt_nested(m, smmu_name, sid, ssid, limit, addr):
    if addr is not None:
        raise CommandError("pt: addr= goes with stage=1 or stage=2 (walk shows both stages)")
    d = m.nested_tables(sid, ssid, limit)
    t1, t2 = d["s1"], d["s2"]
    return res.NestedPageTables(
        smmu=smmu_name, sid=sid, ssid=ssid or 0, stage=1, granule=t1.granule,
        start_level=t1.start_level, input_bits=t1.input_bits, root=t1.root, tables_are_ipa=True,
        s2={"granule": t2.granule, "start_level": t2.start_level, "input_bits": t2.input_bits,
            "root": t2.root}, rows=d["rows"], truncated=d["truncated"])


@command("tlb", Iommu(), Int("vmid", "only this VMID", keyword=True),
         Int("asid", "only this ASID", keyword=True), pure=True)
def tlb(ctx, smmu, vmid=None, asid=None):
    """IOTLB contents: kind (S1, S2, NESTED, EL2), VMID, ASID, input range, output, level,
    permissions; with hit/miss counters.

    On a VT-d unit: its IOTLB (DID, PASID, PGTT, input range, output, permissions), its
    paging-structure caches (PML5E/PML4E/PDPE/PDE, SL- for the second stage: DID, PASID, the
    region the entry maps, the next table) and its devices' device-TLBs, each entry marked
    stale when memory no longer gives what it holds (check names the descriptor that fixes
    it)."""
    if smmu in ctx.system.vtds:
        if vmid is not None or asid is not None:
            raise CommandError("tlb: vmid= and asid= are SMMU tags; a VT-d IOTLB is tagged by "
                               "DID and PASID")
        return _vtd_caches(ctx, smmu, "tlb")
    m = ctx.system.smmu(smmu)
    return res.Tlb(smmu=smmu, entries=m.tlb_entries(vmid, asid), stats=m.tlb_stats())


@command("cfgcache", Iommu(), pure=True)
def cfgcache(ctx, smmu):
    """Configuration cache contents: cached STEs and CDs, each compared with memory (a cached
    copy that differs from memory is stale: an invalidation is missing).

    On a VT-d unit: its context-cache, PASID-cache and interrupt entry cache (cached IRTEs),
    each entry compared with memory."""
    if smmu in ctx.system.vtds:
        return _vtd_caches(ctx, smmu, "cfgcache")
    m = ctx.system.smmu(smmu)
    stes, cds = m.cached_entries()
    return res.CfgCache(
        smmu=smmu,
        stes=[{"sid": c["sid"], "addr": c["pa"], "words": c["words"],
               "device": device_name(ctx, smmu, c["sid"]), "stale": c["stale"]} for c in stes],
        cds=[{"sid": c["sid"], "ssid": c["ssid"], "pa": c["pa"], "words": c["words"],
              "stale": c["stale"]} for c in cds])


_VTD_CACHES = {"tlb": ("iotlb", "psc", "devtlb"), "cfgcache": ("context", "pasid", "iec")}


def _vtd_caches(ctx, unit, which):
    view = ctx.system.vtd(unit).caches()
    keep = _VTD_CACHES[which]
    return res.VtdCaches(unit=unit, which=which, stats=view["stats"],
                         **{k: view[k] if k in keep else None for k in
                            ("context", "pasid", "iotlb", "psc", "iec", "devtlb")})


@command("mem", Address("address", "a PA, or an IPA with vm="),
         Int("length", "bytes (default 64, at most 64K)", optional=True, default=64, lo=1,
             hi=1 << 16),
         Vm("vm", "read guest memory: ADDRESS is an IPA of this VM", keyword=True), pure=True)
def mem(ctx, address, length=64, vm=None):
    """Hexdump of modeled memory at a PA, or at a VM's IPA (vm=NAME).

    Unbacked memory is shown as such, never as zeros."""
    if address + length > 1 << 64:
        raise CommandError(f"mem: length: {address:#x} + {length:#x} wraps the address space")
    return res.Mem(addr=address, vm=vm, length=length,
                   chunks=ctx.system.memory_chunks(address, length, vm))


@command("cmdq", Iommu(), Int("history", "consumed commands to show (default 16); older "
                             "than this session's, read back from the ring memory",
                             keyword=True, default=16), pure=True)
def cmdq(ctx, smmu, history=16):
    """The command queue: PROD/CONS, errors, the last consumed commands with what each did,
    and the commands still waiting.

    history=N goes back N commands behind CONS. Commands consumed before this session (an
    imported dump's) are decoded from the ring memory, which still holds them, as far as
    they are intact; `history_stop` says where that history stops being trustworthy (the
    previous lap's pending slots, index 0 with CONS.WRAP=0, a slot that is not a command).

    On a VT-d unit: its invalidation queue (IQA_REG base and size, IQH_REG, IQT_REG, the
    queue error), the last N descriptors fetched behind IQH and those waiting up to IQT, each
    decoded by its type (CC_INV_DSC, P_IOTLB_INV_DSC, ...; empty slots left out)."""
    if smmu in ctx.system.vtds:
        from .vtd import iq_vtd
        return iq_vtd(ctx, smmu, history)
    m = ctx.system.smmu(smmu)
    h = m.command_history(history)
    return res.Cmdq(**{"smmu": smmu, "prod": m.reg("CMDQ_PROD"), "cons": m.reg("CMDQ_CONS"),
                           "base": m.cmdq.base, "log2size": m.cmdq.log2size,
                           "gerror": m.gerror_active(), "drop_budget": m.cmdq.drop_budget,
                           "entries": plain_log(h["entries"]), "history_stop": h["stop"]})


def _event_names(ctx, args):
    if ctx is not None and args.get("smmu") in ctx.system.vtds:
        from ..arch.vtd.faults import FAULT_REASONS     # a VT-d unit: its fault reasons
        return [name for name, _m in FAULT_REASONS.values()]
    from ..arch.smmuv3.fields_queue import EVENT_TYPES
    return list(EVENT_TYPES)



def _index_range(text: str, size: int) -> tuple[int, int]:
    lo, sep, hi = text.partition("..")
    try:
        a = parse_int(lo)
        b = parse_int(hi) if sep else a
    except ValueError:
        raise CommandError(f"events: range: {shown(text)} is not INDEX or FIRST..LAST") from None
    if a > b or b >= size:
        raise CommandError(f"events: range: {text} is not within 0..{size - 1:#x}")
    return a, b


@command("events", Iommu(), Flag("all", "every record in the queue memory, consumed ones too"),
         Text("range", "queue indices FIRST..LAST (implies all)", keyword=True,
              metavar="FIRST..LAST"),
         Int("sid", "only records of this StreamID", keyword=True, hi=(1 << 32) - 1),
         Text("type", "only records of this event type (F_TRANSLATION, C_BAD_STE, ...)",
              keyword=True, metavar="EVENT", complete=_event_names),
         Flag("summary", "a per-StreamID count of the records by event type"), pure=True)
def events(ctx, smmu, all=False, range=None, sid=None, type=None, summary=False):
    """The event queue: records from CONS to PROD (what software has not read yet), decoded,
    and whether the queue overflowed.

    all         every record the queue memory holds, oldest first: the consumed ones too
                (an imported dump's events from before the snapshot). A record's state is
                pending or consumed; lap -1 marks slots written in the lap before PROD's
                (certain when PROD.WRAP=1, else only if the queue wrapped).
    range=A..B  only queue indices A to B (implies all)
    sid=N, type=EVENT   filters; summary: counts per StreamID and event type.

    On a VT-d unit: the faults it recorded (FRCD_REG contents: reason, source ID, PASID, FI,
    request type), oldest first; sid=N keeps one requester's, type=NAME one fault reason
    (SCT_6, SFS_2, ...)."""
    if smmu in ctx.system.vtds:
        fs = ctx.system.vtd(smmu).faults
        if sid is not None:
            fs = [f for f in fs if f["sid"] == sid]
        if type is not None:
            fs = [f for f in fs if f["name"] == type.upper()]
        # An imported record also says its request type and whether FRCD_REG.F is still set.
        return res.VtdFaults(unit=smmu, faults=[
            {k: f[k] for k in ("index", "reason", "name", "meaning", "fi", "sid", "pasid",
                               "write", "exe", "priv", "at", "request", "F") if k in f}
            for f in fs])
    m = ctx.system.smmu(smmu)
    not_records = None
    if all or range is not None:
        h = m.event_history()
        ents = h["entries"]
        not_records = {"empty": h["empty"], "unbacked": h["unbacked"], "unknown": h["unknown"]}
        if range is not None:
            lo, hi = _index_range(range, 1 << m.evtq.log2size)
            ents = [e for e in ents if lo <= e["index"] <= hi]
    else:
        ents = m.event_records()
    if type is not None:
        want = type.upper().removeprefix("EVT_")
        if want not in _event_names(ctx, {}):
            raise CommandError(f"events: type: {shown(type)} is not an event type "
                               f"(e.g. F_TRANSLATION, C_BAD_STE)")
        ents = [e for e in ents if e["event"] == want]
    if sid is not None:
        ents = [e for e in ents if e["fields"].get("StreamID") == sid]
    by_sid: dict = {}
    for e in ents:
        row = by_sid.setdefault(e["fields"].get("StreamID"), {})
        row[e["event"]] = row.get(e["event"], 0) + 1
    rows = [{"sid": k, "device": device_name(ctx, smmu, k), "records": sum(v.values()),
             "events": dict(sorted(v.items()))} for k, v in sorted(by_sid.items())]
    return res.Events(**{"smmu": smmu, "prod": m.reg("EVENTQ_PROD"),
                             "cons": m.reg("EVENTQ_CONS"), "overflow": m.evtq_overflow,
                             "base": m.evtq.base, "log2size": m.evtq.log2size,
                             "entries": ents,
                             "scope": "all" if not_records is not None else "pending",
                             "summary": rows if summary else None,
                             "not_records": not_records})


def plain_log(log):
    """Queue log records without their raw bytes (raw stays when it is already hex text), each
    with addresses: {field: address} for the address fields of its command."""
    out = []
    for rec in log:
        r = {k: v for k, v in rec.items() if k != "raw" or isinstance(v, str)}
        try:
            f = fmt(rec.get("command") or "")
        except FieldError:
            f = None
        if f is not None and isinstance(rec.get("fields"), dict):
            r["addresses"] = {x.name: rec["fields"][x.name] << x.lo for x in f.fields
                              if x.is_address and x.name in rec["fields"]}
        out.append(r)
    return out
