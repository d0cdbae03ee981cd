"""Test set-up shared by every test module.

Tests run on whatever DATABASE_URL / CELERY_BROKER_URL say (PostgreSQL + Redis in CI) and on the
embedded defaults otherwise. Local state goes to a throw-away var folder so a test run never
touches the dashboard's own database or broker folder (a running `make demo` worker would
otherwise steal the tests' Celery messages).
"""

import os
import tempfile

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlvr_site.settings")
os.environ.setdefault("RLVR_VAR_DIR", tempfile.mkdtemp(prefix="rlvr-test-var-"))

import django.conf

django.conf.settings.DATABASES  # noqa: B018 - load settings now; pytest-django then sets Django up

import pytest  # noqa: E402

from tests.workers import celery_worker  # noqa: E402, F401 - fixture


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives headless Chromium (tests/browser/)")


@pytest.fixture
def make_user(db):
    from django.contrib.auth import get_user_model

    from experiments.roles import add_user_to_role

    def make(username="alice", role=None, password="a-long-test-password"):
        user = get_user_model().objects.create_user(username=username, password=password)
        if role:
            add_user_to_role(user, role)
        return user

    return make


@pytest.fixture
def operator_client(client, make_user):
    client.force_login(make_user("olivia", role="operators"))
    return client


@pytest.fixture
def viewer(client, make_user):
    """A client logged in as a member of viewers: may read every page, change nothing."""
    client.force_login(make_user("vera", role="viewers"))
    return client
