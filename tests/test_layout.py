"""The package's shape: no import cycles, imports that go down the layers only, no module
over 450 lines, and a docstring on every module — walked with ``ast`` over the source, so
a function-level (lazy) import counts like any other."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"seqgan": ROOT / "seqgan", "seqgan.datasets": ROOT / "datasets",
            "seqgan.objectives": ROOT / "objectives"}
MAX_LINES = 450

# the layers, lowest first: a module may import from its own layer or those below it
LAYERS = [
    {"seqgan.errors", "seqgan.version", "seqgan.files", "seqgan.knobs"},
    {"seqgan.models"},
    {"seqgan.datasets", "seqgan.objectives"},
    {"seqgan.metrics"},
    {"seqgan.runs"},
    {"seqgan.training"},
    {"seqgan.evolve", "seqgan.distributed", "seqgan.evaluation", "seqgan.report"},
    {"seqgan.run", "seqgan.api", "seqgan"},  # the root package: its names load the API on first use
    {"seqgan.cli", "seqgan.__main__", "seqgan.cli_common", "seqgan.cli_media"},  # cli.py and its helpers
]


def modules() -> dict[str, Path]:
    out = {"seqgan.cli": ROOT / "cli.py"}
    for pkg, folder in PACKAGES.items():
        for p in folder.rglob("*.py"):
            if pkg == "seqgan" and p.relative_to(folder).parts[0] in ("datasets", "objectives"):
                continue
            rel = p.relative_to(folder).with_suffix("")
            parts = [x for x in rel.parts if x != "__init__"]
            out[".".join([pkg, *parts])] = p
    return out


MODULES = modules()


def imports_of(name: str, path: Path) -> set[str]:
    """The package modules ``name`` imports, at any level of its code."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = name.split(".") if is_pkg else name.split(".")[:-1]
                parent = parent[: len(parent) - (node.level - 1)]
                base = ".".join([*parent, base] if base else parent)
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for t in targets:
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            if t and t != name and t != "seqgan":  # the root package is everyone's parent
                found.add(t)
    return found


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def layer_of(name: str) -> int:
    for i, layer in enumerate(LAYERS):
        if any(name == m or (m != "seqgan" and name.startswith(m + ".")) for m in layer):
            return i
    raise AssertionError(f"{name} is in no layer of tests/test_layout.py")


def test_the_walk_sees_the_package():
    assert len(MODULES) > 40
    assert "seqgan.training.loop" in GRAPH["seqgan.run"] and "seqgan.run" in GRAPH["seqgan.api"]
    assert "seqgan.runs.rundir" in GRAPH["seqgan.training.loop"]


def test_no_import_cycles():
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(GRAPH[n]):
            if state.get(m) == 1:
                cycle = stack[stack.index(m):] + [m]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(GRAPH):
        if n not in state:
            visit(n)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_go_down_the_layers(name):
    up = sorted(m for m in GRAPH[name] if layer_of(m) > layer_of(name))
    assert not up, f"{name} (layer {layer_of(name)}) imports from a higher layer: {up}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_are_small_and_documented(name):
    text = MODULES[name].read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_LINES, f"{name}: {len(text.splitlines())} lines"
    assert ast.get_docstring(ast.parse(text)), f"{name} has no module docstring"


def test_the_cli_is_a_thin_shell():
    text = MODULES["seqgan.cli"].read_text(encoding="utf-8")
    assert len(text.splitlines()) < 400
    allowed = {"seqgan.api", "seqgan.errors", "seqgan.files", "seqgan.knobs", "seqgan.runs.config",
               "seqgan.runs.options", "seqgan.objectives", "seqgan.cli_common", "seqgan.cli_media"}
    assert GRAPH["seqgan.cli"] <= allowed, sorted(GRAPH["seqgan.cli"] - allowed)


def test_public_definitions_have_docstrings():
    """Every public function, method and class (nested helpers too) has a docstring."""
    missing = []
    for name, path in sorted(MODULES.items()):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                    and not node.name.startswith("_") and not ast.get_docstring(node)):
                missing.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not missing, f"{len(missing)} public definitions lack a docstring:\n" + "\n".join(missing)
