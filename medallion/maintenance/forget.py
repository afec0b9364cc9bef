"""`medallion forget`: one person out of every layer, DLQ, lookup and the online store, for good.

1. Resolve the person to every key the lake holds them under: the user id in each form the lake may
   store it (`register.stored_user_ids`), the keyed hashes Bronze keeps for email and phone, and, from
   the rows found, the others of the same person (an id found by its email brings its phone hash, and
   so on until nothing new turns up). Only those columns are read.
2. Add the person's keyed hashes to the erasure register before anything is removed, so that a
   running or replayed ingest drops their records from then on (`medallion.maintenance.register`).
3. Rewrite only the files that hold the person, without their rows: Bronze, Silver, Gold's user rows,
   the users lookup, and both DLQs, where the person is found inside the (redacted) key and payload
   text by any of their keys; the producer's undelivered records; then their online-store entries.
   Every other row is written back as it was.

Aggregates that counted the person (item and statistical features) still include them until their
feature dates are rebuilt: `forget --recompute` rebuilds them, or the next Gold run of those dates does.
The request is recorded by a request id (a keyed hash, `register.request_id`): no log line, ledger
record or metric holds the person's value or the lake's keys of them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from medallion.core import catalog, lakefs
from medallion.core.catalog import Dataset
from medallion.core.config import Config
from medallion.features import FAMILIES, USER
from medallion.maintenance import files, register
from medallion.maintenance.online import remove_online
from medallion.maintenance.register import Erasures, request_id, stored_user_ids
from medallion.pii.keys import pii_key
from medallion.pii.scrub import Hmac, normalize_email, normalize_phone


@dataclass
class Person:
    """The person's keys as the lake stores them (no clear email or phone ever)."""

    user_ids: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)  # email_hmac values
    phones: set[str] = field(default_factory=set)  # phone_hmac values
    # After `resolve`: the Bronze and Silver files that hold any of the keys (None: not resolved).
    holders: set[str] | None = None

    def absorb(self, other: Person) -> bool:
        """Add ``other``'s keys; whether any was new."""
        before = len(self.user_ids) + len(self.emails) + len(self.phones)
        self.user_ids |= other.user_ids
        self.emails |= other.emails
        self.phones |= other.phones
        return len(self.user_ids) + len(self.emails) + len(self.phones) > before

    def register_hashes(self, keyed: Hmac) -> set[str]:
        """What the erasure register keeps of them: keyed hashes only."""
        return {keyed(u) or "" for u in self.user_ids} | self.emails | self.phones

    def tokens(self) -> set[str]:
        return self.user_ids | self.emails | self.phones


@dataclass
class Found:
    """Where the person is in one dataset: rows in how many files (rows removed, when not a dry run)."""

    dataset: str
    files: int
    rows: int


@dataclass
class ForgetResult:
    request: str  # the request id (a keyed hash), never the value
    dry_run: bool
    found: list[Found] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)  # Silver event dates that held the person
    register_added: int = 0

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.found)

    def counts(self) -> dict[str, int]:
        return {f.dataset: f.rows for f in self.found}


# Where each table keeps the keys of a person (dotted: a member of a struct column).
_KEY_COLUMNS: dict[str, dict[str, str]] = {
    catalog.BRONZE.name: {"user_id": "user_id", "email": "user.email_hmac", "phone": "user.phone_hmac"},
    catalog.SILVER.name: {"user_id": "user_id", "email": "email_hmac", "phone": "phone_hmac"},
    catalog.USERS.name: {"user_id": "user_id"},
    **{catalog.gold_table(f.name).name: {"user_id": USER.join_key} for f in FAMILIES if f.entity == USER},
}
_RESOLVING = (catalog.BRONZE, catalog.SILVER)  # rows that tie a user id to an email or a phone
_TEXT_TABLES = (catalog.BRONZE_DLQ, catalog.SILVER_DLQ)
_TEXT_COLUMNS = ["key", "payload"]


def seeds(keyed: Hmac, *, user_id: str | None, email: str | None, phone: str | None) -> Person:
    """The keys given on the command line, as the lake stores them."""
    person = Person()
    if user_id is not None:
        person.user_ids |= stored_user_ids(user_id, keyed)
    if email is not None:
        person.emails.add(keyed(normalize_email(email)) or "")
    if phone is not None:
        person.phones.add(keyed(normalize_phone(phone)) or "")
    return person


def _column(table: pa.Table, dotted: str) -> pa.ChunkedArray | None:
    top, _, member = dotted.partition(".")
    if top not in table.column_names:
        return None
    column = table[top]
    return pc.struct_field(column, member) if member else column


def _mask(table: pa.Table, columns: dict[str, str], person: Person) -> pa.ChunkedArray | pa.Array:
    sets = {"user_id": person.user_ids, "email": person.emails, "phone": person.phones}
    mask: Any = pa.array([False] * table.num_rows, pa.bool_())
    for kind, dotted in columns.items():
        column = _column(table, dotted)
        if column is not None and sets[kind] and not pa.types.is_null(column.type):
            hit = pc.fill_null(pc.is_in(column, value_set=pa.array(sorted(sets[kind]), pa.string())), False)
            mask = pc.or_(mask, hit)
    return mask


def _keys_of(table: pa.Table, columns: dict[str, str]) -> Person:
    found = Person()
    for kind, dotted in columns.items():
        column = _column(table, dotted)
        if column is not None:
            values = {v for v in column.to_pylist() if v is not None}
            getattr(found, {"user_id": "user_ids", "email": "emails", "phone": "phones"}[kind]).update(values)
    return found


def resolve(cfg: Config, person: Person) -> Person:
    """The person with every key their Bronze and Silver rows tie to the given ones (to a fixpoint;
    each further pass looks only for the keys the one before found)."""
    person = Person(set(person.user_ids), set(person.emails), set(person.phones), holders=set())
    assert person.holders is not None
    new = person
    while new.tokens():
        grown = Person()
        for table in _RESOLVING:
            columns = _KEY_COLUMNS[table.name]
            for data_file in files.data_files(table.path(cfg)):
                read = files.read_columns(data_file.path, [c.split(".")[0] for c in columns.values()])
                mask = _mask(read, columns, new)
                if pc.any(mask).as_py():
                    grown.absorb(_keys_of(read.filter(mask), columns))
                    person.holders.add(data_file.path)
        new = Person(
            grown.user_ids - person.user_ids, grown.emails - person.emails, grown.phones - person.phones
        )
        person.absorb(new)
    return person


def _token_pattern(tokens: Iterable[str]) -> re.Pattern[str]:
    """Any token as a whole word (not inside a longer id: ``u_1`` is not found in ``u_12``)."""
    alternatives = "|".join(re.escape(t) for t in sorted(tokens, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z0-9_])(?:{alternatives})(?![A-Za-z0-9_])")


def _text_mask(table: pa.Table, pattern: re.Pattern[str], tokens: set[str]) -> pa.Array:
    """Rows whose key or payload names a token: a vectorized substring search first, the word check on
    the few rows it finds."""
    hits = [False] * table.num_rows
    for name in _TEXT_COLUMNS:
        if name not in table.column_names:
            continue
        column = table[name]
        maybe: Any = pa.array([False] * table.num_rows, pa.bool_())
        for token in tokens:
            maybe = pc.or_(maybe, pc.fill_null(pc.match_substring(column, token), False))
        for i in pc.indices_nonzero(maybe).to_pylist():
            if pattern.search(column[i].as_py() or ""):
                hits[i] = True
    return pa.array(hits, pa.bool_())


def _plan(cfg: Config, person: Person, since_ns: int = 0) -> list[tuple[Dataset, str, pa.Array]]:
    """Every data file that holds the person, and which of its rows (a mask); ``since_ns``: only the
    ingest's files (Bronze and its DLQ) written since then."""
    out = []
    tokens = person.tokens()
    pattern = _token_pattern(tokens) if tokens else None
    ingested = (catalog.BRONZE.name, catalog.BRONZE_DLQ.name)
    for name, columns in _KEY_COLUMNS.items():
        table = catalog.CATALOG.get(name)
        if since_ns and name not in ingested:
            continue
        for data_file in _files(table, cfg, since_ns):
            resolved = table in _RESOLVING and person.holders is not None and not since_ns
            if resolved and data_file.path not in (person.holders or ()):
                continue  # resolving read every one of these files: this one holds none of the keys
            read = files.read_columns(data_file.path, [c.split(".")[0] for c in columns.values()])
            mask = _mask(read, columns, person)
            if pc.any(mask).as_py():
                out.append((table, data_file.path, mask))
    for table in _TEXT_TABLES:
        if pattern is None or (since_ns and table.name not in ingested):
            continue
        for data_file in _files(table, cfg, since_ns):
            mask = _text_mask(files.read_columns(data_file.path, _TEXT_COLUMNS), pattern, tokens)
            if pc.any(mask).as_py():
                out.append((table, data_file.path, mask))
    return out


def _files(table: Dataset, cfg: Config, since_ns: int) -> list[files.DataFile]:
    return [f for f in files.data_files(table.path(cfg)) if f.mtime_ns >= since_ns]


def _remove_rows(path: str, mask: pa.Array) -> None:
    """Rewrite one data file without the masked rows (every other row as it was)."""
    whole = files.read_file(path)
    files.replace_file(path, whole.filter(pc.invert(mask)))


def _produce_dlq(cfg: Config, person: Person, keyed_key: bytes, dry_run: bool) -> int:
    """Lines of the producer's undelivered records (JSON lines, in clear) that are the person's."""
    folder = catalog.PRODUCE_DLQ.path(cfg)
    matcher = Erasures(frozenset(person.register_hashes(Hmac(keyed_key))), keyed_key)
    pattern = _token_pattern(person.tokens()) if person.tokens() else None
    removed = 0
    for path in lakefs.list_files(folder):
        lines = lakefs.read_text(path).splitlines(keepends=True)
        kept = [
            line
            for line in lines
            if not (matcher.raw(None, line.encode()) or (pattern is not None and pattern.search(line)))
        ]
        if len(kept) != len(lines):
            removed += len(lines) - len(kept)
            if not dry_run:
                lakefs.write_text(path, "".join(kept))
    return removed


def find_and_remove(
    cfg: Config, person: Person, pii_key: bytes, *, dry_run: bool, since_ns: int = 0
) -> ForgetResult:
    """Where the person is (``dry_run``), or remove them from every file that holds them."""
    result = ForgetResult(request="", dry_run=dry_run)
    by_dataset: dict[str, Found] = {}
    dates: set[str] = set()
    for table, path, mask in _plan(cfg, person, since_ns):
        found = by_dataset.setdefault(table.name, Found(table.name, 0, 0))
        found.files += 1
        found.rows += int(pc.sum(mask).as_py() or 0)
        if table.name == catalog.SILVER.name:
            dates.add(files.partition_values(table.path(cfg), path).get(catalog.EVENT_DATE, ""))
        if not dry_run:
            _remove_rows(path, mask)
    produced = 0 if since_ns else _produce_dlq(cfg, person, pii_key, dry_run)
    if produced:
        by_dataset[catalog.PRODUCE_DLQ.name] = Found(catalog.PRODUCE_DLQ.name, 1, produced)
    result.found = list(by_dataset.values())
    result.dates = sorted(d for d in dates if d)
    return result


def user_entity_views() -> list[str]:
    """The feature views (families) keyed by the user: their online rows are the person's."""
    return [f.name for f in FAMILIES if f.entity == USER]


def new_request(keyed: Hmac, *, user_id: str | None, email: str | None, phone: str | None) -> str:
    kind, value = next((k, v) for k, v in (("user_id", user_id), ("email", email), ("phone", phone)) if v)
    return request_id(kind, value, keyed)


def forget(
    cfg: Config,
    *,
    user_id: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    dry_run: bool = False,
    run_id: str = "",
    wait_for_ingest_s: float = 300.0,
) -> ForgetResult:
    """Erase one person (or with ``dry_run`` only say where they are). Runs without Spark.

    With an ingest running, the register is written first, then the micro-batches that were already
    planned (whose tasks may have read the register before) are waited for, and the Bronze and DLQ
    files written since the start are searched again: a batch planned after the register was written
    reads it, and drops the person.
    """

    key = pii_key(cfg)
    keyed = Hmac(key)
    started_ns = time.time_ns()
    request = new_request(keyed, user_id=user_id, email=email, phone=phone)
    person = resolve(cfg, seeds(keyed, user_id=user_id, email=email, phone=phone))
    added = 0
    if not dry_run:
        added = register.add(
            catalog.ERASURE_REGISTER.path(cfg), person.register_hashes(keyed), request, run_id
        )
    planned = _last_planned_batch(cfg)
    result = find_and_remove(cfg, person, key, dry_run=dry_run)
    online = remove_online(cfg, person.user_ids, dry_run=dry_run)
    if online:
        result.found.append(Found("online_store", 0, online))
    if not dry_run and planned is not None and _wait_committed(cfg, planned, wait_for_ingest_s):
        late = find_and_remove(cfg, person, key, dry_run=False, since_ns=started_ns)
        for found in late.found:
            result.found.append(found)
    result.request, result.register_added = request, added
    return result


def _batch_ids(folder: str) -> list[int]:
    return sorted(int(n) for n in lakefs.list_children(folder)[1] if n.isdigit())


def _last_planned_batch(cfg: Config) -> int | None:
    """The newest micro-batch the ingest's checkpoint has planned but not committed (None: none)."""
    checkpoint = catalog.INGEST_CHECKPOINT.path(cfg)
    offsets = _batch_ids(lakefs.join(checkpoint, "offsets"))
    commits = _batch_ids(lakefs.join(checkpoint, "commits"))
    if not offsets or (commits and commits[-1] >= offsets[-1]):
        return None
    return offsets[-1]


def _wait_committed(cfg: Config, batch: int, timeout_s: float) -> bool:
    """Wait until ``batch`` is committed (a running ingest finished it); False when it is not in time
    (no ingest runs: the batch is replayed at the next start, after the register was written)."""

    commits = lakefs.join(catalog.INGEST_CHECKPOINT.path(cfg), "commits")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = _batch_ids(commits)
        if done and done[-1] >= batch:
            return True
        time.sleep(1.0)
    return False
