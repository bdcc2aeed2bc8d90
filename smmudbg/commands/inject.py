"""Inject commands: faults planted in the tables, raw events, commands into the command queue,
and lost invalidations. Each writes memory or queues the way a buggy driver, a guest or the
hardware would; none of them invalidates anything by itself."""
from __future__ import annotations

from .. import results as res
from ..arch.fieldtable import FieldError, fmt
from ..arch.smmuv3.events import encode_event
from ..arch.smmuv3.fields_queue import EVENT_TYPES, OPCODES
from ..arch.vtd.invalidation import INV_DSC_TYPES
from .change import field_value
from .inspect import plain_log
from .registry import (Address, Assignments, Choice, CommandError, Domain, Int, Iommu, Smmu,
                       Stream, Text, command, parse_int, shown)

STE = fmt("STE")
CD = fmt("CD")
S1_BLOCK = fmt("S1_BLOCK")
S2_BLOCK = fmt("S2_BLOCK")


def _leaf(ctx, cmdname, domain, address):
    tables = ctx.system.domain_tables(domain)
    leaf = tables.lookup(address)["leaf"]
    if leaf is None:
        raise CommandError(f"{cmdname}: {address:#x} is not mapped in {domain}")
    return tables, leaf, leaf["desc_pa"]


def _desc_result(cmdname, domain, leaf, pa, old, new, what):
    return res.InjectDesc(**{"inject": cmdname, "domain": domain, "desc_addr": leaf["desc_addr"],
                             "desc_pa": pa, "level": leaf["level"], "size": leaf["size"],
                             "old": old, "new": new, "what": what})


@command("inject unmap", Domain(), Address("address", "an address the domain maps"))
def inject_unmap(ctx, domain, address):
    """Invalidate (Valid=0) the leaf descriptor that maps ADDRESS: the whole page or block
    goes, without splitting it and without a TLBI. A walk now takes F_TRANSLATION (at stage 2
    with S2=1 for a stage-2 domain); a cached translation still answers until invalidated."""
    geo, leaf, pa = _leaf(ctx, "inject unmap", domain, address)
    old = leaf["desc"]
    ctx.system.store_words(pa, [old], [old & ~1])
    return _desc_result("unmap", domain, leaf, pa, old, old & ~1,
                        f"level-{leaf['level']} leaf of {leaf['size']:#x} bytes made invalid")


@command("inject clear-af", Domain(), Address("address", "an address the domain maps"))
def inject_clear_af(ctx, domain, address):
    """Clear the Access Flag of the leaf that maps ADDRESS (no TLBI). Without hardware AF
    update (and with AFFD=0) a walk now takes F_ACCESS."""
    geo, leaf, pa = _leaf(ctx, "inject clear-af", domain, address)
    f = (S1_BLOCK if geo.stage == 1 else S2_BLOCK).field("AF")
    old = leaf["desc"]
    new = old & ~(f.mask << f.lo)
    ctx.system.store_words(pa, [old], [new])
    return _desc_result("clear-af", domain, leaf, pa, old, new, "AF=0")


@command("inject drop-perm", Domain(), Address("address", "an address the domain maps"),
         Choice("perm", ("r", "w", "x"), "the permission to take away (default w)",
                default="w"))
def inject_drop_perm(ctx, domain, address, perm="w"):
    """Take a permission away in the leaf that maps ADDRESS (no TLBI): w makes it read-only
    (stage 1 AP[2]=1, stage 2 S2AP[1]=0), x sets PXN+UXN / XN=0b10, r clears S2AP[0] (stage 2
    only: stage 1 cannot express no-read). A walk with that access takes F_PERMISSION."""
    geo, leaf, pa = _leaf(ctx, "inject drop-perm", domain, address)
    old = leaf["desc"]
    w = [old]
    if geo.stage == 1:
        if perm == "r":
            raise CommandError("inject drop-perm: perm: stage 1 cannot take away read "
                               "(use inject unmap)")
        if perm == "w":
            ap = S1_BLOCK.field("AP")
            ap.put(w, ap.get(w) | 2)
            what = "AP[2]=1 (read-only)"
        else:
            S1_BLOCK.field("PXN").put(w, 1)
            S1_BLOCK.field("UXN").put(w, 1)
            what = "PXN=1 UXN=1"
    else:
        if perm == "x":
            S2_BLOCK.field("XN").put(w, 2)
            what = "XN=0b10"
        else:
            ap = S2_BLOCK.field("S2AP")
            ap.put(w, ap.get(w) & ~(1 if perm == "r" else 2))
            what = f"S2AP={ap.get(w):#04b}"
    ctx.system.store_words(pa, [old], w)
    return _desc_result("drop-perm", domain, leaf, pa, old, w[0], what)


def _ste(ctx, target):
    smmu_name, sid = target
    m = ctx.system.smmu(smmu_name)
    pa = m.ste_location(sid)
    return m, sid, pa, m.read_words(pa, 8, "STE")


def _ste_result(what, m, sid, pa, old, new):
    problem = m.check_ste(new)
    return res.InjectEntry(**{"inject": what, "smmu": m.name, "sid": sid, "addr": pa,
                             "old": old, "new": new, "problem": problem or None})


@command("inject corrupt-ste", Stream("target", "DEVICE, or SMMU SID"),
         Int("dword", "which 64-bit word (default 0)", keyword=True, default=0, hi=7),
         Int("bit", "which bit to flip (default 3: Config[2])", keyword=True, default=3, hi=63))
def inject_corrupt_ste(ctx, target, dword=0, bit=3):
    """Flip one bit of an STE in memory (default: dword 0 bit 3, the top bit of Config: any
    Config 0b1xx becomes 0b0xx, which aborts transactions without recording an event).
    No CMD_CFGI_STE."""
    m, sid, pa, old = _ste(ctx, target)
    new = list(old)
    new[dword] ^= 1 << bit
    m.store_words(pa, old, new)
    return _ste_result("corrupt-ste", m, sid, pa, old, new)


@command("inject invalidate-ste", Stream("target", "DEVICE, or SMMU SID"))
def inject_invalidate_ste(ctx, target):
    """Clear STE.V: transactions on the stream now take C_BAD_STE (once the cached STE is
    invalidated, or at once if it was not cached)."""
    m, sid, pa, old = _ste(ctx, target)
    new = list(old)
    STE.field("V").put(new, 0)
    m.store_words(pa, old, new)
    return _ste_result("invalidate-ste", m, sid, pa, old, new)


@command("inject reserved-ste", Stream("target", "DEVICE, or SMMU SID"),
         Text("field", "an STE field with reserved values (default: S2TG if the STE has "
              "stage 2, else Config)", keyword=True, default=None, metavar="FIELD",
              complete=lambda ctx, a: [f.name for f in STE.fields
                                       if any(n.startswith("reserved") for n in f.enum.values())]))
def inject_reserved_ste(ctx, target, field=None):
    """Set an STE field to a value the architecture reserves (the field's first reserved
    value: S2TG=0b11, Config=0b001, S1Fmt=0b11, ...).

    By default S2TG=0b11 on an STE with stage 2 (C_BAD_STE), else Config=0b001 (a Config of
    0b0xx aborts transactions without an event)."""
    if field is None:
        smmu_name, sid = target
        cfg = STE.field("Config").get(ctx.system.smmu(smmu_name).ste_words(sid))
        field = "S2TG" if cfg in (6, 7) else "Config"
    try:
        f = STE.field(field)
    except FieldError as e:
        raise CommandError(f"inject reserved-ste: field: {e}") from None
    values = [v for v, n in sorted(f.enum.items()) if n.startswith("reserved")]
    if not values:
        raise CommandError(f"inject reserved-ste: field: STE.{f.name} has no reserved value")
    m, sid, pa, old = _ste(ctx, target)
    new = list(old)
    f.put(new, values[0])
    m.store_words(pa, old, new)
    return _ste_result("reserved-ste", m, sid, pa, old, new)


def _cd(ctx, target, ssid):
    smmu_name, sid = target
    m = ctx.system.smmu(smmu_name)
    loc = m.cd_entry(sid, ssid)
    return m, sid, loc, loc["words"], loc["ste"]


@command("inject invalidate-cd", Stream("target", "DEVICE, or SMMU SID"),
         Int("ssid", "SubstreamID (default 0)", keyword=True, default=0, hi=(1 << 20) - 1))
def inject_invalidate_cd(ctx, target, ssid=0):
    """Clear CD.V: transactions with that SubstreamID now take C_BAD_CD (once the cached CD is
    invalidated)."""
    m, sid, loc, old, ste_words = _cd(ctx, target, ssid)
    new = list(old)
    CD.field("V").put(new, 0)
    m.store_words(loc["pa"], old, new)
    return res.InjectEntry(**{"inject": "invalidate-cd", "smmu": m.name, "sid": sid,
                             "ssid": ssid, "addr": loc["addr"], "pa": loc["pa"], "old": old,
                             "new": new, "problem": m.check_cd(new, ste_words) or None})


@command("inject corrupt-cd", Stream("target", "DEVICE, or SMMU SID"),
         Int("ssid", "SubstreamID (default 0)", keyword=True, default=0, hi=(1 << 20) - 1),
         Int("dword", "which 64-bit word (default 0)", keyword=True, default=0, hi=7),
         Int("bit", "which bit to flip (default 5: T0SZ[5])", keyword=True, default=5, hi=63))
def inject_corrupt_cd(ctx, target, ssid=0, dword=0, bit=5):
    """Flip one bit of a CD in memory (default dword 0 bit 5, the top bit of T0SZ: a 48-bit
    VA space's T0SZ=16 becomes 48, beyond what any granule allows, so C_BAD_CD). No
    CMD_CFGI_CD."""
    m, sid, loc, old, ste_words = _cd(ctx, target, ssid)
    new = list(old)
    new[dword] ^= 1 << bit
    m.store_words(loc["pa"], old, new)
    return res.InjectEntry(**{"inject": "corrupt-cd", "smmu": m.name, "sid": sid,
                             "ssid": ssid, "addr": loc["addr"], "pa": loc["pa"], "old": old,
                             "new": new, "problem": m.check_cd(new, ste_words) or None})


# -- raw events and commands --------------------------------------------------------------------
def _event_format(ctx, tokens):
    name = tokens[1] if len(tokens) > 1 else None
    return fmt("EVT_" + name.upper().removeprefix("EVT_")) if name else None


# VT-d invalidation descriptors by format name, with their type codes.
VTD_DESCRIPTORS = {k[:-len("_TYPE")]: v for k, v in INV_DSC_TYPES.items()}


def _cmd_format(ctx, tokens):
    name = tokens[1].upper() if len(tokens) > 1 else ""
    if name in VTD_DESCRIPTORS:
        return fmt(name, "vtd")
    return fmt(name if name.startswith("CMD_") else "CMD_" + name)


def _cmd_names(ctx, a):
    if ctx is not None and a.get("smmu") in ctx.system.vtds:
        return list(VTD_DESCRIPTORS)
    return list(OPCODES)


@command("inject event", Smmu(), Text("type", "event type (F_TRANSLATION, C_BAD_STE, ...)",
                                      metavar="EVENT",
                                      complete=lambda ctx, a: list(EVENT_TYPES)),
         assignments=Assignments("FIELD=VALUE", _event_format, required=False))
def inject_event(ctx, smmu, type, assign):
    """Write a raw event record into an SMMU's event queue, as the SMMU would (PROD moves;
    queue disabled or full behave as the architecture says: dropped or overflow).

    inject event smmu0 F_TRANSLATION StreamID=8 InputAddr=0x1000 RnW=1"""
    m = ctx.system.smmu(smmu)
    fields = {}
    for k, v in assign:
        fields[k] = v
    if len(type) > 64:
        raise CommandError(f"inject event: unknown event {shown(type)}")
    try:
        raw = encode_event(type, **fields)
    except FieldError as e:
        raise CommandError(f"inject event: {e}") from None
    idx = m.evtq.write_raw(raw)
    return res.InjectEvent(**{"inject": "event", "smmu": smmu, "event": type.upper(),
                             "raw": raw.hex(), "index": idx, "written": idx is not None})


def command_fields(cmdname: str, name: str, assign) -> dict:
    """FIELD=VALUE pairs for a command, as field values. Address fields take the address
    (as `set ste` does) and FIELD.raw=N the field value; Addr=FULL_ADDRESS is the address for
    the Address field (which holds address bits [..:12]), as `check` prints its fixes."""
    fields = {}
    f = _cmd_format(None, ["", name])
    for k, v in assign:
        if k.lower() == "addr":
            fld = f.field("Address")
            try:
                a = parse_int(v)
            except ValueError:
                raise CommandError(f"{cmdname}: Addr: {shown(v)} is not an address") from None
            fields[fld.name] = str(a >> fld.lo)
        else:
            fld, value = field_value(cmdname, f, k, v)
            fields[fld.name] = str(value)
    return fields


@command("cmd", Iommu(), Text("name", "command (CMD_CFGI_STE, TLBI_NH_VA, CMD_SYNC, ...; "
                                      "VT-d: an invalidation descriptor)", metavar="CMD",
                              complete=_cmd_names),
         assignments=Assignments("FIELD=VALUE", _cmd_format, required=False))
def cmd(ctx, smmu, name, assign):
    """Put one command into an SMMU's command queue and ring the doorbell (write CMDQ_PROD):
    the SMMU consumes it and the result says what it did (or the CERROR it stopped on).

    cmd smmu0 CMD_CFGI_STE StreamID=8 Leaf=1
    cmd smmu0 CMD_TLBI_NH_VA VMID=1 ASID=1 Addr=0x10000000
    cmd smmu0 CMD_SYNC

    Addr=ADDRESS gives the Address field as the full address (its bits [..:12] are stored);
    other address fields take addresses too and FIELD.raw=N sets a field value as it is.
    A dropped invalidation (drop-invalidations) shows as DROPPED.

    On a VT-d unit: one invalidation descriptor into its invalidation queue (at IQT_REG), then
    the unit processes the queue; the result names what each descriptor removed:

    cmd dmar0 CC_INV_DSC G=device SID=0x10
    cmd dmar0 PC_INV_DSC G=pasid DID=2 PASID=0
    cmd dmar0 IOTLB_INV_DSC G=domain DID=1
    cmd dmar0 P_IOTLB_INV_DSC G=page DID=2 PASID=0 ADDR=0x7f0000001000 AM=0
    cmd dmar0 INV_WAIT_DSC SW=1 STATUS_DATA=1 STATUS_ADDR=0x40100000"""
    if smmu in ctx.system.vtds:
        return _vtd_cmd(ctx, smmu, name, assign)
    m = ctx.system.smmu(smmu)
    key = name.upper() if name.upper().startswith("CMD_") else "CMD_" + name.upper()
    if key not in OPCODES:
        raise CommandError(f"cmd: name: unknown command {shown(name)}; known: "
                           f"{', '.join(n[4:] for n in OPCODES)}")
    try:
        fields = command_fields("cmd", key, assign)
        fmt(key).encode(**{k: v for k, v in fields.items()})
    except FieldError as e:
        raise CommandError(f"cmd: {e}") from None
    log = m.submit([(key, fields)])
    return res.Cmd(**{"smmu": smmu, "command": key, "log": plain_log(log),
                          "gerror": m.gerror_active()})


@command("drop-invalidations", Iommu(), Int("n", "how many CMD_CFGI_*/CMD_TLBI_* (VT-d: "
                                              "invalidation descriptors) to drop"))
def drop_invalidations(ctx, smmu, n):
    """Make the SMMU consume the next N invalidation commands (CMD_CFGI_*, CMD_TLBI_*) without
    acting on them, to reproduce a lost invalidation. 0 stops dropping.

    On a VT-d unit: the next N invalidation descriptors it fetches from the invalidation queue
    (CC_INV_DSC, PC_INV_DSC, IOTLB_INV_DSC, P_IOTLB_INV_DSC, device-TLB, IEC; not
    INV_WAIT_DSC, which still completes) remove nothing: the caches they name stay stale, and
    `check UNIT` names the descriptor that is missing."""
    if smmu in ctx.system.vtds:
        ctx.system.vtd(smmu).drop_budget = n
        return res.DropInvalidations(smmu=smmu, n=n, message=f"{smmu}: the next {n} "
                                     f"invalidation descriptors will be dropped")
    m = ctx.system.smmu(smmu)
    m.drop_next_invalidations(n)
    return res.DropInvalidations(smmu=smmu, n=n,
                                 message=f"{smmu}: the next {n} invalidations will be dropped")


@command("consume-events", Smmu(), Int("n", "how many (default all)", optional=True))
def consume_events(ctx, smmu, n=None):
    """Software reads N event records (all by default): moves EVENTQ_CONS, acknowledging an
    overflow."""
    m = ctx.system.smmu(smmu)
    k = m.consume_events(n)
    return res.ConsumeEvents(smmu=smmu, consumed=k,
                             message=f"{smmu}: consumed {k} event records")


def _vtd_cmd(ctx, unit, name, assign):
    key = name.upper()
    if key not in VTD_DESCRIPTORS:
        raise CommandError(f"cmd: name: {shown(name)} is not a VT-d invalidation descriptor; "
                           f"known: {', '.join(VTD_DESCRIPTORS)}")
    f = fmt(key, "vtd")
    fields = {}
    for k, v in assign:
        fld, value = field_value("cmd", f, k, v)
        fields[fld.name] = value
    code = VTD_DESCRIPTORS[key]
    try:
        lo = f.field("TYPE_LO")             # the type's low bits; TYPE_HI holds the rest
        words = f.encode(TYPE_LO=code & lo.mask, TYPE_HI=code >> lo.width, **fields)
    except FieldError as e:
        raise CommandError(f"cmd: {e}") from None
    u = ctx.system.vtd(unit)
    log = u.submit([words])
    return res.VtdInvalidation(unit=unit, descriptor=key, words=list(words), log=[
        {"index": e["index"], "type": e["type"], "removed": e["removed"],
         "removed_psc": e.get("removed_psc"), "note": e["note"]} for e in log], iqh=u.iqh, iqt=u.iqt, error=u.iq_error)
