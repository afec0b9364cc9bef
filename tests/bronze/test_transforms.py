from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from pyspark.sql import functions as F

from medallion.bronze.transforms import (
    BronzeRules,
    as_rejected,
    normalize_and_scrub,
    parse_events,
    rejected_events,
    valid_events,
    with_validation,
)
from medallion.contract import BAD_RECORD_HEADER
from medallion.produce.generator import generate
from medallion.produce.lookups import build_world

# The Bronze rule (prefix) each producer bad-record class must be rejected for.
EXPECTED_RULE = {
    "not_json": r"payload:(malformed_json|not_object)",
    "truncated_json": r"payload:malformed_json",
    "non_utf8": r"payload:not_utf8",
    "empty_value": r"payload:empty",
    "missing_required_field": r"required:",
    "wrong_type": r"type:",
    "unknown_event_type": r"enum:event_type",
    "future_timestamp": r"range:event_time_future",
    "before_2000": r"range:event_time_too_old",
    "negative_price_or_quantity": r"range:(price|quantity)",
    "oversized_payload": r"payload:oversized",
    "unknown_currency": r"enum:currency",
    "not_object": r"payload:not_object",
}
KEY = b"unit-test-key-0123456789"


@pytest.fixture(scope="module")
def raw(spark: Any) -> Any:
    now = dt.datetime.now(dt.timezone.utc)
    records, _ = generate(
        build_world(3, users=40), count=1300, seed=3, bad_ratio=0.3, start=now - dt.timedelta(days=2), end=now
    )
    rows = []
    for offset, (key, value, headers) in enumerate(records):
        tag = dict(headers or {}).get(BAD_RECORD_HEADER)
        payload = value if isinstance(value, bytes) else value.encode()
        rows.append((key, payload, "t", 0, offset, now.replace(tzinfo=None), tag.decode() if tag else None))
    schema = (
        "key binary, value binary, topic string, partition int, offset long, timestamp timestamp, bad string"
    )
    return spark.createDataFrame(rows, schema)


@pytest.fixture(scope="module")
def checked(raw: Any) -> Any:
    parsed = raw.transform(parse_events).transform(with_validation(BronzeRules()))
    # keep the producer's tag beside the verdict, joined back on the offset
    return parsed.join(raw.select(F.col("offset").alias("_offset"), "bad"), "_offset").cache()


def test_every_bad_class_is_rejected_for_its_reason_and_every_valid_event_passes(checked: Any) -> None:
    rows = checked.select("bad", "failed_rules", "error_class").collect()
    seen = set()
    for row in rows:
        if row.bad is None:
            assert row.failed_rules == [], row
            continue
        seen.add(row.bad)
        assert row.failed_rules, f"{row.bad} passed validation"
        assert any(re.match(EXPECTED_RULE[row.bad], r) for r in row.failed_rules), (row.bad, row.failed_rules)
        assert row.error_class == row.failed_rules[0].split(":")[0]
    assert seen == set(EXPECTED_RULE), f"classes not generated: {set(EXPECTED_RULE) - seen}"


def test_validation_preserves_rows_and_splits_them_exactly(raw: Any, checked: Any) -> None:
    assert valid_events(checked).count() + rejected_events(checked).count() == raw.count()


def _all_text(df: Any) -> list[str]:
    return [str(v) for row in df.collect() for v in row.asDict(recursive=True).values()]


def test_no_clear_pii_in_bronze_or_dlq(checked: Any, raw: Any) -> None:
    originals = (
        raw.where("bad IS NULL")
        .select(
            F.from_json(
                F.col("value").cast("string"),
                "user struct<email:string,phone:string,name:string>, context struct<ip:string>",
            ).alias("j")
        )
        .select("j.*")
        .collect()
    )
    emails = {r.user.email for r in originals if r.user and r.user.email}
    phones = {r.user.phone for r in originals if r.user and r.user.phone}
    ips = {r.context.ip for r in originals if r.context and r.context.ip}
    names = {r.user.name for r in originals if r.user and r.user.name}
    assert emails and phones and ips and names
    bronze_text = " ".join(_all_text(valid_events(checked).transform(normalize_and_scrub(KEY))))
    dlq_text = " ".join(_all_text(rejected_events(checked).transform(as_rejected)))
    for text in (bronze_text, dlq_text):
        leaked = [v for v in emails | phones | ips | names if v in text]
        assert not leaked, leaked[:5]
    assert not re.search(r"[\w.+-]+@[\w-]+", bronze_text + dlq_text)
