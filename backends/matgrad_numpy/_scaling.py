"""Exact power-of-two scaling helpers (frexp/ldexp), complex-aware.

Multiplying by 2ᵏ is exact barring overflow and subnormal results, which is
why matgrad scales with powers of two everywhere it needs headroom.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "BLOCK",
    "exponent_of_max",
    "ldexp",
    "magnitude",
    "mantissa_product",
    "narrow",
    "widen",
    "work_dtype",
]

#: Elements per temporary block in streaming passes (fits in L2 cache).
BLOCK = 1 << 16


def work_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """float64 or complex128: the precision the NumPy backend computes in."""
    return np.dtype(np.complex128 if dtype.kind == "c" else np.float64)


def widen(x: np.ndarray) -> np.ndarray:
    """``x`` in float64/complex128 (no copy if it already is).  Silent: a
    float32 signalling NaN becomes a quiet NaN in its own slot, with no
    floating-point warning (the cast alone would raise "invalid")."""
    with np.errstate(invalid="ignore"):
        return x.astype(work_dtype(x.dtype), copy=False)


def narrow(x: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
    """Round a float64/complex128 result to ``dtype`` (float32 results that
    truly exceed float32's range become ±inf, silently)."""
    with np.errstate(over="ignore", under="ignore"):
        return x.astype(dtype, copy=False)


def ldexp(x: np.ndarray, e: Any) -> np.ndarray:
    """``x · 2**e`` exactly (barring over/underflow), for real or complex ``x``."""
    e = np.asarray(e, dtype=np.int64)
    if np.iscomplexobj(x):
        out = np.empty(np.broadcast_shapes(x.shape, e.shape), dtype=x.dtype)
        out.real = np.ldexp(x.real, e)
        out.imag = np.ldexp(x.imag, e)
        return out
    real: np.ndarray = np.ldexp(x, e)
    return real


def magnitude(x: np.ndarray) -> np.ndarray:
    """``|x|`` for real ``x``; ``max(|re x|, |im x|)`` for complex ``x``.

    Within a factor √2 of ``|x|``, and finite for every finite complex
    number: ``|1.3e308 + 1.3e308j|`` itself overflows to inf, which would make
    a finite entry look non-finite to every scaling decision.
    """
    if np.iscomplexobj(x):
        out: np.ndarray = np.maximum(np.abs(x.real), np.abs(x.imag))
        return out
    real: np.ndarray = np.abs(x)
    return real


def exponent_of_max(absmax: np.ndarray) -> np.ndarray:
    """Integer ``k`` with ``absmax = f·2ᵏ``, ``0.5 ≤ f < 1``; 0 for zero or
    non-finite ``absmax``."""
    with np.errstate(invalid="ignore"):
        safe = np.where(np.isfinite(absmax), absmax, 0.0)
    return np.frexp(safe)[1].astype(np.int64)


def mantissa_product(u: np.ndarray, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``Π_j u[..., j]`` as ``(m, e)`` with ``product = m·2ᵉ``, ``|m|`` in [0.5, 1).

    Overflow- and underflow-free for any length: each factor is split into
    mantissa and exponent, and the running mantissa is renormalised every
    ``chunk`` factors (0.5**64 is far from underflow).  Zero gives ``m = 0``.
    """
    e_each = exponent_of_max(magnitude(u))
    scaled = ldexp(u, -e_each)
    m = np.ones(u.shape[:-1], dtype=u.dtype)
    e = e_each.sum(axis=-1)
    for j in range(0, u.shape[-1], chunk):
        m = m * np.prod(scaled[..., j : j + chunk], axis=-1)
        k = exponent_of_max(magnitude(m))
        m = ldexp(m, -k)
        e = e + k
    return m, e
