"""`import qemu`: a real QEMU 7.2 guest's SMMUv3 state, checked against QEMU's own translations.

The fixture (tests/fixtures/qemu, see its README) is a sparse dump-guest-memory ELF of a Linux
guest on `-M virt,iommu=smmuv3`, the SMMU registers read with the monitor while the VM was
stopped, and every translation QEMU's smmuv3_translate_success trace event reported. Each one
still mapped at the snapshot must walk, through smmudbg, to the PA QEMU computed, with the access
QEMU performed permitted.
"""
from __future__ import annotations

import io
import json
import lzma
import os
from pathlib import Path

import numpy as np
import pytest

from core_cy.physmem import MemFault
from smmudbg import cli
from smmudbg.arch.fieldtable import fmt
from smmudbg.errors import SmmuDbgError
from smmudbg.importers.qemu import QemuImportError, import_qemu, parse_regs
from smmudbg.importers.qemu_dump import load_memory
from smmudbg.model.system import System
from smmudbg.session import Session

FIXTURE = Path(__file__).parent / "fixtures" / "qemu"
MEM = FIXTURE / "memory.elf.xz"
REGS = FIXTURE / "regs.json"
TRANSLATIONS = json.loads((FIXTURE / "translations.json").read_text())
REG_VALUES = json.loads(REGS.read_text())

STE = fmt("STE")
CD = fmt("CD")
L1STD = fmt("L1STD")


@pytest.fixture(scope="module")
def imported():
    return import_qemu(MEM, REGS)


@pytest.fixture(scope="module")
def elf_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("qemu") / "memory.elf"
    p.write_bytes(lzma.decompress(MEM.read_bytes()))
    return p


def still_mapped():
    return [t for t in TRANSLATIONS if t["still_mapped"]]


def write_regs(tmp_path, **changes):
    regs = dict(REG_VALUES)
    for k, v in changes.items():
        if v is None:
            regs.pop(k, None)
        else:
            regs[k] = v
    p = tmp_path / "regs.json"
    p.write_text(json.dumps(regs))
    return p


def one_line_error(excinfo, *needles):
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, msg
    return msg


# ---------------------------------------------------------------------------------------------
# The imported system
# ---------------------------------------------------------------------------------------------
def test_import_makes_a_system_with_smmu0(imported):
    system, report = imported
    assert isinstance(system, System)
    assert list(system.smmus) == ["smmu0"]
    m = system.smmu("smmu0")
    # ID registers are exactly the values read from QEMU.
    for n in ("SMMU_IDR0", "SMMU_IDR1", "SMMU_IDR2", "SMMU_IDR3", "SMMU_IDR4", "SMMU_IDR5"):
        assert m.regs[n] == int(REG_VALUES[n], 16), n
    # Other registers hold the snapshot (EVTQ_* are SMMU_EVENTQ_*).
    assert m.regs["SMMU_CR0"] == 0xD and m.regs["SMMU_CR0ACK"] == 0xD
    assert m.regs["SMMU_STRTAB_BASE"] == 0x40000000481B2000
    assert m.regs["SMMU_EVENTQ_BASE"] == 0x400000004BC0000F
    assert m.regs["SMMU_CMDQ_PROD"] == m.regs["SMMU_CMDQ_CONS"] == 0x1C0
    assert m.regs["SMMU_IRQ_CTRLACK"] == 5
    assert report["warnings"] == []
    assert report["smmuen"] is True
    assert report["pending_commands"] == 0
    assert [(s["sid"], s["config"]) for s in report["streams"]] == \
        [(0x8, "s1"), (0x10, "s1"), (0x100, "s1")]
    assert sorted(sid for (_, sid) in system.streams) == [0x8, 0x10, 0x100]


def test_idrs_decode_into_capabilities(imported):
    m = imported[0].smmu()
    f = m.features
    # IDR0 0x0d40101a: S1P, AArch64 tables, COHACC, ASID16, LE, STALL_MODEL=1, TERM_MODEL,
    # 2-level stream tables; no stage 2, no CD2L, no VMID16.
    assert (f["S1P"], f["S2P"], f["TTF"], f["COHACC"], f["ASID16"], f["VMID16"], f["CD2L"]) == \
        (1, 0, 2, 1, 1, 0, 0)
    assert (f["TTENDIAN"], f["STALL_MODEL"], f["TERM_MODEL"], f["ST_LEVEL"], f["HYP"],
            f["ATS"], f["HTTU"]) == (2, 1, 1, 1, 0, 0, 0)
    # IDR1 0x02730010: SIDSIZE 16, SSIDSIZE 0, EVENTQS 19, CMDQS 19.
    assert (f["SIDSIZE"], f["SSIDSIZE"], f["EVENTQS"], f["CMDQS"]) == (16, 0, 19, 19)
    # IDR3 0x1404: HAD, RIL, BBML=2. IDR5 0x74: OAS 44-bit, 4K/16K/64K granules.
    assert (f["HAD"], f["RIL"], f["BBML"], f["XNX"], f["STT"]) == (1, 1, 2, 0, 0)
    assert (f["OAS"], f["GRAN4K"], f["GRAN16K"], f["GRAN64K"]) == (4, 1, 1, 1)
    assert m.walker.oas_bits == 44


def test_memory_is_the_dump_lazily_and_copy_on_write(elf_path):
    system, report = import_qemu(elf_path, REGS)
    assert system.mem.resident_pages == 0          # nothing copied: pages map the file
    segs = load_memory(elf_path)
    assert [(s["pa"], s["size"]) for s in report["segments"]] == [(s.pa, s.size) for s in segs]
    assert [(b, sz, k) for b, sz, k in system.mem.regions()] == \
        [(s.pa, s.size, "image") for s in segs]
    # Every byte of every segment reads as in the dump.
    for s in segs:
        assert system.mem.read(s.pa, s.size) == bytes(s.data)
    # Outside the dump nothing is backed: reads and writes fault (no silent zero RAM).
    with pytest.raises(MemFault):
        system.mem.read_u64(0x40000000)
    with pytest.raises(MemFault):
        System.empty("x", strict=True).mem.write_u64(0x40000000, 1)


def test_write_copies_the_page_and_leaves_the_dump_alone(tmp_path, elf_path):
    system, _ = import_qemu(elf_path, REGS)
    before = elf_path.read_bytes()
    pa = 0x4BA60000                       # STE of SID 0 (abort)
    system.mem.write_u64(pa, 0x1234)
    assert system.mem.read_u64(pa) == 0x1234
    assert system.mem.read_u64(pa + 0x200) == 0x485D900B       # rest of the page copied
    assert elf_path.read_bytes() == before
    again, _ = import_qemu(elf_path, REGS)
    assert again.mem.read_u64(pa) != 0x1234


# ---------------------------------------------------------------------------------------------
# What the README says the guest programmed
# ---------------------------------------------------------------------------------------------
def test_stream_table_format_as_recorded(imported):
    m = imported[0].smmu()
    st = m.strtab
    assert (st["base"], st["fmt"], st["log2size"], st["split"]) == (0x481B2000, 1, 16, 8)
    l1 = [m.mem.read_u64(0x481B2000 + 8 * i) for i in range(1 << (16 - 8))]
    valid = {i: (L1STD.field("L2Ptr").get([d]) << 6, L1STD.field("Span").get([d]))
             for i, d in enumerate(l1) if L1STD.field("Span").get([d])}
    assert valid == {0: (0x4BA60000, 9), 1: (0x4BA64000, 9)}
    configs = {}
    for l1i, (l2, span) in valid.items():
        for j in range(1 << (span - 1)):            # 2^(Span-1) STEs (the architecture)
            w = m.mem.read_words(l2 + 64 * j, 8)
            assert STE.field("V").get(w) == 1
            configs[(l1i << 8) + j] = STE.field("Config").get(w)
    assert sum(1 for c in configs.values() if c == 0) == 509
    assert {s: c for s, c in configs.items() if c} == {0x8: 5, 0x10: 5, 0x100: 5}
    assert m.ste_addr(0x8) == 0x4BA60200 and m.ste_addr(0x10) == 0x4BA60400
    assert m.ste_addr(0x100) == 0x4BA64000


@pytest.mark.parametrize("sid,ctxptr,asid,ttb0", [(0x8, 0x485D9000, 2, 0x485DA000),
                                                  (0x10, 0x4810C000, 1, 0x4816D000),
                                                  (0x100, 0x4810C000, 1, 0x4816D000)])
def test_cd_format_and_granule_as_recorded(imported, sid, ctxptr, asid, ttb0):
    m = imported[0].smmu()
    w = m.read_ste(sid)
    assert STE.field("S1ContextPtr").get(w) << 6 == ctxptr
    assert STE.field("S1Fmt").get(w) == 0                 # linear CD table
    assert STE.field("S1CDMax").get(w) == 0               # one CD
    cd = m.mem.read_words(ctxptr, 8)
    assert CD.field("V").get(cd) == 1 and CD.field("AA64").get(cd) == 1
    assert CD.field("ASID").get(cd) == asid
    assert CD.field("TTB0").get(cd) << 4 == ttb0
    assert CD.field("T0SZ").get(cd) == 16                 # 48-bit IOVA
    assert CD.field("TG0").get(cd) == 0                   # 4 KiB granule
    assert CD.field("EPD1").get(cd) == 1
    assert m.walker.check_ste(w) == "" and m.walker.check_cd(cd, w) == ""


# ---------------------------------------------------------------------------------------------
# Validation against QEMU itself
# ---------------------------------------------------------------------------------------------
def _walk_all(m, uncached):
    """Walk every still-mapped translation with each access QEMU made. Returns disagreements."""
    xlate = m.walker.translate_uncached if uncached else m.walker.translate
    bad = []
    for t in still_mapped():
        iova, pa = int(t["iova"], 16), int(t["pa"], 16)
        for access in (["read"] if "r" in t["perm"] else []) + \
                      (["write"] if "w" in t["perm"] else []):
            r = xlate(t["sid"], iova, write=access == "write")
            want = "r" if access == "read" else "w"
            if r["fault"] is not None or r["pa"] != pa or want not in r["perm"]:
                bad.append((t, access, r["pa"], r["perm"], r["fault"]))
    return bad


def test_every_still_mapped_translation_matches_qemu(imported):
    m = imported[0].smmu()
    checked = still_mapped()
    assert len(checked) == 96
    assert _walk_all(m, uncached=True) == []
    # Again through the IOTLB/config cache the first pass did not fill, then from the cache.
    assert _walk_all(m, uncached=False) == []
    assert _walk_all(m, uncached=False) == []


def test_maybe_unmapped_translations_as_the_fixture_build_found(imported):
    # Not the oracle (the guest may have unmapped or re-mapped them), but the fixture's own
    # cross-check walked the snapshot's tables and found exactly 1 of them at the same PA.
    m = imported[0].smmu()
    gone = [t for t in TRANSLATIONS if not t["still_mapped"]]
    assert len(gone) == 370 - 96
    same = [t for t in gone
            if m.walker.translate_uncached(t["sid"], int(t["iova"], 16))["pa"] ==
            int(t["pa"], 16)]
    assert len(same) == 1


def test_batch_walk_matches_qemu(imported):
    m = imported[0].smmu()
    ts = still_mapped()
    sids = np.array([t["sid"] for t in ts] * 2, dtype=np.uint32)
    iovas = np.array([int(t["iova"], 16) for t in ts] * 2, dtype=np.uint64)
    access = np.array([0] * len(ts) + [1] * len(ts), dtype=np.uint8)    # read, then write
    out, fault, perm = m.walker.translate_batch(sids, iovas, access=access)
    assert (fault == 0).all()
    assert out.tolist() == [int(t["pa"], 16) for t in ts] * 2
    assert ((perm & 0b011) == 0b011).all()          # r and w (rwx bits)


def test_translations_via_smmu_translate_and_walk_command(imported):
    # The same check through the SMMU model (what the `walk` command uses).
    system = import_qemu(MEM, REGS)[0]
    m = system.smmu()
    for t in still_mapped():
        r = m.translate(t["sid"], int(t["iova"], 16), access="write")
        assert r["pa"] == int(t["pa"], 16) and r["event"] is None


def test_raw_pmemsave_image_with_ram_base(tmp_path, elf_path):
    """A raw image (pmemsave-style) of the region holding every table, at --ram-base."""
    segs = load_memory(elf_path)
    base = segs[0].pa & ~0xFFFFF
    end = segs[-1].end
    raw = tmp_path / "ram.raw"
    with open(raw, "wb") as f:
        f.truncate(end - base)
        for s in segs:
            f.seek(s.pa - base)
            f.write(bytes(s.data))
    system, report = import_qemu(raw, REGS, ram_base=base)
    assert report["segments"] == [{"pa": base, "size": end - base}]
    assert _walk_all(system.smmu(), uncached=True) == []
    # Loaded at the wrong base, the stream table is not where the registers say.
    with pytest.raises(QemuImportError) as e:
        import_qemu(raw, REGS, ram_base=0x80000000)
    one_line_error(e, "SMMU_STRTAB_BASE 0x481b2000 is not in the dump", "0x80000000-")


# ---------------------------------------------------------------------------------------------
# The capabilities reach the walker
# ---------------------------------------------------------------------------------------------
def _first(sid=0x8):
    t = next(t for t in still_mapped() if t["sid"] == sid)
    return int(t["iova"], 16), int(t["pa"], 16)


def test_idr5_without_4k_granule_makes_the_cd_illegal(tmp_path):
    system, _ = import_qemu(MEM, write_regs(tmp_path, SMMU_IDR5="0x00000064"))
    iova, _ = _first()
    r = system.smmu().walker.translate(0x8, iova)
    assert r["fault"]["type"] == "C_BAD_CD"


def test_idr0_without_stage1_makes_the_ste_illegal(tmp_path):
    system, _ = import_qemu(MEM, write_regs(tmp_path, SMMU_IDR0="0x0d401018"))
    iova, _ = _first()
    assert system.smmu().walker.translate(0x8, iova)["fault"]["type"] == "C_BAD_STE"


def test_smmuen_0_bypasses(tmp_path):
    system, _ = import_qemu(MEM, write_regs(tmp_path, SMMU_CR0="0x0000000c"))
    iova, _ = _first()
    r = system.smmu().walker.translate(0x8, iova)
    assert r["fault"] is None and r["pa"] == iova


# ---------------------------------------------------------------------------------------------
# Every other command works on it: it is just a System
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def session():
    s = Session()
    out = s.execute(f"import qemu {MEM} --regs {REGS}")
    assert out.ok, out.error
    return s


def test_commands_on_the_imported_system(session):
    s = session
    assert s.system.name == "qemu:memory.elf.xz"
    r = s.run("ste smmu0 0x8").data
    assert r["addr"] == 0x4BA60200 and r["config"] == "s1_trans" and r["legal"]
    r = s.run("cd smmu0 0x10").data
    assert r["addr"] == 0x4810C000 and r["fields"]["ASID"] == 1 and r["legal"]
    assert r["fields"]["TTB0"] << 4 == 0x4816D000
    iova, pa = _first(0x100)
    r = s.run(f"walk smmu0 0x100 {iova:#x} access=write")
    assert r.data["pa"] == pa and r.data["fault"] is None
    assert [st["what"] for st in r.data["steps"]] == ["L1STD", "STE", "CD", "S1", "S1", "S1",
                                                      "S1"]
    r = s.run("pt smmu0 0x8")
    assert r.data["granule"] == 4096 and r.data["root"] == 0x485DA000
    r = s.run(f"pt smmu0 0x8 addr={_first(0x8)[0]:#x}")
    assert r.data["out"] is not None
    r = s.run("regs smmu0 STRTAB_BASE_CFG")
    assert r.data["value"] == 0x10210
    r = s.run("regs smmu0")
    assert {x["name"]: x["value"] for x in r.data["registers"]}["SMMU_IDR0"] == 0x0D40101A
    r = s.run("topology")
    assert [x["sid"] for x in r.data["streams"]] == [0x8, 0x10, 0x100]
    r = s.run("strtab smmu0")
    assert r.data["format"] == "2lvl"


def test_walk_outside_the_dump_is_an_external_abort(session):
    # A stream table L2 entry whose page the dump lacks: poke an L1STD to point outside it.
    m = session.system.smmu()
    m.mem.write_u64(0x481B2000 + 8 * 2, L1STD.encode(Span=9, L2Ptr=0x50000000 >> 6)[0])
    r = m.walker.translate(0x200, 0x1000)
    assert r["fault"]["type"] == "F_STE_FETCH"


def test_import_result_and_session_replay(session, tmp_path):
    out = session.log[0]
    assert out.ok and out.command.startswith("import qemu")
    r = session.last.result.to_json()
    assert r["kind"] == "import" and r["smmu"] == "smmu0" and len(r["streams"]) == 3
    session.run("walk smmu0 0x8 0x0")
    p = tmp_path / "s.json"
    session.save(str(p))
    loaded, report = Session.load(str(p))
    assert report["identical"], report
    assert loaded.system.name == "qemu:memory.elf.xz"


# ---------------------------------------------------------------------------------------------
# Errors: one line, naming what and where
# ---------------------------------------------------------------------------------------------
def test_truncated_xz(tmp_path):
    p = tmp_path / "memory.elf.xz"
    data = MEM.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(QemuImportError) as e:
        import_qemu(p, REGS)
    one_line_error(e, str(p), "truncated xz")
    assert isinstance(e.value, SmmuDbgError)


def test_truncated_elf(tmp_path, elf_path):
    p = tmp_path / "memory.elf"
    p.write_bytes(elf_path.read_bytes()[:0x3000])
    with pytest.raises(QemuImportError) as e:
        import_qemu(p, REGS)
    one_line_error(e, str(p), "truncated")


def test_missing_memory_file(tmp_path):
    with pytest.raises(QemuImportError) as e:
        import_qemu(tmp_path / "nope.elf", REGS)
    one_line_error(e, "nope.elf", "cannot open")


def test_unknown_register_is_named(tmp_path):
    p = write_regs(tmp_path, SMMU_FROB="0x1")
    with pytest.raises(QemuImportError) as e:
        import_qemu(MEM, p)
    one_line_error(e, str(p), "'SMMU_FROB'", "unknown register")


def test_strtab_outside_the_dump(tmp_path):
    p = write_regs(tmp_path, SMMU_STRTAB_BASE="0x0000000060000000")
    with pytest.raises(QemuImportError) as e:
        import_qemu(MEM, p)
    one_line_error(e, "SMMU_STRTAB_BASE 0x60000000 is not in the dump",
                   "segments: 0x4810c000-0x4810cfff")


def test_strtab_outside_the_dump_while_disabled_is_a_warning(tmp_path):
    p = write_regs(tmp_path, SMMU_STRTAB_BASE="0x0000000060000000", SMMU_CR0="0x0000000c")
    _, report = import_qemu(MEM, p)
    assert any("SMMU_STRTAB_BASE 0x60000000 is not in the dump" in w for w in report["warnings"])


def test_cmdq_outside_the_dump_while_enabled(tmp_path):
    p = write_regs(tmp_path, SMMU_CMDQ_BASE="0x0000000070000010")
    with pytest.raises(QemuImportError) as e:
        import_qemu(MEM, p)
    one_line_error(e, "SMMU_CMDQ_BASE 0x70000000 is not in the dump")


def test_l2_table_outside_the_dump_is_a_warning(tmp_path, elf_path):
    # Drop the PT_LOAD holding the second L2 stream table (SID 0x100..): a sparse dump may.
    from smmudbg.importers.qemu import build_system
    from smmudbg.importers.qemu import check_regs, load_regs
    segs = [s for s in load_memory(elf_path) if s.pa != 0x4BA60000]
    vals = load_regs(REGS)
    system, report = build_system(segs, vals, "m", "r", check_regs(vals, "r"))
    assert any("L2 stream table of L1STD #0" in w for w in report["warnings"])
    assert system.smmu().walker.translate(0x8, 0)["fault"]["type"] == "F_STE_FETCH"


@pytest.mark.parametrize("changes,needles", [
    ({"SMMU_STRTAB_BASE": None}, ["SMMU_CR0.SMMUEN=1 but SMMU_STRTAB_BASE is not given"]),
    ({"SMMU_STRTAB_BASE_CFG": None}, ["SMMU_STRTAB_BASE_CFG is not given"]),
    ({"SMMU_IDR0": "0x0540101a"}, ["SMMU_STRTAB_BASE_CFG.FMT=1 (2-level)",
                                   "SMMU_IDR0.ST_LEVEL=0"]),
    ({"SMMU_STRTAB_BASE_CFG": "0x00010211"}, ["LOG2SIZE=17 exceeds SMMU_IDR1.SIDSIZE=16"]),
    ({"SMMU_CR0ACK": "0x00000000"}, ["SMMU_CR0ACK 0x0 != SMMU_CR0 0xd"]),
    ({"SMMU_CMDQ_BASE": "0x400000004bb00014"}, ["SMMU_CMDQ_BASE.LOG2SIZE=20 exceeds "
                                                "SMMU_IDR1.CMDQS=19"]),
    ({"SMMU_EVTQ_BASE": "0x400000004bc00014"}, ["SMMU_EVENTQ_BASE.LOG2SIZE=20 exceeds "
                                                "SMMU_IDR1.EVENTQS=19"]),
    ({"SMMU_CMDQ_BASE": None}, ["SMMU_CR0.CMDQEN=1 but SMMU_CMDQ_BASE is not given"]),
    ({"SMMU_IDR5": None}, ["SMMU_IDR5 is missing"]),
    ({"SMMU_CR0": "0xzz"}, ["SMMU_CR0", "'0xzz' is not a number"]),
    ({"SMMU_CR0": "0x100000000"}, ["SMMU_CR0", "does not fit in the 32-bit register SMMU_CR0"]),
    ({"SMMU_STRTAB_BASE": -1}, ["SMMU_STRTAB_BASE", "negative"]),
    ({"SMMU_GBPA": 1.5}, ["SMMU_GBPA", "expected an integer or a hex string"]),
    ({"SMMU_GBPA": True}, ["SMMU_GBPA", "expected an integer"]),
    ({"SMMU_EVENTQ_BASE": "0x400000004bc0000f"}, ["'SMMU_EVENTQ_BASE' and 'SMMU_EVTQ_BASE' "
                                                  "are the same register"]),
    ({"SMMU_CMDQ_PROD": "0x00020000"}, ["SMMU_CMDQ_PROD 0x20000 has index bits above the "
                                        "wrap bit (bit 16)"]),
])
def test_contradicting_or_bad_registers(tmp_path, changes, needles):
    p = write_regs(tmp_path, **changes)
    with pytest.raises(QemuImportError) as e:
        import_qemu(MEM, p)
    one_line_error(e, str(p), *needles)


def test_registers_as_ints_and_lower_case_names(tmp_path):
    regs = {k.lower(): int(v, 16) for k, v in REG_VALUES.items()}
    p = tmp_path / "regs.json"
    p.write_text(json.dumps(regs))
    system, report = import_qemu(MEM, p)
    assert report["warnings"] == [] and len(report["streams"]) == 3


@pytest.mark.parametrize("text,needle", [
    ("[1, 2]", "expected a JSON object mapping register names to values, got an array"),
    ('"SMMU_CR0"', "got a string"),
    ("{", "not valid JSON"),
    ("", "file is empty"),
    ('{"SMMU_CR0": "0x1", "SMMU_CR0": "0x2"}', "key 'SMMU_CR0' is given twice"),
])
def test_regs_file_that_is_not_a_register_object(tmp_path, text, needle):
    p = tmp_path / "regs.json"
    p.write_text(text)
    with pytest.raises(QemuImportError) as e:
        import_qemu(MEM, p)
    one_line_error(e, str(p), needle)


def test_parse_regs_accepts_a_dict():
    vals = parse_regs({"SMMU_EVTQ_PROD": 3, "smmu_idr0": "0x1"})
    assert vals == {"SMMU_EVENTQ_PROD": 3, "SMMU_IDR0": 1}


# ---------------------------------------------------------------------------------------------
# Command and CLI front doors
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("line,needle", [
    ("import qemu", "missing MEMORY"),
    (f"import qemu {MEM}", "missing --regs REGS.json"),
    (f"import qemu {MEM} --regs", "--regs needs a value"),
    (f"import qemu {MEM} --regs {REGS} --ram-base zz", "ram_base: 'zz' is not an address"),
    (f"import qemu {MEM} --regs {REGS} --frob 1", "unknown option '--frob'"),
    (f"import qemu {MEM} --regs {REGS} --ram-base 0x40000000", "ram_base only applies to raw"),
    (f"import qemu {MEM} --regs /nonexistent/regs.json", "/nonexistent/regs.json: cannot open"),
])
def test_command_errors_are_one_line(line, needle):
    s = Session()
    before = s.system
    out = s.execute(line)
    assert not out.ok and "\n" not in out.error and needle in out.error, out.error
    assert s.system is before                   # a failed import leaves the system alone


def test_command_key_value_spelling():
    s = Session()
    out = s.execute(f"import qemu {MEM} regs={REGS}")
    assert out.ok, out.error
    assert s.run("help import qemu").data["name"] == "import qemu"


def test_cli_import_qemu_runs_a_script(tmp_path, capsys):
    iova, pa = _first(0x8)
    script = tmp_path / "s.txt"
    script.write_text(f"walk smmu0 0x8 {iova:#x}\nexpect pa == {pa:#x}\n"
                      f"ste smmu0 0x100\nexpect config == s1_trans\n")
    rc = cli.main(["import-qemu", str(MEM), "--regs", str(REGS), "--run", str(script), "--json"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert all(json.loads(line)["ok"] for line in out.splitlines())


def test_cli_import_qemu_error_is_one_line(tmp_path, capsys):
    p = write_regs(tmp_path, SMMU_FROB="1")
    rc = cli.main(["import-qemu", str(MEM), "--regs", str(p), "--run", "-"])
    err = capsys.readouterr().err.strip()
    assert rc == cli.EXIT_ERROR and "\n" not in err and "SMMU_FROB" in err
