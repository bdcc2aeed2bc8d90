"""GICv3 ITS field tables against the architecture (Arm IHI 0069) and QEMU's entry layout.

Every expected position below is written from the spec's register and command descriptions
(IHI 0069 12.19, 5.3) or, for the IMPLEMENTATION DEFINED entries, from QEMU's
hw/intc/gicv3_internal.h (FIELD(DTE, ...), FIELD(ITE_L, ...), FIELD(CTE, ...)), never read from
the tables under test.
"""
import pytest

from smmudbg.arch import architectures, fmt, formats
from smmudbg.arch.gicv3 import consts as C
from smmudbg.arch.gicv3.layouts import LAYOUTS
from smmudbg.arch.gicv3.registers import OFFSETS

# (format, field, dword, hi, lo)
SPEC = [
    ("GITS_CTLR", "Enabled", 0, 0, 0), ("GITS_CTLR", "Quiescent", 0, 31, 31),
    ("GITS_TYPER", "Physical", 0, 0, 0), ("GITS_TYPER", "Virtual", 0, 1, 1),
    ("GITS_TYPER", "ITT_entry_size", 0, 7, 4), ("GITS_TYPER", "ID_bits", 0, 12, 8),
    ("GITS_TYPER", "Devbits", 0, 17, 13), ("GITS_TYPER", "SEIS", 0, 18, 18),
    ("GITS_TYPER", "PTA", 0, 19, 19), ("GITS_TYPER", "HCC", 0, 31, 24),
    ("GITS_TYPER", "CIDbits", 0, 35, 32), ("GITS_TYPER", "CIL", 0, 36, 36),
    ("GITS_TYPER", "VMOVP", 0, 37, 37),
    ("GITS_CBASER", "Size", 0, 7, 0), ("GITS_CBASER", "Shareability", 0, 11, 10),
    ("GITS_CBASER", "Physical_Address", 0, 51, 12), ("GITS_CBASER", "OuterCache", 0, 55, 53),
    ("GITS_CBASER", "InnerCache", 0, 61, 59), ("GITS_CBASER", "Valid", 0, 63, 63),
    ("GITS_CWRITER", "Retry", 0, 0, 0), ("GITS_CWRITER", "Offset", 0, 19, 5),
    ("GITS_CREADR", "Stalled", 0, 0, 0), ("GITS_CREADR", "Offset", 0, 19, 5),
    ("GITS_BASER", "Size", 0, 7, 0), ("GITS_BASER", "Page_Size", 0, 9, 8),
    ("GITS_BASER", "Shareability", 0, 11, 10), ("GITS_BASER", "Physical_Address", 0, 47, 12),
    ("GITS_BASER", "Entry_Size", 0, 52, 48), ("GITS_BASER", "OuterCache", 0, 55, 53),
    ("GITS_BASER", "Type", 0, 58, 56), ("GITS_BASER", "InnerCache", 0, 61, 59),
    ("GITS_BASER", "Indirect", 0, 62, 62), ("GITS_BASER", "Valid", 0, 63, 63),
    ("GITS_TRANSLATER", "EventID", 0, 31, 0),
    ("ITS_L1E", "Physical_Address", 0, 51, 12), ("ITS_L1E", "Valid", 0, 63, 63),
    # commands
    ("MAPD", "CommandType", 0, 7, 0), ("MAPD", "DeviceID", 0, 63, 32), ("MAPD", "Size", 1, 4, 0),
    ("MAPD", "ITT_addr", 2, 51, 8), ("MAPD", "V", 2, 63, 63),
    ("MAPC", "ICID", 2, 15, 0), ("MAPC", "RDbase", 2, 51, 16), ("MAPC", "V", 2, 63, 63),
    ("MAPTI", "DeviceID", 0, 63, 32), ("MAPTI", "EventID", 1, 31, 0),
    ("MAPTI", "pINTID", 1, 63, 32), ("MAPTI", "ICID", 2, 15, 0),
    ("MAPI", "DeviceID", 0, 63, 32), ("MAPI", "EventID", 1, 31, 0), ("MAPI", "ICID", 2, 15, 0),
    ("MOVI", "DeviceID", 0, 63, 32), ("MOVI", "EventID", 1, 31, 0), ("MOVI", "ICID", 2, 15, 0),
    ("MOVALL", "RDbase1", 2, 51, 16), ("MOVALL", "RDbase2", 3, 51, 16),
    ("DISCARD", "DeviceID", 0, 63, 32), ("DISCARD", "EventID", 1, 31, 0),
    ("INV", "DeviceID", 0, 63, 32), ("INV", "EventID", 1, 31, 0),
    ("INVALL", "ICID", 2, 15, 0),
    ("INT", "DeviceID", 0, 63, 32), ("INT", "EventID", 1, 31, 0),
    ("CLEAR", "DeviceID", 0, 63, 32), ("CLEAR", "EventID", 1, 31, 0),
    ("SYNC", "RDbase", 2, 51, 16),
    # QEMU's layout (gicv3_internal.h): DTE VALID 0/1, SIZE 1/5, ITTADDR 6/44;
    # ITE_L VALID 0/1, INTTYPE 1/1, INTID 2/24, ICID 32/16, VPEID 48/16; ITE_H DOORBELL 0/24;
    # CTE VALID 0/1, RDBASE 1/16.
    ("DTE_QEMU", "Valid", 0, 0, 0), ("DTE_QEMU", "Size", 0, 5, 1),
    ("DTE_QEMU", "ITT_addr", 0, 49, 6),
    ("ITE_QEMU", "Valid", 0, 0, 0), ("ITE_QEMU", "IntType", 0, 1, 1),
    ("ITE_QEMU", "INTID", 0, 25, 2), ("ITE_QEMU", "ICID", 0, 47, 32),
    ("ITE_QEMU", "vPEID", 0, 63, 48), ("ITE_QEMU", "Doorbell", 1, 23, 0),
    ("CTE_QEMU", "Valid", 0, 0, 0), ("CTE_QEMU", "RDbase", 0, 16, 1),
]


@pytest.mark.parametrize("name,field,dword,hi,lo", SPEC)
def test_field_position(name, field, dword, hi, lo):
    f = fmt(name, "gicv3").field(field)
    assert (f.dword, f.hi, f.lo) == (dword, hi, lo)


def test_every_command_has_its_number():
    # IHI 0069 5.3 command numbers (QEMU GITS_CMD_*, Linux GITS_CMD_*).
    expect = {"MOVI": 0x01, "INT": 0x03, "CLEAR": 0x04, "SYNC": 0x05, "MAPD": 0x08,
              "MAPC": 0x09, "MAPTI": 0x0A, "MAPI": 0x0B, "INV": 0x0C, "INVALL": 0x0D,
              "MOVALL": 0x0E, "DISCARD": 0x0F, "VMOVI": 0x21, "VMOVP": 0x22, "VSYNC": 0x25,
              "VMAPP": 0x29, "VMAPTI": 0x2A, "VMAPI": 0x2B, "VINVALL": 0x2D}
    for name, op in expect.items():
        assert getattr(C, f"GITS_CMD_{name}") == op
        assert C.COMMAND_NAMES[op] == name
    for name in ("MOVI", "INT", "CLEAR", "SYNC", "MAPD", "MAPC", "MAPTI", "MAPI", "INV",
                 "INVALL", "MOVALL", "DISCARD"):
        f = fmt(name, "gicv3")
        assert f.size == 32 and f.nwords == 4


def test_error_encodings_from_linux_and_the_gic600ae_trm():
    # Linux include/linux/irqchip/arm-gic-v3.h E_ITS_* and GIC-600AE TRM 101206.
    assert C.MOVI_UNMAPPED_INTERRUPT == 0x010107
    assert C.MOVI_UNMAPPED_COLLECTION == 0x010109
    assert C.INT_UNMAPPED_INTERRUPT == 0x010307
    assert C.CLEAR_UNMAPPED_INTERRUPT == 0x010507
    assert C.MAPD_DEVICE_OOR == 0x010801
    assert C.MAPD_ITTSIZE_OOR == 0x010802
    assert C.MAPC_PROCNUM_OOR == 0x010902
    assert C.MAPC_COLLECTION_OOR == 0x010903
    assert C.MAPTI_UNMAPPED_DEVICE == 0x010A04
    assert C.MAPTI_ID_OOR == 0x010A05
    assert C.MAPTI_PHYSICALID_OOR == 0x010A06
    assert C.INV_UNMAPPED_INTERRUPT == 0x010C07
    assert C.INVALL_UNMAPPED_COLLECTION == 0x010D09
    assert C.MOVALL_PROCNUM_OOR == 0x010E01
    assert C.DISCARD_UNMAPPED_INTERRUPT == 0x010F07
    assert (C.INT_DEVICE_OOR, C.INT_UNMAPPED_DEVICE, C.INT_ID_OOR) == (0x010301, 0x010304,
                                                                       0x010305)


def test_register_offsets():
    # IHI 0069 12.19 Table 12-29 (ITS control register map) and the translation frame.
    assert OFFSETS["GITS_CTLR"] == 0 and OFFSETS["GITS_IIDR"] == 4
    assert OFFSETS["GITS_TYPER"] == 8
    assert (OFFSETS["GITS_CBASER"], OFFSETS["GITS_CWRITER"], OFFSETS["GITS_CREADR"]) == (
        0x80, 0x88, 0x90)
    assert [OFFSETS[f"GITS_BASER{n}"] for n in range(8)] == list(range(0x100, 0x140, 8))
    assert OFFSETS["GITS_TRANSLATER"] == 0x10040


def test_qemu_layout_sizes_and_a_raw_entry():
    lay = LAYOUTS["qemu"]
    assert {k: v[1] for k, v in lay.items()} == {"DTE": 8, "ITE": 12, "CTE": 8}
    # A DTE QEMU writes for MAPD Size=4 ITT_addr=0x400000: 1 | 4 << 1 | (0x400000 >> 8) << 6.
    dte = fmt("DTE_QEMU")
    assert dte.decode([0x100009]) == {"Valid": 1, "Size": 4, "ITT_addr": 0x4000}
    assert dte.field("ITT_addr").address([0x100009]) == 0x400000
    # A 12-byte ITE: dword 0 then a 32-bit doorbell word.
    ite = fmt("ITE_QEMU")
    raw = (1 | 1 << 1 | 8200 << 2 | 3 << 32).to_bytes(8, "little") + (1023).to_bytes(4, "little")
    assert ite.decode(ite.from_bytes(raw)) == {"Valid": 1, "IntType": 1, "INTID": 8200,
                                                "ICID": 3, "vPEID": 0, "Doorbell": 1023}


def test_second_architecture_is_registered_without_name_clashes():
    assert "gicv3" in architectures() and "smmuv3" in architectures()
    assert not set(formats("gicv3")) & set(formats("smmuv3"))
    assert fmt("gicv3:MAPD") is fmt("MAPD")
