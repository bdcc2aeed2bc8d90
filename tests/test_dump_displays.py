"""What the user audit of issue 14 on the real QEMU dump (tests/fixtures/qemu) found and fixed:
the REPL banner names the imported system, not the built-in scenario; `cmdq` shows a TLBI's
Address field as the address (Address[63:12]); `find` leaves out columns no row has a value
in, so the rest fits a terminal. Expected values: the fixture's README (CMDQ PROD = CONS =
0x1c0, Linux's last commands before the snapshot are TLBI_NH_VA + CMD_SYNC pairs)."""
import io
from pathlib import Path

from rich.console import Console

from smmudbg.render import render_text
from smmudbg.session import Session

Q = Path(__file__).resolve().parent / "fixtures" / "qemu"


def dump():
    s = Session()
    assert s.execute(f"import qemu {Q / 'memory.elf.xz'} --regs {Q / 'regs.json'}").ok
    return s


def test_repl_banner_describes_the_imported_system():
    from smmudbg.repl import Repl
    s = dump()
    buf = io.StringIO()
    r = Repl(s, console=Console(file=buf, width=200))
    r.banner()
    text = buf.getvalue()
    assert "imported from" in text and "nested nic0" not in text


def test_cmdq_shows_tlbi_addresses_as_addresses():
    s = dump()
    out = s.execute("cmdq smmu0 history=4")
    ents = out.result.to_json()["entries"]
    tlbi = [e for e in ents if e["command"] == "CMD_TLBI_NH_VA"]
    assert tlbi
    text = render_text(out.result, width=None)
    for e in tlbi:
        # Address holds VA[63:12]: the line shows the VA, a 4 KiB-aligned address.
        addr = e["fields"]["Address"] << 12
        assert f"Address={addr:#x}" in text
        assert f"Address={e['fields']['Address']:#x} " not in text + " "


def test_find_on_the_dump_fits_80_columns():
    s = dump()
    out = s.execute("find pa=0x43000000..0x44000000")
    hits = out.result.to_json()["hits"]
    assert hits and all(h["ipa"] is None and h["device"] is None for h in hits)
    lines = render_text(out.result, width=80).splitlines()
    assert max(len(x) for x in lines) <= 80
    head = lines[1]
    assert "ipa" not in head and "device" not in head and "S2" not in head
    # No row is folded onto a second line: one line per hit under the header and rule.
    assert len(lines) == 3 + len(hits)
