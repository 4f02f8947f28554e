# mypy: allow-untyped-defs, allow-untyped-calls
"""Per-matrix and per-point algorithms, compiled for each target by a factory.

Each function here works on one matrix, one point or one number (closed-form
cofactors, the guarded 4×4 closed form, power-of-two equilibration,
Gauss-Jordan elimination with a mantissa-exponent determinant, Hyman's
recurrence), so that the Numba CPU kernels (parallel loops over matrices and
points) and the CUDA kernels (one thread per matrix or point) run the very
same code.  They are plain Python functions calling each other through this
module's globals; importing this module compiles nothing and does not import
Numba.

:func:`compile_scalar` is the explicit factory: ``compile_scalar("cpu")``
returns a namespace in which every algorithm is compiled with
``numba.njit`` (the small ones of :data:`INLINED` with ``inline="always"``),
``compile_scalar("cuda")`` one with ``numba.cuda.jit(device=True)``.  Each compiled function is a
copy of the function here (``types.FunctionType`` over the same code) whose
globals are a per-target copy of this module's globals, in which every
algorithm's name is bound to that target's compiled version: a CPU function
calls CPU siblings and a CUDA device function CUDA siblings, with no module
executed twice and no global target switch.

Why the kernels refer to these functions as module globals: Numba's on-disk
cache keys a kernel by its own bytecode and the pickled values of its
closure variables, not by its globals.  A kernel built inside a factory
that captures a jitted function in a closure pickles differently in every
process and misses the cache every time (numba issue 6264).  So the
parallel kernels stay module-level functions without closures in the
backend (``matgrad_numba``), binding what they call at module level
(``gauss_jordan_det_one = compile_scalar("cpu").gauss_jordan_det_one``); the
algorithms are compiled into them (the :data:`INLINED` ones inlined, the others linked
in), and a kernel's cached code is found again in every process without
compiling any of these.  Numba does not notice edits to this file in the
cache of a kernel that uses it: delete the cached ``*.nbi``/``*.nbc`` files
after editing it.
"""

# The algorithms are untyped Python on purpose: Numba (or numba-cuda) types
# them when it compiles them, for each argument type (the mypy line above).

from __future__ import annotations

import math
import threading
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from .codes import FALLBACK, NONFINITE, OK

__all__ = [
    "ALGORITHMS",
    "GRADED_BITS",
    "GRADED_PIVOT",
    "INLINED",
    "REDO_PIVOT",
    "SPREAD_BITS",
    "TARGETS",
    "abs2",
    "all_finite",
    "closed_form_one",
    "cof3",
    "cofactor2",
    "cofactor3_rescaled",
    "cofactor4_one",
    "col_exponent3",
    "compile_scalar",
    "det2_wide",
    "eliminate_one",
    "equilibrate_one",
    "exponent",
    "gauss_jordan_det_one",
    "gauss_jordan_inv_one",
    "hessian_small_one",
    "hvp3",
    "hyman_fold",
    "hyman_normal",
    "hyman_orders_point",
    "hyman_place",
    "hyman_point",
    "mag1",
    "mag_max",
    "mul_pow2",
    "split_pow2",
    "store3",
    "unscale_one",
    "zero_product",
]

_EPS = float(np.finfo(np.float64).eps)
#: A pivot at or below this on the maximum-equilibrated matrix (every entry
#: below 1) hands the slot to the host, which redoes it on the matching
#: equilibration (matgrad.kernels.cofactor.matching_equilibrate): graded
#: matrices show tiny pivots here although they are well conditioned once
#: scaled on both sides.
REDO_PIVOT = 2.0**-26
#: Column exponents ``c_j`` of the maximum equilibration spanning more than
#: this many bits make a matrix *wide* (columns graded beyond what the row
#: maxima removed), and a wide matrix is handed to the host, whose matching
#: equilibration is the better frame for it: the elimination's rounding
#: noise in ``Ã`` is scaled back by powers of two that differ by up to
#: 2^spread, which swamps a cofactor that is small in ``Ã`` but not in ``A``
#: (a graded triangular matrix's structurally zero cofactors, or entries of
#: 1e-290 returned 12 % wrong with every pivot above 0.06).  Only the
#: columns' spread counts, so a row scaling (which the row maxima remove
#: exactly) never changes the decision.
SPREAD_BITS = 24
#: A matrix whose column exponents span more than GRADED_BITS is *graded*:
#: a pivot at or below GRADED_PIVOT (instead of REDO_PIVOT) hands it to the
#: host too.  The maximum equilibration's frame was measured 50–500 times
#: less accurate than the matching one (normwise) on such matrices with
#: pivots near 1e-3 (diagonal similarities D·R·D⁻¹ with D spanning 2^±20,
#: graded tridiagonals), while unscaled random matrices (column spread at
#: most 4 bits up to n = 64) never take this route.  A graded matrix with an
#: exactly zero entry (banded, triangular) goes to the host whatever its
#: pivots: its structural zeros fill with noise in the maximum frame
#: (measured 20–150 times the textbook error with every pivot above 0.04).
GRADED_BITS = 4
GRADED_PIVOT = 2.0**-5
_TWO_1000 = 2.0**1000
_TWO_M1000 = 2.0**-1000


def abs2(v):
    """|v|² in float64 (exact squares of float32 values)."""
    r = np.float64(v.real)
    i = np.float64(v.imag)
    return r * r + i * i


def mag1(v):
    """|re| + |im|: LAPACK's pivot measure (|v| for real v)."""
    return abs(v.real) + abs(v.imag)


def mag_max(v):
    """max(|re|, |im|): within √2 of |v|, and finite for every finite v
    (|1.3e308 + 1.3e308j| overflows)."""
    return max(abs(v.real), abs(v.imag))


def exponent(a):
    """k with a = f·2ᵏ, 0.5 ≤ f < 1, for finite a > 0; 0 for 0 or non-finite."""
    if a > 0.0 and a < math.inf:
        return math.frexp(a)[1]
    return 0


def mul_pow2(v, e):
    """v·2ᵉ for real or complex v, exact barring over/underflow, any int e.

    A product that has overflowed is returned as it is: multiplying a complex
    ``inf + 0j`` again would turn its zero part into ``inf·0 = NaN``."""
    while e > 1000:
        v = v * _TWO_1000
        e -= 1000
        if not mag_max(v) < math.inf:
            return v
    while e < -1000:
        v = v * _TWO_M1000
        e += 1000
    if e >= -1022:
        return v * math.ldexp(1.0, int(e))  # one multiplication: |e| ≤ 1000 here
    h = e // 2
    return v * math.ldexp(1.0, int(h)) * math.ldexp(1.0, int(e - h))


def cof3(a00, a01, a02, a10, a11, a12, a20, a21, a22):
    return (
        a11 * a22 - a12 * a21, a12 * a20 - a10 * a22, a10 * a21 - a11 * a20,
        a21 * a02 - a22 * a01, a22 * a00 - a20 * a02, a20 * a01 - a21 * a00,
        a01 * a12 - a02 * a11, a02 * a10 - a00 * a12, a00 * a11 - a01 * a10,
    )


def hvp3(a00, a01, a02, a10, a11, a12, a20, a21, a22,
         v00, v01, v02, v10, v11, v12, v20, v21, v22):
    """``H = D C(A)[V]`` of one 3×3 pair, entries row by row.

    ``C_ij = ½ ε_ikm ε_jln A_kl A_mn``, so ``H_ij = ε_ikm ε_jln V_kl A_mn``:
    row ``i`` of ``H`` is ``V_k × A_m + A_k × V_m`` for the cyclic
    ``(i, k, m)``, entry ``j`` of ``x × y`` being ``x_p y_q − x_q y_p`` for
    the cyclic ``(j, p, q)``.  Each entry is summed as
    ``((v_kp a_mq − v_kq a_mp) + a_kp v_mq) − a_kq v_mp``, the order of
    :func:`matgrad.kernels.hessian.det_hvp`'s host polynomial, so that a
    real slot is bit-identical to it.  No division: exact in exact
    arithmetic at every rank of ``A``."""
    return (
        v11 * a22 - v12 * a21 + a11 * v22 - a12 * v21,
        v12 * a20 - v10 * a22 + a12 * v20 - a10 * v22,
        v10 * a21 - v11 * a20 + a10 * v21 - a11 * v20,
        v21 * a02 - v22 * a01 + a21 * v02 - a22 * v01,
        v22 * a00 - v20 * a02 + a22 * v00 - a20 * v02,
        v20 * a01 - v21 * a00 + a20 * v01 - a21 * v00,
        v01 * a12 - v02 * a11 + a01 * v12 - a02 * v11,
        v02 * a10 - v00 * a12 + a02 * v10 - a00 * v12,
        v00 * a11 - v01 * a10 + a00 * v11 - a01 * v10,
    )


def all_finite(A):
    """Every entry of the matrix ``A`` finite (real and imaginary parts)."""
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            if not mag_max(A[i, j]) < math.inf:
                return False
    return True


def hessian_small_one(A, out):
    """``Hess = ∂²det/∂A_ij∂A_kl`` of one 2×2 or 3×3 matrix into ``out (n, n,
    n, n)``, which holds zeros: only the nonzero entries are written.
    ``n = 2``: ``∂C_ij/∂A_kl`` of ``C = [[a11, −a10], [−a01, a00]]``;
    ``n = 3``: ``ε_ikm ε_jlq A_mq`` for ``k = i + s``, ``m = i + 2s`` (mod 3),
    ``ε_ikm = +1`` for ``s = 1`` and −1 for ``s = 2`` (``l``, ``q`` from ``j``
    and ``t`` likewise): entries of ``A``, exact."""
    if A.shape[0] == 2:
        out[0, 0, 1, 1] = 1
        out[1, 1, 0, 0] = 1
        out[0, 1, 1, 0] = -1
        out[1, 0, 0, 1] = -1
        return
    for i in range(3):
        for s in range(1, 3):
            k = (i + s) % 3
            m = (i + 2 * s) % 3
            for j in range(3):
                for t in range(1, 3):
                    entry = A[m, (j + 2 * t) % 3]
                    out[i, j, k, (j + t) % 3] = entry if s == t else -entry


def col_exponent3(a0, a1, a2, r0, r1, r2):
    """−exponent(max_i |a_i|·2^r_i) of one column, from integer exponents
    (0 for a zero column)."""
    top = -(10**6)
    if mag_max(a0) > 0:
        top = max(top, exponent(mag_max(a0)) + r0)
    if mag_max(a1) > 0:
        top = max(top, exponent(mag_max(a1)) + r1)
    if mag_max(a2) > 0:
        top = max(top, exponent(mag_max(a2)) + r2)
    return 0 if top == -(10**6) else -top


def closed_form_one(A, C):
    """Cofactors of one 2×2 or 3×3 matrix ``A`` into ``C`` (float64/complex128)
    by the plain closed form: 2×2 [[d, −c], [−b, a]], exact; 3×3 cross
    products of rows.  Returns False where a 3×3 cofactor came out inf or NaN
    (an intermediate product overflowed, or an entry is not finite): the
    caller then calls :func:`cofactor3_rescaled` for that matrix.  It holds
    no call itself, so that, inlined into a loop over matrices, it compiles
    to straight-line code (a call here would cost a reference-counted view
    of both matrices per iteration, measured 2× the whole loop)."""
    if A.shape[0] == 2:
        cofactor2(A, C)
        return True
    a = A
    c = cof3(a[0, 0], a[0, 1], a[0, 2], a[1, 0], a[1, 1], a[1, 2],
              a[2, 0], a[2, 1], a[2, 2])
    return store3(C, c)


def cofactor2(A, C):
    """``C = [[a11, −a10], [−a01, a00]]``, the cofactors of a 2×2 ``A``
    (exact)."""
    C[0, 0] = A[1, 1]
    C[0, 1] = -A[1, 0]
    C[1, 0] = -A[0, 1]
    C[1, 1] = A[0, 0]


def store3(C, c):
    """``C`` (3×3) ← the nine values ``c`` row by row (rounded to ``C``'s
    dtype on the store); whether all nine are finite."""
    C[0, 0], C[0, 1], C[0, 2] = c[0], c[1], c[2]
    C[1, 0], C[1, 1], C[1, 2] = c[3], c[4], c[5]
    C[2, 0], C[2, 1], C[2, 2] = c[6], c[7], c[8]
    # v − v is 0 for a finite v and NaN for inf/NaN (in either part): one
    # sum tests all nine without a branch per entry
    z = ((c[0] - c[0]) + (c[1] - c[1]) + (c[2] - c[2]) + (c[3] - c[3]) + (c[4] - c[4])
         + (c[5] - c[5]) + (c[6] - c[6]) + (c[7] - c[7]) + (c[8] - c[8]))
    return z == 0


def split_pow2(x):
    """``(m, e)`` with ``x = m·2ᵉ`` and ``mag_max(m)`` in [0.5, 1); ``(0, NONE)``
    for 0 (finite ``x``)."""
    m = mag_max(x)
    if m == 0:
        return x * 0, -(2**40)
    e = exponent(m)
    return mul_pow2(x, -e), e


def det2_wide(p, q, r, s):
    """``p·q − r·s`` for finite entries of any magnitude: the mantissas'
    products, aligned to the larger product exponent, subtracted, and scaled
    back once, so the result over- or underflows only where it truly does."""
    none = -(2**40)
    pm, pe = split_pow2(p)
    qm, qe = split_pow2(q)
    rm, re = split_pow2(r)
    sm, se = split_pow2(s)
    e1 = none if (pe == none or qe == none) else pe + qe
    e2 = none if (re == none or se == none) else re + se
    top = max(e1, e2)
    if top == none:
        return p * 0
    t1 = mul_pow2(pm * qm, max(e1 - top, -2000))
    t2 = mul_pow2(rm * sm, max(e2 - top, -2000))
    return mul_pow2(t1 - t2, top)


def cofactor3_rescaled(A, C):
    """Cofactors of one 3×3 matrix whose plain cross products over- or
    underflowed (rare): each 2×2 minor by :func:`det2_wide`, so an entry
    over- or underflows only where its true value does (an equilibration of
    the whole matrix is not enough: ``a10·a21 − a11·a20 = 1.42e52`` of a
    graded triangular 3×3 underflowed to 0 in its frame).  A non-finite
    entry leaves the plain products (inf/NaN where they are)."""
    a = A
    finite = True
    for i in range(3):
        for j in range(3):
            if not (mag_max(a[i, j]) < math.inf):
                finite = False
    if not finite:
        c = cof3(a[0, 0], a[0, 1], a[0, 2], a[1, 0], a[1, 1], a[1, 2],
                 a[2, 0], a[2, 1], a[2, 2])
        C[0, 0], C[0, 1], C[0, 2] = c[0], c[1], c[2]
        C[1, 0], C[1, 1], C[1, 2] = c[3], c[4], c[5]
        C[2, 0], C[2, 1], C[2, 2] = c[6], c[7], c[8]
        return
    for i in range(3):
        k = (i + 1) % 3
        m = (i + 2) % 3
        for j in range(3):
            p = (j + 1) % 3
            q = (j + 2) % 3
            C[i, j] = det2_wide(a[k, p], a[m, q], a[k, q], a[m, p])


def cofactor4_one(A, C):
    """Closed-form cofactors of one 4×4 matrix, accepted only when provably
    accurate; returns False (``C`` unspecified) otherwise.

    Laplace expansion by complementary 2×2 minors: ``s`` from rows 0-1 and
    ``c`` from rows 2-3, then each cofactor is a 3-term sum.  The same
    expansion on |A| with every sign positive gives ``M`` with
    ``|C_computed − C| ≤ 5·eps·M`` entry by entry, so accepting only when
    ``‖M‖_F ≤ 8·‖C‖_F`` keeps the relative error ≤ 40·eps (the contract
    allows 64·eps·σ₁/σ₃ for n = 4).  That bound is normwise, so a graded
    matrix (nonzero magnitudes spanning more than 2^SPREAD_BITS), whose
    small cofactors it does not cover, is refused, as are entries beyond
    2^±300, where products could over- or underflow, and any non-finite
    result; the caller then takes the equilibrated Gauss-Jordan path.

    Long by design: the 16 cofactors are unrolled over named scalars (no
    array temporaries, every value in a register of one CPU iteration or one
    CUDA thread); a loop over index tables would need local arrays.
    """
    big = 0.0
    small = math.inf
    for i in range(4):
        for j in range(4):
            v = abs(A[i, j])
            big = max(big, v)
            if v > 0:
                small = min(small, v)
    if not (big < 2.0**300) or (big > 0 and small < 2.0**-300):
        return False
    if small < big * 2.0**-SPREAD_BITS:
        return False  # graded: the equilibrated elimination (or the host) instead
    # 2×2 minors on the column pairs (0,1) (0,2) (0,3) (1,2) (1,3) (2,3)
    s01 = A[0, 0] * A[1, 1] - A[0, 1] * A[1, 0]
    s02 = A[0, 0] * A[1, 2] - A[0, 2] * A[1, 0]
    s03 = A[0, 0] * A[1, 3] - A[0, 3] * A[1, 0]
    s12 = A[0, 1] * A[1, 2] - A[0, 2] * A[1, 1]
    s13 = A[0, 1] * A[1, 3] - A[0, 3] * A[1, 1]
    s23 = A[0, 2] * A[1, 3] - A[0, 3] * A[1, 2]
    c01 = A[2, 0] * A[3, 1] - A[2, 1] * A[3, 0]
    c02 = A[2, 0] * A[3, 2] - A[2, 2] * A[3, 0]
    c03 = A[2, 0] * A[3, 3] - A[2, 3] * A[3, 0]
    c12 = A[2, 1] * A[3, 2] - A[2, 2] * A[3, 1]
    c13 = A[2, 1] * A[3, 3] - A[2, 3] * A[3, 1]
    c23 = A[2, 2] * A[3, 3] - A[2, 3] * A[3, 2]
    # magnitudes of the same minors
    a = np.abs(A[0, 0]), np.abs(A[0, 1]), np.abs(A[0, 2]), np.abs(A[0, 3])
    b = np.abs(A[1, 0]), np.abs(A[1, 1]), np.abs(A[1, 2]), np.abs(A[1, 3])
    g = np.abs(A[2, 0]), np.abs(A[2, 1]), np.abs(A[2, 2]), np.abs(A[2, 3])
    h = np.abs(A[3, 0]), np.abs(A[3, 1]), np.abs(A[3, 2]), np.abs(A[3, 3])
    m01 = a[0] * b[1] + a[1] * b[0]
    m02 = a[0] * b[2] + a[2] * b[0]
    m03 = a[0] * b[3] + a[3] * b[0]
    m12 = a[1] * b[2] + a[2] * b[1]
    m13 = a[1] * b[3] + a[3] * b[1]
    m23 = a[2] * b[3] + a[3] * b[2]
    n01 = g[0] * h[1] + g[1] * h[0]
    n02 = g[0] * h[2] + g[2] * h[0]
    n03 = g[0] * h[3] + g[3] * h[0]
    n12 = g[1] * h[2] + g[2] * h[1]
    n13 = g[1] * h[3] + g[3] * h[1]
    n23 = g[2] * h[3] + g[3] * h[2]
    # rows 0 and 1 of C from the rows-2-3 minors, rows 2 and 3 from rows 0-1
    C[0, 0] = A[1, 1] * c23 - A[1, 2] * c13 + A[1, 3] * c12
    C[0, 1] = -(A[1, 0] * c23 - A[1, 2] * c03 + A[1, 3] * c02)
    C[0, 2] = A[1, 0] * c13 - A[1, 1] * c03 + A[1, 3] * c01
    C[0, 3] = -(A[1, 0] * c12 - A[1, 1] * c02 + A[1, 2] * c01)
    C[1, 0] = -(A[0, 1] * c23 - A[0, 2] * c13 + A[0, 3] * c12)
    C[1, 1] = A[0, 0] * c23 - A[0, 2] * c03 + A[0, 3] * c02
    C[1, 2] = -(A[0, 0] * c13 - A[0, 1] * c03 + A[0, 3] * c01)
    C[1, 3] = A[0, 0] * c12 - A[0, 1] * c02 + A[0, 2] * c01
    C[2, 0] = A[3, 1] * s23 - A[3, 2] * s13 + A[3, 3] * s12
    C[2, 1] = -(A[3, 0] * s23 - A[3, 2] * s03 + A[3, 3] * s02)
    C[2, 2] = A[3, 0] * s13 - A[3, 1] * s03 + A[3, 3] * s01
    C[2, 3] = -(A[3, 0] * s12 - A[3, 1] * s02 + A[3, 2] * s01)
    C[3, 0] = -(A[2, 1] * s23 - A[2, 2] * s13 + A[2, 3] * s12)
    C[3, 1] = A[2, 0] * s23 - A[2, 2] * s03 + A[2, 3] * s02
    C[3, 2] = -(A[2, 0] * s13 - A[2, 1] * s03 + A[2, 3] * s01)
    C[3, 3] = A[2, 0] * s12 - A[2, 1] * s02 + A[2, 2] * s01
    mag = 0.0
    mag += (b[1] * n23 + b[2] * n13 + b[3] * n12) ** 2
    mag += (b[0] * n23 + b[2] * n03 + b[3] * n02) ** 2
    mag += (b[0] * n13 + b[1] * n03 + b[3] * n01) ** 2
    mag += (b[0] * n12 + b[1] * n02 + b[2] * n01) ** 2
    mag += (a[1] * n23 + a[2] * n13 + a[3] * n12) ** 2
    mag += (a[0] * n23 + a[2] * n03 + a[3] * n02) ** 2
    mag += (a[0] * n13 + a[1] * n03 + a[3] * n01) ** 2
    mag += (a[0] * n12 + a[1] * n02 + a[2] * n01) ** 2
    mag += (h[1] * m23 + h[2] * m13 + h[3] * m12) ** 2
    mag += (h[0] * m23 + h[2] * m03 + h[3] * m02) ** 2
    mag += (h[0] * m13 + h[1] * m03 + h[3] * m01) ** 2
    mag += (h[0] * m12 + h[1] * m02 + h[2] * m01) ** 2
    mag += (g[1] * m23 + g[2] * m13 + g[3] * m12) ** 2
    mag += (g[0] * m23 + g[2] * m03 + g[3] * m02) ** 2
    mag += (g[0] * m13 + g[1] * m03 + g[3] * m01) ** 2
    mag += (g[0] * m12 + g[1] * m02 + g[2] * m01) ** 2
    norm = 0.0
    for i in range(4):
        for j in range(4):
            norm += abs2(C[i, j])
    # ‖M‖_F ≤ 8·‖C‖_F, in squares; NaN/inf fail the comparison
    return mag <= 64.0 * norm and norm < math.inf


def equilibrate_one(A, W, fr, fc):
    """``W = D_r A D_c`` by powers of two: row maxima into [0.5, 1), then
    column maxima (from integer exponents, so that no entry is rounded on the
    way).  Returns ``(status, cmax, rsum, csum, tol)``: ``tol`` is the pivot
    at or below which the elimination hands the matrix to the host
    (GRADED_PIVOT for a graded matrix, else REDO_PIVOT); on OK, ``fr[i]`` holds the
    row exponent ``r_i`` (an integer stored as float) and ``fc[j]`` the exact
    factor ``2^(c_j − cmax)`` ≤ 1.  NONFINITE for a NaN/inf entry, FALLBACK
    when the exponents leave the range of plain power-of-two factors (the
    caller finishes such a matrix on the host with ``ldexp``), or when the
    column exponents ``c_j`` span more than ``SPREAD_BITS`` (a wide matrix),
    or more than ``GRADED_BITS`` with an exactly zero entry: the host's
    matching path."""
    n = A.shape[0]
    for i in range(n):
        m = 0.0
        for j in range(n):
            v = mag_max(A[i, j])
            if not v < math.inf:
                return NONFINITE, 0, 0, 0, REDO_PIVOT
            m = max(m, v)
        fr[i] = -exponent(m)
    none = -(10**6)
    cmax = none
    cmin = -none  # the column exponents' spread decides "wide"
    rsum = 0
    csum = 0
    zero = False
    for j in range(n):
        top = none
        for i in range(n):
            v = mag_max(A[i, j])
            if v > 0:
                top = max(top, exponent(v) + int(fr[i]))
            else:
                zero = True
        c = 0 if top == none else -top
        fc[j] = c
        csum += c
        cmax = max(cmax, c)
        cmin = min(cmin, c)
    for i in range(n):
        rsum += int(fr[i])
        if abs(int(fr[i]) + cmax) > 1000:
            return FALLBACK, 0, 0, 0, REDO_PIVOT
    if cmax - cmin > SPREAD_BITS or (zero and cmax - cmin > GRADED_BITS):
        return FALLBACK, 0, 0, 0, REDO_PIVOT  # wide, or graded with zeros: the host
    tol = GRADED_PIVOT if cmax - cmin > GRADED_BITS else REDO_PIVOT
    for j in range(n):
        c = int(fc[j]) - cmax
        if c < -1000:
            return FALLBACK, 0, 0, 0, REDO_PIVOT
        fc[j] = math.ldexp(1.0, c)
    for i in range(n):
        f = math.ldexp(1.0, int(fr[i]) + cmax)
        for j in range(n):
            W[i, j] = (A[i, j] * f) * fc[j]
    return OK, cmax, rsum, csum, tol


def eliminate_one(W, perm, tol):
    """In-place Gauss-Jordan inversion of ``W`` with partial pivoting (n³
    flops; the pivot is the largest ``|re| + |im|``, LAPACK's choice).

    Returns ``(done, dm, de)``: ``det W = dm·2^de`` (sign included) from the
    pivots, which are those of LU with partial pivoting, so ``det`` and
    ``W⁻¹`` come from one elimination.  When done, ``W`` holds ``W⁻¹`` with
    its columns permuted (``W⁻¹[:, perm[j]]`` is column ``j``).  Stops, not
    done, at the first zero pivot or, for ``tol > 0``, the first with
    ``|u_kk| ≤ tol``; ``dm·2^de`` is then the signed product of the pivots
    before it."""
    n = W.shape[0]
    for i in range(n):
        perm[i] = i
    dm = W[0, 0] * 0 + 1.0
    de = 0
    for k in range(n):
        p = k
        best = mag1(W[k, k])
        for i in range(k + 1, n):
            v = mag1(W[i, k])
            if v > best:
                best, p = v, i
        if p != k:
            for j in range(n):
                W[k, j], W[p, j] = W[p, j], W[k, j]
            perm[k], perm[p] = perm[p], perm[k]
            dm = -dm
        piv = W[k, k]
        if piv == 0 or (tol > 0.0 and abs(piv) <= tol):
            return False, dm, de
        dm = dm * piv
        mag = abs(dm)
        if mag > 1e150 or mag < 1e-150:
            ke = exponent(mag)
            dm = mul_pow2(dm, -ke)
            de += ke
        inv = 1.0 / piv
        W[k, k] = 1.0
        for j in range(n):
            W[k, j] = W[k, j] * inv
        for i in range(n):
            f = W[i, k]
            if i != k and f != 0:
                W[i, k] = 0.0
                for j in range(n):
                    W[i, j] -= f * W[k, j]
    return True, dm, de


def unscale_one(W, out, perm, fr, fc, cmax, g):
    """``out[perm[j], i] = W[i, j]·2^(g + r_perm[j] + c_i)``: the transpose of
    an eliminated, column-permuted ``W`` scaled back through the
    equilibration exponents of :func:`equilibrate_one` (``fr``: ``r_i``,
    ``fc``: ``2^(c_j − cmax)``).  Returns OK, or FALLBACK where an entry is
    NaN (the elimination broke down: the host decides); inf is a true
    overflow, since the exponents are exact.

    Entry exponent = (g + r_i + cmax) + (c_j − cmax): the row factor is
    applied first and the column factor (≤ 1) last, so an intermediate is
    subnormal only where the result is; an intermediate overflow is redone
    exactly with :func:`mul_pow2`, as is every entry when a row exponent
    leaves ±1000."""
    n = W.shape[0]
    wide = False
    for i in range(n):
        if abs(g + int(fr[i]) + cmax) > 1000:
            wide = True
    for j in range(n):
        pj = perm[j]
        rowe = g + int(fr[pj]) + cmax
        f = math.ldexp(1.0, min(max(rowe, -1000), 1000))
        for i in range(n):
            w = W[i, j]
            if wide:
                out[pj, i] = mul_pow2(w, rowe + exponent(fc[i]) - 1)
            else:
                out[pj, i] = (w * f) * fc[i]
                if not (mag_max(out[pj, i]) < math.inf):
                    out[pj, i] = mul_pow2(w, rowe + exponent(fc[i]) - 1)
    for i in range(n):
        for j in range(n):
            v = out[i, j]
            if v != v:
                return FALLBACK
    return OK


def gauss_jordan_det_one(A, out, W, perm, fr, fc):
    """Cofactors ``C = det(A)·A⁻ᵀ`` of one matrix into ``out``, and its
    determinant: returns ``(status, dm, de)``, ``det A = dm·2^de`` when OK
    (``dm`` NaN otherwise); FALLBACK (a tiny pivot, or exponents beyond plain
    power-of-two factors) or NONFINITE (a NaN or inf entry) leave ``out``
    unspecified.

    Power-of-two equilibration ``Ã = D_r A D_c`` (always, decided from this
    matrix alone), Gauss-Jordan with partial pivoting, whose pivots give
    ``det Ã`` from the elimination that gives ``Ã⁻¹`` (which is what keeps
    ``det·Ã⁻ᵀ`` accurate for ill-conditioned matrices), then every entry
    scaled back by its exact power of two in one step,
    ``C(A)_ij = det(Ã)·(Ã⁻¹)_ji·2^(r_i + c_j − Σr − Σc)``, so an entry that
    does not depend on a huge row keeps all its bits.  A pivot
    ``|u_kk| ≤ REDO_PIVOT`` (``GRADED_PIVOT`` for a graded matrix; every
    ``|ã_ij| < 1``, so the test is absolute) or a wide matrix
    hands the matrix to the host, which redoes it on the matching
    equilibration and, if it is numerically singular there too, takes the
    rank-revealing path.
    """
    n = A.shape[0]
    nan = A[0, 0] * 0 + math.nan  # of A's type: "no value"
    status, cmax, rsum, csum, tol = equilibrate_one(A, W, fr, fc)
    if status != OK:
        return status, nan, 0
    done, dm, de = eliminate_one(W, perm, tol)
    if not done:
        return FALLBACK, nan, 0
    for i in range(n):
        for j in range(n):
            W[i, j] = dm * W[i, j]
    g = de - rsum - csum
    if unscale_one(W, out, perm, fr, fc, cmax, g) != OK:
        return FALLBACK, nan, 0
    return OK, dm, g


def gauss_jordan_inv_one(A, out, W, perm, fr, fc):
    """``A⁻ᵀ`` (conjugated for complex ``A``: the gradient of ``log|det A|``)
    of one matrix into ``out``, and its determinant: returns
    ``(status, dm, de)`` with ``det A = dm·2^de`` when OK.  A NaN or inf
    entry gives NONFINITE with ``dm`` NaN; FALLBACK (the host decides) where
    the matrix is wide or a pivot is ``≤ REDO_PIVOT`` (``GRADED_PIVOT`` for
    a graded matrix) or zero (a graded or
    singular matrix: the host redoes it on the matching equilibration, and
    an exactly zero pivot
    there makes the slot NaN), where ``Ã⁻¹`` overflowed, or where the
    exponents leave the range of plain power-of-two factors.

    The elimination of :func:`gauss_jordan_det_one` and
    ``(A⁻ᵀ)_ij = (Ã⁻¹)_ji·2^(r_i + c_j)``.
    """
    nan = A[0, 0] * 0 + math.nan  # of A's type: "no value"
    status, cmax, rsum, csum, tol = equilibrate_one(A, W, fr, fc)
    if status != OK:
        return status, nan, 0
    done, dm, de = eliminate_one(W, perm, tol)
    if not done:
        return FALLBACK, nan, 0  # a tiny or zero pivot: the host decides
    n = A.shape[0]
    for i in range(n):
        for j in range(n):
            w = W[i, j]
            if not mag_max(w) < math.inf:
                return FALLBACK, nan, 0  # Ã⁻¹ overflowed: the host redoes it
            W[i, j] = w.conjugate()
    if unscale_one(W, out, perm, fr, fc, cmax, 0) != OK:
        return FALLBACK, nan, 0
    return OK, dm, de - rsum - csum


def hyman_fold(s, es, ps, ep):
    """``s − ps`` for ``s·2^es`` and ``ps·2^ep``, as ``(m, e)``: aligned on the
    larger of the two, so that the smaller vanishes where it is below 2⁻¹⁰⁷⁴
    of it and nothing overflows."""
    if ep == es:
        return s - ps, es
    b = mag_max(ps)
    if b == 0:
        return s, es
    a = mag_max(s)
    if a == 0:
        return -ps, ep
    top = max(es + exponent(a), ep + exponent(b))
    return mul_pow2(s, es - top) - mul_pow2(ps, ep - top), top


def hyman_place(w, ew, ecur, val, e, i, end, hi):
    """Store ``val·2ᵉ`` as entry ``i − 1`` of ``w`` (v or v′, with exponents
    ``ew``) and return ``(current exponent, several)``.

    Kept at the current exponent while within [2⁻¹⁰⁰, hi] of it; else
    normalised to [0.5, 1) at an exponent of its own, and the entries
    ``i … end`` at the old current exponent follow it where that is exact
    (none above ``hi`` or below the normal range), or stay where they are
    (``several``: the block now has entries at several exponents)."""
    big = mag_max(val)
    d = e - ecur
    bigc = big if d == 0 else mul_pow2(big, d)
    if big == 0 or (bigc <= hi and bigc >= math.ldexp(1.0, -100)):
        w[i - 1] = val if d == 0 else mul_pow2(val, d)
        ew[i - 1] = ecur
        return ecur, False
    k = exponent(big)
    enew = e + k
    w[i - 1] = mul_pow2(val, -k)
    ew[i - 1] = enew
    shift = ecur - enew
    smax = 0.0
    smin = math.inf
    for j in range(i, end + 1):
        if ew[j] == ecur:
            m = mag_max(w[j])
            smax = max(smax, m)
            if m > 0 and m < smin:
                smin = m
    if smax == 0:
        return enew, False
    if mul_pow2(smax, shift) <= hi and mul_pow2(smin, shift) >= math.ldexp(1.0, -1022):
        for j in range(i, end + 1):
            if ew[j] == ecur:
                w[j] = mul_pow2(w[j], shift)
                ew[j] = enew
        return enew, False
    return enew, True


def hyman_point(H, sub, x, v, dv, ev, edv):
    """(pm, dpm, pe, dpe) for one upper Hessenberg H at one point x:
    p = pm·2^pe, p′ = dpm·2^dpe.

    The entries of v and v′ are kept as ``v_j = v[j]·2^ev[j]`` and
    ``v′_j = dv[j]·2^edv[j]``, each with exponents of its own
    (:func:`hyman_place`): the newest entry stays within
    [2⁻¹⁰⁰, 2^min(100, 850 − log2(|x|/‖H‖))] of the current exponent, so that
    x·v/h cannot overflow however large the point is (the caller sends
    points beyond 2⁸⁵⁰·max|A| to the power rule); an old entry is never
    scaled into inf (the companion matrix of x¹²⁸ − 1 at 10⁻³ made inf, and
    0·inf NaN) nor into the subnormals; v′ far above v (v′/v ≈ n/x at a tiny
    x) does not push x·v into the subnormals.  A row whose entries carry
    several exponents sums each run of one exponent and folds the runs
    together (:func:`hyman_fold`), s and its derivative each on an exponent
    of its own (p′ may be far below p: the companion of x¹²⁸ − 1 at −10⁻³
    has p = −1, p′ = −1.3e-379).

    Long by design: one device function per point (one CUDA thread) keeps
    the recurrence's running state — v, v′, their exponents and the
    renormalisation bounds — in registers; split into helpers it would pass
    eight scalars in and out at every step of the O(n²) loop.
    """
    n = H.shape[0]
    # |x| relative to ‖H‖, estimated from below by the diagonal and
    # subdiagonal (more renormalisation, never less): O(n) per point
    hmax = 0.0
    for i in range(n):
        hmax = max(hmax, mag_max(H[i, i]), mag_max(sub[i]))
    ex = min(max(exponent(mag_max(x)) - exponent(hmax), 0), 850)
    hi = math.ldexp(1.0, min(100, 850 - ex))
    lo = math.ldexp(1.0, -100)
    zero = x * 0
    pm = zero + 1
    dpm = zero
    pe = 0
    dpe = 0
    end = n - 1  # last index of the current diagonal block
    v[end] = zero + 1
    dv[end] = zero
    ev[end] = 0
    edv[end] = 0
    ecv = 0  # current exponents of v and v′
    ecd = 0
    multi = False  # the block has entries at several exponents
    hm = H[0, 0] * 0 + 1  # Π of the block's subdiagonal, as hm·2^he
    he = 0
    for i in range(n - 1, -1, -1):
        s = x * v[i]  # s carries a factor 2^es, ds 2^eds
        es = ev[i]
        if not multi and ecv == ecd:
            ds = x * dv[i] + v[i]
            eds = ecd
            for j in range(i, end + 1):
                h = H[i, j]
                s -= h * v[j]
                ds -= h * dv[j]
        elif not multi:
            ds = x * dv[i]
            eds = ecd
            for j in range(i, end + 1):
                h = H[i, j]
                s -= h * v[j]
                ds -= h * dv[j]
            ds, eds = hyman_fold(ds, eds, -v[i], ev[i])
        else:
            ps = zero
            ep = ev[i]
            for j in range(i, end + 1):
                if ev[j] != ep:
                    s, es = hyman_fold(s, es, ps, ep)
                    ps = zero
                    ep = ev[j]
                ps += H[i, j] * v[j]
            s, es = hyman_fold(s, es, ps, ep)
            ds, eds = hyman_fold(x * dv[i], edv[i], -v[i], ev[i])
            ps = zero
            ep = edv[i]
            for j in range(i, end + 1):
                if edv[j] != ep:
                    ds, eds = hyman_fold(ds, eds, ps, ep)
                    ps = zero
                    ep = edv[j]
                ps += H[i, j] * dv[j]
            ds, eds = hyman_fold(ds, eds, ps, ep)
        # sub[0] is 0 by construction: the top block always closes at i = 0,
        # even when H holds NaN (H[0, 0]·0 would be NaN and skip the close)
        hsub = sub[i]
        if hsub == 0:
            # block [i, end] done: p_b = s·Πh·2^es, p′_b = ds·Πh·2^eds.  p and
            # p′ keep exponents of their own (their ratio in the scaled
            # problem is 2⁻ᵏ times the true one): p′ ← p′·p_b + p·p′_b,
            # p ← p·p_b.
            a = s * hm
            ka = exponent(mag_max(a))
            a = mul_pow2(a, -ka)
            da = ds * hm
            kda = exponent(mag_max(da))
            da = mul_pow2(da, -kda)
            t1 = dpm * a
            e1 = dpe + es + he + ka
            t2 = pm * da
            e2 = pe + eds + he + kda
            if t1 == 0:
                dpm, dpe = t2, e2
            elif t2 == 0:
                dpm, dpe = t1, e1
            else:
                e = max(e1, e2)
                dpm = mul_pow2(t1, e1 - e) + mul_pow2(t2, e2 - e)
                dpe = e
            k = exponent(mag_max(dpm))
            dpm = mul_pow2(dpm, -k)
            dpe += k
            pm = pm * a
            pe += es + he + ka
            k = exponent(mag_max(pm))
            pm = mul_pow2(pm, -k)
            pe += k
            if i > 0:
                end = i - 1
                v[end] = zero + 1
                dv[end] = zero
                ev[end] = 0
                edv[end] = 0
                ecv = 0
                ecd = 0
                multi = False
                hm = H[0, 0] * 0 + 1
                he = 0
        else:
            hm = hm * hsub
            k = exponent(mag_max(hm))
            hm = mul_pow2(hm, -k)
            he += k
            # the usual case: s/h within range at the current exponent
            nv = s / hsub
            b = mag_max(nv)
            if es == ecv and b <= hi and (b >= lo or b == 0):
                v[i - 1] = nv
                ev[i - 1] = ecv
            else:
                # on normalised mantissas: the quotient of a tiny h (kept by
                # the deflation test when h·h_{i−1,i} matters) cannot overflow
                ks = exponent(mag_max(s))
                kh = exponent(mag_max(hsub))
                nv = mul_pow2(s, -ks) / mul_pow2(hsub, -kh)
                ecv, f = hyman_place(v, ev, ecv, nv, es + ks - kh, i, end, hi)
                multi = multi or f
            ndv = ds / hsub
            b = mag_max(ndv)
            if eds == ecd and b <= hi and (b >= lo or b == 0):
                dv[i - 1] = ndv
                edv[i - 1] = ecd
            else:
                ks = exponent(mag_max(ds))
                kh = exponent(mag_max(hsub))
                ndv = mul_pow2(ds, -ks) / mul_pow2(hsub, -kh)
                ecd, f = hyman_place(dv, edv, ecd, ndv, eds + ks - kh, i, end, hi)
                multi = multi or f
    return pm, dpm, pe, dpe


def hyman_normal(v, e):
    """``(m, e)`` of ``v·2ᵉ`` with ``|m|`` (max of the parts) in [0.5, 1); 0,
    inf and NaN unchanged."""
    k = exponent(mag_max(v))
    return mul_pow2(v, -k), e + k


def zero_product(a, b):
    """Whether ``a·b`` is exactly 0 (a zero times a finite number): such a
    term is left out of a sum, while a NaN or inf times 0 stays in (NaN)."""
    return (a == 0 and mag_max(b) < math.inf) or (b == 0 and mag_max(a) < math.inf)


def hyman_orders_point(H, sub, x, r, w, ew, sm, se, pm, pe):
    """Taylor coefficients ``c_m = p⁽ᵐ⁾(x)/m! = pm[m]·2^pe[m]``, m = 0 … r
    (``r < n``), of ``det(tI − H)`` at one point x, for one upper
    Hessenberg H with its deflated subdiagonal ``sub`` (``sub[0] = 0``).

    The recurrence of :func:`matgrad.kernels.charpoly._hyman` differentiated
    r times: with ``w_m = v⁽ᵐ⁾/m!``,
    ``s_{m,i} = x·w_{m,i} + w_{m−1,i} − Σ_{j≥i} h_ij w_{m,j}`` and
    ``w_{m,i−1} = s_{m,i}/h_{i,i−1}``; a finished block is folded in by the
    Cauchy product ``c_m ← Σ_j c_{m−j}·a_j``, highest order first, in place.
    Every quantity is a normalised mantissa times its own power of two
    (``w[m, j]·2^ew[m, j]``) and every sum adds its terms aligned on the
    larger (:func:`hyman_fold`), so nothing overflows or sinks into the
    subnormals whatever x and the exponents of H (points beyond
    ``2⁸⁵⁰·max|A|`` still go to the power rule, on the host): simpler than
    :func:`hyman_point`'s current-exponent scheme and slower per term, which
    suits the orders from 2 on.  Workspaces: ``w``, ``ew`` (r+1, n);
    ``sm``, ``se`` (r+1).  O(r·n²)."""
    n = H.shape[0]
    zero = x * 0
    kx = exponent(mag_max(x))
    xm = mul_pow2(x, -kx)
    for m in range(r + 1):
        pm[m] = zero + (1.0 if m == 0 else 0.0)
        pe[m] = 0
        w[m, n - 1] = zero + (1.0 if m == 0 else 0.0)
        ew[m, n - 1] = 0
    end = n - 1
    hm = zero + 1.0  # Π of the block's subdiagonal, hm·2^he
    he = 0
    for i in range(n - 1, -1, -1):
        for m in range(r + 1):
            acc, ae = hyman_normal(xm * w[m, i], kx + ew[m, i])
            if m >= 1:
                acc, ae = hyman_fold(acc, ae, -w[m - 1, i], ew[m - 1, i])
            for j in range(i, end + 1):
                h = H[i, j]
                if not zero_product(h, w[m, j]):
                    kh = exponent(mag_max(h))
                    acc, ae = hyman_fold(acc, ae, mul_pow2(h, -kh) * w[m, j], kh + ew[m, j])
            sm[m], se[m] = hyman_normal(acc, ae)
        hsub = sub[i]
        if hsub == 0:
            # block [i, end] done: a_m = s_m·Πh; c_m ← Σ_j c_{m−j}·a_j
            for m in range(r + 1):
                sm[m], se[m] = hyman_normal(sm[m] * hm, se[m] + he)
            for m in range(r, -1, -1):
                acc = zero
                ae = 0
                for j in range(m + 1):
                    if not zero_product(sm[j], pm[m - j]):
                        acc, ae = hyman_fold(acc, ae, -(pm[m - j] * sm[j]), pe[m - j] + se[j])
                pm[m], pe[m] = hyman_normal(acc, ae)
            if i > 0:
                end = i - 1
                for m in range(r + 1):
                    w[m, end] = zero + (1.0 if m == 0 else 0.0)
                    ew[m, end] = 0
                hm = zero + 1.0
                he = 0
        else:
            hm, he = hyman_normal(hm * hsub, he)
            kh = exponent(mag_max(hsub))
            hq = mul_pow2(hsub, -kh)
            for m in range(r + 1):
                w[m, i - 1], ew[m, i - 1] = hyman_normal(sm[m] / hq, se[m] - kh)


#: The algorithms :func:`compile_scalar` compiles, by name.
ALGORITHMS = (
    "abs2",
    "mag1",
    "mag_max",
    "exponent",
    "mul_pow2",
    "cof3",
    "cofactor2",
    "store3",
    "hvp3",
    "all_finite",
    "hessian_small_one",
    "col_exponent3",
    "closed_form_one",
    "split_pow2",
    "det2_wide",
    "cofactor3_rescaled",
    "cofactor4_one",
    "equilibrate_one",
    "eliminate_one",
    "unscale_one",
    "gauss_jordan_det_one",
    "gauss_jordan_inv_one",
    "hyman_fold",
    "hyman_place",
    "hyman_point",
    "hyman_normal",
    "zero_product",
    "hyman_orders_point",
)
#: Algorithms inlined into their callers (Numba ``inline="always"``): the
#: small leaf helpers and the closed forms' fast path, where a call costs more
#: than the work.  Every other algorithm is compiled once as a function of
#: its own and called: inlining a large algorithm into a parallel kernel
#: multiplies the kernel's compile time (every inlined copy goes through the
#: parfor passes again), measured 58.6 s against 20 s for ``matgrad warmup``
#: float64, for a few per cent of run time where the body dominates the call.
INLINED = frozenset({
    "abs2", "mag1", "mag_max", "exponent", "cof3", "cofactor2", "store3", "hvp3", "all_finite",
    "hessian_small_one",
    "closed_form_one", "cofactor4_one",
    "hyman_fold", "hyman_normal", "zero_product",
})
#: The targets :func:`compile_scalar` compiles for.
TARGETS = ("cpu", "cuda")

_compiled: dict[str, types.SimpleNamespace] = {}
_lock = threading.Lock()


def _jit(target: str, inline: bool) -> Callable[[Callable[..., Any]], Any]:
    """The decorator compiling one algorithm for ``target``, inlined into its
    callers or not (Numba is imported here, at the first compile)."""
    if target == "cpu":
        import numba

        return numba.njit(inline="always" if inline else "never")  # type: ignore[no-any-return]
    if target == "cuda":
        from numba import cuda

        return cuda.jit(device=True, inline=inline)  # type: ignore[no-any-return]
    raise ValueError(f"unknown target {target!r}: expected one of {TARGETS}")


def compile_scalar(target: str) -> types.SimpleNamespace:
    """The algorithms of this module compiled for ``target`` ("cpu": Numba
    ``njit``; "cuda": numba-cuda device functions), as attributes of a
    namespace (also ``target``).  One namespace per target and process.

    Each algorithm is copied with ``types.FunctionType`` over its own code
    and a per-target copy of this module's globals, in which every name of
    :data:`ALGORITHMS` is then bound to its compiled version: so a compiled
    algorithm calls its siblings compiled for the same target.  Numba
    compiles lazily, when a kernel calling these functions is compiled (or
    inlines them then), so building the namespace itself is cheap.
    """
    with _lock:
        if target not in _compiled:
            if target not in TARGETS:
                raise ValueError(f"unknown target {target!r}: expected one of {TARGETS}")
            scope = dict(globals())  # constants, modules, status codes
            compiled = {}
            for name in ALGORITHMS:
                f = globals()[name]
                copy = types.FunctionType(f.__code__, scope, f.__name__, f.__defaults__,
                                          f.__closure__)
                copy.__qualname__ = f.__qualname__
                copy.__doc__ = f.__doc__
                compiled[name] = _jit(target, name in INLINED)(copy)
            scope.update(compiled)  # siblings resolve to this target's versions
            _compiled[target] = types.SimpleNamespace(target=target, **compiled)
        return _compiled[target]
