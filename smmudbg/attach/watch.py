"""`watch`: follow a running guest's SMMU by polling SMMU_CMDQ_CONS / _PROD, SMMU_EVENTQ_PROD and
SMMU_GERROR over QMP.

- Commands the SMMU consumed (CONS moved) are decoded from the command queue ring in guest RAM
  with the field tables: CMD_CFGI_STE names the StreamID whose STE changed, CMD_TLBI_* the
  ASID/VMID and the address range. A mapping made and removed between two polls never shows in
  the tables, but its TLBI is in the queue.
- When commands were consumed, the streams' STEs, CDs and mappings are read again and compared
  with the previous poll (per stream, mappings as ranges).
- New event records (PROD moved) are decoded with what they mean; GERROR bits that became
  active are named.
"""
from __future__ import annotations

import time

from ..arch.fieldtable import fmt
from ..arch.smmuv3.events import CMD_SIZE, EVENT_SIZE, decode_cmd, decode_event
from . import regs as RG
from . import state as S

# What an event record means (IHI 0070 7.3), briefly.
EXPLAIN = {
    "F_UUT": "unsupported upstream transaction",
    "C_BAD_STREAMID": "StreamID out of range of the stream table",
    "F_STE_FETCH": "fetching the STE hit an external abort",
    "C_BAD_STE": "the STE is not valid or holds an illegal configuration",
    "F_BAD_ATS_TREQ": "ATS translation request not allowed by the STE",
    "F_STREAM_DISABLED": "the stream is disabled (STE.Config abort or non-substream traffic)",
    "F_TRANSL_FORBIDDEN": "translated (ATS) traffic not allowed for this stream",
    "C_BAD_SUBSTREAMID": "SubstreamID out of range of the CD table",
    "F_CD_FETCH": "fetching the CD hit an external abort",
    "C_BAD_CD": "the CD is not valid or holds an illegal configuration",
    "F_WALK_EABT": "a page-table walk access hit an external abort",
    "F_TRANSLATION": "no valid translation for the address (the page is not mapped)",
    "F_ADDR_SIZE": "an address is larger than the configured size",
    "F_ACCESS": "Access flag is 0 and hardware update is off",
    "F_PERMISSION": "the access is not allowed by the page's permissions",
    "F_TLB_CONFLICT": "conflicting TLB entries",
    "F_CFG_CONFLICT": "conflicting configuration cache entries",
    "E_PAGE_REQUEST": "a PRI page request",
    "F_VMS_FETCH": "fetching the VMS hit an external abort",
}


def _qsize(regs, reg):
    return fmt(reg).field("LOG2SIZE").get([regs[reg]])


def _qbase(regs, reg, esize):
    f = fmt(reg)
    qs = f.field("LOG2SIZE").get([regs[reg]])
    a = f.field("ADDR")
    size = max(1 << a.address_shift, esize << qs)
    return a.address([regs[reg]]) & ~(size - 1)


def ring_entries(read, regs, base_reg, old, new, esize):
    """(index, raw bytes) of the ring entries from pointer old up to new (wrap bit aware)."""
    qs = _qsize(regs, base_reg)
    base = _qbase(regs, base_reg, esize)
    mask = (1 << (qs + 1)) - 1
    old, new = old & mask, new & mask
    n = (new - old) & mask
    n = min(n, 1 << qs)
    out = []
    for k in range(n):
        idx = (old + k) & ((1 << qs) - 1)
        out.append((idx, read(base + esize * idx, esize)))
    return out


def describe_cmd(name: str, f: dict) -> str:
    if name in ("CMD_CFGI_STE", "CMD_PREFETCH_CONFIG", "CMD_PREFETCH_ADDR"):
        return f"StreamID {f.get('StreamID', 0):#x}"
    if name == "CMD_CFGI_STE_RANGE":
        first = f.get("StreamID", 0) & ~((1 << (f.get("Range", 0) + 1)) - 1)
        return f"StreamIDs {first:#x}-{first + (2 << f.get('Range', 0)) - 1:#x}"
    if name in ("CMD_CFGI_CD", "CMD_CFGI_CD_ALL"):
        ss = f" SubstreamID {f['SubstreamID']:#x}" if "SubstreamID" in f and \
            name == "CMD_CFGI_CD" else ""
        return f"StreamID {f.get('StreamID', 0):#x}{ss}"
    if name.startswith("CMD_TLBI"):
        parts = []
        if "ASID" in f:
            parts.append(f"ASID {f.get('ASID', 0)}")
        if "VMID" in f:
            parts.append(f"VMID {f['VMID']}")
        if "Address" in fmt_fields(name):
            addr = fmt(name).field("Address").to_address(f["Address"])
            tg = f.get("TG", 0)
            grain = {1: 12, 2: 14, 3: 16}.get(tg)
            if grain:           # a range: (NUM + 1) << SCALE granules (TG != 0)
                size = (f.get("NUM", 0) + 1) << (f.get("SCALE", 0) + (grain or 12))
                parts.append(f"{addr:#x}-{addr + size - 1:#x}")
            else:
                parts.append(f"{addr:#x}" + (" leaf" if f.get("Leaf") else ""))
        return ", ".join(parts) or "all"
    if name == "CMD_SYNC":
        return "wait for completion"
    return ""


def fmt_fields(name):
    try:
        return {x.name for x in fmt(name).fields}
    except Exception:
        return set()


def decode_commands(read, regs, old, new) -> list[dict]:
    out = []
    for idx, raw in ring_entries(read, regs, "SMMU_CMDQ_BASE", old, new, CMD_SIZE):
        name, fields = decode_cmd(raw)
        out.append({"index": idx, "command": name, "what": describe_cmd(name, fields),
                    "fields": fields})
    return out


def decode_events(read, regs, old, new) -> list[dict]:
    out = []
    for idx, raw in ring_entries(read, regs, "SMMU_EVENTQ_BASE", old, new, EVENT_SIZE):
        fields = decode_event(raw)
        from ..arch.smmuv3.events import event_name
        name = event_name(raw[0])
        out.append({"index": idx, "event": name, "explanation": EXPLAIN.get(name, ""),
                    "sid": fields.get("StreamID"), "fields": fields})
    return out


def gerror_active(regs) -> list[str]:
    act = regs.get("SMMU_GERROR", 0) ^ regs.get("SMMU_GERRORN", 0)
    return [x.name for x in fmt("SMMU_GERROR").fields if x.get([act])]


def watch(att, seconds: float, interval: float = 0.02, report=None) -> dict:
    """Poll for `seconds` (Ctrl-C ends it early, keeping what was seen); call report(entry)
    for each thing seen as it is seen. Returns {polls, seconds, entries}; entries are {t_ms,
    type: command|change|event|gerror, ...}, t_ms being the time of the poll that saw them
    (since the start)."""
    w = Watcher(att, report)
    try:
        while True:
            w.poll()
            if time.monotonic() - w.t0 >= seconds:
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    return {"polls": w.polls, "seconds": round(time.monotonic() - w.t0, 3),
            "entries": w.entries}


class Watcher:
    def __init__(self, att, report):
        self.att, self.report = att, report
        self.regs = dict(att.read_regs())
        self.streams = S.capture(att.read, self.regs)
        self.entries: list[dict] = []
        self.polls, self.tpoll = 0, 0.0
        self.t0 = time.monotonic()

    def emit(self, e):
        e["t_ms"] = self.tpoll              # when the poll that saw it read the registers
        self.entries.append(e)
        if self.report is not None:
            self.report(e)

    def poll(self):
        att, regs = self.att, self.regs
        self.polls += 1
        now = att.read_regs(RG.WATCHED)
        self.tpoll = round((time.monotonic() - self.t0) * 1000, 1)
        if now["SMMU_CMDQ_CONS"] != regs["SMMU_CMDQ_CONS"]:
            for c in decode_commands(att.read, regs, regs["SMMU_CMDQ_CONS"],
                                     now["SMMU_CMDQ_CONS"]):
                self.emit(dict(c, type="command"))
            fresh = S.capture(att.read, dict(regs, **now))
            for d in S.diff(self.streams, fresh):
                self.emit(dict(d, type="change"))
            self.streams = fresh
        if now["SMMU_EVENTQ_PROD"] != regs["SMMU_EVENTQ_PROD"]:
            for ev in decode_events(att.read, regs, regs["SMMU_EVENTQ_PROD"],
                                    now["SMMU_EVENTQ_PROD"]):
                self.emit(dict(ev, type="event"))
        if now["SMMU_GERROR"] != regs["SMMU_GERROR"]:
            was = set(gerror_active(regs))
            new = [g for g in gerror_active(dict(regs, **now)) if g not in was]
            if new:
                self.emit({"type": "gerror", "errors": new})
        regs.update(now)
