"""``matgrad bench``: side-by-side timings of every operation.

For each standard workload, every available backend runs next to the
textbook NumPy formula, PyTorch and JAX autodiff (when importable; never
required), and the floors measured the way matgrad works (a fresh output per
call): ``X.copy()`` for operations that read and write the input's size,
``np.full(output_shape, 1.0)`` for ``bilinear_grad``, ``scipy.linalg.inv``
for large ``det_grad``.  Medians of repeats after one warm-up call; the
warm-up (first call: JIT compilation, caches) is reported separately.

The ``autodiff`` group times what a training loop pays: forward plus
backward of ``det(A).sum()`` and ``slogdet(A).logabsdet.sum()`` through
``matgrad.torch``/``matgrad.jax`` against the framework's own ``linalg``
(jitted for JAX), in interleaved pairs, reported as ratios of medians with
interquartile ranges.
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
from ._operations import OPERATIONS, Workload
from ._registry import entries, list_backends

__all__ = [
    "AUTODIFF_CASES",
    "QUICK_REPEATS",
    "WORKLOADS",
    "AutodiffCase",
    "AutodiffResult",
    "Result",
    "Workload",
    "autodiff_table",
    "load_autodiff",
    "run_autodiff",
    "run_bench",
]

Array = np.ndarray
Fn = Callable[[], Any]


#: Every benchmark workload of the operation table: (operation, workload).
WORKLOADS: list[tuple[str, Workload]] = [
    (op.name, w) for op in OPERATIONS.values() for w in op.workloads
]


# ----------------------------------------------------------- contestants
def _matgrad(op: str, args: tuple[Any, ...], backend: str) -> Fn:
    f = getattr(_api, op)
    return lambda: f(*args, backend=backend)


def _numpy_formula(op: str, args: tuple[Any, ...]) -> Fn:
    textbook = OPERATIONS[op].textbook
    return lambda: textbook(*args)


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
    elif op == "logdet_grad":
        def f() -> Any:
            A = ts[0].detach().requires_grad_(True)
            torch.linalg.slogdet(A).logabsdet.sum().backward()
            return A.grad
    else:  # charpoly_deriv
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
        A = jnp.zeros(x.shape + y.shape[-1:], dtype=x.dtype)
        return lambda: g(A, x, y).block_until_ready()
    if op == "det_grad":
        g = jax.jit(jax.grad(lambda A: jnp.linalg.det(A).sum()))
        return lambda: g(js[0]).block_until_ready()
    if op == "logdet_grad":
        g = jax.jit(jax.grad(lambda A: jnp.linalg.slogdet(A)[1].sum()))
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
        return lambda: np.full(shape, 1.0, dtype=x.dtype)
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
    #: quartiles of the repeats (the interquartile range is q3_s − q1_s)
    q1_s: float = float("nan")
    q3_s: float = float("nan")


#: Pause before each timed call: thread pools of the previous contestant
#: (OpenBLAS, PyTorch, XLA) spin for a while after their last call and would
#: steal the cores of a small machine from the next contestant's threads.
SETTLE_S = 0.3
#: The same pause in quick runs (shorter: a quick run trades some noise for
#: minutes).
SETTLE_QUICK_S = 0.1
#: Interleaved rounds per workload, at least: every contestant is timed once
#: per round, so that a noisy stretch of the machine hits all of them alike.
MIN_REPEATS = 7
#: ``bench --quick``: float64 workloads only, this many rounds by default and
#: this pause (the pause alone was 0.1 s × 56 timed calls × 24 workloads =
#: 2¼ minutes of the 2–5 minutes a quick run took); its numbers are noisier,
#: which is what quick means.
QUICK_REPEATS = 3
QUICK_SETTLE_S = 0.02

_FLOOR_NAMES = {"copy": "floor: X.copy()", "fill": "floor: np.full",
                "inv": "floor: scipy.linalg.inv"}


def _contestants(
    op: str, w: Workload, args: tuple[Any, ...], names: Sequence[str], compare: bool
) -> list[tuple[str, Fn]]:
    """(name, zero-argument call) of everything timed on one workload."""
    found: list[tuple[str, Fn | None]] = [
        (f"matgrad[{n}]", _matgrad(op, args, n)) for n in names
    ]
    if compare:
        found += [("numpy formula", _numpy_formula(op, args)), ("pytorch", _torch(op, args)),
                  ("jax", _jax(op, args))]
    found.append((_FLOOR_NAMES.get(w.floor, "floor"), _floor(w.floor, op, args)))
    return [(name, fn) for name, fn in found if fn is not None]


def _timed_call(fn: Fn, settle_s: float) -> float:
    time.sleep(settle_s)
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _quartiles(times: Sequence[float]) -> tuple[float, float, float]:
    if len(times) < 2:
        return times[0], times[0], times[0]
    q1, q2, q3 = statistics.quantiles(times, n=4, method="inclusive")
    return q1, q2, q3


def _run_workload(
    op: str, label: str, contestants: list[tuple[str, Fn]], repeats: int, settle_s: float
) -> list[Result]:
    """First call of each contestant (compilation, caches), then ``repeats``
    interleaved rounds; medians and quartiles per contestant."""
    first: dict[str, float] = {}
    errors: dict[str, str] = {}
    for name, fn in contestants:
        try:
            first[name] = _timed_call(fn, settle_s)
        except Exception as exc:  # noqa: BLE001 - a formula that raises is reported
            errors[name] = f"{type(exc).__name__}: {exc}"
    live = [(name, fn) for name, fn in contestants if name not in errors]
    times: dict[str, list[float]] = {name: [] for name, _ in live}
    for _ in range(repeats):
        for name, fn in live:
            times[name].append(_timed_call(fn, settle_s))
    results = []
    for name, _ in contestants:
        if name in errors:
            results.append(Result(op, label, name, float("nan"), float("nan"), 0, errors[name]))
            continue
        q1, med, q3 = _quartiles(times[name])
        results.append(Result(op, label, name, med, first[name], len(times[name]),
                              q1_s=q1, q3_s=q3))
    return results


def run_bench(
    backends: Sequence[str] | None = None,
    quick: bool = False,
    repeats: int = MIN_REPEATS,
    compare: bool = True,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[Result]:
    """Every workload of the operation table, its contestants interleaved."""
    if repeats < 1:  # each median needs a timed call
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    found = entries()
    names = list(backends) if backends else [n for n, e in found.items() if e.available]
    rng = np.random.default_rng(0)
    settle_s = QUICK_SETTLE_S if quick else SETTLE_S
    results: list[Result] = []
    plan = [(op, w, dtype) for op, w in WORKLOADS for dtype in w.dtypes
            if not quick or dtype == "float64"]
    for i, (op, w, dtype) in enumerate(plan):
        label = w.quick_label if quick else w.label
        if dtype != "float64":
            label += f" {dtype}"
        if progress:
            progress(i, len(plan), f"{op} {label}")
        # one workload in memory at a time
        args = tuple(np.asarray(a, dtype=dtype) for a in (w.quick_build if quick else w.build)(rng))
        contestants = _contestants(op, w, args, names, compare)
        results += _run_workload(op, label, contestants, repeats, settle_s)
        del args, contestants
    if progress:
        progress(len(plan), len(plan), "done")
    return results


# ----------------------------------------------------------- autodiff group
@dataclass
class AutodiffCase:
    """``loss = f(A).sum()`` (``f = det``) or ``slogdet(A).logabsdet.sum()``,
    forward plus backward, through ``matgrad.<framework>`` and through the
    framework's own ``linalg``."""

    func: str  # "det" or "slogdet"
    B: int
    n: int
    quick_B: int
    #: target speed-up of matgrad over the framework, per framework (None:
    #: none); 1.0 means "faster" (strictly), any other k "at least k×"
    targets: dict[str, float | None]

    def label(self, quick: bool) -> str:
        B = self.quick_B if quick else self.B
        what = "slogdet, SPD" if self.func == "slogdet" else "det"
        return f"{what} {B}x{self.n}x{self.n}"

    def build(self, rng: np.random.Generator, quick: bool) -> Array:
        B = self.quick_B if quick else self.B
        A = rng.standard_normal((B, self.n, self.n))
        if self.func == "slogdet":  # SPD, well conditioned: G Gᵀ/n + I
            A = A @ A.transpose(0, 2, 1) / self.n + np.eye(self.n)
        return A


AUTODIFF_CASES: list[AutodiffCase] = [
    AutodiffCase("det", 1_000_000, 3, 100_000, {"pytorch": 3.0, "jax": None}),
    AutodiffCase("det", 200_000, 4, 20_000, {"pytorch": 3.0, "jax": 1.0}),
    AutodiffCase("det", 20_000, 16, 2_000, {"pytorch": 1.5, "jax": 1.0}),
    AutodiffCase("slogdet", 100_000, 8, 10_000, {"pytorch": 1.5, "jax": None}),
]

#: Interleaved timed repeats per autodiff row (at least this many).
AUTODIFF_REPEATS = 7


@dataclass
class AutodiffResult:
    framework: str  # "pytorch" or "jax"
    workload: str
    matgrad_s: list[float]
    native_s: list[float]
    first_s: tuple[float, float]  # warm-up calls (matgrad, native)
    target: float | None
    grad_diff: float  # max |Δ gradient| / max |gradient| between the two
    error: str = ""

    @property
    def speedup(self) -> float:
        """Ratio of medians: the framework's median over matgrad's."""
        return statistics.median(self.native_s) / statistics.median(self.matgrad_s)

    @property
    def met(self) -> bool | None:
        if self.target is None or self.error:
            return None
        if self.target == 1.0:  # "faster": in at least 3 of 4 interleaved pairs
            return self.pair_quartiles[0] > 1.0
        return self.speedup >= self.target

    @property
    def pair_quartiles(self) -> tuple[float, float]:
        """Lower and upper quartiles of the per-pair ratios (framework over
        matgrad, each pair timed back to back)."""
        pairs = [b / a for a, b in zip(self.matgrad_s, self.native_s, strict=True)]
        q = statistics.quantiles(pairs, n=4, method="inclusive")
        return q[0], q[2]


def _iqr(xs: Sequence[float]) -> float:
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[2] - q[0]


def _torch_pair(case: AutodiffCase, A: Array) -> tuple[Fn, Fn] | None:
    try:
        import torch

        from . import torch as mt
    except Exception:  # noqa: BLE001 - optional comparison only
        return None
    T = torch.from_numpy(A)

    def step(loss: Callable[[Any], Any]) -> Fn:
        def f() -> Any:
            X = T.detach().requires_grad_(True)
            loss(X).backward()
            return X.grad

        return f

    if case.func == "det":
        return (step(lambda X: mt.det(X).sum()),
                step(lambda X: torch.linalg.det(X).sum()))
    return (step(lambda X: mt.slogdet(X)[1].sum()),
            step(lambda X: torch.linalg.slogdet(X).logabsdet.sum()))


def _jax_pair(case: AutodiffCase, A: Array) -> tuple[Fn, Fn] | None:
    try:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        from . import jax as mj
    except Exception:  # noqa: BLE001 - optional comparison only
        return None
    J = jnp.asarray(A)
    if case.func == "det":
        gm = jax.jit(jax.grad(lambda X: mj.det(X).sum()))
        gn = jax.jit(jax.grad(lambda X: jnp.linalg.det(X).sum()))
    else:
        gm = jax.jit(jax.grad(lambda X: mj.slogdet(X)[1].sum()))
        gn = jax.jit(jax.grad(lambda X: jnp.linalg.slogdet(X)[1].sum()))
    return (lambda: gm(J).block_until_ready(), lambda: gn(J).block_until_ready())


def _timed(fn: Fn) -> tuple[float, Any]:
    time.sleep(SETTLE_S)
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run_autodiff(
    quick: bool = False,
    repeats: int = AUTODIFF_REPEATS,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[AutodiffResult]:
    """The autodiff group: for each case and framework, matgrad and the
    framework's own rule timed in interleaved pairs (the order alternating
    from one repeat to the next) after one warm-up call each, so that both
    see the same machine load; ``repeats`` is raised to at least 7."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    repeats = max(AUTODIFF_REPEATS, repeats)
    rng = np.random.default_rng(0)
    results: list[AutodiffResult] = []
    frameworks = (("pytorch", _torch_pair), ("jax", _jax_pair))
    total = len(AUTODIFF_CASES) * len(frameworks)
    step = 0
    for case in AUTODIFF_CASES:
        A = case.build(rng, quick)
        label = case.label(quick)
        for name, pair in frameworks:
            if progress:
                progress(step, total, f"autodiff {name} {label}")
            step += 1
            fns = pair(case, A)
            if fns is None:
                continue
            target = case.targets.get(name)
            try:
                (fm, gm), (fn_, gn) = _timed(fns[0]), _timed(fns[1])
                gm, gn = np.asarray(gm), np.asarray(gn)
                diff = float(np.abs(gm - gn).max() / np.abs(gn).max())
                tm: list[float] = []
                tn: list[float] = []
                for i in range(repeats):
                    order = ((fns[0], tm), (fns[1], tn))
                    for fn, into in (order if i % 2 == 0 else order[::-1]):
                        into.append(_timed(fn)[0])
            except Exception as exc:  # noqa: BLE001 - reported in the table
                results.append(AutodiffResult(name, label, [], [], (float("nan"),) * 2,
                                              target, float("nan"),
                                              f"{type(exc).__name__}: {exc}"))
                continue
            results.append(AutodiffResult(name, label, tm, tn, (fm, fn_), target, diff))
    if progress:
        progress(total, total, "done")
    return results


AUTODIFF_HEADERS = ["framework", "workload (forward + backward)", "matgrad s (IQR)",
                    "framework s (IQR)", "speed-up", "per-pair IQR", "target", "met",
                    "grad diff"]


def autodiff_table(results: list[AutodiffResult]) -> list[list[str]]:
    """One row per (framework, workload): medians with their IQRs, the ratio
    of medians, the IQR of the per-pair ratios, the target (``> 1x``:
    faster in at least three of four pairs; ``>= k``: ratio of medians),
    and the largest difference between the two gradients relative to the
    largest entry."""
    rows = []
    for r in results:
        if r.error:
            rows.append([r.framework, r.workload, "error", "", "", "", "", "", r.error[:60]])
            continue
        q = r.pair_quartiles
        rows.append([
            r.framework,
            r.workload,
            f"{statistics.median(r.matgrad_s):.4g} ({_iqr(r.matgrad_s):.2g})",
            f"{statistics.median(r.native_s):.4g} ({_iqr(r.native_s):.2g})",
            f"{r.speedup:.2f}x",
            f"{q[0]:.2f}-{q[1]:.2f}x",
            "-" if r.target is None else ("> 1x" if r.target == 1.0 else f">= {r.target:g}x"),
            {None: "-", True: "yes", False: "MISS"}[r.met],
            f"{r.grad_diff:.1e}",
        ])
    return rows


def load_autodiff(text: str) -> list[AutodiffResult]:
    """The autodiff results of a ``matgrad bench --json`` file (to render the
    table again without re-running it)."""
    fields = {f.name for f in dataclasses.fields(AutodiffResult)}
    out = []
    for r in json.loads(text).get("autodiff", []):
        kw = {k: v for k, v in r.items() if k in fields}
        kw["first_s"] = tuple(kw["first_s"])
        out.append(AutodiffResult(**kw))
    return out


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
    # each available backend reports what does its work; the frameworks are
    # the comparison contestants
    info["backends"] = {b.name: b.version for b in list_backends() if b.available}
    for mod in ("torch", "jax"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001
            pass
    return info


def table(results: list[Result]) -> list[list[str]]:
    """Rows: workload, contestant, median [interquartile range], first call,
    speed-up over the NumPy formula, multiple of the floor (ratios of medians)."""
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
                f"{r.median_s:.4g} [{r.q1_s:.3g}–{r.q3_s:.3g}]",
                f"{r.first_call_s:.3g}",
                f"{base / r.median_s:.2f}x" if base else "",
                f"{r.median_s / floor:.2f}" if floor and not r.contestant.startswith("floor")
                else "",
                "",
            ])
    return rows


def to_json(results: list[Result], autodiff: list[AutodiffResult] | None = None) -> str:
    out: dict[str, Any] = {"machine": machine_info(),
                           "results": [dataclasses.asdict(r) for r in results]}
    if autodiff is not None:
        out["autodiff"] = [{**dataclasses.asdict(r), "speedup": r.speedup if not r.error
                            else None, "met": r.met} for r in autodiff]
    return json.dumps(out, indent=1)


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
