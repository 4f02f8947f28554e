"""Characteristic-polynomial kernels.

``balance``: LAPACK gebal's permutation and scaling (2-norm version), one
matrix per work item, with the semantics of
:func:`matgrad.kernels.charpoly.balance_batched`.
``hessenberg``: Householder reduction, one matrix per work item
(LAPACK ``gehrd`` through :mod:`matgrad.kernels.charpoly` for large ``n``).
``hyman``: for every (matrix, point) pair, Hyman's recurrence on
``M = xI − H`` and its derivative, O(n²) per point, with the diagonal blocks
of a reducible ``H`` handled one after another (``p = Π p_b``,
``p′ = Σ p′_b Π_{c≠b} p_c``) and every running quantity kept as
mantissa·2ᵉ (:func:`matgrad.kernels.scalar.hyman_point`, compiled for the
CPU and called).  Nothing divides by ``x − λ``: exact at eigenvalues.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from matgrad.kernels.scalar import compile_scalar

from ._runtime import launch

__all__ = ["balance", "balance_batch", "hessenberg", "hyman", "hyman_orders"]

# bound at module level, a global of the kernel (see matgrad.kernels.scalar)
hyman_point = compile_scalar("cpu").hyman_point
hyman_orders_point = compile_scalar("cpu").hyman_orders_point

#: as matgrad.kernels.charpoly (module constants: globals of the kernels)
BALANCE_LIMIT = 969
BALANCE_FACTOR = 0.95
BALANCE_SWEEPS = 100


@nb.njit(nogil=True, cache=True, inline="always")
def _exponent(a):  # type: ignore[no-untyped-def]
    """frexp exponent of a finite a > 0; 0 for 0 (as exponent_of_max)."""
    if a > 0.0 and a < math.inf:
        return math.frexp(a)[1]
    return 0


@nb.njit(nogil=True, cache=True, inline="always")
def _mag(v):  # type: ignore[no-untyped-def]
    return max(abs(v.real), abs(v.imag))


@nb.njit(nogil=True, cache=True, inline="always")
def _pow2(v, e):  # type: ignore[no-untyped-def]
    """v·2ᵉ rounded once (one exact factor where 2ᵉ is a normal float, as
    ldexp; |e| ≤ 2·BALANCE_LIMIT here)."""
    if e >= -1022 and e <= 1023:
        return v * math.ldexp(1.0, e)
    h = e // 2
    return v * math.ldexp(1.0, h) * math.ldexp(1.0, e - h)


@nb.njit(nogil=True, cache=True)
def _line_norm(W, b, i, lo, hi, column):  # type: ignore[no-untyped-def]
    """(f, e, emax): ‖W[b, lo:hi, i]‖₂ (column) or ‖W[b, i, lo:hi]‖₂ (row) as
    f·2ᵉ, f in [0.5, 1) or 0, and the frexp exponent of the whole column's
    (row's) maximum; the entries are scaled by a power of two before they
    are squared (no overflow, no underflow of what matters)."""
    n = W.shape[1]
    m = 0.0
    for j in range(lo, hi):
        a = _mag(W[b, j, i]) if column else _mag(W[b, i, j])
        m = max(m, a)
    em = _exponent(m)
    h = -em // 2
    f1 = math.ldexp(1.0, h)
    f2 = math.ldexp(1.0, -em - h)
    s = 0.0
    for j in range(lo, hi):
        a = W[b, j, i] if column else W[b, i, j]
        r = a.real * f1 * f2
        q = a.imag * f1 * f2
        s += r * r + q * q
    full = 0.0
    for j in range(n):
        a = _mag(W[b, j, i]) if column else _mag(W[b, i, j])
        full = max(full, a)
    f, e = math.frexp(math.sqrt(s))
    return f, e + em, _exponent(full)


@nb.njit(nogil=True, cache=True)
def _step(cf, ce, rf, re, ca, ra):  # type: ignore[no-untyped-def]
    """balance_steps of matgrad.kernels.charpoly for one index."""
    if cf == 0.0 or rf == 0.0:
        return 0
    d = re - ce
    if d % 2 == 0:
        e = d // 2
    elif rf <= cf:
        e = (d - 1) // 2
    else:
        e = (d + 1) // 2
    L = BALANCE_LIMIT
    if e > 0:
        e = min(e, max(min(L - ca, ra - 1 + L), 0))
    elif e < 0:
        e = max(e, min(max(ra - L, 1 - L - ca), 0))
    if e == 0:
        return 0
    top = max(ce, re)
    old = math.ldexp(cf, ce - top) + math.ldexp(rf, re - top)
    new = math.ldexp(cf, ce + e - top) + math.ldexp(rf, re - e - top)
    return e if new < BALANCE_FACTOR * old else 0


@nb.njit(nogil=True, cache=True)
def balance(W, active, permute, lo, hi):  # type: ignore[no-untyped-def]
    """Balance each ``W[b]``, ``lo ≤ b < hi``, in place where ``active[b]``:
    isolation permutation where ``permute[b]`` (the middle block ordered by
    decreasing |diagonal|), then sweeps of power-of-two
    row/column scalings over the middle block until one changes nothing
    (see :func:`matgrad.kernels.charpoly.balance_batched`)."""
    n = W.shape[1]
    key = np.empty(n, dtype=np.int64)
    act = np.empty(n, dtype=np.bool_)
    cand = np.empty(n, dtype=np.bool_)
    count = np.empty(n, dtype=np.int64)
    T = np.empty((n, n), dtype=W.dtype)
    big = (n + 1) * (n + 1)
    for b in range(lo, hi):
        if not active[b] or n < 2:
            continue
        ilo = 0
        ihi = n
        if permute[b]:
            # rows with no off-diagonal entry among the active columns go to
            # the bottom, all of a step at once; running counts: O(n²)
            for i in range(n):
                key[i] = big + i
                act[i] = True
                c = 0
                for j in range(n):
                    if j != i and W[b, i, j] != 0:
                        c += 1
                count[i] = c
            for t in range(n):
                found = False
                for i in range(n):
                    cand[i] = act[i] and count[i] == 0
                    found = found or cand[i]
                if not found:
                    break
                for c in range(n):
                    if cand[c]:
                        key[c] = 2 * big + (n - t) * (n + 1) + c
                        act[c] = False
                        ihi -= 1
                        for r in range(n):
                            if r != c and W[b, r, c] != 0:
                                count[r] -= 1
            # then columns with none among the active rows, to the top
            for j in range(n):
                c = 0
                for i in range(n):
                    if i != j and act[i] and W[b, i, j] != 0:
                        c += 1
                count[j] = c
            for t in range(n):
                found = False
                for j in range(n):
                    cand[j] = act[j] and count[j] == 0
                    found = found or cand[j]
                if not found:
                    break
                for c in range(n):
                    if cand[c]:
                        key[c] = t * (n + 1) + c
                        act[c] = False
                        ilo += 1
                        for r in range(n):
                            if r != c and W[b, c, r] != 0:
                                count[r] -= 1
            # the middle block by decreasing |diagonal|, ties by index
            for i in range(n):
                if key[i] // big == 1:
                    mi = _mag(W[b, i, i])
                    r = 0
                    for j in range(n):
                        if key[j] // big == 1:
                            mj = _mag(W[b, j, j])
                            if mj > mi or (mj == mi and j < i):
                                r += 1
                    count[i] = r
            for i in range(n):
                if key[i] // big == 1:
                    key[i] = big + count[i]
            perm = np.argsort(key)
            for i in range(n):
                for j in range(n):
                    T[i, j] = W[b, perm[i], perm[j]]
            for i in range(n):
                for j in range(n):
                    W[b, i, j] = T[i, j]
        for _ in range(BALANCE_SWEEPS):
            changed = False
            for i in range(ilo, ihi):
                cf, ce, ca = _line_norm(W, b, i, ilo, ihi, True)
                rf, re, ra = _line_norm(W, b, i, ilo, ihi, False)
                e = _step(cf, ce, rf, re, ca, ra)
                if e != 0:
                    changed = True
                    d = W[b, i, i]
                    for j in range(n):
                        W[b, i, j] = _pow2(W[b, i, j], -e)
                    for j in range(n):
                        W[b, j, i] = _pow2(W[b, j, i], e)
                    W[b, i, i] = d
            if not changed:
                break


@nb.njit(nogil=True, cache=True)
def hessenberg(H, lo, hi):  # type: ignore[no-untyped-def]
    """Reduce each ``H[b]``, ``lo ≤ b < hi``, in place to upper Hessenberg form
    (P H P, P = I − 2vvᴴ)."""
    n = H.shape[1]
    v = np.empty(n, dtype=H.dtype)
    w = np.empty(n, dtype=H.dtype)
    for b in range(lo, hi):
        for k in range(n - 2):
            norm2 = 0.0
            for i in range(k + 1, n):
                norm2 += abs(H[b, i, k]) ** 2  # entries ≤ 1 after scaling
            norm = math.sqrt(norm2)
            if norm == 0.0:
                continue
            x0 = H[b, k + 1, k]
            mag0 = abs(x0)
            phase = x0 / mag0 if mag0 != 0 else x0 * 0 + 1
            for i in range(k + 1, n):
                v[i] = H[b, i, k]
            v[k + 1] += phase * norm  # x − α e₁, α = −phase·‖x‖: no cancellation
            vn2 = 0.0
            for i in range(k + 1, n):
                vn2 += abs(v[i]) ** 2
            vn = math.sqrt(vn2)
            for i in range(k + 1, n):
                v[i] = v[i] / vn
            # left: rows k+1.., columns k..
            for j in range(k, n):
                s = H[b, k + 1, j] * 0
                for i in range(k + 1, n):
                    s += v[i].conjugate() * H[b, i, j]
                w[j] = 2 * s
            for i in range(k + 1, n):
                for j in range(k, n):
                    H[b, i, j] -= v[i] * w[j]
            # right: all rows, columns k+1..
            for i in range(n):
                s = H[b, i, k + 1] * 0
                for j in range(k + 1, n):
                    s += H[b, i, j] * v[j]
                s = 2 * s
                for j in range(k + 1, n):
                    H[b, i, j] -= s * v[j].conjugate()
            for i in range(k + 2, n):
                H[b, i, k] = 0


@nb.njit(nogil=True, cache=True)
def hyman(H, sub, x, pm, dpm, pe, dpe, lo, hi):  # type: ignore[no-untyped-def]
    """Fill ``pm, dpm, pe, dpe (B, K)`` for the (matrix, point) pairs
    ``lo ≤ b·K + k < hi`` (one workspace per range)."""
    n = H.shape[1]
    K = x.shape[1]
    v = np.empty(n, dtype=x.dtype)
    dv = np.empty(n, dtype=x.dtype)
    ev = np.empty(n, dtype=np.int64)
    edv = np.empty(n, dtype=np.int64)
    for t in range(lo, hi):
        b = t // K
        k = t - b * K
        pm[b, k], dpm[b, k], pe[b, k], dpe[b, k] = hyman_point(H[b], sub[b], x[b, k], v, dv, ev,
                                                               edv)


@nb.njit(nogil=True, cache=True)
def hyman_orders(H, sub, x, order, pm, pe, lo, hi):  # type: ignore[no-untyped-def]
    """Fill the Taylor coefficients ``pm, pe (B, K, order + 1)`` (mantissa,
    exponent; :func:`matgrad.kernels.scalar.hyman_orders_point`) for the
    (matrix, point) pairs ``lo ≤ b·K + k < hi``."""
    n = H.shape[1]
    K = x.shape[1]
    w = np.empty((order + 1, n), dtype=x.dtype)
    ew = np.empty((order + 1, n), dtype=np.int64)
    sm = np.empty(order + 1, dtype=x.dtype)
    se = np.empty(order + 1, dtype=np.int64)
    for t in range(lo, hi):
        b = t // K
        k = t - b * K
        hyman_orders_point(H[b], sub[b], x[b, k], order, w, ew, sm, se, pm[b, k], pe[b, k])


def balance_batch(W: np.ndarray, active: np.ndarray, permute: np.ndarray) -> None:
    """:data:`matgrad.kernels.charpoly.Balancer` on the ``balance`` kernel
    (one matrix per work item; a balanced matrix costs one sweep, O(n²))."""
    B, n, _ = W.shape
    launch(balance, B, 8 * B * n * n, W, active, permute)
