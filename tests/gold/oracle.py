"""Gold's feature families recomputed in plain Python from the Silver rows: the independent oracle.

Written from the declarations' descriptions, not from the Spark builders: windows are judged on
``event_time`` against the end of the feature date (not on ``event_date``), counts are loops, percentiles
and the standard deviation come from the definitions. Every function returns
``{(entity id, feature date): {feature: value}}``.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

UTC = dt.UTC
EVENT_TYPES = ("page_view", "search", "click", "add_to_cart", "remove_from_cart", "purchase")
BROWSE = {"page_view", "search", "click"}
Row = dict[str, Any]
Result = dict[tuple[str, dt.date], dict[str, Any]]


def micros(t: dt.datetime) -> int:
    delta = t.astimezone(UTC) - dt.datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def end_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=UTC)


def window(rows: Iterable[Row], day: dt.date, days: int) -> list[Row]:
    """Events with end of ``day`` − ``days`` days <= event_time < end of ``day``."""
    end = end_of(day)
    start = end - dt.timedelta(days=days)
    return [r for r in rows if start <= r["event_time"] < end]


def days_before_end(day: dt.date, t: dt.datetime | None) -> float | None:
    return None if t is None else (micros(end_of(day)) - micros(t)) / 86_400_000_000.0


def div(a: float, b: float) -> float | None:
    return a / b if b else None


def percentile(values: list[float], p: float) -> float:
    """Linear interpolation at position p·(n − 1) of the sorted values."""
    xs = sorted(values)
    pos = p * (len(xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    if lo == hi:
        return xs[lo]
    return (hi - pos) * xs[lo] + (pos - lo) * xs[hi]


def _per_entity(
    rows: list[Row], key: str, dates: list[dt.date], compute: Callable[..., dict[str, Any]]
) -> Result:
    out: Result = {}
    by_entity: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        if r[key] is not None:
            by_entity[r[key]].append(r)
    for entity, events in by_entity.items():
        for day in dates:
            if window(events, day, 30):
                out[(entity, day)] = compute(events, day)
    return out


def _amount_sum(events: list[Row]) -> Decimal:
    return sum(
        (r["amount_usd"] for r in events if r["event_type"] == "purchase" and r["amount_usd"] is not None),
        Decimal(0),
    )


def user_features(rows: list[Row], dates: list[dt.date]) -> Result:
    def compute(events: list[Row], day: dt.date) -> dict[str, Any]:
        f: dict[str, Any] = {}
        for w in (1, 7, 30):
            ev = window(events, day, w)
            f[f"events_{w}d"] = len(ev)
            for t in EVENT_TYPES:
                f[f"{t}_events_{w}d"] = sum(1 for r in ev if r["event_type"] == t)
            priced = [r for r in ev if r["event_type"] == "purchase" and r["amount_usd"] is not None]
            f[f"revenue_{w}d"] = float(_amount_sum(ev))
            f[f"avg_order_value_{w}d"] = float(_amount_sum(priced)) / len(priced) if priced else None
        for w in (7, 30):
            ev = window(events, day, w)
            f[f"distinct_items_{w}d"] = len({r["item_id"] for r in ev if r["item_id"] is not None})
            f[f"distinct_categories_{w}d"] = len(
                {r["item_category"] for r in ev if r["item_category"] is not None}
            )
            viewed = {r["item_id"] for r in ev if r["event_type"] == "page_view" and r["item_id"] is not None}
            bought = {r["item_id"] for r in ev if r["event_type"] == "purchase" and r["item_id"] is not None}
            f[f"view_to_purchase_rate_{w}d"] = div(len(viewed & bought), len(viewed))
            f[f"active_days_{w}d"] = len({r["event_time"].astimezone(UTC).date() for r in ev})
        ev30 = window(events, day, 30)
        f["days_since_last_event"] = days_before_end(day, max(r["event_time"] for r in ev30))
        purchases = [r["event_time"] for r in ev30 if r["event_type"] == "purchase"]
        f["days_since_last_purchase"] = days_before_end(day, max(purchases) if purchases else None)
        return f

    return _per_entity(rows, "user_id", dates, compute)


def item_features(rows: list[Row], dates: list[dt.date]) -> Result:
    kinds = {"views": "page_view", "clicks": "click", "add_to_carts": "add_to_cart", "purchases": "purchase"}

    def compute(events: list[Row], day: dt.date) -> dict[str, Any]:
        f: dict[str, Any] = {}
        for w in (1, 7, 30):
            ev = window(events, day, w)
            f[f"item_events_{w}d"] = len(ev)
            for kind, t in kinds.items():
                f[f"item_{kind}_{w}d"] = sum(1 for r in ev if r["event_type"] == t)
        for w in (7, 30):
            ev = window(events, day, w)
            viewers = {r["user_id"] for r in ev if r["event_type"] == "page_view"}
            clickers = {r["user_id"] for r in ev if r["event_type"] == "click"}
            buyers = {r["user_id"] for r in ev if r["event_type"] == "purchase"}
            f[f"item_ctr_{w}d"] = div(len(viewers & clickers), len(viewers))
            f[f"item_conversion_rate_{w}d"] = div(len(viewers & buyers), len(viewers))
            f[f"item_revenue_{w}d"] = float(_amount_sum(ev))
            f[f"item_unique_users_{w}d"] = len({r["user_id"] for r in ev})
        days_by_user: dict[str, set[dt.date]] = defaultdict(set)
        for r in window(events, day, 30):
            days_by_user[r["user_id"]].add(r["event_time"].astimezone(UTC).date())
        f["item_returning_user_rate_30d"] = sum(1 for d in days_by_user.values() if len(d) >= 2) / len(
            days_by_user
        )
        end = end_of(day)
        previous = sum(
            1 for r in events if end - dt.timedelta(days=14) <= r["event_time"] < end - dt.timedelta(days=7)
        )
        f["item_growth_7d"] = div(f["item_events_7d"] - previous, previous)
        f["item_trend_7d_vs_30d"] = (f["item_events_7d"] / 7) / (f["item_events_30d"] / 30)
        return f

    out = _per_entity(rows, "item_id", dates, compute)
    for day in dates:
        today = {k: v["item_events_1d"] for k, v in out.items() if k[1] == day}
        for k, n in today.items():
            out[k]["item_popularity_rank_1d"] = 1 + sum(1 for m in today.values() if m > n)
    return out


def sessions_of(events: list[Row], day: dt.date, days: int) -> list[dict[str, Any]]:
    """The user's sessions made of their events inside the window: events, duration (s), kind."""
    by_session: dict[str, list[Row]] = defaultdict(list)
    for r in window(events, day, days):
        by_session[r["session_id"]].append(r)
    out = []
    for ev in by_session.values():
        times = [micros(r["event_time"]) for r in ev]
        types = {r["event_type"] for r in ev}
        browse, commerce = bool(types & BROWSE), bool(types - BROWSE)
        kind = "mixed" if browse and commerce else "browsing" if browse else "buying"
        out.append({"events": len(ev), "duration": (max(times) - min(times)) / 1_000_000.0, "kind": kind})
    return out


def session_features(rows: list[Row], dates: list[dt.date]) -> Result:
    def compute(events: list[Row], day: dt.date) -> dict[str, Any]:
        f: dict[str, Any] = {}
        for w in (7, 30):
            s = sessions_of(events, day, w)
            n = len(s)
            total = sum(x["duration"] for x in s)
            gaps = sum(x["events"] - 1 for x in s)
            f[f"sessions_{w}d"] = n
            f[f"avg_session_duration_{w}d"] = div(total, n)
            f[f"events_per_session_{w}d"] = div(sum(x["events"] for x in s), n)
            f[f"bounce_rate_{w}d"] = div(sum(1 for x in s if x["events"] == 1), n)
            f[f"time_between_events_mean_{w}d"] = div(total, gaps)
            for kind in ("browsing", "buying", "mixed"):
                f[f"{kind}_session_share_{w}d"] = div(sum(1 for x in s if x["kind"] == kind), n)
        return f

    return _per_entity(rows, "user_id", dates, compute)


def _describe(values: list[float], prefix: str) -> dict[str, Any]:
    if not values:
        return {f"{prefix}_{s}_30d": None for s in ("mean", "std", "min", "max", "p50", "p90")}
    return {
        f"{prefix}_mean_30d": statistics.fmean(values),
        f"{prefix}_std_30d": statistics.stdev(values) if len(values) > 1 else None,
        f"{prefix}_min_30d": min(values),
        f"{prefix}_max_30d": max(values),
        f"{prefix}_p50_30d": percentile(values, 0.5),
        f"{prefix}_p90_30d": percentile(values, 0.9),
    }


def statistical_features(rows: list[Row], dates: list[dt.date]) -> Result:
    def compute(events: list[Row], day: dt.date) -> dict[str, Any]:
        ev = window(events, day, 30)
        orders = [
            float(r["amount_usd"])
            for r in ev
            if r["event_type"] == "purchase" and r["amount_usd"] is not None
        ]
        durations = [s["duration"] for s in sessions_of(events, day, 30)]
        return _describe(orders, "order_value") | _describe(durations, "session_duration")

    return _per_entity(rows, "user_id", dates, compute)


PERIODS = {
    "night": range(0, 6),
    "morning": range(6, 12),
    "afternoon": range(12, 18),
    "evening": range(18, 24),
}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _preferred(counts: dict[str, int], order: Iterable[str]) -> str:
    best = None
    for name in order:  # strictly more to replace: ties keep the earlier name
        if best is None or counts[name] > counts[best]:
            best = name
    assert best is not None
    return best


def temporal_features(rows: list[Row], dates: list[dt.date]) -> Result:
    def compute(events: list[Row], day: dt.date) -> dict[str, Any]:
        ev = window(events, day, 30)
        times = [r["event_time"].astimezone(UTC) for r in ev]
        n = len(times)
        hours = Counter(t.hour for t in times)
        periods = {p: sum(hours[h] for h in hs) for p, hs in PERIODS.items()}
        weekdays = Counter(WEEKDAYS[t.weekday()] for t in times)
        f: dict[str, Any] = {f"{p}_share_30d": c / n for p, c in periods.items()}
        f["weekend_share_30d"] = sum(1 for t in times if t.weekday() >= 5) / n
        f["preferred_period_30d"] = _preferred(periods, ("morning", "afternoon", "evening", "night"))
        f["preferred_weekday_30d"] = _preferred({d: weekdays.get(d, 0) for d in WEEKDAYS}, WEEKDAYS)
        f["hour_entropy_30d"] = -sum((c / n) * math.log2(c / n) for c in hours.values())
        f["days_since_first_seen_30d"] = days_before_end(day, min(times))
        for w in (7, 30):
            wt = [r["event_time"].astimezone(UTC) for r in window(events, day, w)]
            f[f"events_per_active_day_{w}d"] = div(len(wt), len({t.date() for t in wt}))
        return f

    return _per_entity(rows, "user_id", dates, compute)


FAMILIES: dict[str, Callable[[list[Row], list[dt.date]], Result]] = {
    "user_features": user_features,
    "item_features": item_features,
    "session_features": session_features,
    "statistical_features": statistical_features,
    "temporal_features": temporal_features,
}
