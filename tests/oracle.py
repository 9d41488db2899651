"""The NumPy loop references the kernels are checked against, now public in :mod:`cascjax.testing`."""

from cascjax.testing._reference import *  # noqa: F401,F403
from cascjax.testing._reference_routing import *  # noqa: F401,F403


def band_grid(breaks, dtype, rtol):
    """λ at which a tie band matters, for exact paths with breakpoints ``breaks`` [B] (ascending): each
    breakpoint b, the edges of path_at's band around it (λ·(1 ± r) = b) and one ulp either side of all of them,
    the midpoints, 0 and one λ beyond; in ``dtype``, with r ``tie_rtol``'s value. Subnormal λ are left out: XLA
    flushes them to zero, NumPy's path_at does not."""
    import numpy as np

    from cascjax._decide import tie_rtol

    r = tie_rtol(dtype, rtol)
    edges = np.concatenate([breaks, breaks / dtype(1 + r), breaks / dtype(1 - r)]).astype(dtype)
    lam = np.concatenate([edges, np.nextafter(edges, dtype(np.inf)), np.nextafter(edges, dtype(0)),
                          (breaks[1:] + breaks[:-1]) / 2, [0.0, 2 * np.max(breaks, initial=0) + 1]]).astype(dtype)
    return np.unique(lam[np.isfinite(lam) & ((lam == 0) | (lam >= np.finfo(dtype).tiny))])
