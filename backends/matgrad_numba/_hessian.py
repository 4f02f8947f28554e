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

from typing import Any

import numba as nb
import numpy as np
from numba import types
from numba.extending import overload

from matgrad.kernels.scalar import compile_scalar

__all__ = ["flag_overflow", "hessian_small", "hvp_one", "hvp_small", "wide"]

# The CPU-compiled algorithms, bound at module level as globals of the
# kernels below (see matgrad.kernels.scalar: this keeps them cached).
_S = compile_scalar("cpu")
hvp3 = _S.hvp3
all_finite = _S.all_finite
hessian_small_one = _S.hessian_small_one


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
        H[0, 0] = V[1, 1]
        H[0, 1] = -V[1, 0]
        H[1, 0] = -V[0, 1]
        H[1, 1] = V[0, 0]
        return True
    a = A
    v = V
    h = hvp3(wide(a[0, 0]), wide(a[0, 1]), wide(a[0, 2]), wide(a[1, 0]), wide(a[1, 1]),
             wide(a[1, 2]), wide(a[2, 0]), wide(a[2, 1]), wide(a[2, 2]),
             wide(v[0, 0]), wide(v[0, 1]), wide(v[0, 2]), wide(v[1, 0]), wide(v[1, 1]),
             wide(v[1, 2]), wide(v[2, 0]), wide(v[2, 1]), wide(v[2, 2]))
    H[0, 0], H[0, 1], H[0, 2] = h[0], h[1], h[2]
    H[1, 0], H[1, 1], H[1, 2] = h[3], h[4], h[5]
    H[2, 0], H[2, 1], H[2, 2] = h[6], h[7], h[8]
    # v − v is 0 for a finite v and NaN for inf/NaN: one test for all nine
    z = ((h[0] - h[0]) + (h[1] - h[1]) + (h[2] - h[2]) + (h[3] - h[3]) + (h[4] - h[4])
         + (h[5] - h[5]) + (h[6] - h[6]) + (h[7] - h[7]) + (h[8] - h[8]))
    return z == 0


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
