"""Second derivatives of ``det``, ``log|det|`` and ``‖·‖_F``, batched on the host.

The host (NumPy) algorithms behind Hessian-vector products and Hessians.
Every function takes canonical arrays (a flattened leading batch axis,
float32/float64/complex64/complex128), computes in float64/complex128 and
rounds once at the end, never mutates its inputs and decides every path
per slot from that slot's own matrices, so a slot's result is bit-identical
whatever batch it sits in.

**det** (``C = cofactor(A) = adj(A)ᵀ``, ``∂det/∂A_ij = C_ij``):

* :func:`det_hvp` ``H = D C(A)[V]``, ``H_ij = Σ_kl ∂²det/∂A_ij∂A_kl·V_kl``;
  for complex input the holomorphic derivative ``d/dt C(A + tV)`` at 0 (no
  conjugation).  ``∂²det/∂A_ij∂A_kl`` is 0 for ``i = k`` or ``j = l`` and
  otherwise the signed ``(n−2)``-minor ``det(A`` with row ``i`` replaced
  by ``e_jᵀ`` and row ``k`` by ``e_lᵀ)``.
* :func:`det_hessian` the whole tensor ``Hess[i, j, k, l]`` (``n ≤``
  :data:`MAX_HESSIAN_N`).

Paths, per slot:

* ``n = 1``: 0.  ``n = 2``: ``C`` is linear, ``H = C(V) = [[v11, −v10],
  [−v01, v00]]``, whatever ``A``.
* ``n = 3``: ``C_ij = ½ ε_ikm ε_jln A_kl A_mn``, so ``H_ij = ε_ikm ε_jln
  V_kl A_mn``: row ``i`` of ``H`` is ``V_k × A_m + A_k × V_m`` for the cyclic
  ``(i, k, m)`` (rows as vectors).  A polynomial: exact for singular ``A``,
  no division.  A slot whose products overflow is redone on the equilibrated
  pair (below).
* ``n ≥ 4``, **scaling**: the maximum equilibration ``Ã = D_r A D_c`` of
  :func:`matgrad.kernels.cofactor.det_grad` (exponents ``r``, ``c``), and
  the direction in the same frame, ``Ṽ = D_r V D_c·2^-kv`` with ``2^kv``
  its largest entry's binade (``H`` is linear in ``V``).  Since
  ``C(Ã) = det(D_r)det(D_c)·D_r⁻¹C(A)D_c⁻¹`` for the curve ``A + tV``,
  ``H_ij = H(Ã)[Ṽ]_ij·2^(kv + r_i + c_j − Σr − Σc)``: the exponents of
  ``det_grad``, applied exactly (one rounding, only for a result that truly
  over- or underflows).
* **Which tier is accepted** is decided per slot by an a-posteriori test in
  ``A``'s own frame: entry ``(i, j)`` of the frame's result is worth
  ``w_ij = 2^(r_i + c_j − max)`` (≤ 1) of it there, so a tier's normwise
  error estimate ``est`` in the frame bounds its error in ``A``'s frame, and
  the tier is kept where ``est ≤ ACCEPT_C·n²·eps·‖H̃ ⊙ w‖_F``.  The frame's
  absolute error mapped back by per-entry powers of two is what ruins a
  graded matrix, or a direction graded against the matrix (rows of ``A``
  scaled by 2^±300 make ``Ṽ`` graded by 2^600), and the test sees it.
* **Tier 1, the formula**, from the elimination of ``Ã`` (partial pivoting,
  :func:`matgrad.kernels.cofactor.lu_batched`; every pivot ``> REDO_PIVOT``;
  ``det Ã = dm·2^de`` from the pivots, ``Y = Ã⁻¹``):
  ``H(Ã)[Ṽ] = det Ã·(tr(YṼ)·Y − YṼY)ᵀ`` (= ``tr(A⁻¹V)·C − C·Vᵀ·A⁻ᵀ``),
  ``est = n·eps·|det Ã|·‖Y‖_F²·‖Ṽ‖_F``.  The ``1/σₙ²`` terms cancel in
  exact arithmetic but not their rounding, so the formula loses about
  ``σₙ₋₁/σₙ`` against a backward-stable result (measured: 2e8 times the
  bound below at ``σₙ/σ₁ = 1e-10``), which ``est`` tracks.  Measured on
  random Gaussian matrices (n = 4 to 20): ``est`` has median
  ``4·n²·eps·‖H‖`` and 1.1–1.5 % of them fail the test (on to tier 2).
* **Tier 2, the SVD** of the same ``Ã``: ``Ã = UΣWᴴ`` gives
  ``Ã + tṼ = U(Σ + tM)Wᴴ`` with ``M = Uᴴ Ṽ W``, so
  ``D adj(Ã)[Ṽ] = det(U)det(Wᴴ)·W·D adj(Σ)[M]·Uᴴ`` and ``D adj(Σ)[M] = K``
  with ``K_ii = Σ_{k≠i} M_kk·π_ik``, ``K_ij = −M_ij·π_ij`` (``i ≠ j``),
  ``π_ij = Π_{l∉{i,j}} σ_l``; ``H`` is its transpose,
  ``det(U)det(Wᴴ)·conj(U)·Kᵀ·conj(Wᴴ)``.  No division: right at every rank
  (rank n − 1 and n − 2 give their nonzero ``H``; a numerical rank
  ``≤ n − 3``, ``σₙ₋₂ ≤ 4·n·eps·σ₁``, gives exact zeros); entries at or
  below ``4·n·eps`` of the largest are flushed to 0 as ``det_grad``'s SVD
  adjugate flushes its noise.  The ``π_ij`` are formed as mantissa·2ᵉ
  (``Π_l m_l / (m_i m_j)`` times an integer exponent), so nothing over- or
  underflows on the way.  Backward stable in the frame
  (``est = n²·eps·‖Ṽ‖·σ̃₁·Π_{i≤n−3}σ̃_i``), kept where ``est`` passes the
  test; a numerical rank ``≤ n − 3`` gives ``H = 0`` where the matching
  frame (:func:`matgrad.kernels.cofactor.matching_equilibrate`) agrees.
* **Tier 3, by rows**, what both fail (graded matrices and directions):
  ``C(A + tV)_ij = det(A + tV`` with row ``i`` → ``e_jᵀ)`` is linear in each
  row ``q ≠ i``, so ``H = Σ_q`` (``C(A`` with row ``q`` replaced by ``V_q)``
  with row ``q`` zeroed): ``n`` cofactor matrices per slot from
  :func:`matgrad.kernels.cofactor.det_grad`, each with its own
  equilibration, matching and refinement from minors, so ``H`` inherits
  ``det_grad``'s accuracy on graded matrices.  Measured on ``εI +
  triu(ones, 1)`` and the graded dense, triangular, bidiagonal,
  tridiagonal and similarity classes of ``tests/test_graded.py`` (spread
  2^±60): normwise relative error ≤ 4e-16 in ``A``'s frame, where the
  formula and the SVD in the maximum frame were off by 1e-6 to 1e63.  The
  price is ``n`` slow ``det_grad`` slots (matching loop, minors): measured
  9 ms per 8×8 and 0.4 s per 16×16 ``10⁻²⁰I + triu(ones, 1)`` slot,
  against 0.75 and 7.8 ms for ``det_grad`` itself.
* Accuracy: the backward-stable level in the equilibrated frame
  (``c·n²·eps·‖Ṽ‖·σ̃₁·Π_{i≤n−3}σ̃_i``, held by the tests), plus, for tier 1,
  the formula's own rounding, at most ``ACCEPT_C·n²·eps`` of the result in
  ``A``'s frame by the test; the SVD is kept only where its whole bound
  passes that test, and tier 3 has ``det_grad``'s accuracy on the
  row-replaced matrices.  An ill-conditioned matrix with several small
  singular values loses what its conditioning says (``eps·σ̃₁/σ̃ₙ₋₂``
  relative: 6e-12 for ``σ = (1, …, 1, 1e-5, 1e-6, 1e-7)``, the formula and
  the SVD alike).  Entrywise accuracy is not promised: as for
  ``det_grad``, entries far below the largest carry the absolute error of
  the frame they were computed in.
* A non-finite entry in ``A`` makes the slot NaN (``n ≥ 4``; for ``n ≤ 3``
  the polynomial propagates it where ``H`` depends on it); a non-finite
  ``V`` propagates through the arithmetic.

:func:`det_hvp_value` returns ``(det, C, H)``: ``det`` and ``C`` are
:func:`matgrad.kernels.cofactor.det_value_grad`'s, bit for bit, from its own
elimination (``det_value_grad``'s rule for keeping its tier 1 is private to
that module, so the factors of tier 1 here are not shared).

**log|det|** (:func:`logdet_hvp`): ``logdet_grad`` is ``G = A⁻ᵀ`` (``A⁻ᴴ``
for complex ``A``), so ``H = d/dt G(A + tV) = −A⁻ᵀVᵀA⁻ᵀ``, for complex
``A`` (the real-direction derivative) ``−conj(A⁻ᵀVᵀA⁻ᵀ) = −G·Vᴴ·G``.  ``G``
is :func:`matgrad.kernels.cofactor.logdet_grad`'s (its accuracy rules and
its NaN slots carry over); the product is formed on ``G = D₁ĜD₂``
(power-of-two equilibrated) with ``V`` scaled to match, so nothing over- or
underflows that the true ``H`` does not.  A slot whose ``G`` overflowed
(inf, no NaN) is redone from ``logdet_grad`` of its equilibrated ``Ã``.

**‖X‖_F** (:func:`frobenius_hvp`): ``G = X/‖X‖``, ``H = (V − G·⟨G, V⟩)/‖X‖``
with ``⟨G, V⟩ = Re Σ conj(g)·v``.  Computed on ``X·2^-kx`` and ``V·2^-kv``
(largest entries' binades) and mapped back by ``2^(kv − kx)``, never
forming ``‖X‖``.  ``X = 0``: ``‖·‖`` has no Hessian there (along ``tV`` it is
``|t|·‖V‖``, and ``H`` grows like ``1/‖X‖`` as ``X → 0``), so the slot is
NaN — a finite stand-in such as 0 would be silently wrong for every
direction; NaN or inf in ``X`` gives a NaN slot too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._config import config
from .cofactor import (
    REDO_PIVOT,
    TINY_PIVOT_C,
    _abs_maxima,
    _closed_form,
    _equilibrate,
    _scale_by_pow2,
    _scale_entries,
    det_grad,
    det_value_grad,
    logdet_grad,
    lu_batched,
    matching_equilibrate,
)
from .scaling import exponent_of_max, ldexp, magnitude, mantissa_product, narrow, widen

__all__ = [
    "ACCEPT_C",
    "MAX_HESSIAN_N",
    "det_hessian",
    "det_hvp",
    "det_hvp_value",
    "frobenius_hvp",
    "logdet_hvp",
]

#: Largest ``n`` for :func:`det_hessian` (its result has ``n⁴`` entries per
#: matrix: 1 048 576 at n = 32).
MAX_HESSIAN_N = 32
#: The formula's (or the SVD's) result is accepted where its normwise error
#: estimate is at most ``ACCEPT_C·n²·eps`` of the result weighted into
#: ``A``'s frame (measured: 1.1-1.5 % of random Gaussian matrices of n = 4
#: to 20 fail it on the formula; the median estimate is 4·n²·eps).
ACCEPT_C = 128.0
_EPS = float(np.finfo(np.float64).eps)
_SUPPORTED = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.complex64),
              np.dtype(np.complex128))
#: Slots per chunk of det_hessian's n⁴ temporaries (entries ≈ this bound).
_HESSIAN_CHUNK_ENTRIES = 1 << 20


# ---------------------------------------------------------------- checks
def _check(name: str, A: Any, V: Any, square: bool) -> None:
    """Canonical arrays: ndarrays of one supported dtype, ``(B, m, n)``
    (square when ``square``), ``V`` shaped like ``A`` (``V`` None: none)."""
    for x, what in ((A, "A"), (V, "V")):
        if x is None:
            continue
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{name}: {what} must be a numpy.ndarray, got {type(x).__name__}")
        if x.dtype not in _SUPPORTED:
            raise TypeError(f"{name}: {what} has dtype {x.dtype}; expected float32, float64, "
                            "complex64 or complex128")
    if A.ndim != 3 or (square and A.shape[1] != A.shape[2]):
        want = "(B, n, n)" if square else "(B, m, n)"
        raise ValueError(f"{name}: A must have shape {want}, got {A.shape}")
    if V is not None:
        if V.shape != A.shape:
            raise ValueError(f"{name}: V must have A's shape {A.shape}, got {V.shape}")
        if V.dtype != A.dtype:
            raise TypeError(f"{name}: V has dtype {V.dtype} but A has {A.dtype}; "
                            "promote both to one dtype first")


# ---------------------------------------------------------------- det: n ≤ 3
def _hvp3(A: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``H = D C(A)[V]`` for 3×3 slots: row ``i`` is ``V_k × A_m + A_k × V_m``
    for the cyclic ``(i, k, m)``, entry ``j`` of ``x × y`` being
    ``x_p y_q − x_q y_p`` for the cyclic ``(j, p, q)``.  Works on the nine
    entries as contiguous rows ``(9, B)``: strided columns of ``(B, 3, 3)``
    cost twice as much."""
    B = A.shape[0]
    a = np.ascontiguousarray(A.reshape(B, 9).T)
    v = np.ascontiguousarray(V.reshape(B, 9).T)
    h = np.empty_like(a)
    t = np.empty(B, dtype=a.dtype)
    cyc = ((1, 2), (2, 0), (0, 1))
    for i, (k, m) in enumerate(cyc):
        for j, (p, q) in enumerate(cyc):
            out = h[3 * i + j]
            np.multiply(v[3 * k + p], a[3 * m + q], out=out)
            np.multiply(v[3 * k + q], a[3 * m + p], out=t)
            out -= t
            np.multiply(a[3 * k + p], v[3 * m + q], out=t)
            out += t
            np.multiply(a[3 * k + q], v[3 * m + p], out=t)
            out -= t
    return np.ascontiguousarray(h.T).reshape(B, 3, 3)


def _small_hvp(W: np.ndarray, Vw: np.ndarray) -> np.ndarray:
    """``H`` for ``n ≤ 3`` in the wide dtype (see the module docstring)."""
    n = W.shape[-1]
    if n == 1:
        return np.zeros_like(W)
    if n == 2:
        return _closed_form(Vw)
    H = _hvp3(W, Vw)
    redo = np.flatnonzero(~np.isfinite(H).all(axis=(1, 2)) & _finite(W) & _finite(Vw))
    if redo.size:
        # products overflowed: the same polynomial on the equilibrated pair
        At, r, c = _equilibrate(W[redo])
        Vs, kv = _direction(Vw[redo], r, c)
        g = kv - r.sum(axis=1) - c.sum(axis=1)
        H[redo] = _scale_entries(_hvp3(At, Vs), np.ones(redo.size), g, r, c)
    return H


def _finite(X: np.ndarray) -> np.ndarray:
    return np.isfinite(X).all(axis=(1, 2))  # type: ignore[no-any-return]


def _direction(V: np.ndarray, row: np.ndarray, col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(Vs, kv)``: ``Vs_ij = V_ij·2^(row_i + col_j − kv)`` with ``2^kv`` the
    binade of the largest ``magnitude(V_ij)·2^(row_i + col_j)`` (from integer
    exponents, so nothing is rounded on the way), every ``|Vs_ij| < 1``;
    ``kv = 0`` where ``V`` has no finite nonzero entry."""
    mag = magnitude(V)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(mag) & (mag > 0)
    e = np.frexp(np.where(ok, mag, 1.0))[1].astype(np.int64)
    e = e + row[:, :, None] + col[:, None, :]
    low = np.iinfo(np.int64).min
    top = np.where(ok, e, low).max(axis=(1, 2))
    kv = np.where(top == low, 0, top)
    return _scale_by_pow2(V, row - kv[:, None], col), kv


# ---------------------------------------------------------------- det: n ≥ 4
class _Frame:
    """The maximum-equilibrated frame of some finite slots: ``Ã = D_r A D_c``
    (exponents ``r``, ``c``), the direction ``Ṽ = D_r V D_c·2^-kv`` (none for
    det_hessian), the elimination of ``Ã``, and the weights
    ``w_ij = 2^(r_i + c_j − max)`` by which an entry of the frame maps to
    ``A``'s frame (up to one common power of two)."""

    def __init__(self, At: np.ndarray, r: np.ndarray, c: np.ndarray,
                 V: np.ndarray | None) -> None:
        self.At, self.r, self.c = At, r, c
        if V is None:
            self.Vs, self.kv = np.zeros_like(At), np.zeros(At.shape[0], dtype=np.int64)
        else:
            self.Vs, self.kv = _direction(V, r, c)
        self.f = lu_batched(At)
        s = r[:, :, None] + c[:, None, :]
        self.w = np.ldexp(1.0, s - s.max(axis=(1, 2), keepdims=True))

    def usable(self) -> np.ndarray:
        """Slots whose pivots are all finite and ``> REDO_PIVOT``."""
        piv = self.f.pivots()
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(piv).all(axis=1) & (np.abs(piv) > REDO_PIVOT).all(axis=1)
        return np.flatnonzero(ok)

    def inverse(self, idx: np.ndarray) -> np.ndarray:
        sub = self.f if idx.size == self.At.shape[0] else self.f.take(idx)
        return sub.inverse()

    def det(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``det Ã = dm·2^de`` from the pivots."""
        m, e = mantissa_product(self.f.pivots()[idx])
        return m * self.f.sign[idx], e

    def exponent(self, idx: np.ndarray) -> np.ndarray:
        """``kv − Σr − Σc``: with ``r_i + c_j`` per entry, what maps
        ``H(Ã)[Ṽ]`` back to ``H(A)[V]`` (and with ``r_k + c_l`` too, the
        Hessian)."""
        out: np.ndarray = self.kv[idx] - self.r[idx].sum(axis=1) - self.c[idx].sum(axis=1)
        return out

    def shift(self, idx: np.ndarray, extra: np.ndarray) -> np.ndarray:
        """Per entry ``extra + exponent + r_i + c_j``."""
        r, c = self.r[idx], self.c[idx]
        g = extra + self.exponent(idx)
        out: np.ndarray = g[:, None, None] + r[:, :, None] + c[:, None, :]
        return out


def _sq(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = x.real**2 + x.imag**2 if np.iscomplexobj(x) else x * x
    return out


def _accurate(core: np.ndarray, est: np.ndarray, w: np.ndarray, tol: float) -> np.ndarray:
    """Per slot: a normwise error ``est`` of ``core`` (the result in the
    frame, up to a common factor) is at most ``tol`` of the result weighted
    into ``A``'s frame, ``‖core ⊙ w‖_F``.  Since every weight is ``≤ 1``,
    ``est`` bounds the error in ``A``'s frame too; the frame's absolute error
    mapped back by per-entry powers of two is what ruins a graded matrix (or
    a direction graded against it), and this sees it."""
    B = core.shape[0]
    with np.errstate(all="ignore"):
        hw = np.sqrt(_sq(core * w).reshape(B, -1).sum(axis=1))
        ok: np.ndarray = est <= tol * hw
    return ok


def _tol(n: int) -> float:
    return ACCEPT_C * n * n * _EPS


def _formula_core(Y: np.ndarray, Vs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(core, est)``: ``core = (tr(YṼ)·Y − YṼY)ᵀ`` (``H(Ã)[Ṽ] = det Ã·core``)
    and its normwise error estimate, ``n·eps·‖Y‖_F²·‖Ṽ‖_F``."""
    n = Y.shape[-1]
    t = (Y * Vs.transpose(0, 2, 1)).sum(axis=(1, 2))
    K = Y * t[:, None, None]
    K -= Y @ Vs @ Y
    est = n * _EPS * _sq(Y).sum(axis=(1, 2)) * np.sqrt(_sq(Vs).sum(axis=(1, 2)))
    return K.transpose(0, 2, 1), est


def _svd_parts(
    U: np.ndarray, s: np.ndarray, Vh: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(d, π̂, emax, low)``: ``d = det(U)·det(Vh)``,
    ``π_ij = Π_{l∉{i,j}} σ_l = π̂_ij·2^emax`` (``π̂_ii = 0``), and the slots of
    numerical rank ``≤ n − 3`` (``σₙ₋₂ ≤ 4·n·eps·σ₁``), whose ``π`` is 0:
    every second derivative of ``det`` is a sum of products of ``n − 2``
    singular values.

    With ``σ_l = m_l·2^e_l`` (``m_l`` in [0.5, 1)) and ``Π_l m_l = pm·2^pe``
    (:func:`mantissa_product`, renormalised), ``π_ij = pm/(m_i m_j) ·
    2^(pe + Σe − e_i − e_j)``: one division per pair (``pm/(m_i m_j)`` lies in
    [0.5, 4)), integer exponents, no partial product that can over- or
    underflow.  Exactly zero singular values are left out of the products and
    make ``π_ij = 0`` unless they are among ``i``, ``j``."""
    n = s.shape[1]
    d = np.linalg.slogdet(U)[0] * np.linalg.slogdet(Vh)[0]
    low = s[:, n - 3] <= TINY_PIVOT_C * n * _EPS * s[:, 0]
    s = np.where(low[:, None], 0.0, s)
    m, e = np.frexp(s)
    e = e.astype(np.int64)
    zero = m == 0
    ms = np.where(zero, 1.0, m)
    es = np.where(zero, 0, e)
    pm, pe = mantissa_product(ms)
    total = es.sum(axis=1) + pe
    outside = zero.sum(axis=1)[:, None, None] - zero[:, :, None] - zero[:, None, :]
    valid = (outside == 0) & ~np.eye(n, dtype=bool)[None]
    expo = total[:, None, None] - es[:, :, None] - es[:, None, :]
    low_e = np.iinfo(np.int64).min
    emax = np.where(valid, expo, low_e).max(axis=(1, 2))
    emax = np.where(emax == low_e, 0, emax)
    p = pm[:, None, None] / (ms[:, :, None] * ms[:, None, :])
    pi = np.where(valid, np.ldexp(p, np.where(valid, expo - emax[:, None, None], 0)), 0.0)
    return d, pi, emax, low


def _svd_est(s: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """The SVD's error per entry, in units of ``2^emax``: the exact result
    of a matrix within ``c·n·eps·σ₁`` of ``Ã``, off by
    ``≲ n²·eps·σ₁·Π_{i≤n−3}σ_i = n²·eps·max π·σ₁/σₙ₋₂`` per unit of the
    direction."""
    n = s.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        est: np.ndarray = n * n * _EPS * pi.max(axis=(1, 2)) * (s[:, 0] / s[:, n - 3])
    return est


def _svd_hvp(At: np.ndarray, Vs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                       np.ndarray]:
    """``(core, emax, est, low)``: ``H(Ã)[Ṽ] = core·2^emax`` by the SVD
    (module docstring), entries below ``4·n·eps`` of the largest flushed."""
    n = At.shape[-1]
    U, s, Vh = np.linalg.svd(At)
    d, pi, emax, low = _svd_parts(U, s, Vh)
    M = U.conj().transpose(0, 2, 1) @ Vs @ Vh.conj().transpose(0, 2, 1)
    K = -M * pi
    diag = np.arange(n)
    K[:, diag, diag] = (pi * M[:, diag, diag][:, None, :]).sum(axis=2)
    core = (U.conj() @ K.transpose(0, 2, 1) @ Vh.conj()) * d[:, None, None]
    _flush(core)
    est = _svd_est(s, pi) * np.sqrt(_sq(Vs).sum(axis=(1, 2)))
    return core, emax, est, low


def _flush(core: np.ndarray) -> None:
    """Entries at or below ``4·n·eps`` of the slot's largest are rounding
    noise of the SVD: set to 0 in place (as ``det_grad``'s SVD adjugate
    does), so that exact zeros (rank n − 2, diag(1, 1, 0, 0)) stay zeros."""
    B = core.shape[0]
    n = core.shape[1]
    flat = core.reshape(B, -1)
    mag = magnitude(flat)
    flat[mag <= TINY_PIVOT_C * n * _EPS * mag.max(axis=1, keepdims=True)] = 0


def _rowwise_hvp(W: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``H`` of finite slots by rows: ``H = Σ_q`` (``C(A`` with row ``q``
    replaced by ``V_q)`` with row ``q`` zeroed), since
    ``C(A + tV)_ij = det(A + tV`` with row ``i`` → ``e_jᵀ)`` is linear in
    each row ``q ≠ i``.  ``n`` cofactor matrices by
    :func:`matgrad.kernels.cofactor.det_grad` per slot, each with its own
    equilibration, matching and refinement from minors: the route for
    graded matrices (and directions graded against them), whose frame's
    absolute error would swamp the entries that matter in ``A``'s."""
    k, n, _ = W.shape
    H = np.empty_like(W)
    q = np.arange(n)
    step = max(1, _HESSIAN_CHUNK_ENTRIES // n**3)
    for s0 in range(0, k, step):
        sl = slice(s0, min(k, s0 + step))
        M = np.repeat(W[sl, None], n, axis=1)  # M[b, q] = A_b with row q → V_bq
        M[:, q, q, :] = V[sl, q, :]
        C = det_grad(M.reshape(-1, n, n)).reshape(M.shape)
        C[:, q, q, :] = 0
        acc = C[:, 0].copy()
        for p in range(1, n):
            acc += C[:, p]
        H[sl] = acc
    return H


def _general_hvp(W: np.ndarray, Vw: np.ndarray) -> np.ndarray:
    """``H`` for ``n ≥ 4`` (finite slots by the tiers of the module
    docstring, the others NaN)."""
    B, n, _ = W.shape
    H = np.full(W.shape, np.nan, dtype=W.dtype)
    rmax = _abs_maxima(W, 2)
    idx = np.flatnonzero(np.isfinite(rmax).all(axis=1))
    if idx.size == 0:
        return H
    every = idx.size == B
    Wf = W if every else W[idx]
    Vf = Vw if every else Vw[idx]
    At, r, c = _equilibrate(Wf, rmax if every else rmax[idx])
    fr = _Frame(At, r, c, Vf)
    tol = _tol(n)
    ok = np.empty(0, dtype=np.int64)
    cand = fr.usable()
    if cand.size:
        Y = fr.inverse(cand)
        core, est = _formula_core(Y, fr.Vs[cand])
        good = _accurate(core, est, fr.w[cand], tol)
        ok = cand[good]
        dm, de = fr.det(ok)
        H[idx[ok]] = _scale_entries(core[good], dm, de + fr.exponent(ok), r[ok], c[ok])
    rest = np.setdiff1d(np.arange(idx.size), ok)
    if rest.size:
        core, emax, est, low = _svd_hvp(At[rest], fr.Vs[rest])
        good = ~low & _accurate(core, est, fr.w[rest], tol)
        g = rest[good]
        H[idx[g]] = ldexp(core[good], fr.shift(g, emax[good]))
        zero = _low_rank(Wf, fr, rest[low])
        H[idx[zero]] = 0
        hard = np.setdiff1d(rest[~good], zero)
        if hard.size:
            H[idx[hard]] = _rowwise_hvp(Wf[hard], Vf[hard])
    return H


def _low_rank(W: np.ndarray, fr: _Frame, idx: np.ndarray) -> np.ndarray:
    """The slots of ``idx`` (numerical rank ``≤ n − 3`` in the maximum frame)
    whose matching-equilibrated matrix has that rank too: their second
    derivatives are 0.  The maximum frame alone cannot tell: for
    ``blockdiag(B, B, B)`` with ``B = 10⁻²⁰I + triu(ones(3, 3), 1)`` it has
    three singular values of 1e-17, so the SVD there returned ``H = 0``,
    while the matching frame makes it well conditioned and ``H`` is 2e-60
    (found by rows to 2e-16).  The others (and structurally singular
    matrices, which have no matching) go by rows."""
    if idx.size == 0:
        return idx
    n = W.shape[-1]
    At2, _, _, matched = matching_equilibrate(W[idx], fr.r[idx], fr.c[idx])
    m = np.flatnonzero(matched)
    if m.size == 0:
        return m
    s = np.linalg.svd(At2[m], compute_uv=False)
    return idx[m[s[:, n - 3] <= TINY_PIVOT_C * n * _EPS * s[:, 0]]]  # type: ignore[no-any-return]


def det_hvp(A: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``H = D cofactor(A)[V]``, i.e. ``H_ij = Σ_kl ∂²det/∂A_ij∂A_kl·V_kl``
    (holomorphic for complex input), per slot of ``A, V (B, n, n)``; see the
    module docstring for the paths and the accuracy."""
    _check("det_hvp", A, V, square=True)
    return _det_hvp(A, V)


def det_hvp_value(A: np.ndarray, V: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(det A, cofactor(A), H)``: ``det`` and ``cofactor`` are
    :func:`matgrad.kernels.cofactor.det_value_grad`'s and ``H`` is
    :func:`det_hvp`'s, bit for bit.

    Two eliminations for ``n ≥ 4`` (``det_value_grad``'s and this module's):
    reading ``(det, C)`` off the elimination that gave ``H`` would save one,
    but gives ``det_value_grad``'s bits only where ``det_value_grad`` keeps its
    own tier 1, whose acceptance rule is private to that module."""
    _check("det_hvp_value", A, V, square=True)
    B, n, _ = A.shape
    H = _det_hvp(A, V)
    if B == 0:
        return np.empty(0, dtype=A.dtype), np.empty(A.shape, dtype=A.dtype), H
    if n == 0:
        return np.ones(B, dtype=A.dtype), np.empty(A.shape, dtype=A.dtype), H
    d, C = det_value_grad(A)
    return d, C, H


def _det_hvp(A: np.ndarray, V: np.ndarray) -> np.ndarray:
    B, n, _ = A.shape
    if B == 0 or n == 0:
        return np.zeros(A.shape, dtype=A.dtype)
    W, Vw = widen(A), widen(V)
    with np.errstate(all="ignore"):
        H = _small_hvp(W, Vw) if n <= 3 else _general_hvp(W, Vw)
    return narrow(H, A.dtype)


# ---------------------------------------------------------------- det: Hessian
def det_hessian(A: np.ndarray) -> np.ndarray:
    """``Hess[b, i, j, k, l] = ∂²det(A_b)/∂A_ij∂A_kl`` ``(B, n, n, n, n)``.

    ``Hess[i, j, k, l] = det_hvp(A, E_kl)[i, j]``: 0 where ``i = k`` or
    ``j = l``, else the signed ``(n−2)``-minor of ``A`` without rows ``i, k``
    and columns ``j, l``; symmetric under ``(i, j) ↔ (k, l)``.  Those zeros
    and that symmetry hold exactly (bit for bit) on every path.

    ``n ≤ 2``: constants; ``n = 3``: ``ε_ikm ε_jlq A_mq`` (entries of ``A``,
    exact).  ``n ≥ 4``: one factorisation per matrix and the tiers of
    :func:`det_hvp`, each accepted by the same weighted a-posteriori test
    over the whole tensor: ``det Ã·(X_ij X_kl − X_il X_kj)`` with
    ``X = Ã⁻ᵀ``; the SVD, ``d·Σ_{a,c} π_ac P_ia P_kc (Q_aj Q_cl − Q_cj Q_al)``
    (``P = conj(U)``, ``Q = conj(Vh)``, ``d = det(U)det(Vh)``: ``F π Fᵀ`` with
    ``F[(i, j), a] = P_ia Q_aj``, n⁵ flops), exact zeros at numerical rank
    ``≤ n − 3`` where the matching frame agrees; else ``(−1)^(i+j)·C(A``
    without row ``i``, column ``j)`` from
    :func:`matgrad.kernels.cofactor.det_grad` (n² minors; see
    :func:`_minor_hessian` for what that inherits).  Entries are
    mapped back by ``2^(r_i + c_j + r_k + c_l − Σr − Σc)``.  A non-finite
    slot (``n ≥ 4``) is NaN.  Raises ValueError for ``n > MAX_HESSIAN_N``."""
    _check("det_hessian", A, None, square=True)
    B, n, _ = A.shape
    if n > MAX_HESSIAN_N:
        raise ValueError(
            f"det_hessian: n = {n} exceeds MAX_HESSIAN_N = {MAX_HESSIAN_N} (the Hessian has "
            f"n⁴ = {n ** 4} entries per matrix); use det_hvp for Hessian-vector products")
    if B == 0 or n == 0:
        return np.zeros((B, n, n, n, n), dtype=A.dtype)
    if n <= 3:
        return _small_hessian(A)
    W = widen(A)
    with np.errstate(all="ignore"):
        return narrow(_general_hessian(W), A.dtype)


def _general_hessian(W: np.ndarray) -> np.ndarray:
    B, n, _ = W.shape
    out = np.full((B, n, n, n, n), np.nan, dtype=W.dtype)
    rmax = _abs_maxima(W, 2)
    idx = np.flatnonzero(np.isfinite(rmax).all(axis=1))
    if idx.size == 0:
        return out
    Wf = W[idx]
    At, r, c = _equilibrate(Wf, rmax[idx])
    fr = _Frame(At, r, c, None)
    tol = _tol(n)
    done = np.zeros(idx.size, dtype=bool)
    cand = fr.usable()
    for part in _chunks(cand.size, n):
        sl = cand[part]
        X = fr.inverse(sl).transpose(0, 2, 1)
        P1 = X[:, :, :, None, None] * X[:, None, None, :, :]  # X_ij X_kl
        core = P1 - P1.transpose(0, 1, 4, 3, 2)  # − X_il X_kj
        if np.iscomplexobj(core):
            # a complex product rounded with FMA need not commute: make the
            # structural zeros and the symmetry exact
            core = (core + core.transpose(0, 3, 4, 1, 2)) * 0.5
            diag = np.arange(n)
            core[:, diag, :, diag, :] = 0
            core[:, :, diag, :, diag] = 0
        # per direction E_kl (weight w_kl) the normwise error n·eps·‖Y‖²
        est = n * _EPS * _sq(X).sum(axis=(1, 2)) * _norm(fr.w[sl])
        good = _accurate(core, est, _w4(fr.w[sl]), tol)
        g = sl[good]
        dm, de = fr.det(g)
        out[idx[g]] = ldexp(core[good] * dm[:, None, None, None, None], _shift4(fr, g, de))
        done[g] = True
    rest = np.flatnonzero(~done)
    hard = []
    lows = []
    for part in _chunks(rest.size, n):
        sl = rest[part]
        core, emax, est, low = _svd_hessian(At[sl])
        w4 = _w4(fr.w[sl])
        good = ~low & _accurate(core, est * _norm(fr.w[sl]), w4, tol)
        g = sl[good]
        out[idx[g]] = ldexp(core[good], _shift4(fr, g, emax[good]))
        hard.append(sl[~good & ~low])
        lows.append(sl[low])
    low_slots = np.concatenate(lows) if lows else np.empty(0, dtype=np.int64)
    zero = _low_rank(Wf, fr, low_slots)
    out[idx[zero]] = 0
    hard.append(np.setdiff1d(low_slots, zero))
    h = np.concatenate(hard)
    if h.size:
        out[idx[h]] = _minor_hessian(Wf[h])
    return out


def _norm(x: np.ndarray) -> np.ndarray:
    """Frobenius norm per slot."""
    out: np.ndarray = np.sqrt(_sq(x).reshape(x.shape[0], -1).sum(axis=1))
    return out


def _w4(w: np.ndarray) -> np.ndarray:
    out: np.ndarray = w[:, :, :, None, None] * w[:, None, None, :, :]
    return out


def _shift4(fr: _Frame, idx: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """Per entry ``extra − Σr − Σc + r_i + c_j + r_k + c_l``."""
    s = fr.shift(idx, extra)
    rc = s - (extra + fr.exponent(idx))[:, None, None]
    out: np.ndarray = s[:, :, :, None, None] + rc[:, None, None, :, :]
    return out


def _svd_hessian(At: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    k, n, _ = At.shape
    U, s, Vh = np.linalg.svd(At)
    d, pi, emax, low = _svd_parts(U, s, Vh)
    P, Q = U.conj(), Vh.conj()
    # F[(i, j), a] = P_ia Q_aj; Z = F π Fᵀ, symmetrised exactly
    F = (P[:, :, None, :] * Q.transpose(0, 2, 1)[:, None, :, :]).reshape(k, n * n, n)
    Z = F @ pi.astype(F.dtype) @ F.transpose(0, 2, 1)
    Z = (Z + Z.transpose(0, 2, 1)) * 0.5
    Z4 = Z.reshape(k, n, n, n, n)  # Z4[i, j, k, l] = Z[(i, j), (k, l)]
    core = (Z4 - Z4.transpose(0, 1, 4, 3, 2)) * d[:, None, None, None, None]
    _flush(core)
    return core, emax, _svd_est(s, pi), low


def _minor_hessian(W: np.ndarray) -> np.ndarray:
    """``Hess[i, j, k, l] = (−1)^(i+j)·C(M_ij)_{k'l'}`` with ``M_ij`` the minor
    of ``A`` without row ``i`` and column ``j`` (``k' = k − [k > i]``, ``l'``
    likewise), from :func:`matgrad.kernels.cofactor.det_grad`; every entry
    comes out of two minors, ``M_ij`` and ``M_kl``: their mean, which makes
    the symmetry exact, except where one of them is exactly 0 and the other
    is not, where the nonzero one is taken (``det_grad`` may return 0 for an
    entry below its normwise rounding level in that minor: a graded 5×5
    bidiagonal lost half of its largest Hessian entry to the mean of the
    right value and such a 0).  Each minor's cofactors carry
    ``det_grad``'s accuracy for that minor; a structurally singular minor that is numerically of
    rank ``≤ n − 3`` in its maximum frame comes back as zeros (``det_grad``'s
    contract, normwise), so such entries are only right to that bound (the
    minors without row 2 and column 3 and without row 5 and column 0 of
    ``blockdiag(B, B, B)``, ``B = 10⁻²⁰I + triu(ones(3, 3), 1)``, lose
    entries of 1e-60, half of the tensor's norm)."""
    k, n, _ = W.shape
    out = np.zeros((k, n, n, n, n), dtype=W.dtype)
    keep = [np.delete(np.arange(n), i) for i in range(n)]
    for b in range(k):
        minors = np.stack([W[b][np.ix_(keep[i], keep[j])] for i in range(n) for j in range(n)])
        C = det_grad(minors).reshape(n, n, n - 1, n - 1)
        for i in range(n):
            for j in range(n):
                out[b, i, j][np.ix_(keep[i], keep[j])] = C[i, j] if (i + j) % 2 == 0 \
                    else -C[i, j]
    other = out.transpose(0, 3, 4, 1, 2)  # the same entries from the minors M_kl
    mean = (out + other) * 0.5
    out = np.where(other == 0, out, np.where(out == 0, other, mean))
    return out


def _small_hessian(A: np.ndarray) -> np.ndarray:
    B, n, _ = A.shape
    out = np.zeros((B, n, n, n, n), dtype=A.dtype)
    if n == 2:
        # C(X) = [[x11, −x10], [−x01, x00]]: Hess[i, j, k, l] = ∂C_ij/∂X_kl
        out[:, 0, 0, 1, 1] = out[:, 1, 1, 0, 0] = 1
        out[:, 0, 1, 1, 0] = out[:, 1, 0, 0, 1] = -1
    elif n == 3:
        cyc = ((0, 1, 2), (1, 2, 0), (2, 0, 1))
        sign = {(i, k): 1.0 for i, k, _ in cyc} | {(k, i): -1.0 for i, k, _ in cyc}
        third = {(i, k): m for i, k, m in cyc} | {(k, i): m for i, k, m in cyc}
        for (i, k), s1 in sign.items():
            for (j, l), s2 in sign.items():
                entry = A[:, third[i, k], third[j, l]]
                out[:, i, j, k, l] = entry if s1 * s2 > 0 else -entry  # exact
    return out


def _chunks(count: int, n: int) -> list[np.ndarray]:
    step = max(1, _HESSIAN_CHUNK_ENTRIES // n**4)
    return [np.arange(s, min(count, s + step)) for s in range(0, count, step)]


# ---------------------------------------------------------------- log|det|
def logdet_hvp(A: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``H = d/dt logdet_grad(A + tV)`` at 0: ``−A⁻ᵀVᵀA⁻ᵀ`` for real ``A``,
    ``−conj(A⁻ᵀVᵀA⁻ᵀ) = −G·Vᴴ·G`` (``G = A⁻ᴴ``) for complex ``A``; a NaN slot
    where :func:`matgrad.kernels.cofactor.logdet_grad` gives one (a
    non-finite entry, or exactly singular as its elimination sees it)."""
    _check("logdet_hvp", A, V, square=True)
    B, n, _ = A.shape
    if B == 0 or n == 0:
        return np.zeros(A.shape, dtype=A.dtype)
    W, Vw = widen(A), widen(V)
    with np.errstate(all="ignore"):
        G = logdet_grad(W)
        nan_slot = np.isnan(G).any(axis=(1, 2))
        Gh, rg, cg = _equilibrate(G)
        H = _sandwich(Gh, -rg, -cg, Vw)
        # A⁻ᵀ itself overflowed (inf, no NaN): from logdet_grad of the
        # equilibrated Ã, G = D_r·G(Ã)·D_c, whose entries are in range
        redo = np.flatnonzero(~nan_slot & ~_finite(G) & _finite(W))
        if redo.size:
            At, r, c = _equilibrate(W[redo])
            Gt = logdet_grad(At)
            fine = _finite(Gt)
            if fine.any():
                k = redo[fine]
                Gh2, rg2, cg2 = _equilibrate(Gt[fine])
                H[k] = _sandwich(Gh2, r[fine] - rg2, c[fine] - cg2, Vw[k])
        H[nan_slot] = np.nan
    return narrow(H, A.dtype)


def _sandwich(Gh: np.ndarray, a: np.ndarray, b: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``−G·Vᴴ·G`` (``Vᵀ`` for real) for ``G = 2^a·Gh·2^b`` (``a``, ``b``
    exponents per row and column, ``|Gh| < 1``): ``−2^a·Gh·(2^b Vᴴ 2^a)·Gh·2^b``
    with ``2^b Vᴴ 2^a = (2^a V 2^b)ᴴ`` scaled below 1 by ``2^-kv``, so the
    products are bounded by ``n²`` and only the final exact scaling can
    over- or underflow."""
    Vs, kv = _direction(V, a, b)
    core = Gh @ Vs.conj().transpose(0, 2, 1) @ Gh
    np.negative(core, out=core)
    return _scale_by_pow2(core, a + kv[:, None], b)


# ---------------------------------------------------------------- ‖X‖_F
def frobenius_hvp(X: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``H = (V − G·⟨G, V⟩)/‖X‖_F`` with ``G = X/‖X‖_F`` and
    ``⟨G, V⟩ = Re Σ conj(g)·v``, per slot of ``X, V (B, m, n)``: the
    derivative of :func:`matgrad.kernels.frobenius.frobenius_grad` along
    ``V`` (for complex ``X`` the real-direction derivative, on the real and
    imaginary parts as coordinates).

    Computed on ``Xs = X·2^-kx``, ``Vs = V·2^-kv`` (binades of the largest
    real or imaginary parts): ``t = ‖Xs‖`` (pairwise sum of squares, ≥ 0.5),
    ``Gs = Xs/t``, ``H = ((Vs − Gs·⟨Gs, Vs⟩)/t)·2^(kv − kx)``; ``‖X‖`` is never
    formed, so an entry over- or underflows only where the true value does
    (rounding error ≈ (2 + log₂ mn)·eps·‖V‖/‖X‖ normwise).  ``X = 0`` (the
    norm has no Hessian there) and non-finite ``X`` give a NaN slot; a
    non-finite ``V`` propagates.  Works on the real view in blocks of
    ``matgrad.config.scaling_block`` elements."""
    _check("frobenius_hvp", X, V, square=False)
    if X.size == 0:
        return np.zeros(X.shape, dtype=X.dtype)
    B = X.shape[0]
    xw = np.ascontiguousarray(widen(X))
    vw = np.ascontiguousarray(widen(V))
    out = np.empty_like(xw)
    fx = xw.reshape(B, -1)
    fv = vw.reshape(B, -1)
    fo = out.reshape(B, -1)
    if np.iscomplexobj(xw):
        fx, fv, fo = fx.view(np.float64), fv.view(np.float64), fo.view(np.float64)
    L = fx.shape[1]
    step = max(1, config.scaling_block // L)
    with np.errstate(all="ignore"):
        for s in range(0, B, step):
            rows = slice(s, min(B, s + step))
            fo[rows] = _frobenius_hvp_rows(fx[rows], fv[rows])
    return narrow(out, X.dtype)


def _frobenius_hvp_rows(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    ax = np.abs(x).max(axis=1)  # NaN propagates
    bad = ~(np.isfinite(ax) & (ax > 0))
    kx = exponent_of_max(np.where(bad, 1.0, ax))
    xs = _scale_rows(x, -kx)
    t = np.sqrt(np.square(xs).sum(axis=1))
    g = xs / t[:, None]
    kv = exponent_of_max(np.abs(v).max(axis=1))
    vs = _scale_rows(v, -kv)
    s = (g * vs).sum(axis=1)
    core = (vs - g * s[:, None]) / t[:, None]
    h = _scale_rows(core, kv - kx)
    h[bad] = np.nan
    return h


def _scale_rows(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``x·2^k`` per row, exactly (one rounding, for a subnormal or
    overflowing result): a multiplication by ``2^k`` where every ``|k| ≤
    1000`` (a normal float), else ``ldexp``; both give the same bits."""
    if np.abs(k).max(initial=0) <= 1000:
        out: np.ndarray = x * np.exp2(k.astype(np.float64))[:, None]
        return out
    return ldexp(x, k[:, None])
