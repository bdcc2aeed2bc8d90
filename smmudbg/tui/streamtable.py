"""The stream table: one row per StreamID of one SMMU, 65,536+ rows.

A Line-API ScrollView (toolong's LogLines pattern): only the rows on screen are rendered, and
rows are fetched a page at a time through `strtab SMMU sid=N count=M all` (a read-only
query, see bridge.py) and kept until the state changes. A 2-level table skips StreamIDs whose
L1 descriptor has no L2 array: those rows say so.
"""
from __future__ import annotations

import time

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from .lazypane import in_shown_pane

PAGE = 128

# (title, width) of each column; the header above the table uses the same layout.
COLUMNS = (("SID", 7), ("device", 12), ("config", 9), ("legal", 6), ("VMID", 5),
           ("S1ContextPtr", 13), ("CDMax", 6), ("S2TTB", 13), ("why", 44))


def header_text() -> str:
    return "".join(t.ljust(w) for t, w in COLUMNS)


def row_text(sid: int, row: dict | None | bool) -> str:
    """One row as text. row: the strtab entry, None (no STE: no L2 array), False (unread)."""
    if row is False:
        return f"{sid:#06x} …"
    if row is None:
        return f"{sid:#06x} ·  no STE here (L1STD has no L2 array)"
    legal = "V=0" if not row["v"] else ("yes" if row.get("legal") else "NO")
    why = "" if row.get("legal") and not row.get("problem") else (row.get("problem") or "")
    if not row["v"]:
        why = "C_BAD_STE on any transaction"
    vals = (f"{sid:#06x}", row.get("device") or "-", row["config"] or "-", legal,
            str(row["s2vmid"]) if row["s2vmid"] else "-",
            f"{row['s1contextptr']:#x}" if row["s1contextptr"] else "-",
            str(row["s1cdmax"]), f"{row['s2ttb']:#x}" if row["s2ttb"] else "-", why)
    return "".join(v[:w - 1].ljust(w) for v, (_, w) in zip(vals, COLUMNS))


class StreamTable(ScrollView, can_focus=True):
    """Rows are StreamIDs 0 .. 2^log2size-1 of `smmu`; the cursor is a StreamID."""

    COMPONENT_CLASSES = {"streamtable--cursor", "streamtable--bad", "streamtable--absent",
                         "streamtable--device"}
    BINDINGS = [
        Binding("up", "move(-1)", "up", show=False),
        Binding("down", "move(1)", "down", show=False),
        Binding("pageup", "move(-20)", "page up", show=False),
        Binding("pagedown", "move(20)", "page down", show=False),
        Binding("home", "jump(0)", "first", show=False),
        Binding("end", "jump(-1)", "last", show=False),
        Binding("n", "next_valid", "next STE"),
        Binding("enter", "choose", "open STE"),
        Binding("escape", "close", "close STE", show=False),
    ]
    cursor = reactive(0, always_update=True)

    class Chosen(Message):
        """The user opened a StreamID (Enter) or moved onto one."""
        def __init__(self, smmu: str, sid: int, open_: bool):
            super().__init__()
            self.smmu, self.sid, self.open = smmu, sid, open_

    class Closed(Message):
        """The user closed the STE detail (Escape)."""

    def allow_focus(self) -> bool:
        return super().allow_focus() and in_shown_pane(self)

    def __init__(self, bridge, **kw):
        super().__init__(**kw)
        self.bridge = bridge
        self.smmu: str | None = None
        self.total = 0
        self.pages: dict[int, dict[int, dict | None]] = {}
        self.fetches = 0                # pages fetched (for tests and the benchmark)
        self._styles: dict | None = None   # component styles, looked up once per theme
        self.first_paint: float | None = None   # perf_counter() when first fully drawn
        self.first_paint_cpu: float | None = None   # thread_time() then (the benchmark's)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None

    def _style(self, name: str | None) -> Style:
        if self._styles is None:
            base = self.rich_style
            self._styles = {None: base}
            for c in ("cursor", "bad", "absent", "device"):
                self._styles[c] = base + self.get_component_rich_style(f"streamtable--{c}")
        return self._styles[name]

    # -- data ---------------------------------------------------------------------------------
    def show_smmu(self, smmu: str, log2size: int) -> None:
        self.smmu, self.total = smmu, 1 << log2size
        self.pages.clear()
        self.virtual_size = Size(sum(w for _, w in COLUMNS), self.total)
        self.cursor = min(self.cursor, self.total - 1)
        self.refresh()

    def invalidate(self) -> None:
        """The state changed: fetch rows again when they are next shown."""
        self.pages.clear()
        self.refresh()

    def row(self, sid: int):
        p = sid // PAGE
        page = self.pages.get(p)
        if page is None:
            page = self._fetch(p)
        return page.get(sid, None)

    def _fetch(self, p: int) -> dict:
        first = p * PAGE
        page: dict[int, dict | None] = {}
        r = self.bridge.try_query(f"strtab {self.smmu} sid={first} count={PAGE} all")
        self.fetches += 1
        if r is not None:
            for e in r["entries"]:
                if e["sid"] < first + PAGE:
                    page[e["sid"]] = e
        self.pages[p] = page
        return page

    # -- movement -----------------------------------------------------------------------------
    def action_move(self, d: int) -> None:
        self.go(max(0, min(self.total - 1, self.cursor + d)))

    def action_jump(self, sid: int) -> None:
        self.go(self.total - 1 if sid < 0 else sid)

    def action_next_valid(self) -> None:
        """Next StreamID with a valid STE (through `strtab`, which skips the rest)."""
        r = self.bridge.try_query(f"strtab {self.smmu} sid={self.cursor + 1} count=1")
        if r and r["entries"]:
            self.go(r["entries"][0]["sid"])

    def action_choose(self) -> None:
        if self.smmu is not None:
            self.post_message(self.Chosen(self.smmu, self.cursor, True))

    def action_close(self) -> None:
        self.post_message(self.Closed())

    def go(self, sid: int, announce: bool = True) -> None:
        if not self.total:
            return
        sid = max(0, min(self.total - 1, sid))
        self.cursor = sid
        h = self.scrollable_content_region.height or 1
        y = self.scroll_offset.y
        if sid < y:
            self.scroll_to(y=sid, animate=False, immediate=True)
        elif sid >= y + h:
            self.scroll_to(y=sid - h + 1, animate=False, immediate=True)
        self.refresh()
        if announce and self.smmu is not None:
            self.post_message(self.Chosen(self.smmu, sid, False))

    def on_resize(self, event) -> None:
        """Keep the cursor row in view when the table shrinks (the STE detail opening)."""
        self.go(self.cursor, announce=False)

    def on_click(self, event) -> None:
        self.go(self.scroll_offset.y + event.y)

    # -- rendering ----------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        if self.first_paint is None and self.total and \
                y >= self.scrollable_content_region.height - 1:
            self.first_paint = time.perf_counter()      # the last visible row: all drawn
            self.first_paint_cpu = time.thread_time()
        sx, sy = self.scroll_offset
        sid = sy + y
        width = self.scrollable_content_region.width
        base = self._style(None)
        if sid >= self.total:
            return Strip.blank(width, base)
        row = self.row(sid)
        text = row_text(sid, row)
        if sid == self.cursor:
            style = self._style("cursor")
        elif row is None:
            style = self._style("absent")
        elif not row.get("legal", True):
            style = self._style("bad" if row["v"] else "absent")
        elif row.get("device"):
            style = self._style("device")
        else:
            style = base
        full = sum(w for _, w in COLUMNS)
        strip = Strip([Segment(text.ljust(full), style)], full)
        return strip.crop(sx, sx + width).extend_cell_length(width, base)
