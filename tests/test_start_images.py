"""A video can start from an image (and end on one) on every protocol that takes them: the studio checks the
image, crops it to the video's size, keeps it with the video, sends it each protocol's way, and the stored video
opens (and ends) on it. Through the whole pipeline, against the simulator over real HTTP."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from PIL import Image

from characters import registry
from characters.models import CharacterStill
from generations.jobs import images, lifecycle
from generations.jobs.models import GenerationImage
from generations.providers.fal_queue import KLING_IMAGE
from generations.providers.models import Price
from generations.states import Status
from simulator.models import Job
from simulator.render import look_for, render_mp4
from tests.conftest import drive
from tests.factories import make_backend, make_character
from tests.frames import CLOSE, difference, first_frame, last_frame, picture

pytestmark = pytest.mark.django_db(transaction=True)

# protocol -> (simulator path, model, seconds, size) of a video that may start from an image there.
PROTOCOLS = {
    "openai_videos": ("openai/v1", "sora-2", 4, "1280x720"),
    "gemini_veo": ("veo/v1beta", "veo-3.1-generate-preview", 4, "1280x720"),
    "runway": ("runway/v1", "gen4.5", 5, "1280x720"),
    "fal_queue": ("fal", KLING_IMAGE, 5, "1280x720"),
    "replicate": ("replicate/v1", "kwaivgi/kling-v2.1", 5, "1280x720"),
    "task_api": ("task/v1", "sora-2", 10, "1280x720"),
}


# How each simulated provider recorded the image it was given, in the protocol's own field.
RECEIVED_AS = {
    "openai_videos": lambda job: job.input_reference == "start.jpg",  # a multipart file
    "gemini_veo": lambda job: job.images == [job.images[0]] and job.images[0].startswith("image:image/jpeg:"),
    "runway": lambda job: job.request["promptImage"].startswith("sha256-"),  # a data URI
    "fal_queue": lambda job: job.images[0].startswith("image_url (image/jpeg"),
    "replicate": lambda job: job.images == [job.images[0]] and job.images[0].startswith("start_image: sha256:"),
    "task_api": lambda job: True,  # this aggregator records no field names; the first frame above is the proof
}


def backend_for(protocol: str, live_server, **fields):
    path, model, seconds, size = PROTOCOLS[protocol]
    backend = make_backend(f"Simulated {protocol}", protocol, f"{live_server.url}/simulator/{path}", **fields)
    if not backend.price_for("per_second", model) and not backend.price_for("per_request", model):
        Price.objects.create(backend=backend, unit="per_second", amount=Decimal("0.10"))
    if protocol == "task_api":
        # An aggregator whose offer declares its image field: the start image goes there, as a data URI.
        backend.offers["sora-2"]["arguments"] = {"image_url": "{start_image}"}
        backend.save()
    return backend


def start(owner, backend, protocol, *, prompt="A lighthouse at dusk", start_image=None, end_image=None, **fields):
    _, model, seconds, size = PROTOCOLS[protocol]
    return lifecycle.start(
        lifecycle.GenerationRequest(
            owner,
            prompt=prompt,
            model=fields.pop("model", model),
            seconds=seconds,
            size=size,
            backend=backend,
            start_image=start_image,
            end_image=end_image,
            **fields,
        )
    ).generation


def an_upload(seed: int = 1, width: int = 640, height: int = 480) -> images.ImageInput:
    return images.ImageInput(picture(width, height, seed=seed), "upload", f"picture-{seed}.png")


def stored(generation, role: str) -> bytes:
    with generation.images.get(role=role).image.open("rb") as handle:
        return handle.read()


def video_of(generation) -> bytes:
    with generation.video.open("rb") as handle:
        return handle.read()


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_the_stored_video_opens_on_its_start_image(protocol, alice, live_server, settings):
    settings.SITE_URL = live_server.url
    backend = backend_for(protocol, live_server)
    generation = drive(start(alice, backend, protocol, start_image=an_upload(seed=3)), timeout=30)

    assert generation.status == Status.COMPLETED, generation.error_message
    kept = generation.images.get()
    assert (kept.role, kept.source, kept.note) == ("start", "upload", "picture-3.png")
    # Cropped to the video's size (a 4:3 picture for a 16:9 video: cut top and bottom), as it was sent.
    assert (kept.width, kept.height) == (1280, 720)
    with Image.open(io.BytesIO(stored(generation, "start"))) as sent:
        assert sent.size == (1280, 720)
    opening = first_frame(video_of(generation))
    assert difference(opening, stored(generation, "start")) < CLOSE
    assert difference(opening, picture(640, 480, seed=4)) > 3 * CLOSE  # not just any picture
    assert RECEIVED_AS[protocol](Job.objects.get())  # in the protocol's own field


@pytest.mark.parametrize(
    "protocol,model",
    [
        ("gemini_veo", "veo-3.1-generate-preview"),
        ("runway", "veo3.1"),
        ("fal_queue", KLING_IMAGE),
        ("replicate", "kwaivgi/kling-v2.1"),
    ],
)
def test_an_end_image_is_the_last_frame_where_the_model_takes_one(protocol, model, alice, live_server, settings):
    settings.SITE_URL = live_server.url
    backend = backend_for(protocol, live_server)
    if protocol == "runway":
        # Runway's veo3.1 takes a first and a last frame (the SDK's types say "first" | "last"): its offer says so.
        backend.offers["veo3.1"] = {"seconds": ["4", "6", "8"], "sizes": ["1280x720"], "images": ["start", "end"]}
        backend.save()
    seconds = {"gemini_veo": 4, "runway": 4}.get(protocol, 5)
    generation = lifecycle.start(
        lifecycle.GenerationRequest(
            alice,
            prompt="A door opens onto the sea",
            model=model,
            seconds=seconds,
            size="1280x720",
            backend=backend,
            start_image=an_upload(seed=1),
            end_image=an_upload(seed=2),
        )
    ).generation
    generation = drive(generation, timeout=30)

    assert generation.status == Status.COMPLETED, generation.error_message
    assert generation.image_roles == ("start", "end")
    video = video_of(generation)
    assert difference(first_frame(video), stored(generation, "start")) < CLOSE
    assert difference(last_frame(video), stored(generation, "end")) < CLOSE
    if protocol == "replicate":
        # kling-v2.1 takes an end image in pro mode only: the offer's end_image_arguments say so.
        assert Job.objects.get().request["input"]["mode"] == "pro"


def test_a_start_image_takes_the_place_of_the_characters_stills_where_they_travel_as_images(alice, live_server):
    runway = backend_for("runway", live_server)
    mossy = make_character(alice, "mossy", clip=render_mp4(look_for("Mossy", "1280x720", "clip"), 2))
    registry.bind(mossy, runway)
    generation = drive(
        start(alice, runway, "runway", prompt="@mossy waves from the rock", start_image=an_upload()), timeout=30
    )

    assert generation.status == Status.COMPLETED, generation.error_message
    assert generation.characters_travel == {
        "mossy": "its name only (the start image is the first frame, so its stills were not sent)"
    }
    assert generation.prompt_sent == "Mossy waves from the rock"
    [sent] = Job.objects.get().images
    assert difference(first_frame(video_of(generation)), stored(generation, "start")) < CLOSE
    assert sent.startswith("sha256-")  # one image: the start image, not a still


def test_a_still_of_a_character_or_the_last_frame_of_a_finished_video_can_start_a_video(alice, official):
    mossy = make_character(alice, "mossy")
    still = CharacterStill(character=mossy, position=1, source="upload")
    still.image.save("still.jpg", ContentFile(picture(720, 1280, seed=5, kind="JPEG")), save=False)
    still.save()
    from_still = drive(start(alice, official, "openai_videos", start_image=images.from_still(still)))
    assert from_still.images.get().note == "still 1 of @mossy"
    assert difference(first_frame(video_of(from_still)), picture(720, 1280, seed=5)) < CLOSE

    # The next video picks up where that one ended: its start image is that video's last frame.
    handed_on = images.last_frame_of(from_still)
    assert handed_on.note == f"the last frame of video #{from_still.pk}"
    assert difference(last_frame(video_of(from_still)), handed_on.content) < 2
    following = drive(start(alice, official, "openai_videos", prompt="And then", start_image=handed_on))
    assert following.images.get().source == "last_frame"
    assert difference(first_frame(video_of(following)), last_frame(video_of(from_still))) < CLOSE


def test_the_last_frame_of_an_unfinished_video_is_refused(alice, official):
    queued = start(alice, official, "openai_videos")
    with pytest.raises(images.ImageProblem, match="not finished"):
        images.last_frame_of(queued)


def test_a_retry_or_a_remix_starts_from_the_same_image(alice, live_server):
    veo = backend_for("gemini_veo", live_server)
    failed = drive(start(alice, veo, "gemini_veo", prompt="A storm #fail", start_image=an_upload(seed=6)))
    assert failed.status == Status.FAILED
    again = lifecycle.retry(failed).generation
    assert again.images.get().note == "picture-6.png"
    assert difference(stored(again, "start"), stored(failed, "start")) < 2

    made = drive(start(alice, veo, "gemini_veo", prompt="A calm sea", start_image=an_upload(seed=6)))
    remixed = drive(lifecycle.remix(made, "A calm sea at night").generation)  # Veo has no remix: a new job
    assert remixed.remix_of_id is None and remixed.images.get().note == "picture-6.png"
    assert difference(first_frame(video_of(remixed)), stored(made, "start")) < CLOSE


def test_an_end_image_needs_a_start_image(alice, official):
    with pytest.raises(lifecycle.GenerationRefused, match="needs a start image") as refused:
        start(alice, official, "openai_videos", end_image=an_upload())
    assert (refused.value.field, refused.value.code) == ("start_image", "invalid_image")


def test_deleting_a_video_removes_its_images(alice, official):
    generation = drive(start(alice, official, "openai_videos", start_image=an_upload()))
    path = generation.images.get().image.path
    lifecycle.delete(generation)
    assert not GenerationImage.objects.filter(generation=generation).exists()
    import os

    assert not os.path.exists(path)


def test_the_export_lists_the_images_and_holds_their_files(alice, live_server, settings):
    import json
    import zipfile

    from generations.storyboards import export

    settings.SITE_URL = live_server.url
    veo = backend_for("gemini_veo", live_server)
    generation = drive(start(alice, veo, "gemini_veo", start_image=an_upload(1), end_image=an_upload(2)))

    with zipfile.ZipFile(export.write_zip(export.everything_plan(alice))) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        [entry] = manifest["generations"]
        assert entry["images"] == {
            "start": {
                "file": f"generations/{generation.pk}-start-image.jpg",
                "source": "upload",
                "note": "picture-1.png",
                "size": "1280x720",
            },
            "end": {
                "file": f"generations/{generation.pk}-end-image.jpg",
                "source": "upload",
                "note": "picture-2.png",
                "size": "1280x720",
            },
        }
        assert archive.read(entry["images"]["start"]["file"]) == stored(generation, "start")
        assert archive.read(entry["images"]["end"]["file"]) == stored(generation, "end")
