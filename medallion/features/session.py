"""``session_features``: how a user's sessions go — count, length, depth, bounces, pace and kind.

A session is a distinct (user_id, session_id). Within a window it is made of its events inside the window
only: a session that crosses the window's start (or midnight) counts in every window holding one of its
events, with the duration of the part inside. Duration = last − first event_time of those events, in
seconds, so a one-event session lasts 0 s. Kinds: *browsing* sessions have only page_view, search or
click events; *buying* sessions only add_to_cart, remove_from_cart or purchase events; *mixed* have both.
"""

from __future__ import annotations

from medallion.features.model import USER, Feature, FeatureFamily, window_text, windowed

WINDOWS = (7, 30)
BROWSE_TYPES = ("page_view", "search", "click")
SESSION_KINDS = ("browsing", "buying", "mixed")


def _declare() -> FeatureFamily:
    features: list[Feature] = []
    for w in WINDOWS:
        win = window_text(w)
        empty = "null when the user has no session there" if w < 30 else "a row always has a session there"
        rule = "null" if w < 30 else "not_applicable"
        features += [
            Feature(
                windowed("sessions", w), "int64", f"Distinct sessions with an event of the user in {win}."
            ),
            Feature(
                windowed("avg_session_duration", w),
                "float64",
                f"Mean session duration in seconds over the user's sessions in {win} (each clipped to the "
                f"window); {empty}.",
                when_empty=rule,
                min=0,
            ),
            Feature(
                windowed("events_per_session", w),
                "float64",
                f"The user's events / sessions in {win}; {empty}.",
                when_empty=rule,
                min=0,
            ),
            Feature(
                windowed("bounce_rate", w),
                "float64",
                f"Share of the user's sessions in {win} with exactly one event there; {empty}.",
                when_empty=rule,
                min=0,
                max=1,
            ),
            Feature(
                windowed("time_between_events_mean", w),
                "float64",
                f"Mean gap in seconds between consecutive events of a session, pooled over the user's "
                f"sessions in {win}: Σ duration / Σ (events − 1); null when no session has two events there.",
                when_empty="null",
                min=0,
            ),
        ]
        for kind in SESSION_KINDS:
            features.append(
                Feature(
                    windowed(f"{kind}_session_share", w),
                    "float64",
                    f"Share of the user's sessions in {win} that are {kind} (see the family); {empty}.",
                    when_empty=rule,
                    min=0,
                    max=1,
                )
            )
    return FeatureFamily(
        name="session_features",
        entity=USER,
        description="Per user and feature date D, for users with at least one event in the 30 days ending "
        "with D: their sessions over 7 and 30 days (a session = distinct user_id, session_id; within a "
        "window only its events inside it count; a one-event session lasts 0 s).",
        window_days=30,
        features=tuple(features),
        tags={"entity": "user"},
    )


SESSION_FEATURES = _declare()
