"""VT-d remapping-unit registers as field tables (VT-d spec chapter 11, "Register Descriptions").

Pure data, no imports, same tuple format as smmudbg/arch/smmuv3/fields.py:
(name, dword, hi, lo, doc[, enum[, attrs]]). Register and field names are the spec's (CAP_REG.SAGAW,
RTADDR_REG.TTM, FRCD_REG.FR). `size` is 4 or 8 bytes; a fault recording register is 16.

OFFSETS gives each register's fixed offset from the unit's register base. Two groups move:
  * the IOTLB registers sit at ECAP_REG.IRO * 16: IVA_REG at +0, IOTLB_REG at +8
    (IOTLB_OFFSETS);
  * the fault recording registers sit at CAP_REG.FRO * 16, one 16-byte FRCD_REG each, CAP_REG.NFR
    + 1 of them (FRCD_REG_SIZE).
Deprecated fields still in the register layout (CAP_REG bit 23, ECAP_REG.ECS bit 24, FSTS_REG.PRO
bit 7, GCMD_REG.SFL/EAFL) are listed with "deprecated" in their doc so a set bit is shown, not
hidden as reserved.
"""

_NUMBER = {"number": True}
_LOG2 = {"log2": True}
# CAP_REG.SAGAW is a bitmap: bit n set = the n-th second-stage width is supported.
_SAGAW_DOC = ("Supported adjusted guest address widths, a bitmap: bit 1 39-bit (3-level), bit 2 "
              "48-bit (4-level), bit 3 57-bit (5-level); bits 0 and 4 reserved")
# Granularities: the request fields (CIRG, IIRG) and the actual ones (CAIG, IAIG) share them.
_CC_GRAN = {0: "reserved", 1: "global", 2: "domain", 3: "device"}
_IOTLB_GRAN = {0: "reserved", 1: "global", 2: "domain", 3: "page"}

_MSG_DATA = [("IMD", 0, 15, 0, "Interrupt message data")]
_MSG_ADDR = [("MA", 0, 31, 2, "Message address [31:2]", None, {"addr": 2})]
_MSG_UADDR = [("MUA", 0, 31, 0, "Message upper address [63:32]", None, {"addr": 32})]
_EVT_CTL = [("IP", 0, 30, 30, "Interrupt pending"),
            ("IM", 0, 31, 31, "Interrupt mask")]

FORMATS = {
    # 11.4.1
    "VER_REG": (4, [
        ("MIN", 0, 3, 0, "Minor version number", None, _NUMBER),
        ("MAX", 0, 7, 4, "Major version number", None, _NUMBER),
    ]),
    # 11.4.2
    "CAP_REG": (8, [
        ("ND", 0, 2, 0, "Number of domains supported: 2^(4 + 2*ND)", None, _NUMBER),
        ("AFL", 0, 3, 3, "Advanced fault logging (deprecated)"),
        ("RWBF", 0, 4, 4, "Required write-buffer flushing"),
        ("PLMR", 0, 5, 5, "Protected low-memory region"),
        ("PHMR", 0, 6, 6, "Protected high-memory region"),
        ("CM", 0, 7, 7, "Caching mode: not-present and erroneous entries may be cached"),
        ("SAGAW", 0, 12, 8, _SAGAW_DOC),
        ("MGAW", 0, 21, 16, "Maximum guest address width minus 1", None, _NUMBER),
        ("ZLR", 0, 22, 22, "Zero-length read"),
        ("DEP23", 0, 23, 23, "Deprecated (was ISOCH); reads 0"),
        ("FRO", 0, 33, 24, "Fault-recording register offset / 16", None, _NUMBER),
        ("SLLPS", 0, 37, 34, "Second-stage large pages: bit 0 2MB, bit 1 1GB (bits 2-3 "
                             "reserved)"),
        ("PSI", 0, 39, 39, "Page-selective invalidation"),
        ("NFR", 0, 47, 40, "Number of fault-recording registers minus 1", None, _NUMBER),
        ("MAMV", 0, 53, 48, "Maximum address mask value for page-selective invalidation",
         None, _LOG2),
        ("DWD", 0, 54, 54, "Write draining"),
        ("DRD", 0, 55, 55, "Read draining"),
        ("FL1GP", 0, 56, 56, "First-stage 1GB pages"),
        ("PI", 0, 59, 59, "Posted interrupts"),
        ("FL5LP", 0, 60, 60, "First-stage 5-level paging"),
        ("ESIRTPS", 0, 62, 62, "Enhanced SIRTP: setting IRTP also invalidates the interrupt "
                               "entry cache"),
        ("ESRTPS", 0, 63, 63, "Enhanced SRTP: setting RTP also invalidates the caches"),
    ]),
    # 11.4.3
    "ECAP_REG": (8, [
        ("C", 0, 0, 0, "Page-walk coherency (legacy mode)"),
        ("QI", 0, 1, 1, "Queued invalidation"),
        ("DT", 0, 2, 2, "Device-TLBs"),
        ("IR", 0, 3, 3, "Interrupt remapping"),
        ("EIM", 0, 4, 4, "Extended interrupt mode (32-bit x2APIC destination IDs)"),
        ("PT", 0, 6, 6, "Pass-through translation"),
        ("SC", 0, 7, 7, "Snoop control (SNP in second-stage leaf entries)"),
        ("IRO", 0, 17, 8, "IOTLB register offset / 16", None, _NUMBER),
        ("MHMV", 0, 23, 20, "Maximum handle mask value (iec_inv_dsc IM)", None, _LOG2),
        ("ECS", 0, 24, 24, "Extended context support (deprecated)"),
        ("MTS", 0, 25, 25, "Memory type support"),
        ("NEST", 0, 26, 26, "Nested translation"),
        ("DEP27", 0, 27, 27, "Deprecated (was DIS); reads 0"),
        ("DEP28", 0, 28, 28, "Deprecated (was PASID in rev 2.x); reads 0"),
        ("PRS", 0, 29, 29, "Page requests"),
        ("ERS", 0, 30, 30, "Execute requests"),
        ("SRS", 0, 31, 31, "Supervisor requests"),
        ("NWFS", 0, 33, 33, "No-write flag in translation completions"),
        ("EAFS", 0, 34, 34, "Extended accessed flag (first-stage EA bit)"),
        ("PSS", 0, 39, 35, "PASID size supported minus 1", None, _NUMBER),
        ("PASID", 0, 40, 40, "Process address space IDs"),
        ("DIT", 0, 41, 41, "Device-TLB invalidation throttling"),
        ("PDS", 0, 42, 42, "Page-request drain"),
        ("SMTS", 0, 43, 43, "Scalable-mode translation"),
        ("VCS", 0, 44, 44, "Virtual command"),
        ("SLADS", 0, 45, 45, "Second-stage accessed/dirty"),
        ("SLTS", 0, 46, 46, "Second-stage translation"),
        ("FLTS", 0, 47, 47, "First-stage translation"),
        ("SMPWCS", 0, 48, 48, "Scalable-mode page-walk coherency"),
        ("RPS", 0, 49, 49, "RID_PASID"),
        ("ADMS", 0, 52, 52, "Abort DMA mode (RTADDR_REG.TTM = 11b)"),
        ("RPRIVS", 0, 53, 53, "RID_PRIV"),
    ]),
    # 11.4.4: writes are commands; GSTS_REG reports them at the same bit positions.
    "GCMD_REG": (4, [
        ("CFI", 0, 23, 23, "Compatibility format interrupts allowed"),
        ("SIRTP", 0, 24, 24, "Set interrupt remap table pointer"),
        ("IRE", 0, 25, 25, "Interrupt remapping enable"),
        ("QIE", 0, 26, 26, "Queued invalidation enable"),
        ("WBF", 0, 27, 27, "Write buffer flush"),
        ("EAFL", 0, 28, 28, "Enable advanced fault logging (deprecated)"),
        ("SFL", 0, 29, 29, "Set fault log (deprecated)"),
        ("SRTP", 0, 30, 30, "Set root table pointer"),
        ("TE", 0, 31, 31, "Translation enable"),
    ]),
    # 11.4.5
    "GSTS_REG": (4, [
        ("CFIS", 0, 23, 23, "Compatibility format interrupts pass through (when EIME=0)"),
        ("IRTPS", 0, 24, 24, "Interrupt remapping table pointer latched"),
        ("IRES", 0, 25, 25, "Interrupt remapping enabled"),
        ("QIES", 0, 26, 26, "Queued invalidation enabled"),
        ("WBFS", 0, 27, 27, "Write buffer flush pending"),
        ("AFLS", 0, 28, 28, "Advanced fault logging status (deprecated)"),
        ("FLS", 0, 29, 29, "Fault log status (deprecated)"),
        ("RTPS", 0, 30, 30, "Root table pointer latched"),
        ("TES", 0, 31, 31, "Translation enabled"),
    ]),
    # 11.4.6
    "RTADDR_REG": (8, [
        ("TTM", 0, 11, 10, "Translation table mode", {
            0: "legacy", 1: "scalable", 2: "reserved", 3: "abort_dma"}),
        ("RTA", 0, 63, 12, "Root table address [63:12]", None, {"addr": 12}),
    ]),
    # 11.4.7
    "CCMD_REG": (8, [
        ("DID", 0, 15, 0, "Domain-ID (domain-selective and device-selective)"),
        ("SID", 0, 31, 16, "Source-ID (device-selective)"),
        ("FM", 0, 33, 32, "Function mask: low SID bits ignored", {
            0: "none", 1: "bit2", 2: "bits2_1", 3: "bits2_0"}),
        ("CAIG", 0, 60, 59, "Context actual invalidation granularity", _CC_GRAN),
        ("CIRG", 0, 62, 61, "Context invalidation request granularity", _CC_GRAN),
        ("ICC", 0, 63, 63, "Invalidate context-cache (cleared when done)"),
    ]),
    # 11.4.8.1, at ECAP_REG.IRO * 16 + 0
    "IVA_REG": (8, [
        ("AM", 0, 5, 0, "Address mask: 2^AM pages", None, _LOG2),
        ("IH", 0, 6, 6, "Invalidation hint: leaf entries only"),
        ("ADDR", 0, 63, 12, "Page address [63:12]", None, {"addr": 12}),
    ]),
    # 11.4.8.1, at ECAP_REG.IRO * 16 + 8
    "IOTLB_REG": (8, [
        ("DID", 0, 47, 32, "Domain-ID"),
        ("DW", 0, 48, 48, "Drain writes"),
        ("DR", 0, 49, 49, "Drain reads"),
        ("IAIG", 0, 58, 57, "IOTLB actual invalidation granularity", _IOTLB_GRAN),
        ("IIRG", 0, 61, 60, "IOTLB invalidation request granularity", _IOTLB_GRAN),
        ("IVT", 0, 63, 63, "Invalidate IOTLB (cleared when done)"),
    ]),
    # 11.4.9.1
    "FSTS_REG": (4, [
        ("PFO", 0, 0, 0, "Primary fault overflow"),
        ("PPF", 0, 1, 1, "Primary pending fault (an FRCD_REG has F set)"),
        ("AFO", 0, 2, 2, "Advanced fault overflow (deprecated)"),
        ("APF", 0, 3, 3, "Advanced pending fault (deprecated)"),
        ("IQE", 0, 4, 4, "Invalidation queue error"),
        ("ICE", 0, 5, 5, "Invalidation completion error"),
        ("ITE", 0, 6, 6, "Invalidation time-out error"),
        ("PRO", 0, 7, 7, "Page request overflow (deprecated: see PRS_REG)"),
        ("FRI", 0, 15, 8, "Fault record index of the first pending fault", None, _NUMBER),
    ]),
    "FECTL_REG": (4, list(_EVT_CTL)),
    "FEDATA_REG": (4, list(_MSG_DATA)),
    "FEADDR_REG": (4, list(_MSG_ADDR)),
    "FEUADDR_REG": (4, list(_MSG_UADDR)),
    # 11.4.9.4: 128 bits at CAP_REG.FRO * 16 + 16 * n; dword 1 holds bits 127:64.
    "FRCD_REG": (16, [
        ("FI", 0, 63, 12, "Fault information: the page address of the faulted request (or, for "
                          "an interrupt-remapping fault, the interrupt index in FI[63:48])",
         None, {"addr": 12}),
        ("SID", 1, 15, 0, "Source-ID (requester ID) of the faulted request"),
        ("T2", 1, 28, 28, "Type bit 2: with T1, 00 write, 01 read (T1=1), 10 page request, "
                          "11 AtomicOp"),
        ("PRIV", 1, 29, 29, "Privilege-mode (supervisor) requested"),
        ("EXE", 1, 30, 30, "Execute permission requested"),
        ("PP", 1, 31, 31, "PASID present"),
        ("FR", 1, 39, 32, "Fault reason (faults.py FAULT_REASONS)"),
        ("PV", 1, 59, 40, "PASID value"),
        ("AT", 1, 61, 60, "Address type of the faulted request", {
            0: "untranslated", 1: "translation_request", 2: "translated", 3: "reserved"}),
        ("T1", 1, 62, 62, "Type bit 1: 0 write, 1 read (or AtomicOp with T2)"),
        ("F", 1, 63, 63, "Fault recorded (write 1 to clear)"),
    ]),
    # 11.4.9.5 (deprecated)
    "AFLOG_REG": (8, [
        ("FLS", 0, 11, 9, "Fault log size: 2^FLS pages", None, _LOG2),
        ("FLA", 0, 63, 12, "Fault log address [63:12]", None, {"addr": 12}),
    ]),
    # 11.4.10
    "PMEN_REG": (4, [
        ("PRS", 0, 0, 0, "Protected region status"),
        ("EPM", 0, 31, 31, "Enable protected memory"),
    ]),
    "PLMBASE_REG": (4, [("PLMB", 0, 31, 0, "Protected low-memory base")]),
    "PLMLIMIT_REG": (4, [("PLML", 0, 31, 0, "Protected low-memory limit")]),
    "PHMBASE_REG": (8, [("PHMB", 0, 63, 0, "Protected high-memory base")]),
    "PHMLIMIT_REG": (8, [("PHML", 0, 63, 0, "Protected high-memory limit")]),
    # 11.4.11: QH / QT hold the byte offset [18:4] of a 128-bit descriptor (with
    # IQA_REG.DW=1, a 256-bit descriptor, bit 4 must be 0).
    "IQH_REG": (8, [("QH", 0, 18, 4, "Queue head: offset of the next descriptor / 16")]),
    "IQT_REG": (8, [("QT", 0, 18, 4, "Queue tail: offset of the next free slot / 16")]),
    "IQA_REG": (8, [
        ("QS", 0, 2, 0, "Queue size: 2^QS 4KB pages", None, _LOG2),
        ("DW", 0, 11, 11, "Descriptor width", {0: "128bit", 1: "256bit"}),
        ("IQA", 0, 63, 12, "Invalidation queue base address [63:12]", None, {"addr": 12}),
    ]),
    "ICS_REG": (4, [("IWC", 0, 0, 0, "Invalidation wait descriptor complete")]),
    "IECTL_REG": (4, list(_EVT_CTL)),
    "IEDATA_REG": (4, list(_MSG_DATA)),
    "IEADDR_REG": (4, list(_MSG_ADDR)),
    "IEUADDR_REG": (4, list(_MSG_UADDR)),
    "IQERCD_REG": (8, [
        ("IQEI", 0, 3, 0, "Invalidation queue error information", {
            0: "no_info", 1: "tail_beyond_queue", 2: "descriptor_fetch_error",
            3: "invalid_descriptor_type", 4: "reserved_field_set", 5: "invalid_width",
            6: "tail_misaligned", 7: "invalid_ttm"}),
        ("ITESID", 0, 47, 32, "Source-ID of the invalidation time-out"),
        ("ICESID", 0, 63, 48, "Source-ID of the invalidation completion error"),
    ]),
    # 11.4.12
    "IRTA_REG": (8, [
        ("S", 0, 3, 0, "Table size: 2^(S+1) entries", None, _NUMBER),
        ("EIME", 0, 11, 11, "Extended interrupt mode: 32-bit x2APIC destination IDs"),
        ("IRTA", 0, 63, 12, "Interrupt remapping table address [63:12]", None, {"addr": 12}),
    ]),
    # 11.4.13: page request queue; descriptors are 32 bytes, so head/tail are [18:5].
    "PQH_REG": (8, [("PQH", 0, 18, 5, "Page queue head: offset / 32")]),
    "PQT_REG": (8, [("PQT", 0, 18, 5, "Page queue tail: offset / 32")]),
    "PQA_REG": (8, [
        ("PQS", 0, 2, 0, "Page queue size: 2^PQS 4KB pages", None, _LOG2),
        ("PQA", 0, 63, 12, "Page request queue base address [63:12]", None, {"addr": 12}),
    ]),
    "PRS_REG": (4, [
        ("PPR", 0, 0, 0, "Pending page request"),
        ("PRO", 0, 1, 1, "Page request overflow"),
    ]),
    "PECTL_REG": (4, list(_EVT_CTL)),
    "PEDATA_REG": (4, list(_MSG_DATA)),
    "PEADDR_REG": (4, list(_MSG_ADDR)),
    "PEUADDR_REG": (4, list(_MSG_UADDR)),
}

# Fixed offsets from the register base (11.2). The IOTLB and fault recording registers move:
# see IOTLB_OFFSETS and FRCD_REG_SIZE.
OFFSETS = {
    "VER_REG": 0x000, "CAP_REG": 0x008, "ECAP_REG": 0x010, "GCMD_REG": 0x018,
    "GSTS_REG": 0x01C, "RTADDR_REG": 0x020, "CCMD_REG": 0x028, "FSTS_REG": 0x034,
    "FECTL_REG": 0x038, "FEDATA_REG": 0x03C, "FEADDR_REG": 0x040, "FEUADDR_REG": 0x044,
    "AFLOG_REG": 0x058, "PMEN_REG": 0x064, "PLMBASE_REG": 0x068, "PLMLIMIT_REG": 0x06C,
    "PHMBASE_REG": 0x070, "PHMLIMIT_REG": 0x078, "IQH_REG": 0x080, "IQT_REG": 0x088,
    "IQA_REG": 0x090, "ICS_REG": 0x09C, "IECTL_REG": 0x0A0, "IEDATA_REG": 0x0A4,
    "IEADDR_REG": 0x0A8, "IEUADDR_REG": 0x0AC, "IQERCD_REG": 0x0B0, "IRTA_REG": 0x0B8,
    "PQH_REG": 0x0C0, "PQT_REG": 0x0C8, "PQA_REG": 0x0D0, "PRS_REG": 0x0DC,
    "PECTL_REG": 0x0E0, "PEDATA_REG": 0x0E4, "PEADDR_REG": 0x0E8, "PEUADDR_REG": 0x0EC,
}
# Relative to ECAP_REG.IRO * 16.
IOTLB_OFFSETS = {"IVA_REG": 0x0, "IOTLB_REG": 0x8}
# Fault recording register n is at CAP_REG.FRO * 16 + FRCD_REG_SIZE * n.
FRCD_REG_SIZE = 16
# 11.4.9.4: an interrupt-remapping fault records the interrupt_index in FI[63:48], i.e. bits 63:48
# of the record's low quadword.
CODES = {"VtdFaultInfo": {"FI_INTR_INDEX_SHIFT": 48}}
