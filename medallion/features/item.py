"""``item_features``: an item's traffic, conversion, revenue, audience, popularity and trend."""

from __future__ import annotations

from medallion.features.model import ITEM, Feature, FeatureFamily, window_text, windowed

WINDOWS = (1, 7, 30)
RATE_WINDOWS = (7, 30)
# Item events by kind: a page_view with an item_id is a view of that item.
KINDS = {"views": "page_view", "clicks": "click", "add_to_carts": "add_to_cart", "purchases": "purchase"}


def _declare() -> FeatureFamily:
    features: list[Feature] = []
    for w in WINDOWS:
        features.append(
            Feature(
                windowed("item_events", w),
                "int64",
                f"Events of any type with this item_id in {window_text(w)}.",
            )
        )
        for kind, t in KINDS.items():
            features.append(
                Feature(
                    windowed(f"item_{kind}", w), "int64", f"{t} events with this item_id in {window_text(w)}."
                )
            )
    for w in RATE_WINDOWS:
        features += [
            Feature(
                windowed("item_ctr", w),
                "float64",
                f"Distinct users who both viewed (page_view) and clicked the item / distinct users who "
                f"viewed it, in {window_text(w)}; null when nobody viewed it there.",
                when_empty="null",
                min=0,
                max=1,
            ),
            Feature(
                windowed("item_conversion_rate", w),
                "float64",
                f"Distinct users who both viewed (page_view) and purchased the item / distinct users who "
                f"viewed it, in {window_text(w)}; null when nobody viewed it there.",
                when_empty="null",
                min=0,
                max=1,
            ),
            Feature(
                windowed("item_revenue", w),
                "float64",
                f"Sum of amount_usd of the item's purchase events in {window_text(w)}; a purchase without a "
                "USD amount adds 0.",
                min=0,
            ),
            Feature(
                windowed("item_unique_users", w),
                "int64",
                f"Distinct user_id of the item's events in {window_text(w)}.",
            ),
        ]
    features += [
        Feature(
            windowed("item_returning_user_rate", 30),
            "float64",
            f"Share of the item's distinct users in {window_text(30)} who had events with it on at least 2 "
            "distinct UTC dates there; a row exists only for items with an event there, so never empty.",
            when_empty="not_applicable",
            min=0,
            max=1,
        ),
        Feature(
            windowed("item_popularity_rank", 1),
            "int64",
            "1 + the number of items (among those with a row for D) with more item_events_1d; ties share a "
            "rank, items without events on D rank after every item with some.",
        ),
        Feature(
            windowed("item_growth", 7),
            "float64",
            "(events of the item in dates D-6 .. D − events in dates D-13 .. D-7) / events in D-13 .. D-7; "
            "null when the earlier week had none.",
            when_empty="null",
            min=-1,
        ),
        Feature(
            windowed("item_trend_7d_vs", 30),
            "float64",
            "(item_events_7d / 7) / (item_events_30d / 30): above 1 when the last week is busier than the "
            "month's average; a row exists only for items with an event in the 30 days, so never empty.",
            when_empty="not_applicable",
            min=0,
        ),
    ]
    return FeatureFamily(
        name="item_features",
        entity=ITEM,
        description="Per item and feature date D, for items with at least one event in the 30 days ending "
        "with D: views, clicks, add-to-carts, purchases, rates, revenue, audience, popularity and trend.",
        window_days=30,
        features=tuple(features),
        tags={"entity": "item"},
    )


ITEM_FEATURES = _declare()
