"""``temporal_features``: when a user is active — time of day, weekends, hour entropy, tenure, intensity.

Times are UTC (event_time's hour and ISO weekday). Periods: night 00–05 h, morning 06–11 h, afternoon
12–17 h, evening 18–23 h. Every period has its share column, 0.0 when the user had no event in it.
"""

from __future__ import annotations

from medallion.features.model import USER, Feature, FeatureFamily, window_text, windowed

PERIODS = {"night": (0, 5), "morning": (6, 11), "afternoon": (12, 17), "evening": (18, 23)}
PERIOD_ORDER = ("morning", "afternoon", "evening", "night")  # tie-break order of preferred_period_30d
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _declare() -> FeatureFamily:
    win = window_text(30)
    features: list[Feature] = [
        Feature(
            windowed(f"{period}_share", 30),
            "float64",
            f"Share of the user's events in {win} whose UTC hour is {lo:02d}–{hi:02d}; 0.0 when none is.",
            min=0,
            max=1,
        )
        for period, (lo, hi) in PERIODS.items()
    ]
    features += [
        Feature(
            windowed("weekend_share", 30),
            "float64",
            f"Share of the user's events in {win} on a Saturday or Sunday (UTC); 0.0 when none is.",
            min=0,
            max=1,
        ),
        Feature(
            windowed("preferred_period", 30),
            "string",
            f"The period with most of the user's events in {win}; ties go to the earliest of "
            f"{', '.join(PERIOD_ORDER)}.",
            when_empty="not_applicable",
        ),
        Feature(
            windowed("preferred_weekday", 30),
            "string",
            f"The UTC weekday (lower-case English name) with most of the user's events in {win}; ties go to "
            "the earliest from Monday.",
            when_empty="not_applicable",
        ),
        Feature(
            windowed("hour_entropy", 30),
            "float64",
            f"Shannon entropy in bits, −Σ p·log2 p over the 24 UTC hours with events, of the user's events in "
            f"{win}: 0 when all fall in one hour, log2 24 ≈ 4.585 when spread evenly.",
            when_empty="not_applicable",
            min=0,
            max=4.585,  # log2(24), rounded up
        ),
        Feature(
            windowed("days_since_first_seen", 30),
            "float64",
            f"(end of D − the user's earliest event_time in {win}) in days (86,400 s): tenure as far as "
            "Gold's 30-day horizon sees.",
            when_empty="not_applicable",
            min=0,
        ),
    ]
    for w in (7, 30):
        rule = "null" if w < 30 else "not_applicable"
        features.append(
            Feature(
                windowed("events_per_active_day", w),
                "float64",
                f"The user's events / distinct UTC dates with an event, in {window_text(w)}"
                + ("; null when the user has none there." if w < 30 else "."),
                when_empty=rule,
                min=0,
            )
        )
    return FeatureFamily(
        name="temporal_features",
        entity=USER,
        description="Per user and feature date D, for users with at least one event in the 30 days ending "
        "with D: the shares of their events by time of day (UTC) and on weekends, preferred period and "
        "weekday, hour-of-day entropy, tenure within 30 days and events per active day.",
        window_days=30,
        features=tuple(features),
        tags={"entity": "user"},
    )


TEMPORAL_FEATURES = _declare()
