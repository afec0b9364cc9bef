"""Feast's online layout, the reader's half: keys, hash fields, and values decoded — no NumPy, no Arrow.

`medallion.serving.codec` describes the layout and builds whole batches of it column-wise for the
writers; this module is what a lookup needs, kept to the standard library (and mmh3) so that
``medallion features online`` and ``medallion serve`` start without importing NumPy or pyarrow.
"""

from __future__ import annotations

import struct
from typing import Any

import mmh3

STRING_TYPE = 2  # feast.value_type.ValueType.STRING


def field_name(view: str, feature: str) -> bytes:
    """The hash field of ``feature`` of ``view``: murmur3 32-bit, unsigned, little-endian."""
    return int(mmh3.hash(f"{view}:{feature}", signed=False)).to_bytes(4, "little")


def ts_field(view: str) -> bytes:
    return f"_ts:{view}".encode()


def entity_key_prefix(join_key: str) -> bytes:
    name = join_key.encode()
    return struct.pack("<III", 1, STRING_TYPE, len(name)) + name + struct.pack("<I", STRING_TYPE)


def entity_key(join_key: str, value: str, project: str) -> bytes:
    """One Redis key (the reader's path)."""
    raw = value.encode()
    return entity_key_prefix(join_key) + struct.pack("<I", len(raw)) + raw + project.encode()


_DOUBLE = struct.Struct("<d")


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def decode_value(raw: bytes | None) -> Any:
    """A Feast ``Value`` from Redis as the Python value Feast's SDK returns (None for null or missing)."""
    if not raw:
        return None
    tag = raw[0]
    if tag == 0x29 and len(raw) == 9:
        return _DOUBLE.unpack_from(raw, 1)[0]
    if tag == 0x20:
        return _signed(_varint(raw, 1)[0])
    if tag == 0x12:
        length, pos = _varint(raw, 1)
        if pos + length == len(raw):
            return raw[pos:].decode()
    if tag == 0x38 and len(raw) == 2:
        return raw[1] == 1
    if tag == 0x7A:
        length, pos = _varint(raw, 1)
        if length == 0:
            return []
        if raw[pos] == 0x0A:
            size, start = _varint(raw, pos + 1)
            if start + size == len(raw):
                return list(struct.unpack_from(f"<{size // 8}d", raw, start))
    return _decode_with_protobuf(raw)


def _decode_with_protobuf(raw: bytes) -> Any:
    """Any other Value (written by another writer): through Feast's protobuf class."""
    # lazy: feast takes seconds to import: only where Feast's own objects are needed
    from feast.protos.feast.types.Value_pb2 import Value

    value = Value.FromString(raw)
    which = value.WhichOneof("val")
    if which is None or which == "null_val":
        return None
    member = getattr(value, which)
    return list(member.val) if hasattr(member, "val") else member


def decode_timestamp(raw: bytes | None) -> tuple[int, int]:
    """``(seconds, nanos)`` of a serialized protobuf Timestamp; (0, 0) when absent."""
    seconds = nanos = 0
    if raw:
        pos = 0
        while pos < len(raw):
            tag = raw[pos]
            value, pos = _varint(raw, pos + 1)
            if tag == 0x08:
                seconds = _signed(value)
            elif tag == 0x10:
                nanos = value
    return seconds, nanos
