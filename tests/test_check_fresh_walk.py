"""`check` compares each cached entry with a fresh walk of the same privilege, and finds the
permissions a page really has (issue 14: "a nested `walk ... priv` followed by `check` lists
false stale entries").

Found root causes, each with a regression test below:
- The fresh walk was a read only. A page an access of another kind may use but a read may not
  faulted F_PERMISSION and was reported as "fresh walk gives permission ---, the entry --x":
  stage-1 EL0 execute-only (AP=0b00 or 0b10 with UXN=0: EL0 has no data access but may fetch
  instructions, Arm ARM D8.4) after any walk that cached it, priv or not; stage-2 write-only
  (S2AP=0b10).
- A CD cached under SubstreamID 0 was re-walked without a SubstreamID even when STE.S1DSS is
  terminate or bypass (IHI 0070 5.2: then CD 0 serves SubstreamID 0 and traffic without one is
  terminated or bypasses stage 1), so its IOTLB entries had "no stream" using them.
Then a pinned matrix: every example scenario and the real QEMU dump, every stream and
SubstreamID with a mapping, privileged and not, read, write and instruction fetch: a walk
(which fills the caches) followed by `check` with no change to memory reports nothing stale.
"""
import itertools
from pathlib import Path

import pytest

from smmudbg.session import Session

ROOT = Path(__file__).resolve().parent.parent
QEMU = ROOT / "tests" / "fixtures" / "qemu"


def ok(s, line):
    out = s.execute(line)
    assert out.ok, f"{line}: {out.error}"
    return out.result.to_json()


def stale(s):
    return [x["problem"] for m in ok(s, "check")["smmus"] for x in m["stale"]]


def leaf_of(s, where, addr):
    return ok(s, f"pt {where} addr={addr:#x}")["leaf"]["desc_addr"]


ACCESSES = [(acc, priv) for acc in ("read", "write", "exec") for priv in ("", " priv")]


@pytest.mark.parametrize("ap", [0, 2])
@pytest.mark.parametrize("acc, priv", ACCESSES)
def test_el0_execute_only_page_is_not_stale(ap, acc, priv):
    # nic0 (nested) IOVA 0x1000_0000: a stage-1 block whose unprivileged permission becomes
    # execute-only (AP=0b00 EL1 rw / 0b10 EL1 r, EL0 none; UXN=0): the IOTLB entry holds "--x".
    s = Session()
    d = leaf_of(s, "nic0", 0x1000_0000)
    ok(s, f"set desc {d:#x} stage=1 kind=leaf vm=vm0 AP={ap} UXN=0 PXN=0")
    w = ok(s, f"walk nic0 0x10000000 access={acc}{priv}")
    tlb = ok(s, "tlb smmu0")["entries"]
    assert stale(s) == []
    # EL0 may not read or write it, EL1 not write it with AP=0b10: those walks fault
    # F_PERMISSION and fill no IOTLB entry.
    refused = (not priv and acc != "exec") or (ap == 2 and acc == "write")
    assert (w["fault"] or {}).get("type") == ("F_PERMISSION" if refused else None)
    if refused:
        assert tlb == []
        return
    assert [e["perm_unpriv"] for e in tlb] == ["--x"]
    # The check still sees a real change: UXN=1 in memory, no TLBI.
    ok(s, f"set desc {d:#x} stage=1 kind=leaf vm=vm0 UXN=1")
    assert any("unprivileged permission ---, the entry --x" in p for p in stale(s))


def test_stage_2_write_only_page_is_not_stale():
    # gpu0 (stage 2 only) IPA 0x4020_0000: a 2 MiB block made write-only (S2AP=0b10).
    s = Session()
    d = leaf_of(s, "vm0-s2", 0x4020_0000)
    ok(s, f"set desc {d:#x} stage=2 kind=leaf S2AP=2")
    ok(s, "walk gpu0 0x40200000 access=write")
    assert [e["perm_priv"][:2] for e in ok(s, "tlb smmu0")["entries"]] == ["-w"]
    assert stale(s) == []
    ok(s, f"set desc {d:#x} stage=2 kind=leaf S2AP=0")
    assert stale(s) != []


@pytest.mark.parametrize("s1dss", ["terminate", "bypass"])
def test_substreamid_0_under_s1dss_terminate_or_bypass(s1dss):
    s = Session()
    ok(s, f"set ste smmu0 8 S1DSS={s1dss}")
    ok(s, "cmd smmu0 CMD_CFGI_STE StreamID=8 Leaf=1")
    ok(s, "cmd smmu0 CMD_SYNC")
    assert ok(s, "walk nic0 0x10000000 ssid=0")["fault"] is None
    assert stale(s) == []
    ok(s, "unmap nic0-dma 0x10000000 2M")          # no TLBI: now it is stale
    assert any("SSID 0x0" in p and "F_TRANSLATION" in p for p in stale(s))


# -- the pinned matrix ----------------------------------------------------------------------
def _sessions():
    yield "default", Session
    for p in sorted((ROOT / "examples").glob("*.toml")):
        # large*: the same configurations, x 65,536; VT-d only: no SMMU to walk
        if p.name not in ("large.toml", "large-system.toml") and "[[smmu]]" in p.read_text():
            yield p.name, (lambda p=p: Session(p.read_text(), str(p)))
    yield "qemu-dump", _qemu


def _qemu():
    s = Session()
    ok(s, f"import qemu {QEMU / 'memory.elf.xz'} --regs {QEMU / 'regs.json'}")
    return s


def _walkable(s):
    """(smmu, sid, ssid, [IOVAs]) of every translated stream/SubstreamID with a mapping: the
    first page of its first mappings and the last page of the first."""
    out = {}
    for h in ok(s, "find pa=0..0x10000000000000")["hits"]:
        if h["stage"] == "bypass":
            continue
        v = out.setdefault((h["smmu"], h["sid"], h["ssid"]), [])
        if len(v) < 2:
            v.append(h["iova"])
            if len(v) == 1 and h["size"] > 0x1000:
                v.append(h["iova"] + h["size"] - 0x1000)
    return out


@pytest.mark.parametrize("name, make", list(_sessions()), ids=[n for n, _ in _sessions()])
def test_no_stale_entry_after_any_walk_without_changes(name, make):
    s = make()
    streams = _walkable(s)
    assert streams, f"{name}: no translated mapping to walk"
    walks = 0
    for (smmu, sid, ssid), iovas in streams.items():
        for iova, (acc, priv) in itertools.product(iovas, ACCESSES):
            line = f"walk {smmu} {sid:#x} {iova:#x}" + \
                ("" if ssid is None else f" ssid={ssid}") + f" access={acc}{priv}"
            ok(s, line)
            walks += 1
            assert stale(s) == [], f"{name}: after {line}"
    assert walks >= 12
