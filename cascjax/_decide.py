"""The one decision rule behind every strategy (DESIGN section 4), for one query and one λ.

    score(T) = Q(T) − λ·C(T);  T* = argmax score
    ties (|score − max| ≤ tol): MIN takes the cheapest C, MAX the most expensive;
    equal C as well (within tol): the lowest candidate index.

Candidates are ordered so that a lower index is the lexicographically first set of sorted model indices.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ._errors import CascjaxError

#: The default tie tolerance in units of the dtype's machine epsilon, relative to the scores' magnitude.
#: Estimates rounded to a few decimals produce scores that should tie but differ by a few ulps (e.g.
#: 0.3 − 0.1 vs 0.7 − 0.5); 32 ulps of the magnitude of Q and λ·C ties them reliably in float32 and float64.
TIE_ULPS = 32


def tie_rtol(dtype, tie_rtol: float | None = None) -> float:
    """The relative tie tolerance for ``dtype``: ``tie_rtol`` if given, else 32·eps(dtype)."""
    if tie_rtol is None:
        return TIE_ULPS * float(jnp.finfo(dtype).eps)
    if not (np.isfinite(tie_rtol) and tie_rtol >= 0):
        raise CascjaxError(f"tie_rtol must be a finite number >= 0, got {tie_rtol}")
    return float(tie_rtol)


def check_tie(tie: str) -> bool:
    """Validates a tie rule name; True for MAX."""
    if tie not in ("min", "max"):
        raise CascjaxError(f"unknown tie rule {tie!r}; choose 'min' or 'max'")
    return tie == "max"


def select(quality: jax.Array, cost: jax.Array, lam: jax.Array, rtol: float, tie_max: bool,
           valid: jax.Array | None = None, magnitudes: tuple[jax.Array, jax.Array] | None = None,
           rank: jax.Array | None = None) -> jax.Array:
    """Index of the best candidate under the decision rule.

    Args:
      quality: [S] estimated quality Q of each candidate.
      cost: [S] estimated cost C of each candidate.
      lam: scalar λ.
      rtol: relative tie tolerance; scores within ``rtol·(max|Q| + λ·max|C|)`` of the best tie, costs within
        ``rtol·max|C|`` are equal.
      tie_max: MAX variant (most expensive of the tied) if True, MIN otherwise; a Python bool, or a traced
        bool scalar (both rules' targets are then computed and one is chosen, one program for both).
      valid: optional [S] bool mask of the candidates allowed (at least one must be True).
      magnitudes: optional precomputed (max|Q|, max|C|) over the allowed candidates; they do not depend on
        λ, so a caller looping over λ computes them once.
      rank: optional [S] tie order when the candidates are not listed in it: of the tied candidates of equal
        cost, the one of lowest rank wins (default: the lowest index).

    Returns:
      int32 scalar index into the candidates.
    """
    score = quality - lam * cost
    if valid is not None:
        score = jnp.where(valid, score, -jnp.inf)
    qmag, cmag = magnitudes if magnitudes is not None else _magnitudes(quality, cost, valid)
    best = jnp.max(score)
    tied = score >= best - rtol * (qmag + lam * cmag)
    ctol = rtol * cmag
    if isinstance(tie_max, (bool, np.bool_)):
        if tie_max:
            target = jnp.max(jnp.where(tied, cost, -jnp.inf))
            pick = tied & (cost >= target - ctol)
        else:
            target = jnp.min(jnp.where(tied, cost, jnp.inf))
            pick = tied & (cost <= target + ctol)
    else:  # traced: one program serves both rules (the sweeps pass the rule as data). MIN on −cost is MAX on
        # cost, exactly (negation is exact and rounds symmetrically): one reduction, as in the static case.
        signed = jnp.where(tie_max, cost, -cost)
        target = jnp.max(jnp.where(tied, signed, -jnp.inf))
        pick = tied & (signed >= target - ctol)
    if rank is not None:
        return jnp.argmin(jnp.where(pick, rank, jnp.iinfo(rank.dtype).max)).astype(jnp.int32)
    return jnp.argmax(pick).astype(jnp.int32)


def _magnitudes(quality, cost, valid=None):
    if valid is None:
        return jnp.max(jnp.abs(quality)), jnp.max(jnp.abs(cost))
    return jnp.max(jnp.where(valid, jnp.abs(quality), 0)), jnp.max(jnp.where(valid, jnp.abs(cost), 0))
