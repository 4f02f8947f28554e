"""Exact power-of-two scaling helpers (frexp/ldexp), complex-aware, written once.

Multiplying by 2ᵏ is exact barring overflow and subnormal results, which is
why matgrad scales with powers of two everywhere it needs headroom.  Every
helper works on NumPy and CuPy arrays alike: it calls the functions of the
array's own namespace (:func:`namespace`), so the CuPy backend scales on the
device and the Dask backend inside its blocks with the code the NumPy
backend runs.  (The scalar versions used inside compiled kernels are in
:mod:`matgrad.kernels.scalar`.)
"""

from __future__ import annotations

import importlib
from typing import Any, TypeVar

import numpy as np

__all__ = [
    "exponent_of_max",
    "ldexp",
    "magnitude",
    "mantissa_product",
    "namespace",
    "narrow",
    "pow2_factors",
    "widen",
    "work_dtype",
]

#: A NumPy or CuPy array: every helper returns arrays of its input's kind.
Arr = TypeVar("Arr")

def namespace(x: Any) -> Any:
    """The array module of ``x``: NumPy for NumPy arrays and scalars and for
    Python numbers, else the top-level package of its type (``cupy``)."""
    if isinstance(x, (np.ndarray, np.generic, int, float, complex)):
        return np
    return importlib.import_module(type(x).__module__.partition(".")[0])


_F64 = np.dtype(np.float64)
_C128 = np.dtype(np.complex128)


def work_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """float64 or complex128: the precision the host algorithms compute in."""
    return _C128 if dtype.kind == "c" else _F64


def widen(x: Arr) -> Arr:
    """``x`` in float64/complex128 (no copy if it already is).  Silent: a
    float32 signalling NaN becomes a quiet NaN in its own slot, with no
    floating-point warning (the cast alone would raise "invalid")."""
    wide = work_dtype(x.dtype)  # type: ignore[attr-defined]
    if x.dtype == wide:  # type: ignore[attr-defined]
        return x  # nothing to convert: skip the error-state switch (a small call's cost)
    with np.errstate(invalid="ignore"):
        out: Arr = x.astype(wide)  # type: ignore[attr-defined]
    return out


def narrow(x: Arr, dtype: Any) -> Arr:
    """Round a float64/complex128 result to ``dtype`` (float32 results that
    truly exceed float32's range become ±inf, silently)."""
    if x.dtype == dtype:  # type: ignore[attr-defined]
        return x
    with np.errstate(over="ignore", under="ignore"):
        out: Arr = x.astype(dtype)  # type: ignore[attr-defined]
    return out


def ldexp(x: Arr, e: Any) -> Arr:
    """``x · 2**e`` exactly (barring over/underflow), for real or complex ``x``:
    each part of a complex ``x`` is scaled on its own (a part that overflows
    leaves the other intact)."""
    xp = namespace(x)
    a: Any = x
    e = xp.asarray(e, dtype=np.int64)
    if xp.iscomplexobj(a):
        out: Arr = xp.empty(np.broadcast_shapes(a.shape, e.shape), dtype=a.dtype)
        out.real = xp.ldexp(a.real, e)  # type: ignore[attr-defined]
        out.imag = xp.ldexp(a.imag, e)  # type: ignore[attr-defined]
        return out
    real: Arr = xp.ldexp(a, e)
    return real


def magnitude(x: Arr) -> Arr:
    """``|x|`` for real ``x``; ``max(|re x|, |im x|)`` for complex ``x``.

    Within a factor √2 of ``|x|``, and finite for every finite complex
    number: ``|1.3e308 + 1.3e308j|`` itself overflows to inf, which would make
    a finite entry look non-finite to every scaling decision.
    """
    xp = namespace(x)
    a: Any = x
    out: Arr = xp.maximum(xp.abs(a.real), xp.abs(a.imag)) if xp.iscomplexobj(a) else xp.abs(a)
    return out


def exponent_of_max(absmax: Arr) -> Arr:
    """Integer ``k`` (int64) with ``absmax = f·2ᵏ``, ``0.5 ≤ f < 1``; 0 for
    zero or non-finite ``absmax``."""
    xp = namespace(absmax)
    with np.errstate(invalid="ignore"):
        safe = xp.where(xp.isfinite(absmax), absmax, 0.0)
    k: Arr = xp.frexp(safe)[1].astype(np.int64)
    return k


def pow2_factors(k: Arr) -> tuple[Arr, Arr]:
    """``(f1, f2)`` (float64) with ``f1·f2 = 2⁻ᵏ`` and ``x·f1·f2`` equal to
    ``ldexp(x, −k)`` (one rounding at most) for ``|x| < 2ᵏ``, ``k`` a frexp
    exponent of a finite nonzero maximum (−1073 ≤ k ≤ 1024).  A single factor
    where ``2⁻ᵏ`` is a float; for a subnormal maximum (k < −1022 … −1073,
    ``2⁻ᵏ`` > 2^1023), ``2^1000`` first (exact: the entries are subnormal) and
    the rest after.  What kernels multiply by, where ``ldexp`` is not at hand."""
    xp = namespace(k)
    a: Any = k
    big = -a > 1023
    f1: Arr = xp.where(big, 2.0**1000, xp.ldexp(xp.ones(a.shape), xp.where(big, 0, -a)))
    f2: Arr = xp.where(big, xp.ldexp(xp.ones(a.shape), xp.where(big, -a - 1000, 0)), 1.0)
    return f1, f2


def mantissa_product(u: Arr, chunk: int = 64) -> tuple[Arr, Arr]:
    """``Π_j u[..., j]`` as ``(m, e)`` with ``product = m·2ᵉ``, ``|m|`` in [0.5, 1).

    Overflow- and underflow-free for any length: each factor is split into
    mantissa and exponent, and the running mantissa is renormalised every
    ``chunk`` factors (0.5**64 is far from underflow).  Zero gives ``m = 0``.
    """
    xp = namespace(u)
    a: Any = u
    e_each: Any = exponent_of_max(magnitude(a))
    scaled = ldexp(a, -e_each)
    m: Any = xp.ones(a.shape[:-1], dtype=a.dtype)
    e = e_each.sum(axis=-1)
    for j in range(0, a.shape[-1], chunk):
        m = m * xp.prod(scaled[..., j : j + chunk], axis=-1)
        k = exponent_of_max(magnitude(m))
        m = ldexp(m, -k)
        e = e + k
    return m, e
