"""Issue 15 reproducers at the command, session and model level, each with the exact input from
the issue: an answer or a one-line error naming what and where, within a second, never
"internal error"."""
from __future__ import annotations

import time

import pytest

from smmudbg.session import Session

from test_fuzz_inputs import bounded


def run(lines, within: float = 1.0, session: Session | None = None):
    """Execute each line in a fresh session (or the one given); every line must answer within
    `within` seconds and any error must be one line, not an internal error. Returns the
    Outcomes."""
    s = session or Session()
    outs = []
    for line in lines:
        t0 = time.monotonic()
        with bounded(max(10.0, within * 10)):       # a hang fails instead of blocking
            out = s.execute(line)
        took = time.monotonic() - t0
        assert took < within, f"{line!r} took {took:.1f} s"
        if not out.ok:
            assert "\n" not in out.error and len(out.error) < 300, out.error
            assert "internal error" not in out.error, (line, out.error)
        else:
            out.result.to_json()
        outs.append(out)
    return outs


# -- numbers the registry's types refuse ----------------------------------------------------------
def test_map_size_beyond_64_bits():
    out, = run(["map vm0-s2 0x0 0x0 0x10000000000000000"])
    assert out.error == "map: size: 0x10000000000000000 is above 0xffffffffffffffff"


@pytest.mark.parametrize("line,message", [
    ("map vm0-s2 0x0 0x0 -1", "map: size: -1 is below 0x1"),
    ("unmap vm0-s2 0x0 0x10000000000000000",
     "unmap: size: 0x10000000000000000 is above 0xffffffffffffffff"),
    ("mem -0x1000", "mem: address: -0x1000 is not a 64-bit address"),
    ("goto 0x10000000000000000", "goto: n: 0x10000000000000000 is above 0xffffffffffffffff"),
    ("strtab smmu0 sid=-5", "strtab: sid: -5 is negative"),
])
def test_numbers_outside_64_bits_are_refused_by_the_type(line, message):
    out, = run([line])
    assert out.error == message


def test_thousands_of_digits_are_refused_quickly_and_quoted_short():
    for digits in ("9" * 5000, "0x" + "f" * 5000):
        out, = run([f"drop-invalidations smmu0 {digits}"])
        assert out.error.startswith("drop-invalidations: n: ") and "is not a number" in out.error
        assert f"({len(digits)} chars)" in out.error


def test_drop_invalidations_huge_is_refused_before_it_is_stored():
    """Issue: the value was stored, and the next `cmdq` aborted the script (exit 70)."""
    s = Session()
    out, = run(["drop-invalidations smmu0 99999999999999999999999"], session=s)
    assert out.error == ("drop-invalidations: n: 99999999999999999999999 is above "
                         "0xffffffffffffffff")
    assert s.system.smmu("smmu0").cmdq.drop_budget == 0
    cmdq, = run(["cmdq smmu0"], session=s)
    assert cmdq.ok and cmdq.result.to_json()["drop_budget"] == 0


def test_unmap_beyond_the_input_range_is_refused_not_wrapped():
    """vm0-s2 has a 40-bit IPA space (default scenario): the tables index IPA bits [39:12]
    only, so an unmap past 2^40 used to wrap around and walk them again and again."""
    out, = run(["unmap vm0-s2 0x1000 0x8000000000000000"])
    assert out.error == "unmap vm0-s2: 0x1000+0x8000000000000000 exceeds the 40-bit input range"


# -- stream table: bounded by its effective size and by what memory holds -------------------------
def test_strtab_log2size_40_is_bounded_by_sidsize():
    """Issue: `set reg smmu0 STRTAB_BASE_CFG FMT=0 LOG2SIZE=40` then `strtab smmu0` ran for
    minutes. IDR1.SIDSIZE is 16 in the default scenario: 2^16 STEs exist, no more."""
    s = Session()
    run(["set reg smmu0 CR0 SMMUEN=0"], session=s)      # (STRTAB_BASE_CFG is guarded by SMMUEN)
    _, out = run(["set reg smmu0 STRTAB_BASE_CFG FMT=0 LOG2SIZE=40", "strtab smmu0"], session=s)
    d = out.result.to_json()
    assert d["log2size"] == 16          # the effective size, not the raw field (40)
    assert all(e["sid"] < 1 << 16 for e in d["entries"])
    err, = run(["ste smmu0 0x10000"], session=s)
    assert err.error == "smmu0: StreamID 0x10000 is beyond the stream table (LOG2SIZE 16)"
    run(["strtab smmu0 all", "strtab smmu0 sid=0xfff0 count=0x100000", "check"], session=s)


def _sidsize32(text: str) -> str:
    return text.replace("SIDSIZE = 16", "SIDSIZE = 32")


def test_strtab_of_2_to_the_32_linear_stes_skips_what_has_no_memory():
    """SIDSIZE 32, linear LOG2SIZE 32: 256 GiB of STEs architected, 1 GiB of RAM behind the
    base. The listing reads what memory holds, and stops after SCAN_SLOTS slots with more=True
    (sid= continues)."""
    from smmudbg.model import scenario as sc
    from smmudbg.model.views import SmmuViews
    s = Session(_sidsize32(sc.builtin("default")))
    run(["set reg smmu0 CR0 SMMUEN=0",
         "set reg smmu0 STRTAB_BASE_CFG FMT=0 LOG2SIZE=32 SPLIT=0"], session=s)
    out, more = run(["strtab smmu0 all", "strtab smmu0 sid=0x1000000"], session=s)
    assert out.result.to_json()["log2size"] == 32 and len(out.result.to_json()["entries"]) == 64
    d = more.result.to_json()
    # RAM ends at 0x80000000: StreamIDs from (0x80000000 - 0x40000000) / 64 = 0x1000000 on
    # have no memory behind their STE; the rest of the 2^32 is skipped, not read.
    assert d["entries"] == [] and d["more"] is False
    assert SmmuViews.SCAN_SLOTS < 1 << 32


def test_check_over_a_2_to_the_32_linear_table_is_bounded():
    from smmudbg.model import scenario as sc
    s = Session(_sidsize32(sc.builtin("default")))
    run(["set reg smmu0 CR0 SMMUEN=0",
         "set reg smmu0 STRTAB_BASE_CFG FMT=0 LOG2SIZE=32 SPLIT=0",
         "set reg smmu0 CR0 SMMUEN=1", "check", "tlb smmu0"], within=3.0, session=s)
