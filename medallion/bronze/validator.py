"""The event contract compiled into a validator at import time: two paths, both derived from the JSON Schema.

- **Fast path** (`Compiled.decode`): msgspec `Struct` types generated from the schema decode a record's
  bytes straight into typed fields, in C: JSON kinds, nullability, ``required`` at every level, string
  enums and ``const`` (``Literal``), ``pattern``, ``minLength``/``maxLength`` and number ranges (``Meta``).
  What msgspec cannot state (that an integer-valued float is a JSON integer, integer ranges and ``const``,
  ``format``, ``anyOf``, ``not``, the ``allOf`` if/then/else rules), and a pattern with a faster test than
  its regular expression (`pattern_test`), is compiled into one generated Python function run on the
  decoded struct. Every keyword of every node goes to exactly one of the two, and a
  keyword the compiler does not know fails the import, so a grown schema can never be silently unenforced.
- **Rule-by-rule path** (`rule_failures`): a plain walk of the schema over the parsed value that names
  every rule it breaks, ``<class>:<member>`` (``enum:device.type``, ``range:geo.lat``). Slower; Bronze
  runs it only for records the fast path rejects, to say why.

The two agree on every record, and both agree with the ``jsonschema`` library (a property test), except
where ECMA-262, the regex dialect of JSON Schema, and Python's ``re`` differ: a pattern's final ``$``
matches only at the very end here, never before a trailing newline (``schemas/README.md``).

Why one module: it is one compiler, from each JSON Schema keyword to its msgspec half and its rule-by-rule
half, and a keyword's two halves belong side by side so they cannot disagree.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Annotated, Any, Literal, Union

import msgspec
from msgspec import UNSET, Meta, UnsetType

ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "title", "description", "x-medallion", "$comment"})
"""Keywords that carry no rule."""

RULE_CLASS = {
    "type": "type",
    "enum": "enum",
    "const": "const",
    "pattern": "pattern",
    "format": "format",
    "minimum": "range",
    "maximum": "range",
    "minLength": "length",
    "maxLength": "length",
    "required": "required",
    "not": "forbidden",
}
"""A failed keyword's rule class, the first half of a rule name."""

_STRUCTURE = frozenset({"properties", "allOf", "anyOf", "if", "then", "else", "$ref"})
_KNOWN = ANNOTATIONS | _STRUCTURE | frozenset(RULE_CLASS)


# --- keyword semantics shared by both paths ------------------------------------------------------------


@cache
def ecma_pattern(pattern: str) -> re.Pattern[str]:
    """``pattern`` for `re.search`, with a final ``$`` meaning the end of the string, as in ECMA-262
    (Python's ``$`` also matches before a trailing newline)."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


IDENTIFIER_TEXT = r"^[^\S\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
"""The contract's pattern for an id or a code: text with no control character, not all whitespace. Four
members of every event carry it, so the fast path tests it without the regular expression when the
text is ASCII (`pattern_test`): 0.1 µs instead of 1 µs a member."""


def pattern_test(pattern: str) -> Callable[[str], bool] | None:
    """A test equal to ``ecma_pattern(pattern).search(s) is not None`` for every string, faster than the
    regular expression; None when there is none for ``pattern``. Their agreement is a property test."""
    if pattern != IDENTIFIER_TEXT:
        return None
    search = ecma_pattern(pattern).search

    def identifier_text(s: str) -> bool:
        if s.isascii():  # ASCII without controls is exactly the printable range, where only " " is \s
            return s.isprintable() and s.strip(" ") != ""
        return search(s) is not None

    return identifier_text


_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _is_uuid(value: str) -> bool:
    """`uuid.UUID` accepts it and its hyphens are where RFC 4122 puts them (``jsonschema``'s test). The
    canonical form, nearly every id, is recognized by one match, a tenth of `uuid.UUID`'s time."""
    if _CANONICAL_UUID.fullmatch(value) is not None:
        return True
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) > 23 and all(value[i] == "-" for i in (8, 13, 18, 23))


def _is_ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def _is_ipv6(value: str) -> bool:
    try:
        return not ipaddress.IPv6Address(value).scope_id
    except ValueError:
        return False


# Memoized: emails and addresses recur in every event of their user.
FORMATS: dict[str, Callable[[str], bool]] = {
    "uuid": _is_uuid,  # ids are unique: nothing to memoize
    "email": lambda value: "@" in value,
    "ipv4": lru_cache(1 << 16)(_is_ipv4),
    "ipv6": lru_cache(1 << 16)(_is_ipv6),
}
"""The formats the contract uses, as JSON Schema's format vocabulary (and ``jsonschema``) checks them."""


def _kinds(node: dict[str, Any]) -> list[str]:
    declared = node.get("type", [])
    return declared if isinstance(declared, list) else [declared]


def is_kind(value: Any, kind: str) -> bool:
    """JSON Schema's kinds over parsed JSON: a boolean is no number, ``2.0`` is an integer."""
    t = type(value)
    if kind == "integer":
        return t is int or (t is float and value.is_integer())
    if kind == "number":
        return t is int or t is float
    return t is {"string": str, "object": dict, "array": list, "boolean": bool, "null": type(None)}[kind]


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: ``1 == 1.0``, but ``true`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _check_keywords(node: dict[str, Any], where: str) -> None:
    unknown = set(node) - _KNOWN
    if unknown:
        raise ValueError(
            f"the contract uses {sorted(unknown)} at {where or '$'}, which Bronze's validator does not "
            "compile: add the keyword to medallion/bronze/validator.py (both paths) or drop it from the schema"
        )


class Schema:
    """The contract's JSON Schema with its ``$ref``s resolvable; every keyword it uses must be one both
    paths compile (checked here, once)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.root = schema
        self._check(schema, "")

    def _check(self, node: Any, where: str) -> None:
        if not isinstance(node, dict):
            return
        _check_keywords(node, where)
        for name, sub in node.get("properties", {}).items():
            self._check(sub, f"{where}.{name}" if where else name)
        for key in ("not", "if", "then", "else"):
            self._check(node.get(key), where)
        for key in ("allOf", "anyOf"):
            for sub in node.get(key, ()):
                self._check(sub, where)
        for name, sub in node.get("$defs", {}).items():
            self._check(sub, f"$defs.{name}")

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                raise ValueError(f"only local $ref are compiled, not {ref!r}")
            target: Any = self.root
            for part in ref[2:].split("/"):
                target = target[part]
            node = {**{k: v for k, v in node.items() if k != "$ref"}, **target}
        return node


# --- the rule-by-rule path ------------------------------------------------------------------------------


def rule_failures(schema: Schema, value: Any) -> list[str]:
    """Every rule of the contract ``value`` breaks, as ``<class>:<member>``, in the schema's order."""
    out: list[str] = []
    _walk(schema, schema.root, value, "", out)
    return list(dict.fromkeys(out))  # a rule stated twice (two allOf branches) is reported once


def _walk(schema: Schema, node: dict[str, Any], value: Any, path: str, out: list[str]) -> None:
    if "$ref" in node:
        node = schema.resolve(node)
    kinds = _kinds(node)
    if kinds and not any(is_kind(value, k) for k in kinds):
        out.append(f"type:{path}")
        return  # the other keywords say nothing about a value of the wrong kind
    if "enum" in node and not any(json_equal(value, v) for v in node["enum"]):
        out.append(f"enum:{path}")
    if "const" in node and not json_equal(value, node["const"]):
        out.append(f"const:{path}")
    if type(value) is str:
        if "pattern" in node and ecma_pattern(node["pattern"]).search(value) is None:
            out.append(f"pattern:{path}")
        if not node.get("minLength", 0) <= len(value) <= node.get("maxLength", len(value)):
            out.append(f"length:{path}")
        if "format" in node and not FORMATS[node["format"]](value):
            out.append(f"format:{path}")
    elif type(value) in (int, float):
        if ("minimum" in node and value < node["minimum"]) or ("maximum" in node and value > node["maximum"]):
            out.append(f"range:{path}")
    elif type(value) is dict:
        prefix = f"{path}." if path else ""
        out += [f"required:{prefix}{name}" for name in node.get("required", ()) if name not in value]
        for name, sub in node.get("properties", {}).items():
            if name in value:
                _walk(schema, sub, value[name], prefix + name, out)
    if "not" in node and not _failures(schema, node["not"], value, path):
        out.append(f"forbidden:{path}")
    if "anyOf" in node:
        branches = [_failures(schema, sub, value, path) for sub in node["anyOf"]]
        if all(branches):
            classes = {rule.split(":", 1)[0] for rule in itertools.chain(*branches)}
            out.append(f"{classes.pop() if len(classes) == 1 else 'any_of'}:{path}")
    for sub in node.get("allOf", ()):
        _walk(schema, sub, value, path, out)
    if "if" in node:
        branch = node.get("else") if _failures(schema, node["if"], value, path) else node.get("then")
        if branch is not None:
            _walk(schema, branch, value, path, out)


def _failures(schema: Schema, node: dict[str, Any], value: Any, path: str) -> list[str]:
    out: list[str] = []
    _walk(schema, node, value, path, out)
    return out


# --- the fast path --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Compiled:
    """The fast path: ``decode(bytes)`` raises `msgspec.DecodeError` (or `ValidationError`) for what the
    struct types refuse; ``post(struct)`` is False for what the generated checks refuse."""

    root: type[msgspec.Struct]
    decode: Callable[[bytes], Any]
    post: Callable[[Any], bool]
    source: str  # the generated checks, for reading and debugging


def compile_contract(schema: Schema) -> Compiled:
    builder = _Builder(schema)
    root = builder.struct(schema.root, "", "Event")
    checks = builder.checks + [builder.pred(schema.root, "e", "", residual_of_root=True)]
    body = " and ".join(f"({c})" for c in checks if c != "True") or "True"
    source = f"def post(e):\n    return {body}\n"
    namespace: dict[str, Any] = {"UNSET": UNSET, **builder.env}
    exec(compile(source, "<bronze contract checks>", "exec"), namespace)  # noqa: S102 (our own schema)
    decoder = msgspec.json.Decoder(root)
    return Compiled(root, decoder.decode, namespace["post"], source)


_PY_KIND: dict[str, Any] = {"string": str, "number": float, "integer": Union[int, float], "null": None}  # noqa: UP007


class _Builder:
    """Generates the struct types and, beside them, the Python expressions for what they cannot say."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.checks: list[str] = []  # expressions over ``e``, the decoded root struct
        self.env: dict[str, Any] = {}  # names the expressions use
        self.structs: dict[str, type[msgspec.Struct]] = {}  # path -> struct type

    def _name(self, prefix: str, value: Any) -> str:
        name = f"_{prefix}{len(self.env)}"
        self.env[name] = value
        return name

    def struct(self, node: dict[str, Any], path: str, name: str) -> type[msgspec.Struct]:
        node = self.schema.resolve(node)
        required = set(node.get("required", ()))
        fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
        for member, sub in node.get("properties", {}).items():
            if not member.isidentifier() or member.startswith("_"):
                raise ValueError(f"contract member {member!r} cannot be a struct field")
            sub_path = f"{path}.{member}" if path else member
            annotation = self.member_type(sub, sub_path, f"{name}_{member}")
            if member in required:
                fields.append((member, annotation))
            else:
                fields.append((member, Union[annotation, UnsetType], UNSET))  # noqa: UP007
        for member in required - set(node.get("properties", {})):
            raise ValueError(f"{path or '$'} requires {member!r} without declaring it: not compiled")
        cls = msgspec.defstruct(name, fields, kw_only=True)
        self.structs[path] = cls
        return cls

    def member_type(self, node: dict[str, Any], path: str, name: str) -> Any:
        """The member's msgspec type; what the type cannot state is appended to ``checks``."""
        node = self.schema.resolve(node)
        _check_keywords(node, path)
        kinds = _kinds(node)
        nullable = "null" in kinds
        solid = [k for k in kinds if k != "null"]
        if len(solid) != 1:
            raise ValueError(f"contract member {path} needs exactly one non-null JSON type, has {kinds!r}")
        kind = solid[0]
        done = {"type"}
        if kind == "object":
            if nullable:
                raise ValueError(f"contract member {path} is a nullable object, which is not compiled")
            annotation: Any = self.struct(node, path, name)
            done |= {"properties", "required"}
        elif kind == "string":
            meta: dict[str, Any] = {}
            if "pattern" in node and pattern_test(node["pattern"]) is None:  # else a generated check
                meta["pattern"] = ecma_pattern(node["pattern"]).pattern
                done.add("pattern")
            if "minLength" in node:
                meta["min_length"] = node["minLength"]
            if "maxLength" in node:
                meta["max_length"] = node["maxLength"]
            done |= {"minLength", "maxLength"}
            values = node["enum"] if "enum" in node else [node["const"]] if "const" in node else None
            if values is not None and all(type(v) is str for v in values) and not meta:
                annotation = Literal[tuple(values)]
                done |= {"enum", "const"}
            else:
                annotation = Annotated[str, Meta(**meta)] if meta else str
        elif kind == "number":
            bounds = {k: node[j] for j, k in (("minimum", "ge"), ("maximum", "le")) if j in node}
            annotation = Annotated[float, Meta(**bounds)] if bounds else float
            done |= {"minimum", "maximum"}
        elif kind == "integer":
            annotation = _PY_KIND["integer"]  # 2.0 is a JSON integer: checked in Python, below
            done -= {"type"}
        else:
            raise ValueError(f"contract member {path} has JSON type {kind!r}, which is not compiled")
        residual = {k: v for k, v in node.items() if k not in done and k not in ANNOTATIONS}
        if residual:
            access = f"e.{path}"
            guard = self._guard(path)
            value_check = self.pred(residual, access, path)
            if nullable:
                value_check = f"{access} is None or ({value_check})"
            self.checks.append(f"{guard}({value_check})")
        return Union[annotation, None] if nullable else annotation  # noqa: UP007

    def _guard(self, path: str) -> str:
        """``e.a is UNSET or e.a.b is UNSET or `` for every optional step to ``path``."""
        parts = path.split(".")
        return "".join(f"e.{'.'.join(parts[: i + 1])} is UNSET or " for i in range(len(parts)))

    def pred(self, node: dict[str, Any], v: str, path: str, residual_of_root: bool = False) -> str:
        """A Python expression: the value ``v`` (present) meets ``node``. On the root struct only the
        keywords the struct types leave out are compiled (``residual_of_root``)."""
        node = self.schema.resolve(node)
        _check_keywords(node, path)
        parts: list[str] = []
        skip = {"type", "properties", "required"} if residual_of_root else set()
        kinds = [k for k in _kinds(node) if "type" not in skip]
        if kinds:
            parts.append(" or ".join(self._kind_expr(k, v) for k in kinds))
        for values in ([node["enum"]] if "enum" in node else []) + (
            [[node["const"]]] if "const" in node else []
        ):
            if all(type(x) is str for x in values):  # the common cases: one set lookup
                parts.append(f"type({v}) is str and {v} in {self._name('in', frozenset(values))}")
            elif all(type(x) in (int, float) for x in values):  # 1 == 1.0, but true is no number
                parts.append(f"type({v}) in (int, float) and {v} in {self._name('in', frozenset(values))}")
            else:
                parts.append(f"{self._name('json_in', _json_in)}({v}, {self._name('in', list(values))})")
        string_rules = []
        if "pattern" in node:
            faster = pattern_test(node["pattern"])
            string_rules.append(
                f"{self._name('re', ecma_pattern(node['pattern']).search)}({v}) is not None"
                if faster is None
                else f"{self._name('pt', faster)}({v})"
            )
        if "minLength" in node:
            string_rules.append(f"len({v}) >= {int(node['minLength'])}")
        if "maxLength" in node:
            string_rules.append(f"len({v}) <= {int(node['maxLength'])}")
        if "format" in node:
            string_rules.append(f"{self._name('fmt', FORMATS[node['format']])}({v})")
        if string_rules:
            parts.append(f"type({v}) is not str or ({' and '.join(string_rules)})")
        number_rules = []
        if "minimum" in node:
            number_rules.append(f"{v} >= {node['minimum']!r}")
        if "maximum" in node:
            number_rules.append(f"{v} <= {node['maximum']!r}")
        if number_rules:
            parts.append(f"type({v}) not in (int, float) or ({' and '.join(number_rules)})")
        if "required" in node and "required" not in skip:
            parts += [f"{v}.{self._member(path, m)} is not UNSET" for m in node["required"]]
        if "properties" in node and "properties" not in skip:
            for member, sub in node["properties"].items():
                access = f"{v}.{self._member(path, member)}"
                parts.append(f"{access} is UNSET or ({self.pred(sub, access, _join(path, member))})")
        if "not" in node:
            parts.append(f"not ({self.pred(node['not'], v, path)})")
        if "anyOf" in node:
            parts.append(" or ".join(f"({self.pred(sub, v, path)})" for sub in node["anyOf"]))
        parts += [f"({self.pred(sub, v, path)})" for sub in node.get("allOf", ())]
        if "if" in node:
            then = self.pred(node["then"], v, path) if "then" in node else "True"
            other = self.pred(node["else"], v, path) if "else" in node else "True"
            parts.append(f"(({then}) if ({self.pred(node['if'], v, path)}) else ({other}))")
        return " and ".join(f"({p})" for p in parts) or "True"

    def _member(self, path: str, member: str) -> str:
        """A member of the struct at ``path`` (the conditionals may only name declared members)."""
        cls = self.structs.get(path)
        if cls is None or member not in cls.__struct_fields__:
            raise ValueError(f"a rule at {path or '$'} names {member!r}, which that object does not declare")
        return member

    def _kind_expr(self, kind: str, v: str) -> str:
        if kind == "integer":
            return f"type({v}) is int or (type({v}) is float and {v}.is_integer())"
        if kind == "number":
            return f"type({v}) in (int, float)"
        if kind == "null":
            return f"{v} is None"
        if kind == "object":
            return f"isinstance({v}, {self._name('struct', msgspec.Struct)})"
        return f"type({v}) is {self._name('t', {'string': str, 'boolean': bool, 'array': list}[kind])}"


def _join(path: str, member: str) -> str:
    return f"{path}.{member}" if path else member


def _json_in(value: Any, values: list[Any]) -> bool:
    return any(json_equal(value, v) for v in values)
