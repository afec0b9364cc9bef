"""`medallion validate`: a layer's declared rules over what the lake holds for a date range, after the fact,
plus the reconciliation checks between layers, reported as rules of the same shape.

The rules are the ones the pipeline runs (Silver's file, or ``--rules``; for Gold, each family's rules
derived from its declarations), evaluated by the same engine in one aggregation per table. ``gold``
checks every family's table; ``gold.<family>`` one. The reconciliation checks:

- ``reconciled_with_bronze`` (silver): Bronze's distinct events of the dates = Silver's rows + Silver's
  DLQ rows of the dates (no event lost, none counted twice);
- ``ledger_balanced`` (silver): every successful Silver run has ``input = output + dlq + dropped``;
- ``covers_active_users`` (gold.user_features): a row with events_1d > 0 for every user-day active in
  Silver, and none for others.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion.core import catalog, lakefs, stages
from medallion.core.config import Config
from medallion.core.errors import UsageError
from medallion.core.lake import date_range, spark_schema
from medallion.core.ledger import Ledger
from medallion.features import family
from medallion.features.user import USER_FEATURES
from medallion.quality import engine
from medallion.quality.coverage import active_counts
from medallion.quality.results import QualityReport, RuleResult
from medallion.quality.rules import RuleSet, rules_for

LAYERS = ("bronze", "silver", "gold")
STAGE = stages.VALIDATE.name
USER_TABLE = catalog.gold_table(USER_FEATURES.name).name  # what `covers_active_users` reconciles with Silver


def tables(layers: list[str]) -> list[catalog.Dataset]:
    """The tables ``layers`` name: ``bronze``, ``silver``, ``gold`` (every family) or ``gold.<family>``."""
    out: list[catalog.Dataset] = []
    for layer in layers:
        if layer == "gold":
            found = list(catalog.GOLD_TABLES)
        elif layer in LAYERS:
            found = [catalog.BRONZE if layer == "bronze" else catalog.SILVER]
        else:
            found = [t for t in catalog.GOLD_TABLES if t.name == layer]
        if not found:
            known = ", ".join([*LAYERS, *(t.name for t in catalog.GOLD_TABLES)])
            raise UsageError(f"Unknown layer {layer!r} (--layer): use one of {known}.")
        out += [t for t in found if t not in out]
    return out


def table_schema(table: catalog.Dataset) -> Any:

    parts = ", ".join(f"{p} {'date' if p == table.date_column else 'string'}" for p in table.partitions)
    return spark_schema(table.columns + (catalog.columns(parts) if parts else ()))


def rule_files(cfg: Config, layers: list[str], rules_path: str | None) -> dict[str, RuleSet]:
    """Every table's rules, checked against its columns (no Spark); ``rules_path`` replaces Silver's."""
    return {
        t.name: rules_for(t, cfg.quality.rules_dir, rules_path if t is catalog.SILVER else None)
        for t in tables(layers)
    }


def _read(
    spark: SparkSession, cfg: Config, table: catalog.Dataset, start: dt.date, end: dt.date
) -> DataFrame | None:
    path = table.path(cfg)
    if not lakefs.exists(path):
        return None
    df = spark.read.option("basePath", path).parquet(path)
    column = table.date_column or ""
    return df.where(F.col(column).between(F.lit(start), F.lit(end)))


def validate(
    spark: SparkSession,
    cfg: Config,
    layers: list[str],
    start: dt.date,
    end: dt.date,
    *,
    run_id: str,
    rulesets: dict[str, RuleSet] | None = None,
) -> list[QualityReport]:
    """One report per layer: its rules (`rule_files`) and its reconciliation checks over [start, end]."""
    rulesets = rulesets or rule_files(cfg, layers, None)
    checked = tables(layers)
    for table in checked:  # the SQL, patterns and values of every rule, before any data is read
        engine.check_sql(spark, rulesets[table.name], table_schema(table))
    dates = [start.isoformat(), end.isoformat()]
    reports = []
    for table in checked:
        ruleset = rulesets[table.name]
        df = _read(spark, cfg, table, start, end)
        if df is None:
            missing = RuleResult.build(
                name="exists",
                type="exists",
                action="fail",
                level="table",
                checked=0,
                failed=1,
                detail=f"no {table.name} data in the lake",
            )
            reports.append(
                QualityReport.build(
                    table=table.name,
                    stage=STAGE,
                    run_id=run_id,
                    rules_file=ruleset.source,
                    dates=dates,
                    rows=0,
                    rows_passing=0,
                    results=[missing],
                )  # fmt: skip
            )
            continue
        lookups = {
            name: spark.read.parquet(catalog.CATALOG.get(name).path(cfg)) for name in ruleset.lookups()
        }
        if table.layer == "gold":  # per feature date, as the Gold job checks before it writes
            active = _active(spark, cfg, table, start, end)
            report = engine.evaluate(
                df, ruleset, lookups, run_id=run_id, stage=STAGE, dates=dates, by=catalog.FEATURE_DATE,
                active=active,
            )  # fmt: skip
        else:
            report = engine.evaluate(df, ruleset, lookups, run_id=run_id, stage=STAGE, dates=dates)
        report.results += _checks(spark, cfg, table, df, start, end)
        reports.append(report)
    return reports


def _active(
    spark: SparkSession, cfg: Config, table: catalog.Dataset, start: dt.date, end: dt.date
) -> dict[dt.date, int] | None:
    """The active entities per feature date from Silver (its window back from ``start``); None when the
    lake has no Silver (the coverage rule then gives no result)."""
    fam = family(table.name.removeprefix("gold."))
    first = start - dt.timedelta(days=fam.window_days - 1)
    silver = _read(spark, cfg, catalog.SILVER, first, end)
    if silver is None:
        return None
    calendar = spark.createDataFrame([(d,) for d in date_range(start, end)], f"{catalog.FEATURE_DATE} date")
    return active_counts(silver, calendar, fam)


def _checks(
    spark: SparkSession, cfg: Config, table: catalog.Dataset, df: DataFrame, start: dt.date, end: dt.date
) -> list[RuleResult]:
    out = []
    if table is catalog.SILVER:
        bronze = _read(spark, cfg, catalog.BRONZE, start, end)
        dlq = _read(spark, cfg, catalog.SILVER_DLQ, start, end)
        if bronze is not None:
            events = bronze.select("event_id").distinct().count()
            landed = df.count() + (dlq.count() if dlq is not None else 0)
            out.append(
                RuleResult.build(
                    name="reconciled_with_bronze",
                    type="reconciliation",
                    action="fail",
                    level="table",
                    checked=events,
                    failed=abs(events - landed),
                    description="Bronze's distinct events = Silver's rows + Silver's DLQ rows",
                    detail=f"{events:,} distinct Bronze events, {landed:,} in Silver and its DLQ",
                )
            )
        runs = [
            r
            for r in Ledger(cfg.lake.root).records("silver")
            if r.outcome == "succeeded" and "dlq" in r.counts
        ]
        bad = [
            r.run_id
            for r in runs
            if r.counts.get("input", 0) != sum(r.counts.get(k, 0) for k in ("output", "dlq", "dropped"))
        ]
        out.append(
            RuleResult.build(
                name="ledger_balanced",
                type="reconciliation",
                action="fail",
                level="table",
                checked=len(runs),
                failed=len(bad),
                description="Every Silver run: input = output + dlq + dropped",
                detail=f"{len(runs)} runs" + (f"; unbalanced: {', '.join(bad[:5])}" if bad else ""),
            )
        )
    if table.name == USER_TABLE:
        silver = _read(spark, cfg, catalog.SILVER, start, end)
        if silver is not None:
            date = catalog.FEATURE_DATE
            active = silver.select("user_id", F.col(catalog.EVENT_DATE).alias(date)).distinct()
            served = df.where("events_1d > 0").select("user_id", date)
            missing, extra = active.exceptAll(served).count(), served.exceptAll(active).count()
            out.append(
                RuleResult.build(
                    name="covers_active_users",
                    type="reconciliation",
                    action="fail",
                    level="table",
                    checked=active.count(),
                    failed=missing + extra,
                    description="A Gold row for every user-day active in Silver, and none for others",
                    detail=f"{missing:,} active user-days without a Gold row, {extra:,} Gold rows without activity",
                )
            )
    return out
