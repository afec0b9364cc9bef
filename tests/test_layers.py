"""The import contract: the package's layers, checked on the real import graph (imports inside functions
included), so an upward import or a cycle between parts fails CI instead of a review.

Layers, lowest first (docs/architecture.md, "Layers"): a part may import its own layer and the ones
below, never one above.

- ``base``: declarations and plain utilities (errors, config, the contract, the catalogue, the feature
  declarations, filesystem access, retries);
- ``core``: what every stage shares (lake I/O, the ledger, locks, the stage envelope, the DLQ writer,
  PII scrubbing, metrics and status records);
- ``engines``: Spark, Kafka, the embedded services;
- ``stages``: the work (produce, lookups, bronze, silver, gold, quality, governance, serving,
  maintenance);
- ``operations``: what runs and watches the stages (pipeline, status, alerts, report, the CLI).
"""

from __future__ import annotations

import ast
import importlib
from collections import defaultdict
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "medallion"

LAYERS: dict[str, tuple[str, ...]] = {
    "base": (
        "__init__", "errors", "times", "retry", "lakefs", "config", "contract", "schemas", "features",
        "catalog", "masking",
    ),
    "core": ("lake", "ledger", "locks", "stages", "dlq", "pii", "metrics", "status_model", "rejections"),
    "engines": ("spark", "kafka", "embedded", "services"),
    "stages": (
        "produce", "lookups", "bronze", "silver", "gold", "quality", "governance", "serving", "maintenance",
    ),
    "operations": ("pipeline", "status", "alerts", "report", "cli"),
}  # fmt: skip
ORDER = list(LAYERS)
LAYER_OF = {part: layer for layer, parts in LAYERS.items() for part in parts}

KNOWN_UPWARD: dict[tuple[str, str], str] = {
    ("contract", "bronze"): "`contract check` runs Bronze's own decoder and compiler on a user's contract: "
    "the checking half belongs beside Bronze's validator (issue 22's code; to move).",
}
"""Upward imports that exist today, each with why; the test fails on any other, and on one listed here
that is gone (so the list only shrinks)."""

KNOWN_CYCLES: dict[frozenset[str], str] = {}


FOLDERS: dict[str, tuple[str, ...]] = {
    "core": ("base", "core"),
    "engines": ("engines",),
    "operations": ("operations",),
}
"""The folders that group a layer's modules (a stage is a folder of its own), and the layers each may hold."""


def part_of(module: str) -> str:
    """``medallion.silver.job`` → ``silver``; ``medallion.core.config`` → ``config``; ``medallion`` →
    ``__init__``; a grouping folder itself (``medallion.core``) → its name."""
    parts = module.split(".")
    if len(parts) > 2 and parts[1] in FOLDERS:
        return parts[2]
    return parts[1] if len(parts) > 1 else "__init__"


def import_graph(package: Path = PACKAGE) -> dict[str, dict[str, list[str]]]:
    """part → imported part → where (``file:line``), over every import statement, at any depth."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(package.rglob("*.py")):
        module = ".".join(path.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__")
        source = part_of(module)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [
                    f"{node.module}.{a.name}" if node.module == "medallion" else node.module
                    for a in node.names
                ]
            else:
                continue
            for name in names:
                if name.startswith("medallion.") and (target := part_of(name)) != source:
                    graph[source][target].append(f"{path.relative_to(package.parent)}:{node.lineno}")
    return graph


def upward(graph: dict[str, dict[str, list[str]]]) -> dict[tuple[str, str], list[str]]:
    out = {}
    for source, targets in graph.items():
        for target, where in targets.items():
            if target in LAYER_OF and ORDER.index(LAYER_OF[target]) > ORDER.index(
                LAYER_OF.get(source, "base")
            ):
                out[(source, target)] = where
    return out


def cycles(graph: dict[str, dict[str, list[str]]]) -> set[frozenset[str]]:
    """The strongly connected groups of parts (Tarjan), as sets; a part alone is no cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: set[frozenset[str]] = set()

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                found.add(frozenset(group))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def _parts(folder: Path) -> set[str]:
    return {p.stem for p in folder.glob("*.py") if p.stem != "__init__"} | {
        p.name for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").exists()
    }


def test_every_part_of_the_package_has_a_layer() -> None:
    parts = (_parts(PACKAGE) - set(FOLDERS)) | {"__init__"}
    for folder in FOLDERS:
        parts |= _parts(PACKAGE / folder)
    unplaced = sorted(parts - set(LAYER_OF))
    assert not unplaced, f"place {unplaced} in a layer of tests/test_layers.py (and docs/architecture.md)"


def test_each_folder_holds_its_layers_and_the_top_no_loose_module() -> None:
    """The folders show the layers: core/ holds base and core, engines/ the engines, operations/ what runs
    and watches the stages; a stage is a folder at the top; no module sits loose at the top."""
    misplaced = {
        f"{folder}/{part}": LAYER_OF.get(part)
        for folder, layers in FOLDERS.items()
        for part in _parts(PACKAGE / folder)
        if LAYER_OF.get(part) not in layers
    }
    assert not misplaced, f"in the wrong folder for their layer: {misplaced}"
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    assert not loose, f"move {loose} into the folder of its layer"
    for part in _parts(PACKAGE) - set(FOLDERS) - {"cli"}:
        assert LAYER_OF[part] in ("base", "core", "stages"), (
            f"{part}: a {LAYER_OF[part]} part belongs in its folder"
        )


def test_no_part_imports_a_layer_above_its_own() -> None:
    found = upward(import_graph())
    new = {edge: where for edge, where in found.items() if edge not in KNOWN_UPWARD}
    assert not new, "upward imports (a lower layer must not import a higher one):\n" + "\n".join(
        f"  {s} ({LAYER_OF.get(s)}) -> {t} ({LAYER_OF[t]}): {', '.join(w)}"
        for (s, t), w in sorted(new.items())
    )
    gone = sorted(set(KNOWN_UPWARD) - set(found))
    assert not gone, f"no longer imported upward, remove from KNOWN_UPWARD: {gone}"


def test_no_cycle_between_parts() -> None:
    graph = import_graph()
    for source, target in KNOWN_UPWARD:  # each closes a cycle through its layer; listed (and checked) above
        graph[source].pop(target, None)
    found = cycles(graph)
    new = [sorted(c) for c in found if c not in KNOWN_CYCLES]
    assert not new, f"import cycles between parts: {new}"
    gone = [sorted(c) for c in KNOWN_CYCLES if c not in found]
    assert not gone, f"these cycles are gone, remove them from KNOWN_CYCLES: {gone}"


def test_the_checks_find_a_planted_upward_import_and_cycle(tmp_path: Path) -> None:
    package = tmp_path / "medallion"
    (package / "silver").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "silver" / "__init__.py").write_text("")
    (package / "catalog.py").write_text(
        "def f():\n    from medallion.silver import job\n"
    )  # inside a function
    (package / "silver" / "job.py").write_text("from medallion import catalog\n")
    graph = import_graph(package)
    assert set(upward(graph)) == {("catalog", "silver")}
    assert cycles(graph) == {frozenset({"catalog", "silver"})}


def test_the_paths_from_before_the_folders_name_the_same_modules() -> None:
    """``medallion.config`` and the like (users' scripts, the feature repository's README before the
    regroup) still import, as the one module the new path names: no second copy with its own state."""
    for folder in FOLDERS:
        for part in sorted(_parts(PACKAGE / folder)):
            old = importlib.import_module(f"medallion.{part}")
            new = importlib.import_module(f"medallion.{folder}.{part}")
            assert old is new, part
            assert new.__spec__ is not None and new.__spec__.name == f"medallion.{folder}.{part}"
    source = importlib.import_module("medallion.kafka.source")
    assert source is importlib.import_module("medallion.engines.kafka.source")


def unexplained_imports_inside_functions(package: Path = PACKAGE) -> list[str]:
    """``file:line`` of each run of imports inside a function whose line above holds no ``# lazy:`` reason.
    An import belongs at the top of its module; inside a function only where a heavy module must stay out
    of a start-up (`--help`, `status`, an online lookup), and then it says so."""
    found = []
    for path in sorted(package.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for fn in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                for block in (getattr(node, f, None) for f in ("body", "orelse", "finalbody")):
                    previous: ast.stmt | None = None
                    for stmt in block if isinstance(block, list) else []:
                        is_import = isinstance(stmt, ast.Import | ast.ImportFrom)
                        starts_run = is_import and not isinstance(previous, ast.Import | ast.ImportFrom)
                        if starts_run and "# lazy: " not in lines[stmt.lineno - 2]:
                            found.append(f"{path.relative_to(package.parent)}:{stmt.lineno}")
                        previous = stmt
    return sorted(set(found))


def test_every_import_inside_a_function_says_why_it_is_there() -> None:
    assert unexplained_imports_inside_functions() == []


def test_the_reason_check_finds_an_unexplained_import(tmp_path: Path) -> None:
    package = tmp_path / "medallion"
    package.mkdir()
    (package / "a.py").write_text(
        "def f():\n    # lazy: heavy\n    import json\n    import re\n\ndef g():\n    x = 1\n    import csv\n"
    )
    assert unexplained_imports_inside_functions(package) == ["medallion/a.py:8"]


LONG_MODULE = 400


def test_a_long_module_says_why_it_is_one() -> None:
    """A module over ~400 lines is split, or its docstring says why it is one (``Why one module:``)."""
    unexplained = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > LONG_MODULE and "Why one module: " not in (
            ast.get_docstring(ast.parse(text)) or ""
        ):
            unexplained.append(f"{path.relative_to(PACKAGE.parent)} ({len(text.splitlines())} lines)")
    assert unexplained == []
