"""The package's shape: imports flow one way through its layers and no module imports itself
back through others. Data flows formula → model → result → analyses; a model builds results,
so ``models`` sits above ``results`` in import order, and a result refers to its model only for
type annotations.

Layers, lowest first (a module may import from its own layer and the ones below at module
level):

0. ``_core`` (the compiled binding), ``errors``
1. ``families``, ``datasets``
2. ``formula`` (parser, columns, model matrices, design)
3. ``results`` (what a fit produced)
4. ``models`` (designs that fit themselves into results)
5. ``summary``, ``inference``, ``diagnostics`` (analyses of a result)
6. ``batch``, ``plotting``, ``compat``, ``cli`` (front ends)
7. the package itself (``mixedmodels/__init__``)

A result may forward to an analysis of layer 5 or 6 in one line (``m.summary()``): that is
the one kind of import allowed to reach upwards, and only inside a function, where it runs when
called rather than when the module loads.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import mixedmodels

PACKAGE_DIR = Path(mixedmodels.__file__).parent
LAYERS: dict[str, int] = {
    "_core": 0,
    "errors": 0,
    "families": 1,
    "datasets": 1,
    "formula": 2,
    "results": 3,
    "models": 4,
    "summary": 5,
    "inference": 5,
    "diagnostics": 5,
    "batch": 6,
    "plotting": 6,
    "compat": 6,
    "cli": 6,
    "": 7,
}
FORWARDING_FROM = "results"
FORWARDING_TO = {"summary", "inference", "diagnostics", "plotting"}


@dataclass(frozen=True)
class Import:
    source: str  # dotted module name, e.g. mixedmodels.results.base
    target: str
    at_module_level: bool
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_package(name: str) -> bool:
    return (PACKAGE_DIR.parent / name.replace(".", "/") / "__init__.py").exists()


def resolve(source: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The package modules an import statement loads (a name imported from a package that is
    itself a module counts as that module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == "mixedmodels"]
    if node.level:
        base = source.split(".")
        if not is_package(source):
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != "mixedmodels":
        return []
    targets = []
    for alias in node.names:
        candidate = f"{target}.{alias.name}"
        path = PACKAGE_DIR.parent / candidate.replace(".", "/")
        is_module = path.with_suffix(".py").exists() or path.with_suffix(".pyi").exists() or (path / "__init__.py").exists()
        targets.append(candidate if is_module else target)
    return targets


def is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path) -> list[Import]:
    source = module_name(path)
    found: list[Import] = []

    def visit(node: ast.AST, module_level: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if is_type_checking_block(child):
                continue  # annotations only: no import at run time
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.extend(Import(source, target, module_level, child.lineno) for target in resolve(source, child))
            else:
                visit(child, module_level and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(path.read_text(encoding="utf-8")), True)
    return found


def layer_of(name: str) -> tuple[str, int]:
    top = name.split(".")[1] if "." in name else ""
    if top not in LAYERS:
        pytest.fail(f"{name}: the package {top!r} has no layer in tests/test_architecture.py; give it one")
    return top, LAYERS[top]


SOURCES = sorted(p for p in PACKAGE_DIR.rglob("*.py") if "__pycache__" not in p.parts)
ALL_IMPORTS = [imp for path in SOURCES for imp in imports_of(path)]


def test_the_scan_sees_the_packages_imports() -> None:
    """Guard against a scanner that silently finds nothing."""
    pairs = {(imp.source, imp.target) for imp in ALL_IMPORTS}
    assert ("mixedmodels.models.linear", "mixedmodels.results.linear") in pairs
    assert ("mixedmodels.formula.design", "mixedmodels.formula.parser") in pairs
    assert any(imp.source == "mixedmodels.results.base" and imp.target == "mixedmodels.summary" and not imp.at_module_level for imp in ALL_IMPORTS)


def test_imports_flow_down_the_layers() -> None:
    wrong = []
    for imp in ALL_IMPORTS:
        (source_top, source_layer), (target_top, target_layer) = layer_of(imp.source), layer_of(imp.target)
        if target_layer <= source_layer:
            continue
        forwarding = source_top == FORWARDING_FROM and target_top in FORWARDING_TO and not imp.at_module_level
        if not forwarding:
            wrong.append(f"{imp.source}:{imp.line} imports {imp.target} (layer {target_layer} above {source_layer})")
    assert not wrong, "\n".join(wrong)


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first search meets, each as the path that closes it."""
    cycles: list[list[str]] = []
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for following in sorted(graph.get(node, ())):
            if state.get(following) == "open":
                cycles.append(stack[stack.index(following) :] + [following])
            elif following not in state:
                visit(following)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_no_import_cycles() -> None:
    # Module-level imports only: they are what runs when a module loads. An import of a
    # package is an edge to its __init__, which loads the package's submodules in turn.
    # Importing a.b.c runs a.b's __init__ first: those edges count too (all but the root
    # package's, which is already loading whenever any of its modules is).
    graph: dict[str, set[str]] = {}
    for imp in ALL_IMPORTS:
        if not imp.at_module_level:
            continue
        edges = graph.setdefault(imp.source, set())
        if imp.target != imp.source:
            edges.add(imp.target)
        parts = imp.target.split(".")
        parents = (".".join(parts[:end]) for end in range(2, len(parts)))
        edges.update(parent for parent in parents if parent != imp.source and not imp.source.startswith(parent + "."))
    cycles = find_cycles(graph)
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_the_cycle_search_finds_cycles() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b", "c"}, "b": {"c"}}) == []
