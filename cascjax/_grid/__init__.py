"""Hyperparameter sweeps as one call: a declarative grid of cells, run by compiled program, cached per cell,
resumable, one tidy results table (``cascjax grid SPEC.toml --out DIR`` on the command line; in Python
:func:`cascjax.grid`, :func:`cascjax.grid_plan`, :func:`cascjax.grid_merge`, :func:`cascjax.read_grid_spec`).

A spec (a dict, or a TOML file: :func:`read_spec`) has sections ``[data]`` (path, models, format, allow_pickle),
``[estimates]`` (kind, seed; for ``kind = "learned"`` also train_fraction, post_hoc, features), ``[strategies]`` (a table per strategy with its options) and ``[fit]`` (fit_fraction, split_seed,
budgets, lambda, grid, candidates, bootstrap), optionally ``[prices]`` (model, scale) and ``[latency]`` (weight: a
second cost, the data's ``<model>|latency`` columns); every list is an axis and the grid is their product, or
``[[cells]]`` lists explicit cells (:func:`expand`). Cells equal in every static setting (pool, strategy and its
options, λ mode) form a group: one stack of queries, one sweep per stack (:mod:`cascjax.grid._run`).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd

from .._errors import CascjaxError
from . import _cells, _run, _store
from ._spec import AXES, TRACED, expand as expand, read_spec as read_spec, static_key

__all__ = ["grid", "expand", "read_spec", "plan", "merge", "AXES", "TRACED"]


def _load(cell: dict, cache: dict):
    """The dataset of a cell's ``path`` (``"example"``: the embedded one), its content hash and, for
    ``estimates = "columns"``, the estimate columns; read once per path."""
    import cascjax

    key = (cell["path"], cell["format"])
    if key not in cache:
        path = cell["path"]
        if path == "example":
            ds = cascjax.load_example()
            source = cascjax.example_path()
        else:
            ds = cascjax.read(path, format=cell["format"], allow_pickle=cell["allow_pickle"])
            source = path
        cache[key] = (ds, _cells.data_hash(ds), source)
    return cache[key]


def plan(spec: dict, *, text: str | None = None, name: str = "spec") -> pd.DataFrame:
    """Every cell of the spec, checked against its data before anything runs: a row per cell with its key, its
    group (cells sharing compiled programs) and its settings (:data:`AXES`). Raises
    :class:`cascjax.CascjaxError` naming the key on a bad spec.

    Example:
      >>> import cascjax
      >>> cells = cascjax.grid_plan({"estimates": {"kind": ["low", "high"], "seed": [0, 1]},
      ...               "strategies": {"routing": {}, "cascade": {"max_depth": [2, 3]}}})
      >>> len(cells), cells["group"].nunique()   # 12 cells; the estimates and seeds vary traced values only
      (12, 3)
    """
    return _plan(spec, text, name)[0]


def _plan(spec: dict, text: str | None, name: str) -> tuple[pd.DataFrame, list[dict]]:
    """:func:`plan`'s table and the cells' settings (:func:`expand`), in the same order."""
    import cascjax

    cells = expand(spec, text=text, name=name)
    cache: dict = {}
    rows, groups = [], {}
    for cell in cells:
        ds, digest, source = _load(cell, cache)
        _cells.check_cell(ds, cell, name)
        if cell["latency_weight"] is not None:
            try:
                _latency(cell, ds, source, _cells.pool(ds, cell), cache)
            except CascjaxError as e:
                raise CascjaxError(f"{name}: [latency] weight: {e}") from None
        key = _store.cell_key(cell, digest, cascjax.__version__)
        group = groups.setdefault(static_key(cell) + (("data", digest),), len(groups))
        row = {"key": key, "group": group}
        row.update({a: _text(cell[a]) for a in AXES})
        row.update({k: cell[k] for k in ("format", "allow_pickle", "grid", "candidates", "bootstrap")})
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame["key"].duplicated().any():
        dup = frame.loc[frame["key"].duplicated(), "key"].iloc[0]
        raise CascjaxError(f"{name}: two cells have the same settings (key {dup}); list each cell once")
    # Group ids: the hash of their cells' keys (stable across shards and reruns).
    ids = {g: _store.group_id(frame.loc[frame["group"] == g, "key"]) for g in frame["group"].unique()}
    frame["group"] = frame["group"].map(ids)
    return frame, cells


def _latency(cell: dict, ds, source: str, sub, cache: dict):
    """The second cost of the pool ``sub`` of ``ds`` (its ``<model>|latency`` columns; read once per file)."""
    import cascjax

    key = ("latency", cell["path"], cell["format"])
    if key not in cache:
        cache[key] = cascjax.read_latency(source, ds, format=cell["format"], allow_pickle=cell["allow_pickle"])
    full = cache[key]
    index = [list(ds.models).index(m) for m in sub.models]
    return cascjax.Latency(*(a[:, index] for a in full))


def _features(cell: dict, ds, source: str, sub):
    """The learned estimators' features for the pool ``sub`` of ``ds``: the example's answers file for the
    example, else ``features`` (a file joined row by row), else the data file's own ``<model>|answer`` columns."""
    from ..estimators import Features, example_features, read_features

    if cell["features"]:
        f = read_features(cell["features"], ds, allow_pickle=cell["allow_pickle"])
    elif cell["path"] == "example":
        f = example_features()
    else:
        f = read_features(source, ds, allow_pickle=cell["allow_pickle"])
    index = [list(ds.models).index(m) for m in sub.models]
    return Features(f.query, f.model[:, index], f.answer[:, index], f.query_names, f.model_names)


def _text(v):
    if isinstance(v, tuple):
        return "+".join(str(x) for x in v) if v and isinstance(v[0], str) else ";".join(repr(x) for x in v)
    return v


def _shard(text) -> tuple[int, int]:
    if text is None:
        return 0, 1
    try:
        i, n = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise CascjaxError(f"--shard must be i/n (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise CascjaxError(f"--shard {text}: i must lie in 0..n-1 (shards are numbered from 0), n >= 1")
    return i, n


def grid(spec: dict, out: str, *, text: str | None = None, name: str = "spec", shard=None, progress=None,
         figure: bool = True) -> pd.DataFrame:
    """Runs the cells of ``spec`` that ``out`` has no rows for yet and returns the results table.

    Args:
      spec: the grid (see the module docstring; :func:`read_spec` reads a TOML file).
      out: the output folder: ``results.csv`` (``results.parquet`` with pyarrow), ``grid.png``, the part files
        and ``cells.csv`` (:mod:`cascjax._grid._store`). Rerunning computes only the cells whose key has no rows
        in ``out`` yet, also after the spec changed (a new axis value: only its cells run); the table holds the
        current spec's cells. Each group's part file is written as it finishes; ``results.csv`` after the
        first group, then at most every :data:`RESULTS_EVERY` seconds, and at the end.
      text, name: the TOML text and file name the spec came from (errors then name the line).
      shard: ``"i/n"``: run only groups i, i + n, i + 2n, ... of the spec's groups (0 ≤ i < n), e.g. one task of
        a SLURM array job; :func:`merge` joins the shards' folders.
      progress: called with (cells done, cells to do) after each group (a progress bar).
      figure: write ``grid.png`` (AUC against each axis; needs matplotlib).

    Returns:
      The results table (this shard's): a row per (cell, budget), with the key, the group, a column per axis
      (:data:`cascjax._grid.AXES`), and budget, feasible, lambda_lo, lambda_hi (λ per step joined by ';'),
      gamma, source, fit_cost, fit_quality, test_cost, test_quality, auc, aiq, auc_low, auc_high (with
      ``bootstrap``), fit_queries, test_queries, candidates, us_per_decision, compile_s, run_s and version.

    Example:
      >>> import tempfile, cascjax
      >>> spec = {"estimates": {"kind": ["low", "high"]}, "strategies": {"routing": {}},
      ...         "fit": {"budgets": 3, "grid": 32}}
      >>> table = cascjax.grid(spec, tempfile.mkdtemp(), figure=False)
      >>> table.groupby("estimates").auc.first().round().to_dict()   # the test AUC of each cell
      {'high': 64.0, 'low': 75.0}
    """
    import cascjax

    i, n = _shard(shard)
    cells, settings = _plan(spec, text, name)
    os.makedirs(os.path.join(out, "parts"), exist_ok=True)
    _store.write_csv(cells, os.path.join(out, "cells.csv"))
    groups = list(dict.fromkeys(cells["group"]))
    mine = cells[cells["group"].isin(set(groups[i::n]))]
    found = _store.parts(out)  # the part files are read once; each finished group's rows are added to them
    done = set() if found is None else set(found["key"])
    todo = mine[~mine["key"].isin(done)]
    by_key = dict(zip(cells["key"], settings))
    cache: dict = {}
    memos: dict = {}  # per dataset read (cache keeps it alive): its estimates, for its next groups
    finished = groups_done = 0
    written = time.perf_counter()
    if progress:
        progress(0, len(todo))
    for group, members in todo.groupby("group", sort=False):
        group_cells = [by_key[k] for k in members["key"]]
        ds, _, source = _load(group_cells[0], cache)
        sub = _cells.pool(ds, group_cells[0])
        columns = None
        if any(c["estimates"] == "columns" for c in group_cells):
            columns = cascjax.read_estimates(source, ds, format=group_cells[0]["format"],
                                             allow_pickle=group_cells[0]["allow_pickle"])
            if group_cells[0]["models"] != "all":
                index = [list(ds.models).index(m) for m in sub.models]
                columns = cascjax.Estimates(*(np.asarray(a)[:, index] for a in columns[:6]))
        features = None
        if group_cells[0]["estimates"] == "learned":
            features = _features(group_cells[0], ds, source, sub)
        latency = None
        if any(c["latency_weight"] is not None for c in group_cells):
            latency = _latency(group_cells[0], ds, source, sub, cache)
        t = time.perf_counter()
        results = _run.run_group(sub, group_cells, columns, features, memos.setdefault(id(ds), {}), latency)
        rows = []
        for meta, cell_rows in zip(members[["key", *AXES]].to_dict("records"), results):
            for r in cell_rows:
                rows.append({"key": meta["key"], "group": group, **meta, **r, "version": cascjax.__version__})
        part = pd.DataFrame(rows)
        _store.write_csv(part, os.path.join(out, "parts", f"{group}.csv"))
        # Through the CSV's round trip, so the table holds the same values whether a cell ran now or earlier.
        part = _store.read_csv(os.path.join(out, "parts", f"{group}.csv"))
        found = part if found is None else pd.concat([found, part], ignore_index=True)
        finished += len(members)
        # results.csv after the first group, then at most every RESULTS_EVERY seconds and at the end (rewriting
        # the whole table after every group is quadratic in the groups); every finished group is in its part.
        if not groups_done or time.perf_counter() - written >= RESULTS_EVERY:
            _store.write_results(out, _store.assemble(mine, found))
            written = time.perf_counter()
        if progress:
            progress(finished, len(todo), time.perf_counter() - t)
        groups_done += 1
        _kill_for_tests(groups_done)
    table = _store.assemble(mine, found)
    _store.write_results(out, table)  # (nothing ran: the table of the rows found, this spec's cells only)
    if figure and len(table):
        _figure(table, out)
    return table


#: Seconds between rewrites of results.csv while a grid runs (the part files hold each group as it finishes).
RESULTS_EVERY = 30.0


def _kill_for_tests(groups_done: int) -> None:
    """``CASCJAX_GRID_KILL_AFTER=k``: SIGKILL this process once k groups are written (the resume test's crash)."""
    after = os.environ.get("CASCJAX_GRID_KILL_AFTER")
    if after and groups_done >= int(after):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def merge(folders, out: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Joins the folders of a grid's shards (the same spec) into ``out``: their part files and one results
    table. Returns (the table, the cells no folder has rows for).

    Example:
      >>> import tempfile, cascjax
      >>> spec = {"estimates": {"kind": ["low", "high"]}, "strategies": {"routing": {}, "cascade": {}},
      ...         "fit": {"budgets": 3, "grid": 32}}
      >>> a, b, merged = tempfile.mkdtemp(), tempfile.mkdtemp(), tempfile.mkdtemp()
      >>> _ = cascjax.grid(spec, a, shard="0/2", figure=False)   # the routing group
      >>> table, missing = cascjax.grid_merge([a], merged)
      >>> table.strategy.unique().tolist(), missing.strategy.tolist()
      (['routing'], ['cascade', 'cascade'])
    """
    if not folders:
        raise CascjaxError("merge needs at least one folder")
    cells = None
    for folder in folders:
        path = os.path.join(folder, "cells.csv")
        if not os.path.exists(path):
            raise CascjaxError(f"{folder} is not a grid folder (it has no cells.csv)")
        these = _store.read_csv(path)
        if cells is None:
            cells = these
        elif list(these["key"]) != list(cells["key"]):
            raise CascjaxError(f"{folder} holds another grid than {folders[0]} (their cells.csv differ)")
    frames = [f for f in (_store.parts(folder) for folder in folders) if f is not None]
    rows = pd.concat(frames, ignore_index=True) if frames else None
    os.makedirs(os.path.join(out, "parts"), exist_ok=True)
    _store.write_csv(cells, os.path.join(out, "cells.csv"))
    if rows is not None:
        for group, part in rows.groupby("group", sort=False):
            _store.write_csv(part, os.path.join(out, "parts", f"{group}.csv"))
    table = _store.assemble(cells, _store.parts(out))
    _store.write_results(out, table)
    missing = cells[~cells["key"].isin(set(table["key"]) if len(table) else set())]
    return table, missing.reset_index(drop=True)


def _figure(table: pd.DataFrame, out: str) -> None:
    """``grid.png``: the mean AUC against each axis that varies, one panel per axis, a line per strategy."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    per_cell = table.drop_duplicates("key").copy()
    for a in AXES:  # 2.0 (an integer column with blanks, read as floats) is shown as 2
        per_cell[a] = [(str(int(v)) if isinstance(v, float) and v == v and v.is_integer() else str(v))
                       for v in per_cell[a]]
    axes = [a for a in AXES if a != "strategy" and per_cell.loc[per_cell[a] != "nan", a].nunique() > 1]
    if not axes:
        axes = ["strategy"]
    fig, panels = plt.subplots(1, len(axes), figsize=(4 * len(axes), 3.2), squeeze=False)
    color = {s: f"C{i}" for i, s in enumerate(dict.fromkeys(per_cell["strategy"]))}  # one colour per strategy
    for ax, axis in zip(panels[0], axes):
        for strategy, part in per_cell.groupby("strategy", sort=False):
            part = part[part[axis] != "nan"]
            if not len(part):
                continue
            mean = part.groupby(part[axis], sort=False)["auc"].mean()
            ax.plot(list(mean.index), mean.to_numpy(), marker="o", label=strategy, color=color[strategy])
        ax.set_xlabel(axis)
        ax.set_ylabel("AUC (test)")
        ax.tick_params(axis="x", labelrotation=30)
    panels[0][0].legend(fontsize=7)
    fig.tight_layout()
    _store.write_atomic(os.path.join(out, "grid.png"), lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)

