"""Which record comes next: a new event, a duplicate (an exact resend) or a bad record.

With a count, the numbers of each kind are exact (`Quotas`, rounded shares) and placed uniformly at
random, block by block (hypergeometric draws), so summaries and tests reconcile exactly. Without a count
(live, without end) each record's kind is drawn independently with the configured shares.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

Record = tuple[bytes, bytes, list[tuple[str, str | bytes | None]] | None]
"""One Kafka record: key, value, headers (None for a valid event)."""

BLOCK = 4096
"""Records whose kinds are drawn together (also: new events whose ids and times are drawn together)."""
RING = 4096
"""How many recent events a duplicate is drawn from."""


class RecordKind(IntEnum):
    """A record's kind; NEW is 0 so that the hot loop's ``if kind:`` singles out the two rare ones."""

    NEW = 0
    DUPLICATE = 1
    BAD = 2


@dataclass(frozen=True)
class Quotas:
    """Exact numbers of records of a counted run. Late events are new events sent late."""

    bad: int
    duplicate: int
    new: int
    late: int

    @classmethod
    def of(cls, count: int, bad_ratio: float, duplicate_ratio: float, late_ratio: float) -> Quotas:
        bad = round(count * bad_ratio)
        valid = count - bad
        duplicate = min(round(valid * duplicate_ratio), max(0, valid - 1))  # at least one event to resend
        new = valid - duplicate
        return cls(bad, duplicate, new, round(new * late_ratio))


def record_kinds(
    np_rng: np.random.Generator, size: int, quotas: Quotas | None, bad_ratio: float, duplicate_ratio: float
) -> Iterator[list[int]]:
    """Each record's `RecordKind` (as plain ints), in lists of ``size``: exactly the ``quotas`` when
    given (then the iterator ends), else drawn with the ratios without end."""
    if quotas is None:
        bad, dup = bad_ratio, bad_ratio + (1 - bad_ratio) * duplicate_ratio
        while True:
            u = np_rng.random(size)
            yield np.where(
                u < bad, RecordKind.BAD, np.where(u < dup, RecordKind.DUPLICATE, RecordKind.NEW)
            ).tolist()
    n_bad, n_dup, n_new = quotas.bad, quotas.duplicate, quotas.new
    while n_bad + n_dup + n_new:
        left = n_bad + n_dup + n_new
        block = min(max(size, BLOCK // size * size), left)  # whole batches, about BLOCK records
        bad = int(np_rng.hypergeometric(n_bad, left - n_bad, block)) if n_bad else 0
        dup = int(np_rng.hypergeometric(n_dup, n_new, block - bad)) if n_dup and block > bad else 0
        kinds = np.full(block, RecordKind.NEW, np.int8)
        kinds[:bad], kinds[bad : bad + dup] = RecordKind.BAD, RecordKind.DUPLICATE
        np_rng.shuffle(kinds)
        n_bad, n_dup, n_new = n_bad - bad, n_dup - dup, n_new - (block - bad - dup)
        flat = kinds.tolist()
        for first in range(0, block, size):
            yield flat[first : first + size]


class Duplicates:
    """Exact resends (same bytes, same event id) of a recent event. A duplicate due before any event
    exists is sent in place of the next new event instead, so the numbers stay exact."""

    def __init__(self, rng: random.Random) -> None:
        self._draw = rng.random
        self._recent: list[Record] = []
        self.owed = False
        """A duplicate is owed (`instead_of_new` gives it)."""
        self.sent = 0

    def instead_of_duplicate(self) -> Record | None:
        """The record for a DUPLICATE slot; None (a new event goes there) while no event exists."""
        if self._recent:
            return self._resend()
        self.owed = True
        return None

    def instead_of_new(self) -> Record | None:
        """The record for a NEW slot: a duplicate owed from earlier, else None (a new event)."""
        if self.owed and self._recent:
            self.owed = False
            return self._resend()
        return None

    def remember(self, record: Record, made: int) -> None:
        """Keep ``record``, the ``made``-th new event, among the recent ones."""
        if len(self._recent) < RING:
            self._recent.append(record)
        else:
            self._recent[made & (RING - 1)] = record

    def _resend(self) -> Record:
        self.sent += 1
        return self._recent[int(self._draw() * len(self._recent))]
