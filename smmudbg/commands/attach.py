"""attach, detach, snapshot, view, watch, attach status (and attach-diff, now `diff`): a
running QEMU guest's SMMU, live (smmudbg/attach/). The live view's commands are not recorded in the session log (a
live read cannot be replayed); `snapshot` and `view NAME` are, with the commands run on a
snapshot, so a saved session replays offline from its snapshot file."""
from __future__ import annotations

import sys

from .. import results as res
from .registry import Address, CommandError, Int, Text, command, shown

_NOT_ATTACHED = "not attached (attach qemu QMP_SOCKET ram=FILE first)"


def _state(ctx):
    from ..attach.view import state_of
    return state_of(ctx)


def _streams(streams) -> list:
    return [{"sid": sid, "config": c} for sid, c in streams]


@command("attach qemu", Text("socket", "QEMU's QMP socket (a -qmp unix:PATH,server=on one)",
                             metavar="QMP_SOCKET"),
         Text("ram", "QEMU's memory-backend-file (share=on), e.g. /dev/shm/NAME",
              keyword=True, metavar="FILE"),
         Int("pid", "QEMU's process id: read RAM through /proc/PID/mem (a copy)", lo=1,
             keyword=True),
         Address("ram-base", "guest PA of the RAM's first byte (virt: 0x40000000)",
                 keyword=True),
         Address("smmu-base", "the SMMU's MMIO base (virt: 0x9050000)", keyword=True),
         logged=False)
def attach_qemu(ctx, socket, ram=None, pid=None, **kw):
    """Attach to a running QEMU guest: its SMMUv3 registers over QMP and its RAM, live.

    attach qemu QMP_SOCKET ram=FILE [ram-base=ADDR] [smmu-base=ADDR]
    attach qemu QMP_SOCKET pid=PID  [ram-base=ADDR] [smmu-base=ADDR]

    QEMU needs a QMP socket for smmudbg (a socket serves one client: add a second
    `-qmp unix:PATH,server=on,wait=off`) and, for a live view, its RAM in a shared file:
    `-object memory-backend-file,id=ram0,size=512M,mem-path=/dev/shm/NAME,share=on
    -M virt,iommu=smmuv3,memory-backend=ram0` (delete the file before boot: QEMU reuses it).
    The file is mapped read-only: reads see the guest's stores as they happen, and writes by
    smmudbg (set, inject) copy the page and never reach the guest. pid=PID reads RAM of any
    QEMU through /proc/PID/mem (ptrace rights) at the address HMP gpa2hva gives: a copy, taken
    again by `view live` and `snapshot`.

    The session's system becomes the live view: every inspecting command, `walk ... dry`, `pt`
    and `check` read the running guest. Before each command on it the registers are read again
    (HMP xp, no side effect, the VM is not stopped), so a reply may catch a structure
    mid-update: `snapshot` takes a consistent copy. The live view's commands are not recorded
    in the session log; `detach` leaves the VM as it was."""
    from ..attach.live import VIRT_RAM_BASE, VIRT_SMMU_BASE, Attachment
    st = _state(ctx)
    if st.att is not None:
        raise CommandError(f"attach: already attached to {st.att.path} (detach first)")
    if ram is not None and pid is not None:
        raise CommandError("attach: give ram=FILE or pid=PID, not both")
    ram_base = kw.get("ram-base")
    smmu_base = kw.get("smmu-base")
    att = Attachment(socket, ram, pid, VIRT_RAM_BASE if ram_base is None else ram_base,
                     VIRT_SMMU_BASE if smmu_base is None else smmu_base)
    try:
        report = None
        st.att = att
        st.last_source = att.path
        report = st.go_live(ctx, att.regs)
        running = att.running()
    except BaseException:
        st.att = None
        att.qmp.close()
        raise
    streams = [(s["sid"], s["config"]) for s in report["streams"]]
    return res.Attach(socket=socket, ram=ram, pid=pid, ram_base=att.ram_base,
                      ram_size=att.ram_size, smmu_base=att.smmu_base, qemu=att.qemu_version,
                      vm_running=running, view="live" if att.live else "copy",
                      system=ctx.system.name, smmuen=report["smmuen"],
                      streams=_streams(streams), registers=dict(att.regs),
                      warnings=report["warnings"],
                      message=f"attached to QEMU {att.qemu_version} at {socket} (VM "
                              f"{'running' if running else 'paused'}): {len(streams)} "
                              f"stream(s), SMMUEN={int(report['smmuen'])}, view "
                              f"{'live' if att.live else 'copy'}")


@command("detach", logged=False)
def detach(ctx):
    """Detach from the QEMU guest, leaving it as it was (running or paused: smmudbg only ever
    resumes a VM that it stopped itself for a snapshot). The session keeps its snapshots and
    shows the last one taken (or the guest RAM as last mapped, without registers refresh)."""
    st = _state(ctx)
    if st.att is None:
        raise CommandError(f"detach: {_NOT_ATTACHED}")
    path = st.att.path
    running = st.att.detach()
    st.att = None
    if st.view == "live":
        names = list(st.store.snapshots)
        if names:
            st.show_snapshot(ctx, names[-1])
        else:
            ctx.system.spec["description"] = f"guest RAM of {path} as last mapped (detached)"
    state = "gone" if running is None else "running" if running else "paused"
    return res.Detach(socket=path, vm_running=running, view=st.view,
                      snapshots=len(st.store.snapshots),
                      message=f"detached from {path}; VM {state}; view "
                              f"{st.view or 'detached RAM'}")


@command("snapshot", Text("name", "a name (default s1, s2, ...)", optional=True,
                          metavar="NAME"))
def snapshot(ctx, name=None):
    """Freeze a consistent copy of the guest's SMMU state into the session and show it.

    Stops the VM (if running: never resumes one the user had paused), reads the registers and
    copies the pages holding the stream table, CD tables, page tables and queues, then lets it
    run: pause_ms says how long. Pages are kept by content, so a snapshot costs the pages that
    changed since the last one. The session then shows the snapshot (`view live` goes back).
    A NAME already taken shows that snapshot again instead (as a replay does: a saved
    session's snapshots are in its snapshot file, SESSION.json.snapshots)."""
    from ..attach.view import take_snapshot
    st = _state(ctx)
    if name is not None and (not name.replace("-", "").replace("_", "").isalnum()
                             or name == "live"):
        raise CommandError(f"snapshot: {shown(name)}: a name is letters, digits, - and _ "
                           f"(and not 'live')")
    if name is None:
        name = st.next_name()
    if name in st.store.snapshots:
        snap = st.store.snapshots[name]
        report = st.show_snapshot(ctx, name)
        streams = [(s["sid"], s["config"]) for s in report["streams"]]
    else:
        if st.att is None:
            raise CommandError(f"snapshot: {_NOT_ATTACHED}; no snapshot named "
                               f"{shown(name)} either")
        from ..attach.qmp import VmGone
        try:
            snap, state = take_snapshot(ctx, st, name)
        except VmGone as e:
            st.lost(ctx, str(e))
        report = st.show_snapshot(ctx, name)
        streams = [(s["sid"], s["config"]) for s in report["streams"]]
    st.log_as = f"snapshot {name}"
    return res.Snapshot(name=name, source=snap.source, taken=snap.taken,
                        pause_ms=snap.pause_ms, vm_was_running=snap.vm_was_running,
                        pages=len(snap.pages), new_pages=snap.new_pages,
                        streams=_streams(streams),
                        message=f"snapshot {name}: {len(snap.pages)} pages ({snap.new_pages} "
                                f"new), VM stopped {snap.pause_ms:.1f} ms"
                                if snap.vm_was_running else
                                f"snapshot {name}: {len(snap.pages)} pages ({snap.new_pages} "
                                f"new), VM was paused")


def _view_names(ctx, args):
    st = _state(ctx)
    return (["live"] if st.att is not None else []) + list(st.store.snapshots)


@command("view", Text("name", "live, or a snapshot's name", metavar="live|SNAPSHOT",
                      complete=_view_names))
def view(ctx, name):
    """Show the live guest (`view live`, when attached) or a snapshot taken earlier."""
    st = _state(ctx)
    st.log_as = None
    if name == "live":
        if st.att is None:
            raise CommandError(f"view: {_NOT_ATTACHED}")
        st.att.refresh_copy()
        st.go_live(ctx, st.att.read_regs())
    elif name in st.store.snapshots:
        st.show_snapshot(ctx, name)
    else:
        have = shown(", ".join(_view_names(ctx, {})) or "none", quote=False, limit=200)
        raise CommandError(f"view: no snapshot named {shown(name)}; have: {have}")
    return res.View(view=name, system=ctx.system.name, description=ctx.system.spec["description"],
                    message=ctx.system.spec["description"])


@command("watch", Int("seconds", "how long to watch (default 5)", optional=True, default=5,
                      hi=3600),
         Int("interval", "milliseconds between polls (default 20)", lo=1, hi=10000,
             keyword=True, default=20),
         logged=False)
def watch(ctx, seconds=5, interval=20):
    """Follow the guest's SMMU for SECONDS: the commands it consumes, what they changed, new
    events and global errors, printed as they happen and listed in the result.

    Polls SMMU_CMDQ_CONS/PROD, SMMU_EVENTQ_PROD and SMMU_GERROR over QMP (the VM is not
    stopped). Consumed commands are decoded from the command queue in guest RAM: CMD_CFGI_STE
    names the StreamID whose STE changed, CMD_TLBI_* the ASID/VMID and range (a mapping made
    and removed between two polls shows only there). After commands, the streams' STEs, CDs
    and mappings are read again and compared per stream (mappings as ranges)."""
    from ..attach.qmp import VmGone
    from ..attach.watch import watch as do_watch
    st = _state(ctx)
    if st.att is None:
        raise CommandError(f"watch: {_NOT_ATTACHED}")
    out = getattr(ctx, "watch_output", None)
    if out is None and sys.stdout.isatty():
        out = sys.stdout
    report = (lambda e: (out.write(_line(e) + "\n"), out.flush())) if out else None
    try:
        r = st.att.call(do_watch, st.att, float(seconds), interval / 1000, report)
    except VmGone as e:
        st.lost(ctx, str(e))
    by = {"command": [], "change": [], "event": [], "gerror": []}
    for e in r["entries"]:
        by[e.pop("type")].append(e)
    return res.Watch(socket=st.att.path, seconds=r["seconds"], polls=r["polls"],
                     commands=by["command"], changes=by["change"], events=by["event"],
                     gerrors=by["gerror"],
                     message=f"watched {r['seconds']:.1f} s ({r['polls']} polls): "
                             f"{len(by['command'])} command(s), {len(by['change'])} "
                             f"stream change(s), {len(by['event'])} event(s)")


def _line(e) -> str:
    t = f"{e['t_ms'] / 1000:8.3f}s"
    k = e["type"]
    if k == "command":
        return f"{t}  cmd    {e['command']} {e['what']}".rstrip()
    if k == "event":
        sid = f" StreamID {e['sid']:#x}" if e.get("sid") is not None else ""
        return f"{t}  event  {e['event']}{sid}: {e['explanation']}"
    if k == "gerror":
        return f"{t}  GERROR {', '.join(e['errors'])}"
    parts = []
    if "config" in e and e["config"][0] != e["config"][1]:
        parts.append(f"Config {e['config'][0]} -> {e['config'][1]}")
    elif "ste_fields" in e:
        parts.append("STE " + ", ".join(e["ste_fields"]))
    if e.get("cds"):
        parts.append(f"{len(e['cds'])} CD(s)")
    if e.get("mapped"):
        parts.append(f"+{len(e['mapped'])} range(s)")
    if e.get("unmapped"):
        parts.append(f"-{len(e['unmapped'])} range(s)")
    return f"{t}  change StreamID {e['sid']:#x} {e['change']}: {'; '.join(parts)}"


@command("attach-diff", Text("a", "a snapshot name or live", metavar="A",
                             complete=_view_names),
         Text("b", "a snapshot name or live (default live)", optional=True, default="live",
              metavar="B", complete=_view_names),
         logged=False)
def attach_diff(ctx, a, b="live"):
    """Deprecated: use `diff A [B]` (the same comparison, with every other kind of state).
    Runs `diff A B` and says so."""
    from .diff import diff
    r = diff(ctx, f"{a} {b}")
    r.message = f"(attach-diff is deprecated: use diff {a} {b}) {r.message}"
    return r


@command("attach poll", logged=False, pure=True)
def attach_poll(ctx):
    """One poll of the attached VM, what `watch` does once: the commands the SMMU consumed
    since the previous poll (decoded from the command queue), the streams whose STE, CDs or
    mappings changed, new events with their explanation and GERROR bits; which view the
    session shows (live or a snapshot) and when this read was made. On the live view the
    registers are read again and the view rebuilt when they changed. For front ends that
    follow the VM (the TUI's live mode); the first poll takes the baseline. Not recorded."""
    from ..attach.qmp import VmGone
    from ..attach.view import now
    from ..attach.watch import Watcher
    st = getattr(ctx, "attach_state", None)     # (a session never attached: none made)
    empty = {"commands": [], "changes": [], "events": [], "gerrors": []}
    if st is None or st.att is None:
        view = st.view if st is not None else None
        return res.AttachPoll(attached=False, socket=None, vm_running=None, view=view,
                              live=False, read_at=None, rebuilt=False, **empty,
                              message=f"not attached; view {view or 'none'}")
    att = st.att
    by = dict(empty)
    try:
        w = getattr(st, "poller", None)
        if w is None or w.att is not att:
            st.poller = Watcher(att, None)          # the baseline
        else:
            w.poll()
            by = {"commands": [], "changes": [], "events": [], "gerrors": []}
            for e in w.entries:
                e = dict(e)
                by[e.pop("type") + "s"].append(e)
            w.entries = []
        system = ctx.system
        if st.is_live:
            st.before(ctx)                          # registers again, view rebuilt if moved
        running = att.running()
    except VmGone as e:
        st.lost(ctx, str(e))
    n = {k: len(v) for k, v in by.items()}
    return res.AttachPoll(attached=True, socket=att.path, vm_running=running, view=st.view,
                          live=st.is_live, read_at=now(), rebuilt=ctx.system is not system,
                          **by,
                          message=f"{'live' if st.is_live else f'view {st.view}'}: "
                                  f"{n['commands']} command(s), {n['changes']} stream "
                                  f"change(s), {n['events']} event(s)")


@command("attach status", logged=False, pure=True)
def attach_status(ctx):
    """Whether the session is attached, to what, whether the VM runs, which view the session
    shows (live or a snapshot) and the snapshots taken."""
    from ..attach.qmp import AttachError
    st = _state(ctx)
    running = None
    if st.att is not None:
        try:
            running = st.att.running()
        except AttachError:
            running = None
    snaps = [{"name": s.name, "taken": s.taken, "pause_ms": s.pause_ms,
              "pages": len(s.pages), "new_pages": s.new_pages}
             for s in st.store.snapshots.values()]
    where = st.att.path if st.att is not None else None
    return res.AttachStatus(attached=st.att is not None, socket=where, vm_running=running,
                            view=st.view, system=ctx.system.name, snapshots=snaps,
                            message=(f"attached to {where}, VM "
                                     f"{'running' if running else 'paused'}" if where else
                                     "not attached") + f"; view {st.view or 'none'}; "
                                     f"{len(snaps)} snapshot(s)")
