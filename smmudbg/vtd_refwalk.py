"""Slow, pure-Python reference walker for Intel VT-d in scalable mode, and for interrupt remapping.

This is the oracle that differential tests compare the (coming) Cython VT-d walker with. It is
independent of smmudbg/arch/vtd on purpose: every bit position below is written here from the
VT-d specification (rev 4.x/5.0: 3.4-3.8 translation, 3.15 interrupt address range, 5.1
interrupt remapping, 7.1.3 fault conditions, 9.1-9.10 structures, 11.4 registers), not read from
the field tables, so a differential test of a walker built on the tables against this one is not
tautological. Keep it that way: do not import smmudbg.arch here.

Model (what hardware does, and choices where the spec leaves room; docs/vtd.md lists them):
  * GSTS_REG.TES=0: DMA is not remapped. RTADDR_REG.TTM must be scalable (01b); a request with
    PASID in legacy mode faults RTA.2, legacy mode is otherwise not modeled (VtdWalkError); TTM=11b
    (abort DMA mode) blocks every request without recording a fault.
  * Requests without PASID to 0xFEEx_xxxx are interrupt requests (writes) and never translated;
    reads there are blocked (unsupported request, no fault). Requests with PASID are translated.
  * Requests without PASID use the context entry's RID_PASID, carry no execute attribute, and
    are supervisor requests only when RID_PRIV=1.
  * A/D flags: on a successful translation only (a faulting request changes no entry), and
    only with snooped page walks (PASID entry PWSNP=1; else SFS.9 / SSS.5). First
    stage: A (and EA with EAFE=1) in every entry used, D in the leaf for a write. Second stage
    with SLADE=1: A in every entry used, D in the leaf of a written page (the data page, or in
    nested mode the page of a first-stage table whose A/D flags were written). In nested mode a
    first-stage A/D write needs second-stage write permission for that table (else SFS.8).
  * Permission checks after a complete first-stage walk, in this order: U/S (SGN.2), R/W
    (SGN.6; supervisor writes ignore R/W unless WPE=1), XD (SGN.3). Second stage: R=W=0 in an
    entry is "not present" (SSS.2); R, W, X accumulate over the levels; a read or an execute
    needs R (SGN.7), a write W (SGN.6), an execute with SLEE=1 also X (SGN.3).
  * Fault processing disable: the FPD bits of the context, PASID directory and PASID table
    entries read so far (present or not) suppress recording of qualified faults; access errors
    and faults found before the context entry are not qualified.
  * Not modeled: legacy mode, page requests, translated requests (AT=10b), device-TLBs, memory
    types, caches (this walker caches nothing), posted-interrupt delivery beyond the IRTE.

Memory: any object with read64(pa) (an exception means "no memory there") and, for A/D updates,
write64(pa, value). port(physmem) adapts core_cy.physmem.PhysMem (read_u64 / write_u64).

    unit = Unit(cap=..., ecap=..., gsts=..., rtaddr=..., irta=..., haw=48)
    r = translate(mem, unit, sid=0x0010, addr=0x1000, pasid=5, write=True)
    r.ok, r.output, r.size, r.perm, r.fault.reason, r.steps
    i = remap_msi(mem, unit, sid=0x0010, addr=0xFEE00018, data=0)
    i.ok, i.vector, i.dest, i.delivery, i.fault
"""
from __future__ import annotations

from dataclasses import dataclass, field

MASK64 = (1 << 64) - 1
PAGE = 12
INTERRUPT_FIRST, INTERRUPT_LAST = 0xFEE00000, 0xFEEFFFFF

# Fault reasons (VT-d 7.1.3 and 5.1.4.1) this walker produces, by condition code.
FR = {
    "RTA_1": 0x30, "RTA_2": 0x31,
    "SRT_1": 0x38, "SRT_2": 0x39, "SRT_3": 0x3A,
    "SCT_1": 0x40, "SCT_2": 0x41, "SCT_3": 0x42, "SCT_4": 0x43, "SCT_5": 0x44, "SCT_6": 0x45,
    "SCT_7": 0x46,
    "SPD_1": 0x50, "SPD_2": 0x51, "SPD_3": 0x52,
    "SPT_1": 0x58, "SPT_2": 0x59, "SPT_3": 0x5A, "SPT_4": 0x5B, "SPT_5": 0x5C, "SPT_6": 0x5D,
    "SFS_1": 0x70, "SFS_2": 0x71, "SFS_3": 0x72, "SFS_4": 0x73, "SFS_5": 0x74, "SFS_6": 0x75,
    "SFS_7": 0x76, "SFS_8": 0x77,
    "SFS_9": 0x90, "SSS_1": 0x78, "SSS_2": 0x79, "SSS_3": 0x7A, "SSS_4": 0x7B, "SSS_5": 0x7C,
    "SGN_1": 0x80, "SGN_2": 0x81, "SGN_3": 0x82, "SGN_4": 0x83, "SGN_5": 0x84, "SGN_6": 0x85,
    "SGN_7": 0x86, "SGN_8": 0x87,
    "IR_REQ_RSVD": 0x20, "IR_INDEX_OVER": 0x21, "IR_IRTE_NOT_PRESENT": 0x22,
    "IR_IRTE_ACCESS": 0x23, "IR_IRTE_RSVD": 0x24, "IR_COMPAT_BLOCKED": 0x25,
    "IR_SID_VERIFY": 0x26,
}
# Faults that FPD cannot suppress: found before a context entry, or errors accessing a structure.
NOT_QUALIFIED = {"RTA_1", "RTA_2", "SRT_1", "SRT_2", "SRT_3", "SCT_1", "SPD_1", "SPT_1"}

PGTT_NAMES = {1: "first_stage", 2: "second_stage", 3: "nested", 4: "pass_through"}
# AW (context / PASID entry) -> (address width, second-stage levels).
AW_WIDTH = {1: (39, 3), 2: (48, 4), 3: (57, 5)}
DLM_NAMES = {0: "fixed", 1: "lowest_priority", 2: "SMI", 4: "NMI", 5: "INIT", 7: "ExtINT"}


class VtdWalkError(ValueError):
    """A request or state this reference walker does not model (not a VT-d fault)."""


def _bits(value: int, hi: int, lo: int) -> int:
    return (value >> lo) & ((1 << (hi - lo + 1)) - 1)


def _bit(value: int, n: int) -> int:
    return (value >> n) & 1


def _range_mask(hi: int, lo: int) -> int:
    return ((1 << (hi + 1)) - 1) & ~((1 << lo) - 1) if hi >= lo else 0


# -- registers the walk reads (VT-d 11.4) -------------------------------------------------------
@dataclass
class Unit:
    """The remapping unit as the walk sees it: register values and the host address width (HAW,
    reported by the platform's DMAR table, not by a register)."""
    cap: int = 0
    ecap: int = 0
    gsts: int = 0
    rtaddr: int = 0
    irta: int = 0
    haw: int = 48

    @classmethod
    def from_registers(cls, regs, haw=48):
        """A Unit from register values by name, as the spec ('CAP_REG') or QEMU and Linux
        ('DMAR_CAP_REG') spell them; registers not given read 0."""
        def get(name):
            for key in (name, f"DMAR_{name}"):
                if key in regs:
                    return int(regs[key])
            return 0
        return cls(cap=get("CAP_REG"), ecap=get("ECAP_REG"), gsts=get("GSTS_REG"),
                   rtaddr=get("RTADDR_REG"), irta=get("IRTA_REG"), haw=haw)

    # CAP_REG
    @property
    def sagaw(self):
        return _bits(self.cap, 12, 8)

    @property
    def mgaw(self):
        return _bits(self.cap, 21, 16) + 1

    @property
    def sllps(self):
        return _bits(self.cap, 37, 34)

    @property
    def fl1gp(self):
        return _bit(self.cap, 56)

    @property
    def pi(self):
        return _bit(self.cap, 59)

    @property
    def fl5lp(self):
        return _bit(self.cap, 60)

    # ECAP_REG
    def ecap_bit(self, n):
        return _bit(self.ecap, n)

    # GSTS_REG
    @property
    def tes(self):
        return _bit(self.gsts, 31)

    @property
    def ires(self):
        return _bit(self.gsts, 25)

    @property
    def cfis(self):
        return _bit(self.gsts, 23)

    # RTADDR_REG
    @property
    def ttm(self):
        return _bits(self.rtaddr, 11, 10)

    @property
    def rta(self):
        return self.rtaddr & _range_mask(63, 12)

    # IRTA_REG
    @property
    def irt_base(self):
        return self.irta & _range_mask(63, 12)

    @property
    def irt_entries(self):
        return 1 << (_bits(self.irta, 3, 0) + 1)

    @property
    def eime(self):
        return _bit(self.irta, 11)


# ECAP_REG bits the walk checks.
ECAP_DT, ECAP_PT, ECAP_SC, ECAP_NEST, ECAP_PRS, ECAP_SMTS = 2, 6, 7, 26, 29, 43
ECAP_SLTS, ECAP_FLTS, ECAP_ADMS, ECAP_RPRIVS = 46, 47, 52, 53


# -- results ------------------------------------------------------------------------------------
@dataclass
class Step:
    """One structure read: what ('root', 'context', 'pasid_dir', 'pasid_entry', 'fs', 'ss',
    'irte'), the level for paging entries (5..1; 0 otherwise), the address read and the entry."""
    what: str
    level: int
    addr: int
    value: object
    note: str = ""


@dataclass
class Fault:
    """A fault as a fault recording register reports it (FRCD_REG), plus whether it is recorded
    (FPD suppresses qualified faults) and a one-line detail."""
    reason: int
    name: str
    fi: int                 # FRCD_REG.FI: page address, or interrupt index << 48
    sid: int
    pasid: int | None = None
    write: bool = False     # T1 = 0
    exe: bool = False
    priv: bool = False
    recorded: bool = True
    detail: str = ""


@dataclass
class Translation:
    """A DMA request's outcome. kind: 'translated' (ok), 'fault', 'not_remapped' (TES=0),
    'interrupt' (a write without PASID to 0xFEEx_xxxx: see remap_msi), 'blocked' (no fault:
    abort DMA mode, or a read to the interrupt range)."""
    kind: str
    ok: bool = False
    output: int | None = None
    size: int = 0
    perm: str = ""
    pgtt: str = ""
    did: int | None = None
    pasid: int | None = None
    snoop: bool = False
    fault: Fault | None = None
    steps: list = field(default_factory=list)
    ad_updates: list = field(default_factory=list)   # (pa, old, new), applied in order


@dataclass
class Interrupt:
    """An interrupt request's outcome after remapping."""
    ok: bool
    remapped: bool = False
    format: str = ""        # 'remappable' or 'compatibility'
    index: int | None = None
    vector: int | None = None
    dest: int | None = None
    dest_mode: str = ""
    delivery: str = ""
    trigger: str = ""
    redirection_hint: int = 0
    posted: bool = False
    pda: int | None = None
    urgent: int = 0
    fault: Fault | None = None
    steps: list = field(default_factory=list)


class _Fault(Exception):
    def __init__(self, name, detail="", qualified=True):
        super().__init__(name)
        self.name = name
        self.detail = detail
        self.qualified = qualified and name not in NOT_QUALIFIED


def port(physmem):
    """A read64/write64 view of core_cy.physmem.PhysMem (or anything with read_u64/write_u64)."""
    class _Port:
        physmem = None          # the adapted object, for tests comparing walkers over it

        def read64(self, pa):
            return physmem.read_u64(pa)

        def write64(self, pa, value):
            physmem.write_u64(pa, value)
    p = _Port()
    p.physmem = physmem
    return p


# -- the DMA walk -------------------------------------------------------------------------------
class _Walk:
    def __init__(self, mem, unit, sid, addr, pasid, write, exe, priv, at):
        self.mem, self.u = mem, unit
        self.sid, self.addr, self.req_pasid = sid, addr, pasid
        self.write, self.exe, self.priv, self.at = write, exe, priv, at
        self.fpd = False
        self.steps = []
        self.pending_ad = []    # (pa, set_mask, stage) for a successful translation

    def read(self, pa, what, level=0, fault=None):
        try:
            return self.mem.read64(pa) & MASK64
        except Exception as e:   # the memory object's "nothing there"
            raise _Fault(fault, f"{what} read at {pa:#x} failed: {e}") from None

    def haw_mask(self):
        """Address bits of a paging entry above the host address width (reserved)."""
        return _range_mask(51, self.u.haw)

    def ptr_mask(self):
        """Bits of a root / context / PASID structure pointer above the HAW (reserved)."""
        return _range_mask(63, self.u.haw)

    # root -> context -> PASID directory -> PASID table entry -----------------------------------
    def config(self):
        u = self.u
        if u.ttm == 2 or (u.ttm == 1 and not u.ecap_bit(ECAP_SMTS)) or \
                (u.ttm == 3 and not u.ecap_bit(ECAP_ADMS)):
            raise _Fault("RTA_1", f"RTADDR_REG.TTM={u.ttm} is reserved or not supported")
        bus, devfn = (self.sid >> 8) & 0xFF, self.sid & 0xFF
        root_pa = u.rta + 16 * bus
        half = 1 if devfn >= 128 else 0
        root = self.read(root_pa + 8 * half, "root entry", fault="SRT_1")
        self.steps.append(Step("root", 0, root_pa + 8 * half, root,
                               "upper half (UP/UCTP)" if half else "lower half (LP/LCTP)"))
        if not _bit(root, 0):
            raise _Fault("SRT_2", f"root entry of bus {bus:#x}: {'UP' if half else 'LP'}=0")
        if root & (_range_mask(11, 1) | self.ptr_mask()):
            raise _Fault("SRT_3", f"reserved bits set in the root entry {root:#x}")
        ctx_pa = (root & _range_mask(63, 12)) + 32 * (devfn & 0x7F)
        ctx = [self.read(ctx_pa + 8 * i, "context entry", fault="SCT_1") for i in range(4)]
        self.steps.append(Step("context", 0, ctx_pa, tuple(ctx)))
        self.fpd |= bool(_bit(ctx[0], 1))
        if not _bit(ctx[0], 0):
            raise _Fault("SCT_2", "context entry P=0")
        rsvd1 = _range_mask(63, 21 if u.ecap_bit(ECAP_RPRIVS) else 20)
        if ctx[0] & (_range_mask(8, 5) | self.ptr_mask()) or ctx[1] & rsvd1 or ctx[2] or \
                ctx[3] or (_bit(ctx[0], 2) and not u.ecap_bit(ECAP_DT)) or \
                (_bit(ctx[0], 4) and not u.ecap_bit(ECAP_PRS)):
            raise _Fault("SCT_3", "reserved bits set in the scalable-mode context entry")
        dte, paside = _bit(ctx[0], 2), _bit(ctx[0], 3)
        pdts = _bits(ctx[0], 11, 9)
        dir_entries = 1 << (pdts + 7)
        rid_pasid, rid_priv = _bits(ctx[1], 19, 0), _bit(ctx[1], 20)
        if self.at == 1 and not dte:
            raise _Fault("SCT_5", "translation request with DTE=0")
        if self.req_pasid is not None:
            if not paside:
                raise _Fault("SCT_6", "request with PASID but PASIDE=0")
            pasid = self.req_pasid
            if (pasid >> 6) >= dir_entries:
                raise _Fault("SCT_7", f"PASID {pasid:#x} beyond the PASID directory "
                                      f"({dir_entries} entries, PDTS={pdts})")
        else:
            pasid = rid_pasid
            if (pasid >> 6) >= dir_entries:
                raise _Fault("SCT_4", f"RID_PASID {pasid:#x} beyond the PASID directory "
                                      f"({dir_entries} entries, PDTS={pdts})")
            self.priv = bool(rid_priv and u.ecap_bit(ECAP_RPRIVS))
        self.pasid = pasid
        dir_pa = (ctx[0] & _range_mask(63, 12)) + 8 * (pasid >> 6)
        pde = self.read(dir_pa, "PASID directory entry", fault="SPD_1")
        self.steps.append(Step("pasid_dir", 0, dir_pa, pde))
        self.fpd |= bool(_bit(pde, 1))
        if not _bit(pde, 0):
            raise _Fault("SPD_2", f"PASID directory entry {pasid >> 6} P=0")
        if pde & (_range_mask(11, 2) | self.ptr_mask()):
            raise _Fault("SPD_3", "reserved bits set in the PASID directory entry")
        pe_pa = (pde & _range_mask(63, 12)) + 64 * (pasid & 0x3F)
        pe = [self.read(pe_pa + 8 * i, "PASID table entry", fault="SPT_1") for i in range(8)]
        self.steps.append(Step("pasid_entry", 0, pe_pa, tuple(pe)))
        self.fpd |= bool(_bit(pe[0], 1))
        if not _bit(pe[0], 0):
            raise _Fault("SPT_2", f"PASID table entry {pasid:#x} P=0")
        self.pe = pe
        return pe

    def check_pasid_entry(self, pe):
        u = self.u
        if pe[0] & _range_mask(11, 10) or pe[1] & _range_mask(22, 16) or \
                pe[2] & _range_mask(11, 8) or any(pe[3:]):
            raise _Fault("SPT_3", "reserved bits set in the PASID table entry")
        pgtt = _bits(pe[0], 8, 6)
        need = {1: ECAP_FLTS, 2: ECAP_SLTS, 3: ECAP_NEST, 4: ECAP_PT}
        if pgtt not in need or not u.ecap_bit(need[pgtt]):
            raise _Fault("SPT_4", f"PGTT={pgtt} is reserved or not supported")
        if pgtt in (2, 3):
            aw = _bits(pe[0], 4, 2)
            if aw not in AW_WIDTH or not _bit(u.sagaw, aw):
                raise _Fault("SPT_4", f"AW={aw} is not a supported width (CAP_REG.SAGAW)")
            if pe[0] & self.ptr_mask():
                raise _Fault("SPT_3", "SLPTPTR beyond the host address width")
        if pgtt in (1, 3):
            flpm = _bits(pe[2], 3, 2)
            if flpm > 1 or (flpm == 1 and not u.fl5lp):
                raise _Fault("SPT_4", f"FLPM={flpm} is reserved or not supported")
            if pe[2] & self.ptr_mask():
                raise _Fault("SPT_3", "FLPTPTR beyond the host address width")
        if self.exe and not _bit(pe[2], 1):
            raise _Fault("SPT_5", "execute request with ERE=0")
        if self.priv and not _bit(pe[2], 0):
            raise _Fault("SPT_6", "supervisor request with SRE=0")
        return pgtt

    # second stage -----------------------------------------------------------------------------
    def ss_width(self):
        width, levels = AW_WIDTH[_bits(self.pe[0], 4, 2)]
        return min(width, self.u.mgaw), levels

    def ss_walk(self, gpa, purpose):
        """Walk the second stage for `gpa`. purpose is 'data' or 'fs_root' / 'fs_table' (a
        first-stage table read in nested mode). Returns (page address, size, r, w, x, leaf
        entry address, entries used)."""
        width, levels = self.ss_width()
        if gpa >> width:
            raise _Fault("SGN_5" if purpose == "data" else "SFS_5",
                         f"second-stage input {gpa:#x} beyond {width} bits")
        table = self.pe[0] & _range_mask(63, 12)
        r = w = x = 1
        used = []
        for level in range(levels, 0, -1):
            shift = PAGE + 9 * (level - 1)
            pa = table + 8 * ((gpa >> shift) & 0x1FF)
            fault = "SSS_4" if level == levels else "SSS_1"
            e = self.read(pa, "second-stage entry", level, fault=fault)
            self.steps.append(Step("ss", level, pa, e, "" if purpose == "data" else purpose))
            er, ew, ex = _bit(e, 0), _bit(e, 1), _bit(e, 2)
            if not er and not ew:
                raise _Fault("SSS_2", f"second-stage level-{level} entry {e:#x} R=W=0")
            leaf = level == 1 or (level in (2, 3) and _bit(e, 7))
            # Bit 11 (SNP) and bit 62 (TM) exist in leaf entries only, and only with snoop
            # control (ECAP_REG.SC) and device-TLBs (ECAP_REG.DT): reserved otherwise.
            rsvd = self.haw_mask()
            if level >= 4:
                rsvd |= 1 << 7
            if not leaf:
                rsvd |= (1 << 11) | (1 << 62)
            else:
                rsvd |= (0 if self.u.ecap_bit(ECAP_SC) else 1 << 11) | \
                    (0 if self.u.ecap_bit(ECAP_DT) else 1 << 62)
            if leaf and level == 2:
                rsvd |= _range_mask(20, 12) | (0 if self.u.sllps & 1 else 1 << 7)
            elif leaf and level == 3:
                rsvd |= _range_mask(29, 12) | (0 if self.u.sllps & 2 else 1 << 7)
            if e & rsvd:
                raise _Fault("SSS_3", f"reserved bits {e & rsvd:#x} set in second-stage "
                                      f"level-{level} entry {e:#x}")
            r, w, x = r & er, w & ew, x & ex
            used.append(pa)
            if leaf:
                size_shift = shift
                page = e & _range_mask(51, size_shift)
                return page, 1 << size_shift, r, w, x, pa, used
            table = e & _range_mask(51, 12)
        raise AssertionError("unreachable")

    def ss_translate(self, gpa, *, write, exe, purpose):
        """Second-stage translation with permission checks; returns (pa, size, perms, leaf)."""
        page, size, r, w, x, leaf, used = self.ss_walk(gpa, purpose)
        slee = _bit(self.pe[0], 5)
        if purpose != "data":
            if not r:
                raise _Fault("SFS_6" if purpose == "fs_root" else "SFS_7",
                             f"no second-stage read permission for first-stage table at "
                             f"GPA {gpa:#x}")
        elif write and not w:
            raise _Fault("SGN_6", f"write to GPA {gpa:#x}: second-stage W=0")
        elif not write and not r:
            raise _Fault("SGN_7", f"read of GPA {gpa:#x}: second-stage R=0")
        if purpose == "data" and exe and slee and not x:
            raise _Fault("SGN_3", f"execute at GPA {gpa:#x}: second-stage X=0 (SLEE=1)")
        if _bit(self.pe[0], 9):
            for pa in used:
                self.pending_ad.append((pa, 1 << 8, "ss"))
            if write:
                self.pending_ad.append((leaf, 1 << 9, "ss"))
        xp = x if slee else r
        return page | (gpa & (size - 1)), size, (r, w, xp), (leaf, w)

    # first stage ------------------------------------------------------------------------------
    def fs_walk(self, nested):
        u, va = self.u, self.addr
        levels = 5 if _bits(self.pe[2], 3, 2) == 1 else 4
        top = 57 if levels == 5 else 48
        sign = va >> (top - 1)
        if sign not in (0, (1 << (64 - top + 1)) - 1):
            raise _Fault("SGN_1", f"input {va:#x} is not canonical for {levels}-level paging")
        table = self.pe[2] & _range_mask(63, 12)
        us = rw = 1
        xd = 0
        fs_entries = []   # (pa, entry, leaf, table-page ss leaf and its W) for A/D
        for level in range(levels, 0, -1):
            shift = PAGE + 9 * (level - 1)
            entry_gpa = table + 8 * ((va >> shift) & 0x1FF)
            root = level == levels
            ss = None
            if nested:
                entry_pa, _s, _p, ss = self.ss_translate(
                    entry_gpa, write=False, exe=False, purpose="fs_root" if root else "fs_table")
            else:
                entry_pa = entry_gpa
            e = self.read(entry_pa, "first-stage entry", level,
                          fault="SFS_4" if root else "SFS_1")
            self.steps.append(Step("fs", level, entry_pa, e,
                                   f"GPA {entry_gpa:#x}" if nested else ""))
            if not _bit(e, 0):
                raise _Fault("SFS_2", f"first-stage level-{level} entry {e:#x} P=0")
            ps = _bit(e, 7) and level in (2, 3)
            leaf = level == 1 or ps
            rsvd = self.haw_mask()
            if level >= 4:
                rsvd |= 1 << 7
            elif level == 3 and ps:
                rsvd |= _range_mask(29, 13) | (0 if u.fl1gp else 1 << 7)
            elif level == 2 and ps:
                rsvd |= _range_mask(20, 13)
            if e & rsvd:
                raise _Fault("SFS_3", f"reserved bits {e & rsvd:#x} set in first-stage "
                                      f"level-{level} entry {e:#x}")
            us, rw, xd = us & _bit(e, 2), rw & _bit(e, 1), xd | _bit(e, 63)
            fs_entries.append((entry_pa, e, leaf, ss))
            if leaf:
                page = e & _range_mask(51, shift)
                return page | (va & ((1 << shift) - 1)), 1 << shift, us, rw, xd, fs_entries
            table = e & _range_mask(51, 12)
        raise AssertionError("unreachable")

    def fs_checks(self, us, rw, xd):
        wpe = _bit(self.pe[2], 4)
        if not self.priv and not us:
            raise _Fault("SGN_2", "user request to a page with U/S=0")
        if self.write and not rw and (not self.priv or wpe):
            raise _Fault("SGN_6", "write to a page with R/W=0"
                         + (" (supervisor, WPE=1)" if self.priv else ""))
        if self.exe and xd:
            raise _Fault("SGN_3", "execute request to a page with XD=1")
        return 1, int(rw or (self.priv and not wpe)), int(not xd)

    def fs_ad(self, fs_entries, nested):
        """First-stage A/D (and EA) updates after a successful walk."""
        eafe = _bit(self.pe[2], 7)
        for pa, e, leaf, ss in fs_entries:
            want = (1 << 5) | ((1 << 10) if eafe else 0) | ((1 << 6) if leaf and self.write else 0)
            if e & want == want:
                continue
            if nested:
                ss_leaf, ss_w = ss
                if not ss_w:
                    raise _Fault("SFS_8", f"first-stage entry at {pa:#x} needs A/D but its "
                                          f"table page is not writable at the second stage")
                if _bit(self.pe[0], 9):
                    self.pending_ad.append((ss_leaf, 1 << 9, "ss"))
            self.pending_ad.append((pa, want, "fs"))

    # the request ------------------------------------------------------------------------------
    def run(self):
        pe = self.config()
        pgtt = self.check_pasid_entry(pe)
        did = _bits(pe[1], 15, 0)
        snoop = bool(_bit(pe[1], 24))
        va = self.addr
        if pgtt == 4:
            if va >> self.u.haw:
                raise _Fault("SGN_4", f"pass-through input {va:#x} beyond HAW ({self.u.haw})")
            out, size, perm = va, 1 << PAGE, (1, 1, 1)
        elif pgtt == 2:
            out, size, perm, _leaf = self.ss_translate(va, write=self.write, exe=self.exe,
                                                       purpose="data")
            snoop |= bool(self._ss_leaf_snp())
        else:
            nested = pgtt == 3
            gpa, size, us, rw, xd, fs_entries = self.fs_walk(nested)
            perm = self.fs_checks(us, rw, xd)
            if nested:
                out, ss_size, ss_perm, _leaf = self.ss_translate(gpa, write=self.write,
                                                                 exe=self.exe, purpose="data")
                size = min(size, ss_size)
                perm = tuple(a & b for a, b in zip(perm, ss_perm))
                snoop |= bool(self._ss_leaf_snp())
            else:
                out = gpa
            self.fs_ad(fs_entries, nested)
        if INTERRUPT_FIRST <= out <= INTERRUPT_LAST:
            raise _Fault("SGN_8", f"output {out:#x} is in the interrupt address range")
        return out, size, perm, PGTT_NAMES[pgtt], did, snoop, self.ad_plan()

    def ad_plan(self):
        """The A/D writes this translation makes, as (pa, old, new). An update needed while
        page walks do not snoop (PASID entry PWSNP=0) faults instead: SFS.9 / SSS.5."""
        now, plan = {}, []
        for pa, bits, stage in self.pending_ad:
            old = now[pa] if pa in now else self.mem.read64(pa) & MASK64
            if old | bits == old:
                continue
            if not _bit(self.pe[1], 23):
                raise _Fault("SFS_9" if stage == "fs" else "SSS_5",
                             f"{'first' if stage == 'fs' else 'second'}-stage entry at {pa:#x} "
                             f"needs A/D but PWSNP=0 (page walks do not snoop)")
            now[pa] = old | bits
            plan.append((pa, old, old | bits))
        return plan

    def _ss_leaf_snp(self):
        last = [s for s in self.steps if s.what == "ss" and not s.note]
        return _bit(last[-1].value, 11) if last else 0


def translate(mem, unit: Unit, sid: int, addr: int, *, pasid: int | None = None,
              write: bool = False, exe: bool = False, priv: bool = False, at: int = 0,
              apply_ad: bool = True) -> Translation:
    """Translate one DMA request from requester `sid` (bus << 8 | devfn) at `addr`.

    pasid=None is a request without PASID (it uses the context entry's RID_PASID). exe and priv
    are PASID attributes (VtdWalkError without a PASID). at: 0 untranslated, 1 translation
    request. A/D updates are written to `mem` when apply_ad (and listed in ad_updates)."""
    if pasid is None and (exe or priv):
        raise VtdWalkError("execute and privileged requests need a PASID")
    if at not in (0, 1):
        raise VtdWalkError(f"AT={at}: only untranslated (0) and translation requests (1) are "
                           f"modeled")
    if not unit.tes:
        return Translation("not_remapped", ok=True, output=addr, size=1 << PAGE, perm="rwx")
    if pasid is None and INTERRUPT_FIRST <= addr <= INTERRUPT_LAST:
        return Translation("interrupt" if write else "blocked")
    if unit.ttm == 0:
        if pasid is not None:
            return _fault_result(_Walk(mem, unit, sid, addr, pasid, write, exe, priv, at),
                                 _Fault("RTA_2", "request with PASID in legacy mode"))
        raise VtdWalkError("legacy mode (RTADDR_REG.TTM=00b) is not modeled by this walker")
    if unit.ttm == 3 and unit.ecap_bit(ECAP_ADMS):
        return Translation("blocked")
    w = _Walk(mem, unit, sid, addr, pasid, write, exe, priv, at)
    try:
        out, size, perm, pgtt, did, snoop, updates = w.run()
    except _Fault as f:
        return _fault_result(w, f)
    if apply_ad:
        for pa, _old, new in updates:
            mem.write64(pa, new)
    return Translation("translated", ok=True, output=out, size=size,
                       perm="".join(c if p else "-" for c, p in zip("rwx", perm)), pgtt=pgtt,
                       did=did, pasid=w.pasid, snoop=snoop, steps=w.steps, ad_updates=updates)


def _fault_result(w, f):
    fault = Fault(FR[f.name], f.name, w.addr & _range_mask(63, 12), w.sid, pasid=w.req_pasid,
                  write=w.write, exe=w.exe, priv=w.priv,
                  recorded=not (f.qualified and w.fpd), detail=f.detail)
    return Translation("fault", fault=fault, pasid=getattr(w, "pasid", None), steps=w.steps)


# -- interrupt remapping (VT-d 5.1) -------------------------------------------------------------
def _compat(addr, data):
    return dict(vector=data & 0xFF, delivery=DLM_NAMES.get(_bits(data, 10, 8), "reserved"),
                trigger="level" if _bit(data, 15) else "edge", dest=_bits(addr, 19, 12),
                dest_mode="logical" if _bit(addr, 2) else "physical",
                redirection_hint=_bit(addr, 3))


def _sid_ok(irte_hi, sid):
    """Source-ID verification by IRTE SVT / SQ / SID (VT-d 9.9)."""
    svt, sq, want = _bits(irte_hi, 19, 18), _bits(irte_hi, 17, 16), _bits(irte_hi, 15, 0)
    if svt == 0:
        return True
    if svt == 1:
        ignore = {0: 0, 1: 1 << 2, 2: 1 << 1, 3: 1 << 0}[sq]
        return (sid & ~ignore & 0xFFFF) == (want & ~ignore & 0xFFFF)
    if svt == 2:
        return (want >> 8) <= (sid >> 8) <= (want & 0xFF)
    return False


def remap_msi(mem, unit: Unit, sid: int, addr: int, data: int) -> Interrupt:
    """Remap one interrupt request: a DWORD write of `data` to `addr` (0xFEEx_xxxx) by `sid`."""
    if not INTERRUPT_FIRST <= addr <= INTERRUPT_LAST:
        raise VtdWalkError(f"{addr:#x} is not in the interrupt address range")
    remappable = bool(_bit(addr, 4))
    if not unit.ires:
        return Interrupt(ok=True, format="compatibility", **_compat(addr, data))
    steps = []

    def fault(name, index, detail, fpd=False):
        return Interrupt(ok=False, format="remappable" if remappable else "compatibility",
                         index=index, steps=steps,
                         fault=Fault(FR[name], name, (index or 0) << 48, sid,
                                     recorded=not fpd, detail=detail))

    if not remappable:
        if unit.cfis and not unit.eime:
            return Interrupt(ok=True, format="compatibility", **_compat(addr, data))
        return fault("IR_COMPAT_BLOCKED", None,
                     "compatibility-format interrupt: CFIS=0" if not unit.cfis else
                     "compatibility-format interrupt with EIME=1")
    handle = (_bit(addr, 2) << 15) | _bits(addr, 19, 5)
    shv = _bit(addr, 3)
    if data >> 16:
        return fault("IR_REQ_RSVD", handle, f"reserved data bits {data:#x}")
    index = handle + (data & 0xFFFF) if shv else handle
    if index >= unit.irt_entries:
        return fault("IR_INDEX_OVER", index, f"index {index} beyond {unit.irt_entries} entries")
    pa = unit.irt_base + 16 * index
    try:
        lo, hi = mem.read64(pa) & MASK64, mem.read64(pa + 8) & MASK64
    except Exception as e:
        return fault("IR_IRTE_ACCESS", index, f"IRTE read at {pa:#x} failed: {e}")
    steps.append(Step("irte", 0, pa, (lo, hi)))
    if not _bit(lo, 0):
        return fault("IR_IRTE_NOT_PRESENT", index, f"IRTE {index} P=0")
    fpd = bool(_bit(lo, 1))
    posted = _bit(lo, 15)
    if posted:
        rsvd_lo = _range_mask(7, 2) | _range_mask(13, 12) | _range_mask(37, 24)
        bad = (lo & rsvd_lo) or not unit.pi
    else:
        rsvd_lo = _range_mask(14, 12) | _range_mask(31, 24)
        if not unit.eime:
            rsvd_lo |= _range_mask(39, 32) | _range_mask(63, 48)
        bad = (lo & rsvd_lo) or _bits(lo, 7, 5) in (3, 6)
    rsvd_hi = _range_mask(31, 20) if posted else _range_mask(63, 20)
    if bad or hi & rsvd_hi or _bits(hi, 19, 18) == 3:
        return fault("IR_IRTE_RSVD", index, f"reserved bits or values in IRTE {index}", fpd)
    if not _sid_ok(hi, sid):
        return fault("IR_SID_VERIFY", index,
                     f"requester {sid:#06x} fails SVT={_bits(hi, 19, 18)} SQ={_bits(hi, 17, 16)} "
                     f"SID={_bits(hi, 15, 0):#06x}", fpd)
    if posted:
        pda = (_bits(lo, 63, 38) << 6) | (_bits(hi, 63, 32) << 32)
        return Interrupt(ok=True, remapped=True, format="remappable", index=index,
                         vector=_bits(lo, 23, 16), posted=True, pda=pda,
                         urgent=_bit(lo, 14), steps=steps)
    dst = _bits(lo, 63, 32) if unit.eime else _bits(lo, 47, 40)
    return Interrupt(ok=True, remapped=True, format="remappable", index=index,
                     vector=_bits(lo, 23, 16), dest=dst,
                     dest_mode="logical" if _bit(lo, 2) else "physical",
                     delivery=DLM_NAMES[_bits(lo, 7, 5)],
                     trigger="level" if _bit(lo, 4) else "edge",
                     redirection_hint=_bit(lo, 3), steps=steps)
