"""The user-event contract: the JSON Schema in ``medallion/schemas/user_event.schema.json``, loaded once.

Everything here is read from that file, so the producer, Bronze's validator and the docs cannot drift
apart: the enums, the commerce event types and the limits under ``x-medallion`` are all derived from it,
never written a second time. Production validates with Bronze's validator, compiled from this schema
(`medallion.bronze.validator`); `validate_event` and `validate_payload` here check with the
``jsonschema`` library instead, an independent implementation the tests use as their oracle, so it is
imported only when they are called.

Two rules JSON Schema cannot state are checked in code, with their limits taken from the file: the
payload's size in bytes, and that ``event_time`` lies between 2000-01-01 and a little past "now".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

    from medallion.bronze.records import BronzeRules

SCHEMA_RESOURCE = "user_event.schema.json"


def _load_schema() -> dict[str, Any]:
    text = resources.files("medallion.schemas").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


EVENT_SCHEMA: dict[str, Any] = _load_schema()
_PROPS: dict[str, Any] = EVENT_SCHEMA["properties"]
_RULES: dict[str, Any] = EVENT_SCHEMA["x-medallion"]

SCHEMA_VERSION: int = _PROPS["schema_version"]["const"]
SUPPORTED_VERSIONS: tuple[int, ...] = tuple(_RULES["supported_versions"])
EVENT_TYPES: tuple[str, ...] = tuple(_PROPS["event_type"]["enum"])
COMMERCE_EVENT_TYPES: tuple[str, ...] = tuple(EVENT_SCHEMA["$defs"]["commerce_event_type"]["enum"])
ITEM_EVENT_TYPES: tuple[str, ...] = tuple(EVENT_SCHEMA["$defs"]["item_event_type"]["enum"])
CURRENCIES: tuple[str, ...] = tuple(_PROPS["currency"]["enum"])
REQUIRED_FIELDS: tuple[str, ...] = tuple(EVENT_SCHEMA["required"])
DEVICE_TYPES: tuple[str, ...] = tuple(_PROPS["device"]["properties"]["type"]["enum"])
MAX_EVENT_BYTES: int = _RULES["max_event_bytes"]
MIN_EVENT_TIME: datetime = datetime.fromisoformat(_RULES["min_event_time"])
MAX_FUTURE_SKEW: timedelta = timedelta(seconds=_RULES["max_future_skew_seconds"])

BAD_RECORD_HEADER = "medallion.bad"
"""Kafka header that tags a deliberately malformed record with its class (`medallion.produce.bad`).
Valid events never carry it."""


@cache
def _oracle() -> Draft202012Validator:
    # lazy: jsonschema is only the tests' oracle, never on the product's path
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(EVENT_SCHEMA)
    return Draft202012Validator(EVENT_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)


def format_event_time(value: datetime) -> str:
    """``value`` (aware, any zone) as the contract writes event_time: UTC, milliseconds, ``Z``."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _where(path: Iterable[Any]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _reason(err: ValidationError) -> str:
    if err.validator == "not" and err.validator_value == {}:  # `{"not": {}}`: a field this type must not have
        return f"{_where(err.absolute_path)}: not allowed for this event_type"
    return f"{_where(err.absolute_path)}: {err.message}"


def _event_time_reasons(value: object, now: datetime | None) -> list[str]:
    if not isinstance(value, str):
        return []
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return [f"$.event_time: {value!r} is not a valid date-time"]
    if at.tzinfo is None:
        return []  # the pattern already said it lacks the Z
    if at < MIN_EVENT_TIME:
        return [f"$.event_time: {value} is before {_RULES['min_event_time']}"]
    limit = (now or datetime.now(UTC)) + MAX_FUTURE_SKEW
    if at > limit:
        ahead = at - limit + MAX_FUTURE_SKEW
        return [
            f"$.event_time: {value} is {ahead.total_seconds() / 86400:.1f} days in the future "
            f"(more than {MAX_FUTURE_SKEW.total_seconds():.0f} s ahead)"
        ]
    return []


def validate_event(obj: object, *, now: datetime | None = None) -> list[str]:
    """Why ``obj`` (a parsed JSON value) breaks the contract, by ``jsonschema``; an empty list when it is
    a valid event. The tests' oracle: Bronze's own validator is `medallion.bronze.validator`.

    Each reason is ``"<json path>: <what is wrong>"``. ``now`` is the clock event_time is checked
    against (default: the current time).
    """
    errors = sorted(_oracle().iter_errors(obj), key=lambda e: ([str(p) for p in e.absolute_path], e.message))
    reasons = [_reason(err) for err in errors]
    if isinstance(obj, dict):
        reasons += _event_time_reasons(obj.get("event_time"), now)
    return reasons


def validate_payload(value: bytes | None, *, now: datetime | None = None) -> list[str]:
    """Why a Kafka record value is not a valid event: size, encoding, JSON syntax, then the schema."""
    if not value:
        return ["$: empty value (no bytes)"]
    if len(value) > MAX_EVENT_BYTES:
        return [f"$: payload of {len(value)} bytes is over the {MAX_EVENT_BYTES}-byte limit"]
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [f"$: not UTF-8 ({exc.reason} at byte {exc.start})"]
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        # A cut-off object fails at its very end (or in a string it never closes).
        opened = text.lstrip().startswith(("{", "["))
        ends_early = opened and (exc.pos >= len(text.rstrip()) - 4 or exc.msg.startswith("Unterminated"))
        return [f"$: not JSON ({exc.msg}, char {exc.pos}{'; truncated' if ends_early else ''})"]
    return validate_event(obj, now=now)


# --- a user's own contract -------------------------------------------------------------------------------

RELIED_ON_REQUIRED: tuple[str, ...] = ("event_id", "event_type", "event_time", "user_id", "session_id")
"""Members every event must carry in any contract: Bronze deduplicates on event_id and partitions by
event_time; Silver and Gold key every row by user, session and type."""
RELIED_ON_DECLARED: tuple[str, ...] = ("item_id", "price", "quantity", "currency")
"""Members any contract must declare (they may stay optional): Silver's enrichment and Gold's item and
commerce features read them."""


class ContractError(ValueError):
    """A user's contract that Bronze cannot compile or that lacks what Silver and Gold rely on."""


def load_user_contract(path: str) -> dict[str, Any]:
    """The JSON Schema at ``path``, checked to be one Bronze can enforce and Silver and Gold can read.

    A contract replaces the packaged one entirely: its rules (patterns, enums, lengths, ranges, formats,
    conditionals, ``x-medallion`` limits) are what Bronze enforces. The Bronze table keeps the catalogue's
    columns: a member the packaged contract also declares is stored as Bronze stores it (so it must keep
    its JSON kind), a member it does not is validated but not stored, and a stored member the user's
    contract leaves out is null.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ContractError(f"cannot read the contract file {path}: {exc.strerror}") from None
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractError(f"the contract file {path} is not JSON ({exc.msg}, line {exc.lineno})") from None
    check_user_contract(schema, path)
    return schema if isinstance(schema, dict) else {}


def check_user_contract(schema: Any, where: str = "the contract") -> None:
    """Raise `ContractError` naming what ``schema`` lacks or uses that Bronze does not compile."""
    if not isinstance(schema, dict) or schema.get("type") != "object" or "properties" not in schema:
        raise ContractError(f"{where} must be a JSON Schema of an object with properties (an event)")
    props = schema["properties"]
    missing = [m for m in (*RELIED_ON_REQUIRED, *RELIED_ON_DECLARED) if m not in props]
    optional = [m for m in RELIED_ON_REQUIRED if m in props and m not in schema.get("required", ())]
    if missing or optional:
        said = [f"declares no {', '.join(missing)}"] if missing else []
        said += [f"does not require {', '.join(optional)}"] if optional else []
        raise ContractError(
            f"{where} {' and '.join(said)}: Silver and Gold rely on {', '.join(RELIED_ON_REQUIRED)} in every "
            f"event (required) and on {', '.join(RELIED_ON_DECLARED)} being declared (optional is fine)"
        )
    if props["event_time"].get("pattern") != _PROPS["event_time"]["pattern"]:
        raise ContractError(
            f"{where} changes event_time's pattern: Bronze reads the time by position, so event_time keeps "
            f"the packaged pattern {_PROPS['event_time']['pattern']!r} (UTC, milliseconds, Z)"
        )
    for path, theirs, ours in _shared_members(props, _PROPS):
        if "$ref" not in theirs and _solid_kinds(theirs) != _solid_kinds(ours):
            raise ContractError(
                f"{where} declares {path} as {theirs.get('type')!r}, but Bronze stores it as "
                f"{ours.get('type')!r}: keep its JSON type (a member of another type needs another name)"
            )
    # lazy: upward, listed in tests/test_layers.py: `contract check` runs Bronze's own validator
    from medallion.bronze.validator import Schema, compile_contract

    try:
        compile_contract(Schema(schema))
    except (ValueError, KeyError, TypeError) as exc:
        raise ContractError(f"{where}: {exc}") from None


def _solid_kinds(node: dict[str, Any]) -> set[str]:
    declared = node.get("type", [])
    return {k for k in (declared if isinstance(declared, list) else [declared]) if k != "null"}


def _shared_members(
    theirs: dict[str, Any], ours: dict[str, Any], prefix: str = ""
) -> Iterable[tuple[str, dict[str, Any], dict[str, Any]]]:
    for name, node in theirs.items():
        if name in ours and isinstance(node, dict):
            yield prefix + name, node, ours[name]
            if "properties" in node and "properties" in ours[name]:
                yield from _shared_members(node["properties"], ours[name]["properties"], f"{prefix}{name}.")


def check_records(
    values: Iterable[bytes], rules: BronzeRules, now: datetime | None = None
) -> Iterator[list[str]]:
    """Bronze's own verdict on each record value, as the ingest would reach it: ``[]`` for a valid one,
    else every rule it breaks (``<class>:<member>``). ``now`` stands for the records' Kafka timestamps,
    against which an event time too far ahead is judged (default: the current time)."""
    # lazy: upward, listed in tests/test_layers.py: `contract check` runs Bronze's own validator
    from medallion.bronze.records import BronzeDecoder

    decoder = BronzeDecoder(b"", rules)  # no key: nothing is scrubbed, only checked
    at = now or datetime.now(UTC)
    stamp = (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    for value in values:
        yield decoder.check(value, stamp)
