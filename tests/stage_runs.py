"""A job run inside the stage envelope, as the pipeline runs it: for tests that call a job directly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from medallion.core import stages
from medallion.core.ledger import Ledger

T = TypeVar("T")


def run_job(
    stage: stages.Stage,
    job: Callable[..., T],
    spark: Any,
    cfg: Any,
    *args: Any,
    run_id: str | None = None,
    ledger: Ledger | None = None,
    **kwargs: Any,
) -> T:
    """``job(spark, cfg, *args, run=<the run>, **kwargs)`` inside `stages.run(cfg, stage)`."""
    with stages.run(cfg, stage, run_id=run_id, ledger=ledger) as run:
        return job(spark, cfg, *args, run=run, **kwargs)
