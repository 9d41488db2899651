"""Budgets that hold on new data (``at_budget(..., confidence=)``, ``fit(..., confidence=)``): the bound's
quantile against scipy's, the calibration over 1,000 random splits, and the fit's budgets on held-out data."""

import numpy as np
import pytest
import scipy.stats

import cascjax
from cascjax._confidence import bound, quantile
from cascjax._errors import CascjaxError


@pytest.mark.parametrize("confidence", [0.5, 0.8, 0.9, 0.95, 0.99, 0.999])
@pytest.mark.parametrize("n", [5, 20, 150, 600, 5000])
def test_the_quantile_is_students(confidence, n):
    exact = scipy.stats.t.ppf(confidence, n - 1)
    assert quantile(confidence, n) == (pytest.approx(exact, abs=2e-3) if n >= 20 else pytest.approx(exact, rel=1e-2))


def test_the_bound_of_a_mixture_is_its_mean_plus_t_sd():
    rng = np.random.default_rng(0)
    lo, hi = rng.random(200), 2 * rng.random(200)
    g = 0.3
    coin = np.concatenate([lo, hi])  # the population of one query's cost under the coin: γ-weighted
    weights = np.concatenate([np.full(200, 1 - g), np.full(200, g)]) / 200
    mean = weights @ coin
    sd = np.sqrt(weights @ (coin - mean) ** 2 * 200 / 199)
    got = bound(lo.mean(), (lo ** 2).mean(), hi.mean(), (hi ** 2).mean(), g, 200, 0.9, holdout=800)
    assert got == pytest.approx(mean + scipy.stats.t.ppf(0.9, 199) * sd * np.sqrt(1 / 200 + 1 / 800), rel=1e-3)


@pytest.fixture(scope="module")
def outcomes():
    """Per-query outcomes of a routing grid on a synthetic dataset (3,000 queries x 5 models, low noise)."""
    import jax

    ds = cascjax.synthetic(11, n_queries=3000, n_models=5)
    est = cascjax.noisy_estimates(ds, jax.random.key(4), "low")
    lam = cascjax.lambda_grid(est, 32)
    curve = cascjax.sweep(ds, est, lam, "routing", return_choices=True)
    quality = np.asarray(ds.quality, np.float64)
    got = quality[np.arange(ds.n_queries)[None, :], np.asarray(curve.choice)]
    return ds, lam, np.asarray(curve.query_cost, np.float64), got


def _held_out(outcomes, confidence, splits=1000, fit_fraction=0.1):
    """Per split and budget: whether the held-out mean cost of the chosen mixture (one coin per query)
    exceeded the budget, and its held-out quality."""
    ds, lam, cost, got = outcomes
    n = ds.n_queries
    mc = np.asarray(ds.cost, np.float64).mean(0)
    budgets = np.quantile(mc, [0.3, 0.6])
    rng = np.random.default_rng(1)
    over, quality = [], []
    for _ in range(splits):
        perm = rng.permutation(n)
        fit, test = perm[:int(fit_fraction * n)], perm[int(fit_fraction * n):]
        curve = cascjax.Curve(lam, cost[:, fit].mean(1), got[:, fit].mean(1), None, None, None, cost[:, fit])
        mix = cascjax.at_budget(curve, budgets, confidence=confidence, holdout=None if confidence is None else
                                test.size)
        lo, hi, g = (np.asarray(a) for a in (mix.lo, mix.hi, mix.gamma))
        coins = rng.random((budgets.size, test.size)) < g[:, None]
        spent = np.where(coins, cost[hi][:, test], cost[lo][:, test]).mean(1)
        over.append(spent > budgets)
        quality.append(np.where(coins, got[hi][:, test], got[lo][:, test]).mean(1))
    return np.array(over), np.array(quality)


def test_budgets_hold_on_held_out_splits_with_the_asked_probability(outcomes):
    """1,000 random fit/test splits (10 % fit): with confidence 0.9 the held-out mean cost exceeds the budget in
    at most 10 % of the splits (plus three Monte-Carlo standard errors); fitted in expectation it does about half
    the time — the test can fail."""
    over, quality = _held_out(outcomes, 0.9)
    rate = over.mean(0)
    assert (rate <= 0.1 + 3 * np.sqrt(0.1 * 0.9 / over.shape[0])).all(), rate
    plain_over, plain_quality = _held_out(outcomes, None)
    assert (plain_over.mean(0) > 0.3).all(), plain_over.mean(0)
    # What the guarantee costs: a little quality (the budget shrinks by the bound's margin).
    assert (quality.mean(0) <= plain_quality.mean(0) + 1e-9).all()


def test_fit_with_confidence_holds_its_budgets_on_the_test_split():
    import jax

    ds = cascjax.synthetic(5, n_queries=4000, n_models=4)
    est = cascjax.noisy_estimates(ds, jax.random.key(0), "low")
    fit_rows, test_rows = ds.split_indices(0.1, 3)
    budgets = np.quantile(np.asarray(ds.cost, np.float64).mean(0), [0.3, 0.6])
    kw = dict(per_step=(), grid=32)
    plain = cascjax.fit(ds.take(fit_rows), est.take(fit_rows), budgets, "routing", **kw)
    held = cascjax.fit(ds.take(fit_rows), est.take(fit_rows), budgets, "routing", confidence=0.95,
                       holdout=test_rows.size, **kw)
    assert (np.asarray(held.cost) < np.asarray(plain.cost)).all()  # a margin below each budget
    ev = cascjax.evaluate(held, ds.take(test_rows), est.take(test_rows))
    assert (np.asarray(ev.cost) <= budgets).all()


@pytest.mark.parametrize("kwargs,message", [
    (dict(confidence=1.0), r"confidence must be a probability in \[0.5, 1\)"),
    (dict(confidence=0.9, holdout=0), "holdout must be a positive number"),
])
def test_bad_confidence(kwargs, message, outcomes):
    ds, lam, cost, got = outcomes
    curve = cascjax.Curve(lam, cost.mean(1), got.mean(1), None, None, None, cost)
    with pytest.raises(CascjaxError, match=message):
        cascjax.at_budget(curve, [1.0], **kwargs)


def test_confidence_needs_the_per_query_costs(outcomes):
    ds, lam, cost, got = outcomes
    with pytest.raises(CascjaxError, match="return_choices=True"):
        cascjax.at_budget(cascjax.Curve(lam, cost.mean(1), got.mean(1), None, None), [1.0], confidence=0.9)


def test_the_protocol_and_the_command_line_take_confidence(tmp_path):
    import os
    import subprocess
    import sys

    import cascjax.protocol as cp

    ds = cascjax.synthetic(2, n_queries=600, n_models=3)
    fit_rows, test_rows = ds.split_indices(0.2, 1)
    fit_ds, test_ds = ds.take(fit_rows), ds.take(test_rows)
    est = cascjax.perfect_estimates(ds)
    budgets = cp.paper_budgets(test_ds, 3)
    options = dict(max_depth=2, samples=8, per_step=(), candidates=16, grid=16)
    cells = [cp.run_cell("all", "perfect", ds.models, fit_ds, test_ds, budgets,
                         lambda seed: (est.take(fit_rows), est.take(test_rows)), 1, cp.ROWS[:2],
                         {**options, "confidence": c}, 0, 0, None) for c in (None, 0.99)]
    row = cp.ROWS[1][0]
    spent, _ = cells[1].curves[row]  # the test split's mean cost at each budget (NaN: infeasible)
    assert (spent[np.isfinite(spent)] <= np.asarray(budgets)[np.isfinite(spent)]).all()
    assert np.isfinite(cells[0].rows[1]["auc"]) and np.isfinite(cells[1].rows[1]["auc"])

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "cascjax.cli", *args], capture_output=True, text=True,
                              env=os.environ)

    no_budgets = cli("frontier", "--confidence", "0.9", "--out", str(tmp_path / "a"))
    assert no_budgets.returncode == 2 and "--confidence needs --budgets" in no_budgets.stderr
    bad = cli("reproduce", "--confidence", "2", "--out", str(tmp_path / "b"))
    assert bad.returncode == 2 and "--confidence: confidence must be a probability" in bad.stderr


def test_the_protocol_and_the_command_line_take_choose(tmp_path, monkeypatch):
    """reproduce(choose="validation") / ``--choose validation``: every non-routing fit of the protocol chooses
    between constant and per-step λ on a held-out half of its fit split (``Fitted.chosen`` set)."""
    import cascjax._protocol as protocol
    import cascjax.protocol as cp

    seen = []
    real_fit = protocol.fit

    def recording(*args, **kwargs):
        f = real_fit(*args, **kwargs)
        seen.append((args[3], kwargs.get("choose", "all"), f.chosen))
        return f

    monkeypatch.setattr(protocol, "fit", recording)
    ds = cascjax.synthetic(2, n_queries=800, n_models=3)
    fit_rows, test_rows = ds.split_indices(0.3, 1)
    fit_ds, test_ds = ds.take(fit_rows), ds.take(test_rows)
    est = cascjax.perfect_estimates(ds)
    options = dict(max_depth=2, samples=8, per_step=("search",), candidates=16, grid=16, choose="validation")
    cell = cp.run_cell("all", "perfect", ds.models, fit_ds, test_ds, cp.paper_budgets(test_ds, 3),
                       lambda seed: (est.take(fit_rows), est.take(test_rows)), 1, cp.ROWS, options, 0, 0, None)
    assert all(np.isfinite(r["auc"]) for r in cell.rows)
    assert {s for s, *_ in seen} >= {"cascade", "cascade_routing"}
    for strategy, choose, chosen in seen:
        if strategy in ("cascade", "cascade_routing"):
            assert choose == "validation" and chosen is not None and set(np.unique(chosen)) <= {"constant",
                                                                                                "per-step"}
        if strategy == "routing":
            assert choose == "all"
