"""`medallion report`: one self-contained HTML page about the pipeline's health, from the lake alone.

Charts: events per day per layer, DLQ records by reason per day, the data-quality score per run and each
rule's pass rate in the latest run, freshness per table, Kafka lag over recent micro-batches, feature
drift per feature date (the stored drift history), and the distributions of a few Gold features. Data
comes from where `status` gets it (Parquet footers and partition names, the ledger, the stored rule and
drift results, one Gold partition read with pyarrow): no Spark.

Self-contained: plotly.js (from the ``plotly`` package) is inlined once, so the file opens anywhere,
offline; each chart is a ``<div class="chart">`` drawn by plotly into SVG.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pyarrow.types as pat
from plotly.offline import get_plotlyjs

from medallion.core import catalog, lakefs, rejections, stages
from medallion.core.ledger import Ledger
from medallion.governance.drift import history_traces
from medallion.operations.status import DLQ_STAGES, collect, data_files
from medallion.quality.results import QualityReport, results_dir

if TYPE_CHECKING:
    from medallion.core.config import Config
    from medallion.operations.status import Status

RECENT_BATCHES = 200
QUALITY_RUNS = 50
FEATURES_SHOWN = 4


@dataclass
class Chart:
    id: str
    title: str
    traces: list[dict[str, Any]]
    layout: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def build(cfg: Config, status: Status | None = None) -> list[Chart]:
    """Every chart of the report, each with at least one trace (an empty one says "no data yet")."""

    status = status or collect(cfg)
    ledger = Ledger(cfg.lake.root)
    return [
        _events_per_day(cfg),
        _dlq_by_reason(ledger),
        _dq_scores(cfg),
        _rule_pass_rates(cfg),
        _freshness(status),
        _lag(ledger),
        _feature_drift(cfg),
        *_feature_distributions(cfg),
    ]


def _empty(chart: Chart, why: str) -> Chart:
    """A chart with no data still renders (an empty axis and a note), so the page's layout never shifts."""
    if not chart.traces:
        chart.traces = [{"type": "bar", "x": [], "y": [], "name": "no data"}]
        chart.note = chart.note or why
    return chart


def _rows_per_partition(path: str, column: str) -> dict[str, int]:
    """Rows per value of a (first-level) date partition, from Parquet footers."""

    out: dict[str, int] = {}
    filesystem, _ = lakefs.filesystem_and_path(path)
    for value in lakefs.list_partitions(path, column):
        partition = lakefs.join(path, f"{column}={value}")
        total = 0
        for file in data_files(partition):
            with filesystem.open_input_file(lakefs.filesystem_and_path(file)[1]) as f:
                total += pq.ParquetFile(f).metadata.num_rows
        out[value] = total
    return out


def _events_per_day(cfg: Config) -> Chart:
    chart = Chart(
        "events_per_day", "Rows per day and layer", [], {"barmode": "group", "yaxis": {"title": "rows"}}
    )
    for table in (catalog.BRONZE, catalog.SILVER, *catalog.GOLD_TABLES[:1]):
        counts = _rows_per_partition(table.path(cfg), table.date_column or "")
        if counts:
            chart.traces.append(
                {"type": "bar", "name": table.name, "x": list(counts), "y": list(counts.values())}
            )
    return _empty(chart, "no Bronze, Silver or Gold data yet")


def _dlq_by_reason(ledger: Ledger) -> Chart:
    chart = Chart("dlq_by_reason", "DLQ records per day, by stage and reason", [], {"barmode": "stack"})
    per: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for stage in DLQ_STAGES:
        for unit in rejections.counted_once(ledger.records(stage)):  # a rebuilt date counted once
            for reason, n in unit.by_reason.items():
                per[f"{stage}: {reason}"][unit.day] += n
    for name, days in sorted(per.items()):
        chart.traces.append(
            {"type": "bar", "name": name, "x": sorted(days), "y": [days[d] for d in sorted(days)]}
        )
    return _empty(chart, "no record has gone to a DLQ")


def _quality_reports(cfg: Config) -> list[Any]:

    folder = results_dir(cfg, catalog.SILVER.name)
    _, names = lakefs.list_children(folder)
    names = sorted(n for n in names if n.endswith(".json") and not n.startswith(catalog.HIDDEN_PREFIXES))
    return [
        QualityReport.from_dict(json.loads(lakefs.read_text(lakefs.join(folder, n))))
        for n in names[-QUALITY_RUNS:]
    ]


def _feature_drift(cfg: Config) -> Chart:
    """The stored drift history (`medallion.governance.drift.history_traces`), against the PSI threshold."""

    threshold = cfg.drift.psi_threshold
    chart = Chart(
        "feature_drift",
        f"Feature drift per feature date: each Gold table's highest PSI (alert above {threshold:g})",
        history_traces(cfg),
        {
            "yaxis": {"title": "PSI", "rangemode": "tozero"},
            "shapes": [
                {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": threshold, "y1": threshold,
                 "line": {"dash": "dash", "color": "red"}},
            ],
        },
    )  # fmt: skip
    return _empty(chart, "no Gold run has computed drift yet")


def _dq_scores(cfg: Config) -> Chart:
    chart = Chart(
        "dq_score", "Silver data-quality score per run", [], {"yaxis": {"range": [0, 1.02], "title": "score"}}
    )
    reports = _quality_reports(cfg)
    if reports:
        chart.traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "score",
                "x": [r.created_at for r in reports],
                "y": [r.score for r in reports],
                "text": [r.run_id for r in reports],
            }
        )
    return _empty(chart, "no Silver run has stored its rule results yet")


def _rule_pass_rates(cfg: Config) -> Chart:
    chart = Chart(
        "rule_pass_rates", "Pass rate per rule, latest Silver run", [], {"xaxis": {"range": [0, 1.02]}}
    )
    reports = _quality_reports(cfg)
    if reports:
        latest = reports[-1]
        rules = sorted(latest.pass_rates)
        chart.traces.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": latest.run_id,
                "y": rules,
                "x": [latest.pass_rates[r] for r in rules],
            }
        )
        chart.note = f"run {latest.run_id}, {latest.rows:,} rows"
        # Rule names are long: the left margin grows to the longest (Plotly's automargin) and each bar
        # gets a row, so no label is cut at the page's width.
        longest = max((len(r) for r in rules), default=0)
        chart.layout |= {
            "yaxis": {"automargin": True},
            "margin": {"t": 20, "r": 20, "b": 60, "l": min(480, 20 + 7 * longest)},
            "height": max(340, 24 * len(rules) + 100),
        }
    return _empty(chart, "no Silver run has stored its rule results yet")


def _freshness(status: Status) -> Chart:
    chart = Chart("freshness", "Freshness per table (hours since the newest event or feature date)", [])
    tables = [t for t in status.tables if t.freshness_s is not None]
    if tables:
        chart.traces.append(
            {
                "type": "bar",
                "name": "hours",
                "x": [t.table for t in tables],
                "y": [round(t.freshness_s / 3600, 2) for t in tables if t.freshness_s is not None],
            }
        )
    return _empty(chart, "no table has data yet")


def _lag(ledger: Ledger) -> Chart:
    chart = Chart(
        "kafka_lag", "Kafka lag after each recent micro-batch (records)", [], {"yaxis": {"title": "records"}}
    )
    batches = []
    for record in ledger.newest_first(stages.INGEST.name):
        if record.metrics.get("lag") is not None:
            batches.append(record)
        if len(batches) == RECENT_BATCHES:
            break
    batches.reverse()
    if batches:
        chart.traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "lag",
                "x": [r.started_at for r in batches],
                "y": [r.metrics["lag"] for r in batches],
            }
        )
    return _empty(chart, "no ingest batch has reported its lag yet")


def _feature_distributions(cfg: Config) -> list[Chart]:
    """Histograms of the first numeric features of the first Gold table, on its newest feature date."""

    table = catalog.GOLD_TABLES[0]
    chart_id = "gold_feature"
    dates = lakefs.list_partitions(table.path(cfg), catalog.FEATURE_DATE)
    if not dates:
        return [
            _empty(Chart(f"{chart_id}_none", f"{table.name} feature distributions", []), "no Gold data yet")
        ]
    partition = table.partition_path(cfg, **{catalog.FEATURE_DATE: dates[-1]})
    filesystem, inner = lakefs.filesystem_and_path(partition)
    data = ds.dataset(
        inner, filesystem=filesystem, format="parquet", ignore_prefixes=list(catalog.HIDDEN_PREFIXES)
    )
    numeric = [
        f.name
        for f in data.schema
        if (pat.is_integer(f.type) or pat.is_floating(f.type)) and f.name not in table.key
    ][:FEATURES_SHOWN]
    rows = data.to_table(columns=numeric)
    charts = []
    for name in numeric:
        values = [v for v in rows.column(name).to_pylist() if v is not None]
        charts.append(
            Chart(
                f"{chart_id}_{name}",
                f"{table.short_name}.{name} on {dates[-1]}",
                [{"type": "histogram", "name": name, "x": values, "nbinsx": 30}],
                {"xaxis": {"title": name}, "yaxis": {"title": "entities"}},
                note=f"{len(values):,} entities",
            )
        )
    return charts


def render(charts: list[Chart], title: str, subtitle: str) -> str:
    """The page: plotly.js inlined once, then one div and one ``Plotly.newPlot`` per chart."""

    sections = []
    scripts = []
    for chart in charts:
        note = f'<p class="note">{html.escape(chart.note)}</p>' if chart.note else ""
        sections.append(
            f'<section><h2>{html.escape(chart.title)}</h2>{note}<div class="chart" id="{chart.id}"></div></section>'
        )
        layout = {"margin": {"t": 20, "r": 20, "b": 60, "l": 60}, "height": 340, **chart.layout}
        scripts.append(
            f"Plotly.newPlot({json.dumps(chart.id)}, {json.dumps(chart.traces, default=str)}, "
            f"{json.dumps(layout)}, {{displaylogo: false, responsive: true}});"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }}
section {{ margin-bottom: 2rem; }} h2 {{ font-size: 1.05rem; margin-bottom: .2rem; }}
.note {{ color: #666; font-size: .85rem; margin: 0; }}
</style>
<script>{get_plotlyjs()}</script></head>
<body><h1>{html.escape(title)}</h1><p class="note">{html.escape(subtitle)}</p>
{"".join(sections)}
<script>{"".join(scripts)}</script>
</body></html>
"""


def write_report(cfg: Config, out: Path) -> list[Chart]:
    charts = build(cfg)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = render(charts, "medallion pipeline report", f"lake {cfg.lake.root}, generated {generated}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return charts
