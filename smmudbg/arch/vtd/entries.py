"""VT-d translation structures: root and context entries (legacy and scalable mode), the PASID
directory entry and the PASID table entry (VT-d spec 9.1-9.6).

Pure data, no imports; tuple format as smmudbg/arch/smmuv3/fields.py. Rev 4.x renamed the
second/first "level" fields to "stage" (SLPTPTR -> SSPTPTR, FLPTPTR -> FSPTPTR, SLEE -> SSEE,
SLADE -> SSADE, FLPM -> FSPM); the names here are the rev 3.x ones Linux and QEMU still use, the
new name is in the doc.

Indexing (the walker's, stated here for the reader): the root table is 256 x 16 bytes indexed by
bus; a legacy context table 256 x 16 bytes indexed by devfn; in scalable mode the root entry's
lower half (LCTP) points to the context table of devfn 0-127 and the upper half (UCTP) to devfn
128-255, each 128 x 32 bytes; the PASID directory is indexed by PASID[19:6] (8-byte entries) and a
PASID table by PASID[5:0] (64-byte entries).
"""

_ADDR12 = {"addr": 12}
# Address widths: the AW encoding of a context / PASID table entry (VT-d 9.4, 9.6) and the
# second-stage levels it implies (3, 4, 5).
AW_BITS = {1: 39, 2: 48, 3: 57}
_AW = {0: "reserved(30bit)", 1: "39bit", 2: "48bit", 3: "57bit", 4: "reserved(64bit)",
       5: "reserved", 6: "reserved", 7: "reserved"}
_AW_ATTRS = {"addr_bits": AW_BITS}

FORMATS = {
    # 9.1: legacy-mode root entry, 128 bits; bits 127:64 reserved.
    "ROOT_ENTRY": (16, [
        ("P", 0, 0, 0, "Present"),
        ("CTP", 0, 63, 12, "Context table pointer [63:12]", None, _ADDR12),
    ]),
    # 9.2: scalable-mode root entry: the lower half for devfn 0-127, the upper for 128-255.
    "SM_ROOT_ENTRY": (16, [
        ("LP", 0, 0, 0, "Lower present (devfn 0-127)"),
        ("LCTP", 0, 63, 12, "Lower context table pointer [63:12]", None, _ADDR12),
        ("UP", 1, 0, 0, "Upper present (devfn 128-255)"),
        ("UCTP", 1, 63, 12, "Upper context table pointer [63:12] (bits 127:76)", None, _ADDR12),
    ]),
    # 9.3: legacy-mode context entry, 128 bits.
    "CONTEXT_ENTRY": (16, [
        ("P", 0, 0, 0, "Present"),
        ("FPD", 0, 1, 1, "Fault processing disable: faults are not recorded"),
        ("TT", 0, 3, 2, "Translation type", {
            0: "untranslated", 1: "all_requests", 2: "pass_through", 3: "reserved"}),
        ("SLPTPTR", 0, 63, 12, "Second-stage page table pointer [63:12] (SSPTPTR)", None,
         _ADDR12),
        ("AW", 1, 2, 0, "Address width (second-stage levels)", _AW, _AW_ATTRS),
        ("AVAIL", 1, 6, 3, "Available to software (ignored)"),
        ("DID", 1, 23, 8, "Domain identifier (bits 87:72)"),
    ]),
    # 9.4: scalable-mode context entry, 256 bits; dwords 2-3 reserved.
    "SM_CONTEXT_ENTRY": (32, [
        ("P", 0, 0, 0, "Present"),
        ("FPD", 0, 1, 1, "Fault processing disable"),
        ("DTE", 0, 2, 2, "Device-TLB enable (translation requests allowed)"),
        ("PASIDE", 0, 3, 3, "PASID enable (requests with PASID allowed)"),
        ("PRE", 0, 4, 4, "Page request enable"),
        ("PDTS", 0, 11, 9, "PASID directory size: 2^(PDTS+7) entries", None, {"number": True}),
        ("PASIDDIRPTR", 0, 63, 12, "PASID directory pointer [63:12]", None, _ADDR12),
        ("RID_PASID", 1, 19, 0, "PASID used for requests without PASID (bits 83:64)"),
        ("RID_PRIV", 1, 20, 20, "Privilege of requests without PASID (1 = supervisor)"),
    ]),
    # 9.5: scalable-mode PASID directory entry, 64 bits.
    "PASID_DIR_ENTRY": (8, [
        ("P", 0, 0, 0, "Present"),
        ("FPD", 0, 1, 1, "Fault processing disable"),
        ("SMPTBLPTR", 0, 63, 12, "Scalable-mode PASID table pointer [63:12]", None, _ADDR12),
    ]),
    # 9.6: scalable-mode PASID table entry, 512 bits; dwords 3-7 reserved.
    "PASID_ENTRY": (64, [
        ("P", 0, 0, 0, "Present"),
        ("FPD", 0, 1, 1, "Fault processing disable"),
        ("AW", 0, 4, 2, "Second-stage address width (levels)", _AW, _AW_ATTRS),
        ("SLEE", 0, 5, 5, "Second-stage execute enable: X is checked (SSEE)"),
        ("PGTT", 0, 8, 6, "PASID granular translation type", {
            0: "reserved", 1: "first_stage", 2: "second_stage", 3: "nested",
            4: "pass_through", 5: "reserved", 6: "reserved", 7: "reserved"}),
        ("SLADE", 0, 9, 9, "Second-stage accessed/dirty enable (SSADE)"),
        ("SLPTPTR", 0, 63, 12, "Second-stage page table pointer [63:12] (SSPTPTR)", None,
         _ADDR12),
        ("DID", 1, 15, 0, "Domain identifier (bits 79:64)"),
        ("PWSNP", 1, 23, 23, "Page-walk snoop"),
        ("PGSNP", 1, 24, 24, "Page snoop: every access snoops"),
        ("CD", 1, 25, 25, "Cache disable (first stage)"),
        ("EMTE", 1, 26, 26, "Extended memory type enable"),
        ("EMT", 1, 29, 27, "Extended memory type"),
        ("PWT", 1, 30, 30, "Page-level write-through (first-stage root)"),
        ("PCD", 1, 31, 31, "Page-level cache disable (first-stage root)"),
        ("PAT", 1, 63, 32, "Page attribute table (first stage)"),
        ("SRE", 2, 0, 0, "Supervisor request enable"),
        ("ERE", 2, 1, 1, "Execute request enable"),
        ("FLPM", 2, 3, 2, "First-stage paging mode (FSPM)", {
            0: "4level", 1: "5level", 2: "reserved", 3: "reserved"},
         {"addr_bits": {0: 48, 1: 57}}),
        ("WPE", 2, 4, 4, "Write protect enable: supervisor writes honour R/W"),
        ("NXE", 2, 5, 5, "No-execute enable (deprecated)"),
        ("SMEP", 2, 6, 6, "Supervisor mode execute prevention (deprecated)"),
        ("EAFE", 2, 7, 7, "Extended accessed flag enable"),
        ("FLPTPTR", 2, 63, 12, "First-stage page table pointer [63:12] (FSPTPTR)", None,
         _ADDR12),
    ]),
}

# Table geometry (9.4-9.6), not field encodings: a scalable-mode context table holds 2^7
# 32-byte entries indexed by devfn[6:0] (devfn[7] picks the upper or lower table of the root
# entry); a PASID table holds 2^6 64-byte entries indexed by PASID[5:0]; the PASID directory,
# indexed by PASID[19:6], has 2^(PDTS + 7) entries.
CODES = {"VtdTableGeometry": {"SM_CONTEXT_INDEX_BITS": 7, "PASID_TABLE_INDEX_BITS": 6,
                              "PASID_DIR_PDTS_BASE": 7}}
