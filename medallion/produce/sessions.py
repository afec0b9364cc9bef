"""Shopping sessions: which users are browsing now, on which device, and when a session ends.

Sessions run concurrently, as many as the caller's ``limit`` (the generator sets it so that a session's
events are about `IN_SESSION_GAP_MS` apart); the next event goes to a random open session, or to a new
one while fewer than ``limit`` are open. A user has at most one open session, and at most half of the
users are in one at a time. A session idle for `SESSION_GAP_MS` is closed before it gets another event;
the funnel (`model.FUNNEL`) closes the others.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any

from medallion.produce.lookups import World
from medallion.produce.model import START, Ids, State, draw_table

SESSION_GAP_MS = 30 * 60_000
"""A session with no event for this long is over (the usual web-analytics definition)."""
IN_SESSION_GAP_MS = 45_000
"""The typical time between two events of one session."""
MAIN_DEVICE_SHARE = 0.7
"""Share of sessions a user with two devices starts on the first (main) one."""
REFERRERS = ((None, 0.40), ("https://www.google.com/", 0.35), ("https://www.bing.com/", 0.05),
             ("https://www.facebook.com/", 0.08), ("https://t.co/", 0.04),
             ("https://newsletter.example.com/weekly", 0.08))  # fmt: skip
"""Where a session's first page was reached from (None: typed or bookmarked)."""


class Session:
    """One open session: its user, the JSON text all its events share, and where its funnel stands."""

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

    user: int  # index into the world's users
    key: bytes  # the Kafka key: the user id
    static: bytes  # user_id, session_id, device, geo, user, and context up to the referrer
    ref: bytes  # the referrer of the next event: the previous page (JSON text)
    state: State  # the last event type, or START
    last_t: int  # the last event's time (epoch ms)
    last_item: int  # the item last looked at (-1: none)
    focus: int  # the category of the last search (-1: none)
    cart: list[tuple[int, int]]  # (item, quantity) lines added and not yet removed or bought
    cur: int  # the user's currency (index into `Prices.currencies`)
    pos: int  # index in `Sessions.active`


class Sessions:
    """The open sessions; ``pick`` chooses the session of the next event."""

    def __init__(self, world: World, rng: random.Random, user_currency: Sequence[int]) -> None:
        self._draw, self._bits = rng.random, rng.getrandbits
        self._ids = Ids(rng)
        dumps = json.dumps
        compact: dict[str, Any] = {"ensure_ascii": False, "separators": (",", ":")}
        self._keys = [u.user_id.encode() for u in world.users]
        self._user_ids = [f'"user_id":"{u.user_id}","session_id":"' for u in world.users]
        self._devices = []  # per user and device: the JSON text from "device" to the referrer's value
        for u in world.users:
            geo = dumps({"country": u.country, "city": u.city, "lat": u.lat, "lon": u.lon}, **compact)
            person = dumps({"email": u.email, "phone": u.phone, "name": u.name}, **compact)
            self._devices.append(
                [
                    f'"device":{dumps({"os": d.os, "browser": d.browser, "type": d.type}, **compact)},'
                    f'"geo":{geo},"user":{person},'
                    f'"context":{{"ip":"{d.ip}","user_agent":{dumps(d.user_agent)},"referrer":'
                    for d in u.devices
                ]
            )
        self._user_currency = user_currency
        self._users = draw_table([(i, u.activity) for i, u in enumerate(world.users)], 16)
        self._referrers = draw_table(
            [(b"null" if r is None else f'"{r}"'.encode(), w) for r, w in REFERRERS], 8
        )
        self.max_open = max(1, len(self._keys) // 2)
        self.active: list[Session] = []
        self._busy = bytearray(len(self._keys))  # 1 for a user with an open session
        self._opened = 0
        self.first_key = self._keys[0]

    def pick(self, t: int, limit: int) -> Session:
        """The session of an event at time ``t`` (ms) when ``limit`` sessions may be open."""
        active = self.active
        while True:
            n = len(active)
            if n < limit:
                return self.open(t)
            s = active[int(self._draw() * n)]
            if t - s.last_t <= SESSION_GAP_MS:
                return s
            self.close(s)

    def open(self, t: int) -> Session:
        """A new session at ``t`` for a user drawn by activity who has none open."""
        bits, busy = self._bits, self._busy
        u = self._users[bits(16)]
        for _ in range(8):
            if not busy[u]:
                break
            u = self._users[bits(16)]
        else:  # unlucky draws (at most half the users are busy): the next free user
            u = busy.find(0, u) if busy.find(0, u) >= 0 else busy.find(0)
        self._opened += 1
        devices = self._devices[u]
        s = Session()
        s.user, s.key, s.cur, s.pos = u, self._keys[u], self._user_currency[u], len(self.active)
        device = devices[0 if len(devices) == 1 or self._draw() < MAIN_DEVICE_SHARE else 1]
        s.static = f'{self._user_ids[u]}s_{self._ids.one(self._opened):012x}",{device}'.encode()
        s.ref = self._referrers[bits(8)]
        s.state, s.last_t, s.last_item, s.focus, s.cart = START, t, -1, -1, []
        self.active.append(s)
        busy[u] = 1
        return s

    def close(self, s: Session) -> None:
        """End ``s``: its user may start another session."""
        active = self.active
        last = active.pop()
        if last is not s:
            active[s.pos] = last
            last.pos = s.pos
        self._busy[s.user] = 0
