"""The query axis in chunks and over devices: bounded memory, and every visible device used.

Every kernel is a function of one chunk of queries that returns (a) sums over the chunk's queries (per λ)
and (b) optional per-query outputs. :func:`over_queries` runs it on all queries:

* **Chunks** bound memory: the queries (already padded to their bucket by the caller, see
  :mod:`cascjax._compile`) are padded again (copies of row 0, weight 0) to whole chunks of ``chunk`` queries, a
  power of two, and ``lax.map`` runs one chunk at a time, so peak memory is that of one chunk whatever N. On
  one device a query axis that is not a whole number of chunks is not copied to be padded: each chunk is read
  in place, its rows past the end taken from the start again with weight 0.
* **Devices**: with a mesh of several devices the chunks are sharded over them with ``jax.shard_map`` (one
  mesh axis ``"q"``, the query axis, laid out with ``NamedSharding``): device d runs chunks d·k .. (d+1)·k − 1.
  The per-chunk sums are gathered (replicated by XLA) and added as a pairwise tree in chunk order; with chunks
  of a power-of-two size that is the same tree as over all queries at once, so the totals are the same bits for
  every chunk size and device count (padding adds exact zeros).

A plan (:class:`Plan`) is static: the chunk size and the mesh are part of the compiled program.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ._compile import pow2, tree_sum
from ._errors import CascjaxError

#: The mesh axis the query axis is sharded along.
AXIS = "q"
#: Bytes one chunk of a sweep may hold by default (``memory=``).
MEMORY_BUDGET = 1 << 30


class Plan(NamedTuple):
    """How the query axis is processed (static: hashable, part of the jit cache key).

    chunk: queries per chunk. mesh: ``None`` (one device) or a 1-d :class:`jax.sharding.Mesh` over axis
    ``"q"``.
    """

    chunk: int
    mesh: Mesh | None = None

    @property
    def n_devices(self) -> int:
        return 1 if self.mesh is None else self.mesh.size


def mesh_for(devices=None) -> Mesh | None:
    """The mesh the query axis is sharded over: every visible device by default (``jax.devices()``; after
    ``jax.distributed.initialize`` that is every process's devices), ``None`` when there is only one.

    Args:
      devices: ``None`` (all), an int (the first that many), or a sequence of jax devices.
    """
    all_devices = jax.devices()
    if devices is None:
        chosen = all_devices
    elif isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        if not 1 <= devices <= len(all_devices):
            raise CascjaxError(f"devices must be between 1 and the {len(all_devices)} visible devices, got {devices}")
        chosen = all_devices[:int(devices)]
    elif isinstance(devices, Sequence) and len(devices) > 0 and all(isinstance(d, jax.Device) for d in devices):
        chosen = list(devices)
    else:
        raise CascjaxError(f"devices must be None, a positive int or a sequence of jax devices, got {devices!r}")
    if len(chosen) == 1:
        return None
    return Mesh(np.array(chosen), (AXIS,))


def plan(n_queries: int, chunk_size, memory, per_query_bytes: float, fixed_bytes: float = 0.0,
         devices=None) -> Plan:
    """Validates ``chunk_size``/``memory`` and returns the plan: ``chunk_size`` queries per chunk when given,
    else as many as fit in ``memory`` bytes (default :data:`MEMORY_BUDGET`) at ``per_query_bytes`` each
    after ``fixed_bytes`` — but in at least half of ``memory`` when the fixed part takes more — (or a half or a
    quarter of that, whichever pads the queries least). Several chunks
    have a power-of-two size (``chunk_size`` rounded up, a memory-derived size rounded down), so that the
    pairwise sums of :func:`cascjax._compile.tree_sum` — and so the results, to the bit — do not depend on it;
    on one device, queries that fit in one chunk are one chunk of exactly ``n_queries`` (no padding work: the
    pairwise sum pads with zeros only itself)."""
    mesh = mesh_for(devices)
    n_dev = 1 if mesh is None else mesh.size
    share = pow2(-(-n_queries // n_dev))
    if chunk_size is not None:
        if not (isinstance(chunk_size, (int, np.integer)) and not isinstance(chunk_size, bool) and chunk_size >= 1):
            raise CascjaxError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        chunk = pow2(chunk_size)
    else:
        if memory is None:
            memory = MEMORY_BUDGET
        if not (isinstance(memory, (int, float, np.integer, np.floating)) and not isinstance(memory, bool)
                and np.isfinite(memory) and memory > 0):
            raise CascjaxError(f"memory must be a positive number of bytes, got {memory!r}")
        # What the queries may hold: the budget after the fixed part, but at least half the budget — a fixed part
        # over budget (cascade routing's candidate tables on 24 models at depth 5: 2.7 GB) would otherwise
        # leave chunks of one query, each paying the fixed work again (200 queries: > 300 s, in chunks of 64
        # 3.4 s).
        room = max(memory - fixed_bytes, memory / 2)
        fits = int(max(1, room // max(per_query_bytes, 1.0)))
        chunk = 1 << (fits.bit_length() - 1)
        # Of the largest chunk that fits and its half and quarter, the one that pads the queries least (every
        # padding row costs a real row's work; 20,480 queries: 5 chunks of 4,096, not 3 of 8,192).
        chunk = min((k for k in (chunk, chunk // 2, chunk // 4) if k >= 1),
                    key=lambda k: (-(-n_queries // k) * k, -k))
    if n_dev == 1 and chunk >= n_queries:
        return Plan(int(n_queries), mesh)
    return Plan(int(min(chunk, share)), mesh)


def n_chunks(n: int, p: Plan) -> int:
    """Chunks over all devices: ceil(N / chunk), rounded up to a multiple of the device count."""
    per = -(-n // p.chunk)
    return -(-per // p.n_devices) * p.n_devices


def split(a: jax.Array, n: int, p: Plan) -> jax.Array:
    """[N, ...] → [C, chunk, ...], padded with copies of row 0 (give them weight 0)."""
    c = n_chunks(n, p)
    pad = c * p.chunk - n
    if pad:
        a = jnp.concatenate([a, jnp.broadcast_to(a[:1], (pad,) + a.shape[1:])])
    return a.reshape((c, p.chunk) + a.shape[1:])


def weights(n, size: int, p: Plan, dtype) -> jax.Array:
    """[C, chunk]: 1 for a real query (the first ``n``, traced), 0 for padding, over ``size`` padded queries."""
    c = n_chunks(size, p)
    return (jnp.arange(c * p.chunk) < n).astype(dtype).reshape(c, p.chunk)


def merge(a: jax.Array, size: int) -> jax.Array:
    """[C, chunk, ...] per-query outputs → [size, ...]."""
    return a.reshape((a.shape[0] * a.shape[1],) + a.shape[2:])[:size]


def gather(tree, p: Plan):
    """Replicates arrays over the plan's devices (XLA gathers them): what follows — the exact paths' sort and
    running sums of events — then computes on whole arrays, in the same order as on one device."""
    if p.mesh is None:
        return tree
    return jax.lax.with_sharding_constraint(tree, NamedSharding(p.mesh, PartitionSpec()))


def over_queries(one: Callable, arrays: tuple, n, p: Plan, shared=(), dtype=None, groups=None):
    """Runs ``one(chunk_args, *shared)`` on every chunk of queries: the sums over all queries and the
    per-query outputs.

    ``arrays`` is a tuple of pytrees of [size, ...] arrays (the query axis, padded to its bucket); ``n`` (traced)
    says how many rows are real. ``one`` receives them cut to one chunk, with the chunk's weights [chunk] (1 for
    a real query, 0 for padding; in ``dtype``, default the first array's) appended, and returns (sums over the
    chunk's queries — :func:`cascjax._compile.masked_sum` or integer counts —, per-query outputs [chunk, ...] or
    None). ``shared`` is a tuple of arrays every chunk sees whole (λ, sample points, ...), replicated over
    devices. With a mesh, the chunks are sharded over its devices and each runs ``lax.map`` over its own.

    ``groups`` [size, G] (0/1, optional): which queries each of G groups holds. ``one`` then receives group
    weights [chunk, G] in place of the weights (0 for padding in every group); its
    :func:`cascjax._compile.masked_sum` sums are then per group, the group axis last (integer counts, over
    every real query).

    Returns:
      (the sums added over the chunks by :func:`total`, the per-query outputs [size, ...] or None).
    """
    leaves = jax.tree.leaves(arrays)
    dtype = leaves[0].dtype if dtype is None else dtype
    size = leaves[0].shape[0]
    if p.mesh is None and size > p.chunk and size % p.chunk:
        # Reads each chunk in place rather than padding a copy of every input (inputs this large are not padded
        # to a bucket either, see cascjax._compile.PAD_BYTES): the last chunk's rows past ``size`` are rows
        # from the start again (real, finite data) with weight 0, as padding's copies of row 0 are.
        def in_place(args):
            c, w = args
            rows = (c * p.chunk + jnp.arange(p.chunk)) % size
            if groups is not None:
                w = jnp.take(groups, rows, axis=0, mode="clip").astype(dtype) * w[:, None]
            return one(jax.tree.map(lambda a: jnp.take(a, rows, axis=0, mode="clip"), arrays) + (w,), *shared)

        w = weights(n, size, p, dtype)
        sums, per_query = jax.lax.map(in_place, (jnp.arange(w.shape[0]), w))
        return total(sums, p), jax.tree.map(lambda a: merge(a, size), per_query)
    w = weights(n, size, p, dtype)
    if groups is not None:  # padding (copies of row 0) in no group
        w = split(groups.astype(dtype), size, p) * w[..., None]
    chunked = jax.tree.map(lambda a: split(a, size, p), arrays) + (w,)

    def local(chunked, *shared):
        return jax.lax.map(lambda args: one(args, *shared), chunked)

    if p.mesh is None:
        sums, per_query = local(chunked, *shared)
    else:
        rows = PartitionSpec(AXIS)
        whole = PartitionSpec()
        sums, per_query = jax.shard_map(local, mesh=p.mesh, in_specs=(rows,) + (whole,) * len(shared),
                                        out_specs=rows, check_vma=False)(chunked, *shared)
    # Per-query outputs replicated too, so every process (jax.distributed) can read them whole.
    return total(sums, p), jax.tree.map(lambda a: merge(a, size), gather(per_query, p))


def total(per_chunk, p: Plan):
    """Sums per-chunk outputs [C, ...] over the chunks, as a pairwise tree in chunk order (chunks of padding
    add exact zeros); with a mesh the sums are first replicated (XLA gathers them), so every device count and
    chunk size adds the same numbers in the same order."""
    if p.mesh is not None:
        per_chunk = jax.lax.with_sharding_constraint(per_chunk, NamedSharding(p.mesh, PartitionSpec()))
    return jax.tree.map(lambda a: tree_sum(a, axis=0), per_chunk)


def local_copy(tree):
    """This process's copy of replicated arrays (see :func:`gather`), on one of its own devices: what the exact
    paths sort and sum, as a one-device run does (with several processes a ``device_put`` of an array that
    spans other processes' devices is refused)."""

    def one(a):
        if len(a.sharding.device_set) == 1:
            return a
        if not a.is_fully_replicated:
            raise ValueError(f"local_copy needs a replicated array, got sharding {a.sharding}")
        return a.addressable_data(0)

    return jax.tree.map(one, tree)
