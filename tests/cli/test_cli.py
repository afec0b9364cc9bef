"""The command line as a user meets it: help, start-up cost, and errors that say what to fix."""

from __future__ import annotations

import datetime as dt
import os
import re
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
    "report",
    "forget",
    "retention",
    "compact",
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


# Loaded only when a command runs: the engines, and what `--help` has no use for (the config models,
# YAML, rich, loguru). `medallion --help` then costs about what importing Typer does (bench/bench_cli.py).
NOT_FOR_HELP = (
    "pyspark",
    "feast",
    "confluent_kafka",
    "pandas",
    "pydantic",
    "medallion.core.config",
    "yaml",
    "rich",
    "loguru",
)


def test_help_lists_every_command_and_loads_no_heavy_library() -> None:
    probe = (
        "import sys\n"
        "from medallion.cli.main import run_app\n"
        "code = run_app(['--help'])\n"
        f"print('CODE', code, 'LOADED', sorted(n for n in {NOT_FOR_HELP!r} if n in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    for command in COMMANDS:
        assert f" {command} " in out.stdout
    assert "CODE 0 LOADED []" in out.stdout


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


USAGE_ERRORS = {
    "a date that is not one": (
        ["silver", "--start-date", "yesterday", "--end-date", "2026-01-01"],
        "--start-date",
    ),
    "gold, end before start": (
        ["gold", "--start-date", "2026-01-05", "--end-date", "2026-01-01"],
        "--end-date 2026-01-01 is before --start-date 2026-01-05",
    ),
    "silver, end before start": (
        ["silver", "--start-date", "2026-01-05", "--end-date", "2026-01-01"],
        "--end-date 2026-01-01 is before",
    ),
    "silver --incremental, end before start": (
        ["silver", "--incremental", "--start-date", "2026-01-05", "--end-date", "2026-01-01"],
        "--end-date 2026-01-01 is before",
    ),
    "silver without dates": (["silver"], "--start-date and --end-date, or --incremental"),
    "silver with one date": (
        ["silver", "--start-date", "2026-01-01"],
        "--start-date and --end-date, or --incremental",
    ),
    "validate, end before start": (
        ["validate", "--start-date", "2026-01-05", "--end-date", "2026-01-01"],
        "is before",
    ),
    "validate, unknown layer": (
        ["validate", "--start-date", "2026-01-01", "--end-date", "2026-01-01", "--layer", "platinum"],
        "Unknown layer 'platinum'",
    ),
    "materialize, start after end": (
        ["materialize", "--start", "2026-01-05", "--end", "2026-01-01"],
        "is not before --end",
    ),
    "gold without dates": (["gold"], "gold needs both --start-date and --end-date, or --incremental"),
    "unknown log level": (["--log-level", "loud", "status"], "--log-level"),
    "unknown environment": (["--env", "nowhere", "status"], "Unknown environment 'nowhere'"),
    "unknown command": (["frobnicate"], "No such command 'frobnicate'"),
    "unknown option": (["status", "--frobnicate"], "No such option: --frobnicate"),
    "a share above 1": (["produce", "--bad-ratio", "2"], "--bad-ratio"),
    "a negative count": (["run", "--count", "-1"], "--count"),
    "forget, nobody": (["forget", "--dry-run"], "forget needs exactly one of --user-id, --email or --phone"),
    "compact, unknown layer": (["compact", "--layer", "platinum"], "Unknown layer 'platinum' for compact"),
    "compact, one date": (
        ["compact", "--layer", "silver", "--start-date", "2026-01-01"],
        "compact takes both --start-date and --end-date, or neither",
    ),
    "compact, end before start": (
        ["compact", "--layer", "gold", "--start-date", "2026-01-05", "--end-date", "2026-01-01"],
        "--end-date 2026-01-01 is before",
    ),
    "compact, no layer": (["compact"], "Missing option '--layer'"),
    "forget, two people": (
        ["forget", "--user-id", "u_1", "--email", "a@b.c"],
        "forget needs exactly one of --user-id, --email or --phone",
    ),
}


@pytest.mark.parametrize("argv", USAGE_ERRORS.values(), ids=USAGE_ERRORS.keys())
def test_bad_usage_is_exit_2_with_one_clear_line_before_any_work(
    argv: tuple[list[str], str], tmp_path: Path
) -> None:
    args, message = argv
    lake = tmp_path / "lake"
    result = medallion(*args, env={"MEDALLION__LAKE__ROOT": str(lake)})
    assert result.returncode == 2, result.stderr
    assert message in " ".join(result.stderr.split()), result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert not lake.exists()  # nothing ran: no broker state, no ledger record, no table


def test_unreachable_broker_is_exit_1_naming_the_address(tmp_path: Path) -> None:
    from medallion.engines.embedded import find_free_port

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


# A log4j line in Spark's default layout ("26/12/01 16:36:45 WARN Utils: ...") or in ours.
SPARK_LOG_LINE = re.compile(
    r"^\d\d/\d\d/\d\d \S+ (WARN|INFO) |^\d\d:\d\d:\d\d (WARN|INFO) +spark ", re.MULTILINE
)


@pytest.mark.integration
@pytest.mark.parametrize("debug", [False, True], ids=["default", "debug"])
def test_a_spark_command_is_quiet_by_default_and_shows_spark_at_debug(debug: bool, tmp_path: Path) -> None:
    # validate on an empty lake starts Spark, finds no data and fails its checks (exit 1): a real stage
    # at the cost of one session start.
    level = ["--log-level", "debug"] if debug else []
    env = {"MEDALLION__LAKE__ROOT": str(tmp_path / "lake"), "MEDALLION__SPARK__MASTER": "local[1]"}
    result = medallion(*level, "validate", "--start-date", "2026-01-01", "--end-date", "2026-01-01", env=env)
    assert result.returncode == 1, result.stderr
    # The failed rule is named in the one error line (the table's detail column may be cut to the width).
    assert "fail rule(s) failed: bronze.user_events: exists" in " ".join(result.stderr.split())
    spark_lines = SPARK_LOG_LINE.findall(result.stderr)
    if debug:
        assert re.search(r"INFO +spark SparkContext: Running Spark version", result.stderr), result.stderr
        # One time zone in every line (UTC by default; the tests run at +05:30): ours and Spark's.
        now = dt.datetime.now(dt.UTC)
        for pattern in (r"^(\d\d:\d\d:\d\d) (?:DEBUG|INFO) +(?!spark)", r"^(\d\d:\d\d:\d\d) \w+ +spark "):
            stamp = re.search(pattern, result.stderr, re.MULTILINE)
            assert stamp, (pattern, result.stderr[-2000:])
            hours, minutes, _ = map(int, stamp.group(1).split(":"))
            off = abs((hours * 60 + minutes) - (now.hour * 60 + now.minute))
            assert min(off, 1440 - off) <= 10, (stamp.group(0), now)
    else:
        assert spark_lines == [], result.stderr
        for noise in (
            "Using Spark's default log4j profile",
            "Setting default log level",
            "replaced a previously",
        ):
            assert noise not in result.stderr
