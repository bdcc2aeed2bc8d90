"""Commands over the system around the SMMUs: the IORT, the ITS and the MSI path."""
from __future__ import annotations

import re
from dataclasses import asdict, replace

from .. import results as res
from ..errors import ModelError
from ..model import msi as msipath
from ..model.its import TRANSLATER
from ..arch.fieldtable import fmt
from ..arch.vtd.interrupt import INTERRUPT_RANGE
from ..model.pci import rid_str
from .registry import CommandError, Flag, Int, Text, command, parse_int, shown


def _pci_names(ctx, args):
    p = ctx.system.pci
    return list(p.devices) if p else []


def _its_names(ctx, args):
    return list(ctx.system.its)


def _targets(ctx, args):
    return _pci_names(ctx, args) + list(ctx.system.smmus) + list(ctx.system.vtd_devices) + \
        list(ctx.system.vtds)


# -- iort -----------------------------------------------------------------------------------------
def _node_row(n) -> dict:
    return {"name": n.name, "type": n.type,
            "mappings": [{"input_base": m.input_base, "count": m.count,
                          "output_base": m.output_base, "output": m.output,
                          "single": m.single} for m in n.mappings],
            "its_ids": list(getattr(n, "its_ids", ()) or ()),
            "segment": getattr(n, "segment", None), "base": getattr(n, "base", None),
            "ranges": [{"base": r.base, "length": r.length} for r in getattr(n, "ranges", ())]}


def _steps(path) -> list:
    return [{"node": s.node, "type": s.node_type, "input_id": s.input_id,
             "mapping": s.mapping_index, "output_id": s.output_id, "output_node": s.output_node,
             "note": s.note, "failure": s.failure, "fix": s.fix} for s in path.steps]


def _path(path, device=None) -> dict:
    return {"device": device, "bdf": None, "segment": path.segment, "rid": path.rid,
            "msi_rid": path.rid, "aliases": [], "steps": _steps(path), "smmu": path.smmu,
            "stream_id": path.stream_id, "its_group": path.its_group,
            "device_id": path.device_id, "failure": path.failure, "fix": path.fix}


def _parse_rid(text: str) -> tuple[int, int]:
    """SEG:RID, BB:DD.F, SSSS:BB:DD.F or a RID: (segment, rid)."""
    m = re.fullmatch(r"(?:([0-9a-fA-F]{1,4}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])",
                     text)
    if m:
        seg = int(m.group(1), 16) if m.group(1) else 0
        return seg, int(m.group(2), 16) << 8 | int(m.group(3), 16) << 3 | int(m.group(4))
    seg, _, rid = text.rpartition(":")
    try:
        return (parse_int(seg) if seg else 0), parse_int(rid)
    except ValueError:
        raise CommandError(f"iort: {shown(text)} is not a pci device, SEG:RID or "
                           f"BB:DD.F") from None


@command("iort", Text("target", "a pci device, SEG:RID, BB:DD.F or a RID", optional=True,
                      metavar="DEVICE|SEG:RID", complete=_pci_names), pure=True)
def iort(ctx, target=None):
    """IORT ID mappings: RID -> SMMU StreamID -> ITS DeviceID, as Linux resolves them.

    iort                    every node and mapping, each PCI device's StreamIDs and DeviceID,
                            and the consistency findings (Iort.check) with their fixes
    iort DEVICE             a PCI device: its DMA aliases (pci_for_each_dma_alias) with their
                            StreamIDs, and its MSI RID through each node to the DeviceID
    iort SEG:RID | BB:DD.F  one requester ID of a segment through the table

    Each step names the node, the mapping used (index; count is the number of IDs minus one,
    as in the table) and the ID out, or why it failed and the fix."""
    sysm = ctx.system
    t = sysm.iort
    if t is None:
        return res.Iort(revision=None, derived=False, nodes=[], devices=[], findings=[],
                        message="this system has no IORT (no pci or iort table)")
    pci = sysm.pci
    derived = "derive" in (sysm.spec.get("iort") or {})
    nodes = [_node_row(n) for n in t.nodes.values()]
    devices, path = [], None
    if pci is not None:
        for name, d in pci.devices.items():
            if d.is_bridge:
                continue
            dp = t.explain_device(pci, name)
            devices.append({"device": name, "bdf": dp.bdf, "rid": d.rid, "msi_rid": dp.msi_rid,
                            "stream_ids": [[a.smmu, a.stream_id] for a in dp.aliases],
                            "device_id": dp.msi.device_id, "failure": dp.failure})
    if target is not None:
        if pci is not None and target in pci.devices:
            dp = t.explain_device(pci, target)
            path = _path(dp.msi, target)
            path.update(bdf=dp.bdf, rid=pci.rid(target), msi_rid=dp.msi_rid,
                        aliases=[{"rid": a.rid, "reason": a.reason, "smmu": a.smmu,
                                  "stream_id": a.stream_id, "failure": a.failure}
                                 for a in dp.aliases],
                        failure=dp.failure, fix=dp.fix)
        else:
            seg, rid = _parse_rid(target)
            path = _path(t.explain(rid, seg))
            path["bdf"] = f"{seg:04x}:{rid_str(rid)}" if rid <= 0xFFFF else None
    findings = [asdict(f) for f in t.check(pci)]
    return res.Iort(revision=t.revision, derived=derived, nodes=nodes, devices=devices,
                    findings=findings, path=path)


# -- pci ------------------------------------------------------------------------------------------
@command("pci", pure=True)
def pci(ctx):
    """The PCI topology: host bridges (and pxb-pcie expanders) with their bus ranges, the
    root ports, switch ports and bridges below them with their secondary..subordinate buses,
    and the endpoints, each with its RID and, through the IORT, its SMMU StreamIDs and ITS
    DeviceID (`iort DEVICE` explains one path).

    Bus numbers are as enumeration gave them out (depth first, devfn order), or as the
    scenario gave them."""
    sysm = ctx.system
    topo = sysm.pci
    if topo is None:
        return res.Pci(hosts=[], devices=[],
                       message="this system has no PCI topology (no pci table)")
    t = sysm.iort
    hosts = [{"name": h.name, "kind": h.kind, "segment": h.segment, "bus": h.bus,
              "bus_end": h.bus_end, "used": h.max_bus, "parent": h.parent,
              "bdf": (f"{h.segment:04x}:{rid_str(topo.hosts[h.parent].bus << 8 | h.devfn)}"
                      if h.parent is not None else None)} for h in topo.hosts.values()]
    devices = []

    def visit(parent, depth):
        for d in topo.children(parent):
            row = {"name": d.name, "kind": d.kind, "bridge": d.is_bridge, "parent": parent,
                   "host": d.host, "depth": depth, "segment": d.segment,
                   "bdf": topo.bdf(d.name), "rid": d.rid, "secondary": d.secondary,
                   "subordinate": d.subordinate, "msi_rid": None, "stream_ids": None,
                   "device_id": None, "failure": None}
            if t is not None:
                try:
                    dp = t.explain_device(topo, d.name)
                    row.update(msi_rid=dp.msi_rid, device_id=dp.msi.device_id,
                               stream_ids=[[a.smmu, a.stream_id] for a in dp.aliases
                                           if a.smmu is not None], failure=dp.failure)
                except ModelError as e:
                    row["failure"] = str(e)
            devices.append(row)
            if d.is_bridge:
                visit(d.name, depth + 1)

    for h in topo.hosts.values():
        visit(h.name, 0)
    return res.Pci(hosts=hosts, devices=devices)


# -- its ------------------------------------------------------------------------------------------
def _its_read(s, i) -> dict:
    """One ITS table read as a row; a DTE's adds the ITT's address and its EventID count."""
    row = {"what": s.what, "index": s.index, "address": s.address, "raw": s.raw,
           "fields": dict(s.fields), "outcome": s.outcome, "ok": s.ok}
    if s.what == "DTE" and s.raw is not None:
        words = i.dte_fmt.from_bytes(s.raw.to_bytes(i.dte_size, "little"))
        row["itt"] = i.dte_fmt.field("ITT_addr").address(words)
        row["events"] = 1 << (s.fields["Size"] + 1)     # Size: EventID bits minus one
    return row


@command("its", Text("name", "an ITS by name", optional=True, metavar="ITS",
                     complete=_its_names),
         Int("device", "a DeviceID: its DTE and ITT mappings", keyword=True, hi=(1 << 32) - 1),
         pure=True)
def its(ctx, name=None, device=None):
    """A GICv3 ITS: registers, tables, collections, mapped events and pending LPIs.

    its [ITS] [device=N]

    registers  GITS_CTLR, TYPER, CBASER, CWRITER, CREADR, BASER0..7 as the ITS holds them
               (on an imported ITS: "not provided" for those the register file did not give)
    redistributors  an imported GIC's GICR frames: processor number, affinity, GICR_CTLR,
               TYPER, PROPBASER, PENDBASER, ...
    tables     the device and collection tables as GITS_BASER<n> describe them
    collections valid collections (ICID -> target redistributor)
    mappings   every valid ITE: DeviceID, EventID -> LPI INTID, collection, target
    pending    LPIs pending on each redistributor (raised by MSI writes: `msi`)
    dtes, ctes the valid entries of the device and collection tables: where each is, the
               entry as read and its fields
    With device=N only that DeviceID's events are listed, and its DTE read and the valid
    entries of its ITT (itt) are shown."""
    sysm = ctx.system
    if not sysm.its:
        raise CommandError("its: this system has no ITS (add an [[its]] table)")
    try:
        i = sysm.its_named(name)
    except ModelError as e:
        raise CommandError(f"its: {e}") from None
    given = getattr(i, "regs_provided", None)        # an imported ITS: only what was given
    # An imported ITS shows its snapshot's values as given (GITS_CTLR.Quiescent included).
    regs = ({n: i.read(n) for n in i.regs} if given is None else
            {n: (i.regs[n] if n in given else None) for n in i.regs})
    tables = []
    for kind in ("Devices", "Collections"):
        tb = i.table(kind)
        if tb is not None:
            tables.append({**asdict(tb), "capacity": tb.capacity})
    maps = [{"device_id": d, "event_id": e, "intid": n, "icid": c, "target": t}
            for d, e, n, c, t in i.mappings() if device is None or d == device]
    # Valid collections whose target exists (what lookup_collection accepts).
    colls = [{"icid": icid, "target": rd} for icid, rd in i.collection_entries()
             if i.gic.exists(rd)]
    dev = itt = None
    if device is not None:
        steps = []
        try:
            i.lookup_device(device, steps)
        except Exception:       # the steps say why (invalid, out of range, abort)
            pass
        dev = {"device_id": device, "steps": [_its_read(s, i) for s in steps]}
        itt = [_its_read(s, i) for s in i.ite_reads(device)]
    pending = [{"target": pe, "intids": sorted(p)} for pe, p in enumerate(i.gic.pending) if p]
    errors = [{"offset": c.offset, "name": c.name, "error": c.error, "reason": c.reason}
              for c in i.log if not c.ok]
    redists = getattr(sysm.platform, "redistributors", None) or []
    return res.Its(name=i.name, base=i.base, translater=i.base + TRANSLATER, enabled=i.enabled,
                   stalled=i.stalled, registers=regs, tables=tables, collections=colls,
                   mappings=maps, device=dev, pending=pending, commands=len(i.log),
                   errors=errors, redistributors=[dict(r) for r in redists],
                   dtes=[_its_read(s, i) for s in i.dte_reads()],
                   ctes=[_its_read(s, i) for s in i.cte_reads()], itt=itt)


# -- msi ------------------------------------------------------------------------------------------
@command("msi", Text("target", "a pci device, or an SMMU", metavar="DEVICE|SMMU",
                     complete=_targets),
         Text("b", "the vector, or the StreamID", metavar="VECTOR|SID"),
         Text("address", "the doorbell IOVA the device writes (raw form)", optional=True,
              metavar="ADDRESS"),
         Int("data", "the MSI data (EventID) of a raw write", keyword=True,
             hi=(1 << 32) - 1),
         Int("devid", "the ITS DeviceID of a raw write (default: the StreamID through the "
                      "IORT)", keyword=True, hi=(1 << 32) - 1),
         Flag("dry", "put the LPI pending state back afterwards (VT-d: the IRTE from memory, "
                     "no interrupt entry cache fill, no fault recorded)"))
def msi(ctx, target, b, address=None, data=None, devid=None, dry=False):
    """Follow an MSI from a device to its LPI: gIOVA -> gDB -> hDB -> ITS -> LPI.

    msi DEVICE VECTOR                      the vector's message as its driver programmed it
    msi SMMU SID ADDRESS data=N [devid=N]  a raw write (the doorbell IOVA and the MSI data,
                                           as on an imported dump)

    Steps: msi (the message and the MSI RID) -> iort (RID -> StreamID -> DeviceID, node by
    node) -> smmu (the walk's dry translation: STE, stage 1 gIOVA -> gDB, stage 2 gDB -> hDB)
    -> region (what the write lands on: it must be an ITS's GITS_TRANSLATER) -> its (DeviceID
    and EventID = the data: DTE, ITE, CTE -> LPI INTID, collection, target redistributor).
    A broken path stops at the failing step with the reason and the fix. The write is made:
    the LPI becomes pending on its target (see `its`), unless dry.

    On an x86 system (Intel VT-d):
    msi DEVICE N                     the device's N-th interrupt (its irtes[N]) as the driver
                                     programs it: remappable format, handle = the IRTE index
    msi UNIT RID ADDRESS data=N      a raw interrupt request (0xFEEx_xxxx)
    Steps: the message (format, handle, SHV, subhandle) -> the IRTE (present, reserved bits,
    source-ID verification by SVT/SQ/SID) -> vector, destination, delivery and trigger mode (or
    the posted descriptor), or the interrupt-remapping fault (20h-26h). Unlike Arm's doorbell,
    the 0xFEE00000-0xFEEFFFFF window is not translated by the DMA tables: a write there without
    PASID is an interrupt request (dma_walk says what `walk` does with it)."""
    sysm = ctx.system
    if target in sysm.vtd_devices or target in sysm.vtds:
        return _vtd_msi(ctx, target, b, address, data, dry)
    try:
        if address is None:
            if data is not None or devid is not None:
                raise CommandError("msi: data= and devid= are for the raw form: msi SMMU SID "
                                   "ADDRESS data=N")
            try:
                vector = parse_int(b)
            except ValueError:
                raise CommandError(f"msi: vector: {shown(b)} is not a number") from None
            r = msipath.from_device(sysm, target, vector, dry=dry)
        else:
            if target not in sysm.smmus:
                raise CommandError(f"msi: {shown(target)} is not an SMMU (raw form: msi SMMU SID "
                                   f"ADDRESS data=N)")
            try:
                sid, addr = parse_int(b), parse_int(address)
            except ValueError:
                raise CommandError(f"msi: {shown(b)} / {shown(address)}: SID and ADDRESS are "
                                   f"numbers") \
                    from None
            if data is None:
                raise CommandError("msi: a raw write needs data=N (the MSI data: the EventID)")
            if sid >> 32 or addr >> 64:
                raise CommandError("msi: SID is 32 bits and ADDRESS 64 bits")
            r = msipath.raw(sysm, target, sid, addr, data, devid, dry=dry)
    except ModelError as e:
        raise CommandError(f"msi: {e}") from None
    msg = (f"LPI {r['intid']} (collection {r['icid']}) on redistributor {r['target']}"
           if r["ok"] else f"broken at {r['failed']}: {r['reason']}")
    return res.Msi(message=msg, **{k: v for k, v in r.items()})


# -- iommufd --------------------------------------------------------------------------------------
VIEWS = ("explain", "devices", "ioas", "hwpt", "viommu", "vdevice", "vtd")


def _plain(v):
    """Dataclass rows as JSON data: tuples become lists."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


@command("iommufd", Text("view", "explain (default), devices, ioas, hwpt, viommu, vdevice, vtd",
                         optional=True, metavar="VIEW", complete=lambda c, a: list(VIEWS)),
         pure=True)
def iommufd(ctx, view=None):
    """iommufd objects: IOAS, nesting-parent HWPT, nested HWPT, vIOMMU, vDEVICE.

    iommufd [explain]   which HWPT each device uses, the S2 behind it, who shares it and why,
                        and the S2 sharing decision (one nesting-parent S2 per SMMU unless
                        a device's coherency or a read-only-S2 erratum forces another)
    iommufd devices | ioas | hwpt | viommu | vdevice   the objects of that kind
    iommufd vtd         on VT-d ([vtd_iommufd]): the containers (IOAS with or without the
                        VM's read-only areas, by ERRATA_772415_SPR17), the nesting-parent S2
                        HWPTs in each, the devices sharing each S2, and every device's
                        decisions with the kernel's answers (the default on a VT-d system)

    The objects are the scenario's [iommufd] table, created through the modelled ioctls with
    the kernel's checks (docs/iommufd.md); rows carry the scenario's names."""
    from ..model.iommufd import DeviceNeed, IommuCaps, plan_s2
    vmm = ctx.system.iommufd
    vtd = ctx.system.vtd_iommufd
    view = view or ("vtd" if vmm is None and vtd is not None else "explain")
    if view not in VIEWS:
        raise CommandError(f"iommufd: {shown(view)} is not one of {', '.join(VIEWS)}")
    if view == "vtd":
        if vtd is None:
            raise CommandError("iommufd vtd: this system has no VT-d iommufd objects (add a "
                               "[vtd_iommufd] table)")
        return res.VtdIommufd(**vtd.view())
    if vmm is None:
        raise CommandError("iommufd: this system has no iommufd objects (add an [iommufd] "
                           "table)" + ("; its VT-d ones: iommufd vtd" if vtd else ""))
    fd = vmm.fd
    plan = None
    if view == "explain":
        rows = [asdict(x) for x in fd.explain()]
        devs = [d for d in fd.objects.values() if type(d).__name__ == "Device"]
        p = plan_s2([DeviceNeed(d.name, d.smmu.name, d.canwbs) for d in devs],
                    {d.smmu.name: IommuCaps.from_smmu(d.smmu) for d in devs})
        plan = _plain(asdict(p))
    elif view == "devices":
        rows = [asdict(x) for x in fd.devices()]
    elif view == "ioas":
        rows = [asdict(o.info()) for o in fd.objects.values() if type(o).__name__ == "Ioas"]
    elif view == "hwpt":
        rows = [asdict(x) for x in fd.hwpts()]
    elif view == "viommu":
        rows = [asdict(x) for x in fd.viommus()]
    else:
        rows = [asdict(x) for x in fd.vdevices()]
    for r in rows:
        if "id" in r:
            r["name"] = vmm.name_of(r["id"])
    return res.Iommufd(view=view, rows=_plain(rows), plan=plan)


# -- inject: break the MSI path -------------------------------------------------------------------
_S2TG = fmt("STE").field("S2TG")
_TG0 = fmt("CD").field("TG0")


@command("inject its-page", Text("device", "a pci device with MSI", metavar="DEVICE",
                                 complete=_pci_names),
         Int("vector", "the MSI vector whose doorbell to unmap (default 0)", keyword=True))
def inject_its_page(ctx, device, vector=None):
    """Take the ITS doorbell page out of the device's S2 (the nesting parent), or out of its
    stage 1 when the stream has no stage 2: the leaf that maps the doorbell becomes invalid
    (Valid=0), without a TLBI. `msi DEVICE VECTOR` then breaks at the SMMU step, and names the
    one command that maps the page back."""
    sysm = ctx.system
    vector = 0 if vector is None else vector
    try:
        r = msipath.from_device(sysm, device, vector, dry=True)
    except ModelError as e:
        raise CommandError(f"inject its-page: {e}") from None
    step = next((s for s in r["steps"] if s["what"] == "smmu"), None)
    if step is None or not step["ok"]:
        raise CommandError(f"inject its-page: the MSI path of {device} does not translate the "
                           f"doorbell ({r['failed']}: {r['reason']})")
    leaves = [w for w in step["walk"] if w["outcome"] in ("page", "block")]
    s2 = [w for w in leaves if w["stage"] == 2]
    leaf = (s2 or leaves)[-1]
    m = sysm.smmus[r["smmu"]]
    tg = _S2TG if leaf["stage"] == 2 else _TG0
    if leaf["stage"] == 2:
        words = m.ste_words(r["sid"])
    else:
        words = [next(w for w in step["walk"] if w["what"] == "CD")["desc"]]   # CD dword 0
    size = sysm.leaf_size(tg.granule_shift.get(tg.get(words), 12), leaf["level"])
    pa, old = leaf["desc_pa"], leaf["desc"]
    sysm.store_words(pa, [old], [old & ~1])
    st = sysm.streams.get((r["smmu"], r["sid"]))
    dom = (st.spec.get("s2") if leaf["stage"] == 2 else
           (st.spec["cds"][0]["domain"] if st.spec.get("cds") else None)) if st else None
    addr = r["ipa"] if leaf["stage"] == 2 and r["ipa"] is not None else r["address"]
    return res.InjectDesc(inject="its-page", domain=dom or f"{r['smmu']} SID {r['sid']:#x}",
                          desc_addr=leaf["desc_ipa"] if leaf["desc_ipa"] is not None else pa,
                          desc_pa=pa, level=leaf["level"], size=size, old=old, new=old & ~1,
                          what=f"the stage-{leaf['stage']} leaf mapping the doorbell "
                               f"{addr:#x} ({size:#x} bytes) made invalid")


@command("inject iort", Text("device", "a pci device", metavar="DEVICE", complete=_pci_names))
def inject_iort(ctx, device):
    """Break the IORT ID mapping a device's MSI RID takes at the root complex: the mapping is
    removed from the node, so the RID (and every RID it covered) reaches no SMMU or ITS.
    `iort DEVICE`, `msi DEVICE N` and `check` then show the gap."""
    sysm = ctx.system
    if sysm.iort is None or sysm.pci is None:
        raise CommandError("inject iort: this system has no pci/iort")
    try:
        path = sysm.iort.explain_device(sysm.pci, device).msi
    except ModelError as e:
        raise CommandError(f"inject iort: {e}") from None
    step = path.steps[0] if path.steps else None
    if step is None or step.mapping_index is None:
        raise CommandError(f"inject iort: the RID of {device} takes no mapping already "
                           f"({path.failure})")
    node = sysm.iort.nodes[step.node]
    m = node.mappings[step.mapping_index]
    sysm.iort.nodes[node.name] = replace(node, mappings=tuple(
        x for i, x in enumerate(node.mappings) if i != step.mapping_index))
    return res.InjectIort(device=device, rid=path.rid, node=node.name,
                          mapping_index=step.mapping_index,
                          mapping={"input_base": m.input_base, "count": m.count,
                                   "output_base": m.output_base, "output": m.output,
                                   "single": m.single},
                          message=f"removed mapping {step.mapping_index} of {node.name}: "
                                  f"{m.describe()}")


def _vtd_msi(ctx, target, b, address, data, dry=False):
    sysm = ctx.system
    if target in sysm.vtd_devices:
        if address is not None or data is not None:
            raise CommandError("msi: the raw form is msi UNIT RID ADDRESS data=N")
        dev = sysm.vtd_devices[target]
        unit, rid = dev.smmu, dev.sid
        irtes = dev.spec.get("irtes", [])
        try:
            n = parse_int(b)
        except ValueError:
            raise CommandError(f"msi: vector: {b!r} is not a number") from None
        if not 0 <= n < len(irtes):
            raise CommandError(f"msi: {target} has {len(irtes)} interrupt(s) (irtes); no {n}")
        index = irtes[n]["index"]
        f = fmt("MSI_ADDR_REMAP", "vtd")
        handle = f.field("HANDLE")          # handle[14:0]; handle[15] is HANDLE_15
        addr = f.encode(FEE=f.field("FEE").get([INTERRUPT_RANGE[0]]), IF="remappable",
                        HANDLE=index & handle.mask, HANDLE_15=index >> handle.width)[0]
        data = 0
    else:
        unit = target
        if address is None or data is None:
            raise CommandError("msi: a raw interrupt request is msi UNIT RID ADDRESS data=N")
        try:
            rid, addr = parse_int(b), parse_int(address)
        except ValueError:
            raise CommandError(f"msi: {b!r} / {address!r}: RID and ADDRESS are numbers") \
                from None
        if rid >> 16:
            raise CommandError(f"msi: {rid:#x} is not a 16-bit requester ID")
    u = sysm.vtd(unit)
    r = u.remap_msi(rid, addr, data, dry=dry)
    dma = u.translate(rid, addr, None, access="write", dry=True)["kind"]
    dev = u.devices.get(rid)
    return res.VtdMsi(unit=unit, rid=rid, device=dev.name if dev else None, address=addr,
                      msi_data=data, **{k: r[k] for k in (
                          "ok", "remapped", "format", "index", "irte_pa", "irte", "vector",
                          "dest", "dest_mode", "delivery", "trigger", "redirection_hint",
                          "posted", "pda", "urgent", "fault", "fault_index")},
                      dma_walk=dma, iec_hit=r["cached"])
