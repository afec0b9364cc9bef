"""The Bronze row, derived from the contract: its columns, and the code that fills them from an event.

Every member of the JSON Schema becomes a Bronze column of its JSON kind, in the schema's order, unless
`STORED` says otherwise (PII hashed, truncated, rounded or dropped; a time parsed). A member the contract
marks as an identifier (``"x-medallion": {"identifier": true}``) is kept exactly as sent, or replaced
whole by its keyed hash when the whole id is an email or a phone number (`scrub_identifier`): never
partly, which would merge ids that differ. Any other string member is scrubbed of emails, phones and IP
addresses (`scrub_text`) unless the contract fixes its shape (an anchored pattern, an enum, a const or a
format), so PII planted in a page path, a referrer, the user agent or a city never lands in clear. A new
member in the schema reaches Bronze with no code change.

The function that appends a row is generated from the same walk (one line per column, no loop or
lookup per member), so that the per-record Python stays a few attribute reads and list appends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pyarrow as pa
from msgspec import UNSET
from pyspark.sql import types as T

from medallion.core import contract
from medallion.pii.redact import PERSONAL_NAMES, Redactor, Rule, redact, round_number
from medallion.pii.scrub import (
    PHONE_CHARS,
    Hmac,
    normalize_email,
    normalize_phone,
    round_coordinate,
    scrub_identifier,
    scrub_text,
    scrub_url,
    truncate_ip,
)


@dataclass(frozen=True)
class Stored:
    """How Bronze stores one member: under ``column`` (None: dropped), as ``how`` says."""

    column: str | None
    how: str
    pii: str | None = None  # the `PII_BITS` name counted when the member is present


STORED: dict[str, Stored] = {
    "schema_version": Stored("schema_version", "int32"),
    "event_time": Stored("event_time", "time"),
    "search_query": Stored(None, "drop"),  # free text
    "device.os": Stored("os", "lower_text"),
    "device.browser": Stored("browser", "lower_text"),
    "geo.lat": Stored("lat", "coordinate"),
    "geo.lon": Stored("lon", "coordinate"),
    "context.ip": Stored("ip_prefix", "ip", "ips"),
    "context.referrer": Stored("referrer", "url"),
    "context.page": Stored("page", "url"),
    "user.email": Stored("email_hmac", "email", "emails"),
    "user.phone": Stored("phone_hmac", "phone", "phones"),
    "user.name": Stored(None, "drop", "names"),
}
"""Bronze's treatment of the members that are not stored as they come (PII, the event time)."""

PII_BITS = {"emails": 1, "phones": 2, "ips": 4, "names": 8}

# How each treatment stores a present value ``v``; ``S`` is the worker's `Scrubbers`, ``t`` the parsed time.
_EXPRESSIONS = {
    "as_is": "v",
    # `identifier_kind`'s first test, inlined: most ids (a UUID, ``s_3a9f01234567``) are settled without a call.
    "identifier": '(S.ident(v) if "@" in v or "%" in v or not v.strip(PHONE_CHARS) else v)',
    "text": "S.text(v.strip(' '))",
    "lower_text": "S.text(v.strip(' ').lower())",
    "url": "S.url(v)",
    "int32": "int(v)",
    "long": "int(v)",
    "double": "float(v)",
    "coordinate": "round_coordinate(v)",  # msgspec decodes a JSON number member as a float
    "ip": "S.ip(v)",
    "email": "S.email(v)",
    "phone": "S.phone(v)",
    "time": "t",
}
_SPARK = {
    "int32": T.IntegerType(),
    "long": T.LongType(),
    "double": T.DoubleType(),
    "coordinate": T.DoubleType(),
    "time": T.TimestampType(),
}


def _kind(node: dict[str, Any]) -> str:
    declared: Any = node.get("type")
    kinds: list[str] = declared if isinstance(declared, list) else [declared]
    return next(k for k in kinds if k != "null")


def _default_how(node: dict[str, Any]) -> str:
    kind = _kind(node)
    if kind == "integer":
        return "long"
    if kind == "number":
        return "double"
    if kind != "string":
        raise ValueError(f"no Bronze column for JSON type {kind!r}: say how it is stored in rows.STORED")
    if is_identifier(node):
        return "identifier"
    pattern = node.get("pattern", "")
    shaped = any(k in node for k in ("enum", "const", "format")) or (
        pattern.startswith("^") and pattern.endswith("$")
    )
    return "as_is" if shaped else "text"


def is_identifier(node: dict[str, Any]) -> bool:
    """Whether the contract marks this member as an identifier (``"x-medallion": {"identifier": true}``)."""
    marks = node.get("x-medallion")
    return isinstance(marks, dict) and marks.get("identifier") is True


def _plan(schema: dict[str, Any]) -> list[tuple[str, Stored, dict[str, Any] | None]]:
    """``(member path, treatment, object node or None)`` for every member, in the schema's order."""
    out: list[tuple[str, Stored, dict[str, Any] | None]] = []

    def walk(node: dict[str, Any], prefix: str) -> None:
        for name, sub in node.get("properties", {}).items():
            path = prefix + name
            if _kind(sub) == "object" and path not in STORED:
                out.append((path, Stored(name, "struct"), sub))
                walk(sub, path + ".")
            else:
                out.append((path, STORED.get(path) or Stored(name, _default_how(sub)), None))

    walk(schema, "")
    unknown = set(STORED) - {path for path, _, _ in out}
    if unknown:
        raise ValueError(f"rows.STORED names {sorted(unknown)}, which the contract does not have")
    return out


def bronze_fields(schema: dict[str, Any]) -> list[T.StructField]:
    """The contract's members as Bronze columns (every one nullable)."""
    plan = _plan(schema)
    fields: list[T.StructField] = []
    nested: dict[str, list[T.StructField]] = {}
    for path, stored, _ in plan:
        if stored.column is None:
            continue
        parent, _, _ = path.rpartition(".")
        target = nested[parent] if parent else fields
        if stored.how == "struct":
            nested[path] = []
            target.append(T.StructField(stored.column, T.StructType()))
        else:
            target.append(T.StructField(stored.column, _SPARK.get(stored.how, T.StringType())))
    return [
        T.StructField(f.name, T.StructType(nested[f.name])) if isinstance(f.dataType, T.StructType) else f
        for f in fields
    ]


class Scrubbers:
    """The scrubbing of repeated values, memoized per worker: a user's email, phone and address, and the
    pages, referrers, agents and cities, recur across events, and a cache hit costs a fraction of an HMAC
    or of a regular-expression search. Bounded; memory only. Not picklable (the HMAC): built where used."""

    def __init__(self, pii_key: bytes, size: int = 1 << 16) -> None:
        keyed = Hmac(pii_key)
        self.email = lru_cache(size)(lambda v: keyed(normalize_email(v)))
        self.phone = lru_cache(size)(lambda v: keyed(normalize_phone(v)))
        self.ip = lru_cache(size)(truncate_ip)
        self.text = lru_cache(size)(scrub_text)
        self.url = lru_cache(size)(scrub_url)
        self.ident = lru_cache(size)(lambda v: scrub_identifier(v, self.email, self.phone))


def rejected_rules(S: Scrubbers) -> dict[str, Rule]:
    """How a rejected payload's members are scrubbed, by member name: as Bronze treats the contract's
    member of that name in a valid event (`STORED`, the identifiers). A rule returns a value it does
    not apply to as it is (then `Redactor` scrubs it as text)."""

    def hashed(keyed: Callable[[str], str | None]) -> Rule:
        return lambda v: v if v is None or isinstance(v, (dict, list)) else keyed(str(v))

    def on_strings(scrub: Callable[[str], str | None]) -> Rule:
        return lambda v: (scrub(v) or v) if isinstance(v, str) else v

    by_how: dict[str, Rule] = {
        "drop": redact,
        "email": hashed(S.email),
        "phone": hashed(S.phone),
        "ip": on_strings(S.ip),
        "coordinate": round_number,
        "identifier": on_strings(S.ident),
        "url": on_strings(S.url),
    }
    rules: dict[str, Rule] = {name: redact for name in PERSONAL_NAMES}
    for path, stored, _ in _PLAN:
        if stored.how in by_how:
            rules[path.rpartition(".")[2].lower()] = by_how[stored.how]
    return rules


def rejected_redactor(S: Scrubbers) -> Redactor:
    """The redaction of rejected records (`medallion.pii.redact`) under Bronze's rules and key."""
    return Redactor(rejected_rules(S), S.text)


@dataclass(frozen=True)
class RowWriter:
    """The members a contract's events fill, in Bronze's order, and the generated function filling them."""

    plan: list[tuple[str, Stored, dict[str, Any] | None]]
    factory: Callable[..., Any]
    source: str


def row_writer(schema: dict[str, Any]) -> RowWriter:
    """The row writer for a user's contract (`medallion.core.contract.load_user_contract`): the packaged
    contract's plan, so the Bronze table keeps the catalogue's columns, restricted to the members
    ``schema`` declares. Its other members are validated, not stored; a stored member it leaves out is
    null (`Columns.to_batch`)."""
    declared = set(_nodes(schema))
    plan = [entry for entry in _PLAN if entry[0] in declared]
    source, _ = _generate(plan, schema)
    return RowWriter(plan, _compile(source), source)


class Columns:
    """A decoded batch's columns as Python lists, filled row by row, built into Arrow once. The Kafka
    coordinates come from the source's own arrays, and the rejected-only columns are filled at the end."""

    def __init__(self, schema: pa.Schema, writer: RowWriter | None = None) -> None:
        plan, factory = (writer.plan, writer.factory) if writer else (_PLAN, _ROW_FACTORY)
        self.schema = schema
        self.cols: dict[str, list[Any]] = {f.name: [] for f in schema if not pa.types.is_struct(f.type)}
        self.nested: dict[str, dict[str, list[Any]]] = {
            f.name: {sub.name: [] for sub in f.type} for f in schema if pa.types.is_struct(f.type)
        }
        # The Bronze columns, in the order the generated row function fills them.
        self.bronze: list[list[Any]] = []
        for path, stored, _ in plan:
            if stored.column is None or stored.how == "struct":
                continue
            parent = path.rpartition(".")[0]
            self.bronze.append(self.nested[parent][stored.column] if parent else self.cols[stored.column])
        self.row = factory(*(column.append for column in self.bronze))

    def add_rejected_placeholder(self) -> None:
        for column in self.bronze:
            column.append(None)

    def truncate_bronze(self, rows: int) -> None:
        for column in self.bronze:
            del column[rows:]

    def to_batch(self, given: dict[str, pa.Array]) -> pa.RecordBatch:
        n = len(self.cols["_dedup_key"])
        arrays = []
        for f in self.schema:
            if f.name in given:
                arrays.append(given[f.name].cast(f.type))
            elif pa.types.is_struct(f.type):
                fields = self.nested[f.name]
                arrays.append(
                    pa.StructArray.from_arrays(
                        [pa.array(fields[sub.name] or [None] * n, sub.type) for sub in f.type],
                        fields=list(f.type),
                    )
                )
            else:
                values = self.cols[f.name]
                arrays.append(pa.array(values if values else [None] * n, f.type))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


def append_row(event: Any, time_us: int, scrubbers: Scrubbers, out: Columns) -> int:
    """Append one valid event (a decoded struct) as a Bronze row; the `PII_BITS` of what it carried."""
    bits: int = out.row(event, time_us, scrubbers)
    return bits


def _generate(
    plan: list[tuple[str, Stored, dict[str, Any] | None]], schema: dict[str, Any]
) -> tuple[str, int]:
    """Source of ``make(a0, a1, ...)``, which returns ``row(e, t, S)`` appending one row with ``a<i>``."""
    required = _required_paths(schema)
    nodes = _nodes(schema)
    lines: list[str] = []
    column = 0
    children: dict[str, list[tuple[str, Stored]]] = {}
    for path, stored, _ in plan:
        children.setdefault(path.rpartition(".")[0], []).append((path, stored))

    def emit(parent: str, obj: str, depth: int) -> None:
        nonlocal column
        pad = "    " * depth
        for path, stored in children.get(parent, []):
            name = path.rpartition(".")[2]
            if stored.how == "struct":
                var, leaves, start = f"o{depth}", _count(children, path), column
                lines.append(f"{pad}{var} = {obj}.{name}")
                lines.append(f"{pad}if {var} is UNSET:")
                lines.extend([f"{pad}    a{start + k}(None)" for k in range(leaves)] or [f"{pad}    pass"])
                lines.append(f"{pad}else:")
                lines.append(f"{pad}    pass")
                emit(path, var, depth + 1)
                assert column == start + leaves
                continue
            value = f"{obj}.{name}"
            if stored.pii is not None:
                lines.append(f"{pad}if {value} is not UNSET:")
                lines.append(f"{pad}    b |= {PII_BITS[stored.pii]}")
            if stored.column is None:
                continue
            expr = _EXPRESSIONS[stored.how]
            if path in required and "null" not in str(nodes[path].get("type")):
                lines.append(f"{pad}v = {value}")
                lines.append(f"{pad}a{column}({expr})")
            elif path in required:
                lines.append(f"{pad}v = {value}")
                lines.append(f"{pad}a{column}(None if v is None else {expr})")
            else:
                lines.append(f"{pad}v = {value}")
                lines.append(f"{pad}a{column}(None if v is UNSET or v is None else {expr})")
            column += 1

    emit("", "e", 2)
    params = ", ".join(f"a{i}" for i in range(column))
    body = "\n".join(lines)
    source = f"def make({params}):\n    def row(e, t, S):\n        b = 0\n{body}\n        return b\n    return row\n"
    return source, column


def _flat(children: dict[str, list[tuple[str, Stored]]], parent: str) -> list[tuple[str, Stored]]:
    out = []
    for path, stored in children.get(parent, []):
        out.append((path, stored))
        if stored.how == "struct":
            out += _flat(children, path)
    return out


def _count(children: dict[str, list[tuple[str, Stored]]], parent: str) -> int:
    return sum(1 for _, s in _flat(children, parent) if s.column is not None and s.how != "struct")


def _nodes(schema: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    out = {}
    for name, sub in schema.get("properties", {}).items():
        out[prefix + name] = sub
        out |= _nodes(sub, f"{prefix}{name}.")
    return out


def _required_paths(schema: dict[str, Any]) -> set[str]:
    out: set[str] = set()

    def walk(node: dict[str, Any], prefix: str) -> None:
        for name in node.get("required", ()):
            out.add(prefix + name)
        for name, sub in node.get("properties", {}).items():
            if _kind(sub) == "object":
                walk(sub, f"{prefix}{name}.")

    walk(schema, "")
    return out


def _compile(source: str) -> Callable[..., Any]:
    """The ``make`` function of a generated row writer's source (`_generate`)."""
    namespace: dict[str, Any] = {
        "UNSET": UNSET,
        "round_coordinate": round_coordinate,
        "PHONE_CHARS": PHONE_CHARS,
    }
    exec(compile(source, "<bronze row>", "exec"), namespace)  # noqa: S102 (generated from a checked schema)
    make: Callable[..., Any] = namespace["make"]
    return make


def _build(
    schema: dict[str, Any],
) -> tuple[list[tuple[str, Stored, dict[str, Any] | None]], Callable[..., Any], str]:
    plan = _plan(schema)
    source, _ = _generate(plan, schema)
    return plan, _compile(source), source


_PLAN, _ROW_FACTORY, ROW_SOURCE = _build(contract.EVENT_SCHEMA)
