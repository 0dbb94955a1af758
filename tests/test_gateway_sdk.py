"""The studio as a gateway, driven by the official `openai` package: every video made through /v1/ is a
generation like any other (routed, charged, in the gallery), and the client reads it in OpenAI's shapes."""

from __future__ import annotations

import base64
import threading
from datetime import timedelta
from decimal import Decimal

import openai
import pytest
from django.urls import reverse
from django.utils import timezone

from characters import registry
from characters.models import BindingStatus, Character
from generations.jobs.models import Generation
from generations.providers.models import Backend
from simulator.models import Job
from simulator.render import look_for, render_mp4
from tests import frames
from tests.factories import make_character, make_generation
from tests.gateway import pump_running, sdk, token_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client_sdk(live_server, alice, official, aggregator):
    return sdk(live_server, token_for(alice))


@pytest.fixture
def mossy(alice, official, aggregator):
    character = make_character(alice, "mossy", name="Mossy", clip=render_mp4(look_for("Mossy", "1280x720", "clip"), 3))
    for backend in (official, aggregator):
        registry.bind(character, backend)  # registered at once: tasks run inline in tests
    return character


def served(client, url: str) -> bytes:
    response = client.get(url)
    assert response.status_code == 200, url
    return b"".join(response.streaming_content)


def test_create_and_poll_with_a_mention_makes_a_video_that_is_a_studio_generation(client, client_sdk, alice, mossy):
    with pump_running():
        video = client_sdk.videos.create_and_poll(prompt="@mossy waves from a mossy rock")

    assert video.status == "completed" and video.progress == 100 and video.error is None
    assert video.id.startswith("video_") and video.object == "video"
    # "auto" (the default): the routing policy (cost) chose the model and the backend that make 4 s at 720x1280.
    assert (video.model, video.seconds, video.size) == ("sora-2", "4", "720x1280")
    assert video.prompt == "@mossy waves from a mossy rock"
    assert video.expires_at is None  # the studio keeps the video: there is no provider link to expire
    assert video.completed_at >= video.created_at and video.remixed_from_video_id is None

    generation = Generation.objects.get(uuid=video.id.removeprefix("video_"))
    assert generation.owner == alice and generation.backend.name == "Simulated official"
    assert list(generation.characters.all()) == [mossy]
    assert "Mossy waves" in generation.prompt_sent and "@mossy" not in generation.prompt_sent
    assert generation.charged() == Decimal("0.40")  # in the ledger, so on the spending page

    mp4 = client_sdk.videos.download_content(video.id).content
    thumbnail = client_sdk.videos.download_content(video.id, variant="thumbnail").content
    assert mp4[4:8] == b"ftyp" and thumbnail[8:12] == b"WEBP"
    client.force_login(alice)
    assert mp4 == served(client, reverse("generation_video", args=[generation.pk]))
    assert thumbnail == served(client, reverse("generation_thumbnail", args=[generation.pk]))
    assert "@mossy waves from a mossy rock" in client.get(reverse("gallery")).content.decode()
    spending = client.get(reverse("spending")).content.decode()
    assert "Simulated official" in spending and "$0.40" in spending


def test_status_and_progress_come_from_the_studio_without_asking_the_provider(client_sdk, held_tasks):
    created = client_sdk.videos.with_raw_response.create(prompt="A lighthouse at dusk")
    video = created.parse()
    assert video.status == "queued" and video.progress == 0
    assert 200 <= int(created.headers["openai-poll-after-ms"]) <= 10_000

    for _ in range(5):
        polled = client_sdk.videos.with_raw_response.retrieve(video.id)
        assert polled.parse().status == "queued"
        assert "openai-poll-after-ms" in polled.headers
    assert Job.objects.count() == 0  # the job was never sent (tasks held): every answer came from the studio


def test_a_failed_video_says_why_in_openai_shape(client_sdk):
    with pump_running():
        video = client_sdk.videos.create_and_poll(prompt="Boom #fail", seconds="8")
    assert video.status == "failed"
    assert video.error.code and "failed halfway" in video.error.message
    with pytest.raises(openai.NotFoundError) as not_yet:
        client_sdk.videos.download_content(video.id)
    assert not_yet.value.code == "video_not_ready"


def test_the_list_pages_through_the_creators_own_videos(client_sdk, alice, bob, official):
    now = timezone.now()
    mine = [
        make_generation(alice, official, prompt=f"Mine {i}", created_at=now - timedelta(minutes=i)) for i in range(5)
    ]
    make_generation(bob, official, prompt="Bob's")
    make_generation(alice, official, prompt="Deleted", deleted_at=now)

    first = client_sdk.videos.list(limit=2)
    assert [v.prompt for v in first.data] == ["Mine 0", "Mine 1"]
    assert first.has_more is True and first.last_id == first.data[-1].id
    second = client_sdk.videos.list(limit=2, after=first.last_id)
    assert [v.prompt for v in second.data] == ["Mine 2", "Mine 3"]

    assert [v.prompt for v in client_sdk.videos.list(limit=2)] == [f"Mine {i}" for i in range(5)]  # auto-paging
    assert [v.prompt for v in client_sdk.videos.list(order="asc")] == [f"Mine {i}" for i in reversed(range(5))]
    last = client_sdk.videos.list(limit=5)
    assert last.has_more is False and len(last.data) == len(mine)


def test_a_remix_is_a_new_video_that_names_its_source(client_sdk):
    with pump_running():
        original = client_sdk.videos.create_and_poll(prompt="A paper boat on a rainy street", model="sora-2")
        remix = client_sdk.videos.remix(original.id, prompt="The same boat at night")
        assert remix.remixed_from_video_id == original.id and remix.id != original.id
        done = client_sdk.videos.poll(remix.id)
    assert done.status == "completed" and done.remixed_from_video_id == original.id
    source = Generation.objects.get(uuid=original.id.removeprefix("video_"))
    assert Generation.objects.get(uuid=remix.id.removeprefix("video_")).remix_of == source  # the provider's remix


def test_delete_removes_the_video_from_the_api_and_the_gallery(client, client_sdk, alice):
    with pump_running():
        video = client_sdk.videos.create_and_poll(prompt="A short-lived kite")
    deleted = client_sdk.videos.delete(video.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (video.id, "video.deleted", True)

    with pytest.raises(openai.NotFoundError):
        client_sdk.videos.retrieve(video.id)
    client.force_login(alice)
    assert "A short-lived kite" not in client.get(reverse("gallery")).content.decode()


def test_a_character_made_through_the_api_is_a_library_character_used_by_its_handle(client_sdk, alice):
    clip = render_mp4(look_for("a pebble with eyes", "1280x720", "clip"), 3)
    made = client_sdk.videos.create_character(name="Pebble", video=("pebble.mp4", clip, "video/mp4"))

    assert made.id.startswith("char_") and made.name == "Pebble" and made.created_at > 0
    assert made.model_extra["handle"] == "pebble"
    assert client_sdk.videos.get_character(made.id).name == "Pebble"
    pebble = Character.objects.get(owner=alice, handle="pebble")
    assert {b.backend.name: b.status for b in pebble.bindings.select_related("backend")} == {
        "Simulated official": BindingStatus.READY,
        "Simulated aggregator": BindingStatus.READY,
    }

    with pump_running():
        video = client_sdk.videos.create_and_poll(
            prompt="@pebble rolls downhill", extra_body={"characters": [{"id": made.id}]}
        )
    assert video.status == "completed"
    assert Generation.objects.get(uuid=video.id.removeprefix("video_")).characters.get() == pebble

    with pytest.raises(openai.BadRequestError) as unmentioned:
        client_sdk.videos.create(prompt="A pebble rolls", extra_body={"characters": [{"id": made.id}]})
    assert (unmentioned.value.param, unmentioned.value.code) == ("characters", "character_not_mentioned")
    assert "@pebble" in unmentioned.value.message

    again = client_sdk.videos.create_character(name="Pebble", video=("pebble.mp4", clip, "video/mp4"))
    assert again.model_extra["handle"] == "pebble_2"  # a handle of its own, never a clash


def test_another_creators_video_and_character_are_404(live_server, client_sdk, bob, official):
    bobs = make_generation(bob, official, status="completed", video=b"\x00\x00\x00\x18ftypmp42")
    other = f"video_{bobs.uuid.hex}"
    for call in (
        lambda: client_sdk.videos.retrieve(other),
        lambda: client_sdk.videos.download_content(other),
        lambda: client_sdk.videos.delete(other),
        lambda: client_sdk.videos.remix(other, prompt="Mine now"),
        lambda: client_sdk.videos.retrieve("video_doesnotexist"),
        lambda: client_sdk.videos.get_character("char_" + "0" * 32),
    ):
        with pytest.raises(openai.NotFoundError) as missing:
            call()
        assert missing.value.code == "not_found"
    bobs.refresh_from_db()
    assert bobs.deleted_at is None and bobs.video

    bob_sdk = sdk(live_server, token_for(bob))
    clip = render_mp4(look_for("Bob's cat", "1280x720", "clip"), 3)
    cat = bob_sdk.videos.create_character(name="Cat", video=("cat.mp4", clip, "video/mp4"))
    with pytest.raises(openai.NotFoundError):
        client_sdk.videos.get_character(cat.id)


def test_a_retried_create_with_the_same_idempotency_key_finds_the_same_video(client_sdk, held_tasks):
    key = {"Idempotency-Key": "batch-7-scene-3"}
    first = client_sdk.videos.create(prompt="A fox in the snow", seconds="8", extra_headers=key)
    again = client_sdk.videos.create(prompt="A fox in the snow", seconds="8", extra_headers=key)
    assert again.id == first.id and Generation.objects.count() == 1

    with pytest.raises(openai.ConflictError) as reused:
        client_sdk.videos.create(prompt="A wolf in the snow", seconds="8", extra_headers=key)
    assert reused.value.code == "idempotency_key_reused"
    assert reused.value.response.headers["x-should-retry"] == "false"
    assert Generation.objects.count() == 1

    other = client_sdk.videos.create(prompt="A fox in the snow", seconds="8", extra_headers={"Idempotency-Key": "k2"})
    assert other.id != first.id


def test_seconds_size_and_model_are_checked_against_what_the_backends_offer(client_sdk, official):
    with pytest.raises(openai.BadRequestError) as seconds:
        client_sdk.videos.create(prompt="A fox", model="sora-2", seconds="5")
    assert seconds.value.param == "seconds"
    assert "4, 8, 12 seconds, not 5" in seconds.value.message

    with pytest.raises(openai.BadRequestError) as size:
        client_sdk.videos.create(prompt="A fox", model="sora-2", size="1920x1080")
    assert size.value.param == "size" and "1920x1080" in size.value.message

    with pytest.raises(openai.BadRequestError) as model:
        client_sdk.videos.create(prompt="A fox", model="kling-9")
    assert model.value.param == "model" and "does not offer model 'kling-9'" in model.value.message

    with pytest.raises(openai.BadRequestError) as auto:
        client_sdk.videos.create(prompt="A fox", seconds="7")
    assert auto.value.param == "seconds" and "No model makes a 7 s video" in auto.value.message

    with pytest.raises(openai.BadRequestError) as pinned:
        client_sdk.videos.create(prompt="A fox", seconds="4", extra_body={"backend": "Simulated aggregator"})
    assert pinned.value.param == "seconds" and "Simulated aggregator" in pinned.value.message

    assert client_sdk.videos.create(prompt="A fox", seconds="10").model == "sora-2"  # only the aggregator makes 10 s
    assert Generation.objects.get().backend.name == "Simulated aggregator"


def test_input_reference_is_the_start_image_of_the_video(client, client_sdk):
    picture = frames.picture(800, 600, seed=4)
    with pump_running():
        video = client_sdk.videos.create_and_poll(
            prompt="A harbour at dawn", size="1280x720", input_reference=("harbour.png", picture, "image/png")
        )
    assert video.status == "completed", video.error
    generation = Generation.objects.get(uuid=video.id.removeprefix("video_"))
    kept = generation.images.get()
    assert (kept.role, kept.note, kept.width, kept.height) == ("start", "harbour.png", 1280, 720)
    assert generation.backend.name == "Simulated official"  # the aggregator takes no start image
    mp4 = client_sdk.videos.download_content(video.id).read()
    with kept.image.open("rb") as sent:
        assert frames.difference(frames.first_frame(mp4), sent.read()) < frames.CLOSE

    # The next video picks up where that one ended: the last frame of one of your videos, by its id.
    with pump_running():
        following = client_sdk.videos.create_and_poll(
            prompt="The boat leaves", size="1280x720", extra_body={"input_reference": {"video_id": video.id}}
        )
    follower = Generation.objects.get(uuid=following.id.removeprefix("video_"))
    assert follower.images.get().note == f"the last frame of video #{generation.pk}"
    after = client_sdk.videos.download_content(following.id).read()
    assert frames.difference(frames.first_frame(after), frames.last_frame(mp4)) < frames.CLOSE


def test_a_start_image_that_cannot_be_used_is_refused_and_nothing_is_sent(client_sdk, bob):
    cases = [
        (("notes.png", b"Dear diary,\nrenamed to .png\n", "image/png"), "invalid_image", "a text file"),
        (("cut.jpg", frames.picture(640, 360, kind="JPEG")[:4000], "image/jpeg"), "invalid_image", "cut short"),
    ]
    for file, code, words in cases:
        with pytest.raises(openai.BadRequestError) as refused:
            client_sdk.videos.create(prompt="A fox", input_reference=file)
        assert (refused.value.param, refused.value.code) == ("input_reference", code) and words in refused.value.message
    with pytest.raises(openai.BadRequestError) as by_url:
        client_sdk.videos.create(prompt="A fox", extra_body={"input_reference": {"image_url": "https://x.test/a.png"}})
    assert (by_url.value.param, by_url.value.code) == ("input_reference", "unsupported_value")
    theirs = make_generation(bob, Backend.objects.first())
    with pytest.raises(openai.BadRequestError) as not_yours:
        client_sdk.videos.create(prompt="A fox", extra_body={"input_reference": {"video_id": f"video_{theirs.uuid}"}})
    assert (not_yours.value.param, not_yours.value.code) == ("input_reference", "video_not_found")
    with pytest.raises(openai.BadRequestError) as no_end:  # sora-2 takes no end image: said on end_image
        client_sdk.videos.create(
            prompt="A fox",
            input_reference=("a.png", frames.picture(), "image/png"),
            extra_body={
                "end_image": {"image_url": "data:image/png;base64," + base64.b64encode(frames.picture()).decode()}
            },
        )
    assert (no_end.value.param, no_end.value.code) == ("end_image", "no_backend_able")
    assert "cannot take an end image" in no_end.value.message
    assert Generation.objects.exclude(owner=bob).count() == 0 and Job.objects.count() == 0


def test_a_pinned_backend_is_honoured(client_sdk):
    video = client_sdk.videos.create(prompt="A fox", seconds="10", extra_body={"backend": "Simulated aggregator"})
    assert Generation.objects.get(uuid=video.id.removeprefix("video_")).routing_policy == "pinned"


def test_simultaneous_creates_with_one_key_make_one_video(live_server, alice, official, held_tasks):
    secret = token_for(alice, "burst")
    barrier = threading.Barrier(8)
    ids, conflicts, errors = [], [], []

    def create(i):
        try:
            client = sdk(live_server, secret, timeout=60)
            barrier.wait()
            ids.append(client.videos.create(prompt="A heron at dawn", extra_headers={"Idempotency-Key": "once"}).id)
        except openai.ConflictError:
            conflicts.append(i)
        except Exception as exc:  # noqa: BLE001 -- collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert errors == [] and conflicts == []
    assert len(ids) == 8 and len(set(ids)) == 1
    assert Generation.objects.count() == 1


def test_a_list_page_costs_the_same_queries_for_5_or_50_videos(client, alice, official):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    auth = {"Authorization": f"Bearer {token_for(alice)}"}

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/v1/videos", {"limit": "100"}, headers=auth).status_code == 200
        return len(captured)

    for i in range(5):
        make_generation(alice, official, prompt=f"Take {i}")
    queries()  # the token's first request opens its rate-limit window: one write more
    with_5 = queries()
    for i in range(45):
        make_generation(alice, official, prompt=f"More {i}")
    assert queries() == with_5
