"""Which checkpoint owns Bronze: its batch ids name Bronze's and the DLQ's partitions.

Batch ids start again at 0 in a new checkpoint (another topic, or a deleted checkpoint): its batch 0
would silently replace the old batch 0 in every hour both touch. So Bronze records which checkpoint
owns it (`catalog.BRONZE_OWNER`, a name readers skip), and a different one stops before writing.
"""

from __future__ import annotations

import json

from medallion.core import lakefs
from medallion.core.catalog import BRONZE, BRONZE_OWNER, INGEST_CHECKPOINT
from medallion.core.config import Config
from medallion.core.errors import ConfigError


def checkpoint_id(cfg: Config) -> str:
    """The id Spark gave the query in its checkpoint: the same across restarts, new for a new checkpoint."""
    text = lakefs.read_text(lakefs.join(INGEST_CHECKPOINT.path(cfg), "metadata"))
    return str(json.loads(text.splitlines()[0])["id"])[:8]


def claim_bronze(cfg: Config, checkpoint: str) -> None:
    """Refuse to write a Bronze table that another checkpoint wrote; claim an unowned one."""
    marker = BRONZE_OWNER.path(cfg)
    mine = {"topic": cfg.kafka.topic, "checkpoint": checkpoint}
    if lakefs.exists(marker):
        owner = json.loads(lakefs.read_text(marker))
        if owner != mine:
            bronze = BRONZE.path(cfg)
            raise ConfigError(
                f"Bronze at {bronze} was written by the ingest of topic {owner.get('topic')!r} "
                f"with checkpoint {owner.get('checkpoint')}; this ingest (topic {mine['topic']!r}, checkpoint "
                f"{mine['checkpoint']} in {INGEST_CHECKPOINT.path(cfg)}) numbers its batches from 0 again and "
                "would overwrite Bronze's. Restore that checkpoint, or give this ingest its own lake "
                "(lake.root), or move Bronze and its DLQ away to ingest from scratch."
            )
        return
    lakefs.write_text(marker, json.dumps(mine))
