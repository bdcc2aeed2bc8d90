"""Scenario files: the examples build and translate; malformed ones give one-line errors that
name the table and key."""
import glob
import os

import pytest

from smmudbg.errors import ScenarioError
from smmudbg.model.system import System

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "examples", "*.toml"))))
def test_examples_build(path):
    s = System.from_file(path)
    assert s.smmus


def test_default_scenario_translations():
    s = System.default()
    smmu = s.smmu("smmu0")
    # nic0 (nested): IOVA 0x1000_0123 -> guest IPA 0x4100_0123 (nic0-dma) -> vm0 RAM at IPA
    # 0x4000_0000 is PA 0x6000_0000, so PA 0x6100_0123.
    r = smmu.translate(s.device("nic0").sid, 0x1000_0123)
    assert (r["ipa"], r["pa"], r["perm"]) == (0x4100_0123, 0x6100_0123, "rw-")
    # PASID 1 of nic0: 0x7f00_0000_0040 -> IPA 0x4400_0040 -> PA 0x6400_0040.
    assert smmu.translate(s.device("nic0").sid, 0x7F00_0000_0040, 1)["pa"] == 0x6400_0040
    # nvme0 (stage 1 only, 64K): 0xffff_0010 -> PA 0x5000_0010.
    assert smmu.translate(s.device("nvme0").sid, 0xFFFF_0010)["pa"] == 0x5000_0010
    # gpu0 (stage 2 only): IPA 0x4000_1000 -> PA 0x6000_1000, S2 perm rwx.
    r = smmu.translate(s.device("gpu0").sid, 0x4000_1000)
    assert (r["pa"], r["perm"]) == (0x6000_1000, "rwx")
    assert smmu.translate(s.device("legacy0").sid, 0x1234)["pa"] == 0x1234
    assert smmu.translate(s.device("quarantine0").sid, 0x1000)["fault"]["type"] == "ABORT"


def test_pasid_example():
    s = System.from_file(os.path.join(ROOT, "examples", "pasid-2lvl.toml"))
    smmu0, smmu1 = s.smmu("smmu0"), s.smmu("smmu1")
    sid = s.device("accel0").sid
    assert smmu0.translate(sid, 0x4000_1234, 1)["pa"] == 0x9000_1234
    assert smmu0.translate(sid, 0x4000_1234, 300)["pa"] == 0x9400_1234
    # SSID 2 shares L1CD 0 with SSID 1 but its CD is all zero: C_BAD_CD (V=0).
    assert smmu0.translate(sid, 0x4000_1234, 2)["fault"]["type"] == "C_BAD_CD"
    # SSID 0x200 is in L1CD 0 too (64K leaves hold 1024 CDs)... SSID 1023 -> same leaf.
    assert smmu0.translate(sid, 0x4000_1234, 1023)["fault"]["type"] == "C_BAD_CD"
    # No SSID: S1DSS=bypass and no stage 2 -> address passes through.
    assert smmu0.translate(sid, 0x4000_1234)["pa"] == 0x4000_1234
    assert smmu1.translate(3, 0x0123_4560)["pa"] == 0xA123_4560


@pytest.mark.parametrize("text,where", [
    ("name = 1\n[[smmu]]\nname='a'", "smmu[0].pool"),
    ("[[smmu]]\nname='a'\npool={base=0,size=4096}\nstream_table={format='3lvl'}",
     "smmu[0].stream_table.format"),
    ("[[smmu]]\nname='a'\npool={base=0,size=4096}\n[[stream]]\nsmmu='a'\nsid=1\n"
     "config='nestd'", "stream[0].config"),
    ("[[smmu]]\nname='a'\npool={base=0,size=4096}\n[[stream]]\nsmmu='b'\nsid=1",
     "stream[0].smmu"),
    ("[[smmu]]\nname='a'\npool={base=0,size=4096}\n[[domain]]\nname='d'\nsmmu='a'\n"
     "granule=8192", "domain[0].granule"),
    ("[[smmu]]\nname='a'\npool={base=0,size=4096}\nbogus=1", "smmu[0]: unknown key"),
    ("[[ram]]\nbase='0xZZ'\nsize=1", "ram[0].base"),
    ("this is not toml", "not valid TOML"),
])
def test_malformed_scenarios(text, where):
    with pytest.raises(ScenarioError) as e:
        System.from_text(text, "t.toml")
    assert where in str(e.value)
    assert "\n" not in str(e.value)


def test_scenario_that_overflows_its_pool():
    text = """
[[ram]]
base = 0x4000_0000
size = 0x100_0000
[[smmu]]
name = "a"
pool = { base = 0x4000_0000, size = 0x1000 }
stream_table = { format = "linear", log2size = 8 }
"""
    with pytest.raises(ScenarioError, match="exhausted|pool"):
        System.from_text(text)
