"""The page-table browser: `pt SMMU SID stage=N` (or `pt DOMAIN`) as a tree whose levels
expand lazily: the dump's rows are kept, and a row's children become nodes only when it is
opened. Leaves show input range, output, permissions; faults their error.

stage="nested" shows `pt ... stage=nested`: the stage-1 tree with, under each stage-1 leaf,
the IOVA -> IPA -> PA ranges stage 2 makes of it (both stages' permissions and the effective
one). Under the tree, a bit view decodes the descriptor the cursor is on (the walk stepper's
current descriptor, when it drives the view)."""
from __future__ import annotations

from rich.text import Text
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static, Tree

from . import vtdsteps
from .descbits import desc_fields, desc_kind
from .entryview import BitView
from .fmt import hx

STAGES = (1, 2, "nested")


def row_label(r: dict) -> Text:
    if r["kind"] == "nested":
        return nested_label(r)
    t = Text(f"L{r['level']} ")
    t.append(f"{hx(r['in'])}-{hx(r['end'])} ")
    if r["kind"] == "table":
        t.append(f"table -> {hx(r['next'])}", style="cyan")
    elif r["kind"] == "fault":
        t.append(f"fault: {r.get('error')}", style="bold red")
    else:
        t.append(f"{r['kind']} -> {hx(r['out'])}", style="green")
        if r.get("count", 1) > 1:
            t.append(f" x{r['count']}")
        t.append(f" {r.get('perm', '')}")
        if not r.get("af", True):
            t.append(" AF=0", style="yellow")
    t.append(f"  [{r['index']}]", style="dim")
    return t


def nested_label(r: dict) -> Text:
    """One stage-2 range under a stage-1 leaf: IOVA -> IPA -> PA, stage 1 / stage 2 /
    effective permissions."""
    t = Text(f"{hx(r['in'])}-{hx(r['end'])} -> IPA {hx(r['ipa'])} -> ")
    if r["out"] is None:
        t.append("stage 2 maps nothing", style="bold red")
    else:
        t.append(f"PA {hx(r['out'])}", style="green")
        t.append(f" S2 L{r['s2_level']}")
    t.append(f"  s1 {r['s1_perm']} s2 {r['s2_perm'] or '---'} = {r['priv'] or '---'}",
             style="dim")
    return t


class PageTableView(Vertical):
    def __init__(self, bridge, **kw):
        super().__init__(**kw)
        self.bridge = bridge
        self.source: str | None = None      # the pt command's target part
        self.stage: int | str | None = None  # None (the command's default), 1, 2, "nested"
        self.shown_stage: int | None = None  # the stage of the descriptors in the tree
        self.rows: list[dict] = []
        self.root: int | None = None
        self.vtd_step: tuple[dict, int] | None = None   # the VT-d walk step whose entry is shown

    def compose(self):
        yield Static("Choose a stream or a domain; key g cycles stage 1, 2, nested.",
                     id="pt-head")
        yield Tree("tables", id="pt-tree")
        with VerticalScroll(id="pt-bits-box"):
            yield Static("", id="pt-bits-head")
            yield BitView(id="pt-bits")
            yield Static("", id="pt-vtd")       # a VT-d walk step's entry (follow_vtd)

    def on_mount(self) -> None:
        self.query_one("#pt-bits-box").display = False

    def on_show(self) -> None:
        # the stepper may have moved the cursor while the tab was hidden (no size to scroll in)
        tree = self.query_one("#pt-tree", Tree)
        if tree.cursor_node is not None:
            self.call_after_refresh(tree.scroll_to_node, tree.cursor_node, animate=False)

    def show(self, target: str, stage: int | str | None = None) -> None:
        self.source, self.stage = target, stage
        self.refresh_view()

    def next_stage(self) -> int | str | None:
        """The stage key g shows next: 1 -> 2 -> nested -> 1, skipping what the stream does
        not have (a stage-1-only stream has no stage 2, only a nested one the nested view).
        A domain has one tree: None."""
        if not self.source or " " not in self.source.strip():
            return self.stage
        cur = self.stage if self.stage is not None else self.shown_stage
        i = STAGES.index(cur) if cur in STAGES else -1
        for k in range(1, len(STAGES) + 1):
            cand = STAGES[(i + k) % len(STAGES)]
            if self.bridge.try_query(f"pt {self.source} stage={cand} limit=1") is not None:
                return cand
        return self.stage

    def refresh_view(self) -> None:
        if self.source is None:
            return
        head = self.query_one("#pt-head", Static)
        tree = self.query_one("#pt-tree", Tree)
        line = f"pt {self.source}" + (f" stage={self.stage}" if self.stage else "")
        tree.clear()
        self.query_one("#pt-bits-box").display = False
        try:
            r = self.bridge.query(line)
        except Exception as e:
            head.update(Text(f"{line}: {e}", style="bold red"))
            self.rows = []
            return
        if r["kind"] == "vtd-pt":
            self._vtd_view(line, r)
            return
        self.rows = r["rows"]
        self.root = r["root"]
        self.shown_stage = r["stage"]
        if r["kind"] == "pt-nested":
            s2 = r["s2"]
            head.update(Text(f"{line}: IOVA -> IPA -> PA; S1 {r['granule'] >> 10}K "
                             f"{r['input_bits']}-bit root {hx(r['root'])} (IPA), S2 "
                             f"{s2['granule'] >> 10}K {s2['input_bits']}-bit root "
                             f"{hx(s2['root'])}" + (" (truncated)" if r["truncated"] else "")))
        else:
            head.update(Text(f"{line}: stage {r['stage']}, granule {r['granule'] >> 10}K, "
                             f"{r['input_bits']} bits, start level {r['start_level']}, root "
                             f"{hx(r['root'])}" + (" (IPA)" if r["tables_are_ipa"] else "")
                             + (" (truncated)" if r["truncated"] else "")))
        tree.root.set_label(f"root {hx(r['root'])}")
        self._add_children(tree.root, -1, 0)
        tree.root.expand()

    def _vtd_view(self, line: str, r: dict) -> None:
        """A VT-d requester's tables (`pt` on VT-d: vtd-pt): its mapped ranges, one row each
        (the walker's reader gives ranges, not a descriptor tree); a walk step selects the
        range it translates and shows the entry it read (follow_vtd)."""
        head = self.query_one("#pt-head", Static)
        tree = self.query_one("#pt-tree", Tree)
        stage = {"1": "first stage", "2": "second stage",
                 "nested": "nested: IOVA -> GPA -> PA"}[r["stage"]]
        head.update(Text(f"{line}: {stage}, {r['pgtt']}, DID {r['did']}, {r['levels']} levels, "
                         f"{r['width']}-bit input, root {hx(r['root'])}"
                         + (" (truncated)" if r["truncated"] else "")))
        self.rows = [dict(x, depth=0, end=x["in"] + x["size"] - 1) for x in r["rows"]]
        self.vtd_step = None
        self.root, self.shown_stage = r["root"], "vtd"
        tree.root.set_label(f"root {hx(r['root'])}")
        for i, x in enumerate(self.rows):
            if r["stage"] == "nested":
                label = (f"{hx(x['in'])} +{hx(x['size'])} -> GPA {hx(x['gpa'])} -> PA "
                         f"{hx(x['pa'])}  {x['fs_entry']}/{x['ss_entry'] or '-'} {x['perm']}")
            else:
                label = (f"{hx(x['in'])} +{hx(x['size'])} -> {hx(x['out'])}  {x['entry']} "
                         f"{x['perm']}" + (f" ({x['leaves']} leaves)" if x["leaves"] > 1
                                          else ""))
            tree.root.add_leaf(label, data=i)
        tree.root.expand()

    def follow_vtd(self, walk: dict, i: int) -> None:
        """Step i of a VT-d walk (a first- or second-stage entry): that stage's tables of the
        requester, the range holding the address the step translates selected, and the entry
        the step read shown field by field (tui/vtdsteps.detail)."""
        s = walk["steps"][i]
        target = (walk["device"] or f"{walk['unit']} {walk['rid']:#x}") + (
            f" pasid={walk['pasid']}" if walk.get("pasid") is not None else "")
        stage = 1 if s["what"] == "fs" else 2
        if (self.source, self.stage) != (target, stage):
            self.show(target, stage)
        self.vtd_step = (walk, i)
        self.select_range(s["in_addr"])
        self.query_one("#pt-bits-head", Static).update(Text(
            f"the walk's step {i + 1}: {vtdsteps.step_name(s)}", style="bold"))
        self.query_one("#pt-vtd", Static).update(vtdsteps.detail(walk, i))
        self.query_one("#pt-vtd").display = True
        self.query_one("#pt-bits", BitView).display = False
        self.query_one("#pt-bits-box").display = True

    def _add_children(self, node, parent_index: int, depth: int) -> None:
        """Add the rows at `depth` under the row at parent_index (until the next row that is
        not deeper); a row with deeper rows after it (a table; a stage-1 leaf in the nested
        view) gets its children when expanded."""
        i = parent_index + 1
        rows = self.rows
        while i < len(rows) and rows[i]["depth"] >= depth:
            r = rows[i]
            if r["depth"] == depth:
                if i + 1 < len(rows) and rows[i + 1]["depth"] > depth:
                    node.add(row_label(r), data=i, allow_expand=True)
                else:
                    node.add_leaf(row_label(r), data=i)
            i += 1

    def on_tree_node_expanded(self, event: Tree.NodeExpanded) -> None:
        node = event.node
        if node.data is not None and not node.children:
            self._add_children(node, node.data, self.rows[node.data]["depth"] + 1)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        self.show_bits(event.node.data)

    def show_bits(self, i: int | None) -> None:
        """The bit view of row i's descriptor (nothing for the root or a nested range)."""
        box = self.query_one("#pt-bits-box")
        r = self.rows[i] if i is not None and i < len(self.rows) else None
        if self.shown_stage == "vtd":        # ranges without a descriptor: follow_vtd's entry
            box.display = self.vtd_step is not None
            return
        self.query_one("#pt-bits", BitView).display = True
        self.query_one("#pt-vtd").display = False
        kind = desc_kind(r["kind"]) if r else None
        if kind is None or r.get("desc") is None or self.shown_stage not in (1, 2):
            box.display = False
            return
        d = desc_fields(r["desc"], self.shown_stage, kind)
        self.query_one("#pt-bits-head", Static).update(Text(
            f"{d['name']} at {hx(r['table'] + 8 * r['index'])} (table {hx(r['table'])} "
            f"[{r['index']}]) = {hx(r['desc'])}", style="bold"))
        self.query_one("#pt-bits", BitView).fill(d, set(), None)
        box.display = True

    def follow_step(self, walk: dict, i: int) -> None:
        """Put the cursor where step i of a walk result is: its stage's tables at the
        descriptor it read. In the nested view a stage-1 step stays in that tree, a stage-2
        step of a table fetch marks the stage-1 step it serves, and the final stage 2 the
        range holding the address."""
        s = walk["steps"][i]
        target = f"{walk['smmu']} {walk['sid']:#x}" + (
            f" ssid={walk['ssid']}" if walk.get("ssid") else "")
        if self.stage == "nested" and self.source == target:
            if s["what"] == "S1":
                self.select_descriptor(s["table"], s["index"])
            elif s["what"] == "S2" and s.get("purpose") == "TT":
                nxt = next((x for x in walk["steps"][i + 1:] if x["what"] == "S1"), None)
                if nxt is not None:
                    self.select_descriptor(nxt["table"], nxt["index"])
            elif s["what"] == "S2" and s.get("purpose") in (None, "IN"):
                self.select_range(walk["address"])
            return
        if (self.source, self.stage) != (target, s["stage"]):
            self.show(target, s["stage"])
        self.select_descriptor(s["table"], s["index"])

    def select_range(self, address: int) -> bool:
        """The cursor on the deepest row whose input range holds address (nested view: the
        IOVA -> IPA -> PA range)."""
        best = None
        for i, r in enumerate(self.rows):
            if r["in"] <= address <= r["end"] and (best is None or
                                                     r["depth"] > self.rows[best]["depth"]):
                best = i
        return best is not None and self._select_row(best)

    def select_descriptor(self, table: int, index: int) -> bool:
        """Open the tree down to the row for descriptor `index` of `table` and put the cursor
        on it (the walk stepper's current step). False if the dump has no such row."""
        target = next((i for i, r in enumerate(self.rows)
                       if r.get("table") == table and r.get("index") == index), None)
        tree = self.query_one("#pt-tree", Tree)
        if target is None:
            # an invalid descriptor has no row: put the cursor on the table holding it
            target = next((i for i, r in enumerate(self.rows)
                           if r["kind"] == "table" and r.get("next") == table), None)
            if target is None:
                if table == self.root:
                    tree.move_cursor(tree.root)
                    return True
                return False
        return self._select_row(target)

    def _select_row(self, target: int) -> bool:
        tree = self.query_one("#pt-tree", Tree)
        path, depth = [target], self.rows[target]["depth"]
        for i in range(target - 1, -1, -1):
            if self.rows[i]["depth"] < depth:
                path.insert(0, i)
                depth = self.rows[i]["depth"]
        node = tree.root
        for i in path:
            child = next((c for c in node.children if c.data == i), None)
            if child is None:
                return False
            if child.data != target:
                if not child.children:
                    self._add_children(child, i, self.rows[i]["depth"] + 1)
                child.expand()
            node = child
        tree.move_cursor(node)
        if tree.cursor_node is not node:
            # nodes just expanded get their lines when the tree is next laid out
            tree.call_after_refresh(tree.move_cursor, node)
        self.show_bits(target)
        return True
