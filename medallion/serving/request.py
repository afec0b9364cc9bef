"""A ``/get-online-features`` request body, checked strictly before anything is read.

Feast's server takes ``{"entities": {join_key: [values]}, "features": [...] | "feature_service": name,
"full_feature_names": bool}``. Here every part must have exactly that shape: a value of another type is
a 400 naming the member and what it holds, never a silent reinterpretation (a string where a list is
expected would otherwise be read one character per entity row, and the string ``"false"`` taken as
true). Unknown members are named, and so are the limits a request passes (`serve.max_entities`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

MEMBERS = ("entities", "features", "feature_service", "full_feature_names")


class BadRequest(ValueError):
    """The request is malformed; ``status`` is the HTTP status to answer (400, or 413 past a limit)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class OnlineRequest:
    entities: dict[str, list[str]]
    features: list[str] | None
    feature_service: str | None
    full_feature_names: bool


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def parse_online_request(body: bytes, join_keys: Collection[str], max_entities: int) -> OnlineRequest:
    """The checked request in ``body``; BadRequest naming the first thing wrong with it."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(
            f"The body is not valid UTF-8 (byte 0x{body[exc.start]:02x} at offset {exc.start})."
        ) from None
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}.") from None
    if not isinstance(request, dict):
        raise BadRequest(f"The body must be a JSON object, not {_kind(request)}.")
    unknown = sorted(set(request) - set(MEMBERS))
    if unknown:
        raise BadRequest(f"Unknown member(s) {', '.join(map(repr, unknown))}; known: {', '.join(MEMBERS)}.")
    entities = _entities(request.get("entities"), join_keys, max_entities)
    features = request.get("features")
    service = request.get("feature_service")
    if features is not None:
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            raise BadRequest('"features" must be a list of "view:feature" strings.')
        if len(set(features)) != len(features):  # counted only then: count() per feature is quadratic
            duplicates = sorted({f for f in features if features.count(f) > 1})
            raise BadRequest(f'"features" names {", ".join(duplicates)} more than once.')
    if service is not None and not isinstance(service, str):
        raise BadRequest(f'"feature_service" must be a string, not {_kind(service)}.')
    if (features is None or features == []) == (service is None):
        raise BadRequest('Give either "features" (a list of "view:feature") or "feature_service", not both.')
    full = request.get("full_feature_names", False)
    if not isinstance(full, bool):
        raise BadRequest(f'"full_feature_names" must be true or false, not {_kind(full)} ({full!r}).')
    return OnlineRequest(entities, features or None, service, full)


def _entities(raw: Any, join_keys: Collection[str], max_entities: int) -> dict[str, list[str]]:
    if not isinstance(raw, dict) or not raw:
        what = "empty" if raw == {} else ("missing" if raw is None else _kind(raw))
        raise BadRequest(
            f'"entities" must be an object of join key -> list of values, e.g. {{"user_id": ["u_1"]}} '
            f"(it is {what})."
        )
    lengths: dict[str, int] = {}
    for key, values in raw.items():
        if key not in join_keys:
            raise BadRequest(f"entities.{key} is not a join key; join keys: {', '.join(sorted(join_keys))}.")
        if not isinstance(values, list):
            raise BadRequest(f"entities.{key} must be a list of strings, not {_kind(values)}.")
        for i, value in enumerate(values):
            if not isinstance(value, str):
                raise BadRequest(f"entities.{key}[{i}] is {_kind(value)}; {key} values are strings.")
        lengths[key] = len(values)
    if len(set(lengths.values())) != 1:
        shown = ", ".join(f"{k}: {n}" for k, n in lengths.items())
        raise BadRequest(f"Every entity list must have the same length (entity rows); got {shown}.")
    rows = next(iter(lengths.values()))
    if rows > max_entities:
        raise BadRequest(
            f"The request asks for {rows} entity rows; this server answers at most {max_entities} per "
            "request (serve.max_entities).",
            status=413,
        )
    return raw


def missing_join_keys(needed: Sequence[str], given: Collection[str]) -> list[str]:
    return [key for key in needed if key not in given]
