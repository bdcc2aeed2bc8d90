"""`smmudbg import-qemu MEMORY --regs REGS.json [--gic GIC.json] [--ram-base ADDR]
[--run SCRIPT [--json] [--keep-going]]`: the command-line front end of `import qemu`
(smmudbg/cli.py dispatches to it).

It only builds the `import qemu` command line and runs it in a new Session, then opens the REPL
or runs a script: the importing itself is the registered command's (commands/importer.py).
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys

from .errors import SmmuDbgError


# ---------------------------------------------------------------------------------------------
def cli_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="smmudbg import-qemu",
        description="Import a QEMU guest's memory dump and SMMUv3 (or Intel VT-d) registers, "
                    "then open the REPL on it (or run a script with --run).")
    p.add_argument("memory", help="ELF core (dump-guest-memory) or raw image (pmemsave), "
                                  "optionally xz-compressed")
    p.add_argument("--regs", required=True, help="JSON object: SMMU register name -> value "
                                                 "(and GITS_*/GICR_*[n] ones); for an x86-64 "
                                                 "guest, DMAR_* (Intel VT-d) ones")
    p.add_argument("--gic", help="JSON object: GITS_*/GICR_*[n] register name -> value (if "
                                 "not in REGS.json)")
    p.add_argument("--ram-base", help="guest PA of a raw image's first byte "
                                      "(default 0x40000000)")
    p.add_argument("--run", metavar="SCRIPT", help="run this script (- for stdin) on the "
                                                   "imported system instead of the REPL")
    p.add_argument("--json", action="store_true", help="with --run: one JSON object per command")
    p.add_argument("--keep-going", action="store_true", help="with --run: do not stop at the "
                                                             "first error")
    return p


def import_line(memory: str, regs: str, ram_base: str | None = None,
                gic: str | None = None) -> str:
    """The `import qemu` command line for these files (absolute paths, so a saved session
    replays from any directory)."""
    q = shlex.quote
    line = f"import qemu {q(os.path.abspath(memory))} --regs {q(os.path.abspath(regs))}"
    if gic is not None:
        line += f" --gic {q(os.path.abspath(gic))}"
    if ram_base is not None:
        line += f" --ram-base {q(ram_base)}"
    return line


def _glue_values(argv) -> list[str]:
    """`--ram-base -0x1000` as `--ram-base=-0x1000`: argparse takes a value starting with '-'
    (not a plain negative number) for an option and fails with "expected one argument"; glued,
    the value reaches `import qemu`, which says what is wrong with it."""
    out, it = [], iter(argv)
    for a in it:
        if a in ("--ram-base", "--regs", "--gic", "--run"):
            nxt = next(it, None)
            if nxt is not None and nxt.startswith("-") and nxt != "-" and \
                    not nxt.startswith("--"):
                a = f"{a}={nxt}"
            elif nxt is not None:
                out.append(a)
                a = nxt
        out.append(a)
    return out


def cli_main(argv, interactive) -> int:
    """`smmudbg import-qemu ...`: `interactive(session)` is the CLI's REPL entry."""
    args = cli_parser().parse_args(_glue_values(argv))
    if (args.json or args.keep_going) and not args.run:
        cli_parser().error("--json and --keep-going go with --run")
    # here, not at the top: `smmudbg` imports this module for _glue_values, and the UI paints
    # its first frame before the model is imported
    from .script import read_lines, run_script
    from .session import Session
    session = Session()
    out = session.execute(import_line(args.memory, args.regs, args.ram_base, args.gic))
    if not out.ok:
        raise SmmuDbgError(out.error)
    if args.run is None:
        return interactive(session)
    lines = read_lines(args.run)
    where = "<stdin>" if args.run == "-" else args.run
    return run_script(lines, session, as_json=args.json, keep_going=args.keep_going,
                      where=where, color=sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
