"""Browser fixtures: Debian's headless Chromium, driven by Playwright for Python.

Chromium comes from Debian (``/usr/bin/chromium``), installed by ``tools/setup_chromium.sh``,
which this file runs once when the browser is missing and the tests run as root (as in CI).
Playwright's own browser download is never used. If the browser cannot be had, the browser tests
fail, saying why: they never skip silently.

Screenshots go to ``$MOLEXP_SCREENSHOT_DIR`` if set, else to a temporary directory; the path is
printed at the end of the test session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[4]
SETUP = ROOT / "tools" / "setup_chromium.sh"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
_SHOTS: list[Path] = []


def _find_chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium") or ""):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The Chromium executable, installed with tools/setup_chromium.sh if missing (as root)."""
    found = _find_chromium()
    if found is not None:
        return found
    if os.geteuid() != 0:
        pytest.fail(
            "the browser tests need Debian's chromium (/usr/bin/chromium), which is missing; "
            f"install it as root with: bash {SETUP}",
            pytrace=False,
        )
    proc = subprocess.run(
        ["bash", str(SETUP)], capture_output=True, text=True, timeout=1200, stdin=subprocess.DEVNULL
    )
    found = _find_chromium()
    if proc.returncode != 0 or found is None:
        pytest.fail(
            f"the browser tests need Debian's chromium, and {SETUP} could not install it "
            f"(exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    """One headless Chromium per module: Playwright's sync API keeps an event loop running in
    this thread until it stops, which would break every asyncio test collected after it."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "the browser tests need Playwright for Python (`pip install playwright`, a development "
            "dependency in hatch.toml); its browser download (`playwright install`) is not needed",
            pytrace=False,
        )
    manager = sync_playwright().start()
    try:
        launched = manager.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
    except Exception as exc:
        manager.stop()
        pytest.fail(f"Chromium ({chromium_path}) did not start: {exc}", pytrace=False)
    yield launched
    launched.close()
    manager.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser page (its own cookies), 1280x900; fails the test on any page error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    new_page = context.new_page()
    errors: list[str] = []
    new_page.on("pageerror", lambda exc: errors.append(str(exc)))

    def on_dialog(dialog: Any) -> None:
        errors.append(f"a dialog opened: {dialog.message}")
        dialog.dismiss()

    new_page.on("dialog", on_dialog)
    yield new_page
    context.close()
    assert not errors, errors


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots are saved (kept after the run; printed at the end)."""
    configured = os.environ.get("MOLEXP_SCREENSHOT_DIR")
    directory = Path(configured) if configured else tmp_path_factory.mktemp("screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    _SHOTS.append(directory)
    return directory


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for directory in _SHOTS:
        count = len(list(directory.glob("*.png")))
        terminalreporter.write_line(f"browser test screenshots ({count}): {directory}")
