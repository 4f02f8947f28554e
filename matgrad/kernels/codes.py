"""Integer codes exchanged by the kernels and their launch code, defined once.

They are compile-time constants inside Numba and CUDA kernels (Numba reads a
module global's value when it compiles), and plain integers in the array
code that reads the kernels' results.
"""

from __future__ import annotations

__all__ = [
    "ABSMAX",
    "FALLBACK",
    "FAST",
    "HOST_VALUE",
    "NAN",
    "NONFINITE",
    "OK",
    "SCALED",
    "SCALED_SUMSQ",
    "SKIP",
    "SUMSQ",
    "ZERO",
]

# Status of one slot (matrix) after a per-matrix kernel.
#: The kernel's result is final.
OK = 0
#: Finish this slot on the host (a tiny pivot, or exponents beyond plain
#: power-of-two factors).
FALLBACK = 1
#: A NaN or inf entry (result NaN), or, for ∇log|det|, an exactly zero pivot.
NONFINITE = 2
#: Gradient final, value still to be computed on the host (Numba value kernels).
HOST_VALUE = 3

# Frobenius: what a reduction pass does with a row (slot).
SKIP, SUMSQ, ABSMAX, SCALED_SUMSQ = 0, 1, 2, 3

# Frobenius: how a row of the result is written.
#: ``x / ‖X‖`` in float64
FAST = 0
#: ``(x·2⁻ᵏ) / ‖X·2⁻ᵏ‖``
SCALED = 1
#: ``x`` itself (a zero matrix: zeros keep their signs)
ZERO = 2
#: NaN everywhere (a NaN or inf entry)
NAN = 3
