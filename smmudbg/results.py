"""Typed results: what every command returns, one dataclass per result kind.

The REPL renderer (render.py), `smmudbg run --json`, `expect` paths, session logs and the
coming Textual UI all read these objects. Each has a stable JSON form:

    result.to_json() == {"kind": KIND, FIELD: VALUE, ..., "message": TEXT (only when set)}
    Result.from_json(result.to_json()) == result

Fields are JSON data: ints, strings, bools, null, lists and objects. Addresses, words and
register values are integers (renderers print them in hex); counts and levels are integers
printed in decimal. Nested rows are objects whose keys each class documents. A field named
`from_` is written as "from" in JSON (the `json` key of its metadata).

A new kind: subclass Result with `kind = "name"` and typed fields; it registers itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

KINDS: dict[str, type["Result"]] = {}


@dataclass(kw_only=True)
class Result:
    """Base of every result. `message`: an optional one-line summary for text front ends."""
    kind: ClassVar[str] = ""
    _json_keys: ClassVar[list | None] = None
    message: str | None = None

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.kind:
            if cls.kind in KINDS and KINDS[cls.kind] is not cls:
                raise AssertionError(f"result kind {cls.kind!r} declared twice")
            KINDS[cls.kind] = cls

    @classmethod
    def _keys(cls):
        keys = cls.__dict__.get("_json_keys")
        if keys is None:        # once per class: to_json runs for every command
            keys = [(f.name, f.metadata.get("json", f.name)) for f in fields(cls)
                    if f.name != "message"]
            cls._json_keys = keys
        return keys

    def to_json(self) -> dict:
        out: dict[str, Any] = {"kind": self.kind}
        for name, key in self._keys():
            out[key] = getattr(self, name)
        if self.message is not None:
            out["message"] = self.message
        return out

    @property
    def data(self) -> dict:
        """The fields as a dict (the JSON form without kind and message)."""
        d = self.to_json()
        d.pop("kind")
        d.pop("message", None)
        return d

    @staticmethod
    def from_json(d: dict) -> "Result":
        """The Result a to_json() dict stands for (ValueError on an unknown kind or keys)."""
        cls = KINDS.get(d.get("kind"))
        if cls is None:
            raise ValueError(f"unknown result kind {d.get('kind')!r}")
        keys = dict((k, n) for n, k in cls._keys())
        extra = set(d) - set(keys) - {"kind", "message"}
        if extra:
            raise ValueError(f"result kind {cls.kind!r} has no field {sorted(extra)[0]!r}")
        kw = {keys[k]: v for k, v in d.items() if k in keys}
        return cls(message=d.get("message"), **kw)


# ---------------------------------------------------------------------------------------------
# walk
# ---------------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class Walk(Result):
    """One transaction through the SMMU (`walk`).

    pa: output address or null; ipa: the intermediate address of a nested walk or null;
    perm: permissions of the translation; hit: served by the IOTLB; dry: inspected without
    filling caches or recording an event; event: index of the event record or null.
    fault: null, or {type (F_TRANSLATION, C_BAD_STE, ...), s2, class (CD/TT/IN), ipa
    (address), fetch_addr (address), input_addr, rnw, ind, pnu, reason, record, stall, ...}.
    steps: [{what, purpose, stage, level (decimal), table, index, desc_ipa, desc_pa, desc,
    outcome}]. explanation: null, or why the fault happened (model/explain.py): {text, rule,
    stage, level, descriptor, descriptor_pa, fields, change}."""
    kind = "walk"
    smmu: str
    sid: int
    device: str | None
    ssid: int | None
    address: int
    access: str
    priv: bool
    pa: int | None
    ipa: int | None
    perm: str | None
    hit: bool
    fault: dict | None
    event: int | None
    steps: list
    dry: bool = False
    explanation: dict | None = None


@dataclass(kw_only=True)
class VtdWalk(Result):
    """One DMA request through an Intel VT-d unit (`walk` on a VT-d device or unit).

    unit, rid (requester ID), device, pasid (the request's; null: without PASID), address,
    access, priv; outcome: translated, fault, not_remapped, interrupt (a write without PASID to
    0xFEEx_xxxx), blocked; pa, gpa (nested: the first-stage output), size, perm, pgtt, did,
    pasid_used (the request's PASID or RID_PASID), snoop. fault: null, or {reason (the FRCD_REG
    FR code), name (SCT_6, SFS_2, ...), meaning, fi, sid, pasid, write, exe, priv, recorded,
    qualified, walk: null or {kind, stage (1 first, 2 second), level, purpose, input,
    fetch_addr, fs_level}}; fault_index: its index in the unit's fault log, or null. steps:
    [{what (root, context, pasid_dir, pasid_entry, fs, ss), stage, level, purpose (ss steps:
    fs_table or input), outcome, index, in_addr, table, desc_gpa, desc_pa, desc}]."""
    kind = "vtd-walk"
    unit: str
    rid: int
    device: str | None
    pasid: int | None
    address: int
    access: str
    priv: bool
    outcome: str
    pa: int | None
    gpa: int | None
    size: int | None
    perm: str
    pgtt: str | None
    did: int | None
    pasid_used: int | None
    snoop: bool
    fault: dict | None
    fault_index: int | None
    steps: list
    dry: bool = False


@dataclass(kw_only=True)
class VtdEntries(Result):
    """Configuration entries of a requester behind a VT-d unit (`context`, `pasid`).

    unit, rid, device, pasid (the PASID looked up, or null); entries: [{name (SM_ROOT_ENTRY,
    SM_CONTEXT_ENTRY, PASID_DIR_ENTRY, PASID_ENTRY), addr, words, rows: [{field, dword, bits,
    value, meaning}]}], in walk order, up to where the path stops; fault: null, or the fault
    the path stops with (as in vtd-walk)."""
    kind = "vtd-entries"
    unit: str
    rid: int
    device: str | None
    pasid: int | None
    entries: list
    fault: dict | None


@dataclass(kw_only=True)
class VtdPageTables(Result):
    """A VT-d requester's page tables (`pt` on a VT-d device), read through the walker's reader.

    unit, rid, device, pasid (the PASID entry's: the request's or RID_PASID), pgtt, did; stage:
    "1" (first stage), "2" (second stage) or "nested"; levels, width (input bits), root (the
    PASID entry's FLPTPTR or SLPTPTR; a nested first stage's tables are GPAs). rows (stage 1 or
    2): [{in, size, out, level, entry (FS_PTE, FS_PDE_2M, SS_PDPE_1G, ...), perm (first stage
    r, w (R/W), x (XD=0), u (U/S); second stage r, w, x), attrs (the leaf's set A, D, G, PAT,
    PCD, PWT, EA / A, D, SNP, EMT, IPAT, TM), leaves}], consecutive leaves merged where output
    and attributes continue; nested rows: [{in, size, gpa, pa (null: the second stage maps
    nothing), fs_entry, ss_entry, fs_perm, ss_perm, perm (what both stages allow: rwx)}].
    problems: [{in, level, size, problem}] for entries with reserved bits, unbacked tables, or
    (nested) first-stage tables the second stage does not map; truncated: limit= was reached."""
    kind = "vtd-pt"
    unit: str
    rid: int
    device: str | None
    pasid: int | None
    pgtt: str | None
    did: int | None
    stage: str
    levels: int
    width: int
    root: int
    rows: list
    problems: list
    truncated: bool


@dataclass(kw_only=True)
class VtdPageTableLookup(Result):
    """One address down one stage of a VT-d requester's tables (`pt ... addr=` on a VT-d
    device). unit, rid, device, pasid, pgtt, stage ("1" or "2"), addr; steps: the reader's
    trace (as vtd-walk's, each with entry: the field-table name of the entry read); out,
    size, perm (as vtd-pt rows) or null; fault: null or the walk's fault kind (translation,
    reserved, eabt)."""
    kind = "vtd-pt-lookup"
    unit: str
    rid: int
    device: str | None
    pasid: int | None
    pgtt: str | None
    stage: str
    addr: int
    steps: list
    out: int | None
    size: int | None
    perm: str | None
    fault: str | None


@dataclass(kw_only=True)
class VtdInject(Result):
    """A VT-d injection (`inject clear-present|invalidate-context|corrupt-context|
    invalidate-pasid|corrupt-pasid|retarget-irte`): inject, unit, rid (null for an IRTE),
    device, pasid (the PASID entry's, or null); entry (the format written: FS_PTE, SS_PDE_2M, SM_CONTEXT_ENTRY, PASID_ENTRY, ...),
    addr (its PA), old, new (its words), what (the change, e.g. P=0); fault: the fault a request
    now gets from memory ({reason, name, meaning}) or null; cached: the unit holds a copy that
    keeps answering; fix: the descriptor kind that removes it (check names it in full) or
    null."""
    kind = "vtd-inject"
    inject: str
    unit: str
    rid: int | None
    device: str | None
    pasid: int | None
    entry: str
    addr: int
    old: list
    new: list
    what: str
    fault: dict | None
    cached: bool
    fix: str | None


@dataclass(kw_only=True)
class VtdUnits(Result):
    """The VT-d units (`vtds`): units [{name, base, haw, translation, interrupt_remapping,
    devices: [{name, rid, bdf, rid_pasid, pgtt (of the RID_PASID entry, or null), fault (where
    the configuration path stops, or null), pasids: [{pasid, pgtt}] (a scenario's)}]}]."""
    kind = "vtd-units"
    units: list


@dataclass(kw_only=True)
class VtdQueue(Result):
    """A VT-d unit's invalidation queue (`cmdq UNIT`): base, entries (slots), desc_size
    (bytes), iqh, iqt (slot indices), error (the queue error, or null), drop_budget
    (descriptors drop-invalidations will still drop); descriptors: [{index, state (consumed or
    pending), type (CC_INV_DSC, ...; null: not a descriptor), words, fields (non-zero field
    values), text (the fields as `cmd UNIT TYPE ...` takes them)}]."""
    kind = "vtd-iq"
    unit: str
    base: int
    entries: int
    desc_size: int
    iqh: int
    iqt: int
    error: str | None
    drop_budget: int
    descriptors: list


@dataclass(kw_only=True)
class VtdFaults(Result):
    """The faults a VT-d unit recorded (`events` on a VT-d unit), oldest first: [{index,
    reason, name, meaning, fi, sid, pasid, write, exe, priv, at}]."""
    kind = "vtd-faults"
    unit: str
    faults: list


@dataclass(kw_only=True)
class VtdInvalidation(Result):
    """One descriptor through a VT-d unit's invalidation queue (`cmd` on a VT-d unit).

    descriptor (CC_INV_DSC, ...), words (its two qwords); log: [{index (queue slot), type,
    removed (cached entries removed: IOTLB entries for (P_)IOTLB_INV_DSC, cached IRTEs,
    device-TLB entries, ...), removed_psc (paging-structure-cache entries an IOTLB or
    PASID-based IOTLB invalidation removed, else null), note}] for every descriptor
    processed; iqh, iqt: the
    queue's head and tail after; error: null or the queue error that stopped it."""
    kind = "vtd-inv"
    unit: str
    descriptor: str
    words: list
    log: list
    iqh: int
    iqt: int
    error: str | None = None


@dataclass(kw_only=True)
class VtdIommufd(Result):
    """The [vtd_iommufd] objects (`iommufd vtd`): QEMU's containers, the nesting-parent S2
    HWPTs in each and the devices on them, and why.

    vm; containers: [{policy ('RW only' for units reporting ERRATA_772415_SPR17, else
    'RW & RO'), ioas, areas: [{iova, length, pa, writeable}], reserved: [{start, last, owner}]
    (the S2's aperture end, each device's interrupt window), s2s: [{hwpt, coherent (snoop
    forced), root, levels, units, devices, nested (HWPT ids)}]}]; devices: [{device, unit, rid,
    errata, coherent (ECAP.SC), container, ioas, s2, shared (attached to an S2 made for an
    earlier device), nested, did (of the PASID entry), steps (each decision with the kernel's
    answer, errno and function), error (null, or the refusal that stopped it)}]."""
    kind = "vtd-iommufd"
    vm: str
    containers: list
    devices: list


@dataclass(kw_only=True)
class VtdHwptInvalidate(Result):
    """IOMMU_HWPT_INVALIDATE (IOMMU_HWPT_INVALIDATE_DATA_VTD_S1) on a device's nested HWPT
    (`iommufd-invalidate`): device, hwpt, unit; handled (entry_num out), errno (0, or the
    refusal's), error; log: the unit's invalidation queue, [{index, type, fields, removed,
    note}] for every descriptor the kernel queued."""
    kind = "vtd-hwpt-inv"
    device: str
    hwpt: int
    unit: str
    handled: int
    errno: int
    error: str
    log: list


@dataclass(kw_only=True)
class VtdCaches(Result):
    """A VT-d unit's caches (`tlb` / `cfgcache` on a VT-d unit); which: tlb (iotlb, psc,
    devtlb given) or cfgcache (context, pasid, iec given); the others are null. Every entry has
    stale (memory no longer gives what it holds), problem and fix (the invalidation descriptor
    that removes it). context: [{sid, root_pa, root, ctx_pa, ctx}]; pasid: [{sid, pasid, did,
    dir_pa, pde, pe_pa, pe}]; iotlb: [{did, pasid, sid, pv, pgtt, in_base, size, out_base,
    gpa_base, perm, priv, dirty}]; psc: [{cache (PML5E, PML4E, PDPE, PDE; SL- at the second
    stage), stage, level, levels, nested, did, pasid, region, size, entry_pa, entry, next,
    perm}]; iec: [{index, irte_pa, irte}]; devtlb: [{sid, pasid, priv, base, size, pa, perm,
    pgtt, did, pasid_used}]; stats {hits, misses} of the IOTLB."""
    kind = "vtd-caches"
    unit: str
    which: str
    context: list | None
    pasid: list | None
    iotlb: list | None
    psc: list | None
    iec: list | None
    devtlb: list | None
    stats: dict


@dataclass(kw_only=True)
class VtdMsi(Result):
    """An interrupt request through VT-d interrupt remapping (`msi` on an x86 system).

    unit, rid, device, address, msi_data; ok, remapped, format (remappable or compatibility),
    index (the IRTE's), irte_pa, irte (two qwords), vector, dest, dest_mode, delivery,
    trigger, redirection_hint; posted, pda, urgent (a posted IRTE); fault: null or {reason,
    name, meaning, fi (index << 48), sid, recorded, ...}; fault_index; dma_walk: what a DMA walk
    of the same write does (interrupt: the range is not translated by the DMA tables);
    iec_hit: the IRTE came from the interrupt entry cache (memory may differ: cfgcache)."""
    kind = "vtd-msi"
    unit: str
    rid: int
    device: str | None
    address: int
    msi_data: int
    ok: bool
    remapped: bool
    format: str
    index: int | None
    irte_pa: int | None
    irte: list | None
    vector: int | None
    dest: int | None
    dest_mode: str
    delivery: str
    trigger: str
    redirection_hint: int
    posted: bool
    pda: int | None
    urgent: int
    fault: dict | None
    fault_index: int | None
    dma_walk: str
    iec_hit: bool = False


# ---------------------------------------------------------------------------------------------
# inspect
# ---------------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class Topology(Result):
    """The system (`topology`). smmus: [{name, base, strtab {base, format, log2size, split},
    smmuen, stage1, stage2, streams (count)}]; vms: [{name, ram: [{ipa, size, pa}]}];
    domains: [{name, smmu, stage, granule, bits, root, asid, vmid, vm}]; streams: [{name,
    smmu, sid, count, config, s2, cds: [{ssid, domain}]}]; shared: translation contexts more
    than one stream uses, read from the STEs and CDs in memory: [{stage ("stage 1" or
    "stage 2"), smmu, key ({vmid, s2ttb} or {vmid, asid, ttb0}), streams: [{sid, count,
    device, ssid}]}]."""
    kind = "topology"
    name: str
    description: str
    smmus: list
    vms: list
    domains: list
    streams: list
    shared: list = field(default_factory=list)


@dataclass(kw_only=True)
class Smmus(Result):
    """`smmus`: the smmus rows of Topology."""
    kind = "smmus"
    smmus: list


@dataclass(kw_only=True)
class Vms(Result):
    """`vms`: the vms rows of Topology."""
    kind = "vms"
    vms: list


@dataclass(kw_only=True)
class Register(Result):
    """One register (`regs SMMU REG`): fields [{field, dword, bits, value, meaning}];
    provided: false when an imported snapshot did not give it (value and fields then null
    and empty: not provided, not 0)."""
    kind = "register"
    smmu: str
    name: str
    offset: int | None
    size: int
    value: int | None
    fields: list
    provided: bool = True


@dataclass(kw_only=True)
class Registers(Result):
    """Every register (`regs SMMU`): registers [{name, offset, size, value, provided}]; a
    register an imported snapshot did not give has value null and provided false."""
    kind = "registers"
    smmu: str
    registers: list


@dataclass(kw_only=True)
class Strtab(Result):
    """The stream table (`strtab`). entries: [{sid, addr, device, v, config, s2vmid,
    s1contextptr (address), s1cdmax, s2ttb (address), legal, problem (why C_BAD_STE, or
    null)}]; more: rows were left out."""
    kind = "strtab"
    smmu: str
    base: int
    format: str
    log2size: int
    split: int | None
    entries: list
    more: bool


@dataclass(kw_only=True)
class Ste(Result):
    """One STE (`ste`). words: the 8 dwords; fields: {name: field value}; addresses: {name:
    address} for the address fields (S1ContextPtr, S2TTB, ...); rows: non-zero fields
    [{field, dword, bits, value, meaning}]; problem: why C_BAD_STE (or null); reserved_bits:
    [{dword, mask}]; cached: null or {words, stale}."""
    kind = "ste"
    smmu: str
    sid: int
    device: str | None
    addr: int
    words: list
    fields: dict
    addresses: dict
    rows: list
    config: str | None
    valid: bool
    legal: bool
    problem: str | None
    reserved_bits: list
    cached: dict | None


@dataclass(kw_only=True)
class Cd(Result):
    """One CD (`cd`). addr: where the STE says it is (an IPA when nested), pa: where it is in
    memory, l1cd: address of its L1CD or null; addresses: TTB0, TTB1; other fields as Ste."""
    kind = "cd"
    smmu: str
    sid: int
    ssid: int
    device: str | None
    addr: int
    pa: int
    l1cd: int | None
    words: list
    fields: dict
    addresses: dict
    rows: list
    valid: bool
    legal: bool
    problem: str | None
    cached: dict | None


@dataclass(kw_only=True)
class CdTable(Result):
    """A stream's CD table (`cdtable`). l1: [{index, addr, v, l2ptr (address)}]; cds: [{ssid,
    addr, pa, v, asid, ttb0 (address), t0sz, tg0, epd0, epd1}]; ipa: the table addresses are
    IPAs (nested)."""
    kind = "cdtable"
    smmu: str
    sid: int
    format: str | None
    base: int
    s1cdmax: int
    ipa: bool
    l1: list
    cds: list
    truncated: bool


@dataclass(kw_only=True)
class _Tables(Result):
    """What `pt` looked at: a domain, or smmu+sid(+ssid for stage 1); the tables' stage,
    granule (bytes), start level, input bits, root address; tables_are_ipa: the table
    addresses are IPAs (a guest's stage 1)."""
    stage: int
    granule: int
    start_level: int
    input_bits: int
    root: int
    tables_are_ipa: bool
    domain: str | None = None
    smmu: str | None = None
    sid: int | None = None
    ssid: int | None = None


@dataclass(kw_only=True)
class PageTables(_Tables):
    """A page-table dump (`pt`). rows: [{depth, level, kind (table/block/page/fault), in, end,
    table, index, desc, and for tables next; for leaves out, out_end, count, perm, priv, unpriv,
    af; for faults error}]. perm: stage 1 'rwx' for privileged access then u (EL0 may read)
    and X (EL0 may execute), stage 2 'rwx'; priv, unpriv: 'rwx' each, as the walker grants
    them (hierarchical APTable/PXNTable/UXNTable, CD.WXN/PAN, SMMU_IDR3.XNX)."""
    kind = "pt"
    rows: list
    truncated: bool


@dataclass(kw_only=True)
class PageTableLookup(_Tables):
    """One address down the tables (`pt ... addr=`). steps: [{level, table, index, desc_addr,
    desc_pa, desc, kind}]; leaf: null or {level, desc_addr, desc_pa, desc, out, size}; out:
    the output address or null."""
    kind = "pt-lookup"
    addr: int
    steps: list
    leaf: dict | None
    out: int | None


@dataclass(kw_only=True)
class NestedPageTables(_Tables):
    """The combined view of a nested stream (`pt ... stage=nested`): the stage-1 tree (stage,
    granule... describe stage 1; its table addresses are IPAs) and under each stage-1 leaf run
    the ranges stage 2 makes of it. s2: {granule, start_level, input_bits, root} of stage 2.
    rows: the `pt` rows of stage 1, plus rows of kind "nested": {depth, level (stage 1), in,
    end (IOVA), ipa, ipa_end, out, out_end (PA, null where stage 2 maps nothing), s1_perm (as
    `pt`), s2_perm ('rwx' or null), s2_level, priv, unpriv (effective 'rwx' of both stages)},
    merged only where IPA and PA continue and both stages' attributes are equal."""
    kind = "pt-nested"
    s2: dict
    rows: list
    truncated: bool


@dataclass(kw_only=True)
class Find(Result):
    """Who maps an address range (`find pa=` / `find ipa=`). space: "pa" or "ipa"; addr, size:
    the range asked. hits: [{smmu, sid, device, ssid (null: no SubstreamID), stage ("1", "2",
    "nested", "bypass"), iova, size (the input range that maps part of the asked range), ipa
    (nested: where stage 1 puts iova; null otherwise), pa (where iova lands; null when stage 2
    does not map the IPA), level (of the leaf found by the scan), s1_perm (as `pt` shows it),
    s2_perm ('rwx'), priv, unpriv (effective 'rwx' of both stages), vmid, asid, af (false
    when a leaf the scan read has AF=0), ttb (stage 1: "TTB0" or "TTB1", else null), note
    (null, or why the row's traffic skips stage 1: S1DSS=bypass)}]. scanned:
    {streams, trees, descriptors, unreadable (table pages with nothing behind them)}.
    truncated: more mappings than the limit asked for (hits holds the first ones found)."""
    kind = "find"
    space: str
    addr: int
    size: int
    hits: list
    scanned: dict
    truncated: bool = False


@dataclass(kw_only=True)
class Tlb(Result):
    """IOTLB contents (`tlb`): entries [{kind, vmid, asid, in_base, size, out_base, ipa_base,
    s1level, s2level, perm_priv, perm_unpriv, ...}], stats {hits, misses, ...}."""
    kind = "tlb"
    smmu: str
    entries: list
    stats: dict


@dataclass(kw_only=True)
class CfgCache(Result):
    """Configuration cache (`cfgcache`): stes [{sid, addr, words, device, stale}], cds [{sid,
    ssid, pa, words, stale}]."""
    kind = "cfgcache"
    smmu: str
    stes: list
    cds: list


@dataclass(kw_only=True)
class Mem(Result):
    """A hexdump (`mem`): chunks [{addr, pa, data (hex)}, or {addr, pa, unbacked (bytes),
    why}]."""
    kind = "mem"
    addr: int
    vm: str | None
    length: int
    chunks: list


@dataclass(kw_only=True)
class Cmdq(Result):
    """The command queue (`cmdq`): entries are the queue log records [{index, pa, command,
    fields, state (done, dropped, an error, pending, or consumed: read back from the ring),
    effect, addresses, lap (ring rows: 0, or -1 for the lap before CONS's)}], gerror the
    active GERROR flags; history_stop: null, or {index, back, why} where the history read
    back from the ring stops being trustworthy."""
    kind = "cmdq"
    smmu: str
    prod: int
    cons: int
    base: int
    log2size: int
    gerror: list
    drop_budget: int
    entries: list
    history_stop: dict | None = None


@dataclass(kw_only=True)
class Events(Result):
    """The event queue (`events`): entries [{index, pa, event, fields {StreamID, ...}, raw,
    ipa (address or null), fetch_addr (address or null), state (pending/consumed), and with
    scope "all" lap (0, or -1: the lap before PROD's) and back (records written after it)}],
    oldest first; scope: "pending" (CONS..PROD) or "all" (every record in the queue memory);
    explanation (for translation and configuration events: why a dry walk of the recorded
    transaction faults in the state now, see Walk.explanation; null for other records);
    summary: null or [{sid, device, records, events {EVENT: count}}]; not_records (scope
    all): {empty, unbacked, unknown} counts of slots without a record."""
    kind = "events"
    smmu: str
    prod: int
    cons: int
    overflow: bool
    base: int
    log2size: int
    entries: list
    scope: str = "pending"
    summary: list | None = None
    not_records: dict | None = None


# ---------------------------------------------------------------------------------------------
# change / inject
# ---------------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class SetEntry(Result):
    """`set ste` / `set cd`: what (STE or CD), changes [{field, old, new, meaning}], stores
    (dwords in the order written), legal/problem of the new entry, hazards (null, or
    {hitless_possible, syncs_needed, critical_qwords, torn, states})."""
    kind = "set"
    what: str
    smmu: str
    sid: int
    addr: int
    old: list
    new: list
    changes: list
    stores: list
    legal: bool
    problem: str | None
    hazards: dict | None
    ssid: int | None = None
    pa: int | None = None


@dataclass(kw_only=True)
class SetDesc(Result):
    """`set desc`: one descriptor (what is its format name), at addr (PA, or IPA with pa)."""
    kind = "set-desc"
    what: str
    addr: int
    pa: int
    old: list
    new: list
    changes: list


@dataclass(kw_only=True)
class SetReg(Result):
    """`set reg`: what (SMMU_* name), old and new value, written, effects (side effects)."""
    kind = "set-reg"
    what: str
    smmu: str
    old: int
    new: int
    written: int
    changes: list
    effects: list


@dataclass(kw_only=True)
class Map(Result):
    """`map`: leaves is the number of leaf descriptors written."""
    kind = "map"
    domain: str
    iova: int
    out: int
    size: int
    perm: str
    leaves: int


@dataclass(kw_only=True)
class Unmap(Result):
    """`unmap`: unmapped is the number of bytes unmapped."""
    kind = "unmap"
    domain: str
    iova: int
    size: int
    unmapped: int


@dataclass(kw_only=True)
class InjectDesc(Result):
    """`inject unmap|clear-af|drop-perm`: the leaf descriptor changed (level, size it maps)."""
    kind = "inject-desc"
    inject: str
    domain: str
    desc_addr: int
    desc_pa: int
    level: int
    size: int
    old: int
    new: int
    what: str


@dataclass(kw_only=True)
class InjectEntry(Result):
    """`inject *-ste|*-cd`: the STE or CD changed; problem: why the SMMU now rejects it."""
    kind = "inject-entry"
    inject: str
    smmu: str
    sid: int
    addr: int
    old: list
    new: list
    problem: str | None
    ssid: int | None = None
    pa: int | None = None


@dataclass(kw_only=True)
class InjectEvent(Result):
    """`inject event`: raw (hex of the 32-byte record), index in the queue (null: dropped)."""
    kind = "inject-event"
    inject: str
    smmu: str
    event: str
    raw: str
    index: int | None
    written: bool


@dataclass(kw_only=True)
class Cmd(Result):
    """`cmd`: log is what the SMMU did with each command consumed; gerror the active flags."""
    kind = "cmd"
    smmu: str
    command: str
    log: list
    gerror: list


@dataclass(kw_only=True)
class DropInvalidations(Result):
    kind = "drop-invalidations"
    smmu: str
    n: int


@dataclass(kw_only=True)
class ConsumeEvents(Result):
    kind = "consume-events"
    smmu: str
    consumed: int


@dataclass(kw_only=True)
class Check(Result):
    """`check`: smmus [{smmu, stale, hazards, illegal, errors, unread_events, problems}];
    stale: [{kind (STE/CD/TLB), key, problem, fix (the invalidation), command [name, fields],
    fix_commands (the lines that fix it: `cmd SMMU invalidation`, `cmd SMMU CMD_SYNC`)}].
    system: findings beyond the SMMUs [{area (msi, iort, its, iommufd), severity, subject,
    message, fix}]."""
    kind = "check"
    smmus: list
    problems: int
    clean: bool
    not_checked: list
    system: list | None = None


@dataclass(kw_only=True)
class Import(Result):
    """`import qemu`: what the importer built (segments [{pa, size}], strtab, streams [{sid,
    config, device}], warnings, gerror); pci: the `info pci` file the device names come from,
    or null; its: null, or the imported ITS {name, base, translater, enabled, registers (how
    many given), redistributors, layout, iort (the ID mappings assumed)}."""
    kind = "import"
    system: str
    smmu: str
    memory: str
    regs: str
    segments: list
    bytes: int
    registers: int
    smmuen: bool
    strtab: dict
    streams: list
    pending_commands: int
    gerror: list
    warnings: list
    ram_base: int | None
    pci: str | None = None
    its: dict | None = None


@dataclass(kw_only=True)
class VtdImport(Result):
    """`import qemu` of an x86-64 guest with Intel VT-d: machine (the ELF's, or null for a raw
    image), segments [{pa, size}], the unit, translation (GSTS_REG.TES), mode (RTADDR_REG.TTM),
    root_table, haw (host address width: CAP_REG.MGAW + 1, QEMU's aw-bits), iq {base, entries,
    head, tail} or null, irta {base, entries, enabled} or null, devices [{rid, device}] (a
    present context entry), faults (fault records the FRCD_REGs hold), warnings."""
    kind = "vtd-import"
    system: str
    unit: str
    memory: str
    regs: str
    machine: str | None
    segments: list
    bytes: int
    registers: int
    translation: bool
    mode: str
    root_table: int
    haw: int
    iq: dict | None
    irta: dict | None
    devices: list
    faults: int
    warnings: list
    ram_base: int | None
    pci: str | None = None


@dataclass(kw_only=True)
class Diff(Result):
    """`diff`: two states, from (JSON "from", the earlier: a) and to (b), e.g. "@5" and "now".
    smmus: [{smmu, only (null, or "a"/"b": the SMMU is in one state only), registers [{name,
    a, b}] (null: not provided), stes [{sid, change (added/removed/changed), fields [{field,
    a, b}]}], stes_truncated (the first 4096 valid STEs compared only), cds [{sid, ssid,
    change, fields}], mappings [{sid, ssid, stage, change, in,
    end, a_out, b_out, a_perm, b_perm}] (input ranges; outputs at `in`), mappings_truncated,
    queues {cmdq, eventq: {a: {prod, cons}, b: {prod, cons}}}, events [{index, event, sid,
    state, fields}] (records in b's queue memory that a's does not hold)}]; identical."""
    kind = "diff"
    from_: str = field(metadata={"json": "from"})
    to: str
    smmus: list
    identical: bool


# ---------------------------------------------------------------------------------------------
# session and help
# ---------------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class Saved(Result):
    kind = "saved"
    path: str
    commands: int


@dataclass(kw_only=True)
class _ReplayReport(Result):
    """A replay: replayed (commands), identical, differing (count), diverged: null or {index,
    command, expected {ok, digest, error?, result?, summary?}, got {ok, digest, result}}."""
    replayed: int
    identical: bool
    differing: int
    diverged: dict | None


@dataclass(kw_only=True)
class Replay(_ReplayReport):
    """`replay`: file is the session file replayed, or null for this session's log."""
    kind = "replay"
    file: str | None


@dataclass(kw_only=True)
class Loaded(_ReplayReport):
    """`load`: the replay report of the file loaded from path."""
    kind = "loaded"
    path: str


@dataclass(kw_only=True)
class History(Result):
    """`history`: entries [{n, command, ok, current}]."""
    kind = "history"
    position: int
    length: int
    entries: list


@dataclass(kw_only=True)
class Goto(Result):
    """`goto`/`back`/`forward`: from (JSON "from") and position, reran: commands re-run."""
    kind = "goto"
    from_: int = field(metadata={"json": "from"})
    position: int
    length: int
    reran: int


@dataclass(kw_only=True)
class Expect(Result):
    kind = "expect"
    expression: str
    value: Any


@dataclass(kw_only=True)
class JsonMode(Result):
    """`json on|off`: whether the REPL prints results as JSON."""
    kind = "json-mode"
    on: bool


@dataclass(kw_only=True)
class HelpIndex(Result):
    """`help`: areas [{area, commands: [{name, usage, summary, available}]}]."""
    kind = "help-index"
    areas: list


@dataclass(kw_only=True)
class Help(Result):
    """`help COMMAND`: args [{name, usage, help, keyword, default}]."""
    kind = "help"
    name: str
    usage: str
    help: str
    args: list
    available: bool
    why: str | None
    fields: str | None


# ---------------------------------------------------------------------------------------------
# attach (a running QEMU: smmudbg/attach/)
# ---------------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class Attach(Result):
    """`attach qemu`: the connection and the live view built (streams [{sid, config}],
    registers {name: value}, view "live" or "copy" (pid mode), warnings)."""
    kind = "attach"
    socket: str
    ram: str | None
    pid: int | None
    ram_base: int
    ram_size: int
    smmu_base: int
    qemu: str
    vm_running: bool
    view: str
    system: str
    smmuen: bool
    streams: list
    registers: dict
    warnings: list


@dataclass(kw_only=True)
class Detach(Result):
    """`detach`: the VM left as it was (vm_running: its state when smmudbg left, null when it
    is gone); view: what the session shows now."""
    kind = "detach"
    socket: str
    vm_running: bool | None
    view: str | None
    snapshots: int


@dataclass(kw_only=True)
class Snapshot(Result):
    """`snapshot`: a consistent copy taken with the VM stopped for pause_ms (0 when it was
    already paused): pages copied, new_pages (not in an earlier snapshot), streams [{sid,
    config}]."""
    kind = "snapshot"
    name: str
    source: str
    taken: str
    pause_ms: float
    vm_was_running: bool
    pages: int
    new_pages: int
    streams: list


@dataclass(kw_only=True)
class AttachPoll(Result):
    """`attach poll`: one poll of the attached VM (what `watch` does once), for front ends that
    follow it: attached, socket, vm_running, view (live, a snapshot's name, or null), live
    (the session shows the live VM), read_at (UTC time of this read, ISO 8601), rebuilt (the
    live view was built again: its registers changed), and what happened since the previous
    poll as in `watch`: commands, changes, events, gerrors (the first poll after attach only
    takes the baseline)."""
    kind = "attach-poll"
    attached: bool
    socket: str | None
    vm_running: bool | None
    view: str | None
    live: bool
    read_at: str | None
    rebuilt: bool
    commands: list
    changes: list
    events: list
    gerrors: list


@dataclass(kw_only=True)
class Watch(Result):
    """`watch`: what the SMMU did while polled, each row with t_ms (the poll that saw it):
    commands [{index, command, what, fields}], changes [{sid, change, config, ste_fields, cds,
    mapped, unmapped}], events [{index, event, explanation, sid, fields}], gerrors [{errors}]."""
    kind = "watch"
    socket: str
    seconds: float
    polls: int
    commands: list
    changes: list
    events: list
    gerrors: list


@dataclass(kw_only=True)
class AttachStatus(Result):
    """`attach status`: the session's attach state: attached, socket, vm_running, view (live,
    a snapshot name, or null), system (its name says which view), snapshots [{name, taken,
    pause_ms, pages, new_pages}]."""
    kind = "attach-status"
    attached: bool
    socket: str | None
    vm_running: bool | None
    view: str | None
    system: str
    snapshots: list


@dataclass(kw_only=True)
class View(Result):
    """`view`: the view the session now shows (live or a snapshot) and its description."""
    kind = "view"
    view: str
    system: str
    description: str


# ---------------------------------------------------------------------------------------------
# the system around the SMMUs: IORT, ITS, MSI path
# ---------------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class Iort(Result):
    """The IORT (`iort`), or one ID's path through it (`iort DEVICE`, `iort SEG:RID`).

    revision; derived: built as QEMU's virt machine writes it (no iort table in the scenario);
    nodes: [{name, type, mappings: [{input_base, count (IDs - 1), output_base, output, single}],
    its_ids, segment, base, ranges: [{base, length}]}]; devices: [{device, bdf, rid, msi_rid,
    stream_ids, device_id, failure}]; findings: [{severity, node, message, fix}] (Iort.check).
    path (an ID explained, else null): {device, bdf, segment, rid, msi_rid, aliases: [{rid,
    reason, smmu, stream_id, failure}], steps: [{node, type, input_id, mapping (index),
    output_id, output_node, note, failure, fix}], smmu, stream_id, its_group, device_id,
    failure, fix}."""
    kind = "iort"
    revision: int | None
    derived: bool
    nodes: list
    devices: list
    findings: list
    path: dict | None = None


@dataclass(kw_only=True)
class Pci(Result):
    """The PCI topology (`pci`): host bridges, bridges and ports, endpoints.

    hosts: [{name, kind (host / pxb-pcie), segment, bus (root bus), bus_end (last bus of its
    range), used (last bus enumeration gave out below it), parent, bdf (a pxb-pcie's own
    function on its parent's root bus, else null)}];
    devices (depth first, each bus in devfn order): [{name, kind (endpoint, rc_endpoint,
    root_port, upstream_port, downstream_port, pcie_pci_bridge, pci_pcie_bridge, pci_bridge),
    bridge, parent (a host bridge or bridge), host, depth (0 on a root bus), segment, bdf, rid,
    secondary, subordinate (bridges: the bus range below), msi_rid, stream_ids ([[smmu,
    StreamID]] of its DMA aliases through the IORT), device_id (ITS DeviceID of its MSI RID),
    failure}]; the IORT columns are null without an IORT."""
    kind = "pci"
    hosts: list
    devices: list


@dataclass(kw_only=True)
class Its(Result):
    """A GICv3 ITS (`its`). name, base, translater (GITS_TRANSLATER address), enabled,
    stalled; registers: {GITS_*: value}; tables: [{n, kind, valid, indirect, page_size,
    entry_size, base, pages, capacity}]; collections: [{icid, target}] (valid CTEs);
    mappings: [{device_id, event_id, intid, icid, target}] (valid ITEs, or one device's with
    device=N); device: null or {device_id, steps: [{what, index, address, raw, fields,
    outcome, ok}]} (the DTE read); pending: [{target, intids}]; commands: commands processed;
    errors: [{offset, name, error, reason}] (failed commands). On an imported ITS a register
    the register file did not give is null (not provided), and redistributors lists the GICR
    frames given: [{frame, rd_base, processor, affinity, registers {GICR_*: value or null}}].
    dtes, ctes: the valid entries of the device and collection tables, each as its read
    ({what, index (DeviceID / ICID), address (null: a collection held in the ITS), raw, fields,
    outcome, ok}; a DTE's also itt, the ITT's address, and events, 2^(Size+1)); itt (device=N,
    else null): the valid ITEs of that DeviceID's ITT, the same way (index: the EventID)."""
    kind = "its"
    name: str
    base: int
    translater: int
    enabled: bool
    stalled: bool
    registers: dict
    tables: list
    collections: list
    mappings: list
    device: dict | None
    pending: list
    commands: int
    errors: list
    redistributors: list = field(default_factory=list)
    dtes: list = field(default_factory=list)
    ctes: list = field(default_factory=list)
    itt: list | None = None


@dataclass(kw_only=True)
class Msi(Result):
    """One MSI write followed from the device to its LPI (`msi`).

    device, vector, rid (the MSI RID), smmu, sid (StreamID), device_id (ITS DeviceID), address
    (the IOVA written: gIOVA when nested), msi_data (the data written: the EventID), ipa (gDB), pa (hDB), region
    (what the write lands on), its, intid (LPI), icid (collection), target (redistributor:
    its processor number); cpu: null, or on an imported GIC the target's frame {frame,
    rd_base, processor, affinity (of the PE's MPIDR, "Aff3.Aff2.Aff1.Aff0")}; ok; failed (the step that broke: msi, iort, smmu, region, its), reason, fix.
    steps: [{what, ok, reason, fix, input, output, detail, ...}]: msi {data, kind}; iort
    {nodes: [{node, type, input_id, mapping, output_id, output_node, note, failure}]}; smmu
    {ipa, stream, fault, walk: the walk's steps}; region {region}; its {event_id, error_code,
    its_steps: [{what, index, address, raw, fields, outcome, ok}]}."""
    kind = "msi"
    device: str | None
    vector: int | None
    rid: int | None
    smmu: str | None
    sid: int | None
    device_id: int | None
    address: int | None
    msi_data: int | None
    ipa: int | None
    pa: int | None
    region: str | None
    its: str | None
    intid: int | None
    icid: int | None
    target: int | None
    ok: bool
    failed: str | None
    reason: str | None
    fix: str | None
    steps: list
    cpu: dict | None = None


@dataclass(kw_only=True)
class Iommufd(Result):
    """The scenario's iommufd objects (`iommufd`). view: explain, devices, ioas, hwpt, viommu
    or vdevice; rows: the objects of the view, with the names the scenario gave them (name):
    explain [{device, smmu, sid, hwpt, s2, shared_with, reason}], devices [{id, name, smmu,
    sid, canwbs, hwpt}], ioas [{id, areas: [{iova, length, ...}], reserved, ...}], hwpt [{id,
    type, smmu, nest_parent, ioas, vmid, root, ..., devices}], viommu [{id, smmu, parent, vmid,
    vdevices, veventq}], vdevice [{id, viommu, device, vsid, psid}]. plan (explain only): the
    S2 sharing decision for the devices (plan_s2): {s2s: [[label, [devices]]], choices:
    [{device, smmu, s2, reason}]}."""
    kind = "iommufd"
    view: str
    rows: list
    plan: dict | None = None


@dataclass(kw_only=True)
class InjectIort(Result):
    """`inject iort`: the IORT mapping removed. device, rid (its MSI RID), node,
    mapping_index, mapping {input_base, count (IDs - 1), output_base, output, single}."""
    kind = "inject-iort"
    device: str
    rid: int
    node: str
    mapping_index: int
    mapping: dict


# ---------------------------------------------------------------------------------------------
# VMs and vSMMUs: the guest side and the host side of nesting (model/vsmmu.py)
# ---------------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class Vsmmu(Result):
    """`vsmmu [VM|VSMMU]`: each vSMMU {name, vm, accel, enabled, gbpa, viommus: [{id, name,
    smmu, vmid, parent, veventq}], strtab {base, log2size}, cmdq / evtq {base, log2size, prod,
    cons, error}, gerror, lost (guest invalidations the VMM did not forward: {command, fields,
    viommu, smmu, vmid}), devices, topology}.
    devices: one row per vSID with a vfio-pci device, guest side and host side: {vsid,
    guest_device, guest_ste {ipa, words, config, s1contextptr, s1cdmax}, guest_cd {ipa, words,
    asid, ttb0, problem} or null, device, smmu, psid, host_ste {pa, words, config, s2vmid,
    s2ttb, s1contextptr}, hwpt {id, name, kind, config, vste}, viommu {id, name, vmid},
    vdevice (id), in_sync (the host STE is what the current guest STE makes), note}.
    topology (accelerated-mode rules over the guest PCI topology): [{device, kind, bdf, rid,
    address_space (system / iommu), role, severity, message, fix}]."""
    kind = "vsmmu"
    vsmmus: list


@dataclass(kw_only=True)
class Vcmd(Result):
    """`vcmd VSMMU CMD ...`: the guest command(s) consumed by the VMM. log: [{index, ipa,
    command, fields, raw, outcome (done/error), error (CERROR name), steps: [{what (guest STE,
    IOMMU_VDEVICE_ALLOC, IOMMU_HWPT_ALLOC, ATTACH, IOMMU_DESTROY, IOMMU_HWPT_INVALIDATE,
    sw_msi, vmm, guest), ok, detail, ...}]}]: ATTACH has host_ste (the words written), smmu,
    psid, ste_pa; IOMMU_HWPT_INVALIDATE has viommu, smmu, handled (entry_num), errno,
    host_command, host_fields (the command as the kernel rewrote it), sent, lost.
    cmdq {prod, cons, error}; gerror (the guest's)."""
    kind = "vcmd"
    vsmmu: str
    command: str
    log: list
    cmdq: dict
    gerror: list


@dataclass(kw_only=True)
class Vste(Result):
    """`vste VSMMU VSID FIELD=VALUE ...`: the guest's STE write in guest RAM. ipa, pa, old,
    new (8 words), changes [{field, old, new}], config (as the VMM will read it)."""
    kind = "vste"
    vsmmu: str
    vsid: int
    ipa: int
    pa: int
    old: list
    new: list
    changes: list
    config: str


@dataclass(kw_only=True)
class Vevents(Result):
    """`vevents VSMMU`: host events of the physical SMMUs (host: [{event, sid, outcome, vsid,
    viommu}]), records read from the vEVENTQs (vevents: [{viommu, sequence, lost_events,
    event, vsid, written (the guest event queue IPA, or null)}]) and the guest event queue's
    unread records (guest: [{index, event, vsid, raw}]); overflow: the guest queue lost records
    (its overflow flag, not yet acknowledged)."""
    kind = "vevents"
    vsmmu: str
    host: list
    vevents: list
    guest: list
    overflow: bool = False


@dataclass(kw_only=True)
class HwptInvalidate(Result):
    """`hwpt-invalidate VIOMMU CMD ...`: IOMMU_HWPT_INVALIDATE of one raw command on a vIOMMU.
    handled (entry_num out), errno (0 or negative), error, host_command / host_fields (the
    command as the kernel rewrote it, or null), sent (what the physical queue did)."""
    kind = "hwpt-invalidate"
    viommu: str
    command: str
    handled: int
    errno: int
    error: str
    host_command: str | None
    host_fields: dict | None
    sent: list


@dataclass(kw_only=True)
class InjectVsmmu(Result):
    """`inject vtlbi-lost` / `inject vste-reject`: what was planted (inject, vsmmu, what) and,
    for vste-reject, the guest command log of the CMD_CFGI_STE the host refused (log)."""
    kind = "inject-vsmmu"
    inject: str
    vsmmu: str
    what: str
    log: list | None = None


@dataclass(kw_only=True)
class InjectIts(Result):
    """`inject its-discard` / `inject its-movi`: the ITS command issued for a device's MSI
    vector (its, command, fields, ok, error, reason)."""
    kind = "inject-its"
    inject: str
    device: str
    vector: int
    its: str
    command: str
    fields: dict
    ok: bool
    error: str | None
    reason: str | None
