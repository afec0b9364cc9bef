"""The last compaction, retention and erasure, for `status` (from the ledger and the register: no Spark)."""

from __future__ import annotations

from typing import Any

from medallion.core import catalog, lakefs
from medallion.core.config import Config
from medallion.core.ledger import Ledger
from medallion.maintenance.register import load

OPERATIONS = ("compact", "retention", "forget")


def maintenance_status(cfg: Config) -> dict[str, Any]:
    """Per operation its last run that changed the lake (dry runs skipped): when, outcome, counts; and
    how many erasure requests the register holds. An erasure shows its request id, never a value."""
    ledger = Ledger(cfg.lake.root)
    out: dict[str, Any] = {}
    for operation in OPERATIONS:
        record = next((r for r in ledger.newest_first(operation) if r.inputs.get("dry_run") != "True"), None)
        if record is None:
            continue
        out[operation] = {
            "finished_at": record.finished_at,
            "outcome": record.outcome,
            "counts": record.counts,
            **({"request": record.inputs.get("request")} if operation == "forget" else {}),
        }
    path = catalog.ERASURE_REGISTER.path(cfg)
    if lakefs.exists(path):
        out["erasure_requests"] = len(load(path).requests)
    return out
