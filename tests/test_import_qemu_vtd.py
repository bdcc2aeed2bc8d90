"""`import qemu` of a real x86-64 guest with Intel VT-d (tests/fixtures/qemu_vtd, a QEMU 10.0 q35
guest in scalable mode; its README): through the product's commands (walk, events, context,
pasid), every translation QEMU traced that is still valid at the snapshot, and the fault it
recorded, come back as QEMU's trace reports them (tests/vtd_trace.py reads the trace). The
expected segments come from the ELF read with pyelftools, the registers from regs.json.
"""
from __future__ import annotations

import io
import json
import lzma

import pytest
from elftools.elf.elffile import ELFFile

from smmudbg import cli
from smmudbg.arch.fieldtable import fmt
from smmudbg.importers.qemu import QemuImportError, import_qemu
from smmudbg.render import render_text
from smmudbg.results import Result
from smmudbg.session import Session
from vtd_trace import A_D, FIXTURE, PAGE, host_address_width, traced_faults, traced_translations

MEM = FIXTURE / "memory.elf.xz"
REGS = FIXTURE / "regs.json"
REG_VALUES = json.loads(REGS.read_text())
ARM = FIXTURE.parent / "qemu"
IMPORT = f"import qemu {MEM} --regs {REGS}"


@pytest.fixture(scope="module")
def session():
    s = Session()
    out = s.execute(IMPORT)
    assert out.ok, out.error
    s.imported = out.result
    return s


@pytest.fixture(scope="module")
def elf_bytes():
    return lzma.decompress(MEM.read_bytes())


def run(s, line):
    out = s.execute(line)
    assert out.ok, (line, out.error)
    return out.result.to_json()


def reg(name):
    return int(REG_VALUES[f"DMAR_{name}"], 16)


def test_import_builds_dmar0_over_every_segment(session, elf_bytes):
    r = session.imported.to_json()
    assert r["kind"] == "vtd-import" and r["unit"] == "dmar0" and r["machine"] == "x86_64"
    loads = [(s["p_paddr"], s["p_memsz"]) for s in ELFFile(io.BytesIO(elf_bytes)).iter_segments()
             if s["p_type"] == "PT_LOAD"]
    assert [(g["pa"], g["size"]) for g in r["segments"]] == sorted(loads)
    # RAM and the BIOS ROM's last page (the reset vector below 4 GiB) are both memory
    assert (0xFFFFF000, PAGE) in [(g["pa"], g["size"]) for g in r["segments"]]
    assert r["mode"] == "scalable" and r["translation"]
    assert r["root_table"] == reg("RTADDR_REG") & ~0xFFF
    assert r["haw"] == host_address_width()             # what the guest read from ACPI DMAR
    assert r["iq"]["base"] == reg("IQA_REG") & ~0xFFF
    # IQA_REG.DW (bit 11) is set: 256-bit descriptors, IQH_REG an offset in bytes
    assert reg("IQA_REG") >> 11 & 1
    assert r["iq"]["head"] == r["iq"]["tail"] == reg("IQH_REG") // 32
    assert r["iq"]["entries"] == (PAGE << (reg("IQA_REG") & 7)) // 32
    assert r["irta"]["base"] == reg("IRTA_REG") & ~0xFFF
    assert r["irta"]["entries"] == 2 << (reg("IRTA_REG") & 0xF)
    assert r["faults"] == 1 and r["warnings"] == []
    # both virtio devices (README: 00:03.0 and 01:00.0) have a present context entry
    assert {0x0018, 0x0100} <= {d["rid"] for d in r["devices"]}
    assert "dmar0" in render_text(session.imported)
    assert Result.from_json(r) == session.imported          # the result round-trips


def test_walk_reproduces_every_translation_still_valid(session):
    valid = [t for t in traced_translations() if t["valid"]]
    assert len(valid) == 18
    for t in valid:
        where = f"sid {t['sid']:#06x} iova {t['iova']:#x} (trace line {t['index'] + 1})"
        r = run(session, f"walk dmar0 {t['sid']:#x} {t['iova']:#x} dry")
        assert r["outcome"] == "translated", (where, r["fault"])
        assert (r["pgtt"], r["pasid_used"], r["did"]) == ("first_stage", 0, t["did"]), where
        assert r["size"] - 1 == t["mask"], where
        assert r["pa"] == t["gpa"] | (t["iova"] & t["mask"]), where
        leaf = r["steps"][-1]
        assert leaf["what"] == "fs" and leaf["desc"] & ~A_D == t["pte"] & ~A_D, where
        w = run(session, f"walk dmar0 {t['sid']:#x} {t['iova']:#x} access=write dry")
        assert (w["outcome"] == "translated") == bool(t["pte"] & 2), where


def test_recorded_fault_is_listed_with_its_reason(session):
    [[_, sid, reason, addr, write, (index, hi, lo)]] = traced_faults()
    [f] = run(session, "events dmar0")["faults"]
    assert (f["index"], f["reason"], f["name"]) == (index, reason, "SFS_2")
    assert (f["sid"], f["fi"], f["write"], f["request"]) == (sid, addr & ~(PAGE - 1), write,
                                                             "write")
    # the record QEMU wrote (vtd_frr_new), F aside: the guest's handler cleared F (W1C)
    frcd = fmt("FRCD_REG", "vtd")
    assert {k: frcd.field(k).get([lo, hi]) for k in ("FR", "SID", "FI")} == \
        {"FR": f["reason"], "SID": f["sid"], "FI": f["fi"] >> 12}
    assert f["F"] == 0
    assert run(session, f"events dmar0 type=SFS_2 sid={sid:#x}")["faults"] == [f]


def test_the_faulting_request_walks_to_the_same_fault(tmp_path):
    [[_, sid, reason, addr, write, _]] = traced_faults()
    s = Session()
    assert s.execute(IMPORT).ok
    r = run(s, f"walk dmar0 {sid:#x} {addr:#x} access={'write' if write else 'read'}")
    assert (r["outcome"], r["fault"]["reason"], r["fault"]["fi"]) == ("fault", reason,
                                                                     addr & ~(PAGE - 1))
    # a recorded fault follows the snapshot's record
    assert [f["index"] for f in run(s, "events dmar0")["faults"]] == [0, 1]


def test_context_and_pasid_entries(session):
    dids = {t["sid"]: t["did"] for t in traced_translations() if t["valid"]}
    for rid, did in dids.items():
        c = run(session, f"context dmar0 {rid:#x}")
        names = [e["name"] for e in c["entries"]]
        assert names == ["SM_ROOT_ENTRY", "SM_CONTEXT_ENTRY"] and c["fault"] is None
        root = c["entries"][0]
        assert root["addr"] == (reg("RTADDR_REG") & ~0xFFF) + 16 * (rid >> 8)
        ctx = {row["field"]: row["value"] for row in c["entries"][1]["rows"]}
        assert ctx["P"] == 1
        p = run(session, f"pasid dmar0 {rid:#x}")
        assert [e["name"] for e in p["entries"]] == ["PASID_DIR_ENTRY", "PASID_ENTRY"]
        assert p["entries"][0]["addr"] == ctx["PASIDDIRPTR"] << 12      # PASID 0: entry 0
        pe = {row["field"]: row["value"] for row in p["entries"][1]["rows"]}
        assert (pe["P"], pe["PGTT"], pe["DID"]) == (1, 1, did)           # PGTT 001b: first


def test_session_replays_identically(tmp_path):
    s = Session()
    assert s.execute(IMPORT).ok
    t = next(t for t in traced_translations() if t["valid"])
    for line in (f"walk dmar0 {t['sid']:#x} {t['iova']:#x}", "walk dmar0 0x100 0x1000 "
                 "access=write", "events dmar0", "context dmar0 0x18", "pasid dmar0 0x100"):
        assert s.execute(line).ok, line
    p = tmp_path / "s.json"
    s.save(str(p))
    loaded, report = Session.load(str(p))
    assert report["identical"], report
    assert loaded.system.vtds["dmar0"].faults == s.system.vtds["dmar0"].faults


def test_cli_runs_a_script_on_the_vtd_dump(tmp_path, capsys):
    t = next(t for t in traced_translations() if t["valid"])
    script = tmp_path / "s.txt"
    pa = t["gpa"] | (t["iova"] & t["mask"])
    script.write_text(f"walk dmar0 {t['sid']:#x} {t['iova']:#x}\nexpect pa == {pa:#x}\n")
    rc = cli.main(["import-qemu", str(MEM), "--regs", str(REGS), "--run", str(script), "--json"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert all(json.loads(line)["ok"] for line in out.splitlines())


# ---- errors: one line, naming what and where ------------------------------------------------

def _regs(tmp_path, **changes):
    regs = dict(REG_VALUES)
    for k, v in changes.items():
        if v is None:
            regs.pop(k)
        else:
            regs[k] = v
    p = tmp_path / "regs.json"
    p.write_text(json.dumps(regs))
    return p


def _err(memory, regs, **kw):
    with pytest.raises(QemuImportError) as e:
        import_qemu(memory, regs, **kw)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_a_mix_of_arm_and_vtd_registers(tmp_path):
    msg = _err(MEM, _regs(tmp_path, SMMU_IDR0="0x1"))
    assert "regs.json" in msg and "'DMAR_VER_REG' is an Intel VT-d register" in msg
    assert "'SMMU_IDR0' is not" in msg


def test_machine_and_registers_must_agree(tmp_path):
    assert "an AArch64 dump with VT-d (DMAR_*) registers" in _err(ARM / "memory.elf.xz", REGS)
    assert "an x86-64 dump with SMMUv3 registers" in _err(MEM, ARM / "regs.json")


def test_unknown_machine(tmp_path, elf_bytes):
    p = tmp_path / "riscv.elf"
    p.write_bytes(elf_bytes[:18] + (243).to_bytes(2, "little") + elf_bytes[20:])
    msg = _err(p, REGS)
    assert str(p) in msg and "not an AArch64 or x86-64 dump (e_machine=243" in msg


def test_required_registers_and_mode(tmp_path):
    assert "DMAR_RTADDR_REG is missing" in _err(MEM, _regs(tmp_path, DMAR_RTADDR_REG=None))
    legacy = f"{reg('RTADDR_REG') & ~0xC00:#x}"          # TTM 00b
    assert "DMAR_RTADDR_REG.TTM=legacy" in _err(MEM, _regs(tmp_path, DMAR_RTADDR_REG=legacy))
    assert "'DMAR_FROB_REG'" in _err(MEM, _regs(tmp_path, DMAR_FROB_REG="0x1"))
    s = Session()
    out = s.execute(f"import qemu {MEM} --regs {REGS} --gic {REGS}")
    assert not out.ok and "without --gic" in out.error and "\n" not in out.error


def test_root_table_outside_the_dump_is_a_warning(tmp_path):
    system, report = import_qemu(MEM, _regs(tmp_path, DMAR_RTADDR_REG="0x8000400"))
    assert report["devices"] == []
    assert report["warnings"] == ["the root table 0x8000000 (RTADDR_REG) is not in the dump"]
    # a walk there stops at the root entry fetch: SRT.1 (38h), error accessing the root entry
    r = system.vtds["dmar0"].translate(0x18, 0x1000, dry=True)
    assert (r["kind"], r["fault"]["reason"]) == ("fault", 0x38)
    assert r["steps"][0]["desc_pa"] == 0x8000000 and r["steps"][0]["outcome"] == "abort"


def test_raw_image_loads_at_zero(tmp_path, elf_bytes):
    # the dump's RAM segments as a pmemsave-style raw image (sparse file): a q35 guest's RAM
    # starts at guest PA 0, so that is where a raw image goes without --ram-base
    raw = tmp_path / "ram.raw"
    with open(raw, "wb") as f:
        for s in ELFFile(io.BytesIO(elf_bytes)).iter_segments():
            if s["p_type"] == "PT_LOAD" and s["p_paddr"] < 0x1000_0000:
                f.seek(s["p_paddr"])
                f.write(s.data().ljust(s["p_memsz"], b"\0"))
    s = Session()
    out = s.execute(f"import qemu {raw} --regs {REGS}")
    assert out.ok, out.error
    r = out.result.to_json()
    assert r["machine"] is None and r["segments"][0]["pa"] == 0
    for t in [t for t in traced_translations() if t["valid"]][:3]:
        w = run(s, f"walk dmar0 {t['sid']:#x} {t['iova']:#x} dry")
        assert w["pa"] == t["gpa"] | (t["iova"] & t["mask"])


def test_smmudbg_dump_regs_loads_the_vtd_guest():
    # `smmudbg MEMORY --regs REGS.json`: the loader the REPL and the UI open
    args = cli._parser_main().parse_args([str(MEM), "--regs", str(REGS)])
    s = cli._loader(args)()
    t = next(t for t in traced_translations() if t["valid"])
    assert run(s, f"walk dmar0 {t['sid']:#x} {t['iova']:#x} dry")["pa"] == \
        t["gpa"] | (t["iova"] & t["mask"])


def test_fault_record_fields_at_the_spec_bit_positions(tmp_path):
    # VT-d 11.4.9.4 FRCD_REG: FI 63:12, SID 79:64, T2 92, PRIV 93, EXE 94, PP 95, FR 103:96,
    # PV 123:104, AT 125:124, T1 126, F 127. A read (T2:T1 = 01b) with PASID 5, privileged,
    # execute, translated (AT 10b), reason 59h (SPT.2), still pending (F=1).
    v = (0xABCDE << 12 | 0x1234 << 64 | 1 << 93 | 1 << 94 | 1 << 95 | 0x59 << 96 | 5 << 104
         | 2 << 124 | 1 << 126 | 1 << 127)
    s = Session()
    out = s.execute(f"import qemu {MEM} --regs {_regs(tmp_path, **{'DMAR_FRCD_REG[0]': hex(v)})}")
    assert out.ok, out.error
    [f] = run(s, "events dmar0")["faults"]
    assert f == {"index": 0, "reason": 0x59, "name": "SPT_2", "meaning": f["meaning"],
                 "fi": 0xABCDE000, "sid": 0x1234, "pasid": 5, "write": False, "exe": True,
                 "priv": True, "at": 2, "request": "read", "F": 1}


def test_invalidation_queue_of_256_bit_descriptors():
    """The guest set IQA_REG.DW=1: each descriptor is 32 bytes and IQH/IQT_REG count in them
    (VT-d 6.5.2, 11.4.9.3); a descriptor submitted on the imported unit lands at
    IQA + 32 * IQT, its upper 128 bits zero, and the unit consumes it."""
    iqa = int(REG_VALUES["DMAR_IQA_REG"], 0)
    assert (iqa >> 11) & 1 == 1                         # DW, bit 11
    base = iqa & ~0xFFF
    tail = int(REG_VALUES["DMAR_IQT_REG"], 0) >> 5      # byte offset / 32
    s = Session()
    assert s.execute(IMPORT).ok
    out = s.execute("cmd dmar0 INV_WAIT_DSC")
    assert out.ok, out.error
    mem = s.system.vtd("dmar0").mem
    lo = mem.read_u64(base + 32 * tail)
    assert lo & 0xF == 0x5                              # Type 5: inv_wait_dsc
    assert [mem.read_u64(base + 32 * tail + 8 * i) for i in (2, 3)] == [0, 0]
    u = s.system.vtd("dmar0")
    assert u.iqh == u.iqt == tail + 1 and u.iq_error is None


def test_msi_reproduces_every_remapped_virtio_msi(session):
    """`msi dmar0 RID ADDRESS data=N` on the imported guest: each virtio MSI QEMU remapped (and
    whose IRTE no later interrupt-entry-cache invalidation touched) resolves to the IRTE index,
    vector, destination, trigger and delivery mode QEMU traced (the trace read independently:
    tests/test_vtd_fixture.py's reader)."""
    from test_vtd_fixture import _iec_after, traced_msis
    last = {(m["sid"], m["addr"], m["data"]): m for m in traced_msis()}
    dlm = {0: "fixed", 1: "lowest"}
    checked, dests = 0, set()
    for (sid, addr, data), m in last.items():
        if _iec_after(m["index_line"], m["index"]):
            continue
        r = run(session, f"msi dmar0 {sid:#x} {addr:#x} data={data:#x}")
        where = f"MSI {addr:#x}/{data:#x} from {sid:#06x}"
        assert r["ok"] and r["remapped"] and not r["posted"], (where, r["fault"])
        assert (r["index"], r["vector"], r["dest"]) == (m["index"], m["vector"], m["dest"]), where
        assert r["trigger"] == ("level" if m["trigger"] else "edge"), where
        assert r["delivery"] == dlm[m["deliver"]], where
        assert r["dest_mode"] == ("logical" if m["mode"] else "physical"), where
        checked += 1
        dests.add(r["dest"])
    assert checked >= 4 and dests == {0, 1}


def test_cache_views_and_check_on_the_imported_unit(session):
    # The imported unit's walker runs with caching off (a snapshot holds no cache contents) and
    # no device-TLB: the views are empty and check finds nothing stale.
    t = run(session, "tlb dmar0")
    assert (t["iotlb"], t["psc"], t["devtlb"]) == ([], [], [])
    c = run(session, "cfgcache dmar0")
    assert (c["context"], c["pasid"], c["iec"]) == ([], [], [])
    assert run(session, "check dmar0")["smmus"][0]["stale"] == []
