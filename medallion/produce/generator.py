"""The synthetic clickstream: deterministic for a seed, shaped like real traffic, fast enough for load tests.

`EventStream` puts together one named piece per concern; each module says how its part behaves:

- `timing`: when new events happen (seasonality over a time range, or the wall clock) and their text;
- `sessions`: which user's session an event belongs to, and when a session ends;
- `model`: the funnel (the next event type, a Markov chain over `EventType`), time-of-day shapes, ids;
- `content`: the event's page, item, search or cart line; `prices`: the price and quantity;
- `mix`: which record comes next (new, duplicate, bad; exact shares with a count) and duplicates;
- `late`: late events, held back and sent later with their original time;
- `bad`: bad records, one class per way real producers get it wrong.

All draws come from one `random.Random` and one numpy generator seeded from ``seed``, in an order that
depends on nothing else, so a seed (with the same settings and batch size) gives the same records.

Speed: an event is assembled from JSON fragments prepared once per user, device, item and session, so
the hot path joins bytes and never calls ``json.dumps``; ids, times, record kinds and late delays are
drawn with numpy a block at a time.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from medallion.core.contract import EVENT_TYPES, SCHEMA_VERSION
from medallion.produce.bad import BadRecords
from medallion.produce.content import Items, Pages
from medallion.produce.late import HISTORICAL_LATENESS_MS, LIVE_LATENESS_MS, LateEvents, late_delays
from medallion.produce.lookups import World
from medallion.produce.mix import Duplicates, Quotas, Record, RecordKind, record_kinds
from medallion.produce.model import END, EventType, Ids, Timeline, funnel_tables
from medallion.produce.prices import Prices
from medallion.produce.sessions import SESSION_GAP_MS, Sessions
from medallion.produce.timing import HistoricalTimes, LiveTimes, NewEvents, TimeText

__all__ = ["SESSION_GAP_MS", "EventStream", "Record", "StreamStats", "generate"]

_BAD = RecordKind.BAD


@dataclass
class StreamStats:
    """What a stream has yielded so far. ``by_event_type`` counts each valid event once; its
    duplicates are counted apart, so records = sum(by_event_type) + duplicates + sum(by_bad_class)."""

    by_event_type: dict[str, int] = field(default_factory=dict)
    by_bad_class: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    late: int = 0

    @property
    def records(self) -> int:
        return sum(self.by_event_type.values()) + self.duplicates + sum(self.by_bad_class.values())


class EventMaker:
    """Makes a new event at a time: picks its session, steps the session's funnel, writes the JSON."""

    def __init__(self, sessions: Sessions, pages: Pages, rng: random.Random) -> None:
        self._sessions, self._content, self._bits = sessions, pages.by_type, rng.getrandbits
        self._funnel = funnel_tables()
        self._head = f'{{"schema_version":{SCHEMA_VERSION},"event_id":"'.encode()
        self._type_text = {t: f'","event_type":"{t.value}","event_time":"'.encode() for t in EventType}
        self._time = TimeText()

    def make(self, t: int, limit: int, event_id: bytes) -> tuple[Record, EventType]:
        """The event ``event_id`` at ``t`` (epoch ms), with at most ``limit`` sessions open."""
        sessions, bits = self._sessions, self._bits
        while True:  # a session whose funnel goes on (one that ends is closed, and another picked)
            s = sessions.pick(t, limit)
            event_type = self._funnel[s.state][bits(8)]
            if event_type is not END:
                break
            sessions.close(s)
        extra, page, ref = self._content[event_type](s)
        s.state, s.last_t = event_type, t
        minute, second = self._time.parts(t)
        value = b"".join(
            (self._head, event_id, self._type_text[event_type], minute, second, b'",', extra, s.static, s.ref,
             b',"page":"', page, b'"}}')
        )  # fmt: skip
        s.ref = ref
        return (s.key, value, None), event_type


class EventStream:
    """Records for one run: ``count`` of them (0 = without end, live only), deterministic for ``seed``.

    Historical when ``start``/``end`` are given (event times spread over that range), live otherwise
    (event times from ``clock``; ``live_rate`` events/s, if known, sets how many sessions interleave).
    """

    def __init__(
        self,
        world: World,
        *,
        count: int,
        seed: int,
        start: datetime | None = None,
        end: datetime | None = None,
        bad_ratio: float = 0.0,
        duplicate_ratio: float = 0.0,
        late_ratio: float = 0.0,
        live_rate: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for name, value in (
            ("bad_ratio", bad_ratio),
            ("duplicate_ratio", duplicate_ratio),
            ("late_ratio", late_ratio),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value}")
        if duplicate_ratio > 0.5:
            raise ValueError(f"duplicate_ratio must be at most 0.5, not {duplicate_ratio}")
        if (start is None) != (end is None):
            raise ValueError("give both start and end (historical) or neither (live)")
        if count < 0 or (count == 0 and start is not None):
            raise ValueError("count must be positive (0, without end, only for live event times)")
        self.world, self.count, self.seed = world, count, seed
        self.bad_ratio, self.duplicate_ratio, self.late_ratio = bad_ratio, duplicate_ratio, late_ratio
        self.timeline = Timeline(_ms(start), _ms(end)) if start is not None and end is not None else None
        self.live_rate, self.clock = live_rate, clock
        self.quotas = Quotas.of(count, bad_ratio, duplicate_ratio, late_ratio) if count else None
        """Exact numbers of each kind of record (None without a count)."""
        self._yielded = StreamStats(dict.fromkeys(EVENT_TYPES, 0))

    def stats(self) -> StreamStats:
        """The counts of the records in the batches yielded so far."""
        return self._yielded

    def __iter__(self) -> Iterator[Record]:
        for batch in self.batches():
            yield from batch

    def batches(self, size: int = 1024) -> Iterator[list[Record]]:
        """The records in lists of ``size`` (the last may be shorter); `stats` counts the batches yielded.
        Live event times are taken as each record is made, so keep ``size`` small when pacing."""
        rng = random.Random(f"{self.seed}:events")
        np_rng = np.random.default_rng(rng.getrandbits(64))
        world, quotas = self.world, self.quotas
        # Construction order is draw order: event ids, session ids, then the bad records' ids and turns.
        prices = Prices(world, rng)
        event_ids = Ids(rng)
        sessions = Sessions(world, rng, prices.user_currency)
        bad = BadRecords(rng)
        maker = EventMaker(sessions, Pages(world, rng, Items(world, rng), prices), rng)
        n_new = quotas.new if quotas else 0
        times: HistoricalTimes | LiveTimes
        if self.timeline is not None:
            times, lateness = (
                HistoricalTimes(self.timeline, np_rng, n_new, sessions.max_open),
                HISTORICAL_LATENESS_MS,
            )
        else:
            times, lateness = LiveTimes(self.clock, self.live_rate, sessions.max_open), LIVE_LATENESS_MS
        delays = late_delays(np_rng, quotas.late if quotas else None, n_new, self.late_ratio, lateness)
        new = NewEvents(event_ids, n_new if quotas else None, times, delays)
        now = times.now if isinstance(times, LiveTimes) else None  # live: event times as events are made
        late, duplicates = LateEvents(), Duplicates(rng)
        by_type = dict.fromkeys(EventType, 0)
        latest: Record = (sessions.first_key, b"", None)  # the last valid event sent (none yet)

        def next_new() -> tuple[Record, EventType]:
            """A new event: a held-back one that is due, or the next one made (unless held back itself)."""
            while True:
                planned = new.peek()
                if planned is None:  # every new event is made: only held-back ones remain
                    return late.release()
                t, limit, event_id, delay = planned
                if now is not None:
                    t = now()
                if late.due(t):
                    return late.release()
                record, event_type = maker.make(t, limit, event_id)
                new.advance()
                if not delay:
                    return record, event_type
                late.hold(t + delay, new.made, record, event_type)

        make_bad, remember = bad.make, duplicates.remember
        for kinds in record_kinds(np_rng, size, quotas, self.bad_ratio, self.duplicate_ratio):
            out: list[Record] = []
            for kind in kinds:
                if kind:  # the rare kinds
                    if kind == _BAD:
                        out.append(make_bad(latest))
                        continue
                    resent = duplicates.instead_of_duplicate()
                else:
                    resent = duplicates.instead_of_new() if duplicates.owed else None
                if resent is not None:
                    out.append(resent)
                    continue
                record, event_type = next_new()
                by_type[event_type] += 1
                latest = record
                remember(record, new.made)
                out.append(record)
            self._yielded = StreamStats(
                by_event_type={t: by_type[EventType(t)] for t in EVENT_TYPES},
                by_bad_class={k: v for k, v in bad.made.items() if v},
                duplicates=duplicates.sent,
                late=late.sent,
            )
            yield out


def _ms(value: datetime | None) -> int:
    if value is None:
        raise ValueError("no time given")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def generate(world: World, **kwargs: Any) -> tuple[list[Record], StreamStats]:
    """All records of an `EventStream` (for tests and small runs) and its final stats."""
    stream = EventStream(world, **kwargs)
    records = list(stream)
    return records, stream.stats()
