"""Small text helpers shared by the views."""
from __future__ import annotations


def hx(v) -> str:
    """An address or raw value in hex; '-' for None."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return f"{v:#x}"
    return str(v)
