"""Scaling sweeps: run time against N (queries), M (models), L (λ count), D (max_depth) and K (samples).

    python benchmarks/bench_scaling.py --kernel cascade_routing --vary N,M,L,D,K
    python benchmarks/bench_scaling.py --kernel routing --vary N,M,L --base N=30000,M=11,L=1000
    python benchmarks/bench_scaling.py --quick

Each parameter is varied alone around a base point (``--base``; the defaults below are the CPU sizes, an
accelerator gets the larger ones), every point on fresh ``cascjax.synthetic`` data with 'low' noise estimates
and a ``lambda_grid`` of L values; each point is timed as everywhere in this directory (first call = compile +
run, then the median of ``--repeat`` runs, blocked on). A point shared by several sweeps (the base) is measured
once. ``run.py`` plots the rows (log-log, one PNG per parameter). Kernels: ``routing`` (grid sweep; N, M, L),
``routing_path`` (exact path; N, M), ``cascade`` and ``cascade_routing`` (grid sweeps; N, M, L, D, K).
"""

from __future__ import annotations

import numpy as np

import _harness as H

#: Base points and the values each parameter takes (CPU, accelerator).
PLANS = {
    "cascade_routing": (dict(N=4_000, M=8, L=256, D=3, K=32),
                        dict(N=[1_000, 4_000, 16_000], M=[4, 6, 8], L=[64, 256, 1_024], D=[1, 2, 3, 4],
                             K=[8, 32, 128]),
                        dict(N=36_000, M=11, L=1_024, D=5, K=64),
                        dict(N=[9_000, 36_000, 144_000], M=[5, 8, 11], L=[256, 1_024, 4_096], D=[2, 3, 4, 5],
                             K=[16, 64, 256])),
    "cascade": (dict(N=8_000, M=11, L=256, D=5, K=64),
                dict(N=[2_000, 8_000, 32_000], M=[5, 8, 11], L=[64, 256, 1_024], D=[1, 3, 5, 8], K=[16, 64, 256]),
                dict(N=36_000, M=11, L=1_024, D=5, K=64),
                dict(N=[9_000, 36_000, 144_000], M=[5, 8, 11], L=[256, 1_024, 4_096], D=[1, 3, 5, 8],
                     K=[16, 64, 256])),
    "routing": (dict(N=30_000, M=11, L=1_000),
                dict(N=[7_500, 30_000, 120_000], M=[3, 6, 11, 16], L=[250, 1_000, 4_000]),
                dict(N=1_000_000, M=11, L=1_024),
                dict(N=[250_000, 1_000_000, 4_000_000], M=[3, 6, 11, 16], L=[256, 1_024, 4_096])),
    "routing_path": (dict(N=300_000, M=11),
                     dict(N=[75_000, 300_000, 1_200_000], M=[3, 6, 11, 16]),
                     dict(N=4_000_000, M=11),
                     dict(N=[1_000_000, 4_000_000, 16_000_000], M=[3, 6, 11, 16])),
}
QUICK = {
    "cascade_routing": (dict(N=500, M=5, L=32, D=2, K=16), dict(N=[250, 500], M=[4, 5], L=[16, 32], D=[1, 2],
                                                                K=[8, 16])),
    "cascade": (dict(N=1_000, M=6, L=32, D=3, K=16), dict(N=[500, 1_000], M=[4, 6], L=[16, 32], D=[2, 3],
                                                          K=[8, 16])),
    "routing": (dict(N=2_000, M=6, L=64), dict(N=[1_000, 2_000], M=[3, 6], L=[32, 64])),
    "routing_path": (dict(N=5_000, M=6), dict(N=[2_500, 5_000], M=[3, 6])),
}


def measure(kernel, point, repeat):
    import cascjax

    ds, est = H.data(point["N"], point["M"])
    if kernel == "routing_path":
        fn = lambda: cascjax.routing_path(ds, est)  # noqa: E731
    else:
        lam = cascjax.lambda_grid(est, point["L"])
        kw = {} if kernel == "routing" else dict(max_depth=point["D"], samples=point["K"])
        fn = lambda: cascjax.sweep(ds, est, lam, kernel, **kw)  # noqa: E731
    first, run = H.timed(fn, repeat)
    out = fn()
    if kernel == "routing_path":
        decisions, unit = float(point["N"]), "queries"
    elif kernel == "routing":
        decisions, unit = float(point["N"] * point["L"]), "decisions"
    else:
        decisions, unit = float(np.sum(np.asarray(out.ran, np.float64))) * point["N"], "decisions"
    return dict(compile_s=first, run_s=run, decisions=decisions, unit=unit)


def main(argv=None):
    p = H.parser(__doc__)
    p.add_argument("--kernel", choices=list(PLANS), default="cascade_routing")
    p.add_argument("--vary", default=None, help="comma-separated parameters (default: all the kernel has)")
    p.add_argument("--base", default=None, help="e.g. N=4000,M=8,L=256,D=3,K=32 (default: the plan's)")
    p.add_argument("--values", default=None, help="with one --vary parameter: its values, e.g. 1000,2000,4000")
    p.set_defaults(repeat=1)
    args = p.parse_args(argv)
    dtype = H.set_precision(args.float64)
    if args.quick:
        base, values = QUICK[args.kernel]
    else:
        cpu_base, cpu_values, big_base, big_values = PLANS[args.kernel]
        base, values = (big_base, big_values) if H.accelerator() else (cpu_base, cpu_values)
    base = dict(base)
    if args.base:
        base.update({k: int(v) for k, v in (kv.split("=") for kv in args.base.split(","))})
    vary = args.vary.split(",") if args.vary else list(values)
    if args.values:
        if len(vary) != 1:
            raise SystemExit("--values needs exactly one --vary parameter")
        values = {vary[0]: [int(v) for v in args.values.split(",")]}
    print(H.environment(dtype))
    done, rows = {}, []
    for param in vary:
        for v in values[param]:
            point = dict(base, **{param: v})
            if "D" in point and point["D"] > point["M"]:
                continue  # a cascade runs at most M models
            key = tuple(sorted(point.items()))
            if key not in done:
                done[key] = measure(args.kernel, point, args.repeat)
            r = H.row(args.kernel, f"scaling {param}", **point, dtype=dtype.name, **done[key], vary=param,
                      value=v)
            print(H.describe(r).replace("\n    ", " | "), flush=True)
            rows.append(r)
    H.emit(rows, args.json, dtype, show=False)


if __name__ == "__main__":
    main()
