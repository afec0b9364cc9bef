"""The catalogue is the one place a table's name, path and partitions are written."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from medallion.core import catalog
from medallion.features import FAMILIES

PACKAGE = Path(catalog.__file__).parents[1]
# Words that are also stage or layer names, counts or contract members: legitimate outside the catalogue.
SHARED_WORDS = {"bronze", "silver", "gold", "dlq", "user_events", catalog.EVENT_TYPE}


def _banned() -> set[str]:
    """Dataset names, their paths, the distinctive parts of their locations (the lake's own folders and
    files: ``_ledger``, ``registry.db``; Gold's family folders), and partition columns. Ordinary words
    that a location also uses (``items``, ``metrics``) are caught as paths, not as words."""
    words: set[str] = set()
    for d in catalog.CATALOG:
        words.add(d.name)
        parts = [p for p in d.location if "{" not in p]
        words.add("/".join(parts))
        words.update(p for p in parts if p.startswith("_") or "." in p)
        if d.layer == "gold":
            words.add(d.location[-1])
        words.update(d.partitions)
    words.update(
        {catalog.FEATURE_DATE, catalog.EVENT_DATE, catalog.EVENT_TIMESTAMP, catalog.CREATED_TIMESTAMP}
    )
    return words - SHARED_WORDS


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            for stmt in body:
                if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                    ids.add(id(stmt.value))
    return ids


def _lake_root(node: ast.AST | None) -> bool:
    """``cfg.lake`` / ``self.cfg.lake.root`` and the like: a path below the lake's root."""
    text = ast.unparse(node) if node is not None else ""
    return text.endswith(".lake") or text.endswith(".lake.root") or text in ("lake_root", "root")


def literals_outside_the_catalogue(package: Path) -> list[str]:
    """``file:line: literal`` for every table name, path part or partition column spelled in the code,
    and every path built below the lake root from literals."""
    banned = _banned()
    tops = sorted({d.location[0] for d in catalog.CATALOG})
    fragment = re.compile(r"(?:^|[^\w/.<>-])(?:" + "|".join(map(re.escape, tops)) + r")/")
    found = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        if rel.as_posix() == "core/catalog.py" or rel.parts[0] == "features":
            continue  # the declarations themselves
        tree = ast.parse(path.read_text())
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                text = node.value
                if text in banned or fragment.search(text):
                    found.append(f"{rel}:{node.lineno}: {text!r}")
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in ("path", "join"):
                args = list(node.args)
                base = args[0] if getattr(node.func, "attr", None) == "join" and args else node.func.value
                literals = [a for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                if literals and _lake_root(base):
                    found.append(f"{rel}:{node.lineno}: a path below the lake root built from literals")
    return found


def test_no_table_name_path_fragment_or_partition_column_outside_the_catalogue() -> None:
    assert literals_outside_the_catalogue(PACKAGE) == []


def test_the_check_finds_a_planted_literal(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "job.py").write_text(
        '"""Reads lake/_ledger (a docstring may say so)."""\n'
        'PATH = cfg.lake.path("silver", "user_events")\n'
        'P = "feature_date"\n'
        'Q = f"gold/{name}"\n'
        'R = lakefs.join(cfg.lake.root, "anything")\n'
        'OK = "medallion/bronze/job.py and <lake>/_feast are words in a message"\n'
        'WORDS = {"items": 1, "metrics": 2}\n'
    )
    found = literals_outside_the_catalogue(pkg)
    assert sorted(f.split(":")[1] for f in found) == ["2", "3", "4", "5"], found


def test_paths_resolve_below_the_root_and_follow_overrides(make_config: Any, lake: Path) -> None:
    cfg = make_config(**{"kafka.topic": "clicks", "serving.registry_path": "/elsewhere/reg.db"})
    assert catalog.BRONZE.path(cfg) == f"{lake}/bronze/user_events"
    assert catalog.INGEST_CHECKPOINT.path(cfg) == f"{lake}/_checkpoints/bronze/clicks"
    assert catalog.FEAST_REGISTRY.path(cfg) == "/elsewhere/reg.db"
    first = FAMILIES[0].name
    assert catalog.gold_table(first).partition_path(cfg, feature_date="2026-11-01") == (
        f"{lake}/gold/{first}/feature_date=2026-11-01"
    )
    s3 = make_config(**{"lake.root": "s3a://bucket/lake/"})
    assert catalog.SILVER.path(s3) == "s3a://bucket/lake/silver/user_events"
    with pytest.raises(ValueError, match="no partition column"):
        catalog.SILVER.partition_path(cfg, feature_date="x")


def test_every_family_is_a_gold_table_and_every_dataset_is_named_once() -> None:
    names = [d.name for d in catalog.CATALOG]
    assert len(names) == len(set(names))
    assert {t.name for t in catalog.GOLD_TABLES} == {f"gold.{f.name}" for f in FAMILIES}
    locations = [d.location for d in catalog.CATALOG]
    assert len(locations) == len(set(locations))
    with pytest.raises(KeyError, match=f"known: {FAMILIES[0].name}, "):
        catalog.gold_table("nope")


def test_the_catalogue_imports_no_spark_pandas_or_feast() -> None:
    code = (
        "import sys, medallion.core.catalog, medallion.features; "
        "print(sorted(m for m in ('pyspark', 'pandas', 'feast') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bronze_columns_are_the_rows_the_decoder_builds_from_the_contract() -> None:
    """The decoder derives Bronze's row from the JSON Schema; the catalogue states it for readers that
    must not import Spark. The two must be the same columns with the same types."""
    from medallion.bronze.records import BRONZE_FIELDS
    from medallion.core.lake import spark_schema

    declared = spark_schema(catalog.BRONZE_EVENT_COLUMNS).fields
    assert [(f.name, f.dataType.simpleString()) for f in declared] == [
        (f.name, f.dataType.simpleString()) for f in BRONZE_FIELDS
    ]
