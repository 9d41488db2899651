"""The benchmark suite: every kernel's script in its own process, then ``benchmarks/results.md`` and the figures.

    python benchmarks/run.py                      # the full suite (CPU sizes: about 15-20 minutes on 2 cores)
    python benchmarks/run.py --quick              # small sizes, a smoke run of every script (a few minutes)
    python benchmarks/run.py --only cascade_routing,fit:routing      # names or name prefixes (see --list)
    python benchmarks/run.py --list

Each job runs ``python benchmarks/<script> ... --json <tmp>`` in a fresh process (peak resident memory,
``ru_maxrss``, is per process and never goes down, so every measurement gets its own), collects the rows and
writes ``--out`` (default ``benchmarks/results.md``): the command, date, environment and total wall time; a
table per kernel (sizes, dtype, compile and run seconds, throughput, peak memory, the speed-ups against the
NumPy loop oracle of ``tests/`` and against the plain-NumPy vectorised version of ``numpy_baselines.py``, both
measured in the same process, and their deviations); the scaling sweeps as a table and as log-log PNG plots
(``--figures``, default ``benchmarks/figures/``: ``scaling_N.png``, ``scaling_M.png``, ``scaling_L.png``,
``scaling_D.png``, ``scaling_K.png``); and every job that failed, with the end of its output. The raw rows go
to the same path with ``.json``.

Sizes: CPU sizes are chosen so that the whole suite stays within 20 minutes on a 2-core CPU (cascade routing
at 4,000 x 8, max_depth 3, K 32, 256 λ); on an accelerator (``jax.default_backend() != "cpu"``, detected in
a subprocess so that this process never holds the device) the scripts' larger defaults apply (cascade routing
at 36,000 x 11, max_depth 5, K 64, 1,024 λ).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CR_OPTIONS = ("default", "force_order", "greedy", "no_prune", "no_deviation", "covariance")
PARAMS = ("N", "M", "L", "D", "K")


def jobs(accelerator: bool, quick: bool) -> list[tuple[str, str, list[str]]]:
    """(name, script, arguments) of every job, in run order."""
    q = ["--quick"] if quick else []
    if quick:
        sizes = dict(routing_path=[], routing_grid=[], threshold=[], cascade=[], cr=[], fit=[], ablation=[],
                     exact=[])
    elif accelerator:
        sizes = dict(routing_path=["--big", "10000000"], routing_grid=[], threshold=[], cascade=[],
                     cr=["--numpy-queries", "2000"], fit=[], ablation=[], exact=["--runs", "cascade,3,6"])
    else:
        sizes = dict(routing_path=["--big", "1000000", "--oracle-queries", "30"],
                     routing_grid=["--queries", "30000", "--lambdas", "1000"],
                     threshold=["--queries", "36000", "--lambdas", "1024"],
                     cascade=["--queries", "8000", "--lambdas", "256", "--oracle-queries", "10",
                              "--oracle-lambdas", "4"],
                     cr=["--queries", "4000", "--models", "8", "--depth", "3", "--samples", "32", "--lambdas",
                         "256", "--oracle-queries", "3", "--oracle-lambdas", "3"],
                     fit=[], ablation=[], exact=["--runs", "cascade,3"])
    out = [("routing_path", "bench_routing.py", ["--dtypes", "float32", "--skip-side-by-side"] + q +
            sizes["routing_path"]),
           ("routing_grid", "bench_routing_grid.py", q + sizes["routing_grid"]),
           ("threshold_cascade", "bench_threshold.py", q + sizes["threshold"]),
           ("cascade", "bench_cascade.py", ["--float32"] + q + sizes["cascade"])]
    out += [(f"cascade_routing:{o}", "bench_cascade_routing.py", ["--option", o] + q + sizes["cr"])
            for o in CR_OPTIONS]
    out += [(f"fit:{s}", "bench_fit.py", ["--strategy", s] + q + sizes["fit"])
            for s in ("routing", "cascade", "cascade_routing")]
    out += [(f"ablation:{part}", "bench_ablation.py", ["--part", part] + q + sizes["ablation"])
            for part in ("noise", "ablate")]
    out += [("exact_paths", "bench_exact_paths.py", q + sizes["exact"])]
    out += [(f"scaling:{k}", "bench_scaling.py", ["--kernel", k] + q)
            for k in ("routing", "routing_path", "cascade", "cascade_routing")]
    out += [("scaling:routing_pools", "bench_routing_pools.py",
             ["--scaling"] + (["--models", "11,100,1000"] if quick else []))]
    return out


def backend() -> str:
    out = subprocess.run([sys.executable, "-c", "import jax; print(jax.default_backend())"], capture_output=True,
                         text=True, cwd=ROOT)
    return out.stdout.strip().splitlines()[-1] if out.returncode == 0 and out.stdout.strip() else "unknown"


def selected(all_jobs, only):
    if not only:
        return all_jobs
    names = [n.strip() for n in only.split(",") if n.strip()]
    return [j for j in all_jobs if any(j[0] == n or j[0].startswith(n + ":") for n in names)]


def run_job(name, script, arguments, timeout):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rows.json")
        command = [sys.executable, os.path.join(HERE, script), *arguments, "--json", path]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=timeout)
            code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as e:
            code, stdout, stderr = "timeout", _text(e.stdout), _text(e.stderr) + f"\n(timed out after {timeout} s)"
        wall = time.perf_counter() - t0
        doc = None
        if code == 0 and os.path.exists(path):
            with open(path) as f:
                doc = json.load(f)
    shown = " ".join(["python", f"benchmarks/{script}", *map(shlex.quote, arguments)])
    return dict(name=name, command=shown, code=code, wall_s=wall, date=_now(),
                tail=((stdout or "") + "\n" + (stderr or "")).strip()[-3000:],
                env=doc["env"] if doc else None, rows=doc["rows"] if doc else [])


def _now():
    return datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")


def _text(b):
    return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")


# -- the report --------------------------------------------------------------------------------------------

def _num(x, fmt="{:.3g}"):
    return "–" if x is None else fmt.format(x)


def _sizes(r):
    parts = [f"{r['N']:,} × {r['M']}" if r.get("N") is not None and r.get("M") is not None else None]
    for key, label in (("L", "L"), ("D", "D"), ("K", "K")):
        if r.get(key) is not None:
            parts.append(f"{label} {r[key]:,}")
    return ", ".join(p for p in parts if p)


def _ratio(x):
    if x is None:
        return "–"
    return f"{x:,.0f}×" if x >= 100 else f"{x:,.2f}×"


def kernel_table(rows):
    head = ("| option | sizes | dtype | compile + run s | run s | throughput /s | peak RSS GB | vs loop oracle "
            "(subsample) | loop dev | vs NumPy vectorised | NumPy dev | notes |")
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        mem = _num(r.get("peak_rss_gb"), "{:.2f}")
        if r.get("peak_device_gb") is not None:
            mem += f" (device {r['peak_device_gb']:.2f})"
        loop = "–" if r.get("numpy_loop_ratio") is None else f"{_ratio(r['numpy_loop_ratio'])} ({r['loop_sizes']})"
        vec = "–" if r.get("numpy_vec_ratio") is None else (f"{_ratio(r['numpy_vec_ratio'])} "
                                                             f"({r['numpy_s']:.3g} s, {r['numpy_sizes']})")
        note = r.get("note") or ""
        if r.get("max_deviation") is not None:
            note = f"max deviation {r['max_deviation']:.1e}; " + note
        lines.append(f"| {r['option']} | {_sizes(r)} | {r['dtype']} | {_num(r.get('compile_s'), '{:.2f}')} | "
                     f"{_num(r.get('run_s'), '{:.3f}')} | {_num(r.get('decisions_per_s'), '{:,.0f}')} {r['unit']} | "
                     f"{mem} | {loop} | {_num(r.get('loop_deviation'), '{:.1e}')} | {vec} | "
                     f"{_num(r.get('numpy_deviation'), '{:.1e}')} | {note} |")
    return "\n".join(lines)


def scaling_figures(rows, directory):
    """One log-log PNG per parameter: run time (solid) and first call (dotted) per kernel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    import numpy as np

    os.makedirs(directory, exist_ok=True)
    written = []
    for param in PARAMS:
        sel = [r for r in rows if r.get("vary") == param]
        if not sel:
            continue
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for i, kernel in enumerate(dict.fromkeys(r["kernel"] for r in sel)):
            pts = sorted((r["value"], r["run_s"], r["compile_s"], r) for r in sel if r["kernel"] == kernel)
            x = np.array([p[0] for p in pts], float)
            y = np.array([p[1] for p in pts], float)
            label = kernel
            if len(x) >= 2 and np.all(x > 0) and np.all(y > 0):
                slope = np.polyfit(np.log(x), np.log(y), 1)[0]
                label += f" (slope {slope:.2f})"
            base = {k: v for k, v in pts[0][3].items() if k in PARAMS and k != param and v is not None}
            label += " @ " + ", ".join(f"{k}={v:,}" for k, v in base.items())
            color = f"C{i}"
            ax.plot(x, y, "o-", color=color, label=label)
            ax.plot(x, [p[2] for p in pts], ":", color=color, alpha=0.6)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ticks = []
        for t in sorted({r["value"] for r in sel}):  # labels at least 0.25 decades apart
            if not ticks or np.log10(t / ticks[-1]) >= 0.25:
                ticks.append(t)
        ax.set_xticks(ticks, [f"{t:,}" for t in ticks], fontsize=7)
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        names = dict(N="N (queries)", M="M (models)", L="L (λ values)", D="D (max_depth)", K="K (samples)")
        ax.set_xlabel(names[param])
        ax.set_ylabel("seconds (solid: run; dotted: first call = compile + run)")
        ax.set_title(f"time against {names[param]}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = os.path.join(directory, f"scaling_{param}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def scaling_table(rows):
    lines = ["| kernel | varied | value | sizes | compile + run s | run s | throughput /s |", "|" + "---|" * 7]
    for r in rows:
        lines.append(f"| {r['kernel']} | {r['vary']} | {r['value']:,} | {_sizes(r)} | {r['compile_s']:.2f} | "
                     f"{r['run_s']:.3f} | {r['decisions_per_s']:,.0f} {r['unit']} |")
    return "\n".join(lines)


TITLES = {"routing_path": "Exact routing path (`cascjax.routing_path`)",
          "routing_grid": "Routing grid (`cascjax.sweep(..., \"routing\")`)",
          "cascade": "Optimal cascade: grid (`sweep(..., \"cascade\")`) and exact path (`cascade_path`)",
          "cascade_path": None,
          "cascade_routing": "Cascade routing (`sweep(..., \"cascade_routing\")`), every option",
          "threshold_cascade": "Threshold cascade (`sweep(..., \"threshold_cascade\")` over `threshold_grid`)",
          "fit": "Fitting (`cascjax.fit(fit_ds, fit_est, budgets, strategy)`, per-step search for the cascades)",
          "ablation_grid": "Ablation grid (`cascjax ablate`: the vmapped noise model, and `ablate` on a reduced grid)",
          "cascade_routing_path": "Exact paths on the embedded example (`cascade_path`, `cascade_routing_path`)"}


def report(results, runs, quick, figures, out_path, backend_name) -> str:
    env = next((r["env"] for r in results if r["env"]), None)
    rows = [row for res in results for row in res["rows"]]
    main_rows = [r for r in rows if not str(r.get("option", "")).startswith("scaling")]
    scaling = [r for r in rows if str(r.get("option", "")).startswith("scaling")]
    first = runs[0]
    out = [f"# cascjax benchmark results{' (--quick: smoke-run sizes, not for comparison)' if quick else ''}",
           "", f"Produced by `{first['command']}` on {first['date']}; total wall time {first['wall_s']:.0f} s "
               f"({first['wall_s'] / 60:.1f} min), {len(first['jobs'])} jobs, each in its own process."]
    for run in runs[1:]:
        out.append(f"Then `{run['command']}` on {run['date']} reran {', '.join(run['jobs'])} "
                   f"({run['wall_s']:.0f} s); their rows below are from that run.")
    out.append("")
    if env:
        out += [f"Environment: jax {env['jax']}, backend {env['backend']}, device {env['device_kind']} × "
                f"{env['device_count']}, {env['cpu_cores']} CPU cores ({env['machine']}), Python {env['python']}.",
                ""]
    else:
        out += [f"Environment: backend {backend_name} (no job reported its environment).", ""]
    out += ["How to read the tables:", "",
            "* *compile + run s* is the first call (compilation included), *run s* the median of further calls "
            "(every result blocked on with `jax.block_until_ready`).",
            "* *throughput* counts decisions (one query at one λ; for cascades one step actually taken, "
            "`sum(curve.ran) * N`), queries for exact paths (a path covers every λ ≥ 0), estimates "
            "(cells × queries × models) for the noise grid, cells for `ablate`.",
            "* *vs loop oracle*: JAX throughput ÷ the throughput of the NumPy loop oracle of `tests/oracle.py` "
            "(`cascjax.testing._reference`, one query, λ and candidate at a time) on the subsample named, "
            "measured in the same process; *loop dev* is the largest deviation between the two on it "
            "(max of |Δ mean quality| and |Δ mean cost| / max mean cost).",
            "* *vs NumPy vectorised*: JAX throughput ÷ the throughput of the plain-NumPy vectorised version in "
            "`benchmarks/numpy_baselines.py` (same sizes unless the cell says it was scaled from a subsample; "
            "for fits and `ablate`, the ratio of the run times), checked against JAX in the same run "
            "(*NumPy dev*). Both ratios are speed-ups of JAX: **> 1× means JAX is faster**.",
            "* *peak RSS* is the process's peak resident memory (everything the process held, data included), "
            "read right after the JAX measurement.",
            "* A note \"NumPy's decisions differ ... NumPy in float64 agrees with JAX\" marks float32 rounding at "
            "the edge of the tie band (the two sum the Monte-Carlo maxima in different orders); the float64 "
            "rerun of the NumPy version on the same float32 inputs decides as JAX does.", ""]
    by_kernel = {}
    for r in main_rows:
        key = "cascade" if r["kernel"] == "cascade_path" and r["option"] == "exact" else r["kernel"]
        if r["kernel"] == "cascade_path" and r["option"] != "exact":
            key = "cascade_routing_path"
        by_kernel.setdefault(key, []).append(r)
    for kernel, krows in by_kernel.items():
        out += [f"## {TITLES.get(kernel) or kernel}", "",
                f"jax {env['jax'] if env else '?'} · {env['device_kind'] if env else backend_name} "
                f"({env['backend'] if env else backend_name})", "", kernel_table(krows), ""]
    if scaling:
        out += ["## Scaling", "",
                "Each parameter varied alone around the base point named in the legend (fresh synthetic data "
                "per point, 'low' noise, cascjax's default float32); log-log, slope = fitted exponent of the run "
                "time. Compilation (dotted) is paid once per shape.", ""]
        figs = sorted({r["vary"] for r in scaling}, key=PARAMS.index)
        rel = os.path.relpath(figures, os.path.dirname(os.path.abspath(out_path)))
        out += [f"![time against {p}]({rel}/scaling_{p}.png)" for p in figs] + ["", scaling_table(scaling), ""]
    failed = [r for r in results if r["code"] != 0]
    out += ["## Jobs", "", "| job | command | finished | wall s | status |", "|---|---|---|---|---|"]
    for r in results:
        out.append(f"| {r['name']} | `{r['command']}` | {r.get('date', '')} | {r['wall_s']:.1f} | "
                   f"{'ok' if r['code'] == 0 else 'FAILED (' + str(r['code']) + ')'} |")
    out.append("")
    if failed:
        out += ["## Failures", ""]
        for r in failed:
            out += [f"### {r['name']} (exit {r['code']})", "", "```", r.get("tail", ""), "```", ""]
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="every script's --quick sizes")
    p.add_argument("--only", help="comma-separated job names or prefixes (e.g. cascade_routing,fit:routing,scaling)")
    p.add_argument("--out", default=os.path.join(HERE, "results.md"))
    p.add_argument("--figures", default=os.path.join(HERE, "figures"))
    p.add_argument("--timeout", type=int, default=900, help="seconds per job")
    p.add_argument("--list", action="store_true", help="list the jobs and exit")
    p.add_argument("--merge", action="store_true",
                   help="keep the other jobs' rows of the existing results (<out>.json) and replace those run now")
    args = p.parse_args(argv)
    backend_name = backend()
    todo = selected(jobs(backend_name not in ("cpu", "unknown"), args.quick), args.only)
    if args.list:
        for name, script, arguments in todo:
            print(f"{name:32s} python benchmarks/{script} {' '.join(arguments)}")
        return 0
    if not todo:
        print(f"no job matches --only {args.only!r}; see --list")
        return 2
    store = os.path.splitext(args.out)[0] + ".json"
    old = None
    if args.merge and os.path.exists(store):
        with open(store) as f:
            old = json.load(f)
        if not isinstance(old, dict) or (old.get("runs") and old["runs"][0].get("quick") != args.quick):
            print(f"--merge: {store} is from a run with a different --quick setting (or an older format); "
                  "nothing run")
            return 2
    command = "python benchmarks/run.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    print(f"backend {backend_name}: {len(todo)} jobs", flush=True)
    results, t0 = [], time.perf_counter()
    for i, (name, script, arguments) in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] {name} ...", end=" ", flush=True)
        res = run_job(name, script, arguments, args.timeout)
        results.append(res)
        print(f"{res['wall_s']:.1f} s" + ("" if res["code"] == 0 else f"  FAILED ({res['code']})"), flush=True)
    total = time.perf_counter() - t0
    runs = [dict(command=command, date=_now(), wall_s=total, jobs=[r["name"] for r in results], quick=args.quick)]
    if old is not None:
        fresh = {r["name"]: r for r in results}
        merged = [fresh.pop(r["name"], r) for r in old.get("jobs", [])]
        results, runs = merged + list(fresh.values()), old.get("runs", []) + runs
    rows = [row for res in results for row in res["rows"]]
    scaling = [r for r in rows if str(r.get("option", "")).startswith("scaling")]
    if scaling:
        for path in scaling_figures(scaling, args.figures):
            print(f"wrote {path}")
    text = report(results, runs, args.quick, args.figures, args.out, backend_name)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    with open(store, "w") as f:
        json.dump(dict(runs=runs, jobs=results), f, indent=1)
    failed = sum(r["code"] != 0 for r in results)
    print(f"wrote {args.out} and {store} ({total:.0f} s this time; {failed} failed)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
