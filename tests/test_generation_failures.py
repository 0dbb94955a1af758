"""Every job ends in a terminal state with a reason, and nothing failed stays charged."""

import time
from decimal import Decimal

import pytest
from django.utils import timezone

from generations.billing.models import CostKind
from generations.jobs import lifecycle, pump
from generations.jobs.lifecycle import GenerationRequest
from generations.jobs.models import Generation
from generations.providers.base import ProviderError
from generations.providers.openai_videos.client import OpenAIVideosClient
from generations.states import Status
from tests.conftest import drive

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_failing_job_ends_failed_with_the_providers_reason_and_is_refunded(alice, aggregator):
    generation = lifecycle.start(
        GenerationRequest(
            alice, prompt="A storm #fail", model="sora-2", seconds=10, size="720x1280", backend=aggregator
        )
    ).generation

    generation = drive(generation)

    assert generation.status == Status.FAILED
    assert "halfway" in generation.error_message
    kinds = dict(generation.cost_entries.values_list("kind", "amount"))
    assert kinds[CostKind.CHARGE] == Decimal("0.12")  # billed when accepted ...
    assert kinds[CostKind.REFUND] == Decimal("0.12")  # ... and given back
    assert generation.charged() == Decimal("0")


def test_a_failed_job_on_the_per_second_backend_is_never_charged(alice, official):
    generation = drive(
        lifecycle.start(
            GenerationRequest(
                alice, prompt="A storm #fail", model="sora-2", seconds=4, size="720x1280", backend=official
            )
        ).generation
    )
    assert generation.status == Status.FAILED
    assert generation.error_code == "video_generation_failed"
    assert not generation.cost_entries.filter(kind__in=[CostKind.CHARGE, CostKind.REFUND]).exists()


def test_a_backend_that_keeps_the_money_for_failures_is_not_refunded(alice, aggregator):
    aggregator.bills_failed_jobs = True
    aggregator.save()
    generation = drive(
        lifecycle.start(
            GenerationRequest(
                alice, prompt="A storm #fail", model="sora-2", seconds=10, size="720x1280", backend=aggregator
            )
        ).generation
    )
    assert generation.status == Status.FAILED
    assert generation.charged() == Decimal("0.12")


def test_a_moderated_prompt_fails_at_once_with_the_providers_message(alice, official):
    generation = drive(
        lifecycle.start(
            GenerationRequest(
                alice, prompt="Something #moderation", model="sora-2", seconds=4, size="720x1280", backend=official
            )
        ).generation
    )
    assert generation.status == Status.FAILED
    assert generation.error_code == "moderation_blocked"
    assert generation.error_message
    assert generation.attempts == 0
    assert generation.charged() == Decimal("0")


def test_a_provider_that_answers_garbage_is_retried_until_the_deadline_then_timed_out(alice, official, settings):
    generation = lifecycle.start(
        GenerationRequest(alice, prompt="Noise #garbage", model="sora-2", seconds=4, size="720x1280", backend=official)
    ).generation
    for _ in range(5):
        pump.tick()
        generation.refresh_from_db()
        Generation.objects.filter(pk=generation.pk).update(next_poll_at=timezone.now())
    assert generation.status in (Status.SUBMITTED, Status.IN_PROGRESS)
    assert generation.poll_errors >= 1

    Generation.objects.filter(pk=generation.pk).update(created_at=timezone.now() - timezone.timedelta(hours=2))
    generation = drive(generation)
    assert generation.status == Status.TIMED_OUT
    assert "No result after" in generation.error_message


def test_a_flaky_status_endpoint_is_retried_and_the_job_still_completes(alice, official):
    generation = drive(
        lifecycle.start(
            GenerationRequest(
                alice, prompt="Flicker #flaky", model="sora-2", seconds=4, size="720x1280", backend=official
            )
        ).generation
    )
    assert generation.status == Status.COMPLETED
    assert generation.charged() == Decimal("0.40")


def test_an_unreachable_backend_gives_up_after_a_few_attempts_with_a_reason(alice, official, settings):
    official.base_url = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
    official.save()
    settings.GENERATION_MAX_SUBMIT_ATTEMPTS = 3
    generation = lifecycle.start(
        GenerationRequest(alice, prompt="Nowhere", model="sora-2", seconds=4, size="720x1280", backend=official)
    ).generation
    for _ in range(6):
        Generation.objects.filter(pk=generation.pk).update(next_poll_at=timezone.now())
        pump.tick()
    generation.refresh_from_db()
    assert generation.status == Status.FAILED
    assert "Gave up after 3 attempts" in generation.error_message


def test_a_cancelled_job_is_never_sent(alice, official, held_tasks):
    generation = lifecycle.start(
        GenerationRequest(alice, prompt="Never mind", model="sora-2", seconds=4, size="720x1280", backend=official)
    ).generation
    assert lifecycle.cancel(generation)
    lifecycle.advance(generation.pk)
    generation.refresh_from_db()
    assert generation.status == Status.CANCELLED and generation.remote_id == ""


def test_a_download_that_fails_retries_on_its_own_short_schedule_not_behind_earlier_poll_errors(
    alice, official, monkeypatch, settings
):
    """The provider says the video is ready but fetching it fails three times: each retry comes within
    seconds (earlier poll errors do not stretch it to minutes), and the video is stored once it works."""
    settings.GENERATION_POLL_INTERVAL = 2  # production's pace, so the cap is what keeps the wait short
    real_download = OpenAIVideosClient.download
    failures = []

    def download(self, job, variant, dest):
        if variant == "video" and len(failures) < 3:
            failures.append(job.id)
            raise ProviderError("The file host reset the connection.", code="connection_error", transient=True)
        return real_download(self, job, variant, dest)

    monkeypatch.setattr(OpenAIVideosClient, "download", download)
    generation = lifecycle.start(
        GenerationRequest(alice, prompt="Slow file host", model="sora-2", seconds=4, size="720x1280", backend=official)
    ).generation
    Generation.objects.filter(pk=generation.pk).update(poll_errors=8)  # as after a run of flaky polls
    waits = []
    for _ in range(200):
        generation.refresh_from_db()
        if generation.is_terminal:
            break
        Generation.objects.filter(pk=generation.pk).update(next_poll_at=timezone.now(), lease_until=None)
        lifecycle.advance(generation.pk)
        generation.refresh_from_db()
        if generation.next_poll_at and generation.download_errors > len(waits):
            waits.append((generation.next_poll_at - timezone.now()).total_seconds())
        time.sleep(0.05)
    assert generation.status == Status.COMPLETED and generation.video
    assert len(failures) == 3 and len(waits) == 3
    assert all(wait <= 15 for wait in waits), waits
    assert generation.cost_entries.filter(kind=CostKind.CHARGE).count() == 1
