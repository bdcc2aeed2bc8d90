"""IOAS: the io_pagetable of drivers/iommu/iommufd/io_pagetable.c and ioas.c.

An IOAS holds areas (IOVA ranges mapped to memory), reserved ranges (device reserved regions
such as the SW_MSI window, domain apertures), the allowed IOVA ranges and the IOVA alignment the
attached domains need. Every HWPT allocated on it (a "domain") is filled with every area and
kept in sync on map and unmap, as iopt_fill_domain / iopt_area_unfill_domains do.

Model departure, on purpose: IOAS_MAP maps user memory (user_va); here an area maps host
physical memory directly (`pa`), as if the pinned pages were physically contiguous.
"""
from __future__ import annotations

import errno as E

from .errors import IommufdError, fail
from .results import AreaInfo, IoasInfo, ReservedInfo

ULONG_MAX = (1 << 64) - 1        # a 64-bit kernel: unsigned long == u64
U64_MAX = ULONG_MAX
PAGE_SIZE = 4096                 # the host kernel's PAGE_SIZE (arm64 4K pages)

# include/uapi/linux/iommufd.h enum iommufd_ioas_map_flags
IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0
IOMMU_IOAS_MAP_WRITEABLE = 1 << 1
IOMMU_IOAS_MAP_READABLE = 1 << 2
_MAP_FLAGS = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE


def _overlap(a0, a1, b0, b1) -> bool:
    return a0 <= b1 and b0 <= a1


def _pow2_roundup(n: int) -> int:
    return 1 << (n - 1).bit_length()


class Area:
    """One iopt_area: [iova, iova+length) -> pa, with its iopt_pages' writability."""
    __slots__ = ("iova", "length", "pa", "read", "write", "pages_writable")

    def __init__(self, iova, length, pa, read, write, pages_writable):
        self.iova, self.length, self.pa = iova, length, pa
        self.read, self.write = read, write
        self.pages_writable = pages_writable

    @property
    def last(self) -> int:
        return self.iova + self.length - 1


class Ioas:
    def __init__(self, ioas_id: int):
        self.id = ioas_id
        self.areas: list[Area] = []           # sorted by iova
        self.reserved: list[tuple[int, int, str]] = []
        self.allowed: list[tuple[int, int]] = []
        self.iova_alignment = 1               # iopt_init_table: no restriction until a domain
        self.domains: list = []               # HwptPaging objects filled from this IOAS

    # -- lookups ----------------------------------------------------------------------------
    def _areas_in(self, first, last):
        return [a for a in self.areas if _overlap(a.iova, a.last, first, last)]

    def _reserved_in(self, first, last):
        return [r for r in self.reserved if _overlap(r[0], r[1], first, last)]

    def translate(self, iova: int):
        """The host PA an IOVA maps to, or None."""
        for a in self.areas:
            if a.iova <= iova <= a.last:
                return a.pa + (iova - a.iova)
        return None

    # -- IOMMU_IOAS_MAP -----------------------------------------------------------------------
    def map(self, length: int, pa: int, flags: int, iova: int = 0) -> int:
        """IOMMU_IOAS_MAP (iommufd_ioas_map, iopt_map_user_pages). Returns the IOVA used."""
        op = "IOMMU_IOAS_MAP"
        if flags & ~_MAP_FLAGS:
            fail(E.EOPNOTSUPP, op, f"unknown flags {flags:#x}", "iommufd_ioas_map")
        if iova >= ULONG_MAX or length >= ULONG_MAX:
            fail(E.EOVERFLOW, op, "iova or length >= ULONG_MAX", "iommufd_ioas_map")
        if not flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE):
            fail(E.EINVAL, op, "neither READABLE nor WRITEABLE", "iommufd_ioas_map")
        writable = bool(flags & IOMMU_IOAS_MAP_WRITEABLE)
        return self._map_pages(op, [(pa, length, writable)], length, iova, flags)

    def _map_pages(self, op, slices, length, iova, flags) -> int:
        """iopt_map_pages: reserve the IOVA (iopt_alloc_area_pages), insert one area per slice
        (iopt_insert_area), then fill every domain (iopt_fill_domains_pages)."""
        read = bool(flags & IOMMU_IOAS_MAP_READABLE)
        write = bool(flags & IOMMU_IOAS_MAP_WRITEABLE)
        if length & (self.iova_alignment - 1) or not length:
            fail(E.EINVAL, op, f"length {length:#x} is zero or not a multiple of the IOVA "
                 f"alignment {self.iova_alignment:#x}", "iopt_alloc_area_pages")
        if flags & IOMMU_IOAS_MAP_FIXED_IOVA:
            self._check_iova(op, iova, length)
        else:
            iova = self._alloc_iova(op, slices[0][0], length)
        new = []
        at = iova
        for pa, n, pages_writable in slices:
            if write and not pages_writable:
                fail(E.EPERM, op, "WRITEABLE mapping of pages pinned read-only",
                     "iopt_insert_area")
            if (pa % PAGE_SIZE) & (self.iova_alignment - 1):
                fail(E.EINVAL, op, f"page offset of {pa:#x} is not aligned to "
                     f"{self.iova_alignment:#x}", "iopt_insert_area")
            new.append(Area(at, n, pa, read, write, pages_writable))
            at += n
        for dom in self.domains:               # iopt_area_fill_domains
            for a in new:
                dom.map_area(a)
        self.areas.extend(new)
        self.areas.sort(key=lambda a: a.iova)
        return iova

    def _check_iova(self, op, iova, length):
        """iopt_check_iova, in its order."""
        if iova & (self.iova_alignment - 1):
            fail(E.EINVAL, op, f"IOVA {iova:#x} is not aligned to {self.iova_alignment:#x}",
                 "iopt_check_iova")
        if iova + length - 1 > ULONG_MAX:
            fail(E.EOVERFLOW, op, "iova + length overflows", "iopt_check_iova")
        last = iova + length - 1
        r = self._reserved_in(iova, last)
        if r:
            fail(E.EINVAL, op, f"[{iova:#x}, {last:#x}] meets the reserved range "
                 f"[{r[0][0]:#x}, {r[0][1]:#x}] ({r[0][2]})", "iopt_check_iova")
        a = self._areas_in(iova, last)
        if a:
            fail(E.EEXIST, op, f"[{iova:#x}, {last:#x}] overlaps the area at {a[0].iova:#x}",
                 "iopt_check_iova")

    def _alloc_iova(self, op, uptr, length) -> int:
        """iopt_alloc_iova: the first hole, in the allowed ranges (or [PAGE_SIZE,
        ULONG_MAX - PAGE_SIZE]), aligned to min(roundup_pow_of_two(length), uptr's alignment)
        plus uptr's page offset. Never IOVA 0."""
        if length == 0 or length >= ULONG_MAX // 2:
            fail(E.EOVERFLOW, op, "length is 0 or too large to align", "iopt_alloc_iova")
        align = _pow2_roundup(length)
        if uptr:
            align = min(align, uptr & -uptr)
        if align < self.iova_alignment:
            fail(E.EINVAL, op, f"the IOVA alignment {align:#x} the address allows is below "
                 f"the IOAS's {self.iova_alignment:#x}", "iopt_alloc_iova")
        offset = uptr % PAGE_SIZE
        spans = sorted(self.allowed) or [(PAGE_SIZE, ULONG_MAX - PAGE_SIZE)]
        used = sorted([(r[0], r[1]) for r in self.reserved] +
                      [(a.iova, a.last) for a in self.areas])
        for s0, s1 in spans:
            s0, s1 = max(s0, PAGE_SIZE), min(s1, ULONG_MAX - PAGE_SIZE)
            holes, cur = [], s0
            for u0, u1 in used:
                if u1 < cur or u0 > s1:
                    continue
                if u0 > cur:
                    holes.append((cur, u0 - 1))
                cur = max(cur, u1 + 1)
            if cur <= s1:
                holes.append((cur, s1))
            for h0, h1 in holes:
                start = ((h0 + align - 1) & -align) | offset
                if start <= h1 and h1 - start >= length - 1:
                    return start
        fail(E.ENOSPC, op, f"no free IOVA range of {length:#x} bytes", "iopt_alloc_iova")

    # -- IOMMU_IOAS_UNMAP ---------------------------------------------------------------------
    def unmap(self, iova: int, length: int) -> int:
        """IOMMU_IOAS_UNMAP (iommufd_ioas_unmap). Returns the bytes unmapped. iova=0 with
        length=U64_MAX unmaps everything (and succeeds on an empty IOAS)."""
        op = "IOMMU_IOAS_UNMAP"
        if iova == 0 and length == U64_MAX:
            try:
                return self._unmap_range(op, 0, ULONG_MAX)
            except IommufdError as e:   # iopt_unmap_all: "If the IOVAs are empty ... succeeds"
                if e.errno == E.ENOENT:
                    return 0
                raise
        if iova >= ULONG_MAX or length >= ULONG_MAX:
            fail(E.EOVERFLOW, op, "iova or length >= ULONG_MAX", "iommufd_ioas_unmap")
        if not length:
            fail(E.EINVAL, op, "length is 0", "iopt_unmap_iova")
        if iova + length - 1 > ULONG_MAX:
            fail(E.EOVERFLOW, op, "iova + length overflows", "iopt_unmap_iova")
        return self._unmap_range(op, iova, iova + length - 1)

    def _unmap_range(self, op, start, last) -> int:
        """iopt_unmap_iova_range: areas are removed whole, lowest first. An area that the
        range cuts stops the loop with -ENOENT (areas before it stay unmapped: the kernel does
        not undo them); no area at all is -ENOENT too."""
        done = 0
        for a in list(self._areas_in(start, last)):
            if a.iova < start or a.last > last:
                fail(E.ENOENT, op, f"[{start:#x}, {last:#x}] cuts the area [{a.iova:#x}, "
                     f"{a.last:#x}]: areas are unmapped whole" +
                     (f" ({done:#x} bytes before it were unmapped)" if done else ""),
                     "iopt_unmap_iova_range")
            for dom in self.domains:               # iopt_area_unfill_domains
                dom.unmap_area(a)
            self.areas.remove(a)
            done += a.length
        if not done:
            fail(E.ENOENT, op, f"nothing is mapped in [{start:#x}, {last:#x}]",
                 "iopt_unmap_iova_range")
        return done

    # -- IOMMU_IOAS_COPY ----------------------------------------------------------------------
    def copy_to(self, dst, length: int, src_iova: int, flags: int, dst_iova: int = 0) -> int:
        """IOMMU_IOAS_COPY from this IOAS into dst (an Ioas, or a callable returning it, looked
        up after the source pages as iommufd_ioas_copy does). Returns the dst IOVA."""
        op = "IOMMU_IOAS_COPY"
        if flags & ~_MAP_FLAGS:
            fail(E.EOPNOTSUPP, op, f"unknown flags {flags:#x}", "iommufd_ioas_copy")
        if length >= ULONG_MAX or src_iova >= ULONG_MAX or dst_iova >= ULONG_MAX:
            fail(E.EOVERFLOW, op, "length or an IOVA >= ULONG_MAX", "iommufd_ioas_copy")
        if not flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE):
            fail(E.EINVAL, op, "neither READABLE nor WRITEABLE", "iommufd_ioas_copy")
        slices = self._get_pages(op, src_iova, length)
        dst = dst() if callable(dst) else dst
        return dst._map_pages(op, slices, length, dst_iova, flags)

    def _get_pages(self, op, iova, length):
        """iopt_get_pages: the source range must be covered by contiguous areas."""
        if not length:
            fail(E.EINVAL, op, "length is 0", "iopt_get_pages")
        if iova + length - 1 > ULONG_MAX:
            fail(E.EOVERFLOW, op, "iova + length overflows", "iopt_get_pages")
        last = iova + length - 1
        out, cur = [], iova
        for a in self.areas:
            if a.last < cur:
                continue
            if a.iova > cur:
                break
            end = min(last, a.last)
            out.append((a.pa + (cur - a.iova), end - cur + 1, a.pages_writable))
            cur = end + 1
            if cur > last:
                return out
        fail(E.ENOENT, op, f"[{iova:#x}, {last:#x}] is not fully mapped (hole at {cur:#x})",
             "iopt_get_pages")

    # -- IOMMU_IOAS_ALLOW_IOVAS / IOVA_RANGES -----------------------------------------------
    def allow_iovas(self, ranges) -> None:
        """IOMMU_IOAS_ALLOW_IOVAS with [(start, last), ...]; atomic (old list kept on error)."""
        op = "IOMMU_IOAS_ALLOW_IOVAS"
        new = []
        for start, last in ranges:             # iommufd_ioas_load_iovas
            if start >= last:
                fail(E.EINVAL, op, f"range [{start:#x}, {last:#x}] has start >= last",
                     "iommufd_ioas_load_iovas")
            if any(_overlap(start, last, s, l) for s, l in new):
                fail(E.EINVAL, op, f"range [{start:#x}, {last:#x}] overlaps another",
                     "iommufd_ioas_load_iovas")
            new.append((start, last))
        for start, last in new:                 # iopt_set_allow_iova
            r = self._reserved_in(start, last)
            if r:
                fail(E.EADDRINUSE, op, f"allowed [{start:#x}, {last:#x}] meets reserved "
                     f"[{r[0][0]:#x}, {r[0][1]:#x}] ({r[0][2]})", "iopt_set_allow_iova")
        self.allowed = sorted(new)

    def iova_ranges(self) -> list[tuple[int, int]]:
        """IOMMU_IOAS_IOVA_RANGES: the holes in the reserved ranges over [0, ULONG_MAX]."""
        out, cur = [], 0
        for s, l, _o in sorted(self.reserved):
            if s > cur:
                out.append((cur, s - 1))
            cur = max(cur, l + 1)
        if cur <= ULONG_MAX:
            out.append((cur, ULONG_MAX))
        return out

    # -- reserved ranges and domains ----------------------------------------------------------
    def reserve(self, op, start, last, owner: str) -> None:
        """iopt_reserve_iova: not over an area nor an allowed range (-EADDRINUSE)."""
        a = self._areas_in(start, last)
        if a or any(_overlap(start, last, s, l) for s, l in self.allowed):
            what = f"the area at {a[0].iova:#x}" if a else "an allowed range"
            fail(E.EADDRINUSE, op, f"reserved region [{start:#x}, {last:#x}] ({owner}) meets "
                 f"{what}", "iopt_reserve_iova")
        self.reserved.append((start, last, owner))

    def remove_reserved(self, owner: str) -> None:
        self.reserved = [r for r in self.reserved if r[2] != owner]

    def add_domain(self, op, dom) -> None:
        """iopt_table_add_domain: raise the IOVA alignment to the domain's smallest page
        (every area must already conform, else -EADDRINUSE), reserve what lies outside the
        aperture, then fill the domain with every area."""
        align = max(dom.page_size, self.iova_alignment)
        if align > PAGE_SIZE:
            fail(E.EINVAL, op, f"page size {align:#x} > PAGE_SIZE", "iopt_table_add_domain")
        if align != self.iova_alignment:
            for a in self.areas:               # iopt_check_iova_alignment
                if (a.iova | a.length | (a.pa % PAGE_SIZE)) & (align - 1):
                    fail(E.EADDRINUSE, op, f"the area at {a.iova:#x} is not aligned to the "
                         f"domain's page size {align:#x}", "iopt_check_iova_alignment")
        owner = f"aperture of {dom.label}"
        if dom.aperture_end != ULONG_MAX:
            self.reserve(op, dom.aperture_end + 1, ULONG_MAX, owner)
        try:
            for a in self.areas:
                dom.map_area(a)
        except Exception:
            self.remove_reserved(owner)
            raise
        self.iova_alignment = align
        self.domains.append(dom)

    def remove_domain(self, dom) -> None:
        """iopt_table_remove_domain: unfill, drop its reservations, recompute the alignment."""
        for a in self.areas:
            dom.unmap_area(a)
        self.domains.remove(dom)
        self.remove_reserved(f"aperture of {dom.label}")
        self.iova_alignment = max([d.page_size for d in self.domains] + [1])

    # -- results ------------------------------------------------------------------------------
    def info(self) -> IoasInfo:
        return IoasInfo(
            id=self.id,
            areas=tuple(AreaInfo(a.iova, a.length, a.pa, a.read, a.write) for a in self.areas),
            reserved=tuple(ReservedInfo(s, l, o) for s, l, o in sorted(self.reserved)),
            allowed=tuple(self.allowed), iova_alignment=self.iova_alignment,
            hwpts=tuple(d.id for d in self.domains))
