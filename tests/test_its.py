"""The GICv3 ITS model: registers, command queue, tables and GITS_TRANSLATER.

Expected values are derived here by hand from IHI 0069 and QEMU's entry layout (a DTE at
table base + DeviceID * 8, an ITE at ITT + EventID * 12, ...), not read back from the model.
"""
import pytest

from core_cy.physmem import PhysMem
from smmudbg.model.its import Its, ItsError, ItsFeatures, encode_command

DT, CT, CQ, ITT = 0x100000, 0x200000, 0x300000, 0x400000
V = 1 << 63


def make(**features):
    """An enabled ITS as a driver sets it up: flat 4 KB device and collection tables, a 4 KB
    command queue."""
    mem = PhysMem()
    mem.ram(0, 0x1000000)
    its = Its(mem, ItsFeatures(**{"pes": 4, **features}), base=0x08080000)
    its.write("GITS_BASER0", its.read("GITS_BASER0") | V | DT)
    its.write("GITS_BASER1", its.read("GITS_BASER1") | V | CT)
    its.write("GITS_CBASER", V | CQ)
    its.write("GITS_CTLR", 1)
    return its


def mapped(**features):
    """DeviceID 0x10 with 32 events at ITT; collection 3 on PE 2; event 5 -> LPI 8200."""
    its = make(**features)
    for cmd in (("MAPD", dict(DeviceID=0x10, Size=4, ITT_addr=ITT >> 8, V=1)),
                ("MAPC", dict(ICID=3, RDbase=2, V=1)),
                ("MAPTI", dict(DeviceID=0x10, EventID=5, pINTID=8200, ICID=3))):
        (done,) = its.submit(cmd[0], **cmd[1])
        assert done.ok, done.reason
    return its


# -- registers -----------------------------------------------------------------------------------
def test_typer_from_features():
    its = Its(PhysMem(), ItsFeatures())
    # Physical | ITT_entry_size 11 << 4 | ID_bits 15 << 8 | Devbits 15 << 13
    assert its.read("GITS_TYPER") == 1 | 11 << 4 | 15 << 8 | 15 << 13
    its = Its(PhysMem(), ItsFeatures(devbits=8, idbits=10, cidbits=8, hcc=4, seis=True))
    assert its.read("GITS_TYPER") == (1 | 11 << 4 | 9 << 8 | 7 << 13 | 1 << 18 | 4 << 24
                                      | 7 << 32 | 1 << 36)


def test_reset_values_and_read_only_baser_fields():
    its = Its(PhysMem(), ItsFeatures())
    assert its.read("GITS_CTLR") == 1 << 31            # disabled, Quiescent
    assert its.read("GITS_BASER0") == 1 << 56 | 7 << 48  # Devices, 8-byte entries
    assert its.read("GITS_BASER1") == 4 << 56 | 7 << 48  # Collections, 8-byte entries
    its.write("GITS_BASER0", (1 << 64) - 1)
    v = its.read("GITS_BASER0")
    assert (v >> 56) & 7 == 1 and (v >> 48) & 0x1F == 7  # Type and Entry_Size kept
    assert v & V and v & (1 << 62)                        # Valid and Indirect written
    its.write("GITS_BASER2", (1 << 64) - 1)                # unimplemented: RAZ/WI
    assert its.read("GITS_BASER2") == 0
    its.write("GITS_TYPER", 0)
    assert its.read("GITS_TYPER") != 0
    assert its.read("GITS_TRANSLATER") == 0                # write-only
    with pytest.raises(ItsError, match="unknown ITS register"):
        its.read("GITS_FOO")


def test_cbaser_write_resets_creadr_and_is_ignored_while_enabled():
    its = make()
    its.submit("SYNC", RDbase=0)
    assert its.read("GITS_CREADR") == 32
    its.write("GITS_CTLR", 0)
    its.write("GITS_CBASER", V | 0x500000)
    assert its.read("GITS_CREADR") == 0
    its.write("GITS_CTLR", 1)
    its.write("GITS_CBASER", V | 0x600000)
    assert its.read("GITS_CBASER") == V | 0x500000


def test_baser_with_64k_pages_holds_pa_51_48_in_bits_15_12():
    its = Its(PhysMem(), ItsFeatures())
    # Page_Size = 64KB (2), PA = 0x000A_0000_1234_0000: bits [15:12] = 0xA, [47:16] as is.
    its.write("GITS_BASER0", V | 2 << 8 | 0x1234_0000 | 0xA << 12)
    t = its.table("Devices")
    assert t.page_size == 0x10000 and t.base == 0x000A_0000_1234_0000


def test_mmio_offsets_and_32bit_halves():
    its = Its(PhysMem(), ItsFeatures())
    its.write_offset(0x80, 0x00300000, 4)          # GITS_CBASER low half
    its.write_offset(0x84, 0x80000000, 4)          # high half: Valid
    assert its.read("GITS_CBASER") == V | CQ
    assert its.read_offset(0x84, 4) == 0x80000000
    assert its.read_offset(0x8, 8) == its.read("GITS_TYPER")
    assert its.read_offset(0x0, 4) == 1 << 31


# -- translation ---------------------------------------------------------------------------------
def test_map_and_translate():
    its = mapped()
    r = its.translate(0x10, 5)
    assert r.ok and (r.intid, r.icid, r.target) == (8200, 3, 2)
    assert its.gic.pending[2] == {8200}
    assert [(s.what, s.index, s.address) for s in r.steps] == [
        ("DTE", 0x10, DT + 0x10 * 8), ("ITE", 5, ITT + 5 * 12), ("CTE", 3, CT + 3 * 8),
        ("redistributor", 2, None)]
    assert r.steps[0].raw == 1 | 4 << 1 | (ITT >> 8) << 6
    assert r.steps[2].raw == 1 | 2 << 1
    assert r.steps[1].fields["INTID"] == 8200
    # The ITE in memory, in QEMU's 12-byte layout (the doorbell word is 1023: none).
    raw = its.mem.read(ITT + 5 * 12, 12)
    assert int.from_bytes(raw[:8], "little") == 1 | 1 << 1 | 8200 << 2 | 3 << 32
    assert int.from_bytes(raw[8:], "little") == 1023


def test_translater_write_and_doorbell_callback():
    its = mapped()
    r = its.write("GITS_TRANSLATER", 5, device_id=0x10)
    assert r.intid == 8200
    assert its.doorbell(0x08080000 + 0x10040, 5, 0x10).target == 2
    assert its.doorbell(0x08080000 + 0x10044, 5, 0x10) is None
    assert its.write_offset(0x10040, 5, 4, device_id=0x10).intid == 8200
    with pytest.raises(ItsError, match="DeviceID"):
        its.write("GITS_TRANSLATER", 5)


@pytest.mark.parametrize("dev,ev,error,code", [
    (0x11, 5, "UNMAPPED_DEVICE", 0x010304),
    (0x10, 32, "ID_OOR", 0x010305),            # Size=4: 32 events, 0..31
    (0x10, 6, "UNMAPPED_INTERRUPT", 0x010307),
    (0x200, 0, "DEVICE_OOR", 0x010301),         # a 4 KB flat table holds 512 DTEs
    (1 << 16, 0, "DEVICE_OOR", 0x010301),       # beyond GITS_TYPER.Devbits
])
def test_translation_failures(dev, ev, error, code):
    its = mapped()
    r = its.translate(dev, ev)
    assert (r.error, r.error_code, r.intid) == (error, code, None)
    assert r.reason and not any(its.gic.pending)


def test_translation_with_its_disabled():
    its = mapped()
    its.write("GITS_CTLR", 0)
    r = its.translate(0x10, 5)
    assert r.error == "ITS_DISABLED" and r.steps == [] and not any(its.gic.pending)


def test_translation_to_unmapped_collection():
    its = mapped()
    assert its.submit("MAPTI", DeviceID=0x10, EventID=7, pINTID=8300, ICID=9)[0].ok
    r = its.translate(0x10, 7)
    assert (r.error, r.error_code) == ("UNMAPPED_COLLECTION", 0x010309)
    assert r.steps[-1].what == "CTE" and r.steps[-1].address == CT + 9 * 8
    assert r.steps[-1].outcome == "invalid"


def test_translation_to_collection_out_of_range():
    its = mapped(cidbits=4)
    # An ITE naming ICID 0x20 (more than 4 bits) written straight into memory.
    its.mem.write(ITT + 8 * 12, (1 | 1 << 1 | 8400 << 2 | 0x20 << 32).to_bytes(8, "little"))
    r = its.translate(0x10, 8)
    assert (r.error, r.error_code) == ("COLLECTION_OOR", 0x010303)


def test_collections_held_in_the_its():
    its = mapped(hcc=4)
    assert its.submit("MAPC", ICID=1, RDbase=3, V=1)[0].ok
    assert its.mem.read_u64(CT + 8) == 0                 # no CTE written to memory
    assert its.submit("MAPTI", DeviceID=0x10, EventID=1, pINTID=9000, ICID=1)[0].ok
    r = its.translate(0x10, 1)
    assert r.target == 3 and r.steps[2].what == "collection (held in the ITS)"
    assert r.steps[2].address is None


def test_two_level_device_table():
    mem = PhysMem()
    mem.ram(0, 0x1000000)
    its = Its(mem, ItsFeatures(pes=2))
    L2 = 0x700000
    # Indirect, 4 KB pages, one page of level-1 entries: 512 L1 entries x 512 DTEs.
    its.write("GITS_BASER0", its.read("GITS_BASER0") | V | 1 << 62 | DT)
    its.write("GITS_BASER1", its.read("GITS_BASER1") | V | CT)
    its.write("GITS_CBASER", V | CQ)
    its.write("GITS_CTLR", 1)
    dev = 0x1234                                   # L1 index 0x1234 // 512 = 9
    mem.write_u64(DT + 9 * 8, V | L2)
    assert its.submit("MAPD", DeviceID=dev, Size=13, ITT_addr=ITT >> 8, V=1)[0].ok
    assert mem.read_u64(L2 + (dev % 512) * 8) == 1 | 13 << 1 | (ITT >> 8) << 6
    assert its.submit("MAPC", ICID=0, RDbase=1, V=1)[0].ok
    assert its.submit("MAPI", DeviceID=dev, EventID=8195, ICID=0)[0].ok
    r = its.translate(dev, 8195)
    assert r.ok and r.intid == 8195 and r.target == 1   # MAPI: pINTID = EventID
    assert [(s.what, s.address) for s in r.steps[:2]] == [
        ("L1 device table", DT + 9 * 8), ("DTE", L2 + 0x34 * 8)]
    # No level-2 page for L1 entry 10: the DeviceID is outside the table as allocated.
    (c,) = its.submit("MAPD", DeviceID=10 * 512, Size=1, ITT_addr=ITT >> 8, V=1)
    assert (c.error, c.error_code) == ("MAPD_DEVICE_OOR", 0x010801)
    assert c.stalled and its.stalled
    r = its.translate(10 * 512 + 1, 0)
    assert r.error == "DEVICE_OOR" and r.steps[0].outcome == "invalid"


def test_mapi_needs_an_lpi_intid():
    its = mapped(on_error="ignore")
    (c,) = its.submit("MAPI", DeviceID=0x10, EventID=9, ICID=3)   # pINTID 9 is not an LPI
    assert (c.error, c.error_code) == ("MAPI_PHYSICALID_OOR", 0x010B06)


# -- pending-state commands ------------------------------------------------------------------------
def test_int_and_clear():
    its = mapped()
    assert its.submit("INT", DeviceID=0x10, EventID=5)[0].ok
    assert its.gic.pending[2] == {8200}
    assert its.submit("CLEAR", DeviceID=0x10, EventID=5)[0].ok
    assert its.gic.pending[2] == set()


def test_movi_moves_pending_and_retargets():
    its = mapped()
    its.submit("MAPC", ICID=4, RDbase=1, V=1)
    its.translate(0x10, 5)
    (c,) = its.submit("MOVI", DeviceID=0x10, EventID=5, ICID=4)
    assert c.ok
    assert its.gic.pending[2] == set() and its.gic.pending[1] == {8200}
    assert int.from_bytes(its.mem.read(ITT + 5 * 12, 8), "little") >> 32 & 0xFFFF == 4
    its.gic.pending[1].clear()
    assert its.translate(0x10, 5).target == 1


def test_movi_to_unmapped_collection_is_an_error():
    its = mapped(on_error="ignore")
    (c,) = its.submit("MOVI", DeviceID=0x10, EventID=5, ICID=7)
    assert (c.error, c.error_code) == ("MOVI_UNMAPPED_COLLECTION", 0x010109)
    assert its.translate(0x10, 5).target == 2             # unchanged


def test_movall():
    its = mapped()
    its.gic.pending[0].update({8300, 8301})
    its.gic.pending[2].add(8400)
    assert its.submit("MOVALL", RDbase1=0, RDbase2=2)[0].ok
    assert its.gic.pending[0] == set() and its.gic.pending[2] == {8300, 8301, 8400}
    (c,) = mapped(on_error="ignore").submit("MOVALL", RDbase1=0, RDbase2=4)
    assert (c.error, c.error_code) == ("MOVALL_PROCNUM_OOR", 0x010E01)


def test_discard_clears_pending_and_unmaps():
    its = mapped()
    its.translate(0x10, 5)
    assert its.submit("DISCARD", DeviceID=0x10, EventID=5)[0].ok
    assert its.gic.pending[2] == set()
    assert its.translate(0x10, 5).error == "UNMAPPED_INTERRUPT"
    (c,) = mapped(on_error="ignore").submit("DISCARD", DeviceID=0x10, EventID=6)
    assert (c.error, c.error_code) == ("DISCARD_UNMAPPED_INTERRUPT", 0x010F07)


def test_inv_invall_sync():
    its = mapped(on_error="ignore")
    assert its.submit("INV", DeviceID=0x10, EventID=5)[0].ok
    assert its.submit("INVALL", ICID=3)[0].ok
    assert its.submit("SYNC", RDbase=2)[0].ok
    (c,) = its.submit("INVALL", ICID=5)
    assert (c.error, c.error_code) == ("INVALL_UNMAPPED_COLLECTION", 0x010D09)
    (c,) = its.submit("INV", DeviceID=0x10, EventID=6)
    assert (c.error, c.error_code) == ("INV_UNMAPPED_INTERRUPT", 0x010C07)


@pytest.mark.parametrize("name,values,error,code", [
    ("MAPD", dict(DeviceID=1 << 16, Size=1, V=1), "MAPD_DEVICE_OOR", 0x010801),
    ("MAPD", dict(DeviceID=1, Size=16, V=1), "MAPD_ITTSIZE_OOR", 0x010802),
    ("MAPC", dict(ICID=1, RDbase=4, V=1), "MAPC_PROCNUM_OOR", 0x010902),
    ("MAPTI", dict(DeviceID=0x11, EventID=0, pINTID=8192, ICID=3), "MAPTI_UNMAPPED_DEVICE",
     0x010A04),
    ("MAPTI", dict(DeviceID=0x10, EventID=40, pINTID=8192, ICID=3), "MAPTI_ID_OOR", 0x010A05),
    ("MAPTI", dict(DeviceID=0x10, EventID=1, pINTID=100, ICID=3), "MAPTI_PHYSICALID_OOR",
     0x010A06),
    ("INT", dict(DeviceID=0x10, EventID=6), "INT_UNMAPPED_INTERRUPT", 0x010307),
    ("CLEAR", dict(DeviceID=0x10, EventID=6), "CLEAR_UNMAPPED_INTERRUPT", 0x010507),
])
def test_command_errors(name, values, error, code):
    its = mapped(on_error="ignore")
    (c,) = its.submit(name, **values)
    assert (c.error, c.error_code) == (error, code)
    assert not its.stalled and its.read("GITS_CREADR") == its.read("GITS_CWRITER")


# -- the command queue ---------------------------------------------------------------------------
def test_cwriter_processes_exactly_up_to_it():
    its = make()
    words = [encode_command("MAPC", ICID=i, RDbase=0, V=1) for i in range(3)]
    for i, w in enumerate(words):
        its.mem.write_words(CQ + 32 * i, w)
    its.write("GITS_CWRITER", 64)
    assert [c.fields["ICID"] for c in its.log] == [0, 1]
    assert its.read("GITS_CREADR") == 64
    its.write("GITS_CWRITER", 96)
    assert [c.fields["ICID"] for c in its.log] == [0, 1, 2]


def test_commands_wait_for_enable():
    its = Its(PhysMem(), ItsFeatures(pes=2))
    its.write("GITS_BASER1", its.read("GITS_BASER1") | V | CT)
    its.write("GITS_CBASER", V | CQ)
    its.submit("MAPC", ICID=0, RDbase=1, V=1)
    assert its.log == [] and its.read("GITS_CREADR") == 0
    its.write("GITS_CTLR", 1)
    assert [c.name for c in its.log] == ["MAPC"] and its.read("GITS_CREADR") == 32
    assert its.read("GITS_CTLR") == 1                     # enabled: not Quiescent


def test_queue_wraps():
    its = make()                     # CBASER.Size = 0: one 4 KB page, 128 commands
    for _ in range(127):
        its.submit("SYNC", RDbase=0)
    assert its.read("GITS_CREADR") == 127 * 32 == its.read("GITS_CWRITER")
    its.submit("MAPC", ICID=1, RDbase=1, V=1)            # the last slot, then wrap to 0
    assert its.read("GITS_CWRITER") == 0 and its.read("GITS_CREADR") == 0
    its.submit("MAPC", ICID=2, RDbase=2, V=1)            # slot 0 again
    assert its.read("GITS_CREADR") == 32
    assert [c.offset for c in its.log[-2:]] == [4064, 0]
    assert its.mem.read_u64(CT + 16) == 1 | 2 << 1


def test_illegal_command_stalls_and_retry_restarts():
    its = make(seis=True)
    its.mem.write_words(CQ, [0x42, 0, 0, 0])              # command number 0x42: none
    its.mem.write_words(CQ + 32, encode_command("MAPC", ICID=0, RDbase=1, V=1))
    its.write("GITS_CWRITER", 64)
    creadr = its.read("GITS_CREADR")
    assert creadr & 1 and creadr & ~1 == 0                # Stalled, at the bad command
    assert its.log[-1].error == "UNKNOWN_COMMAND" and its.log[-1].stalled
    assert its.sei is its.log[-1]
    assert its.mem.read_u64(CT) == 0                      # MAPC not processed
    its.write("GITS_CWRITER", 64)                         # no Retry: stays stalled
    assert its.read("GITS_CREADR") & 1
    its.mem.write_words(CQ, encode_command("SYNC", RDbase=0))   # software fixes the command
    its.write("GITS_CWRITER", 64 | 1)                     # Retry
    assert its.read("GITS_CREADR") == 64
    assert its.mem.read_u64(CT) == 1 | 1 << 1


def test_gicv4_command_is_unknown_without_virtual_support():
    its = make(on_error="ignore")
    its.mem.write_words(CQ, [0x29, 0, 0, 0])              # VMAPP
    its.write("GITS_CWRITER", 32)
    assert its.log[-1].error == "UNKNOWN_COMMAND" and "VMAPP" in its.log[-1].reason
    assert not its.stalled


def test_command_error_stalls_by_default():
    its = mapped()
    (c,) = its.submit("MAPTI", DeviceID=0x11, EventID=0, pINTID=8192, ICID=3)
    assert c.stalled and its.read("GITS_CREADR") == 3 * 32 | 1
    its.submit("SYNC", RDbase=0)
    assert its.read("GITS_CREADR") == 3 * 32 | 1          # nothing more runs


def test_command_read_abort_stalls():
    mem = PhysMem(strict=True)
    mem.ram(CT, 0x1000)
    its = Its(mem, ItsFeatures(on_error="ignore"))
    its.write("GITS_BASER1", its.read("GITS_BASER1") | V | CT)
    its.write("GITS_CBASER", V | 0x900000)                # no memory there
    its.write("GITS_CTLR", 1)
    its.write("GITS_CWRITER", 32)
    assert its.stalled and its.log[-1].error == "ABORT"


def test_mappings_lists_every_mapped_event():
    its = mapped()
    its.submit("MAPTI", DeviceID=0x10, EventID=0, pINTID=8192, ICID=9)
    assert its.mappings() == [(0x10, 0, 8192, 9, None), (0x10, 5, 8200, 3, 2)]


def test_features_are_checked():
    with pytest.raises(ItsError, match="layout"):
        Its(PhysMem(), ItsFeatures(layout="gic600"))
    with pytest.raises(ItsError, match="devbits"):
        Its(PhysMem(), ItsFeatures(devbits=0))
    with pytest.raises(ItsError, match="unknown ITS command"):
        encode_command("VMAPP")


def test_features_from_typer_round_trip():
    for f in (ItsFeatures(pes=2), ItsFeatures(devbits=20, idbits=12, cidbits=6, hcc=8,
                                              seis=True, pes=3)):
        typer = Its(PhysMem(), f).read("GITS_TYPER")
        assert ItsFeatures.from_typer(typer, pes=f.pes) == f
    with pytest.raises(ItsError, match="PTA"):
        ItsFeatures.from_typer(1 | 1 << 19, pes=1)


def test_imported_registers_and_tables():
    # A dump: tables already in memory, register values as REGS.json gives them.
    mem = PhysMem()
    mem.ram(0, 0x1000000)
    mem.write_u64(DT + 0x20 * 8, 1 | 2 << 1 | (ITT >> 8) << 6)         # DTE: 8 events
    mem.write(ITT + 3 * 12, (1 | 1 << 1 | 8195 << 2 | 1 << 32).to_bytes(8, "little"))
    mem.write_u64(CT + 8, 1 | 1 << 1)                                   # ICID 1 -> PE 1
    its = Its(mem, ItsFeatures(pes=2, on_error="ignore"))
    its.load_registers({"GITS_CTLR": "0x1", "GITS_BASER0": hex(V | 1 << 56 | 7 << 48 | DT),
                        "GITS_BASER1": hex(V | 4 << 56 | 7 << 48 | CT)})
    r = its.translate(0x20, 3)
    assert (r.intid, r.icid, r.target) == (8195, 1, 1)
    assert its.mappings() == [(0x20, 3, 8195, 1, 1)]
    with pytest.raises(ItsError, match="not a number"):
        its.load_registers({"GITS_CTLR": "one"})
