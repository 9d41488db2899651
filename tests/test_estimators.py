"""Learned estimators (issue 20): the vmapped optax logistic regressions against an independent solver (scipy),
the features reader and its errors, what each run pattern's regression may see, the options, the report."""

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

import cascjax
from cascjax import estimators
from cascjax.estimators._logistic import fit_logistic


def _objective(w, x, y, weight, mask, alpha):
    w = w * mask
    z = x @ w
    ce = np.sum(weight * (np.logaddexp(0, z) - y * z)) / np.sum(weight)
    grad = x.T @ (weight * (1 / (1 + np.exp(-z)) - y)) / np.sum(weight)
    pen = np.r_[0.0, w[1:]]
    return ce + 0.5 * alpha * np.sum(pen ** 2), (grad + alpha * pen) * mask


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_regressions_match_scipy(seed):
    """Every regression of one vmapped call equals scipy's L-BFGS-B on the same data and penalty to 1e-4."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(seed)
    n, f, p = 80, 7, 6
    x = np.concatenate([np.ones((n, 1)), rng.normal(size=(n, f - 1))], axis=1)
    y = (rng.random((n, 4)) < 0.4).astype(float)
    y[:, 1] = rng.random(n)  # soft targets too
    target = np.array([0, 1, 2, 3, 1, 0])  # two problems share a target column, with other masks and α
    weight = (rng.random(n) < 0.8).astype(float)  # rows left out (a held-out part)
    mask = (rng.random((p, f)) < 0.7).astype(float)
    mask[:, 0] = 1
    alpha = np.array([1e-3, 1e-2, 1e-1, 1.0, 3e-3, 0.3])
    w, k, g = fit_logistic(*(jnp.asarray(a) for a in (x, y, target, weight, mask, alpha)), iterations=5000,
                           tolerance=1e-10)
    assert float(np.max(g)) <= 1e-10
    for i in range(p):
        ref = minimize(_objective, np.zeros(f), args=(x, y[:, target[i]], weight, mask[i], alpha[i]), jac=True,
                       method="L-BFGS-B", options=dict(gtol=1e-12, ftol=1e-15, maxiter=10_000))
        np.testing.assert_allclose(np.asarray(w)[i], ref.x * mask[i], atol=1e-4)
        assert np.all(np.asarray(w)[i][mask[i] == 0] == 0)


def _frame(n=40, seed=0):
    rng = np.random.default_rng(seed)
    letters = np.array(list("ABCD"))
    truth = rng.integers(0, 4, n)
    answers = {m: np.where(rng.random(n) < acc, truth, rng.integers(0, 4, n)) for m, acc in (("a", 0.5), ("b", 0.8))}
    frame = pd.DataFrame({"sample_id": np.arange(n) + 100, "topic": rng.choice(["x", "y", "z"], n),
                          "length": rng.integers(10, 500, n)})
    for m, ans in answers.items():
        frame[f"{m}|answer"] = letters[ans]
        frame[f"{m}|chars"] = rng.integers(5, 300, n)
    quality = np.stack([(answers[m] == truth).astype(float) for m in ("a", "b")], axis=1)
    ds = cascjax.Dataset.from_arrays(quality, np.tile([1.0, 3.0], (n, 1)), models=["a", "b"], sort=False)
    return frame, ds


def test_read_features_and_the_join_on_sample_id():
    frame, ds = _frame()
    f = estimators.read_features(frame, ds)
    assert f.query.shape == (40, 4) and f.model.shape == (40, 2, 2) and f.answer.shape == (40, 2)
    assert f.query_names == ("topic=x", "topic=y", "topic=z", "length") and f.model_names == ("chars", "extracted")
    np.testing.assert_allclose(f.model[:, 0, 0], np.log1p(frame["a|chars"]))
    assert (f.answer[:, 0] == f.answer[:, 1]).tolist() == (frame["a|answer"] == frame["b|answer"]).tolist()
    shuffled = frame.sample(frac=1.0, random_state=3)
    g = estimators.read_features(shuffled, ds, sample_ids=frame["sample_id"])
    for a, b in zip(f[:2], g[:2]):
        np.testing.assert_array_equal(a, b)
    assert ((g.answer[:, 0] == g.answer[:, 1]) == (f.answer[:, 0] == f.answer[:, 1])).all()


def test_feature_errors_name_the_column():
    frame, ds = _frame()
    cases = [
        (frame.drop(columns=["b|chars"]), "column b|chars is missing"),
        (frame.drop(columns=["a|answer", "b|answer"]), "no <model>|answer columns"),
        (frame.assign(**{"a|chars": frame["a|chars"].astype(str).where(frame.index != 3, "many")}),
         "column a|chars must hold finite numbers; row 3 holds 'many'"),
        (frame.assign(**{"b|chars": frame["b|chars"].where(frame.index != 5, np.nan)}), "column b|chars must hold"),
        (frame.iloc[:30], "30 rows but the dataset has 40 queries"),
    ]
    for bad, match in cases:
        with pytest.raises(cascjax.CascjaxError, match=match.replace("|", r"\|")):
            estimators.read_features(bad, ds)
    ids = frame["sample_id"].to_numpy().copy()
    ids[0] = 7
    with pytest.raises(cascjax.CascjaxError, match="sample_id '7' of the dataset is not in the file"):
        estimators.read_features(frame, ds, sample_ids=ids)
    with pytest.raises(cascjax.CascjaxError, match="query feature column 'nope' is missing"):
        estimators.read_features(frame, ds, query_features=["nope"])


def test_each_pattern_sees_only_its_run_models():
    """Row ∅ does not change with the answers; row {a} changes with a's answer features but not with b's;
    agreement enters once both have run (row {a, b} moves when b's answer is changed to agree or not)."""
    frame, ds = _frame(n=120)
    f = estimators.read_features(frame, ds)
    fit = estimators.fit_learned(ds, f, np.arange(120))
    base = np.asarray(estimators.state_estimates(fit, ds, f).quality)
    answer, model = f.answer.copy(), f.model.copy()
    answer[:, 1] = (answer[:, 1] + 1) % 4  # b answers differently: agreement with a changes
    model[:, 1, 0] += 0.7  # and writes longer outputs
    other = f._replace(answer=answer, model=model)
    moved = np.asarray(estimators.state_estimates(fit, ds, other).quality)
    np.testing.assert_array_equal(base[:, 0], moved[:, 0])  # nothing run: query features only
    np.testing.assert_array_equal(base[:, 1], moved[:, 1])  # {a}: a's features unchanged
    assert not np.array_equal(base[:, 2], moved[:, 2])  # {b}: b's features moved
    assert not np.array_equal(base[:, 3], moved[:, 3])  # {a, b}: agreement and b moved


def test_agreement_is_learned_and_drives_the_estimates():
    """On data where the models' answers are the only signal (b right ~85 %, a ~62 %; agreeing answers are
    mostly right), the estimates once both ran (depth 2) separate right from wrong answers far better than
    each model's own answer does (the separable baseline, the same at every depth)."""
    frame, ds = _frame(n=400, seed=1)
    f = estimators.read_features(frame, ds)
    fit = estimators.fit_learned(ds, f, np.arange(300))
    test = np.arange(300, 400)
    table = estimators.state_estimates(fit, ds.take(test), f.take(test))
    sep = estimators.separable(fit, ds.take(test), f.take(test))
    report = estimators.estimator_quality(ds.take(test), {"learned": table, "separable": sep})
    post2 = report[(report.depth == 2) & (report.phase == "post")].set_index("estimator")
    assert post2.loc["learned", "auc"] > post2.loc["separable", "auc"] + 0.15
    assert post2.loc["learned", "brier"] < post2.loc["separable", "brier"] - 0.04
    flat = report[report.estimator == "separable"].groupby("phase").auc.nunique()
    assert flat.max() == 1  # the baseline learns nothing from more answers
    # The table feeds every strategy.
    for strategy in ("routing", "threshold_cascade", "cascade", "cascade_routing"):
        lam = [0.0, 0.5] if strategy == "threshold_cascade" else [0.0, 0.05, 1.0]
        curve = cascjax.sweep(ds.take(test), table, lam, strategy, samples=8)
        assert np.isfinite(np.asarray(curve.quality)).all()


def test_options_perfect_post_hoc_and_training_mean_ante():
    frame, ds = _frame(n=60)
    f = estimators.read_features(frame, ds)
    train = np.arange(40)
    fit = estimators.fit_learned(ds, f, train, post_hoc="perfect", ante="mean", max_depth=1)
    table = estimators.state_estimates(fit, ds, f)
    mu, q = np.asarray(table.quality), np.asarray(ds.quality)
    ran = cascjax._estimates.run_patterns(2)
    for r in range(4):
        for m in range(2):
            want = q[:, m] if ran[r, m] else np.full(60, q[train, m].mean())
            np.testing.assert_allclose(mu[:, r, m], want, rtol=1e-12)
    assert float(np.abs(np.asarray(table.covariance)[3]).max()) == 0.0  # all run and known: no deviation
    independent = estimators.state_estimates(fit, ds, f, uncertainty="independent")
    assert independent.covariance is None and independent.sd.shape == (60, 4, 2)


def test_training_sizes_of_a_bucket_reuse_the_programs_and_padding_changes_nothing(monkeypatch):
    """Fits on training sets of different sizes that share a query bucket compile no new program (rows of
    weight 0 pad them); each equals the unpadded fit to the solver's tolerance; Σ(R), fitted one chunk of
    queries at a time, is :func:`cascjax.fit_covariances` of the training rows' table."""
    from cascjax._compile import buckets, programs

    from cascjax.estimators import _learned

    monkeypatch.setattr(_learned, "COVARIANCE_ELEMENTS", 7 * 4 * 2)  # Σ(R) from chunks of 7 queries
    frame, ds = _frame(n=120, seed=2)
    f = estimators.read_features(frame, ds)
    estimators.fit_learned(ds, f, np.arange(70), max_depth=1)  # bucket 128: its programs compiled once
    before = programs()["total"]
    fits = {n: estimators.fit_learned(ds, f, np.arange(n), max_depth=1) for n in (65, 88, 101, 120)}
    assert programs()["total"] == before
    with buckets(False):
        plain = estimators.fit_learned(ds, f, np.arange(88), max_depth=1)
    np.testing.assert_allclose(fits[88].weights, plain.weights, atol=1e-5)
    np.testing.assert_array_equal(fits[88].alpha, plain.alpha)
    rows = np.arange(101)
    model = estimators.state_model(fits[101], ds.take(rows), f.take(rows), uncertainty="none")
    want = cascjax.fit_covariances(model.dense()).covariance
    np.testing.assert_allclose(fits[101].covariance, np.asarray(want), rtol=1e-9, atol=1e-15)


def test_bad_fit_input():
    frame, ds = _frame()
    f = estimators.read_features(frame, ds)
    rows = np.arange(30)
    for kwargs, match in ((dict(post_hoc="oracle"), "unknown post_hoc 'oracle'"), (dict(ante="zero"), "unknown ante"),
                          (dict(max_depth=3), "max_depth must be between 1 and M = 2"),
                          (dict(l2=[0.0]), "l2 must be")):
        with pytest.raises(cascjax.CascjaxError, match=match):
            estimators.fit_learned(ds, f, rows, **kwargs)
    with pytest.raises(cascjax.CascjaxError, match="at least 10 training queries"):
        estimators.fit_learned(ds, f, rows[:5])
    scores = cascjax.Dataset.from_arrays(np.asarray(ds.quality) * 2, ds.cost, models=ds.models, sort=False)
    with pytest.raises(cascjax.CascjaxError, match=r"quality in \[0, 1\]"):
        estimators.fit_learned(scores, f, rows)
    with pytest.raises(cascjax.CascjaxError, match="features are for"):
        estimators.fit_learned(ds.take(rows), f, rows)


@given(st.lists(st.tuples(st.integers(0, 4), st.booleans()), min_size=2, max_size=12))
@settings(max_examples=50)
def test_roc_auc_is_the_pair_count(pairs):
    score, label = np.array([s for s, _ in pairs], float), np.array([b for _, b in pairs])
    pos, neg = score[label], score[~label]
    got = estimators.roc_auc(score, label)
    if not len(pos) or not len(neg):
        assert np.isnan(got)
        return
    want = np.mean([(p > q) + 0.5 * (p == q) for p in pos for q in neg])
    assert got == pytest.approx(want)


def test_the_example_features_line_up_with_the_example():
    ds, f = cascjax.load_example(), estimators.example_features()
    assert f.answer.shape == ds.quality.shape and len(f.query_names) == 93
    i = list(ds.models).index("llama-3.1-8b-instruct")
    j = list(ds.models).index("llama-3.1-70b-instruct")
    agree = f.answer[:, i] == f.answer[:, j]
    right = np.asarray(ds.quality)[:, i]
    assert round(float(right[agree].mean()) * 100, 1) == 77.1 and round(float(right[~agree].mean()) * 100, 1) == 13.1


def test_a_state_model_decides_as_its_table():
    """The state model (evaluated chunk by chunk inside cascade routing's kernel; the other strategies read its
    few rows) makes its dense table's decisions: every strategy, every query's choice and cost."""
    frame, ds = _frame(n=90, seed=2)
    f = estimators.read_features(frame, ds)
    for kw in (dict(), dict(post_hoc="perfect", ante="mean")):
        fit = estimators.fit_learned(ds, f, np.arange(60), **kw)
        model = estimators.state_model(fit, ds, f)
        table = estimators.state_estimates(fit, ds, f)
        np.testing.assert_array_equal(np.asarray(model.dense().quality), np.asarray(table.quality))
        for strategy in ("routing", "threshold_cascade", "cascade", "cascade_routing"):
            lam = [0.0, 0.5, 0.9] if strategy == "threshold_cascade" else [0.0, 0.02, 0.1, 1.0]
            a = cascjax.sweep(ds, table, lam, strategy, samples=8, return_choices=True)
            b = cascjax.sweep(ds, model, lam, strategy, samples=8, return_choices=True)
            np.testing.assert_array_equal(np.asarray(a.choice), np.asarray(b.choice), err_msg=strategy)
            np.testing.assert_allclose(np.asarray(a.query_cost), np.asarray(b.query_cost), rtol=1e-6)
    # Independent σ instead of the covariance; a model that is not one.
    model = estimators.state_model(fit, ds, f, uncertainty="independent")
    assert model.covariance is None and model.sd.shape == (4, 2)
    with pytest.raises(cascjax.CascjaxError, match="StateModel.which must index"):
        cascjax.sweep(ds, model._replace(which=model.which + 100), [0.0], "cascade_routing")
    with pytest.raises(cascjax.CascjaxError, match="StateModel.cost_ante must be a finite array of shape"):
        cascjax.sweep(ds, model._replace(cost_ante=model.cost_ante[:5]), [0.0], "cascade_routing")
