"""``item_embeddings`` and ``user_embeddings``: vectors learned from the item sequences of sessions.

Spark ML ``Word2Vec`` (skip-gram) is trained on one "sentence" per session: the session's non-null
item_id in event_time order (event_id breaks ties), over ``gold.embedding_window_days`` days ending with
the feature date. Seed, vector length, context window and minimum count come from the ``gold`` config
section; the training input is ordered and in one partition, so the same data and seed give the same
vectors. A user's vector is the element-wise mean of the vectors of the distinct items of the user's
events in the 30 days ending with D.

Cost: a model per feature date is a training run per date, so by default one model is trained per Gold
run, on the window ending with the range's last date, and only that date gets vector rows (earlier dates
of a backfill keep the vectors an earlier run wrote for them). ``gold.embeddings_every_date`` trains one
model per date instead, for point-in-time vectors across a backfill.
"""

from __future__ import annotations

from medallion.features.model import ITEM, USER, Feature, FeatureFamily, window_text

ITEM_EMBEDDINGS = FeatureFamily(
    name="item_embeddings",
    entity=ITEM,
    description="Per item and feature date D: the item's Word2Vec vector, trained on the item sequences of "
    "the sessions in the configured window ending with D (items below the minimum count have no row).",
    window_days=30,
    features=(
        Feature(
            "item_vector",
            "float_array",
            "Word2Vec vector (gold.embedding_dim doubles) of the item, trained on one item_id sequence per "
            "session (event_time order) over the gold.embedding_window_days days ending with D.",
            when_empty="not_applicable",
        ),
    ),
    tags={"entity": "item", "model": "word2vec"},
    coverage=(0.0, 1.0),  # vectors only for the items the model knows
)

USER_EMBEDDINGS = FeatureFamily(
    name="user_embeddings",
    entity=USER,
    description="Per user and feature date D: the mean of the item vectors of D's model over the distinct "
    f"items of the user's events in {window_text(30)} (users with no such item have no row).",
    window_days=30,
    features=(
        Feature(
            "user_vector",
            "float_array",
            "Element-wise mean of item_vector (of D's model) over the distinct item_id of the user's events "
            f"in {window_text(30)} that have a vector.",
            when_empty="not_applicable",
        ),
    ),
    tags={"entity": "user", "model": "word2vec"},
    coverage=(0.0, 1.0),  # vectors only for the users with an item the model knows
)
