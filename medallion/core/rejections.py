"""What the DLQs took, each rejected record counted once, from the run ledger (no Spark).

Summing every run's DLQ count counts a record as often as its date was rebuilt: `silver --incremental`
every hour rebuilds the whole current date, so 24 runs a day report the day's rejects about 24 times
over (0.1 % real became 1.2 % in the alert). Here a Silver date is counted from the LATEST run that
rebuilt it (its record's ``by_date`` counts), which is what Silver and its DLQ hold for that date now;
an ingest batch has one record however often it was replayed (the ledger keeps one per key), so each
counts once as it is. A failed run wrote nothing and counts nothing. The alerts, `status` and the
report's DLQ chart all count through `counted_once`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medallion.core.ledger import RunRecord

BY_DATE = "by_date"
"""The metric of a Silver run's record holding each rebuilt date's counts (input, output, dlq, dropped)."""
SILVER_REASON = "silver_rule"  # a Silver DLQ record's error class (the rules it failed are in the record)


@dataclass
class Rejections:
    """One unit counted once: an ingest batch, or one Silver date as its latest run left it."""

    day: str  # the UTC day of the run that counted it
    input: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def rejected(self) -> int:
        return sum(self.by_reason.values())


def counted_once(records: Iterable[RunRecord]) -> list[Rejections]:
    """Every unit of ``records`` (one stage's runs) once, a date rebuilt again taken from its newest run."""
    latest: dict[str, tuple[str, Rejections]] = {}  # unit -> (its run's start, counts)
    for record in records:
        if record.outcome in ("failed", "running"):
            continue
        day = record.started_at[:10]
        dates = record.metrics.get(BY_DATE)
        if isinstance(dates, dict) and dates:
            for date, c in dates.items():
                unit = Rejections(day, int(c.get("input", 0)))
                if c.get("dlq"):
                    unit.by_reason = {SILVER_REASON: int(c["dlq"])}
                _keep(latest, f"date:{date}", record.started_at, unit)
            continue
        unit = Rejections(day, int(record.counts.get("input", 0)))
        reasons = record.metrics.get("dlq_by_reason") or {}
        if not reasons and record.counts.get("dlq"):
            reasons = {"unknown": int(record.counts["dlq"])}
        unit.by_reason = {str(k): int(v) for k, v in reasons.items()}
        # A record without per-date counts (ingest's, or Silver's from before them): one unit per run,
        # except that a later run of exactly the same Silver dates replaces it.
        dates_text = record.inputs.get("dates") if record.stage == "silver" else None
        _keep(
            latest, f"dates:{dates_text}" if dates_text else f"run:{record.run_id}", record.started_at, unit
        )
    return [unit for _, unit in latest.values()]


def _keep(latest: dict[str, tuple[str, Rejections]], key: str, started: str, unit: Rejections) -> None:
    if key not in latest or latest[key][0] <= started:
        latest[key] = (started, unit)
