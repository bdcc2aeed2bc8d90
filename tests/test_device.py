"""SMMU device model: registers, command queue semantics on the caches, queue wrap and errors.

Expected values come from IHI 0070: register layouts (6.3), command effects (chapter 4), queue
rules (3.5, 7.1). Systems are the built-in default scenario (smmu0: nested nic0 SID 0x8 with
ASIDs 1/2 in VMID 1, S1-only nvme0 SID 0x100 with ASID 16 and a 64K granule, S2-only gpu0
SID 0x200 in VMID 1, bypass 0x300, abort 0x301) or small TOML systems.
"""
import pytest

from core_cy.physmem import PhysMem
from smmudbg.arch.fieldtable import fmt
from smmudbg.errors import ModelError
from smmudbg.model.smmu import Smmu
from smmudbg.model.system import System

NIC, NVME, GPU = 0x8, 0x100, 0x200
NIC_VA = 0x1000_0000          # nic0-dma, ASID 1, 2MB blocks
PASID_VA = 0x7f00_0000_0000   # nic0-pasid1, ASID 2 (SSID 1)
HOST_VA = 0xffff_0000         # host-dma, ASID 16, 64K pages
GPU_IPA = 0x4000_0000         # vm0 RAM through vm0-s2


@pytest.fixture
def sysm():
    return System.default()


@pytest.fixture
def smmu(sysm):
    return sysm.smmu()


def kinds(m):
    return sorted((e["kind"], e["vmid"], e["asid"], e["in_base"]) for e in m.walker.tlb_entries())


def warm(m):
    for sid, va, ssid in ((NIC, NIC_VA, None), (NIC, PASID_VA, 1), (NVME, HOST_VA, None),
                          (NVME, HOST_VA + 0x10000, None), (NVME, HOST_VA + 0x20000, None),
                          (GPU, GPU_IPA, None)):
        assert m.translate(sid, va, ssid)["fault"] is None
    return kinds(m)


def one(m, name, **fields):
    log = m.submit([(name, fields)])
    assert len(log) == 1 and log[0]["error"] is None, log
    return log[0]


# -- registers ------------------------------------------------------------------------------

def test_cr0ack_follows_cr0_and_queue_base_layout(smmu):
    assert smmu.reg("CR0") == 0b1101 and smmu.reg("CR0ACK") == 0b1101
    base = smmu.reg("CMDQ_BASE")
    # SMMU_CMDQ_BASE: ADDR [55:5], LOG2SIZE [4:0]; the default scenario asks for 2^8 entries.
    assert base & 0x1F == 8 and smmu.cmdq.base == base & ((1 << 56) - 1) & ~0x1F
    assert smmu.reg("EVENTQ_BASE") & 0x1F == 7


def test_guarded_queue_registers(smmu):
    with pytest.raises(ModelError, match="CMDQEN"):
        smmu.set_reg("CMDQ_BASE", 0)
    with pytest.raises(ModelError, match="read-only"):
        smmu.set_reg("GERROR", 1)


def test_gbpa_abort_and_bypass_when_smmuen_0(smmu):
    smmu.set_reg("CR0", 0b1100)                      # SMMUEN=0
    r = smmu.translate(NIC, 0x1234)
    assert r["pa"] == 0x1234                         # GBPA reset: bypass
    smmu.set_reg("GBPA", 1 << 20)                    # ABORT without Update: ignored (6.3.14)
    assert smmu.translate(NIC, 0x1234)["pa"] == 0x1234
    smmu.set_reg("GBPA", (1 << 31) | (1 << 20))      # with Update
    assert smmu.reg("GBPA") == 1 << 20               # Update reads 0 once done
    r = smmu.translate(NIC, 0x1234)
    assert r["pa"] is None and r["event"] is None    # terminated, no event (3.2)


# -- configuration invalidation --------------------------------------------------------------

def test_changed_ste_translates_old_until_cfgi_ste(smmu):
    STE = fmt("STE")
    assert smmu.translate(GPU, GPU_IPA)["pa"] == 0x6000_0000
    words = smmu.read_ste(GPU)
    smmu.write_ste(GPU, STE.encode(words, V=0))      # software invalidates the STE in memory
    r = smmu.translate(GPU, GPU_IPA)
    assert r["fault"] is None                        # cached STE (and TLB) still used
    smmu.walker.invalidate_tlb()                     # even a fresh walk uses the cached STE
    assert smmu.translate(GPU, GPU_IPA)["fault"] is None
    log = one(smmu, "CMD_CFGI_STE", StreamID=GPU, Leaf=1)
    assert "removed 1" in log["effect"]
    assert smmu.translate(GPU, GPU_IPA)["fault"]["type"] == "C_BAD_STE"


def test_cfgi_ste_range_is_aligned(smmu):
    warm(smmu)
    smmu.translate(0x300, 0x1000)
    assert {c["sid"] for c in smmu.walker.cached_stes()} == {NIC, NVME, GPU, 0x300}
    # Range=0: 2^(0+1) StreamIDs with the low bit of StreamID ignored: 0x300..0x301.
    one(smmu, "CMD_CFGI_STE_RANGE", StreamID=0x301, Range=0)
    assert {c["sid"] for c in smmu.walker.cached_stes()} == {NIC, NVME, GPU}
    # Range=8: 512 StreamIDs 0x000..0x1FF -> NIC and NVME (and their CDs) go.
    one(smmu, "CMD_CFGI_STE_RANGE", StreamID=0x1AB, Range=8)
    assert {c["sid"] for c in smmu.walker.cached_stes()} == {GPU}
    assert smmu.walker.cached_cds() == []
    one(smmu, "CMD_CFGI_ALL")
    assert smmu.walker.cached_stes() == []


def test_cfgi_cd_and_cd_all(smmu):
    warm(smmu)
    assert {(c["sid"], c["ssid"]) for c in smmu.walker.cached_cds()} == \
        {(NIC, 0), (NIC, 1), (NVME, 0)}
    one(smmu, "CMD_CFGI_CD", StreamID=NIC, SubstreamID=1, Leaf=1)
    assert {(c["sid"], c["ssid"]) for c in smmu.walker.cached_cds()} == {(NIC, 0), (NVME, 0)}
    one(smmu, "CMD_CFGI_CD_ALL", StreamID=NIC)
    assert {(c["sid"], c["ssid"]) for c in smmu.walker.cached_cds()} == {(NVME, 0)}
    # CFGI_CD is not a TLB invalidation (4.3.3): the TLB keeps ASID 1/2 entries.
    assert any(e["asid"] == 2 for e in smmu.walker.tlb_entries())


# -- TLB invalidation -------------------------------------------------------------------------

def test_tlbi_nh_asid_keys_on_asid_and_vmid(smmu):
    before = warm(smmu)
    one(smmu, "CMD_TLBI_NH_ASID", VMID=1, ASID=3)    # nobody uses ASID 3
    assert kinds(smmu) == before
    one(smmu, "CMD_TLBI_NH_ASID", VMID=0, ASID=2)    # ASID 2 lives in VMID 1, not 0
    assert kinds(smmu) == before
    one(smmu, "CMD_TLBI_NH_ASID", VMID=1, ASID=2)
    assert kinds(smmu) == [k for k in before if k[2] != 2]


def test_tlbi_nh_va_and_vaa(smmu):
    before = warm(smmu)
    # NH_VA for ASID 2 at the ASID-1 address: the ASID-1 entry survives.
    one(smmu, "CMD_TLBI_NH_VA", VMID=1, ASID=2, Address=NIC_VA >> 12)
    assert kinds(smmu) == before
    one(smmu, "CMD_TLBI_NH_VA", VMID=1, ASID=1, Address=(NIC_VA + 0x1000) >> 12)
    assert ("NESTED", 1, 1, NIC_VA) not in kinds(smmu)        # the 2MB block containing it
    # NH_VAA: every ASID of the VMID at that VA.
    one(smmu, "CMD_TLBI_NH_VAA", VMID=0, Address=HOST_VA >> 12)
    assert ("S1", 0, 16, HOST_VA) not in kinds(smmu)
    assert ("S1", 0, 16, HOST_VA + 0x10000) in kinds(smmu)


def test_tlbi_nh_va_matches_global_entries(sysm, smmu):
    # Make the host-dma page at HOST_VA global (nG=0) and re-walk it.
    S1 = fmt("S1_BLOCK")
    r = smmu.walker.translate_uncached(NVME, HOST_VA, trace=True)
    leaf = [s for s in r["steps"] if s["what"] == "S1"][-1]
    smmu.mem.write_u64(leaf["desc_pa"], S1.encode([leaf["desc"]], nG=0)[0])
    assert smmu.translate(NVME, HOST_VA)["fault"] is None
    g = [e for e in smmu.walker.tlb_entries() if e["in_base"] == HOST_VA]
    assert g and g[0]["global"]
    one(smmu, "CMD_TLBI_NH_ASID", VMID=0, ASID=16)          # ASIDE1 keeps global entries
    assert [e for e in smmu.walker.tlb_entries() if e["in_base"] == HOST_VA]
    one(smmu, "CMD_TLBI_NH_VA", VMID=0, ASID=99, Address=HOST_VA >> 12)   # any ASID: global
    assert not [e for e in smmu.walker.tlb_entries() if e["in_base"] == HOST_VA]


def test_tlbi_nh_all_leaves_stage2_only_entries(smmu):
    warm(smmu)
    one(smmu, "CMD_TLBI_NH_ALL", VMID=1)
    assert kinds(smmu) == sorted([("S2", 1, None, GPU_IPA)] +
                                 [("S1", 0, 16, HOST_VA + i * 0x10000) for i in range(3)])


def test_tlbi_s12_vmall_removes_only_that_vmid(smmu):
    warm(smmu)
    one(smmu, "CMD_TLBI_S12_VMALL", VMID=1)
    # Combined (nested) and S2-only entries of VMID 1 go; VMID 0 (nvme0) stays.
    assert kinds(smmu) == [("S1", 0, 16, HOST_VA + i * 0x10000) for i in range(3)]


def test_tlbi_s2_ipa_leaves_combined_entries(smmu):
    before = warm(smmu)
    one(smmu, "CMD_TLBI_S2_IPA", VMID=1, Address=GPU_IPA >> 12)
    after = kinds(smmu)
    assert ("S2", 1, None, GPU_IPA) not in after
    # The nested entry's IPA (0x41000000) lies in vm0 too; 4.4.3.1 lets it survive.
    one(smmu, "CMD_TLBI_S2_IPA", VMID=1, Address=0x4100_0000 >> 12)
    assert ("NESTED", 1, 1, NIC_VA) in kinds(smmu)
    assert after == [k for k in before if k[0] != "S2"]


def test_tlbi_nsnh_all(smmu):
    warm(smmu)
    one(smmu, "CMD_TLBI_NSNH_ALL")
    assert smmu.walker.tlb_entries() == []


def test_range_invalidation_num_scale_tg_ttl(smmu):
    warm(smmu)
    host = lambda: sorted(e["in_base"] for e in smmu.walker.tlb_entries() if e["asid"] == 16)
    assert host() == [HOST_VA, HOST_VA + 0x10000, HOST_VA + 0x20000]
    # TG=64K, TTL=2: only level-2 leaves; these are level-3 pages -> nothing goes.
    one(smmu, "CMD_TLBI_NH_VA", VMID=0, ASID=16, Address=HOST_VA >> 12, TG=3, TTL=2,
        NUM=2, SCALE=0)
    assert len(host()) == 3
    # Range = (NUM+1) * 2^SCALE granules = 2 x 64K from HOST_VA.
    log = one(smmu, "CMD_TLBI_NH_VA", VMID=0, ASID=16, Address=HOST_VA >> 12, TG=3, NUM=1,
              SCALE=0, TTL=3)
    assert "removed 2" in log["effect"]
    assert host() == [HOST_VA + 0x20000]
    # SCALE: (0+1) * 2^1 x 4K = 8K from HOST_VA+0x20000 hits the 64K page containing it.
    one(smmu, "CMD_TLBI_NH_VAA", VMID=0, Address=(HOST_VA + 0x20000) >> 12, TG=1, SCALE=1)
    assert host() == []


@pytest.mark.parametrize("fields,why", [
    ({"TG": 1}, "NUM=0, SCALE=0, TTL=0"),        # Reserved combination (4.4.1.1)
    # TG=16K, TTL=1 without DS is treated as TTL=0, so for one granule it is the Reserved
    # combination (a range with NUM=1 is legal: test_device_spec.py).
    ({"TG": 2, "TTL": 1}, "16K"),
    ({"TTL": 2}, "TG=0"),                         # TTL is RES0 when TG=0
    ({"TTL128": 1, "TG": 1, "TTL": 3}, "TTL128"),
])
def test_range_field_errors(smmu, fields, why):
    log = smmu.submit([("CMD_TLBI_NH_VA", dict(VMID=0, ASID=1, **fields))])
    assert log[-1]["error"] == "CERROR_ILL" and why in log[-1]["effect"]


def test_el2_and_feature_gated_commands_are_illegal(smmu):
    # Default smmu0: no Hyp, ATS, PRI; STALL_MODEL=0b01 (no stalls).
    for cmd in (("CMD_TLBI_EL2_ALL", {}), ("CMD_ATC_INV", {"StreamID": NIC}),
                ("CMD_PRI_RESP", {"StreamID": NIC}), ("CMD_RESUME", {"StreamID": NIC}),
                ("CMD_STALL_TERM", {"StreamID": NIC})):
        log = smmu.submit([cmd])
        assert log[-1]["error"] == "CERROR_ILL", cmd
        smmu.set_reg("GERRORN", smmu.reg("GERROR"))          # ack; the same command fails again
        assert smmu.field("CMDQ_CONS", "ERR") == 1
        # Skip it as Linux does: replace with CMD_SYNC, then ack.
        from smmudbg.arch.smmuv3.events import encode_cmd
        smmu.mem.write(smmu.cmdq.slot_pa(smmu.reg("CMDQ_CONS")), encode_cmd("CMD_SYNC"))
        smmu.set_reg("GERRORN", smmu.reg("GERROR") ^ 1)
        smmu.set_reg("GERRORN", smmu.reg("GERROR"))
        assert not smmu.cmdq.error_active()


FEATURE_SYS = """
name = "feat"
[[ram]]
base = 0x4000_0000
size = 0x100_0000
[[smmu]]
name = "s"
features = { HYP = 1, ATS = 1, PRI = 1, STALL_MODEL = 0, S1P = 1, S2P = 0 }
stream_table = { format = "linear", log2size = 4 }
cmdq_log2size = 2
evtq_log2size = 1
pool = { base = 0x4000_0000, size = 0x10_0000 }
"""


def test_feature_present_commands_are_accepted_without_cache_effect():
    m = System.from_text(FEATURE_SYS).smmu()
    log = m.submit([("CMD_TLBI_EL2_ALL", {}), ("CMD_TLBI_EL2_ASID", {"ASID": 1}),
                    ("CMD_TLBI_EL2_VA", {"Address": 1}), ("CMD_TLBI_EL2_VAA", {"Address": 1}),
                    ("CMD_ATC_INV", {"StreamID": 1, "Size": 52}),
                    ("CMD_PRI_RESP", {"StreamID": 1, "Resp": 2}),
                    ("CMD_RESUME", {"StreamID": 1, "Ac": 1, "STAG": 3}),
                    ("CMD_STALL_TERM", {"StreamID": 1}),
                    ("CMD_PREFETCH_CONFIG", {"StreamID": 1}),
                    ("CMD_PREFETCH_ADDR", {"StreamID": 1, "Address": 4})])
    assert [r["error"] for r in log] == [None] * 10
    assert "not modelled" in log[4]["effect"] and "no effect" in log[8]["effect"]
    # Stage-2 commands on a stage-1-only SMMU are illegal (4.4.3).
    assert m.submit([("CMD_TLBI_S12_VMALL", {"VMID": 1})])[-1]["error"] == "CERROR_ILL"


def test_nh_commands_need_stage1():
    m = System.from_text(FEATURE_SYS.replace("S1P = 1, S2P = 0", "S1P = 0, S2P = 1")).smmu()
    for name in ("CMD_TLBI_NH_ALL", "CMD_CFGI_CD"):
        log = m.submit([(name, {})])
        assert log[-1]["error"] == "CERROR_ILL"
        # 7.1: while the error is active PROD may move back to CONS, dropping the bad command;
        # then the acknowledgement restarts an empty queue.
        m.set_reg("CMDQ_PROD", m.reg("CMDQ_CONS") & 0xFFFFF)
        assert m.set_reg("GERRORN", m.reg("GERROR")) == []
        assert not m.cmdq.error_active()


# -- CMD_SYNC ---------------------------------------------------------------------------------

def test_cmd_sync_msi_write_and_irq(smmu):
    addr = 0x4080_0000
    smmu.mem.write(addr, b"\xff" * 8)
    log = one(smmu, "CMD_SYNC", CS=1, MSIAddress=addr >> 2, MSIData=0x1234_5678)
    assert smmu.mem.read(addr, 8) == bytes.fromhex("78563412ffffffff")   # a 32-bit store
    assert smmu.irqs[-1]["source"] == "CMD_SYNC"
    n = len(smmu.irqs)
    one(smmu, "CMD_SYNC", CS=0, MSIAddress=addr >> 2, MSIData=1)      # SIG_NONE: ignored
    assert smmu.mem.read(addr, 4) == bytes.fromhex("78563412") and len(smmu.irqs) == n
    assert "MSI" in log["effect"]


# -- queue mechanics and errors ---------------------------------------------------------------

def test_queue_wrap_bits():
    m = System.from_text(FEATURE_SYS).smmu()                 # 4-entry command queue
    m.submit([("CMD_SYNC", {})] * 10)
    # 10 commands: index 10 mod 4 = 2, wrapped twice -> wrap bit (bit 2) = 0.
    assert m.reg("CMDQ_PROD") == 0b010 and m.reg("CMDQ_CONS") == 0b010
    m.submit([("CMD_SYNC", {})] * 3)
    assert m.reg("CMDQ_PROD") == 0b101 and m.reg("CMDQ_CONS") == 0b101   # idx 1, wrap 1
    assert m.cmdq.processed == 13


def test_illegal_command_stops_queue_and_resumes_after_ack(smmu):
    warm(smmu)
    log = smmu.submit([("CMD_SYNC", {}), ("CMD_TLBI_NH_ALL", {"VMID": 0}),
                       bytes([0x77]) + bytes(15),                     # Reserved opcode
                       ("CMD_TLBI_NSNH_ALL", {})])
    assert [r["error"] for r in log] == [None, None, "CERROR_ILL"]
    cons = smmu.reg("CMDQ_CONS")
    assert cons & 0xFFFFF == 2                                       # RD on the bad command
    assert (cons >> 24) & 0x7F == 1                                  # ERR = CERROR_ILL
    assert smmu.reg("GERROR") & 1 and not smmu.reg("GERRORN") & 1    # CMDQ_ERR active
    assert smmu.walker.tlb_entries()                                 # NSNH_ALL not run
    assert [e["state"] for e in smmu.cmdq_entries()][-2:] == ["CERROR_ILL", "pending"]
    # Writing PROD again does nothing while the error is active.
    assert smmu.set_reg("CMDQ_PROD", smmu.reg("CMDQ_PROD")) == []
    # Software replaces the bad command and acknowledges: the SMMU re-fetches at CONS.
    from smmudbg.arch.smmuv3.events import encode_cmd
    smmu.mem.write(smmu.cmdq.slot_pa(cons), encode_cmd("CMD_SYNC"))
    resumed = smmu.set_reg("GERRORN", smmu.reg("GERROR"))
    assert [r["command"] for r in resumed] == ["CMD_SYNC", "CMD_TLBI_NSNH_ALL"]
    assert smmu.walker.tlb_entries() == []


@pytest.mark.parametrize("cmd,why", [
    (("CMD_CFGI_STE", {"StreamID": 8, "SSec": 1}), "SSec=1"),
    (("CMD_SYNC", {"CS": 3}), "CS=0b11"),
    (bytes([0x03, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80]), "RES0"),  # dw1[63] of CFGI_STE
    (bytes([0x18]) + bytes(15), "Secure"),                                    # CMD_TLBI_EL3_ALL
])
def test_cerror_ill_reasons(smmu, cmd, why):
    log = smmu.submit([cmd])
    assert log[-1]["error"] == "CERROR_ILL" and why in log[-1]["effect"]


def test_command_fetch_abort_is_cerror_abt():
    mem = PhysMem(strict=True)
    mem.ram(0x4000_0000, 0x10_0000)
    m = Smmu("s", mem, pool={"base": 0x4000_0000, "size": 0x10_0000})
    m.setup_stream_table("linear", 4)
    m.set_reg("CMDQ_BASE", (0x8000_0000 >> 5) << 5 | 2)   # no memory there
    m.set_reg("CR0", 0b1000)
    log = m.set_reg("CMDQ_PROD", 1)
    assert log[0]["error"] == "CERROR_ABT"
    assert (m.reg("CMDQ_CONS") >> 24) & 0x7F == 2 and m.reg("CMDQ_CONS") & 0xFFFFF == 0


def test_drop_next_invalidations(smmu):
    before = warm(smmu)
    smmu.drop_next_invalidations(2)
    log = smmu.submit([("CMD_TLBI_NSNH_ALL", {}), ("CMD_SYNC", {}), ("CMD_CFGI_ALL", {}),
                       ("CMD_TLBI_NH_ASID", {"VMID": 1, "ASID": 1})])
    assert [bool(r.get("dropped")) for r in log] == [True, False, True, False]
    assert kinds(smmu) == [k for k in before if k[2] != 1]
    assert smmu.walker.cached_stes()                  # CFGI_ALL was dropped


def test_submit_rejects_bad_input(smmu):
    with pytest.raises(ModelError):
        smmu.submit([b"short"])
    with pytest.raises(ModelError):
        smmu.submit([("CMD_NOPE", {})])
    with pytest.raises(ModelError):
        smmu.submit([("CMD_SYNC", {"CS": 9})])
