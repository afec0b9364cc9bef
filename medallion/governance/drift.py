"""Feature drift: the math (PSI, KS, equal-frequency cuts), the per-date profiles it is computed from, and
the stored results; no pyspark here.

For a feature date D and a reference window R (the ``drift.reference_days`` feature dates before D, or a
fixed baseline period), per feature:

- **numeric** (``int64``, ``float64``): the cut points are the reference's quantiles at k/B,
  k = 1..B-1 (B = ``drift.bins``): cut_k is the smallest value v with F_R(v) ≥ k/B, numpy's
  ``inverted_cdf``. Repeated cut points merge, so a feature with few distinct values gets fewer bins.
  Bin i holds the values x with cut_i < x ≤ cut_{i+1} (bin 0 from −∞, the last to +∞).
- **categorical** (``string``, ``bool``): one bin per category seen on either side.
- **PSI** = Σ (q_i − p_i) · ln(q_i / p_i), p the reference's and q D's share of each bin. Empty bins:
  a share of 0 counts as ε (``drift.epsilon``, 1e-6), without renormalizing; a bin empty on both sides
  adds 0. So a category new in D with share q adds about q · ln(q / ε).
- **KS** (numeric only) = sup_x |F_R(x) − F_D(x)|, evaluated at every value where either step function
  jumps.

Nulls and non-finite values (NaN, ±∞) are not part of either distribution: feature quality counts them.
A side with fewer than ``drift.min_rows`` values gives no PSI or KS for that feature and date (the
result says why).

**Profiles.** Each Gold run summarizes every feature date it writes once, as a `Profile` stored per table
and date (dataset ``quality.drift_profiles``): per numeric feature its finite values' distribution as a
step function (`Steps`), per categorical feature the count of each category. A feature with at most
`KNOTS` distinct values on the date keeps them all, with their counts: exact. One with more keeps
`KNOTS` exact order statistics, those of rank ⌈j·n / KNOTS⌉ (j = 1..KNOTS), so every step is within n /
KNOTS of the true count. Drift compares D's profile with the sum of its reference dates' profiles; a
later run reads the reference's stored profiles, never its rows, so its cost follows the dates it
writes, not the reference's length or the table's. Where every profile involved is exact, PSI and KS
are exactly the definitions above (the same KS as ``scipy.stats.ks_2samp``); otherwise KS is within
2 / KNOTS (0.004) of it and each bin's share within 1 / KNOTS.
`medallion.governance.drift_spark` builds the profiles; the functions here are the definitions, used by
the tests as the reference, by the comparison, and by `status` to read results.

Drift is judged only when it can be: a feature date whose end (the next midnight, UTC) is after the
newest event time Silver is known to hold (Gold's input, or a later Silver date), or after now, is
incomplete — its result says "not judged: incomplete", with no numbers and no alert — and so is a date
whose reference holds fewer than
``drift.min_reference_days`` complete dates with rows (all of a shorter configured reference).

Results: one JSON file per Gold table and feature date, ``<quality.drift>/<table>/<feature_date>.json``
(a re-run of the date replaces it); profiles beside them in ``<quality.drift_profiles>/<table>/``.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from medallion.core import catalog, lakefs

if TYPE_CHECKING:
    from medallion.core.config import Config

K = TypeVar("K", bound=Hashable)
NUMERIC_DTYPES = ("int64", "float64")
CATEGORICAL_DTYPES = ("string", "bool")
KNOTS = 512
"""Steps of a numeric feature's profile per date at most: exact up to this many distinct values."""


# --- the math -----------------------------------------------------------------------------------------


def psi(reference: Sequence[float], current: Sequence[float], epsilon: float = 1e-6) -> float:
    """PSI of two aligned count (or share) vectors; see the module's docstring for the empty-bin rule."""
    if len(reference) != len(current):
        raise ValueError(f"{len(reference)} reference bins against {len(current)} current bins")
    total_r, total_c = float(sum(reference)), float(sum(current))
    if total_r <= 0 or total_c <= 0:
        raise ValueError("PSI needs values on both sides")
    out = 0.0
    for r, c in zip(reference, current, strict=True):
        p = max(r / total_r, epsilon)
        q = max(c / total_c, epsilon)
        out += (q - p) * math.log(q / p)
    return out


def categorical_psi(reference: Mapping[str, int], current: Mapping[str, int], epsilon: float = 1e-6) -> float:
    """PSI over the union of the categories of both sides."""
    keys = sorted(set(reference) | set(current))
    return psi([reference.get(k, 0) for k in keys], [current.get(k, 0) for k in keys], epsilon)


def quantile_cuts(values: Sequence[float], counts: Sequence[int], bins: int) -> list[float]:
    """The reference's cut points: for k = 1..bins-1 the smallest value v with F(v) ≥ k/bins, repeated
    ones merged. ``values`` sorted ascending and distinct, ``counts`` their reference counts."""
    total = sum(counts)
    if total <= 0:
        return []
    cuts: list[float] = []
    cumulative, k = 0, 1
    for v, n in zip(values, counts, strict=True):
        cumulative += n
        while k < bins and cumulative * bins >= k * total:  # integers: no rounding at the edges
            if not cuts or cuts[-1] != v:
                cuts.append(v)
            k += 1
    return cuts


def bin_of(cuts: Sequence[float], x: float) -> int:
    """The bin of ``x``: the number of cut points strictly below it."""
    return bisect.bisect_left(cuts, x)


def bin_counts(cuts: Sequence[float], values: Sequence[float], counts: Sequence[int]) -> list[int]:
    out = [0] * (len(cuts) + 1)
    for v, n in zip(values, counts, strict=True):
        out[bin_of(cuts, v)] += n
    return out


def ks_statistic(values: Sequence[float], reference: Sequence[int], current: Sequence[int]) -> float:
    """sup |F_R − F_D| over ``values`` (sorted, distinct: the union of both sides' values), given each
    value's count on either side."""
    total_r, total_c = sum(reference), sum(current)
    if total_r <= 0 or total_c <= 0:
        raise ValueError("KS needs values on both sides")
    cr = cc = 0
    best = 0.0
    for r, c in zip(reference, current, strict=True):
        cr += r
        cc += c
        best = max(best, abs(cr / total_r - cc / total_c))
    return best


def value_counts(sample: Sequence[K]) -> dict[K, int]:
    out: dict[K, int] = {}
    for x in sample:
        out[x] = out.get(x, 0) + 1
    return out


def numeric_drift(
    reference: Sequence[float], current: Sequence[float], bins: int = 10, epsilon: float = 1e-6
) -> tuple[float, float]:
    """(PSI, KS) of two raw samples, by the definitions above (the reference implementation)."""
    ref, cur = value_counts(reference), value_counts(current)
    values = sorted(set(ref) | set(cur))
    r = [ref.get(v, 0) for v in values]
    c = [cur.get(v, 0) for v in values]
    ref_values = sorted(ref)
    cuts = quantile_cuts(ref_values, [ref[v] for v in ref_values], bins)
    return psi(bin_counts(cuts, values, r), bin_counts(cuts, values, c), epsilon), ks_statistic(values, r, c)


# --- profiles -----------------------------------------------------------------------------------------


@dataclass
class Steps:
    """A numeric feature's distribution on one date as a step function: ``values`` ascending and distinct,
    ``cumulative[i]`` the number of values ≤ ``values[i]`` (the last is the count of finite values)."""

    values: list[float]
    cumulative: list[int]

    @property
    def total(self) -> int:
        return self.cumulative[-1] if self.cumulative else 0

    def at(self, grid: Sequence[float] | np.ndarray) -> np.ndarray:
        """The number of values ≤ each of ``grid`` (sorted ascending)."""
        # prepended 0: the count below the first value, so `below` (values ≤ each point) indexes it directly
        cumulative = np.concatenate([[0], np.asarray(self.cumulative, dtype=np.int64)])
        below = np.searchsorted(np.asarray(self.values, dtype=np.float64), grid, side="right")
        return cumulative[below]


@dataclass
class Profile:
    """One Gold table's feature date, as drift compares it (see the module's docstring)."""

    table: str
    feature_date: str
    numeric: dict[str, Steps] = field(default_factory=dict)
    categorical: dict[str, dict[str, int]] = field(default_factory=dict)
    knots: int = KNOTS
    run_id: str = ""

    def to_json(self) -> str:
        data = asdict(self)
        data["numeric"] = {k: [v.values, v.cumulative] for k, v in self.numeric.items()}
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Profile:
        data = json.loads(text)
        data["numeric"] = {k: Steps(list(v[0]), list(v[1])) for k, v in data.get("numeric", {}).items()}
        return cls(**data)


def compare_numeric(
    reference: Sequence[Steps], current: Steps, bins: int, epsilon: float
) -> tuple[float, float, int]:
    """(PSI, KS, bins used) of ``current`` against the sum of the ``reference`` dates' steps, by the
    definitions above: on the union of every step's values, where both cumulative functions jump. The
    same integer counts and the same divisions as `quantile_cuts`, `bin_counts` and `ks_statistic`, in
    NumPy (those, in Python, took a second a run for one family's 30 dates)."""
    grid = np.unique(np.concatenate([np.asarray(s.values, dtype=np.float64) for s in [*reference, current]]))
    ref_cumulative = np.stack([s.at(grid) for s in reference]).sum(axis=0)
    cur_cumulative = current.at(grid)
    ref, cur = np.diff(ref_cumulative, prepend=0), np.diff(cur_cumulative, prepend=0)
    total_r, total_c = int(ref_cumulative[-1]), int(cur_cumulative[-1])
    if total_r <= 0 or total_c <= 0:
        raise ValueError("KS needs values on both sides")
    # cut_k: the smallest value whose reference count reaches k/bins of the total (integers at the edges)
    first = np.searchsorted(ref_cumulative * bins, np.arange(1, bins) * total_r, side="left")
    cuts = np.unique(grid[first])
    where = np.searchsorted(cuts, grid, side="left")
    value = psi(
        np.bincount(where, ref, len(cuts) + 1).astype(np.int64).tolist(),
        np.bincount(where, cur, len(cuts) + 1).astype(np.int64).tolist(),
        epsilon,
    )
    ks = float(np.max(np.abs(ref_cumulative / total_r - cur_cumulative / total_c)))
    return value, ks, len(cuts) + 1


def profile_dir(cfg: Config, table: str) -> str:
    return lakefs.join(catalog.FEATURE_PROFILES.path(cfg), table)


def write_profile(cfg: Config, profile: Profile) -> None:
    lakefs.write_text(
        lakefs.join(profile_dir(cfg, profile.table), f"{profile.feature_date}.json"), profile.to_json()
    )


def read_profile(cfg: Config, table: str, feature_date: str) -> Profile | None:
    """The stored profile of ``table``'s ``feature_date``, or None when there is none."""
    try:
        return Profile.from_json(
            lakefs.read_text(lakefs.join(profile_dir(cfg, table), f"{feature_date}.json"))
        )
    except FileNotFoundError:
        return None


def forget_profiles(cfg: Config, table: str, feature_dates: Iterable[str]) -> None:
    """Delete the profiles of dates rewritten without one (drift off): a later reference recomputes them."""
    for day in feature_dates:
        lakefs.delete_file(lakefs.join(profile_dir(cfg, table), f"{day}.json"))


# --- results ------------------------------------------------------------------------------------------


@dataclass
class FeatureDrift:
    feature: str
    kind: str  # numeric | categorical
    psi: float | None
    ks: float | None  # numeric only
    reference_rows: int
    current_rows: int
    bins: int  # bins (numeric) or categories (categorical) the PSI was summed over
    threshold: float
    alert: bool
    note: str = ""


@dataclass
class TableDrift:
    table: str
    feature_date: str
    reference: dict[str, Any]  # {"kind", "start", "end"}: the reference window's feature dates
    run_id: str = ""
    computed_at: str = ""
    features: list[FeatureDrift] = field(default_factory=list)
    judged: bool = True  # False: an incomplete date, or too short a reference (``note`` says which)
    note: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableDrift:
        data = dict(data)
        data["features"] = [FeatureDrift(**f) for f in data.get("features", [])]
        return cls(**data)

    @property
    def alerts(self) -> list[FeatureDrift]:
        return [f for f in self.features if f.alert]


def table_dir(cfg: Config, table: str) -> str:
    return lakefs.join(catalog.FEATURE_DRIFT.path(cfg), table)


def write(cfg: Config, result: TableDrift) -> str:
    path = lakefs.join(table_dir(cfg, result.table), f"{result.feature_date}.json")
    lakefs.write_text(path, json.dumps(asdict(result), indent=1))
    return path


def _dates(cfg: Config, table: str) -> list[str]:
    _, names = lakefs.list_children(table_dir(cfg, table))
    return [
        n.removesuffix(".json")
        for n in names
        if n.endswith(".json") and not n.startswith(catalog.HIDDEN_PREFIXES)
    ]


def read(cfg: Config, table: str, feature_date: str) -> TableDrift:
    path = lakefs.join(table_dir(cfg, table), f"{feature_date}.json")
    return TableDrift.from_dict(json.loads(lakefs.read_text(path)))


def latest(cfg: Config, table: str) -> TableDrift | None:
    """The stored drift of ``table``'s newest feature date that was judged (ISO dates sort as text): a
    newer incomplete date does not hide the drift of the last complete one."""
    for day in reversed(_dates(cfg, table)):
        result = read(cfg, table, day)
        if result.judged:
            return result
    return None


def history(cfg: Config, table: str, last: int | None = None) -> list[TableDrift]:
    """Every stored feature date of ``table`` (or the ``last`` newest), oldest first (for plots)."""
    dates = _dates(cfg, table)
    return [read(cfg, table, d) for d in (dates[-last:] if last else dates)]


def history_traces(cfg: Config, last: int = 90) -> list[dict[str, Any]]:
    """Plotly traces of the stored drift history, for the report: per Gold table, the highest PSI of its
    features on each judged feature date (the hover names the feature), and the dates not judged (an
    incomplete date, too short a reference) marked at 0 with the reason; the ``last`` newest dates of
    each table, so the report's cost does not grow with the lake's age. No Spark."""
    traces: list[dict[str, Any]] = []
    skipped: dict[str, list[Any]] = {"x": [], "text": []}
    for table in catalog.GOLD_TABLES:
        xs, ys, names = [], [], []
        for result in history(cfg, table.name, last):
            scored = [f for f in result.features if f.psi is not None]
            if not result.judged:
                skipped["x"].append(result.feature_date)
                skipped["text"].append(f"{table.name}: {result.note}")
            elif scored:
                top = max(scored, key=lambda f: f.psi or 0.0)
                xs.append(result.feature_date)
                ys.append(round(top.psi or 0.0, 4))
                names.append(f"{table.name}.{top.feature}" + (" (alert)" if top.alert else ""))
        if xs:
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": table.name,
                    "x": xs,
                    "y": ys,
                    "text": names,
                }
            )
    if skipped["x"]:
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "not judged",
                "x": skipped["x"],
                "y": [0] * len(skipped["x"]),
                "text": skipped["text"],
                "marker": {"symbol": "x", "color": "grey"},
            }
        )
    return traces
