"""The README's Python examples run and say what they claim."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def _runnable(block: str) -> bool:
    """A block that needs CuPy runs only where CuPy (and a GPU) is; one that
    needs PyTorch or JAX only where they are installed."""
    for framework in ("torch", "jax"):
        if f"import {framework}" in block and importlib.util.find_spec(framework) is None:
            return False
    if "import cupy" not in block:
        return True
    import matgrad

    return importlib.util.find_spec("cupy") is not None and any(
        b.name == "cupy" and b.available for b in matgrad.list_backends()
    )


def test_readme_has_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index: int) -> None:
    if not _runnable(BLOCKS[index]):
        pytest.skip("needs CuPy and a CUDA device, or PyTorch/JAX not installed")
    namespace: dict[str, object] = {}
    # blocks build on each other, as a reader would paste them in order
    for block in BLOCKS[: index + 1]:
        if _runnable(block):
            exec(compile(block, f"README block {index}", "exec"), namespace)
