"""``cascjax reproduce``: the paper's RouterBench protocol, pools x noise levels x strategies, as a table and
one frontier figure per cell."""

from __future__ import annotations

import os

from ._common import CLI_STRATEGIES, _load, _parse_list, _protocol_args
from ._output import _Progress, _png, _print_json, _slug, _write_files


def run(args) -> int:
    """``cascjax reproduce`` on parsed arguments: the exit code (0); bad input raises CascjaxError."""
    import numpy as np
    import pandas as pd

    from .. import _protocol
    from .._errors import CascjaxError

    options = _protocol_args(args)
    ds, path = _load(args)
    if args.confidence is not None:
        from .._confidence import check_confidence

        if args.estimator == "learned":
            raise CascjaxError("--confidence is for the noise-model and columns protocols; the learned protocol "
                               "fits its budgets in expectation")
        try:
            check_confidence(args.confidence, None)
        except CascjaxError as e:
            raise CascjaxError(f"--confidence: {e}") from None
        options["confidence"] = args.confidence
    if args.choose != "all":
        if args.estimator == "learned":
            raise CascjaxError("--choose is for the noise-model and columns protocols")
        options["choose"] = args.choose
    if args.estimator == "learned":
        return _learned(args, ds, path, options)
    pools = _parse_list(args.pools, "--pools") if args.pools else (
        ["3", "5", "all"] if _protocol.is_routerbench(ds) else ["all"])
    noises = _parse_list(args.noise, "--noise") if args.estimates == "noise" else ["columns"]
    for n in noises:
        if n not in ("low", "medium", "high", "columns"):
            raise CascjaxError(f"unknown noise level {n!r} in --noise; choose low, medium, high")
    own = None
    if args.estimates == "columns":
        import cascjax

        own = cascjax.read_estimates(path, ds, format=args.format, prices=args.prices, split=args.split,
                                     allow_pickle=args.allow_pickle,
                                     dropna=args.dropna)
    strategies = _strategies(args)
    if args.seeds < 1:
        raise CascjaxError(f"--seeds must be at least 1, got {args.seeds}")
    if args.bootstrap < 0:
        raise CascjaxError(f"--bootstrap must be 0 or more, got {args.bootstrap}")
    for spec in pools:  # unknown models fail before any work
        _protocol.pool_models(ds, spec)
    n_rows = len([r for r in _protocol.ROWS if r[1] is None or r[1] in strategies])
    bar = _Progress(len(pools) * len(noises) * args.seeds * n_rows, args.quiet, "fit")
    try:
        cells = _protocol.reproduce(ds, pools, noises, args.seeds, n_boot=args.bootstrap, strategies=strategies,
                                    progress=bar, estimates=own, **options)
    finally:
        bar.close()
    table = pd.DataFrame([r for c in cells for r in c.rows])
    md = _protocol.markdown(cells)
    files = [("table.csv", lambda f: table.to_csv(f, index=False, float_format="%.6g")),
             ("table.md", lambda f: f.write(md.encode()))]
    for c in cells:
        curves = {label: (x[np.isfinite(x)], y[np.isfinite(y)]) for label, (x, y) in c.curves.items()}
        files.append((f"frontier_{_slug(c.pool)}_{c.noise}.png",
                      _png("frontier", curves, c.test,
                           title=f"pool {c.pool} ({len(c.models)} models), {c.noise} noise — test split")))
    written = _write_files(args.out, files)
    if args.json:
        _print_json(dict(command="reproduce", data=str(path), format=args.format, queries=ds.n_queries,
                         models=list(ds.models), pools=pools, noise=noises, seeds=args.seeds,
                         table=table.to_dict(orient="records"), files=[os.path.join(args.out, w) for w in written]))
        return 0
    print(f"{path}: {ds.n_queries} queries x {ds.n_models} models; pools {', '.join(pools)}; noise "
          f"{', '.join(noises)}; {args.seeds} seed(s)")
    print(md)
    print(f"wrote {', '.join(os.path.join(args.out, w) for w in written[:3])}{' ...' if len(written) > 3 else ''}")
    return 0


def _learned(args, ds, path, options) -> int:
    """``cascjax reproduce --estimator learned``: the real-benchmark protocol (:func:`cascjax.protocol.reproduce_learned`)."""
    import numpy as np
    import pandas as pd

    from .. import _protocol, _protocol_learned, estimators
    from .._errors import CascjaxError

    compare = [] if args.compare.strip() == "none" else _parse_list(args.compare, "--compare")
    for kind in compare:
        if kind not in ("separable", "baseline"):
            raise CascjaxError(f"unknown estimates {kind!r} in --compare; choose separable, baseline or none")
    strategies = _strategies(args)
    if args.bootstrap < 0:
        raise CascjaxError(f"--bootstrap must be 0 or more, got {args.bootstrap}")
    query = _parse_list(args.query_features, "--query-features") if args.query_features else None
    if args.features is None and args.data is None and args.models is None and query is None:
        features = estimators.example_features()
    else:
        source = args.features if args.features is not None else path
        ids = _sample_ids(path, ds, args.allow_pickle) if args.features is not None else None
        features = estimators.read_features(source, ds, query_features=query, sample_ids=ids,
                                            allow_pickle=args.allow_pickle)
    kinds = ["learned"] + [k for k in compare if k != "learned"]
    rows = [r for r in _protocol.ROWS if r[1] is None or r[1] in strategies]
    bar = _Progress(1 + len(kinds) * len(rows), args.quiet, "fit")
    try:
        swe = args.protocol == "swe-bench"
        run = _protocol_learned.reproduce_learned(
            ds, features, estimates=kinds, test_fraction=0.5 if swe else args.test_fraction,
            validation_fraction=0.25 if swe else args.validation_fraction, budgets="sum" if swe else "paper",
            split_seed=options["split_seed"], post_hoc=args.post_hoc,
            max_depth=options["max_depth"], samples=options["samples"], per_step=options["per_step"],
            candidates=options["candidates"], n_boot=args.bootstrap, strategies=strategies, progress=bar)
    finally:
        bar.close()
    table = pd.DataFrame([r for c in run.cells for r in c.rows])
    md = _protocol.markdown(run.cells)
    quality = run.quality
    files = [("table.csv", lambda f: table.to_csv(f, index=False, float_format="%.6g")),
             ("table.md", lambda f: f.write(md.encode())),
             ("estimators.csv", lambda f: quality.to_csv(f, index=False, float_format="%.6g"))]
    for c in run.cells:
        curves = {label: (x[np.isfinite(x)], y[np.isfinite(y)]) for label, (x, y) in c.curves.items()}
        files.append((f"frontier_{c.noise}.png", _png("frontier", curves, c.test,
                                                      title=f"{len(c.models)} models, {c.noise} estimates — test split")))
    written = _write_files(args.out, files)
    if args.json:
        _print_json(dict(command="reproduce", estimator="learned", data=str(path), queries=ds.n_queries,
                         models=list(ds.models), estimates=kinds, fit_seconds=run.fit_seconds,
                         split=[int(len(s)) for s in run.split], table=table.to_dict(orient="records"),
                         estimators=quality.to_dict(orient="records"),
                         files=[os.path.join(args.out, w) for w in written]))
        return 0
    train, val, test = (len(s) for s in run.split)
    print(f"{path}: {ds.n_queries} queries x {ds.n_models} models; learned estimators (post hoc {args.post_hoc}) "
          f"on {train} train queries in {run.fit_seconds:.1f} s; λ fitted on {val}, evaluated on {test}")
    print(md)
    wide = quality.pivot_table(index=["depth", "phase"], columns="estimator", values=["brier", "auc"])
    print("\nEstimator quality on the test split (Brier score, ROC AUC) per depth |R|:\n")
    print(wide.round(4).to_string())
    print(f"wrote {', '.join(os.path.join(args.out, w) for w in written[:4])}{' ...' if len(written) > 4 else ''}")
    return 0


def _sample_ids(path, ds, allow_pickle=False):
    """The data file's sample_id column, to join a features file on (None where the file has none)."""
    from ..io._wide import _read_frame

    try:
        frame = _read_frame(path, allow_pickle)
    except Exception:  # not a single table (a folder of the paper's JSON, a pickle): join by row order
        return None
    if "sample_id" not in frame.columns or len(frame) != ds.n_queries:
        return None
    return frame["sample_id"].to_numpy()


def _strategies(args) -> list:
    """--strategy's names as sweep strategies; an unknown one is an error naming it."""
    from .._errors import CascjaxError

    names = _parse_list(args.strategy, "--strategy")
    for name in names:
        if name not in CLI_STRATEGIES:
            raise CascjaxError(f"unknown strategy {name!r} in --strategy; available: {', '.join(CLI_STRATEGIES)}")
    return [CLI_STRATEGIES[name] for name in names]
