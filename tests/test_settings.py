import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

from tests.workers import REPO


def run_settings(
    env_overrides, code="from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])"
):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DEBUG", "SECRET_KEY"}
    }
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); " + code],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_without_a_database_url_the_embedded_default_is_sqlite_under_var(tmp_path):
    done = run_settings(
        {"RLVR_VAR_DIR": str(tmp_path)},
        "from django.conf import settings; d = settings.DATABASES['default'];"
        "print(d['NAME']); print(settings.CELERY_BROKER_URL); print(settings.MEDIA_ROOT)",
    )
    assert done.returncode == 0, done.stderr
    name, broker, media = done.stdout.split()
    assert name == str(tmp_path / "db.sqlite3")
    assert broker == "filesystem://"
    assert media == str(tmp_path / "media")
    assert (tmp_path / "broker" / "queue").is_dir()


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    done = run_settings({"RLVR_VAR_DIR": str(tmp_path), "DEBUG": "0"})
    assert done.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in done.stderr


def test_a_malformed_boolean_is_named_in_the_error(tmp_path):
    done = run_settings({"RLVR_VAR_DIR": str(tmp_path), "DEBUG": "maybe"})
    assert "DEBUG='maybe' is not a boolean" in done.stderr


def test_database_url_selects_postgresql(tmp_path):
    done = run_settings({"RLVR_VAR_DIR": str(tmp_path), "DATABASE_URL": "postgres://u@db.example:5432/rlvr"})
    assert done.stdout.strip() == "django.db.backends.postgresql"


@pytest.mark.django_db
@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3", reason="SQLite only"
)
def test_embedded_sqlite_runs_in_wal_mode():
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
