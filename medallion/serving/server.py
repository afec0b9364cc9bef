"""``medallion serve``: Feast's ``POST /get-online-features`` over HTTP, answered by the fast reader.

The request and the response are those of Feast's feature server (``feast serve``), so a service can
point at either: ``{"entities": {"user_id": [...]}, "features": ["view:feature", ...]}`` or
``"feature_service": "name"``, optionally ``"full_feature_names": true``. ``GET /health`` answers 200.

Standard library only (``http.server`` with a thread per connection, HTTP/1.1 keep-alive) and orjson:
no web framework to start or to tune, and each request is one pipelined Redis round trip
(`medallion.serving.reader`). Errors answer like Feast's server does, with ``{"detail": "..."}``:
400 for a request that names unknown features or lacks entities, 503 when Redis is unreachable.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from loguru import logger

from medallion.config import Config
from medallion.errors import MedallionError, TransientError
from medallion.features import FAMILIES, FeatureFamily
from medallion.serving.reader import OnlineReader


def _handler(reader: OnlineReader) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: a client reuses its connection
        # Headers and body go out in two writes: with Nagle's algorithm on, the second waits for the
        # client's delayed ACK (about 40 ms per request on Linux).
        disable_nagle_algorithm = True
        server_version = "medallion-serve"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
            logger.debug("serve: " + format, *args)

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            if self.path.rstrip("/") == "/health":
                self._send(HTTPStatus.OK, b'{"status":"ok"}')
            else:
                self._send(HTTPStatus.NOT_FOUND, b'{"detail":"Not Found"}')

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if self.path.rstrip("/") != "/get-online-features":
                self._send(HTTPStatus.NOT_FOUND, b'{"detail":"Not Found"}')
                return
            try:
                request = orjson.loads(body)
                if not isinstance(request, dict) or not isinstance(request.get("entities"), dict):
                    raise ValueError('the body must be a JSON object with "entities": {join_key: [values]}')
                answer = reader.get_online_features(
                    request["entities"],
                    request.get("features") or None,
                    feature_service=request.get("feature_service"),
                    full_feature_names=bool(request.get("full_feature_names", False)),
                )
            except TransientError as exc:
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, orjson.dumps({"detail": str(exc)}))
                return
            except (MedallionError, ValueError, TypeError) as exc:
                self._send(HTTPStatus.BAD_REQUEST, orjson.dumps({"detail": str(exc)}))
                return
            self._send(HTTPStatus.OK, orjson.dumps(answer))

    return Handler


class FeatureServer:
    """The HTTP server around one reader; ``start()`` serves in a thread, ``serve_forever()`` in this one."""

    def __init__(
        self,
        cfg: Config,
        host: str = "127.0.0.1",
        port: int = 6566,
        families: Sequence[FeatureFamily] = FAMILIES,
    ) -> None:
        self.reader = OnlineReader(cfg, families)
        self.httpd = ThreadingHTTPServer((host, port), _handler(self.reader))
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}" if isinstance(host, str) else f"http://{host.decode()}:{port}"

    def start(self) -> FeatureServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="medallion-serve", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.reader.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
