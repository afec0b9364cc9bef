"""Silver's normalization: user-agent families, referrer domains, country names, time of day.

The user agent is parsed by `ua-parser` (its maintained regexes), once per distinct string: user agents
repeat heavily, so the distinct ones are parsed in a pandas function and joined back, broadcast.
Country names come from `pycountry` as a map literal (about 250 entries, no join).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import lru_cache

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

UA_COLUMNS = ("ua_browser_family", "ua_os_family", "ua_device_family")
_UA_SCHEMA = "user_agent string, " + ", ".join(f"{c} string" for c in UA_COLUMNS)


@lru_cache(maxsize=65536)
def parse_user_agent(text: str) -> tuple[str, str, str]:
    """(browser, OS, device) families of a user agent; ``Other`` where the parser knows none."""
    # lazy: loaded on the Spark worker that first parses a value, not by every importer of Silver
    from ua_parser import parse

    result = parse(text)
    ua, os, device = result.user_agent, result.os, result.device
    return (
        ua.family if ua else "Other",
        os.family if os else "Other",
        device.family if device else "Other",
    )


def _parse_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for batch in batches:
        families = [parse_user_agent(t) for t in batch["user_agent"]]
        out = pd.DataFrame(families, columns=list(UA_COLUMNS), dtype=object)
        out.insert(0, "user_agent", batch["user_agent"].to_numpy())
        yield out


def user_agent_families(events: DataFrame) -> DataFrame:
    """``(user_agent, ua_browser_family, ua_os_family, ua_device_family)``, one row per distinct user agent."""
    distinct = events.select("user_agent").where(F.col("user_agent").isNotNull()).distinct()
    return distinct.mapInPandas(_parse_batches, _UA_SCHEMA)


def with_user_agent_families(families: DataFrame) -> Callable[[DataFrame], DataFrame]:
    """Add the parsed families (null for a null user agent), joined on the user agent, broadcast."""

    def _(df: DataFrame) -> DataFrame:
        right = families.withColumnRenamed("user_agent", "_ua")
        return df.join(F.broadcast(right), df["user_agent"] == right["_ua"], "left").drop("_ua")

    return _


def referrer_domain(url: Column) -> Column:
    """``https://www.google.com/search`` → ``google.com``; null for no referrer or an unparsable one."""
    host = F.lower(F.try_parse_url(url, F.lit("HOST")))
    return F.regexp_replace(host, r"^www\.", "")


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    # lazy: loaded on the Spark worker that first parses a value, not by every importer of Silver
    import pycountry

    return {c.alpha_2: getattr(c, "common_name", c.name) for c in pycountry.countries}


def country_name(code: Column) -> Column:
    """ISO 3166-1 alpha-2 code → English short name (``DE`` → ``Germany``); null for an unknown code."""
    names = _country_names()
    table = F.create_map(*[F.lit(x) for kv in sorted(names.items()) for x in kv])
    return F.try_element_at(table, F.upper(F.trim(code)))


def with_normalized_columns(df: DataFrame) -> DataFrame:
    """Referrer domain, country name, and the event's hour (UTC), ISO weekday (1 = Monday) and weekend flag."""
    weekday = F.weekday("event_time") + 1
    return df.select(
        "*",
        referrer_domain(F.col("referrer")).alias("referrer_domain"),
        country_name(F.col("geo_country")).alias("geo_country_name"),
        F.hour("event_time").alias("event_hour"),
        weekday.alias("event_weekday"),
        (weekday >= 6).alias("is_weekend"),
    )
