"""Write Gold rows into Redis in Feast's layout: whole batches of RESP commands built column-wise, pipelined.

Feast's own Redis writer builds one protobuf object per value and one ``HSET`` per entity through
redis-py's command packer, in Python; here the bytes of a batch's commands (``HSET key f1 v1 ...`` and,
with a key TTL, ``EXPIRE key s``) are built by Arrow and NumPy kernels (`medallion.serving.codec`) and
sent on one connection as a single buffer, then the replies are counted; the next batch is encoded on
another thread meanwhile. The result in Redis is the same bytes Feast writes
(``tests/serving/test_materialize.py`` compares them with Feast's, in one batch and in many), so Feast's
SDK, ``feast serve`` and our reader all read it.

A batch is idempotent (``HSET`` of the same values), so a connection fault retries the batch on a new
connection (``retry_transient``), then fails with the same clear message as the up-front check.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
from loguru import logger

from medallion.core.catalog import EVENT_TIMESTAMP
from medallion.core.config import Config
from medallion.core.errors import ConfigError, TransientError
from medallion.core.retry import retry_transient
from medallion.features import FeatureFamily
from medallion.serving import codec
from medallion.serving.gold import micros
from medallion.serving.store import parse_redis_url, unreachable_message

BATCH_ROWS = 5_000  # smaller batches overlap better, and their matrices stay in cache


def redis_client(cfg: Config, *, timeout_s: float = 10.0) -> Any:
    """A redis-py client on ``serving.redis_url`` that never retries on its own (our policy does)."""
    # lazy: redis loads only for a Redis online store
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    address = parse_redis_url(cfg.serving.redis_url)
    options = {k: v for k, v in address.options.items() if k in ("password", "username", "ssl")}
    return redis.Redis(
        host=address.host,
        port=address.port,
        db=address.db,
        socket_connect_timeout=min(timeout_s, 2.0),
        socket_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        **options,
    )


class RedisWriter:
    """Pipelined writes of one feature view's rows; ``rows_written`` counts what Redis acknowledged."""

    def __init__(
        self,
        cfg: Config,
        *,
        ttl_seconds: int | None,
        attempts: int = 5,
        max_wait_s: float = 8.0,
        max_delay_s: float = 60.0,
    ) -> None:
        self.cfg = cfg
        self.project = cfg.serving.project
        self.ttl_seconds = ttl_seconds
        self.address = parse_redis_url(cfg.serving.redis_url)
        self._client = redis_client(cfg)
        self._retry = retry_transient(attempts=attempts, max_wait_s=max_wait_s, max_delay_s=max_delay_s)

    def close(self) -> None:
        self._client.close()

    def commands(self, family: FeatureFamily, rows: pa.Table) -> tuple[np.ndarray, int]:
        """The RESP bytes of ``rows`` (one HSET, and EXPIRE, per row) and the number of replies."""
        keys = codec.encode_entity_keys(family.entity.join_key, rows[family.entity.join_key], self.project)
        fields = [codec.ts_field(family.name)] + [
            codec.field_name(family.name, f.name) for f in family.features
        ]
        values = [codec.padded(codec.encode_timestamps(micros(rows[EVENT_TIMESTAMP])))] + [
            codec.value_matrix(rows[f.name].combine_chunks(), f.type) for f in family.features
        ]
        commands = codec.hset_matrix(keys, fields, values, self.ttl_seconds)
        return commands, rows.num_rows * (2 if self.ttl_seconds else 1)

    def write(
        self, family: FeatureFamily, rows: pa.Table, progress: Callable[[int], None] | None = None
    ) -> int:
        """Write every row of ``rows`` (a Gold table slice: join key, event_timestamp, features).

        The next batch is encoded on a thread of its own while Redis takes this one (NumPy's and Arrow's
        kernels release the GIL; reading the replies barely needs it), so Redis does not wait for the
        encoder between batches. Batches are still sent and acknowledged one after the other."""
        written = 0
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="medallion-resp")
        try:
            ahead: deque[Future[tuple[np.ndarray, int]]] = deque()
            for offset in range(0, rows.num_rows, BATCH_ROWS):
                ahead.append(pool.submit(self.commands, family, rows.slice(offset, BATCH_ROWS)))
                if len(ahead) > 1:
                    written += self._send_encoded(*ahead.popleft().result(), progress)
            while ahead:
                written += self._send_encoded(*ahead.popleft().result(), progress)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return written

    def _send_encoded(
        self, commands: np.ndarray, replies: int, progress: Callable[[int], None] | None
    ) -> int:
        self._retry(self._send)(commands.data, replies)
        rows = replies // (2 if self.ttl_seconds else 1)
        if progress is not None:
            progress(rows)
        return rows

    def _send(self, payload: memoryview, replies: int) -> None:
        # lazy: redis loads only for a Redis online store
        import redis

        pool = self._client.connection_pool
        try:
            connection = pool.get_connection()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            raise TransientError(unreachable_message(self.address, exc)) from None
        healthy = False
        try:
            connection.send_packed_command([payload], check_health=False)
            errors = read_replies(connection._sock, replies)
            healthy = True
        except redis.exceptions.AuthenticationError as exc:
            raise ConfigError(
                f"The Redis online store at {self.address} refused the credentials ({exc}): check "
                "password= in serving.redis_url."
            ) from None
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            logger.debug("Redis write batch failed: {exc}", exc=exc)
            raise TransientError(unreachable_message(self.address, exc)) from None
        finally:
            if not healthy:
                connection.disconnect()
            pool.release(connection)
        if errors:
            raise TransientError(
                f"The Redis online store at {self.address} refused {len(errors)} of {replies} writes "
                f"(first: {errors[0]}); if it is out of memory, free some or raise its maxmemory."
            )


def read_replies(sock: Any, count: int) -> list[str]:
    """Read ``count`` one-line RESP replies off ``sock``; the refused commands' error messages.

    Every reply to HSET and EXPIRE is one line (``:<n>`` or ``-<error>``), so the replies of a batch are
    counted in the bytes received rather than parsed one by one through redis-py (which cost as much
    CPU as Redis spent on the commands); an error line is the only one that starts with ``-``."""
    # lazy: redis loads only for a Redis online store
    import redis

    buffer = bytearray(1 << 18)
    view = memoryview(buffer)
    pending = b""
    seen = 0
    errors: list[str] = []
    while seen < count:
        received = sock.recv_into(buffer)
        if not received:
            raise redis.exceptions.ConnectionError("Redis closed the connection while replying")
        data = pending + bytes(view[:received])
        end = data.rfind(b"\n") + 1
        complete, pending = data[:end], data[end:]
        seen += complete.count(b"\n")
        if complete.startswith(b"-") or b"\n-" in complete:
            errors += [
                line[1:].decode(errors="replace") for line in complete.split(b"\r\n") if line[:1] == b"-"
            ]
    if seen > count or pending:
        raise redis.exceptions.ConnectionError(f"Redis sent {seen} replies and more for {count} commands")
    return errors


def raw_write_ceiling(cfg: Config, family: FeatureFamily, rows: pa.Table) -> float:
    """Seconds Redis itself takes for ``rows``' commands, pre-built (no encoding timed), sent and
    acknowledged batch by batch as `RedisWriter.write` does: the ceiling any writer of the same bytes
    can reach on this connection. For ``bench/bench_materialize.py``."""
    writer = RedisWriter(cfg, ttl_seconds=None)
    try:
        batches = [
            writer.commands(family, rows.slice(offset, BATCH_ROWS))
            for offset in range(0, rows.num_rows, BATCH_ROWS)
        ]
        payloads = [(c.tobytes(), n) for c, n in batches]
        started = time.perf_counter()
        for payload, replies in payloads:
            writer._send(memoryview(payload), replies)
        return time.perf_counter() - started
    finally:
        writer.close()
