"""The import structure of ``frugaltext``: no import cycle between its modules, and every module imports.

The graph is read from the source with :mod:`ast`, not by importing: an edge ``a -> b`` for every
``import frugaltext.b`` / ``from frugaltext.b import x`` / ``from frugaltext import b`` in module ``a``,
at the top level or inside a function (an import inside a function is still a dependency; it must not be
used to hide a cycle). Imports under ``if TYPE_CHECKING:`` never run and are left out, and so is the
implicit import of a module's parent package.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import frugaltext

PACKAGE_DIR = Path(frugaltext.__file__).resolve().parent

#: Cycles that are known and accepted, as frozensets of module names (none today; an entry must say why it
#: is there).
KNOWN_CYCLES: set[frozenset[str]] = set()


def _modules() -> dict[str, Path]:
    """Every module of the package, ``{dotted name: path}`` (a package is named by its ``__init__.py``)."""
    out = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    """frugaltext modules that ``module`` imports anywhere in ``tree`` (top level and in functions)."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in known else target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in found if name in known and name != module}


def import_graph() -> dict[str, set[str]]:
    """``{module: {frugaltext modules it imports}}`` for every module of the package."""
    modules = _modules()
    known = set(modules)
    return {
        name: _imports(
            ast.parse(path.read_text(encoding="utf-8"), str(path)), name, path.name == "__init__.py", known
        )
        for name, path in modules.items()
    }


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Components of more than one module (Tarjan), i.e. the module sets that contain a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return components


def _one_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A cycle through the first module of ``component``, as ``[a, b, ..., a]``."""
    start = min(component)
    path, seen = [start], {start}

    def walk(node: str) -> bool:
        for target in sorted(graph[node] & component):
            if target == start:
                path.append(start)
                return True
            if target not in seen:
                seen.add(target)
                path.append(target)
                if walk(target):
                    return True
                path.pop()
        return False

    walk(start)
    return path


def test_the_graph_sees_top_level_and_function_level_imports():
    graph = import_graph()
    assert "frugaltext.experiment.config" in graph["frugaltext.experiment.runner"]  # top level
    assert "frugaltext.methods.base" in graph["frugaltext.experiment.runner"]  # inside run_compare
    assert "frugaltext.reports.table" in graph["frugaltext.reports"]  # `from frugaltext.reports.table import`
    assert "frugaltext.cost.meter" not in graph["frugaltext.methods.base"]  # only under TYPE_CHECKING


def test_no_import_cycles():
    graph = import_graph()
    cycles = [c for c in _strongly_connected(graph) if frozenset(c) not in KNOWN_CYCLES]
    named = [f"{' -> '.join(_one_cycle(graph, c))} (all modules of this knot: {', '.join(sorted(c))})"
             for c in cycles]
    assert not named, "import cycles among frugaltext modules:\n" + "\n".join(named)


def test_the_results_module_loads_neither_the_runner_nor_the_api():
    code = (
        "import sys, frugaltext.reports, frugaltext.experiment.results\n"
        "unwanted = ('frugaltext.experiment.runner', 'frugaltext.api', 'torch')\n"
        "loaded = [m for m in unwanted if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    _run_python(code)


def _run_python(code: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PACKAGE_DIR.parent), *sys.path])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def test_every_module_imports_in_a_fresh_interpreter():
    """One new interpreter imports every module in turn (names sorted), so none fails to import."""
    names = sorted(_modules())
    _run_python(f"import importlib\nfor name in {names!r}:\n    importlib.import_module(name)\n")


@pytest.mark.slow
@pytest.mark.parametrize("module", sorted(_modules()))
def test_each_module_imports_first_in_a_fresh_interpreter(module):
    """Each module imported first, on its own: an import-order dependency would fail here."""
    _run_python(f"import {module}")
