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
