"""The contract suite as a pytest base class (this module needs pytest)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pytest

import matgrad
from matgrad import _reference as ref

from ._checks import CASE_LABELS, CONTRACT_CHECKS, check_case, check_det_grad_error, exact_cofactor
from ._graded import GRADED_CHECKS
from ._hostile import HOSTILE_CHECKS

__all__ = ["BackendContract", "resolve_backend"]

BackendLike = str | matgrad.Backend


def _check_id(check: Callable[..., Any]) -> str:
    return check.__name__.removeprefix("check_")


def resolve_backend(backend: object, *, skip_unavailable: bool = True) -> BackendLike:
    """The backend to test: ``backend`` itself if it is a ``matgrad.Backend``
    instance, else the name of a registered backend that can run here.

    Fails the test (``pytest.fail``) for anything else: no backend given, a
    name no installed package registers, or a plugin that is registered but
    broken (its import, its hook, or an attribute raised or is malformed —
    the registry's reason is in the message).  A backend whose own
    ``available()`` says it cannot run here (no GPU, say) skips the test with
    its reason when ``skip_unavailable`` is true and fails it otherwise.
    """
    if isinstance(backend, matgrad.Backend):
        return backend
    if not isinstance(backend, str):
        pytest.fail(
            "matgrad.testing: set `backend` to the name of a registered backend (or a "
            f"matgrad.Backend instance), not {backend!r}",
            pytrace=False,
        )
    from matgrad._registry import entries

    found = entries()
    entry = found.get(backend)
    if entry is None:
        pytest.fail(
            f"matgrad.testing: no backend named {backend!r} is registered (registered: "
            f"{', '.join(sorted(found)) or 'none'}); is the package that provides it "
            "installed, with a 'matgrad.backends' entry point of that name?",
            pytrace=False,
        )
    info = entry.info()  # reads version and device: a raise there is a broken plugin
    if info.available:
        return backend
    if skip_unavailable and entry.backend is not None:
        try:
            ok, why = entry.backend.available()
        except Exception:  # noqa: BLE001 - a raising available() is a broken plugin
            ok, why = True, ""
        if not ok:
            pytest.skip(f"backend {backend}: {why or info.reason}")
    pytest.fail(f"matgrad.testing: backend {backend!r} is unusable: {info.reason}",
                pytrace=False)


class BackendContract:
    """The contract suite for one backend, as a pytest base class.

    Subclass it in a test module under a name pytest collects and name the
    backend::

        from matgrad.testing import BackendContract

        class TestMine(BackendContract):
            backend = "mine"

    The tests: every reference case of ``matgrad check`` against its
    60-digit or exact reference, the contract checks (scaling, zero and
    non-finite inputs, singular matrices, true overflow only, batch
    isolation), the hostile finite inputs that broke earlier backends, the
    graded and power-of-two scaled inputs of docs/numerics.md §1 against
    exact references, and rank-deficient, ill-conditioned and large-batch
    gradients.

    ``backend`` is a registered name (the plugin must be installed, with
    its entry point) or a ``matgrad.Backend`` instance (tested as it is,
    without the registry).  A registered plugin that is broken fails every
    test with the registry's reason; one whose ``available()`` says it
    cannot run here skips them with its reason, or fails them if
    ``skip_unavailable`` is false.  To run the suite on several backends,
    override the ``matgrad_backend`` fixture (it returns what the tests pass
    as ``backend=``) with a parametrised one.
    """

    backend: ClassVar[BackendLike | None] = None
    skip_unavailable: ClassVar[bool] = True

    @pytest.fixture
    def matgrad_backend(self) -> BackendLike:
        """The backend under test (see :func:`resolve_backend`)."""
        return resolve_backend(self.backend, skip_unavailable=self.skip_unavailable)

    # ------------------------------------------------------------ references
    @pytest.mark.parametrize("label", CASE_LABELS)
    def test_reference_case(self, matgrad_backend: BackendLike, label: str) -> None:
        check_case(label, matgrad_backend)

    @pytest.mark.parametrize("check", CONTRACT_CHECKS, ids=_check_id)
    def test_contract_check(self, matgrad_backend: BackendLike,
                            check: Callable[[Any], None]) -> None:
        check(matgrad_backend)

    @pytest.mark.parametrize("check", HOSTILE_CHECKS, ids=_check_id)
    def test_hostile(self, matgrad_backend: BackendLike, check: Callable[[Any], None]) -> None:
        check(matgrad_backend)

    @pytest.mark.parametrize("check", GRADED_CHECKS, ids=_check_id)
    def test_graded(self, matgrad_backend: BackendLike, check: Callable[[Any], None]) -> None:
        check(matgrad_backend)

    # -------------------------------------------------------------- det_grad
    @pytest.mark.parametrize("n", [4, 5, 6, 8])
    @pytest.mark.parametrize("rank", ["n-1", "n-2"])
    def test_det_grad_rank_deficient_exact(self, matgrad_backend: BackendLike, n: int,
                                           rank: str) -> None:
        """Rank n−1 and n−2 integer matrices, zero pivot wherever it falls."""
        rng = np.random.default_rng(n)
        r = n - 1 if rank == "n-1" else n - 2
        for trial in range(5):
            A = (rng.integers(-4, 5, (n, r)) @ rng.integers(-4, 5, (r, n))).astype(float)
            A = A[rng.permutation(n)][:, rng.permutation(n)]
            exact = exact_cofactor(A)
            got = np.asarray(matgrad.det_grad(A, backend=matgrad_backend))
            s = np.linalg.svd(A, compute_uv=False)
            bound = 16 * n * n * np.finfo(float).eps * s[0] * np.prod(s[: n - 2])
            err = np.linalg.norm(got - exact)
            assert err <= bound, f"trial {trial}: error {err:.3g} > bound {bound:.3g}"
            if rank == "n-1":
                assert np.linalg.norm(exact) > 0
                assert np.linalg.matrix_rank(got, tol=1e-8 * np.abs(got).max()) == 1

    @pytest.mark.parametrize("n", [4, 7, 12])
    def test_det_grad_near_singular(self, matgrad_backend: BackendLike, n: int) -> None:
        """σₙ tiny (rank n−1 up to rounding): the relative bound uses σₙ₋₁."""
        rng = np.random.default_rng(n)
        q1, _ = np.linalg.qr(rng.standard_normal((n, n)))
        q2, _ = np.linalg.qr(rng.standard_normal((n, n)))
        for smallest in (1e-8, 1e-14, 1e-17, 0.0):
            s = np.linspace(2.0, 0.5, n)
            s[-1] = smallest
            check_det_grad_error(matgrad_backend, (q1 * s) @ q2)

    def test_det_grad_4x4_ill_conditioned(self, matgrad_backend: BackendLike) -> None:
        """cond(A) up to 1e8: where an unguarded 4×4 closed form loses ~1e-3,
        the result must still meet the backward-stability bound."""
        rng = np.random.default_rng(44)
        A = np.empty((40, 4, 4))
        for b in range(40):
            q1, _ = np.linalg.qr(rng.standard_normal((4, 4)))
            q2, _ = np.linalg.qr(rng.standard_normal((4, 4)))
            A[b] = (q1 * np.logspace(0, -(b % 9), 4)) @ q2
        C = np.asarray(matgrad.det_grad(A, backend=matgrad_backend))
        for b in range(40):
            assert ref.det_grad_error_ratio(C[b], A[b]).ratio <= 1, f"slot {b}"

    def test_det_grad_large_batch_3x3(self, matgrad_backend: BackendLike) -> None:
        """100 000 3×3 matrices, singular ones mixed in, against the 3×3 formula."""
        rng = np.random.default_rng(3)
        A = rng.integers(-5, 6, (100_000, 3, 3)).astype(float)
        C = np.asarray(matgrad.det_grad(A, backend=matgrad_backend))
        # integer entries: every cofactor is an exact small integer
        r0, r1, r2 = A[:, 0], A[:, 1], A[:, 2]
        expect = np.stack([np.cross(r1, r2), np.cross(r2, r0), np.cross(r0, r1)], axis=1)
        np.testing.assert_array_equal(C, expect)
        assert (np.linalg.det(A[:1000]).round() == 0).any()  # singular slots are present

    # ---------------------------------------------------------------- logdet
    def test_logdet_grad_singular_and_near(self, matgrad_backend: BackendLike) -> None:
        A = np.stack([np.eye(3), np.array([[1.0, 2, 3], [2, 4, 6], [0, 0, 1]]), 2 * np.eye(3)])
        G = np.asarray(matgrad.logdet_grad(A, backend=matgrad_backend))
        np.testing.assert_array_equal(G[0], np.eye(3))
        np.testing.assert_array_equal(G[2], 0.5 * np.eye(3))
        assert not np.isfinite(G[1]).all()
        near = np.array([[1.0, 1.0], [1.0, 1.0 + 1e-15]])
        G = np.asarray(matgrad.logdet_grad(near, backend=matgrad_backend))
        assert np.isfinite(G).all() and np.abs(G).max() > 1e14

    def test_logdet_grad_complex_is_inverse_conjugate_transpose(
        self, matgrad_backend: BackendLike
    ) -> None:
        rng = np.random.default_rng(5)
        A = rng.standard_normal((3, 4, 4)) + 1j * rng.standard_normal((3, 4, 4))
        G = np.asarray(matgrad.logdet_grad(A, backend=matgrad_backend))
        for b in range(3):
            score = ref.logdet_grad_error_ratio(G[b], A[b])
            assert score.ratio <= 1
        # gradient convention: d log|det A| = Re tr(Gᴴ dA)
        dA = 1e-7 * (rng.standard_normal((4, 4)) + 1j * rng.standard_normal((4, 4)))

        def f(M: Any) -> float:
            return float(np.linalg.slogdet(M)[1])

        fd = f(A[0] + dA) - f(A[0] - dA)
        assert abs(fd - 2 * np.real(np.trace(G[0].conj().T @ dA))) < 1e-12

    # -------------------------------------------------------------- charpoly
    def test_charpoly_many_points_one_matrix(self, matgrad_backend: BackendLike) -> None:
        rng = np.random.default_rng(9)
        A = rng.standard_normal((8, 8))
        x = np.linspace(-3, 3, 41)
        p, dp = matgrad.charpoly_deriv(A, x, return_value=True, backend=matgrad_backend)
        p, dp = np.asarray(p), np.asarray(dp)
        assert p.shape == dp.shape == (41,)
        for k in range(0, 41, 8):
            assert ref.charpoly_error_ratio(p[k], dp[k], A, x[k]).ratio <= 1

    def test_charpoly_newton_converges_to_eigenvalue(self, matgrad_backend: BackendLike) -> None:
        A = np.array([[2.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 4.0]])
        x = 10.0
        for _ in range(50):
            p, dp = matgrad.charpoly_deriv(A, x, return_value=True, backend=matgrad_backend)
            x = float(x - p / dp)
        assert abs(x - np.linalg.eigvalsh(A).max()) < 1e-13

    def test_charpoly_exact_integer_points(self, matgrad_backend: BackendLike) -> None:
        """Integer matrix at integer points: p, p′ are integers (exact Fractions)."""
        A = np.array([[1.0, 2, 0, 1], [0, 1, 3, 0], [2, 0, 1, 1], [1, 1, 0, 2]])
        pts = np.arange(-3.0, 5.0)
        p, dp = matgrad.charpoly_deriv(A, pts, return_value=True, backend=matgrad_backend)
        for k, x in enumerate(pts):
            rp, rdp = ref.ref_charpoly(A, x)
            assert abs(float(p[k]) - float(rp)) <= 1e-12 * max(1.0, abs(float(rp)))
            assert abs(float(dp[k]) - float(rdp)) <= 1e-12 * max(1.0, abs(float(rdp)))

    def test_charpoly_second_derivative_many_points(self, matgrad_backend: BackendLike) -> None:
        """p″ (and p, p′ with it) within the backward-stability bound, real
        and complex, at ordinary points and at an eigenvalue."""
        rng = np.random.default_rng(12)
        for dtype in (np.float64, np.complex128):
            A = rng.standard_normal((7, 7)).astype(dtype)
            if dtype is np.complex128:
                A = A + 1j * rng.standard_normal((7, 7))
            lam = np.linalg.eigvals(A)
            x = np.concatenate([np.linspace(-2, 2, 5), lam[:1].real])
            if dtype is np.complex128:
                x = np.concatenate([x[:-1], lam[:1]])
            parts = [np.asarray(r) for r in matgrad.charpoly_deriv(
                A, x, order=2, return_value=True, backend=matgrad_backend)]
            assert len(parts) == 3
            for k in range(len(x)):
                score = ref.charpoly_derivs_error_ratio([r[k] for r in parts], A, x[k])
                assert score.ratio <= 1, f"{dtype.__name__} point {k}: {score.ratio:.3g}"

    def test_charpoly_overflow_only_when_true(self, matgrad_backend: BackendLike) -> None:
        A = np.diag([1e100, 2e100, 3e100, 4e100])
        p, dp = matgrad.charpoly_deriv(A, 0.0, return_value=True, backend=matgrad_backend)
        assert np.isposinf(p) or np.isneginf(p) or float(p) == 24e400  # true |p| = 24e400
        assert np.isinf(p) and not np.isnan(dp)
        A = np.diag([1e60, 2e60, 3e60, 4e60])
        p, dp = matgrad.charpoly_deriv(A, 0.0, return_value=True, backend=matgrad_backend)
        np.testing.assert_allclose(float(p), 24e240, rtol=1e-14)
        np.testing.assert_allclose(float(dp), -(24e240) * (1 + 1 / 2 + 1 / 3 + 1 / 4) / 1e60,
                                   rtol=1e-14)

    # ---------------------------------------------------------- second order
    @pytest.mark.parametrize("n", [3, 4, 5, 6])
    @pytest.mark.parametrize("deficiency", [1, 2, 3])
    def test_det_hvp_rank_deficient_exact(self, matgrad_backend: BackendLike, n: int,
                                          deficiency: int) -> None:
        """Rank n−1, n−2 and n−3 integer matrices, zero pivot wherever it
        falls, against the exact second derivatives (rank ≤ n−3: zeros)."""
        rng = np.random.default_rng(10 * n + deficiency)
        r = n - deficiency
        for trial in range(3):
            A = (rng.integers(-4, 5, (n, r)) @ rng.integers(-4, 5, (r, n))).astype(float)
            A = A[rng.permutation(n)][:, rng.permutation(n)]
            V = rng.integers(-4, 5, (n, n)).astype(float)
            H = np.asarray(matgrad.det_hvp(A, V, backend=matgrad_backend))
            score = ref.det_hvp_error_ratio(H, A, V)
            assert score.ratio <= 1, f"trial {trial}: {score}"
            if deficiency == 3:
                np.testing.assert_array_equal(H, 0)

    @pytest.mark.parametrize("n", [4, 6])
    def test_second_order_rows_scaled_2_pow_300(self, matgrad_backend: BackendLike,
                                                n: int) -> None:
        """Rows scaled by 2^±300: right in the equilibrated frame, nothing
        spuriously over- or underflowing."""
        rng = np.random.default_rng(n)
        A = np.ldexp(rng.standard_normal((n, n)) + 3 * np.eye(n),
                     rng.choice([-300, 0, 300], n)[:, None])
        V = rng.standard_normal((n, n))
        H = np.asarray(matgrad.det_hvp(A, V, backend=matgrad_backend))
        assert np.isfinite(H).all()
        assert ref.det_hvp_error_ratio(H, A, V).ratio <= 1
        L = np.asarray(matgrad.logdet_hvp(A, V, backend=matgrad_backend))
        assert ref.logdet_hvp_error_ratio(L, A, V).ratio <= 1

    def test_logdet_hvp_is_the_derivative_of_logdet_grad(
        self, matgrad_backend: BackendLike
    ) -> None:
        """``d/dt logdet_grad(A + tV)`` (``t`` real) by central differences,
        real and complex: the conjugation convention of ``logdet_grad``."""
        rng = np.random.default_rng(6)
        for cplx in (False, True):
            A = rng.standard_normal((4, 4)) + 3 * np.eye(4)
            V = rng.standard_normal((4, 4))
            if cplx:
                A = A + 1j * rng.standard_normal((4, 4))
                V = V + 1j * rng.standard_normal((4, 4))
            h = 1e-6
            fd = (np.asarray(matgrad.logdet_grad(A + h * V, backend=matgrad_backend))
                  - np.asarray(matgrad.logdet_grad(A - h * V, backend=matgrad_backend))) / (2 * h)
            H = np.asarray(matgrad.logdet_hvp(A, V, backend=matgrad_backend))
            assert np.linalg.norm(H - fd) <= 1e-8 * np.linalg.norm(H), cplx
