"""Feast's Redis layout, encoded column-wise with pyarrow and NumPy, and decoded without Feast.

What Feast 0.67 writes for one entity of one feature view (``entity_key_serialization_version`` 3):

- the key is the serialized entity key followed by the project name: ``<I n_keys>``, then per join key
  ``<I STRING=2> <I len> name``, then per value ``<I type> <I len> bytes`` (little-endian uint32s);
- the key is a hash; each feature's field is the 4-byte little-endian unsigned murmur3 (32 bit) of
  ``"<view>:<feature>"`` and holds the serialized ``feast.types.Value`` protobuf; a null (and a NaN
  double, which Feast treats as null) is the empty string;
- ``_ts:<view>`` holds the serialized ``google.protobuf.Timestamp`` of the row's event time.

The protobuf wire format of the Values we write is small and stable: a oneof member is always written,
even when it holds the default value (``int64_val = 0`` is ``20 00``). Tags: ``0x12`` string_val,
``0x20`` int64_val (varint), ``0x29`` double_val (8 bytes), ``0x38`` bool_val, ``0x7a`` double_list_val
(a ``DoubleList`` message: ``0x0a`` + packed doubles). ``tests/serving/test_materialize.py`` holds what
the writer leaves in Redis to what Feast's own writer leaves, byte for byte, so a Feast upgrade that
changes a byte fails there.

Building the bytes column by column (one NumPy or Arrow kernel per column and step, no Python per value)
and then a batch's commands as one byte matrix (`CommandMatrix`) is what makes the writer fast. Keys,
fields and decoding, all a lookup needs, are in `medallion.serving.wire` (standard library only),
re-exported here.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from medallion.features.model import DType
from medallion.serving.wire import (  # noqa: F401 (the reader's half, re-exported)
    STRING_TYPE,
    decode_timestamp,
    decode_value,
    entity_key,
    entity_key_prefix,
    field_name,
    ts_field,
)


@functools.cache
def _empty() -> pa.Scalar:
    # Built on first use: a pyarrow scalar made at import time would import pandas (about 0.5 s).
    return pa.scalar(b"", pa.large_binary())


# --- column-wise building blocks ---------------------------------------------------------------------


def _from_lengths(data: np.ndarray, lengths: np.ndarray) -> pa.BinaryArray:
    """A binary array whose i-th value is the next ``lengths[i]`` bytes of ``data``."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return pa.LargeBinaryArray.from_buffers(
        pa.large_binary(),
        len(lengths),
        [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data, dtype=np.uint8))],
    )


def _rows(matrix: np.ndarray, lengths: np.ndarray) -> pa.BinaryArray:
    """Row i of ``matrix`` cut to its first ``lengths[i]`` bytes, as one binary value per row."""
    width = matrix.shape[1]
    keep = np.arange(width) < lengths[:, None]
    return _from_lengths(matrix[keep], lengths)


def _varint_matrix(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Protobuf varints of ``values`` (as unsigned 64-bit: negatives take 10 bytes) in a (n, w) matrix,
    w the longest varint of them (10 at most)."""
    v = values.astype(np.int64, copy=False).view(np.uint64)
    top = int(v.max()) if len(v) else 0
    width = max(1, (top.bit_length() + 6) // 7)
    lengths = np.ones(len(v), dtype=np.int64)
    for k in range(1, width):
        lengths += (v >> np.uint64(7 * k)) > 0
    matrix = np.empty((len(v), width), dtype=np.uint8)
    for k in range(width):
        group = ((v >> np.uint64(7 * k)) & np.uint64(0x7F)).astype(np.uint8)
        matrix[:, k] = group | ((lengths > k + 1).astype(np.uint8) << 7)
    return matrix, lengths


def varints(values: np.ndarray) -> pa.BinaryArray:
    matrix, lengths = _varint_matrix(values)
    return _rows(matrix, lengths)


def _tagged(tag: int, matrix: np.ndarray, lengths: np.ndarray, valid: np.ndarray) -> pa.BinaryArray:
    """``tag`` + the row's bytes where ``valid``, the empty string (Feast's null) elsewhere."""
    out = np.empty((matrix.shape[0], matrix.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = tag
    out[:, 1:] = matrix
    return _rows(out, np.where(valid, lengths + 1, 0))


def _valid(array: pa.Array) -> np.ndarray:
    if array.null_count == 0:
        return np.ones(len(array), dtype=bool)
    return np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _join(*parts: Any) -> pa.Array:
    return pc.binary_join_element_wise(*parts, _empty())


def _tagged_matrix(
    tag: int, matrix: np.ndarray, lengths: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`_tagged` before its rows are cut: the matrix and each row's length (0 where not ``valid``)."""
    out = np.empty((matrix.shape[0], matrix.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = tag
    out[:, 1:] = matrix
    return out, np.where(valid, lengths + 1, 0)


def _fixed_width(array: pa.Array, dtype: DType) -> tuple[np.ndarray, np.ndarray] | None:
    """The serialized Values of a fixed-width ``dtype`` (float64, int64, bool) as a matrix and row
    lengths (0: null); None for the others."""
    n = len(array)
    if dtype == "float64":
        values = array.fill_null(0.0).to_numpy()
        valid = _valid(array) & ~np.isnan(values)
        return _tagged_matrix(0x29, values.astype("<f8").view(np.uint8).reshape(n, 8), np.full(n, 8), valid)
    if dtype == "int64":
        matrix, lengths = _varint_matrix(array.fill_null(0).to_numpy())
        return _tagged_matrix(0x20, matrix, lengths, _valid(array))
    if dtype == "bool":
        bits = np.asarray(array.fill_null(False).to_numpy(zero_copy_only=False), dtype=np.uint8)
        return _tagged_matrix(0x38, bits.reshape(n, 1), np.ones(n, dtype=np.int64), _valid(array))
    return None


def value_matrix(array: pa.Array, dtype: DType) -> tuple[np.ndarray, np.ndarray]:
    """`encode_values` as a matrix whose row i holds value i in its first ``lengths[i]`` bytes."""
    array = array.cast(DType(dtype).arrow())
    fixed = _fixed_width(array, dtype)
    return fixed if fixed is not None else padded(encode_values(array, dtype))


def encode_values(array: pa.Array, dtype: DType) -> pa.Array:
    """The serialized Feast ``Value`` of every element of ``array`` (declared ``dtype``); b"" for null."""
    array = array.cast(DType(dtype).arrow())
    fixed = _fixed_width(array, dtype)
    if fixed is not None:
        return _rows(*fixed)
    if dtype == "string":
        raw = array.cast(pa.large_binary())
        lengths = pc.binary_length(raw).fill_null(0).to_numpy()
        return _join(pa.scalar(b"\x12", pa.large_binary()), varints(lengths), raw).fill_null(_empty())
    if dtype == "float_array":
        return _encode_double_lists(array)
    raise ValueError(f"no Feast encoding for dtype {dtype!r}")


def _encode_double_lists(array: pa.ListArray) -> pa.Array:
    """``double_list_val``: 0x7a, varint(len(DoubleList)), and the DoubleList ``0a varint(8k) doubles``
    (an empty list is an empty DoubleList: ``7a 00``). Null elements inside a list become NaN."""
    valid = _valid(array)
    offsets = array.offsets.to_numpy().astype(np.int64)
    counts = np.diff(offsets)
    flat = array.values.fill_null(float("nan")).to_numpy()[offsets[0] : offsets[-1]].astype("<f8")
    doubles = _from_lengths(flat.view(np.uint8), counts * 8)
    byte_lengths = counts * 8
    header_matrix, header_lengths = _varint_matrix(byte_lengths)
    inner_header = _tagged(0x0A, header_matrix, header_lengths, byte_lengths > 0)
    inner_lengths = np.where(byte_lengths > 0, 1 + header_lengths + byte_lengths, 0)
    outer_matrix, outer_lengths = _varint_matrix(inner_lengths)
    outer = _tagged(0x7A, outer_matrix, outer_lengths, np.ones(len(array), dtype=bool))
    encoded = _join(outer, inner_header, doubles)
    return pc.if_else(pa.array(valid), encoded, _empty())


def encode_timestamps(micros: np.ndarray) -> pa.BinaryArray:
    """Serialized ``google.protobuf.Timestamp`` of each instant (microseconds since the epoch, UTC)."""
    seconds = np.floor_divide(micros, 1_000_000)
    nanos = (micros - seconds * 1_000_000) * 1000
    s_matrix, s_lengths = _varint_matrix(seconds)
    n_matrix, n_lengths = _varint_matrix(nanos)
    s = _tagged(0x08, s_matrix, s_lengths, seconds != 0)
    ns = _tagged(0x10, n_matrix, n_lengths, nanos != 0)
    return _join(s, ns)


def encode_entity_keys(join_key: str, values: pa.Array, project: str) -> pa.Array:
    """The Redis key of each entity value (a string join key), as Feast builds it."""
    raw = values.cast(pa.string()).cast(pa.large_binary())
    lengths = pc.binary_length(raw).to_numpy().astype("<u4")
    le32 = _from_lengths(lengths.view(np.uint8), np.full(len(lengths), 4))
    prefix = pa.scalar(entity_key_prefix(join_key), pa.large_binary())
    return _join(prefix, le32, raw, pa.scalar(project.encode(), pa.large_binary()))


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


# --- a batch of commands as one matrix -----------------------------------------------------------------


def padded(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A binary array as a matrix, one value per row padded to the longest, and the values' lengths."""
    array = values.cast(pa.large_binary())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    array = array.fill_null(_empty())
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    lengths = np.diff(offsets)
    data = array.buffers()[2]
    flat = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(1, dtype=np.uint8)
    width = max(1, int(lengths.max()) if len(lengths) else 1)
    index = np.minimum(offsets[:-1, None] + np.arange(width), max(len(flat) - 1, 0))
    return flat[index], lengths


def _length_headers(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``$<length>\\r\\n`` of each RESP bulk string, as a matrix and row lengths."""
    digits = np.ones(len(lengths), dtype=np.int64)
    top = int(lengths.max()) if len(lengths) else 0
    for power in range(1, len(str(top))):
        digits += lengths >= 10**power
    width = len(str(top))
    out = np.zeros((len(lengths), width + 3), dtype=np.uint8)
    out[:, 0] = ord("$")
    for j in range(width):  # digit j from the left, where the length has one
        place = np.maximum(digits - 1 - j, 0)
        out[:, 1 + j] = np.where(j < digits, (lengths // 10**place) % 10 + ord("0"), 0)
    rows = np.arange(len(lengths))
    out[rows, 1 + digits] = ord("\r")
    out[rows, 2 + digits] = ord("\n")
    return out, digits + 3


class CommandMatrix:
    """A batch of RESP commands built as one byte matrix, a row per command group (HSET, EXPIRE), its
    pieces side by side: constant bytes and variable ones (each row's first ``lengths[i]`` bytes of the
    piece). One boolean mask says which bytes each row keeps, and one extraction turns the matrix into
    the commands back to back: each value is copied about twice, where joining binary arrays piece by
    piece copied it once per step."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.pieces: list[tuple[np.ndarray, np.ndarray | None]] = []

    def constant(self, data: bytes) -> None:
        if self.pieces and self.pieces[-1][1] is None:  # merged with a constant just before
            data = self.pieces.pop()[0].tobytes() + data
        self.pieces.append((np.frombuffer(data, dtype=np.uint8), None))

    def variable(self, matrix: np.ndarray, lengths: np.ndarray) -> None:
        self.pieces.append((matrix, lengths))

    def bulk(self, matrix: np.ndarray, lengths: np.ndarray) -> None:
        """One RESP bulk string per row: ``$<len>\\r\\n``, the value, ``\\r\\n``."""
        if len(lengths) and int(lengths.max()) < 10:  # one length digit (the numbers): one piece
            framed = np.empty((self.rows, matrix.shape[1] + 4), dtype=np.uint8)
            framed[:, 0] = ord("$")
            framed[:, 1] = lengths + ord("0")
            framed[:, 2:4] = np.frombuffer(b"\r\n", dtype=np.uint8)
            framed[:, 4:] = matrix
            self.variable(framed, lengths + 4)
        else:
            self.variable(*_length_headers(lengths))
            self.variable(matrix, lengths)
        self.constant(b"\r\n")

    def build(self) -> np.ndarray:
        width = sum(m.shape[-1] for m, _ in self.pieces)
        out = np.empty((self.rows, width), dtype=np.uint8)
        keep = np.ones((self.rows, width), dtype=bool)
        at = 0
        for matrix, lengths in self.pieces:
            w = matrix.shape[-1]
            out[:, at : at + w] = matrix
            if lengths is not None:
                np.less(np.arange(w), lengths[:, None], out=keep[:, at : at + w])
            at += w
        return out[keep]


def hset_matrix(
    keys: pa.Array,
    fields: Sequence[bytes],
    values: Sequence[tuple[np.ndarray, np.ndarray]],
    ttl_seconds: int | None,
) -> np.ndarray:
    """One RESP ``HSET key f1 v1 f2 v2 ...`` (then ``EXPIRE key ttl`` when ``ttl_seconds``) per row, back
    to back, given the keys and each column as `value_matrix` returns it."""
    commands = CommandMatrix(len(keys))
    key_matrix = padded(keys)
    commands.constant(b"*%d\r\n%s" % (2 + 2 * len(fields), _bulk(b"HSET")))
    commands.bulk(*key_matrix)
    for name, (matrix, lengths) in zip(fields, values, strict=True):
        commands.constant(_bulk(name))
        commands.bulk(matrix, lengths)
    if ttl_seconds:
        commands.constant(b"*3\r\n" + _bulk(b"EXPIRE"))
        commands.bulk(*key_matrix)
        commands.constant(_bulk(str(int(ttl_seconds)).encode()))
    return commands.build()
