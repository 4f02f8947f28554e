"""Overflow-safe function values on the host, in NumPy.

The values that ``return_value=True`` returns beside a gradient — ‖X‖_F,
det A, and (sign, log|det A|) — are *true* values: they are inf or 0 only
where the true value over- or underflows.  The textbook ``sqrt(sum(x**2))``
and ``prod(diag(U))`` overflow long before that.  Both are computed here with
exact power-of-two scaling:

* ``‖X‖_F = 2ᵏ·sqrt(Σ|x·2⁻ᵏ|²)`` with ``2ᵏ`` the largest entry's binade, so
  the sum of squares lies in [0.25, m·n] and cannot overflow or underflow
  in any way that matters.
* ``det A``: the matrix is equilibrated, ``Ã = D_r A D_c`` with power-of-two
  diagonal ``D_r``, ``D_c`` (row maxima, then column maxima, brought into
  [0.5, 1)), which is exact, so ``det A = det Ã · 2^-(Σr + Σc)``.  For
  ``n ≤ 3``, ``det Ã`` is the closed-form expansion (exact zero for exactly
  singular dyadic input such as ``[[1, 2, 3], [4, 5, 6], [7, 8, 9]]``);
  for larger ``n`` it comes from LAPACK's LU (``numpy.linalg.slogdet``) as
  ``sign·exp(log|det Ã|)``, and ``det A`` is assembled as a mantissa times a
  power of two, so it overflows only if the true value does.

Every quantity is computed per matrix from that matrix alone, so a slot's
value never depends on its neighbours in the batch.  These helpers are what
the :class:`matgrad.Backend` base class uses for its default value methods;
a backend may override them with values from its own factorisation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["det_value", "frobenius_value", "slogdet_value"]

_LN2 = float(np.log(2.0))


def _wide(dtype: np.dtype[Any]) -> np.dtype[Any]:
    return np.dtype(np.complex128 if dtype.kind == "c" else np.float64)


def _real(dtype: np.dtype[Any]) -> np.dtype[Any]:
    return np.dtype(np.float32 if dtype in (np.float32, np.complex64) else np.float64)


def _magnitude(x: np.ndarray) -> np.ndarray:
    """``max(|re|, |im|)`` (``|x|`` for real ``x``): finite for every finite ``x``."""
    if np.iscomplexobj(x):
        return np.maximum(np.abs(x.real), np.abs(x.imag))  # type: ignore[no-any-return]
    return np.abs(x)  # type: ignore[no-any-return]


def _exponent(m: np.ndarray) -> np.ndarray:
    """``k`` with ``m = f·2ᵏ``, ``0.5 ≤ f < 1``; 0 for zero or non-finite ``m``."""
    with np.errstate(invalid="ignore"):
        safe = np.where(np.isfinite(m), m, 0.0)
    return np.frexp(safe)[1].astype(np.int64)


def _ldexp(x: np.ndarray, e: np.ndarray) -> np.ndarray:
    if np.iscomplexobj(x):
        out = np.empty(np.broadcast_shapes(x.shape, e.shape), dtype=x.dtype)
        out.real = np.ldexp(x.real, e)
        out.imag = np.ldexp(x.imag, e)
        return out
    return np.ldexp(x, e)  # type: ignore[no-any-return]


def frobenius_value(X: np.ndarray) -> np.ndarray:
    """``‖X‖_F`` of each matrix of ``X (B, m, n)``, in ``X``'s real dtype.

    ``2ᵏ·sqrt(Σ|x·2⁻ᵏ|²)``, accumulated in float64: a few ulp, no spurious
    overflow or underflow.  A NaN entry gives NaN, an infinite one inf.
    """
    W = X.astype(_wide(X.dtype), copy=False)
    with np.errstate(all="ignore"):
        mag = _magnitude(W).max(axis=(1, 2))
        k = _exponent(mag)
        S = _ldexp(W, -k[:, None, None])
        if np.iscomplexobj(S):
            s = (S.real**2 + S.imag**2).sum(axis=(1, 2))
        else:
            s = (S * S).sum(axis=(1, 2))
        norm = np.ldexp(np.sqrt(s), k)
        # inf entries: the sum above is NaN (inf·2⁻⁰ squared is inf, fine, but
        # keep it explicit); NaN entries stay NaN.
        norm = np.where(np.isinf(mag), np.inf, norm)
        norm = np.where(np.isnan(mag), np.nan, norm)
        return norm.astype(_real(X.dtype))


def _equilibrate(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(Ã, g)`` with ``Ã = D_r W D_c`` (powers of two, every finite
    ``|ã_ij| < 1``) and ``det W = det Ã · 2^g``."""
    with np.errstate(all="ignore"):
        r = -_exponent(_magnitude(W).max(axis=2))
        Wr = _ldexp(W, r[:, :, None])
        c = -_exponent(_magnitude(Wr).max(axis=1))
        At = _ldexp(Wr, c[:, None, :])
    return At, -(r.sum(axis=1) + c.sum(axis=1))


def _closed_det(M: np.ndarray) -> np.ndarray:
    """Determinant by cofactor expansion for ``n ≤ 3``."""
    n = M.shape[-1]
    if n == 1:
        return M[:, 0, 0].copy()
    if n == 2:
        return M[:, 0, 0] * M[:, 1, 1] - M[:, 0, 1] * M[:, 1, 0]  # type: ignore[no-any-return]
    a = M
    return (  # type: ignore[no-any-return]
        a[:, 0, 0] * (a[:, 1, 1] * a[:, 2, 2] - a[:, 1, 2] * a[:, 2, 1])
        - a[:, 0, 1] * (a[:, 1, 0] * a[:, 2, 2] - a[:, 1, 2] * a[:, 2, 0])
        + a[:, 0, 2] * (a[:, 1, 0] * a[:, 2, 1] - a[:, 1, 1] * a[:, 2, 0])
    )


def _split_det(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(sign, log|det Ã|, g)`` in the wide dtype, ``det A = sign·e^l·2^g``."""
    W = A.astype(_wide(A.dtype), copy=False)
    At, g = _equilibrate(W)
    with np.errstate(all="ignore"):
        if A.shape[-1] <= 3:
            d = _closed_det(At)
            absd = np.abs(d)
            sign = np.where(absd > 0, d / np.where(absd > 0, absd, 1.0), d * 0)
            sign = np.where(np.isnan(d), np.nan, sign).astype(W.dtype)
            logabs = np.log(absd)
        else:
            sign, logabs = np.linalg.slogdet(At)
        # a non-finite entry: the value is NaN (its true value is undefined)
        bad = ~np.isfinite(W).all(axis=(1, 2))
        sign = np.where(bad, np.nan, sign)
        logabs = np.where(bad, np.nan, logabs)
    return sign, logabs, g


def det_value(A: np.ndarray) -> np.ndarray:
    """``det A`` of each matrix of ``A (B, n, n)``, ``n ≥ 1``, in ``A``'s dtype.

    Exactly 0 for a matrix whose (equilibrated) factorisation meets an exact
    zero pivot; inf only where the true value overflows.
    """
    sign, logabs, g = _split_det(A)
    with np.errstate(all="ignore"):
        # e^l·2^g = 2^(g + j)·e^(l − j·ln2), with e^(l − j·ln2) in [1, 2)
        finite = np.isfinite(logabs)
        lsafe = np.where(finite, logabs, 0.0)
        j = np.floor(lsafe / _LN2).astype(np.int64)
        mant = np.exp(lsafe - j * _LN2)
        mag = np.ldexp(mant, g + j)
        mag = np.where(finite, mag, np.where(np.isneginf(logabs), 0.0, np.nan))
        value = sign * mag
        return value.astype(A.dtype)


def slogdet_value(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(sign, log|det A|)`` of each matrix of ``A (B, n, n)``, ``n ≥ 1``.

    ``sign`` in ``A``'s dtype (a unit complex number for complex ``A``, 0 for
    a singular matrix), ``log|det A|`` in its real dtype (−inf when
    singular).  Never over- or underflows: ``log|det Ã| − (Σr + Σc)·ln 2``.
    """
    sign, logabs, g = _split_det(A)
    with np.errstate(all="ignore"):
        logabs = logabs + g * _LN2
    return sign.astype(A.dtype), logabs.astype(_real(A.dtype))
