"""The package's import graph, read from the source (every `import`, also inside functions): the command
layer (`hiddenemo.cli`, `hiddenemo.commands`) is the only top layer, and no modules import each other in a
circle. A failure names the importing lines or the circle."""
from __future__ import annotations

import ast
from pathlib import Path

import hiddenemo

PACKAGE = Path(hiddenemo.__file__).parent
TOP_LAYER = ("hiddenemo.cli", "hiddenemo.commands")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str) -> dict[str, int]:
    """The package's modules that module `name` imports, each with the line of its first import. `from
    a.b import c` counts as importing a.b.c when that is a module, else a.b."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:                                   # relative: from . import x, from ..a import b
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:          # `import a.b.c` of a non-module attribute path
                target = target.rpartition(".")[0]
            if target.startswith("hiddenemo") and target != name:
                found.setdefault(target, node.lineno)
    return found


GRAPH = {name: imports(name) for name in MODULES}


def in_top_layer(name: str) -> bool:
    return any(name == top or name.startswith(top + ".") for top in TOP_LAYER)


def circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan): modules that import each other,
    directly or through others."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

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
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def circle_through(graph: dict[str, dict[str, int]], group: list[str]) -> list[str]:
    """One import path from the group's first module back to itself, inside the group (breadth first)."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v]):
            if w == start:
                return paths[v] + [start]
            if w in members and w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    return group


def describe(graph: dict[str, dict[str, int]], group: list[str]) -> str:
    circle = circle_through(graph, group)
    return f"{', '.join(group)}; for one: " + " -> ".join(circle) + "  (" + ", ".join(
        f"{MODULES[a].relative_to(PACKAGE.parent)}:{graph[a][b]}" for a, b in zip(circle, circle[1:])) + ")"


def test_the_graph_is_read():
    assert "hiddenemo.commands.train" in GRAPH["hiddenemo.cli"]            # from hiddenemo.commands import train
    assert "hiddenemo.data.manifest" in GRAPH["hiddenemo.data.workspace"]


def test_only_the_command_layer_imports_the_command_layer():
    upward = [f"{MODULES[name].relative_to(PACKAGE.parent)}:{line} imports {target}"
              for name, targets in GRAPH.items() if not in_top_layer(name)
              for target, line in targets.items() if in_top_layer(target)]
    assert not upward, "library modules import the command layer (move what they need into the library):\n" \
        + "\n".join(upward)


def test_no_import_circles():
    found = [describe(GRAPH, c) for c in circles(GRAPH)]
    assert not found, "import circles:\n" + "\n".join(found)


def test_the_circle_finder_names_a_circle():
    graph = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3, "d": 4}, "d": {}}
    assert circles(graph) == [["a", "b", "c"]]
    assert circle_through(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]
    assert circles({"a": {"b": 1}, "b": {}}) == []


def test_the_architecture_page_names_modules_that_exist():
    """docs/architecture.md follows a video by module paths under src/hiddenemo/; each must exist."""
    import re

    page = (PACKAGE.parents[1] / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`((?:[a-z_]+/)*[a-z_]+\.py)`", page))
    assert len(named) > 30
    missing = sorted(p for p in named if not (PACKAGE / p).exists() and not (PACKAGE.parents[1] / p).exists())
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"
