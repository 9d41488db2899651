"""``cascjax grid``: a hyperparameter sweep from a TOML spec (run, resume, ``--dry-run``, ``--shard``) and
``cascjax grid merge`` (join shards' folders)."""

from __future__ import annotations

import os
import sys

from ._output import _print_json

#: Rough µs per decision (one query at one candidate λ) on a 2-core CPU, for --dry-run's estimate: measured
#: in benchmarks/README.md at many λ (cascade routing: depth 5, K 100; cheaper at smaller depth and K).
US_PER_DECISION = {"routing": 0.05, "threshold_cascade": 0.05, "cascade": 0.05, "cascade_routing": 2.0}


def run(args) -> int:
    """``cascjax grid`` on parsed arguments: the exit code; bad input raises CascjaxError."""
    from .. import _grid
    from .._errors import CascjaxError

    if args.spec == "merge":
        if not args.folders:
            raise CascjaxError("cascjax grid merge needs the shards' folders: cascjax grid merge DIR... --out OUT")
        table, missing = _grid.merge(args.folders, args.out)
        if args.json:
            _print_json(dict(command="grid merge", folders=args.folders, out=args.out, rows=len(table),
                             cells=int(table["key"].nunique()) if len(table) else 0, missing=list(missing["key"])))
            return 0
        print(f"merged {len(args.folders)} folder(s) into {args.out}: {table['key'].nunique() if len(table) else 0} "
              f"cells, {len(table)} rows")
        if len(missing):
            print(f"{len(missing)} cell(s) missing (no folder has their rows):")
            print(missing[["key", "group"] + [a for a in _grid.AXES if missing[a].astype(str).nunique() > 1
                                               or a == "strategy"]].to_string(index=False))
        return 0
    if args.folders:
        raise CascjaxError(f"unexpected arguments {' '.join(args.folders)}; cascjax grid SPEC.toml --out DIR")
    spec, text = _grid.read_spec(args.spec)
    name = os.path.basename(args.spec)
    if args.dry_run:
        cells, cells_settings = _grid._plan(spec, text, name)
        return _dry_run(cells, cells_settings, args)
    if not args.out:
        raise CascjaxError("--out is required: the folder for results.csv and the cache of finished cells")
    bar = _Bar(args.quiet)
    try:
        table = _grid.grid(spec, args.out, text=text, name=name, shard=args.shard, progress=bar)
    finally:
        bar.close()
    cells = table["key"].nunique() if len(table) else 0
    if args.json:
        _print_json(dict(command="grid", spec=args.spec, out=args.out, shard=args.shard, cells=int(cells),
                         rows=len(table), files=sorted(f for f in os.listdir(args.out) if not f.startswith("."))))
        return 0
    if cells:
        summary = (table.drop_duplicates("key").groupby("strategy", sort=False)["auc"]
                   .agg(["count", "mean", "min", "max"]).rename(columns={"count": "cells"}))
        print(summary.to_string(float_format=lambda v: f"{v:.2f}"))
    print(f"{cells} cells, {len(table)} rows: wrote {os.path.join(args.out, 'results.csv')}")
    return 0


def _dry_run(cells, cells_settings, args) -> int:
    """Prints the cells, their groups (one compiled program each, the traced settings batched) and a rough
    estimate of the run time."""
    from .. import _grid
    from .._grid import _cells

    cache: dict = {}
    settings = dict(zip(cells["key"], cells_settings))
    groups = []
    total = 0.0
    for group, members in cells.groupby("group", sort=False):
        first = settings[members["key"].iloc[0]]
        ds, _, _ = _grid._load(first, cache)
        sub = _cells.pool(ds, first)
        depth = _cells.depth_of(sub, first)
        n_cand = first["grid"] + (first["candidates"] if first["lambda"] == "per-step" and depth > 1 else 0)
        kinds = {_cells._estimates_key(settings[k]) + _cells._price_key(settings[k]) for k in members["key"]}
        decisions = n_cand * sub.n_queries * len(kinds)  # one sweep per distinct estimates of the group
        seconds = decisions * US_PER_DECISION[first["strategy"]] * 1e-6
        total += seconds
        groups.append(dict(group=group, cells=len(members), strategy=first["strategy"], models=sub.n_models,
                           depth=depth, candidates=n_cand, queries=sub.n_queries, seconds=round(seconds, 1)))
    if args.json:
        _print_json(dict(command="grid --dry-run", spec=args.spec, cells=len(cells), groups=groups,
                         estimated_seconds=total))
        return 0
    print(f"{args.spec}: {len(cells)} cells in {len(groups)} group(s) (one compiled program each; the cells of a "
          "group differ only in estimates, seeds, splits or budgets and run stacked)")
    varying = [a for a in _grid.AXES if cells[a].astype(str).nunique() > 1]
    print(cells[["key", "group"] + varying].to_string(index=False, max_rows=40))
    import pandas as pd

    print(pd.DataFrame(groups).to_string(index=False))
    print(f"estimated run time: ~{total:.0f} s on a 2-core CPU (rough: candidates x queries x distinct estimates "
          "x µs per decision; compilation, a few seconds per group, not counted)")
    return 0


class _Bar:
    """A tqdm bar over cells with an ETA on stderr (none with --quiet, or when stderr is not a terminal)."""

    def __init__(self, quiet):
        self.bar, self.quiet = None, quiet

    def __call__(self, done, total, seconds=None):
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="cell", file=sys.stderr, dynamic_ncols=True, leave=False,
                            disable=None)
        self.bar.update(done - self.bar.n)

    def close(self):
        if self.bar is not None:
            self.bar.close()
