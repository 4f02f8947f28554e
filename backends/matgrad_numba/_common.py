"""Scalar helpers shared by the Numba kernels (inlined into them)."""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = ["abs2", "exponent", "mag1", "mul_pow2"]

_TWO_1000 = 2.0**1000
_TWO_M1000 = 2.0**-1000


@nb.njit(inline="always", cache=True)
def abs2(v):  # type: ignore[no-untyped-def]
    """|v|² in float64 (exact squares of float32 values)."""
    r = np.float64(v.real)
    i = np.float64(v.imag)
    return r * r + i * i


@nb.njit(inline="always", cache=True)
def mag1(v):  # type: ignore[no-untyped-def]
    """|re| + |im|: LAPACK's pivot measure (|v| for real v)."""
    return abs(v.real) + abs(v.imag)


@nb.njit(inline="always", cache=True)
def exponent(a):  # type: ignore[no-untyped-def]
    """k with a = f·2ᵏ, 0.5 ≤ f < 1, for finite a > 0; 0 for 0 or non-finite."""
    if a > 0.0 and a < math.inf:
        return math.frexp(a)[1]
    return 0


@nb.njit(inline="always", cache=True)
def mul_pow2(v, e):  # type: ignore[no-untyped-def]
    """v·2ᵉ for real or complex v, exact barring over/underflow, any int e."""
    while e > 1000:
        v = v * _TWO_1000
        e -= 1000
    while e < -1000:
        v = v * _TWO_M1000
        e += 1000
    h = e // 2
    return v * math.ldexp(1.0, h) * math.ldexp(1.0, e - h)
