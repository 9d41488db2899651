"""The verification report: what a run of the theorem suite checked and found, as Markdown (and JSON).

Written at the end of a pytest session when ``CASCJAX_VERIFY_REPORT=path.md`` is set (the repository's
``conftest.py`` calls :func:`write`); or render saved JSON again — several files (sessions run side by side
on parts of the suite) are merged into one report::

    python -m cascjax.testing.report docs/verification.json -o docs/verification.md
    python -m cascjax.testing.report part1.json part2.json -o docs/verification.md
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

from ._properties import CHECKED, MEASURED, PROPERTIES

COMMAND = ("HYPOTHESIS_PROFILE=thorough CASCJAX_VERIFY_REPORT=docs/verification.md "
           "pytest tests/test_theorems.py tests/test_theorem_worlds.py")


def collect(*, profile: str, seconds: float, failed: list[str], examples: int) -> dict:
    """This process's counts and measurements as a JSON-ready dict.

    Args:
      profile: the hypothesis profile of the run (``"ci"``, ``"thorough"``).
      seconds: the run's wall time.
      failed: the node ids of the failed tests.
      examples: the profile's ``max_examples``.

    Returns:
      A dict: the arguments, the jax and Python versions, the machine and devices, ``checked`` (a copy of
      :data:`cascjax.testing.CHECKED`), ``dp_gap`` and ``counterexamples`` (of
      :data:`cascjax.testing.MEASURED`).

    Example:
      >>> from cascjax.testing import report
      >>> data = report.collect(profile="ci", seconds=1.5, failed=[], examples=12)
      >>> sorted(data)[:6], data["profile"], data["max_examples"]
      (['checked', 'counterexamples', 'devices', 'dp_gap', 'failed', 'jax'], 'ci', 12)
    """
    import jax

    gap = {str(m): dict(e) for m, e in MEASURED["dp_gap"].items()}
    return dict(profile=profile, max_examples=examples, seconds=round(seconds, 1), failed=list(failed),
                jax=jax.__version__, python=platform.python_version(), machine=platform.platform(),
                devices=[str(d) for d in jax.devices()], checked=dict(CHECKED), dp_gap=gap,
                counterexamples=list(MEASURED["counterexamples"]))


def merge(runs: list[dict]) -> dict:
    """One report from sessions run side by side: counts and gaps summed, the worst kept, lists joined.

    Args:
      runs: dicts of :func:`collect` (or the JSON written next to a report), one per session.

    Returns:
      One such dict; ``seconds`` is the longest session's, ``sessions`` lists every session's seconds.

    Example:
      >>> from cascjax.testing import report
      >>> a = dict(seconds=10.0, failed=[], counterexamples=[], checked={"pruning": 2}, dp_gap={})
      >>> b = dict(seconds=12.5, failed=["t::x"], counterexamples=[], checked={"pruning": 3, "prefix": 1}, dp_gap={})
      >>> merged = report.merge([a, b])
      >>> merged["seconds"], merged["sessions"], merged["checked"], merged["failed"]
      (12.5, [10.0, 12.5], {'pruning': 5, 'prefix': 1}, ['t::x'])
    """
    if len(runs) == 1:
        return runs[0]
    out = dict(runs[0], seconds=round(max(r["seconds"] for r in runs), 1),
               sessions=[r["seconds"] for r in runs], failed=[f for r in runs for f in r["failed"]],
               counterexamples=[c for r in runs for c in r["counterexamples"]], checked={}, dp_gap={})
    for r in runs:
        for k, v in r["checked"].items():
            out["checked"][k] = out["checked"].get(k, 0) + v
        for m, e in r["dp_gap"].items():
            if m not in out["dp_gap"]:
                out["dp_gap"][m] = dict(e)
                continue
            acc = out["dp_gap"][m]
            for k in ("worlds", "gap_sum", "suboptimal", "optimum_sum"):
                acc[k] += e[k]
            if e["worst"] > acc["worst"]:
                acc["worst"], acc["worst_world"] = e["worst"], e["worst_world"]
    return out


def render(data: dict) -> str:
    """The Markdown page for a collected run.

    Args:
      data: a dict of :func:`collect` or :func:`merge`.

    Returns:
      The Markdown text: a table of the properties with their counts, then the DP-gap measurements.

    Example:
      >>> from cascjax.testing import report
      >>> text = report.render(report.collect(profile="ci", seconds=1.5, failed=[], examples=12))
      >>> text.splitlines()[0], "| `theorem1` |" in text
      ('# Verification report', True)
    """
    lines = [
        "# Verification report",
        "",
        "What the theorem suite (`cascjax.testing`, `tests/test_theorems.py`, `tests/test_theorem_worlds.py`)",
        f"checked in its latest **{data['profile']}** run (profile max_examples {data['max_examples']:,}; ≥ 10,000",
        "hypothesis examples per property in the thorough profile), and what it found. Regenerate with:",
        "",
        "```bash",
        COMMAND,
        "```",
        "",
        f"Run: {data['seconds']:,} s"
        + (f" ({len(data['sessions'])} pytest sessions side by side on parts of the suite: "
           f"{', '.join(f'{s:,} s' for s in data['sessions'])})" if data.get("sessions") else "")
        + f", jax {data['jax']}, Python {data['python']}, {data['machine']}, devices {', '.join(data['devices'])}.",
        "",
        "## Properties (must hold exactly)",
        "",
        "Each is also shown to fail on a deliberately broken kernel (`tests/test_theorems.py`, `test_*_catches_*`),",
        "so none holds vacuously. *Examples*: calls of the check (hypothesis examples and seeded batches);",
        "*items*: the decisions (query × λ), budgets, supermodel pairs or worlds those calls covered.",
        "",
        "| property | statement | source | examples | items | counterexamples |",
        "|---|---|---|---:|---:|---|",
    ]
    failed = data["failed"]
    for p in PROPERTIES:
        bad = [f for f in failed if p.name in f]
        lines.append(f"| `{p.name}` | {p.statement} | {p.source} | {data['checked'].get(p.name, 0):,} | "
                     f"{data['checked'].get(p.name + ':items', 0):,} | {'; '.join(bad) if bad else 'none'} |")
    if failed:
        lines += ["", f"**Failed tests:** {', '.join(failed)}"]
    if data.get("notes"):
        lines += ["", "**Counterexamples the thorough runs found, and what changed:**", ""]
        lines += [f"* {note}" for note in data["notes"]]
    lines += [
        "",
        "## Measurement: the paper's cascade-routing rule against the optimal adaptive policy",
        "",
        "The Gaussian world of the issue: model m's quality is N(μ_m, σ_m²) ex ante and revealed exactly when m",
        "runs; payoff = best revealed quality − λ·(cost of the models run). Discretised exactly (k equal-probability",
        "nodes per model, `cascjax.testing.world_nodes`), so the Bayes-optimal value is a finite dynamic programme",
        "(`optimal_value`, checked equal to Weitzman's Pandora's-box value) and the rule is evaluated exactly",
        "(`rule_values`: the cascade-routing kernel on every joint outcome with the node grid as its points).",
        "Worlds: μ, σ, cost uniform on [0, 1], models in ascending cost order (the paper's order).",
        "Gap = optimum − rule (quality units; the tie rule is MIN).",
        "",
        "| M | worlds × λ | nodes k | mean gap | worst gap | rule strictly suboptimal | mean optimal value |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m, e in sorted(data["dp_gap"].items()):
        n = e["worlds"]
        lines.append(f"| {m} | {n:,} | {e['nodes']} | {e['gap_sum'] / n:.5f} | {e['worst']:.5f} | "
                     f"{e['suboptimal'] / n:.1%} | {e['optimum_sum'] / n:.4f} |")
    worst = [(m, e["worst_world"]) for m, e in sorted(data["dp_gap"].items()) if e.get("worst_world")]
    if worst:
        lines += ["", "Worst worlds found:", ""]
        lines += [f"* M = {m}: μ = {_r(w['mu'])}, σ = {_r(w['sd'])}, cost = {_r(w['cost'])}, λ = {w['lam']:g}: "
                  f"rule {w['rule']:.5f}, optimum {w['optimum']:.5f}" for m, w in worst]
    if data["counterexamples"]:
        lines += ["", "Minimal counterexamples (hypothesis's shrinking, NumPy loops; quarter lattices):", ""]
        lines += [f"* M = {len(c['mu'])}, k = {c['nodes']} nodes (±1 for k = 2), tie {c['tie']}: μ = {c['mu']}, "
                  f"σ = {c['sd']}, cost = {c['cost']}, λ = {c['lam']:g}: rule {c['rule']:.5f}, optimum "
                  f"{c['optimum']:.5f}" for c in data["counterexamples"]]
    return "\n".join(lines) + "\n"


def _r(values) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in values) + "]"


def write(path: str | Path, **run) -> Path:
    """Writes ``path`` (Markdown) and the same name with ``.json``; returns the Markdown path.

    Args:
      path: the Markdown file (its folder is created).
      run: :func:`collect`'s keyword arguments (``profile``, ``seconds``, ``failed``, ``examples``).

    Returns:
      ``path`` as a :class:`pathlib.Path`.

    Example:
      >>> import tempfile
      >>> from pathlib import Path
      >>> from cascjax.testing import report
      >>> with tempfile.TemporaryDirectory() as tmp:
      ...     out = report.write(Path(tmp) / "docs" / "verification.md", profile="ci", seconds=1.5, failed=[],
      ...                        examples=12)
      ...     sorted(p.name for p in out.parent.iterdir())
      ['verification.json', 'verification.md']
    """
    path = Path(path)
    data = collect(**run)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    path.write_text(render(data))
    return path


def main(argv=None) -> int:
    """The command line ``python -m cascjax.testing.report JSON... [-o OUT.md]``: renders saved JSON files
    (several: merged with :func:`merge`) as Markdown, to ``OUT.md`` (and ``OUT.json``) or standard output.

    Args:
      argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
      The exit status, 0.

    Example:
      >>> import tempfile
      >>> from pathlib import Path
      >>> from cascjax.testing import report
      >>> with tempfile.TemporaryDirectory() as tmp:
      ...     part = report.write(Path(tmp) / "part1.md", profile="ci", seconds=1.5, failed=[], examples=12)
      ...     status = report.main([str(part.with_suffix(".json")), "-o", str(Path(tmp) / "merged.md")])
      ...     status, (Path(tmp) / "merged.md").read_text().startswith("# Verification report")
      (0, True)
    """
    parser = argparse.ArgumentParser(prog="python -m cascjax.testing.report",
                                     description="Render a saved verification JSON as Markdown.")
    parser.add_argument("json", nargs="+", help="the JSON written next to a report (several: merged)")
    parser.add_argument("-o", "--out", help="the Markdown file (default: standard output)")
    args = parser.parse_args(argv)
    merged = merge([json.loads(Path(p).read_text()) for p in args.json])
    text = render(merged)
    if args.out:
        Path(args.out).with_suffix(".json").write_text(json.dumps(merged, indent=1) + "\n")
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
