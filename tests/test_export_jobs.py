"""Exports are built by a worker, never inside the request: the page shows the progress, then a download
link. The export's state lives in its row (a lease), so a worker that died or a task the broker dropped
does not leave it hanging, and two builds never both finish it."""

import json
import time
import zipfile
from datetime import timedelta
from io import StringIO

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from generations.jobs.models import Generation, upload_thumbnail, upload_video
from generations.storyboards import export
from generations.storyboards.models import Export, ExportStatus, Scene
from tests import workers
from tests.exports import download, export_zip, open_zip, request_export
from tests.factories import make_generation, make_series

HX = {"HX-Request": "true"}


def make_library(owner, backend, count: int) -> list[Generation]:
    """`count` finished videos with tiny files (a video and a thumbnail each), made in bulk."""
    now = timezone.now()
    library = []
    for number in range(count):
        generation = Generation(
            owner=owner,
            backend=backend,
            prompt=f"Clip {number}",
            model="sora-2",
            seconds=4,
            size="720x1280",
            status="completed",
            created_at=now - timedelta(seconds=count - number),
            completed_at=now,
        )
        generation.idempotency_key = generation.uuid.hex
        generation.video.name = default_storage.save(upload_video(generation, "v.mp4"), ContentFile(b"MP4 %d" % number))
        generation.thumbnail.name = default_storage.save(
            upload_thumbnail(generation, "t.webp"), ContentFile(b"RIFF %d" % number)
        )
        library.append(generation)
    return Generation.objects.bulk_create(library, batch_size=500)


def status_panel(client, one: Export):
    return client.get(reverse("export_detail", args=[one.pk]), headers=HX)


@pytest.mark.django_db
def test_the_request_only_queues_the_export_and_the_page_follows_it_to_the_download(
    client, alice, official_offline, held_tasks
):
    series = make_series(alice, "Rex at sea", backend=official_offline)
    take = make_generation(
        alice,
        official_offline,
        scene=Scene.objects.create(series=series, prompt="A boat"),
        status="completed",
        video=b"VIDEO",
    )
    client.force_login(alice)

    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(reverse("series_export", args=[series.pk]))

    (one,) = Export.objects.all()
    assert response.status_code == 302 and response.url == reverse("export_detail", args=[one.pk])
    assert held_tasks == [("generations.tasks.build_export", (one.pk,))]  # nothing was built in the request
    assert (one.status, one.title, one.created_by) == (ExportStatus.QUEUED, "Rex at sea", alice)
    page = client.get(response.url)
    assert "Waiting for a worker" in page.text and 'hx-trigger="every 1s"' in page.text
    assert status_panel(client, one).status_code == 200  # still polling
    assert download(client, one).status_code == 404

    export.build(one.pk)  # the worker

    panel = status_panel(client, one)
    assert panel.status_code == 286  # htmx stops polling
    assert "every 1s" not in panel.text and "Ready." in panel.text
    assert f'href="{reverse("export_download", args=[one.pk])}"' in panel.text
    archive = open_zip(download(client, one))
    manifest = json.loads(archive.read("manifest.json"))
    assert (
        archive.read(manifest["playlist"][0]) == b"VIDEO" and manifest["series"]["scenes"][0]["chosen_take"] == take.pk
    )


@pytest.mark.django_db
def test_the_page_shows_how_far_the_worker_has_got(client, alice):
    one = Export.objects.create(
        created_by=alice, scope="all", title="All my work", filename="x.zip", status=ExportStatus.BUILDING
    )
    one.files_done, one.files_total = 500, 2000
    one.lease_until = timezone.now() + timedelta(minutes=1)
    one.save()
    client.force_login(alice)

    panel = status_panel(client, one)

    assert panel.status_code == 200 and 'hx-trigger="every 1s"' in panel.text
    assert "Copying file 500 of 2,000" in panel.text and 'value="25"' in panel.text


@pytest.mark.django_db
def test_a_double_click_finds_the_export_already_under_way(client, alice, held_tasks):
    client.force_login(alice)

    with TestCase.captureOnCommitCallbacks(execute=True):
        first = client.post(reverse("export_all"))
        second = client.post(reverse("export_all"))

    assert first.url == second.url and Export.objects.count() == 1 and len(held_tasks) == 1


@pytest.mark.django_db
def test_another_creator_gets_404_for_my_export(client, alice, bob):
    client.force_login(alice)
    mine = request_export(client, reverse("export_all"))
    assert Export.objects.get(pk=mine.pk).status == ExportStatus.READY

    client.force_login(bob)
    for name in ("export_detail", "export_download"):
        assert client.get(reverse(name, args=[mine.pk])).status_code == 404
    assert "All my work" not in client.get(reverse("export_list")).text


@pytest.mark.django_db
def test_only_the_newest_finished_export_of_the_same_thing_is_kept(client, alice, official_offline):
    make_generation(alice, official_offline, status="completed", video=b"ONE")
    client.force_login(alice)
    older = request_export(client, reverse("export_all"))
    older.refresh_from_db()
    older_name = older.file.name
    assert default_storage.exists(older_name)

    newer = request_export(client, reverse("export_all"))

    assert list(Export.objects.values_list("pk", flat=True)) == [newer.pk]
    assert not default_storage.exists(older_name)
    listing = client.get(reverse("export_list")).text
    assert listing.count("Download") == 1


@pytest.mark.django_db
def test_an_export_whose_worker_died_is_queued_again_when_its_page_looks(client, alice, settings, held_tasks):
    client.force_login(alice)
    with TestCase.captureOnCommitCallbacks(execute=True):
        one = request_export(client, reverse("export_all"))
    held_tasks.clear()
    # A worker claimed it, then died (SIGKILL, a deploy): its lease runs out and nobody renews it.
    assert Export.objects.get(pk=one.pk).claim("dead-worker", 60)
    Export.objects.filter(pk=one.pk).update(lease_until=timezone.now() - timedelta(seconds=1))

    with TestCase.captureOnCommitCallbacks(execute=True):
        assert "Waiting for a worker" in status_panel(client, one).text
        status_panel(client, one)  # a second look does not queue it twice

    assert held_tasks == [("generations.tasks.build_export", (one.pk,))]
    export.build(one.pk)
    one.refresh_from_db()
    assert (one.status, one.attempts) == (ExportStatus.READY, 2)


@pytest.mark.django_db
def test_a_build_that_lost_its_lease_writes_nothing(alice, monkeypatch):
    one = Export.objects.create(
        created_by=alice, scope="all", title="All my work", filename="x.zip", lease_until=timezone.now()
    )
    assert one.claim("slow-worker", 60)

    export.build(one.pk)  # a duplicate task: the live lease turns it away

    one.refresh_from_db()
    assert (one.status, one.holder, one.file.name) == (ExportStatus.BUILDING, "slow-worker", "")
    # The slow worker was taken for dead and its export handed to another build: its next report fails.
    Export.objects.filter(pk=one.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert one.requeue_if_stalled(60) and one.claim("new-worker", 60)
    assert not one.report("slow-worker", 1, 10, 60) and not one.finish("slow-worker", "x.zip", 1, 0)


@pytest.mark.django_db
def test_an_export_that_keeps_dying_ends_failed_with_a_reason(client, alice, settings):
    settings.EXPORT_MAX_ATTEMPTS = 2
    one = Export.objects.create(
        created_by=alice, scope="all", title="All my work", filename="x.zip", lease_until=timezone.now()
    )
    for holder in ("first", "second"):
        assert one.claim(holder, 60)
        Export.objects.filter(pk=one.pk).update(lease_until=timezone.now() - timedelta(seconds=1))

    export.build(one.pk)

    one.refresh_from_db()
    assert one.status == ExportStatus.FAILED and "stopped 2 times" in one.error
    client.force_login(alice)
    panel = status_panel(client, one)
    assert panel.status_code == 286 and "The export failed." in panel.text and "Export again" in panel.text


@pytest.mark.django_db
def test_a_deleted_series_export_fails_saying_so(client, alice, official_offline, held_tasks):
    series = make_series(alice, "Gone", backend=official_offline)
    client.force_login(alice)
    one = request_export(client, reverse("series_export", args=[series.pk]))
    series.delete()

    export.build(one.pk)

    one.refresh_from_db()
    assert one.status == ExportStatus.FAILED and one.error == "The series was deleted before its export was built."


@pytest.mark.django_db
def test_a_library_of_2000_videos_exports_whole(client, alice, official_offline, django_assert_max_num_queries):
    library = make_library(alice, official_offline, 2000)
    client.force_login(alice)
    started = time.monotonic()

    with django_assert_max_num_queries(60):  # the plan is a few queries, whatever the size; progress a few more
        archive = export_zip(client, reverse("export_all"))

    manifest = json.loads(archive.read("manifest.json"))
    assert len(manifest["generations"]) == 2000 and manifest["missing_files"] == []
    assert len(archive.namelist()) == 2 * 2000 + 1
    by_id = {entry["id"]: entry for entry in manifest["generations"]}
    for number in (0, 999, 1999):
        entry = by_id[library[number].pk]
        assert archive.read(entry["video"]) == b"MP4 %d" % number
        assert archive.read(entry["thumbnail"]) == b"RIFF %d" % number
    print(f"2,000 videos exported in {time.monotonic() - started:.2f} s")  # noqa: T201 - a figure for the README


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_builds_a_2000_video_export_while_the_page_polls(
    client, alice, official_offline, settings, monkeypatch
):
    """A qcluster process builds the zip (the task goes through the broker); the page goes from
    progress to the download link."""
    from django_q.conf import Conf

    make_library(alice, official_offline, 2000)
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": False}
    monkeypatch.setattr(Conf, "SYNC", False)
    client.force_login(alice)
    cluster = workers.start("qcluster", env=workers.worker_env(settings))
    try:
        started = client.post(reverse("export_all"))
        one = Export.objects.get()
        assert started.url == reverse("export_detail", args=[one.pk]) and one.status == ExportStatus.QUEUED
        phases = []

        def ready() -> bool:
            panel = status_panel(client, one)
            phases.append(_phase(panel.text))
            return panel.status_code == 286

        workers.wait_for(ready, timeout=120, what="the export to be built")
        one.refresh_from_db()
        assert phases[-1] == "ready" and set(phases) <= {"waiting", "listing", "copying", "ready"}, phases
        archive = open_zip(download(client, one))
        assert len(json.loads(archive.read("manifest.json"))["generations"]) == 2000
        assert (one.files_done, one.files_total, one.attempts) == (4000, 4000, 1)
    finally:
        workers.kill(cluster)


def _phase(text: str) -> str:
    for marker, phase in (
        ("Ready.", "ready"),
        ("Copying file", "copying"),
        ("Listing the files", "listing"),
        ("Waiting for a worker", "waiting"),
    ):
        if marker in text:
            return phase
    return text[:300]


@pytest.mark.django_db(transaction=True)
def test_a_script_exports_with_the_same_builder_and_the_zip_shows_on_the_exports_page(
    client, alice, bob, official_offline, tmp_path
):
    make_library(alice, official_offline, 3)
    series = make_series(alice, "Rex at sea", backend=official_offline)
    out = StringIO()

    call_command("export", user="alice", output=str(tmp_path / "all.zip"), json=True, stdout=out)

    result = json.loads(out.getvalue())
    assert (
        result["files"] == 6
        and result["missing_files"] == 0
        and result["bytes"] == (tmp_path / "all.zip").stat().st_size
    )
    with zipfile.ZipFile(tmp_path / "all.zip") as archive:
        assert len(json.loads(archive.read("manifest.json"))["generations"]) == 3
    client.force_login(alice)
    assert "Download" in client.get(reverse("export_list")).text
    with pytest.raises(CommandError, match="bob has no series"):
        call_command("export", user="bob", series=series.pk)
