"""STE and CD detail with a bit view: every field (name, dword, bits, raw value, meaning) from
`ste TARGET all` and `cd TARGET SSID all`; the fields an illegal entry is refused for are
highlighted with the reason, reserved bits that are set are listed, a stale cached copy is
flagged.

EntryView draws its lines itself (Line API, as the stream table): opening a stream then
redraws only the lines on screen and changes no widget's size, where ~180 lines of Static
text cost a relayout and a full render each time. BitView is the same bit table as a Static,
for smaller views (a descriptor's fields)."""
from __future__ import annotations

import re

from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from .fmt import hx
from .lazypane import in_shown_pane


def problem_fields(problem: str | None) -> set[str]:
    """Field names a problem line names (`STE.S2TTB ...`, `CD.T0SZ=...`)."""
    if not problem:
        return set()
    return set(re.findall(r"\b(?:STE|CD)\.([A-Za-z0-9_]+)", problem))


def bit_lines(r: dict, bad: set[str], highlight: str | None) -> tuple[Text, list, list]:
    """The bit table of one entry: its header line, and per field the cells (name, dword,
    bits, value, meaning) and the line as shown. A field in `bad` carries the problem."""
    vw = max([len(hx(x["value"])) for x in r["rows"]] + [5])
    fw = max([len(x["field"]) for x in r["rows"]] + [5]) + 1
    header = Text(f"{'field':{fw}}{'dw':>2} {'bits':6}{'value':>{vw}}  meaning", style="bold")
    rows, lines = [], []
    for row in r["rows"]:
        name, value = row["field"], hx(row["value"])
        meaning = row["meaning"] or ""
        if name in bad:
            meaning = f"{meaning}  <- {r['problem']}".strip()
            style = "bold red"
        elif name == highlight:
            style = "reverse"
        else:
            style = "" if row["value"] else "dim"
        rows.append([name, str(row["dword"]), row["bits"], value, meaning])
        lines.append(Text(f"{name:{fw}}{row['dword']:>2} {row['bits']:6}{value:>{vw}}  "
                          f"{meaning}", style=style))
    return header, rows, lines


class BitView(Static):
    """Every field of one entry, one line each: name, dword, bits, raw value, meaning. Plain
    text in fixed columns (a DataTable of 90 rows takes far longer to lay out). rows keeps
    the cells as shown."""

    def __init__(self, **kw):
        super().__init__("", **kw)
        self.rows: list[list[str]] = []

    def fill(self, r: dict, bad: set[str], highlight: str | None) -> None:
        header, self.rows, lines = bit_lines(r, bad, highlight)
        # one line per field, never wrapped: a narrow screen cuts the meaning, not the columns
        t = Text("\n", no_wrap=True, overflow="ellipsis").join([header, *lines])
        t.append("\n")
        self.update(t)
        self.styles.height = len(self.rows) + 1     # known: layout need not measure the text


class EntryView(ScrollView, can_focus=True):
    """Shows one STE and, when the STE has a stage 1, one of its CDs (under the stream
    table, hidden until a stream is opened). What is shown: ste_head/cd_head (Text) and
    ste_rows/cd_rows (the cells of each field, as BitView.rows)."""

    DEFAULT_CLASSES = "entryview"

    def allow_focus(self) -> bool:
        return super().allow_focus() and in_shown_pane(self)

    def __init__(self, bridge, **kw):
        super().__init__(**kw)
        self.bridge = bridge
        self.target: tuple[str, int] | None = None
        self.ssid = 0
        self.highlight: str | None = None       # a field to mark (from the walk stepper)
        self.ste_head = Text("Choose a stream (tree or stream table, Enter).")
        self.cd_head = Text("")
        self.ste_rows: list[list[str]] = []
        self.cd_rows: list[list[str]] = []
        self.lines: list[Text] = []
        self._strips: dict[int, Strip] = {}     # rendered lines, until content or theme change

    def show(self, smmu: str, sid: int, ssid: int | None = None) -> dict | None:
        """Show this stream's STE (and CD); the pane is hidden until the first one."""
        self.target = (smmu, sid)
        if ssid is not None:
            self.ssid = ssid
        self.display = True
        return self.refresh_view()

    def close(self) -> None:
        self.display = False

    def refresh_view(self) -> dict | None:
        if self.target is None:
            return None
        smmu, sid = self.target
        self.cd_head, self.ste_rows, self.cd_rows = Text(""), [], []
        try:
            ste = self.bridge.query(f"ste {smmu} {sid:#x} all")
        except Exception as e:
            self.ste_head = Text(str(e), style="bold red")
            self._set_lines([self.ste_head])
            return None
        self.ste_head = self._head("STE", ste, f"{smmu} SID {sid:#x}")
        lines = [*self.ste_head.split("\n")]
        header, self.ste_rows, rows = bit_lines(ste, self._bad(ste), self.highlight)
        lines += [header, *rows, Text("")]
        cd = None
        if ste["config"] in ("s1", "nested") and ste["valid"]:
            try:
                cd = self.bridge.query(f"cd {smmu} {sid:#x} {self.ssid} all")
            except Exception as e:
                self.cd_head = Text(f"CD {self.ssid}: {e}", style="bold red")
        elif ste["config"] not in ("s1", "nested"):
            self.cd_head = Text(f"no CD: STE.Config={ste['config']}", style="dim")
        if cd is not None:
            where = f"SSID {self.ssid} @ {hx(cd['addr'])}" + (
                f" (PA {hx(cd['pa'])})" if cd["pa"] != cd["addr"] else "")
            self.cd_head = self._head("CD", cd, where)
            header, self.cd_rows, rows = bit_lines(cd, self._bad(cd), self.highlight)
            lines += [*self.cd_head.split("\n"), header, *rows]
        elif self.cd_head.plain:
            lines.append(self.cd_head)
        self._set_lines(lines)
        return ste

    @staticmethod
    def _bad(r: dict) -> set[str]:
        return problem_fields(r.get("problem")) if not r["legal"] or not r["valid"] else set()

    def _set_lines(self, lines: list[Text]) -> None:
        self.lines = lines
        self._strips.clear()
        # the width lets a narrow pane scroll sideways
        self.virtual_size = Size(max(t.cell_len for t in lines), len(lines))
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def render_line(self, y: int) -> Strip:
        sx, sy = self.scroll_offset
        width = self.scrollable_content_region.width
        base = self.rich_style
        i = sy + y
        if i >= len(self.lines):
            return Strip.blank(width, base)
        strip = self._strips.get(i)
        if strip is None:
            t = self.lines[i].copy()
            t.end, t.no_wrap = "", True
            t.stylize_before(base)
            strip = Strip(list(t.render(self.app.console)))
            self._strips[i] = strip
        return strip.crop(sx, sx + width).extend_cell_length(width, base)

    def _head(self, what: str, r: dict, where: str) -> Text:
        t = Text()
        t.append(f"{what} ", style="bold")
        t.append(where)
        if what == "STE":
            t.append(f" @ {hx(r['addr'])}")
            if r.get("device"):
                t.append(f"  {r['device']}", style="bold")
            t.append(f"  Config={r['config']}")
        t.append("\n")
        # as many words a line as the pane holds (its parent's width before it is shown)
        width = self.scrollable_content_region.width or self.parent.size.width - 4
        per = max(1, (width + 1) // 17)
        for i in range(0, len(r["words"]), per):
            t.append(" ".join(f"{w:016x}" for w in r["words"][i:i + per]) + "\n", style="dim")
        if not r["valid"]:
            t.append(f"V=0: not valid ({'C_BAD_STE' if what == 'STE' else 'C_BAD_CD'})",
                     style="bold red")
        elif not r["legal"]:
            t.append(f"ILLEGAL: {r['problem']}", style="bold red")
        elif r.get("problem"):
            t.append(f"legal: {r['problem']}", style="yellow")
        else:
            t.append("legal", style="green")
        for rb in r.get("reserved_bits") or []:
            t.append(f"  reserved bits set: dword {rb['dword']} mask {hx(rb['mask'])}",
                     style="bold red")
        if r.get("cached"):
            t.append("  cached: " + ("STALE (memory differs: an invalidation is missing)"
                                     if r["cached"]["stale"] else "same as memory"),
                     style="bold red" if r["cached"]["stale"] else "dim")
        return t
