"""Time helpers every stage shares: the lake's clock is UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime; a naive one is taken to be UTC already (as Spark and Feast write them)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
