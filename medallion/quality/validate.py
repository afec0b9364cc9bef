"""`medallion validate`: a layer's declared rules over what the lake holds for a date range, after the fact,
plus the reconciliation checks between layers, reported as rules of the same shape.

The rules are the ones the pipeline runs (Silver's file, or ``--rules``), evaluated by the same engine:
every row rule in one aggregation, the table rules in another. The reconciliation checks:

- ``reconciled_with_bronze`` (silver): Bronze's distinct events of the dates = Silver's rows + Silver's
  DLQ rows of the dates (no event lost, none counted twice);
- ``ledger_balanced`` (silver): every successful Silver run has ``input = output + dlq + dropped``;
- ``covers_active_users`` (gold): a Gold row for every user-day active in Silver, and none for others.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion import catalog, lakefs
from medallion.config import Config
from medallion.ledger import Ledger
from medallion.quality import engine
from medallion.quality.results import QualityReport, RuleResult
from medallion.quality.rules import RuleSet, rules_for

LAYERS = ("bronze", "silver", "gold")
STAGE = "validate"


def layer_table(layer: str) -> catalog.Dataset:
    if layer == "gold":
        return catalog.gold_table(catalog.FAMILIES[0].name)
    return catalog.BRONZE if layer == "bronze" else catalog.SILVER


def table_schema(table: catalog.Dataset) -> Any:
    from medallion.lake import spark_schema

    parts = ", ".join(f"{p} {'date' if p == table.date_column else 'string'}" for p in table.partitions)
    return spark_schema(table.columns + (catalog.columns(parts) if parts else ()))


def rule_files(cfg: Config, layers: list[str], rules_path: str | None) -> dict[str, RuleSet]:
    """Every layer's rules from YAML, checked against the tables' columns (no Spark)."""
    return {
        layer: rules_for(layer_table(layer), cfg.quality.rules_dir, rules_path if layer == "silver" else None)
        for layer in layers
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
    for layer in layers:  # the SQL of every rule, before any data is read
        engine.check_sql(spark, rulesets[layer], table_schema(layer_table(layer)))
    dates = [start.isoformat(), end.isoformat()]
    reports = []
    for layer in layers:
        table, ruleset = layer_table(layer), rulesets[layer]
        df = _read(spark, cfg, table, start, end)
        if df is None:
            missing = RuleResult.build(
                "exists", "exists", "fail", "table", 0, 1, detail=f"no {layer} data in the lake"
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
        report = engine.evaluate(df, ruleset, lookups, run_id=run_id, stage=STAGE, dates=dates)
        report.results += _checks(spark, cfg, layer, df, start, end)
        reports.append(report)
    if "gold" in layers:  # each family's feature checks, as the Gold job runs them before it writes
        from medallion.governance.quality import validate_gold

        reports += validate_gold(spark, cfg, start, end, run_id=run_id)
    return reports


def _checks(
    spark: SparkSession, cfg: Config, layer: str, df: DataFrame, start: dt.date, end: dt.date
) -> list[RuleResult]:
    out = []
    if layer == "silver":
        bronze = _read(spark, cfg, catalog.BRONZE, start, end)
        dlq = _read(spark, cfg, catalog.SILVER_DLQ, start, end)
        if bronze is not None:
            events = bronze.select("event_id").distinct().count()
            landed = df.count() + (dlq.count() if dlq is not None else 0)
            out.append(
                RuleResult.build(
                    "reconciled_with_bronze",
                    "reconciliation",
                    "fail",
                    "table",
                    events,
                    abs(events - landed),
                    "Bronze's distinct events = Silver's rows + Silver's DLQ rows",
                    detail=f"{events:,} distinct Bronze events, {landed:,} in Silver and its DLQ",
                )  # fmt: skip
            )
        runs = [
            r for r in Ledger(cfg.lake.root).records(layer) if r.outcome == "succeeded" and "dlq" in r.counts
        ]
        bad = [
            r.run_id
            for r in runs
            if r.counts.get("input", 0) != sum(r.counts.get(k, 0) for k in ("output", "dlq", "dropped"))
        ]
        out.append(
            RuleResult.build(
                "ledger_balanced",
                "reconciliation",
                "fail",
                "table",
                len(runs),
                len(bad),
                "Every Silver run: input = output + dlq + dropped",
                detail=f"{len(runs)} runs" + (f"; unbalanced: {', '.join(bad[:5])}" if bad else ""),
            )  # fmt: skip
        )
    if layer == "gold":
        silver = _read(spark, cfg, catalog.SILVER, start, end)
        if silver is not None:
            date = catalog.FEATURE_DATE
            active = silver.select("user_id", F.col(catalog.EVENT_DATE).alias(date)).distinct()
            served = df.where("events_1d > 0").select("user_id", date)
            missing, extra = active.exceptAll(served).count(), served.exceptAll(active).count()
            out.append(
                RuleResult.build(
                    "covers_active_users",
                    "reconciliation",
                    "fail",
                    "table",
                    active.count(),
                    missing + extra,
                    "A Gold row for every user-day active in Silver, and none for others",
                    detail=f"{missing:,} active user-days without a Gold row, {extra:,} Gold rows without activity",
                )  # fmt: skip
            )
    return out
