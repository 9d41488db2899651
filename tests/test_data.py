"""Dataset construction, reading the interchange format, and every bad input the loaders must name."""

import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import cascjax
from cascjax import CascjaxError


def _frame(n=5, models=("a", "b", "c"), seed=0):
    rng = np.random.default_rng(seed)
    data = {"sample_id": np.arange(n), "eval_name": np.array(["x", "y"])[np.arange(n) % 2], "prompt": ["p"] * n}
    for i, m in enumerate(models):
        data[m] = rng.integers(0, 2, n).astype(float)
        data[f"{m}|total_cost"] = (3 - i) * 1e-3 * (1 + rng.random(n))  # a is the most expensive
        data[f"{m}|model_response"] = ["r"] * n
    return pd.DataFrame(data)


def test_from_arrays_sorts_by_mean_cost_and_keeps_names():
    ds = cascjax.Dataset.from_arrays([[1, 0, 1]], [[3.0, 1.0, 2.0]], models=["x", "y", "z"])
    assert ds.models == ("y", "z", "x")
    np.testing.assert_array_equal(ds.cost, [[1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(ds.quality, [[0, 1, 1]])
    unsorted = cascjax.Dataset.from_arrays([[1, 0, 1]], [[3.0, 1.0, 2.0]], models=["x", "y", "z"], sort=False)
    assert unsorted.models == ("x", "y", "z")


def test_dataset_is_a_pytree_with_static_names():
    ds = cascjax.Dataset.from_arrays([[1, 0]], [[1.0, 2.0]], models=["p", "q"], group=["g"])
    leaves, treedef = jax.tree_util.tree_flatten(ds)
    assert len(leaves) == 3  # quality, cost, group
    back = jax.tree_util.tree_unflatten(treedef, leaves)
    assert back.models == ("p", "q") and back.group_names == ("g",)
    doubled = jax.jit(lambda d: jax.tree_util.tree_map(lambda x: x * 2, d))(ds)
    assert doubled.models == ("p", "q")
    np.testing.assert_array_equal(doubled.cost, [[2.0, 4.0]])


def test_dtype_follows_input():
    q32 = np.zeros((3, 2), np.float32)
    ds = cascjax.Dataset.from_arrays(q32, q32 + 1)
    assert ds.quality.dtype == jnp.float32
    ds64 = cascjax.Dataset.from_arrays(q32.astype(np.float64), q32.astype(np.float64) + 1)
    assert ds64.quality.dtype == jnp.float64  # x64 is on in the tests


def test_select_take_split():
    ds = cascjax.synthetic(0, n_queries=200, n_models=4)
    sub = ds.select(["m03", "m01"])
    assert sub.models == ("m01", "m03")
    np.testing.assert_array_equal(sub.quality, ds.quality[:, np.array([1, 3])])
    by_index = ds.select([3, 1])
    assert by_index.models == ("m01", "m03")
    fit, test = ds.split(0.05, seed=42)
    assert fit.n_queries == 10 and test.n_queries == 190
    fit2, _ = ds.split(0.05, seed=42)
    np.testing.assert_array_equal(fit.quality, fit2.quality)
    fit3, _ = ds.split(0.05, seed=7)
    assert not np.array_equal(fit.cost, fit3.cost)
    both = np.concatenate([np.asarray(fit.cost), np.asarray(test.cost)])
    np.testing.assert_array_equal(np.sort(both, axis=0), np.sort(np.asarray(ds.cost), axis=0))


@pytest.mark.parametrize("bad, message", [
    (dict(models=["m00", "nope"]), "unknown model 'nope'"),
    (dict(models=["m00"]), "at least two models"),
    (dict(models=["m00", "m00"]), "named twice"),
])
def test_select_errors(bad, message):
    ds = cascjax.synthetic(0, n_queries=10, n_models=3)
    with pytest.raises(CascjaxError, match=message):
        ds.select(**bad)


def test_split_errors():
    ds = cascjax.synthetic(0, n_queries=1, n_models=3)
    with pytest.raises(CascjaxError, match="cannot split"):
        ds.split(0.5)
    with pytest.raises(CascjaxError, match="fit_fraction"):
        cascjax.synthetic(0, 10, 3).split(1.5)


def test_synthetic_is_seeded_and_tunable():
    a = cascjax.synthetic(3, n_queries=4000, n_models=5, correlation=0.0)
    b = cascjax.synthetic(3, n_queries=4000, n_models=5, correlation=0.0)
    np.testing.assert_array_equal(a.quality, b.quality)
    corr_lo = np.corrcoef(np.asarray(a.quality).T)[0, -1]
    c = cascjax.synthetic(3, n_queries=4000, n_models=5, correlation=0.9)
    corr_hi = np.corrcoef(np.asarray(c.quality).T)[0, -1]
    assert corr_hi > corr_lo + 0.2
    mc = a.model_costs()
    assert np.all(np.diff(mc) > 0) and mc[-1] / mc[0] == pytest.approx(100, rel=0.2)
    wide = cascjax.synthetic(3, n_queries=4000, n_models=5, cost_spread=3.0).model_costs()
    assert wide[-1] / wide[0] == pytest.approx(1000, rel=0.2)
    acc = a.model_qualities()
    assert acc[0] == pytest.approx(0.3, abs=0.03) and acc[-1] == pytest.approx(0.85, abs=0.03)
    cont = cascjax.synthetic(3, n_queries=100, n_models=3, binary=False)
    assert 0 < float(cont.quality.min()) and float(cont.quality.max()) < 1


@pytest.mark.parametrize("suffix", ["csv", "csv.gz", "pkl", "parquet"])
def test_read_formats(tmp_path, suffix):
    df = _frame()
    path = tmp_path / f"d.{suffix}"
    if suffix.startswith("csv"):
        df.to_csv(path, index=False)
    elif suffix == "pkl":
        df.to_pickle(path)
    else:
        pytest.importorskip("pyarrow")
        df.to_parquet(path)
    ds = cascjax.read(path, allow_pickle=suffix == "pkl")
    assert ds.models == ("c", "b", "a")  # ascending mean cost
    np.testing.assert_allclose(ds.quality[:, 2], df["a"])
    np.testing.assert_allclose(ds.cost[:, 0], df["c|total_cost"])
    assert ds.group_names == ("x", "y")
    np.testing.assert_array_equal(ds.group, np.arange(5) % 2)


def test_read_routerbench_pickle_layout(tmp_path):
    """RouterBench's routerbench_0shot.pkl: a DataFrame pickled as is, model names with slashes."""
    models = ("gpt-4-1106-preview", "mistralai/mistral-7b-chat", "meta/llama-2-70b-chat")
    df = _frame(n=7, models=models)
    df["oracle_model_to_route_to"] = models[0]
    path = tmp_path / "routerbench_0shot.pkl"
    with open(path, "wb") as f:
        pickle.dump(df, f)
    ds = cascjax.read(path, allow_pickle=True)
    assert set(ds.models) == set(models) and ds.n_queries == 7
    assert ds.group_names == ("x", "y")


class _Writes:
    """Unpickling this writes a file: what a malicious pickle could do."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (_touch, (self.target,))


def _touch(path):
    with open(path, "w") as f:
        f.write("ran")
    return pd.DataFrame({"a": [1, 0], "a|total_cost": [1.0, 1.0], "b": [1, 1], "b|total_cost": [2.0, 2.0]})


def test_a_pickle_is_not_loaded_without_the_opt_in(tmp_path):
    """Loading a pickle runs the code it holds: without allow_pickle (CLI: --allow-pickle) nothing is run and
    the error names the flag; with it, the file loads."""
    from cascjax import cli

    path, target = tmp_path / "data.pkl", tmp_path / "ran.txt"
    with open(path, "wb") as f:
        pickle.dump(_Writes(target), f)
    for call in (lambda: cascjax.read(path), lambda: cascjax.read_estimates(path, cascjax.load_example())):
        with pytest.raises(cascjax.CascjaxError, match="is a pickle, .* pass --allow-pickle"):
            call()
    assert cli.main(["frontier", str(path), "--quiet", "--out", str(tmp_path / "o")]) == 2
    assert not target.exists() and not (tmp_path / "o").exists()
    ds = cascjax.read(path, allow_pickle=True)
    assert target.exists() and ds.models == ("a", "b")


def test_from_frame_and_models_argument():
    df = _frame()
    ds = cascjax.Dataset.from_frame(df, models=["a", "b"])
    assert ds.models == ("b", "a")
    assert list(df.columns)[0] == "sample_id"  # the caller's frame is untouched


def test_load_example():
    ds = cascjax.load_example()
    assert ds.n_queries == 12020 and ds.n_models == 6
    assert ds.models[0] == "llama-3.1-8b-instruct" and ds.models[-1] == "gemini-1.5-pro-002"
    assert np.all(np.diff(ds.model_costs()) > 0)
    assert len(ds.group_names) == 14
    assert set(np.unique(np.asarray(ds.quality))) == {0.0, 1.0}
    assert cascjax.model_points(ds)[1][-1] == pytest.approx(0.702, abs=5e-4)


def _write(tmp_path, df, name="d.csv"):
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("mutate, message", [
    (lambda df: df.drop(columns=["b|total_cost"]), r"missing cost column 'b\|total_cost' for model 'b'"),
    (lambda df: df.drop(columns=["b"]), "missing quality column 'b'"),
    (lambda df: df.assign(b=np.where(np.arange(5) == 2, np.nan, df["b"])), r"1 rows have missing.*column 'b'"),
    (lambda df: df.assign(**{"a|total_cost": np.inf}), r"5 rows have missing or infinite.*'a\|total_cost'"),
    (lambda df: df.assign(**{"c|total_cost": -1.0}), r"column 'c\|total_cost' has a negative cost"),
    (lambda df: df[["eval_name", "a", "a|total_cost"]], "at least two models"),
    (lambda df: df[["eval_name", "prompt"]], "no model columns found"),
    (lambda df: df.assign(a="yes"), "column 'a' has a non-numeric value 'yes'"),
    (lambda df: df.iloc[:0], "no rows"),
])
def test_read_bad_input(tmp_path, mutate, message):
    path = _write(tmp_path, mutate(_frame()))
    with pytest.raises(CascjaxError, match=message) as info:
        cascjax.read(path)
    assert str(path) in str(info.value)


def test_read_duplicate_model_columns(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("a,a,a|total_cost,a|total_cost,b,b|total_cost\n1,0,1,1,0,2\n")
    with pytest.raises(CascjaxError, match="column 'a' appears twice"):
        cascjax.read(path)
    with pytest.raises(CascjaxError, match="duplicate model name 'a'"):
        cascjax.read(_write(tmp_path, _frame()), models=["a", "a"])


def test_read_files_that_are_not_data(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(CascjaxError, match="empty"):
        cascjax.read(empty)
    with pytest.raises(CascjaxError, match="no such file"):
        cascjax.read(tmp_path / "missing.csv")
    with pytest.raises(CascjaxError, match="unknown file type"):
        cascjax.read(_write(tmp_path, _frame(), "d.txt"))
    bad_pickle = tmp_path / "list.pkl"
    with open(bad_pickle, "wb") as f:
        pickle.dump([1, 2], f)
    with pytest.raises(CascjaxError, match="not a pandas DataFrame"):
        cascjax.read(bad_pickle, allow_pickle=True)
    with pytest.raises(CascjaxError, match="unknown model 'zzz'|missing quality column 'zzz'"):
        cascjax.read(_write(tmp_path, _frame()), models=["a", "zzz"])


def test_dropna_drops_and_reports(tmp_path):
    df = _frame(n=6)
    df.loc[1, "a"] = np.nan
    df.loc[4, "c|total_cost"] = np.inf
    path = _write(tmp_path, df)
    with pytest.warns(UserWarning, match="dropped 2 of 6 rows"):
        ds = cascjax.read(path, dropna=True)
    assert ds.n_queries == 4
    np.testing.assert_allclose(ds.quality[:, 2], df["a"].to_numpy()[[0, 2, 3, 5]])


@pytest.mark.parametrize("kwargs, message", [
    (dict(quality=np.zeros((3,)), cost=np.zeros((3,))), "2-D array"),
    (dict(quality=np.zeros((3, 2)), cost=np.zeros((2, 3))), "must match"),
    (dict(quality=np.zeros((0, 2)), cost=np.zeros((0, 2))), "no queries"),
    (dict(quality=np.zeros((3, 2)), cost=np.zeros((3, 2)), models=["a"]), "1 model names given for 2"),
    (dict(quality=[[np.nan, 1]], cost=[[1, 1]], models=["a", "b"]), "quality of model 'a' is nan"),
    (dict(quality=[[0, 1]], cost=[[1, -2]], models=["a", "b"]), "cost of model 'b' is negative"),
    (dict(quality=[["x", "y"]], cost=[[1, 1]]), "numeric"),
    (dict(quality=[[0, 1]], cost=[[1, 1]], group=[1, 2]), "one label per query"),
])
def test_from_arrays_bad_input(kwargs, message):
    with pytest.raises(CascjaxError, match=message):
        cascjax.Dataset.from_arrays(**kwargs)


def test_numbers_that_do_not_fit_float32_are_an_error_not_inf(tmp_path):
    """Without x64 the data is float32: 1e39 would become inf. Named by model (arrays) and by column and row
    (files); with x64 on it is read as it is."""
    df = _frame()
    df.loc[3, "c|total_cost"] = 1e39
    path = _write(tmp_path, df)
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(CascjaxError, match=r"quality of model 'b' is 1e\+39 at query 1, which does not fit"):
            cascjax.Dataset.from_arrays([[0, 1], [1, 1e39]], [[1, 2], [1, 2]], models=["a", "b"])
        with pytest.raises(CascjaxError, match=r"cost of model 'a' is 1e\+39 at query 0, which does not fit"):
            cascjax.Dataset.from_arrays([[0, 1]], [[1e39, 2]], models=["a", "b"], sort=False)
        with pytest.raises(CascjaxError, match=r"column 'c\|total_cost' has 1e\+39 at row 3, which does not fit"):
            cascjax.read(path)
        assert cascjax.read(path, models=["a", "b"]).cost.dtype == jnp.float32
    finally:
        jax.config.update("jax_enable_x64", True)
    assert float(cascjax.read(path).cost.max()) == 1e39
