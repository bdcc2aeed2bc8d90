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
