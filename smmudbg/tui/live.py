"""Live mode: while the session is attached to a running QEMU (`attach qemu`), the UI follows
the VM.

A timer starts a thread worker every `interval` seconds that runs `attach poll` through the
bridge (a read-only command: what `watch` does once, never the model directly). What the poll
saw is shown in the live panel above the output, newest first and highlighted: STE rows that
changed (StreamID, Config before -> after, CDs and ranges mapped or unmapped), new events with
their explanation, commands consumed; then every view refreshes. The status line says whether
the views are of the live VM or a snapshot (stopped VM, consistent) and the time of the last
read. `l` pauses and resumes live mode (the views then stay as last read).
"""
from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog, Static

DEFAULT_INTERVAL = 1.0      # seconds between polls


def status_text(r: dict | None, paused: bool, error: str | None = None) -> Text:
    """The status line for the last poll's result (None: not polled yet)."""
    if error:
        return Text(f"LIVE: {error}", style="bold red")
    if r is None or not r["attached"]:
        view = r.get("view") if r else None
        if view:
            return Text(f"SNAPSHOT {view}: taken with the VM stopped (consistent); detached",
                        style="bold")
        return Text("")
    when = (r["read_at"] or "")[11:23]
    vm = "running" if r["vm_running"] else "paused"
    if not r["live"]:
        return Text(f"SNAPSHOT {r['view']}: VM stopped when taken (consistent); QEMU at "
                    f"{r['socket']} ({vm}); `view live` goes back", style="bold")
    if paused:
        return Text(f"LIVE (paused: l resumes) - views as read at {when}; VM {vm}",
                    style="bold yellow")
    return Text(f"LIVE - QEMU at {r['socket']}, VM {vm}, last read {when} (l pauses)",
                style="bold green")


def change_lines(r: dict) -> list[Text]:
    """What one poll saw, one highlighted line per thing, in the order watch reports them."""
    when = (r["read_at"] or "")[11:23]
    out = []
    for c in r["commands"]:
        out.append(Text(f"{when} cmd    {c['command']} {c['what']}".rstrip(), style="cyan"))
    for c in r["changes"]:
        parts = []
        if c.get("config") and c["config"][0] != c["config"][1]:
            parts.append(f"Config {c['config'][0]} -> {c['config'][1]}")
        elif c.get("ste_fields"):
            parts.append("STE " + ", ".join(c["ste_fields"]))
        if c.get("cds"):
            parts.append(f"{len(c['cds'])} CD(s)")
        if c.get("mapped"):
            parts.append(f"+{len(c['mapped'])} range(s)")
        if c.get("unmapped"):
            parts.append(f"-{len(c['unmapped'])} range(s)")
        out.append(Text(f"{when} STE    StreamID {c['sid']:#x} {c['change']}: "
                        + "; ".join(parts), style="bold yellow"))
    for e in r["events"]:
        sid = f" StreamID {e['sid']:#x}" if e.get("sid") is not None else ""
        out.append(Text(f"{when} event  {e['event']}{sid}: {e['explanation']}",
                        style="bold red"))
    for g in r["gerrors"]:
        out.append(Text(f"{when} GERROR {', '.join(g['errors'])}", style="bold red"))
    return out


class LiveStatus(Static):
    """One line: live or snapshot, and when the VM was last read."""
    DEFAULT_CSS = "LiveStatus { height: 1; padding: 0 1; background: $boost; }"


class LivePanel(RichLog, can_focus=False):
    """What live mode saw, newest at the bottom, highlighted by kind."""
    DEFAULT_CSS = "LivePanel { height: 5; border-top: solid $primary-background; }"


class LiveMode:
    """Owned by the app; polls through the bridge while attached."""

    def __init__(self, app, interval: float = DEFAULT_INTERVAL):
        self.app = app
        self.interval = interval
        self.paused = False
        self.busy = False
        self.last: dict | None = None
        self.error: str | None = None
        self.polls = 0
        self.seen = 0               # lines shown in the panel
        self.timer = None

    # -- wiring -------------------------------------------------------------------------------
    def start(self, before) -> None:
        """Poll every interval; the status line and the panel are mounted above `before` (the
        output pane) the first time there is something to show (a session never attached
        keeps its layout)."""
        self.before = before
        self.status = self.panel = None
        self.tick()
        self.timer = self.app.set_interval(self.interval, self.tick)

    def _mount(self) -> None:
        if self.status is None:
            self.status = LiveStatus("", id="live-status")
            self.panel = LivePanel(id="live-panel", wrap=True, markup=False, highlight=False,
                                   max_lines=500)
            self.before.parent.mount(self.status, self.panel, before=self.before)

    def toggle(self) -> None:
        self.paused = not self.paused
        self._show()
        if not self.paused:
            self.tick()

    # -- polling ------------------------------------------------------------------------------
    def tick(self) -> None:
        if self.busy or self.app.bridge is None:
            return
        self.busy = True
        self.app.run_worker(self._status if self.paused else self._poll, thread=True,
                            group="live", exclusive=True)

    def _poll(self) -> None:
        from .bridge import QueryError
        try:
            r, err = self.app.bridge.query("attach poll"), None
        except QueryError as e:
            r, err = None, str(e)
        self.app.call_from_thread(self._seen, r, err)

    def _status(self) -> None:
        """Paused: only which view the session shows (a snapshot taken meanwhile, detach),
        through `attach status`; the VM's queues are not read."""
        r = self.app.bridge.try_query("attach status")
        self.app.call_from_thread(self._view_seen, r)

    def _view_seen(self, r: dict | None) -> None:
        self.busy = False
        if r is not None and self.last is not None:
            self.last = dict(self.last, attached=r["attached"], view=r["view"],
                             live=r["attached"] and r["view"] == "live",
                             vm_running=r["vm_running"])
        self._show()

    def _seen(self, r: dict | None, err: str | None) -> None:
        self.busy = False
        self.polls += 1
        was_attached = bool(self.last and self.last["attached"])
        if err or (r is not None and r["attached"]):
            self.error = err            # an error (VM gone) stays until attached again
        if r is not None:
            self.last = r
        elif err and self.last is not None:
            self.last = dict(self.last, attached=False)
        changed = False
        if r is not None and r["attached"]:
            lines = change_lines(r)
            if lines:
                self._mount()
            for t in lines:
                self.panel.write(t)
            self.seen += len(lines)
            changed = bool(lines) or r["rebuilt"]
        self._show()
        if changed or err or (was_attached and not (r and r["attached"])):
            self.app.refresh_views()

    def _show(self) -> None:
        r = self.last
        on = self.error is not None or bool(r and (r["attached"] or r.get("view")))
        if self.status is None:
            if not on:
                return
            self._mount()
        self.status.display = on
        self.panel.display = on and self.seen > 0
        self.status.update(status_text(r, self.paused, self.error))
