"""The contract suite (``matgrad.testing``), on every registered backend,
against mpmath / exact references."""

from __future__ import annotations

import pytest

from matgrad.testing import BackendContract


class TestContract(BackendContract):
    """Every test of :class:`matgrad.testing.BackendContract`, once per
    registered backend: the ``backend`` fixture of ``tests/conftest.py``
    (an unavailable backend is a skipped parameter with its reason)."""

    @pytest.fixture
    def matgrad_backend(self, backend: str) -> str:
        return backend
