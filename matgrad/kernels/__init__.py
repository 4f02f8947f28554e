"""matgrad's kernel layer: the algorithms the built-in backends share.

For backend authors.  Each algorithm is written once here and the backends
(``matgrad_numpy``, ``matgrad_numba``, ``matgrad_cupy``, ``matgrad_dask``)
keep only launch code: which kernel runs on which array, with which
threads, streams or chunks.  No backend imports another backend's modules;
they all import from here.

* :mod:`~matgrad.kernels.codes`: the integer codes kernels and their launch
  code exchange (a slot's status, the Frobenius passes and write modes).
* :mod:`~matgrad.kernels.scaling`: exact power-of-two scaling (frexp/ldexp,
  mantissa-exponent products), generic over the array namespace (NumPy or
  CuPy arrays).
* :mod:`~matgrad.kernels.scalar`: the per-matrix and per-point algorithms
  (closed-form cofactors, equilibrated Gauss-Jordan, Hyman's recurrence),
  written once as plain Python and compiled for the CPU (Numba) or CUDA
  (numba-cuda) by the explicit factory ``compile_scalar(target)``.
* :mod:`~matgrad.kernels.cofactor`, :mod:`~matgrad.kernels.charpoly`,
  :mod:`~matgrad.kernels.frobenius`: the host algorithms (vectorised
  NumPy/SciPy): the NumPy backend's operations, and the fallbacks and
  pre-processing (Hessenberg reduction, rank-revealing adjugate) of the
  others.
* :mod:`~matgrad.kernels.routing`: array-level routing of the kernel
  backends (which path a slot takes, host fallbacks, the Frobenius passes),
  with each backend's launch functions passed in.

Importing this package imports nothing; the modules import NumPy (and
SciPy for the host algorithms), and Numba only when
``compile_scalar`` compiles.
"""
