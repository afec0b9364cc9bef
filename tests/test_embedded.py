"""The embedded broker's life cycle: start, find again, status, stop only what our pid file names."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from medallion.core.errors import ConfigError
from medallion.engines import services
from medallion.engines.embedded import (
    PID_FILE,
    broker_binary,
    broker_status,
    find_free_port,
    is_kafka_reachable,
    start_broker,
    stop_broker,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    state = tmp_path / "state"
    yield state
    stop_broker(state)  # whatever a failing test left running


def test_start_status_restart_and_stop(state_dir: Path) -> None:
    port = find_free_port()
    handle = start_broker("127.0.0.1", port, state_dir)
    assert handle.started and handle.bootstrap == f"127.0.0.1:{port}"
    assert is_kafka_reachable(handle.bootstrap, 2)
    record = json.loads((state_dir / PID_FILE).read_text())
    assert record["pid"] == handle.pid and record["address"] == handle.bootstrap
    assert record["binary"] == handle.binary and record["started_at"]
    assert (state_dir / "broker.log").exists()

    again = start_broker("127.0.0.1", port, state_dir)
    assert not again.started and again.pid == handle.pid

    status = broker_status(state_dir)
    assert status is not None and status.alive and status.reachable and status.pid == handle.pid

    with pytest.raises(ConfigError, match="already runs at"):
        start_broker("127.0.0.1", find_free_port(), state_dir)

    assert stop_broker(state_dir) is True
    assert not (state_dir / PID_FILE).exists()
    assert not is_kafka_reachable(handle.bootstrap, 1)
    assert broker_status(state_dir) is None
    assert stop_broker(state_dir) is False


def test_a_port_taken_by_something_else_is_a_clear_error(state_dir: Path) -> None:
    with socket.socket() as server:  # listens, accepts into the backlog, never speaks Kafka
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        with pytest.raises(ConfigError, match=f"Port {port} .* does not speak Kafka"):
            start_broker("127.0.0.1", port, state_dir)
    assert not (state_dir / PID_FILE).exists()


def test_a_foreign_kafka_broker_on_the_port_is_not_adopted(tmp_path: Path, state_dir: Path) -> None:
    other = start_broker("127.0.0.1", find_free_port(), tmp_path / "other")
    try:
        with pytest.raises(ConfigError, match="did not start"):
            start_broker("127.0.0.1", other.port, state_dir)
    finally:
        stop_broker(tmp_path / "other")


def test_stop_never_signals_a_process_the_pid_file_does_not_really_name(state_dir: Path) -> None:
    # A recycled pid: the pid file names a live process that is not the broker binary.
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        state_dir.mkdir(parents=True)
        record = {"pid": bystander.pid, "address": "127.0.0.1:1", "binary": broker_binary(), "started_at": ""}
        (state_dir / PID_FILE).write_text(json.dumps(record))
        status = broker_status(state_dir)
        assert status is not None and not status.alive
        assert stop_broker(state_dir) is False
        assert bystander.poll() is None, "stop_broker signalled a process that is not our broker"
        assert not (state_dir / PID_FILE).exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_a_stale_pid_file_is_replaced(state_dir: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    state_dir.mkdir(parents=True)
    stale = {"pid": gone.pid, "address": "127.0.0.1:1", "binary": broker_binary(), "started_at": ""}
    (state_dir / PID_FILE).write_text(json.dumps(stale))
    handle = start_broker("127.0.0.1", find_free_port(), state_dir)
    assert handle.started and handle.pid != gone.pid
    assert stop_broker(state_dir) is True


def test_helpers() -> None:
    port = find_free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # free means bindable
    assert not is_kafka_reachable(f"127.0.0.1:{port}", 1)
    assert os.access(broker_binary(), os.X_OK)


def test_a_broker_this_lake_did_not_start_is_used_with_a_warning(tmp_path: Path, make_config: Any) -> None:
    """`ensure_kafka` uses a broker already answering at the embedded address, and warns when this lake's
    state does not name it (another directory's run left its broker, and its events, up); with this
    lake's own broker it says nothing, and it never starts a second one."""
    other = tmp_path / "elsewhere" / "_state"
    handle = start_broker("127.0.0.1", find_free_port(), other)
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING")
    try:
        cfg = make_config(**{"kafka.bootstrap_servers": handle.bootstrap, "kafka.embedded": True})
        services.ensure_kafka(cfg)
        assert len(warnings) == 1 and "this lake did not start it" in warnings[0]
        assert handle.bootstrap in warnings[0] and "medallion down" in warnings[0]
        assert broker_status(services.state_dir(cfg)) is None  # nothing started here

        warnings.clear()
        own = make_config(
            **{"lake.root": str(tmp_path / "elsewhere"), "kafka.bootstrap_servers": handle.bootstrap}
        )
        assert services.state_dir(own) == other
        services.ensure_kafka(own)
        assert warnings == []
    finally:
        logger.remove(sink)
        stop_broker(other)
