"""The synthetic clickstream: deterministic for a seed, shaped like real traffic, fast enough for load tests.

- Time. Historical events are spread over ``[start, end)`` with daily and weekly seasonality: the n event
  times are the order statistics of n draws from that density, produced in ascending order on the fly
  (no sort, constant memory). Live events carry the wall clock.
- Sessions. A user's session is a walk through `model.FUNNEL` (a Markov chain over event types: views >
  clicks > carts > purchases); sessions run concurrently, as many as keeps a session's events about
  `IN_SESSION_GAP_MS` apart, and one that has been idle `SESSION_GAP_MS` is closed.
- Items follow a Zipf law; a search steers the next clicks to its category; carts hold what was added,
  and a purchase or a removal takes an item out of the cart.
- Late events are held back and sent later with their original time; duplicates are exact resends
  (same bytes, same event_id) of a recent event; bad records are made by `medallion.produce.bad`.
- With a count, the numbers of bad, duplicate and late records are exactly the configured shares
  (rounded), placed uniformly at random (block by block, hypergeometric), so summaries and tests
  reconcile exactly.

Speed: an event is assembled from JSON fragments prepared once per user, device, item and session, so
the hot path formats one string and never calls ``json.dumps``; ids, times, record kinds and late
delays are drawn with numpy a block at a time.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from medallion.contract import BAD_RECORD_HEADER, EVENT_TYPES, SCHEMA_VERSION
from medallion.produce.bad import BAD_CLASSES, make_bad
from medallion.produce.lookups import ADJECTIVES as _ADJECTIVES
from medallion.produce.lookups import CATEGORIES, World, local_price
from medallion.produce.model import HOUR_MS, START_STATE, Ids, Timeline, draw_table, funnel_tables

SESSION_GAP_MS = 30 * 60_000
IN_SESSION_GAP_MS = 45_000
SITE = "https://shop.example.com"
ZIPF_EXPONENT = 1.1
ITEM_PAGE_SHARE = 0.6
HISTORICAL_LATENESS_MS = (60_000, 6 * HOUR_MS)
LIVE_LATENESS_MS = (1_000, 60_000)

REFERRERS = ((None, 0.40), ("https://www.google.com/", 0.35), ("https://www.bing.com/", 0.05),
             ("https://www.facebook.com/", 0.08), ("https://t.co/", 0.04),
             ("https://newsletter.example.com/weekly", 0.08))  # fmt: skip
QUANTITIES = ((1, 0.70), (2, 0.20), (3, 0.06), (4, 0.03), (5, 0.01))

Record = tuple[bytes, bytes, list[tuple[str, str | bytes | None]] | None]
"""One Kafka record: key, value, headers (None for a valid event)."""

_S = START_STATE
BLOCK = 4096  # unique events whose ids and times are made together (numpy)
RING = 4096  # recent events a duplicate is drawn from
FOREVER = 1 << 62
UNIQUE, DUPLICATE, BAD = 0, 1, 2  # record kinds (the hot loop tests `if kind:` for the rare two)
CART_PAGE, CART_REF = b"/cart", f'"{SITE}/cart"'.encode()
CHECKOUT_PAGE, CHECKOUT_REF = b"/checkout/complete", f'"{SITE}/checkout/complete"'.encode()


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


class _Session:
    __slots__ = (
        "user",
        "key",
        "static",
        "ref",
        "state",
        "last_t",
        "last_item",
        "focus",
        "cart",
        "cur",
        "pos",
    )

    user: int
    key: bytes
    static: bytes  # user_id, session_id, device, geo, user, and context up to the referrer
    ref: bytes
    state: int
    last_t: int
    last_item: int
    focus: int
    cart: list[tuple[int, int]]
    cur: int
    pos: int


class _Fragments:
    """The JSON pieces of events, prepared once from the world: UTF-8 bytes, joined with ``b"".join``
    (three times faster than formatting a str and encoding it, and confluent-kafka takes bytes as they
    are). The per-user blobs stay str until a session joins them to its id."""

    def __init__(self, world: World) -> None:
        dumps = json.dumps
        compact: dict[str, Any] = {"ensure_ascii": False, "separators": (",", ":")}
        self.keys = [u.user_id.encode() for u in world.users]
        self.user_ids = [f'"user_id":"{u.user_id}","session_id":"' for u in world.users]
        self.blobs = []
        for u in world.users:
            geo = dumps({"country": u.country, "city": u.city, "lat": u.lat, "lon": u.lon}, **compact)
            person = dumps({"email": u.email, "phone": u.phone, "name": u.name}, **compact)
            self.blobs.append(
                [
                    f'"device":{dumps({"os": d.os, "browser": d.browser, "type": d.type}, **compact)},'
                    f'"geo":{geo},"user":{person},'
                    f'"context":{{"ip":"{d.ip}","user_agent":{dumps(d.user_agent)},"referrer":'
                    for d in u.devices
                ]
            )
        self.currencies = sorted({u.currency for u in world.users})
        self.user_currency = [self.currencies.index(u.currency) for u in world.users]
        self.user_table = draw_table([(i, u.activity) for i, u in enumerate(world.users)], 16)
        self.item_ids = [f'"item_id":"{it.item_id}",'.encode() for it in world.items]
        self.item_pages = [f"/p/{it.item_id}".encode() for it in world.items]
        self.item_refs = [f'"{SITE}/p/{it.item_id}"'.encode() for it in world.items]
        weight = [1.0 / it.popularity_rank**ZIPF_EXPONENT for it in world.items]
        self.zipf = draw_table(list(enumerate(weight)), 16)
        categories = list(CATEGORIES)
        in_category = [
            [(i, weight[i]) for i, it in enumerate(world.items) if it.category == c] for c in categories
        ]
        self.category_items = [draw_table(pairs or [(0, 1.0)], 12) for pairs in in_category]
        self.category_table = draw_table(
            [(k, sum(w for _, w in pairs) or 1e-9) for k, pairs in enumerate(in_category)], 10
        )
        self.queries = []
        for c in categories:
            _, _, brands, nouns = CATEGORIES[c]
            texts = [
                *nouns,
                *(f"{a} {n}" for a in _ADJECTIVES for n in nouns),
                *(f"{b} {n}" for b in brands for n in nouns),
            ]
            pages = ["/search?q=" + q.replace(" ", "+") for q in texts]
            self.queries.append(
                [
                    (f'"search_query":"{q}",'.encode(), p.encode(), f'"{SITE}{p}"'.encode())
                    for q, p in zip(texts, pages, strict=True)
                ]
            )
        self.plain_pages = [
            (p.encode(), f'"{SITE}{p}"'.encode())
            for p in ("/", "/deals", "/account", *(f"/c/{c}" for c in categories))
        ]
        self.sec_ms = [f"{sec:02d}.{ms:03d}Z".encode() for sec in range(60) for ms in range(1000)]
        self.referrers = draw_table(
            [(b"null" if r is None else f'"{r}"'.encode(), w) for r, w in REFERRERS], 8
        )
        self.quantities = draw_table(list(QUANTITIES), 8)
        self.qty_currency = [[f'{q},"currency":"{c}",'.encode() for q in range(6)] for c in self.currencies]
        self._world = world
        self._prices: dict[int, bytes] = {}

    def price(self, item: int, cur: int) -> bytes:
        """``"item_id":"i_…","price":P,"quantity":`` for an item in a currency (cached)."""
        key = item * 16 + cur
        text = self._prices.get(key)
        if text is None:
            value = local_price(self._world, self._world.items[item], self.currencies[cur])
            number = str(int(value)) if value.is_integer() else repr(value)
            text = self._prices[key] = self.item_ids[item] + f'"price":{number},"quantity":'.encode()
        return text


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
        self._types = [0] * _S
        self._bad = dict.fromkeys(BAD_CLASSES, 0)
        self._dups_late = [0, 0]
        self._yielded = StreamStats(dict.fromkeys(EVENT_TYPES, 0))

    def stats(self) -> StreamStats:
        """The counts of the records in the batches yielded so far."""
        return self._yielded

    def _count_yielded(self) -> None:
        self._yielded = StreamStats(
            by_event_type=dict(zip(EVENT_TYPES, self._types, strict=True)),
            by_bad_class={k: v for k, v in self._bad.items() if v},
            duplicates=self._dups_late[0],
            late=self._dups_late[1],
        )

    def __iter__(self) -> Iterator[Record]:
        for batch in self.batches():
            yield from batch

    def _quotas(self) -> tuple[int, int, int, int]:
        """Exact numbers of bad, duplicate, unique and late records for a counted run."""
        n_bad = round(self.count * self.bad_ratio)
        n_valid = self.count - n_bad
        n_dup = min(round(n_valid * self.duplicate_ratio), max(0, n_valid - 1))
        n_unique = n_valid - n_dup
        return n_bad, n_dup, n_unique, round(n_unique * self.late_ratio)

    def batches(self, size: int = 1024) -> Iterator[list[Record]]:  # noqa: C901 - the hot loop, one piece
        """The records in lists of ``size`` (the last may be shorter); `stats` counts the batches yielded.
        Live event times are taken as each record is made, so keep ``size`` small when pacing."""
        rng = random.Random(f"{self.seed}:events")
        np_rng = np.random.default_rng(rng.getrandbits(64))
        draw, bits = rng.random, rng.getrandbits
        frag = _Fragments(self.world)
        tables = funnel_tables()
        type_parts = [f'","event_type":"{t}","event_time":"'.encode() for t in EVENT_TYPES]
        head = f'{{"schema_version":{SCHEMA_VERSION},"event_id":"'.encode()
        join = b"".join
        event_ids, session_ids, bad_ids = Ids(rng), Ids(rng), Ids(rng)
        bad_order = list(BAD_CLASSES)
        rng.shuffle(bad_order)
        keys, user_ids, blobs, user_table = frag.keys, frag.user_ids, frag.blobs, frag.user_table
        referrers, zipf, category_items, category_table = (
            frag.referrers,
            frag.zipf,
            frag.category_items,
            frag.category_table,
        )
        item_ids, item_pages, item_refs, plain_pages = (
            frag.item_ids,
            frag.item_pages,
            frag.item_refs,
            frag.plain_pages,
        )
        price, qty_currency, quantities, sec_ms = frag.price, frag.qty_currency, frag.quantities, frag.sec_ms
        queries, user_currency, n_plain = frag.queries, frag.user_currency, len(frag.plain_pages)
        max_sessions = max(1, len(keys) // 2)
        active: list[_Session] = []
        busy = bytearray(len(keys))
        sessions_made = 0
        minute_now, minute_text = -1, b""

        def end_session(s: _Session) -> None:
            last = active.pop()
            if last is not s:
                active[s.pos] = last
                last.pos = s.pos
            busy[s.user] = 0

        def new_session(t: int) -> _Session:
            nonlocal sessions_made
            u = user_table[bits(16)]
            for _ in range(8):  # a user has one session at a time; at most half of them are busy
                if not busy[u]:
                    break
                u = user_table[bits(16)]
            else:
                u = busy.find(0, u) if busy.find(0, u) >= 0 else busy.find(0)
            sessions_made += 1
            devices = blobs[u]
            s = _Session()
            s.user, s.key, s.cur, s.pos = u, keys[u], user_currency[u], len(active)
            device = devices[0 if len(devices) == 1 or draw() < 0.7 else 1]  # most sessions: the main device
            s.static = f'{user_ids[u]}s_{session_ids.one(sessions_made):012x}",{device}'.encode()
            s.ref = referrers[bits(8)]
            s.state, s.last_t, s.last_item, s.focus, s.cart = _S, t, -1, -1, []
            active.append(s)
            busy[u] = 1
            return s

        def make_event(t: int, limit: int, event_id: bytes) -> tuple[Record, int]:
            nonlocal minute_now, minute_text
            while True:
                n = len(active)
                if n < limit:
                    s = new_session(t)
                else:
                    s = active[int(draw() * n)]
                    if t - s.last_t > SESSION_GAP_MS:
                        end_session(s)
                        continue
                ti = tables[s.state][bits(8)]
                if ti >= 0:
                    break
                end_session(s)
            if ti == 2 or (ti == 0 and draw() < ITEM_PAGE_SHARE):  # click, or a product page view
                if s.focus >= 0 and draw() < (0.7 if ti == 2 else 0.5):
                    item = s.last_item = category_items[s.focus][bits(12)]
                else:
                    item = s.last_item = zipf[bits(16)]
                extra, page, ref = item_ids[item], item_pages[item], item_refs[item]
            elif ti == 0:
                page, ref = plain_pages[int(draw() * n_plain)]
                extra = b'"item_id":null,'
            elif ti == 1:  # search: later clicks lean to the searched category
                s.focus = category_table[bits(10)]
                found = queries[s.focus]
                extra, page, ref = found[int(draw() * len(found))]
            elif ti == 3:  # add_to_cart
                item = s.last_item if s.last_item >= 0 and draw() < 0.85 else zipf[bits(16)]
                qty = quantities[bits(8)]
                s.cart.append((item, qty))
                extra, page, ref = (
                    price(item, s.cur) + qty_currency[s.cur][qty],
                    item_pages[item],
                    item_refs[item],
                )
            else:  # remove_from_cart (4) takes a random cart line, purchase (5) the newest
                item, qty = s.cart.pop(int(draw() * len(s.cart)) if ti == 4 else -1)
                extra = price(item, s.cur) + qty_currency[s.cur][qty]
                page, ref = (CART_PAGE, CART_REF) if ti == 4 else (CHECKOUT_PAGE, CHECKOUT_REF)
            s.state, s.last_t = ti, t
            minute, ms = divmod(t, 60_000)
            if minute != minute_now:
                minute_text = time.strftime("%Y-%m-%dT%H:%M:", time.gmtime(minute * 60)).encode()
                minute_now = minute
            value = join(
                (head, event_id, type_parts[ti], minute_text, sec_ms[ms], b'",', extra, s.static, s.ref,
                 b',"page":"', page, b'"}}')
            )  # fmt: skip
            s.ref = ref
            return (s.key, value, None), ti

        types, bad_counts, dups_late = self._types, self._bad, self._dups_late
        last_event: Record = (keys[0], b"", None)

        def bad_record() -> Record:
            made = sum(bad_counts.values())
            kind = bad_order[made % len(bad_order)]
            key, text, _ = last_event
            base = json.loads(text) if text else {"schema_version": SCHEMA_VERSION, "event_type": "page_view"}
            base["event_id"] = bad_ids.uuid(made + 1)
            bad_counts[kind] += 1
            return key, make_bad(kind, base, rng, copy_event=False), [(BAD_RECORD_HEADER, kind.encode())]

        timeline, clock = self.timeline, self.clock
        lateness = HISTORICAL_LATENESS_MS if timeline is not None else LIVE_LATENESS_MS
        concurrency = np.ones(1)
        blocks: Iterator[tuple[np.ndarray, np.ndarray]] = iter(())
        live_limit = round(IN_SESSION_GAP_MS / 1000 * self.live_rate) if self.live_rate > 0 else 64
        live_limit = max(1, min(max_sessions, live_limit))
        n_unique = self._quotas()[2] if self.count else 0
        if timeline is not None:
            concurrency = np.clip(np.rint(IN_SESSION_GAP_MS * timeline.rates(n_unique)), 1, max_sessions)
            blocks = timeline.times(np_rng, n_unique, BLOCK)
        late_blocks = self._late_flags(np_rng, n_unique, lateness)
        plan: list[tuple[int, int, bytes, int]] = []  # the block's unique events: time, sessions, id, delay
        k = n_plan = 0
        ring: list[Record] = []
        held: list[tuple[int, int, Record, int]] = []
        generated = 0
        owed_duplicate = False  # a duplicate drawn before any event existed is sent after the first one
        bad_kind, live, counted = BAD, timeline is None, bool(self.count)
        for kinds in self._kinds(np_rng, size):
            out: list[Record] = []
            for kind in kinds:
                if kind:  # the rare kinds
                    if kind == bad_kind:
                        out.append(bad_record())
                        continue
                    if ring:
                        dups_late[0] += 1
                        out.append(ring[int(draw() * len(ring))])
                        continue
                    owed_duplicate = True
                elif owed_duplicate and ring:
                    owed_duplicate = False
                    dups_late[0] += 1
                    out.append(ring[int(draw() * len(ring))])
                    continue
                while True:  # a unique event: a held-back one that is due, or a new one (perhaps held back)
                    if k == n_plan and (not counted or generated < n_unique):
                        block = min(BLOCK, n_unique - generated) if counted else BLOCK
                        ids, delays = event_ids.block(generated, block), next(late_blocks)
                        if live:
                            plan = list(zip(itertools.repeat(0), itertools.repeat(live_limit), ids, delays))
                        else:
                            times, buckets = next(blocks)
                            limits = concurrency[buckets].astype(int).tolist()
                            plan = list(zip(times.tolist(), limits, ids, delays, strict=True))
                        k, n_plan = 0, len(plan)
                    if k == n_plan:  # every unique event is made: only held-back ones remain
                        _, _, rec, ti = heapq.heappop(held)
                        dups_late[1] += 1
                        break
                    t, limit, event_id, delay = plan[k]
                    if live:
                        t = int(clock() * 1000)
                    if held and held[0][0] <= t:
                        _, _, rec, ti = heapq.heappop(held)
                        dups_late[1] += 1
                        break
                    rec, ti = make_event(t, limit, event_id)
                    generated += 1
                    k += 1
                    if delay:
                        heapq.heappush(held, (t + delay, generated, rec, ti))
                        continue
                    break
                types[ti] += 1
                last_event = rec
                if len(ring) < RING:
                    ring.append(rec)
                else:
                    ring[generated & (RING - 1)] = rec
                out.append(rec)
            self._count_yielded()
            yield out

    def _kinds(self, np_rng: np.random.Generator, size: int) -> Iterator[list[int]]:
        """Each record's kind (UNIQUE, DUPLICATE, BAD), in lists of ``size``. With a count, the kinds are
        a uniformly random arrangement of the exact quotas, drawn block by block (hypergeometric)."""
        if not self.count:
            bad, dup = self.bad_ratio, self.bad_ratio + (1 - self.bad_ratio) * self.duplicate_ratio
            while True:
                u = np_rng.random(size)
                yield np.where(u < bad, BAD, np.where(u < dup, DUPLICATE, UNIQUE)).tolist()
        n_bad, n_dup, n_unique, _ = self._quotas()
        while n_bad + n_dup + n_unique:
            left = n_bad + n_dup + n_unique
            block = min(max(size, BLOCK // size * size), left)  # whole batches, about BLOCK records
            bad = int(np_rng.hypergeometric(n_bad, left - n_bad, block)) if n_bad else 0
            dup = int(np_rng.hypergeometric(n_dup, n_unique, block - bad)) if n_dup and block > bad else 0
            kinds = np.full(block, UNIQUE, np.int8)
            kinds[:bad], kinds[bad : bad + dup] = BAD, DUPLICATE
            np_rng.shuffle(kinds)
            n_bad, n_dup, n_unique = n_bad - bad, n_dup - dup, n_unique - (block - bad - dup)
            flat = kinds.tolist()
            for first in range(0, block, size):
                yield flat[first : first + size]

    def _late_flags(
        self, np_rng: np.random.Generator, n_unique: int, lateness: tuple[int, int]
    ) -> Iterator[list[int]]:
        """Per block of unique events, how long each is held back (ms; 0 = sent on time). With a count,
        exactly the late quota is held back; delays are log-uniform over ``lateness``."""
        n_late, left = (self._quotas()[3], n_unique) if self.count else (0, 0)
        while True:
            if self.count:
                block = min(BLOCK, left) or 1
                late = int(np_rng.hypergeometric(n_late, left - n_late, block)) if n_late and left else 0
                flags = np.zeros(block, bool)
                flags[:late] = True
                np_rng.shuffle(flags)
                n_late, left = n_late - late, left - block
            else:
                flags = np_rng.random(BLOCK) < self.late_ratio
            delays = np.exp(np_rng.random(len(flags)) * np.log(lateness[1] / lateness[0])) * lateness[0]
            yield np.where(flags, delays.astype(np.int64), 0).tolist()


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
