"""Errors a user sees as one line. Anything else escaping a command is a bug (and is reported as
one line too, by the front ends)."""


class SmmuDbgError(Exception):
    """A user-facing error: the message names what and where."""


class ScenarioError(SmmuDbgError):
    """A malformed scenario file or value."""


class ModelError(SmmuDbgError):
    """A request the model cannot honour (unknown name, address out of range...)."""


def brief(value, decimal: bool = False) -> str:
    """A value for an error message, one short line whatever the value is (integers in hex
    unless decimal: counts and log2 sizes)."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        if value.bit_length() > 128:
            return f"a {value.bit_length()}-bit {'negative ' if value < 0 else ''}integer"
        return str(value) if decimal or abs(value) <= 9 else hex(value)
    if isinstance(value, str):
        r = repr(value)
        return r if len(r) <= 60 else r[:50] + f"...' ({len(value)} characters)"
    return {list: "an array", dict: "a table", float: "a float"}.get(type(value),
                                                                       type(value).__name__)


def listing(names, limit: int = 160) -> str:
    """Names for an error message ("have: a, b, c"), each brief, cut short when long."""
    names = list(names)
    if not names:
        return "none"
    out = ""
    for i, n in enumerate(names):
        item = n if isinstance(n, str) and len(n) <= 40 else brief(n)
        if out and len(out) + len(item) > limit:
            return out + f", ... ({len(names)} in all)"
        out += (", " if out else "") + item
    return out
