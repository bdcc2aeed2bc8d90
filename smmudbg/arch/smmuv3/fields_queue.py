"""SMMUv3 queue entries as field tables: commands (16 bytes) and event records (32 bytes).

Pure data, no imports, same tuple format as fields.py: (name, dword, hi, lo, doc[, enum[, attrs]])
with bits
hi..lo of little-endian 64-bit word `dword`. IHI 0070 numbers bits across the whole entry; the
absolute position of a field is 64 * dword + bit.

Sources, in order of authority:
  * IHI 0070 (G.b) text in /work/spec/smmu: 4.1.1 opcodes, 4.1.6 common fields, 4.4.1 the
    range/level hint table (SCALE [25:20], NUM [16:12], TTL128 [71], TTL [73:72], TG [75:74]),
    4.4.2.2 the CMD_TLBI_NH_ASID layout, 4.7.1/4.7.3 parameter names (Ac, Ab, CS, MSH, MSIAttr,
    MSIAddress[55:2], MSIData); 7.3 the event tables that survived conversion (F_UUT,
    C_BAD_STREAMID, F_STE_FETCH, C_BAD_STE, F_STREAM_DISABLED, F_TRANSL_FORBIDDEN,
    C_BAD_SUBSTREAMID, C_BAD_CD, F_CFG_CONFLICT, F_VMS_FETCH, and IPA[55:12] / FetchAddr[55:3]
    in dword 3 of F_ACCESS, F_CD_FETCH, F_WALK_EABT).
  * Where the spec markdown only has "<!-- image -->" for a layout, positions are those Linux
    (arm-smmu-v3.h CMDQ_* / EVTQ_*) and QEMU use, which agree with the spec text around them.
    Fields whose doc says "[figure]" come from the IHI 0070 figure and could not be re-read from the
    markdown; see the notes on each.

Not modelled (positions only in figures that the markdown lost): CMD_PREFETCH_ADDR.NS (RES0 on the
Non-secure queue), CMD_SYNC.MSI_NS (RES0 except on the Realm queue), F_PERMISSION Overlay /
AssuredOnly / DirtyBit (v3.4), F_WALK_EABT Reason and GPCF. Set bits there show up as reserved.
"""

# --------------------------------------------------------------------------------------------
# Commands, IHI 0070 chapter 4. 16 bytes = 2 dwords.
# --------------------------------------------------------------------------------------------

OPCODES = {
    "CMD_PREFETCH_CONFIG": 0x01,
    "CMD_PREFETCH_ADDR": 0x02,
    "CMD_CFGI_STE": 0x03,
    "CMD_CFGI_STE_RANGE": 0x04,
    "CMD_CFGI_ALL": 0x04,          # CMD_CFGI_STE_RANGE with Range == 31 (4.3.6)
    "CMD_CFGI_CD": 0x05,
    "CMD_CFGI_CD_ALL": 0x06,
    "CMD_TLBI_NH_ALL": 0x10,
    "CMD_TLBI_NH_ASID": 0x11,
    "CMD_TLBI_NH_VA": 0x12,
    "CMD_TLBI_NH_VAA": 0x13,
    "CMD_TLBI_EL2_ALL": 0x20,
    "CMD_TLBI_EL2_ASID": 0x21,
    "CMD_TLBI_EL2_VA": 0x22,
    "CMD_TLBI_EL2_VAA": 0x23,
    "CMD_TLBI_S12_VMALL": 0x28,
    "CMD_TLBI_S2_IPA": 0x2A,
    "CMD_TLBI_NSNH_ALL": 0x30,
    "CMD_ATC_INV": 0x40,
    "CMD_PRI_RESP": 0x41,
    "CMD_RESUME": 0x44,
    "CMD_STALL_TERM": 0x45,
    "CMD_SYNC": 0x46,
}

# Opcodes IHI 0070 4.1.1 defines that have no format here (Secure, EL3, Realm-only or MPAM/DPT
# commands). decode_cmd names them but does not split their fields.
OTHER_OPCODES = {
    "CMD_CFGI_VMS_PIDM": 0x07,
    "CMD_TLBI_EL3_ALL": 0x18,
    "CMD_TLBI_EL3_VA": 0x1A,
    "CMD_TLBI_S_EL2_ALL": 0x50,
    "CMD_TLBI_S_EL2_ASID": 0x51,
    "CMD_TLBI_S_EL2_VA": 0x52,
    "CMD_TLBI_S_EL2_VAA": 0x53,
    "CMD_TLBI_S_S12_VMALL": 0x58,
    "CMD_TLBI_S_S2_IPA": 0x5A,
    "CMD_TLBI_SNH_ALL": 0x60,
    "CMD_DPTI_ALL": 0x70,
    "CMD_DPTI_PA": 0x73,
}

# Command queue error codes, SMMU_(*_)CMDQ_CONS.ERR (IHI 0070 7.1).
CERROR = {"CERROR_NONE": 0, "CERROR_ILL": 1, "CERROR_ABT": 2, "CERROR_ATC_INV_SYNC": 3}

_OP = ("Opcode", 0, 7, 0, "Command opcode (IHI 0070 4.1.1)")
_SSEC = ("SSec", 0, 10, 10, "StreamID Security: 0 Non-secure, 1 Secure (must be 0 on the NS queue)",
         {0: "NS", 1: "S"})
_SSV = ("SSV", 0, 11, 11, "SubstreamID valid")
_SSID = ("SubstreamID", 0, 31, 12, "SubstreamID (PASID)")
_SID = ("StreamID", 0, 63, 32, "StreamID")
_VMID = ("VMID", 0, 47, 32, "VMID (bits [15:8] RES0 without IDR0.VMID16)")
_ASID = ("ASID", 0, 63, 48, "ASID (bits [15:8] RES0 without IDR0.ASID16)")
_NUM = ("NUM", 0, 16, 12, "Range invalidation: (NUM+1) x 2^SCALE granules; RES0 when TG == 0",
        None, {"number": True})
_SCALE = ("SCALE", 0, 25, 20, "Range invalidation scale; bit 25 RES0 unless IDR5.DS == 1",
          None, {"log2": True})
_LEAF = ("Leaf", 1, 0, 0, "1: only last-level (leaf) entries need be invalidated")
_TTL128 = ("TTL128", 1, 7, 7, "TTL applies to 128-bit descriptors (v3.4)")
_TTL = ("TTL", 1, 9, 8, "Level hint of the leaf entry; RES0 when TG == 0",
        {0: "any", 1: "level1", 2: "level2", 3: "level3"})
_TG = ("TG", 1, 11, 10, "Granule of the entries: 0 any (no range, no TTL)",
       {0: "any", 1: "4K", 2: "16K", 3: "64K"}, {"granule_shift": {1: 12, 2: 14, 3: 16}})
_VA = ("Address", 1, 63, 12, "VA[63:12]; [11:0] taken as zero", None, {"addr": 12})
_IPA = ("Address", 1, 55, 12, "IPA[55:12]; [55:52] RES0 before v3.4", None, {"addr": 12})
_VA_RANGE = [_NUM, _SCALE, _LEAF, _TTL128, _TTL, _TG, _VA]

_CMDS = {
    # 4.2.1
    "CMD_PREFETCH_CONFIG": [_OP, _SSEC, _SSV, _SSID, _SID],
    # 4.2.2. NS is not modelled: RES0 on the Non-secure queue, and its figure position was lost.
    "CMD_PREFETCH_ADDR": [_OP, _SSEC, _SSV, _SSID, _SID,
                          ("Size", 1, 4, 0, "Prefetch 2^Size translations", None, {"log2": True}),
                          ("Stride", 1, 9, 5, "[figure] Stride 2^(12+Stride) bytes; RES0 in v3.0"),
                          ("Address", 1, 63, 12, "Addr[63:12]", None, {"addr": 12})],
    # 4.3.1
    "CMD_CFGI_STE": [_OP, _SSEC, _SID,
                     ("Leaf", 1, 0, 0, "1: the STE only; 0: also L1STDs walked to it")],
    # 4.3.2
    "CMD_CFGI_STE_RANGE": [_OP, _SSEC, _SID,
                           ("Range", 1, 4, 0, "Invalidate 2^(Range+1) StreamIDs, aligned; "
                                             "31 is CMD_CFGI_ALL")],
    # 4.3.6: the same encoding with Range == 31; StreamID is IGNORED.
    "CMD_CFGI_ALL": [_OP, _SSEC,
                     ("StreamID", 0, 63, 32, "IGNORED (Range == 31)"),
                     ("Range", 1, 4, 0, "Must be 31 for CMD_CFGI_ALL")],
    # 4.3.3
    "CMD_CFGI_CD": [_OP, _SSEC, _SSID, _SID,
                    ("Leaf", 1, 0, 0, "1: the CD only; 0: also the L1CD that locates it")],
    # 4.3.4
    "CMD_CFGI_CD_ALL": [_OP, _SSEC, _SID],
    # 4.4.2.1 - 4.4.2.10
    "CMD_TLBI_NH_ALL": [_OP, _VMID],
    "CMD_TLBI_NH_ASID": [_OP, _VMID, _ASID],
    "CMD_TLBI_NH_VA": [_OP, _VMID, _ASID] + _VA_RANGE,
    "CMD_TLBI_NH_VAA": [_OP, _VMID] + _VA_RANGE,
    "CMD_TLBI_EL2_ALL": [_OP],
    "CMD_TLBI_EL2_ASID": [_OP, _ASID],
    "CMD_TLBI_EL2_VA": [_OP, _ASID] + _VA_RANGE,
    "CMD_TLBI_EL2_VAA": [_OP] + _VA_RANGE,
    # 4.4.3
    "CMD_TLBI_S12_VMALL": [_OP, _VMID],
    "CMD_TLBI_S2_IPA": [_OP, _VMID, _NUM, _SCALE, _LEAF, _TTL128, _TTL, _TG, _IPA],
    # 4.4.4.1
    "CMD_TLBI_NSNH_ALL": [_OP],
    # 4.5.1
    "CMD_ATC_INV": [_OP, ("Global", 0, 9, 9, "Global Invalidate flag (only with SSV == 1)"),
                    _SSV, _SSID, _SID,
                    ("Size", 1, 5, 0, "Span 4KB x 2^Size; 52 = everything", None, {"log2": True}),
                    ("Address", 1, 63, 12, "Address[63:12]", None, {"addr": 12})],
    # 4.5.2
    "CMD_PRI_RESP": [_OP, _SSV, _SSID, _SID,
                     ("PRGIndex", 1, 8, 0, "Page Request Group Index"),
                     ("Resp", 1, 13, 12, "Response", {0: "ResponseFailure", 1: "InvalidRequest",
                                                       2: "Success", 3: "reserved(ILLEGAL)"})],
    # 4.7.1. Linux treats [13:12] as one RESP field: 0 TERM, 1 RETRY, 2 ABORT.
    "CMD_RESUME": [_OP, _SSEC,
                   ("Ac", 0, 12, 12, "Action", {0: "Terminate", 1: "Retry"}),
                   ("Ab", 0, 13, 13, "Abort on Terminate (IGNORED on Retry): 0 RAZ/WI, 1 abort"),
                   _SID,
                   ("STAG", 1, 15, 0, "Stall tag from the stall event record")],
    # 4.7.2
    "CMD_STALL_TERM": [_OP, _SSEC, _SID],
    # 4.7.3. MSI_NS (Realm queue only) is not modelled.
    "CMD_SYNC": [_OP,
                 ("CS", 0, 13, 12, "ComplSignal", {0: "SIG_NONE", 1: "SIG_IRQ", 2: "SIG_SEV",
                                                  3: "reserved(ILLEGAL)"}),
                 ("MSH", 0, 23, 22, "MSI Shareability", {0: "NSH", 1: "reserved(NSH)", 2: "OSH",
                                                         3: "ISH"}),
                 ("MSIAttr", 0, 27, 24, "MSI memory type, encoded as STE.MemAttr"),
                 ("MSIData", 0, 63, 32, "MSI payload"),
                 ("MSIAddress", 1, 55, 2, "MSIAddress[55:2]; 0 disables the MSI", None,
                  {"addr": 2})],
}

# --------------------------------------------------------------------------------------------
# Event records, IHI 0070 7.3. 32 bytes = 4 dwords.
# --------------------------------------------------------------------------------------------

EVENT_TYPES = {
    "F_UUT": 0x01,
    "C_BAD_STREAMID": 0x02,
    "F_STE_FETCH": 0x03,
    "C_BAD_STE": 0x04,
    "F_BAD_ATS_TREQ": 0x05,
    "F_STREAM_DISABLED": 0x06,
    "F_TRANSL_FORBIDDEN": 0x07,
    "C_BAD_SUBSTREAMID": 0x08,
    "F_CD_FETCH": 0x09,
    "C_BAD_CD": 0x0A,
    "F_WALK_EABT": 0x0B,
    "F_TRANSLATION": 0x10,
    "F_ADDR_SIZE": 0x11,
    "F_ACCESS": 0x12,
    "F_PERMISSION": 0x13,
    "F_TLB_CONFLICT": 0x20,
    "F_CFG_CONFLICT": 0x21,
    "E_PAGE_REQUEST": 0x24,
    "F_VMS_FETCH": 0x25,
}

_CLASS = {0: "CD", 1: "TT", 2: "IN", 3: "reserved"}

_TYPE = ("Type", 0, 7, 0, "Event number (IHI 0070 7.3)")
_ESSV = ("SSV", 0, 11, 11, "SubstreamID valid")
_ESSID = ("SubstreamID", 0, 31, 12, "SubstreamID (valid when SSV == 1)")
_ESID = ("StreamID", 0, 63, 32, "StreamID of the transaction")
_HDR = [_TYPE, _ESSV, _ESSID, _ESID]
_REASON16 = ("Reason", 1, 15, 0, "IMPLEMENTATION DEFINED cause")
_GPCF = ("GPCF", 1, 16, 16, "Fetch failed a Granule Protection Check (RME)")
_STAG = ("STAG", 1, 15, 0, "Stall tag (valid when Stall == 1)")
_STALL = ("Stall", 1, 31, 31, "1: the transaction is stalled awaiting CMD_RESUME")
_PNU = ("PnU", 1, 33, 33, "1: privileged", {0: "unprivileged", 1: "privileged"})
_IND = ("InD", 1, 34, 34, "1: instruction", {0: "data", 1: "instruction"})
_RNW = ("RnW", 1, 35, 35, "1: read", {0: "write", 1: "read"})
_NSIPA = ("NSIPA", 1, 38, 38, "[figure] IPA space is Non-secure (Secure event queue, S2 == 1)")
_S2 = ("S2", 1, 39, 39, "Stage of the fault", {0: "stage1", 1: "stage2"})
_ECLASS = ("CLASS", 1, 41, 40, "What was being translated", _CLASS)
_INPUT = ("InputAddr", 2, 63, 0, "Input address of the transaction", None, {"addr": 0})
_EIPA = ("IPA", 3, 55, 12, "IPA[55:12] (stage 2 faults; CD or TTD address for CLASS CD/TT)",
         None, {"addr": 12})
_FETCH = ("FetchAddr", 3, 55, 3, "FetchAddr[55:3]: PA of the structure or descriptor fetched",
          None, {"addr": 3})
_XLATE = [_STAG, _STALL, _PNU, _IND, _RNW, _NSIPA, _S2, _ECLASS, _INPUT, _EIPA]

_EVTS = {
    # 7.3.2. Reason is read as [79:64], as in the other Reason-carrying fetch events; the converted
    # table is ambiguous between [95:80] and [79:64].
    "EVT_F_UUT": _HDR + [("Reason", 1, 15, 0, "IMPLEMENTATION DEFINED cause"),
                         _PNU, _IND, _RNW, _INPUT],
    "EVT_C_BAD_STREAMID": list(_HDR),                               # 7.3.3
    "EVT_F_STE_FETCH": _HDR + [_REASON16, _GPCF, _FETCH],           # 7.3.4
    "EVT_C_BAD_STE": list(_HDR),                                    # 7.3.5
    # 7.3.6: R [95], W [94], X [93], P [92], Span [67:64], InputAddr[63:12] at [191:140].
    "EVT_F_BAD_ATS_TREQ": _HDR + [("Span", 1, 3, 0, "Number of STUs requested", None,
                                   {"number": True}),
                                  ("P", 1, 28, 28, "Privileged requested"),
                                  ("X", 1, 29, 29, "Execute requested"),
                                  ("W", 1, 30, 30, "Write requested (== !NW)"),
                                  ("R", 1, 31, 31, "Read requested"),
                                  ("InputAddr", 2, 63, 12, "InputAddr[63:12]", None, {"addr": 12})],
    # 7.3.7: no SubstreamID (the record is for traffic without one, or SubstreamID 0).
    "EVT_F_STREAM_DISABLED": [_TYPE, _ESID],
    # 7.3.8: StreamID, RnW [99], InputAddr; no SubstreamID.
    "EVT_F_TRANSL_FORBIDDEN": [_TYPE, _ESID, _RNW, _INPUT],
    # 7.3.9: SubstreamID always valid, no SSV.
    "EVT_C_BAD_SUBSTREAMID": [_TYPE, _ESSID, _ESID],
    # 7.3.10: FetchAddr in dword 3 (QEMU writes it to dword 2). Reason/GPCF as in F_STE_FETCH.
    "EVT_F_CD_FETCH": _HDR + [_REASON16, _GPCF, _FETCH],
    "EVT_C_BAD_CD": list(_HDR),                                     # 7.3.11
    # 7.3.12: Reason and GPCF not modelled (figure only).
    "EVT_F_WALK_EABT": _HDR + [_PNU, _IND, _RNW, _S2, _ECLASS, _INPUT, _FETCH],
    "EVT_F_TRANSLATION": _HDR + _XLATE,                             # 7.3.13
    "EVT_F_ADDR_SIZE": _HDR + _XLATE,                               # 7.3.14
    "EVT_F_ACCESS": _HDR + _XLATE,                                  # 7.3.15
    "EVT_F_PERMISSION": _HDR + _XLATE + [                           # 7.3.16
        ("TTRnW", 1, 44, 44, "CLASS == TT: 1 descriptor read, 0 descriptor write faulted",
         {0: "write", 1: "read"})],
    # 7.3.17: IPA[55:12] in dword 3 (table header 255 / 248 247).
    "EVT_F_TLB_CONFLICT": _HDR + [("Reason", 1, 31, 0, "[figure] IMPLEMENTATION DEFINED reason"),
                                  _PNU, _IND, _RNW, _S2, _INPUT, _EIPA],
    # 7.3.18: Reason fills [95:64].
    "EVT_F_CFG_CONFLICT": _HDR + [("Reason", 1, 31, 0, "IMPLEMENTATION DEFINED reason")],
    # 7.3.20
    "EVT_F_VMS_FETCH": _HDR + [_REASON16, _GPCF, _FETCH],
}

# Codes as named constants (core_cy/_smmuv3.pxd enums and smmudbg.arch.smmuv3.consts).
CODES = {"EventType": EVENT_TYPES, "CmdOpcode": {**OPCODES, **OTHER_OPCODES}, "CError": CERROR}

FORMATS = {**{name: (16, flds) for name, flds in _CMDS.items()},
           **{name: (32, flds) for name, flds in _EVTS.items()}}
