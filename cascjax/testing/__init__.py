"""cascjax.testing: a harness for property-based verification of routing and cascading theorems.

Needs the ``testing`` extra (``pip install 'cascjax[testing]'``: hypothesis, and scipy for the LP).

* **Hypothesis strategies** for small instances with ties on purpose: :func:`datasets`, :func:`estimates`,
  :func:`instances`, :func:`lambdas`, :func:`lambda_vectors`, :func:`budgets`, :func:`worlds`; and seeded
  batches of thousands of independent decision problems for one jit call: :func:`random_instance`,
  :func:`random_lambdas`, :func:`random_worlds`.
* **Reference solvers** (NumPy, obviously correct, slow): the routing linear program (:func:`routing_lp`
  with HiGHS, :func:`routing_dual` by its Lagrangian dual, no solver), the decision rule by exhaustive
  enumeration of every candidate supermodel at a state (:func:`enumerate_candidates`), whole strategies by
  loops (:func:`reference_run`, :func:`reference_sweep`), and in the Gaussian world (:class:`World`) the
  Bayes-optimal adaptive policy by dynamic programming (:func:`optimal_value`), Weitzman's Pandora's-box
  value (:func:`pandora_value`) and the paper's cascade-routing rule (:func:`rule_value` by loops,
  :func:`rule_values` batched through the kernel), and their gap (:func:`dp_gap`).
* **The theorem suite**: ``check_*`` functions that raise :class:`PropertyFailed` with a counterexample
  (:data:`PROPERTIES` lists the statements and where they come from); and **measurements** that are not
  guaranteed: :func:`measure_dp_gap` (the paper's rule against the DP optimum) and
  :func:`minimal_counterexample`. ``tests/test_theorems.py`` runs them under hypothesis and shows each
  property failing on a deliberately broken kernel; :mod:`cascjax.testing.report` writes
  ``docs/verification.md`` from a run (the latest thorough one is committed).

The checks compare the kernels with float64 reference solvers, so they need x64
(``jax.config.update("jax_enable_x64", True)``) and say so otherwise.

Example:
  >>> import jax
  >>> jax.config.update("jax_enable_x64", True)
  >>> from hypothesis import given, settings
  >>> import cascjax.testing as ct
  >>> @settings(max_examples=5, deadline=None)
  ... @given(ct.instances(n_queries=3, n_models=3), ct.lambdas(n=4))
  ... def test_depth_one_is_routing(instance, lam):
  ...     ct.check_depth_one(instance, lam)
  >>> test_depth_one_is_routing()
"""

try:
    import hypothesis  # noqa: F401
except ImportError as error:  # the strategies are hypothesis's
    raise ImportError("cascjax.testing needs hypothesis: pip install 'cascjax[testing]' (hypothesis, scipy)") from error

from ._check_dp import (
    check_optimal_policy as check_optimal_policy,
    measure_dp_gap as measure_dp_gap,
    minimal_counterexample as minimal_counterexample,
)
from ._check_pruning import (
    check_depth_one as check_depth_one,
    check_perfect as check_perfect,
    check_prefix as check_prefix,
    check_pruning as check_pruning,
    check_submodular as check_submodular,
)
from ._check_theorem1 import (
    check_fit_budget as check_fit_budget,
    check_theorem1 as check_theorem1,
)
from ._check_transforms import (
    check_sharded as check_sharded,
    check_transforms as check_transforms,
)
from ._properties import (
    CHECKED as CHECKED,
    MEASURED as MEASURED,
    PROPERTIES as PROPERTIES,
    Property as Property,
    PropertyFailed as PropertyFailed,
)
from ._reference_routing import reference_routing as reference_routing, routing_dual as routing_dual
from ._reference_routing import routing_lp as routing_lp
from ._reference import (
    Enumeration as Enumeration,
    enumerate_candidates as enumerate_candidates,
    estimates_row as estimates_row,
    reference_expected_max as reference_expected_max,
    reference_run as reference_run,
    reference_sweep as reference_sweep,
    seen as seen,
)
from ._strategies import (
    Instance as Instance,
    budgets as budgets,
    datasets as datasets,
    estimates as estimates,
    instances as instances,
    lambda_vectors as lambda_vectors,
    lambdas as lambdas,
    worlds as worlds,
)
from ._random import (
    random_instance as random_instance,
    random_lambdas as random_lambdas,
    random_worlds as random_worlds,
)
from ._worlds import (
    World as World,
    optimal_value as optimal_value,
    pandora_value as pandora_value,
    world_nodes as world_nodes,
)
from ._rule_worlds import dp_gap as dp_gap, rule_value as rule_value, rule_values as rule_values
