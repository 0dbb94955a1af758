"""Start and end images on the pages: the new-video form takes an upload, a character's still or the last frame
of a finished video; a bad image is refused next to its field and nothing is sent; the estimate passes over
backends that cannot take the image, saying why; the preview shows the crop; the video's page shows the images."""

from __future__ import annotations

import io
import uuid

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from characters.models import CharacterStill
from generations.jobs import images, lifecycle
from generations.jobs.models import Generation
from generations.states import Status
from simulator.models import Job
from simulator.render import look_for, render_mp4
from tests.conftest import drive
from tests.factories import make_character, make_generation
from tests.frames import CLOSE, difference, first_frame, last_frame, picture

pytestmark = pytest.mark.django_db(transaction=True)


def form_data(**overrides):
    return {
        "token": uuid.uuid4().hex,
        "prompt": "A lighthouse at dusk",
        "backend": "",
        "model": "sora-2",
        "seconds": "4",
        "size": "720x1280",
        **overrides,
    }


def upload(data: bytes, name: str = "picture.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/png")


def a_still(owner, handle="mossy", seed=5) -> CharacterStill:
    character = make_character(owner, handle)
    still = CharacterStill(character=character, position=1, source="upload")
    still.image.save("still.jpg", ContentFile(picture(480, 480, seed=seed, kind="JPEG")), save=False)
    still.save()
    return still


def a_finished_video(owner, backend, prompt="A red kite over the dunes"):
    clip = render_mp4(look_for(prompt, "720x1280", "x"), 1)
    return make_generation(owner, backend, prompt=prompt, status=Status.COMPLETED, video=clip)


def big_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8000, 5000), (20, 40, 60)).save(out, "PNG")  # 40 megapixels, ~120 KB
    return out.getvalue()


def truncated_jpeg() -> bytes:
    data = picture(640, 360, kind="JPEG")
    return data[: len(data) // 2]


def test_the_form_offers_an_upload_the_creators_stills_and_their_finished_videos(client, alice, bob, official_offline):
    still = a_still(alice)
    video = a_finished_video(alice, official_offline)
    a_still(bob, "bobs")
    client.force_login(alice)

    page = client.get(reverse("generation_new")).text

    assert 'enctype="multipart/form-data"' in page
    assert '<option value="upload">Upload an image…</option>' in page
    assert f'<option value="still:{still.pk}">@mossy, still 1</option>' in page
    assert f'<option value="video:{video.pk}">Video #{video.pk}: A red kite over the dunes</option>' in page
    assert "@bobs" not in page  # only the creator's own
    assert 'name="start_upload"' in page and 'name="end_image"' in page and "data-crop-preview" in page


def test_an_uploaded_start_image_is_checked_cropped_and_kept_with_the_video(client, alice, official):
    client.force_login(alice)
    response = client.post(
        reverse("generation_new"),
        form_data(backend=official.pk, start_image="upload", start_upload=upload(picture(900, 600, seed=2))),
    )

    generation = Generation.objects.get()
    assert response.status_code == 302 and response.url == reverse("generation_detail", args=[generation.pk])
    kept = generation.images.get()
    assert (kept.role, kept.source, kept.note, kept.width, kept.height) == ("start", "upload", "picture.png", 720, 1280)
    generation = drive(generation)
    with generation.video.open("rb") as video, kept.image.open("rb") as sent:
        assert difference(first_frame(video.read()), sent.read()) < CLOSE

    page = client.get(reverse("generation_detail", args=[generation.pk])).text
    image_url = reverse("generation_image", args=[generation.pk, "start"])
    assert f'src="{image_url}"' in page and "picture.png, cropped to 720×1280" in page
    served = client.get(image_url)
    assert served.status_code == 200 and served["Content-Type"] == "image/jpeg"


def test_the_last_frame_of_a_finished_video_starts_the_next(client, alice, official):
    earlier = drive(
        lifecycle.start(
            lifecycle.GenerationRequest(
                alice, prompt="A red kite", model="sora-2", seconds=4, size="720x1280", backend=official
            )
        ).generation
    )
    client.force_login(alice)
    client.post(reverse("generation_new"), form_data(backend=official.pk, start_image=f"video:{earlier.pk}"))

    following = Generation.objects.exclude(pk=earlier.pk).get()
    assert following.images.get().note == f"the last frame of video #{earlier.pk}"
    following = drive(following)
    with earlier.video.open("rb") as before, following.video.open("rb") as after:
        assert difference(first_frame(after.read()), last_frame(before.read())) < CLOSE


@pytest.mark.parametrize(
    "data,name,message",
    [
        (b"Dear diary,\nI renamed this to a .png.\n", "notes.png", "That file is a text file, which cannot be used"),
        (big_png(), "huge.png", "That image is 8000×5000 (40 megapixels); 25 megapixels at most."),
        (truncated_jpeg(), "cut.jpg", "That image is cut short or damaged"),
    ],
    ids=["renamed text file", "40-megapixel PNG", "truncated JPEG"],
)
def test_a_bad_image_is_refused_next_to_its_field_and_nothing_is_sent(client, alice, official, data, name, message):
    client.force_login(alice)
    response = client.post(
        reverse("generation_new"), form_data(backend=official.pk, start_image="upload", start_upload=upload(data, name))
    )

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == ["start_upload"] and message in errors["start_upload"][0]
    assert message.split(" (")[0].split(";")[0] in response.text  # shown on the page, next to the field
    assert not Generation.objects.exists() and not Job.objects.exists()  # nothing started, nothing sent


def test_the_same_bad_images_are_refused_by_start_itself(alice, official):
    for bad in (b"plain text", big_png(), truncated_jpeg()):
        with pytest.raises(lifecycle.GenerationRefused) as refused:
            lifecycle.start(
                lifecycle.GenerationRequest(
                    alice,
                    prompt="A fox",
                    model="sora-2",
                    seconds=4,
                    size="720x1280",
                    backend=official,
                    start_image=images.ImageInput(bad, "upload", "x.png"),
                )
            )
        assert refused.value.field == "start_image" and refused.value.code == "invalid_image"
    assert not Generation.objects.exists() and not Job.objects.exists()


def test_upload_chosen_without_a_file_and_another_creators_still_are_refused(client, alice, bob, official_offline):
    theirs = a_still(bob, "bobs")
    client.force_login(alice)

    no_file = client.post(reverse("generation_new"), form_data(start_image="upload")).context["form"].errors
    assert no_file == {"start_upload": ["Choose an image file to upload."]}
    not_mine = client.post(reverse("generation_new"), form_data(start_image=f"still:{theirs.pk}")).context["form"]
    assert "start_image" in not_mine.errors
    only_end = client.post(
        reverse("generation_new"), form_data(end_image="upload", end_upload=upload(picture()))
    ).context["form"]
    assert only_end.errors == {"end_image": ["An end image needs a start image too."]}
    assert not Generation.objects.exists()


def test_the_estimate_passes_over_backends_that_cannot_take_the_image_and_says_why(
    client, alice, official_offline, aggregator_offline
):
    aggregator_offline.offers["sora-2"]["seconds"].append("4")
    aggregator_offline.save()
    client.force_login(alice)

    plain = client.post(reverse("generation_estimate"), form_data()).text
    assert "Aggregator cannot take" not in plain and "Automatic routing would use Aggregator" in plain

    with_image = client.post(reverse("generation_estimate"), form_data(start_image="upload")).text
    assert "Aggregator cannot take a start image (sora-2 is sent the prompt only)." in with_image
    assert "Automatic routing would use Official" in with_image


def test_the_preview_is_the_image_cropped_to_the_videos_size(client, alice, bob, official_offline):
    still = a_still(alice)
    video = a_finished_video(alice, official_offline)
    client.force_login(alice)

    for source in (f"still:{still.pk}", f"video:{video.pk}"):
        response = client.get(reverse("generation_image_preview"), {"source": source, "size": "1280x720"})
        assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
        with Image.open(io.BytesIO(response.content)) as preview:
            assert preview.size == (1280, 720)

    client.force_login(bob)  # another creator's still or video is not theirs to preview
    assert (
        client.get(reverse("generation_image_preview"), {"source": f"still:{still.pk}", "size": "1280x720"}).status_code
        == 404
    )
    assert client.get(reverse("generation_image", args=[video.pk, "start"])).status_code == 404


def test_the_scene_editor_keeps_a_start_image_that_every_take_of_the_scene_starts_from(client, alice, official):
    from generations.storyboards import board
    from generations.storyboards.models import SceneImage
    from tests.factories import make_series

    series = make_series(alice, size="1280x720", backend=official)
    scene = board.add_scene(series, "The boat leaves the harbour")
    client.force_login(alice)
    edit = reverse("scene_edit", args=[scene.pk])

    bad = client.post(edit, {"prompt": scene.prompt, "start_image": "upload", "start_upload": upload(b"just text")})
    assert "That file is a text file" in bad.text and not SceneImage.objects.exists()

    saved = client.post(
        edit, {"prompt": scene.prompt, "start_image": "upload", "start_upload": upload(picture(600, 600, seed=7))}
    )
    assert saved.status_code == 302
    assert scene.images.get().note == "picture.png"
    board_page = client.get(reverse("series_detail", args=[series.pk])).text
    assert "Start image</a>: picture.png" in board_page

    again = client.get(edit).text  # the image chosen before is the initial choice, previewed from the scene
    assert '<option value="kept" selected>Keep: picture.png</option>' in again
    assert f'data-kept-url="{reverse("scene_image", args=[scene.pk, "start"])}"' in again
    assert 'data-video-size="1280x720"' in again
    client.post(edit, {"prompt": "The boat leaves the harbour at dawn", "start_image": "kept"})
    assert scene.images.get().note == "picture.png"  # kept as it was

    take = drive(board.generate_scene(scene).generation)
    kept = take.images.get()
    assert (kept.width, kept.height, kept.note) == (1280, 720, "picture.png")  # cropped to the series' size
    with take.video.open("rb") as video:
        assert difference(first_frame(video.read()), picture(600, 600, seed=7)) < CLOSE

    client.post(edit, {"prompt": scene.prompt, "start_image": ""})
    assert not scene.images.exists()  # "None" drops it


def test_staff_see_a_videos_images_in_the_admin(client, alice, official):
    from django.contrib.auth import get_user_model

    generation = drive(
        lifecycle.start(
            lifecycle.GenerationRequest(
                alice,
                prompt="A fox",
                model="sora-2",
                seconds=4,
                size="720x1280",
                backend=official,
                start_image=images.ImageInput(picture(), "upload", "fox.png"),
            )
        ).generation
    )
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "root-password")
    client.force_login(admin)
    page = client.get(reverse("admin:generations_generation_change", args=[generation.pk])).text
    image_url = reverse("generation_image", args=[generation.pk, "start"])
    assert f'<a href="{image_url}">start.jpg</a>' in page and "fox.png" in page
    assert client.get(image_url).status_code == 200  # staff see every creator's videos


def test_deleting_a_scene_or_its_series_removes_the_scenes_image_files(client, alice, official_offline):
    from django.core.files.storage import default_storage

    from generations.storyboards import board
    from generations.storyboards.models import SceneImage
    from tests.factories import make_series

    series = make_series(alice, size="1280x720", backend=official_offline)
    scenes = [board.add_scene(series, f"Scene {n}") for n in (1, 2)]
    client.force_login(alice)
    for scene in scenes:
        client.post(
            reverse("scene_edit", args=[scene.pk]),
            {"prompt": scene.prompt, "start_image": "upload", "start_upload": upload(picture(600, 600, seed=3))},
        )
    first, second = (SceneImage.objects.get(scene=scene).image.name for scene in scenes)
    assert default_storage.exists(first) and default_storage.exists(second)

    client.post(reverse("scene_delete", args=[scenes[0].pk]))
    assert not default_storage.exists(first) and default_storage.exists(second)

    client.post(reverse("series_delete", args=[series.pk]))
    assert not default_storage.exists(second) and not SceneImage.objects.exists()
