"""The floor plan of docs/architecture.md, held against every module's imports.

A room imports only rooms on floors below its own (never sideways, never up), and no two
modules import each other, directly or around a longer circle. Lazy imports inside
functions and ``TYPE_CHECKING`` imports count too: a circle that only type checking sees
is still a circle to a reader.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

# Floor of each room, ground floor first; rooms on one floor do not import each other.
FLOORS: dict[str, int] = {
    "core": 0,
    "exporters": 1,
    "gateway": 1,
    "api": 2,
    "simulator": 2,
    "dashboards": 3,
    "alert_rules": 4,
    "opsdeck": 5,
}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int


def modules(root: Path) -> dict[str, Path]:
    """Dotted name → file, for every module of every room under ``root``."""
    found: dict[str, Path] = {}
    for room in FLOORS:
        for path in sorted((root / room).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _resolve(known: dict[str, Path], module: str, name: str | None) -> str:
    candidate = f"{module}.{name}" if name else module
    return candidate if candidate in known else module


def imports(root: Path) -> Iterator[Import]:
    known = modules(root)
    for importer, path in known.items():
        package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield Import(importer, alias.name, node.lineno)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    yield Import(importer, _resolve(known, base, alias.name), node.lineno)


def wrong_way(root: Path) -> list[str]:
    """Every import of a room that is not on a lower floor, as ``file:line: a -> b``."""
    problems = []
    for imp in imports(root):
        room, target = imp.importer.split(".")[0], imp.imported.split(".")[0]
        if target not in FLOORS or target == room:
            continue
        if FLOORS[target] >= FLOORS[room]:
            way = "sideways" if FLOORS[target] == FLOORS[room] else "up"
            problems.append(f"{imp.importer}:{imp.line}: {room} -> {target} ({way})")
    return problems


def circles(root: Path) -> list[list[str]]:
    """Module-level import circles (strongly connected components of two or more)."""
    known = modules(root)
    graph: dict[str, set[str]] = {name: set() for name in known}
    for imp in imports(root):
        if imp.imported in known and imp.imported != imp.importer:
            graph[imp.importer].add(imp.imported)
    return [sorted(c) for c in _components(graph) if len(c) > 1]


def _components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (the house is deep enough)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start, first_edges in graph.items():
        if start in index:
            continue
        work = [(start, iter(sorted(first_edges)))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            step = next(edges, None)
            if step is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    found.append(component)
            elif step not in index:
                index[step] = low[step] = len(index)
                stack.append(step)
                on_stack.add(step)
                work.append((step, iter(sorted(graph[step]))))
            elif step in on_stack:
                low[node] = min(low[node], index[step])
    return found


def test_every_room_imports_only_rooms_below_it() -> None:
    assert wrong_way(REPO) == []


def test_no_module_imports_itself_around_a_circle() -> None:
    assert circles(REPO) == []


def test_every_top_level_package_is_a_room_of_the_plan() -> None:
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")}
    not_rooms = {"runbooks", "provisioning", "tests", "bench"}  # data, and what measures
    assert packages - not_rooms == set(FLOORS)


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for room in FLOORS:
        (root / room).mkdir(exist_ok=True)
    return root


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"core/a.py": "from api import x\n"}, ["core.a:1: core -> api (up)"]),
        ({"api/a.py": "import simulator.b\n"}, ["api.a:1: api -> simulator (sideways)"]),
        (
            {"gateway/a.py": "def f():\n    from exporters import horizon\n"},
            ["gateway.a:2: gateway -> exporters (sideways)"],
        ),
        ({"api/a.py": "from core import settings\nimport gateway.worker\n"}, []),
    ],
)
def test_the_plan_check_catches_upward_and_sideways_imports(
    tmp_path: Path, files: dict[str, str], expected: list[str]
) -> None:
    assert wrong_way(_tree(tmp_path, files)) == expected


def test_the_plan_check_catches_circles_through_relative_and_lazy_imports(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "simulator/__init__.py": "",
            "simulator/a.py": "from . import b\n",
            "simulator/b.py": "def f():\n    from simulator.c import x\n",
            "simulator/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from simulator.a import y\n",
            "simulator/d.py": "from simulator import a\n",
        },
    )
    assert circles(root) == [["simulator.a", "simulator.b", "simulator.c"]]
