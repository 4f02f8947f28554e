"""CUDA kernels (numba-cuda), launched on CuPy's current stream.

Design note — why numba-cuda rather than CuPy ``RawKernel``s:

* the per-matrix and per-point algorithms (Gauss-Jordan with exact
  power-of-two equilibration and a running mantissa/exponent determinant;
  Hyman's recurrence with block splitting and exponent tracking; the 3×3
  closed form with its row-scaled redo) are written once, in
  :mod:`matgrad.kernels.scalar`, and compiled for both targets by
  ``compile_scalar``, so the GPU cannot drift from the CPU code that the
  contract suite proves;
* numba-cuda kernels run on Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``)
  over NumPy arrays, so CI — which has no GPU — executes every kernel's
  logic; CuPy RawKernels have no simulator;
* numba-cuda accepts CuPy arrays directly (``__cuda_array_interface__``) and
  launches on CuPy's current stream, so CuPy arrays stay on the device.

One thread per matrix (3×3 closed form, Gauss-Jordan for 4 ≤ n ≤ 32) or per
(matrix, point) pair (Hyman); Frobenius works on the real view of the batch
(a complex entry is two reals) with one thread block per (matrix, chunk), a
shared-memory tree reduction in float64, a fixed-order per-row combine and a
grid-stride elementwise pass; bilinear is a grid-stride elementwise kernel.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import cuda

from matgrad.kernels.codes import ABSMAX, FAST, OK, SCALED, SCALED_SUMSQ, SUMSQ, ZERO
from matgrad.kernels.scalar import compile_scalar

# The algorithms as CUDA device functions, bound at module level as globals
# of the kernels below.
S = compile_scalar("cuda")
closed_form_one = S.closed_form_one
cofactor3_rescaled = S.cofactor3_rescaled
cofactor4_one = S.cofactor4_one
gauss_jordan_det_one = S.gauss_jordan_det_one
gauss_jordan_inv_one = S.gauss_jordan_inv_one
hyman_point = S.hyman_point
hvp3 = S.hvp3
cofactor2 = S.cofactor2
store3 = S.store3
all_finite = S.all_finite
hessian_small_one = S.hessian_small_one
hyman_orders_point = S.hyman_orders_point

#: threads per block of the reduction kernel (a power of two)
TPB = 256


@cuda.jit
def fro_partials(X, action, f1, f2, chunk, out):  # type: ignore[no-untyped-def]
    """Block (b, c) reduces the real row chunk X[b, c·chunk:(c+1)·chunk] by
    ``action[b]``: Σx² (float64), max|x| (NaN-propagating) or Σ(x·f1·f2)².
    A complex batch arrives as its real view (re, im, re, …)."""
    nc = out.shape[1]
    t = cuda.blockIdx.x
    b = t // nc
    c = t - b * nc
    tid = cuda.threadIdx.x
    buf = cuda.shared.array(TPB, dtype=np.float64)
    N = X.shape[1]
    act = action[b]
    g1 = f1[b]
    g2 = f2[b]
    start = c * chunk
    stop = min(N, start + chunk)
    acc = 0.0
    i = start + tid
    while i < stop:
        v = np.float64(X[b, i])
        if act == SUMSQ:
            acc += v * v
        elif act == ABSMAX:
            a = abs(v)
            if a > acc or a != a:  # once NaN, acc stays NaN
                acc = a
        elif act == SCALED_SUMSQ:
            w = v * g1 * g2
            acc += w * w
        i += cuda.blockDim.x
    buf[tid] = acc
    cuda.syncthreads()
    s = cuda.blockDim.x // 2
    while s > 0:
        if tid < s:
            if act == ABSMAX:
                o = buf[tid + s]
                if o > buf[tid] or o != o:
                    buf[tid] = o
            else:
                buf[tid] += buf[tid + s]  # pairwise tree: error ~ log2(TPB)·eps
        cuda.syncthreads()
        s //= 2
    if tid == 0:
        out[b, c] = buf[0]


@cuda.jit
def fro_rows(P, action, out):  # type: ignore[no-untyped-def]
    """One thread per row: combine its chunk partials in a fixed order (so a
    row's result never depends on the batch around it)."""
    b = cuda.grid(1)
    if b < P.shape[0]:
        act = action[b]
        acc = 0.0
        for c in range(P.shape[1]):
            v = P[b, c]
            if act == ABSMAX:
                if v > acc or v != v:
                    acc = v
            else:
                acc += v
        out[b] = acc


@cuda.jit
def fro_write(X, out, mode, norm, f1, f2):  # type: ignore[no-untyped-def]
    """Real view in and out: FAST x/‖X‖ (float64), SCALED (x·2⁻ᵏ)/‖X·2⁻ᵏ‖,
    ZERO x itself (signed zeros kept), NAN everywhere else."""
    B, N = X.shape
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for t in range(start, B * N, stride):
        b = t // N
        i = t - b * N
        m = mode[b]
        if m == FAST:
            out[b, i] = np.float64(X[b, i]) / norm[b]
        elif m == SCALED:
            out[b, i] = (np.float64(X[b, i]) * f1[b] * f2[b]) / norm[b]
        elif m == ZERO:
            out[b, i] = X[b, i]
        else:
            out[b, i] = math.nan


@cuda.jit
def bilinear(x, y, out):  # type: ignore[no-untyped-def]
    B, m = x.shape
    n = y.shape[1]
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for t in range(start, B * m * n, stride):
        b = t // (m * n)
        r = t - b * m * n
        i = r // n
        j = r - i * n
        out[b, i, j] = x[b, i] * y[b, j]


@cuda.jit
def closed_form(A, C):  # type: ignore[no-untyped-def]
    b = cuda.grid(1)
    if b < A.shape[0]:
        if not closed_form_one(A[b], C[b]):
            cofactor3_rescaled(A[b], C[b])  # an overflow or a non-finite entry (rare)


@cuda.jit
def hvp_small(A, V, H, redo):  # type: ignore[no-untyped-def]
    """``H = D cofactor(A)[V]`` of one 2×2 or 3×3 pair per thread (float64 /
    complex128): ``[[v11, −v10], [−v01, v00]]``, or the polynomial
    :func:`matgrad.kernels.scalar.hvp3`; ``redo[b] = 1`` where a 3×3 entry
    came out inf/NaN from finite ``A`` and ``V`` (products that overflowed:
    the host redoes the slot on the equilibrated pair)."""
    b = cuda.grid(1)
    if b < A.shape[0]:
        a = A[b]
        v = V[b]
        h = H[b]
        if A.shape[1] == 2:
            cofactor2(v, h)  # C is linear: H = C(V)
            return
        r = hvp3(a[0, 0], a[0, 1], a[0, 2], a[1, 0], a[1, 1], a[1, 2], a[2, 0], a[2, 1],
                 a[2, 2], v[0, 0], v[0, 1], v[0, 2], v[1, 0], v[1, 1], v[1, 2], v[2, 0],
                 v[2, 1], v[2, 2])
        if not store3(h, r) and all_finite(a) and all_finite(v):
            redo[b] = 1


@cuda.jit
def hessian_small(A, out):  # type: ignore[no-untyped-def]
    """``∂²det/∂A_ij∂A_kl`` of one 2×2 or 3×3 matrix per thread into ``out``
    (zeros on entry)."""
    b = cuda.grid(1)
    if b < A.shape[0]:
        hessian_small_one(A[b], out[b])


@cuda.jit
def gauss_jordan(A, out, W, perm, fr, fc, status, inverse_t):  # type: ignore[no-untyped-def]
    """``inverse_t``: ``A⁻ᵀ``; else cofactors, by the guarded 4×4 closed form
    where it is accepted."""
    b = cuda.grid(1)
    if b < A.shape[0]:
        if inverse_t:
            status[b] = gauss_jordan_inv_one(A[b], out[b], W[b], perm[b], fr[b], fc[b])[0]
        elif A.shape[1] == 4 and cofactor4_one(A[b], out[b]):
            status[b] = OK
        else:
            status[b] = gauss_jordan_det_one(A[b], out[b], W[b], perm[b], fr[b], fc[b])[0]


@cuda.jit
def hyman(H, sub, x, pm, dpm, pe, dpe, V, DV, EV, EDV):  # type: ignore[no-untyped-def]
    """Thread t: pair (b, k) = divmod(t, K), with rows V[t], DV[t], EV[t],
    EDV[t] as the workspace of v, v′ and their exponents."""
    t = cuda.grid(1)
    K = x.shape[1]
    if t < x.shape[0] * K:
        b = t // K
        k = t - b * K
        p, dp, e, de = hyman_point(H[b], sub[b], x[b, k], V[t], DV[t], EV[t], EDV[t])
        pm[b, k] = p
        dpm[b, k] = dp
        pe[b, k] = e
        dpe[b, k] = de


@cuda.jit
def hyman_orders(H, sub, x, order, PM, PE, W, EW, SM, SE):  # type: ignore[no-untyped-def]
    """Thread t: pair (b, k) = divmod(t, K): the Taylor coefficients
    ``PM[b, k, m]·2^PE[b, k, m]``, m = 0 … order
    (:func:`matgrad.kernels.scalar.hyman_orders_point`), with W[t], EW[t],
    SM[t], SE[t] as its workspace."""
    t = cuda.grid(1)
    K = x.shape[1]
    if t < x.shape[0] * K:
        b = t // K
        k = t - b * K
        hyman_orders_point(H[b], sub[b], x[b, k], order, W[t], EW[t], SM[t], SE[t], PM[b, k],
                           PE[b, k])


def launch(kernel: Any, threads: int, stream: Any, *args: Any, tpb: int = 128) -> None:
    """Launch ``kernel`` with at least ``threads`` threads on ``stream``."""
    blocks = max(1, -(-threads // tpb))
    if stream is None:
        kernel[blocks, tpb](*args)
    else:
        kernel[blocks, tpb, stream](*args)
