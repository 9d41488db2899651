"""Budgets that hold on new data: an upper confidence bound on the held-out mean cost of a γ-mixture.

A fitted budget holds in expectation on the fit split; on held-out queries the mean cost is a random variable.
For a mixture that runs point ``hi`` with probability γ and ``lo`` otherwise (one coin per query), the cost of
one new query has mean μ(γ) = (1 − γ)·m_lo + γ·m_hi and variance σ²(γ) = (1 − γ)·s_lo + γ·s_hi − μ(γ)², where
m and s are the first and second moments of the points' per-query costs. Estimated on the n fit queries, the
held-out mean over h new queries exceeds

    UCB(γ) = μ̂(γ) + t_{n−1}(confidence) · σ̂(γ) · sqrt(1/n + 1/h)

with probability about 1 − confidence (h = ∞: a bound on the population mean). The bound is the normal
approximation of the difference of two independent sample means, with Student's t quantile for the fit split's
estimated σ: per-query costs are bounded, so the central limit theorem applies at the fit split's sizes (the
paper's 5 % of RouterBench is ~1,800 queries), and unlike a distribution-free bound (Hoeffding's, with the range
of the costs: the largest model's cost) it does not give up most of the budget for the rare expensive query
(measured in ``tests/test_confidence.py``: the violation rate over 1,000 random splits stays within Monte-Carlo
error of 1 − confidence). A budget B is then met by the mixture of highest quality whose UCB ≤ B.
"""

from __future__ import annotations

import numpy as np

from ._errors import CascjaxError


def check_confidence(confidence, holdout) -> None:
    if not (isinstance(confidence, (float, int, np.floating)) and not isinstance(confidence, bool)
            and 0.5 <= float(confidence) < 1.0):
        raise CascjaxError(f"confidence must be a probability in [0.5, 1), got {confidence!r}")
    if holdout is not None and not (isinstance(holdout, (int, np.integer)) and not isinstance(holdout, bool)
                                    and holdout >= 1):
        raise CascjaxError(f"holdout must be a positive number of queries (or None: the population), got "
                           f"{holdout!r}")


def quantile(confidence: float, n: int) -> float:
    """Student's t quantile with n − 1 degrees of freedom (the normal one for n ≥ 1,000 or n < 2: no spread
    to estimate), by the Cornish-Fisher expansion (no scipy at run time; tested against scipy: within 2e-3
    for n ≥ 20, 1 % for n ≥ 5)."""
    z = _normal_quantile(confidence)
    df = n - 1
    if df < 1 or df >= 999:
        return z
    g1 = (z ** 3 + z) / 4
    g2 = (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96
    g3 = (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384
    g4 = (79 * z ** 9 + 776 * z ** 7 + 1482 * z ** 5 - 1920 * z ** 3 - 945 * z) / 92160
    return z + g1 / df + g2 / df ** 2 + g3 / df ** 3 + g4 / df ** 4


def _normal_quantile(p: float) -> float:
    """The standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9)."""
    a = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
         -3.066479806614716e+01, 2.506628277459239e+00)
    b = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
         -1.328068155288572e+01)
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
         4.374664141464968e+00, 2.938163982698783e+00)
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00)
    if p > 1 - 0.02425:
        q = np.sqrt(-2 * np.log(1 - p))
        return -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    q = p - 0.5
    r = q * q
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / \
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)


def bound(first_lo, second_lo, first_hi, second_hi, gamma, n: int, confidence: float, holdout=None):
    """UCB(γ) of the held-out mean cost of the γ-mixture of two points, from their per-query cost moments (first,
    second) on ``n`` fit queries. Broadcasts."""
    mean = (1 - gamma) * first_lo + gamma * first_hi
    var = np.maximum((1 - gamma) * second_lo + gamma * second_hi - mean ** 2, 0.0) * n / max(n - 1, 1)
    scale = np.sqrt(1.0 / n + (0.0 if holdout is None else 1.0 / holdout))
    return mean + quantile(confidence, n) * np.sqrt(var) * scale


def mixtures(cost_lo, cost_hi, quality_lo, quality_hi, budgets, confidence, holdout=None, iterations=60):
    """For every budget and candidate pair (per-query costs ``cost_lo``/``cost_hi`` [P, N], mean qualities [P]),
    the largest γ ∈ [0, 1] whose UCB ≤ B (−1 where even γ = 0 exceeds it) and the expected quality there:
    ([B, P] γ, [B, P] quality). Bisection on γ (the bound is monotone in γ where hi costs more on average)."""
    n = cost_lo.shape[1]
    f_lo, f_hi = cost_lo.mean(1), cost_hi.mean(1)
    s_lo, s_hi = (cost_lo ** 2).mean(1), (cost_hi ** 2).mean(1)
    b = np.asarray(budgets, np.float64)[:, None]

    def ucb(g):
        return bound(f_lo, s_lo, f_hi, s_hi, g, n, confidence, holdout)

    ok0 = ucb(np.zeros((1, f_lo.size))) <= b
    ok1 = ucb(np.ones((1, f_lo.size))) <= b
    lo, hi = np.zeros((b.size, f_lo.size)), np.ones((b.size, f_lo.size))
    for _ in range(iterations):
        mid = (lo + hi) / 2
        fits = ucb(mid) <= b
        lo, hi = np.where(fits, mid, lo), np.where(fits, hi, mid)
    gamma = np.where(ok1, 1.0, np.where(ok0, lo, -1.0))
    quality = np.where(gamma >= 0, (1 - gamma) * quality_lo + gamma * quality_hi, -np.inf)
    return gamma, quality
