"""A small kit for walker tests: one SMMU, one stream, hand-placed structures.

Layout (fixed, so tests can derive addresses by hand):
  host pool     PA 0x4000_0000..0x5000_0000  stream table at 0x4000_0000, CDs, host tables
  guest RAM     IPA 0x8000_0000..0x9000_0000 backed by PA 0x1_0000_0000 (nested cases)
  guest tables  IPA 0x8000_0000.. (stage-1 tables and CDs of nested streams)
"""
from core_cy.physmem import PhysMem
from core_cy.ptbuild import BumpAllocator, TableBuilder
from core_cy.walk import Walker
from smmudbg.arch.fieldtable import fmt

STE, CD, L1STD, L1CD = fmt("STE"), fmt("CD"), fmt("L1STD"), fmt("L1CD")
STRTAB = 0x4000_0000
GIPA, GPA, GSZ = 0x8000_0000, 0x1_0000_0000, 0x1000_0000
CAPS = dict(S1P=1, S2P=1, GRAN4K=1, GRAN16K=1, GRAN64K=1, OAS=5, SSIDSIZE=8, SIDSIZE=16,
            VMID16=1, ASID16=1, CD2L=1, TTENDIAN=2, TTF=2, XNX=1, HAD=1)
GRAN_TG = {4096: 0, 65536: 1, 16384: 2}


class Kit:
    def __init__(self, caps=None, log2size=8):
        self.mem = PhysMem()
        self.mem.ram(0x4000_0000, 0x1000_0000)
        self.mem.ram(GPA, GSZ)
        self.host = BumpAllocator(0x4000_0000 + 64 * (1 << log2size), 0x0F00_0000)
        self.guest = BumpAllocator(GIPA, 0x0100_0000)
        self.caps = dict(CAPS, **(caps or {}))
        self.walker = Walker(self.mem, self.caps)
        self.walker.configure(strtab_base=STRTAB, strtab_fmt=0, strtab_log2size=log2size)
        self.strtab = {"base": STRTAB, "fmt": 0, "split": 0, "log2size": log2size}
        self.s2 = None

    # -- builders ----------------------------------------------------------------------------
    def stage2(self, granule=4096, ias=40, guest_ram=True):
        self.s2 = TableBuilder(self.mem, 2, granule, ias, self.host)
        if guest_ram:
            self.s2.map(GIPA, GPA, GSZ, exec_=True)
        return self.s2

    def stage1(self, granule=4096, vabits=48, nested=False):
        if nested:
            return TableBuilder(self.mem, 1, granule, vabits, self.guest,
                                windows=[(GIPA, GSZ, GPA)])
        return TableBuilder(self.mem, 1, granule, vabits, self.host)

    def cd_words(self, s1, asid=1, **extra):
        f = dict(V=1, AA64=1, T0SZ=64 - s1.ias, TG0=s1.tg, EPD1=1, IPS=5, R=1, A=1, ASID=asid,
                 TTB0=s1.root >> 4)
        f.update(extra)
        return CD.encode(**f)

    def put_cd(self, words, nested=False):
        """Place one CD; returns its address (IPA when nested)."""
        if nested:
            ipa = self.guest.alloc(64)
            self.mem.write_words(GPA + ipa - GIPA, words)
            return ipa
        pa = self.host.alloc(64)
        self.mem.write_words(pa, words)
        return pa

    def ste_s2_fields(self):
        t = self.s2
        return dict(S2VMID=1, S2T0SZ=t.tsz, S2SL0=t.sl0, S2TG=t.tg, S2PS=5, S2AA64=1, S2R=1,
                    S2TTB=t.root >> 4)

    def put_ste(self, sid, **fields):
        self.mem.write_words(STRTAB + 64 * sid, STE.encode(**fields))

    def ipa_pa(self, ipa):
        return GPA + ipa - GIPA

    def walk(self, sid, addr, ssid=None, **kw):
        return self.walker.translate(sid, addr, ssid, trace=True, **kw)


def nested_kit(s1_gran=4096, s2_gran=4096, vabits=48, ias=40, cd_extra=None):
    k = Kit()
    k.stage2(s2_gran, ias)
    s1 = k.stage1(s1_gran, vabits, nested=True)
    cd = k.put_cd(k.cd_words(s1, **(cd_extra or {})), nested=True)
    k.put_ste(1, V=1, Config=7, S1ContextPtr=cd >> 6, **k.ste_s2_fields())
    return k, s1, cd


def s1_kit(gran=4096, vabits=48, cd_extra=None, ste_extra=None):
    k = Kit()
    s1 = k.stage1(gran, vabits)
    cd = k.put_cd(k.cd_words(s1, **(cd_extra or {})))
    k.put_ste(1, V=1, Config=5, S1ContextPtr=cd >> 6, **(ste_extra or {}))
    return k, s1, cd
