"""Compile once: shape buckets, pairwise sums that padding cannot change, a bound on the programs a process
keeps, and the persistent compilation cache.

Users run thousands of problems of different sizes in one process (hypothesis, pool sweeps, ablations). Every
new array shape would be a new XLA program: seconds of compilation and ~30-100 memory maps each, and Linux
stops a process at 65,530 maps. So:

* **Buckets.** The public entry points pad the query axis to :func:`bucket` sizes (powers of two up to 1,024,
  then eight sizes per octave, ≤ 12.5 % padding) and the λ, budget and seed axes to powers of two, with rows of
  weight 0, all in NumPy before the one jitted call (an eager ``jnp`` op on a new shape would itself be a new
  program). One compiled program then serves every N of a bucket. Inputs of :data:`PAD_BYTES` or more per
  array are the exception: a padded copy would cost more memory than a compilation costs time (100,000 queries
  x 1,000 models: 1.7 GB of copies for a sweep's four inputs, against ~1 s of compilation), so they run at
  their own N, unpadded and uncopied (:func:`cascjax._chunks.over_queries` reads their chunks in place).
* **Padding-proof sums.** A sum over queries is a pairwise tree in query order over a power-of-two length
  (:func:`tree_sum`); padding with exact zeros, or cutting the queries into power-of-two chunks, leaves every
  partial sum unchanged, so results are bit-identical to the unpadded problem (and to any chunk size and device
  count). Counts (models answering, models run) are summed as integers.
* **A bound on live programs.** Every backend compilation (or load from the persistent cache) is counted; when
  :func:`checkpoint`, called at the public entry points, finds more than ``max_programs`` since the last clear
  (default 128, ``CASCJAX_MAX_PROGRAMS``) or more memory maps than 40 % of ``vm.max_map_count``, it calls
  ``jax.clear_caches()``, which frees the executables and their memory maps. With the persistent cache a
  program evicted this way is reloaded from disk instead of compiled again.
* **Persistent compilation cache, on by default** (:func:`enable_cache`, on import of cascjax): compiled
  programs are kept in ``$CASCJAX_CACHE_DIR`` or else ``$XDG_CACHE_HOME/cascjax/jax`` (``~/.cache/cascjax/jax``),
  so a second process pays no compilation. ``CASCJAX_CACHE_DIR=off`` disables it; a cache folder the user set
  for JAX (``JAX_COMPILATION_CACHE_DIR`` or ``jax.config``) wins and is left alone.
"""

from __future__ import annotations

import math
import os
import threading

import jax
import jax.numpy as jnp
import numpy as np

from ._errors import CascjaxError

#: Smallest query bucket; below it compilation, not the padding, is the cost.
MIN_QUERIES = 32
#: Up to this many queries the buckets are powers of two; above, eight sizes per octave (≤ 12.5 % padding: a
#: padded query costs as much as a real one, and at this size run time outweighs compile time).
POW2_QUERIES = 1 << 10
#: An input array of at least this many bytes is not padded to a bucket (see the module docstring).
PAD_BYTES = 1 << 27
#: Default bound on the programs compiled (or loaded) since the last ``jax.clear_caches()``.
MAX_PROGRAMS = 128
#: Default bound on the process's memory maps, as a fraction of Linux's ``vm.max_map_count`` (measured on 100
#: queries x 5 models: a routing program holds ~45 maps, the cascade's ~260, cascade routing's ~1,140; 65,530 maps
#: is the default limit, past which LLVM cannot allocate code).
MAPS_FRACTION = 0.4
#: Bytes the persistent cache folder may hold: past it, :func:`trim_cache` deletes the least recently used
#: entries down to :data:`TRIM_TO` of it.
CACHE_BYTES = 2 << 30
TRIM_TO = 0.75

_lock = threading.Lock()
_state = {"programs": 0, "total": 0, "loaded": 0, "clears": 0, "enabled": True, "listening": False, "seen": 0,
          "seconds": 0.0, "cache": None}  # cache: the folder trim_cache holds under its bound, if cascjax set it


# -- buckets --------------------------------------------------------------------------------------------------


def pow2(n: int) -> int:
    """The smallest power of two ≥ n (1 for n ≤ 1)."""
    return 1 << max(int(n) - 1, 0).bit_length()


def bucket(n: int, row_bytes: int = 0) -> int:
    """The padded size of a query axis of ``n``: powers of two from :data:`MIN_QUERIES` up to
    :data:`POW2_QUERIES`, then eight sizes per octave (≤ 12.5 % padding), so any N reuses one of few programs.
    ``n`` itself with buckets off (:func:`buckets`) and for inputs of ``row_bytes`` per query (the largest
    input array's) that reach :data:`PAD_BYTES`: they are not copied to be padded."""
    n = int(n)
    if not _state["enabled"] or n * row_bytes >= PAD_BYTES:
        return n
    if n <= POW2_QUERIES:
        return max(MIN_QUERIES, pow2(n))
    step = 1 << (n.bit_length() - 4)
    return -(-n // step) * step


def small_bucket(n: int) -> int:
    """The padded size of a λ, budget or seed axis: a power of two (1, 2, 4, …); ``n`` with buckets off."""
    return pow2(n) if _state["enabled"] else int(n)


class buckets:
    """Context manager: ``with buckets(False):`` runs the public entry points on unpadded shapes (a new program
    per shape), for tests that compare the two; not thread-safe."""

    def __init__(self, enabled: bool):
        self.enabled = bool(enabled)

    def __enter__(self):
        self.previous = _state["enabled"]
        _state["enabled"] = self.enabled
        return self

    def __exit__(self, *exc):
        _state["enabled"] = self.previous


def pad_rows(tree, size: int, last: bool = False):
    """Pads every [n, ...] leaf of ``tree`` (None leaves stay None) to [size, ...] with copies of its first row
    (``last``: of its last row), in NumPy (no program per shape). Leaves already of ``size`` rows are returned
    as they are."""

    def pad(a):
        if a is None or a.shape[0] == size:
            return a
        a = np.asarray(a)
        row = a[-1:] if last else a[:1]
        return np.concatenate([a, np.broadcast_to(row, (size - a.shape[0],) + a.shape[1:])])

    return jax.tree.map(pad, tree, is_leaf=lambda a: a is None)


def cast(a, dtype):
    """``a`` in ``dtype``: a device array of that dtype as it is, anything else as a NumPy array (an eager
    ``jnp`` cast would compile a program per shape)."""
    if isinstance(a, jax.Array) and a.dtype == dtype:
        return a
    return np.asarray(a, dtype)


def normal(key, shape: tuple, dtype) -> jax.Array:
    """``jax.random.normal(key, shape, dtype)``, the same bits, drawn as one flat axis and reshaped.

    JAX's threefry counts the elements in row-major order whatever the shape, so the flat draw is the same
    numbers; but XLA's CPU compiler takes ~3x as long for the counter arithmetic of a multi-dimensional shape
    (``benchmarks/README.md``, "Compile once"). The draws are the same; what a program computes from them may
    not be: fused differently, later reductions and multiply-adds can round differently (see
    :mod:`cascjax._noise`, which keeps its sums and products apart for that reason).

    Example:
      >>> import jax, numpy as np
      >>> a = normal(jax.random.key(0), (3, 2), np.float32)
      >>> bool((a == jax.random.normal(jax.random.key(0), (3, 2), np.float32)).all())
      True
    """
    return jax.random.normal(key, (math.prod(shape),), dtype).reshape(shape)


def pad_put(tree, size: int):
    """:func:`pad_rows`, each padded leaf put on the device at once (leaf by leaf, so at most one NumPy copy lives
    at a time; a kernel handed NumPy arrays would copy all of them again). Device arrays of ``size`` rows are
    returned as they are. Measured: ``routing_path`` on 50,000 x 1,000 held ~34 KB per query above the data."""

    def one(a):
        if a is None or (isinstance(a, jax.Array) and a.shape[0] == size):
            return a
        return put(pad_rows(a, size))

    return jax.tree.map(one, tree, is_leaf=lambda a: a is None)


def cut(a, rows: int, cols: int | None = None):
    """``a[:rows]`` (and ``[:, :cols]``) of a kernel output, sliced in NumPy and put back on the device (a
    ``jnp`` slice, or ``jnp.asarray``, would compile a program per shape). ``None`` stays None; an unpadded array is returned as
    it is."""
    if a is None:
        return None
    if a.shape[0] == rows and (cols is None or a.shape[1] == cols):
        return a
    out = np.asarray(a)[:rows]
    if cols is not None:
        out = out[:, :cols]
    return put(out)


def put(a, dtype=None) -> jax.Array:
    """A host array on the default device: ``jax.device_put`` of the NumPy array (``jnp.asarray`` would compile
    a small program per shape and dtype in this JAX)."""
    return jax.device_put(np.asarray(a, dtype))


# -- sums that padding cannot change ----------------------------------------------------------------------------


def tree_sum(x: jax.Array, axis: int = 0) -> jax.Array:
    """The sum over ``axis`` as a pairwise tree in index order over the next power-of-two length.

    Zeros appended to ``x`` (padding of weight 0) and power-of-two chunking do not change any partial sum, so
    the result is the same bits for every padded length and chunk size; XLA's own reductions regroup with the
    length (measured: 207 of 456 padded float sums differed in the last bit).
    """
    x = jnp.moveaxis(x, axis, 0)
    n = x.shape[0]
    if n == 0:
        return jnp.zeros(x.shape[1:], x.dtype)
    p = pow2(n)
    if p != n:
        x = jnp.concatenate([x, jnp.zeros((p - n,) + x.shape[1:], x.dtype)])
    while x.shape[0] > 1:
        x = x.reshape((x.shape[0] // 2, 2) + x.shape[1:])
        x = x[:, 0] + x[:, 1]
    return x[0]


def ordered_cumsum(x: jax.Array, axis: int = -1) -> jax.Array:
    """Running sums along a short static axis (models), added strictly left to right: XLA's own cumsum and
    sum regroup with the shape of the whole array (measured: realised costs of cascade routing differed in the
    last bit between chunks of 64 and 128 queries), this does not."""
    x = jnp.moveaxis(x, axis, 0)
    parts = [x[0]]
    for i in range(1, x.shape[0]):
        parts.append(parts[-1] + x[i])
    return jnp.moveaxis(jnp.stack(parts), 0, axis)


def ordered_sum(x: jax.Array, axis: int = -1) -> jax.Array:
    """The sum along a short static axis, added strictly left to right (see :func:`ordered_cumsum`)."""
    x = jnp.moveaxis(x, axis, 0)
    total = x[0]
    for i in range(1, x.shape[0]):
        total = total + x[i]
    return total


def threads() -> int:
    """Sweeps a caller may run at once (the grid's groups, a pool search's blocks): 2 on a CPU backend with more
    than one core (a sweep keeps about one core busy; measured on the example, 2 cores: routing 14–17 → 11 ms a
    sweep, the cascade 15–16 → 14), else 1 (an accelerator runs one program at a time, and two would double the
    memory held)."""
    return 2 if jax.default_backend() == "cpu" and (os.cpu_count() or 1) > 1 else 1


def batched(f, axes, on: bool):
    """``f``, or with ``on`` ``f`` vmapped over a leading scenario axis of the arguments marked 0 in ``axes``
    (None: shared by every scenario); static options are bound to ``f`` first (``functools.partial``)."""
    return jax.vmap(f, in_axes=axes) if on else f


def real(weight: jax.Array) -> jax.Array:
    """Per query [n]: whether it is real — ``weight`` [n] > 0, or, for group weights [n, G] (see
    :func:`cascjax._chunks.over_queries`), > 0 in some group."""
    return weight > 0 if weight.ndim == 1 else jnp.any(weight > 0, axis=1)


def _real_rows(weight: jax.Array, x: jax.Array) -> jax.Array:
    """``x`` [n, ...] with the padding rows (not :func:`real`) set to exact +0."""
    return jnp.where(real(weight).reshape((-1,) + (1,) * (x.ndim - 1)), x, jnp.zeros((), x.dtype))


def masked_sum(weight: jax.Array, x: jax.Array) -> jax.Array:
    """Σ_n x[n] over the real queries (``weight`` [n] > 0), as a :func:`tree_sum` over axis 0; padding rows
    contribute exact +0 (never 0·x, which is −0 or NaN for some x). With group weights [n, G] (0/1: which
    queries each of G groups holds), one sum per group, the group axis last: [..., G], as a matrix product (G
    pairwise trees were slower: the cascade on the example at 66 λ and 8 groups took 108 ms a call against 60 ms
    for the plain sweep, ad hoc; a product's order depends on the chunk size, in the last bits)."""
    x = _real_rows(weight, x)
    if weight.ndim == 1:
        return tree_sum(x)
    return jnp.tensordot(x, (weight > 0).astype(x.dtype), axes=(0, 0))


def real_sum(weight: jax.Array, x: jax.Array) -> jax.Array:
    """Σ_n x[n] of integers over the real queries (exact in any order). Group weights count every real query
    once (counts per group are not needed, and would cost as much as the decisions)."""
    return jnp.sum(_real_rows(weight, x), axis=0)


def count(weight: jax.Array, index: jax.Array, size: int, dtype) -> jax.Array:
    """How many real queries (``weight`` > 0) have each value 0..size−1 of ``index`` [n], counted as int32 (exact
    and independent of the order of addition), returned in ``dtype``. With group weights (sums per group, see
    :func:`cascjax._chunks.over_queries`) no counts are needed and none are made: zeros (a scatter per λ saved)."""
    if weight.ndim == 2:
        return jnp.zeros(size, dtype)
    hits = jnp.zeros(size, jnp.int32).at[index].add((weight > 0).astype(jnp.int32))
    return hits.astype(dtype)


# -- a bound on live programs -----------------------------------------------------------------------------------


def _on_compile(event: str, *args, **kwargs) -> None:
    # Every executable JAX builds reports a backend-compile duration, whether XLA compiled it or it came from
    # the persistent cache; the latter also reports a cache hit.
    if event == "/jax/core/compile/backend_compile_duration":
        with _lock:
            _state["programs"] += 1
            _state["total"] += 1
            _state["seconds"] += float(args[0]) if args else 0.0
    elif event == "/jax/compilation_cache/cache_hits":
        with _lock:
            _state["loaded"] += 1


def _listen() -> None:
    if _state["listening"]:
        return
    _state["listening"] = True
    # Backend compilations report a duration; loads from the persistent cache an event.
    jax.monitoring.register_event_duration_secs_listener(_on_compile)
    jax.monitoring.register_event_listener(_on_compile)


def max_programs() -> int:
    """The bound: ``CASCJAX_MAX_PROGRAMS`` (a positive integer) or :data:`MAX_PROGRAMS`."""
    text = os.environ.get("CASCJAX_MAX_PROGRAMS")
    if text is None:
        return MAX_PROGRAMS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise CascjaxError(f"CASCJAX_MAX_PROGRAMS must be a positive integer, got {text!r}")
    return value


def max_maps() -> int | None:
    """The bound on memory maps: :data:`MAPS_FRACTION` of ``/proc/sys/vm/max_map_count`` (None where there is
    no such file: not Linux)."""
    try:
        with open("/proc/sys/vm/max_map_count") as f:
            return int(MAPS_FRACTION * int(f.read()))
    except (OSError, ValueError):
        return None


def memory_maps() -> int | None:
    """The process's memory maps (lines of ``/proc/self/maps``), or None where there is no such file."""
    try:
        with open("/proc/self/maps", "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return None


def checkpoint() -> None:
    """Called by the public entry points. If programs were compiled (or loaded) since the last call, and there
    are now more than ``max_programs()`` since the last clear or the process holds more memory maps than
    :func:`max_maps`, ``jax.clear_caches()`` frees every compiled program (and its maps). Calls that compiled
    nothing cost nothing."""
    if _state["programs"] == _state["seen"]:
        return
    limit = max_maps()
    if _state["programs"] > max_programs() or (limit is not None and (memory_maps() or 0) > limit):
        jax.clear_caches()
        with _lock:
            _state["programs"] = 0
            _state["clears"] += 1
        if _state["cache"]:  # a long run writes to the cache folder too: hold it under its bound
            trim_cache(_state["cache"])
    _state["seen"] = _state["programs"]


def programs() -> dict:
    """Counters of this process: ``live`` (programs compiled or loaded since the last clear), ``total`` (all
    since the start), of which ``compiled`` by XLA and ``loaded`` from the persistent cache, ``clears``, and
    ``seconds``: the backend compile (or cache load) time of all of them."""
    return {"live": _state["programs"], "total": _state["total"], "compiled": _state["total"] - _state["loaded"],
            "loaded": _state["loaded"], "clears": _state["clears"], "seconds": _state["seconds"]}


# -- the persistent compilation cache ---------------------------------------------------------------------------


def default_cache_dir() -> str:
    """``$XDG_CACHE_HOME/cascjax/jax``, else ``~/.cache/cascjax/jax``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "cascjax", "jax")


def enable_cache() -> str | None:
    """Turns JAX's persistent compilation cache on in cascjax's folder, unless the user chose otherwise.

    ``CASCJAX_CACHE_DIR=off`` (or ``0``, ``none``, empty): nothing is changed. A folder already set for JAX
    (``JAX_COMPILATION_CACHE_DIR``, or ``jax.config.update("jax_compilation_cache_dir", ...)`` before importing
    cascjax) wins. Otherwise the folder is ``CASCJAX_CACHE_DIR`` or :func:`default_cache_dir` (created, only
    the user may write it: JAX trusts its cache), every program is kept whatever its compile time (unless
    ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` is set), and the folder is held under :data:`CACHE_BYTES` by
    :func:`trim_cache` (unless ``JAX_COMPILATION_CACHE_MAX_SIZE`` is set: JAX's own bound then). Returns the
    folder in use, or None.
    """
    _listen()
    choice = os.environ.get("CASCJAX_CACHE_DIR")
    if choice is not None and choice.strip().lower() in ("", "off", "0", "none", "false", "no"):
        return None
    current = jax.config.jax_compilation_cache_dir
    if current or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return current or os.environ.get("JAX_COMPILATION_CACHE_DIR")
    path = os.path.abspath(os.path.expanduser(choice)) if choice else default_cache_dir()
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError:  # a read-only home: run without the cache rather than fail
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    if "JAX_COMPILATION_CACHE_MAX_SIZE" not in os.environ:
        _state["cache"] = path
        trim_cache(path)
    return path


def trim_cache(path: str, limit: int | None = None) -> int:
    """Holds the cache folder ``path`` under ``limit`` bytes (default :data:`CACHE_BYTES`): if its entries take
    more, the least recently used (by access, else modification time) are deleted until they take at most
    :data:`TRIM_TO` of it. Returns the bytes deleted. Called when cascjax is imported and at every clear of the
    live programs (:func:`checkpoint`).

    JAX can bound the folder itself (``jax_compilation_cache_max_size``), but then it lists the folder and reads
    every entry's access stamp at each write, and writes a stamp at each read, under a file lock. Measured on a
    copy of a 7,323-entry folder (what the test suite leaves), four eager cascade checks (793 programs compiled,
    618 loaded): 190 s with JAX's bound, 39.5 s with this one. This scan costs one ``stat`` per entry, once per
    process and per clear. Entries another process deletes meanwhile are skipped.
    """
    limit = CACHE_BYTES if limit is None else int(limit)
    entries, total = [], 0
    try:
        with os.scandir(path) as scan:
            for entry in scan:
                if not entry.name.endswith("-cache"):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                entries.append((max(st.st_atime, st.st_mtime), st.st_size, entry.path))
                total += st.st_size
    except OSError:
        return 0
    if total <= limit:
        return 0
    freed = 0
    for _, size, file in sorted(entries):
        if total - freed <= TRIM_TO * limit:
            break
        for name in (file, file[:-len("-cache")] + "-atime"):  # and the stamp an earlier JAX bound wrote
            try:
                os.remove(name)
            except OSError:
                pass
        freed += size
    return freed
