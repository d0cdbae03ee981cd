"""Seeds and forks: idempotent loading, cheap forks, preserved keys, fresh credentials."""

from simulator import models as m
from simulator.seeding import load_seed, template_slug


def test_loading_a_seed_twice_gives_the_same_template(acme_template):
    assert load_seed("acme").pk == acme_template.pk
    assert acme_template.slug == template_slug("acme")
    assert m.World.objects.filter(seed="acme", is_template=True).count() == 1


def test_the_acme_seed_has_what_the_demo_needs(acme_template):
    def count(model):
        return model.objects.filter(world=acme_template).count()

    assert count(m.User) >= 10
    assert count(m.Project) == 3
    assert m.Project.objects.filter(world=acme_template).values("workflow").distinct().count() == 3
    assert count(m.Issue) >= 60
    assert count(m.Board) == 2
    assert sorted(m.Sprint.objects.filter(world=acme_template).values_list("state", flat=True)) == [
        "active",
        "closed",
        "future",
    ]
    assert count(m.Space) == 2
    assert count(m.Page) >= 20


def test_a_fork_keeps_ids_keys_and_clock(acme_template, acme):
    def keys(world):
        return list(
            m.Issue.objects.filter(world=world).order_by("ext_id").values_list("ext_id", "key", "summary")
        )

    assert keys(acme) == keys(acme_template)
    assert acme.next_ext_id == acme_template.next_ext_id
    assert acme.now() == acme_template.now()
    assert acme.forked_from == acme_template and not acme.is_template
    child = m.Issue.objects.get(world=acme, key="WEB-2")
    assert child.parent.key == "WEB-1" and child.parent.world_id == acme.pk
    assert {s.world_id for s in child.sprints.all()} == {acme.pk}
    assert m.Space.objects.get(world=acme, key="ENG").homepage.world_id == acme.pk


def test_a_fork_gets_new_api_tokens(acme_template, acme):
    tokens = dict(m.User.objects.filter(world=acme_template).values_list("email", "api_token"))
    for email, token in m.User.objects.filter(world=acme).values_list("email", "api_token"):
        assert token != tokens[email]


def test_a_fork_costs_a_bounded_number_of_queries(acme_template, django_assert_max_num_queries):
    acme_template.fork()  # the first fork in a process reads the template
    with django_assert_max_num_queries(40):
        acme_template.fork()


def test_forks_do_not_share_rows(acme_template):
    a, b = acme_template.fork(), acme_template.fork()
    m.Issue.objects.filter(world=a, key="WEB-1").update(summary="changed in a")
    assert m.Issue.objects.get(world=b, key="WEB-1").summary == "Checkout redesign"


def test_a_fork_copies_every_table_in_the_templates_order(acme_template, acme):
    from simulator.forking import copied_models

    def rows(model, world):
        if any(f.name == "world" for f in model._meta.concrete_fields):
            qs = model.objects.filter(world=world)
        else:  # a many-to-many table, through its owner
            owner = next(f for f in model._meta.concrete_fields if f.is_relation)
            qs = model.objects.filter(**{f"{owner.name}__world": world})
        return qs.order_by("pk")

    for model in copied_models():
        assert rows(model, acme).count() == rows(model, acme_template).count(), model.__name__
    # Keys are new, their order (creation order) is the template's.
    assert [i.key for i in rows(m.Issue, acme)] == [i.key for i in rows(m.Issue, acme_template)]
    assert [p.title for p in rows(m.Page, acme)] == [p.title for p in rows(m.Page, acme_template)]
    fields = ("author__email", "update_author__email", "issue__key", "ext_id", "body")
    assert list(rows(m.Comment, acme).values_list(*fields)) == list(
        rows(m.Comment, acme_template).values_list(*fields)
    )


def test_a_fork_remembers_its_configuration_as_written(acme_template, acme):
    from simulator.world_config import WorldConfig, _rows_of, cached_config

    remembered, read = cached_config(acme), WorldConfig(_rows_of(acme))
    assert [(u.pk, u.account_id, u.api_token) for u in remembered.users] == [
        (u.pk, u.account_id, u.api_token) for u in read.users
    ]
    assert [(p.pk, p.key, p.lead_id, p.workflow_id) for p in remembered.projects] == [
        (p.pk, p.key, p.lead_id, p.workflow_id) for p in read.projects
    ]
    assert sorted((t.pk, t.workflow_id, t.to_status_id) for t in remembered.rows[m.Transition]) == sorted(
        (t.pk, t.workflow_id, t.to_status_id) for t in read.rows[m.Transition]
    )


def test_on_postgresql_a_fork_is_one_copy_statement(acme_template):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        return
    acme_template.fork()  # prepares the statement on this connection
    with CaptureQueriesContext(connection) as queries:
        acme_template.fork()
    # The world's row, the copy, and Django's savepoint around them.
    assert len(queries) <= 4, [q["sql"][:80] for q in queries]
