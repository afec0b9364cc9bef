"""Redis going away in the middle of a materialization: retried, then one clear error (exit 1 from the CLI);
once Redis is back, a re-run completes and serves the right values.

Each test starts its own redis-server on a free port (the session's shared one must not be stopped),
durable (append-only file, fsync always) so that a killed server comes back with what it acknowledged.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from medallion import serving
from medallion.core.config import Config
from medallion.core.errors import TransientError
from medallion.features import FAMILIES
from tests.fixtures.services import service_missing
from tests.serving.families_gold import latest, served, write_all

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("feast_imported")]


class OwnRedis:
    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            service_missing(
                "No redis-server binary on PATH: the outage tests start, kill and restart their own Redis. "
                "Install redis-server."
            )
        self.binary, self.workdir = binary, workdir
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port},db=0"

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", ""]
            # Durable like a production Redis: what was acknowledged survives the SIGKILL below.
            + ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis.Redis(port=self.port, socket_connect_timeout=0.2).ping():
                    return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def lake_config(
    tmp_path: Path, own_redis: OwnRedis, serving_config: Callable[..., Config]
) -> tuple[Config, dict[str, list[dict[str, Any]]]]:
    today = dt.datetime.now(dt.UTC).date()
    rows = write_all(tmp_path / "lake", [today - dt.timedelta(days=k) for k in range(3, -1, -1)], 30)
    cfg = serving_config(
        tmp_path / "lake", **{"serving.online_store": "redis", "serving.redis_url": own_redis.url}
    )
    serving.apply(cfg)
    return cfg, rows


def test_redis_stopped_mid_run_is_retried_then_fails_clearly_and_a_rerun_completes(
    lake_config: tuple[Config, dict[str, list[dict[str, Any]]]], own_redis: OwnRedis, caplog: Any
) -> None:
    cfg, rows = lake_config
    views = [f.name for f in FAMILIES]

    def stop_during_the_third_view(view: str, done: int, total: int) -> None:
        if view == views[2] and done == 0:
            own_redis.stop()

    from loguru import logger

    retries: list[str] = []
    sink = logger.add(lambda m: retries.append(str(m)), level="WARNING")
    try:
        with pytest.raises(TransientError) as caught:
            serving.materialize(cfg, progress=stop_during_the_third_view, attempts=3, max_wait_s=0.2)
    finally:
        logger.remove(sink)
    message = str(caught.value)
    assert f"The Redis online store at 127.0.0.1:{own_redis.port} (db 0) is unreachable" in message
    assert "MEDALLION__SERVING__REDIS_URL" in message
    assert sum("retrying in" in line for line in retries) == 2  # 3 attempts: two waits logged

    own_redis.start()  # back, with the views written before the fault
    again = serving.materialize(cfg)
    assert again.rows == sum(len(latest(rows[f.name], f.entity.join_key)) for f in FAMILIES[2:])
    reader = serving.OnlineReader(cfg)
    try:
        for fam in FAMILIES:
            key = fam.entity.join_key
            newest = latest(rows[fam.name], key)
            ids = sorted(newest)
            got = reader.online_dict({key: ids}, [f"{fam.name}:{n}" for n in fam.feature_names])
            for n in fam.feature_names:
                assert got[n] == [served(newest[i][n]) for i in ids], (fam.name, n)
    finally:
        reader.close()


def test_the_cli_exits_1_with_the_message_when_redis_is_down(
    lake_config: tuple[Config, dict[str, list[dict[str, Any]]]],
    own_redis: OwnRedis,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from medallion.cli.main import run_app
    from tests.conftest import config_dir_of

    cfg, _ = lake_config
    folder = config_dir_of(cfg, Path(cfg.lake.root).parent / "config")
    own_redis.stop()

    assert run_app(["--config-dir", str(folder), "materialize"]) == 1

    err = capsys.readouterr().err
    assert (
        f"Redis online store at 127.0.0.1:{own_redis.port} (db 0) is unreachable after 5 attempts"
        in " ".join(err.split())
    )
