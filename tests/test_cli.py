"""The `cascjax frontier` command: outputs, options, and bad input without tracebacks."""

import os
import subprocess
import sys

import jax
import numpy as np
import pandas as pd
import pytest

import cascjax
from cascjax import cli


def _run(args, capsys):
    try:
        rc = cli.main([str(a) for a in args])
    except SystemExit as e:  # argparse's own errors
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def wide_frame(ds) -> pd.DataFrame:
    """A dataset as the wide file format: an id column, then `<model>` and `<model>|total_cost` per model."""
    df = pd.DataFrame({"id": np.arange(ds.n_queries)})
    for j, m in enumerate(ds.models):
        df[m] = np.asarray(ds.quality[:, j])
        df[f"{m}|total_cost"] = np.asarray(ds.cost[:, j])
    return df


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    df = wide_frame(cascjax.synthetic(0, n_queries=300, n_models=4))
    df["m03|quality_ante"] = 0.5
    path = tmp_path_factory.mktemp("data") / "small.csv"
    df.to_csv(path, index=False)
    return path


def test_frontier_on_the_example(tmp_path, capsys):
    rc, out, err = _run(["frontier", "--lambdas", "16", "--out", str(tmp_path)], capsys)
    assert rc == 0, err
    curve = pd.read_csv(tmp_path / "curve.csv")
    assert {"strategy", "lambda", "tie", "cost", "quality"} <= set(curve.columns)
    grid = curve[(curve.method == "grid") & (curve.strategy == "routing")]
    assert len(grid) == 32 and set(grid.tie) == {"min", "max"}
    # The threshold cascade (default too): at most 16 thresholds from -inf to +inf, no ties.
    assert set(curve.strategy) == {"routing", "cascade", "cascade-routing", "threshold-cascade"}  # default: all
    assert len(curve[(curve.strategy == "cascade") & (curve.method == "grid")]) == 32
    assert len(curve[curve.strategy == "cascade-routing"]) == 32
    cascade = curve[curve.strategy == "threshold-cascade"]
    assert 3 <= len(cascade) <= 16 and set(cascade.tie) == {"none"}
    assert cascade["lambda"].iloc[0] == -np.inf and cascade["lambda"].iloc[-1] == np.inf
    ds = cascjax.load_example()
    # θ = +inf runs every model and the last (most expensive) one answers
    np.testing.assert_allclose(cascade.quality.iloc[-1], float(np.mean(ds.quality[:, -1])), rtol=1e-6)
    np.testing.assert_allclose(cascade.cost.iloc[-1], float(np.mean(np.sum(ds.cost, axis=1))), rtol=1e-6)
    exact = curve[curve.method == "exact"]
    assert set(exact.strategy) == {"routing", "cascade"}  # the exact λ-paths
    for _, path in exact.groupby("strategy"):
        assert (path["lambda"].diff().dropna() >= 0).all()
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert {"kind", "name", "auc"} <= set(summary.columns)
    assert set(summary[summary.kind == "model"].name) == set(cascjax.load_example().models)
    routing = summary[summary.name == "routing"].auc.item()
    cascade = summary[summary.name == "cascade"].auc.item()
    assert abs(summary[summary.name == "cascade (exact path)"].auc.item() - cascade) < 1.0
    hull = summary[summary.kind == "baseline"].auc.item()
    assert routing > hull > 0
    assert summary[summary.name == "threshold-cascade"].auc.item() > 0
    assert summary[summary.name == "cascade-routing"].auc.item() > routing  # the paper's claim, on the example
    for figure in ("frontier.png", "usage.png"):
        assert (tmp_path / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "budgets.csv").exists()  # only with --budgets
    assert "routing" in out and "AUC" in out
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".")]  # no temporary files left


def test_frontier_options(small_csv, tmp_path, capsys):
    # (strategies restricted to what each check needs: every run compiles its kernels afresh)
    rc, _, err = _run(["frontier", str(small_csv), "--estimates", "perfect", "--lambda-values", "0,1e3,10",
                       "--strategy", "routing,cascade", "--out", str(tmp_path)], capsys)
    assert rc == 0, err
    curve = pd.read_csv(tmp_path / "curve.csv")
    for name in ("routing", "cascade"):
        grid = curve[(curve.method == "grid") & (curve.tie == "min") & (curve.strategy == name)]
        assert list(grid["lambda"]) == [0, 10, 1000]
    rc, _, err = _run(["frontier", str(small_csv), "--estimates", "columns", "--models", "m00,m03",
                       "--lambdas", "5", "--strategy", "routing", "--out", str(tmp_path / "cols")], capsys)
    assert rc == 0, err
    assert set(pd.read_csv(tmp_path / "cols" / "summary.csv").query("kind == 'model'").name) == {"m00", "m03"}
    # the seed changes the noisy estimates, hence the curve
    a = tmp_path / "s1"
    b = tmp_path / "s2"
    args = ["frontier", str(small_csv), "--lambdas", "8", "--strategy", "routing,cascade"]
    assert _run(args + ["--seed", "1", "--out", str(a)], capsys)[0] == 0
    assert _run(args + ["--seed", "2", "--out", str(b)], capsys)[0] == 0
    assert not pd.read_csv(a / "curve.csv").equals(pd.read_csv(b / "curve.csv"))
    # correlated uncertainty: the cascades see the fitted covariance; routing does not use uncertainty
    c = tmp_path / "cov"
    assert _run(args + ["--seed", "1", "--covariance", "--out", str(c)], capsys)[0] == 0
    plain, cov = pd.read_csv(a / "curve.csv"), pd.read_csv(c / "curve.csv")
    pd.testing.assert_frame_equal(cov[cov.strategy == "routing"].reset_index(drop=True),
                                  plain[plain.strategy == "routing"].reset_index(drop=True))
    assert len(cov[(cov.strategy == "cascade") & (cov.method == "grid")]) == 16
    # --tie-band lambda reaches the routing and cascade sweeps (the other strategies keep the score band), and
    # the routing grid then decides as path_at on the exact path
    seen = []
    sweep = cascjax.sweep

    def spy(*a, **k):
        seen.append((k["strategy"], k.get("tie_band", "score")))
        return sweep(*a, **k)

    d = tmp_path / "band"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cascjax, "sweep", spy)
        assert _run(args + ["--seed", "1", "--tie-band", "lambda", "--strategy", "routing,cascade,threshold-cascade",
                            "--out", str(d)], capsys)[0] == 0
    assert sorted(set(seen)) == [("cascade", "lambda"), ("routing", "lambda"), ("threshold_cascade", "score")]
    band = pd.read_csv(d / "curve.csv")
    ds = cascjax.read(small_csv)
    path = cascjax.routing_path(ds, cascjax.noisy_estimates(ds, jax.random.key(1), "low"))
    for tie in ("min", "max"):
        rows = band[(band.strategy == "routing") & (band.method == "grid") & (band.tie == tie)]
        at = cascjax.path_at(path, rows["lambda"].to_numpy(), tie)
        np.testing.assert_allclose(rows.quality, np.asarray(at.quality), rtol=1e-6)
        np.testing.assert_allclose(rows.cost, np.asarray(at.cost), rtol=1e-6)


@pytest.mark.parametrize("args, message", [
    (["--strategy", "teleport"], "unknown strategy 'teleport'"),
    (["--lambda-values", "0,-1"], "non-negative"),
    (["--lambda-values", "0,nan"], "finite"),
    (["--lambda-values", "0,abc"], "comma-separated numbers"),
    (["--lambdas", "1"], "at least 2"),
    (["--max-depth", "9"], "--max-depth must be in 1..4 (the number of models), got 9"),
    (["--samples", "0"], "--samples must be at least 1, got 0"),
    (["--strategy", "routing,threshold_cascade"], "unknown strategy 'threshold_cascade' in --strategy; available: routing, cascade, cascade-routing, threshold-cascade"),
    (["--models", "m00,nobody"], "missing quality column 'nobody'"),
    (["--estimates", "huge"], "invalid choice"),
    (["--tie-band", "both"], "invalid choice"),
])
def test_frontier_bad_input(small_csv, tmp_path, capsys, args, message):
    out_dir = tmp_path / "out"
    rc, _, err = _run(["frontier", str(small_csv), "--out", str(out_dir)] + args, capsys)
    assert rc == 2
    assert message in err
    assert "Traceback" not in err
    assert not out_dir.exists() or not os.listdir(out_dir)


def test_bad_file_names_the_column(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"a": [1, 0], "a|total_cost": [1.0, 1.0], "b": [0, 1], "b|model_response": ["x", "y"],
                  "c": [1, 1], "c|total_cost": [2.0, 2.0]}).to_csv(bad, index=False)
    rc, _, err = _run(["frontier", str(bad), "--out", str(tmp_path / "o")], capsys)
    assert rc == 2 and "missing cost column 'b|total_cost'" in err
    pd.DataFrame({"a": [1, 0], "a|total_cost": [1.0, 1.0], "b": [0, 1]}).to_csv(bad, index=False)
    rc, _, err = _run(["frontier", str(bad), "--out", str(tmp_path / "o")], capsys)
    assert rc == 2 and "found only 'a'" in err and "'b'" in err
    rc, _, err = _run(["frontier", str(tmp_path / "nothing.csv")], capsys)
    assert rc == 2 and "no such file" in err


def test_nothing_half_written(small_csv, tmp_path, capsys, monkeypatch):
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    (out_dir / "curve.csv").write_text("old")
    import cascjax.plot

    def broken(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(cascjax.plot, "frontier", broken)
    rc, _, err = _run(["frontier", str(small_csv), "--lambdas", "4", "--strategy", "routing", "--out", str(out_dir)],
                      capsys)
    assert rc == 1 and "internal error" in err and "disk on fire" in err and "Traceback" not in err
    assert (out_dir / "curve.csv").read_text() == "old"
    assert sorted(os.listdir(out_dir)) == ["curve.csv"]


def test_console_script_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cascjax.cli", "frontier", str(tmp_path / "x.csv")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "cascjax: error:" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "cascjax.cli", "frontier", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "--lambda-values" in proc.stdout and "examples:" in proc.stdout


def test_quiet_turns_the_progress_bar_off(small_csv, tmp_path, capsys, monkeypatch):
    """Without --quiet the command makes a tqdm bar (tqdm draws it only when stderr is a terminal); with it, none."""
    import tqdm

    made = []
    monkeypatch.setattr(tqdm, "tqdm", lambda **kw: made.append(kw) or tqdm.std.tqdm(**{**kw, "disable": True}))
    args = ["frontier", str(small_csv), "--lambdas", "4", "--strategy", "routing", "--estimates", "perfect"]
    assert _run(args + ["--out", str(tmp_path / "a")], capsys)[0] == 0
    assert len(made) == 1 and made[0]["total"] == 3 and made[0]["disable"] is None  # two grids + the exact path
    assert _run(args + ["--quiet", "--out", str(tmp_path / "b")], capsys)[0] == 0
    assert len(made) == 1


def test_figures_keep_the_users_matplotlib_backend():
    """cascjax.plot draws on whatever backend the user has (inline in Jupyter); it never switches it."""
    import matplotlib

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        ds = cascjax.synthetic(0, n_queries=50, n_models=3)
        cascjax.plot.frontier({"routing": cascjax.routing_path(ds, cascjax.perfect_estimates(ds))}, ds)
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)


@pytest.mark.parametrize("costs, message", [
    ((1e300, 2e300), "does not fit float32 (largest 3.4e+38); rescale it, or enable float64"),
    ((1e-42, 2e-42), "below float32's smallest normal number (1.18e-38): it would be flushed to zero; rescale"),
])
def test_costs_that_do_not_fit_float32_are_an_input_error(tmp_path, costs, message):
    """Without float64 (the CLI's default) costs beyond float32's range are refused with a one-line input
    error (exit 2) that says what to do, instead of inf or zeros downstream."""
    path = tmp_path / "d.csv"
    pd.DataFrame({"a": [0, 1, 1], "a|total_cost": [costs[0]] * 3, "b": [1, 1, 0],
                  "b|total_cost": [costs[1]] * 3}).to_csv(path, index=False)
    proc = subprocess.run([sys.executable, "-m", "cascjax.cli", "frontier", str(path), "--quiet", "--out",
                           str(tmp_path / "o")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "o").exists()


def test_a_parquet_file_that_is_not_parquet_is_an_input_error(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    path = tmp_path / "d.parquet"
    path.write_text("a,b\n1,2\n")
    rc, out, err = _run(["frontier", str(path), "--quiet", "--out", tmp_path / "o"], capsys)
    assert rc == 2 and f"{path}: is not a readable Parquet file" in err and "internal error" not in err
