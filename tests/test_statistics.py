"""The claims' statistics with known answers (analysis/statistics.py)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from analysis.statistics import (
    holm,
    non_inferiority,
    power_large_effect,
    power_non_inferior,
    superiority,
)


def test_holm_by_hand():
    """Sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> running
    maximum 0.02, 0.03, 0.06, 0.06, back in the input order."""
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_superiority_is_the_paired_t_test_when_seeds_are_shared():
    a, b = [0.9, 0.8, 0.85, 0.95, 0.7], [0.5, 0.6, 0.55, 0.45, 0.6]
    tested = superiority(a, b, paired=True)
    assert tested.p == pytest.approx(stats.ttest_rel(a, b, alternative="greater").pvalue)
    assert tested.effect == pytest.approx(0.30) and tested.paired and tested.n == 5
    assert tested.low < 0.30 < tested.high  # the bootstrap CI holds its mean
    welch = superiority(a, b, paired=False)
    assert welch.p == pytest.approx(stats.ttest_ind(a, b, equal_var=False,
                                                    alternative="greater").pvalue)


def test_equal_values_are_no_effect_even_with_float_noise():
    """The old table reported p = 0.002 and 'holds' for Q exactly 0.1 in every trial, its
    means differing by 2.8e-17."""
    noisy = 0.1 + np.array([2.8e-17, 0.0, 2.8e-17])
    assert superiority(noisy, [0.1, 0.1, 0.1], paired=True).p == 1.0
    assert superiority(noisy, [0.1, 0.1, 0.1], paired=False).p == 1.0


def test_non_inferiority_bound_and_p():
    """Loss b - a = 0.01 every seed but one: mean, t upper bound and p by hand."""
    a = np.array([0.88, 0.87, 0.90, 0.86, 0.89])
    b = a + np.array([0.01, 0.02, 0.00, 0.01, 0.01])
    tested = non_inferiority(a, b, margin=0.05, paired=True)
    loss = b - a
    error = loss.std(ddof=1) / np.sqrt(5)
    assert tested.effect == pytest.approx(0.01)
    assert tested.high == pytest.approx(0.01 + stats.t.ppf(0.95, 4) * error)
    assert tested.p == pytest.approx(stats.t.cdf((0.01 - 0.05) / error, 4))
    assert tested.p < 0.001 and tested.high < 0.05


def test_power_of_the_t_test_matches_a_simulation():
    """d = 0.8, n = 10, one-sided alpha 0.05: the noncentral t against 20,000 simulated
    paired samples."""
    rng = np.random.default_rng(0)
    samples = rng.normal(0.8, 1.0, size=(20000, 10))
    t = samples.mean(1) / (samples.std(1, ddof=1) / np.sqrt(10))
    simulated = float(np.mean(t > stats.t.ppf(0.95, 9)))
    assert power_large_effect(10, 0.05) == pytest.approx(simulated, abs=0.01)
    assert power_large_effect(3, 0.05 / 12) < 0.1 < power_large_effect(10, 0.05 / 20)
    assert power_non_inferior(10, 0.02, 0.05, 0.05) > 0.99
    assert power_non_inferior(3, 0.1, 0.05, 0.05) < 0.3
