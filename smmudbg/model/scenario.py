"""Scenario files: a TOML description of a system, checked before anything is built.

Every error is one line naming the file, table and key it is about, e.g. `t.toml: stream[2].config:
'nestd' is not one of abort, bypass, s1, s2, nested`. Loading parses TOML only; nothing in the
file is executed. Every size, address and count is checked here, against the architecture
(field widths, SMMU_IDR1 maxima, SPLIT, TnSZ) and the bounds below, before anything is allocated.
"""
from __future__ import annotations

import re
import sys
import tomllib
from importlib import resources

from ..arch.fieldtable import fmt
from ..arch.smmuv3 import consts as C
from ..arch.smmuv3.events import CMD_SIZE, EVENT_SIZE
from ..arch.smmuv3.geometry import CD_LEAF_BITS, L1_SIZE, SPLITS, STE_SIZE
from ..errors import ScenarioError
from ..errors import brief as _show
from ..textfile import read_text
from . import scenario_system as _system
from . import scenario_vtd as _vtd
from . import scenario_vtd_iommufd as _vtd_iommufd
from .smmu import DEFAULT_FEATURES

# Scenario spellings of STE.Config, S1DSS and S1Fmt, with the values the field tables give them.
CONFIGS = {"abort": C.STE_Config_abort, "bypass": C.STE_Config_bypass, "s1": C.STE_Config_s1_trans,
           "s2": C.STE_Config_s2_trans, "nested": C.STE_Config_nested}
S1DSS = {"terminate": C.STE_S1DSS_terminate, "bypass": C.STE_S1DSS_bypass,
         "substream0": C.STE_S1DSS_substream0}
CD_FORMATS = {"linear": C.STE_S1Fmt_linear, "2lvl_4k": C.STE_S1Fmt_2lvl_4k,
              "2lvl_64k": C.STE_S1Fmt_2lvl_64k}
# The translation granules (CD.TG0 / STE.S2TG), in bytes.
GRANULES = tuple(sorted(1 << s for s in C.CD_TG0_granule_shift.values()))

# -- Bounds, checked before anything is allocated -------------------------------------------------
# The ID register fields a scenario may set (`features`), by upper-case name.
IDR_FIELDS = {}
for _reg in ("SMMU_IDR0", "SMMU_IDR1", "SMMU_IDR3", "SMMU_IDR5"):
    for _f in fmt(_reg).fields:
        IDR_FIELDS.setdefault(_f.name.upper(), (_reg, _f))
# Where the architecture allows less than the field width (IHI 0070 6.3.2 SMMU_IDR1): at most
# 32 StreamID bits, 20 SubstreamID bits (a PCIe PASID), 2^19 queue entries.
IDR_MAX = {"SIDSIZE": 32, "SSIDSIZE": 20, "CMDQS": 19, "EVENTQS": 19, "PRIQS": 19}
# Input address bits of a translation table: 64 - TnSZ with TnSZ 12..48 (Arm ARM VMSAv8-64
# TCR_ELx.TnSZ with FEAT_LVA/FEAT_LPA2 and FEAT_TTST; IHI 0070 5.4 CD.T0SZ, 5.2 STE.S2T0SZ).
INPUT_BITS = (16, 52)
ADDRESS_LIMIT = 1 << 64
_ASID = fmt("CD").field("ASID")
_VMID = fmt("STE").field("S2VMID")
_S1CDMAX = fmt("STE").field("S1CDMax")
# The model's own bounds (not the architecture's: a stream table of 2^32 STEs is architected, but
# the scenario builder writes every entry of what it declares): StreamIDs declared in one
# scenario (four SMMUs of 16-bit StreamIDs, as examples/large-system.toml), bytes of one
# stream table or queue, CD-table entries the builder writes over all streams (one linear
# table of the largest S1CDMax, 20), and mappings of `maps` entries (count summed).
MAX_STREAMS = 1 << 18
MAX_TABLE_BYTES = 1 << 28
MAX_CD_ENTRIES = 1 << 20
MAX_MAPPINGS = 1 << 22


def _int(where, value):
    if isinstance(value, bool):
        raise ScenarioError(f"{where}: expected a number, got {_show(value)}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and len(value) <= 80:
        try:
            return int(value.replace("_", ""), 0)
        except ValueError:
            pass
    raise ScenarioError(f"{where}: expected a number, got {_show(value)}")


def _bounded(where, value, lo, hi, what=""):
    """An integer in [lo, hi]."""
    v = _int(where, value)
    if not lo <= v <= hi:
        dec = hi <= 64          # a number of bits or a log2 size
        raise ScenarioError(f"{where}: {_show(v, dec)} is outside {_show(lo, dec)}.."
                            f"{_show(hi, dec)}{what}")
    return v


def _addr(where, value):
    """An address or size: an integer in [0, 2^64)."""
    v = _int(where, value)
    if v < 0:
        raise ScenarioError(f"{where}: {_show(v)} is negative")
    if v >= ADDRESS_LIMIT:
        raise ScenarioError(f"{where}: {_show(v)} does not fit in 64 bits")
    return v


def _range(where, base, size):
    """Check [base, base+size) does not wrap past 2^64."""
    if base + size > ADDRESS_LIMIT:
        raise ScenarioError(f"{where}: {base:#x} + size {size:#x} wraps past 2^64")


def _str(where, value, default=None):
    if value is None and default is not None:
        return default
    if not isinstance(value, str):
        raise ScenarioError(f"{where}: expected a string, got {_show(value)}")
    return value


def _choice(where, value, choices):
    """A string that is one of choices (never hashed before it is known to be a string)."""
    if not isinstance(value, str) or value not in choices:
        raise ScenarioError(f"{where}: {_show(value)} is not one of {', '.join(choices)}")
    return value


def _ref(where, value, names, what):
    """The name of a declared object."""
    if not isinstance(value, str) or value not in names:
        raise ScenarioError(f"{where}: {_show(value)} is not a declared {what}")
    return value


def _perm(where, text):
    if not isinstance(text, str) or set(text) - set("rwxp") or not text:
        raise ScenarioError(f"{where}: permission {_show(text)} must be letters from 'rwxp' "
                            f"(p: privileged only)")
    return text


def _table(where, value):
    if not isinstance(value, dict):
        raise ScenarioError(f"{where}: expected a table, got {_show(value)}")
    return value


def _known(where, table, keys):
    extra = set(table) - set(keys)
    if extra:
        raise ScenarioError(f"{where}: unknown key {_show(sorted(extra)[0])} "
                            f"(known: {', '.join(sorted(keys))})")


def _pool(where, value):
    value = _table(where, value)
    _known(where, value, ("base", "size"))
    for k in ("base", "size"):
        if k not in value:
            raise ScenarioError(f"{where}: missing {k!r}")
    base, size = _addr(f"{where}.base", value["base"]), _addr(f"{where}.size", value["size"])
    _range(where, base, size)
    return {"base": base, "size": size}


def _list(doc, key):
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise ScenarioError(f"{key}: expected an array of tables ([[{key}]])")
    return value


def _array(where, value):
    """An inline array (of tables)."""
    if not isinstance(value, list):
        raise ScenarioError(f"{where}: expected an array, got {_show(value)}")
    return value


def _bool(where, value):
    if not isinstance(value, bool):
        raise ScenarioError(f"{where}: expected true or false, got {_show(value)}")
    return value


def _features(where, value):
    feats = {}
    for k, v in _table(where, value).items():
        key = k.upper()
        if key not in IDR_FIELDS:
            raise ScenarioError(f"{where}.{k}: unknown SMMU feature (an SMMU_IDR0/1/3/5 field)")
        reg, f = IDR_FIELDS[key]
        hi = min(f.mask, IDR_MAX.get(key, f.mask))
        feats[k] = _bounded(f"{where}.{k}", v, 0, hi, f" ({reg}.{f.name})")
    return feats


def _size_feature(feats, name):
    for k, v in feats.items():
        if k.upper() == name:
            return v
    return DEFAULT_FEATURES.get(name, 0)


def normalize(doc: dict) -> dict:
    """Check a parsed scenario and return it with defaults filled and numbers as ints.

    Every size and address is checked against the architecture (and the model's bounds above)
    here, before anything is allocated."""
    doc = _table("scenario", doc)
    _known("scenario", doc, ("name", "description", "ram", "smmu", "vm", "domain", "stream",
                             "gic", "pci", "iort", "its", "iommufd", "vsmmu", "vtd",
                             "vtd_domain", "vtd_device", "vtd_iommufd"))
    out = {"name": _label("name", doc.get("name", "unnamed")),
           "description": _label("description", doc.get("description", "")),
           "ram": [], "smmu": [], "vm": [], "domain": [], "stream": []}
    for i, r in enumerate(_list(doc, "ram")):
        out["ram"].append(_pool(f"ram[{i}]", r))
    names = set()

    def name_of(where, t):
        n = t.get("name")
        if not isinstance(n, str) or not n:
            raise ScenarioError(f"{where}.name: missing or not a string")
        if n in names:
            raise ScenarioError(f"{where}.name: {_show(n)} is already used")
        names.add(n)
        return n

    sizes = {}          # SMMU name -> (StreamID bits of its stream table, SSIDSIZE)
    fits = []           # structures to check against their pools, once every key is checked
    for i, s in enumerate(_list(doc, "smmu")):
        w = f"smmu[{i}]"
        s = _table(w, s)
        _known(w, s, ("name", "base", "features", "stream_table", "cmdq_log2size",
                      "evtq_log2size", "pool", "caching"))
        st = _table(f"{w}.stream_table", s.get("stream_table", {}))
        _known(f"{w}.stream_table", st, ("format", "log2size", "split"))
        fmt_ = st.get("format", "linear")
        if not isinstance(fmt_, str) or fmt_ not in ("linear", "2lvl"):
            raise ScenarioError(f"{w}.stream_table.format: {_show(fmt_)} is not linear or 2lvl")
        feats = _features(f"{w}.features", s.get("features", {}))
        if "pool" not in s:
            raise ScenarioError(f"{w}.pool: missing (host memory for the SMMU's structures)")
        pool = _pool(f"{w}.pool", s["pool"])
        sidsize = _size_feature(feats, "SIDSIZE")
        log2size = _bounded(f"{w}.stream_table.log2size", st.get("log2size", 8), 0, sidsize,
                            " (SMMU_STRTAB_BASE_CFG.LOG2SIZE, at most SMMU_IDR1.SIDSIZE)")
        split = _int(f"{w}.stream_table.split", st.get("split", 8))
        if split not in SPLITS:
            raise ScenarioError(f"{w}.stream_table.split: {_show(split)} is not one of "
                                f"{', '.join(map(str, SPLITS))} (SMMU_STRTAB_BASE_CFG.SPLIT)")
        table = L1_SIZE << max(0, log2size - split) if fmt_ == "2lvl" else STE_SIZE << log2size
        fits.append((f"{w}.stream_table", f"the {fmt_} stream table", table, pool, f"{w}.pool"))
        queues = {}
        for key, cap, entry, default in (("cmdq_log2size", "CMDQS", CMD_SIZE, 8),
                                         ("evtq_log2size", "EVENTQS", EVENT_SIZE, 7)):
            queues[key] = _bounded(f"{w}.{key}", s.get(key, default), 0,
                                   _size_feature(feats, cap), f" (at most SMMU_IDR1.{cap})")
            fits.append((f"{w}.{key}", "the queue", entry << queues[key], pool, f"{w}.pool"))
        name = name_of(w, s)
        sizes[name] = (log2size, _size_feature(feats, "SSIDSIZE"))
        out["smmu"].append({
            "name": name, "base": _addr(f"{w}.base", s.get("base", 0)),
            "features": feats,
            "stream_table": {"format": fmt_, "log2size": log2size, "split": split},
            **queues, "pool": pool,
            "caching": _bool(f"{w}.caching", s.get("caching", True)),
        })
    smmus = set(sizes)
    for i, v in enumerate(_list(doc, "vm")):
        w = f"vm[{i}]"
        v = _table(w, v)
        _known(w, v, ("name", "ram", "pci"))
        ram = []
        for j, r in enumerate(_array(f"{w}.ram", v.get("ram", []))):
            wr = f"{w}.ram[{j}]"
            r = _table(wr, r)
            _known(wr, r, ("ipa", "pa", "size"))
            m = {k: _addr(f"{wr}.{k}", r.get(k)) for k in ("ipa", "pa", "size")}
            _range(f"{wr}.ipa", m["ipa"], m["size"])
            _range(f"{wr}.pa", m["pa"], m["size"])
            ram.append(m)
        out["vm"].append({"name": name_of(w, v), "ram": ram})
    vms = {v["name"] for v in out["vm"]}
    mappings = 0
    for i, d in enumerate(_list(doc, "domain")):
        w = f"domain[{i}]"
        d = _table(w, d)
        _known(w, d, ("name", "smmu", "stage", "granule", "vabits", "ias", "asid", "vmid", "vm",
                      "pool", "maps", "map_vm", "perm"))
        stage = _int(f"{w}.stage", d.get("stage", 1))
        if stage not in (1, 2):
            raise ScenarioError(f"{w}.stage: {_show(stage)} is not 1 or 2")
        gran = _int(f"{w}.granule", d.get("granule", 4096))
        if gran not in GRANULES:
            raise ScenarioError(f"{w}.granule: {_show(gran)} is not 4K, 16K or 64K")
        smmu = _ref(f"{w}.smmu", d.get("smmu"), smmus, "SMMU")
        refs = {key: _ref(f"{w}.{key}", d[key], vms, "VM") if key in d else None
                for key in ("vm", "map_vm")}
        key = "ias" if stage == 2 else "vabits"
        bits = _bounded(f"{w}.{key}", d.get(key, 48 if stage == 1 else 40), *INPUT_BITS,
                        " (input address bits, 64 - TnSZ)")
        maps = []
        for j, m in enumerate(_array(f"{w}.maps", d.get("maps", []))):
            e = _mapping(f"{w}.maps[{j}]", m)
            mappings += e["count"]
            if mappings > MAX_MAPPINGS:
                raise ScenarioError(f"{w}.maps[{j}].count: more than {MAX_MAPPINGS} mappings in "
                                    f"one scenario (the model's bound)")
            maps.append(e)
        out["domain"].append({
            "name": name_of(w, d), "smmu": smmu, "stage": stage, "granule": gran, "bits": bits,
            "asid": _bounded(f"{w}.asid", d.get("asid", 0), 0, _ASID.mask, " (CD.ASID)"),
            "vmid": _bounded(f"{w}.vmid", d.get("vmid", 0), 0, _VMID.mask, " (STE.S2VMID)"),
            **refs, "perm": _perm(f"{w}.perm", d.get("perm", "rwx")),
            "pool": _pool(f"{w}.pool", d["pool"]) if "pool" in d else None, "maps": maps})
    domains = {d["name"]: d for d in out["domain"]}
    streams = cd_entries = 0
    for i, s in enumerate(_list(doc, "stream")):
        w = f"stream[{i}]"
        s = _table(w, s)
        _known(w, s, ("name", "smmu", "sid", "count", "config", "s2", "cds", "cd_table",
                      "s1dss", "vm"))
        cfg = _choice(f"{w}.config", s.get("config", "abort"), CONFIGS)
        smmu = _ref(f"{w}.smmu", s.get("smmu"), smmus, "SMMU")
        if cfg in ("s2", "nested"):
            s2 = s.get("s2")
            if not isinstance(s2, str) or domains.get(s2, {}).get("stage") != 2:
                raise ScenarioError(f"{w}.s2: {_show(s2)} is not a stage-2 domain")
        cds = []
        for j, c in enumerate(_array(f"{w}.cds", s.get("cds", []))):
            wc = f"{w}.cds[{j}]"
            c = _table(wc, c)
            _known(wc, c, ("ssid", "domain"))
            dom = c.get("domain")
            if not isinstance(dom, str) or domains.get(dom, {}).get("stage") != 1:
                raise ScenarioError(f"{wc}.domain: {_show(dom)} is not a stage-1 domain")
            cds.append({"ssid": _addr(f"{wc}.ssid", c.get("ssid", j)), "domain": dom})
        if cfg in ("s1", "nested") and not cds:
            raise ScenarioError(f"{w}.cds: a {cfg} stream needs at least one CD")
        ct = _table(f"{w}.cd_table", s.get("cd_table", {}))
        _known(f"{w}.cd_table", ct, ("format", "s1cdmax"))
        cdfmt = _choice(f"{w}.cd_table.format", ct.get("format", "linear"), CD_FORMATS)
        log2size, ssidsize = sizes[smmu]
        s1cdmax = _bounded(f"{w}.cd_table.s1cdmax", ct.get("s1cdmax", 0), 0,
                           min(ssidsize, _S1CDMAX.mask),
                           f" (STE.S1CDMax, at most SMMU_IDR1.SSIDSIZE of {smmu})")
        for j, c in enumerate(cds):
            if c["ssid"] >> s1cdmax:
                raise ScenarioError(f"{w}.cds[{j}].ssid: {_show(c['ssid'])} is beyond "
                                    f"S1CDMax {s1cdmax} (SubstreamIDs below 2^{s1cdmax})")
        s1dss = _choice(f"{w}.s1dss", s.get("s1dss", "substream0"), S1DSS)
        if "sid" not in s:
            raise ScenarioError(f"{w}.sid: missing")
        n_sids = 1 << log2size
        sid = _bounded(f"{w}.sid", s["sid"], 0, n_sids - 1,
                       f" (the stream table of {smmu} holds 2^{log2size} StreamIDs)")
        count = _bounded(f"{w}.count", s.get("count", 1), 1, n_sids - sid,
                         f" (StreamIDs from {sid:#x} must fit the 2^{log2size}-entry stream "
                         f"table of {smmu})")
        streams += count
        if streams > MAX_STREAMS:
            raise ScenarioError(f"{w}.count: more than {MAX_STREAMS} StreamIDs in one scenario "
                                f"(the model's bound)")
        if cfg in ("s1", "nested"):
            cd_entries += count * _cd_entries(cdfmt, s1cdmax, [c["ssid"] for c in cds])
            if cd_entries > MAX_CD_ENTRIES:
                raise ScenarioError(f"{w}.cd_table: more than {MAX_CD_ENTRIES} CD-table entries "
                                    f"in one scenario (count x 2^s1cdmax; use a 2-level "
                                    f"format or a smaller s1cdmax)")
        if "name" in s:
            name_of(w, s)
        out["stream"].append({
            "name": s.get("name"), "smmu": smmu, "sid": sid,
            "count": count, "config": cfg, "s2": s.get("s2"), "cds": cds, "s1dss": s1dss,
            "cd_table": {"format": cdfmt, "s1cdmax": s1cdmax}})
    for f in fits:
        _fits(*f)
    # Intel VT-d units, their tables and devices (scenario_vtd.py).
    _vtd.normalize(doc, out, sys.modules[__name__])
    _vtd_iommufd.normalize(doc, out, sys.modules[__name__])
    # The system around the SMMUs: GIC, PCI topology, IORT and ITSes (scenario_system.py).
    _system.normalize(doc, out, sys.modules[__name__])
    _system.check_names(out)
    return out


def _mapping(wm, m) -> dict:
    """One `maps` entry: {in, out, size, perm, count, stride, out_stride}. count mappings of
    size: the k-th maps in + k*stride to out + k*out_stride (stride defaults to size: one
    contiguous range; out_stride to stride)."""
    m = _table(wm, m)
    _known(wm, m, ("in", "out", "size", "perm", "count", "stride", "out_stride"))
    e = {k: _addr(f"{wm}.{k}", m.get(k)) for k in ("in", "out", "size")}
    e["count"] = _bounded(f"{wm}.count", m.get("count", 1), 1, MAX_MAPPINGS,
                          " (mappings one entry makes)")
    e["stride"] = _addr(f"{wm}.stride", m.get("stride", e["size"]))
    e["out_stride"] = _addr(f"{wm}.out_stride", m.get("out_stride", e["stride"]))
    if e["count"] > 1:
        for key in ("stride", "out_stride"):
            if e[key] < e["size"]:
                raise ScenarioError(f"{wm}.{key}: {_show(e[key])} is smaller than size "
                                    f"{_show(e['size'])} (the mappings would overlap)")
    for key, step in (("in", "stride"), ("out", "out_stride")):
        _range(f"{wm}.{key}", e[key], e["size"])
        if e[key] + (e["count"] - 1) * e[step] + e["size"] > ADDRESS_LIMIT:
            raise ScenarioError(f"{wm}.{step}: {e['count']} mappings from {e[key]:#x} every "
                                f"{_show(e[step])} wrap past 2^64")
    e["perm"] = _perm(f"{wm}.perm", m.get("perm", "rw"))
    return e


def _label(where, value):
    """A name or description: a string (a small number is taken as its text)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() <= 64:
        return str(value)
    return _str(where, value)


def _fits(where, what, size, pool, pool_where):
    """A structure the builder allocates from a pool must fit in it (and in the model's bound)."""
    if size > MAX_TABLE_BYTES:
        raise ScenarioError(f"{where}: {what} would be {size:#x} bytes; the model builds at most "
                            f"{MAX_TABLE_BYTES >> 20} MiB per table")
    if size > pool["size"]:
        raise ScenarioError(f"{where}: {what} ({size:#x} bytes) does not fit in {pool_where} "
                            f"({pool['size']:#x} bytes)")


def _cd_entries(cdfmt, s1cdmax, ssids):
    """CDs and L1CDs the builder writes for one stream's CD table."""
    leaf = CD_LEAF_BITS.get(CD_FORMATS[cdfmt]) if s1cdmax else None
    if leaf is None:
        return 1 << s1cdmax
    return (1 << max(0, s1cdmax - leaf)) + (len({x >> leaf for x in ssids}) << leaf)


def parse(text: str, where: str = "scenario") -> dict:
    """Parse and check a scenario; every error is one line naming `where`, the table and key."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{where}: not valid TOML: {e}") from None
    except RecursionError:
        raise ScenarioError(f"{where}: not valid TOML: arrays or tables nested too deeply") \
            from None
    except ValueError as e:     # an integer of more digits than Python converts
        raise ScenarioError(f"{where}: not valid TOML: {str(e).split(':')[0]}") from None
    try:
        return normalize(doc)
    except ScenarioError as e:
        line = _line_of(text, str(e))
        raise ScenarioError(f"{where}{f':{line}' if line else ''}: {e}") from None


def _line_of(text: str, message: str) -> int | None:
    """The line an error's key path (`stream[2].cd_table.s1cdmax: ...`) is on, found in the
    text: the [[stream]] header of that index, then the first line of its block that sets the
    deepest key named (inline tables are on one line). None when the path is not found."""
    m = re.match(r"([\w.]+)\[([^\]]+)\]((?:\.\w+|\[\d+\])*)", message)
    if not m:
        return None
    lines = text.splitlines()
    header = re.compile(r"\s*\[\[\s*" + re.escape(m.group(1)) + r"\s*\]\]")
    starts = [i for i, t in enumerate(lines) if header.match(t)]
    if not starts and "." in m.group(1) and m.group(2).isdigit():
        return _inline_line(lines, m)
    if m.group(2).isdigit():
        if int(m.group(2)) >= len(starts):
            return None
        first = starts[int(m.group(2))]
    else:       # pci and iort nodes are named by their name: `pci.device[nvme0].msix`
        named = re.compile(r"\s*name\s*=\s*[\"']" + re.escape(m.group(2)) + r"[\"']")
        first = next((i for i in starts for t in lines[i + 1:next(
            (j for j in range(i + 1, len(lines)) if lines[j].lstrip().startswith("[")),
            len(lines))] if named.match(t)), None)
        if first is None:
            return None
    end = next((i for i in range(first + 1, len(lines)) if lines[i].lstrip().startswith("[")),
               len(lines))
    found = first
    for key in re.findall(r"\.(\w+)", m.group(3)):
        at = re.compile(r"(^|[{,\s])" + re.escape(key) + r"\s*=")
        hit = next((i for i in range(found, end) if at.search(lines[i])), None)
        if hit is None:
            break
        found = hit
    return found + 1


def _inline_line(lines, m) -> int | None:
    """`iommufd.hwpt[1].ioas` in `[iommufd]` with `hwpt = [{...}, {...}]`, one entry a line:
    the line of the entry (the n-th line with a `{` from `hwpt =` on), or of `hwpt =`."""
    table, key = m.group(1).rsplit(".", 1)
    head = re.compile(r"\s*\[\s*" + re.escape(table) + r"\s*\]")
    top = next((i for i, t in enumerate(lines) if head.match(t)), None)
    if top is None:
        return None
    at = re.compile(r"\s*" + re.escape(key) + r"\s*=")
    k = next((i for i in range(top + 1, len(lines)) if at.match(lines[i])), None)
    if k is None:
        return None
    n, i = int(m.group(2)), k
    while i < len(lines) and (i == k or not re.match(r"\s*(\w+\s*=|\[)", lines[i])):
        n -= lines[i].count("{ ") + lines[i].count("{\n") if "{" in lines[i] else 0
        if n < 0:
            return i + 1
        i += 1
    return k + 1


def load(path: str) -> dict:
    return parse(read_text(path, ScenarioError, "scenario file"), path)


def builtin(name: str = "default") -> str:
    try:
        return resources.files("smmudbg.data").joinpath(f"{name}.toml").read_text()
    except FileNotFoundError:
        raise ScenarioError(f"no built-in scenario {name!r}") from None
