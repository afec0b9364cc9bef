"""``medallion serve`` in worker processes: one listening socket, ``serve.workers`` processes accepting
from it, and a supervisor.

Python runs one thread at a time per process, so one process is one core at most: measured at 32
clients, a single server process used a whole core while the machine's second one idled. The
supervisor makes the listening socket and forks the workers; each is the threaded `FeatureServer` with
every limit of one process (``serve.max_connections`` is per worker), its own Redis connections, and a
row of the shared metrics (`medallion.serving.server_metrics`), so ``GET /metrics`` on any connection
is the whole server's.

One inherited socket rather than one socket per worker with ``SO_REUSEPORT``: the kernel hands a new
connection to whichever worker accepts first (an idle one, usually), a worker that dies leaves the
connections waiting in the backlog to the others instead of resetting them, and no other process can
join the port. The supervisor passes SIGTERM (or Ctrl-C) on; each worker then drains as one process
does, and the supervisor exits when all have (status 1 if one failed). A worker that dies otherwise is
replaced (after a pause if it lived less than ``_MIN_LIFE_S``); one whose server could not be made
(an unreadable store, say) stops them all: another would fail alike. A worker whose supervisor is
gone (killed with SIGKILL, say) drains and exits rather than hold the port with nobody to stop it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from loguru import logger

from medallion.core.config import Config, ServeConfig
from medallion.features import FAMILIES, FeatureFamily
from medallion.serving.reader import OnlineReader
from medallion.serving.server import FeatureServer
from medallion.serving.server_metrics import SharedCounters

_MIN_LIFE_S = 2.0
_PARENT_CHECK_S = 0.5
_COULD_NOT_START = 3  # a worker's exit status when its server could not be made


def worker_count(limits: ServeConfig) -> int:
    return limits.workers or min(os.cpu_count() or 1, 4)


def listen(host: str, port: int) -> socket.socket:
    """The listening socket every worker accepts from (non-blocking: the workers race for each
    connection, and the losers must not wait in ``accept``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class Supervisor:
    """Forks ``workers`` servers on one listening socket and keeps them running until told to stop."""

    def __init__(
        self,
        cfg: Config,
        host: str,
        port: int,
        workers: int,
        families: Sequence[FeatureFamily] = FAMILIES,
    ) -> None:
        self.cfg, self.families, self.workers = cfg, families, workers
        OnlineReader(cfg, families).close()  # a store that cannot be read fails here, once, not per worker
        self.listener: socket.socket | None = listen(host, port)
        bound = self.listener.getsockname()
        self.url = (
            f"http://{bound[0]}:{bound[1]}" if ":" not in bound[0] else f"http://[{bound[0]}]:{bound[1]}"
        )
        self.counters = SharedCounters(workers)
        self.children: dict[int, tuple[int, float]] = {}  # pid -> (metrics row, started)
        self.stopping = False

    def run(self, on_start: Callable[[], Any] | None = None) -> int:
        """Serve until SIGTERM or SIGINT; the exit status (0: every worker drained and exited cleanly)."""
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        failed = False
        try:
            for row in range(self.workers):
                self._spawn(row)
            if on_start is not None:
                on_start()
            while self.children:
                try:
                    pid, status = os.wait()
                except ChildProcessError:
                    break
                row, started = self.children.pop(pid)
                code = os.waitstatus_to_exitcode(status)
                if self.stopping:
                    failed = failed or code != 0
                    continue
                if code == _COULD_NOT_START:  # another would fail alike (its error is logged)
                    failed = True
                    self._stop()
                    continue
                logger.warning("serve: worker {pid} exited ({code}); starting another", pid=pid, code=code)
                if time.monotonic() - started < _MIN_LIFE_S:
                    time.sleep(_MIN_LIFE_S)  # a worker that keeps dying at once: no hot restart loop
                self.counters.reset_gauges(row)
                self._spawn(row)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._close_listener()
        return 1 if failed else 0

    def _stop(self, *_: Any) -> None:
        """Stop: the workers drain (SIGTERM), and the port closes once the last one has let go."""
        self.stopping = True
        self._close_listener()
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def _close_listener(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    def _spawn(self, row: int) -> None:
        if self.listener is None:  # stopping already (a signal came while the workers were starting)
            return
        pid = os.fork()
        if pid:
            self.children[pid] = (row, time.monotonic())
            return
        os._exit(self._work(self.listener, row))  # the worker never returns into the supervisor's code

    @staticmethod
    def _orphaned(server: FeatureServer, supervisor: int) -> None:
        """Drain and exit once the supervisor is gone (killed, say): nobody would stop or replace this
        worker, and it would hold the port."""
        while os.getppid() == supervisor:
            time.sleep(_PARENT_CHECK_S)
        logger.warning("serve: worker {pid}: its supervisor is gone; stopping", pid=os.getpid())
        server.request_stop()

    def _work(self, listener: socket.socket, row: int) -> int:
        stop_asked: list[bool] = []
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the supervisor, which passes it on
        signal.signal(signal.SIGTERM, lambda *_: stop_asked.append(True))
        try:
            server = FeatureServer(
                self.cfg, families=self.families, metrics=self.counters.metrics(row), listener=listener
            )
        except BaseException as exc:
            logger.error("serve: worker {pid} could not start: {exc}", pid=os.getpid(), exc=exc)
            return _COULD_NOT_START
        signal.signal(signal.SIGTERM, lambda *_: server.request_stop())
        supervisor = os.getppid()
        threading.Thread(
            target=self._orphaned, args=(server, supervisor), name="medallion-serve-parent", daemon=True
        ).start()
        try:
            if not stop_asked:
                server.serve_forever()
        except BaseException as exc:
            logger.error("serve: worker {pid} failed: {exc!r}", pid=os.getpid(), exc=exc)
            return 1
        finally:
            server.stop()
        return 0
