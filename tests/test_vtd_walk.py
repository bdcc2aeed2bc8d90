"""The VT-d core walker (core_cy.vtd) against the independent reference walker
(smmudbg/vtd_refwalk.py).

1. The reference walker's hand-derived tests rerun here with Box.core set: every translation
   they make goes through both walkers, which must agree on the outcome, output, size,
   permissions, PGTT, DID, PASID, snoop, fault reason and whether it is recorded, the entries
   read (in order) and the A/D flags written; the tests' own expected values (from the spec) are
   then checked on the result.
2. One test per scalable-mode DMA fault reason: the code (a literal from VT-d 7.1.3) is produced
   by the core walker in one of those scenarios.
3. A differential hypothesis test over random tables (valid mappings, then random bit flips in
   the structures and paging entries, random capabilities) and random requests.
"""
import functools
import inspect

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import test_vtd_refwalk as R
from core_cy.physmem import MemFault
import vtdkit
from vtdkit import CAP, ECAP, SID, SID_HI, Box, compare

# The reference tests of DMA translation (interrupt remapping has its own core later).
DMA_TESTS = [
    "test_ss_4k_2m_1g", "test_ss_permission_and_presence_faults",
    "test_ss_reserved_and_access_errors", "test_ss_accessed_dirty_with_slade",
    "test_ss_three_levels_and_execute", "test_fs_4k_2m_1g_and_access_flags",
    "test_fs_extended_accessed", "test_fs_privilege_write_execute", "test_fs_walk_faults",
    "test_fs_five_levels", "test_nested_translation_and_trace",
    "test_nested_second_stage_fault_during_first_stage_fetch",
    "test_nested_access_flag_needs_second_stage_write",
    "test_nested_first_stage_table_beyond_second_stage_width", "test_pass_through_and_haw",
    "test_interrupt_range_output_and_input", "test_root_entry_faults",
    "test_context_entry_faults", "test_pasid_structure_faults", "test_pasid_entry_faults",
    "test_fpd_suppresses_qualified_faults_only", "test_translation_disabled",
    "test_ss_five_levels", "test_access_flags_need_snooped_walks",
]


@pytest.fixture(autouse=True)
def _core(monkeypatch):
    monkeypatch.setattr(Box, "core", True)


def _fixture_box(name):
    fx = getattr(R, name)
    return getattr(fx, "__wrapped__", fx)()


def _run(name):
    fn = getattr(R, name)
    fn(*[_fixture_box(p) for p in inspect.signature(fn).parameters])


@pytest.mark.parametrize("name", DMA_TESTS)
def test_reference_scenarios_agree(name):
    _run(name)


@functools.cache
def _reasons():
    Box.core = True
    try:
        Box.reasons_seen.clear()
        for name in DMA_TESTS:
            _run(name)
        return frozenset(Box.reasons_seen)
    finally:
        Box.core = False


# VT-d 7.1.3, scalable mode: every fault condition the walker models, with its code.
REASONS = {
    "RTA_1": 0x30, "RTA_2": 0x31, "SRT_1": 0x38, "SRT_2": 0x39, "SRT_3": 0x3A,
    "SCT_1": 0x40, "SCT_2": 0x41, "SCT_3": 0x42, "SCT_4": 0x43, "SCT_5": 0x44, "SCT_6": 0x45,
    "SCT_7": 0x46, "SPD_1": 0x50, "SPD_2": 0x51, "SPD_3": 0x52, "SPT_1": 0x58, "SPT_2": 0x59,
    "SPT_3": 0x5A, "SPT_4": 0x5B, "SPT_5": 0x5C, "SPT_6": 0x5D, "SFS_1": 0x70, "SFS_2": 0x71,
    "SFS_3": 0x72, "SFS_4": 0x73, "SFS_5": 0x74, "SFS_6": 0x75, "SFS_7": 0x76, "SFS_8": 0x77,
    "SSS_1": 0x78, "SSS_2": 0x79, "SSS_3": 0x7A, "SSS_4": 0x7B, "SSS_5": 0x7C,
    "SGN_1": 0x80, "SGN_2": 0x81, "SGN_3": 0x82, "SGN_4": 0x83, "SGN_5": 0x84, "SGN_6": 0x85,
    "SGN_7": 0x86, "SGN_8": 0x87, "SFS_9": 0x90,
}


@pytest.mark.parametrize("name", sorted(REASONS))
def test_every_fault_reason(name):
    assert REASONS[name] in _reasons()


def test_codes_are_the_tables():
    from smmudbg.arch.vtd import consts as C
    assert all(getattr(C, n) == code for n, code in REASONS.items())


# -- differential: random worlds --------------------------------------------------------------
# Bits worth flipping in a paging entry or structure word: presence and permissions, PS, A/D,
# EA, SNP, address bits near the large-page boundaries and above the host address width, XD/TM.
FLIP_BITS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 20, 21, 29, 30, 39, 40, 46, 47, 48,
             50, 51, 52, 62, 63]


def _build(fn, *args, **kw):
    """A builder call; a mapping below an existing large page (whose 'table' is not memory)
    is skipped."""
    try:
        fn(*args, **kw)
    except MemFault:
        pass


def _world(data):
    b = Box()
    u = b.unit
    for bit in data.draw(st.sets(st.sampled_from([9, 10, 11, 34, 35, 56, 60]), max_size=1)):
        u.cap &= ~(1 << bit)                 # SAGAW widths, SLLPS 2M/1G, FL1GP, FL5LP
    for bit in data.draw(st.sets(st.sampled_from([2, 6, 7, 26, 29, 46, 47, 53]), max_size=1)):
        u.ecap ^= 1 << bit                   # DT, PT, SC, NEST, PRS, SLTS, FLTS, RPRIVS
    u.haw = data.draw(st.sampled_from([39, 46, 48, 52]))
    aw = data.draw(st.sampled_from([1, 2, 3]))
    levels = b.ss_levels = aw + 2
    b.ss_root = b.alloc()
    five = data.draw(st.booleans())
    fs_levels = 5 if five else 4
    fs_plain = b.fs_table()
    fs_nested = b.fs_table(b.ss_root)       # first-stage tables at GPA 0x40000000 and up
    for i in range(data.draw(st.integers(1, 4))):
        gpa = data.draw(st.sampled_from([0x1000, 0x9000, 0xA000, 0x200000, 0x80000000,
                                         0x3FFFF000]))
        lvl = data.draw(st.sampled_from([1, 1, 2, 3]))
        gpa &= ~((1 << (12 + 9 * (lvl - 1))) - 1)
        pa = data.draw(st.sampled_from([0x90000000, 0xFEE00000, 0x1_0000_0000]))
        perm = dict(r=data.draw(st.integers(0, 1)), w=data.draw(st.integers(0, 1)),
                    x=data.draw(st.integers(0, 1)))
        _build(b.ss_map, b.ss_root, gpa, pa, level=lvl, levels=levels, **perm)
    vas = [0x1000, 0x2000, 0x201000, 0x40000000, 0xFFFF800000001000]
    if five:
        vas.append((1 << 48) | 0x3000)
    for va in vas[:data.draw(st.integers(1, len(vas)))]:
        for root, ss_root in ((fs_plain, None), (fs_nested, b.ss_root)):
            lvl = data.draw(st.sampled_from([1, 1, 2, 3]))
            out = data.draw(st.sampled_from([0x1000, 0x9000, 0x200000, 0x40000000]))
            out &= ~((1 << (12 + 9 * (lvl - 1))) - 1)
            bits = {k: data.draw(st.integers(0, 1)) for k in ("rw", "us", "xd", "a", "d")}
            _build(b.fs_map, root, va & ~((1 << (12 + 9 * (lvl - 1))) - 1), out, level=lvl,
                   levels=fs_levels, ss_root=ss_root, **bits)
    for pasid in range(4):
        pgtt = data.draw(st.sampled_from([1, 2, 3, 4, 1, 2, 3, 1, 2, 3, 3, 5]))
        fields = dict(PGTT=pgtt, AW=data.draw(st.sampled_from([aw] * 8 + [0, 4])),
                      SLPTPTR=b.ss_root >> 12, FLPM=1 if five else 0,
                      FLPTPTR=(fs_nested if pgtt == 3 else fs_plain)[0] >> 12,
                      DID=pasid + 1)
        for flag in ("WPE", "EAFE", "SLADE", "SLEE", "PGSNP", "FPD"):
            fields[flag] = data.draw(st.integers(0, 1))
        for flag in ("SRE", "ERE"):
            fields[flag] = data.draw(st.sampled_from([1, 1, 1, 0]))
        fields["PWSNP"] = data.draw(st.sampled_from([1, 1, 0]))
        b.pasid(pasid, **fields)
    # Random bit flips in any word written so far (structures and paging entries).
    pages = [vtdkit.ROOT_TABLE, vtdkit.CTX_TABLE, vtdkit.CTX_TABLE_HI, vtdkit.PASID_DIR,
             vtdkit.PASID_TABLE] + list(range(0x200000, b.next, 0x1000))
    words = [p + 8 * i for p in pages for i in range(512) if b.pm.read_u64(p + 8 * i)]
    for _ in range(data.draw(st.integers(0, 3))):
        pa = data.draw(st.sampled_from(words))
        b.pm.write_u64(pa, b.pm.read_u64(pa) ^ (1 << data.draw(st.sampled_from(FLIP_BITS))))
    return b, vas


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_differential_random_worlds(data):
    b, vas = _world(data)
    for _ in range(data.draw(st.integers(1, 8))):
        pasid = data.draw(st.sampled_from([None, None, 0, 1, 2, 3, 1, 2, 3, 64, 1 << 13]))
        addr = data.draw(st.sampled_from(vas + [0x9000, 0xA000, 0x3000, 0x3FFFF123,
                                                0xFEE00010, 1 << 47, 1 << 52]))
        addr += data.draw(st.sampled_from([0, 0x8, 0xFF8, 0x1234]))
        has = pasid is not None
        compare(b, data.draw(st.sampled_from([SID] * 6 + [SID_HI, 0x0200])), addr, pasid=pasid,
                write=data.draw(st.booleans()),
                exe=has and data.draw(st.booleans()), priv=has and data.draw(st.booleans()),
                at=data.draw(st.sampled_from([0, 0, 0, 1])), apply_ad=data.draw(st.booleans()))


def test_core_walker_trace_names_the_vtd_steps():
    # Nested: the PASID entry, then per first-stage level the second-stage walk of the table's
    # GPA (purpose fs_table) and the first-stage entry, then the output GPA's walk (input).
    b = R.nested_box()
    r = b.core_walker().translate(SID, 0x1234, 3, trace=True, dry=True)
    kinds = [(s["what"], s["level"], s["purpose"]) for s in r["steps"]]
    assert kinds[:4] == [("root", None, None), ("context", None, None),
                         ("pasid_dir", None, None), ("pasid_entry", None, None)]
    tt = [("ss", lvl, "fs_table") for lvl in (4, 3, 2, 1)]
    assert kinds[4:] == (tt + [("fs", 4, None)] + tt + [("fs", 3, None)] + tt +
                         [("fs", 2, None)] + tt + [("fs", 1, None)] +
                         [("ss", lvl, "input") for lvl in (4, 3, 2, 1)])
    # The first-stage steps carry the GPA of the entry and the PA it was read from.
    fs = [s for s in r["steps"] if s["what"] == "fs"]
    assert all(s["desc_gpa"] is not None and s["desc_gpa"] >= 0x40000000 for s in fs)
    assert (r["pa"], r["gpa"], r["pgtt"], r["did"]) == (0x99234, 0x9234, "nested", 11)


def test_core_walker_fault_record_carries_the_walk_fault():
    b = R.nested_box(tables={1: (0, 1, 1)})      # the PT page is not readable at the SS
    f = b.core_walker().translate(SID, 0x1000, 3, dry=True)["fault"]
    assert (f["reason"], f["name"]) == (0x76, "SFS_7")
    assert f["walk"]["kind"] == "permission" and f["walk"]["stage"] == 2
    assert f["walk"]["purpose"] == "fs_table" and f["walk"]["fs_level"] == 1


def test_core_walker_batch_matches_single():
    b = R.nested_box()
    w = b.core_walker()
    pa, reason, perm = w.translate_batch([SID] * 3, [0x1234, 0x2000, 0x5000], [3, 3, 3],
                                         [0, 1, 0])
    assert list(pa) == [0x99234, 0, 0]
    assert list(reason) == [0, 0x85, 0x71]          # SGN.6 (SS W=0), SFS.2 (not present)
    assert perm[0] == 7


def test_core_walker_rejects_bad_requests():
    w = Box().core_walker()
    with pytest.raises(ValueError, match="PASID"):
        w.translate(SID, 0, 1 << 20)
    with pytest.raises(ValueError, match="need a PASID"):
        w.translate(SID, 0, None, exe=True)
    with pytest.raises(ValueError, match="unknown register"):
        w.configure(bogus=1)
    assert CAP and ECAP


# -- interrupt remapping: the core's remap_msi against the reference ----------------------------
IR_TESTS = ["test_remapped_interrupt", "test_interrupt_faults", "test_source_id_verification",
            "test_compatibility_format_and_posted"]
_ref_remap = R.remap_msi


def remap_both(mem, unit, sid, addr, data):
    """The reference walker's answer, after checking the core walker gives the same."""
    from core_cy.vtd import VtdWalker
    ref = _ref_remap(mem, unit, sid, addr, data)
    w = VtdWalker(mem.physmem, cap=unit.cap, ecap=unit.ecap, gsts=unit.gsts,
                  rtaddr=unit.rtaddr, irta=unit.irta, haw=unit.haw)
    cy = w.remap_msi(sid, addr, data)
    where = f"sid={sid:#x} addr={addr:#x} data={data:#x}"
    assert (cy["ok"], cy["remapped"], cy["format"]) == (ref.ok, ref.remapped, ref.format), where
    if ref.ok:
        assert (cy["index"], cy["vector"], cy["dest"], cy["dest_mode"], cy["delivery"],
                cy["trigger"], cy["redirection_hint"], cy["posted"], cy["pda"],
                cy["urgent"]) == (ref.index, ref.vector, ref.dest, ref.dest_mode, ref.delivery,
                                  ref.trigger, ref.redirection_hint, ref.posted, ref.pda,
                                  ref.urgent), where
    else:
        f = ref.fault
        assert (cy["fault"]["reason"], cy["fault"]["fi"], cy["fault"]["recorded"],
                cy["index"]) == (f.reason, f.fi, f.recorded, ref.index), where
    return ref


@pytest.mark.parametrize("name", IR_TESTS)
def test_reference_interrupt_scenarios_agree(name, monkeypatch):
    monkeypatch.setattr(R, "remap_msi", remap_both)
    fn = getattr(R, name)
    fn(*[_fixture_box(p) for p in inspect.signature(fn).parameters])


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_differential_random_irtes(data):
    b = Box()
    irt = 0x60000
    b.unit.irta = irt | data.draw(st.sampled_from([3, 3, 0])) | \
        (data.draw(st.sampled_from([0, 0, 1])) << 11)                 # S, EIME
    b.unit.gsts ^= data.draw(st.sampled_from([0, 0, 0, 1 << 23, 1 << 25]))   # CFIS, IRES
    if data.draw(st.booleans()):
        b.unit.cap &= ~(1 << 59)                                        # no PI
    for i in range(16):
        lo = data.draw(st.integers(0, (1 << 64) - 1)) if data.draw(st.booleans()) else \
            vtdkit.e("IRTE", P=1, V=0x30 + i, DST=data.draw(st.sampled_from([0x100, 0x3F00])),
                     DLM=data.draw(st.sampled_from([0, 1, 4, 3])),
                     IM=data.draw(st.sampled_from([0, 0, 1])))[0]
        hi = data.draw(st.sampled_from([0, 0x0108, (1 << 18) | 0x0108, (1 << 18) | (3 << 16)
                                        | 0x0108, (2 << 18) | 0x0103, 3 << 18, 1 << 40]))
        b.w(irt + 16 * i, [lo, hi])
    for _ in range(6):
        handle = data.draw(st.integers(0, 20))
        shv = data.draw(st.integers(0, 1))
        remap = data.draw(st.sampled_from([1, 1, 1, 0]))
        addr = 0xFEE00000 | ((handle & 0x7FFF) << 5) | (remap << 4) | (shv << 3)
        d = data.draw(st.sampled_from([0, 1, 3, 0x10000, 0x4099]))
        remap_both(b.mem, b.unit, data.draw(st.sampled_from([SID, SID | 1, 0x0310])), addr, d)


def test_handle_bit_15_and_the_xapic_destination():
    # VT-d 5.1.2.2: a remappable MSI address holds handle[14:0] in bits 19:5 and handle[15] in
    # bit 2 (IF = bit 4); 9.9: with IRTA_REG.EIME=0 the xAPIC destination is IRTE.DST[15:8].
    b = Box()
    irt = 0x100000
    b.unit.irta = irt | 15                          # S=15: 2^16 entries, EIME=0
    b.w(irt + 16 * 0x8003, vtdkit.e("IRTE", P=1, V=0x51, DST=0x2A00))
    addr = 0xFEE00000 | (0x0003 << 5) | (1 << 4) | (1 << 2)
    r = remap_both(b.mem, b.unit, SID, addr, 0)
    assert (r.ok, r.index, r.vector, r.dest) == (True, 0x8003, 0x51, 0x2A)
