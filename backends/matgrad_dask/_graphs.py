"""Dask graphs for each operation.  Every task calls the public matgrad
function on its NumPy/CuPy block with the inner backend *by name* (context
variables do not reach Dask's worker threads or processes)."""

from __future__ import annotations

import string
from functools import partial
from typing import Any

import numpy as np

import matgrad

__all__ = ["bilinear_grad", "charpoly_deriv", "det_grad", "frobenius_grad", "logdet_grad"]


def _apply(op: str, inner: str, *blocks: Any) -> Any:
    """The task body (module level, so distributed can pickle it)."""
    return getattr(matgrad, op)(*blocks, backend=inner)


def _charpoly_pair(inner: str, A: Any, x: Any) -> Any:
    p, dp = matgrad.charpoly_deriv(A, x, return_value=True, backend=inner)
    xp = _namespace(p)
    return xp.stack([xp.asarray(p), xp.asarray(dp)], axis=-1)


def _namespace(x: Any) -> Any:
    import importlib

    return importlib.import_module(type(x).__module__.partition(".")[0])


def _meta(like: Any, dtype: Any, ndim: int) -> Any:
    xp = _namespace(like._meta)
    return xp.empty((0,) * ndim, dtype=dtype)


def _whole_matrices(A: Any) -> Any:
    """Rechunk so that every block holds whole matrices (the batch axes keep
    their chunks): det, inverse and charpoly need a matrix in one piece."""
    if A.numblocks[-2:] == (1, 1):
        return A
    return A.rechunk({A.ndim - 2: -1, A.ndim - 1: -1})


def det_grad(A: Any, inner: str, dtype: Any) -> Any:
    A = _whole_matrices(A.astype(dtype))
    return A.map_blocks(partial(_apply, "det_grad", inner), dtype=dtype,
                        meta=_meta(A, dtype, A.ndim))


def logdet_grad(A: Any, inner: str, dtype: Any) -> Any:
    A = _whole_matrices(A.astype(dtype))
    return A.map_blocks(partial(_apply, "logdet_grad", inner), dtype=dtype,
                        meta=_meta(A, dtype, A.ndim))


def _scaled(Xb: Any, kb: Any, wide: Any) -> Any:
    """X·2⁻ᵏ in the wide dtype; 2⁻ᵏ as two exact factors (2^1073 overflows)."""
    half = kb // 2
    f1 = 2.0 ** (-half).astype(np.float64)
    f2 = 2.0 ** (-(kb - half)).astype(np.float64)
    return Xb.astype(wide) * f1 * f2


def _exponents(mb: Any) -> Any:
    with np.errstate(all="ignore"):
        ok = np.isfinite(mb) & (mb > 0)
        return np.where(ok, np.frexp(np.where(ok, mb, 1.0))[1], 0).astype(np.int64)


def _scaled_squares(wide: Any, Xb: Any, kb: Any) -> Any:
    with np.errstate(all="ignore"):
        return np.abs(_scaled(Xb, kb, wide)) ** 2


def _finish(wide: Any, dtype: Any, Xb: Any, kb: Any, sb: Any, mb: Any) -> Any:
    with np.errstate(all="ignore"):
        G = _scaled(Xb, kb, wide) / np.sqrt(np.where(mb > 0, sb, 1.0))
        G = np.where(np.isfinite(mb), G, np.nan)  # NaN/inf entry: NaN matrix
        return G.astype(dtype)


def frobenius_grad(X: Any, inner: str, dtype: Any) -> Any:
    """Whole matrices per block: the inner backend, block by block.  A matrix
    split over blocks: a global, overflow-safe reduction — max|x| per matrix
    gives a power-of-two scale 2ᵏ, then Σ|x·2⁻ᵏ|² (no overflow or underflow
    possible), tree-summed across blocks — and one elementwise pass
    ``G = (X·2⁻ᵏ) / ‖X·2⁻ᵏ‖``."""
    import dask.array as da

    X = X.astype(dtype)
    if X.numblocks[-2:] == (1, 1):
        return X.map_blocks(partial(_apply, "frobenius_grad", inner), dtype=dtype,
                            meta=_meta(X, dtype, X.ndim))
    axes = (X.ndim - 2, X.ndim - 1)
    wide = np.complex128 if np.dtype(dtype).kind == "c" else np.float64
    m = abs(X).max(axis=axes, keepdims=True)  # NaN propagates
    k = m.map_blocks(_exponents, dtype=np.int64)
    s = da.map_blocks(partial(_scaled_squares, wide), X, k, dtype=np.float64).sum(
        axis=axes, keepdims=True)
    return da.map_blocks(partial(_finish, wide, dtype), X, k, s, m, dtype=dtype,
                         meta=_meta(X, dtype, X.ndim))


def bilinear_grad(x: Any, y: Any, inner: str, dtype: Any) -> Any:
    import dask.array as da

    batch = np.broadcast_shapes(x.shape[:-1], y.shape[:-1])
    x = da.broadcast_to(da.asarray(x).astype(dtype), (*batch, x.shape[-1]))
    y = da.broadcast_to(da.asarray(y).astype(dtype), (*batch, y.shape[-1]))
    b = string.ascii_letters[: len(batch)]
    return da.blockwise(partial(_apply, "bilinear_grad", inner), b + "ij",
                        x, b + "i", y, b + "j", dtype=dtype,
                        meta=_meta(x, dtype, len(batch) + 2))


def _hessenberg_block(A: np.ndarray) -> np.ndarray:
    """Upper Hessenberg form of each matrix in a NumPy block, similar to it
    exactly up to rounding, with an exact power-of-two pre-scaling (the
    characteristic polynomial is unchanged)."""
    from matgrad_numpy._charpoly import hessenberg_batched
    from matgrad_numpy._scaling import exponent_of_max, ldexp

    shape = A.shape
    flat = A.reshape((-1, *shape[-2:]))
    with np.errstate(all="ignore"):
        k = exponent_of_max(np.abs(flat).max(axis=(1, 2), initial=0.0))
        H = ldexp(hessenberg_batched(ldexp(flat, -k[:, None, None])), k[:, None, None])
    return H.astype(A.dtype, copy=False).reshape(shape)


def charpoly_deriv(A: Any, x: Any, inner: str, dtype: Any) -> tuple[Any, Any]:
    """Output axes along which A varies are mapped block by block with the
    matching point blocks.  When a matrix meets several point chunks, it is
    reduced to Hessenberg form once, beforehand, and the inner backends skip
    the reduction (they recognise a Hessenberg matrix in O(n²)): one
    reduction per matrix overall."""
    import dask.array as da

    A = _whole_matrices(da.asarray(A).astype(dtype))
    x = da.asarray(x).astype(dtype)
    out = np.broadcast_shapes(A.shape[:-2], x.shape)
    point_chunks = max((len(c) for c in x.chunks), default=1)
    if point_chunks > 1 and A.shape[-1] > 2 and isinstance(A._meta, np.ndarray):
        A = A.map_blocks(_hessenberg_block, dtype=dtype)
    d = len(out)
    # Size-1 axes stay size 1 (blockwise broadcasts them): a block of A is
    # then paired with whole point blocks and reduced once per point chunk,
    # never once per point.
    A = A.reshape((1,) * (d - A.ndim + 2) + A.shape)
    x = x.reshape((1,) * (d - x.ndim) + x.shape)
    idx = string.ascii_letters[:d]
    pair = da.blockwise(partial(_charpoly_pair, inner), idx + "Z", A, idx + "YW", x, idx,
                        new_axes={"Z": 2}, concatenate=True, dtype=dtype,
                        meta=_meta(A, dtype, d + 1))
    return pair[..., 0], pair[..., 1]
