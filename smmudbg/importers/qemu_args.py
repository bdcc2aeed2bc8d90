"""The argument line of `import qemu`: MEMORY --regs FILE [--gic FILE] [--ram-base ADDR], also
as --regs=FILE and regs=FILE gic=FILE ram_base=ADDR (the forms QEMU users type). Errors are one
line naming the command.
"""
from __future__ import annotations

import shlex

from ..errors import SmmuDbgError


class ImportArgsError(SmmuDbgError):
    """An `import qemu` line that does not parse."""


USAGE = "import qemu MEMORY --regs REGS.json [--gic GIC.json] [--ram-base ADDR]"
_OPTS = {"--regs": "regs", "regs": "regs", "--ram-base": "ram_base", "ram_base": "ram_base",
         "--ram_base": "ram_base", "ram-base": "ram_base", "--gic": "gic", "gic": "gic"}


def parse_import_args(text: str) -> dict:
    """MEMORY --regs FILE [--gic FILE] [--ram-base ADDR]; also --regs=FILE and regs=FILE
    gic=FILE ram_base=ADDR. Returns {memory, regs, gic (or None), ram_base (the text given, or
    None)}."""
    try:
        toks = shlex.split(text, comments=False, posix=True)
    except ValueError as e:
        raise ImportArgsError(f"import qemu: cannot split the line: {str(e).lower()}") from None
    vals: dict = {}
    memory = None
    i = 0
    while i < len(toks):
        tok = toks[i]
        key, eq, val = tok.partition("=")
        if key in _OPTS and (eq or key.startswith("--")):
            if not eq:
                if i + 1 >= len(toks):
                    raise ImportArgsError(f"import qemu: {key} needs a value (usage: {USAGE})")
                val = toks[i + 1]
                i += 1
            name = _OPTS[key]
            if name in vals:
                raise ImportArgsError(f"import qemu: {key}: given twice")
            vals[name] = val
        elif tok.startswith("--"):
            raise ImportArgsError(f"import qemu: unknown option {tok!r} (usage: {USAGE})")
        elif memory is None:
            memory = tok
        else:
            raise ImportArgsError(f"import qemu: unexpected {tok!r} (usage: {USAGE})")
        i += 1
    if memory is None:
        raise ImportArgsError(f"import qemu: missing MEMORY (usage: {USAGE})")
    if "regs" not in vals:
        raise ImportArgsError(f"import qemu: missing --regs REGS.json (usage: {USAGE})")
    return {"memory": memory, "regs": vals["regs"], "gic": vals.get("gic"),
            "ram_base": vals.get("ram_base")}
