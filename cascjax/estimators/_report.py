"""Estimator quality per depth |R|: Brier score and ROC AUC of the ex-ante and post-hoc estimates."""

from __future__ import annotations

import numpy as np

from .._data import Dataset
from .._estimates import Estimates, StateEstimates, run_patterns


def roc_auc(score: np.ndarray, label: np.ndarray) -> float:
    """ROC AUC of ``score`` for binary ``label`` (the Mann–Whitney statistic, ties counted half); NaN when a
    class is empty.

    Example:
      >>> roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
      0.75
    """
    score, label = np.asarray(score, np.float64).ravel(), np.asarray(label).ravel() > 0.5
    pos, neg = int(label.sum()), int((~label).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]  # average ranks of tied scores
    return float((ranks[label].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def estimator_quality(ds: Dataset, estimates: dict, max_depth: int | None = None):
    """Brier score and ROC AUC of each estimator's ex-ante and post-hoc quality estimates, per depth |R|.

    Args:
      ds: the queries scored (their true quality: 0/1 correctness for the AUC).
      estimates: name → :class:`cascjax.StateEstimates` or :class:`cascjax.Estimates` of those queries.
      max_depth: depths 0..D (default M).

    Returns:
      A pandas DataFrame with columns ``estimator, depth, phase (ante/post), brier, auc, entries``: for depth d
      the entries (n, R, m) with |R| = d and m ∉ R (ante: m's estimate given R's answers) or m ∈ R (post).

    Example:
      >>> import cascjax
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [1, 0]], [[1, 2]] * 3)
      >>> t = estimator_quality(ds, {"perfect": cascjax.perfect_estimates(ds)})
      >>> t[["depth", "phase", "brier"]].values.tolist()
      [[0, 'ante', 0.0], [1, 'ante', 0.0], [1, 'post', 0.0], [2, 'post', 0.0]]
    """
    import pandas as pd

    y = np.asarray(ds.quality, np.float64)
    m = y.shape[1]
    depth = m if max_depth is None else int(max_depth)
    ran = run_patterns(m)
    size = ran.sum(axis=1)
    rows = []
    for name, est in estimates.items():
        table = est.to_states() if isinstance(est, Estimates) else est
        assert isinstance(table, StateEstimates)
        mu = np.asarray(table.quality, np.float64)
        for d in range(depth + 1):
            at = np.flatnonzero(size == d)
            for phase, pick in (("ante", ~ran[at]), ("post", ran[at])):
                if not pick.any():
                    continue
                score = mu[:, at][:, pick]  # [N, entries]
                truth = np.broadcast_to(y[:, None, :], (y.shape[0], at.size, m))[:, pick]
                rows.append(dict(estimator=name, depth=d, phase=phase, brier=float(np.mean((score - truth) ** 2)),
                                 auc=roc_auc(score, truth), entries=int(score.size)))
    return pd.DataFrame(rows)
