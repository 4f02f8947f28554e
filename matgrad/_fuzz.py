"""Adversarial testing: hostile-matrix strategies and differential checks.

Shared by ``matgrad check --fuzz`` and the test suite (tests/test_adversarial.py),
so a user who fuzzes a backend and CI hold it to the same properties.  Needs
`hypothesis <https://hypothesis.readthedocs.io>`_ (``pip install
'matgrad[testing]'``); ``import matgrad`` never imports this module.

A *scenario* is one drawn input plus the property to check on it.  For
``det_grad``, ``logdet_grad`` and ``charpoly_deriv`` every property that
compares with a reference holds the result to the contract of
:mod:`matgrad.testing._graded` (docs/numerics.md §1, §3, §4) against the
exact reference of the very input that was computed, so a reported failure
is confirmed, and a right result is never reported.  For ``det_grad`` and
``logdet_grad``: (a) the normwise error ``‖G − G*‖_F`` at most
``128·max(ε_std, n·eps)·‖G*‖_F``, ``ε_std`` the textbook LAPACK formula's
normwise relative error on the same input; (b) a row scaling ``D₁A``
(n ≠ 4) bit for bit, other power-of-two scalings under (a) against their
own exact reference; (c) 0, ±inf, NaN only where the exact value
underflows, overflows, or where documented; (d) exactly singular
``det_grad`` within the equilibrated backward-stability bound.
``charpoly_deriv``: each value within 16 times the textbook formula's
error or the backward-stability allowance, and (c).

``reference``
    hostile inputs (n ≤ 12) against exact references (fraction-free
    integer elimination over the inputs' dyadic values, then 60 digits).
``known``
    large structured matrices (n up to 65, across every path threshold)
    whose answer is known in closed form: all-ones, rank one, tiled,
    permutation, diagonal, Jordan blocks.
``scaling``
    ``frobenius_grad``, ``bilinear_grad``: ``2ᵏ`` times the inputs scales the
    result bit for bit.  ``det_grad``, ``logdet_grad``: ``D₁AD₂`` for
    power-of-two ``2ᵏI``, row, column and two-sided scalings, against the
    exact reference of ``D₁AD₂`` itself; a row scaling (``2ᵏI`` included)
    of a matrix with n ≠ 4 also bit for bit against the unscaled result.
    ``charpoly_deriv``: ``(2ᵏA, 2ᵏx)`` and diagonal similarities ``DAD⁻¹``,
    within the bound of ``A``.
``graded``
    ``D₁RD₂`` of a well-conditioned ``R`` and graded triangular, bidiagonal
    and tridiagonal matrices, exponents up to the range's limits (true
    values may over- or underflow: rule (c)); for ``charpoly_deriv`` also
    diagonal similarities of random matrices and companion and shift
    matrices up to n = 500 (closed-form references).
``batch``
    a batch holding hostile slots (NaN, inf, 1e308, subnormals, exactly
    singular, 1e10·I, 1e300 everywhere) among clean ones: every slot's
    result is bit-identical (NaN-aware, sign of zero included) to that slot
    computed alone, and in a permuted batch; for Dask also across chunkings.
``agreement``
    large graded matrices: the backend against the ``numpy`` backend; a
    disagreement is settled by the 60-digit reference, and whichever result
    breaks the contract is reported.

Every backend call runs with ``RuntimeWarning`` raised as an error: the
operations promise no warnings.  A failed property raises :class:`Mismatch`,
whose :meth:`~Mismatch.reproducer` is a copy-pasteable script.
"""

from __future__ import annotations

import hashlib
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException

from . import _api
from . import _reference as ref
from ._backend import Backend
from ._operations import OPERATIONS
from .testing import _graded as gr

__all__ = [
    "CHECKS",
    "DTYPES",
    "EXACT_SIZES",
    "LARGE_SIZES",
    "OPS",
    "FuzzResult",
    "Mismatch",
    "Scenario",
    "backend_label",
    "fuzz",
    "hostile_matrices",
    "run_scenario",
    "same_bits",
    "scenarios",
    "wild_reals",
]

Array = np.ndarray
BackendArg = str | Backend

#: Operations fuzzed: the first-order ones the table runs through a
#: canonical method of their own name (``charpoly`` is the first half of
#: ``charpoly_deriv``).
OPS = tuple(name for name, op in OPERATIONS.items() if op.method == name and op.order == 1)
DTYPES: tuple[type[np.generic], ...] = (np.float64, np.float32, np.complex128, np.complex64)
#: Sizes with exact references: every small-size path (closed forms up to 4,
#: the vectorised general path above).
EXACT_SIZES = (1, 2, 3, 4, 5, 8, 12)
#: Sizes straddling the large-matrix path thresholds (LAPACK from 48, ...).
LARGE_SIZES = (47, 48, 49, 63, 64, 65)
CHECKS = ("reference", "known", "scaling", "graded", "batch", "agreement")
#: ulps by which power-of-two scaling may miss bit-exactness, per operation
#: (bit-exact scaling is checked for frobenius_grad and bilinear_grad only).
SCALING_ULPS: dict[str, float] = {}

#: Structured kinds of hostile matrices (``hostile_matrices``).
KINDS = (
    "wild", "wild_diagonal", "triangular", "rank1", "tiled", "all_equal", "duplicate_rows",
    "duplicate_cols", "zero_first_col", "jordan", "permutation", "scaled_row",
    "scaled_rows_cols", "subnormal", "huge", "dyadic", "huge_complex",
)
#: Hostile slots for batches.
SLOTS = ("nan", "signalling_nan", "inf", "-inf", "1e308", "subnormal", "singular", "1e10*I",
         "full_1e300", "zero", "hostile")


# =============================================================== failures
def backend_label(backend: BackendArg) -> str:
    return backend if isinstance(backend, str) else backend.name


class Mismatch(AssertionError):
    """A property failed: what was called on what, expected vs got."""

    def __init__(self, *, check: str, op: str, backend: BackendArg, inputs: dict[str, Array],
                 call: str, expected: str, got: str, setup: str = "") -> None:
        self.check, self.op, self.backend = check, op, backend_label(backend)
        self.inputs, self.call, self.expected, self.got = inputs, call, expected, got
        self.setup = setup
        #: the backend whose run found it (an agreement check may find the
        #: ``numpy`` backend wrong while fuzzing another); set by :func:`fuzz`
        self.found_on: str | None = None
        super().__init__(self.summary())

    def summary(self) -> str:
        shapes = ", ".join(f"{k}: {v.dtype}{list(v.shape)}" for k, v in self.inputs.items())
        return (f"[{self.check}] {self.op} on backend {self.backend!r} ({shapes})\n"
                f"  expected: {self.expected}\n  got:      {self.got}")

    def reproducer(self) -> str:
        """A self-contained script (inputs round-trip bit for bit)."""
        lines = ["import numpy as np", "import matgrad", ""]
        if self.setup:
            lines += [self.setup, ""]
        lines += [f"{k} = {array_literal(v)}" for k, v in self.inputs.items()]
        lines += [f"got = {self.call}", f"# expected: {self.expected}",
                  f"# got:      {self.got}"]
        return "\n".join(lines)

    def __str__(self) -> str:
        return f"{self.summary()}\nreproducer:\n{self.reproducer()}"


def _scalar_literal(v: float) -> str:
    if math.isnan(v):
        return "-np.nan" if math.copysign(1.0, v) < 0 else "np.nan"
    if math.isinf(v):
        return "np.inf" if v > 0 else "-np.inf"
    return repr(float(v))


def array_literal(a: Array) -> str:
    """``np.array(..., dtype=...)`` that evaluates to ``a`` bit for bit (repr
    of a float64 round-trips; float32 values are exact float64s), or an
    ``np.frombuffer`` of the raw bytes where NaN payloads need it."""
    a = np.asarray(a)
    dt = f"np.{a.dtype.name}"
    compact = _compact_literal(a, dt)
    if compact is not None:
        return compact

    def lit(x: Any) -> str:
        if isinstance(x, list):
            return "[" + ", ".join(lit(v) for v in x) + "]"
        if isinstance(x, complex):
            return f"complex({_scalar_literal(x.real)}, {_scalar_literal(x.imag)})"
        return _scalar_literal(float(x))

    text = f"np.array({lit(a.tolist())}, dtype={dt})"
    if a.ndim == 0:
        text = f"{dt}({lit(a.item())})"
    try:
        back = eval(text, {"np": np})  # our own literal
        ok = bool(np.asarray(back).tobytes() == a.tobytes())
    except Exception:  # noqa: BLE001 - fall back to raw bytes
        ok = False
    if ok:
        return text
    little = a.astype(a.dtype.newbyteorder("<"))
    shape = repr(tuple(a.shape))
    return (f"np.frombuffer(bytes.fromhex({little.tobytes().hex()!r}), "
            f"dtype=np.dtype({little.dtype.str!r})).reshape({shape}).copy()")


def _compact_literal(a: Array, dt: str) -> str | None:
    """Short exact forms for big structured arrays (constant, diagonal)."""
    if a.size <= 64 or a.dtype.kind not in "fc":
        return None
    flat = a.ravel()
    if flat.tobytes() == np.full_like(flat, flat[0]).tobytes():
        v = flat[0].item()
        lit = (f"complex({_scalar_literal(v.real)}, {_scalar_literal(v.imag)})"
               if isinstance(v, complex) else _scalar_literal(float(v)))
        return f"np.full({a.shape!r}, {lit}, dtype={dt})"
    if a.ndim == 2 and a.shape[0] == a.shape[1]:
        d = np.diag(a)
        if np.diag(d).astype(a.dtype).tobytes() == a.tobytes():
            return f"np.diag({array_literal(d)})"
        nz = np.nonzero(a)
        if len(nz[0]) <= 2 * a.shape[0] and not np.isnan(a).any():
            out = np.zeros_like(a)
            out[nz] = a[nz]
            if out.tobytes() == a.tobytes():
                rows, cols = nz[0].tolist(), nz[1].tolist()
                vals = array_literal(a[nz])
                return (f"(lambda z: (z.__setitem__(({rows}, {cols}), {vals}), z)[1])"
                        f"(np.zeros({a.shape!r}, dtype={dt}))")
    return None


# =============================================================== scalars
def _real_dtype(dtype: Any) -> np.dtype[Any]:
    return np.dtype(np.float32 if np.dtype(dtype) in (np.float32, np.complex64) else np.float64)


def wild_reals(dtype: Any, min_exp: int | None = None,
               max_exp: int | None = None) -> st.SearchStrategy[float]:
    """``±m·2ᵉ``, ``m`` a random mantissa in [1, 2) with the format's
    precision, ``e`` anywhere in the format's range (float64: −1074…1023, so
    subnormals too); built with ``np.ldexp``, exact."""
    rd = _real_dtype(dtype)
    fi = np.finfo(rd)
    nmant = int(fi.nmant)
    lo = int(fi.minexp) - nmant if min_exp is None else min_exp
    hi = int(fi.maxexp) - 1 if max_exp is None else max_exp

    def build(t: tuple[int, int, bool]) -> float:
        mant, e, neg = t
        m = rd.type((1 << nmant) + mant) / rd.type(1 << nmant)
        with np.errstate(all="ignore"):
            v = float(np.ldexp(m, e).astype(rd))
        return -v if neg else v

    return st.tuples(st.integers(0, (1 << nmant) - 1), st.integers(lo, hi),
                     st.booleans()).map(build)


def _elements(dtype: Any, wild: bool = True) -> st.SearchStrategy[Any]:
    """Zeros (both signs), small integers, small dyadics and wild values."""
    parts: list[st.SearchStrategy[float]] = [
        st.sampled_from([0.0, -0.0, 1.0, -1.0]),
        st.integers(-8, 8).map(float),
        st.integers(-64, 64).map(lambda k: k / 16),
    ]
    if wild:
        parts.append(wild_reals(dtype))
    real = st.one_of(*parts)
    if np.dtype(dtype).kind != "c":
        return real
    return st.builds(complex, real, real)


def _huge_complex(dtype: Any) -> st.SearchStrategy[complex]:
    """Finite real and imaginary parts whose modulus exceeds the format's max."""
    top = float(np.finfo(_real_dtype(dtype)).max)
    part = st.integers(0, 2**20).map(lambda k: top * (0.75 + 0.25 * k / 2**20))
    return st.builds(lambda a, b, s, t: complex(a if s else -a, b if t else -b),
                     part, part, st.booleans(), st.booleans())


def _as(values: Any, dtype: Any, shape: tuple[int, ...]) -> Array:
    with np.errstate(all="ignore"):
        out: Array = np.asarray(values, dtype=np.complex128 if np.dtype(dtype).kind == "c"
                                else np.float64).reshape(shape).astype(dtype)
    return out


# =============================================================== matrices
@dataclass(frozen=True)
class Hostile:
    kind: str
    A: Array

    def __repr__(self) -> str:
        return f"Hostile({self.kind!r}, A={array_literal(self.A)})"


def _dyadic_matrix(draw: st.DrawFn, n: int, dtype: Any, m: int | None = None) -> Array:
    m = n if m is None else m
    re = draw(st.lists(st.integers(-16, 16), min_size=n * m, max_size=n * m))
    vals: Any = np.asarray(re, dtype=np.float64) / 4
    if np.dtype(dtype).kind == "c":
        im = draw(st.lists(st.integers(-16, 16), min_size=n * m, max_size=n * m))
        vals = vals + 1j * (np.asarray(im, dtype=np.float64) / 4)
    return _as(vals, dtype, (n, m))


def _exp_limits(dtype: Any) -> tuple[int, int]:
    fi = np.finfo(_real_dtype(dtype))
    return int(fi.minexp), int(fi.maxexp) - 1


def _wild_square(draw: st.DrawFn, n: int, dtype: Any) -> Array:
    """Kind ``wild``: every entry a zero, small dyadic or wild value."""
    return _as(draw(st.lists(_elements(dtype), min_size=n * n, max_size=n * n)), dtype, (n, n))


def _wild_diagonal(draw: st.DrawFn, n: int, dtype: Any) -> Array:
    """Kind ``wild_diagonal``: a diagonal matrix of wild values."""
    d = draw(st.lists(_elements(dtype), min_size=n, max_size=n))
    return _as(np.diag(np.asarray(d)), dtype, (n, n))


def _triangular(draw: st.DrawFn, n: int, dtype: Any) -> Array:
    """Kind ``triangular``: upper or lower, of tame or wild values."""
    B = _as(draw(st.lists(_elements(dtype, wild=draw(st.booleans())),
                          min_size=n * n, max_size=n * n)), dtype, (n, n))
    out: Array = np.triu(B) if draw(st.booleans()) else np.tril(B)
    return out


def _rank_one(draw: st.DrawFn, n: int, dtype: Any) -> Array:
    """Kind ``rank1``: an outer product of small integer (or dyadic) vectors,
    every product exact."""
    ints = st.integers(-4, 4)
    u = np.asarray(draw(st.lists(ints, min_size=n, max_size=n)), dtype=np.float64)
    v = np.asarray(draw(st.lists(ints, min_size=n, max_size=n)), dtype=np.float64)
    if draw(st.booleans()):  # dyadic: exact products still
        u = np.ldexp(u, draw(st.integers(-40, 40)))
        v = np.ldexp(v, draw(st.integers(-40, 40)))
    return _as(np.outer(u * (1 + 1j) if np.dtype(dtype).kind == "c" else u, v), dtype, (n, n))


def _tiled(draw: st.DrawFn, n: int, dtype: Any) -> Array:
    """Kind ``tiled``: a 1×1 to 3×3 dyadic block repeated."""
    b = draw(st.integers(1, 3))
    block = _dyadic_matrix(draw, b, dtype)
    return np.ascontiguousarray(np.tile(block, (-(-n // b), -(-n // b)))[:n, :n])


def _all_equal(draw: st.DrawFn, n: int, dtype: Any) -> Array:
    """Kind ``all_equal``: one value everywhere."""
    return _as(np.full((n, n), draw(_elements(dtype))), dtype, (n, n))


def _duplicate_line(draw: st.DrawFn, n: int, dtype: Any, rows: bool) -> Array:
    """Kinds ``duplicate_rows`` and ``duplicate_cols``: a dyadic or wild
    matrix with one row (column) copied onto another."""
    A = _dyadic_matrix(draw, n, dtype)
    if draw(st.booleans()):
        A = _wild_square(draw, n, dtype)
    if n >= 2:
        i, j = draw(st.permutations(range(n)))[:2]
        if rows:
            A[i] = A[j]
        else:
            A[:, i] = A[:, j]
    return A


def _duplicate_rows(draw: st.DrawFn, n: int, dtype: Any) -> Array:
    """Kind ``duplicate_rows`` (see :func:`_duplicate_line`)."""
    return _duplicate_line(draw, n, dtype, rows=True)


def _duplicate_cols(draw: st.DrawFn, n: int, dtype: Any) -> Array:
    """Kind ``duplicate_cols`` (see :func:`_duplicate_line`)."""
    return _duplicate_line(draw, n, dtype, rows=False)


def _zero_first_col(draw: st.DrawFn, n: int, dtype: Any) -> Array:
    """Kind ``zero_first_col``: a dyadic matrix whose first column is zero."""
    A = _dyadic_matrix(draw, n, dtype)
    A[:, 0] = 0
    return A


def _jordan(draw: st.DrawFn, n: int, dtype: Any) -> Array:
    """Kind ``jordan``: one Jordan block ``λI + N``."""
    lam = draw(st.sampled_from([0.0, 1.0, -1.0, 2.0, -2.0, 0.5, 4.0]))
    return _as(lam * np.eye(n) + np.eye(n, k=1), dtype, (n, n))


def _permutation(draw: st.DrawFn, n: int, dtype: Any) -> Array:
    """Kind ``permutation``: a permutation matrix."""
    return _as(np.eye(n)[draw(st.permutations(range(n)))], dtype, (n, n))


def _dyadic_plus_4i(draw: st.DrawFn, n: int, dtype: Any) -> Array:
    """A dyadic matrix plus ``4·I``: the base the scaled kinds scale."""
    out: Array = _dyadic_matrix(draw, n, dtype) + _as(4 * np.eye(n), dtype, (n, n))
    return out


def _scaled_row(draw: st.DrawFn, n: int, dtype: Any) -> Array:
    """Kind ``scaled_row``: one row or column scaled by a power of two far
    into the exponent range."""
    emin, emax = _exp_limits(dtype)
    A = _dyadic_plus_4i(draw, n, dtype)
    i = draw(st.integers(0, n - 1))
    k = draw(st.integers(emin + 20, emax - 4))
    with np.errstate(all="ignore"):
        if draw(st.booleans()):
            A[i] = _ldexp(A[i], k)
        else:
            A[:, i] = _ldexp(A[:, i], k)
    return A


def _scaled_rows_cols(draw: st.DrawFn, n: int, dtype: Any) -> Array:
    """Kind ``scaled_rows_cols``: ``D₁AD₂`` with powers of two spanning half
    the exponent range."""
    emin, emax = _exp_limits(dtype)
    A = _dyadic_plus_4i(draw, n, dtype)
    half = (emax - emin) // 4
    r = np.asarray(draw(st.lists(st.integers(-half, half), min_size=n, max_size=n)))
    c = np.asarray(draw(st.lists(st.integers(-half, half), min_size=n, max_size=n)))
    return _ldexp(A, r[:, None] + c[None, :])


def _subnormal(draw: st.DrawFn, n: int, dtype: Any) -> Array:
    """Kind ``subnormal``: every nonzero entry subnormal."""
    emin = _exp_limits(dtype)[0]
    A = _dyadic_plus_4i(draw, n, dtype)
    nmant = int(np.finfo(_real_dtype(dtype)).nmant)
    return _ldexp(A, draw(st.integers(emin - nmant + 4, emin - 1)))


def _huge(draw: st.DrawFn, n: int, dtype: Any) -> Array:
    """Kind ``huge``: entries within 2⁶⁰ of the largest finite value."""
    emax = _exp_limits(dtype)[1]
    A = _dyadic_plus_4i(draw, n, dtype)
    return _ldexp(A, draw(st.integers(emax - 60, emax - 5)))


def _huge_complex_entries(draw: st.DrawFn, n: int, dtype: Any) -> Array:
    """Kind ``huge_complex``: some entries of finite parts but a modulus
    above the format's largest value."""
    A = _dyadic_matrix(draw, n, dtype)
    mask = draw(st.lists(st.booleans(), min_size=n * n, max_size=n * n))
    for idx in np.flatnonzero(mask):
        A.flat[idx] = draw(_huge_complex(dtype))
    return A


def _dyadic_square(draw: st.DrawFn, n: int, dtype: Any) -> Array:
    """Kind ``dyadic`` (and any kind without a builder of its own)."""
    return _dyadic_matrix(draw, n, dtype)


#: How each kind of hostile matrix is drawn (``KINDS``; "dyadic" the default).
_HOSTILE_BUILDERS: dict[str, Callable[[st.DrawFn, int, Any], Array]] = {
    "wild": _wild_square, "wild_diagonal": _wild_diagonal, "triangular": _triangular,
    "rank1": _rank_one, "tiled": _tiled, "all_equal": _all_equal,
    "duplicate_rows": _duplicate_rows, "duplicate_cols": _duplicate_cols,
    "zero_first_col": _zero_first_col, "jordan": _jordan, "permutation": _permutation,
    "scaled_row": _scaled_row, "scaled_rows_cols": _scaled_rows_cols,
    "subnormal": _subnormal, "huge": _huge, "huge_complex": _huge_complex_entries,
    "dyadic": _dyadic_square,
}


@st.composite
def hostile_matrices(draw: st.DrawFn, n: int | None = None, dtype: Any = None,
                     kinds: Sequence[str] = KINDS,
                     sizes: Sequence[int] = EXACT_SIZES) -> Hostile:
    """A square matrix built to break things (see ``KINDS``)."""
    if n is None:
        n = draw(st.sampled_from(sizes))
    if dtype is None:
        dtype = draw(st.sampled_from(DTYPES))
    cplx = np.dtype(dtype).kind == "c"
    usable = [k for k in kinds if cplx or k != "huge_complex"] or ["dyadic"]
    kind = draw(st.sampled_from(usable))
    A = _HOSTILE_BUILDERS.get(kind, _dyadic_square)(draw, n, dtype)
    return Hostile(kind, np.ascontiguousarray(A, dtype=dtype))


def _ldexp(x: Array, e: Any) -> Array:
    """``x·2ᵉ`` in ``x``'s dtype, complex-aware (rounds only where the result
    is subnormal or overflows)."""
    with np.errstate(all="ignore"):
        if np.iscomplexobj(x):
            out = np.empty(np.broadcast_shapes(x.shape, np.shape(e)), dtype=x.dtype)
            out.real = np.ldexp(x.real, e)
            out.imag = np.ldexp(x.imag, e)
            return out
        res: Array = np.ldexp(x, e).astype(x.dtype)
        return res


def _points(draw: st.DrawFn, A: Array, k: int | None = None) -> Array:
    """Points for ``charpoly``: diagonal entries (eigenvalues of triangular
    matrices), zero, small dyadics and wild values; in ``A``'s dtype."""
    diag = [complex(v) if np.iscomplexobj(A) else float(v) for v in np.diag(A)]
    opts: list[st.SearchStrategy[Any]] = [st.sampled_from([0.0, 1.0, -1.0, 0.5]),
                                          _elements(A.dtype)]
    if diag:
        opts.append(st.sampled_from(diag))
    count = k if k is not None else draw(st.integers(1, 3))
    vals = draw(st.lists(st.one_of(*opts), min_size=count, max_size=count))
    return _as(vals, A.dtype, (count,))


# =============================================================== scenarios
@dataclass(frozen=True)
class Scenario:
    """One drawn input and the property to check on it."""

    check: str
    op: str
    kind: str
    inputs: dict[str, Array]
    params: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        ins = ", ".join(f"{k}={array_literal(v)}" for k, v in self.inputs.items())
        return f"Scenario({self.check!r}, {self.op!r}, kind={self.kind!r}, {ins}, {self.params})"


def _single_inputs(draw: st.DrawFn, op: str, sizes: Sequence[int],
                   dtype: Any = None, kinds: Sequence[str] = KINDS) -> tuple[str, dict[str, Array]]:
    if dtype is None:
        dtype = draw(st.sampled_from(DTYPES))
    if op == "bilinear_grad":
        m, n = draw(st.integers(1, 12)), draw(st.integers(1, 12))
        el = _elements(dtype)
        x = _as(draw(st.lists(el, min_size=m, max_size=m)), dtype, (m,))
        y = _as(draw(st.lists(el, min_size=n, max_size=n)), dtype, (n,))
        return "vectors", {"x": x, "y": y}
    if op == "frobenius_grad" and draw(st.booleans()):
        m, n = draw(st.integers(1, 12)), draw(st.integers(1, 12))
        X = _as(draw(st.lists(_elements(dtype), min_size=m * n, max_size=m * n)), dtype, (m, n))
        return "wild_rectangular", {"X": X}
    h = draw(hostile_matrices(dtype=dtype, sizes=sizes, kinds=kinds))
    if op == "frobenius_grad":
        return h.kind, {"X": h.A}
    if op == "charpoly_deriv":
        return h.kind, {"A": h.A, "x": _points(draw, h.A, draw(st.integers(1, 2)))}
    return h.kind, {"A": h.A}


def _reference_scenarios(op: str, sizes: Sequence[int]) -> st.SearchStrategy[Scenario]:
    @st.composite
    def build(draw: st.DrawFn) -> Scenario:
        kind, inputs = _single_inputs(draw, op, sizes)
        return Scenario("reference", op, kind, inputs)

    return build()


def _known_scenarios(op: str, sizes: Sequence[int]) -> st.SearchStrategy[Scenario]:
    kinds = {"det_grad": ("ones", "rank1", "tiled", "permutation", "diagonal", "jordan"),
             "logdet_grad": ("permutation", "diagonal", "jordan"),
             "charpoly_deriv": ("ones", "permutation", "diagonal")}.get(op, ())

    @st.composite
    def build(draw: st.DrawFn) -> Scenario:
        n = draw(st.sampled_from(sizes))
        dtype = draw(st.sampled_from(DTYPES))
        kind = draw(st.sampled_from(kinds))
        params: dict[str, Any] = {}
        if kind == "ones":
            A = np.ones((n, n))
            params["rank"] = 1
        elif kind == "rank1":
            u = np.asarray(draw(st.lists(st.integers(-4, 4).filter(bool), min_size=n,
                                         max_size=n)), dtype=float)
            v = np.asarray(draw(st.lists(st.integers(-4, 4).filter(bool), min_size=n,
                                         max_size=n)), dtype=float)
            A = np.outer(u, v)
            params["rank"] = 1
        elif kind == "tiled":
            b = 2
            block = np.array([[1.0, 2.0], [3.0, 4.0]]) if draw(st.booleans()) else \
                np.asarray(draw(st.lists(st.integers(-3, 3), min_size=b * b, max_size=b * b)),
                           dtype=float).reshape(b, b)
            A = np.ascontiguousarray(np.tile(block, (-(-n // b), -(-n // b)))[:n, :n])
            params["rank"] = int(np.linalg.matrix_rank(block))
        elif kind == "permutation":
            perm = draw(st.permutations(range(n)))
            A = np.eye(n)[perm]
            params["perm"] = list(perm)
        elif kind == "diagonal":
            lo, hi = _exp_limits(dtype)
            span = draw(st.sampled_from([4, 60, (hi - lo) // 3]))
            d = np.asarray(draw(st.lists(st.integers(1, 7), min_size=n, max_size=n)), float)
            e = np.asarray(draw(st.lists(st.integers(-span, span), min_size=n, max_size=n)))
            if op != "logdet_grad" and draw(st.booleans()):
                d[draw(st.integers(0, n - 1))] = 0.0
            A = np.diag(np.ldexp(d, e) * np.where(np.arange(n) % 3 == 1, -1, 1))
        else:  # jordan
            lam = draw(st.sampled_from([2.0, -2.0, 4.0, 1.0] + ([0.0] if op == "det_grad"
                                                                 else [])))
            A = lam * np.eye(n) + np.eye(n, k=1)
            params["lam"] = lam
        A = A.astype(dtype)
        inputs: dict[str, Array] = {"A": A}
        if op == "charpoly_deriv":
            inputs["x"] = _points(draw, A, draw(st.integers(1, 3)))
            if kind == "ones" and draw(st.booleans()):
                inputs["x"] = _as([0.0, float(n)], dtype, (2,))
        return Scenario("known", op, kind, inputs, params)

    return build()


def _scaling_scenarios(op: str, sizes: Sequence[int]) -> st.SearchStrategy[Scenario]:
    """Inputs for the ``scaling`` property and how to scale them: ``mode``
    ``scalar`` (``2ᵏ``), ``rows`` (``D₁A``), ``cols`` (``AD₂``), ``both``
    (``D₁AD₂``) for ``det_grad``/``logdet_grad``; ``scalar`` and
    ``similarity`` (``DAD⁻¹``) for ``charpoly_deriv``; ``scalar`` for the
    others.  The exponents come from ``seed`` (see :func:`_check_scaling`)."""
    exact_only = op in ("det_grad", "logdet_grad", "charpoly_deriv")
    usable = [s for s in sizes if s <= 12] if exact_only else list(sizes)

    @st.composite
    def build(draw: st.DrawFn) -> Scenario:
        kind, inputs = _single_inputs(
            draw, op, usable, kinds=[k for k in KINDS if k not in ("huge", "subnormal")])
        modes = {"det_grad": ["scalar", "rows", "cols", "both"],
                 "logdet_grad": ["scalar", "rows", "cols", "both"],
                 "charpoly_deriv": ["scalar", "similarity"]}.get(op, ["scalar"])
        mode = draw(st.sampled_from(modes))
        seed = draw(st.integers(0, 2**32 - 1))
        return Scenario("scaling", op, kind, inputs, {"mode": mode, "seed": seed})

    return build()


# ---------------------------------------------------------------- graded
#: Kinds of the ``graded`` property, per operation.
GRADED_KINDS: dict[str, tuple[str, ...]] = {
    "det_grad": ("d1rd2", "triangular", "bidiagonal", "tridiagonal"),
    "logdet_grad": ("d1rd2", "triangular", "bidiagonal", "tridiagonal"),
    "charpoly_deriv": ("similarity", "triangular", "bidiagonal", "tridiagonal", "companion",
                       "shift"),
}
#: Sizes of graded matrices with exact elimination references.
GRADED_SIZES = (2, 3, 4, 5, 6, 8, 12)
#: Sizes of the charpoly kinds with closed-form references (triangular,
#: tridiagonal: up to 64; companion and shift: up to 500, drawn rarely).
STRUCTURED_SIZES = (2, 3, 5, 8, 12, 16, 33, 64)
COMPANION_SIZES = (2, 3, 5, 8, 16, 33, 64, 65, 110, 128, 200, 500)


def _fit_exponents(e: Array, lo: int, hi: int) -> Array:
    """Integer exponents ``e`` (any shape) halved until their spread fits
    ``[lo, hi]``, then shifted into it (keeps the grading, loses no bits)."""
    e = np.asarray(e, dtype=np.int64)
    while e.size and int(e.max()) - int(e.min()) > hi - lo:
        e = e // 2
    if e.size:
        e = e + max(lo - int(e.min()), 0) - max(int(e.max()) - hi, 0)
    return e


def _spread(draw: st.DrawFn, dtype: Any) -> int:
    """How far the grading reaches: a little, far, or to the range's limits."""
    lo, hi = _exp_limits(dtype)
    return int(draw(st.sampled_from([4, 60, 300, (hi - lo) // 2, hi - lo])))


def _graded_matrix(draw: st.DrawFn, kind: str, n: int, dtype: Any) -> Array:
    """``det_grad``/``logdet_grad`` kinds: ``D₁RD₂`` of a well-conditioned
    ``R`` (normal entries plus ``2√n·I``); triangular, bidiagonal and
    tridiagonal matrices with O(1) off-diagonal entries and a graded
    diagonal, half of them two-sided scaled on top.  The exponents reach
    up to the range's limits, halved until every entry stays normal and
    finite (the true cofactors may still over- or underflow: then rule (c)
    is what holds)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    lo, hi = _exp_limits(dtype)
    cplx = np.dtype(dtype).kind == "c"
    s = _spread(draw, dtype)

    def normal(shape: tuple[int, ...]) -> Array:
        out: Array = rng.standard_normal(shape)
        return out + 1j * rng.standard_normal(shape) if cplx else out

    zeros = np.zeros(n, dtype=np.int64)
    if kind == "d1rd2":
        B = normal((n, n)) + 2 * np.sqrt(n) * np.eye(n)
        d = zeros
    else:
        B = np.diag(rng.uniform(0.5, 1, n) * rng.choice([-1, 1], n))
        B = B.astype(np.complex128) if cplx else B
        if kind == "triangular":
            off = np.triu(normal((n, n)), 1)
            B = B + (off if draw(st.booleans()) else off.T)
        elif n > 1:
            band = np.diag(normal((n - 1,)), 1)
            B = B + (band if draw(st.booleans()) else band.T)
            if kind == "tridiagonal":
                B = B + np.diag(normal((n - 1,)), 1 if B[1, 0] else -1)
        d = rng.integers(-s, s + 1, n)
    two_sided = kind == "d1rd2" or draw(st.booleans())
    r = rng.integers(-s, s + 1, n) if two_sided else zeros
    c = rng.integers(-s, s + 1, n) if two_sided else zeros
    nz = B != 0
    while True:  # entry exponents r_i + c_j (+ d_i on the diagonal) within the range
        E = np.add.outer(r, c) + np.diag(d)
        if int(E[nz].max()) - int(E[nz].min()) <= hi - lo - 40:
            break
        r, c, d = r // 2, c // 2, d // 2
    shift = max(lo + 24 - int(E[nz].min()), 0) - max(int(E[nz].max()) - (hi - 12), 0)
    return _ldexp(_as(B, dtype, (n, n)), E + shift)


def _poly_coefficients(draw: st.DrawFn, n: int, dtype: Any) -> list[float]:
    """Coefficients ``a_0 … a_{n−1}`` of a monic degree-``n`` polynomial:
    ``xⁿ − a``, sparse small integers, or such a polynomial with its roots
    scaled by a power of two (exact coefficients)."""
    form = draw(st.sampled_from(["x^n - a", "sparse", "scaled"]))
    a = [0.0] * n
    if form == "x^n - a":
        a[0] = -float(draw(st.sampled_from([1.0, -1.0, 2.0, 0.5, 3.0])))
        return a
    for k in range(n):
        if draw(st.integers(0, 9)) >= 7 or k == 0:
            a[k] = float(draw(st.integers(-4, 4)))
    if form == "scaled":  # q(x/2^t)·2^(tn): a_k → a_k·2^(t(n−k))
        reach = max(1, (_exp_limits(dtype)[1] - 8) // n)
        t = draw(st.integers(-reach, reach))
        a = [float(np.ldexp(v, t * (n - k))) for k, v in enumerate(a)]
    return a


def _graded_points(draw: st.DrawFn, A: Array, extra: Sequence[float] = ()) -> Array:
    """1–3 points: 0, ±1, 1e-3, 0.5, 2, diagonal entries, ``extra``."""
    opts: list[complex | float] = [0.0, 1.0, -1.0, 1e-3, 0.5, -0.75, 2.0, 1 + 2.0**-20, *extra]
    opts += [complex(v) if np.iscomplexobj(A) else float(np.real(v)) for v in np.diag(A)[:8]]
    k = draw(st.integers(1, 3))
    return _as(draw(st.lists(st.sampled_from(opts), min_size=k, max_size=k)), A.dtype, (k,))


def _graded_charpoly(draw: st.DrawFn, kind: str, dtype: Any) -> tuple[dict[str, Array],
                                                                     dict[str, Any]]:
    """``charpoly_deriv`` kinds: inputs and the reference's parameters."""
    lo, hi = _exp_limits(dtype)
    if kind in ("companion", "shift"):
        n = draw(st.sampled_from(COMPANION_SIZES))
        if kind == "shift":
            A = _as(np.eye(n, k=-1 if draw(st.booleans()) else 1), dtype, (n, n))
        else:
            A = _as(gr.companion(_poly_coefficients(draw, n, dtype)), dtype, (n, n))
        return {"A": A, "x": _graded_points(draw, A)}, {}
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    cplx = np.dtype(dtype).kind == "c"
    if kind == "similarity":
        n = draw(st.sampled_from(GRADED_SIZES))
        A0 = rng.standard_normal((n, n)) + (1j * rng.standard_normal((n, n)) if cplx else 0)
        A0 = _as(A0, dtype, (n, n))
        d = _fit_exponents(rng.integers(-_spread(draw, dtype), _spread(draw, dtype) + 1, n),
                           (lo + 16) // 2, (hi - 16) // 2)
        S = _ldexp(A0, d[:, None] - d[None, :])
        if _ldexp(S, d[None, :] - d[:, None]).tobytes() != A0.tobytes():
            S, d = A0.copy(), np.zeros(n, dtype=np.int64)  # an entry rounded: no similarity
        ev = np.linalg.eigvals(A0.astype(np.complex128))
        x = _graded_points(draw, A0, [float(ev.real[0])] if not cplx else [])
        return {"A": S, "x": x}, {"A0": A0}
    n = draw(st.sampled_from(STRUCTURED_SIZES))
    s = _spread(draw, dtype)
    d = np.ldexp(rng.uniform(0.5, 1, n) * rng.choice([-1, 1], n),
                 _fit_exponents(rng.integers(-s, s + 1, n), lo + 30, hi - 30))
    A = np.diag(d).astype(np.complex128 if cplx else np.float64)
    up = draw(st.booleans())
    if kind == "triangular":
        off = np.triu(rng.standard_normal((n, n)), 1)
        A = A + (off if up else off.T)
    elif n > 1:
        band = np.diag(rng.standard_normal(n - 1), 1)
        A = A + (band if up else band.T)
        if kind == "tridiagonal":
            A = A + (band.T if up else band) * rng.uniform(-2, 2)
    A = _as(A, dtype, (n, n))
    return {"A": A, "x": _graded_points(draw, A)}, {}


def _graded_scenarios(op: str) -> st.SearchStrategy[Scenario]:
    @st.composite
    def build(draw: st.DrawFn) -> Scenario:
        dtype = draw(st.sampled_from(DTYPES))
        kind = draw(st.sampled_from(GRADED_KINDS[op]))
        if op == "charpoly_deriv":
            inputs, params = _graded_charpoly(draw, kind, dtype)
            return Scenario("graded", op, kind, inputs, params)
        n = draw(st.sampled_from(GRADED_SIZES))
        return Scenario("graded", op, kind, {"A": _graded_matrix(draw, kind, n, dtype)})

    return build()


def _slot(draw: st.DrawFn, op: str, n: int, dtype: Any) -> tuple[str, Array]:
    what = draw(st.sampled_from(SLOTS))
    shape = (n, n)
    with np.errstate(all="ignore"):
        if what == "hostile":
            h = draw(hostile_matrices(n=n, dtype=dtype))
            return h.kind, h.A
        base = _dyadic_matrix(draw, n, dtype) + _as(2 * np.eye(n), dtype, shape)
        if what in ("nan", "signalling_nan", "inf", "-inf"):
            v = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}.get(what)
            i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
            if v is None:  # a signalling NaN, bit pattern preserved
                part = base.real if np.iscomplexobj(base) else base
                if part.dtype == np.float64:
                    part.view(np.uint64)[i, j] = 0x7FF0000000000001
                else:
                    part.view(np.uint32)[i, j] = 0x7F800001
                return what, base
            base[i, j] = v
            return what, base
        big = float(np.finfo(_real_dtype(dtype)).max)
        if what == "1e308":
            return what, _as(np.full(shape, big / 2), dtype, shape)
        if what == "subnormal":
            return what, _ldexp(base, _exp_limits(dtype)[0] - 6)
        if what == "singular":
            base[-1] = base[0]
            return what, base
        if what == "1e10*I":
            return what, _as(1e10 * np.eye(n), dtype, shape)
        if what == "full_1e300":
            return what, _as(np.full(shape, big * 1e-8), dtype, shape)
        return what, np.zeros(shape, dtype=dtype)


def _batch_scenarios(op: str, sizes: Sequence[int]) -> st.SearchStrategy[Scenario]:
    @st.composite
    def build(draw: st.DrawFn) -> Scenario:
        dtype = draw(st.sampled_from(DTYPES))
        B = draw(st.integers(2, 5))
        if op == "bilinear_grad":
            m, n = draw(st.integers(1, 8)), draw(st.integers(1, 8))
            el = _elements(dtype)
            x = _as(draw(st.lists(el, min_size=B * m, max_size=B * m)), dtype, (B, m))
            y = _as(draw(st.lists(el, min_size=B * n, max_size=B * n)), dtype, (B, n))
            return Scenario("batch", op, "vectors", {"x": x, "y": y},
                            {"inner": draw(st.integers(0, 7))})
        n = draw(st.sampled_from(sizes))
        slots, kinds = [], []
        hostile_at = set(draw(st.lists(st.integers(0, B - 1), min_size=1, max_size=2)))
        for b in range(B):
            if b in hostile_at:
                what, M = _slot(draw, op, n, dtype)
            else:
                what, M = "clean", _dyadic_matrix(draw, n, dtype) + _as(2 * np.eye(n), dtype,
                                                                         (n, n))
            slots.append(M.astype(dtype, copy=False))
            kinds.append(what)
        S = np.ascontiguousarray(np.stack(slots))
        key = "X" if op == "frobenius_grad" else "A"
        inputs = {key: S}
        if op == "charpoly_deriv":
            K = draw(st.integers(1, 3))
            pts = [_points(draw, S[b], K) for b in range(B)]
            inputs = {"A": np.ascontiguousarray(S[:, None]), "x": np.stack(pts)}
        return Scenario("batch", op, "+".join(kinds), inputs, {"inner": draw(st.integers(0, 7))})

    return build()


def _agreement_scenarios(op: str, sizes: Sequence[int]) -> st.SearchStrategy[Scenario]:
    @st.composite
    def build(draw: st.DrawFn) -> Scenario:
        n = draw(st.sampled_from(sizes))
        dtype = draw(st.sampled_from(DTYPES))
        seed = draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        A: Any = rng.standard_normal((n, n))
        if np.dtype(dtype).kind == "c":
            A = A + 1j * rng.standard_normal((n, n))
        lo, hi = _exp_limits(dtype)
        span = draw(st.sampled_from([0, 8, (hi - lo) // 8]))
        r = rng.integers(-span, span + 1, n)
        c = rng.integers(-span, span + 1, n)
        A = _ldexp(np.asarray(A, dtype=dtype), r[:, None] + c[None, :])
        if draw(st.booleans()):  # rank deficiency on top
            A[draw(st.integers(0, n - 1))] = 0
        inputs = {"X" if op == "frobenius_grad" else "A": A}
        if op == "charpoly_deriv":
            inputs["x"] = _points(draw, A)
        return Scenario("agreement", op, f"graded(span={span})", inputs, {"seed": seed})

    return build()


def scenarios(checks: Sequence[str] = CHECKS, ops: Sequence[str] = OPS,
              exact_sizes: Sequence[int] = EXACT_SIZES,
              large_sizes: Sequence[int] = LARGE_SIZES) -> st.SearchStrategy[Scenario]:
    """Every (check, op) combination that applies, as one strategy."""
    parts: list[st.SearchStrategy[Scenario]] = []
    for check in checks:
        for op in ops:
            if check == "reference":
                parts.append(_reference_scenarios(op, exact_sizes))
            elif check == "known" and op in ("det_grad", "logdet_grad", "charpoly_deriv"):
                parts.append(_known_scenarios(op, (*large_sizes, 3, 4, 5)))
            elif check == "scaling":
                parts.append(_scaling_scenarios(op, (*exact_sizes, *large_sizes)))
            elif check == "graded" and op in GRADED_KINDS:
                parts.append(_graded_scenarios(op))
            elif check == "batch":
                parts.append(_batch_scenarios(op, exact_sizes))
            elif check == "agreement" and op != "bilinear_grad":
                parts.append(_agreement_scenarios(op, large_sizes))
    if not parts:
        raise ValueError(f"no scenarios for checks={checks!r}, ops={ops!r}")
    return st.one_of(*parts)


# =============================================================== calling
def _call_text(op: str, backend: BackendArg, names: Sequence[str], extra: str = "") -> str:
    args = ", ".join(names)
    rv = ", return_value=True" if op == "charpoly_deriv" else ""
    return f"matgrad.{op}({args}{rv}{extra}, backend={backend_label(backend)!r})"


def call_op(op: str, backend: BackendArg, inputs: dict[str, Any],
            check: str = "", call: str | None = None) -> tuple[Array, ...]:
    """Run ``op`` with ``RuntimeWarning`` as an error; any exception or warning
    becomes a :class:`Mismatch`.  Results come back as NumPy arrays."""
    names = list(inputs)
    text = call or _call_text(op, backend, names)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            out = _raw_call(op, backend, inputs)
            return tuple(_to_numpy(o) for o in out)
    except Mismatch:
        raise
    except Exception as exc:  # a raise or warning is a failure
        np_inputs = {k: _to_numpy(v) for k, v in inputs.items()}
        raise Mismatch(check=check or "call", op=op, backend=backend, inputs=np_inputs,
                       call=text, expected="a result, no exception and no RuntimeWarning",
                       got=f"{type(exc).__name__}: {exc}") from exc


def _raw_call(op: str, backend: BackendArg, inputs: dict[str, Any]) -> tuple[Any, ...]:
    if op == "charpoly_deriv":
        p, dp = _api.charpoly_deriv(inputs["A"], inputs["x"], return_value=True,
                                    backend=backend)
        return (p, dp)
    if op == "bilinear_grad":
        return (_api.bilinear_grad(inputs["x"], inputs["y"], backend=backend),)
    (arg,) = inputs.values()
    return (getattr(_api, op)(arg, backend=backend),)


def _to_numpy(x: Any) -> Array:
    if hasattr(x, "compute"):
        x = x.compute()
    return np.asarray(x)


def same_bits(a: Array, b: Array) -> bool:
    """Equal values, NaN where NaN, and the same sign of every non-NaN zero
    (real and imaginary parts separately); dtypes and shapes equal."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    for pa, pb in ((np.real(a), np.real(b)), (np.imag(a), np.imag(b))):
        if not np.array_equal(pa, pb, equal_nan=True):
            return False
        keep = ~np.isnan(pa)
        if not np.array_equal(np.signbit(pa[keep]), np.signbit(pb[keep])):
            return False
    return True


def _same_bits_each(a: Array, b: Array) -> Array:
    """Entrywise :func:`same_bits`."""
    out = np.ones(np.shape(a), dtype=bool)
    for pa, pb in ((np.real(a), np.real(b)), (np.imag(a), np.imag(b))):
        both_nan = np.isnan(pa) & np.isnan(pb)
        out &= both_nan | ((pa == pb) & (np.signbit(pa) == np.signbit(pb)))
    return out


def _show(a: Any) -> str:
    with np.printoptions(precision=17, threshold=60, linewidth=200):
        return " ".join(repr(np.asarray(a)).split())


# =============================================================== checks
def run_scenario(scn: Scenario, backend: BackendArg,
                 available: Sequence[str] | None = None) -> None:
    """Check ``scn`` on ``backend``; raise :class:`Mismatch` on failure.

    ``available``: names of the available backends (the Dask checks run its
    blocks on one of the NumPy-array backends among them)."""
    {"reference": _check_reference, "known": _check_known, "scaling": _check_scaling,
     "graded": _check_graded, "batch": _check_batch,
     "agreement": _check_agreement}[scn.check](scn, backend, available)


def _fail(scn: Scenario, backend: BackendArg, expected: str, got: str,
          inputs: dict[str, Array] | None = None, call: str | None = None,
          setup: str = "") -> Mismatch:
    ins = scn.inputs if inputs is None else inputs
    return Mismatch(check=scn.check, op=scn.op, backend=backend, inputs=ins,
                    call=call or _call_text(scn.op, backend, list(ins)), expected=expected,
                    got=got, setup=setup)


def _contract_expected(op: str, what: str) -> str:
    if op == "charpoly_deriv":
        rules = (f"each of p, p′ within max({gr.TEXTBOOK_FACTOR}× the textbook formula's "
                 f"error, {gr.ULPS}·n ulps) or the backward-stability allowance; 0, ±inf, "
                 "NaN only where the exact value underflows, overflows or the input is not "
                 "finite")
    elif op in ("det_grad", "logdet_grad"):
        rules = (f"(a) ‖G − G*‖_F ≤ {gr.NORMWISE_FACTOR}·max(ε_std, n·eps)·‖G*‖_F, "
                 "ε_std the textbook formula's normwise error; (c) 0, ±inf, NaN only where "
                 "the exact value underflows, overflows, or where documented; (d) exactly "
                 "singular det_grad within the equilibrated backward-stability bound")
    else:
        rules = "the contract"
    return f"{what}: against the exact reference of this very input, {rules}"


def _contract_failure(scn: Scenario, backend: BackendArg, verdict: gr.Verdict, what: str,
                      out: tuple[Array, ...], inputs: dict[str, Array] | None = None,
                      setup: str = "") -> Mismatch:
    result = _show(out if len(out) > 1 else out[0])
    return _fail(scn, backend, _contract_expected(scn.op, what),
                 f"{len(verdict.violations)} violation(s), confirmed against the exact "
                 f"reference: {verdict.describe()}; result {result}", inputs=inputs, setup=setup)


def _verdict(op: str, inputs: dict[str, Array], out: tuple[Array, ...],
             **kw: Any) -> gr.Verdict:
    """The contract check of ``out = op(inputs)`` (one matrix)."""
    A = inputs["A"]
    if op == "det_grad":
        return gr.det_grad_verdict(A, out[0], **kw)
    if op == "logdet_grad":
        return gr.logdet_grad_verdict(A, out[0], **kw)
    return gr.charpoly_verdict(A, inputs["x"], out[0], out[1], **kw)


def _reference_score(op: str, out: tuple[Array, ...], inputs: dict[str, Array]) -> ref.Score:
    """``frobenius_grad`` and ``bilinear_grad``: error / allowed error
    against the exact references."""
    if op == "frobenius_grad":
        return ref.frobenius_error_ratio(out[0], inputs["X"])
    return _bilinear_score(out[0], inputs["x"], inputs["y"])


def _bilinear_score(got: Array, x: Array, y: Array) -> ref.Score:
    """Entry by entry: ``|G_ij − x_i y_j| ≤ 2·eps·|x_i y_j|`` (one complex
    product rounds twice) plus half the smallest subnormal, so a product that
    truly underflows may round to zero; ±inf only where it truly overflows
    (docs/numerics.md §1: an entry overflows only where the true product
    does).  In a complex entry that truly overflows, a part below the
    entry's rounding level ``2·eps·|x_i y_j|`` may be ±inf too (its value
    and sign are within rounding of the entry: ``(−2 + 2¹⁰⁴i)(2¹²⁷ − i)`` in
    complex64 has the real part −FLT_MAX beside an imaginary part of 2²³¹)."""
    eps = ref.eps_of(got.dtype)
    fi = np.finfo(_real_dtype(got.dtype))
    floor = float(fi.smallest_subnormal)
    big = float(fi.max)
    worst = ref.Score(0.0, 0.0)
    with mpmath.workdps(ref.DPS):
        for i, a in enumerate(x):
            for j, b in enumerate(y):
                exact = ref._to_mp(a) * ref._to_mp(b)
                g = got[i, j]
                for gp, ep in ((np.real(g), mpmath.re(exact)), (np.imag(g), mpmath.im(exact))):
                    if not np.isfinite(gp):
                        sub_rounding = abs(exact) > big and abs(ep) <= 2 * eps * abs(exact)
                        if np.isnan(gp) or (not sub_rounding and (
                                abs(ep) <= big or (gp > 0) != (ep > 0))):
                            return ref.Score(float("inf"), float("inf"))
                        continue
                    err = abs(ref._to_mp(gp) - ep)
                    lim = 2 * eps * abs(exact) + floor
                    s = ref.Score(float(err / lim), float(err / abs(exact)) if exact else 0.0)
                    if not s.ratio <= worst.ratio:
                        worst = s
    return worst


def _finite(inputs: dict[str, Array]) -> bool:
    return all(bool(np.isfinite(v).all()) for v in inputs.values())


def _check_reference(scn: Scenario, backend: BackendArg, available: Any) -> None:
    out = call_op(scn.op, backend, scn.inputs, scn.check)
    if scn.op in ("det_grad", "logdet_grad", "charpoly_deriv"):
        verdict = _verdict(scn.op, scn.inputs, out)
        if not verdict.ok:
            raise _contract_failure(scn, backend, verdict, scn.op, out)
        return
    if _finite(scn.inputs):
        for o in out:
            if np.isnan(o).any():
                raise _fail(scn, backend, "no NaN from a finite input", _show(o))
    score = _reference_score(scn.op, out, scn.inputs)
    if not score.ratio <= 1:
        raise _fail(scn, backend, "error within the allowed error (exact reference: a few "
                    "ulps per entry)",
                    f"error / allowed error = {score.ratio:.3g} (relative error "
                    f"{score.rel:.3g} normwise); result "
                    f"{_show(out if len(out) > 1 else out[0])}")


# ---------------------------------------------------------------- known
def _clamped_sigmas(At: Array, rank: int | None) -> list[float]:
    """Singular values of ``Ã`` from LAPACK, each raised to 8·n·eps·σ₁ (only
    loosens a bound) and zero beyond a known exact ``rank``."""
    n = At.shape[0]
    with np.errstate(all="ignore"):
        s = np.linalg.svd(At.astype(np.complex128 if np.iscomplexobj(At) else np.float64),
                          compute_uv=False)
    floor = 8 * n * float(np.finfo(np.float64).eps) * float(s[0]) if n else 0.0
    out = [max(float(v), floor) for v in s]
    if rank is not None:
        out = [v if i < rank else 0.0 for i, v in enumerate(out)]
    return out


def _equilibrated_float(A: Array) -> Array:
    r, c = ref.equilibration_exponents(A)
    return _ldexp(A.astype(np.complex128 if np.iscomplexobj(A) else np.float64),
                  np.add.outer(np.asarray(r), np.asarray(c)))


def _known_cofactor(kind: str, A: Array, params: dict[str, Any]) -> tuple[Any, list[list[Any]]]:
    """``(det A, cofactor(A))`` in closed form for the ``known`` kinds."""
    n = A.shape[0]
    with mpmath.workdps(ref.DPS):
        zero = mpmath.mpf(0)
        C = [[zero] * n for _ in range(n)]
        if kind in ("ones", "rank1", "tiled"):
            if params["rank"] <= n - 2:
                return zero, C  # rank ≤ n − 2: every (n−1)-minor vanishes
            return zero, ref.ref_cofactor(A)  # a small tiled matrix of rank n − 1
        if kind == "permutation":
            perm = params["perm"]
            sign = _perm_sign(perm)
            for i, j in enumerate(perm):
                C[i][j] = mpmath.mpf(sign)
            return mpmath.mpf(sign), C
        if kind == "diagonal":
            d = [ref._to_mp(v) for v in np.diag(A)]
            for i in range(n):
                C[i][i] = mpmath.fprod(d[:i] + d[i + 1:])
            return mpmath.fprod(d), C
        lam = mpmath.mpf(params["lam"])  # jordan: C_{i+k, i} = (−1)^k λ^(n−1−k)
        for i in range(n):
            for k in range(n - i):
                C[i + k][i] = (-1) ** k * lam ** (n - 1 - k)
        return lam ** n, C


def _perm_sign(perm: Sequence[int]) -> int:
    seen, sign = set(), 1
    for s in range(len(perm)):
        if s in seen:
            continue
        j, length = s, 0
        while j not in seen:
            seen.add(j)
            j = perm[j]
            length += 1
        sign *= -1 if length % 2 == 0 else 1
    return sign


def _known_eigenvalues(kind: str, A: Array, params: dict[str, Any]) -> list[Any]:
    n = A.shape[0]
    if kind == "ones":
        return [mpmath.mpf(n)] + [mpmath.mpf(0)] * (n - 1)
    if kind == "diagonal":
        return [ref._to_mp(v) for v in np.diag(A)]
    perm, seen, lam = params["perm"], set(), []
    with mpmath.workdps(ref.DPS):
        for s in range(n):
            if s in seen:
                continue
            j, length = s, 0
            while j not in seen:
                seen.add(j)
                j = perm[j]
                length += 1
            lam += [mpmath.expjpi(2 * mpmath.mpf(k) / length) for k in range(length)]
    return lam


def _check_known(scn: Scenario, backend: BackendArg, available: Any) -> None:
    """Closed-form answers of large structured matrices, held to the
    contract (singular ``det_grad``: the equilibrated backward-stability
    bound; ``charpoly_deriv`` of these normal matrices: also the
    eigenvalue-perturbation bound where the textbook formula has no answer)."""
    A = scn.inputs["A"]
    n = A.shape[0]
    out = call_op(scn.op, backend, scn.inputs, scn.check)
    rank = scn.params.get("rank")
    if scn.kind == "jordan" and scn.params.get("lam") == 0.0:
        rank = n - 1
    if scn.kind == "diagonal":
        rank = int(np.count_nonzero(np.diag(A)))
    if scn.op == "det_grad":
        det, C = _known_cofactor(scn.kind, A, scn.params)
        sig = _clamped_sigmas(_equilibrated_float(A), rank) if det == 0 else None
        verdict = gr.det_grad_verdict(A, out[0], exact=(det, C), sigmas=sig)
    elif scn.op == "logdet_grad":
        det, C = _known_cofactor(scn.kind, A, scn.params)
        with mpmath.workdps(ref.DPS):
            G = [[v / det for v in row] for row in C]
        verdict = gr.logdet_grad_verdict(A, out[0], exact=G)
    else:
        lam = _known_eigenvalues(scn.kind, A, scn.params)
        eps = ref.eps_of(A.dtype)
        norm2 = max(abs(v) for v in lam) if lam else 0
        exact, fallback = [], []
        for xk in scn.inputs["x"]:
            ep, edp, ap, adp = ref.charpoly_normal_bounds(lam, xk, 8 * n * eps * float(norm2))
            exact.append((ep, edp))
            fallback.append((ap + 2 * n * eps * abs(ep), adp + 2 * n * eps * abs(edp)))
        # the eigenvalue-perturbation bound is normwise: right for the balanced
        # all-ones and permutation matrices, too weak for a graded diagonal
        verdict = gr.charpoly_verdict(A, scn.inputs["x"], out[0], out[1], exact=exact,
                                      fallback=None if scn.kind == "diagonal" else fallback)
    if not verdict.ok:
        raise _contract_failure(scn, backend, verdict,
                                f"the closed-form answer for {scn.kind} (n={n})", out)


# ---------------------------------------------------------------- scaling
def _exponent_range(*arrays: Array) -> tuple[int, int] | None:
    """min and max binary exponent over the nonzero finite parts (None: none)."""
    vals = np.concatenate([np.abs(np.concatenate([np.real(a).ravel(), np.imag(a).ravel()]))
                           for a in arrays])
    vals = vals[np.isfinite(vals) & (vals != 0)]
    if vals.size == 0:
        return None
    e = np.frexp(vals)[1]
    return int(e.min()), int(e.max())


def _products_normal(x: Array, y: Array) -> bool:
    """Every nonzero partial product of an entry of ``x`` and one of ``y``
    (real and imaginary parts) is normal and finite."""
    ex, ey = _exponent_range(x), _exponent_range(y)
    if ex is None or ey is None:
        return True
    emin, emax = _exp_limits(x.dtype)
    return ex[0] + ey[0] - 2 >= emin and ex[1] + ey[1] + 1 <= emax


def _normal_or_zero(x: Array) -> Array:
    """Entries (real and imaginary parts) that are 0 or normal: where exact
    scaling relations can be compared bit for bit."""
    tiny = np.finfo(_real_dtype(x.dtype)).tiny
    ok = np.ones(x.shape, dtype=bool)
    for part in (np.real(x), np.imag(x)):
        a = np.abs(part)
        ok &= (a == 0) | ((a >= tiny) & np.isfinite(a))
    return ok


#: A scaling law: (the scaled inputs, the power of two by which each result
#: scales, the relation in words).
_Law = tuple[dict[str, Array], tuple[Any, ...], str]


def _check_scaling(scn: Scenario, backend: BackendArg, available: Any) -> None:
    """The ``scaling`` property.  ``frobenius_grad`` and ``bilinear_grad``:
    ``2ᵏ`` times the inputs scales the result bit for bit.  ``det_grad``,
    ``logdet_grad``: the result for ``D₁AD₂`` (power-of-two diagonals, or
    ``2ᵏ``) meets the contract against the exact reference of ``D₁AD₂``
    itself, and a row scaling of a matrix with n ≠ 4 is bit for bit.
    ``charpoly_deriv``: ``(2ᵏA, 2ᵏx)`` and ``DAD⁻¹`` against their own exact
    references, within the bound of the unscaled ``A``.
    Exponents keep every nonzero input entry normal and finite."""
    if not _finite(scn.inputs):
        return
    rng = np.random.default_rng(scn.params["seed"])
    if scn.op in ("det_grad", "logdet_grad"):
        _check_two_sided(scn, backend, rng)
    elif scn.op == "charpoly_deriv":
        _check_charpoly_scaling(scn, backend, rng)
    else:
        window = _scalar_exponent_window(scn.inputs)
        if window is None:
            return
        base = call_op(scn.op, backend, scn.inputs, "scaling")
        _check_scalar_scaling(scn, backend, base, rng, *window)


def _entry_exponents(A: Array) -> tuple[Array, Array]:
    """(binary exponent of each entry's magnitude ``max(|re|, |im|)``, the
    mask of nonzero entries)."""
    mag = np.maximum(np.abs(np.real(A)), np.abs(np.imag(A))).astype(np.float64)
    return np.frexp(mag)[1].astype(np.int64), mag != 0


def _part_exponents(A: Array) -> tuple[Array, Array, Array]:
    """(binary exponent of each entry's smallest nonzero part, of its
    largest part, the mask of nonzero entries): a scaling keeps every
    nonzero part normal and finite when it keeps both."""
    re, im = (np.abs(np.real(A)).astype(np.float64), np.abs(np.imag(A)).astype(np.float64))
    big = np.maximum(re, im)
    small = np.where((re != 0) & (im != 0), np.minimum(re, im), big)
    return (np.frexp(small)[1].astype(np.int64), np.frexp(big)[1].astype(np.int64), big != 0)


def _two_sided_exponents(A: Array, mode: str,
                         rng: np.random.Generator) -> tuple[Array, Array]:
    """Row and column exponents ``r``, ``c`` (within ±1000) for ``mode``
    (``scalar``, ``rows``, ``cols``, ``both``) that keep every nonzero part
    of ``2^(r_i + c_j)·a_ij`` normal and finite; zeros where none does."""
    n = A.shape[0]
    e_lo, e_hi, nz = _part_exponents(A)
    lo, hi = _exp_limits(A.dtype)
    lo, hi = lo + 2, hi - 1  # frexp exponents of normal, finite values, with a margin
    r, c = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    if not nz.any():
        return r, c
    if mode == "scalar":
        a, b = max(lo - int(e_lo[nz].min()), -1000), min(hi - int(e_hi[nz].max()), 1000)
        if a <= b:
            r[:] = int(rng.integers(a, b + 1))
        return r, c

    def window(low: Array, high: Array, mask: Array, offset: Array) -> tuple[int, int]:
        if not mask.any():
            return 0, 0
        return (max(lo - int((low + offset)[mask].min()), -1000),
                min(hi - int((high + offset)[mask].max()), 1000))

    if mode in ("rows", "both"):
        for i in range(n):
            a, b = window(e_lo[i], e_hi[i], nz[i], np.zeros(n, dtype=np.int64))
            if a <= b:
                quarter = (b - a) // 4 if mode == "both" else 0
                r[i] = int(rng.integers(a + quarter, b - quarter + 1))
    if mode in ("cols", "both"):
        for j in range(n):
            a, b = window(e_lo[:, j], e_hi[:, j], nz[:, j], r)
            if a <= b:
                c[j] = int(rng.integers(a, b + 1))
    return r, c


def _check_two_sided(scn: Scenario, backend: BackendArg, rng: np.random.Generator) -> None:
    """``det_grad``/``logdet_grad`` of ``D₁AD₂``: against the exact
    reference of ``D₁AD₂`` (rules (a), (c)); for a row scaling (``2ᵏI``
    included) with n ≠ 4 also bit for bit against the result for ``A``
    (rule (b), :func:`matgrad.testing._graded.row_scaling_verdict`)."""
    A = scn.inputs["A"]
    n = A.shape[0]
    r, c = _two_sided_exponents(A, scn.params["mode"], rng)
    E = np.add.outer(r, c)
    S = _ldexp(A, E)
    if not np.isfinite(S).all() or _ldexp(S, -E).tobytes() != A.tobytes():
        return  # (an input the scaling rounded: not D₁·A·D₂)
    out = call_op(scn.op, backend, {"A": S}, "scaling")
    scaling = f"D₁ = diag(2^{r.tolist()}), D₂ = diag(2^{c.tolist()})"
    setup = f"A0 = {array_literal(A)}  # A = D₁·A0·D₂, exactly"
    if scn.params["mode"] in ("scalar", "rows") and n != 4:
        base = call_op(scn.op, backend, {"A": A}, "scaling")
        rows = gr.row_scaling_verdict(scn.op, r, base[0], out[0])
        if not rows.ok and _same_path(A, S, base[0], out[0]):
            law = ("det_grad(D₁·A0) == det(D₁)·D₁⁻¹·det_grad(A0)" if scn.op == "det_grad"
                   else "logdet_grad(D₁·A0) == D₁⁻¹·logdet_grad(A0)")
            raise _fail(scn, backend, f"bit for bit, wherever nothing over- or underflows: "
                        f"{law}, {scaling}",
                        f"{len(rows.violations)} entr(ies) differ: {rows.describe()}; "
                        f"unscaled {_show(base[0])}, scaled {_show(out[0])}",
                        inputs={"A": S}, setup=setup + "\nunscaled = " + _call_text(
                            scn.op, backend, ["A0"]))
    verdict = _verdict(scn.op, {"A": S}, out)
    if not verdict.ok:
        raise _contract_failure(scn, backend, verdict, f"{scn.op}(D₁·A0·D₂), {scaling}", out,
                                inputs={"A": S}, setup=setup)


def _in_closed_form_window(A: Array) -> bool:
    """Whether every nonzero part of ``A`` lies within [2^-300, 2^300): the
    window of the 2×2/3×3 closed forms (docs/numerics.md §3)."""
    parts = np.abs(np.concatenate([np.real(A).ravel(), np.imag(A).ravel()])).astype(np.float64)
    nz = parts[parts != 0]
    return bool((nz < 2.0**300).all() and (nz >= 2.0**-300).all())


def _same_path(A: Array, S: Array, base: Array, got: Array) -> bool:
    """Whether bit-exactness of a row scaling ``S = D₁A`` is promised
    (docs/numerics.md §1 item 5): not where the scaling moves a 2×2/3×3
    slot across the closed forms' 2^±300 window, nor where it changes which
    entries of the result truly overflow (the matching tier's refinement
    measures against the largest finite entry).  Both results are still
    held to the contract against their own exact references."""
    if A.shape[0] <= 3 and _in_closed_form_window(A) != _in_closed_form_window(S):
        return False
    inf_parts = [(np.isinf(np.real(x)) | np.isinf(np.imag(x))) for x in (base, got)]
    return bool((inf_parts[0] == inf_parts[1]).all())


def _check_charpoly_scaling(scn: Scenario, backend: BackendArg,
                            rng: np.random.Generator) -> None:
    """``charpoly_deriv`` of ``(2ᵏA, 2ᵏx)`` (mode ``scalar``) or of ``DAD⁻¹``
    at ``x`` (mode ``similarity``): against the exact reference of that very
    input, with the textbook error of the unscaled ``(A, x)``."""
    A, x = scn.inputs["A"], scn.inputs["x"]
    n = A.shape[0]
    if scn.params["mode"] == "scalar":
        window = _scalar_exponent_window(scn.inputs)
        if window is None:
            return
        k = int(rng.integers(window[0], window[1] + 1))
        S, xs = _ldexp(A, k), _ldexp(x, k)
        bound = (A, x, -k * n, -k * (n - 1))
        what = f"charpoly_deriv(2^{k}·A0, 2^{k}·x0) = (2^{k * n}·p, 2^{k * (n - 1)}·p′)"
        setup = f"A0 = {array_literal(A)}\nx0 = {array_literal(x)}"
    else:
        d = _similarity_exponents(A, rng)
        S, xs = _ldexp(A, d[:, None] - d[None, :]), x
        if _ldexp(S, d[None, :] - d[:, None]).tobytes() != A.tobytes():
            return
        bound = (A, x, 0, 0)
        what = f"charpoly_deriv(D·A0·D⁻¹, x) = charpoly_deriv(A0, x), D = diag(2^{d.tolist()})"
        setup = f"A0 = {array_literal(A)}"
    if not (np.isfinite(S).all() and np.isfinite(xs).all()):
        return
    inputs = {"A": S, "x": xs}
    out = call_op(scn.op, backend, inputs, "scaling")
    verdict = gr.charpoly_verdict(S, xs, out[0], out[1], bound_from=bound)
    if not verdict.ok:
        raise _contract_failure(scn, backend, verdict, what, out, inputs=inputs, setup=setup)


def _similarity_exponents(A: Array, rng: np.random.Generator) -> Array:
    """``d`` with every nonzero ``a_ij·2^(d_i − d_j)`` normal and finite:
    drawn with a reach of up to 2^±400, halved until it fits."""
    n = A.shape[0]
    e, nz = _entry_exponents(A)
    lo, hi = _exp_limits(A.dtype)
    d: Array = np.asarray(rng.integers(-400, 401, n), dtype=np.int64)
    while d.any():
        E = (e + d[:, None] - d[None, :])[nz]
        if not E.size or (int(E.min()) >= lo + 2 and int(E.max()) <= hi - 1):
            break
        d = np.asarray(np.trunc(d / 2), dtype=np.int64)
    return d


def _scalar_exponent_window(ins: dict[str, Array]) -> tuple[int, int] | None:
    """The range of ``k`` (within ±1000) for which ``2ᵏ`` times every input
    stays normal and finite; None for non-finite or all-zero inputs or an
    empty range."""
    if not _finite(ins):
        return None
    dtype = next(iter(ins.values())).dtype
    emin, emax = _exp_limits(dtype)
    rngs = _exponent_range(*ins.values())
    if rngs is None:
        return None
    lo_e, hi_e = rngs
    lo, hi = max(emin + 1 - lo_e, -1000), min(emax - 1 - hi_e, 1000)
    return None if lo > hi else (lo, hi)


def _check_scalar_scaling(scn: Scenario, backend: BackendArg, base: tuple[Array, ...],
                          rng: np.random.Generator, lo: int, hi: int) -> None:
    """``op(2ᵏ·inputs)`` is ``base`` times the operation's power of two, bit
    for bit, for a ``k ≠ 0`` drawn from ``[lo, hi]``."""
    k = int(rng.integers(lo, hi + 1)) or (1 if hi >= 1 else -1)
    if not lo <= k <= hi:
        return
    law = _scalar_scaling_law(scn.op, scn.inputs, k, rng, lo, hi)
    if law is None:
        return
    scaled, shifts, relation = law
    got = call_op(scn.op, backend, scaled, "scaling")
    _compare_exact(scn, backend, base, shifts, got, scaled, relation)


def _scalar_scaling_law(op: str, ins: dict[str, Array], k: int, rng: np.random.Generator,
                        lo: int, hi: int) -> _Law | None:
    """How ``op``'s results scale when its inputs are scaled by ``2ᵏ``
    (``bilinear_grad``: ``x`` by ``2ᵏ`` and ``y`` by a second power drawn
    from ``[lo, hi]``; None where that is not exact)."""
    if op == "bilinear_grad":
        return _bilinear_scaling_law(ins, k, int(rng.integers(lo, hi + 1)))
    scaled = {key: _ldexp(v, k) for key, v in ins.items()}
    if op == "frobenius_grad":
        return scaled, (0,), f"frobenius_grad(2^{k} X) == frobenius_grad(X)"
    if op == "det_grad":
        n = ins["A"].shape[0]
        return scaled, (k * (n - 1),), f"det_grad(2^{k} A) == 2^({k}·(n−1))·det_grad(A)"
    if op == "logdet_grad":
        return scaled, (-k,), f"logdet_grad(2^{k} A) == 2^{-k}·logdet_grad(A)"
    n = ins["A"].shape[0]
    return (scaled, (k * n, k * (n - 1)),
            f"charpoly_deriv(2^{k} A, 2^{k} x) == (2^({k}n) p, 2^({k}(n−1)) p′)")


def _bilinear_scaling_law(ins: dict[str, Array], k: int, k2: int) -> _Law | None:
    """``bilinear_grad(2ᵏx, 2ᵏ²y) = 2ᵏ⁺ᵏ²·bilinear_grad(x, y)``; None where
    it is not exact."""
    scaled = {"x": _ldexp(ins["x"], k), "y": _ldexp(ins["y"], k2)}
    # a complex product is exact under scaling only while its partial
    # products (re·re, re·im, ...) neither underflow nor overflow
    if not (_products_normal(ins["x"], ins["y"])
            and _products_normal(scaled["x"], scaled["y"])):
        return None
    return (scaled, (k + k2,),
            f"bilinear_grad(2^{k} x, 2^{k2} y) == 2^{k + k2}·bilinear_grad(x, y)")


def _compare_exact(scn: Scenario, backend: BackendArg, base: tuple[Array, ...],
                   shifts: tuple[Any, ...], got: tuple[Array, ...],
                   scaled: dict[str, Array], relation: str) -> None:
    """``got == base·2^shift`` bit for bit wherever that relation is exact
    both ways: ``base`` and ``base·2^shift`` are normal or zero, and so are
    ``got`` and ``got·2^-shift`` (a value that truly over- or underflows on
    one side is not compared).  NaN or inf in ``got`` where the scaled
    ``base`` is finite is always a mismatch."""
    for b, sh, g in zip(base, shifts, got, strict=True):
        x = _ldexp(b, sh)
        back = _ldexp(np.where(np.isfinite(g), g, 0), -np.asarray(sh))
        g_ok = _normal_or_zero(g) & _normal_or_zero(back) & (_is_zero(g) == _is_zero(back))
        # ±inf against a zero: an underflowed base can't be told from an exact
        # zero here (the reference and known-answer checks see exact zeros)
        g_inf = ~_finite_parts(g) & ~(_is_zero(b) & ~np.isnan(g))
        mask = _normal_or_zero(b) & _normal_or_zero(x) & (g_inf | g_ok)
        # the sign of a zero is not part of the relation: compare x + 0.0
        xs, gs = np.where(mask, x, 0) + 0.0, np.where(mask, g, 0) + 0.0
        ulps = _ulps(x, g, mask & _finite_parts(g))
        near = ulps <= SCALING_ULPS.get(scn.op, 0) and bool(
            np.array_equal(np.isfinite(xs), np.isfinite(gs)))
        if not same_bits(xs, gs) and not near:
            first = np.flatnonzero(~_same_bits_each(xs, gs))[:4].tolist()
            names = list(scn.inputs)
            setup = "\n".join(f"{nm}0 = {array_literal(scn.inputs[nm])}" for nm in names)
            call0 = _call_text(scn.op, backend, [f"{nm}0" for nm in names])
            raise _fail(scn, backend, f"bit-exact power-of-two scaling: {relation}",
                        f"differs at flat indices {first} (max {ulps:.3g} ulp); expected "
                        f"{_show(x)}, got {_show(g)}", inputs=scaled,
                        setup=f"{setup}\nunscaled = {call0}")


def _is_zero(x: Array) -> Array:
    return (np.real(x) == 0) & (np.imag(x) == 0)  # type: ignore[no-any-return]


def _finite_parts(x: Array) -> Array:
    return np.isfinite(np.real(x)) & np.isfinite(np.imag(x))  # type: ignore[no-any-return]


def _ulps(a: Array, b: Array, mask: Array) -> float:
    with np.errstate(all="ignore"):
        worst = 0.0
        for pa, pb in ((np.real(a), np.real(b)), (np.imag(a), np.imag(b))):
            d = np.abs(pa.astype(np.float64) - pb.astype(np.float64))
            sp = np.spacing(np.maximum(np.abs(pa), np.abs(pb)).astype(pa.dtype)).astype(
                np.float64)
            r = np.where(mask, d / sp, 0)
            worst = max(worst, float(np.nanmax(r)) if r.size else 0.0)
        return worst


# ---------------------------------------------------------------- graded
def _check_graded(scn: Scenario, backend: BackendArg, available: Any) -> None:
    """The ``graded`` property: the contract against the exact reference
    (elimination for ``D₁RD₂`` and the banded kinds; closed forms for the
    charpoly of triangular, tridiagonal, companion and shift matrices; a
    similarity ``DA0D⁻¹`` held to the bound of ``A0``)."""
    out = call_op(scn.op, backend, scn.inputs, "graded")
    kw: dict[str, Any] = {}
    if scn.op == "charpoly_deriv":
        A, x = scn.inputs["A"], scn.inputs["x"]
        if scn.kind == "similarity":
            kw["bound_from"] = (scn.params["A0"], x, 0, 0)
        else:
            kw["exact"] = [_structured_charpoly(scn.kind, A, xk) for xk in x]
    verdict = _verdict(scn.op, scn.inputs, out, **kw)
    if not verdict.ok:
        raise _contract_failure(scn, backend, verdict, f"{scn.op} of a graded {scn.kind} "
                                f"matrix (n={scn.inputs['A'].shape[0]})", out)


def _fr(v: Any) -> Fraction:
    """A real (imaginary part zero) float or complex, as an exact fraction."""
    c = complex(v)
    assert c.imag == 0, "structured references take real entries"
    return Fraction(c.real)


def _structured_charpoly(kind: str, A: Array, x: Any) -> tuple[Any, Any]:
    """Exact ``p(x)``, ``p′(x)`` of a companion, shift, triangular,
    bidiagonal or tridiagonal matrix with real entries (then 60 digits)."""
    n = A.shape[0]
    if kind == "shift":
        return gr.exact_poly([Fraction(0)] * n + [Fraction(1)], x)
    if kind == "companion":
        return gr.exact_poly([-_fr(v) for v in A[:, -1]] + [Fraction(1)], x)
    cx = complex(x)
    assert cx.imag == 0, "structured references take real points"
    X = Fraction(cx.real)
    a = [_fr(v) for v in np.diag(A)]
    if kind == "tridiagonal" and n > 1:
        bc = [_fr(u) * _fr(w) for u, w in zip(np.diag(A, 1), np.diag(A, -1), strict=True)]
    else:  # triangular, bidiagonal: p = Π(x − a_ii)
        bc = [Fraction(0)] * max(n - 1, 0)
    # p_k = (x − a_k)·p_{k−1} − b_{k−1}c_{k−1}·p_{k−2}, and its derivative
    p0, d0, p1, d1 = Fraction(1), Fraction(0), X - a[0], Fraction(1)
    for k in range(1, n):
        p0, d0, p1, d1 = (p1, d1, (X - a[k]) * p1 - bc[k - 1] * p0,
                          p1 + (X - a[k]) * d1 - bc[k - 1] * d0)
    with mpmath.workdps(ref.DPS):
        return (mpmath.mpf(p1.numerator) / p1.denominator,
                mpmath.mpf(d1.numerator) / d1.denominator)


# ---------------------------------------------------------------- batches
def _slot_inputs(op: str, inputs: dict[str, Array], idx: Sequence[int]) -> dict[str, Array]:
    return {k: np.ascontiguousarray(v[list(idx)]) for k, v in inputs.items()}


def _dask_inners(available: Sequence[str] | None) -> list[str]:
    import matgrad

    names = available if available is not None else \
        [b.name for b in matgrad.list_backends() if b.available]
    found = {b.name: b for b in matgrad.list_backends()}
    return [n for n in names if n in found and "numpy" in found[n].array_modules
            and n != "dask"] or ["numpy"]


#: How a batch runs: inputs in, results out.
_Run = Callable[[dict[str, Array]], tuple[Array, ...]]


@dataclass(frozen=True)
class _BatchRun:
    """One way of running the batch: ``label`` in words, ``run`` the batch,
    ``who`` computes each slot alone for comparison (a backend, or
    ``"dask[INNER]"``: one slot in one Dask chunk on ``INNER``), ``setup``
    lines for the reproducer."""

    label: str
    run: _Run
    who: BackendArg
    setup: str = ""

    @property
    def dask_alone(self) -> bool:
        """Whether each slot alone runs on Dask (``who`` is ``dask[INNER]``)."""
        return isinstance(self.who, str) and self.who.startswith("dask[")

    @property
    def alone_key(self) -> str:
        """The name of who computes each slot alone (runs sharing it share
        those results)."""
        return str(self.who) if self.dask_alone else backend_label(self.who)


def _runner(op: str, who: BackendArg) -> _Run:
    """Run ``op`` on backend ``who`` (a :class:`Mismatch` on any exception or
    warning)."""
    def run(d: dict[str, Array]) -> tuple[Array, ...]:
        return call_op(op, who, d, "batch")

    return run


def _check_batch(scn: Scenario, backend: BackendArg, available: Sequence[str] | None) -> None:
    """The ``batch`` property: every slot's result, however the batch runs,
    is bit-identical to that slot computed alone, and a NaN or inf input
    shows in its own slot's result where that result depends on it."""
    ins = scn.inputs
    alone: dict[str, list[tuple[Array, ...]]] = {}
    for how in _batch_runs(scn, backend, available):
        key = how.alone_key
        if key not in alone:
            alone[key] = _each_slot_alone(scn, how)
        _compare_slots(scn, backend, how, how.run(ins), alone[key])
    # NaN/inf inputs must show in their own slot where the result depends on them
    for b, what in enumerate(scn.kind.split("+")):
        if what in ("nan", "signalling_nan", "inf", "-inf"):
            _nonfinite_shows(scn, backend, _slot_inputs(scn.op, ins, [b]),
                             alone[backend_label(backend)][b])


def _batch_runs(scn: Scenario, backend: BackendArg,
                available: Sequence[str] | None) -> list[_BatchRun]:
    """The ways the batch runs on ``backend``: whole, reversed, its first two
    slots (of more than two), and for Dask every chunking."""
    B = next(iter(scn.inputs.values())).shape[0]
    own = _runner(scn.op, backend)
    perm = list(range(B))[::-1]

    def reversed_batch(d: dict[str, Array]) -> tuple[Array, ...]:
        return _unpermute(own(_slot_inputs(scn.op, d, perm)), perm)

    def first_two(d: dict[str, Array]) -> tuple[Array, ...]:
        return own(_slot_inputs(scn.op, d, [0, 1]))

    runs = [_BatchRun("the whole batch", own, backend),
            _BatchRun("the batch reversed", reversed_batch, backend)]
    if B > 2:
        runs.append(_BatchRun("the first two slots", first_two, backend))
    if backend_label(backend) == "dask":
        runs += _dask_chunk_runs(scn, B, available)
    return runs


def _dask_chunk_runs(scn: Scenario, B: int, available: Sequence[str] | None) -> list[_BatchRun]:
    """The batch of ``B`` slots as Dask arrays of 1, 2 and ``B`` slots per
    chunk, blocks on one NumPy-array backend (picked by the scenario)."""
    inners = _dask_inners(available)
    inner = inners[scn.params.get("inner", 0) % len(inners)]
    # Within Dask: each chunking against the slot alone *on Dask* (one
    # slot, one chunk).  Dask against its inner backend run directly is a
    # comparison across backends (Dask reduces a charpoly matrix itself),
    # held to the bounds by the agreement property, not to the bits.
    return [_BatchRun(f"a Dask array with {chunk} slot(s) per chunk, blocks on {inner!r}",
                      _dask_runner(scn.op, inner, chunk), f"dask[{inner}]", _dask_setup(chunk))
            for chunk in sorted({1, 2, B})]


def _each_slot_alone(scn: Scenario, how: _BatchRun) -> list[tuple[Array, ...]]:
    """Each slot of the batch computed alone by ``how.who``."""
    B = next(iter(scn.inputs.values())).shape[0]
    solo = _dask_runner(scn.op, how.alone_key[5:-1], 1) if how.dask_alone else \
        _runner(scn.op, how.who)
    return [solo(_slot_inputs(scn.op, scn.inputs, [b])) for b in range(B)]


def _compare_slots(scn: Scenario, backend: BackendArg, how: _BatchRun, out: tuple[Array, ...],
                   alone: list[tuple[Array, ...]]) -> None:
    """Each slot of ``out`` (the batch run ``how``) bit-identical to that slot
    alone; a :class:`Mismatch` with a reproducer for the first that is not."""
    for b in range(out[0].shape[0]):
        for o, a in zip(out, alone[b], strict=True):
            if not same_bits(o[b], a[0]):
                raise _slot_mismatch(scn, backend, how, b, o[b], a[0])


def _slot_mismatch(scn: Scenario, backend: BackendArg, how: _BatchRun, b: int,
                   in_batch: Array, by_itself: Array) -> Mismatch:
    """The failure of slot ``b`` of the batch run ``how``: ``in_batch`` where
    it should be ``by_itself``, with the slot alone as reproducer setup."""
    kinds = scn.kind.split("+")
    key = how.alone_key
    slot = _slot_inputs(scn.op, scn.inputs, [b])
    alone_call = (_call_text(scn.op, key[5:-1], [f"da.from_array({k}_slot)"
                                                 for k in slot]) + ".compute()"
                  if key.startswith("dask[") else
                  _call_text(scn.op, how.who, [f"{k}_slot" for k in slot]))
    slot_lines = "\n".join(f"{k}_slot = {array_literal(v)}" for k, v in slot.items())
    return _fail(scn, backend,
                 f"slot {b} ({kinds[b] if b < len(kinds) else '?'}) of "
                 f"{how.label} bit-identical to that slot alone on {key!r}",
                 f"in the batch {_show(in_batch)}, alone {_show(by_itself)}",
                 setup=(how.setup + "\n" if how.setup else "") + slot_lines
                 + f"\nalone = {alone_call}")


def _unpermute(out: tuple[Array, ...], perm: Sequence[int]) -> tuple[Array, ...]:
    inv = np.argsort(perm)
    return tuple(o[inv] for o in out)


def _dask_setup(chunk: int) -> str:
    return f"import dask.array as da  # blocks of {chunk} slot(s)"


def _dask_runner(op: str, inner: str, chunk: int) -> Callable[[dict[str, Array]],
                                                            tuple[Array, ...]]:
    def run(d: dict[str, Array]) -> tuple[Array, ...]:
        import dask.array as da

        darr = {k: da.from_array(v, chunks=(chunk, *v.shape[1:])) for k, v in d.items()}
        names = list(d)
        text = _call_text(op, inner, [f"da.from_array({k}, chunks=({chunk}, "
                                      f"*{k}.shape[1:]))" for k in names])
        return call_op(op, inner, darr, "batch", call=text + ".compute()")

    return run


def _nonfinite_shows(scn: Scenario, backend: BackendArg, slot: dict[str, Array],
                     out: tuple[Array, ...]) -> None:
    """A NaN makes a Frobenius gradient all NaN; otherwise a NaN or inf entry
    must leave a non-finite entry in its slot's result if that result depends
    on it (which entries is the algorithm's business).  Dependence is judged
    by the ``numpy`` backend on the slot with the entry set to 1 and to 3."""
    key = "X" if scn.op == "frobenius_grad" else "A"
    M = slot[key]
    if scn.op == "frobenius_grad" and np.isnan(M).any() and not np.isnan(out[0]).all():
        raise _fail(scn, backend, "a NaN entry makes the whole matrix NaN", _show(out[0]),
                    inputs=slot)
    if any(not np.isfinite(o).all() for o in out):
        return
    bad = ~np.isfinite(M)
    subs = []
    for v in (1.0, 3.0):
        d = dict(slot)
        d[key] = np.where(bad, np.asarray(v, dtype=M.dtype), M)
        subs.append(call_op(scn.op, "numpy", d, "batch"))
    depends = any(not np.allclose(u, v, rtol=1e-6, atol=0, equal_nan=True)
                  for u, v in zip(subs[0], subs[1], strict=True))
    if depends:
        raise _fail(scn, backend, "a NaN/inf input gives non-finite entries in its own slot "
                    "(the result depends on it: the numpy backend's results with it set "
                    "to 1 and 3 differ)", _show(out if len(out) > 1 else out[0]),
                    inputs=slot)


# ---------------------------------------------------------------- agreement
def _agree(a: Array, b: Array) -> bool:
    """The same non-finite entries, and every finite entry within
    ``64·n·eps`` of the other relative to the larger (a screen: a
    disagreement is settled by the exact reference)."""
    n = max(a.shape[-1], 1)
    tol = 64 * n * ref.eps_of(a.dtype)
    if not (np.array_equal(np.isnan(a), np.isnan(b))
            and np.array_equal(np.isinf(a), np.isinf(b))):
        return False
    fin = np.isfinite(a) & np.isfinite(b)
    with np.errstate(all="ignore"):
        d = np.abs(a[fin].astype(np.complex128) - b[fin])
        m = np.maximum(np.abs(a[fin].astype(np.complex128)), np.abs(b[fin].astype(np.complex128)))
    return bool(np.all(d <= tol * m + float(np.finfo(a.dtype).tiny)))


def _check_agreement(scn: Scenario, backend: BackendArg, available: Any) -> None:
    """Large graded matrices: the backend against the ``numpy`` backend; a
    disagreement is settled by the exact (60-digit) reference, and the one
    that breaks the contract is reported (either may)."""
    if backend_label(backend) == "numpy":
        return
    got = call_op(scn.op, backend, scn.inputs, "agreement")
    base = call_op(scn.op, "numpy", scn.inputs, "agreement")
    if scn.op == "frobenius_grad":
        X = scn.inputs["X"]
        if not _finite(scn.inputs):
            return
        tol = 16 * ref.eps_of(X.dtype) * X.shape[0]
        if not np.allclose(got[0], base[0], rtol=0, atol=tol):
            raise _fail(scn, backend, f"agreement with the numpy backend to {tol:.3g} absolute "
                        "per entry (a few ulps of ‖G‖_F = 1)",
                        f"{_show(got[0])} vs numpy {_show(base[0])}")
        return
    if scn.op == "charpoly_deriv":
        for who, res in ((backend, got), ("numpy", base)):
            for r in res:
                if np.isnan(r).any() and _finite(scn.inputs):
                    raise _fail(scn, who, "(c): no NaN from finite input", _show(r))
        return
    if _agree(got[0], base[0]):
        return
    A = scn.inputs["A"]
    det, C = gr.exact_det_grad(A)
    sig = _clamped_sigmas(_equilibrated_float(A), None)
    for who, res in ((backend, got), ("numpy", base)):
        if scn.op == "det_grad":
            verdict = gr.det_grad_verdict(A, res[0], exact=(det, C), sigmas=sig)
        else:
            with mpmath.workdps(ref.DPS):
                cplx = bool(np.iscomplexobj(A))
                G = None if det == 0 else [[mpmath.conj(v / det) if cplx else v / det
                                            for v in row] for row in C]
            verdict = gr.logdet_grad_verdict(A, res[0], exact=G, singular=G is None)
        if not verdict.ok:
            raise _contract_failure(
                scn, who, verdict, f"{scn.op} (backends {backend_label(backend)!r} and "
                "'numpy' disagree)", res)


# =============================================================== driver
@dataclass
class FuzzResult:
    """What :func:`fuzz` did: examples run per backend and check, the first
    (shrunk) failure, if any, and what it takes to repeat the run: the
    ``seed``, the ``rounds`` begun and a ``digest`` of every example run
    (the same seed, backends, operations and properties give the same
    examples in the same order, whatever the machine's speed)."""

    counts: dict[str, dict[str, int]]
    failure: Mismatch | None = None
    error: BaseException | None = None
    seconds: float = 0.0
    seed: int = 0
    rounds: int = 0
    digest: str = ""

    @property
    def ok(self) -> bool:
        return self.failure is None and self.error is None


def fuzz(seconds: float, backends: Sequence[BackendArg] | None = None, *,
         checks: Sequence[str] = CHECKS, ops: Sequence[str] = OPS,
         progress: Callable[[str], None] | None = None, seed: int = 0,
         examples_per_round: int = 10, progress_every: float = 5.0,
         max_rounds: int | None = None) -> FuzzResult:
    """Run the adversarial scenarios against ``backends`` (names or instances;
    default every available one) for about ``seconds`` (or ``max_rounds``
    rounds, whichever ends first).

    Rounds of ``examples_per_round`` hypothesis examples per backend, round
    ``i`` seeded ``seed·100003 + i`` for every backend, until the time is
    up; a failure is shrunk to a minimal example, reported in the result,
    and ends the run.  The examples depend on the seed only, not on timing
    (a slower machine runs fewer rounds of the same sequence).
    """
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"seconds must be a positive number, not {seconds!r}")
    targets, available = _fuzz_targets(backends)
    counts: dict[str, dict[str, int]] = {backend_label(b): {} for b in targets}
    start = time.perf_counter()
    run = _FuzzRun(targets, available, _strategies_per_backend(targets, checks, ops), counts,
                   start, start + seconds, examples_per_round, progress, progress_every,
                   max_rounds)
    result = FuzzResult(counts, seed=seed)
    try:
        run.until_deadline(seed)
    except Mismatch as exc:
        result.failure = exc
    except HypothesisException as exc:  # e.g. Flaky: a failure that did not reproduce
        result.error = exc
    result.seconds = time.perf_counter() - start
    result.rounds = run.rounds
    result.digest = run.digest.hexdigest()
    return result


def _fuzz_targets(backends: Sequence[BackendArg] | None) -> tuple[list[BackendArg], list[str]]:
    """(the backends to fuzz: ``backends``, default every available one but
    the CuPy-array ones; the names of every available backend)."""
    import matgrad

    infos = {b.name: b for b in matgrad.list_backends()}
    available = [n for n, b in infos.items() if b.available]
    targets: list[BackendArg] = list(backends) if backends else \
        [n for n in available if "cupy" not in infos[n].array_modules]
    return targets, available


def _strategies_per_backend(targets: Sequence[BackendArg], checks: Sequence[str],
                            ops: Sequence[str]) -> dict[str, st.SearchStrategy[Scenario]]:
    """The scenarios to draw for each target, by backend name."""
    strategies: dict[str, st.SearchStrategy[Scenario]] = {}
    for b in targets:
        label = backend_label(b)
        # agreement is with the numpy backend: nothing to compare numpy itself with
        mine = [c for c in checks if not (c == "agreement" and label == "numpy")] or list(checks)
        strategies[label] = scenarios(mine, ops)
    return strategies


@dataclass
class _FuzzRun:
    """A :func:`fuzz` run under way: what runs where until when, the examples
    run so far (``counts``: per backend and check) and progress reporting."""

    targets: list[BackendArg]
    available: list[str]
    strategies: dict[str, st.SearchStrategy[Scenario]]
    counts: dict[str, dict[str, int]]
    start: float
    deadline: float
    examples_per_round: int
    progress: Callable[[str], None] | None
    progress_every: float
    max_rounds: int | None = None
    failing: bool = False  # a failure is being shrunk: run past the deadline
    last_report: float = field(init=False)
    rounds: int = 0
    digest: Any = field(default_factory=hashlib.sha256)

    def __post_init__(self) -> None:
        self.last_report = self.start

    def until_deadline(self, seed: int) -> None:
        """One round per backend in turn until the deadline (or
        ``max_rounds``), round ``i`` seeded ``seed·100003 + i``; then a final
        progress report.  A failure raises (:class:`Mismatch`, shrunk)."""
        round_no = 0
        while time.perf_counter() < self.deadline and (self.max_rounds is None
                                                       or round_no < self.max_rounds):
            self.rounds = round_no + 1
            for backend in self.targets:
                if time.perf_counter() >= self.deadline:
                    break
                self.one_round(backend, seed * 100003 + round_no)
                self.report()
            round_no += 1
        self.report(final=True)

    def one_round(self, backend: BackendArg, round_seed: int) -> None:
        """``examples_per_round`` hypothesis examples on ``backend`` (none
        once past the deadline, unless shrinking a failure)."""
        label = backend_label(backend)

        @hypothesis_seed(round_seed)
        @settings(max_examples=self.examples_per_round, deadline=None, database=None,
                  derandomize=False, suppress_health_check=list(HealthCheck),
                  phases=[Phase.generate, Phase.shrink], report_multiple_bugs=False,
                  verbosity=Verbosity.quiet, print_blob=False)
        @given(scn=self.strategies[label])
        def body(scn: Scenario) -> None:
            if not self.failing and time.perf_counter() > self.deadline:
                return
            if not self.failing:  # what ran, in order (shrinking is deterministic too)
                self.digest.update(_scenario_key(label, scn))
            try:
                run_scenario(scn, backend, self.available)
            except Mismatch as exc:
                self.failing = True
                exc.found_on = label
                raise
            self.counts[label][scn.check] = self.counts[label].get(scn.check, 0) + 1

        body()

    def report(self, final: bool = False) -> None:
        """Pass the examples run so far to ``progress``: every
        ``progress_every`` seconds, and at the end if anything ran since."""
        now = time.perf_counter()
        if self.progress is None or not ((final and now > self.last_report)
                                         or now - self.last_report >= self.progress_every):
            return
        self.last_report = now
        parts = []
        for label, per in self.counts.items():
            done = ", ".join(f"{k} {c}" for k, c in sorted(per.items()))
            parts.append(f"{label}: {sum(per.values())} ({done})" if per else f"{label}: 0")
        self.progress(f"[{now - self.start:6.1f}s] " + "; ".join(parts))


def _scenario_key(label: str, scn: Scenario) -> bytes:
    """The bytes that identify one example (for :attr:`FuzzResult.digest`)."""
    parts = [label, scn.check, scn.op, scn.kind, repr(sorted(
        (k, v) for k, v in scn.params.items() if not isinstance(v, np.ndarray)))]
    head = "|".join(parts).encode()
    return head + b"".join(k.encode() + str(v.dtype).encode() + v.tobytes()
                           for k, v in scn.inputs.items())


def iter_failures(result: FuzzResult) -> Iterator[str]:
    """Human-readable lines describing ``result``'s failure, if any."""
    if result.failure is not None:
        yield from str(result.failure).splitlines()
    elif result.error is not None:
        yield f"{type(result.error).__name__}: {result.error}"
