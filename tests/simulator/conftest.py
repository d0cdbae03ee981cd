"""Fixtures shared by the simulator's tests: the acme seed, a fresh fork of it, Ada and her client."""

import pytest

ADA = "712020:0a1b2c3d-0001-4e5f-8a9b-acme00000001"


@pytest.fixture
def acme_template(db):
    from simulator.seeding import load_seed

    return load_seed("acme")


@pytest.fixture
def acme(acme_template):
    """A fresh fork of the acme seed."""
    return acme_template.fork()


@pytest.fixture
def ada(acme):
    from simulator.models import User

    return User.objects.get(world=acme, account_id=ADA)


@pytest.fixture
def jira(acme, ada):
    """SimClient as Ada in a fresh acme world."""
    from simulator.client import SimClient

    return SimClient(acme, ada)
