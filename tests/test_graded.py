"""det_grad and logdet_grad on graded and badly scaled matrices, against exact
references: never worse than the textbook LAPACK formula normwise, no zero,
inf or NaN that the truth does not have, slots independent of their batch,
and the closed-form log|det| gradient of small matrices.  The named graded
classes also run on every backend through ``matgrad.testing``
(``check_graded_cofactors``, ``check_graded_inverse``)."""

from __future__ import annotations

import warnings
from typing import Any

import mpmath
import numpy as np
import pytest

import matgrad
from matgrad import _reference as ref

from .conftest import BACKENDS

EPS = 2.0**-52
BIG = mpmath.mpf(2) ** 1024


def _np(x: Any) -> np.ndarray:
    return np.asarray(x.compute() if hasattr(x, "compute") else x)


def _normwise(got: np.ndarray, exact: list[list[Any]]) -> float:
    """‖got − exact‖_F / ‖exact‖_F over the entries whose exact value is
    finite in float64; inf if such an entry is not finite, or if an entry
    whose exact value overflows is finite."""
    num = mpmath.mpf(0)
    den = mpmath.mpf(0)
    for i, row in enumerate(exact):
        for j, want in enumerate(row):
            g = complex(got[i, j])
            if abs(want) >= BIG:
                if np.isfinite(g):
                    return float("inf")
                continue
            if not np.isfinite(g):
                return float("inf")
            num += abs(mpmath.mpc(g) - want) ** 2
            den += abs(want) ** 2
    if den == 0:
        return 0.0 if num == 0 else float("inf")
    return float(mpmath.sqrt(num / den))


def _graded(rng: np.random.Generator, kind: str, n: int, spread: int) -> np.ndarray:
    """A matrix that is well conditioned once rows and columns are scaled:
    ``D₁·R·D₂`` with R random (dense, triangular, bidiagonal, tridiagonal)
    or a diagonal similarity ``D·R·D⁻¹``; entries all finite."""
    while True:
        R = rng.standard_normal((n, n))
        if kind == "triangular":
            R = np.triu(R) + np.eye(n)
        elif kind == "bidiagonal":
            R = np.diag(rng.uniform(1, 2, n)) + np.diag(rng.standard_normal(n - 1), 1)
        elif kind == "tridiagonal":
            R = (np.diag(rng.uniform(2, 3, n)) + np.diag(rng.standard_normal(n - 1), 1)
                 + np.diag(rng.standard_normal(n - 1), -1))
        r = rng.integers(-spread, spread + 1, n)
        c = -r if kind == "similarity" else rng.integers(-spread, spread + 1, n)
        A = np.ldexp(np.ldexp(R, r[:, None]), c[None, :])
        if np.isfinite(A).all():
            return A


KINDS = ["dense", "triangular", "bidiagonal", "tridiagonal", "similarity"]


def _textbook(A: np.ndarray, logdet: bool) -> np.ndarray | None:
    with np.errstate(all="ignore"):
        try:
            inv = np.linalg.inv(A)
        except np.linalg.LinAlgError:
            return None
        return inv.T if logdet else np.linalg.det(A) * inv.T


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
def test_never_worse_than_the_textbook_formula(backend: str, kind: str) -> None:
    """docs/numerics.md §1, item 1: normwise error ≤ 128·max(textbook, n·eps)
    on graded non-singular matrices, and item 2 (no spurious inf or NaN)."""
    rng = np.random.default_rng(abs(hash(kind)) % 2**32)
    for t in range(12):
        n = int(rng.integers(4, 9))
        A = _graded(rng, kind, n, spread=(20, 120, 250, 450)[t % 4])
        det, C = ref.exact_det_cofactor(A)
        if det == 0:
            continue
        with mpmath.workdps(60):
            inv_t = [[c / det for c in row] for row in C]
        for logdet, exact in ((False, C), (True, inv_t)):
            op = matgrad.logdet_grad if logdet else matgrad.det_grad
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", matgrad.CompileWarning)
                got = _np(op(A, backend=backend))
            tb = _textbook(A, logdet)
            floor = n * EPS
            std = 1.0 if tb is None else min(1.0, _normwise(tb, exact))
            err = _normwise(got, exact)
            assert err <= 128 * max(std, floor), (kind, n, logdet, err, std, A.tolist())


@pytest.mark.parametrize("backend", BACKENDS)
def test_graded_slots_are_independent_of_their_batch(backend: str) -> None:
    """The matching path decides per slot: a graded slot among random ones
    (and the random ones beside it) are bit-identical to their lone results."""
    rng = np.random.default_rng(23)
    for n in (5, 8):
        clean = rng.standard_normal((2, n, n))
        graded = _graded(rng, "triangular", n, spread=300)
        batch = np.stack([clean[0], graded, clean[1]])
        for op in (matgrad.det_grad, matgrad.logdet_grad):
            together = _np(op(batch, backend=backend))
            for i in range(3):
                alone = _np(op(batch[i:i + 1], backend=backend))[0]
                assert np.array_equal(together[i], alone), (op.__name__, n, i)


@pytest.mark.parametrize("backend", BACKENDS)
def test_column_scaling_within_the_bound(backend: str) -> None:
    """A column scaling is not bit-exact (docs/numerics.md §1, item 5), but
    the result for ``A·D`` is right against the exact cofactors of ``A·D``
    itself, entry by entry on these well-conditioned matrices."""
    rng = np.random.default_rng(29)
    for n in (3, 5, 8):
        A0 = rng.standard_normal((n, n)) + 3 * np.eye(n)
        for spread in (30, 300):
            A = np.ldexp(A0, rng.integers(-spread, spread + 1, n)[None, :])
            got = _np(matgrad.det_grad(A, backend=backend))
            exact = ref.ref_cofactor(A)
            assert _normwise(got, exact) <= 64 * n * EPS, (n, spread)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
def test_small_logdet_closed_form(backend: str, dtype: Any) -> None:
    """n = 2, 3: ``A⁻ᵀ = conj(C/det)`` from the closed forms; an exactly
    singular matrix gives a NaN slot with (sign, log|det|) = (0, −inf), its
    neighbours untouched; entries beyond 2^±300 take the elimination."""
    rng = np.random.default_rng(31)
    for n in (2, 3):
        A = rng.standard_normal((4, n, n))
        if np.dtype(dtype).kind == "c":
            A = A + 1j * rng.standard_normal((4, n, n))
        A[1] = 0
        A[1, 0, 0] = 1  # exactly singular
        # beyond 2^300 (the elimination) where the dtype holds it
        A[2] *= 2.0**400 if np.finfo(dtype).bits == 64 else 2.0**60
        A = A.astype(dtype)
        (sign, logabs), G = matgrad.logdet_grad(A, backend=backend, return_value=True)
        G, sign, logabs = _np(G), _np(sign), _np(logabs)
        assert G.dtype == A.dtype
        assert np.isnan(G[1]).all() and sign[1] == 0 and logabs[1] == -np.inf
        tol = 64 * n * float(np.finfo(dtype).eps)
        for b in (0, 2, 3):
            exact = ref.ref_inverse_t(A[b])
            assert exact is not None
            assert _normwise(G[b], exact) <= tol, (n, b)
            with mpmath.workdps(40):
                d = ref.exact_det_cofactor(A[b])[0]
                want = mpmath.log(abs(d))
            assert abs(float(logabs[b]) - float(want)) <= tol * max(1.0, abs(float(want)))
