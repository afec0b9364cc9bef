"""The command line as a user meets it: help, start-up cost, and errors that say what to fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CONFIG_DIR, REPO

COMMANDS = [
    "up",
    "down",
    "produce",
    "ingest",
    "silver",
    "gold",
    "materialize",
    "validate",
    "status",
    "run",
    "config",
]


def medallion(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MEDALLION")}
    return subprocess.run(
        [sys.executable, "-m", "medallion.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**base, **(env or {})},
    )


def test_help_lists_every_command_and_loads_no_heavy_library() -> None:
    probe = (
        "import sys, medallion.cli.main as m\n"
        "from typer.testing import CliRunner\n"
        "r = CliRunner().invoke(m.app, ['--help'])\n"
        "print(r.exit_code, r.output)\n"
        "print('HEAVY', sorted(n for n in ('pyspark', 'feast', 'confluent_kafka', 'pandas') if n in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("0 ")
    for command in COMMANDS:
        assert f" {command} " in out.stdout
    assert "HEAVY []" in out.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command: str) -> None:
    result = medallion(command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and command in result.stdout


def test_unknown_config_key_is_exit_2_with_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(
        (CONFIG_DIR / "base.yaml").read_text() + "\nspark:\n  mastr: local[1]\n"
    )
    result = medallion("--config-dir", str(tmp_path), "status")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{tmp_path / 'base.yaml'}: spark.mastr: unknown key" in result.stderr.replace("\n", "")


def test_wrong_type_from_environment_is_exit_2() -> None:
    result = medallion("status", env={"MEDALLION__KAFKA__PARTITIONS": "four"})
    assert result.returncode == 2
    assert "MEDALLION__KAFKA__PARTITIONS" in result.stderr and "Traceback" not in result.stderr


def test_bad_usage_is_exit_2() -> None:
    result = medallion("silver", "--start-date", "yesterday", "--end-date", "2026-01-01")
    assert result.returncode == 2


def test_unreachable_broker_is_exit_1_naming_the_address(tmp_path: Path) -> None:
    from medallion.embedded import find_free_port

    address = f"127.0.0.1:{find_free_port()}"  # nothing listens there, and no embedded broker may start
    env = {
        "MEDALLION__KAFKA__BOOTSTRAP_SERVERS": address,
        "MEDALLION__KAFKA__EMBEDDED": "false",
        "MEDALLION__KAFKA__CONNECT_TIMEOUT_S": "0.5",
        "MEDALLION__LAKE__ROOT": str(tmp_path / "lake"),
    }
    result = medallion("ingest", "--once", env=env, timeout=90)
    assert result.returncode == 1, result.stderr
    assert address in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "lake" / "bronze").exists()
