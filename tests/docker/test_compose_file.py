"""docker-compose.yaml is valid for a compose tool, and runs the Apache Kafka the tests run.

These need no Docker engine: ``docker-compose config -q`` only parses and checks the file (Debian's
``docker-compose`` package; under ``CI=true`` its absence fails the run, elsewhere it skips).
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import REPO
from tests.fixtures.jvm import JVM_DIR
from tests.fixtures.services import service_missing

COMPOSE = REPO / "docker-compose.yaml"


@pytest.mark.unit
def test_docker_compose_file_is_valid() -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        service_missing(
            "No docker-compose to validate docker-compose.yaml (Debian: apt-get install docker-compose)."
        )
    done = subprocess.run(
        [tool, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.unit
def test_compose_kafka_image_is_the_version_the_tests_run() -> None:
    image = yaml.safe_load(COMPOSE.read_text())["services"]["kafka"]["image"]
    pom = (JVM_DIR / "pom.xml").read_text()
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert match is not None
    assert image == f"apache/kafka:{match.group(1)}"
