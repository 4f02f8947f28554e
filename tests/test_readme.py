"""The README's Python examples run and say what they claim."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_has_examples() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index: int) -> None:
    namespace: dict[str, object] = {}
    # blocks build on each other, as a reader would paste them in order
    for block in BLOCKS[: index + 1]:
        exec(compile(block, f"README block {index}", "exec"), namespace)
