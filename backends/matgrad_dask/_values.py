"""Dask graphs for ``return_value=True``: value and gradient from one pass.

``det_grad`` and ``logdet_grad`` work on whole matrices per block, so each
task calls the public function with ``return_value=True`` on its block (one
factorisation per matrix, inner backend carried by name) and packs the
values as extra rows below the gradient: ``(..., n + k, n)`` with the
``k`` values in column 0 of the extra rows.  Two cheap slicing tasks per
block unpack them, and both results share the one factorisation.

``frobenius_grad`` on whole-matrix blocks packs the same way.  For a matrix
split over blocks, the gradient is the existing global reduction, and the
norm comes from per-block norms (true values, computed by the inner
backend) combined without over- or underflow: ``2ᵏ·sqrt(Σ(‖X_b‖·2⁻ᵏ)²)``
with ``2ᵏ`` the binade of the largest block norm.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

import matgrad
from matgrad.kernels.scaling import exponent_of_max, namespace

from . import _graphs

__all__ = ["det_hvp_value", "det_value_grad", "frobenius_value_grad", "logdet_value_grad"]


def _real(dtype: Any) -> np.dtype[Any]:
    return np.empty(0, dtype).real.dtype


def _pack(op: str, inner: str, Ab: Any) -> Any:
    """The task body: ``(values..., G)`` of a block, packed as extra rows."""
    out = getattr(matgrad, op)(Ab, return_value=True, backend=inner)
    if op == "logdet_grad":
        (sign, logabs), G = out
        values = [sign, logabs]
    else:
        value, G = out
        values = [value]
    xp = namespace(G)
    m, n = G.shape[-2:]
    # at least one column, so that an empty matrix (n = 0) has room for its
    # values (det 1, log|det| 0, norm 0); _packed slices the gradient out
    packed = xp.zeros((*G.shape[:-2], m + len(values), max(n, 1)), dtype=G.dtype)
    packed[..., :m, :n] = G
    for i, v in enumerate(values):
        packed[..., m + i, 0] = v
    return packed


def _packed(op: str, X: Any, inner: str, dtype: Any, k: int) -> tuple[list[Any], Any]:
    X = _graphs._whole_matrices(X.astype(dtype))
    m, n = X.shape[-2:]  # known: the callers send unknown matrix sizes elsewhere
    chunks = (*X.chunks[:-2], (m + k,), (max(n, 1),))
    P = X.map_blocks(partial(_pack, op, inner), dtype=dtype, chunks=chunks,
                     meta=_graphs._meta(X, dtype, X.ndim))
    values = [P[..., m + i, 0] for i in range(k)]
    return values, P[..., :m, :n]


def det_value_grad(A: Any, inner: str, dtype: Any) -> tuple[Any, Any]:
    (det,), C = _packed("det_grad", A, inner, dtype, 1)
    return det, C


def logdet_value_grad(A: Any, inner: str, dtype: Any) -> tuple[Any, Any, Any]:
    (sign, logabs), G = _packed("logdet_grad", A, inner, dtype, 2)
    return sign, logabs.real.astype(_real(dtype)), G


def _block_norms(inner: str, Xb: Any) -> Any:
    norm, _ = matgrad.frobenius_grad(Xb, return_value=True, backend=inner)
    return norm[..., None, None]


def _combine(norms: Any) -> Any:
    """``‖X‖`` from block norms (last two axes), overflow-free."""
    xp = namespace(norms)
    with np.errstate(all="ignore"):
        w = norms.astype(np.float64)
        mx = w.max(axis=(-2, -1))
        ok = xp.isfinite(mx) & (mx > 0)
        k = exponent_of_max(mx)  # 0 where not ok
        s = xp.square(xp.ldexp(w, -k[..., None, None])).sum(axis=(-2, -1))
        out = xp.where(ok, xp.ldexp(xp.sqrt(s), k), mx)
    return out.astype(norms.dtype)


def frobenius_value_grad(X: Any, inner: str, dtype: Any) -> tuple[Any, Any]:
    X = X.astype(dtype)
    # Packing needs the matrix sizes; with unknown ones (NaN, after a boolean
    # selection along a matrix axis) the norms come from per-block norms.
    sized = not any(np.isnan(s) for s in X.shape[-2:])
    if X.numblocks[-2:] == (1, 1) and sized:
        (norm,), G = _packed("frobenius_grad", X, inner, dtype, 1)
        return norm.real.astype(_real(dtype)), G
    G = _graphs.frobenius_grad(X, inner, dtype)
    real = _real(dtype)
    nb = X.map_blocks(partial(_block_norms, inner), dtype=real,
                      chunks=(*X.chunks[:-2], (1,) * X.numblocks[-2], (1,) * X.numblocks[-1]),
                      meta=_graphs._meta(X, real, X.ndim))
    norm = nb.rechunk({X.ndim - 2: -1, X.ndim - 1: -1}).map_blocks(
        _combine, drop_axis=(X.ndim - 2, X.ndim - 1), dtype=real,
        meta=_graphs._meta(X, real, X.ndim - 2))
    return norm, G


def _pack_hvp(inner: str, Ab: Any, Vb: Any) -> Any:
    """The task body of ``det_hvp(return_value=True)``: ``(det, C, H)`` of a
    block packed as rows ``C`` (n), ``H`` (n) and the determinants in column 0
    of one more row."""
    det, C, H = matgrad.det_hvp(Ab, Vb, return_value=True, backend=inner)
    xp = namespace(H)
    n = H.shape[-1]
    packed = xp.zeros((*H.shape[:-2], 2 * n + 1, max(n, 1)), dtype=H.dtype)
    packed[..., :n, :n] = C
    packed[..., n:2 * n, :n] = H
    packed[..., 2 * n, 0] = det
    return packed


def det_hvp_value(A: Any, V: Any, inner: str, dtype: Any) -> tuple[Any, Any, Any]:
    """One task per block computes all three parts (one elimination per
    matrix for ``det`` and ``C``); two slices unpack them."""
    import dask.array as da

    A, V, b = _graphs._pair(A, V, dtype)
    n = A.shape[-1]  # known: whole matrices
    P = da.blockwise(partial(_pack_hvp, inner), b + "ij", A, b + "ij", V, b + "ij",
                     adjust_chunks={"i": 2 * n + 1, "j": max(n, 1)}, dtype=dtype,
                     meta=_graphs._meta(A, dtype, A.ndim))
    return P[..., 2 * n, 0], P[..., :n, :n], P[..., n:2 * n, :n]
