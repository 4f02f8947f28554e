"""matgrad's backend contract suite, for plugin authors and for matgrad's own tests.

Run it on a backend in one of two ways (``pip install "matgrad[testing]"``
brings pytest and hypothesis):

* a base class, in any test module pytest collects::

      from matgrad.testing import BackendContract
      class TestMine(BackendContract): backend = "mine"

* or, with no file at all, the opt-in pytest plugin (never loaded unless
  asked for)::

      python -m pytest -p matgrad.testing --matgrad-backend mine

``backend`` / ``--matgrad-backend`` name a backend registered through the
``matgrad.backends`` entry-point group (the plugin package installed), as
``matgrad backends`` lists it; the base class also takes a
``matgrad.Backend`` instance.  The suite holds the backend to the same
references and checks as the built-in backends: every ``matgrad check``
case against 60-digit or exact references, the contract checks, the
hostile inputs that broke earlier backends, and graded and scaled inputs
against exact references.

The check functions need no pytest: each ``check_*(backend)`` raises
``AssertionError`` when the backend breaks the contract
(:data:`CONTRACT_CHECKS`, :data:`HOSTILE_CHECKS`, and :data:`GRADED_CHECKS`:
docs/numerics.md §1 on graded and power-of-two scaled inputs against exact
references; :func:`check_case` for one reference case of
:data:`CASE_LABELS`).  Only :class:`BackendContract` imports pytest, when
it is first used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._check import CASES, Case, evaluate
from .._reference import (
    Score,
    bilinear_error_ratio,
    charpoly_error_ratio,
    det_grad_error_ratio,
    frobenius_error_ratio,
    logdet_grad_error_ratio,
)
from ._checks import (
    CASE_LABELS,
    CONTRACT_CHECKS,
    check_batch_isolation,
    check_case,
    check_charpoly_at_eigenvalues,
    check_charpoly_higher_orders,
    check_det_grad_error,
    check_det_grad_overflow,
    check_det_grad_singular,
    check_det_hvp_singular,
    check_frobenius_hvp_scales,
    check_frobenius_isolation,
    check_frobenius_scales,
    check_frobenius_zero,
    check_second_order_isolation,
    exact_cofactor,
)
from ._graded import (
    GRADED_CHECKS,
    check_graded_charpoly,
    check_graded_det_grad,
    check_graded_logdet_grad,
    check_two_sided_scaling,
)
from ._hostile import (
    HOSTILE_CHECKS,
    KERNEL_CHECKS,
    check_charpoly_far_points,
    check_charpoly_graded_triangular,
    check_charpoly_structured,
    check_complex_beyond_dbl_max,
    check_huge_row_keeps_other_cofactors,
    check_linear_charpoly_silent,
    check_row_scaling_is_exact,
    check_slot_independent_of_batch,
    check_subnormal_matrix,
)

if TYPE_CHECKING:
    import pytest

    from ._suite import BackendContract, resolve_backend

__all__ = [
    "CASES",
    "CASE_LABELS",
    "CONTRACT_CHECKS",
    "GRADED_CHECKS",
    "HOSTILE_CHECKS",
    "KERNEL_CHECKS",
    "BackendContract",
    "Case",
    "Score",
    "bilinear_error_ratio",
    "charpoly_error_ratio",
    "check_batch_isolation",
    "check_case",
    "check_charpoly_at_eigenvalues",
    "check_charpoly_far_points",
    "check_charpoly_graded_triangular",
    "check_charpoly_higher_orders",
    "check_charpoly_structured",
    "check_complex_beyond_dbl_max",
    "check_det_grad_error",
    "check_det_grad_overflow",
    "check_det_grad_singular",
    "check_det_hvp_singular",
    "check_frobenius_hvp_scales",
    "check_frobenius_isolation",
    "check_frobenius_scales",
    "check_frobenius_zero",
    "check_graded_charpoly",
    "check_graded_det_grad",
    "check_graded_logdet_grad",
    "check_huge_row_keeps_other_cofactors",
    "check_linear_charpoly_silent",
    "check_row_scaling_is_exact",
    "check_second_order_isolation",
    "check_slot_independent_of_batch",
    "check_subnormal_matrix",
    "check_two_sided_scaling",
    "det_grad_error_ratio",
    "evaluate",
    "exact_cofactor",
    "frobenius_error_ratio",
    "logdet_grad_error_ratio",
    "resolve_backend",
]

_NEEDS_PYTEST = ("BackendContract", "resolve_backend")


def __getattr__(name: str) -> Any:
    """The pytest-based names, imported on first use."""
    if name in _NEEDS_PYTEST:
        try:
            from . import _suite
        except ImportError as exc:
            if exc.name != "pytest":
                raise
            raise ImportError(
                f"matgrad.testing.{name} needs pytest: pip install 'matgrad[testing]'",
                name="pytest",
            ) from exc
        return getattr(_suite, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ------------------------------------------------------- the pytest plugin
# Active only where asked for: ``-p matgrad.testing`` on the command line or
# ``pytest_plugins = ["matgrad.testing"]`` in a conftest.py (matgrad
# registers no pytest11 entry point, so it is never loaded on its own).
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("matgrad", "matgrad backend contract suite")
    group.addoption(
        "--matgrad-backend", action="append", default=[], dest="matgrad_backends",
        metavar="NAME",
        help="run matgrad's contract suite on the registered backend NAME (repeatable)",
    )


_SELECTED = Path(__file__).with_name("_selected.py")


def pytest_configure(config: pytest.Config) -> None:
    """With ``--matgrad-backend``, add the suite to the run.  When no test
    path was given on the command line, the suite is the whole run: pytest
    would otherwise also collect the current directory (a plugin's own tests
    run twice from its root, or fail to import from elsewhere)."""
    if not config.getoption("matgrad_backends"):
        return
    if config.args_source == config.ArgsSource.ARGS:
        config.args.append(str(_SELECTED))
    else:
        config.args[:] = [str(_SELECTED)]


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> Any:
    """The suite's tests are reported as ``matgrad.testing::…`` wherever
    matgrad is installed."""
    if module_path != _SELECTED:
        return None
    import pytest

    return pytest.Module.from_parent(parent, path=module_path, nodeid="matgrad.testing")
