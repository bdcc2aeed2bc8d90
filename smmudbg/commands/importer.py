"""import qemu: replace the session's system by a real one, a QEMU guest's memory and SMMU
registers (smmudbg/importers/qemu.py). The `smmudbg import-qemu` subcommand is a front end:
smmudbg/import_cli.py."""
from __future__ import annotations

import shlex

from .. import results as res
from .registry import CommandError, command, parse_int

USAGE = "import qemu MEMORY --regs REGS.json [--ram-base ADDR]"
_OPTS = {"--regs": "regs", "regs": "regs", "--ram-base": "ram_base", "ram_base": "ram_base",
         "--ram_base": "ram_base", "ram-base": "ram_base"}


def parse_import_args(text: str) -> dict:
    """MEMORY --regs FILE [--ram-base ADDR]; also --regs=FILE and regs=FILE ram_base=ADDR."""
    try:
        toks = shlex.split(text, comments=False, posix=True)
    except ValueError as e:
        raise CommandError(f"import qemu: cannot split the line: {str(e).lower()}") from None
    vals: dict = {}
    memory = None
    i = 0
    while i < len(toks):
        tok = toks[i]
        key, eq, val = tok.partition("=")
        if key in _OPTS and (eq or key.startswith("--")):
            if not eq:
                if i + 1 >= len(toks):
                    raise CommandError(f"import qemu: {key} needs a value (usage: {USAGE})")
                val = toks[i + 1]
                i += 1
            name = _OPTS[key]
            if name in vals:
                raise CommandError(f"import qemu: {key}: given twice")
            vals[name] = val
        elif tok.startswith("--"):
            raise CommandError(f"import qemu: unknown option {tok!r} (usage: {USAGE})")
        elif memory is None:
            memory = tok
        else:
            raise CommandError(f"import qemu: unexpected {tok!r} (usage: {USAGE})")
        i += 1
    if memory is None:
        raise CommandError(f"import qemu: missing MEMORY (usage: {USAGE})")
    if "regs" not in vals:
        raise CommandError(f"import qemu: missing --regs REGS.json (usage: {USAGE})")
    ram_base = None
    if "ram_base" in vals:
        try:
            ram_base = parse_int(vals["ram_base"])
        except ValueError:
            raise CommandError(f"import qemu: ram_base: {vals['ram_base']!r} is not an "
                               f"address") from None
        if ram_base < 0 or ram_base >> 64:
            raise CommandError(f"import qemu: ram_base: {vals['ram_base']} is not a 64-bit "
                               f"address")
    return {"memory": memory, "regs": vals["regs"], "ram_base": ram_base}


@command("import qemu", raw=True)
def import_qemu(ctx, text):
    """Replace the system by a QEMU guest's: its memory dump and SMMUv3 register values.

    import qemu MEMORY --regs REGS.json [--ram-base ADDR]
    (also: import qemu MEMORY regs=REGS.json ram_base=ADDR)

    MEMORY is an ELF core from QEMU's dump-guest-memory, or a raw image from pmemsave (loaded
    at --ram-base, default 0x40000000: RAM of the arm virt board); either may be xz-compressed.
    REGS.json maps SMMUv3 register names (SMMU_IDR0, SMMU_IDR1, SMMU_IDR5 required; SMMU_CR0,
    SMMU_STRTAB_BASE, SMMU_STRTAB_BASE_CFG, SMMU_CMDQ_*, SMMU_EVTQ_* or SMMU_EVENTQ_*, ...) to
    values (integers or "0x..." strings).

    The new system has one SMMU, smmu0: its ID registers are the given values (and decide what
    the walker supports), its other registers hold the snapshot's values (nothing is replayed:
    pending commands stay pending), and its memory is the dump, mapped read-only and copied a
    page at a time on write; addresses outside the dump are unbacked (a walk there is an
    external abort). Streams with a valid STE other than Config=abort are listed as streams.
    The result lists the segments, the stream table, the streams and warnings (parts of the
    tables the dump lacks). The files are read again when the session is replayed."""
    from ..importers.qemu import import_qemu as do_import
    a = parse_import_args(text)
    system, report = do_import(a["memory"], a["regs"], ram_base=a["ram_base"])
    ctx.system = system
    data = dict(report, ram_base=a["ram_base"])
    msg = (f"imported {a['memory']}: {report['smmu']} with {len(report['streams'])} stream(s), "
           f"{len(report['segments'])} segment(s), SMMUEN={int(report['smmuen'])}"
           + (f", {len(report['warnings'])} warning(s)" if report["warnings"] else ""))
    return res.Import(**data, message=msg)


import_qemu.complete = lambda ctx: ["--regs", "--ram-base"]
