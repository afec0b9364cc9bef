"""`medallion ingest` (continuous) stopped by SIGTERM, as the README says ("SIGTERM stops after the batch").

The ingest runs as its own process on the embedded broker, writing small micro-batches back to back. Its
process group (the Python driver and Spark's JVM, as a supervisor stopping a service or
`kill -TERM -PGID` signals it) gets SIGTERM while a batch is in flight, and must then exit 0 (success,
per the README's exit codes) with its whole process tree, the batch it was writing committed (or, if
Spark had only planned it, left to be replayed; nothing of a later batch written, no unfinished write)
and a ledger record of each committed batch that succeeded. More events arrive; `ingest --once` then
resumes the checkpoint, and every record of the topic is in Bronze or its DLQ exactly once
(`test_crash.assert_exactly_once`).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import psutil
import pytest

from medallion.cli.main import run_app
from medallion.core import catalog
from tests.bronze.test_crash import PII_KEY, Ingest, Lake, assert_exactly_once, kill_tree, wait_until
from tests.conftest import config_dir_of
from tests.e2e.checks import parquet, topic_records

EVENTS = 1500
MAX_OFFSETS = 150  # about ten batches, so that the signal lands in one


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_sigterm_stops_after_the_batch_in_flight_and_a_restart_lands_every_event_once(
    kafka_broker: Any, make_topic: Any, make_config: Any, lake: Path, tmp_path: Path, spark: Any
) -> None:
    from medallion.bronze.job import checkpoint_path
    from medallion.core.ledger import Ledger
    from medallion.produce.producer import produce_events

    topic = make_topic(2)
    cfg = make_config(
        **{
            "kafka.bootstrap_servers": kafka_broker.bootstrap,
            "kafka.topic": topic,
            "kafka.partitions": 2,
            "kafka.embedded": False,
        }
    )

    def produce(seed: int) -> None:
        done = produce_events(
            cfg, count=EVENTS, seed=seed, start_date="2026-01-05", days=1, bad_ratio=0.02, write_lookups=False
        )
        assert done.delivered == EVENTS

    produce(1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDALLION")} | {
        "MEDALLION__LAKE__ROOT": str(lake),
        "MEDALLION__KAFKA__BOOTSTRAP_SERVERS": kafka_broker.bootstrap,
        "MEDALLION__KAFKA__TOPIC": topic,
        "MEDALLION__KAFKA__EMBEDDED": "false",
        "MEDALLION__INGEST__MAX_OFFSETS_PER_TRIGGER": str(MAX_OFFSETS),
        "MEDALLION__INGEST__TRIGGER_INTERVAL": "0 seconds",
        "MEDALLION__SPARK__MASTER": "local[2]",
        "MEDALLION__SPARK__SHUFFLE_PARTITIONS": "2",
        "MEDALLION_PII_KEY": PII_KEY,
    }
    out = Lake(Path(catalog.BRONZE.path(cfg)), Path(catalog.BRONZE_DLQ.path(cfg)), Path(checkpoint_path(cfg)))
    ingest = Ingest(env, tmp_path)
    proc = ingest.start(once=False)
    try:
        tree = [psutil.Process(proc.pid)]
        # A batch in flight after one committed: the second one's offsets planned, its commit not written.
        in_flight = lambda: len(out.batch_ids("offsets")) > len(out.batch_ids("commits")) >= 1  # noqa: E731
        assert wait_until(in_flight, proc), f"ingest ended before its second batch:\n{ingest.log_tail()}"
        tree += psutil.Process(proc.pid).children(recursive=True)
        signalled_at = out.batch_ids("offsets")[-1]
        os.killpg(proc.pid, signal.SIGTERM)  # the whole group, JVM included, as a supervisor stops it
        rc = proc.wait(120)
    finally:
        if proc.poll() is None:
            kill_tree(proc)
    log = ingest.log_tail(200)
    assert rc == 0, f"ingest exited {rc} after SIGTERM:\n{log}"
    assert "stopping after the current micro-batch" in (tmp_path / "ingest-1.log").read_text(), log
    _, alive = psutil.wait_procs(tree, timeout=30)
    assert not alive, f"processes of the ingest outlived it: {alive}"

    # The batch in flight at the signal is committed, or (when Spark had only planned it) left for the
    # next run to replay; no batch after it was written.
    planned, committed = out.batch_ids("offsets"), out.batch_ids("commits")
    replayed = sorted(set(planned) - set(committed))
    assert replayed in ([], [committed[-1] + 1]), f"planned, not committed: {replayed}"
    assert signalled_at in committed or replayed == [signalled_at], (signalled_at, committed, replayed)
    assert set(parquet(str(out.bronze)).column("batch").to_pylist()) <= set(committed)
    assert not out.staging(out.bronze) | out.staging(out.dlq), "the stop left an unfinished write"
    records = [r for r in Ledger(str(lake)).records("ingest") if r.inputs.get("topic") == topic]
    assert sorted(r.inputs["batch_id"] for r in records) == committed
    assert {r.outcome for r in records} == {"succeeded"}, [(r.inputs["batch_id"], r.outcome) for r in records]
    stopped_with = sum(r.counts["input"] for r in records)
    assert 0 < stopped_with < EVENTS, "the signal did not land mid-topic"

    produce(2)  # what arrives while it is stopped
    folder = config_dir_of(cfg, tmp_path / "config")
    assert run_app(["--config-dir", str(folder), "ingest", "--once"]) == 0
    everything = {(topic, p, o): v for (p, o), v in topic_records(kafka_broker.bootstrap, topic).items()}
    assert len(everything) == 2 * EVENTS
    counts = assert_exactly_once(spark, out, everything, f"SIGTERM after {stopped_with} records")
    assert counts["bronze"] + counts["dlq"] + counts["dropped"] == 2 * EVENTS
    assert counts["bronze"] > 0 and counts["dlq"] > 0
