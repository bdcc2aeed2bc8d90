"""Event queue: records bit by bit (IHI 0070 7.3 layouts written out here), overflow (7.4),
EVENTQEN and write aborts (7.2)."""
import struct

from core_cy.physmem import PhysMem
from smmudbg.model.smmu import Smmu
from smmudbg.model.system import System


def dwords(ev):
    return struct.unpack("<4Q", bytes.fromhex(ev["raw"]))


def test_stage1_translation_fault_record_bits():
    m = System.default().smmu()
    # nic0 SID 0x8, SSID 1 (ASID 2 domain), unmapped VA, write, privileged.
    r = m.translate(0x8, 0x7f00_1234_5000, 1, access="write", priv=True)
    assert r["fault"]["type"] == "F_TRANSLATION" and r["event"] == 0
    dw = dwords(m.events()[0])
    # dw0: Type 0x10 [7:0], SSV [11], SubstreamID [31:12], StreamID [63:32].
    assert dw[0] == 0x10 | (1 << 11) | (1 << 12) | (0x8 << 32)
    # dw1: PnU [33] = 1, InD [34] = 0, RnW [35] = 0 (write), S2 [39] = 0, CLASS [41:40] = IN (2).
    assert dw[1] == (1 << 33) | (2 << 40)
    assert dw[2] == 0x7f00_1234_5000          # InputAddr
    assert dw[3] == 0                         # no IPA for a stage-1 fault


def test_stage2_fault_record_bits():
    m = System.default().smmu()
    # gpu0 SID 0x200 is stage-2 only over vm0 RAM (IPA 0x4000_0000 + 256MB); read, instruction.
    ipa = 0x5000_0000 + 0x3000
    r = m.translate(0x200, ipa, access="exec")
    assert r["fault"]["type"] == "F_TRANSLATION" and r["fault"]["s2"]
    dw = dwords(m.events()[0])
    assert dw[0] == 0x10 | (0x200 << 32)
    # InD [34] = 1, RnW [35] = 1 (an instruction fetch is a read), S2 [39], CLASS IN.
    assert dw[1] == (1 << 34) | (1 << 35) | (1 << 39) | (2 << 40)
    assert dw[2] == ipa
    assert dw[3] == (ipa >> 12) << 12         # IPA[55:12] in dword 3


def test_config_error_records():
    m = System.default().smmu()
    m.translate(0x302, 0x1000)                # same L2 table as 0x300, STE V=0
    m.translate(0x300, 0x1000, 5)             # bypass STE with a SubstreamID
    evs = m.events()
    assert [e["event"] for e in evs] == ["C_BAD_STE", "C_BAD_SUBSTREAMID"]
    assert dwords(evs[0])[0] == 0x04 | (0x302 << 32)
    # C_BAD_SUBSTREAMID has no SSV field: SubstreamID [31:12], StreamID [63:32] (7.3.9).
    assert dwords(evs[1])[0] == 0x08 | (5 << 12) | (0x300 << 32)
    assert m.translate(0x301, 0x1000)["event"] is None    # Config=abort: no event


TINY = """
name = "tiny"
[[ram]]
base = 0x4000_0000
size = 0x100_0000
[[smmu]]
name = "s"
stream_table = { format = "linear", log2size = 4 }
cmdq_log2size = 2
evtq_log2size = 1
pool = { base = 0x4000_0000, size = 0x10_0000 }
"""


def test_overflow_flag_and_acknowledge():
    m = System.from_text(TINY).smmu()         # 2-entry event queue, all STEs V=0
    for sid in range(3):
        m.translate(sid, 0)
    assert [e["fields"]["StreamID"] for e in m.events()] == [0, 1]
    # Full: the third record is lost and PROD.OVFLG [31] toggles; WR = index 0, wrap 1.
    assert m.reg("EVENTQ_PROD") == (1 << 31) | 0b10 and m.evtq_overflow
    m.translate(3, 0)                         # overflow already pending: no second toggle
    assert m.reg("EVENTQ_PROD") == (1 << 31) | 0b10
    assert m.consume_events(1) == 1
    assert m.reg("EVENTQ_CONS") == (1 << 31) | 0b01 and not m.evtq_overflow
    m.translate(4, 0)
    assert [e["fields"]["StreamID"] for e in m.events()] == [1, 4]


def test_eventqen_0_discards_without_overflow():
    m = System.from_text(TINY).smmu()
    m.set_reg("CR0", 0b1001)                  # EVENTQEN=0
    m.translate(0, 0)
    assert m.events() == [] and not m.evtq_overflow


def test_event_write_abort_sets_gerror():
    mem = PhysMem(strict=True)
    mem.ram(0x4000_0000, 0x10_0000)
    m = Smmu("s", mem, pool={"base": 0x4000_0000, "size": 0x10_0000})
    m.setup_stream_table("linear", 4)
    m.set_reg("EVENTQ_BASE", 0x8000_0000 | 1)  # no RAM there
    m.set_reg("IRQ_CTRL", 1)
    m.set_reg("CR0", 0b0101)
    assert m.translate(0, 0)["event"] is None
    assert m.reg("GERROR") == 1 << 2 and m.gerror_active() == ["EVENTQ_ABT_ERR"]
    assert m.reg("EVENTQ_PROD") == 0          # synchronous abort: PROD did not move
    assert m.irqs[-1] == {"source": "GERROR", "what": "EVENTQ_ABT_ERR"}
