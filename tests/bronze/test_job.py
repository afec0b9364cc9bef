"""Kafka → Bronze with the real embedded broker and Spark: accounting, dedup, DLQ, restart."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from medallion.bronze import job
from medallion.core import catalog
from medallion.core.ledger import Ledger
from medallion.produce.producer import produce_events
from tests.e2e.checks import parquet, topic_records

KEY = b"bronze-job-test-key-0123"


@pytest.mark.integration
def test_every_record_is_accounted_for_and_duplicates_are_dropped(
    spark: Any, kafka_broker: Any, make_config: Any
) -> None:
    cfg = make_config(
        **{
            "kafka.bootstrap_servers": kafka_broker.bootstrap,
            "kafka.topic": "bronze_job_events",
            "kafka.partitions": 3,
            "ingest.max_offsets_per_trigger": 1200,
        }
    )
    today = dt.datetime.now(dt.UTC).date()
    events = {
        "count": 4000,
        "seed": 5,
        "start_date": today - dt.timedelta(days=2),
        "days": 3,
        "bad_ratio": 0.05,
        "duplicate_ratio": 0.03,
        "late_ratio": 0.02,
    }
    produced = produce_events(cfg, **events)
    ledger = Ledger(cfg.lake.root)
    result = job.run(spark, cfg, pii_key=KEY, run_id="r1", ledger=ledger, once=True)

    assert len(result.batches) >= 3  # the cap made several micro-batches
    for batch in result.batches:
        assert batch.reconciled, batch
    records = topic_records(cfg.kafka.bootstrap_servers, cfg.kafka.topic)
    assert result.total("input") == len(records) == produced.delivered
    assert result.total("duplicates") == produced.duplicates > 0
    assert result.total("dlq") == sum(produced.by_bad_class.values())

    bronze = parquet(catalog.BRONZE.path(cfg)).to_pandas()
    assert bronze["event_id"].is_unique
    assert len(bronze) == result.total("bronze")
    assert bronze["user"].map(lambda u: len(u["email_hmac"] or "") in (0, 64)).all()

    runs = [r for r in ledger.records("ingest") if r.run_id.startswith("r1-")]
    assert len(runs) == len(result.batches)
    assert all(r.counts["input"] == r.counts["output"] + r.counts["dlq"] + r.counts["dropped"] for r in runs)

    # The ids each batch saw first are held in one file per batch under the checkpoint, none in Spark's
    # state store: together they are every valid event id, once.
    held = [np.load(f) for f in sorted(Path(catalog.INGEST_DEDUP.path(cfg)).glob("b*.npy"))]
    assert len(held) == len(result.batches)
    assert sum(h.shape[1] for h in held) == len(bronze)
    assert not (Path(job.checkpoint_path(cfg)) / "state").exists()

    # A restart from the checkpoint finds nothing new and writes nothing.
    again = job.run(spark, cfg, pii_key=KEY, run_id="r2", ledger=ledger, once=True)
    assert again.total("input") == 0
    assert len(parquet(catalog.BRONZE.path(cfg)).to_pandas()) == len(bronze)

    # The same events sent again, to a new run's index read back from its files: all duplicates.
    produce_events(cfg, **events)
    resent = job.run(spark, cfg, pii_key=KEY, run_id="r3", ledger=ledger, once=True)
    assert resent.total("input") == produced.delivered
    assert resent.total("bronze") == 0
    assert resent.total("duplicates") == result.total("bronze") + result.total("duplicates")
    assert all(b.reconciled for b in resent.batches)


@pytest.mark.integration
def test_a_second_checkpoint_cannot_overwrite_bronze(spark: Any, kafka_broker: Any, make_config: Any) -> None:
    from medallion.core.errors import ConfigError

    first = make_config(
        **{"kafka.bootstrap_servers": kafka_broker.bootstrap, "kafka.topic": "bronze_owner_a"}
    )
    produced = produce_events(first, count=200, seed=7, start_date="2026-01-05", days=1)
    ledger = Ledger(first.lake.root)
    assert job.run(spark, first, pii_key=KEY, run_id="a", ledger=ledger).total("input") == produced.delivered
    before = parquet(catalog.BRONZE.path(first)).num_rows

    # Same lake, another topic: its checkpoint would number batches from 0 again, over topic a's.
    second = make_config(
        **{"kafka.bootstrap_servers": kafka_broker.bootstrap, "kafka.topic": "bronze_owner_b"}
    )
    produce_events(second, count=200, seed=8, start_date="2026-01-05", days=1)
    with pytest.raises(ConfigError, match="would overwrite"):
        job.run(spark, second, pii_key=KEY, run_id="b", ledger=ledger)
    assert parquet(catalog.BRONZE.path(first)).num_rows == before

    # The owner itself goes on as before.
    more = produce_events(first, count=50, seed=9, start_date="2026-01-05", days=1)
    assert job.run(spark, first, pii_key=KEY, run_id="a2", ledger=ledger).total("input") == more.delivered


@pytest.mark.integration
def test_a_checkpoint_begun_with_spark_s_dedup_state_goes_on_from_its_offsets(
    spark: Any, kafka_broker: Any, make_config: Any
) -> None:
    """A checkpoint written by the earlier plan (`dropDuplicatesWithinWatermark`, its ids in Spark's state
    store) restarts under the dedup index: the ids move into the index, Spark's state is deleted (Spark
    refuses a checkpoint whose state belongs to an operator the plan lost), and the stream goes on from the
    committed offsets: nothing read twice, and a copy of an event the old plan saw is still a duplicate."""
    from pyspark.sql import functions as F

    from medallion.bronze.stream import decoded_stream

    cfg = make_config(
        **{"kafka.bootstrap_servers": kafka_broker.bootstrap, "kafka.topic": "bronze_state_upgrade"}
    )
    first = produce_events(cfg, count=300, seed=11, start_date="2026-01-05", days=1, bad_ratio=0.05)
    old_plan = (
        decoded_stream(spark, cfg, KEY)
        .withColumn("_seen_at", F.current_timestamp())
        .withWatermark("_seen_at", cfg.ingest.dedup_watermark)
        .dropDuplicatesWithinWatermark(["_dedup_key"])
    )
    query = (
        old_plan.writeStream.foreachBatch(lambda batch, _: batch.count())
        .option("checkpointLocation", job.checkpoint_path(cfg))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    assert list((Path(job.checkpoint_path(cfg)) / "state").rglob("*.changelog"))

    more = produce_events(cfg, count=200, seed=12, start_date="2026-01-05", days=1, bad_ratio=0.05)
    again = produce_events(cfg, count=300, seed=11, start_date="2026-01-05", days=1, bad_ratio=0.05)
    ledger = Ledger(cfg.lake.root)
    result = job.run(spark, cfg, pii_key=KEY, run_id="u2", ledger=ledger)
    assert result.total("input") == more.delivered + again.delivered
    assert again.delivered == first.delivered and again.by_event_type == first.by_event_type
    assert all(b.reconciled for b in result.batches)
    assert not (Path(job.checkpoint_path(cfg)) / "state").exists()
    assert parquet(catalog.BRONZE.path(cfg)).num_rows == result.total("bronze")
    # Only the new events land; the old plan's events sent again (same seed) are duplicates of those it saw.
    assert result.total("bronze") == sum(more.by_event_type.values()) > 0
    assert result.total("dlq") == sum(more.by_bad_class.values()) + sum(again.by_bad_class.values())
    assert result.total("duplicates") == more.duplicates + again.delivered - sum(again.by_bad_class.values())


@pytest.mark.integration
def test_a_micro_batch_lost_to_the_machine_is_replayed_once_by_a_restarted_query(
    spark: Any, kafka_broker: Any, make_topic: Any, make_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load, Spark can fail a batch for the machine's sake (a Python worker that did not connect back
    within Spark's fixed 10 s). The ingest restarts the query from its checkpoint: the batch is written
    once, nothing is lost, and the run goes on. A failure of any other kind still stops it (exit 1)."""
    from medallion.core.errors import TerminalError

    topic = make_topic(partitions=1)
    cfg = make_config(
        **{
            "kafka.bootstrap_servers": kafka_broker.bootstrap,
            "kafka.topic": topic,
            "ingest.max_offsets_per_trigger": 300,
        }
    )
    today = dt.datetime.now(dt.UTC).date()
    produced = produce_events(cfg, count=900, seed=9, start_date=today - dt.timedelta(days=1), days=2)
    write_batch, failed = job.write_batch, []

    def flaky(batch: Any, batch_id: int, **kwargs: Any) -> Any:
        if batch_id == 1 and not failed:
            failed.append(batch_id)
            raise RuntimeError("Python worker failed to connect back.")  # Spark's words for it
        return write_batch(batch, batch_id, **kwargs)

    monkeypatch.setattr(job, "write_batch", flaky)
    ledger = Ledger(cfg.lake.root)
    result = job.run(spark, cfg, pii_key=KEY, run_id="flaky", ledger=ledger, once=True)

    assert failed == [1]
    written = [b for b in result.batches if b.input]
    assert [b.batch_id for b in written] == [0, 1, 2] and all(b.reconciled for b in written)
    assert result.total("input") == produced.delivered
    bronze = parquet(catalog.BRONZE.path(cfg)).to_pandas()
    assert bronze["event_id"].is_unique and len(bronze) == result.total("bronze")

    def broken(batch: Any, batch_id: int, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in a write")

    monkeypatch.setattr(job, "write_batch", broken)
    produce_events(cfg, count=10, seed=10, start_date=today, days=1)
    with pytest.raises(TerminalError, match="a bug in a write"):
        job.run(spark, cfg, pii_key=KEY, run_id="broken", ledger=ledger, once=True)


def test_a_batch_too_big_for_the_driver_fails_saying_what_to_lower(make_config: Any) -> None:
    """Spark's own words when a batch brought to the driver is over ``spark.driver.maxResultSize`` (as
    Spark 4.3 words them) become an error that names the setting to lower; it is not retried."""
    from medallion.core.errors import TerminalError

    cfg = make_config(**{"ingest.max_offsets_per_trigger": 500_000})
    spark_says = RuntimeError(
        "Caused by: org.apache.spark.SparkException: Job aborted due to stage failure: Total size of "
        "serialized results of 1 tasks (6.5 MiB) is bigger than spark.driver.maxResultSize (1024.0 KiB)"
    )
    error = job.query_error(cfg, spark_says)
    assert isinstance(error, TerminalError)
    assert "lower ingest.max_offsets_per_trigger (now 500000)" in str(error)
    assert isinstance(
        job.query_error(cfg, RuntimeError("Python worker failed to connect back")), job.SparkFault
    )
