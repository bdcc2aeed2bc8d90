# The VMSAv8-64 translation-table walk (Arm ARM D8): stage 1 and stage 2 configurations, the
# walks, descriptor decode, and the address spaces table descriptors are read from. Knows nothing
# of SMMU structures: faults come back as a wtypes.WalkFault.
from libc.stdint cimport uint64_t, uint16_t
from core_cy.physmem cimport (MemCore, PhysMem, Window, mc_read64, mc_read_block, mc_read64_w,
                             mc_read_block_w)
from core_cy.wtypes cimport WalkFault, Trace, PERM_R, PERM_W, PERM_X
from core_cy._fields cimport (S1_BLOCK_AP_v, S1_BLOCK_PXN_v, S1_BLOCK_UXN_v, S2_BLOCK_S2AP_v,
                              S2_BLOCK_XN_v)
from core_cy._smmuv3 cimport (S1_BLOCK_AP_RO_EL1, S1_BLOCK_AP_RW_any, S1_TABLE_APTable_no_write,
                              S1_TABLE_APTable_no_EL0, S2_BLOCK_S2AP_RO, S2_BLOCK_S2AP_WO,
                              S2_BLOCK_XN_exec, S2_BLOCK_XN_no_exec, S2_BLOCK_XN_no_EL0_exec,
                              S2_BLOCK_XN_no_EL1_exec)

cdef struct VmsaCaps:    # what the implementation supports (SMMU: IDR0/IDR3/IDR5)
    bint gran4k, gran16k, gran64k
    bint xnx             # stage-2 XN[0] (XNX) is implemented
    bint had             # hierarchical attribute disables
    bint stt             # small translation tables
    int httu             # 0 none, 1 access flag, 2 access flag and dirty state
    int oas_bits         # PAMax

cdef struct TTCfg:       # one stage-1 translation table (TTB0 or TTB1)
    bint enabled
    int g                # granule shift 12/14/16
    int vabits
    int start
    uint64_t ttb
    bint tbi
    bint had

cdef struct S1Cfg:
    TTCfg tt[2]
    int ips_bits
    uint16_t asid
    bint affd, wxn, uwxn, pan, el2, ha, hd

cdef struct S2Cfg:
    int g
    int start
    int ias
    int ps_bits
    uint64_t ttb
    uint16_t vmid
    bint affd, ha, hd

# Checks of a table geometry (Arm ARM S2InvalidSL/S2InconsistentSL, TnSZ ranges, TTB size),
# in the order they are made; the IOMMU layer maps each to its own reason.
cdef enum GeomErr:
    GEOM_OK = 0
    GEOM_TG              # granule reserved or not supported
    GEOM_SL0             # invalid starting level
    GEOM_TSZ             # TnSZ out of range or inconsistent with the starting level
    GEOM_TTB             # table base beyond the output size

# An address space table descriptors are read from.
#   AS_PHYS: host physical memory.
#   AS_IPA:  a VM's IPA space: each address goes through stage 2 (s2, tables in host PA) first.
#            A stage-2 fault or abort on that translation is an external abort of the read: the
#            walker reports it as the fetch abort of whatever it was reading (F_STE_FETCH,
#            F_CD_FETCH, F_WALK_EABT) with the IPA it tried to read as the fetch address, as a
#            vSMMU emulation does when the guest's tables are not backed (the guest sees an abort,
#            not the host's stage-2 fault).
cdef enum:
    AS_PHYS = 0
    AS_IPA = 1

cdef struct AddrSpace:
    int kind
    MemCore* mem         # host physical memory (AS_PHYS, and AS_IPA's stage-2 tables and data)
    void* physmem        # the PhysMem owning mem, for descriptor writes (HTTU); NULL: read only
    S2Cfg s2             # AS_IPA
    VmsaCaps caps        # AS_IPA: for the stage-2 walk

cdef struct VmsaEnv:     # what a walk needs from its owner
    AddrSpace space      # where table descriptors live
    VmsaCaps caps
    Trace trace
    bint dry             # no hardware access-flag update (no descriptor writes)

cdef struct S1Out:
    uint64_t ipa         # output address of stage 1
    int perm             # privileged rwx in bits 0-2, unprivileged in bits 3-5
    int shift
    int level
    bint is_global

cdef struct S2Out:
    uint64_t pa
    int perm
    int shift
    int level

cdef int as_read_ipa(AddrSpace* a, uint64_t addr, uint64_t* out, int nwords) noexcept nogil
cdef int as_write64(AddrSpace* a, uint64_t addr, uint64_t value) noexcept nogil
cdef int as_translate(AddrSpace* a, uint64_t addr, uint64_t* pa) noexcept nogil

cdef inline int as_read64(AddrSpace* a, uint64_t addr, uint64_t* out) noexcept nogil:
    """64-bit read at an 8-byte aligned address of the space; -1 if nothing is there."""
    if a.kind == AS_PHYS:
        return mc_read64(a.mem, addr, out)
    return as_read_ipa(a, addr, out, 1)

cdef inline int as_read_block(AddrSpace* a, uint64_t addr, uint64_t* out,
                              int nwords) noexcept nogil:
    """nwords aligned words within one 4 KiB page (STE, CD); -1 if nothing is there."""
    if a.kind == AS_PHYS:
        return mc_read_block(a.mem, addr, out, nwords)
    return as_read_ipa(a, addr, out, nwords)

cdef inline int as_read64_w(AddrSpace* a, uint64_t addr, uint64_t* out, int w) noexcept nogil:
    """as_read64 for a read site with its own read window w (physmem WIN_*)."""
    if a.kind == AS_PHYS:
        return mc_read64_w(a.mem, &a.mem.win[w], addr, out)
    return as_read_ipa(a, addr, out, 1)

cdef inline int as_read64_win(AddrSpace* a, uint64_t addr, uint64_t* out,
                              Window* win) noexcept nogil:
    """as_read64_w with the window given by address (&a.mem.win[WIN_*]): a walk loop steps it
    with the level."""
    if a.kind == AS_PHYS:
        return mc_read64_w(a.mem, win, addr, out)
    return as_read_ipa(a, addr, out, 1)

cdef inline int as_read_block_w(AddrSpace* a, uint64_t addr, uint64_t* out, int nwords,
                                int w) noexcept nogil:
    """as_read_block for a read site with its own read window w (physmem WIN_*)."""
    if a.kind == AS_PHYS:
        return mc_read_block_w(a.mem, &a.mem.win[w], addr, out, nwords)
    return as_read_ipa(a, addr, out, nwords)

cdef inline bint gran_ok(VmsaCaps* k, int g) noexcept nogil:
    return (g == 12 and k.gran4k) or (g == 14 and k.gran16k) or (g == 16 and k.gran64k)

cdef inline int level_shift(int g, int level) noexcept nogil:
    return g + (3 - level) * (g - 3)

cdef inline int block_min_level(int g) noexcept nogil:
    # Without LPA/LPA2: 4K blocks at levels 1-2, 16K and 64K at level 2 only.
    return 1 if g == 12 else 2

cdef inline int cap_pa(int bits, int g) noexcept nogil:
    # 52-bit output needs LPA (64K) or LPA2; without them the usable size is 48 bits.
    if bits > 48 and g != 16:
        return 48
    return bits

cdef inline int s1_region(S1Cfg* s, uint64_t va) noexcept nogil:
    """Which stage-1 table translates va: VA bit 55 picks TTB1 (Arm ARM D8.2.4); EL2 has one."""
    return 1 if (va >> 55) & 1 and not s.el2 else 0

cdef inline uint64_t shifts_of(int g, int start) noexcept nogil:
    """Bitmask of the log2 sizes a leaf of this geometry can have (for TLB lookups)."""
    cdef uint64_t m = 0
    cdef int l
    for l in range(block_min_level(g) if block_min_level(g) > start else start, 4):
        m |= <uint64_t>1 << level_shift(g, l)
    return m

# The permission rules, one copy for the walk and the whole-tree scans (core_cy.scan): rwx bits
# for privileged access in bits 0-2, unprivileged in bits 3-5.
cdef inline int s1_leaf_perms(S1Cfg* s, uint64_t d, int tbl_ap, bint tbl_pxn, bint tbl_uxn) noexcept nogil:
    """Stage-1 permissions (Arm ARM AArch64.S1DirectBasePermissions): privileged rwx in bits
    0-2, unprivileged in bits 3-5."""
    cdef int ap = <int>S1_BLOCK_AP_v(d)
    cdef bint ro = (ap & S1_BLOCK_AP_RO_EL1) != 0 or (tbl_ap & S1_TABLE_APTable_no_write) != 0
    cdef bint el0, pw, uw
    cdef int p, u
    if s.el2:
        # Single-EL regime: AP[1], APTable[0] and PXN are not used; bit 54 is XN and bit 60
        # XNTable; every access is treated as privileged.
        p = PERM_R | (0 if ro else PERM_W)
        if not (S1_BLOCK_UXN_v(d) or tbl_uxn or (s.wxn and not ro)):
            p |= PERM_X
        return p | (p << 3)
    el0 = (ap & S1_BLOCK_AP_RW_any) != 0 and (tbl_ap & S1_TABLE_APTable_no_EL0) == 0
    pw = not ro
    uw = el0 and not ro
    p = PERM_R | (PERM_W if pw else 0)
    u = (PERM_R | (PERM_W if uw else 0)) if el0 else 0
    if s.pan and el0:
        p = 0                        # PAN: privileged data access to EL0-accessible memory
    # Memory writable at EL0 is never executable at EL1.
    if not (S1_BLOCK_PXN_v(d) or tbl_pxn or uw or (s.wxn and pw)):
        p |= PERM_X
    if not (S1_BLOCK_UXN_v(d) or tbl_uxn or (s.wxn and uw)):
        u |= PERM_X
    return p | (u << 3)


cdef inline int s2_perms(VmsaCaps* k, uint64_t d) noexcept nogil:
    """Stage-2 leaf permissions: privileged rwx in bits 0-2, unprivileged in bits 3-5."""
    cdef int ap = <int>S2_BLOCK_S2AP_v(d)
    cdef int rw = (PERM_R if ap & S2_BLOCK_S2AP_RO else 0) | (PERM_W if ap & S2_BLOCK_S2AP_WO else 0)
    cdef int xn = <int>S2_BLOCK_XN_v(d)
    cdef bint px, ux
    if not k.xnx:
        xn &= S2_BLOCK_XN_no_exec            # XN[0] (XNX) not implemented: only XN[1] counts
    px = xn == S2_BLOCK_XN_exec or xn == S2_BLOCK_XN_no_EL0_exec
    ux = xn == S2_BLOCK_XN_exec or xn == S2_BLOCK_XN_no_EL1_exec
    return (rw | (PERM_X if px else 0)) | ((rw | (PERM_X if ux else 0)) << 3)


cdef int s2_setup(VmsaCaps* k, S2Cfg* s2, int g, int sl0, int tsz, int ps,
                  uint64_t ttb) noexcept nogil
cdef int tt_setup(VmsaCaps* k, TTCfg* tt, int g, int tsz, uint64_t ttb, bint tbi, bint had,
                  int ips) noexcept nogil
cdef int s2_walk(VmsaEnv* e, S2Cfg* s2, uint64_t ipa, int purpose, int need, S2Out* o,
                 WalkFault* f) noexcept nogil
cdef int s1_walk(VmsaEnv* e, S1Cfg* s, S2Cfg* nest, uint64_t va, int need, S1Out* o,
                 WalkFault* f) noexcept nogil

cdef class AddressSpace:
    cdef AddrSpace a
    cdef readonly PhysMem mem
