"""The synthetic clickstream: valid events, exact shares, realistic structure, determinism."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from medallion.core.contract import BAD_RECORD_HEADER, COMMERCE_EVENT_TYPES, EVENT_TYPES, validate_payload
from medallion.produce.bad import BAD_CLASSES, EXPECTED_REASONS, make_bad
from medallion.produce.generator import SESSION_GAP_MS, EventStream, Record, StreamStats, generate
from medallion.produce.lookups import World, build_world, local_price
from medallion.produce.model import (
    DAILY,
    END,
    START,
    EventType,
    Ids,
    Timeline,
    expected_type_shares,
    funnel_tables,
)

FROM = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
UNTIL = FROM + timedelta(days=7)
COUNT = 30_000
RATIOS = {"bad_ratio": 0.02, "duplicate_ratio": 0.03, "late_ratio": 0.04}
NOW = datetime(2026, 11, 26, tzinfo=UTC)


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(seed=7, users=300, items=1500)


@pytest.fixture(scope="module")
def run(world: World) -> tuple[list[Record], StreamStats]:
    return generate(world, count=COUNT, seed=7, start=FROM, end=UNTIL, **RATIOS)


_parsed: dict[int, tuple[list[Record], list[dict]]] = {}  # holding the run keeps its id unique


def valid(records: list[Record]) -> list[dict]:
    """The valid events of a run, parsed (once per run)."""
    if id(records) not in _parsed:
        _parsed[id(records)] = (records, [json.loads(v) for _, v, headers in records if headers is None])
    return _parsed[id(records)][1]


def time_of(event: dict) -> datetime:
    return datetime.fromisoformat(event["event_time"])


def test_every_valid_event_meets_the_contract(world: World) -> None:
    # A run of its own: jsonschema takes ~0.4 ms an event, too slow for the big run.
    records, stats = generate(world, count=4000, seed=8, start=FROM, end=UNTIL, **RATIOS)
    assert all(stats.by_event_type.values())
    for key, value, headers in records:
        if headers is None:
            assert validate_payload(value, now=NOW) == [], value
            assert key == json.loads(value)["user_id"].encode()


def test_every_bad_class_fails_for_the_reason_its_tag_names(run: tuple[list[Record], StreamStats]) -> None:
    records, stats = run
    seen: Counter[str] = Counter()
    for _, value, headers in records:
        if headers is None:
            continue
        [(name, tag)] = headers
        assert name == BAD_RECORD_HEADER
        kind = tag.decode() if isinstance(tag, bytes) else str(tag)
        reasons = validate_payload(value, now=NOW)
        assert any(re.search(EXPECTED_REASONS[kind], r) for r in reasons), (kind, reasons, value[:200])
        seen[kind] += 1
    assert set(seen) == set(BAD_CLASSES)
    assert dict(seen) == stats.by_bad_class
    assert max(seen.values()) - min(seen.values()) <= 1  # the classes take turns


def test_bad_records_before_any_valid_event_fail_for_their_tag(world: World) -> None:
    # Every record bad: each is made from the stub that stands in for "the latest valid event".
    records, stats = generate(world, count=3 * len(BAD_CLASSES), seed=4, start=FROM, end=UNTIL, bad_ratio=1.0)
    assert stats.by_bad_class == dict.fromkeys(BAD_CLASSES, 3)
    for _, value, [(_, tag)] in records:  # type: ignore[misc]
        kind = tag.decode() if isinstance(tag, bytes) else str(tag)
        reasons = validate_payload(value, now=NOW)
        assert any(re.search(EXPECTED_REASONS[kind], r) for r in reasons), (kind, reasons, value[:200])


def test_make_bad_from_any_event_type(run: tuple[list[Record], StreamStats]) -> None:
    import random

    events = {e["event_type"]: e for e in valid(run[0])}
    rng = random.Random(3)
    for event in events.values():
        for kind in BAD_CLASSES:
            for _ in range(3):
                reasons = validate_payload(make_bad(kind, event, rng), now=NOW)
                assert any(re.search(EXPECTED_REASONS[kind], r) for r in reasons), (kind, reasons)
    with pytest.raises(ValueError, match="unknown bad-record class"):
        make_bad("nope", event, rng)


def test_shares_are_exact_and_counts_reconcile(run: tuple[list[Record], StreamStats]) -> None:
    records, stats = run
    assert len(records) == COUNT == stats.records
    n_bad = round(COUNT * RATIOS["bad_ratio"])
    n_dup = round((COUNT - n_bad) * RATIOS["duplicate_ratio"])
    assert sum(stats.by_bad_class.values()) == n_bad
    assert stats.duplicates == n_dup
    assert stats.late == round((COUNT - n_bad - n_dup) * RATIOS["late_ratio"])


def test_duplicates_are_exact_resends_of_earlier_events(run: tuple[list[Record], StreamStats]) -> None:
    records, stats = run
    first: dict[str, bytes] = {}
    resent = 0
    for _, value, headers in records:
        if headers is not None:
            continue
        event_id = json.loads(value)["event_id"]
        if event_id in first:
            assert first[event_id] == value
            resent += 1
        else:
            first[event_id] = value
    assert resent == stats.duplicates


def test_late_events_arrive_after_later_ones(run: tuple[list[Record], StreamStats]) -> None:
    records, stats = run
    newest = FROM
    out_of_order, seen = 0, set()
    for event in valid(records):
        if event["event_id"] in seen:
            continue
        seen.add(event["event_id"])
        at = time_of(event)
        out_of_order += at < newest - timedelta(seconds=30)
        newest = max(newest, at)
    assert abs(out_of_order - stats.late) <= 0.02 * stats.late


def test_event_times_fall_in_the_range_with_daily_seasonality(run: tuple[list[Record], StreamStats]) -> None:
    events = valid(run[0])
    times = [time_of(e) for e in events]
    assert min(times) >= FROM and max(times) < UNTIL
    by_hour = Counter(t.hour for t in times)
    peak, trough = DAILY.index(max(DAILY)), DAILY.index(min(DAILY))
    assert by_hour[peak] > 3 * by_hour[trough]
    by_day = Counter(t.date() for t in times)
    assert by_day[FROM.date() + timedelta(days=5)] > by_day[FROM.date() + timedelta(days=1)]  # Sat > Tue


def test_funnel_shares_match_the_model(run: tuple[list[Record], StreamStats]) -> None:
    _, stats = run
    total = sum(stats.by_event_type.values())
    shares = {k: v / total for k, v in stats.by_event_type.items()}
    for kind, expected in expected_type_shares().items():
        assert shares[kind] == pytest.approx(expected, abs=0.015), kind
    counts = stats.by_event_type
    assert counts["page_view"] > counts["click"] > counts["add_to_cart"] > counts["purchase"] > 0


def test_sessions_are_one_user_and_never_idle_for_30_minutes(run: tuple[list[Record], StreamStats]) -> None:
    sessions: dict[str, list[dict]] = defaultdict(list)
    for event in {e["event_id"]: e for e in valid(run[0])}.values():
        sessions[event["session_id"]].append(event)
    assert len(sessions) > 1000
    lengths = [len(s) for s in sessions.values()]
    assert 2 < sum(lengths) / len(lengths) < 15
    for events in sessions.values():
        assert len({e["user_id"] for e in events}) == 1
        assert len({json.dumps(e["device"]) for e in events}) == 1
        times = sorted(time_of(e) for e in events)
        gaps = [(b - a).total_seconds() * 1000 for a, b in itertools.pairwise(times)]
        assert all(g <= SESSION_GAP_MS for g in gaps)


def test_carts_and_prices_are_consistent(run: tuple[list[Record], StreamStats], world: World) -> None:
    users = {u.user_id: u for u in world.users}
    items = {i.item_id: i for i in world.items}
    added: dict[str, set[str]] = defaultdict(set)
    for event in sorted({e["event_id"]: e for e in valid(run[0])}.values(), key=time_of):
        kind = event["event_type"]
        if kind not in COMMERCE_EVENT_TYPES:
            continue
        user = users[event["user_id"]]
        assert event["currency"] == user.currency
        assert event["price"] == local_price(world, items[event["item_id"]], user.currency)
        assert event["geo"]["country"] == user.country
        if kind == "add_to_cart":
            added[event["session_id"]].add(event["item_id"])
        else:  # a removal or a purchase is of something added in that session
            assert event["item_id"] in added[event["session_id"]]


def test_item_popularity_is_zipf_like(run: tuple[list[Record], StreamStats], world: World) -> None:
    clicks = Counter(e["item_id"] for e in valid(run[0]) if e["event_type"] == "click")
    rank = {i.item_id: i.popularity_rank for i in world.items}
    top_1_percent = sum(n for item, n in clicks.items() if rank[item] <= len(world.items) // 100)
    assert top_1_percent > 0.2 * sum(clicks.values())
    assert rank[clicks.most_common(1)[0][0]] <= 10


def test_same_seed_same_records_other_seed_other_records(world: World) -> None:
    def records(seed: int) -> list[Record]:
        return generate(world, count=3000, seed=seed, start=FROM, end=UNTIL, **RATIOS)[0]

    assert records(11) == records(11)
    assert records(11) != records(12)


def test_event_ids_are_unique_across_blocks(world: World) -> None:
    records, _ = generate(world, count=12_000, seed=5, start=FROM, end=UNTIL)
    ids = [json.loads(v)["event_id"] for _, v, _ in records]
    assert len(set(ids)) == len(ids)


def test_live_event_times_follow_the_clock(world: World) -> None:
    clock = iter(range(10_000))
    stream = EventStream(world, count=500, seed=1, clock=lambda: 1_795_000_000 + next(clock) / 100)
    events = valid(list(stream))
    assert len(events) == 500
    first = time_of(events[0])
    assert first == datetime.fromtimestamp(1_795_000_000, UTC)
    assert all(first <= time_of(e) < first + timedelta(seconds=100) for e in events)


def test_live_without_count_runs_until_stopped(world: World) -> None:
    stream = EventStream(world, count=0, seed=1, bad_ratio=0.1, duplicate_ratio=0.1)
    records = list(itertools.islice(stream, 5000))
    bad = sum(h is not None for _, _, h in records)
    assert 350 < bad < 650


@pytest.mark.parametrize(
    "kwargs",
    [
        {"count": 10, "bad_ratio": 1.5},
        {"count": 10, "duplicate_ratio": 0.6},
        {"count": 0, "start": FROM, "end": UNTIL},
        {"count": 10, "start": FROM},
    ],
)
def test_bad_settings_are_refused(world: World, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        EventStream(world, seed=1, **kwargs)


def test_tiny_runs_keep_exact_counts(world: World) -> None:
    for count in (1, 2, 3, 7):
        records, stats = generate(
            world, count=count, seed=2, start=FROM, end=UNTIL, duplicate_ratio=0.5, late_ratio=1
        )
        assert len(records) == count == stats.records


def test_ids_are_a_bijection_and_blocks_agree_with_single_ids() -> None:
    import random

    ids = Ids(random.Random(1))
    block = [i.decode() for i in ids.block(1000, 5000)]
    assert len(set(block)) == 5000
    assert all(
        re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", i) for i in block
    )
    assert [i[-12:] for i in block[:50]] == [f"{ids.one(n):012x}" for n in range(1000, 1050)]


def test_timeline_times_are_sorted_inside_the_range_and_exactly_n() -> None:
    import numpy as np

    start = int(FROM.timestamp() * 1000)
    timeline = Timeline(start, start + 36 * 3_600_000 + 12_345)
    chunks = list(timeline.times(np.random.default_rng(3), 10_001, 4096))
    times = np.concatenate([t for t, _ in chunks])
    assert len(times) == 10_001 and [len(t) for t, _ in chunks] == [4096, 4096, 1809]
    assert (np.diff(times) >= 0).all() and times[0] >= start and times[-1] < timeline.end_ms


def test_event_types_are_the_contracts_in_its_order() -> None:
    assert tuple(t.value for t in EventType) == EVENT_TYPES


def test_funnel_moves_between_event_types_and_reaches_removal_and_purchase_only_from_a_cart() -> None:
    tables = funnel_tables()
    assert set(tables) == {*EventType, START}
    for state, following in tables.items():
        assert len(following) == 256
        assert all(n is END or isinstance(n, EventType) for n in following), state
        if state is not EventType.ADD_TO_CART:
            assert not {EventType.REMOVE_FROM_CART, EventType.PURCHASE} & set(following), state
