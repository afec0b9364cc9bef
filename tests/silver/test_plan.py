"""`silver --incremental`'s plan on a lake's files directly (no Spark): committed batches only, their
recorded dates, the folder listing where a record has none, and a new checkpoint starting over."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from medallion.bronze.accounting import BRONZE_DATES, batch_key
from medallion.core import catalog
from medallion.core.ledger import Ledger, RunRecord
from medallion.silver.plan import CHECKPOINT, MARK, plan

TOPIC, CKPT = "user_events", "c0ffee00"
D = [date(2026, 11, day) for day in range(1, 6)]


def _batch(
    cfg: Any, ledger: Ledger, batch: int, days: list[date], *, committed: bool, recorded: bool = True
) -> None:
    """A batch as the ingest leaves it: its Bronze folders, its ledger record, its checkpoint commit."""
    for day in days:
        Path(catalog.BRONZE.path(cfg), f"dt={day}", "hr=3", f"batch={batch}").mkdir(
            parents=True, exist_ok=True
        )
    record = RunRecord(
        "ingest", f"r-b{batch}", datetime(2026, 11, 5, 1, batch, tzinfo=UTC).isoformat(), outcome="succeeded"
    )
    if recorded:
        record.metrics[BRONZE_DATES] = [d.isoformat() for d in days]
    ledger.write(record, key=batch_key(TOPIC, CKPT, batch))
    if committed:
        commits = Path(catalog.INGEST_CHECKPOINT.path(cfg), "commits")
        commits.mkdir(parents=True, exist_ok=True)
        (commits / str(batch)).write_text('v1\n{"nextBatchWatermarkMs":0}')


def _silver_run(ledger: Ledger, mark: int, checkpoint: str = CKPT) -> None:
    ledger.write(
        RunRecord(
            "silver",
            f"s{mark}",
            datetime.now(UTC).isoformat(timespec="milliseconds"),
            metrics={MARK: mark, CHECKPOINT: checkpoint},
            outcome="succeeded",
        )
    )


def test_the_plan_counts_committed_batches_and_their_recorded_dates(make_config: Any) -> None:
    cfg = make_config(**{"kafka.topic": TOPIC})
    ledger = Ledger(cfg.lake.root)
    owner = Path(catalog.BRONZE_OWNER.path(cfg))
    owner.parent.mkdir(parents=True)
    owner.write_text(json.dumps({"topic": TOPIC, "checkpoint": CKPT}))
    _batch(cfg, ledger, 0, [D[0], D[1]], committed=True)
    _batch(cfg, ledger, 1, [D[1]], committed=True)
    _batch(cfg, ledger, 2, [D[2]], committed=False)  # renamed halfway, not committed: not yet
    todo = plan(cfg, ledger)
    assert (todo.dates, todo.finished, todo.seen, todo.checkpoint) == ([D[0], D[1]], 1, -1, CKPT)

    _silver_run(ledger, 1)
    assert plan(cfg, ledger).dates == []
    _batch(cfg, ledger, 2, [D[2], D[3]], committed=True)
    assert plan(cfg, ledger).dates == [D[2], D[3]]

    # A batch recorded without its dates (a lake from before them): Bronze's folders, committed batches only.
    _batch(cfg, ledger, 3, [D[4]], committed=True, recorded=False)
    _batch(cfg, ledger, 4, [D[0]], committed=False)
    todo = plan(cfg, ledger)
    assert (todo.dates, todo.finished) == ([D[2], D[3], D[4]], 3)

    # Bronze started again under a new checkpoint: its batch ids start at 0 again, so does the plan.
    _silver_run(ledger, 3, checkpoint="0dd0dd00")
    assert plan(cfg, ledger).seen == -1
