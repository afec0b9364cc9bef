"""A late event, ingested for real, reaches Silver under its event date; nothing else changes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from medallion.bronze import job as bronze_job
from medallion.core import catalog
from medallion.core.ledger import Ledger
from medallion.operations import pipeline
from medallion.produce.producer import produce_events
from tests.e2e.checks import parquet
from tests.silver.test_job import assert_no_pii, snapshot

KEY = b"silver-late-test-key-0123"


@pytest.mark.integration
def test_a_late_event_lands_under_its_date_after_the_next_incremental(
    spark: Any, kafka_broker: Any, make_config: Any
) -> None:
    cfg = make_config(**{"kafka.bootstrap_servers": kafka_broker.bootstrap, "kafka.topic": "silver_late"})
    first = dt.date.today() - dt.timedelta(days=3)
    late_day, today = first, first + dt.timedelta(days=1)
    ledger = Ledger(cfg.lake.root)

    produce_events(cfg, count=300, seed=3, start_date=first, days=2)
    bronze_job.run(spark, cfg, pii_key=KEY, run_id="i1", ledger=ledger, once=True)
    built = pipeline.silver(cfg, incremental=True)
    assert built.dates == [late_day.isoformat(), today.isoformat()]
    assert_no_pii(cfg)
    before = parquet(catalog.SILVER.path(cfg)).to_pandas()
    other_day = catalog.SILVER.partition_path(cfg, **{catalog.EVENT_DATE: today.isoformat()})
    untouched = snapshot(other_day)

    # A day later, events of the first day arrive (the rates of the first day still hold for them).
    late = produce_events(cfg, count=20, seed=4, start_date=late_day, days=1, write_lookups=False)
    bronze_job.run(spark, cfg, pii_key=KEY, run_id="i2", ledger=ledger, once=True)
    again = pipeline.silver(cfg, incremental=True)

    assert again.dates == [late_day.isoformat()]
    after = parquet(catalog.SILVER.path(cfg)).to_pandas()
    new = set(after["event_id"]) - set(before["event_id"])
    assert len(new) == late.delivered - again.dlq - again.dropped > 0
    assert set(after[after["event_id"].isin(new)][catalog.EVENT_DATE].astype(str)) == {late_day.isoformat()}
    assert snapshot(other_day) == untouched  # the other date was not rewritten
    c = ledger.last("silver").counts  # type: ignore[union-attr]
    assert c["input"] == c["output"] + c["dlq"] + c["dropped"]
