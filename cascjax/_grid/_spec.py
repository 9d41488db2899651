"""A grid spec: what a hyperparameter sweep varies, read from a dict (or a TOML file) and expanded into cells.

Every list is an axis (the grid is the product of the axes); a scalar is fixed; ``[[cells]]`` tables list
explicit cells instead of the product (each merged over the top-level settings, and itself expanded if it holds
lists). Two settings take a list as one value: ``data.models`` (a pool: a list of names; an axis is a list of
pools, ``"all"`` among them) and ``fit.budgets`` (a list of budgets; an axis is a list of such lists or of
per-segment counts). Every error names the key and, for a file, its line, before anything runs.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from .._errors import CascjaxError

#: The estimates a cell may use: the truth, the paper's noise model at a level, the data's own columns, or
#: the paper's learned estimators (fitted on a training split of their own, :mod:`cascjax.estimators`).
KINDS = ("perfect", "low", "medium", "high", "columns", "learned")
#: Settings of ``[estimates]`` that only ``kind = "learned"`` reads (blank in other cells).
LEARNED_KEYS = ("train_fraction", "post_hoc", "features")
#: The options each strategy takes in the spec (its sweep options; the rest of ``fit`` is shared).
STRATEGY_OPTIONS = {
    "routing": (),
    "threshold_cascade": ("max_depth",),
    "cascade": ("max_depth", "samples"),
    "cascade_routing": ("max_depth", "samples", "greedy", "force_order", "prune", "no_deviation"),
}
#: How λ is fitted per budget: one λ for every step, or the constant grid plus random per-step vectors.
LAMBDA_MODES = ("constant", "per-step")
#: Defaults of every setting (a spec need not name them).
DEFAULTS = {
    "data": {"path": "example", "models": "all", "format": "auto", "allow_pickle": False},
    "estimates": {"kind": "low", "seed": 0, "train_fraction": 0.4, "post_hoc": "learned", "features": ""},
    "fit": {"fit_fraction": 0.05, "split_seed": 42, "budgets": 10, "lambda": "constant", "grid": 256,
            "candidates": 256, "bootstrap": 0},
    "prices": {"model": "", "scale": 1.0},
    "latency": {"weight": None},
}
OPTION_DEFAULTS = {"max_depth": None, "samples": 64, "greedy": False, "force_order": False, "prune": True,
                   "no_deviation": False}
SECTIONS = ("data", "estimates", "strategies", "fit", "prices", "latency", "cells")
#: A cell's settings, in the order of the results table's axis columns.
AXES = ("path", "models", "estimates", "seed", "train_fraction", "post_hoc", "features", "strategy", "max_depth",
        "samples", "greedy", "force_order", "prune", "no_deviation", "fit_fraction", "split_seed", "budgets",
        "lambda", "price_model", "price_scale", "latency_weight")
#: The settings that only change traced values (estimates, splits, budgets): cells differing in these alone
#: share a compiled program and run together.
TRACED = ("estimates", "seed", "fit_fraction", "split_seed", "budgets", "price_model", "price_scale",
          "latency_weight") + LEARNED_KEYS


class Where:
    """Locates a key of the spec for error messages: its line in the TOML text, or its section."""

    def __init__(self, text: str | None = None, name: str = "spec"):
        self.text, self.name = text, name

    def __call__(self, section: str, key: str | None = None) -> str:
        label = f"[{section}]" + (f" {key}" if key else "")
        if self.text is None:
            return f"{self.name} {label}"
        current = None
        for i, line in enumerate(self.text.splitlines(), 1):
            head = re.match(r"\s*\[+\s*([A-Za-z0-9_.-]+)\s*\]+", line)
            if head:
                current = head.group(1)
                if key is None and current == section:
                    return f"{self.name} line {i}: {label}"
                continue
            if key is not None and current == section and re.match(rf"\s*\"?{re.escape(key)}\"?\s*=", line):
                return f"{self.name} line {i}: {label}"
        return f"{self.name} {label}"


def _fail(where: Where, section: str, key: str | None, message: str):
    raise CascjaxError(f"{where(section, key)}: {message}")


def _as_axis(value, nested: bool) -> list:
    """The values of an axis: a list is an axis, except for settings whose one value is a list (``nested``),
    which are axes only when they hold a list (or a string / number among lists)."""
    if nested:
        if isinstance(value, list) and any(isinstance(v, list) for v in value):
            return list(value)
        return [value]
    return list(value) if isinstance(value, list) else [value]


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)  # TOML's true is not a number


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_value(where, section, key, v):
    """One value of a setting, checked; returns it normalised (pools as tuples, budgets as tuples)."""
    bad = lambda msg: _fail(where, section, key, msg)  # noqa: E731
    if key in ("fit_fraction", "train_fraction"):  # [fit] and [estimates]
        if not _is_number(v) or not 0 < v < 1:
            bad(f"must lie strictly between 0 and 1, got {v!r}")
        return float(v)
    if section == "data":
        if key in ("path", "format"):
            if not isinstance(v, str) or not v:
                bad(f"must be a non-empty string, got {v!r}")
            return v
        if key == "allow_pickle":
            if not isinstance(v, bool):
                bad(f"must be true or false, got {v!r}")
            return v
        if key == "models":
            if v == "all":
                return "all"
            if not isinstance(v, list) or len(v) < 2 or not all(isinstance(m, str) and m for m in v):
                bad(f"a pool is \"all\" or a list of at least two model names, got {v!r}")
            if len(set(v)) != len(v):
                bad(f"the pool {v!r} names a model twice")
            return tuple(v)
    if section == "estimates":
        if key == "kind":
            if v not in KINDS:
                bad(f"unknown estimates {v!r}; choose from {', '.join(KINDS)}")
            return v
        if key == "seed":
            if not _is_int(v) or v < 0:
                bad(f"a seed is a non-negative integer, got {v!r}")
            return v
        if key == "post_hoc":
            if v not in ("learned", "perfect"):
                bad(f"unknown post_hoc {v!r}; choose learned or perfect")
            return v
        if key == "features":
            if not isinstance(v, str):
                bad(f"must be a path (a string), got {v!r}")
            return v
    if section == "fit":
        if key in ("split_seed", "grid", "candidates", "bootstrap"):
            low = {"split_seed": 0, "grid": 3, "candidates": 2, "bootstrap": 0}[key]
            if not _is_int(v) or v < low:
                bad(f"must be an integer of at least {low}, got {v!r}")
            return v
        if key == "budgets":
            if _is_int(v):
                if v < 2:
                    bad(f"budgets per hull segment must be at least 2, got {v}")
                return v
            if isinstance(v, list) and v and all(_is_number(b) and 0 < b < float("inf") for b in v):
                return tuple(float(b) for b in v)
            bad(f"budgets is a count per hull segment (an integer) or a list of positive budgets, got {v!r}")
        if key == "lambda":
            if v not in LAMBDA_MODES:
                bad(f"unknown lambda {v!r}; choose {' or '.join(LAMBDA_MODES)}")
            return v
    if section == "prices":
        if key == "model":
            if not isinstance(v, str) or not v:
                bad(f"must be a model name (a non-empty string), got {v!r}")
            return v
        if not _is_number(v) or not 0 < v < float("inf"):
            bad(f"a price multiplier is a finite number > 0, got {v!r}")
        return float(v)
    if section == "latency":
        if not _is_number(v) or not v >= 0:
            bad(f"a latency weight (cost units per unit of latency) is a number >= 0 (inf: latency alone), got {v!r}")
        return float(v)
    if section.startswith("strategies."):
        if key == "max_depth":
            if v is not None and (not _is_int(v) or v < 1):
                bad(f"max_depth must be a positive integer, got {v!r}")
            return v
        if key == "samples":
            if not _is_int(v) or v < 1:
                bad(f"samples must be a positive integer, got {v!r}")
            return v
        if not isinstance(v, bool):
            bad(f"{key} must be true or false, got {v!r}")
        return v
    raise AssertionError((section, key))


def _settings(spec: dict, where: Where, label: str = "") -> tuple[dict, dict]:
    """The checked axes of one (top-level or explicit-cell) table: section → key → [values], and the strategies
    table: name → option → [values]."""
    if not isinstance(spec, dict):
        raise CascjaxError(f"{where.name}{label}: a spec is a table of sections, got {type(spec).__name__}")
    for section in spec:
        if section not in SECTIONS:
            _fail(where, section, None, f"unknown section; a spec has {', '.join(SECTIONS)}")
    axes = {}
    for section in ("data", "estimates", "fit", "prices", "latency"):
        table = spec.get(section, {})
        if not isinstance(table, dict):
            _fail(where, section, None, "must be a table")
        axes[section] = {}
        for key, value in table.items():
            if key not in DEFAULTS[section]:
                _fail(where, section, key, f"unknown key; [{section}] takes {', '.join(DEFAULTS[section])}")
            values = _as_axis(value, nested=key in ("models", "budgets"))
            if not values:
                _fail(where, section, key, "an empty axis (a list with no values)")
            axes[section][key] = [_check_value(where, section, key, v) for v in values]
    strategies = {}
    table = spec.get("strategies", None)
    if table is not None:
        if not isinstance(table, dict) or not table:
            _fail(where, "strategies", None, "must be a table naming at least one strategy")
        for name, options in table.items():
            key = name.replace("-", "_")
            if key not in STRATEGY_OPTIONS:
                _fail(where, "strategies", name, f"unknown strategy; choose from {', '.join(STRATEGY_OPTIONS)}")
            if not isinstance(options, dict):
                _fail(where, "strategies", name, "a strategy's options are a table, e.g. { max_depth = [2, 3] }")
            strategies[key] = {}
            for option, value in options.items():
                if option not in STRATEGY_OPTIONS[key]:
                    takes = ", ".join(STRATEGY_OPTIONS[key]) or "no options"
                    _fail(where, "strategies", name, f"{key} has no option {option!r}; it takes {takes}")
                values = _as_axis(value, nested=False)
                if not values:
                    _fail(where, "strategies", name, f"{option} is an empty axis (a list with no values)")
                strategies[key][option] = [_check_value(where, f"strategies.{name}", option, v) for v in values]
    return axes, strategies


def _product(axes: dict, strategies: dict, where: Where) -> list[dict]:
    data = [dict(zip(axes["data"], v)) for v in itertools.product(*axes["data"].values())]
    est = [dict(zip(axes["estimates"], v)) for v in itertools.product(*axes["estimates"].values())]
    fit = [dict(zip(axes["fit"], v)) for v in itertools.product(*axes["fit"].values())]
    prices = [dict(zip(axes["prices"], v)) for v in itertools.product(*axes["prices"].values())]
    weights = axes["latency"].get("weight", [None])
    if "scale" in axes["prices"] and "model" not in axes["prices"]:
        _fail(where, "prices", "scale", "a price multiplier needs the model it applies to: [prices] model = \"...\"")
    strat = []
    for name, options in strategies.items():
        for values in itertools.product(*options.values()):
            strat.append(dict(strategy=name, **dict(zip(options, values))))
    cells = []
    for d, e, s, f, p, w in itertools.product(data, est, strat, fit, prices, weights):
        kind = e.get("kind", DEFAULTS["estimates"]["kind"])
        cell = {**DEFAULTS["data"], **d, "estimates": kind, "seed": e.get("seed", DEFAULTS["estimates"]["seed"])}
        # The learned estimators' settings only where they are read (blank otherwise: they cannot change results).
        cell.update({k: e.get(k, DEFAULTS["estimates"][k]) if kind == "learned" else None for k in LEARNED_KEYS})
        # Options the strategy does not take stay None (a blank in the table; they cannot change its results).
        cell.update({k: OPTION_DEFAULTS[k] if k in STRATEGY_OPTIONS[s["strategy"]] else None
                     for k in OPTION_DEFAULTS})
        cell.update(s)
        cell.update({**DEFAULTS["fit"], **f})
        cell.update(price_model=p.get("model", ""), price_scale=p.get("scale", 1.0), latency_weight=w)
        cells.append(cell)
    return cells


def expand(spec: dict, *, text: str | None = None, name: str = "spec") -> list[dict]:
    """The cells of a spec, in a fixed order (data, estimates, strategies in the spec's order, fit; the last
    axis varies fastest), each a flat dict of every setting (:data:`AXES` plus ``format``, ``allow_pickle``,
    ``grid``, ``candidates``, ``bootstrap``). Raises :class:`cascjax.CascjaxError` naming the key (and its line,
    with ``text``, the TOML the spec was read from) on a bad spec.

    Example:
      >>> from cascjax._grid import expand
      >>> cells = expand({"estimates": {"kind": ["low", "high"], "seed": [0, 1]},
      ...                 "strategies": {"routing": {}, "cascade": {"max_depth": [2, 3]}}})
      >>> len(cells), cells[0]["estimates"], cells[0]["strategy"], cells[-1]["max_depth"]
      (12, 'low', 'routing', 3)
    """
    where = Where(text, name)
    top, top_strategies = _settings({k: v for k, v in spec.items() if k != "cells"}, where)
    explicit = spec.get("cells")
    if explicit is None:
        if not top_strategies:
            _fail(where, "strategies", None, "no strategy; name at least one, e.g. [strategies] routing = {}")
        cells = _product(top, top_strategies, where)
    else:
        if not isinstance(explicit, list) or not explicit:
            _fail(where, "cells", None, "[[cells]] must list at least one cell")
        cells = []
        for i, extra in enumerate(explicit):
            axes, strategies = _settings(extra, where, f" cell {i + 1}")
            merged = {s: {**top[s], **axes[s]} for s in top}
            chosen = strategies or top_strategies
            if not chosen:
                _fail(where, "cells", None, f"cell {i + 1} names no strategy and the spec has none")
            cells += _product(merged, chosen, where)
    return cells


def read_spec(path) -> tuple[dict, str]:
    """The spec in a TOML file (read with the standard library's ``tomllib``) and its text.

    Example:
      >>> import pathlib, tempfile
      >>> import cascjax
      >>> p = pathlib.Path(tempfile.mkdtemp()) / "spec.toml"
      >>> _ = p.write_text('[estimates]\\nkind = ["low", "high"]\\n[strategies]\\nrouting = {}\\n')
      >>> cascjax.read_grid_spec(p)[0]
      {'estimates': {'kind': ['low', 'high']}, 'strategies': {'routing': {}}}
    """
    import tomllib

    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise CascjaxError(f"cannot read the grid spec {path}: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
        return tomllib.loads(text), text
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise CascjaxError(f"{path} is not a valid TOML file: {e}") from None


def static_key(cell: dict) -> tuple:
    """What decides a cell's compiled programs: every setting but the traced ones (:data:`TRACED`), and whether
    the estimates are learned (state-dependent tables: a group of their own)."""
    return tuple((k, _hashable(v)) for k, v in sorted(cell.items()) if k not in TRACED) + (
        ("learned", cell["estimates"] == "learned"),)


def _hashable(v: Any):
    return tuple(v) if isinstance(v, list) else v
