"""GPU benchmark for the cupy backend; writes ``asv_bench/results-gpu.md``.

    python asv_bench/gpu_bench.py --out asv_bench/results-gpu.md

Needs a CUDA device, CuPy and numba-cuda (PyTorch CUDA optional).  Reports,
each side by side with the plain CuPy formula and PyTorch CUDA autograd:
achieved GB/s against the device's measured copy bandwidth for Frobenius
(8192² float32 and float64) and bilinear (8192² output), matrices/s for
10 000 000 × 3×3 ``det_grad``, and ``charpoly_deriv`` of 1000×1000 at
10 000 points.  Times are CUDA-event medians after a warm-up call, with the
device synchronised before each timer stops.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
from collections.abc import Callable
from typing import Any


def _timer(cp: Any, fn: Callable[[], Any], repeats: int = 5) -> float:
    fn()
    cp.cuda.get_current_stream().synchronize()
    times = []
    for _ in range(repeats):
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop) / 1000.0)
    return statistics.median(times)


def _torch() -> Any:
    try:
        import torch

        return torch if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001 - optional
        return None


def main() -> None:
    import cupy as cp

    import matgrad

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="asv_bench/results-gpu.md")
    ap.add_argument("--n3", type=int, default=10_000_000)
    args = ap.parse_args()
    torch = _torch()
    rows: list[str] = []
    rng = cp.random.default_rng(0)

    def row(workload: str, who: str, t: float, metric: str) -> None:
        rows.append(f"| {workload} | {who} | {t * 1e3:.3f} | {metric} |")

    # --- copy bandwidth (read + write)
    copy_bw = {}
    for dt in ("float32", "float64"):
        X = rng.standard_normal((8192, 8192), dtype=dt)
        t = _timer(cp, lambda X=X: X.copy())
        copy_bw[dt] = 2 * X.nbytes / t / 1e9
        row(f"copy 8192² {dt}", "X.copy()", t, f"{copy_bw[dt]:.0f} GB/s")

    # --- Frobenius: reads X twice, writes once; GB/s counted as copy: in + out
    for dt in ("float32", "float64"):
        X = rng.standard_normal((8192, 8192), dtype=dt)
        gbs = lambda t, X=X: 2 * X.nbytes / t / 1e9  # noqa: E731
        t = _timer(cp, lambda X=X: matgrad.frobenius_grad(X))
        row(f"frobenius_grad 8192² {dt}", "matgrad[cupy]", t,
            f"{gbs(t):.0f} GB/s = {gbs(t) / copy_bw[dt]:.0%} of copy")
        t = _timer(cp, lambda X=X: X / cp.linalg.norm(X))
        row(f"frobenius_grad 8192² {dt}", "X / cupy.linalg.norm(X)", t, f"{gbs(t):.0f} GB/s")
        if torch is not None:
            tX = torch.as_tensor(X, device="cuda")

            def tf(tX: Any = tX) -> None:
                Y = tX.detach().requires_grad_(True)
                torch.linalg.matrix_norm(Y).backward()
            t = _timer(cp, tf)
            row(f"frobenius_grad 8192² {dt}", "PyTorch autograd", t, f"{gbs(t):.0f} GB/s")

    # --- bilinear: writes an 8192² output
    x = rng.standard_normal(8192)
    y = rng.standard_normal(8192)
    out_bytes = 8192 * 8192 * 8
    t_fill = _timer(cp, lambda: cp.full((8192, 8192), 1.0))
    row("bilinear_grad 8192²", "cupy.full (fill floor)", t_fill,
        f"{out_bytes / t_fill / 1e9:.0f} GB/s")
    t = _timer(cp, lambda: matgrad.bilinear_grad(x, y))
    row("bilinear_grad 8192²", "matgrad[cupy]", t,
        f"{out_bytes / t / 1e9:.0f} GB/s = {out_bytes / t / 1e9 / copy_bw['float64']:.0%} of copy")
    t = _timer(cp, lambda: cp.outer(x, y))
    row("bilinear_grad 8192²", "cupy.outer", t, f"{out_bytes / t / 1e9:.0f} GB/s")
    if torch is not None:
        tx, ty = torch.as_tensor(x, device="cuda"), torch.as_tensor(y, device="cuda")

        def tb() -> None:
            A = torch.zeros((8192, 8192), dtype=tx.dtype, device="cuda", requires_grad=True)
            (tx @ A @ ty).backward()
        t = _timer(cp, tb)
        row("bilinear_grad 8192²", "PyTorch autograd", t, f"{out_bytes / t / 1e9:.0f} GB/s")

    # --- det_grad of many 3×3: matrices/s, and bandwidth (in + out)
    A = rng.standard_normal((args.n3, 3, 3))
    t = _timer(cp, lambda: matgrad.det_grad(A))
    row(f"det_grad {args.n3}×3×3", "matgrad[cupy]", t,
        f"{args.n3 / t:.3g} matrices/s; {2 * A.nbytes / t / 1e9:.0f} GB/s = "
        f"{2 * A.nbytes / t / 1e9 / copy_bw['float64']:.0%} of copy")
    t = _timer(cp, lambda: cp.linalg.det(A)[:, None, None] * cp.linalg.inv(A).transpose(0, 2, 1))
    row(f"det_grad {args.n3}×3×3", "det * inv (CuPy)", t, f"{args.n3 / t:.3g} matrices/s")
    if torch is not None:
        tA = torch.as_tensor(A, device="cuda")

        def td() -> None:
            Y = tA.detach().requires_grad_(True)
            torch.linalg.det(Y).sum().backward()
        t = _timer(cp, td)
        row(f"det_grad {args.n3}×3×3", "PyTorch autograd", t, f"{args.n3 / t:.3g} matrices/s")

    # --- charpoly_deriv: 1000×1000 at 10 000 points
    n, k = 1000, 10_000
    M = cp.eye(n) + rng.standard_normal((n, n)) / (2 * n**0.5)
    pts = rng.standard_normal(k)
    t = _timer(cp, lambda: matgrad.charpoly_deriv(M, pts), repeats=3)
    row(f"charpoly_deriv {n}² at {k} pts", "matgrad[cupy]", t, f"{k / t:.3g} points/s")
    eye = cp.eye(n)

    def formula(chunk: int = 50) -> None:  # det·tr(inv) per point, in chunks
        for i in range(0, k, chunk):
            Mx = pts[i:i + chunk, None, None] * eye - M
            cp.linalg.det(Mx) * cp.trace(cp.linalg.inv(Mx), axis1=1, axis2=2)
    t = _timer(cp, formula, repeats=1)
    row(f"charpoly_deriv {n}² at {k} pts", "det·tr(inv) (CuPy, 50 pts/batch)", t,
        f"{k / t:.3g} points/s")
    if torch is not None:
        tM = torch.as_tensor(M, device="cuda")
        tp = torch.as_tensor(pts, device="cuda")
        teye = torch.eye(n, dtype=tM.dtype, device="cuda")

        def tc(chunk: int = 50) -> None:
            for i in range(0, k, chunk):
                xs = tp[i:i + chunk].detach().requires_grad_(True)
                torch.linalg.det(xs[:, None, None] * teye - tM).sum().backward()
        t = _timer(cp, tc, repeats=1)
        row(f"charpoly_deriv {n}² at {k} pts", "PyTorch autograd (50 pts/batch)", t,
            f"{k / t:.3g} points/s")

    dev = cp.cuda.Device()
    name = cp.cuda.runtime.getDeviceProperties(dev.id)["name"].decode()
    head = [
        "# matgrad GPU benchmark (cupy backend)",
        "",
        f"Command: `python asv_bench/gpu_bench.py --out {args.out}`  ",
        f"Device: {name}; date {datetime.date.today()}; {platform.platform()}  ",
        f"CuPy {cp.__version__}, CUDA runtime {cp.cuda.runtime.runtimeGetVersion()}, "
        f"matgrad {matgrad.__version__}"
        + (f", PyTorch {torch.__version__}" if torch is not None else ", PyTorch: not installed"),
        "",
        "| workload | contestant | median ms | throughput |",
        "|---|---|---|---|",
    ]
    text = "\n".join(head + rows) + "\n"
    with open(args.out, "w", encoding="utf-8") as fh:
        fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
