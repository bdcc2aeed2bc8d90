"""The SMMUv3 Event queue (IHI 0070 3.5, 7.2, 7.4) in modeled memory.

The SMMU is the producer: each recorded fault becomes a 32-byte record (encode_event, laid out by
the EVT_* field tables) written at SMMU_EVENTQ_PROD, after which PROD moves. Software consumes by
moving SMMU_EVENTQ_CONS.

Rules followed:
  * A record is written only when the queue is writable: EVENTQEN == 1, not full, and no
    unacknowledged GERROR.EVENTQ_ABT_ERR (7.2.1). Otherwise a non-stall record is discarded.
  * Discarding because the queue is full is an overflow: PROD.OVFLG toggles if no overflow is
    already pending (OVFLG == CONS.OVACKFLG) (7.4). EVENTQEN == 0 discards without overflow.
  * A record with Stall == 1 is never discarded for being full and causes no overflow; it waits
    and is written when the queue is next writable (3.5.3, 7.4). (The walker terminates those
    transactions anyway - stalls are not modelled - but the record keeps its Stall bit.)
  * A write that aborts (nothing behind the address: strict memory raises MemFault) activates
    GERROR.EVENTQ_ABT_ERR; this model's aborts are synchronous, so PROD does not move past the
    lost record (7.2.2).
  * With EVENTQ_IRQEN, a written record signals the EVENTQ interrupt, an MSI when
    EVENTQ_IRQ_CFG0.ADDR != 0 (Smmu.signal_irq; an aborted MSI is GERROR.MSI_EVENTQ_ABT_ERR).
  * Events are never merged (merging is optional, 3.5.5).
"""
from __future__ import annotations

from core_cy.physmem import MemFault

from ..arch.smmuv3.events import EVENT_SIZE, decode_event, encode_event, event_format, event_name
from ..arch.smmuv3.fields_queue import EVENT_TYPES
from ..errors import ModelError
from .cmdq import Ring

_CLASS = {"CD": 0, "TT": 1, "IN": 2}


def fault_fields(fault: dict) -> tuple[str, dict]:
    """(event name, {field: value}) for a walker fault dict, restricted to the fields the
    event's record layout has (IHI 0070 7.3)."""
    name = fault["type"]
    if name not in EVENT_TYPES:
        raise ModelError(f"fault type {name!r} has no event record")
    ipa = fault.get("ipa")
    fetch = fault.get("fetch_addr")
    vals = {
        "StreamID": fault["sid"],
        "SSV": int(bool(fault.get("ssv"))),
        "SubstreamID": fault.get("ssid") or 0,
        "InputAddr": fault.get("input_addr") or 0,
        "RnW": int(bool(fault.get("rnw"))),
        "InD": int(bool(fault.get("ind"))),
        "PnU": int(bool(fault.get("pnu"))),
        "S2": int(bool(fault.get("s2"))),
        "CLASS": _CLASS.get(fault.get("class"), 0),
        # IPA[55:12] and FetchAddr[55:3] are stored without their low bits (7.3).
        "IPA": (ipa >> 12) & ((1 << 44) - 1) if ipa is not None else 0,
        "FetchAddr": (fetch >> 3) & ((1 << 53) - 1) if fetch is not None else 0,
        "Stall": int(bool(fault.get("stall"))),
        "STAG": 0,
    }
    layout = {f.name for f in event_format(name).fields}
    return name, {k: v for k, v in vals.items() if k in layout and v}


class EventQueue:
    """Producer side of SMMU_EVENTQ_* for one Smmu."""

    def __init__(self, smmu):
        self.smmu = smmu
        self.pending_stall: list[bytes] = []   # Stall=1 records waiting for room
        self.written = 0
        self.discarded = 0

    @property
    def log2size(self) -> int:
        return min(self.smmu.field("EVENTQ_BASE", "LOG2SIZE"),
                   self.smmu.features.get("EVENTQS", 19))

    @property
    def ring(self) -> Ring:
        return Ring(self.log2size)

    @property
    def base(self) -> int:
        return self.smmu.field("EVENTQ_BASE", "ADDR") << 5

    def _abt_active(self) -> bool:
        return bool((self.smmu.regs["SMMU_GERROR"] ^ self.smmu.regs["SMMU_GERRORN"]) & 0x4)

    def writable(self) -> bool:
        s = self.smmu
        return (bool(s.field("CR0", "EVENTQEN")) and not self._abt_active()
                and not self.ring.full(s.regs["SMMU_EVENTQ_PROD"], s.regs["SMMU_EVENTQ_CONS"]))

    def record(self, fault: dict):
        """Record the event for a walker fault. Returns the queue index written, or None if
        the record was discarded (queue disabled, full, or aborted)."""
        name, fields = fault_fields(fault)
        raw = encode_event(name, **fields)
        return self.write_raw(raw, stall=bool(fields.get("Stall")))

    def write_raw(self, raw: bytes, stall: bool = False):
        s = self.smmu
        if not s.field("CR0", "EVENTQEN") or self._abt_active():
            self.discarded += 1             # 7.4: EVENTQEN == 0 drops without overflow
            return None
        ring = self.ring
        prod, cons = s.regs["SMMU_EVENTQ_PROD"], s.regs["SMMU_EVENTQ_CONS"]
        if ring.full(prod, cons):
            if stall:
                self.pending_stall.append(raw)
                return None
            self.discarded += 1
            ovf = 1 << 31
            if (prod & ovf) == (cons & ovf):     # no overflow pending: signal one
                s.regs["SMMU_EVENTQ_PROD"] = prod ^ ovf
            return None
        pa = self.base + ring.idx(prod) * EVENT_SIZE
        try:
            s.mem.write(pa, raw)
        except MemFault:
            self.discarded += 1
            s.raise_gerror("EVENTQ_ABT_ERR")
            return None
        s.regs["SMMU_EVENTQ_PROD"] = (prod & (1 << 31)) | ring.inc(prod)
        self.written += 1
        if s.field("IRQ_CTRL", "EVENTQ_IRQEN"):
            s.signal_irq("EVENTQ", f"event {event_name(raw[0])} at index {ring.idx(prod)}")
        return ring.idx(prod)

    def drain_pending(self) -> None:
        """Write waiting stall records now that there may be room (called on CONS writes)."""
        while self.pending_stall and self.writable():
            self.write_raw(self.pending_stall.pop(0), stall=True)

    # -- software view ------------------------------------------------------------------------
    def unread(self) -> int:
        """How many records software has not read (CONS to PROD)."""
        return self.ring.count(self.smmu.regs["SMMU_EVENTQ_PROD"],
                               self.smmu.regs["SMMU_EVENTQ_CONS"])

    def entries(self, limit: int = 1024) -> list[dict]:
        """Decoded records from CONS up to PROD (what software may read, 3.5.2): the oldest
        `limit` of them (a queue may hold 2^19; `unread` counts them all)."""
        s = self.smmu
        ring = self.ring
        prod, cons = s.regs["SMMU_EVENTQ_PROD"], s.regs["SMMU_EVENTQ_CONS"]
        out = []
        p = cons
        for _ in range(min(ring.count(prod, cons), limit)):
            pa = self.base + ring.idx(p) * EVENT_SIZE
            raw = s.mem.read(pa, EVENT_SIZE)
            rec = decode_event(raw)
            out.append({"index": ring.idx(p), "pa": pa, "event": event_name(raw[0]),
                        "fields": rec, "raw": raw.hex()})
            p = ring.inc(p)
        return out

    def consume(self, n=None, ack_overflow=True) -> int:
        """Software moves CONS past n records (all when n is None), acknowledging an overflow
        by copying PROD.OVFLG to CONS.OVACKFLG as Arm recommends (7.4). Returns how many."""
        s = self.smmu
        ring = self.ring
        prod, cons = s.regs["SMMU_EVENTQ_PROD"], s.regs["SMMU_EVENTQ_CONS"]
        avail = ring.count(prod, cons)
        n = avail if n is None else min(n, avail)
        flag = (prod if ack_overflow else cons) & (1 << 31)
        s.set_reg("EVENTQ_CONS", flag | ring.inc(cons, n))
        return n
