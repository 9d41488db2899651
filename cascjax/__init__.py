"""cascjax: routing, cascading and cascade routing for LLMs, for thousands of λ at once, in JAX.

Implements Dekoninck, Baader & Vechev, *A Unified Approach to Routing and Cascading for LLMs* (ICML 2025).
Shapes: N queries, M models, L λ values, D steps, S supermodels, K samples, B budgets.
"""

from . import _compile

#: The persistent compilation cache's folder in use (None: off). See :mod:`cascjax._compile`.
CACHE_DIR = _compile.enable_cache()

from ._cascade import cascade_path as cascade_path  # noqa: E402
from ._cascade_routing_path import cascade_routing_path as cascade_routing_path
from ._curve import Curve as Curve, Mixture as Mixture, at_budget as at_budget, path_at as path_at
from ._data import Dataset as Dataset
from ._synthetic import synthetic as synthetic
from ._decide import TIE_ULPS as TIE_ULPS
from ._errors import CascjaxError as CascjaxError
from ._fit import Evaluation as Evaluation, Fitted as Fitted, evaluate as evaluate, fit as fit
from ._estimates import (
    Estimates as Estimates,
    StateEstimates as StateEstimates,
    StateModel as StateModel,
    covariance_factors as covariance_factors,
    fit_covariances as fit_covariances,
    perfect_estimates as perfect_estimates,
)
from ._noise import NOISE_LEVELS as NOISE_LEVELS, noisy_estimates as noisy_estimates
from .io import example_path as example_path, load_example as load_example, read as read
from .io import read_estimates as read_estimates, read_latency as read_latency
from ._metrics import (
    aiq as aiq,
    auc as auc,
    model_points as model_points,
    model_hull as model_hull,
    quality_at as quality_at,
)
from ._router_metrics import (
    cost_save as cost_save,
    oracle as oracle,
    oracle_gap as oracle_gap,
    pareto_dist as pareto_dist,
    perf_gain as perf_gain,
)
from ._routing import routing_path as routing_path
from ._lambda_grid import lambda_grid as lambda_grid, threshold_grid as threshold_grid
from ._sweep import STRATEGIES as STRATEGIES, sweep as sweep
from ._latency import BudgetChoice as BudgetChoice, Latency as Latency, Surface as Surface  # noqa: E402
from ._latency import at_budgets as at_budgets  # noqa: E402
from ._surface import surface as surface  # noqa: E402
from ._pool_points import PoolFrontier as PoolFrontier, PoolSearch as PoolSearch  # noqa: E402
from ._pool_points import pool_frontier as pool_frontier  # noqa: E402
from ._pools import search_pools as search_pools  # noqa: E402
from ._grid import grid as grid, merge as grid_merge, plan as grid_plan, read_spec as read_grid_spec

__version__ = "0.1.1"
