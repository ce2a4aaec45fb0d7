"""Every import in nasty/ points down: no module reaches, even from inside a function, a module
that reaches it back.

tests/test_search_package.py checks the module-level imports (what Python runs at import time);
this checks every import, function-level ones included, because a cycle hidden inside a function
is still a circle in the design (issue 24: confirm -> loop -> results -> confirm). A name imported
from a package is followed to the module that defines it (`from ..genotype import parse` depends
on nasty/genotype/text.py, not on every module the package re-exports), and `import nasty` followed
by `nasty.cost(...)` on the names used.
"""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

import nasty

ROOT = Path(nasty.__file__).parent


def _modules() -> dict[str, ast.Module]:
    out = {}
    for f in sorted(ROOT.rglob("*.py")):
        parts = list(f.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = (f, ast.parse(f.read_text()))
    return out


MODULES = _modules()


def _absolute(mod: str, node: ast.ImportFrom) -> str | None:
    if not node.level:
        return node.module
    base = mod if MODULES[mod][0].name == "__init__.py" else mod.rpartition(".")[0]
    for _ in range(node.level - 1):
        base = base.rpartition(".")[0]
    return f"{base}.{node.module}" if node.module else base


def _defining(module: str, name: str, seen: frozenset = frozenset()) -> str:
    """The module that defines `name` as `module` exposes it (its re-exports followed)."""
    if f"{module}.{name}" in MODULES:
        return f"{module}.{name}"
    if (module, name) in seen:
        return module
    for node in MODULES[module][1].body:
        if isinstance(node, ast.ImportFrom):
            src = _absolute(module, node)
            for a in node.names:
                if (a.asname or a.name) != name or not src:
                    continue
                if f"{src}.{a.name}" in MODULES:
                    return f"{src}.{a.name}"
                if src in MODULES:
                    return _defining(src, a.name, seen | {(module, name)})
    return module


def _dependencies(mod: str):
    """(module depended on, line) for every import of a nasty module anywhere in `mod`."""
    tree = MODULES[mod][1]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            src = _absolute(mod, node)
            if not src or not src.startswith("nasty"):
                continue
            if src not in MODULES:
                src = src.rpartition(".")[0]
            for a in node.names:
                yield _defining(src, a.name), node.lineno
        elif isinstance(node, ast.Import):
            for a in node.names:
                if not a.name.startswith("nasty") or a.name not in MODULES:
                    continue
                if a.asname is None and "." in a.name:
                    yield a.name, node.lineno
                    continue
                bound = a.asname or a.name
                for use in ast.walk(tree):
                    if isinstance(use, ast.Attribute) and isinstance(use.value, ast.Name) and use.value.id == bound:
                        yield _defining(a.name, use.attr), node.lineno


def import_graph() -> nx.DiGraph:
    g = nx.DiGraph()
    for mod in MODULES:
        g.add_node(mod)
        for dep, line in _dependencies(mod):
            if dep != mod:
                g.add_edge(mod, dep, line=line)
    return g


def test_the_graph_sees_function_level_imports():
    g = import_graph()
    # nasty/train.py imports the command's code inside train_final(); the facade's re-exports are followed
    assert g.has_edge("nasty.train", "nasty.commands.train")
    assert g.has_edge("nasty.zoo", "nasty.genotype.text")          # from ..genotype import parse


def test_no_import_cycle_in_nasty_function_level_imports_included():
    g = import_graph()
    circles = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
    where = []
    for c in circles:
        sub = g.subgraph(c)
        where.append("; ".join(f"{a} -> {b} (line {d['line']})" for a, b, d in sub.edges(data=True)))
    assert not circles, "import cycles:\n" + "\n".join(where)
