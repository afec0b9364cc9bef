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

    if embedded.is_kafka_reachable(cfg.kafka.bootstrap_servers, timeout_s=2.0):
        return
    address = embedded_address(cfg)
    if address is not None:
        logger.info("no broker at {a}: starting the embedded one", a=cfg.kafka.bootstrap_servers)
        embedded.start_broker(address[0], address[1], state_dir(cfg))
        return
    _wait_for_kafka(cfg)


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
