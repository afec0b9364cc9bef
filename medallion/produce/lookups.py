"""The synthetic world events happen in, and the lookup tables Silver joins against.

`build_world(seed, users, items)` makes the item catalog, the users (with their devices, addresses and
PII) and the currency rates from the seed alone, so the producer's events and the lookup tables written
by `write_lookups` always agree: same ids, same countries and currencies, prices derived from the same
base prices. Only the users' signup dates depend on a second input, the date they are counted back from.

Lookup tables (one Parquet file each under ``<lake>/lookups/<name>/``, written as `medallion lookups load`
writes them: items and users replaced, currency rates added to the earlier dates):

- ``items``: item_id, category, brand, base_price_usd, popularity_rank (1 = most popular)
- ``users``: user_id, signup_date, country, city, segment, currency (no PII: that lives in events only)
- ``currency_rates``: currency, rate_to_usd (USD for one unit: ``price * rate_to_usd`` is USD), as_of_date

Why one module: the synthetic world (items, users, currency rates) is one seeded generation whose tables refer
to each other.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa

from medallion.core import catalog
from medallion.core.config import Config
from medallion.core.contract import CURRENCIES
from medallion.lookups.tables import store

DEFAULT_ITEMS = 2000
LOOKUP_TABLES = tuple(d.short_name for d in catalog.LOOKUPS)

# country: (currency, phone prefix, weight, cities as (name, lat, lon))
COUNTRIES: dict[str, tuple[str, str, float, tuple[tuple[str, float, float], ...]]] = {
    "US": (
        "USD",
        "+1",
        30,
        (
            ("New York", 40.71, -74.01),
            ("Los Angeles", 34.05, -118.24),
            ("Chicago", 41.88, -87.63),
            ("Houston", 29.76, -95.37),
            ("Seattle", 47.61, -122.33),
        ),
    ),
    "GB": (
        "GBP",
        "+44",
        10,
        (("London", 51.51, -0.13), ("Manchester", 53.48, -2.24), ("Leeds", 53.80, -1.55)),
    ),
    "DE": ("EUR", "+49", 9, (("Berlin", 52.52, 13.40), ("München", 48.14, 11.58), ("Hamburg", 53.55, 9.99))),
    "FR": ("EUR", "+33", 7, (("Paris", 48.86, 2.35), ("Lyon", 45.76, 4.84), ("Marseille", 43.30, 5.37))),
    "ES": ("EUR", "+34", 4, (("Madrid", 40.42, -3.70), ("Barcelona", 41.39, 2.17))),
    "IT": ("EUR", "+39", 4, (("Roma", 41.90, 12.50), ("Milano", 45.46, 9.19))),
    "NL": ("EUR", "+31", 3, (("Amsterdam", 52.37, 4.90), ("Rotterdam", 51.92, 4.48))),
    "JP": ("JPY", "+81", 7, (("Tokyo", 35.68, 139.69), ("Osaka", 34.69, 135.50))),
    "CA": (
        "CAD",
        "+1",
        6,
        (("Toronto", 43.65, -79.38), ("Vancouver", 49.28, -123.12), ("Montréal", 45.50, -73.57)),
    ),
    "AU": ("AUD", "+61", 5, (("Sydney", -33.87, 151.21), ("Melbourne", -37.81, 144.96))),
    "BR": ("BRL", "+55", 5, (("São Paulo", -23.55, -46.63), ("Rio de Janeiro", -22.91, -43.17))),
    "IN": ("INR", "+91", 6, (("Mumbai", 19.08, 72.88), ("Bengaluru", 12.97, 77.59), ("Delhi", 28.70, 77.10))),
}

# USD for one unit of the currency, before a small seeded jitter.
BASE_RATES = {
    "USD": 1.0,
    "EUR": 1.08,
    "GBP": 1.27,
    "JPY": 0.0067,
    "CAD": 0.73,
    "AUD": 0.66,
    "BRL": 0.18,
    "INR": 0.012,
}
ZERO_DECIMAL_CURRENCIES = frozenset({"JPY"})

# category: (weight, median price in USD, brands, search nouns)
CATEGORIES: dict[str, tuple[float, float, tuple[str, ...], tuple[str, ...]]] = {
    "electronics": (
        14,
        120,
        ("Voltix", "Sonara", "Pixelon", "Quanta"),
        ("headphones", "charger", "speaker", "monitor"),
    ),
    "books": (9, 18, ("Larkspur Press", "Northwind Books"), ("novel", "cookbook", "biography", "thriller")),
    "home": (10, 45, ("Hearthly", "Casabella", "Nordhem"), ("lamp", "blanket", "vase", "mug")),
    "clothing": (12, 40, ("Threadline", "Urbanite", "Alpaca Oak"), ("jacket", "t-shirt", "jeans", "sweater")),
    "shoes": (8, 85, ("Stridewell", "Kicksmith", "Trailbound"), ("sneakers", "boots", "sandals")),
    "toys": (6, 25, ("Playfort", "Tinkerbox", "Wonderkin"), ("puzzle", "plush", "board game", "blocks")),
    "sports": (7, 60, ("Peakform", "Ridgeline", "Aquaflex"), ("yoga mat", "dumbbells", "tent", "helmet")),
    "beauty": (8, 22, ("Lumiere", "Botanica", "Velvetine"), ("serum", "lipstick", "shampoo")),
    "grocery": (9, 9, ("Harvest Hill", "Green Basket"), ("coffee", "tea", "olive oil", "chocolate")),
    "garden": (5, 35, ("Verdant", "Rootwise"), ("hose", "planter", "seeds", "shears")),
    "automotive": (4, 55, ("Motorcade", "Gearhead"), ("wiper blades", "floor mats", "car charger")),
    "music": (4, 70, ("Resonant", "Fretworks"), ("guitar strings", "ukulele", "vinyl", "microphone")),
}
ADJECTIVES = (
    "wireless",
    "cheap",
    "best",
    "organic",
    "waterproof",
    "black",
    "large",
    "kids",
    "vintage",
    "gift",
)

# segment: (share of users, activity weight, signup days ago range)
SEGMENTS: dict[str, tuple[float, float, tuple[int, int]]] = {
    "new": (0.25, 0.6, (0, 60)),
    "regular": (0.45, 1.0, (60, 900)),
    "loyal": (0.22, 2.0, (365, 2000)),
    "vip": (0.08, 4.0, (200, 2500)),
}
FIRST_NAMES = (
    "Emma",
    "Liam",
    "Olivia",
    "Noah",
    "Zoë",
    "José",
    "Chloé",
    "Søren",
    "Aiko",
    "Priya",
    "Lucas",
    "Mia",
    "Mateo",
    "Hannah",
    "Yuki",
    "Arjun",
    "Sofia",
    "Ethan",
    "Amélie",
    "Lars",
    "Fatima",
    "Chen",
    "Isla",
)
LAST_NAMES = (
    "Smith",
    "Müller",
    "García",
    "Rossi",
    "Dubois",
    "Tanaka",
    "Patel",
    "Silva",
    "Jansen",
    "Brown",
    "Nowak",
    "Kim",
    "Ødegaard",
    "Martin",
    "Lopez",
    "Wilson",
    "Sato",
    "Singh",
    "Costa",
    "Fischer",
)
EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")
IPV4_FIRST_OCTETS = (24, 50, 68, 73, 81, 86, 92, 109, 151, 176, 185, 213)

# device type: (weight, ((os, weight, ((browser, weight), ...)), ...))
DEVICES = {
    "mobile": (
        0.55,
        (
            ("Android", 0.55, (("Chrome", 0.75), ("Samsung Internet", 0.15), ("Firefox", 0.10))),
            ("iOS", 0.45, (("Safari", 0.8), ("Chrome", 0.2))),
        ),
    ),
    "desktop": (
        0.35,
        (
            ("Windows", 0.6, (("Chrome", 0.65), ("Edge", 0.25), ("Firefox", 0.10))),
            ("macOS", 0.3, (("Safari", 0.5), ("Chrome", 0.45), ("Firefox", 0.05))),
            ("Linux", 0.1, (("Firefox", 0.5), ("Chrome", 0.5))),
        ),
    ),
    "tablet": (
        0.10,
        (
            ("iPadOS", 0.6, (("Safari", 0.85), ("Chrome", 0.15))),
            ("Android", 0.4, (("Chrome", 0.8), ("Samsung Internet", 0.2))),
        ),
    ),
}
UA_PLATFORM = {
    "Android": "Linux; Android 14; Pixel 8",
    "iOS": "iPhone; CPU iPhone OS 17_5 like Mac OS X",
    "iPadOS": "iPad; CPU OS 17_5 like Mac OS X",
    "Windows": "Windows NT 10.0; Win64; x64",
    "macOS": "Macintosh; Intel Mac OS X 14_5",
    "Linux": "X11; Linux x86_64",
}
UA_BROWSER = {
    "Chrome": "Chrome/{v}.0.0.0 Safari/537.36",
    "Firefox": "Firefox/{v}.0",
    "Safari": "Version/17.5 Safari/605.1.15",
    "Edge": "Chrome/{v}.0.0.0 Safari/537.36 Edg/{v}.0.0.0",
    "Samsung Internet": "SamsungBrowser/25.0 Chrome/{v}.0.0.0 Mobile Safari/537.36",
}


@dataclass(frozen=True)
class Item:
    item_id: str
    category: str
    brand: str
    base_price_usd: float
    popularity_rank: int


@dataclass(frozen=True)
class Device:
    os: str
    browser: str
    type: str
    user_agent: str
    ip: str


@dataclass(frozen=True)
class User:
    user_id: str
    signup_date: date
    country: str
    city: str
    lat: float
    lon: float
    segment: str
    currency: str
    activity: float
    name: str
    email: str
    phone: str
    devices: tuple[Device, ...]


@dataclass(frozen=True)
class World:
    """Everything the generator draws from; built from the seed only (and a date for signups)."""

    seed: int
    items: tuple[Item, ...]
    users: tuple[User, ...]
    rates: dict[str, float]
    as_of: date

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(CATEGORIES)


def _pick(rng: random.Random, weighted: dict[str, float] | tuple[tuple[str, float], ...]) -> str:
    pairs = list(weighted.items()) if isinstance(weighted, dict) else list(weighted)
    return rng.choices([k for k, _ in pairs], [w for _, w in pairs])[0]


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower().replace(" ", "")


def _device(rng: random.Random, ipv6: bool) -> Device:
    kind = _pick(rng, {k: v[0] for k, v in DEVICES.items()})
    oses = DEVICES[kind][1]
    os_name = _pick(rng, tuple((o[0], o[1]) for o in oses))
    browser = _pick(rng, next(o[2] for o in oses if o[0] == os_name))
    version = rng.randint(118, 131)
    agent = f"Mozilla/5.0 ({UA_PLATFORM[os_name]}) AppleWebKit/537.36 (KHTML, like Gecko) "
    agent += UA_BROWSER[browser].format(v=version)
    if ipv6:  # the documentation prefix: realistic shape, nobody's real address
        ip = f"2001:db8:{rng.getrandbits(16):x}:{rng.getrandbits(16):x}::{rng.getrandbits(16):x}"
    else:
        octets = (
            rng.choice(IPV4_FIRST_OCTETS),
            rng.randint(0, 255),
            rng.randint(0, 255),
            rng.randint(1, 254),
        )
        ip = ".".join(map(str, octets))
    return Device(os_name, browser, kind, agent, ip)


def _users(rng: random.Random, count: int, as_of: date) -> tuple[User, ...]:
    out = []
    segment_shares = {k: v[0] for k, v in SEGMENTS.items()}
    country_weights = {k: v[2] for k, v in COUNTRIES.items()}
    for n in range(1, count + 1):
        country = _pick(rng, country_weights)
        currency, phone_prefix, _, cities = COUNTRIES[country]
        city, lat, lon = rng.choice(cities)
        segment = _pick(rng, segment_shares)
        _, activity, (lo, hi) = SEGMENTS[segment]
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{_ascii(first)}.{_ascii(last)}{rng.randint(1, 99)}@{rng.choice(EMAIL_DOMAINS)}"
        phone = f"{phone_prefix}{rng.randint(200, 999)}{rng.randint(1000000, 9999999)}"
        ipv6 = rng.random() < 0.15
        devices = tuple(_device(rng, ipv6) for _ in range(1 if rng.random() < 0.6 else 2))
        out.append(
            User(
                user_id=f"u_{n:06d}",
                signup_date=as_of - timedelta(days=rng.randint(lo, hi)),
                country=country,
                city=city,
                lat=round(lat + rng.uniform(-0.05, 0.05), 5),
                lon=round(lon + rng.uniform(-0.05, 0.05), 5),
                segment=segment,
                currency=currency,
                activity=activity * rng.uniform(0.5, 1.5),
                name=f"{first} {last}",
                email=email,
                phone=phone,
                devices=devices,
            )
        )
    return tuple(out)


def _items(rng: random.Random, count: int) -> tuple[Item, ...]:
    names = list(CATEGORIES)
    weights = [CATEGORIES[c][0] for c in names]
    ranks = list(range(1, count + 1))
    rng.shuffle(ranks)  # popularity is independent of the id
    out = []
    for n in range(1, count + 1):
        category = rng.choices(names, weights)[0]
        _, median, brands, _ = CATEGORIES[category]
        price = max(0.99, round(median * rng.lognormvariate(0, 0.6)) - 0.01)
        out.append(Item(f"i_{n:05d}", category, rng.choice(brands), price, ranks[n - 1]))
    return tuple(out)


def build_world(seed: int, users: int, items: int = DEFAULT_ITEMS, as_of: date | None = None) -> World:
    """The synthetic world for ``seed``: ``users`` users, ``items`` items and the currency rates.

    ``as_of`` (default: today, UTC) is the date signups are counted back from; nothing else depends on it.
    """
    if users < 1 or items < 1:
        raise ValueError("a world needs at least one user and one item")
    as_of = as_of or datetime.now(UTC).date()
    jitter = {c: random.Random(f"{seed}:rate:{c}").uniform(0.985, 1.015) for c in CURRENCIES}
    rates = {c: BASE_RATES[c] * (1.0 if c == "USD" else jitter[c]) for c in CURRENCIES}
    return World(
        seed=seed,
        items=_items(random.Random(f"{seed}:items"), items),
        users=_users(random.Random(f"{seed}:users"), users, as_of),
        rates=rates,
        as_of=as_of,
    )


def local_price(world: World, item: Item, currency: str) -> float:
    """The item's price in ``currency``, as events carry it (whole units for zero-decimal currencies)."""
    value = item.base_price_usd / world.rates[currency]
    return float(round(value)) if currency in ZERO_DECIMAL_CURRENCIES else round(value, 2)


def lookup_tables(world: World) -> dict[str, pa.Table]:  # by the lookup's short name
    """The three lookup tables of ``world`` as Arrow tables."""
    items = world.items
    users = world.users
    return {
        catalog.ITEMS.short_name: pa.table(
            {
                "item_id": [i.item_id for i in items],
                "category": [i.category for i in items],
                "brand": [i.brand for i in items],
                "base_price_usd": pa.array([i.base_price_usd for i in items], pa.float64()),
                "popularity_rank": pa.array([i.popularity_rank for i in items], pa.int32()),
            }
        ),
        catalog.USERS.short_name: pa.table(
            {
                "user_id": [u.user_id for u in users],
                "signup_date": pa.array([u.signup_date for u in users], pa.date32()),
                "country": [u.country for u in users],
                "city": [u.city for u in users],
                "segment": [u.segment for u in users],
                "currency": [u.currency for u in users],
            }
        ),
        catalog.CURRENCY_RATES.short_name: pa.table(
            {
                "currency": list(world.rates),
                "rate_to_usd": pa.array(list(world.rates.values()), pa.float64()),
                "as_of_date": pa.array([world.as_of] * len(world.rates), pa.date32()),
            }
        ),
    }


def write_lookups(
    target: Config | str,
    seed: int | None = None,
    users: int | None = None,
    items: int = DEFAULT_ITEMS,
    as_of: date | None = None,
) -> dict[str, int]:
    """Write the lookup tables of the world for ``seed`` under ``<lake root>/lookups/``; rows per table.

    ``target`` is a Config (its lake root, and its produce.seed/users as defaults) or a lake root path
    (local, ``s3a://`` or ``hdfs://``). Each table is one Parquet file in its own directory, whose old
    contents are removed first, so re-running replaces the tables rather than adding to them.
    """
    if isinstance(target, Config):
        root = target.lake.root
        seed = target.produce.seed if seed is None else seed
        users = target.produce.users if users is None else users
    else:
        root = target
    if seed is None or users is None:
        raise ValueError("write_lookups needs seed and users when given a path rather than a Config")
    world = build_world(seed, users, items, as_of)
    return write_world_lookups(world, root)


def write_world_lookups(world: World, lake_root: str) -> dict[str, int]:
    """Write ``world``'s lookup tables under ``<lake_root>/lookups/`` as `medallion lookups load` does
    (`medallion.lookups.tables.store`): items and users replaced, the day's currency rates added to the
    earlier days' (a later run must not take the rate away from the events before its date); the rows
    each table holds."""

    tables = lookup_tables(world)
    return {
        lookup.short_name: store(lake_root, lookup, tables[lookup.short_name]).rows
        for lookup in catalog.LOOKUPS
    }
