"""``GET /metrics`` of ``medallion serve``: Prometheus text, counted in process with one lock.

- ``medallion_serve_requests_total{path, status}``: answered requests (paths other than the server's
  own are counted as ``other``, so a scan of random URLs cannot grow the label set);
- ``medallion_serve_request_duration_seconds{path}``: a histogram, from the request line read to the
  answer written;
- ``medallion_serve_requests_in_flight``, ``medallion_serve_connections_open``: gauges;
- ``medallion_serve_connections_dropped_total{reason}``: connections closed by the server's limits
  (``limit``: past ``serve.max_connections``; ``timeout``: silent or too slow);
- ``medallion_serve_online_store_errors_total{kind}``: reads the online store failed (``unreachable``,
  ``loading``, ``error_reply``, ...).
"""

from __future__ import annotations

import threading
from collections import Counter

from medallion.core.metrics import Exposition

PATHS = frozenset({"/get-online-features", "/health", "/metrics"})
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


def path_label(path: str) -> str:
    path = path.split("?", 1)[0].rstrip("/") or "/"
    return path if path in PATHS else "other"


class ServerMetrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, int]] = Counter()
        self.buckets: dict[str, list[int]] = {}
        self.sums: dict[str, float] = {}
        self.in_flight = 0
        self.connections = 0
        self.dropped: Counter[str] = Counter()
        self.store_errors: Counter[str] = Counter()

    def started(self) -> None:
        with self._lock:
            self.in_flight += 1

    def finished(self, path: str, status: int, seconds: float) -> None:
        label = path_label(path)
        with self._lock:
            self.in_flight -= 1
            self.requests[(label, status)] += 1
            counts = self.buckets.setdefault(label, [0] * (len(BUCKETS) + 1))
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
                    break
            else:
                counts[-1] += 1
            self.sums[label] = self.sums.get(label, 0.0) + seconds

    def connection(self, delta: int) -> None:
        with self._lock:
            self.connections += delta

    def drop(self, reason: str) -> None:
        with self._lock:
            self.dropped[reason] += 1

    def store_error(self, kind: str) -> None:
        with self._lock:
            self.store_errors[kind] += 1

    def text(self) -> str:
        with self._lock:
            out = Exposition()
            out.add(
                "medallion_serve_requests_total",
                "counter",
                "Requests answered, by path and HTTP status.",
                [({"path": p, "status": s}, n) for (p, s), n in sorted(self.requests.items())],
            )
            out.add(
                "medallion_serve_requests_in_flight",
                "gauge",
                "Requests being answered.",
                [({}, self.in_flight)],
            )
            out.add(
                "medallion_serve_connections_open",
                "gauge",
                "Client connections open.",
                [({}, self.connections)],
            )
            out.add(
                "medallion_serve_connections_dropped_total",
                "counter",
                "Connections the server closed: past serve.max_connections (limit), silent or slow (timeout).",
                [({"reason": r}, self.dropped[r]) for r in ("limit", "timeout")],
            )
            out.add(
                "medallion_serve_online_store_errors_total",
                "counter",
                "Online store reads that failed, by kind.",
                [({"kind": k}, n) for k, n in sorted(self.store_errors.items())] or [({"kind": "any"}, 0)],
            )
            name = "medallion_serve_request_duration_seconds"
            if self.buckets:
                out.lines += [f"# HELP {name} Time to answer a request.", f"# TYPE {name} histogram"]
            for label, counts in sorted(self.buckets.items()):
                running = 0
                for bound, count in zip((*BUCKETS, float("inf")), counts, strict=True):
                    running += count
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    out.lines.append(f'{name}_bucket{{path="{label}",le="{le}"}} {running}')
                out.lines.append(f'{name}_sum{{path="{label}"}} {self.sums[label]!r}')
                out.lines.append(f'{name}_count{{path="{label}"}} {running}')
            return out.text()
