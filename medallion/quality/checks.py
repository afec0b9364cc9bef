"""Data-quality checks over the lake for a date range: ids present, layers reconciled, ledger balanced.

Each check is a small function from the layers to a ``CheckResult``; ``validate`` runs the ones for the
requested layers. A failed check is a data failure (exit 1), never an exception.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion import catalog, lakefs
from medallion.config import Config
from medallion.ledger import Ledger

LAYERS = ("bronze", "silver", "gold")


@dataclass
class CheckResult:
    layer: str
    name: str
    passed: bool
    detail: str


def _null_ids(df: DataFrame, layer: str, ids: tuple[str, ...]) -> CheckResult:
    row = df.select(
        *[F.sum(F.col(c).isNull().cast("long")).alias(c) for c in ids], F.count(F.lit(1)).alias("_n")
    ).first()
    nulls = {c: int(row[c] or 0) for c in ids} if row else {}
    total = int(row["_n"]) if row else 0
    bad = {c: n for c, n in nulls.items() if n}
    detail = f"{total:,} rows; " + (f"null ids: {bad}" if bad else f"no null {', '.join(ids)}")
    return CheckResult(layer, "no_null_ids", not bad, detail)


def _unique(df: DataFrame, layer: str, key: str) -> CheckResult:
    row = df.select(F.count(F.lit(1)).alias("n"), F.count_distinct(key).alias("d")).first()
    n, d = (int(row["n"]), int(row["d"])) if row else (0, 0)
    return CheckResult(layer, f"unique_{key}", n == d, f"{n:,} rows, {d:,} distinct {key}")


def _reconciled(bronze: DataFrame, silver: DataFrame) -> CheckResult:
    distinct_bronze = bronze.select("event_id").distinct().count()
    silver_rows = silver.count()
    return CheckResult(
        "silver",
        "reconciled_with_bronze",
        distinct_bronze == silver_rows,
        f"{distinct_bronze:,} distinct Bronze events, {silver_rows:,} Silver rows",
    )


def _gold_covers_active_users(silver: DataFrame, gold: DataFrame) -> CheckResult:
    date = catalog.FEATURE_DATE
    active = silver.select("user_id", F.col(catalog.EVENT_DATE).alias(date)).distinct()
    served = gold.where("events_1d > 0").select("user_id", date)
    missing = active.exceptAll(served).count()
    extra = served.exceptAll(active).count()
    return CheckResult(
        "gold",
        "covers_active_users",
        missing == 0 and extra == 0,
        f"{missing:,} user-days active in Silver without a Gold row, {extra:,} Gold rows with no Silver activity",
    )


def _ledger_balanced(cfg: Config) -> CheckResult:
    bad = []
    runs = [r for r in Ledger(cfg.lake.root).records() if r.outcome == "succeeded" and "dlq" in r.counts]
    for r in runs:
        c = r.counts
        if c.get("input", 0) != c.get("output", 0) + c.get("dlq", 0) + c.get("dropped", 0):
            bad.append(f"{r.stage} {r.run_id}")
    return CheckResult(
        "ledger",
        "input_equals_output_plus_dlq",
        not bad,
        f"{len(runs)} runs checked" + (f"; unbalanced: {', '.join(bad[:5])}" if bad else ""),
    )


def validate(
    spark: SparkSession, cfg: Config, layers: list[str], start: dt.date, end: dt.date
) -> list[CheckResult]:
    def read(table: catalog.Dataset) -> DataFrame | None:
        path = table.path(cfg)
        if not lakefs.exists(path):
            return None
        return (
            spark.read.option("basePath", path)
            .parquet(path)
            .where(F.col(table.date_column or "").between(F.lit(start), F.lit(end)))
        )

    bronze = read(catalog.BRONZE)
    silver = read(catalog.SILVER)
    gold = read(catalog.gold_table(catalog.FAMILIES[0].name))
    results: list[CheckResult] = []
    present = {"bronze": bronze, "silver": silver, "gold": gold}
    for layer in layers:
        if present[layer] is None:
            results.append(CheckResult(layer, "exists", False, f"no {layer} data in the lake"))
    if "bronze" in layers and bronze is not None:
        results.append(_null_ids(bronze, "bronze", ("event_id", "user_id", "event_time")))
    if "silver" in layers and silver is not None:
        results.append(_null_ids(silver, "silver", ("event_id", "user_id", "event_time")))
        results.append(_unique(silver, "silver", "event_id"))
        if bronze is not None:
            results.append(_reconciled(bronze, silver))
    if "gold" in layers and gold is not None:
        results.append(_null_ids(gold, "gold", ("user_id", catalog.EVENT_TIMESTAMP)))
        if silver is not None:
            results.append(_gold_covers_active_users(silver, gold))
    results.append(_ledger_balanced(cfg))
    return results
