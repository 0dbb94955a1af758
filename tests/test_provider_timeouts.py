"""A provider that accepts a create but answers too late: the job is neither lost nor sent twice."""

import pytest

from generations.billing.models import CostKind
from generations.jobs import lifecycle
from generations.jobs.lifecycle import GenerationRequest
from generations.providers.base import ProviderError
from generations.providers.openai_videos.client import OpenAIVideosClient
from generations.states import Status
from tests.conftest import drive

pytestmark = pytest.mark.django_db(transaction=True)


def answer_lost_on(calls_to_lose: set[int], monkeypatch) -> list[str]:
    """The creates numbered in `calls_to_lose` reach the provider, which makes the job, and their answer
    is lost on the way back (as a read timeout would lose it, but every time, however fast the machine)."""
    real_create = OpenAIVideosClient.create
    calls = []

    def create(self, **kwargs):
        calls.append(kwargs["idempotency_key"])
        job = real_create(self, **kwargs)
        if len(calls) in calls_to_lose:
            raise ProviderError("Read timed out.", code="timeout", transient=True, maybe_sent=True)
        return job

    monkeypatch.setattr(OpenAIVideosClient, "create", create)
    return calls


@pytest.fixture
def first_create_times_out(monkeypatch):
    """The first create arrives, and its answer is lost."""
    return answer_lost_on({1}, monkeypatch)


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
    """The second create arrives, and its answer is lost."""
    return answer_lost_on({2}, monkeypatch)


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
