"""The paper's evaluation protocol as a library (what ``cascjax reproduce`` and ``cascjax ablate`` run).

Example:
  >>> import cascjax.protocol as cp
  >>> cp.PAPER_POOLS["3"]
  (9, 4, 5)
  >>> cp.ablation_grid(1.0, 2.0).tolist()
  [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [2.0, 0.0], [2.0, 1.0], [2.0, 2.0]]
"""

from ._ablation import (
    ABLATION_MAX as ABLATION_MAX,
    ABLATION_STEP as ABLATION_STEP,
    VARIANTS as VARIANTS,
    ablate as ablate,
    ablation_grid as ablation_grid,
    variants as variants,
)
from ._outcomes import Outcomes as Outcomes, baseline_outcomes as baseline_outcomes, bootstrap as bootstrap
from ._outcomes import curve_auc as curve_auc
from ._protocol import (
    PAPER_POOLS as PAPER_POOLS,
    ROUTERBENCH_MODELS as ROUTERBENCH_MODELS,
    ROWS as ROWS,
    Cell as Cell,
    is_routerbench as is_routerbench,
    markdown as markdown,
    paper_budgets as paper_budgets,
    pool_models as pool_models,
    reproduce as reproduce,
    run_cell as run_cell,
)
from ._protocol_learned import (
    ESTIMATES as ESTIMATES,
    Reproduction as Reproduction,
    reproduce_learned as reproduce_learned,
    split_three as split_three,
)
