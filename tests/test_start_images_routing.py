"""The router only considers backends that can take the images a video asks for, and says why it passed over
the others; a job that starts from an image falls back only to backends that take one."""

from __future__ import annotations

from decimal import Decimal

import pytest

from generations.jobs import images, lifecycle, router
from generations.jobs.models import Attempt
from generations.providers.fal_queue import KLING_IMAGE, KLING_MASTER
from generations.providers.models import Refusal
from generations.states import Status
from simulator.models import Job
from tests.conftest import drive
from tests.factories import make_backend, make_dead_backend
from tests.frames import CLOSE, difference, first_frame, picture

pytestmark = pytest.mark.django_db(transaction=True)


def an_image(seed: int = 1) -> images.ImageInput:
    return images.ImageInput(picture(640, 360, seed=seed), "upload", "harbour.png")


def start(owner, **fields):
    fields = {"prompt": "A harbour at dawn", "model": "sora-2", "seconds": 4, "size": "720x1280", **fields}
    return lifecycle.start(lifecycle.GenerationRequest(owner, policy="cost", **fields)).generation


def refusal(result) -> str:
    assert isinstance(result, Refusal), result
    return result.reason


def test_each_protocol_says_which_images_it_takes(db):
    def backend(name, protocol):
        return make_dead_backend(name, protocol)

    openai, veo, runway = backend("O", "openai_videos"), backend("V", "gemini_veo"), backend("R", "runway")
    fal, replicate, task = backend("F", "fal_queue"), backend("P", "replicate"), backend("T", "task_api")
    assert openai.image_roles("sora-2") == {"start"}
    assert veo.image_roles("veo-3.1-generate-preview") == {"start", "end"}
    assert runway.image_roles("gen4.5") == {"start"}
    assert fal.image_roles(KLING_MASTER) == set() and fal.image_roles(KLING_IMAGE) == {"start", "end"}
    assert replicate.image_roles("kwaivgi/kling-v1.6-standard") == {"start"}
    assert replicate.image_roles("kwaivgi/kling-v2.1") == {"start", "end"}
    assert task.image_roles("sora-2") == set()

    assert refusal(router.assess(task, [], "sora-2", "10", "720x1280", images=("start",))) == (
        "T cannot take a start image (sora-2 is sent the prompt only)."
    )
    openai_end = router.assess(openai, [], "sora-2", "4", "720x1280", images=("start", "end"))
    assert refusal(openai_end) == "O cannot take an end image (sora-2 takes a start image only)."
    master = router.assess(fal, [], KLING_MASTER, "5", "1920x1080", images=("start",))
    assert refusal(master) == f"F cannot take a start image ({KLING_MASTER} is sent the prompt only)."
    # A model's offer may say otherwise: Runway's veo3.1 takes a last frame too; an aggregator its image field.
    runway.offers["veo3.1"] = {"seconds": ["8"], "sizes": ["1280x720"], "images": ["start", "end"]}
    task.offers["sora-2"]["arguments"] = {"first_frame": "{start_image}"}
    assert runway.image_roles("veo3.1") == {"start", "end"} and task.image_roles("sora-2") == {"start"}

    fal.offers[KLING_IMAGE]["arguments"].pop("tail_image_url")
    no_tail = router.assess(fal, [], KLING_IMAGE, "5", "1280x720", images=("start", "end"))
    assert refusal(no_tail) == (
        f"F cannot take an end image ({KLING_IMAGE} takes a start image only: its offer's arguments name no "
        "{end_image})."
    )
    assert not isinstance(
        router.assess(veo, [], "veo-3.1-generate-preview", "4", "1280x720", images=("start", "end")), Refusal
    )


@pytest.fixture
def two_shapes(db):
    """An official backend that takes start images and a cheaper aggregator that does not, both able to make
    a 4 s sora-2 video at 720x1280; neither is ever called (held tasks)."""
    official = make_dead_backend("Official", "openai_videos")
    aggregator = make_dead_backend("Aggregator", "task_api", tier="aggregator")
    aggregator.offers["sora-2"]["seconds"].append("4")
    aggregator.save()
    return official, aggregator


def test_a_video_with_a_start_image_goes_only_where_it_can_and_says_why_not_elsewhere(alice, two_shapes, held_tasks):
    official, aggregator = two_shapes
    assert start(alice).backend == aggregator  # the cheapest, without an image

    generation = start(alice, start_image=an_image())
    assert generation.backend == official
    assert "Aggregator cannot take a start image (sora-2 is sent the prompt only)." in generation.routing_reason
    assert {
        "backend": "Aggregator",
        "refused": "Aggregator cannot take a start image (sora-2 is sent the prompt only).",
    } in (generation.routing_candidates)


def test_a_video_pinned_where_its_image_cannot_go_is_refused_on_the_backend_field(alice, two_shapes, held_tasks):
    _, aggregator = two_shapes
    with pytest.raises(lifecycle.GenerationRefused) as refused:
        start(alice, backend=aggregator, start_image=an_image())
    assert refused.value.field == "backend" and refused.value.code == "no_backend"
    assert "cannot take a start image" in str(refused.value)


def test_no_backend_able_to_take_an_end_image_is_said_so(alice, two_shapes, held_tasks):
    with pytest.raises(lifecycle.GenerationRefused) as refused:
        start(alice, start_image=an_image(1), end_image=an_image(2))
    message = str(refused.value)
    assert "Official cannot take an end image (sora-2 takes a start image only)." in message
    assert "Aggregator cannot take a start image and an end image" in message


def test_a_job_with_a_start_image_falls_back_only_to_a_backend_that_takes_it(alice, official, live_server, settings):
    settings.GENERATION_MAX_SUBMIT_ATTEMPTS = 1  # a refused create is confirmed at once
    settings.SITE_URL = live_server.url
    down = make_dead_backend("Down", "openai_videos")
    down.prices.update(amount=Decimal("0.01"))  # the cheapest: tried first
    text_only = make_backend("Text only", "task_api", f"{live_server.url}/simulator/task/v1", tier="aggregator")
    text_only.offers["sora-2"]["seconds"].append("4")
    text_only.save()
    text_only.prices.update(amount=Decimal("0.02"))  # cheaper than the one that can take the image

    generation = start(alice, start_image=an_image(3))
    assert generation.backend == down
    generation = drive(generation, timeout=30)

    assert generation.status == Status.COMPLETED, generation.error_message
    assert generation.backend == official  # not the cheaper text-only backend: it cannot take the image
    assert Attempt.objects.get(generation=generation).backend == down
    assert "Text only cannot take a start image" in generation.routing_reason
    assert not Job.objects.filter(protocol="task").exists()
    with generation.video.open("rb") as video, generation.images.get().image.open("rb") as sent:
        assert difference(first_frame(video.read()), sent.read()) < CLOSE


def test_an_image_to_video_model_is_passed_over_for_a_video_with_nothing_to_start_from(db):
    fal = make_dead_backend("F", "fal_queue")
    text_only = router.assess(fal, [], KLING_IMAGE, "5", "1280x720")
    assert refusal(text_only) == (
        f"F cannot make {KLING_IMAGE} from a prompt alone: it needs a start image (give one, or mention a character "
        "whose still can open the video)."
    )
    with_image = router.assess(fal, [], KLING_IMAGE, "5", "1280x720", images=("start",))
    assert refusal(with_image).startswith("F has no price for")  # past the image check: only its price is missing
