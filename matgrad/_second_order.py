"""The one adapter between ``matgrad.torch`` / ``matgrad.jax`` and matgrad's
second-order functions (:func:`matgrad.det_hvp`, :func:`matgrad.logdet_hvp`,
:func:`matgrad.frobenius_hvp`).

Both frameworks express every second derivative through
``H = D G(A)[V]``, the derivative of a first-order gradient ``G`` along a
direction ``V`` (same shape as ``A``, batch axes broadcast against ``A``'s):

* ``"det"``: ``G = cofactor(A)``, ``H = det_hvp(A, V)``, holomorphic for
  complex ``A`` (no conjugation), exact at every rank;
* ``"logdet"``: ``G = A⁻ᵀ`` (``A⁻ᴴ`` for complex ``A``, matgrad's
  ``logdet_grad``), ``H = −G·Vᵀ·G`` (``−G·Vᴴ·G``), the derivative along the
  real direction ``V``; NaN where ``A`` is singular;
* ``"frobenius"``: ``G = X/‖X‖_F``, ``H = (V − G·⟨G, V⟩)/‖X‖_F`` with
  ``⟨G, V⟩ = Re Σ conj(g)·v``; a NaN slot at ``X = 0``, where the norm has no
  Hessian.

Every call of the frameworks goes through :func:`hvp`, on the backend the
forward resolved (carried by name, as for the first derivatives), so a
second derivative runs where the first one ran (the Numba backend's
kernels, for example).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import _api

#: name → the public function
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "det": _api.det_hvp,
    "logdet": _api.logdet_hvp,
    "frobenius": _api.frobenius_hvp,
}
#: Names whose ``H`` is complex-linear in ``V`` (holomorphic ``G``); the
#: others are real-valued functions, whose ``H`` is only real-linear.
HOLOMORPHIC = frozenset({"det"})


def hvp(name: str, backend: str, A: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``H = D G(A)[V]`` for ``G`` the gradient ``name`` names (see the module
    docstring); ``A`` (..., m, n) and ``V`` broadcast over the batch axes,
    promoted to one dtype; the result has the broadcast shape and that dtype.

    ``backend``: the backend name the forward resolved."""
    out: np.ndarray = np.asarray(_FUNCTIONS[name](A, V, backend=backend))
    return out


def adjoint_hvp(name: str, backend: str, A: np.ndarray, W: np.ndarray, *,
                transpose: bool) -> np.ndarray:
    """The adjoint of ``V ↦ hvp(name, A, V)`` applied to ``W``.

    Every ``H`` here is a symmetric bilinear form's map (a Hessian), so its
    adjoints are ``hvp`` itself up to conjugation:

    * ``transpose=False``, PyTorch's vector-Jacobian product (the adjoint
      for ``Re Σ conj(w)·h``): ``conj(hvp(conj W))`` for ``det``
      (holomorphic: ``Mᴴ = conj(M)`` for the symmetric matrix ``M``), ``hvp(W)``
      for the real-valued functions (self-adjoint in the real inner product);
    * ``transpose=True``, JAX's transpose (the adjoint for ``Σ w·h``, no
      conjugation): ``hvp(W)`` for ``det`` (``Mᵀ = M``), ``conj(hvp(conj W))``
      for the real-valued functions.
    """
    conj = (name in HOLOMORPHIC) != transpose
    if not conj or (not np.iscomplexobj(W) and not np.iscomplexobj(A)):
        return hvp(name, backend, A, W)
    out: np.ndarray = np.conj(hvp(name, backend, A, np.conj(W)))
    return out
