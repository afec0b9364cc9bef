"""A user's own contract (``contract.path``): checked when the config loads, enforced by Bronze's decoder
in Spark's Python workers (it travels pickled, as text), with the Bronze row kept to the catalogue's."""

from __future__ import annotations

import copy
import datetime as dt
import json
import pickle
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from medallion.bronze.records import ARROW_SCHEMA, BronzeDecoder, rules_for
from medallion.core import catalog
from medallion.core.config import Config
from medallion.core.contract import EVENT_SCHEMA, ContractError, load_user_contract
from medallion.core.errors import ConfigError
from tests.fixtures import records as kafka_records

KEY = b"user-contract-test-key-0123456789"
KAFKA_US = 1_764_072_000_000_000  # 2025-11-25T12:00:00Z
EVENT: dict[str, Any] = {
    "event_id": "01JDQ2ZK3M8X0000000000000A",
    "event_type": "purchase",
    "event_time": "2025-11-25T11:59:00.000Z",
    "user_id": "5f0c6d3e-8a4b-4c1e-9f2a-0b1c2d3e4f50",
    "session_id": "web-42",
    "item_id": "SKU-000123",
    "price": 12.5,
    "quantity": 1,
    "currency": "EUR",
    "tenant": "acme",
}


def their_contract() -> dict[str, Any]:
    """A client's contract: UUID user ids (format), no geo, user or search members, a member of its own."""
    schema = copy.deepcopy(EVENT_SCHEMA)
    props = schema["properties"]
    for name in ("geo", "user", "search_query", "schema_version"):
        del props[name]
    props["user_id"] = {"type": "string", "format": "uuid"}
    props["tenant"] = {"type": "string", "enum": ["acme", "globex"]}
    schema["required"] = ["event_id", "event_type", "event_time", "user_id", "session_id", "tenant"]
    schema["allOf"] = schema["allOf"][:2]  # the search rule names search_query, which is gone
    schema["x-medallion"] = {**schema["x-medallion"], "max_event_bytes": 4096}
    return schema


def write(tmp_path: Path, schema: Any, name: str = "contract.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(schema))
    return str(path)


def decode(decoder: BronzeDecoder, *events: dict[str, Any]) -> list[dict[str, Any]]:
    values: list[bytes | None] = [json.dumps(e).encode() for e in events]
    batch = kafka_records.kafka_batch(values, timestamp_us=KAFKA_US)
    out = decoder(batch)
    assert out.schema == ARROW_SCHEMA  # the catalogue's Bronze row, whatever the contract
    return out.to_pylist()


def test_a_configured_contract_is_enforced_by_the_pickled_decoder(
    tmp_path: Path, make_config: Callable[..., Config]
) -> None:
    cfg = make_config(contract__path=write(tmp_path, their_contract()))
    rules = rules_for(cfg)
    assert rules.max_event_bytes == 4096 and rules.contract is not None
    # What a Spark worker gets: the decoder pickled, the contract inside it as text, compiled there.
    decoder = pickle.loads(pickle.dumps(BronzeDecoder(KEY, rules)))
    good, bad_user, no_tenant = decode(
        decoder,
        EVENT,
        {**EVENT, "user_id": "u_000123"},
        {k: v for k, v in EVENT.items() if k != "tenant"},
    )
    assert good["error_class"] is None, good["failed_rules"]
    assert (good["user_id"], good["item_id"], good["event_id"]) == (
        EVENT["user_id"],
        EVENT["item_id"],
        EVENT["event_id"],
    )
    assert good["geo"] == {"country": None, "city": None, "lat": None, "lon": None}  # not in their contract
    assert good["schema_version"] is None and "tenant" not in good  # validated, not a Bronze column
    assert bad_user["failed_rules"] == ["format:user_id"]
    assert no_tenant["failed_rules"] == ["required:tenant"]
    # The packaged contract would have refused their ids' owner for lacking schema_version.
    assert decode(BronzeDecoder(KEY), EVENT)[0]["failed_rules"] == ["required:schema_version"]
    assert [f.name for f in catalog.BRONZE.columns][:14] == [f.name for f in ARROW_SCHEMA][2:16]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda s: s["properties"].pop("price"), "declares no price"),
        (lambda s: s["required"].remove("session_id"), "does not require session_id"),
        (lambda s: s["properties"]["user_id"].update(uniqueItems=True), "['uniqueItems'] at user_id"),
        (lambda s: s["properties"]["price"].update(type="string"), "declares price as 'string'"),
        (lambda s: s["properties"]["event_time"].update(pattern=".+"), "changes event_time's pattern"),
    ],
)
def test_a_contract_bronze_cannot_enforce_fails_at_config_load_naming_why(
    tmp_path: Path, make_config: Callable[..., Config], change: Callable[[dict[str, Any]], Any], named: str
) -> None:
    schema = their_contract()
    change(schema)
    path = write(tmp_path, schema)
    with pytest.raises(ContractError, match=named.replace("[", r"\[").replace("]", r"\]")):
        load_user_contract(path)
    with pytest.raises(ConfigError, match="contract.path") as info:
        make_config(contract__path=path)
    assert named.lower() in str(info.value).lower()  # the config error lower-cases pydantic messages


def test_an_unreadable_contract_is_a_config_error(tmp_path: Path, make_config: Callable[..., Config]) -> None:
    with pytest.raises(ConfigError, match="cannot read the contract file"):
        make_config(contract__path=str(tmp_path / "missing.json"))
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ConfigError, match="(?i)is not JSON"):
        make_config(contract__path=str(tmp_path / "broken.json"))


@pytest.mark.integration
def test_a_real_ingest_enforces_the_configured_contract(
    spark: Any, kafka_broker: Any, kafka_topic: str, make_config: Callable[..., Config], tmp_path: Path
) -> None:
    """The contract reaches Spark's Python workers: the source's reader decodes with it, not the packaged one."""
    from medallion.bronze import job
    from medallion.core.ledger import Ledger
    from tests.e2e.checks import parquet
    from tests.fixtures.broker import produce

    cfg = make_config(
        **{
            "kafka.bootstrap_servers": kafka_broker.bootstrap,
            "kafka.topic": kafka_topic,
            "contract.path": write(tmp_path, their_contract()),
        }
    )
    now = dt.datetime.now(dt.UTC)
    at = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    events = [
        {**EVENT, "event_time": at, "event_id": f"evt-{n}", "user_id": str(uuid.UUID(int=n + 1))}
        for n in range(3)
    ]
    events.append({**EVENT, "event_time": at, "event_id": "evt-bad", "user_id": "u_000123"})
    produce(kafka_broker.bootstrap, kafka_topic, [(0, None, json.dumps(e).encode()) for e in events])

    result = job.run(spark, cfg, pii_key=KEY, run_id="uc", ledger=Ledger(cfg.lake.root), once=True)

    assert (result.total("input"), result.total("bronze"), result.total("dlq")) == (4, 3, 1)
    bronze = parquet(catalog.BRONZE.path(cfg)).to_pandas()
    assert sorted(bronze["user_id"]) == sorted(e["user_id"] for e in events[:3])
    dlq = parquet(catalog.BRONZE_DLQ.path(cfg)).to_pandas()
    assert list(dlq["failed_rules"].map(list)) == [["format:user_id"]]
