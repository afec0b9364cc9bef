"""How the simulated shoppers behave: when they come (seasonality), what they do next (the funnel), and
the ids their events get. Pure functions and small classes, shared by the generator and its tests."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import numpy as np

from medallion.contract import EVENT_TYPES

HOUR_MS = 3_600_000

# Relative traffic by hour of day (UTC) and by weekday (Monday first).
DAILY = (0.45, 0.35, 0.28, 0.25, 0.25, 0.30, 0.45, 0.65, 0.80, 0.90, 0.95, 1.00,
         1.05, 1.00, 0.95, 0.95, 1.00, 1.10, 1.25, 1.40, 1.45, 1.30, 1.00, 0.70)  # fmt: skip
WEEKLY = (0.92, 0.90, 0.93, 0.96, 1.05, 1.15, 1.10)

START, END = "start", "end"
FUNNEL: dict[str, dict[str, float]] = {
    START: {"page_view": 0.75, "search": 0.25},
    "page_view": {"page_view": 0.30, "search": 0.12, "click": 0.38, END: 0.20},
    "search": {"page_view": 0.15, "search": 0.15, "click": 0.55, END: 0.15},
    "click": {"page_view": 0.30, "search": 0.08, "click": 0.22, "add_to_cart": 0.22, END: 0.18},
    "add_to_cart": {"page_view": 0.15, "search": 0.05, "click": 0.20, "purchase": 0.35,
                    "remove_from_cart": 0.10, END: 0.15},
    "remove_from_cart": {"page_view": 0.30, "click": 0.30, END: 0.40},
    "purchase": {"page_view": 0.30, "click": 0.10, END: 0.60},
}  # fmt: skip
"""Next-event probabilities. Removal and purchase are reachable only from add_to_cart, so the cart is
never empty when they happen."""

T = TypeVar("T")
START_STATE = len(EVENT_TYPES)  # index of START in the funnel tables; END is -1
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


def funnel_tables() -> list[list[int]]:
    """Per state (event type index, then START), the 256-entry table of next states (-1 = END)."""
    index = {name: i for i, name in enumerate(EVENT_TYPES)} | {END: -1}
    order = [*EVENT_TYPES, START]
    return [draw_table([(index[k], p) for k, p in FUNNEL[state].items()], 8) for state in order]


def expected_type_shares() -> dict[str, float]:
    """Share of each event type among valid events in the long run (expected visits of the funnel's
    absorbing chain, from the same quantized tables the generator draws from)."""
    tables = funnel_tables()
    visits = [0.0] * START_STATE
    mass = [0.0] * (START_STATE + 1)
    mass[START_STATE] = 1.0
    for _ in range(500):  # sum of entry * Q^k; converges fast (every state ends with p >= 0.15)
        step = [0.0] * (START_STATE + 1)
        for state, m in enumerate(mass):
            if m:
                for nxt in tables[state]:
                    if nxt >= 0:
                        step[nxt] += m / 256
        mass = step
        for i in range(START_STATE):
            visits[i] += mass[i]
    total = sum(visits)
    return {name: visits[i] / total for i, name in enumerate(EVENT_TYPES)}


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
