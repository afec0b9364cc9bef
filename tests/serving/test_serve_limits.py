"""`medallion serve` (a real server process on a real Redis) against hostile and broken clients.

Each hostile client gets its 4xx (or is dropped) while a normal client, on its own keep-alive
connection, keeps getting right answers; the server's memory and threads stay bounded. Limits are set
small through the environment (``MEDALLION__SERVE__*``) so the test is quick. Local addresses only;
every loop is bounded.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from medallion import serving
from medallion.core.config import Config
from medallion.serving import codec
from medallion.serving.server import FeatureServer
from tests.serving.conftest import CONFIG_DIR
from tests.serving.families_gold import write_all

pytestmark = [pytest.mark.integration]

REPO = CONFIG_DIR.parent
LIMITS = {
    "MEDALLION__SERVE__MAX_BODY_BYTES": "65536",
    "MEDALLION__SERVE__MAX_ENTITIES": "500",
    "MEDALLION__SERVE__READ_TIMEOUT_S": "1.5",
    "MEDALLION__SERVE__IDLE_TIMEOUT_S": "1.5",
    "MEDALLION__SERVE__MAX_CONNECTIONS": "64",
    "MEDALLION__SERVE__SHUTDOWN_GRACE_S": "10",
}
GOOD = {"entities": {"user_id": ["u_000001", "u_000002"]}, "feature_service": "user_profile"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _proc(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


class Served:
    def __init__(self, process: subprocess.Popen[bytes], port: int, stderr: Path, workers: int) -> None:
        self.process, self.port, self.stderr, self.workers = process, port, stderr, workers
        self.started: list[int] = []  # the worker processes it started with

    def worker_pids(self) -> list[int]:
        """The processes that answer: the server's workers, or the server itself with one worker."""
        pid = self.process.pid
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        return children or [pid]

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def raw(self, payload: bytes, *, wait_s: float = 5.0) -> bytes:
        """Send ``payload`` on a new connection and read until the server closes it (or ``wait_s``)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=wait_s) as sock:
            sock.sendall(payload)
            chunks = []
            try:
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
            except TimeoutError:
                pass
            return b"".join(chunks)


def ask(
    connection: http.client.HTTPConnection, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    connection.request(
        "POST", "/get-online-features", data, {"Content-Type": "application/json", **(headers or {})}
    )
    response = connection.getresponse()
    return response.status, orjson.loads(response.read())


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer[9:12])


@pytest.fixture(scope="module")
def lake_in_redis(
    tmp_path_factory: pytest.TempPathFactory, redis_server: Any, serving_config: Callable[..., Config]
) -> Iterator[Config]:
    lake = tmp_path_factory.mktemp("limits") / "lake"
    today = dt.datetime.now(dt.UTC).date()
    write_all(lake, [today - dt.timedelta(days=1), today], 20)
    url = redis_server.url(11)
    redis_server.client(11).flushdb()
    cfg = serving_config(lake, **{"serving.online_store": "redis", "serving.redis_url": url})
    serving.materialize(cfg)
    yield cfg
    redis_server.client(11).flushdb()


def start_serving(cfg: Config, workers: int, log_dir: Path) -> Served:
    """``medallion serve`` (the CLI, in its own process) with ``workers`` worker processes, once it
    answers ``/health``."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDALLION")}
    env |= LIMITS | {
        "MEDALLION__SERVE__WORKERS": str(workers),
        "MEDALLION_CONFIG_DIR": str(CONFIG_DIR),
        "MEDALLION__LAKE__ROOT": cfg.lake.root,
        "MEDALLION__SERVING__ONLINE_STORE": "redis",
        "MEDALLION__SERVING__REDIS_URL": cfg.serving.redis_url,
        "PYTHONPATH": str(REPO),
    }
    stderr = log_dir / "stderr.txt"
    with stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "medallion.cli.main", "serve", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    served = Served(process, port, stderr, workers)
    deadline = time.monotonic() + 60
    while True:
        try:
            connection = served.connection()
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                served.started = served.worker_pids()
                return served
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_serving(served)
            pytest.fail(f"medallion serve did not come up: {stderr.read_text()[-3000:]}")
        time.sleep(0.2)


def stop_serving(served: Served) -> None:
    """Whatever is left of it: the supervisor, then any worker still there."""
    pids = set(served.started) | set(served.worker_pids() if served.process.poll() is None else [])
    pids.discard(served.process.pid)
    if served.process.poll() is None:
        served.process.kill()
        served.process.wait()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module", params=[1, 2], ids=["1-worker", "2-workers"])
def served(
    lake_in_redis: Config, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Served]:
    """``medallion serve`` as one process, then as a supervisor of two worker processes."""
    served = start_serving(lake_in_redis, request.param, tmp_path_factory.mktemp("serve-log"))
    try:
        yield served
    finally:
        stop_serving(served)


def test_bad_framing_gets_a_4xx_and_no_traceback(served: Served) -> None:
    head = b"POST /get-online-features HTTP/1.1\r\nHost: x\r\n"
    cases = {
        b"Content-Length: 10000000\r\n\r\n": 413,  # over max_body_bytes: refused unread
        b"Content-Length: -1\r\n\r\n{}": 400,
        b"Content-Length: abc\r\n\r\n{}": 400,
        b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}": 400,
        b"\r\n{}": 411,  # no Content-Length
        b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n": 411,
    }
    for tail, expected in cases.items():  # each its own answer, not the read timeout's 408
        answer = served.raw(head + tail)
        assert status_of(answer) == expected, (tail, answer[:300])
        assert b"Connection: close" in answer
    heads = {  # the request line and headers, read by the server itself
        b"GARBAGE\r\n\r\n": 400,
        b"GET /health HTTP/2.0\r\n\r\n": 505,
        b"GET /health HTTP/1.1\r\nNo colon here\r\n\r\n": 400,
        b"GET /health HTTP/1.1\r\n folded: header\r\n\r\n": 400,
        b"GET /health HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n": 431,
        b"GET /health HTTP/1.1\r\nX-A: " + b"b" * 70_000 + b"\r\n\r\n": 431,
    }
    for head, expected in heads.items():
        answer = served.raw(head)
        assert status_of(answer) == expected, (head[:80], answer[:300])
        assert b"Connection: close" in answer
    answer = served.raw(b"GET /health HTTP/1.0\r\nhOsT: x\r\n\r\n")  # 1.0, names in any case
    assert status_of(answer) == 200 and b"Connection: close" in answer
    assert "Traceback" not in served.stderr.read_text()


def test_requests_are_read_strictly(served: Served) -> None:
    connection = served.connection()
    bad = [
        ({"entities": {"user_id": "u_000042"}, "feature_service": "user_profile"}, "must be a list"),
        ({**GOOD, "full_feature_names": "false"}, "full_feature_names"),
        ({**GOOD, "feature_servce": "x"}, "'feature_servce'"),
        (
            {"entities": {"user_id": [42]}, "feature_service": "user_profile"},
            "entities.user_id[0] is a number",
        ),
        (
            {"entities": {"userid": ["u_1"]}, "feature_service": "user_profile"},
            "entities.userid is not a join key",
        ),
        ({"entities": {"user_id": ["u_1"]}}, '"features"'),
        ({"entities": {"user_id": ["u_1"]}, "feature_service": "ranking"}, "lacks item_id"),
        (b'{"entities": {"user_id": ["u_\xff\xfe"]}, "feature_service": "user_profile"}', "UTF-8"),
        (b'{"entities": ', "not valid JSON"),
    ]
    for body, named in bad:
        status, answer = ask(connection, body)
        assert status == 400 and named in answer["detail"], (body, answer)
    rows = [f"u_{n:06d}" for n in range(501)]
    status, answer = ask(connection, {"entities": {"user_id": rows}, "feature_service": "user_profile"})
    assert status == 413 and "at most 500" in answer["detail"] and "serve.max_entities" in answer["detail"]
    status, answer = ask(connection, GOOD)  # the same keep-alive connection still answers
    assert status == 200 and answer["results"][0]["values"] == GOOD["entities"]["user_id"]


def test_hostile_clients_do_not_stop_a_normal_one(served: Served) -> None:
    pids = served.worker_pids()
    assert len(pids) == served.workers
    normal = served.connection()
    assert ask(normal, GOOD)[0] == 200
    rss_before = sum(_proc(pid, "VmRSS") for pid in pids)

    # 50 half-sent requests and 10 silent connections, then a flood past max_connections (64 per
    # worker): at least 30 connections more than all workers together may hold.
    capacity = 64 * served.workers
    half = b'POST /get-online-features HTTP/1.1\r\nHost: x\r\nContent-Length: 400\r\n\r\n{"entities": '
    hostile = []
    for k in range(60):
        sock = socket.create_connection(("127.0.0.1", served.port), timeout=10)
        if k < 50:
            sock.sendall(half)
        hostile.append(sock)
    flood = [
        socket.create_connection(("127.0.0.1", served.port), timeout=10) for _ in range(capacity - 61 + 30)
    ]

    answered = [ask(normal, GOOD) for _ in range(5)]  # the normal client, meanwhile
    assert all(
        status == 200 and answer["results"][0]["values"] == GOOD["entities"]["user_id"]
        for status, answer in answered
    ), answered
    for pid in pids:
        assert _proc(pid, "Threads") <= 64 + 8, "one thread per connection, at most max_connections"

    refused = 0
    for sock in flood:  # the connections past the limit were answered 503 and closed
        sock.settimeout(3)
        data = sock.recv(4096)
        refused += data.startswith(b"HTTP/1.1 503")
    assert refused >= 30, refused

    # Past read_timeout_s (1.5 s), the half-sent requests get 408 and the silent ones are closed.
    statuses = []
    for sock in hostile:
        sock.settimeout(5)
        data = sock.recv(4096)
        statuses.append(data[9:12] if data else b"closed")
    assert statuses.count(b"408") == 50 and statuses.count(b"closed") == 10, statuses
    for sock in hostile + flood:
        sock.close()

    # The normal client's connection idled past its own timeout too: a new one is served at once.
    normal.close()
    again = served.connection()
    assert ask(again, GOOD)[0] == 200
    assert served.worker_pids() == pids, "no worker died"
    rss = sum(_proc(pid, "VmRSS") for pid in pids)
    assert rss - rss_before < 64 * 1024 * served.workers, "memory stays bounded (kB)"
    again.request("GET", "/metrics")
    metrics = again.getresponse().read().decode()
    assert 'medallion_serve_connections_dropped_total{reason="limit"}' in metrics
    assert 'medallion_serve_connections_dropped_total{reason="timeout"} ' in metrics
    assert 'medallion_serve_requests_total{path="/get-online-features",status="200"}' in metrics
    assert "medallion_serve_request_duration_seconds_bucket" in metrics
    assert "Traceback" not in served.stderr.read_text()


def test_redis_error_replies_are_answers(served: Served, lake_in_redis: Config, redis_server: Any) -> None:
    key = codec.entity_key("user_id", "u_wrongtype", lake_in_redis.serving.project)
    redis_server.client(11).set(key, b"not a hash")
    connection = served.connection()
    body = {"entities": {"user_id": ["u_000001", "u_wrongtype"]}, "feature_service": "user_profile"}
    status, answer = ask(connection, body)
    assert status == 500 and "WRONGTYPE" in answer["detail"]
    assert ask(connection, GOOD)[0] == 200  # the Redis connection was not left half-read
    connection.request("GET", "/metrics")
    assert (
        'medallion_serve_online_store_errors_total{kind="error_reply"} 1'
        in connection.getresponse().read().decode()
    )


def _scrape(served: Served) -> str:
    connection = served.connection()  # a new connection: any worker may answer it
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    connection.close()
    return text


def _count_reaches(served: Served, expected: int) -> int:
    """The answered count once it reaches ``expected`` (a request is counted just after its answer is
    written, so the client may see the answer first), or what it is after 10 s."""
    for _ in range(100):
        got = _answered(_scrape(served))
        if got >= expected:
            return got
        time.sleep(0.1)
    return got


def _worker_of(served: Served, client_port: int) -> int:
    """The worker process holding the server's end of the connection from ``client_port``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = (int(fields[i].rsplit(":", 1)[1], 16) for i in (1, 2))
            if local == served.port and remote == client_port:
                inodes.add(f"socket:[{fields[9]}]")
    for pid in served.worker_pids():
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) in inodes:
                    return pid
    raise AssertionError(f"no worker holds the connection from port {client_port}")


def _answered(metrics: str) -> int:
    line = 'medallion_serve_requests_total{path="/get-online-features",status="200"} '
    return next(
        (int(float(row.removeprefix(line))) for row in metrics.splitlines() if row.startswith(line)), 0
    )


def test_metrics_count_every_worker(served: Served) -> None:
    before = _answered(_scrape(served))
    for _ in range(20):  # each on its own connection, so spread over the workers
        connection = served.connection()
        assert ask(connection, GOOD)[0] == 200
        connection.close()
    assert _count_reaches(served, before + 20) == before + 20
    assert [_answered(_scrape(served)) for _ in range(6)] == [before + 20] * 6, "every worker: the total"


def test_a_worker_that_dies_is_replaced(served: Served) -> None:
    if served.workers == 1:
        pytest.skip("one process: no supervisor")
    pids = served.worker_pids()
    connection = served.connection()
    for _ in range(5):  # answered by one worker, the one to kill
        assert ask(connection, GOOD)[0] == 200
    victim = _worker_of(served, connection.sock.getsockname()[1])
    before = _count_reaches(served, _answered(_scrape(served)))
    os.kill(victim, signal.SIGKILL)
    for _ in range(200):  # bounded: 20 s
        now = served.worker_pids()
        if len(now) == served.workers and victim not in now:
            break
        time.sleep(0.1)
    survivor = next(pid for pid in pids if pid != victim)
    assert len(now) == served.workers and victim not in now and survivor in now, (pids, now)
    for _ in range(10):  # new connections, answered by the workers old and new
        connection = served.connection()
        assert ask(connection, GOOD)[0] == 200
        connection.close()
    assert _count_reaches(served, before + 10) == before + 10, "the dead worker's counts are kept"
    assert served.process.poll() is None


def test_workers_end_with_their_supervisor(lake_in_redis: Config, tmp_path: Path) -> None:
    served = start_serving(lake_in_redis, 2, tmp_path)
    try:
        pids = served.worker_pids()
        assert len(pids) == 2
        served.process.kill()  # SIGKILL: the supervisor cannot pass anything on
        served.process.wait()
        for _ in range(200):  # bounded: 20 s
            alive = [pid for pid in pids if _running(pid)]
            if not alive:
                break
            time.sleep(0.1)
        assert not alive, f"workers {alive} outlived their supervisor"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", served.port), timeout=2).close()
    finally:
        stop_serving(served)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie has exited; only its parent has yet to reap it


def test_sigterm_lets_the_request_in_flight_finish(served: Served) -> None:
    body = orjson.dumps(GOOD)
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(
            b"POST /get-online-features HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        sock.sendall(body[:10])
        time.sleep(0.2)
        served.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        sock.sendall(body[10:])
        answer = sock.recv(65536)
    assert status_of(answer) == 200 and b"Connection: close" in answer
    assert served.process.wait(timeout=15) == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", served.port), timeout=2).close()


def test_token_auth_and_an_unreachable_redis(
    serving_config: Callable[..., Config], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDALLION_SERVE_TOKEN", "s3cret")
    cfg = serving_config(
        tmp_path / "lake",
        **{"serving.online_store": "redis", "serving.redis_url": f"127.0.0.1:{_free_port()},db=0"},
    )
    server = FeatureServer(cfg, port=0).start()
    try:
        host, port = server.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        assert ask(connection, GOOD)[0] == 401
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        status, answer = ask(connection, GOOD, {"Authorization": "Bearer wrong"})
        assert status == 401
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        status, answer = ask(connection, GOOD, {"Authorization": "Bearer s3cret"})
        assert status == 503 and "unreachable" in answer["detail"]
        connection.request("GET", "/health")
        assert connection.getresponse().status == 200
        assert server.metrics.store_errors["unreachable"] == 1
    finally:
        server.stop()
