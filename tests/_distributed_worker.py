"""One process of the multi-process check in ``tests/test_distributed.py`` (a script; pytest does not collect it).

    python tests/_distributed_worker.py PROCESS_ID NUM_PROCESSES PORT OUTFILE

With NUM_PROCESSES > 1 the process gets 2 CPU devices and joins the others through
``jax.distributed.initialize`` (coordinator on 127.0.0.1:PORT, CPU collectives over gloo), so ``jax.devices()``
lists every process's devices and cascjax shards the query axis over all of them. With NUM_PROCESSES = 1 it is
the plain one-process, one-device reference (PORT is ignored). Every process builds the same dataset (the full
[N, M] host arrays) and writes the same computations' results to OUTFILE (``np.savez``): ``<name>/<field>``
for every curve (float64; where the computation or reading its result raised, ``<name>/error``), ``process``
= [process index, devices, local devices] and ``queries``, the real queries this process's devices hold.
"""

import sys

import jax
import numpy as np

#: Small sizes keep compilation short; N is a multiple of neither the 4 devices nor the chunk size.
N, M, CHUNK = 103, 5, 16
SWEEPS = {"routing": {}, "threshold_cascade": dict(max_depth=3), "cascade": dict(max_depth=3, samples=8),
          "cascade_routing": dict(max_depth=3, samples=8)}
FIELDS = ("lam", "cost", "quality", "answered", "ran", "choice", "query_cost")


def main(process_id: int, num_processes: int, port: int, outfile: str) -> None:
    jax.config.update("jax_enable_x64", True)
    if num_processes > 1:
        # Both settings must precede the first use of a backend (here: initialize).
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.config.update("jax_num_cpu_devices", 2)
        jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=num_processes,
                                   process_id=process_id)
    import cascjax
    from cascjax import _chunks

    out = {"process": np.array([jax.process_index(), len(jax.devices()), len(jax.local_devices())])}
    print("process", *out["process"], flush=True)
    # The queries this process's devices hold: device d of the mesh runs chunks d·k .. (d+1)·k − 1.
    p = _chunks.plan(N, CHUNK, None, 1.0)
    k = _chunks.n_chunks(N, p) // p.n_devices
    owners = [0] if p.mesh is None else [d.process_index for d in p.mesh.devices.flat]
    out["queries"] = np.array([q for d, owner in enumerate(owners) if owner == jax.process_index()
                               for q in range(d * k * p.chunk, min((d + 1) * k * p.chunk, N))])

    ds = cascjax.synthetic(0, N, M, binary=False)  # continuous quality: sums in another order would show
    est = cascjax.noisy_estimates(ds, jax.random.key(0), "low")
    lam = cascjax.lambda_grid(est, 8)
    runs = {s: (lambda s=s, kw=kw: cascjax.sweep(ds, est, cascjax.threshold_grid(est, 8, max_depth=3)
                                                 if s == "threshold_cascade" else lam, s, **kw))
            for s, kw in SWEEPS.items()}
    # Per-query outputs [L, N] at N = 103 and at N = 128, a multiple of CHUNK x 4 devices (no cut at the end).
    for n in (N, 128):
        ds_n = cascjax.synthetic(1, n, M, binary=False)
        est_n = cascjax.noisy_estimates(ds_n, jax.random.key(1), "low")
        runs[f"choices{n}"] = (lambda ds_n=ds_n, est_n=est_n: cascjax.sweep(
            ds_n, est_n, cascjax.lambda_grid(est_n, 8), "routing", return_choices=True))
    runs["routing_path"] = lambda: cascjax.routing_path(ds, est)
    # 64 λ: the routing event route (cascjax._routing_events), whose second phase runs on replicated arrays.
    runs["routing_events"] = lambda: cascjax.sweep(ds, est, cascjax.lambda_grid(est, 64), return_choices=True)
    for name, run in runs.items():
        try:
            curve = run()
            # Every process should receive whole (replicated) results and read them like local arrays.
            got = {f: np.asarray(getattr(curve, f), np.float64) for f in FIELDS if getattr(curve, f) is not None}
        except Exception as e:  # deterministic: every process raises at the same point, none waits
            out[f"{name}/error"] = np.array(f"{type(e).__name__}: {e}")
            continue
        out.update({f"{name}/{f}": v for f, v in got.items()})
    np.savez(outfile, **out)
    if num_processes > 1:
        jax.distributed.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
