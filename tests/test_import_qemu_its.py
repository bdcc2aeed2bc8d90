"""`import qemu` with a GICv3 ITS: a real QEMU 7.2 guest's ITS, checked against QEMU's own trace.

The fixture (tests/fixtures/qemu_its, see its README) is the SMMU fixture's guest booted with
gic-version=3 and two CPUs: a sparse dump holding the SMMU's and the ITS's tables, regs.json
with the SMMU, GITS_* and GICR_*[n] registers read with the monitor while the VM was stopped,
and QEMU's gicv3_its* and smmuv3_translate_success trace events. The oracle is the trace,
parsed here on its own: every MSI QEMU's ITS translated, and that no later ITS command
changed, must resolve through `msi SMMU SID ADDRESS data=N` (the doorbell IOVA the device
wrote, its data) to the LPI, collection and redistributor QEMU's ITS found.
"""
from __future__ import annotations

import json
import lzma
import re
from pathlib import Path

import pytest

from smmudbg.importers.qemu import QemuImportError, import_qemu
from smmudbg.session import Session

FIXTURE = Path(__file__).parent / "fixtures" / "qemu_its"
MEM = FIXTURE / "memory.elf.xz"
REGS = FIXTURE / "regs.json"
REG_VALUES = json.loads(REGS.read_text())
TRANSLATIONS = json.loads((FIXTURE / "translations.json").read_text())
TRACE = lzma.decompress((FIXTURE / "its-trace.log.xz").read_bytes()).decode().splitlines()
DOORBELL = 0x0809_0040          # QEMU virt GITS_TRANSLATER (hw/arm/virt.c: ITS at 0x08080000)


def kv(line: str) -> dict:
    """The 'name value' and 'name=value' pairs of one trace line, values as ints."""
    out = {}
    for m in re.finditer(r"([A-Za-z_]+)[ =:]+(0x[0-9a-fA-F]+|\d+)\b", line):
        out.setdefault(m.group(1), int(m.group(2), 0))
    return out


def parse_trace(lines):
    """(msis, commands) from the trace alone. An MSI: {index, devid, eventid, iova, intid, icid,
    rdbase} from a gicv3_its_translation_write, the SMMU translation of the same requester's
    doorbell write just before it, and the DTE/ITE/CTE reads after it. A command: (index, name,
    fields)."""
    msis, cmds, cur = [], [], None
    last_xlate = {}                       # sid -> (iova, translated) of its last translation
    for i, line in enumerate(lines):
        ev = line.split(" ", 1)[0]
        a = kv(line.split(" ", 1)[1] if " " in line else "")
        if ev == "smmuv3_translate_success":
            last_xlate[a["sid"]] = (a["iova"], a["translated"])
        elif ev == "gicv3_its_translation_write":
            dev = a["requester_id"]
            iova, pa = last_xlate.get(dev, (None, None))
            cur = {"index": i, "devid": dev, "eventid": a["data"], "offset": a["offset"],
                   "iova": iova, "pa": pa}
            msis.append(cur)
        elif ev == "gicv3_its_ite_read" and cur is not None:
            assert a["EventID"] == cur["eventid"], line
            cur.update(ite_valid=a["valid"], intid=a["intid"], icid=a["ICID"])
        elif ev == "gicv3_its_cte_read" and cur is not None:
            assert a["ICID"] == cur["icid"], line
            cur.update(cte_valid=a["valid"], rdbase=a["RDBase"])
        elif ev == "gicv3_its_dte_read" and cur is not None:
            assert a["DeviceID"] == cur["devid"], line
        elif ev.startswith("gicv3_its_cmd_"):
            cmds.append((i, ev[len("gicv3_its_cmd_"):], a))
            cur = None
        elif ev == "gicv3_its_process_command":
            cur = None
    return msis, cmds


MSIS, COMMANDS = parse_trace(TRACE)


def changed_later(m) -> str | None:
    """The first later ITS command that may change how this MSI translates, or None."""
    for i, name, a in COMMANDS:
        if i < m["index"]:
            continue
        if name == "mapd" and a.get("DeviceID") == m["devid"]:
            return f"MAPD at line {i}"
        if name in ("mapti", "mapi", "discard", "movi") and \
                (a.get("DeviceID"), a.get("EventID")) == (m["devid"], m["eventid"]):
            return f"{name.upper()} at line {i}"
        if name == "mapc" and a.get("ICID") == m.get("icid"):
            return f"MAPC at line {i}"
        if name == "movall":
            return f"MOVALL at line {i}"
    return None


def doorbell_still_mapped(m) -> bool:
    """The doorbell translation is in translations.json (built from the trace) as still mapped."""
    return any(t["sid"] == m["devid"] and int(t["iova"], 16) == m["iova"] and
               int(t["pa"], 16) == m["pa"] and t["still_mapped"] for t in TRANSLATIONS)


def checkable():
    return [m for m in MSIS if changed_later(m) is None and doorbell_still_mapped(m)]


@pytest.fixture(scope="module")
def session():
    s = Session()
    out = s.execute(f"import qemu {MEM} --regs {REGS}")
    assert out.ok, out.error
    return s


def run(session, line):
    out = session.execute(line)
    assert out.ok, (line, out.error)
    return out.result


# ---------------------------------------------------------------------------------------------
# The oracle itself
# ---------------------------------------------------------------------------------------------
def test_trace_has_translated_msis_on_both_cpus():
    assert len(MSIS) >= 20
    for m in MSIS:
        # Every MSI went through the SMMU to the doorbell and QEMU's ITS resolved it.
        assert m["pa"] == DOORBELL and m["offset"] == 0x40, m
        assert m.get("ite_valid") == 1 and m.get("cte_valid") == 1, m
    assert {m["rdbase"] for m in MSIS} == {0, 1}        # two CPUs: both collections used
    assert len({m["devid"] for m in MSIS}) == 3          # virtio-blk, root port, virtio-net


# ---------------------------------------------------------------------------------------------
# Validation: every MSI QEMU translated resolves the same way through smmudbg
# ---------------------------------------------------------------------------------------------
def test_every_translated_msi_resolves_as_qemu_did(session):
    cases = checkable()
    # No later ITS command changed any of them; the one left out is the root port's (SID 0x10)
    # first MSI: its STE was re-configured afterwards (CFGI_STE in the trace: the root port
    # joined virtio-net's IOMMU group), so its doorbell translation may be gone.
    assert all(changed_later(m) is None for m in MSIS)
    assert [(m["devid"], m["eventid"]) for m in MSIS if m not in cases] == [(0x10, 0)]
    assert len(cases) == 26
    bad = []
    for m in cases:
        r = run(session, f"msi smmu0 {m['devid']:#x} {m['iova']:#x} data={m['eventid']} dry")
        got = (r.ok, r.device_id, r.pa, r.intid, r.icid, r.target)
        want = (True, m["devid"], DOORBELL, m["intid"], m["icid"], m["rdbase"])
        if got != want:
            bad.append((m, got, r.reason))
        # The target CPU: the redistributor frame whose GICR_TYPER.Processor_Number is RDbase.
        frame = next(n for n in range(8) if f"GICR_TYPER[{n}]" in REG_VALUES and
                     (int(REG_VALUES[f"GICR_TYPER[{n}]"], 16) >> 8) & 0xFFFF == m["rdbase"])
        aff = int(REG_VALUES[f"GICR_TYPER[{frame}]"], 16) >> 32
        assert r.cpu == {"frame": frame, "rd_base": 0x080A0000 + frame * 0x20000,
                         "processor": m["rdbase"],
                         "affinity": ".".join(str((aff >> s) & 0xFF) for s in (24, 16, 8, 0))}
    assert bad == []


def test_flat_device_table(tmp_path):
    """The guest's level-2 device-table page is a flat table of DeviceIDs 0..8191 (64 KB of
    8-byte DTEs): pointed at directly by a flat GITS_BASER0, every MSI resolves the same, with
    no level-1 read."""
    l1e = int(REG_VALUES["GITS_BASER0"], 16)
    assert l1e >> 62 & 1 and (l1e >> 8) & 3 == 2           # two-level, 64 KB pages
    run0 = Session()
    assert run0.execute(f"import qemu {MEM} --regs {REGS}").ok
    page = run(run0, "its device=0x8").device["steps"][0]["fields"]["Physical_Address"] << 12
    flat = (l1e & ~(1 << 62) & ~0x0000FFFFFFFFF000) | page
    a, b = split_files(tmp_path, change={"GITS_BASER0": hex(flat)})
    s = Session()
    assert s.execute(f"import qemu {MEM} --regs {a} --gic {b}").ok
    tables = {t["kind"]: t for t in run(s, "its").tables}
    assert not tables["Devices"]["indirect"] and tables["Devices"]["capacity"] == 8192
    for m in checkable():
        r = run(s, f"msi smmu0 {m['devid']:#x} {m['iova']:#x} data={m['eventid']} dry")
        assert (r.intid, r.icid, r.target) == (m["intid"], m["icid"], m["rdbase"])
        its = r.steps[-1]["its_steps"]
        assert its[0]["what"] == "DTE" and its[0]["address"] == page + 8 * m["devid"]


def test_msi_steps_read_the_tables_qemu_read(session):
    m = next(m for m in checkable() if m["rdbase"] == 1)
    r = run(session, f"msi smmu0 {m['devid']:#x} {m['iova']:#x} data={m['eventid']} dry")
    assert [s["what"] for s in r.steps] == ["msi", "iort", "smmu", "region", "its"]
    its = r.steps[-1]["its_steps"]
    assert [s["what"] for s in its] == ["L1 device table", "DTE", "ITE", "CTE", "redistributor"]
    # The ITT address QEMU's DTE read reported, and the MAPD that wrote it.
    mapd = [a for _, n, a in COMMANDS if n == "mapd" and a["DeviceID"] == m["devid"]][-1]
    dte = its[1]["fields"]
    assert dte["Valid"] == 1 and dte["ITT_addr"] == mapd["ITT_addr"]
    assert its[2]["address"] == (mapd["ITT_addr"] << 8) + 12 * m["eventid"]


def test_its_mappings_are_the_guests_commands(session):
    """`its` lists what the guest's MAPD/MAPTI/MAPC commands (in the trace) set up."""
    expect, colls, sizes = {}, {}, {}
    for _, name, a in COMMANDS:
        if name == "mapc" and a["V"]:
            colls[a["ICID"]] = a["RDbase"]
        elif name == "mapd":
            sizes[a["DeviceID"]] = a["Size"] if a["V"] else None
            expect = {k: v for k, v in expect.items() if k[0] != a["DeviceID"]}
        elif name == "mapti":
            expect[(a["DeviceID"], a["EventID"])] = (a["pINTID"], a["ICID"])
    r = run(session, "its")
    got = {(x["device_id"], x["event_id"]): (x["intid"], x["icid"]) for x in r.mappings}
    assert got == expect
    assert all(x["target"] == colls[x["icid"]] for x in r.mappings)
    assert {c["icid"]: c["target"] for c in r.collections} == colls
    assert r.enabled and not r.stalled and r.commands == 0     # nothing replayed
    for name, v in r.registers.items():
        assert v == int(REG_VALUES[name], 16), name           # exactly the values read
    assert [x["frame"] for x in r.redistributors] == [0, 1]
    for x in r.redistributors:
        for reg, v in x["registers"].items():
            assert v == int(REG_VALUES[f"{reg}[{x['frame']}]"], 16)


def test_import_report():
    r = run(Session(), f"import qemu {MEM} --regs {REGS}")
    assert r.its["name"] == "its0" and r.its["base"] == 0x08080000
    assert r.its["translater"] == DOORBELL and r.its["redistributors"] == 2
    assert r.its["enabled"] is True and r.warnings == []


# ---------------------------------------------------------------------------------------------
# Broken MSIs on the real guest
# ---------------------------------------------------------------------------------------------
def test_unmapped_event_and_event_beyond_the_itt(session):
    m = MSIS[0]
    size = [a for _, n, a in COMMANDS if n == "mapd" and a["DeviceID"] == 0x8][-1]["Size"]
    events = 1 << (size + 1)
    mapped = {a["EventID"] for _, n, a in COMMANDS if n == "mapti" and a["DeviceID"] == 0x8}
    free = next(e for e in range(events) if e not in mapped)
    iova = next(x["iova"] for x in MSIS if x["devid"] == 0x8)
    r = run(session, f"msi smmu0 0x8 {iova:#x} data={free} dry")
    assert not r.ok and r.failed == "its" and r.reason.startswith("UNMAPPED_INTERRUPT")
    r = run(session, f"msi smmu0 0x8 {iova:#x} data={events} dry")
    assert not r.ok and r.reason.startswith("ID_OOR")
    # A StreamID whose device has no DTE: its doorbell IOVA is not mapped in the SMMU either
    # (the SID has no STE), so the path stops before the ITS.
    r = run(session, f"msi smmu0 0x18 {m['iova']:#x} data=0 dry")
    assert not r.ok and r.failed == "smmu"
    # The same write with the DeviceID given, straight to the doorbell PA: no DTE.
    r = run(session, f"msi smmu0 0x8 {iova:#x} data=0 devid=0x18 dry")
    assert not r.ok and r.reason.startswith("UNMAPPED_DEVICE")


def test_session_with_its_replays_identically(tmp_path):
    a, b = split_files(tmp_path)
    s = Session()
    assert s.execute(f"import qemu {MEM} --regs {a} --gic {b}").ok
    m = checkable()[0]
    for line in ("its", f"msi smmu0 {m['devid']:#x} {m['iova']:#x} data={m['eventid']}",
                 "its device=0x100"):
        assert s.execute(line).ok, line
    p = tmp_path / "s.json"
    s.save(str(p))
    loaded, report = Session.load(str(p))
    assert report["identical"], report


def test_msi_write_makes_the_lpi_pending(tmp_path):
    s = Session()
    assert s.execute(f"import qemu {MEM} --regs {REGS}").ok
    m = next(m for m in checkable() if m["rdbase"] == 1)
    run(s, f"msi smmu0 {m['devid']:#x} {m['iova']:#x} data={m['eventid']}")
    assert run(s, "its").pending == [{"target": 1, "intids": [m["intid"]]}]


# ---------------------------------------------------------------------------------------------
# Register files: a second file, missing registers, malformed values
# ---------------------------------------------------------------------------------------------
def split_files(tmp_path, drop=(), change=None):
    smmu = {k: v for k, v in REG_VALUES.items() if not k.startswith(("GITS_", "GICR_"))}
    gic = {k: v for k, v in REG_VALUES.items() if k.startswith(("GITS_", "GICR_"))
           and k not in drop}
    gic.update(change or {})
    a, b = tmp_path / "smmu.json", tmp_path / "gic.json"
    a.write_text(json.dumps(smmu))
    b.write_text(json.dumps(gic))
    return a, b


def test_second_file_gives_the_same_system(tmp_path, session):
    a, b = split_files(tmp_path)
    s = Session()
    out = s.execute(f"import qemu {MEM} --regs {a} --gic {b}")
    assert out.ok, out.error
    assert run(s, "its").mappings == run(session, "its").mappings
    # Without the GIC file there is no ITS.
    s2 = Session()
    assert s2.execute(f"import qemu {MEM} regs={a}").ok
    assert not s2.execute("its").ok


def test_missing_registers_are_not_provided_never_zero(tmp_path):
    a, b = split_files(tmp_path, drop=("GITS_CBASER", "GITS_IIDR", "GICR_TYPER[1]",
                                       "GICR_PENDBASER[0]"))
    s = Session()
    assert s.execute(f"import qemu {MEM} --regs {a} --gic {b}").ok
    r = run(s, "its")
    assert r.registers["GITS_CBASER"] is None and r.registers["GITS_IIDR"] is None
    assert r.registers["GITS_CTLR"] == int(REG_VALUES["GITS_CTLR"], 16)
    rd = {x["frame"]: x for x in r.redistributors}
    assert rd[1]["processor"] is None and rd[1]["affinity"] is None
    assert rd[1]["registers"]["GICR_TYPER"] is None
    assert rd[0]["registers"]["GICR_PENDBASER"] is None
    out = s.execute("its")
    from smmudbg.render import render
    from rich.console import Console
    con = Console(width=200, record=True)
    con.print(render(out.result))
    text = con.export_text()
    assert "not provided" in text
    # The MSIs still resolve: the tables are read from the dump.
    m = checkable()[0]
    assert run(s, f"msi smmu0 {m['devid']:#x} {m['iova']:#x} data={m['eventid']} dry").ok


def test_pending_its_commands_are_a_warning_not_executed(tmp_path):
    # Two commands (32 bytes each) after GITS_CREADR: the snapshot had not processed them.
    rd = int(REG_VALUES["GITS_CREADR"], 16)
    a, b = split_files(tmp_path, change={"GITS_CWRITER": hex(rd + 64)})
    system, report = import_qemu(MEM, a, gic=b)
    assert f"2 ITS command(s) pending between GITS_CREADR {rd:#x}" in " ".join(
        report["warnings"])
    assert system.its_named().log == []


def test_no_gicr_registers_sizes_the_gic_from_the_collections(tmp_path):
    a, b = split_files(tmp_path, drop=[k for k in REG_VALUES if k.startswith("GICR_")])
    system, report = import_qemu(MEM, a, gic=b)
    assert report["its"]["redistributors"] == 2
    assert any("no GICR_* registers" in w for w in report["warnings"])


@pytest.mark.parametrize("change,drop,needles", [
    ({"GITS_TYPER": "0xzz"}, (), ["GITS_TYPER", "not a number"]),
    ({"GITS_BASER0": hex(1 << 64)}, (), ["GITS_BASER0", "64-bit"]),
    ({"GICR_CTLR[0]": hex(1 << 32)}, (), ["GICR_CTLR[0]", "32-bit"]),
    ({"GITS_TRANSLATER": "0x0"}, (), ["GITS_TRANSLATER", "write-only"]),
    ({"GITS_FOO": "0x0"}, (), ["GITS_FOO", "unknown ITS register"]),
    ({"GICR_FOO[0]": "0x0"}, (), ["GICR_FOO[0]", "unknown redistributor register"]),
    ({}, ("GITS_TYPER",), ["GITS_TYPER is missing"]),
    ({}, ("GITS_CTLR",), ["GITS_CTLR is missing"]),
    ({"GITS_TYPER": "0x1f0001efc1"}, (), ["GITS_TYPER.ITT_entry_size=12", "12-byte"]),
    ({"GITS_TYPER": "0x1f0009efb1"}, (), ["GITS_TYPER", "PTA=0"]),
    ({"GITS_BASER0": "0xf903000042590600"}, (), ["GITS_BASER0.Entry_Size=3", "DTE is 8"]),
    ({"GITS_BASER2": "0xf907000042590600"}, (), ["GITS_BASER2 and GITS_BASER0"]),
    ({"GITS_CWRITER": "0x10000"}, (), ["GITS_CWRITER.Offset 0x10000", "command queue"]),
    ({"GICR_TYPER[3]": "0x1"}, (), ["GICR_*[2] is missing"]),
    ({"GICR_TYPER[1]": "0x0000000101000001"}, (), ["Processor_Number 0"]),
    ({"GITS_BASER0": "0xf907000050000600"}, (), ["GITS_BASER0 (Devices table) 0x50000000",
                                                 "not in the dump"]),
])
def test_malformed_gic_registers_are_one_line_errors(tmp_path, change, drop, needles):
    a, b = split_files(tmp_path, drop=drop, change=change)
    with pytest.raises(QemuImportError) as e:
        import_qemu(MEM, a, gic=b)
    msg = str(e.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, msg
    # The same through the command: one line, no traceback.
    out = Session().execute(f"import qemu {MEM} --regs {a} --gic {b}")
    assert not out.ok and "\n" not in out.error and needles[0] in out.error


def test_gic_registers_given_twice(tmp_path):
    a, b = split_files(tmp_path)
    both = json.loads(b.read_text())
    a.write_text(json.dumps({**json.loads(a.read_text()), "GITS_CTLR": both["GITS_CTLR"]}))
    with pytest.raises(QemuImportError, match="GITS_CTLR is also given in .*smmu.json"):
        import_qemu(MEM, a, gic=b)
    b.write_text(json.dumps({**both, "SMMU_CR0": "0x0"}))
    with pytest.raises(QemuImportError, match="SMMU_CR0.* is not a GITS_\\* or GICR_\\*"):
        import_qemu(MEM, a, gic=b)
    with pytest.raises(QemuImportError, match="GICR_CTLR.*GICR_CTLR\\[0\\].*same register"):
        import_qemu(MEM, {**REG_VALUES, "GICR_CTLR": "0x3"})


def test_plain_smmu_fixture_has_no_its():
    system, report = import_qemu(Path(__file__).parent / "fixtures" / "qemu" / "memory.elf.xz",
                                 Path(__file__).parent / "fixtures" / "qemu" / "regs.json")
    assert report["its"] is None and system.its == {}


def test_cli_import_qemu_with_gic_file_runs_a_script(tmp_path, capsys):
    from smmudbg import cli
    a, b = split_files(tmp_path)
    m = next(m for m in checkable() if m["rdbase"] == 1)
    script = tmp_path / "s.txt"
    script.write_text(f"msi smmu0 {m['devid']:#x} {m['iova']:#x} data={m['eventid']}\n"
                      f"expect intid == {m['intid']}\nexpect target == 1\n")
    rc = cli.main(["import-qemu", str(MEM), "--regs", str(a), "--gic", str(b), "--run",
                   str(script), "--json"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert all(json.loads(line)["ok"] for line in out.splitlines())


def test_a_dte_claiming_2_to_32_events_lists_what_the_dump_holds():
    """A hostile DTE (Size=31: 2^32 events, a 48 GiB ITT) pointing at device 0x8's ITT: `its`
    scans only the memory the dump holds, and lists the events mapped there."""
    from smmudbg.arch import fmt
    s = Session()
    assert s.execute(f"import qemu {MEM} --regs {REGS}").ok
    its = s.system.its_named()
    dte8 = run(s, "its device=0x8").device["steps"][1]
    dte = fmt("DTE_QEMU", "gicv3")
    words = dte.encode(Valid=1, Size=31, ITT_addr=dte8["fields"]["ITT_addr"])
    s.system.mem.write_words(dte8["address"] + 8, words)          # DeviceID 0x9's DTE
    r = run(s, "its device=0x9")
    got = {x["event_id"]: x["intid"] for x in r.mappings}
    want = {a["EventID"]: a["pINTID"] for _, n, a in COMMANDS
            if n == "mapti" and a["DeviceID"] == 0x8}
    assert {e: got.get(e) for e in want} == want
    # Beyond device 0x8's events the page holds other kernel data, read as ITEs; every one
    # listed lies in the dump (nothing outside it was scanned or invented).
    itt = dte8["fields"]["ITT_addr"] << 8
    segs = [(pa, pa + size) for pa, size, kind in s.system.mem.regions() if kind == "image"]
    for e in got:
        assert any(lo <= itt + 12 * e and itt + 12 * e + 12 <= hi for lo, hi in segs), e
    assert its.lookup_device(0x9, [])["Size"] == 31


def test_warnings_for_what_the_gic_registers_leave_out(tmp_path):
    # Redistributors without an ITS: imported as nothing, said so.
    smmu_only = {k: v for k, v in REG_VALUES.items() if not k.startswith("GITS_")}
    system, report = import_qemu(MEM, smmu_only)
    assert report["its"] is None and system.its == {}
    assert any("without any GITS_* register" in w for w in report["warnings"])
    # No collection table: said so, and an MSI stops at the CTE step with the reason.
    a, b = split_files(tmp_path, drop=("GITS_BASER1",))
    system, report = import_qemu(MEM, a, gic=b)
    assert any("no Valid GITS_BASER<n> of Type Collections" in w for w in report["warnings"])
    s = Session()
    assert s.execute(f"import qemu {MEM} --regs {a} --gic {b}").ok
    m = checkable()[0]
    r = run(s, f"msi smmu0 {m['devid']:#x} {m['iova']:#x} data={m['eventid']} dry")
    assert not r.ok and r.failed == "its" and "no collection table" in r.reason
    assert run(s, "its").registers["GITS_BASER1"] is None
