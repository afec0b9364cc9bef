"""``user_features``: a user's activity, spending, recency, breadth and conversion (absorbs user_activity)."""

from __future__ import annotations

from medallion.core.contract import EVENT_TYPES
from medallion.features.model import USER, Feature, FeatureFamily, window_text, windowed

WINDOWS = (1, 7, 30)
RECENT = (7, 30)  # windows of the breadth and conversion features


def _declare() -> FeatureFamily:
    features: list[Feature] = []
    for w in WINDOWS:
        features.append(Feature(windowed("events", w), "int64", f"Events of the user in {window_text(w)}."))
        for t in EVENT_TYPES:
            features.append(
                Feature(
                    windowed(f"{t}_events", w),
                    "int64",
                    f"Events of type {t} of the user in {window_text(w)}.",
                )
            )
    for w in WINDOWS:
        features += [
            Feature(
                windowed("revenue", w),
                "float64",
                f"Sum of amount_usd of the user's purchase events in {window_text(w)} (exact decimal sum, "
                "then a double); a purchase without a USD amount adds 0.",
                min=0,
            ),
            Feature(
                windowed("avg_order_value", w),
                "float64",
                f"Sum of amount_usd / number of the user's purchase events with an amount_usd, in "
                f"{window_text(w)}; null when there is no such purchase.",
                when_empty="null",
                min=0,
            ),
        ]
    features += [
        Feature(
            "days_since_last_event",
            "float64",
            f"(end of D − the user's latest event_time) in days (86,400 s), over {window_text(30)}; a row "
            "exists only for users with an event there, so it is never empty.",
            when_empty="not_applicable",
            min=0,
        ),
        Feature(
            "days_since_last_purchase",
            "float64",
            f"(end of D − the user's latest purchase event_time) in days, over {window_text(30)}; null "
            "when the user has no purchase there (older purchases are beyond Gold's 30-day horizon).",
            when_empty="null",
            min=0,
        ),
    ]
    for w in RECENT:
        features += [
            Feature(
                windowed("distinct_items", w),
                "int64",
                f"Distinct non-null item_id of the user's events in {window_text(w)}.",
            ),
            Feature(
                windowed("distinct_categories", w),
                "int64",
                f"Distinct non-null item_category of the user's events in {window_text(w)}.",
            ),
            Feature(
                windowed("view_to_purchase_rate", w),
                "float64",
                f"Distinct items the user both viewed (page_view) and purchased / distinct items the user "
                f"viewed, in {window_text(w)}; null when the user viewed no item there.",
                when_empty="null",
                min=0,
                max=1,
            ),
            Feature(
                windowed("active_days", w),
                "int64",
                f"Distinct UTC event dates with at least one event of the user in {window_text(w)}.",
            ),
        ]
    return FeatureFamily(
        name="user_features",
        entity=USER,
        description="Per user and feature date D, for users with at least one event in the 30 days ending "
        "with D: counts by event type, spending, recency, breadth and conversion over 1, 7 and 30 days.",
        window_days=30,
        features=tuple(features),
        tags={"entity": "user"},
    )


USER_FEATURES = _declare()
