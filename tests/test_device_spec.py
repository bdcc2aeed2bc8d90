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
