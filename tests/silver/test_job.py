"""Silver's job on Bronze files written the way Bronze writes them: rules, DLQ, accounting, re-runs, PII."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from medallion.core import catalog, stages
from medallion.core.errors import TerminalError
from medallion.core.lake import spark_schema
from medallion.core.ledger import Ledger
from medallion.operations import pipeline
from medallion.quality import results
from medallion.silver import job
from tests.silver.bronze import DAY, event, write_bronze, write_world
from tests.stage_runs import run_job

OLD = DAY - dt.timedelta(days=4000)  # before every user's signup


def table(path: str) -> Any:
    return ds.dataset(path, format="parquet", partitioning="hive", ignore_prefixes=["_", "."]).to_table()


def snapshot(path: str) -> dict[str, str]:
    """Every file below ``path`` by relative name, with the hash of its bytes."""
    root = Path(path)
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def test_each_default_rule_sends_its_violation_to_the_dlq_by_name(spark: Any, make_config: Any) -> None:
    cfg = make_config()
    write_world(cfg)  # rates in force from DAY
    valid = [
        event("page_view"),
        event("search"),
        event("click", item_id="i_00002"),
        event("purchase", currency="EUR"),
        event("add_to_cart", currency="USD", price=0.0),
    ]
    bad = {
        "ids_present": event("page_view", user_id=None),  # type: ignore[arg-type]
        "event_type_known": event("refund"),
        "currency_known": event("page_view", currency="XXX"),
        "price_not_negative": event("purchase", price=-5.0),
        "quantity_at_least_one": event("purchase", quantity=0),
        "item_in_catalog": event("click", item_id="i_99999"),
        "user_known": event("page_view", user_id="u_999999"),
        "amount_usd_present": event("purchase", day=DAY - dt.timedelta(days=1)),  # no rate in force yet
    }
    old = event("page_view", day=OLD)  # warn only: the user signed up later
    duplicate = dict(valid[0], _offset=10**8, **{catalog.BATCH: 1})  # the same event again, in a later batch
    write_bronze(spark, cfg, [*valid, *bad.values(), old, duplicate])
    ledger = Ledger(cfg.lake.root)
    dates = [OLD, DAY - dt.timedelta(days=1), DAY]
    result = run_job(stages.SILVER, job.run, spark, cfg, dates, run_id="r1", ledger=ledger)

    dlq = table(catalog.SILVER_DLQ.path(cfg)).to_pylist()
    assert {r["key"]: r["failed_rules"] for r in dlq} == {e["event_id"]: [rule] for rule, e in bad.items()}
    for r in dlq:  # Bronze coordinates and the run
        source = next(e for e in bad.values() if e["event_id"] == r["key"])
        assert (r["source_partition"], r["source_offset"]) == (source["_partition"], source["_offset"])
        assert f"{catalog.DT}={source[catalog.DT]}" in r["source_file"] and r["run_id"] == "r1"
        assert r["stage"] == "silver" and r["error_message"] == f"failed rules: {r['failed_rules'][0]}"

    silver = table(catalog.SILVER.path(cfg))
    assert sorted(silver.column("event_id").to_pylist()) == sorted(e["event_id"] for e in [*valid, old])
    # What Silver writes is what the catalogue declares, column for column and type for type.
    written = spark.read.parquet(catalog.SILVER.path(cfg)).schema
    assert [(f.name, f.dataType) for f in written.fields] == [
        (f.name, f.dataType) for f in spark_schema(job.OUTPUT_COLUMNS).fields
    ]

    n = len(valid) + len(bad) + 2
    assert (result.input, result.output, result.dlq, result.dropped) == (n, len(valid) + 1, len(bad), 1)
    record = ledger.last("silver")
    assert record is not None
    c = record.counts
    assert c["input"] == c["output"] + c["dlq"] + c["dropped"] == n

    report = results.latest(cfg, catalog.SILVER.name)
    assert report is not None and report.run_id == "r1"
    failed = {r.name: r.failed for r in report.results}
    assert failed == {**dict.fromkeys(failed, 0), **dict.fromkeys(bad, 1), "signup_before_event": 1}
    assert report.rows == n - 1 and report.score == round((n - 1 - len(bad)) / (n - 1), 6)
    assert record.metrics["quality"]["score"] == report.score


def test_normalized_columns(spark: Any, make_config: Any) -> None:
    from medallion.silver.normalize import country_name, referrer_domain

    df = spark.createDataFrame(
        [("https://www.google.com/search", "DE"), ("https://t.co/", "us"), (None, "ZZ"), ("not a url", None)],
        "referrer string, country string",
    )
    got = df.select(
        referrer_domain(df["referrer"]).alias("d"), country_name(df["country"]).alias("c")
    ).collect()
    assert [tuple(r) for r in got] == [
        ("google.com", "Germany"),
        ("t.co", "United States"),
        (None, None),
        (None, None),
    ]


def test_lookups_are_broadcast_and_a_repeated_key_is_an_error(spark: Any, make_config: Any) -> None:
    import pyarrow.parquet as pq

    cfg = make_config()
    write_world(cfg)
    write_bronze(spark, cfg, [event("purchase")])
    lookups = job.read_lookups(spark, cfg)
    bronze = spark.read.parquet(catalog.BRONZE.path(cfg))
    rows = job.candidates(bronze, lookups, job.silver_rules(cfg), DAY, DAY)
    plan = rows._jdf.queryExecution().executedPlan().toString()
    joins = re.findall(r"(BroadcastHashJoin|SortMergeJoin|ShuffledHashJoin|BroadcastNestedLoopJoin)", plan)
    # items, users, rates, user agents, and the referential rules' two key sets
    assert joins.count("BroadcastHashJoin") == 6 and set(joins) == {"BroadcastHashJoin"}, plan

    users = Path(catalog.USERS.path(cfg))
    first = next(users.glob("*.parquet"))
    data = pq.read_table(first)
    pq.write_table(data.slice(0, 1), users / "again.parquet")  # one user twice
    with pytest.raises(TerminalError, match="lookup.users .* repeats its key \\(user_id\\): u_000001"):
        job.read_lookups(spark, cfg)


def test_reruns_replace_dates_remove_stale_partitions_and_a_fail_writes_nothing(
    spark: Any, make_config: Any
) -> None:
    cfg = make_config()
    write_world(cfg)
    ledger = Ledger(cfg.lake.root)
    first = [event("page_view"), event("click"), event("purchase", item_id="i_99999")]
    write_bronze(spark, cfg, first)
    run_job(stages.SILVER, job.run, spark, cfg, [DAY], run_id="r1", ledger=ledger)
    day_dir = Path(catalog.SILVER.partition_path(cfg, **{catalog.EVENT_DATE: DAY.isoformat()}))
    assert sorted(p.name for p in day_dir.iterdir()) == ["event_type=click", "event_type=page_view"]
    assert table(catalog.SILVER_DLQ.path(cfg)).num_rows == 1

    # Bronze's date now holds a page view only (the same dt/hr/batch partition, rewritten).
    again = [event("page_view")]
    write_bronze(spark, cfg, again)
    run_job(stages.SILVER, job.run, spark, cfg, [DAY], run_id="r2", ledger=ledger)
    assert sorted(p.name for p in day_dir.iterdir()) == ["event_type=page_view"]
    assert table(catalog.SILVER.path(cfg)).column("event_id").to_pylist() == [again[0]["event_id"]]
    assert not Path(catalog.SILVER_DLQ.path(cfg), f"{catalog.EVENT_DATE}={DAY}").exists()  # no rejects now
    per_file = [p for p in day_dir.rglob("*.parquet")]
    assert len(per_file) == 1  # one file per partition, not one per task

    # An email in clear fails the `pii_hashed` rule: the run stops and Silver stays byte for byte.
    before = snapshot(catalog.SILVER.path(cfg))
    write_bronze(spark, cfg, [event("page_view"), event("click", email_hmac="jane@example.com")])
    with pytest.raises(job.QualityFailed, match="pii_hashed \\(1 of 2 rows\\)") as err:
        run_job(stages.SILVER, job.run, spark, cfg, [DAY], run_id="r3", ledger=ledger)
    assert err.value.exit_code == 1
    assert snapshot(catalog.SILVER.path(cfg)) == before
    assert not Path(catalog.SILVER_DLQ.path(cfg)).exists() or not list(
        Path(catalog.SILVER_DLQ.path(cfg)).rglob("*.parquet")
    )
    failed = ledger.last("silver", outcome="failed")
    assert failed is not None and failed.run_id == "r3" and "pii_hashed" in (failed.error or "")
    report = results.latest(cfg, catalog.SILVER.name)
    assert (
        report is not None
        and report.run_id == "r3"
        and [r.name for r in report.failed_fail_rules] == ["pii_hashed"]
    )

    # A date with no Bronze rows any more loses its Silver partition.
    run_job(
        stages.SILVER, job.run, spark, cfg, [DAY + dt.timedelta(days=1)], run_id="r4", ledger=ledger
    )  # nothing there: no-op
    assert day_dir.exists()


def test_an_explicit_range_does_not_mark_other_dates_as_done(spark: Any, make_config: Any) -> None:
    cfg = make_config()
    write_world(cfg)
    later = DAY + dt.timedelta(days=1)
    write_bronze(spark, cfg, [event("page_view", batch=0), event("page_view", day=later, batch=1)])
    done = pipeline.silver(cfg, DAY, DAY)
    assert done.dates == [DAY.isoformat()]
    todo = pipeline.silver(cfg, incremental=True)
    assert later.isoformat() in todo.dates  # the explicit run left the later batch's date to do
    assert pipeline.silver(cfg, incremental=True).dates == []  # and now everything is done


def test_no_pii_in_silver_or_its_dlq(spark: Any, make_config: Any) -> None:
    """Silver adds no personal data to what Bronze kept: no email, phone, full IP or precise coordinate."""
    cfg = make_config()
    write_world(cfg)
    write_bronze(spark, cfg, [event("page_view"), event("purchase"), event("click", item_id="i_99999")])
    run_job(stages.SILVER, job.run, spark, cfg, [DAY], run_id="r1", ledger=Ledger(cfg.lake.root))
    assert_no_pii(cfg)


EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
PHONE = re.compile(r"\+\d[\d ()-]{6,}\d|(?<![\w-])\d{9,15}(?![\w-])")
FULL_IPV4 = re.compile(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b(?!/24)")


VERSION = re.compile(r"[A-Za-z]+/\d{1,3}(?:\.\d{1,3}){3}\b")


def assert_no_pii(cfg: Any) -> None:
    for path in (catalog.SILVER.path(cfg), catalog.SILVER_DLQ.path(cfg)):
        if not Path(path).exists():
            continue
        rows = table(path).to_pylist()
        assert rows
        for row in rows:
            for name, value in row.items():
                if name in ("geo_lat", "geo_lon") and value is not None:
                    assert round(value, 2) == value, (name, value)
                if not isinstance(value, str):
                    continue
                # A product version shaped like an address (Chrome/130.0.0.0) is a version, not an address.
                text = VERSION.sub("", value)
                assert not EMAIL.search(text), (name, value)
                assert not FULL_IPV4.search(text), (name, value)
                if name.endswith("_hmac"):
                    assert re.fullmatch(r"[0-9a-f]{64}", value), (name, value)
                else:
                    assert not PHONE.search(text), (name, value)
            if "payload" in row and row["payload"]:
                import json

                payload = json.loads(row["payload"])
                for key in ("geo_lat", "geo_lon"):
                    assert payload.get(key) is None or round(payload[key], 2) == payload[key]


def test_values_silver_cannot_hold_go_to_its_dlq_and_never_fail_the_date(
    spark: Any, make_config: Any, lake: Path
) -> None:
    """Contract-valid events beyond Silver's columns (catalog.SILVER): a quantity past an int is Silver's
    (quantity is a long there, as in Bronze); a price or an amount past decimal(18,4) goes to Silver's DLQ
    by ``amounts_fit``; `medallion silver` for the date exits 0 and writes everything else."""
    from typer.testing import CliRunner

    from medallion.cli.main import app
    from tests.conftest import CONFIG_DIR

    cfg = make_config()
    write_world(cfg)
    big_quantity = event("purchase", quantity=3_000_000_000, currency="USD", price=2.5)
    big_price = event("purchase", price=1e15)
    big_amount = event("purchase", price=1e12, quantity=10**6)  # each fits; their product does not
    ordinary = event("purchase")
    page_view = event("page_view")
    write_bronze(spark, cfg, [big_quantity, big_price, big_amount, ordinary, page_view])

    env = {"MEDALLION__LAKE__ROOT": str(lake), "MEDALLION__SPARK__MASTER": "local[2]"}
    day = DAY.isoformat()
    out = CliRunner().invoke(
        app, ["--config-dir", str(CONFIG_DIR), "silver", "--start-date", day, "--end-date", day], env=env
    )
    assert out.exit_code == 0, out.output

    silver = {r["event_id"]: r for r in table(catalog.SILVER.path(cfg)).to_pylist()}
    assert set(silver) == {big_quantity["event_id"], ordinary["event_id"], page_view["event_id"]}
    kept = silver[big_quantity["event_id"]]
    assert kept["quantity"] == 3_000_000_000 and str(kept["amount_usd"]) == "7500000000.0000"
    dlq = {r["key"]: r["failed_rules"] for r in table(catalog.SILVER_DLQ.path(cfg)).to_pylist()}
    assert dlq == {
        big_price["event_id"]: ["amounts_fit", "amount_usd_present"],
        big_amount["event_id"]: ["amounts_fit", "amount_usd_present"],
    }
    record = Ledger(cfg.lake.root).last("silver")
    assert (
        record is not None and record.counts["input"] == 5 == record.counts["output"] + record.counts["dlq"]
    )


def test_duplicates_keep_the_first_copy_written_to_kafka(spark: Any, make_config: Any) -> None:
    """Every copy of an event id but the first written to Kafka (topic, partition, offset; then the Bronze
    file and row) is a duplicate, whichever batch or file holds it; each is counted on its date."""
    from medallion.core.rejections import BY_DATE

    cfg = make_config()
    write_world(cfg)
    later = DAY + dt.timedelta(days=1)
    first = event("page_view", partition=0, offset=500)
    lower_partition = dict(first, _partition=1, _offset=7, **{catalog.BATCH: 1})  # lower offset, later
    on_a = event("click", partition=2, offset=40)
    on_b = dict(on_a, _topic="user_events_b", **{catalog.BATCH: 1})  # the same coordinates, topic b
    replayed = event("search", day=later, offset=900)
    again = dict(replayed, **{catalog.BATCH: 2})  # the same Kafka record in a second batch's file
    single = event("page_view", day=later)
    write_bronze(spark, cfg, [first, on_a, replayed, single])
    write_bronze(spark, cfg, [lower_partition, on_b])
    write_bronze(spark, cfg, [again])
    ledger = Ledger(cfg.lake.root)
    result = run_job(stages.SILVER, job.run, spark, cfg, [DAY, later], run_id="d1", ledger=ledger)

    rows = table(catalog.SILVER.path(cfg)).to_pylist()
    kept = sorted((r["event_id"], r["source_topic"], r["source_partition"], r["source_offset"]) for r in rows)
    assert kept == sorted(
        [
            (first["event_id"], "user_events", 0, 500),
            (on_a["event_id"], "user_events", 2, 40),
            (replayed["event_id"], "user_events", 0, 900),
            (single["event_id"], "user_events", 0, single["_offset"]),
        ]
    )
    assert (result.input, result.output, result.dlq, result.dropped) == (7, 4, 0, 3)
    record = ledger.last("silver")
    assert record is not None
    assert record.metrics[BY_DATE] == {
        DAY.isoformat(): {"input": 4, "output": 2, "dlq": 0, "dropped": 2},
        later.isoformat(): {"input": 3, "output": 2, "dlq": 0, "dropped": 1},
    }
