"""The maintenance operations as stage runs, inside the one envelope (`medallion.core.stages.run`): locks
(`stages.FORGET`, `stages.RETENTION` and `stages.COMPACT` declare what they touch), run id, ledger record
with who ran it, metrics, exit code. An erasure is recorded by its request id, and its value is taken off the command
line before anything records it.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import TYPE_CHECKING

from medallion.core import stages
from medallion.core.config import Config
from medallion.core.errors import UsageError
from medallion.maintenance import forget as erase
from medallion.maintenance.compact import compact as rewrite
from medallion.maintenance.compact import layer_datasets, swap_mode
from medallion.maintenance.forget import ForgetResult
from medallion.maintenance.retention import RetentionResult, expire
from medallion.pii.keys import pii_key
from medallion.pii.scrub import Hmac

if TYPE_CHECKING:
    from medallion.maintenance.compact import CompactResult

ERASED_OPTIONS = ("--user-id", "--email", "--phone")
HIDDEN = "<erased>"


def retention(cfg: Config, *, dry_run: bool = False) -> RetentionResult:
    """`medallion retention` as a stage run (see `medallion.maintenance.retention`)."""

    with stages.run(cfg, stages.RETENTION, dry_run=dry_run) as run:
        result = expire(cfg, dry_run=dry_run)
        gone = [e for e in result.expired if e.partitions]
        run.count(
            partitions=result.partitions, rows=sum(e.rows for e in gone), bytes=sum(e.bytes for e in gone)
        )
        run.metrics["by_dataset"] = {
            e.dataset: {"partitions": len(e.partitions), "rows": e.rows} for e in gone
        }
    return result


def compact(
    cfg: Config,
    layer: str,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    dry_run: bool = False,
    exclusive: bool = False,
) -> CompactResult:
    """`medallion compact` as a stage run (see `medallion.maintenance.compact`), locking only the layer's
    tables. Usage is checked first (layer, dates, whether the lake can swap atomically): nothing runs."""

    datasets = layer_datasets(layer)
    if (start is None) != (end is None):
        raise UsageError(
            "compact takes both --start-date and --end-date, or neither (every closed partition)."
        )
    if start is not None and end is not None and end < start:
        raise UsageError(f"--end-date {end} is before --start-date {start}: give the earlier date first.")
    mode = swap_mode(cfg, exclusive=exclusive)
    stage = stages.compact_stage(tuple(d.name for d in datasets))
    with stages.run(
        cfg, stage, layer=layer, start_date=start, end_date=end, dry_run=dry_run, exclusive=exclusive
    ) as run:
        result = rewrite(cfg, layer, run_id=run.run_id, start=start, end=end, dry_run=dry_run, mode=mode)
        run.count(
            partitions=len(result.compacted),
            files_before=result.total("files_before"),
            files_after=result.total("files_after"),
            rows=result.total("rows"),
            bytes_before=result.total("bytes_before"),
            bytes_after=result.total("bytes_after"),
        )
        run.metrics.update(
            mode=mode, already_compact=result.already, skipped=result.skipped, recovered=result.recovered
        )
    return result


def hide_erased_values(argv: list[str]) -> None:
    """Replace the person's value on the command line in place, before anything records it (the ledger's
    and the locks' `command`): `forget --email x` is recorded as `forget --email <erased>`."""
    hide_next = False
    for i, arg in enumerate(argv):
        if hide_next:
            argv[i], hide_next = HIDDEN, False
        elif arg in ERASED_OPTIONS:
            hide_next = True
        elif arg.startswith(tuple(f"{o}=" for o in ERASED_OPTIONS)):
            argv[i] = arg.split("=", 1)[0] + "=" + HIDDEN


def forget(
    cfg: Config,
    *,
    user_id: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    dry_run: bool = False,
) -> ForgetResult:
    """`medallion forget` as a stage run (see `medallion.maintenance.forget`)."""

    given = [v for v in (user_id, email, phone) if v is not None]
    if len(given) != 1 or not given[0].strip():
        raise UsageError("forget needs exactly one of --user-id, --email or --phone, not blank.")
    hide_erased_values(sys.argv)
    kind = "user_id" if user_id is not None else "email" if email is not None else "phone"
    request = erase.new_request(Hmac(pii_key(cfg)), user_id=user_id, email=email, phone=phone)
    with stages.run(cfg, stages.FORGET, request=request, by=kind, dry_run=dry_run) as run:
        result = erase.forget(
            cfg,
            user_id=user_id,
            email=email,
            phone=phone,
            dry_run=dry_run,
            run_id=run.run_id,
            wait_for_ingest_s=cfg.maintenance.forget_wait_s,
        )
        run.count(**{("found" if dry_run else "removed"): result.rows})
        run.metrics.update(
            by_dataset=result.counts(), dates=result.dates, register_added=result.register_added
        )
    return result
