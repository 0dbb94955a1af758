"""A backend that keeps failing is skipped for a while, then tried with one job; one whose key is
refused is disabled, and staff are told why."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from generations.jobs import lifecycle, router
from generations.jobs.lifecycle import GenerationRefused, GenerationRequest
from generations.providers import health, registry
from generations.providers.base import ProviderError
from generations.providers.models import Backend, Price, PriceUnit, Refusal
from generations.states import Status
from tests.conftest import drive
from tests.factories import DISCARD_URL, make_backend, make_generation, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def request_for(owner, backend, prompt="A paper boat"):
    return GenerationRequest(owner, prompt=prompt, model="sora-2", seconds=4, size="720x1280", backend=backend)


def fresh(backend):
    """The backend as another process sees it: read again from the database."""
    return Backend.objects.get(pk=backend.pk)


def fail_until_open(owner, backend):
    """Jobs to `backend` while nothing answers at its address, until its circuit opens. Each start runs
    its first step inline (tasks are synchronous in tests); the rest are played by hand."""
    jobs = [lifecycle.start(request_for(owner, backend)).generation for _ in range(2)]
    for _ in range(10):
        if fresh(backend).circuit_open_until is not None:
            return jobs
        lifecycle.advance(jobs[0].pk)
    raise AssertionError("the circuit never opened")


@pytest.fixture
def unreachable(official, settings):
    """The simulated official backend, moved to an address where nothing listens (an outage)."""
    settings.GENERATION_MAX_SUBMIT_ATTEMPTS = 50  # jobs wait out the outage rather than give up
    simulator_url = official.base_url
    official.base_url = DISCARD_URL
    official.save()
    official.simulator_url = simulator_url
    return official


def cool_down(backend):
    """Move the cooldown into the past instead of sleeping through it."""
    Backend.objects.filter(pk=backend.pk).update(circuit_open_until=timezone.now() - timedelta(seconds=1))


def test_five_failures_in_a_row_open_the_circuit_and_the_router_skips_the_backend_saying_why(alice, unreachable):
    jobs = fail_until_open(alice, unreachable)

    backend = fresh(unreachable)  # another process's view: the state is in the database
    assert backend.consecutive_failures == 5
    assert "Could not reach" in backend.last_failure
    assert health.is_open(backend, timezone.now())
    # The jobs already queued wait for the circuit instead of failing.
    for job in jobs:
        job.refresh_from_db()
        assert job.status == Status.QUEUED
        lifecycle.advance(job.pk)
    assert fresh(unreachable).consecutive_failures == 5  # held, not sent again

    at = timezone.localtime(backend.circuit_open_until).strftime("%H:%M")
    expected = f"Simulated official skipped: circuit open after 5 failures, retrying at {at}."
    refusal = router.assess(backend, [], "sora-2", "4", "720x1280")
    assert isinstance(refusal, Refusal)
    assert str(refusal) == expected
    with pytest.raises(GenerationRefused, match=expected):  # a pinned backend: the creator sees why
        lifecycle.start(request_for(alice, fresh(unreachable)))  # as the form reads it


def test_the_router_routes_around_an_open_circuit(alice, unreachable, sim_openai_url):
    backup = make_backend("Backup", "openai_videos", sim_openai_url)
    fail_until_open(alice, unreachable)

    generation = lifecycle.start(request_for(alice, None)).generation

    assert generation.backend == backup
    assert generation.routing_reason.startswith("cost: Backup")
    assert "Simulated official skipped: circuit open after 5 failures" in generation.routing_reason
    assert drive(generation).status == Status.COMPLETED


def test_after_the_cooldown_one_trial_job_goes_through_and_its_success_closes_the_circuit(alice, unreachable):
    first, second = fail_until_open(alice, unreachable)
    Backend.objects.filter(pk=unreachable.pk).update(base_url=unreachable.simulator_url)  # the provider is back
    cool_down(unreachable)
    assert isinstance(router.assess(fresh(unreachable), [], "sora-2", "4", "720x1280"), router.Route)

    lifecycle.advance(first.pk)  # the trial job

    backend = fresh(unreachable)
    assert (backend.consecutive_failures, backend.circuit_open_until, backend.probe_started_at) == (0, None, None)
    assert drive(first).status == Status.COMPLETED
    lifecycle.advance(second.pk)  # the rest follow
    assert drive(second).status == Status.COMPLETED


def test_only_one_of_two_workers_gets_the_trial_job_and_its_failure_opens_the_circuit_again(alice, unreachable):
    first, second = fail_until_open(alice, unreachable)
    cool_down(unreachable)

    # Two workers, each with its own copy of the row, ask at once: one wins.
    assert [health.allow_probe(fresh(unreachable)), health.allow_probe(fresh(unreachable))] == [True, False]

    lifecycle.advance(second.pk)
    second.refresh_from_db()
    assert second.status == Status.QUEUED  # waits while the trial runs
    assert "a trial job is checking" in str(router.assess(fresh(unreachable), [], "sora-2", "4", "720x1280"))

    # The trial fails too (nothing listens yet): another full cooldown.
    health.record_transient_failure(fresh(unreachable), "Could not reach Simulated official.")
    backend = fresh(unreachable)
    assert backend.probe_started_at is None
    assert backend.circuit_open_until > timezone.now() + timedelta(seconds=50)
    assert health.is_open(backend, timezone.now())


def test_a_trial_that_never_reports_back_lets_another_job_try_after_a_cooldown(alice, unreachable):
    fail_until_open(alice, unreachable)
    cool_down(unreachable)
    assert health.allow_probe(fresh(unreachable))

    Backend.objects.filter(pk=unreachable.pk).update(probe_started_at=timezone.now() - timedelta(minutes=2))

    assert health.allow_probe(fresh(unreachable))


def test_a_success_ends_the_failures_in_a_row(alice, official):
    for _ in range(4):
        health.record_transient_failure(fresh(official), "HTTP 503")

    generation = drive(lifecycle.start(request_for(alice, official)).generation)

    assert generation.status == Status.COMPLETED
    assert fresh(official).consecutive_failures == 0


def test_a_flaky_answer_counts_as_a_failure_and_the_next_good_one_clears_it(alice, official, settings):
    settings.CIRCUIT_FAILURES = 1
    generation = lifecycle.start(request_for(alice, official, prompt="A storm #flaky")).generation

    assert drive(generation).status == Status.COMPLETED  # jobs at the provider are still polled while open
    assert "temporarily unavailable" in fresh(official).last_failure
    assert fresh(official).circuit_open_until is None  # the polls after the 503 went through


def test_a_rate_limit_pauses_the_backend_and_does_not_count_as_a_failure(alice, official):
    generation = make_generation(alice, official, status=Status.SUBMITTING)

    lifecycle._create_failed(generation, official, ProviderError("Slow down", status=429, transient=True))

    backend = fresh(official)
    assert backend.is_paused()
    assert (backend.consecutive_failures, backend.circuit_open_until) == (0, None)


SIMULATED = [spec for spec in registry.specs() if spec.simulator_path]


@pytest.mark.parametrize("spec", SIMULATED, ids=[spec.name for spec in SIMULATED])
def test_a_refused_key_disables_the_backend_and_fails_the_job_saying_so(alice, live_server, settings, spec):
    settings.SITE_URL = live_server.url
    backend = make_backend(
        "Wrong key", spec.name, f"{live_server.url}/simulator/{spec.simulator_path}", api_key="wrong"
    )
    Price.objects.create(backend=backend, unit=PriceUnit.PER_REQUEST, amount=Decimal("0.10"))  # some ship none
    model, offer = next(iter(backend.offer().items()))
    seconds, size = offer["seconds"][0], offer["sizes"][0]
    request = GenerationRequest(alice, prompt="A paper boat", model=model, seconds=int(seconds), size=size)

    generation = drive(lifecycle.start(request).generation)

    assert generation.status == Status.FAILED
    assert "Wrong key refused its API key" in generation.error_message
    assert "An admin must fix the key" in generation.error_message
    backend = fresh(backend)
    assert not backend.enabled
    assert backend.disabled_reason.startswith("Wrong key refused its API key")
    assert generation.charged() == 0


@pytest.fixture
def disabled_for_its_key(alice, sim_openai_url):
    backend = make_backend("Wrong key", "openai_videos", sim_openai_url, api_key="wrong")
    drive(lifecycle.start(request_for(alice, backend)).generation)
    return fresh(backend)


def test_staff_see_disabled_and_open_backends_on_the_gallery(client, disabled_for_its_key, unreachable):
    fail_until_open(make_user("carol"), unreachable)
    client.force_login(make_user("sam", is_staff=True))

    page = client.get(reverse("gallery")).content.decode()

    assert "Backends needing attention" in page
    assert "Wrong key</strong>: Disabled: Wrong key refused its API key (Incorrect API key provided.)" in page
    assert "Simulated official</strong>: Circuit open after 5 failures in a row" in page
    assert "Could not reach Simulated official." in page


def test_a_creator_does_not_see_the_backends_health(client, alice, disabled_for_its_key):
    client.force_login(alice)

    page = client.get(reverse("gallery")).content.decode()

    assert "Backends needing attention" not in page
    assert "refused its API key" not in page.split('<section id="gallery"')[0]


def test_the_admin_lists_why_a_backend_was_disabled(client, disabled_for_its_key):
    client.force_login(make_user("root", is_staff=True, is_superuser=True))

    changelist = client.get(reverse("admin:generations_backend_changelist")).content.decode()
    change = client.get(reverse("admin:generations_backend_change", args=[disabled_for_its_key.pk])).content.decode()

    assert "Disabled: Wrong key refused its API key" in changelist
    assert "Wrong key refused its API key" in change
    assert 'name="disabled_reason"' not in change  # shown, not editable


def test_enabling_the_backend_again_clears_the_reason(disabled_for_its_key):
    disabled_for_its_key.enabled = True
    disabled_for_its_key.save()

    assert fresh(disabled_for_its_key).disabled_reason == ""
    assert not Backend.objects.unhealthy().exists()
