"""The ingest's streaming plan up to ``foreachBatch``: read the topic with Bronze's decoder, drop duplicates.

The Kafka source (`medallion.kafka.source`) runs `BronzeDecoder` in its reader, so each record is
parsed, checked against the contract and scrubbed where it is already in Python; what reaches Spark is
one decoded row per record (`DECODED_SCHEMA`). The duplicates' state lives in the checkpoint.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from medallion.bronze.records import BronzeDecoder, BronzeRules
from medallion.bronze.transforms import drop_duplicate_events
from medallion.config import Config
from medallion.kafka.source import register

BRONZE_SOURCE = "medallion_bronze"


def source_options(cfg: Config) -> dict[str, str]:
    """The Kafka source's options for the configured topic (the PII key is never among them)."""
    options = {
        "kafka.bootstrap.servers": cfg.kafka.bootstrap_servers,
        "subscribe": cfg.kafka.topic,
        "startingOffsets": cfg.ingest.starting_offsets,
        "failOnDataLoss": str(cfg.ingest.fail_on_data_loss).lower(),
        "groupIdForLag": f"medallion-bronze-{cfg.kafka.topic}",
    }
    if cfg.ingest.max_offsets_per_trigger:
        options["maxOffsetsPerTrigger"] = str(cfg.ingest.max_offsets_per_trigger)
    options |= {f"kafka.{k}": v for k, v in cfg.kafka.client.items()}
    return options


def checked_stream(spark: SparkSession, cfg: Config, pii_key: bytes) -> DataFrame:
    """The streaming plan up to foreachBatch: read and decode (parse, validate, scrub), drop duplicates."""
    register(spark, BRONZE_SOURCE, BronzeDecoder(pii_key, BronzeRules()))
    return (
        spark.readStream.format(BRONZE_SOURCE)
        .options(**source_options(cfg))
        .load()
        .transform(drop_duplicate_events(cfg.ingest.dedup_watermark))
    )
