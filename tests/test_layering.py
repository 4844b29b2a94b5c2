"""The import layering: strategies -> search_spaces -> nas_predictor, no import cycles, scripts on top.

A static scan (ast; nothing is imported), counting imports inside functions too, as grimp and
import-linter do: a lazy import still ties two modules together.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("nas_predictor", "search_spaces", "strategies")  # each may import only those before it
SCRIPTS = ("benchmarks", "tools", "common")  # folders of scripts (and benchmarks' helper module)


def _modules() -> dict[str, Path]:
    found = {}
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[tuple[str, int]]:
    """(imported name, line) of every import in the file: a module of ours where one matches (the
    deepest), else the name as written (third-party or a script folder)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules] or [base]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            ours = next((".".join(parts[:n]) for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in modules), None)
            found.add((ours or target, node.lineno))
    return found


def _graph() -> dict[str, set[tuple[str, int]]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles_among_the_packages():
    graph = _graph()
    ours = {name: {target for target, _ in targets if target in graph} for name, targets in graph.items()}
    assert _cycles(ours) == []


def test_imports_point_inwards_and_never_at_the_scripts():
    wrong = []
    for name, targets in _graph().items():
        layer = LAYERS.index(name.split(".")[0])
        for target, line in sorted(targets):
            top = target.split(".")[0]
            if (top in LAYERS and LAYERS.index(top) > layer) or top in SCRIPTS:
                wrong.append(f"{name}:{line} imports {target}")
    assert wrong == []


def test_the_scan_sees_the_imports_it_checks():
    """The checks above would pass on an empty graph; this pins that the scan reads real edges."""
    graph = _graph()
    assert any(t == "nas_predictor.errors" for t, _ in graph["nas_predictor.registry"])
    assert any(t == "search_spaces.nb201_arch" for t, _ in graph["search_spaces.nb201_network"])
    assert any(t == "nas_predictor.graph" for t, _ in graph["search_spaces.nasbench201"])
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
