"""The VT-d reference walker (smmudbg/vtd_refwalk.py) on hand-built scalable-mode tables.

The tables are encoded with the VT-d field tables (smmudbg/arch/vtd) and decoded by the walker's
own bit positions, so a disagreement between the two fails here. Every expected output address,
page size, permission and fault reason is derived by hand in the test from the mappings it
builds and the VT-d rules (fault reasons: VT-d 7.1.3 / 5.1.4.1).
"""
import pytest

from core_cy.physmem import PhysMem
from smmudbg.vtd_refwalk import Unit, VtdWalkError, port, remap_msi
from vtdkit import (CAP, CTX_TABLE, ECAP, GSTS, PASID_DIR, PASID_TABLE, ROOT_TABLE, SID, SID_HI,
                    Box, e)


def fault(r):
    assert r.kind == "fault", (r.kind, r.output)
    return r.fault.reason


# -- second stage only (PGTT=010b) ---------------------------------------------------------------
@pytest.fixture
def ss():
    b = Box()
    b.ss_root = b.alloc()
    # RID_PASID 0: second stage only, AW=2 (48 bits, 4 levels), DID 7.
    b.pasid(0, PGTT=2, AW=2, SLPTPTR=b.ss_root >> 12, DID=7)
    b.ss_map(b.ss_root, 0x1000, 0x90001000)                        # rwx
    b.ss_map(b.ss_root, 0x2000, 0x90002000, w=0)                   # read-only
    b.ss_map(b.ss_root, 0x3000, 0x90003000, r=0)                   # write-only
    b.ss_map(b.ss_root, 0x200000, 0x400200000, level=2)            # 2MB
    b.ss_map(b.ss_root, 0x40000000, 0x140000000, level=3)          # 1GB
    return b


def test_ss_4k_2m_1g(ss):
    r = ss.tr(0x1234)
    assert (r.kind, r.output, r.size, r.perm, r.pgtt, r.did, r.pasid) == (
        "translated", 0x90001234, 0x1000, "rwx", "second_stage", 7, 0)
    assert [(s.what, s.level) for s in r.steps] == [
        ("root", 0), ("context", 0), ("pasid_dir", 0), ("pasid_entry", 0),
        ("ss", 4), ("ss", 3), ("ss", 2), ("ss", 1)]
    # SLEE=0: X is not checked, so a readable page is executable.
    assert ss.tr(0x2FF8).output == 0x90002FF8 and ss.tr(0x2FF8).perm == "r-x"
    r = ss.tr(0x3ABCDE, write=True)
    assert (r.output, r.size) == (0x400200000 + 0x1ABCDE, 0x200000)
    r = ss.tr(0x7FFFFFF0)
    assert (r.output, r.size) == (0x140000000 + 0x3FFFFFF0, 0x40000000)


def test_ss_permission_and_presence_faults(ss):
    assert fault(ss.tr(0x2000, write=True)) == 0x85           # SGN.6: W=0
    assert fault(ss.tr(0x3000)) == 0x86                       # SGN.7: R=0
    assert ss.tr(0x3000, write=True).output == 0x90003000
    r = ss.tr(0x5000, write=True)                               # PTE all zero: R=W=0
    assert fault(r) == 0x79 and r.fault.fi == 0x5000 and r.fault.write
    assert r.fault.sid == SID and r.fault.recorded and r.fault.pasid is None
    assert fault(ss.tr(1 << 48)) == 0x84                      # SGN.5: beyond AW=48 bits


def test_ss_reserved_and_access_errors(ss):
    pte = ss.ss_map(ss.ss_root, 0x6000, 0x90006000)
    ss.pm.write_u64(pte, ss.pm.read_u64(pte) | (1 << 62))       # TM: a leaf field with DT=1
    assert ss.tr(0x6000).ok
    ss.unit.ecap &= ~(1 << 2)                                    # no device-TLBs: reserved
    assert fault(ss.tr(0x6000)) == 0x42                       # ... and so is DTE (SCT.3)
    ss.w(CTX_TABLE + 32 * 8, e("SM_CONTEXT_ENTRY", P=1, PASIDE=1, PASIDDIRPTR=PASID_DIR >> 12))
    assert fault(ss.tr(0x6000)) == 0x7A                       # SSS.3
    ss.ss_map(ss.ss_root, 0x7000, 0x90007000, SNP=1)
    assert fault(ss.tr(0x7000)) == 0x7A                       # SNP without ECAP_REG.SC
    ss.unit.ecap |= 1 << 7
    assert ss.tr(0x7000).snoop and not ss.tr(0x1000).snoop
    pdpe = ss.steps_of(0x7000)[-3]
    ss.pm.write_u64(pdpe, ss.pm.read_u64(pdpe) | (1 << 11))     # bit 11 of a non-leaf entry
    assert fault(ss.tr(0x7000)) == 0x7A
    pde = ss.ss_map(ss.ss_root, 0x600000, 0x500600000, level=2)
    ss.pm.write_u64(pde, ss.pm.read_u64(pde) | (1 << 12))       # 2MB address bit 12 reserved
    assert fault(ss.tr(0x600000)) == 0x7A
    # A PML4 entry pointing to memory that does not exist: error below the root (SSS.1).
    ss.w(ss.ss_root + 8 * 1, e("SS_PML4E", R=1, W=1, ADDR=0x7F000000 >> 12))
    assert fault(ss.tr(1 << 39)) == 0x78
    # The root table itself missing: SSS.4.
    ss.pasid(0, PGTT=2, AW=2, SLPTPTR=0x7E000000 >> 12, DID=7)
    assert fault(ss.tr(0x1000)) == 0x7B


def test_ss_accessed_dirty_with_slade(ss):
    ss.pasid(0, PGTT=2, AW=2, SLPTPTR=ss.ss_root >> 12, DID=7, SLADE=1)
    r = ss.tr(0x1000, write=True)
    # A (bit 8) in the four entries used, D (bit 9) in the leaf.
    assert [(old ^ new) for _pa, old, new in r.ad_updates] == [1 << 8] * 4 + [1 << 9]
    assert all(ss.pm.read_u64(s.addr) & (1 << 8) for s in r.steps if s.what == "ss")
    assert ss.pm.read_u64(r.steps[-1].addr) & (1 << 9)
    assert ss.tr(0x1000, write=True).ad_updates == []           # nothing left to set
    # A faulting request changes nothing; without SLADE nothing is written either.
    assert ss.tr(0x2000, write=True).ad_updates == []
    ss.pasid(0, PGTT=2, AW=2, SLPTPTR=ss.ss_root >> 12, DID=7)
    assert ss.tr(0x200000, write=True).ad_updates == []


def test_ss_three_levels_and_execute():
    b = Box()
    root = b.alloc()
    # PASID 5: AW=1 (39 bits, 3 levels), SLEE=1, ERE=1.
    b.pasid(5, PGTT=2, AW=1, SLPTPTR=root >> 12, SLEE=1, SRE=1, ERE=1)
    b.ss_map(root, 0x1000, 0x70001000, levels=3, x=0)
    b.ss_map(root, 0x2000, 0x70002000, levels=3)
    r = b.tr(0x1000, pasid=5)
    assert (r.output, r.perm, [s.level for s in r.steps if s.what == "ss"]) == (
        0x70001000, "rw-", [3, 2, 1])
    assert fault(b.tr(0x1000, pasid=5, exe=True)) == 0x82     # SGN.3: X=0 with SLEE=1
    assert b.tr(0x2000, pasid=5, exe=True, priv=True).output == 0x70002000
    assert fault(b.tr(1 << 39, pasid=5)) == 0x84              # beyond 39 bits
    b.pasid(5, PGTT=2, AW=3, SLPTPTR=root >> 12)                # AW=3 but SAGAW lacks 57 bits
    b.unit.cap &= ~(1 << 11)
    assert fault(b.tr(0x1000, pasid=5)) == 0x5B               # SPT.4


# -- first stage only (PGTT=001b) ----------------------------------------------------------------
@pytest.fixture
def fs():
    b = Box()
    b.fs_root = b.fs_table()
    b.pasid(1, PGTT=1, FLPTPTR=b.fs_root[0] >> 12, DID=9, SRE=1, ERE=1, EAFE=0)
    b.fs_map(b.fs_root, 0x1000, 0xA0001000)                                  # user rw
    b.fs_map(b.fs_root, 0x2000, 0xA0002000, rw=0, us=0)                      # supervisor ro
    b.fs_map(b.fs_root, 0x3000, 0xA0003000, xd=1)                            # no execute
    b.fs_map(b.fs_root, 0x200000, 0xB0000000, level=2)                       # 2MB
    b.fs_map(b.fs_root, 0x40000000, 0x1C0000000, level=3)                    # 1GB
    return b


def test_fs_4k_2m_1g_and_access_flags(fs):
    r = fs.tr(0x1ABC, pasid=1, write=True)
    assert (r.output, r.size, r.perm, r.pgtt, r.did) == (0xA0001ABC, 0x1000, "rwx",
                                                        "first_stage", 9)
    assert [(s.what, s.level) for s in r.steps][4:] == [("fs", 4), ("fs", 3), ("fs", 2),
                                                       ("fs", 1)]
    # A (bit 5) in every entry, and D (bit 6) too in the leaf of a write; EAFE=0: no EA.
    assert [old ^ new for _pa, old, new in r.ad_updates] == [0x20, 0x20, 0x20, 0x60]
    assert fs.pm.read_u64(r.steps[-1].addr) & 0x60 == 0x60
    r = fs.tr(0x201234, pasid=1)
    assert (r.output, r.size) == (0xB0001234, 0x200000)
    r = fs.tr(0x40012345, pasid=1)
    assert (r.output, r.size) == (0x1C0012345, 0x40000000)


def test_fs_extended_accessed(fs):
    fs.pasid(1, PGTT=1, FLPTPTR=fs.fs_root[0] >> 12, SRE=1, ERE=1, EAFE=1)
    r = fs.tr(0x1000, pasid=1)
    assert [old ^ new for _pa, old, new in r.ad_updates] == [0x420] * 4   # A and EA (bit 10)


def test_fs_privilege_write_execute(fs):
    assert fault(fs.tr(0x2000, pasid=1)) == 0x81              # SGN.2: user, U/S=0
    r = fs.tr(0x2000, pasid=1, priv=True)
    assert (r.output, r.perm) == (0xA0002000, "rwx")            # supervisor, WPE=0: writable
    assert fs.tr(0x2000, pasid=1, priv=True, write=True).ok
    fs.pasid(1, PGTT=1, FLPTPTR=fs.fs_root[0] >> 12, SRE=1, ERE=1, WPE=1)
    assert fault(fs.tr(0x2000, pasid=1, priv=True, write=True)) == 0x85   # SGN.6 with WPE
    fs.fs_map(fs.fs_root, 0x4000, 0xA0004000, rw=0)
    assert fault(fs.tr(0x4000, pasid=1, write=True)) == 0x85
    assert fault(fs.tr(0x3000, pasid=1, exe=True)) == 0x82    # SGN.3: XD=1
    assert fs.tr(0x3000, pasid=1).perm == "rw-"
    assert fs.tr(0x1000, pasid=1, exe=True).ok
    # A request failing permission changes no A/D flag.
    assert fs.tr(0x4000, pasid=1, write=True).ad_updates == []


def test_fs_walk_faults(fs):
    assert fault(fs.tr(0x7000, pasid=1)) == 0x71              # SFS.2: PTE P=0
    assert fault(fs.tr(1 << 47, pasid=1)) == 0x80             # SGN.1: not canonical
    assert fs.tr(0xFFFF800000000000, pasid=1).fault.reason == 0x71   # canonical, not mapped
    # PS=1 in a PML4E is reserved.
    fs.w(fs.fs_root[1] + 8 * 5, e("FS_PML4E", P=1, RW=1, US=1, PS=1, ADDR=0x300))
    assert fault(fs.tr(5 << 39, pasid=1)) == 0x72             # SFS.3
    # 1GB pages need CAP_REG.FL1GP.
    fs.unit.cap &= ~(1 << 56)
    assert fault(fs.tr(0x40000000, pasid=1)) == 0x72
    # A table below the root in missing memory (SFS.1); the root itself missing (SFS.4).
    fs.w(fs.fs_root[1] + 8 * 6, e("FS_PML4E", P=1, RW=1, US=1, ADDR=0x7F000000 >> 12))
    assert fault(fs.tr(6 << 39, pasid=1)) == 0x70
    fs.pasid(1, PGTT=1, FLPTPTR=0x7E000000 >> 12, SRE=1)
    assert fault(fs.tr(0x1000, pasid=1)) == 0x73


def test_fs_five_levels():
    b = Box()
    root = b.fs_table()
    b.pasid(2, PGTT=1, FLPM=1, FLPTPTR=root[0] >> 12)
    va = (1 << 48) | 0x1000             # PML5 index 1; canonical for 57 bits only
    b.fs_map(root, va, 0xA5001000, levels=5)
    r = b.tr(va | 0x10, pasid=2)
    assert (r.output, [s.level for s in r.steps if s.what == "fs"]) == (
        0xA5001010, [5, 4, 3, 2, 1])
    b.pasid(2, PGTT=1, FLPM=0, FLPTPTR=root[0] >> 12)
    assert fault(b.tr(va, pasid=2)) == 0x80                   # 4-level: not canonical
    b.unit.cap &= ~(1 << 60)                                     # no FL5LP
    b.pasid(2, PGTT=1, FLPM=1, FLPTPTR=root[0] >> 12)
    assert fault(b.tr(va, pasid=2)) == 0x5B                   # SPT.4


# -- nested (PGTT=011b) --------------------------------------------------------------------------
def nested_box(**ss_perm):
    b = Box()
    b.ss_root = b.alloc()
    b.fs_root = b.fs_table(b.ss_root, ss_perm.get("root", (1, 1, 1)))
    b.pasid(3, PGTT=3, AW=2, SLPTPTR=b.ss_root >> 12, FLPTPTR=b.fs_root[0] >> 12, SRE=1,
            SLADE=1, DID=11)
    # VA 0x1000 -> GPA 0x9000 -> PA 0x99000; GPA 0xA000 -> PA 0x9A000 read-only.
    b.fs_map(b.fs_root, 0x1000, 0x9000, ss_root=b.ss_root, ss_perm=ss_perm.get("tables"))
    b.fs_map(b.fs_root, 0x2000, 0xA000, ss_root=b.ss_root)
    b.ss_map(b.ss_root, 0x9000, 0x99000)
    b.ss_map(b.ss_root, 0xA000, 0x9A000, w=0)
    return b


def test_nested_translation_and_trace():
    b = nested_box()
    r = b.tr(0x1234, pasid=3, write=True)
    assert (r.output, r.pgtt, r.did, r.perm) == (0x99234, "nested", 11, "rwx")
    # Each first-stage fetch is preceded by the second-stage walk of its GPA, then the output
    # GPA 0x9000 is walked: 4 x (4 ss + 1 fs) + 4 ss.
    kinds = [(s.what, s.level) for s in r.steps[4:]]
    assert kinds == [("ss", 4), ("ss", 3), ("ss", 2), ("ss", 1), ("fs", 4)] + \
        [("ss", 4), ("ss", 3), ("ss", 2), ("ss", 1), ("fs", 3)] + \
        [("ss", 4), ("ss", 3), ("ss", 2), ("ss", 1), ("fs", 2)] + \
        [("ss", 4), ("ss", 3), ("ss", 2), ("ss", 1), ("fs", 1)] + \
        [("ss", 4), ("ss", 3), ("ss", 2), ("ss", 1)]
    assert [s.note for s in r.steps if s.what == "ss"][:4] == ["fs_root"] * 4
    assert all(b.pm.read_u64(s.addr) & 0x20 for s in r.steps if s.what == "fs")
    # With SLADE the second-stage leaf of each first-stage table page got D (the walker wrote
    # A/D there), and the data page's leaf too.
    fs_table_pages = {s.addr & ~0xFFF for s in r.steps if s.what == "fs"}
    ss_leaves = [s for s in r.steps if s.what == "ss" and s.level == 1]
    assert all(b.pm.read_u64(s.addr) & (1 << 9) for s in ss_leaves)
    assert len(fs_table_pages) == 4
    assert fault(b.tr(0x2000, pasid=3, write=True)) == 0x85   # final GPA read-only at SS
    assert b.tr(0x2000, pasid=3).output == 0x9A000


def test_nested_second_stage_fault_during_first_stage_fetch():
    # The PD (level-2 table) page is not mapped at the second stage: R=W=0 there (SSS.2).
    b = nested_box(tables={2: (0, 0, 0)})
    r = b.tr(0x1000, pasid=3)
    assert fault(r) == 0x79
    # PML4E and PDPE were read; the walk stopped in the second-stage walk of the PD's GPA.
    assert [(s.what, s.level) for s in r.steps][-4:] == [("ss", 4), ("ss", 3), ("ss", 2),
                                                        ("ss", 1)]
    assert [s.what for s in r.steps].count("fs") == 2 and r.fault.fi == 0x1000
    # Read permission missing (W only) for the root table (SFS.6) or a lower table (SFS.7).
    assert fault(nested_box(root=(0, 1, 1)).tr(0x1000, pasid=3)) == 0x75
    assert fault(nested_box(tables={1: (0, 1, 1)}).tr(0x1000, pasid=3)) == 0x76


def test_nested_access_flag_needs_second_stage_write():
    # The PT page is read-only at the second stage; the first stage must set A in its PTE.
    b = nested_box(tables={1: (1, 0, 1)})
    r = b.tr(0x1000, pasid=3)
    assert fault(r) == 0x77                                   # SFS.8
    assert r.ad_updates == []
    # With A already set in every first-stage entry a read needs no write: it translates.
    b2 = Box()
    b2.ss_root = b2.alloc()
    root = b2.fs_table(b2.ss_root)
    b2.pasid(3, PGTT=3, AW=2, SLPTPTR=b2.ss_root >> 12, FLPTPTR=root[0] >> 12)
    b2.fs_map(root, 0x1000, 0x9000, ss_root=b2.ss_root, a=1, ss_perm={1: (1, 0, 1)})
    b2.ss_map(b2.ss_root, 0x9000, 0x99000)
    assert b2.tr(0x1000, pasid=3).output == 0x99000
    assert fault(b2.tr(0x1000, pasid=3, write=True)) == 0x77  # D must be set: SFS.8


def test_nested_first_stage_table_beyond_second_stage_width():
    b = nested_box()
    # A PML4E pointing at GPA 2^50: within HAW (52), beyond the second stage's 48 bits.
    b.w(b.fs_root[1] + 8 * 2, e("FS_PML4E", P=1, RW=1, US=1, ADDR=(1 << 50) >> 12))
    assert fault(b.tr(2 << 39, pasid=3)) == 0x74              # SFS.5
    # A first-stage output GPA beyond 48 bits: SGN.5.
    b.fs_map(b.fs_root, 0x5000, 1 << 49, ss_root=b.ss_root)
    assert fault(b.tr(0x5000, pasid=3)) == 0x84


# -- pass-through and the configuration path ------------------------------------------------------
def test_pass_through_and_haw():
    b = Box()
    b.pasid(4, PGTT=4, DID=3)
    r = b.tr(0x123456789, pasid=4, write=True)
    assert (r.output, r.pgtt, r.perm, r.did) == (0x123456789, "pass_through", "rwx", 3)
    b.unit.haw = 39
    assert fault(b.tr(1 << 39, pasid=4)) == 0x83              # SGN.4
    b.unit.ecap &= ~(1 << 6)                                     # no ECAP_REG.PT
    assert fault(b.tr(0x1000, pasid=4)) == 0x5B


def test_interrupt_range_output_and_input():
    b = Box()
    root = b.alloc()
    b.pasid(0, PGTT=2, AW=2, SLPTPTR=root >> 12)
    b.ss_map(root, 0x1000, 0xFEE00000)
    assert fault(b.tr(0x1000)) == 0x87                        # SGN.8
    assert b.tr(0xFEE00000, write=True).kind == "interrupt"    # no PASID: an interrupt
    assert b.tr(0xFEE00000).kind == "blocked"
    b.pasid(4, PGTT=4)
    assert fault(b.tr(0xFEE00004, pasid=4, write=True)) == 0x87   # with PASID: translated


@pytest.fixture
def cfg():
    b = Box()
    root = b.alloc()
    b.ss_map(root, 0x1000, 0x90001000)
    b.pasid(0, PGTT=2, AW=2, SLPTPTR=root >> 12)
    b.pasid(1, PGTT=2, AW=2, SLPTPTR=root >> 12)
    return b


def test_root_entry_faults(cfg):
    assert cfg.tr(0x1000, sid=SID_HI, pasid=1).output == 0x90001000   # upper half (UCTP)
    cfg.w(ROOT_TABLE + 16, e("SM_ROOT_ENTRY", LP=1, LCTP=CTX_TABLE >> 12, UP=0))
    r = cfg.tr(0x1000, sid=SID_HI)
    assert fault(r) == 0x39 and r.fault.recorded            # SRT.2
    cfg.w(ROOT_TABLE + 16, e("SM_ROOT_ENTRY", LP=1, LCTP=CTX_TABLE >> 12))
    cfg.pm.write_u64(ROOT_TABLE + 16, cfg.pm.read_u64(ROOT_TABLE + 16) | 0x2)
    assert fault(cfg.tr(0x1000)) == 0x3A                      # SRT.3: bit 1 reserved
    cfg.unit.rtaddr = 0x7F000000 | (1 << 10)
    assert fault(cfg.tr(0x1000)) == 0x38                      # SRT.1: no memory
    cfg.unit.rtaddr = ROOT_TABLE | (2 << 10)
    assert fault(cfg.tr(0x1000)) == 0x30                      # RTA.1: TTM=10b reserved
    cfg.unit.rtaddr = ROOT_TABLE
    assert fault(cfg.tr(0x1000, pasid=1)) == 0x31             # RTA.2: PASID in legacy mode
    with pytest.raises(VtdWalkError, match="legacy"):
        cfg.tr(0x1000)


def test_context_entry_faults(cfg):
    ctx = CTX_TABLE + 32 * 8

    def ctx_entry(**kw):
        fields = dict(P=1, DTE=1, PASIDE=1, PASIDDIRPTR=PASID_DIR >> 12)
        fields.update(kw)
        cfg.w(ctx, e("SM_CONTEXT_ENTRY", **fields))

    ctx_entry(PASIDE=0)
    assert fault(cfg.tr(0x1000, pasid=1)) == 0x45             # SCT.6
    assert cfg.tr(0x1000).ok                                     # without PASID: fine
    ctx_entry(DTE=0)
    assert fault(cfg.tr(0x1000, at=1)) == 0x44                # SCT.5: translation request
    ctx_entry(PDTS=0)
    assert fault(cfg.tr(0x1000, pasid=128 << 6)) == 0x46      # SCT.7: 128 directory entries
    ctx_entry(RID_PASID=128 << 6)
    assert fault(cfg.tr(0x1000)) == 0x43                      # SCT.4
    ctx_entry()
    cfg.pm.write_u64(ctx + 16, 1)                                # dword 2 reserved
    assert fault(cfg.tr(0x1000)) == 0x42                      # SCT.3
    ctx_entry(P=0, FPD=1)
    r = cfg.tr(0x1000)
    assert fault(r) == 0x41 and not r.fault.recorded           # SCT.2, FPD suppresses it
    cfg.w(ROOT_TABLE + 16, e("SM_ROOT_ENTRY", LP=1, LCTP=0x7F000000 >> 12))
    assert fault(cfg.tr(0x1000)) == 0x40                      # SCT.1


def test_pasid_structure_faults(cfg):
    assert fault(cfg.tr(0x1000, pasid=2)) == 0x59             # SPT.2: entry 2 not present
    assert fault(cfg.tr(0x1000, pasid=64)) == 0x51            # SPD.2: directory entry 1
    cfg.w(PASID_DIR + 8, e("PASID_DIR_ENTRY", P=1, SMPTBLPTR=0x7F000000 >> 12))
    assert fault(cfg.tr(0x1000, pasid=64)) == 0x58            # SPT.1: no memory
    cfg.pm.write_u64(PASID_DIR + 8, cfg.pm.read_u64(PASID_DIR + 8) | (1 << 5))
    assert fault(cfg.tr(0x1000, pasid=64)) == 0x52            # SPD.3: reserved bit 5
    cfg.w(CTX_TABLE + 32 * 8, e("SM_CONTEXT_ENTRY", P=1, PASIDE=1, PDTS=1,
                                PASIDDIRPTR=0x7F000000 >> 12))
    assert fault(cfg.tr(0x1000, pasid=200 << 6)) == 0x50      # SPD.1 (256 entries: in range)


def test_pasid_entry_faults(cfg):
    root = cfg.alloc()
    for pgtt in (0, 5, 7):
        cfg.pasid(1, PGTT=pgtt, AW=2, SLPTPTR=root >> 12)
        assert fault(cfg.tr(0x1000, pasid=1)) == 0x5B         # SPT.4
    cfg.pasid(1, PGTT=2, AW=0, SLPTPTR=root >> 12)
    assert fault(cfg.tr(0x1000, pasid=1)) == 0x5B
    cfg.pasid(1, PGTT=2, AW=2, SLPTPTR=root >> 12)
    cfg.pm.write_u64(PASID_TABLE + 64 + 24, 1)                   # dword 3 reserved
    assert fault(cfg.tr(0x1000, pasid=1)) == 0x5A             # SPT.3
    cfg.pasid(1, PGTT=2, AW=2, SLPTPTR=root >> 12)
    assert fault(cfg.tr(0x1000, pasid=1, priv=True)) == 0x5D  # SPT.6: SRE=0
    assert fault(cfg.tr(0x1000, pasid=1, exe=True)) == 0x5C   # SPT.5: ERE=0
    with pytest.raises(VtdWalkError):
        cfg.tr(0x1000, exe=True)                               # no PASID, no execute


def test_fpd_suppresses_qualified_faults_only(cfg):
    cfg.w(CTX_TABLE + 32 * 8, e("SM_CONTEXT_ENTRY", P=1, FPD=1, PASIDE=1,
                                PASIDDIRPTR=PASID_DIR >> 12))
    r = cfg.tr(0x5000)
    assert fault(r) == 0x79 and not r.fault.recorded
    cfg.w(ROOT_TABLE + 16, e("SM_ROOT_ENTRY", LP=0))
    assert cfg.tr(0x5000).fault.recorded                       # SRT.2 is not qualified
    # FPD in the PASID table entry alone.
    b = Box()
    b.pasid(0, PGTT=2, AW=2, SLPTPTR=b.alloc() >> 12, FPD=1)
    assert not b.tr(0x1000).fault.recorded


def test_translation_disabled():
    b = Box()
    b.unit.gsts = 0
    r = b.tr(0x12345000, write=True)
    assert (r.kind, r.output) == ("not_remapped", 0x12345000)


def test_physmem_port_reads_and_writes():
    pm = PhysMem()
    p = port(pm)
    p.write64(0x3000, 0x1122334455667788)
    assert pm.read_u64(0x3000) == 0x1122334455667788 == p.read64(0x3000)


# -- interrupt remapping ------------------------------------------------------------------------
IRT = 0x60000


@pytest.fixture
def ir():
    b = Box()
    b.pm.write_u64(IRT, 0)
    b.unit.irta = IRT | 3            # 2^(3+1) = 16 entries, EIME=0
    return b


def msi_addr(handle, shv=0):
    return 0xFEE00000 | ((handle & 0x7FFF) << 5) | (1 << 4) | (shv << 3) | ((handle >> 15) << 2)


def irte(b, index, **fields):
    b.w(IRT + 16 * index, e("IRTE", P=1, **fields))


def test_remapped_interrupt(ir):
    # Index 5 by handle; index 7 by handle 4 + subhandle 3 (SHV=1).
    irte(ir, 5, V=0x41, DST=0x0300, DM=0, DLM=0, TM=0)          # xAPIC ID 3 in DST[15:8]
    irte(ir, 7, V=0x42, DST=0x0700, DM=1, DLM=1, TM=1, RH=1)
    i = remap_msi(ir.mem, ir.unit, SID, msi_addr(5), 0)
    assert (i.ok, i.remapped, i.index, i.vector, i.dest, i.dest_mode, i.delivery, i.trigger) == (
        True, True, 5, 0x41, 3, "physical", "fixed", "edge")
    i = remap_msi(ir.mem, ir.unit, SID, msi_addr(4, shv=1), 3)
    assert (i.index, i.vector, i.dest, i.dest_mode, i.delivery, i.trigger,
            i.redirection_hint) == (7, 0x42, 7, "logical", "lowest_priority", "level", 1)
    # x2APIC (EIME=1): the whole 32-bit DST.
    ir.unit.irta |= 1 << 11
    irte(ir, 5, V=0x41, DST=0x12345678)
    assert remap_msi(ir.mem, ir.unit, SID, msi_addr(5), 0).dest == 0x12345678


def test_interrupt_faults(ir):
    irte(ir, 1, V=0x30, DST=0x100)
    assert remap_msi(ir.mem, ir.unit, SID, msi_addr(16), 0).fault.reason == 0x21   # 16 entries
    i = remap_msi(ir.mem, ir.unit, SID, msi_addr(2), 0)
    assert (i.fault.reason, i.fault.fi) == (0x22, 2 << 48)       # not present; FI = index << 48
    assert remap_msi(ir.mem, ir.unit, SID, msi_addr(1), 0x10000).fault.reason == 0x20
    ir.pm.write_u64(IRT + 16, ir.pm.read_u64(IRT + 16) | (1 << 12))   # reserved bit 12
    assert remap_msi(ir.mem, ir.unit, SID, msi_addr(1), 0).fault.reason == 0x24
    irte(ir, 1, V=0x30, DST=0x1)                                  # DST[7:0] reserved, EIME=0
    assert remap_msi(ir.mem, ir.unit, SID, msi_addr(1), 0).fault.reason == 0x24
    ir.unit.irta = 0x7F000000 | 3
    assert remap_msi(ir.mem, ir.unit, SID, msi_addr(1), 0).fault.reason == 0x23


def test_source_id_verification(ir):
    irte(ir, 1, V=0x30, SVT=1, SQ=0, SID=SID)
    assert remap_msi(ir.mem, ir.unit, SID, msi_addr(1), 0).ok
    assert remap_msi(ir.mem, ir.unit, SID | 1, msi_addr(1), 0).fault.reason == 0x26
    irte(ir, 1, V=0x30, SVT=1, SQ=3, SID=SID)                    # ignore function bit 0
    assert remap_msi(ir.mem, ir.unit, SID | 1, msi_addr(1), 0).ok
    assert remap_msi(ir.mem, ir.unit, SID | 2, msi_addr(1), 0).fault.reason == 0x26
    irte(ir, 1, V=0x30, SVT=1, SQ=1, SID=SID)                    # ignore bit 2
    assert remap_msi(ir.mem, ir.unit, SID | 4, msi_addr(1), 0).ok
    irte(ir, 1, V=0x30, SVT=2, SID=0x0204)                       # buses 2..4
    assert remap_msi(ir.mem, ir.unit, 0x0310, msi_addr(1), 0).ok
    assert remap_msi(ir.mem, ir.unit, SID, msi_addr(1), 0).fault.reason == 0x26   # bus 1
    irte(ir, 1, V=0x30, SVT=2, SID=0x0204, FPD=1)
    f = remap_msi(ir.mem, ir.unit, SID, msi_addr(1), 0).fault
    assert f.reason == 0x26 and not f.recorded
    irte(ir, 1, V=0x30, SVT=3)
    assert remap_msi(ir.mem, ir.unit, SID, msi_addr(1), 0).fault.reason == 0x24


def test_compatibility_format_and_posted(ir):
    compat_addr = 0xFEE00000 | (0x05 << 12) | (1 << 2)          # DEST 5, logical
    i = remap_msi(ir.mem, ir.unit, SID, compat_addr, 0x4000 | (4 << 8) | 0x99)
    assert (i.ok, i.remapped, i.vector, i.dest, i.dest_mode, i.delivery) == (
        True, False, 0x99, 5, "logical", "NMI")
    ir.unit.gsts &= ~(1 << 23)                                   # CFIS=0
    assert remap_msi(ir.mem, ir.unit, SID, compat_addr, 0x99).fault.reason == 0x25
    ir.unit.gsts |= 1 << 23
    ir.unit.irta |= 1 << 11                                      # EIME=1 blocks it too
    assert remap_msi(ir.mem, ir.unit, SID, compat_addr, 0x99).fault.reason == 0x25
    ir.unit.gsts &= ~(1 << 25)                                   # IRES=0: nothing is remapped
    assert remap_msi(ir.mem, ir.unit, SID, msi_addr(3), 0).remapped is False
    ir.unit.gsts |= 1 << 25
    pda = 0x123456780
    ir.w(IRT + 16 * 2, e("IRTE_POSTED", P=1, IM=1, VV=0x55, URG=1,
                        PDA_L=(pda & 0xFFFFFFFF) >> 6, PDA_H=pda >> 32))
    i = remap_msi(ir.mem, ir.unit, SID, msi_addr(2), 0)
    assert (i.posted, i.vector, i.pda, i.urgent) == (True, 0x55, pda, 1)
    ir.unit.cap &= ~(1 << 59)                                    # no CAP_REG.PI
    assert remap_msi(ir.mem, ir.unit, SID, msi_addr(2), 0).fault.reason == 0x24


def test_ss_five_levels():
    b = Box()
    root = b.alloc()
    b.pasid(0, PGTT=2, AW=3, SLPTPTR=root >> 12)                # 57 bits, 5 levels
    gpa = (1 << 50) | 0x3000
    b.ss_map(root, gpa, 0x88003000, levels=5)
    r = b.tr(gpa | 0x8)
    assert (r.output, [s.level for s in r.steps if s.what == "ss"]) == (0x88003008,
                                                                        [5, 4, 3, 2, 1])
    b.unit.cap = (b.unit.cap & ~(0x3F << 16)) | (47 << 16)       # MGAW 48 bits caps AW
    assert fault(b.tr(gpa)) == 0x84


def test_walker_codes_agree_with_the_fault_table():
    # The walker writes its codes itself; the field tables' fault list was written separately.
    from smmudbg.arch.vtd.faults import FAULT_REASONS
    from smmudbg.vtd_refwalk import FR
    assert all(FAULT_REASONS[code][0] == name for name, code in FR.items())


def test_access_flags_need_snooped_walks():
    b = Box()
    fs_root = b.fs_table()
    b.pasid(1, PGTT=1, FLPTPTR=fs_root[0] >> 12, PWSNP=0)
    b.fs_map(fs_root, 0x1000, 0xA0001000)
    r = b.tr(0x1000, pasid=1)
    assert fault(r) == 0x90 and r.ad_updates == []           # SFS.9
    # The same walk with every A (and the leaf's D) preset needs no update: it translates.
    root2 = b.fs_table()
    b.pasid(2, PGTT=1, FLPTPTR=root2[0] >> 12, PWSNP=0)
    b.fs_map(root2, 0x2000, 0xA0002000, a=1, d=1)
    assert b.tr(0x2000, pasid=2, write=True).output == 0xA0002000
    ss_root = b.alloc()
    b.pasid(0, PGTT=2, AW=2, SLPTPTR=ss_root >> 12, SLADE=1, PWSNP=0)
    b.ss_map(ss_root, 0x1000, 0x90001000)
    assert fault(b.tr(0x1000)) == 0x7C                        # SSS.5
    b.pasid(0, PGTT=2, AW=2, SLPTPTR=ss_root >> 12, PWSNP=0)    # SLADE=0: no updates
    assert b.tr(0x1000).ok


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_mappings_match_what_was_built(seed):
    """Random 4KB / 2MB mappings with random permissions, second stage only and nested: every
    probe's outcome follows from the mapping list alone (VT-d rules: R=W=0 not present, SGN.6
    / SGN.7 permissions, first-stage P=0 SFS.2)."""
    import random
    rnd = random.Random(seed)
    b = Box()
    ss_root = b.alloc()
    b.pasid(0, PGTT=2, AW=2, SLPTPTR=ss_root >> 12)
    ss_pages = {}                      # GPA page -> (PA page, r, w, size)
    for _ in range(40):
        big = rnd.random() < 0.2
        size = 1 << (21 if big else 12)
        gpa = rnd.randrange(0x100000000, 0x200000000, size)
        if any(g <= gpa < g + s or gpa <= g < gpa + size for g, (_p, _r, _w, s) in
               ss_pages.items()):
            continue
        pa = rnd.randrange(0, 1 << 40, size)
        r, w = rnd.choice([(1, 1), (1, 0), (0, 1)])
        b.ss_map(ss_root, gpa, pa, level=2 if big else 1, r=r, w=w)
        ss_pages[gpa] = (pa, r, w, size)

    def expect(gpa, write):
        for g, (pa, r, w, size) in ss_pages.items():
            if g <= gpa < g + size:
                if (write and not w) or (not write and not r):
                    return 0x85 if write else 0x86
                return pa + (gpa - g)
        return 0x79

    probes = [g + rnd.randrange(size) for g, (_p, _r, _w, size) in ss_pages.items()]
    probes += [rnd.randrange(0x100000000, 0x200000000) for _ in range(40)]
    for gpa in probes:
        for write in (False, True):
            r = b.tr(gpa, write=write)
            got = r.output if r.ok else r.fault.reason
            want = expect(gpa, write)
            assert got == want, (hex(gpa), write, got, want)

    # Nested: VA -> GPA through random first-stage mappings onto the pages above.
    fs_root = b.fs_table(ss_root)
    b.pasid(3, PGTT=3, AW=2, SLPTPTR=ss_root >> 12, FLPTPTR=fs_root[0] >> 12, SRE=1)
    fs_pages = {}
    targets = [g for g, (_p, _r, _w, size) in ss_pages.items() if size == 0x1000]
    for gpa in targets:
        va = 0x7F0000000000 + 0x1000 * rnd.randrange(0, 1 << 20)
        if va in fs_pages:
            continue
        rw = rnd.randrange(2)
        b.fs_map(fs_root, va, gpa, ss_root=ss_root, rw=rw)
        fs_pages[va] = (gpa, rw)
    for va, (gpa, rw) in fs_pages.items():
        for write in (False, True):
            r = b.tr(va + 0x10, pasid=3, write=write)
            got = r.output if r.ok else r.fault.reason
            if write and not rw:
                want = 0x85                       # first stage R/W=0 (user request)
            else:
                want = expect(gpa + 0x10, write)
            assert got == want, (hex(va), write, got, want)
    r = b.tr(0x7E0000000000, pasid=3)
    assert fault(r) == 0x71                                    # no first-stage mapping


def test_unit_from_register_names():
    u = Unit.from_registers({"DMAR_CAP_REG": CAP, "ECAP_REG": ECAP, "DMAR_GSTS_REG": GSTS,
                             "DMAR_RTADDR_REG": ROOT_TABLE | (1 << 10)}, haw=39)
    assert (u.cap, u.ecap, u.gsts, u.rtaddr, u.irta, u.haw) == (
        CAP, ECAP, GSTS, ROOT_TABLE | (1 << 10), 0, 39)
    # CAP_REG.MGAW holds the width minus 1; SAGAW bit n = width n; TTM is RTADDR_REG[11:10].
    assert (u.mgaw, u.sagaw, u.ttm, u.rta, u.tes, u.ires, u.cfis) == (
        57, 0b01110, 1, ROOT_TABLE, 1, 1, 1)
