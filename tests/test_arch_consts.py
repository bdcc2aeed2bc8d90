"""Generated SMMUv3 constants (core_cy/_smmuv3.pxd and smmudbg.arch.smmuv3.consts) and the
explicit field attributes, against IHI 0070 and the Arm ARM.

Every expected value below is written from the spec, not read from the tables:
  * STE.Config, S1Fmt, S1DSS, S2TG, S2PS: IHI 0070 5.2; CD.TG0/TG1/IPS: 5.4 (TG1 has its own
    encoding: 0b01 16KB, 0b10 4KB, 0b11 64KB); PS encodings: Arm ARM (0b000 32 bits ... 0b110
    52 bits, 0b111 56 bits);
  * event numbers: IHI 0070 7.3; command opcodes: 4.1.1; CMDQ_CONS.ERR: 7.1;
  * address fields: IHI 0070 5.1-5.4 ("S1ContextPtr[55:6]", "S2TTB[55:4]", "TTB0[55:4]",
    "L2Ptr[55:12]"), 6.3 (STRTAB_BASE.ADDR [55:6], *Q_BASE.ADDR [55:5], *_IRQ_CFG0.ADDR
    [55:2]), 4.7.3 (MSIAddress[55:2]), 7.3 (IPA[55:12], FetchAddr[55:3]);
  * VMSAv8-64 descriptors: Arm ARM D8.3 (bits[1:0]: 0b11 table at levels 0-2 / page at level 3,
    0b01 block; output address [47:12] without LPA/LPA2).
"""
import ast
import os
import pathlib
import runpy
import shutil
import subprocess
import sys

import pytest

from smmudbg.arch import architectures, fmt, formats
from smmudbg.arch.fieldtable import FieldError
from smmudbg.arch.smmuv3 import consts as C

ROOT = pathlib.Path(__file__).resolve().parent.parent

SPEC_INTS = {
    "STE_Config_abort": 0b000, "STE_Config_bypass": 0b100, "STE_Config_s1_trans": 0b101,
    "STE_Config_s2_trans": 0b110, "STE_Config_nested": 0b111,
    "STE_S1Fmt_linear": 0, "STE_S1Fmt_2lvl_4k": 1, "STE_S1Fmt_2lvl_64k": 2,
    "STE_S1DSS_terminate": 0, "STE_S1DSS_bypass": 1, "STE_S1DSS_substream0": 2,
    "STE_S2TG_4K": 0, "STE_S2TG_64K": 1, "STE_S2TG_16K": 2,
    "CD_TG0_4K": 0, "CD_TG0_64K": 1, "CD_TG0_16K": 2,
    "CD_TG1_16K": 1, "CD_TG1_4K": 2, "CD_TG1_64K": 3,
    "STE_S2PS_48bit": 0b101, "CD_IPS_40bit": 0b010,
    "STE_EATS_trans": 1, "STE_EATS_s1chk": 2, "STE_STRW_EL2": 2,
    "S1_TABLE_DESC_table": 0b11, "S1_BLOCK_DESC_block": 0b01, "S1_BLOCK_DESC_page": 0b11,
    "S2_TABLE_DESC_table": 0b11, "S2_BLOCK_DESC_block": 0b01, "S2_BLOCK_DESC_page": 0b11,
    # A few event numbers and opcodes (all of them: test_fields_spec.test_generated_codes).
    "C_BAD_STE": 0x04, "F_WALK_EABT": 0x0B, "F_TRANSLATION": 0x10, "F_PERMISSION": 0x13,
    "CMD_CFGI_STE": 0x03, "CMD_TLBI_S2_IPA": 0x2A, "CMD_SYNC": 0x46, "CERROR_ILL": 1,
    "R_NONE": 0,
}
SPEC_MASKS = {
    "S1_BLOCK_OA_MASK": ((1 << 48) - 1) & ~((1 << 12) - 1),
    "S2_BLOCK_OA_MASK": ((1 << 48) - 1) & ~((1 << 12) - 1),
    "S1_TABLE_NLTA_MASK": ((1 << 48) - 1) & ~((1 << 12) - 1),
    "S1_BLOCK_DESC_TYPE_MASK": 0b11,
    # Everything but bits[1:0] and OA[47:12]: lower attributes [11:2], [63:48].
    "S1_BLOCK_ATTR_MASK": (((1 << 64) - 1) & ~((1 << 48) - 1)) | (((1 << 12) - 1) & ~0b11),
    "STE_S1ContextPtr_MASK": ((1 << 56) - 1) & ~((1 << 6) - 1),
    "STE_Config_MASK": 0b1110,
    "CD_TTB0_MASK": ((1 << 56) - 1) & ~0xF,
}
PS_BITS = {0: 32, 1: 36, 2: 40, 3: 42, 4: 44, 5: 48, 6: 52, 7: 56}
TG0_SHIFT = {0: 12, 1: 16, 2: 14, 3: 0}
TG1_SHIFT = {0: 0, 1: 14, 2: 12, 3: 16}
# (format, field, address bits hi, lo) of every field that holds an address.
SPEC_ADDRESSES = {
    ("STE", "S1ContextPtr", 55, 6), ("STE", "S2TTB", 55, 4), ("STE", "S_S2TTB", 55, 4),
    ("STE", "VMSPtr", 55, 12), ("CD", "TTB0", 55, 4), ("CD", "TTB1", 55, 4),
    ("L1STD", "L2Ptr", 55, 6), ("L1CD", "L2Ptr", 55, 12),
    ("S1_TABLE", "NLTA", 47, 12), ("S1_BLOCK", "OA", 47, 12),
    ("S2_TABLE", "NLTA", 47, 12), ("S2_BLOCK", "OA", 47, 12),
    ("SMMU_STRTAB_BASE", "ADDR", 55, 6), ("SMMU_CMDQ_BASE", "ADDR", 55, 5),
    ("SMMU_EVENTQ_BASE", "ADDR", 55, 5), ("SMMU_PRIQ_BASE", "ADDR", 55, 5),
    ("SMMU_GERROR_IRQ_CFG0", "ADDR", 55, 2), ("SMMU_EVENTQ_IRQ_CFG0", "ADDR", 55, 2),
    ("SMMU_PRIQ_IRQ_CFG0", "ADDR", 55, 2), ("CMD_SYNC", "MSIAddress", 55, 2),
    ("CMD_PREFETCH_ADDR", "Address", 63, 12), ("CMD_ATC_INV", "Address", 63, 12),
    ("CMD_TLBI_S2_IPA", "Address", 55, 12),
    *{(c, "Address", 63, 12) for c in ("CMD_TLBI_NH_VA", "CMD_TLBI_NH_VAA", "CMD_TLBI_EL2_VA",
                                       "CMD_TLBI_EL2_VAA")},
    *{(e, "IPA", 55, 12) for e in ("EVT_F_TRANSLATION", "EVT_F_ADDR_SIZE", "EVT_F_ACCESS",
                                   "EVT_F_PERMISSION", "EVT_F_TLB_CONFLICT")},
    *{(e, "FetchAddr", 55, 3) for e in ("EVT_F_STE_FETCH", "EVT_F_CD_FETCH", "EVT_F_WALK_EABT",
                                        "EVT_F_VMS_FETCH")},
    *{(e, "InputAddr", 63, 0) for e in ("EVT_F_UUT", "EVT_F_TRANSL_FORBIDDEN",
                                        "EVT_F_WALK_EABT", "EVT_F_TRANSLATION",
                                        "EVT_F_ADDR_SIZE", "EVT_F_ACCESS", "EVT_F_PERMISSION",
                                        "EVT_F_TLB_CONFLICT")},
    ("EVT_F_BAD_ATS_TREQ", "InputAddr", 63, 12),
}


# -- the registry ------------------------------------------------------------------------------
def test_architectures_and_formats():
    assert architectures() == ["gicv3", "smmuv3", "vtd"]
    assert formats("smmuv3")["STE"] is fmt("STE") is fmt("smmuv3:STE")
    assert fmt("STE").arch == "smmuv3"
    with pytest.raises(FieldError, match="unknown architecture"):
        formats("amdvi")
    with pytest.raises(FieldError, match="unknown format"):
        fmt("smmuv3:ITE")


def test_generic_module_knows_no_architecture():
    # fieldtable.py finds architectures by looking; it names none and parses no doc text.
    tree = ast.parse((ROOT / "smmudbg/arch/fieldtable.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            assert not any("smmuv3" in m or m == "re" for m in mods), mods
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            assert "smmuv3" not in ast.unparse(node)


# -- explicit attributes -----------------------------------------------------------------------
def test_address_fields_are_exactly_the_architected_ones():
    found = set()
    for name, f in formats("smmuv3").items():
        for x in f.fields:
            if x.is_address:
                found.add((name, x.name, *x.address_bits))
    assert found == SPEC_ADDRESSES, found ^ SPEC_ADDRESSES


def test_address_round_trip():
    s2ttb = fmt("STE").field("S2TTB")
    assert s2ttb.from_address(0x40004000) == 0x40004000 >> 4
    assert s2ttb.to_address(0x4000400) == 0x40004000
    words = fmt("STE").encode(S1ContextPtr=0x40001000 >> 6)
    assert fmt("STE").field("S1ContextPtr").address(words) == 0x40001000
    with pytest.raises(FieldError, match="aligned"):
        fmt("STE").field("S1ContextPtr").from_address(0x40001010)
    with pytest.raises(FieldError, match="does not fit"):
        fmt("L1CD").field("L2Ptr").from_address(1 << 56)
    with pytest.raises(FieldError, match="not an address"):
        fmt("STE").field("S2T0SZ").from_address(0x1000)
    assert fmt("STE").field("S2TTB").meaning(0x4000400) == "address 0x40004000"


def test_number_and_lookup_attributes():
    assert fmt("STE").field("S1CDMax").is_log2 and fmt("STE").field("S1CDMax").decimal
    assert fmt("SMMU_STRTAB_BASE_CFG").field("LOG2SIZE").is_log2
    assert fmt("CD").field("T0SZ").decimal and not fmt("CD").field("ASID").decimal
    for f in (fmt("STE").field("S2PS"), fmt("CD").field("IPS"), fmt("SMMU_IDR5").field("OAS")):
        assert f.addr_bits == PS_BITS
    for f in (fmt("STE").field("S2TG"), fmt("CD").field("TG0")):
        assert f.granule_shift == {k: v for k, v in TG0_SHIFT.items() if v}
    assert fmt("CD").field("TG1").granule_shift == {k: v for k, v in TG1_SHIFT.items() if v}


# -- the Python mirror -------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SPEC_INTS))
def test_python_constant(name):
    assert getattr(C, name) == SPEC_INTS[name]


@pytest.mark.parametrize("name", sorted(SPEC_MASKS))
def test_python_mask(name):
    assert getattr(C, name) == SPEC_MASKS[name]


def test_python_lookups_and_reasons():
    assert C.STE_S2PS_addr_bits == PS_BITS == C.SMMU_IDR5_OAS_addr_bits
    assert C.CD_TG1_granule_shift == {k: v for k, v in TG1_SHIFT.items() if v}
    assert C.CMD_TLBI_NH_VA_TG_granule_shift == {1: 12, 2: 14, 3: 16}   # IHI 0070 4.4.1
    assert C.REASON_TEXT[C.R_NONE] == "" and len(C.REASON_TEXT) == C.REASON_COUNT
    assert C.REASON_IDS[C.R_STE_V] == "R_STE_V" and "STE.V" in C.REASON_TEXT[C.R_STE_V]
    assert C.EVENT_NAMES[0x10] == "F_TRANSLATION"
    assert not any(n.endswith("_reserved") for n in C.NAMES)


def test_reasons_match_the_walker():
    # Until the walker's own copy is deleted, the two must stay in step (index = enum value).
    walk = pytest.importorskip("core_cy.walk")
    assert walk.REASONS == C.REASON_TEXT


# -- the generated Cython ----------------------------------------------------------------------
PROBE = '''
from libc.stdint cimport uint64_t
from _smmuv3 cimport *

def ints():
    return {%(ints)s}

def lookups():
    return ([STE_S2PS_addr_bits(e) for e in range(8)], [CD_IPS_addr_bits(e) for e in range(8)],
            [SMMU_IDR5_OAS_addr_bits(e) for e in range(8)],
            [STE_S2TG_granule_shift(e) for e in range(4)],
            [CD_TG0_granule_shift(e) for e in range(4)],
            [CD_TG1_granule_shift(e) for e in range(4)])

def addresses():
    cdef uint64_t w[8]
    cdef int i
    for i in range(8):
        w[i] = <uint64_t>0xFFFFFFFFFFFFFFFFULL
    return {"STE_S1ContextPtr": STE_S1ContextPtr_addr(w), "STE_S2TTB": STE_S2TTB_addr(w),
            "CD_TTB0": CD_TTB0_addr(w), "CD_TTB1": CD_TTB1_addr(w),
            "L1CD_L2Ptr": L1CD_L2Ptr_addr_v(w[0]), "L1STD_L2Ptr": L1STD_L2Ptr_addr_v(w[0]),
            "S1_BLOCK_OA": S1_BLOCK_OA_addr_v(w[0]), "S2_TABLE_NLTA": S2_TABLE_NLTA_addr(w),
            "EVT_F_TRANSLATION_IPA": EVT_F_TRANSLATION_IPA_addr(w),
            "EVT_F_CD_FETCH_FetchAddr": EVT_F_CD_FETCH_FetchAddr_addr(w),
            "SMMU_STRTAB_BASE_ADDR": SMMU_STRTAB_BASE_ADDR_addr_v(w[0])}

def reasons():
    return [REASON_TEXT[i].decode() for i in range(REASON_COUNT)]
'''


def _addr(hi, lo):
    return ((1 << (hi + 1)) - 1) & ~((1 << lo) - 1)


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """A throwaway module that cimports the generated constants, cythonized and built in a
    temp dir (core_cy/ may hold no test module)."""
    pytest.importorskip("Cython")
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler")
    d = tmp_path_factory.mktemp("smmuv3_probe")
    gen = runpy.run_path(str(ROOT / "core_cy/gen_fields.py"))
    (d / "_smmuv3.pxd").write_text(gen["render_consts"](gen["architectures"]()["smmuv3"]))
    ints = [n for n, v in C.NAMES.items() if isinstance(v, int)]
    (d / "probe.pyx").write_text(PROBE % {"ints": ", ".join(f'"{n}": {n}' for n in ints)})
    r = subprocess.run([sys.executable, "-m", "Cython.Build.Cythonize", "-i", "-3", "probe.pyx"],
                       cwd=d, capture_output=True, text=True,
                       env={**os.environ, "CFLAGS": "-O0"})
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-3000:]
    sys.path.insert(0, str(d))
    try:
        import probe as mod
    finally:
        sys.path.remove(str(d))
    return mod


def test_cython_constants_match_spec_and_python(probe):
    got = probe.ints()
    for name, v in {**SPEC_INTS, **SPEC_MASKS}.items():
        assert got[name] == v, name
    assert got == {n: v for n, v in C.NAMES.items() if isinstance(v, int)}


def test_cython_lookups(probe):
    ps = [PS_BITS[e] for e in range(8)]
    assert probe.lookups() == (ps, ps, ps, [TG0_SHIFT[e] for e in range(4)],
                               [TG0_SHIFT[e] for e in range(4)], [TG1_SHIFT[e] for e in range(4)])


def test_cython_address_accessors(probe):
    assert probe.addresses() == {
        "STE_S1ContextPtr": _addr(55, 6), "STE_S2TTB": _addr(55, 4), "CD_TTB0": _addr(55, 4),
        "CD_TTB1": _addr(55, 4), "L1CD_L2Ptr": _addr(55, 12), "L1STD_L2Ptr": _addr(55, 6),
        "S1_BLOCK_OA": _addr(47, 12), "S2_TABLE_NLTA": _addr(47, 12),
        "EVT_F_TRANSLATION_IPA": _addr(55, 12), "EVT_F_CD_FETCH_FetchAddr": _addr(55, 3),
        "SMMU_STRTAB_BASE_ADDR": _addr(55, 6)}


def test_cython_reason_texts(probe):
    assert probe.reasons() == C.REASON_TEXT
