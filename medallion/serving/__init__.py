"""Feast glue: Feast configured from medallion's config, materialization, online and historical reads.

Importing this package imports none of its modules: each name below is loaded on first use (PEP 562),
so ``medallion features online`` and ``medallion serve``, which read the online store (Redis or SQLite)
without Feast (`reader`, `online_stores`, `server`), load neither pyarrow nor Feast (about 3 s). See
feature_repo/README.md for the ``feast`` CLI on the same stores.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_MODULE_OF = {
    "definitions": "definitions",
    "MaterializeResult": "materialize",
    "apply": "materialize",
    "materialize": "materialize",
    "OnlineReader": "reader",
    "read_online": "reader",
    "feature_refs": "retrieval",
    "historical_features": "retrieval",
    "online_features": "retrieval",
    "check_online_store": "store",
    "feast_paths": "store",
    "feast_settings": "store",
    "feature_store": "store",
    "feature_store_yaml": "store",
    "online_store_name": "store",
    "parse_redis_url": "store",
    "repo_config": "store",
    "write_feature_store_yaml": "store",
}

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


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    setattr(sys.modules[__name__], name, value)
    return value


class _Package(types.ModuleType):
    """``serving.materialize`` and ``serving.definitions`` are functions named like their modules: the
    import system binds a submodule to its parent's attribute when it loads it, which would hide the
    function. The function keeps the name; the module stays in ``sys.modules`` (``from
    medallion.serving.materialize import X`` is unaffected)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _MODULE_OF.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
