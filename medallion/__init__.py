"""medallion: Kafka → Bronze → Silver → Gold → Feast, from one command."""

import os as _os

RUN_ID_ENV = "MEDALLION_RUN_ID"

if _os.environ.get(RUN_ID_ENV):
    # A process a stage started (Spark's Python workers inherit the environment): its log lines carry the
    # stage's run id too, as the driver's do (`logger.contextualize` there).
    from loguru import logger as _logger

    _logger.configure(extra={"run_id": _os.environ[RUN_ID_ENV]})
