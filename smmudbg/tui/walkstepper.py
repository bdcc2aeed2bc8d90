"""The walk stepper: choose a stream, SSID, address, access and privilege, run `walk` (dry by
default: no cache fill, no event), then step forward and back through every fetch of the walk
(the result's steps: L1STD, STE, the CD through stage 2, each stage-1 level with its stage-2
sub-walk, the final stage 2). The current step is highlighted here and posted as a Step
message so the page-table and bit views can highlight the same descriptor. A fault is shown
with its event record fields and reason.

The same stepper steps an MSI (`msi DEVICE VECTOR dry`, or `msi SMMU SID ADDRESS data=N dry`):
the rows of tui/msisteps.py, from the RID through the IORT, the SMMU's walk and the ITS to the
LPI; a broken path stops at the failing row with the reason and the fix."""
from __future__ import annotations

import shlex

from rich.text import Text
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Checkbox, DataTable, Input, Select, Static

from .fmt import hx, step_name
from .msisteps import WALK_OK, its_target, msi_detail, msi_line, msi_rows, msi_summary
from . import vtdsteps

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


class WalkStepper(Vertical):
    BINDINGS = [
        Binding("right,n", "step(1)", "next step"),
        Binding("left,p", "step(-1)", "prev step"),
        Binding("j", "its_jump", "to ITS"),
    ]

    class ItsJump(Message):
        """An MSI's ITS step chosen: show that ITS table with the row in focus."""
        def __init__(self, its: str, table: str, device: int, index: int):
            super().__init__()
            self.its, self.table, self.device, self.index = its, table, device, index

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
        self.msi: dict | None = None            # an MSI result when stepping an MSI
        self.msi_rows: list[dict] = []
        self.index = 0

    def compose(self):
        with Horizontal(classes="walk-form"):
            yield Input(placeholder="device | SMMU SID", id="walk-target")
            yield Input(placeholder="address", id="walk-addr")
            yield Input(placeholder="ssid", id="walk-ssid")
            yield Input(placeholder="MSI vector|data", id="msi-vector")
        with Horizontal(classes="walk-form"):
            yield Select([(a, a) for a in ("read", "write", "exec")], value="read",
                         allow_blank=False, id="walk-access")
            yield Checkbox("priv", id="walk-priv")
            yield Checkbox("dry", True, id="walk-dry")
            yield Button("Walk", id="walk-go", variant="primary")
            yield Button("MSI", id="msi-go")
        yield Static("Type a walk here or in the command line (walk DEVICE ADDRESS).",
                     id="walk-summary")
        yield DataTable(id="walk-steps", cursor_type="row")
        with VerticalScroll(id="walk-detail-box"):
            yield StepDetail(self._msi_note(), id="walk-detail")

    def _msi_note(self) -> str:
        h = self.bridge.try_query("help msi")
        if h is None:
            return ""
        if not h["available"]:
            return f"MSI stepping: not yet, it waits for the msi command ({h['why']})."
        return ("MSI stepping: a device and a vector (or SMMU SID, the doorbell address and the "
                "data), then MSI; or msi DEVICE VECTOR in the command line.")

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

    def msi_form_line(self) -> str:
        return msi_line(self.query_one("#walk-target", Input).value,
                        self.query_one("#msi-vector", Input).value,
                        self.query_one("#walk-addr", Input).value,
                        self.query_one("#walk-dry", Checkbox).value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id in ("walk-go", "msi-go"):
            event.stop()
            self.post_message(self.Run(self.form_line() if event.button.id == "walk-go"
                                       else self.msi_form_line()))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "msi-vector":
            event.stop()
            self.post_message(self.Run(self.msi_form_line()))
        elif event.input.id and event.input.id.startswith("walk-"):
            event.stop()
            self.post_message(self.Run(self.form_line()))

    # -- showing a walk -----------------------------------------------------------------------
    def load(self, walk: dict) -> None:
        """Show a walk result (from the form, the command line, or a replayed log); a VT-d
        walk (vtd-walk) with VT-d's names (tui/vtdsteps.py)."""
        self.walk, self.msi, self.msi_rows = walk, None, []
        vtd = vtdsteps.is_vtd(walk)
        if vtd:
            target = walk["device"] or f"{walk['unit']} {walk['rid']:#x}"
            sub, name, ok, summary = walk["pasid"], vtdsteps.step_name, vtdsteps.OK, \
                vtdsteps.summary(walk)
        else:
            target = walk["device"] or f"{walk['smmu']} {walk['sid']:#x}"
            sub, name, ok, summary = walk["ssid"], step_name, ("ok", "table", "block", "page"), \
                self._summary(walk)
        self.prefill(target, walk["address"], sub)
        self.query_one("#walk-access", Select).value = walk["access"]
        self.query_one("#walk-priv", Checkbox).value = walk["priv"]
        self.query_one("#walk-dry", Checkbox).value = walk["dry"]
        t = self.query_one("#walk-steps", DataTable)
        t.clear()
        for i, s in enumerate(walk["steps"]):
            at = hx(s["desc_pa"])
            # a table read through a stage 2: its IPA (GPA on VT-d) before the PA
            via = s.get("desc_gpa") if vtd else s.get("desc_ipa")
            if via is not None and via != s["desc_pa"]:
                at = f"{hx(via)}>{at}"
            style = "" if s["outcome"] in ok else "bold red"
            t.add_row(str(i + 1), Text(name(s), style=style), hx(s["table"]),
                      str(s["index"]), at, f"{s['desc']:#018x}" if s["desc"] is not None
                      else "-", Text(s["outcome"], style=style), key=str(i))
        self.query_one("#walk-summary", Static).update(summary)
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

    def load_msi(self, r: dict) -> None:
        """Show an `msi` result as steps (from the form or the command line); on VT-d the
        interrupt request through its IRTE (tui/vtdsteps.py)."""
        vtd = vtdsteps.is_vtd(r)
        self.walk, self.msi = None, r
        self.msi_rows = vtdsteps.msi_rows(r) if vtd else msi_rows(r)
        if vtd:
            self.query_one("#walk-target", Input).value = r["device"] or \
                f"{r['unit']} {hx(r['rid'])}"
            if r["device"] is None:
                self.query_one("#walk-addr", Input).value = hx(r["address"])
                self.query_one("#msi-vector", Input).value = hx(r["msi_data"])
        elif r["device"] is not None:
            self.query_one("#walk-target", Input).value = r["device"]
            self.query_one("#msi-vector", Input).value = str(r["vector"])
        else:
            self.query_one("#walk-target", Input).value = f"{r['smmu']} {hx(r['sid'])}"
            self.query_one("#walk-addr", Input).value = hx(r["address"])
            self.query_one("#msi-vector", Input).value = hx(r["msi_data"])
        t = self.query_one("#walk-steps", DataTable)
        t.clear()
        for i, x in enumerate(self.msi_rows):
            style = "" if x["ok"] else "bold red"
            t.add_row(str(i + 1), Text(x["name"], style=style), x["table"], x["idx"], x["at"],
                      x["value"], Text(x["outcome"], style=style), key=str(i))
        self.query_one("#walk-summary", Static).update(
            vtdsteps.msi_summary(r) if vtd else msi_summary(r))
        self.index = 0
        if self.msi_rows:
            t.move_cursor(row=0)
        self._show_step()

    def probes(self) -> list[tuple[str, int, int | None]]:
        """(stream, address, ssid) the user is looking at: the walk's, or the MSI's doorbell
        IOVA, for tui/changes.py to tell when an action changes their translation."""
        if self.walk is not None:
            w = self.walk
            if vtdsteps.is_vtd(w):
                return [(f"{w['unit']} {w['rid']:#x}", w["address"], w["pasid"])]
            return [(f"{w['smmu']} {w['sid']:#x}", w["address"], w["ssid"])]
        if vtdsteps.is_vtd(self.msi):
            return []
        if self.msi is not None and self.msi["smmu"] and self.msi["sid"] is not None \
                and self.msi["address"] is not None:
            m = self.msi
            return [(f"{m['smmu']} {m['sid']:#x}", m["address"], None)]
        return []

    def current_step(self) -> dict | None:
        """The walk step under the cursor (of a walk, or of an MSI's SMMU part); None on
        VT-d (the SMMU descriptor editor does not apply)."""
        if vtdsteps.is_vtd(self.walk) or vtdsteps.is_vtd(self.msi):
            return None
        if self.walk is not None and self.walk["steps"]:
            return self.walk["steps"][self.index]
        if self.msi is not None and self.msi_rows:
            i = self.msi_rows[self.index].get("walk_index")
            if i is not None:
                walk = next(s for s in self.msi["steps"] if s["what"] == "smmu")
                return walk["walk"][i]
        return None

    def _count(self) -> int:
        if self.msi is not None:
            return len(self.msi_rows)
        return len(self.walk["steps"]) if self.walk else 0

    def action_step(self, d: int) -> None:
        if not self._count():
            return
        self.index = max(0, min(self._count() - 1, self.index + d))
        self.query_one("#walk-steps", DataTable).move_cursor(row=self.index)
        self._show_step()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "walk-steps" and self._count():
            if event.cursor_row != self.index:
                self.index = event.cursor_row
                self._show_step()

    def action_its_jump(self) -> None:
        """From an MSI's ITS step (DTE, ITE, CTE, the LPI) or its GITS_TRANSLATER write: the
        ITS panel with that table and row in focus."""
        if self.msi is None or not self.msi_rows:
            return
        target = its_target(self.msi, self.msi_rows[self.index])
        if target is not None:
            self.post_message(self.ItsJump(*target))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # Enter on a step, or a click on the step in focus
        if event.data_table.id == "walk-steps" and self.msi is not None:
            event.stop()
            self.index = event.cursor_row
            self.action_its_jump()

    def _show_step(self) -> None:
        box = self.query_one("#walk-detail", Static)
        if self.msi is not None:
            self._show_msi_step(box)
            return
        w = self.walk
        if not w or not w["steps"]:
            box.update(self._fault(w) if w and w["fault"] else "")
            return
        if vtdsteps.is_vtd(w):
            box.update(vtdsteps.detail(w, self.index))
            self.post_message(self.Step(w, self.index))
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
                 style="bold red" if s["outcome"] not in WALK_OK
                 else "")
        if self.index == len(w["steps"]) - 1 and w["fault"]:
            t.append_text(self._fault(w))
        t.append("\n" + self._msi_note(), style="dim")
        box.update(t)
        self.post_message(self.Step(w, self.index))

    def _show_msi_step(self, box: Static) -> None:
        r, rows = self.msi, self.msi_rows
        if not rows:
            box.update(Text(r.get("reason") or "", style="bold red"))
            return
        if vtdsteps.is_vtd(r):
            box.update(vtdsteps.msi_detail(r, rows, self.index))
            return
        box.update(msi_detail(r, rows, self.index))
        x = rows[self.index]
        if x.get("walk_index") is not None:
            # the SMMU's part: the page-table and bit views follow it as they follow a walk
            walk = next(s for s in r["steps"] if s["what"] == "smmu")
            self.post_message(self.Step({"smmu": r["smmu"], "sid": r["sid"], "ssid": None,
                                         "device": r["device"], "address": r["address"],
                                         "steps": walk["walk"]}, x["walk_index"]))

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


class StepDetail(Static):
    """The detail box; its "-> ITS panel" line is a link (its click runs here)."""
    def action_its_jump(self) -> None:
        next(a for a in self.ancestors if isinstance(a, WalkStepper)).action_its_jump()
