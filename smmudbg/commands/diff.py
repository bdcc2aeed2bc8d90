"""diff: compare this state with a second one (a session position, a saved session, another
dump of the same guest)."""
from __future__ import annotations

from .. import results as res
from ..model.diff import diff_systems
from ..textfile import display_name
from .registry import CommandError, command, parse_int, shown


def _position(ctx, n: int):
    """The System after the first n logged commands, built beside this one (this session
    is not changed): the scenario, then the commands that changed state."""
    if not 0 <= n <= len(ctx.log):
        raise CommandError(f"diff: @{n} is outside the log (@0..@{len(ctx.log)})")
    other = type(ctx)(ctx.scenario_text, ctx.where)
    for e in ctx.log[:n]:
        if e.pure:
            continue
        out = other.execute(e.command)
        if not out.ok and e.ok:
            raise CommandError(f"diff: @{n}: cannot rebuild: {e.command!r} failed now: "
                               f"{out.error}")
    return other.system


def _import(text: str):
    from ..importers.qemu import import_qemu
    from ..importers.qemu_args import parse_import_args
    from .registry import AddressT
    a = parse_import_args(text)
    if a["ram_base"] is not None:
        try:
            a["ram_base"] = AddressT().convert(None, a["ram_base"], {})
        except ValueError as e:
            raise CommandError(f"diff: ram_base: {e}") from None
    system, _ = import_qemu(a["memory"], a["regs"], ram_base=a["ram_base"])
    return system, a["memory"]


@command("diff", raw=True, pure=True)
def diff(ctx, text):
    """Compare this state with a second one: registers, STEs, CDs, each stream's mappings as
    ranges, queue positions and new event records.

    diff @N                             what changed since log position N (a = @N, b = now)
    diff FILE.json                      from now to the state a saved session ends in
    diff import MEMORY --regs REGS.json from now to another dump (e.g. a later one of the
                                        same guest; --ram-base ADDR for a raw image)

    a is the earlier state, b the later: added means only b has it. Mappings are compared per
    stream (and SubstreamID) over the page tables each one's STE and CD select."""
    arg = text.strip()
    if not arg:
        raise CommandError("diff: compare with what? (diff @N, diff FILE.json, diff import "
                           "MEMORY --regs REGS.json)")
    if arg.startswith("@"):
        try:
            n = parse_int(arg[1:])
        except ValueError:
            raise CommandError(f"diff: {shown(arg)} is not a log position (@N)") from None
        a, b, la, lb = _position(ctx, n), ctx.system, f"@{n}", "now"
    elif arg.split()[0] == "import":
        rest = arg.split(None, 1)[1] if len(arg.split()) > 1 else ""
        if rest.startswith("qemu "):
            rest = rest[5:]
        b, where = _import(rest)
        a, la, lb = ctx.system, "now", where
    else:
        if "\x00" in arg:
            raise CommandError(f"diff: {shown(arg)} is not a file name")
        try:
            other, _ = type(ctx).load(arg)      # ctx is the Session: load beside it
        except (OSError, ValueError) as e:
            raise CommandError(f"diff: {display_name(arg)}: {e}") from None
        a, b, la, lb = ctx.system, other.system, "now", arg
    d = diff_systems(a, b)
    n = sum(len(s.get(k) or []) for s in d["smmus"]
            for k in ("registers", "stes", "cds", "mappings", "events"))
    msg = (f"{la} -> {lb}: " + ("no differences" if d["identical"] else f"{n} differences"))
    return res.Diff(from_=la, to=lb, smmus=d["smmus"], identical=d["identical"], message=msg)


diff.complete = lambda ctx: ["@", "import qemu", "--regs"]
