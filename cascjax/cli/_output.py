"""What the commands write and print: files staged and moved in place together, PNG figures, the progress bar
and JSON on stdout."""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile


def _print_json(document):
    """One JSON document on stdout; NaN and infinities become null (JSON has none)."""
    def clean(x):
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if hasattr(x, "item") and not isinstance(x, (str, bytes)):
            x = x.item()
        if isinstance(x, float) and not math.isfinite(x):
            return None
        return x

    print(json.dumps(clean(document), indent=1, allow_nan=False))


class _Progress:
    """A tqdm bar on stderr (none with --quiet)."""

    def __init__(self, total, quiet, unit):
        self.bar, self.started = None, False
        if not quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False,
                            disable=None)  # None: no bar when stderr is not a terminal (logs, CI)

    def __call__(self, message):
        """A step begins: the previous one is done."""
        if self.bar is not None:
            if self.started:
                self.bar.update(1)
            self.started = True
            self.bar.set_description_str(message[:60])

    def close(self):
        if self.bar is not None:
            if self.started:
                self.bar.update(1)
            self.bar.close()


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_")[:80] or "pool"


def _png(figure, *args, **kwargs):
    """A writer of the PNG of ``cascjax.plot.<figure>(*args, **kwargs)`` (skipped with a warning by
    :func:`_write_files` without matplotlib)."""
    def write(f):
        import matplotlib

        matplotlib.use("Agg")  # files only, never a window
        import matplotlib.pyplot as plt

        from .. import plot

        fig = getattr(plot, figure)(*args, **kwargs)
        fig.savefig(f, format="png")
        plt.close(fig)
    return write


def _write_files(out, files):
    """Stages every file under a temporary name, then moves them all in place (nothing half-written); PNGs
    are skipped with a warning when matplotlib is missing."""
    from .._errors import CascjaxError

    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise CascjaxError(f"--out {out}: cannot create the directory ({e.strerror})") from None
    if not os.access(out, os.W_OK):
        raise CascjaxError(f"--out {out}: the directory is not writable")
    try:
        import matplotlib  # noqa: F401
        has_plot = True
    except ImportError:
        has_plot = False
        print("cascjax: warning: figures not written: cascjax.plot needs matplotlib: pip install 'cascjax[plot]'",
              file=sys.stderr)
    staged = []
    try:
        for name, write in files:
            if name.endswith(".png") and not has_plot:
                continue
            staged.append(_stage(out, name, write))
    except BaseException:
        for tmp, _ in staged:
            os.unlink(tmp)
        raise
    for tmp, final in staged:
        os.replace(tmp, final)
    return [os.path.basename(final) for _, final in staged]


def _stage(out, name, write):
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the user's usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp, os.path.join(out, name)
