"""``matgrad.config``: documented tunables, validated, restored by override."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import matgrad


def test_every_setting_is_documented_in_the_class_source() -> None:
    import inspect

    source = inspect.getsource(matgrad.Config)
    for f in dataclasses.fields(matgrad.Config):
        assert f"    {f.name}: int" in source
        before = source.split(f"    {f.name}: int")[0].rstrip().splitlines()[-1].strip()
        assert before.startswith("#:"), f"{f.name} has no doc comment"


def test_unknown_and_invalid_settings_are_errors() -> None:
    with pytest.raises(AttributeError, match=r"no setting 'lapack_min'.*det_lapack_min_n"):
        matgrad.config.lapack_min = 3
    for bad in (0, -1, 2.5, True, "8"):
        with pytest.raises(ValueError, match="positive int"):
            matgrad.config.det_lapack_min_n = bad  # type: ignore[assignment]
    assert matgrad.config.det_lapack_min_n == matgrad.Config().det_lapack_min_n


def test_override_restores_even_after_an_exception() -> None:
    before = dataclasses.asdict(matgrad.config)
    with pytest.raises(RuntimeError), matgrad.config.override(det_lapack_min_n=2,
                                                              scaling_block=8):
        assert matgrad.config.det_lapack_min_n == 2
        raise RuntimeError
    assert dataclasses.asdict(matgrad.config) == before
    with pytest.raises(ValueError), matgrad.config.override(scaling_block=0):
        pass
    assert dataclasses.asdict(matgrad.config) == before


def test_reset_restores_defaults() -> None:
    matgrad.config.charpoly_point_block = 5
    matgrad.config.numba_threads = 7
    matgrad.config.reset()
    assert matgrad.config == matgrad.Config()


def test_thread_count_defaults_to_the_cpus_or_numba_num_threads(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    assert matgrad.Config().numba_threads == cpus
    monkeypatch.setenv("NUMBA_NUM_THREADS", "3")
    assert matgrad.Config().numba_threads == 3
    monkeypatch.setenv("NUMBA_NUM_THREADS", "zero")  # not a count: ignored
    assert matgrad.Config().numba_threads == cpus


def test_a_threshold_changes_the_path_not_the_contract() -> None:
    """Sending a 3x3 batch down the LAPACK path gives the same answer to
    rounding, and each slot still equals its own result alone."""
    A = np.random.default_rng(0).standard_normal((5, 6, 6))
    default = matgrad.det_grad(A, backend="numpy")
    with matgrad.config.override(det_lapack_min_n=2):
        lapack = matgrad.det_grad(A, backend="numpy")
        alone = np.stack([matgrad.det_grad(a, backend="numpy") for a in A])
    np.testing.assert_allclose(lapack, default, rtol=1e-11, atol=1e-13)
    np.testing.assert_array_equal(lapack, alone)
    assert not np.array_equal(lapack, default)  # really another path
