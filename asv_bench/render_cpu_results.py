"""Render a ``matgrad bench --json`` file as the Markdown tables in
``asv_bench/results-cpu.md`` (full table) and the README (ratios).

    python asv_bench/render_cpu_results.py asv_bench/results-cpu.json
"""

from __future__ import annotations

import json
import sys
from typing import Any


def _groups(rows: list[dict[str, Any]]) -> list[tuple[str, dict[str, dict[str, Any]]]]:
    keys = list(dict.fromkeys((r["op"], r["workload"]) for r in rows))
    return [(f"{op} {w}", {r["contestant"]: r for r in rows if (r["op"], r["workload"]) == (op, w)})
            for op, w in keys]


def full_table(data: dict[str, Any]) -> str:
    m = data["machine"]
    lines = [
        "# matgrad bench — CPU results",
        "",
        "Command: `matgrad bench --json asv_bench/results-cpu.json --plot docs/bench-cpu.png`  ",
        f"Machine: {m['cpus']} CPUs ({m['processor']}), {m['platform']}; date {m['date']}  ",
        f"Versions: Python {m['python']}, NumPy {m['numpy']}, SciPy {m['scipy']}, "
        f"Numba {m.get('numba')}, PyTorch {m.get('torch')} (CPU), JAX {m.get('jax')} (CPU)",
        "",
        "Median seconds per call after one warm-up call (the warm-up, with JIT "
        "compilation, in parentheses); every call returns a fresh array, and the floors "
        "are measured the same way.",
        "",
        "| workload | matgrad[numba] | matgrad[numpy] | NumPy formula | PyTorch autograd "
        "| JAX jit(grad) | floor |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, g in _groups(data["results"]):
        def cell(c: str, g: dict[str, dict[str, Any]] = g) -> str:
            r = g.get(c)
            if r is None or r["error"]:
                return "—"
            if c.startswith("matgrad"):
                return f"{r['median_s']:.4g} ({r['first_call_s']:.2g})"
            return f"{r['median_s']:.4g}"
        floors = [r for c, r in g.items() if c.startswith("floor")]
        floor = f"{floors[0]['median_s']:.4g} ({floors[0]['contestant'][7:]})" if floors else "—"
        lines.append(f"| {name} | {cell('matgrad[numba]')} | {cell('matgrad[numpy]')} | "
                     f"{cell('numpy formula')} | {cell('pytorch')} | {cell('jax')} | {floor} |")
    return "\n".join(lines) + "\n"


def ratio_table(data: dict[str, Any]) -> str:
    lines = ["| workload | matgrad[numba] s | vs NumPy formula | vs PyTorch | vs JAX | vs floor |",
             "|---|---|---|---|---|---|"]
    for name, g in _groups(data["results"]):
        t = g["matgrad[numba]"]["median_s"]
        def vs(c: str, g: dict[str, dict[str, Any]] = g, t: float = t) -> str:
            r = g.get(c)
            return f"{r['median_s'] / t:.2f}×" if r and not r["error"] else "—"
        floors = [r for c, r in g.items() if c.startswith("floor")]
        floor = f"{t / floors[0]['median_s']:.2f}× {floors[0]['contestant'][7:]}" if floors else "—"
        lines.append(f"| {name} | {t:.3g} | {vs('numpy formula')} faster | {vs('pytorch')} | "
                     f"{vs('jax')} | {floor} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as fh:
        data = json.load(fh)
    with open("asv_bench/results-cpu.md", "w", encoding="utf-8") as fh:
        fh.write(full_table(data))
    print(ratio_table(data))
