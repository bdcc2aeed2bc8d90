"""Change commands: software writes to STEs, CDs, descriptors and registers, and map/unmap.

Like the software they stand for, they write memory only: no invalidation is issued. The SMMU
may keep using what it cached until a command (`cmd`) removes it; `check` shows what is stale.
"""
from __future__ import annotations

from .. import results as res
from ..arch.fieldtable import FieldError, fmt
from ..arch.smmuv3 import registers as R
from .registry import (Address, Assignments, Choice, CommandError, Domain, Int, Smmu,
                       Stream, Text, Vm, command, parse_int, shown)

STE = fmt("STE")
CD = fmt("CD")
DESC_FORMATS = {("1", "leaf"): "S1_BLOCK", ("1", "table"): "S1_TABLE",
                ("2", "leaf"): "S2_BLOCK", ("2", "table"): "S2_TABLE"}


def field_value(cmdname: str, f, name: str, text: str):
    """(field, value to store) for one FIELD=VALUE: an address field takes the address (its
    bits [hi:lo] are stored), FIELD.raw=N takes the field value itself."""
    raw = name.lower().endswith(".raw")
    try:
        fld = f.field(name[:-4] if raw else name)
        if raw or not fld.is_address:
            return fld, fld.parse(text)
    except FieldError as e:
        raise CommandError(f"{cmdname}: {e}") from None
    try:
        a = parse_int(text)
    except ValueError:
        raise CommandError(f"{cmdname}: {fld.name}: {shown(text)} is not an address") from None
    if a & ((1 << fld.lo) - 1):
        raise CommandError(f"{cmdname}: {fld.name}: {a:#x} is not {1 << fld.lo}-byte aligned "
                           f"(the field holds address bits [{fld.hi}:{fld.lo}]; "
                           f"{fld.name}.raw=N sets the field value)")
    if a < 0 or a >> (fld.hi + 1):
        raise CommandError(f"{cmdname}: {fld.name}: {a:#x} is beyond address bit {fld.hi}")
    return fld, a >> fld.lo


def apply_fields(cmdname: str, f, words: list, assign) -> tuple[list, list]:
    """New words with FIELD=VALUE assignments applied, and the changed fields: {field, old,
    new, address, meaning}; old and new are addresses when address is true."""
    new = list(words)
    changes = []
    for name, text in assign:
        fld, value = field_value(cmdname, f, name, text)
        old = fld.get(new)
        fld.put(new, value)
        addr = fld.is_address
        changes.append({"field": fld.name, "old": old << fld.lo if addr else old,
                        "new": value << fld.lo if addr else value, "address": addr,
                        "meaning": fld.value_name(value) or ""})
    return new, changes


def update_hazards(m, old, new, order, kind) -> dict | None:
    """What the stores just made could have looked like to an SMMU reading the entry between
    them (no sync in between), and how the update should be made instead."""
    valid = (STE if kind == "ste" else CD).field("V")
    if old == new or not valid.get(old):
        return None                 # nothing changed, or the entry was not live
    full = list(order) + [i for i in range(8) if i not in order]
    a = m.update_hazards(old, new, kind, order=full)
    return {"hitless_possible": a["hitless"], "syncs_needed": a["syncs"],
            "critical_qwords": a["critical_qwords"], "torn": a["torn"],
            "states": [{"after_store": s["after_store"], "qword": s["qword"],
                        "status": s["status"]} for s in a["direct_write_states"]]}


def _ste_format(ctx, tokens):
    return STE


def _cd_format(ctx, tokens):
    return CD


def _desc_format(ctx, tokens):
    stage = next((t.split("=", 1)[1] for t in tokens if t.startswith("stage=")), "1")
    kind = next((t.split("=", 1)[1] for t in tokens if t.startswith("kind=")), "leaf")
    return fmt(DESC_FORMATS[(stage, kind)])


@command("set ste", Stream("target", "DEVICE, or SMMU SID"),
         assignments=Assignments("FIELD=VALUE", _ste_format))
def set_ste(ctx, target, assign):
    """Software writes STE fields (by name: V=0, Config=s2_trans, S2T0SZ=24, ...).

    Values are numbers or the field's names for them. Address fields take the address:
    S2TTB=0x40004000 is the table at 0x40004000, S1ContextPtr=ADDRESS the CD table (aligned as
    the field holds it); FIELD.raw=N sets the field's own value (S2TTB.raw=0x4000400). Only the
    dwords that change are stored, dword 0 last. No invalidation is issued: a cached copy
    stays in use until CMD_CFGI_STE (see `check`). The result says whether the new STE is
    legal."""
    smmu_name, sid = target
    m = ctx.system.smmu(smmu_name)
    pa = m.ste_location(sid, create=True)
    old = m.read_words(pa, 8, "STE")
    new, changes = apply_fields("set ste", STE, old, assign)
    order = m.store_words(pa, old, new)
    problem = m.check_ste(new)
    return res.SetEntry(**{"what": "STE", "smmu": smmu_name, "sid": sid, "addr": pa,
                          "old": old, "new": new, "changes": changes, "stores": order,
                          "legal": problem in ("", "STE.Config=abort"),
                          "problem": problem or None,
                          "hazards": update_hazards(m, old, new, order, "ste")})


@command("set cd", Stream("target", "DEVICE, or SMMU SID"),
         Int("ssid", "SubstreamID (default 0)", keyword=True, default=0, hi=(1 << 20) - 1),
         assignments=Assignments("FIELD=VALUE", _cd_format))
def set_cd(ctx, target, assign, ssid=0):
    """Software writes CD fields (by name: V=0, ASID=5, T0SZ=25, TTB0=0x..., EPD0=1, ...).

    TTB0/TTB1 take the table's address (TTB0=0x80010000); TTB0.raw=N sets the field value.
    The CD is found through the STE (through stage 2 when nested, as the guest's own write
    would land). No invalidation is issued: see `check` for the CMD_CFGI_CD it needs."""
    smmu_name, sid = target
    m = ctx.system.smmu(smmu_name)
    loc = m.cd_entry(sid, ssid)
    old = loc["words"]
    new, changes = apply_fields("set cd", CD, old, assign)
    order = m.store_words(loc["pa"], old, new)
    problem = m.check_cd(new, loc["ste"])
    return res.SetEntry(**{"what": "CD", "smmu": smmu_name, "sid": sid, "ssid": ssid,
                          "addr": loc["addr"], "pa": loc["pa"], "old": old, "new": new,
                          "changes": changes, "stores": order, "legal": problem == "",
                          "problem": problem or None,
                          "hazards": update_hazards(m, old, new, order, "cd")})


@command("set desc", Address("address", "address of the descriptor (a PA, or an IPA with vm=)"),
         Choice("stage", ("1", "2"), "stage-1 or stage-2 format (default 1)", default="1"),
         Choice("kind", ("leaf", "table"), "block/page or table descriptor (default leaf)",
                default="leaf"),
         Vm("vm", "ADDRESS is an IPA of this VM (a guest's stage-1 tables)", keyword=True),
         assignments=Assignments("FIELD=VALUE", _desc_format))
def set_desc(ctx, address, assign, stage="1", kind="leaf", vm=None):
    """Software writes fields of one translation table descriptor (AF=0, AP=2, S2AP=1, XN=2,
    OA=..., Valid=0, NLTA=...). OA and NLTA take addresses (OA=0x61000000); OA.raw=N sets the
    field value. `pt ... addr=ADDRESS` shows the descriptor addresses.

    No TLB invalidation is issued: a cached translation stays until a CMD_TLBI_*."""
    if address & 7:
        raise CommandError(f"set desc: address: {address:#x} is not 8-byte aligned")
    f = fmt(DESC_FORMATS[(stage, kind)])
    pa = ctx.system.vm(vm).ipa_to_pa(address) if vm else address
    old = [ctx.system.read_u64(pa, "set desc")]
    new, changes = apply_fields("set desc", f, old, assign)
    ctx.system.store_words(pa, old, new)
    return res.SetDesc(**{"what": f.name, "addr": address, "pa": pa, "old": old, "new": new,
                          "changes": changes})


@command("set reg", Smmu(), Text("register", "register name (CR0, GBPA, STRTAB_BASE_CFG...)",
                                 metavar="REGISTER",
                                 complete=lambda ctx, a: [n[5:] for n in R.FORMATS]),
         Text("value", "the value, or FIELD=VALUE changes", optional=True, metavar="VALUE"),
         assignments=Assignments("FIELD=VALUE", None, required=False))
def set_reg(ctx, smmu, register, assign, value=None):
    """Software writes an SMMU register, with its side effects (CR0 -> CR0ACK, a GBPA update,
    CMDQ_PROD runs the queue, ...): a whole VALUE, or FIELD=VALUE changes to the current
    value (set reg smmu0 CR0 SMMUEN=0)."""
    m = ctx.system.smmu(smmu)
    old = m.reg(register)
    name = register.upper() if register.upper().startswith("SMMU_") else "SMMU_" + \
        register.upper()
    name = R.ALIASES.get(name, name)
    if value is not None and assign:
        raise CommandError("set reg: give a VALUE or FIELD=VALUE changes, not both")
    if value is None and not assign:
        raise CommandError("set reg: missing VALUE or FIELD=VALUE")
    if value is not None:
        try:
            new = parse_int(value)
        except ValueError:
            raise CommandError(f"set reg: value: {shown(value)} is not a number") from None
        changes = []
    else:
        words, changes = apply_fields("set reg", fmt(name), [old], assign)
        new = words[0]
    effects = m.set_reg(register, new)
    return res.SetReg(**{"what": name, "smmu": smmu, "old": old, "new": m.reg(register),
                          "written": new, "changes": changes,
                          "effects": effects if isinstance(effects, list) else []})


def _perm(text: str) -> str:
    if not text or set(text) - set("rwxp"):
        raise CommandError(f"map: perm: {shown(text)} must be letters from 'rwxp' "
                           f"(p: privileged only)")
    return text


@command("map", Domain(), Address("iova", "input address (VA or IPA)"),
         Address("out", "output address (IPA or PA)"), Int("size", "bytes (4K, 2M, 0x1000...)",
                                                            lo=1),
         Text("perm", "r, w, x letters (p: privileged only)", keyword=True, default="rw",
              complete=lambda ctx, a: ["r", "rw", "rx", "rwx", "rwp"]))
def map_(ctx, domain, iova, out, size, perm="rw"):
    """Map [IOVA, IOVA+SIZE) to OUT in a domain's tables, with blocks where size and alignment
    allow (as Linux io-pgtable-arm). No TLB invalidation is needed for a new mapping unless
    something was cached over it."""
    n = ctx.system.map_range(domain, iova, out, size, _perm(perm))
    return res.Map(**{"domain": domain, "iova": iova, "out": out, "size": size,
                          "perm": perm, "leaves": n})


@command("unmap", Domain(), Address("iova", "input address"), Int("size", "bytes", lo=1))
def unmap(ctx, domain, iova, size):
    """Unmap [IOVA, IOVA+SIZE) from a domain's tables (splitting blocks at the edges). Like
    software that forgets its TLBI, no invalidation is issued."""
    n = ctx.system.unmap_range(domain, iova, size)
    return res.Unmap(**{"domain": domain, "iova": iova, "size": size, "unmapped": n})
