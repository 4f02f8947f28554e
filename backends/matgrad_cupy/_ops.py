"""Orchestration of the CUDA kernels, written against an array namespace.

``xp`` is CuPy on a GPU (arrays stay on the device, kernels run on CuPy's
current stream) and NumPy under Numba's CUDA simulator, which is how CI
runs this very code without a GPU.  The steps mirror the Numba CPU backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _kernels as K

__all__ = ["Device", "bilinear_grad", "charpoly_deriv", "det_grad", "frobenius_grad",
           "logdet_grad"]

#: Largest n for the one-thread-per-matrix Gauss-Jordan kernel; larger
#: matrices are factored on the host by the NumPy backend (LAPACK).
GJ_MAX_N = 32
_FAST_MIN = 1e-280


@dataclass
class Device:
    """Where the kernels run: ``xp`` (cupy or numpy), a numba stream or None,
    and the Frobenius chunk length (elements per thread block)."""

    xp: Any
    stream: Any = None
    chunk: int = 1 << 16

    def inp(self, a: Any) -> Any:
        """A kernel input: as is on a GPU; under the simulator a device copy,
        since the simulator copies every NumPy argument back after a launch
        (which would write into the caller's possibly read-only array)."""
        if self.xp is np:
            from numba import cuda

            return cuda.to_device(np.ascontiguousarray(a))
        return a

    def to_host(self, a: Any) -> np.ndarray:
        return a.get() if hasattr(a, "get") else np.asarray(a)

    def to_device(self, a: np.ndarray) -> Any:
        return self.xp.asarray(a)


def _work(dtype: Any) -> Any:
    return np.complex128 if np.dtype(dtype).kind == "c" else np.float64


def _ldexp(dev: Device, x: Any, e: Any) -> Any:
    xp = dev.xp
    if xp.iscomplexobj(x):
        return xp.ldexp(x.real, e) + 1j * xp.ldexp(x.imag, e)
    return xp.ldexp(x, e)


def _narrow(dev: Device, x: Any, dtype: Any) -> Any:
    with np.errstate(over="ignore"):
        return x.astype(dtype, copy=False)


# ----------------------------------------------------------------- Frobenius
def _pow2_factors(xp: Any, k: Any) -> tuple[Any, Any]:
    """``(f1, f2)`` with ``x·f1·f2 = ldexp(x, −k)`` (one rounding at most) for
    ``|x| < 2ᵏ``: one factor where ``2⁻ᵏ`` is a float, else (a subnormal
    maximum) ``2^1000`` first, exactly, and the rest after."""
    big = -k > 1023
    f1 = xp.where(big, 2.0**1000, xp.ldexp(xp.ones(k.shape), xp.where(big, 0, -k)))
    f2 = xp.where(big, xp.ldexp(xp.ones(k.shape), xp.where(big, -k - 1000, 0)), 1.0)
    return f1, f2


def frobenius_grad(X: Any, dev: Device) -> Any:
    """Per slot, from the slot alone: Σx² of the real view in float64; the
    fast path ``X / sqrt(s)`` when that is safe, else max|x| (of the parts),
    NaN for a NaN/inf entry, ``X`` itself for a zero matrix, and
    ``(X·2⁻ᵏ) / ‖X·2⁻ᵏ‖`` otherwise — the Numba CPU backend's steps."""
    xp = dev.xp
    B = X.shape[0]
    out = xp.empty(X.shape, dtype=X.dtype)
    if X.size == 0:
        return out
    rdt = np.dtype(X.dtype).type(0).real.dtype
    flat = xp.ascontiguousarray(X).reshape(B, -1).view(rdt)  # complex: re, im, re, …
    res = out.reshape(B, -1).view(rdt)
    N = flat.shape[1]
    nc = -(-N // dev.chunk)
    ones = xp.ones(B)

    def reduce(action: Any, f1: Any, f2: Any) -> Any:
        parts = xp.zeros((B, nc))
        act = dev.inp(action.astype(np.int8))
        args = (dev.inp(flat), act, dev.inp(f1), dev.inp(f2), dev.chunk, parts)
        if dev.stream is None:
            K.fro_partials[B * nc, K.TPB](*args)
        else:
            K.fro_partials[B * nc, K.TPB, dev.stream](*args)
        rows = xp.zeros(B)
        K.launch(K.fro_rows, B, dev.stream, dev.inp(parts), act, rows)
        return rows

    s = reduce(xp.full(B, K._SUMSQ), ones, ones)
    single = rdt == np.float32  # float64 sums of float32 squares are safe
    with np.errstate(invalid="ignore"):
        finite = xp.isfinite(s)
        fast = finite & (s > 0) if single else finite & (s >= _FAST_MIN)
    mode = xp.full(B, K._FAST, dtype=np.int8)
    norm = xp.sqrt(xp.where(fast, s, 1.0))
    f1, f2 = ones, ones
    if not bool(fast.all()):
        slow = ~fast
        if single:
            absmax = xp.where(finite, s, xp.nan)  # only zero / non-finite matter
        else:
            absmax = reduce(xp.where(slow, K._ABSMAX, K._SKIP), ones, ones)
        with np.errstate(invalid="ignore"):
            bad = slow & ~xp.isfinite(absmax)
            zero = slow & (absmax == 0)
        scaled = slow & ~bad & ~zero
        mode[bad] = K._NAN
        mode[zero] = K._ZERO
        if bool(scaled.any()):
            mode[scaled] = K._SCALED
            k = xp.frexp(xp.where(scaled, absmax, 1.0))[1].astype(np.int64)
            f1, f2 = _pow2_factors(xp, xp.where(scaled, k, 0))
            t2 = reduce(xp.where(scaled, K._SCALED_SUMSQ, K._SKIP), f1, f2)
            norm = xp.where(scaled, xp.sqrt(xp.where(scaled, t2, 1.0)), norm)
    K.launch(K.fro_write, flat.size, dev.stream, dev.inp(flat), res, dev.inp(mode),
             dev.inp(norm), dev.inp(f1), dev.inp(f2))
    return out


def bilinear_grad(x: Any, y: Any, dev: Device) -> Any:
    out = dev.xp.empty((x.shape[0], x.shape[1], y.shape[1]), dtype=x.dtype)
    K.launch(K.bilinear, out.size, dev.stream, dev.inp(x), dev.inp(y), out)
    return out


# ----------------------------------------------------------------- cofactors
def _host(fn_name: str, A: Any, dev: Device) -> Any:
    """Run the NumPy backend on the host for these slots (large n, or the
    rare tiny-pivot slots that need the rank-revealing SVD path)."""
    from matgrad_numpy import _cofactor

    return dev.to_device(getattr(_cofactor, fn_name)(dev.to_host(A)))


def _gauss_jordan(A: Any, dev: Device, inverse_t: bool) -> tuple[Any, Any]:
    xp = dev.xp
    W = A.astype(_work(A.dtype), copy=False)
    B, n, _ = W.shape
    out = xp.empty_like(W)
    status = xp.empty(B, dtype=np.int8)
    K.launch(K.gauss_jordan, B, dev.stream, dev.inp(W), out, xp.empty_like(W),
             xp.empty((B, n), dtype=np.int64), xp.empty((B, n)), xp.empty((B, n)),
             status, inverse_t)
    return out, status


def det_grad(A: Any, dev: Device) -> Any:
    xp = dev.xp
    n = A.shape[-1]
    if n == 1:
        return xp.ones_like(A)
    if n <= 3:
        W = A.astype(_work(A.dtype), copy=False)
        C = xp.empty_like(W)
        K.launch(K.closed_form, A.shape[0], dev.stream, dev.inp(W), C)
        return _narrow(dev, C, A.dtype)
    if n > GJ_MAX_N:
        return _host("det_grad", A, dev)
    C, status = _gauss_jordan(A, dev, inverse_t=False)
    C[status == K.S.NONFINITE] = np.nan
    redo = xp.flatnonzero(status == K.S.FALLBACK)
    if int(redo.size):
        C[redo] = _host("det_grad", A[redo].astype(C.dtype), dev)
    return _narrow(dev, C, A.dtype)


def logdet_grad(A: Any, dev: Device) -> Any:
    if A.shape[-1] > GJ_MAX_N:
        return _host("logdet_grad", A, dev)
    G, status = _gauss_jordan(A, dev, inverse_t=True)
    G[status == K.S.NONFINITE] = np.nan
    redo = dev.xp.flatnonzero(status == K.S.FALLBACK)
    if int(redo.size):  # exponents beyond plain power-of-two factors (rare)
        G[redo] = _host("logdet_grad", A[redo].astype(G.dtype), dev)
    return _narrow(dev, G, A.dtype)


# ----------------------------------------------------------------- charpoly
def charpoly_deriv(A: Any, x: Any, dev: Device) -> tuple[Any, Any]:
    """Hessenberg reduction on the host (LAPACK ``gehrd`` / the NumPy
    backend; CuPy has none), then Hyman's recurrence on the device, one
    thread per (matrix, point) pair."""
    from matgrad_numpy import _charpoly as host

    xp = dev.xp
    B, n, _ = A.shape
    if n == 1:
        return (x - A[:, 0, :1]).astype(A.dtype), xp.ones(x.shape, A.dtype)
    out_dtype = A.dtype
    work = _work(np.result_type(A.dtype, x.dtype))
    Ah = dev.to_host(A).astype(work)
    with np.errstate(all="ignore"):
        As, k, kmax = host.scale_matrices(Ah)
        H = host.hessenberg_batched(As)
        sub = host.subdiagonal(H)
    kd = dev.to_device(k)
    xs = _ldexp(dev, x.astype(work), -kd[:, None])
    Kp = x.shape[1]
    pm = xp.empty((B, Kp), dtype=work)
    dpm = xp.empty_like(pm)
    pe = xp.zeros((B, Kp), dtype=np.int64)
    dpe = xp.zeros_like(pe)
    V = xp.empty((B * Kp, n), dtype=work)
    K.launch(K.hyman, B * Kp, dev.stream, dev.inp(dev.to_device(H.astype(work))),
             dev.inp(dev.to_device(sub)), dev.inp(xp.ascontiguousarray(xs)), pm, dpm, pe, dpe,
             V, xp.empty_like(V))
    with np.errstate(all="ignore"):
        p = _ldexp(dev, pm, pe + (kd * n)[:, None])
        dp = _ldexp(dev, dpm, dpe + (kd * (n - 1))[:, None])
    p, dp = _narrow(dev, p, out_dtype), _narrow(dev, dp, out_dtype)
    xh = dev.to_host(x)
    far = host.far_points(xh, kmax)  # |x| ≫ |A|: the power rule, on the host (rare)
    if far.any():
        fp, fdp = host.power_rule(xh[far], n, np.dtype(out_dtype))
        idx = dev.to_device(np.flatnonzero(far.ravel()))
        p.ravel()[idx] = dev.to_device(fp)
        dp.ravel()[idx] = dev.to_device(fdp)
    return p, dp
