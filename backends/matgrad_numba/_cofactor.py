"""Cofactor (∇det) and inverse-transpose (∇log|det|) kernels (NUMERICS §2).

``n = 2, 3``: closed forms, one matrix per iteration, computed in float64 /
complex128 (float32 products are then exact); a slot whose intermediate
products over- or underflow is redone with rows scaled by powers of two.
``4 ≤ n < LAPACK_MIN_N``: per matrix, in parallel: power-of-two
equilibration ``Ã = D_r A D_c`` (when rows are not already within 2^±8),
Gauss-Jordan inversion with partial pivoting (n³ flops; the pivots are LU's),
``det`` as mantissa·2ᵉ, and ``C = det·Ã⁻ᵀ`` rescaled exactly.  Slots whose LU
shows a pivot ``|u_kk| ≤ 4·n·eps·max|ã|`` are flagged and finished by the
NumPy backend's rank-revealing (SVD) path; larger ``n`` goes to LAPACK.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from numba import prange

from ._common import exponent, mag1, mul_pow2

__all__ = ["LAPACK_MIN_N", "closed_form", "lu_kernel"]

LAPACK_MIN_N = 64
OK, FALLBACK, NONFINITE = 0, 1, 2
_EPS = np.finfo(np.float64).eps


@nb.njit(inline="always", cache=True)
def _cof3(a00, a01, a02, a10, a11, a12, a20, a21, a22):  # type: ignore[no-untyped-def]
    return (
        a11 * a22 - a12 * a21, a12 * a20 - a10 * a22, a10 * a21 - a11 * a20,
        a21 * a02 - a22 * a01, a22 * a00 - a20 * a02, a20 * a01 - a21 * a00,
        a01 * a12 - a02 * a11, a02 * a10 - a00 * a12, a00 * a11 - a01 * a10,
    )


@nb.njit(parallel=True, cache=True)
def closed_form(A, C):  # type: ignore[no-untyped-def]
    """Cofactors of 2×2 or 3×3 matrices (A in float64/complex128)."""
    B, n, _ = A.shape
    for b in prange(B):
        if n == 2:
            C[b, 0, 0] = A[b, 1, 1]
            C[b, 0, 1] = -A[b, 1, 0]
            C[b, 1, 0] = -A[b, 0, 1]
            C[b, 1, 1] = A[b, 0, 0]
            continue
        a = A[b]
        c = _cof3(a[0, 0], a[0, 1], a[0, 2], a[1, 0], a[1, 1], a[1, 2],
                  a[2, 0], a[2, 1], a[2, 2])
        ok = True
        for v in c:
            if not (abs(v) < math.inf):
                ok = False
        if not ok:
            finite = True
            for i in range(3):
                for j in range(3):
                    if not (abs(a[i, j]) < math.inf):
                        finite = False
            if finite:
                # Rows scaled to max ≈ 1: C(DA) = det(D) D⁻¹ C(A).
                k0 = -exponent(max(abs(a[0, 0]), abs(a[0, 1]), abs(a[0, 2])))
                k1 = -exponent(max(abs(a[1, 0]), abs(a[1, 1]), abs(a[1, 2])))
                k2 = -exponent(max(abs(a[2, 0]), abs(a[2, 1]), abs(a[2, 2])))
                c = _cof3(
                    mul_pow2(a[0, 0], k0), mul_pow2(a[0, 1], k0), mul_pow2(a[0, 2], k0),
                    mul_pow2(a[1, 0], k1), mul_pow2(a[1, 1], k1), mul_pow2(a[1, 2], k1),
                    mul_pow2(a[2, 0], k2), mul_pow2(a[2, 1], k2), mul_pow2(a[2, 2], k2),
                )
                c = (
                    mul_pow2(c[0], -k1 - k2), mul_pow2(c[1], -k1 - k2), mul_pow2(c[2], -k1 - k2),
                    mul_pow2(c[3], -k0 - k2), mul_pow2(c[4], -k0 - k2), mul_pow2(c[5], -k0 - k2),
                    mul_pow2(c[6], -k0 - k1), mul_pow2(c[7], -k0 - k1), mul_pow2(c[8], -k0 - k1),
                )
        C[b, 0, 0], C[b, 0, 1], C[b, 0, 2] = c[0], c[1], c[2]
        C[b, 1, 0], C[b, 1, 1], C[b, 1, 2] = c[3], c[4], c[5]
        C[b, 2, 0], C[b, 2, 1], C[b, 2, 2] = c[6], c[7], c[8]


@nb.njit(cache=True)
def _one(A, out, W, perm, fr, fc, inverse_t):  # type: ignore[no-untyped-def]
    """One matrix: returns OK, FALLBACK or NONFINITE; fills ``out`` when OK.

    In-place Gauss-Jordan inversion with partial pivoting (n³ flops).  Its
    pivots are those of LU with partial pivoting, so ``det`` (their product)
    and ``Ã⁻¹`` come from one elimination, which is what keeps ``det·Ã⁻ᵀ``
    accurate for ill-conditioned matrices.
    """
    n = A.shape[0]
    # row maxima; a non-finite entry makes the slot NONFINITE
    rlo = 10**6
    rhi = -(10**6)
    for i in range(n):
        m = 0.0
        for j in range(n):
            v = abs(A[i, j])
            if not v < math.inf:
                return NONFINITE
            m = max(m, v)
        e = exponent(m)
        fr[i] = e  # temporarily the exponent
        rlo = min(rlo, e)
        rhi = max(rhi, e)
    # power-of-two equilibration, skipped when rows are already within 2^±8
    scaled = rlo < -8 or rhi > 8
    rsum = 0
    csum = 0
    if scaled:
        for i in range(n):
            e = -int(fr[i])
            e = min(max(e, -1000), 1000)
            rsum += e
            fr[i] = math.ldexp(1.0, e)
        for j in range(n):
            m = 0.0
            for i in range(n):
                m = max(m, abs(A[i, j]) * fr[i])
            e = min(max(-exponent(m), -1000), 1000)
            csum += e
            fc[j] = math.ldexp(1.0, e)
        for i in range(n):
            for j in range(n):
                W[i, j] = A[i, j] * fr[i] * fc[j]
        amax = 1.0  # every |ã_ij| < 1 after equilibration
    else:
        amax = 0.0
        for i in range(n):
            fr[i] = 1.0
            fc[i] = 1.0
            for j in range(n):
                W[i, j] = A[i, j]
            for j in range(n):
                amax = max(amax, abs(W[i, j]))
    for i in range(n):
        perm[i] = i
    tol = 4.0 * n * _EPS * amax
    # Gauss-Jordan, in place; det = sign·Π pivots kept as dm·2^de
    dm = W[0, 0] * 0 + 1.0
    de = 0
    for k in range(n):
        p = k
        best = mag1(W[k, k])
        for i in range(k + 1, n):
            v = mag1(W[i, k])
            if v > best:
                best, p = v, i
        if p != k:
            for j in range(n):
                W[k, j], W[p, j] = W[p, j], W[k, j]
            perm[k], perm[p] = perm[p], perm[k]
            dm = -dm
        piv = W[k, k]
        if inverse_t:
            if piv == 0:
                return NONFINITE
        elif abs(piv) <= tol:
            return FALLBACK
        dm = dm * piv
        mag = abs(dm)
        if mag > 1e150 or mag < 1e-150:
            ke = exponent(mag)
            dm = mul_pow2(dm, -ke)
            de += ke
        inv = 1.0 / piv
        W[k, k] = 1.0
        for j in range(n):
            W[k, j] = W[k, j] * inv
        for i in range(n):
            f = W[i, k]
            if i != k and f != 0:
                W[i, k] = 0.0
                for j in range(n):
                    W[i, j] -= f * W[k, j]
    # W is now Ã⁻¹ with its columns permuted: Ã⁻¹[:, perm[j]] = W[:, j]
    if inverse_t:
        # A⁻¹ = D_c Ã⁻¹ D_r: (A⁻ᵀ)_ij = (Ã⁻¹)_ji · fr_i · fc_j, conjugated
        for j in range(n):
            pj = perm[j]
            for i in range(n):
                out[pj, i] = W[i, j].conjugate() * fr[pj] * fc[i]
        for i in range(n):
            for j in range(n):
                if not (abs(out[i, j]) < math.inf):
                    return NONFINITE
        return OK
    # C(A)_ij = det(Ã)·(Ã⁻¹)_ji · 2^(r_i + c_j − Σr − Σc), with det = dm·2^de
    g = de - rsum - csum
    if -900 <= g <= 900:
        scale = dm * math.ldexp(1.0, g)
        if scaled:
            for j in range(n):
                pj = perm[j]
                sj = scale * fr[pj]
                for i in range(n):
                    out[pj, i] = sj * W[i, j] * fc[i]
        else:
            for j in range(n):
                pj = perm[j]
                for i in range(n):
                    out[pj, i] = scale * W[i, j]
    else:
        for j in range(n):
            pj = perm[j]
            for i in range(n):
                out[pj, i] = mul_pow2(dm * W[i, j] * fr[pj] * fc[i], g)
    for i in range(n):
        for j in range(n):
            if out[i, j] != out[i, j]:
                return FALLBACK  # NaN: the elimination broke down; let SVD decide
    return OK


@nb.njit(parallel=True, cache=True)
def lu_kernel(A, out, inverse_t, nchunks):  # type: ignore[no-untyped-def]
    """Per-matrix LU path for a batch; returns a status per slot.  Matrices
    are processed in ``nchunks`` contiguous chunks, one workspace each."""
    B, n, _ = A.shape
    status = np.zeros(B, dtype=np.int8)
    nchunks = max(1, min(B, nchunks))
    for ch in prange(nchunks):
        W = np.empty((n, n), dtype=A.dtype)
        perm = np.empty(n, dtype=np.int64)
        fr = np.empty(n)
        fc = np.empty(n)
        for b in range(ch * B // nchunks, (ch + 1) * B // nchunks):
            status[b] = _one(A[b], out[b], W, perm, fr, fc, inverse_t)
    return status
