"""Sphinx configuration of matgrad's documentation site.

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html``
(``pip install -e ".[docs]"``).  The API pages are generated from the
public modules' ``__all__`` at each build (:func:`_write_api_pages`), so a
new public name gets its page without anyone listing it here.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import matgrad

project = "matgrad"
author = "the matgrad developers"
copyright = "2026, the matgrad developers"
release = version = matgrad.__version__

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "api/generated"]
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3

html_theme = "pydata_sphinx_theme"
html_title = "matgrad"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}

# numpydoc renders the sections; autosummary only lists and links.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
autosummary_generate = False
autodoc_typehints = "none"  # the signatures are in the rendered docstrings
autodoc_default_options = {"members": False}
# No network in CI: cross-references to NumPy/Python stay plain text.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}

#: The documented modules and the title of their API page.
API_MODULES = {
    "matgrad": "matgrad: the functions, selection and the backend interface",
    "matgrad.torch": "matgrad.torch: differentiable PyTorch functions",
    "matgrad.jax": "matgrad.jax: differentiable JAX functions",
    "matgrad.testing": "matgrad.testing: the contract suite for backends",
}

_HERE = Path(__file__).parent


def _kind(obj: object) -> str:
    if isinstance(obj, type):
        return "autoclass"
    if callable(obj):
        return "autofunction"
    return "autodata"


def _write_api_pages() -> None:
    """One page per public module: every name of its ``__all__``."""
    out = _HERE / "api"
    out.mkdir(exist_ok=True)
    for name, title in API_MODULES.items():
        module = importlib.import_module(name)
        lines = [title, "=" * len(title), "", f".. module:: {name}", ""]
        doc = (module.__doc__ or "").strip().splitlines()
        if doc:
            lines += [doc[0], ""]
        for public in sorted(module.__all__, key=str.lower):
            if public.startswith("__"):
                continue
            obj = getattr(module, public)
            lines += [public, "-" * len(public), "", f".. {_kind(obj)}:: {name}.{public}", ""]
        (out / f"{name}.rst").write_text("\n".join(lines), encoding="utf-8")


_write_api_pages()
