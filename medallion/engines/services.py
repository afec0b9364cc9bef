"""Finding the services a command needs, and starting the embedded broker where that is allowed."""

from __future__ import annotations

from pathlib import Path

from loguru import logger

from medallion.core import catalog, lakefs
from medallion.core.config import Config
from medallion.core.errors import ConfigError, TransientError
from medallion.core.retry import retry_transient
from medallion.engines import embedded

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "0.0.0.0")


def embedded_address(cfg: Config) -> tuple[str, int] | None:
    """``(host, port)`` when the config allows an embedded broker at its bootstrap address, else None."""
    servers = [s.strip() for s in cfg.kafka.bootstrap_servers.split(",") if s.strip()]
    if not cfg.kafka.embedded or len(servers) != 1:
        return None
    host, _, port = servers[0].rpartition(":")
    if host not in LOCAL_HOSTS or not port.isdigit():
        return None
    return host, int(port)


def state_dir(cfg: Config) -> Path:
    if not cfg.lake.is_local:
        raise ConfigError(
            f"The embedded services keep their state on the local disk, but lake.root is {cfg.lake.root}. "
            f"Use a local lake for the embedded setting, or point kafka.bootstrap_servers at a real cluster."
        )
    return lakefs.local_path(catalog.STATE.path(cfg))


def ensure_kafka(cfg: Config) -> None:
    """Make sure a Kafka-protocol broker answers: start the embedded one if allowed, else retry, then fail."""

    address = embedded_address(cfg)
    if embedded.is_kafka_reachable(cfg.kafka.bootstrap_servers, timeout_s=2.0):
        if address is not None and cfg.lake.is_local:
            _warn_if_not_ours(cfg)
        return
    if address is not None:
        logger.info("no broker at {a}: starting the embedded one", a=cfg.kafka.bootstrap_servers)
        embedded.start_broker(address[0], address[1], state_dir(cfg))
        return
    _wait_for_kafka(cfg)


def _warn_if_not_ours(cfg: Config) -> None:
    """Say so when the broker at the embedded address is not the one this lake started: another
    directory's `medallion run` left its broker up, say, and its topic holds that run's events too."""
    ours = embedded.broker_status(state_dir(cfg))
    if ours is not None and ours.alive and ours.address == cfg.kafka.bootstrap_servers.strip():
        return
    logger.warning(
        "a Kafka broker already answers at {a}, and this lake did not start it (no live broker in {s}): "
        "medallion uses it as it is, with whatever its topic {t} holds (an embedded broker another "
        "directory's run left up keeps that run's events, which this lake will ingest too). Stop it where "
        "it was started (medallion down there) for a broker of this lake's own, or set kafka.embedded: "
        "false to use your own broker without this warning.",
        a=cfg.kafka.bootstrap_servers,
        s=state_dir(cfg),
        t=cfg.kafka.topic,
    )


def _wait_for_kafka(cfg: Config) -> None:

    @retry_transient(attempts=4, max_delay_s=30)
    def probe() -> None:
        if not embedded.is_kafka_reachable(
            cfg.kafka.bootstrap_servers, timeout_s=cfg.kafka.connect_timeout_s
        ):
            raise TransientError(
                f"Kafka is unreachable at {cfg.kafka.bootstrap_servers} (kafka.bootstrap_servers). Check that the "
                f"brokers are up and the address is right (MEDALLION__KAFKA__BOOTSTRAP_SERVERS), or use "
                f"--env local to run the embedded broker."
            )

    probe()
