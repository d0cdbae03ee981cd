import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from experiments.roles import EDIT_SUITE, LAUNCH_EXPERIMENT, REVIEW_EPISODE


@pytest.mark.django_db
def test_migrate_creates_the_three_role_groups():
    assert set(Group.objects.values_list("name", flat=True)) >= {"operators", "reviewers", "viewers"}


def test_operators_launch_and_edit_reviewers_only_review_viewers_only_read(make_user):
    operator = make_user("o", role="operators")
    reviewer = make_user("r", role="reviewers")
    viewer = make_user("v", role="viewers")
    assert operator.has_perms([LAUNCH_EXPERIMENT, EDIT_SUITE, REVIEW_EPISODE])
    assert reviewer.has_perm(REVIEW_EPISODE)
    assert not reviewer.has_perm(LAUNCH_EXPERIMENT)
    assert not reviewer.has_perm(EDIT_SUITE)
    assert not any(viewer.has_perm(p) for p in (LAUNCH_EXPERIMENT, EDIT_SUITE, REVIEW_EPISODE))


def test_bootstrap_creates_a_demo_operator_whose_printed_password_logs_in(db, client, capsys):
    call_command("bootstrap", "--demo-user")
    out = capsys.readouterr().out
    password = out.split("password:")[1].split()[0]
    assert client.login(username="demo", password=password)

    call_command("bootstrap", "--demo-user")  # a second run keeps the same login
    again = capsys.readouterr().out
    assert again.split("password:")[1].split()[0] == password
    from django.contrib.auth.models import User

    demo = User.objects.get(username="demo")
    assert demo.has_perm(LAUNCH_EXPERIMENT)
    assert User.objects.filter(username="demo").count() == 1


def test_the_role_command_grants_and_removes_a_role(make_user, capsys):
    user = make_user("carol")
    call_command("role", "carol", "reviewers")
    assert "reviewers" in capsys.readouterr().out
    user.refresh_from_db()
    assert user.groups.filter(name="reviewers").exists()
    call_command("role", "carol", "reviewers", "--remove")
    assert "no role" in capsys.readouterr().out


def test_the_role_command_names_a_missing_user(db):
    with pytest.raises(CommandError, match="no user named 'ghost'"):
        call_command("role", "ghost", "viewers")


def test_bootstrap_loads_the_acme_seed_and_the_builtin_suites_once(db, capsys):
    from experiments.models import TaskSuite
    from simulator.models import World

    call_command("bootstrap")
    first = capsys.readouterr().out
    call_command("bootstrap")
    again = capsys.readouterr().out
    assert "simulator seed: acme" in first
    assert "task suite: atlassian-core (created)" in first
    assert "task suite: atlassian-core (unchanged)" in again
    assert World.objects.filter(seed="acme", is_template=True).count() == 1
    assert set(TaskSuite.objects.values_list("name", flat=True)) >= {"atlassian-core", "jira-workflows"}
