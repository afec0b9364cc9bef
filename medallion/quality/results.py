"""Rule results of a run, stored in the lake as one JSON file per run and table; read without Spark.

``<lake>/_quality/rule_results/<table>/<created>-<run_id>.json`` (the catalogue's ``quality.results``):
names begin with the report's UTC time, so they sort by time and the newest is the last name listed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from medallion.core import catalog, lakefs

if TYPE_CHECKING:
    from medallion.core.config import Config
    from medallion.quality.rules import Rule


@dataclass(kw_only=True)
class RuleResult:
    """One rule's outcome in one run. ``failed`` is every row that failed it; a rule with a
    ``max_failure_rate`` still passes while ``failure_rate`` stays at or below it."""

    name: str
    type: str
    action: str
    level: str  # row | table
    checked: int
    failed: int
    failure_rate: float
    passed: bool
    status: str  # pass | warn | dropped | FAIL
    description: str = ""
    tags: list[str] = field(default_factory=list)
    detail: str = ""
    max_failure_rate: float = 0.0

    @classmethod
    def of(cls, rule: Rule, *, checked: int, failed: int, detail: str = "") -> RuleResult:
        return cls.build(
            name=rule.name,
            type=rule.type,
            action=rule.action,
            level=rule.level,
            checked=checked,
            failed=failed,
            description=rule.description,
            tags=list(rule.tags),
            detail=detail,
            max_failure_rate=rule.max_failure_rate,
        )

    @classmethod
    def build(
        cls,
        *,
        name: str,
        type: str,
        action: str,
        level: str,
        checked: int,
        failed: int,
        description: str = "",
        tags: list[str] | None = None,
        detail: str = "",
        max_failure_rate: float = 0.0,
    ) -> RuleResult:
        rate = round(failed / checked, 6) if checked else (1.0 if failed else 0.0)
        passed = failed == 0 or (max_failure_rate > 0 and rate <= max_failure_rate)
        status = "pass" if passed else {"warn": "warn", "drop": "dropped", "fail": "FAIL"}[action]
        return cls(
            name=name,
            type=type,
            action=action,
            level=level,
            checked=checked,
            failed=failed,
            failure_rate=rate,
            passed=passed,
            status=status,
            description=description,
            tags=tags or [],
            detail=detail,
            max_failure_rate=max_failure_rate,
        )


@dataclass
class QualityReport:
    table: str
    stage: str
    run_id: str
    rules_file: str
    dates: list[str]
    rows: int
    rows_passing: int
    score: float  # share of rows that pass every drop/fail rule (1.0 for no rows)
    pass_rates: dict[str, float]
    results: list[RuleResult]
    created_at: str = ""

    @classmethod
    def build(cls, *, rows: int, rows_passing: int, results: list[RuleResult], **kw: Any) -> QualityReport:
        return cls(
            rows=rows,
            rows_passing=rows_passing,
            score=round(rows_passing / rows, 6) if rows else 1.0,
            pass_rates={r.name: round(1.0 - r.failure_rate, 6) for r in results},
            results=results,
            created_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            **kw,
        )

    @property
    def failed_fail_rules(self) -> list[RuleResult]:
        return [r for r in self.results if r.action == "fail" and not r.passed]

    def summary(self) -> dict[str, Any]:
        """What the ledger keeps: the score and, per rule, the rows failed."""
        return {"score": self.score, "failed": {r.name: r.failed for r in self.results}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QualityReport:
        results = [RuleResult(**r) for r in data.pop("results", [])]
        return cls(results=results, **data)


def summary(reports: list[QualityReport]) -> dict[str, Any]:
    """The ledger's ``quality`` field for several tables, in the shape `QualityReport.summary` gives one:
    the lowest score, and the rows failed per ``<table>:<rule>`` (only the rules that did not pass)."""
    return {
        "score": min((r.score for r in reports), default=1.0),
        "failed": {f"{r.table}:{x.name}": x.failed for r in reports for x in r.results if not x.passed},
    }


def results_dir(cfg: Config, table: str) -> str:
    return lakefs.join(catalog.QUALITY_RESULTS.path(cfg), table)


def write(cfg: Config, report: QualityReport) -> str:
    """Store ``report`` (written whole); its path."""
    stamp = report.created_at.replace("-", "").replace(":", "").replace("+00:00", "Z")
    path = lakefs.join(results_dir(cfg, report.table), f"{stamp}-{report.run_id}.json")
    lakefs.write_text(path, json.dumps(asdict(report), indent=1))
    return path


def latest(cfg: Config, table: str) -> QualityReport | None:
    """The newest stored report of ``table`` (no Spark)."""
    _, names = lakefs.list_children(results_dir(cfg, table))
    names = [n for n in names if n.endswith(".json") and not n.startswith(catalog.HIDDEN_PREFIXES)]
    if not names:
        return None
    return QualityReport.from_dict(
        json.loads(lakefs.read_text(lakefs.join(results_dir(cfg, table), names[-1])))
    )
