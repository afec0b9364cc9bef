"""The stages, declared once, and the one envelope every stage run goes through.

A stage is plain data (`Stage`): its name, the catalogue datasets it reads, writes and replaces in
place. Its lock scope follows from those (`Stage.lock_scope`): it holds an exclusive lock on what it
replaces and a shared one on what it only reads or appends to, so two stages that would see each other's
half-replaced partitions never run at once on one lake, and those that cannot (ingest beside Gold) do.

`run(cfg, stage, **options)` is the envelope, written once::

    with stages.run(cfg, stages.SILVER, dates=...) as run:     # lock, run id, log context, record
        result = job.run(spark, cfg, dates, run=run)           # the stage's own work fills run.record

On entering it takes the stage's locks (`LockHeld`, exit 75, when another run holds one), gives the run
its id (in the log context, and in ``MEDALLION_RUN_ID`` for Spark's Python workers) and opens its ledger
record with who started it (OS user, host, pid, the command line and options, secrets masked). On leaving
it writes the record with the outcome, the duration and the exit code the error maps to
(`exit_code`), and the stage's Prometheus textfile (``medallion_<stage>.prom``) follows the record. A
stage whose ledger records are its own (ingest: one per micro-batch) declares ``records=False``: the
envelope then gives it the ledger and run id and leaves the records to it.

Adding a stage: a `Stage` here, listed in `STAGES`, and a function that runs inside `run(...)`. See
docs/architecture.md, "How to add a stage".

Imports no pyspark: `status` reads the declarations without starting anything.
"""

from __future__ import annotations

import getpass
import os
import socket
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loguru import logger

from medallion import RUN_ID_ENV
from medallion.core import catalog, metrics
from medallion.core.errors import exit_code
from medallion.core.ledger import Ledger, RunRecord, new_run_id
from medallion.core.locks import LockScope, hold
from medallion.core.masking import MASK, is_secret_name, mask_secrets

if TYPE_CHECKING:
    from medallion.core.config import Config


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline: what it reads, writes and replaces (catalogue dataset names)."""

    name: str
    description: str
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()  # appended to, or written beside what is there (files with new names)
    replaces: tuple[str, ...] = ()  # partitions or files replaced in place: readers must wait
    records: bool = True  # False: the stage writes its own ledger records (ingest, one per micro-batch)
    rewrites: tuple[str, ...] = ()  # rewritten in place beside a running appender (the ingest): readers wait

    @property
    def lock_scope(self) -> LockScope:
        """Exclusive on what it replaces, shared on what it reads or appends to; what it rewrites beside
        an appender excludes the readers only (`medallion.core.locks`)."""
        rewrites = set(self.rewrites) - set(self.replaces)
        shared = (set(self.reads) | set(self.writes)) - set(self.replaces) - rewrites
        appends = set(self.writes) & shared - set(self.reads)
        return LockScope(
            self.name,
            exclusive=tuple(sorted(set(self.replaces))),
            shared=tuple(sorted(shared)),
            appends=tuple(sorted(appends)),
            rewrites=tuple(sorted(rewrites)),
        )

    @property
    def datasets(self) -> set[str]:
        """Every catalogue dataset it declares."""
        return {*self.reads, *self.writes, *self.replaces, *self.rewrites}

    def __str__(self) -> str:
        return self.name


_LOOKUPS = tuple(t.name for t in catalog.LOOKUPS)
_GOLD = tuple(t.name for t in catalog.GOLD_TABLES)
_FEAST = (catalog.FEAST_REGISTRY.name, catalog.FEAST_ONLINE_SQLITE.name)

PRODUCE = Stage(
    "produce",
    "Synthetic events into Kafka, and the lookup tables they refer to.",
    writes=(catalog.PRODUCE_DLQ.name,),
    replaces=_LOOKUPS,
)
LOOKUPS = Stage(
    "lookups",
    "A user's reference table loaded from a file (`medallion lookups load`), replacing the stored one.",
    replaces=_LOOKUPS,
)
INGEST = Stage(
    "ingest",
    "Kafka → Bronze: every micro-batch adds its own batch= partitions, so readers run beside it.",
    writes=(catalog.BRONZE.name, catalog.BRONZE_DLQ.name, catalog.INGEST_CHECKPOINT.name),
    records=False,
)
SILVER = Stage(
    "silver",
    "Bronze → Silver for event dates, each date replaced whole.",
    reads=(catalog.BRONZE.name, *_LOOKUPS),
    writes=(catalog.QUALITY_RESULTS.name,),
    replaces=(catalog.SILVER.name, catalog.SILVER_DLQ.name),
)
GOLD = Stage(
    "gold",
    "Silver → Gold feature tables for feature dates, each date replaced whole.",
    reads=(catalog.SILVER.name,),
    writes=(
        catalog.QUALITY_RESULTS.name,
        catalog.FEATURE_SCHEMAS.name,
        catalog.FEATURE_DRIFT.name,
        catalog.FEATURE_PROFILES.name,
    ),
    replaces=_GOLD,
)
MATERIALIZE = Stage(
    "materialize",
    "Gold → the Feast registry and online store.",
    reads=_GOLD,
    replaces=_FEAST,
)
VALIDATE = Stage(
    "validate",
    "The declared data-quality rules on what a layer holds; writes only its results.",
    reads=(catalog.BRONZE.name, catalog.SILVER.name, catalog.SILVER_DLQ.name, *_GOLD),
    writes=(catalog.QUALITY_RESULTS.name,),
)

# Maintenance (`medallion.maintenance`): it rewrites Bronze's and its DLQ's files beside a running ingest
# (which only adds batch folders), so readers of those wait and the ingest does not, and locks out every
# stage that reads or replaces the rest.
_BESIDE_INGEST = (catalog.BRONZE.name, catalog.BRONZE_DLQ.name)
_ERASED_FROM = (catalog.SILVER.name, catalog.SILVER_DLQ.name, *_GOLD, catalog.USERS.name, *_FEAST)
FORGET = Stage(
    "forget",
    "One person erased from every layer, DLQ, lookup and the online store; their keyed hashes registered.",
    writes=(catalog.ERASURE_REGISTER.name, catalog.PRODUCE_DLQ.name),
    rewrites=_BESIDE_INGEST,
    replaces=_ERASED_FROM,
)
RETENTION = Stage(
    "retention",
    "Whole date partitions past their age deleted (Bronze's committed batches only, beside the ingest).",
    writes=(catalog.QUALITY_RESULTS.name, catalog.FEATURE_DRIFT.name, catalog.FEATURE_PROFILES.name),
    rewrites=_BESIDE_INGEST,
    replaces=(catalog.SILVER.name, catalog.SILVER_DLQ.name, *_GOLD),
)
COMPACT = Stage(
    "compact",
    "Closed partitions rewritten into fewer, larger files, the same rows (Bronze's committed batches only, "
    "beside the ingest). A run locks only its layer's tables: `compact_stage(layer)`.",
    writes=(catalog.COMPACTION_JOURNAL.name,),
    rewrites=_BESIDE_INGEST,
    replaces=(catalog.SILVER.name, catalog.SILVER_DLQ.name, *_GOLD),
)

MAINTENANCE = (FORGET, RETENTION, COMPACT)
"""The stages that rewrite or delete what the other stages wrote."""

STAGES: tuple[Stage, ...] = (
    PRODUCE,
    LOOKUPS,
    INGEST,
    SILVER,
    GOLD,
    MATERIALIZE,
    VALIDATE,
    FORGET,
    RETENTION,
    COMPACT,
)
"""Every stage, in pipeline order."""


def compact_stage(datasets: tuple[str, ...]) -> Stage:
    """`COMPACT` narrowed to the tables one run compacts (a Gold compaction does not hold Bronze's locks)."""
    unknown = set(datasets) - COMPACT.datasets
    if unknown:
        raise KeyError(f"compact does not declare {sorted(unknown)}")
    return replace(
        COMPACT,
        rewrites=tuple(d for d in COMPACT.rewrites if d in datasets),
        replaces=tuple(d for d in COMPACT.replaces if d in datasets),
    )


def stage(name: str) -> Stage:
    """The stage called ``name``; KeyError naming the known ones."""
    for s in STAGES:
        if s.name == name:
            return s
    raise KeyError(f"unknown stage {name!r}: one of {', '.join(s.name for s in STAGES)}")


@dataclass
class StageRun:
    """One run of a stage, as its function sees it: the id, the ledger, and the record to fill in."""

    stage: Stage
    run_id: str
    ledger: Ledger
    record: RunRecord = field(repr=False)

    def count(self, **counts: int) -> None:
        self.record.count(**counts)

    @property
    def metrics(self) -> dict[str, Any]:
        return self.record.metrics


def lake_ledger(cfg: Config) -> Ledger:
    """The run ledger, with the stage's Prometheus textfile following every final record."""

    return Ledger(cfg.lake.root, on_final=lambda record: metrics.record_run(cfg, record))


@contextmanager
def run(
    cfg: Config,
    stage: Stage,
    *,
    run_id: str | None = None,
    ledger: Ledger | None = None,
    **options: Any,
) -> Iterator[StageRun]:
    """Run ``stage`` inside the envelope: lock, run id, log context, ledger record, metrics, exit code.

    ``options`` are the run's inputs as the ledger records them (secrets masked). ``ledger``: the one
    to write to (default: the lake's, with the metrics textfile following it).
    """
    runs = ledger if ledger is not None else lake_ledger(cfg)
    run_id = run_id or new_run_id()
    previous = os.environ.get(RUN_ID_ENV)
    with hold(cfg, stage.lock_scope), logger.contextualize(run_id=run_id, stage=stage.name):
        os.environ[RUN_ID_ENV] = run_id  # Spark's Python workers are started with this environment
        try:
            if not stage.records:
                record = RunRecord(
                    stage.name, run_id, started_at=_now(), inputs=mask_options(options), who=who()
                )
                try:
                    yield StageRun(stage, run_id, runs, record)
                except Exception as exc:
                    # Its own records are per unit of work (ingest: per batch); a run that fails records its
                    # failure too, or the last batch would stay the newest record and no alert would fire.
                    record.outcome, record.error = "failed", f"{type(exc).__name__}: {exc}"
                    record.exit_code, record.finished_at = exit_code(exc), _now()
                    runs.write(record)
                    raise
                return
            with runs.run(stage.name, run_id=run_id, who=who(), **mask_options(options)) as record:
                try:
                    yield StageRun(stage, run_id, runs, record)
                except BaseException as exc:
                    record.exit_code = exit_code(exc)
                    raise
                if record.exit_code is None:  # a stage may give its verdict (validate: 1, a rule failed)
                    record.exit_code = 0
        finally:
            if previous is None:
                os.environ.pop(RUN_ID_ENV, None)
            else:
                os.environ[RUN_ID_ENV] = previous


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# --- who ran it, secrets masked --------------------------------------------------------------------


def mask_value(name: str, value: Any) -> str | None:
    """An option's value as the ledger may keep it, by the one masking rule (`medallion.core.masking`)."""
    return None if value is None else str(mask_secrets(str(value), name))


def mask_options(options: Mapping[str, Any]) -> dict[str, str | None]:
    return {name: mask_value(name, value) for name, value in options.items()}


def mask_argv(argv: list[str]) -> str:
    """The command line, with the value of every secret-named option masked (``--x=v`` and ``--x v``)."""
    out: list[str] = []
    hide_next = False
    for i, arg in enumerate(argv):
        if i == 0:
            out.append(os.path.basename(arg))
        elif hide_next:
            out.append(MASK)
            hide_next = False
        elif arg.startswith("-") and "=" in arg:
            name, _, value = arg.partition("=")
            out.append(f"{name}={mask_value(name, value)}")
        else:
            hide_next = arg.startswith("-") and is_secret_name(arg)
            out.append(arg if arg.startswith("-") else str(mask_value("", arg)))
    return " ".join(out)[:500]


def who() -> dict[str, Any]:
    """Who started this run and where: the OS user, the host, the pid and the command line."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for the uid (a container): the number says enough
        user = str(os.getuid())
    return {"user": user, "host": socket.gethostname(), "pid": os.getpid(), "command": mask_argv(sys.argv)}
