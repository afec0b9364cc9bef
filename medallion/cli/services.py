from __future__ import annotations

from medallion.cli.app import STATE, app, console


@app.command()
def up() -> None:
    """Start the embedded Kafka-protocol broker (if none answers) and create the configured topic."""
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from medallion.core.errors import ConfigError
    from medallion.engines.kafka.admin import ensure_topics
    from medallion.engines.services import embedded_address, ensure_kafka

    cfg = STATE.config()
    if embedded_address(cfg) is None:
        raise ConfigError(
            f"No embedded broker for this config: kafka.embedded is off or {cfg.kafka.bootstrap_servers} is not "
            f"a single local address. `up` is for the local environment (--env local)."
        )
    ensure_kafka(cfg)
    ensure_topics(
        cfg.kafka.bootstrap_servers, {cfg.kafka.topic: cfg.kafka.partitions}, cfg.kafka.replication_factor
    )
    console().print(
        f"broker up at {cfg.kafka.bootstrap_servers}; topic {cfg.kafka.topic} ({cfg.kafka.partitions} partitions)"
    )


@app.command()
def down() -> None:
    """Stop the embedded broker that `up` (or any local command) started. Its in-memory topics are gone."""
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from medallion.engines import embedded
    from medallion.engines.services import state_dir

    stopped = embedded.stop_broker(state_dir(STATE.config()))
    console().print("broker stopped" if stopped else "no embedded broker was running")
