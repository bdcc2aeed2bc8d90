"""VT-d fault reasons: the FR field of a fault recording register (VT-d spec 7.1.3 for DMA
remapping, 5.1.4.1 for interrupt remapping).

Pure data, no imports. FAULT_REASONS maps each code to (name, meaning). Names are the spec's fault
condition codes with "." made "_" (LRT.1 -> LRT_1): L* legacy mode, S* scalable mode (RTA root
table address, SRT root table, SCT context table, SPD PASID directory, SPT PASID table, SFS first
stage, SSS second stage, SGN general; rev 3.x spelled SFS/SSS as SFL/SSL). Where the spec splits
one code into sub-conditions (LCT.4.0-4.3 are all 03h) the code has the condition's name.
Interrupt-remapping faults have no condition codes in the spec; their names here are IR_*.
CODES["VtdFaultReason"] gives the names to the generated constants (LRT_1 = 0x08, ...).

Codes the spec defines whose conditions this table does not describe (RTA.4 33h, SGN.9-10
88h-89h) are left out rather than guessed: fault_reason_name() shows them as "reserved/unknown".
"""

FAULT_REASONS = {
    # Legacy-mode DMA remapping (7.1.3, table "legacy mode fault conditions").
    0x01: ("LRT_2", "Present (P) field of the root entry is 0"),
    0x02: ("LCT_2", "Present (P) field of the context entry is 0"),
    0x03: ("LCT_4", "Invalid programming of a present context entry (AW not in CAP_REG.SAGAW, "
                    "TT reserved or not supported, second-stage pointer beyond HAW)"),
    0x04: ("LGN_1", "Input address above 2^X - 1, X = the smaller of MGAW and the context "
                    "entry's AW"),
    0x05: ("LGN_2", "Write request to a page without write permission (W=0)"),
    0x06: ("LGN_3", "Read request to a page without read permission (R=0)"),
    0x07: ("LSL_1", "Error accessing a second-stage paging entry"),
    0x08: ("LRT_1", "Error accessing the root entry"),
    0x09: ("LCT_1", "Error accessing the context entry"),
    0x0A: ("LRT_3", "Non-zero reserved field in a present root entry"),
    0x0B: ("LCT_3", "Non-zero reserved field in a present context entry"),
    0x0C: ("LSL_2", "Non-zero reserved field in a second-stage paging entry with R or W set"),
    0x0D: ("LCT_5", "Translation request or translated request blocked by the context entry's "
                    "TT"),
    0x0E: ("LGN_4", "Untranslated or translation request whose output address is in the "
                    "interrupt address range 0xFEE00000-0xFEEFFFFF"),
    # Interrupt remapping (5.1.4.1).
    0x20: ("IR_REQ_RSVD", "Reserved field set in a remappable-format interrupt request"),
    0x21: ("IR_INDEX_OVER", "Interrupt index beyond the interrupt remapping table size "
                            "(2^(IRTA_REG.S+1))"),
    0x22: ("IR_IRTE_NOT_PRESENT", "Present (P) field of the IRTE is 0"),
    0x23: ("IR_IRTE_ACCESS", "Error accessing the IRTE (interrupt remapping table at IRTA_REG)"),
    0x24: ("IR_IRTE_RSVD", "Non-zero reserved field in a present IRTE (or IM=1 without "
                           "CAP_REG.PI)"),
    0x25: ("IR_COMPAT_BLOCKED", "Compatibility-format interrupt blocked (GSTS_REG.CFIS=0 or "
                                "IRTA_REG.EIME=1)"),
    0x26: ("IR_SID_VERIFY", "Source-ID verification failed (IRTE SVT/SQ/SID)"),
    0x27: ("IR_PID_ACCESS", "Error accessing the posted-interrupt descriptor (IRTE PDA)"),
    0x28: ("IR_PID_RSVD", "Non-zero reserved field in the posted-interrupt descriptor"),
    # Scalable mode: root table address (RTA).
    0x30: ("RTA_1", "Invalid RTADDR_REG programming: TTM reserved (10b), or a mode the unit "
                    "does not support (ECAP_REG.SMTS / ADMS)"),
    0x31: ("RTA_2", "Request with PASID while RTADDR_REG.TTM is legacy mode"),
    0x32: ("RTA_3", "Page request while RTADDR_REG.TTM is legacy mode"),
    # Scalable-mode root table (SRT).
    0x38: ("SRT_1", "Error accessing the scalable-mode root entry"),
    0x39: ("SRT_2", "Present field of the root entry half for the devfn (LP / UP) is 0"),
    0x3A: ("SRT_3", "Non-zero reserved field in a present scalable-mode root entry"),
    # Scalable-mode context table (SCT).
    0x40: ("SCT_1", "Error accessing the scalable-mode context entry"),
    0x41: ("SCT_2", "Present (P) field of the scalable-mode context entry is 0"),
    0x42: ("SCT_3", "Non-zero reserved field in a present scalable-mode context entry"),
    0x43: ("SCT_4", "Invalid programming of a present scalable-mode context entry (e.g. "
                    "RID_PASID beyond the PASID directory size)"),
    0x44: ("SCT_5", "DTE=0 in the context entry for a translation request or translated "
                    "request"),
    0x45: ("SCT_6", "PASIDE=0 in the context entry for a request with PASID"),
    0x46: ("SCT_7", "PASID of the request beyond the PASID directory size (PDTS)"),
    0x47: ("SCT_8", "PRE=0 in the context entry for a page request"),
    0x48: ("SCT_9", "RID_PASID / RID_PRIV programming error in the context entry"),
    # Scalable-mode PASID directory (SPD).
    0x50: ("SPD_1", "Error accessing the PASID directory entry"),
    0x51: ("SPD_2", "Present (P) field of the PASID directory entry is 0"),
    0x52: ("SPD_3", "Non-zero reserved field in a present PASID directory entry"),
    # Scalable-mode PASID table (SPT).
    0x58: ("SPT_1", "Error accessing the PASID table entry"),
    0x59: ("SPT_2", "Present (P) field of the PASID table entry is 0"),
    0x5A: ("SPT_3", "Non-zero reserved field in a present PASID table entry"),
    0x5B: ("SPT_4", "Invalid programming of a present PASID table entry (PGTT reserved or not "
                    "supported, AW not in CAP_REG.SAGAW, FLPM not supported)"),
    0x5C: ("SPT_5", "ERE=0 in the PASID table entry for an execute request"),
    0x5D: ("SPT_6", "SRE=0 in the PASID table entry for a supervisor request"),
    # Scalable-mode first stage (SFS; SFL in rev 3.x).
    0x70: ("SFS_1", "Error accessing a first-stage paging entry below the root"),
    0x71: ("SFS_2", "Present (P) field of a first-stage paging entry is 0"),
    0x72: ("SFS_3", "Non-zero reserved field in a present first-stage paging entry"),
    0x73: ("SFS_4", "Error accessing the first-stage root table (FLPTPTR)"),
    0x74: ("SFS_5", "Nested: the address of a first-stage paging entry is beyond the second "
                    "stage's address width"),
    0x75: ("SFS_6", "Nested: no second-stage read permission for the first-stage root table "
                    "(FLPTPTR)"),
    0x76: ("SFS_7", "Nested: no second-stage read permission for a first-stage paging entry "
                    "below the root"),
    0x77: ("SFS_8", "Nested: no second-stage write permission for a first-stage paging entry "
                    "whose A/D flags must be set"),
    0x90: ("SFS_9", "First-stage A/D update needed while page walks do not snoop"),
    0x91: ("SFS_10", "Atomic update of first-stage A/D flags failed"),
    # Scalable-mode second stage (SSS; SSL in rev 3.x).
    0x78: ("SSS_1", "Error accessing a second-stage paging entry below the root"),
    0x79: ("SSS_2", "Second-stage paging entry not present (R=0 and W=0)"),
    0x7A: ("SSS_3", "Non-zero reserved field in a present second-stage paging entry"),
    0x7B: ("SSS_4", "Error accessing the second-stage root table (SLPTPTR)"),
    0x7C: ("SSS_5", "Second-stage A/D update needed while page walks do not snoop"),
    0x7D: ("SSS_6", "Atomic update of second-stage A/D flags failed"),
    # Scalable-mode general (SGN).
    0x80: ("SGN_1", "First-stage input address is not canonical"),
    0x81: ("SGN_2", "User request to a first-stage page with U/S=0 in some entry"),
    0x82: ("SGN_3", "Execute request without execute permission (first-stage XD=1, or "
                    "second-stage X=0 with SLEE=1)"),
    0x83: ("SGN_4", "Address beyond the host address width (HAW)"),
    0x84: ("SGN_5", "Second-stage input address beyond the smaller of MGAW and the PASID "
                    "entry's AW"),
    0x85: ("SGN_6", "Write or AtomicOp request without write permission"),
    0x86: ("SGN_7", "Read or AtomicOp request without read permission"),
    0x87: ("SGN_8", "Output address in the interrupt address range 0xFEE00000-0xFEEFFFFF"),
}

CODES = {"VtdFaultReason": {name: code for code, (name, _m) in FAULT_REASONS.items()}}


def fault_reason_name(code):
    """'SFS_2' for 0x71; 'reserved/unknown' for a code not in the table."""
    entry = FAULT_REASONS.get(code)
    return entry[0] if entry else "reserved/unknown"
