"""The run ledger: one JSON record per stage run, written under the lake so every setting can read it.

Layout, per stage (``<started>`` is the run's start in UTC, ``20260105T130501.123Z``, and the folders
are that time's day and hour)::

    _ledger/<stage>/<YYYY-MM-DD>/<HH>/<started>-<run_id>.json    one run's record
    _ledger/<stage>/<YYYY-MM-DD>/<HH>/<started>~<key>.json       a keyed record (ingest: one per batch)
    _ledger/<stage>/_keys/<key>                                  which file holds the key's record now

Why so:

- Separate small files rather than one appended file, because object stores cannot append. Each is
  written whole (`lakefs.write_text`: a temporary file renamed over it, or one PUT on an object store),
  so a crash never leaves a torn record; no two runs write the same file (their start and run id
  differ), so stages, or two runs of one stage, writing at once lose nothing. `status` reads them with
  pyarrow's filesystem layer, no Spark.
- Newest-first listing, bounded. `last()` lists the stage's day folders, then the newest day's hours,
  then the newest hour's records (names sort by time), and reads records newest first until one
  matches: `status` reads one record per stage and lists at most an hour of them (360 at ingest's
  default 10-second trigger), whatever the ledger's age. A flat folder of 11 days of ingest (100,000
  records) made `status` take 8 s. The one listing that grows is the day folders', by one name a day.
  Rejected: a pointer to each stage's newest record (or an index) is a read-modify-write that every
  writer must do, which object stores cannot make atomic, so two writers at once could leave it
  pointing at the older record; a daily roll-up of old records is another job to run and to trust.
- Keys. A keyed write replaces the key's earlier record. Ingest's keys
  (``<topic>-<checkpoint id>-b<batch:08d>``) do not sort by time across checkpoints, so they follow the
  start time in the name, which keeps `last()` right. A batch's second write (outcome ``written``,
  then ``succeeded``) has the same start, hence the same path, and replaces it in place. A batch
  replayed after a crash starts later and lands elsewhere: the write reads ``_keys/<key>`` to find
  the earlier attempt's record, writes the new one, deletes the old, and updates ``_keys``. A crash in
  between can leave both files, so readers keep only the newest record of a key: a batch never
  counts twice, and the key's next write deletes the stale file. This assumes one writer per key at a
  time (one ingest per lake, which Bronze's ownership marker enforces) and clocks that do not run
  backwards between an attempt and its replay.

Records of the earlier flat layout (``_ledger/<stage>/<name>.json``) are still read, as older than
any record in the folders.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from loguru import logger

from medallion.core import catalog, lakefs
from medallion.core.masking import mask_secrets

KEYS = "_keys"
_STAMP_LEN = len("20260105T130501.123Z")
_KEYED, _RUN = "~", "-"


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


@dataclass
class RunRecord:
    """What one stage run did. ``counts`` must reconcile: input = output + dlq (+ declared drops)."""

    stage: str
    run_id: str
    started_at: str
    inputs: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    outcome: str = "running"
    error: str | None = None
    finished_at: str | None = None
    duration_s: float = 0.0
    who: dict[str, Any] = field(default_factory=dict)  # OS user, host, pid, command line (secrets masked)
    exit_code: int | None = None  # what the command exits with for this run's outcome (0, 1, 2, 75)

    def count(self, **counts: int) -> None:
        for name, value in counts.items():
            self.counts[name] = self.counts.get(name, 0) + int(value)


@contextmanager
def timed(metrics: dict[str, Any], metric: str, piece: str) -> Iterator[None]:
    """Add the block's wall time to ``metrics[metric][piece]`` (seconds), also when it raises: a failed
    run's record says where its time went."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        pieces = metrics.setdefault(metric, {})
        pieces[piece] = round(pieces.get(piece, 0.0) + time.perf_counter() - t0, 3)


def record_location(record: RunRecord, key: str | None = None) -> str:
    """Where ``record`` goes below its stage's folder: ``<day>/<hour>/<started><sep><run id or key>.json``."""
    if key is not None and (not key or "/" in key):
        raise ValueError(f"A ledger key must be a non-empty name without '/', not {key!r}.")
    try:
        t = _utc(record.started_at)
    except ValueError:
        raise ValueError(
            f"Ledger record {record.stage} {record.run_id} has started_at {record.started_at!r}, "
            "not an ISO 8601 time."
        ) from None
    stamp = f"{t:%Y%m%dT%H%M%S}.{t.microsecond // 1000:03d}Z"
    name = f"{stamp}{_KEYED}{key}" if key is not None else f"{stamp}{_RUN}{record.run_id}"
    return f"{t:%Y-%m-%d}/{t:%H}/{name}.json"


def _as_utc(t: datetime) -> datetime:
    """A time in UTC; one without a zone is taken as UTC already (as the ledger writes them)."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _utc(iso: str) -> datetime:
    return _as_utc(datetime.fromisoformat(iso))


def _identity(name: str) -> str:
    """What a later write of the same record replaces: a keyed record's key, else the file's own name.

    An earlier-layout file is named by its key (or by its start and run id), so a keyed record in the
    folders supersedes the flat file of the same key.
    """
    stem = name.removesuffix(".json")
    if len(stem) > _STAMP_LEN and stem[_STAMP_LEN] == _KEYED:
        return stem[_STAMP_LEN + 1 :]
    return stem


def _visible(name: str) -> bool:
    return not name.startswith(("_", "."))


class Ledger:
    def __init__(self, lake_root: str, on_final: Callable[[RunRecord], object] | None = None) -> None:
        """``on_final`` is called with every record written with its final outcome (not ``running`` or
        ``written``): the metrics textfile follows the ledger that way."""
        self.root = catalog.join(lake_root, *catalog.LEDGER.location)
        self.on_final = on_final

    def stage_path(self, stage: str) -> str:
        return lakefs.join(self.root, stage)

    def write(self, record: RunRecord, key: str | None = None) -> str:
        """Write ``record`` whole; a later write with the same ``key`` replaces it (default: one per run).

        Returns the record's path.
        """
        relative = record_location(record, key)
        stage_dir = self.stage_path(record.stage)
        path = lakefs.join(stage_dir, relative)
        text = json.dumps(mask_secrets(asdict(record)), default=str)
        if key is None:
            lakefs.write_text(path, text)
        else:
            entry = lakefs.join(stage_dir, KEYS, key)
            earlier = lakefs.read_text(entry).strip() if lakefs.exists(entry) else None
            lakefs.write_text(path, text)
            if earlier != relative:
                if earlier:
                    lakefs.delete_file(lakefs.join(stage_dir, earlier))
                lakefs.write_text(entry, relative)
        if self.on_final is not None and record.outcome not in ("running", "written"):
            try:
                self.on_final(record)
            except Exception as exc:  # metrics must never cost a run its ledger record
                logger.warning("ledger: the run's metrics were not written: {exc}", exc=exc)
        return path

    def records(self, stage: str | None = None, since: datetime | None = None) -> list[RunRecord]:
        """Every record (of one stage: only its folder is listed), oldest first; one per key.

        ``since``: only records of runs started then or later; older day folders are not listed at all.
        """
        stages = (
            [stage] if stage is not None else [s for s in lakefs.list_children(self.root)[0] if _visible(s)]
        )
        out = [record for name in stages for record in self._stage_records(name, since)]
        if since is not None:
            out = [r for r in out if _utc(r.started_at) >= _as_utc(since)]
        return sorted(out, key=lambda r: r.started_at)

    def _stage_records(self, stage: str, since: datetime | None) -> Iterator[RunRecord]:
        stage_dir = self.stage_path(stage)
        days, flat = lakefs.list_children(stage_dir)
        first_day = f"{_as_utc(since):%Y-%m-%d}" if since is not None else ""
        paths = [lakefs.join(stage_dir, n) for n in flat if n.endswith(".json") and _visible(n)]
        for day in days:
            if _visible(day) and day >= first_day:
                paths += lakefs.list_files(lakefs.join(stage_dir, day), suffix=".json")
        newest: dict[str, tuple[bool, str, str]] = {}  # identity -> (in the folders, name, path)
        for path in paths:
            parts = path[len(stage_dir) + 1 :].split("/")
            if not all(_visible(p) for p in parts):
                continue
            candidate = (len(parts) > 1, parts[-1], path)
            identity = _identity(parts[-1])
            if identity not in newest or candidate > newest[identity]:
                newest[identity] = candidate
        for _, _, path in newest.values():
            if (record := _read(path)) is not None:
                yield record

    def newest_first(self, stage: str) -> Iterator[RunRecord]:
        """The stage's records from the newest back, one per key, read only as far as the caller goes."""
        stage_dir = self.stage_path(stage)
        days, flat = lakefs.list_children(stage_dir)
        seen: set[str] = set()
        for day in reversed([d for d in days if _visible(d)]):
            hours, _ = lakefs.list_children(lakefs.join(stage_dir, day))
            for hour in reversed([h for h in hours if _visible(h)]):
                _, names = lakefs.list_children(lakefs.join(stage_dir, day, hour))
                for name in reversed([n for n in names if n.endswith(".json") and _visible(n)]):
                    identity = _identity(name)
                    if identity in seen:
                        continue  # an earlier attempt of a key whose newer record came first
                    seen.add(identity)
                    record = _read(lakefs.join(stage_dir, day, hour, name))
                    if record is not None:
                        yield record
        earlier = [
            r
            for n in flat
            if n.endswith(".json") and _visible(n) and _identity(n) not in seen
            if (r := _read(lakefs.join(stage_dir, n))) is not None
        ]
        yield from sorted(earlier, key=lambda r: r.started_at, reverse=True)

    def keyed(self, stage: str, key: str) -> RunRecord | None:
        """The record a keyed write of ``stage`` holds under ``key`` now (one read through ``_keys``);
        None when there is none."""
        stage_dir = self.stage_path(stage)
        entry = lakefs.join(stage_dir, KEYS, key)
        if not lakefs.exists(entry):
            return None
        return _read(lakefs.join(stage_dir, lakefs.read_text(entry).strip()))

    def last(self, stage: str, outcome: str | None = "succeeded") -> RunRecord | None:
        """The newest record of ``stage`` (with ``outcome``; None: any), reading newest first."""
        return next((r for r in self.newest_first(stage) if outcome is None or r.outcome == outcome), None)

    @contextmanager
    def run(
        self, stage: str, run_id: str | None = None, *, who: dict[str, Any] | None = None, **inputs: Any
    ) -> Iterator[RunRecord]:
        """Record a stage run: yields the record to fill in, writes it with the outcome and duration.

        The ledger's half of `medallion.core.stages.run`, the envelope every stage runs in."""
        record = RunRecord(
            stage=stage,
            run_id=run_id or new_run_id(),
            started_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            inputs={k: str(v) if v is not None else None for k, v in inputs.items()},
            who=dict(who or {}),
        )
        start = time.perf_counter()
        try:
            with logger.contextualize(run_id=record.run_id):
                yield record
            record.outcome = "succeeded"
        except BaseException as exc:
            record.outcome = "failed"
            record.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            record.duration_s = round(time.perf_counter() - start, 3)
            record.finished_at = datetime.now(UTC).isoformat(timespec="milliseconds")
            self.write(record)
            logger.info(
                "{stage} run {run_id} {outcome} in {d:.1f}s: {counts}",
                stage=stage,
                run_id=record.run_id,
                outcome=record.outcome,
                d=record.duration_s,
                counts=record.counts,
            )


def _read(path: str) -> RunRecord | None:
    """The record at ``path``; None when it was replaced meanwhile, or is not a record (logged)."""
    try:
        return RunRecord(**json.loads(lakefs.read_text(path)))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        logger.warning("ledger: skipping {path}, not a run record: {exc}", path=path, exc=exc)
        return None
