"""Silver transforms: Bronze events → one flat, typed, deduplicated, enriched row per event."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from medallion.core.catalog import EVENT_DATE, SILVER
from medallion.core.lake import require_columns

BRONZE_FILE = "_bronze_file"  # the Bronze file a row came from (for the DLQ), not a Silver column
DUPLICATE = "_duplicate"

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
    )


def mark_duplicates(df: DataFrame) -> DataFrame:
    """``_duplicate``: true for every copy of an ``event_id`` but the first written to Kafka (lowest
    topic/partition/offset), so one aggregation can count duplicates beside everything else."""
    first = Window.partitionBy("event_id").orderBy("source_topic", "source_partition", "source_offset")
    return df.withColumn(DUPLICATE, F.row_number().over(first) > 1)


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
