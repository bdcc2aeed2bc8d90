"""Scenario files: a TOML description of a system, checked before anything is built.

Every error names the table and key it is about, e.g. `stream[2].config: 'nestd' is not one
of abort, bypass, s1, s2, nested`. Loading parses TOML only; nothing in the file is executed.
"""
from __future__ import annotations

import tomllib
from importlib import resources

from ..arch.smmuv3 import consts as C
from ..errors import ScenarioError
from ..textfile import read_text

# Scenario spellings of STE.Config, S1DSS and S1Fmt, with the values the field tables give them.
CONFIGS = {"abort": C.STE_Config_abort, "bypass": C.STE_Config_bypass, "s1": C.STE_Config_s1_trans,
           "s2": C.STE_Config_s2_trans, "nested": C.STE_Config_nested}
S1DSS = {"terminate": C.STE_S1DSS_terminate, "bypass": C.STE_S1DSS_bypass,
         "substream0": C.STE_S1DSS_substream0}
CD_FORMATS = {"linear": C.STE_S1Fmt_linear, "2lvl_4k": C.STE_S1Fmt_2lvl_4k,
              "2lvl_64k": C.STE_S1Fmt_2lvl_64k}
# The translation granules (CD.TG0 / STE.S2TG), in bytes.
GRANULES = tuple(sorted(1 << s for s in C.CD_TG0_granule_shift.values()))


def _int(where, value):
    if isinstance(value, bool):
        raise ScenarioError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.replace("_", ""), 0)
        except ValueError:
            pass
    raise ScenarioError(f"{where}: expected a number, got {value!r}")


def _perm(where, text):
    if not isinstance(text, str) or set(text) - set("rwxp") or not text:
        raise ScenarioError(f"{where}: permission {text!r} must be letters from 'rwxp' (p: privileged only)")
    return text


def _table(where, value):
    if not isinstance(value, dict):
        raise ScenarioError(f"{where}: expected a table, got {type(value).__name__}")
    return value


def _known(where, table, keys):
    extra = set(table) - set(keys)
    if extra:
        raise ScenarioError(f"{where}: unknown key {sorted(extra)[0]!r} "
                            f"(known: {', '.join(sorted(keys))})")


def _pool(where, value):
    value = _table(where, value)
    _known(where, value, ("base", "size"))
    try:
        return {"base": _int(f"{where}.base", value["base"]),
                "size": _int(f"{where}.size", value["size"])}
    except KeyError as e:
        raise ScenarioError(f"{where}: missing {e.args[0]!r}") from None


def _list(doc, key):
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise ScenarioError(f"{key}: expected an array of tables ([[{key}]])")
    return value


def normalize(doc: dict) -> dict:
    """Check a parsed scenario and return it with defaults filled and numbers as ints."""
    doc = _table("scenario", doc)
    _known("scenario", doc, ("name", "description", "ram", "smmu", "vm", "domain", "stream"))
    out = {"name": str(doc.get("name", "unnamed")), "description": str(doc.get("description", "")),
           "ram": [], "smmu": [], "vm": [], "domain": [], "stream": []}
    for i, r in enumerate(_list(doc, "ram")):
        out["ram"].append(_pool(f"ram[{i}]", r))
    names = set()

    def name_of(where, t):
        n = t.get("name")
        if not isinstance(n, str) or not n:
            raise ScenarioError(f"{where}.name: missing or not a string")
        if n in names:
            raise ScenarioError(f"{where}.name: {n!r} is already used")
        names.add(n)
        return n

    for i, s in enumerate(_list(doc, "smmu")):
        w = f"smmu[{i}]"
        s = _table(w, s)
        _known(w, s, ("name", "base", "features", "stream_table", "cmdq_log2size",
                      "evtq_log2size", "pool", "caching"))
        st = _table(f"{w}.stream_table", s.get("stream_table", {}))
        _known(f"{w}.stream_table", st, ("format", "log2size", "split"))
        fmt = st.get("format", "linear")
        if fmt not in ("linear", "2lvl"):
            raise ScenarioError(f"{w}.stream_table.format: {fmt!r} is not linear or 2lvl")
        feats = _table(f"{w}.features", s.get("features", {}))
        if "pool" not in s:
            raise ScenarioError(f"{w}.pool: missing (host memory for the SMMU's structures)")
        out["smmu"].append({
            "name": name_of(w, s), "base": _int(f"{w}.base", s.get("base", 0)),
            "features": {k: _int(f"{w}.features.{k}", v) for k, v in feats.items()},
            "stream_table": {"format": fmt,
                             "log2size": _int(f"{w}.stream_table.log2size",
                                              st.get("log2size", 8)),
                             "split": _int(f"{w}.stream_table.split", st.get("split", 8))},
            "cmdq_log2size": _int(f"{w}.cmdq_log2size", s.get("cmdq_log2size", 8)),
            "evtq_log2size": _int(f"{w}.evtq_log2size", s.get("evtq_log2size", 7)),
            "pool": _pool(f"{w}.pool", s["pool"]),
            "caching": bool(s.get("caching", True)),
        })
    smmus = {s["name"] for s in out["smmu"]}
    for i, v in enumerate(_list(doc, "vm")):
        w = f"vm[{i}]"
        v = _table(w, v)
        _known(w, v, ("name", "ram"))
        ram = []
        for j, r in enumerate(v.get("ram", [])):
            r = _table(f"{w}.ram[{j}]", r)
            _known(f"{w}.ram[{j}]", r, ("ipa", "pa", "size"))
            ram.append({k: _int(f"{w}.ram[{j}].{k}", r.get(k)) for k in ("ipa", "pa", "size")})
        out["vm"].append({"name": name_of(w, v), "ram": ram})
    vms = {v["name"] for v in out["vm"]}
    for i, d in enumerate(_list(doc, "domain")):
        w = f"domain[{i}]"
        d = _table(w, d)
        _known(w, d, ("name", "smmu", "stage", "granule", "vabits", "ias", "asid", "vmid", "vm",
                      "pool", "maps", "map_vm", "perm"))
        stage = _int(f"{w}.stage", d.get("stage", 1))
        if stage not in (1, 2):
            raise ScenarioError(f"{w}.stage: {stage} is not 1 or 2")
        gran = _int(f"{w}.granule", d.get("granule", 4096))
        if gran not in GRANULES:
            raise ScenarioError(f"{w}.granule: {gran:#x} is not 4K, 16K or 64K")
        if d.get("smmu") not in smmus:
            raise ScenarioError(f"{w}.smmu: {d.get('smmu')!r} is not a declared SMMU")
        for key in ("vm", "map_vm"):
            if key in d and d[key] not in vms:
                raise ScenarioError(f"{w}.{key}: {d[key]!r} is not a declared VM")
        maps = []
        for j, m in enumerate(d.get("maps", [])):
            m = _table(f"{w}.maps[{j}]", m)
            _known(f"{w}.maps[{j}]", m, ("in", "out", "size", "perm"))
            maps.append({"in": _int(f"{w}.maps[{j}].in", m.get("in")),
                         "out": _int(f"{w}.maps[{j}].out", m.get("out")),
                         "size": _int(f"{w}.maps[{j}].size", m.get("size")),
                         "perm": _perm(f"{w}.maps[{j}].perm", m.get("perm", "rw"))})
        bits = d.get("ias" if stage == 2 else "vabits", 48 if stage == 1 else 40)
        out["domain"].append({
            "name": name_of(w, d), "smmu": d["smmu"], "stage": stage, "granule": gran,
            "bits": _int(f"{w}.{'ias' if stage == 2 else 'vabits'}", bits),
            "asid": _int(f"{w}.asid", d.get("asid", 0)), "vmid": _int(f"{w}.vmid", d.get("vmid", 0)),
            "vm": d.get("vm"), "map_vm": d.get("map_vm"),
            "perm": _perm(f"{w}.perm", d.get("perm", "rwx")),
            "pool": _pool(f"{w}.pool", d["pool"]) if "pool" in d else None, "maps": maps})
    domains = {d["name"]: d for d in out["domain"]}
    for i, s in enumerate(_list(doc, "stream")):
        w = f"stream[{i}]"
        s = _table(w, s)
        _known(w, s, ("name", "smmu", "sid", "count", "config", "s2", "cds", "cd_table",
                      "s1dss", "vm"))
        cfg = s.get("config", "abort")
        if cfg not in CONFIGS:
            raise ScenarioError(f"{w}.config: {cfg!r} is not one of {', '.join(CONFIGS)}")
        if s.get("smmu") not in smmus:
            raise ScenarioError(f"{w}.smmu: {s.get('smmu')!r} is not a declared SMMU")
        if cfg in ("s2", "nested"):
            if domains.get(s.get("s2"), {}).get("stage") != 2:
                raise ScenarioError(f"{w}.s2: {s.get('s2')!r} is not a stage-2 domain")
        cds = []
        for j, c in enumerate(s.get("cds", [])):
            c = _table(f"{w}.cds[{j}]", c)
            _known(f"{w}.cds[{j}]", c, ("ssid", "domain"))
            if domains.get(c.get("domain"), {}).get("stage") != 1:
                raise ScenarioError(f"{w}.cds[{j}].domain: {c.get('domain')!r} is not a "
                                    f"stage-1 domain")
            cds.append({"ssid": _int(f"{w}.cds[{j}].ssid", c.get("ssid", j)),
                        "domain": c["domain"]})
        if cfg in ("s1", "nested") and not cds:
            raise ScenarioError(f"{w}.cds: a {cfg} stream needs at least one CD")
        ct = _table(f"{w}.cd_table", s.get("cd_table", {}))
        _known(f"{w}.cd_table", ct, ("format", "s1cdmax"))
        if ct.get("format", "linear") not in CD_FORMATS:
            raise ScenarioError(f"{w}.cd_table.format: {ct.get('format')!r} is not one of "
                                f"{', '.join(CD_FORMATS)}")
        s1dss = s.get("s1dss", "substream0")
        if s1dss not in S1DSS:
            raise ScenarioError(f"{w}.s1dss: {s1dss!r} is not one of {', '.join(S1DSS)}")
        if "sid" not in s:
            raise ScenarioError(f"{w}.sid: missing")
        count = _int(f"{w}.count", s.get("count", 1))
        if count < 1:
            raise ScenarioError(f"{w}.count: must be at least 1")
        if "name" in s:
            name_of(w, s)
        out["stream"].append({
            "name": s.get("name"), "smmu": s["smmu"], "sid": _int(f"{w}.sid", s["sid"]),
            "count": count, "config": cfg, "s2": s.get("s2"), "cds": cds, "s1dss": s1dss,
            "cd_table": {"format": ct.get("format", "linear"),
                         "s1cdmax": _int(f"{w}.cd_table.s1cdmax", ct.get("s1cdmax", 0))}})
    return out


def parse(text: str, where: str = "scenario") -> dict:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{where}: not valid TOML: {e}") from None
    return normalize(doc)


def load(path: str) -> dict:
    return parse(read_text(path, ScenarioError, "scenario file"), path)


def builtin(name: str = "default") -> str:
    try:
        return resources.files("smmudbg.data").joinpath(f"{name}.toml").read_text()
    except FileNotFoundError:
        raise ScenarioError(f"no built-in scenario {name!r}") from None
