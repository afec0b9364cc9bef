"""A person's entries in the online store (Redis or SQLite), found and removed without Feast.

Feast keys an entity's online row by its serialized entity key (`medallion.serving.codec`): in Redis
the key plus the project name, one hash per entity holding every view's features; in SQLite the key
alone, in the ``entity_key`` column of one table per view. Deleting by key needs no scan. SQLite is
told to overwrite what it deletes (``secure_delete``) and is vacuumed, so no byte of the erased rows
stays in the file's free pages.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from medallion.core.config import Config
from medallion.features import USER
from medallion.serving import codec


def _keys(user_ids: Iterable[str], project: str) -> list[bytes]:
    return [codec.entity_key(USER.join_key, u, project) for u in sorted(user_ids)]


def remove_online(cfg: Config, user_ids: set[str], *, dry_run: bool) -> int:
    """Remove (or with ``dry_run`` count) the online entries of these stored user ids."""
    if not user_ids:
        return 0
    if cfg.serving.online_store == "redis":
        return _redis(cfg, user_ids, dry_run)
    # lazy: serving's store code (redis) loads only when forget reaches the online store
    from medallion.serving.store import feast_paths

    sqlite = feast_paths(cfg).sqlite
    return _sqlite(Path(sqlite), user_ids, cfg.serving.project, dry_run) if sqlite else 0


def _redis(cfg: Config, user_ids: set[str], dry_run: bool) -> int:
    # lazy: serving's store code (redis) loads only when forget reaches the online store
    from medallion.serving.redis_writer import redis_client
    from medallion.serving.store import redis_errors

    keys = _keys(user_ids, cfg.serving.project)
    with redis_errors(cfg):
        client = redis_client(cfg)
        try:
            return int(client.exists(*keys) if dry_run else client.delete(*keys))
        finally:
            client.close()


def _sqlite(path: Path, user_ids: set[str], project: str, dry_run: bool) -> int:
    if not path.is_file():
        return 0
    suffix = len(project.encode())
    keys = [k[:-suffix] for k in _keys(user_ids, project)]  # SQLite's keys carry no project name
    marks = ",".join("?" * len(keys))
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA secure_delete = ON")
        tables = [
            name
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if any(col[1] == "entity_key" for col in connection.execute(f'PRAGMA table_info("{name}")'))
        ]
        removed = 0
        for name in tables:
            if dry_run:
                (n,) = connection.execute(
                    f'SELECT COUNT(DISTINCT entity_key) FROM "{name}" WHERE entity_key IN ({marks})', keys
                ).fetchone()
                removed += int(n)
            else:
                removed += connection.execute(
                    f'DELETE FROM "{name}" WHERE entity_key IN ({marks})', keys
                ).rowcount
        connection.commit()
        if removed and not dry_run:
            connection.execute("VACUUM")
        return removed
    finally:
        connection.close()
