"""A walker whose tables live in a VM's IPA space (a vSMMU reading its guest's RAM).

The VM's stage 2 maps guest IPA pages to scattered host pages (a permutation), so an address
used without its stage-2 translation reads the wrong bytes. The guest stream table, CDs and
stage-1 tables are written at host PAs computed here from that permutation, and every expected
value (output address, fetch address, bytes) is derived from the mappings made in the test.
"""
import random

import pytest

from core_cy.physmem import MemFault, PhysMem
from core_cy.ptbuild import BumpAllocator, TableBuilder, scan_table
from core_cy.walk import AddressSpace, Walker
from walkkit import CAPS, CD, STE

GIPA = 0x8000_0000          # guest RAM: 256 pages of IPA
NPAGES = 256
GPA = 0x1_0000_0000         # host RAM backing it, pages permuted
HOST = 0x4000_0000          # host pool: the VM's stage-2 tables
UNMAPPED = GIPA + NPAGES * 4096     # IPA with no stage-2 mapping
STRTAB = GIPA               # guest stream table (16 STEs)
CD_IPA = GIPA + 0x1000
VA = 0x1234_5670_0000
OUT = 0x9000_0000           # guest stage-1 output (what the guest's device sees)


class VM:
    def __init__(self, caps=None):
        self.mem = PhysMem()
        self.mem.ram(HOST, 0x100_0000)
        self.mem.ram(GPA, NPAGES * 4096)
        rng = random.Random(11)
        self.perm = list(range(NPAGES))
        rng.shuffle(self.perm)
        self.s2 = TableBuilder(self.mem, 2, 4096, 40, BumpAllocator(HOST, 0x100_0000))
        for i, p in enumerate(self.perm):
            self.s2.map(GIPA + i * 4096, GPA + p * 4096, 4096, blocks=False)
        windows = [(GIPA + i * 4096, 4096, GPA + p * 4096) for i, p in enumerate(self.perm)]
        self.s1 = TableBuilder(self.mem, 1, 4096, 48, BumpAllocator(GIPA + 0x2000, 0x80000),
                               windows=windows)
        self.s1.map(VA, OUT, 0x4000, exec_=True)
        self.caps = dict(CAPS, **(caps or {}))

    def pa(self, ipa):
        """The host PA of a guest IPA, from the permutation (independent of the walker)."""
        i = (ipa - GIPA) >> 12
        assert 0 <= i < NPAGES
        return GPA + self.perm[i] * 4096 + (ipa & 0xFFF)

    def space(self):
        s2 = self.s2
        return dict(s2ttb=s2.root, s2t0sz=s2.tsz, s2sl0=s2.sl0, s2tg=s2.tg, s2ps=5)

    def put_ste(self, sid, cd_ipa=CD_IPA):
        self.mem.write_words(self.pa(STRTAB + 64 * sid),
                             STE.encode(V=1, Config=5, S1ContextPtr=cd_ipa >> 6))

    def put_cd(self, ipa=CD_IPA, ttb0=None, **extra):
        f = dict(V=1, AA64=1, T0SZ=16, TG0=0, EPD1=1, IPS=5, R=1, A=1, ASID=1,
                 TTB0=(self.s1.root if ttb0 is None else ttb0) >> 4)
        f.update(extra)
        self.mem.write_words(self.pa(ipa), CD.encode(**f))

    def walker(self, **kw):
        w = Walker(self.mem, self.caps, ipa_space=self.space(), **kw)
        w.configure(strtab_base=STRTAB, strtab_fmt=0, strtab_log2size=4)
        return w


def test_permutation_scatters_pages():
    vm = VM()
    adjacent = sum(vm.pa(GIPA + (i + 1) * 4096) - vm.pa(GIPA + i * 4096) == 4096
                   for i in range(NPAGES - 1))
    assert adjacent < 8


def test_walk_reads_stream_table_cd_and_stage1_from_guest_ipa():
    vm = VM()
    vm.put_ste(3)
    vm.put_cd()
    w = vm.walker()
    for off in (0x123, 0x1ABC, 0x3FF8):
        r = w.translate(3, VA + off, trace=True)
        assert r["fault"] is None
        assert r["pa"] == OUT + off
    steps = r["steps"]
    ste = [s for s in steps if s["what"] == "STE"][0]
    assert ste["desc_pa"] == STRTAB + 3 * 64               # addresses in the table space
    cd = [s for s in steps if s["what"] == "CD"][0]
    assert cd["desc_pa"] == CD_IPA
    s1 = [s for s in steps if s["what"] == "S1"]
    level, daddr, desc = vm.s1.lookup(VA + 0x3FF8)
    assert (s1[-1]["level"], s1[-1]["desc_pa"], s1[-1]["desc"]) == (level, daddr, desc)
    assert s1[0]["desc_pa"] == vm.s1.root + ((VA >> 39) & 0x1FF) * 8
    assert w.table_space.kind == "IPA"


def test_ste_fetch_abort_when_stream_table_ipa_is_unmapped():
    vm = VM()
    w = vm.walker()
    w.configure(strtab_base=UNMAPPED)
    r = w.translate(5, VA)
    assert r["fault"]["type"] == "F_STE_FETCH"
    assert r["fault"]["fetch_addr"] == UNMAPPED + 5 * 64


def test_cd_fetch_abort_when_cd_ipa_is_unmapped():
    vm = VM()
    vm.put_ste(2, cd_ipa=UNMAPPED + 0x40)
    r = vm.walker().translate(2, VA)
    assert r["fault"]["type"] == "F_CD_FETCH"
    assert r["fault"]["fetch_addr"] == UNMAPPED + 0x40


def test_walk_eabt_when_stage1_table_ipa_is_unmapped():
    vm = VM()
    vm.put_ste(1)
    vm.put_cd(ttb0=UNMAPPED)
    r = vm.walker().translate(1, VA)
    assert r["fault"]["type"] == "F_WALK_EABT"
    assert r["fault"]["s2"] is False
    assert r["fault"]["fetch_addr"] == UNMAPPED + ((VA >> 39) & 0x1FF) * 8


def test_hardware_access_flag_update_lands_at_the_host_pa():
    vm = VM(caps=dict(HTTU=1))
    va = VA + 0x10_0000
    vm.s1.map(va, OUT + 0x10_0000, 0x1000, af=False)
    vm.put_ste(1)
    vm.put_cd(HA=1)
    level, daddr, desc = vm.s1.lookup(va)
    assert not desc & (1 << 10)
    r = vm.walker().translate(1, va + 8)
    assert r["pa"] == OUT + 0x10_0000 + 8
    assert vm.mem.read_u64(vm.pa(daddr)) == desc | (1 << 10)


def test_address_space_reads():
    vm = VM()
    for i in range(4):                  # a word either side of each page boundary
        vm.mem.write_words(vm.pa(GIPA + 0x5000 + i * 4096 - 8), [0x1111 * (i + 1)])
        vm.mem.write_words(vm.pa(GIPA + 0x5000 + i * 4096), [0x2222 * (i + 1)])
    a = AddressSpace(vm.mem, **vm.space())
    assert a.kind == "IPA"
    assert a.translate(GIPA + 0x5123) == vm.pa(GIPA + 0x5123)
    assert a.read64(GIPA + 0x5000) == 0x2222
    # Across a page boundary: two host pages that are not adjacent.
    want = vm.mem.read(vm.pa(GIPA + 0x6000 - 16), 16) + vm.mem.read(vm.pa(GIPA + 0x6000), 16)
    assert a.read(GIPA + 0x6000 - 16, 32) == want
    with pytest.raises(MemFault, match=f"{UNMAPPED + 8:#x}"):
        a.read64(UNMAPPED + 8)
    with pytest.raises(MemFault, match=f"{UNMAPPED:#x}"):
        a.read(UNMAPPED - 8, 16)
    phys = AddressSpace(vm.mem)
    assert phys.kind == "PA"
    assert phys.read64(vm.pa(GIPA + 0x5000)) == 0x2222
    with pytest.raises(MemFault, match="0x7000000000"):
        phys.read64(0x70_0000_0000)


def test_bad_ipa_space_geometry_is_one_clear_error():
    vm = VM()
    with pytest.raises(ValueError, match="S2T0SZ"):
        Walker(vm.mem, vm.caps, ipa_space=dict(vm.space(), s2t0sz=10))


def test_scan_table_through_ipa_space():
    vm = VM()
    a = AddressSpace(vm.mem, **vm.space())
    rows = scan_table(a, vm.s1.root, 512, 0, 12)
    idx = (VA >> 39) & 0x1FF
    assert rows == [("table", idx, 1, vm.mem.read_u64(vm.pa(vm.s1.root + idx * 8)))]
    # The same table read as if the IPA were a PA is not there.
    with pytest.raises(MemFault):
        scan_table(vm.mem, vm.s1.root, 512, 0, 12)
