"""Fake Gold for every declared family, derived from `medallion.features.FAMILIES` (no Spark needed).

Laid out as the Gold job writes it: ``<lake>/gold/<family>/feature_date=D/part-00000-<uuid>.c000.snappy.parquet``
(one file per partition, replaced as a whole) with the family's join key, ``event_timestamp`` (the end of
D), ``created_timestamp`` and every feature in its declared type. Values encode (family, feature, day,
entity), so a wrong row or a wrong column is visible; about one value in nine is null (NaN for some
doubles, which Feast serves as null too) and arrays vary in length, empty ones included.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import shutil
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from medallion.features import FAMILIES, FeatureFamily

UTC = dt.UTC
Row = dict[str, Any]


def end_of(day: dt.date) -> dt.datetime:
    """The event_timestamp of feature_date ``day``: the next midnight, UTC."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=UTC)


def entity_id(fam: FeatureFamily, n: int) -> str:
    return f"{fam.entity.name[0]}_{n:06d}"


def value(dtype: str, rnd: random.Random, seed: int) -> Any:
    """A value of ``dtype`` that depends on ``seed``; sometimes null."""
    if rnd.random() < 0.11:
        return None if dtype != "float64" or rnd.random() < 0.5 else math.nan
    if dtype == "int64":
        return seed * 7 - 3 if rnd.random() < 0.9 else -seed
    if dtype == "float64":
        return seed / 7.0 + rnd.random()
    if dtype == "string":
        return rnd.choice(["morning", "evening", "sunday", "", f"s{seed}é"])
    if dtype == "bool":
        return bool(seed % 2)
    return [seed + k / 8 for k in range(rnd.choice([0, 1, 4, 16]))]


def family_rows(
    fam: FeatureFamily,
    days: Iterable[dt.date],
    entities: int,
    *,
    seed: int = 7,
    presence: float = 0.7,
    version: int = 0,
) -> list[Row]:
    """One row per (entity, day) for ~``presence`` of the entities each day."""
    rnd = random.Random(f"{fam.name}:{seed}:{version}")
    rows = []
    for day in days:
        for n in range(entities):
            if rnd.random() >= presence:
                continue
            row: Row = {
                fam.entity.join_key: entity_id(fam, n),
                "feature_date": day,
                "event_timestamp": end_of(day),
                "created_timestamp": end_of(day) + dt.timedelta(hours=1 + version, seconds=n),
            }
            for k, feature in enumerate(fam.features):
                row[feature.name] = value(
                    feature.dtype, rnd, (day.toordinal() % 1000) * 100_000 + n * 100 + k
                )
            rows.append(row)
    return rows


def schema(fam: FeatureFamily) -> pa.Schema:
    return pa.schema(
        [
            (fam.entity.join_key, pa.string()),
            ("event_timestamp", pa.timestamp("us", tz="UTC")),
            ("created_timestamp", pa.timestamp("us", tz="UTC")),
        ]
        + [(f.name, f.type.arrow()) for f in fam.features]
    )


def write_family(lake: Path, fam: FeatureFamily, rows: Sequence[Row], int96: bool = False) -> Path:
    """Write ``rows`` as the Gold job would: each feature_date partition replaced as a whole."""
    table_dir = lake / "gold" / fam.name
    by_day: dict[dt.date, list[Row]] = {}
    for row in rows:
        by_day.setdefault(row["feature_date"], []).append(row)
    sch = schema(fam)
    for day, day_rows in sorted(by_day.items()):
        part = table_dir / f"feature_date={day.isoformat()}"
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir(parents=True)
        table = pa.Table.from_pylist([{k: r[k] for k in sch.names} for r in day_rows], schema=sch)
        name = f"part-00000-{uuid.uuid4()}.c000.snappy.parquet"
        pq.write_table(table, part / name, compression="snappy", use_deprecated_int96_timestamps=int96)
        (part / f".{name}.crc").write_bytes(b"crc")
    (table_dir / "_SUCCESS").touch()
    return table_dir


def write_all(
    lake: Path, days: Sequence[dt.date], entities: int, *, seed: int = 7, presence: float = 0.7
) -> dict[str, list[Row]]:
    """Gold for every declared family; returns ``{family: rows}``."""
    out = {}
    for i, fam in enumerate(FAMILIES):
        out[fam.name] = family_rows(fam, days, entities, seed=seed + i, presence=presence)
        write_family(lake, fam, out[fam.name], int96=i % 2 == 1)
    return out


def latest(rows: Sequence[Row], key: str, at: dt.datetime | None = None) -> dict[str, Row]:
    """Each entity's latest row by (event_timestamp, created_timestamp), at or before ``at``."""
    best: dict[str, Row] = {}
    for row in rows:
        if at is not None and row["event_timestamp"] > at:
            continue
        current = best.get(row[key])
        if current is None or (row["event_timestamp"], row["created_timestamp"]) > (
            current["event_timestamp"],
            current["created_timestamp"],
        ):
            best[row[key]] = row
    return best


def served(value: Any) -> Any:
    """What an online store gives back for a Gold value: NaN is served as null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
