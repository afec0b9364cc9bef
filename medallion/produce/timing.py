"""When new events happen, and how their times are written.

- Historical runs spread the n event times over ``[start, end)`` with daily and weekly seasonality
  (`model.Timeline`: the order statistics of n draws, made in ascending order on the fly: no sort,
  constant memory). As many sessions run concurrently as keeps a session's events about
  `sessions.IN_SESSION_GAP_MS` apart at that hour's rate.
- Live runs take the wall clock (``clock``) as each event is made; the expected rate, if known, sets
  how many sessions interleave.

`NewEvents` is the plan of the new events, a block at a time: each one's time, session limit, id and
how long it is held back (`late`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np

from medallion.produce.mix import BLOCK
from medallion.produce.model import Ids, Timeline
from medallion.produce.sessions import IN_SESSION_GAP_MS

LIVE_SESSIONS_WITHOUT_RATE = 64
"""Concurrent sessions of a live run whose rate is not known."""


class HistoricalTimes:
    """The times of ``n`` events over ``timeline``, ascending, with the concurrent sessions at each."""

    def __init__(self, timeline: Timeline, np_rng: np.random.Generator, n: int, max_sessions: int) -> None:
        self._sessions = np.clip(np.rint(IN_SESSION_GAP_MS * timeline.rates(n)), 1, max_sessions)
        self._blocks = timeline.times(np_rng, n, BLOCK)

    def block(self, size: int) -> tuple[list[int], list[int]]:
        """The next ``size`` times (epoch ms; ``size`` as the blocks of `Timeline.times`) and limits."""
        times, buckets = next(self._blocks)
        return times.tolist(), self._sessions[buckets].astype(int).tolist()


class LiveTimes:
    """Event times from ``clock`` (epoch seconds), taken as each event is made."""

    def __init__(self, clock: Callable[[], float], rate: float, max_sessions: int) -> None:
        self._clock = clock
        sessions = round(IN_SESSION_GAP_MS / 1000 * rate) if rate > 0 else LIVE_SESSIONS_WITHOUT_RATE
        self._limit = max(1, min(max_sessions, sessions))

    def block(self, size: int) -> tuple[list[int], list[int]]:
        """Placeholder times (`now` gives the real one) and the session limit, for ``size`` events."""
        return [0] * size, [self._limit] * size

    def now(self) -> int:
        return int(self._clock() * 1000)


class NewEvents:
    """The new events still to make, in order (``total`` of them, or without end when None)."""

    def __init__(
        self,
        ids: Ids,
        total: int | None,
        times: HistoricalTimes | LiveTimes,
        delays: Iterator[list[int]],
    ) -> None:
        self._ids, self._total, self._times, self._delays = ids, total, times, delays
        self._plan: list[tuple[int, int, bytes, int]] = []
        self._next = 0
        self.made = 0

    def peek(self) -> tuple[int, int, bytes, int] | None:
        """The next event's (time ms, session limit, event id, delay ms), or None once all are made."""
        if self._next == len(self._plan) and (self._total is None or self.made < self._total):
            size = BLOCK if self._total is None else min(BLOCK, self._total - self.made)
            ids, delays = self._ids.block(self.made, size), next(self._delays)
            times, limits = self._times.block(size)
            self._plan = list(zip(times, limits, ids, delays, strict=True))
            self._next = 0
        return self._plan[self._next] if self._next < len(self._plan) else None

    def advance(self) -> None:
        """The event `peek` gave is made."""
        self._next += 1
        self.made += 1


class TimeText:
    """``event_time`` as the contract writes it (ISO 8601, UTC, milliseconds, ``Z``), from epoch ms;
    the minute is formatted once per minute, the rest looked up."""

    def __init__(self) -> None:
        self._sec_ms = [f"{sec:02d}.{ms:03d}Z".encode() for sec in range(60) for ms in range(1000)]
        self._minute, self._minute_text = -1, b""

    def parts(self, t: int) -> tuple[bytes, bytes]:
        """``YYYY-MM-DDTHH:MM:`` and ``SS.mmmZ`` of ``t``."""
        minute, ms = divmod(t, 60_000)
        if minute != self._minute:
            self._minute_text = time.strftime("%Y-%m-%dT%H:%M:", time.gmtime(minute * 60)).encode()
            self._minute = minute
        return self._minute_text, self._sec_ms[ms]
