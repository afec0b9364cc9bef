"""``medallion serve``: Feast's ``POST /get-online-features`` over HTTP, answered by the fast reader.

The request and the response are those of Feast's feature server (``feast serve``), so a service can
point at either: ``{"entities": {"user_id": [...]}, "features": ["view:feature", ...]}`` or
``"feature_service": "name"``, optionally ``"full_feature_names": true``, checked strictly
(`medallion.serving.request`). ``GET /health`` answers 200, ``GET /metrics`` Prometheus text
(`medallion.serving.server_metrics`). Errors answer like Feast's server does, with ``{"detail": "..."}``.

Standard library (``socketserver``/``http.server``, a thread per connection, HTTP/1.1 keep-alive; the
request head read by `medallion.serving.http_head`, each answer written at once) and orjson. Chosen by
measurement against uvicorn (httptools, uvloop) on the same reader: at 8 and 32 keep-alive clients the
threaded server answered as many requests or more (the Redis round trip of one thread overlaps the
others' work, where a single event loop waits for it), and it lets every limit be exact. One process
is one core at most (one thread runs Python at a time): ``medallion serve`` runs ``serve.workers`` of
these servers on one listening socket (`medallion.serving.workers`). Bounded, so a hostile or broken
client costs the others nothing (`medallion.core.config.ServeConfig`, ``serve.*``):

- at most ``max_connections`` connections per process (one thread each); one more is answered 503
  and closed;
- a body over ``max_body_bytes`` is answered 413 without being read; a missing ``Content-Length`` 411,
  one that is not a number 400; more than ``max_entities`` entity rows 413;
- a connection silent for ``idle_timeout_s`` between requests is closed, and a request that has not
  fully arrived ``read_timeout_s`` after its first byte is answered 408 and closed;
- with a token in the environment variable ``auth_token_env``, every path but ``/health`` needs
  ``Authorization: Bearer <token>`` (401 otherwise);
- ``stop()`` (SIGTERM in ``medallion serve``) stops accepting, lets in-flight requests finish for up
  to ``shutdown_grace_s``, and closes idle keep-alive connections at once.

Why one module: the accept loop, the per-connection read with its limits and deadlines, and the drain on
SIGTERM are one state machine; request validation (`request.py`), metrics (`server_metrics.py`) and deadlines
(`deadlines.py`) already live apart.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import os
import socket
import sys
import threading
import time
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from loguru import logger

from medallion.core.config import Config, ServeConfig
from medallion.core.errors import MedallionError, TransientError
from medallion.features import FAMILIES, FeatureFamily
from medallion.serving.deadlines import Clock, DeadlineReader
from medallion.serving.http_head import HeadError, http_date, read_head
from medallion.serving.online_stores import OnlineStoreFailed, OnlineStoreUnavailable
from medallion.serving.reader import OnlineReader
from medallion.serving.request import BadRequest, parse_online_request
from medallion.serving.server_metrics import ServerMetrics, path_label

ONLINE_PATH = "/get-online-features"
_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b'Retry-After: 1\r\nContent-Length: 57\r\n\r\n{"detail":"Too many connections (serve.max_connections)."}'
)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a client reuses its connection
    # Headers and body go out in two writes: with Nagle's algorithm on, the second waits for the
    # client's delayed ACK (about 40 ms per request on Linux).
    disable_nagle_algorithm = True
    server_version = "medallion-serve"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.clock = Clock(self.server.limits)
        self.rfile = io.BufferedReader(DeadlineReader(self.connection, self.clock))
        self.status = 0
        self.server.opened(self)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.closed(self)

    def handle(self) -> None:
        self.close_connection = True
        while True:
            self.clock.idle()
            self.handle_one_request()
            if self.close_connection or self.server.stopping:
                return

    def handle_one_request(self) -> None:
        started = None
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline:
                self.close_connection = True
                return
            started = time.perf_counter()
            self.server.metrics.started()
            self.requestline, self.path, self.status = "", "", 0
            if len(self.raw_requestline) > 65536:
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG, "The request line is too long.")
                return
            if not self._read_head():  # it answered the error itself (or the client left)
                return
            method = getattr(self, "do_" + self.command, None)
            if method is None:
                self.send_error(HTTPStatus.NOT_IMPLEMENTED, f"Method {self.command} is not supported.")
                return
            method()
            self.wfile.flush()
        except TimeoutError:
            self._timed_out()
        finally:
            if started is not None:
                self.server.metrics.finished(self.path or "", self.status, time.perf_counter() - started)

    def _read_head(self) -> bool:
        """The request line and headers (`medallion.serving.http_head`); False once an error was
        answered (or the connection ended mid-head)."""
        self.requestline = self.raw_requestline.decode("latin-1").rstrip("\r\n")
        try:
            head = read_head(self.requestline, self.rfile.readline)
        except HeadError as exc:
            self.send_error(exc.status, str(exc))
            return False
        if head is None:  # the client left mid-head
            self.close_connection = True
            return False
        self.command, self.path, self.request_version = head.command, head.path, head.version
        self.headers = head.headers  # type: ignore[assignment]
        self.close_connection = head.close
        if head.expect_continue:
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return True

    def _timed_out(self) -> None:
        self.close_connection = True
        self.server.metrics.drop("timeout")
        if self.clock.waiting:  # silent between requests: nothing to answer
            return
        self.path = self.path or ""
        try:
            self.connection.settimeout(1.0)
            self._send(HTTPStatus.REQUEST_TIMEOUT, b'{"detail":"The request did not arrive in time."}')
        except OSError:
            pass

    # --- answers ------------------------------------------------------------------------------------

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Framing errors (bad request line, headers, length): the body may be unread, so close after.
        self.close_connection = True
        self._send(code, orjson.dumps({"detail": message or HTTPStatus(code).phrase}))

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        extra: dict[str, str] | None = None,
    ) -> None:
        # Status line, headers and body in one write (one segment for a small answer).
        self.connection.settimeout(self.server.limits.read_timeout_s)
        self.status = int(status)
        head = [
            f"HTTP/1.1 {self.status} {HTTPStatus(self.status).phrase}",
            f"Server: {self.server_version}",
            f"Date: {http_date()}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
        ]
        head += [f"{name}: {value}" for name, value in (extra or {}).items()]
        if self.close_connection or self.server.stopping:
            self.close_connection = True
            head.append("Connection: close")
        head.append("\r\n")
        self.log_request(self.status, len(body))
        self.wfile.write("\r\n".join(head).encode("latin-1") + body)

    def _detail(
        self, status: int, message: str, *, close: bool = False, extra: dict[str, str] | None = None
    ) -> None:
        self.close_connection = self.close_connection or close
        self._send(status, orjson.dumps({"detail": message}), extra=extra)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        level = "INFO" if self.server.limits.access_log else "DEBUG"
        logger.log(
            level,
            'serve: {client} "{line}" {code} {size}',
            client=self.client_address[0],
            line=self.requestline,
            code=code,
            size=size,
        )

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        logger.debug("serve: {client} {text}", client=self.client_address[0], text=format % args)

    # --- paths --------------------------------------------------------------------------------------

    def _authorized(self) -> bool:
        token = self.server.token
        if token is None:
            return True
        given = self.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())
        if not ok:
            self._detail(
                HTTPStatus.UNAUTHORIZED,
                "A bearer token is required: Authorization: Bearer <token>.",
                close=self.command == "POST",
                extra={"WWW-Authenticate": "Bearer"},
            )
        return ok

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        path = path_label(self.path)
        if path == "/health":
            self._send(HTTPStatus.OK, b'{"status":"ok"}')
        elif path == "/metrics":
            if self._authorized():
                text = self.server.metrics.text().encode()
                self._send(HTTPStatus.OK, text, "text/plain; version=0.0.4; charset=utf-8")
        else:
            self._detail(HTTPStatus.NOT_FOUND, "Not Found")

    def do_POST(self) -> None:  # noqa: N802
        if path_label(self.path) != ONLINE_PATH:
            self._detail(HTTPStatus.NOT_FOUND, "Not Found", close=True)
            return
        if not self._authorized():
            return
        body = self._body()
        if body is None:
            return
        limits = self.server.limits
        reader = self.server.reader
        try:
            request = parse_online_request(body, reader.join_keys, limits.max_entities)
            answer = reader.get_online_features(
                request.entities,
                request.features,
                feature_service=request.feature_service,
                full_feature_names=request.full_feature_names,
            )
        except BadRequest as exc:
            self._detail(exc.status, str(exc))
            return
        except OnlineStoreUnavailable as exc:
            self.server.metrics.store_error(exc.kind)
            self._detail(HTTPStatus.SERVICE_UNAVAILABLE, str(exc), extra={"Retry-After": "1"})
            return
        except OnlineStoreFailed as exc:
            self.server.metrics.store_error(exc.kind)
            self._detail(HTTPStatus.INTERNAL_SERVER_ERROR, str(exc))
            return
        except TransientError as exc:
            self._detail(HTTPStatus.SERVICE_UNAVAILABLE, str(exc))
            return
        except MedallionError as exc:  # UsageError: unknown features, missing join keys
            self._detail(HTTPStatus.BAD_REQUEST, str(exc))
            return
        self._send(HTTPStatus.OK, orjson.dumps(answer))

    def _body(self) -> bytes | None:
        """The request body, or None once an error was answered (or the client went away)."""
        if self.headers.get("Transfer-Encoding"):
            self._detail(
                HTTPStatus.LENGTH_REQUIRED,
                "Send the body with a Content-Length (chunked bodies are not accepted).",
                close=True,
            )
            return None
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            self._detail(HTTPStatus.LENGTH_REQUIRED, "A Content-Length header is required.", close=True)
            return None
        text = lengths[0].strip()
        if len(set(lengths)) > 1 or not (text.isascii() and text.isdigit()):
            self._detail(
                HTTPStatus.BAD_REQUEST,
                f"Content-Length {', '.join(lengths)!r} is not one non-negative whole number.",
                close=True,
            )
            return None
        length = int(text)
        if length > self.server.limits.max_body_bytes:
            self._detail(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"The body is {length} bytes; this server accepts at most {self.server.limits.max_body_bytes} "
                "(serve.max_body_bytes).",
                close=True,
            )
            return None
        body = self.rfile.read(length)
        if len(body) < length:  # the client closed its side mid-body: nobody to answer
            self.close_connection = True
            return None
        return body


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the listen backlog

    def __init__(
        self,
        address: tuple[str, int],
        reader: OnlineReader,
        limits: ServeConfig,
        token: str | None,
        metrics: ServerMetrics,
        listener: socket.socket | None,
    ):
        self.reader, self.limits, self.token = reader, limits, token
        self.metrics = metrics
        self.stopping = False
        self._slots = threading.BoundedSemaphore(limits.max_connections)
        self._lock = threading.Lock()
        self.handlers: set[_Handler] = set()
        super().__init__(address, _Handler, bind_and_activate=listener is None)
        if listener is not None:  # a worker process: the listening socket its supervisor made
            self.socket.close()
            self.socket = listener
            self.server_address = listener.getsockname()

    def process_request(self, request: Any, client_address: Any) -> None:
        if self.stopping or not self._slots.acquire(blocking=False):
            self.metrics.drop("limit")
            try:
                request.settimeout(0.5)
                request.sendall(_REFUSED)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that resets its connection is not the server's fault: no traceback on stderr.
        logger.debug("serve: connection from {} ended: {!r}", client_address, sys.exc_info()[1])

    def opened(self, handler: _Handler) -> None:
        with self._lock:
            self.handlers.add(handler)
        self.metrics.connection(+1)

    def closed(self, handler: _Handler) -> None:
        with self._lock:
            self.handlers.discard(handler)
        self.metrics.connection(-1)

    def close_idle(self, *, everything: bool = False) -> None:
        with self._lock:
            handlers = list(self.handlers)
        for handler in handlers:
            if everything or handler.clock.waiting:
                with contextlib.suppress(OSError):
                    handler.connection.shutdown(socket.SHUT_RDWR)


class FeatureServer:
    """The HTTP server around one reader; ``start()`` serves in a thread, ``serve_forever()`` in this one,
    ``stop()`` (or ``request_stop()`` from a signal handler) ends it gracefully."""

    def __init__(
        self,
        cfg: Config,
        host: str = "127.0.0.1",
        port: int = 6566,
        families: Sequence[FeatureFamily] = FAMILIES,
        *,
        metrics: ServerMetrics | None = None,
        listener: socket.socket | None = None,
    ) -> None:
        self.limits = cfg.serve
        token = os.environ.get(cfg.serve.auth_token_env, "").strip() or None
        self.reader = OnlineReader(cfg, families)
        try:
            self.httpd = _Server(
                (host, port), self.reader, cfg.serve, token, metrics or ServerMetrics(), listener
            )
        except BaseException:
            self.reader.close()
            raise
        self._thread: threading.Thread | None = None
        self._looping = threading.Event()
        self._stopped = False

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}" if isinstance(host, str) else f"http://{host.decode()}:{port}"

    @property
    def metrics(self) -> ServerMetrics:
        return self.httpd.metrics

    def start(self) -> FeatureServer:
        self._thread = threading.Thread(target=self.serve_forever, name="medallion-serve", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._looping.set()
        try:
            self.httpd.serve_forever(poll_interval=0.2)
        finally:
            self._looping.clear()

    def request_stop(self) -> None:
        """Stop accepting (safe from a signal handler: the loop is told from another thread)."""
        self.httpd.stopping = True
        if self._looping.is_set():
            threading.Thread(target=self.httpd.shutdown, name="medallion-serve-stop", daemon=True).start()

    def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (``serve.shutdown_grace_s``), close the rest."""
        if self._stopped:
            return
        self._stopped = True
        self.httpd.stopping = True
        if self._looping.is_set():
            self.httpd.shutdown()
        self.httpd.server_close()
        deadline = time.monotonic() + self.limits.shutdown_grace_s
        while self.httpd.handlers and time.monotonic() < deadline:
            self.httpd.close_idle()
            time.sleep(0.05)
        if self.httpd.handlers:
            logger.warning(
                "serve: {n} connection(s) still busy after {s} s (serve.shutdown_grace_s): closing them",
                n=len(self.httpd.handlers),
                s=self.limits.shutdown_grace_s,
            )
            self.httpd.close_idle(everything=True)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.reader.close()
