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
def frobenius_grad(X: Any, dev: Device) -> Any:
    xp = dev.xp
    B = X.shape[0]
    flat = X.reshape(B, -1)
    N = flat.shape[1]
    nc = -(-N // dev.chunk)
    kexp = xp.zeros(B, dtype=np.int64)

    def partials(action: Any) -> Any:
        out = xp.zeros((B, nc))
        blocks = B * nc
        args = (dev.inp(flat), dev.inp(action.astype(np.int8)), dev.inp(kexp), dev.chunk, out)
        if dev.stream is None:
            K.fro_partials[blocks, K.TPB](*args)
        else:
            K.fro_partials[blocks, K.TPB, dev.stream](*args)
        return out

    s = partials(xp.full(B, K._SUMSQ)).sum(axis=1)
    single = np.dtype(flat.dtype).type(0).real.dtype == np.float32
    with np.errstate(invalid="ignore"):
        finite = xp.isfinite(s)
        fast = finite & (s > 0) if single else finite & (s >= _FAST_MIN)
    mode = xp.where(fast, K._FAST, K._ZERO).astype(np.int8)
    norm = xp.sqrt(xp.where(fast, s, 1.0))
    if single:
        mode[~finite] = K._NAN
    elif not bool(fast.all()):
        slow = ~fast
        absmax = partials(xp.where(slow, K._ABSMAX, K._SKIP)).max(axis=1)
        with np.errstate(invalid="ignore"):
            scaled = slow & xp.isfinite(absmax) & (absmax > 0)
        mode[slow & ~xp.isfinite(absmax)] = K._NAN
        mode[scaled] = K._SCALED
        kexp[scaled] = xp.frexp(absmax[scaled])[1]
        t2 = partials(xp.where(scaled, K._SCALED_SUMSQ, K._SKIP)).sum(axis=1)
        norm = xp.where(scaled, xp.sqrt(t2), norm)
    out = xp.empty_like(flat)
    K.launch(K.fro_write, B * N, dev.stream, dev.inp(flat), out, dev.inp(mode), dev.inp(norm),
             dev.inp(kexp))
    return out.reshape(X.shape)


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
    G[status != K.S.OK] = np.nan
    return _narrow(dev, G, A.dtype)


# ----------------------------------------------------------------- charpoly
def charpoly_deriv(A: Any, x: Any, dev: Device) -> tuple[Any, Any]:
    """Hessenberg reduction on the host (LAPACK ``gehrd`` / the NumPy
    backend; CuPy has none), then Hyman's recurrence on the device, one
    thread per (matrix, point) pair."""
    from matgrad_numpy import _charpoly as host
    from matgrad_numpy._scaling import exponent_of_max
    from matgrad_numpy._scaling import ldexp as host_ldexp

    xp = dev.xp
    B, n, _ = A.shape
    if n == 1:
        return (x - A[:, 0, :1]).astype(A.dtype), xp.ones(x.shape, A.dtype)
    out_dtype = A.dtype
    work = _work(np.result_type(A.dtype, x.dtype))
    Ah = dev.to_host(A).astype(work)
    with np.errstate(all="ignore"):
        k = exponent_of_max(np.abs(Ah).max(axis=(1, 2)))
        H = host.hessenberg_batched(host_ldexp(Ah, -k[:, None, None]))
        sub = host.subdiagonal(H)
    kd = dev.to_device(k)
    xs = _ldexp(dev, x.astype(work), -kd[:, None])
    Kp = x.shape[1]
    pm = xp.empty((B, Kp), dtype=work)
    dpm = xp.empty_like(pm)
    pe = xp.zeros((B, Kp), dtype=np.int64)
    V = xp.empty((B * Kp, n), dtype=work)
    K.launch(K.hyman, B * Kp, dev.stream, dev.inp(dev.to_device(H.astype(work))),
             dev.inp(dev.to_device(sub)), dev.inp(xp.ascontiguousarray(xs)), pm, dpm, pe, V,
             xp.empty_like(V))
    with np.errstate(all="ignore"):
        p = _ldexp(dev, pm, pe + (kd * n)[:, None])
        dp = _ldexp(dev, dpm, pe + (kd * (n - 1))[:, None])
    return _narrow(dev, p, out_dtype), _narrow(dev, dp, out_dtype)
