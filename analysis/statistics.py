"""The tests behind the claims table (analysis/claims.py), each with what a reviewer checks.

superiority(a, b, paired)    one-sided test that mean(a) > mean(b): a paired t-test on the
                             per-seed differences a_i - b_i when the arms share their seeds,
                             else Welch's t-test. Effect: the mean difference, with a 95%
                             bootstrap CI (scipy.stats.bootstrap, BCa, 9,999 resamples, seeded)
                             of the mean paired difference, or of the difference of means.
non_inferiority(a, b, margin) a (the costs) loses less than `margin` of b's accuracy: the
                             one-sided test of H0: mean(b - a) >= margin; the verdict also needs
                             the upper bound of the one-sided 95% CI of the loss below margin.
holm(p)                      Holm's step-down adjustment over every test of a table.
power_large_effect(n, alpha) the power of the one-sided t-test to detect a large effect
                             (Cohen's d = 0.8) with n pairs at level alpha: what a "not shown"
                             is worth.
power_non_inferior(...)      the power to show non-inferiority when the true loss is 0, given
                             the observed spread.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple, Sequence

import numpy as np
from scipy import stats

LARGE_EFFECT = 0.8   # Cohen's d
TIE = 1e-12          # differences this small are float noise, not an effect
RESAMPLES = 9999
CONFIDENCE = 0.95


class Tested(NamedTuple):
    effect: float        # mean difference (a - b), or the loss (b - a) for non-inferiority
    low: float           # its 95% CI (two-sided bootstrap; non-inferiority: -inf, upper)
    high: float
    p: float             # one-sided p-value, before correction
    n: int               # pairs (paired), else the smaller arm
    paired: bool
    spread: float        # SD of the differences (paired) or pooled SD, for power


def _bootstrap(samples: tuple[np.ndarray, ...], statistic, paired: bool) -> tuple[float, float]:
    if min(len(s) for s in samples) < 2 or np.ptp(np.concatenate(samples)) == 0:
        value = float(statistic(*samples))
        return value, value
    for method in ("BCa", "percentile"):  # BCa is undefined on a degenerate resampling
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            interval = stats.bootstrap(samples, statistic, paired=paired,
                                       n_resamples=RESAMPLES, confidence_level=CONFIDENCE,
                                       method=method, random_state=np.random.default_rng(0)
                                       ).confidence_interval
        if np.isfinite(interval.low) and np.isfinite(interval.high):
            break
    return float(interval.low), float(interval.high)


def superiority(a: Sequence[float], b: Sequence[float], paired: bool) -> Tested:
    """One-sided test that mean(a) > mean(b). paired: a[i] and b[i] share a seed."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if np.ptp(np.concatenate([a, b])) < TIE:  # every value equal: no effect to test
        return Tested(0.0, 0.0, 0.0, 1.0, min(len(a), len(b)), paired, 0.0)
    if paired:
        difference = np.where(np.abs(a - b) < TIE, 0.0, a - b)
        spread = float(np.std(difference, ddof=1)) if len(a) > 1 else np.nan
        if len(a) < 2 or spread == 0:
            p = 0.0 if np.mean(difference) > 0 and len(a) > 1 else 1.0
        else:
            p = float(stats.ttest_rel(a, b, alternative="greater").pvalue)
        low, high = _bootstrap((a, b), lambda x, y, axis=-1: np.mean(x - y, axis=axis), True)
        return Tested(float(np.mean(difference)), low, high, p, len(a), True, spread)
    spread = float(np.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2)) \
        if min(len(a), len(b)) > 1 else np.nan
    if min(len(a), len(b)) < 2 or spread == 0:
        p = 0.0 if np.mean(a) > np.mean(b) and min(len(a), len(b)) > 1 else 1.0
    else:
        p = float(stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)
    low, high = _bootstrap((a, b), lambda x, y, axis=-1: np.mean(x, axis=axis)
                           - np.mean(y, axis=axis), False)
    return Tested(float(np.mean(a) - np.mean(b)), low, high, p, min(len(a), len(b)), False,
                  spread)


def non_inferiority(a: Sequence[float], b: Sequence[float], margin: float,
                    paired: bool) -> Tested:
    """H0: the loss mean(b - a) >= margin, one-sided against loss < margin; `high` is the
    upper bound of the one-sided 95% t confidence interval of the loss."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if paired:
        loss = b - a
        n, mean = len(loss), float(np.mean(loss))
        spread = float(np.std(loss, ddof=1)) if n > 1 else np.nan
        error, df = spread / np.sqrt(n), n - 1
    else:
        n, mean = min(len(a), len(b)), float(np.mean(b) - np.mean(a))
        va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
        error = float(np.sqrt(va + vb))
        df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) \
            if va + vb > 0 else max(n - 1, 1)
        spread = float(np.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2))
    if n < 2:
        return Tested(mean, -np.inf, np.inf, 1.0, n, paired, spread)
    if error == 0:
        return Tested(mean, -np.inf, mean, 0.0 if mean < margin else 1.0, n, paired, spread)
    upper = mean + stats.t.ppf(CONFIDENCE, df) * error
    p = float(stats.t.cdf((mean - margin) / error, df))
    return Tested(mean, -np.inf, float(upper), p, n, paired, spread)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (monotone, capped at 1), in the input order."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(len(p))
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


def power_large_effect(n: int, alpha: float) -> float:
    """Power of the one-sided one-sample (paired) t-test with n pairs at level alpha to
    detect Cohen's d = LARGE_EFFECT."""
    if n < 2:
        return 0.0
    df = n - 1
    critical = stats.t.ppf(1 - alpha, df)
    return float(stats.nct.sf(critical, df, LARGE_EFFECT * np.sqrt(n)))


def power_non_inferior(n: int, spread: float, margin: float, alpha: float) -> float:
    """Power of the non-inferiority test with n pairs at level alpha when the true loss is 0
    and the differences' SD is `spread`."""
    if n < 2 or not np.isfinite(spread):
        return 0.0
    if spread == 0:
        return 1.0
    df = n - 1
    critical = stats.t.ppf(1 - alpha, df)
    return float(stats.nct.sf(critical, df, margin / (spread / np.sqrt(n))))
