"""`smmudbg attach qemu QMP_SOCKET [ram=FILE] [pid=PID] [ram-base=ADDR] [smmu-base=ADDR]
[--tui | --run SCRIPT [--json] [--keep-going]]`: the command-line front end of `attach qemu`.

It runs the registered `attach qemu` command in a new Session, then opens the REPL (the
full-screen UI with --tui, or runs a script), and detaches at the end, leaving the VM as it
was.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys

from .errors import SmmuDbgError


def cli_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="smmudbg attach",
        description="Attach to a running QEMU guest's SMMUv3 (live), then open the REPL on it "
                    "(or run a script with --run). Options after the socket are the `attach "
                    "qemu` command's: ram=FILE, pid=PID, ram-base=ADDR, smmu-base=ADDR.")
    p.add_argument("what", choices=["qemu"], help="what to attach to")
    p.add_argument("socket", help="QEMU's QMP socket (a second -qmp unix:PATH,server=on,"
                                  "wait=off for smmudbg)")
    p.add_argument("options", nargs="*", metavar="KEY=VALUE",
                   help="ram=FILE | pid=PID | ram-base=ADDR | smmu-base=ADDR")
    p.add_argument("--run", metavar="SCRIPT", help="run this script (- for stdin) instead of "
                                                   "the REPL")
    p.add_argument("--tui", action="store_true", help="open the full-screen UI (its live mode "
                                                      "follows the VM) instead of the REPL")
    p.add_argument("--json", action="store_true", help="with --run: one JSON object per command")
    p.add_argument("--keep-going", action="store_true", help="with --run: do not stop at the "
                                                             "first error")
    return p


def attach_line(socket: str, options: list[str]) -> str:
    q = shlex.quote
    return " ".join([f"attach qemu {q(os.path.abspath(socket))}"] + [q(o) for o in options])


def cli_main(argv, interactive) -> int:
    from .script import read_lines, run_script
    from .session import Session
    args = cli_parser().parse_args(argv)
    if (args.json or args.keep_going) and not args.run:
        cli_parser().error("--json and --keep-going go with --run")
    if args.tui and args.run:
        cli_parser().error("--tui and --run: one or the other")
    session = Session()
    out = session.execute(attach_line(args.socket, args.options))
    if not out.ok:
        raise SmmuDbgError(out.error)
    if not args.json:
        print(out.result.message, file=sys.stderr if args.run else sys.stdout)
    try:
        if args.tui:
            from . import tui
            rc, _, error = tui.run(lambda: session, f"QEMU at {args.socket}")
            if error:
                raise SmmuDbgError(error)
            return rc
        if args.run is None:
            return interactive(session)
        lines = read_lines(args.run)
        where = "<stdin>" if args.run == "-" else args.run
        return run_script(lines, session, as_json=args.json, keep_going=args.keep_going,
                          where=where,
                          color=sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
    finally:
        st = getattr(session, "attach_state", None)
        if st is not None and st.att is not None:
            session.execute("detach")
