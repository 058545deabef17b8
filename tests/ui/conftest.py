"""Fixtures of the browser stories: the relay of the SDK tests, Debian's Chromium, pages.

- ``mock``, ``relay`` — one mock upstream and one relaybox on a fresh data dir per run, exactly
  as in tests/sdk (``conftest.py`` and ``harness.py`` there are reused, not copied);
- ``browser``         — headless ``/usr/bin/chromium`` (or ``$CHROMIUM``) through Playwright;
  never a downloaded browser;
- ``page``            — a fresh browser context (no cookies) at 1280×800 per test, whose
  base URL is the relay; a Content-Security-Policy violation or an uncaught script error on
  the page fails the test;
- ``login(page, key)``, ``logged_in`` — log in through the login form (``logged_in`` is a
  ``page`` already on the dashboard);
- ``shot(page, name)`` — screenshots at desktop (1280×800) and phone (390×844) width into
  ``$UI_SCREENSHOTS`` (default: a temp dir, printed at the end of the run);
- ``admin`` — ``relay.admin`` (the admin API with the admin key as a bearer token).

A failed test also leaves ``FAILED-<test>.png`` in the screenshot folder.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

SDK_DIR = Path(__file__).resolve().parents[1] / "sdk"
sys.path.insert(0, str(SDK_DIR))

from harness import ADMIN_KEY, Relay  # noqa: E402

from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright  # noqa: E402


def _load_sdk_conftest() -> Any:
    # Imported under another name: both folders' conftest modules would otherwise be "conftest".
    spec = importlib.util.spec_from_file_location("sdk_conftest", SDK_DIR / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_sdk = _load_sdk_conftest()
mock = _sdk.mock
relay = _sdk.relay

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
expect.set_options(timeout=10_000)


def screenshot_dir() -> Path:
    configured = os.environ.get("UI_SCREENSHOTS")
    path = Path(configured) if configured else Path(tempfile.gettempdir()) / "relaybox-ui-screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def screenshots() -> Path:
    path = screenshot_dir()
    if not os.environ.get("UI_SCREENSHOTS"):
        # The default folder holds this run's pictures only.
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.exit(f"Chromium not found at {CHROMIUM}: `apt-get install chromium` (or set $CHROMIUM)", returncode=1)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


class PageProblems:
    """What the browser reported that no story should ever see: CSP refusals, script errors."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def console(self, message: Any) -> None:
        text = message.text
        if message.type == "error" and ("Content Security Policy" in text or text.startswith("Refused to")):
            self.messages.append(f"console: {text}")

    def page_error(self, error: Any) -> None:
        self.messages.append(f"uncaught: {error}")


def new_context(browser: Browser, relay: Relay) -> BrowserContext:
    return browser.new_context(base_url=relay.url, viewport=DESKTOP, locale="en-US", timezone_id="UTC")


@pytest.fixture
def page(browser: Browser, relay: Relay, screenshots: Path, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = new_context(browser, relay)
    page = context.new_page()
    problems = PageProblems()
    page.on("console", problems.console)
    page.on("pageerror", problems.page_error)
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        try:
            page.screenshot(path=str(screenshots / f"FAILED-{request.node.name}.png"), full_page=True)
        except Exception:  # noqa: BLE001 - a failed test's picture is a bonus, never a second error
            pass
    context.close()
    assert not problems.messages, "the page reported problems:\n" + "\n".join(problems.messages)


def login(page: Page, key: str = ADMIN_KEY) -> Page:
    """Logs in through the form and waits for the dashboard."""
    page.goto("/#/login")
    page.get_by_label("Admin key").fill(key)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    return page


@pytest.fixture(name="login")
def login_fixture() -> Callable[..., Page]:
    return login


@pytest.fixture
def logged_in(page: Page) -> Page:
    return login(page)


@pytest.fixture
def admin(relay: Relay) -> Callable[..., Any]:
    return relay.admin


@pytest.fixture
def shot(screenshots: Path) -> Callable[[Page, str], list[Path]]:
    """shot(page, "logs") → logs-desktop.png and logs-phone.png (full page), viewport restored."""

    def take(page: Page, name: str) -> list[Path]:
        before = page.viewport_size or DESKTOP
        saved = []
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            page.wait_for_timeout(250)  # charts redraw at the new width
            path = screenshots / f"{name}-{label}.png"
            page.screenshot(path=str(path), full_page=True)
            saved.append(path)
        page.set_viewport_size(before)
        return saved

    return take


@pytest.fixture(autouse=True)
def _relay_log_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """Remember where the relay's log stood when the test began (see the hook below)."""
    if "relay" in request.fixturenames:
        relay = request.getfixturevalue("relay")
        request.node._relay_log = (relay, relay.stderr_size())  # type: ignore[attr-defined]
    yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """The report of each phase is kept on the item (the ``page`` fixture reads it), and a failed
    test's report carries the relay's log lines written during the test."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    relay_log = getattr(item, "_relay_log", None)
    if report.when == "call" and report.failed and relay_log is not None:
        relay, start = relay_log
        text = relay.stderr_tail(start)
        if text:
            report.sections.append(("relaybox log during this test", text))
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    pictures = sorted(screenshot_dir().glob("*.png"))
    if pictures:
        terminalreporter.write_line(f"UI screenshots ({len(pictures)}): {screenshot_dir()}")
