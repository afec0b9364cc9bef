"""Silver transforms: Bronze events → one flat, typed, deduplicated, enriched row per event."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from medallion.core.catalog import EVENT_DATE, SILVER
from medallion.core.lake import require_columns

BRONZE_FILE = "_bronze_file"  # the Bronze file a row came from (for the DLQ), not a Silver column
BRONZE_ROW = "_bronze_row"  # the row's index in that file: with the file, one Bronze row
DUPLICATE = "_duplicate"
FIRST_COPY = "_first_copy"  # `repeated_ids`: where the first copy of a repeated event id is
COPY = ("source_topic", "source_partition", "source_offset", BRONZE_FILE, BRONZE_ROW)
"""A copy's place, in the order that says which copy is first: Kafka's coordinates, then the Bronze file
and row (the same Kafka record written twice is still one copy only)."""

_TYPES = {c.name: c.type for c in SILVER.columns}


def fitted(value: Column, column: str) -> Column:
    """``value`` as Silver's declared type of ``column`` (`catalog.SILVER`), null where that type cannot
    hold it. The catalogue's type is the one declaration of what Silver holds: a plain cast of a value
    beyond it fails the whole date under ANSI (or wraps silently without), so Silver stores null and its
    ``amounts_fit`` rule sends the event to the DLQ."""
    return value.try_cast(_TYPES[column])


BRONZE_COLUMNS = ("event_id", "event_type", "event_time", "user_id", "session_id", "device", "geo", "context")


def flatten_event(df: DataFrame) -> DataFrame:
    """Nested Bronze structs → flat, snake_case columns with their final types, plus ``event_date``."""
    require_columns(df, BRONZE_COLUMNS, "silver")
    return df.select(
        "event_id",
        "event_type",
        F.col("event_time").cast("timestamp").alias("event_time"),
        F.to_date("event_time").alias(EVENT_DATE),
        "user_id",
        "session_id",
        "item_id",
        F.col("device.os").alias("device_os"),
        F.col("device.browser").alias("device_browser"),
        F.col("device.type").alias("device_type"),
        F.col("geo.country").alias("geo_country"),
        F.col("geo.city").alias("geo_city"),
        F.col("geo.lat").alias("geo_lat"),
        F.col("geo.lon").alias("geo_lon"),
        F.col("context.ip_prefix").alias("ip_prefix"),
        F.col("context.user_agent").alias("user_agent"),
        F.col("context.referrer").alias("referrer"),
        F.col("context.page").alias("page"),
        F.col("user.email_hmac").alias("email_hmac"),
        F.col("user.phone_hmac").alias("phone_hmac"),
        fitted(F.col("price"), "price").alias("price"),
        fitted(F.col("quantity"), "quantity").alias("quantity"),
        "currency",
        F.col("_topic").alias("source_topic"),
        F.col("_partition").alias("source_partition"),
        F.col("_offset").alias("source_offset"),
        F.col("_ingested_at").alias("ingested_at"),
        F.input_file_name().alias(BRONZE_FILE),
        F.col("_metadata.row_index").alias(BRONZE_ROW),
    )


def repeated_ids(df: DataFrame) -> DataFrame:
    """``(event_id, _first_copy)`` for every event id that ``df`` holds more than once, with where its
    first copy is (`COPY`: the lowest Kafka topic/partition/offset, then Bronze file and row).

    Two aggregations on narrow rows, no sort: the rows per 64-bit hash of the id (a few bytes per event
    to shuffle), then, for the rows whose hash repeats only (usually none or a few), the exact id and
    its first copy. Duplicates are rare, so the result is small: `mark_duplicates` joins it back.
    """
    key = F.xxhash64("event_id").alias("_id_hash")
    hashes = df.select(key).groupBy("_id_hash").count().where(F.col("count") > 1).select("_id_hash")
    suspects = df.join(F.broadcast(hashes), key == hashes["_id_hash"], "left_semi")
    return (
        suspects.groupBy("event_id")
        .agg(F.count(F.lit(1)).alias("_copies"), F.min(F.struct(*COPY)).alias(FIRST_COPY))
        .where(F.col("_copies") > 1)
        .select("event_id", FIRST_COPY)
    )


def mark_duplicates(repeated: DataFrame | None) -> Callable[[DataFrame], DataFrame]:
    """``_duplicate``: true for every copy of an ``event_id`` but the first written to Kafka (lowest
    topic/partition/offset; `COPY`), so one aggregation can count duplicates beside everything else.
    ``repeated`` is `repeated_ids` of the same rows (None: no id repeats). A null event id is an id like
    any other here: every null-id row but the first is a duplicate."""

    def _(df: DataFrame) -> DataFrame:
        if repeated is None:
            return df.withColumn(DUPLICATE, F.lit(False))
        r = repeated.select(F.col("event_id").alias("_rid"), FIRST_COPY)
        joined = df.join(r, df["event_id"].eqNullSafe(r["_rid"]), "left")
        first = F.col(FIRST_COPY)
        dup = first.isNotNull() & (F.struct(*COPY) != first)
        return joined.withColumn(DUPLICATE, dup).drop("_rid", FIRST_COPY)

    return _


def with_amounts(df: DataFrame) -> DataFrame:
    """Line amount in the event's currency (price × quantity) for commerce events; null where Silver's
    type cannot hold it (`fitted`)."""
    return df.withColumn("amount", fitted(F.try_multiply(F.col("price"), F.col("quantity")), "amount"))


def rates_in_force(rates: DataFrame, start: dt.date, end: dt.date) -> DataFrame:
    """``(currency, event_date, rate_to_usd)`` for every day of [start, end] that has a rate in force.

    A rate holds from its ``as_of_date`` until the next one of its currency. The result has at most
    currencies × days rows: an equi-join on it, broadcast, is the as-of join without a range join.
    A day before a currency's first ``as_of_date`` has no rate.
    """
    nxt = Window.partitionBy("currency").orderBy("as_of_date")
    last_day = F.date_sub(F.lead("as_of_date").over(nxt), 1)
    return (
        rates.select("currency", F.col("rate_to_usd").cast("double").alias("rate_to_usd"), "as_of_date")
        .withColumn("_from", F.greatest(F.col("as_of_date"), F.lit(start)))
        .withColumn("_until", F.least(F.coalesce(last_day, F.lit(end)), F.lit(end)))
        .where(F.col("_from") <= F.col("_until"))
        .select("currency", F.explode(F.sequence("_from", "_until")).alias(EVENT_DATE), "rate_to_usd")
    )


def with_usd_amount(in_force: DataFrame) -> Callable[[DataFrame], DataFrame]:
    """``amount_usd``: ``amount`` times the rate in force on the event's date (`rates_in_force`); USD is
    itself. No rate in force leaves it null, which Silver's ``amount_usd_present`` rule turns into a DLQ
    record, never a silent null."""

    def _(df: DataFrame) -> DataFrame:
        r = in_force.select(
            F.col("currency").alias("_cur"),
            F.col(EVENT_DATE).alias("_day"),
            F.col("rate_to_usd").alias("_rate"),
        )
        on = (df["currency"] == r["_cur"]) & (df[EVENT_DATE] == r["_day"])
        joined = df.join(F.broadcast(r), on, "left")
        usd = F.when(F.col("currency") == "USD", F.col("amount")).otherwise(F.col("amount") * F.col("_rate"))
        return joined.withColumn("amount_usd", fitted(usd, "amount_usd")).drop("_cur", "_day", "_rate")

    return _


def with_lookup(lookup: DataFrame, key: str, columns: dict[str, str]) -> Callable[[DataFrame], DataFrame]:
    """Left-join a small lookup table on ``key``, adding its ``columns`` renamed as given (broadcast)."""

    def _(df: DataFrame) -> DataFrame:
        right = lookup.select(
            F.col(key).alias("_key"), *[F.col(c).alias(name) for c, name in columns.items()]
        )
        return df.join(F.broadcast(right), df[key] == right["_key"], "left").drop("_key")

    return _
