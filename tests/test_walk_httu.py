"""Hardware update of the Access flag and dirty state (HTTU), walker and refwalk side by side.

Expected values come from IHI 0070 3.13 and the Arm ARM D8.5.2:
  * 3.13.2: with HA, a descriptor with AF == 0 that would cause an Access fault instead gets
    AF = 1 written; without it, F_ACCESS.
  * 3.13.3.1: with dirty-state update enabled, "if a descriptor is read-only only as a result
    of AP[2:1] == 0b1x at stage 1, or non-writable using S2AP[1:0] == 0b0x at stage 2, then if
    DBM == 1 and a translation for write occurs, the SMMU atomically sets AP[2] to 0 [S2AP[1]
    to 1]"; "If DBM == 0, the page has no write permission and a write translation results in
    a Permission fault"; not applicable where APTable removes write access.
  * CD.HA/HD (5.4): {HD, HA} = 0b10 behaves as 0b00; STE.S2HA/S2HD (5.2) the same for 0b01.
  * Arm ARM D8.5.2.2 RTTLCV: a writable-clean descriptor is writable for WXN.
Descriptor bits are written by hand (Arm ARM D8.3): AF [10], AP[2:1] / S2AP[1:0] [7:6],
DBM [51], APTable [62:61].
"""
import pytest

from smmudbg import refwalk
from walkkit import Kit, s1_kit

AF, DBM, AP2, S2AP_W = 1 << 10, 1 << 51, 1 << 7, 1 << 7
VA, IPA_OUT = 0x40_0000, 0x8020_0000


def _both(k, addr, write, priv=True):
    cy = k.walker.translate(1, addr, None, write=write, instr=False, priv=priv, trace=False)

    def read64(pa):
        return k.mem.read_u64(pa)
    ref = refwalk.translate(read64, k.caps, k.strtab, 1, addr, write=write, priv=priv)
    return cy, ref


def _s1(ha, hd, httu=2, write=False, af=True, extra_clear=0, extra_set=0):
    """Stage 1 only: one 4K page at VA, read-only (AP = 0b10: EL1 read-only)."""
    k, s1, cd = s1_kit(cd_extra={"HA": ha, "HD": hd})
    k.caps["HTTU"] = httu
    k.walker = type(k.walker)(k.mem, k.caps)
    k.walker.configure(strtab_base=k.strtab["base"], strtab_fmt=0,
                       strtab_log2size=k.strtab["log2size"], caching=False)
    s1.map(VA, 0x4800_0000, 0x1000, write=write, user=False, af=af)
    _, daddr, d = s1.lookup(VA)
    k.mem.write_u64(daddr, (d | extra_set) & ~extra_clear)
    return k, daddr


def _kind(r):
    return r["fault"]["type"] if r["fault"] else None


def test_dbm_write_with_ha_hd_makes_the_page_dirty():
    k, daddr = _s1(ha=1, hd=1, extra_set=DBM)
    assert k.mem.read_u64(daddr) & AP2                       # writable-clean
    cy, ref = _both(k, VA + 0x10, write=True)
    assert _kind(cy) is None and _kind(ref) is None
    assert cy["perm"] == ref["perm"] == "rw-"
    d = k.mem.read_u64(daddr)
    assert not d & AP2 and d & DBM and d & AF                # AP[2] := 0; DBM, AF stay


def test_dbm_read_does_not_make_the_page_dirty_but_it_reads_writable():
    k, daddr = _s1(ha=1, hd=1, extra_set=DBM)
    cy, ref = _both(k, VA, write=False)
    assert _kind(cy) is None and cy["perm"] == ref["perm"] == "rw-"
    assert k.mem.read_u64(daddr) & AP2                       # no write: still clean


@pytest.mark.parametrize("ha,hd,httu,dbm", [
    (1, 0, 2, 1),      # HD = 0: no dirty-state update
    (0, 1, 2, 1),      # {HD, HA} = 0b10 "behaves as though this field is 0 and CD.HD is 0"
    (1, 1, 2, 0),      # "If DBM == 0, the page has no write permission"
])
def test_write_to_read_only_page_faults_without_dirty_update(ha, hd, httu, dbm):
    k, daddr = _s1(ha=ha, hd=hd, httu=httu, extra_set=DBM if dbm else 0)
    before = k.mem.read_u64(daddr)
    cy, ref = _both(k, VA, write=True)
    assert _kind(cy) == _kind(ref) == "F_PERMISSION"
    assert k.mem.read_u64(daddr) == before


def test_dbm_does_not_override_aptable():
    # 3.13.3.1: "not applicable to a descriptor that is made effectively read-only because of
    # the hierarchical control of access permissions using APTable". Set APTable[1] (bit 62,
    # no write below) in every table descriptor on the way to VA.
    k, daddr = _s1(ha=1, hd=1, extra_set=DBM)
    # Walk the 4K tables from TTB0 by hand: levels 0..2 are table descriptors.
    ttb = k.walker.translate(1, VA, None, trace=True)["steps"]
    for st in ttb:
        if st["what"] == "S1" and st["level"] < 3:
            k.mem.write_u64(st["desc_pa"], k.mem.read_u64(st["desc_pa"]) | (1 << 62))
    before = k.mem.read_u64(daddr)
    cy, ref = _both(k, VA, write=True)
    assert _kind(cy) == _kind(ref) == "F_PERMISSION"
    assert k.mem.read_u64(daddr) == before


def test_ha_sets_af_instead_of_access_fault():
    k, daddr = _s1(ha=1, hd=0, httu=1, write=True, af=False)
    assert not k.mem.read_u64(daddr) & AF
    cy, ref = _both(k, VA, write=False)
    assert _kind(cy) is None and _kind(ref) is None
    assert k.mem.read_u64(daddr) & AF                        # set by the walk
    k2, _ = _s1(ha=0, hd=0, httu=1, write=True, af=False)
    cy, ref = _both(k2, VA, write=False)
    assert _kind(cy) == _kind(ref) == "F_ACCESS"


def _s2(s2ha, s2hd, httu=2):
    """Nested: the stage-2 leaf under the guest page's output is made non-writable
    (S2AP[1] = 0) with DBM = 1."""
    k = Kit(caps={"HTTU": httu})
    s2 = k.stage2(4096, 40)
    s1 = k.stage1(4096, 48, nested=True)
    s1.map(VA, IPA_OUT, 0x1000)
    cd = k.put_cd(k.cd_words(s1), nested=True)
    k.put_ste(1, V=1, Config=7, S1ContextPtr=cd >> 6, S2HA=s2ha, S2HD=s2hd,
              **k.ste_s2_fields())
    k.walker.configure(caching=False)
    # The 2MB stage-2 block holding IPA_OUT (the guest's tables and CD are in the one below).
    _, daddr, d = s2.lookup(IPA_OUT)
    k.mem.write_u64(daddr, (d | DBM) & ~S2AP_W)
    return k, daddr


def test_stage2_dbm_write_with_s2ha_s2hd_sets_s2ap_w():
    k, daddr = _s2(1, 1)
    cy, ref = _both(k, VA, write=True)
    assert _kind(cy) is None and _kind(ref) is None
    assert k.mem.read_u64(daddr) & S2AP_W                    # S2AP[1] := 1


@pytest.mark.parametrize("s2ha,s2hd", [(1, 0), (0, 1)])
def test_stage2_dbm_write_without_dirty_update_faults(s2ha, s2hd):
    # (0, 1): {S2HA, S2HD} = 0b01 "behaves as (STE.S2HA == 0 and STE.S2HD == 0)".
    k, daddr = _s2(s2ha, s2hd)
    cy, ref = _both(k, VA, write=True)
    assert _kind(cy) == _kind(ref) == "F_PERMISSION"
    assert cy["fault"]["s2"] and ref["fault"]["s2"]
    assert not k.mem.read_u64(daddr) & S2AP_W


def test_writable_clean_is_not_cached_so_a_later_write_still_updates():
    # Arm ARM D8.5.2.1 RNSXRD/RRNMLQ: a write through a writable-clean descriptor updates it
    # to writable-dirty. A read first, then a write with caching on: the write must still
    # leave AP[2] = 0 in memory (a cached writable entry would skip the update).
    k, daddr = _s1(ha=1, hd=1, extra_set=DBM)
    k.walker.configure(caching=True)
    assert k.walker.translate(1, VA, None, priv=True)["fault"] is None
    assert k.mem.read_u64(daddr) & AP2
    assert k.walker.translate(1, VA, None, write=True, priv=True)["fault"] is None
    assert not k.mem.read_u64(daddr) & AP2
    # Now dirty: it is cached, and the next write hits the IOTLB.
    assert k.walker.translate(1, VA, None, write=True, priv=True, trace=True)["hit"]
