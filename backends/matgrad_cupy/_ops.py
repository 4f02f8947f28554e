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
from matgrad.kernels import hessian as host_hessian
from matgrad.kernels import routing
from matgrad.kernels.scaling import ldexp, narrow, widen, work_dtype
from matgrad.kernels.values import det_value

from . import _kernels as K

__all__ = ["Device", "bilinear_grad", "charpoly_deriv", "charpoly_derivs", "det_grad",
           "det_hessian", "det_hvp", "det_hvp_value", "frobenius_grad", "frobenius_hvp",
           "logdet_grad", "logdet_hvp"]



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
    p, dp = _charpoly_orders(A, x, 1, dev)
    return p, dp


def charpoly_derivs(A: Any, x: Any, order: int, dev: Device) -> tuple[Any, ...]:
    """``(p, p′, …, p⁽ᵒʳᵈᵉʳ⁾)``: p and p′ as :func:`charpoly_deriv` computes
    them (the same code), the orders from 2 on by the ``hyman_orders``
    kernel on the same Hessenberg forms, orders ≥ n the constants n!, 0."""
    return _charpoly_orders(A, x, order, dev)


def _charpoly_orders(A: Any, x: Any, order: int, dev: Device) -> tuple[Any, ...]:
    """Balancing, scaling and Hessenberg reduction on the host (LAPACK
    ``gehrd`` / :mod:`matgrad.kernels.charpoly`; CuPy has none), then Hyman's
    recurrence on the device, one thread per (matrix, point) pair; far and
    infinite points take their rules on the host."""
    host = host_charpoly
    xp = dev.xp
    B, n, _ = A.shape
    if n == 1:
        linear = [(x - A[:, 0, :1]).astype(A.dtype), xp.ones(x.shape, A.dtype)][: order + 1]
        return (*linear, *(dev.to_device(c) for c in
                           host.constant_orders(x.shape, n, order, np.dtype(A.dtype))[1:]))
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
    Hd = dev.to_device(H.astype(work))
    subd = dev.to_device(sub)
    xsd = xp.ascontiguousarray(xs)
    K.launch(K.hyman, B * Kp, dev.stream, dev.inp(Hd), dev.inp(subd), dev.inp(xsd), pm, dpm,
             pe, dpe, V, xp.empty_like(V), xp.empty((B * Kp, n), dtype=np.int64),
             xp.empty((B * Kp, n), dtype=np.int64))
    r = min(order, n - 1)
    high: list[Any] = []
    if r >= 2:
        PM = xp.empty((B, Kp, r + 1), dtype=work)
        PE = xp.zeros((B, Kp, r + 1), dtype=np.int64)
        K.launch(K.hyman_orders, B * Kp, dev.stream, dev.inp(Hd), dev.inp(subd), dev.inp(xsd),
                 r, PM, PE, xp.empty((B * Kp, r + 1, n), dtype=work),
                 xp.empty((B * Kp, r + 1, n), dtype=np.int64),
                 xp.empty((B * Kp, r + 1), dtype=work), xp.empty((B * Kp, r + 1), dtype=np.int64))
        high = host.unscale_orders([PM[..., m] for m in range(r + 1)],
                                   [PE[..., m] for m in range(r + 1)], kd, n, out_dtype)[2:]
    p, dp = host.unscale(pm, dpm, pe, dpe, kd, n, out_dtype)
    xh = dev.to_host(x)
    # |x| ≫ |A| (the power rule) and x at infinity: on the host (rare)
    where, special = host.special_points(xh, kmax, n, np.dtype(out_dtype), max(r, 1))
    if where.any():
        idx = dev.to_device(np.flatnonzero(where.ravel()))
        for v, sv in zip((p, dp, *high), special, strict=True):
            v.ravel()[idx] = dev.to_device(sv)
    constants = [dev.to_device(c) for c in
                 host.constant_orders(x.shape, n, order, np.dtype(out_dtype))[max(r, 1) + 1 - n:]]
    return (p, dp, *high, *constants)[: order + 1]


# ----------------------------------------------------------------- second derivatives
def _host_pair(dev: Device, fn: Callable[[np.ndarray, np.ndarray], np.ndarray], A: Any,
               V: Any) -> Any:
    """A host algorithm of :mod:`matgrad.kernels.hessian` on a pair, with the
    transfers."""
    return dev.to_device(fn(dev.to_host(A), dev.to_host(V)))


def det_hvp(A: Any, V: Any, dev: Device) -> Any:
    """``H = D cofactor(A)[V]``: one thread per 2×2 / 3×3 pair (in the wide
    dtype, rounded once), the slots whose products overflowed redone by the
    host's ``det_hvp`` (its equilibrated pair: the host's bits); ``n = 1`` and
    ``n ≥ 4`` on the host."""
    B, n, _ = A.shape
    if n == 1 or n >= 4 or B == 0:
        return _host_pair(dev, host_hessian.det_hvp, A, V)
    xp = dev.xp
    W, Vw = widen(A), widen(V)
    H = xp.empty_like(W)
    redo = xp.zeros(B, dtype=np.int8)
    K.launch(K.hvp_small, B, dev.stream, dev.inp(W), dev.inp(Vw), H, redo)
    idx = xp.flatnonzero(redo)
    if int(idx.size):  # rare
        H[idx] = _host_pair(dev, host_hessian.det_hvp, A[idx], V[idx])
    return narrow(H, A.dtype)


def det_hvp_value(A: Any, V: Any, dev: Device) -> tuple[Any, Any, Any]:
    """``(det A, cofactor(A), H)``: ``det`` and ``cofactor`` as this backend's
    ``det_value_grad`` (the value from the host, the cofactors from
    :func:`det_grad`), ``H`` from :func:`det_hvp`."""
    d = dev.to_device(det_value(np.ascontiguousarray(dev.to_host(A))))
    return d, det_grad(A, dev), det_hvp(A, V, dev)


def det_hessian(A: Any, dev: Device) -> Any:
    """``∂²det/∂A_ij∂A_kl`` ``(B, n, n, n, n)``: one thread per 2×2 / 3×3
    matrix writing the constants or ``±A_mq`` (exact), the host otherwise."""
    B, n, _ = A.shape
    if n not in (2, 3) or B == 0:
        return _on_host(dev, host_hessian.det_hessian, A)
    out = dev.xp.zeros((B, n, n, n, n), dtype=A.dtype)
    K.launch(K.hessian_small, B, dev.stream, dev.inp(A), out)
    return out


def logdet_hvp(A: Any, V: Any, dev: Device) -> Any:
    """``−A⁻ᵀVᵀA⁻ᵀ`` (``−G·Vᴴ·G`` for complex) on the host."""
    return _host_pair(dev, host_hessian.logdet_hvp, A, V)


def frobenius_hvp(X: Any, V: Any, dev: Device) -> Any:
    """``(V − G·⟨G, V⟩)/‖X‖_F`` on the host."""
    return _host_pair(dev, host_hessian.frobenius_hvp, X, V)
