"""Hyperparameter grids (issue 24): the spec and its errors, the stacked run of a group against the same
computation one cell at a time, the cache, resuming after SIGKILL, shards and merge, the command line."""

import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import cascjax
from cascjax import _grid
from cascjax._fit_search import _select
from cascjax._grid import _cells, _run, _store
from cascjax._protocol import hull_budgets

TIMING = list(_store.TIMING)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    """A small wide CSV (300 queries x 4 models) with estimate columns for one model."""
    ds = cascjax.synthetic(3, n_queries=300, n_models=4)
    frame = pd.DataFrame({m: np.asarray(ds.quality)[:, i] for i, m in enumerate(ds.models)})
    for i, m in enumerate(ds.models):
        frame[f"{m}|total_cost"] = np.asarray(ds.cost)[:, i]
    frame["m01|quality_ante"] = np.clip(np.asarray(ds.quality)[:, 1] * 0.6 + 0.2, 0, 1)
    path = tmp_path_factory.mktemp("grid") / "data.csv"
    frame.to_csv(path, index=False)
    return str(path)


def _spec(path, **fit):
    return {"data": {"path": path},
            "estimates": {"kind": ["perfect", "low", "high", "columns"], "seed": 0},
            "strategies": {"routing": {}, "threshold_cascade": {"max_depth": 2},
                           "cascade": {"max_depth": 3, "samples": 8},
                           "cascade_routing": {"max_depth": 2, "samples": 8}},
            "fit": {"fit_fraction": [0.3, 0.5], "split_seed": 7, "budgets": 4, "grid": 12, "lambda": "per-step",
                    "candidates": 8, **fit}}


def _one_cell(ds, cell, columns, params, est=None):
    """The cell computed alone: its estimates, a plain sweep of the group's candidates on its fit split and on
    its test split, fit's selection per budget, the test point of the chosen mixture."""
    depth = _cells.depth_of(ds, cell)
    est = _cells._estimates(ds, cell, columns) if est is None else est
    fit_rows, test_rows = ds.split_indices(cell["fit_fraction"], cell["split_seed"])
    lam = params[:, 0] if cell["strategy"] == "routing" else params
    points = []
    for rows in (fit_rows, test_rows):
        curve = cascjax.sweep(ds.take(rows), est.take(rows), lam, cell["strategy"], **_cells._options(cell, depth))
        points.append((np.asarray(curve.cost, np.float64), np.asarray(curve.quality, np.float64)))
    q, c = np.asarray(ds.quality, np.float64)[test_rows], np.asarray(ds.cost, np.float64)[test_rows]
    budgets = hull_budgets(c.mean(0), q.mean(0), cell["budgets"])
    source = np.full(params.shape[0], "constant", dtype=object)
    lo, hi, g, _, fq, ok, _ = _select(np.arange(params.shape[0]), *points[0], source, budgets)
    tc, tq = points[1]
    return budgets, ok, fq, np.where(ok, (1 - g) * tq[lo] + g * tq[hi], np.nan)


def _candidates(ds, group, ests):
    """The group's candidates, from its cells' fit rows of their estimates stacked (as the grid builds them)."""
    fit_parts = [_cells._take(e, ds.split_indices(c["fit_fraction"], c["split_seed"])[0]) for c, e in zip(group, ests)]
    stacked = cascjax.Estimates(*(np.concatenate(a) for a in zip(*(e[:6] for e in fit_parts))))
    return _cells.candidates(group[0], stacked, _cells.depth_of(ds, group[0]))[0]


def test_a_group_runs_stacked_as_each_cell_alone(data_file):
    """Every strategy, every kind of estimates and two splits: the stacked group's fit and test
    points equal a plain sweep per cell on the same candidates (to float64 rounding: means in another order)."""
    spec = _spec(data_file)
    cells = _grid.expand(spec)
    ds = cascjax.read(data_file)
    columns = cascjax.read_estimates(data_file, ds)
    for strategy in ("routing", "threshold_cascade", "cascade", "cascade_routing"):
        group = [c for c in cells if c["strategy"] == strategy]
        assert len(group) == 8  # 4 kinds x 2 fit fractions
        rows = _run.run_group(ds, group, columns)
        params = _candidates(ds, group, [_cells._estimates(ds, c, columns) for c in group])
        for cell, got in zip(group, rows):
            budgets, ok, fq, tq = _one_cell(ds, cell, columns, params)
            np.testing.assert_array_equal([r["budget"] for r in got], budgets)
            np.testing.assert_array_equal([r["feasible"] for r in got], ok)
            np.testing.assert_allclose([r["fit_quality"] for r in got], fq, rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose([r["test_quality"] for r in got], tq, rtol=1e-12, atol=1e-15)
            assert np.isfinite(got[0]["auc"]) and got[0]["aiq"] >= got[0]["auc"] - 1e-9


def test_price_scenarios_are_an_axis(data_file):
    """[prices]: a cell under a price scenario (one model's price times a multiplier) equals the same cell
    computed alone on the priced data — its costs and cost estimates times the multiplier, as ``sweep(...,
    prices=)`` — and the scenarios share their group's compiled programs."""
    spec = {**_spec(data_file), "estimates": {"kind": ["low", "columns"], "seed": 0},
            "prices": {"model": "m02", "scale": [0.5, 2.0]}}
    cells = _grid.expand(spec)
    ds = cascjax.read(data_file)
    columns = cascjax.read_estimates(data_file, ds)
    for strategy in ("routing", "cascade"):
        group = [c for c in cells if c["strategy"] == strategy]
        assert len(group) == 8 and len({_grid._spec.static_key(c) for c in group}) == 1
        rows = _run.run_group(ds, group, columns)
        priced = [_cells._priced(ds, _cells._estimates(ds, c, columns), _cells.multiplier(ds, c))[1] for c in group]
        params = _candidates(ds, group, priced)
        for cell, est, got in zip(group, priced, rows):
            cost = np.asarray(ds.cost, np.float64) * _cells.multiplier(ds, cell)
            data = cascjax.Dataset.from_arrays(ds.quality, cost, models=list(ds.models), sort=False)
            budgets, ok, fq, tq = _one_cell(data, cell, columns, params, est=est)
            np.testing.assert_array_equal([r["budget"] for r in got], budgets)
            np.testing.assert_allclose([r["fit_quality"] for r in got], fq, rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose([r["test_quality"] for r in got], tq, rtol=1e-12, atol=1e-15)
    keys = _grid.plan(_spec(data_file))["key"]  # cells without [prices] keep their keys
    assert set(keys) <= set(_grid.plan({**_spec(data_file), "prices": {}})["key"])


def test_a_latency_weight_is_an_axis(tmp_path, data_file):
    """[latency]: a cell with a latency weight equals the same cell computed alone on the estimates whose cost
    estimates are ĉ + weight·ℓ̂; its test latency is the chosen mixture of a plain sweep paying the latencies
    (the same decisions); the weights share their group's programs; bad weights and missing columns fail."""
    frame = pd.read_csv(data_file)
    rng = np.random.default_rng(5)
    models = [c for c in frame.columns if "|" not in c]
    for j, m in enumerate(models):
        frame[f"{m}|latency"] = rng.gamma(2.0, 1.0, len(frame)) * (len(models) - j)
    path = str(tmp_path / "latency.csv")
    frame.to_csv(path, index=False)
    spec = {**_spec(path), "estimates": {"kind": "low", "seed": 0}, "latency": {"weight": [0.0, 0.01, float("inf")]},
            "fit": {"fit_fraction": 0.3, "split_seed": 7, "budgets": 4, "grid": 12}}
    cells = _grid.expand(spec)
    ds = cascjax.read(path)
    latency = cascjax.read_latency(path, ds)
    for strategy in ("routing", "cascade"):
        group = [c for c in cells if c["strategy"] == strategy]
        assert len(group) == 3 and len({_grid._spec.static_key(c) for c in group}) == 1
        rows = _run.run_group(ds, group, None, latency=latency)
        depth = _cells.depth_of(ds, group[0])
        weighted = [_cells._weighted(_cells._estimates(ds, c, None), latency, c["latency_weight"]) for c in group]
        params = _candidates(ds, group, weighted)
        lam = params[:, 0] if strategy == "routing" else params
        _, test_rows = ds.split_indices(0.3, 7)
        paying = cascjax.Dataset.from_arrays(ds.quality, latency.latency, models=list(ds.models), sort=False)
        for cell, est, got in zip(group, weighted, rows):
            budgets, ok, fq, tq = _one_cell(ds, cell, None, params, est=est)
            np.testing.assert_allclose([r["fit_quality"] for r in got], fq, rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose([r["test_quality"] for r in got], tq, rtol=1e-12, atol=1e-15)
            waited = np.asarray(cascjax.sweep(paying.take(test_rows), est.take(test_rows), lam, strategy,
                                              **_cells._options(cell, depth)).cost, np.float64)
            assert any(r["feasible"] for r in got) and all(np.isfinite(r["test_latency"]) for r in got if r["feasible"])
            for r in got:  # the test latency lies between the two candidates' latencies
                if r["feasible"]:
                    lo_ = np.flatnonzero(params[:, 0] == float(r["lambda_lo"].split(";")[0]))[0]
                    hi_ = np.flatnonzero(params[:, 0] == float(r["lambda_hi"].split(";")[0]))[0]
                    want = (1 - r["gamma"]) * waited[lo_] + r["gamma"] * waited[hi_]
                    assert r["test_latency"] == pytest.approx(want, rel=1e-9, abs=1e-12)
    keys = _grid.plan(_spec(path))["key"]  # cells without [latency] keep their keys
    assert set(keys) <= set(_grid.plan({**_spec(path), "latency": {}})["key"])
    with pytest.raises(cascjax.CascjaxError, match=r"\[latency\] weight.*>= 0"):
        _grid.expand({**spec, "latency": {"weight": -1.0}})
    with pytest.raises(cascjax.CascjaxError, match=r"\[latency\] weight: .*no latency column"):
        _grid.plan({**spec, "data": {"path": data_file}})


def test_expand_counts_axes_and_explicit_cells(data_file):
    cells = _grid.expand({**_spec(data_file), "estimates": {"kind": ["perfect", "low"], "seed": [0, 1]}})
    # perfect does not depend on the seed, but a seed axis still makes cells (their keys differ).
    assert len(cells) == 2 * 2 * 4 * 2
    explicit = {"data": {"path": data_file}, "strategies": {"routing": {}},
                "cells": [{"estimates": {"kind": "low", "seed": [0, 1]}},
                          {"estimates": {"kind": "high"}, "strategies": {"cascade": {"max_depth": [2, 3]}}}]}
    got = [(c["estimates"], c["seed"], c["strategy"], c["max_depth"]) for c in _grid.expand(explicit)]
    assert got == [("low", 0, "routing", None), ("low", 1, "routing", None), ("high", 0, "cascade", 2),
                   ("high", 0, "cascade", 3)]
    plan = _grid.plan(_spec(data_file))
    assert plan["group"].nunique() == 4 and plan["key"].is_unique


BAD = [
    ({"colors": {}}, r"\[colors\]: unknown section"),
    ({"fit": {"budget": 3}}, r"\[fit\] budget: unknown key"),
    ({"strategies": {"routing": {"max_depth": 2}}}, r"routing has no option 'max_depth'"),
    ({"strategies": {"cascade": {"greedy": True}}}, r"cascade has no option 'greedy'"),
    ({"strategies": {"cascades": {}}}, r"\[strategies\] cascades: unknown strategy"),
    ({"estimates": {"seed": []}}, r"\[estimates\] seed: an empty axis"),
    ({"estimates": {"kind": "loud"}}, r"unknown estimates 'loud'"),
    ({"fit": {"fit_fraction": 1.5}}, r"\[fit\] fit_fraction: must lie strictly between 0 and 1"),
    ({"fit": {"lambda": "perstep"}}, r"unknown lambda 'perstep'"),
    ({"data": {"models": ["m00", "nope"]}}, r"\[data\] models: 'nope' is not in the data"),
    ({"strategies": {"cascade_routing": {"max_depth": 9}}}, r"\[strategies\] cascade_routing: .*max_depth"),
    ({"prices": {"scale": 2.0}}, r"\[prices\] scale: a price multiplier needs the model"),
    ({"prices": {"model": "nope"}}, r"\[prices\] model: 'nope' is not in the pool"),
    ({"prices": {"model": "m01", "scale": [1.0, 0]}}, r"\[prices\] scale: a price multiplier is a finite number > 0"),
]


@pytest.mark.parametrize("change, match", BAD)
def test_spec_errors_name_the_key(data_file, change, match):
    spec = {"data": {"path": data_file}, "strategies": {"routing": {}}}
    for section, table in change.items():
        spec[section] = {**spec.get(section, {}), **table} if section != "strategies" else table
    with pytest.raises(cascjax.CascjaxError, match=match):
        _grid.plan(spec)


def test_toml_errors_give_the_line(tmp_path, data_file):
    path = tmp_path / "spec.toml"
    path.write_text(f'[data]\npath = "{data_file}"\n\n[strategies]\nrouting = {{}}\ncascade = {{ depth = 2 }}\n')
    spec, text = _grid.read_spec(path)
    with pytest.raises(cascjax.CascjaxError, match=r"spec.toml line 6: \[strategies\] cascade: cascade has no "
                                                   r"option 'depth'"):
        _grid.plan(spec, text=text, name="spec.toml")
    path.write_text("[data\npath = 1\n")
    with pytest.raises(cascjax.CascjaxError, match="is not a valid TOML file"):
        _grid.read_spec(path)


def _small(path):
    return {"data": {"path": path}, "estimates": {"kind": ["low", "high"], "seed": [0, 1]},
            "strategies": {"routing": {}, "cascade": {"max_depth": 2, "samples": 4},
                           "threshold_cascade": {"max_depth": 2}},
            "fit": {"fit_fraction": 0.3, "budgets": 3, "grid": 16}}


def _same(a: pd.DataFrame, b: pd.DataFrame):
    pd.testing.assert_frame_equal(a.drop(columns=TIMING), b.drop(columns=TIMING), check_exact=True)


def test_rerun_computes_nothing_and_shards_merge_to_the_whole(tmp_path, data_file):
    spec = _small(data_file)
    whole = _grid.grid(spec, str(tmp_path / "whole"), figure=False)
    assert whole["key"].nunique() == 12 and (whole.groupby("key").size() >= 3).all()  # a row per budget
    parts = sorted((tmp_path / "whole" / "parts").iterdir())
    stamps = [p.stat().st_mtime_ns for p in parts]
    seen = []
    again = _grid.grid(spec, str(tmp_path / "whole"), figure=False, progress=lambda *a: seen.append(a[:2]))
    assert seen == [(0, 0)] and [p.stat().st_mtime_ns for p in parts] == stamps  # nothing ran or was rewritten
    _same(whole, again)
    shards = [str(tmp_path / f"s{i}") for i in range(2)]
    for i, folder in enumerate(shards):
        _grid.grid(spec, folder, shard=f"{i}/2", figure=False)
    table, missing = _grid.merge(shards[:1], str(tmp_path / "half"))
    assert len(missing) > 0 and set(missing["key"]).isdisjoint(table["key"])
    table, missing = _grid.merge(shards, str(tmp_path / "merged"))
    assert len(missing) == 0
    _same(whole, table)
    written = pd.read_csv(tmp_path / "merged" / "results.csv", dtype={"key": str})
    assert written["auc"].tolist() == whole["auc"].tolist()  # floats round-trip through the CSV bit for bit
    # A changed spec in the same folder: one more seed runs only its own cells; the table is the new spec's.
    seen.clear()
    grown = {**spec, "estimates": {**spec["estimates"], "seed": [0, 1, 2]}}
    bigger = _grid.grid(grown, str(tmp_path / "whole"), figure=False, progress=lambda *a: seen.append(a[:2]))
    assert seen[0] == (0, 6) and bigger["key"].nunique() == 18
    _same(bigger[bigger["key"].isin(whole["key"])].reset_index(drop=True), whole)
    shrunk = _grid.grid(spec, str(tmp_path / "whole"), figure=False)
    _same(shrunk, whole)
    with pytest.raises(cascjax.CascjaxError, match="--shard 2/2: i must lie in 0..n-1"):
        _grid.grid(spec, str(tmp_path / "x"), shard="2/2")


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "cascjax.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)


def test_a_run_killed_part_way_resumes_to_the_same_table(tmp_path, data_file):
    """SIGKILL after the first group's part file: every file in the folder is whole, and the resumed run's
    table equals an uninterrupted run's bit for bit (but for the timing columns)."""
    import tomllib

    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(f'''[data]
path = "{data_file}"
[estimates]
kind = ["low", "high"]
seed = [0, 1]
[strategies]
routing = {{}}
cascade = {{ max_depth = 2, samples = 4 }}
threshold_cascade = {{ max_depth = 2 }}
[fit]
fit_fraction = 0.3
budgets = 3
grid = 16
''')
    assert tomllib.loads(spec_path.read_text()) == _small(data_file)
    out = tmp_path / "run"
    killed = _cli("grid", str(spec_path), "--out", str(out), "--quiet", env={"CASCJAX_GRID_KILL_AFTER": "1"})
    assert killed.returncode == -signal.SIGKILL
    assert len(list((out / "parts").glob("*.csv"))) == 1
    assert not [p for p in out.rglob(".tmp-*")]
    first = pd.read_csv(out / "results.csv", dtype={"key": str})
    assert first["key"].nunique() == 4  # one group of four cells
    resumed = _cli("grid", str(spec_path), "--out", str(out), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    # The uninterrupted run in a process of the same kind (float32: keys hash the data as read, dtype included).
    assert _cli("grid", str(spec_path), "--out", str(tmp_path / "whole"), "--quiet").returncode == 0
    whole = _store.read_csv(str(tmp_path / "whole" / "results.csv"))
    _same(_store.read_csv(str(out / "results.csv")), whole)
    assert whole["key"].nunique() == 12


def test_the_command_line(tmp_path, data_file):
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(f'[data]\npath = "{data_file}"\n[estimates]\nkind = ["low", "high"]\n[strategies]\n'
                         'routing = {}\n[fit]\nfit_fraction = 0.3\nbudgets = 3\ngrid = 16\n')
    dry = _cli("grid", str(spec_path), "--dry-run")
    assert dry.returncode == 0 and "2 cells in 1 group(s)" in dry.stdout and "estimated run time" in dry.stdout
    ran = _cli("grid", str(spec_path), "--out", str(tmp_path / "o"), "--quiet")
    assert ran.returncode == 0, ran.stderr
    assert {"results.csv", "cells.csv", "grid.png"} <= set(os.listdir(tmp_path / "o"))
    merged = _cli("grid", "merge", str(tmp_path / "o"), "--out", str(tmp_path / "m"))
    assert merged.returncode == 0 and "2 cells" in merged.stdout
    spec_path.write_text(spec_path.read_text().replace("routing = {}", "routing = { samples = 3 }"))
    bad = _cli("grid", str(spec_path), "--out", str(tmp_path / "o2"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "spec.toml line 6: [strategies] routing: routing has no option 'samples'" in bad.stderr
    assert not (tmp_path / "o2").exists()  # nothing written before the spec is checked
    shard = _cli("grid", str(spec_path), "--out", str(tmp_path / "o3"), "--shard", "3/2")
    assert shard.returncode == 2 and "--shard" in shard.stderr


def test_the_readme_spec_plans():
    """The README's example spec parses and every one of its cells passes the checks against the example."""
    import re
    import tomllib

    text = open(os.path.join(os.path.dirname(__file__), "..", "README.md"), encoding="utf-8").read()
    spec = tomllib.loads(re.search(r"```toml\n(.*?)```", text, flags=re.S).group(1))
    cells = cascjax.grid_plan(spec)
    assert len(cells) == 2 * 3 * 3 * (1 + 2 + 8 + 1) * 2 * 2
    assert cells["group"].nunique() == 2 * (1 + 2 + 8 + 1) * 2  # pools x strategy options x lambda modes


@pytest.fixture(scope="module")
def answers_file(tmp_path_factory):
    """A wide CSV whose models' answers are in it too (``<model>|answer``): 240 queries x 3 models."""
    rng = np.random.default_rng(5)
    n = 240
    truth = rng.integers(0, 4, n)
    frame = pd.DataFrame({"topic": rng.choice(["x", "y"], n), "length": rng.integers(10, 500, n)})
    for m, acc, price in (("a", 0.45, 1.0), ("b", 0.65, 3.0), ("c", 0.85, 9.0)):
        answer = np.where(rng.random(n) < acc, truth, rng.integers(0, 4, n))
        frame[m] = (answer == truth).astype(float)
        frame[f"{m}|total_cost"] = price * (1 + 0.1 * rng.random(n))
        frame[f"{m}|answer"] = np.array(list("ABCD"))[answer]
    path = tmp_path_factory.mktemp("learned") / "answers.csv"
    frame.to_csv(path, index=False)
    return str(path)


def test_learned_estimates_are_an_axis(answers_file, tmp_path):
    """kind = "learned": the estimators are fitted on a training split of each cell's own (train / fit / test
    by the split seed), and the cell equals the same computation done alone: fit_learned on the training rows,
    its table swept on the fit and the test rows."""
    from cascjax import estimators

    spec = {"data": {"path": answers_file},
            "estimates": {"kind": ["learned", "low"], "train_fraction": 0.4},
            "strategies": {"cascade_routing": {"max_depth": 2, "samples": 4}},
            "fit": {"fit_fraction": 0.25, "split_seed": [1, 2], "budgets": 3, "grid": 12}}
    cells = cascjax.grid_plan(spec)
    assert cells["group"].nunique() == 2  # learned tables run apart from the noise model's estimates
    assert cells.loc[cells.estimates == "low", "train_fraction"].isna().all()
    table = cascjax.grid(spec, str(tmp_path / "o"), figure=False)
    ds = cascjax.read(answers_file)
    feats = estimators.read_features(answers_file, ds)
    learned = [c for c in _grid.expand(spec) if c["estimates"] == "learned"]
    alone = []
    for cell in learned:  # each cell alone: its splits, the estimators fitted on its training rows
        fit_rows, test_rows, train = _cells.splits_of(ds, cell)
        assert fit_rows.size == 60 and train.size == 96 and np.intersect1d(train, test_rows).size == 0
        fitted = estimators.fit_learned(ds, feats, train, max_depth=2, seed=cell["seed"])
        alone.append((fit_rows, test_rows, estimators.state_estimates(fitted, ds, feats)))
    params, _ = _cells.candidates(learned[0], _cells._concat([_cells._take(e, f) for f, _, e in alone]), 2)
    fit_rows, test_rows, est = alone[0]
    got = table[table.key == cells.loc[(cells.estimates == "learned") & (cells.split_seed == 1), "key"].iloc[0]]
    points = []
    for rows in (fit_rows, test_rows):
        curve = cascjax.sweep(ds.take(rows), est.take(rows), params, "cascade_routing", max_depth=2, samples=4)
        points.append((np.asarray(curve.cost, np.float64), np.asarray(curve.quality, np.float64)))
    q, c = np.asarray(ds.quality, np.float64)[test_rows], np.asarray(ds.cost, np.float64)[test_rows]
    budgets = hull_budgets(c.mean(0), q.mean(0), 3)
    lo, hi, g, _, fq, ok, _ = _select(np.arange(len(params)), *points[0], np.full(len(params), "c", object),
                                      budgets)
    np.testing.assert_allclose(got["fit_quality"], fq, rtol=1e-12)
    np.testing.assert_allclose(got["test_quality"], np.where(ok, (1 - g) * points[1][1][lo] + g * points[1][1][hi],
                                                             np.nan), rtol=1e-12)
    with pytest.raises(cascjax.CascjaxError, match=r"train_fraction .* their sum must be below 1"):
        cascjax.grid_plan({**spec, "estimates": {"kind": "learned", "train_fraction": 0.8}})
