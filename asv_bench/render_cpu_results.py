"""Render a ``matgrad bench --json`` file as the Markdown tables in
``asv_bench/results-cpu.md`` (full table) and the performance guide (ratios,
docs/guide/performance.md), whose summary rows the README repeats.

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


#: Speed targets: workload (without dtype) -> [(contestant, kind, k)].  "faster":
#: the contestant's median over matgrad[numba]'s is at least k; "floor": matgrad's
#: median over the floor's is at most k.
TARGETS: dict[str, list[tuple[str, str, float]]] = {
    "frobenius_grad 4096x4096": [("floor", "floor", 1.5), ("jax", "faster", 1.0)],
    "frobenius_grad 200000x8x8": [("floor", "floor", 1.5), ("jax", "faster", 1.0)],
    "bilinear_grad 4096x4096": [("floor", "floor", 1.5), ("jax", "faster", 1.0)],
    "bilinear_grad 200000x16x16": [("floor", "floor", 1.5), ("jax", "faster", 1.0)],
    "det_grad 200000x4x4": [("floor", "floor", 3.0)],
    "det_grad 20000x16x16": [("pytorch", "faster", 4.0)],
    "det_grad 1000x1000": [("pytorch", "faster", 1.0)],
    "det_grad 2000x2000": [("pytorch", "faster", 1.0)],
    "charpoly_deriv 1000x1000, 1 pt": [("pytorch", "faster", 1.0)],
}


def _iqr(r: dict[str, Any]) -> tuple[float, float]:
    q1, q3 = r.get("q1_s"), r.get("q3_s")
    if q1 is None or q3 is None or q1 != q1:
        return r["median_s"], r["median_s"]
    return q1, q3


def _target(name: str, g: dict[str, dict[str, Any]]) -> str:
    """Each target of the workload: met or missed by the ratio of medians, with
    the ratio's range over the two interquartile ranges, and a warning where
    that range straddles the target."""
    base = name.removesuffix(" float32")
    out = []
    mine = g["matgrad[numba]"]
    m1, m3 = _iqr(mine)
    for who, kind, k in TARGETS.get(base, []):
        other = next((r for c, r in g.items() if c.startswith(who) and not r["error"]), None)
        if other is None:
            out.append(f"{who}: not measured")
            continue
        o1, o3 = _iqr(other)
        if kind == "faster":
            ratio, lo, hi = other["median_s"] / mine["median_s"], o1 / m3, o3 / m1
            met, want = ratio >= k, f"≥{k:g}× {who}"
        else:
            ratio, lo, hi = mine["median_s"] / other["median_s"], m1 / o3, m3 / o1
            met, want = ratio <= k, f"≤{k:g}× floor"
        verdict = "met" if met else "MISSED"
        overlap = ", IQRs overlap it" if lo <= k <= hi else ""
        out.append(f"{want}: {verdict} ({ratio:.2f}×, {lo:.2f}–{hi:.2f}{overlap})")
    return "; ".join(out) or "—"


def full_table(data: dict[str, Any]) -> str:
    m = data["machine"]
    lines = [
        "# matgrad bench — CPU results",
        "",
        "Command: `matgrad bench --json asv_bench/results-cpu.json --plot docs/bench-cpu.png`  ",
        f"Machine: {m['cpus']} CPUs ({m['processor']}), {m['platform']}; date {m['date']}  ",
        f"Versions: Python {m['python']}, NumPy {m['numpy']}, SciPy {m['scipy']}, "
        f"backends {m.get('backends', m.get('numba'))}, PyTorch {m.get('torch')} (CPU), "
        f"JAX {m.get('jax')} (CPU)",
        "",
        "Median seconds per call of interleaved rounds after one warm-up call; for "
        "matgrad, [interquartile range] and (the warm-up, with JIT compilation); every "
        "call returns a fresh array, and the floors are measured the same way.",
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
                q1, q3 = _iqr(r)
                return f"{r['median_s']:.4g} [{q1:.3g}–{q3:.3g}] ({r['first_call_s']:.2g})"
            return f"{r['median_s']:.4g}"
        floors = [r for c, r in g.items() if c.startswith("floor")]
        floor = f"{floors[0]['median_s']:.4g} ({floors[0]['contestant'][7:]})" if floors else "—"
        lines.append(f"| {name} | {cell('matgrad[numba]')} | {cell('matgrad[numpy]')} | "
                     f"{cell('numpy formula')} | {cell('pytorch')} | {cell('jax')} | {floor} |")
    return "\n".join(lines) + "\n"


def ratio_table(data: dict[str, Any]) -> str:
    lines = ["| workload | matgrad[numba] s | vs NumPy formula | vs PyTorch | vs JAX | vs floor "
             "| targets (ratio of medians, range over the IQRs) |",
             "|---|---|---|---|---|---|---|"]
    for name, g in _groups(data["results"]):
        t = g["matgrad[numba]"]["median_s"]
        def vs(c: str, g: dict[str, dict[str, Any]] = g, t: float = t) -> str:
            r = g.get(c)
            return f"{r['median_s'] / t:.2f}×" if r and not r["error"] else "—"
        floors = [r for c, r in g.items() if c.startswith("floor")]
        floor = f"{t / floors[0]['median_s']:.2f}× {floors[0]['contestant'][7:]}" if floors else "—"
        lines.append(f"| {name} | {t:.3g} | {vs('numpy formula')} faster | {vs('pytorch')} | "
                     f"{vs('jax')} | {floor} | {_target(name, g)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as fh:
        data = json.load(fh)
    with open("asv_bench/results-cpu.md", "w", encoding="utf-8") as fh:
        fh.write(full_table(data))
    print(ratio_table(data))
