"""The attach state of a session: the attachment (if any), the snapshots taken, and which view
the session's system is: the live guest or a snapshot.

Which view is shown is said by the session's system itself: its name (`live:SOCKET`,
`snapshot:NAME`) and description (`topology` prints both), and by `attach status`. Commands
run on the live view are not recorded in the session log (a live read cannot be replayed);
`snapshot` is, and so is every command run on a snapshot's view, so a saved session replays
offline from its snapshot file like an imported dump.
"""
from __future__ import annotations

import datetime as _dt
import weakref

from . import state as S
from .live import Attachment
from .qmp import AttachError, VmGone
from .store import Store

LIVE = "live"


class AttachState:
    def __init__(self, ctx):
        self.att: Attachment | None = None
        self.store = Store()
        self._view: str | None = None       # LIVE or a snapshot name, when last shown
        self._shown = None                  # the System shown then
        self._ctx = weakref.ref(ctx)
        self.live_regs: dict | None = None  # the registers the live system was built with
        self.log_as: str | None = None      # the line the session records for this command
        self.last_source: str | None = None
        self.unlogged = False               # this command read the live VM: not recorded

    def rebind(self, ctx) -> None:
        """The session object changed (load adopts another session's state)."""
        self._ctx = weakref.ref(ctx)

    @property
    def view(self) -> str | None:
        """LIVE or the snapshot's name when the session shows what attach showed last; None
        once something else replaced it (goto to before it, load, import)."""
        ctx = self._ctx()
        if ctx is None or self._shown is None or ctx.system is not self._shown:
            return None
        return self._view

    def close(self) -> None:
        """Detach (the VM left as it was) and forget the views."""
        if self.att is not None:
            try:
                self.att.detach()
            except Exception:
                pass
            self.att = None
        self._shown = None

    # -- views --------------------------------------------------------------------------------
    def attach(self, ctx, att: Attachment):
        self.att = att
        self.last_source = att.path
        self.go_live(ctx, att.regs)

    def go_live(self, ctx, regs: dict):
        att = self.att
        system, report = att.build(regs, f"live:{att.path}")
        running = att.running()
        how = "live view" if att.live else "copy (read through /proc/PID/mem at " + _now() + ")"
        state = ("running: reads may catch a structure mid-update; snapshot for a "
                 "consistent copy" if running else "paused")
        system.spec["description"] = (f"{how} of QEMU {att.qemu_version} at {att.path}, VM "
                                      f"{state}")
        ctx.system = system
        self._view, self._shown, self.live_regs = LIVE, system, regs
        return report

    def show_snapshot(self, ctx, name: str):
        snap = self.store.snapshots[name]
        system, report = self.store.system(snap)
        system.spec["description"] = (f"snapshot {name} of QEMU at {snap.source}, taken "
                                      f"{snap.taken} with the VM stopped (consistent)")
        ctx.system = system
        self._view, self._shown = name, system
        return report

    @property
    def is_live(self) -> bool:
        return self.view == LIVE and self.att is not None

    def next_name(self) -> str:
        i = len(self.store.snapshots) + 1
        while f"s{i}" in self.store.snapshots:
            i += 1
        return f"s{i}"

    # -- hooks the session calls --------------------------------------------------------------
    def before(self, ctx) -> None:
        """Before a command on the live view: re-read the registers and rebuild the view when
        they changed (new streams, a moved table, queue pointers). A VM that went away leaves
        the session on its last snapshot."""
        self.log_as = None
        self.unlogged = False
        if not self.is_live:
            return
        try:
            regs = self.att.read_state_regs()
        except VmGone as e:
            self.lost(ctx, str(e))
        if not self.att.live:
            return
        if regs != self.live_regs:
            self.go_live(ctx, regs)

    def lost(self, ctx, why: str):
        """The VM is gone: keep the last snapshot (if any) and say so, in one line."""
        self.att.gone = why
        try:
            self.att.qmp.close()
        except Exception:
            pass
        self.att = None
        last = list(self.store.snapshots)[-1:] or None
        if last:
            self.show_snapshot(ctx, last[0])
            raise AttachError(f"VM gone while attached ({why}); the view is now snapshot "
                              f"{last[0]}, the last one taken")
        self._view = None
        raise AttachError(f"VM gone while attached ({why}); no snapshot was taken, the view "
                          f"keeps the guest RAM as last mapped")


def state_of(ctx) -> AttachState:
    st = getattr(ctx, "attach_state", None)
    if st is None:
        st = ctx.attach_state = AttachState(ctx)
    return st


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def now() -> str:
    return _now()


def take_snapshot(ctx, st: AttachState, name: str):
    """Stop the VM (if running), read the registers and copy the pages that hold the SMMU
    state, let it run again. Returns (Snapshot, streams)."""
    att = st.att
    with att.frozen() as fr:
        regs = att.read_state_regs()
        tracker = S.Tracker(att.read)
        streams = S.capture(tracker, regs)
        pages = set(tracker.pages)
        pages.update(queue_pages(regs))
        if not att.live:
            att.refresh_copy()
        data = {pa: att.read(pa, S.PAGE) for pa in sorted(pages)
                if att.ram_base <= pa < att.ram_base + att.ram_size}
    snap = st.store.add(name, regs, data, taken=_now(), pause_ms=round(fr.ms, 3),
                        vm_was_running=bool(fr.was_running), source=att.path)
    return snap, streams


def queue_pages(regs: dict) -> set[int]:
    """The pages of the command and event queues (their whole rings)."""
    from ..arch.fieldtable import fmt
    out = set()
    for reg, esize in (("SMMU_CMDQ_BASE", 16), ("SMMU_EVENTQ_BASE", 32)):
        if reg not in regs:
            continue
        f = fmt(reg)
        qs = f.field("LOG2SIZE").get([regs[reg]])
        addr = f.field("ADDR")
        size = max(1 << addr.address_shift, esize << qs)
        base = addr.address([regs[reg]]) & ~(size - 1)
        out.update(range(base & ~(S.PAGE - 1), base + size, S.PAGE))
    return out


__all__ = ["AttachState", "state_of", "take_snapshot", "LIVE"]
