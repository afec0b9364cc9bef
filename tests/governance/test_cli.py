"""`medallion features schema` and `status --fail-on-alert` on a lake holding registry versions and drift."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from medallion.features import Feature
from medallion.features.statistical import STATISTICAL_FEATURES
from medallion.governance import drift, registry
from tests.cli.test_cli import medallion

FAM = STATISTICAL_FEATURES


def _env(lake: Path) -> dict[str, str]:
    return {
        "MEDALLION__LAKE__ROOT": str(lake),
        "MEDALLION__KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "COLUMNS": "250",
    }


def test_features_schema_shows_the_current_version_and_its_history(make_config: Any, lake: Path) -> None:
    cfg = make_config()
    for fam in (
        FAM,
        dataclasses.replace(FAM, features=(*FAM.features, Feature("extra_30d", "float64", "x"))),
    ):
        for p in registry.plan(cfg, [registry.declared(fam)]):
            registry.record(cfg, p)
    shown = medallion("features", "schema", FAM.name, env=_env(lake))
    assert shown.returncode == 0, shown.stderr
    assert "extra_30d" in shown.stdout and "added extra_30d" in shown.stdout
    history = medallion("features", "schema", FAM.name, "--history", "--json", env=_env(lake))
    versions = json.loads(history.stdout)[FAM.name]
    assert [v["version"] for v in versions] == [1, 2] and versions[1]["change"]["added"] == ["extra_30d"]
    everything = medallion("features", "schema", env=_env(lake))
    assert "not registered yet" in everything.stdout and "user_features" in everything.stdout
    unknown = medallion("features", "schema", "nope", env=_env(lake))
    assert unknown.returncode == 2 and "unknown feature family 'nope'" in unknown.stderr


def test_status_fail_on_alert_exits_1_on_feature_drift(make_config: Any, lake: Path) -> None:
    cfg = make_config()
    table = f"gold.{FAM.name}"
    feature = drift.FeatureDrift("order_value_mean_30d", "numeric", 0.8, 0.4, 500, 500, 10, 0.2, True)
    drift.write(cfg, drift.TableDrift(table, "2026-11-20", {"kind": "previous_days", "start": "a", "end": "b"},
                                      features=[feature]))  # fmt: skip
    out = medallion("status", "--json", env=_env(lake))
    report = json.loads(out.stdout)
    assert [d["feature"] for d in report["drift"]] == ["order_value_mean_30d"]
    assert any(a["name"] == "feature_drift" for a in report["alerts"])
    assert medallion("status", "--fail-on-alert", env=_env(lake)).returncode == 1
    # raised to 1.0 for that feature, the same drift is no alert
    quiet = medallion(
        "status",
        "--json",
        env=_env(lake) | {"MEDALLION__DRIFT__FEATURE_THRESHOLDS": "{order_value_mean_30d: 1.0}"},
    )
    assert not any(a["name"] == "feature_drift" for a in json.loads(quiet.stdout)["alerts"])
