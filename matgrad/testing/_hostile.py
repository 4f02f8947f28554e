"""Hostile finite inputs that broke earlier versions, as checks any backend
must pass (:class:`matgrad.testing.BackendContract` runs them on a backend;
the project runs them on every registered backend and, for the GPU kernels,
on Numba's CUDA simulator).

Each check names the class of inputs it stands for; references are exact
(Bareiss over dyadic integers) or closed forms, never the code under test.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np

import matgrad
from matgrad import _reference as ref

__all__ = [
    "HOSTILE_CHECKS",
    "KERNEL_CHECKS",
    "check_charpoly_far_points",
    "check_charpoly_graded_triangular",
    "check_charpoly_structured",
    "check_complex_beyond_dbl_max",
    "check_graded_cofactors",
    "check_graded_inverse",
    "check_huge_row_keeps_other_cofactors",
    "check_linear_charpoly_silent",
    "check_row_scaling_is_exact",
    "check_slot_independent_of_batch",
    "check_subnormal_matrix",
]

Array = np.ndarray


def _np(x: Any) -> Array:
    return np.asarray(x.compute() if hasattr(x, "compute") else x)


def _assert_entrywise(got: Array, exact: list[list[Any]], rtol: float, scale: Array) -> None:
    """|got_ij − exact_ij| ≤ rtol·scale_ij entry by entry (scale > 0)."""
    n = got.shape[-1]
    for i in range(n):
        for j in range(n):
            err = abs(mpmath.mpmathify(complex(got[i, j])) - exact[i][j])
            assert err <= rtol * scale[i, j], (i, j, got[i, j], exact[i][j])


# ------------------------------------------------- a huge or tiny row (scaling)
def check_huge_row_keeps_other_cofactors(backend: Any) -> None:
    """A row near 1e306 must not zero the cofactors that do not depend on it.

    Class: any row or column far from the others in scale, at every path
    (closed forms n ≤ 4, Gauss-Jordan, LAPACK).  Row 0 of C(A) does not
    depend on row 0 of A, so it must equal that of the unscaled matrix."""
    A = np.array([[1e306, 2e306, 3e306, 4e306], [2, 1, 4, 3], [3, 5, 1, 2], [4, 3, 2, 6.0]])
    C = _np(matgrad.det_grad(A, backend=backend))
    assert np.allclose(C[0], [-73.0, 30.0, 5.0, 32.0], rtol=0, atol=1e-12), C[0]
    exact = ref.ref_cofactor(A)
    scale = np.abs(np.array([[float(abs(v)) for v in row] for row in exact])) + 1.0
    _assert_entrywise(C, exact, 1e-13, scale)
    rng = np.random.default_rng(3)
    for n in (3, 5, 6, 8, 12):
        for k in (1017, 600, -600, -1000):
            B = rng.integers(-9, 10, size=(n, n)).astype(np.float64)
            B[0] = np.ldexp(rng.integers(1, 10, size=n).astype(np.float64), k)
            C = _np(matgrad.det_grad(B, backend=backend))
            exact = ref.ref_cofactor(B)
            # each row of C scales with the other rows of A: measure the
            # error against the exact row's largest entry
            mag = np.array([[float(abs(v)) for v in row] for row in exact])
            scale = np.repeat(mag.max(axis=1, keepdims=True), n, axis=1)
            _assert_entrywise(C, exact, 1e-12 * n, scale + 2.0**-1074)


def check_row_scaling_is_exact(backend: Any) -> None:
    """Power-of-two row scaling commutes exactly with every path: for
    D = diag(2^k, 1, …), C(DA) has row 0 equal to C(A)'s and the other rows
    scaled by 2^k, bit for bit (n ≠ 4: the 4×4 closed form is refused for
    the scaled matrix and replaced by elimination, which rounds differently),
    graded matrices that take the matching equilibration included."""
    rng = np.random.default_rng(7)
    graded = [1e-40 * np.eye(6) + np.triu(np.ones((6, 6)), 1),  # the matching path
              np.ldexp(np.eye(5) + np.eye(5, k=1), [-16, 7, 153, 271, -280])]
    for A in [rng.standard_normal((n, n)) for n in (2, 3, 5, 8, 20, 50, 70)] + graded:
        n = A.shape[0]
        C = _np(matgrad.det_grad(A, backend=backend))
        for k in (-500, 500):
            DA = A.copy()
            DA[0] = np.ldexp(DA[0], k)
            CD = _np(matgrad.det_grad(DA, backend=backend))
            assert np.array_equal(CD[0], C[0]), (n, k)
            assert np.array_equal(CD[1:], np.ldexp(C[1:], k)), (n, k)


def check_subnormal_matrix(backend: Any) -> None:
    """A matrix of subnormals: cofactors whose true value underflows are 0,
    never inf (the inverse of the unscaled matrix overflows)."""
    for n in (2, 3, 4, 5, 6, 9):
        A = np.eye(n) * 1e-310
        C = _np(matgrad.det_grad(A, backend=backend))
        # (1e-310)^(n−1)·I: subnormal for n = 2, an underflow to 0 beyond
        assert np.array_equal(C, np.eye(n) * (1e-310 if n == 2 else 0.0)), n
        G = _np(matgrad.logdet_grad(A, backend=backend))
        # A⁻ᵀ = 1e310·I: a true overflow on the diagonal, exact zeros elsewhere
        off = ~np.eye(n, dtype=bool)
        assert np.all(np.isposinf(np.diag(G))) and np.all(G[off] == 0)
    A = np.diag([1e-310, 1.0, 1.0, 1.0, 1.0])
    C = _np(matgrad.det_grad(A, backend=backend))
    assert C[0, 0] == 1.0 and C[1, 1] == 1e-310 and np.count_nonzero(C) == 5


# ------------------------------------------------- graded matrices
_DBL_MAX = mpmath.mpf(2) ** 1024
_HALF_TINY = mpmath.mpf(2) ** -1075  # below half the smallest subnormal: rounds to 0


def _assert_each_entry(got: Array, exact: list[list[Any]], rtol: float, what: str) -> None:
    """Every entry right relative to its own exact value: ±inf only where the
    exact value overflows, 0 only where it underflows, subnormals to within
    two units of 2⁻¹⁰⁷⁴, every other entry within ``rtol`` relative.  An
    exactly zero entry may carry rounding noise up to ``rtol`` times the
    largest finite exact entry (an elimination with row interchanges fills
    in the structural zeros of a triangular matrix's inverse)."""
    n = got.shape[-1]
    top = max((abs(v) for row in exact for v in row if abs(v) < _DBL_MAX), default=0)
    for i in range(n):
        for j in range(n):
            want = exact[i][j]
            g = complex(got[i, j])
            where = (what, i, j, got[i, j], mpmath.nstr(want, 6))
            if abs(want) >= _DBL_MAX:
                assert not np.isfinite(g), where
                continue
            assert np.isfinite(g), where
            err = abs(mpmath.mpc(g) - want)
            if want == 0:
                assert err <= rtol * top, where
            elif abs(want) <= _HALF_TINY:
                assert g == 0, where
            elif abs(want) < mpmath.mpf(2) ** -1022:
                assert err <= 2 * mpmath.mpf(2) ** -1074, where
            else:
                assert err <= rtol * abs(want), where


#: Graded matrices that are well conditioned once rows and columns are scaled
#: (by a maximum-product matching), on which the maximum equilibration shows
#: tiny pivots: an earlier version sent them to the SVD adjugate, whose
#: normwise noise, mapped back through the scaling, zeroed cofactors of
#: 8.5e124 or returned 3e299 for 9e192, and whose inverse overflowed into NaN.
_WIDE_COMPLEX_4X4 = np.array([
    [-1.0679935971587372e+96 + 3.653754093363279e+47j, 6.668014668742298e+240 + 2.375j,
     -8.0 - 4.0j, 2.1875j],
    [8.0 - 3.125j, -2.875j, 0.0, -1.5883711293676957e+29 + 1.0j],
    [-0.375 - 0.0j, -1.0679935971587372e+96 - 1.3552527156214815e-20j, -8.0 - 1.0j, -1.0 - 5.0j],
    [2.0370359764065848e+90 + 3.2172234934175177e-86j,
     1.4859555720672998e+135 - 3.125j, -1.0 + 7.0j, -2.5625 - 1.0679935971587372e+96j]])


def _graded_cases() -> list[tuple[str, Array]]:
    rng = np.random.default_rng(17)
    cases = [
        ("bidiagonal, columns 2^-16..2^271",
         np.ldexp(np.eye(5) + np.eye(5, k=1), [-16, 7, 153, 271, -280])),
        ("1e-20 I + triu(ones), n=5", 1e-20 * np.eye(5) + np.triu(np.ones((5, 5)), 1)),
        ("1e-40 I + triu(ones), n=10", 1e-40 * np.eye(10) + np.triu(np.ones((10, 10)), 1)),
        ("1e-160 I + triu(ones), n=4", 1e-160 * np.eye(4) + np.triu(np.ones((4, 4)), 1)),
        ("1e-40 I + tril(ones), n=6", 1e-40 * np.eye(6) + np.tril(np.ones((6, 6)), -1)),
        ("wide-exponent complex 4x4", _WIDE_COMPLEX_4X4),
    ]
    for n in (5, 8):
        # a well-conditioned bidiagonal with rows and columns scaled 2^±300
        R = np.eye(n) + np.diag(rng.uniform(0.5, 1, n - 1), 1)
        A = np.ldexp(np.ldexp(R, rng.integers(-300, 300, n)[:, None]),
                     rng.integers(-300, 300, n)[None, :])
        cases.append((f"two-sided 2^±300 bidiagonal, n={n}", A))
    return cases


def check_graded_cofactors(backend: Any) -> None:
    """Graded matrices (well conditioned after a two-sided scaling, tiny
    pivots after row and column maxima): every cofactor right relative to
    its own exact value (Bareiss over dyadic integers), exact zeros and true
    over/underflows included."""
    for name, A in _graded_cases():
        C = _np(matgrad.det_grad(A, backend=backend))
        exact = ref.ref_cofactor(A)
        _assert_each_entry(C, exact, 64 * A.shape[0] * 2.0**-52, name)


def check_graded_inverse(backend: Any) -> None:
    """``logdet_grad`` on the same graded matrices: ``A⁻ᵀ`` entry by entry,
    NaN nowhere (they are not singular), ±inf only where the true entry
    overflows (``1e-40·I + triu(ones)`` at n = 10 has six such entries), and
    ``log|det|`` right though ``det`` itself underflows."""
    for name, A in _graded_cases():
        (sign, logabs), G = matgrad.logdet_grad(A, backend=backend, return_value=True)
        exact = ref.ref_inverse_t(A)
        assert exact is not None
        _assert_each_entry(_np(G), exact, 64 * A.shape[0] * 2.0**-52, name)
        with mpmath.workdps(40):
            d = ref.exact_det_cofactor(A)[0]
            want = mpmath.log(abs(d))
            want_sign = complex(d / abs(d))
        assert abs(float(_np(logabs)) - float(want)) <= 1e-13 * max(1.0, abs(float(want))), name
        assert abs(complex(_np(sign)) - want_sign) <= 1e-13, name


# ------------------------------------------------- complex beyond DBL_MAX
def check_complex_beyond_dbl_max(backend: Any) -> None:
    """Complex entries with ``|z| > DBL_MAX`` (both parts finite) are finite
    input: every scaling decision must measure them without overflow."""
    z = 1.3e308 + 1.3e308j
    for n in (2, 3, 4, 5, 8):
        A = np.eye(n, dtype=complex)
        A[0, 0] = z
        C = _np(matgrad.det_grad(A, backend=backend))
        assert np.isfinite(C).all(), n
        # relative to each entry's exact value (C is diagonal: exact zeros off it)
        off = ~np.eye(n, dtype=bool)
        assert abs(C[0, 0] - 1) <= 1e-14 and np.all(C[off] == 0)
        d = np.diag(C)[1:]
        assert np.all(np.abs(d.real - z.real) <= 1e-14 * z.real)
        assert np.all(np.abs(d.imag - z.imag) <= 1e-14 * z.imag)
        G = _np(matgrad.logdet_grad(A, backend=backend))
        w = complex(1 / mpmath.conj(mpmath.mpc(z)))  # 3.85e-309·(1 + 1j): subnormal
        assert abs(G[0, 0] - w) <= 2.0**-1070 and np.allclose(np.diag(G)[1:], 1, rtol=1e-15)
        assert np.all(G[~np.eye(n, dtype=bool)] == 0)
    z32 = np.complex64(3e38 + 3e38j)
    A = np.diag(np.array([z32, 1, 1, 1, 1], dtype=np.complex64))
    C = _np(matgrad.det_grad(A, backend=backend))
    assert C.dtype == np.complex64 and abs(C[0, 0] - 1) <= 1e-6
    assert np.allclose(np.diag(C)[1:] / np.float32(2**100), z32 / np.float32(2**100), rtol=1e-6)


# ------------------------------------------------- charpoly: structured n ≥ 64
def check_charpoly_structured(backend: Any) -> None:
    """Rank-one and tiled matrices at n ≥ 64: the Hessenberg form is rounding
    noise below the first column, which must deflate, not divide."""
    u = np.arange(1, 71.0)
    cases: list[tuple[Array, Callable[[Any, int], tuple[Any, Any]]]] = [
        (np.ones((64, 64)), lambda x, n: (x ** (n - 1) * (x - n),
                                          x ** (n - 2) * (n * x - (n - 1) * n))),
        (np.tile([[1.0, 2.0], [3.0, 4.0]], (32, 32)),
         lambda x, n: (x ** (n - 2) * (x * x - 160 * x - 2048),
                       (n - 2) * x ** (n - 3) * (x * x - 160 * x - 2048)
                       + x ** (n - 2) * (2 * x - 160))),
        (np.outer(u, u), lambda x, n: (x ** (n - 1) * (x - u @ u),
                                       x ** (n - 2) * (n * x - (n - 1) * (u @ u)))),
    ]
    for A, exact in cases:
        n = A.shape[0]
        for x in (0.5, -0.75, 1.5):
            p, dp = (_np(v) for v in matgrad.charpoly_deriv(A, x, return_value=True,
                                                            backend=backend))
            pe, dpe = exact(mpmath.mpf(x), n)
            assert abs(p - pe) <= 1e-9 * abs(pe), (n, x, p, pe)
            assert abs(dp - dpe) <= 1e-9 * abs(dpe), (n, x, dp, dpe)
    # rank one at 1e30: p(x) is extremely ill-conditioned, but finite
    p, dp = matgrad.charpoly_deriv(np.full((64, 64), 1e30), 0.5, return_value=True,
                                   backend=backend)
    assert np.isfinite(_np(p)) and np.isfinite(_np(dp))


def check_charpoly_far_points(backend: Any) -> None:
    """Points far beyond the matrix's scale (``|x| / max|A|`` up to 2^1000 and
    more): x·v must not overflow inside the recurrence."""
    rng = np.random.default_rng(11)
    for n in (2, 3, 5):
        R = rng.standard_normal((n, n))
        for scale_a, x in ((1.0, 1e70), (1.0, -3e100), (1e-300, 1e-20), (1e-300, 7.5),
                           (2.0**-1000, 2.0**-90), (1.0, 2.0**899), (1.0, 2.0**849),
                           (1.0, 2.0**-100), (2.0**-900, 2.0**-60)):
            A = R * scale_a
            p, dp = (_np(v) for v in matgrad.charpoly_deriv(A, x, return_value=True,
                                                            backend=backend))
            pe, dpe = ref.ref_charpoly(A, x)
            for got, want in ((p, pe), (dp, dpe)):
                if abs(want) > 1.7e308:
                    assert np.isinf(got), (n, x, got)
                else:
                    assert abs(got - want) <= 1e-12 * abs(want) + 2.0**-1074, (n, x, got, want)


def check_charpoly_graded_triangular(backend: Any) -> None:
    """Triangular matrices (already Hessenberg, every block 1×1) whose
    diagonal spans 2^±780: p = Π(x − d_i) and p′ from the product rule, to a
    few ulp per factor, p and p′ each over- or underflowing only where the
    true value does (their ratio can exceed 2^±1000, so they must not share
    one exponent).  (Beyond that spread the contract is normwise: a
    perturbation of eps·max|d| may swamp the smallest d_i.)"""
    rng = np.random.default_rng(13)
    for n in (2, 3, 4, 6):
        for t in range(6):
            d = np.ldexp(rng.uniform(0.5, 1, n) * rng.choice([-1, 1], n),
                         rng.integers(-780, 780, n))
            A = np.diag(d) + np.triu(np.ldexp(rng.standard_normal((n, n)), -900), 1) * (t % 2)
            for x in (0.5, -3.0, d[0] * 1.5, 1e-300):
                p, dp = (_np(v) for v in matgrad.charpoly_deriv(A, x, return_value=True,
                                                                backend=backend))
                with mpmath.workdps(60):
                    f = [mpmath.mpf(x) - mpmath.mpf(float(v)) for v in d]
                    pe = mpmath.fprod(f)
                    dpe = mpmath.fsum(mpmath.fprod(f[:i] + f[i + 1:]) for i in range(n))
                for got, want in ((p, pe), (dp, dpe)):
                    if abs(want) >= mpmath.mpf(2) ** 1024:
                        assert np.isinf(got) and (got > 0) == (want > 0), (n, d, x, got, want)
                    else:
                        assert abs(got - want) <= 1e-14 * n * abs(want) + 2.0**-1074, (
                            n, d.tolist(), x, got, want)


def check_linear_charpoly_silent(backend: Any) -> None:
    """n = 1 with a signalling NaN: a quiet NaN in its slot, no warning."""
    snan = np.array([0x7FF4000000000000], dtype=np.uint64).view(np.float64)[0]
    A = np.array([[[snan]], [[2.0]]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", matgrad.CompileWarning)  # a one-time compile notice
        p, dp = (_np(v) for v in matgrad.charpoly_deriv(A, 5.0, return_value=True,
                                                        backend=backend))
    assert np.isnan(p[0]) and p[1] == 3.0 and dp.tolist() == [1.0, 1.0]


# ------------------------------------------------- a slot ignores its batch
def _hostile_neighbours(n: int, dtype: Any) -> list[Array]:
    rng = np.random.default_rng(n)
    dup = rng.standard_normal((n, n))
    dup[-1] = dup[0]
    out = [
        np.full((n, n), np.nan), np.full((n, n), np.inf), np.zeros((n, n)),
        1e10 * np.eye(n), np.full((n, n), 1e300), np.eye(n) * 1e-320, dup,
        np.ldexp(rng.standard_normal((n, n)), rng.integers(-300, 300, size=(n, 1))),
    ]
    return [m.astype(dtype) for m in out]


def _same(a: Array, b: Array) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True)
                and np.array_equal(np.signbit(a.real), np.signbit(b.real)))


def check_slot_independent_of_batch(backend: Any, sizes: tuple[int, ...] = (2, 3, 4, 5, 8, 50),
                                    dtypes: tuple[Any, ...] = (np.float64, np.complex128)) -> None:
    """``f(A)[i]`` is bit-identical to ``f(A[i:i+1])[0]`` whatever the
    neighbours and the batch size: every routing and scaling decision is the
    slot's own."""
    rng = np.random.default_rng(5)
    for n in sizes:
        for dtype in dtypes:
            clean = rng.standard_normal((3, n, n)).astype(dtype)
            if np.dtype(dtype).kind == "c":
                clean = clean + 1j * rng.standard_normal((3, n, n))
            clean[1, -1] = clean[1, 0]  # an exactly singular clean slot too
            batch = np.stack([clean[0], *_hostile_neighbours(n, dtype), clean[1], clean[2]])
            where = [0, len(batch) - 2, len(batch) - 1]
            ops: dict[str, Callable[[Array], Any]] = {
                "det_grad": lambda M: matgrad.det_grad(M, backend=backend),
                "logdet_grad": lambda M: matgrad.logdet_grad(M, backend=backend),
                "charpoly": lambda M: matgrad.charpoly_deriv(
                    M[:, None], np.array([0.5, -2.0]), return_value=True, backend=backend),
            }
            for name, op in ops.items():
                with np.errstate(all="ignore"):
                    together = op(batch)
                    for i, c in zip(where, clean, strict=True):
                        alone = op(c[None])
                        if isinstance(together, tuple):
                            for t, a in zip(together, alone, strict=True):
                                assert _same(_np(t)[i], _np(a)[0]), (name, n, dtype, i)
                        else:
                            assert _same(_np(together)[i], _np(alone)[0]), (name, n, dtype, i)


#: The checks that run the same on every backend and on the CUDA simulator
#: (the simulator runs check_slot_independent_of_batch with small sizes).
KERNEL_CHECKS: list[Callable[[Any], None]] = [
    check_huge_row_keeps_other_cofactors,
    check_row_scaling_is_exact,
    check_subnormal_matrix,
    check_complex_beyond_dbl_max,
    check_graded_cofactors,
    check_graded_inverse,
    check_charpoly_structured,
    check_charpoly_far_points,
    check_charpoly_graded_triangular,
]

#: Every hostile-input check, as run on a backend by the contract suite.
HOSTILE_CHECKS: list[Callable[[Any], None]] = [
    *KERNEL_CHECKS,
    check_linear_charpoly_silent,
    check_slot_independent_of_batch,
]
