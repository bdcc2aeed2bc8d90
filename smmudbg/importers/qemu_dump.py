"""Load a guest-physical memory dump: QEMU ``dump-guest-memory`` ELF or ``pmemsave`` raw.

Depends on the standard library, pyelftools and smmudbg.textfile (the one safe file opener).

    segs = load_memory("memory.elf")                 # ELF core, one Segment per PT_LOAD
    segs = load_memory("memory.raw")                 # raw image at 0x40000000 (QEMU virt RAM)
    segs = load_memory("memory.raw", ram_base=0x80000000)
    segs = load_memory("memory.elf.xz")              # xz (by magic): decompressed to an unlinked temp file

Each :class:`Segment` has ``pa`` (guest physical address of its first byte) and ``data``, a
read-only ``memoryview`` over an ``mmap`` of the file: nothing is copied, so a 1 GiB dump loads
in milliseconds and pages are read from disk only when touched. An ELF PT_LOAD whose p_filesz is
smaller than p_memsz is zero-filled up to p_memsz (that segment alone lives in anonymous memory).

Errors are :class:`DumpError` with a one-line message that names the file.

ELF layout accepted: ELF64 little-endian, e_machine EM_AARCH64 (or EM_X86_64 for a q35 guest, with
load_dump(..., machines=MACHINES)), e_type ET_CORE, PT_LOAD with
p_paddr = guest PA (what QEMU writes; p_vaddr is ignored). QEMU 7.2 writes e_ehsize = 8 (a
QEMU bug: sizeof a pointer); that is tolerated.
"""

from __future__ import annotations

import lzma
import mmap
import os
import tempfile
from dataclasses import dataclass

from ..textfile import display_name, open_regular

__all__ = ["DEFAULT_RAM_BASE", "DumpError", "Segment", "load_memory", "load_dump", "MACHINES"]

#: Guest RAM base of QEMU's arm "virt" machine; where a pmemsave of all RAM starts.
DEFAULT_RAM_BASE = 0x40000000

_ELF_MAGIC = b"\x7fELF"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_KDUMP_MAGIC = b"KDUMP   "
_EM_AARCH64 = 183
#: The guests a dump may come from, by ELF e_machine: QEMU's arm virt (SMMUv3) and x86 q35
#: (Intel VT-d).
MACHINES = {_EM_AARCH64: "aarch64", 62: "x86_64"}
_ET_CORE = 4
_PT_LOAD = 1
_PHDR_SIZE = 56                 # sizeof(Elf64_Phdr)

#: Bounds on what a dump may declare, so a damaged header fails in milliseconds instead of
#: reserving terabytes: program headers (QEMU writes one per RAM block, or per guest mapping
#: with paging; e_phnum holds up to 65,534 without PN_XNUM, and pyelftools reads about 25,000
#: a second), bytes zero-filled past p_filesz over all segments, and bytes an xz dump may
#: decompress to.
MAX_SEGMENTS = 1 << 16
MAX_ZERO_FILL = 1 << 40
MAX_XZ_BYTES = 1 << 40


class DumpError(Exception):
    """A memory dump cannot be loaded. str() is a one-line message naming the file."""


@dataclass(frozen=True)
class Segment:
    """A run of guest-physical memory: ``data[i]`` is the byte at ``pa + i``."""

    pa: int
    data: memoryview

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def end(self) -> int:
        """One past the last guest PA of the segment."""
        return self.pa + len(self.data)

    def __repr__(self) -> str:  # never dump the bytes
        return f"Segment(pa={self.pa:#x}, size={len(self.data):#x})"


def load_memory(path, ram_base: int | None = None) -> list[Segment]:
    """An AArch64 dump's segments (see load_dump; an ELF of another machine is an error)."""
    return load_dump(path, ram_base)[0]


def load_dump(path, ram_base: int | None = None, machines=("aarch64",),
              default_base: int = DEFAULT_RAM_BASE) -> tuple[list[Segment], str | None]:
    """Load a dump; returns its segments sorted by ``pa``, non-overlapping.

    ``path`` is an ELF core (detected by its magic), a raw image, or either compressed with xz
    (detected by its magic; the file name does not matter). ``ram_base`` is the guest PA of the first byte of a
    raw image (default :data:`DEFAULT_RAM_BASE`); it is an error to give it for an ELF, whose
    program headers already say where each segment goes.

    Returns (segments, machine): machine is the ELF's MACHINES name, None for a raw image;
    an ELF whose machine is not among ``machines`` is an error. ``default_base``: a raw
    image's base when ram_base is not given (a q35 guest's RAM starts at 0).
    """
    name = display_name(os.fspath(path))
    if ram_base is not None:
        if isinstance(ram_base, bool) or not isinstance(ram_base, int):
            raise DumpError(f"{name}: ram_base must be an integer, got {ram_base!r}")
        if ram_base < 0 or ram_base >= 1 << 64:
            raise DumpError(f"{name}: ram_base {ram_base:#x} is not a 64-bit physical address")
        if ram_base & 0xFFF:
            raise DumpError(f"{name}: ram_base {ram_base:#x} is not 4 KiB aligned")
    f = open_regular(path, DumpError, "memory dump")
    with f:
        head = f.read(8)
        if head.startswith(_XZ_MAGIC):
            mm = _decompress_xz(f, name)
        else:
            mm = _map(f, name)
    return _load_mapped(mm, name, ram_base, machines, default_base)


def _map(f, name: str) -> mmap.mmap:
    size = os.fstat(f.fileno()).st_size
    if size == 0:
        raise DumpError(f"{name}: file is empty")
    try:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as e:
        raise DumpError(f"{name}: cannot mmap: {e}") from None


def _decompress_xz(f, name: str) -> mmap.mmap:
    f.seek(0)
    tmpdir = os.environ.get("SMMUDBG_TMPDIR") or None
    with tempfile.TemporaryFile(prefix="smmudbg-dump-", dir=tmpdir) as tmp:
        try:
            with lzma.open(f, "rb") as z:
                total = 0
                while chunk := z.read(1 << 20):
                    total += len(chunk)
                    if total > MAX_XZ_BYTES:
                        raise DumpError(f"{name}: xz data decompresses to more than "
                                        f"{MAX_XZ_BYTES >> 30} GiB")
                    tmp.write(chunk)
        except (lzma.LZMAError, EOFError) as e:
            raise DumpError(f"{name}: bad or truncated xz data: {e}") from None
        except OSError as e:
            raise DumpError(f"{name}: cannot decompress: {e}") from None
        tmp.flush()
        # TemporaryFile is already unlinked; the mapping outlives the descriptor.
        return _map(tmp, name)


def _load_mapped(mm: mmap.mmap, name: str, ram_base: int | None, machines, default_base):
    head = mm[:8]
    if head.startswith(_ELF_MAGIC):
        if ram_base is not None:
            raise DumpError(
                f"{name}: ram_base only applies to raw images; this is an ELF core whose "
                "program headers give each segment's address"
            )
        return _load_elf(mm, name, machines)
    if head == _KDUMP_MAGIC:
        raise DumpError(
            f"{name}: kdump-compressed dump is not supported; use dump-guest-memory "
            "without -z/-l/-s (ELF) or pmemsave (raw)"
        )
    if head.startswith(_XZ_MAGIC):
        raise DumpError(f"{name}: xz data inside xz data is not supported")
    base = default_base if ram_base is None else ram_base
    if base + len(mm) > 1 << 64:
        raise DumpError(f"{name}: raw image of {len(mm):#x} bytes at {base:#x} exceeds 64-bit PA")
    return [Segment(base, memoryview(mm))], None


def _load_elf(mm: mmap.mmap, name: str, machines) -> tuple[list[Segment], str]:
    size = len(mm)
    if size < 64:
        raise DumpError(f"{name}: truncated ELF header ({size} bytes, need 64)")
    ei_class, ei_data = mm[4], mm[5]
    if ei_class != 2:
        raise DumpError(f"{name}: not an ELF64 file (EI_CLASS={ei_class}); expected an AArch64 core")
    if ei_data != 1:
        raise DumpError(f"{name}: not a little-endian ELF (EI_DATA={ei_data})")
    e_type = int.from_bytes(mm[16:18], "little")
    e_machine = int.from_bytes(mm[18:20], "little")
    machine = MACHINES.get(e_machine)
    if machine not in machines:
        if tuple(machines) == ("aarch64",):
            raise DumpError(f"{name}: not an AArch64 dump (e_machine={e_machine}, want "
                            f"{_EM_AARCH64} EM_AARCH64)")
        raise DumpError(f"{name}: not an AArch64 or x86-64 dump (e_machine={e_machine}, want "
                        f"183 EM_AARCH64 or 62 EM_X86_64)")
    if e_type != _ET_CORE:
        raise DumpError(f"{name}: not an ELF core dump (e_type={e_type}, want 4 ET_CORE)")

    from elftools.common.exceptions import ELFError
    from elftools.construct.core import ConstructError
    from elftools.elf.elffile import ELFFile

    e_phoff = int.from_bytes(mm[32:40], "little")
    e_phentsize = int.from_bytes(mm[54:56], "little")
    e_phnum = int.from_bytes(mm[56:58], "little")
    if e_phnum and e_phentsize != _PHDR_SIZE:
        raise DumpError(f"{name}: bad e_phentsize {e_phentsize} (want {_PHDR_SIZE})")
    try:
        # pyelftools reads only the headers it is asked for; section headers are not touched
        # (but section header 0, when e_phnum is PN_XNUM and the real count is in its sh_info).
        elf = ELFFile(_MmapStream(mm))
        phnum = elf.num_segments()
    except (ELFError, ConstructError, ValueError, OSError, AssertionError) as e:
        raise DumpError(f"{name}: bad ELF header: {e}") from None
    if phnum > MAX_SEGMENTS:
        raise DumpError(f"{name}: e_phnum {phnum} program headers: more than {MAX_SEGMENTS}")
    if phnum and e_phoff + phnum * _PHDR_SIZE > size:
        raise DumpError(
            f"{name}: truncated: e_phoff {e_phoff:#x} + e_phnum {phnum} program headers end at "
            f"{e_phoff + phnum * _PHDR_SIZE:#x}, file is {size:#x} bytes"
        )
    try:
        phdrs = [elf.get_segment(i).header for i in range(phnum)]
    except (ELFError, ConstructError, ValueError, OSError, AssertionError) as e:
        raise DumpError(f"{name}: bad ELF program headers: {e}") from None

    loads = []
    zero_fill = 0
    for i, h in enumerate(phdrs):
        if h["p_type"] not in ("PT_LOAD", _PT_LOAD):
            continue
        off, filesz, memsz, pa = h["p_offset"], h["p_filesz"], h["p_memsz"], h["p_paddr"]
        where = f"{name}: PT_LOAD #{i} (p_paddr {pa:#x})"
        if filesz > memsz:
            raise DumpError(f"{where}: p_filesz {filesz:#x} > p_memsz {memsz:#x}")
        if filesz and off + filesz > size:
            raise DumpError(
                f"{where}: p_offset {off:#x} + p_filesz {filesz:#x} = {off + filesz:#x} is "
                f"past the end of the file ({size:#x} bytes; truncated dump?)"
            )
        if pa + memsz > 1 << 64:
            raise DumpError(f"{where}: p_paddr + p_memsz {memsz:#x} = {pa + memsz:#x} is beyond "
                            f"the 64-bit physical address space")
        if memsz == 0:
            continue
        zero_fill += memsz - filesz
        if zero_fill > MAX_ZERO_FILL:
            raise DumpError(
                f"{where}: p_memsz {memsz:#x} exceeds p_filesz {filesz:#x} by "
                f"{memsz - filesz:#x}: more zero-filled memory than the {MAX_ZERO_FILL >> 30} "
                f"GiB a dump may declare"
            )
        loads.append((pa, memsz, off, filesz, i))
    if not loads:
        raise DumpError(f"{name}: no PT_LOAD segments (no guest memory in this ELF)")

    loads.sort()
    for (pa0, sz0, _, _, i0), (pa1, _, _, _, i1) in zip(loads, loads[1:]):
        if pa0 + sz0 > pa1:
            raise DumpError(
                f"{name}: PT_LOAD #{i0} (p_paddr {pa0:#x}..{pa0 + sz0:#x}) overlaps "
                f"PT_LOAD #{i1} (p_paddr {pa1:#x})"
            )

    view = memoryview(mm)
    segs = []
    for pa, memsz, off, filesz, i in loads:
        if filesz == memsz:
            data = view[off:off + filesz]
        else:
            # Zero-fill: anonymous pages are zero and allocated only where written.
            try:
                anon = mmap.mmap(-1, memsz)
            except (OSError, OverflowError, ValueError) as e:
                raise DumpError(f"{name}: PT_LOAD #{i} (p_paddr {pa:#x}): cannot reserve "
                                f"p_memsz {memsz:#x} bytes: {getattr(e, 'strerror', None) or e}"
                                ) from None
            if filesz:
                anon[:filesz] = view[off:off + filesz]
            data = memoryview(anon).toreadonly()
        segs.append(Segment(pa, data))
    return segs, machine


class _MmapStream:
    """The minimal file interface pyelftools needs, over an mmap, without copying it."""

    def __init__(self, mm: mmap.mmap):
        self._mm = mm
        self._pos = 0

    def seek(self, pos, whence=0):
        if whence == 0:
            self._pos = pos
        elif whence == 1:
            self._pos += pos
        else:
            self._pos = len(self._mm) + pos
        return self._pos

    def tell(self):
        return self._pos

    def read(self, n=-1):
        end = len(self._mm) if n is None or n < 0 else min(self._pos + n, len(self._mm))
        data = self._mm[self._pos:end]
        self._pos = max(self._pos, end)
        return data
