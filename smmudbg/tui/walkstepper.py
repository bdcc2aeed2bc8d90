"""The walk stepper: choose a stream, SSID, address, access and privilege, run `walk` (dry by
default: no cache fill, no event), then step forward and back through every fetch of the walk
(the result's steps: L1STD, STE, the CD through stage 2, each stage-1 level with its stage-2
sub-walk, the final stage 2). The current step is highlighted here and posted as a Step
message so the page-table and bit views can highlight the same descriptor. A fault is shown
with its event record fields and reason."""
from __future__ import annotations

import shlex

from rich.text import Text
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Checkbox, DataTable, Input, Select, Static

from .fmt import hx

FAULT_KEYS = ("type", "s2", "class", "input_addr", "ipa", "fetch_addr", "rnw", "ind", "pnu",
              "ssv", "stall", "record")


def walk_line(target: str, address: str, ssid: str = "", access: str = "read",
              priv: bool = False, dry: bool = True) -> str:
    """The `walk` command line for the stepper's form."""
    parts = ["walk", *shlex.split(target), address]
    if ssid.strip():
        parts.append(f"ssid={ssid.strip()}")
    if access != "read":
        parts.append(f"access={access}")
    if priv:
        parts.append("priv")
    if dry:
        parts.append("dry")
    return " ".join(parts)


def step_name(s: dict) -> str:
    if s["what"] in ("S1", "S2"):
        name = f"{s['what']} L{s['level']}"
        if s.get("purpose"):
            name += f" (for {s['purpose']})"
        return name
    return s["what"]


class WalkStepper(Vertical):
    BINDINGS = [
        Binding("right,n", "step(1)", "next step"),
        Binding("left,p", "step(-1)", "prev step"),
    ]

    class Step(Message):
        """The current step changed: walk is the whole result, index the step."""
        def __init__(self, walk: dict, index: int):
            super().__init__()
            self.walk, self.index = walk, index

    class Run(Message):
        """The form asks the app to run this walk command line."""
        def __init__(self, line: str):
            super().__init__()
            self.line = line

    def __init__(self, bridge, **kw):
        super().__init__(**kw)
        self.bridge = bridge
        self.walk: dict | None = None
        self.index = 0

    def compose(self):
        with Horizontal(classes="walk-form"):
            yield Input(placeholder="device | SMMU SID", id="walk-target")
            yield Input(placeholder="address", id="walk-addr")
            yield Input(placeholder="ssid", id="walk-ssid")
        with Horizontal(classes="walk-form"):
            yield Select([(a, a) for a in ("read", "write", "exec")], value="read",
                         allow_blank=False, id="walk-access")
            yield Checkbox("priv", id="walk-priv")
            yield Checkbox("dry", True, id="walk-dry")
            yield Button("Walk", id="walk-go", variant="primary")
        yield Static("Type a walk here or in the command line (walk DEVICE ADDRESS).",
                     id="walk-summary")
        yield DataTable(id="walk-steps", cursor_type="row")
        with VerticalScroll(id="walk-detail-box"):
            yield Static(self._msi_note(), id="walk-detail")

    def _msi_note(self) -> str:
        h = self.bridge.try_query("help msi")
        if h is None:
            return ""
        if not h["available"]:
            return f"MSI stepping: not yet, it waits for the msi command ({h['why']})."
        return "MSI stepping: msi DEVICE VECTOR in the command line."

    def on_mount(self) -> None:
        t = self.query_one("#walk-steps", DataTable)
        t.add_columns("#", "step", "table", "idx", "desc @", "descriptor", "outcome")

    def prefill(self, target: str, address: int | None = None, ssid: int | None = None):
        self.query_one("#walk-target", Input).value = target
        if address is not None:
            self.query_one("#walk-addr", Input).value = hx(address)
        self.query_one("#walk-ssid", Input).value = "" if ssid is None else str(ssid)

    def form_line(self) -> str:
        return walk_line(self.query_one("#walk-target", Input).value,
                         self.query_one("#walk-addr", Input).value,
                         self.query_one("#walk-ssid", Input).value,
                         self.query_one("#walk-access", Select).value,
                         self.query_one("#walk-priv", Checkbox).value,
                         self.query_one("#walk-dry", Checkbox).value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "walk-go":
            event.stop()
            self.post_message(self.Run(self.form_line()))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id and event.input.id.startswith("walk-"):
            event.stop()
            self.post_message(self.Run(self.form_line()))

    # -- showing a walk -----------------------------------------------------------------------
    def load(self, walk: dict) -> None:
        """Show a walk result (from the form, the command line, or a replayed log)."""
        self.walk = walk
        self.prefill(walk["device"] or f"{walk['smmu']} {walk['sid']:#x}", walk["address"],
                     walk["ssid"])
        self.query_one("#walk-access", Select).value = walk["access"]
        self.query_one("#walk-priv", Checkbox).value = walk["priv"]
        self.query_one("#walk-dry", Checkbox).value = walk["dry"]
        t = self.query_one("#walk-steps", DataTable)
        t.clear()
        for i, s in enumerate(walk["steps"]):
            at = hx(s["desc_pa"])
            if s.get("desc_ipa") is not None and s["desc_ipa"] != s["desc_pa"]:
                at = f"{hx(s['desc_ipa'])}>{at}"
            style = "bold red" if s["outcome"] not in ("ok", "table", "block", "page") else ""
            t.add_row(str(i + 1), Text(step_name(s), style=style), hx(s["table"]),
                      str(s["index"]), at, f"{s['desc']:#018x}" if s["desc"] is not None
                      else "-", Text(s["outcome"], style=style), key=str(i))
        self.query_one("#walk-summary", Static).update(self._summary(walk))
        self.index = 0
        if walk["steps"]:
            t.move_cursor(row=0)
        self._show_step()

    def _summary(self, w: dict) -> Text:
        t = Text()
        who = w["device"] or f"{w['smmu']} SID {hx(w['sid'])}"
        t.append(f"{who} {hx(w['address'])}", style="bold")
        if w["ssid"] is not None:
            t.append(f" ssid {w['ssid']}")
        t.append(f" {w['access']}{' priv' if w['priv'] else ''}"
                 f"{' dry' if w['dry'] else ''}: ")
        if w["fault"]:
            t.append(f"{w['fault']['type']}", style="bold red")
            if w["fault"].get("s2"):
                t.append(" at stage 2", style="bold red")
        else:
            if w["ipa"] is not None:
                t.append(f"IPA {hx(w['ipa'])} -> ")
            t.append(f"PA {hx(w['pa'])} {w['perm']}", style="green")
            if w["hit"]:
                t.append(" (IOTLB hit)")
        t.append(f"  {len(w['steps'])} steps")
        return t

    def action_step(self, d: int) -> None:
        if not self.walk or not self.walk["steps"]:
            return
        self.index = max(0, min(len(self.walk["steps"]) - 1, self.index + d))
        self.query_one("#walk-steps", DataTable).move_cursor(row=self.index)
        self._show_step()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "walk-steps" and self.walk:
            if event.cursor_row != self.index:
                self.index = event.cursor_row
                self._show_step()

    def _show_step(self) -> None:
        box = self.query_one("#walk-detail", Static)
        w = self.walk
        if not w or not w["steps"]:
            box.update(self._fault(w) if w and w["fault"] else "")
            return
        s = w["steps"][self.index]
        t = Text()
        t.append(f"step {self.index + 1}/{len(w['steps'])}: {step_name(s)}", style="bold")
        t.append(f"  input {hx(s.get('in_addr'))}\n")
        t.append(f"table {hx(s['table'])} index {s['index']}: descriptor at ")
        if s.get("desc_ipa") is not None:
            t.append(f"IPA {hx(s['desc_ipa'])} = ")
        t.append(f"PA {hx(s['desc_pa'])}\n")
        t.append(f"value {hx(s['desc'])} -> {s['outcome']}\n",
                 style="bold red" if s["outcome"] not in ("ok", "table", "block", "page")
                 else "")
        if self.index == len(w["steps"]) - 1 and w["fault"]:
            t.append_text(self._fault(w))
        t.append("\n" + self._msi_note(), style="dim")
        box.update(t)
        self.post_message(self.Step(w, self.index))

    def _fault(self, w: dict) -> Text:
        f = w["fault"]
        t = Text()
        t.append(f"fault {f['type']}", style="bold red")
        if f.get("reason"):
            t.append(f": {f['reason']}", style="red")
        t.append("\nevent record: " + ", ".join(f"{k}={hx(f[k])}" for k in FAULT_KEYS
                                                 if k in f and f[k] is not None))
        if w["event"] is not None:
            t.append(f"\nrecorded as event #{w['event']} (Events tab)")
        elif w["dry"]:
            t.append("\ndry walk: no event recorded (clear dry to record it)", style="dim")
        return t
