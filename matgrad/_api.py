"""Public functions: signatures and documentation, written once.

Each function validates and canonicalises its inputs through
:class:`matgrad._frontend.Call`, runs the selected backend's canonical
operation, and returns the result in the caller's array type.
"""

from __future__ import annotations

import math
from typing import Any, Literal, overload

from . import _fastpath
from ._frontend import _COMPUTE_CHUNKS, VALUE_OPS, Call, _unknown, broadcast_batch, flag, prod
from ._select import BackendLike

__all__ = [
    "bilinear_grad",
    "charpoly",
    "charpoly_deriv",
    "det_grad",
    "det_hessian",
    "det_hvp",
    "frobenius_grad",
    "frobenius_hvp",
    "logdet_grad",
    "logdet_hvp",
]

_BACKEND_DOC = """backend : str, sequence of str, Backend or BackendInfo, optional
        Backend name, comma-separated priority list, sequence of names,
        ``"auto"``, a :class:`matgrad.Backend` instance (from
        :func:`matgrad.load_backend`), or a :class:`matgrad.BackendInfo`
        record (its name).  Default: the active selection
        (:func:`matgrad.use_backend`, :func:`matgrad.set_backend`,
        ``$MATGRAD_BACKEND``, ``auto``).  A backend result of the wrong
        type, shape or dtype, or sharing memory with an input, raises
        :class:`matgrad.BackendResultError`."""


@overload
def frobenius_grad(
    X: Any, *, return_value: Literal[False] = ..., backend: BackendLike = ...
) -> Any: ...
@overload
def frobenius_grad(
    X: Any, *, return_value: Literal[True], backend: BackendLike = ...
) -> tuple[Any, Any]: ...
def frobenius_grad(X: Any, *, return_value: bool = False, backend: BackendLike = None) -> Any:
    """Gradient of the Frobenius norm, ``∇‖X‖_F = X / ‖X‖_F``.

    Parameters
    ----------
    X : array_like, shape (..., m, n)
        Matrices; leading axes are a batch, one norm per matrix.
    return_value : bool, default False
        Also return the norms: ``(‖X‖_F, G)``, from the same scaled pass.
    {backend}

    Returns
    -------
    G : array, shape (..., m, n)
        ``X / ‖X‖_F`` per matrix, in ``X``'s array type; dtype float32,
        float64, complex64 or complex128 (integers and bool give float64).
        With ``return_value=True``, the pair ``(norm, G)``: ``norm`` of shape
        ``(...)`` in the real dtype (float32 for complex64 input), the true
        value — inf or 0 only where ‖X‖_F itself over- or underflows.

    Notes
    -----
    ``‖X‖_F = sqrt(Σ |x_ij|²)``.  For complex ``X``, ``G`` is the gradient of
    a real-valued function, ``df = Re tr(Gᴴ dX)``: still ``X / ‖X‖_F``.

    No overflow or underflow anywhere in the finite range: the norm is formed
    with a power-of-two scale ``2ᵏ`` and ``G = (X·2⁻ᵏ) / ‖X·2⁻ᵏ‖``, so a 2×2
    of 1e308 gives 0.5 everywhere and entries of 1e-300 give ``X/‖X‖`` to a
    few ulp.  float32 sums of squares are accumulated in float64.  An
    all-zero matrix gives its zeros back (the minimum-norm subgradient), each
    keeping its sign, silently.  A matrix that holds a NaN or an infinite
    entry gives NaN in every entry of its result (both parts, for complex
    input), and only that matrix does.  Complex entries whose modulus
    exceeds the largest float (both parts finite) are ordinary input.

    Cost: two reads of ``X`` and one write (a third read for matrices that
    need the scaled path); O(batch) extra memory beyond the output.

    Examples
    --------
    >>> import numpy as np, matgrad
    >>> matgrad.frobenius_grad(np.array([[3.0, 0.0], [0.0, 4.0]]))
    array([[0.6, 0. ],
           [0. , 0.8]])
    """
    fast = _fast("frobenius_grad", X, return_value, backend)
    if fast is not None:
        return fast
    return_value = flag("frobenius_grad", "return_value", return_value)
    call = Call("frobenius_grad", backend, {"X": X})
    shape = call.matrix("X", square=False)
    m, n = shape[-2:]
    if call.orchestrator is not None:
        if return_value:
            return call.orchestrate("frobenius_grad", shape, return_value=True)
        return call.orchestrate("frobenius_grad", shape)
    B = prod(shape[:-2])
    if B * m * n == 0:
        G = call.empty_result(shape)
        return (call.empty_result(shape[:-2], real=True), G) if return_value else G
    Xc = call.canonical("X", shape, (B, m, n))
    if return_value:
        norm, G = call.run("frobenius_value_grad", (B, m, n), Xc)
        if backend is None:
            _fastpath.remember("frobenius_value_grad", X, Xc, call.ran, call.deferred,
                               call.dtype)
        return call.back(norm.reshape(shape[:-2])), call.back(G.reshape(shape))
    G = call.run("frobenius_grad", (B, m, n), Xc)
    if backend is None or type(backend) is str:
        _fastpath.remember("frobenius_grad", X, Xc, call.ran, call.deferred, call.dtype,
                           backend)
    return call.back(G.reshape(shape))


def bilinear_grad(x: Any, y: Any, *, backend: BackendLike = None) -> Any:
    """Gradient of the bilinear form ``f(A) = xᵀ A y``: ``∇f = x yᵀ``.

    Parameters
    ----------
    x : array_like, shape (..., m)
    y : array_like, shape (..., n)
        Vectors; their batch axes broadcast against each other.
    {backend}

    Returns
    -------
    G : array, shape (broadcast(...), m, n)
        ``G[..., i, j] = x[..., i] · y[..., j]``.

    Notes
    -----
    ``f`` is holomorphic, so for complex inputs ``G`` is its complex
    derivative ``x yᵀ`` with no conjugation.  One write of the output;
    nothing else is allocated.

    Examples
    --------
    >>> import numpy as np, matgrad
    >>> matgrad.bilinear_grad(np.array([1.0, 2.0]), np.array([3.0, 4.0, 5.0]))
    array([[ 3.,  4.,  5.],
           [ 6.,  8., 10.]])
    """
    call = Call("bilinear_grad", backend, {"x": x, "y": y})
    xs, ys = call.vector("x"), call.vector("y")
    m, n = xs[-1], ys[-1]
    batch = broadcast_batch("bilinear_grad", {"x": xs[:-1], "y": ys[:-1]})
    B = prod(batch)
    out_shape = (*batch, m, n)
    if call.orchestrator is not None:
        return call.orchestrate("bilinear_grad", out_shape)
    if B * m * n == 0:
        return call.empty_result(out_shape)
    xc = call.canonical("x", (*batch, m), (B, m))
    yc = call.canonical("y", (*batch, n), (B, n))
    return call.back(call.run("bilinear_grad", (B, m, n), xc, yc).reshape(out_shape))


@overload
def det_grad(
    A: Any, *, return_value: Literal[False] = ..., backend: BackendLike = ...
) -> Any: ...
@overload
def det_grad(
    A: Any, *, return_value: Literal[True], backend: BackendLike = ...
) -> tuple[Any, Any]: ...
def det_grad(A: Any, *, return_value: bool = False, backend: BackendLike = None) -> Any:
    """Gradient of the determinant: the cofactor matrix ``C = adj(A)ᵀ``.

    Parameters
    ----------
    A : array_like, shape (..., n, n)
        Square matrices; leading axes are a batch.
    return_value : bool, default False
        Also return the determinants: ``(det A, C)``.
    {backend}

    Returns
    -------
    C : array, shape (..., n, n)
        ``C_ij = ∂det(A)/∂A_ij = (−1)^(i+j) det(A without row i and column j)``.
        With ``return_value=True``, the pair ``(det, C)``: ``det`` of shape
        ``(...)`` in ``A``'s dtype, the true value (exactly 0 when ``A`` is
        exactly singular, inf only where ``det A`` truly overflows: it is
        assembled as a mantissa times a power of two from the equilibrated
        matrix).  The 0×0 determinant is 1.

    Notes
    -----
    ``C = det(A)·A⁻ᵀ`` when ``A`` is invertible, but ``C`` is a polynomial in
    the entries and is computed exactly for **singular** ``A`` too: rank
    ``n−1`` gives the nonzero rank-one cofactor, rank ``≤ n−2`` gives zeros,
    wherever the zero pivot falls.  Never a ``LinAlgError``, never NaN from a
    finite input; an entry overflows only if its true value does.  For
    complex ``A`` the result is the holomorphic derivative (no conjugation).
    A 0×0 matrix has determinant 1 and an empty cofactor; a 1×1 has ``[[1]]``.

    Algorithm: closed-form cofactors for ``n ≤ 3``, and for ``n = 4`` where
    an a-posteriori bound proves the closed form accurate; otherwise the
    matrix is equilibrated with powers of two (exact, decided per matrix),
    eliminated with partial pivoting (Gauss-Jordan for small ``n``, LAPACK
    LU for large ``n``), and ``C = det(Ã)·Ã⁻ᵀ`` is mapped back entry by
    entry; a matrix whose elimination shows a tiny pivot takes the SVD
    adjugate.  Backward stable on the equilibrated matrix ``Ã``: relative
    error ≲ ``c·n²·eps·σ₁/σₙ₋₁`` of ``Ã``, about 1e-13 for well-conditioned
    float64 input, and a row scaled by 1e306 leaves the cofactors that do
    not depend on it intact.  A matrix's result is bit-identical whatever
    batch it sits in.  See docs/numerics.md.
    Cost O(n³) per matrix.

    Examples
    --------
    >>> import numpy as np, matgrad
    >>> matgrad.det_grad(np.array([[1.0, 2.0], [2.0, 4.0]]))  # singular
    array([[ 4., -2.],
           [-2.,  1.]])
    """
    fast = _fast("det_grad", A, return_value, backend)
    if fast is not None:
        return fast
    return _square_op("det_grad", A, backend, return_value)


@overload
def logdet_grad(
    A: Any, *, return_value: Literal[False] = ..., backend: BackendLike = ...
) -> Any: ...
@overload
def logdet_grad(
    A: Any, *, return_value: Literal[True], backend: BackendLike = ...
) -> tuple[tuple[Any, Any], Any]: ...
def logdet_grad(A: Any, *, return_value: bool = False, backend: BackendLike = None) -> Any:
    """Gradient of ``log|det A|``: ``A⁻ᵀ`` (``A⁻ᴴ`` for complex ``A``).

    Parameters
    ----------
    A : array_like, shape (..., n, n)
    return_value : bool, default False
        Also return ``(sign, log|det A|)``, as :func:`numpy.linalg.slogdet`
        does: ``((sign, logabsdet), G)``.
    {backend}

    Returns
    -------
    G : array, shape (..., n, n)
        With ``return_value=True``, ``((sign, logabsdet), G)``: ``sign`` of
        shape ``(...)`` in ``A``'s dtype (±1, a unit complex number, or 0 for
        a singular matrix) and ``logabsdet`` in its real dtype (−inf for a
        singular matrix); ``det A = sign·exp(logabsdet)``, never over- or
        underflowing.

    Notes
    -----
    ``log|det A|`` is real-valued, so for complex ``A`` the gradient is
    ``A⁻ᴴ`` (``df = Re tr(Gᴴ dA)``).  An exactly singular matrix (an exact
    zero pivot) gives NaN in its own batch slot instead of raising for the
    whole batch as :func:`numpy.linalg.inv` does; a numerically singular one
    gives huge finite entries, as ``A⁻ᵀ`` is.  Which of the two an exactly
    singular matrix gives depends only on that matrix (its rounded
    elimination), never on its neighbours in the batch; a NaN or inf entry
    makes the whole slot NaN.  Equilibrated elimination with partial pivoting,
    O(n³) per matrix.

    Examples
    --------
    >>> import numpy as np, matgrad
    >>> matgrad.logdet_grad(np.array([[2.0, 0.0], [0.0, 4.0]]))
    array([[0.5 , 0.  ],
           [0.  , 0.25]])
    """
    fast = _fast("logdet_grad", A, return_value, backend)
    if fast is not None:
        return fast
    return _square_op("logdet_grad", A, backend, return_value)


def _fast(op: str, X: Any, return_value: object, backend: BackendLike) -> Any:
    """``op``'s result by the repeat-call short way (:mod:`matgrad._fastpath`),
    shaped as the public function returns it, or None: then the full way."""
    if backend is not None and type(backend) is not str:
        return None
    if return_value is False:
        return _fastpath.run(op, X, backend)
    if return_value is not True:
        return None  # the full way checks it
    parts = _fastpath.run_values(VALUE_OPS[op], X, backend)
    if parts is None or op != "logdet_grad":
        return parts
    return (parts[0], parts[1]), parts[2]


def _square_op(op: str, A: Any, backend: BackendLike, return_value: bool = False) -> Any:
    """Shared body of :func:`det_grad` and :func:`logdet_grad`: a batch of
    square matrices in, the same shape out (and with ``return_value``, one
    value per matrix: ``det``, or ``(sign, logabsdet)``)."""
    return_value = flag(op, "return_value", return_value)
    call = Call(op, backend, {"A": A})
    shape = call.matrix("A", square=True)
    if call.orchestrator is not None:
        if not return_value:
            return call.orchestrate(op, shape)
        out = call.orchestrate(op, shape, return_value=True)
        return ((out[0], out[1]), out[2]) if op == "logdet_grad" else out
    n = shape[-1]
    B = prod(shape[:-2])
    batch = shape[:-2]
    if B * n == 0:
        G = call.empty_result(shape)
        if not return_value:
            return G
        # an empty batch has no values; a 0×0 matrix has det 1, log|det| 0
        if op == "det_grad":
            return call.empty_result(batch, 1.0), G
        return (call.empty_result(batch, 1.0), call.empty_result(batch, 0.0, real=True)), G
    Ac = call.canonical("A", shape, (B, n, n))
    if not return_value:
        out = call.run(op, (B, n, n), Ac)
        if backend is None or type(backend) is str:
            _fastpath.remember(op, A, Ac, call.ran, call.deferred, call.dtype, backend)
        return call.back(out.reshape(shape))
    parts = call.run(VALUE_OPS[op], (B, n, n), Ac)
    if backend is None or type(backend) is str:
        _fastpath.remember(VALUE_OPS[op], A, Ac, call.ran, call.deferred, call.dtype, backend)
    *values, G = (call.back(r.reshape(batch if r.ndim == 1 else shape)) for r in parts)
    return (tuple(values), G) if op == "logdet_grad" else (values[0], G)


def _charpoly_call(func: str, A: Any, x: Any, backend: BackendLike,
                   order: int = 1) -> tuple[Any, ...]:
    """Shared body of :func:`charpoly` and :func:`charpoly_deriv`:
    ``(p, p′, …, p⁽ᵒʳᵈᵉʳ⁾)`` (``(p, p′)`` for order 0 and 1, which run the
    canonical ``charpoly_deriv``; higher orders run ``charpoly_derivs``).

    The output shape is ``broadcast(A.shape[:-2], shape(x))``.  Output axes
    along which ``A`` varies become the canonical batch axis ``B``; axes along
    which only ``x`` varies become the point axis ``K``, so each distinct
    matrix is reduced once for all of its points.
    """
    call = Call(func, backend, {"A": A, "x": x})
    ashape = call.matrix("A", square=True)
    n = ashape[-1]
    out = broadcast_batch(func, {"A[..., :, :]": ashape[:-2], "x": call.shape("x")})
    if call.orchestrator is not None:
        if order >= 2:
            return tuple(call.orchestrate("charpoly_derivs", out, order=order))
        p, dp = call.orchestrate("charpoly_deriv", out)
        return p, dp
    d = len(out)
    apad = (1,) * (d - len(ashape) + 2) + ashape[:-2]
    point_axes = [i for i in range(d) if apad[i] == 1 and out[i] != 1]
    matrix_axes = [i for i in range(d) if i not in point_axes]
    B = prod([out[i] for i in matrix_axes])
    K = prod([out[i] for i in point_axes])
    if B * K == 0 or n == 0:
        # det of a 0×0 is 1 whatever x: p = 1, p' = p'' = … = 0.
        return (call.empty_result(out, 1.0),
                *(call.empty_result(out, 0.0) for _ in range(max(order, 1))))
    perm = matrix_axes + point_axes
    Ac = call.canonical("A", (*apad, n, n), (B, n, n))
    xc = call.canonical("x", out, (B, K), perm=perm)
    # orders from n on are constants (p⁽ⁿ⁾ = n!, then 0): the backend computes
    # the orders below n only
    asked = min(order, n - 1) if order >= 2 else order
    if asked >= 2:
        parts = call.run("charpoly_derivs", (B, K), Ac, xc, asked)
    else:
        parts = call.run("charpoly_deriv", (B, K), Ac, xc)
    if order >= 2:
        parts = parts[: asked + 1]
    inverse = [perm.index(i) for i in range(d)]
    permuted = [out[i] for i in perm]

    def unflatten(r: Any) -> Any:
        # copy(): C order, and unlike ascontiguousarray it keeps 0-d results 0-d
        return call.back(r.reshape(permuted).transpose(inverse).copy())

    constants = [call.empty_result(out, _factorial(n, call.dtype) if m == n else 0.0)
                 for m in range(len(parts), order + 1)]
    return (*(unflatten(r) for r in parts), *constants)


def _factorial(n: int, dtype: Any) -> float:
    """``n!`` as a float, inf where it overflows ``dtype`` (n ≥ 171 in
    float64, n ≥ 35 in float32)."""
    import numpy as np

    try:
        value = float(math.factorial(n))
    except OverflowError:
        return math.inf
    return value if value <= float(np.finfo(dtype).max) else math.inf


#: The largest ``order`` :func:`charpoly_deriv` takes: every order beyond
#: ``n`` is 0, and each order asked costs a pass of the recurrence and, with
#: ``return_value``, an array.
MAX_ORDER = 4096


def _order(func: str, order: object) -> int:
    """A derivative order: a Python or NumPy integer (never a bool, a float
    or an array), ``0 ≤ order ≤ MAX_ORDER``."""
    import numpy as np

    if isinstance(order, (bool, np.bool_)) or not isinstance(order, (int, np.integer)):
        raise TypeError(f"{func}: order must be an int (0, 1, 2, …), got {order!r}")
    k = int(order)
    if k < 0:
        raise ValueError(f"{func}: order must be >= 0 (0 gives p itself), got {k}")
    if k > MAX_ORDER:
        raise ValueError(
            f"{func}: order {k} is above the supported maximum {MAX_ORDER} (every "
            "derivative of order above n, the matrix size, is 0)"
        )
    return k


@overload
def charpoly_deriv(
    A: Any, x: Any, *, order: int = ..., return_value: Literal[False] = ...,
    backend: BackendLike = ...
) -> Any: ...
@overload
def charpoly_deriv(
    A: Any, x: Any, *, order: int = ..., return_value: Literal[True],
    backend: BackendLike = ...
) -> tuple[Any, ...]: ...
def charpoly_deriv(
    A: Any, x: Any, *, order: int = 1, return_value: bool = False,
    backend: BackendLike = None
) -> Any:
    """Derivative of the characteristic polynomial ``p(x) = det(xI − A)``.

    Parameters
    ----------
    A : array_like, shape (..., n, n)
        Square matrices.
    x : scalar or array_like
        Points, real or complex.  The result has shape
        ``broadcast(A.shape[:-2], shape(x))`` (NumPy rules, trailing axes
        align).  For K points on each of B matrices pass ``A`` of shape
        ``(B, 1, n, n)`` and ``x`` of shape ``(B, K)``.
    order : int, default 1
        Which derivative: ``p⁽ᵒʳᵈᵉʳ⁾(x)``.  0 gives p itself (the bits of
        :func:`charpoly`), 2 gives ``p″``; orders ≥ n are the constants
        ``p⁽ⁿ⁾ = n!`` and 0.  An int (Python or NumPy), ``0 ≤ order ≤ 4096``;
        a bool, float or array is a ``TypeError``, a negative or larger
        order a ``ValueError``.
    return_value : bool, default False
        Also return the lower orders: ``(p, p′, …, p⁽ᵒʳᵈᵉʳ⁾)`` from the same
        reduction (``(p, p′)`` for the default order 1, what a Newton step
        ``x − p/p′`` needs; ``(p,)`` for order 0), each bit-identical to its
        separate call.
    {backend}

    Returns
    -------
    dp : array
        ``p′(x) = tr(adj(xI − A))`` (``= det(xI − A)·tr((xI − A)⁻¹)`` where
        that exists); for ``order=k``, ``p⁽ᵏ⁾(x)`` (``p″ = det(M)·(tr(M⁻¹)² −
        tr(M⁻²))`` with ``M = xI − A``, where that exists).  With
        ``return_value=True``, the tuple ``(p, dp, …)`` of ``order + 1`` arrays.

    Notes
    -----
    Exact at and next to eigenvalues, where ``det·tr(inv)`` gives NaN/inf
    (``A = diag(1, 2, 3)`` at ``x = 2`` gives −1).  Algorithm: each distinct
    matrix is balanced (an exact power-of-two similarity with LAPACK
    ``gebal``'s permutation and scaling, so ``D A D⁻¹`` for a power-of-two
    diagonal ``D`` gives the same p) and reduced to Hessenberg form once
    (O(n³)), then Hyman's recurrence and its derivative run per point
    (O(n²)), split at negligible subdiagonal entries and scaled by powers of
    two so that only a truly overflowing value becomes inf and only a truly
    underflowing one 0 (with the sign of the true value).  Backward stable:
    the exact ``p, p′`` of a matrix within ``c·n·eps·‖B‖`` of the balanced
    ``B``.  For complex data ``p′`` is the complex derivative (holomorphic,
    no conjugation).  At ``x = ±inf``: ``p = (±inf)ⁿ``, ``p′ = n·(±inf)ⁿ⁻¹``
    (the leading term's sign; n = 1: ``p′ = 1``); a complex point with one
    infinite part, ``u·inf`` with ``u`` in {±1, ±1j}, gives ``uⁿ·inf`` and
    ``n·uⁿ⁻¹·inf``.  A 0×0 matrix gives ``p = 1, p′ = 0``.

    Higher orders differentiate the recurrence k times (Taylor coefficients
    ``v⁽ᵐ⁾/m!``, each order with exponents of its own): O(k·n²) per point
    after the one reduction, exact at eigenvalues (simple or multiple),
    backward stable in the same sense; ``p⁽ᵐ⁾(±inf)`` is the limit of
    ``n!/(n−m)!·xⁿ⁻ᵐ`` for m < n.  See docs/numerics.md §4.

    Examples
    --------
    >>> import numpy as np, matgrad
    >>> A = np.diag([1.0, 2.0, 3.0])
    >>> matgrad.charpoly_deriv(A, 2.0)
    array(-1.)
    >>> x = 2.7
    >>> for _ in range(30):  # Newton's method on p
    ...     p, dp = matgrad.charpoly_deriv(A, x, return_value=True)
    ...     x = x - p / dp
    >>> round(float(x), 12)
    3.0
    >>> matgrad.charpoly_deriv(A, 2.0, order=2, return_value=True)  # p″ = 6x − 12
    (array(0.), array(-1.), array(0.))
    """
    return_value = flag("charpoly_deriv", "return_value", return_value)
    order = _order("charpoly_deriv", order)
    parts = _charpoly_call("charpoly_deriv", A, x, backend, order)
    if return_value:
        return parts[: order + 1]
    return parts[order]


def charpoly(A: Any, x: Any, *, backend: BackendLike = None) -> Any:
    """The characteristic polynomial ``p(x) = det(xI − A)`` at points ``x``.

    Parameters
    ----------
    A : array_like, shape (..., n, n)
    x : scalar or array_like
        Result shape ``broadcast(A.shape[:-2], shape(x))``.
    {backend}

    Returns
    -------
    p : array

    Notes
    -----
    Same algorithm and accuracy as :func:`charpoly_deriv` (balancing and
    Hessenberg reduction once per matrix + Hyman's recurrence per point),
    exact at eigenvalues (``p = 0``); ``p(±inf) = (±inf)ⁿ``.

    Examples
    --------
    >>> import numpy as np, matgrad
    >>> matgrad.charpoly(np.diag([1.0, 2.0]), np.array([0.0, 3.0]))
    array([2., 2.])
    """
    return _charpoly_call("charpoly", A, x, backend)[0]



# ------------------------------------------------------------ second order
def _direction_op(op: str, names: tuple[str, str], A: Any, V: Any, backend: BackendLike,
                  *, square: bool, return_value: bool = False) -> Any:
    """Shared body of the Hessian-vector products: a batch of matrices and a
    batch of directions of the same matrix shape, their batch axes broadcast
    against each other; the result has the broadcast shape (and with
    ``return_value``, :func:`det_hvp`'s ``(det, C, H)``)."""
    a, v = names
    call = Call(op, backend, {a: A, v: V})
    ashape = call.matrix(a, square=square)
    vshape = call.matrix(v, square=square)
    if any(_unknown(d) for d in (*ashape[-2:], *vshape[-2:])):
        raise ValueError(f"{op}: {a} of shape {ashape} and {v} of shape {vshape} have matrix "
                         f"axes of unknown size (nan); {_COMPUTE_CHUNKS}")
    if vshape[-2:] != ashape[-2:]:
        m, n = ashape[-2:]
        raise ValueError(f"{op}: {v} must have the matrix shape of {a}, (..., {m}, {n}); got "
                         f"{v} of shape {vshape} for {a} of shape {ashape}")
    batch = broadcast_batch(op, {f"{a}[..., :, :]": ashape[:-2],
                                 f"{v}[..., :, :]": vshape[:-2]})
    shape = (*batch, *ashape[-2:])
    if call.orchestrator is not None:
        if return_value:
            return call.orchestrate(op, shape, return_value=True)
        return call.orchestrate(op, shape)
    B = prod(batch)
    flat = (B, *ashape[-2:])
    if prod(flat) == 0:
        H = call.empty_result(shape)
        # the 0×0 determinant is 1, its cofactor empty
        return (call.empty_result(batch, 1.0), call.empty_result(shape), H) if return_value \
            else H
    Ac = call.canonical(a, shape, flat)
    Vc = call.canonical(v, shape, flat)
    if return_value:
        d, C, H = call.run(VALUE_OPS[op], flat, Ac, Vc)
        return (call.back(d.reshape(batch)), call.back(C.reshape(shape)),
                call.back(H.reshape(shape)))
    return call.back(call.run(op, flat, Ac, Vc).reshape(shape))


@overload
def det_hvp(
    A: Any, V: Any, *, return_value: Literal[False] = ..., backend: BackendLike = ...
) -> Any: ...
@overload
def det_hvp(
    A: Any, V: Any, *, return_value: Literal[True], backend: BackendLike = ...
) -> tuple[Any, Any, Any]: ...
def det_hvp(A: Any, V: Any, *, return_value: bool = False, backend: BackendLike = None) -> Any:
    """Hessian-vector product of the determinant: ``H = D cofactor(A)[V]``.

    Parameters
    ----------
    A : array_like, shape (..., n, n)
        Square matrices; leading axes are a batch.
    V : array_like, shape (..., n, n)
        Directions, of ``A``'s matrix shape; the batch axes of ``A`` and
        ``V`` broadcast against each other.
    return_value : bool, default False
        Also return the determinant and the cofactor matrix:
        ``(det A, C, H)``, what one Newton step on ``det`` needs.
    {backend}

    Returns
    -------
    H : array, shape (broadcast(...), n, n)
        ``H_ij = Σ_kl ∂²det(A)/∂A_ij∂A_kl·V_kl``, the derivative of
        :func:`det_grad` along ``V``: ``d/dt cofactor(A + tV)`` at 0.
        With ``return_value=True``, the triple ``(det, C, H)``: ``det`` of
        shape ``broadcast(...)`` and ``C`` exactly as
        ``det_grad(A, return_value=True)`` returns them (on the NumPy
        backend bit for bit).

    Notes
    -----
    ``∂²det/∂A_ij∂A_kl`` is 0 for ``i = k`` or ``j = l`` and otherwise the
    determinant of ``A`` with row ``i`` replaced by ``e_jᵀ`` and row ``k`` by
    ``e_lᵀ`` (a signed ``(n−2)``-minor).  For invertible ``A``,
    ``H = tr(A⁻¹V)·C − C·Vᵀ·A⁻ᵀ``, but ``H`` is a polynomial in the entries
    and is computed for **singular** ``A`` too: rank ``n−1`` and ``n−2``
    give their nonzero ``H``, rank ``≤ n−3`` gives zeros.  The determinant
    is holomorphic, so for complex input ``H`` is the complex derivative
    (no conjugation).  Result dtype: as :func:`det_grad`'s, of ``A`` and
    ``V`` promoted together.

    Algorithm and accuracy (docs/numerics.md): ``n ≤ 3`` by the
    polynomial (``n = 2``: ``H = cofactor(V)``; ``n = 3``: cross products of
    rows), exact at every rank, with an equilibrated redo where its
    products overflow.  ``n ≥ 4`` in the power-of-two equilibrated frame
    of :func:`det_grad`, each matrix taking the first of three tiers that
    an a-posteriori error test accepts: the formula above from one
    elimination, the SVD form (right at every rank), or row by row through
    :func:`det_grad` (graded matrices).  Where ``H`` is finite, normwise
    never worse than the textbook formula in the same precision; ``2^±300``
    row or column scalings change nothing but the exponents.  In a slot
    whose true ``H`` overflows somewhere, those entries may come back NaN
    (not promised).  A non-finite ``A`` gives a NaN slot (``n ≥ 4``); each
    slot is computed on its own, bit-identical whatever batch it is in.
    Cost O(n³) per matrix (the rows tier: n cofactor matrices).

    Examples
    --------
    >>> import numpy as np, matgrad
    >>> A = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])  # singular
    >>> matgrad.det_hvp(A, np.eye(3))
    array([[14., -4., -7.],
           [-2., 10., -8.],
           [-3., -6.,  6.]])
    >>> d, C, H = matgrad.det_hvp(np.eye(2), np.ones((2, 2)), return_value=True)
    >>> float(d), H
    (1.0, array([[ 1., -1.],
           [-1.,  1.]]))
    """
    return_value = flag("det_hvp", "return_value", return_value)
    return _direction_op("det_hvp", ("A", "V"), A, V, backend, square=True,
                         return_value=return_value)


def logdet_hvp(A: Any, V: Any, *, backend: BackendLike = None) -> Any:
    """Hessian-vector product of ``log|det A|``: ``H = D(A⁻ᵀ)[V] = −A⁻ᵀVᵀA⁻ᵀ``.

    Parameters
    ----------
    A : array_like, shape (..., n, n)
    V : array_like, shape (..., n, n)
        Directions; batch axes broadcast against ``A``'s.
    {backend}

    Returns
    -------
    H : array, shape (broadcast(...), n, n)
        ``d/dt logdet_grad(A + tV)`` at ``t = 0``.

    Notes
    -----
    For real ``A``: ``−A⁻ᵀVᵀA⁻ᵀ``.  For complex ``A``, :func:`logdet_grad`
    returns ``G = A⁻ᴴ`` (the gradient of a real-valued function), and ``H``
    is its derivative along the real direction ``t``:
    ``−conj(A⁻ᵀVᵀA⁻ᵀ) = −G·Vᴴ·G``, so that
    ``Re tr(Wᴴ H)`` is the second derivative of ``log|det|`` along
    ``(V, W)``.  ``G`` is :func:`logdet_grad`'s, with its accuracy and its NaN
    slots (exactly singular as its elimination sees it, or non-finite
    input); the product is formed on power-of-two equilibrated factors, so
    only an entry whose true value over- or underflows does.  ``G``'s
    accuracy is normwise: on strongly graded matrices whose ``H`` partly
    overflows, the finite entries can be worse than the textbook formula's
    (docs/numerics.md §8).  Cost O(n³).

    Examples
    --------
    >>> import numpy as np, matgrad
    >>> matgrad.logdet_hvp(np.diag([2.0, 4.0]), np.ones((2, 2)))
    array([[-0.25  , -0.125 ],
           [-0.125 , -0.0625]])
    """
    return _direction_op("logdet_hvp", ("A", "V"), A, V, backend, square=True)


def frobenius_hvp(X: Any, V: Any, *, backend: BackendLike = None) -> Any:
    """Hessian-vector product of the Frobenius norm: ``(V − G·⟨G, V⟩)/‖X‖_F``.

    Parameters
    ----------
    X : array_like, shape (..., m, n)
    V : array_like, shape (..., m, n)
        Directions, of ``X``'s matrix shape; batch axes broadcast.
    {backend}

    Returns
    -------
    H : array, shape (broadcast(...), m, n)
        ``d/dt frobenius_grad(X + tV)`` at ``t = 0``, with ``G = X/‖X‖_F``
        and ``⟨G, V⟩ = Re Σ conj(g_ij)·v_ij`` (for complex ``X`` the
        derivative along a real ``t``).

    Notes
    -----
    Computed on ``X·2^-kx`` and ``V·2^-kv`` (powers of two of the largest
    entries) and scaled back once, never forming ``‖X‖``: no overflow or
    underflow at 1e±200 or anywhere in the finite range, only where the
    true entry does.  Rounding error ≈ ``(2 + log₂ mn)·eps·‖V‖/‖X‖``
    normwise.  At ``X = 0`` the norm has **no Hessian** (along ``tV`` it is
    ``|t|·‖V‖``, and ``H`` grows like ``1/‖X‖``): that matrix's slot is NaN,
    silently, and only it; a NaN or inf in ``X`` gives a NaN slot too, a
    non-finite ``V`` propagates.  Cost: a few passes over ``X`` and ``V``.

    Examples
    --------
    >>> import numpy as np, matgrad
    >>> matgrad.frobenius_hvp(np.array([[3.0, 4.0]]), np.array([[4.0, -3.0]]))
    array([[ 0.8, -0.6]])
    """
    return _direction_op("frobenius_hvp", ("X", "V"), X, V, backend, square=False)


def det_hessian(A: Any, *, backend: BackendLike = None) -> Any:
    """The Hessian of the determinant, ``∂²det(A)/∂A_ij∂A_kl``.

    Parameters
    ----------
    A : array_like, shape (..., n, n)
        Square matrices, ``n ≤ 32`` (the Hessian has ``n⁴`` entries per
        matrix: 1 048 576 at ``n = 32``; use :func:`det_hvp` beyond).
    {backend}

    Returns
    -------
    Hess : array, shape (..., n, n, n, n)
        ``Hess[..., i, j, k, l] = ∂²det/∂A_ij∂A_kl``: 0 where ``i = k`` or
        ``j = l``, else the determinant of ``A`` with row ``i`` replaced by
        ``e_jᵀ`` and row ``k`` by ``e_lᵀ``; ``Hess[..., :, :, k, l]`` is
        ``det_hvp(A, E_kl)``.  Those zeros and the symmetry
        ``(i, j) ↔ (k, l)`` hold bit for bit.

    Raises
    ------
    ValueError
        For ``n > 32``.

    Notes
    -----
    ``n ≤ 2``: constants; ``n = 3``: entries of ``A`` with signs (exact).
    ``n ≥ 4``: one equilibrated factorisation per matrix and the tiers of
    :func:`det_hvp` (invertible-matrix formula, SVD form, minors through
    :func:`det_grad`), each accepted by an a-posteriori test over the whole
    tensor; exact zeros at numerical rank ``≤ n−3``.  Holomorphic: no
    conjugation for complex input.  Cost O(n⁴) per matrix (O(n⁵) where the
    SVD form is taken).

    Examples
    --------
    >>> import numpy as np, matgrad
    >>> H = matgrad.det_hessian(np.eye(3))
    >>> H.shape, float(H[0, 0, 1, 1]), float(H[0, 1, 1, 0]), float(H[0, 0, 0, 1])
    ((3, 3, 3, 3), 1.0, -1.0, 0.0)
    """
    from .kernels.hessian import MAX_HESSIAN_N

    call = Call("det_hessian", backend, {"A": A})
    shape = call.matrix("A", square=True)
    n = shape[-1]
    if n > MAX_HESSIAN_N:
        raise ValueError(
            f"det_hessian: A has shape {shape}: n = {n} exceeds {MAX_HESSIAN_N} (the Hessian "
            f"has n⁴ = {n ** 4} entries per matrix); use det_hvp for Hessian-vector products")
    out = (*shape, n, n)
    if call.orchestrator is not None:
        return call.orchestrate("det_hessian", out)
    B = prod(shape[:-2])
    if B * n == 0:
        return call.empty_result(out)
    Ac = call.canonical("A", shape, (B, n, n))
    return call.back(call.run("det_hessian", (B, n, n, n, n), Ac).reshape(out))


for _f in (frobenius_grad, bilinear_grad, det_grad, logdet_grad, charpoly_deriv, charpoly,
           det_hvp, logdet_hvp, frobenius_hvp, det_hessian):
    _f.__doc__ = (_f.__doc__ or "").replace("{backend}", _BACKEND_DOC)
