"""The field editor (key e): pick a field of an STE, a CD or a translation table descriptor from
its field table, see its bits, current value, meaning and documentation, type a new value that
the field table checks as you type (a number or one of the field's names; an address field
takes the address, aligned as the field holds it), and Enter issues `set ste` / `set cd` /
`set desc` through the registry like a typed line. The entries come from commands (`ste ...
all`, `cd ... all`, a walk step's descriptor); the field tables only describe and check."""
from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Select, Static

from ..arch.fieldtable import FieldError, fmt
from .descbits import desc_fields, desc_format, desc_kind
from .fmt import hx


@dataclass
class EditTarget:
    """One entry the editor can write: kind ste, cd or desc."""
    kind: str
    target: str = ""            # the stream's words (DEVICE, or SMMU SID) for ste/cd
    ssid: int = 0
    address: int = 0            # desc: the descriptor's PA
    stage: int = 1              # desc: 1 or 2
    dkind: str = "leaf"         # desc: leaf or table
    value: int = 0              # desc: the descriptor as the walk read it

    @property
    def label(self) -> str:
        if self.kind == "ste":
            return f"STE of {self.target}"
        if self.kind == "cd":
            return f"CD {self.ssid} of {self.target}"
        return f"{desc_format(self.stage, self.dkind).name} at PA {self.address:#x}"

    @property
    def format(self):
        return {"ste": lambda: fmt("STE"), "cd": lambda: fmt("CD"),
                "desc": lambda: desc_format(self.stage, self.dkind)}[self.kind]()

    def line(self, field: str, value: str) -> str:
        """The command line that sets field to value."""
        if self.kind == "ste":
            return f"set ste {self.target} {field}={value}"
        if self.kind == "cd":
            return f"set cd {self.target} ssid={self.ssid} {field}={value}"
        return (f"set desc {self.address:#x} stage={self.stage} kind={self.dkind} "
                f"{field}={value}")


def check_value(field, text: str) -> tuple[int | None, str]:
    """(field value, what it means) for the text typed, or (None, the one-line reason)."""
    text = text.strip()
    if not text:
        return None, "type a value"
    if any(c.isspace() for c in text):
        return None, f"{text!r}: one word (a number or a name)"
    try:
        if field.is_address:
            try:
                addr = int(text, 0)
            except ValueError:
                return None, f"{field.name}: {text!r} is not an address"
            value = field.from_address(addr)
        else:
            value = field.parse(text)
    except FieldError as e:
        return None, str(e)
    return value, field.meaning(value) or ""


class FieldEditor(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "close")]

    def __init__(self, bridge, targets: list[EditTarget]):
        super().__init__()
        self.bridge = bridge
        self.targets = targets
        self.target = targets[0]
        self.rows: list[dict] = []
        self.field = None

    def compose(self):
        with Vertical(id="fe-box"):
            yield Static("Set a field (pick a row, type the value, Enter sets; Esc closes)",
                         id="fe-title")
            yield Select([(t.label, i) for i, t in enumerate(self.targets)], value=0,
                         allow_blank=False, id="fe-target")
            yield DataTable(id="fe-fields", cursor_type="row")
            yield Static("", id="fe-about")
            yield Input(placeholder="new value (number, name, or address)", id="fe-value")
            yield Static("", id="fe-check")

    def on_mount(self) -> None:
        self.query_one("#fe-target").display = len(self.targets) > 1
        self.query_one("#fe-fields", DataTable).add_columns("field", "bits", "value",
                                                            "meaning")
        self.load(self.target)
        self.query_one("#fe-fields").focus()

    def entry(self, t: EditTarget) -> dict | None:
        """The entry's rows as the command shows them."""
        if t.kind == "desc":
            return desc_fields(t.value, t.stage, t.dkind)
        line = (f"ste {t.target} all" if t.kind == "ste" else f"cd {t.target} {t.ssid} all")
        return self.bridge.try_query(line)

    def load(self, t: EditTarget) -> None:
        self.target = t
        table = self.query_one("#fe-fields", DataTable)
        table.clear()
        r = self.entry(t)
        self.rows = r["rows"] if r else []
        if r is None:
            self.query_one("#fe-about", Static).update(
                Text(f"{t.label}: cannot be read", style="bold red"))
        for row in self.rows:
            table.add_row(row["field"], f"{row['dword']}:{row['bits']}"
                          if t.kind != "desc" else row["bits"], hx(row["value"]),
                          row["meaning"] or "", key=row["field"])
        if self.rows:
            table.move_cursor(row=0)
            self.pick(0)

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "fe-target" and isinstance(event.value, int):
            self.load(self.targets[event.value])

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "fe-fields" and 0 <= event.cursor_row < len(self.rows):
            self.pick(event.cursor_row)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "fe-fields":
            self.query_one("#fe-value", Input).focus()

    def pick(self, i: int) -> None:
        row = self.rows[i]
        self.field = self.target.format.field(row["field"])
        f = self.field
        t = Text()
        t.append(f"{self.target.format.name}.{f.name}", style="bold")
        t.append(f"  dword {f.dword} bits [{f.hi}:{f.lo}] ({f.width} bit"
                 f"{'s' if f.width > 1 else ''})  now {hx(row['value'])}")
        if row["meaning"]:
            t.append(f" = {row['meaning']}")
        t.append(f"\n{f.doc}", style="dim")
        if f.is_address:
            hi, lo = f.address_bits
            t.append(f"\nan address: bits [{hi}:{lo}] of it are stored", style="dim")
        elif f.enum:
            t.append("\nvalues: " + ", ".join(f"{v}={n}" for v, n in sorted(f.enum.items())
                                              if not n.startswith("reserved")), style="dim")
        self.query_one("#fe-about", Static).update(t)
        self.validate(self.query_one("#fe-value", Input).value)

    def validate(self, text: str) -> bool:
        out = self.query_one("#fe-check", Static)
        if self.field is None:
            return False
        value, what = check_value(self.field, text)
        if value is None:
            out.update(Text(what, style="bold red" if text.strip() else "dim"))
            return False
        out.update(Text(f"{self.field.name} := {hx(value)}" + (f" ({what})" if what else "")
                        + f"  ->  {self.target.line(self.field.name, text.strip())}",
                        style="green"))
        return True

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "fe-value":
            self.validate(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "fe-value" and self.validate(event.value):
            self.dismiss(self.target.line(self.field.name, event.value.strip()))


def edit_targets(bridge, stream: str | None, ssid: int, tab: str, stepper) -> list[EditTarget]:
    """What key e offers, the most specific first: on the Walk tab the current step's
    descriptor (or CD), then the STE and CD of the stream in focus."""
    out: list[EditTarget] = []
    s = stepper.current_step() if tab == "walk" and stepper is not None else None
    if s is not None:
        src = stepper.walk or {"smmu": stepper.msi["smmu"], "sid": stepper.msi["sid"],
                               "device": stepper.msi["device"], "ssid": None}
        who = src["device"] or f"{src['smmu']} {src['sid']:#x}"
        if s["what"] in ("S1", "S2") and s["desc"] is not None:
            out.append(EditTarget("desc", address=s["desc_pa"], stage=s["stage"],
                                  dkind=desc_kind(s["outcome"]) or "leaf", value=s["desc"]))
        elif s["what"] == "CD":
            out.append(EditTarget("cd", who, ssid=src.get("ssid") or 0))
        stream, ssid = who, src.get("ssid") or 0
    if stream:
        if not any(t.kind == "ste" for t in out):
            out.append(EditTarget("ste", stream))
        ste = bridge.try_query(f"ste {stream}")
        if ste and ste.get("config") in ("s1", "nested") and \
                not any(t.kind == "cd" for t in out):
            out.append(EditTarget("cd", stream, ssid=ssid))
    return out
