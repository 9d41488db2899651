"""``cascjax ablate``: the paper's ablations, the noise grid's heatmaps and Table 7 (cascade-routing variants)."""

from __future__ import annotations

import os

from ._common import _load, _parse_list, _protocol_args
from ._output import _Progress, _png, _print_json, _write_files


def run(args) -> int:
    """``cascjax ablate`` on parsed arguments: the exit code (0); bad input raises CascjaxError."""
    import numpy as np
    import pandas as pd

    from .. import _ablation, _protocol
    from .._errors import CascjaxError

    options = _protocol_args(args)
    ds, path = _load(args)
    what = _parse_list(args.what, "--what")
    for w in what:
        if w not in ("noise", "variants"):
            raise CascjaxError(f"unknown ablation {w!r} in --what; choose noise, variants or both")
    if args.noise not in ("low", "medium", "high"):
        raise CascjaxError(f"unknown noise level {args.noise!r} in --noise; choose low, medium, high")
    if args.seeds < 1:
        raise CascjaxError(f"--seeds must be at least 1, got {args.seeds}")
    if not (args.step > 0 and args.top >= 0):
        raise CascjaxError(f"--step must be positive and --max non-negative, got {args.step}, {args.top}")
    pool = args.pool or ("5" if _protocol.is_routerbench(ds) else "all")
    names = _protocol.pool_models(ds, pool)
    files = []
    grid = _ablation.ablation_grid(args.step, args.top)
    total = (len(grid) * args.seeds * 3 if "noise" in what else 0) + (len(_ablation.VARIANTS) if "variants" in what
                                                                       else 0)
    bar = _Progress(total, args.quiet, "fit")
    try:
        if "noise" in what:
            rows = _ablation.ablate(ds, pool, grid=grid, seeds=args.seeds, progress=bar, **options)
            frame = pd.DataFrame(rows)
            files.append(("ablation.csv", lambda f: frame.to_csv(f, index=False, float_format="%.6g")))
            mean = frame.groupby(["sigma_ante", "sigma_post"], as_index=False).mean(numeric_only=True)
            for column, label, name in (("cr_minus_routing", "AUC(cascade routing) − AUC(routing)",
                                         "heatmap_routing.png"),
                                        ("cr_minus_threshold", "AUC(cascade routing) − AUC(threshold cascade)",
                                         "heatmap_threshold.png")):
                files.append((name, _png("heatmap", mean.sigma_ante, mean.sigma_post, mean[column],
                                          title=f"{label}, pool {pool}")))
        if "variants" in what:
            opts = {k: v for k, v in options.items() if k != "candidates"}
            var = pd.DataFrame(_ablation.variants(ds, pool, args.noise, progress=bar, **opts))
            text = ("| variant | AUC | ms per decision |\n|---|---|---|\n" + "".join(
                f"| {r.variant} | {r.auc:.2f} | {r.ms_per_decision:.4f} |\n" for r in var.itertuples()))
            files.append(("variants.csv", lambda f: var.to_csv(f, index=False, float_format="%.6g")))
            files.append(("variants.md", lambda f: f.write(text.encode())))
    finally:
        bar.close()
    written = _write_files(args.out, files)
    if args.json:
        _print_json(dict(command="ablate", data=str(path), format=args.format, pool=pool, models=list(names),
                         noise_grid=frame.to_dict(orient="records") if "noise" in what else None,
                         variants=var.to_dict(orient="records") if "variants" in what else None,
                         files=[os.path.join(args.out, w) for w in written]))
        return 0
    print(f"{path}: pool {pool} ({len(names)} models)")
    if "noise" in what:
        print(f"noise grid: {len(grid)} cells x {args.seeds} seed(s); mean AUC difference of cascade routing: "
              f"{np.mean(frame.cr_minus_routing):+.2f} vs routing, {np.mean(frame.cr_minus_threshold):+.2f} vs "
              "threshold cascade")
    if "variants" in what:
        print(text)
    print(f"wrote {', '.join(os.path.join(args.out, w) for w in written)}")
    return 0
