"""CUDA kernels (numba-cuda), launched on CuPy's current stream.

Design note — why numba-cuda rather than CuPy ``RawKernel``s:

* the per-matrix and per-point algorithms (Gauss-Jordan with exact
  power-of-two equilibration and a running mantissa/exponent determinant;
  Hyman's recurrence with block splitting and exponent tracking; the 3×3
  closed form with its row-scaled redo) are written once, in
  ``matgrad_numba/_scalar.py``, and compiled for both targets, so the GPU
  cannot drift from the CPU code that the contract suite proves;
* numba-cuda kernels run on Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``)
  over NumPy arrays, so CI — which has no GPU — executes every kernel's
  logic; CuPy RawKernels have no simulator;
* numba-cuda accepts CuPy arrays directly (``__cuda_array_interface__``) and
  launches on CuPy's current stream, so CuPy arrays stay on the device.

One thread per matrix (3×3 closed form, Gauss-Jordan for 4 ≤ n ≤ 32) or per
(matrix, point) pair (Hyman); Frobenius uses one thread block per
(matrix, chunk) with a shared-memory tree reduction in float64 and a
grid-stride elementwise pass; bilinear is a grid-stride elementwise kernel.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import cuda

from ._device import scalar_cuda

S = scalar_cuda()
abs2 = S.abs2
mul_pow2 = S.mul_pow2
closed_form_one = S.closed_form_one
gauss_jordan_one = S.gauss_jordan_one
cofactor4_one = S.cofactor4_one
hyman_point = S.hyman_point

#: threads per block of the reduction kernel (a power of two)
TPB = 256
_SKIP, _SUMSQ, _ABSMAX, _SCALED_SUMSQ = 0, 1, 2, 3
_FAST, _SCALED, _ZERO, _NAN = 0, 1, 2, 3


@cuda.jit
def fro_partials(X, action, kexp, chunk, out):  # type: ignore[no-untyped-def]
    """Block (b, c): reduce X[b, c·chunk:(c+1)·chunk] by ``action[b]``."""
    nc = out.shape[1]
    t = cuda.blockIdx.x
    b = t // nc
    c = t - b * nc
    tid = cuda.threadIdx.x
    buf = cuda.shared.array(TPB, dtype=np.float64)
    N = X.shape[1]
    act = action[b]
    start = c * chunk
    stop = min(N, start + chunk)
    acc = 0.0
    i = start + tid
    while i < stop:
        v = X[b, i]
        if act == _SUMSQ:
            acc += abs2(v)
        elif act == _ABSMAX:
            a = abs(v)
            if not a <= acc:  # NaN propagates
                acc = a
        elif act == _SCALED_SUMSQ:
            acc += abs2(mul_pow2(v, -kexp[b]))
        i += cuda.blockDim.x
    buf[tid] = acc
    cuda.syncthreads()
    s = cuda.blockDim.x // 2
    while s > 0:
        if tid < s:
            if act == _ABSMAX:
                if not buf[tid + s] <= buf[tid]:
                    buf[tid] = buf[tid + s]
            else:
                buf[tid] += buf[tid + s]  # pairwise tree: error ~ log2(TPB)·eps
        cuda.syncthreads()
        s //= 2
    if tid == 0:
        out[b, c] = buf[0]


@cuda.jit
def fro_write(X, out, mode, norm, kexp):  # type: ignore[no-untyped-def]
    B, N = X.shape
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for t in range(start, B * N, stride):
        b = t // N
        i = t - b * N
        m = mode[b]
        if m == _FAST:
            out[b, i] = X[b, i] / norm[b]
        elif m == _SCALED:
            out[b, i] = mul_pow2(X[b, i], -kexp[b]) / norm[b]
        elif m == _ZERO:
            out[b, i] = 0
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
        closed_form_one(A[b], C[b])


@cuda.jit
def gauss_jordan(A, out, W, perm, fr, fc, status, inverse_t):  # type: ignore[no-untyped-def]
    b = cuda.grid(1)
    if b < A.shape[0]:
        if A.shape[1] == 4 and not inverse_t and cofactor4_one(A[b], out[b]):
            status[b] = 0  # OK: the guarded 4×4 closed form
        else:
            status[b] = gauss_jordan_one(A[b], out[b], W[b], perm[b], fr[b], fc[b], inverse_t)


@cuda.jit
def hyman(H, sub, x, pm, dpm, pe, V, DV):  # type: ignore[no-untyped-def]
    t = cuda.grid(1)
    K = x.shape[1]
    if t < x.shape[0] * K:
        b = t // K
        k = t - b * K
        p, dp, e = hyman_point(H[b], sub[b], x[b, k], V[t], DV[t])
        pm[b, k] = p
        dpm[b, k] = dp
        pe[b, k] = e


def launch(kernel: Any, threads: int, stream: Any, *args: Any, tpb: int = 128) -> None:
    """Launch ``kernel`` with at least ``threads`` threads on ``stream``."""
    blocks = max(1, -(-threads // tpb))
    if stream is None:
        kernel[blocks, tpb](*args)
    else:
        kernel[blocks, tpb, stream](*args)
