"""The package's layers only point down (docs/architecture.md draws them).

Every module of src/dasgraph is parsed with ``ast``; each import of a dasgraph module, at module
level or inside a function, absolute or relative, is an arrow. An arrow from a lower layer to a
higher one, or a cycle of arrows between modules, fails the test with every offender listed.
Importing within one layer is allowed (cycles aside)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Lowest first. A module belongs to the layer of its longest listed prefix.
LAYERS = [
    ["paths", "progress", "quiet"],         # no dasgraph imports: layout, progress bars, quiet libraries
    ["runtime", "freshness"],
    ["cli", "readers"],
    ["tasks", "causal", "reference"],       # what is studied, and the published numbers
    ["networks"],
    ["interventions", "analysis"],          # methods: compute, never write results
    ["plots"],                              # figures: data in, matplotlib Figure out
    ["stages", "mlp"],                      # run a stage: loop over cells, skip, write, draw
    ["collect", "report", "plots.visualize"],   # read a finished results tree
    ["scripts"],                            # parse flags, call one stage
]
LAYER_NAMES = [" / ".join(names) for names in LAYERS]


def layer_of(module: str) -> int | None:
    """Index of the layer of ``dasgraph.x.y`` (None for the package itself)."""
    parts = module.split(".")[1:]
    best = None
    for index, names in enumerate(LAYERS):
        for name in names:
            prefix = name.split(".")
            if parts[:len(prefix)] == prefix and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def module_name(path: Path, root: Path = SRC) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str, is_package: bool, known: set[str]) -> list[tuple[str, int]]:
    """(imported dasgraph module, line) for every import in ``source``, at any depth.
    ``from a import b`` names module ``a.b`` when that is a module, else ``a``."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in _runtime_nodes(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((sub if sub in known else target, node.lineno))
    return [(t, line) for t, line in found if t == "dasgraph" or t.startswith("dasgraph.")]


def _runtime_nodes(tree: ast.AST):
    """Every node but those under ``if TYPE_CHECKING:`` (annotations only, never run)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in _runtime_nodes_with(child))
            continue
        yield node
        yield from _runtime_nodes(node)


def _runtime_nodes_with(node: ast.AST):
    yield node
    yield from _runtime_nodes(node)


def package_modules(root: Path = SRC) -> dict[str, tuple[str, bool]]:
    """module name -> (source, is_package) for every module under root/dasgraph."""
    return {module_name(p, root): (p.read_text(), p.name == "__init__.py")
            for p in sorted((root / "dasgraph").rglob("*.py"))}


def arrows(modules: dict[str, tuple[str, bool]]) -> list[tuple[str, str, int]]:
    known = set(modules)
    return [(m, target, line) for m, (source, is_package) in modules.items()
            for target, line in imports_of(source, m, is_package, known) if target != m]


def upward(modules) -> list[str]:
    """Every arrow from a lower layer to a higher one, as 'a:line -> b (layer -> layer)'."""
    bad = []
    for source, target, line in arrows(modules):
        low, high = layer_of(source), layer_of(target)
        if low is not None and high is not None and high > low:
            bad.append(f"{source}:{line} -> {target} ({LAYER_NAMES[low]} -> {LAYER_NAMES[high]})")
    return sorted(set(bad))


def cycles(modules) -> list[str]:
    """One line per strongly connected set of modules that import each other (Tarjan)."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for source, target, _ in arrows(modules):
        if target in graph:
            graph[source].add(target)
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
                found.append(" <-> ".join(sorted(group)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_layer():
    assert [m for m in package_modules() if m != "dasgraph" and layer_of(m) is None] == []


def test_imports_only_point_down():
    bad = upward(package_modules())
    assert not bad, "imports that point up a layer:\n" + "\n".join(bad)


def test_no_import_cycles():
    found = cycles(package_modules())
    assert not found, "modules that import each other:\n" + "\n".join(found)


# -- the test of the test: a synthetic package with planted faults ------------------------------

SYNTHETIC = {
    "dasgraph.paths": ("", False),
    "dasgraph.networks": ("", True),
    "dasgraph.networks.gpt2": ("def train():\n    from ..interventions import das\n", False),
    "dasgraph.interventions": ("", True),
    "dasgraph.interventions.das": ("import dasgraph.stages.sweep\n", False),
    "dasgraph.stages": ("", True),
    "dasgraph.stages.sweep": ("from dasgraph.stages import executor\n", False),
    "dasgraph.stages.executor": ("from dasgraph import paths\nfrom . import sweep\n", False),
    "dasgraph.cli": ("def f():\n    from dasgraph.networks.gpt2 import Site\n", False),
    "dasgraph.runtime": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                         "    from dasgraph.stages import sweep\n", False),
}


def test_upward_imports_of_every_form_are_reported():
    found = sorted(upward(SYNTHETIC))
    assert found == sorted([
        "dasgraph.networks.gpt2:2 -> dasgraph.interventions.das (networks -> interventions / analysis)",
        "dasgraph.interventions.das:1 -> dasgraph.stages.sweep (interventions / analysis -> stages / mlp)",
        "dasgraph.cli:2 -> dasgraph.networks.gpt2 (cli / readers -> networks)",
    ])


def test_cycles_are_reported():
    assert cycles(SYNTHETIC) == ["dasgraph.stages.executor <-> dasgraph.stages.sweep"]


@pytest.mark.parametrize("module, layer", [("dasgraph.plots.iia", "plots"),
                                           ("dasgraph.plots.visualize", "collect"),
                                           ("dasgraph.stages.sweep", "stages")])
def test_longest_prefix_decides_the_layer(module, layer):
    assert LAYER_NAMES[layer_of(module)].startswith(layer)
