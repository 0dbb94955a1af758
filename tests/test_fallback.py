"""Fallback: after a confirmed failure a job moves to the next backend its policy allows, once per try,
charged once at the price of the backend that made it; never after a moderation refusal, a pin or a
charge. Scenes whose characters nowhere else can carry wait or degrade, as their series says."""

from decimal import Decimal

import pytest
from django.urls import reverse

from characters.models import CharacterBinding
from generations.billing import pricing
from generations.billing.models import Budget, CostKind
from generations.jobs import lifecycle, pump
from generations.jobs.lifecycle import GenerationRequest
from generations.jobs.models import Attempt, Generation
from generations.providers.base import ProviderError
from generations.providers.task_api.client import TaskAPIClient
from generations.states import Status
from generations.storyboards.models import Scene
from simulator.render import look_for, render_mp4
from tests.conftest import drive
from tests.factories import make_backend, make_character, make_dead_backend, make_series

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def clip_bytes():
    return render_mp4(look_for("a mossy robot", "1280x720", "clip"), 2)


def cheapest(backend, amount="0.01"):
    """Make `backend` the cheapest, so the cost policy sends work there first."""
    backend.prices.update(amount=Decimal(amount))
    return backend


@pytest.fixture
def one_try(settings):
    settings.GENERATION_MAX_SUBMIT_ATTEMPTS = 1  # a refused create is confirmed at once


def start(owner, prompt, **fields):
    fields = {"model": "sora-2", "seconds": 4, "size": "720x1280", "policy": "cost", **fields}
    return lifecycle.start(GenerationRequest(owner, prompt=prompt, **fields)).generation


def ledger(generation):
    return {(e.kind, e.backend.name): e.amount for e in generation.cost_entries.select_related("backend")}


def test_a_create_that_never_reached_its_backend_moves_to_the_next_one_and_is_charged_there_once(
    alice, official, one_try
):
    down = cheapest(make_dead_backend("Down", "openai_videos", tier="aggregator"))
    generation = start(alice, "A lighthouse at dusk")
    assert generation.backend == down

    generation = drive(generation)

    assert generation.status == Status.COMPLETED
    assert generation.backend == official
    [attempt] = Attempt.objects.filter(generation=generation)
    assert attempt.backend == down and attempt.remote_id == "" and attempt.number == 1
    assert "moved to Simulated official" in generation.routing_reason
    quote = pricing.quote(official, "sora-2", 4, "720x1280").amount
    # The estimate moved (not doubled); the charge is the serving backend's price, once; nothing on Down.
    assert ledger(generation) == {
        (CostKind.ESTIMATE, "Simulated official"): quote,
        (CostKind.CHARGE, "Simulated official"): quote,
    }
    assert generation.idempotency_key.endswith("-2")  # a fresh key for the new backend
    page = lifecycle_page(alice, generation)
    assert "Earlier tries" in page and "Down" in page


def lifecycle_page(user, generation):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.get(reverse("generation_detail", args=[generation.pk])).content.decode()


def test_a_refused_key_disables_the_backend_and_the_job_moves_on(alice, official, sim_openai_url):
    wrong_key = cheapest(
        make_backend("Wrong key", "openai_videos", sim_openai_url, api_key="sk-wrong", tier="aggregator")
    )
    generation = drive(start(alice, "A red kite"))

    wrong_key.refresh_from_db()
    assert not wrong_key.enabled and wrong_key.disabled_reason
    assert generation.status == Status.COMPLETED and generation.backend == official
    assert Attempt.objects.get(generation=generation).backend == wrong_key


def test_a_moderation_refusal_is_the_creators_to_fix_never_sent_elsewhere(alice, official, aggregator):
    generation = drive(start(alice, "Something #moderation", backend=None))

    assert generation.status == Status.FAILED
    assert "moderation" in generation.error_code or "moderation" in generation.error_message.lower()
    assert not Attempt.objects.filter(generation=generation).exists()


def test_a_pinned_job_stays_on_the_backend_the_creator_chose(alice, official, one_try):
    down = make_dead_backend("Down", "openai_videos")
    generation = drive(start(alice, "Pinned", backend=down))

    assert generation.status == Status.FAILED and generation.backend == down
    assert not Attempt.objects.filter(generation=generation).exists()
    assert generation.routing_policy == "pinned"


def test_an_open_circuit_moves_queued_work_before_anything_is_sent(alice, official, settings):
    down = cheapest(make_dead_backend("Down", "openai_videos", tier="aggregator"))
    generation = start(alice, "Queued behind an outage")
    assert generation.backend == down
    from django.utils import timezone

    down.circuit_open_until = timezone.now() + timezone.timedelta(seconds=60)
    down.probe_started_at = timezone.now()  # its one trial job is out already
    down.save()

    generation = drive(generation)

    assert generation.status == Status.COMPLETED and generation.backend == official
    attempt = Attempt.objects.get(generation=generation)
    assert attempt.error_code == "circuit_open" and attempt.remote_id == ""


def test_a_job_the_provider_failed_after_charging_it_is_not_paid_for_twice(alice, official, aggregator):
    # The aggregator bills per request, on acceptance: a failed job there was paid for.
    aggregator.offers = {"sora-2": {"seconds": ["4", "10"], "sizes": ["720x1280"]}}
    aggregator.save()
    cheapest(aggregator)
    generation = drive(start(alice, "A fox #fail"))

    assert generation.backend == aggregator and generation.status == Status.FAILED
    assert not Attempt.objects.filter(generation=generation).exists()
    assert generation.cost_entries.filter(kind=CostKind.CHARGE).count() == 1


def test_a_fallback_that_would_break_a_hard_cap_is_not_made(alice, official, one_try):
    down = cheapest(make_dead_backend("Down", "openai_videos", tier="aggregator"))
    Budget.objects.create(user=alice, amount=Decimal("0.10"), hard=True)
    generation = drive(start(alice, "Over budget elsewhere"))

    assert generation.status == Status.FAILED and generation.backend == down
    assert not Attempt.objects.filter(generation=generation).exists()
    assert generation.cost_entries.get(kind=CostKind.ESTIMATE).backend == down  # not moved


def character_only_on(backend, owner):
    """@pip, known to `backend` alone and with no clip or stills to be taken anywhere else."""
    pip = make_character(owner, "pip", name="Pip")
    CharacterBinding.objects.create(character=pip, backend=backend, remote_id="char_pip", status="ready")
    return pip


def test_a_scene_whose_characters_nowhere_else_can_carry_waits_by_default(alice, official, one_try):
    down = make_dead_backend("Down", "openai_videos")
    character_only_on(down, alice)
    scene = Scene.objects.create(series=make_series(alice), prompt="@pip sails")

    generation = start(alice, "@pip sails", scene=scene)
    assert generation.backend == down
    for _ in range(3):
        pump.tick()
    generation.refresh_from_db()

    assert generation.status == Status.QUEUED and generation.backend == down
    assert "waiting for a backend that can carry the characters" in generation.routing_reason
    assert generation.next_poll_at > generation.updated_at  # looked at again later, not in a loop
    assert Attempt.objects.filter(generation=generation).count() == 1
    assert not generation.degraded


def test_a_scene_whose_series_says_degrade_goes_without_its_characters_flagged(alice, official, one_try):
    down = make_dead_backend("Down", "openai_videos")
    character_only_on(down, alice)
    scene = Scene.objects.create(series=make_series(alice, character_fallback="degrade"), prompt="@pip sails")

    generation = drive(start(alice, "@pip sails away", scene=scene))

    assert generation.status == Status.COMPLETED and generation.backend == official
    assert generation.degraded
    assert generation.prompt_sent == "Pip sails away" and generation.characters_sent == []
    assert "degraded" in generation.characters_travel["pip"]
    card = lifecycle_page(alice, generation)
    assert "Sent without its characters" in card


def test_a_character_moves_with_the_job_and_is_bound_on_the_new_backend(alice, official, one_try, clip_bytes):
    down = cheapest(make_dead_backend("Down", "openai_videos", tier="aggregator"))
    mossy = make_character(alice, "mossy", clip=clip_bytes, description="A test character")
    CharacterBinding.objects.create(character=mossy, backend=down, remote_id="char_down", status="ready")

    generation = drive(start(alice, "@mossy waves"))

    binding = mossy.bindings.get(backend=official)
    assert generation.status == Status.COMPLETED and generation.backend == official
    assert binding.status == "ready" and generation.characters_sent == [binding.remote_id]
    assert "char_down" not in generation.prompt_sent


# --- A lost create where the provider cannot be asked: unknown, possibly billed -------------------


@pytest.fixture
def task_create_answer_lost(monkeypatch):
    """Every create on the task API reaches the provider, and its answer is lost."""
    real_create = TaskAPIClient.create
    calls = []

    def create(self, **kwargs):
        calls.append(kwargs["idempotency_key"])
        real_create(self, **kwargs)
        raise ProviderError("Read timed out.", code="timeout", transient=True, maybe_sent=True)

    monkeypatch.setattr(TaskAPIClient, "create", create)
    return calls


def test_a_lost_create_nobody_can_look_up_ends_unknown_and_possibly_billed_until_an_admin_settles_it(
    alice, aggregator, task_create_answer_lost, settings, admin_client
):
    settings.GENERATION_RECONCILE_SECONDS = 0
    aggregator.honours_idempotency_keys = False
    aggregator.save()
    generation = drive(start(alice, "Lost in the post", backend=aggregator, seconds=10))

    estimate = generation.cost_entries.get(kind=CostKind.ESTIMATE).amount
    assert generation.status == Status.UNKNOWN and generation.error_code == "submit_unknown"
    assert "possibly billed" in generation.error_message
    assert len(task_create_answer_lost) == 1, "never sent again"
    assert ledger(generation) == {
        (CostKind.ESTIMATE, "Simulated aggregator"): estimate,
        (CostKind.POSSIBLE, "Simulated aggregator"): estimate,
    }
    assert generation.cost_entries.possibly_billed() == estimate
    assert generation.cost_entries.net() == 0

    from django.test import Client

    creator = Client()
    creator.force_login(alice)
    spending = creator.get(reverse("spending")).content.decode()
    assert "Possibly billed" in spending

    admin_client.post(
        reverse("admin:generations_generation_changelist"),
        {"action": "confirm_possibly_billed", "_selected_action": [generation.pk]},
    )
    assert generation.cost_entries.net() == estimate
    assert generation.cost_entries.possibly_billed() == 0
    # A second confirmation changes nothing.
    admin_client.post(
        reverse("admin:generations_generation_changelist"),
        {"action": "confirm_possibly_billed", "_selected_action": [generation.pk]},
    )
    assert generation.cost_entries.filter(kind=CostKind.CHARGE).count() == 1


def test_a_possibly_billed_job_counts_against_the_budgets_until_it_is_voided(alice, aggregator_offline):
    from generations.billing import budgets

    budget = Budget.objects.create(user=alice, amount=Decimal("10"), hard=True)
    generation = Generation.objects.create(
        owner=alice, backend=aggregator_offline, prompt="p", model="sora-2", seconds=4, size="720x1280"
    )
    from generations.billing.models import CostEntry

    CostEntry.objects.record(
        kind=CostKind.ESTIMATE, amount="1.50", backend=aggregator_offline, owner=alice, generation=generation
    )
    assert lifecycle.end_unknown(generation, "Lost.")
    assert budgets.committed(budget) == Decimal("1.50")

    assert CostEntry.objects.settle(generation, confirm=False, by="admin")
    assert budgets.committed(budget) == 0
    assert generation.cost_entries.net() == 0
    assert not CostEntry.objects.settle(generation, confirm=True, by="admin"), "settled once"


def test_a_new_scene_whose_characters_only_a_backend_that_is_down_carries_follows_its_series(alice, official):
    from django.utils import timezone

    down = make_dead_backend("Down", "openai_videos", circuit_open_until=timezone.now() + timezone.timedelta(minutes=1))
    character_only_on(down, alice)
    waits = Scene.objects.create(series=make_series(alice), prompt="@pip waits")
    degrades = Scene.objects.create(series=make_series(alice, character_fallback="degrade"), prompt="@pip goes")

    waiting = start(alice, "@pip waits", scene=waits)
    degraded = start(alice, "@pip goes", scene=degrades)

    assert waiting.backend == down and not waiting.degraded
    assert waiting.routing_reason.startswith("Waits for Down to come back")
    assert degraded.backend == official and degraded.degraded
    assert degraded.prompt_sent == "Pip goes"
    with pytest.raises(lifecycle.GenerationRefused, match="@pip"):
        start(alice, "@pip, not in a series")  # outside a series there is no setting to follow: refused, saying why


def test_a_key_refused_while_registering_a_character_disables_the_backend_and_the_job_moves_on(
    alice, official, sim_openai_url, clip_bytes
):
    wrong_key = cheapest(
        make_backend("Wrong key", "openai_videos", sim_openai_url, api_key="sk-wrong", tier="aggregator")
    )
    make_character(alice, "mossy", clip=clip_bytes, description="A test character")

    generation = drive(start(alice, "@mossy by the river"))

    wrong_key.refresh_from_db()
    assert not wrong_key.enabled and "key" in wrong_key.disabled_reason.lower()
    assert generation.status == Status.COMPLETED and generation.backend == official
    assert Attempt.objects.get(generation=generation).error_code in {"character_not_bound", "backend_disabled"}
