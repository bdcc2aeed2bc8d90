"""VT-d queued-invalidation descriptors (VT-d spec 6.5.2).

Pure data, no imports. Every descriptor is 128 bits; with IQA_REG.DW=1 (256-bit descriptors) the
upper 128 bits are reserved for every type listed here, so the tables cover the low 128 bits.
The descriptor type is 7 bits split in two fields: Type[3:0] at bits 3:0 (TYPE_LO) and Type[6:4]
at bits 11:9 (TYPE_HI); type = TYPE_HI << 4 | TYPE_LO. CODES["VtdInvDscType"] names the types.
Address fields are in dword 1 (bits 127:64 of the descriptor).
"""

_TYPE = [("TYPE_LO", 0, 3, 0, "Descriptor type [3:0]"),
         ("TYPE_HI", 0, 11, 9, "Descriptor type [6:4]")]
_ADDR = ("ADDR", 1, 63, 12, "Address [63:12] (bits 127:76)", None, {"addr": 12})
_AM = ("AM", 1, 5, 0, "Address mask: 2^AM pages, ADDR aligned to it", None, {"log2": True})
_IH = ("IH", 1, 6, 6, "Invalidation hint: only leaf entries changed (paging-structure caches "
                      "kept)")
_PFSID = [("PFSID_LO", 0, 15, 12, "Physical function source-ID [3:0]"),
          ("PFSID_HI", 0, 63, 52, "Physical function source-ID [15:4]")]

INV_DSC_TYPES = {
    "CC_INV_DSC_TYPE": 0x1,         # context-cache
    "IOTLB_INV_DSC_TYPE": 0x2,
    "DEV_TLB_INV_DSC_TYPE": 0x3,    # device-TLB
    "IEC_INV_DSC_TYPE": 0x4,        # interrupt entry cache
    "INV_WAIT_DSC_TYPE": 0x5,       # invalidation wait
    "P_IOTLB_INV_DSC_TYPE": 0x6,    # PASID-based IOTLB
    "PC_INV_DSC_TYPE": 0x7,         # PASID-cache
    "P_DEV_TLB_INV_DSC_TYPE": 0x8,  # PASID-based device-TLB
}
# The format of each descriptor type.
INV_DSC_FORMAT = {v: k[:-len("_TYPE")] for k, v in INV_DSC_TYPES.items()}

FORMATS = {
    # 6.5.2.1
    "CC_INV_DSC": (16, _TYPE + [
        ("G", 0, 5, 4, "Granularity", {0: "reserved", 1: "global", 2: "domain", 3: "device"}),
        ("DID", 0, 31, 16, "Domain-ID"),
        ("SID", 0, 47, 32, "Source-ID (device-selective)"),
        ("FM", 0, 49, 48, "Function mask: low SID bits ignored", {
            0: "none", 1: "bit2", 2: "bits2_1", 3: "bits2_0"}),
    ]),
    # 6.5.2.3 (legacy-mode and second-stage mappings by domain)
    "IOTLB_INV_DSC": (16, _TYPE + [
        ("G", 0, 5, 4, "Granularity", {0: "reserved", 1: "global", 2: "domain", 3: "page"}),
        ("DW", 0, 6, 6, "Drain writes"),
        ("DR", 0, 7, 7, "Drain reads"),
        ("DID", 0, 31, 16, "Domain-ID"),
        _AM, _IH, _ADDR,
    ]),
    # 6.5.2.5
    "DEV_TLB_INV_DSC": (16, _TYPE + _PFSID + [
        ("MIP", 0, 20, 16, "Max invalidations pending", None, {"number": True}),
        ("SID", 0, 47, 32, "Source-ID of the device"),
        ("S", 1, 0, 0, "Size: the range is encoded in ADDR's low bits"),
        _ADDR,
    ]),
    # 6.5.2.7
    "IEC_INV_DSC": (16, _TYPE + [
        ("G", 0, 4, 4, "Granularity", {0: "global", 1: "index"}),
        ("IM", 0, 31, 27, "Index mask: 2^IM entries from IIDX", None, {"log2": True}),
        ("IIDX", 0, 47, 32, "Interrupt index"),
    ]),
    # 6.5.2.8
    "INV_WAIT_DSC": (16, _TYPE + [
        ("IF", 0, 4, 4, "Interrupt flag: signal completion through IECTL_REG"),
        ("SW", 0, 5, 5, "Status write: write STATUS_DATA to STATUS_ADDR"),
        ("FN", 0, 6, 6, "Fence: later descriptors wait for this one"),
        ("PD", 0, 7, 7, "Page-request drain"),
        ("STATUS_DATA", 0, 63, 32, "Status data"),
        ("STATUS_ADDR", 1, 63, 2, "Status address [63:2]", None, {"addr": 2}),
    ]),
    # 6.5.2.4
    "P_IOTLB_INV_DSC": (16, _TYPE + [
        ("G", 0, 5, 4, "Granularity: 2 all mappings of the PASID (non-global), 3 page-selective "
                       "within the PASID (0 and 1 were rev 2.x extended-mode values)",
         {0: "reserved", 1: "reserved", 2: "pasid", 3: "page"}),
        ("DID", 0, 31, 16, "Domain-ID"),
        ("PASID", 0, 51, 32, "PASID"),
        _AM, _IH, _ADDR,
    ]),
    # 6.5.2.2
    "PC_INV_DSC": (16, _TYPE + [
        ("G", 0, 5, 4, "Granularity", {0: "domain", 1: "pasid", 2: "reserved", 3: "global"}),
        ("DID", 0, 31, 16, "Domain-ID"),
        ("PASID", 0, 51, 32, "PASID (PASID-selective)"),
    ]),
    # 6.5.2.6
    "P_DEV_TLB_INV_DSC": (16, _TYPE + _PFSID + [
        ("MIP", 0, 8, 4, "Max invalidations pending", None, {"number": True}),
        ("SID", 0, 31, 16, "Source-ID of the device"),
        ("PASID", 0, 51, 32, "PASID"),
        ("G", 1, 0, 0, "Global: all PASIDs' global mappings"),
        ("S", 1, 11, 11, "Size: the range is encoded in ADDR's low bits"),
        _ADDR,
    ]),
}

CODES = {"VtdInvDscType": INV_DSC_TYPES}
