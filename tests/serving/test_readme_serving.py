"""The README's online-serving examples run as written, on the embedded default store (SQLite), against a
small lake of fake Gold: every ``medallion features online`` line and ``medallion serve`` line of its bash
blocks (found by parsing the README, so an example added there is run here too)."""

from __future__ import annotations

import datetime as dt
import http.client
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from medallion import serving
from medallion.core.config import Config
from tests.serving.conftest import CONFIG_DIR
from tests.serving.families_gold import write_all

pytestmark = [pytest.mark.integration]

REPO = CONFIG_DIR.parent
SERVING_EXAMPLES = ("medallion features online", "medallion serve")


def readme_commands(prefixes: tuple[str, ...]) -> list[str]:
    text = (REPO / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
        for line in block.splitlines():
            command = line.split("  #", 1)[0].strip()
            if command.startswith(prefixes):
                commands.append(command)
    return commands


def _env(lake: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDALLION")}
    return env | {
        "MEDALLION_CONFIG_DIR": str(CONFIG_DIR),
        "MEDALLION__LAKE__ROOT": str(lake),
        "PYTHONPATH": str(REPO),
    }


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, serving_config: Callable[..., Config]) -> Path:
    root = tmp_path_factory.mktemp("readme") / "lake"
    today = dt.datetime.now(dt.UTC).date()
    write_all(root, [today - dt.timedelta(days=1), today], 60, presence=1.0)
    serving.materialize(serving_config(root))  # the default store: SQLite under the lake
    return root


def test_the_readme_has_serving_examples() -> None:
    commands = readme_commands(SERVING_EXAMPLES)
    assert any(c.startswith("medallion features online") for c in commands)
    assert any(c.startswith("medallion serve") for c in commands)


@pytest.mark.parametrize("command", [c for c in readme_commands(("medallion features online",))])
def test_features_online_examples_run(command: str, lake: Path) -> None:
    args = shlex.split(command)[1:] + ["--json"] * ("--json" not in command)
    out = subprocess.run(
        [sys.executable, "-m", "medallion.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=lake.parent,
        env=_env(lake),
    )
    assert out.returncode == 0, out.stderr
    columns = orjson.loads(out.stdout)
    for pair in re.findall(r"--entity (\w+)=(\S+)", command):
        assert columns[pair[0]] == [pair[1]]
    assert len(columns) > 3 and any(v != [None] for k, v in columns.items() if not k.endswith("_id"))


@pytest.mark.parametrize("command", [c for c in readme_commands(("medallion serve",))])
def test_serve_examples_run(command: str, lake: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = [a if a != "6566" else str(port) for a in shlex.split(command)[1:]]
    if "--port" not in args:
        args += ["--port", str(port)]
    process = subprocess.Popen(
        [sys.executable, "-m", "medallion.cli.main", *args],
        cwd=lake.parent,
        env=_env(lake),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                body = orjson.dumps(
                    {"entities": {"user_id": ["u_000042"]}, "feature_service": "user_profile"}
                )
                connection.request("POST", "/get-online-features", body)
                response = connection.getresponse()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"{command} did not come up: {process.stderr.read().decode() if process.stderr else ''}"
                    )
                time.sleep(0.3)
        answer = orjson.loads(response.read())
        assert response.status == 200, answer
        assert answer["results"][0]["values"] == ["u_000042"]
        assert any(v is not None for r in answer["results"][1:] for v in r["values"])
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
