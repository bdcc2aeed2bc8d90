"""Intel VT-d entry views: `context` (root and context entries) and `pasid` (the PASID
directory and table entries), the VT-d counterparts of `ste` and `cd`. The entries are the ones
the core walker reads (core_cy.vtd.VtdWalker.read_config); fields come from the field tables."""
from __future__ import annotations

from .. import results as res
from ..arch.fieldtable import fmt
from .registry import CommandError, Int, Stream, command


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
        upper = (rid & 0xFF) >= 128
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
             hi=(1 << 20) - 1), pure=True)
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
