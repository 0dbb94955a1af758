"""Media in an S3 bucket (AWS_STORAGE_BUCKET_NAME), against a local S3 server started by the test: videos are
stored there by a real generation, and creators are sent to short-lived signed links instead of having the
bytes streamed through a web or worker process. The same access checks decide who gets a link."""

import io
import json
import subprocess
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import imageio_ffmpeg
import pytest
import requests
from django.conf import settings
from django.urls import reverse

from characters import avatars, registry, stills
from characters.models import BindingStatus
from generations.jobs import lifecycle
from generations.jobs.lifecycle import GenerationRequest
from generations.management.commands import generate
from generations.states import Status
from generations.storyboards.models import ExportStatus
from simulator.render import look_for, render_mp4
from sora_studio import files
from tests.conftest import drive
from tests.exports import download, request_export
from tests.factories import make_character, make_generation, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def signed_link(response, bucket) -> str:
    """The redirect's target, checked to be a signed link to the bucket that the browser may keep briefly."""
    assert response.status_code == 302, response
    location = response["Location"]
    assert location.startswith(f"{bucket.endpoint}/{bucket.name}/")
    assert response["Cache-Control"] == f"private, max-age={settings.MEDIA_URL_SECONDS // 2}"
    return location


def query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def csp(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in policy.split(";") if part.strip())}


def test_a_generated_video_is_stored_in_the_bucket_and_its_owner_plays_it_by_a_signed_link(
    client, alice, bob, official, s3_media
):
    generation = lifecycle.start(
        GenerationRequest(
            alice, prompt="A lighthouse at dawn", model="sora-2", seconds=4, size="1280x720", backend=official
        )
    ).generation

    generation = drive(generation)

    assert generation.status == Status.COMPLETED, generation.error_message
    # The files are objects in the bucket, not files under MEDIA_ROOT.
    assert {generation.video.name, generation.thumbnail.name} <= s3_media.keys()
    assert not (Path(settings.MEDIA_ROOT) / generation.video.name).exists()
    stored = s3_media.read(generation.video.name)
    assert stored[4:8] == b"ftyp"

    client.force_login(alice)
    page = client.get(reverse("generation_detail", args=[generation.pk]))
    assert f'src="{reverse("generation_video", args=[generation.pk])}"' in page.text  # the page names our URL…
    link = signed_link(client.get(reverse("generation_video", args=[generation.pk])), s3_media)
    # …which sends the browser to the bucket, an origin the page's policy allows for <video> and <img>.
    assert s3_media.endpoint in csp(page)["media-src"] and s3_media.endpoint in csp(page)["img-src"]
    answer = requests.get(link, timeout=10)
    assert answer.status_code == 200 and answer.content == stored
    assert answer.headers["Content-Type"] == "video/mp4"
    seek = requests.get(link, headers={"Range": "bytes=100-199"}, timeout=10)
    assert seek.status_code == 206 and seek.content == stored[100:200]  # the bucket answers ranges: players seek

    saved = requests.get(
        signed_link(client.get(reverse("generation_video", args=[generation.pk]) + "?download=1"), s3_media),
        timeout=10,
    )
    assert saved.headers["Content-Disposition"] == f'attachment; filename="sora-studio-{generation.pk}.mp4"'
    thumbnail = signed_link(client.get(reverse("generation_thumbnail", args=[generation.pk])), s3_media)
    assert requests.get(thumbnail, timeout=10).content == s3_media.read(generation.thumbnail.name)

    # Someone else gets no link at all; staff do.
    client.force_login(bob)
    for name in ("generation_video", "generation_thumbnail"):
        refused = client.get(reverse(name, args=[generation.pk]))
        assert refused.status_code == 404 and "Location" not in refused
    client.force_login(make_user("root", is_staff=True))
    assert client.get(reverse("generation_video", args=[generation.pk])).status_code == 302

    # A script is given a link (there is no path on this machine), and ffmpeg reads a local copy.
    assert generate.as_json(generation)["video_file"].startswith(f"{s3_media.endpoint}/{s3_media.name}/")
    with files.local_path(generation.video) as path:
        probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", path], capture_output=True)
        assert b"Video: h264" in probe.stderr


def test_a_signed_link_is_short_lived_and_the_bucket_refuses_the_object_without_it(client, alice, s3_media, settings):
    generation = make_generation(alice, _backend(), status="completed", video=b"\x00\x00\x00\x18ftypmp42 bytes")
    client.force_login(alice)

    link = signed_link(client.get(reverse("generation_video", args=[generation.pk])), s3_media)

    signed = query(link)
    assert signed["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256" and signed["X-Amz-Signature"]
    assert signed["X-Amz-Expires"] == "600"  # MEDIA_URL_SECONDS: ten minutes from the moment it was made
    made = datetime.strptime(signed["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - made).total_seconds()) < 60
    assert "studio-test-secret" not in link  # the key id is in a signed link, never the secret
    # Without the signature the object is not public.
    assert requests.get(link.split("?")[0], timeout=10).status_code == 403
    # A shorter life is one setting away.
    settings.MEDIA_URL_SECONDS = 30
    shorter = client.get(reverse("generation_video", args=[generation.pk]))
    assert query(signed_link(shorter, s3_media))["X-Amz-Expires"] == "30"
    assert shorter["Cache-Control"] == "private, max-age=15"


def test_a_character_clip_in_the_bucket_gives_stills_an_avatar_and_registers_everywhere(
    client, alice, bob, official, aggregator, s3_media
):
    clip = render_mp4(look_for("a mossy robot", "1280x720", "clip"), 2)
    mossy = make_character(alice, "mossy", clip=clip, description="A test character")
    assert mossy.source_clip.name in s3_media.keys()

    # ffmpeg works on a local copy of the remote clip.
    assert stills.take_from_clip(mossy) == 3 and avatars.ensure_avatar(mossy)
    mossy.refresh_from_db()
    assert {mossy.avatar.name, *(s.image.name for s in mossy.stills.all())} <= s3_media.keys()
    # Uploaded to OpenAI's shape from the bucket; fetched by the aggregator from our signed clip link, which
    # streams (a provider may not follow a redirect to another origin).
    registry.bind(mossy, official)
    registry.bind(mossy, aggregator)
    assert {b.status for b in mossy.bindings.all()} == {BindingStatus.READY}, [b.error for b in mossy.bindings.all()]
    streamed = client.get(registry.clip_link(mossy).removeprefix(settings.SITE_URL))
    assert streamed.status_code == 200 and b"".join(streamed.streaming_content) == clip

    client.force_login(alice)
    for url in (
        reverse("characters:avatar", args=[mossy.pk]),
        reverse("characters:still", args=[mossy.pk, 1]),
        reverse("characters:source_clip", args=[mossy.pk]),
    ):
        link = signed_link(client.get(url), s3_media)
        assert requests.get(link, timeout=10).status_code == 200
    client.force_login(bob)
    assert client.get(reverse("characters:source_clip", args=[mossy.pk])).status_code == 404


def test_an_export_is_stored_in_the_bucket_and_downloaded_by_a_signed_link(client, alice, bob, s3_media):
    backend = _backend()
    videos = [make_generation(alice, backend, status="completed", video=b"ftyp video %d" % n) for n in range(12)]
    s3_media.client.delete_object(Bucket=s3_media.name, Key=videos[5].video.name)  # lost from the bucket
    client.force_login(alice)

    export = request_export(client, reverse("export_all"))

    export.refresh_from_db()
    assert export.status == ExportStatus.READY and export.file.name in s3_media.keys()
    link = signed_link(download(client, export), s3_media)
    assert "attachment" in query(link)["response-content-disposition"]
    answer = requests.get(link, timeout=10)
    assert answer.content == s3_media.read(export.file.name)
    assert answer.headers["Content-Disposition"] == f'attachment; filename="{export.filename}"'
    # Fetched several at a time from the bucket, written in order, each file its own bytes; the lost one noted.
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    manifest = json.loads(archive.read("manifest.json"))
    entries = {entry["id"]: entry for entry in manifest["generations"]}
    assert manifest["missing_files"] == [f"generations/{videos[5].pk}-video.mp4"] and export.missing_files == 1
    for number, video in enumerate(videos):
        if number != 5:
            assert archive.read(entries[video.pk]["video"]) == b"ftyp video %d" % number
    client.force_login(bob)
    assert download(client, export).status_code == 404


def _backend():
    from tests.factories import make_dead_backend

    return make_dead_backend("Official", "openai_videos")
