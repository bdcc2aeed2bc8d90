"""ITS decode driven by the GICv3 field tables: GITS_BASER<n>'s table base in both of its forms,
the command number of every command, the Valid bits of the level-1 entry and of QEMU's
entries, and the "no doorbell" ITE value.

Expected values are written here from the spec's bit positions (IHI 0069 12.19.13
GITS_BASER<n>, 5.3 command formats and numbers, 5.2.1 level-1 entries) and QEMU's
hw/intc/gicv3_internal.h / arm_gicv3_its.c (ITE doorbell INTID_SPURIOUS = 1023), never read from
the tables under test.
"""
import pytest

from core_cy.physmem import PhysMem
from smmudbg.model.its import Its, ItsError, ItsFeatures, baser_address, baser_value

V = 1 << 63                     # GITS_BASER<n>.Valid, ITS_L1E.Valid: bit 63
INDIRECT = 1 << 62
DT, CT, CQ, ITT, L2 = 0x100000, 0x200000, 0x300000, 0x400000, 0x700000


def make(baser0=DT):
    mem = PhysMem()
    mem.ram(0, 0x1000000)
    its = Its(mem, ItsFeatures(pes=2, on_error="ignore"))
    its.write("GITS_BASER0", its.read("GITS_BASER0") | V | baser0)
    its.write("GITS_BASER1", its.read("GITS_BASER1") | V | CT)
    its.write("GITS_CBASER", V | CQ)
    its.write("GITS_CTLR", 1)
    return its


# -- GITS_BASER<n>.Physical_Address ---------------------------------------------------------------
@pytest.mark.parametrize("page_size,code", [(0x1000, 0), (0x4000, 1)])
def test_baser_4k_and_16k_pages_hold_pa_47_12(page_size, code):
    # Page_Size [9:8]; Physical_Address [47:12] = PA[47:12]: bits [15:12] are PA[15:12] here.
    raw = V | code << 8 | 0x0000_8765_4321_F000
    assert baser_address(raw) == 0x0000_8765_4321_F000
    its = Its(PhysMem(), ItsFeatures())
    its.write("GITS_BASER0", raw)
    t = its.table("Devices")
    assert (t.page_size, t.base) == (page_size, 0x0000_8765_4321_F000)


@pytest.mark.parametrize("code", [2, 3])     # 64KB, and the reserved 0b11 read as 64KB
def test_baser_64k_pages_hold_pa_51_48_in_bits_15_12(code):
    # 64 KB: bits [47:16] = PA[47:16], bits [15:12] = PA[51:48].
    raw = V | code << 8 | 0x0000_1234_5678_0000 | 0xC << 12
    assert baser_address(raw) == 0x000C_1234_5678_0000
    its = Its(PhysMem(), ItsFeatures())
    its.write("GITS_BASER0", raw)
    assert its.table("Devices").base == 0x000C_1234_5678_0000


def test_baser_value_encodes_each_form():
    # Size [7:0] = pages - 1, Page_Size [9:8], Indirect [62], Valid [63].
    assert baser_value(0, base=0x000F_0000_4000_0000, page_size=0x10000, pages=3,
                       indirect=True) == V | INDIRECT | 2 << 8 | 2 | 0x4000_0000 | 0xF << 12
    assert baser_value(0, base=0x8000_1000, page_size=0x1000, pages=1,
                       indirect=False) == V | 0x8000_1000
    with pytest.raises(ItsError, match="can hold"):
        baser_value(0, base=0x4000_1000, page_size=0x10000, pages=1, indirect=False)
    with pytest.raises(ItsError, match="can hold"):
        baser_value(0, base=1 << 48, page_size=0x4000, pages=1, indirect=False)
    with pytest.raises(ItsError, match="page size"):
        baser_value(0, base=0, page_size=0x2000, pages=1, indirect=False)


# -- command numbers ------------------------------------------------------------------------------
# IHI 0069 5.3, the command numbers (QEMU's and Linux's GITS_CMD_* agree).
GICV3 = {0x01: "MOVI", 0x03: "INT", 0x04: "CLEAR", 0x05: "SYNC", 0x08: "MAPD", 0x09: "MAPC",
         0x0A: "MAPTI", 0x0B: "MAPI", 0x0C: "INV", 0x0D: "INVALL", 0x0E: "MOVALL",
         0x0F: "DISCARD"}
GICV4 = {0x21: "VMOVI", 0x22: "VMOVP", 0x25: "VSYNC", 0x29: "VMAPP", 0x2A: "VMAPTI",
         0x2B: "VMAPI", 0x2D: "VINVALL"}


@pytest.mark.parametrize("op,name", sorted(GICV3.items()))
def test_each_command_number_decodes_to_its_name(op, name):
    its = make()
    # DW0[7:0] is the command number; DeviceID sits in DW0[63:32] of the commands that take one.
    its.mem.write_words(CQ, [0x77 << 32 | op, 0, 0, 0])
    its.write("GITS_CWRITER", 32)
    cmd = its.log[-1]
    assert (cmd.opcode, cmd.name) == (op, name)
    assert cmd.error != "UNKNOWN_COMMAND"


@pytest.mark.parametrize("op,name", sorted(GICV4.items()))
def test_gicv4_command_numbers_are_named_and_unknown_here(op, name):
    its = make()
    its.mem.write_words(CQ, [op, 0, 0, 0])
    its.write("GITS_CWRITER", 32)
    cmd = its.log[-1]
    assert (cmd.opcode, cmd.name, cmd.error) == (op, name, "UNKNOWN_COMMAND")


def test_command_number_is_only_dw0_bits_7_0():
    its = make()
    its.mem.write_words(CQ, [0x300 | 0x05, 0, 0, 0])       # bits [9:8] set above SYNC's 0x05
    its.mem.write_words(CQ + 32, [0x10, 0, 0, 0])          # 0x10: no command has this number
    its.write("GITS_CWRITER", 64)
    assert [(c.opcode, c.name) for c in its.log] == [(0x05, "SYNC"), (0x10, "0x10")]
    assert its.log[-1].error == "UNKNOWN_COMMAND"


# -- Valid bits -----------------------------------------------------------------------------------
def test_level1_entry_valid_is_bit_63_not_bit_0():
    its = make(baser0=INDIRECT | DT)
    its.mem.write_u64(DT + 1 * 8, L2 | 1)                  # bit 0 set, bit 63 clear: not Valid
    r = its.translate(512, 0)                              # L1 index 512 // 512 = 1
    assert r.error == "DEVICE_OOR" and r.steps[0].outcome == "invalid"
    its.mem.write_u64(DT + 1 * 8, V | L2)                  # bit 63: a level-2 page at L2
    r = its.translate(512, 0)
    assert r.error == "UNMAPPED_DEVICE" and r.steps[0].outcome == "valid"
    assert r.steps[1].address == L2


def test_qemu_entries_valid_is_bit_0_and_mapd_itt_address_is_bits_51_8():
    its = make()
    # MAPD: ITT_addr DW2[51:8] = ITT[51:8]; QEMU's DTE: Valid [0], Size [5:1], ITT [49:6].
    its.mem.write_words(CQ, [0x10 << 32 | 0x08, 4, V | ITT, 0])
    its.write("GITS_CWRITER", 32)
    assert its.log[-1].ok, its.log[-1].reason
    assert its.mem.read_u64(DT + 0x10 * 8) == 1 | 4 << 1 | (ITT >> 8) << 6
    r = its.translate(0x10, 3)
    assert r.error == "UNMAPPED_INTERRUPT" and [s.outcome for s in r.steps] == ["valid",
                                                                               "invalid"]
    its.mem.write_u64(DT + 0x10 * 8, 4 << 1 | (ITT >> 8) << 6)      # bit 0 clear
    assert its.translate(0x10, 3).error == "UNMAPPED_DEVICE"


def test_mapti_writes_no_doorbell_as_qemu_does():
    its = make()
    assert its.submit("MAPD", DeviceID=1, Size=1, ITT_addr=ITT >> 8, V=1)[0].ok
    assert its.submit("MAPC", ICID=0, RDbase=0, V=1)[0].ok
    assert its.submit("MAPTI", DeviceID=1, EventID=2, pINTID=8192, ICID=0)[0].ok
    # ITE 2 at ITT + 2 * 12: dword 0 = Valid | IntType(physical) << 1 | INTID << 2 | ICID << 32,
    # then the 32-bit doorbell word: 1023.
    raw = its.mem.read(ITT + 24, 12)
    assert int.from_bytes(raw[:8], "little") == 1 | 1 << 1 | 8192 << 2
    assert int.from_bytes(raw[8:], "little") == 1023
