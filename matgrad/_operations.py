"""The operation table: every operation of matgrad, described once.

Each :class:`Operation` names a public function, the canonical backend
methods behind it (:class:`Method`: arguments and the parts of a tuple
result), the textbook NumPy formula, the high-precision reference that
scores a result, an input builder for contract tests and the benchmark
workloads.  What is generic over operations reads this table instead of
listing the operations itself:

* :mod:`matgrad._backend` — the abstract methods of :class:`matgrad.Backend`,
  the host-side defaults of the value methods and :class:`ModuleBackend`'s
  delegation;
* :mod:`matgrad._frontend` — the result checks (argument names, parts of a
  tuple result, what it is called in messages);
* ``matgrad check`` (:mod:`matgrad._check`), ``matgrad bench``
  (:mod:`matgrad._bench`), the asv suite, :mod:`matgrad.testing` and the
  project's tests.

Adding an operation means a row here, its public function in
:mod:`matgrad._api` (signature and documentation), its kernels in each
backend, and their tests (see ``docs/architecture.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:  # the references import mpmath: loaded only when scoring
    from ._reference import Score

__all__ = [
    "METHODS",
    "OPERATIONS",
    "Method",
    "Operation",
    "Part",
    "Workload",
    "method",
]

Array = np.ndarray
#: ``call(name, *args, **options)``: public function ``name`` on the backend
#: being scored (the references take the functions from the caller, so that
#: this table imports nothing above it).
Call = Callable[..., Any]
Builder = Callable[[np.random.Generator], tuple[Any, ...]]


@dataclass(frozen=True)
class Part:
    """One array of a tuple result.

    ``kind``: ``"grad"`` has the gradient's shape and the call's dtype;
    ``"value"`` one entry per matrix (the shape without its two matrix axes)
    in the call's dtype; ``"real"`` likewise in the call's real dtype.
    """

    label: str
    kind: Literal["grad", "value", "real"]


@dataclass(frozen=True)
class Method:
    """A canonical backend method: what :class:`matgrad.Backend` declares.

    ``parts`` is empty for a single gradient array.  ``host_value`` (value
    methods only) computes the values on the host with NumPy from the
    canonical input; the base class pairs it with the backend's gradient
    where a backend does not compute both in one pass.
    """

    name: str
    args: tuple[str, ...]
    doc: str
    parts: tuple[Part, ...] = ()
    called: str = ""  # the tuple in messages: "the pair (p, p′)"
    gradient: str = ""  # for a value method: the gradient method it extends
    host_value: Callable[[Array], tuple[Array, ...]] | None = None
    #: the integer argument ``k`` that makes the result a tuple of ``k + 1``
    #: arrays, each like ``parts[0]`` ("" for a fixed tuple)
    count: str = ""
    #: the default of an optional method that is not a value method:
    #: ``default(backend, *args)``, correct on every backend
    default: Callable[..., Any] | None = None
    #: The whole result computed on the host with NumPy from the canonical
    #: input (the second-order methods): :class:`matgrad.Backend`'s default,
    #: which a backend may override with its own kernels.
    host: Callable[..., Any] | None = None

    @property
    def required(self) -> bool:
        """Every backend implements it (value methods, second-order methods
        and methods with a ``default`` have defaults)."""
        return self.host_value is None and self.default is None and self.host is None


@dataclass(frozen=True)
class Workload:
    """One benchmark problem: builds its float64 inputs, names its floor
    (``"copy"`` of the input, ``"fill"`` of the output, ``"inv"``: one
    LAPACK inverse), with a smaller variant for quick runs and asv, and the
    dtypes it is timed in (inputs cast from float64)."""

    label: str
    build: Builder
    floor: str
    quick_label: str
    quick_build: Builder
    dtypes: tuple[str, ...] = ("float64",)


@dataclass(frozen=True)
class Operation:
    """One public operation (see the module docstring)."""

    name: str
    method: str  # canonical method run by the public function
    value_method: str  # with ``return_value=True`` ("" if not offered)
    textbook: Callable[..., Any]  # NumPy formula on canonical float64 input
    score: Callable[[tuple[Any, ...], Call], Score]  # (args, call) -> Score
    example: Callable[[Array], tuple[Any, ...]]  # (..., n, n) batch -> args
    workloads: tuple[Workload, ...] = field(default=())
    #: 1 for gradients, 2 for second derivatives (Hessian-vector products,
    #: Hessians); the fuzzer and the size sweep cover first-order operations.
    order: int = 1


# ------------------------------------------------------------ host values
def _frobenius_value(X: Array) -> tuple[Array, ...]:
    from .kernels.values import frobenius_value

    return (frobenius_value(X),)


def _det_value(A: Array) -> tuple[Array, ...]:
    from .kernels.values import det_value

    return (det_value(A),)


def _slogdet_value(A: Array) -> tuple[Array, ...]:
    from .kernels.values import slogdet_value

    return slogdet_value(A)


_G = Part("G = ", "grad")

#: Canonical backend methods, in the order of :class:`matgrad.Backend`.
METHODS: dict[str, Method] = {m.name: m for m in (
    Method("frobenius_grad", ("X",),
           "``X (B, m, n)`` → ``X / ‖X‖_F`` per matrix, same shape and dtype."),
    Method("bilinear_grad", ("x", "y"),
           "``x (B, m)``, ``y (B, n)`` → ``x yᵀ`` of shape ``(B, m, n)``."),
    Method("det_grad", ("A",),
           "``A (B, n, n)``, ``n ≥ 1`` → cofactor matrices ``(B, n, n)``."),
    Method("logdet_grad", ("A",),
           "``A (B, n, n)``, ``n ≥ 1`` → ``A⁻ᵀ`` (``A⁻ᴴ`` if complex) ``(B, n, n)``."),
    Method("charpoly_deriv", ("A", "x"),
           "``A (B, n, n)``, ``n ≥ 1``, ``x (B, K)`` → ``(p, p′)``, each ``(B, K)``.\n\n"
           "``p(x) = det(xI − A)``.  ``A`` and ``x`` share one dtype.  A matrix is\n"
           "reduced at most once per call, never once per point.",
           (Part("p = ", "grad"), Part("p′ = ", "grad")), "the pair (p, p′)"),
    Method("frobenius_value_grad", ("X",),
           "``X (B, m, n)`` → ``(‖X‖_F (B,), X / ‖X‖_F (B, m, n))``.\n\n"
           "The norm has ``X``'s real dtype (float32 for complex64) and is the\n"
           "true value: inf or 0 only where ‖X‖_F itself over- or underflows.",
           (Part("‖X‖_F = ", "real"), _G), "the pair (‖X‖_F, G)",
           "frobenius_grad", _frobenius_value),
    Method("det_value_grad", ("A",),
           "``A (B, n, n)``, ``n ≥ 1`` → ``(det A (B,), cofactor (B, n, n))``.\n\n"
           "``det`` has ``A``'s dtype and is the true value to rounding: 0 where\n"
           "the factorisation meets an exactly zero pivot, inf or 0 only where\n"
           "the true value over- or underflows.",
           (Part("det = ", "value"), Part("C = ", "grad")), "the pair (det, C)",
           "det_grad", _det_value),
    Method("logdet_value_grad", ("A",),
           "``A (B, n, n)``, ``n ≥ 1`` → ``(sign (B,), log|det A| (B,), A⁻ᵀ)``.\n\n"
           "``sign`` has ``A``'s dtype (unit modulus for complex, 0 when ``A`` is\n"
           "singular), ``log|det A|`` its real dtype (−inf when singular); the\n"
           "gradient is as ``logdet_grad``.",
           (Part("sign = ", "value"), Part("logabsdet = ", "real"), _G),
           "the triple (sign, logabsdet, G)", "logdet_grad", _slogdet_value),
)}


def _charpoly_derivs_default(backend: Any, A: Any, x: Any, order: int) -> tuple[Any, ...]:
    """``charpoly_derivs`` of a backend that does not define it: ``p`` and
    ``p′`` from the backend's own ``charpoly_deriv`` (the very bits that
    ``charpoly`` and ``charpoly_deriv`` return on it), the orders from 2 on
    by the NumPy backend's recurrence on the host, returned in the backend's
    array type."""
    from .kernels.charpoly import charpoly_derivs

    p, dp = backend.charpoly_deriv(A, x)
    out = [p, dp][: order + 1]
    if order >= 2:
        host = charpoly_derivs(np.ascontiguousarray(backend.to_numpy(A)),
                               np.ascontiguousarray(backend.to_numpy(x)), order)
        out += [backend._native_like(h, p) for h in host[2:]]
    return tuple(out)


METHODS["charpoly_derivs"] = Method(
    "charpoly_derivs", ("A", "x", "order"),
    "``A (B, n, n)``, ``n ≥ 1``, ``x (B, K)``, an int ``order ≥ 2`` →\n"
    "``(p, p′, …, p⁽ᵒʳᵈᵉʳ⁾)``, ``order + 1`` arrays, each ``(B, K)``.\n\n"
    "``p(x) = det(xI − A)``.  ``p`` and ``p′`` must be the bits that\n"
    "``charpoly_deriv`` returns on the same input.  Optional: the default\n"
    "takes them from ``charpoly_deriv`` and the higher orders from the NumPy\n"
    "backend's recurrence on the host.",
    (Part("p^({}) = ", "grad"),), "the tuple (p, p′, …, p⁽ᵒʳᵈᵉʳ⁾)",
    count="order", default=_charpoly_derivs_default,
)


def method(name: str) -> Method:
    """The canonical method ``name`` (``KeyError`` names the known ones)."""
    try:
        return METHODS[name]
    except KeyError:
        raise KeyError(f"unknown canonical method {name!r}; known: {', '.join(METHODS)}") from None


# ------------------------------------------------------- textbook formulas
def _textbook_frobenius(X: Array) -> Any:
    return X / np.sqrt((X * X).sum(axis=(-2, -1), keepdims=True))


def _textbook_bilinear(x: Array, y: Array) -> Any:
    return x[..., :, None] * y[..., None, :]


def _textbook_det(A: Array) -> Any:
    return np.linalg.det(A)[..., None, None] * np.swapaxes(np.linalg.inv(A), -1, -2)


def _textbook_logdet(A: Array) -> Any:
    return np.swapaxes(np.linalg.inv(A), -1, -2)


def _textbook_charpoly_value(A: Array, x: Array) -> Any:
    return np.linalg.det(x[:, None, None] * np.eye(A.shape[-1]) - A)


def _textbook_charpoly(A: Array, x: Array) -> Any:
    M = x[:, None, None] * np.eye(A.shape[-1]) - A
    return np.linalg.det(M) * np.trace(np.linalg.inv(M), axis1=-2, axis2=-1)


# ------------------------------------------------------------- references
def _worst(scores: list[Score]) -> Score:
    from ._reference import Score

    rel = [s.rel for s in scores if s.rel == s.rel]
    return Score(max(s.ratio for s in scores), max(rel) if rel else float("nan"))


def _score_frobenius(args: tuple[Any, ...], call: Call) -> Score:
    from ._reference import frobenius_error_ratio

    (X,) = args
    got = np.asarray(call("frobenius_grad", X))
    return _worst([frobenius_error_ratio(got[i], X[i]) for i in np.ndindex(X.shape[:-2])])


def _score_bilinear(args: tuple[Any, ...], call: Call) -> Score:
    from ._reference import bilinear_error_ratio

    x, y = args
    return bilinear_error_ratio(np.asarray(call("bilinear_grad", x, y)), x, y)


def _score_det(args: tuple[Any, ...], call: Call) -> Score:
    from ._reference import det_grad_error_ratio

    (A,) = args
    return det_grad_error_ratio(np.asarray(call("det_grad", A)), A)


def _score_logdet(args: tuple[Any, ...], call: Call) -> Score:
    from ._reference import logdet_grad_error_ratio

    (A,) = args
    return logdet_grad_error_ratio(np.asarray(call("logdet_grad", A)), A)


def _score_charpoly_value(args: tuple[Any, ...], call: Call) -> Score:
    from ._reference import charpoly_error_ratio

    A, x = args
    p = np.asarray(call("charpoly", A, x))
    _, dp = call("charpoly_deriv", A, x, return_value=True)
    dp = np.asarray(dp)
    return _worst([charpoly_error_ratio(p[k], dp[k], A, x[k]) for k in range(len(x))])


def _score_charpoly(args: tuple[Any, ...], call: Call) -> Score:
    from ._reference import charpoly_error_ratio

    A, x = args
    p, dp = call("charpoly_deriv", A, x, return_value=True)
    p, dp = np.asarray(p), np.asarray(dp)
    return _worst([charpoly_error_ratio(p[k], dp[k], A, x[k]) for k in range(len(x))])


# -------------------------------------------------------------- workloads
def _mats(B: int, n: int) -> Builder:
    return lambda r: (r.standard_normal((B, n, n)),)


def _full(m: int, n: int) -> Builder:
    return lambda r: (r.standard_normal((m, n)),)


def _well(n: int) -> Builder:
    # well conditioned: I + G/(2√n)
    return lambda r: (np.eye(n) + r.standard_normal((n, n)) / (2 * np.sqrt(n)),)


def _vecs(B: int, m: int, n: int) -> Builder:
    if B == 1:
        return lambda r: (r.standard_normal(m), r.standard_normal(n))
    return lambda r: (r.standard_normal((B, m)), r.standard_normal((B, n)))


def _points(n: int, k: int) -> Builder:
    return lambda r: (_well(n)(r)[0], r.standard_normal(k))


#: Batched and bandwidth-bound workloads are timed in float32 too.
_BOTH = ("float64", "float32")


def _batched(label: str, B: int, n: int, quick_B: int) -> Workload:
    return Workload(label, _mats(B, n), "copy", f"{quick_B}x{n}x{n}", _mats(quick_B, n), _BOTH)


# ------------------------------------------------------------------ table
#: Every public operation, by public name.
OPERATIONS: dict[str, Operation] = {op.name: op for op in (
    Operation(
        "frobenius_grad", "frobenius_grad", "frobenius_value_grad",
        _textbook_frobenius, _score_frobenius, lambda A: (A,),
        (Workload("4096x4096", _full(4096, 4096), "copy", "1024x1024", _full(1024, 1024),
                  _BOTH),
         _batched("200000x8x8", 200_000, 8, 20_000)),
    ),
    Operation(
        "bilinear_grad", "bilinear_grad", "",
        _textbook_bilinear, _score_bilinear, lambda A: (A[..., 0], A[..., -1, :]),
        (Workload("4096x4096", _vecs(1, 4096, 4096), "fill",
                  "1024x1024", _vecs(1, 1024, 1024), _BOTH),
         Workload("200000x16x16", _vecs(200_000, 16, 16), "fill",
                  "20000x16x16", _vecs(20_000, 16, 16), _BOTH)),
    ),
    Operation(
        "det_grad", "det_grad", "det_value_grad",
        _textbook_det, _score_det, lambda A: (A,),
        (_batched("1000000x3x3", 1_000_000, 3, 100_000),
         _batched("200000x4x4", 200_000, 4, 20_000),
         _batched("20000x16x16", 20_000, 16, 2_000),
         Workload("1000x1000", _well(1000), "inv", "300x300", _well(300)),
         Workload("2000x2000", _well(2000), "inv", "500x500", _well(500))),
    ),
    Operation(
        "logdet_grad", "logdet_grad", "logdet_value_grad",
        _textbook_logdet, _score_logdet, lambda A: (A,),
        (_batched("1000000x3x3", 1_000_000, 3, 100_000),
         _batched("200000x4x4", 200_000, 4, 20_000),
         Workload("1000x1000", _well(1000), "inv", "300x300", _well(300))),
    ),
    Operation(
        "charpoly_deriv", "charpoly_deriv", "charpoly_deriv",
        _textbook_charpoly, _score_charpoly, lambda A: (A, 0.25),
        (Workload("200x200, 1000 pts", _points(200, 1000), "",
                  "100x100, 100 pts", _points(100, 100)),
         Workload("50x50, 10000 pts", _points(50, 10_000), "",
                  "50x50, 1000 pts", _points(50, 1000)),
         Workload("1000x1000, 1 pt", _points(1000, 1), "", "300x300, 1 pt", _points(300, 1))),
    ),
    Operation(
        "charpoly", "charpoly_deriv", "",
        _textbook_charpoly_value, _score_charpoly_value, lambda A: (A, 0.25),
    ),
)}


# ============================================================ second order
# Canonical methods that backends need not implement: matgrad.Backend's
# default runs the host algorithms of matgrad.kernels.hessian on the
# canonical input (converted to NumPy and back); a backend may override them.
def _host_det_hvp(A: Array, V: Array) -> Array:
    from .kernels.hessian import det_hvp

    return det_hvp(A, V)


def _host_det_hvp_value(A: Array, V: Array) -> tuple[Array, Array, Array]:
    from .kernels.hessian import det_hvp_value

    return det_hvp_value(A, V)


def _host_logdet_hvp(A: Array, V: Array) -> Array:
    from .kernels.hessian import logdet_hvp

    return logdet_hvp(A, V)


def _host_frobenius_hvp(X: Array, V: Array) -> Array:
    from .kernels.hessian import frobenius_hvp

    return frobenius_hvp(X, V)


def _host_det_hessian(A: Array) -> Array:
    from .kernels.hessian import det_hessian

    return det_hessian(A)


_H = Part("H = ", "grad")

METHODS.update({m.name: m for m in (
    Method("det_hvp", ("A", "V"),
           "``A, V (B, n, n)``, ``n ≥ 1``, one dtype → ``H = D cofactor(A)[V]`` ``(B, n, n)``.\n\n"
           "``H_ij = Σ_kl ∂²det/∂A_ij∂A_kl·V_kl``, the holomorphic derivative\n"
           "``d/dt cofactor(A + tV)`` at 0 for complex input.  Default: the host\n"
           "algorithm (:func:`matgrad.kernels.hessian.det_hvp`).",
           host=_host_det_hvp),
    Method("det_hvp_value", ("A", "V"),
           "``A, V (B, n, n)``, ``n ≥ 1`` → ``(det A (B,), cofactor (B, n, n), H (B, n, n))``.\n\n"
           "``det`` and the cofactor as ``det_value_grad`` returns them, ``H`` as\n"
           "``det_hvp``: what one Newton step on ``det`` needs, from one call.",
           (Part("det = ", "value"), Part("C = ", "grad"), _H), "the triple (det, C, H)",
           host=_host_det_hvp_value),
    Method("logdet_hvp", ("A", "V"),
           "``A, V (B, n, n)``, ``n ≥ 1`` → ``H = d/dt logdet_grad(A + tV)`` at 0,\n"
           "``(B, n, n)``.\n\n"
           "``−A⁻ᵀVᵀA⁻ᵀ`` (``−A⁻ᴴVᴴA⁻ᴴ`` for complex input, ``t`` real); a NaN slot\n"
           "where ``logdet_grad`` gives one.",
           host=_host_logdet_hvp),
    Method("frobenius_hvp", ("X", "V"),
           "``X, V (B, m, n)`` → ``H = (V − G·Re⟨G, V⟩)/‖X‖_F``, ``G = X/‖X‖_F``\n"
           "``(B, m, n)``; a NaN slot for ``X = 0`` (no Hessian there).",
           host=_host_frobenius_hvp),
    Method("det_hessian", ("A",),
           "``A (B, n, n)``, ``1 ≤ n ≤ 32`` → ``Hess (B, n, n, n, n)``,\n"
           "``Hess[b, i, j, k, l] = ∂²det(A_b)/∂A_ij∂A_kl``.",
           host=_host_det_hessian),
)})


def _textbook_det_hvp(A: Array, V: Array) -> Any:
    # invertible A only: det(A)·(tr(A⁻¹V)·A⁻¹ − A⁻¹VA⁻¹)ᵀ = tr(A⁻¹V)·C − C·Vᵀ·A⁻ᵀ
    Y = np.linalg.inv(A)
    t = np.einsum("...ij,...ji->...", Y, V)
    K = Y * t[..., None, None] - Y @ V @ Y
    return np.linalg.det(A)[..., None, None] * np.swapaxes(K, -1, -2)


def _textbook_logdet_hvp(A: Array, V: Array) -> Any:
    G = np.conj(np.swapaxes(np.linalg.inv(A), -1, -2))  # A⁻ᵀ, or A⁻ᴴ for complex A
    return -(G @ np.conj(np.swapaxes(V, -1, -2)) @ G)


def _textbook_frobenius_hvp(X: Array, V: Array) -> Any:
    norm = np.sqrt((np.abs(X) ** 2).sum(axis=(-2, -1), keepdims=True))
    G = X / norm
    inner = np.real(np.conj(G) * V).sum(axis=(-2, -1), keepdims=True)
    return (V - G * inner) / norm


def _textbook_det_hessian(A: Array) -> Any:
    # det(A)·(X_ij X_kl − X_il X_kj) with X = A⁻ᵀ
    X = np.swapaxes(np.linalg.inv(A), -1, -2)
    P = X[..., :, :, None, None] * X[..., None, None, :, :]
    return np.linalg.det(A)[..., None, None, None, None] * (P - np.swapaxes(P, -3, -1))


def _per_matrix(A: Array) -> list[tuple[int, ...]]:
    return list(np.ndindex(np.shape(A)[:-2]))


def _score_det_hvp(args: tuple[Any, ...], call: Call) -> Score:
    from ._reference import det_hvp_error_ratio, exact_det_hvp

    A, V = np.broadcast_arrays(*args)
    H = np.asarray(call("det_hvp", A, V))
    _, _, H2 = call("det_hvp", A, V, return_value=True)
    H2 = np.asarray(H2)
    scores = []
    for i in _per_matrix(A):
        exact = exact_det_hvp(A[i], V[i])
        scores += [det_hvp_error_ratio(H[i], A[i], V[i], exact=exact),
                   det_hvp_error_ratio(H2[i], A[i], V[i], exact=exact)]
    return _worst(scores)


def _score_logdet_hvp(args: tuple[Any, ...], call: Call) -> Score:
    from ._reference import logdet_hvp_error_ratio

    A, V = np.broadcast_arrays(*args)
    H = np.asarray(call("logdet_hvp", A, V))
    return _worst([logdet_hvp_error_ratio(H[i], A[i], V[i]) for i in _per_matrix(A)])


def _score_frobenius_hvp(args: tuple[Any, ...], call: Call) -> Score:
    from ._reference import frobenius_hvp_error_ratio

    X, V = np.broadcast_arrays(*args)
    H = np.asarray(call("frobenius_hvp", X, V))
    return _worst([frobenius_hvp_error_ratio(H[i], X[i], V[i]) for i in _per_matrix(X)])


def _score_det_hessian(args: tuple[Any, ...], call: Call) -> Score:
    from ._reference import det_hessian_error_ratio

    (A,) = args
    H = np.asarray(call("det_hessian", A))
    return _worst([det_hessian_error_ratio(H[i], A[i]) for i in _per_matrix(A)])


def _with_direction(A: Array) -> tuple[Any, ...]:
    """``(A, V)`` with the direction ``V = A`` with its rows reversed (a
    view: deterministic, of ``A``'s dtype and shape)."""
    return A, A[..., ::-1, :]


OPERATIONS.update({op.name: op for op in (
    Operation("det_hvp", "det_hvp", "det_hvp_value",
              _textbook_det_hvp, _score_det_hvp, _with_direction, order=2),
    Operation("logdet_hvp", "logdet_hvp", "",
              _textbook_logdet_hvp, _score_logdet_hvp, _with_direction, order=2),
    Operation("frobenius_hvp", "frobenius_hvp", "",
              _textbook_frobenius_hvp, _score_frobenius_hvp, _with_direction, order=2),
    Operation("det_hessian", "det_hessian", "",
              _textbook_det_hessian, _score_det_hessian, lambda A: (A,), order=2),
)})
