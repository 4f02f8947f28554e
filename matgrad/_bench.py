"""``matgrad bench``: side-by-side timings of every operation.

For each standard workload, every available backend runs next to the
textbook NumPy formula, PyTorch and JAX autodiff (when importable; never
required), and the floors measured the way matgrad works (a fresh output per
call): ``X.copy()`` for operations that read and write the input's size,
``np.full(output_shape, 1.0)`` for ``bilinear_grad``, ``scipy.linalg.inv``
for large ``det_grad``.  Medians of repeats after one warm-up call; the
warm-up (first call: JIT compilation, caches) is reported separately.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _api
from ._registry import entries

__all__ = ["WORKLOADS", "Result", "Workload", "run_bench"]

Array = np.ndarray
Fn = Callable[[], Any]


@dataclass
class Workload:
    """One timed problem: builds its inputs, names its floor."""

    op: str
    label: str
    build: Callable[[np.random.Generator], tuple[Any, ...]]
    floor: str  # "copy", "fill" or "inv"
    quick_label: str = ""
    quick_build: Callable[[np.random.Generator], tuple[Any, ...]] | None = None


def _mats(B: int, n: int) -> Callable[[np.random.Generator], tuple[Any, ...]]:
    return lambda r: (r.standard_normal((B, n, n)),)


def _well(n: int) -> Callable[[np.random.Generator], tuple[Any, ...]]:
    # well conditioned: I + G/(2√n)
    return lambda r: (np.eye(n) + r.standard_normal((n, n)) / (2 * np.sqrt(n)),)


def _vecs(B: int, m: int, n: int) -> Callable[[np.random.Generator], tuple[Any, ...]]:
    if B == 1:
        return lambda r: (r.standard_normal(m), r.standard_normal(n))
    return lambda r: (r.standard_normal((B, m)), r.standard_normal((B, n)))


def _points(n: int, k: int) -> Callable[[np.random.Generator], tuple[Any, ...]]:
    return lambda r: (_well(n)(r)[0], r.standard_normal(k))


WORKLOADS: list[Workload] = [
    Workload("frobenius_grad", "4096x4096", lambda r: (r.standard_normal((4096, 4096)),),
             "copy", "1024x1024", lambda r: (r.standard_normal((1024, 1024)),)),
    Workload("frobenius_grad", "200000x8x8", _mats(200_000, 8), "copy",
             "20000x8x8", _mats(20_000, 8)),
    Workload("bilinear_grad", "4096x4096", _vecs(1, 4096, 4096), "fill",
             "1024x1024", _vecs(1, 1024, 1024)),
    Workload("bilinear_grad", "200000x16x16", _vecs(200_000, 16, 16), "fill",
             "20000x16x16", _vecs(20_000, 16, 16)),
    Workload("det_grad", "1000000x3x3", _mats(1_000_000, 3), "copy",
             "100000x3x3", _mats(100_000, 3)),
    Workload("det_grad", "200000x4x4", _mats(200_000, 4), "copy", "20000x4x4", _mats(20_000, 4)),
    Workload("det_grad", "20000x16x16", _mats(20_000, 16), "copy",
             "2000x16x16", _mats(2_000, 16)),
    Workload("det_grad", "1000x1000", _well(1000), "inv", "300x300", _well(300)),
    Workload("det_grad", "2000x2000", _well(2000), "inv", "500x500", _well(500)),
    Workload("charpoly_deriv", "200x200, 1000 pts", _points(200, 1000), "",
             "100x100, 100 pts", _points(100, 100)),
    Workload("charpoly_deriv", "50x50, 10000 pts", _points(50, 10_000), "",
             "50x50, 1000 pts", _points(50, 1000)),
    Workload("charpoly_deriv", "1000x1000, 1 pt", _points(1000, 1), "",
             "300x300, 1 pt", _points(300, 1)),
]


# ----------------------------------------------------------- contestants
def _matgrad(op: str, args: tuple[Any, ...], backend: str) -> Fn:
    f = getattr(_api, op)
    return lambda: f(*args, backend=backend)


def _numpy_formula(op: str, args: tuple[Any, ...]) -> Fn:
    import numpy.linalg as la

    if op == "frobenius_grad":
        (X,) = args
        return lambda: X / np.sqrt((X * X).sum(axis=(-2, -1), keepdims=True))
    if op == "bilinear_grad":
        x, y = args
        return lambda: x[..., :, None] * y[..., None, :]
    if op == "det_grad":
        (A,) = args
        return lambda: la.det(A)[..., None, None] * np.swapaxes(la.inv(A), -1, -2)
    (A, x) = args
    eye = np.eye(A.shape[-1])

    def charpoly() -> Any:
        M = x[:, None, None] * eye - A
        return la.det(M) * np.trace(la.inv(M), axis1=-2, axis2=-1)

    return charpoly


def _torch(op: str, args: tuple[Any, ...]) -> Fn | None:
    try:
        import torch
    except Exception:  # noqa: BLE001 - optional comparison only
        return None
    ts = [torch.from_numpy(np.ascontiguousarray(a)) for a in args]
    if op == "frobenius_grad":
        def f() -> Any:
            X = ts[0].detach().requires_grad_(True)
            torch.linalg.matrix_norm(X).sum().backward()
            return X.grad
    elif op == "bilinear_grad":
        def f() -> Any:
            x, y = ts
            A = torch.zeros(x.shape + y.shape[-1:], dtype=x.dtype, requires_grad=True)
            (x.unsqueeze(-2) @ A @ y.unsqueeze(-1)).sum().backward()
            return A.grad
    elif op == "det_grad":
        def f() -> Any:
            A = ts[0].detach().requires_grad_(True)
            torch.linalg.det(A).sum().backward()
            return A.grad
    else:
        def f() -> Any:
            A, x0 = ts
            x = x0.detach().requires_grad_(True)
            eye = torch.eye(A.shape[-1], dtype=A.dtype)
            torch.linalg.det(x[:, None, None] * eye - A).sum().backward()
            return x.grad
    return f


def _jax(op: str, args: tuple[Any, ...]) -> Fn | None:
    try:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
    except Exception:  # noqa: BLE001 - optional comparison only
        return None
    js = [jnp.asarray(a) for a in args]
    if op == "frobenius_grad":
        g = jax.jit(jax.grad(lambda X: jnp.linalg.norm(X, axis=(-2, -1)).sum()))
        return lambda: g(js[0]).block_until_ready()
    if op == "bilinear_grad":
        def bil(A: Any, x: Any, y: Any) -> Any:
            return jnp.einsum("...i,...ij,...j->", x, A, y)
        g = jax.jit(jax.grad(bil))
        x, y = js
        A = jnp.zeros(x.shape + y.shape[-1:])
        return lambda: g(A, x, y).block_until_ready()
    if op == "det_grad":
        g = jax.jit(jax.grad(lambda A: jnp.linalg.det(A).sum()))
        return lambda: g(js[0]).block_until_ready()
    A, x = js
    eye = jnp.eye(A.shape[-1])
    g = jax.jit(jax.grad(lambda x: jnp.linalg.det(x[:, None, None] * eye - A).sum()))
    return lambda: g(x).block_until_ready()


def _floor(kind: str, op: str, args: tuple[Any, ...]) -> Fn | None:
    if kind == "copy":
        return lambda: args[0].copy()
    if kind == "fill":
        x, y = args
        shape = (*np.broadcast_shapes(x.shape[:-1], y.shape[:-1]), x.shape[-1], y.shape[-1])
        return lambda: np.full(shape, 1.0)
    if kind == "inv":
        import scipy.linalg

        return lambda: scipy.linalg.inv(args[0])
    return None


# ----------------------------------------------------------- timing
@dataclass
class Result:
    op: str
    workload: str
    contestant: str
    median_s: float
    first_call_s: float
    repeats: int
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


#: Pause before each contestant: thread pools of the previous one (OpenBLAS,
#: PyTorch, XLA) spin for a while after their last call and would steal the
#: cores of a small machine from the next contestant's threads.
SETTLE_S = 0.3


def _time(fn: Fn, repeats: int, budget_s: float) -> tuple[float, float, int]:
    time.sleep(SETTLE_S)
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    times: list[float] = []
    while len(times) < repeats:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if sum(times) > budget_s and len(times) >= 1:
            break
    return statistics.median(times), first, len(times)


def run_bench(
    backends: Sequence[str] | None = None,
    quick: bool = False,
    repeats: int = 5,
    compare: bool = True,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[Result]:
    found = entries()
    names = list(backends) if backends else [n for n, e in found.items() if e.available]
    rng = np.random.default_rng(0)
    plan: list[tuple[Workload, str]] = []
    extra = ["numpy formula", "pytorch", "jax", "floor"] if compare else ["floor"]
    for w in WORKLOADS:
        for c in [*(f"matgrad[{n}]" for n in names), *extra]:
            plan.append((w, c))
    results: list[Result] = []
    built: dict[str, tuple[Any, ...]] = {}
    budget = 2.0 if quick else 10.0
    for i, (w, contestant) in enumerate(plan):
        label = w.quick_label if quick else w.label
        if progress:
            progress(i, len(plan), f"{w.op} {label}: {contestant}")
        key = f"{w.op} {label}"
        if key not in built:
            built.clear()  # one workload's inputs in memory at a time
            build = (w.quick_build or w.build) if quick else w.build
            built[key] = build(rng)
        args = built[key]
        fn: Fn | None
        if contestant.startswith("matgrad["):
            fn = _matgrad(w.op, args, contestant[8:-1])
        elif contestant == "numpy formula":
            fn = _numpy_formula(w.op, args)
        elif contestant == "pytorch":
            fn = _torch(w.op, args)
        elif contestant == "jax":
            fn = _jax(w.op, args)
        else:
            fn = _floor(w.floor, w.op, args)
            contestant = {"copy": "floor: X.copy()", "fill": "floor: np.full",
                          "inv": "floor: scipy.linalg.inv"}.get(w.floor, contestant)
        if fn is None:
            continue
        try:
            med, first, n = _time(fn, repeats, budget)
        except Exception as exc:  # noqa: BLE001 - a formula that raises is reported
            results.append(Result(w.op, label, contestant, float("nan"), float("nan"), 0,
                                  f"{type(exc).__name__}: {exc}"))
            continue
        results.append(Result(w.op, label, contestant, med, first, n))
    if progress:
        progress(len(plan), len(plan), "done")
    return results


def machine_info() -> dict[str, Any]:
    import scipy

    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }
    for mod in ("numba", "torch", "jax"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001
            pass
    return info


def table(results: list[Result]) -> list[list[str]]:
    """Rows: workload, contestant, median, first call, × NumPy formula, × floor."""
    rows = []
    for key in dict.fromkeys((r.op, r.workload) for r in results):
        group = [r for r in results if (r.op, r.workload) == key]
        base = next((r.median_s for r in group if r.contestant == "numpy formula"), None)
        floor = next((r.median_s for r in group if r.contestant.startswith("floor")), None)
        for r in group:
            if r.error:
                rows.append([f"{r.op} {r.workload}", r.contestant, "error", "", "", "",
                             r.error[:60]])
                continue
            rows.append([
                f"{r.op} {r.workload}",
                r.contestant,
                f"{r.median_s:.4g}",
                f"{r.first_call_s:.3g}",
                f"{base / r.median_s:.2f}x" if base else "",
                f"{r.median_s / floor:.2f}" if floor and not r.contestant.startswith("floor")
                else "",
                "",
            ])
    return rows


def to_json(results: list[Result]) -> str:
    return json.dumps({"machine": machine_info(),
                       "results": [dataclasses.asdict(r) for r in results]}, indent=1)


def plot(results: list[Result], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(dict.fromkeys(f"{r.op}\n{r.workload}" for r in results))
    contestants = list(dict.fromkeys(r.contestant for r in results))
    width = 0.8 / max(1, len(contestants))
    fig, ax = plt.subplots(figsize=(max(10, 1.3 * len(keys)), 6))
    for j, c in enumerate(contestants):
        xs, ys = [], []
        for i, k in enumerate(keys):
            r = next((r for r in results if f"{r.op}\n{r.workload}" == k
                      and r.contestant == c and not r.error), None)
            if r is not None:
                xs.append(i + (j - len(contestants) / 2 + 0.5) * width)
                ys.append(r.median_s)
        ax.bar(xs, ys, width=width, label=c)
    ax.set_yscale("log")
    ax.set_ylabel("median seconds per call (log scale, lower is better)")
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels(keys, fontsize=7)
    info = machine_info()
    ax.set_title(f"matgrad bench — {info['processor']}, {info['cpus']} CPUs, {info['date'][:10]}")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
