"""A cached JQL query's SQL runs prepared on PostgreSQL (simulator.prepared.prepared_query): the
same issues as the ORM finds, with parameters typed as their literals would be, within a bound
of statements per connection."""

import datetime as dt
import decimal

import pytest
from django.db import connection, transaction

from simulator import prepared
from simulator.jql import compile_jql
from simulator.jql.compiler import _Compiled
from simulator.models import Issue
from tests.simulator.test_jql import CLAUSES, build_world, keys

pytestmark = pytest.mark.django_db

FRACTIONS = [
    ("cf[10016] = 1.5", ["OPS-5"]),
    ("cf[10016] < 1.6 AND cf[10016] > 1.4", ["OPS-5"]),
    ("cf[10016] > 1.5 AND project = OPS", ["OPS-1", "OPS-2", "OPS-3"]),
]


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        w = build_world("jql-prepared")
        yield w
        transaction.set_rollback(True)


def prepared_keys(w, jql, start=0, count=100):
    query = compile_jql(w.world, jql, user=w.alice)
    query.compiled = _Compiled(query.where, query.ordering)  # as a query cached on the world is
    return [issue.key for issue in query.issue_rows(start, count)]


@pytest.mark.parametrize(("jql", "expected"), CLAUSES + FRACTIONS)
def test_a_prepared_search_finds_what_the_orm_finds(world, jql, expected):
    assert prepared_keys(world, jql) == keys(world, jql) == expected
    assert prepared_keys(world, jql) == expected  # and again, from the statement prepared above
    assert prepared_keys(world, jql, start=1, count=2) == expected[1:3]


def test_a_connection_keeps_a_bounded_number_of_search_statements(world, monkeypatch):
    monkeypatch.setattr(prepared, "QUERY_STATEMENTS", 3)
    for jql, expected in CLAUSES[:12]:
        assert prepared_keys(world, jql) == expected
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'simq_%%'")
            assert cursor.fetchone()[0] <= 3


@pytest.mark.parametrize(
    ("value", "pg_type"),
    [
        (True, "boolean"),
        (7, "bigint"),
        (2.5, "numeric"),
        (decimal.Decimal("2.5"), "numeric"),
        ("x", "text"),
        (dt.datetime(2026, 1, 5, tzinfo=dt.UTC), "timestamptz"),
        (dt.datetime(2026, 1, 5), "timestamp"),
        (dt.date(2026, 1, 5), "date"),
    ],
)
def test_parameters_are_typed_as_their_literals(value, pg_type):
    assert prepared._parameter_types([value]) == (pg_type,)


@pytest.mark.parametrize("value", [None, [1, 2], 2**64, float("nan")])
def test_a_value_without_a_literal_type_is_not_prepared(value):
    assert prepared._parameter_types([value]) is None


def test_a_text_postgresql_refuses_to_prepare_runs_as_it_is(world):
    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL prepares")
    # A str parameter is text once prepared, and jsonb @> text does not exist; as a literal it
    # is of unknown type and becomes jsonb.
    sql = f"SELECT count(*) FROM {Issue._meta.db_table} WHERE %s::text <> '' AND '{{}}'::jsonb @> %s"  # noqa: S608
    with transaction.atomic():
        assert prepared.prepared_query(sql, ["a", "{}"]) == sql
        with connection.cursor() as cursor:  # the transaction is still usable
            cursor.execute(sql, ["a", "{}"])
            assert cursor.fetchone()[0] >= 7
