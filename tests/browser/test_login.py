"""The browser fixture itself: a real login through the form and a page that needs it."""

import pytest

pytestmark = pytest.mark.browser


def test_a_user_logs_in_and_sees_the_experiments_page(page, live_server):
    page.goto(f"{live_server.url}/")
    assert page.locator("h1").first.inner_text() == "Experiments"
    assert page.locator(".account .who").inner_text() == "bea"


def test_a_visitor_is_sent_to_the_login_form(browser, live_server):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{live_server.url}/suites/")
    assert "/login/" in page.url
    context.close()
