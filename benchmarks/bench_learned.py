"""Learned estimators on the embedded example: the regressions' solver, the fit per depth, the table.

    python benchmarks/bench_learned.py            # the example's protocol split (4,808 train queries)
    python benchmarks/bench_learned.py --quick    # 1,000 train queries, depths 1 and 2

1. The solver: cascjax's one L-BFGS run on the sum of all regressions (``cascjax.estimators._logistic``) side by
   side with what a user would otherwise write — optax's L-BFGS vmapped over the regressions — on the same
   problems (every run pattern with |R| <= 2 and target model, one L2 strength), with the largest difference of
   their weights.
2. ``fit_learned`` (L2 strength chosen on a held-out fifth, then refit) per ``max_depth``: seconds, regressions;
   and its L2 choice's regressions (every strength, on the training rows but a held-out fifth) as one L-BFGS run
   on all strengths (cascjax before issue 19's last stop) side by side with one run per strength (now).
3. ``state_estimates`` on the test queries: seconds, and the table's size.
4. Compile once: ``fit_learned`` (max_depth 1) on training sets of several sizes in one process, with the query
   buckets (cascjax's default) and without: programs compiled per fit, seconds per fit.
Prints sizes, device and jax version; float32 (jax's default).
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

import cascjax
import cascjax.protocol
from cascjax import estimators
from cascjax._compile import buckets, programs
from cascjax.estimators import _learned
from cascjax.estimators._logistic import fit_logistic


def vmapped_lbfgs(x, y, mask, alpha, iterations=2000, tolerance=1e-6):
    """The baseline: one optax L-BFGS per regression, vmapped (each with its own line search)."""
    def one(y_p, mask_p, alpha_p):
        def f(w):
            w = w * mask_p
            z = x @ w
            return jnp.mean(jax.nn.softplus(z) - y_p * z) + 0.5 * alpha_p * jnp.sum(jnp.square(w[1:]))

        opt = optax.lbfgs(memory_size=20)
        vg = optax.value_and_grad_from_state(f)
        w0 = jnp.zeros(x.shape[1], x.dtype)

        def step(c):
            w, s, k, _ = c
            v, g = vg(w, state=s)
            u, s = opt.update(g, s, w, value=v, grad=g, value_fn=f)
            return optax.apply_updates(w, u), s, k + 1, jnp.linalg.norm(g * mask_p)

        w, _, k, _ = jax.lax.while_loop(lambda c: (c[2] < iterations) & (c[3] > tolerance), step,
                                        (w0, opt.init(w0), 0, jnp.asarray(jnp.inf, x.dtype)))
        return w * mask_p, k

    return jax.jit(jax.vmap(one))(y, mask, alpha)


def timed(f):
    t = time.perf_counter()
    out = jax.block_until_ready(f())
    return time.perf_counter() - t, out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    ds, feats = cascjax.load_example(), estimators.example_features()
    train, val, test = cascjax.protocol.split_three(ds.n_queries, 0.5, 0.1, 42)
    if args.quick:
        train = train[:1000]
    depths = (1, 2) if args.quick else (2, 3, 5)
    print(f"jax {jax.__version__} | device {jax.devices()[0].platform} x {len(jax.devices())} | float32 | example "
          f"{ds.n_queries} x {ds.n_models}, {len(train)} train / {len(test)} test queries, "
          f"{feats.query.shape[1]} query features")

    # 1. The solver against the vmapped baseline, on the same regressions.
    sub, f = ds.take(train), feats.take(train)
    center = (f.query.mean(0), f.model.mean(0))
    scale = tuple(np.where(a.std(0) > 0, a.std(0), 1.0) for a in (f.query, f.model))
    x = _learned._design(f, center, scale)
    width, masks = _learned._layout(ds.n_models, f.query.shape[1], f.model.shape[2])
    patterns = _learned._patterns(ds.n_models, 2)[:22]  # |R| <= 2
    target = np.tile(np.arange(ds.n_models), patterns.size)
    mask = np.repeat(masks[patterns], ds.n_models, axis=0).astype(np.float32)
    y = np.asarray(sub.quality, np.float32)
    alpha = np.full(target.size, 1e-2, np.float32)
    xs = jnp.asarray(x, jnp.float32)
    joint = partial(fit_logistic, xs, jnp.asarray(y), jnp.asarray(target), jnp.ones(len(train)), jnp.asarray(mask),
                    jnp.asarray(alpha))
    vm = partial(vmapped_lbfgs, xs, jnp.asarray(y[:, target].T), jnp.asarray(mask), jnp.asarray(alpha))
    c1, _ = timed(joint)
    s1, (w1, k1, _) = timed(joint)
    c2, _ = timed(vm)
    s2, (w2, k2) = timed(vm)
    print(f"\n1. {target.size} regressions x {len(train)} rows x {width} features, alpha 1e-2:")
    print(f"   one L-BFGS on the sum (cascjax): {s1:.2f} s ({int(k1)} iterations; first call {c1:.2f} s)")
    print(f"   vmapped L-BFGS per regression:    {s2:.2f} s (iterations {int(np.min(k2))}-{int(np.max(k2))}; "
          f"first call {c2:.2f} s)")
    print(f"   ratio {s2 / s1:.1f}x; largest weight difference {float(np.max(np.abs(np.asarray(w1) - w2))):.2e}")

    # 2. fit_learned per depth, and its L2 choice's regressions: one run on all strengths against one per strength.
    print("\n2. fit_learned (L2 from", _learned.L2_GRID, "on a held-out fifth, then refit):")
    fits = {}
    l2 = np.asarray(_learned.L2_GRID)
    held = np.zeros(len(train), bool)
    held[np.random.default_rng(0).permutation(len(train))[:round(0.2 * len(train))]] = True
    for depth in depths:
        s, fit = timed(lambda d=depth: estimators.fit_learned(ds, feats, train, max_depth=d))
        fits[depth] = fit
        print(f"   max_depth {depth}: {s:.1f} s, {fit.patterns.size * ds.n_models} regressions "
              f"({fit.patterns.size} patterns), x{len(_learned.L2_GRID)} for the L2 choice")
        pats = _learned._patterns(ds.n_models, depth)
        tg = np.tile(np.arange(ds.n_models), pats.size)
        mk = np.repeat(masks[pats], ds.n_models, axis=0)
        grid = partial(fit_logistic, xs, jnp.asarray(y), weight=jnp.asarray(~held, jnp.float32))
        joint_run = lambda: grid(  # noqa: E731
            jnp.asarray(np.tile(tg, l2.size)), mask=jnp.asarray(np.tile(mk, (l2.size, 1)), jnp.float32),
            alpha=jnp.asarray(np.repeat(l2, tg.size), jnp.float32))
        split_run = lambda: [grid(jnp.asarray(tg), mask=jnp.asarray(mk, jnp.float32),  # noqa: E731
                                  alpha=jnp.full(tg.size, a, jnp.float32)) for a in l2]
        timed(joint_run), timed(split_run)  # compile
        sj, (wj, kj, _) = timed(joint_run)
        ss, outs = timed(split_run)
        wsplit = np.concatenate([np.asarray(o[0]) for o in outs])
        print(f"     the L2 choice's {l2.size * tg.size} regressions: one L-BFGS run on all strengths (before) "
              f"{sj:.2f} s, {int(kj)} iterations; one run per strength (cascjax) {ss:.2f} s, iterations "
              f"{' / '.join(str(int(o[1])) for o in outs)}; ratio {sj / ss:.1f}x; largest weight difference "
              f"{float(np.max(np.abs(np.asarray(wj) - wsplit))):.2e}")

    # 3. The table on the test queries.
    depth = depths[-1]
    s, table = timed(lambda: estimators.state_estimates(fits[depth], ds.take(test), feats.take(test)))
    print(f"\n3. state_estimates on {len(test)} test queries: {s:.2f} s, table "
          f"{table.quality.shape} ({table.quality.nbytes / 2**20:.0f} MiB a field)")

    # 4. Programs compiled per training-set size.
    sizes = (601, 650, 700, 777, 850, 1000) if not args.quick else (601, 700, 850)
    print("\n4. fit_learned, max_depth 1, on the first n train queries (programs compiled, seconds):")
    for padded in (True, False):
        row = []
        with buckets(padded):
            for n in sizes:
                before = programs()["total"]
                s, _ = timed(lambda n=n: estimators.fit_learned(ds, feats, train[:n], max_depth=1))
                row.append(f"{n}: {programs()['total'] - before} / {s:.1f} s")
        print(f"   {'buckets (default)' if padded else 'unpadded         '}  " + ", ".join(row))


if __name__ == "__main__":
    main()
