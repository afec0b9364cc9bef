"""docker-compose services for the `docker` tests; every test here is skipped where no Docker engine answers."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import REPO


def docker_engine_answers() -> tuple[bool, str]:
    if shutil.which("docker") is None:
        return False, "no docker client on PATH"
    try:
        info = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=15
        )
    except subprocess.TimeoutExpired:
        return False, "`docker info` did not answer within 15 s"
    if info.returncode != 0 or not info.stdout.strip():
        return False, f"no Docker engine answers (`docker info`: {info.stderr.strip()[:200]})"
    return True, ""


ENGINE_OK, ENGINE_WHY = docker_engine_answers()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if ENGINE_OK:
        return
    for item in items:
        if item.get_closest_marker("docker") is not None:  # the marker; every item here has the keyword
            item.add_marker(pytest.mark.skip(reason=f"docker tests need a Docker engine: {ENGINE_WHY}"))


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(REPO / "docker-compose.yaml")


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    return "medallion-test"


@pytest.fixture(scope="session")
def docker_cleanup() -> list[str]:
    return ["down -v"]


def _kafka_up(address: str) -> bool:
    from medallion.engines.embedded import is_kafka_reachable

    return is_kafka_reachable(address, timeout_s=2.0)


def _redis_up(port: int) -> bool:
    import redis

    try:
        return bool(redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def compose_services(docker_services: object, docker_ip: str) -> dict[str, str]:
    kafka = f"{docker_ip}:{docker_services.port_for('kafka', 29092)}"  # type: ignore[attr-defined]
    redis_port = docker_services.port_for("redis", 6379)  # type: ignore[attr-defined]
    docker_services.wait_until_responsive(timeout=180, pause=2, check=lambda: _kafka_up(kafka))  # type: ignore[attr-defined]
    docker_services.wait_until_responsive(timeout=60, pause=1, check=lambda: _redis_up(redis_port))  # type: ignore[attr-defined]
    return {"kafka": kafka, "redis": f"{docker_ip}:{redis_port},db=0"}
