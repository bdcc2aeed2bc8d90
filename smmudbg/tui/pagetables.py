"""The page-table browser: `pt SMMU SID stage=N` (or `pt DOMAIN`) as a tree whose levels
expand lazily: the dump's rows are kept, and a table's children become nodes only when it is
opened. Leaves show input range, output, permissions; faults their error."""
from __future__ import annotations

from rich.text import Text
from textual.containers import Vertical
from textual.widgets import Static, Tree

from .fmt import hx


def row_label(r: dict) -> Text:
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


class PageTableView(Vertical):
    def __init__(self, bridge, **kw):
        super().__init__(**kw)
        self.bridge = bridge
        self.source: str | None = None      # the pt command's target part
        self.stage: int | None = None
        self.rows: list[dict] = []
        self.root: int | None = None

    def compose(self):
        yield Static("Choose a stream or a domain; keys 1 and 2 pick the stage.", id="pt-head")
        yield Tree("tables", id="pt-tree")

    def show(self, target: str, stage: int | None = None) -> None:
        self.source, self.stage = target, stage
        self.refresh_view()

    def refresh_view(self) -> None:
        if self.source is None:
            return
        head = self.query_one("#pt-head", Static)
        tree = self.query_one("#pt-tree", Tree)
        line = f"pt {self.source}" + (f" stage={self.stage}" if self.stage else "")
        tree.clear()
        try:
            r = self.bridge.query(line)
        except Exception as e:
            head.update(Text(f"{line}: {e}", style="bold red"))
            self.rows = []
            return
        self.rows = r["rows"]
        self.root = r["root"]
        head.update(Text(f"{line}: stage {r['stage']}, granule {r['granule'] >> 10}K, "
                         f"{r['input_bits']} bits, start level {r['start_level']}, root "
                         f"{hx(r['root'])}" + (" (IPA)" if r["tables_are_ipa"] else "")
                         + (" (truncated)" if r["truncated"] else "")))
        tree.root.set_label(f"root {hx(r['root'])}")
        self._add_children(tree.root, -1, 0)
        tree.root.expand()

    def _add_children(self, node, parent_index: int, depth: int) -> None:
        """Add the rows at `depth` under the row at parent_index (until the next row that is
        not deeper); a table row gets its children when expanded."""
        i = parent_index + 1
        while i < len(self.rows) and self.rows[i]["depth"] >= depth:
            r = self.rows[i]
            if r["depth"] == depth:
                if r["kind"] == "table":
                    node.add(row_label(r), data=i, allow_expand=True)
                else:
                    node.add_leaf(row_label(r), data=i)
            i += 1

    def on_tree_node_expanded(self, event: Tree.NodeExpanded) -> None:
        node = event.node
        if node.data is not None and not node.children:
            self._add_children(node, node.data, self.rows[node.data]["depth"] + 1)

    def select_descriptor(self, table: int, index: int) -> bool:
        """Open the tree down to the row for descriptor `index` of `table` and put the cursor
        on it (the walk stepper's current step). False if the dump has no such row."""
        target = next((i for i, r in enumerate(self.rows)
                       if r["table"] == table and r["index"] == index), None)
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
        return True
