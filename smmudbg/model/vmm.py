"""The iommufd objects of a scenario, created the way a VMM creates them (smmudbg.model.iommufd:
the kernel's checks and errnos): IOAS maps of the guest RAM, bound devices, nesting-parent S2
HWPTs, vIOMMUs, vDEVICEs, nested HWPTs allocated from a vSTE that points at a CD table the
guest built in its RAM, attaches (the host STE written into the physical stream table) and the
software-MSI doorbell mapping of each device's ITS page (iommufd_sw_msi).

A refused ioctl is a scenario error naming the entry: `iommufd.attach[1]: ATTACH: -EINVAL: ...`.
"""
from __future__ import annotations

from ..arch.fieldtable import fmt
from ..arch.smmuv3 import consts as C
from ..errors import ModelError
from . import scenario as sc
from .iommufd import IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_DATA_ARM_SMMUV3, Iommufd
from .iommufd.ctx import (IOMMU_OPTION_OP_SET, IOMMU_OPTION_SW_MSI_SIZE,
                          IOMMU_OPTION_SW_MSI_START)
from .iommufd.ioas import (IOMMU_IOAS_MAP_FIXED_IOVA, IOMMU_IOAS_MAP_READABLE,
                           IOMMU_IOAS_MAP_WRITEABLE)
from .its import TRANSLATER

STE = fmt("STE")
_VSTE_CONFIG = {"abort": C.STE_Config_abort, "bypass": C.STE_Config_bypass,
                "s1": C.STE_Config_s1_trans}


def _flags(perm: str) -> int:
    return (IOMMU_IOAS_MAP_FIXED_IOVA | (IOMMU_IOAS_MAP_READABLE if "r" in perm else 0)
            | (IOMMU_IOAS_MAP_WRITEABLE if "w" in perm else 0))


class Vmm:
    """The iommufd context of a scenario and its objects by scenario name."""

    def __init__(self, system, spec: dict, its: dict, iort=None):
        self.system = system
        self.its = its
        self.iort = iort
        self.fd = Iommufd(vmid_per_viommu=spec["vmid_per_viommu"])
        self.objects: dict[str, object] = {}      # scenario name -> iommufd object
        self.vste: dict[str, tuple[int, int]] = {}
        self.spec = spec
        for key in ("ioas", "devices", "hwpt", "viommu", "veventq", "vdevice", "nested",
                    "attach"):
            for j, e in enumerate(spec[key]):
                try:
                    getattr(self, f"_{key}")(e)
                except ModelError as err:
                    raise ModelError(f"iommufd.{key}[{j}]: {err}") from None
        # A device attached later (by a vSMMU's guest STE install) gets its doorbell mapping
        # then (msi_after_attach).
        self.pending_msi: dict[str, dict] = {}
        for j, d in enumerate(spec["devices"]):
            if d["msi_its"]:
                if self.objects[d["name"]].hwpt is None:
                    self.pending_msi[d["name"]] = d
                    continue
                try:
                    self._sw_msi(d)
                except ModelError as err:
                    raise ModelError(f"iommufd.devices[{j}].msi_its: {err}") from None

    def msi_after_attach(self, name: str) -> None:
        """iommufd_sw_msi for a device first attached after the scenario's attaches."""
        d = self.pending_msi.pop(name, None)
        if d is not None:
            self._sw_msi(d)

    def id(self, name: str) -> int:
        return self.objects[name].id

    def name_of(self, obj_id: int) -> str | None:
        return next((n for n, o in self.objects.items() if o.id == obj_id), None)

    def _ioas(self, e):
        ioas = self.fd.ioas_alloc()
        self.objects[e["name"]] = ioas
        if e["map_vm"]:
            for ipa, size, pa in self.system.vms[e["map_vm"]].ram:
                self.fd.ioas_map(ioas.id, size, pa, _flags("rw"), ipa)
        for m in e["maps"]:
            self.fd.ioas_map(ioas.id, m["size"], m["pa"], _flags(m["perm"]), m["iova"])

    def _devices(self, e):
        dev = self.fd.bind(e["name"], self.system.smmus[e["smmu"]], e["sid"],
                           canwbs=e["canwbs"], sw_msi=e["sw_msi"])
        iort = self.iort
        if iort is not None:        # IORT RMRs of its StreamID: reserved regions of the device
            dev.resv = [(r.base, r.base + r.length - 1, r.type)
                        for r in iort.rmr_regions(e["smmu"], [e["sid"]])]
        if e["sw_msi_size"] is not None:
            # the proposed IOMMU_OPTION_SW_MSI_START then _SIZE, before attach, with its checks
            self.fd.option_sw_msi(IOMMU_OPTION_SW_MSI_START, IOMMU_OPTION_OP_SET, dev.id,
                                  e["sw_msi_start"] or 0)
            self.fd.option_sw_msi(IOMMU_OPTION_SW_MSI_SIZE, IOMMU_OPTION_OP_SET, dev.id,
                                  e["sw_msi_size"])
        elif e["sw_msi_start"] is not None:
            # the window placed directly at sw_msi_start (no size: not through the option,
            # which needs 1 MB alignment): the VMM puts it at the guest's doorbell GPA, so the
            # host ITS page lands where the guest's ITS is
            dev.sw_msi_start = e["sw_msi_start"]
        self.objects[e["name"]] = dev

    def _hwpt(self, e):
        flags = IOMMU_HWPT_ALLOC_NEST_PARENT if e["nest_parent"] else 0
        hw = self.fd.hwpt_alloc(self.id(e["device"]), self.id(e["ioas"]), flags)
        self.objects[e["name"]] = hw
        # The HWPT's io-pgtable is a translation domain too, by its scenario name: `pt`, `map`
        # and `inject unmap` reach it (a `map` writes its tables directly, as a VMM bug or a
        # fix would, without the IOAS bookkeeping).
        spec = {"name": e["name"], "smmu": hw.smmu.name, "stage": hw.stage,
                "asid": getattr(hw, "asid", 0) or 0, "vmid": getattr(hw, "vmid", 0) or 0,
                "maps": [], "vm": None, "iommufd": True}
        self.system.add_domain(spec, hw.tables)

    def _viommu(self, e):
        self.objects[e["name"]] = self.fd.viommu_alloc(self.id(e["device"]), self.id(e["hwpt"]))

    def _veventq(self, e):
        self.objects[f"{e['viommu']}-veventq"] = self.fd.veventq_alloc(self.id(e["viommu"]),
                                                                       e["depth"])

    def _vdevice(self, e):
        self.fd.vdevice_alloc(self.id(e["viommu"]), self.id(e["device"]), e["vsid"])

    def _nested(self, e):
        dev = self.objects[e["device"]]
        fields = {"V": 1, "Config": _VSTE_CONFIG[e["config"]]}
        if e["config"] == "s1":
            # The guest's CD table, built in its RAM as the guest driver does for a stream with
            # one CD (SSID 0), as a nested [[stream]]'s is.
            spec = {"config": "nested", "cds": [{"ssid": 0, "domain": e["domain"]}],
                    "cd_table": {"format": "linear", "s1cdmax": 0}}
            ctx = self.system._build_cd_table(dev.smmu, spec, dev.sid)
            fields.update(S1ContextPtr=STE.field("S1ContextPtr").from_address(ctx),
                          S1Fmt=sc.CD_FORMATS["linear"], S1CDMax=0,
                          S1DSS=sc.S1DSS["substream0"], S1CIR=C.STE_S1CIR_WBRA,
                          S1COR=C.STE_S1COR_WBRA, S1CSH=C.STE_S1CSH_ISH)
        w = STE.encode(**fields)
        self.vste[e["name"]] = (w[0], w[1])
        self.objects[e["name"]] = self.fd.hwpt_alloc(
            dev.id, self.id(e["viommu"]), 0, IOMMU_HWPT_DATA_ARM_SMMUV3, (w[0], w[1]))

    def _attach(self, e):
        dev = self.objects[e["device"]]
        self.fd.attach(dev.id, self.id(e["hwpt"]))
        if (dev.smmu.name, dev.sid) not in self.system.streams:
            hw = self.objects[e["hwpt"]]
            cfg = "nested" if hasattr(hw, "viommu") else "s2"
            st = self.system.add_stream(dev.smmu.name, dev.sid, cfg, name=dev.name)
            parent = hw.parent if hasattr(hw, "parent") else hw
            st.spec["s2"] = self.name_of(parent.id) if parent.stage == 2 else None
            dom = next((n["domain"] for n in self.spec["nested"]
                        if n["name"] == e["hwpt"] and n["domain"]), None)
            if dom:         # the guest's CD table holds one CD (SSID 0) for this domain
                st.spec["cds"] = [{"ssid": 0, "domain": dom}]

    def _sw_msi(self, d):
        """iommufd_sw_msi for each ITS the device's MSIs use, in order: the first distinct
        doorbell page of a window is at its start, the next one page further (fd-global)."""
        for name in d["msi_its"]:
            self.fd.sw_msi(self.id(d["name"]), self.its[name].base + TRANSLATER)
