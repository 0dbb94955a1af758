"""One character on every kind of backend: registered where the protocol has character ids, sent as its
stills where the protocol takes reference images; a series whose scenes are made on three protocols says,
in its export, how the character reached each one."""

import json
from decimal import Decimal

import pytest
from django.urls import reverse

from characters import registry
from characters.models import BindingStatus
from generations.billing import rollup
from generations.billing.models import CharacterSpendingMonth
from generations.providers.models import Price
from generations.states import Status
from generations.storyboards import board
from generations.storyboards.models import Scene
from simulator.models import Job
from simulator.render import look_for, render_mp4
from tests.conftest import drive
from tests.exports import export_zip
from tests.factories import make_backend, make_character, make_series

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def three_protocols(official, live_server):
    veo = make_backend("Simulated Veo", "gemini_veo", f"{live_server.url}/simulator/veo/v1beta")
    runway = make_backend("Simulated Runway", "runway", f"{live_server.url}/simulator/runway/v1")
    Price.objects.create(backend=runway, unit="per_second", amount=Decimal("0.10"))
    return official, veo, runway


@pytest.fixture
def mossy(alice, three_protocols):
    character = make_character(alice, "mossy", name="Mossy", clip=render_mp4(look_for("Mossy", "1280x720", "clip"), 3))
    for backend in three_protocols:
        registry.bind(character, backend)
    return character


def test_binding_to_a_reference_image_backend_is_immediate_and_takes_the_stills(mossy, three_protocols):
    official, veo, runway = three_protocols
    assert {b.backend.name: b.status for b in mossy.bindings.select_related("backend")} == {
        official.name: BindingStatus.READY,
        veo.name: BindingStatus.READY,
        runway.name: BindingStatus.READY,
    }
    assert mossy.binding_on(veo).remote_id == "" and mossy.binding_on(official).remote_id.startswith("char_")
    assert mossy.stills.count() == 3
    assert registry.how_it_travels(mossy, veo) == "as 3 reference images, with its name in the prompt"
    assert registry.how_it_travels(mossy, runway) == "as 1 reference image, with its name in the prompt"


def test_a_series_made_on_three_protocols_says_how_the_character_reached_each(client, alice, mossy, three_protocols):
    official, veo, runway = three_protocols
    series = make_series(alice, "Mossy's day", size="1280x720")
    series.characters.add(mossy)
    plan = [(official, "sora-2", 4), (veo, "veo-3.1-generate-preview", 4), (runway, "gen4.5", 5)]
    takes = []
    for position, (backend, model, seconds) in enumerate(plan):
        series.backend, series.model, series.seconds = backend, model, seconds
        series.save()
        scene = Scene.objects.create(series=series, prompt=f"@mossy waves, scene {position + 1}", position=position)
        takes.append(drive(board.generate_scene(scene).generation))
    assert [t.status for t in takes] == [Status.COMPLETED] * 3

    # What each provider received: an id (and the name) on OpenAI's shape; the stills and the name elsewhere.
    sent = {t.backend.protocol: Job.objects.get(id=t.remote_id.rsplit("/", 1)[-1]) for t in takes}
    assert sent["openai_videos"].character_ids == [mossy.binding_on(official).remote_id]
    assert len(sent["gemini_veo"].images) == 3 and len(sent["runway"].images) == 1
    assert all("Mossy waves" in job.prompt and "@mossy" not in job.prompt for job in sent.values())
    # Its spend, as the spending report reads it: every estimate and charge under @mossy, as the ledger says.
    assert rollup.differences() == []
    assert CharacterSpendingMonth.objects.get(character=mossy).entries == 6

    client.force_login(alice)
    manifest = json.loads(export_zip(client, reverse("series_export", args=[series.pk])).read("manifest.json"))
    how = [scene["takes"][0]["characters_sent_as"]["@mossy"] for scene in manifest["series"]["scenes"]]
    assert how == [
        f"its id {mossy.binding_on(official).remote_id} and its name",
        "3 reference images and its name",
        "1 reference image and its name",
    ]
    detail = client.get(reverse("generation_detail", args=[takes[1].pk])).text
    assert "@mossy as 3 reference images and its name" in detail
    assert "Its stills are taken from the clip and go along to Simulated Veo with every video." in detail


def test_the_new_character_form_says_when_an_upload_cannot_reach_a_backend_that_fetches_by_link(
    client, alice, aggregator, settings
):
    client.force_login(alice)
    settings.SITE_URL = "http://127.0.0.1:8000"
    page = client.get(reverse("characters:new")).text
    assert "Simulated aggregator fetches an uploaded clip from this studio" in page
    settings.SITE_URL = "https://studio.example.com"
    assert "fetches an uploaded clip" not in client.get(reverse("characters:new")).text
