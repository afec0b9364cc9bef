"""The three guards as the Gold job runs them: schema before anything is written, quality before each
table is written, the registry's new version and drift after.

`FeatureGuard.start` (before Silver is read) compares every table the run will write with the registry
and raises `SchemaBreak` for a breaking change unless allowed: nothing is written. For each family,
`before_write` holds the built DataFrame to the registry's schema (a builder that disagrees with its
declaration fails the run) and runs the table's quality rules (derived from the feature declarations,
`medallion.quality.feature_rules`, on the one rule engine, per feature date); a failed ``fail`` rule raises
`FeatureQualityFailed` and that table is not written (tables of the run written before it stay, each
having passed its own checks). `after_write` records the family's new schema version, if any, and computes
the drift of the dates it wrote. The ledger's ``quality``, ``schema_versions`` and ``drift_alerts`` metrics
are kept up to date as it goes, so a failed run's record says why.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from loguru import logger
from pyspark.sql import DataFrame

from medallion.core import catalog, lakefs, stages
from medallion.core.config import Config
from medallion.core.errors import TerminalError
from medallion.core.lake import read_dates, spark_type
from medallion.core.ledger import timed
from medallion.features import FeatureFamily
from medallion.governance import drift, drift_spark, registry
from medallion.quality import engine, results
from medallion.quality.results import QualityReport
from medallion.quality.rules import rules_for
from medallion.quality.validate import table_schema

STAGE = stages.GOLD.name
GOVERNANCE_SECONDS = "governance_seconds"  # the ledger metric: seconds of each guard


class FeatureQualityFailed(TerminalError):
    """A Gold table failed one of its ``fail`` feature-quality checks: it was not written."""


@dataclass
class FeatureGuard:
    cfg: Config
    run_id: str
    metrics: dict[str, Any]  # the ledger record's metrics, updated in place
    pending: dict[str, registry.Pending] = field(default_factory=dict)
    reports: list[QualityReport] = field(default_factory=list)
    # the newest event time Silver is known to hold (or now): feature dates ending later are incomplete
    complete_through: dt.datetime | None = None

    def _timed(self, piece: str) -> AbstractContextManager[None]:
        return timed(self.metrics, GOVERNANCE_SECONDS, piece)

    @classmethod
    def start(
        cls,
        cfg: Config,
        families: Sequence[FeatureFamily],
        *,
        run_id: str,
        metrics: dict[str, Any],
        allow_breaking: bool = False,
    ) -> FeatureGuard:
        with timed(metrics, GOVERNANCE_SECONDS, "registry"):
            planned = registry.plan(
                cfg, [registry.declared(f) for f in families], allow_breaking=allow_breaking, run_id=run_id
            )
        guard = cls(cfg, run_id, metrics, {p.family: p for p in planned})
        breaking = [p.family for p in planned if p.change.breaking]
        if breaking:
            logger.warning(
                "gold: recording breaking schema versions (--allow-breaking) for {f}", f=", ".join(breaking)
            )
        return guard

    def before_write(
        self, fam: FeatureFamily, features: DataFrame, dates: list[dt.date], active: DataFrame | None
    ) -> dict[dt.date, int]:
        """Check ``features`` (persisted by the caller) against the registry and the table's rules, in one
        aggregation per feature date; the rows per feature date, which that aggregation also counts."""
        with self._timed("schema"):
            self._same_schema(fam, features)
        table = catalog.gold_table(fam.name)
        with self._timed("active_entities"):
            counts = (
                {r[catalog.FEATURE_DATE]: int(r["active"]) for r in active.collect()}
                if active is not None
                else None
            )
        with self._timed("quality"):
            ruleset = rules_for(table, self.cfg.quality.rules_dir)
            engine.check_sql(features.sparkSession, ruleset, table_schema(table))
            annotated = features.transform(engine.annotate(ruleset, {}))
            rows = engine.aggregate(annotated, ruleset, catalog.FEATURE_DATE)
            report = engine.from_aggregates(
                ruleset, rows, run_id=self.run_id, stage=STAGE, dates=[d.isoformat() for d in dates],
                by=catalog.FEATURE_DATE, active=counts,
            )  # fmt: skip
            results.write(self.cfg, report)
        self.reports.append(report)
        self.metrics["quality"] = results.summary(self.reports)
        for r in report.results:
            if not r.passed and r.action == "warn":
                logger.warning("gold {t}: {n} {d}", t=report.table, n=r.name, d=r.detail)
        if report.failed_fail_rules:
            failed = ", ".join(
                f"{r.name} ({r.detail or f'{r.failed:,} of {r.checked:,} rows'})"
                for r in report.failed_fail_rules[:10]
            )
            more = len(report.failed_fail_rules) - 10
            raise FeatureQualityFailed(
                f"Gold did not write {report.table}: feature check(s) {failed}"
                + (f" and {more} more" if more > 0 else "")
                + f" failed ({ruleset.source}). Its data is as it was; fix the builder or the input, or override "
                f"the rule in {table.name}.yaml in quality.rules_dir (see medallion/quality/feature_rules.py)."
            )
        return {r[catalog.FEATURE_DATE]: int(r[engine.ROWS]) for r in rows if r[engine.ROWS]}

    def _drift(
        self, fam: FeatureFamily, features: DataFrame, counts: Mapping[dt.date, int]
    ) -> list[drift.TableDrift]:
        """Profile the dates written (``counts``: their rows) from their cached rows and store the
        profiles; judge each against its reference's stored profiles (one missing is computed from the
        table once, and stored)."""
        table = catalog.gold_table(fam.name)
        settings = self.cfg.drift
        path = table.path(self.cfg)
        written = sorted(counts)
        profiled = drift_spark.profiles(features, fam, written, run_id=self.run_id, counts=counts)
        for profile in profiled.values():
            drift.write_profile(self.cfg, profile)
        available = {dt.date.fromisoformat(d) for d in lakefs.list_partitions(path, catalog.FEATURE_DATE)}
        judged, not_judged = drift_spark.judgeable(settings, written, self.complete_through, available)
        missing = []
        for day in sorted({r for refs in judged.values() for r in refs} - set(written)):
            stored = drift.read_profile(self.cfg, table.name, day.isoformat())
            if stored is None:
                missing.append(day)
            else:
                profiled[day] = stored
        if missing:  # written before profiles were kept, or with drift off: read once, pruned to those dates
            rows = read_dates(
                features.sparkSession, path, catalog.FEATURE_DATE, missing[0], missing[-1], table.name
            )
            for day, profile in drift_spark.profiles(rows, fam, missing, run_id=self.run_id).items():
                drift.write_profile(self.cfg, profile)
                profiled[day] = profile
        return drift_spark.judge(fam, settings, profiled, judged, not_judged, self.run_id)

    def _same_schema(self, fam: FeatureFamily, features: DataFrame) -> None:
        expected = registry.declared(fam)
        built = {f.name: f.dataType.simpleString() for f in features.schema.fields}
        declared = {s.name: spark_type(s.spark_type).simpleString() for s in expected.features}
        problems = [
            f"{name} is {built.get(name, 'missing')}, declared {kind}"
            for name, kind in declared.items()
            if built.get(name) != kind
        ]
        extra = sorted(
            set(built) - {c.name for c in catalog.gold_table(fam.name).columns} - {catalog.FEATURE_DATE}
        )
        if problems or extra:
            raise registry.SchemaBreak(
                f"Gold did not write gold.{fam.name}: its builder's columns disagree with the declaration "
                f"({'; '.join(problems + [f'{e} is not declared' for e in extra])}). Make the builder end with "
                "as_declared(family), or change the declaration in medallion/features/."
            )

    def after_write(
        self, fam: FeatureFamily, features: DataFrame, written: Mapping[dt.date, int]
    ) -> list[drift.TableDrift]:
        """Record ``fam``'s new schema version; compute and store the drift of the dates written
        (``written``: their rows; ``features``: the rows just written, still persisted; reference dates
        outside them are read)."""
        with self._timed("registry"):
            stored = registry.record(self.cfg, self.pending[fam.name]) if fam.name in self.pending else None
        if stored is not None:
            self.metrics.setdefault("schema_versions", {})[fam.name] = {
                "version": stored.version,
                "breaking": stored.breaking,
                "change": registry.Change.from_dict(stored.change).text(),
            }
        if not self.cfg.drift.enabled or not written:
            # profiles of these dates would now be stale: a later reference recomputes them from the table
            drift.forget_profiles(
                self.cfg, catalog.gold_table(fam.name).name, [d.isoformat() for d in written]
            )
            return []
        table = catalog.gold_table(fam.name)
        with self._timed("drift"):
            out = self._drift(fam, features, written)
        for result in out:
            drift.write(self.cfg, result)
        alerts = [f"{r.table}:{f.feature}@{r.feature_date}" for r in out for f in r.alerts]
        if alerts:
            self.metrics.setdefault("drift_alerts", []).extend(alerts)
            logger.warning("gold {t}: drift above threshold: {a}", t=table.name, a=", ".join(alerts[:10]))
        return out
