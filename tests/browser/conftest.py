"""Headless Chromium for the browser tests: Python playwright driving Debian's chromium.

`page` is a fresh browser page already logged in (as `browser_user`) on the live server; tests
call ``page.goto(live_server.url + path)``. Chromium comes from the system (``apt-get install
chromium``), never from ``playwright install``; set CHROMIUM to use another binary. Without a
chromium binary the browser tests are skipped locally and fail in CI, where one must exist.
"""

import os
import shutil

import pytest

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"no chromium at {CHROMIUM}: .ci/run installs it with apt-get")
        pytest.skip("no chromium binary (apt-get install chromium)")
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still synchronous and sequential, so Django's async guard does not apply to them.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def browser_user(transactional_db, make_user):
    return make_user("bea", role="operators", password="browser-test-password")


@pytest.fixture
def page(browser, live_server, browser_user):
    """A page logged in as ``browser_user`` through the real login form."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", browser_user.username)
    page.fill("input[name=password]", "browser-test-password")
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)
    yield page
    context.close()
