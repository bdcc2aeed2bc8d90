# cython: language_level=3
"""Whole-tree scans of VMSAv8-64 translation tables in modeled memory.

leaf_perms: the permissions a leaf grants, by the rule the walker applies (Arm ARM
AArch64.S1DirectBasePermissions with hierarchical APTable/PXNTable/UXNTable; stage 2 S2AP/XN),
so `pt` shows what `walk` would allow. find_leaves: every leaf of one tree whose output falls
in a set of target ranges (the reverse lookup behind `find`), in a nogil loop over the
descriptors: each table is read a 4 KiB page at a time, no Python object per descriptor, and
only matching leaf ranges are emitted (merged when input, output and attributes continue).
A tree whose tables are IPAs is read through a stage-2 tree (one lookup per table page).
"""
cimport numpy as cnp
import numpy as np
from libc.stdlib cimport malloc, realloc, free
from libc.stdint cimport uint64_t
from core_cy.physmem cimport PhysMem, MemCore, mc_page, PAGE_SHIFT, PAGE_SIZE
from core_cy._fields cimport STE_V, STE_Config, L1STD_Span, S1_TABLE_APTable_v, S1_TABLE_PXNTable_v, S1_TABLE_UXNTable_v
from core_cy._smmuv3 cimport (S1_BLOCK_OA_MASK, S1_BLOCK_Valid_MASK, S1_TABLE_DESC_TYPE_MASK,
                              S1_TABLE_DESC_table, S1_TABLE_NLTA_MASK)
from core_cy.wtypes cimport lowmask
from core_cy.vmsa cimport (S1Cfg, VmsaCaps, s1_leaf_perms, s2_perms, level_shift,
                           block_min_level)

cnp.import_array()

# Attribute bits compared when merging leaves: upper [63:48] and lower [11:2].
cdef uint64_t ATTR_MASK = ~S1_BLOCK_OA_MASK & ~<uint64_t>3


cdef inline bint is_valid(uint64_t d) noexcept nogil:
    return (d & S1_BLOCK_Valid_MASK) != 0


cdef inline bint is_table_or_page(uint64_t d) noexcept nogil:
    return (d & S1_TABLE_DESC_TYPE_MASK) == S1_TABLE_DESC_table


cdef int perm_ctx(Geo* g, S1Cfg* s1, VmsaCaps* caps) noexcept nogil:
    """The walker's permission context for a tree's leaves (vmsa.s1_leaf_perms/s2_perms)."""
    s1.el2 = g.el2
    s1.pan = g.pan
    s1.wxn = g.wxn
    caps.xnx = g.xnx
    return 0


def leaf_perms(int stage, uint64_t d, int tbl_ap=0, bint tbl_pxn=False, bint tbl_uxn=False,
               bint el2=False, bint pan=False, bint wxn=False, bint xnx=True):
    """Permissions of a leaf descriptor by the walker's rule (core_cy.vmsa): rwx bits for
    privileged access in bits 0-2, unprivileged in bits 3-5. tbl_*: APTable/PXNTable/UXNTable
    gathered on the way down."""
    cdef S1Cfg s1
    cdef VmsaCaps caps
    s1.el2 = el2
    s1.pan = pan
    s1.wxn = wxn
    caps.xnx = xnx
    if stage == 1:
        return s1_leaf_perms(&s1, d, tbl_ap, tbl_pxn, tbl_uxn)
    return s2_perms(&caps, d)


# ---------------------------------------------------------------------------------------------
# Reverse lookup
# ---------------------------------------------------------------------------------------------
cdef struct Scan:
    MemCore* m
    Geo* geo
    Geo* s2               # tables are IPAs through this stage 2, or NULL
    Target* t
    size_t nt
    S1Cfg s1ctx           # permission context of the tree's leaves
    VmsaCaps caps
    Hit* hits
    size_t nhits
    size_t cap
    uint64_t descs        # descriptors read
    uint64_t unreadable   # table pages with no memory (or no stage-2 translation) behind them
    bint oom


cdef inline int s2_lookup(MemCore* m, Geo* s2, uint64_t ipa, uint64_t* pa) noexcept nogil:
    """IPA -> PA through a stage-2 tree (translation only; -1 when unmapped or unreadable)."""
    cdef uint64_t leaf
    return s2_fetch(m, s2, ipa, 64, pa, &leaf)


cdef int emit(Scan* s, uint64_t iova, uint64_t size, uint64_t out, uint64_t final, uint64_t d,
              int level, int perm) noexcept nogil:
    cdef Hit* h
    if s.nhits:
        h = &s.hits[s.nhits - 1]
        if h.iova + h.size == iova and h.out + h.size == out and h.final + h.size == final \
                and h.perm == perm and (h.desc & ATTR_MASK) == (d & ATTR_MASK) \
                and h.level == level:
            h.size += size
            return 0
    if s.nhits == s.cap:
        h = <Hit*>realloc(s.hits, 2 * s.cap * sizeof(Hit))
        if h == NULL:
            s.oom = True
            return -1
        s.hits = h
        s.cap *= 2
    h = &s.hits[s.nhits]
    h.iova = iova
    h.size = size
    h.out = out
    h.final = final
    h.desc = d
    h.level = level
    h.perm = perm
    s.nhits += 1
    return 0


cdef inline size_t first_target(Scan* s, uint64_t out) noexcept nogil:
    """Index of the first target with hi > out (targets are sorted and disjoint)."""
    cdef size_t lo = 0, hi = s.nt, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if s.t[mid].hi <= out:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef int scan_table(Scan* s, uint64_t table, int level, uint64_t base, int tbl_ap,
                    bint tbl_pxn, bint tbl_uxn) noexcept nogil:
    cdef Geo* geo = s.geo
    cdef int g = geo.g, sh = level_shift(g, level), perm, nap
    cdef uint64_t n, i, chunk, k, cnt, tpa, d, out, size, end, lo, hi, va
    cdef const uint64_t* p
    cdef size_t j
    cdef bint npxn, nuxn
    if level == geo.start:
        n = <uint64_t>1 << (geo.ia - sh)
    else:
        n = <uint64_t>1 << (g - 3)
    size = <uint64_t>1 << sh
    chunk = 0
    while chunk < n:
        cnt = n - chunk if n - chunk < 512 else 512
        tpa = table + chunk * 8
        if s.s2 != NULL and s2_lookup(s.m, s.s2, tpa, &tpa) != 0:
            s.unreadable += 1
            chunk += cnt
            continue
        p = <const uint64_t*>mc_page(s.m, tpa >> PAGE_SHIFT)
        if p == NULL:
            s.unreadable += 1
            chunk += cnt
            continue
        p += (tpa & (PAGE_SIZE - 1)) >> 3
        s.descs += cnt
        for k in range(cnt):
            d = p[k]
            if not is_valid(d):
                continue
            i = chunk + k
            va = base + (i << sh)
            if is_table_or_page(d) and level < 3:
                nap = tbl_ap
                npxn = tbl_pxn
                nuxn = tbl_uxn
                if geo.stage == 1 and not geo.had:
                    nap |= <int>S1_TABLE_APTable_v(d)
                    npxn = npxn or S1_TABLE_PXNTable_v(d) != 0
                    nuxn = nuxn or S1_TABLE_UXNTable_v(d) != 0
                if scan_table(s, d & S1_TABLE_NLTA_MASK & ~lowmask(g), level + 1, va, nap,
                              npxn, nuxn) != 0:
                    return -1
                continue
            if (level == 3 and not is_table_or_page(d)) or level < block_min_level(g):
                continue                      # reserved or not a block level: no translation
            out = d & S1_BLOCK_OA_MASK & ~lowmask(sh)
            end = out + size
            j = first_target(s, out)
            if j >= s.nt or s.t[j].lo >= end:
                continue
            if geo.stage == 1:
                perm = s1_leaf_perms(&s.s1ctx, d, tbl_ap, tbl_pxn, tbl_uxn)
            else:
                perm = s2_perms(&s.caps, d)
            while j < s.nt and s.t[j].lo < end:
                lo = out if out > s.t[j].lo else s.t[j].lo
                hi = end if end < s.t[j].hi else s.t[j].hi
                if emit(s, va + (lo - out), hi - lo, lo, s.t[j].final + (lo - s.t[j].lo), d,
                        level, perm) != 0:
                    return -1
                j += 1
        chunk += cnt
    return 0


cdef int geo_from(tuple spec, Geo* g) except -1:
    stage, gs, start, ia, root, el2, pan, wxn, had, xnx = spec
    if stage not in (1, 2) or gs not in (12, 14, 16) or not 0 <= start <= 3 or \
            not 16 <= ia <= 52 or ia <= level_shift(gs, start) or \
            ia - level_shift(gs, start) > gs - 3 + 4:
        raise ValueError(f"bad table geometry {spec!r}")
    g.stage, g.g, g.start, g.ia, g.root = stage, gs, start, ia, root
    g.el2, g.pan, g.wxn, g.had, g.xnx = el2, pan, wxn, had, xnx
    return 0


def find_leaves(PhysMem mem, tuple geo, targets, tuple s2geo=None, uint64_t va_base=0):
    """Leaves of the tree `geo` whose output overlaps the targets.

    geo, s2geo: (stage, granule shift, start level, input bits, root, el2, pan, wxn, had, xnx);
    s2geo: the stage 2 the tables are read through (nested stage 1), or None. va_base: the
    input address of the tree's first entry (a TTB1 tree covers the top of the VA space:
    2^64 - 2^ia, Arm ARM D8.2.4). targets: an
    (n, 3) uint64 array of [lo, hi) output ranges, sorted and disjoint, and the final address
    of each lo. Returns (hits, descriptors read, unreadable table pages) with hits an (m, 7)
    uint64 array of rows [iova, size, out, final, descriptor, level, perm bits]."""
    cdef Geo g, g2
    cdef Scan s
    cdef cnp.ndarray[cnp.uint64_t, ndim=2] t = np.ascontiguousarray(targets, dtype=np.uint64)
    cdef cnp.ndarray[cnp.uint64_t, ndim=2] res
    cdef size_t i
    geo_from(geo, &g)
    if s2geo is not None:
        geo_from(s2geo, &g2)
    if t.shape[0] and t.shape[1] != 3:
        raise ValueError("targets must be rows of (lo, hi, final)")
    s.m = &mem.core
    s.geo = &g
    perm_ctx(&g, &s.s1ctx, &s.caps)
    s.s2 = &g2 if s2geo is not None else NULL
    s.t = <Target*>t.data if t.shape[0] else NULL
    s.nt = t.shape[0]
    s.cap = 64
    s.nhits = 0
    s.descs = 0
    s.unreadable = 0
    s.oom = False
    s.hits = <Hit*>malloc(s.cap * sizeof(Hit))
    if s.hits == NULL:
        raise MemoryError()
    try:
        if s.nt:
            with nogil:
                scan_table(&s, g.root, g.start, va_base, 0, False, False)
        if s.oom:
            raise MemoryError("find: too many hits")
        res = np.empty((s.nhits, 7), dtype=np.uint64)
        for i in range(s.nhits):
            res[i, 0] = s.hits[i].iova
            res[i, 1] = s.hits[i].size
            res[i, 2] = s.hits[i].out
            res[i, 3] = s.hits[i].final
            res[i, 4] = s.hits[i].desc
            res[i, 5] = s.hits[i].level
            res[i, 6] = s.hits[i].perm
        return res, s.descs, s.unreadable
    finally:
        free(s.hits)


# -- entries of a stream table, page by page -----------------------------------------------------
ctypedef bint (*EntryTest)(const uint64_t* e, cnp.uint8_t* field) noexcept nogil


cdef bint ste_valid(const uint64_t* e, cnp.uint8_t* field) noexcept nogil:
    field[0] = <cnp.uint8_t>STE_Config(e)
    return STE_V(e) != 0


cdef bint l1std_spanned(const uint64_t* e, cnp.uint8_t* field) noexcept nogil:
    field[0] = <cnp.uint8_t>L1STD_Span(e)
    return field[0] != 0


cdef uint64_t scan_entries(MemCore* m, uint64_t base, uint64_t n, uint64_t esize,
                           EntryTest want, uint64_t* idx, uint64_t* dword0,
                           cnp.uint8_t* field) noexcept nogil:
    """The entries (esize bytes, a power of two up to a page) among n at base that want()
    accepts: their indexes, first dwords and the field want() reads; read a page at a time,
    pages with no memory behind them skipped. Returns how many."""
    cdef uint64_t i = 0, pa, per, j, k = 0
    cdef const uint64_t* p
    cdef cnp.uint8_t f
    while i < n:
        pa = base + i * esize
        per = (PAGE_SIZE - (pa & (PAGE_SIZE - 1))) // esize      # entries left in this page
        if per > n - i:
            per = n - i
        p = <const uint64_t*>mc_page(m, pa >> PAGE_SHIFT)
        if p != NULL:
            p += (pa & (PAGE_SIZE - 1)) >> 3
            for j in range(per):
                if want(p + j * (esize >> 3), &f):
                    idx[k] = i + j
                    dword0[k] = p[j * (esize >> 3)]
                    field[k] = f
                    k += 1
        i += per
    return k


cdef tuple found_entries(PhysMem mem, uint64_t base, uint64_t n, uint64_t esize,
                         EntryTest want):
    cdef cnp.ndarray[cnp.uint64_t, ndim=1] idx = np.empty(n, dtype=np.uint64)
    cdef cnp.ndarray[cnp.uint64_t, ndim=1] val = np.empty(n, dtype=np.uint64)
    cdef cnp.ndarray[cnp.uint8_t, ndim=1] fld = np.empty(n, dtype=np.uint8)
    cdef uint64_t k
    with nogil:
        k = scan_entries(&mem.core, base, n, esize, want, <uint64_t*>idx.data,
                         <uint64_t*>val.data, <cnp.uint8_t*>fld.data)
    return idx[:k], val[:k], fld[:k]


def valid_stes(PhysMem mem, uint64_t base, uint64_t n, bint configs=False, bint words=False):
    """Indexes of the STEs with V=1 among n 64-byte STEs at base (a stream table or an L2
    array), read a page at a time; pages with no memory behind them are skipped. configs:
    (indexes, STE.Config of each) instead. words: (indexes, their STEs as a (k, 8) uint64
    array of dwords)."""
    idx, _, cfg = found_entries(mem, base, n, 64, ste_valid)
    if words:
        return idx, entry_words(mem, base, idx, 64)
    return (idx, cfg) if configs else idx


cdef int gather(MemCore* m, uint64_t base, const uint64_t* idx, uint64_t k, uint64_t esize,
                uint64_t* out) noexcept nogil:
    """The whole entries (esize bytes, a power of two up to a page) of indexes idx at base,
    dword by dword into out; -1 if one has no memory behind it."""
    cdef uint64_t i, j, pa, nd = esize >> 3
    cdef const uint64_t* p
    for i in range(k):
        pa = base + idx[i] * esize
        p = <const uint64_t*>mc_page(m, pa >> PAGE_SHIFT)
        if p == NULL:
            return -1
        p += (pa & (PAGE_SIZE - 1)) >> 3
        for j in range(nd):
            out[i * nd + j] = p[j]
    return 0


cdef entry_words(PhysMem mem, uint64_t base, idx, uint64_t esize):
    cdef cnp.ndarray[cnp.uint64_t, ndim=1] ix = np.ascontiguousarray(idx, dtype=np.uint64)
    cdef cnp.ndarray[cnp.uint64_t, ndim=2] out = np.empty((ix.shape[0], esize >> 3),
                                                          dtype=np.uint64)
    cdef int r
    with nogil:
        r = gather(&mem.core, base, <const uint64_t*>ix.data, ix.shape[0], esize,
                   <uint64_t*>out.data)
    if r != 0:
        raise ValueError(f"an entry at {base:#x} has no memory behind it")
    return out


def spanned_l1stds(PhysMem mem, uint64_t base, uint64_t n):
    """(indexes, descriptors, Span of each) of the L1STDs with Span != 0 among n at base (a
    level-1 stream table), read a page at a time; pages with no memory behind them are
    skipped."""
    return found_entries(mem, base, n, 8, l1std_spanned)


# -- a stream's single CD, as its configuration fetch reads it ------------------------------------
cdef int s2_fetch(MemCore* m, Geo* s2, uint64_t ipa, int oas, uint64_t* pa,
                  uint64_t* leaf) noexcept nogil:
    """IPA -> PA through a stage-2 tree, with the leaf descriptor; -1 when unmapped or
    unreadable, or where a table or the output address is at or above 2^oas (the walk's
    address-size checks; oas 64: none)."""
    cdef int level = s2.start, sh, bits = s2.ia - level_shift(s2.g, s2.start)
    cdef uint64_t table = s2.root, d, dpa
    cdef const unsigned char* p
    if ipa >> s2.ia or (oas < 64 and table >> oas):
        return -1
    while True:
        sh = level_shift(s2.g, level)
        dpa = table + ((ipa >> sh) & lowmask(bits)) * 8
        p = <const unsigned char*>mc_page(m, dpa >> PAGE_SHIFT)
        if p == NULL:
            return -1
        d = (<const uint64_t*>(p + (dpa & (PAGE_SIZE - 8))))[0]
        if not is_valid(d):
            return -1
        if is_table_or_page(d) and level < 3:
            table = d & S1_TABLE_NLTA_MASK & ~lowmask(s2.g)
            if oas < 64 and table >> oas:
                return -1
            level += 1
            bits = s2.g - 3
            continue
        if (level == 3 and not is_table_or_page(d)) or level < block_min_level(s2.g):
            return -1
        pa[0] = (d & S1_BLOCK_OA_MASK & ~lowmask(sh)) | (ipa & lowmask(sh))
        leaf[0] = d
        return 0 if oas >= 64 or (pa[0] >> oas) == 0 else -1


def fetch_cds(PhysMem mem, addrs, int oas, tuple s2geo=None):
    """The 64-byte CD at each of addrs (IPAs read through the stage-2 tree s2geo, as for a
    nested STE, or PAs): (words (k, 8) uint64, leaf (k,) uint64: the stage-2 leaf descriptor's
    attribute bits (its output address cleared; 0 without stage 2), ok (k,) bool). ok is False
    where the fetch does not simply succeed: the address at or above 2^oas (S1ContextPtr is
    checked against the OAS, PA or IPA), no stage-2 translation, a table or output address at
    or above 2^oas, or no memory behind the CD; those rows' words are 0."""
    cdef Geo g2
    cdef cnp.ndarray[cnp.uint64_t, ndim=1] a = np.ascontiguousarray(addrs, dtype=np.uint64)
    cdef size_t k = a.shape[0], i, j
    cdef cnp.ndarray[cnp.uint64_t, ndim=2] words = np.zeros((k, 8), dtype=np.uint64)
    cdef cnp.ndarray[cnp.uint64_t, ndim=1] leaf = np.zeros(k, dtype=np.uint64)
    cdef cnp.ndarray[cnp.uint8_t, ndim=1] ok = np.zeros(k, dtype=np.uint8)
    cdef uint64_t* w = <uint64_t*>words.data
    cdef uint64_t* lf = <uint64_t*>leaf.data
    cdef const uint64_t* av = <const uint64_t*>a.data
    cdef Geo* s2 = NULL
    cdef uint64_t pa, d
    cdef const uint64_t* p
    if not 16 <= oas <= 56:
        raise ValueError(f"bad output address size {oas}")
    if s2geo is not None:
        geo_from(s2geo, &g2)
        s2 = &g2
    with nogil:
        for i in range(k):
            pa = av[i]
            d = 0
            if pa >> oas:                 # S1ContextPtr beyond the OAS: an illegal STE
                continue
            if s2 != NULL and s2_fetch(&mem.core, s2, av[i], oas, &pa, &d) != 0:
                continue
            p = <const uint64_t*>mc_page(&mem.core, pa >> PAGE_SHIFT)
            if p == NULL or pa & 63:
                continue
            p += (pa & (PAGE_SIZE - 1)) >> 3
            for j in range(8):
                w[i * 8 + j] = p[j]
            lf[i] = d & ~S1_BLOCK_OA_MASK
            ok[i] = 1
    return words, leaf, ok.view(np.bool_)
