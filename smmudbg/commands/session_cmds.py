"""Session commands: save, load, replay, history, time travel, and `expect` (assertions on the
previous result, which is what makes scripts regression tests)."""
from __future__ import annotations

import re

from .. import results as res
from .registry import CommandError, Flag, Int, Text, command, parse_int, shown


@command("save", Text("file", "where to write (default: the file last saved or loaded)",
                      optional=True, metavar="FILE"),
         Flag("results", "store each command's result too (bigger; a diverging replay then "
              "shows the recorded result beside the new one)"), logged=False)
def save(ctx, file=None, results=False):
    """Save the session (scenario, command log, result digests) as JSON, atomically."""
    path = ctx.save(file, results=results)
    return res.Saved(path=path, commands=len(ctx.log),
                     message=f"saved {len(ctx.log)} commands to {path}")


@command("load", Text("file", "a session file", metavar="FILE"), logged=False)
def load(ctx, file):
    """Load a session file: its scenario, then its command log re-run to rebuild the state.

    The file is only read as JSON; nothing in it runs except the logged smmudbg commands.
    A damaged or unknown file is rejected and the current session is kept."""
    report = ctx.load_file(file)
    msg = (f"loaded {file}: {report['replayed']} commands"
           + ("" if report["identical"] else
              f", {report['differing']} with a different result (first: #"
              f"{report['diverged']['index']} {report['diverged']['command']})"))
    return res.Loaded(**report, path=file, message=msg)


@command("replay", Text("file", "a session file (default: this session's log)", optional=True,
                        metavar="FILE"), logged=False, pure=True)
def replay(ctx, file=None):
    """Re-run a command log on a fresh system from its scenario and compare every result with
    the recorded digest. Reports the first command whose result differs, with both results, or
    that every command replayed identically. The current session is not changed."""
    report = ctx.replay_file(file)
    if report["identical"]:
        msg = f"replayed {report['replayed']} commands identically"
    else:
        d = report["diverged"]
        msg = f"command #{d['index']} diverged: {d['command']}"
    return res.Replay(**report, file=file, message=msg)


@command("history", Int("count", "show the last COUNT commands", optional=True, default=None,
                        lo=1), logged=False, pure=True)
def history(ctx, count=None):
    """The command log: number, command, ok; `>` marks the current position (after goto)."""
    start = 0 if count is None else max(0, len(ctx.log) - count)
    rows = [{"n": i + 1, "command": e.command, "ok": e.ok, "current": i + 1 == ctx.position}
            for i, e in enumerate(ctx.log[start:], start)]
    return res.History(**{"position": ctx.position, "length": len(ctx.log),
                              "entries": rows})


@command("goto", Int("n", "log position: the state after the first N commands"),
         logged=False)
def goto(ctx, n):
    """Time travel: rebuild the state as it was after the first N logged commands.

    The rest of the log is kept (goto forward again, or see it in history) until you run a
    new command there, which replaces the entries after the current position."""
    before = ctx.position
    ran = ctx.goto(n)
    return res.Goto(from_=before, position=n, length=len(ctx.log), reran=ran,
                    message=f"at {n} of {len(ctx.log)}")


@command("back", Int("n", "how many commands (default 1)", optional=True, default=1, lo=1),
         logged=False)
def back(ctx, n=1):
    """Time travel: go back N commands in the log (goto position - N)."""
    return goto(ctx, max(0, ctx.position - n))


@command("forward", Int("n", "how many commands (default 1)", optional=True, default=1, lo=1),
         logged=False)
def forward(ctx, n=1):
    """Time travel: go forward N commands in the log after a goto or back."""
    return goto(ctx, min(len(ctx.log), ctx.position + n))


# ---------------------------------------------------------------------------------------------
# expect
# ---------------------------------------------------------------------------------------------
_TOKEN = re.compile(r"""\s*(==|!=|<=|>=|<|>|=|"(?:[^"\\]|\\.)*"|'[^']*'|[^\s<>=!"']+)""")
_OPS = ("==", "!=", "<=", ">=", "<", ">", "contains")
_PATH = re.compile(r"^(len\()?([A-Za-z_][\w-]*(?:\.[\w-]+|\[\d+\])*)(\))?$")


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise CommandError(f"expect: cannot read {shown(text[pos:].strip())}")
        out.append(m.group(1))
        pos = m.end()
    return out


def _literal(tok: str):
    if tok[0] in "\"'":
        body = tok[1:-1]
        return body.replace('\\"', '"').replace("\\\\", "\\") if tok[0] == '"' else body
    low = tok.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "none"):
        return None
    try:
        return parse_int(tok)
    except ValueError:
        return tok


def _resolve(data, path: str):
    parts = re.findall(r"[\w-]+|\[\d+\]", path)
    cur, done = data, ""
    for p in parts:
        if p.startswith("["):
            key = int(p[1:-1])
        elif isinstance(cur, list) and p.isdigit():
            key = int(p)
        else:
            key = p
        if isinstance(cur, dict):
            if key not in cur:
                have = ", ".join(sorted(map(str, cur))[:12])
                raise CommandError(f"expect: {shown(path, False)}: the result has no "
                                   f"{shown(done + str(key))} "
                                   f"(it has: {have})")
            cur = cur[key]
        elif isinstance(cur, list) and isinstance(key, int):
            if key >= len(cur):
                raise CommandError(f"expect: {path}: {done or 'the result'} has only "
                                   f"{len(cur)} entries")
            cur = cur[key]
        else:
            raise CommandError(f"expect: {path}: {done.rstrip('.') or 'the result'} is "
                               f"{_show(cur)}, not an object")
        done += (p if p.startswith("[") else str(key)) + "."
    return cur


def _show(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return hex(v) if abs(v) > 9 else str(v)
    if isinstance(v, str):
        return v
    s = repr(v)
    return s if len(s) < 80 else s[:77] + "..."


def _compare(op, got, want) -> bool:
    if op == "contains":
        if isinstance(got, str):
            return str(want) in got
        if isinstance(got, (list, dict)):
            return want in got
        return False
    if op in ("==", "!="):
        if isinstance(got, bool) or isinstance(want, bool):
            eq = got is want
        else:
            eq = got == want and (type(got) is type(want)
                                  or isinstance(got, int) and isinstance(want, int))
        return eq if op == "==" else not eq
    if not (isinstance(got, int) and isinstance(want, int)) or isinstance(got, bool):
        raise CommandError(f"expect: {op} compares numbers, got {_show(got)} and {_show(want)}")
    return {"<": got < want, "<=": got <= want, ">": got > want, ">=": got >= want}[op]


def evaluate(expr: str, outcome) -> dict:
    """Check `expr` against an Outcome. Returns {expression, value} or raises CommandError."""
    toks = _tokens(expr)
    if not toks:
        raise CommandError("expect: missing an expression (e.g. expect pa == 0x61000123)")
    if toks[0] in ("ok", "error") and (len(toks) == 1 or toks[1] == "contains"):
        if outcome is None:
            raise CommandError("expect: there is no previous command")
        if toks[0] == "ok":
            if len(toks) != 1:
                raise CommandError("expect: 'ok' takes nothing after it")
            if not outcome.ok:
                raise CommandError(f"expect ok: the command failed: "
                                   f"{shown(outcome.error, quote=False, limit=200)}")
            return {"expression": expr, "value": True}
        if outcome.ok:
            raise CommandError(f"expect error: {shown(outcome.command)} succeeded")
        if len(toks) == 3:
            want = str(_literal(toks[2]))
            if want not in outcome.error:
                raise CommandError(f"expect error contains {shown(want)}: the error was "
                                   f"{shown(outcome.error, limit=200)}")
        elif len(toks) != 1:
            raise CommandError("expect: use: expect error [contains TEXT]")
        return {"expression": expr, "value": outcome.error}
    if len(toks) not in (1, 3):
        raise CommandError(f"expect: use PATH OP VALUE with OP one of {', '.join(_OPS)} "
                           f"(got {shown(expr)})")
    m = _PATH.match(toks[0])
    if not m or bool(m.group(1)) != bool(m.group(3)):
        raise CommandError(f"expect: {shown(toks[0])} is not a result path (e.g. pa, fault.type, "
                           f"steps[0].level, len(steps))")
    if outcome is None:
        raise CommandError("expect: there is no previous command")
    if not outcome.ok:
        raise CommandError(f"expect: the previous command failed: "
                           f"{shown(outcome.error, quote=False, limit=200)}")
    got = _resolve(outcome.result.to_json(), m.group(2))
    if m.group(1):
        if not isinstance(got, (list, dict, str)):
            raise CommandError(f"expect: len({m.group(2)}): {_show(got)} has no length")
        got = len(got)
    if len(toks) == 1:
        if not got:
            raise CommandError(f"expect {expr}: got {_show(got)}")
        return {"expression": expr, "value": got}
    op, want = toks[1], _literal(toks[2])
    if op not in _OPS:
        raise CommandError(f"expect: {shown(op)} is not one of {', '.join(_OPS)}")
    if not _compare(op, got, want):
        raise CommandError(f"expect {toks[0]} {op} {toks[2]}: got {_show(got)}")
    return {"expression": expr, "value": got}


@command("expect", raw=True, logged=False, pure=True)
def expect(ctx, text):
    """Assert something about the previous command's result (scripts stop when it fails).

    expect PATH OP VALUE    OP: == != < <= > >= contains
    expect PATH             the value is true / non-empty
    expect len(PATH) OP N   number of entries
    expect ok               the previous command succeeded
    expect error [contains TEXT]   the previous command failed (a script goes on)

    PATH names a field of the result's JSON form (docs/results.md): pa, fault.type, fault.s2,
    steps[2].level, fields.Config, addresses.S2TTB, entries[0].ipa.
    VALUE: a number (0x61000123, 4096, 2M), true, false, null, or text (quote it if it has
    spaces or = < > !). Examples: expect pa == 0x61000123, expect fault.type == F_TRANSLATION,
    expect fault.s2 == true, expect len(steps) == 17."""
    return res.Expect(**evaluate(text, ctx.last))


expect.complete = lambda ctx: ["pa", "ipa", "fault", "fault.type", "fault.s2", "fault.class",
                               "steps", "len(steps)", "entries", "len(entries)", "addresses",
                               "ok", "error", "==", "!="]
