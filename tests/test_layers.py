"""The package's architecture, enforced: layers by folder, imports downwards only, no cycles, no oversized module.

The layers, bottom up, each a set of folders (or top-level modules):

- core: ``events/``, ``pools/`` and the small top-level modules (checks, URLs,
  credentials, units, the tutorial's model, test helpers);
- lab: ``servers/``, the real servers around the pools (reachability, the
  server's view, pgbouncer, roles, faults, fork); ``recording/``, an
  application's pool streamed to files; ``otel/``, its OpenTelemetry metrics;
- data: ``data/`` (frames, traces, analysis, queueing), pandas but no drawing;
- views: ``plots/`` and the live view's widget (``live/view``, ``live/packing``);
- apps: ``workload/``, the rest of ``live/``, ``cli``, ``widgets``, ``practice/``
  (a real Flask app under gunicorn to practise on).

Every module of ``poolviz`` must fall in a layer here, so a new module is
placed on purpose, and at most ``MAX_TOP_LEVEL`` modules sit directly in
``poolviz/``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "poolviz"
MAX_LINES = 600

CORE, LAB, DATA, VIEWS, APPS = 0, 1, 2, 3, 4
LAYER_NAMES = ("core", "lab", "data", "views", "apps")
MAX_TOP_LEVEL = 10  # modules directly in poolviz/, the package's own __init__ and __main__ aside

# Longest prefix wins: "poolviz.live.view" is a view, the rest of "poolviz.live" are apps.
LAYERS = {
    # core: folders
    "poolviz.events": CORE,
    "poolviz.pools": CORE,
    # core: the top-level modules
    "poolviz.backends": CORE,
    "poolviz.checks": CORE,
    "poolviz.credentials": CORE,
    "poolviz.models": CORE,
    "poolviz.testing": CORE,
    "poolviz.units": CORE,
    "poolviz.urls": CORE,
    "poolviz.servers": LAB,
    "poolviz.recording": LAB,
    "poolviz.otel": LAB,
    "poolviz.data": DATA,
    "poolviz.plots": VIEWS,
    "poolviz.live.view": VIEWS,
    "poolviz.live.packing": VIEWS,
    "poolviz.workload": APPS,
    "poolviz.live": APPS,
    "poolviz.widgets": APPS,
    "poolviz.cli": APPS,
    "poolviz.practice": APPS,
    "poolviz.__main__": APPS,
    "poolviz": APPS,  # the package's __init__ re-exports from every layer
}

# Third-party packages a layer may not import at all (not even inside a function).
FORBIDDEN = {
    CORE: {"pandas", "numpy", "matplotlib", "ipywidgets", "anywidget", "traitlets", "IPython"},
    LAB: {"pandas", "numpy", "matplotlib", "ipywidgets", "anywidget", "traitlets", "IPython"},
    DATA: {"matplotlib", "ipywidgets", "anywidget", "traitlets", "IPython"},
    VIEWS: {"ipywidgets", "IPython"},
    APPS: set(),
}

# Upward imports allowed on purpose, each inside one function and with its reason.
ALLOWED_UPWARD = {
    ("poolviz.events.log", "poolviz.data.frames"): "EventLog.to_frame() is the one-call way to a DataFrame; "
    "it imports the data layer only when called, so the pools never load pandas (frames needs only "
    "the vocabulary, so this makes no circle)",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(name: str) -> int | None:
    best = None
    for prefix, layer in LAYERS.items():
        if (name == prefix or name.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, layer)
    return None if best is None else best[1]


def imports(path: Path, known: set[str], name: str | None = None) -> Iterator[tuple[str, bool, int]]:
    """``(imported module, at module level?, line)`` for every import in the file (read as module ``name``)."""
    name = name or module_name(path)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), str(path))
    top_level = set(map(id, tree.body))
    # Imports for type checkers only never run.
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, id(node) in top_level, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub if sub in known else target), id(node) in top_level, node.lineno


def test_every_module_has_a_layer() -> None:
    """Each module of poolviz is placed in a layer here."""
    unplaced = [name for name in modules() if layer_of(name) is None]
    assert not unplaced, f"give these modules a layer in tests/test_layers.py: {unplaced}"


def test_imports_go_downwards_only() -> None:
    """No module imports a poolviz module of a higher layer, at module level or inside a function."""
    known = set(modules())
    wrong = []
    for name, path in modules().items():
        own = layer_of(name)
        for target, _top, line in imports(path, known):
            if not target.startswith("poolviz"):
                continue
            theirs = layer_of(target)
            if own is not None and theirs is not None and theirs > own and (name, target) not in ALLOWED_UPWARD:
                wrong.append(f"{path.name}:{line} {name} ({LAYER_NAMES[own]}) imports {target} ({LAYER_NAMES[theirs]})")
    assert not wrong, "\n".join(wrong)


def test_lower_layers_do_not_import_heavy_libraries() -> None:
    """The core needs only peewee and the standard library; the data layer draws nothing."""
    known = set(modules())
    wrong = []
    for name, path in modules().items():
        own = layer_of(name)
        if own is None:
            continue
        for target, _top, line in imports(path, known):
            if target.split(".")[0] in FORBIDDEN[own]:
                wrong.append(f"{path.name}:{line} {name} ({LAYER_NAMES[own]}) imports {target}")
    assert not wrong, "\n".join(wrong)


def test_folders_hold_the_layers() -> None:
    """At most MAX_TOP_LEVEL modules sit directly in poolviz/; the rest live in their layer's folder."""
    top = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert len(top) <= MAX_TOP_LEVEL, f"{len(top)} modules directly in poolviz/ (at most {MAX_TOP_LEVEL}): {top}"


def test_no_import_cycles() -> None:
    """Imports between poolviz modules form no cycle, imports inside functions included.

    A package importing its own parent aside (``poolviz.pools.peewee`` reading
    ``poolviz.pools``' ``__init__`` on the way is Python's doing, not a cycle).
    """
    known = set(modules())
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in modules().items():
        for target, _top, _line in imports(path, known):
            if target in known and target != name and not name.startswith(target + "."):
                graph[name].add(target)
    cycles = _cycles(graph)
    assert not cycles, f"import cycles: {cycles}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    # Tarjan's strongly connected components; any component of two or more is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_600_lines(path: Path) -> None:
    """A module past 600 lines is doing more than one job: split it by what its parts do."""
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE)} has {lines} lines (at most {MAX_LINES})"


def test_the_layering_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    """The import reader finds a relative import inside a function, so an upward one cannot hide there."""
    path = tmp_path / "events.py"
    path.write_text("def f():\n    from .plots import plot_timeline\n")
    found = list(imports(path, set(modules()), name="poolviz.events"))
    assert ("poolviz.plots", False, 2) in found


MAX_FUNCTION_LINES = 100


def test_no_function_is_over_100_lines() -> None:
    """A function past 100 lines does several things: name them, one function each."""
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"
