"""Exact paths from per-query events: sort the events of all queries by λ, group equal λ, accumulate the changes.

A kernel's exact path (:func:`cascjax.routing_path`, :func:`cascjax.cascade_path`,
:func:`cascjax.cascade_routing_path`) walks each query and emits events: the λ at which the query's decision
changes and the changes of its summed cost, quality (and models run) there. :func:`_path` turns the events of
every query into one :class:`cascjax.Curve` of vertices; :func:`_bucket` pads event counts to a few sizes so that
few programs are compiled.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import _chunks, _compile
from ._curve import Curve


def _finite(lam):
    """The number of events in ``lam`` [E] (finite λ; +inf marks none), as an int32 scalar."""
    return jnp.sum(jnp.isfinite(lam), dtype=jnp.int32)


@partial(jax.jit, static_argnames="size")
def _accumulate(lam, deltas, base, n, size):
    """A path from its events: keep the ``size`` finite ones (most are +inf padding), sort by λ, and
    accumulate the changes of each group of equal λ.

    Args:
      lam: [E] event λ (+inf: no event). deltas: [E, F] changes of F summed quantities. base: [F] their sums
      before the first event. n: the divisor (queries).

    Returns:
      (λ [size] ascending, means [size, F] after each λ's group, keep [size] (last of a group, finite),
      base / n).
    """
    (idx,) = jnp.nonzero(jnp.isfinite(lam), size=size, fill_value=lam.shape[0])
    pad = idx == lam.shape[0]
    lam = jnp.where(pad, jnp.inf, lam.at[idx].get(mode="fill", fill_value=jnp.inf))
    deltas = jnp.where(pad[:, None], 0.0, deltas.at[idx].get(mode="fill", fill_value=0.0))
    # For λ >= 0 the IEEE bit pattern as an unsigned integer sorts like the float; XLA sorts a lone
    # integer array several times faster than a float array with payloads, so sort the keys alone and
    # find each event's place by binary search.
    utype = jnp.uint32 if lam.dtype.itemsize == 4 else jnp.uint64
    keys = jax.lax.bitcast_convert_type(lam, utype)
    sorted_keys = jnp.sort(keys)
    slot = jnp.searchsorted(sorted_keys, keys, side="right") - 1  # last position of each equal-λ run
    cum = jnp.cumsum(jnp.zeros_like(deltas).at[slot].add(deltas), axis=0)
    lam_sorted = jax.lax.bitcast_convert_type(sorted_keys, lam.dtype)
    run_end = jnp.concatenate([sorted_keys[1:] != sorted_keys[:-1], jnp.ones((1,), bool)])
    keep = run_end & jnp.isfinite(lam_sorted)
    return lam_sorted, (base[None] + cum) / n, keep, base / n


def _bucket(k: int) -> int:
    """``k`` rounded up to one of a few sizes per power of two (≤ 12.5 % padding, few compilations).

    Example:
      >>> from cascjax._events import _bucket
      >>> [_bucket(k) for k in (1, 64, 65, 1000)]
      [64, 64, 72, 1024]
    """
    if k <= 64:
        return 64
    step = 1 << (k.bit_length() - 4)
    return -(-k // step) * step


def _path(lam, deltas, base, n, count) -> Curve:
    """The Curve of an exact path from ``count`` finite events: λ [E], deltas [E, F] and base [F] of the summed
    cost, quality and (F = 3) models run."""
    if len(lam.sharding.device_set) > 1:
        # Events from several devices (replicated by ``_chunks.gather``): sort and sum them on one device, as
        # a one-device run does (XLA partitions a multi-device cumulative sum differently, and its rounding
        # with it), so paths are the same to the bit on any number of devices.
        lam, deltas, base = _chunks.local_copy((lam, deltas, base))
    lam, values, keep, start = _accumulate(lam, deltas, base, n, size=_bucket(count))
    # The vertices kept vary from problem to problem: select them in NumPy (a jnp boolean index would compile
    # a program per count) and put the result back on the device.
    lam, values, keep, start = (np.asarray(a) for a in (lam, values, keep, start))
    values = np.concatenate([start[None], values[keep]])
    lam = np.concatenate([np.zeros((1,), lam.dtype), lam[keep]])
    return Curve(*(_compile.put(a) for a in (lam, values[:, 0], values[:, 1])),
                 ran=_compile.put(values[:, 2]) if values.shape[1] > 2 else None)
