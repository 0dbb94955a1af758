"""Routing policies: cost, stability, character, or a pinned backend; per video, per series, per creator."""

import uuid
from decimal import Decimal

import pytest
from django.urls import reverse

from characters.models import CharacterBinding
from generations.jobs.models import CreatorSettings, Generation
from generations.providers.models import Backend, Price, PriceUnit
from generations.storyboards.models import Scene, Series
from tests.factories import make_character, make_dead_backend, make_series

pytestmark = pytest.mark.django_db

FOUR_SECONDS = {"sora-2": {"seconds": ["4", "10", "15"], "sizes": ["720x1280", "1280x720"]}}


@pytest.fixture
def cheap_aggregator(aggregator_offline):
    """The aggregator, also making 4-second videos: $0.12 a video against the official $0.40."""
    Backend.objects.filter(pk=aggregator_offline.pk).update(offers=FOUR_SECONDS)
    aggregator_offline.refresh_from_db()
    return aggregator_offline


@pytest.fixture
def images():
    """A backend a character reaches by its reference images, cheapest of all: $0.05 a video."""
    backend = make_dead_backend("Images", "gemini_veo", prices=False, tier="aggregator", offers=FOUR_SECONDS)
    Price.objects.create(backend=backend, unit=PriceUnit.PER_REQUEST, amount=Decimal("0.05"))
    return backend


def generate(client, **fields) -> Generation:
    """Send the new-video form as a creator does; the job is held back (nothing is called)."""
    data = {
        "token": uuid.uuid4().hex,
        "prompt": "A paper boat on a rainy street",
        "backend": "",
        "model": "sora-2",
        "seconds": "4",
        "size": "720x1280",
        **fields,
    }
    response = client.post(reverse("generation_new"), data)
    assert response.status_code == 302, response.text
    return Generation.objects.get(client_token=data["token"])


def bind(character, backend, remote_id=""):
    CharacterBinding.objects.create(character=character, backend=backend, status="ready", remote_id=remote_id)


def test_cost_picks_the_cheapest(client, alice, official_offline, cheap_aggregator, held_tasks):
    client.force_login(alice)

    generation = generate(client, policy="cost")

    assert generation.backend == cheap_aggregator
    assert generation.routing_policy == "cost"
    assert generation.routing_reason.startswith("cost: Aggregator, cheapest of 2 able at $0.12")
    assert {c["backend"]: Decimal(c["quote"]) for c in generation.routing_candidates} == {
        "Official": Decimal("0.40"),
        "Aggregator": Decimal("0.12"),
    }


def test_stability_picks_the_official_tier_even_when_an_aggregator_is_cheaper(
    client, alice, official_offline, cheap_aggregator, held_tasks
):
    client.force_login(alice)

    generation = generate(client, policy="stability")

    assert generation.backend == official_offline
    assert generation.routing_reason.startswith("stability: Official, official tier at $0.40")


def test_character_prefers_a_native_binding_over_a_cheaper_backend_taking_images(
    client, alice, official_offline, images, held_tasks
):
    rex = make_character(alice, "rex")
    bind(rex, official_offline, remote_id="char_rex")
    bind(rex, images)
    client.force_login(alice)

    by_character = generate(client, prompt="@rex on a boat", policy="character")
    by_cost = generate(client, prompt="@rex on a boat", policy="cost")

    assert by_character.backend == official_offline
    assert "characters natively bound" in by_character.routing_reason
    assert by_cost.backend == images


def test_character_goes_where_images_travel_when_no_native_binding_exists(
    client, alice, official_offline, images, held_tasks
):
    rex = make_character(alice, "rex")
    bind(rex, images)
    client.force_login(alice)

    generation = generate(client, prompt="@rex on a boat", policy="character")

    assert generation.backend == images
    assert "characters travel by reference images" in generation.routing_reason
    assert "@rex is not registered on Official" in generation.routing_reason


def test_a_pinned_backend_overrides_the_policy(client, alice, official_offline, cheap_aggregator, held_tasks):
    client.force_login(alice)

    generation = generate(client, backend=cheap_aggregator.pk, policy="stability")

    assert generation.backend == cheap_aggregator
    assert generation.routing_policy == "pinned"
    assert generation.routing_reason.startswith("pinned: Aggregator, chosen by you")


def test_the_series_policy_applies_to_its_scenes(client, alice, official_offline, cheap_aggregator, held_tasks):
    series = make_series(alice)
    scene = Scene.objects.create(series=series, prompt="A boat")
    client.force_login(alice)
    response = client.post(
        reverse("series_edit", args=[series.pk]),
        {"title": series.title, "routing_policy": "stability", "model": "sora-2", "seconds": "4", "size": "720x1280"},
    )
    assert response.status_code == 302
    assert Series.objects.get().routing_policy == "stability"
    assert 'value="stability" selected' in client.get(reverse("series_edit", args=[series.pk])).text

    client.post(reverse("scene_generate", args=[scene.pk]))

    take = scene.takes.get()
    assert take.backend == official_offline and take.routing_policy == "stability"


def test_the_creators_default_applies_when_neither_video_nor_series_says(
    client, alice, official_offline, cheap_aggregator, held_tasks
):
    client.force_login(alice)
    page = client.get(reverse("creator_settings"))
    assert '<label for="id_routing_policy">Default routing</label>' in page.text
    assert client.post(reverse("creator_settings"), {"routing_policy": "stability"}).status_code == 302
    assert CreatorSettings.policy_for(alice) == "stability"

    form = client.get(reverse("generation_new"))
    assert '<option value="stability" selected>' in form.text
    video = generate(client)  # a form sent without a routing choice
    scene = Scene.objects.create(series=make_series(alice), prompt="A boat")
    client.post(reverse("scene_generate", args=[scene.pk]))

    assert video.backend == official_offline and video.routing_policy == "stability"
    assert scene.takes.get().backend == official_offline


def test_the_estimate_names_the_policy(client, alice, official_offline, cheap_aggregator):
    client.force_login(alice)
    data = {"prompt": "A boat", "backend": "", "model": "sora-2", "seconds": "4", "size": "720x1280"}

    cost = client.post(reverse("generation_estimate"), {**data, "policy": "cost"})
    stability = client.post(reverse("generation_estimate"), {**data, "policy": "stability"})

    assert "Automatic routing would use Aggregator (cost policy)" in cost.text
    assert "Automatic routing would use Official (stability policy)" in stability.text


def test_the_decision_is_shown_on_the_detail_page(client, alice, official_offline, cheap_aggregator, held_tasks):
    client.force_login(alice)
    generation = generate(client, policy="cost")

    page = client.get(reverse("generation_detail", args=[generation.pk]))

    assert generation.routing_reason in page.text
    assert "<dt>Weighed</dt><dd>Aggregator $0.12; Official $0.40</dd>" in page.text


def test_the_settings_page_needs_a_login_and_shows_only_your_own(client, alice, bob):
    CreatorSettings.objects.create(user=bob, routing_policy="character")

    anonymous = client.get(reverse("creator_settings"))
    client.force_login(alice)
    mine = client.get(reverse("creator_settings"))

    assert anonymous.status_code == 302 and "/login" in anonymous["Location"]
    assert '<option value="cost" selected>' in mine.text


def test_routing_reads_every_backends_prices_in_one_query_with_no_join_or_sort(
    alice, official_offline, cheap_aggregator
):
    """The price rows' listing order (by backend name, unit, model …) would cost a join and a sort on every start;
    `price_for` picks the row by its own rule, so the routing reads them as they come."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from generations.jobs import router

    with CaptureQueriesContext(connection) as statements:
        routes = router.candidates([], "sora-2", "4", "720x1280")

    assert sorted(route.quote.amount for route in routes) == [Decimal("0.12"), Decimal("0.40")]
    backends, prices = (query["sql"] for query in statements)
    assert "generations_price" in prices and "JOIN" not in prices and "ORDER BY" not in prices
