"""The one adapter between ``matgrad.torch`` / ``matgrad.jax`` and matgrad's
second-order host kernels (:mod:`matgrad.kernels.hessian`).

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

Every call of the frameworks goes through :func:`hvp`, so moving to public
functions that take ``backend=`` changes this function only.  Until then the
kernels run on the host in NumPy whatever the backend (the name is carried
and accepted, and reaches the kernels once they take it).
"""

from __future__ import annotations

import numpy as np

from .kernels import hessian as _kernels

#: name → the host kernel and whether ``A`` must be square
_KERNELS = {
    "det": _kernels.det_hvp,
    "logdet": _kernels.logdet_hvp,
    "frobenius": _kernels.frobenius_hvp,
}
#: Names whose ``H`` is complex-linear in ``V`` (holomorphic ``G``); the
#: others are real-valued functions, whose ``H`` is only real-linear.
HOLOMORPHIC = frozenset({"det"})


def hvp(name: str, backend: str, A: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``H = D G(A)[V]`` for ``G`` the gradient ``name`` names (see the module
    docstring); ``A`` (..., m, n) and ``V`` broadcast over the batch axes,
    promoted to one dtype; the result has the broadcast shape and that dtype.

    ``backend`` is the carried backend name (see the module docstring)."""
    del backend  # the host kernels take no backend yet
    kernel = _KERNELS[name]
    A, V = np.asarray(A), np.asarray(V)
    dt = np.result_type(A, V)
    shape = np.broadcast_shapes(A.shape, V.shape)
    core = shape[-2:]
    a = np.ascontiguousarray(np.broadcast_to(A.astype(dt, copy=False), shape)).reshape(-1, *core)
    v = np.ascontiguousarray(np.broadcast_to(V.astype(dt, copy=False), shape)).reshape(-1, *core)
    return kernel(a, v).reshape(shape)


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
