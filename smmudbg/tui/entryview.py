"""STE and CD detail with a bit view: every field (name, dword, bits, raw value, meaning) from
`ste TARGET all` and `cd TARGET SSID all`; the fields an illegal entry is refused for are
highlighted with the reason, reserved bits that are set are listed, a stale cached copy is
flagged."""
from __future__ import annotations

import re

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from .fmt import hx


def problem_fields(problem: str | None) -> set[str]:
    """Field names a problem line names (`STE.S2TTB ...`, `CD.T0SZ=...`)."""
    if not problem:
        return set()
    return set(re.findall(r"\b(?:STE|CD)\.([A-Za-z0-9_]+)", problem))


class BitView(Static):
    """Every field of one entry, one line each: name, dword, bits, raw value, meaning. Plain
    text in fixed columns (a DataTable of 90 rows takes far longer to lay out). rows keeps
    the cells as shown."""

    def __init__(self, **kw):
        super().__init__("", **kw)
        self.rows: list[list[str]] = []

    def fill(self, r: dict, bad: set[str], highlight: str | None) -> None:
        self.rows = []
        vw = max([len(hx(x["value"])) for x in r["rows"]] + [5])
        fw = max([len(x["field"]) for x in r["rows"]] + [5]) + 1
        # one line per field, never wrapped: a narrow screen cuts the meaning, not the columns
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(f"{'field':{fw}}{'dw':>2} {'bits':6}{'value':>{vw}}  meaning\n", style="bold")
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
            cells = [name, str(row["dword"]), row["bits"], value, meaning]
            self.rows.append(cells)
            t.append(f"{name:{fw}}{row['dword']:>2} {row['bits']:6}{value:>{vw}}  {meaning}\n",
                     style=style)
        self.update(t)
        self.styles.height = len(self.rows) + 1     # known: layout need not measure the text


class EntryView(VerticalScroll):
    """Shows one STE and, when the STE has a stage 1, one of its CDs (under the stream
    table, hidden until a stream is opened)."""

    DEFAULT_CLASSES = "entryview"

    def __init__(self, bridge, **kw):
        super().__init__(**kw)
        self.bridge = bridge
        self.target: tuple[str, int] | None = None
        self.ssid = 0
        self.highlight: str | None = None       # a field to mark (from the walk stepper)

    def compose(self):
        yield Static("Choose a stream (tree or stream table, Enter).", id="ste-head")
        yield BitView(id="ste-bits")
        yield Static("", id="cd-head")
        yield BitView(id="cd-bits")

    def on_mount(self) -> None:
        for t in self.query(BitView):
            t.display = False

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
        head = self.query_one("#ste-head", Static)
        bits = self.query_one("#ste-bits", BitView)
        try:
            ste = self.bridge.query(f"ste {smmu} {sid:#x} all")
        except Exception as e:
            head.update(Text(str(e), style="bold red"))
            bits.display = False
            return None
        head.update(self._head("STE", ste, f"{smmu} SID {sid:#x}"))
        self._fill(bits, ste)
        cd_head = self.query_one("#cd-head", Static)
        cd_bits = self.query_one("#cd-bits", BitView)
        cd = None
        if ste["config"] in ("s1", "nested") and ste["valid"]:
            try:
                cd = self.bridge.query(f"cd {smmu} {sid:#x} {self.ssid} all")
            except Exception as e:
                cd_head.update(Text(f"CD {self.ssid}: {e}", style="bold red"))
        if cd is not None:
            where = f"SSID {self.ssid} @ {hx(cd['addr'])}" + (
                f" (PA {hx(cd['pa'])})" if cd["pa"] != cd["addr"] else "")
            cd_head.update(self._head("CD", cd, where))
            self._fill(cd_bits, cd)
        else:
            if ste["config"] not in ("s1", "nested"):
                cd_head.update(Text(f"no CD: STE.Config={ste['config']}", style="dim"))
            cd_bits.display = False
        return ste

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
        t.append(" ".join(f"{w:016x}" for w in r["words"]), style="dim")
        t.append("\n")
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

    def _fill(self, view: BitView, r: dict) -> None:
        bad = problem_fields(r.get("problem")) if not r["legal"] or not r["valid"] else set()
        view.fill(r, bad, self.highlight)
        view.display = True
