"""SMMUv3 and VMSAv8-64 in-memory formats: one field table per format.

This file is pure data and imports nothing: the Cython build (core_cy/gen_fields.py) loads it on
its own to generate the inline field accessors the walker uses, and smmudbg.arch.fieldtable wraps
it for decode, encode, validation and display. Change a bit position here and every consumer
follows.

Each field is (name, dword, hi, lo, doc[, enum[, attrs]]): bits hi..lo of 64-bit
little-endian word `dword`. Names are spelled as Arm IHI 0070 (SMMUv3) and the Arm ARM
(VMSAv8-64 descriptors) spell them. An enum maps values to names; a name starting with
"reserved" marks a value the architecture reserves. attrs says what the value is
(smmudbg.arch.fieldtable.FIELD_ATTRS): {"addr": s} for a field holding address bits
[hi-lo+s : s], {"log2": True}, {"number": True}, and the encodings of PS and TG fields.
"""


def _addr(shift):
    """A field holding address bits [.. : shift] of a (PA, IPA or VA) address."""
    return {"addr": shift}


_LOG2 = {"log2": True}
_NUMBER = {"number": True}
_CACHE = {0: "NC", 1: "WBRA", 2: "WT", 3: "WB"}
_SH = {0: "NSH", 1: "reserved", 2: "OSH", 3: "ISH"}
# PS encodings (STE.S2PS, CD.IPS; IDR5.OAS in registers.py): Arm ARM, IHI 0070 5.2/5.4.
_PS_BITS = {0: 32, 1: 36, 2: 40, 3: 42, 4: 44, 5: 48, 6: 52, 7: 56}
_PS = {**{e: f"{b}bit" for e, b in _PS_BITS.items()}, 7: "reserved(56bit v3.4)"}
_PS_ATTRS = {"addr_bits": _PS_BITS}
# TG0 / S2TG and TG1 encodings (granule shift): IHI 0070 5.2 S2TG, 5.4 TG0 and TG1.
_TG0_SHIFT = {0: 12, 1: 16, 2: 14}
_TG1_SHIFT = {1: 14, 2: 12, 3: 16}
_TG0 = {**{e: f"{1 << (s - 10)}K" for e, s in _TG0_SHIFT.items()}, 3: "reserved"}
_TG1 = {0: "reserved", **{e: f"{1 << (s - 10)}K" for e, s in _TG1_SHIFT.items()}}

FORMATS = {
    # IHI 0070 5.2, STE: 64 bytes.
    "STE": (64, [
        ("V", 0, 0, 0, "Valid"),
        ("Config", 0, 3, 1, "Stream configuration", {
            0: "abort", 1: "reserved(abort)", 2: "reserved(abort)", 3: "reserved(abort)",
            4: "bypass", 5: "s1_trans", 6: "s2_trans", 7: "nested"}),
        ("S1Fmt", 0, 5, 4, "CD table format", {0: "linear", 1: "2lvl_4k", 2: "2lvl_64k",
                                               3: "reserved(linear)"}),
        ("S1ContextPtr", 0, 55, 6, "CD or L1CD table address [55:6] (IPA when stage 2 is on)",
         None, _addr(6)),
        ("S1CDMax", 0, 63, 59, "log2 of the number of CDs", None, _LOG2),
        ("S1DSS", 1, 1, 0, "Default substream behaviour", {
            0: "terminate", 1: "bypass", 2: "substream0", 3: "reserved(terminate)"}),
        ("S1CIR", 1, 3, 2, "CD fetch inner cacheability", _CACHE),
        ("S1COR", 1, 5, 4, "CD fetch outer cacheability", _CACHE),
        ("S1CSH", 1, 7, 6, "CD fetch shareability", _SH),
        ("S2HWU59", 1, 8, 8, "Stage 2 descriptor bit 59 has IMPLEMENTATION DEFINED hardware use"),
        ("S2HWU60", 1, 9, 9, "Stage 2 descriptor bit 60 has IMPLEMENTATION DEFINED hardware use"),
        ("S2HWU61", 1, 10, 10, "Stage 2 descriptor bit 61 has IMPLEMENTATION DEFINED hardware use"),
        ("S2HWU62", 1, 11, 11, "Stage 2 descriptor bit 62 has IMPLEMENTATION DEFINED hardware use"),
        ("DRE", 1, 12, 12, "Destructive read enable"),
        ("CONT", 1, 16, 13, "Contiguous hint: STE repeated across 2^CONT StreamIDs", None, _LOG2),
        ("DCP", 1, 17, 17, "Directed cache prefetch"),
        ("PPAR", 1, 18, 18, "PRI auto-response carries a PASID"),
        ("MEV", 1, 19, 19, "Merge events"),
        ("SW_RESERVED", 1, 23, 20, "Software reserved"),
        ("S1PIE", 1, 24, 24, "Stage 1 permission indirection (v3.4)"),
        ("S2FWB", 1, 25, 25, "Stage 2 forced write-back"),
        ("S1MPAM", 1, 26, 26, "Stage 1 MPAM"),
        ("S1STALLD", 1, 27, 27, "Stage 1 stall disable"),
        ("EATS", 1, 29, 28, "ATS enable", {0: "abort", 1: "trans", 2: "s1chk", 3: "trans_dpt"}),
        ("STRW", 1, 31, 30, "StreamWorld", {0: "NS_EL1", 1: "reserved", 2: "EL2", 3: "reserved"}),
        ("MemAttr", 1, 35, 32, "Memory attribute override"),
        ("MTCFG", 1, 36, 36, "Memory type override enable"),
        ("ALLOCCFG", 1, 40, 37, "Allocation hints override"),
        ("SHCFG", 1, 45, 44, "Shareability override", {0: "NSH", 1: "incoming", 2: "OSH",
                                                         3: "ISH"}),
        ("NSCFG", 1, 47, 46, "NS override (Secure/Realm STEs)"),
        ("PRIVCFG", 1, 49, 48, "Privilege override", {0: "incoming", 1: "reserved(incoming)",
                                                        2: "unprivileged", 3: "privileged"}),
        ("INSTCFG", 1, 51, 50, "Instruction/data override", {0: "incoming", 1: "reserved(incoming)",
                                                               2: "data", 3: "instruction"}),
        ("S2VMID", 2, 15, 0, "Virtual machine identifier"),
        ("S2T0SZ", 2, 37, 32, "Stage 2 input size: 64 - S2T0SZ bits", None, _NUMBER),
        ("S2SL0", 2, 39, 38, "Stage 2 starting level"),
        ("S2IR0", 2, 41, 40, "Stage 2 walk inner cacheability", _CACHE),
        ("S2OR0", 2, 43, 42, "Stage 2 walk outer cacheability", _CACHE),
        ("S2SH0", 2, 45, 44, "Stage 2 walk shareability", _SH),
        ("S2TG", 2, 47, 46, "Stage 2 granule", _TG0, {"granule_shift": _TG0_SHIFT}),
        ("S2PS", 2, 50, 48, "Stage 2 output size", _PS, _PS_ATTRS),
        ("S2AA64", 2, 51, 51, "Stage 2 tables are VMSAv8-64"),
        ("S2ENDI", 2, 52, 52, "Stage 2 tables big-endian"),
        ("S2AFFD", 2, 53, 53, "Stage 2 access flag fault disable"),
        ("S2PTW", 2, 54, 54, "Stage 1 walk to Device memory faults at stage 2"),
        ("S2HD", 2, 55, 55, "Stage 2 hardware dirty update"),
        ("S2HA", 2, 56, 56, "Stage 2 hardware access flag update"),
        ("S2S", 2, 57, 57, "Stage 2 stall"),
        ("S2R", 2, 58, 58, "Stage 2 record faults"),
        ("S2HAFT", 2, 59, 59, "Stage 2 hardware access flag for table descriptors (v3.4)"),
        ("S2PIE", 2, 60, 60, "Stage 2 permission indirection (v3.4)"),
        ("S2POE", 2, 61, 61, "Stage 2 permission overlay (v3.4)"),
        ("DPT_VMATCH", 2, 63, 62, "DPT VMID match"),
        ("S2NSW", 3, 0, 0, "Secure stage 2 NS walk"),
        ("S2NSA", 3, 1, 1, "Secure stage 2 NS output"),
        ("S2SL0_2", 3, 2, 2, "Stage 2 start level bit 2 (LPA2)"),
        ("S2DS", 3, 3, 3, "Stage 2 52-bit descriptors (LPA2)"),
        ("S2TTB", 3, 55, 4, "Stage 2 root table address [55:4] ([55:52] RES0 for VMSAv8-64)",
         None, _addr(4)),
        ("S2SKL", 3, 62, 61, "Stage 2 skip level (VMSAv9-128 only)"),
        ("PARTID", 4, 31, 16, "MPAM PARTID"),
        ("S_S2T0SZ", 4, 37, 32, "Secure stage 2 input size (S_S2TTB)", None, _NUMBER),
        ("S_S2SL0", 4, 39, 38, "Secure stage 2 starting level (S_S2TTB)"),
        ("S_S2TG", 4, 47, 46, "Secure stage 2 granule (S_S2TTB)", _TG0,
         {"granule_shift": _TG0_SHIFT}),
        ("MECID", 4, 63, 48, "Memory encryption context (Realm)"),
        ("PMG", 5, 7, 0, "MPAM PMG"),
        ("MPAM_NS", 5, 8, 8, "MPAM NS"),
        ("AssuredOnly", 5, 9, 9, "AssuredOnly"),
        ("TL0", 5, 10, 10, "TL0"),
        ("TL1", 5, 11, 11, "TL1"),
        ("VMSPtr", 5, 55, 12, "Virtual machine structure pointer [55:12]", None, _addr(12)),
        ("S2SW", 6, 0, 0, "Secure stage 2 walk"),
        ("S2SA", 6, 1, 1, "Secure stage 2 output"),
        ("S_S2SL0_2", 6, 2, 2, "Secure stage 2 start level bit 2 (LPA2)"),
        ("S_S2TTB", 6, 55, 4, "Secure stage 2 root table address [55:4]", None, _addr(4)),
        ("S_S2SKL", 6, 62, 61, "Secure stage 2 skip level (VMSAv9-128 only)"),
        *[(f"S2POI{p}", 7, 4 * p + 3, 4 * p,
           f"Stage 2 permission overlay interpretation {p} (v3.4)") for p in range(16)],
    ]),
    # IHI 0070 5.4, CD: 64 bytes.
    "CD": (64, [
        ("T0SZ", 0, 5, 0, "TTB0 input size: 64 - T0SZ bits", None, _NUMBER),
        ("TG0", 0, 7, 6, "TTB0 granule", _TG0, {"granule_shift": _TG0_SHIFT}),
        ("IR0", 0, 9, 8, "TTB0 walk inner cacheability", _CACHE),
        ("OR0", 0, 11, 10, "TTB0 walk outer cacheability", _CACHE),
        ("SH0", 0, 13, 12, "TTB0 walk shareability", _SH),
        ("EPD0", 0, 14, 14, "TTB0 walks disabled"),
        ("ENDI", 0, 15, 15, "Tables big-endian"),
        ("T1SZ", 0, 21, 16, "TTB1 input size: 64 - T1SZ bits", None, _NUMBER),
        ("TG1", 0, 23, 22, "TTB1 granule", _TG1, {"granule_shift": _TG1_SHIFT}),
        ("IR1", 0, 25, 24, "TTB1 walk inner cacheability", _CACHE),
        ("OR1", 0, 27, 26, "TTB1 walk outer cacheability", _CACHE),
        ("SH1", 0, 29, 28, "TTB1 walk shareability", _SH),
        ("EPD1", 0, 30, 30, "TTB1 walks disabled"),
        ("V", 0, 31, 31, "Valid"),
        ("IPS", 0, 34, 32, "Intermediate physical size (stage 1 output size)", _PS, _PS_ATTRS),
        ("AFFD", 0, 35, 35, "Access flag fault disable"),
        ("WXN", 0, 36, 36, "Write implies execute-never"),
        ("UWXN", 0, 37, 37, "Unprivileged write implies privileged execute-never"),
        ("TBI0", 0, 38, 38, "Top byte ignore, TTB0 region"),
        ("TBI1", 0, 39, 39, "Top byte ignore, TTB1 region"),
        ("PAN", 0, 40, 40, "Privileged access never"),
        ("AA64", 0, 41, 41, "VMSAv8-64 tables"),
        ("HD", 0, 42, 42, "Hardware dirty update"),
        ("HA", 0, 43, 43, "Hardware access flag update"),
        ("S", 0, 44, 44, "Stall on fault"),
        ("R", 0, 45, 45, "Record faults"),
        ("A", 0, 46, 46, "Abort (rather than RAZ/WI) on terminated faults"),
        ("ASET", 0, 47, 47, "Non-shared ASID set"),
        ("ASID", 0, 63, 48, "Address space identifier"),
        ("NSCFG0", 1, 0, 0, "TTB0 walk NS (Secure)"),
        ("HAD0", 1, 1, 1, "Hierarchical attributes disable, TTB0"),
        ("E0PD0", 1, 2, 2, "EL0 access to TTB0 region faults"),
        ("HAFT", 1, 3, 3, "Hardware access flag for table descriptors"),
        ("TTB0", 1, 55, 4, "TTB0 address [55:4] (IPA when nested; [55:52] RES0 for VMSAv8-64)",
         None, _addr(4)),
        ("PnCH", 1, 58, 58, "Protected attribute enable"),
        ("EPAN", 1, 59, 59, "Enhanced PAN"),
        ("HWU059", 1, 60, 60, "TTB0 descriptor bit 59 has hardware use (PBHA)"),
        ("HWU060", 1, 61, 61, "TTB0 descriptor bit 60 has hardware use (PBHA)"),
        ("HWU061", 1, 62, 62, "TTB0 descriptor bit 61 has hardware use (SKL0[0] with D128)"),
        ("HWU062", 1, 63, 63, "TTB0 descriptor bit 62 has hardware use (SKL0[1] with D128)"),
        ("NSCFG1", 2, 0, 0, "TTB1 walk NS (Secure)"),
        ("HAD1", 2, 1, 1, "Hierarchical attributes disable, TTB1"),
        ("E0PD1", 2, 2, 2, "EL0 access to TTB1 region faults"),
        ("AIE", 2, 3, 3, "Attribute index enhancement"),
        ("TTB1", 2, 55, 4, "TTB1 address [55:4] (IPA when nested; [55:52] RES0 for VMSAv8-64)",
         None, _addr(4)),
        ("DS", 2, 58, 58, "52-bit descriptors (LPA2)"),
        ("PIE", 2, 59, 59, "Permission indirection enable"),
        ("HWU159", 2, 60, 60, "TTB1 descriptor bit 59 has hardware use (PBHA)"),
        ("HWU160", 2, 61, 61, "TTB1 descriptor bit 60 has hardware use (PBHA)"),
        ("HWU161", 2, 62, 62, "TTB1 descriptor bit 61 has hardware use (SKL1[0] with D128)"),
        ("HWU162", 2, 63, 63, "TTB1 descriptor bit 62 has hardware use (SKL1[1] with D128)"),
        ("MAIR0", 3, 31, 0, "MAIR[31:0]"),
        ("MAIR1", 3, 63, 32, "MAIR[63:32]"),
        ("AMAIR0", 4, 31, 0, "AMAIR[31:0]"),
        ("AMAIR1", 4, 63, 32, "AMAIR[63:32]"),
        ("PARTID", 5, 47, 32, "MPAM PARTID"),
        ("PMG", 5, 55, 48, "MPAM PMG"),
        *[(f"PIIU{p}", 6, 3 * p + 2, 3 * p, f"Stage 1 unprivileged permission interpretation {p}")
          for p in range(16)],
        *[(f"PIIP{p}", 7, 3 * p + 2, 3 * p, f"Stage 1 privileged permission interpretation {p}")
          for p in range(16)],
    ]),
    # IHI 0070 5.1, L1STD: 8 bytes.
    "L1STD": (8, [
        ("Span", 0, 4, 0, "0: invalid; 1..11: the L2 array holds 2^(Span-1) STEs", None, _NUMBER),
        ("L2Ptr", 0, 55, 6, "L2 STE array address [55:6]", None, _addr(6)),
    ]),
    # IHI 0070 5.3, L1CD: 8 bytes.
    "L1CD": (8, [
        ("V", 0, 0, 0, "Valid"),
        ("L2Ptr", 0, 55, 12, "L2 CD array address [55:12] (IPA when nested)", None, _addr(12)),
    ]),
    # Arm ARM D8.3, VMSAv8-64 stage 1 table descriptor (levels 0-2, bits[1:0] = 0b11).
    "S1_TABLE": (8, [
        ("Valid", 0, 0, 0, "Valid"),
        ("Type", 0, 1, 1, "1: table (levels 0-2) or page (level 3); 0: block", {1: "table"}),
        ("NLTA", 0, 47, 12, "Next-level table address [47:12] (granule-aligned)", None,
         _addr(12)),
        ("PXNTable", 0, 59, 59, "Privileged execute-never for everything below"),
        ("UXNTable", 0, 60, 60, "Unprivileged execute-never (XNTable) below"),
        ("APTable", 0, 62, 61, "Access limits below", {0: "none", 1: "no_EL0", 2: "no_write",
                                                        3: "no_write_no_EL0"}),
        ("NSTable", 0, 63, 63, "Non-secure below"),
    ]),
    # Arm ARM D8.3, VMSAv8-64 stage 1 block (levels 1-2, 0b01) and page (level 3, 0b11) descriptor.
    "S1_BLOCK": (8, [
        ("Valid", 0, 0, 0, "Valid"),
        ("Type", 0, 1, 1, "1: page (level 3); 0: block (levels 1-2)", {0: "block", 1: "page"}),
        ("AttrIndx", 0, 4, 2, "MAIR index"),
        ("NS", 0, 5, 5, "Non-secure"),
        ("AP", 0, 7, 6, "Access permissions", {0: "RW_EL1", 1: "RW_any", 2: "RO_EL1",
                                                3: "RO_any"}),
        ("SH", 0, 9, 8, "Shareability", _SH),
        ("AF", 0, 10, 10, "Access flag"),
        ("nG", 0, 11, 11, "Not global"),
        ("OA", 0, 47, 12, "Output address [47:12] (block: aligned to its size)", None,
         _addr(12)),
        ("DBM", 0, 51, 51, "Dirty bit modifier"),
        ("Contiguous", 0, 52, 52, "Contiguous hint"),
        ("PXN", 0, 53, 53, "Privileged execute-never"),
        ("UXN", 0, 54, 54, "Unprivileged execute-never (XN)"),
        ("SW", 0, 58, 55, "Software use"),
        ("PBHA", 0, 62, 59, "Page-based hardware attributes"),
    ]),
    # Arm ARM D8.3, VMSAv8-64 stage 2 table descriptor.
    "S2_TABLE": (8, [
        ("Valid", 0, 0, 0, "Valid"),
        ("Type", 0, 1, 1, "1: table (levels 0-2) or page (level 3); 0: block", {1: "table"}),
        ("NLTA", 0, 47, 12, "Next-level table address [47:12] (granule-aligned)", None,
         _addr(12)),
    ]),
    # Arm ARM D8.3, VMSAv8-64 stage 2 block and page descriptor.
    "S2_BLOCK": (8, [
        ("Valid", 0, 0, 0, "Valid"),
        ("Type", 0, 1, 1, "1: page (level 3); 0: block (levels 1-2)", {0: "block", 1: "page"}),
        ("MemAttr", 0, 5, 2, "Stage 2 memory attributes"),
        ("S2AP", 0, 7, 6, "Stage 2 access permissions", {0: "none", 1: "RO", 2: "WO", 3: "RW"}),
        ("SH", 0, 9, 8, "Shareability", _SH),
        ("AF", 0, 10, 10, "Access flag"),
        ("OA", 0, 47, 12, "Output address [47:12] (block: aligned to its size)", None,
         _addr(12)),
        ("DBM", 0, 51, 51, "Dirty bit modifier"),
        ("Contiguous", 0, 52, 52, "Contiguous hint"),
        ("XN", 0, 54, 53, "Execute-never; XN[0] (bit 53) only with IDR3.XNX", {
            0: "exec", 1: "no_EL1_exec", 2: "no_exec", 3: "no_EL0_exec"}),
        ("SW", 0, 58, 55, "Software use"),
    ]),
}

# The VMSAv8-64 descriptor formats: each has Valid, Type (whose enum names the kinds of
# descriptor the format holds) and one address field (NLTA or OA). gen_fields derives the
# descriptor type values and the output-address / attribute masks from them.
DESCRIPTORS = ("S1_TABLE", "S1_BLOCK", "S2_TABLE", "S2_BLOCK")

# IHI 0070 6.3.1 SMMU_IDR0.VMID16 / ASID16: without them VMIDs and ASIDs are 8 bits wide, and a
# nonzero S2VMID[15:8] / ASID[15:8] is what makes the STE / CD ILLEGAL (R_STE_VMID16,
# R_CD_ASID16).
CODES = {"SmmuTagWidth": {"VMID8_BITS": 8, "ASID8_BITS": 8}}
