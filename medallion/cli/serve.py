from __future__ import annotations

from typing import Annotated

import typer

from medallion.cli.app import STATE, app, console


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (feast serve's default is 6566).")] = 6566,
) -> None:
    """Serve online features over HTTP with Feast's POST /get-online-features request and response,
    read from the configured online store (SQLite or Redis) without Feast. GET /metrics gives
    Prometheus text, GET /health 200. Limits, timeouts and the optional bearer token: the serve.*
    config keys; serve.workers processes share the port. SIGTERM (or Ctrl-C) lets in-flight requests
    finish, then exits.

    \b
    Example:
      medallion serve --port 6566
      curl -s localhost:6566/get-online-features -d '{"entities": {"user_id": ["u_000042"]},
           "feature_service": "user_profile"}'
    """
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    import signal

    from medallion.serving.server import FeatureServer
    from medallion.serving.store import check_online_store
    from medallion.serving.workers import Supervisor, worker_count

    cfg = STATE.config()
    store = check_online_store(cfg)
    workers = worker_count(cfg.serve)
    if workers > 1:
        supervisor = Supervisor(cfg, host, port, workers)
        code = supervisor.run(
            on_start=lambda: console().print(
                f"Serving online features from {store} on {supervisor.url}/get-online-features with "
                f"{workers} worker processes (Ctrl-C stops)"
            )
        )
        if code:
            raise typer.Exit(code)
        return
    server = FeatureServer(cfg, host=host, port=port)
    signal.signal(signal.SIGTERM, lambda *_: server.request_stop())
    console().print(
        f"Serving online features from {server.reader.store.description} on {server.url}/get-online-features "
        "(Ctrl-C stops)"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
