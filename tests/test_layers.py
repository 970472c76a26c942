"""The package's import graph: no cycle, the core imports no front end, and no front
end imports another (STYLE.md's layout). Imports are read from the source, at any
depth (a function's lazy import counts), with importlib.import_module("...") calls."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "wsinspect"
FRONT_ENDS = {"wsinspect.cli", "wsinspect.live", "wsinspect.tui"}
CORE = {
    "wsinspect.packet",
    "wsinspect.capture",
    "wsinspect.sniff",
    "wsinspect.tcp",
    "wsinspect.http",
    "wsinspect.frames",
    "wsinspect.deflate",
    "wsinspect.messages",
    "wsinspect.session",
    "wsinspect.tls",
    "wsinspect.h2",
    "wsinspect.health",
    "wsinspect.histogram",
    "wsinspect.tally",
}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            # "from wsinspect import text" imports the module wsinspect.text, and
            # "from wsinspect.tui import render" its package only as Python must.
            subs = {f"{node.module}.{alias.name}" for alias in node.names} & modules
            found |= subs
            if len(subs) < len(node.names):
                found.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple):
            # A table of module names handed to importlib (cli.COMMAND_MODULES).
            names = [e.value for e in node.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            found.update(n for n in names if n.startswith("wsinspect."))
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        graph[name] = {m for m in _imports(path, set(modules)) if m in modules and m != name and m != "wsinspect"}
    return graph


def _front_end(module: str) -> str | None:
    for front in FRONT_ENDS:
        if module == front or module.startswith(front + "."):
            return front
    return None


def test_no_import_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_core_imports_no_front_end_or_output() -> None:
    graph = _graph()
    above = {"wsinspect.printer", "wsinspect.options", "wsinspect.text", "wsinspect.jsonl", "wsinspect.parallel"}
    for module in sorted(CORE & graph.keys()):
        bad = {m for m in graph[module] if _front_end(m) or m in above}
        assert bad == set(), module


def test_front_ends_import_no_other_front_end() -> None:
    graph = _graph()
    for module, imported in sorted(graph.items()):
        mine = _front_end(module)
        if mine is None or mine == "wsinspect.cli":
            continue  # cli loads the commands' modules to register them (COMMAND_MODULES)
        bad = {m for m in imported if _front_end(m) not in (None, mine)}
        assert bad == set(), module
    # Nothing below the front ends imports one.
    for module, imported in sorted(graph.items()):
        if _front_end(module) is None and module != "wsinspect.__main__":
            assert {m for m in imported if _front_end(m)} == set(), module
