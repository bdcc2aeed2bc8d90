"""IORT (Arm DEN 0049) nodes and ID mappings, resolved the way Linux does it.

Nodes: ITS groups, named components, root complexes, SMMUv3, RMR. An ID mapping is the table's
(input base, number of IDs minus one, output base, output reference, single-mapping flag).
Resolution follows drivers/acpi/arm64/iort.c:
- iort_id_map(): a range matches input_base <= id <= input_base + count (inclusive); a single
  mapping (allowed on root complexes and named components only) ignores the input ID; a match on
  the last ID of a range is provisional (-EAGAIN) so that a range starting at that ID can win,
  the workaround for firmware that wrote the number of IDs instead of the count minus one.
- iort_node_map_id(): at each node the first matching mapping wins; an SMMUv3 node skips its
  DeviceID mapping (the SMMU's own MSIs); the walk stops at the first node of the wanted type
  (an SMMU for the StreamID, an ITS group for the DeviceID). On failure Linux's
  iort_msi_map_id() returns the input ID unchanged.
- RMRs: iort_node_get_rmr_info() / iort_get_rmrs(), honoured only for IORT revision >= 5 and, for
  PCI devices, only when the host bridge preserves the boot configuration (_DSM function 5).

`explain(rid)` gives the typed step list RID -> StreamID -> DeviceID; `check()` the consistency
findings, each with its fix. Specs: see docs/pci-iort.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..errors import ModelError, ScenarioError
from .pci import (PciTopology, rid_str, spec_bool, spec_int, spec_known, spec_list, spec_name,
                  spec_table)

# Node type numbers of the IORT (DEN 0049 table 3); used for display and to_spec ordering.
NODE_TYPES = {"its_group": 0, "named_component": 1, "root_complex": 2, "smmuv3": 4, "rmr": 6}
# What an ID mapping of each node type may point at.
OUTPUTS = {"root_complex": ("smmuv3", "its_group"), "named_component": ("smmuv3", "its_group"),
           "smmuv3": ("its_group",), "rmr": ("smmuv3",), "its_group": ()}
# Nodes whose mappings may carry the single-mapping flag in iort_id_map().
SINGLE_OK = ("root_complex", "named_component")
RMR_ATTRS = {0: "Device-nGnRnE", 1: "Device-nGnRE", 2: "Device-nGRE", 3: "Device-GRE",
             4: "Normal-NC", 5: "Normal-IWB-OWB"}
U32 = 0xFFFFFFFF


@dataclass(frozen=True)
class IdMapping:
    input_base: int
    count: int          # as in the table: the number of IDs minus one
    output_base: int
    output: str         # output reference (a node name)
    single: bool = False

    @property
    def input_last(self):
        return self.input_base + self.count

    def describe(self):
        if self.single:
            return f"single -> {self.output} ID {self.output_base:#x}"
        return (f"{self.input_base:#x}..{self.input_last:#x} -> {self.output} "
                f"{self.output_base:#x}..{self.output_base + self.count:#x}")


@dataclass
class IortNode:
    name: str
    mappings: tuple = ()
    TYPE = ""

    @property
    def type(self):
        return self.TYPE


@dataclass
class ItsGroup(IortNode):
    its_ids: tuple = ()
    TYPE = "its_group"


@dataclass
class RootComplex(IortNode):
    segment: int = 0
    ats: bool = False
    preserve_config: bool = False   # host bridge _DSM #5 (DSDT): needed for RMRs on PCI devices
    TYPE = "root_complex"


@dataclass
class SmmuV3(IortNode):
    base: int = 0
    deviceid_mapping: int | None = None   # index of the SMMU's own MSI DeviceID mapping
    TYPE = "smmuv3"


@dataclass(frozen=True)
class RmrRange:
    base: int
    length: int


@dataclass
class Rmr(IortNode):
    flags: int = 0
    ranges: tuple = ()
    TYPE = "rmr"

    @property
    def remap_permitted(self):
        return bool(self.flags & 1)

    @property
    def privileged(self):
        return bool(self.flags & 2)

    @property
    def access_attributes(self):
        return (self.flags >> 2) & 0xFF


@dataclass
class NamedComponent(IortNode):
    device_name: str = ""
    TYPE = "named_component"


NODE_CLASSES = {c.TYPE: c for c in (ItsGroup, NamedComponent, RootComplex, SmmuV3, Rmr)}


# --- results ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class IortStep:
    """One node of an ID translation: the mapping used, the ID in and out, or why it failed."""
    node: str
    node_type: str
    input_id: int
    mapping_index: int | None = None
    mapping: IdMapping | None = None
    output_id: int | None = None
    output_node: str | None = None
    note: str = ""
    failure: str | None = None
    fix: str | None = None


@dataclass(frozen=True)
class IortPath:
    """RID -> StreamID -> DeviceID for one requester ID of one segment."""
    segment: int
    rid: int
    root_complex: str | None
    steps: tuple
    smmu: str | None = None          # the SMMU the RID reaches (None: bypasses any SMMU)
    stream_id: int | None = None
    its_group: str | None = None
    device_id: int | None = None
    failure: str | None = None
    fix: str | None = None

    @property
    def ok(self):
        return self.failure is None

    @property
    def linux_msi_id(self):
        """What iort_msi_map_id() returns: the DeviceID, or the input ID when mapping fails."""
        return self.device_id if self.device_id is not None else self.rid


@dataclass(frozen=True)
class AliasStream:
    """One DMA alias of a PCI device and the StreamID it gets (iort_pci_iommu_init)."""
    rid: int
    reason: str
    smmu: str | None
    stream_id: int | None
    failure: str | None = None


@dataclass(frozen=True)
class DevicePath:
    """A PCI device: each DMA alias -> StreamID, and its MSI RID -> DeviceID."""
    device: str
    bdf: str
    segment: int
    aliases: tuple                  # AliasStream, in pci_for_each_dma_alias order
    msi_rid: int
    msi: IortPath
    failure: str | None = None
    fix: str | None = None

    @property
    def stream_ids(self):
        return tuple(a.stream_id for a in self.aliases if a.stream_id is not None)


@dataclass(frozen=True)
class RmrRegion:
    """A reserved region Linux creates from an RMR for an SMMU's StreamIDs."""
    rmr: str
    base: int
    length: int
    type: str               # "direct" or "direct-relaxable" (IOMMU_RESV_DIRECT[_RELAXABLE])
    prot: tuple             # ("read", "write", "priv"?, "mmio"|"cache"?)
    stream_ids: tuple       # (first, last) inclusive pairs
    note: str = ""


@dataclass(frozen=True)
class Finding:
    severity: str           # "error" or "warning"
    node: str
    message: str
    fix: str


# --- the table --------------------------------------------------------------------------------

def id_map(m: IdMapping, node_type, rid_in, check_overlap):
    """iort_id_map(): returns (status, output) with status "ok", "last" (-EAGAIN, provisional),
    "miss", "single-not-allowed" or "overlap-dropped"."""
    if m.single:
        if node_type in SINGLE_OK:
            return "ok", m.output_base
        return "single-not-allowed", None
    if rid_in < m.input_base or rid_in > m.input_last:
        return "miss", None
    if check_overlap and rid_in != m.input_base:
        return "overlap-dropped", None
    out = m.output_base + (rid_in - m.input_base)
    if m.count > 0 and rid_in == m.input_last:
        return "last", out
    return "ok", out


@dataclass
class Iort:
    nodes: dict = field(default_factory=dict)   # name -> node, in table order
    revision: int = 5

    def node(self, name):
        try:
            return self.nodes[name]
        except KeyError:
            raise ModelError(f"iort: no node named {name!r}") from None

    def of_type(self, t):
        return [n for n in self.nodes.values() if n.type == t]

    def root_complex(self, segment):
        """The first root complex node for a segment (iort_scan_node + iort_match_node_callback)."""
        for n in self.of_type("root_complex"):
            if n.segment == segment:
                return n
        return None

    # --- resolution -----------------------------------------------------------------------
    def _map_node(self, node, id_in):
        """One node of iort_node_map_id(): the step taken there."""
        t = node.type
        if not node.mappings:
            return IortStep(node.name, t, id_in, failure=f"{node.name} has no ID mappings",
                            fix=f"give {node.name} an ID mapping covering {id_in:#x}")
        special = node.deviceid_mapping if isinstance(node, SmmuV3) else None
        notes, out_ref, out_id, last_i, chosen, out = [], None, None, None, None, None
        for i, m in enumerate(node.mappings):
            if i == special:
                continue        # the SMMU's own MSI mapping is never used for translation
            st, o = id_map(m, t, id_in, out_ref is not None)
            if st == "ok":
                chosen, out = i, o
                break
            if st == "last":
                out_ref, out_id, last_i = m.output, o, i
                notes.append(f"ID {id_in:#x} is the last ID of mapping {i}; Linux keeps it only "
                             f"if no later mapping starts there (-EAGAIN workaround)")
            elif st == "single-not-allowed":
                notes.append(f"mapping {i} has the single-mapping flag, which Linux ignores on "
                             f"a {t} node (FW_BUG, mapping skipped)")
            elif st == "overlap-dropped":
                notes.append(f"mapping {i} also covers {id_in:#x} but does not start there: "
                             f"Linux disregards it")
        if chosen is not None:
            m = node.mappings[chosen]
            if last_i is not None:
                notes.append(f"mapping {chosen} starts at {id_in:#x} and supersedes mapping "
                             f"{last_i} (firmware off-by-one workaround)")
            later = [j for j, n in enumerate(node.mappings) if j > chosen and j != special
                     and not n.single and n.input_base <= id_in <= n.input_last]
            if later and not m.single:
                notes.append(f"mapping(s) {', '.join(map(str, later))} also cover {id_in:#x}: "
                             f"Linux takes the first match, mapping {chosen}")
            if m.single:
                notes.append("single mapping: the input ID is ignored")
        elif out_ref is not None:
            chosen, out, m = last_i, out_id, node.mappings[last_i]
        else:
            return IortStep(node.name, t, id_in, note="; ".join(notes),
                            failure=f"no ID mapping of {node.name} covers {id_in:#x}",
                            fix=f"add a mapping to {node.name} whose input range covers {id_in:#x} "
                                f"(count = number of IDs - 1)")
        if m.output not in self.nodes:
            return IortStep(node.name, t, id_in, chosen, m, out, m.output, "; ".join(notes),
                            failure=f"mapping {chosen} of {node.name} points to a missing node "
                                    f"{m.output!r}",
                            fix=f"point mapping {chosen} of {node.name} at an existing "
                                f"{' or '.join(OUTPUTS[t])} node")
        return IortStep(node.name, t, id_in, chosen, m, out, m.output, "; ".join(notes))

    def explain(self, rid, segment=0) -> IortPath:
        """RID -> (root complex) -> SMMU StreamID -> (SMMU) -> ITS group DeviceID, one step per
        node. The StreamID is the ID on reaching the first SMMU node (IORT_IOMMU_TYPE walk); the
        DeviceID the ID on reaching an ITS group (IORT_MSI_TYPE walk, through the SMMU)."""
        if not 0 <= rid <= U32:
            raise ModelError(f"iort: RID {rid:#x} is not a 32-bit ID")
        rc = self.root_complex(segment)
        if rc is None:
            return IortPath(segment, rid, None, (), failure=f"no root complex node for segment "
                            f"{segment}", fix=f"add a root_complex node with segment = {segment}")
        return self._walk(rc, rid, segment)

    def explain_from(self, node_name, input_id) -> IortPath:
        """The same walk from any node (a named component, an SMMU for a StreamID)."""
        return self._walk(self.node(node_name), input_id, None)

    def _walk(self, start, id_in, segment):
        # OUTPUTS only allows RC/NC -> SMMU -> ITS and RMR -> SMMU, so the walk cannot loop.
        steps, node, cur = [], start, id_in
        smmu = sid = None
        while True:
            if node.type == "smmuv3" and smmu is None:
                smmu, sid = node.name, cur
            if node.type == "its_group":
                steps.append(IortStep(node.name, node.type, cur,
                                      note=f"DeviceID {cur:#x} at ITS {list(node.its_ids)}"))
                rc = start.name if start.type == "root_complex" else None
                return IortPath(segment, id_in, rc, tuple(steps), smmu, sid, node.name, cur)
            step = self._map_node(node, cur)
            if step.failure is None and step.output_node is not None:
                nxt = self.nodes[step.output_node]
                if nxt.type not in OUTPUTS[node.type]:
                    step = replace(step, failure=f"mapping {step.mapping_index} of {node.name} "
                                                 f"points to {nxt.name}, a {nxt.type} node",
                                   fix=f"a {node.type} maps to "
                                       f"{' or '.join(OUTPUTS[node.type]) or 'nothing'}")
            steps.append(step)
            if step.failure:
                return self._failed(segment, id_in, start, steps, smmu, sid, step.failure, step.fix)
            node, cur = self.nodes[step.output_node], step.output_id

    def _failed(self, segment, id_in, start, steps, smmu, sid, failure, fix):
        if smmu is not None:
            failure += (f" (the StreamID {sid:#x} at {smmu} stands; the MSI DeviceID falls back "
                        f"to the input ID {id_in:#x}, as iort_msi_map_id() does)")
        return IortPath(segment, id_in, start.name if start.type == "root_complex" else None,
                        tuple(steps), smmu, sid, None, None, failure, fix)

    def explain_device(self, topo: PciTopology, name) -> DevicePath:
        """A PCI device's StreamIDs (one per DMA alias, iort_pci_iommu_init) and the DeviceID of
        its MSI RID (pci_msi_domain_get_msi_rid -> iort_msi_map_id)."""
        d = topo.node(name)
        out, smmus = [], set()
        for a in topo.dma_aliases(name):
            p = self.explain(a.rid, d.segment)
            smmus.update([p.smmu] if p.smmu else [])
            # smmu None without a failure: the RID goes straight to an ITS (no SMMU)
            fail = p.failure if p.smmu is None else None
            out.append(AliasStream(a.rid, a.reason, p.smmu, p.stream_id, fail))
        msi_rid = topo.msi_rid(name)
        msi = self.explain(msi_rid, d.segment)
        failure = fix = None
        lost = [a for a in out if a.smmu is None]
        if smmus and lost:
            failure = (f"alias {rid_str(lost[0].rid)} of {name} reaches no SMMU while others do: "
                       f"iort_pci_iommu_init() returns -ENODEV there, pci_for_each_dma_alias() "
                       f"stops and the device gets no IOMMU")
            fix = "map every alias of the device to the same SMMU in the root complex node"
        elif len(smmus) > 1:
            failure = (f"the aliases of {name} reach several SMMUs ({', '.join(sorted(smmus))}): "
                       f"iommu_fwspec_init() refuses a second IOMMU (-EINVAL)")
            fix = "map all of the device's aliases to one SMMU in the root complex node"
        elif msi.failure:
            failure, fix = msi.failure, msi.fix
        return DevicePath(name, topo.bdf(name), d.segment, tuple(out), msi_rid, msi, failure, fix)

    def rmr_regions(self, smmu, stream_ids=None, pci_device=False, preserve_config=True):
        """The reserved regions Linux builds for an SMMU (iort_find_rmrs): every RMR with an ID
        mapping to that SMMU, optionally only those covering one of `stream_ids` (a device).
        None for IORT revision < 5, or for a PCI device whose host bridge does not preserve the
        boot configuration (iort_rmr_has_dev)."""
        if self.revision < 5 or (pci_device and not preserve_config):
            return ()
        out = []
        for r in self.of_type("rmr"):
            if not r.mappings or not r.ranges:
                continue
            sids = []
            for m in r.mappings:
                if m.output != smmu:
                    continue
                # Linux compares with output_base..output_base + count inclusive
                if stream_ids is not None and not any(
                        m.output_base <= s <= m.output_base + m.count for s in stream_ids):
                    continue
                sids.append((m.output_base, m.output_base + m.count))
            if not sids:
                continue
            prot = ["read", "write"] + (["priv"] if r.privileged else [])
            if r.access_attributes <= 3:
                prot.append("mmio")
            elif r.access_attributes == 5:
                prot.append("cache")
            for rg in r.ranges:
                base, length, note = rg.base, rg.length, ""
                if base % 0x10000 or length % 0x10000:
                    # Linux page-aligns (4 KiB pages assumed here) and warns FW_BUG
                    off = base & 0xFFF
                    base, length = base - off, (length + off + 0xFFF) & ~0xFFF
                    note = "not 64 KiB aligned: Linux page-aligns it (FW_BUG)"
                out.append(RmrRegion(r.name, base, length,
                                     "direct-relaxable" if r.remap_permitted else "direct",
                                     tuple(prot), tuple(sids), note))
        return tuple(out)

    # --- consistency ----------------------------------------------------------------------
    def check(self, topo: PciTopology | None = None) -> list:
        """Findings: dangling or ill-typed references, single-mapping misuse, overlapping and
        off-by-one ranges, StreamIDs no SMMU mapping carries on, RMR problems, and with a PCI
        topology every device RID no root complex mapping covers. Each with its fix."""
        out = []
        F = lambda sev, node, msg, fix: out.append(Finding(sev, node, msg, fix))  # noqa: E731
        segs = {}
        for n in self.nodes.values():
            if n.type == "its_group":
                if not n.its_ids:
                    F("error", n.name, "ITS group lists no ITS IDs", "add the ITS IDs (its_ids)")
            if n.type == "root_complex":
                if n.segment in segs:
                    F("warning", n.name, f"segment {n.segment} already has root complex "
                      f"{segs[n.segment]}; Linux uses the first and never this one",
                      "give each segment one root complex node")
                segs.setdefault(n.segment, n.name)
            special = n.deviceid_mapping if isinstance(n, SmmuV3) else None
            if special is not None:
                if special >= len(n.mappings):
                    F("error", n.name, f"DeviceID mapping index {special} is beyond its "
                      f"{len(n.mappings)} mappings",
                      "point deviceid_mapping at an existing mapping")
                else:
                    m = n.mappings[special]
                    tgt = self.nodes.get(m.output)
                    if not m.single or tgt is None or tgt.type != "its_group":
                        F("error", n.name, f"DeviceID mapping {special} must be a single mapping "
                          f"to an ITS group (iort_set_device_domain: Invalid MSI mapping)",
                          f"make mapping {special} single = true with output = an ITS group")
            regular = []
            for i, m in enumerate(n.mappings):
                tgt = self.nodes.get(m.output)
                if tgt is None:
                    F("error", n.name, f"mapping {i} points to a missing node {m.output!r}",
                      f"point it at an existing {' or '.join(OUTPUTS[n.type])} node")
                elif tgt.type not in OUTPUTS[n.type] and i != special:
                    F("error", n.name, f"mapping {i} points to {tgt.name}, a {tgt.type} node",
                      f"a {n.type} maps to {' or '.join(OUTPUTS[n.type]) or 'nothing'}")
                if i == special or n.type == "rmr":
                    continue    # RMR mappings are read as StreamID ranges, never walked
                if m.single and n.type not in SINGLE_OK:
                    F("error", n.name, f"mapping {i} has the single-mapping flag: Linux skips "
                      f"it on a {n.type} node", "clear single, give an input range")
                    continue
                regular.append((i, m))
            for k, (i, a) in enumerate(regular):
                if a.single:
                    rest = [j for j, _ in regular[k + 1:]]
                    if rest:
                        F("warning", n.name, f"mapping {i} is a single mapping: it matches every "
                          f"input ID, so mapping(s) {', '.join(map(str, rest))} are never used",
                          f"drop the single flag of mapping {i} or the later mappings")
                    break
                for j, b in regular[k + 1:]:
                    if b.single or b.input_base > a.input_last or a.input_base > b.input_last:
                        continue
                    if b.input_base == a.input_last:
                        F("warning", n.name, f"mapping {i} ends at {a.input_last:#x} where mapping "
                          f"{j} starts: its count looks like the number of IDs; Linux lets mapping "
                          f"{j} take that ID (workaround, FW_BUG logged)",
                          f"set mapping {i} count to {a.count - 1:#x} (number of IDs - 1)")
                    else:
                        lo, hi = max(a.input_base, b.input_base), min(a.input_last, b.input_last)
                        F("error", n.name, f"mappings {i} and {j} both cover {lo:#x}..{hi:#x}: "
                          f"Linux takes the first match (mapping {i})",
                          "make the input ranges disjoint")
        self._check_smmu_coverage(F)
        self._check_rmrs(F)
        if topo is not None:
            self._check_topology(topo, F)
        return out

    def _check_smmu_coverage(self, F):
        for rc in self.nodes.values():
            if rc.type not in ("root_complex", "named_component"):
                continue
            for i, m in enumerate(rc.mappings):
                smmu = self.nodes.get(m.output)
                if smmu is None or smmu.type != "smmuv3" or not self.of_type("its_group"):
                    continue
                first = m.output_base
                last = m.output_base + (0 if m.single else m.count)
                gaps = _uncovered(first, last, [x for k, x in enumerate(smmu.mappings)
                                                if k != smmu.deviceid_mapping and not x.single])
                for lo, hi in gaps[:1]:
                    F("warning", smmu.name, f"StreamIDs {lo:#x}..{hi:#x} arrive from {rc.name} "
                      f"(mapping {i}) but no {smmu.name} mapping takes them to an ITS group: MSIs "
                      f"get the input ID as DeviceID", f"add a {smmu.name} mapping covering "
                      f"{lo:#x}..{hi:#x} to an ITS group")

    def _check_rmrs(self, F):
        rmrs = self.of_type("rmr")
        if rmrs and self.revision < 5:
            F("warning", rmrs[0].name, f"IORT revision {self.revision}: Linux reads RMR nodes "
              f"only from revision 5 (E.d) on", "set revision = 5")
        for r in rmrs:
            if not r.mappings:
                F("error", r.name, "RMR has no ID mapping: Linux skips the node",
                  "add a mapping to the SMMU whose StreamIDs need the range")
            if not r.ranges:
                F("error", r.name, "RMR has no memory range", "add a range (base, length)")
            for k, g in enumerate(r.ranges):
                if g.length == 0:
                    F("error", r.name, f"range {k} has length 0", "give the length in bytes")
                elif g.base % 0x10000 or g.length % 0x10000:
                    F("warning", r.name, f"range {k} {g.base:#x}+{g.length:#x} is not 64 KiB "
                      f"aligned: Linux page-aligns it (FW_BUG)", "align base and length to 64 KiB")
                for h in r.ranges[k + 1:]:
                    if (g.length and h.length and g.base < h.base + h.length
                            and h.base < g.base + g.length):
                        F("warning", r.name, f"ranges {g.base:#x}+{g.length:#x} and "
                          f"{h.base:#x}+{h.length:#x} overlap", "merge them")
            if r.access_attributes > 5:
                F("error", r.name, f"access attributes {r.access_attributes:#x} are reserved",
                  "use 0..5 (flags bits [9:2])")

    def _check_topology(self, topo, F):
        rcs_seen = set()
        for d in topo.devices.values():
            if d.is_bridge:
                continue
            rc = self.root_complex(d.segment)
            if rc is None:
                if d.segment not in rcs_seen:
                    F("error", f"segment {d.segment}", f"PCI device {d.name} is on segment "
                      f"{d.segment}, which has no root complex node",
                      f"add a root_complex node with segment = {d.segment}")
                rcs_seen.add(d.segment)
                continue
            p = self.explain_device(topo, d.name)
            for a in p.aliases:
                ex = self.explain(a.rid, d.segment)
                if ex.steps and ex.steps[0].failure:
                    F("error", rc.name, f"RID {rid_str(a.rid)} of {d.name} ({a.reason}): "
                      f"{ex.steps[0].failure}", ex.steps[0].fix)
            if p.failure and ("several SMMUs" in p.failure or "reaches no SMMU" in p.failure):
                F("error", rc.name, p.failure, p.fix)
            if d.msi or d.msix:
                if p.msi.device_id is None and not (p.msi.steps and p.msi.steps[0].failure):
                    F("error", d.name, f"MSIs of {d.name} find no ITS group: {p.msi.failure}",
                      p.msi.fix or "map its StreamID to an ITS group")
            for r in self.of_type("rmr"):
                sids = [a.stream_id for a in p.aliases if a.stream_id is not None]
                smmus = {a.smmu for a in p.aliases if a.smmu}
                for s in smmus:
                    hit = [m for m in r.mappings if m.output == s and
                           any(m.output_base <= x <= m.output_base + m.count for x in sids)]
                    if hit and not rc.preserve_config:
                        F("warning", rc.name, f"RMR {r.name} covers {d.name}'s StreamID but "
                          f"{rc.name}'s host bridge does not preserve the boot configuration: "
                          f"Linux ignores the RMR for PCI devices (iort_rmr_has_dev)",
                          f"set preserve_config = true on {rc.name} (host bridge _DSM #5)")
        for h in topo.hosts.values():
            rc = self.root_complex(h.segment)
            if rc is None:
                continue
            lo, hi = topo.used_bus_range(h.name)
            regular = [m for m in rc.mappings if not m.single]
            if any(m.single for m in rc.mappings):
                continue
            for a, b in _uncovered(lo << 8, (hi << 8) | 0xFF, regular)[:1]:
                F("warning", rc.name, f"RIDs {rid_str(a)}..{rid_str(b)} of host bridge {h.name} "
                  f"(buses {lo:#x}..{hi:#x}) have no ID mapping",
                  f"add a {rc.name} mapping covering {a:#x}..{b:#x}")

    # --- spec -----------------------------------------------------------------------------
    @classmethod
    def from_spec(cls, spec) -> "Iort":
        return _build(spec)

    def to_spec(self) -> dict:
        out = {"revision": self.revision} if self.revision != 5 else {}
        for n in self.nodes.values():
            t = {"name": n.name}
            if n.type == "its_group":
                t["its_ids"] = list(n.its_ids)
            elif n.type == "root_complex":
                t["segment"] = n.segment
                if n.ats:
                    t["ats"] = True
                if n.preserve_config:
                    t["preserve_config"] = True
            elif n.type == "smmuv3":
                t["base"] = n.base
                if n.deviceid_mapping is not None:
                    t["deviceid_mapping"] = n.deviceid_mapping
            elif n.type == "rmr":
                t["flags"] = n.flags
                t["ranges"] = [{"base": g.base, "length": g.length} for g in n.ranges]
            elif n.type == "named_component":
                t["device_name"] = n.device_name
            if n.type != "its_group":
                t["id_mappings"] = [_mapping_spec(m) for m in n.mappings]
            out.setdefault(n.type, []).append(t)
        return out


def _mapping_spec(m):
    t = {"input_base": m.input_base, "count": m.count, "output_base": m.output_base,
         "output": m.output}
    if m.single:
        t["single"] = True
    return t


def _uncovered(first, last, mappings):
    """Sub-ranges of [first, last] that no mapping's inclusive input range covers."""
    gaps, cur = [], first
    for m in sorted(mappings, key=lambda m: m.input_base):
        if m.input_last < cur:
            continue
        if m.input_base > last:
            break
        if m.input_base > cur:
            gaps.append((cur, m.input_base - 1))
        cur = max(cur, m.input_last + 1)
        if cur > last:
            return gaps
    if cur <= last:
        gaps.append((cur, last))
    return gaps


def _read_mappings(where, value, node_type):
    out = []
    for i, m in enumerate(spec_list(where, value)):
        w = f"{where}[{i}]"
        m = spec_table(w, m)
        spec_known(w, m, ("input_base", "count", "output_base", "output", "single"))
        single = spec_bool(f"{w}.single", m.get("single", False))
        need = ("output_base", "output") if single else ("input_base", "count", "output_base",
                                                         "output")
        for k in need:
            if k not in m:
                raise ScenarioError(f"{w}.{k}: missing (count is the number of IDs minus one)"
                                    if k == "count" else f"{w}.{k}: missing")
        ib = spec_int(f"{w}.input_base", m.get("input_base", 0), 0, U32)
        cnt = spec_int(f"{w}.count", m.get("count", 0), 0, U32)
        ob = spec_int(f"{w}.output_base", m["output_base"], 0, U32)
        if not single and (ib + cnt > U32 or ob + cnt > U32):
            raise ScenarioError(f"{w}: the range {ib:#x}+{cnt:#x} or {ob:#x}+{cnt:#x} "
                                f"passes 32 bits")
        if not isinstance(m["output"], str) or not m["output"]:
            raise ScenarioError(f"{w}.output: expected a node name")
        out.append(IdMapping(ib, cnt, ob, m["output"], single))
    return tuple(out)


def _build(spec) -> Iort:
    spec = spec_table("iort", spec)
    spec_known("iort", spec, ("revision", *NODE_TYPES))
    iort = Iort(revision=spec_int("iort.revision", spec.get("revision", 5), 0, 255))
    names = set()
    keys = {"its_group": ("name", "its_ids"),
            "root_complex": ("name", "segment", "ats", "preserve_config", "id_mappings"),
            "smmuv3": ("name", "base", "deviceid_mapping", "id_mappings"),
            "rmr": ("name", "flags", "ranges", "id_mappings"),
            "named_component": ("name", "device_name", "id_mappings")}
    for t in NODE_TYPES:
        for i, n in enumerate(spec_list(f"iort.{t}", spec.get(t))):
            w = f"iort.{t}[{i}]"
            n = spec_table(w, n)
            spec_known(w, n, keys[t])
            name = spec_name(w, n, names)
            w = f"iort.{t}[{name}]"
            maps = _read_mappings(f"{w}.id_mappings", n.get("id_mappings"), t)
            if t == "its_group":
                ids = tuple(spec_int(f"{w}.its_ids[{k}]", x, 0, U32)
                            for k, x in enumerate(spec_list(f"{w}.its_ids", n.get("its_ids"))))
                node = ItsGroup(name, (), ids)
            elif t == "root_complex":
                node = RootComplex(
                    name, maps, spec_int(f"{w}.segment", n.get("segment", 0), 0, U32),
                    spec_bool(f"{w}.ats", n.get("ats", False)),
                    spec_bool(f"{w}.preserve_config", n.get("preserve_config", False)))
            elif t == "smmuv3":
                if "base" not in n:
                    raise ScenarioError(f"{w}.base: missing (the SMMU's register base address)")
                dm = n.get("deviceid_mapping")
                node = SmmuV3(name, maps, spec_int(f"{w}.base", n["base"], 0, (1 << 64) - 1),
                              None if dm is None else spec_int(f"{w}.deviceid_mapping", dm, 0,
                                                               max(len(maps) - 1, 0)))
            elif t == "rmr":
                rs = []
                for k, g in enumerate(spec_list(f"{w}.ranges", n.get("ranges"))):
                    wg = f"{w}.ranges[{k}]"
                    g = spec_table(wg, g)
                    spec_known(wg, g, ("base", "length"))
                    if "base" not in g or "length" not in g:
                        raise ScenarioError(f"{wg}: needs base and length")
                    rs.append(RmrRange(spec_int(f"{wg}.base", g["base"], 0, (1 << 64) - 1),
                                       spec_int(f"{wg}.length", g["length"], 0, (1 << 64) - 1)))
                node = Rmr(name, maps, spec_int(f"{w}.flags", n.get("flags", 0), 0, U32), tuple(rs))
            else:
                node = NamedComponent(name, maps, str(n.get("device_name", "")))
            iort.nodes[name] = node
    return iort


# --- QEMU virt layout -------------------------------------------------------------------------

MSI_IOVA_BASE, MSI_IOVA_LENGTH = 0x8000000, 0x100000   # Linux arm-smmu-v3.h SW_MSI window


def qemu_virt_iort(topo: PciTopology, smmus, legacy_count=False) -> Iort:
    """The IORT QEMU's virt machine builds (hw/arm/virt-acpi-build.c build_iort) for a PCI
    topology. `smmus`: [{"name", "base", "buses": [host bridge names], "accel": bool}].
    - one ITS group first, ITS ID 0;
    - each SMMUv3: one mapping, SIDs 0..0xffff identity to the ITS group;
    - the root complex: per SMMU and host bridge, RIDs min_bus << 8 .. (max_bus + 1) << 8 - 1
      identity to that SMMU (bus range as pci_bus_range(): the root bus to the highest
      subordinate), then the RIDs left over identity to the ITS group;
    - per accel SMMU an RMR: flags 0 (no remapping), the SW_MSI window, one mapping (flag 1)
      over the SMMU's first RID range; preserve_config and ATS on the root complex.
    legacy_count=True writes the number of IDs instead of the number minus one, as QEMU did
    before its ID-count fix (Linux copes through its -EAGAIN workaround)."""
    dec = 0 if legacy_count else 1
    iort = Iort()
    its = ItsGroup("its", (), (0,))
    iort.nodes["its"] = its
    accel = any(s.get("accel") for s in smmus)
    rc_maps, taken, rmrs = [], [], []
    for s in smmus:
        ranges = []
        for hb in s["buses"]:
            if hb not in topo.hosts:
                raise ModelError(f"iort: SMMU {s['name']}: no host bridge named {hb!r}")
            lo, hi = topo.used_bus_range(hb)
            ranges.append((lo << 8, (hi - lo + 1) << 8))
        ranges.sort()
        iort.nodes[s["name"]] = SmmuV3(s["name"], (IdMapping(0, 0x10000 - dec, 0, "its"),),
                                       s.get("base", 0))
        for base, n in ranges:
            rc_maps.append(IdMapping(base, n - dec, base, s["name"]))
            taken.append((base, n))
        if s.get("accel") and ranges:
            base, n = ranges[0]
            rmrs.append(Rmr(f"rmr.{s['name']}", (IdMapping(base, n - dec, base, s["name"], True),),
                            0, (RmrRange(MSI_IOVA_BASE, MSI_IOVA_LENGTH),)))
    nxt = 0
    for base, n in sorted(taken):
        if base > nxt:
            rc_maps.append(IdMapping(nxt, base - nxt - dec, nxt, "its"))
        nxt = max(nxt, base + n)
    if nxt < 0x10000:
        rc_maps.append(IdMapping(nxt, 0x10000 - nxt - dec, nxt, "its"))
    iort.nodes["rc"] = RootComplex("rc", tuple(rc_maps), 0, accel, accel)
    for r in rmrs:
        iort.nodes[r.name] = r
    return iort
