"""Second-derivative kernels of ``det`` for ``n ≤ 3``.

``H = D C(A)[V]`` (``C = cofactor(A)``, ``H_ij = Σ_kl ∂²det/∂A_ij∂A_kl·V_kl``,
holomorphic for complex input) is a polynomial for ``n ≤ 3``:

* ``n = 2``: ``C`` is linear, ``H = C(V) = [[v11, −v10], [−v01, v00]]``
  (exact, whatever ``A``);
* ``n = 3``: ``H_ij = ε_ikm ε_jln V_kl A_mn``, 36 products per matrix
  (:func:`matgrad.kernels.scalar.hvp3`), exact in exact arithmetic at every
  rank of ``A``: no division.

One matrix per iteration.  The entries are loaded in the input's dtype and
widened one by one (:func:`wide`), so a float32/complex64 batch is computed in
float64/complex128 in registers (float32 products are exact there) and
rounded once on the store: no widened copy of the batch.  The order of every
sum is that of :func:`matgrad.kernels.hessian.det_hvp`'s host polynomial, so
a real slot is bit-identical to the host's.  A 3×3 slot whose products
overflowed (a non-finite entry of ``H`` from finite ``A`` and ``V``, which
float32 input cannot produce) is flagged, and the caller hands it to the
host, which redoes it on the equilibrated pair: such a slot is the host's,
bit for bit.  A slot with a non-finite entry keeps the plain polynomial's
inf/NaN, as on the host.

``det_hessian`` (``n = 2, 3``): the tensor ``Hess[i, j, k, l] =
∂²det/∂A_ij∂A_kl`` is constant for ``n = 2`` and, for ``n = 3``,
``ε_ikm ε_jlq A_mq``: entries of ``A``, exact.
"""

from __future__ import annotations

import math
from typing import Any

import numba as nb
import numpy as np
from numba import types
from numba.extending import overload

from matgrad.kernels.scalar import compile_scalar

__all__ = ["factors", "flag_overflow", "frobenius_hvp_rows", "hessian_small", "hvp_one",
           "hvp_small", "pow2", "scale", "wide"]

# The CPU-compiled algorithms, bound at module level as globals of the
# kernels below (see matgrad.kernels.scalar: this keeps them cached).
_S = compile_scalar("cpu")
hvp3 = _S.hvp3
cofactor2 = _S.cofactor2
store3 = _S.store3
all_finite = _S.all_finite
hessian_small_one = _S.hessian_small_one
exponent = _S.exponent


def wide(x: Any) -> Any:
    """``x`` as float64 / complex128 (exact; the compiled version is the
    overload below)."""
    return np.complex128(x) if np.iscomplexobj(x) else np.float64(x)


@overload(wide)
def _wide(x):  # type: ignore[no-untyped-def]
    if isinstance(x, types.Complex):
        return lambda x: np.complex128(x)
    return lambda x: np.float64(x)


@nb.njit(inline="always")  # inlined: a call would cost three array views per slot
def hvp_one(A, V, H):  # type: ignore[no-untyped-def]
    """``H = D C(A)[V]`` of one 2×2 or 3×3 pair (any supported dtypes; the
    arithmetic in float64/complex128, ``H`` rounded once on the store).
    Returns False where a 3×3 entry came out inf or NaN."""
    if A.shape[0] == 2:
        cofactor2(V, H)  # C is linear: H = C(V)
        return True
    a = A
    v = V
    h = hvp3(wide(a[0, 0]), wide(a[0, 1]), wide(a[0, 2]), wide(a[1, 0]), wide(a[1, 1]),
             wide(a[1, 2]), wide(a[2, 0]), wide(a[2, 1]), wide(a[2, 2]),
             wide(v[0, 0]), wide(v[0, 1]), wide(v[0, 2]), wide(v[1, 0]), wide(v[1, 1]),
             wide(v[1, 2]), wide(v[2, 0]), wide(v[2, 1]), wide(v[2, 2]))
    return store3(H, h)


@nb.njit(inline="always")
def flag_overflow(A, V):  # type: ignore[no-untyped-def]
    """A slot whose ``H`` is not finite goes to the host where ``A`` and ``V``
    are finite (its products overflowed); else it keeps the plain inf/NaN."""
    return all_finite(A) and all_finite(V)


@nb.njit(nogil=True, cache=True)
def hvp_small(A, V, H, redo, lo, hi):  # type: ignore[no-untyped-def]
    """``H`` of the 2×2 or 3×3 pairs ``lo:hi``; ``redo[b]`` set for the slots
    the host must redo (see the module docstring)."""
    As = A[lo:hi]  # indexed from 0: no negative-index check per matrix
    Vs = V[lo:hi]
    Hs = H[lo:hi]
    for b in range(As.shape[0]):
        if not hvp_one(As[b], Vs[b], Hs[b]):
            redo[lo + b] = flag_overflow(As[b], Vs[b])


@nb.njit(nogil=True, cache=True)
def hessian_small(A, out, lo, hi):  # type: ignore[no-untyped-def]
    """``Hess (n, n, n, n)`` of the 2×2 or 3×3 matrices ``lo:hi`` into
    ``out``, which holds zeros (see
    :func:`matgrad.kernels.scalar.hessian_small_one`)."""
    As = A[lo:hi]
    outs = out[lo:hi]
    for b in range(As.shape[0]):
        hessian_small_one(As[b], outs[b])


# ---------------------------------------------------------------- ‖X‖_F
@nb.njit(inline="always")
def pow2(k):  # type: ignore[no-untyped-def]
    """``2^k`` where ``|k| ≤ 1000`` (a normal float: multiplying by it is
    exact barring over/underflow, one rounding at most), else 0: then
    :func:`scale` uses ``ldexp``."""
    if -1000 <= k <= 1000:
        return math.ldexp(1.0, k)
    return 0.0


@nb.njit(inline="always")
def scale(x, k, f):  # type: ignore[no-untyped-def]
    """``x·2^k`` correctly rounded, with ``f = pow2(k)``."""
    if f > 0.0:
        return x * f
    return math.ldexp(x, k)


@nb.njit(inline="always")
def factors(k):  # type: ignore[no-untyped-def]
    """``(f1, f2)``, two normal powers of two with ``f1·f2 = 2^k`` for the
    scaling exponents ``−1074 ≤ k ≤ 1074`` of a row: ``x·f1·f2`` is ``x·2^k``
    exactly for the entries that matter (a second rounding only for an
    entry 2^1022 below its row's largest, where both factors are needed)."""
    if k > 1000:
        return math.ldexp(1.0, 1000), math.ldexp(1.0, k - 1000)
    if k < -1000:
        return math.ldexp(1.0, k + 1000), math.ldexp(1.0, -1000)
    return math.ldexp(1.0, k), 1.0


@nb.njit(inline="always")
def _leaf_dot(X, Y, r, a, b, x1, x2, y1, y2):  # type: ignore[no-untyped-def]
    """``Σ_i (X[r, i]·x1·x2)·(Y[r, i]·y1·y2)`` over ``a ≤ i < b`` (``b − a ≤
    128``) in float64, in 8 lanes (NumPy's pairwise leaf)."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    i = a
    while i + 8 <= b:
        s0 += (np.float64(X[r, i]) * x1 * x2) * (np.float64(Y[r, i]) * y1 * y2)
        s1 += (np.float64(X[r, i + 1]) * x1 * x2) * (np.float64(Y[r, i + 1]) * y1 * y2)
        s2 += (np.float64(X[r, i + 2]) * x1 * x2) * (np.float64(Y[r, i + 2]) * y1 * y2)
        s3 += (np.float64(X[r, i + 3]) * x1 * x2) * (np.float64(Y[r, i + 3]) * y1 * y2)
        s4 += (np.float64(X[r, i + 4]) * x1 * x2) * (np.float64(Y[r, i + 4]) * y1 * y2)
        s5 += (np.float64(X[r, i + 5]) * x1 * x2) * (np.float64(Y[r, i + 5]) * y1 * y2)
        s6 += (np.float64(X[r, i + 6]) * x1 * x2) * (np.float64(Y[r, i + 6]) * y1 * y2)
        s7 += (np.float64(X[r, i + 7]) * x1 * x2) * (np.float64(Y[r, i + 7]) * y1 * y2)
        i += 8
    t = 0.0
    while i < b:
        t += (np.float64(X[r, i]) * x1 * x2) * (np.float64(Y[r, i]) * y1 * y2)
        i += 1
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)) + t


@nb.njit
def _dot(X, Y, r, x1, x2, y1, y2):  # type: ignore[no-untyped-def]
    """``Σ_i (X[r, i]·x1·x2)·(Y[r, i]·y1·y2)`` over the whole row: leaves of 128
    summed pairwise as a binary counter (the sum of 2ᵏ leaves is added to
    the pending sum of as many), so the rounding error grows like
    ``(16 + log₂(L/128))·eps``, not with the row length."""
    L = X.shape[1]
    acc = np.empty(64)  # pending partial sums, largest first
    level = np.empty(64, dtype=np.int64)
    top = 0
    a = 0
    while a < L:
        s = _leaf_dot(X, Y, r, a, min(a + 128, L), x1, x2, y1, y2)
        lv = 0
        while top > 0 and level[top - 1] == lv:
            top -= 1
            s = acc[top] + s
            lv += 1
        acc[top] = s
        level[top] = lv
        top += 1
        a += 128
    s = acc[top - 1]
    for q in range(top - 2, -1, -1):
        s = acc[q] + s
    return s


@nb.njit(nogil=True, cache=True)
def frobenius_hvp_rows(X, V, out, lo, hi):  # type: ignore[no-untyped-def]
    """``H = (V − G·⟨G, V⟩)/‖X‖_F`` (``G = X/‖X‖_F``) for the rows ``lo:hi``
    of the real views ``X``, ``V``, ``out`` ``(B, L)`` (float32 or float64;
    a complex batch as ``re, im, …``, so ``⟨G, V⟩ = Re Σ conj(g)·v`` is the
    real dot product).

    Per row: ``2^kx``, ``2^kv`` the binades of ``max|x|``, ``max|v|``
    (NaN-propagating); ``xs = x·2^-kx``, ``vs = v·2^-kv`` (exact, but for
    entries 2^1022 below their row's largest; see :func:`factors`);
    ``t = sqrt(Σ xs²)`` (≥ 0.5), ``s = Σ xs·vs / t``, both pairwise in
    float64; ``h = ((vs − (xs/t)·s)/t)·2^(kv − kx)``, rounded once (to
    float32 on the store for float32 input).  ``‖X‖`` is never formed, so an
    entry over- or underflows only where the true value does.  ``X = 0``
    (no Hessian) and NaN/inf in ``X``: a NaN row; NaN/inf in ``V``
    propagates.  Four reads of the row, in cache for rows up to a few
    thousand elements."""
    L = X.shape[1]
    for r in range(lo, hi):
        ax = 0.0
        av = 0.0
        for i in range(L):
            a = abs(np.float64(X[r, i]))
            if a > ax or a != a:  # once NaN, stays NaN
                ax = a
            c = abs(np.float64(V[r, i]))
            if c > av or c != c:
                av = c
        if not (ax > 0.0 and ax < math.inf):
            for i in range(L):
                out[r, i] = math.nan
            continue
        x1, x2 = factors(-exponent(ax))
        v1, v2 = factors(-exponent(av))  # 1 for a zero or non-finite maximum
        if L <= 128:  # one leaf, inlined: a call costs more than a short row
            t = math.sqrt(_leaf_dot(X, X, r, 0, L, x1, x2, x1, x2))
            s = _leaf_dot(X, V, r, 0, L, x1, x2, v1, v2) / t
        else:
            t = math.sqrt(_dot(X, X, r, x1, x2, x1, x2))
            s = _dot(X, V, r, x1, x2, v1, v2) / t
        e = exponent(av) - exponent(ax)
        fe = pow2(e)
        for i in range(L):
            g = (np.float64(X[r, i]) * x1 * x2) / t
            vs = np.float64(V[r, i]) * v1 * v2
            out[r, i] = scale((vs - g * s) / t, e, fe)
