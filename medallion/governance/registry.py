"""The feature schema registry: one versioned schema per feature table, kept in the lake.

A version is one JSON file, ``<features.schemas>/<family>/v<N>.json``: the family's entity and join key,
each feature's name, declared type, Spark type and description, the code version that wrote it, when,
by which run, and what changed from version N-1. Versions are never rewritten.

Each Gold run calls `plan` with the schemas it is about to write (taken from the DataFrames it built, so
a builder that drifts from its declaration is caught here too) before anything is written:

- same features, types and entity: nothing to record;
- features added, or only descriptions changed: a new version (not breaking);
- a feature removed, renamed (a removal plus an addition) or retyped, or the entity changed: breaking.
  The run fails with `SchemaBreak` unless ``--allow-breaking``, which records a version marked breaking.

After a family's rows are written, `record` stores its pending version, so the registry never holds a
version the Gold files do not have. Imports no pyspark.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medallion.core import catalog, lakefs
from medallion.core.errors import TerminalError
from medallion.features import FeatureFamily

if TYPE_CHECKING:
    from medallion.core.config import Config

_VERSION_FILE = re.compile(r"^v(\d+)\.json$")


class SchemaBreak(TerminalError):
    """A Gold run would remove, rename or retype a registered feature: nothing was written."""


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    dtype: str  # the declared type (medallion.features.DTYPES)
    spark_type: str  # the Gold column's Spark SQL type
    description: str


@dataclass(frozen=True)
class Change:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    retyped: tuple[str, ...] = ()  # "name: old → new"
    described: tuple[str, ...] = ()  # descriptions changed
    entity: str = ""  # "old → new" when the entity or its join key changed

    @property
    def breaking(self) -> bool:
        return bool(self.removed or self.retyped or self.entity)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.retyped or self.described or self.entity)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Change:
        lists = {k: tuple(data.get(k) or ()) for k in ("added", "removed", "retyped", "described")}
        return cls(**lists, entity=str(data.get("entity") or ""))

    def text(self) -> str:
        parts = [
            f"{label} {', '.join(items)}"
            for label, items in (
                ("added", self.added),
                ("removed", self.removed),
                ("retyped", self.retyped),
                ("description changed", self.described),
            )
            if items
        ]
        if self.entity:
            parts.append(f"entity {self.entity}")
        return "; ".join(parts) or "first version"


@dataclass
class FeatureSchema:
    """One version of a feature table's schema."""

    family: str
    version: int
    entity: str
    join_key: str
    features: list[FeatureSpec]
    code_version: str = ""
    created_at: str = ""
    run_id: str = ""
    breaking: bool = False
    change: dict[str, Any] = field(default_factory=dict)

    @property
    def by_name(self) -> dict[str, FeatureSpec]:
        return {f.name: f for f in self.features}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSchema:
        data = dict(data)
        data["features"] = [FeatureSpec(**f) for f in data["features"]]
        return cls(**data)


def declared(fam: FeatureFamily, spark_types: dict[str, str] | None = None) -> FeatureSchema:
    """The schema ``fam`` declares (version 0: not yet numbered). ``spark_types`` are the columns' types as
    the run's DataFrame has them; by default the catalogue's Gold table's."""
    table = catalog.gold_table(fam.name)
    types = spark_types if spark_types is not None else {c.name: c.type for c in table.columns}
    return FeatureSchema(
        family=fam.name,
        version=0,
        entity=fam.entity.name,
        join_key=fam.entity.join_key,
        features=[FeatureSpec(f.name, f.dtype, types.get(f.name, "?"), f.description) for f in fam.features],
    )


def diff(old: FeatureSchema | None, new: FeatureSchema) -> Change:
    """What ``new`` changes from ``old`` (None: nothing registered yet)."""
    if old is None:
        return Change(added=tuple(f.name for f in new.features))
    before, after = old.by_name, new.by_name
    retyped = tuple(
        f"{n}: {before[n].dtype} ({before[n].spark_type}) → {after[n].dtype} ({after[n].spark_type})"
        for n in after
        if n in before and (before[n].dtype, before[n].spark_type) != (after[n].dtype, after[n].spark_type)
    )
    entity = ""
    if (old.entity, old.join_key) != (new.entity, new.join_key):
        entity = f"{old.entity}/{old.join_key} → {new.entity}/{new.join_key}"
    return Change(
        added=tuple(n for n in after if n not in before),
        removed=tuple(n for n in before if n not in after),
        retyped=retyped,
        described=tuple(n for n in after if n in before and before[n].description != after[n].description),
        entity=entity,
    )


# --- storage ----------------------------------------------------------------------------------------


def family_dir(cfg: Config, family: str) -> str:
    return lakefs.join(catalog.FEATURE_SCHEMAS.path(cfg), family)


def _versions(cfg: Config, family: str) -> list[int]:
    _, names = lakefs.list_children(family_dir(cfg, family))
    return sorted(int(m.group(1)) for n in names if (m := _VERSION_FILE.match(n)))


def _read(cfg: Config, family: str, version: int) -> FeatureSchema:
    path = lakefs.join(family_dir(cfg, family), f"v{version}.json")
    return FeatureSchema.from_dict(json.loads(lakefs.read_text(path)))


def history(cfg: Config, family: str) -> list[FeatureSchema]:
    """Every registered version of ``family``, oldest first."""
    return [_read(cfg, family, v) for v in _versions(cfg, family)]


def latest(cfg: Config, family: str) -> FeatureSchema | None:
    versions = _versions(cfg, family)
    return _read(cfg, family, versions[-1]) if versions else None


def registered(cfg: Config) -> list[str]:
    """The families that have at least one version."""
    dirs, _ = lakefs.list_children(catalog.FEATURE_SCHEMAS.path(cfg))
    return [d for d in dirs if not d.startswith(catalog.HIDDEN_PREFIXES) and _versions(cfg, d)]


# --- the Gold run's side ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pending:
    """A version a run will record once the family's rows are written (None: schema unchanged)."""

    family: str
    schema: FeatureSchema | None
    change: Change


def plan(
    cfg: Config, candidates: list[FeatureSchema], *, allow_breaking: bool = False, run_id: str = ""
) -> list[Pending]:
    """Compare every table a run is about to write with its latest version; raise `SchemaBreak` naming
    every breaking change (of all tables at once) unless ``allow_breaking``."""
    out, breaks = [], []
    for new in candidates:
        old = latest(cfg, new.family)
        change = diff(old, new)
        if old is not None and change.empty:
            out.append(Pending(new.family, None, change))
            continue
        if change.breaking:
            breaks.append(f"gold.{new.family} (v{old.version if old else 0}): {change.text()}")
        new.version = (old.version if old else 0) + 1
        new.breaking = change.breaking
        new.change = asdict(change)
        new.run_id = run_id
        out.append(Pending(new.family, new, change))
    if breaks and not allow_breaking:
        raise SchemaBreak(
            "Gold wrote nothing: breaking feature schema change(s) against the registry: "
            + "; ".join(breaks)
            + ". Readers of these features (training sets, online models) would break. Restore the "
            "declaration in medallion/features/, add a feature under a new name instead, or re-run with "
            "--allow-breaking to record a breaking version."
        )
    return out


def record(cfg: Config, pending: Pending) -> FeatureSchema | None:
    """Store ``pending``'s version (after its rows are written); the stored schema, or None if unchanged."""
    schema = pending.schema
    if schema is None:
        return None
    schema.code_version = code_version()
    schema.created_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    path = lakefs.join(family_dir(cfg, schema.family), f"v{schema.version}.json")
    lakefs.write_text(path, json.dumps(asdict(schema), indent=1, ensure_ascii=False))
    return schema


@cache
def code_version() -> str:
    """``<package version>`` plus ``+g<revision>`` when the package runs from a git checkout."""

    try:
        text = version("medallion")
    except PackageNotFoundError:
        text = "unknown"
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return text
    revision = rev.stdout.strip()
    return f"{text}+g{revision}" if rev.returncode == 0 and revision else text
