"""Time travel from checkpoints: the state after `goto N` equals the state after a fresh
rebuild that runs the first N commands (registers, memory, caches, events, tables)."""
import pytest

from smmudbg import session as session_mod
from smmudbg.model import checkpoint as ckpt
from smmudbg.model import scenario as sc
from smmudbg.session import Session

# The walker caches can only be checkpointed once Walker.export_caches exists; until then the
# checkpoint path is exercised with caching off (the default scenario otherwise).
NOCACHE = sc.builtin("default").replace("evtq_log2size = 7\n",
                                        "evtq_log2size = 7\ncaching = false\n", 1)

SCRIPT = [
    "walk nic0 0x10000123",
    "map nic0-dma 0x30000000 0x42000000 0x10000",
    "walk nic0 0x30000010 access=write",
    "inject unmap vm0-s2 0x41000000",
    "walk nic0 0x10000123",
    "ste nic0",
    "set reg smmu0 IRQ_CTRL GERROR_IRQEN=1 EVENTQ_IRQEN=1",
    "cmd smmu0 CMD_TLBI_S12_VMALL VMID=1",
    "unmap nic0-dma 0x30000000 0x1000",
    "walk nic0 0x30000010",
    "set ste gpu0 V=0",
    "walk gpu0 0x1000",
    "inject event smmu0 F_TRANSLATION",
    "drop-invalidations smmu0 1",
    "cmd smmu0 CMD_CFGI_STE SID=0x200",
    "cmd smmu0 CMD_SYNC",
    "consume-events smmu0 1",
    "map host-dma 0x1_0000_0000 0x5100_0000 0x20000",
    "walk nvme0 0x1_0000_0040",
    "set reg smmu0 CR0 SMMUEN=0",
    "walk nvme0 0x1_0000_0040",
    "set reg smmu0 CR0 SMMUEN=1",
    "walk nvme0 0x1_0000_0040",
]
# With Walker.export_caches (the core-walk branch) the same tests cover cached state too.
from core_cy.walk import Walker  # noqa: E402
SCENARIOS = [NOCACHE] + ([sc.builtin("default")] if hasattr(Walker, "export_caches") else [])

PROBES = ("regs smmu0", "tlb smmu0", "cfgcache smmu0", "events smmu0", "pt vm0-s2",
          "pt nic0-dma", "pt host-dma", "ste gpu0", "ste nic0", "cd nic0")


def run(s, lines):
    for line in lines:
        s.execute(line)
    return s


def same_memory(a, b):
    """Both memories were built alike and have tracked writes since (the checkpoint at 0):
    compare every page either one wrote since."""
    assert a.regions() == b.regions()
    pfns = set(a.written_pfns()) | set(b.written_pfns())
    assert pfns
    return all(a.read(p << 12, 4096) == b.read(p << 12, 4096) for p in sorted(pfns))


def state(s):
    return {p: (lambda o: o.result.data if o.ok else o.error)(s.execute(p)) for p in PROBES}


@pytest.fixture
def every4(monkeypatch):
    monkeypatch.setattr(session_mod, "CHECKPOINT_EVERY", 4)


def test_script_is_mixed():
    s = run(Session(NOCACHE), SCRIPT)
    ok = [e.ok for e in s.log]
    assert sum(ok) >= len(SCRIPT) - 2, [(e.command, e.error) for e in s.log if not e.ok]
    assert s.system.smmu().evtq.written >= 2


@pytest.mark.parametrize("text", SCENARIOS, ids=["nocache", "cached"][:len(SCENARIOS)])
def test_goto_from_checkpoints_equals_rebuild(every4, monkeypatch, text):
    s = run(Session(text), SCRIPT)
    assert set(s._checkpoints) >= {0, 4, 8, 12, 16, 20}
    final = state(s)
    refs = {n: run(Session(text), SCRIPT[:n]) for n in (0, 3, 9, 13, 17, len(SCRIPT))}
    # Time travel must restore, never rebuild.
    monkeypatch.setattr(Session, "_fresh_system",
                        lambda self: pytest.fail("goto rebuilt the system"))
    for n in (13, 3, 17, 0, 9, 3, len(SCRIPT)):
        ran = s.goto(n)
        assert ran < 4, (n, ran)                   # only the commands after a checkpoint
        ref = refs[n]
        assert state(s) == state(ref), n
        assert same_memory(s.system.mem, ref.system.mem), n
        assert s.system.smmu().irqs == ref.system.smmu().irqs, n
    assert state(s) == final
    assert len(s.log) == len(SCRIPT) + len(PROBES)    # probes in the past are not logged


def test_new_history_after_goto_drops_later_checkpoints(every4):
    s = run(Session(NOCACHE), SCRIPT)
    s.goto(6)
    s.execute("map nic0-dma 0x31000000 0x42000000 0x1000")
    assert max(s._checkpoints) <= 7 and len(s.log) == 7
    run(s, SCRIPT[6:10])
    ref = run(Session(NOCACHE), SCRIPT[:6] + ["map nic0-dma 0x31000000 0x42000000 0x1000"]
              + SCRIPT[6:10])
    s.goto(9)
    ref9 = run(Session(NOCACHE), [e.command for e in ref.log[:9]])
    assert state(s) == state(ref9) and same_memory(s.system.mem, ref9.system.mem)
    s.goto(len(s.log))
    assert state(s) == state(ref) and same_memory(s.system.mem, ref.system.mem)


def test_checkpoint_restore_puts_state_back_in_the_same_objects():
    s = Session(NOCACHE)
    sys_ = s.system
    smmu = sys_.smmu()
    cp = ckpt.capture(sys_)
    regs, alloc_next = dict(smmu.regs), sys_.domain("nic0-dma").tables.alloc.next
    run(s, ["map nic0-dma 0x30000000 0x42000000 0x200000", "walk nic0 0x5000",
            "set reg smmu0 IRQ_CTRL GERROR_IRQEN=1"])
    assert smmu.regs != regs and smmu.evtq.written == 1
    cp.restore()
    assert s.system.smmu() is smmu and smmu.regs == regs and smmu.evtq.written == 0
    assert sys_.domain("nic0-dma").tables.alloc.next == alloc_next
    assert smmu.walker.translate(8, 0x30000000)["fault"]["type"] == "F_TRANSLATION"


def test_caching_walkers_without_cache_export_are_not_checkpointed():
    s = Session()                                  # caching on
    if hasattr(s.system.smmu().walker, "export_caches"):
        pytest.skip("the walker exports its caches")
    assert ckpt.capture(s.system) is None and not s._checkpoints


def test_checkpoints_are_thinned_and_goto_still_matches(monkeypatch):
    monkeypatch.setattr(session_mod, "CHECKPOINT_EVERY", 1)
    monkeypatch.setattr(session_mod, "MAX_CHECKPOINTS", 6)
    s = run(Session(NOCACHE), SCRIPT)
    assert 0 in s._checkpoints and len(s._checkpoints) <= 6
    assert len(SCRIPT) in s._checkpoints
    for n in (5, 14, 1):
        s.goto(n)
        ref = run(Session(NOCACHE), SCRIPT[:n])
        assert state(s) == state(ref) and same_memory(s.system.mem, ref.system.mem), n
