"""The command log to travel along: `history` as a list; choosing an entry runs `goto N` (in
a worker: going back re-runs the log from the scenario) and every view follows."""
from __future__ import annotations

from rich.text import Text
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static


class HistoryView(Vertical):
    class Goto(Message):
        def __init__(self, n: int):
            super().__init__()
            self.n = n

    def __init__(self, bridge, **kw):
        super().__init__(**kw)
        self.bridge = bridge

    def compose(self):
        yield Static("Enter: go to the state after that command (0: the scenario). "
                     "[ and ] step back and forward.", id="hist-head")
        yield DataTable(id="hist-table", cursor_type="row")

    def on_mount(self):
        self.query_one(DataTable).add_columns(" ", "#", "command", "ok")

    def refresh_view(self) -> None:
        r = self.bridge.try_query("history")
        t = self.query_one(DataTable)
        t.clear()
        if r is None:
            return
        t.add_row(">" if r["position"] == 0 else " ", "0", Text("(scenario)", style="dim"),
                  "", key="0")
        for e in r["entries"]:
            after = e["n"] > r["position"]
            t.add_row(">" if e["current"] else " ", str(e["n"]),
                      Text(e["command"], style="dim" if after else ""),
                      Text("ok" if e["ok"] else "error", style="" if e["ok"] else "red"),
                      key=str(e["n"]))
        t.move_cursor(row=r["position"])

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.post_message(self.Goto(int(event.row_key.value)))
