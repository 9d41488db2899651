"""A grid's output folder: cell keys, one part file per finished group, the results table rebuilt from the parts.

Nothing in the folder is ever half-written: every file is written to a temporary name beside it and renamed
over the old one (an atomic ``os.replace``), so a run killed at any moment (SIGKILL included) leaves whole
files; it loses at most the group in flight. A cell's key hashes the data's content, the cell's settings and the
cascjax version, so a rerun computes only the cells whose key has no row yet.

Layout of ``DIR``: ``cells.csv`` (every cell of the spec: key, group, axis columns), ``spec.json`` (the spec as
run), ``parts/<group>.csv`` (the rows of the cells of one finished group), ``results.csv`` (and
``results.parquet`` when pyarrow is installed), ``grid.png``. A changed spec may run in the same folder: cells.csv
is rewritten, the parts of cells it no longer lists stay (a cache) but leave the table.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import tempfile

import numpy as np
import pandas as pd


#: Columns of the results table that measure time: they differ between runs of the same cells.
TIMING = ("us_per_decision", "compile_s", "run_s")


def cell_key(cell: dict, data_hash: str, version: str) -> str:
    """The key of a cell: a hash of the data's content, the cell's settings (the data's path left out: content
    decides) and the cascjax version."""
    settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(cell.items()) if k != "path"}
    if not settings.get("price_model"):  # no price scenario: the key of a cell before [prices] existed
        settings.pop("price_model", None), settings.pop("price_scale", None)
    if settings.get("latency_weight", None) is None:  # no second cost: the key of a cell before [latency]
        settings.pop("latency_weight", None)
    text = json.dumps({"data": data_hash, "cell": settings, "version": version}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def group_id(keys) -> str:
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]


def write_atomic(path: str, write) -> None:
    """``write(temporary path)``, then an atomic rename onto ``path`` (no reader ever sees half a file)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_csv(frame: pd.DataFrame, path: str) -> None:
    # Floats as repr (shortest round-trip), so a table read back equals the numbers computed, bit for bit.
    write_atomic(path, lambda tmp: frame.to_csv(tmp, index=False))


def read_csv(path: str) -> pd.DataFrame:
    # pandas' default float parser reads the shortest round-trip repr back to the same bits (tested).
    return pd.read_csv(path, dtype={"key": str, "group": str})


def parts(out: str) -> pd.DataFrame | None:
    frames = [read_csv(p) for p in sorted(glob.glob(os.path.join(out, "parts", "*.csv")))]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else None


def assemble(cells: pd.DataFrame, rows: pd.DataFrame | None) -> pd.DataFrame:
    """The results table: the rows of every finished cell, in the spec's cell order, then by budget."""
    if rows is None or not len(rows):
        return pd.DataFrame(columns=list(cells.columns))
    order = pd.Series(np.arange(len(cells)), index=cells["key"].astype(str))
    rows = rows.drop_duplicates(subset=["key", "budget"], keep="last")
    rows = rows[rows["key"].astype(str).isin(order.index)]
    rank = order.loc[rows["key"].astype(str)].to_numpy()
    rows = rows.assign(_rank=rank).sort_values(["_rank", "budget"], kind="stable").drop(columns="_rank")
    return rows.reset_index(drop=True)


def write_results(out: str, table: pd.DataFrame) -> list[str]:
    """``results.csv`` always, ``results.parquet`` when pyarrow is installed; returns the names written."""
    write_csv(table, os.path.join(out, "results.csv"))
    names = ["results.csv"]
    import importlib.util

    if importlib.util.find_spec("pyarrow") is None:
        return names
    write_atomic(os.path.join(out, "results.parquet"), lambda tmp: table.to_parquet(tmp, index=False))
    return names + ["results.parquet"]
