"""A job not finished within its backend's timeout ends timed out (refunded where billed), even if
nobody polls it; "check again" asks the provider once more and completes it if it finished there."""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from generations.billing.models import CostKind
from generations.jobs import lifecycle, pump
from generations.jobs.lifecycle import GenerationRequest
from generations.jobs.models import Generation
from generations.states import Status
from tests.conftest import drive
from tests.factories import make_generation

pytestmark = pytest.mark.django_db(transaction=True)


def _start(owner, backend, prompt="A lighthouse at dusk #slow", seconds=4):
    """Start a job and let it reach the provider (tasks run inline: it is accepted at once)."""
    generation = lifecycle.start(
        GenerationRequest(owner, prompt=prompt, model="sora-2", seconds=seconds, size="720x1280", backend=backend)
    ).generation
    generation.refresh_from_db()
    assert generation.remote_id, generation.status
    return generation


def _age(generation, seconds, *, next_poll_in=timedelta(0)):
    """Make the job `seconds` old (instead of sleeping) and set when its next poll is due."""
    now = timezone.now()
    Generation.objects.filter(pk=generation.pk).update(
        created_at=now - timedelta(seconds=seconds), next_poll_at=now + next_poll_in
    )


def _entries(generation):
    return sorted(generation.cost_entries.exclude(kind=CostKind.ESTIMATE).values_list("kind", "amount"))


def test_a_backend_timeout_must_be_at_least_a_second(official_offline):
    official_offline.timeout_seconds = 0
    with pytest.raises(ValidationError) as caught:
        official_offline.clean()
    assert "timeout_seconds" in caught.value.message_dict


def test_a_backend_timeout_shorter_than_the_global_one_times_a_job_out(alice, official, settings):
    settings.GENERATION_TIMEOUT = 1800
    official.timeout_seconds = 60
    official.save()
    generation = _start(alice, official)

    _age(generation, 61)  # well inside the global 30 minutes, past the backend's minute
    generation = drive(generation)

    assert generation.status == Status.TIMED_OUT
    assert generation.error_message == "No result after 1 minute."


def test_a_job_within_its_backends_timeout_keeps_running(alice, official):
    official.timeout_seconds = 600
    official.save()
    generation = _start(alice, official)

    _age(generation, 300)
    pump.tick()

    generation.refresh_from_db()
    assert generation.status in (Status.SUBMITTED, Status.IN_PROGRESS)


def test_the_sweeper_ends_a_job_nobody_polls(alice, official):
    official.timeout_seconds = 60
    official.save()
    generation = _start(alice, official)
    _age(generation, 120, next_poll_in=timedelta(days=1))  # no poll due for a day

    pump.tick()

    generation.refresh_from_db()
    assert generation.status == Status.TIMED_OUT
    assert generation.error_code == "timeout"
    assert generation.next_poll_at is None and generation.lease_until is None
    assert pump.sweep() == 0  # a second pump finds nothing left to end
    assert generation.events.filter(status=Status.TIMED_OUT).count() == 1
    assert _entries(generation) == []  # a per-second backend had charged nothing


def test_the_sweeper_leaves_a_job_a_worker_holds_until_its_lease_ends(alice, official):
    official.timeout_seconds = 60
    official.save()
    generation = _start(alice, official)
    _age(generation, 120, next_poll_in=timedelta(days=1))
    Generation.objects.filter(pk=generation.pk).update(lease_until=timezone.now() + timedelta(seconds=60))

    assert pump.sweep() == 0
    assert pump.sweep(now=timezone.now() + timedelta(seconds=61)) == 1

    generation.refresh_from_db()
    assert generation.status == Status.TIMED_OUT


def test_a_per_request_backends_up_front_charge_is_refunded_once(alice, aggregator, client):
    aggregator.timeout_seconds = 60
    aggregator.save()
    generation = _start(alice, aggregator, seconds=10)
    assert _entries(generation) == [(CostKind.CHARGE, Decimal("0.12"))]
    _age(generation, 120, next_poll_in=timedelta(days=1))

    pump.tick()
    pump.tick()
    pump.sweep()

    generation.refresh_from_db()
    assert generation.status == Status.TIMED_OUT
    assert _entries(generation) == [(CostKind.CHARGE, Decimal("0.12")), (CostKind.REFUND, Decimal("0.12"))]
    assert generation.charged() == Decimal("0")

    # Refunded: it cannot be charged again, so it is not offered a check.
    client.force_login(alice)
    page = client.get(reverse("generation_detail", args=[generation.pk])).content.decode()
    assert "Check again" not in page
    response = client.post(reverse("generation_check_again", args=[generation.pk]), HTTP_HX_REQUEST="true")
    assert "refunded when it timed out" in response.content.decode()
    generation.refresh_from_db()
    assert generation.status == Status.TIMED_OUT
    assert generation.charged() == Decimal("0")


def test_check_again_completes_a_job_that_finished_after_the_timeout_and_charges_it_once(
    alice, official, client, settings
):
    settings.SIMULATOR_SPEED = 10  # the simulated job takes under a second
    official.timeout_seconds = 60
    official.save()
    generation = _start(alice, official, prompt="A paper boat on a pond")
    _age(generation, 120, next_poll_in=timedelta(days=1))
    assert pump.sweep() == 1
    client.force_login(alice)
    url = reverse("generation_detail", args=[generation.pk])
    assert "Check again" in client.get(url).content.decode()

    time.sleep(1.5)  # the provider finishes it after we gave up
    response = client.post(reverse("generation_check_again", args=[generation.pk]), HTTP_HX_REQUEST="true")

    assert "had finished it" in response.content.decode()
    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED
    assert generation.error_message == ""
    assert generation.video
    assert client.get(reverse("generation_video", args=[generation.pk])).status_code == 200
    assert _entries(generation) == [(CostKind.CHARGE, Decimal("0.40"))]  # 4 s of sora-2, once

    # A second click does nothing more.
    again = client.post(reverse("generation_check_again", args=[generation.pk]), follow=True)
    assert "Only a timed-out video can be checked again." in again.content.decode()
    generation.refresh_from_db()
    assert generation.status == Status.COMPLETED
    assert _entries(generation) == [(CostKind.CHARGE, Decimal("0.40"))]
    assert generation.events.filter(status=Status.COMPLETED).count() == 1


def test_check_again_on_a_job_still_running_says_so_and_leaves_it_timed_out(alice, official, client):
    official.timeout_seconds = 60
    official.save()
    generation = _start(alice, official)
    _age(generation, 120, next_poll_in=timedelta(days=1))
    pump.sweep()
    client.force_login(alice)

    response = client.post(reverse("generation_check_again", args=[generation.pk]), HTTP_HX_REQUEST="true")

    assert "still running" in response.content.decode()
    generation.refresh_from_db()
    assert generation.status == Status.TIMED_OUT
    assert generation.next_poll_at is None and generation.lease_until is None
    assert _entries(generation) == []


def test_check_again_on_a_job_that_failed_there_keeps_it_timed_out_with_the_reason(alice, official, client, settings):
    settings.SIMULATOR_SPEED = 10
    official.timeout_seconds = 60
    official.save()
    generation = _start(alice, official, prompt="A storm #fail")
    _age(generation, 120, next_poll_in=timedelta(days=1))
    pump.sweep()
    client.force_login(alice)
    time.sleep(1)

    client.post(reverse("generation_check_again", args=[generation.pk]))
    client.post(reverse("generation_check_again", args=[generation.pk]))

    generation.refresh_from_db()
    assert generation.status == Status.TIMED_OUT
    assert generation.error_message.startswith("No result after 1 minute.")
    assert generation.error_message.count("says it failed") == 1


def test_another_creator_cannot_check_a_job_again(alice, bob, official_offline, client):
    generation = make_generation(alice, official_offline, status=Status.TIMED_OUT, remote_id="video_123")
    client.force_login(bob)

    response = client.post(reverse("generation_check_again", args=[generation.pk]))

    assert response.status_code == 404
    assert client.get(reverse("generation_check_again", args=[generation.pk])).status_code == 405
