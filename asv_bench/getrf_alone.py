"""LU alone: SciPy's LAPACK (OpenBLAS) against PyTorch's (MKL) and JAX's.

``det_grad`` and ``logdet_grad`` of large matrices, and ``charpoly_deriv`` at
one point, ride on one LU factorisation (``getrf``) plus triangular work; this
times ``getrf`` and the full inverse of each library side by side, in
interleaved rounds (medians and interquartile ranges), so that a gap to
PyTorch can be told apart from the LAPACK underneath.  Run:
``python asv_bench/getrf_alone.py`` (needs torch and jax).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import scipy.linalg


def _time_size(n: int, rounds: int) -> None:
    import jax
    import jax.numpy as jnp
    import torch

    lu_jit = jax.jit(jax.scipy.linalg.lu_factor)
    A = np.random.default_rng(0).standard_normal((n, n))
    At = torch.from_numpy(A.copy())
    Aj = jnp.asarray(A)
    (getrf,) = scipy.linalg.get_lapack_funcs(("getrf",), (A,))
    calls: dict[str, Callable[[], object]] = {
        "scipy getrf (OpenBLAS)": lambda: getrf(A, overwrite_a=False),
        "torch.linalg.lu_factor (MKL)": lambda: torch.linalg.lu_factor(At),
        "jax lu_factor (jit)": lambda: jax.block_until_ready(lu_jit(Aj)),
        "scipy.linalg.inv (OpenBLAS)": lambda: scipy.linalg.inv(A),
        "torch.linalg.inv (MKL)": lambda: torch.linalg.inv(At),
    }
    for f in calls.values():
        f()
    times: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(rounds):
        for k, f in calls.items():
            time.sleep(0.1)  # let the previous library's threads go idle
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    for k, v in times.items():
        q1, med, q3 = np.percentile(v, [25, 50, 75]) * 1e3
        print(f"n={n}  {k:30s} {med:8.1f} ms  [{q1:.1f}-{q3:.1f}]")


def main(sizes: tuple[int, ...] = (1000, 2000), rounds: int = 9) -> None:
    import jax

    jax.config.update("jax_enable_x64", True)
    for n in sizes:
        _time_size(n, rounds)


if __name__ == "__main__":
    main()
