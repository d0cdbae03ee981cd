import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

PAGES = ["home", "suites", "review", "simulator-worlds"]


@pytest.mark.parametrize("name", PAGES)
def test_every_page_sends_an_anonymous_visitor_to_login(client, name):
    url = reverse(name)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("name", PAGES)
def test_a_signed_in_user_sees_every_section_in_the_navigation(client, make_user, name):
    client.force_login(make_user(role="viewers"))
    response = client.get(reverse(name))
    assert response.status_code == 200
    html = response.content.decode()
    for label in ("Suites", "Experiments", "Review", "Simulator", "Log out"):
        assert label in html
    assert 'aria-current="page"' in html


def test_the_login_page_is_public_and_logs_a_user_in(client, make_user):
    make_user("bob", password="correct-horse-battery")
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b'name="password"' in page.content

    wrong = client.post(reverse("login"), {"username": "bob", "password": "nope"})
    assert wrong.status_code == 200
    assert b"didn't match" in wrong.content

    right = client.post(reverse("login"), {"username": "bob", "password": "correct-horse-battery"})
    assert right.status_code == 302
    assert client.get(reverse("home")).status_code == 200


def test_logging_out_ends_the_session(client, make_user):
    client.force_login(make_user())
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 302


def test_a_username_is_escaped_in_the_page(client, make_user):
    client.force_login(make_user("<script>alert(1)</script>"))
    html = client.get(reverse("home")).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_pages_load_plotly_and_htmx_from_this_site_not_a_cdn(client, make_user):
    client.force_login(make_user())
    html = client.get(reverse("home")).content.decode()
    assert "/static/vendor/htmx-2.0.11.min.js" in html
    assert "cdn" not in html.lower()


def test_plotly_js_is_served_from_the_installed_plotly_package():
    import plotly

    found = finders.find("vendor/plotly.min.js")
    assert found is not None
    assert found.startswith(plotly.__file__.rsplit("/", 1)[0])


@pytest.mark.django_db
def test_static_vendor_files_are_served_without_collectstatic(live_server):
    import urllib.request

    for path in ("/static/vendor/plotly.min.js", "/static/vendor/htmx-2.0.11.min.js"):
        with urllib.request.urlopen(live_server.url + path) as response:
            assert response.status == 200
            assert len(response.read()) > 10_000
