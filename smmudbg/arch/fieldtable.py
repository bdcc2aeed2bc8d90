"""Field tables as objects: decode, encode, validate and describe one in-memory format.

Generic: nothing here knows an architecture. Each architecture is a subpackage of smmudbg.arch
whose __init__ lists its table modules in TABLES (pure data, e.g. smmudbg/arch/smmuv3/); they
are found by looking at this package's directory, so adding arch/gicv3/ or arch/vtd/ needs no
edit here. The Cython core reads the same tables through generated accessors
(core_cy/gen_fields.py).

A field is (name, dword, hi, lo, doc[, enum[, attrs]]): bits hi..lo of little-endian 64-bit
word `dword`; enum maps values to names (None or {} for none; a name starting with "reserved"
marks a reserved value); attrs says what the value is, explicitly (see FIELD_ATTRS).
"""
from __future__ import annotations

import importlib
import pkgutil
import struct
from dataclasses import dataclass, field

# What a field's attrs may say. Consumers read these; nothing is guessed from the doc text.
FIELD_ATTRS = {
    "addr": "the field holds address bits [hi-lo+addr : addr]: address = value << addr",
    "log2": "the value is the log2 of a count or size (printed in decimal)",
    "number": "the value is a count, size or level (printed in decimal)",
    "addr_bits": "{encoding: address size in bits} (PS, IPS, OAS)",
    "granule_shift": "{encoding: log2 of the translation granule} (TG0, TG1, S2TG)",
}


class FieldError(ValueError):
    """A field name or value that the format does not allow."""


@dataclass(frozen=True)
class Field:
    name: str
    dword: int
    hi: int
    lo: int
    doc: str
    enum: dict = field(default_factory=dict, compare=False, hash=False)
    attrs: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        unknown = set(self.attrs) - set(FIELD_ATTRS)
        if unknown:
            raise AssertionError(f"{self.name}: unknown field attribute {sorted(unknown)[0]!r}")

    @property
    def width(self) -> int:
        return self.hi - self.lo + 1

    @property
    def mask(self) -> int:
        return (1 << self.width) - 1

    @property
    def inplace_mask(self) -> int:
        """The field's bits in place in its dword."""
        return self.mask << self.lo

    @property
    def abs_bits(self) -> tuple[int, int]:
        """Bit positions as IHI 0070 numbers them across the whole structure."""
        return 64 * self.dword + self.hi, 64 * self.dword + self.lo

    def get(self, words) -> int:
        return (words[self.dword] >> self.lo) & self.mask

    def put(self, words: list, value: int) -> None:
        words[self.dword] = (words[self.dword] & ~(self.mask << self.lo)) | (value << self.lo)

    def get_rows(self, rows):
        """get() of every row of rows (an (n, words) uint64 numpy array): n values."""
        import numpy as np
        return (rows[:, self.dword] >> np.uint64(self.lo)) & np.uint64(self.mask)

    def put_rows(self, rows, values) -> None:
        """put() into every row of rows (an (n, words) uint64 numpy array), row i getting
        values[i] (n integers that fit the field)."""
        import numpy as np
        col = rows[:, self.dword]
        v = np.asarray(values, dtype=np.uint64) & np.uint64(self.mask)
        rows[:, self.dword] = (col & ~np.uint64(self.inplace_mask)) | (v << np.uint64(self.lo))

    def put_addresses(self, rows, addrs) -> None:
        """put_rows() of the field values that encode addrs (an address field); FieldError
        if one is not aligned or too wide, as from_address()."""
        import numpy as np
        a = np.asarray(addrs, dtype=np.uint64)
        s = self.attrs.get("addr")
        if s is None:
            raise FieldError(f"{self.name} is not an address field")
        top = s + self.width
        over = (a >> np.uint64(top)) if top < 64 else np.zeros_like(a)
        bad = np.nonzero((a & np.uint64((1 << s) - 1)) | over)[0]
        if len(bad):
            self.from_address(int(a[bad[0]]))          # raises, naming the address
        self.put_rows(rows, a >> np.uint64(s))

    def value_name(self, value: int) -> str | None:
        return self.enum.get(value)

    # -- what the value is ----------------------------------------------------------------------
    @property
    def address_shift(self) -> int | None:
        """For an address field, the address bit its lowest bit holds; else None."""
        return self.attrs.get("addr")

    @property
    def is_address(self) -> bool:
        return "addr" in self.attrs

    @property
    def address_bits(self) -> tuple[int, int] | None:
        """(hi, lo) of the address bits the field holds, as the spec writes "address [55:6]"."""
        s = self.address_shift
        return None if s is None else (s + self.width - 1, s)

    def address(self, words) -> int:
        """The address the field encodes in `words`."""
        return self.to_address(self.get(words))

    def to_address(self, value: int) -> int:
        if not self.is_address:
            raise FieldError(f"{self.name} is not an address field")
        return value << self.attrs["addr"]

    def from_address(self, addr: int) -> int:
        """The field value that encodes `addr`; FieldError if it is not aligned or too wide."""
        if not self.is_address:
            raise FieldError(f"{self.name} is not an address field")
        s = self.attrs["addr"]
        if addr < 0 or addr & ((1 << s) - 1):
            raise FieldError(f"{self.name}: {addr:#x} is not {1 << s}-byte aligned "
                             f"(the field holds address bits [{s + self.width - 1}:{s}])")
        if addr >> (s + self.width):
            raise FieldError(f"{self.name}: {addr:#x} does not fit in address bits "
                             f"[{s + self.width - 1}:{s}]")
        return addr >> s

    @property
    def is_log2(self) -> bool:
        return bool(self.attrs.get("log2"))

    @property
    def decimal(self) -> bool:
        """Counts, sizes, levels and log2 sizes read best in decimal."""
        return bool(self.attrs.get("log2") or self.attrs.get("number"))

    @property
    def addr_bits(self) -> dict:
        """{encoding: address size in bits} for a PS/IPS/OAS field, else {}."""
        return self.attrs.get("addr_bits", {})

    @property
    def granule_shift(self) -> dict:
        """{encoding: granule shift} for a TG field, else {}."""
        return self.attrs.get("granule_shift", {})

    def meaning(self, value: int) -> str:
        """What a value means: its enum name, or the address it encodes."""
        name = self.enum.get(value)
        if name:
            return name
        if value and self.is_address:
            return f"address {self.to_address(value):#x}"
        return ""

    def is_reserved(self, value: int) -> bool:
        name = self.enum.get(value)
        return name is not None and name.startswith("reserved")

    def parse(self, text) -> int:
        """A value given as a number or as one of the enum names."""
        if isinstance(text, int):
            value = text
        else:
            low = str(text).strip()
            for v, n in self.enum.items():
                if n.lower() == low.lower():
                    return v
            try:
                value = int(low, 0)
            except ValueError:
                names = ", ".join(n for n in self.enum.values() if not n.startswith("reserved"))
                raise FieldError(f"{self.name}: {text!r} is not a number"
                                 + (f" or one of {names}" if names else "")) from None
        if value < 0 or value > self.mask:
            raise FieldError(f"{self.name}: {value:#x} does not fit in {self.width} bits "
                             f"[{self.hi}:{self.lo}]")
        return value


class Format:
    """One architected structure: a list of fields over `size` bytes of little-endian words."""

    def __init__(self, name: str, size: int, fields, arch: str | None = None):
        self.name = name
        self.size = size
        self.arch = arch
        # A size that is not a multiple of 8 (a 12-byte ITS ITE) ends in a partial dword.
        self.nwords = max(1, -(-size // 8))
        self.fields = [Field(*f[:5], enum=(f[5] if len(f) > 5 else None) or {},
                             attrs=(f[6] if len(f) > 6 else None) or {}) for f in fields]
        self.by_name = {f.name.lower(): f for f in self.fields}
        self._check_overlaps()

    def _check_overlaps(self):
        seen = {}
        for f in self.fields:
            for b in range(f.lo, f.hi + 1):
                key = (f.dword, b)
                if key in seen:
                    raise AssertionError(f"{self.name}: {f.name} overlaps {seen[key]}")
                seen[key] = f.name

    def field(self, name: str) -> Field:
        try:
            return self.by_name[name.lower()]
        except KeyError:
            raise FieldError(f"{self.name} has no field {name!r}") from None

    def decode(self, words) -> dict:
        return {f.name: f.get(words) for f in self.fields}

    def encode(self, base=None, **values) -> list:
        words = list(base) if base is not None else [0] * self.nwords
        for name, value in values.items():
            f = self.field(name)
            f.put(words, f.parse(value))
        return words

    def reserved_bits(self, words) -> list[tuple[int, int]]:
        """(dword, mask) of set bits that no field of this table covers (RES0 in our model)."""
        out = []
        for dw in range(self.nwords):
            covered = 0
            for f in self.fields:
                if f.dword == dw:
                    covered |= f.mask << f.lo
            stray = words[dw] & ~covered & (2**64 - 1)
            if stray:
                out.append((dw, stray))
        return out

    def reserved_values(self, words) -> list[str]:
        return [f"{f.name}={f.get(words)} is reserved" for f in self.fields
                if f.enum and f.is_reserved(f.get(words))]

    def describe(self, words) -> list[dict]:
        """Rows for display: name, bit range, value, meaning."""
        rows = []
        for f in self.fields:
            v = f.get(words)
            rows.append({"field": f.name, "dword": f.dword, "bits": f"{f.hi}:{f.lo}"
                         if f.hi != f.lo else str(f.lo), "value": v,
                         "meaning": f.meaning(v), "doc": f.doc})
        return rows

    def from_bytes(self, data: bytes) -> list:
        if len(data) < 8 * self.nwords:
            # A 4-byte register or a 12-byte entry: the missing high bytes read as zero.
            data = bytes(data).ljust(8 * self.nwords, b"\0")
        return list(struct.unpack_from(f"<{self.nwords}Q", data))

    def to_bytes(self, words) -> bytes:
        return struct.pack(f"<{self.nwords}Q", *words)


# ---------------------------------------------------------------------------------------------
# Architectures: subpackages of this package that list their table modules in TABLES.
# ---------------------------------------------------------------------------------------------
_PACKAGE = __name__.rpartition(".")[0]
_LOADED: dict[str, dict[str, Format]] = {}
_BY_NAME: dict[str, Format] = {}


def architectures() -> list[str]:
    """Names of the architectures that have field tables ('smmuv3', ...)."""
    here = importlib.import_module(_PACKAGE)
    out = []
    for m in pkgutil.iter_modules(here.__path__):
        if m.ispkg and hasattr(importlib.import_module(f"{_PACKAGE}.{m.name}"), "TABLES"):
            out.append(m.name)
    return sorted(out)


def formats(arch: str) -> dict[str, Format]:
    """Every format of one architecture, by name."""
    if arch not in _LOADED:
        if arch not in architectures():
            raise FieldError(f"unknown architecture {arch!r}; known: "
                             f"{', '.join(architectures())}")
        pkg = importlib.import_module(f"{_PACKAGE}.{arch}")
        tables = {}
        for mod in pkg.TABLES:
            tables.update(getattr(importlib.import_module(f"{_PACKAGE}.{arch}.{mod}"),
                                  "FORMATS", {}))
        _LOADED[arch] = {name: Format(name, size, flds, arch)
                         for name, (size, flds) in tables.items()}
    return _LOADED[arch]


def _all_formats() -> dict[str, Format]:
    if not _BY_NAME:
        found = {}
        for arch in architectures():
            for name, f in formats(arch).items():
                if name in found:
                    raise AssertionError(f"format {name} is defined by {found[name].arch} "
                                         f"and {arch}: qualify it as arch:{name}")
                found[name] = f
        _BY_NAME.update(found)
    return _BY_NAME


def fmt(name: str, arch: str | None = None) -> Format:
    """A format by name ('STE'), within one architecture or ('smmuv3:STE') qualified."""
    if arch is None and ":" in name:
        arch, name = name.split(":", 1)
    table = formats(arch) if arch is not None else _all_formats()
    try:
        return table[name.upper()]
    except KeyError:
        raise FieldError(f"unknown format {name!r}; known: {', '.join(sorted(table))}") from None


def __getattr__(name):
    # FORMATS (every architecture's formats by name) is built on first use, not at import.
    if name == "FORMATS":
        return _all_formats()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
