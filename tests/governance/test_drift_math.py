"""PSI, KS and the equal-frequency cuts: against hand-computed values and against scipy on random samples."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy import special, stats

from medallion.governance import drift


def test_psi_by_hand() -> None:
    # shares (0.5, 0.5) against (0.25, 0.75):
    # (0.25 - 0.5) ln(0.25/0.5) + (0.75 - 0.5) ln(0.75/0.5) = 0.25 ln 2 + 0.25 ln 1.5
    expected = 0.25 * math.log(2) + 0.25 * math.log(1.5)
    assert drift.psi([50, 50], [25, 75]) == pytest.approx(expected, rel=1e-12)
    assert drift.psi([10, 20, 30], [10, 20, 30]) == 0.0
    assert drift.psi([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0, abs=1e-15)  # shares, not counts


def test_empty_bins_take_epsilon_and_empty_on_both_sides_add_nothing() -> None:
    eps = 1e-6
    # bin 2 is empty in the reference: p = eps there, q = 0.5; bin 3 empty on both sides
    expected = (0.5 - 1.0) * math.log(0.5 / 1.0) + (0.5 - eps) * math.log(0.5 / eps)
    assert drift.psi([10, 0, 0], [5, 5, 0], eps) == pytest.approx(expected, rel=1e-12)
    assert drift.psi([10, 0], [5, 5], eps) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="both sides"):
        drift.psi([0, 0], [1, 1])


def test_categorical_psi_over_the_union_of_categories() -> None:
    eps = 1e-6
    ref = {"a": 3, "b": 1}
    cur = {"a": 1, "c": 1}
    # a: 0.75 -> 0.5; b: 0.25 -> eps; c: eps -> 0.5
    expected = (
        (0.5 - 0.75) * math.log(0.5 / 0.75)
        + (eps - 0.25) * math.log(eps / 0.25)
        + (0.5 - eps) * math.log(0.5 / eps)
    )
    assert drift.categorical_psi(ref, cur, eps) == pytest.approx(expected, rel=1e-12)


def test_quantile_cuts_by_hand() -> None:
    # ten values 1..10, four bins: the smallest v with F(v) >= 1/4, 2/4, 3/4 -> 3, 5, 8
    values = list(range(1, 11))
    assert drift.quantile_cuts(values, [1] * 10, 4) == [3, 5, 8]
    # many zeros: F(0) = 0.8 already reaches 1/4, 2/4 and 3/4, so the three cut points merge into one
    assert drift.quantile_cuts([0, 1, 2], [8, 1, 1], 4) == [0]
    assert drift.quantile_cuts([0, 1, 2], [4, 4, 2], 4) == [0, 1]  # F = 0.4, 0.8, 1
    assert drift.bin_of([3, 5, 8], 3) == 0 and drift.bin_of([3, 5, 8], 3.5) == 1
    assert drift.bin_of([3, 5, 8], 9) == 3
    assert drift.bin_counts([3, 5, 8], values, [1] * 10) == [3, 2, 3, 2]


def test_ks_by_hand() -> None:
    # reference {1, 2, 3}, current {2, 3, 4}: F_R - F_D at 1: 1/3, at 2: 1/3, at 3: 1/3, at 4: 0
    assert drift.ks_statistic([1, 2, 3, 4], [1, 1, 1, 0], [0, 1, 1, 1]) == pytest.approx(1 / 3)
    assert drift.ks_statistic([1, 2], [1, 0], [0, 1]) == 1.0


@pytest.mark.parametrize("seed", range(6))
def test_ks_equals_scipy_and_psi_equals_symmetric_kl_on_random_samples(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.normal(0, 1, 2_000 + 37 * seed)
    cur = rng.normal(0.1 * seed, 1 + 0.05 * seed, 1_500)
    if seed % 2:  # integer-valued, with many ties
        ref, cur = np.round(ref * 3), np.round(cur * 3)
    bins = 10
    psi, ks = drift.numeric_drift(ref.tolist(), cur.tolist(), bins=bins, epsilon=1e-6)
    assert ks == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=1e-12)

    # PSI's oracle: numpy's inverted-CDF quantiles for the cuts, numpy's bincount for the counts, and
    # PSI = sum of scipy's rel_entr(q, p) + rel_entr(p, q) (= KL(q||p) + KL(p||q) on the smoothed shares).
    cuts = np.unique(np.quantile(ref, [k / bins for k in range(1, bins)], method="inverted_cdf"))
    p = np.bincount(np.searchsorted(cuts, ref, side="left"), minlength=len(cuts) + 1) / len(ref)
    q = np.bincount(np.searchsorted(cuts, cur, side="left"), minlength=len(cuts) + 1) / len(cur)
    assert np.all(p > 0)  # equal-frequency bins of the reference are never empty there
    p, q = np.maximum(p, 1e-6), np.maximum(q, 1e-6)
    oracle = float(np.sum(special.rel_entr(q, p) + special.rel_entr(p, q)))
    assert psi == pytest.approx(oracle, rel=1e-9)
    if seed % 2 == 0:  # continuous values: no cut point repeats, so every bin is there
        assert len(cuts) + 1 == bins


def test_the_same_sample_does_not_drift_and_a_shifted_one_does() -> None:
    rnd = random.Random(3)
    ref = [rnd.gauss(10, 2) for _ in range(5_000)]
    same = [rnd.gauss(10, 2) for _ in range(5_000)]
    shifted = [x + 2 for x in same]
    assert drift.numeric_drift(ref, same)[0] < 0.05
    assert drift.numeric_drift(ref, shifted)[0] > 0.2
