"""Intel VT-d entry views: `context` (root and context entries) and `pasid` (the PASID
directory and table entries), the VT-d counterparts of `ste` and `cd`. The entries are the ones
the core walker reads (core_cy.vtd.VtdWalker.read_config); fields come from the field tables."""
from __future__ import annotations

from .. import results as res
from ..arch.fieldtable import fmt
from ..arch.vtd.consts import SM_CONTEXT_INDEX_BITS
from .registry import CommandError, Int, Stream, command


def pasid_values(ctx, args) -> list[str]:
    """Completion of pasid=: the PASIDs of the VT-d requester typed (its RID_PASID and those a
    scenario gave it)."""
    if ctx is None:
        return []
    t, sid = args.get("target"), args.get("sid")
    if isinstance(t, tuple):
        t, sid = t[0], t[1] if len(t) > 1 else None
    sysm = ctx.system
    if t in sysm.vtd_devices:
        d = sysm.vtd_devices[t]
        u, rid = sysm.vtds[d.smmu], d.sid
    elif t in sysm.vtds and sid is not None:
        try:
            u, rid = sysm.vtds[t], int(str(sid), 0)
        except ValueError:
            return []
    else:
        return []
    out = set()
    d = u.devices.get(rid)
    spec = getattr(d, "spec", None) or {}
    out |= {p["pasid"] for p in spec.get("pasids", [])}
    try:
        c = u.config(rid)
        if c["pasid"] is not None:
            out.add(c["pasid"])
    except Exception:           # completion never fails the prompt
        pass
    return [str(p) for p in sorted(out)]


def _rows(name, words):
    out = []
    for f in fmt(name, "vtd").fields:
        v = f.get(words)
        if not v:
            continue
        out.append({"field": f.name, "dword": f.dword,
                    "bits": f"{f.hi}:{f.lo}" if f.hi != f.lo else str(f.lo), "value": v,
                    "meaning": f.value_name(v) or ""})
    return out


def _entry(name, addr, words):
    return {"name": name, "addr": addr, "words": list(words), "rows": _rows(name, words)}


def _unit(ctx, cmd, target):
    unit, rid = target
    if unit not in ctx.system.vtds:
        raise CommandError(f"{cmd}: {unit} is not a VT-d unit (for an SMMU: ste, cd)")
    u = ctx.system.vtd(unit)
    dev = u.devices.get(rid)
    return u, rid, dev.name if dev else None


@command("context", Stream("target", "a VT-d DEVICE, or UNIT RID"), pure=True)
def context(ctx, target):
    """The scalable-mode root entry and context entry of a requester behind a VT-d unit.

    context DEVICE | UNIT RID

    The root entry's half for the device's devfn (lower: devfn 0-127, upper: 128-255), then the
    32-byte context entry (PASIDE, PDTS, PASID directory pointer, RID_PASID, ...), decoded by
    field; where the path stops, the fault a request would get (SRT_2, SCT_2, ...)."""
    u, rid, name = _unit(ctx, "context", target)
    c = u.config(rid)
    entries = []
    if c["root"] is not None:
        upper = bool((rid & 0xFF) >> SM_CONTEXT_INDEX_BITS)     # devfn 128-255
        words = [0, c["root"]] if upper else [c["root"], 0]
        e = _entry("SM_ROOT_ENTRY", c["root_pa"] - (8 if upper else 0), words)
        entries.append(e)
    if c["ctx"] is not None:
        entries.append(_entry("SM_CONTEXT_ENTRY", c["ctx_pa"], c["ctx"]))
    f = c["fault"]
    stop = f if f and f["name"] and f["name"][:3] in ("RTA", "SRT", "SCT") else None
    return res.VtdEntries(unit=u.name, rid=rid, device=name, pasid=None, entries=entries,
                          fault=stop)


@command("pasid", Stream("target", "a VT-d DEVICE, or UNIT RID"),
         Int("pasid", "the PASID (default: the context entry's RID_PASID)", keyword=True,
             hi=(1 << 20) - 1, complete=pasid_values), pure=True)
def pasid(ctx, target, pasid=None):
    """The PASID directory entry and PASID table entry of a requester's PASID (VT-d).

    pasid DEVICE | UNIT RID [pasid=N]

    The directory entry (indexed by PASID[19:6]) and the 64-byte PASID table entry (PASID[5:0]):
    PGTT, DID, first-stage pointer and paging mode, second-stage pointer and AW, SRE, ...; where
    the path stops, the fault a request would get (SPD_2, SPT_2, SPT_4, ...)."""
    u, rid, name = _unit(ctx, "pasid", target)
    c = u.config(rid, pasid)
    entries = []
    if c["pde"] is not None:
        entries.append(_entry("PASID_DIR_ENTRY", c["dir_pa"], [c["pde"]]))
    if c["pe"] is not None:
        entries.append(_entry("PASID_ENTRY", c["pe_pa"], c["pe"]))
    return res.VtdEntries(unit=u.name, rid=rid, device=name,
                          pasid=pasid if pasid is not None else c["pasid"], entries=entries,
                          fault=c["fault"])


def pt_vtd(ctx, unit_name, rid, pasid, stage, limit, addr):
    """`pt` on a VT-d requester (see pt's help): one stage's tree, the nested view, or one
    address down a stage, through the core walker's reader (model/vtd_pt.py)."""
    from ..errors import ModelError
    from ..model import vtd_pt
    u = ctx.system.vtd(unit_name)
    dev = u.devices.get(rid)
    name = dev.name if dev else None
    try:
        if stage is None:
            pgtt = vtd_pt.geometry(u, rid, pasid, 2)["pgtt"]
            stage = "2" if pgtt == "second_stage" else "1"
        if addr is not None:
            if stage == "nested":
                raise CommandError("pt: addr= goes with stage=1 or stage=2 (walk shows both "
                                   "stages)")
            d = vtd_pt.lookup(u, rid, pasid, int(stage), addr)
            return res.VtdPageTableLookup(unit=u.name, rid=rid, device=name, pasid=d["pasid"],
                                          pgtt=d["pgtt"], stage=stage, addr=addr,
                                          steps=d["steps"], out=d["out"], size=d["size"],
                                          perm=d["perm"], fault=d["fault"])
        d = vtd_pt.nested(u, rid, pasid, limit) if stage == "nested" else \
            vtd_pt.dump(u, rid, pasid, int(stage), limit)
    except (ModelError, ValueError) as e:
        raise CommandError(f"pt: {e}") from None
    return res.VtdPageTables(unit=u.name, rid=rid, device=name, pasid=d["pasid"],
                             pgtt=d["pgtt"], did=d["did"], stage=stage, levels=d["levels"],
                             width=d["width"], root=d["root"], rows=d["rows"],
                             problems=d["problems"], truncated=d["truncated"])


def vtd_registers(u) -> dict:
    """{register: value} a VT-d unit shows: what it was built or imported with, the
    invalidation queue's head and tail as the unit has them now."""
    regs = dict(u.regs)
    iqa = getattr(u, "iqa", None)
    if iqa is not None:
        wide = fmt("IQA_REG", "vtd").field("DW").get([iqa])
        regs["IQA_REG"] = iqa
        regs["IQH_REG"] = fmt("IQH_REG", "vtd").encode(QH=u.iqh << wide)[0]
        regs["IQT_REG"] = fmt("IQT_REG", "vtd").encode(QT=u.iqt << wide)[0]
    return regs


def regs_vtd(ctx, unit, register):
    """`regs` on a VT-d unit (register names as the spec spells them: CAP_REG or CAP)."""
    from ..arch.vtd.registers import FORMATS, OFFSETS
    u = ctx.system.vtd(unit)
    regs = vtd_registers(u)
    if register is None:
        rows = [{"name": n, "offset": OFFSETS.get(n), "size": fmt(n, "vtd").size,
                 "value": regs.get(n), "provided": n in regs}
                for n in FORMATS if n in OFFSETS]
        return res.Registers(smmu=unit, registers=rows)
    name = register.upper()
    name = name if name.endswith("_REG") else name + "_REG"
    if name not in FORMATS:
        raise CommandError(f"regs: register: {register!r} is not a VT-d register (CAP_REG, "
                           f"ECAP_REG, GSTS_REG, RTADDR_REG, IQA_REG, IRTA_REG, ...)")
    v = regs.get(name)
    return res.Register(smmu=unit, name=name, offset=OFFSETS.get(name),
                        size=fmt(name, "vtd").size, value=v,
                        fields=_all_rows(name, [v]) if v is not None else [],
                        provided=v is not None)


def _all_rows(name, words):
    return [{"field": f.name, "dword": f.dword,
             "bits": f"{f.hi}:{f.lo}" if f.hi != f.lo else str(f.lo), "value": f.get(words),
             "meaning": f.value_name(f.get(words)) or ""} for f in fmt(name, "vtd").fields]


@command("vtds", pure=True)
def vtds(ctx):
    """List the Intel VT-d units: base, host address width, translation and interrupt
    remapping on or off, and each requester behind a unit (name, RID as bus:dev.fn, the PGTT
    of its RID_PASID entry and of the other PASIDs it was given)."""
    units = []
    for name, u in ctx.system.vtds.items():
        gsts = fmt("GSTS_REG", "vtd").decode([u.regs.get("GSTS_REG", 0)])
        devs = []
        for rid, d in sorted(u.devices.items()):
            c = u.config(rid)
            pgtt = None
            if c["pe"] is not None and c["fault"] is None:
                pe = fmt("PASID_ENTRY", "vtd")
                pgtt = pe.field("PGTT").value_name(pe.field("PGTT").get(c["pe"]))
            pasids = [{"pasid": p["pasid"], "pgtt": p["pgtt"]}
                      for p in (getattr(d, "spec", None) or {}).get("pasids", [])]
            devs.append({"name": d.name, "rid": rid,
                         "bdf": f"{rid >> 8:02x}:{(rid >> 3) & 0x1F:02x}.{rid & 7}",
                         "rid_pasid": c["pasid"], "pgtt": pgtt,
                         "fault": c["fault"]["name"] if c["fault"] else None,
                         "pasids": pasids})
        units.append({"name": name, "base": u.base, "haw": u.haw,
                      "translation": bool(gsts["TES"]), "interrupt_remapping": bool(gsts["IRES"]),
                      "devices": devs})
    return res.VtdUnits(units=units)


def iq_vtd(ctx, unit, history):
    """`cmdq` on a VT-d unit: its invalidation queue, the last `history` descriptors the unit
    fetched (behind IQH_REG) and those still waiting (IQH to IQT), decoded by type."""
    from ..arch.vtd.consts import INV_DSC_NAMES
    from ..errors import ModelError
    u = ctx.system.vtd(unit)
    n, size = u.IQ_ENTRIES, u.IQ_DESC
    t = fmt("CC_INV_DSC", "vtd")
    pending = (u.iqt - u.iqh) % n
    first = (u.iqh - min(history, n - pending)) % n
    rows = []
    for k in range(min(history, n - pending) + pending):
        i = (first + k) % n
        at = u.iq_base + size * i
        try:
            w = [u.mem.read_u64(at), u.mem.read_u64(at + 8)]
        except (ModelError, Exception):
            rows.append({"index": i, "state": "unbacked", "type": None, "words": None,
                         "fields": {}, "text": ""})
            continue
        code = (t.field("TYPE_HI").get(w) << 4) | t.field("TYPE_LO").get(w)
        name = INV_DSC_NAMES.get(code)
        fields, text = {}, []
        if name:
            for f in fmt(name, "vtd").fields:
                v = f.get(w)
                if v and f.name not in ("TYPE_LO", "TYPE_HI"):
                    fields[f.name] = v
                    # as `cmd UNIT NAME ...` takes it: enum names, addresses as addresses
                    shown = f.value_name(v) or hex(v << f.lo if f.is_address else v)
                    text.append(f"{f.name}={shown}")
        if not any(w):
            name = None
        rows.append({"index": i, "state": "consumed" if k < min(history, n - pending)
                     else "pending", "type": name, "words": w, "fields": fields,
                     "text": " ".join(text)})
    return res.VtdQueue(unit=unit, base=u.iq_base, entries=n, desc_size=size, iqh=u.iqh,
                        iqt=u.iqt, error=u.iq_error, drop_budget=u.drop_budget,
                        descriptors=[r for r in rows if r["type"] is not None
                                     or r["state"] != "consumed"])
