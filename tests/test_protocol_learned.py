"""The real-benchmark protocol with learned estimators: splits, the table, the estimator-quality table, and
`cascjax reproduce --estimator learned` with a features side file (outputs and bad input)."""

import os

import numpy as np
import pandas as pd
import pytest

import cascjax
import cascjax.protocol as cp
from cascjax import estimators

from .test_cli import _run


def _files(tmp_path, n=240, seed=0):
    """A wide data file (shuffled rows, with sample_id) and a features file in another order."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 4, n)
    letters = np.array(list("ABCD"))
    data = pd.DataFrame({"sample_id": np.arange(n) * 3 + 1})
    feats = pd.DataFrame({"sample_id": data["sample_id"], "topic": rng.choice(["p", "q"], n)})
    for name, acc, price in (("small", 0.45, 1.0), ("mid", 0.6, 2.0), ("big", 0.85, 6.0)):
        ans = np.where(rng.random(n) < acc, truth, rng.integers(0, 4, n))
        data[name] = (ans == truth).astype(float)
        data[f"{name}|total_cost"] = price * (1 + 0.1 * rng.random(n))
        feats[f"{name}|answer"] = letters[ans]
        feats[f"{name}|output_chars"] = rng.integers(10, 400, n)
    data.to_csv(tmp_path / "data.csv", index=False)
    feats.sample(frac=1.0, random_state=1).to_csv(tmp_path / "answers.csv", index=False)
    return tmp_path / "data.csv", tmp_path / "answers.csv"


def test_split_three():
    train, val, test = cp.split_three(100, 0.5, 0.1, 42)
    assert (train.size, val.size, test.size) == (40, 10, 50)
    assert np.array_equal(np.sort(np.concatenate([train, val, test])), np.arange(100))
    with pytest.raises(cascjax.CascjaxError, match="sum to less than 1"):
        cp.split_three(100, 0.6, 0.5, 0)
    with pytest.raises(cascjax.CascjaxError, match="the validation split has 5 queries"):
        cp.split_three(100, 0.5, 0.05, 0)


def test_reproduce_learned_in_python(tmp_path):
    data, answers = _files(tmp_path)
    ds = cascjax.read(data)
    f = estimators.read_features(answers, ds, sample_ids=pd.read_csv(data)["sample_id"])
    run = cp.reproduce_learned(ds, f, estimates=("learned", "separable", "baseline"), max_depth=3, samples=8,
                               per_segment=4, n_boot=50, validation_fraction=0.2, per_step=(),
                               strategies=("routing", "cascade_routing"))
    assert [c.noise for c in run.cells] == ["learned", "separable", "baseline"]
    assert [len(s) for s in run.split] == [72, 48, 120] and run.fit_seconds > 0
    for cell in run.cells:
        assert [r["strategy"] for r in cell.rows] == ["linear interpolation", "routing", "cascade routing"]
        assert cell.test.n_queries == 120
        for row in cell.rows:
            assert 0 < row["auc"] < 100 and row["ci_low"] <= row["diff"] <= row["ci_high"]
    # The linear interpolation row does not depend on the estimates.
    base = {c.noise: c.rows[0]["auc"] for c in run.cells}
    assert len(set(base.values())) == 1
    q = run.quality
    assert set(q.estimator) == {"learned", "separable", "baseline"} and set(q.depth) == {0, 1, 2, 3}
    with pytest.raises(cascjax.CascjaxError, match="unknown estimates 'oracle'"):
        cp.reproduce_learned(ds, f, estimates=("oracle",))


def test_cli_reproduce_learned(tmp_path, capsys):
    data, answers = _files(tmp_path)
    out = tmp_path / "out"
    rc, stdout, err = _run(["reproduce", data, "--estimator", "learned", "--features", answers, "--out", out,
                            "--samples", "8", "--bootstrap", "20", "--per-step", "none", "--max-depth", "2",
                            "--strategy", "routing,cascade-routing", "--compare", "separable,baseline",
                            "--validation-fraction", "0.2", "--quiet"], capsys)
    assert rc == 0, err
    assert sorted(os.listdir(out)) == ["estimators.csv", "frontier_baseline.png", "frontier_learned.png",
                                       "frontier_separable.png", "table.csv", "table.md"]
    table = pd.read_csv(out / "table.csv")
    assert set(table.noise) == {"learned", "separable", "baseline"} and len(table) == 9
    quality = pd.read_csv(out / "estimators.csv")
    assert {"estimator", "depth", "phase", "brier", "auc", "entries"} <= set(quality.columns)
    assert "Estimator quality on the test split" in stdout
    # Perfect post-hoc estimates (SWE-bench): the run models' estimates are their truth: Brier 0 post hoc.
    rc, stdout, err = _run(["reproduce", data, "--estimator", "learned", "--features", answers, "--out",
                            tmp_path / "perfect", "--samples", "8", "--bootstrap", "0", "--per-step", "none",
                            "--strategy", "routing", "--post-hoc", "perfect", "--compare", "none",
                            "--protocol", "swe-bench", "--json", "--quiet"], capsys)
    assert rc == 0, err
    quality = pd.read_csv(tmp_path / "perfect" / "estimators.csv")
    assert (quality[quality.phase == "post"].brier == 0).all()
    import json

    doc = json.loads(stdout)
    assert doc["split"] == [60, 60, 120]  # SWE-bench: half for test, the rest split evenly
    table = pd.read_csv(tmp_path / "perfect" / "table.csv")
    assert set(table.budgets) == {30}  # 10 per model, from the cheapest model's cost to the sum of all


def test_cli_reproduce_learned_bad_input(tmp_path, capsys):
    data, answers = _files(tmp_path)
    frame = pd.read_csv(answers)
    frame.drop(columns=["mid|output_chars"]).to_csv(tmp_path / "partial.csv", index=False)
    frame.iloc[:-1].to_csv(tmp_path / "short.csv", index=False)
    cases = [
        (["--features", tmp_path / "partial.csv"], "column mid|output_chars is missing"),
        (["--features", tmp_path / "short.csv"], "sample_id '"),
        (["--features", answers, "--compare", "magic"], "unknown estimates 'magic' in --compare"),
        (["--features", answers, "--test-fraction", "0.95"], "sum to less than 1"),
        (["--features", tmp_path / "none.csv"], "no such file"),
    ]
    for extra, message in cases:
        rc, out, err = _run(["reproduce", data, "--estimator", "learned", "--out", tmp_path / "bad", "--quiet"]
                            + extra, capsys)
        assert rc == 2, (extra, err)
        assert message in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "bad").exists()  # nothing half-written



def test_cli_reproduce_on_the_datas_own_estimate_columns(tmp_path, capsys):
    """`reproduce --estimates columns` runs the paper's protocol on the file's own estimate columns: the same
    table as cascjax.protocol.reproduce with read_estimates, one 'columns' cell."""
    data, _ = _files(tmp_path)
    frame = pd.read_csv(data)
    rng = np.random.default_rng(5)
    for m in ("small", "mid", "big"):
        frame[f"{m}|quality_ante"] = np.clip(frame[m] + rng.normal(0, 0.4, len(frame)), 0, 1).round(2)
    frame.to_csv(tmp_path / "own.csv", index=False)
    out = tmp_path / "cols"
    rc, stdout, err = _run(["reproduce", tmp_path / "own.csv", "--estimates", "columns", "--strategy",
                            "routing,cascade", "--per-step", "none", "--bootstrap", "0", "--samples", "8",
                            "--fit-fraction", "0.25", "--out", out, "--quiet"], capsys)
    assert rc == 0, err
    table = pd.read_csv(out / "table.csv")
    assert set(table.noise) == {"columns"} and list(table.strategy) == ["linear interpolation", "routing", "cascade"]
    ds = cascjax.read(tmp_path / "own.csv")
    cells = cp.reproduce(ds, ("all",), ("columns",), estimates=cascjax.read_estimates(tmp_path / "own.csv", ds),
                         strategies=("routing", "cascade"), per_step=(), n_boot=0, samples=8, fit_fraction=0.25)
    np.testing.assert_allclose(table.auc, [r["auc"] for r in cells[0].rows], rtol=1e-5)
    with pytest.raises(cascjax.CascjaxError, match="needs the data's own estimates"):
        cp.reproduce(ds, ("all",), ("columns",), n_boot=0)
