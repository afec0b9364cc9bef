"""Benchmark: Gold → Redis, medallion's writer against Feast's stock ``materialize``, and Redis's ceiling.

Generates Gold Parquet directly with pyarrow, in the Gold layout (``gold/bench_wide/feature_date=D/
part-*.parquet`` with ``user_id``, ``event_timestamp``, ``created_timestamp`` and the features), for
``--entities`` users × ``--features`` features (doubles, longs, a few strings and booleans, one 16-double
array) over three feature dates (each user present on about two of them, so the newest row per user must
be chosen). A feature view for it is registered from a ``FeatureFamily`` through medallion's own
``definitions``. On a redis-server this script starts on a free port (no persistence), in one run:

- **stock**: Feast's ``FeatureStore.materialize(start, end)`` (Feast 0.67, dask file store, ``skip_dedup``);
- **medallion**: what ``medallion materialize`` does per view (partition fingerprints, newest row per
  entity with pyarrow, pipelined writer, Feast registry interval), same window, after FLUSHDB;
- **ceiling**: the same HSET commands pre-built, then only sent and acknowledged (a pipelined raw-write
  loop: what Redis and the socket allow on this machine), and ``redis-benchmark`` HSET with 51 fields,
  pipelined, as a second opinion.

Checked: for ``--check`` sampled users, every hash field written by the two paths is byte-identical.

Ours and the ceiling run ``--repeat`` times, alternated, and their medians are reported (the host is
shared: one burst of someone else's load would otherwise decide the ratio); stock Feast runs once.

    python bench/bench_materialize.py [--entities 200000] [--features 50] [--check 2000] [--repeat 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from medallion.core.config import Config, load_config
from medallion.features import USER, Feature, FeatureFamily

ROOT = Path(__file__).resolve().parents[1]
VIEW = "bench_wide"
DAYS = [dt.date(2026, 1, 1) + dt.timedelta(days=k) for k in range(3)]


def bench_family(n_features: int) -> FeatureFamily:
    kinds = ["float64"] * (n_features // 2) + ["int64"] * (n_features - n_features // 2 - 5)
    kinds += ["string", "string", "bool", "float64", "float_array"]
    return FeatureFamily(
        name=VIEW,
        entity=USER,
        description="Benchmark family: wide rows of every type.",
        features=tuple(Feature(f"f{k:03d}_{kind}", kind, f"feature {k}") for k, kind in enumerate(kinds)),
        window_days=1,
        tags={"entity": "user"},
    )


def end_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def write_gold(lake: Path, fam: FeatureFamily, entities: int, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    table_dir = lake / "gold" / fam.name
    for i, day in enumerate(DAYS):
        present = np.nonzero(rng.random(entities) < (0.7 if i < len(DAYS) - 1 else 0.6))[0]
        n = len(present)
        columns: dict[str, Any] = {
            "user_id": pa.array([f"u_{k:07d}" for k in present]),
            "event_timestamp": pa.array(
                np.full(n, int(end_of(day).timestamp() * 1e6)), pa.timestamp("us", tz="UTC")
            ),
            "created_timestamp": pa.array(
                np.full(n, int(end_of(day).timestamp() * 1e6) + 3_600_000_000), pa.timestamp("us", tz="UTC")
            ),
        }
        for feature in fam.features:
            if feature.dtype == "float64":
                values = rng.random(n) * 1000
                columns[feature.name] = pa.array(values, mask=rng.random(n) < 0.05)
            elif feature.dtype == "int64":
                columns[feature.name] = pa.array(rng.integers(0, 10_000, n), mask=rng.random(n) < 0.05)
            elif feature.dtype == "string":
                choices = np.array(["morning", "afternoon", "evening", "night"])
                columns[feature.name] = pa.array(choices[rng.integers(0, 4, n)])
            elif feature.dtype == "bool":
                columns[feature.name] = pa.array(rng.random(n) < 0.5)
            else:
                flat = rng.random(n * 16)
                columns[feature.name] = pa.ListArray.from_arrays(
                    np.arange(0, n * 16 + 1, 16, dtype=np.int32), flat
                )
        part = table_dir / f"feature_date={day.isoformat()}"
        part.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(columns), part / f"part-00000-{uuid.uuid4()}.c000.snappy.parquet")
    (table_dir / "_SUCCESS").touch()
    return table_dir


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    """A redis-server of this benchmark's own, without persistence."""

    def __init__(self, workdir: Path) -> None:
        import redis

        self.port = free_port()
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ]
            + ["--dir", str(workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        for _ in range(200):
            try:
                redis.Redis(port=self.port).ping()
                return
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def client(self, db: int = 0) -> Any:
        import redis

        return redis.Redis(port=self.port, db=db)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def setup(lake: Path, fam: FeatureFamily, port: int) -> tuple[Config, Any]:
    """Config on the lake and Redis, and a FeatureStore with the bench view registered."""
    from feast import FeatureStore

    from medallion.serving import definitions, repo_config

    cfg = load_config(
        "local",
        ROOT / "config",
        {
            "lake.root": str(lake),
            "serving.online_store": "redis",
            "serving.redis_url": f"127.0.0.1:{port},db=0",
            "serving.redis_key_ttl_days": 0,
        },
        environ={},
    )
    store = FeatureStore(config=repo_config(cfg))
    objects = definitions({fam.name: str(lake / "gold" / fam.name)}, dt.timedelta(days=30), families=[fam])
    store.apply(objects)
    return cfg, store


def ours(
    cfg: Config, store: Any, fam: FeatureFamily, lake: Path, start: dt.datetime, end: dt.datetime
) -> int:
    """The steps `medallion materialize` runs for one view (medallion/serving/materialize.py)."""
    from medallion.serving.gold import latest_rows, partition_fingerprints
    from medallion.serving.redis_writer import RedisWriter

    path = str(lake / "gold" / fam.name)
    partition_fingerprints(path)
    rows = latest_rows(path, fam, start, end)
    writer = RedisWriter(cfg, ttl_seconds=None)
    try:
        written = writer.write(fam, rows)
    finally:
        writer.close()
    store.registry.apply_materialization(store.get_feature_view(fam.name), store.project, start, end)
    return written


def sample_hashes(client: Any, keys: list[bytes]) -> list[dict[bytes, bytes]]:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    return list(pipe.execute())


def redis_benchmark(port: int, fields: int, requests: int = 100_000) -> float | None:
    """redis-benchmark's HSET with ``fields`` field/value pairs per command, pipelined 64 deep."""
    if shutil.which("redis-benchmark") is None:
        return None
    args = " ".join(f"f{k} v{k:08d}" for k in range(fields))
    done = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-n", str(requests), "-P", "64", "-q", "-r", "1000000"]
        + ["HSET", "bench:__rand_int__", *args.split()],
        capture_output=True,
        text=True,
        timeout=300,
    )
    for line in done.stdout.replace("\r", "\n").splitlines():
        if "requests per second" in line:  # "HSET bench:...: 12345.67 requests per second, p50=..."
            return float(line.split("requests per second")[0].rsplit(":", 1)[1])
    return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entities", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--check", type=int, default=2000)
    parser.add_argument("--keep", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=5, help="runs of ours and the ceiling (medians)")
    args = parser.parse_args()
    load_at_start = os.getloadavg()[0]

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-materialize-"))
    lake = work / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    fam = bench_family(args.features)
    t = time.perf_counter()
    write_gold(lake, fam, args.entities)
    print(
        f"Gold: {args.entities:,} users × {len(fam.features)} features, 3 dates ({time.perf_counter() - t:.1f} s)"
    )
    server = RedisProcess(work)
    try:
        from medallion.serving.gold import latest_rows
        from medallion.serving.store import quiet_feast

        cfg, store = setup(lake, fam, server.port)
        start, end = end_of(DAYS[0]) - dt.timedelta(days=1), end_of(DAYS[-1])
        expected = latest_rows(str(lake / "gold" / fam.name), fam, start, end).num_rows
        client = server.client()

        client.flushdb()
        t = time.perf_counter()
        with quiet_feast():
            store.materialize(start_date=start, end_date=end, feature_views=[fam.name])
        stock_s = time.perf_counter() - t
        assert client.dbsize() == expected, (client.dbsize(), expected)
        keys = random.Random(5).sample(sorted(client.scan_iter(count=10_000)), min(args.check, expected))
        stock_values = sample_hashes(client, keys)

        from medallion.serving.redis_writer import raw_write_ceiling

        rows = latest_rows(str(lake / "gold" / fam.name), fam, start, end)
        ours_runs, ceiling_runs, identical = [], [], True
        for _ in range(args.repeat):  # alternated, so that a burst of load on a shared host hits both
            client.flushdb()
            t = time.perf_counter()
            written = ours(cfg, store, fam, lake, start, end)
            ours_runs.append(time.perf_counter() - t)
            assert written == expected == client.dbsize()
            identical = identical and sample_hashes(client, keys) == stock_values
            client.flushdb()
            ceiling_runs.append(raw_write_ceiling(cfg, fam, rows))
        client.flushdb()
        ours_s, ceiling_s = statistics.median(ours_runs), statistics.median(ceiling_runs)
        bench_hset = redis_benchmark(server.port, len(fam.features) + 1)
    finally:
        server.stop()
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    stock_rate, our_rate, ceiling_rate = expected / stock_s, expected / ours_s, expected / ceiling_s
    print(
        f"rows (one per user): {expected:,}; checked users identical in both paths: {identical} ({len(keys):,})"
    )
    print(f"stock Feast materialize : {stock_s:7.2f} s  {stock_rate:10,.0f} rows/s")
    print(
        f"medallion materialize   : {ours_s:7.2f} s  {our_rate:10,.0f} rows/s  ({our_rate / stock_rate:.1f} × stock)"
    )
    print(
        f"ceiling (pre-built RESP): {ceiling_s:7.2f} s  {ceiling_rate:10,.0f} rows/s  "
        f"(ours = {our_rate / ceiling_rate:.0%})"
    )
    print(
        f"medians of {args.repeat} alternated runs; ours {', '.join(f'{s:.2f}' for s in ours_runs)} s; "
        f"ceiling {', '.join(f'{s:.2f}' for s in ceiling_runs)} s"
    )
    print(f"1-minute load average: {load_at_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
    if bench_hset is not None:
        print(f"redis-benchmark HSET of {len(fam.features) + 1} fields, -P 64: {bench_hset:,.0f} commands/s")
    if not identical:
        sys.exit("the two paths wrote different values")


if __name__ == "__main__":
    main()
