"""The NumPy loop references the kernels are checked against, now public in :mod:`cascjax.testing`."""

from cascjax.testing._reference import *  # noqa: F401,F403
