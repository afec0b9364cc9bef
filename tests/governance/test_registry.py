"""The schema registry without Spark: versions, what counts as breaking, the code version."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from medallion.features import Feature
from medallion.features.statistical import STATISTICAL_FEATURES
from medallion.governance import registry

FAM = STATISTICAL_FEATURES


def _with(features: tuple[Feature, ...]) -> Any:
    return dataclasses.replace(FAM, features=features)


def _record(cfg: Any, fam: Any, **kw: Any) -> list[registry.Pending]:
    planned = registry.plan(cfg, [registry.declared(fam)], **kw)
    for p in planned:
        registry.record(cfg, p)
    return planned


def test_versions_follow_additions_and_breaking_changes_fail_unless_allowed(make_config: Any) -> None:
    cfg = make_config()
    assert registry.latest(cfg, FAM.name) is None
    _record(cfg, FAM, run_id="r1")
    first = registry.latest(cfg, FAM.name)
    assert first is not None and first.version == 1 and not first.breaking
    assert [f.name for f in first.features] == list(FAM.feature_names)
    assert first.features[0].spark_type == "double" and first.run_id == "r1"

    (same,) = _record(cfg, FAM)  # unchanged: nothing new
    assert same.schema is None and [v.version for v in registry.history(cfg, FAM.name)] == [1]

    added = _with((*FAM.features, Feature("order_value_p99_30d", "float64", "p99.", when_empty="null")))
    _record(cfg, added)
    second = registry.latest(cfg, FAM.name)
    assert second is not None and second.version == 2 and not second.breaking
    assert second.change["added"] == ["order_value_p99_30d"]

    removed = _with(FAM.features[1:])  # drops order_value_mean_30d (and the p99 of v2)
    with pytest.raises(
        registry.SchemaBreak, match=r"removed order_value_mean_30d, order_value_p99_30d"
    ) as err:
        registry.plan(cfg, [registry.declared(removed)])
    assert "--allow-breaking" in str(err.value)
    renamed = _with((dataclasses.replace(FAM.features[0], name="order_value_avg_30d"), *FAM.features[1:]))
    with pytest.raises(registry.SchemaBreak, match="added order_value_avg_30d; removed order_value_mean_30d"):
        registry.plan(cfg, [registry.declared(renamed)])
    retyped = _with(
        (
            *(
                dataclasses.replace(f, dtype="string") if f.name == "order_value_std_30d" else f
                for f in added.features
            ),
        )
    )
    with pytest.raises(
        registry.SchemaBreak, match=r"retyped order_value_std_30d: float64 \(double\) → string"
    ):
        registry.plan(cfg, [registry.declared(retyped)])
    assert [v.version for v in registry.history(cfg, FAM.name)] == [1, 2]  # a failed plan records nothing

    _record(cfg, retyped, allow_breaking=True)
    third = registry.latest(cfg, FAM.name)
    assert third is not None and third.version == 3 and third.breaking
    assert third.by_name["order_value_std_30d"].dtype == "string"
    assert registry.registered(cfg) == [FAM.name]


def test_a_description_change_is_a_version_but_not_breaking(make_config: Any) -> None:
    cfg = make_config()
    _record(cfg, FAM)
    described = _with((dataclasses.replace(FAM.features[0], description="Mean."), *FAM.features[1:]))
    (pending,) = _record(cfg, described)
    assert pending.change.described == ("order_value_mean_30d",) and not pending.change.breaking
    latest = registry.latest(cfg, FAM.name)
    assert latest is not None and latest.version == 2


def test_versions_sort_by_number_not_text(make_config: Any) -> None:
    cfg = make_config()
    fam = FAM
    for i in range(11):  # v1 .. v11: "v10" sorts before "v2" as text
        fam = _with((*fam.features, Feature(f"extra_{i}", "float64", "x", when_empty="null")))
        _record(cfg, fam)
    latest = registry.latest(cfg, FAM.name)
    assert latest is not None and latest.version == 11 and "extra_10" in latest.by_name


def test_code_version_names_the_package_and_the_revision_when_in_git() -> None:
    from importlib.metadata import version

    text = registry.code_version()
    assert text.startswith(version("medallion"))
    assert "+g" in text  # the tests run from the checkout
