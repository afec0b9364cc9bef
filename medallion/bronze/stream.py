"""The ingest's streaming plan up to ``foreachBatch``: read the topic with Bronze's decoder, stamp the batch time.

Two sources, one plan (``ingest.source``):

- ``python`` (default): the Kafka source (`medallion.engines.kafka.source`) runs `BronzeDecoder` in its reader,
  so each record is parsed, checked against the contract and scrubbed where it is already in Python;
  what reaches Spark is one decoded row per record (`DECODED_SCHEMA`).
- ``native``: Spark's own ``kafka`` format (its jars on ``spark.jars``, `IngestConfig.native_jars`) reads
  the records in the JVM; the same decoder then runs over them with ``mapInArrow``, each batch shaped
  first exactly as the Python source yields it.

Either way `bronze.dedup` drops duplicates inside ``foreachBatch`` and `bronze.writes` does the
exactly-once writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession

from medallion.bronze.dedup import BATCH_TIME, batch_time
from medallion.bronze.records import BronzeDecoder, rules_for
from medallion.core.catalog import INGEST_DATA_LOSS
from medallion.core.config import Config
from medallion.core.errors import ConfigError
from medallion.engines.kafka.source import ARROW_SCHEMA as KAFKA_ARROW_SCHEMA
from medallion.engines.kafka.source import register

BRONZE_SOURCE = "medallion_bronze"
NATIVE_FORMAT = "kafka"

# The columns of Spark's kafka format that the decoder's input (`medallion.engines.kafka.source.SCHEMA`) shares.
_NATIVE_COLUMNS = ("key", "value", "topic", "partition", "offset", "timestamp", "timestampType")


def source_options(cfg: Config) -> dict[str, str]:
    """The Kafka source's options for the configured topic (the PII key is never among them)."""
    options = {
        "kafka.bootstrap.servers": cfg.kafka.bootstrap_servers,
        "subscribe": cfg.kafka.topic,
        "startingOffsets": cfg.ingest.starting_offsets,
        "failOnDataLoss": str(cfg.ingest.fail_on_data_loss).lower(),
        "groupIdForLag": f"medallion-bronze-{cfg.kafka.topic}",
        "dataLossLog": INGEST_DATA_LOSS.path(cfg),
    }
    if cfg.ingest.max_offsets_per_trigger:
        options["maxOffsetsPerTrigger"] = str(cfg.ingest.max_offsets_per_trigger)
    options |= {f"kafka.{k}": v for k, v in cfg.kafka.client.items()}
    return options


def native_options(cfg: Config) -> dict[str, str]:
    """Spark's kafka format's options for the same topic and limits.

    Spark's consumer is the Java client, whose default is ``read_uncommitted``: aborted transactions
    would reach Bronze, so ``read_committed`` is set (as librdkafka's default is for the Python source).
    ``kafka.client`` settings pass through as ``kafka.*``: the names of connection and security settings
    are mostly shared by both clients, but check any that are not (``ssl.ca.location`` is librdkafka's).
    It commits no consumer group, so lag tools see no progress; ``status`` reads the checkpoint.
    """
    options = {k: v for k, v in source_options(cfg).items() if k != "groupIdForLag"}
    options.setdefault("kafka.isolation.level", "read_committed")
    options["includeHeaders"] = "false"
    return options


def checked_stream(
    spark: SparkSession, cfg: Config, pii_key: bytes, erased: frozenset[str] = frozenset()
) -> DataFrame:
    """The streaming plan up to foreachBatch: read and decode (parse, validate, scrub, drop the records
    of ``erased`` people), and the micro-batch's time (`bronze.dedup.batch_time`), which the dedup
    needs and only the streaming plan knows."""
    return decoded_stream(spark, cfg, pii_key, erased).withColumn(BATCH_TIME, batch_time())


def decoded_stream(
    spark: SparkSession, cfg: Config, pii_key: bytes, erased: frozenset[str] = frozenset()
) -> DataFrame:
    """The configured source with Bronze's decoder: one decoded row per Kafka record (`DECODED_SCHEMA`)."""
    decoder = BronzeDecoder(pii_key, rules_for(cfg), erased)
    if cfg.ingest.source == "native":
        return native_stream(spark, cfg, decoder)
    register(spark, BRONZE_SOURCE, decoder)
    return spark.readStream.format(BRONZE_SOURCE).options(**source_options(cfg)).load()


def native_stream(spark: SparkSession, cfg: Config, decoder: BronzeDecoder) -> DataFrame:
    """Spark's kafka format, decoded by ``decoder`` over Arrow (`decode_native`)."""
    try:
        raw = spark.readStream.format(NATIVE_FORMAT).options(**native_options(cfg)).load()
    except Exception as exc:  # pyspark raises AnalysisException, wrapped differently across versions
        if "kafka" in str(exc).lower() and (
            "find data source" in str(exc).lower() or "DATA_SOURCE_NOT_FOUND" in str(exc)
        ):
            raise ConfigError(
                "ingest.source is native, but Spark's kafka source is not on this session's classpath. "
                "Set ingest.native_jars (MEDALLION__INGEST__NATIVE_JARS) to the jars of "
                "spark-sql-kafka-0-10_2.13, spark-token-provider-kafka-0-10_2.13, kafka-clients and "
                "commons-pool2 for this Spark version (`bash tests/jvm/resolve.sh` resolves them with "
                "Maven), or use ingest.source: python, which needs no jars."
            ) from exc
        raise
    return raw.select(*_NATIVE_COLUMNS).mapInArrow(decode_native(decoder), decoder.schema)


def decode_native(decoder: BronzeDecoder) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The ``mapInArrow`` function: each batch of Spark's kafka rows, shaped as the Python source's
    (`medallion.engines.kafka.source.ARROW_SCHEMA`: same names and types, headers null), then decoded."""
    schema = KAFKA_ARROW_SCHEMA

    def decode(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            columns = [
                batch.column(field.name).cast(field.type)
                if field.name in _NATIVE_COLUMNS
                else pa.nulls(batch.num_rows, field.type)
                for field in schema
            ]
            yield decoder(pa.RecordBatch.from_arrays(columns, schema=schema))

    return decode
