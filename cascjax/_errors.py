"""Errors raised by cascjax for bad input."""


class CascjaxError(ValueError):
    """Bad input: a missing column, a NaN, an unknown option, an impossible shape.

    A subclass of :class:`ValueError`, so ``except ValueError`` keeps working. The message names the file,
    column, model or option at fault. The command line turns it into one line on stderr and exit code 2.

    Example:
      >>> import cascjax
      >>> try:
      ...     cascjax.Dataset.from_arrays([[1, 0]], [[1.0, -1.0]], models=["a", "b"])
      ... except ValueError as error:
      ...     print(type(error).__name__, error)
      CascjaxError cost of model 'b' is negative (-1.0) at query 0 (1 negative costs in all)
    """
