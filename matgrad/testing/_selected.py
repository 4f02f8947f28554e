"""The suite collected by ``pytest -p matgrad.testing --matgrad-backend NAME``.

The plugin adds this file to the run when ``--matgrad-backend`` is given;
its name does not match pytest's test-file patterns, so it is never
collected otherwise.
"""

from __future__ import annotations

import pytest

from ._suite import BackendContract, BackendLike, resolve_backend


class TestMatgradContract(BackendContract):
    """The contract suite on each backend named by ``--matgrad-backend``."""

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        names = metafunc.config.getoption("matgrad_backends", default=None) or []
        if "matgrad_backend_name" in metafunc.fixturenames:
            metafunc.parametrize("matgrad_backend_name", names, ids=names)

    @pytest.fixture
    def matgrad_backend(self, matgrad_backend_name: str) -> BackendLike:
        return resolve_backend(matgrad_backend_name)
