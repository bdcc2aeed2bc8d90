"""diff: compare two states (a session position, an attach snapshot, the live attached VM, a
saved session, another dump of the same guest)."""
from __future__ import annotations

import os

from .. import results as res
from ..errors import SmmuDbgError
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
    system, _ = import_qemu(a["memory"], a["regs"], ram_base=a["ram_base"], gic=a["gic"])
    return system, a["memory"]


def _attach_state(ctx):
    return getattr(ctx, "attach_state", None)


def _operand(ctx, tok: str):
    """One state to compare: (System, label, earlier) where earlier says whether, alone, it is
    the earlier side (a) of `diff X` (a log position or a snapshot: what changed since) or
    the later one (b: live, a file)."""
    if tok == "now":
        return ctx.system, "now", False
    if tok.startswith("@"):
        try:
            n = parse_int(tok[1:])
        except ValueError:
            raise CommandError(f"diff: {shown(tok)} is not a log position (@N)") from None
        return _position(ctx, n), f"@{n}", True
    st = _attach_state(ctx)
    if tok == "live":
        if st is None or st.att is None:
            raise CommandError("diff: live: not attached (attach qemu QMP_SOCKET ram=FILE "
                               "first)")
        from ..attach.qmp import VmGone
        try:
            system, _ = st.att.build(st.att.read_regs(), f"live:{st.att.path}")
        except VmGone as e:
            st.lost(ctx, str(e))
        st.unlogged = True              # a live read cannot be replayed
        return system, "live", False
    if st is not None and tok in st.store.snapshots:
        return st.store.system(st.store.snapshots[tok])[0], f"snapshot {tok}", True
    if "\x00" in tok or not os.path.isfile(tok):
        have = shown(", ".join(st.store.snapshots), quote=False, limit=200) \
            if st is not None and st.store.snapshots else ""
        raise CommandError(f"diff: {shown(tok)} is neither @N, now, live, a snapshot "
                           f"({have or 'none taken'}) nor a file")
    try:
        other, _ = type(ctx).load(tok)      # ctx is the Session: load beside it
    except (OSError, ValueError, SmmuDbgError) as e:
        raise CommandError(f"diff: {display_name(tok)}: {e}") from None
    return other.system, tok, False


@command("diff", raw=True, pure=True)
def diff(ctx, text):
    """Compare two states: registers, STEs, CDs, each stream's mappings as ranges, queue
    positions and new event records.

    diff @N                             what changed since log position N (a = @N, b = now)
    diff SNAPSHOT                       what changed since an attach snapshot (a = it, b = now)
    diff live                           from now to the attached VM as it is now (a live read)
    diff FILE.json                      from now to the state a saved session ends in
    diff import MEMORY --regs REGS.json from now to another dump (e.g. a later one of the
                                        same guest; --ram-base ADDR for a raw image)
    diff A B                            from A to B, each @N, SNAPSHOT, live, now or FILE.json
                                        (diff s1 s2, diff s1 live, diff @3 now)

    a is the earlier state, b the later: added means only b has it. Mappings are compared per
    stream (and SubstreamID) over the page tables each one's STE and CD select. A diff that
    reads the live VM is not recorded in the session log (it cannot be replayed)."""
    arg = text.strip()
    if not arg:
        raise CommandError("diff: compare with what? (diff @N, diff SNAPSHOT, diff live, diff "
                           "FILE.json, diff import MEMORY --regs REGS.json, diff A B)")
    st = _attach_state(ctx)
    if st is not None:
        st.unlogged = False
    if arg.split()[0] == "import":
        rest = arg.split(None, 1)[1] if len(arg.split()) > 1 else ""
        if rest.startswith("qemu "):
            rest = rest[5:]
        b, where = _import(rest)
        a, la, lb = ctx.system, "now", where
    else:
        toks = arg.split()
        if len(toks) > 2:
            raise CommandError(f"diff: {arg!r}: give one state or two (diff A B)")
        if len(toks) == 2:
            (a, la, _), (b, lb, _) = _operand(ctx, toks[0]), _operand(ctx, toks[1])
        else:
            x, lx, earlier = _operand(ctx, toks[0])
            a, la, b, lb = (x, lx, ctx.system, "now") if earlier else \
                (ctx.system, "now", x, lx)
    d = diff_systems(a, b)
    n = sum(len(s.get(k) or []) for s in d["smmus"]
            for k in ("registers", "stes", "cds", "mappings", "events"))
    msg = (f"{la} -> {lb}: " + ("no differences" if d["identical"] else f"{n} differences"))
    return res.Diff(from_=la, to=lb, smmus=d["smmus"], identical=d["identical"], message=msg)


def _complete(ctx):
    st = _attach_state(ctx)
    extra = (["live"] if st is not None and st.att is not None else []) + \
        (list(st.store.snapshots) if st is not None else [])
    return ["@", "now", *extra, "import qemu", "--regs"]


diff.complete = _complete
