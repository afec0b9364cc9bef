"""The shapes of a feature declaration: entity, feature, family (plain frozen data)."""

from __future__ import annotations

from dataclasses import dataclass, field

DTYPES = ("int64", "float64", "string", "bool", "float_array")
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
    name: str
    dtype: str  # one of DTYPES
    description: str  # the window and the formula, exactly
    when_empty: str = "zero"  # what the feature is when its window holds no input: one of EMPTY_RULES

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"feature {self.name}: dtype {self.dtype!r} is not one of {DTYPES}")
        if self.when_empty not in EMPTY_RULES:
            raise ValueError(
                f"feature {self.name}: when_empty {self.when_empty!r} is not one of {EMPTY_RULES}"
            )


@dataclass(frozen=True)
class FeatureFamily:
    name: str
    entity: Entity
    description: str
    features: tuple[Feature, ...]
    window_days: int  # the longest window: a Silver date D feeds feature dates D .. D + window_days - 1
    owner: str = "medallion"
    tags: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)


def window_text(days: int) -> str:
    """The one wording of a window: which events a feature of feature date D reads."""
    if days == 1:
        return "D itself (event_time in [D 00:00, D + 1 day 00:00) UTC)"
    return (
        f"the {days} days ending with D (event_time in [end of D − {days} days, end of D), "
        f"i.e. event dates D-{days - 1} .. D, UTC)"
    )
