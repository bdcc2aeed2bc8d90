"""Findings of `check` (stale cache entries with the invalidation that fixes them, update
hazards, illegal entries, errors): a list to jump from. Enter on a finding focuses its stream;
f runs the fix it names (`cmd SMMU ...`)."""
from __future__ import annotations

import re

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

_SID = re.compile(r"\bSID (0x[0-9a-fA-F]+|\d+)")


def findings(check: dict) -> list[dict]:
    """Flatten a check result: [{smmu, what, text, fix, sid}]."""
    out = []
    for m in check["smmus"]:
        for what in ("stale", "hazards", "illegal", "errors"):
            for f in m.get(what) or []:
                if isinstance(f, str):
                    f = {"problem": f}
                text = f.get("problem") or f.get("reason") or f.get("error") or str(f)
                sid = f.get("sid")
                if sid is None:
                    mt = _SID.search(text)
                    sid = int(mt.group(1), 0) if mt else None
                out.append({"smmu": m["smmu"], "what": what, "text": text,
                            "fix": f.get("fix"), "sid": sid})
    return out


class CheckView(Vertical):
    BINDINGS = [Binding("f", "fix", "apply fix")]

    class Jump(Message):
        def __init__(self, smmu: str, sid: int):
            super().__init__()
            self.smmu, self.sid = smmu, sid

    class Fix(Message):
        def __init__(self, line: str):
            super().__init__()
            self.line = line

    def __init__(self, bridge, **kw):
        super().__init__(**kw)
        self.bridge = bridge
        self.items: list[dict] = []

    def compose(self):
        yield Static("Press c to run check.", id="check-head")
        yield DataTable(id="check-table", cursor_type="row")
        # the finding under the cursor in full, with its fix: the table's columns are cut
        # on a narrow screen
        yield Static("", id="check-detail")

    def on_mount(self):
        self.query_one(DataTable).add_columns("SMMU", "kind", "finding", "fix")

    def show(self, check: dict) -> None:
        self.items = findings(check)
        head = Text()
        if check["clean"]:
            head.append("check: clean", style="green")
        else:
            head.append(f"check: {check['problems']} problem(s)", style="bold red")
            head.append("  Enter: jump to the stream, f: run the fix", style="dim")
        if check.get("not_checked"):
            head.append("\nnot checked: " + "; ".join(check["not_checked"]), style="dim")
        self.query_one("#check-head", Static).update(head)
        t = self.query_one(DataTable)
        t.clear()
        for i, f in enumerate(self.items):
            t.add_row(f["smmu"], f["what"], Text(f["text"], style="red"), f["fix"] or "-",
                      key=str(i))
        self._detail(self.items[0] if self.items else None)

    def _detail(self, f: dict | None) -> None:
        d = self.query_one("#check-detail", Static)
        if f is None:
            d.update("")
            return
        t = Text()
        t.append(f"{f['smmu']} {f['what']}: ", style="bold")
        t.append(f["text"], style="red")
        if f["fix"]:
            t.append("\nfix: ", style="bold")
            t.append(f"cmd {f['smmu']} {f['fix']}", style="yellow")
            t.append("  (f runs it)", style="dim")
        d.update(t)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if 0 <= event.cursor_row < len(self.items):
            self._detail(self.items[event.cursor_row])

    def _current(self) -> dict | None:
        t = self.query_one(DataTable)
        if not self.items or t.cursor_row is None or t.cursor_row >= len(self.items):
            return None
        return self.items[t.cursor_row]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        f = self._current()
        if f and f["sid"] is not None:
            self.post_message(self.Jump(f["smmu"], f["sid"]))

    def action_fix(self) -> None:
        f = self._current()
        if f and f["fix"]:
            self.post_message(self.Fix(f"cmd {f['smmu']} {f['fix']}"))
