"""The names of the constants generated from an architecture's tables, in one place.

Pure functions over the raw table data (no imports beyond the standard library): core_cy/
gen_fields.py loads this file with runpy at build time to write the Cython constants
(core_cy/_<arch>.pxd), and smmudbg.arch.<arch>.consts calls it at import time for the Python
mirror, so both spell every constant the same way.

Naming scheme (FMT and Field as the tables spell them, e.g. STE, S1_BLOCK, SMMU_IDR5, S2TG):
  FMT_Field_<value>      enum value of a field, e.g. STE_Config_nested = 7, CD_TG1_4K = 2
                         (<value> is the enum name with every run of other characters than
                         letters and digits made one "_"; reserved values get no constant)
  FMT_Field_MASK         the field's bits in place in its dword (64-bit)
  FMT_Field_addr(w)      the address an address field encodes (Cython; *_addr_v(d) for dword 0)
  FMT_Field_<attr>       a lookup from a field's attrs (addr_bits, granule_shift): a function
                         of the encoding in Cython (0 for encodings without a value), a dict in
                         Python, e.g. CD_TG1_granule_shift(2) == 12
  FMT_DESC_<kind>        bits of a descriptor's Valid and Type fields for each kind its Type
                         enum names, e.g. S1_TABLE_DESC_table = 3, S1_BLOCK_DESC_block = 1
  FMT_DESC_TYPE_MASK     the Valid and Type bits of a descriptor
  FMT_ATTR_MASK          a descriptor's bits other than Valid, Type and its address field (upper
                         and lower attributes, IGNORED and RES0 bits)
  <code name>            each entry of a table module's CODES groups, as spelled there
                         (F_TRANSLATION = 0x10, CMD_SYNC = 0x46, CERROR_ILL = 1); the group
                         name is the Cython enum's name (EventType, CmdOpcode, CError)
  <text id>              each entry of a TEXTS group, numbered in order (R_NONE = 0, R_STE_V..);
  GROUP_TEXT, GROUP_COUNT  their texts (a C array / a list) and how many, GROUP = the group
                         name upper-cased (REASON_TEXT, REASON_COUNT)
"""
import re

ALL64 = (1 << 64) - 1
LOOKUP_ATTRS = ("addr_bits", "granule_shift")


def ident(text: str) -> str:
    """An identifier part from an enum value name: '2lvl_4k' stays, 'AF+dirty' -> 'AF_dirty'."""
    return re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_")


def _fields(flds):
    for f in flds:
        enum = (f[5] if len(f) > 5 else None) or {}
        attrs = (f[6] if len(f) > 6 else None) or {}
        yield f[0], f[1], f[2], f[3], enum, attrs


def _mask(hi, lo):
    return ((1 << (hi - lo + 1)) - 1) << lo


def build(tables):
    """Everything generated for one architecture. `tables` is a list of the globals of its table
    modules (FORMATS, and optionally DESCRIPTORS, CODES, TEXTS). Returns a dict:
      enums:   [(group or None, [(name, value)])]  small integers (Cython cdef enum)
      masks:   [(name, value)]                     64-bit masks
      lookups: [(name, {encoding: value})]
      addrs:   [(name, dword, hi, lo, shift)]      address accessors: name_addr / name_addr_v
      texts:   [(group, [(name, text)])]
      field_names: names _fields.pxd already defines (for the clash check)"""
    formats, descriptors, codes, texts = {}, [], {}, {}
    for t in tables:
        formats.update(t.get("FORMATS", {}))
        descriptors.extend(t.get("DESCRIPTORS", ()))
        codes.update(t.get("CODES", {}))
        texts.update(t.get("TEXTS", {}))
    enums, masks, lookups, addrs, field_names = [], [], [], [], set()
    values = []
    for fmt, (_size, flds) in sorted(formats.items()):
        for name, dw, hi, lo, enum, attrs in _fields(flds):
            base = f"{fmt}_{name}"
            field_names.update({base, f"{base}_DW", f"{base}_SHIFT", f"{base}_raw",
                                f"{base}_v", f"set_{base}"})
            masks.append((f"{base}_MASK", _mask(hi, lo)))
            for v, vname in sorted(enum.items()):
                if not vname.lower().startswith("reserved"):
                    values.append((f"{base}_{ident(vname)}", v))
            for a in LOOKUP_ATTRS:
                if a in attrs:
                    lookups.append((f"{base}_{a}", dict(attrs[a])))
            if "addr" in attrs:
                addrs.append((base, dw, hi, lo, attrs["addr"]))
    enums.append((None, values))
    desc = []
    for fmt in descriptors:
        by = {f[0]: f for f in _fields(formats[fmt][1])}
        valid, typ = by["Valid"], by["Type"]
        addr = [f for f in by.values() if "addr" in f[5]]
        if len(addr) != 1 or valid[1] or typ[1]:
            raise AssertionError(f"{fmt}: a descriptor has Valid, Type and one address field")
        type_mask = _mask(valid[2], valid[3]) | _mask(typ[2], typ[3])
        for v, kind in sorted(typ[4].items()):
            desc.append((f"{fmt}_DESC_{ident(kind)}", (1 << valid[3]) | (v << typ[3])))
        masks.append((f"{fmt}_DESC_TYPE_MASK", type_mask))
        masks.append((f"{fmt}_ATTR_MASK", ALL64 & ~type_mask & ~_mask(addr[0][2], addr[0][3])))
    enums.append((None, desc))
    for group, entries in codes.items():
        enums.append((group, sorted(entries.items(), key=lambda kv: (kv[1], kv[0]))))
    text_groups = []
    for group, entries in texts.items():
        enums.append((group, [(n, i) for i, (n, _t) in enumerate(entries)]))
        enums.append((None, [(f"{group.upper()}_COUNT", len(entries))]))
        text_groups.append((group, list(entries)))
    out = {"enums": enums, "masks": masks, "lookups": lookups, "addrs": addrs,
           "texts": text_groups, "field_names": field_names}
    _check_unique(out)
    return out


def names(built) -> list:
    """Every name the Cython file defines besides _fields.pxd's, in order."""
    out = [n for _g, entries in built["enums"] for n, _v in entries]
    out += [n for n, _v in built["masks"]] + [n for n, _m in built["lookups"]]
    out += [n for base, *_ in built["addrs"] for n in (f"{base}_addr", f"{base}_addr_v")]
    out += [f"{g.upper()}_TEXT" for g, _e in built["texts"]]
    out += [g for g, _e in built["enums"] if g]
    return out


def _check_unique(built):
    """No generated name may repeat, nor shadow an accessor of _fields.pxd: a module cimports
    both."""
    seen = set(built["field_names"])
    for n in names(built):
        if n in seen:
            raise AssertionError(f"generated name {n} is defined twice")
        seen.add(n)


def python_namespace(built) -> dict:
    """The Python mirror: the same names bound to ints, dicts (lookups) and lists (texts)."""
    ns = {}
    for _g, entries in built["enums"]:
        ns.update(entries)
    ns.update(built["masks"])
    ns.update(built["lookups"])
    for group, entries in built["texts"]:
        ns[f"{group.upper()}_TEXT"] = [t for _n, t in entries]
    return ns
