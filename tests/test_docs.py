"""The documentation site: its examples run, it builds with warnings as
errors, every public name has its API entry, and the built pages open in a
real headless browser.

The browser test needs Debian's ``chromium`` (``apt-get install chromium``);
without it the test is skipped, unless ``MATGRAD_REQUIRE_BROWSER=1`` (set by
CI, which installs it) makes that a failure.  Its screenshots go to
``$MATGRAD_DOCS_SCREENSHOTS`` (default: the test's temporary directory).
"""

from __future__ import annotations

import functools
import http.server
import importlib
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_readme import _runnable

DOCS = Path(__file__).parent.parent / "docs"
GUIDES = sorted((DOCS / "guide").glob("*.md"))
API_MODULES = ["matgrad", "matgrad.torch", "matgrad.jax", "matgrad.testing"]


def _blocks(page: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", page.read_text(encoding="utf-8"), re.S)


def test_every_guide_is_in_the_site() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    assert len(GUIDES) >= 9
    for page in GUIDES:
        assert f"guide/{page.stem}\n" in index, page.name


@pytest.mark.parametrize("page", GUIDES, ids=[p.stem for p in GUIDES])
def test_guide_examples_run(page: Path) -> None:
    """Each page's Python blocks run in order, in one namespace, as a reader
    would paste them (blocks that need CuPy, PyTorch or JAX only where they
    are installed)."""
    namespace: dict[str, object] = {}
    ran = 0
    for i, block in enumerate(_blocks(page, "python")):
        if _runnable(block):
            exec(compile(block, f"{page.name} block {i}", "exec"), namespace)
            ran += 1
    if not ran:
        pytest.skip(f"{page.name}: no runnable Python block here")


def test_plugin_guide_pyproject_is_complete(tmp_path: Path) -> None:
    """The plugin guide's ``pyproject.toml`` and ``my_backend.py`` build as
    they stand into a wheel that registers the entry point."""
    page = DOCS / "guide" / "plugins.md"
    (toml,) = [b for b in _blocks(page, "toml") if "[project]" in b]
    (module,) = [b for b in _blocks(page, "python") if b.startswith("# my_backend.py")]
    (tmp_path / "pyproject.toml").write_text(toml)
    (tmp_path / "my_backend.py").write_text(module)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                        "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    import zipfile

    with zipfile.ZipFile(wheel) as z:
        (ep,) = [n for n in z.namelist() if n.endswith("entry_points.txt")]
        text = z.read(ep).decode()
    assert re.search(r"\[matgrad\.backends\]\s*mine = my_backend", text), text


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once with ``-W`` (a warning fails the build)."""
    pytest.importorskip("sphinx", reason="the docs extra: pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    r = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q",
                        "-b", "html", str(DOCS), str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-5000:]
    return out


def test_site_builds_without_warnings(site: Path) -> None:
    for page in ["index.html", "api/matgrad.html", "numerics.html", *(
            f"guide/{p.stem}.html" for p in GUIDES)]:
        assert (site / page).is_file(), page


@pytest.mark.parametrize("name", API_MODULES)
def test_every_public_name_has_an_api_entry(site: Path, name: str) -> None:
    module = importlib.import_module(name)
    html = (site / "api" / f"{name}.html").read_text(encoding="utf-8")
    missing = [n for n in module.__all__
               if not n.startswith("__") and f'id="{name}.{n}"' not in html]
    assert not missing, f"{name}: no API entry for {missing}"


# ------------------------------------------------------------ the browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    """The built site over HTTP on localhost (the theme's scripts and styles
    load as they would from a web server)."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", "--window-size=1280,1400", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("page", "expected"), [
    ("index.html", ["Closed-form matrix-calculus gradients", "API reference",
                    "Writing a backend plugin"]),
    ("api/matgrad.html", ["det_grad", "cofactor", "Parameters", "Returns"]),
])
def test_pages_render_in_a_headless_browser(served: str, page: str,
                                            expected: list[str], tmp_path: Path) -> None:
    if CHROMIUM is None:
        if os.environ.get("MATGRAD_REQUIRE_BROWSER") == "1":
            pytest.fail("MATGRAD_REQUIRE_BROWSER=1 but no chromium is installed")
        pytest.skip("no chromium (apt-get install chromium)")
    url = f"{served}/{page}"
    dom = _chromium("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    # the DOM after the theme's scripts ran: the text is there, as rendered
    text = re.sub(r"<[^>]+>", " ", dom.stdout)
    for words in expected:
        assert words in text, f"{page}: {words!r} not rendered"
    assert "bd-sidebar" in dom.stdout  # the theme's layout, not a bare page
    shots = Path(os.environ.get("MATGRAD_DOCS_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    png = shots / (page.replace("/", "_").removesuffix(".html") + ".png")
    r = _chromium(f"--screenshot={png}", url)
    assert r.returncode == 0 and png.stat().st_size > 20_000, r.stderr[-2000:]
