# SPDX-License-Identifier: MIT
"""Which way imports run (STYLE.md): no cycles among our Python modules, and each layer
imports only the layers under it.

    protocol   imports nothing of ours
    broker     the protocol
    client     the protocol (clients/python/zeromesh, but its cli package)
    nodes      the client and the protocol, never the broker
    cli        anything: the composition root, the one place that wires the others

Every import counts, also those inside functions and under TYPE_CHECKING: a module
that needs another only to name its type still depends on it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ..conftest import ROOT

pytestmark = pytest.mark.unit

PACKAGES = {
    "zeromesh": ROOT / "clients" / "python" / "zeromesh",
    "zeromesh.protocol": ROOT / "protocol",
    "zeromesh.broker": ROOT / "broker",
    "zeromesh.nodes": ROOT / "nodes",
}
"""Import name -> folder, as pyproject.toml maps them."""

PROGRAMS = {
    "zeromesh.__main__": {"zeromesh.cli"},
    "zeromesh.cli.__main__": {"zeromesh.cli"},
    "zeromesh.demo": {"zeromesh.cli.logs"},
    "zeromesh.nodes.demo.workers": {"zeromesh.cli.env", "zeromesh.cli.logs"},
    # The demo launcher starts the embedded Redis before honcho starts the rest.
    "zeromesh.nodes.demo.polyglot": {"zeromesh.cli.env", "zeromesh.broker.embedded_redis"},
}
"""Entry points other than the CLI (`python -m ...`): each is a small composition root of its
own, and may take, beyond its layer's rules, these modules (the CLI's environment and logging)."""


def _modules() -> dict[str, tuple[Path, bool]]:
    """Every module: name -> (file, is a package's __init__)."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            found[".".join([package, *parts])] = (path, is_package)
    return found


MODULES = _modules()


def _ours(name: str) -> str | None:
    """The module of ours that `name` (a module, or a name inside one) lives in, if any."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    """The modules of ours that `module` imports, anywhere in it."""
    path, is_package = MODULES[module]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # `from package import module` depends on that module; `from module import name` on the module.
            targets = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source for alias in node.names
            ]
        else:
            continue
        found.update(m for m in map(_ours, targets) if m is not None and m != module)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def layer(module: str) -> str:
    for prefix in ("zeromesh.protocol", "zeromesh.broker", "zeromesh.nodes", "zeromesh.cli"):
        if module == prefix or module.startswith(prefix + "."):
            return prefix.rpartition(".")[2]
    return "client"


ALLOWED = {
    "protocol": {"protocol"},
    "broker": {"broker", "protocol"},
    "client": {"client", "protocol"},
    "nodes": {"nodes", "client", "protocol"},
    "cli": {"cli", "nodes", "client", "broker", "protocol"},
}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), and modules importing themselves."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_module_map_finds_every_layer():
    assert {layer(m) for m in MODULES} == set(ALLOWED)
    assert "zeromesh.cli" in MODULES and "zeromesh.broker.router" in MODULES
    assert set(PROGRAMS) <= set(MODULES)


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"a"}, "b": set()}) == [["a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    assert cycles(GRAPH) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_each_module_imports_only_the_layers_under_it(module):
    allowed = ALLOWED[layer(module)]
    extra = PROGRAMS.get(module, set())
    wrong = sorted(m for m in GRAPH[module] if layer(m) not in allowed and m not in extra)
    assert wrong == [], f"{module} ({layer(module)}) imports {wrong}"


def test_only_the_cli_and_the_programs_import_the_cli():
    importers = sorted(
        m
        for m, deps in GRAPH.items()
        if layer(m) != "cli" and m not in PROGRAMS and any(layer(d) == "cli" for d in deps)
    )
    assert importers == []
