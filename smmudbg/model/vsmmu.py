"""A VM's accelerated vSMMU: the guest side of nesting, and the VMM's trap-and-forward flow
(QEMU's arm-smmuv3,accel=on over Linux iommufd; ../shared/smmu-facts.md 8.3).

The guest's stream table, CD tables, stage-1 tables and queues live in guest RAM, at IPAs. Two
readers see them, as on a real host: the VMM (QEMU, and the guest CPU) through the VM's memory
map (address_space_memory: the VM's RAM layout), for the guest STEs and queues it emulates;
and the physical SMMU through the VM's IPA space as the nesting-parent S2 gives it, a
core_cy.vmsa.AddressSpace over the S2 tables, for the CDs and stage-1 tables the host STE points
it at. `vsmmu` shows the CD as the SMMU reads it: an S2 that lacks a guest page shows there
while QEMU still reads the STE. The vSMMU is one SMMUv3 of the guest, backed by one or more
iommufd vIOMMUs (one per physical SMMU its devices sit behind; QEMU has exactly one).

The guest's commands (`submit`) are consumed by the VMM as QEMU's smmuv3_cmdq_consume does:

  CMD_CFGI_STE / _STE_RANGE / _ALL  the VMM reads the guest STE of each vSID in range that has
        a vfio-pci device and picks a HWPT (smmuv3_accel_install_nested_ste): the guest SMMU
        disabled -> GBPA (abort or bypass HWPT); V=0 or Config abort -> the abort HWPT; bypass
        -> the bypass HWPT; S1 -> IOMMU_HWPT_ALLOC of a nested HWPT from the vSTE masked to the
        bits userspace may pass (the kernel validates it: arm_smmu_validate_vste, -EIO), then
        attach (the kernel writes the host STE into the physical stream table + CFGI_STE/SYNC).
        A vSID without a vDEVICE gets one first (virt_id = the vSID).
  CMD_CFGI_CD(_ALL), CMD_TLBI_NH_*, CMD_TLBI_NSNH_ALL, CMD_ATC_INV  forwarded one at a time
        with IOMMU_HWPT_INVALIDATE on the vIOMMU (the kernel rewrites vSID -> pSID and the
        VMID). A command with a StreamID goes to the vIOMMU of that vSID's device; one without
        (CMD_TLBI_NH_ASID, NH_VA, NH_VAA, NH_ALL, NSNH_ALL) to every vIOMMU of the vSMMU, i.e.
        every physical SMMU the guest's devices use through it.
  CMD_SYNC, CMD_PREFETCH_*  completed by the VMM (the kernel syncs its own batches).
  anything else (stage-2 TLBIs on a stage-1-only vSMMU, unknown opcodes)  CERROR_ILL: the
        guest queue stops (CMDQ_CONS.ERR, GERROR.CMDQ_ERR) as the architecture says.
A failed ioctl also stops the queue with CERROR_ILL (QEMU reports the error and sets ILL).
"""
from __future__ import annotations

from core_cy.physmem import MemFault
from core_cy.vmsa import AddressSpace

from ..arch.fieldtable import fmt
from ..arch.smmuv3 import consts as C
from ..arch.smmuv3.events import CMD_SIZE, EVENT_SIZE, decode_cmd, encode_cmd
from ..arch.smmuv3.fields_queue import CERROR
from ..errors import ModelError
from .cmdq import Ring
from .iommufd import IOMMU_HWPT_DATA_ARM_SMMUV3, HwptNested
from .iommufd.errors import IommufdError
from .iommufd.hwpt import NESTING_ALLOWED_0, NESTING_ALLOWED_1

STE = fmt("STE")
CD = fmt("CD")
_F = STE.field
STE_BYTES = STE.size
CMD_BYTES = CMD_SIZE
EVT_BYTES = EVENT_SIZE
# STE.Config values that translate (0b1xx: bypass or a stage) and that have a stage 1.
_TRANSLATING = (C.STE_Config_bypass, C.STE_Config_s1_trans, C.STE_Config_s2_trans,
                C.STE_Config_nested)
_STAGE1 = (C.STE_Config_s1_trans, C.STE_Config_nested)
# The guest commands the VMM forwards through IOMMU_HWPT_INVALIDATE; those with a StreamID
# go to the vIOMMU of that vSID, the others to every vIOMMU of the vSMMU.
FORWARD_SID = ("CMD_CFGI_CD", "CMD_CFGI_CD_ALL", "CMD_ATC_INV")
FORWARD_ALL = ("CMD_TLBI_NH_ASID", "CMD_TLBI_NH_VA", "CMD_TLBI_NH_VAA", "CMD_TLBI_NH_ALL",
               "CMD_TLBI_NSNH_ALL")
INSTALL = ("CMD_CFGI_STE", "CMD_CFGI_STE_RANGE", "CMD_CFGI_ALL")
LOCAL = ("CMD_SYNC", "CMD_PREFETCH_CONFIG", "CMD_PREFETCH_ADDR")
CONFIGS = {"abort": C.STE_Config_abort, "bypass": C.STE_Config_bypass,
           "s1": C.STE_Config_s1_trans}


def config_name(words) -> str:
    """How the VMM reads a guest STE: invalid, abort, bypass, s1_trans, s2_trans, nested."""
    if not _F("V").get(words):
        return "invalid"
    cfg = _F("Config").get(words)
    return _F("Config").value_name(cfg) or f"{cfg:#05b}"


class GuestQueue:
    """A queue in guest RAM: base IPA, 2^log2size entries, PROD and CONS with wrap bits."""

    def __init__(self, base: int, log2size: int, entry: int):
        self.base = base
        self.ring = Ring(log2size)
        self.entry = entry
        self.prod = 0
        self.cons = 0
        self.error: str | None = None        # CMDQ_CONS.ERR name while the queue is stopped
        self.overflow = False                # EVENTQ_PROD.OVFLG toggled, not yet acknowledged

    def slot(self, ptr: int) -> int:
        return self.base + self.ring.idx(ptr) * self.entry


class VSmmu:
    """One vSMMU of a VM (see the module doc). `spec` is a checked [[vsmmu]] entry."""

    def __init__(self, system, vmm, spec: dict):
        self.system = system
        self.vmm = vmm
        self.fd = vmm.fd
        self.name = spec["name"]
        self.vm = system.vms[spec["vm"]]
        self.spec = spec
        self.viommus = [vmm.objects[n] for n in spec["viommu"]]
        parent = self.viommus[0].parent
        for v in self.viommus[1:]:
            if v.parent is not parent:
                raise ModelError(f"vIOMMUs {spec['viommu'][0]} and {vmm.name_of(v.id)} are on "
                                 f"different S2 parents: the guest RAM of one VM is one S2 "
                                 f"(share the NEST_PARENT HWPT, vmid_per_viommu)")
        self.parent = parent
        t = parent.tables
        self.space = AddressSpace(system.mem, s2ttb=t.root, s2t0sz=t.tsz, s2sl0=t.sl0,
                                  s2tg=t.tg, s2ps=parent.smmu.features.get("OAS", 5),
                                  oas_bits=48)
        st = spec["stream_table"]
        self.strtab_base = st["base"]
        self.strtab_log2size = st["log2size"]
        self.cmdq = GuestQueue(spec["cmdq"]["base"], spec["cmdq"]["log2size"], CMD_BYTES)
        self.evtq = GuestQueue(spec["evtq"]["base"], spec["evtq"]["log2size"], EVT_BYTES)
        self.enabled = spec["enabled"]              # guest CR0.SMMUEN
        self.gbpa_abort = spec["gbpa"] == "abort"    # guest GBPA.ABORT
        self.gerror: list[str] = []
        self.drop_forward = 0                       # `inject vtlbi-lost`: VMM bug
        self.lost: list[dict] = []                  # guest commands the VMM did not forward
        self.installed: dict[int, dict] = {}        # vSID -> last install {hwpt, config, ...}
        self._zero(self.strtab_base, STE_BYTES << self.strtab_log2size)
        self._zero(self.cmdq.base, CMD_BYTES << self.cmdq.ring.log2size)
        self._zero(self.evtq.base, EVT_BYTES << self.evtq.ring.log2size)
        # QEMU pre-allocates an abort and a bypass nested HWPT on each vIOMMU
        # (ste0 = V, and V | Config=bypass), and a vEVENTQ as deep as the guest's event queue.
        self.proxies: dict[int, dict[str, HwptNested]] = {}
        for v in self.viommus:
            dev = self._any_device(v)
            vname = vmm.name_of(v.id)
            tag = "" if len(self.viommus) == 1 else f"@{vname}"
            p = {}
            for what in ("abort", "bypass"):
                w = STE.encode(V=1, Config=CONFIGS[what])
                p[what] = self.fd.hwpt_alloc(dev.id, v.id, 0, IOMMU_HWPT_DATA_ARM_SMMUV3,
                                             (w[0], w[1]))
                vmm.objects[f"{self.name}-{what}{tag}"] = p[what]
            self.proxies[v.id] = p
            if v.veventq is None:
                q = self.fd.veventq_alloc(v.id, 1 << self.evtq.ring.log2size)
                vmm.objects[f"{self.name}-veventq{tag}"] = q
        self.vsids: dict[int, object] = {}      # vSID -> iommufd Device (the vfio-pci device)
        for v in self.viommus:
            for vsid, vd in v.vdevs.items():
                self.vsids[vsid] = vd.device

    # -- guest memory (through the VM's IPA space) ---------------------------------------------
    def _pa(self, ipa: int) -> int:
        """The host PA of guest RAM at ipa, as the VMM maps it (the VM's RAM layout)."""
        try:
            return self.vm.ipa_to_pa(ipa)
        except ModelError:
            raise ModelError(f"{self.name}: IPA {ipa:#x} is not RAM of {self.vm.name}") \
                from None

    def _zero(self, ipa: int, size: int) -> None:
        for off in range(0, size, 0x1000):
            n = min(0x1000, size - off)
            self.system.mem.write(self._pa(ipa + off), bytes(n))

    def read_words(self, ipa: int, n: int) -> list[int]:
        """What the VMM reads from guest RAM (n words at an 8-byte aligned IPA)."""
        return self.system.mem.read_words(self._pa(ipa), n)

    def read(self, ipa: int, n: int) -> bytes:
        return self.system.mem.read(self._pa(ipa), n)

    def smmu_read_words(self, ipa: int, n: int) -> list[int]:
        """What the physical SMMU reads at ipa: through the nesting-parent S2 (MemFault when
        the S2 does not map it)."""
        raw = self.space.read(ipa, 8 * n)
        return [int.from_bytes(raw[i:i + 8], "little") for i in range(0, 8 * n, 8)]

    def write_words(self, ipa: int, words) -> None:
        """A guest CPU store of 64-bit words at ipa (dword 0 last, as a driver making V=1)."""
        for i in reversed(range(len(words))):
            self.system.mem.write_words(self._pa(ipa + 8 * i), [words[i]])

    def ste_ipa(self, vsid: int) -> int:
        if vsid >> self.strtab_log2size:
            raise ModelError(f"{self.name}: vSID {vsid:#x} is beyond the guest stream table "
                             f"(2^{self.strtab_log2size} STEs)")
        return self.strtab_base + STE_BYTES * vsid

    def guest_ste(self, vsid: int) -> list[int]:
        return self.read_words(self.ste_ipa(vsid), 8)

    def guest_cd(self, words) -> tuple[int | None, list[int] | None, str | None]:
        """(IPA, words, problem) of CD 0 the guest STE points at (a linear table, SSID 0, as
        the guest driver builds for a device without PASIDs)."""
        if config_name(words) not in ("s1_trans", "nested"):
            return None, None, None
        ipa = _F("S1ContextPtr").address(words)
        if _F("S1Fmt").get(words) != C.STE_S1Fmt_linear and _F("S1CDMax").get(words):
            return ipa, None, "a 2-level CD table: SSID 0's CD is read through its L1CD"
        try:
            return ipa, self.smmu_read_words(ipa, 8), None
        except (MemFault, ValueError) as e:
            return ipa, None, f"the SMMU cannot fetch the CD through the S2: {e}"

    # -- the guest driver ----------------------------------------------------------------------
    def write_guest_ste(self, vsid: int, config: str, domain: str | None = None,
                        extra: dict | None = None) -> list[int]:
        """The guest driver's STE for vsid: abort, bypass, or s1 through a one-CD linear table
        in guest RAM for `domain` (as arm_smmu_make_cdtable_ste in the guest)."""
        fields = {"V": 1, "Config": CONFIGS[config]}
        if config == "s1":
            dev = self.vsids.get(vsid)
            smmu = dev.smmu if dev is not None else self.parent.smmu
            spec = {"config": "nested", "cds": [{"ssid": 0, "domain": domain}],
                    "cd_table": {"format": "linear", "s1cdmax": 0}}
            ctx = self.system._build_cd_table(smmu, spec, vsid)
            fields.update(S1ContextPtr=_F("S1ContextPtr").from_address(ctx),
                          S1Fmt=C.STE_S1Fmt_linear, S1CDMax=0,
                          S1DSS=C.STE_S1DSS_substream0, S1CIR=C.STE_S1CIR_WBRA,
                          S1COR=C.STE_S1COR_WBRA, S1CSH=C.STE_S1CSH_ISH)
        fields.update(extra or {})
        words = STE.encode(**fields)
        self.write_words(self.ste_ipa(vsid), words)
        return words

    def submit(self, cmds) -> list[dict]:
        """The guest writes commands at its CMDQ_PROD and writes PROD (the trapped MMIO write):
        the VMM consumes them. Returns one record per command consumed (see consume)."""
        q = self.cmdq
        for c in cmds:
            raw = c if isinstance(c, (bytes, bytearray)) else encode_cmd(c[0], **c[1])
            if q.ring.full(q.prod, q.cons):
                raise ModelError(f"{self.name}: the guest command queue is full"
                                 + (f" (stopped on {q.error})" if q.error else ""))
            self.system.mem.write(self._pa(q.slot(q.prod)), bytes(raw))
            q.prod = q.ring.inc(q.prod)
        return self.consume()

    # -- the VMM -------------------------------------------------------------------------------
    def consume(self) -> list[dict]:
        """smmuv3_cmdq_consume in accel mode: each command from CONS to PROD; each record is
        {index, ipa, command, fields, outcome, error, steps: [{what, ...}]}."""
        q = self.cmdq
        out = []
        while not q.error and not q.ring.empty(q.prod, q.cons):
            ipa = q.slot(q.cons)
            try:
                raw = self.read(ipa, CMD_BYTES)
            except (ModelError, MemFault) as e:        # the fetch aborts: CERROR_ABT
                rec = {"index": q.ring.idx(q.cons), "ipa": ipa, "command": "?", "fields": {},
                       "raw": "", "outcome": "error", "error": "CERROR_ABT",
                       "steps": [{"what": "guest", "ok": False,
                                  "detail": f"CERROR_ABT: the command at IPA {ipa:#x} cannot "
                                            f"be read: {e}"}]}
                q.error = "CERROR_ABT"
                if "CMDQ_ERR" not in self.gerror:
                    self.gerror.append("CMDQ_ERR")
                out.append(rec)
                break
            name, fields = decode_cmd(raw)
            rec = {"index": q.ring.idx(q.cons), "ipa": ipa, "command": name,
                   "fields": {k: v for k, v in fields.items() if k != "Opcode"},
                   "raw": raw.hex(), "steps": [], "outcome": "done", "error": None}
            try:
                try:
                    self._dispatch(name, fields, raw, rec)
                except ModelError as e:        # any other refused ioctl: QEMU sets ILL
                    raise _Stop("CERROR_ILL", str(e)) from None
            except _Stop as s:
                rec.update(outcome="error", error=s.cerror)
                rec["steps"].append({"what": "guest", "detail": f"{s.cerror}: {s.why}",
                                     "ok": False})
                q.error = s.cerror
                if "CMDQ_ERR" not in self.gerror:
                    self.gerror.append("CMDQ_ERR")
            out.append(rec)
            if q.error:
                break
            q.cons = q.ring.inc(q.cons)
        return out

    def resume(self) -> list[dict]:
        """The guest acknowledges the error (GERRORN) and skips the failed command, as Linux's
        arm_smmu_cmdq_skip_err does (it replaces it with a CMD_SYNC); consumption goes on."""
        q = self.cmdq
        if q.error:
            q.error = None
            if "CMDQ_ERR" in self.gerror:
                self.gerror.remove("CMDQ_ERR")
            q.cons = q.ring.inc(q.cons)
        return self.consume()

    def _dispatch(self, name, fields, raw, rec):
        steps = rec["steps"]
        if name in LOCAL:
            steps.append({"what": "vmm", "ok": True,
                          "detail": f"{name}: completed by the VMM (the kernel ends each "
                                    f"forwarded batch with its own CMD_SYNC)"})
            return
        if name in INSTALL:
            lo, hi = self._sid_range(name, fields)
            vsids = sorted(s for s in self.vsids if lo <= s <= hi)
            if not vsids:
                steps.append({"what": "vmm", "ok": True,
                              "detail": f"no vfio-pci device at vSID {lo:#x}..{hi:#x}: only "
                                        f"the vSMMU's own configuration cache is invalidated"})
            for vsid in vsids:
                self.install(vsid, steps)
            return
        if name in FORWARD_SID or name in FORWARD_ALL:
            self._forward(name, fields, raw, steps)
            return
        why = (f"{name} is a stage-2 or EL2 invalidation: this vSMMU has stage 1 only "
               f"(IDR0.S2P=0)" if name.startswith("CMD_TLBI") else f"{name} is not a command "
               f"the accelerated vSMMU takes")
        raise _Stop("CERROR_ILL", why)

    def _sid_range(self, name, fields):
        sid = fields.get("StreamID", 0)
        if name == "CMD_CFGI_ALL":
            return 0, (1 << 32) - 1
        if name == "CMD_CFGI_STE_RANGE":
            n = fields.get("Range", 0) + 1
            base = sid & ~((1 << n) - 1)
            return base, base + (1 << n) - 1
        return sid, sid

    def install(self, vsid: int, steps: list) -> None:
        """smmuv3_accel_install_nested_ste for one vSID (see the module doc)."""
        dev = self.vsids[vsid]
        v = self._viommu_of(dev)
        if dev.vdev is None:
            vd = self.fd.vdevice_alloc(v.id, dev.id, vsid)
            steps.append({"what": "IOMMU_VDEVICE_ALLOC", "ok": True, "object": vd.id,
                          "detail": f"vDEVICE {vd.id}: vSID {vsid:#x} -> {dev.name} "
                                    f"(pSID {dev.sid:#x} on {dev.smmu.name})"})
        ipa = self.ste_ipa(vsid)
        try:
            words = self.guest_ste(vsid)
        except (MemFault, ValueError) as e:
            raise _Stop("CERROR_ABT", f"the VMM cannot read the guest STE of vSID {vsid:#x} "
                                      f"at IPA {ipa:#x}: {e}") from None
        cfg = config_name(words)
        steps.append({"what": "guest STE", "ok": True, "vsid": vsid, "ipa": ipa,
                      "words": words[:2], "config": cfg,
                      "detail": f"vSID {vsid:#x} at IPA {ipa:#x}: {cfg}"})
        proxies = self.proxies[v.id]
        nested = None
        if not self.enabled:
            hw, why = ((proxies["abort"], "the guest SMMU is disabled, GBPA.ABORT=1")
                       if self.gbpa_abort else
                       (proxies["bypass"], "the guest SMMU is disabled, GBPA.ABORT=0"))
        elif cfg in ("invalid", "abort") or _F("Config").get(words) not in _TRANSLATING:
            hw, why = proxies["abort"], f"guest STE {cfg}: the abort HWPT"
        elif cfg == "bypass":
            hw, why = proxies["bypass"], "guest STE bypass: the bypass HWPT (S2 only)"
        elif _F("Config").get(words) in _STAGE1:
            ste0, ste1 = words[0] & NESTING_ALLOWED_0, words[1] & NESTING_ALLOWED_1
            try:
                nested = self.fd.hwpt_alloc(dev.id, v.id, 0, IOMMU_HWPT_DATA_ARM_SMMUV3,
                                            (ste0, ste1))
            except IommufdError as e:
                steps.append({"what": "IOMMU_HWPT_ALLOC", "ok": False, "errno": -e.errno,
                              "errname": e.errname, "vste": [ste0, ste1],
                              "detail": str(e)})
                self.installed[vsid] = {"hwpt": None, "error": str(e), "errno": -e.errno}
                raise _Stop("CERROR_ILL", f"the host refused the guest STE of vSID "
                                          f"{vsid:#x}: -{e.errname}; {dev.name} keeps its "
                                          f"previous HWPT") from None
            name = f"{self.name}-vsid{vsid:#x}"
            self.vmm.objects[name] = nested
            steps.append({"what": "IOMMU_HWPT_ALLOC", "ok": True, "object": nested.id,
                          "vste": [ste0, ste1],
                          "detail": f"nested HWPT {nested.id} ({name}) on vIOMMU {v.id} from "
                                    f"vSTE {ste0:#x} {ste1:#x} (masked to "
                                    f"STRTAB_STE_0/1_NESTING_ALLOWED)"})
            hw, why = nested, "guest STE s1_trans: a nested HWPT"
        else:
            hw, why = proxies["abort"], (f"guest STE {cfg}: this vSMMU has no stage 2, the "
                                         f"VMM treats it as abort")
        old = dev.hwpt
        host = self.fd.attach(dev.id, hw.id)
        m = dev.smmu
        steps.append({"what": "ATTACH", "ok": True, "object": hw.id, "why": why,
                      "smmu": m.name, "psid": dev.sid, "ste_pa": m.ste_addr(dev.sid),
                      "host_ste": list(host),
                      "detail": f"{dev.name} -> HWPT {hw.id} ({why}); host STE of pSID "
                                f"{dev.sid:#x} written at PA {m.ste_addr(dev.sid):#x} on "
                                f"{m.name}, then CMD_CFGI_STE + CMD_SYNC"})
        if isinstance(old, HwptNested) and old is not hw and not old.devices and \
                old not in proxies.values():
            self.fd.objects.pop(old.id, None)          # QEMU frees the old S1 HWPT
            for k in [k for k, o in self.vmm.objects.items() if o is old]:
                del self.vmm.objects[k]
            steps.append({"what": "IOMMU_DESTROY", "ok": True, "object": old.id,
                          "detail": f"the previous nested HWPT {old.id} is freed"})
        self.installed[vsid] = {"hwpt": hw.id, "error": None, "errno": 0}
        self._note_stream(dev, hw)
        if dev.name in self.vmm.pending_msi:
            self.vmm.msi_after_attach(dev.name)
            steps.append({"what": "sw_msi", "ok": True,
                          "detail": f"iommufd_sw_msi: the ITS page mapped into the S2 at "
                                    f"{dev.sw_msi_start:#x} for {dev.name}"})

    def _note_stream(self, dev, hw):
        """The device is a named stream of the physical SMMU (walk, ste, msi reach it)."""
        key = (dev.smmu.name, dev.sid)
        st = self.system.streams.get(key)
        if st is None:
            st = self.system.add_stream(dev.smmu.name, dev.sid, "nested", name=dev.name)
        st.spec["s2"] = self.vmm.name_of(self.parent.id)
        # the guest domain its CD points at, when the scenario named it (cd, pt, set cd)
        dom = next((x["domain"] for x in self.spec["streams"] if x["device"] == dev.name
                    and x["domain"]), None)
        st.spec["cds"] = [{"ssid": 0, "domain": dom}] if dom and isinstance(hw, HwptNested) \
            else []

    def _viommu_of(self, dev):
        for v in self.viommus:
            if v.smmu is dev.smmu:
                return v
        raise ModelError(f"{self.name}: {dev.name} is behind {dev.smmu.name}, which none of "
                         f"the vSMMU's vIOMMUs is on")

    def _any_device(self, v):
        dev = next((d for d in self.fd.objects.values() if type(d).__name__ == "Device"
                    and d.smmu is v.smmu), None)
        if dev is None:
            raise ModelError(f"{self.name}: no bound device on {v.smmu.name}")
        return dev

    def _forward(self, name, fields, raw, steps):
        if name in FORWARD_SID:
            vsid = fields.get("StreamID", 0)
            dev = self.vsids.get(vsid)
            if dev is None or dev.vdev is None:
                steps.append({"what": "vmm", "ok": True,
                              "detail": f"vSID {vsid:#x} has no vDEVICE: not forwarded "
                                        f"(only the vSMMU's own state is invalidated)"})
                return
            targets = [self._viommu_of(dev)]
        else:
            targets = list(self.viommus)
        for v in targets:
            vname = self.vmm.name_of(v.id)
            if self.drop_forward:
                self.drop_forward -= 1
                self.lost.append({"command": name, "fields": {k: x for k, x in fields.items()
                                                               if k != "Opcode"},
                                  "viommu": vname, "smmu": v.smmu.name, "vmid": v.vmid})
                steps.append({"what": "IOMMU_HWPT_INVALIDATE", "ok": False, "lost": True,
                              "viommu": v.id, "smmu": v.smmu.name,
                              "detail": f"LOST: the VMM did not forward {name} to vIOMMU "
                                        f"{v.id} ({v.smmu.name}): its IOTLB may keep stale "
                                        f"translations"})
                continue
            r = self.fd.hwpt_invalidate(v.id, [raw])
            if not r.errno:          # a later forwarded invalidation may do what a lost one would
                self.lost = [x for x in self.lost if x["viommu"] != vname
                             or not covers(name, fields, x)]
            host = v.convert(raw)
            detail = (f"vIOMMU {v.id} ({vname}) on {v.smmu.name}: entry_num {r.handled}; "
                      + (f"-EIO: {r.error}" if r.errno else
                         f"sent {', '.join(r.sent)}"))
            steps.append({"what": "IOMMU_HWPT_INVALIDATE", "ok": not r.errno, "viommu": v.id,
                          "smmu": v.smmu.name, "handled": r.handled,
                          "errno": -r.errno if r.errno else 0,
                          "host_command": (decode_cmd(host)[0] if host else None),
                          "host_fields": ({k: x for k, x in decode_cmd(host)[1].items()
                                           if k != "Opcode"} if host else None),
                          "sent": list(r.sent), "detail": detail})
            if r.errno:
                raise _Stop("CERROR_ILL", f"IOMMU_HWPT_INVALIDATE refused {name}: -EIO "
                                          f"({r.error})")

    # -- events --------------------------------------------------------------------------------
    def deliver_events(self) -> dict:
        """The host's event thread on each physical SMMU (events of nested devices go to the
        vEVENTQ with the vSID), then the VMM reads the vEVENTQ and writes each event into the
        guest's event queue in guest RAM (a lost-events header is noted, nothing written)."""
        host = []
        for v in self.viommus:
            host += [dict(vars(f)) for f in self.fd.forward_events(v.smmu)]
        records = []
        q = self.evtq
        for v in self.viommus:
            if v.veventq is None:
                continue
            for r in v.veventq.read():
                rec = {"viommu": v.id, "sequence": r.sequence, "lost_events": r.lost_events,
                       "event": r.event, "vsid": r.vsid, "written": None}
                if not r.lost_events:
                    if q.ring.full(q.prod, q.cons):
                        # the guest queue is full: the record is lost and the vSMMU flags
                        # the overflow (EVENTQ_PROD.OVFLG, IHI 0070 7.4)
                        rec["written"] = None
                        q.overflow = True
                    else:
                        ipa = q.slot(q.prod)
                        self.system.mem.write(self._pa(ipa), r.raw)
                        q.prod = q.ring.inc(q.prod)
                        rec["written"] = ipa
                records.append(rec)
        return {"host": host, "vevents": records}

    def guest_consume(self) -> int:
        """The guest driver reads every record (EVENTQ_CONS = PROD) and acknowledges an
        overflow; returns how many it read."""
        q = self.evtq
        n = q.ring.count(q.prod, q.cons)
        q.cons = q.prod
        q.overflow = False
        return n

    def guest_events(self) -> list[dict]:
        """Unread records of the guest's event queue (CONS..PROD), read from guest RAM."""
        from ..arch.smmuv3.events import decode_event, event_name
        q = self.evtq
        out = []
        p = q.cons
        while not q.ring.empty(q.prod, p):
            raw = self.read(q.slot(p), EVT_BYTES)
            f = decode_event(raw)
            out.append({"index": q.ring.idx(p), "event": event_name(raw[0]),
                        "vsid": f.get("StreamID"), "raw": raw.hex()})
            p = q.ring.inc(p)
        return out


    # -- views ---------------------------------------------------------------------------------
    def view(self) -> dict:
        """The guest side and the host side of each device, the queues and the rules."""
        vmm = self.vmm
        vis = [{"id": v.id, "name": vmm.name_of(v.id), "smmu": v.smmu.name, "vmid": v.vmid,
                "parent": vmm.name_of(v.parent.id), "veventq": v.veventq.id if v.veventq
                else None} for v in self.viommus]
        q = lambda g: {"base": g.base, "log2size": g.ring.log2size, "prod": g.prod,  # noqa
                       "cons": g.cons, "error": g.error, "overflow": g.overflow}
        guest_names = {d: g for g, d in self.spec["vfio"].items()}
        devices = [self.device_row(vsid, guest_names.get(dev.name))
                   for vsid, dev in sorted(self.vsids.items())]
        return {"name": self.name, "vm": self.vm.name, "accel": self.spec["accel"],
                "enabled": self.enabled, "gbpa": "abort" if self.gbpa_abort else "bypass",
                "viommus": vis, "strtab": {"base": self.strtab_base,
                                           "log2size": self.strtab_log2size},
                "cmdq": q(self.cmdq), "evtq": q(self.evtq), "gerror": list(self.gerror),
                "lost": [dict(x) for x in self.lost], "devices": devices,
                "topology": accel_topology(self.system, self)}

    def expected_hwpt(self, words, v) -> tuple[str, tuple | None]:
        """What the VMM would attach for a guest STE now: ('abort'|'bypass', None) or
        ('s1', (ste0, ste1) masked)."""
        cfg = _F("Config").get(words)
        if not self.enabled:
            return ("abort" if self.gbpa_abort else "bypass"), None
        if not _F("V").get(words) or cfg not in _TRANSLATING:
            return "abort", None
        if cfg == C.STE_Config_bypass:
            return "bypass", None
        if cfg in _STAGE1:
            return "s1", (words[0] & NESTING_ALLOWED_0, words[1] & NESTING_ALLOWED_1)
        return "abort", None

    def device_row(self, vsid: int, guest_device: str | None) -> dict:
        dev = self.vsids[vsid]
        row = {"vsid": vsid, "guest_device": guest_device, "device": dev.name,
               "smmu": dev.smmu.name, "psid": dev.sid, "guest_ste": None, "guest_cd": None,
               "host_ste": None, "hwpt": None, "viommu": None,
               "vdevice": dev.vdev.id if dev.vdev else None, "in_sync": None, "note": ""}
        try:
            ipa = self.ste_ipa(vsid)
            g = self.guest_ste(vsid)
            row["guest_ste"] = {"ipa": ipa, "words": g, "config": config_name(g),
                                "s1contextptr": _F("S1ContextPtr").address(g),
                                "s1cdmax": _F("S1CDMax").get(g)}
            cd_ipa, cd, problem = self.guest_cd(g)
            if cd_ipa is not None:
                row["guest_cd"] = {"ipa": cd_ipa, "words": cd, "problem": problem,
                                   "asid": CD.field("ASID").get(cd) if cd else None,
                                   "ttb0": CD.field("TTB0").address(cd) if cd else None,
                                   "valid": bool(CD.field("V").get(cd)) if cd else None}
        except (ModelError, MemFault, ValueError) as e:
            row["note"] = f"guest STE unreadable: {e}"
            g = None
        m = dev.smmu
        try:
            h = m.read_ste(dev.sid)
            row["host_ste"] = {"pa": m.ste_addr(dev.sid), "words": h, "config": config_name(h),
                               "s2vmid": _F("S2VMID").get(h),
                               "s2ttb": _F("S2TTB").address(h),
                               "s1contextptr": _F("S1ContextPtr").address(h)}
        except ModelError as e:
            row["note"] = f"host STE unreadable: {e}"
        hw = dev.hwpt
        if hw is not None:
            nested = isinstance(hw, HwptNested)
            row["hwpt"] = {"id": hw.id, "name": self.vmm.name_of(hw.id),
                           "kind": hw.kind, "config": config_name(
                               STE.encode(V=1, Config=hw.config)) if nested else None,
                           "vste": list(hw.user_ste) if nested else None}
            if nested:
                v = hw.viommu
                row["viommu"] = {"id": v.id, "name": self.vmm.name_of(v.id), "vmid": v.vmid}
        if g is not None and hw is not None:
            v = self._viommu_of(dev)
            want, vste = self.expected_hwpt(g, v)
            if want in ("abort", "bypass"):
                ok = hw is self.proxies[v.id][want]
            else:
                ok = isinstance(hw, HwptNested) and hw.user_ste == vste
            row["in_sync"] = ok
            if not ok:
                err = self.installed.get(vsid, {}).get("error")
                row["note"] = (f"the host refused the guest STE: {err}" if err else
                               "the guest STE changed since the last CMD_CFGI_STE: the host "
                               f"still uses HWPT {hw.id}")
        return row


def command_text(name: str, fields: dict) -> str:
    """A command as `vcmd` takes it: non-zero fields, the Address field as Addr=FULL."""
    parts = [name]
    for k, v in fields.items():
        if k in ("Opcode", "SSec") or not v:
            continue
        if k == "Address":
            parts.append(f"Addr={v << fmt(name).field('Address').lo:#x}")
        else:
            parts.append(f"{k}={v:#x}")
    return " ".join(parts)


def covers(name: str, fields: dict, lost: dict) -> bool:
    """Whether a forwarded invalidation (name, fields) also does what a lost one would have:
    the same command, or a broader one (NH_ALL/NSNH_ALL: everything of the VMID; NH_ASID: that
    ASID's NH_VA; CFGI_CD_ALL: that StreamID's CFGI_CD)."""
    ln, lf = lost["command"], lost["fields"]
    if name == ln and all(fields.get(k) == v for k, v in lf.items() if k != "Opcode"):
        return True
    if name in ("CMD_TLBI_NH_ALL", "CMD_TLBI_NSNH_ALL"):
        return ln.startswith("CMD_TLBI_NH")
    if name == "CMD_TLBI_NH_ASID":
        return ln in ("CMD_TLBI_NH_VA", "CMD_TLBI_NH_ASID") and lf.get("ASID") == fields.get("ASID")
    if name == "CMD_CFGI_CD_ALL":
        return ln == "CMD_CFGI_CD" and lf.get("StreamID") == fields.get("StreamID")
    return False


def accel_topology(system, vs) -> list[dict]:
    """QEMU's accelerated-mode rules over the guest PCI topology behind the vSMMU's primary bus
    (smmuv3_accel_get_as / smmuv3_accel_supported_dev): a vfio-pci endpoint with the iommufd
    backend uses the system address space (the shared S2: its DMA is translated by its physical
    SMMU); bridges and root ports use the vSMMU's IOMMU address space; an emulated endpoint is
    refused when cold-plugged (error) and warned about when hot-plugged (warning)."""
    spec = vs.spec
    topo = system.platform.guest_pci.get(vs.vm.name) if system.platform else None
    if topo is None or spec["primary_bus"] is None:
        return []
    out = []
    accel = spec["accel"]
    for name, d in topo.devices.items():
        if d.host != spec["primary_bus"]:
            continue
        row = {"device": name, "kind": d.kind, "bdf": topo.bdf(name), "rid": d.rid,
               "address_space": "iommu", "role": "", "severity": None, "message": "",
               "fix": ""}
        if d.is_bridge:
            row["role"] = "bridge/root port (emulated; carries the vfio-pci devices below)"
        elif name in spec["vfio"]:
            host = spec["vfio"][name]
            dev = vs.vmm.objects.get(host)
            row.update(address_space="system" if accel else "iommu",
                       role=f"vfio-pci (iommufd backend) -> {host}")
            vsid = next((k for k, x in vs.vsids.items() if x is dev), None)
            if vsid is not None and vsid != d.rid:
                row.update(severity="error", message=f"{name} is at RID {d.rid:#x} in the "
                           f"guest, but its vDEVICE/guest STE uses vSID {vsid:#x}: the guest "
                           f"driver indexes its stream table by the RID",
                           fix=f"give {host} vsid = {d.rid:#x} (the guest RID through the "
                               f"vSMMU's identity ID mapping)")
            elif dev is not None and all(v.smmu is not dev.smmu for v in vs.viommus):
                row.update(severity="error", message=f"{host} is behind {dev.smmu.name}, "
                           f"which no vIOMMU of {vs.name} is on",
                           fix=f"put {name} behind a vSMMU on {dev.smmu.name} (its own "
                               f"pxb-pcie and arm-smmuv3,accel=on instance)")
        elif accel:
            hot = name in spec["hotplug"]
            row.update(role="emulated endpoint", severity="warning" if hot else "error",
                       message=(f"emulated endpoint {name} is hot-plugged behind accelerated "
                                f"{vs.name}: QEMU warns, and its DMA is not translated by the "
                                f"host SMMU (invalidations without a StreamID would have to "
                                f"reach QEMU's own IOTLB too)" if hot else
                                f"emulated endpoint {name} behind accelerated {vs.name}: QEMU "
                                f"refuses it when cold-plugged (only vfio-pci devices with the "
                                f"iommufd backend, bridges and root ports may sit behind "
                                f"arm-smmuv3,accel=on)"),
                       fix=f"move {name} to a bus behind a non-accelerated vSMMU (another "
                           f"pxb-pcie), or pass a physical device through as vfio-pci with "
                           f"iommufd")
        else:
            row["role"] = "emulated endpoint (non-accelerated vSMMU: QEMU translates it)"
        out.append(row)
    return out


class _Stop(Exception):
    def __init__(self, cerror: str, why: str):
        super().__init__(why)
        assert cerror in CERROR
        self.cerror = cerror
        self.why = why


def build(system, vmm, specs: list[dict]) -> dict[str, VSmmu]:
    """The [[vsmmu]] entries: each vSMMU, then the guest driver's boot: its STEs written in
    guest RAM and a CMD_CFGI_STE + CMD_SYNC per STE, consumed by the VMM (so the host STEs are
    what the trap-and-forward flow makes of them)."""
    out = {}
    for i, s in enumerate(specs):
        try:
            vs = VSmmu(system, vmm, s)
            for st in s["streams"]:
                dev = vmm.objects[st["device"]]
                vs.vsids[st["vsid"]] = dev
                vs.write_guest_ste(st["vsid"], st["config"], st["domain"])
            for st in s["streams"]:
                recs = vs.submit([("CMD_CFGI_STE", {"StreamID": st["vsid"], "Leaf": 1}),
                                  ("CMD_SYNC", {})])
                bad = next((r for r in recs if r["error"]), None)
                if bad:
                    raise ModelError(f"streams: vSID {st['vsid']:#x}: {bad['steps'][-1]['detail']}")
        except ModelError as e:
            raise ModelError(f"vsmmu[{i}]: {e}") from None
        out[s["name"]] = vs
    return out


__all__ = ["VSmmu", "GuestQueue", "build", "config_name"]
