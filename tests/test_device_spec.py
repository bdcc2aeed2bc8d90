"""SMMU device behaviours checked against the text of IHI 0070 (issue 11, item 8 and item 1).

Each test quotes the section its expected value comes from.
"""
import pytest

from core_cy.physmem import PhysMem
from smmudbg.arch.fieldtable import fmt
from smmudbg.arch.smmuv3 import registers as R
from smmudbg.model.smmu import Smmu
from smmudbg.model.system import System

TINY = """
name = "tiny"
[[ram]]
base = 0x4000_0000
size = 0x100_0000
[[smmu]]
name = "s"
stream_table = { format = "linear", log2size = 4 }
cmdq_log2size = 2
evtq_log2size = 1
pool = { base = 0x4000_0000, size = 0x10_0000 }
"""


# -- C_BAD_STREAMID and SMMU_CR2.RECINVSID -----------------------------------------------------

def test_recinvsid_field_and_reset():
    # 6.3.12 SMMU_CR2: "RECINVSID, bit [1] ... This field resets to an UNKNOWN value."
    f = fmt("SMMU_CR2").field("RECINVSID")
    assert (f.lo, f.hi) == (1, 1)
    assert not (R.RESET_MASK.get("SMMU_CR2", 0) >> 1) & 1     # no architected reset value


def test_c_bad_streamid_recorded_only_when_recinvsid_is_1():
    # 7.3.3 C_BAD_STREAMID: "Recorded when SMMU_(*_)CR2.RECINVSID == 1 and ... Incoming
    # StreamID >= 2^(SMMU_(*_)STRTAB_BASE_CFG.LOG2SIZE)". LOG2SIZE = 4: StreamID 16 is out.
    m = System.from_text(TINY).smmu()
    m.set_reg("CR2", 0)
    r = m.translate(16, 0x1000)
    assert r["fault"]["type"] == "C_BAD_STREAMID" and r["pa"] is None   # still terminated
    assert r["event"] is None and m.events() == []
    m.set_reg("CR2", 1 << 1)                                    # RECINVSID = 1
    r = m.translate(16, 0x1000)
    assert r["event"] == 0
    assert [e["event"] for e in m.events()] == ["C_BAD_STREAMID"]
    assert m.events()[0]["fields"]["StreamID"] == 16
    # Other configuration errors do not depend on RECINVSID: StreamID 3 has STE.V == 0.
    m.set_reg("CR2", 0)
    assert m.translate(3, 0x1000)["event"] == 1
    assert [e["event"] for e in m.events()] == ["C_BAD_STREAMID", "C_BAD_STE"]


# -- CMD_TLBI_* TG/TTL (4.4.1.1) ----------------------------------------------------------------

G16K = """
name = "g16k"
[[ram]]
base = 0x8000_0000
size = 0x1000_0000
[[smmu]]
name = "s"
features = { S1P = 1, S2P = 0 }
stream_table = { format = "linear", log2size = 4 }
pool = { base = 0x8000_0000, size = 0x0100_0000 }
[[domain]]
name = "d"
smmu = "s"
stage = 1
granule = 16384
vabits = 47
asid = 5
maps = [{ in = 0x4000_0000, out = 0x9000_0000, size = 0x0200_0000, perm = "rw" },
        { in = 0x5000_0000, out = 0x9400_0000, size = 0x4000, perm = "rw" }]
[[stream]]
name = "dev"
smmu = "s"
sid = 1
config = "s1"
cds = [{ ssid = 0, domain = "d" }]
"""
BLOCK_VA, PAGE_VA = 0x4000_0000, 0x5000_0000     # 32MB level-2 block, 16K level-3 page


def _g16k(ds=0):
    text = G16K if not ds else G16K.replace("S2P = 0 }", "S2P = 0, DS = 1 }")
    m = System.from_text(text).smmu()
    for va in (BLOCK_VA, PAGE_VA):
        assert m.translate(1, va)["fault"] is None
    got = {e["in_base"]: e["s1level"] for e in m.walker.tlb_entries()}
    # With a 16K granule a level-2 block maps 32MB and a level-3 page 16K (Arm ARM D8.2).
    assert got == {BLOCK_VA: 2, PAGE_VA: 3}
    return m


def _cached(m):
    return sorted(e["in_base"] for e in m.walker.tlb_entries())


def test_tlbi_16k_ttl1_without_ds_is_treated_as_any_level():
    # 4.4.1.1, TTL encodings, TG == 0b10, TTL == 0b01: "If SMMU_IDR5.DS == 1 then leaf entries
    # at level 1 of a 16KB Granule table. Otherwise Reserved, and hardware treats as
    # TTL == 0b00" - and TTL == 0b00 is "Leaf entries at any level of a 16KB Granule table".
    # A range of NUM+1 = 2 granules is legal, and removes the level-2 block and the level-3
    # page alike, as TTL=0 would.
    m = _g16k()
    for va in (BLOCK_VA, PAGE_VA):
        log = m.submit([("CMD_TLBI_NH_VA", dict(ASID=5, Address=va >> 12, TG=2, TTL=1,
                                                NUM=1))])
        assert log[-1]["error"] is None, log[-1]["effect"]
        assert "removed 1" in log[-1]["effect"]
    assert _cached(m) == []


def test_tlbi_16k_ttl1_with_ds_is_level_1():
    # Same table, DS == 1: TTL == 0b01 means "leaf entries at level 1 of a 16KB Granule
    # table"; there are none here, so the level-2 block and level-3 page are not required to
    # go (and this SMMU keeps them).
    m = _g16k(ds=1)
    log = m.submit([("CMD_TLBI_NH_VA", dict(ASID=5, Address=BLOCK_VA >> 12, TG=2, TTL=1,
                                            NUM=0))])
    assert log[-1]["error"] is None
    assert _cached(m) == [BLOCK_VA, PAGE_VA]


def test_tlbi_16k_ttl1_single_granule_without_ds_is_cerror_ill():
    # 4.4.1.1: "If SMMU_IDR5.DS == 0, a TLBI configured with TG == 0b10 and TTL == 0b01, raises
    # a CERROR_ILL, since TTL is treated as 0b00" - when NUM == 0 and SCALE == 0, because
    # "The parameter combination of NUM == 0, SCALE == 0 and TTL = 0b00 is Reserved".
    m = _g16k()
    log = m.submit([("CMD_TLBI_NH_VA", dict(ASID=5, Address=PAGE_VA >> 12, TG=2, TTL=1))])
    assert log[-1]["error"] == "CERROR_ILL" and "Reserved" in log[-1]["effect"]
    assert m.field("CMDQ_CONS", "ERR") == 1                     # CERROR_ILL (7.1)
    assert _cached(m) == [BLOCK_VA, PAGE_VA]


@pytest.mark.parametrize("tg,ttl", [(1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 1), (3, 2),
                                    (3, 3)])
def test_tlbi_other_tg_ttl_single_granule_is_legal(tg, ttl):
    # 4.4.1.1: every other TTL != 0b00 encoding names a level ("Leaf entries at Level n of a
    # 4KB/16KB/64KB Granule table"), so NUM == 0, SCALE == 0 is not the Reserved combination.
    m = System.from_text(TINY).smmu()
    log = m.submit([("CMD_TLBI_NH_VAA", dict(Address=0x10, TG=tg, TTL=ttl))])
    assert log[-1]["error"] is None, (tg, ttl, log[-1]["effect"])


# -- SMMU_STRTAB_BASE(_CFG) while SMMUEN == 1, and SMMU_AIDR (6.3.8, 6.3.24, 6.3.25) ------------

def test_strtab_writes_ignored_while_smmuen():
    # 6.3.24: "When SMMU_CR0.SMMUEN == 0 and SMMU_CR0ACK.SMMUEN == 0, accesses to this register
    # are RW. Otherwise, accesses to this register are RO." and "In SMMUv3.2 and later, a write
    # while SMMU_CR0.SMMUEN == 1 is IGNORED"; 6.3.25 says the same of STRTAB_BASE_CFG.
    m = System.from_text(TINY).smmu()
    assert m.field("CR0", "SMMUEN") == 1 and m.field("CR0ACK", "SMMUEN") == 1
    base, cfg = m.reg("STRTAB_BASE"), m.reg("STRTAB_BASE_CFG")
    m.set_reg("STRTAB_BASE", 0x4080_0000)
    m.set_reg("STRTAB_BASE_CFG", 0x10000 | 6)       # FMT=2-level, LOG2SIZE=6
    assert (m.reg("STRTAB_BASE"), m.reg("STRTAB_BASE_CFG")) == (base, cfg)
    # The SMMU still uses the old table: StreamID 16 is beyond LOG2SIZE=4.
    m.set_reg("CR2", 1 << 1)
    assert m.translate(16, 0)["fault"]["type"] == "C_BAD_STREAMID"
    # With SMMUEN = 0 (and its ACK) the same writes take effect.
    m.set_reg("CR0", m.reg("CR0") & ~1)
    m.set_reg("STRTAB_BASE", 0x4080_0000)
    m.set_reg("STRTAB_BASE_CFG", 6)                 # linear, LOG2SIZE=6
    assert (m.reg("STRTAB_BASE"), m.reg("STRTAB_BASE_CFG")) == (0x4080_0000, 6)
    m.set_reg("CR0", m.reg("CR0") | 1)
    # StreamID 16 is in range now; the zeroed table there has STE.V == 0 (C_BAD_STE, 7.3.5).
    assert m.translate(16, 0)["fault"]["type"] == "C_BAD_STE"


def test_irq_cfg_writes_ignored_while_irqen():
    # 6.3.21: "In SMMUv3.2 and later, a write while SMMU_IRQ_CTRL.GERROR_IRQEN == 1 is
    # IGNORED", "common for all SMMU_*_IRQ_CFG{0,1,2} register sets ... with respect to their
    # corresponding SMMU_IRQ_CTRL.*_IRQEN flag".
    m = System.from_text(TINY).smmu()
    m.set_reg("EVENTQ_IRQ_CFG0", 0x4090_0000)
    m.set_reg("IRQ_CTRL", 0b100)                    # EVENTQ_IRQEN
    m.set_reg("EVENTQ_IRQ_CFG0", 0x40A0_0000)
    m.set_reg("GERROR_IRQ_CFG0", 0x40B0_0000)      # GERROR_IRQEN is 0: written
    assert m.reg("EVENTQ_IRQ_CFG0") == 0x4090_0000
    assert m.reg("GERROR_IRQ_CFG0") == 0x40B0_0000


V32 = dict(S1P=1, S2P=1, HAD=1, XNX=1, RIL=1, FWB=1, BBML=1, HYP=1)


@pytest.mark.parametrize("features,minor", [
    (dict(V32), 2),
    (dict(V32, E0PD=1, PTWNNC=1), 3),                # 6.3.4: E0PD, PTWNNC are 1 from v3.3
    (dict(V32, HYP=0), 1),                           # 6.3.1: "Hyp == 1 is mandatory in
                                                     # ... SMMUv3.2 or later, if S1P and S2P"
    (dict(V32, S1P=1, S2P=0, HYP=0, XNX=0), 2),      # stage 1 only: no Hyp or XNX needed
    (dict(V32, FWB=0), 1),                           # "FWB is 1 in ... SMMUv3.2 or later"
    (dict(V32, RIL=0), 1),                           # "RIL is 1 in ... SMMUv3.2 or later"
    (dict(V32, BBML=0), 1),                          # "BBML is 0b01 or 0b10 in ... v3.2"
    (dict(V32, HAD=0), 0),                           # "In SMMUv3.1 and later ... mandatory"
    (dict(V32, XNX=0), 0),
])
def test_aidr_reports_the_version_the_features_allow(features, minor):
    # 6.3.8 SMMU_AIDR: ArchMajorRev [7:4] 0b0000 = SMMUv3.x; ArchMinorRev [3:0] 0bxxxx = v3.x.
    mem = PhysMem(strict=True)
    m = Smmu("s", mem, features)
    assert m.reg("AIDR") == minor
    with pytest.raises(Exception, match="read-only"):
        m.set_reg("AIDR", 2)


# -- writes by the SMMU to nothing abort (6.3.19, 7.2.2, 7.5) ------------------------------------
# These systems set mem.strict = True themselves: only declared RAM exists (RAM here is
# 0x4000_0000 + 16MB); 0x8000_0000 has nothing behind it.

NOWHERE = 0x8000_0000


def _strict():
    m = System.from_text(TINY).smmu()
    m.mem.strict = True
    return m


def test_event_record_to_nothing_is_eventq_abt_err_and_lost():
    # 7.2.2: "An external abort detected while accessing the Event queue, for example when
    # writing a record, activates the SMMU_(*_)GERROR.EVENTQ_ABT_ERR Global Error"; with a
    # synchronous abort "The PROD index is not incremented for entries that caused a
    # synchronous abort". 7.2.1: the queue is not writable while "an unacknowledged
    # GERROR.EVENTQ_ABT_ERR condition exists": later events are discarded, no second abort.
    m = _strict()
    m.set_reg("CR0", 0b1001)                          # EVENTQEN=0 to move the queue
    m.set_reg("EVENTQ_BASE", NOWHERE | 1)
    m.set_reg("CR0", 0b1101)
    r = m.translate(0, 0x1000)                        # STE.V == 0: C_BAD_STE
    assert r["fault"]["type"] == "C_BAD_STE" and r["event"] is None
    assert m.reg("GERROR") == 1 << 2 and m.reg("GERRORN") == 0    # EVENTQ_ABT_ERR, bit [2]
    assert m.reg("EVENTQ_PROD") == 0 and m.events() == []
    m.translate(1, 0x1000)
    assert m.reg("GERROR") == 1 << 2                  # "does not toggle ... already active"
    assert m.evtq.written == 0 and m.evtq.discarded == 2
    # Acknowledge (GERRORN[2] = GERROR[2]): the error is inactive and the next abort toggles
    # GERROR[2] back to 0, active again (GERROR != GERRORN).
    m.set_reg("GERRORN", 1 << 2)
    m.translate(2, 0x1000)
    assert m.reg("GERROR") == 0 and m.gerror_active() == ["EVENTQ_ABT_ERR"]


def test_cmd_sync_msi_to_nothing_is_msi_cmdq_abt_err():
    # 4.7.3 CMD_SYNC with CS = SIG_IRQ sends an MSI to MSIAddress when MSIs are implemented;
    # 6.3.19 MSI_CMDQ_ABT_ERR, bit [4]: "a CMD_SYNC MSI was terminated with abort" and
    # "Activation of this error does not affect future MSIs" - the queue goes on.
    m = _strict()
    log = m.submit([("CMD_SYNC", {"CS": 1, "MSIAddress": NOWHERE >> 2, "MSIData": 7}),
                    ("CMD_SYNC", {"CS": 1, "MSIAddress": 0x4090_0000 >> 2, "MSIData": 9})])
    assert [r["error"] for r in log] == [None, None]
    assert m.reg("GERROR") == 1 << 4 and m.gerror_active() == ["MSI_CMDQ_ABT_ERR"]
    assert m.mem.read(0x4090_0000, 4) == (9).to_bytes(4, "little")
    assert not m.mem.is_backed(NOWHERE)               # nothing was created there


def test_eventq_and_gerror_msis_to_nothing():
    # 6.3.30 SMMU_EVENTQ_IRQ_CFG0.ADDR: the MSI target; an aborted Event queue MSI activates
    # GERROR.MSI_EVENTQ_ABT_ERR [5]. That activation raises a GERROR interrupt (7.5.1), sent
    # as an MSI to GERROR_IRQ_CFG0.ADDR; when that one aborts too, MSI_GERROR_ABT_ERR [7] is
    # activated and, "with the exception of ... MSI_GERROR_ABT_ERR", no further GERROR
    # interrupt follows (7.5.1).
    m = _strict()
    m.set_reg("EVENTQ_IRQ_CFG0", NOWHERE)
    m.set_reg("EVENTQ_IRQ_CFG1", 0x11)
    m.set_reg("GERROR_IRQ_CFG0", NOWHERE + 0x40)
    m.set_reg("GERROR_IRQ_CFG1", 0x22)
    m.set_reg("IRQ_CTRL", 0b101)                      # EVENTQ_IRQEN, GERROR_IRQEN
    assert m.translate(0, 0x1000)["event"] == 0       # the record itself is written
    assert m.reg("GERROR") == (1 << 5) | (1 << 7)
    assert sorted(m.gerror_active()) == ["MSI_EVENTQ_ABT_ERR", "MSI_GERROR_ABT_ERR"]
    assert [i["source"] for i in m.irqs] == ["EVENTQ", "GERROR"]
    # With a GERROR MSI target that exists, the next activation is delivered there.
    m.set_reg("IRQ_CTRL", 0b100)                      # GERROR_IRQEN=0: CFG0 writable
    m.set_reg("GERROR_IRQ_CFG0", 0x4090_0000)
    m.set_reg("IRQ_CTRL", 0b101)
    m.set_reg("GERRORN", m.reg("GERROR"))            # acknowledge both
    m.translate(1, 0x1000)
    assert m.gerror_active() == ["MSI_EVENTQ_ABT_ERR"]
    assert m.mem.read(0x4090_0000, 4) == (0x22).to_bytes(4, "little")


def test_msi_with_address_0_is_not_sent():
    # 6.3.21: "If ADDR == 0, no MSI is sent." The interrupt is still signalled (wired IRQ).
    m = _strict()
    m.set_reg("IRQ_CTRL", 0b100)
    m.translate(0, 0x1000)
    assert m.irqs[-1]["source"] == "EVENTQ" and "MSI" not in m.irqs[-1]["what"]
    assert m.gerror_active() == []


def test_software_store_to_nothing_is_a_one_line_model_error():
    # The driver side (stream table, queues, STEs) storing outside RAM is a configuration error
    # of the system being built, reported as such, not an SMMU abort.
    from smmudbg.errors import ModelError
    mem = PhysMem(strict=True)
    mem.ram(0x4000_0000, 0x10_0000)
    m = Smmu("s", mem, pool={"base": NOWHERE, "size": 0x10_0000})
    with pytest.raises(ModelError, match=r"^s: .*0x80000000"):
        m.setup_stream_table("linear", 4)
