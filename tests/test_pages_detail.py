"""A generation's page: what was sent and why, what it cost, a live panel, and cancelling a queued job."""

import pytest
from django.urls import reverse

from generations.models import Backend, CostEntry, CostKind, Generation

pytestmark = pytest.mark.django_db



@pytest.fixture
def backend():
    return Backend.objects.create(name="Aggregator", protocol="task_api", base_url="http://127.0.0.1:9/v1", api_key="k")


def make(owner, backend, status, **extra):
    return Generation.objects.create(owner=owner, backend=backend, prompt="@rex sails away", model="sora-2",
                                     seconds="10", size="720x1280", status=status, **extra)


def test_it_shows_the_prompt_as_sent_the_routing_and_the_ledger(client, alice, backend):
    generation = make(alice, backend, "in_progress", prompt_sent="@char_123 sails away", progress=30,
                      routing_reason="automatic: Aggregator, cheapest with @rex ready")
    CostEntry.objects.record(kind=CostKind.ESTIMATE, amount="0.12", backend=backend, owner=alice, generation=generation)
    CostEntry.objects.record(kind=CostKind.CHARGE, amount="0.12", backend=backend, owner=alice, generation=generation,
                             note="Charged when the provider accepted the job")
    client.force_login(alice)

    response = client.get(reverse("generation_detail", args=[generation.pk]))

    assert "@rex sails away" in response.text and "@char_123 sails away" in response.text
    assert "automatic: Aggregator, cheapest with @rex ready" in response.text
    assert "Charged when the provider accepted the job" in response.text
    assert f'hx-get="{reverse("generation_detail", args=[generation.pk])}" hx-trigger="every 2s"' in response.text
    assert "<video" not in response.text  # not finished yet
    assert "new/?prompt=%40rex+sails+away" in response.text  # "New from this" prefills the form
    assert "HX-Request" in response["Vary"]


def test_the_live_panel_stops_polling_once_the_job_ends(client, alice, backend):
    generation = make(alice, backend, "failed", error_code="generation_failed", error_message="It fell apart.")
    client.force_login(alice)

    response = client.get(reverse("generation_detail", args=[generation.pk]), headers={"HX-Request": "true"})

    assert response.status_code == 286
    assert response.text.lstrip().startswith('<section id="live"')
    assert "hx-trigger" not in response.text
    assert "It fell apart." in response.text


def test_a_queued_job_can_be_cancelled(client, alice, backend):
    generation = make(alice, backend, "queued")
    client.force_login(alice)
    assert "Cancel</button>" in client.get(reverse("generation_detail", args=[generation.pk])).text

    response = client.post(reverse("generation_cancel", args=[generation.pk]), headers={"HX-Request": "true"})

    generation.refresh_from_db()
    assert generation.status == "cancelled"
    assert "Cancelled" in response.text and "Cancel</button>" not in response.text


def test_a_job_already_sent_cannot_be_cancelled(client, alice, backend):
    generation = make(alice, backend, "in_progress")
    client.force_login(alice)

    response = client.post(reverse("generation_cancel", args=[generation.pk]), follow=True)

    generation.refresh_from_db()
    assert generation.status == "in_progress"
    assert "it can no longer be cancelled" in response.text


def test_a_video_not_stored_yet_is_404(client, alice, backend):
    generation = make(alice, backend, "in_progress")
    client.force_login(alice)

    assert client.get(reverse("generation_video", args=[generation.pk])).status_code == 404
    assert client.get(reverse("generation_thumbnail", args=[generation.pk])).status_code == 404
