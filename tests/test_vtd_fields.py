"""VT-d field tables (smmudbg/arch/vtd) against the bit positions of the Intel VT-d specification.

Every expected position below is written from the spec's register and structure figures, as the
spec numbers them across the whole structure (a PASID table entry's DID is "79:64", FLPTPTR
"191:140"), never read from the tables: chapter 11 (registers), 9.1-9.6 (root, context, PASID
structures), 9.7-9.8 (first- and second-stage entries), 6.5.2 (invalidation descriptors), 9.9-
9.10 and 5.1.2 (IRTEs, MSI formats), 7.1.3 / 5.1.4.1 (fault reasons). Every field of every table
must appear here, so a field added without a spec position fails.
"""
import os
import pathlib
import runpy
import shutil
import subprocess
import sys

import pytest

from smmudbg.arch import architectures, constgen, fmt, formats
from smmudbg.arch.vtd import consts as C
from smmudbg.arch.vtd.faults import FAULT_REASONS, fault_reason_name
from smmudbg.arch.vtd.registers import FRCD_REG_SIZE, IOTLB_OFFSETS, OFFSETS

ROOT = pathlib.Path(__file__).resolve().parent.parent

SPEC = """
VER_REG       MIN 3:0 MAX 7:4
CAP_REG       ND 2:0 AFL 3 RWBF 4 PLMR 5 PHMR 6 CM 7 SAGAW 12:8 MGAW 21:16 ZLR 22 DEP23 23
              FRO 33:24 SLLPS 37:34 PSI 39 NFR 47:40 MAMV 53:48 DWD 54 DRD 55 FL1GP 56 PI 59
              FL5LP 60 ESIRTPS 62 ESRTPS 63
ECAP_REG      C 0 QI 1 DT 2 IR 3 EIM 4 PT 6 SC 7 IRO 17:8 MHMV 23:20 ECS 24 MTS 25 NEST 26
              DEP27 27 DEP28 28 PRS 29 ERS 30 SRS 31 NWFS 33 EAFS 34 PSS 39:35 PASID 40 DIT 41
              PDS 42 SMTS 43 VCS 44 SLADS 45 SLTS 46 FLTS 47 SMPWCS 48 RPS 49 ADMS 52 RPRIVS 53
GCMD_REG      CFI 23 SIRTP 24 IRE 25 QIE 26 WBF 27 EAFL 28 SFL 29 SRTP 30 TE 31
GSTS_REG      CFIS 23 IRTPS 24 IRES 25 QIES 26 WBFS 27 AFLS 28 FLS 29 RTPS 30 TES 31
RTADDR_REG    TTM 11:10 RTA 63:12
CCMD_REG      DID 15:0 SID 31:16 FM 33:32 CAIG 60:59 CIRG 62:61 ICC 63
IVA_REG       AM 5:0 IH 6 ADDR 63:12
IOTLB_REG     DID 47:32 DW 48 DR 49 IAIG 58:57 IIRG 61:60 IVT 63
FSTS_REG      PFO 0 PPF 1 AFO 2 APF 3 IQE 4 ICE 5 ITE 6 PRO 7 FRI 15:8
FECTL_REG     IP 30 IM 31
FEDATA_REG    IMD 15:0
FEADDR_REG    MA 31:2
FEUADDR_REG   MUA 31:0
FRCD_REG      FI 63:12 SID 79:64 T2 92 PRIV 93 EXE 94 PP 95 FR 103:96 PV 123:104 AT 125:124
              T1 126 F 127
AFLOG_REG     FLS 11:9 FLA 63:12
PMEN_REG      PRS 0 EPM 31
PLMBASE_REG   PLMB 31:0
PLMLIMIT_REG  PLML 31:0
PHMBASE_REG   PHMB 63:0
PHMLIMIT_REG  PHML 63:0
IQH_REG       QH 18:4
IQT_REG       QT 18:4
IQA_REG       QS 2:0 DW 11 IQA 63:12
ICS_REG       IWC 0
IECTL_REG     IP 30 IM 31
IEDATA_REG    IMD 15:0
IEADDR_REG    MA 31:2
IEUADDR_REG   MUA 31:0
IQERCD_REG    IQEI 3:0 ITESID 47:32 ICESID 63:48
IRTA_REG      S 3:0 EIME 11 IRTA 63:12
PQH_REG       PQH 18:5
PQT_REG       PQT 18:5
PQA_REG       PQS 2:0 PQA 63:12
PRS_REG       PPR 0 PRO 1
PECTL_REG     IP 30 IM 31
PEDATA_REG    IMD 15:0
PEADDR_REG    MA 31:2
PEUADDR_REG   MUA 31:0
ROOT_ENTRY    P 0 CTP 63:12
SM_ROOT_ENTRY LP 0 LCTP 63:12 UP 64 UCTP 127:76
CONTEXT_ENTRY P 0 FPD 1 TT 3:2 SLPTPTR 63:12 AW 66:64 AVAIL 70:67 DID 87:72
SM_CONTEXT_ENTRY P 0 FPD 1 DTE 2 PASIDE 3 PRE 4 PDTS 11:9 PASIDDIRPTR 63:12 RID_PASID 83:64
              RID_PRIV 84
PASID_DIR_ENTRY P 0 FPD 1 SMPTBLPTR 63:12
PASID_ENTRY   P 0 FPD 1 AW 4:2 SLEE 5 PGTT 8:6 SLADE 9 SLPTPTR 63:12 DID 79:64 PWSNP 87
              PGSNP 88 CD 89 EMTE 90 EMT 93:91 PWT 94 PCD 95 PAT 127:96 SRE 128 ERE 129
              FLPM 131:130 WPE 132 NXE 133 SMEP 134 EAFE 135 FLPTPTR 191:140
CC_INV_DSC    TYPE_LO 3:0 TYPE_HI 11:9 G 5:4 DID 31:16 SID 47:32 FM 49:48
IOTLB_INV_DSC TYPE_LO 3:0 TYPE_HI 11:9 G 5:4 DW 6 DR 7 DID 31:16 AM 69:64 IH 70 ADDR 127:76
DEV_TLB_INV_DSC TYPE_LO 3:0 TYPE_HI 11:9 PFSID_LO 15:12 MIP 20:16 SID 47:32 PFSID_HI 63:52
              S 64 ADDR 127:76
IEC_INV_DSC   TYPE_LO 3:0 TYPE_HI 11:9 G 4 IM 31:27 IIDX 47:32
INV_WAIT_DSC  TYPE_LO 3:0 TYPE_HI 11:9 IF 4 SW 5 FN 6 PD 7 STATUS_DATA 63:32
              STATUS_ADDR 127:66
P_IOTLB_INV_DSC TYPE_LO 3:0 TYPE_HI 11:9 G 5:4 DID 31:16 PASID 51:32 AM 69:64 IH 70
              ADDR 127:76
PC_INV_DSC    TYPE_LO 3:0 TYPE_HI 11:9 G 5:4 DID 31:16 PASID 51:32
P_DEV_TLB_INV_DSC TYPE_LO 3:0 TYPE_HI 11:9 MIP 8:4 PFSID_LO 15:12 SID 31:16 PASID 51:32
              PFSID_HI 63:52 G 64 S 75 ADDR 127:76
IRTE          P 0 FPD 1 DM 2 RH 3 TM 4 DLM 7:5 AVAIL 11:8 IM 15 V 23:16 DST 63:32 SID 79:64
              SQ 81:80 SVT 83:82
IRTE_DST_XAPIC APIC_ID 15:8
IRTE_POSTED   P 0 FPD 1 AVAIL 11:8 URG 14 IM 15 VV 23:16 PDA_L 63:38 SID 79:64 SQ 81:80
              SVT 83:82 PDA_H 127:96
MSI_ADDR_REMAP HANDLE_15 2 SHV 3 IF 4 HANDLE 19:5 FEE 31:20
MSI_DATA_REMAP SUBHANDLE 15:0
MSI_ADDR_COMPAT DM 2 RH 3 IF 4 DEST 19:12 FEE 31:20
MSI_DATA_COMPAT VECTOR 7:0 DLM 10:8 LEVEL 14 TM 15
"""
# x86 IA-32e first-stage entries (with VT-d's EA at bit 10) and VT-d second-stage entries.
_FS_COMMON = "P 0 RW 1 US 2 PWT 3 PCD 4 A 5 EA 10 XD 63"
_SS_COMMON = "R 0 W 1 X 2 A 8"
PAGING = {
    "FS_PML5E": f"{_FS_COMMON} PS 7 ADDR 51:12", "FS_PML4E": f"{_FS_COMMON} PS 7 ADDR 51:12",
    "FS_PDPE": f"{_FS_COMMON} PS 7 ADDR 51:12", "FS_PDE": f"{_FS_COMMON} PS 7 ADDR 51:12",
    "FS_PDPE_1G": f"{_FS_COMMON} D 6 PS 7 G 8 PAT 12 ADDR 51:30",
    "FS_PDE_2M": f"{_FS_COMMON} D 6 PS 7 G 8 PAT 12 ADDR 51:21",
    "FS_PTE": f"{_FS_COMMON} D 6 PAT 7 G 8 ADDR 51:12",
    "SS_PML5E": f"{_SS_COMMON} PS 7 ADDR 51:12", "SS_PML4E": f"{_SS_COMMON} PS 7 ADDR 51:12",
    "SS_PDPE": f"{_SS_COMMON} PS 7 ADDR 51:12", "SS_PDE": f"{_SS_COMMON} PS 7 ADDR 51:12",
    "SS_PDPE_1G": f"{_SS_COMMON} EMT 5:3 IPAT 6 PS 7 D 9 SNP 11 TM 62 ADDR 51:30",
    "SS_PDE_2M": f"{_SS_COMMON} EMT 5:3 IPAT 6 PS 7 D 9 SNP 11 TM 62 ADDR 51:21",
    "SS_PTE": f"{_SS_COMMON} EMT 5:3 IPAT 6 D 9 SNP 11 TM 62 ADDR 51:12",
}
SIZES = {"FRCD_REG": 16, "ROOT_ENTRY": 16, "SM_ROOT_ENTRY": 16, "CONTEXT_ENTRY": 16,
         "SM_CONTEXT_ENTRY": 32, "PASID_DIR_ENTRY": 8, "PASID_ENTRY": 64, "IRTE": 16,
         "IRTE_POSTED": 16, "VER_REG": 4, "GCMD_REG": 4, "GSTS_REG": 4, "FSTS_REG": 4,
         "CAP_REG": 8, "ECAP_REG": 8, "RTADDR_REG": 8, "IRTA_REG": 8, "MSI_ADDR_REMAP": 4,
         **{d: 16 for d in ("CC_INV_DSC", "IOTLB_INV_DSC", "DEV_TLB_INV_DSC", "IEC_INV_DSC",
                            "INV_WAIT_DSC", "P_IOTLB_INV_DSC", "PC_INV_DSC",
                            "P_DEV_TLB_INV_DSC")},
         **{p: 8 for p in PAGING}}


def _parse():
    out, fmt_name = {}, None
    for line in SPEC.strip().splitlines():
        words = line.split()
        if not line.startswith(" "):
            fmt_name, words = words[0], words[1:]
        for name, bits in zip(words[::2], words[1::2]):
            out[(fmt_name, name)] = bits
    for fmt_name, text in PAGING.items():
        words = text.split()
        for name, bits in zip(words[::2], words[1::2]):
            out[(fmt_name, name)] = bits
    return {k: tuple(int(b) for b in (v.split(":") if ":" in v else (v, v)))
            for k, v in out.items()}


EXPECTED = _parse()


def test_every_field_has_a_spec_position():
    have = {(n, f.name) for n, t in formats("vtd").items() for f in t.fields}
    assert have == set(EXPECTED), (sorted(have - set(EXPECTED)), sorted(set(EXPECTED) - have))


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_field_position_encode_decode(key):
    name, field = key
    hi, lo = EXPECTED[key]
    f = fmt(name, "vtd")
    assert f.field(field).abs_bits == (hi, lo)
    # Encoding all ones sets exactly the spec's bits; decoding them gives back all ones in this
    # field and zero in every other field.
    width = hi - lo + 1
    words = f.encode(**{field: (1 << width) - 1})
    raw = sum(w << (64 * i) for i, w in enumerate(words))
    assert raw == ((1 << width) - 1) << lo
    decoded = f.decode(words)
    assert decoded[field] == (1 << width) - 1
    assert not any(v for k, v in decoded.items() if k != field)
    # A value with distinct bits lands shifted to lo.
    pattern = 0b101 & ((1 << width) - 1)
    words = f.encode(**{field: pattern})
    assert sum(w << (64 * i) for i, w in enumerate(words)) == pattern << lo


@pytest.mark.parametrize("name", sorted(SIZES))
def test_sizes(name):
    assert fmt(name, "vtd").size == SIZES[name]


def test_register_offsets():
    # VT-d 11.2 register map.
    assert OFFSETS["CAP_REG"] == 0x08 and OFFSETS["ECAP_REG"] == 0x10
    assert OFFSETS["GCMD_REG"] == 0x18 and OFFSETS["GSTS_REG"] == 0x1C
    assert OFFSETS["RTADDR_REG"] == 0x20 and OFFSETS["CCMD_REG"] == 0x28
    assert OFFSETS["FSTS_REG"] == 0x34 and OFFSETS["FECTL_REG"] == 0x38
    assert OFFSETS["FEDATA_REG"] == 0x3C and OFFSETS["FEADDR_REG"] == 0x40
    assert OFFSETS["IQH_REG"] == 0x80 and OFFSETS["IQT_REG"] == 0x88
    assert OFFSETS["IQA_REG"] == 0x90 and OFFSETS["ICS_REG"] == 0x9C
    assert OFFSETS["IRTA_REG"] == 0xB8 and OFFSETS["PQH_REG"] == 0xC0
    assert OFFSETS["PQT_REG"] == 0xC8 and OFFSETS["PQA_REG"] == 0xD0
    assert IOTLB_OFFSETS == {"IVA_REG": 0, "IOTLB_REG": 8} and FRCD_REG_SIZE == 16
    # Every register with an offset has a table and no two overlap.
    spans = sorted((o, o + fmt(n, "vtd").size) for n, o in OFFSETS.items())
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


def test_addresses_carry_their_shift():
    # (format, field, address bits hi, lo) of every address field.
    expected = {
        ("RTADDR_REG", "RTA", 63, 12), ("IVA_REG", "ADDR", 63, 12), ("FRCD_REG", "FI", 63, 12),
        ("AFLOG_REG", "FLA", 63, 12), ("IQA_REG", "IQA", 63, 12), ("IRTA_REG", "IRTA", 63, 12),
        ("PQA_REG", "PQA", 63, 12),
        *{(r, "MA", 31, 2) for r in ("FEADDR_REG", "IEADDR_REG", "PEADDR_REG")},
        *{(r, "MUA", 63, 32) for r in ("FEUADDR_REG", "IEUADDR_REG", "PEUADDR_REG")},
        ("ROOT_ENTRY", "CTP", 63, 12), ("SM_ROOT_ENTRY", "LCTP", 63, 12),
        ("SM_ROOT_ENTRY", "UCTP", 63, 12), ("CONTEXT_ENTRY", "SLPTPTR", 63, 12),
        ("SM_CONTEXT_ENTRY", "PASIDDIRPTR", 63, 12), ("PASID_DIR_ENTRY", "SMPTBLPTR", 63, 12),
        ("PASID_ENTRY", "SLPTPTR", 63, 12), ("PASID_ENTRY", "FLPTPTR", 63, 12),
        *{(d, "ADDR", 63, 12) for d in ("IOTLB_INV_DSC", "DEV_TLB_INV_DSC", "P_IOTLB_INV_DSC",
                                        "P_DEV_TLB_INV_DSC")},
        ("INV_WAIT_DSC", "STATUS_ADDR", 63, 2),
        ("IRTE_POSTED", "PDA_L", 31, 6), ("IRTE_POSTED", "PDA_H", 63, 32),
        *{(p, "ADDR", 51, 12) for p in ("FS_PML5E", "FS_PML4E", "FS_PDPE", "FS_PDE", "FS_PTE",
                                        "SS_PML5E", "SS_PML4E", "SS_PDPE", "SS_PDE", "SS_PTE")},
        *{(p, "ADDR", 51, 21) for p in ("FS_PDE_2M", "SS_PDE_2M")},
        *{(p, "ADDR", 51, 30) for p in ("FS_PDPE_1G", "SS_PDPE_1G")},
    }
    found = {(n, f.name, *f.address_bits) for n, t in formats("vtd").items() for f in t.fields
             if f.is_address}
    assert found == expected, found ^ expected
    pe = fmt("PASID_ENTRY", "vtd")
    words = pe.encode(FLPTPTR=pe.field("FLPTPTR").from_address(0x12345000))
    assert words[2] == 0x12345000 and pe.field("FLPTPTR").address(words) == 0x12345000
    posted = fmt("IRTE_POSTED", "vtd")
    pda = 0x1_2345_6780
    words = posted.encode(PDA_L=posted.field("PDA_L").from_address(pda & 0xFFFFFFC0),
                          PDA_H=posted.field("PDA_H").from_address(pda & ~0xFFFFFFFF))
    assert words == [(pda & 0xFFFFFFC0) << 32, (pda >> 32) << 32]


def test_enums_and_lookups_from_the_spec():
    assert C.RTADDR_REG_TTM_legacy == 0 and C.RTADDR_REG_TTM_scalable == 1
    assert C.RTADDR_REG_TTM_abort_dma == 3
    assert (C.PASID_ENTRY_PGTT_first_stage, C.PASID_ENTRY_PGTT_second_stage,
            C.PASID_ENTRY_PGTT_nested, C.PASID_ENTRY_PGTT_pass_through) == (1, 2, 3, 4)
    assert C.CONTEXT_ENTRY_TT_pass_through == 2 and C.CONTEXT_ENTRY_TT_all_requests == 1
    assert C.PASID_ENTRY_AW_addr_bits == {1: 39, 2: 48, 3: 57} == C.CONTEXT_ENTRY_AW_addr_bits
    assert C.PASID_ENTRY_FLPM_addr_bits == {0: 48, 1: 57}
    assert C.IRTE_DLM_fixed == 0 and C.IRTE_DLM_lowest_priority == 1 and C.IRTE_DLM_NMI == 4
    assert C.IRTE_DLM_ExtINT == 7 and C.IRTE_SVT_bus_range == 2 and C.IRTE_SQ_ignore_bit0 == 3
    assert C.PC_INV_DSC_G_global == 3 and C.PC_INV_DSC_G_pasid == 1
    assert C.P_IOTLB_INV_DSC_G_page == 3 and C.IOTLB_INV_DSC_G_domain == 2
    assert C.SS_PTE_EMT_WB == 6 and C.SS_PTE_EMT_UC == 0
    # Descriptor types: 6.5.2.
    assert (C.CC_INV_DSC_TYPE, C.IOTLB_INV_DSC_TYPE, C.DEV_TLB_INV_DSC_TYPE, C.IEC_INV_DSC_TYPE,
            C.INV_WAIT_DSC_TYPE, C.P_IOTLB_INV_DSC_TYPE, C.PC_INV_DSC_TYPE,
            C.P_DEV_TLB_INV_DSC_TYPE) == (1, 2, 3, 4, 5, 6, 7, 8)
    assert C.INV_DSC_NAMES[7] == "PC_INV_DSC"
    assert C.CAP_REG_SAGAW_MASK == 0x1F00 and C.FRCD_REG_FR_MASK == 0xFF << 32


# Fault reasons: code -> condition, from VT-d 7.1.3 (tables of legacy and scalable-mode fault
# conditions) and 5.1.4.1 (interrupt remapping).
SPEC_FAULTS = {
    0x01: "LRT_2", 0x02: "LCT_2", 0x03: "LCT_4", 0x04: "LGN_1", 0x05: "LGN_2", 0x06: "LGN_3",
    0x07: "LSL_1", 0x08: "LRT_1", 0x09: "LCT_1", 0x0A: "LRT_3", 0x0B: "LCT_3", 0x0C: "LSL_2",
    0x0D: "LCT_5", 0x0E: "LGN_4",
    0x30: "RTA_1", 0x31: "RTA_2", 0x32: "RTA_3", 0x38: "SRT_1", 0x39: "SRT_2", 0x3A: "SRT_3",
    0x40: "SCT_1", 0x41: "SCT_2", 0x42: "SCT_3", 0x43: "SCT_4", 0x44: "SCT_5", 0x45: "SCT_6",
    0x46: "SCT_7", 0x47: "SCT_8", 0x48: "SCT_9", 0x50: "SPD_1", 0x51: "SPD_2", 0x52: "SPD_3",
    0x58: "SPT_1", 0x59: "SPT_2", 0x5A: "SPT_3", 0x5B: "SPT_4", 0x5C: "SPT_5", 0x5D: "SPT_6",
    0x70: "SFS_1", 0x71: "SFS_2", 0x72: "SFS_3", 0x73: "SFS_4", 0x74: "SFS_5", 0x75: "SFS_6",
    0x76: "SFS_7", 0x77: "SFS_8", 0x90: "SFS_9", 0x91: "SFS_10",
    0x78: "SSS_1", 0x79: "SSS_2", 0x7A: "SSS_3", 0x7B: "SSS_4", 0x7C: "SSS_5", 0x7D: "SSS_6",
    0x80: "SGN_1", 0x81: "SGN_2", 0x82: "SGN_3", 0x83: "SGN_4", 0x84: "SGN_5", 0x85: "SGN_6",
    0x86: "SGN_7", 0x87: "SGN_8",
    0x20: "IR_REQ_RSVD", 0x21: "IR_INDEX_OVER", 0x22: "IR_IRTE_NOT_PRESENT",
    0x23: "IR_IRTE_ACCESS", 0x24: "IR_IRTE_RSVD", 0x25: "IR_COMPAT_BLOCKED",
    0x26: "IR_SID_VERIFY", 0x27: "IR_PID_ACCESS", 0x28: "IR_PID_RSVD",
}


def test_fault_reasons():
    assert {c: n for c, (n, _m) in FAULT_REASONS.items()} == SPEC_FAULTS
    assert all(m for _n, m in FAULT_REASONS.values())
    for code, name in SPEC_FAULTS.items():
        assert getattr(C, name) == code and C.FAULT_NAMES[code] == name
    assert fault_reason_name(0x71) == "SFS_2" and fault_reason_name(0x33) == "reserved/unknown"


# -- beside the other architectures ------------------------------------------------------------
def test_registry_and_no_name_clash():
    assert "vtd" in architectures()
    assert fmt("vtd:PASID_ENTRY") is fmt("PASID_ENTRY")   # no other architecture has the name
    gen = runpy.run_path(str(ROOT / "core_cy/gen_fields.py"))
    built = {a: constgen.build(t) for a, t in gen["architectures"]().items()}
    names = {a: set(constgen.names(b)) | b["field_names"] for a, b in built.items()}
    for other in names:
        if other != "vtd":
            assert not names["vtd"] & names[other], sorted(names["vtd"] & names[other])[:10]


PROBE = '''
from libc.stdint cimport uint64_t
from _fields cimport *
from _smmuv3 cimport *
from _gicv3_fields cimport *
from _gicv3 cimport *
from _vtd_fields cimport *
from _vtd cimport *

def probe():
    cdef uint64_t w[8]
    cdef int i
    for i in range(8):
        w[i] = 0
    w[0] = <uint64_t>0xABCDE000 | (3 << 6) | (2 << 2) | 1
    w[2] = <uint64_t>0x77777000 | (1 << 2)
    return (PASID_ENTRY_PGTT(w), PASID_ENTRY_AW_addr_bits(PASID_ENTRY_AW(w)),
            PASID_ENTRY_SLPTPTR_addr(w), PASID_ENTRY_FLPTPTR_addr(w),
            PASID_ENTRY_FLPM_addr_bits(PASID_ENTRY_FLPM(w)), PASID_ENTRY_PGTT_nested, SFS_4,
            P_IOTLB_INV_DSC_TYPE, STE_Config_nested)
'''


def test_generated_cython_compiles_beside_the_others(tmp_path):
    """The generated _vtd*.pxd cimported with every other architecture's: a clash of names
    would fail the compile."""
    pytest.importorskip("Cython")
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler")
    gen = runpy.run_path(str(ROOT / "core_cy/gen_fields.py"))
    for arch, tables in gen["architectures"]().items():
        fmts = {}
        for t in tables:
            fmts.update(t.get("FORMATS", {}))
        fields = "_fields.pxd" if arch == "smmuv3" else f"_{arch}_fields.pxd"
        (tmp_path / fields).write_text(gen["render"](fmts, arch))
        (tmp_path / f"_{arch}.pxd").write_text(gen["render_consts"](tables, arch))
    (tmp_path / "vtdprobe.pyx").write_text(PROBE)
    r = subprocess.run([sys.executable, "-m", "Cython.Build.Cythonize", "-i", "-3",
                        "vtdprobe.pyx"], cwd=tmp_path, capture_output=True, text=True,
                       env={**os.environ, "CFLAGS": "-O0"})
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-3000:]
    sys.path.insert(0, str(tmp_path))
    try:
        import vtdprobe
    finally:
        sys.path.remove(str(tmp_path))
    assert vtdprobe.probe() == (3, 48, 0xABCDE000, 0x77777000, 57, 3, 0x73, 6, 7)
