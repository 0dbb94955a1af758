"""A provider that accepts a create but answers too late: the job is neither lost nor sent twice."""

import pytest

from generations.billing.models import CostKind
from generations.jobs import lifecycle
from generations.jobs.lifecycle import GenerationRequest
from generations.providers.openai_videos.client import OpenAIVideosClient
from generations.states import Status
from tests.conftest import drive

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def first_create_times_out(monkeypatch):
    """The first create waits a millisecond for the answer: the request arrives, the answer is lost."""
    real_create = OpenAIVideosClient.create
    calls = []

    def create(self, **kwargs):
        calls.append(kwargs["idempotency_key"])
        if len(calls) == 1:
            self.http.timeout = (5, 0.001)
        return real_create(self, **kwargs)

    monkeypatch.setattr(OpenAIVideosClient, "create", create)
    return calls


def simulator_jobs(backend, prompt):
    videos = backend.client().http.json("GET", "videos", params={"limit": 100})["data"]
    return [v for v in videos if v["prompt"] == prompt]


def test_a_timed_out_create_is_resent_with_the_same_key_and_finds_the_first_job(
    alice, official, first_create_times_out
):
    generation = drive(
        lifecycle.start(
            GenerationRequest(alice, prompt="Late answer", model="sora-2", seconds=4, size="720x1280", backend=official)
        ).generation
    )

    assert generation.status == Status.COMPLETED
    assert len(first_create_times_out) == 2 and len(set(first_create_times_out)) == 1  # same Idempotency-Key
    assert len(simulator_jobs(official, "Late answer")) == 1  # the provider made one video
    assert generation.cost_entries.filter(kind=CostKind.CHARGE).count() == 1


def test_without_idempotency_a_timed_out_create_is_found_in_the_providers_list_not_resent(
    alice, official, first_create_times_out, monkeypatch
):
    official.honours_idempotency_keys = False
    official.save()
    looked_up = []
    real_find = OpenAIVideosClient.find_recent
    monkeypatch.setattr(
        OpenAIVideosClient, "find_recent", lambda self, *args: looked_up.append(args) or real_find(self, *args)
    )

    generation = drive(
        lifecycle.start(
            GenerationRequest(
                alice, prompt="Late answer, no keys", model="sora-2", seconds=4, size="720x1280", backend=official
            )
        ).generation
    )

    assert len(first_create_times_out) == 1, "never sent again"
    assert looked_up, "the answer was lost, so the provider's list was searched"
    assert generation.status == Status.COMPLETED
    assert [v["id"] for v in simulator_jobs(official, "Late answer, no keys")] == [generation.remote_id]


@pytest.fixture
def second_create_times_out(monkeypatch):
    """Every create but the first waits a millisecond for its answer: it arrives, the answer is lost."""
    real_create = OpenAIVideosClient.create
    calls = []

    def create(self, **kwargs):
        calls.append(kwargs["idempotency_key"])
        if len(calls) == 2:
            self.http.timeout = (5, 0.001)
        return real_create(self, **kwargs)

    monkeypatch.setattr(OpenAIVideosClient, "create", create)
    return calls


def test_a_lost_create_never_adopts_the_video_of_another_take_with_the_same_prompt(
    alice, official, second_create_times_out
):
    official.honours_idempotency_keys = False
    official.save()
    request = GenerationRequest(alice, prompt="Two takes", model="sora-2", seconds=4, size="720x1280", backend=official)
    first = drive(lifecycle.start(request).generation)
    second = drive(lifecycle.start(request).generation)  # its create's answer is lost

    assert first.status == second.status == Status.COMPLETED
    assert first.remote_id != second.remote_id, "each take has its own video"
    assert sorted(v["id"] for v in simulator_jobs(official, "Two takes")) == sorted([first.remote_id, second.remote_id])
    assert len(second_create_times_out) == 2, "the lost create was never sent again"
