"""A translation table descriptor as bit-view rows: its fields by the field tables (the same
S1_TABLE/S1_BLOCK/S2_TABLE/S2_BLOCK formats `set desc` writes through), for the page-table
view's bit view and the field editor. Display only: the value comes from a command's result."""
from __future__ import annotations

from ..arch.fieldtable import Format, fmt


def desc_kind(outcome_or_kind: str) -> str | None:
    """`set desc` kind= of a row or walk step: table, leaf (block or page); None for an entry
    that holds no descriptor we can name (invalid, fault)."""
    if outcome_or_kind == "table":
        return "table"
    if outcome_or_kind in ("block", "page"):
        return "leaf"
    return None


def desc_format(stage: int, kind: str) -> Format:
    from ..commands.change import DESC_FORMATS     # (the model: not before the first frame)
    return fmt(DESC_FORMATS[(str(stage), kind)])


def desc_fields(value: int, stage: int, kind: str) -> dict:
    """{name, rows: [{field, dword, bits, value, meaning, doc}], problem: None}: what BitView
    shows."""
    f = desc_format(stage, kind)
    return {"name": f.name, "rows": f.describe([value]), "problem": None}
