"""The HTML report: self-contained, every chart drawn in headless Chromium, no console errors."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medallion.core import catalog
from medallion.core.ledger import Ledger, RunRecord
from medallion.governance import drift
from medallion.operations.report import render, write_report
from tests.conftest import REPO

ARTIFACTS = Path(os.environ.get("MEDALLION_TEST_ARTIFACTS", REPO / ".artifacts"))


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed: .ci/run installs Debian's chromium for the report test")
    pytest.skip("chromium is not installed (Debian's chromium package)")


def _browser(html_file: Path, tmp: Path, shot_name: str) -> tuple[str, str]:
    """The DOM after the page's scripts ran, and what the browser logged (console messages included)."""
    args = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=20000",
    ]
    dom = subprocess.run(
        [*args, "--dump-dom", html_file.as_uri()], capture_output=True, text=True, timeout=180
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / shot_name
    subprocess.run(
        [*args, f"--screenshot={shot}", "--window-size=1200,5000", html_file.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert shot.exists() and shot.stat().st_size > 10_000, "no screenshot of the report"
    return dom.stdout, dom.stderr


def _lake(cfg: Any) -> None:
    now = dt.datetime.now(dt.UTC)
    ledger = Ledger(cfg.lake.root)
    for i in range(6):
        r = RunRecord(
            stage="ingest", run_id=f"b{i}", started_at=(now - dt.timedelta(minutes=10 * (6 - i))).isoformat()
        )
        r.count(input=1000, output=990, dlq=10)
        r.outcome = "succeeded"
        r.metrics = {"dlq_by_reason": {"enum": 6, "type": 4}, "lag": 5000 - 800 * i, "rows_per_s": 900.0}
        ledger.write(r, key=f"t-x-b{i:08d}")
    for day in ("2026-11-18", "2026-11-19"):
        folder = Path(catalog.BRONZE.partition_path(cfg, dt=day, hr=3, batch=1))
        folder.mkdir(parents=True)
        times = pa.array([now - dt.timedelta(hours=5)] * 3, pa.timestamp("us", "UTC"))
        pq.write_table(
            pa.table({"event_id": ["a", "b", "c"], "event_time": times}), folder / "part-0.parquet"
        )
    gold = catalog.GOLD_TABLES[0]
    folder = Path(gold.partition_path(cfg, feature_date="2026-11-19"))
    folder.mkdir(parents=True)
    numeric = [c.name for c in gold.columns if c.type in ("long", "double")][:3]
    pq.write_table(
        pa.table(
            {
                gold.key[0]: [f"e{i}" for i in range(50)],
                **{n: [float(i % 7) for i in range(50)] for n in numeric},
            }
        ),
        folder / "part-0.parquet",
    )
    for day, psi, judged in (
        ("2026-11-17", 0.05, True),
        ("2026-11-18", 0.31, True),
        ("2026-11-19", None, False),
    ):
        features = [drift.FeatureDrift("events_1d", "numeric", psi, 0.1, 900, 120, 10, 0.2, (psi or 0) > 0.2)]
        drift.write(
            cfg,
            drift.TableDrift(
                gold.name, day, {"kind": "previous_days", "start": "", "end": ""},
                features=features if judged else [], judged=judged,
                note="" if judged else "not judged: incomplete",
            ),
        )  # fmt: skip


def test_every_chart_renders_in_chromium_without_console_errors(make_config: Any, tmp_path: Path) -> None:
    cfg = make_config(**{"kafka.bootstrap_servers": "127.0.0.1:1", "kafka.embedded": False})
    _lake(cfg)
    out = tmp_path / "report.html"
    charts = write_report(cfg, out)
    page = out.read_text()
    assert "<script src=" not in page and "https://" not in re.sub(
        r"<script>.*?</script>", "", page, flags=re.S
    )
    dom, log = _browser(out, tmp_path, "report.png")
    drawn = re.findall(r'<div class="chart[^"]*" id="([^"]+)"[^>]*>(.*?)</section>', dom, flags=re.S)
    assert {c.id for c in charts} == {cid for cid, _ in drawn}
    for chart_id, body in drawn:
        assert "<svg" in body and 'class="main-svg"' in body, f"chart {chart_id} did not render"
    errors = [
        line for line in log.splitlines() if "CONSOLE" in line and re.search(r"error|uncaught", line, re.I)
    ]
    assert errors == []
    lag = next(c for c in charts if c.id == "kafka_lag")
    assert lag.traces[0]["y"] == [5000 - 800 * i for i in range(6)]
    drifted = next(c for c in charts if c.id == "feature_drift")
    by_name = {t["name"]: t for t in drifted.traces}
    assert by_name[catalog.GOLD_TABLES[0].name]["y"] == [0.05, 0.31]  # the judged dates, from the history
    assert by_name["not judged"]["x"] == ["2026-11-19"]


def test_the_browser_check_catches_a_chart_that_fails_to_draw(tmp_path: Path) -> None:
    from medallion.operations.report import Chart

    broken = render([Chart("bad", "broken", [{"type": "no-such-trace-type", "x": [1]}])], "t", "s")
    page = tmp_path / "broken.html"
    page.write_text(broken.replace("Plotly.newPlot(", "Plotly.newPlotTypo("))
    dom, log = _browser(page, tmp_path, "report-broken.png")
    assert 'class="main-svg"' not in dom
    assert any("CONSOLE" in line and "TypeError" in line for line in log.splitlines())
