"""SMMUv3 Non-secure programming-interface registers as field tables (IHI 0070 6.3).

Pure data, no imports, same tuple format as fields.py: (name, 0, hi, lo, doc[, enum[, attrs]]).
Every register is one dword; `size` is 4 or 8 bytes. Register and field names are spelled as
IHI 0070 6.3 spells them (SMMU_EVENTQ_*, not Linux's EVTQ; IDR0.Hyp; GBPA.Update). ALIASES maps
common short spellings to the architected names.

Queue PROD/CONS registers: the spec defines WR/RD as one field [19:0] that splits by the queue's
LOG2SIZE (QS = SMMU_*Q_BASE.LOG2SIZE): bits [QS-1:0] are the index and bit [QS] is the wrap flag
(WR_WRAP / RD_WRAP); bits [19:QS+1] are RES0. The tables keep the whole [19:0] field, as the spec
does; index = WR & (2^QS - 1), wrap = (WR >> QS) & 1.

OFFSETS gives each register's offset from the SMMU base (page 0 at +0, page 1 at +0x10000).
SMMU_EVENTQ_PROD/CONS and SMMU_PRIQ_PROD/CONS live only in page 1 (0x100A8/0x100AC/0x100C8/0x100CC);
QEMU also decodes them at the page-0 alias (offset & 0xFFFF), which the architecture leaves
reserved.

RESET gives architected reset values; RESET_MASK says which bits of that value the spec defines
(other bits reset to IMPLEMENTATION DEFINED or UNKNOWN values). Registers whose fields all reset
UNKNOWN or IMPLEMENTATION DEFINED are absent.
"""

_CACHE = {0: "NC", 1: "WB", 2: "WT", 3: "reserved"}
_SH = {0: "NSH", 1: "reserved", 2: "OSH", 3: "ISH"}
# IDR5.OAS: the PS encoding (Arm ARM; IHI 0070 6.3.6), 0b111 = 56 bits (v3.4).
_ADDR_BITS = {0: 32, 1: 36, 2: 40, 3: 42, 4: 44, 5: 48, 6: 52, 7: 56}
_ADDR_SIZE = {e: f"{b}bit" for e, b in _ADDR_BITS.items()}
_LOG2 = {"log2": True}

_CR0 = [
    ("SMMUEN", 0, 0, 0, "Non-secure SMMU enable"),
    ("PRIQEN", 0, 1, 1, "PRI queue enable"),
    ("EVENTQEN", 0, 2, 2, "Event queue enable"),
    ("CMDQEN", 0, 3, 3, "Command queue enable"),
    ("ATSCHK", 0, 4, 4, "ATS Translated traffic is checked against the STE (bypass otherwise)"),
    ("VMW", 0, 8, 6, "VMID wildcard for TLB invalidation matching"),
    ("DPT_WALK_EN", 0, 10, 10, "DPT walks enabled (v3.3 DPT)"),
]

_IRQ_CTRL = [
    ("GERROR_IRQEN", 0, 0, 0, "GERROR interrupt enable"),
    ("PRIQ_IRQEN", 0, 1, 1, "PRI queue interrupt enable"),
    ("EVENTQ_IRQEN", 0, 2, 2, "Event queue interrupt enable"),
]

_GERROR_BITS = [
    ("CMDQ_ERR", 0, 0, 0, "Command queue error (see CMDQ_CONS.ERR)"),
    ("EVENTQ_ABT_ERR", 0, 2, 2, "Event queue write aborted"),
    ("PRIQ_ABT_ERR", 0, 3, 3, "PRI queue write aborted"),
    ("MSI_CMDQ_ABT_ERR", 0, 4, 4, "CMD_SYNC MSI write aborted"),
    ("MSI_EVENTQ_ABT_ERR", 0, 5, 5, "Event queue MSI write aborted"),
    ("MSI_PRIQ_ABT_ERR", 0, 6, 6, "PRI queue MSI write aborted"),
    ("MSI_GERROR_ABT_ERR", 0, 7, 7, "GERROR MSI write aborted"),
    ("SFM_ERR", 0, 8, 8, "Service failure mode"),
    ("CMDQP_ERR", 0, 9, 9, "Error on a Command queue control page (ECMDQ)"),
    ("DPT_ERR", 0, 10, 10, "DPT lookup error"),
]

_IRQ_CFG0 = [("ADDR", 0, 55, 2, "MSI address [55:2]; 0 disables the MSI", None, {"addr": 2})]
_IRQ_CFG1 = [("DATA", 0, 31, 0, "MSI payload")]
_IRQ_CFG2 = [("MemAttr", 0, 3, 0, "MSI memory type, encoded as STE.MemAttr"),
             ("SH", 0, 5, 4, "MSI Shareability", _SH)]

_Q_BASE = [("LOG2SIZE", 0, 4, 0, "Queue holds 2^LOG2SIZE entries", None, _LOG2),
           ("ADDR", 0, 55, 5, "Queue base PA [55:5], aligned to the queue size", None,
            {"addr": 5})]

_WR = ("WR", 0, 19, 0, "Write index [QS-1:0] with wrap flag WR_WRAP at bit [QS] "
                       "(QS = LOG2SIZE of the queue); [19:QS+1] RES0")
_RD = ("RD", 0, 19, 0, "Read index [QS-1:0] with wrap flag RD_WRAP at bit [QS] "
                       "(QS = LOG2SIZE of the queue); [19:QS+1] RES0")

FORMATS = {
    # 6.3.1
    "SMMU_IDR0": (4, [
        ("S2P", 0, 0, 0, "Stage 2 translation supported"),
        ("S1P", 0, 1, 1, "Stage 1 translation supported"),
        ("TTF", 0, 3, 2, "Translation table formats", {0: "reserved", 1: "AArch32",
                                                       2: "AArch64", 3: "AArch32+AArch64"}),
        ("COHACC", 0, 4, 4, "Coherent access to tables, structures and queues"),
        ("BTM", 0, 5, 5, "Broadcast TLB maintenance"),
        ("HTTU", 0, 7, 6, "Hardware translation table update", {0: "none", 1: "AF",
                                                                2: "AF+dirty",
                                                                3: "AF+dirty+HAFT"}),
        ("DORMHINT", 0, 8, 8, "STATUSR.DORMANT hint supported"),
        ("Hyp", 0, 9, 9, "EL2 (hypervisor) StreamWorld supported"),
        ("ATS", 0, 10, 10, "PCIe ATS supported"),
        ("NS1ATS", 0, 11, 11, "Split-stage ATS not supported (1)"),
        ("ASID16", 0, 12, 12, "16-bit ASIDs"),
        ("MSI", 0, 13, 13, "MSIs supported"),
        ("SEV", 0, 14, 14, "WFE wake-up events supported"),
        ("ATOS", 0, 15, 15, "Address translation operations supported"),
        ("PRI", 0, 16, 16, "PCIe PRI supported"),
        ("VMW", 0, 17, 17, "VMID wildcard matching supported"),
        ("VMID16", 0, 18, 18, "16-bit VMIDs"),
        ("CD2L", 0, 19, 19, "2-level CD tables supported"),
        ("VATOS", 0, 20, 20, "Virtual ATOS page supported"),
        ("TTENDIAN", 0, 22, 21, "Translation table endianness", {0: "mixed", 1: "reserved",
                                                                 2: "LE", 3: "BE"}),
        ("ATSRECERR", 0, 23, 23, "ATS Translated errors recorded"),
        ("STALL_MODEL", 0, 25, 24, "Stall model", {0: "stall+terminate", 1: "terminate",
                                                  2: "stall_forced", 3: "reserved"}),
        ("TERM_MODEL", 0, 26, 26, "1: terminated transactions always abort (CD.A must be 1)"),
        ("ST_LEVEL", 0, 28, 27, "Stream table levels", {0: "linear", 1: "2level",
                                                       2: "reserved", 3: "reserved"}),
        ("RME_IMPL", 0, 30, 30, "SMMU for RME implemented"),
    ]),
    # 6.3.2
    "SMMU_IDR1": (4, [
        ("SIDSIZE", 0, 5, 0, "StreamID bits", None, _LOG2),
        ("SSIDSIZE", 0, 10, 6, "SubstreamID bits", None, _LOG2),
        ("PRIQS", 0, 15, 11, "log2 of the maximum PRI queue entries", None, _LOG2),
        ("EVENTQS", 0, 20, 16, "log2 of the maximum Event queue entries", None, _LOG2),
        ("CMDQS", 0, 25, 21, "log2 of the maximum Command queue entries", None, _LOG2),
        ("ATTR_PERMS_OVR", 0, 26, 26, "STE/GBPA INSTCFG and PRIVCFG overrides supported"),
        ("ATTR_TYPES_OVR", 0, 27, 27, "STE/GBPA MTCFG, ALLOCCFG, SHCFG overrides supported"),
        ("REL", 0, 28, 28, "Base addresses in PRESET tables/queues are relative"),
        ("QUEUES_PRESET", 0, 29, 29, "Queue bases and sizes are fixed"),
        ("TABLES_PRESET", 0, 30, 30, "Stream table base and config are fixed"),
        ("ECMDQ", 0, 31, 31, "Enhanced Command queue interfaces"),
    ]),
    # 6.3.3
    "SMMU_IDR2": (4, [
        ("BA_VATOS", 0, 9, 0, "VATOS page offset from the SMMU base, in 64KB units"),
    ]),
    # 6.3.4
    "SMMU_IDR3": (4, [
        ("HAD", 0, 2, 2, "Hierarchical attribute disables (CD.HADx)"),
        ("PBHA", 0, 3, 3, "Page-based hardware attributes"),
        ("XNX", 0, 4, 4, "Stage 2 EL0/EL1 execute-never distinction"),
        ("PPS", 0, 5, 5, "PRI response PASID from the STE (STE.PPAR)"),
        ("MPAM", 0, 7, 7, "MPAM supported"),
        ("FWB", 0, 8, 8, "Stage 2 forced write-back (STE.S2FWB)"),
        ("STT", 0, 9, 9, "Small translation tables"),
        ("RIL", 0, 10, 10, "Range invalidation and level hint"),
        ("BBML", 0, 12, 11, "Break-before-make level", {0: "level0", 1: "level1", 2: "level2",
                                                       3: "reserved"}),
        ("E0PD", 0, 13, 13, "CD.E0PDx supported"),
        ("PTWNNC", 0, 14, 14, "Walks to Normal-NC may be treated as cacheable"),
        ("DPT", 0, 15, 15, "Device permission table"),
        ("PASIDTT", 0, 16, 16, "PASID on ATS Translated transactions"),
        ("EPAN", 0, 17, 17, "CD.EPAN supported"),
        ("S1PI", 0, 18, 18, "Stage 1 permission indirection"),
        ("S2PI", 0, 19, 19, "Stage 2 permission indirection"),
        ("S2PO", 0, 20, 20, "Stage 2 permission overlay"),
        ("THE", 0, 21, 21, "Translation hardening extension"),
        ("MTEPERM", 0, 22, 22, "FEAT_MTE_PERM"),
        ("AIE", 0, 23, 23, "Attribute index enhancement (CD.AIE)"),
    ]),
    # 6.3.5
    "SMMU_IDR4": (4, [
        ("IMPDEF", 0, 31, 0, "IMPLEMENTATION DEFINED"),
    ]),
    # 6.3.6
    "SMMU_IDR5": (4, [
        ("OAS", 0, 2, 0, "Output address size", _ADDR_SIZE, {"addr_bits": _ADDR_BITS}),
        ("GRAN4K", 0, 4, 4, "4KB granule"),
        ("GRAN16K", 0, 5, 5, "16KB granule"),
        ("GRAN64K", 0, 6, 6, "64KB granule"),
        ("DS", 0, 7, 7, "52-bit addresses with 4KB/16KB granules (LPA2)"),
        ("D128", 0, 8, 8, "VMSAv9-128 descriptors"),
        ("VAX", 0, 11, 10, "Virtual address size", {0: "48bit", 1: "52bit", 2: "56bit",
                                                   3: "reserved"}),
        ("STALL_MAX", 0, 31, 16, "Maximum outstanding stalled transactions"),
    ]),
    # 6.3.7
    "SMMU_IIDR": (4, [
        ("Implementer", 0, 11, 0, "JEP106 implementer code"),
        ("Revision", 0, 15, 12, "Minor revision"),
        ("Variant", 0, 19, 16, "Major revision"),
        ("ProductID", 0, 31, 20, "Product identifier"),
    ]),
    # 6.3.8
    "SMMU_AIDR": (4, [
        ("ArchMinorRev", 0, 3, 0, "Architecture minor revision (SMMUv3.x)"),
        ("ArchMajorRev", 0, 7, 4, "Architecture major revision (0 = SMMUv3)"),
    ]),
    "SMMU_CR0": (4, list(_CR0)),                                    # 6.3.9
    "SMMU_CR0ACK": (4, list(_CR0)),                                 # 6.3.10
    # 6.3.11
    "SMMU_CR1": (4, [
        ("QUEUE_IC", 0, 1, 0, "Queue access inner cacheability", _CACHE),
        ("QUEUE_OC", 0, 3, 2, "Queue access outer cacheability", _CACHE),
        ("QUEUE_SH", 0, 5, 4, "Queue access shareability", _SH),
        ("TABLE_IC", 0, 7, 6, "Table access inner cacheability", _CACHE),
        ("TABLE_OC", 0, 9, 8, "Table access outer cacheability", _CACHE),
        ("TABLE_SH", 0, 11, 10, "Table access shareability", _SH),
    ]),
    # 6.3.12
    "SMMU_CR2": (4, [
        ("E2H", 0, 0, 0, "EL2 StreamWorld is EL2-E2H"),
        ("RECINVSID", 0, 1, 1, "Record C_BAD_STREAMID for out-of-range StreamIDs"),
        ("PTM", 0, 2, 2, "Private TLB maintenance: ignore broadcast TLBI"),
        ("REC_CFG_ATS", 0, 3, 3, "Record configuration errors for ATS Translated traffic"),
    ]),
    # 6.3.13
    "SMMU_STATUSR": (4, [
        ("DORMANT", 0, 0, 0, "No cached configuration or translations"),
    ]),
    # 6.3.14
    "SMMU_GBPA": (4, [
        ("MemAttr", 0, 3, 0, "Memory type override (when MTCFG == 1)"),
        ("MTCFG", 0, 4, 4, "Override the incoming memory type"),
        ("ALLOCCFG", 0, 11, 8, "Allocation hints override"),
        ("SHCFG", 0, 13, 12, "Shareability", {0: "NSH", 1: "incoming", 2: "OSH", 3: "ISH"}),
        ("PRIVCFG", 0, 17, 16, "Privilege", {0: "incoming", 1: "reserved(incoming)",
                                             2: "unprivileged", 3: "privileged"}),
        ("INSTCFG", 0, 19, 18, "Instruction/data", {0: "incoming", 1: "reserved(incoming)",
                                                    2: "data", 3: "instruction"}),
        ("ABORT", 0, 20, 20, "Abort all incoming transactions while SMMUEN == 0"),
        ("Update", 0, 31, 31, "Write 1 with the new value; cleared when the update completes"),
    ]),
    "SMMU_IRQ_CTRL": (4, list(_IRQ_CTRL)),                          # 6.3.16
    "SMMU_IRQ_CTRLACK": (4, list(_IRQ_CTRL)),                       # 6.3.18
    "SMMU_GERROR": (4, list(_GERROR_BITS)),                         # 6.3.19
    "SMMU_GERRORN": (4, list(_GERROR_BITS)),                        # 6.3.20
    "SMMU_GERROR_IRQ_CFG0": (8, list(_IRQ_CFG0)),                   # 6.3.21
    "SMMU_GERROR_IRQ_CFG1": (4, list(_IRQ_CFG1)),                   # 6.3.22
    "SMMU_GERROR_IRQ_CFG2": (4, list(_IRQ_CFG2)),                   # 6.3.23
    # 6.3.24
    "SMMU_STRTAB_BASE": (8, [
        ("ADDR", 0, 55, 6, "Stream table base PA [55:6]", None, {"addr": 6}),
        ("RA", 0, 62, 62, "Read-allocate hint"),
    ]),
    # 6.3.25
    "SMMU_STRTAB_BASE_CFG": (4, [
        ("LOG2SIZE", 0, 5, 0, "Table covers 2^LOG2SIZE StreamIDs", None, _LOG2),
        ("SPLIT", 0, 10, 6, "2-level: StreamID bits resolved by the level 2 table (6, 8 or 10)",
         None, _LOG2),
        ("FMT", 0, 17, 16, "Format", {0: "linear", 1: "2level", 2: "reserved", 3: "reserved"}),
    ]),
    # 6.3.26 - 6.3.28
    "SMMU_CMDQ_BASE": (8, _Q_BASE + [("RA", 0, 62, 62, "Read-allocate hint")]),
    "SMMU_CMDQ_PROD": (4, [_WR]),
    "SMMU_CMDQ_CONS": (4, [_RD,
                           ("ERR", 0, 30, 24, "Command error code of the command at RD",
                            {0: "CERROR_NONE", 1: "CERROR_ILL", 2: "CERROR_ABT",
                             3: "CERROR_ATC_INV_SYNC"})]),
    # 6.3.29, 6.3.95, 6.3.96, 6.3.30 - 6.3.32
    "SMMU_EVENTQ_BASE": (8, _Q_BASE + [("WA", 0, 62, 62, "Write-allocate hint")]),
    "SMMU_EVENTQ_PROD": (4, [_WR, ("OVFLG", 0, 31, 31, "Event queue overflowed (toggles)")]),
    "SMMU_EVENTQ_CONS": (4, [_RD, ("OVACKFLG", 0, 31, 31, "Overflow acknowledge")]),
    "SMMU_EVENTQ_IRQ_CFG0": (8, list(_IRQ_CFG0)),
    "SMMU_EVENTQ_IRQ_CFG1": (4, list(_IRQ_CFG1)),
    "SMMU_EVENTQ_IRQ_CFG2": (4, list(_IRQ_CFG2)),
    # 6.3.33, 6.3.97, 6.3.98, 6.3.34 - 6.3.36
    "SMMU_PRIQ_BASE": (8, _Q_BASE + [("WA", 0, 62, 62, "Write-allocate hint")]),
    "SMMU_PRIQ_PROD": (4, [_WR, ("OVFLG", 0, 31, 31, "PRI queue overflowed (toggles)")]),
    "SMMU_PRIQ_CONS": (4, [_RD, ("OVACKFLG", 0, 31, 31, "Overflow acknowledge")]),
    "SMMU_PRIQ_IRQ_CFG0": (8, list(_IRQ_CFG0)),
    "SMMU_PRIQ_IRQ_CFG1": (4, list(_IRQ_CFG1)),
    "SMMU_PRIQ_IRQ_CFG2": (4, list(_IRQ_CFG2) + [
        ("LO", 0, 31, 31, "Last Only: interrupt only for PRI messages with L set")]),
}

OFFSETS = {
    "SMMU_IDR0": 0x0000, "SMMU_IDR1": 0x0004, "SMMU_IDR2": 0x0008, "SMMU_IDR3": 0x000C,
    "SMMU_IDR4": 0x0010, "SMMU_IDR5": 0x0014, "SMMU_IIDR": 0x0018, "SMMU_AIDR": 0x001C,
    "SMMU_CR0": 0x0020, "SMMU_CR0ACK": 0x0024, "SMMU_CR1": 0x0028, "SMMU_CR2": 0x002C,
    "SMMU_STATUSR": 0x0040, "SMMU_GBPA": 0x0044,
    "SMMU_IRQ_CTRL": 0x0050, "SMMU_IRQ_CTRLACK": 0x0054,
    "SMMU_GERROR": 0x0060, "SMMU_GERRORN": 0x0064,
    "SMMU_GERROR_IRQ_CFG0": 0x0068, "SMMU_GERROR_IRQ_CFG1": 0x0070,
    "SMMU_GERROR_IRQ_CFG2": 0x0074,
    "SMMU_STRTAB_BASE": 0x0080, "SMMU_STRTAB_BASE_CFG": 0x0088,
    "SMMU_CMDQ_BASE": 0x0090, "SMMU_CMDQ_PROD": 0x0098, "SMMU_CMDQ_CONS": 0x009C,
    "SMMU_EVENTQ_BASE": 0x00A0,
    "SMMU_EVENTQ_PROD": 0x100A8, "SMMU_EVENTQ_CONS": 0x100AC,     # page 1 (QEMU: also 0xA8/0xAC)
    "SMMU_EVENTQ_IRQ_CFG0": 0x00B0, "SMMU_EVENTQ_IRQ_CFG1": 0x00B8,
    "SMMU_EVENTQ_IRQ_CFG2": 0x00BC,
    "SMMU_PRIQ_BASE": 0x00C0,
    "SMMU_PRIQ_PROD": 0x100C8, "SMMU_PRIQ_CONS": 0x100CC,         # page 1 (QEMU: also 0xC8/0xCC)
    "SMMU_PRIQ_IRQ_CFG0": 0x00D0, "SMMU_PRIQ_IRQ_CFG1": 0x00D8,
    "SMMU_PRIQ_IRQ_CFG2": 0x00DC,
}

# Page-1 registers: QEMU also answers at (offset & 0xFFFF) in page 0.
PAGE1 = ("SMMU_EVENTQ_PROD", "SMMU_EVENTQ_CONS", "SMMU_PRIQ_PROD", "SMMU_PRIQ_CONS")

ALIASES = {
    "SMMU_EVTQ_BASE": "SMMU_EVENTQ_BASE",
    "SMMU_EVTQ_PROD": "SMMU_EVENTQ_PROD",
    "SMMU_EVTQ_CONS": "SMMU_EVENTQ_CONS",
    "SMMU_EVTQ_IRQ_CFG0": "SMMU_EVENTQ_IRQ_CFG0",
    "SMMU_EVTQ_IRQ_CFG1": "SMMU_EVENTQ_IRQ_CFG1",
    "SMMU_EVTQ_IRQ_CFG2": "SMMU_EVENTQ_IRQ_CFG2",
}

# Architected reset values (IHI 0070 6.3, "The reset behavior of this field is"), and which bits
# of each value the architecture defines. GBPA: only Update resets to 0; ABORT and the attribute
# fields reset to IMPLEMENTATION DEFINED values (QEMU: 0x1000, SHCFG = incoming). PRIQ_PROD:
# only OVFLG resets to 0.
RESET = {
    "SMMU_CR0": 0, "SMMU_CR0ACK": 0,
    "SMMU_IRQ_CTRL": 0, "SMMU_IRQ_CTRLACK": 0,
    "SMMU_GERROR": 0, "SMMU_GERRORN": 0,
    "SMMU_STATUSR": 0,
    "SMMU_GBPA": 0,
    "SMMU_PRIQ_PROD": 0,
}
RESET_MASK = {
    "SMMU_CR0": 0x5DF, "SMMU_CR0ACK": 0x5DF,
    "SMMU_IRQ_CTRL": 0x7, "SMMU_IRQ_CTRLACK": 0x7,
    "SMMU_GERROR": 0x7FD, "SMMU_GERRORN": 0x7FD,
    "SMMU_STATUSR": 0x1,
    "SMMU_GBPA": 0x80000000,
    "SMMU_PRIQ_PROD": 0x80000000,
}
