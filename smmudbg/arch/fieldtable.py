"""Field tables as objects: decode, encode, validate and describe one in-memory format.

The data lives in smmudbg/arch/smmuv3/fields*.py; the Cython walker reads the same tables through
generated accessors (core_cy/gen_fields.py).
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

# A field that holds bits [hi:lo] of an address says so in its doc: "... address [55:6]".
_ADDRESS_DOC = re.compile(r"(?:address|PA) \[(\d+):(\d+)\]")


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

    @property
    def width(self) -> int:
        return self.hi - self.lo + 1

    @property
    def mask(self) -> int:
        return (1 << self.width) - 1

    @property
    def abs_bits(self) -> tuple[int, int]:
        """Bit positions as IHI 0070 numbers them across the whole structure."""
        return 64 * self.dword + self.hi, 64 * self.dword + self.lo

    def get(self, words) -> int:
        return (words[self.dword] >> self.lo) & self.mask

    def put(self, words: list, value: int) -> None:
        words[self.dword] = (words[self.dword] & ~(self.mask << self.lo)) | (value << self.lo)

    def value_name(self, value: int) -> str | None:
        return self.enum.get(value)

    @property
    def is_address(self) -> bool:
        """True when the field holds address bits [hi:lo] in place (address = value << lo)."""
        m = _ADDRESS_DOC.search(self.doc)
        return bool(m) and int(m.group(2)) == self.lo

    def meaning(self, value: int) -> str:
        """What a value means: its enum name, or the address it encodes."""
        name = self.enum.get(value)
        if name:
            return name
        if value and self.is_address:
            return f"address {value << self.lo:#x}"
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

    def __init__(self, name: str, size: int, fields):
        self.name = name
        self.size = size
        self.nwords = max(1, size // 8)
        self.fields = [Field(*f[:5], enum=f[5] if len(f) > 5 else {}) for f in fields]
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
        return list(struct.unpack_from(f"<{self.nwords}Q", data))

    def to_bytes(self, words) -> bytes:
        return struct.pack(f"<{self.nwords}Q", *words)


def _load():
    from .smmuv3 import fields
    tables = dict(fields.FORMATS)
    for mod in ("fields_queue", "registers"):
        try:
            m = __import__(f"smmudbg.arch.smmuv3.{mod}", fromlist=["FORMATS"])
        except ImportError:
            continue
        tables.update(m.FORMATS)
    return {name: Format(name, size, flds) for name, (size, flds) in tables.items()}


FORMATS = _load()


def fmt(name: str) -> Format:
    try:
        return FORMATS[name.upper()]
    except KeyError:
        raise FieldError(f"unknown format {name!r}; known: {', '.join(sorted(FORMATS))}") from None
