"""The CuPy backend's operations: launches of its CUDA kernels.

Written against an array namespace: ``xp`` is CuPy on a GPU (arrays stay on
the device, kernels run on CuPy's current stream) and NumPy under Numba's
CUDA simulator, which is how CI runs this very code without a GPU.  The
routing between paths, the host fallbacks and the Frobenius passes are
:mod:`matgrad.kernels.routing`'s, shared with the Numba CPU backend; the
host algorithms (large ``n``, the Hessenberg reduction) are those of
:mod:`matgrad.kernels`.  This module supplies the launches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from matgrad import config
from matgrad.kernels import charpoly as host_charpoly
from matgrad.kernels import routing
from matgrad.kernels.scaling import ldexp, widen, work_dtype

from . import _kernels as K

__all__ = ["Device", "bilinear_grad", "charpoly_deriv", "det_grad", "frobenius_grad",
           "logdet_grad"]



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


# ----------------------------------------------------------------- Frobenius
def _fro_reduce(dev: Device, flat: Any, kind: int, action: Any, f1: Any, f2: Any) -> Any:
    """``routing.Reduce``: one thread block per (row, chunk), then a
    fixed-order combine per row (``fro_rows``; ``kind`` is in ``action``)."""
    xp = dev.xp
    B = flat.shape[0]
    nc = -(-flat.shape[1] // dev.chunk)
    parts = xp.zeros((B, nc))
    act = dev.inp(action)
    args = (dev.inp(flat), act, dev.inp(f1), dev.inp(f2), dev.chunk, parts)
    if dev.stream is None:
        K.fro_partials[B * nc, K.TPB](*args)
    else:
        K.fro_partials[B * nc, K.TPB, dev.stream](*args)
    rows = xp.zeros(B)
    K.launch(K.fro_rows, B, dev.stream, dev.inp(parts), act, rows)
    return rows


def _fro_write(dev: Device, flat: Any, res: Any, mode: Any, norm: Any, f1: Any,
               f2: Any) -> None:
    K.launch(K.fro_write, flat.size, dev.stream, dev.inp(flat), res, dev.inp(mode),
             dev.inp(norm), dev.inp(f1), dev.inp(f2))


def frobenius_grad(X: Any, dev: Device) -> Any:
    """Per slot, from the slot alone (see :func:`routing.frobenius_norm_grad`)."""
    return routing.frobenius_norm_grad(X, partial(_fro_reduce, dev), partial(_fro_write, dev))[1]


def bilinear_grad(x: Any, y: Any, dev: Device) -> Any:
    out = dev.xp.empty((x.shape[0], x.shape[1], y.shape[1]), dtype=x.dtype)
    K.launch(K.bilinear, out.size, dev.stream, dev.inp(x), dev.inp(y), out)
    return out


# ----------------------------------------------------------------- cofactors
def _on_host(dev: Device, fn: Callable[[np.ndarray], np.ndarray], A: Any) -> Any:
    """``routing.Host``: a host algorithm for these slots (large n, or the
    rare slots the kernels hand back), with the transfers."""
    return dev.to_device(fn(dev.to_host(A)))


def _closed_form(dev: Device, W: Any, C: Any) -> None:
    K.launch(K.closed_form, W.shape[0], dev.stream, dev.inp(W), C)


def _gauss_jordan(dev: Device, A: Any, inverse_t: bool) -> tuple[Any, Any]:
    """``routing.Eliminate``: one thread per matrix."""
    xp = dev.xp
    W = widen(A)
    B, n, _ = W.shape
    out = xp.empty_like(W)
    status = xp.empty(B, dtype=np.int8)
    K.launch(K.gauss_jordan, B, dev.stream, dev.inp(W), out, xp.empty_like(W),
             xp.empty((B, n), dtype=np.int64), xp.empty((B, n)), xp.empty((B, n)),
             status, inverse_t)
    return out, status


def det_grad(A: Any, dev: Device) -> Any:
    return routing.det_grad(A, closed_form=partial(_closed_form, dev),
                            eliminate=partial(_gauss_jordan, dev), host=partial(_on_host, dev),
                            host_min_n=config.cuda_gauss_jordan_max_n + 1)


def logdet_grad(A: Any, dev: Device) -> Any:
    return routing.logdet_grad(A, eliminate=partial(_gauss_jordan, dev),
                               host=partial(_on_host, dev),
                               host_min_n=config.cuda_gauss_jordan_max_n + 1)


# ----------------------------------------------------------------- charpoly
def charpoly_deriv(A: Any, x: Any, dev: Device) -> tuple[Any, Any]:
    """Balancing, scaling and Hessenberg reduction on the host (LAPACK
    ``gehrd`` / :mod:`matgrad.kernels.charpoly`; CuPy has none), then Hyman's
    recurrence on the device, one thread per (matrix, point) pair; far and
    infinite points take their rules on the host."""
    host = host_charpoly
    xp = dev.xp
    B, n, _ = A.shape
    if n == 1:
        return (x - A[:, 0, :1]).astype(A.dtype), xp.ones(x.shape, A.dtype)
    out_dtype = A.dtype
    work = work_dtype(np.result_type(A.dtype, x.dtype))
    Ah = dev.to_host(A).astype(work)
    with np.errstate(all="ignore"):
        As, k, kmax = host.scale_matrices(Ah)
        reduced = ~host.is_hessenberg(As)
        H = host.hessenberg_batched(As)
        sub = host.subdiagonal(H, reduced)
    kd = dev.to_device(k)
    xs = ldexp(x.astype(work), -kd[:, None])
    Kp = x.shape[1]
    pm = xp.empty((B, Kp), dtype=work)
    dpm = xp.empty_like(pm)
    pe = xp.zeros((B, Kp), dtype=np.int64)
    dpe = xp.zeros_like(pe)
    V = xp.empty((B * Kp, n), dtype=work)
    K.launch(K.hyman, B * Kp, dev.stream, dev.inp(dev.to_device(H.astype(work))),
             dev.inp(dev.to_device(sub)), dev.inp(xp.ascontiguousarray(xs)), pm, dpm, pe, dpe,
             V, xp.empty_like(V), xp.empty((B * Kp, n), dtype=np.int64),
             xp.empty((B * Kp, n), dtype=np.int64))
    p, dp = host.unscale(pm, dpm, pe, dpe, kd, n, out_dtype)
    xh = dev.to_host(x)
    # |x| ≫ |A| (the power rule) and x at infinity: on the host (rare)
    where, sp, sdp = host.special_points(xh, kmax, n, np.dtype(out_dtype))
    if where.any():
        idx = dev.to_device(np.flatnonzero(where.ravel()))
        p.ravel()[idx] = dev.to_device(sp)
        dp.ravel()[idx] = dev.to_device(sdp)
    return p, dp
