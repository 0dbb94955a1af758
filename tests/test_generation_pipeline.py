"""From a creator's request to a stored, playable MP4 and an exact charge, over real HTTP."""

import subprocess
from decimal import Decimal

import imageio_ffmpeg
import pytest
from django.db.models import ProtectedError

from generations.billing.models import CostEntry, CostKind
from generations.jobs import lifecycle
from generations.jobs.lifecycle import GenerationRequest
from generations.jobs.models import Generation
from generations.states import Status
from tests.conftest import drive

pytestmark = pytest.mark.django_db(transaction=True)


def assert_playable_mp4(path):
    with open(path, "rb") as f:
        assert f.read(12)[4:8] == b"ftyp"
    probe = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", path], capture_output=True, text=True
    )
    assert "Video: h264" in probe.stderr


def test_a_4_second_sora_2_video_costs_40_cents_on_the_per_second_backend(alice, official):
    generation = lifecycle.start(
        GenerationRequest(
            alice, prompt="A lighthouse at dawn", model="sora-2", seconds=4, size="720x1280", backend=official
        )
    ).generation

    generation = drive(generation)

    assert generation.status == Status.COMPLETED
    assert generation.progress == 100
    assert generation.remote_id.startswith("video_")
    assert_playable_mp4(generation.video.path)
    assert generation.thumbnail.size > 0
    assert generation.charged() == Decimal("0.40")
    charge = generation.cost_entries.get(kind=CostKind.CHARGE)
    assert charge.price.amount == Decimal("0.10") and charge.price.unit == "per_second"


def test_one_video_on_the_aggregator_costs_12_cents(alice, aggregator):
    generation = lifecycle.start(
        GenerationRequest(
            alice, prompt="A fox in the snow", model="sora-2", seconds=10, size="720x1280", backend=aggregator
        )
    ).generation

    generation = drive(generation)

    assert generation.status == Status.COMPLETED
    assert generation.remote_id.startswith("task_")
    assert_playable_mp4(generation.video.path)
    assert generation.charged() == Decimal("0.12")


def test_an_estimate_is_recorded_before_anything_is_sent(alice, official, held_tasks):
    generation = lifecycle.start(
        GenerationRequest(
            alice, prompt="Rain on a window", model="sora-2-pro", seconds=8, size="1024x1792", backend=official
        )
    ).generation
    assert ("generations.tasks.advance", (generation.pk,)) in held_tasks
    assert generation.status == "queued" and generation.remote_id == ""
    estimate = generation.cost_entries.get()
    assert estimate.kind == CostKind.ESTIMATE and estimate.amount == Decimal("4.00")  # 8 s x $0.50
    assert generation.charged() == Decimal("0")


def test_automatic_routing_picks_the_cheapest_backend_that_can(alice, official, aggregator):
    generation = lifecycle.start(
        GenerationRequest(alice, prompt="A paper boat", model="sora-2", seconds=10, size="720x1280")
    ).generation
    assert generation.backend == aggregator
    assert generation.routing_reason.startswith("cost: Simulated aggregator")

    # Only the official backend makes 4-second videos.
    generation = lifecycle.start(
        GenerationRequest(alice, prompt="A paper boat", model="sora-2", seconds=4, size="720x1280")
    ).generation
    assert generation.backend == official


def test_a_choice_the_backend_does_not_offer_is_refused_with_a_reason(alice, official):
    with pytest.raises(lifecycle.GenerationRefused, match="10"):
        lifecycle.start(
            GenerationRequest(alice, prompt="x", model="sora-2", seconds=10, size="720x1280", backend=official)
        )
    assert not CostEntry.objects.exists()


def test_from_the_form_post_to_a_stored_playable_mp4(client, alice, official):
    client.force_login(alice)
    response = client.post(
        "/generations/new/",
        {
            "prompt": "A paper lantern floats",
            "backend": official.pk,
            "model": "sora-2",
            "seconds": "4",
            "size": "720x1280",
            "token": "t-1",
        },
    )
    assert response.status_code == 302
    generation = Generation.objects.get()
    assert response["Location"] == f"/generations/{generation.pk}/"

    generation = drive(generation)

    assert generation.status == Status.COMPLETED and generation.charged() == Decimal("0.40")
    assert_playable_mp4(generation.video.path)
    page = client.get(f"/generations/{generation.pk}/")
    assert f'src="/generations/{generation.pk}/video.mp4"' in page.text
    video = client.get(f"/generations/{generation.pk}/video.mp4")
    assert video["Content-Type"] == "video/mp4" and b"".join(video.streaming_content)[4:8] == b"ftyp"


def test_every_state_a_job_went_through_is_on_its_timeline(alice, official):
    generation = drive(
        lifecycle.start(
            GenerationRequest(alice, prompt="A timeline", model="sora-2", seconds=4, size="720x1280", backend=official)
        ).generation
    )
    states = list(generation.events.values_list("status", flat=True))
    assert states[0] == "queued" and states[-1] == "completed"
    assert {"submitting", "submitted"} <= set(states)


def test_a_price_change_while_a_job_runs_does_not_change_its_charge(alice, official):
    generation = lifecycle.start(
        GenerationRequest(alice, prompt="Price moves", model="sora-2", seconds=4, size="720x1280", backend=official)
    ).generation
    official.prices.create(model="sora-2", unit="per_second", amount=Decimal("0.50"))  # dearer from now on
    with pytest.raises(ProtectedError):  # and the row the estimate used cannot be deleted
        official.prices.filter(model="sora-2", amount=Decimal("0.10")).delete()

    generation = drive(generation)

    assert generation.status == Status.COMPLETED
    assert generation.charged() == Decimal("0.40")
