"""The system around the SMMUs, built from a checked scenario: the GIC redistributors, the PCI
topology, the IORT (as given, or derived the way QEMU's virt machine writes it) and the ITSes.

Each ITS is set up the way a driver does it (Linux irq-gic-v3-its.c, its_probe/its_alloc_tables,
its_cpu_init_collection, its_msi_prepare): GITS_BASER<n> and GITS_CBASER written with tables
from the ITS's pool, GITS_CTLR.Enabled set, then every mapping made with commands through the
command queue (MAPC per collection, MAPD per device, MAPTI per LPI), so the tables hold what the
ITS itself wrote, in the chosen entry layout. Two-level tables get a level-2 page per DeviceID
(or ICID) page on first use, as its_alloc_table_entry() does.

Both ITS frames (control at base, translation at base + 64 KiB) are MMIO of the ITS in the
system map. A write landing on GITS_TRANSLATER needs the requester's DeviceID: the DMA write
path (System.dma_write) carries it, from the IORT, while the write is made.
"""
from __future__ import annotations

from core_cy.physmem import MemFault
from core_cy.ptbuild import BumpAllocator

from ..errors import ModelError
from .gic import Redistributors
from .iort import Iort, qemu_virt_iort
from ..arch import fmt
from ..arch.gicv3.registers import TRANSLATION_FRAME
from .its import CMDQ_PAGE, L1E_SIZE, Its, ItsError, ItsFeatures, baser_value
from .pci import PciTopology
from .scenario_system import ITS_FRAME
from . import vsmmu as vsmmu_model
from .vmm import Vmm

_CBASER = fmt("GITS_CBASER", "gicv3")
_L1E = fmt("ITS_L1E", "gicv3")
_ITT = fmt("MAPD", "gicv3").field("ITT_addr")


class Platform:
    """What a System holds beyond SMMUs and domains: .gic, .pci, .iort, .its {name: Its}."""

    def __init__(self, system, spec: dict):
        self.system = system
        self.gic = Redistributors(spec.get("gic", {}).get("redistributors", 1))
        self.pci = PciTopology.from_spec(spec["pci"]) if spec.get("pci") is not None else None
        self.iort = self._iort(spec.get("iort"))
        self.its: dict[str, Its] = {}
        self.requester: int | None = None    # DeviceID of the DMA write being made
        self.last_doorbell = None            # the ItsTranslation of the last doorbell write
        # An imported GIC's redistributor frames: [{frame, rd_base, processor, affinity,
        # registers}] (importers/qemu_gic.py); a scenario's GIC has none.
        self.redistributors: list[dict] = []
        for i, t in enumerate(spec.get("its", [])):
            try:
                self._build_its(t)
            except ModelError as e:
                raise ModelError(f"its[{i}]: {e}") from None
        self.vmm = Vmm(system, spec["iommufd"], self.its, self.iort) if spec.get("iommufd") else None
        # Guest PCI topologies (vm.pci) and the VMs' vSMMUs, built over the iommufd objects.
        self.guest_pci = {vm: PciTopology.from_spec(s)
                          for vm, s in (spec.get("vm_pci") or {}).items()}
        self.vsmmus = vsmmu_model.build(system, self.vmm, spec["vsmmu"]) \
            if spec.get("vsmmu") else {}

    # -- IORT ---------------------------------------------------------------------------------
    def _iort(self, spec):
        if spec is None:
            return None
        if "nodes" in spec:
            return Iort.from_spec(spec["nodes"])
        smmus = []
        for d in spec["derive"]:
            smmus.append({"name": d["smmu"], "base": self.system.smmus[d["smmu"]].base,
                          "buses": d["host_bridges"], "accel": d["accel"]})
        return qemu_virt_iort(self.pci, smmus, legacy_count=spec["legacy_count"])

    def device_id(self, pci_name: str) -> int:
        """The ITS DeviceID of a PCI device's MSIs: its MSI RID through the IORT."""
        if self.pci is None or self.iort is None:
            raise ModelError("no pci/iort in this system: give the ITS device a device_id")
        path = self.iort.explain_device(self.pci, pci_name).msi
        if path.device_id is None:
            raise ModelError(f"{pci_name}: no DeviceID: {path.failure}")
        return path.device_id

    # -- ITS ----------------------------------------------------------------------------------
    def _build_its(self, t: dict) -> None:
        name = t["name"]
        its = Its(self.system.mem, ItsFeatures(pes=len(self.gic), **t["features"]), t["base"],
                  gic=self.gic)
        its.name = name
        pool = BumpAllocator(t["pool"]["base"], t["pool"]["size"])
        self._map_frames(its)
        l2 = {}
        for n, key in ((0, "device_table"), (1, "collection_table")):
            tt = t[key]
            size = tt["pages"] * tt["page_size"]
            base = self._alloc(pool, size, tt["page_size"], name)
            try:
                v = baser_value(its.read(f"GITS_BASER{n}"), base=base,
                                page_size=tt["page_size"], pages=tt["pages"],
                                indirect=tt["indirect"])
            except ItsError as e:
                raise ModelError(f"ITS {name}: {key}: {e}") from None
            its.write(f"GITS_BASER{n}", v)
            l2[n] = tt
        cq = self._alloc(pool, t["cmdq_pages"] * CMDQ_PAGE, CMDQ_PAGE, name)
        its.write("GITS_CBASER", _CBASER.encode(
            Valid=1, Size=t["cmdq_pages"] - 1,
            Physical_Address=_CBASER.field("Physical_Address").from_address(cq))[0])
        its.write("GITS_CTLR", 1)
        # Linux maps one collection per CPU, then each device's ITT and its events.
        for c in t["collections"]:
            self._ensure_l2(its, "Collections", c["icid"], pool)
            self._submit(its, "MAPC", ICID=c["icid"], RDbase=c["target"], V=1)
        for d in t["devices"]:
            dev = d["device_id"] if d["device"] is None else self.device_id(d["device"])
            size = d["events"].bit_length() - 2          # MAPD.Size: EventID bits - 1
            itt = self._alloc(pool, max(256, d["events"] * its.ite_size), 256, name)
            self._ensure_l2(its, "Devices", dev, pool)
            self._submit(its, "MAPD", DeviceID=dev, Size=size, ITT_addr=_ITT.from_address(itt),
                         V=1)
            for lp in d["lpis"]:
                self._submit(its, "MAPTI", DeviceID=dev, EventID=lp["event"],
                             pINTID=lp["intid"], ICID=lp["icid"])
        if not t["enabled"]:
            its.write("GITS_CTLR", 0)
        self.its[name] = its

    def _map_frames(self, its: Its) -> None:
        """Both frames of the ITS (control, translation) as its MMIO in the system map."""
        try:
            self.system.mem.add_mmio(its.base, ITS_FRAME, its,
                                     write=lambda pa, data, i=its: self._mmio_write(i, pa, data),
                                     read=lambda pa, n, i=its: self._mmio_read(i, pa, n))
        except ValueError as e:
            raise ModelError(f"ITS {its.name}: frames at {its.base:#x} (128 KiB): {e}") from None

    def add_its(self, its: Its, name: str) -> Its:
        """Add an ITS built elsewhere (an importer's, over the system's memory and this
        platform's redistributors), with its frames in the system map."""
        if its.gic is not self.gic:
            raise ModelError(f"ITS {name}: not built over this platform's redistributors")
        if name in self.its:
            raise ModelError(f"an ITS named {name!r} already exists")
        its.name = name
        self._map_frames(its)
        self.its[name] = its
        return its

    @staticmethod
    def _alloc(pool, size, align, name):
        """Zeroed memory for a table (the pool is RAM the scenario zeroes), naturally aligned
        to its power-of-two size and at least `align`."""
        try:
            return pool.alloc(max(align, 1 << (size - 1).bit_length()))
        except Exception as e:
            raise ModelError(f"ITS {name}: pool: {e}") from None

    def _ensure_l2(self, its: Its, kind: str, index: int, pool) -> None:
        """A two-level table: give the level-1 entry of `index` a zeroed level-2 page."""
        tab = its.table(kind)
        if tab is None or not tab.indirect:
            return
        per = tab.page_size // tab.entry_size
        l1 = tab.base + (index // per) * L1E_SIZE
        if l1 >= tab.base + tab.pages * tab.page_size:
            return                       # beyond the level-1 table: the command reports it
        if _L1E.field("Valid").get([its.mem.read_u64(l1)]):
            return
        page = pool.alloc(tab.page_size)
        its.mem.write_words(l1, _L1E.encode(
            Valid=1, Physical_Address=_L1E.field("Physical_Address").from_address(page)))

    @staticmethod
    def _submit(its: Its, name: str, **values) -> None:
        for cmd in its.submit(name, **values):
            if not cmd.ok:
                raise ModelError(f"ITS {its.name}: {cmd.name} {values}: {cmd.error}: "
                                 f"{cmd.reason}")

    # -- MMIO ---------------------------------------------------------------------------------
    def _mmio_write(self, its: Its, pa: int, data: bytes) -> None:
        off = pa - its.base
        value = int.from_bytes(data, "little")
        if off >= TRANSLATION_FRAME:    # the translation frame: only GITS_TRANSLATER does anything
            if self.requester is None:
                raise MemFault(f"PA {pa:#x}: a write to the translation frame of ITS {its.name} "
                               f"without a DeviceID (not a DMA write through the IORT)")
            self.last_doorbell = its.doorbell(pa, value, self.requester, size=len(data))
            return
        its.write_offset(off, value, size=len(data))

    @staticmethod
    def _mmio_read(its: Its, pa: int, n: int) -> bytes:
        return its.read_offset(pa - its.base, n).to_bytes(n, "little")

    def dma_write(self, pa: int, data: bytes, device_id: int | None):
        """A device's write of `data` at physical `pa`, carrying its DeviceID (the requester
        the IORT gives the ITS). Returns the ItsTranslation when it rang a doorbell, else
        None."""
        self.requester, self.last_doorbell = device_id, None
        try:
            self.system.mem.write(pa, data)
        finally:
            self.requester = None
        return self.last_doorbell

    def its_at(self, pa: int) -> Its | None:
        r = self.system.mem.region_at(pa)
        return r.owner if r is not None and isinstance(r.owner, Its) else None
