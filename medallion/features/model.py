"""The shapes of a feature declaration: entity, feature, family (plain frozen data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class DType(StrEnum):
    """A feature's type, and what it is in each engine that stores or serves it: one place for the Spark
    column type (Gold's Parquet), the Feast type (the feature views), the Arrow type (materialize's
    Redis encoder, the online reader) and the pandas dtype (training sets). Its value is the word a
    declaration uses (``"int64"``)."""

    INT64 = "int64"
    FLOAT64 = "float64"
    STRING = "string"
    BOOL = "bool"
    FLOAT_ARRAY = "float_array"

    @property
    def spark(self) -> str:
        """The Spark SQL type string of the Gold column."""
        return _SPARK[self]

    @property
    def pandas(self) -> str:
        """The pandas dtype a column of it takes (nullable where pandas has one; a list is an object)."""
        return _PANDAS[self]

    @property
    def numeric(self) -> bool:
        return self in (DType.INT64, DType.FLOAT64)

    def arrow(self) -> Any:
        """The ``pyarrow.DataType`` (pyarrow is imported here, not when the declarations load)."""
        # lazy: the declarations load without pyarrow (tests/test_catalog.py)
        import pyarrow as pa

        if self is DType.FLOAT_ARRAY:
            return pa.list_(pa.float64())
        return {
            DType.INT64: pa.int64,
            DType.FLOAT64: pa.float64,
            DType.STRING: pa.string,
            DType.BOOL: pa.bool_,
        }[self]()

    def feast(self) -> Any:
        """The ``feast.types`` type (``import feast`` takes seconds: only when asked)."""
        # lazy: feast takes seconds to import: only for Feast's own objects
        from feast import types

        if self is DType.FLOAT_ARRAY:
            return types.Array(types.Float64)
        return {
            DType.INT64: types.Int64,
            DType.FLOAT64: types.Float64,
            DType.STRING: types.String,
            DType.BOOL: types.Bool,
        }[self]


_SPARK = {
    DType.INT64: "long",
    DType.FLOAT64: "double",
    DType.STRING: "string",
    DType.BOOL: "boolean",
    DType.FLOAT_ARRAY: "array<double>",
}
_PANDAS = {
    DType.INT64: "Int64",
    DType.FLOAT64: "float64",
    DType.STRING: "string",
    DType.BOOL: "boolean",
    DType.FLOAT_ARRAY: "object",
}
DTYPES = tuple(DType)
EMPTY_RULES = ("zero", "null", "nan", "not_applicable")


@dataclass(frozen=True)
class Entity:
    """What a family's rows are about: Feast's entity, with its join key."""

    name: str
    join_key: str
    description: str


USER = Entity("user", "user_id", "A user of the product (a pseudonymous id: Gold carries no PII).")
ITEM = Entity("item", "item_id", "An item of the catalogue.")
ENTITIES = (USER, ITEM)


@dataclass(frozen=True)
class Feature:
    """One feature. ``min``/``max`` (numeric features) and ``max_null_rate`` are what Gold's quality rules
    hold its values to (`medallion.quality.features`); a user's rule file may override them."""

    name: str
    dtype: DType | str  # a DType, or its value ("int64"), which becomes the DType: read it as `type`
    description: str  # the window and the formula, exactly
    when_empty: str = "zero"  # what the feature is when its window holds no input: one of EMPTY_RULES
    min: float | None = None  # the declared range of a numeric feature (int64: 0 when not given; ignored
    # for other types, so that a retyped feature keeps its declaration valid)
    max: float | None = None
    max_null_rate: float | None = None  # share of null values allowed; default from when_empty

    def __post_init__(self) -> None:
        if self.dtype not in set(DType):
            known = ", ".join(DType)
            raise ValueError(f"feature {self.name}: dtype {self.dtype!r} is not one of {known}")
        object.__setattr__(self, "dtype", DType(self.dtype))
        if self.when_empty not in EMPTY_RULES:
            raise ValueError(
                f"feature {self.name}: when_empty {self.when_empty!r} is not one of {EMPTY_RULES}"
            )
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"feature {self.name}: min {self.min} is above max {self.max}")
        if self.max_null_rate is not None and not 0 <= self.max_null_rate <= 1:
            raise ValueError(f"feature {self.name}: max_null_rate is a share, between 0 and 1")

    @property
    def type(self) -> DType:
        """The declared type, with its Spark, Feast, Arrow and pandas types."""
        return DType(self.dtype)

    @property
    def numeric(self) -> bool:
        return str(self.dtype) in ("int64", "float64")

    @property
    def vector(self) -> bool:
        return str(self.dtype) == "float_array"

    @property
    def bounds(self) -> tuple[float | None, float | None]:
        """The range its values must lie in: the declared one; counts (``int64``) are ≥ 0 by default."""
        if self.min is None and self.max is None and str(self.dtype) == "int64":
            return 0.0, None
        return self.min, self.max

    @property
    def null_limit(self) -> float:
        """The share of null values allowed: the declared one; else any for a feature declared null when
        its window is empty, none for the others."""
        if self.max_null_rate is not None:
            return self.max_null_rate
        return 1.0 if self.when_empty == "null" else 0.0


@dataclass(frozen=True)
class FeatureFamily:
    name: str
    entity: Entity
    description: str
    features: tuple[Feature, ...]
    window_days: int  # the longest window: a Silver date D feeds feature dates D .. D + window_days - 1
    owner: str = "medallion"
    # rows per feature date / entities with a Silver event in the window (Gold's `coverage` quality rule)
    coverage: tuple[float, float] = (0.95, 1.0)
    tags: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def column(self, key: str, days: int | None = None) -> str:
        """The declared name of feature ``key`` over a window of ``days``: how a builder names the columns
        it computes, so a name is spelled only by its declaration (``windowed``) and a builder asking for a
        feature the family does not declare fails when its plan is built, not as a missing column later."""
        name = windowed(key, days)
        if name not in self.feature_names:
            raise KeyError(f"{self.name} declares no feature {name!r}")
        return name


def windowed(key: str, days: int | None = None) -> str:
    """The one spelling of a feature's name: ``events`` over 7 days is ``events_7d``; without a window,
    the key itself."""
    return key if days is None else f"{key}_{days}d"


def window_text(days: int) -> str:
    """The one wording of a window: which events a feature of feature date D reads."""
    if days == 1:
        return "D itself (event_time in [D 00:00, D + 1 day 00:00) UTC)"
    return (
        f"the {days} days ending with D (event_time in [end of D − {days} days, end of D), "
        f"i.e. event dates D-{days - 1} .. D, UTC)"
    )
