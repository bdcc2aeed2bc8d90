"""Commands over the VMs' vSMMUs (model/vsmmu.py): the guest side next to the host side, guest
commands trapped and forwarded through iommufd, the vEVENTQ, raw HWPT_INVALIDATE, and the
injects of the nested system (a lost forwarded invalidation, a guest STE the host refuses, an
ITS DISCARD, a MOVI to an unmapped collection)."""
from __future__ import annotations

from .. import results as res
from ..arch.fieldtable import FieldError, fmt
from ..arch.smmuv3.events import decode_cmd, encode_cmd
from ..arch.smmuv3.fields_queue import OPCODES
from ..errors import ModelError
from ..model import msi as msipath
from ..model.vsmmu import config_name
from .change import apply_fields
from .inject import command_fields
from .registry import (Arg, Assignments, Choice, CommandError, Flag, Int, NameT, Text,
                       command, shown)

STE = fmt("STE")


def _vsmmu_arg(name="vsmmu", help="a vSMMU by name"):
    return Arg(name, NameT("vsmmus", "vSMMU", "VSMMU"), help)


def _viommu_names(ctx, args):
    vmm = ctx.system.iommufd
    return [n for n, o in vmm.objects.items() if type(o).__name__ == "Viommu"] if vmm else []


def _pci_names(ctx, args):
    p = ctx.system.pci
    return list(p.devices) if p else []


def _cmd_format(ctx, tokens):
    name = tokens[1].upper() if len(tokens) > 1 else ""
    try:
        return fmt(name if name.startswith("CMD_") else "CMD_" + name)
    except FieldError:
        return fmt("CMD_SYNC")


def _command(cmdname, name, assign) -> tuple[str, bytes]:
    key = name.upper() if name.upper().startswith("CMD_") else "CMD_" + name.upper()
    if key not in OPCODES:
        raise CommandError(f"{cmdname}: unknown command {shown(name)}; known: "
                           f"{', '.join(n[4:] for n in OPCODES)}")
    try:
        fields = command_fields(cmdname, key, assign)
        return key, encode_cmd(key, **{k: int(v) for k, v in fields.items()})
    except FieldError as e:
        raise CommandError(f"{cmdname}: {e}") from None


# -- vsmmu ----------------------------------------------------------------------------------------
@command("vsmmu", Text("name", "a VM (its vSMMUs) or a vSMMU", optional=True, metavar="VM|VSMMU",
                       complete=lambda c, a: list(c.system.vsmmus) + list(c.system.vms)),
         pure=True)
def vsmmu(ctx, name=None):
    """A VM's vSMMUs: each device's guest side next to its host side.

    vsmmu [VM|VSMMU]

    devices   per vSID: the guest STE and CD (read from guest RAM through the VM's IPA
              space), the host STE the kernel wrote in the physical stream table, the nested
              HWPT, the vIOMMU (VMID) and the vDEVICE (vSID -> pSID); in_sync says whether the
              host STE is what the current guest STE makes (a guest STE written without
              CMD_CFGI_STE, or refused by the host, is not)
    queues    the guest command and event queues (PROD, CONS, a stopped queue's CERROR)
    lost      guest invalidations the VMM did not forward (inject vtlbi-lost)
    topology  the accelerated-mode rules over the guest PCI topology: vfio-pci endpoints in
              the system address space (the shared S2), bridges and root ports in the IOMMU
              one, emulated endpoints refused (cold-plugged) or warned about (hot-plugged)

    Guest commands: vcmd; guest STE writes: vste; events: vevents."""
    sysm = ctx.system
    if not sysm.vsmmus:
        raise CommandError("vsmmu: this system has no vSMMU (add a [[vsmmu]] table)")
    if name is None:
        chosen = list(sysm.vsmmus.values())
    elif name in sysm.vsmmus:
        chosen = [sysm.vsmmus[name]]
    elif name in sysm.vms:
        chosen = [v for v in sysm.vsmmus.values() if v.vm.name == name]
        if not chosen:
            raise CommandError(f"vsmmu: VM {name!r} has no vSMMU")
    else:
        raise CommandError(f"vsmmu: no VM or vSMMU named {shown(name)}; have: "
                           f"{', '.join(list(sysm.vms) + list(sysm.vsmmus))}")
    return res.Vsmmu(vsmmus=[v.view() for v in chosen])


# -- vcmd / vste -----------------------------------------------------------------------------------
@command("vcmd", _vsmmu_arg(),
         Text("name", "a command (CMD_CFGI_STE, TLBI_NH_ASID, CMD_SYNC, ...), or resume",
              metavar="CMD", complete=lambda c, a: list(OPCODES) + ["resume"]),
         assignments=Assignments("FIELD=VALUE", _cmd_format, required=False))
def vcmd(ctx, vsmmu, name, assign):
    """The guest puts a command into its vSMMU's command queue (in guest RAM) and writes
    CMDQ_PROD; the VMM traps the write and consumes it, step by step.

    vcmd vsmmu0 CMD_CFGI_STE StreamID=0x100 Leaf=1    the VMM reads the guest STE, allocates
                                      a nested HWPT (or picks abort/bypass), attaches: the
                                      kernel writes the host STE
    vcmd vsmmu0 CMD_TLBI_NH_VA ASID=1 Addr=0x10000000  forwarded with IOMMU_HWPT_INVALIDATE:
                                      the kernel sets the VMID (and vSID -> pSID for CFGI_CD)
    vcmd vsmmu0 CMD_TLBI_NH_ASID ASID=1   no StreamID: sent to every vIOMMU of the vSMMU
    vcmd vsmmu0 resume                the guest skips the command its queue stopped on

    A refused ioctl stops the guest queue with CERROR_ILL (GERROR.CMDQ_ERR), as QEMU does."""
    vs = ctx.system.vsmmu(vsmmu)
    try:
        if name.lower() == "resume":
            if assign:
                raise CommandError("vcmd: resume takes no FIELD=VALUE")
            key, log = "resume", vs.resume()
        else:
            key, raw = _command("vcmd", name, assign)
            log = vs.submit([raw])
    except ModelError as e:
        raise CommandError(f"vcmd: {e}") from None
    q = vs.cmdq
    return res.Vcmd(vsmmu=vsmmu, command=key, log=log,
                    cmdq={"prod": q.prod, "cons": q.cons, "error": q.error},
                    gerror=list(vs.gerror))


@command("vste", _vsmmu_arg(), Int("vsid", "the guest StreamID", hi=(1 << 32) - 1),
         assignments=Assignments("FIELD=VALUE", lambda c, t: STE))
def vste(ctx, vsmmu, vsid, assign):
    """The guest driver writes fields of its STE for VSID in guest RAM (V=1 Config=bypass,
    Config=s1_trans, EATS=2, ...), dword 0 last. Nothing is forwarded until the guest issues
    CMD_CFGI_STE (`vcmd VSMMU CMD_CFGI_STE StreamID=VSID`): `vsmmu` shows the host STE out of
    sync until then."""
    vs = ctx.system.vsmmu(vsmmu)
    try:
        ipa = vs.ste_ipa(vsid)
        old = vs.guest_ste(vsid)
        new, changes = apply_fields("vste", STE, old, assign)
        pa = vs._pa(ipa)
        vs.write_words(ipa, new)
    except ModelError as e:
        raise CommandError(f"vste: {e}") from None
    return res.Vste(vsmmu=vsmmu, vsid=vsid, ipa=ipa, pa=pa, old=old, new=new,
                    changes=changes, config=config_name(new))


@command("vevents", _vsmmu_arg(),
         Flag("consume", "then the guest driver reads them (EVENTQ_CONS = PROD)"))
def vevents(ctx, vsmmu, consume=False):
    """Host events to the guest: the host driver reads each physical SMMU's event queue and
    hands the events of nested devices to the vIOMMU's vEVENTQ (StreamID -> vSID, sequence
    numbers, a lost-events header when the vEVENTQ was full); the VMM reads the vEVENTQ and
    writes each event into the guest's event queue in guest RAM (a full guest queue loses the
    record and sets its overflow flag). `guest` lists the guest queue's unread records; with
    consume the guest driver then reads them."""
    vs = ctx.system.vsmmu(vsmmu)
    try:
        r = vs.deliver_events()
        guest = vs.guest_events()
    except ModelError as e:
        raise CommandError(f"vevents: {e}") from None
    overflow = vs.evtq.overflow
    if consume:
        vs.guest_consume()
    return res.Vevents(vsmmu=vsmmu, host=r["host"], vevents=r["vevents"], guest=guest,
                       overflow=overflow)


@command("hwpt-invalidate", Text("viommu", "an iommufd vIOMMU by its scenario name",
                                 metavar="VIOMMU", complete=_viommu_names),
         Text("name", "a command (CMD_TLBI_NH_VA, CMD_CFGI_CD, ...)", metavar="CMD",
              complete=lambda c, a: list(OPCODES)),
         assignments=Assignments("FIELD=VALUE", _cmd_format, required=False))
def hwpt_invalidate(ctx, viommu, name, assign):
    """IOMMU_HWPT_INVALIDATE of one raw command on a vIOMMU, as a VMM issues it: accepted
    opcodes get the vIOMMU's VMID (and vSID -> pSID), the rest -EIO; the converted command and
    a CMD_SYNC go to the physical command queue."""
    vmm = ctx.system.iommufd
    obj = vmm.objects.get(viommu) if vmm else None
    if obj is None or type(obj).__name__ != "Viommu":
        raise CommandError(f"hwpt-invalidate: no vIOMMU named {shown(viommu)}; have: "
                           f"{', '.join(_viommu_names(ctx, {})) or 'none'}")
    key, raw = _command("hwpt-invalidate", name, assign)
    try:
        r = vmm.fd.hwpt_invalidate(obj.id, [raw])
    except ModelError as e:
        raise CommandError(f"hwpt-invalidate: {e}") from None
    host = obj.convert(raw)
    hn, hf = decode_cmd(host) if host else (None, None)
    return res.HwptInvalidate(viommu=viommu, command=key, handled=r.handled,
                              errno=-r.errno if r.errno else 0, error=r.error,
                              host_command=hn,
                              host_fields={k: v for k, v in hf.items() if k != "Opcode"}
                              if hf else None, sent=list(r.sent))


# -- injects --------------------------------------------------------------------------------------
@command("inject vtlbi-lost", _vsmmu_arg(),
         Int("n", "how many forwarded invalidations to lose (default 1)", optional=True,
             default=1, lo=0, hi=1 << 16))
def inject_vtlbi_lost(ctx, vsmmu, n=1):
    """The VMM loses the next N invalidations it should forward (guest CMD_TLBI_*, CMD_CFGI_CD):
    the guest's command completes, nothing reaches the physical SMMU, and the host IOTLB keeps
    what the guest invalidated. `check` names the lost command, the stale host entries and the
    fix."""
    vs = ctx.system.vsmmu(vsmmu)
    vs.drop_forward = n
    return res.InjectVsmmu(inject="vtlbi-lost", vsmmu=vsmmu,
                           what=f"the next {n} forwarded invalidations of {vsmmu} are lost")


@command("inject vste-reject", _vsmmu_arg(), Int("vsid", "the guest StreamID", hi=(1 << 32) - 1),
         Choice("how", ("eats", "config"), "eats: EATS=0b10 (split-stage ATS); config: "
                "Config=0b111 (nested), which a stage-1 vSMMU cannot take", default="eats"))
def inject_vste_reject(ctx, vsmmu, vsid, how="eats"):
    """The guest writes an STE the host kernel refuses (arm_smmu_validate_vste: -EIO) and issues
    CMD_CFGI_STE: IOMMU_HWPT_ALLOC fails, the device keeps its previous HWPT, and the guest
    queue stops with CERROR_ILL. `vsmmu` shows the device out of sync and `check` names it."""
    vs = ctx.system.vsmmu(vsmmu)
    if vsid not in vs.vsids:
        raise CommandError(f"inject vste-reject: vSID {vsid:#x} has no vfio-pci device on "
                           f"{vsmmu}; have: {', '.join(hex(x) for x in sorted(vs.vsids))}")
    try:
        old = vs.guest_ste(vsid)
        new = list(old)
        if config_name(old) not in ("s1_trans", "nested"):
            raise CommandError(f"inject vste-reject: the guest STE of vSID {vsid:#x} is "
                               f"{config_name(old)}; give it a stage-1 configuration first")
        if how == "eats":
            STE.field("EATS").put(new, 2)
            what = "EATS=0b10 (split-stage ATS)"
        else:
            STE.field("Config").put(new, 0b111)
            what = "Config=0b111 (stage 1 and stage 2)"
        vs.write_words(vs.ste_ipa(vsid), new)
        log = vs.submit([encode_cmd("CMD_CFGI_STE", StreamID=vsid, Leaf=1)])
    except ModelError as e:
        raise CommandError(f"inject vste-reject: {e}") from None
    return res.InjectVsmmu(inject="vste-reject", vsmmu=vsmmu, log=log,
                           what=f"guest STE of vSID {vsid:#x} given {what}, then CMD_CFGI_STE")


def _its_target(cmdname, ctx, device, vector):
    """(ITS, DeviceID, EventID) of a device's MSI vector, through its MSI path."""
    try:
        r = msipath.from_device(ctx.system, device, vector, dry=True)
    except ModelError as e:
        raise CommandError(f"{cmdname}: {e}") from None
    if r["device_id"] is None or r["its"] is None:
        raise CommandError(f"{cmdname}: the MSI of {device} vector {vector} reaches no ITS "
                           f"({r['failed']}: {r['reason']})")
    return ctx.system.its[r["its"]], r["device_id"], r["msi_data"]


def _its_result(inject, device, vector, its, name, fields, cmds):
    c = cmds[-1] if cmds else None
    return res.InjectIts(inject=inject, device=device, vector=vector, its=its.name,
                         command=name, fields=fields, ok=bool(c and c.ok),
                         error=c.error if c else "not processed",
                         reason=c.reason if c else "the ITS did not process the command")


@command("inject its-discard", Text("device", "a pci device with MSI", metavar="DEVICE",
                                    complete=_pci_names),
         Int("vector", "the MSI vector (default 0)", keyword=True, default=0))
def inject_its_discard(ctx, device, vector=0):
    """DISCARD the event of a device's MSI vector at its ITS (DeviceID from the IORT, EventID =
    the MSI data): the ITE becomes invalid, so `msi DEVICE VECTOR` breaks at the ITS step
    (UNMAPPED_INTERRUPT) and names the MAPTI that maps it back."""
    its, dev, ev = _its_target("inject its-discard", ctx, device, vector)
    fields = {"DeviceID": dev, "EventID": ev}
    return _its_result("its-discard", device, vector, its, "DISCARD", fields,
                       its.submit("DISCARD", **fields))


@command("inject its-movi", Text("device", "a pci device with MSI", metavar="DEVICE",
                                 complete=_pci_names),
         Int("vector", "the MSI vector (default 0)", keyword=True, default=0),
         Int("icid", "the collection to move to (default: the lowest unmapped one)",
             keyword=True, hi=0xFFFF))
def inject_its_movi(ctx, device, vector=0, icid=None):
    """MOVI a device's MSI event to a collection that is not mapped (no MAPC): the ITS refuses
    it (MOVI_UNMAPPED_COLLECTION, IHI 0069 5.3.13) and, with the stall error model, its queue
    stalls; `its` and `check` show the failed command and the fix."""
    its, dev, ev = _its_target("inject its-movi", ctx, device, vector)
    if icid is None:
        mapped = set()
        for i in range(1 << min(its.features.cidbits, 16)):
            try:
                its.lookup_collection(i, [])
                mapped.add(i)
            except Exception:       # not valid or out of range: unmapped
                break
        icid = next(i for i in range(1 << 16) if i not in mapped)
    fields = {"DeviceID": dev, "EventID": ev, "ICID": icid}
    return _its_result("its-movi", device, vector, its, "MOVI", fields,
                       its.submit("MOVI", **fields))
