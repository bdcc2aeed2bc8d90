"""Scripts: a text file of commands, one per line, `#` comments, run non-interactively.

`expect` lines assert on the previous command's result, so a script is a regression test. The
run stops at the first error (exit status 1) unless keep_going; a failing command followed by
`expect error ...` is what the script expected and does not stop it. With json, each command
prints one JSON object: {"command", "ok": true, "result"} or {"command", "ok": false, "error"}.
"""
from __future__ import annotations

import json
import sys

from .commands.registry import strip_comment
from .errors import SmmuDbgError
from .session import Session
from .textfile import MAX_TEXT_BYTES, read_text


class ScriptError(SmmuDbgError):
    pass


def read_lines(path: str, stdin=None) -> list[str]:
    """The lines of a script file (a regular file of at most MAX_TEXT_BYTES, UTF-8), or of
    standard input for "-" (read up to the same bound: `smmudbg run - < /dev/zero` stops)."""
    if path == "-":
        stream = stdin or sys.stdin
        buf = getattr(stream, "buffer", None)
        raw = (buf or stream).read(MAX_TEXT_BYTES + 1)
        if len(raw) > MAX_TEXT_BYTES:
            raise ScriptError(f"<stdin>: not a script (larger than {MAX_TEXT_BYTES >> 20} MiB)")
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ScriptError(f"<stdin>: not a script (not UTF-8 text at byte "
                                  f"{e.start})") from None
        return raw.splitlines()
    return read_text(path, ScriptError, "script").splitlines()


def commands_of(lines) -> list[tuple[int, str]]:
    """(line number, command) for each line that holds a command."""
    out = []
    for n, line in enumerate(lines, 1):
        text = strip_comment(line).strip()
        if text:
            out.append((n, line.strip()))
    return out


def _expects_error(cmds, i) -> bool:
    if i + 1 >= len(cmds):
        return False
    words = cmds[i + 1][1].split()
    return len(words) >= 2 and words[0] == "expect" and words[1] == "error"


def _width(out) -> int | None:
    """The terminal's width when out is one; None (no wrapping, no padding) for a file or a
    pipe."""
    isatty = getattr(out, "isatty", None)
    if isatty is not None and isatty():
        import shutil
        return shutil.get_terminal_size().columns
    return None


def json_line(outcome) -> str:
    """The one JSON line `smmudbg run --json` prints for an executed command (the REPL's
    `--json` and `json on` print the same)."""
    return json.dumps(outcome.to_json(), sort_keys=False)


def split_json_flag(line: str) -> tuple[str, bool]:
    """(the line without a trailing `--json` word, whether it had one)."""
    body = strip_comment(line).rstrip()
    if body == "--json" or body.endswith((" --json", "\t--json")):
        return body[:-len("--json")].rstrip(), True
    return line, False


def run_script(lines, session: Session, *, as_json: bool = False, keep_going: bool = False,
               out=None, err=None, where: str = "script", color: bool = False) -> int:
    """Run the commands in `lines`. Returns the exit status: 0 if every command (and every
    expect) succeeded, 1 otherwise."""
    out = out or sys.stdout
    err = err or sys.stderr
    status = 0
    cmds = commands_of(lines)
    for i, (n, line) in enumerate(cmds):
        outcome = session.execute(line)
        if as_json:
            out.write(json_line(outcome) + "\n")
        elif outcome.ok:
            if outcome.result.kind != "expect":
                from .render import render_text
                out.write(f"> {line}" + (f"   [{outcome.view}]" if outcome.view else "")
                          + "\n")
                out.write(render_text(outcome.result, width=_width(out), color=color))
        if outcome.ok or _expects_error(cmds, i):
            continue
        status = 1
        if not as_json:
            err.write(f"{where}:{n}: {outcome.error}\n")
        if not keep_going:
            break
    out.flush()
    return status
