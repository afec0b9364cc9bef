"""`silver --incremental` plans from the batches the ingest FINISHED, never from Bronze's folders.

An ingest batch's dynamic overwrite renames its partitions one after another; a plan that listed folders
between two renames marked the batch seen with only some of its dates, and the rest were never rebuilt.
"""

from __future__ import annotations

import datetime as dt
import shutil
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

from medallion.bronze import job as bronze_job
from medallion.bronze.accounting import BRONZE_DATES, batch_key
from medallion.bronze.ownership import checkpoint_id
from medallion.core import catalog
from medallion.core.ledger import Ledger
from medallion.operations import pipeline
from medallion.produce.producer import produce_events
from medallion.silver.plan import plan
from tests.e2e.checks import parquet

KEY = b"silver-incremental-test-key-01"
PER_BATCH = 21  # 20 events of today and one late event, one batch each (one partition, this cap)


def _late_stream(cfg: Any, batches: int) -> dt.date:
    """``batches`` batches' worth of records in a one-partition topic: batch i holds 20 events of today and
    one event of i days ago, a date no other batch touches. The first call writes lookups for every date."""
    today = dt.datetime.now(dt.UTC).date()
    first = today - dt.timedelta(days=batches)
    produce_events(cfg, count=PER_BATCH, seed=1, start_date=first, days=1)
    for i in range(1, batches):
        produce_events(cfg, count=PER_BATCH - 1, seed=10 + i, start_date=today, days=1, write_lookups=False)
        late = today - dt.timedelta(days=i)
        produce_events(cfg, count=1, seed=100 + i, start_date=late, days=1, write_lookups=False)
    return first


def _config(make_config: Any, broker: Any, topic: str) -> Any:
    return make_config(
        **{
            "kafka.bootstrap_servers": broker.bootstrap,
            "kafka.topic": topic,
            "kafka.partitions": 1,
            "ingest.max_offsets_per_trigger": PER_BATCH,
        }
    )


def _assert_silver_has_every_bronze_event(cfg: Any) -> None:
    bronze = parquet(catalog.BRONZE.path(cfg)).to_pandas()
    silver = parquet(catalog.SILVER.path(cfg)).to_pandas()
    dlq_path = Path(catalog.SILVER_DLQ.path(cfg))
    rejected = set(parquet(str(dlq_path)).to_pandas()["key"]) if dlq_path.exists() else set()
    missing = set(bronze["event_id"]) - set(silver["event_id"]) - rejected
    assert not missing, bronze[bronze["event_id"].isin(missing)][["event_id", catalog.DT, catalog.BATCH]]
    assert set(silver[catalog.EVENT_DATE].astype(str)) == set(bronze[catalog.DT].astype(str))


@pytest.mark.integration
def test_silver_racing_the_ingest_rebuilds_every_date_of_every_batch(
    spark: Any, kafka_broker: Any, make_config: Any
) -> None:
    cfg = _config(make_config, kafka_broker, "silver_race")
    ledger = Ledger(cfg.lake.root)
    batches = 5
    first = _late_stream(cfg, batches)
    failures: list[str] = []

    def ingest() -> None:
        try:
            bronze_job.run(spark, cfg, pii_key=KEY, run_id="race", ledger=ledger, once=True)
        except BaseException:  # reported by the test below, whole
            failures.append(traceback.format_exc())

    thread = threading.Thread(target=ingest)
    thread.start()
    during = 0
    while thread.is_alive():
        if pipeline.silver(cfg, incremental=True).dates:
            during += 1
        time.sleep(0.2)
    thread.join()
    assert not failures, failures[0]
    pipeline.silver(cfg, incremental=True)  # what the last batches wrote after the last run's plan
    todo = plan(cfg, ledger)
    assert todo.dates == [] and todo.finished >= batches - 1
    _assert_silver_has_every_bronze_event(cfg)
    assert during >= 1  # Silver did run while the ingest wrote

    # The next batch is being written: one of its two dates is renamed into place, the other not yet, and
    # the checkpoint has not committed it. Listing folders would see the batch and mark it done.
    done, new = todo.finished, todo.finished + 1
    bronze = Path(catalog.BRONZE.path(cfg))
    source = next(bronze.glob(f"{catalog.DT}=*/{catalog.HR}=*/{catalog.BATCH}=1"))
    old, older = first - dt.timedelta(days=3), first - dt.timedelta(days=4)
    shutil.copytree(source, bronze / f"{catalog.DT}={old}" / f"{catalog.HR}=5" / f"{catalog.BATCH}={new}")
    assert plan(cfg, ledger).dates == []
    assert pipeline.silver(cfg, incremental=True).dates == []
    assert ledger.last("silver").metrics["max_bronze_batch"] == done  # type: ignore[union-attr]

    # The batch finishes: its second date lands, its record says what it wrote, the checkpoint commits it.
    shutil.copytree(source, bronze / f"{catalog.DT}={older}" / f"{catalog.HR}=5" / f"{catalog.BATCH}={new}")
    key = batch_key(cfg.kafka.topic, checkpoint_id(cfg), 1)
    record = ledger.keyed("ingest", key)
    assert record is not None and record.metrics[BRONZE_DATES]
    record.metrics[BRONZE_DATES] = [older.isoformat(), old.isoformat()]
    record.run_id = record.run_id.replace("-b1", f"-b{new}")
    ledger.write(record, key=batch_key(cfg.kafka.topic, checkpoint_id(cfg), new))
    commits = Path(catalog.INGEST_CHECKPOINT.path(cfg)) / "commits"
    shutil.copy(commits / str(done), commits / str(new))
    assert plan(cfg, ledger).dates == [older, old]
