"""Characteristic-polynomial kernels.

``hessenberg``: Householder reduction, one matrix per work item
(LAPACK ``gehrd`` through :mod:`matgrad.kernels.charpoly` for large ``n``).
``hyman``: for every (matrix, point) pair, Hyman's recurrence on
``M = xI − H`` and its derivative, O(n²) per point, with the diagonal blocks
of a reducible ``H`` handled one after another (``p = Π p_b``,
``p′ = Σ p′_b Π_{c≠b} p_c``) and every running quantity kept as
mantissa·2ᵉ (:func:`matgrad.kernels.scalar.hyman_point`, compiled for the
CPU and called).  Nothing divides by ``x − λ``: exact at eigenvalues.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from matgrad.kernels.scalar import compile_scalar

__all__ = ["hessenberg", "hyman"]

# bound at module level, a global of the kernel (see matgrad.kernels.scalar)
hyman_point = compile_scalar("cpu").hyman_point


@nb.njit(nogil=True, cache=True)
def hessenberg(H, lo, hi):  # type: ignore[no-untyped-def]
    """Reduce each ``H[b]``, ``lo ≤ b < hi``, in place to upper Hessenberg form
    (P H P, P = I − 2vvᴴ)."""
    n = H.shape[1]
    v = np.empty(n, dtype=H.dtype)
    w = np.empty(n, dtype=H.dtype)
    for b in range(lo, hi):
        for k in range(n - 2):
            norm2 = 0.0
            for i in range(k + 1, n):
                norm2 += abs(H[b, i, k]) ** 2  # entries ≤ 1 after scaling
            norm = math.sqrt(norm2)
            if norm == 0.0:
                continue
            x0 = H[b, k + 1, k]
            mag0 = abs(x0)
            phase = x0 / mag0 if mag0 != 0 else x0 * 0 + 1
            for i in range(k + 1, n):
                v[i] = H[b, i, k]
            v[k + 1] += phase * norm  # x − α e₁, α = −phase·‖x‖: no cancellation
            vn2 = 0.0
            for i in range(k + 1, n):
                vn2 += abs(v[i]) ** 2
            vn = math.sqrt(vn2)
            for i in range(k + 1, n):
                v[i] = v[i] / vn
            # left: rows k+1.., columns k..
            for j in range(k, n):
                s = H[b, k + 1, j] * 0
                for i in range(k + 1, n):
                    s += v[i].conjugate() * H[b, i, j]
                w[j] = 2 * s
            for i in range(k + 1, n):
                for j in range(k, n):
                    H[b, i, j] -= v[i] * w[j]
            # right: all rows, columns k+1..
            for i in range(n):
                s = H[b, i, k + 1] * 0
                for j in range(k + 1, n):
                    s += H[b, i, j] * v[j]
                s = 2 * s
                for j in range(k + 1, n):
                    H[b, i, j] -= s * v[j].conjugate()
            for i in range(k + 2, n):
                H[b, i, k] = 0


@nb.njit(nogil=True, cache=True)
def hyman(H, sub, x, pm, dpm, pe, dpe, lo, hi):  # type: ignore[no-untyped-def]
    """Fill ``pm, dpm, pe, dpe (B, K)`` for the (matrix, point) pairs
    ``lo ≤ b·K + k < hi`` (one workspace per range)."""
    n = H.shape[1]
    K = x.shape[1]
    v = np.empty(n, dtype=x.dtype)
    dv = np.empty(n, dtype=x.dtype)
    for t in range(lo, hi):
        b = t // K
        k = t - b * K
        pm[b, k], dpm[b, k], pe[b, k], dpe[b, k] = hyman_point(H[b], sub[b], x[b, k], v, dv)
