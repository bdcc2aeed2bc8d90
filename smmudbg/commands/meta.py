"""help: the command list and each command's usage and help text (its handler's docstring)."""
from __future__ import annotations

from .. import results as res
from .registry import REGISTRY, CommandError, Text, command, shown

AREAS = {"inspect": "inspect", "walk": "walk", "change": "change", "inject": "inject",
         "check": "check", "session_cmds": "session", "meta": "session",
         "diff": "inspect"}


def _complete(ctx, args):
    return sorted({n.split()[0] for n in REGISTRY.commands})


@command("help", Text("name", "a command", optional=True, metavar="COMMAND", complete=_complete),
         Text("sub", "a subcommand (help set ste)", optional=True, metavar="SUBCOMMAND"),
         pure=True, logged=False)
def help_(ctx, name=None, sub=None):
    """List the commands, or show one command's usage, arguments and help.

    help                the commands by area, with a one-line summary each
    help COMMAND        usage, arguments and the full help of COMMAND (e.g. help walk,
                        help set ste, help inject)"""
    if name is None:
        groups: dict[str, list] = {}
        for n in REGISTRY.names():
            c = REGISTRY.commands[n]
            groups.setdefault(AREAS.get(c.area, c.area), []).append(
                {"name": n, "usage": c.usage, "summary": c.summary,
                 "available": c.available is None})
        return res.HelpIndex(**{"areas": [{"area": a, "commands": cmds}
                                               for a, cmds in groups.items()]})
    full = f"{name} {sub}" if sub else name
    if full in REGISTRY.commands:
        c = REGISTRY.commands[full]
    elif name in REGISTRY.commands and sub is None:
        c = REGISTRY.commands[name]
    elif name in REGISTRY.groups() and sub is None:
        subs = [REGISTRY.commands[n] for n in REGISTRY.names() if n.startswith(name + " ")]
        return res.HelpIndex(**{"areas": [{"area": name, "commands": [
            {"name": c.name, "usage": c.usage, "summary": c.summary,
             "available": c.available is None} for c in subs]}]})
    else:
        raise CommandError(f"help: no command {shown(full)} (try: help)")
    args = [{"name": a.name, "usage": a.usage, "help": a.help,
             "keyword": a.keyword, "default": a.default if a.default is not False else None}
            for a in c.args]
    return res.Help(**{"name": c.name, "usage": c.usage, "help": c.help, "args": args,
                           "available": c.available is None, "why": c.available,
                           "fields": c.assignments.metavar if c.assignments else None})


@command("json", Text("mode", "on or off (default: show the current mode)", optional=True,
                      metavar="on|off", complete=lambda ctx, a: ["on", "off"]),
         pure=True, logged=False)
def json_mode(ctx, mode=None):
    """Print every result as JSON (on) or as tables (off), in the REPL.

    The JSON is exactly what `smmudbg run --json` prints for the command: one line
    {"command", "ok": true, "result": {...}} or {"command", "ok": false, "error": "..."}.
    For one command only, end its line with --json (walk nic0 0x10000000 --json)."""
    if mode is not None:
        low = mode.lower()
        if low not in ("on", "off"):
            raise CommandError(f"json: {shown(mode)} is not on or off")
        ctx.json_output = low == "on"
    on = bool(getattr(ctx, "json_output", False))
    return res.JsonMode(on=on, message=f"json output {'on' if on else 'off'}")
