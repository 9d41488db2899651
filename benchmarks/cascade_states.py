"""How many information states does cascade routing reach per query across a λ grid? (sizing for issue 3)

    python benchmarks/cascade_states.py [--queries 300]

A plain NumPy simulation (one query at a time, every λ at once, exact argmax without the tie rule) on
RouterBench-shaped synthetic data: 36,000 x 11, the paper's 'low' noise, max_depth 5, K = 64 shared points,
1,024 λ from ``lambda_grid``. It prints the distinct states per step and the nodes of each query's λ-tree:
the number of times Q(n, R, ·) must be computed if it is computed once per state actually reached.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import cascjax
from cascjax._supermodels import candidate_table, normal_points


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=300, help="random queries simulated")
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    n_models, depth, k, n_lam = 11, 5, 64, 1024
    ds = cascjax.synthetic(seed=0, n_queries=36_000, n_models=n_models)
    est = {key: np.asarray(v) for key, v in cascjax.noisy_estimates(ds, jax.random.key(0), "low")._asdict().items()
           if v is not None}
    table = candidate_table(n_models, depth)
    z = np.asarray(normal_points(k, n_models))
    lams = np.asarray(cascjax.lambda_grid(cascjax.Estimates(**{key: np.asarray(v) for key, v in est.items()}), n_lam))
    bits = 1 << np.arange(n_models)
    per_step = [[] for _ in range(depth)]
    nodes = []
    t0 = time.perf_counter()
    for n in np.random.default_rng(0).choice(ds.n_queries, args.queries, replace=False):
        state, done, total = np.zeros(n_lam, np.int64), np.zeros(n_lam, bool), 0
        for j in range(depth):
            live = ~done
            if not live.any():
                break
            reached = np.unique(state[live])
            per_step[j].append(len(reached))
            total += len(reached)
            for r in reached:
                ran = (r & bits) != 0
                mu = np.where(ran, est["quality_post"][n], est["quality_ante"][n])
                sd = np.where(ran, est["sd_post"][n], est["sd_ante"][n])
                c_hat = np.where(ran, est["cost_post"][n], est["cost_ante"][n])
                y = mu[None] + z * sd[None]
                q = np.where(table.members[None], y[:, None, :], -np.inf).max(-1).mean(0)
                c = table.members @ c_hat
                ok = (table.mask & r) == r
                at = np.flatnonzero(live & (state == r))
                best = table.mask[np.flatnonzero(ok)[np.argmax(q[None, ok] - lams[at, None] * c[None, ok], axis=1)]]
                stop = best == r
                done[at[stop]] = True
                new = best & ~r
                state[at[~stop]] = r | (new & -new)[~stop]  # run the lowest-index new model
        nodes.append(total)
    print(f"{args.queries} queries of 36,000 x {n_models}, 'low' noise, max_depth {depth}, K {k}, {n_lam} λ "
          f"({time.perf_counter() - t0:.1f} s)")
    for j, counts in enumerate(per_step):
        a = np.array(counts)
        print(f"  step {j}: {len(a)} queries still running; distinct states mean {a.mean():.2f}, max {a.max()}")
    nodes = np.array(nodes)
    print(f"  λ-tree nodes per query: mean {nodes.mean():.1f}, max {nodes.max()}")


if __name__ == "__main__":
    main()
