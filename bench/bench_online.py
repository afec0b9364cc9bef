"""Benchmark: online reads, 1 entity × 50 features and 100 entities × 50 features, four ways, one Redis.

Gold of ``bench_materialize.bench_family`` (``--entities`` users × 50 features) is loaded into a
redis-server this script starts (no persistence) with medallion's writer; then, for each shape,
``--requests`` requests of random users through:

- **Feast SDK**: ``FeatureStore.get_online_features(features=[50 refs], entity_rows=...)`` in-process;
- **feast serve**: Feast's feature server (``feast serve``, its defaults) over HTTP, keep-alive client;
- **our reader**: ``medallion.serving.OnlineReader.get_online_features`` in-process (Feast's response
  shape, as a dict);
- **medallion serve**: ``medallion.serving.server.FeatureServer`` in its own process, over HTTP.

It prints p50 and p99 (ms) per path and shape and the ratios to the Feast SDK, after a warm-up of 50
requests per path.

    python bench/bench_online.py [--entities 20000] [--requests 1000]
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_materialize import (
    DAYS,
    ROOT,
    RedisProcess,
    bench_family,
    end_of,
    free_port,
    ours,
    setup,
    write_gold,
)

WARMUP = 50


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e3, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3


def timed(call: Callable[[list[str]], Any], batches: list[list[str]]) -> tuple[float, float]:
    for users in batches[:WARMUP]:
        call(users)
    samples = []
    for users in batches:
        started = time.perf_counter()
        call(users)
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


class HttpClient:
    """A keep-alive JSON client for ``POST /get-online-features``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        payload = orjson.dumps(body)
        headers = {"Content-Type": "application/json"}
        try:
            self.connection.request("POST", "/get-online-features", payload, headers)
            response = self.connection.getresponse()
        except (ConnectionError, http.client.HTTPException):  # the server closed an idle keep-alive
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.connection.request("POST", "/get-online-features", payload, headers)
            response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {data[:500]!r}")
        return orjson.loads(data)


def wait_http(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 180
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.3)


OUR_SERVER = """
import sys
sys.path.insert(0, {bench!r})
from bench_materialize import bench_family
from medallion.core.config import load_config
from medallion.serving.server import FeatureServer
cfg = load_config("local", {config!r}, {overrides!r}, environ={{}})
FeatureServer(cfg, port={port}, families=[bench_family(50)]).serve_forever()
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()

    import yaml

    from medallion.serving import OnlineReader, feast_settings
    from medallion.serving.store import quiet_feast

    work = Path(tempfile.mkdtemp(prefix="bench-online-"))
    lake = work / "lake"
    fam = bench_family(50)
    write_gold(lake, fam, args.entities)
    server = RedisProcess(work)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        cfg, store = setup(lake, fam, server.port)
        ours(cfg, store, fam, lake, end_of(DAYS[0]) - (end_of(DAYS[1]) - end_of(DAYS[0])), end_of(DAYS[-1]))
        refs = [f"{fam.name}:{f.name}" for f in fam.features]
        users = [k.decode()[k.decode().index("u_") :][:9] for k in server.client().scan_iter(count=10_000)]
        rnd = random.Random(7)
        shapes = {
            "1×50": [[rnd.choice(users)] for _ in range(args.requests)],
            "100×50": [rnd.sample(users, 100) for _ in range(args.requests)],
        }

        repo = work / "feature_repo"
        repo.mkdir()
        (repo / "feature_store.yaml").write_text(yaml.safe_dump(feast_settings(cfg)))
        feast_port, our_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDALLION")}
        feast_bin = str(Path(sys.executable).with_name("feast"))
        processes.append(
            subprocess.Popen(
                [feast_bin, "serve", "--host", "127.0.0.1", "--port", str(feast_port)],
                cwd=repo,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        overrides = {
            "lake.root": str(lake),
            "serving.online_store": "redis",
            "serving.redis_url": f"127.0.0.1:{server.port},db=0",
        }
        code = OUR_SERVER.format(
            bench=str(Path(__file__).resolve().parent),
            config=str(ROOT / "config"),
            overrides=overrides,
            port=our_port,
        )
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
        wait_http(feast_port, processes[0], "feast serve")
        wait_http(our_port, processes[1], "medallion serve")

        reader = OnlineReader(cfg, families=[fam])
        feast_http, our_http = HttpClient(feast_port), HttpClient(our_port)

        def sdk(batch: list[str]) -> Any:
            with quiet_feast():
                return store.get_online_features(
                    features=refs, entity_rows=[{"user_id": u} for u in batch]
                ).to_dict()

        paths: dict[str, Callable[[list[str]], Any]] = {
            "Feast SDK": sdk,
            "feast serve (HTTP)": lambda b: feast_http({"entities": {"user_id": b}, "features": refs}),
            "our reader": lambda b: reader.get_online_features({"user_id": b}, refs),
            "medallion serve (HTTP)": lambda b: our_http({"entities": {"user_id": b}, "features": refs}),
        }
        check = shapes["100×50"][0]
        assert paths["our reader"](check)["results"] == paths["medallion serve (HTTP)"](check)["results"]
        results: dict[tuple[str, str], tuple[float, float]] = {}
        for shape, batches in shapes.items():
            for name, call in paths.items():
                results[(shape, name)] = timed(call, batches)
                print(f"  {shape} {name}: p50/p99 {results[(shape, name)]}", file=sys.stderr, flush=True)
        reader.close()
    finally:
        for process in processes:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"{args.requests} requests per path and shape; {args.entities:,} users in Redis; latency in ms")
    for shape in shapes:
        base50, base99 = results[(shape, "Feast SDK")]
        for name in paths:
            p50, p99 = results[(shape, name)]
            print(
                f"{shape:>7}  {name:<24} p50 {p50:7.2f}  p99 {p99:7.2f}"
                f"   (p50 {p50 / base50:5.2f} ×, p99 {p99 / base99:5.2f} × Feast SDK)"
            )


if __name__ == "__main__":
    main()
