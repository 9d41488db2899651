"""The public dispatcher: :func:`sweep` (one strategy at many λ values at once); the λ and threshold grids are in
:mod:`cascjax._lambda_grid`."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import _chunks, _compile
from ._checks import _check_thresholds, _per_step, _strategy_inputs, check_estimates, routing_inputs, threshold_inputs
from ._curve import Curve, check_lambdas
from ._data import Dataset
from ._decide import check_tie, tie_rtol as _tie_rtol
from ._errors import CascjaxError
from ._estimates import Estimates, StateEstimates, StateModel
from ._routing import routing_sweep
from ._routing_events import bytes_per_query, sweep_events
from ._views import Lazy

STRATEGIES = ("routing", "cascade", "cascade_routing", "threshold_cascade")
#: Routing sweeps of at least this many λ go through each query's hull breakpoints
#: (:mod:`cascjax._routing_events`), by pool size: (largest M, λ) — the event route's fixed cost (hull walk,
#: clear intervals, one sort of the events) against the direct grid's O(N·M) per λ. Measured crossovers
#: (20,000 queries, float32, 2-core CPU; events / direct ms): 11 models 16 λ 40 / 25, 32 λ 42 / 51;
#: 33 models 32 λ 87 / 98; 100 models 32 λ 286 / 199 (the candidate filter's fixed cost); 300 models 16 λ
#: 356 / 368; 1,000 models 8 λ 1,030 / 1,008, 16 λ 1,044 / 1,567.
EVENT_LAMBDAS = ((64, 32), (255, 64), (None, 16))


def _event_route(m: int, n_lam: int) -> bool:
    """Whether a routing sweep of ``n_lam`` λ over ``m`` models takes the event route."""
    return n_lam >= next(count for most, count in EVENT_LAMBDAS if most is None or m <= most)


#: Cascade sweeps of at least this many λ rows go through each step's stop interval
#: (:mod:`cascjax._cascade_events`). Measured (20,000 x 11, max_depth 5, 2-core CPU): equal to the direct grid at
#: 1 and 2 λ, 11 % faster at 4, 36 % at 16.
CASCADE_EVENT_LAMBDAS = 4
#: Bytes one query chunk of a sweep may hold (sets the default ``chunk_size``): 1 GiB.
MEMORY_BUDGET = _chunks.MEMORY_BUDGET
#: Elements (queries x models x λ) one batch of a sweep may hold; bounds peak memory. On CPU smaller
#: batches stay in cache and run faster (measured: 30k x 11 x 1,000 λ, 1.4x faster at 2^20 than at 2^24).
BATCH_ELEMENTS = 1 << 24
CPU_BATCH_ELEMENTS = 1 << 20


def sweep(ds: Dataset, est: Estimates, lambdas, strategy: str = "routing", tie: str = "min", *,
          max_depth: int | None = None, samples: int = 64, no_deviation: bool = False, force_order: bool = False,
          greedy: bool = False, prune: bool = True, return_choices: bool = False, tie_rtol: float | None = None,
          tie_band: str = "score",
          batch_size: int | None = None, chunk_size: int | None = None, memory: int | None = None,
          devices=None, prices=None):
    """Evaluates a strategy at every λ of a grid (vmapped and jitted; no Python loop over queries or λ).

    Args:
      ds: the dataset, true ``quality`` and ``cost`` [N, M] (only used to score the decisions).
      est: the estimates the strategy decides on, fields [N, M] (optional ``covariance`` [2^M, M, M]).
      lambdas: routing: [L] trade-off values λ ≥ 0. Cascade: [L] (one λ for every step) or [L, D] (λ_j for
        step j; D = ``max_depth``). Threshold cascade: thresholds θ, [L] (one for every step) or [L, D] (θ_j for
        the decision after model j), any finite value or ±inf.
      strategy: ``"routing"``: one model per query, argmax_m μ_m − λ ĉ_m on the ex-ante estimates (from 32 λ,
        64 on pools of 65-255 models, 16 on larger ones, through each query's hull breakpoints,
        :mod:`cascjax._routing_events`: the same choices, without the O(M) work per λ; the sums accumulated
        from the breakpoint events, within a few ulps of the exact sums of those choices).
        ``"cascade"``: the paper's optimal cascade — models in the dataset's order; at step j (models 0..j−1
        run) the candidates are the prefixes {0..i}, i ≥ max(j − 1, 0), |{0..i}| ≤ D, scored Q − λ_j C with
        Q the expected maximum quality (post-hoc estimates for run models, ex-ante with their σ otherwise) and
        C the summed cost estimates; choosing {0..j−1} stops, anything else runs model j; the run model with
        the highest post-hoc estimate answers. From 4 λ through each step's stop interval
        (:mod:`cascjax._cascade_events`: the same decisions and sums to the bit, O(D) per λ instead of O(D·M)).
        ``"cascade_routing"``: the paper's cascade routing — at step j (state R, |R| = j) every supermodel
        T ⊇ R with |T| ≤ D is a candidate (``force_order``: new members above max(R); ``greedy``: at most one
        new member), scored as the cascade's; T = R stops, anything else runs the lowest-index model of
        T \\ R. Evaluated once per (query, state reached), not per λ (see :mod:`cascjax._cascade_routing`).
        ``"threshold_cascade"`` (baseline): run the models in the dataset's order (ascending mean cost when
        sorted); after model j continue iff its post-hoc estimate is below θ_j; the last model run answers.
      tie: ``"min"`` (of tied choices the cheapest) or ``"max"`` (the most expensive); equal cost: lowest index.
        The threshold cascade has no ties (strictly below θ continues); it accepts either.
      max_depth: cascades: at most this many models (1..M, default M). Routing runs one model.
      samples: cascade, cascade routing: K, the number of shared standard-normal points for expected maxima
        (default 64); or your own [K, M] array of standard points (e.g. a product quadrature grid, which
        makes Q(T) exact for the discrete distribution it defines; see :mod:`cascjax.testing`).
      no_deviation: cascade, cascade routing: ignore the estimates' σ and covariance (Q = max μ), the paper's
        "no deviation" ablation. (Cascade and cascade routing use ``est.covariance``, one Σ(R) per run-pattern,
        when it is given, else the independent ``sd_ante``/``sd_post``.)
      force_order: cascade routing: models run in ascending index order (new members above max(R)).
      greedy: cascade routing: candidates add at most one model to R.
      prune: cascade routing: the paper's pruning lemma (with the tie band: a candidate beaten by more than
        the band by one of its one-model-smaller candidates is dropped). Never changes a decision; on by default.

      return_choices: also return the answering model and the realised cost per query and λ (``Curve.choice``,
        ``Curve.query_cost`` [L, N]): per-query outcomes, e.g. for a paired bootstrap.
      tie_rtol: relative tie tolerance; default 32·eps of the dtype (see ``cascjax.TIE_ULPS``).
      tie_band: where the tolerance applies. ``"score"`` (default, every strategy): candidates whose scores lie
        within ``tie_rtol·(max|Q| + λ·max|C|)`` of the best tie (DESIGN section 4). ``"lambda"`` (routing and
        the cascade): :func:`cascjax.path_at`'s rule on the exact path's breakpoints — routing takes the vertex
        of each query's exact hull (the walk of :func:`cascjax.routing_path`), the cascade stops at the first
        step whose exact stop interval (:func:`cascjax.cascade_path`'s) holds λ_j, a λ within a relative
        ``tie_rtol`` of a breakpoint counting as that breakpoint; the sweep then makes exactly the decisions
        of ``path_at(routing_path(ds, est), λ, tie, tie_rtol=tie_rtol)`` (``cascade_path`` alike, with the same
        ``max_depth``, ``samples``, ``no_deviation``). The two bands differ only at near-ties, where both
        choices are within the tolerance of optimal: around a breakpoint between choices whose cost
        estimates differ by ΔC the score band is ``tie_rtol·(max|Q| + λ·max|C|) / |ΔC|`` wide in λ, the λ
        band ``tie_rtol·λ``.
      batch_size: λ values per batch within a query chunk; default keeps a batch under 2^20
        queries·models·λ elements on CPU, 2^24 on accelerators. (Not used by cascade routing, which takes every
        λ of a query at once.)
      chunk_size: queries per chunk (``lax.map`` over chunks), bounding peak memory whatever N; rounded up to
        a power of two (the last chunk is padded with weight-0 queries). Results do not depend on it, to the bit.
        (The query axis is first padded to a shape bucket, so any N reuses a compiled program; see the README's
        "Compile once".)
      memory: bytes one chunk may hold when ``chunk_size`` is not given (default ``MEMORY_BUDGET`` = 1 GiB);
        the chunk size is derived from it (an estimate of each strategy's per-query working set).
      devices: the devices the query axis is sharded over (``jax.sharding``: a 1-d ``Mesh``, chunks placed
        with ``NamedSharding``, per-chunk sums gathered by XLA). ``None`` (default): every visible device
        (``jax.devices()``), so several GPUs — or, after ``jax.distributed.initialize()``, several hosts — are
        used without asking; an int: the first that many; or a list of devices. Results are the same, to the
        bit, on any number of devices.
      prices: what-if prices, S scenarios in one vmapped call (on one device): per-model multipliers [S, M]
        (model m costs ``prices[s, m]`` times its cost in ``ds``; the cost estimates ex ante and post hoc move
        with it) or absolute per-query cost tables [S, N, M] (the estimates scaled per query by table / cost,
        keeping their relative error; the table's cost where ``ds``'s is 0). Quality does not change. Returns a
        list of S Curves; a scenario of ones gives this sweep's curve, to the bit (tested). Not with state
        tables or a state model.

    Returns:
      A :class:`Curve` with ``lam`` (the λ or θ as given, [L] or [L, D]), ``cost``, ``quality`` [L],
      ``answered`` [L, M], ``ran`` [L] (mean number of models run per query); with ``prices``, a list of S.

    Example:
      >>> import cascjax
      >>> ds = cascjax.load_example()
      >>> curve = cascjax.sweep(ds, cascjax.perfect_estimates(ds), [0.0, 1e3, 1e9])
      >>> [round(float(x), 3) for x in curve.quality]
      [0.859, 0.839, 0.442]
      >>> cascade = cascjax.sweep(ds, cascjax.perfect_estimates(ds), [0.5, 2.0], "threshold_cascade")
      >>> [round(float(x), 2) for x in cascade.ran]   # θ = 2: never confident, all 6 models run
      [2.88, 6.0]
      >>> today, halved = cascjax.sweep(ds, cascjax.perfect_estimates(ds), [0.0, 1e3],
      ...                               prices=[[1.0] * 6, [0.5] * 6])   # S = 2 scenarios, one call
      >>> round(float(today.cost[0] / halved.cost[0]), 6)   # λ = 0 ignores cost: the same choices, half the cost
      2.0
      >>> bool(halved.quality[1] > today.quality[1])        # at λ = 1e3 cheaper models buy better answers
      True
    """
    curve, n_lam, n = _evaluate(ds, est, lambdas, strategy, tie, max_depth=max_depth, samples=samples,
                                no_deviation=no_deviation, force_order=force_order, greedy=greedy, prune=prune,
                                return_choices=return_choices, tie_rtol=tie_rtol, tie_band=tie_band,
                                batch_size=batch_size, chunk_size=chunk_size, memory=memory, devices=devices,
                                prices=prices)
    if prices is None:
        return _cut(curve, n_lam, n)
    host = [None if a is None else np.asarray(a) for a in curve]  # [S, ...] each: one Curve per scenario
    if host[0].ndim == (1 if strategy == "routing" else 2):  # λ as given (not batched by the kernel)
        host[0] = np.broadcast_to(host[0], host[1].shape[:1] + host[0].shape)
    return [_cut(Curve(*(None if a is None else _compile.put(a[s]) for a in host)), n_lam, n)
            for s in range(np.shape(prices)[0])]  # (the scenarios past S are padding)


def group_sweep(ds: Dataset, est: Estimates, lambdas, groups, strategy: str = "routing", tie: str = "min",
                **options) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sweep`'s mean cost and quality on each of G groups of queries at once: [L, G] each (float64; the
    sums per group inside the kernel, no per-query outputs). ``groups`` [N, G]: 0/1, which queries each group
    holds (a query may be in several groups, or in none); each group's means are those of :func:`sweep` on its
    queries alone (the same decisions, the sums in another order: equal to a few ulps). Options as
    :func:`sweep`'s. Only the means are per group (the answer counts of the kernels are over all queries).
    (The engine of :func:`cascjax.grid`: one call gives every cell's fit and test points.)"""
    groups = np.asarray(groups)
    if groups.ndim != 2 or groups.shape[0] != ds.n_queries or not ((groups == 0) | (groups == 1)).all():
        raise CascjaxError(f"groups must be a 0/1 array [N = {ds.n_queries}, G], got shape {groups.shape}")
    sizes = groups.sum(axis=0)
    if not sizes.all():
        raise CascjaxError(f"group {int(np.argmin(sizes))} holds no query")
    g = groups.shape[1]
    # The group axis padded to a shape bucket too (empty groups, cut off below): one program for every G of it.
    padded = np.zeros((ds.n_queries, _compile.small_bucket(g)), groups.dtype)
    padded[:, :g] = groups
    curve, n_lam, n = _evaluate(ds, est, lambdas, strategy, tie, groups=padded, **options)
    scale = n / sizes.astype(np.float64)  # the kernels divide the sums by N
    return tuple(np.asarray(a, np.float64)[:n_lam, :g] * scale for a in (curve.cost, curve.quality))


def _evaluate(ds, est, lambdas, strategy="routing", tie="min", *, max_depth=None, samples=64, no_deviation=False,
              force_order=False, greedy=False, prune=True, return_choices=False, tie_rtol=None, tie_band="score",
              batch_size=None, chunk_size=None, memory=None, devices=None, groups=None, prices=None,
              scenarios=None):
    """:func:`sweep` on padded buckets: (the kernel's Curve, real λ rows, real queries); with ``groups`` (see
    :func:`group_sweep`) its sums are per group; with ``prices`` every field has a leading scenario axis, as
    with ``scenarios``: the realised costs and the cost estimates ex ante and post hoc of each scenario given
    directly, (cost, cost_ante, cost_post) [S, N, M] each in the data's dtype (:mod:`cascjax._surface`)."""
    if strategy not in STRATEGIES:
        raise CascjaxError(f"unknown strategy {strategy!r}; choose one of {list(STRATEGIES)}")
    tie_max = check_tie(tie)
    if tie_band not in ("score", "lambda"):
        raise CascjaxError(f"unknown tie_band {tie_band!r}; choose 'score' or 'lambda'")
    if tie_band == "lambda" and strategy not in ("routing", "cascade"):
        raise CascjaxError(f"tie_band='lambda' (path_at's rule on the exact path's breakpoints) is for routing and "
                           f"the cascade; {strategy} takes tie_band='score'")
    check_estimates(ds, est)
    dtype = ds.quality.dtype
    if strategy == "routing":
        if max_depth not in (None, 1):
            raise CascjaxError(f"routing runs one model per query: max_depth must be 1 or None, got {max_depth!r}")
        lam = check_lambdas(lambdas, dtype)
        if lam.ndim != 1:
            raise CascjaxError(f"routing takes one λ per point, shape [L]; got shape {lam.shape}")
    else:
        from ._supermodels import check_depth

        # Only cascade routing enumerates supermodels (and greedy only R ∪ {m}): the table limit is its own.
        table = strategy == "cascade_routing" and not greedy
        depth = check_depth(ds.n_models, max_depth, candidates=table)
        if strategy in ("cascade", "cascade_routing"):
            lam = _per_step(check_lambdas(lambdas, dtype), depth, "λ")
        else:
            lam = _per_step(_check_thresholds(lambdas, dtype), depth, "thresholds")
    # A state table's rows are 2^M times wider (the cascade keeps D + 1 of them, the others one).
    # (A state model's rows are its features: about a table row's width, never 2^M rows.)
    states = isinstance(est, (StateEstimates, StateModel))
    width = 1 << ds.n_models if isinstance(est, StateEstimates) and strategy == "cascade_routing" else (
        depth + 1 if states and strategy == "cascade" else 1)
    if prices is not None or scenarios is not None:
        if states:
            raise CascjaxError("prices take Estimates (per-query fields), not a state table or a state model")
        from ._prices import price_scenarios

        # (cost, cost_ante, cost_post) [S, N, M] each; the scenario axis padded to a shape bucket (copies of the
        # last scenario, cut off by sweep), so any S of a bucket reuses one program.
        if scenarios is None:
            scenarios = price_scenarios(ds, est, prices, dtype)
        scenarios = tuple(_compile.pad_rows(t, _compile.small_bucket(t.shape[0]), last=True) for t in scenarios)
        devices = 1  # the scenarios are the batch, on one device
    on = scenarios is not None
    n_scenarios = 1 if scenarios is None else scenarios[0].shape[0]
    n, size = ds.n_queries, _compile.bucket(ds.n_queries, ds.n_models * dtype.itemsize * width * n_scenarios)
    n_lam = lam.shape[0]

    def per_scenario(make):
        """``make(cost, est)``'s per-query arrays, padded and put; with prices, each scenario's stacked."""
        if scenarios is None:
            return _compile.pad_put(make(ds.cost, est), size)
        parts = [_compile.pad_rows(make(scenarios[0][s], est._replace(cost_ante=scenarios[1][s],
                                                                      cost_post=scenarios[2][s])), size)
                 for s in range(n_scenarios)]
        return jax.tree.map(lambda *a: _compile.put(np.stack(a)), *parts)

    # Shape buckets (cascjax._compile): the query axis and the λ axis are padded, in NumPy, to a few sizes, so
    # one compiled program serves every N and L of a bucket; padding rows weigh 0 and are cut off below.
    lam = _compile.pad_rows(lam, _compile.small_bucket(n_lam))
    quality = _compile.pad_put(ds.quality, size)
    cost = per_scenario(lambda c, e: c)
    count = np.int32(n)
    rtol = _tie_rtol(dtype, tie_rtol)
    if groups is not None:
        groups = _compile.pad_put(_compile.cast(groups, dtype), size)  # (padding rows are masked by the kernels)
    if strategy in ("cascade", "cascade_routing"):
        e, z, factor, _ = _strategy_inputs(ds, est, depth, samples, no_deviation, checked=True, candidates=table,
                                           prefix=strategy == "cascade", lazy=True)
        model = None
        if isinstance(e, Lazy):  # a state model: its rows go with the queries, the model to every chunk whole
            e, model = e.rows, jax.tree.map(jnp.asarray, e.model)
        if on:  # each scenario's estimates (their costs moved with the prices)
            e = per_scenario(lambda c, e_: _strategy_inputs(ds, e_, depth, samples, no_deviation, checked=True,
                                                            candidates=table, prefix=strategy == "cascade")[0])
        else:
            e = _compile.pad_put(e, size)
    if strategy == "cascade_routing":
        from ._cascade_routing import MAX_MODELS, cascade_routing_sweep, chunk_bytes

        if ds.n_models > MAX_MODELS:
            raise CascjaxError(f"cascade routing supports at most {MAX_MODELS} models, got {ds.n_models}; "
                               "select fewer models (Dataset.select, or --models on the command line)")
        per_query, fixed = chunk_bytes(ds.n_models, depth, z.shape[0], lam.shape[0], ds.quality.dtype.itemsize,
                                       bool(greedy), states=states)
        plan = _chunks.plan(size, chunk_size, memory, per_query * n_scenarios, fixed * n_scenarios, devices)
        curve = cascade_routing_sweep(quality, cost, e, lam, z, factor=factor, n=count, depth=depth, rtol=rtol,
                                      tie_max=tie_max, force_order=bool(force_order), greedy=bool(greedy),
                                      prune=bool(prune), return_choices=return_choices, plan=plan, model=model,
                                      groups=groups, batched=on)
        return curve, n_lam, n
    itemsize, m = ds.quality.dtype.itemsize, ds.n_models
    # Per-query working set (bytes) of one chunk: the inputs and a few [M] temporaries; the cascade's
    # Monte-Carlo points for every (step, prefix), [D, K, M], dominate its own.
    # The cascade's route: through each step's stop interval from CASCADE_EVENT_LAMBDAS λ rows (and always for
    # the λ band), else the direct grid.
    cascade_events = strategy == "cascade" and (tie_band == "lambda" or lam.shape[0] >= CASCADE_EVENT_LAMBDAS)
    if strategy == "cascade":
        per_query = m * itemsize * (12 + 3 * depth * z.shape[0] + 3 * (depth + 1) * states)
        if cascade_events:  # models run, unsure flags and their running count per λ
            per_query += 9 * lam.shape[0]
    else:
        per_query = (8 if strategy == "routing" else 6) * m * itemsize
    if groups is not None:  # a few [G] temporaries per query
        per_query += 4 * groups.shape[1] * itemsize
    plan = _chunks.plan(size, chunk_size, memory, per_query * n_scenarios, 0, devices)
    batch_size = _batch_size(plan.chunk, ds.n_models * n_scenarios, lam.shape[0], batch_size)
    if strategy == "cascade":
        from ._cascade import cascade_sweep
        from ._cascade_events import sweep_events as through_intervals

        if cascade_events:
            run = partial(through_intervals, lam_band=tie_band == "lambda", batched=on, depth=depth, rtol=rtol,
                          return_choices=return_choices, plan=plan)
        else:
            run = _compile.batched(partial(cascade_sweep, batch_size=batch_size, depth=depth, rtol=rtol,
                                           return_choices=return_choices, plan=plan),
                                   (None, 0, 0, None, None, None, None, None, None), on)
        curve = run(quality, cost, e, lam, z, factor, count, np.bool_(tie_max), groups)
    elif strategy == "threshold_cascade":
        from ._threshold import threshold_sweep

        post = _compile.pad_put(_compile.cast(threshold_inputs(est), dtype), size)
        run = partial(threshold_sweep, return_choices=return_choices, batch_size=batch_size, plan=plan)
        curve = _compile.batched(run, (None, 0, None, None, None, None), on)(quality, cost, post, lam, count, groups)
    else:
        mu = _compile.pad_put(_compile.cast(routing_inputs(est)[0], dtype), size)
        c_hat = per_scenario(lambda c, e: _compile.cast(routing_inputs(e)[1], dtype))
        if tie_band == "lambda" or _event_route(m, lam.shape[0]):  # the same choices
            def plan_for(width):
                return _chunks.plan(size, chunk_size, memory, bytes_per_query(m, width, itemsize) * n_scenarios,
                                    0, devices)

            curve = sweep_events(quality, cost, mu, c_hat, lam, count, np.bool_(tie_max), groups, rtol=rtol,
                                 return_choices=return_choices, plan_for=plan_for, lam_band=tie_band == "lambda",
                                 batched=on)
        else:
            run = partial(routing_sweep, rtol=rtol, return_choices=return_choices, batch_size=batch_size, plan=plan)
            curve = _compile.batched(run, (None, 0, None, 0, None, None, None, None), on)(
                quality, cost, mu, c_hat, lam, count, np.bool_(tie_max), groups)
    return curve, n_lam, n


def _cut(curve: Curve, n_lam: int, n: int) -> Curve:
    """The curve of the real λ rows and queries (the kernels ran on padded buckets); then the bound on live
    programs is checked (:func:`cascjax._compile.checkpoint`)."""
    cut = _compile.cut
    curve = Curve(*(cut(a, n_lam) for a in curve[:5]), cut(curve.choice, n_lam, n), cut(curve.query_cost, n_lam, n))
    _compile.checkpoint()
    return curve


def _batch_size(chunk: int, n_models: int, n_lam: int, batch_size: int | None) -> int:
    if batch_size is None:
        budget = CPU_BATCH_ELEMENTS if jax.default_backend() == "cpu" else BATCH_ELEMENTS
        batch_size = max(1, budget // (chunk * n_models))
    elif not (isinstance(batch_size, (int, np.integer)) and batch_size >= 1):
        raise CascjaxError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(min(batch_size, n_lam))
