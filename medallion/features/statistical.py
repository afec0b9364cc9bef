"""``statistical_features``: the distribution of a user's order values and session durations over 30 days.

Percentiles are exact (Spark's ``percentile``, every value kept): for n sorted values x_0..x_{n-1} the
p-th percentile is at position p·(n − 1), linearly interpolated between its two neighbours — NumPy's
default "linear" method. The standard deviation is the sample one (n − 1), null for fewer than 2 values.
"""

from __future__ import annotations

from medallion.features.model import USER, Feature, FeatureFamily, window_text, windowed

STATISTICS = {
    "mean": "the arithmetic mean",
    "std": "the sample standard deviation (n − 1; null for fewer than 2 values)",
    "min": "the minimum",
    "max": "the maximum",
    "p50": "the exact median (linear interpolation at position 0.5·(n − 1) of the sorted values)",
    "p90": "the exact 90th percentile (linear interpolation at position 0.9·(n − 1))",
}
SUBJECTS = {
    "order_value": "amount_usd of the user's purchase events with an amount_usd",
    "session_duration": "duration in seconds of the user's sessions (clipped to the window, one-event "
    "sessions 0 s, as in session_features)",
}


def _declare() -> FeatureFamily:
    win = window_text(30)
    features = tuple(
        Feature(
            windowed(f"{subject}_{stat}", 30),
            "float64",
            f"{text[0].upper()}{text[1:]} of the {what} in {win}; null when there is none.",
            when_empty="null",
            min=0,  # amounts and durations
        )
        for subject, what in SUBJECTS.items()
        for stat, text in STATISTICS.items()
    )
    return FeatureFamily(
        name="statistical_features",
        entity=USER,
        description="Per user and feature date D, for users with at least one event in the 30 days ending "
        "with D: mean, sample standard deviation, min, max and exact p50 / p90 of order values and "
        "session durations over those 30 days.",
        window_days=30,
        features=features,
        tags={"entity": "user"},
    )


STATISTICAL_FEATURES = _declare()
