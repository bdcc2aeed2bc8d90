"""The command line at the bottom: the REPL's completion (the registry's candidates, as in
smmudbg/completion.py) as an inline suggestion, Tab to take it (Tab again cycles through the
other candidates), Up/Down through the history of this session's lines."""
from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.suggester import Suggester
from textual.widgets import Input


def _partial(text: str) -> str:
    if not text or text[-1].isspace():
        return ""
    return text.split()[-1]


def completions(bridge, text: str) -> list[str]:
    """Whole-line completions of text: the registry's candidates for the word being typed."""
    part = _partial(text)
    head = text[: len(text) - len(part)]
    out = []
    for c in bridge.complete(text):
        if c.lower().startswith(part.lower()) and c != part:
            out.append(head + c)
    return out


class RegistrySuggester(Suggester):
    def __init__(self, bridge):
        super().__init__(use_cache=False, case_sensitive=True)
        self.bridge = bridge

    async def get_suggestion(self, value: str) -> str | None:
        c = completions(self.bridge, value)
        return c[0] if c else None


class CommandLine(Input):
    BINDINGS = [
        Binding("tab", "complete", "complete", show=False),
        Binding("up", "history(-1)", "previous", show=False),
        Binding("down", "history(1)", "next", show=False),
        Binding("escape", "leave", "leave", show=False),
    ]

    class Run(Message):
        def __init__(self, line: str):
            super().__init__()
            self.line = line

    def __init__(self, bridge, **kw):
        super().__init__(placeholder="command (help; Tab completes; Ctrl-P palette)",
                         suggester=RegistrySuggester(bridge), **kw)
        self.bridge = bridge
        self.lines: list[str] = []
        self.hpos = 0
        self._cycle: tuple[str, list[str], int] | None = None

    def on_mount(self) -> None:
        if self.app.is_headless:
            self.cursor_blink = False      # tests and snapshots: nothing changes with time

    def action_complete(self) -> None:
        if self._cycle and self.value == self._cycle[1][self._cycle[2]]:
            base, cands, i = self._cycle
            i = (i + 1) % len(cands)
            self._cycle = (base, cands, i)
        else:
            cands = completions(self.bridge, self.value)
            if not cands:
                return
            self._cycle = (self.value, cands, 0)
            i = 0
        self.value = self._cycle[1][i]
        self.cursor_position = len(self.value)

    def action_leave(self) -> None:
        self.app.action_focus_view()

    def action_history(self, d: int) -> None:
        if not self.lines:
            return
        self.hpos = max(0, min(len(self.lines), self.hpos + d))
        self.value = self.lines[self.hpos] if self.hpos < len(self.lines) else ""
        self.cursor_position = len(self.value)

    async def action_submit(self) -> None:
        line = self.value.strip()
        if line:
            if not self.lines or self.lines[-1] != line:
                self.lines.append(line)
            self.hpos = len(self.lines)
            self.post_message(self.Run(line))
        self.value = ""
