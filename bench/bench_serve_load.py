"""Benchmark: `medallion serve` against `feast serve` under concurrent load, in the same run, on one Redis.

Gold of ``bench_materialize.bench_family`` (``--entities`` users × 50 features) is loaded into a
redis-server this script starts (no persistence); then both servers run in their own processes on
loopback (`medallion serve` once per ``--workers`` value of ``serve.workers``), and for each shape
(1 entity × 50 features, 100 × 50) and each number of clients (1, 8, 32)
an asyncio client in this process keeps that many keep-alive connections busy, one request in flight
each, for ``--seconds`` (requests of random users, from a pool built up front). It prints throughput
(requests/s) and p50 / p99 / p999 latency per server, shape and client count, the throughput ratio, the
target at 32 clients (p99 ≤ 10 ms for 1×50, ≥ 10 × feast serve's throughput) and whether it is met, and
the load average (1 minute) at the start and end of every figure: the machine may be shared, so say it
with the figures.

    python bench/bench_serve_load.py [--entities 20000] [--seconds 5] [--clients 1 8 32] [--workers 1 2 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
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
from bench_online import OUR_SERVER, wait_http

# `medallion serve` as the CLI runs it with serve.workers > 1 (the supervisor and its workers), on the
# benchmark's feature view.
OUR_WORKERS = """
import sys
sys.path.insert(0, {bench!r})
from bench_materialize import bench_family
from medallion.core.config import load_config
from medallion.serving.workers import Supervisor
cfg = load_config("local", {config!r}, {overrides!r}, environ={{}})
sys.exit(Supervisor(cfg, "127.0.0.1", {port}, {workers}, families=[bench_family(50)]).run())
"""
POOL = 200  # distinct request bodies per shape, cycled
QUIET_LOG = "from medallion.cli.logs import configure_logging\nconfigure_logging('INFO', False)\n"
MAX_SECONDS = 60.0  # bound on --seconds: the run stays short whatever is asked


def request_bytes(port: int, body: dict[str, Any]) -> bytes:
    data = orjson.dumps(body)
    head = (
        f"POST /get-online-features HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


async def _client(
    port: int, payloads: list[bytes], stop_at: float, latencies: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    k = random.randrange(len(payloads))
    try:
        while time.perf_counter() < stop_at:
            payload = payloads[k % len(payloads)]
            k += 1
            started = time.perf_counter()
            try:
                writer.write(payload)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
            except (asyncio.IncompleteReadError, ConnectionError):
                # The server closed the connection without an answer: an error, and a new connection.
                errors.append(0)
                if len(errors) > 100:
                    return
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            latencies.append(time.perf_counter() - started)
            status = int(head[9:12])
            if status != 200:
                errors.append(status)
                if len(errors) > 100:
                    return
            if b"connection: close" in head.lower():
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


def load(port: int, payloads: list[bytes], clients: int, seconds: float) -> dict[str, float]:
    async def run() -> tuple[list[float], list[int], float]:
        latencies: list[float] = []
        errors: list[int] = []
        started = time.perf_counter()
        stop_at = started + seconds
        await asyncio.gather(*(_client(port, payloads, stop_at, latencies, errors) for _ in range(clients)))
        return latencies, errors, time.perf_counter() - started

    latencies, errors, wall = asyncio.run(run())
    latencies.sort()

    def q(p: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1e3 if latencies else float("nan")
        )

    return {
        "requests": len(latencies),
        "rps": len(latencies) / wall,
        "p50": q(0.50),
        "p99": q(0.99),
        "p999": q(0.999),
        "errors": len(errors),
    }


def load_average_1m() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2, 4], help="serve.workers values to measure"
    )
    args = parser.parse_args()
    seconds = min(args.seconds, MAX_SECONDS)
    clients_list = [max(1, min(c, 256)) for c in args.clients]
    workers_list = list(dict.fromkeys(max(1, min(w, 8)) for w in args.workers))

    import yaml

    from medallion.serving import feast_settings

    work = Path(tempfile.mkdtemp(prefix="bench-serve-load-"))
    lake = work / "lake"
    fam = bench_family(50)
    write_gold(lake, fam, args.entities)
    server = RedisProcess(work)
    processes: list[subprocess.Popen[bytes]] = []
    results: dict[tuple[str, str, int], dict[str, float]] = {}
    before = load_average()
    try:
        cfg, store = setup(lake, fam, server.port)
        ours(cfg, store, fam, lake, end_of(DAYS[0]) - (end_of(DAYS[1]) - end_of(DAYS[0])), end_of(DAYS[-1]))
        refs = [f"{fam.name}:{f.name}" for f in fam.features]
        users = [k.decode()[k.decode().index("u_") :][:9] for k in server.client().scan_iter(count=10_000)]
        rnd = random.Random(7)

        repo = work / "feature_repo"
        repo.mkdir()
        (repo / "feature_store.yaml").write_text(yaml.safe_dump(feast_settings(cfg)))
        names = {w: f"medallion ×{w}" for w in workers_list}  # serve.workers
        ports = {"feast serve": free_port()} | {name: free_port() for name in names.values()}
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDALLION")}
        feast_bin = str(Path(sys.executable).with_name("feast"))
        processes.append(
            subprocess.Popen(
                # --max-requests 0: gunicorn would otherwise restart feast's worker after about 1,000
                # requests, resetting every connection and reloading the store mid-run.
                [
                    feast_bin,
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(ports["feast serve"]),
                    "--max-requests",
                    "0",
                ],
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
        # As `medallion serve` runs: our log at INFO (the access log at DEBUG is not written); one
        # worker is the threaded server in the process, more a supervisor forking its workers.
        for w, name in names.items():
            code = QUIET_LOG + (OUR_SERVER if w == 1 else OUR_WORKERS).format(
                bench=str(Path(__file__).resolve().parent),
                config=str(ROOT / "config"),
                overrides=overrides,
                port=ports[name],
                workers=w,
            )
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
            )
        for (name, port), process in zip(ports.items(), processes, strict=True):
            wait_http(port, process, name)

        shapes = {"1×50": 1, "100×50": 100}
        for shape, n in shapes.items():
            bodies = [{"entities": {"user_id": rnd.sample(users, n)}, "features": refs} for _ in range(POOL)]
            for name, port in ports.items():
                payloads = [request_bytes(port, b) for b in bodies]
                load(port, payloads, 1, min(1.0, seconds))  # warm-up
                for clients in clients_list:
                    start_load = load_average_1m()
                    r = load(port, payloads, clients, seconds)
                    r["load0"], r["load1"] = start_load, load_average_1m()
                    results[(shape, name, clients)] = r
                    print(
                        f"  {shape} {name} {clients} clients: {r['rps']:.0f} req/s, p50 {r['p50']:.2f} "
                        f"p99 {r['p99']:.2f} p999 {r['p999']:.2f} ms, errors {r['errors']}, "
                        f"load {r['load0']:.2f} -> {r['load1']:.2f}",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        for process in processes:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    after = load_average()

    print(f"{seconds:g} s per run, {args.entities:,} users in Redis, loopback; latency in ms")
    print(f"load average before {before}, after {after} ({os.cpu_count()} cores)")
    print(
        f"{'shape':>7} {'clients':>7}  {'server':<14} {'req/s':>8} {'× feast':>7} {'p50':>7} {'p99':>7} "
        f"{'p999':>7} {'errors':>6}  load 1 min (start → end)"
    )
    for shape, _ in shapes.items():
        for clients in clients_list:
            feast = results[(shape, "feast serve", clients)]["rps"]
            for name in ports:
                r = results[(shape, name, clients)]
                ratio = f"{r['rps'] / max(feast, 1e-9):.1f}" if name != "feast serve" else ""
                print(
                    f"{shape:>7} {clients:>7}  {name:<14} {r['rps']:>8.0f} {ratio:>7} {r['p50']:>7.2f} "
                    f"{r['p99']:>7.2f} {r['p999']:>7.2f} {r['errors']:>6}  {r['load0']:.2f} → {r['load1']:.2f}"
                )
    top = max(clients_list)
    feast = results[("1×50", "feast serve", top)]["rps"]
    for w, name in names.items():
        one = results[("1×50", name, top)]
        ratio = one["rps"] / max(feast, 1e-9)
        met = one["p99"] <= 10.0 and ratio >= 10.0
        print(
            f"target at {top} clients, 1×50, {w} worker(s): p99 ≤ 10 ms (got {one['p99']:.2f}) and ≥ 10 × "
            f"feast serve's throughput (got {ratio:.1f} ×): {'MET' if met else 'NOT MET'}"
        )


if __name__ == "__main__":
    main()
