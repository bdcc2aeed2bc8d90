"""The MSI path end to end: a device's MSI write followed through every layer of the system.

    RID (PCI, the MSI RID Linux uses) -> IORT -> StreamID and DeviceID
      -> STE -> stage 1 (gIOVA -> gDB) -> stage 2 (gDB -> hDB)      (the SMMU's dry walk)
      -> the region of the system map the write lands on            (must be GITS_TRANSLATER)
      -> the ITS: DTE (DeviceID) -> ITE (EventID = the MSI data) -> CTE -> LPI pending

Each layer is one step (a dict: what, ok, input, output, detail, reason, fix, and the layer's own
trace: the walk steps or the ITS table reads). A broken path stops at the failing step with the
reason and the fix. The SMMU part is the walk's dry translation (nothing cached, no event); the
write itself is then made through the system map with the requester's DeviceID, so the ITS
translates it as its MMIO callback and the LPI becomes pending (unless `dry`: then the pending
state is put back).

Software MSI windows: Linux reserves IOVA MSI_IOVA_BASE 0x8000000 (1 MiB) for SW_MSI and maps
doorbell pages there; a VMM with an accelerated vSMMU places the host ITS page in the
nesting-parent S2 at the guest's doorbell GPA (QEMU virt: GITS_TRANSLATER at 0x08090040).
"""
from __future__ import annotations

from core_cy.physmem import MemFault

from ..arch.gicv3.registers import OFFSETS
from ..errors import ModelError
from .iort import MSI_IOVA_BASE, MSI_IOVA_LENGTH
from .its import Its

TRANSLATER = OFFSETS["GITS_TRANSLATER"]
QEMU_VIRT_GITS_TRANSLATER = 0x0809_0040      # the guest doorbell GPA on QEMU virt

# Fixes for the ITS's architected translation failures (IHI 0069 5.3 / 5.5).
ITS_FIXES = {
    "ITS_DISABLED": "set GITS_CTLR.Enabled (the ITS ignores writes while disabled)",
    "DEVICE_OOR": "the DeviceID is beyond GITS_TYPER.Devbits or the device table GITS_BASER0 "
                  "allocates: enlarge the table (or a level-2 page), or check the IORT DeviceID",
    "UNMAPPED_DEVICE": "MAPD DeviceID={dev:#x} with an ITT (the driver's its_msi_prepare)",
    "ID_OOR": "EventID {ev:#x} is beyond the ITT: MAPD DeviceID={dev:#x} with a larger Size",
    "UNMAPPED_INTERRUPT": "MAPTI DeviceID={dev:#x} EventID={ev:#x} pINTID=... ICID=...",
    "COLLECTION_OOR": "use an ICID within GITS_TYPER.CIDbits and the collection table",
    "UNMAPPED_COLLECTION": "MAPC the collection (ICID, RDbase) before its interrupts fire",
    "PROCNUM_OOR": "MAPC the collection to an existing redistributor",
    "ABORT": "the ITS table is not in RAM: point GITS_BASER<n>/DTE.ITT_addr at memory",
}


class MsiTrace:
    """Builds the step list of one MSI write."""

    def __init__(self, system):
        self.system = system
        self.steps: list[dict] = []
        self.out = {"device": None, "vector": None, "rid": None, "smmu": None, "sid": None,
                    "device_id": None, "address": None, "msi_data": None, "ipa": None, "pa": None,
                    "region": None, "its": None, "intid": None, "icid": None, "target": None,
                    "cpu": None, "ok": False, "failed": None, "reason": None, "fix": None}

    def step(self, what, ok=True, reason=None, fix=None, **kw) -> bool:
        self.steps.append({"what": what, "ok": ok, "reason": reason, "fix": fix, **kw})
        if not ok:
            self.out.update(failed=what, reason=reason, fix=fix)
        return ok

    def result(self) -> dict:
        if self.out["failed"] is None:
            self.out["ok"] = True
        return {**self.out, "steps": self.steps}


def _walk_steps(steps) -> list[dict]:
    return [dict(s) for s in steps]


def from_device(system, device: str, vector: int, dry: bool = False) -> dict:
    """`msi DEVICE VECTOR`: the vector's message as the driver programmed it, from the
    device's MSI RID through the IORT."""
    t = MsiTrace(system)
    pci, iort = system.pci, system.iort
    if pci is None:
        raise ModelError("this system has no pci table: use msi SMMU SID ADDRESS data=N")
    msg = pci.msi_message(device, vector)          # ModelError names the device and vectors
    rid = pci.msi_rid(device)
    t.out.update(device=device, vector=vector, rid=rid, address=msg.address, msi_data=msg.data)
    note = "masked: the function does not send it until unmasked" if msg.masked else None
    t.step("msi", input=pci.bdf(device), output=msg.address, data=msg.data, kind=msg.kind,
           detail=f"{msg.kind.upper()} vector {vector}: write {msg.data:#x} to {msg.address:#x}"
                  f" (MSI RID {rid:#06x})" + (f"; {note}" if note else ""))
    if iort is None:
        t.step("iort", False, "this system has no IORT: the RID reaches no SMMU or ITS",
               "add an iort table (or let it be derived from pci)", input=rid)
        return t.result()
    path = iort.explain(rid, pci.node(device).segment)
    if not _iort_step(t, path, rid):
        return t.result()
    return _through_smmu(t, path.smmu, path.stream_id, path.device_id, msg.address, msg.data,
                         dry)


def raw(system, smmu: str, sid: int, address: int, data: int, device_id: int | None = None,
        dry: bool = False) -> dict:
    """`msi SMMU SID ADDRESS data=N`: a write of `data` at IOVA `address` by StreamID `sid`
    (the doorbell IOVA and MSI data a device writes, as on an imported dump). The DeviceID is
    the StreamID through the IORT's SMMU node, or `device_id` when given."""
    t = MsiTrace(system)
    system.smmu(smmu)
    t.out.update(address=address, msi_data=data, smmu=smmu, sid=sid)
    t.step("msi", input=f"{smmu} StreamID {sid:#x}", output=address, data=data, kind="raw",
           detail=f"raw write {data:#x} to IOVA {address:#x}")
    if device_id is None:
        iort = system.iort
        if iort is None or smmu not in iort.nodes:
            t.step("iort", False, f"no IORT node for {smmu}: the DeviceID of StreamID "
                   f"{sid:#x} is unknown", "give devid=N (QEMU virt maps StreamIDs "
                   "identity to the ITS: devid = the StreamID)", input=sid)
            t.out.update(smmu=smmu, sid=sid)
            return t.result()
        path = iort.explain_from(smmu, sid)
        if not _iort_step(t, path, sid):
            return t.result()
        device_id = path.device_id
    else:
        t.step("iort", input=sid, output=device_id, detail=f"DeviceID {device_id:#x} as given",
               nodes=[])
    return _through_smmu(t, smmu, sid, device_id, address, data, dry)


def _iort_step(t: MsiTrace, path, rid) -> bool:
    nodes = [{"node": s.node, "type": s.node_type, "input_id": s.input_id,
              "mapping": s.mapping_index, "output_id": s.output_id, "output_node": s.output_node,
              "note": s.note, "failure": s.failure} for s in path.steps]
    t.out.update(smmu=path.smmu, sid=path.stream_id, device_id=path.device_id)
    if path.failure or path.device_id is None:
        return t.step("iort", False, path.failure or "the ID reaches no ITS group",
                      path.fix or "map the ID to an ITS group", input=rid, nodes=nodes)
    where = (f"StreamID {path.stream_id:#x} at {path.smmu}, " if path.smmu else
             "no SMMU (root complex straight to the ITS group), ")
    return t.step("iort", input=rid, output=path.device_id, nodes=nodes,
                  detail=f"{where}DeviceID {path.device_id:#x} at {path.its_group}")


def _through_smmu(t, smmu, sid, device_id, address, data, dry) -> dict:
    sysm = t.system
    pa = address
    if smmu is not None:
        if smmu not in sysm.smmus:
            t.step("smmu", False, f"the IORT names SMMU {smmu!r}, which this system does not "
                   "have", f"name the IORT smmuv3 node after a scenario SMMU "
                   f"({', '.join(sysm.smmus)})")
            return t.result()
        r = sysm.smmus[smmu].translate_dry(sid, address, None, access="write")
        window = (f"; IOVA {address:#x} is in Linux's software-MSI window (MSI_IOVA_BASE "
                  f"0x8000000, 1 MiB)"
                  if MSI_IOVA_BASE <= address < MSI_IOVA_BASE + MSI_IOVA_LENGTH else "")
        rmr = _rmr_note(sysm, smmu, sid, address)
        st = sysm.streams.get((smmu, sid))
        kw = dict(input=address, ipa=r["ipa"], output=r["pa"], walk=_walk_steps(r["steps"]),
                  stream=st.name if st else None)
        f = r["fault"]
        if f:
            t.out["ipa"] = f.get("ipa")
            reason, fix = _smmu_failure(sysm, f, address, sid, st)
            ipa = f.get("ipa")
            if rmr and ipa is not None and ipa >> 12 != address >> 12:
                # The RMR says IOVA = IPA over its window: the guest's stage 1 broke that.
                fix = (f"the guest's stage 1 must identity-map the RMR window: map IOVA "
                       f"{address & ~0xFFF:#x} -> IPA {address & ~0xFFF:#x} (it maps it to "
                       f"{ipa & ~0xFFF:#x})")
            t.step("smmu", False, reason + window + rmr, fix, fault=f["type"], **kw)
            return t.result()
        pa = r["pa"]
        t.out.update(ipa=r["ipa"], pa=pa)
        detail = (f"gIOVA {address:#x} -> gDB {r['ipa']:#x} -> hDB {pa:#x}" if r["ipa"] is not
                  None else f"IOVA {address:#x} -> PA {pa:#x}")
        t.step("smmu", detail=detail + window + rmr, fault=None, **kw)
    else:
        t.out["pa"] = pa
    return _land(t, pa, data, device_id, dry)


def _rmr_note(sysm, smmu, sid, address) -> str:
    iort = sysm.iort
    if iort is None:
        return ""
    for r in iort.rmr_regions(smmu, [sid]):
        if r.base <= address < r.base + r.length:
            return (f"; inside RMR {r.rmr} [{r.base:#x}, +{r.length:#x}) ({r.type}): the guest "
                    f"must identity-map it")
    return ""


def _smmu_failure(sysm, f, address, sid, st):
    typ = f["type"]
    if typ == "ABORT" or f.get("reason") == "STE.Config=abort":
        return (f"the STE of StreamID {sid:#x} aborts every transaction (Config=abort)",
                "give the stream a translating STE (attach a domain: nested HWPT / "
                "CMD_CFGI_STE)")
    if typ in ("C_BAD_STREAMID", "C_BAD_STE", "C_BAD_SUBSTREAMID", "C_BAD_CD"):
        return (f"{typ}: {f.get('reason') or 'configuration rejected'}",
                f"fix the configuration of StreamID {sid:#x} (ste / cd)")
    where = "stage 2" if f.get("s2") else "stage 1"
    if f.get("s2") and f.get("class") in ("CD", "TT"):
        # the fault is on the walk's own fetch (the guest's CD or stage-1 table), not the
        # doorbell: the S2 lacks guest RAM there
        what = "CD" if f["class"] == "CD" else "stage-1 table"
        ipa = f.get("ipa")
        at = f"{ipa:#x}" if ipa is not None else "its IPA"
        return (f"{typ} at stage 2 fetching the guest's {what} at IPA {at}: the S2 does not "
                f"map that guest RAM",
                "map the VM's RAM back into the S2 (IOMMU_IOAS_MAP of the guest RAM at its "
                "GPAs), or fix the guest's pointer to it")
    if f.get("s2"):
        ipa = f.get("ipa")
        gdb = f"{ipa:#x}" if ipa is not None else "the doorbell IPA"
        its = next(iter(sysm.its.values()), None)
        hdb = f"{(its.base + TRANSLATER) & ~0xFFF:#x}" if its else "HOST_ITS_PAGE"
        page = f"{ipa & ~0xFFF:#x}" if ipa is not None else "GDB_PAGE"
        s2 = (st.spec.get("s2") if st else None) or "S2_DOMAIN"
        return (f"{typ} at stage 2: the nesting-parent S2 does not map the ITS page at gDB "
                f"{gdb}",
                f"IOMMU_IOAS_MAP the doorbell page / sw_msi: the VMM maps the host ITS page "
                f"{hdb} at gDB {page} in the S2 (`map {s2} {page} {hdb} 4K`)")
    if typ == "F_PERMISSION":
        return (f"F_PERMISSION at {where}: the doorbell IOVA {address:#x} is not writable",
                "map the doorbell page with write permission")
    return (f"{typ} at {where}: nothing maps the doorbell IOVA {address:#x}",
            f"map the doorbell page at IOVA {address & ~0xFFF:#x} in the {where} tables "
            f"(iommu_dma_get_msi_page / the guest's MSI mapping)")


def _land(t, pa, data, device_id, dry) -> dict:
    sysm = t.system
    region = sysm.mem.region_at(pa)
    its = region.owner if region is not None and isinstance(region.owner, Its) else None
    if region is None:
        desc = "nothing"
    elif region.kind == "mmio":
        owner = getattr(region.owner, "name", region.owner)
        desc = f"MMIO of {owner} [{region.base:#x}, +{region.size:#x})"
    else:
        desc = f"{region.kind.upper()} [{region.base:#x}, +{region.size:#x})"
    t.out["region"] = desc
    dbs = ", ".join(f"{n} GITS_TRANSLATER {i.base + TRANSLATER:#x}" for n, i in
                    sysm.its.items()) or "this system has no ITS"
    if its is None:
        what = ("lands on RAM: the write would corrupt memory and raise no interrupt"
                if region is not None and region.kind != "mmio" else
                f"lands on {desc}, not an ITS doorbell")
        t.step("region", False, f"PA {pa:#x} {what}",
               f"map the doorbell IOVA to the ITS translation frame ({dbs})", input=pa,
               output=None, region=desc)
        return t.result()
    t.out["its"] = its.name
    if pa - its.base != TRANSLATER:
        t.step("region", False, f"PA {pa:#x} is in ITS {its.name} at +{pa - its.base:#x}, not "
               f"GITS_TRANSLATER (+{TRANSLATER:#x}): the write is ignored",
               f"point the MSI at {its.base + TRANSLATER:#x}", input=pa, output=None,
               region=desc)
        return t.result()
    t.step("region", input=pa, output=its.name, region=desc,
           detail=f"GITS_TRANSLATER of {its.name} (DeviceID {device_id:#x} with the write)")
    saved = [set(p) for p in its.gic.pending] if dry else None
    try:
        tr = sysm.dma_write(pa, (data & 0xFFFF_FFFF).to_bytes(4, "little"), device_id)
    except MemFault as e:
        t.step("its", False, str(e), "the write must come through the IORT with a DeviceID")
        return t.result()
    finally:
        if saved is not None:
            its.gic.pending[:] = saved
    steps = [{"what": s.what, "index": s.index, "address": s.address, "raw": s.raw,
              "fields": dict(s.fields), "outcome": s.outcome, "ok": s.ok} for s in tr.steps]
    if not tr.ok:
        fix = ITS_FIXES.get(tr.error, "").format(dev=device_id, ev=tr.event_id)
        t.step("its", False, f"{tr.error}: {tr.reason}", fix, input=device_id,
               event_id=tr.event_id, error_code=tr.error_code, its_steps=steps)
        return t.result()
    cpu = _target_frame(sysm, tr.target)
    t.out.update(intid=tr.intid, icid=tr.icid, target=tr.target, cpu=cpu)
    where = (f" (GICR frame {cpu['frame']} at {cpu['rd_base']:#x}, CPU affinity "
             f"{cpu['affinity']})" if cpu else "")
    t.step("its", input=device_id, event_id=tr.event_id, output=tr.intid, its_steps=steps,
           detail=f"DeviceID {device_id:#x} EventID {tr.event_id:#x} -> LPI {tr.intid} "
                  f"(collection {tr.icid}) on redistributor {tr.target}{where}"
                  + (" (dry: pending state put back)" if dry else ""))
    return t.result()


def _target_frame(sysm, processor: int) -> dict | None:
    """The redistributor frame whose GICR_TYPER.Processor_Number is `processor` (RDbase with
    GITS_TYPER.PTA = 0), when the system knows its frames (an imported GIC)."""
    for r in getattr(sysm.platform, "redistributors", None) or []:
        if r["processor"] == processor:
            return {k: r[k] for k in ("frame", "rd_base", "processor", "affinity")}
    return None
