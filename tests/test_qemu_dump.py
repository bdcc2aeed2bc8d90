"""Tests of smmudbg.importers.qemu_dump (QEMU dump-guest-memory ELF / pmemsave raw loader)."""

import json
import lzma
import mmap
import os
import struct
from pathlib import Path

import pytest

from smmudbg.importers.qemu_dump import DEFAULT_RAM_BASE, DumpError, Segment, load_memory

FIXTURE = Path(__file__).parent / "fixtures" / "qemu"
ELF_XZ = FIXTURE / "memory.elf.xz"

GIB = 1 << 30


# ------------------------------------------------------------------ helpers

def elf_bytes(loads, machine=183, e_type=4, ei_class=2, ehsize=64, note=b"", data_at=None):
    """A minimal ELF64 core: loads = [(paddr, file_bytes, memsz)], data packed after headers."""
    phnum = len(loads) + (1 if note else 0)
    phoff = 64
    off = phoff + 56 * phnum
    ph = []
    body = b""
    if note:
        ph.append(struct.pack("<IIQQQQQQ", 4, 0, off, 0, 0, len(note), len(note), 0))
        body += note
        off += len(note)
    for pa, data, memsz in loads:
        ph.append(struct.pack("<IIQQQQQQ", 1, 0, off, pa, pa, len(data), memsz, 0))
        body += data
        off += len(data)
    ident = b"\x7fELF" + bytes([ei_class, 1, 1]) + b"\0" * 9
    eh = struct.pack("<16sHHIQQQIHHHHHH", ident, e_type, machine, 1, 0, phoff, 0, 0,
                     ehsize, 56, phnum, 64, 0, 0)
    return eh + b"".join(ph) + body


def parse_phdrs(raw):
    """Independent PT_LOAD parse (struct only) to compare the loader against."""
    phoff, = struct.unpack_from("<Q", raw, 32)
    phnum, = struct.unpack_from("<H", raw, 56)
    out = []
    for i in range(phnum):
        p_type, _, off, vaddr, paddr, filesz, memsz, _ = struct.unpack_from(
            "<IIQQQQQQ", raw, phoff + 56 * i)
        if p_type == 1:
            out.append((paddr, off, filesz, memsz))
    return out


@pytest.fixture(scope="module")
def fixture_elf(tmp_path_factory):
    """The committed fixture, decompressed once."""
    raw = lzma.decompress(ELF_XZ.read_bytes())
    p = tmp_path_factory.mktemp("qemu") / "memory.elf"
    p.write_bytes(raw)
    return p, raw


def read_pa(segs, pa, n):
    for s in segs:
        if s.pa <= pa and pa + n <= s.pa + len(s.data):
            return bytes(s.data[pa - s.pa:pa - s.pa + n])
    raise KeyError(hex(pa))


# ------------------------------------------------------------------ the QEMU fixture

def test_fixture_files_present():
    for name in ("memory.elf.xz", "regs.json", "translations.json", "README.md"):
        assert (FIXTURE / name).is_file(), name
    total = sum(f.stat().st_size for f in FIXTURE.iterdir() if f.is_file())
    assert total < 3 * 1024 * 1024


def test_fixture_regs_json_names():
    regs = json.loads((FIXTURE / "regs.json").read_text())
    want = {f"SMMU_IDR{i}" for i in range(6)} | {
        "SMMU_CR0", "SMMU_CR1", "SMMU_CR2", "SMMU_GBPA", "SMMU_STRTAB_BASE",
        "SMMU_STRTAB_BASE_CFG", "SMMU_CMDQ_BASE", "SMMU_CMDQ_PROD", "SMMU_CMDQ_CONS",
        "SMMU_EVTQ_BASE", "SMMU_EVTQ_PROD", "SMMU_EVTQ_CONS", "SMMU_IRQ_CTRL", "SMMU_GERROR",
        "SMMU_GERRORN"}
    assert set(regs) == want
    for v in regs.values():
        assert v.startswith("0x")
        int(v, 16)


def test_fixture_translations_json_schema():
    ts = json.loads((FIXTURE / "translations.json").read_text())
    assert ts, "no translations captured"
    for t in ts:
        assert set(t) == {"sid", "iova", "pa", "perm", "still_mapped"}
        assert isinstance(t["sid"], int)
        int(t["iova"], 16), int(t["pa"], 16)
        assert t["perm"] in ("r", "w", "rw")
        assert isinstance(t["still_mapped"], bool)
    assert any(t["still_mapped"] for t in ts)


def test_fixture_elf_segments_match_headers(fixture_elf):
    path, raw = fixture_elf
    segs = load_memory(path)
    want = sorted(parse_phdrs(raw))
    assert [(s.pa, len(s.data)) for s in segs] == [(pa, memsz) for pa, _, _, memsz in want]
    for s, (pa, off, filesz, memsz) in zip(segs, want):
        assert isinstance(s, Segment)
        assert s.size == memsz and s.end == pa + memsz
        assert bytes(s.data[:filesz]) == raw[off:off + filesz]
        if memsz > filesz:  # zero-filled tail (needed pages that are all zero)
            assert not any(s.data[filesz:])
    # sorted and non-overlapping
    assert all(a.end <= b.pa for a, b in zip(segs, segs[1:]))
    # some PT_LOAD of the fixture uses p_filesz < p_memsz (the queues)
    assert any(filesz < memsz for _, _, filesz, memsz in want)


def test_fixture_xz_same_as_plain(fixture_elf):
    path, _ = fixture_elf
    a = load_memory(path)
    b = load_memory(ELF_XZ)
    assert [(s.pa, bytes(s.data)) for s in a] == [(s.pa, bytes(s.data)) for s in b]


def test_fixture_holds_smmu_tables(fixture_elf):
    """The registers point into memory the dump has: stream table, queues."""
    regs = {k: int(v, 16) for k, v in json.loads((FIXTURE / "regs.json").read_text()).items()}
    segs = load_memory(fixture_elf[0])
    base = regs["SMMU_STRTAB_BASE"] & ((1 << 52) - 1) & ~0x3F
    cfg = regs["SMMU_STRTAB_BASE_CFG"]
    if (cfg >> 16) & 3 == 1:  # 2-level: L1 descriptor 0 must be valid (bus 0 devices)
        l1, = struct.unpack("<Q", read_pa(segs, base, 8))
        assert l1 & 0x1F, "L1 descriptor 0 has span 0"
        l2 = l1 & ((1 << 52) - 1) & ~0x3F
        read_pa(segs, l2, 64 << ((cfg >> 6) & 0x1F))
    for q, esz in (("CMDQ", 16), ("EVTQ", 32)):
        b = regs[f"SMMU_{q}_BASE"]
        read_pa(segs, b & ((1 << 52) - 1) & ~0x1F, esz << (b & 0x1F))
    # every translation's SID has a valid STE (V=1) in the dump
    sids = {t["sid"] for t in json.loads((FIXTURE / "translations.json").read_text())}
    split = (cfg >> 6) & 0x1F
    for sid in sids:
        l1, = struct.unpack("<Q", read_pa(segs, base + 8 * (sid >> split), 8))
        l2 = l1 & ((1 << 52) - 1) & ~0x3F
        ste0, = struct.unpack("<Q", read_pa(segs, l2 + 64 * (sid & ((1 << split) - 1)), 8))
        assert ste0 & 1, hex(sid)


def test_fixture_qemu_ehsize_quirk_tolerated(fixture_elf, tmp_path):
    """QEMU 7.2 writes e_ehsize = 8; the loader must not care."""
    raw = bytearray(fixture_elf[1])
    raw[52:54] = struct.pack("<H", 8)
    p = tmp_path / "quirk.elf"
    p.write_bytes(raw)
    assert [(s.pa, s.size) for s in load_memory(p)] == \
           [(s.pa, s.size) for s in load_memory(fixture_elf[0])]


# ------------------------------------------------------------------ raw images

def test_raw_image_from_fixture_segment(fixture_elf, tmp_path):
    """A pmemsave-style raw file of one PT_LOAD, loaded at that PA, reads the same bytes."""
    segs = load_memory(fixture_elf[0])
    seg = max(segs, key=lambda s: s.size)
    p = tmp_path / "seg.raw"
    p.write_bytes(bytes(seg.data))
    (r,) = load_memory(p, ram_base=seg.pa)
    assert r.pa == seg.pa and r.data == seg.data


def test_raw_default_ram_base(tmp_path):
    p = tmp_path / "mem.raw"
    p.write_bytes(bytes(range(256)) * 16)
    (s,) = load_memory(p)
    assert s.pa == DEFAULT_RAM_BASE == 0x40000000
    assert s.size == 4096 and s.data[5] == 5
    assert isinstance(s.data.obj, mmap.mmap)  # mapped, not copied
    assert s.data.readonly


def test_raw_xz(tmp_path):
    p = tmp_path / "mem.raw.xz"
    p.write_bytes(lzma.compress(b"\xab" * 8192))
    (s,) = load_memory(p, ram_base=0x80000000)
    assert s.pa == 0x80000000 and s.size == 8192 and s.data[8191] == 0xAB


def test_raw_1gib_sparse(tmp_path):
    p = tmp_path / "big.raw"
    with open(p, "wb") as f:
        f.truncate(GIB)
        f.seek(0x1234)
        f.write(b"head")
        f.seek(GIB - 4)
        f.write(b"tail")
    (s,) = load_memory(str(p), ram_base=0x40000000)
    assert s.pa == 0x40000000 and s.size == GIB
    assert bytes(s.data[0x1234:0x1238]) == b"head"
    assert bytes(s.data[GIB - 4:]) == b"tail"
    assert bytes(s.data[0x3FFF0000:0x3FFF0008]) == bytes(8)


def test_elf_1gib_sparse(tmp_path):
    p = tmp_path / "big.elf"
    hdr = elf_bytes([(0x40000000, b"", GIB)])
    # patch p_filesz to 1 GiB and put the data at offset 0x1000
    raw = bytearray(hdr)
    phoff = 64
    struct.pack_into("<Q", raw, phoff + 8, 0x1000)   # p_offset
    struct.pack_into("<Q", raw, phoff + 32, GIB)     # p_filesz
    with open(p, "wb") as f:
        f.write(raw)
        f.truncate(0x1000 + GIB)
        f.seek(0x1000 + 0x10000)
        f.write(b"SMMU")
    (s,) = load_memory(p)
    assert s.pa == 0x40000000 and s.size == GIB
    assert bytes(s.data[0x10000:0x10004]) == b"SMMU"
    assert s.data[GIB - 1] == 0


# ------------------------------------------------------------------ synthetic ELFs

def test_elf_zero_fill_and_order(tmp_path):
    p = tmp_path / "z.elf"
    p.write_bytes(elf_bytes([(0x50000000, b"\x11" * 16, 0x2000), (0x40000000, b"\x22" * 8, 8)],
                            note=b"\0" * 20))
    segs = load_memory(p)
    assert [(s.pa, s.size) for s in segs] == [(0x40000000, 8), (0x50000000, 0x2000)]
    assert bytes(segs[1].data[:16]) == b"\x11" * 16
    assert not any(segs[1].data[16:])
    assert segs[1].data.readonly


def test_elf_filesz_zero(tmp_path):
    p = tmp_path / "z.elf"
    p.write_bytes(elf_bytes([(0x40000000, b"", 0x3000)]))
    (s,) = load_memory(p)
    assert s.size == 0x3000 and not any(s.data)


def test_truncated_elf(fixture_elf, tmp_path):
    raw = fixture_elf[1]
    loads = parse_phdrs(raw)
    last_data_end = max(off + filesz for _, off, filesz, _ in loads if filesz)
    p = tmp_path / "trunc.elf"
    p.write_bytes(raw[:last_data_end - 100])
    with pytest.raises(DumpError) as e:
        load_memory(p)
    msg = str(e.value)
    assert str(p) in msg and "truncated" in msg and "\n" not in msg


def test_truncated_in_program_headers(tmp_path):
    p = tmp_path / "t.elf"
    p.write_bytes(elf_bytes([(0x40000000, b"x" * 64, 64)])[:80])
    with pytest.raises(DumpError, match="truncated"):
        load_memory(p)


def test_not_aarch64(tmp_path):
    p = tmp_path / "x86.elf"
    p.write_bytes(elf_bytes([(0, b"x" * 16, 16)], machine=62))
    with pytest.raises(DumpError, match="not an AArch64") as e:
        load_memory(p)
    assert str(p) in str(e.value)


def test_not_elf64(tmp_path):
    p = tmp_path / "e32.elf"
    p.write_bytes(elf_bytes([(0, b"x" * 16, 16)], ei_class=1))
    with pytest.raises(DumpError, match="ELF64"):
        load_memory(p)


def test_not_core(tmp_path):
    p = tmp_path / "vmlinux"
    p.write_bytes(elf_bytes([(0, b"x" * 16, 16)], e_type=2))
    with pytest.raises(DumpError, match="core"):
        load_memory(p)


def test_no_pt_load(tmp_path):
    p = tmp_path / "noload.elf"
    p.write_bytes(elf_bytes([], note=b"\0" * 32))
    with pytest.raises(DumpError, match="no PT_LOAD"):
        load_memory(p)


def test_overlapping_segments(tmp_path):
    p = tmp_path / "ovl.elf"
    p.write_bytes(elf_bytes([(0x40000000, b"a" * 0x2000, 0x2000),
                             (0x40001000, b"b" * 0x1000, 0x1000)]))
    with pytest.raises(DumpError, match="overlaps") as e:
        load_memory(p)
    assert str(p) in str(e.value)


def test_filesz_gt_memsz(tmp_path):
    raw = bytearray(elf_bytes([(0x40000000, b"a" * 32, 32)]))
    struct.pack_into("<Q", raw, 64 + 40, 16)  # p_memsz < p_filesz
    p = tmp_path / "bad.elf"
    p.write_bytes(raw)
    with pytest.raises(DumpError, match="p_filesz"):
        load_memory(p)


def test_ram_base_with_elf_is_an_error(fixture_elf):
    with pytest.raises(DumpError, match="ram_base"):
        load_memory(fixture_elf[0], ram_base=0x40000000)


@pytest.mark.parametrize("bad", [-1, 0x40000001, 1 << 64, "0x40000000", 1.5, True])
def test_bad_ram_base(tmp_path, bad):
    p = tmp_path / "m.raw"
    p.write_bytes(b"\0" * 4096)
    with pytest.raises(DumpError, match="ram_base"):
        load_memory(p, ram_base=bad)


def test_empty_missing_and_bad_xz(tmp_path):
    empty = tmp_path / "empty.raw"
    empty.write_bytes(b"")
    with pytest.raises(DumpError, match="empty"):
        load_memory(empty)
    with pytest.raises(DumpError, match="cannot open"):
        load_memory(tmp_path / "nope.elf")
    bad = tmp_path / "bad.elf.xz"
    bad.write_bytes(lzma.compress(os.urandom(100000))[:2000])
    with pytest.raises(DumpError, match="xz") as e:
        load_memory(bad)
    assert str(bad) in str(e.value)


def test_kdump_rejected(tmp_path):
    p = tmp_path / "vmcore"
    p.write_bytes(b"KDUMP   " + b"\0" * 4088)
    with pytest.raises(DumpError, match="kdump"):
        load_memory(p)


def test_error_messages_are_one_line(tmp_path):
    p = tmp_path / "x86.elf"
    p.write_bytes(elf_bytes([(0, b"x" * 16, 16)], machine=62))
    try:
        load_memory(os.fspath(p))
    except DumpError as e:
        assert "\n" not in str(e) and str(e).startswith(str(p))
