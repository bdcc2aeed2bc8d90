"""VT-d interrupt remapping: the interrupt remapping table entries (remapped and posted) and the
MSI address / data formats that reach them (VT-d spec 5.1.2, 9.9, 9.10).

Pure data, no imports. An interrupt request is a DWORD write to 0xFEEx_xxxx. Bit 4 of the
address (IF, interrupt format) selects the format:
  * remappable (IF=1): handle = handle[15] (address bit 2) : handle[14:0] (address bits 19:5);
    with SHV=1 (address bit 3) the subhandle in data[15:0] is added: index = handle + subhandle;
    the IRTE at IRTA_REG.IRTA + 16 * index gives vector, destination and delivery mode;
  * compatibility (IF=0): the xAPIC MSI format itself; it passes through unremapped only when
    GSTS_REG.CFIS=1 and IRTA_REG.EIME=0, and is blocked (fault 25h) otherwise.
IRTE.IM selects the IRTE format: 0 remapped (IRTE), 1 posted (IRTE_POSTED, with CAP_REG.PI).
"""

_SOURCE = [
    ("SID", 1, 15, 0, "Source identifier to verify the requester against (SVT)"),
    ("SQ", 1, 17, 16, "Source-ID qualifier (SVT=01b): requester-ID bits not compared", {
        0: "all_16", 1: "ignore_bit2", 2: "ignore_bit1", 3: "ignore_bit0"}),
    ("SVT", 1, 19, 18, "Source validation type", {
        0: "none", 1: "requester_id", 2: "bus_range", 3: "reserved"}),
]
_DLM = {0: "fixed", 1: "lowest_priority", 2: "SMI", 3: "reserved", 4: "NMI", 5: "INIT",
        6: "reserved", 7: "ExtINT"}

FORMATS = {
    # 9.9: IRTE for remapped interrupts (IM=0), 128 bits.
    "IRTE": (16, [
        ("P", 0, 0, 0, "Present"),
        ("FPD", 0, 1, 1, "Fault processing disable"),
        ("DM", 0, 2, 2, "Destination mode", {0: "physical", 1: "logical"}),
        ("RH", 0, 3, 3, "Redirection hint"),
        ("TM", 0, 4, 4, "Trigger mode", {0: "edge", 1: "level"}),
        ("DLM", 0, 7, 5, "Delivery mode", _DLM),
        ("AVAIL", 0, 11, 8, "Available to software"),
        ("IM", 0, 15, 15, "IRTE mode", {0: "remapped", 1: "posted"}),
        ("V", 0, 23, 16, "Vector"),
        ("DST", 0, 63, 32, "Destination ID: x2APIC ID (IRTA_REG.EIME=1) or xAPIC ID in DST[15:8] "
                           "(EIME=0; the other bits reserved)"),
    ] + _SOURCE),
    # 9.9: IRTE.DST when IRTA_REG.EIME=0 (xAPIC mode): the APIC ID is DST[15:8], the other
    # bits are reserved. A format of the DST value itself.
    "IRTE_DST_XAPIC": (4, [
        ("APIC_ID", 0, 15, 8, "xAPIC destination ID"),
    ]),
    # 9.10: IRTE for posted interrupts (IM=1), 128 bits.
    "IRTE_POSTED": (16, [
        ("P", 0, 0, 0, "Present"),
        ("FPD", 0, 1, 1, "Fault processing disable"),
        ("AVAIL", 0, 11, 8, "Available to software"),
        ("URG", 0, 14, 14, "Urgent"),
        ("IM", 0, 15, 15, "IRTE mode", {0: "remapped", 1: "posted"}),
        ("VV", 0, 23, 16, "Virtual vector posted to the descriptor"),
        ("PDA_L", 0, 63, 38, "Posted descriptor address [31:6]", None, {"addr": 6}),
    ] + _SOURCE + [
        ("PDA_H", 1, 63, 32, "Posted descriptor address [63:32]", None, {"addr": 32}),
    ]),
    # 5.1.2.2: remappable-format MSI address (low 32 bits; the high 32 bits are 0).
    "MSI_ADDR_REMAP": (4, [
        ("HANDLE_15", 0, 2, 2, "Handle bit 15"),
        ("SHV", 0, 3, 3, "Subhandle valid: index = handle + data[15:0]"),
        ("IF", 0, 4, 4, "Interrupt format", {0: "compatibility", 1: "remappable"}),
        ("HANDLE", 0, 19, 5, "Handle bits 14:0"),
        ("FEE", 0, 31, 20, "Interrupt address range: 0xFEE"),
    ]),
    "MSI_DATA_REMAP": (4, [
        ("SUBHANDLE", 0, 15, 0, "Subhandle (added to the handle when SHV=1)"),
    ]),
    # 5.1.2.1: compatibility-format MSI (the xAPIC format).
    "MSI_ADDR_COMPAT": (4, [
        ("DM", 0, 2, 2, "Destination mode", {0: "physical", 1: "logical"}),
        ("RH", 0, 3, 3, "Redirection hint"),
        ("IF", 0, 4, 4, "Interrupt format", {0: "compatibility", 1: "remappable"}),
        ("DEST", 0, 19, 12, "Destination xAPIC ID"),
        ("FEE", 0, 31, 20, "Interrupt address range: 0xFEE"),
    ]),
    "MSI_DATA_COMPAT": (4, [
        ("VECTOR", 0, 7, 0, "Vector"),
        ("DLM", 0, 10, 8, "Delivery mode", _DLM),
        ("LEVEL", 0, 14, 14, "Level (assert) for level-triggered"),
        ("TM", 0, 15, 15, "Trigger mode", {0: "edge", 1: "level"}),
    ]),
}

# The interrupt address range: requests without PASID writing here are interrupt requests.
INTERRUPT_RANGE = (0xFEE00000, 0xFEEFFFFF)
