"""The full-screen UI (Textual): one more front end over the command registry.

Everything on screen is a command's result (bridge.query for views, bridge.run for the
user's actions, which the session logs and replays like REPL lines). Long work (building a
large system, replay, goto, load, import, a full check) runs in a thread worker while the UI
keeps drawing.
"""
from __future__ import annotations

import shlex

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import (Button, Checkbox, Footer, Header, Input, ProgressBar, RichLog,
                             Select, Static, TabbedContent, TabPane)
from textual.worker import get_current_worker

from ..errors import SmmuDbgError
from .bridge import Bridge, registry
from .changes import describe_changes, snapshot
from .checkview import CheckView
from .commandline import CommandLine
from .entryview import EntryView
from .history import HistoryView
from .iommufdview import IommufdView
from .itsview import ItsView
from .lazypane import LazyPane, Pane, TabSet
from .live import DEFAULT_INTERVAL, LiveMode
from .pagetables import PageTableView
from .palette import RegistryCommands
from .queues import CacheView, CmdqView, EventsView
from .sessionops import replay_source, replay_steps
from .streamtable import StreamTable, header_text
from .topology import TopologyTree
from .vsmmuview import VsmmuView
from .walkstepper import WalkStepper

QUIT_WORDS = ("quit", "exit")
# Results a view shows in full: the output pane gets one line for them.
SHOWN = {"walk": "walk", "ste": "streams", "cd": "streams", "check": "check", "pt": "tables",
         "vtd-pt": "tables",
         "pt-lookup": "tables", "events": "events", "cmdq": "cmdq", "tlb": "caches",
        "cfgcache": "caches", "history": "history", "pt-nested": "tables", "msi": "walk",
        "its": "its", "iommufd": "iommufd", "vtd-walk": "walk", "vtd-msi": "walk",
        "vtd-caches": "caches", "vtd-iq": "cmdq", "vtd-faults": "events",
        "vsmmu": "vsmmu"}
# Commands that may take long: run in a worker, the views refresh when they finish.
SLOW = {"goto", "back", "forward", "load", "replay", "import", "check"}
TABS = ("streams", "tables", "walk", "events", "cmdq", "caches", "check", "history", "its",
        "iommufd", "vsmmu")


def one_line(r: dict) -> str:
    """A result a view shows, summed up for the output pane."""
    k = r["kind"]
    if r.get("message"):
        return r["message"]
    if k == "walk":
        who = r["device"] or f"{r['smmu']} {r['sid']:#x}"
        end = r["fault"]["type"] if r["fault"] else f"PA {r['pa']:#x} {r['perm']}"
        return f"walk {who} {r['address']:#x}: {end} ({len(r['steps'])} steps, Walk tab)"
    if k == "vtd-walk":
        who = r["device"] or f"{r['unit']} {r['rid']:#x}"
        end = f"{r['fault']['name']} ({r['fault']['reason']:#04x})" if r["fault"] else \
            f"PA {r['pa']:#x} {r['perm']}" if r["pa"] is not None else r["outcome"]
        return f"walk {who} {r['address']:#x}: {end} ({len(r['steps'])} steps, Walk tab)"
    if k == "check":
        return "check: clean" if r["clean"] else f"check: {r['problems']} problem(s) (Check tab)"
    return f"{k}: shown in the {SHOWN[k]} tab"


class SmmuDbgApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "smmudbg"
    COMMANDS = App.COMMANDS | {RegistryCommands}
    BINDINGS = [
        Binding("ctrl+q", "quit", "quit", priority=True),
        # priority: the app takes the colon as it reads it, so the keys read with it (typed
        # while the app was busy) are handed to the command line, not to the widget that
        # had the focus; check_action lets it through to a text input
        Binding("colon", "focus_command", "cmd", priority=True),
        Binding("c", "check", "check"),
        Binding("w", "walk_here", "walk"),
        Binding("i", "inject", "inject"),
        Binding("e", "edit", "set field"),
        Binding("left_square_bracket", "travel(-1)", "back"),
        Binding("right_square_bracket", "travel(1)", "fwd"),
        Binding("ctrl+s", "save", "save", show=False),
        Binding("ctrl+r", "replay", "replay", show=False),
        Binding("g", "toggle_stage", "stage 1/2/nested", show=False),
        Binding("l", "live_pause", "live on/off", show=False),
    ] + [Binding(str(i + 1), f"tab('{t}')", t, show=False) for i, t in enumerate(TABS[:9])]

    def __init__(self, session=None, loader=None, where: str = ""):
        """session: a ready Session; or loader: a callable building one (run in a worker)."""
        super().__init__()
        self.session = session
        self.loader = loader
        self.where = where
        # the widgets are built while a loader runs; they ask nothing before _start
        self.bridge = Bridge(session)
        self.load_error: str | None = None
        self.current: tuple[str, int] | None = None     # the stream in focus
        self.current_ssid = 0
        self.smmu: str | None = None
        self.vtd_unit: str | None = None               # the VT-d unit in focus (its tabs)
        self.vtd_target: str | None = None             # the VT-d requester in focus
        self.pending: dict[str, dict] = {}             # tab -> view updates for when shown
        self.live: LiveMode | None = None              # follows an attached VM (tui/live.py)
        self.live_interval = DEFAULT_INTERVAL
        self.typed_ahead: list[str] = []                # command lines entered while loading

    # -- layout -------------------------------------------------------------------------------
    def get_default_screen(self):
        screen = super().get_default_screen()
        # no focus while the model loads (the tree and the tabs wait): _start focuses the
        # table (auto-focus picks the first focusable widget, disabled or not)
        screen.AUTO_FOCUS = ""
        return screen

    def compose(self) -> ComposeResult:
        yield Header()
        if self.session is None:
            # the first frame is this line only, so it is on the terminal at once; the
            # workspace follows it (_frame), then the loader runs
            yield Static(f"loading {self.where or 'the scenario'} ...", id="loading")
        else:
            yield Workspace(self.bridge, id="workspace")
        yield Footer()

    def on_mount(self) -> None:
        if self.session is None:
            self.call_after_refresh(self._frame)
        else:
            self._start()

    async def _frame(self) -> None:
        """The workspace while a loader builds the model: the tree and the tabs wait
        (disabled: no view asks for what is not there yet), the progress row says what
        loads, the command line takes lines typed ahead (run_line keeps them)."""
        await self.mount(Workspace(self.bridge, id="workspace"), before=self.query_one(Footer))
        await self.query_one("#loading").remove()
        self._waiting(True)
        self._progress(f"loading {self.where or 'the scenario'} ...", None, None)
        self.refresh_bindings()         # the footer dims the keys that wait (check_action)
        self._load()

    @work(thread=True, exclusive=True, group="load")
    def _load(self) -> None:
        try:
            session = self.loader()
            # what the UI imports on first use, imported here while the frame shows
            registry()
            from .. import render   # noqa: F401
        except SmmuDbgError as e:
            self.load_error = str(e)
        except Exception as e:          # never a traceback
            self.load_error = f"internal error: {type(e).__name__}: {e}"
        try:
            if get_current_worker().is_cancelled:
                return                  # quit while loading: the app is gone
            if self.load_error:
                self.call_from_thread(self.exit, 1)
            else:
                self.call_from_thread(self._loaded, session)
        except RuntimeError:            # the app ended meanwhile (quit while loading)
            pass

    async def _loaded(self, session) -> None:
        self.session = session
        self.bridge.session = session
        self._waiting(False)
        self._start()
        if isinstance(self.focused, CommandLine):
            # the keys that waited for the model (check_action); a focus change (to the
            # stream table) refreshes them anyway
            self.refresh_bindings()
        typed, self.typed_ahead = self.typed_ahead, []
        for line in typed:
            self.run_line(line)

    def _waiting(self, on: bool) -> None:
        """The tree and the tab bar take no clicks while the model loads (disabled: the
        tabs' views are not built before there is something to show). Only these two: a
        disabled container restyles everything under it when enabled again."""
        self.query_one(TopologyTree).disabled = on
        self.query_one("#tabs Tabs").disabled = on

    # While a loader builds the model, only these of the app's own keys act (the others
    # need the model; the footer shows them dimmed): quit, the command line, the palette.
    WHILE_LOADING = {"quit", "focus_command", "command_palette"}

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "focus_command" and (isinstance(self.focused, Input)
                                          or len(self.screen_stack) > 1):
            return False                # a colon typed into a field, or a dialog is open
        if self.session is None and action not in self.WHILE_LOADING and \
                action in {b.action.split("(")[0] for b in self.BINDINGS}:
            return None
        return True

    def _start(self) -> None:
        self._progress(None, None, None)
        topo = self.query_one(TopologyTree).reload()
        self.sub_title = self.bridge.title
        if topo and topo["smmus"]:
            m = topo["smmus"][0]
            self.smmu = m["name"]
            self._show_smmu(m)
            streams = [s for s in topo["streams"] if s["smmu"] == m["name"]]
            if streams:
                self.current = (m["name"], streams[0]["sid"])
                self.query_one(StreamTable).go(streams[0]["sid"], announce=False)
        if not (topo and topo["smmus"]):
            units = (self.bridge.try_query("vtds") or {}).get("units", [])
            if units:
                self.show_unit(units[0]["name"])
        if not isinstance(self.focused, CommandLine):     # (typing ahead: it stays there)
            self.query_one(StreamTable).focus()
        self.live = LiveMode(self, self.live_interval)
        self.call_later(self.live.start, self.query_one("#out", RichLog))
        self.log_line(Text(f"{self.session.system_name}: {self.where or self.session.where}. "
                           f"Enter opens a stream, w walks it, c checks, : types a command, "
                           f"Ctrl-P lists every command.", style="dim"))

    def show_unit(self, name: str) -> None:
        """A VT-d unit in focus: the Events, CmdQ and Caches tabs show its fault records,
        invalidation queue and caches."""
        self.vtd_unit = name
        for tab, v in (("events", EventsView), ("cmdq", CmdqView), ("caches", CacheView)):
            self.when_shown(tab, v.__name__, lambda v=v: self.query_one(v).show(name))

    def _show_smmu(self, m: dict) -> None:
        self.smmu = m["name"]
        self.query_one(StreamTable).show_smmu(m["name"], m["strtab"]["log2size"])
        for tab, v in (("events", EventsView), ("cmdq", CmdqView), ("caches", CacheView)):
            self.when_shown(tab, v.__name__, lambda v=v: self.query_one(v).show(self.smmu))

    # -- output -------------------------------------------------------------------------------
    def log_line(self, renderable) -> None:
        self.query_one("#out", RichLog).write(renderable)

    # -- running commands ---------------------------------------------------------------------
    def on_command_line_run(self, event: CommandLine.Run) -> None:
        self.run_line(event.line)

    def run_line(self, line: str) -> None:
        """A user's command line: logged through the registry, shown, views refreshed."""
        if line.strip() in QUIT_WORDS:
            self.exit(0)
            return
        if self.session is None:
            self.typed_ahead.append(line)
            self.log_line(Text(f"> {line}  (runs once {self.where or 'the scenario'} is "
                               f"loaded)", style="dim"))
            return
        self.log_line(Text(f"> {line}", style="bold"))
        try:
            reg = registry().REGISTRY
            cmd, _ = reg.lookup(reg.tokenize(line))
        except SmmuDbgError as e:
            self.log_line(Text(str(e), style="bold red"))
            return
        if cmd.name in SLOW or cmd.name.split()[0] in SLOW:
            self._run_slow(line, cmd.pure)
            return
        before = None if cmd.pure else snapshot(self.bridge, self._probes())
        out = self.bridge.run(line)
        self._after(out, before)

    @work(thread=True, exclusive=True, group="slow")
    def _run_slow(self, line: str, pure: bool) -> None:
        self.call_from_thread(self._progress, f"{line.split()[0]} ...", None, None)
        before = None if pure else snapshot(self.bridge, self._probes())
        out = self.bridge.run(line)
        self.call_from_thread(self._progress, None, None, None)
        self.call_from_thread(self._after, out, before)

    def _after(self, out, before) -> None:
        if not out.ok:
            self.log_line(Text(out.error, style="bold red"))
        else:
            r = out.result.to_json()
            if r["kind"] in SHOWN:
                self.log_line(Text(one_line(r), style="dim"))
            else:
                try:
                    from ..render import render
                    self.log_line(render(out.result))
                except Exception as e:
                    self.log_line(Text(f"(cannot render: {e})", style="red"))
            if before is not None:
                for t in describe_changes(before, snapshot(self.bridge, self._probes())):
                    self.log_line(Text(t, style="yellow"))
            self._focus_result(out.result.to_json())
        self.refresh_views()

    def _focus_result(self, r: dict) -> None:
        kind = r["kind"]
        if kind == "walk":
            self.current = (r["smmu"], r["sid"])
            self.drop_pending("walk", "prefill")

            def load():
                self.query_one(WalkStepper).load(r)
                self.query_one("#walk-steps").focus()
            self.when_shown("walk", "load", load)
            self.show_tab("walk")
        elif kind in ("vtd-caches", "vtd-iq", "vtd-faults"):
            self.show_unit(r["unit"])
            self.show_tab({"vtd-iq": "cmdq", "vtd-faults": "events"}.get(kind, "caches"))
        elif kind == "vtd-walk":
            self.show_unit(r["unit"])
            self.vtd_target = r["device"] or f"{r['unit']} {r['rid']:#x}"
            self.drop_pending("walk", "prefill")

            def load_vtd():
                self.query_one(WalkStepper).load(r)
                self.query_one("#walk-steps").focus()
            self.when_shown("walk", "load", load_vtd)
            self.show_tab("walk")
        elif kind in ("msi", "vtd-msi"):
            self.drop_pending("walk", "prefill")

            def load_msi():
                self.query_one(WalkStepper).load_msi(r)
                self.query_one("#walk-steps").focus()
            self.when_shown("walk", "load", load_msi)
            self.show_tab("walk")
        elif kind in ("ste", "cd"):
            self.focus_stream(r["smmu"], r["sid"], r.get("ssid"))
        elif kind == "check":
            self.when_shown("check", "show", lambda: self.query_one(CheckView).show(r))
            self.show_tab("check")
        elif kind == "vtd-pt":
            target = (r["device"] or f"{r['unit']} {r['rid']:#x}") + f" pasid={r['pasid']}"
            stage = "nested" if r["stage"] == "nested" else int(r["stage"])
            self.when_shown("tables", "PageTableView",
                            lambda: self.query_one(PageTableView).show(target, stage))
            self.show_tab("tables")
        elif kind in ("pt", "pt-lookup", "pt-nested"):
            target = r["domain"] or f"{r['smmu']} {r['sid']:#x}" + (
                f" ssid={r['ssid']}" if r.get("ssid") else "")
            stage = "nested" if kind == "pt-nested" else r["stage"] if not r["domain"] else None
            self.when_shown("tables", "PageTableView",
                            lambda: self.query_one(PageTableView).show(target, stage))
            self.show_tab("tables")
        elif kind == "events":
            self.show_tab("events")
        elif kind == "cmdq":
            self.show_tab("cmdq")
        elif kind in ("tlb", "cfgcache"):
            self.show_tab("caches")
        elif kind == "history":
            self.show_tab("history")
        elif kind == "its":
            self.when_shown("its", "ItsView", lambda: self.query_one(ItsView).show(
                r["name"], r["device"]["device_id"] if r["device"] else None))
            self.show_tab("its")
        elif kind == "iommufd":
            self.show_tab("iommufd")
        elif kind == "vsmmu":
            names = [v["name"] for v in r["vsmmus"]]
            self.when_shown("vsmmu", "VsmmuView", lambda: self.query_one(VsmmuView).show(
                names[0] if len(names) == 1 else None))
            self.show_tab("vsmmu")

    def refresh_views(self) -> None:
        """The state (or the log position) changed: every view asks again (a hidden tab when
        it is next shown)."""
        self.sub_title = self.bridge.title
        self.query_one(TopologyTree).reload()
        self.query_one(StreamTable).invalidate()
        self.query_one(EntryView).refresh_view()
        # a view's pending update (a show) refreshes it too: it is kept
        for tab, v in (("tables", PageTableView), ("history", HistoryView), ("its", ItsView),
                       ("iommufd", IommufdView), ("vsmmu", VsmmuView)):
            self.when_shown(tab, v.__name__, lambda v=v: self.query_one(v).refresh_view(),
                            keep=True)
        for tab, v in (("events", EventsView), ("cmdq", CmdqView), ("caches", CacheView)):
            self.when_shown(tab, v.__name__, lambda v=v: self.query_one(v).show(
                self.query_one(v).smmu or self.smmu), keep=True)

    def when_shown(self, tab: str, key: str, fn, keep: bool = False) -> None:
        """Run fn now if tab is on screen (and its content is built), else when it is next
        shown (the last fn per key wins, unless keep: then a pending one stays): hidden
        views cost nothing while the user works elsewhere, and a tab's views are only
        mounted when it is first shown (LazyPane)."""
        pane = self.query_one(f"#{tab}", TabPane)
        if self.query_one(TabbedContent).active == tab and getattr(pane, "ready", True):
            fn()
        elif keep:
            self.pending.setdefault(tab, {}).setdefault(key, fn)
        else:
            self.pending.setdefault(tab, {})[key] = fn

    def drop_pending(self, tab: str, key: str) -> None:
        """A view was just updated directly: forget its older pending update."""
        self.pending.get(tab, {}).pop(key, None)

    async def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if isinstance(event.pane, LazyPane):
            await event.pane.ensure()
        f = self.focused
        if f is not None and event.pane not in f.ancestors and event.tabbed_content in \
                f.ancestors:
            self.action_focus_view()        # the focus was in the tab just hidden
        for fn in self.pending.pop(event.pane.id, {}).values():
            fn()

    def _progress(self, label: str | None, done: int | None, total: int | None) -> None:
        row = self.query_one("#progress-row")
        if label is None:
            row.display = False
            self.query_one("#progress", ProgressBar).update(total=1, progress=0)
            return
        row.display = True
        self.query_one("#progress-label", Static).update(label)
        self.query_one("#progress", ProgressBar).update(total=total, progress=done or 0)

    # -- focus: one selection, every view -----------------------------------------------------
    def show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def focus_stream(self, smmu: str, sid: int, ssid: int | None = None,
                     tab: str | None = "streams") -> None:
        self.current = (smmu, sid)
        if ssid is not None:
            self.current_ssid = ssid
        if smmu != self.smmu:
            topo = self.bridge.try_query("smmus")
            m = next((x for x in (topo or {}).get("smmus", []) if x["name"] == smmu), None)
            if m:
                self._show_smmu(m)
        self.query_one(StreamTable).go(sid, announce=False)
        if tab:
            self.show_tab(tab)
        ste = self.query_one(EntryView).show(smmu, sid, ssid)
        target = f"{smmu} {sid:#x}"
        self.when_shown("walk", "prefill", lambda: self.query_one(WalkStepper).prefill(
            self._target_text(smmu, sid, ste), None, ssid))
        if ste and ste["config"] in ("s1", "nested", "s2"):
            self.when_shown("tables", "PageTableView", lambda: self.query_one(
                PageTableView).show(target + (f" ssid={ssid}" if ssid else ""),
                                    2 if ste["config"] == "s2" else None))

    @staticmethod
    def _target_text(smmu: str, sid: int, ste: dict | None) -> str:
        return ste["device"] if ste and ste.get("device") else f"{smmu} {sid:#x}"

    def on_topology_tree_focus(self, event: TopologyTree.Focus) -> None:
        d = event.data
        if event.kind == "smmu":
            self._show_smmu(d)
            self.show_tab("streams")
        elif event.kind == "stream":
            self.focus_stream(d["smmu"], d["sid"])
            self.focus_device(self.query_one(TopologyTree).devices.get(d["name"]))
        elif event.kind == "device":
            if d.get("stream_ids"):
                self.focus_stream(*d["stream_ids"][0])
            self.focus_device(d)
        elif event.kind == "its":
            self.when_shown("its", "ItsView", lambda: self.query_one(ItsView).show(d["name"]))
            self.show_tab("its")
        elif event.kind == "iommufd":
            self.show_tab("iommufd")
        elif event.kind in ("vsmmu", "vdevice"):
            name = d["name"] if event.kind == "vsmmu" else d["vsmmu"]["name"]
            vsid = d["row"]["vsid"] if event.kind == "vdevice" else None
            self.when_shown("vsmmu", "VsmmuView",
                            lambda: self.query_one(VsmmuView).show(name, vsid))
            self.show_tab("vsmmu")
        elif event.kind == "bridge":
            from ..render import pci_details
            self.log_line(Text(pci_details(d["pci"], d["name"])))
        elif event.kind == "cd":
            st = d["stream"]
            self.focus_stream(st["smmu"], st["sid"], d["ssid"])
        elif event.kind == "domain":
            self.when_shown("tables", "PageTableView",
                            lambda: self.query_one(PageTableView).show(d["name"]))
            self.show_tab("tables")
        elif event.kind == "vtd":
            self.show_unit(d["name"])
            self.log_line(Text(f"{d['name']}: VT-d unit at {d['base']:#x}, HAW {d['haw']}: "
                               f"regs, tlb, cfgcache, events, check {d['name']}"))
        elif event.kind == "vtd-device":
            target = d["name"] or f"{d['unit']} {d['rid']:#x}"
            self.show_unit(d["unit"])
            self.vtd_target = target
            self.when_shown("walk", "prefill", lambda: self.query_one(WalkStepper).prefill(
                target, None, d.get("pasid")))
            self.log_line(Text(f"{target}: RID {d['rid']:#06x} ({d['bdf']}) behind "
                               f"{d['unit']}, PASID {d.get('pasid', d['rid_pasid'])}: "
                               f"walk/pt/context/pasid/msi {target}"))
            self.show_tab("walk")
        elif event.kind == "vm":
            self.log_line(Text(f"{d['name']}: " + ", ".join(
                f"IPA {r['ipa']:#x}+{r['size']:#x} -> PA {r['pa']:#x}" for r in d["ram"])))

    def focus_device(self, d: dict | None) -> None:
        """A PCI device (its `pci` row) in focus: its ITS device entry and its iommufd
        objects follow (when their tabs are shown)."""
        if d is None:
            return
        if d.get("device_id") is not None:
            self.when_shown("its", "ItsView.device",
                            lambda: self.query_one(ItsView).focus_device(d["device_id"]))
        self.when_shown("iommufd", "IommufdView.device",
                        lambda: self.query_one(IommufdView).focus_device(d["name"]))

    def on_stream_table_chosen(self, event: StreamTable.Chosen) -> None:
        self.current = (event.smmu, event.sid)
        if event.open:
            self.focus_stream(event.smmu, event.sid)

    def on_stream_table_closed(self, event: StreamTable.Closed) -> None:
        self.query_one(EntryView).close()

    def on_walk_stepper_its_jump(self, event: WalkStepper.ItsJump) -> None:
        self.drop_pending("its", "ItsView.device")
        self.when_shown("its", "ItsView", lambda: self.query_one(ItsView).jump(
            event.its, event.table, event.device, event.index))
        self.show_tab("its")

    def on_vsmmu_view_chosen(self, event: VsmmuView.Chosen) -> None:
        self.focus_stream(event.smmu, event.sid)

    def on_walk_stepper_run(self, event: WalkStepper.Run) -> None:
        self.run_line(event.line)

    def on_walk_stepper_step(self, event: WalkStepper.Step) -> None:
        w, s = event.walk, event.walk["steps"][event.index]
        if w.get("kind") == "vtd-walk":
            if s["what"] in ("fs", "ss"):
                self.when_shown("tables", "PageTableView",
                                lambda: self.query_one(PageTableView).follow_vtd(w, event.index))
            return
        if s["what"] in ("S1", "S2"):
            self.when_shown("tables", "PageTableView",
                            lambda: self.query_one(PageTableView).follow_step(w, event.index))
        elif s["what"] in ("STE", "CD"):
            self.query_one(EntryView).show(w["smmu"], w["sid"],
                                           (w.get("ssid") or 0) if s["what"] == "CD" else None)

    def on_history_view_goto(self, event: HistoryView.Goto) -> None:
        self.run_line(f"goto {event.n}")

    def on_check_view_jump(self, event: CheckView.Jump) -> None:
        self.focus_stream(event.smmu, event.sid)

    def on_check_view_fix(self, event: CheckView.Fix) -> None:
        self.run_line(event.line)

    # -- actions ------------------------------------------------------------------------------
    def action_focus_command(self) -> None:
        # at once, not after the queued events (focus() defers): the keys after the colon
        # are forwarded to whatever has the focus when the app reads them
        self.screen.set_focus(self.query_one(CommandLine))

    def action_tab(self, tab: str) -> None:
        self.show_tab(tab)
        self.when_shown(tab, "focus", self.action_focus_view)

    def action_focus_view(self) -> None:
        """Focus the first focusable widget of the tab on show (Esc from the command line)."""
        pane = self.query_one(TabbedContent).active_pane
        if pane is not None:
            ws = [w for w in pane.query("*") if w.focusable]
            for w in sorted(ws, key=lambda w: isinstance(w, (Input, Select, Checkbox, Button))):
                w.focus()
                return

    def action_check(self) -> None:
        self.run_line("check")

    def _stream_words(self) -> str | None:
        if self.current is None:
            return None
        ste = self.bridge.try_query(f"ste {self.current[0]} {self.current[1]:#x}")
        return self._target_text(*self.current, ste)

    def action_walk_here(self) -> None:
        words = self._stream_words() if self.current is not None else None

        def prefill():
            if words is not None:
                self.query_one(WalkStepper).prefill(words)
            self.query_one("#walk-addr").focus()
        self.drop_pending("walk", "load")
        self.when_shown("walk", "prefill", prefill)
        self.show_tab("walk")

    def prefill(self, text: str) -> None:
        cl = self.query_one(CommandLine)
        cl.value = text
        cl.cursor_position = len(text)
        cl.focus()

    def _probes(self) -> list:
        ws = next(iter(self.query(WalkStepper)), None)      # None: the walk tab never shown
        return ws.probes() if ws is not None else []

    def action_edit(self) -> None:
        """The field editor for what is in focus: the walk step's descriptor or CD, and the
        STE and CD of the stream in focus."""
        from .fieldedit import FieldEditor, edit_targets
        targets = edit_targets(self.bridge, self._stream_words(), self.current_ssid,
                               self.query_one(TabbedContent).active,
                               next(iter(self.query(WalkStepper)), None))
        if targets:
            self.push_screen(FieldEditor(self.bridge, targets), self._picked)

    def action_inject(self) -> None:
        from .inject import InjectMenu
        self.push_screen(InjectMenu(self._stream_words(), self.smmu, self.vtd_unit,
                                    self.vtd_target), self._picked)

    def _picked(self, line: str | None) -> None:
        if line:
            if line.endswith(" "):
                self.prefill(line)      # needs an argument the user types
            else:
                self.run_line(line)

    def action_travel(self, d: int) -> None:
        self.run_line("back" if d < 0 else "forward")

    def action_save(self) -> None:
        self.prefill("save " + (shlex.quote(self.session.path) if self.session.path else ""))

    def action_live_pause(self) -> None:
        if self.live is not None:
            self.live.toggle()

    def action_toggle_stage(self) -> None:
        pt = next(iter(self.query(PageTableView)), None)     # None: tab never shown
        if pt is not None and pt.source:
            pt.show(pt.source, pt.next_stage())

    def action_replay(self) -> None:
        self.replay(None)

    @work(thread=True, exclusive=True, group="slow")
    def replay(self, path: str | None) -> None:
        """Replay a session file (or this session's log) with a progress bar."""
        worker = get_current_worker()
        self.call_from_thread(self._progress, "replay: starting", 0, None)
        try:
            with self.bridge.lock:
                fresh, entries = replay_source(self.session, path)
        except SmmuDbgError as e:
            self.call_from_thread(self._progress, None, None, None)
            self.call_from_thread(self.log_line, Text(str(e), style="bold red"))
            return

        def step(done, total):
            if not worker.is_cancelled:
                self.call_from_thread(self._progress, f"replay {done}/{total}", done, total)
        report = replay_steps(fresh, entries, step)
        self.call_from_thread(self._progress, None, None, None)
        msg = (f"replayed {report['replayed']} commands identically" if report["identical"]
               else f"command #{report['diverged']['index']} diverged: "
                    f"{report['diverged']['command']} ({report['differing']} differ)")
        self.call_from_thread(self.log_line, Text(msg, style="green" if report["identical"]
                                                   else "bold red"))

    def palette_pick(self, name: str, needs_args: bool) -> None:
        if needs_args:
            self.prefill(name + " ")
        else:
            self.run_line(name)


class Workspace(Vertical):
    """Everything between the header and the footer once the session is there: tree, tabs,
    output, command line."""

    def __init__(self, bridge, **kw):
        super().__init__(**kw)
        self.bridge = bridge

    def compose(self) -> ComposeResult:
        b = self.bridge
        with Horizontal(id="main"):
            yield TopologyTree(b, id="topo")
            with TabSet(id="tabs", initial="streams"):
                # the STE/CD detail lives under the table: opening a stream changes neither
                # the tab nor the focus (each of which restyles much of the screen)
                with Pane("Streams", id="streams"):
                    yield Static(header_text(), id="st-header")
                    yield StreamTable(b, id="strtab")
                    yield EntryView(b, id="entryview")
                yield LazyPane("Tables", lambda: PageTableView(b, id="ptview"), id="tables")
                yield LazyPane("Walk", lambda: WalkStepper(b, id="stepper"), id="walk")
                yield LazyPane("Events", lambda: EventsView(b, id="evview"), id="events")
                yield LazyPane("CmdQ", lambda: CmdqView(b, id="cqview"), id="cmdq")
                yield LazyPane("Caches", lambda: CacheView(b, id="cacheview"), id="caches")
                yield LazyPane("Check", lambda: CheckView(b, id="checkview"), id="check")
                yield LazyPane("History", lambda: HistoryView(b, id="histview"), id="history")
                yield LazyPane("ITS", lambda: ItsView(b, id="itsview"), id="its")
                yield LazyPane("iommufd", lambda: IommufdView(b, id="fdview"), id="iommufd")
                yield LazyPane("vSMMU", lambda: VsmmuView(b, id="vsview"), id="vsmmu")
        yield RichLog(id="out", wrap=True, markup=False, highlight=False, max_lines=2000)
        with Horizontal(id="progress-row"):
            yield Static("", id="progress-label")
            # a determinate bar when idle: an indeterminate one animates (and keeps the app busy)
            yield ProgressBar(id="progress", total=1, show_eta=False)
        yield CommandLine(b, id="cmdline")
