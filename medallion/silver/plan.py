"""What `silver --incremental` rebuilds: the event dates of the Bronze batches the ingest has FINISHED
since the last mark.

Bronze's folders are not a safe plan. An ingest batch's dynamic partition overwrite renames its hour
partitions into place one after another, so a listing taken between two renames shows the batch with
only some of its dates; marking that batch as seen would lose the dates renamed afterwards (typically
a late event's old date) for good. So the plan trusts only batches the checkpoint has committed
(``commits/N`` is written after the batch's sink returned), and takes the dates each wrote from that
batch's ledger record (``bronze_dates``), one read per new batch: the cost follows the new batches, not
the lake's history. Where a record is missing (a lake written before batches recorded their dates), it
lists Bronze's folders once, still counting only committed batches.

Bronze that no medallion ingest owns (no ``_owner.json``: written by a user's own loader, or by the
tests) has no checkpoint to ask; its folders are then the plan, as they are all there is.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from loguru import logger

from medallion.bronze.accounting import BRONZE_DATES, batch_key
from medallion.core import lakefs
from medallion.core.catalog import BRONZE, BRONZE_OWNER, INGEST_CHECKPOINT
from medallion.core.config import Config
from medallion.core.lake import bronze_batches
from medallion.core.ledger import Ledger
from medallion.engines.kafka.admin import newest_committed_batch

LISTING_ABOVE = 500
"""More new batches than this: one listing of Bronze's folders is cheaper than a record read per batch
(a first run over a long history)."""
MARK = "max_bronze_batch"
"""The metric of a Silver run's ledger record: every Bronze batch up to it has been rebuilt."""
CHECKPOINT = "bronze_checkpoint"
"""The metric beside it: the checkpoint whose batch ids the mark counts (a new one numbers from 0 again)."""


@dataclass(frozen=True)
class BronzePlan:
    dates: list[dt.date]  # event dates that finished batches newer than ``seen`` wrote
    finished: int  # the newest finished batch: the mark a run covering ``dates`` moves to
    seen: int  # the last successful run's mark (-1: none)
    checkpoint: str | None = None  # the ingest checkpoint that owns Bronze (None: no medallion ingest)


def plan(cfg: Config, ledger: Ledger) -> BronzePlan:
    last = ledger.last("silver")
    seen = int(last.metrics.get(MARK, -1)) if last else -1
    owner = _owner(cfg)
    if owner is not None and last is not None and last.metrics.get(CHECKPOINT) not in (None, owner[1]):
        seen = -1  # Bronze was started again by a new checkpoint, whose batch ids start again at 0
    if owner is None:
        batches = bronze_batches(BRONZE.path(cfg))
        newest = max((b for bs in batches.values() for b in bs), default=-1)
        return BronzePlan(_dates_of(batches, seen, newest), newest, seen)
    topic, checkpoint = owner
    committed = newest_committed_batch(INGEST_CHECKPOINT.path(_with_topic(cfg, topic)))
    finished = seen if committed is None else committed
    if finished <= seen:
        return BronzePlan([], seen, seen, checkpoint)
    if finished - seen > LISTING_ABOVE:
        listed = _dates_of(bronze_batches(BRONZE.path(cfg)), seen, finished)
        return BronzePlan(listed, finished, seen, checkpoint)
    days: set[str] = set()
    for batch in range(seen + 1, finished + 1):
        record = ledger.keyed("ingest", batch_key(topic, checkpoint, batch))
        if record is None or BRONZE_DATES not in record.metrics:
            logger.info(
                "silver: batch {b} has no recorded dates; listing Bronze's folders for batches {s}..{f}",
                b=batch,
                s=seen + 1,
                f=finished,
            )
            listed = _dates_of(bronze_batches(BRONZE.path(cfg)), seen, finished)
            return BronzePlan(listed, finished, seen, checkpoint)
        days.update(record.metrics[BRONZE_DATES])
    return BronzePlan(sorted(dt.date.fromisoformat(d) for d in days), finished, seen, checkpoint)


def _dates_of(batches: dict[str, set[int]], seen: int, finished: int) -> list[dt.date]:
    return sorted(
        dt.date.fromisoformat(d) for d, bs in batches.items() if any(seen < b <= finished for b in bs)
    )


def _owner(cfg: Config) -> tuple[str, str] | None:
    marker = BRONZE_OWNER.path(cfg)
    if not lakefs.exists(marker):
        return None
    owner = json.loads(lakefs.read_text(marker))
    return str(owner["topic"]), str(owner["checkpoint"])


def _with_topic(cfg: Config, topic: str) -> Config:
    """``cfg`` as the ingest of ``topic`` sees it (the checkpoint's path names the topic)."""
    return cfg.model_copy(update={"kafka": cfg.kafka.model_copy(update={"topic": topic})})
