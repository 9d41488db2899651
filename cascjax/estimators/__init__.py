"""Learned, state-dependent estimators (DESIGN section 2; the paper's real-benchmark estimators).

:func:`read_features` reads what the models answered (``<model>|answer``, numeric ``<model>|<name>`` answer
features) and the query features; :func:`fit_learned` fits one logistic regression per target model and run
pattern, all at once with optax; :func:`state_estimates` gives a :class:`cascjax.StateEstimates` table for any
queries, :func:`separable` the separable estimates of the same regressions (the baseline);
:func:`estimator_quality` the Brier score and ROC AUC per depth.
"""

from ._features import Features as Features, example_features as example_features, read_features as read_features
from ._learned import (
    L2_GRID as L2_GRID,
    Learned as Learned,
    fit_learned as fit_learned,
    separable as separable,
    state_estimates as state_estimates,
    state_model as state_model,
)
from ._report import estimator_quality as estimator_quality, roc_auc as roc_auc
