"""The lookup tables Silver joins, declared once, read with their keys checked.

Each lookup's name, location, key and columns are the catalogue's (`catalog.LOOKUPS`); what Silver takes
from it is declared here (`JOINS`): the event columns matching the key and the columns it adds, renamed.
A key that is not unique would multiply the events joined to it, so it is an error before any join.
Currency rates are keyed by (currency, as_of_date): Silver takes the rate in force on the event's date.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion.core import catalog, lakefs
from medallion.core.config import Config
from medallion.core.errors import TerminalError
from medallion.lookups import missing_message
from medallion.silver.transforms import with_lookup


@dataclass(frozen=True)
class LookupJoin:
    """Silver's use of one lookup: ``on``, the event column matching the lookup's (one-column) key, and
    the lookup ``columns`` it adds, as ``{lookup column: Silver column}``."""

    table: catalog.Dataset
    on: tuple[str, ...]
    columns: Mapping[str, str] = field(default_factory=dict)


JOINS = (
    LookupJoin(catalog.ITEMS, ("item_id",), {"category": "item_category", "brand": "item_brand"}),
    LookupJoin(catalog.USERS, ("user_id",), {"segment": "user_segment", "signup_date": "user_signup_date"}),
)
RATES = catalog.CURRENCY_RATES  # as-of: see `medallion.silver.transforms.rates_in_force`


def read_lookups(spark: SparkSession, cfg: Config) -> dict[str, DataFrame]:
    """Every lookup Silver needs, by catalogue name; each one's key checked to be unique.

    A missing table is an error rather than a column of nulls: every event would then look valid.
    """
    out = {}
    for table in catalog.LOOKUPS:
        path = table.path(cfg)
        if not lakefs.exists(path):
            raise TerminalError(missing_message(table, path))
        df = spark.read.parquet(path)
        missing = [c for c in table.column_names if c not in df.columns]
        if missing:
            raise TerminalError(
                f"Lookup {table.name} at {path} has no column {', '.join(missing)}; it has "
                f"{', '.join(df.columns)}. Rewrite it with the catalogue's columns."
            )
        require_unique_key(df, table, path)
        out[table.name] = df
    return out


def require_unique_key(df: DataFrame, table: catalog.Dataset, where: str) -> None:
    """A TerminalError naming up to five keys that appear more than once in ``table``."""
    key = list(table.key)
    repeated = df.groupBy(*key).count().where(F.col("count") > 1).limit(5).collect()
    if repeated:
        shown = ", ".join("/".join(str(r[k]) for k in key) for r in repeated)
        raise TerminalError(
            f"Lookup {table.name} at {where} repeats its key ({', '.join(key)}): {shown}. A repeated key "
            "would multiply every event joined to it; keep one row per key."
        )


def joined(join: LookupJoin, lookup: DataFrame) -> Callable[[DataFrame], DataFrame]:
    """The transform that adds ``join``'s columns from ``lookup`` (a broadcast left join)."""
    return with_lookup(lookup, join.on[0], dict(join.columns))
