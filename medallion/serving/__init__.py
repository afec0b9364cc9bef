"""Feast glue: Feast configured from medallion's config, materialization, online and historical reads.

Importing this package does not import Feast (about 3 s): every function imports it when called, so
the CLI stays fast. ``OnlineReader`` and ``medallion serve`` (`server`) read Redis or SQLite without Feast at all.
See feature_repo/README.md for the ``feast`` CLI on the same stores.
"""

from __future__ import annotations

from medallion.serving.definitions import definitions
from medallion.serving.materialize import MaterializeResult, apply, materialize
from medallion.serving.reader import OnlineReader, read_online
from medallion.serving.retrieval import feature_refs, historical_features, online_features
from medallion.serving.store import (
    check_online_store,
    feast_paths,
    feast_settings,
    feature_store,
    feature_store_yaml,
    online_store_name,
    parse_redis_url,
    repo_config,
    write_feature_store_yaml,
)

__all__ = [
    "MaterializeResult",
    "OnlineReader",
    "apply",
    "check_online_store",
    "definitions",
    "feast_paths",
    "feast_settings",
    "feature_refs",
    "feature_store",
    "feature_store_yaml",
    "historical_features",
    "materialize",
    "online_features",
    "online_store_name",
    "parse_redis_url",
    "read_online",
    "repo_config",
    "write_feature_store_yaml",
]
