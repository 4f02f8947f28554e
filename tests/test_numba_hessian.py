"""The Numba backend's second-derivative operations (``matgrad_numba._ops``:
``det_hvp``, ``det_hvp_value``, ``det_hessian``, ``logdet_hvp``,
``frobenius_hvp``), called directly with canonical arrays.

References never use the code under test: exact rational arithmetic
(:class:`fractions.Fraction`, complex numbers as pairs) through the
row-replacement identity ``∂²det/∂A_ij∂A_kl = det(A`` with row ``i`` →
``e_jᵀ`` and row ``k`` → ``e_lᵀ)``, so ``H_ij = Σ_kl`` of that times
``V_kl``, exact at every rank.  Where the host kernels of
:mod:`matgrad.kernels.hessian` are exact or take the same per-slot path,
the compiled kernels must return their very bits.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np
import pytest

import matgrad
from matgrad import _reference as ref
from matgrad.kernels import hessian as host
from tests import test_hessian_kernels as hk

pytestmark = pytest.mark.skipif(
    not any(b.name == "numba" and b.available for b in matgrad.list_backends()),
    reason="numba backend unavailable",
)

if any(b.name == "numba" and b.available for b in matgrad.list_backends()):
    from matgrad_numba import _ops, _values

DTYPES = (np.float64, np.float32, np.complex128, np.complex64)
C = tuple[Fraction, Fraction]  # an exact complex number (re, im)


# ------------------------------------------------------------ exact references
def _c(x: Any) -> C:
    z = complex(x)
    return Fraction(z.real), Fraction(z.imag)


def _mul(a: C, b: C) -> C:
    return a[0] * b[0] - a[1] * b[1], a[0] * b[1] + a[1] * b[0]


def _det(M: list[list[C]]) -> C:
    """Exact determinant by Laplace expansion along row 0 (n ≤ 3)."""
    n = len(M)
    if n == 0:
        return Fraction(1), Fraction(0)
    re, im = Fraction(0), Fraction(0)
    for j in range(n):
        minor = [row[:j] + row[j + 1:] for row in M[1:]]
        t = _mul(M[0][j], _det(minor))
        s = 1 if j % 2 == 0 else -1
        re, im = re + s * t[0], im + s * t[1]
    return re, im


def exact_hessian(A: np.ndarray) -> list[list[list[list[C]]]]:
    """``∂²det/∂A_ij∂A_kl`` of one matrix by the row-replacement identity."""
    n = A.shape[0]
    M = [[_c(x) for x in row] for row in A]
    one, zero = (Fraction(1), Fraction(0)), (Fraction(0), Fraction(0))
    out = [[[[zero] * n for _ in range(n)] for _ in range(n)] for _ in range(n)]
    for i, j, k, l in itertools.product(range(n), repeat=4):
        if i == k or j == l:
            continue
        N = [row[:] for row in M]
        N[i] = [one if q == j else zero for q in range(n)]
        N[k] = [one if q == l else zero for q in range(n)]
        out[i][j][k][l] = _det(N)
    return out


def exact_hvp(A: np.ndarray, V: np.ndarray) -> tuple[list[list[C]], list[list[Fraction]]]:
    """``(H, M)``: ``H_ij = Σ_kl ∂²det/∂A_ij∂A_kl·V_kl`` exactly and ``M_ij``
    the sum of the magnitudes (|re| + |im|) of its terms, which bounds the
    rounding error of the evaluated polynomial."""
    n = A.shape[0]
    hess = exact_hessian(A)
    Vc = [[_c(x) for x in row] for row in V]
    H = [[(Fraction(0), Fraction(0))] * n for _ in range(n)]
    M = [[Fraction(0)] * n for _ in range(n)]
    for i, j, k, l in itertools.product(range(n), repeat=4):
        t = _mul(hess[i][j][k][l], Vc[k][l])
        H[i][j] = (H[i][j][0] + t[0], H[i][j][1] + t[1])
        M[i][j] += (abs(hess[i][j][k][l][0]) + abs(hess[i][j][k][l][1])) * (
            abs(Vc[k][l][0]) + abs(Vc[k][l][1]))
    return H, M


def _dist(got: complex, want: C) -> Fraction:
    """|got − want| (per part summed), exactly (``got`` finite)."""
    if not np.isfinite(got):
        return Fraction(10) ** 400  # beyond every bound
    g = _c(got)
    return abs(g[0] - want[0]) + abs(g[1] - want[1])


def assert_hvp_accurate(H: np.ndarray, A: np.ndarray, V: np.ndarray,
                        normwise: bool = False) -> None:
    """Each entry of one slot within the rounding of the evaluated polynomial
    (four products and three sums in float64/complex128, then one rounding
    to ``H``'s dtype), or ±inf exactly where the true entry overflows.
    ``normwise``: for slots redone in an equilibrated frame, whose entries
    far below the largest carry that frame's absolute error (as for
    ``det_grad``), the bound of the largest term everywhere."""
    want, mag = exact_hvp(A, V)
    if normwise:
        top = max(max(row) for row in mag)
        mag = [[top] * len(row) for row in mag]
    eps_out = float(np.finfo(H.dtype).eps)
    big = float(np.finfo(H.dtype).max)
    tiny = float(np.finfo(H.dtype).smallest_subnormal)
    for i, j in np.ndindex(H.shape):
        w, m = want[i][j], mag[i][j]
        g = complex(H[i, j])
        for part, wp in ((g.real, w[0]), (g.imag, w[1])):
            if abs(wp) > big:  # the true entry overflows this dtype
                assert np.isinf(part) and np.sign(part) == np.sign(wp), (i, j, part, wp)
        if not (abs(w[0]) > big or abs(w[1]) > big):
            # in exact arithmetic: M may pass float64's range
            bound = (Fraction(8 * 2.0**-52) * m + Fraction(eps_out) * (abs(w[0]) + abs(w[1]))
                     + 4 * Fraction(tiny))
            assert _dist(g, w) <= bound, (i, j, g, w, float(bound))


def _exact_equal(H: np.ndarray, want: list[list[C]]) -> bool:
    return all(_c(H[i, j]) == want[i][j] for i, j in np.ndindex(H.shape))


# ------------------------------------------------------------ inputs
def _random(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def _rank(rng: np.random.Generator, r: int, dtype: Any) -> np.ndarray:
    """A 3×3 integer matrix of exact rank ``r`` (small integers: every
    product and sum of the kernel is exact)."""
    cplx = np.dtype(dtype).kind == "c"
    X = rng.integers(-4, 5, (3, r)) + (1j * rng.integers(-4, 5, (3, r)) if cplx else 0)
    Y = rng.integers(-4, 5, (r, 3)) + (1j * rng.integers(-4, 5, (r, 3)) if cplx else 0)
    return (X @ Y).astype(dtype)


# ------------------------------------------------------------ det_hvp
def check_random_det_hvp(det_hvp: Any, n: int, dtype: Any, B: int) -> None:
    """``det_hvp(A, V)`` of ``B`` random pairs: shape and dtype, inputs
    untouched, every slot within the polynomial's rounding of the exact
    value, and the host kernel's bits where the arithmetic is the same."""
    rng = np.random.default_rng(n)
    A, V = _random(rng, (B, n, n), dtype), _random(rng, (B, n, n), dtype)
    A0, V0 = A.copy(), V.copy()
    H = det_hvp(A, V)
    assert H.dtype == A.dtype and H.shape == A.shape
    np.testing.assert_array_equal(A, A0)  # inputs not mutated
    np.testing.assert_array_equal(V, V0)
    for b in range(0, B, 7):
        assert_hvp_accurate(H[b], A[b], V[b])
    if np.dtype(dtype) != np.complex128:
        # real arithmetic, or float32 parts whose products are exact in
        # float64: the host's very bits (NumPy's complex128 product may be
        # rounded differently, with FMA, so only the bound holds there)
        np.testing.assert_array_equal(H, host.det_hvp(A, V))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_det_hvp_random_accurate_and_as_host(n: int, dtype: Any) -> None:
    check_random_det_hvp(_ops.det_hvp, n, dtype, 40)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("r", [3, 2, 1, 0])
def test_det_hvp_exact_at_every_rank(r: int, dtype: Any) -> None:
    """Small-integer 3×3 matrices of rank 3, 2, 1, 0 (and 2×2 blocks of them):
    every product and sum is exact, so ``H`` is the exact derivative, bit for
    bit, singular or not (no division anywhere)."""
    rng = np.random.default_rng(10 + r)
    A = np.stack([_rank(rng, r, dtype) for _ in range(6)])
    V = np.stack([_rank(rng, 3, dtype) for _ in range(6)])
    for n in (3, 2):
        a, v = np.ascontiguousarray(A[:, :n, :n]), np.ascontiguousarray(V[:, :n, :n])
        H = _ops.det_hvp(a, v)
        for b in range(a.shape[0]):
            assert _exact_equal(H[b], exact_hvp(a[b], v[b])[0]), (n, b)
        np.testing.assert_array_equal(H, host.det_hvp(a, v))


SCALES = [(500, -500), (-500, 500), (500, 500), (-500, -500), (510, 510), (-530, -520),
          (-1020, 600)]


@pytest.mark.parametrize("ka,kv", SCALES)
def test_det_hvp_hostile_scalings(ka: int, kv: int) -> None:
    """A scaled by 2^ka and V by 2^kv: the products reach 2^±1000 and beyond
    (2^1020 overflows in the sum, 2^-1050 underflows): each entry within the
    polynomial's rounding of the exact value, inf exactly where the true
    entry overflows, and the host's bits (overflowing slots are the host's
    own redo on the equilibrated pair)."""
    rng = np.random.default_rng(abs(ka) + abs(kv))
    A = np.ldexp(rng.standard_normal((8, 3, 3)), ka)
    V = np.ldexp(rng.standard_normal((8, 3, 3)), kv)
    H = _ops.det_hvp(A, V)
    np.testing.assert_array_equal(H, host.det_hvp(A, V))
    for b in range(8):
        assert_hvp_accurate(H[b], A[b], V[b])


def _cancelling_overflow(dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """Slots whose products overflow although ``H`` is finite: rows of ``A``
    and ``V`` at 2^700 and 2^400 whose cross products cancel exactly
    (2^1100 − 2^1100 is inf − inf = NaN in the plain polynomial)."""
    t = np.ldexp(1.0, 700)
    u = np.ldexp(1.0, 400)
    A = np.array([[[t, t, 0], [0, 1, 2], [3, 0, 1]],
                  [[t, -t, 2 * t], [1, 0, 1], [0, 3, 1]],
                  [[1, 2, 3], [4, 5, 6], [7, 8, 10]]], dtype=dtype)
    V = np.array([[[0, 0, 1], [u, u, 0], [1, 1, 1]],
                  [[1, 0, 0], [u, -u, 2 * u], [0, 1, 0]],
                  [[1, 0, 0], [0, 1, 0], [0, 0, 1]]], dtype=dtype)
    return A, V


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_det_hvp_overflowing_products_go_to_the_host(dtype: Any) -> None:
    A, V = _cancelling_overflow(dtype)
    H = _ops.det_hvp(A, V)
    assert np.isfinite(H).all()
    for b in range(A.shape[0]):
        assert_hvp_accurate(H[b], A[b], V[b], normwise=b < 2)
        # each slot is what the host returns for it alone
        np.testing.assert_array_equal(H[b:b + 1], host.det_hvp(A[b:b + 1], V[b:b + 1]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_and_inf_slots_stay_in_their_slot(dtype: Any) -> None:
    """A batch with NaN and inf slots (and an overflowing one for float64):
    every other slot bit-identical to its result alone, the non-finite ones
    as the host's plain polynomial (NaN/inf where ``H`` depends on them)."""
    rng = np.random.default_rng(5)
    A, V = _random(rng, (9, 3, 3), dtype), _random(rng, (9, 3, 3), dtype)
    with np.errstate(all="ignore"):
        A[2, 1, 1] = np.nan
        V[4, 0, 2] = np.inf
        A[6, 2, 0] = -np.inf
    if np.dtype(dtype).itemsize == 16 or dtype == np.float64:
        Ao, Vo = _cancelling_overflow(dtype)
        A[7], V[7] = Ao[0], Vo[0]
    H = _ops.det_hvp(A, V)
    for b in range(9):
        alone = _ops.det_hvp(A[b:b + 1].copy(), V[b:b + 1].copy())
        np.testing.assert_array_equal(H[b:b + 1], alone)
    bad = [2, 4, 6]
    Hh = host.det_hvp(A, V)
    np.testing.assert_array_equal(np.isnan(H), np.isnan(Hh))
    assert not np.isfinite(H[bad]).all(axis=(1, 2)).any()
    assert np.isfinite(np.delete(H, bad, axis=0)).all()
    if np.dtype(dtype) != np.complex128:
        np.testing.assert_array_equal(H, Hh)


@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
def test_float32_overflow_and_underflow_of_the_result(dtype: Any) -> None:
    """float32 products never over- or underflow float64; only the single
    rounding to float32 can, where the true entry leaves float32's range
    (2^200 overflows, 2^-165 underflows to a subnormal or 0)."""
    rng = np.random.default_rng(7)
    A, V = _random(rng, (6, 3, 3), dtype), _random(rng, (6, 3, 3), dtype)
    A[:3] *= np.float32(2.0**100)
    V[:3] *= np.float32(2.0**100)
    A[3:] *= np.float32(2.0**-80)
    V[3:] *= np.float32(2.0**-85)
    H = _ops.det_hvp(A, V)
    np.testing.assert_array_equal(H, host.det_hvp(A, V))
    assert np.isinf(H[:3].view(np.float32)).all()
    assert (np.abs(H[3:].view(np.float32)) < np.finfo(np.float32).tiny).all()
    for b in range(6):
        assert_hvp_accurate(H[b], A[b], V[b])


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_slots_do_not_depend_on_threads_or_batch(threads: int) -> None:
    rng = np.random.default_rng(11)
    A = rng.standard_normal((3001, 3, 3)) * np.exp2(rng.integers(-600, 600, (3001, 1, 1)))
    V = rng.standard_normal((3001, 3, 3)) * np.exp2(rng.integers(-600, 600, (3001, 1, 1)))
    A[17], V[17] = _cancelling_overflow(np.float64)[0][0], _cancelling_overflow(np.float64)[1][0]
    A[29, 0, 0] = np.nan
    with np.errstate(all="ignore"):
        ref = {"hvp": host.det_hvp(A, V), "hess": host.det_hessian(A)}
        with matgrad.config.override(numba_threads=threads, numba_parallel_min_work=1):
            got = {"hvp": _ops.det_hvp(A, V), "hess": _ops.det_hessian(A)}
            d, Cf, Hv = _ops.det_hvp_value(A, V)
            d0, C0 = _values.det_value_grad(A)
            part = _ops.det_hvp(A[1000:1013].copy(), V[1000:1013].copy())
    for k in ref:
        np.testing.assert_array_equal(got[k], ref[k])
    np.testing.assert_array_equal(part, got["hvp"][1000:1013])
    np.testing.assert_array_equal(Hv, got["hvp"])
    np.testing.assert_array_equal(d, d0)
    np.testing.assert_array_equal(Cf, C0)


# ------------------------------------------------------------ det_hvp_value
def _value_batch(dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(13)
    A, V = _random(rng, (12, 4, 4), dtype), _random(rng, (12, 4, 4), dtype)
    if np.dtype(dtype).itemsize >= 16 or dtype == np.float64:
        A[1] *= 2.0**400  # beyond 2^300: the value from the host
        A[2] *= 2.0**-400
        Ao, Vo = _cancelling_overflow(dtype)
        A[3, :3, :3], V[3, :3, :3] = Ao[0], Vo[0]
    A[5, 1, 2] = np.nan
    A[6, 0, 0] = np.inf
    A[7, :3, :3] = _rank(rng, 1, dtype)
    return A, V


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_det_hvp_value_is_det_value_grad_and_det_hvp(n: int, dtype: Any) -> None:
    """``det`` and ``C`` bit-identical to the backend's ``det_value_grad``
    (hostile slots included: values beyond 2^±300 from the host, NaN/inf
    entries, an overflowing cofactor product), ``H`` to ``det_hvp``."""
    A, V = _value_batch(dtype)
    A, V = np.ascontiguousarray(A[:, :n, :n]), np.ascontiguousarray(V[:, :n, :n])
    with np.errstate(all="ignore"):
        d, Cf, H = _ops.det_hvp_value(A, V)
        d0, C0 = _values.det_value_grad(A)
        H0 = _ops.det_hvp(A, V)
    assert d.dtype == A.dtype and d.shape == (A.shape[0],)
    assert Cf.dtype == A.dtype and H.dtype == A.dtype
    np.testing.assert_array_equal(d, d0)
    np.testing.assert_array_equal(Cf, C0)
    np.testing.assert_array_equal(H, H0)


# ------------------------------------------------------------ det_hessian
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_det_hessian_exact(n: int, dtype: Any) -> None:
    """Constants (n ≤ 2) and ``±A_mq`` (n = 3): exact, whatever the scaling
    (entries at 2^±1000 and subnormals are copied, not computed) or rank."""
    rng = np.random.default_rng(17)
    A = _random(rng, (5, n, n), dtype)
    if n == 3:
        A[1] = _rank(rng, 1, dtype)
        A[2] = 0
        if np.dtype(dtype).itemsize >= 16 or dtype == np.float64:
            A[3] *= 2.0**1000
            A[4] *= 2.0**-1060
    E = _ops.det_hessian(A)
    assert E.shape == (5, n, n, n, n) and E.dtype == A.dtype
    for b in range(5):
        want = exact_hessian(A[b])
        assert all(_c(E[b][idx]) == want[idx[0]][idx[1]][idx[2]][idx[3]]
                   for idx in np.ndindex(E.shape[1:])), b
    np.testing.assert_array_equal(E, host.det_hessian(A))


def test_det_hessian_larger_n_is_the_host() -> None:
    rng = np.random.default_rng(19)
    A = rng.standard_normal((3, 4, 4))
    np.testing.assert_array_equal(_ops.det_hessian(A), host.det_hessian(A))
    with pytest.raises(ValueError, match="MAX_HESSIAN_N"):
        _ops.det_hessian(np.zeros((1, host.MAX_HESSIAN_N + 1, host.MAX_HESSIAN_N + 1)))


# ------------------------------------------------------------ n ≥ 4, logdet
@pytest.mark.parametrize("dtype", DTYPES)
def test_host_paths_are_the_host_kernels(dtype: Any) -> None:
    """n ≥ 4 ``det_hvp`` runs the host algorithm: its bits.  ``logdet_hvp``
    takes ``G`` from this backend's ``logdet_grad`` and the sandwich product
    directly where ``G`` and ``V`` lie within 2^±200 (the host's scaled
    sandwich elsewhere): the exact reference's bound, and the host's value
    to a few rounding errors of ``‖G‖²‖V‖``."""
    rng = np.random.default_rng(23)
    A, V = _random(rng, (6, 5, 5), dtype), _random(rng, (6, 5, 5), dtype)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(_ops.det_hvp(A, V), host.det_hvp(A, V))
        got, want = _ops.logdet_hvp(A, V), host.logdet_hvp(A, V)
    eps = float(np.finfo(dtype).eps)
    for b in range(A.shape[0]):
        G = np.linalg.inv(A[b].astype(np.complex128)).T
        scale = np.linalg.norm(G) ** 2 * np.linalg.norm(V[b])
        assert np.linalg.norm(got[b] - want[b]) <= 64 * eps * scale * np.linalg.cond(A[b]), b


def test_logdet_hvp_takes_the_host_path_out_of_range() -> None:
    """A slot whose ``G`` or ``V`` spans beyond 2^±200 takes the host's
    scaled sandwich (its bits); the others are unchanged by it (per slot)."""
    rng = np.random.default_rng(29)
    A, V = rng.standard_normal((4, 5, 5)), rng.standard_normal((4, 5, 5))
    V[1, 0] *= 2.0**400
    A[2, :, 0] *= 2.0**-300
    with np.errstate(all="ignore"):
        got = _ops.logdet_hvp(A, V)
        for b in (1, 2):
            np.testing.assert_array_equal(got[b], host.logdet_hvp(A[b:b + 1], V[b:b + 1])[0])
        for b in (0, 3):
            np.testing.assert_array_equal(got[b], _ops.logdet_hvp(A[b:b + 1], V[b:b + 1])[0])


# ------------------------------------------------------------ Frobenius
def _frobenius_allowed(X: np.ndarray, V: np.ndarray, dtype: Any) -> Any:
    """``8·(2 + log₂ mn)·eps·‖V‖/‖X‖`` plus the underflow floor of the
    result dtype (the host kernel's contract), in 60 digits: the norms may
    pass float64's range."""
    with mpmath.workdps(hk.DPS):
        xn = mpmath.sqrt(mpmath.fsum(abs(mpmath.mpc(complex(x))) ** 2 for x in X.ravel()))
        vn = mpmath.sqrt(mpmath.fsum(abs(mpmath.mpc(complex(x))) ** 2 for x in V.ravel()))
        return (8 * (2 + np.log2(X.size)) * float(np.finfo(dtype).eps) * vn / xn
                + X.size * float(np.finfo(dtype).tiny))


@pytest.mark.parametrize(("name", "X", "V"), hk.FROB, ids=[c[0] for c in hk.FROB])
def test_frobenius_hvp_against_60_digits(name: str, X: np.ndarray, V: np.ndarray) -> None:
    """The host tests' cases (scalings 1e±300 of X and V, mixed rows, entries
    beyond DBL_MAX in modulus), in every precision whose range holds them:
    normwise within the host kernel's bound of the 60-digit value."""
    cplx = bool(np.iscomplexobj(X))
    for dt in ((np.complex128, np.complex64) if cplx else (np.float64, np.float32)):
        with np.errstate(all="ignore"):
            Xd, Vd = X.astype(dt), V.astype(dt)
        if not (np.isfinite(Xd).all() and np.isfinite(Vd).all() and np.abs(Xd).max() > 0
                and np.abs(Vd).max() > 0):
            continue
        if dt in (np.float32, np.complex64) and not (1e-30 < abs(X).max() < 1e30
                                                     and 1e-30 < abs(V).max() < 1e30):
            continue
        H = _ops.frobenius_hvp(Xd[None], Vd[None])[0]
        assert H.dtype == np.dtype(dt)
        wide = np.complex128 if cplx else np.float64
        exact = hk.mp_frobenius_hvp(Xd.astype(wide), Vd.astype(wide))
        assert ref._diff_norm(H, exact) <= _frobenius_allowed(Xd, Vd, dt), (name, dt)


@pytest.mark.parametrize("dtype", DTYPES)
def test_frobenius_hvp_special_slots_and_threads(dtype: Any) -> None:
    """X = 0 and NaN/inf in X: NaN slots; inf in V propagates; every slot as
    alone, whatever the thread count; rows longer than one 128-element leaf
    (the pairwise sums) as accurate as short ones; within a few eps of the
    host kernel."""
    rng = np.random.default_rng(29)
    X, V = _random(rng, (40, 9, 31), dtype), _random(rng, (40, 9, 31), dtype)
    X[1] = 0
    X[2, 3, 4] = np.nan
    X[3, 0, 0] = np.inf
    V[4, 1, 1] = np.inf
    with np.errstate(all="ignore"):
        X[5] *= X.dtype.type(2.0**-100 if X.real.dtype == np.float32 else 2.0**-1000)
        X[6] *= X.dtype.type(2.0**100 if X.real.dtype == np.float32 else 2.0**1000)
        if X.real.dtype == np.float64:  # binades beyond 2^±1000: the ldexp path
            X[8] *= 2.0**-1030
            V[8] *= 2.0**-1040
            X[9] *= 2.0**1020
            V[9] *= 2.0**1000
        X0, V0 = X.copy(), V.copy()
        outs = []
        for threads in (1, 2, 3):
            with matgrad.config.override(numba_threads=threads, numba_parallel_min_work=1):
                outs.append(_ops.frobenius_hvp(X, V))
        alone = [_ops.frobenius_hvp(X[b:b + 1].copy(), V[b:b + 1].copy()) for b in range(40)]
        want = host.frobenius_hvp(X, V)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(V, V0)
    H = outs[0]
    for other in outs[1:]:
        np.testing.assert_array_equal(other, H)
    np.testing.assert_array_equal(np.concatenate(alone), H)
    assert np.isnan(H[1:4]).all()
    assert not np.isfinite(H[4]).all()
    np.testing.assert_array_equal(np.isnan(H), np.isnan(want))
    ok = [b for b in range(40) if b not in (1, 2, 3, 4)]
    for b in ok:
        assert np.isfinite(H[b]).all()
        with mpmath.workdps(hk.DPS):
            pairs = zip(H[b].ravel(), want[b].ravel(), strict=True)
            err = mpmath.sqrt(mpmath.fsum(abs(mpmath.mpc(complex(h)) - mpmath.mpc(complex(w)))
                                          ** 2 for h, w in pairs))
        assert err <= _frobenius_allowed(X[b], V[b], dtype), b
    for b in (0, 5, 6, 7, 8, 9):
        w = np.complex128 if np.iscomplexobj(X) else np.float64
        exact = hk.mp_frobenius_hvp(X[b].astype(w), V[b].astype(w))
        assert ref._diff_norm(H[b], exact) <= _frobenius_allowed(X[b], V[b], dtype), b


# ------------------------------------------------------------ memory
@pytest.mark.parametrize("dtype", [np.float32, np.complex64, np.float64])
@pytest.mark.parametrize("op", ["det_hvp", "det_hessian", "frobenius_hvp"])
def test_no_full_size_temporaries(op: str, dtype: Any) -> None:
    """Peak memory (tracemalloc sees NumPy's allocations) is the output plus
    O(batch) flags: a float32/complex64 batch is widened entry by entry in
    registers, never copied to float64.  A size check, not a speed check."""
    import tracemalloc

    rng = np.random.default_rng(31)
    A, V = _random(rng, (50_000, 3, 3), dtype), _random(rng, (50_000, 3, 3), dtype)
    call = {"det_hvp": lambda: _ops.det_hvp(A, V), "det_hessian": lambda: _ops.det_hessian(A),
            "frobenius_hvp": lambda: _ops.frobenius_hvp(A, V)}[op]
    call()  # compiled first: the compiler allocates too
    tracemalloc.start()
    tracemalloc.reset_peak()
    out = call()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak <= out.nbytes + 2 * A.shape[0] + (1 << 16), (peak, out.nbytes)
