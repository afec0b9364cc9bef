"""Every command the README shows (README.md and bench/README.md: each line of their bash and cron
blocks) is accounted for in COVERAGE, and an unknown line fails: run here as written on a small lake in a
temporary directory (the `Here` lines, each with a check of its output or effect in CHECKS), run as
written by another test (`By`: that file must exist and hold or parse the line), or not runnable here for
a stated reason (`Cannot`; `Export` and `Bench` lines are checked otherwise). Whatever the kind, every
`medallion ...` a line holds must name real commands and options.

To add a README line: add its pattern to COVERAGE (and, for `Here`, its check to CHECKS)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import socket
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import CONFIG_DIR, REPO
from tests.readme_lines import Line, commands

DOCS = ("README.md", "bench/README.md")


@dataclass(frozen=True)
class Here:
    """Run here as written, in README order with the other lines of its scenario; CHECKS checks it."""

    scenario: str  # "lake": a small lake, no broker; "broker": the embedded broker on a free port


@dataclass(frozen=True)
class By:
    """Run by another test or script: `holds` are regexes the file must contain (the line, or how that
    file reads it from the README); `parses` names a function of that module returning the lines it runs."""

    path: str
    holds: tuple[str, ...] = ()
    parses: Callable[[Any], list[str]] | None = None
    note: str = ""


@dataclass(frozen=True)
class Cannot:
    """Cannot run here: the precise reason, and the test that covers the same behaviour where one does."""

    reason: str
    covered_by: str = ""


@dataclass(frozen=True)
class Export:
    """`export NAME=value`: each name must be one medallion, its config or a named library reads."""


@dataclass(frozen=True)
class Bench:
    """A benchmark's command or synopsis (minutes on a quiet machine, not a test): the script exists and
    takes every option shown."""


Cover = Here | By | Cannot | Export | Bench

PROD = "a production host: `--env prod` needs the cluster's brokers, Spark master and s3a:// or hdfs:// lake"
SERVING = By("tests/serving/test_readme_serving.py", parses=lambda m: m.readme_commands(m.SERVING_EXAMPLES))
OWN = By("tests/e2e/test_own_events.py", parses=lambda m: m.readme_commands())

# (regex the whole line must match, how it is covered). The first match wins; every entry must match.
COVERAGE: list[tuple[str, Cover]] = [
    # README.md, "The two commands": what CI runs on a fresh clone.
    (
        r'pip install -e "\.\[dev\]" && medallion run',
        By(".ci/run", (r'pip install .*-e "\.\[dev\]"', r"\bmedallion run\n")),
    ),
    (r"pytest", By(".ci/run", (r"\n\S* ?pytest\b",))),
    # "Commands"
    (r"medallion up", Here("broker")),
    (r"medallion produce --count 100000 --bad-ratio 0\.01", Here("broker")),
    (r"medallion contract check samples\.jsonl", Here("lake")),
    (r"medallion lookups load (items items|users users|currency_rates currency_rates)\.csv", Here("lake")),
    (r"medallion lookups show", Here("lake")),
    (r"medallion ingest --once", OWN),
    (
        r"medallion ingest",
        By(
            "tests/bronze/test_sigterm.py",
            (r"ingest\.start\(once=False\)", r"os\.killpg\(proc\.pid, signal\.SIGTERM\)"),
            note="continuous, as written (test_crash.py's Ingest), stopped by SIGTERM with a batch in flight "
            "and restarted; test_crash.py ends such runs by SIGKILL",
        ),
    ),
    (r"medallion (silver|gold) --incremental", OWN),
    (r"medallion materialize", OWN),
    (
        r"medallion silver --start-date 2026-11-01 --end-date 2026-11-07",
        By(
            "tests/silver/test_job.py",
            (r'"silver", "--start-date", day, "--end-date", day',),
            note="the command on one day of a small Bronze: the README's week needs that week's Bronze",
        ),
    ),
    (
        r"medallion gold --start-date 2026-11-01 --end-date 2026-11-07",
        Cannot(
            "every Gold family over a week of Silver in Spark (the job in-process)", "tests/gold/test_job.py"
        ),
    ),
    (
        r"medallion gold --incremental --feature-type user_features",
        By("tests/gold/test_cli.py", (r'"gold", "--incremental", "--feature-type", "user_features"',)),
    ),
    (r"medallion features online .*", SERVING),
    (r"medallion serve --port 6566", SERVING),
    (
        r"medallion features historical --entities rows\.parquet --out training\.parquet --service user_profile",
        By(
            "tests/serving/test_historical.py",
            (
                r'"historical", "--entities", str\(rows_file\), "--out", str\(out\), "--service", "user_profile"',
            ),
        ),
    ),
    (r"medallion features schema --history", Here("lake")),
    (
        r"medallion validate --layer silver --start-date 2026-11-01 --end-date 2026-11-07",
        By("tests/quality/test_validate.py", (r'"validate"', r'"--layer", "silver", "--start-date"')),
    ),
    (r"medallion status", Here("lake")),
    (r"medallion status --json", Here("lake")),
    (r"medallion report --out report\.html", Here("lake")),
    (r"medallion config", Here("lake")),
    (r"medallion down", Here("broker")),
    # cron blocks (README: "From cron"), and the upgrade's rebuild
    (r"cd /srv/medallion && medallion --env prod .*", Cannot(f"a cron entry on {PROD}")),
    (r"medallion --env prod (ingest|silver|gold|materialize) .*", Cannot(f"the rebuild of a lake on {PROD}")),
    # "Operating the lake over time"
    (r"medallion compact --layer bronze --dry-run", Here("lake")),
    (r"medallion compact --layer bronze", Here("lake")),
    (r"medallion compact --layer silver --start-date 2026-11-01 --end-date 2026-11-07", Here("lake")),
    (r"medallion retention --dry-run", Here("lake")),
    (r"medallion retention", Here("lake")),
    (r"medallion forget --user-id u_000042 --dry-run", Here("lake")),
    (r"medallion forget --email someone@example\.com", Here("lake")),
    (r'medallion forget --phone "\+1 555 010 9999" --recompute', Here("lake")),
    # "Your own events", "Pointing it at a real cluster", the engines' reproduction
    (r"export .*", Export()),
    (r"medallion --env prod status", Cannot(f"{PROD} (the exports above it are checked as Export lines)")),
    (r"bash tests/jvm/resolve\.sh", By(".ci/run", (r"\nbash tests/jvm/resolve\.sh\n",))),
    (
        r"pytest tests/kafka tests/e2e/test_pipeline_engines\.py",
        By(".ci/run", (r"\n\S* ?pytest\b",), note="a subset of the whole suite .ci/run runs"),
    ),
    (
        r"medallion --env prod run",
        By(
            "tests/e2e/test_pipeline_engines.py",
            (r'"run", "--count"', r'"--env", "prod"|MEDALLION_ENV.*prod'),
        ),
    ),
    # bench/README.md
    (r"python bench/\w+\.py.*|\[--.*", Bench()),
    (
        r"jfr print .* \| less",
        Cannot("reads the flight recording a benchmark run made, into an interactive pager"),
    ),
]


# Entries for lines being added to the README in parallel by another branch, so that they run here the
# moment they land: these may match no line yet (and their CHECKS run no line). Empty once they landed.
NOT_YET_IN_README: set[str] = set()


def readme_lines() -> list[Line]:
    return [line for doc in DOCS for line in commands(REPO / doc, REPO)]


def cover(line: Line) -> tuple[str, Cover] | None:
    return next(((p, c) for p, c in COVERAGE if re.fullmatch(p, line.text, re.S)), None)


def how(line: Line) -> Cover | None:
    covered = cover(line)
    return covered[1] if covered else None


LINES = readme_lines()


def test_every_readme_command_is_accounted_for() -> None:
    assert len(LINES) > 40 and any(line.file == "bench/README.md" for line in LINES)
    unknown = [str(line) for line in LINES if cover(line) is None]
    assert not unknown, "README command lines COVERAGE does not know (add each):\n" + "\n".join(unknown)
    used = {covered[0] for line in LINES if (covered := cover(line))}
    stale = [p for p, _ in COVERAGE if p not in used and p not in NOT_YET_IN_README]
    assert not stale, f"COVERAGE entries no README line matches any more: {stale}"


def test_each_line_run_here_has_a_check() -> None:
    here = {line.text for line in LINES if isinstance(how(line), Here)}
    coming = {c for c in CHECKS if any(re.fullmatch(p, c) for p in NOT_YET_IN_README)}
    assert here - set(CHECKS) == set() and set(CHECKS) - here - coming == set()


def _module(path: str) -> object:
    import importlib

    return importlib.import_module(path.removesuffix(".py").replace("/", "."))


@pytest.mark.parametrize("line", [line for line in LINES if isinstance(how(line), By)], ids=str)
def test_a_line_mapped_to_another_test_is_run_there(line: Line) -> None:
    by = how(line)
    assert isinstance(by, By)
    path = REPO / by.path
    assert path.is_file(), f"{line}: {by.path} is gone"
    text = path.read_text()
    for pattern in by.holds:
        assert re.search(pattern, text), f"{line}: {by.path} no longer holds {pattern!r}"
    if by.parses:
        lines = by.parses(_module(by.path))
        assert line.text in lines, f"{line}: {by.path} does not read it from the README: {lines}"


@pytest.mark.parametrize("line", [line for line in LINES if isinstance(how(line), Cannot)], ids=str)
def test_a_line_that_cannot_run_here_says_why(line: Line) -> None:
    cannot = how(line)
    assert isinstance(cannot, Cannot) and len(cannot.reason) > 20
    if cannot.covered_by:
        assert (REPO / cannot.covered_by).is_file(), f"{line}: {cannot.covered_by} is gone"


def invocations(text: str) -> list[list[str]]:
    """The argument lists of every `medallion ...` a shell line runs (split at &&, ||, |, ;, redirections)."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    found: list[list[str]] = []
    current: list[str] | None = None
    tokens = list(lexer)
    for i, token in enumerate(tokens):
        if set(token) <= set("();<>|&"):
            current = None  # a separator or a redirection: what follows is no argument of this command
        elif token == "medallion" and (i == 0 or tokens[i - 1] in {"&&", "||", "|", ";"}):
            current = []
            found.append(current)
        elif current is not None:
            current.append(token)
    return found


HELP_PROBE = """
import json, sys
from typer.testing import CliRunner
from medallion.cli.main import app
calls = json.load(sys.stdin)
out = [[r.exit_code, r.output] for r in (CliRunner().invoke(app, [*args, "--help"]) for args in calls)]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def help_of() -> dict[str, tuple[int, str]]:
    """`medallion <args> --help` of every invocation the README shows, in one process of its own (the
    CLI's callback sets the log format and the environment for the rest of the process it runs in)."""
    calls = sorted({shlex.join(c) for line in LINES for c in invocations(line.text) if c})
    done = subprocess.run(
        [sys.executable, "-c", HELP_PROBE],
        input=json.dumps([shlex.split(c) for c in calls]),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if not k.startswith("MEDALLION")}
        | {"MEDALLION_CONFIG_DIR": str(CONFIG_DIR), "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    return {call: (code, output) for call, (code, output) in zip(calls, json.loads(done.stdout), strict=True)}


@pytest.mark.parametrize("line", [line for line in LINES if "medallion " in line.text], ids=str)
def test_every_medallion_line_names_real_commands_and_options(
    line: Line, help_of: dict[str, tuple[int, str]]
) -> None:
    """Click parses every option before it acts on `--help`: an unknown command or option is exit 2."""
    calls = [c for c in invocations(line.text) if c]
    assert calls, line
    for args in calls:
        code, output = help_of[shlex.join(args)]
        assert code == 0, f"{line}: medallion {shlex.join(args)}: {output}"
        assert "Usage:" in output


# Read by medallion's config (config/*.yaml) or a library it names in the README.
LIBRARY_VARIABLES = {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"}


@pytest.mark.parametrize("line", [line for line in LINES if isinstance(how(line), Export)], ids=str)
def test_every_exported_variable_is_read(line: Line) -> None:
    from medallion.core.config import Config, load_config

    names = [word.split("=", 1)[0] for word in shlex.split(line.text)[1:] if "=" in word]
    assert names, line
    yaml = "".join(p.read_text() for p in CONFIG_DIR.glob("*.yaml"))
    for name in names:
        if name.startswith("MEDALLION__"):
            section, key = name.removeprefix("MEDALLION__").lower().split("__", 1)
            model = Config.model_fields[section].annotation
            assert key in model.model_fields, f"{line}: {name} names no config field"  # type: ignore[union-attr]
        elif name == "MEDALLION_PII_KEY":
            assert load_config("local", CONFIG_DIR, environ={}).pii.hmac_key_env == name
        elif name.startswith("MEDALLION_"):
            assert "${" + name in yaml, f"{line}: no file in config/ reads {name}"
        else:
            assert name in LIBRARY_VARIABLES, f"{line}: who reads {name}?"


@pytest.mark.parametrize("line", [line for line in LINES if isinstance(how(line), Bench)], ids=str)
def test_a_benchmark_line_names_a_script_and_its_options(line: Line) -> None:
    previous = [other for other in LINES if other.file == line.file and other.lineno <= line.lineno]
    script = next(
        m.group(1) for o in reversed(previous) if (m := re.match(r"python (bench/\w+\.py)", o.text))
    )
    source = (REPO / script).read_text()
    for option in re.findall(r"(--[\w-]+)", line.text):
        assert f'"{option}"' in source, f"{line}: {script} takes no {option}"


# ---- the lines run here -------------------------------------------------------------------------------


@dataclass
class Ran:
    line: str
    code: int
    out: str
    err: str
    cwd: Path
    lake: Path
    port: int


def _wrapper(bin_dir: Path) -> None:
    """`medallion` on PATH as this interpreter with this checkout's code."""
    bin_dir.mkdir()
    script = bin_dir / "medallion"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m medallion.cli.main "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_scenario(scenario: str, work: Path, env: dict[str, str], port: int) -> list[str]:
    _wrapper(work / "bin")
    base = {k: v for k, v in os.environ.items() if not k.startswith("MEDALLION")}
    env = (
        base
        | env
        | {
            "PATH": f"{work / 'bin'}{os.pathsep}{base.get('PATH', '')}",
            "PYTHONPATH": str(REPO),
            "MEDALLION_CONFIG_DIR": str(CONFIG_DIR),
            "MEDALLION__LAKE__ROOT": str(work / "lake"),
            "COLUMNS": "200",
        }
    )
    ran = []
    for line in LINES:
        if how(line) != Here(scenario):
            continue
        done = subprocess.run(
            ["bash", "-c", line.text], capture_output=True, text=True, cwd=work, env=env, timeout=120
        )
        CHECKS[line.text](
            Ran(line.text, done.returncode, done.stdout, done.stderr, work, work / "lake", port)
        )
        ran.append(line.text)
    return ran


def ok(r: Ran) -> str:
    assert r.code == 0, f"{r.line}: exit {r.code}\n{r.out[-2000:]}\n{r.err[-2000:]}"
    return r.out


TODAY = dt.datetime.now(dt.UTC).date()


def day(n: int) -> str:
    return (TODAY - dt.timedelta(days=n)).isoformat()


PEOPLE = {
    "u_000042": {},
    "u_000100": {"email": "someone@example.com"},
    "u_000200": {"phone": "+1 555 010 9999"},
}
BYSTANDER = "u_000300"
OLD_BRONZE = f"dt={day(40)}"
HOUR = Path("bronze", "user_events", f"dt={day(1)}", "hr=1")
BRONZE = pa.schema(
    [
        ("event_id", pa.string()),
        ("user_id", pa.string()),
        ("user", pa.struct([("email_hmac", pa.string()), ("phone_hmac", pa.string())])),
    ]
)
WEEK_DAY = "2026-11-03"  # in the README's week of 2026-11-01 .. 07


def build_lake(work: Path) -> None:
    """Bronze: one old partition (past its 30 days) and a recent one with the README's people and one
    bystander; Silver: one partition past its 400 days; the files the README's lines name."""
    from medallion.core.config import load_config
    from medallion.maintenance.forget import seeds
    from medallion.pii.keys import pii_key
    from medallion.pii.scrub import Hmac

    lake = work / "lake"
    cfg = load_config("local", CONFIG_DIR, {"lake.root": str(lake)}, environ={})
    keyed = Hmac(pii_key(cfg))  # the development key under the lake, as the commands will read it

    def hashed(kind: str, value: str | None) -> str | None:
        if value is None:
            return None
        person = seeds(
            keyed,
            user_id=None,
            email=value if kind == "email" else None,
            phone=value if kind == "phone" else None,
        )
        return next(iter(person.emails or person.phones))

    def write(folder: Path, rows: list[dict[str, object]]) -> None:
        folder.mkdir(parents=True)
        schema = BRONZE if "user" in rows[0] else None  # one schema for every Bronze file, as Spark writes
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), folder / "part-00000.snappy.parquet")

    def row(n: int, user: str, who: dict[str, str]) -> dict[str, object]:
        email, phone = hashed("email", who.get("email")), hashed("phone", who.get("phone"))
        return {"event_id": f"e{n}", "user_id": user, "user": {"email_hmac": email, "phone_hmac": phone}}

    bronze = lake / "bronze" / "user_events"
    write(bronze / OLD_BRONZE / "hr=1" / "batch=0", [row(0, BYSTANDER, {})])
    people = [row(n, u, who) for n, (u, who) in enumerate(PEOPLE.items(), 1)]
    write(bronze / f"dt={day(1)}" / "hr=1" / "batch=1", [*people, row(9, BYSTANDER, {})])
    write(bronze / f"dt={day(1)}" / "hr=1" / "batch=2", [row(10, BYSTANDER, {})])  # one hour, two batches
    commits = lake / "_checkpoints" / "bronze" / "user_events" / "commits"
    commits.mkdir(parents=True)
    for batch in ("0", "1", "2"):
        (commits / batch).write_text("v1\n{}")
    write(
        lake / "silver" / "user_events" / f"event_date={day(500)}" / "event_type=click", [{"event_id": "s"}]
    )
    week = lake / "silver" / "user_events" / f"event_date={WEEK_DAY}" / "event_type=click"
    write(week, [{"event_id": "w1"}])  # two files in one partition: `compact --layer silver` merges them
    pq.write_table(pa.Table.from_pylist([{"event_id": "w2"}]), week / "part-00001.snappy.parquet")

    event = {"schema_version": 1, "event_type": "page_view", "session_id": "s-1", "user_id": "u_000042"}
    samples = [event | {"event_id": f"e{n}", "event_time": f"{day(1)}T09:3{n}:00.000Z"} for n in range(3)]
    (work / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    (work / "items.csv").write_text(
        "item_id,category,brand,base_price_usd,popularity_rank\ni_000007,books,acme,12.5,1\nSKU-1,toys,zed,3,2\n"
    )
    (work / "users.csv").write_text(
        "user_id,signup_date,country,city,segment,currency\nu_000042,2026-01-02,DE,Berlin,new,EUR\n"
    )
    (work / "currency_rates.csv").write_text(
        f"currency,rate_to_usd,as_of_date\nUSD,1.0,2026-01-01\nEUR,1.08,2026-01-01\nEUR,1.1,{day(3)}\n"
    )


def bronze_users(lake: Path) -> list[str]:
    folder = lake / "bronze" / "user_events"
    return sorted(
        u for f in folder.rglob("*.parquet") for u in pq.read_table(f).column("user_id").to_pylist()
    )


def snapshot(lake: Path) -> list[str]:
    return sorted(str(p.relative_to(lake)) for p in lake.rglob("*.parquet"))


def _lookups_loaded(table: str, rows: int) -> Callable[[Ran], None]:
    def check(r: Ran) -> None:
        assert re.search(rf"│\s+{rows} │\s+\d+ │\s+\d+ │\s+{rows} │", ok(r)), r.out
        assert pq.read_table(r.lake / "lookups" / table).num_rows == rows

    return check


def _contract(r: Ran) -> None:
    assert ok(r).splitlines()[-1] == "3 records: 3 valid, 0 invalid", r.out


def _show(r: Ran) -> None:
    out = ok(r)
    for table, rows in (("items", 2), ("users", 1), ("currency_rates", 3)):
        assert re.search(rf"│ {table}\s+│ {rows}\s+│", out), out


def _schema(r: Ran) -> None:
    assert "feature schemas (history)" in ok(r) and "user_features" in r.out


def _status(r: Ran) -> None:
    assert re.search(r"bronze\.user_events\s+│\s+[1-9]", ok(r)), r.out
    assert f"Kafka unreachable at 127.0.0.1:{r.port}" in r.out


def _status_json(r: Ran) -> None:
    tables = {t["table"]: t for t in json.loads(ok(r))["tables"]}
    assert tables["bronze.user_events"]["rows"] == sum(1 for _ in bronze_users(r.lake)) > 0


def _report(r: Ran) -> None:
    assert "Wrote report.html" in ok(r)
    html = (r.cwd / "report.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and "bronze.user_events" in html
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']https?://""", html)  # self-contained


def _config(r: Ran) -> None:
    assert re.search(rf"^lake:\n  root: {re.escape(str(r.lake))}$", ok(r), re.M), r.out[:500]
    assert f"bootstrap_servers: 127.0.0.1:{r.port}" in r.out


def _retention_dry(r: Ran) -> None:
    out = ok(r)
    assert "dry run: nothing deleted" in out
    for dataset in ("bronze.user_events", "silver.user_events"):  # one partition, file and row each
        assert re.search(rf"│ {re.escape(dataset)}\s+│ [\d-]+\s+│\s+1 │\s+1 │\s+1 │", out), out
    assert any(OLD_BRONZE in p for p in snapshot(r.lake))


def _retention(r: Ran) -> None:
    ok(r)
    kept = snapshot(r.lake)
    assert not any(OLD_BRONZE in p or f"event_date={day(500)}" in p for p in kept), kept
    assert any(f"dt={day(1)}" in p for p in kept), kept


def _forget_dry(r: Ran) -> None:
    assert "rows found" in ok(r) and "(dry run)" in r.out
    assert "u_000042" in bronze_users(r.lake)


def _forgotten(user: str) -> Callable[[Ran], None]:
    def check(r: Ran) -> None:
        assert "rows removed" in ok(r), r.out
        users = bronze_users(r.lake)
        assert user not in users and BYSTANDER in users, users

    return check


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.parquet"))


def _compact_dry(r: Ran) -> None:
    assert "dry run" in ok(r) and re.search(r"│\s+2 → 1\s+│", r.out), r.out  # the hour's two batches
    assert [p.split("/")[0] for p in _files(r.lake / HOUR)] == ["batch=1", "batch=2"]


def _compact_bronze(r: Ran) -> None:
    ok(r)
    assert [p.split("/")[0] for p in _files(r.lake / HOUR)] == ["batch=2"], _files(r.lake / HOUR)
    assert bronze_users(r.lake) == sorted([BYSTANDER] * 3 + list(PEOPLE)), bronze_users(r.lake)


def _compact_silver(r: Ran) -> None:
    ok(r)
    week = r.lake / "silver" / "user_events" / f"event_date={WEEK_DAY}"
    assert len(_files(week)) == 1, _files(week)
    rows = [e for f in week.rglob("*.parquet") for e in pq.read_table(f).column("event_id").to_pylist()]
    assert sorted(rows) == ["w1", "w2"]


def _up(r: Ran) -> None:
    assert f"broker up at 127.0.0.1:{r.port}" in ok(r) + r.err, r.out + r.err


def _produce(r: Ran) -> None:
    from tests.e2e.checks import end_offsets

    assert re.search(r"│\s+100,000 │\s+100,000 │\s+0 │", ok(r)), r.out
    assert sum(end_offsets(f"127.0.0.1:{r.port}", "user_events").values()) == 100_000


def _down(r: Ran) -> None:
    assert "broker stopped" in ok(r) + r.err
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", r.port)) != 0


CHECKS: dict[str, Callable[[Ran], None]] = {
    "medallion contract check samples.jsonl": _contract,
    "medallion lookups load items items.csv": _lookups_loaded("items", 2),
    "medallion lookups load users users.csv": _lookups_loaded("users", 1),
    "medallion lookups load currency_rates currency_rates.csv": _lookups_loaded("currency_rates", 3),
    "medallion lookups show": _show,
    "medallion features schema --history": _schema,
    "medallion status": _status,
    "medallion status --json": _status_json,
    "medallion report --out report.html": _report,
    "medallion config": _config,
    "medallion compact --layer bronze --dry-run": _compact_dry,
    "medallion compact --layer bronze": _compact_bronze,
    "medallion compact --layer silver --start-date 2026-11-01 --end-date 2026-11-07": _compact_silver,
    "medallion retention --dry-run": _retention_dry,
    "medallion retention": _retention,
    "medallion forget --user-id u_000042 --dry-run": _forget_dry,
    "medallion forget --email someone@example.com": _forgotten("u_000100"),
    'medallion forget --phone "+1 555 010 9999" --recompute': _forgotten("u_000200"),
    "medallion up": _up,
    "medallion produce --count 100000 --bad-ratio 0.01": _produce,
    "medallion down": _down,
}


def test_the_readme_lines_run_as_written_on_a_small_lake(tmp_path: Path) -> None:
    build_lake(tmp_path)
    port = _free_port()  # nothing answers there: no broker, and none is started
    env = {"MEDALLION__KAFKA__EMBEDDED": "false", "MEDALLION__KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{port}"}
    ran = run_scenario("lake", tmp_path, env | {"MEDALLION__KAFKA__CONNECT_TIMEOUT_S": "1"}, port)
    assert "medallion retention" in ran and "medallion status" in ran


@pytest.mark.integration
def test_the_readme_broker_lines_run_as_written(tmp_path: Path) -> None:
    port = _free_port()
    env = {"MEDALLION__KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{port}"}
    try:
        ran = run_scenario("broker", tmp_path, env, port)
    finally:
        subprocess.run(
            [str(tmp_path / "bin" / "medallion"), "down"],
            env={k: v for k, v in os.environ.items() if not k.startswith("MEDALLION")}
            | {
                "MEDALLION_CONFIG_DIR": str(CONFIG_DIR),
                "MEDALLION__LAKE__ROOT": str(tmp_path / "lake"),
                "MEDALLION__KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
                "PYTHONPATH": str(REPO),
            },
            capture_output=True,
            timeout=60,
            check=False,
        )
    assert ran[0] == "medallion up" and ran[-1] == "medallion down"


def test_the_parser_reads_lines_as_bash_does(tmp_path: Path) -> None:
    doc = tmp_path / "DOC.md"
    doc.write_text(
        "text `medallion inline` is not a block\n"
        "```bash\n"
        "# a comment line\n"
        "export A=1 B='x # y'   # comment\n"
        "medallion a \\\n"
        "  --flag 1   # trailing\n"
        "cat <<EOF > f.txt\n"
        "# kept: inside the heredoc\n"
        "EOF\n"
        "X='open\n"
        "closed' run\n"
        "```\n"
        "```console\n"
        "$ medallion status\n"
        "output line\n"
        "```\n"
        "  ```sh\n"
        "  medallion indented\n"
        "  ```\n"
        "```python\n"
        "not_a_command()\n"
        "```\n"
        "```cron\n"
        "*/5 * * * *  medallion status\n"
        "```\n"
    )
    got = [(line.lineno, line.text) for line in commands(doc, tmp_path)]
    assert got == [
        (4, "export A=1 B='x # y'"),
        (5, "medallion a --flag 1"),
        (7, "cat <<EOF > f.txt\n# kept: inside the heredoc\nEOF"),
        (10, "X='open\nclosed' run"),
        (14, "medallion status"),
        (18, "medallion indented"),
        (24, "medallion status"),
    ]
    assert invocations("cd /x && medallion --env prod a --b >> l.log 2>&1 || medallion c | tee") == [
        ["--env", "prod", "a", "--b"],
        ["c"],
    ]
