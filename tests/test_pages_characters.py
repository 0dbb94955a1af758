"""The character library: create from a URL or a clip, register elsewhere, extract from a video, clip links."""

from urllib.parse import urlsplit

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from characters import registry
from characters.models import Character, CharacterBinding
from tests.factories import make_character, make_dead_backend, make_generation

pytestmark = pytest.mark.django_db


CLIP = b"\x00\x00\x00\x18ftypmp42 a tiny clip"


def test_a_character_from_a_video_url_is_registered_on_the_chosen_backends(
    client, alice, official_offline, aggregator_offline, django_capture_on_commit_callbacks
):
    client.force_login(alice)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            reverse("characters:new"),
            {
                "name": "Rex the crab",
                "handle": "@Rex",
                "description": "A red crab",
                "video_url": "https://example.com/rex.mp4",
                "backends": [official_offline.pk, aggregator_offline.pk],
            },
        )

    character = Character.objects.get()
    assert response.status_code == 302 and response.url == reverse("characters:detail", args=[character.pk])
    assert (character.owner, character.handle, character.source_url) == (alice, "rex", "https://example.com/rex.mp4")
    assert sorted(character.bindings.values_list("backend__name", "status")) == [
        ("Aggregator", "processing"),
        ("Official", "processing"),
    ]
    assert len(callbacks) == 2  # one registration per backend, after the commit

    page = client.get(response.url)
    assert "@rex" in page.text and "Processing" in page.text
    assert f'hx-get="{response.url}" hx-trigger="every 2s"' in page.text


def test_the_form_offers_every_capable_backend_checked(client, alice, official_offline, aggregator_offline):
    make_dead_backend("No characters here", supports_characters=False)
    client.force_login(alice)

    response = client.get(reverse("characters:new"))

    assert response.text.count('name="backends"') == 2
    assert response.text.count('name="backends" value=') == 2
    assert "No characters here" not in response.text
    assert response.text.count(" checked") == 2


def test_a_handle_already_taken_is_a_clear_error(client, alice, bob, official_offline):
    make_character(alice, "rex")
    make_character(bob, "pip", name="Bob's Pip")
    client.force_login(alice)

    taken = client.post(
        reverse("characters:new"), {"name": "Rex 2", "handle": "rex", "video_url": "https://example.com/rex.mp4"}
    )
    assert taken.status_code == 200
    assert "You already have a character called @rex" in taken.text

    # Handles are per owner: bob's @pip does not stop alice from having one.
    mine = client.post(
        reverse("characters:new"), {"name": "Pip", "handle": "pip", "video_url": "https://example.com/pip.mp4"}
    )
    assert mine.status_code == 302


def test_a_url_and_an_upload_together_are_refused(client, alice, official_offline):
    client.force_login(alice)

    response = client.post(
        reverse("characters:new"),
        {
            "name": "Rex",
            "handle": "rex",
            "video_url": "https://example.com/rex.mp4",
            "clip": SimpleUploadedFile("rex.mp4", CLIP, content_type="video/mp4"),
        },
    )

    assert response.status_code == 200
    assert "Give a video URL or upload a clip, not both." in response.text
    assert not Character.objects.exists()


def test_neither_a_url_nor_an_upload_is_refused(client, alice, official_offline):
    client.force_login(alice)

    response = client.post(reverse("characters:new"), {"name": "Rex", "handle": "rex"})

    assert "Give a video URL or upload a clip." in response.text
    assert not Character.objects.exists()


def test_an_upload_that_is_not_a_video_is_refused(client, alice, official_offline, settings):
    client.force_login(alice)

    wrong_kind = client.post(
        reverse("characters:new"),
        {"name": "Rex", "handle": "rex", "clip": SimpleUploadedFile("rex.gif", b"GIF89a", content_type="image/gif")},
    )
    assert "Upload an .mp4, .webm or .mov clip." in wrong_kind.text

    settings.CHARACTER_CLIP_MAX_BYTES = 10
    too_big = client.post(
        reverse("characters:new"),
        {"name": "Rex", "handle": "rex", "clip": SimpleUploadedFile("rex.mp4", CLIP, content_type="video/mp4")},
    )
    assert "The clip is larger than" in too_big.text
    assert not Character.objects.exists()


def test_an_uploaded_clip_is_stored(client, alice, official_offline, django_capture_on_commit_callbacks):
    client.force_login(alice)

    with django_capture_on_commit_callbacks(execute=False):
        client.post(
            reverse("characters:new"),
            {
                "name": "Rex",
                "handle": "rex",
                "backends": [official_offline.pk],
                "clip": SimpleUploadedFile("rex.mov", CLIP, content_type="video/quicktime"),
            },
        )

    character = Character.objects.get()
    assert character.source_clip.name.endswith(".mov")
    assert character.source_clip.read() == CLIP


def test_the_clip_link_serves_the_stored_clip_without_a_login(client, alice):
    character = make_character(alice, "rex", clip=CLIP)

    response = client.get(urlsplit(registry.clip_link(character)).path)

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == CLIP


def test_a_bad_clip_token_is_404(client, alice):
    make_character(alice, "rex", clip=CLIP)

    response = client.get(reverse("characters:clip", args=["not-a-real-token"]))

    assert response.status_code == 404


def test_the_bindings_panel_stops_polling_when_nothing_is_processing(client, alice, official_offline):
    character = make_character(alice, "rex")
    binding = CharacterBinding.objects.create(character=character, backend=official_offline, status="processing")
    client.force_login(alice)
    url = reverse("characters:detail", args=[character.pk])

    processing = client.get(url, headers={"HX-Request": "true"})
    assert processing.status_code == 200 and 'hx-trigger="every 2s"' in processing.text

    CharacterBinding.objects.filter(pk=binding.pk).update(status="failed", error="The clip shows a person.")
    failed = client.get(url, headers={"HX-Request": "true"})
    assert failed.status_code == 286
    assert "hx-trigger" not in failed.text
    assert "The clip shows a person." in failed.text
    assert "Try again" in failed.text


def test_a_character_can_be_registered_on_another_backend(
    client, alice, official_offline, aggregator_offline, django_capture_on_commit_callbacks
):
    character = make_character(alice, "rex", source_url="https://example.com/r.mp4")
    CharacterBinding.objects.create(character=character, backend=official_offline, status="ready", remote_id="char_1")
    client.force_login(alice)

    page = client.get(reverse("characters:detail", args=[character.pk]))
    assert "Register here" in page.text
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            reverse("characters:register", args=[character.pk]),
            {"backend": aggregator_offline.pk},
            headers={"HX-Request": "true"},
        )

    assert response.status_code == 200
    assert character.bindings.get(backend=aggregator_offline).status == "processing"
    assert 'hx-trigger="every 2s"' in response.text
    assert len(callbacks) == 1
    assert client.post(reverse("characters:register", args=[character.pk]), {"backend": "x"}).status_code == 404


def completed_generation(owner, backend, remote_id="task_abc"):
    return make_generation(
        owner,
        backend,
        prompt="A crab dancing",
        seconds="10",
        status="completed",
        remote_id=remote_id,
        video=CLIP,
        thumbnail=b"RIFF....WEBP",
    )


def test_a_character_extracted_from_an_aggregator_task(
    client, alice, aggregator_offline, django_capture_on_commit_callbacks
):
    generation = completed_generation(alice, aggregator_offline)
    client.force_login(alice)

    page = client.get(reverse("generation_detail", args=[generation.pk]))
    assert f'action="{reverse("characters:extract", args=[generation.pk])}"' in page.text
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            reverse("characters:extract", args=[generation.pk]),
            {"name": "Dancing crab", "handle": "crab"},
            headers={"HX-Request": "true"},
        )

    character = Character.objects.get()
    assert response["HX-Redirect"] == reverse("characters:detail", args=[character.pk])
    assert character.source_generation == generation and character.owner == alice
    assert character.source_clip.read() == CLIP  # kept, to register it on other backends later
    assert character.avatar
    binding = character.bindings.get()
    assert (binding.backend, binding.extract_from_task, binding.status) == (
        aggregator_offline,
        "task_abc",
        "processing",
    )


def test_a_character_from_an_official_video_uploads_the_clip(
    client, alice, official_offline, django_capture_on_commit_callbacks
):
    generation = completed_generation(alice, official_offline, remote_id="video_abc")
    client.force_login(alice)

    with django_capture_on_commit_callbacks(execute=False):
        client.post(reverse("characters:extract", args=[generation.pk]), {"name": "Crab", "handle": "crab"})

    binding = Character.objects.get().bindings.get()
    assert (binding.backend, binding.extract_from_task) == (official_offline, "")


def test_extracting_with_a_taken_handle_shows_the_error_in_place(client, alice, aggregator_offline):
    generation = completed_generation(alice, aggregator_offline)
    make_character(alice, "crab")
    client.force_login(alice)

    response = client.post(
        reverse("characters:extract", args=[generation.pk]),
        {"name": "Crab 2", "handle": "crab"},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    assert response.text.lstrip().startswith('<section id="extract"')
    assert "You already have a character called @crab" in response.text


def test_only_a_completed_video_becomes_a_character(client, alice, aggregator_offline):
    generation = make_generation(alice, aggregator_offline, prompt="x", seconds="10", status="in_progress")
    client.force_login(alice)

    response = client.post(reverse("characters:extract", args=[generation.pk]), {"name": "Crab", "handle": "crab"})

    assert "Only a completed video" in response.text
    assert not Character.objects.exists()


# --- Avatars, live statuses, and other creators ---------------------------------------------------

HX = {"HX-Request": "true"}


@pytest.fixture
def real_clip():
    from simulator.render import look_for, render_mp4

    return render_mp4(look_for("x", "1280x720", "clip"), 2)


def test_an_uploaded_clip_gives_the_character_an_avatar(
    client, alice, official_offline, real_clip, django_capture_on_commit_callbacks
):
    client.force_login(alice)

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            reverse("characters:new"),
            {
                "name": "Rex",
                "handle": "rex",
                "backends": [official_offline.pk],
                "clip": SimpleUploadedFile("rex.mp4", real_clip, content_type="video/mp4"),
            },
            follow=True,
        )

    character = Character.objects.get()
    assert character.avatar.name.endswith(".jpg")
    avatar_url = reverse("characters:avatar", args=[character.pk])
    assert f'<img class="avatar avatar-lg" src="{avatar_url}"' in response.text
    assert f'src="{reverse("characters:source_clip", args=[character.pk])}"' in response.text  # the clip, to check
    image = client.get(avatar_url)
    assert image.status_code == 200
    assert b"".join(image.streaming_content).startswith(b"\xff\xd8")  # a JPEG
    assert f'<img class="avatar" src="{avatar_url}"' in client.get(reverse("characters:list")).text


def test_a_clip_given_by_url_gets_its_avatar_once_the_worker_has_fetched_it(client, alice, real_clip):
    character = make_character(alice, "rex", name="rex", source_url="https://example.com/r.mp4")
    client.force_login(alice)
    url = reverse("characters:avatar", args=[character.pk])

    waiting = client.get(url)
    assert waiting["Content-Type"] == "image/svg+xml" and waiting["Cache-Control"] == "no-cache"
    assert b">R</text>" in waiting.content  # the initial until the clip is here

    character.source_clip.save("clip.mp4", ContentFile(real_clip))  # what registry.fetch_clip does
    fetched = client.get(url)
    assert b"".join(fetched.streaming_content).startswith(b"\xff\xd8")
    assert Character.objects.get().avatar


def test_a_clip_that_is_not_a_video_falls_back_to_the_initial(
    client, alice, official_offline, django_capture_on_commit_callbacks
):
    client.force_login(alice)

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            reverse("characters:new"),
            {
                "name": "Pip",
                "handle": "pip",
                "backends": [official_offline.pk],
                "clip": SimpleUploadedFile("pip.mp4", CLIP, content_type="video/mp4"),
            },
        )

    assert response.status_code == 302
    character = Character.objects.get()
    assert not character.avatar
    avatar = client.get(reverse("characters:avatar", args=[character.pk]))
    assert avatar.status_code == 200 and b">P</text>" in avatar.content


def test_a_character_without_a_clip_shows_its_initial_without_a_request(client, alice):
    make_character(alice, "zed", name="zed")
    client.force_login(alice)

    page = client.get(reverse("characters:list"))

    assert '<span class="avatar initials" aria-hidden="true">Z</span>' in page.text


def test_registering_without_a_stored_clip_says_so_next_to_the_backend(client, alice, official_offline):
    character = make_character(alice, "rex")
    client.force_login(alice)

    response = client.post(
        reverse("characters:register", args=[character.pk]), {"backend": official_offline.pk}, headers=HX
    )

    assert response.status_code == 200
    row = response.text[response.text.index(f'<th scope="row">{official_offline.name}</th>') :]
    assert row.index("This character has no stored clip to register from.") < row.index("</tr>")
    assert not character.bindings.exists()


def test_a_failed_registration_says_why_and_can_be_tried_again(
    client, alice, official_offline, django_capture_on_commit_callbacks
):
    character = make_character(alice, "rex", source_url="https://example.com/r.mp4")
    CharacterBinding.objects.create(
        character=character, backend=official_offline, status="failed", error="The clip shows a real person."
    )
    client.force_login(alice)

    page = client.get(reverse("characters:detail", args=[character.pk]))
    assert "Registration failed: The clip shows a real person." in page.text
    assert "Try again" in page.text
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        retried = client.post(
            reverse("characters:register", args=[character.pk]), {"backend": official_offline.pk}, headers=HX
        )

    assert len(callbacks) == 1
    assert character.bindings.get().status == "processing" and character.bindings.get().error == ""
    assert "Processing" in retried.text and 'hx-trigger="every 2s"' in retried.text
    assert "Registration failed" not in retried.text


def test_the_list_shows_statuses_live_while_a_registration_is_processing(client, alice, official_offline):
    character = make_character(alice, "rex")
    binding = CharacterBinding.objects.create(character=character, backend=official_offline, status="processing")
    client.force_login(alice)
    status_url = reverse("characters:status", args=[character.pk])

    page = client.get(reverse("characters:list"))
    assert f'hx-get="{status_url}" hx-trigger="every 2s"' in page.text

    live = client.get(status_url, headers=HX)
    assert live.status_code == 200 and "Processing" in live.text
    assert live.text.lstrip().startswith(f'<ul id="bindings-{character.pk}"')

    CharacterBinding.objects.filter(pk=binding.pk).update(status="ready", remote_id="char_1")
    ready = client.get(status_url, headers=HX)
    assert ready.status_code == 286 and "Ready" in ready.text and "hx-trigger" not in ready.text


def test_another_creator_gets_404_for_my_character(client, alice, bob, official_offline, real_clip):
    character = make_character(alice, "rex", clip=real_clip)
    client.force_login(bob)

    for name in ("detail", "avatar", "source_clip", "status"):
        url = reverse(f"characters:{name}", args=[character.pk])
        assert client.get(url).status_code == 404, url
        assert client.get(url, headers=HX).status_code == 404, url
    register = reverse("characters:register", args=[character.pk])
    assert client.post(register, {"backend": official_offline.pk}).status_code == 404
    assert "@rex" not in client.get(reverse("characters:list")).text
    assert client.get("/characters/abc/").status_code == 404
