"""Second-derivative host kernels (``matgrad.kernels.hessian``) against exact
references.

References never use the code under test:

* ``det``: ``H_ij = Σ_{k≠i} det(A`` with row ``i`` replaced by ``e_jᵀ`` and
  row ``k`` by row ``k`` of ``V)`` (multilinearity of ``det`` in row ``k``
  of the cofactor's defining determinant), and the Hessian
  ``∂²det/∂A_ij∂A_kl = det(A`` with row ``i`` → ``e_jᵀ``, row ``k`` →
  ``e_lᵀ)``: fraction-free determinants of Gaussian integers (binary floats
  scaled by a common power of two), exact at every rank; mpmath at 60 digits
  for n = 12 and 20 (well-conditioned matrices only).
* the conventions (transposes, conjugation) against 60-digit central
  differences of ``cofactor``, ``A⁻ᴴ`` and ``X/‖X‖``.

Bounds follow from backward stability in the equilibrated frame
``Ã = D_r A D_c``, ``Ṽ = D_r V D_c``: ``‖H − H*‖ ≤ c·n²·eps·‖Ṽ‖·σ̃₁·Π_{i≤n−3}σ̃_i``
(``H`` mapped into the frame by ``2^(Σr + Σc − r_i − c_j)``).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np
import pytest

from matgrad import _reference as ref
from matgrad.kernels import cofactor, hessian

EPS64 = 2.0**-52
DPS = 60
Gauss = tuple[int, int]


# ------------------------------------------------------------ exact references
def _pair(v: Any) -> tuple[Fraction, Fraction]:
    c = complex(v)
    return Fraction(c.real), Fraction(c.imag)


class _Ints:
    """Several square arrays as Gaussian-integer matrices ``M·2^-shift``
    with one common ``shift`` (exact)."""

    def __init__(self, *arrays: np.ndarray) -> None:
        fr = [[[_pair(x.item()) for x in row] for row in a] for a in arrays]
        dens = [f.denominator for a in fr for row in a for p in row for f in p]
        self.shift = max(d.bit_length() - 1 for d in dens)
        s = 1 << self.shift
        self.mats: list[list[list[Gauss]]] = [
            [[(int(p[0] * s), int(p[1] * s)) for p in row] for row in a] for a in fr]
        self.complex = any(np.iscomplexobj(a) for a in arrays)
        self.one: Gauss = (s, 0)


def _det_int(M: list[list[int]]) -> int:
    """Exact determinant of an integer matrix (Bareiss)."""
    M = [row[:] for row in M]
    n = len(M)
    sign, prev = 1, 1
    for k in range(n - 1):
        if M[k][k] == 0:
            p = next((i for i in range(k + 1, n) if M[i][k] != 0), None)
            if p is None:
                return 0
            M[k], M[p] = M[p], M[k]
            sign = -sign
        for i in range(k + 1, n):
            for j in range(k + 1, n):
                M[i][j] = (M[i][j] * M[k][k] - M[i][k] * M[k][j]) // prev
        prev = M[k][k]
    return sign * M[n - 1][n - 1] if n else 1


def _det(M: list[list[Gauss]], cplx: bool) -> Gauss:
    if cplx:
        return ref._bareiss_det(M)
    return _det_int([[v[0] for v in row] for row in M]), 0


def _mp(g: Gauss, shift: int) -> Any:
    with mpmath.workdps(DPS):
        scale = mpmath.ldexp(1, -shift)
        return mpmath.mpc(g[0], g[1]) * scale if g[1] else mpmath.mpf(g[0]) * scale


def exact_hvp(A: np.ndarray, V: np.ndarray) -> list[list[Any]]:
    """``D cofactor(A)[V]`` exactly (any rank), rounded once to 60 digits."""
    n = A.shape[0]
    E = _Ints(A, V)
    MA, MV = E.mats
    zero: Gauss = (0, 0)
    out = []
    for i in range(n):
        row = []
        for j in range(n):
            re = im = 0
            for k in range(n):
                if k == i:
                    continue
                N = [r[:] for r in MA]
                N[i] = [E.one if q == j else zero for q in range(n)]
                N[k] = MV[k][:]
                d = _det(N, E.complex)
                re, im = re + d[0], im + d[1]
            row.append(_mp((re, im), E.shift * n))
        out.append(row)
    return out


def exact_hessian(A: np.ndarray) -> np.ndarray:
    """``∂²det/∂A_ij∂A_kl`` exactly, as an object array of 60-digit values."""
    n = A.shape[0]
    E = _Ints(A)
    (MA,) = E.mats
    zero: Gauss = (0, 0)
    out = np.empty((n, n, n, n), dtype=object)
    for i in range(n):
        for j in range(n):
            for k in range(n):
                for l in range(n):
                    if i == k or j == l:
                        out[i, j, k, l] = mpmath.mpf(0)
                        continue
                    N = [r[:] for r in MA]
                    N[i] = [E.one if q == j else zero for q in range(n)]
                    N[k] = [E.one if q == l else zero for q in range(n)]
                    out[i, j, k, l] = _mp(_det(N, E.complex), E.shift * n)
    return out


def _mp_matrix(A: np.ndarray) -> Any:
    conv = mpmath.mpc if np.iscomplexobj(A) else mpmath.mpf
    return mpmath.matrix([[conv(x.item()) for x in row] for row in A])


def mp_hvp(A: np.ndarray, V: np.ndarray) -> list[list[Any]]:
    """``det·(tr(A⁻¹V)·A⁻¹ − A⁻¹VA⁻¹)ᵀ`` at 60 digits (invertible ``A``)."""
    n = A.shape[0]
    with mpmath.workdps(DPS):
        Am, Vm = _mp_matrix(A), _mp_matrix(V)
        Y = Am**-1
        d = mpmath.det(Am)
        t = mpmath.fsum(Y[i, j] * Vm[j, i] for i in range(n) for j in range(n))
        K = Y * t - Y * Vm * Y
        return [[d * K[j, i] for j in range(n)] for i in range(n)]


def mp_cofactor(M: Any) -> Any:
    n = M.rows
    out = mpmath.matrix(n, n)
    for i in range(n):
        for j in range(n):
            sub = mpmath.matrix([[M[a, b] for b in range(n) if b != j]
                                 for a in range(n) if a != i])
            out[i, j] = (-1) ** (i + j) * mpmath.det(sub)
    return out


def _central(f: Any, A: np.ndarray, V: np.ndarray) -> list[list[Any]]:
    """``(f(A + hV) − f(A − hV))/2h`` at 60 digits, ``h = 1e-25``."""
    with mpmath.workdps(DPS):
        h = mpmath.mpf(10) ** -25
        Am, Vm = _mp_matrix(A), _mp_matrix(V)
        D = (f(Am + h * Vm) - f(Am - h * Vm)) / (2 * h)
        return [[D[i, j] for j in range(D.cols)] for i in range(D.rows)]


# ------------------------------------------------------------ error measures
def _frame_exponents(A: np.ndarray, V: np.ndarray) -> tuple[list[int], list[int], int]:
    r, c = ref.equilibration_exponents(A)
    return r, c, sum(r) + sum(c)


def hvp_ratio(got: np.ndarray, A: np.ndarray, V: np.ndarray, exact: list[list[Any]],
              c: float = 8.0) -> ref.Score:
    """Error of ``det_hvp`` against the backward-stability bound of the
    module docstring, in the equilibrated frame."""
    n = A.shape[0]
    r, cc, total = _frame_exponents(A, V)
    eps = ref.eps_of(got.dtype)
    with mpmath.workdps(DPS):
        scale = [[mpmath.ldexp(1, total - r[i] - cc[j]) for j in range(n)] for i in range(n)]
        err, norm = ref._scaled_error(got, exact, scale)
        Vt = ref._equilibrated_mp(V, r, cc)
        vnorm = mpmath.sqrt(mpmath.fsum(abs(Vt[i, j]) ** 2 for i in range(n) for j in range(n)))
        if n <= 2:
            allowed = c * eps * vnorm
        else:
            s = ref._svals_mp(ref._equilibrated_mp(A, r, cc), bool(np.iscomplexobj(A)))
            allowed = c * n * n * eps * vnorm * s[0] * mpmath.fprod(s[: n - 3])
        return ref._score(err, allowed, norm)


def _rel(got: Any, exact: Any) -> float:
    """‖got − exact‖_F / ‖exact‖_F (0 for an exact zero match); ``got`` floats
    (taken exactly) or 60-digit values."""
    with mpmath.workdps(DPS):
        flat_e = list(np.asarray(exact, dtype=object).ravel())
        flat_g = [g if isinstance(g, (mpmath.mpf, mpmath.mpc)) else mpmath.mpc(complex(g))
                  for g in np.asarray(got, dtype=object).ravel()]
        num = mpmath.fsum(abs(g - e) ** 2 for g, e in zip(flat_g, flat_e, strict=True))
        den = mpmath.fsum(abs(e) ** 2 for e in flat_e)
        if den == 0:
            return 0.0 if num == 0 else float("inf")
        return float(mpmath.sqrt(num / den))


def _random(rng: np.random.Generator, shape: tuple[int, ...], cplx: bool) -> np.ndarray:
    """float32-representable values (so float32 and float64 runs share one
    exact reference)."""
    A = rng.standard_normal(shape).astype(np.float32).astype(np.float64)
    if cplx:
        A = A + 1j * rng.standard_normal(shape).astype(np.float32).astype(np.float64)
    return A


def _r32(A: np.ndarray) -> np.ndarray:
    """``A`` with its real and imaginary parts rounded to float32 (kept in
    the wide dtype), so that both precisions see the same exact input."""
    wide = np.complex128 if np.iscomplexobj(A) else np.float64
    return A.astype(np.complex64 if np.iscomplexobj(A) else np.float32).astype(wide)


PRECISIONS = {False: (np.float64, np.float32), True: (np.complex128, np.complex64)}


# ------------------------------------------------------------ det_hvp
@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 8, 12, 20])
def test_det_hvp_random_well_conditioned(n: int, cplx: bool) -> None:
    rng = np.random.default_rng(100 + n + 50 * cplx)
    B = 3 if n <= 6 else 2
    A = _r32(_random(rng, (B, n, n), cplx) + 2 * np.eye(n))  # comfortably invertible
    V = _random(rng, (B, n, n), cplx)
    exact = [exact_hvp(A[b], V[b]) if n <= 8 else mp_hvp(A[b], V[b]) for b in range(B)]
    for dt in PRECISIONS[cplx]:
        H = hessian.det_hvp(A.astype(dt), V.astype(dt))
        assert H.dtype == dt and H.shape == A.shape
        for b in range(B):
            score = hvp_ratio(H[b], A[b], V[b], exact[b])
            assert score.ratio <= 1, (n, dt, b, score)
            # well conditioned: a plain relative error of a few n²·eps; the
            # single-precision result is the wide one rounded once
            low = dt in (np.float32, np.complex64)
            limit = 2.0**-23 if low else 32 * n * n * EPS64
            assert score.rel <= limit, (n, dt, b, score)


def _exact_rank(rng: np.random.Generator, n: int, k: int, cplx: bool) -> np.ndarray:
    """An integer matrix of rank exactly ``k`` (product of random integer
    factors, rows and columns permuted), checked exactly."""
    while True:
        L = rng.integers(-3, 4, (n, k)).astype(np.float64)
        R = rng.integers(-3, 4, (k, n)).astype(np.float64)
        if cplx:
            L = L + 1j * rng.integers(-2, 3, (n, k))
            R = R + 1j * rng.integers(-2, 3, (k, n))
        A = (L @ R)[rng.permutation(n)][:, rng.permutation(n)]
        M = [[(int(z.real), int(z.imag)) for z in map(complex, row)] for row in A]
        rank = len(ref._ff_gauss_jordan(M, n)[1])
        if rank == k:
            return A


def _singular_cases() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    cases = [
        ("diag(1,1,0,0)", np.diag([1.0, 1.0, 0.0, 0.0])),
        ("ones(3,3)", np.ones((3, 3))),
        ("[[1,2],[2,4]]", np.array([[1.0, 2.0], [2.0, 4.0]])),
        ("ap4", np.array([[1.0, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 17]])),
        ("zeros5", np.zeros((5, 5))),
    ]
    for n in (3, 4, 5, 6, 7):
        for k in sorted({n - 1, n - 2, n - 3, 1} - {0}):
            if k < 1:
                continue
            for cplx in (False, True):
                tag = "c" if cplx else "r"
                cases.append((f"rank{k}of{n}{tag}", _exact_rank(rng, n, k, cplx)))
    return cases


SINGULAR = _singular_cases()


@pytest.mark.parametrize(("name", "A"), SINGULAR, ids=[c[0] for c in SINGULAR])
def test_det_hvp_singular_exact(name: str, A: np.ndarray) -> None:
    n = A.shape[0]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    cplx = bool(np.iscomplexobj(A))
    V = rng.integers(-5, 6, (n, n)).astype(np.complex128 if cplx else np.float64)
    exact = exact_hvp(A, V)
    rank = np.linalg.matrix_rank(A)
    for dt in PRECISIONS[cplx]:
        H = hessian.det_hvp(A[None].astype(dt), V[None].astype(dt))[0]
        if rank <= n - 3:
            assert np.all(H == 0), (name, dt, H)
        else:
            score = hvp_ratio(H, A, V, exact)
            assert score.ratio <= 1, (name, dt, score)


def test_det_hvp_conventions_against_central_differences() -> None:
    """The formula, the SVD (singular A) and the closed forms against
    ``d/dt cofactor(A + tV)`` by a 60-digit central difference: no
    transpose or conjugation slipped in, real and complex."""
    rng = np.random.default_rng(11)
    mats = [_random(rng, (n, n), cplx) for n in (2, 3, 5) for cplx in (False, True)]
    mats += [_exact_rank(rng, 5, 4, True), _exact_rank(rng, 5, 3, False)]
    for A in mats:
        n = A.shape[0]
        V = _random(rng, (n, n), bool(np.iscomplexobj(A)))
        fd = _central(mp_cofactor, A, V)
        exact = exact_hvp(A, V)
        assert _rel(np.array(exact, dtype=object), fd) < 1e-30  # 60 − 25 digits
        H = hessian.det_hvp(A[None], V[None])[0]
        assert _rel(H, fd) < 1e-13, (A, H)


_B3 = 1e-20 * np.eye(3) + np.triu(np.ones((3, 3)), 1)
GRADED = [
    ("eps_triu5", 1e-20 * np.eye(5) + np.triu(np.ones((5, 5)), 1)),
    ("eps_triu6", 1e-20 * np.eye(6) + np.triu(np.ones((6, 6)), 1)),
    # three singular values of 1e-17 in the maximum frame, well conditioned
    # in the matching one: H ≈ 1e-60, not 0
    ("blockdiag_graded", np.kron(np.eye(3), _B3)),
]


def _hostile_cases() -> list[tuple[str, np.ndarray, float]]:
    """``(name, A, scale of V)``: rows or columns of a well-conditioned matrix
    scaled by 2^±300, entries near 1e±300 with a direction that keeps ``H``
    in range (``H ~ A^(n−2)·V``), graded matrices."""
    rng = np.random.default_rng(21)
    out = [(name, A, 1.0) for name, A in GRADED]
    for n in (3, 4, 6):
        R = _r32(_random(rng, (n, n), False) + 2 * np.eye(n))
        e = rng.choice([-300, 300, 0], n)
        out.append((f"rows2^300_{n}", np.ldexp(R, e[:, None]), 1.0))
        out.append((f"cols2^300_{n}", np.ldexp(R, e[None, :]), 1.0))
        big = 996 if n <= 4 else 250
        out.append((f"near2^{big}_{n}", R * 2.0**big, 2.0 ** -min(1000, big * (n - 2))))
        out.append((f"near2^-{big}_{n}", R * 2.0**-big, 2.0 ** min(1000, big * (n - 2))))
        Rc = _r32(_random(rng, (n, n), True) + 2 * np.eye(n))
        out.append((f"complex_rows_{n}", np.ldexp(Rc.real, e[:, None])
                    + 1j * np.ldexp(Rc.imag, e[:, None]), 1.0))
    S = _exact_rank(rng, 5, 4, False)
    out.append(("rank4of5_rows2^300",
                np.ldexp(S, np.array([300, -300, 0, 200, -200])[:, None]), 1.0))
    G = np.triu(_random(rng, (6, 6), False)) + 2 * np.eye(6)
    out.append(("graded_triangular", np.ldexp(np.ldexp(G, np.arange(0, 300, 50)[:, None]),
                                             -np.arange(0, 300, 50)[None, ::-1]), 1.0))
    return out


HOSTILE = _hostile_cases()


@pytest.mark.parametrize(("name", "A", "vscale"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_det_hvp_hostile_scalings(name: str, A: np.ndarray, vscale: float) -> None:
    """Right in the equilibrated frame (the bound) and normwise in ``A``'s
    own frame, with every entry finite (no spurious over- or underflow)."""
    n = A.shape[0]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    V = _random(rng, (n, n), bool(np.iscomplexobj(A))) * vscale
    exact = exact_hvp(A, V)
    H = hessian.det_hvp(A[None], V[None])[0]
    score = hvp_ratio(H, A, V, exact)
    assert score.ratio <= 1, (name, score)
    assert np.isfinite(H).all()
    assert _rel(H, exact) <= 32 * n * n * EPS64, (name, score)


def test_det_hvp_overflowing_products_redone() -> None:
    """3×3 products of 1e200 overflow where H does not: the equilibrated
    redo; and a true overflow stays ±inf."""
    rng = np.random.default_rng(3)
    R = _random(rng, (3, 3), False) + 2 * np.eye(3)
    A = R * np.array([1e200, 1e-200, 1.0])[:, None]
    V = _random(rng, (3, 3), False) * 1e200
    exact = exact_hvp(A, V)
    H = hessian.det_hvp(A[None], V[None])[0]
    assert hvp_ratio(H, A, V, exact).ratio <= 1
    big = hessian.det_hvp((R * 1e200)[None], (R * 1e200)[None])[0]
    assert np.isinf(big).all() and np.all(np.sign(big) == np.sign(np.array(exact_hvp(R, R),
                                                                             dtype=float)))


# ------------------------------------------------------------ det_hessian
@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_det_hessian_exact(n: int, cplx: bool) -> None:
    rng = np.random.default_rng(300 + n)
    mats = [_r32(_random(rng, (n, n), cplx) + 2 * np.eye(n))]
    if n >= 3:
        mats.append(_exact_rank(rng, n, n - 1, cplx))
        mats.append(_exact_rank(rng, n, n - 2, cplx))
    if n >= 4:
        mats.append(_exact_rank(rng, n, n - 3, cplx))
    A = np.stack(mats)
    for dt in PRECISIONS[cplx]:
        Hs = hessian.det_hessian(A.astype(dt))
        assert Hs.shape == (len(mats), n, n, n, n) and Hs.dtype == dt
        for b, M in enumerate(mats):
            Hb = Hs[b]
            # structural facts, bit for bit
            assert np.array_equal(Hb, Hb.transpose(2, 3, 0, 1))
            idx = np.arange(n)
            assert np.all(Hb[idx, :, idx, :] == 0) and np.all(Hb[:, idx, :, idx] == 0)
            rank = np.linalg.matrix_rank(M)
            if rank <= n - 3:
                assert np.all(Hb == 0)
                continue
            exact = exact_hessian(M)
            # each slice Hess[:, :, k, l] is det_hvp along E_kl: its bound
            for k in range(n):
                for l in range(n):
                    E = np.zeros((n, n), dtype=M.dtype)
                    E[k, l] = 1
                    score = hvp_ratio(Hb[:, :, k, l], M, E, exact[:, :, k, l].tolist())
                    assert score.ratio <= 1, (n, dt, b, k, l, score)


@pytest.mark.parametrize("name", ["eps_triu5", "rows2^300_4", "cols2^300_6", "near2^250_6",
                                  "near2^-250_6", "graded_triangular", "complex_rows_4",
                                  "blockdiag_graded"])
def test_det_hessian_hostile(name: str) -> None:
    """Graded and badly scaled matrices: every slice within its bound, the
    whole tensor right normwise in ``A``'s frame, nothing non-finite.  Not
    for ``blockdiag_graded``, whose structurally singular minors
    ``det_grad`` returns as zeros (within its bound, which is all that is
    promised there)."""
    A = next(a for nm, a, _ in HOSTILE if nm == name)
    n = A.shape[0]
    Hs = hessian.det_hessian(A[None])[0]
    exact = exact_hessian(A)
    assert np.isfinite(Hs).all()
    assert np.array_equal(Hs, Hs.transpose(2, 3, 0, 1))
    for k in range(n):
        for l in range(n):
            E = np.zeros((n, n), dtype=A.dtype)
            E[k, l] = 1
            score = hvp_ratio(Hs[:, :, k, l], A, E, exact[:, :, k, l].tolist())
            assert score.ratio <= 1, (name, k, l, score)
    if name != "blockdiag_graded":
        assert _rel(Hs, exact) <= 32 * n * n * EPS64


def test_det_hessian_contracts_to_det_hvp() -> None:
    rng = np.random.default_rng(5)
    for n in (4, 7, 10):
        A = np.stack([_r32(_random(rng, (n, n), False) + 2 * np.eye(n)), _exact_rank(rng, n, n - 2,
                                                                               False)])
        V = _random(rng, (2, n, n), False)
        Hs = hessian.det_hessian(A)
        H = hessian.det_hvp(A, V)
        for b in range(2):
            if b == 1 and n > 7:
                continue  # mp_hvp needs an invertible A
            exact = exact_hvp(A[b], V[b]) if n <= 7 else mp_hvp(A[b], V[b])
            contracted = np.einsum("ijkl,kl->ij", Hs[b], V[b])
            assert hvp_ratio(contracted, A[b], V[b], exact, c=16 * n).ratio <= 1
            assert hvp_ratio(H[b], A[b], V[b], exact).ratio <= 1


def test_det_hessian_size_limit() -> None:
    n = hessian.MAX_HESSIAN_N + 1
    with pytest.raises(ValueError, match="MAX_HESSIAN_N"):
        hessian.det_hessian(np.zeros((1, n, n)))


# ------------------------------------------------------------ det_hvp_value
def test_det_hvp_value_matches_det_value_grad() -> None:
    rng = np.random.default_rng(9)
    for n in (1, 2, 3, 4, 5, 8, 12):
        for cplx in (False, True):
            A = _random(rng, (6, n, n), cplx)
            V = _random(rng, (6, n, n), cplx)
            for dt in PRECISIONS[cplx]:
                d, C, H = hessian.det_hvp_value(A.astype(dt), V.astype(dt))
                d0, C0 = cofactor.det_value_grad(A.astype(dt))
                assert np.array_equal(d, d0) and np.array_equal(C, C0), (n, dt)
                assert np.array_equal(H, hessian.det_hvp(A.astype(dt), V.astype(dt)))
    # singular and graded slots: the same as det_value_grad's (its own path)
    A = np.stack([SINGULAR[3][1][:4, :4], GRADED[0][1][:4, :4],
                  _exact_rank(rng, 4, 2, False)])
    V = _random(rng, A.shape, False)
    d, C, H = hessian.det_hvp_value(A, V)
    d0, C0 = cofactor.det_value_grad(A)
    assert np.array_equal(d, d0) and np.array_equal(C, C0)
    A6 = np.stack([GRADED[1][1], _exact_rank(rng, 6, 5, False), _exact_rank(rng, 6, 3, True)])
    V6 = _random(rng, A6.shape, True)
    d, C, H = hessian.det_hvp_value(A6, V6)
    d0, C0 = cofactor.det_value_grad(A6)
    assert np.array_equal(d, d0) and np.array_equal(C, C0)
    assert np.array_equal(H, hessian.det_hvp(A6, V6))


# ------------------------------------------------------------ logdet_hvp
def exact_logdet_hvp(A: np.ndarray, V: np.ndarray) -> list[list[Any]] | None:
    """``−G·Vᴴ·G`` with ``G = A⁻ᴴ`` (``−A⁻ᵀVᵀA⁻ᵀ`` real) from the exact
    inverse (60 digits); None for an exactly singular ``A``."""
    G = ref.ref_inverse_t(A) if A.shape[0] <= 4 else _inverse_t(A)
    if G is None:
        return None
    n = A.shape[0]
    cplx = bool(np.iscomplexobj(A)) or bool(np.iscomplexobj(V))
    with mpmath.workdps(DPS):
        Gm = mpmath.matrix(G)
        Vm = _mp_matrix(V)
        Vh = Vm.H if cplx else Vm.T
        Hm = -(Gm * Vh * Gm)
        return [[Hm[i, j] for j in range(n)] for i in range(n)]


def _inverse_t(A: np.ndarray) -> list[list[Any]] | None:
    det, C = ref.exact_det_cofactor(A)
    if det == 0:
        return None
    cplx = bool(np.iscomplexobj(A))
    with mpmath.workdps(DPS):
        return [[mpmath.conj(v / det) if cplx else v / det for v in row] for row in C]


def logdet_ratio(got: np.ndarray, A: np.ndarray, V: np.ndarray, exact: list[list[Any]],
                 c: float = 8.0) -> ref.Score:
    """In the frame ``Ã = D_r A D_c``: ``H(Ã)[Ṽ] = D_r⁻¹ H D_c⁻¹``; the error of
    ``G̃`` (``≤ c·n·eps·κ̃·‖G̃‖``) enters twice, plus the product's rounding:
    allowed ``c·n·eps·κ̃·‖G̃‖²·‖Ṽ‖``."""
    n = A.shape[0]
    r, cc, _ = _frame_exponents(A, V)
    eps = ref.eps_of(got.dtype)
    with mpmath.workdps(DPS):
        scale = [[mpmath.ldexp(1, -r[i] - cc[j]) for j in range(n)] for i in range(n)]
        err, norm = ref._scaled_error(got, exact, scale)
        At = ref._equilibrated_mp(A, r, cc)
        Vt = ref._equilibrated_mp(V, r, cc)
        s = ref._svals_mp(At, bool(np.iscomplexobj(A)))
        Gt = At**-1
        g2 = mpmath.fsum(abs(Gt[i, j]) ** 2 for i in range(n) for j in range(n))
        v = mpmath.sqrt(mpmath.fsum(abs(Vt[i, j]) ** 2 for i in range(n) for j in range(n)))
        allowed = c * n * eps * (s[0] / s[-1]) * g2 * v
        return ref._score(err, allowed, norm)


@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 6, 8, 12])
def test_logdet_hvp_random(n: int, cplx: bool) -> None:
    rng = np.random.default_rng(400 + n)
    A = _r32(_random(rng, (2, n, n), cplx) + 2 * np.eye(n))
    V = _random(rng, (2, n, n), cplx)
    exact = [exact_logdet_hvp(A[b], V[b]) for b in range(2)]
    for dt in PRECISIONS[cplx]:
        H = hessian.logdet_hvp(A.astype(dt), V.astype(dt))
        assert H.dtype == dt
        for b in range(2):
            e = exact[b]
            assert e is not None
            score = logdet_ratio(H[b], A[b], V[b], e)
            assert score.ratio <= 1, (n, dt, b, score)
            if dt in (np.float32, np.complex64):  # the wide result rounded once
                assert _rel(H[b], e) <= 2.0**-23, (n, dt, b)


def test_logdet_hvp_conventions_against_central_differences() -> None:
    """``d/dt logdet_grad(A + tV)`` (``A⁻ᴴ`` for complex A) by central
    differences: ``−A⁻ᵀVᵀA⁻ᵀ``, conjugated for complex."""
    rng = np.random.default_rng(12)
    for n in (1, 2, 3, 5):
        for cplx in (False, True):
            A = _r32(_random(rng, (n, n), cplx) + 2 * np.eye(n))
            V = _random(rng, (n, n), cplx)

            def inv_h(M: Any, cplx: bool = cplx) -> Any:
                Mi = (M**-1).T
                return Mi.conjugate() if cplx else Mi

            fd = _central(inv_h, A, V)
            H = hessian.logdet_hvp(A[None], V[None])[0]
            assert _rel(H, fd) < 1e-13, (n, cplx)


def test_logdet_hvp_singular_and_hostile() -> None:
    rng = np.random.default_rng(13)
    sing = [SINGULAR[1][1], SINGULAR[2][1], SINGULAR[0][1], _exact_rank(rng, 5, 3, False)]
    for A in sing:
        n = A.shape[0]
        V = _random(rng, (n, n), False)
        H = hessian.logdet_hvp(A[None], V[None])[0]
        G = cofactor.logdet_grad(A[None])[0]
        assert np.isnan(G).all() and np.isnan(H).all()
    for name, A, vscale in HOSTILE:
        n = A.shape[0]
        V = _random(rng, (n, n), bool(np.iscomplexobj(A))) * vscale
        if "rank" in name:
            continue
        exact = exact_logdet_hvp(A, V)
        assert exact is not None
        H = hessian.logdet_hvp(A[None], V[None])[0]
        assert logdet_ratio(H, A, V, exact).ratio <= 1, name
    # A⁻ᵀ overflows (2^1030) where H does not: H_00 = −2^2060·2^-1074
    A = np.diag([2.0**-1030, 1.0, 1.0, 1.0])
    V = np.zeros((4, 4))
    V[0, 0] = 2.0**-1074
    H = hessian.logdet_hvp(A[None], V[None])[0]
    want = np.zeros((4, 4))
    want[0, 0] = -(2.0**986)
    assert np.array_equal(H, want)


# ------------------------------------------------------------ frobenius_hvp
def mp_frobenius_hvp(X: np.ndarray, V: np.ndarray) -> list[list[Any]]:
    with mpmath.workdps(DPS):
        Xm, Vm = _mp_matrix(X), _mp_matrix(V)
        m, n = X.shape
        ent = [(i, j) for i in range(m) for j in range(n)]
        norm = mpmath.sqrt(mpmath.fsum(abs(Xm[i, j]) ** 2 for i, j in ent))
        inner = mpmath.fsum(mpmath.re(mpmath.conj(Xm[i, j]) * Vm[i, j]) for i, j in ent) / norm
        return [[(Vm[i, j] - Xm[i, j] / norm * inner) / norm for j in range(n)]
                for i in range(m)]


def _frob_cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(17)
    out = []
    for scale_x, scale_v in ((1.0, 1.0), (1e300, 1.0), (1e-300, 1.0), (1e200, 1e-200),
                             (1e-300, 1e300), (1e300, 1e300), (1e-300, 1e-300)):
        for cplx in (False, True):
            X = _random(rng, (3, 4), cplx) * scale_x
            V = _random(rng, (3, 4), cplx) * scale_v
            out.append((f"{scale_x:g},{scale_v:g},{'c' if cplx else 'r'}", X, V))
    mixed = _random(rng, (4, 3), False)
    mixed[0] *= 1e300
    mixed[1] *= 1e-300
    out.append(("mixed", mixed, _random(rng, (4, 3), False)))
    big = np.full((2, 2), 1.3e308 + 1.3e308j)
    out.append(("beyond_dbl_max", big, _random(rng, (2, 2), True)))
    return out


FROB = _frob_cases()


@pytest.mark.parametrize(("name", "X", "V"), FROB, ids=[c[0] for c in FROB])
def test_frobenius_hvp_scales(name: str, X: np.ndarray, V: np.ndarray) -> None:
    exact = mp_frobenius_hvp(X, V)
    dts = PRECISIONS[bool(np.iscomplexobj(X))]
    for dt in dts:
        if dt in (np.float32, np.complex64) and not (1e-30 < abs(X).max() < 1e30
                                                     and 1e-30 < abs(V).max() < 1e30):
            continue
        Xd: np.ndarray = X.astype(dt)
        Vd: np.ndarray = V.astype(dt)
        H = hessian.frobenius_hvp(Xd[None], Vd[None])[0]
        # the inputs rounded to dt are exact inputs of their own
        ex = exact if dt == X.dtype else mp_frobenius_hvp(Xd.astype(X.dtype), Vd.astype(X.dtype))
        with mpmath.workdps(DPS):
            xn = mpmath.sqrt(mpmath.fsum(abs(mpmath.mpc(complex(x))) ** 2 for x in Xd.ravel()))
            vn = mpmath.sqrt(mpmath.fsum(abs(mpmath.mpc(complex(x))) ** 2 for x in Vd.ravel()))
            # an entry is ±inf only where the truth overflows (else an infinite error)
            err = ref._diff_norm(H, ex)
            # a few eps·‖V‖/‖X‖, and the underflow floor of the result dtype
            allowed = (8 * (2 + np.log2(X.size)) * ref.eps_of(dt) * vn / xn
                       + X.size * float(np.finfo(dt).tiny))
        assert err <= allowed, (name, dt, float(err / allowed))


def test_frobenius_hvp_conventions_and_special_slots() -> None:
    rng = np.random.default_rng(19)
    for cplx in (False, True):
        X = _random(rng, (3, 2), cplx)
        V = _random(rng, (3, 2), cplx)

        def grad(M: Any) -> Any:
            norm = mpmath.sqrt(mpmath.fsum(abs(M[i, j]) ** 2 for i in range(M.rows)
                                           for j in range(M.cols)))
            return M / norm

        fd = _central(grad, X, V)
        H = hessian.frobenius_hvp(X[None], V[None])[0]
        assert _rel(H, fd) < 1e-14
    X = _random(rng, (5, 3, 3), True)
    V = _random(rng, (5, 3, 3), True)
    X[1] = 0  # no Hessian at 0: a NaN slot
    X[2, 1, 1] = np.nan
    X[3, 0, 2] = np.inf
    H = hessian.frobenius_hvp(X, V)
    assert np.isnan(H[1:4]).all()
    for b in (0, 4):
        assert np.array_equal(H[b], hessian.frobenius_hvp(X[b:b + 1], V[b:b + 1])[0])
    assert hessian.frobenius_hvp(np.zeros((2, 0, 3)), np.zeros((2, 0, 3))).shape == (2, 0, 3)
    # slots scaled past 2^±1000 (ldexp) beside plain ones: each its own
    Xs = np.stack([x for _, x, _ in FROB if x.shape == (3, 4) and not np.iscomplexobj(x)])
    Vs = np.stack([v for _, x, v in FROB if x.shape == (3, 4) and not np.iscomplexobj(x)])
    H = hessian.frobenius_hvp(Xs, Vs)
    for b in range(len(Xs)):
        assert np.array_equal(H[b], hessian.frobenius_hvp(Xs[b:b + 1], Vs[b:b + 1])[0])


# ------------------------------------------------------------ batches, inputs
def _hostile_batch(n: int, cplx: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(23 + n)
    A = _r32(_random(rng, (7, n, n), cplx) + 2 * np.eye(n))
    V = _random(rng, (7, n, n), cplx)
    A[1, 0, 0] = np.nan
    A[2, -1, -1] = np.inf
    A[3] = 0
    A[4, :, 0] = A[4, :, 1]  # singular
    A[5] *= 2.0**600
    V[6, 0, 0] = np.nan
    return A, V


@pytest.mark.parametrize("n", [2, 3, 4, 6])
@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
def test_slots_are_their_own(n: int, cplx: bool) -> None:
    A, V = _hostile_batch(n, cplx)
    clean = [0, 3, 4, 5]
    calls: list[tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]] = [
        ("det_hvp", lambda a, v: hessian.det_hvp(a, v)),
        ("det_hvp_value", lambda a, v: hessian.det_hvp_value(a, v)[2]),
        ("logdet_hvp", lambda a, v: hessian.logdet_hvp(a, v)),
        ("frobenius_hvp", lambda a, v: hessian.frobenius_hvp(a, v)),
        ("det_hessian", lambda a, v: hessian.det_hessian(a)),
    ]
    for name, f in calls:
        A0, V0 = A.copy(), V.copy()
        out = f(A, V)
        assert np.array_equal(A, A0, equal_nan=True) and np.array_equal(V, V0, equal_nan=True)
        assert not np.shares_memory(out, A) and not np.shares_memory(out, V)
        for b in clean:
            lone = f(A[b:b + 1], V[b:b + 1])[0]
            assert np.array_equal(out[b], lone, equal_nan=True), (name, b)
            # inside a different batch too
            mixed = f(np.concatenate([A[b:b + 1], A[::-1]]), np.concatenate([V[b:b + 1],
                                                                               V[::-1]]))
            assert np.array_equal(mixed[0], lone, equal_nan=True), (name, b)
        if n >= 4 and name in ("det_hvp", "det_hessian", "logdet_hvp", "det_hvp_value"):
            assert np.isnan(out[1]).all() and np.isnan(out[2]).all(), name
        if name == "frobenius_hvp":
            assert np.isnan(out[1]).all() and np.isnan(out[2]).all() and np.isnan(out[3]).all()
        if name == "logdet_hvp":
            # NaN slots exactly where logdet_grad has them (the zero matrix;
            # duplicated columns only where its elimination meets a zero pivot)
            G = cofactor.logdet_grad(A)
            nan_g = np.isnan(G).any(axis=(1, 2))
            assert np.array_equal(np.isnan(out).all(axis=(1, 2)) | ~np.isnan(out).any(axis=(1, 2)),
                                  np.ones(len(A), dtype=bool))
            assert np.array_equal(np.isnan(out).all(axis=(1, 2)), nan_g | np.isnan(V).any(
                axis=(1, 2)))
            assert nan_g[3]


def test_bad_input() -> None:
    A = np.zeros((2, 3, 3))
    fns: tuple[Any, ...] = (hessian.det_hvp, hessian.det_hvp_value, hessian.logdet_hvp)
    for f in fns:
        with pytest.raises(ValueError, match="shape"):
            f(np.zeros((2, 3, 4)), np.zeros((2, 3, 4)))
        with pytest.raises(ValueError, match="shape"):
            f(A, np.zeros((2, 3, 2)))
        with pytest.raises(TypeError, match="dtype"):
            f(A.astype(np.int64), A)
        with pytest.raises(TypeError, match="dtype"):
            f(A, A.astype(np.float32))
        with pytest.raises(TypeError, match="ndarray"):
            f(A.tolist(), A)
    with pytest.raises(ValueError, match="shape"):
        hessian.frobenius_hvp(np.zeros((3, 3)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="shape"):
        hessian.det_hessian(np.zeros((2, 3, 4)))


def test_empty_batches() -> None:
    for n in (0, 1, 4):
        A = np.zeros((0, n, n))
        assert hessian.det_hvp(A, A).shape == (0, n, n)
        assert hessian.logdet_hvp(A, A).shape == (0, n, n)
        assert hessian.det_hessian(A).shape == (0, n, n, n, n)
        d, C, H = hessian.det_hvp_value(A, A)
        assert d.shape == (0,) and C.shape == H.shape == (0, n, n)
    A = np.zeros((2, 0, 0))
    assert hessian.det_hvp(A, A).shape == (2, 0, 0)
    d, C, H = hessian.det_hvp_value(A, A)
    assert np.array_equal(d, np.ones(2))


def test_random_matrices_take_the_formula() -> None:
    """A deterministic guard on the cost (the formula is one elimination and
    two products; the SVD several times that, the rows n eliminations): at
    least 97 % of random Gaussian 8×8 slots pass tier 1's test."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((2000, 8, 8))
    V = rng.standard_normal((2000, 8, 8))
    At, r, c = cofactor._equilibrate(A)
    frame = hessian._Frame(At, r, c, V)
    cand = frame.usable()
    core, est = hessian._formula_core(frame.inverse(cand), frame.Vs[cand])
    passed = hessian._accurate(core, est, frame.w[cand], hessian._tol(8))
    assert passed.sum() >= 0.97 * len(A)
