"""The house's plan: the package's folders in the order frames travel, each importing only the
rooms below it (docs/design.md, "The house"), and no import cycle, type-only imports included."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import recorder

PACKAGE = Path(recorder.__file__).parent

#: each room and the rooms it may import (besides itself). A room is a folder of the package,
#: or a module at its top.
MAY_IMPORT: dict[str, set[str]] = {
    "_base": set(),
    "_queue": {"_base"},
    "_encode": {"_base", "_queue"},
    "_service": {"_base", "_queue", "_encode"},
    "_front": {"_base", "_service.service"},  # the ClipService port only
    "wrappers": {"_base", "_front", "_service.service"},
    "_folder": {"_base", "_encode"},
    "_cli": {"_base", "_service", "_front", "_folder", "wrappers"},
    "ray": {"_base", "_encode", "_service"},
    "integrations": {"_base"},
    "__main__": {"_cli"},
    "__init__": {"_base", "_service", "_front", "_folder", "wrappers", "ray", "integrations"},
    "_testing": {  # the tests' one door reaches every room
        "_base",
        "_queue",
        "_encode",
        "_service",
        "_front",
        "_folder",
        "_cli",
        "wrappers",
    },
}
#: what the core never imports, whatever the table says: front ends and folder tools.
CORE = ("_base", "_queue", "_encode", "_service")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports() -> dict[str, set[str]]:
    """{module: the package's modules it imports anywhere in its code}."""
    modules = _modules()

    def resolve(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                names = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for name in names:
                target = resolve(name) if name.startswith("recorder") else ""
                if target and target not in (module, "recorder"):
                    graph[module].add(target)
    return graph


def room(module: str) -> str:
    """The room of a module: its folder under the package, or its own name at the top."""
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def against_the_plan(graph: dict[str, set[str]]) -> list[str]:
    """The arrows of *graph* that the plan does not allow."""
    against = []
    for module, targets in graph.items():
        here = room(module)
        allowed = MAY_IMPORT[here]
        for target in targets:
            there = room(target)
            if there == here:
                continue
            inner = ".".join(target.split(".")[1:3])  # e.g. _service.service
            if there not in allowed and inner not in allowed:
                against.append(f"{module} -> {target}")
            elif here in CORE and there not in CORE:
                against.append(f"{module} -> {target} (the core imports a front end)")
    return sorted(against)


def test_every_arrow_runs_down_the_plan() -> None:
    against = against_the_plan(_imports())
    assert not against, "imports against the plan: " + "; ".join(against)


def test_no_import_cycle() -> None:
    graph = _imports()
    # Tarjan's strongly connected components: a component of more than one module is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


def test_every_room_says_its_job_and_every_module_has_a_room() -> None:
    rooms = {room(m) for m in _modules()}
    assert rooms == set(MAY_IMPORT), f"rooms not in the plan: {rooms ^ set(MAY_IMPORT)}"
    for folder in (p for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()):
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text()))
        assert doc, f"{folder.name}/__init__.py says nothing of its job"


def test_the_check_catches_arrows_against_the_plan() -> None:
    graph = {
        "recorder._queue.queue": {"recorder._front.episode", "recorder._base.frames"},
        "recorder._front.aio": {"recorder._queue.clip", "recorder._service.service"},
        "recorder._folder.gallery": {"recorder._service.writer"},
    }
    assert against_the_plan(graph) == [
        "recorder._folder.gallery -> recorder._service.writer",
        "recorder._front.aio -> recorder._queue.clip",
        "recorder._queue.queue -> recorder._front.episode",
    ]


def test_front_ends_call_the_port_by_its_names() -> None:
    # A front end reaches the core through a Recorder's ClipService, and only its public names.
    offenders = []
    for folder in ("_front", "wrappers"):
        for path in sorted((PACKAGE / folder).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (
                    isinstance(node, ast.Attribute)
                    and node.attr.startswith("_")
                    and isinstance(node.value, ast.Attribute)
                    and node.value.attr in ("_service", "service")
                ):
                    offenders.append(f"{folder}/{path.name}:{node.lineno} (.{node.attr})")
    assert not offenders, f"the port's insides reached: {offenders}"


def filtered_comprehensions_in_handled_blocks(source: str) -> list[int]:
    """Lines of list/set/dict comprehensions with an ``if`` inside a ``with`` or ``try``."""
    lines = []
    for block in ast.walk(ast.parse(source)):
        if isinstance(block, ast.With | ast.AsyncWith | ast.Try | ast.TryStar):
            for node in ast.walk(block):
                if isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp) and any(
                    generator.ifs for generator in node.generators
                ):
                    lines.append(node.lineno)
    return sorted(set(lines))


def test_no_filtered_comprehension_under_a_lock_or_in_a_try() -> None:
    # Python 3.13 inlines comprehensions; a Ctrl-C on their filter's jump skips the caller's
    # with-exit and finally (a lock left held): recorder._base.kept filters in its own frame.
    found = {
        str(path.relative_to(PACKAGE)): lines
        for path in sorted(PACKAGE.rglob("*.py"))
        if (lines := filtered_comprehensions_in_handled_blocks(path.read_text()))
    }
    assert not found, f"use recorder._base.kept.kept() instead, at: {found}"


def test_the_comprehension_check_finds_one() -> None:
    source = "with lock:\n    x = [c for c in cs if c]\ny = [c for c in cs if c]\n"
    assert filtered_comprehensions_in_handled_blocks(source) == [2]
