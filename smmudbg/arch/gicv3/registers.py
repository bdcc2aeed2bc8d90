"""GICv3 ITS control registers as field tables (Arm IHI 0069, 12.19 "The ITS register
descriptions").

Pure data, no imports, same tuple format as smmudbg/arch/smmuv3/fields.py:
(name, 0, hi, lo, doc[, enum[, attrs]]). Every register is one dword; `size` is 4 or 8 bytes.
Register and field names are spelled as IHI 0069 spells them (GITS_TYPER.ITT_entry_size,
GITS_BASER<n>.Page_Size, GITS_CREADR.Stalled).

GITS_BASER<n>.Physical_Address [47:12] holds PA[47:12] for 4 KB and 16 KB pages; with 64 KB
pages bits [47:16] hold PA[47:16], bits [15:12] hold PA[51:48] and PA[15:12] is zero: that form
is the format GITS_BASER_64KB (the same register, its address read as two address fields), and
BASER_ADDRESS_FORMAT says which form each Page_Size uses. The table base is the OR of the
addresses of the form's address fields.
GITS_CWRITER.Offset and GITS_CREADR.Offset count bytes in 32-byte units (one command): the
byte offset is Offset << 5, an address-like field with shift 5.

OFFSETS gives each register's offset from the ITS base: the control frame at +0 and
GITS_TRANSLATER in the translation frame at +0x10000 + 0x40 (QEMU virt: 0x08080000 + 0x10040 =
0x08090040, the guest doorbell).
"""

_CACHE = {0: "Device-nGnRnE", 1: "NC", 2: "RaWt", 3: "RaWb", 4: "WaWt", 5: "WaWb",
          6: "RaWaWt", 7: "RaWaWb"}
_SH = {0: "NSH", 1: "ISH", 2: "OSH", 3: "reserved"}
_NUMBER = {"number": True}

# 12.19.13 GITS_BASER<n>.Type.
BASER_TYPES = {0: "unimplemented", 1: "Devices", 2: "vPEs", 3: "reserved",
               4: "Collections", 5: "reserved", 6: "reserved", 7: "reserved"}
# 12.19.13 GITS_BASER<n>.Page_Size: log2 of the page size. 0b11 is reserved: read as 64 KB,
# as QEMU does.
PAGE_SHIFT = {0: 12, 1: 14, 2: 16, 3: 16}
# GITS_CBASER.Size counts 4 KB pages (12.19.2), whatever the tables' page size.
CBASER_PAGE_SHIFT = 12



def _baser(address_fields):
    """GITS_BASER<n>'s fields with the given Physical_Address form."""
    return [
        ("Size", 0, 7, 0, "Number of pages of the table (or level-1 table), minus one",
         None, _NUMBER),
        ("Page_Size", 0, 9, 8, "Table page size", {0: "4KB", 1: "16KB", 2: "64KB",
                                                  3: "reserved(64KB)"}),
        ("Shareability", 0, 11, 10, "Table shareability", _SH),
        *address_fields,
        ("Entry_Size", 0, 52, 48, "RO: bytes per table entry, minus one", None, _NUMBER),
        ("OuterCache", 0, 55, 53, "Outer cacheability (0 = same as InnerCache)", _CACHE),
        ("Type", 0, 58, 56, "RO: what the table holds", BASER_TYPES),
        ("InnerCache", 0, 61, 59, "Inner cacheability", _CACHE),
        ("Indirect", 0, 62, 62, "Two-level table: the pages hold level-1 entries (ITS_L1E)"),
        ("Valid", 0, 63, 63, "The table is allocated"),
    ]


# Which form of GITS_BASER<n> holds the table base, by Page_Size.
BASER_ADDRESS_FORMAT = {0: "GITS_BASER", 1: "GITS_BASER", 2: "GITS_BASER_64KB",
                        3: "GITS_BASER_64KB"}

FORMATS = {
    # 12.19.6
    "GITS_CTLR": (4, [
        ("Enabled", 0, 0, 0, "ITS enabled: commands are processed and translations happen"),
        ("ImDe", 0, 1, 1, "GICv4.1 IMPLEMENTATION DEFINED doorbell mode (RES0 here)"),
        ("ITS_Number", 0, 7, 4, "This ITS's number for VMOVP (GICv4, RES0 here)", None, _NUMBER),
        ("Quiescent", 0, 31, 31, "RO: the ITS is idle and disabled: no command in flight"),
    ]),
    # 12.19.8
    "GITS_IIDR": (4, [
        ("Implementer", 0, 11, 0, "JEP106 code of the implementer (0x43B: Arm)"),
        ("Revision", 0, 15, 12, "Revision number", None, _NUMBER),
        ("Variant", 0, 19, 16, "Variant number", None, _NUMBER),
        ("ProductID", 0, 31, 24, "Product identifier"),
    ]),
    # 12.19.16
    "GITS_TYPER": (8, [
        ("Physical", 0, 0, 0, "Physical LPIs supported"),
        ("Virtual", 0, 1, 1, "Virtual LPIs and direct injection supported (GICv4)"),
        ("CCT", 0, 2, 2, "Cumulative collection tables"),
        ("ITT_entry_size", 0, 7, 4, "Bytes per interrupt translation table entry, minus one",
         None, _NUMBER),
        ("ID_bits", 0, 12, 8, "EventID bits supported, minus one", None, _NUMBER),
        ("Devbits", 0, 17, 13, "DeviceID bits supported, minus one", None, _NUMBER),
        ("SEIS", 0, 18, 18, "Locally generated system errors (SEI) supported"),
        ("PTA", 0, 19, 19, "Target address: 1 = RDbase is a physical address, "
         "0 = a processor number"),
        ("HCC", 0, 31, 24, "Collections held in the ITS (ICIDs 0..HCC-1 need no memory)",
         None, _NUMBER),
        ("CIDbits", 0, 35, 32, "Collection ID bits supported, minus one (when CIL is 1)",
         None, _NUMBER),
        ("CIL", 0, 36, 36, "Collection ID limit: 1 = CIDbits applies, 0 = 16-bit ICIDs"),
        ("VMOVP", 0, 37, 37, "VMOVP needs no ITS list (GICv4)"),
        ("MPAM", 0, 38, 38, "MPAM supported"),
        ("VSGI", 0, 39, 39, "Direct injection of virtual SGIs (GICv4.1)"),
        ("VMAPP", 0, 40, 40, "VMAPP with Alloc (GICv4.1)"),
        ("SVPET", 0, 42, 41, "Shared vPE table (GICv4.1)"),
        ("nID_bits", 0, 43, 43, "Fewer vPEID bits than 16 (GICv4.1)"),
        ("INV", 0, 44, 44, "GITS_INVLPIR / INVDB supported"),
    ]),
    # 12.19.2
    "GITS_CBASER": (8, [
        ("Size", 0, 7, 0, "Number of 4 KB pages of the command queue, minus one",
         None, _NUMBER),
        ("Shareability", 0, 11, 10, "Command queue shareability", _SH),
        ("Physical_Address", 0, 51, 12, "Command queue base address [51:12]", None,
         {"addr": 12}),
        ("OuterCache", 0, 55, 53, "Outer cacheability (0 = same as InnerCache)", _CACHE),
        ("InnerCache", 0, 61, 59, "Inner cacheability", _CACHE),
        ("Valid", 0, 63, 63, "The command queue is valid"),
    ]),
    # 12.19.4
    "GITS_CWRITER": (8, [
        ("Retry", 0, 0, 0, "Write 1 to restart a stalled command queue at GITS_CREADR"),
        ("Offset", 0, 19, 5, "Byte offset (x32) of the next command software writes", None,
         {"addr": 5}),
    ]),
    # 12.19.3
    "GITS_CREADR": (8, [
        ("Stalled", 0, 0, 0, "RO: command processing stalled on a command error"),
        ("Offset", 0, 19, 5, "Byte offset (x32) of the next command the ITS reads", None,
         {"addr": 5}),
    ]),
    # 12.19.13 (one format, eight registers GITS_BASER0..7)
    "GITS_BASER": (8, _baser([
        ("Physical_Address", 0, 47, 12, "Table base [47:12] (64 KB pages: [15:12] = PA[51:48])",
         None, {"addr": 12})])),
    # 12.19.13, Page_Size = 64KB: the same register with PA[51:48] in bits [15:12].
    "GITS_BASER_64KB": (8, _baser([
        ("Physical_Address_51_48", 0, 15, 12, "Table base [51:48] (64 KB pages)", None,
         {"addr": 48}),
        ("Physical_Address", 0, 47, 16, "Table base [47:16] (64 KB pages)", None,
         {"addr": 16})])),
    # 12.19.17: a 16- or 32-bit write here is an MSI; the write's DeviceID is sideband.
    "GITS_TRANSLATER": (4, [
        ("EventID", 0, 31, 0, "EventID of the MSI (the DeviceID comes with the write)"),
    ]),
}

# Redistributor registers in the RD_base frame (IHI 0069 12.10, 12.11), for an imported
# GIC: one 128 KiB RD_base + SGI_base pair per PE (GICv3). GICR_TYPER.Processor_Number is
# the RDbase a collection names when GITS_TYPER.PTA is 0; Affinity_Value is the PE's
# MPIDR_EL1 affinity (Aff3.Aff2.Aff1.Aff0).
REDIST_FORMATS = {
    # 12.11.2
    "GICR_CTLR": (4, [
        ("EnableLPIs", 0, 0, 0, "LPIs are enabled on this redistributor"),
        ("CES", 0, 1, 1, "GICR_CTLR.EnableLPIs can be cleared once set"),
        ("IR", 0, 2, 2, "LPI invalidate registers supported"),
        ("RWP", 0, 3, 3, "RO: a register write is still in progress"),
        ("DPG0", 0, 24, 24, "Disable Group 0 interrupt selection for this PE"),
        ("DPG1NS", 0, 25, 25, "Disable Non-secure Group 1 interrupt selection for this PE"),
        ("DPG1S", 0, 26, 26, "Disable Secure Group 1 interrupt selection for this PE"),
        ("UWP", 0, 31, 31, "RO: an upstream write is still in progress"),
    ]),
    # 12.11.16
    "GICR_IIDR": (4, [
        ("Implementer", 0, 11, 0, "JEP106 code of the implementer (0x43B: Arm)"),
        ("Revision", 0, 15, 12, "Revision number", None, _NUMBER),
        ("Variant", 0, 19, 16, "Variant number", None, _NUMBER),
        ("ProductID", 0, 31, 24, "Product identifier"),
    ]),
    # 12.11.35
    "GICR_TYPER": (8, [
        ("PLPIS", 0, 0, 0, "Physical LPIs supported"),
        ("VLPIS", 0, 1, 1, "Virtual LPIs supported (GICv4)"),
        ("Dirty", 0, 2, 2, "GICR_VPENDBASER.Dirty supported (GICv4)"),
        ("DirectLPI", 0, 3, 3, "Direct injection of LPIs (GICR_SETLPIR) supported"),
        ("Last", 0, 4, 4, "The last redistributor of its region"),
        ("DPGS", 0, 5, 5, "GICR_CTLR.DPG* supported"),
        ("MPAM", 0, 6, 6, "MPAM supported"),
        ("RVPEID", 0, 7, 7, "GICR_VPENDBASER records the vPEID (GICv4.1)"),
        ("Processor_Number", 0, 23, 8, "The PE's number: the RDbase of an ITS with PTA=0",
         None, _NUMBER),
        ("CommonLPIAff", 0, 25, 24, "Which redistributors share an LPI configuration table",
         None, _NUMBER),
        ("VSGI", 0, 26, 26, "Direct injection of virtual SGIs (GICv4.1)"),
        ("PPInum", 0, 31, 27, "Extended PPI range", None, _NUMBER),
        ("Affinity_Value", 0, 63, 32, "The PE's affinity: Aff3.Aff2.Aff1.Aff0 of MPIDR_EL1"),
    ]),
    # 12.11.40
    "GICR_WAKER": (4, [
        ("ProcessorSleep", 0, 1, 1, "The PE is asleep: interrupts only wake it"),
        ("ChildrenAsleep", 0, 2, 2, "RO: the interface to the PE is quiescent"),
    ]),
    # 12.11.29
    "GICR_PROPBASER": (8, [
        ("IDbits", 0, 4, 0, "INTID bits of the LPI configuration table, minus one", None,
         _NUMBER),
        ("InnerCache", 0, 9, 7, "Inner cacheability", _CACHE),
        ("Shareability", 0, 11, 10, "Shareability", _SH),
        ("Physical_Address", 0, 51, 12, "LPI configuration table address [51:12]", None,
         {"addr": 12}),
        ("OuterCache", 0, 58, 56, "Outer cacheability (0 = same as InnerCache)", _CACHE),
    ]),
    # 12.11.28
    "GICR_PENDBASER": (8, [
        ("InnerCache", 0, 9, 7, "Inner cacheability", _CACHE),
        ("Shareability", 0, 11, 10, "Shareability", _SH),
        ("Physical_Address", 0, 51, 16, "LPI pending table address [51:16]", None,
         {"addr": 16}),
        ("OuterCache", 0, 58, 56, "Outer cacheability (0 = same as InnerCache)", _CACHE),
        ("PTZ", 0, 62, 62, "WO: the pending table is all zeros"),
    ]),
}
FORMATS.update(REDIST_FORMATS)
# GICR_TYPER.Affinity_Value (12.11.35): the PE's MPIDR_EL1 affinity levels, a format of the
# field's value.
FORMATS["GICR_AFFINITY"] = (4, [
    ("Aff0", 0, 7, 0, "Affinity level 0", None, _NUMBER),
    ("Aff1", 0, 15, 8, "Affinity level 1", None, _NUMBER),
    ("Aff2", 0, 23, 16, "Affinity level 2", None, _NUMBER),
    ("Aff3", 0, 31, 24, "Affinity level 3", None, _NUMBER),
])

# Offsets in a redistributor's RD_base frame, and its stride (RD_base + SGI_base, GICv3).
GICR_OFFSETS = {"GICR_CTLR": 0x00, "GICR_IIDR": 0x04, "GICR_TYPER": 0x08, "GICR_WAKER": 0x14,
                "GICR_PROPBASER": 0x70, "GICR_PENDBASER": 0x78}
GICR_STRIDE = 0x20000

# 1.2 / 5.1: LPIs are the INTIDs from 8192 up (to 2^(GICD_TYPER.IDbits + 1) - 1).
LPI_BASE = 8192

# The translation frame follows the 64 KiB control frame (12.19, Table 12-28); both frames
# together are ITS_FRAMES bytes.
TRANSLATION_FRAME = 0x10000
ITS_FRAMES = 2 * TRANSLATION_FRAME

OFFSETS = {
    "GITS_CTLR": 0x0000, "GITS_IIDR": 0x0004, "GITS_TYPER": 0x0008,
    "GITS_CBASER": 0x0080, "GITS_CWRITER": 0x0088, "GITS_CREADR": 0x0090,
    **{f"GITS_BASER{n}": 0x0100 + 8 * n for n in range(8)},
    "GITS_TRANSLATER": TRANSLATION_FRAME + 0x0040,
}

# GITS_BASER0..7 share the GITS_BASER format.
REGISTER_FORMAT = {**{n: n for n in OFFSETS}, **{f"GITS_BASER{n}": "GITS_BASER"
                                                 for n in range(8)}}

# Reset values the architecture defines (12.19: Enabled resets to 0, Quiescent reads 1 when
# disabled and idle; GITS_CREADR resets to 0).
RESET = {"GITS_CTLR": 0x80000000, "GITS_CREADR": 0, "GITS_CWRITER": 0}
