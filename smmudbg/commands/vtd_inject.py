"""Injections on an Intel VT-d unit, with VT-d's names: a cleared present bit in a paging entry,
a cleared or corrupted context entry or PASID entry. Each writes memory as a buggy driver or
guest would and sends no invalidation descriptor: a cached copy keeps answering until the
descriptor `check UNIT` names is queued (`cmd UNIT ...`). A lost descriptor itself is
`drop-invalidations UNIT N`."""
from __future__ import annotations

from .. import results as res
from ..arch.fieldtable import fmt
from ..errors import ModelError
from ..model import vtd_pt
from ..model.views import store_words
from .registry import Address, Assignments, Choice, CommandError, Int, Iommu, Stream, command
from .vtd import pasid_values

PASID_HI = (1 << 20) - 1


def _unit(ctx, cmd, target):
    unit, rid = target
    if unit not in ctx.system.vtds:
        raise CommandError(f"{cmd}: {unit} is not a VT-d unit")
    u = ctx.system.vtd(unit)
    dev = u.devices.get(rid)
    return u, rid, dev.name if dev else None


def _now(u, rid, pasid, addr=0):
    """The fault a request now gets from memory (a dry walk: caches neither read nor filled)."""
    try:
        r = u.translate(rid, addr, pasid, dry=True)
    except ModelError:
        return None
    f = r["fault"]
    return None if f is None else {"reason": f["reason"], "name": f["name"],
                                   "meaning": f["meaning"]}


def _result(what, u, rid, name, pasid, entry, addr, old, new, change, fault, cached, fix):
    return res.VtdInject(inject=what, unit=u.name, rid=rid, device=name, pasid=pasid,
                         entry=entry, addr=addr, old=list(old), new=list(new), what=change,
                         fault=fault, cached=cached, fix=fix)


def _write(u, addr, old, new):
    try:
        store_words(u.mem, addr, old, new)
    except ModelError as e:
        raise CommandError(str(e)) from None


@command("inject clear-present", Stream("target", "a VT-d DEVICE, or UNIT RID"),
         Address("address", "an address the stage maps (stage=2: a GPA or IOVA)"),
         Int("pasid", "the PASID entry (default: RID_PASID)", keyword=True, hi=PASID_HI, complete=pasid_values),
         Choice("stage", ("1", "2"), "which stage's entry (default: the first stage, or the "
                "second for a second-stage-only entry)"),
         Int("level", "the paging level whose entry to clear (default: the leaf)", keyword=True,
             lo=1, hi=5))
def inject_clear_present(ctx, target, address, pasid=None, stage=None, level=None):
    """Clear the present bit of the paging entry that maps ADDRESS (VT-d).

    inject clear-present DEVICE|UNIT RID ADDRESS [pasid=N] [stage=1|2] [level=N]

    First stage: P=0 of the FS_PTE / FS_PDE_2M / ... (or the table entry at level=N); second
    stage: R=W=X=0 (not present). No P_IOTLB_INV_DSC / IOTLB_INV_DSC follows: an IOTLB entry
    that holds the translation keeps answering, and `check UNIT` names the descriptor that
    removes it. The entry is found by the walker's reader, as `pt ... addr=` shows it."""
    u, rid, name = _unit(ctx, "inject clear-present", target)
    try:
        if stage is None:
            pgtt = vtd_pt.geometry(u, rid, pasid, 2)["pgtt"]
            stage = "2" if pgtt == "second_stage" else "1"
        d = vtd_pt.lookup(u, rid, pasid, int(stage), address)
    except (ModelError, ValueError) as e:
        raise CommandError(f"inject clear-present: {e}") from None
    want = "fs" if stage == "1" else "ss"
    steps = [s for s in d["steps"] if s["what"] == want]
    if d["out"] is None:
        raise CommandError(f"inject clear-present: {address:#x} is not mapped at stage "
                           f"{stage} ({d['fault']})")
    pick = steps[-1] if level is None else next((s for s in steps if s["level"] == level), None)
    if pick is None:
        raise CommandError(f"inject clear-present: level: no level-{level} entry on the way "
                           f"(levels {', '.join(str(s['level']) for s in steps)})")
    f = fmt(pick["entry"], "vtd")
    w = [pick["desc"]]
    if stage == "1":
        f.field("P").put(w, 0)
        change = "P=0"
    else:
        for k in ("R", "W", "X"):
            f.field(k).put(w, 0)
        change = "R=W=X=0"
    _write(u, pick["desc_pa"], [pick["desc"]], w)
    # The request's address is the input unless this is the second stage under a first.
    direct = stage == "1" or d["pgtt"] == "second_stage"
    cached = any(e["sid"] == rid and (not direct or
                                      e["in_base"] <= address < e["in_base"] + e["size"])
                 for e in u.walker.tlb_entries())
    fix = ("P_IOTLB_INV_DSC" if d["pgtt"] in ("first_stage", "nested") else "IOTLB_INV_DSC") \
        if cached else None
    return _result("clear-present", u, rid, name, d["pasid"], pick["entry"], pick["desc_pa"],
                   [pick["desc"]], w, change, _now(u, rid, pasid, address) if direct else None,
                   cached, fix)


def _context(ctx, cmd, target):
    u, rid, name = _unit(ctx, cmd, target)
    c = u.config(rid)
    if c["ctx"] is None:
        f = c["fault"]
        raise CommandError(f"{cmd}: RID {rid:#x} has no context entry"
                           + (f" ({f['name']})" if f else ""))
    cached = any(e["sid"] == rid for e in u.walker.cached_contexts())
    return u, rid, name, c["ctx_pa"], c["ctx"], cached


def _pasid(ctx, cmd, target, pasid):
    u, rid, name = _unit(ctx, cmd, target)
    c = u.config(rid, pasid)
    if c["pe"] is None:
        f = c["fault"]
        raise CommandError(f"{cmd}: RID {rid:#x} has no PASID entry"
                           + (f" for PASID {pasid}" if pasid is not None else "")
                           + (f" ({f['name']})" if f else ""))
    cached = any(e["sid"] == rid and e["pasid"] == c["pasid"]
                 for e in u.walker.cached_pasids())
    return u, rid, name, c["pasid"], c["pe_pa"], c["pe"], cached


def _first_reserved(name, dword):
    f = fmt(name, "vtd")
    mask = dict(f.reserved_bits([(1 << 64) - 1] * f.nwords)).get(dword, 0)
    return (mask & -mask).bit_length() - 1 if mask else None


def _flip(cmd, name, words, dword, bit):
    if dword >= len(words):
        raise CommandError(f"{cmd}: dword: {name} has {len(words)} 64-bit words")
    if bit is None:
        bit = _first_reserved(name, dword)
        if bit is None:
            raise CommandError(f"{cmd}: bit: {name} dword {dword} has no reserved bit; give "
                               f"bit=N")
    new = list(words)
    new[dword] ^= 1 << bit
    return new, f"dword {dword} bit {bit} flipped"


@command("inject invalidate-context", Stream("target", "a VT-d DEVICE, or UNIT RID"))
def inject_invalidate_context(ctx, target):
    """Clear the P bit of a requester's scalable-mode context entry (VT-d), without a
    CC_INV_DSC: requests fault with SCT_2 once the context-cache no longer holds the entry
    (at once if it did not); `check UNIT` names the CC_INV_DSC that is missing."""
    cmd = "inject invalidate-context"
    u, rid, name, pa, old, cached = _context(ctx, cmd, target)
    if not fmt("SM_CONTEXT_ENTRY", "vtd").field("P").get(old):
        raise CommandError(f"{cmd}: the context entry of RID {rid:#x} is not present (P=0)")
    new = list(old)
    fmt("SM_CONTEXT_ENTRY", "vtd").field("P").put(new, 0)
    _write(u, pa, old, new)
    return _result("invalidate-context", u, rid, name, None, "SM_CONTEXT_ENTRY", pa, old, new,
                   "P=0", _now(u, rid, None), cached, "CC_INV_DSC" if cached else None)


@command("inject corrupt-context", Stream("target", "a VT-d DEVICE, or UNIT RID"),
         Int("dword", "which 64-bit word (default 0)", keyword=True, default=0, hi=3),
         Int("bit", "which bit to flip (default: the word's first reserved bit)", keyword=True,
             hi=63))
def inject_corrupt_context(ctx, target, dword=0, bit=None):
    """Flip one bit of a requester's scalable-mode context entry in memory (VT-d; default:
    the first reserved bit of dword 0, so the entry is invalid: SCT_3, reserved field), without
    a CC_INV_DSC."""
    cmd = "inject corrupt-context"
    u, rid, name, pa, old, cached = _context(ctx, cmd, target)
    new, change = _flip(cmd, "SM_CONTEXT_ENTRY", old, dword, bit)
    _write(u, pa, old, new)
    return _result("corrupt-context", u, rid, name, None, "SM_CONTEXT_ENTRY", pa, old, new,
                   change, _now(u, rid, None), cached, "CC_INV_DSC" if cached else None)


@command("inject invalidate-pasid", Stream("target", "a VT-d DEVICE, or UNIT RID"),
         Int("pasid", "the PASID (default: the context entry's RID_PASID)", keyword=True,
             hi=PASID_HI, complete=pasid_values))
def inject_invalidate_pasid(ctx, target, pasid=None):
    """Clear the P bit of a PASID table entry (VT-d), without a PC_INV_DSC: requests with
    that PASID fault (SPT_2, PASID entry not present) once the PASID-cache no longer holds the
    entry; `check UNIT` names the PC_INV_DSC that is missing."""
    cmd = "inject invalidate-pasid"
    u, rid, name, p, pa, old, cached = _pasid(ctx, cmd, target, pasid)
    if not fmt("PASID_ENTRY", "vtd").field("P").get(old):
        raise CommandError(f"{cmd}: the PASID {p} entry of RID {rid:#x} is not present (P=0)")
    new = list(old)
    fmt("PASID_ENTRY", "vtd").field("P").put(new, 0)
    _write(u, pa, old, new)
    return _result("invalidate-pasid", u, rid, name, p, "PASID_ENTRY", pa, old, new, "P=0",
                   _now(u, rid, pasid), cached, "PC_INV_DSC" if cached else None)


@command("inject corrupt-pasid", Stream("target", "a VT-d DEVICE, or UNIT RID"),
         Int("pasid", "the PASID (default: the context entry's RID_PASID)", keyword=True,
             hi=PASID_HI, complete=pasid_values),
         Int("dword", "which 64-bit word (default 0)", keyword=True, default=0, hi=7),
         Int("bit", "which bit to flip (default: the word's first reserved bit)", keyword=True,
             hi=63))
def inject_corrupt_pasid(ctx, target, pasid=None, dword=0, bit=None):
    """Flip one bit of a PASID table entry in memory (VT-d; default: the first reserved bit of
    dword 0, a reserved-field fault on the next walk that reads it), without a PC_INV_DSC."""
    cmd = "inject corrupt-pasid"
    u, rid, name, p, pa, old, cached = _pasid(ctx, cmd, target, pasid)
    new, change = _flip(cmd, "PASID_ENTRY", old, dword, bit)
    _write(u, pa, old, new)
    return _result("corrupt-pasid", u, rid, name, p, "PASID_ENTRY", pa, old, new, change,
                   _now(u, rid, pasid), cached, "PC_INV_DSC" if cached else None)


# -- software writes of VT-d entries (the `set ste` / `set cd` of VT-d) ----------------------------
def _ctx_format(ctx, tokens):
    return fmt("SM_CONTEXT_ENTRY", "vtd")


def _pasid_format(ctx, tokens):
    return fmt("PASID_ENTRY", "vtd")


def _set_result(what, u, rid, pasid, pa, old, new, changes, order):
    c = u.config(rid, pasid)
    f = c["fault"]
    bad = f is not None and f["name"] and f["name"][:3] in (("RTA", "SRT", "SCT")
                                                            if what == "SM_CONTEXT_ENTRY"
                                                            else ("SPD", "SPT"))
    return res.SetEntry(what=what, smmu=u.name, sid=rid, ssid=pasid, addr=pa, old=old, new=new,
                        changes=changes, stores=order, legal=not bad,
                        problem=f"{f['name']}: {f['meaning']}" if bad else None, hazards=None)


@command("set context", Stream("target", "a VT-d DEVICE, or UNIT RID"),
         assignments=Assignments("FIELD=VALUE", _ctx_format))
def set_context(ctx, target, assign):
    """Software writes fields of a requester's scalable-mode context entry (VT-d), by the
    field table's names: P=0, FPD=1, PDTS=1, PASIDDIRPTR=ADDRESS, RID_PASID=5, ...

    Address fields take the address (PASIDDIRPTR.raw=N the field value). Only the dwords that
    change are stored, dword 0 last. No CC_INV_DSC is queued: a cached copy stays in use (see
    `check UNIT`). legal/problem: the fault the entry now gives (SCT_3, ...)."""
    from .change import apply_fields
    cmd = "set context"
    u, rid, name, pa, old, cached = _context(ctx, cmd, target)
    new, changes = apply_fields(cmd, fmt("SM_CONTEXT_ENTRY", "vtd"), old, assign)
    order = store_words(u.mem, pa, old, new)
    return _set_result("SM_CONTEXT_ENTRY", u, rid, None, pa, old, new, changes, order)


@command("set pasid", Stream("target", "a VT-d DEVICE, or UNIT RID"),
         Int("pasid", "the PASID (default: the context entry's RID_PASID)", keyword=True,
             hi=PASID_HI, complete=pasid_values),
         assignments=Assignments("FIELD=VALUE", _pasid_format))
def set_pasid(ctx, target, assign, pasid=None):
    """Software writes fields of a PASID table entry (VT-d), by the field table's names:
    PGTT=second_stage, DID=7, FLPTPTR=ADDRESS, SLPTPTR=ADDRESS, AW=2, SRE=1, P=0, ...

    Address fields take the address (FLPTPTR.raw=N the field value). Only the dwords that
    change are stored, dword 0 last. No PC_INV_DSC is queued: a cached copy stays in use (see
    `check UNIT`). legal/problem: the fault the entry now gives (SPT_4, ...)."""
    from .change import apply_fields
    cmd = "set pasid"
    u, rid, name, p, pa, old, cached = _pasid(ctx, cmd, target, pasid)
    new, changes = apply_fields(cmd, fmt("PASID_ENTRY", "vtd"), old, assign)
    order = store_words(u.mem, pa, old, new)
    return _set_result("PASID_ENTRY", u, rid, p, pa, old, new, changes, order)


@command("inject retarget-irte", Iommu("unit", "a VT-d unit"),
         Int("index", "the IRTE's index in the interrupt remapping table", hi=(1 << 16) - 1),
         Int("vector", "the new vector (default: the old one + 1)", keyword=True, hi=255),
         Int("dest", "the new destination (DST as the IRTE holds it)", keyword=True,
             hi=(1 << 32) - 1))
def inject_retarget_irte(ctx, unit, index, vector=None, dest=None):
    """Change an IRTE's vector or destination in memory without IEC_INV_DSC (VT-d).

    inject retarget-irte UNIT INDEX [vector=N] [dest=N]

    As a driver that moves an interrupt and forgets the interrupt entry cache: while the unit
    holds the IRTE in its interrupt entry cache, `msi` keeps delivering the old vector and
    destination, and `check UNIT` names IEC_INV_DSC G=index IIDX=INDEX IM=0."""
    cmd = "inject retarget-irte"
    if unit not in ctx.system.vtds:
        raise CommandError(f"{cmd}: {unit} is not a VT-d unit")
    u = ctx.system.vtd(unit)
    irta = fmt("IRTA_REG", "vtd")
    entries = 1 << (irta.field("S").get([u.irta]) + 1)      # IRTA_REG.S: 2^(S+1) entries
    if index >= entries:
        raise CommandError(f"{cmd}: index: the table has {entries} IRTEs (IRTA_REG.S); "
                           f"no {index}")
    f = fmt("IRTE", "vtd")
    pa = irta.field("IRTA").address([u.irta]) + f.size * index
    try:
        old = [u.mem.read_u64(pa), u.mem.read_u64(pa + 8)]
    except ModelError as e:
        raise CommandError(f"{cmd}: IRTE {index} at {pa:#x}: {e}") from None
    if not f.field("P").get(old):
        raise CommandError(f"{cmd}: IRTE {index} at {pa:#x} is not present (P=0)")
    if f.field("IM").get(old):
        raise CommandError(f"{cmd}: IRTE {index} is a posted-interrupt IRTE (IM=1): it has no "
                           f"vector/destination to retarget")
    new = list(old)
    v = f.field("V").get(old)
    f.field("V").put(new, (v + 1) % 256 if vector is None else vector)
    if dest is not None:
        f.field("DST").put(new, dest)
    changes = [f"{n}={f.field(n).get(new):#x}" for n in ("V", "DST")
               if f.field(n).get(new) != f.field(n).get(old)]
    if not changes:
        raise CommandError(f"{cmd}: IRTE {index} already has vector {v:#x}"
                           + (f" and destination {dest:#x}" if dest is not None else ""))
    _write(u, pa, old, new)
    cached = any(e["index"] == index for e in u.walker.iec_entries())
    return _result("retarget-irte", u, None, None, None, "IRTE", pa, old, new,
                   " ".join(changes), None, cached, "IEC_INV_DSC" if cached else None)
