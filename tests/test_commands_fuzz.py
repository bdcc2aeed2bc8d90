"""Hypothesis fuzzing of the command parser and dispatcher: whatever the line, the only thing
that comes out is a Result or a one-line error (never an exception)."""
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smmudbg.commands import REGISTRY
from smmudbg.session import Session

SESSION = Session()
WORDS = sorted({w for n in REGISTRY.commands for w in n.split()}) + [
    "nic0", "gpu0", "smmu0", "vm0-s2", "nic0-dma", "0x8", "0x10000123", "ssid=1", "ssid=x",
    "access=write", "priv", "V=0", "Config=nested", "S2T0SZ=8", "'", '"', "#", "=", "-1",
    "0xffffffffffffffffff", "4K", "stage=2", "vm=vm0", "StreamID=8", "CMD_SYNC", "Addr=0x1000",
    "==", "pa", "fault.type", "len(steps)", "perm=w", "count=0", "field=Config"]

@pytest.fixture(autouse=True, scope="module")
def _in_a_scratch_dir(tmp_path_factory):
    """`save FILE` and friends are among the fuzzed words: let them write into a scratch dir."""
    old = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("fuzz"))
    yield
    os.chdir(old)


lines = st.lists(st.sampled_from(WORDS) | st.text(max_size=12), min_size=0, max_size=7).map(
    " ".join)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines)
def test_fuzz_execute(line):
    s = Session() if len(SESSION.log) > 200 else SESSION
    out = s.execute(line)
    if out.ok:
        out.result.to_json()
    else:
        assert out.error and "\n" not in out.error
        assert not out.error.startswith("internal error"), (line, out.error)


@settings(max_examples=800, deadline=None)
@given(lines)
def test_fuzz_complete(line):
    c = REGISTRY.complete(SESSION, line)
    assert isinstance(c, list) and all(isinstance(x, str) for x in c)
