"""Builders of ``item_embeddings`` and ``user_embeddings`` (declared in `medallion.features.embeddings`).

Word2Vec is an estimator, so training runs while the builder runs (one Spark job per model). Both
families share the run's item vectors (`GoldInputs.once`), so asking for both trains each model once.
"""

from __future__ import annotations

import datetime as dt
from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from medallion.core.catalog import EVENT_DATE, FEATURE_DATE
from medallion.core.config import GoldConfig
from medallion.features.embeddings import ITEM_EMBEDDINGS, USER_EMBEDDINGS
from medallion.gold.registry import builds
from medallion.gold.transforms import GoldInputs, as_declared, calendar, over_window


def session_sequences(silver: DataFrame, first: dt.date, last: dt.date) -> DataFrame:
    """One row per session with an item in [first, last]: its item_ids in event_time (then event_id) order,
    sorted by session and in one partition, so that training sees the same sentences in the same order."""
    events = silver.where(F.col(EVENT_DATE).between(F.lit(first), F.lit(last)) & F.col("item_id").isNotNull())
    ordered = events.groupBy("user_id", "session_id").agg(
        F.sort_array(F.collect_list(F.struct("event_time", "event_id", "item_id"))).alias("_events")
    )
    return (
        ordered.select("user_id", "session_id", F.transform("_events", lambda e: e["item_id"]).alias("items"))
        .orderBy("user_id", "session_id")
        .coalesce(1)
    )


def train_item_vectors(silver: DataFrame, date: dt.date, settings: GoldConfig) -> DataFrame:
    """Item vectors of the model trained on the sessions of the window ending with ``date``."""
    # lazy: Spark ML's classes load only when embeddings are trained
    from pyspark.ml.feature import Word2Vec
    from pyspark.ml.functions import vector_to_array

    first = date - dt.timedelta(days=settings.embedding_window_days - 1)
    sentences = session_sequences(silver, first, date)
    if sentences.isEmpty():
        return silver.sparkSession.createDataFrame(
            [], f"item_id string, {FEATURE_DATE} date, item_vector array<double>"
        )
    model = Word2Vec(
        vectorSize=settings.embedding_dim,
        minCount=settings.embedding_min_count,
        windowSize=settings.embedding_context,
        seed=settings.embedding_seed,
        numPartitions=1,
        maxIter=1,
        inputCol="items",
    ).fit(sentences)
    return model.getVectors().select(
        F.col("word").alias("item_id"),
        F.lit(date).alias(FEATURE_DATE),
        vector_to_array(F.col("vector"), "float64").alias(ITEM_EMBEDDINGS.column("item_vector")),
    )


def item_vectors(inputs: GoldInputs) -> DataFrame:
    """The run's item vectors: one model for the range's last date, or one per date when configured."""
    dates = inputs.feature_date_list()
    trained = dates if inputs.settings.embeddings_every_date else dates[-1:]
    frames = [train_item_vectors(inputs.silver, d, inputs.settings) for d in trained]
    return reduce(DataFrame.unionByName, frames)


def trained_dates(inputs: GoldInputs) -> list[dt.date]:
    """The feature dates this run writes vectors for (the others keep what an earlier run wrote)."""
    dates = inputs.feature_date_list()
    return dates if inputs.settings.embeddings_every_date else dates[-1:]


@builds(ITEM_EMBEDDINGS, dates_written=trained_dates)
def build_items(inputs: GoldInputs) -> DataFrame:
    return inputs.once("item_vectors", item_vectors).transform(as_declared(ITEM_EMBEDDINGS))


@builds(USER_EMBEDDINGS, dates_written=trained_dates)
def build_users(inputs: GoldInputs) -> DataFrame:
    """The mean of the item vectors over the distinct items of each user's last 30 days."""
    vectors = inputs.once("item_vectors", item_vectors)
    dates = calendar(inputs.silver.sparkSession, trained_dates(inputs))
    items = (
        inputs.silver.where(F.col("item_id").isNotNull()).select("user_id", "item_id", EVENT_DATE).distinct()
    )
    pairs = (
        over_window(items, dates, USER_EMBEDDINGS.window_days)
        .select("user_id", "item_id", FEATURE_DATE)
        .distinct()
        .join(vectors, ["item_id", FEATURE_DATE])
    )
    per_position = pairs.select(
        "user_id", FEATURE_DATE, F.posexplode(ITEM_EMBEDDINGS.column("item_vector")).alias("pos", "value")
    )
    means = per_position.groupBy("user_id", FEATURE_DATE, "pos").agg(F.avg("value").alias("value"))
    users = means.groupBy("user_id", FEATURE_DATE).agg(
        F.sort_array(F.collect_list(F.struct("pos", "value"))).alias("_parts")
    )
    return users.withColumn(
        USER_EMBEDDINGS.column("user_vector"), F.transform("_parts", lambda p: p["value"])
    ).transform(as_declared(USER_EMBEDDINGS))
