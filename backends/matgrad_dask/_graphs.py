"""Dask graphs for each operation.  Every task calls the public matgrad
function on its NumPy/CuPy block with the inner backend *by name* (context
variables do not reach Dask's worker threads or processes)."""

from __future__ import annotations

import string
from functools import partial
from typing import Any

import numpy as np

import matgrad
from matgrad.kernels.scaling import exponent_of_max, ldexp, magnitude, namespace

__all__ = ["bilinear_grad", "charpoly_deriv", "charpoly_derivs", "det_grad", "det_hessian",
           "det_hvp", "frobenius_grad", "frobenius_hvp", "logdet_grad", "logdet_hvp"]


def _apply(op: str, inner: str, *blocks: Any) -> Any:
    """The task body (module level, so distributed can pickle it)."""
    return getattr(matgrad, op)(*blocks, backend=inner)


def _charpoly_pair(inner: str, dtype: Any, order: int, A: Any, x: Any) -> Any:
    """``(p, p′, …, p⁽ᵒʳᵈᵉʳ⁾)`` stacked on a last axis, rounded once to
    ``dtype`` (a block of A may come pre-reduced in the wider work dtype)."""
    parts = matgrad.charpoly_deriv(A, x, order=order, return_value=True, backend=inner)
    xp = namespace(parts[0])
    with np.errstate(over="ignore", under="ignore"):  # true float32 overflow: inf
        return xp.stack([xp.asarray(r) for r in parts], axis=-1).astype(dtype, copy=False)


def _meta(like: Any, dtype: Any, ndim: int) -> Any:
    xp = namespace(like._meta)
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


def _parts(Xb: Any, wide: Any) -> tuple[Any, Any, Any]:
    """(namespace, real part, imaginary part or None) of a block, in the wide
    dtype (float32 values are exact in float64)."""
    xp = namespace(Xb)
    Y = Xb.astype(wide)
    if xp.iscomplexobj(Y):
        return xp, Y.real, Y.imag
    return xp, Y, None


def _scaled_squares(wide: Any, Xb: Any, kb: Any) -> Any:
    """|x·2⁻ᵏ|² = re² + im² in float64; each part is scaled by one exact
    ``ldexp`` (a subnormal result rounded once), as in the inner backends."""
    with np.errstate(all="ignore"):
        xp, re, im = _parts(Xb, wide)
        sq = xp.square(xp.ldexp(re, -kb))
        return sq if im is None else sq + xp.square(xp.ldexp(im, -kb))


def _finish(wide: Any, dtype: Any, Xb: Any, kb: Any, sb: Any, mb: Any) -> Any:
    """G = (X·2⁻ᵏ) / ‖X·2⁻ᵏ‖, each part divided separately (signs of zeros
    kept); zero matrix → X itself; a NaN or inf entry → all NaN."""
    with np.errstate(all="ignore"):
        xp, re, im = _parts(Xb, wide)
        finite = xp.isfinite(mb)
        t = xp.sqrt(xp.where(finite & (mb > 0), sb, 1.0))
        t = xp.where(finite, t, xp.nan)  # NaN/inf entry: the whole matrix is NaN
        G = xp.empty(re.shape, dtype=wide)
        if im is None:
            G[...] = xp.ldexp(re, -kb) / t
        else:
            G.real = xp.ldexp(re, -kb) / t
            G.imag = xp.ldexp(im, -kb) / t
        return G.astype(dtype)


def _block_max(Xb: Any) -> Any:
    """``max(|re|, |im|)`` over the matrix axes of one block, axes kept; 0
    where the block's matrices have no entries (0 is the identity of a max
    of magnitudes, and such a matrix's result is empty anyway)."""
    mag = magnitude(Xb)
    if mag.shape[-2] * mag.shape[-1] == 0:
        return namespace(mag).zeros((*mag.shape[:-2], 1, 1), dtype=mag.dtype)
    return mag.max(axis=(-2, -1), keepdims=True)


def _matrix_max(X: Any, real: Any) -> Any:
    """Per-matrix ``max(|re|, |im|)``, shape ``(..., 1, 1)``: a block-wise
    max, then a max over each matrix's blocks.  Not ``da.max``: its chunk
    function turns a block with an empty batch (an unknown-size chunk after
    a boolean selection may hold no matrix) into a wrongly shaped empty
    array that the next stage cannot reduce."""
    grid = (*X.chunks[:-2], (1,) * X.numblocks[-2], (1,) * X.numblocks[-1])
    per_block = X.map_blocks(_block_max, dtype=real, chunks=grid,
                             meta=_meta(X, real, X.ndim))
    whole = per_block.rechunk({X.ndim - 2: -1, X.ndim - 1: -1})
    return whole.map_blocks(_block_max, dtype=real,
                            chunks=(*X.chunks[:-2], (1,), (1,)), meta=_meta(X, real, X.ndim))


def frobenius_grad(X: Any, inner: str, dtype: Any) -> Any:
    """Whole matrices per block: the inner backend, block by block.  A matrix
    split over blocks: a global, overflow-safe reduction — the largest part
    ``max(|re|, |im|)`` per matrix gives a power-of-two scale 2ᵏ, then
    Σ|x·2⁻ᵏ|² (no overflow or underflow possible), tree-summed across blocks —
    and one elementwise pass ``G = (X·2⁻ᵏ) / ‖X·2⁻ᵏ‖``.  Every quantity is per
    matrix, so batch chunking never changes a slot's result; chunking of the
    matrix axes changes only the order of the summation (a few ulp)."""
    import dask.array as da

    X = X.astype(dtype)
    if X.numblocks[-2:] == (1, 1):
        return X.map_blocks(partial(_apply, "frobenius_grad", inner), dtype=dtype,
                            meta=_meta(X, dtype, X.ndim))
    axes = (X.ndim - 2, X.ndim - 1)
    wide = np.complex128 if np.dtype(dtype).kind == "c" else np.float64
    real = np.dtype(dtype).type(0).real.dtype
    # max(|re|, |im|) per matrix (|z| could overflow where its parts do not);
    # NaN propagates; then its frexp exponent (0 for zero, NaN or inf)
    m = _matrix_max(X, real)
    k = m.map_blocks(exponent_of_max, dtype=np.int64)
    s = da.map_blocks(partial(_scaled_squares, wide), X, k, dtype=np.float64).sum(
        axis=axes, keepdims=True)
    return da.map_blocks(partial(_finish, wide, dtype), X, k, s, m, dtype=dtype,
                         meta=_meta(X, dtype, X.ndim))


def _lead(x: Any, ndim: int) -> Any:
    """``x`` with new leading axes of size 1 up to ``ndim`` axes.  Indexing
    with ``None``, not ``reshape``/``broadcast_to``: those need every size
    known, and an axis left by a boolean selection has unknown (NaN) chunks."""
    return x[(None,) * (ndim - x.ndim)] if x.ndim < ndim else x


def bilinear_grad(x: Any, y: Any, inner: str, dtype: Any) -> Any:
    """Blocks of ``x`` and ``y`` paired along the batch axes; a batch axis of
    size 1 in one of them is broadcast by ``blockwise`` (and by the inner
    call) rather than materialised, so unknown batch chunk sizes pass."""
    import dask.array as da

    d = max(x.ndim, y.ndim) - 1
    x = _lead(da.asarray(x).astype(dtype), d + 1)
    y = _lead(da.asarray(y).astype(dtype), d + 1)
    b = string.ascii_letters[:d]
    return da.blockwise(partial(_apply, "bilinear_grad", inner), b + "ij",
                        x, b + "i", y, b + "j", dtype=dtype,
                        meta=_meta(x, dtype, d + 2))


def _hessenberg_block(A: np.ndarray) -> np.ndarray:
    """Upper Hessenberg form of each matrix in a NumPy block, similar to it
    exactly up to rounding, after the exact balancing and power-of-two
    scaling of :func:`matgrad.kernels.charpoly.scale_matrices` (the
    characteristic polynomial is unchanged; the inner backend balances the
    Hessenberg form again, which only rescales it, and does not reduce it
    again)."""
    from matgrad.kernels.charpoly import (
        hessenberg_batched,
        is_hessenberg,
        scale_matrices,
        subdiagonal,
    )

    shape = A.shape
    flat = A.reshape((-1, *shape[-2:]))
    n = shape[-1]
    with np.errstate(all="ignore"):
        As, k, _ = scale_matrices(flat)
        reduced = ~is_hessenberg(As)
        H = hessenberg_batched(As)
        # the reduction's negligible subdiagonal entries are deflated here, as
        # exact zeros: the inner backend sees a Hessenberg matrix, whose
        # subdiagonal it keeps as it is
        H[:, np.arange(1, n), np.arange(n - 1)] = subdiagonal(H, reduced)[:, 1:]
        H = ldexp(H, k[:, None, None])
        # a Hessenberg form beyond the range (entries of a complex matrix
        # near DBL_MAX: a subdiagonal entry is a column norm) cannot be handed
        # on in A's scale; such a matrix goes to the inner backend as it is,
        # which scales it before its own reduction (it came back NaN)
        lost = ~np.isfinite(H).all(axis=(1, 2)) & np.isfinite(flat).all(axis=(1, 2))
        H[lost] = flat[lost]
    # kept in the work dtype: a float32 matrix's Hessenberg form can exceed
    # float32's range (a subdiagonal entry is a column norm), and rounding it
    # back would add an error the one-step path does not make
    return H.reshape(shape)


def charpoly_deriv(A: Any, x: Any, inner: str, dtype: Any) -> tuple[Any, Any]:
    """``(p, p′)``: :func:`charpoly_derivs` of order 1."""
    p, dp = charpoly_derivs(A, x, inner, dtype, 1)
    return p, dp


def charpoly_derivs(A: Any, x: Any, inner: str, dtype: Any, order: int) -> tuple[Any, ...]:
    """``(p, p′, …, p⁽ᵒʳᵈᵉʳ⁾)`` (``(p, p′)`` for order 0 and 1).  Output axes
    along which A varies are mapped block by block with the matching point
    blocks.  Every matrix is reduced to Hessenberg form once,
    beforehand, and the inner backends skip the reduction (they recognise a
    Hessenberg matrix in O(n²)): one reduction per matrix overall, and the
    same bits whatever the chunking."""
    import dask.array as da

    A = _whole_matrices(da.asarray(A).astype(dtype))
    x = da.asarray(x).astype(dtype)
    # Always reduced here, not only when a matrix meets several point chunks:
    # a slot's result must not depend on how the points are chunked, and the
    # inner backend's own reduction (e.g. Numba's kernel) rounds differently.
    if A.shape[-1] > 2 and isinstance(A._meta, np.ndarray):
        A = A.map_blocks(_hessenberg_block, dtype=np.result_type(dtype, np.float64))
    d = max(A.ndim - 2, x.ndim)  # the output's axes (the front end checked the shapes)
    # Size-1 axes stay size 1 (blockwise broadcasts them): a block of A is
    # then paired with whole point blocks and reduced once per point chunk,
    # never once per point.
    A = _lead(A, d + 2)  # not reshape: unknown (NaN) chunk sizes must pass
    x = _lead(x, d)
    idx = string.ascii_letters[:d]
    count = max(order, 1) + 1
    pair = da.blockwise(partial(_charpoly_pair, inner, dtype, max(order, 1)), idx + "Z", A,
                        idx + "YW", x, idx, new_axes={"Z": count}, concatenate=True,
                        dtype=dtype, meta=_meta(A, dtype, d + 1))
    return tuple(pair[..., j] for j in range(count))


# ------------------------------------------------------------ second order
def _pair(A: Any, V: Any, dtype: Any) -> tuple[Any, Any, str]:
    """``A`` and ``V`` with as many axes as each other, whole matrices per
    block, and the blockwise index of their batch axes (a batch axis of
    size 1 in one of them is broadcast by ``blockwise`` and by the inner
    call, as for ``bilinear_grad``, so unknown batch chunk sizes pass)."""
    import dask.array as da

    d = max(A.ndim, V.ndim)
    A = _whole_matrices(_lead(da.asarray(A).astype(dtype), d))
    V = _whole_matrices(_lead(da.asarray(V).astype(dtype), d))
    return A, V, string.ascii_letters[: d - 2]


def _direction(op: str, A: Any, V: Any, inner: str, dtype: Any) -> Any:
    """A Hessian-vector product, block by block over the batch: every
    matrix in one piece (the second derivatives need the whole matrix, as
    ``det_grad`` does), no communication between blocks."""
    import dask.array as da

    A, V, b = _pair(A, V, dtype)
    return da.blockwise(partial(_apply, op, inner), b + "ij", A, b + "ij", V, b + "ij",
                        dtype=dtype, meta=_meta(A, dtype, A.ndim))


def det_hvp(A: Any, V: Any, inner: str, dtype: Any) -> Any:
    return _direction("det_hvp", A, V, inner, dtype)


def logdet_hvp(A: Any, V: Any, inner: str, dtype: Any) -> Any:
    return _direction("logdet_hvp", A, V, inner, dtype)


def frobenius_hvp(X: Any, V: Any, inner: str, dtype: Any) -> Any:
    """Whole matrices per block too: a matrix split over blocks is
    rechunked (the norm and ``⟨G, V⟩`` are per matrix; the Hessian-vector
    product has no global-reduction form here)."""
    return _direction("frobenius_hvp", X, V, inner, dtype)


def det_hessian(A: Any, inner: str, dtype: Any) -> Any:
    """Whole matrices per block; the two new trailing axes come out of each
    block whole."""
    import dask.array as da

    A = _whole_matrices(A.astype(dtype))
    n = A.shape[-1]
    b = string.ascii_letters[: A.ndim - 2]
    return da.blockwise(partial(_apply, "det_hessian", inner), b + "ijkl", A, b + "ij",
                        new_axes={"k": n, "l": n}, dtype=dtype,
                        meta=_meta(A, dtype, A.ndim + 2))
