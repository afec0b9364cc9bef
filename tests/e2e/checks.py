"""What a correct pipeline run means, checked the same way for the embedded and the docker settings."""

from __future__ import annotations

from typing import Any

import pyarrow.dataset as ds
from confluent_kafka import Consumer, TopicPartition

from medallion.core import catalog, lakefs
from medallion.core.config import Config
from medallion.engines.kafka.admin import end_offsets
from medallion.features.user import USER_FEATURES


def topic_records(bootstrap: str, topic: str) -> dict[tuple[int, int], bytes]:
    """Every record in the topic, by (partition, offset), read with a plain assigned consumer."""
    ends = end_offsets(bootstrap, topic)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "e2e-check",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in ends])
    out: dict[tuple[int, int], bytes] = {}
    done = {p for p, end in ends.items() if end == 0}
    while len(done) < len(ends):
        msg = consumer.poll(10)
        assert msg is not None, f"topic {topic} stalled before its end {ends}"
        if msg.error():
            done.add(msg.partition())
            continue
        out[(msg.partition(), msg.offset())] = msg.value()
    consumer.close()
    return out


def parquet(path: str) -> Any:
    return ds.dataset(path, format="parquet", partitioning="hive", ignore_prefixes=["_", "."]).to_table()


def assert_pipeline_correct(cfg: Config, online: dict[str, dict[str, Any]] | None = None) -> dict[str, int]:
    """Every record is in Bronze or its DLQ exactly once; Silver has Bronze's events; Gold covers the users;
    the online store (when given) serves each sampled user's latest Gold row."""
    records = topic_records(cfg.kafka.bootstrap_servers, cfg.kafka.topic)
    bronze = parquet(catalog.BRONZE.path(cfg)).to_pandas()
    dlq_path = catalog.BRONZE_DLQ.path(cfg)
    dlq = parquet(dlq_path).to_pandas() if lakefs.exists(dlq_path) else None

    landed = list(zip(bronze["_partition"], bronze["_offset"], strict=True))
    if dlq is not None:
        landed += list(zip(dlq["source_partition"], dlq["source_offset"], strict=True))
    assert len(landed) == len(set(landed)), "a Kafka record landed twice"
    assert set(landed) == set(records), (
        f"{len(set(records) - set(landed))} records missing, {len(set(landed) - set(records))} unexpected"
    )

    silver = parquet(catalog.SILVER.path(cfg)).to_pandas()
    assert silver["event_id"].is_unique
    silver_dlq_path = catalog.SILVER_DLQ.path(cfg)
    rejected = (
        set(parquet(silver_dlq_path).column("key").to_pylist()) if lakefs.exists(silver_dlq_path) else set()
    )
    assert not rejected & set(silver["event_id"]), "an event both in Silver and in Silver's DLQ"
    assert set(silver["event_id"]) | rejected == set(bronze["event_id"])

    gold = parquet(catalog.gold_table(USER_FEATURES.name).path(cfg)).to_pandas()
    assert set(gold["user_id"]) == set(silver["user_id"])
    if online:
        latest = gold.sort_values("event_timestamp").groupby("user_id").tail(1).set_index("user_id")
        for user, values in online.items():
            expected = latest.loc[user]
            for feature in USER_FEATURES.feature_names:
                assert same_value(values[feature], expected[feature]), (
                    user,
                    feature,
                    values[feature],
                    expected[feature],
                )
    return {
        "records": len(records),
        "bronze": len(bronze),
        "dlq": 0 if dlq is None else len(dlq),
        "silver": len(silver),
        "gold": len(gold),
    }


def same_value(served: Any, stored: Any) -> bool:
    """Equal, with a null feature (None online, NaN or None in pandas) equal only to another null."""
    if served is None or stored is None or _is_nan(served) or _is_nan(stored):
        return (served is None or _is_nan(served)) and (stored is None or _is_nan(stored))
    return bool(served == stored)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value
