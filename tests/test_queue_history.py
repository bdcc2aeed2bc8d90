"""History in the queues of a real dump: the commands behind CMDQ CONS and every event record in
the event queue memory (issue 14, item 1).

Expected values come from the fixture, not from smmudbg: the README's trace summary (what QEMU's
trace saw the guest issue before the snapshot) and the dump's bytes read here with a small ELF
reader and the opcode numbers of IHI 0070 chapter 4.
"""
from __future__ import annotations

import json
import lzma
import struct
from collections import Counter
from pathlib import Path

import pytest

from smmudbg.session import Session

FIXTURE = Path(__file__).parent / "fixtures" / "qemu"
MEM = FIXTURE / "memory.elf.xz"
REGS = FIXTURE / "regs.json"
CMDQ_BASE = 0x4BB00000          # README: CMDQ at 0x4bb00000, 65536 entries, PROD=CONS=0x1c0
EVTQ_BASE = 0x4BC00000          # README: EVTQ at 0x4bc00000, 32768 entries, PROD=CONS=0

# IHI 0070 4.1.1 opcodes; CMD_CFGI_ALL is CMD_CFGI_STE_RANGE (0x04) with Range=31 (4.3.3),
# which QEMU traces as smmuv3_cmdq_cfgi_ste_range.
OPCODE = {0x01: "CMD_PREFETCH_CONFIG", 0x03: "CMD_CFGI_STE", 0x04: "CFGI_STE_RANGE/ALL",
          0x11: "CMD_TLBI_NH_ASID", 0x12: "CMD_TLBI_NH_VA", 0x30: "CMD_TLBI_NSNH_ALL",
          0x46: "CMD_SYNC"}
# README "Trace summary": commands: CFGI_STE x9, CFGI_STE_RANGE x1, PREFETCH_CONFIG x4,
# SYNC x224, TLBI_NH_ASID x3, TLBI_NH_VA x206, TLBI_NSNH_ALL x1.
TRACE = {"CMD_CFGI_STE": 9, "CFGI_STE_RANGE/ALL": 1, "CMD_PREFETCH_CONFIG": 4,
         "CMD_SYNC": 224, "CMD_TLBI_NH_ASID": 3, "CMD_TLBI_NH_VA": 206,
         "CMD_TLBI_NSNH_ALL": 1}


def elf_read(pa: int, n: int) -> bytes:
    """n bytes at guest PA from the ELF core (PT_LOADs; p_memsz beyond p_filesz reads 0)."""
    elf = lzma.decompress(MEM.read_bytes())
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        p_type, _, off, _, paddr, filesz, memsz, _ = struct.unpack_from(
            "<IIQQQQQQ", elf, phoff + i * phentsize)
        if p_type == 1 and paddr <= pa and pa + n <= paddr + memsz:
            data = elf[off:off + filesz] + bytes(memsz - filesz)
            return data[pa - paddr:pa - paddr + n]
    raise AssertionError(f"{pa:#x} not in the dump")


def short(name):
    return "CFGI_STE_RANGE/ALL" if name in ("CMD_CFGI_ALL", "CMD_CFGI_STE_RANGE") else name


def session(regs=REGS):
    s = Session()
    out = s.execute(f"import qemu {MEM} --regs {regs}")
    assert out.ok, out.error
    return s


@pytest.fixture(scope="module")
def imported():
    return session()


def regs_with(tmp_path, **changes):
    regs = json.loads(REGS.read_text())
    regs.update(changes)
    p = tmp_path / "regs.json"
    p.write_text(json.dumps(regs))
    return p


# ---------------------------------------------------------------------------------------------
# Command queue
# ---------------------------------------------------------------------------------------------
def test_default_cmdq_shows_no_history_beyond_what_was_asked(imported):
    r = imported.run("cmdq smmu0 history=10").data
    assert [e["index"] for e in r["entries"]] == list(range(0x1C0 - 10, 0x1C0))
    assert r["history_stop"] is None
    assert all(e["state"] == "consumed" for e in r["entries"])


def test_cmdq_history_is_every_command_the_trace_saw(imported):
    r = imported.run("cmdq smmu0 history=1000").data
    ents = r["entries"]
    assert len(ents) == 0x1C0                       # CONS = 0x1c0, first lap
    assert Counter(short(e["command"]) for e in ents) == TRACE
    ring = elf_read(CMDQ_BASE, 0x1C0 * 16)
    assert [e["index"] for e in ents] == list(range(0x1C0))
    for e in ents:
        op = ring[e["index"] * 16]
        assert short(e["command"]) == OPCODE[op], e
        assert e["pa"] == CMDQ_BASE + 16 * e["index"]
    # Linux's reset sequence opens the queue: CFGI_ALL, SYNC, TLBI_NSNH_ALL, SYNC
    assert [e["command"] for e in ents[:4]] == ["CMD_CFGI_ALL", "CMD_SYNC",
                                                 "CMD_TLBI_NSNH_ALL", "CMD_SYNC"]
    stop = r["history_stop"]
    assert stop["index"] == 0xFFFF and stop["back"] == 0x1C1
    assert "never written" in stop["why"]


def test_cmdq_history_stops_at_an_illegal_command(tmp_path):
    s = session()
    m = s.system.smmu("smmu0")
    m.mem.write(CMDQ_BASE + 0x100 * 16, bytes([0x0F]) + bytes(15))  # 0x0F is Reserved
    r = s.run("cmdq smmu0 history=1000").data
    assert [e["index"] for e in r["entries"]] == list(range(0x101, 0x1C0))
    assert r["history_stop"]["index"] == 0x100
    assert "CERROR_ILL" in r["history_stop"]["why"]


def test_cmdq_history_on_a_wrapped_small_ring_stops_at_the_pending_slots(tmp_path):
    # The same ring memory read as a 2^8-entry queue: CONS 0x1c0 is index 0xc0 with the wrap
    # bit set, so every one of the 256 slots holds a consumed command (the lap before is
    # certain); one step further would be the slot CONS itself.
    regs = regs_with(tmp_path, SMMU_CMDQ_BASE="0x400000004bb00008")
    s = session(regs)
    r = s.run("cmdq smmu0 history=1000").data
    ents = r["entries"]
    assert len(ents) == 256
    ring = elf_read(CMDQ_BASE, 256 * 16)
    assert [e["index"] for e in ents] == list(range(0xC0, 0x100)) + list(range(0xC0))
    assert all(short(e["command"]) == OPCODE[ring[e["index"] * 16]] for e in ents)
    assert {e["lap"] for e in ents[:0x40]} == {-1} and {e["lap"] for e in ents[0x40:]} == {0}
    assert all(e["state"] == "consumed" for e in ents)
    assert "pending" in r["history_stop"]["why"]


# ---------------------------------------------------------------------------------------------
# Event queue
# ---------------------------------------------------------------------------------------------
def test_events_all_on_the_fixture_finds_no_record(imported):
    # README: 0 event records in the trace; the queue memory is all zero.
    assert not any(elf_read(EVTQ_BASE, 32768 * 32))
    r = imported.run("events smmu0 all").data
    assert r["entries"] == [] and r["scope"] == "all"
    assert r["not_records"] == {"empty": 32768, "unbacked": 0, "unknown": 0}


def f_translation(sid, addr, rnw=1):
    """An F_TRANSLATION record by hand (IHI 0070 7.3.12): Type [7:0] = 0x10, StreamID
    [63:32], RnW [99], InputAddr [191:128], CLASS [105:104] = IN (0b10)."""
    dw0 = 0x10 | sid << 32
    dw1 = rnw << 35 | 2 << 40
    return struct.pack("<QQQQ", dw0, dw1, addr, 0)


def test_events_all_shows_consumed_records():
    s = session()
    for line in ("walk smmu0 0x8 0x1234", "walk smmu0 0x10 0x5000 access=write",
                 "walk smmu0 0x8 0x7000"):
        assert s.run(line).data["fault"]["type"] == "F_TRANSLATION"
    assert s.run("consume-events smmu0").data["consumed"] == 3
    assert s.run("events smmu0").data["entries"] == []      # nothing left to read
    r = s.run("events smmu0 all summary").data
    got = [(e["index"], e["event"], e["fields"]["StreamID"], e["fields"]["InputAddr"],
            e["state"]) for e in r["entries"]]
    assert got == [(0, "F_TRANSLATION", 0x8, 0x1234, "consumed"),
                   (1, "F_TRANSLATION", 0x10, 0x5000, "consumed"),
                   (2, "F_TRANSLATION", 0x8, 0x7000, "consumed")]
    raw = bytes.fromhex(r["entries"][1]["raw"])
    assert raw == bytes(s.system.smmu("smmu0").mem.read(EVTQ_BASE + 32, 32))
    assert r["summary"] == [
        {"sid": 0x8, "device": None, "records": 2, "events": {"F_TRANSLATION": 2}},
        {"sid": 0x10, "device": None, "records": 1, "events": {"F_TRANSLATION": 1}}]
    assert [e["index"] for e in s.run("events smmu0 all sid=0x8").data["entries"]] == [0, 2]
    assert [e["index"] for e in s.run("events smmu0 range=1..2").data["entries"]] == [1, 2]
    assert s.run("events smmu0 all type=C_BAD_STE").data["entries"] == []
    assert len(s.run("events smmu0 all type=f_translation").data["entries"]) == 3


def test_events_all_orders_by_age_and_marks_the_earlier_lap():
    s = session()
    m = s.system.smmu("smmu0")
    # PROD = CONS = 2 (wrap 0): records at 0 and 1 consumed in this lap, one at the last
    # slot only from an earlier lap if the queue wrapped.
    m.mem.write(EVTQ_BASE + 0 * 32, f_translation(0x8, 0xA000))
    m.mem.write(EVTQ_BASE + 1 * 32, f_translation(0x10, 0xB000, rnw=0))
    m.mem.write(EVTQ_BASE + 0x7FFF * 32, f_translation(0x100, 0xC000))
    m.regs["SMMU_EVENTQ_PROD"] = m.regs["SMMU_EVENTQ_CONS"] = 2
    r = s.run("events smmu0 all").data
    assert [(e["index"], e["lap"], e["fields"]["InputAddr"]) for e in r["entries"]] == \
        [(0x7FFF, -1, 0xC000), (0, 0, 0xA000), (1, 0, 0xB000)]
    assert "earlier lap" in r["entries"][0]["state"]
    assert r["entries"][1]["state"] == "consumed"
    # CONS one behind PROD: record 1 is still pending
    m.regs["SMMU_EVENTQ_CONS"] = 1
    r = s.run("events smmu0 all").data
    assert [e["state"] for e in r["entries"][1:]] == ["consumed", "pending"]
    assert [e["index"] for e in s.run("events smmu0").data["entries"]] == [1]
    # PROD.WRAP = 1: the queue has wrapped, the last slot's record is certainly consumed
    m.regs["SMMU_EVENTQ_PROD"] = m.regs["SMMU_EVENTQ_CONS"] = 0x8002
    r = s.run("events smmu0 all").data
    assert r["entries"][0]["state"] == "consumed" and r["entries"][0]["lap"] == -1


def test_events_range_is_checked(imported):
    out = imported.execute("events smmu0 range=5..2")
    assert not out.ok and "range" in out.error
    out = imported.execute("events smmu0 type=F_NOPE")
    assert not out.ok and "F_NOPE" in out.error
