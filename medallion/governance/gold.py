"""The three guards as the Gold job runs them: schema before anything is written, quality before each
table is written, the registry's new version and drift after.

`FeatureGuard.start` (before Silver is read) compares every table the run will write with the registry
and raises `SchemaBreak` for a breaking change unless allowed: nothing is written. For each family,
`before_write` holds the built DataFrame to the registry's schema (a builder that disagrees with its
declaration fails the run) and runs the feature-quality checks; a failed ``fail`` check raises
`FeatureQualityFailed` and that table is not written (tables of the run written before it stay, each
having passed its own checks). `after_write` records the family's new schema version, if any, and computes
the drift of the dates it wrote. The ledger's ``quality``, ``schema_versions`` and ``drift_alerts`` metrics
are kept up to date as it goes, so a failed run's record says why.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from loguru import logger
from pyspark.sql import DataFrame

from medallion import catalog
from medallion.config import Config
from medallion.errors import TerminalError
from medallion.features import FeatureFamily
from medallion.governance import drift, quality, registry
from medallion.lake import read_dates, spark_type
from medallion.quality import results
from medallion.quality.results import QualityReport

STAGE = "gold"


class FeatureQualityFailed(TerminalError):
    """A Gold table failed one of its ``fail`` feature-quality checks: it was not written."""


@dataclass
class FeatureGuard:
    cfg: Config
    run_id: str
    metrics: dict[str, Any]  # the ledger record's metrics, updated in place
    pending: dict[str, registry.Pending] = field(default_factory=dict)
    reports: list[QualityReport] = field(default_factory=list)

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
    ) -> QualityReport:
        """Check ``features`` (persisted by the caller) against the registry and the thresholds."""
        self._same_schema(fam, features)
        thresholds = quality.load_thresholds(fam, self.cfg.quality.rules_dir)
        counts = (
            {r[catalog.FEATURE_DATE]: int(r["active"]) for r in active.collect()}
            if active is not None
            else None
        )
        report = quality.check(
            features, thresholds, run_id=self.run_id, stage=STAGE, dates=dates, active=counts
        )
        results.write(self.cfg, report)
        self.reports.append(report)
        self.metrics["quality"] = quality.summary(self.reports)
        for r in report.results:
            if not r.passed and r.action == "warn":
                logger.warning("gold {t}: {n} {d}", t=report.table, n=r.name, d=r.detail)
        if report.failed_fail_rules:
            failed = ", ".join(f"{r.name} ({r.detail})" for r in report.failed_fail_rules[:10])
            more = len(report.failed_fail_rules) - 10
            raise FeatureQualityFailed(
                f"Gold did not write {report.table}: feature check(s) {failed}"
                + (f" and {more} more" if more > 0 else "")
                + f" failed ({thresholds.source}). Its data is as it was; fix the builder or the input, or change "
                "the threshold (copy the file to quality.rules_dir)."
            )
        return report

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

    def after_write(self, spark: Any, fam: FeatureFamily, written: list[dt.date]) -> list[drift.TableDrift]:
        """Record ``fam``'s new schema version; compute and store the drift of the ``written`` dates."""
        stored = registry.record(self.cfg, self.pending[fam.name]) if fam.name in self.pending else None
        if stored is not None:
            self.metrics.setdefault("schema_versions", {})[fam.name] = {
                "version": stored.version,
                "breaking": stored.breaking,
                "change": registry.Change.from_dict(stored.change).text(),
            }
        settings = self.cfg.drift
        if not settings.enabled or not written:
            return []
        from medallion.governance import drift_spark

        table = catalog.gold_table(fam.name)
        needed = drift_spark.dates_read(settings, written)
        rows = read_dates(
            spark, table.path(self.cfg), catalog.FEATURE_DATE, needed[0], needed[-1], table.name
        )
        out = drift_spark.compute(spark, rows, fam, written, settings, run_id=self.run_id)
        for result in out:
            drift.write(self.cfg, result)
        alerts = [f"{r.table}:{f.feature}@{r.feature_date}" for r in out for f in r.alerts]
        if alerts:
            self.metrics.setdefault("drift_alerts", []).extend(alerts)
            logger.warning("gold {t}: drift above threshold: {a}", t=table.name, a=", ".join(alerts[:10]))
        return out
