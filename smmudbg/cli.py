"""The `smmudbg` command.

    smmudbg                          the full-screen UI on the built-in default scenario
    smmudbg SCENARIO.toml            the UI on a scenario
    smmudbg SESSION.json             the UI on a saved session
    smmudbg MEMORY --regs REGS.json [--gic GIC.json] [--ram-base ADDR]   an imported QEMU dump
    smmudbg --repl [FILE ...]        the REPL instead of the UI (also when not on a terminal)
    smmudbg run SCRIPT [--json] [--keep-going] [--scenario FILE]     SCRIPT may be -
    smmudbg replay SESSION           re-run a saved session and compare every result
    smmudbg import-qemu MEMORY --regs REGS.json [--gic GIC.json] [--ram-base ADDR] [--run SCRIPT]
    smmudbg attach qemu QMP_SOCKET ram=FILE [--run SCRIPT]   a running QEMU, live (docs/attach.md)
    smmudbg --version

Never a traceback: a user error is one red line, anything else one line "internal error: ...",
and batch modes exit non-zero.
"""
from __future__ import annotations

import argparse
import os
import sys

from . import __version__
from .errors import SmmuDbgError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 70


def _red(msg: str, stream=None) -> None:
    stream = stream or sys.stderr
    if stream.isatty() and not os.environ.get("NO_COLOR"):
        stream.write(f"\x1b[31m{msg}\x1b[0m\n")
    else:
        stream.write(msg + "\n")
    stream.flush()


def _session(scenario: str | None):
    from .session import Session
    if scenario is None:
        return Session()
    if scenario.endswith(".json"):
        return Session.load(scenario)[0]
    return Session.from_file(scenario)


def _set_autosave(session) -> None:
    from .session import default_autosave_path, remove_stale_temporaries
    path = default_autosave_path()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        remove_stale_temporaries(os.path.dirname(path))     # of saves killed mid-write
        session.autosave_path = path
    except OSError:
        session.autosave_path = None


def _loader(args):
    """A callable building the session for args: the UI runs it in a worker once its first
    frame is on the terminal, since importing the model and building a large scenario or a
    big dump take a while. A file that cannot be opened is one line here, before the UI; a
    file that does not parse is the same line once the loader has run (the UI closes)."""
    if args.regs:
        from .import_cli import import_line
        for path, what in ((args.scenario, "memory dump"), (args.regs, "register file"),
                           (args.gic, "register file")):
            _openable(path, what)
        line = import_line(args.scenario, args.regs, args.ram_base, args.gic)

        def load():
            from .session import Session
            s = Session()
            out = s.execute(line)
            if not out.ok:
                raise SmmuDbgError(out.error)
            return s
        return load
    if args.scenario is not None:
        _openable(args.scenario, "session file" if args.scenario.endswith(".json")
                  else "scenario file")
    return lambda: _session(args.scenario)


def _openable(path: str | None, what: str) -> None:
    """A file the loader will read must open as a regular file (checked without importing
    the model: the UI's first frame waits for this)."""
    if path is not None:
        from .textfile import open_regular
        open_regular(path, SmmuDbgError, what).close()


def _ui(args) -> int:
    from . import tui
    rc, session, error = tui.run(_loader(args), args.scenario or "built-in default scenario")
    if error:
        _red(error)
        return EXIT_ERROR
    if session is not None:
        _set_autosave(session)
        try:
            session.autosave(force=True)
        except SmmuDbgError as e:
            _red(f"autosave: {e}")
    return rc


def _interactive(session) -> int:
    _set_autosave(session)
    try:
        from . import repl          # the prompt_toolkit front end (smmudbg/repl.py)
    except ImportError:
        repl = None
    try:
        if repl is not None and hasattr(repl, "run"):
            return repl.run(session) or 0
        return _basic_loop(session)
    finally:
        try:
            session.autosave(force=True)
        except SmmuDbgError as e:
            _red(f"autosave: {e}")


def _basic_loop(session) -> int:
    """A minimal line loop over the command registry (used when the REPL is unavailable)."""
    from .render import render
    from rich.console import Console
    con = Console(highlight=False)
    con.print(f"smmudbg {__version__} on {session.system.name}: "
              f"help for the commands, quit to leave")
    while True:
        try:
            line = input("smmudbg> ")
        except EOFError:
            print()
            return 0
        except KeyboardInterrupt:
            print()
            continue
        if line.strip() in ("quit", "exit"):
            return 0
        if not line.strip():
            continue
        from .script import json_line, split_json_flag
        line, as_json = split_json_flag(line)
        out = session.execute(line)
        if as_json or getattr(session, "json_output", False) and \
                not (out.ok and out.result.kind == "json-mode"):
            print(json_line(out))
        elif out.ok:
            con.print(render(out.result))
        else:
            con.print(out.error, style="bold red", markup=False)
        session.autosave()


def _parser_main() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="smmudbg", description="A debugger and REPL for nested "
                                "Arm SMMUv3 state. Also: smmudbg run SCRIPT, smmudbg replay "
                                "SESSION.")
    p.add_argument("scenario", nargs="?", help="a scenario (.toml), a saved session (.json), "
                   "or with --regs a QEMU memory dump")
    p.add_argument("--repl", action="store_true", help="the REPL instead of the full-screen UI")
    p.add_argument("--regs", help="SMMU (or VT-d DMAR_*) registers (JSON) of the QEMU dump "
                                  "FILE")
    p.add_argument("--ram-base", help="with --regs: guest PA of a raw image's first byte")
    p.add_argument("--gic", help="with --regs: GITS_*/GICR_*[n] registers (JSON) of the dump's "
                                 "ITS, if REGS.json does not hold them")
    p.add_argument("--version", action="version", version=f"smmudbg {__version__}")
    return p


def _parser_run() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="smmudbg run", description="Run a script of commands.")
    p.add_argument("script", help="the script file, or - for standard input")
    p.add_argument("--json", action="store_true", help="one JSON object per command")
    p.add_argument("--keep-going", action="store_true", help="do not stop at the first error")
    p.add_argument("--scenario", help="scenario TOML (default: the built-in default)")
    return p


def _parser_replay() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="smmudbg replay",
                                description="Re-run a saved session and compare results.")
    p.add_argument("session", help="a session file (.json)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def _run(args) -> int:
    from .script import read_lines, run_script
    session = _session(args.scenario)
    lines = read_lines(args.script)
    where = "<stdin>" if args.script == "-" else args.script
    return run_script(lines, session, as_json=args.json, keep_going=args.keep_going,
                      where=where, color=sys.stdout.isatty() and not os.environ.get("NO_COLOR"))


def _replay(args) -> int:
    from .script import _width, json_line
    from .session import Session
    s = Session()
    out = s.execute(f"replay {_quote(args.session)}")
    if args.json:           # errors too: {"command", "ok": false, "error"}, as run --json
        print(json_line(out))
        return EXIT_ERROR if not out.ok or not out.result.data["identical"] else 0
    if not out.ok:
        raise SmmuDbgError(out.error)
    from .render import render_text
    sys.stdout.write(render_text(out.result, width=_width(sys.stdout),
                                 color=sys.stdout.isatty() and not os.environ.get("NO_COLOR")))
    return 0 if out.result.data["identical"] else EXIT_ERROR


def _quote(path: str) -> str:
    import shlex
    return shlex.quote(path)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "run":
            return _run(_parser_run().parse_args(argv[1:]))
        if argv and argv[0] == "replay":
            return _replay(_parser_replay().parse_args(argv[1:]))
        if argv and argv[0] == "attach":
            from .attach_cli import cli_main as _attach
            return _attach(argv[1:], _interactive)
        if argv and argv[0] == "import-qemu":
            from .import_cli import cli_main as _import_qemu
            return _import_qemu(argv[1:], _interactive)
        from .import_cli import _glue_values       # (`--ram-base -0x1000`, as import-qemu)
        args = _parser_main().parse_args(_glue_values(argv))
        if args.regs and args.scenario is None:
            _parser_main().error("--regs goes with a memory dump FILE")
        if args.gic and not args.regs:
            _parser_main().error("--gic goes with --regs and a memory dump FILE")
        if args.repl or not (sys.stdin.isatty() and sys.stdout.isatty()):
            if args.regs:
                return _interactive(_loader(args)())
            return _interactive(_session(args.scenario))
        return _ui(args)
    except SmmuDbgError as e:
        _red(str(e))
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as e:        # never a traceback to the user
        _red(f"internal error: {type(e).__name__}: {e}")
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
