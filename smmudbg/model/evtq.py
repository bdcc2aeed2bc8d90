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

from ..arch.fieldtable import fmt
from ..arch.smmuv3.events import EVENT_SIZE, decode_event, encode_event, event_format, event_name
from ..arch.smmuv3.fields_queue import EVENT_TYPES
from ..errors import ModelError
from .cmdq import Ring

_OVFLG = fmt("SMMU_EVENTQ_PROD").field("OVFLG")
_OVACKFLG = fmt("SMMU_EVENTQ_CONS").field("OVACKFLG")


def _addr_field(f, addr) -> int:
    """An event record's address field for addr: the address bits the field holds (IPA[55:12],
    FetchAddr[55:3], 7.3); the bits below and above are not recorded."""
    return (addr >> f.address_shift) & f.mask


def fault_fields(fault: dict) -> tuple[str, dict]:
    """(event name, {field: value}) for a walker fault dict, restricted to the fields the
    event's record layout has (IHI 0070 7.3)."""
    name = fault["type"]
    if name not in EVENT_TYPES:
        raise ModelError(f"fault type {name!r} has no event record")
    layout = event_format(name)
    names = {f.name for f in layout.fields}
    addrs = {k: _addr_field(layout.field(k), fault[a])
             for k, a in (("IPA", "ipa"), ("FetchAddr", "fetch_addr"))
             if fault.get(a) is not None and k in names}
    cls = {v: k for k, v in layout.field("CLASS").enum.items()} \
        if "CLASS" in names else {}
    vals = {
        "StreamID": fault["sid"],
        "SSV": int(bool(fault.get("ssv"))),
        "SubstreamID": fault.get("ssid") or 0,
        "InputAddr": fault.get("input_addr") or 0,
        "RnW": int(bool(fault.get("rnw"))),
        "InD": int(bool(fault.get("ind"))),
        "PnU": int(bool(fault.get("pnu"))),
        "S2": int(bool(fault.get("s2"))),
        "CLASS": cls.get(fault.get("class"), 0),
        **addrs,
        "Stall": int(bool(fault.get("stall"))),
        "STAG": 0,
    }
    return name, {k: v for k, v in vals.items() if k in names and v}


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
        return self.smmu.reg_address("EVENTQ_BASE")

    def _abt_active(self) -> bool:
        return self.smmu.gerror_pending("EVENTQ_ABT_ERR")

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
            if not s.evtq_overflow:              # no overflow pending: signal one
                s.regs["SMMU_EVENTQ_PROD"] = prod ^ _OVFLG.inplace_mask
            return None
        pa = self.base + ring.idx(prod) * EVENT_SIZE
        try:
            s.mem.write(pa, raw)
        except MemFault:
            self.discarded += 1
            s.raise_gerror("EVENTQ_ABT_ERR")
            return None
        s.regs["SMMU_EVENTQ_PROD"] = (prod & _OVFLG.inplace_mask) | ring.inc(prod)
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
        flag = _OVFLG.get([prod]) if ack_overflow else _OVACKFLG.get([cons])
        v = [ring.inc(cons, n)]
        _OVACKFLG.put(v, flag)
        s.set_reg("EVENTQ_CONS", v[0])
        return n

    def history(self) -> dict:
        """Every record the queue memory holds, consumed ones too, oldest first (a dump's
        history before the snapshot).

        A slot's place is counted back from PROD: the `back` records before PROD. Those
        between CONS and PROD are "pending"; the rest were "consumed" by software. Slots at
        or above PROD's index were written in an earlier lap, if the queue ever wrapped: with
        PROD's wrap bit 1 it did (lap -1 is then certain); with wrap bit 0 it cannot be told
        from the registers (lap -1, "earlier lap, if the queue wrapped"). A slot whose Type is
        0 or not an event type is not a record (never written, or not this queue's data).

        Returns {entries: [{index, pa, event, fields, raw, state, lap, back}], empty (slots
        without a record), unbacked (slots outside the dump), unknown (non-zero slots with an
        unknown Type)}."""
        s = self.smmu
        ring = self.ring
        prod, cons = s.regs["SMMU_EVENTQ_PROD"], s.regs["SMMU_EVENTQ_CONS"]
        pending = ring.count(prod, cons)
        pidx = ring.idx(prod)
        # PROD.WRAP=1, or pending records from the lap before: the queue has wrapped
        wrapped = bool(ring.wrap(prod)) or pending > pidx
        per_page = 4096 // EVENT_SIZE
        out, empty, unbacked, unknown = [], 0, 0, 0
        for first in range(0, ring.size, per_page):
            n = min(per_page, ring.size - first)
            pa0 = self.base + first * EVENT_SIZE
            try:
                block = s.mem.read(pa0, n * EVENT_SIZE)
            except MemFault:
                unbacked += n
                continue
            for k in range(n):
                raw = bytes(block[k * EVENT_SIZE:(k + 1) * EVENT_SIZE])
                code = raw[0]
                if code == 0:
                    empty += 1
                    continue
                name = event_name(code)
                if name == "UNKNOWN":
                    unknown += 1
                    continue
                i = first + k
                back = (pidx - i - 1) % ring.size     # records written after this one
                lap = 0 if i < pidx else -1
                state = "pending" if back < pending else "consumed"
                if lap < 0 and not wrapped:
                    state += " (earlier lap, if the queue wrapped)"
                out.append({"index": i, "pa": pa0 + k * EVENT_SIZE, "event": name,
                            "fields": decode_event(raw), "raw": raw.hex(), "state": state,
                            "lap": lap, "back": back})
        out.sort(key=lambda e: -e["back"])
        return {"entries": out, "empty": empty, "unbacked": unbacked, "unknown": unknown}
