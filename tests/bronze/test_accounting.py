"""Per-batch accounting from Spark's progress reports (no Spark needed: the reports are JSON)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medallion.bronze.accounting import BatchLedger, BatchMetrics, IngestResult, skipped_ranges
from medallion.core import catalog
from medallion.core.ledger import Ledger
from medallion.engines.kafka.source import SkippedRange, record_skipped


def _report(batch: int, start: dict[str, Any] | None, end: dict[str, Any], rows: int) -> dict[str, Any]:
    return {
        "batchId": batch,
        "numInputRows": rows,
        "sources": [
            {"startOffset": json.dumps(start), "endOffset": json.dumps(end), "latestOffset": json.dumps(end)}
        ],
    }


def test_a_range_the_source_skipped_lands_in_the_ledger_record_of_the_batch_that_skipped_it(
    make_config: Any, lake: Path
) -> None:
    cfg = make_config(**{"kafka.topic": "t"})
    folder = catalog.INGEST_DATA_LOSS.path(cfg)
    record_skipped(folder, SkippedRange("t", 0, 100, 150, "deleted by retention"))
    ledger = Ledger(str(lake))
    batches = BatchLedger(ledger, cfg, "r1", IngestResult("r1"), None)
    batches.__dict__["checkpoint_id"] = "ck"  # no Spark checkpoint in this test
    for batch_id in (4, 5):
        batches.written(
            BatchMetrics(
                batch_id,
                bronze=49,
                dlq=0,
                duplicates=1,
                dlq_by_reason={},
                pii_scrubbed={},
                seconds=1.0,
                started_at=f"2026-11-20T00:0{batch_id}:00.000+00:00",
            )
        )
    batches.drain(
        [
            _report(4, {"t": {"0": 50, "1": 50}}, {"t": {"0": 100, "1": 100}}, 50),  # before the loss
            _report(5, {"t": {"0": 100, "1": 100}}, {"t": {"0": 200, "1": 200}}, 50),
        ]
    )
    records = {r.run_id: r for r in ledger.records("ingest")}
    assert "skipped_offsets" not in records["r1-b4"].metrics
    (skipped,) = records["r1-b5"].metrics["skipped_offsets"]
    assert (skipped["partition"], skipped["from_offset"], skipped["until_offset"]) == (0, 100, 150)
    assert records["r1-b5"].outcome == "succeeded"  # input 50 = 49 + 0 + 1: the skipped 50 are no input


def test_no_folder_no_ranges(tmp_path: Path) -> None:
    assert skipped_ranges(str(tmp_path / "none"), _report(0, None, {"t": {"0": 5}}, 5)) == []
