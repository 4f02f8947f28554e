"""``logdet_grad`` of 2×2 and 3×3 matrices on the Numba backend: ``conj(C/det)``
from the closed forms (one kernel pass, ``_cofactor.logdet_closed``), the
elimination where the determinant lost more than 10 bits or an entry is out
of 2^±300; and its value path.  Against exact references
(``matgrad._reference``: rational arithmetic on the inputs' binary values)."""

from __future__ import annotations

import numpy as np
import pytest

import matgrad
from matgrad._reference import logdet_grad_error_ratio, ref_inverse_t

pytest.importorskip("numba")
if not any(b.name == "numba" and b.available for b in matgrad.list_backends()):
    pytest.skip("the numba backend is unavailable", allow_module_level=True)

DTYPES = [np.float64, np.float32, np.complex128, np.complex64]


def _batch(n: int, dtype: type) -> np.ndarray:
    rng = np.random.default_rng(n)
    A = rng.standard_normal((40, n, n))
    if np.dtype(dtype).kind == "c":
        A = A + 1j * rng.standard_normal(A.shape)
    A = A.astype(dtype)
    A[1] = 1  # exactly singular (rank one): NaN
    A[2, 0, 0] = np.nan
    wide = A.real.dtype == np.float64
    A[3] *= 2.0**500 if wide else 2.0**60  # beyond 2^300 (float64) / near the top (float32)
    # ill conditioned: σ = 1, 1e-6, (1e-12): the expansion loses > 10 bits
    U = np.linalg.qr(rng.standard_normal((n, n)))[0]
    A[4] = (U * np.array([1, 1e-6, 1e-12][:n])) @ U.T
    A[5] = np.diag(2.0 ** np.arange(n))[::-1]  # permutation-like: an exact inverse
    return A


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("n", [2, 3])
def test_against_exact_inverses(n: int, dtype: type) -> None:
    A = _batch(n, dtype)
    G = matgrad.logdet_grad(A, backend="numba")
    assert G.dtype == A.dtype and G.shape == A.shape
    for b in range(A.shape[0]):
        if not np.isfinite(A[b]).all():
            assert np.isnan(G[b]).all()
            continue
        if ref_inverse_t(A[b]) is None:  # exactly singular: A⁻ᵀ does not exist
            assert np.isnan(G[b]).all(), b
            continue
        score = logdet_grad_error_ratio(G[b], A[b])
        assert score.ratio <= 1, (b, score)
        if b == 5:  # an exactly representable inverse comes back exactly
            ref = ref_inverse_t(A[b])
            assert ref is not None
            want = np.array([[complex(v) for v in row] for row in ref])
            assert np.array_equal(G[b], want), (G[b], want)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("n", [2, 3])
def test_value_path_matches_gradient_and_exact_log(n: int, dtype: type) -> None:
    import mpmath

    from matgrad._reference import _Exact

    A = _batch(n, dtype)
    (sign, logabs), G = matgrad.logdet_grad(A, backend="numba", return_value=True)
    np.testing.assert_array_equal(G, matgrad.logdet_grad(A, backend="numba"))
    eps = np.finfo(A.real.dtype).eps
    for b in range(A.shape[0]):
        if not np.isfinite(A[b]).all():
            assert np.isnan(logabs[b])
            continue
        with mpmath.workdps(60):
            det = _Exact(A[b]).det()
            if det == 0:
                assert sign[b] == 0 and logabs[b] == -np.inf
                continue
            want = float(mpmath.log(abs(det)))
            want_sign = complex(det / abs(det))
        # a determinant's relative error is at most about κ(A)·eps, in
        # log|det| an absolute error of that size (and of log|det|'s rounding)
        kappa = np.linalg.cond(A[b].astype(np.complex128))
        tol = 16 * eps * (kappa + abs(want))
        assert abs(logabs[b] - want) <= tol, (b, logabs[b], want, kappa)
        assert abs(complex(sign[b]) - want_sign) <= 16 * eps * kappa, b


@pytest.mark.parametrize("n", [2, 3])
def test_each_slot_alone_or_in_any_batch(n: int) -> None:
    A = _batch(n, np.complex128)
    whole = matgrad.logdet_grad(A, backend="numba")
    for b in range(8):
        alone = matgrad.logdet_grad(A[b:b + 1], backend="numba")
        assert alone.tobytes() == whole[b:b + 1].tobytes(), b
    with matgrad.config.override(numba_threads=2, numba_parallel_min_work=1):
        split = matgrad.logdet_grad(A, backend="numba")
    assert split.tobytes() == whole.tobytes()


@pytest.mark.parametrize("op", ["det_grad", "logdet_grad"])
@pytest.mark.parametrize("dtype", [np.float32, np.complex64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("n", [2, 3])
def test_narrow_dtypes_equal_the_widened_computation(op: str, dtype: type, n: int) -> None:
    """float32 / complex64 2×2 and 3×3 are widened per matrix inside the
    kernel: bit for bit what widening the batch, computing in float64 /
    complex128 and rounding once gives (cofactors beyond float32's range
    become ±inf, ones below it 0 or subnormal, as that rounding makes them)."""
    A = _batch(n, dtype)
    rng = np.random.default_rng(9)
    A[6] = (rng.standard_normal((n, n)) * 3e19).astype(dtype)   # cofactors > 3.4e38
    A[7] = (rng.standard_normal((n, n)) * 1e-25).astype(dtype)  # cofactors below 1e-45
    wide = np.complex128 if np.dtype(dtype).kind == "c" else np.float64
    fn = getattr(matgrad, op)
    got = fn(A, backend="numba")
    with np.errstate(over="ignore", under="ignore"):
        want = fn(A.astype(wide), backend="numba").astype(dtype)
    assert got.dtype == A.dtype
    assert got.tobytes() == want.tobytes()
    if op == "det_grad" and n == 3:  # 2×2 cofactors are entries: nothing to round away
        assert np.isinf(got[6]).any() and (got[7] == 0).any()
