"""Change commands: software writes to STEs, CDs, descriptors and registers, and map/unmap.

Like the software they stand for, they write memory only: no invalidation is issued. The SMMU
may keep using what it cached until a command (`cmd`) removes it; `check` shows what is stale.
"""
from __future__ import annotations

from core_cy.physmem import MemFault
from core_cy.ptbuild import BuildError

from ..arch.fieldtable import FieldError, fmt
from ..arch.smmuv3 import registers as R
from ..errors import ModelError
from ..model import hazards
from . import _tables as T
from .registry import (Address, Assignments, Choice, CommandError, Domain, Int, Result, Smmu,
                       Stream, Text, Vm, command)

STE = fmt("STE")
CD = fmt("CD")
DESC_FORMATS = {("1", "leaf"): "S1_BLOCK", ("1", "table"): "S1_TABLE",
                ("2", "leaf"): "S2_BLOCK", ("2", "table"): "S2_TABLE"}


def apply_fields(cmdname: str, f, words: list, assign) -> tuple[list, list]:
    """New words with FIELD=VALUE assignments applied, and the changed fields."""
    new = list(words)
    changes = []
    for name, text in assign:
        try:
            fld = f.field(name)
            value = fld.parse(text)
        except FieldError as e:
            raise CommandError(f"{cmdname}: {e}") from None
        old = fld.get(new)
        fld.put(new, value)
        changes.append({"field": fld.name, "old": old, "new": value,
                        "meaning": fld.value_name(value) or ""})
    return new, changes


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


def update_hazards(old, new, order, kind, walker) -> dict | None:
    """What the stores just made could have looked like to an SMMU reading the entry between
    them (no sync in between), and how the update should be made instead."""
    if old == new or not (old[0] & 1 if kind == "ste" else CD.field("V").get(old)):
        return None                 # nothing changed, or the entry was not live
    full = list(order) + [i for i in range(8) if i not in order]
    a = hazards.analyze(old, new, kind, order=full, walker=walker)
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

    Values are numbers or the field's names for them. Only the dwords that change are stored,
    dword 0 last. No invalidation is issued: a cached copy stays in use until
    CMD_CFGI_STE (see `check`). The result says whether the new STE is legal."""
    smmu_name, sid = target
    m = ctx.system.smmu(smmu_name)
    pa = m.ste_addr(sid, create=True)
    old = m.mem.read_words(pa, 8)
    new, changes = apply_fields("set ste", STE, old, assign)
    order = store_words(m.mem, pa, old, new)
    problem = m.walker.check_ste(new)
    return Result("set", {"what": "STE", "smmu": smmu_name, "sid": sid, "addr": pa,
                          "old": old, "new": new, "changes": changes, "stores": order,
                          "legal": problem in ("", "STE.Config=abort"),
                          "problem": problem or None,
                          "hazards": update_hazards(old, new, order, "ste", m.walker)})


@command("set cd", Stream("target", "DEVICE, or SMMU SID"),
         Int("ssid", "SubstreamID (default 0)", keyword=True, default=0, hi=(1 << 20) - 1),
         assignments=Assignments("FIELD=VALUE", _cd_format))
def set_cd(ctx, target, assign, ssid=0):
    """Software writes CD fields (by name: V=0, ASID=5, T0SZ=25, TTB0=0x..., EPD0=1, ...).

    The CD is found through the STE (through stage 2 when nested, as the guest's own write
    would land). No invalidation is issued: see `check` for the CMD_CFGI_CD it needs."""
    smmu_name, sid = target
    m = ctx.system.smmu(smmu_name)
    ste_words = m.read_ste(sid)
    loc = T.cd_location(m.mem, ste_words, ssid)
    old = m.mem.read_words(loc["pa"], 8)
    new, changes = apply_fields("set cd", CD, old, assign)
    order = store_words(m.mem, loc["pa"], old, new)
    problem = m.walker.check_cd(new, ste_words)
    return Result("set", {"what": "CD", "smmu": smmu_name, "sid": sid, "ssid": ssid,
                          "addr": loc["addr"], "pa": loc["pa"], "old": old, "new": new,
                          "changes": changes, "stores": order, "legal": problem == "",
                          "problem": problem or None,
                          "hazards": update_hazards(old, new, order, "cd", m.walker)})


@command("set desc", Address("address", "address of the descriptor (a PA, or an IPA with vm=)"),
         Choice("stage", ("1", "2"), "stage-1 or stage-2 format (default 1)", default="1"),
         Choice("kind", ("leaf", "table"), "block/page or table descriptor (default leaf)",
                default="leaf"),
         Vm("vm", "ADDRESS is an IPA of this VM (a guest's stage-1 tables)", keyword=True),
         assignments=Assignments("FIELD=VALUE", _desc_format))
def set_desc(ctx, address, assign, stage="1", kind="leaf", vm=None):
    """Software writes fields of one translation table descriptor (AF=0, AP=2, S2AP=1, XN=2,
    OA=..., Valid=0, NLTA=...). `pt ... addr=ADDRESS` shows the descriptor addresses.

    No TLB invalidation is issued: a cached translation stays until a CMD_TLBI_*."""
    if address & 7:
        raise CommandError(f"set desc: address: {address:#x} is not 8-byte aligned")
    f = fmt(DESC_FORMATS[(stage, kind)])
    pa = ctx.system.vm(vm).ipa_to_pa(address) if vm else address
    try:
        old = [ctx.system.mem.read_u64(pa)]
    except MemFault as e:
        raise ModelError(f"set desc: {e}") from None
    new, changes = apply_fields("set desc", f, old, assign)
    store_words(ctx.system.mem, pa, old, new)
    return Result("set", {"what": f.name, "addr": address, "pa": pa, "old": old, "new": new,
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
        from .registry import parse_int
        try:
            new = parse_int(value)
        except ValueError:
            raise CommandError(f"set reg: value: {value!r} is not a number") from None
        changes = []
    else:
        words, changes = apply_fields("set reg", fmt(name), [old], assign)
        new = words[0]
    effects = m.set_reg(register, new)
    return Result("set", {"what": name, "smmu": smmu, "old": old, "new": m.reg(register),
                          "written": new, "changes": changes,
                          "effects": effects if isinstance(effects, list) else []})


def _perm(text: str) -> str:
    if not text or set(text) - set("rwxp"):
        raise CommandError(f"map: perm: {text!r} must be letters from 'rwxp' "
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
    dom = ctx.system.domain(domain)
    try:
        n = ctx.system.map(dom, iova, out, size, _perm(perm))
    except (BuildError, MemFault, ValueError) as e:
        raise ModelError(f"map {domain}: {e}") from None
    return Result("map", {"domain": domain, "iova": iova, "out": out, "size": size,
                          "perm": perm, "leaves": n})


@command("unmap", Domain(), Address("iova", "input address"), Int("size", "bytes", lo=1))
def unmap(ctx, domain, iova, size):
    """Unmap [IOVA, IOVA+SIZE) from a domain's tables (splitting blocks at the edges). Like
    software that forgets its TLBI, no invalidation is issued."""
    dom = ctx.system.domain(domain)
    try:
        n = dom.tables.unmap(iova, size)
    except (BuildError, MemFault, ValueError) as e:
        raise ModelError(f"unmap {domain}: {e}") from None
    return Result("unmap", {"domain": domain, "iova": iova, "size": size, "unmapped": n})
