"""Scalable-mode VT-d tables for tests: a Box of physical memory with a root table, context
tables, a PASID directory and table, and first/second-stage builders that encode through the
VT-d field tables (smmudbg/arch/vtd). Used by the reference-walker and the core-walker tests."""
from core_cy.physmem import PhysMem
from smmudbg.arch import fmt
from smmudbg.vtd_refwalk import Unit, port, translate

ROOT_TABLE, CTX_TABLE, CTX_TABLE_HI, PASID_DIR, PASID_TABLE = (0x10000, 0x11000, 0x14000,
                                                               0x12000, 0x13000)
SID = 0x0108            # bus 1, device 1, function 0
SID_HI = 0x0188         # bus 1, devfn 0x88: the upper half of the root entry
# CAP_REG: SAGAW 39/48/57 (bits 1-3 of the field), MGAW 57 bits, SLLPS 2M+1G, FL1GP, PI, FL5LP.
CAP = (0b01110 << 8) | (56 << 16) | (0b11 << 34) | (1 << 56) | (1 << 59) | (1 << 60)
# ECAP_REG: DT, PT, NEST, ERS, SRS, EAFS, PASID, SMTS, SLADS, SLTS, FLTS, RPS, RPRIVS.
ECAP = sum(1 << b for b in (2, 6, 26, 30, 31, 34, 40, 43, 45, 46, 47, 49, 53))
GSTS = (1 << 31) | (1 << 25) | (1 << 23)      # TES, IRES, CFIS


def e(name, **fields):
    return fmt(name, "vtd").encode(**fields)


def addr_field(name, field, address):
    return fmt(name, "vtd").field(field).from_address(address)


class Box:
    """Physical memory with a bump allocator and page-table builders that encode through the
    field tables."""

    def __init__(self):
        self.pm = PhysMem()
        self.mem = port(self.pm)
        self.next = 0x200000
        self.gpa_to_pa = {}
        self.unit = Unit(cap=CAP, ecap=ECAP, gsts=GSTS, rtaddr=ROOT_TABLE | (1 << 10),
                         irta=0, haw=52)
        for page in (ROOT_TABLE, CTX_TABLE, CTX_TABLE_HI, PASID_DIR, PASID_TABLE):
            self.pm.write_u64(page, 0)
        self.w(ROOT_TABLE + 16 * 1, e("SM_ROOT_ENTRY", LP=1, LCTP=CTX_TABLE >> 12, UP=1,
                                      UCTP=CTX_TABLE_HI >> 12))
        for table, devfn in ((CTX_TABLE, 0x08), (CTX_TABLE_HI, 0x88)):
            self.w(table + 32 * (devfn & 0x7F),
                   e("SM_CONTEXT_ENTRY", P=1, DTE=1, PASIDE=1, PDTS=0,
                     PASIDDIRPTR=PASID_DIR >> 12, RID_PASID=0))
        self.w(PASID_DIR, e("PASID_DIR_ENTRY", P=1, SMPTBLPTR=PASID_TABLE >> 12))

    def w(self, pa, words):
        for i, word in enumerate(words):
            self.pm.write_u64(pa + 8 * i, word)

    def alloc(self):
        a = self.next
        self.next += 0x1000
        self.pm.write_u64(a, 0)
        return a

    def pasid(self, pasid, **fields):
        fields.setdefault("PWSNP", 1)    # snooped page walks: hardware may set A/D flags
        self.w(PASID_TABLE + 64 * pasid, e("PASID_ENTRY", P=1, **fields))

    # second stage
    ss_levels = 4   # second-stage levels the builders use by default

    def ss_map(self, root, gpa, pa, *, level=1, levels=None, r=1, w=1, x=1, upper=None,
               **leaf):
        levels = levels or self.ss_levels
        names = {5: "SS_PML5E", 4: "SS_PML4E", 3: "SS_PDPE", 2: "SS_PDE"}
        table = root
        for lvl in range(levels, level, -1):
            ea = table + 8 * ((gpa >> (12 + 9 * (lvl - 1))) & 0x1FF)
            ent = self.pm.read_u64(ea)
            if not ent & 3:
                ur, uw, ux = (upper or {}).get(lvl, (1, 1, 1))
                ent = e(names[lvl], R=ur, W=uw, X=ux, ADDR=self.alloc() >> 12)[0]
                self.pm.write_u64(ea, ent)
            table = ent & 0x000FFFFFFFFFF000
        leaf_name = {1: "SS_PTE", 2: "SS_PDE_2M", 3: "SS_PDPE_1G"}[level]
        shift = 12 + 9 * (level - 1)
        extra = {"PS": 1} if level > 1 else {}
        ea = table + 8 * ((gpa >> shift) & 0x1FF)
        self.pm.write_u64(ea, e(leaf_name, R=r, W=w, X=x, ADDR=pa >> shift, **extra, **leaf)[0])
        return ea

    # first stage; with ss_root the tables live at GPAs mapped by that second stage
    def fs_table(self, ss_root=None, ss_perm=(1, 1, 1)):
        pa = self.alloc()
        if ss_root is None:
            return pa, pa
        gpa = 0x40000000 + (pa - 0x200000)
        self.ss_map(ss_root, gpa, pa, r=ss_perm[0], w=ss_perm[1], x=ss_perm[2])
        self.gpa_to_pa[gpa] = pa
        return gpa, pa

    def fs_map(self, root, va, pa, *, level=1, levels=4, ss_root=None, rw=1, us=1, xd=0,
               a=0, d=0, table_bits=None, ss_perm=None):
        names = {5: "FS_PML5E", 4: "FS_PML4E", 3: "FS_PDPE", 2: "FS_PDE"}
        table_gpa, table_pa = root
        for lvl in range(levels, level, -1):
            ea = table_pa + 8 * ((va >> (12 + 9 * (lvl - 1))) & 0x1FF)
            ent = self.pm.read_u64(ea)
            if not ent & 1:
                perm = (ss_perm or {}).get(lvl - 1, (1, 1, 1))
                ngpa, npa = self.fs_table(ss_root, perm)
                bits = dict(P=1, RW=1, US=1, A=a)
                bits.update((table_bits or {}).get(lvl, {}))
                ent = e(names[lvl], ADDR=ngpa >> 12, **bits)[0]
                self.pm.write_u64(ea, ent)
            ngpa = ent & 0x000FFFFFFFFFF000
            table_pa = self.gpa_to_pa.get(ngpa, ngpa) if ss_root is not None else ngpa
        leaf_name = {1: "FS_PTE", 2: "FS_PDE_2M", 3: "FS_PDPE_1G"}[level]
        shift = 12 + 9 * (level - 1)
        extra = {"PS": 1} if level > 1 else {}
        ea = table_pa + 8 * ((va >> shift) & 0x1FF)
        self.pm.write_u64(ea, e(leaf_name, P=1, RW=rw, US=us, XD=xd, A=a, D=d,
                                ADDR=pa >> shift, **extra)[0])
        return ea

    def steps_of(self, addr, **kw):
        """The addresses of the paging entries a translation of addr read."""
        return [s.addr for s in self.tr(addr, **kw).steps if s.what in ("fs", "ss")]

    # Also translate with the core walker (core_cy.vtd) and check that it agrees with the
    # reference walker; tests/test_vtd_walk.py sets this for the reference tests it reruns.
    core = False
    reasons_seen = set()

    def tr(self, addr, **kw):
        sid = kw.pop("sid", SID)
        if not Box.core:
            return translate(self.mem, self.unit, sid, addr, **kw)
        return compare(self, sid, addr, **kw)

    def core_walker(self):
        from core_cy.vtd import VtdWalker
        u = self.unit
        return VtdWalker(self.pm, cap=u.cap, ecap=u.ecap, gsts=u.gsts, rtaddr=u.rtaddr,
                         irta=u.irta, haw=u.haw)


def _steps_ref(r):
    return [(s.what, s.level, s.addr) for s in r.steps]


def _steps_core(c):
    return [(s["what"], s["level"] or 0, s["desc_pa"]) for s in c["steps"]
            if s["outcome"] != "abort"]


def compare(box, sid, addr, *, pasid=None, write=False, exe=False, priv=False, at=0,
            apply_ad=True):
    """Translate with both walkers; assert they agree (outcome, output, size, permissions,
    PGTT, DID, PASID, snoop, fault reason and record, the entries read and the A/D writes).
    Returns the reference walker's result; the memory ends as the reference would leave it
    (the core walker made the A/D writes when apply_ad)."""
    from smmudbg.vtd_refwalk import VtdWalkError
    kw = dict(write=write, exe=exe, priv=priv, at=at)
    walker = box.core_walker()
    try:
        ref = translate(box.mem, box.unit, sid, addr, pasid=pasid, apply_ad=False, **kw)
    except VtdWalkError as e:
        try:
            walker.translate(sid, addr, pasid, **kw)
        except ValueError:
            raise e from None
        raise AssertionError(f"the core walker accepted what the reference refuses: {e}")
    cy = walker.translate(sid, addr, pasid, trace=True, dry=True, **kw)
    where = f"sid={sid:#x} addr={addr:#x} pasid={pasid} {kw}"
    assert cy["kind"] == ref.kind, (where, cy, ref)
    assert _steps_core(cy) == _steps_ref(ref), where
    if ref.kind == "translated":
        assert (cy["pa"], cy["size"], cy["perm"], cy["pgtt"], cy["did"], cy["pasid"],
                cy["snoop"]) == (ref.output, ref.size, ref.perm, ref.pgtt, ref.did, ref.pasid,
                                 ref.snoop), where
        assert cy["ad_writes"] == len(ref.ad_updates), where
    elif ref.kind == "not_remapped":
        assert cy["pa"] == ref.output
    elif ref.kind == "fault":
        f, g = ref.fault, cy["fault"]
        assert (g["reason"], g["name"], g["fi"], g["sid"], g["pasid"], g["recorded"]) == (
            f.reason, f.name, f.fi, f.sid, f.pasid, f.recorded), (where, g, f)
        Box.reasons_seen.add(f.reason)
    if apply_ad and ref.ad_updates:
        final = {pa: new for pa, _old, new in ref.ad_updates}
        cy2 = walker.translate(sid, addr, pasid, **kw)
        assert cy2["ad_writes"] == len(ref.ad_updates)
        assert {pa: box.pm.read_u64(pa) for pa in final} == final, where
    return ref
