"""Errors raised by cascjax for bad input."""


class CascjaxError(ValueError):
    """Bad input: a missing column, a NaN, an unknown option, an impossible shape.

    A subclass of :class:`ValueError`, so ``except ValueError`` keeps working. The message names the file,
    column, model or option at fault. The command line turns it into one line on stderr and exit code 2.
    """
