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


def test_integral_numbers_are_accepted_as_ints() -> None:
    """Any integral number but a boolean (NumPy integers, ``__index__``);
    stored as a Python int."""

    class Seven:
        def __index__(self) -> int:
            return 7

    try:
        for value in (np.int64(8), np.int32(9), np.uint8(10), Seven()):
            matgrad.config.scaling_block = value  # type: ignore[assignment]
            assert type(matgrad.config.scaling_block) is int
            assert matgrad.config.scaling_block == int(value.__index__())
        with matgrad.config.override(numba_threads=np.int64(2)) as c:
            assert type(c.numba_threads) is int and c.numba_threads == 2
        for bad in (np.bool_(True), np.float64(8.0), 8.0, np.int64(0), np.array([8]), None):
            with pytest.raises(ValueError, match="positive int"):
                matgrad.config.scaling_block = bad  # type: ignore[assignment]
    finally:
        matgrad.config.reset()
    assert matgrad.config == matgrad.Config()


def test_unknown_names_in_override_are_a_clear_error() -> None:
    before = dataclasses.asdict(matgrad.config)
    with pytest.raises(TypeError, match=r"unknown setting 'nope'; settings: .*det_lapack_min_n.*"
                                        r"numba_threads"), matgrad.config.override(nope=1):
        pass
    # checked before anything is set: the valid name beside it is not applied
    with pytest.raises(TypeError, match="'nope', 'other'"), \
            matgrad.config.override(det_lapack_min_n=2, nope=1, other=2):
        pass
    with pytest.raises(ValueError, match="positive int"), \
            matgrad.config.override(det_lapack_min_n=2, scaling_block=0):
        pass
    assert dataclasses.asdict(matgrad.config) == before


def test_thread_count_is_bounded() -> None:
    import os

    from matgrad._config import max_threads

    assert max_threads() == max(8, 4 * (os.cpu_count() or 1))
    with matgrad.config.override(numba_threads=max_threads()):
        pass
    for bad in (max_threads() + 1, 100_000):
        with pytest.raises(ValueError, match=rf"at most {max_threads()}"):
            matgrad.config.numba_threads = bad
        with pytest.raises(ValueError, match="at most"), \
                matgrad.config.override(numba_threads=bad):
            pass
    assert matgrad.config.numba_threads == matgrad.Config().numba_threads


def test_listeners_hear_changes_of_the_process_wide_config_only() -> None:
    from matgrad import _config

    heard: list[str] = []
    _config.on_change(heard.append)
    try:
        matgrad.Config().scaling_block = 3  # another instance: not the process's settings
        assert heard == []
        same = matgrad.config.det_lapack_min_n
        matgrad.config.det_lapack_min_n = same  # no change, no call
        assert heard == []
        with matgrad.config.override(det_lapack_min_n=same + 1):
            assert heard == ["det_lapack_min_n"]
        assert heard == ["det_lapack_min_n"] * 2  # restored
        matgrad.config.scaling_block = 5
        matgrad.config.reset()
        assert heard == ["det_lapack_min_n"] * 2 + ["scaling_block"] * 2
    finally:
        _config._listeners.remove(heard.append)
        matgrad.config.reset()


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
    monkeypatch.setenv("NUMBA_NUM_THREADS", "100000")  # capped like an assignment
    from matgrad._config import max_threads

    assert matgrad.Config().numba_threads == max_threads()


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


def test_every_setting_is_read_by_the_code() -> None:
    """A setting nobody reads is a knob that tests could set and believe
    they exercise: each one must be read (``config.<name>``) by matgrad or
    a built-in backend outside the config module itself."""
    from pathlib import Path

    root = Path(matgrad.__file__).parent.parent
    sources = [p for d in ("matgrad", "backends") for p in (root / d).rglob("*.py")
               if p.name != "_config.py"]
    text = "\n".join(p.read_text(encoding="utf-8") for p in sources)
    unread = [f.name for f in dataclasses.fields(matgrad.Config)
              if f"config.{f.name}" not in text]
    assert not unread, f"settings no code reads: {unread}"
