"""The system map of a scenario: strict RAM and the SMMU's register pages."""
import pytest

from core_cy.physmem import MemFault
from smmudbg.errors import ScenarioError
from smmudbg.model.system import System


def test_scenario_memory_is_strict():
    s = System.default()
    ram = [(b, n) for b, n, k in s.mem.regions() if k == "ram"]
    assert ram
    top = max(b + n for b, n in ram)
    s.mem.write_u64(top - 8, 1)
    with pytest.raises(MemFault, match=f"{top:#x}"):
        s.mem.write_u64(top, 1)                      # a write to nothing


def test_smmu_register_pages_belong_to_the_smmu():
    s = System.default()
    smmu = s.smmu("smmu0")
    r = s.mem.region_at(smmu.base + 0x100A8)         # SMMU_EVENTQ_PROD lives in Page 1
    assert (r.base, r.size, r.kind, r.owner) == (smmu.base, 0x2_0000, "mmio", "smmu0")
    assert not s.mem.is_backed(smmu.base)            # table walks never read registers


def test_overlapping_register_pages_are_a_scenario_error():
    text = """
name = "clash"
[[ram]]
base = 0x4000_0000
size = 0x100_0000
[[smmu]]
name = "a"
base = 0x0905_0000
pool = { base = 0x4000_0000, size = 0x10_0000 }
[[smmu]]
name = "b"
base = 0x0906_0000
pool = { base = 0x4010_0000, size = 0x10_0000 }
"""
    with pytest.raises(ScenarioError, match="b: register pages at 0x9060000.*overlaps"):
        System.from_text(text)
