"""``GET /metrics`` of ``medallion serve``: Prometheus text, one total over every worker process.

- ``medallion_serve_requests_total{path, status}``: answered requests (paths other than the server's
  own are counted as ``other``, so a scan of random URLs cannot grow the label set);
- ``medallion_serve_request_duration_seconds{path}``: a histogram, from the request line read to the
  answer written;
- ``medallion_serve_requests_in_flight``, ``medallion_serve_connections_open``: gauges;
- ``medallion_serve_connections_dropped_total{reason}``: connections closed by the server's limits
  (``limit``: past ``serve.max_connections``; ``timeout``: silent or too slow);
- ``medallion_serve_online_store_errors_total{kind}``: reads the online store failed (``unreachable``,
  ``loading``, ``error_reply``, ...).

Every label takes values from a fixed set, so the counters have a fixed layout: one row of 64-bit
integers per worker process (`serve.workers`), in one shared memory mapping made before the workers
are forked. A worker writes only its own row (under its own lock, between its threads) and answers
``/metrics`` with the sum of all rows, so a scrape that reaches any worker sees the whole server, and
a counter never goes back when the next scrape reaches another. A replaced worker keeps its row
(counters go on from where the old one stopped; its gauges are zeroed, its connections are gone).
"""

from __future__ import annotations

import mmap
import threading
from collections import Counter

from medallion.core.metrics import Exposition

PATHS = ("/get-online-features", "/health", "/metrics", "other")
_KNOWN_PATHS = frozenset(PATHS[:-1])
STATUSES = (200, 400, 401, 404, 408, 411, 413, 414, 431, 500, 501, 503, 505)  # all the server answers
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
DROPS = ("limit", "timeout")
STORE_ERRORS = ("unreachable", "loading", "error_reply", "missing", "sqlite", "other")


def path_label(path: str) -> str:
    path = path.split("?", 1)[0].rstrip("/") or "/"
    return path if path in _KNOWN_PATHS else "other"


# One row's layout: offsets of each family in a row of int64.
_REQUESTS = 0  # per path, per status (and one more for a status outside STATUSES)
_STATUS_SLOTS = len(STATUSES) + 1
_HISTOGRAM = _REQUESTS + len(PATHS) * _STATUS_SLOTS  # per path: counts per bucket (+Inf last)
_SUMS = _HISTOGRAM + len(PATHS) * (len(BUCKETS) + 1)  # per path: microseconds
_IN_FLIGHT = _SUMS + len(PATHS)
_CONNECTIONS = _IN_FLIGHT + 1
_DROPPED = _CONNECTIONS + 1
_STORE_ERRORS = _DROPPED + len(DROPS)
ROW = _STORE_ERRORS + len(STORE_ERRORS)
_STATUS_INDEX = {status: i for i, status in enumerate(STATUSES)}


class SharedCounters:
    """``rows`` rows of ``ROW`` 64-bit integers in anonymous shared memory: made before ``fork``, every
    child sees the same pages."""

    def __init__(self, rows: int = 1) -> None:
        self.rows = rows
        self._map = mmap.mmap(-1, rows * ROW * 8)  # MAP_SHARED | MAP_ANONYMOUS, zeroed
        self.values = memoryview(self._map).cast("q")

    def metrics(self, row: int = 0) -> ServerMetrics:
        return ServerMetrics(self, row)

    def reset_gauges(self, row: int) -> None:
        base = row * ROW
        self.values[base + _IN_FLIGHT] = 0
        self.values[base + _CONNECTIONS] = 0

    def total(self) -> list[int]:
        values, out = self.values, [0] * ROW
        for row in range(self.rows):
            base = row * ROW
            for i in range(ROW):
                out[i] += values[base + i]
        return out


class ServerMetrics:
    """One worker's counters (its row of `SharedCounters`); ``text()`` is every worker's total."""

    def __init__(self, shared: SharedCounters | None = None, row: int = 0) -> None:
        self.shared = shared or SharedCounters(1)
        self._values = self.shared.values
        self._base = row * ROW
        self._lock = threading.Lock()

    def _add(self, index: int, delta: int = 1) -> None:
        with self._lock:
            self._values[self._base + index] += delta

    def started(self) -> None:
        self._add(_IN_FLIGHT)

    def finished(self, path: str, status: int, seconds: float) -> None:
        p = PATHS.index(path_label(path))
        s = _STATUS_INDEX.get(status, len(STATUSES))
        bucket = next((i for i, bound in enumerate(BUCKETS) if seconds <= bound), len(BUCKETS))
        values, base = self._values, self._base
        with self._lock:
            values[base + _IN_FLIGHT] -= 1
            values[base + _REQUESTS + p * _STATUS_SLOTS + s] += 1
            values[base + _HISTOGRAM + p * (len(BUCKETS) + 1) + bucket] += 1
            values[base + _SUMS + p] += round(seconds * 1e6)

    def connection(self, delta: int) -> None:
        self._add(_CONNECTIONS, delta)

    def drop(self, reason: str) -> None:
        self._add(_DROPPED + DROPS.index(reason))

    def store_error(self, kind: str) -> None:
        self._add(_STORE_ERRORS + STORE_ERRORS.index(kind if kind in STORE_ERRORS else "other"))

    @property
    def store_errors(self) -> Counter[str]:
        """Every worker's online-store errors by kind."""
        total = self.shared.total()
        return Counter({k: total[_STORE_ERRORS + i] for i, k in enumerate(STORE_ERRORS)})

    def text(self) -> str:
        total = self.shared.total()
        out = Exposition()
        requests: list[tuple[dict[str, object], float]] = []
        for p, path in enumerate(PATHS):
            for s, status in enumerate((*STATUSES, "other")):
                n = total[_REQUESTS + p * _STATUS_SLOTS + s]
                if n:
                    requests.append(({"path": path, "status": status}, n))
        out.add(
            "medallion_serve_requests_total",
            "counter",
            "Requests answered, by path and HTTP status.",
            requests,
        )
        out.add(
            "medallion_serve_requests_in_flight",
            "gauge",
            "Requests being answered.",
            [({}, total[_IN_FLIGHT])],
        )
        out.add(
            "medallion_serve_connections_open",
            "gauge",
            "Client connections open.",
            [({}, total[_CONNECTIONS])],
        )
        out.add(
            "medallion_serve_connections_dropped_total",
            "counter",
            "Connections the server closed: past serve.max_connections (limit), silent or slow (timeout).",
            [({"reason": r}, total[_DROPPED + i]) for i, r in enumerate(DROPS)],
        )
        errors: list[tuple[dict[str, object], float]] = [
            ({"kind": k}, total[_STORE_ERRORS + i]) for i, k in enumerate(STORE_ERRORS)
        ]
        out.add(
            "medallion_serve_online_store_errors_total",
            "counter",
            "Online store reads that failed, by kind.",
            [(labels, n) for labels, n in errors if n] or [({"kind": "any"}, 0)],
        )
        name = "medallion_serve_request_duration_seconds"
        histograms = []
        for p, path in enumerate(PATHS):
            counts = total[_HISTOGRAM + p * (len(BUCKETS) + 1) :][: len(BUCKETS) + 1]
            if any(counts):
                histograms.append((path, counts, total[_SUMS + p] / 1e6))
        if histograms:
            out.lines += [f"# HELP {name} Time to answer a request.", f"# TYPE {name} histogram"]
        for path, counts, seconds in sorted(histograms):
            running = 0
            for bound, count in zip((*BUCKETS, float("inf")), counts, strict=True):
                running += count
                le = "+Inf" if bound == float("inf") else repr(bound)
                out.lines.append(f'{name}_bucket{{path="{path}",le="{le}"}} {running}')
            out.lines.append(f'{name}_sum{{path="{path}"}} {seconds!r}')
            out.lines.append(f'{name}_count{{path="{path}"}} {running}')
        return out.text()
