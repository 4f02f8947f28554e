"""The Numba backend's eliminations, shared by its operations (``_ops``)
and its value methods (``_values``): the Gauss-Jordan kernel over a batch,
the host hand-over, and ``A⁻ᵀ`` of 2×2 / 3×3 batches from the closed forms."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from matgrad import config
from matgrad.kernels import routing
from matgrad.kernels.codes import OK
from matgrad.kernels.scaling import narrow, widen, work_dtype

from . import _cofactor
from ._runtime import launch

__all__ = ["gauss_jordan_path", "logdet_small", "on_host"]


def gauss_jordan_path(A: np.ndarray, inverse_t: bool) -> tuple[np.ndarray, np.ndarray]:
    """``routing.Eliminate``: the Gauss-Jordan kernel over the batch (with
    partial pivoting and power-of-two equilibration; ``A⁻ᵀ`` if ``inverse_t``,
    else cofactors), and the status of each slot."""
    W = widen(A)
    B, n = W.shape[0], W.shape[-1]
    out = np.empty_like(W)
    status = np.zeros(B, dtype=np.int8)
    dm = np.empty(B, dtype=W.dtype)  # the determinants, not wanted here
    de = np.empty(B, dtype=np.int64)
    launch(_cofactor.lu_kernel, B, B * n**3, W, out, dm, de, status, inverse_t, False)
    return out, status


def on_host(fn: Callable[[np.ndarray], np.ndarray], A: np.ndarray) -> np.ndarray:
    return fn(A)  # NumPy arrays are host arrays already


def logdet_small(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(A⁻ᵀ, det, redo)`` for 2×2 / 3×3 ``A``: ``conj(C/det)`` from the
    closed forms (``_cofactor.logdet_closed``) where they are accurate, the
    elimination of :func:`routing.logdet_grad` for the slots ``redo`` (whose
    ``det`` entries are not set).  ``A⁻ᵀ`` in ``A``'s dtype, ``det`` wide."""
    B = A.shape[0]
    G = np.empty_like(A)
    d = np.empty(B, dtype=work_dtype(A.dtype))
    status = np.empty(B, dtype=np.int8)
    # float32 / complex64 widened per matrix inside the kernel (no wide copy)
    launch(_cofactor.logdet_closed, B, A.size, A, G, d, status)
    redo = np.flatnonzero(status != OK)
    if redo.size:
        Gr = routing.logdet_grad(widen(A[redo]), eliminate=gauss_jordan_path, host=on_host,
                                 host_min_n=config.numba_det_lapack_min_n)
        G[redo] = narrow(Gr, A.dtype)
    return G, d, redo
