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


def step_name(s: dict) -> str:
    """A walk step's name: STE, CD, S1 L2, S2 L3 (for TT), ..."""
    if s["what"] in ("S1", "S2"):
        name = f"{s['what']} L{s['level']}"
        if s.get("purpose"):
            name += f" (for {s['purpose']})"
        return name
    return s["what"]
