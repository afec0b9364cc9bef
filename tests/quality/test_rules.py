"""Rule files: what a valid one declares, and every kind of mistake as a ConfigError naming file, rule, column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from medallion.core import catalog, contract
from medallion.core.errors import ConfigError
from medallion.features import family
from medallion.features.temporal import TEMPORAL_FEATURES
from medallion.quality.rules import (
    ROW_TYPES,
    TABLE_TYPES,
    default_rules_file,
    load_rules,
    rules_file,
    rules_for,
)

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, rules: list[dict[str, Any]], table: str = catalog.SILVER.name) -> Path:
    path = tmp_path / f"{table}.yaml"
    path.write_text(yaml.safe_dump({"table": table, "rules": rules}))
    return path


GOLD_ONLY = {"freshness", "finite", "not_constant", "coverage"}  # the checks of Gold's derived rules


def test_the_shipped_silver_rules_load_and_cover_every_rule_type_but_golds() -> None:
    rules = rules_for(catalog.SILVER)
    assert rules.source == str(default_rules_file(catalog.SILVER))
    types = {r.type for r in rules.rules}
    assert types == set(ROW_TYPES + TABLE_TYPES) - GOLD_ONLY
    by_name = {r.name: r for r in rules.rules}
    assert by_name["event_type_known"].values == contract.EVENT_TYPES
    assert by_name["currency_known"].values == contract.CURRENCIES
    assert "'purchase'" in (by_name["price_not_negative"].where or "")  # ${commerce_event_types} expanded
    assert (
        by_name["item_in_catalog"].lookup == catalog.ITEMS.name
        and by_name["item_in_catalog"].key == "item_id"
    )
    assert all(r.description and r.tags for r in rules.rules)


def test_gold_rules_come_from_the_declarations_and_a_users_file_overrides_them_by_name(
    tmp_path: Path,
) -> None:
    seen: set[str] = set()
    for table in catalog.GOLD_TABLES:
        fam = family(table.name.removeprefix("gold."))
        rules = {r.name: r for r in rules_for(table).rules}
        seen |= {r.type for r in rules.values()}
        assert {"unique_key", "row_count", "freshness"} <= set(rules)
        for f in fam.features:
            assert rules[f"null_rate:{f.name}"].max_failure_rate == f.null_limit
            if f.numeric and f.bounds != (None, None):
                assert (rules[f"range:{f.name}"].min, rules[f"range:{f.name}"].max) == f.bounds
        assert (rules["row_count"].min, rules["row_count"].max) == fam.coverage
    assert seen >= GOLD_ONLY
    shares = rules_for(catalog.gold_table(TEMPORAL_FEATURES.name)).rules
    by_name = {r.name: r for r in shares}
    assert (by_name["range:night_share_30d"].min, by_name["range:night_share_30d"].max) == (0, 1)
    assert by_name["null_rate:events_per_active_day_7d"].max_failure_rate == 1.0  # declared null when empty
    assert by_name["null_rate:morning_share_30d"].max_failure_rate == 0.0
    assert not any(r.name.startswith("range:preferred") for r in shares)  # text: no range

    table = catalog.gold_table(TEMPORAL_FEATURES.name)
    own = write(
        tmp_path,
        [
            {"name": "constant:hour_entropy_30d", "type": "not_constant", "column": "hour_entropy_30d",
             "action": "fail"},
            {"name": "entropy_small", "type": "between", "column": "hour_entropy_30d", "max": 1, "action": "warn"},
        ],
        table=table.name,
    )  # fmt: skip
    mine = rules_for(table, str(tmp_path))
    assert mine.source == str(own) and len(mine.rules) == len(shares) + 1
    assert {r.name: r for r in mine.rules}["constant:hour_entropy_30d"].action == "fail"
    own.write_text(
        yaml.safe_dump(
            {"rules": [{"name": "x", "type": "between", "column": "no_such", "max": 1, "action": "warn"}]}
        )
    )
    with pytest.raises(ConfigError, match=rf"{own}.*'no_such' is not a column of the table"):
        rules_for(table, str(tmp_path))


def test_config_rules_folder_holds_the_shipped_file() -> None:
    shipped = default_rules_file(catalog.SILVER)
    assert (REPO / "config" / "rules" / shipped.name).read_text() == shipped.read_text()


def test_a_users_rules_dir_wins_for_its_tables_only(tmp_path: Path) -> None:
    own = write(tmp_path, [{"name": "x", "type": "not_null", "column": "event_id", "action": "warn"}])
    assert rules_file(catalog.SILVER, str(tmp_path)) == own
    assert rules_file(catalog.SILVER, str(tmp_path / "nope")) == default_rules_file(catalog.SILVER)
    assert rules_for(catalog.SILVER, str(tmp_path)).rules[0].name == "x"


BAD = {
    "unknown type": (
        {"name": "r1", "type": "not_empty", "column": "event_id", "action": "warn"},
        ["r1", "unknown rule type 'not_empty'"],
    ),
    "missing column": (
        {"name": "r2", "type": "not_null", "columns": ["event_id", "evnt_time"], "action": "drop"},
        ["r2", "column 'evnt_time' is not a column of the table"],
    ),
    "table rule that drops": (
        {"name": "r3", "type": "unique", "columns": ["event_id"], "action": "drop"},
        ["r3", "a table-level rule can only warn or fail"],
    ),
    "unknown action": (
        {"name": "r4", "type": "not_null", "column": "event_id", "action": "explode"},
        ["r4", "action 'explode'"],
    ),
    "unknown key": (
        {"name": "r5", "type": "between", "column": "price", "minimum": 0, "action": "warn"},
        ["r5", "unknown key minimum"],
    ),
    "no pattern": (
        {"name": "r6", "type": "regex", "column": "page", "action": "warn"},
        ["r6", "give `pattern`"],
    ),
    "share above 1": (
        {"name": "r13", "type": "not_null", "column": "page", "max_failure_rate": 2, "action": "warn"},
        ["r13", "`max_failure_rate` is a share"],
    ),
    "unknown lookup": (
        {"name": "r7", "type": "referential", "column": "item_id", "lookup": "lookup.nope", "action": "drop"},
        ["r7", "lookup 'lookup.nope' is not a table of the catalogue"],
    ),
    "lookup column": (
        {
            "name": "r8",
            "type": "referential",
            "column": "item_id",
            "lookup": catalog.ITEMS.name,
            "key": "sku",
            "action": "drop",
        },
        ["r8", "column 'sku' is not a column of lookup.items"],
    ),
    "unknown set": (
        {"name": "r9", "type": "in_set", "column": "currency", "values_from": "coins", "action": "warn"},
        ["r9", "values_from 'coins'"],
    ),
    "unknown macro": (
        {"name": "r10", "type": "not_null", "column": "price", "where": "x IN ${coins}", "action": "warn"},
        ["r10", "${coins}"],
    ),
    "min above max": (
        {"name": "r11", "type": "between", "column": "price", "min": 5, "max": 1, "action": "warn"},
        ["r11", "`min` 5 is above `max` 1"],
    ),
    "bad name": (
        {"name": "Bad Name", "type": "not_null", "column": "x", "action": "warn"},
        ["lower_snake_case"],
    ),
    "bad age": (
        {"name": "r12", "type": "freshness", "column": "event_time", "max_age": "soon", "action": "warn"},
        ["r12", "max_age"],
    ),
}


@pytest.mark.parametrize("rule, expected", BAD.values(), ids=BAD.keys())
def test_a_bad_rule_is_a_config_error_naming_file_rule_and_column(
    tmp_path: Path, rule: dict[str, Any], expected: list[str]
) -> None:
    path = write(tmp_path, [rule])
    with pytest.raises(ConfigError) as err:
        load_rules(catalog.SILVER, path)
    assert err.value.exit_code == 2
    for part in [str(path), *expected]:
        assert part in str(err.value)


def test_file_level_mistakes(tmp_path: Path) -> None:
    other = write(tmp_path, [], table=catalog.BRONZE.name)
    with pytest.raises(ConfigError, match="declares table 'bronze.user_events'"):
        load_rules(catalog.SILVER, other)
    twice = write(tmp_path, [{"name": "a", "type": "not_null", "column": "event_id", "action": "warn"}] * 2)
    with pytest.raises(ConfigError, match="a appear more than once"):
        load_rules(catalog.SILVER, twice)
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [\n")
    with pytest.raises(ConfigError, match="Invalid YAML in rule file .*broken.yaml"):
        load_rules(catalog.SILVER, broken)
    with pytest.raises(ConfigError, match="Cannot read rule file"):
        load_rules(catalog.SILVER, tmp_path / "missing.yaml")
