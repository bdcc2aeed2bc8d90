"""ITS table entries (Arm IHI 0069, 5.2 "The ITS tables").

The architecture defines only the level-1 entry of a two-level table (GITS_BASER<n>.Indirect
= 1): ITS_L1E. The device table entry, the interrupt translation table entry and the
collection table entry are IMPLEMENTATION DEFINED: their sizes are what GITS_BASER<n>.Entry_Size
and GITS_TYPER.ITT_entry_size report, and their layouts are named here per implementation.

LAYOUTS["qemu"]: QEMU's GICv3 ITS (hw/intc/gicv3_internal.h, unchanged from 7.0 to 10.0):
  DTE 8 bytes: Valid [0], Size [5:1] (EventID bits - 1), ITT_addr [49:6] = ITT address [51:8];
  ITE 12 bytes: a 64-bit word (Valid [0], IntType [1], INTID [25:2], ICID [47:32],
                vPEID [63:48]) then a 32-bit word (Doorbell [23:0]: FIELD(ITE_H,
                DOORBELL, 0, 24); the comment above it in QEMU says [24:0]);
  CTE 8 bytes: Valid [0], RDbase [16:1] (the target's processor number).
A 12-byte ITE is dword 0 and the low half of dword 1; bits [63:32] of dword 1 belong to the
next entry and are not part of this one.
"""

_NUMBER = {"number": True}

FORMATS = {
    # 5.2.1 / GITS_BASER<n>.Indirect: level-1 entry, 8 bytes. The address is of a level-2
    # page of Page_Size; bits below the page size are RES0.
    "ITS_L1E": (8, [
        ("Physical_Address", 0, 51, 12, "Level-2 page address [51:12]", None, {"addr": 12}),
        ("Valid", 0, 63, 63, "The level-2 page is allocated"),
    ]),
    "DTE_QEMU": (8, [
        ("Valid", 0, 0, 0, "Device mapped (MAPD V=1)"),
        ("Size", 0, 5, 1, "EventID bits of the device, minus one", None, _NUMBER),
        ("ITT_addr", 0, 49, 6, "ITT address [51:8]", None, {"addr": 8}),
    ]),
    "ITE_QEMU": (12, [
        ("Valid", 0, 0, 0, "Event mapped (MAPTI/MAPI)"),
        ("IntType", 0, 1, 1, "Interrupt type", {0: "virtual", 1: "physical"}),
        ("INTID", 0, 25, 2, "LPI INTID (physical) or vINTID (virtual)"),
        ("ICID", 0, 47, 32, "Interrupt collection (physical)"),
        ("vPEID", 0, 63, 48, "vPE (virtual, GICv4)"),
        # QEMU writes INTID_SPURIOUS (1023) for "no doorbell" (physical interrupts).
        ("Doorbell", 1, 23, 0, "Doorbell LPI (virtual, GICv4; 1023 = none)", {1023: "none"}),
    ]),
    "CTE_QEMU": (8, [
        ("Valid", 0, 0, 0, "Collection mapped (MAPC V=1)"),
        ("RDbase", 0, 16, 1, "Target redistributor: processor number", None, _NUMBER),
    ]),
}

# Named layouts: which format is each table's entry, and its size in bytes.
LAYOUTS = {
    "qemu": {"DTE": ("DTE_QEMU", 8), "ITE": ("ITE_QEMU", 12), "CTE": ("CTE_QEMU", 8)},
}
