import pytest

from core_cy.physmem import MemFault, PhysMem


def test_read_write_little_endian():
    m = PhysMem()
    m.write(0x1000, bytes(range(16)))
    assert m.read_u64(0x1000) == 0x0706050403020100
    assert m.read(0x1004, 4) == bytes([4, 5, 6, 7])
    m.write_u64(0x1008, 0x1122334455667788)
    assert m.read(0x1008, 8) == bytes.fromhex("8877665544332211")


def test_unbacked_reads_are_reported_not_zero():
    m = PhysMem()
    m.ram(0x8000_0000, 0x10000)
    assert m.read_u64(0x8000_0ff8) == 0                # declared RAM reads as zero
    with pytest.raises(MemFault, match="0x80010000"):
        m.read_u64(0x8001_0000)                        # one page past the RAM
    assert not m.is_backed(0x1234_5000)


def test_block_read_across_pages():
    m = PhysMem()
    m.write(0x1ffc, b"abcdefgh")
    assert m.read(0x1ffc, 8) == b"abcdefgh"
    with pytest.raises(MemFault, match="0x3000"):
        m.read(0x2ffc, 8)


def test_strict_memory_rejects_writes_outside_ram():
    m = PhysMem(strict=True)
    m.ram(0x4000_0000, 0x1000)
    m.write_u64(0x4000_0000, 1)
    with pytest.raises(MemFault, match="0x40001000"):
        m.write_u64(0x4000_1000, 1)


def test_regions_must_not_overlap_or_misalign():
    m = PhysMem()
    m.ram(0x1000, 0x2000)
    with pytest.raises(ValueError, match="overlaps"):
        m.ram(0x2000, 0x1000)
    with pytest.raises(ValueError, match="aligned"):
        m.ram(0x10_0800, 0x1000)


def test_image_is_copy_on_write():
    m = PhysMem()
    img = bytearray(b"\x11" * 8192)
    m.image(0x9000_0000, bytes(img))
    assert m.read_u64(0x9000_1ff8) == 0x1111111111111111
    assert m.resident_pages == 0                        # reading copies nothing
    m.write_u64(0x9000_1000, 0)
    assert m.resident_pages == 1
    assert m.read_u64(0x9000_1000) == 0
    assert m.read_u64(0x9000_1008) == 0x1111111111111111   # rest of the page copied
    assert m.read_u64(0x9000_0000) == 0x1111111111111111


def test_last_page_cache_follows_copies_and_restores():
    """Reads of image pages are cached one page at a time (core_cy.physmem.mc_page): the page
    read last must never outlive a write that copies it or a restore that drops the copy."""
    m = PhysMem()
    m.image(0x9000_0000, b"\x11" * 8192)
    old = 0x1111111111111111
    assert m.read_u64(0x9000_1000) == old               # the image page, now cached
    snap = m.snapshot()
    m.write_u64(0x9000_1000, 5)                         # copied on write
    assert m.read_u64(0x9000_1000) == 5
    assert m.read_u64(0x9000_0000) == old               # another image page
    assert m.read_u64(0x9000_1008) == old               # the copy again
    m.restore(snap)                                     # the copy goes: the image again
    assert m.read_u64(0x9000_1000) == old
    after = m.snapshot()
    m.write_u64(0x9000_1000, 7)
    m.restore(snap)
    m.restore(after)
    assert m.read_u64(0x9000_1000) == old
    m.write_u64(0x9000_1000, 9)
    assert m.read_u64(0x9000_1000) == 9


def test_image_partial_last_page_reads_zero_past_end():
    m = PhysMem()
    m.image(0x10000, b"\xff" * 100)
    assert m.read(0x10060, 8) == b"\xff" * 4 + b"\x00" * 4


def test_hash_table_growth_keeps_every_page():
    m = PhysMem()
    for i in range(20000):
        m.write_u64(i * 7 * 4096, i)
    assert m.resident_pages == 20000
    assert all(m.read_u64(i * 7 * 4096) == i for i in range(0, 20000, 997))
    assert m.resident_pfns()[:3] == [0, 7, 14]


def test_one_million_resident_pages():
    m = PhysMem()
    n = 1_000_000
    m.fill_pages(0x1_0000_0000, n, 0xABCD)
    assert m.resident_pages == n
    assert m.read_u64(0x1_0000_0000) == 0xABCD
    assert m.read_u64(0x1_0000_0000 + (n - 1) * 4096) == 0xABCD
    assert not m.is_backed(0x1_0000_0000 + n * 4096)


# -- flat RAM regions --------------------------------------------------------------------------
def test_flat_ram_reads_writes_and_boundaries():
    m = PhysMem(strict=True)
    m.ram(0x4000_0000, 0x4000)                       # four pages
    m.ram(0x4000_4000, 0x2000)                       # adjacent region: pages straddle the seam
    m.write(0x4000_3ffc, b"ABCDEFGH")                # last page of one region, first of next
    assert m.read(0x4000_3ff8, 16) == b"\0" * 4 + b"ABCDEFGH" + b"\0" * 4
    assert m.read_u64(0x4000_4000) == int.from_bytes(b"EFGH\0\0\0\0", "little")
    m.write_u64(0x4000_5ff8, 0x0102030405060708)     # last word of the second region
    assert m.read(0x4000_5ff8, 8) == bytes(range(8, 0, -1))
    assert m.resident_pages == 0                     # flat RAM holds it, not the page hash
    with pytest.raises(MemFault, match="0x40006000"):
        m.read(0x4000_5ffc, 8)                       # runs past the end of RAM
    with pytest.raises(MemFault, match="0x40006000"):
        m.write(0x4000_5ffc, b"12345678")            # a write straddling the end of RAM
    assert m.read(0x4000_5ffc, 4) == b"1234"         # the part inside RAM was written
    assert m.is_backed(0x4000_5000) and not m.is_backed(0x4000_6000)
    with pytest.raises(MemFault, match="0x3ffff000"):
        m.write_u64(0x3fff_f000, 1)                  # one page below RAM


def test_flat_ram_is_lazy_and_large():
    m = PhysMem(strict=True)
    m.ram(0x10_0000_0000, 64 << 30)                  # 64 GiB declared: nothing touched yet
    m.write_u64(0x10_0000_0000 + (64 << 30) - 8, 7)
    assert m.read_u64(0x10_0000_0000 + (64 << 30) - 8) == 7
    assert m.read_u64(0x10_0000_0000 + (32 << 30)) == 0


def test_pages_written_before_ram_is_declared_move_into_it():
    m = PhysMem()
    m.write_u64(0x8000_1008, 42)                     # non-strict: a hash page
    assert m.resident_pages == 1
    m.ram(0x8000_0000, 0x10000)
    assert m.resident_pages == 0 and m.read_u64(0x8000_1008) == 42


# -- device regions ----------------------------------------------------------------------------
def test_mmio_write_is_dispatched_to_its_owner():
    m = PhysMem(strict=True)
    m.ram(0x4000_0000, 0x1000)
    got = []
    m.add_mmio(0x0800_0000, 0x1_0000, "its0", write=lambda pa, data: got.append((pa, data)),
               read=lambda pa, n: b"\x5a" * n)
    m.write_u64(0x0801_0040 - 0x1_0000 + 0x40, 0x1234)     # GITS_TRANSLATER-like doorbell
    m.write(0x0800_0000, b"\x01\x02")
    assert got == [(0x0800_0080, (0x1234).to_bytes(8, "little")), (0x0800_0000, b"\x01\x02")]
    assert m.read(0x0800_0010, 2) == b"\x5a\x5a"
    assert m.read_u64(0x0800_0010) == 0x5a5a5a5a5a5a5a5a
    # Table walks read only memory: an MMIO page is not backed for them.
    assert not m.is_backed(0x0800_0000)
    r = m.region_at(0x0800_0abc)
    assert (r.base, r.size, r.kind, r.owner) == (0x0800_0000, 0x1_0000, "mmio", "its0")
    assert m.region_at(0x4000_0010).kind == "ram" and m.region_at(0x5000_0000) is None
    assert m.regions() == [(0x4000_0000, 0x1000, "ram"), (0x0800_0000, 0x1_0000, "mmio")]


def test_mmio_without_handler_and_overlap():
    m = PhysMem(strict=True)
    m.add_mmio(0x0905_0000, 0x2_0000, "smmu0")
    with pytest.raises(MemFault, match="0x9050008.*smmu0"):
        m.write_u64(0x0905_0008, 1)
    with pytest.raises(MemFault, match="smmu0"):
        m.read(0x0905_0000, 4)
    with pytest.raises(ValueError, match="overlaps"):
        m.ram(0x0904_0000, 0x2_0000)


def test_walker_reads_of_mmio_are_external_aborts():
    from core_cy.walk import Walker
    m = PhysMem(strict=True)
    m.add_mmio(0x0900_0000, 0x1000, "dev")
    w = Walker(m, {"S1P": 1, "S2P": 1, "GRAN4K": 1, "SIDSIZE": 4})
    w.configure(strtab_base=0x0900_0000, strtab_fmt=0, strtab_log2size=2, caching=False)
    r = w.translate(1, 0x1000)
    assert r["fault"]["type"] == "F_STE_FETCH"


def test_strict_write_to_nothing_names_the_address():
    m = PhysMem(strict=True)
    m.ram(0x4000_0000, 0x1000)
    with pytest.raises(MemFault, match=r"no RAM at PA 0x7000010"):
        m.write(0x0700_0010, b"x")
    with pytest.raises(MemFault, match=r"0x123456780"):
        m.write_words(0x1_2345_6780, [1, 2])


# -- snapshots ---------------------------------------------------------------------------------
def _image(m, ranges):
    return b"".join(m.read(b, n) for b, n in ranges)


def test_snapshot_restore_is_byte_exact_back_and_forth():
    m = PhysMem()
    m.ram(0x4000_0000, 0x10_0000)
    m.image(0x9000_0000, b"\x11" * 0x3000)
    m.write(0x4000_0000, b"base")
    ranges = [(0x4000_0000, 0x10_0000), (0x9000_0000, 0x3000)]
    s0 = m.snapshot()
    before = _image(m, ranges)
    m.write(0x4000_0ffe, b"XYZW")                    # straddles two RAM pages
    m.write_u64(0x9000_1000, 0)                      # copies an image page
    m.write_u64(0x7000_0000, 5)                      # non-strict: a new page
    s1 = m.snapshot()
    assert s1.copied == 4
    mid = _image(m, ranges)
    m.write(0x4000_8000, b"later")
    m.write_u64(0x7000_0000, 6)
    after = _image(m, ranges) + m.read(0x7000_0000, 8)
    assert m.restore(s0) == 5                        # five pages differ from s0
    assert _image(m, ranges) == before
    assert not m.is_backed(0x7000_0000) and m.resident_pages == 0
    assert m.read_u64(0x9000_1000) == 0x1111111111111111
    m.restore(s1)
    assert _image(m, ranges) == mid and m.read_u64(0x7000_0000) == 5
    m.restore(s0)
    m.write(0x4000_0000, b"new!")                    # a new branch of history from s0
    m.restore(s1)
    assert _image(m, ranges) == mid
    assert after != mid
    m.restore(s0)
    assert _image(m, ranges) == before


def test_snapshot_cost_follows_pages_written_not_ram_size():
    def run(ram):
        m = PhysMem(strict=True)
        m.ram(0x1_0000_0000, ram)
        m.write(0x1_0000_0000, b"\x01" * 0x3000)
        s0 = m.snapshot()
        m.write(0x1_0000_0000 + ram - 0x2000, b"\x02" * 0x2000)
        s1 = m.snapshot()
        return s0.copied, s1.copied, m.restore(s0), m.restore(s1)
    assert run(0x10_0000) == run(16 << 30) == (0, 2, 2, 2)


def test_walker_httu_writes_are_tracked_by_snapshots():
    # Writes by the walker (cdef write64, e.g. an access-flag update) are copy-on-write too.
    m = PhysMem()
    m.ram(0x4000_0000, 0x10000)
    m.write_u64(0x4000_0000, 1)
    s = m.snapshot()
    m.fill_pages(0x4000_0000, 4, 0xAA)              # through write64
    assert m.read_u64(0x4000_3000) == 0xAA
    assert m.written_pfns() == [0x40000, 0x40001, 0x40002, 0x40003]
    assert m.restore(s) == 4
    assert m.read_words(0x4000_0000, 1) == [1] and m.read_u64(0x4000_3000) == 0


def test_restore_removes_many_hash_pages_and_keeps_the_rest():
    # Restoring to before pages existed deletes them from the open-addressing page hash;
    # every other page must stay reachable whatever the probe runs looked like.
    import random
    m = PhysMem(capacity=16)
    rnd = random.Random(5)
    old = rnd.sample(range(1 << 20), 3000)
    for p in old:
        m.write_u64(p << 12, p)
    s = m.snapshot()
    new = [p for p in rnd.sample(range(1 << 20), 6000) if p not in set(old)]
    for p in new:
        m.write_u64(p << 12, ~p & 0xFFFF)
    for p in old[::3]:
        m.write_u64(p << 12, 0)
    assert m.resident_pages == len(old) + len(new)
    assert m.restore(s) == len(new) + len(old[::3])
    assert m.resident_pages == len(old)
    assert all(m.read_u64(p << 12) == p for p in old)
    assert not any(m.is_backed(p << 12) for p in new)
    assert m.resident_pfns() == sorted(old)


def test_walker_read_windows_follow_copies_and_restores():
    """The walker keeps, per read site, the page it read last (core_cy.physmem read windows).
    A stage-2 table in a dump (image) is read, then its leaf is rewritten (copied on write),
    restored, cleared: every walk must see the memory as it is, never a stale page."""
    from core_cy.ptbuild import BumpAllocator, TableBuilder
    from core_cy.walk import Walker
    from smmudbg.arch.fieldtable import fmt

    base, size = 0x9000_0000, 0x40000
    scratch = PhysMem()
    scratch.ram(base, size)
    alloc = BumpAllocator(base, size)
    strtab = alloc.alloc(64 * 4)
    s2 = TableBuilder(scratch, 2, 4096, 48, alloc, concat=False)
    s2.map(0x1234_5000, 0x7700_0000, 4096, blocks=False)
    scratch.write_words(strtab + 64, fmt("STE").encode(
        V=1, Config="s2_trans", S2VMID=1, S2T0SZ=16, S2SL0=s2.sl0, S2TG=0, S2PS=5, S2AA64=1,
        S2R=1, S2TTB=s2.root >> 4))
    m = PhysMem(strict=True)
    m.image(base, scratch.read(base, size))
    w = Walker(m, dict(S2P=1, GRAN4K=1, OAS=5, SIDSIZE=16, VMID16=1, TTENDIAN=2))
    w.configure(strtab_base=strtab, strtab_fmt=0, strtab_log2size=2, caching=False)

    r = w.translate(1, 0x1234_5678, trace=True)
    assert r["fault"] is None and r["pa"] == 0x7700_0678
    leaf = r["steps"][-1]["desc_pa"]                    # the level-3 descriptor, in the image
    assert base <= leaf < base + size
    snap = m.snapshot()
    m.write_u64(leaf, (m.read_u64(leaf) & ~0xFFFF_FFFF_F000) | 0x6600_0000)   # copy on write
    assert w.translate(1, 0x1234_5678)["pa"] == 0x6600_0678
    m.restore(snap)                                     # the copy goes: the image page again
    assert w.translate(1, 0x1234_5678)["pa"] == 0x7700_0678
    m.write_u64(leaf, 0)                                # invalid descriptor: translation fault
    assert w.translate(1, 0x1234_5678)["fault"]["type"] == "F_TRANSLATION"
    m.restore(snap)
    assert w.translate(1, 0x1234_5678)["pa"] == 0x7700_0678
