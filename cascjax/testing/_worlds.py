"""Small exact worlds in which the optimal adaptive policy is known: a yardstick for the decision rule.

The setting is the paper's SWE-Bench-like world (Dekoninck, Baader & Vechev, ICML 2025): M ≤ 4 models,
model m's quality X_m ~ N(mu_m, sd_m²) independently, unknown until m runs; running m costs cost_m and
reveals X_m exactly. A policy runs models one at a time (adaptively, in any order, at least one), stops, and
answers with the best revealed value; its payoff is max_{m run} X_m − λ·Σ_{m run} cost_m.

Everything is computed *exactly* in a discretised world: X_m = mu_m + sd_m·z_{q_m} with q_m uniform on the
k nodes of :func:`world_nodes`, independent across models. No Monte Carlo anywhere, so three routes to
numbers can be compared to rounding:

* :func:`optimal_value`: the Bayes-optimal adaptive policy by dynamic programming;
* :func:`pandora_value`: the same optimum by Weitzman's Pandora's-box theorem (independent route);
* :func:`rule_value` (NumPy loops) and :func:`rule_values` (batched through cascjax's JAX cascade-routing
  kernel): the paper's cascade-routing decision rule, DESIGN section 4.

:func:`dp_gap` is what the rule gives away against the optimum (≥ 0 up to rounding).

Shapes: M models (1..4), W worlds in a batch, k nodes, D steps.
"""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist
from typing import NamedTuple

import numpy as np

from .._errors import CascjaxError
from ._reference import TIE_ULPS

#: The largest pool a world may have (the DP table has 2^M·M·k entries per world; the rule enumerates k^M).
MAX_WORLD_MODELS = 4
_RTOL = TIE_ULPS * float(np.finfo(np.float64).eps)


class World(NamedTuple):
    """One world (fields [M]) or a batch of W worlds (fields [W, M]); float arrays.

    Attributes:
      mu: [M] or [W, M] prior mean of each model's quality.
      sd: [M] or [W, M] prior standard deviation (≥ 0; 0 means the quality is known ex ante).
      cost: [M] or [W, M] cost of running each model (≥ 0).

    Example:
      >>> w = World(mu=[0.0, 0.5], sd=[1.0, 0.0], cost=[0.1, 0.2]).validate()
      >>> w.mu.dtype, w.mu.shape
      (dtype('float64'), (2,))
    """

    mu: np.ndarray
    sd: np.ndarray
    cost: np.ndarray

    def validate(self) -> World:
        """The world as float64 arrays, after checking it.

        Returns:
          A :class:`World` whose fields are float64 NumPy arrays, all [M] or all [W, M].

        Raises:
          CascjaxError: a field that is not numeric, not [M] or [W, M], of another shape than ``mu``,
            non-finite, or negative (``sd``, ``cost``); M not in 1..4; an empty batch.

        Example:
          >>> from cascjax.testing import World
          >>> World(mu=[[0, 1]], sd=[[1, 0]], cost=[[1, 2]]).validate().cost   # W = 1, M = 2: ints become floats
          array([[1., 2.]])
          >>> try:
          ...     World(mu=[0.0, 0.5], sd=[1.0, -1.0], cost=[0.1, 0.2]).validate()
          ... except ValueError as error:
          ...     print(error)
          world field sd must be >= 0; got -1.0 at position (1,)
        """
        arrays = {}
        for name, value in self._asdict().items():
            arr = np.asarray(value)
            if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
                raise CascjaxError(f"world field {name} must be numeric, got dtype {arr.dtype}")
            arrays[name] = arr.astype(np.float64)
        shape = arrays["mu"].shape
        for name, arr in arrays.items():
            if arr.ndim not in (1, 2):
                raise CascjaxError(f"world field {name} must be [M] or [W, M], got shape {arr.shape}")
            if arr.shape != shape:
                raise CascjaxError(f"world field {name} has shape {arr.shape} but mu has shape {shape}")
        if not 1 <= shape[-1] <= MAX_WORLD_MODELS:
            raise CascjaxError(f"a world has 1..{MAX_WORLD_MODELS} models, got M = {shape[-1]} (field mu, "
                               f"shape {shape})")
        if len(shape) == 2 and shape[0] < 1:
            raise CascjaxError("the batch of worlds is empty (field mu has shape (0, M))")
        for name, arr in arrays.items():
            bad = ~np.isfinite(arr)
            if bad.any():
                raise CascjaxError(f"world field {name} must be finite; got {arr[bad][0]} at position "
                                   f"{tuple(int(i) for i in np.argwhere(bad)[0])}")
        for name in ("sd", "cost"):
            neg = arrays[name] < 0
            if neg.any():
                raise CascjaxError(f"world field {name} must be >= 0; got {arrays[name][neg][0]} at position "
                                   f"{tuple(int(i) for i in np.argwhere(neg)[0])}")
        return World(**arrays)


def world_nodes(k: int) -> np.ndarray:
    """The k standard nodes of the discrete world: quantiles of N(0, 1), mean 0, variance exactly 1.

    z_q = Φ⁻¹((q + 0.5)/k), q = 0..k−1, made exactly antisymmetric and divided by sqrt(mean(z²)), so the
    uniform distribution on the nodes has mean 0 and population variance 1 (k = 1: the single node 0).

    Args:
      k: the number of nodes, ≥ 1.

    Returns:
      [k] float64, ascending.

    Example:
      >>> z = world_nodes(4)
      >>> [round(float(x), 4) for x in z], round(float(np.mean(z ** 2)), 12)
      ([-1.3629, -0.3775, 0.3775, 1.3629], 1.0)
    """
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise CascjaxError(f"the number of nodes must be an integer >= 1, got {k!r}")
    k = int(k)
    if k == 1:
        return np.zeros(1)
    normal = NormalDist()
    z = np.array([normal.inv_cdf((q + 0.5) / k) for q in range(k)])
    z = (z - z[::-1]) / 2.0  # exactly antisymmetric: mean 0 up to the rounding of the sum
    return z / math.sqrt(float(np.mean(z * z)))


# -- shared input handling -------------------------------------------------------------------------------------

def _batch(world: World) -> tuple[World, bool]:
    """The validated world as [W, M] arrays, and whether it came as a batch."""
    w = World(*world) if not isinstance(world, World) else world
    w = w.validate()
    if w.mu.ndim == 1:
        return World(w.mu[None], w.sd[None], w.cost[None]), False
    return w, True


def _values(world: World, nodes: int) -> np.ndarray:
    """x_{m,q} = mu_m + sd_m·z_q: [W, M, k] (the same expression everywhere, so values agree bit for bit)."""
    z = world_nodes(nodes)
    return world.mu[:, :, None] + world.sd[:, :, None] * z[None, None, :]


def _check_lam(lam, n_worlds: int, batched: bool, name: str = "lam") -> np.ndarray:
    """One λ ≥ 0 per world: a scalar, or [W] for a batch. Returns [W] float64."""
    arr = np.asarray(lam, dtype=np.float64)
    if arr.ndim == 1 and batched and arr.shape[0] == n_worlds:
        out = arr
    elif arr.ndim == 0:
        out = np.full(n_worlds, float(arr))
    else:
        raise CascjaxError(f"{name} must be a scalar{f' or [W] with W = {n_worlds}' if batched else ''}; "
                           f"got shape {arr.shape}")
    if not np.isfinite(out).all() or (out < 0).any():
        raise CascjaxError(f"{name} must be finite and >= 0; got {out[~(np.isfinite(out) & (out >= 0))][0]}")
    return out


def _check_options(n_models: int, tie: str, max_depth) -> tuple[bool, int]:
    if tie not in ("min", "max"):
        raise CascjaxError(f"unknown tie rule {tie!r}; choose 'min' or 'max'")
    depth = n_models if max_depth is None else max_depth
    if not isinstance(depth, (int, np.integer)) or isinstance(depth, bool) or not 1 <= depth <= n_models:
        raise CascjaxError(f"max_depth must be an integer in 1..{n_models} (the number of models), got {max_depth!r}")
    return tie == "max", int(depth)


def _check_steps(lam, n_worlds: int, depth: int, batched: bool) -> np.ndarray:
    """The rule's λ per world and step, [W, D]: a scalar, [D] (one world), [W] or [W, D] (a batch)."""
    arr = np.asarray(lam, dtype=np.float64)
    if arr.ndim == 0:
        out = np.full((n_worlds, depth), float(arr))
    elif arr.ndim == 1 and not batched and arr.shape[0] == depth:
        out = arr[None]
    elif arr.ndim == 1 and batched and arr.shape[0] == n_worlds:
        out = np.repeat(arr[:, None], depth, axis=1)
    elif arr.ndim == 2 and batched and arr.shape == (n_worlds, depth):
        out = arr
    else:
        allowed = f"[W] = [{n_worlds}] or [W, D] = [{n_worlds}, {depth}]" if batched else f"[D] = [{depth}]"
        raise CascjaxError(f"lam must be a scalar or {allowed} (D = max_depth); got shape {arr.shape}")
    if not np.isfinite(out).all() or (out < 0).any():
        raise CascjaxError(f"lam must be finite and >= 0; got {out[~(np.isfinite(out) & (out >= 0))][0]}")
    return out


def _price(price, steps: np.ndarray, n_worlds: int, batched: bool) -> np.ndarray:
    """The λ of the payoff per world: ``price`` if given, else the rule's λ when it is constant over steps."""
    if price is not None:
        return _check_lam(price, n_worlds, batched, "price")
    if not (steps == steps[:, :1]).all():
        raise CascjaxError("with a per-step lam the payoff's λ is ambiguous: pass price= (a scalar or [W])")
    return steps[:, 0].copy()


def _unbatch(values: np.ndarray, batched: bool):
    return values if batched else float(values[0])


# -- the optimum ------------------------------------------------------------------------------------------------

def optimal_value(world: World, lam, nodes: int = 8, *, return_first: bool = False):
    """The Bayes-optimal adaptive policy's expected payoff, by dynamic programming (exact, discrete world).

    The state is (S, b): the set S of models run and the best revealed value b. b is always one of the M·k
    node values x_{m,q} = mu_m + sd_m·z_q, so V(S, ·) is a finite table and

        V(S, b) = max(b,  max_{m ∉ S} [−λ·cost_m + mean_q V(S ∪ {m}, max(b, x_{m,q}))]),   V(all, b) = b,

    with no stopping at S = ∅ (at least one model runs). Vectorised over b and over the W worlds; the 2^M sets
    are visited in order of decreasing size.

    Args:
      world: a :class:`World` with fields [M] or [W, M].
      lam: λ ≥ 0: a scalar, or [W] (one per world) for a batch.
      nodes: k, the number of nodes per model (:func:`world_nodes`).
      return_first: also return the optimal first model (lowest index among those within 32 ulps of the best).

    Returns:
      The value (a float, or [W] for a batch); with ``return_first`` a pair (value, first model: int or [W]).

    Example:
      >>> w = World(mu=[0.25, 1.0], sd=[1.0, 0.5], cost=[0.5, 1.0])   # nodes ±1: X_0 ∈ {−0.75, 1.25}
      >>> v, first = optimal_value(w, 1.0, nodes=2, return_first=True)
      >>> round(v, 6), first   # run model 0; only if it shows −0.75 run model 1 too (E[X_1] − 1 = 0)
      (0.125, 0)
    """
    w, batched = _batch(world)
    n_worlds, m = w.mu.shape
    lam = _check_lam(lam, n_worlds, batched)
    x = _values(w, nodes)  # [W, M, k]
    k = x.shape[2]
    flat = x.reshape(n_worlds, m * k)  # [W, B]: every possible best value b
    price = lam[:, None] * w.cost  # [W, M]
    full = (1 << m) - 1
    table = {full: flat}
    rows = np.arange(n_worlds)[:, None, None]

    def run_next(state: int, model: int) -> np.ndarray:
        """−λ·cost_m + mean_q V(S ∪ {m}, max(b, x_{m,q})) for every b: [W, B]."""
        new = x[:, model, None, :]  # [W, 1, k]
        index = np.where(new > flat[:, :, None], model * k + np.arange(k), np.arange(m * k)[None, :, None])
        nxt = table[state | 1 << model][rows, index]  # [W, B, k]
        return np.mean(nxt, axis=2) - price[:, model, None]

    for state in sorted(range(1, full), key=lambda s: -s.bit_count()):
        best = flat.copy()  # stop and answer with b
        for model in range(m):
            if not state >> model & 1:
                best = np.maximum(best, run_next(state, model))
        table[state] = best
    # S = ∅: some model must run; V({m}, ·) at b = x_{m,q} is V({m}, x_{m,q}).
    first_values = np.stack([np.mean(table[1 << j][:, j * k:(j + 1) * k], axis=1) - price[:, j]
                             for j in range(m)], axis=1)  # [W, M]
    value = np.max(first_values, axis=1)
    if not return_first:
        return _unbatch(value, batched)
    scale = np.max(np.abs(first_values), axis=1) + np.max(np.abs(price), axis=1)
    first = np.argmax(first_values >= (value - _RTOL * scale)[:, None], axis=1)
    return _unbatch(value, batched), (first if batched else int(first[0]))


def pandora_value(world: World, lam, nodes: int = 8):
    """The same optimum as :func:`optimal_value` by an independent route: Weitzman's Pandora's-box theorem.

    Model m's reservation value r_m solves E[(X_m − r_m)^+] = λ·cost_m. In the discrete world
    Σ_q (x_{m,q} − r)^+ = max_{j=0..k} (S_j − j·r) with S_j the sum of the j largest nodes, so (for
    λ·cost_m > 0) r_m = max_{j=1..k} (S_j − k·λ·cost_m)/j exactly; this gives r_m = max_q x_{m,q} when
    λ·cost_m = 0 (any r ≥ the largest node solves the equation then) and r_m = mu_m − λ·cost_m when sd_m = 0.
    The optimal expected payoff with no outside option (at least one box is opened) is
    E[max_m min(X_m, r_m)] (Weitzman 1979, "Optimal search for the best alternative", Econometrica 47(3);
    in this form: Kleinberg, Waggoner & Weyl 2016, "Descending price optimally coordinates search", EC'16),
    computed here by enumerating the k^M joint outcomes.

    Args:
      world: a :class:`World` with fields [M] or [W, M].
      lam: λ ≥ 0: a scalar, or [W] for a batch.
      nodes: k, the number of nodes per model.

    Returns:
      The value: a float, or [W] for a batch.

    Example:
      >>> round(pandora_value(World(mu=[0.25, 1.0], sd=[1.0, 0.5], cost=[0.5, 1.0]), 1.0, nodes=2), 6)
      0.125
    """
    w, batched = _batch(world)
    n_worlds, m = w.mu.shape
    lam = _check_lam(lam, n_worlds, batched)
    x = _values(w, nodes)
    k = x.shape[2]
    top = np.cumsum(-np.sort(-x, axis=2), axis=2)  # [W, M, k]: S_j, j = 1..k
    fee = k * lam[:, None, None] * w.cost[:, :, None]
    reserve = np.max((top - fee) / np.arange(1, k + 1), axis=2)  # [W, M]
    capped = np.minimum(x, reserve[:, :, None])  # [W, M, k]
    grid = np.array(list(itertools.product(range(k), repeat=m)))  # [k^M, M]
    outcomes = capped[:, np.arange(m)[None, :], grid]  # [W, k^M, M]
    return _unbatch(np.mean(np.max(outcomes, axis=2), axis=1), batched)
