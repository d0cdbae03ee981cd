"""The simworld command: the JSON contract scripts rely on, list, delete and prune."""

import datetime as dt
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from simulator.models import Issue, User, World


def run(*args):
    out = StringIO()
    call_command("simworld", *args, stdout=out)
    return out.getvalue()


def test_create_prints_one_json_object_with_working_credentials(db):
    data = json.loads(run("create", "--seed", "acme", "--host", "localhost", "--port", "9000", "--json"))
    assert set(data) == {"world", "base_url", "confluence_url", "email", "token"}
    assert data["base_url"] == f"http://localhost:9000/sim/{data['world']}/"
    assert data["confluence_url"] == data["base_url"] + "wiki/"
    user = User.objects.get(world__slug=data["world"], email=data["email"])
    assert user.api_token == data["token"]


def test_create_defaults_to_the_local_dashboard(db):
    data = json.loads(run("create", "--json"))
    assert data["base_url"].startswith("http://127.0.0.1:8000/sim/")


def test_unknown_seed_is_an_error(db):
    with pytest.raises(CommandError):
        run("create", "--seed", "nope", "--json")


def test_list_and_delete(db):
    slug = json.loads(run("create", "--json"))["world"]
    assert slug in run("list")
    world = World.objects.get(slug=slug)
    run("delete", slug)
    assert not World.objects.filter(slug=slug).exists()
    assert not Issue.objects.filter(world_id=world.pk).exists()
    with pytest.raises(CommandError):
        run("delete", slug)


def test_prune_keeps_failed_worlds_templates_and_recent_ones(db):
    slugs = [json.loads(run("create", "--json"))["world"] for _ in range(3)]
    old = timezone.now() - dt.timedelta(days=8)
    World.objects.filter(slug__in=slugs[:2]).update(created_at=old)
    World.objects.filter(slug=slugs[1]).update(outcome="failed")
    run("prune", "--older-than", "7d", "--keep-failed")
    left = set(World.objects.values_list("slug", flat=True))
    assert slugs[0] not in left
    assert {slugs[1], slugs[2]} <= left
    assert World.objects.filter(is_template=True).exists()
