"""Every public function and class documents itself with a runnable example.

Public: the names of ``cascjax`` (its ``__all__`` if it defines one, else its public attributes that are
functions or classes defined in the cascjax package), of ``cascjax.testing`` (and its ``report`` module),
``cascjax.protocol`` and ``cascjax.plot``; for a class also its public methods and properties defined in
cascjax. Constants (ints, tuples, dicts) are exempt. A NamedTuple whose only members are its fields is
documented by the example on the class (its field accessors are not functions, so they are not listed).

Each docstring must exist and hold an example (``>>>``) that ``pytest --doctest-modules`` collects, i.e. that
:class:`doctest.DocTestFinder` finds in the module defining the object. The examples themselves run in the
doctest run (``pytest cascjax``); the few skipped there for time (``# doctest: +SKIP``) run here.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import io
import sys

import pytest

MODULES = ("cascjax", "cascjax.testing", "cascjax.testing.report", "cascjax.protocol", "cascjax.plot")
#: Examples skipped in the doctest run (``# doctest: +SKIP``) because they compile cascade-routing kernels no
#: other example shares (~4 s for check_prefix, ~10 s each for ablate and variants); they run here instead.
SLOW_EXAMPLES = ("cascjax.testing.check_prefix", "cascjax.protocol.ablate", "cascjax.protocol.variants")


def _from_cascjax(obj) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return module == "cascjax" or module.startswith("cascjax.")


def _public(module) -> list[tuple[str, object]]:
    """(name, object) of the module's public functions and classes defined in cascjax."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = sorted(n for n in vars(module) if not n.startswith("_"))
    out = []
    for name in names:
        obj = getattr(module, name)
        if inspect.ismodule(obj) or not (inspect.isclass(obj) or callable(obj)) or not _from_cascjax(obj):
            continue  # submodules, constants, objects of other libraries
        out.append((name, obj))
    return out


def _members(cls) -> list[tuple[str, object]]:
    """(name, function or property) of the public methods and properties the class defines itself."""
    out = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, (classmethod, staticmethod)):
            value = value.__func__
        if isinstance(value, property) or (inspect.isfunction(value) and _from_cascjax(value)):
            out.append((name, value))
    return out


def _name_in(module, obj) -> str:
    """The name the doctest finder gives ``obj``: its attribute name in its module (a decorated function's
    ``__qualname__`` may be the decorator's, e.g. hypothesis's ``accept.<locals>.datasets``)."""
    for key, value in vars(module).items():
        if value is obj:
            return key
    return obj.__qualname__


def _documented() -> list[tuple[str, object, str, str]]:
    """(public name, object, its defining module, its doctest's name there), each object once."""
    seen, out = set(), []
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name, obj in _public(module):
            if id(obj) in seen:  # re-exported elsewhere (e.g. cascjax.Dataset in cascjax.plot)
                continue
            seen.add(id(obj))
            home = f"{obj.__module__}.{_name_in(sys.modules[obj.__module__], obj)}"
            out.append((f"{module_name}.{name}", obj, obj.__module__, home))
            if inspect.isclass(obj):
                out += [(f"{module_name}.{name}.{member}", value, obj.__module__, f"{home}.{member}")
                        for member, value in _members(obj)]
    return out


DOCUMENTED = _documented()


@pytest.fixture(scope="module")
def collected():
    """Names of the doctests (with examples) the doctest run collects, per defining module."""
    cache = {}

    def names(module_name: str) -> set[str]:
        if module_name not in cache:
            tests = doctest.DocTestFinder().find(sys.modules[module_name])
            cache[module_name] = {t.name for t in tests if t.examples}
        return cache[module_name]

    return names


def test_the_public_surface_is_found():
    names = {name for name, *_ in DOCUMENTED}
    for expected in ("cascjax.sweep", "cascjax.Dataset.split_indices", "cascjax.Dataset.n_queries",
                     "cascjax.covariance_factors", "cascjax.testing.World.validate", "cascjax.testing.datasets",
                     "cascjax.testing.report.write", "cascjax.protocol.Cell", "cascjax.plot.frontier"):
        assert expected in names
    constants = ("TIE_ULPS", "NOISE_LEVELS", "STRATEGIES", "PROPERTIES", "CHECKED", "PAPER_POOLS")
    assert not any(name.split(".")[-1] in constants for name in names)


@pytest.mark.parametrize("name, obj, module_name, home", DOCUMENTED, ids=[name for name, *_ in DOCUMENTED])
def test_docstring_has_an_example(name, obj, module_name, home, collected):
    doc = (obj.fget if isinstance(obj, property) else obj).__doc__
    assert doc and doc.strip(), f"{name} has no docstring"
    assert ">>>" in doc, f"{name} has no example (an Example: section with >>> lines) in its docstring"
    assert home in collected(module_name), f"{name}'s example is not collected (as {home}) by the doctest run"


def _run_without_skip(name: str) -> None:
    module_name, attr = name.rsplit(".", 1)
    obj = getattr(importlib.import_module(module_name), attr)
    tests = doctest.DocTestFinder(recurse=False).find(obj, name, module=sys.modules[obj.__module__], globs={})
    assert tests and tests[0].examples, f"{name} has no example"
    for test in tests:
        for example in test.examples:
            example.options.pop(doctest.SKIP, None)
        out = io.StringIO()
        result = doctest.DocTestRunner(verbose=False).run(test, out=out.write)
        assert result.failed == 0, out.getvalue()


@pytest.mark.parametrize("name", SLOW_EXAMPLES)
def test_slow_example_runs(name):
    _run_without_skip(name)
