"""The layers of docs/architecture.md: no import cycles between smmudbg's top-level modules and
packages, and commands/ never imports the Cython core (it asks the model)."""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "smmudbg"


def imports_by_unit():
    """{unit: units it imports}, a unit being smmudbg.X (a top-level module or package)."""
    mods = {}
    for p in PKG.rglob("*.py"):
        rel = p.relative_to(PKG.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        mods[name] = p
    unit = lambda m: ".".join(m.split(".")[:2])          # noqa: E731
    graph, core = {}, {}
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, ast.Import):
                names = [a.name for a in n.names]
            elif isinstance(n, ast.ImportFrom):
                base = n.module or ""
                if n.level:
                    parts = pkg.split(".")[: len(pkg.split(".")) - n.level + 1]
                    base = ".".join(parts + ([n.module] if n.module else []))
                names = [base] + [f"{base}.{a.name}" for a in n.names]
            else:
                continue
            for c in names:
                if c.split(".")[0] == "core_cy":
                    core.setdefault(unit(m), set()).add(str(p.relative_to(PKG.parent)))
                if c in mods and unit(c) != unit(m):
                    graph.setdefault(unit(m), set()).add(unit(c))
    return graph, core


def reachable(graph, start):
    seen, todo = set(), [start]
    while todo:
        for y in graph.get(todo.pop(), ()):
            if y not in seen:
                seen.add(y)
                todo.append(y)
    return seen


def test_no_import_cycles():
    graph, _ = imports_by_unit()
    cycles = sorted(u for u in graph if u in reachable(graph, u))
    assert not cycles, f"units on an import cycle: {cycles}"


def test_commands_do_not_import_the_core():
    _, core = imports_by_unit()
    assert "smmudbg.commands" not in core, core.get("smmudbg.commands")


def test_commands_import_nothing_above_them():
    graph, _ = imports_by_unit()
    above = {"smmudbg.session", "smmudbg.script", "smmudbg.cli", "smmudbg.repl",
             "smmudbg.render", "smmudbg.completion", "smmudbg.lexer", "smmudbg.import_cli"}
    assert not graph.get("smmudbg.commands", set()) & above
    assert not graph.get("smmudbg.model", set()) & (above | {"smmudbg.commands"})
