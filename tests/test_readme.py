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
    # the landing page's examples; the guides' are tests/test_docs.py's
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index: int) -> None:
    if not _runnable(BLOCKS[index]):
        pytest.skip("needs CuPy and a CUDA device, or PyTorch/JAX not installed")
    namespace: dict[str, object] = {}
    # blocks build on each other, as a reader would paste them in order
    for block in BLOCKS[: index + 1]:
        if _runnable(block):
            exec(compile(block, f"README block {index}", "exec"), namespace)


# -- the README's test command is CI's -------------------------------------------
CI_RUN = Path(__file__).parent.parent / ".ci" / "run"
PYPROJECT = Path(__file__).parent.parent / "pyproject.toml"


def _install_section() -> str:
    text = README.read_text(encoding="utf-8")
    return text.split("## Install, run, test", 1)[1].split("\n## ", 1)[0]


def _readme_test_command() -> str:
    """The one README command that runs the suite (comment stripped)."""
    lines: list[str] = [line.split("   #")[0].strip()
                        for block in re.findall(r"```bash\n(.*?)```", _install_section(), re.S)
                        for line in block.splitlines() if "python -m pytest" in line]
    assert len(lines) == 1, lines
    return lines[0]


def _ci_commands() -> list[str]:
    """The lines .ci/run executes (comments and blank lines dropped)."""
    return [line.strip() for line in CI_RUN.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def _extras(spec: str, table: dict[str, list[str]]) -> set[str]:
    """The extras ``spec`` (comma-separated) names, self-references expanded."""
    out: set[str] = set()
    todo = [e.strip() for e in spec.split(",")]
    while todo:
        extra = todo.pop()
        if extra in out:
            continue
        out.add(extra)
        for req in table[extra]:
            m = re.fullmatch(r"matgrad\[(.*)\]", req.strip())
            if m:
                todo += [e.strip() for e in m.group(1).split(",")]
    return out


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    """CI installs and tests exactly as the README tells a user to, and
    installs nothing else before it (a green CI would otherwise hide a
    skipped PyTorch/JAX test for a user who follows the README)."""
    command = _readme_test_command()
    ci = _ci_commands()
    runs = [line for line in ci if line == command or line.startswith(command + " || exit")]
    assert len(runs) == 1, f"{command!r} not run by .ci/run"
    before = ci[: ci.index(runs[0])]
    installs = [line for line in before if "pip install" in line]
    assert installs == ["python -m pip install --quiet --upgrade pip"], installs


def test_readme_test_command_installs_what_the_suite_uses() -> None:
    """The PyTorch and JAX tests (the README's autodiff table among them)
    and the Numba, Dask and benchmark tests must not be skipped for a user
    who follows the README: its command installs every extra they need, and
    pins the PyTorch and JAX releases the adapters are tested against."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    table = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"][
        "optional-dependencies"]
    command = _readme_test_command()
    m = re.search(r'pip install -e "\.\[([^\]]*)\]"', command)
    assert m, command
    assert {"test", "numba", "dask", "bench", "torch", "jax"} <= _extras(m.group(1), table)
    pins = dict(re.findall(r'"?(torch|jax|jaxlib)==([\w.]+)"?', command))
    assert set(pins) == {"torch", "jax", "jaxlib"}, command
    # the README's autodiff table names the releases it was computed with
    autodiff = (Path(__file__).parent / "test_readme_autodiff.py").read_text(encoding="utf-8")
    torch_minor = ".".join(pins["torch"].split(".")[:2])
    jax_minor = ".".join(pins["jax"].split(".")[:2])
    assert f"PyTorch {torch_minor} autograd" in autodiff and f"JAX {jax_minor}" in autodiff
    assert pins["jax"] == pins["jaxlib"]


def test_ci_fuzzes_after_the_suite_with_a_fresh_printed_seed() -> None:
    ci = _ci_commands()
    suite = next(i for i, line in enumerate(ci) if "python -m pytest" in line)
    fuzz = [i for i, line in enumerate(ci) if "matgrad check --fuzz" in line]
    assert len(fuzz) == 1 and fuzz[0] > suite
    line = ci[fuzz[0]]
    assert "secrets.randbelow" in line and 'echo "fuzz seed: $seed"' in line
    assert re.search(r'matgrad check --fuzz \d+ --seed "\$seed"', line)
