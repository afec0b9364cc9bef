"""The guards inside the Gold job, on generated Silver: a changed declaration is followed by the registry,
the Gold files and the Feast view, or the run fails and writes nothing; a failed quality check writes
nothing; results land where the rule engine's do."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from medallion.core import catalog, lakefs, stages
from medallion.core.ledger import Ledger
from medallion.features import Feature
from medallion.features.user import USER_FEATURES
from medallion.gold import job
from medallion.gold.families import BUILDERS
from medallion.gold.transforms import as_declared
from medallion.governance import drift, registry
from medallion.governance.gold import FeatureQualityFailed
from medallion.quality import results
from tests.gold.silver_data import FIRST_DAY, generate, write_silver
from tests.stage_runs import run_job

FAM = USER_FEATURES
START, END = FIRST_DAY + dt.timedelta(days=30), FIRST_DAY + dt.timedelta(days=31)
TABLE = catalog.gold_table(FAM.name)


@pytest.fixture
def cfg(make_config: Any) -> Any:
    cfg = make_config(**{"drift.min_rows": 1, "drift.reference_days": 1})
    write_silver(catalog.SILVER.path(cfg), generate())
    return cfg


def _gold_types(cfg: Any) -> dict[str, str]:
    files = [f for f in lakefs.list_files(TABLE.path(cfg), ".parquet") if "/." not in f and "/_" not in f]
    schema = pq.read_schema(files[0])
    return {name: str(schema.field(name).type) for name in schema.names}


def _files(cfg: Any) -> dict[str, float]:
    return {f: Path(f).stat().st_mtime_ns for f in lakefs.list_files(TABLE.path(cfg), ".parquet")}


def _feast_types(fam: Any, cfg: Any) -> dict[str, str]:
    from medallion.serving.definitions import definitions

    objects = definitions({fam.name: TABLE.path(cfg)}, dt.timedelta(days=2), [fam])
    view = next(o for o in objects if getattr(o, "name", None) == fam.name and hasattr(o, "schema"))
    return {f.name: str(f.dtype) for f in view.schema}


def _last(lake: Path, **kw: Any) -> Any:
    record = Ledger(str(lake)).last("gold", **kw)
    assert record is not None
    return record


def _declare(monkeypatch: pytest.MonkeyPatch, fam: Any) -> None:
    """Make ``fam`` the declaration of its table for the catalogue (as an edit of medallion/features would)."""
    tables = tuple(catalog._gold_dataset(fam) if t.name == TABLE.name else t for t in catalog.GOLD_TABLES)
    monkeypatch.setattr(catalog, "GOLD_TABLES", tables)


def test_a_changed_declaration_is_followed_by_registry_files_and_feast_or_the_run_fails(
    spark: Any, cfg: Any, lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger(str(lake))
    run_job(stages.GOLD, job.run, spark, cfg, START, END, run_id="g1", ledger=ledger, families=[FAM])
    v1 = registry.latest(cfg, FAM.name)
    assert v1 is not None and v1.version == 1 and v1.code_version
    assert _gold_types(cfg)["events_1d"] == "int64" and _feast_types(FAM, cfg)["events_1d"] == "Int64"

    # An added feature: a new version, a new column, a new Feast field.
    added = dataclasses.replace(
        FAM, features=(*FAM.features, Feature("revenue_share_1d", "float64", "revenue_1d / revenue_30d."))
    )
    original_tables, original_build = catalog.GOLD_TABLES, BUILDERS[FAM.name]

    def build_added(inputs: Any) -> Any:
        patched = catalog.GOLD_TABLES
        catalog.GOLD_TABLES = original_tables  # the builder as it was, then the new feature
        try:
            df = original_build(inputs)
        finally:
            catalog.GOLD_TABLES = patched
        share = F.when(F.col("revenue_30d") > 0, F.col("revenue_1d") / F.col("revenue_30d")).otherwise(0.0)
        return df.withColumn("revenue_share_1d", share).transform(as_declared(added))

    _declare(monkeypatch, added)
    monkeypatch.setitem(BUILDERS, FAM.name, build_added)
    run_job(stages.GOLD, job.run, spark, cfg, START, END, run_id="g2", ledger=ledger, families=[added])
    v2 = registry.latest(cfg, FAM.name)
    assert v2 is not None and (v2.version, v2.breaking, v2.change["added"]) == (
        2,
        False,
        ["revenue_share_1d"],
    )
    assert _gold_types(cfg)["revenue_share_1d"] == "double"
    assert _feast_types(added, cfg)["revenue_share_1d"] == "Float64"
    assert _last(lake).metrics["schema_versions"][FAM.name]["version"] == 2

    # A retyped feature: the run fails before anything is written...
    retyped = dataclasses.replace(
        added,
        features=tuple(
            dataclasses.replace(f, dtype="float64") if f.name == "events_1d" else f for f in added.features
        ),
    )
    _declare(monkeypatch, retyped)
    before = _files(cfg)
    with pytest.raises(registry.SchemaBreak, match=r"retyped events_1d: int64 \(long\) → float64 \(double\)"):
        run_job(stages.GOLD, job.run, spark, cfg, START, END, run_id="g3", ledger=ledger, families=[retyped])
    assert _files(cfg) == before and registry.latest(cfg, FAM.name).version == 2  # type: ignore[union-attr]
    assert _last(lake, outcome=None).outcome != "succeeded"

    # ...unless allowed: a breaking version, and the files and Feast follow.
    run_job(
        stages.GOLD,
        job.run,
        spark,
        cfg,
        START,
        END,
        run_id="g4",
        ledger=ledger,
        families=[retyped],
        allow_breaking=True,
    )
    v3 = registry.latest(cfg, FAM.name)
    assert v3 is not None and v3.version == 3 and v3.breaking
    assert v3.by_name["events_1d"].spark_type == "double"
    assert _gold_types(cfg)["events_1d"] == "double" and _feast_types(retyped, cfg)["events_1d"] == "Float64"

    # quality and drift of every run are stored where status and validate read them
    report = results.latest(cfg, TABLE.name)
    assert report is not None and report.run_id == "g4" and report.stage == "gold"
    assert {"unique_key", "row_count", "freshness", "null_rate:events_1d", "range:events_7d"} <= {
        r.name for r in report.results
    }
    assert next(r for r in report.results if r.name == "unique_key").passed
    # (stored for every date the run wrote; judged or "not judged" with its reason, see test_drift_spark)
    stored = drift.history(cfg, TABLE.name)[-1]
    assert stored.feature_date == END.isoformat() and stored.run_id == "g4"
    assert stored.judged or stored.note.startswith("not judged")


def test_a_failed_quality_check_writes_nothing_and_says_which(
    spark: Any, cfg: Any, make_config: Any, lake: Path, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / f"{TABLE.name}.yaml").write_text(  # the same format as Silver's; overrides the declared range
        "rules:\n  - {name: 'range:events_30d', type: between, column: events_30d, max: 1, action: fail}\n"
    )
    strict = make_config(**{"quality.rules_dir": str(rules), "drift.min_rows": 1})
    with pytest.raises(FeatureQualityFailed, match=r"range:events_30d \(\d+ of \d+ rows\)"):
        run_job(
            stages.GOLD,
            job.run,
            spark,
            strict,
            START,
            END,
            run_id="q1",
            ledger=Ledger(str(lake)),
            families=[FAM],
        )
    assert not lakefs.exists(TABLE.path(strict))
    report = results.latest(strict, TABLE.name)
    assert report is not None and report.rules_file == str(rules / f"{TABLE.name}.yaml")
    failed = {r.name: r for r in report.results if not r.passed}
    assert failed["range:events_30d"].status == "FAIL" and failed["range:events_30d"].failed > 0
    assert report.score < 1.0
    quality = _last(lake, outcome=None).metrics["quality"]
    assert quality["failed"][f"{TABLE.name}:range:events_30d"] == failed["range:events_30d"].failed


def test_drift_reads_the_references_stored_profiles_and_rebuilds_a_missing_one(cfg: Any, spark: Any) -> None:
    """A run profiles the dates it writes; a later run's reference comes from those profiles, not from
    the reference's rows (a planted profile changes the result); a profile that is missing is computed
    from the table once and stored; a run with drift off forgets the profiles of the dates it rewrote."""
    lake = Path(cfg.lake.root)
    run_job(
        stages.GOLD, job.run, spark, cfg, START, START, run_id="g1", ledger=Ledger(str(lake)), families=[FAM]
    )
    first = drift.read_profile(cfg, TABLE.name, START.isoformat())
    assert first is not None and first.numeric
    rows = spark.read.parquet(TABLE.path(cfg)).where(F.col(catalog.FEATURE_DATE) == START)
    name = next(f.name for f in FAM.features if f.dtype == "int64")
    values = sorted(r[0] for r in rows.select(name).collect() if r[0] is not None)
    assert first.numeric[name].total == len(values) and first.numeric[name].values[-1] == max(values)

    def _end_drift(run_id: str) -> drift.FeatureDrift:
        run_job(
            stages.GOLD,
            job.run,
            spark,
            cfg,
            END,
            END,
            run_id=run_id,
            ledger=Ledger(str(lake)),
            families=[FAM],
        )
        result = drift.read(cfg, TABLE.name, END.isoformat())
        assert result.judged and result.run_id == run_id
        return next(f for f in result.features if f.feature == name)

    planted = dataclasses.replace(first, numeric={name: drift.Steps([1e9], [len(values)])})
    drift.write_profile(cfg, planted)
    from_planted = _end_drift("g2")
    lakefs.delete_file(lakefs.join(drift.profile_dir(cfg, TABLE.name), f"{START.isoformat()}.json"))
    rebuilt = _end_drift("g3")
    assert drift.read_profile(cfg, TABLE.name, START.isoformat()) == dataclasses.replace(first, run_id="g3")
    assert from_planted.psi != rebuilt.psi  # the reference came from the stored profile, not the rows
    off = cfg.model_copy(update={"drift": cfg.drift.model_copy(update={"enabled": False})})
    run_job(
        stages.GOLD, job.run, spark, off, START, START, run_id="g4", ledger=Ledger(str(lake)), families=[FAM]
    )
    assert drift.read_profile(cfg, TABLE.name, START.isoformat()) is None
