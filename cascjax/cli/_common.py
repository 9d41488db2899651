"""Parsing shared by the commands: comma-separated lists and numbers, the dataset named by DATA and the
options, and the validated options of reproduce and ablate."""

from __future__ import annotations

CLI_STRATEGIES = {"routing": "routing", "cascade": "cascade", "cascade-routing": "cascade_routing",
                  "threshold-cascade": "threshold_cascade"}


def _parse_list(text: str, what: str) -> list[str]:
    from .._errors import CascjaxError

    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise CascjaxError(f"{what} is empty")
    return items


def _parse_numbers(text, what):
    import numpy as np

    from .._errors import CascjaxError

    try:
        return np.array([float(v) for v in _parse_list(text, what)])
    except ValueError:
        raise CascjaxError(f"{what} must be comma-separated numbers, got {text!r}") from None


def _load(args):
    import cascjax

    path = args.data if args.data is not None else cascjax.example_path()
    models = _parse_list(args.models, "--models") if args.models else None
    return cascjax.read(path, models=models, format=args.format, prices=args.prices, split=args.split,
                        allow_pickle=args.allow_pickle,
                        dropna=args.dropna), path


def _sweep_args(args) -> list[str]:
    """The strategies of ``--strategy`` and the checked ``--lambdas`` of frontier and whatif."""
    from .._errors import CascjaxError

    strategies = _parse_list(args.strategy, "--strategy")
    for s in strategies:
        if s not in CLI_STRATEGIES:
            raise CascjaxError(f"unknown strategy {s!r} in --strategy; available: {', '.join(CLI_STRATEGIES)}")
    if args.lambdas < 2:
        raise CascjaxError(f"--lambdas must be at least 2, got {args.lambdas}")
    return strategies


def _strategy_options(args, name: str) -> dict:
    """The sweep options of the CLI strategy ``name`` from ``--max-depth`` and ``--samples``."""
    options = {} if name == "routing" else dict(max_depth=args.max_depth)
    if name in ("cascade", "cascade-routing"):
        options["samples"] = args.samples
    return options


def _estimates(args, ds, path):
    """The estimates ``--estimates`` names (perfect, the noise model at a level with ``--seed``, or DATA's own
    columns), after the pool's ``--max-depth`` and ``--samples`` are checked."""
    import jax

    import cascjax
    from .._errors import CascjaxError

    if args.max_depth is not None and not 1 <= args.max_depth <= ds.n_models:
        raise CascjaxError(f"--max-depth must be in 1..{ds.n_models} (the number of models), got {args.max_depth}")
    if args.samples < 1:
        raise CascjaxError(f"--samples must be at least 1, got {args.samples}")
    if args.estimates == "perfect":
        return cascjax.perfect_estimates(ds)
    if args.estimates == "columns":
        return cascjax.read_estimates(path, ds, format=args.format, prices=args.prices, split=args.split,
                                      allow_pickle=args.allow_pickle, dropna=args.dropna)
    return cascjax.noisy_estimates(ds, jax.random.key(args.seed), args.estimates)


def _protocol_args(args):
    """Validated options shared by reproduce and ablate."""
    from .._errors import CascjaxError

    if not 0 < args.fit_fraction < 1:
        raise CascjaxError(f"--fit-fraction must lie strictly between 0 and 1, got {args.fit_fraction}")
    if args.max_depth < 1:
        raise CascjaxError(f"--max-depth must be at least 1, got {args.max_depth}")
    if args.samples < 1:
        raise CascjaxError(f"--samples must be at least 1, got {args.samples}")
    if args.candidates < 2:
        raise CascjaxError(f"--candidates must be at least 2, got {args.candidates}")
    per_step = () if args.per_step.strip() == "none" else tuple(_parse_list(args.per_step, "--per-step"))
    for m in per_step:
        if m not in ("search", "gradient"):
            raise CascjaxError(f"unknown method {m!r} in --per-step; choose search, gradient or none")
    return dict(fit_fraction=args.fit_fraction, split_seed=args.split_seed, max_depth=args.max_depth,
                samples=args.samples, per_step=per_step, candidates=args.candidates)
