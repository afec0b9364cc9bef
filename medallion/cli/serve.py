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
    answered by medallion's fast Redis reader (one pipelined round trip per request).

    \b
    Example:
      medallion serve --port 6566
      curl -s localhost:6566/get-online-features -d '{"entities": {"user_id": ["u_000042"]},
           "feature_service": "user_profile"}'
    """
    from medallion.serving.server import FeatureServer
    from medallion.serving.store import check_online_store

    cfg = STATE.config()
    check_online_store(cfg)
    server = FeatureServer(cfg, host=host, port=port)
    console().print(f"Serving online features on {server.url}/get-online-features (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
