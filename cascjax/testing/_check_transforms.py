"""The checks that jit, vmap and sharding do not change results: a vmapped sweep equals a loop of single λ and
the eager run, a sweep sharded over devices equals the one-device sweep to the bit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .. import _sweep
from .._data import Dataset
from ._properties import RTOL, _count, _fail, _needs_x64, _scale
from ._strategies import Instance


# -- transformations ----------------------------------------------------------------------------------------

@_needs_x64
def check_transforms(instance: Instance, lambdas, strategy: str = "routing", *, eager: bool = True, **options) -> None:
    """vmap = loop over λ, and (``eager``) jit = eager, on the per-query outcomes and the means.

    Args:
      instance: an :class:`Instance`, dataset and estimates [N, M].
      lambdas: [L] λ (θ for the threshold cascade), or [L, D].
      strategy: one of ``cascjax.STRATEGIES``.
      eager: also compare with a run under ``jax.disable_jit()`` (seconds even for small instances).
      options: further :func:`cascjax.sweep` options.

    Raises:
      PropertyFailed: naming the field, the position and both values.

    Example:
      >>> import jax, numpy as np, cascjax.testing as ct
      >>> instance = ct.random_instance(jax.random.key(0), 4, 2)
      >>> ct.check_transforms(instance, np.array([0.0, 0.125, 0.5, 2.0]), eager=False)   # routing: holds
    """
    ds, est = instance
    lam = np.asarray(lambdas, np.float64)
    run = lambda values: _sweep.sweep(ds, est, values, strategy, return_choices=True, **options)  # noqa: E731
    batched = run(lam)
    singles = [run(lam[k:k + 1]) for k in range(lam.shape[0])]
    ways = [("one λ at a time", _stack(singles))]
    if eager:
        with jax.disable_jit():
            ways.append(("eager (jax.disable_jit)", run(lam)))
    for how, other in ways:
        _compare("transforms", ds, lam, batched, other, f"{strategy}: vmapped over λ", how)
    _count("transforms", lam.shape[0] * ds.n_queries * len(ways))


def check_sharded(instance: Instance, lambdas, strategy: str = "routing", **options) -> None:
    """Sharding the query axis over every device (``sweep``'s default with several devices) gives exactly
    the one-device results, whether the inputs arrive on one device or already sharded along the queries
    (when N is a multiple of the device count). Meaningful with several devices (e.g.
    ``XLA_FLAGS=--xla_force_host_platform_device_count=4``).

    Args:
      instance: an :class:`Instance`, dataset and estimates [N, M].
      lambdas: [L] λ (θ for the threshold cascade), or [L, D].
      strategy: one of ``cascjax.STRATEGIES``.
      options: further :func:`cascjax.sweep` options; ``chunk_size`` defaults to two chunks per device.

    Raises:
      PropertyFailed: naming the field, the position and both values (compared bit for bit).

    Example:
      >>> import jax, numpy as np, cascjax.testing as ct
      >>> instance = ct.random_instance(jax.random.key(0), 4, 2)
      >>> ct.check_sharded(instance, np.array([0.0, 0.125, 0.5, 2.0]))   # on every visible device: holds
    """
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    ds, est = instance
    devices = np.array(jax.devices())
    lam = np.asarray(lambdas, np.float64)
    chunk = options.pop("chunk_size", max(1, -(-ds.n_queries // (2 * len(devices)))))  # ≥ 2 chunks per device
    plain = _sweep.sweep(ds, est, lam, strategy, return_choices=True, devices=1, chunk_size=chunk, **options)
    ways = [("sharded over all devices", (ds, est))]
    if ds.n_queries % len(devices) == 0:
        rows = NamedSharding(Mesh(devices, ("q",)), PartitionSpec("q"))
        put = lambda a: None if a is None else jax.device_put(a, rows)  # noqa: E731
        ways.append(("inputs sharded", (Dataset(put(ds.quality), put(ds.cost), models=ds.models),
                                        est._replace(**{k: put(v) for k, v in est._asdict().items()
                                                        if k != "covariance"}))))
    for how, (d, e) in ways:
        other = _sweep.sweep(d, e, lam, strategy, return_choices=True, chunk_size=chunk, **options)
        _compare("transforms", ds, lam, plain, other, f"{strategy}: one device", f"{how} ({len(devices)})",
                 exact=True)
    _count("transforms", lam.shape[0] * ds.n_queries * len(ways))


def _stack(curves):
    return type(curves[0])(*(None if f[0] is None else jnp.concatenate(f) for f in zip(*curves)))


def _compare(name, ds, lam, a, b, what_a, what_b, exact=False):
    for field in ("cost", "quality", "choice", "query_cost"):
        x, y = np.asarray(getattr(a, field), np.float64), np.asarray(getattr(b, field), np.float64)
        bad = (x != y) if exact else np.abs(x - y) > RTOL * _scale(x, y)
        if bad.any():
            at = tuple(int(i) for i in np.argwhere(bad)[0])
            _fail(name, f"{what_a} and {what_b} differ in {field} at {at} (λ = {lam[at[0]].tolist()}): "
                        f"{x[at]} vs {y[at]}; quality={np.asarray(ds.quality).tolist()}")
