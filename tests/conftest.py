"""Shared fixtures: named users and backends pointing at the simulator over real HTTP."""

import os

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

SIM_KEY = "sim-local-key"


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.com", "alice-password")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", "bob@example.com", "bob-password")


@pytest.fixture
def sim_openai_url(live_server):
    return f"{live_server.url}/simulator/openai/v1"


@pytest.fixture
def sim_task_url(live_server):
    return f"{live_server.url}/simulator/task/v1"
