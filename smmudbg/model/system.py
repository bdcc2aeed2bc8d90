"""The whole modeled system, built from a scenario.

Stage today: host RAM, SMMUv3 instances, translation domains (stage-1 and stage-2 table trees
built in modeled memory), VM memory layouts (IPA -> PA) and streams (STEs + CD tables). The
iommufd objects, PCI/IORT topology, ITS and vSMMUs of later stages hang off this object too:
each is a named collection the commands look up, built from its own scenario tables.
"""
from __future__ import annotations

from collections.abc import MutableMapping

import numpy as np

from core_cy.physmem import MemFault, PhysMem
from core_cy.ptbuild import BuildError, BumpAllocator, TableBuilder

from ..arch.fieldtable import fmt
from ..arch.smmuv3 import consts as C
from ..arch.smmuv3.geometry import cd_table
from ..errors import ModelError, ScenarioError, brief, listing
from . import scenario as sc
from .platform import Platform
from .smmu import CD, L1CD, STE, Smmu
from .iommufd.vtd_vmm import VtdVmm
from .vtd import VtdDevice, VtdUnit, build_units
from .views import SystemViews

# Scenario names of STE.Config and STE.S1DSS -> field values.
CONFIG_CODES = sc.CONFIGS
S1DSS_CODES = sc.S1DSS
_S2TTB = STE.field("S2TTB")
_CTXPTR = STE.field("S1ContextPtr")
_TTB0 = CD.field("TTB0")


class Vm:
    """A guest's memory layout: IPA ranges backed by host PA ranges."""

    def __init__(self, name, ram):
        self.name = name
        self.ram = [(r["ipa"], r["size"], r["pa"]) for r in ram]

    def ipa_to_pa(self, ipa: int) -> int:
        for base, size, pa in self.ram:
            if base <= ipa < base + size:
                return pa + (ipa - base)
        raise ModelError(f"IPA {ipa:#x} is not guest RAM of {self.name}")


class Domain:
    """A translation table tree (an io-pgtable instance) and what it was built from."""

    def __init__(self, spec, builder: TableBuilder, vm: Vm | None):
        self.name = spec["name"]
        self.stage = spec["stage"]
        self.spec = spec
        self.tables = builder
        self.vm = vm
        self.asid = spec["asid"]
        self.vmid = spec["vmid"]

    @property
    def root(self) -> int:
        return self.tables.root


class Stream:
    __slots__ = ("name", "smmu", "sid", "spec")

    def __init__(self, spec, sid):
        self.name = spec["name"] if spec["count"] == 1 else None
        self.smmu = spec["smmu"]
        self.sid = sid
        self.spec = spec


class StreamMap(MutableMapping):
    """(SMMU name, StreamID) -> Stream of every declared stream, in declaration order. A
    scenario entry of many StreamIDs is kept as one range whose Streams are made when asked
    for: a system of 262,144 streams costs no 262,144 objects to build."""

    def __init__(self):
        self._one: dict = {}           # (smmu, sid) -> Stream
        self._order: list = []         # [key] for one stream, or [smmu, first, end, spec]
        self._ranges: dict = {}        # smmu -> [(first, end, spec)]
        self._n = 0

    def add_range(self, spec) -> None:
        """The streams of a scenario entry (spec: smmu, sid, count)."""
        smmu, first, end = spec["smmu"], spec["sid"], spec["sid"] + spec["count"]
        if spec["count"] == 1 or self._overlaps(smmu, first, end):
            for sid in range(first, end):
                self[(smmu, sid)] = Stream(spec, sid)
            return
        self._ranges.setdefault(smmu, []).append((first, end, spec))
        self._order.append([smmu, first, end, spec])
        self._n += end - first

    def _overlaps(self, smmu, first, end) -> bool:
        return any(a < end and first < b for a, b, _ in self._ranges.get(smmu, ())) or \
            any(sm == smmu and first <= sid < end for sm, sid in self._one)

    def _range_of(self, key):
        smmu, sid = key
        for r in self._ranges.get(smmu, ()):
            if r[0] <= sid < r[1]:
                return r
        return None

    def _expand(self, r) -> None:
        """Make one range's streams single entries (a key of it is set or deleted)."""
        smmu, (first, end, spec) = None, r
        for e in self._order:
            if len(e) == 4 and e[1:] == [first, end, spec]:
                smmu = e[0]
                self._order.remove(e)
                break
        self._ranges[smmu].remove(r)
        self._n -= end - first
        for sid in range(first, end):
            self[(smmu, sid)] = Stream(spec, sid)

    def __getitem__(self, key):
        st = self._one.get(key)
        if st is not None:
            return st
        r = self._range_of(key) if isinstance(key, tuple) and len(key) == 2 else None
        if r is None:
            raise KeyError(key)
        return Stream(r[2], key[1])

    def __setitem__(self, key, st) -> None:
        r = self._range_of(key)
        if r is not None:
            self._expand(r)
        if key not in self._one:
            self._order.append([key])
            self._n += 1
        self._one[key] = st

    def __delitem__(self, key) -> None:
        r = self._range_of(key)
        if r is not None:
            self._expand(r)
        del self._one[key]
        self._order.remove([key])
        self._n -= 1

    def __iter__(self):
        for e in self._order:
            if len(e) == 1:
                yield e[0]
            else:
                smmu = e[0]
                yield from ((smmu, sid) for sid in range(e[1], e[2]))

    def __len__(self) -> int:
        return self._n

    def count(self, smmu: str) -> int:
        """Streams of one SMMU, from its ranges (no walk over every StreamID)."""
        return sum(end - first for first, end, _ in self._ranges.get(smmu, ())) + \
            sum(1 for sm, _ in self._one if sm == smmu)


class System(SystemViews):
    def __init__(self, spec: dict):
        self.spec = spec
        self.name = spec["name"]
        # Strict: only declared RAM and device regions exist; a write to nothing faults.
        self.mem = PhysMem(strict=True)
        self.smmus: dict[str, Smmu] = {}
        self.vms: dict[str, Vm] = {}
        self.domains: dict[str, Domain] = {}
        self.streams = StreamMap()
        self.devices: dict[str, Stream] = {}
        self.platform = None        # GIC, PCI, IORT, ITSes (platform.py), built after streams
        self.vtds: dict[str, VtdUnit] = {}           # Intel VT-d units (model/vtd.py)
        self.vtd_devices: dict[str, VtdDevice] = {}  # their requesters, by name
        self.vtd_iommufd = None                      # [vtd_iommufd] (model/iommufd/vtd_vmm)
        try:
            self._build()
        except (BuildError, MemFault, ValueError, ModelError) as e:
            raise ScenarioError(f"scenario {brief(self.name)}: {e}") from None

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_text(cls, text: str, where: str = "scenario") -> "System":
        return cls(sc.parse(text, where))

    @classmethod
    def from_file(cls, path: str) -> "System":
        return cls(sc.load(path))

    @classmethod
    def default(cls) -> "System":
        return cls.from_text(sc.builtin("default"), "built-in default scenario")

    @classmethod
    def empty(cls, name: str, description: str = "", strict: bool = False) -> "System":
        """A system with no memory, SMMUs or streams, for importers to fill in (add_smmu,
        add_stream, mem.image). strict: writes outside declared memory fault (MemFault)
        instead of creating RAM, as for an imported dump."""
        sys_ = cls({"name": name, "description": description, "ram": [], "smmu": [], "vm": [],
                    "domain": [], "stream": []})
        sys_.mem = PhysMem(strict=strict)
        return sys_

    def add_smmu(self, smmu: Smmu) -> Smmu:
        """Add an SMMU built over this system's memory (an importer's)."""
        if smmu.mem is not self.mem:
            raise ModelError(f"SMMU {smmu.name!r} is not built over this system's memory")
        if smmu.name in self.smmus:
            raise ModelError(f"an SMMU named {smmu.name!r} already exists")
        self.smmus[smmu.name] = smmu
        return smmu

    def add_stream(self, smmu: str, sid: int, config: str, name: str | None = None) -> Stream:
        """Declare a stream found in an SMMU's stream table (an importer's): it is listed by
        topology and checked by `check`. config is a CONFIG_CODES name (or any label)."""
        spec = {"name": name, "smmu": smmu, "sid": sid, "count": 1, "config": config,
                "s2": None, "cds": []}
        self.spec["stream"].append(spec)
        st = Stream(spec, sid)
        self.streams[(smmu, sid)] = st
        if st.name:
            self.devices[st.name] = st
        return st

    def _build(self):
        for i, r in enumerate(self.spec["ram"]):
            try:
                self.mem.ram(r["base"], r["size"])
            except MemoryError:     # (mapped, not touched: only an address-space limit fails)
                raise ModelError(f"ram[{i}]: cannot reserve {r['size']:#x} bytes of address "
                                 f"space at {r['base']:#x} for the modeled RAM (is `ulimit -v` "
                                 f"set?)") from None
        for s in self.spec["smmu"]:
            smmu = Smmu(s["name"], self.mem, s["features"], s["pool"], s["base"])
            self._map_registers(smmu)
            st = s["stream_table"]
            smmu.setup_stream_table(st["format"], st["log2size"], st["split"])
            smmu.setup_queues(s["cmdq_log2size"], s["evtq_log2size"])
            smmu.walker.configure(caching=s["caching"])
            # As Linux's driver does: record C_BAD_STREAMID events (IHI 0070 7.3.3) and
            # leave private TLB maintenance off.
            smmu.set_reg("CR2", fmt("SMMU_CR2").encode(RECINVSID=1, PTM=1)[0])
            smmu.set_reg("CR0", fmt("SMMU_CR0").encode(SMMUEN=1, EVENTQEN=1, CMDQEN=1)[0])
            self.smmus[s["name"]] = smmu
        for v in self.spec["vm"]:
            self.vms[v["name"]] = Vm(v["name"], v["ram"])
        for d in self.spec["domain"]:
            self._build_domain(d)
        for s in self.spec["stream"]:
            self._build_streams(s)
        self.vtds = build_units(self, self.spec)
        self.vtd_devices = {d.name: d for u in self.vtds.values() for d in u.devices.values()}
        # [vtd_iommufd]: VFIO devices behind the units, bound to iommufd (model/iommufd/vtd_vmm)
        self.vtd_iommufd = VtdVmm(self, self.spec["vtd_iommufd"]) \
            if self.spec.get("vtd_iommufd") else None
        self.platform = Platform(self, self.spec)

    # SMMUv3 register file: Page 0 and Page 1, 64 KiB each (IHI 0070 6.1).
    SMMU_MMIO_SIZE = 0x2_0000

    def _map_registers(self, smmu: Smmu) -> None:
        """Give the SMMU's register pages to it in the system map, so a DMA write landing
        there reaches the SMMU (its mmio_write(pa, data), when it has one)."""
        if not smmu.base:
            return
        try:
            self.mem.add_mmio(smmu.base, self.SMMU_MMIO_SIZE, smmu.name,
                              write=getattr(smmu, "mmio_write", None),
                              read=getattr(smmu, "mmio_read", None))
        except ValueError as e:
            raise ModelError(f"{smmu.name}: register pages at {smmu.base:#x} (128 KiB): "
                             f"{e}") from None

    def _build_domain(self, d):
        smmu = self.smmus[d["smmu"]]
        vm = self.vms.get(d["vm"]) if d["vm"] else None
        if d["pool"]:
            alloc = BumpAllocator(d["pool"]["base"], d["pool"]["size"])
        elif vm is not None:
            raise ModelError(f"domain {d['name']}: tables in {vm.name} need a pool (IPA range)")
        else:
            alloc = smmu.alloc
        windows = vm.ram if vm else None
        tb = TableBuilder(self.mem, d["stage"], d["granule"], d["bits"], alloc, windows=windows)
        dom = Domain(d, tb, vm)
        if d["map_vm"]:
            for ipa, size, pa in self.vms[d["map_vm"]].ram:
                self.map(dom, ipa, pa, size, d["perm"])
        for m in d["maps"]:
            p = m["perm"]
            tb.map_range(m["in"], m["out"], m["size"], m["count"], m["stride"],
                         m["out_stride"], read="r" in p, write="w" in p, exec_="x" in p,
                         user="p" not in p)
        self.domains[d["name"]] = dom

    @staticmethod
    def map(dom: Domain, addr: int, out: int, size: int, perm: str = "rw") -> int:
        return dom.tables.map(addr, out, size, read="r" in perm, write="w" in perm,
                              exec_="x" in perm, user="p" not in perm)

    def _build_streams(self, s):
        """The STEs of one scenario stream entry (count StreamIDs from sid), all alike: one
        encoding, each stage-1 StreamID with its own CD table (alike too, written at once when
        linear), the STEs written an L2 array at a time."""
        smmu = self.smmus[s["smmu"]]
        cfg, first, n = s["config"], s["sid"], s["count"]
        fields = {"V": 1, "Config": CONFIG_CODES[cfg]}
        if cfg in ("s2", "nested"):
            s2 = self.domains[s["s2"]]
            t = s2.tables
            fields.update(S2VMID=s2.vmid, S2T0SZ=t.tsz, S2SL0=t.sl0, S2TG=t.tg,
                          S2PS=smmu.features.get("OAS", C.SMMU_IDR5_OAS_48bit), S2AA64=1, S2R=1,
                          S2PTW=1, S2TTB=_S2TTB.from_address(t.root))
        if cfg in ("s1", "nested"):
            fields.update(S1Fmt=sc.CD_FORMATS[s["cd_table"]["format"]],
                          S1CDMax=s["cd_table"]["s1cdmax"], S1DSS=S1DSS_CODES[s["s1dss"]],
                          S1CIR=C.STE_S1CIR_WBRA, S1COR=C.STE_S1COR_WBRA,
                          S1CSH=C.STE_S1CSH_ISH)
        rows = np.tile(np.array(STE.encode(**fields), dtype=np.uint64), (n, 1))
        i = 0
        while i < n:
            sid, k = first + i, smmu.ste_run(first + i, n - i)
            if cfg in ("s1", "nested"):
                # In the order writing STE by STE allocates: the first CD table, then the L2
                # array (when the STE is the first of a new one), then the others.
                ctx = self._build_cd_tables(smmu, s, sid, 1)
                smmu.ste_addr(sid, create=True)
                ctx += self._build_cd_tables(smmu, s, sid + 1, k - 1)
                _CTXPTR.put_addresses(rows[i:i + k], ctx)
            smmu.write_stes(sid, rows[i:i + k])
            i += k
        self.streams.add_range(s)
        if n == 1 and s["name"]:
            self.devices[s["name"]] = self.streams[(s["smmu"], first)]

    def _build_cd_tables(self, smmu, s, first: int, n: int) -> list[int]:
        """The CD tables of n StreamIDs from first of a stream entry, one each, all alike:
        their addresses (IPAs when nested). Linear tables are allocated back to back and
        written at once; 2-level ones one by one."""
        form = sc.CD_FORMATS[s["cd_table"]["format"]]
        geo = cd_table(0, form, s["cd_table"]["s1cdmax"])
        if n <= 0:
            return []
        if geo.two_level or n == 1:
            return [self._build_cd_table(smmu, s, sid) for sid in range(first, first + n)]
        nested = s["config"] == "nested"
        vm = self._cd_vm(s)
        alloc = self.domains[s["cds"][0]["domain"]].tables.alloc if nested else smmu.alloc
        size = max(CD.size, geo.table_bytes)
        base = alloc.alloc_many(size, n)
        image = [0] * (size // 8)
        for c in s["cds"]:
            at = geo.cd_addr(c["ssid"]) // 8
            image[at:at + CD.nwords] = self.cd_words(smmu, self.domains[c["domain"]])
        data = np.tile(np.array(image, dtype="<u8"), n).tobytes()
        pa = vm.ipa_to_pa(base) if nested else base
        if nested and vm.ipa_to_pa(base + len(data) - 1) != pa + len(data) - 1:
            raise ModelError(f"stream {first:#x}: the CD tables at IPA {base:#x} cross "
                             f"the end of {vm.name}'s RAM")
        self.mem.write(pa, data)
        return [base + i * size for i in range(n)]

    def _cd_vm(self, s):
        """The VM a nested stream's CDs live in (that of its stage-1 domains), else None."""
        if s["config"] != "nested":
            return None
        vm = self.domains[s["cds"][0]["domain"]].vm
        if vm is None:
            raise ModelError(f"stream {s['sid']:#x}: a nested stream's CDs live in a VM: give "
                             f"its stage-1 domains a vm")
        return vm

    def _build_cd_table(self, smmu, s, sid) -> int:
        """Allocate and fill the CD table; returns its address (an IPA when nested)."""
        nested = s["config"] == "nested"
        vm = self._cd_vm(dict(s, sid=sid))
        cdmax = s["cd_table"]["s1cdmax"]
        form = sc.CD_FORMATS[s["cd_table"]["format"]]
        pool = self.domains[s["cds"][0]["domain"]].tables
        alloc = pool.alloc if nested else smmu.alloc
        write = (lambda a, words: self.mem.write_words(vm.ipa_to_pa(a), words)) if nested else \
            (lambda a, words: self.mem.write_words(a, words))

        def zero(base, size, entry):
            for i in range(0, size, entry):
                write(base + i, [0] * (entry // 8))

        # The linear table or the level-1 table, zeroed (CDs with V=0 / L1CDs with V=0).
        size = cd_table(0, form, cdmax).table_bytes
        geo = cd_table(alloc.alloc(max(64, size)), form, cdmax)
        zero(geo.base, size, CD.size if not geo.two_level else L1CD.size)
        for c in s["cds"]:
            dom = self.domains[c["domain"]]
            if not geo.in_range(c["ssid"]):
                raise ModelError(f"stream {sid:#x}: SSID {c['ssid']} exceeds S1CDMax {cdmax}")
            if not geo.two_level:
                cd_addr = geo.cd_addr(c["ssid"])
            else:
                l1a = geo.l1_addr(c["ssid"])
                l1 = self.mem.read_u64(vm.ipa_to_pa(l1a) if nested else l1a)
                cd_addr = geo.l2_cd_addr(l1, c["ssid"])
                if cd_addr is None:
                    leaf = alloc.alloc(geo.leaf_bytes)
                    zero(leaf, geo.leaf_bytes, CD.size)
                    l1 = geo.l1cd(leaf)
                    write(l1a, [l1])
                    cd_addr = geo.l2_cd_addr(l1, c["ssid"])
            write(cd_addr, self.cd_words(smmu, dom))
        return geo.base

    @staticmethod
    def cd_words(smmu, dom: Domain) -> list[int]:
        t = dom.tables
        return CD.encode(V=1, AA64=1, T0SZ=t.tsz, TG0=t.tg, IR0=C.CD_IR0_WBRA,
                         OR0=C.CD_OR0_WBRA, SH0=C.CD_SH0_ISH, EPD1=1,
                         IPS=smmu.features.get("OAS", C.SMMU_IDR5_OAS_48bit), R=1, A=1, ASET=0,
                         ASID=dom.asid, TTB0=_TTB0.from_address(t.root), MAIR0=0x0404FF)

    # -- lookups --------------------------------------------------------------------------------
    @staticmethod
    def _named(table: dict, kind: str, name: str):
        try:
            return table[name]
        except KeyError:
            raise ModelError(f"no {kind} named {brief(name)}; have: {listing(table)}") from None

    def smmu(self, name: str | None = None) -> Smmu:
        if name is None:
            if len(self.smmus) == 1:
                return next(iter(self.smmus.values()))
            raise ModelError(f"name an SMMU: {', '.join(self.smmus)}")
        return self._named(self.smmus, "SMMU", name)

    @property
    def iommus(self) -> dict:
        """Every IOMMU by name: the SMMUs and the VT-d units."""
        return {**self.smmus, **self.vtds}

    def vtd(self, name: str) -> VtdUnit:
        return self._named(self.vtds, "VT-d unit", name)

    def domain(self, name: str) -> Domain:
        return self._named(self.domains, "domain", name)

    def device(self, name: str) -> Stream:
        return self._named(self.devices, "device", name)

    def vm(self, name: str) -> Vm:
        return self._named(self.vms, "VM", name)

    # -- the platform around the SMMUs (platform.py) ---------------------------------------------
    @property
    def pci(self):
        return self.platform.pci if self.platform else None

    @property
    def iort(self):
        return self.platform.iort if self.platform else None

    @property
    def its(self) -> dict:
        return self.platform.its if self.platform else {}

    @property
    def iommufd(self):
        """The scenario's iommufd objects (model/vmm.py Vmm: .fd, .objects by name) or None."""
        return self.platform.vmm if self.platform else None

    @property
    def vsmmus(self) -> dict:
        """The VMs' vSMMUs by name (model/vsmmu.py VSmmu)."""
        return self.platform.vsmmus if self.platform else {}

    def vsmmu(self, name: str):
        return self._named(self.vsmmus, "vSMMU", name)

    @property
    def gic(self):
        return self.platform.gic if self.platform else None

    def its_named(self, name: str | None = None):
        if name is None:
            if len(self.its) == 1:
                return next(iter(self.its.values()))
            raise ModelError(f"name an ITS: {', '.join(self.its) or 'this system has none'}")
        return self._named(self.its, "ITS", name)

    def add_domain(self, spec: dict, tables) -> Domain:
        """A translation domain whose tables another model built (an iommufd paging HWPT)."""
        dom = Domain(spec, tables, None)
        self.domains[spec["name"]] = dom
        return dom

    def dma_write(self, pa: int, data: bytes, device_id: int | None = None):
        """A device's write at physical pa, carrying the DeviceID the IORT gives it (a doorbell
        write needs it); returns the ItsTranslation when it rang an ITS doorbell."""
        return self.platform.dma_write(pa, data, device_id)
