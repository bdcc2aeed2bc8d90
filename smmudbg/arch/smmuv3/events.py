"""Encode and decode SMMUv3 event records (32 bytes) and commands (16 bytes).

The layouts are the EVT_* and CMD_* tables in fields_queue.py; this module only picks the table by
the Type / Opcode field and moves bytes in and out through smmudbg.arch.fieldtable.Format.
"""
from __future__ import annotations

from smmudbg.arch.fieldtable import FieldError, fmt
from smmudbg.arch.smmuv3.fields_queue import (CERROR, EVENT_TYPES, OPCODES, OTHER_OPCODES)

EVENT_SIZE = fmt("EVT_F_UUT").size      # every event record and command has the same size
CMD_SIZE = fmt("CMD_SYNC").size

_EVENT_BY_CODE = {code: name for name, code in EVENT_TYPES.items()}
# CMD_CFGI_ALL shares 0x04 with CMD_CFGI_STE_RANGE; the reverse map keeps STE_RANGE and
# decode_cmd promotes Range == 31 to CMD_CFGI_ALL.
_CMD_BY_OPCODE = {op: name for name, op in OPCODES.items() if name != "CMD_CFGI_ALL"}
_OTHER_BY_OPCODE = {op: name for name, op in OTHER_OPCODES.items()}
_CFGI_ALL_RANGE = 31

__all__ = ["CERROR", "EVENT_TYPES", "OPCODES", "event_name", "event_format", "encode_event",
           "decode_event", "encode_cmd", "decode_cmd", "cmd_name", "cerror_name"]


def _bytes(raw, size: int, what: str) -> bytes:
    raw = bytes(raw)
    if len(raw) < size:
        raise FieldError(f"{what} needs {size} bytes, got {len(raw)}")
    return raw[:size]


def event_name(code: int) -> str:
    """'F_TRANSLATION' for 0x10; 'IMPDEF_EVENT' for 0xE0-0xEF; 'UNKNOWN' otherwise."""
    if code in _EVENT_BY_CODE:
        return _EVENT_BY_CODE[code]
    if 0xE0 <= code <= 0xEF:
        return "IMPDEF_EVENT"
    return "UNKNOWN"


def _event_key(name: str) -> str:
    name = name.upper()
    if name.startswith("EVT_"):
        name = name[4:]
    if name not in EVENT_TYPES:
        raise FieldError(f"unknown event {name!r}; known: {', '.join(EVENT_TYPES)}")
    return name


def event_format(name_or_code):
    """The Format of an event given its name ('F_TRANSLATION' or 'EVT_F_TRANSLATION') or code.

    Events the architecture defines but that have no table here (E_PAGE_REQUEST) and unknown codes
    get the common header only (EVT_C_BAD_STE's layout: Type, SSV, SubstreamID, StreamID)."""
    if isinstance(name_or_code, int):
        name = event_name(name_or_code)
    else:
        name = _event_key(name_or_code)
    try:
        return fmt("EVT_" + name)
    except FieldError:
        return fmt("EVT_C_BAD_STE")


def encode_event(name: str, **fields) -> bytes:
    """32 bytes of the event record `name` with the given fields; Type is filled in."""
    key = _event_key(name)
    f = event_format(key)
    fields.setdefault("Type", EVENT_TYPES[key])
    return f.to_bytes(f.encode(**fields))


def decode_event(raw) -> dict:
    """Field values of a 32-byte event record, laid out by its Type (dword 0 bits [7:0])."""
    raw = _bytes(raw, EVENT_SIZE, "an event record")
    code = raw[0]
    f = event_format(code)
    return f.decode(f.from_bytes(raw))


def cmd_name(opcode: int, range_field: int | None = None) -> str:
    if opcode == OPCODES["CMD_CFGI_STE_RANGE"] and range_field == _CFGI_ALL_RANGE:
        return "CMD_CFGI_ALL"
    return _CMD_BY_OPCODE.get(opcode) or _OTHER_BY_OPCODE.get(opcode) or "UNKNOWN"


def encode_cmd(name: str, **fields) -> bytes:
    """16 bytes of command `name`; Opcode is filled in (and Range = 31 for CMD_CFGI_ALL)."""
    key = name.upper()
    if not key.startswith("CMD_"):
        key = "CMD_" + key
    if key not in OPCODES:
        raise FieldError(f"unknown command {name!r}; known: {', '.join(OPCODES)}")
    f = fmt(key)
    fields.setdefault("Opcode", OPCODES[key])
    if key == "CMD_CFGI_ALL":
        fields.setdefault("Range", _CFGI_ALL_RANGE)
    return f.to_bytes(f.encode(**fields))


def decode_cmd(raw) -> tuple[str, dict]:
    """(name, fields) of a 16-byte command. CMD_CFGI_STE_RANGE with Range == 31 is CMD_CFGI_ALL.
    Opcodes without a table here return (name, {"Opcode": n}); unknown ones ("UNKNOWN", ...)."""
    raw = _bytes(raw, CMD_SIZE, "a command")
    opcode = raw[0]
    if opcode not in _CMD_BY_OPCODE:
        return cmd_name(opcode), {"Opcode": opcode}
    name = _CMD_BY_OPCODE[opcode]
    f = fmt(name)
    words = f.from_bytes(raw)
    if name == "CMD_CFGI_STE_RANGE" and f.field("Range").get(words) == _CFGI_ALL_RANGE:
        name = "CMD_CFGI_ALL"
        f = fmt(name)
    return name, f.decode(words)


def cerror_name(code: int) -> str:
    for name, value in CERROR.items():
        if value == code:
            return name
    return "UNKNOWN"
