"""Scenario files: the examples build and translate, and build what their TOML text says;
malformed ones give one-line errors that name the table and key."""
import glob
import os
import tomllib

import pytest

from smmudbg.arch.fieldtable import fmt
from smmudbg.errors import ScenarioError
from smmudbg.model.system import System

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "examples", "*.toml"))))
def test_examples_build(path):
    s = System.from_file(path)
    assert s.smmus or s.vtds          # an IOMMU of either architecture


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


# -- what each scenario builds, checked against its own TOML text --------------------------------
# The expectations are read from the TOML with tomllib (not through the model's scenario
# parser) and the architecture's encodings: STE.Config (IHI 0070 5.2: 0b000 abort, 0b100
# bypass, 0b101 stage 1, 0b110 stage 2, 0b111 both), SMMU_STRTAB_BASE_CFG.FMT (6.3.25: 0b00
# linear, 0b01 2-level), and the scenario format's documented defaults (linear, log2size 8).
STE_CONFIG = {"abort": 0b000, "bypass": 0b100, "s1": 0b101, "s2": 0b110, "nested": 0b111}
STRTAB_FMT = {"linear": 0b00, "2lvl": 0b01}
SCENARIOS = sorted(glob.glob(os.path.join(ROOT, "examples", "*.toml"))) + ["<default>"]


def _load(path):
    if path == "<default>":
        from importlib import resources
        text = resources.files("smmudbg.data").joinpath("default.toml").read_text()
        return tomllib.loads(text), System.default()
    with open(path, "rb") as f:
        return tomllib.load(f), System.from_file(path)


def _perm(letters):
    return "".join(c if c in letters else "-" for c in "rwx")


def _both(a, b):
    return "".join(x if x == y else "-" for x, y in zip(a, b))


def _tlb_entry(smmu, addr):
    for e in smmu.walker.tlb_entries():
        if e["in_base"] <= addr < e["in_base"] + e["size"]:
            return e
    return None


@pytest.mark.parametrize("path", SCENARIOS, ids=os.path.basename)
def test_scenario_builds_what_its_toml_says(path):
    doc, s = _load(path)
    cfg_f = fmt("SMMU_STRTAB_BASE_CFG")
    # SMMUs, with their stream-table format and size.
    assert sorted(s.smmus) == sorted(t["name"] for t in doc.get("smmu", []))
    for t in doc.get("smmu", []):
        m = s.smmu(t["name"])
        st = t.get("stream_table", {})
        cfg = m.reg("STRTAB_BASE_CFG")
        assert cfg_f.field("FMT").get([cfg]) == STRTAB_FMT[st.get("format", "linear")]
        assert cfg_f.field("LOG2SIZE").get([cfg]) == st.get("log2size", 8)
        if st.get("format") == "2lvl" and "split" in st:
            assert cfg_f.field("SPLIT").get([cfg]) == st["split"]
        for name, v in t.get("features", {}).items():
            assert m.features[name.upper()] == v, (t["name"], name)
    # Streams present, with their STE.Config and (stage 2) S2VMID; counts per SMMU.
    domains = {d["name"]: d for d in doc.get("domain", [])}
    per_smmu = {}
    for t in doc.get("stream", []):
        n = t.get("count", 1)
        per_smmu[t["smmu"]] = per_smmu.get(t["smmu"], 0) + n
        m = s.smmu(t["smmu"])
        for sid in sorted({t["sid"], t["sid"] + n // 2, t["sid"] + n - 1}):
            assert (t["smmu"], sid) in s.streams
            words = m.read_ste(sid)
            assert fmt("STE").field("V").get(words) == 1
            assert fmt("STE").field("Config").get(words) == STE_CONFIG[t["config"]], sid
            if t["config"] in ("s2", "nested"):
                assert fmt("STE").field("S2VMID").get(words) == domains[t["s2"]].get("vmid", 0)
        if "name" in t:
            assert s.device(t["name"]).sid == t["sid"]
    for name, n in per_smmu.items():
        assert sum(1 for (sm, _) in s.streams if sm == name) == n
    # One known translation per (stream, CD) and per stage-2 stream, with the domain's ASID
    # and VMID seen in the IOTLB entry it leaves.
    vms = {v["name"]: v for v in doc.get("vm", [])}

    def vm_pa(vm, ipa):
        for r in vms[vm]["ram"]:
            if r["ipa"] <= ipa < r["ipa"] + r["size"]:
                return r["pa"] + ipa - r["ipa"]
        raise AssertionError(f"IPA {ipa:#x} is outside {vm}'s RAM")

    def s2_of(dom, ipa):
        """(PA, perm) of an IPA through a stage-2 domain as its TOML declares it."""
        if dom.get("map_vm"):
            return vm_pa(dom["map_vm"], ipa), _perm(dom.get("perm", "rwx"))
        for mp in dom["maps"]:
            if mp["in"] <= ipa < mp["in"] + mp["size"]:
                return mp["out"] + ipa - mp["in"], _perm(mp.get("perm", "rw"))
        raise AssertionError(f"IPA {ipa:#x} is not mapped by {dom['name']}")

    checked = 0
    for t in doc.get("stream", []):
        m = s.smmu(t["smmu"])
        m.walker.configure(caching=True)
        if t["config"] == "bypass":
            assert m.translate(t["sid"], 0x1234_5000)["pa"] == 0x1234_5000
        elif t["config"] == "abort":
            assert m.translate(t["sid"], 0x1000)["fault"]["type"] == "ABORT"
        elif t["config"] == "s2":
            dom = domains[t["s2"]]
            ipa = (vms[dom["map_vm"]]["ram"][0]["ipa"] if dom.get("map_vm")
                   else dom["maps"][0]["in"]) + 0x10
            pa, perm = s2_of(dom, ipa)
            r = m.translate(t["sid"], ipa)
            assert (r["pa"], r["perm"]) == (pa, perm)
            assert _tlb_entry(m, ipa)["vmid"] == dom.get("vmid", 0)
        for cd in t.get("cds", []):
            dom = domains[cd["domain"]]
            mp = dom["maps"][0]
            va, out = mp["in"] + 0x10, mp["out"] + 0x10
            perm = _perm(mp.get("perm", "rw"))
            ssid = cd["ssid"] or None           # SSID 0 is the no-SubstreamID stream
            r = m.translate(t["sid"], va, ssid, priv="p" in mp.get("perm", ""))
            assert r["fault"] is None, (t, cd, r["fault"])
            e = _tlb_entry(m, va)
            assert e["asid"] == dom.get("asid", 0)
            if t["config"] == "nested":
                s2 = domains[t["s2"]]
                pa, s2perm = s2_of(s2, out)
                assert (r["ipa"], r["pa"], r["perm"]) == (out, pa, _both(perm, s2perm))
                assert e["vmid"] == s2.get("vmid", 0)
            else:
                assert (r["pa"], r["perm"]) == (out, perm)
            m.walker.invalidate_tlb()
        checked += 1
    assert checked == len(doc.get("stream", []))


def test_scenario_smmus_record_invalid_streamids_as_linux_programs_them():
    # Linux's arm_smmu_device_reset() writes CR2 = RECINVSID | PTM, so a StreamID beyond the
    # stream table is recorded as C_BAD_STREAMID (IHI 0070 7.3.3) on a scenario system too.
    from smmudbg.model.system import System
    m = System.default().smmu("smmu0")
    assert m.field("CR2", "RECINVSID") == 1 and m.field("CR2", "PTM") == 1
    sid = 1 << m.field("STRTAB_BASE_CFG", "LOG2SIZE")          # one past the last StreamID
    m.translate(sid, 0x1000)
    ev = m.events()[-1]
    assert ev["event"] == "C_BAD_STREAMID" and ev["fields"]["StreamID"] == sid
