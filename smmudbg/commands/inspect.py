"""Inspect commands: topology, registers, stream and CD tables, page tables, caches, queues,
memory. None of them changes state (they read memory directly, never through the walker)."""
from __future__ import annotations

from core_cy.physmem import MemFault

from ..arch.fieldtable import fmt
from ..arch.smmuv3 import registers as R
from ..errors import ModelError
from . import _tables as T
from .registry import (Address, Choice, CommandError, Domain, Flag, Int, Result, Smmu, Stream,
                       Text, Vm, command)

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
                      "streams": sum(1 for (sm, _) in s.streams if sm == name)})
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
    return Result("topology", {"name": s.name, "description": s.spec.get("description", ""),
                               "smmus": smmus, "vms": vms, "domains": domains,
                               "streams": streams})


@command("smmus", pure=True)
def smmus(ctx):
    """List the SMMUs: name, base address, stages, stream table."""
    r = topology(ctx)
    return Result("smmus", {"smmus": r.data["smmus"]})


@command("vms", pure=True)
def vms(ctx):
    """List the VMs and their memory (guest IPA ranges and the host PA behind each).

    vSMMUs and iommufd objects are not modelled yet."""
    return Result("vms", {"vms": topology(ctx).data["vms"]})


@command("regs", Smmu(), Text("register", "one register (e.g. CR0, IDR0, STRTAB_BASE_CFG)",
                              optional=True, metavar="REGISTER",
                              complete=lambda ctx, a: [n[5:] for n in R.FORMATS]),
         pure=True)
def regs(ctx, smmu, register=None):
    """SMMU registers with their decoded fields.

    regs SMMU            every register (offset, value)
    regs SMMU REGISTER   one register, field by field (REGISTER as CR0 or SMMU_CR0)"""
    m = ctx.system.smmu(smmu)
    if register is not None:
        v = m.reg(register)
        name = "SMMU_" + register.upper() if not register.upper().startswith("SMMU_") \
            else register.upper()
        name = R.ALIASES.get(name, name)
        return Result("register", {"smmu": smmu, "name": name, "offset": R.OFFSETS.get(name),
                                   "size": fmt(name).size, "value": v,
                                   "fields": field_rows(fmt(name), [v])})
    rows = []
    for name in R.FORMATS:
        v = m.regs[name]
        rows.append({"name": name, "offset": R.OFFSETS.get(name), "size": fmt(name).size,
                     "value": v})
    return Result("registers", {"smmu": smmu, "registers": rows})


@command("strtab", Smmu(), Int("sid", "first StreamID to list", keyword=True, default=0),
         Int("count", "how many STEs at most", keyword=True, default=64, lo=1, hi=1 << 20),
         Flag("all", "list invalid (V=0) STEs too"), pure=True)
def strtab(ctx, smmu, sid=0, count=64, all=False):
    """The stream table: its base and format, and the valid STEs from sid= on (count= at most).

    For a 2-level table each row also names the L1 descriptor (Span, L2Ptr) it came from."""
    m = ctx.system.smmu(smmu)
    st = m.strtab
    info = {"smmu": smmu, "base": st["base"], "format": "2lvl" if st["fmt"] else "linear",
            "log2size": st["log2size"], "split": st["split"] if st["fmt"] else None}
    rows, more = [], False
    total = 1 << st["log2size"]
    s = sid
    while s < total:
        if st["fmt"] == 1:
            l1pa = st["base"] + (s >> st["split"]) * 8
            try:
                l1 = m.mem.read_u64(l1pa)
            except MemFault as e:
                raise ModelError(f"{smmu}: L1STD at {l1pa:#x}: {e}") from None
            span = L1STD.field("Span").get([l1])
            if span == 0:
                s = ((s >> st["split"]) + 1) << st["split"]     # no L2 table: skip the block
                continue
        try:
            addr = m.ste_addr(s)
            words = m.mem.read_words(addr, 8)
        except (ModelError, MemFault):
            s += 1
            continue
        v = STE.decode(words)
        if v["V"] or all:
            if len(rows) >= count:
                more = True
                break
            rows.append({"sid": s, "addr": addr, "device": device_name(ctx, smmu, s),
                         "v": v["V"],
                         "config": STE.field("Config").value_name(v["Config"]),
                         "s2vmid": v["S2VMID"], "s1contextptr": v["S1ContextPtr"] << 6,
                         "s1cdmax": v["S1CDMax"], "s2ttb": v["S2TTB"] << 4})
        s += 1
    info.update({"entries": rows, "more": more})
    return Result("strtab", info)


@command("ste", Stream("target", "DEVICE, or SMMU SID"), pure=True)
def ste(ctx, target):
    """One Stream Table Entry: where it is, its words, every non-zero field decoded, and
    whether the SMMU would accept it (the reason it is illegal, as C_BAD_STE would report)."""
    m, sid = stream_of(ctx, target)
    addr = m.ste_addr(sid)
    words = m.mem.read_words(addr, 8)
    problem = m.walker.check_ste(words)
    cached = next((c for c in m.walker.cached_stes() if c["sid"] == sid), None)
    cfg = STE.field("Config").get(words)
    return Result("ste", {
        "smmu": m.name, "sid": sid, "device": device_name(ctx, m.name, sid), "addr": addr,
        "words": words, "fields": STE.decode(words), "rows": field_rows(STE, words, True),
        "config": STE.field("Config").value_name(cfg), "valid": bool(words[0] & 1),
        "legal": problem == "" or problem == "STE.Config=abort", "problem": problem or None,
        "reserved_bits": [{"dword": d, "mask": mk} for d, mk in STE.reserved_bits(words)],
        "cached": None if cached is None else {"words": cached["words"],
                                               "stale": cached["words"] != words}})


@command("cd", Stream("target", "DEVICE, or SMMU SID"),
         Int("ssid", "SubstreamID (default 0)", optional=True, default=0, hi=(1 << 20) - 1),
         pure=True)
def cd(ctx, target, ssid=0):
    """One Context Descriptor: found through the STE (S1ContextPtr, S1Fmt, S1CDMax; through
    stage 2 when the STE is nested), its words, non-zero fields, and whether it is legal."""
    m, sid = stream_of(ctx, target)
    ste_words = m.read_ste(sid)
    loc = T.cd_location(m.mem, ste_words, ssid)
    words = m.mem.read_words(loc["pa"], 8)
    problem = m.walker.check_cd(words, ste_words)
    cached = next((c for c in m.walker.cached_cds() if c["sid"] == sid and c["ssid"] == ssid),
                  None)
    return Result("cd", {
        "smmu": m.name, "sid": sid, "ssid": ssid, "device": device_name(ctx, m.name, sid),
        "addr": loc["addr"], "pa": loc["pa"], "l1cd": loc["l1"], "words": words,
        "fields": CD.decode(words), "rows": field_rows(CD, words, True),
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
    ste_words = m.read_ste(sid)
    if not T.ste_has_s1(ste_words):
        raise ModelError(f"{m.name} StreamID {sid:#x}: STE.Config="
                         f"{STE.field('Config').value_name(STE.field('Config').get(ste_words))}"
                         f" has no stage 1, so no CD table")
    v = STE.decode(ste_words)
    n_cds = 1 << v["S1CDMax"]
    rows, l1s = [], []
    for ssid in range(min(n_cds, 4096)):
        try:
            loc = T.cd_location(m.mem, ste_words, ssid)
        except ModelError:
            continue
        words = m.mem.read_words(loc["pa"], 8)
        fv = CD.decode(words)
        if fv["V"] or all:
            rows.append({"ssid": ssid, "addr": loc["addr"], "pa": loc["pa"], "v": fv["V"],
                         "asid": fv["ASID"], "ttb0": fv["TTB0"] << 4, "t0sz": fv["T0SZ"],
                         "tg0": CD.field("TG0").value_name(fv["TG0"]) or fv["TG0"],
                         "epd0": fv["EPD0"], "epd1": fv["EPD1"]})
    fmt_name = STE.field("S1Fmt").value_name(v["S1Fmt"])
    if v["S1Fmt"] in (1, 2) and v["S1CDMax"]:
        n = 6 if v["S1Fmt"] == 1 else 10
        xlate = T.s2_xlate(m.mem, ste_words) if T.ste_has_s2(ste_words) else (lambda a: a)
        base = v["S1ContextPtr"] << 6
        for i in range(max(1, n_cds >> n)):
            a = base + 8 * i
            try:
                d = m.mem.read_u64(xlate(a))
            except (MemFault, ModelError):
                continue
            if L1CD.field("V").get([d]) or all:
                l1s.append({"index": i, "addr": a, "v": L1CD.field("V").get([d]),
                            "l2ptr": L1CD.field("L2Ptr").get([d]) << 12})
    return Result("cdtable", {"smmu": m.name, "sid": sid, "format": fmt_name,
                              "base": v["S1ContextPtr"] << 6, "s1cdmax": v["S1CDMax"],
                              "ipa": T.ste_has_s2(ste_words), "l1": l1s, "cds": rows,
                              "truncated": n_cds > 4096})


@command("pt", Text("target", "a domain, a device, or an SMMU and a StreamID",
                    metavar="DOMAIN|DEVICE|SMMU",
                    complete=lambda ctx, a: list(ctx.system.domains) + list(ctx.system.devices)
                    + list(ctx.system.smmus)),
         Text("sid", "StreamID (after an SMMU name)", optional=True, metavar="SID"),
         Int("ssid", "SubstreamID of the CD (default 0)", keyword=True, default=None,
             hi=(1 << 20) - 1),
         Choice("stage", ("1", "2"), "which stage's tables (default: stage 1 if the stream "
                "has one)"),
         Int("limit", "at most this many rows", keyword=True, default=2000, lo=1),
         Address("addr", "follow one address down the tree instead", keyword=True),
         pure=True)
def pt(ctx, target, sid=None, ssid=None, stage=None, limit=2000, addr=None):
    """Page tables as a tree of ranges (like a page-table dump).

    pt DOMAIN                       the domain's tables
    pt DEVICE|SMMU SID [ssid=N]     the stage-1 tables of the stream's CD (through stage 2
                                    when nested), or stage=2 for its stage-2 tables
    addr=ADDRESS                    only the descriptors that map ADDRESS, level by level

    Consecutive leaves with contiguous output and equal attributes are merged into one row.
    Permissions read r/w/x for privileged access, then u (EL0 may access) and X (EL0 may
    execute) at stage 1."""
    s = ctx.system
    where = {}
    if target in s.domains and sid is None:
        dom = s.domains[target]
        xlate = dom.vm.ipa_to_pa if dom.vm is not None else None
        geo = T.Geometry.from_builder(dom.tables, xlate)
        where = {"domain": target, "stage": dom.stage}
    else:
        if target in s.devices and sid is None:
            st = s.devices[target]
            smmu_name, sidv = st.smmu, st.sid
        elif target in s.smmus:
            if sid is None:
                raise CommandError(f"pt: sid: missing the StreamID after {target}")
            try:
                from .registry import parse_int
                sidv = parse_int(sid)
            except ValueError:
                raise CommandError(f"pt: sid: {sid!r} is not a number") from None
            smmu_name = target
        else:
            raise CommandError(f"pt: target: {target!r} is not a domain, device or SMMU")
        m = s.smmu(smmu_name)
        ste_words = m.read_ste(sidv)
        want = int(stage) if stage else (1 if T.ste_has_s1(ste_words) else 2)
        where = {"smmu": smmu_name, "sid": sidv, "stage": want}
        if want == 2:
            if not T.ste_has_s2(ste_words):
                raise ModelError(f"{smmu_name} StreamID {sidv:#x}: the STE has no stage 2")
            geo = T.Geometry.from_ste_s2(ste_words)
        else:
            loc = T.cd_location(m.mem, ste_words, ssid or 0)
            cdw = m.mem.read_words(loc["pa"], 8)
            geo = T.Geometry.from_cd(cdw, loc["xlate"] if T.ste_has_s2(ste_words) else None)
            where["ssid"] = ssid or 0
    info = dict(where, granule=1 << geo.g, start_level=geo.start, input_bits=geo.ia,
                root=geo.root, tables_are_ipa=geo.stage == 1 and "smmu" in where and
                T.ste_has_s2(ctx.system.smmu(where["smmu"]).read_ste(where["sid"]))
                or ("domain" in where and s.domains[where["domain"]].vm is not None))
    if addr is not None:
        r = geo.lookup(s.mem, addr)
        info.update({"addr": addr, "steps": r["steps"], "leaf": r["leaf"],
                     "out": r["leaf"]["out"] if r["leaf"] else None})
        return Result("pt-lookup", info)
    d = geo.dump(s.mem, limit)
    for row in d["rows"]:
        row.pop("attrs", None)
    info.update(d)
    return Result("pt", info)


@command("tlb", Smmu(), Int("vmid", "only this VMID", keyword=True),
         Int("asid", "only this ASID", keyword=True), pure=True)
def tlb(ctx, smmu, vmid=None, asid=None):
    """IOTLB contents: kind (S1, S2, NESTED, EL2), VMID, ASID, input range, output, level,
    permissions; with hit/miss counters."""
    m = ctx.system.smmu(smmu)
    rows = [e for e in m.walker.tlb_entries()
            if (vmid is None or e["vmid"] == vmid) and (asid is None or e["asid"] == asid)]
    return Result("tlb", {"smmu": smmu, "entries": rows, "stats": m.walker.tlb_stats()})


@command("cfgcache", Smmu(), pure=True)
def cfgcache(ctx, smmu):
    """Configuration cache contents: cached STEs and CDs, each compared with memory (a cached
    copy that differs from memory is stale: an invalidation is missing)."""
    m = ctx.system.smmu(smmu)
    stes = []
    for c in m.walker.cached_stes():
        try:
            mem = m.mem.read_words(c["ste_pa"], 8)
        except MemFault:
            mem = None
        stes.append({"sid": c["sid"], "addr": c["ste_pa"], "words": c["words"],
                     "device": device_name(ctx, smmu, c["sid"]), "stale": mem != c["words"]})
    cds = []
    for c in m.walker.cached_cds():
        try:
            mem = m.mem.read_words(c["cd_pa"], 8)
        except MemFault:
            mem = None
        cds.append({"sid": c["sid"], "ssid": c["ssid"], "pa": c["cd_pa"], "words": c["words"],
                    "stale": mem != c["words"]})
    return Result("cfgcache", {"smmu": smmu, "stes": stes, "cds": cds})


@command("mem", Address("address", "a PA, or an IPA with vm="),
         Int("length", "bytes (default 64, at most 64K)", optional=True, default=64, lo=1,
             hi=1 << 16),
         Vm("vm", "read guest memory: ADDRESS is an IPA of this VM", keyword=True), pure=True)
def mem(ctx, address, length=64, vm=None):
    """Hexdump of modeled memory at a PA, or at a VM's IPA (vm=NAME).

    Unbacked memory is shown as such, never as zeros."""
    s = ctx.system
    chunks, pa0 = [], None
    a, end = address, address + length
    if end > 1 << 64:
        raise CommandError(f"mem: length: {address:#x} + {length:#x} wraps the address space")
    while a < end:
        nxt = min(end, (a | 0xFFF) + 1)
        if vm is not None:
            try:
                pa = s.vm(vm).ipa_to_pa(a)
            except ModelError:
                pa = None
        else:
            pa = a
        if pa0 is None and pa is not None:
            pa0 = pa
        if pa is not None and s.mem.is_backed(pa):
            data = bytes(s.mem.read(pa, nxt - a)).hex()
            if chunks and "data" in chunks[-1] and chunks[-1]["pa"] + len(chunks[-1]["data"]) \
                    // 2 == pa:
                chunks[-1]["data"] += data
            else:
                chunks.append({"addr": a, "pa": pa, "data": data})
        else:
            if chunks and "unbacked" in chunks[-1]:
                chunks[-1]["unbacked"] += nxt - a
            else:
                chunks.append({"addr": a, "pa": pa, "unbacked": nxt - a,
                               "why": "not guest RAM" if pa is None else "no memory"})
        a = nxt
    return Result("mem", {"addr": address, "vm": vm, "length": length, "chunks": chunks})


@command("cmdq", Smmu(), Int("history", "consumed commands to show (default 16)",
                             keyword=True, default=16), pure=True)
def cmdq(ctx, smmu, history=16):
    """The command queue: PROD/CONS, errors, the last consumed commands with what each did,
    and the commands still waiting."""
    m = ctx.system.smmu(smmu)
    return Result("cmdq", {"smmu": smmu, "prod": m.reg("CMDQ_PROD"), "cons": m.reg("CMDQ_CONS"),
                           "base": m.cmdq.base, "log2size": m.cmdq.log2size,
                           "gerror": m.gerror_active(), "drop_budget": m.cmdq.drop_budget,
                           "entries": _plain_log(m.cmdq_entries(history))})


@command("events", Smmu(), pure=True)
def events(ctx, smmu):
    """The event queue: records from CONS to PROD (what software has not read yet), decoded,
    and whether the queue overflowed."""
    m = ctx.system.smmu(smmu)
    ents = m.events()
    return Result("events", {"smmu": smmu, "prod": m.reg("EVENTQ_PROD"),
                             "cons": m.reg("EVENTQ_CONS"), "overflow": m.evtq_overflow,
                             "base": m.evtq.base, "log2size": m.evtq.log2size,
                             "entries": ents})


def _plain_log(log):
    return [{k: v for k, v in rec.items() if k != "raw" or isinstance(v, str)} for rec in log]
