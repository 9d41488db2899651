"""Prices for data without costs: a per-model table of $ per input and output token (``--prices``), read from
JSON or CSV, and applied to a frame's token counts (or to the length of its text when it has no counts)."""

from __future__ import annotations

import os
import warnings

import numpy as np

from .._errors import CascjaxError
from ._wide import _numeric_column


def read_prices(prices, source="prices") -> dict:
    """model -> (USD per million input tokens, USD per million output tokens)."""
    import pandas as pd

    if isinstance(prices, dict):
        table = {}
        for model, value in prices.items():
            pair = (value, 0.0) if np.ndim(value) == 0 else tuple(value)
            if len(pair) != 2:
                raise CascjaxError(f"prices: model {model!r} needs (input, output) prices per million tokens")
            table[str(model)] = (float(pair[0]), float(pair[1]))
        frame = pd.DataFrame([(m, i, o) for m, (i, o) in table.items()], columns=["model", "input", "output"])
    elif isinstance(prices, pd.DataFrame):
        frame = prices
    else:
        source = os.fspath(prices)
        if not os.path.isfile(source):
            raise CascjaxError(f"{source}: no such price table")
        try:
            frame = pd.read_csv(source)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            raise CascjaxError(f"{source}: cannot be read as a CSV price table ({type(e).__name__})") from None
    frame = frame.rename(columns=lambda c: str(c).strip().lower())
    missing = [c for c in ("model", "input", "output") if c not in frame.columns]
    if missing:
        raise CascjaxError(f"{source}: the price table needs columns model, input, output (USD per million "
                           f"tokens); missing: {', '.join(missing)}")
    table = {}
    for row in frame.itertuples(index=False):
        model = str(row.model)
        try:
            pin, pout = float(row.input), float(row.output)
        except (TypeError, ValueError):
            raise CascjaxError(f"{source}: model {model!r} has a non-numeric price") from None
        if not (np.isfinite(pin) and np.isfinite(pout)) or pin < 0 or pout < 0:
            raise CascjaxError(f"{source}: model {model!r} has a negative or missing price ({pin}, {pout})")
        if model in table:
            raise CascjaxError(f"{source}: model {model!r} appears twice in the price table")
        table[model] = (pin, pout)
    return table


def _tokens_from_text(values) -> np.ndarray:
    import pandas as pd

    text = pd.Series(values).astype("string")
    return np.ceil(text.str.len().to_numpy(dtype=np.float64, na_value=np.nan) / 4.0)


def apply_prices(df, prices, source, models=None):
    """Adds ``<model>|total_cost`` = (input tokens × input price + output tokens × output price) / 1e6 for
    ``models`` (default: the models the frame's columns name; a RouteLLM frame's caller names them)."""
    table = read_prices(prices)
    columns = [str(c) for c in df.columns]
    if models is not None:
        models = list(models)
    else:
        suffixes = ("|total_cost", "|input_tokens", "|output_tokens", "|model_response")
        models = []
        for c in columns:
            for s in suffixes:
                if c.endswith(s) and c[: -len(s)] in columns and c[: -len(s)] not in models:
                    models.append(c[: -len(s)])
    if not models:
        raise CascjaxError(f"{source}: no models found to price")
    absent = [m for m in models if m not in table]
    if absent:
        raise CascjaxError(f"{source}: the price table has no row for model {absent[0]!r} (it has: "
                           f"{', '.join(sorted(table))})")
    replaced = [m for m in models if f"{m}|total_cost" in columns]
    if replaced:
        warnings.warn(f"{source}: the price table replaces the costs in the data for {len(replaced)} models "
                      f"(e.g. {replaced[0]!r})", stacklevel=4)
    df = df.copy()
    shared_in = _numeric_column(df, "input_tokens", source) if "input_tokens" in columns else None
    prompt_in = _tokens_from_text(df["prompt"]) if "prompt" in columns else None
    for m in models:
        if f"{m}|input_tokens" in columns:
            tin = _numeric_column(df, f"{m}|input_tokens", source)
        elif shared_in is not None:
            tin = shared_in
        elif prompt_in is not None:
            tin = prompt_in
        else:
            raise CascjaxError(f"{source}: no input token counts for model {m!r}: give a column "
                               f"'{m}|input_tokens' (or input_tokens), or a 'prompt' column to count from")
        if f"{m}|output_tokens" in columns:
            tout = _numeric_column(df, f"{m}|output_tokens", source)
        elif f"{m}|model_response" in columns:
            tout = _tokens_from_text(df[f"{m}|model_response"])
        elif table[m][1] == 0.0:
            tout = np.zeros(len(df))
        else:
            raise CascjaxError(f"{source}: no output token counts for model {m!r}: give a column "
                               f"'{m}|output_tokens', or its responses ('{m}|model_response' / '{m}_response')")
        for name, t in (("input", tin), ("output", tout)):
            if (t < 0).any():
                raise CascjaxError(f"{source}: model {m!r} has negative {name} token counts")
        df[f"{m}|total_cost"] = (tin * table[m][0] + tout * table[m][1]) / 1e6
    return df

