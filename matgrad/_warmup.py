"""``matgrad warmup``: compile every backend's kernels ahead of time.

A backend lists its preparation steps through the optional hook
:meth:`matgrad.Backend.warmup_tasks` (none by default); the Numba backend
returns one step per operation path and dtype, each compiling its kernels into
Numba's on-disk cache.  Run it once per environment (for example in a
Dockerfile, see the README) so that no call of a later process waits for a
compile.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np

from ._registry import entries

__all__ = ["DTYPES", "WarmupResult", "parse_dtypes", "run_warmup"]

#: Every dtype matgrad computes in (the default of ``--dtypes``).
DTYPES = ("float64", "float32", "complex64", "complex128")


@dataclass(frozen=True)
class WarmupResult:
    """One step: backend, label, seconds taken, and the error if it failed."""

    backend: str
    label: str
    seconds: float
    error: str = ""


def parse_dtypes(text: str | None) -> list[np.dtype[Any]]:
    """``"float64,float32"`` → dtypes; ``None`` or empty → all four."""
    names = [t.strip() for t in (text or "").split(",") if t.strip()] or list(DTYPES)
    out: list[np.dtype[Any]] = []
    for name in names:
        if name not in DTYPES:
            raise ValueError(f"unknown dtype {name!r}; choose from {', '.join(DTYPES)}")
        dt = np.dtype(name)
        if dt not in out:
            out.append(dt)
    return out


def _bar(total: int, stream: TextIO) -> tuple[Callable[[str], None], Callable[[], None]]:
    """(advance(label), close()) of a progress bar: tqdm's if installed, else
    one plain line per finished step."""
    try:
        from tqdm import tqdm
    except ImportError:
        done = [0]

        def advance(label: str) -> None:
            done[0] += 1
            print(f"[{done[0]}/{total}] {label}", file=stream, flush=True)

        return advance, lambda: None
    bar = tqdm(total=total, file=stream, unit="step", desc="matgrad warmup")

    def step(label: str) -> None:
        bar.set_postfix_str(label, refresh=False)
        bar.update(1)

    return step, bar.close


def run_warmup(
    dtypes: Sequence[np.dtype[Any]],
    backends: Sequence[str] | None = None,
    stream: TextIO | None = None,
) -> list[WarmupResult]:
    """Run every warm-up step of the given (default: every available) backends
    for ``dtypes``, with a progress bar on ``stream`` (default stderr)."""
    stream = sys.stderr if stream is None else stream
    found = entries()
    names = list(backends) if backends else [n for n, e in found.items() if e.available]
    steps: list[tuple[str, str, Callable[[], None]]] = []
    for name in names:
        backend = found[name].backend
        if backend is not None:
            steps += [(name, label, work) for label, work in backend.warmup_tasks(dtypes)]
    advance, close = _bar(len(steps), stream)
    results = []
    try:
        for name, label, work in steps:
            t0 = time.perf_counter()
            error = ""
            try:
                work()
            except Exception as exc:  # noqa: BLE001 - reported, the other steps still run
                error = f"{type(exc).__name__}: {exc}"
            results.append(WarmupResult(name, label, time.perf_counter() - t0, error))
            advance(label)
    finally:
        close()
    return results
