"""How the simulated shoppers behave: when they come (seasonality), what they do next (the funnel), and
the ids their events get. Pure functions and small classes, shared by the generator and its tests."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final, Literal, TypeVar

import numpy as np

HOUR_MS = 3_600_000

# Relative traffic by hour of day (UTC) and by weekday (Monday first).
DAILY = (0.45, 0.35, 0.28, 0.25, 0.25, 0.30, 0.45, 0.65, 0.80, 0.90, 0.95, 1.00,
         1.05, 1.00, 0.95, 0.95, 1.00, 1.10, 1.25, 1.40, 1.45, 1.30, 1.00, 0.70)  # fmt: skip
WEEKLY = (0.92, 0.90, 0.93, 0.96, 1.05, 1.15, 1.10)


class EventType(StrEnum):
    """The contract's event types (`contract.EVENT_TYPES`, in its order): the states of the funnel."""

    PAGE_VIEW = "page_view"
    SEARCH = "search"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    REMOVE_FROM_CART = "remove_from_cart"
    PURCHASE = "purchase"


START: Final = "start"
"""The funnel's state before a session's first event."""
END: Final = None
"""The funnel's state after a session's last event."""

State = EventType | Literal["start"]
Next = EventType | None

_PV, _SE, _CL = EventType.PAGE_VIEW, EventType.SEARCH, EventType.CLICK
_ADD, _RM, _BUY = EventType.ADD_TO_CART, EventType.REMOVE_FROM_CART, EventType.PURCHASE
FUNNEL: dict[State, dict[Next, float]] = {
    START: {_PV: 0.75, _SE: 0.25},
    _PV: {_PV: 0.30, _SE: 0.12, _CL: 0.38, END: 0.20},
    _SE: {_PV: 0.15, _SE: 0.15, _CL: 0.55, END: 0.15},
    _CL: {_PV: 0.30, _SE: 0.08, _CL: 0.22, _ADD: 0.22, END: 0.18},
    _ADD: {_PV: 0.15, _SE: 0.05, _CL: 0.20, _BUY: 0.35, _RM: 0.10, END: 0.15},
    _RM: {_PV: 0.30, _CL: 0.30, END: 0.40},
    _BUY: {_PV: 0.30, _CL: 0.10, END: 0.60},
}
"""Next-event probabilities. Removal and purchase are reachable only from add_to_cart, so the cart is
never empty when they happen."""

T = TypeVar("T")
_M48 = (1 << 48) - 1


def draw_table(weighted: Sequence[tuple[T, float]], bits: int) -> list[T]:
    """A table of 2**bits entries holding each value in proportion to its weight (largest remainder),
    so that drawing is one ``getrandbits`` and one index."""
    size = 1 << bits
    total = sum(w for _, w in weighted)
    exact = [w / total * size for _, w in weighted]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: counts[i] - exact[i])
    for i in by_remainder[: size - sum(counts)]:
        counts[i] += 1
    return [value for (value, _), n in zip(weighted, counts, strict=True) for _ in range(n)]


FUNNEL_BITS = 8


def funnel_tables() -> dict[State, list[Next]]:
    """Per state, the 2**FUNNEL_BITS-entry table of next states (`END` = the session ends): the next
    event type is ``tables[state][getrandbits(FUNNEL_BITS)]``."""
    return {state: draw_table(list(FUNNEL[state].items()), FUNNEL_BITS) for state in (*EventType, START)}


def expected_type_shares() -> dict[str, float]:
    """Share of each event type among valid events in the long run (expected visits of the funnel's
    absorbing chain, from the same quantized tables the generator draws from)."""
    tables = funnel_tables()
    visits = dict.fromkeys(EventType, 0.0)
    mass: dict[State, float] = {START: 1.0}
    for _ in range(500):  # sum of entry * Q^k; converges fast (every state ends with p >= 0.15)
        step: dict[State, float] = {}
        for state, m in mass.items():
            for nxt in tables[state]:
                if nxt is not END:
                    step[nxt] = step.get(nxt, 0.0) + m / len(tables[state])
        mass = step
        for event_type, m in mass.items():
            visits[event_type] += m  # type: ignore[index]  # START is never reached again
    total = sum(visits.values())
    return {t.value: visits[t] / total for t in EventType}


class Timeline:
    """Seasonal event times over ``[start_ms, end_ms)``, by hour buckets."""

    def __init__(self, start_ms: int, end_ms: int) -> None:
        if end_ms <= start_ms:
            raise ValueError("the time range is empty")
        self.start_ms, self.end_ms = start_ms, end_ms
        lo, length, weight = [], [], []
        for hour in range(start_ms // HOUR_MS, (end_ms - 1) // HOUR_MS + 1):
            a, b = max(hour * HOUR_MS, start_ms), min((hour + 1) * HOUR_MS, end_ms)
            moment = datetime.fromtimestamp(hour * 3600, UTC)
            lo.append(a)
            length.append(b - a)
            weight.append(DAILY[moment.hour] * WEEKLY[moment.weekday()] * (b - a))
        self.lo, self.length = np.array(lo, np.int64), np.array(length, np.float64)
        self.cum = np.concatenate([[0.0], np.cumsum(weight)])

    def rates(self, n: int) -> np.ndarray:
        """Events per millisecond in each hour bucket when ``n`` events fill the range."""
        return n * np.diff(self.cum) / self.cum[-1] / self.length

    def times(self, rng: np.random.Generator, n: int, block: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``n`` ascending times (ms) in blocks, with the hour bucket of each: sorted draws from the seasonal
        density, made in order (the k-th of ``left`` uniforms is 1 - prod V_i^(1/left_i))."""
        total, last, log_rest = self.cum[-1], len(self.length) - 1, 0.0
        for first in range(0, n, block):
            size = min(block, n - first)
            left = np.arange(n - first, n - first - size, -1, dtype=np.float64)
            log_tail = log_rest + np.cumsum(np.log1p(-rng.random(size)) / left)
            log_rest = float(log_tail[-1])
            y = -np.expm1(log_tail) * total
            k = np.clip(np.searchsorted(self.cum, y, side="right") - 1, 0, last)
            offset = (y - self.cum[k]) / (self.cum[k + 1] - self.cum[k]) * self.length[k]
            yield np.minimum(self.lo[k] + offset.astype(np.int64), self.end_ms - 1), k


class Ids:
    """UUID-shaped ids that never repeat within a run: a seeded bijection on 48 bits scrambles a counter
    into the last group, and the first 80 bits are seeded (one prefix per block of events)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.key, self.odd1, self.odd2 = rng.getrandbits(48), rng.getrandbits(48) | 1, rng.getrandbits(48) | 1

    def one(self, n: int) -> int:
        h = ((n ^ self.key) * self.odd1) & _M48
        h ^= h >> 24
        h = (h * self.odd2) & _M48
        return h ^ (h >> 21)

    def block(self, first: int, size: int) -> list[bytes]:
        """The UUIDs (ASCII bytes) of counters ``first .. first+size-1``, made together (one prefix)."""
        mask, c = np.uint64(_M48), np.arange(first, first + size, dtype=np.uint64)
        h = ((c ^ np.uint64(self.key)) * np.uint64(self.odd1)) & mask
        h ^= h >> np.uint64(24)
        h = (h * np.uint64(self.odd2)) & mask
        h ^= h >> np.uint64(21)
        hex_digits = h.astype(">u8").view(np.uint8).reshape(size, 8)[:, 2:].tobytes().hex().encode()
        ids: list[bytes] = np.char.add(self.prefix().encode(), np.frombuffer(hex_digits, "S12")).tolist()
        return ids

    def prefix(self) -> str:
        bits = self.rng.getrandbits
        return f"{bits(32):08x}-{bits(16):04x}-4{bits(12):03x}-{8 + bits(2):x}{bits(12):03x}-"

    def uuid(self, n: int) -> str:
        return f"{self.prefix()}{self.one(n):012x}"
