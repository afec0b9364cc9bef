"""Late events: new events held back and sent later with their original event time.

A late event is made when its time comes (so its session and content are those of its time) and then
held for a delay drawn log-uniformly over `HISTORICAL_LATENESS_MS` or `LIVE_LATENESS_MS`; it is sent as
soon as the stream reaches its time plus that delay. With a count, exactly the late quota is held back
(placed block by block, hypergeometric); without one, each event is late with the configured share.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

import numpy as np

from medallion.produce.mix import BLOCK, Record
from medallion.produce.model import HOUR_MS, EventType

HISTORICAL_LATENESS_MS = (60_000, 6 * HOUR_MS)
LIVE_LATENESS_MS = (1_000, 60_000)


def late_delays(
    np_rng: np.random.Generator, n_late: int | None, n_new: int, late_ratio: float, lateness: tuple[int, int]
) -> Iterator[list[int]]:
    """Per block of `BLOCK` new events, how long each is held back (ms; 0 = sent on time): exactly
    ``n_late`` of the ``n_new`` events when ``n_late`` is given, else each with ``late_ratio``."""
    left = n_new
    while True:
        if n_late is not None:
            block = min(BLOCK, left) or 1
            late = int(np_rng.hypergeometric(n_late, left - n_late, block)) if n_late and left else 0
            flags = np.zeros(block, bool)
            flags[:late] = True
            np_rng.shuffle(flags)
            n_late, left = n_late - late, left - block
        else:
            flags = np_rng.random(BLOCK) < late_ratio
        delays = np.exp(np_rng.random(len(flags)) * np.log(lateness[1] / lateness[0])) * lateness[0]
        yield np.where(flags, delays.astype(np.int64), 0).tolist()


class LateEvents:
    """The events held back, each due at its event time plus its delay."""

    def __init__(self) -> None:
        self._held: list[tuple[int, int, Record, EventType]] = []
        self.sent = 0

    def hold(self, due: int, made: int, record: Record, event_type: EventType) -> None:
        """Hold ``record`` (the ``made``-th new event: ties go in the order events were made) until ``due``."""
        heapq.heappush(self._held, (due, made, record, event_type))

    def due(self, t: int) -> bool:
        """Whether an event is due at time ``t`` (ms)."""
        return bool(self._held) and self._held[0][0] <= t

    def release(self) -> tuple[Record, EventType]:
        """The held event due first."""
        _, _, record, event_type = heapq.heappop(self._held)
        self.sent += 1
        return record, event_type
