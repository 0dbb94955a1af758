"""Series: create one with defaults, add scenes in order, generate all (refusals shown, not 500s)."""

import pytest
from django.urls import reverse

from generations.jobs.models import Generation
from generations.storyboards.models import Scene, Series
from tests.factories import make_character, make_generation, make_series

pytestmark = pytest.mark.django_db


def test_a_series_is_created_with_its_defaults(client, alice, bob, official_offline):
    rex = make_character(alice, "rex")
    make_character(bob, "bobs", name="Bob's")
    client.force_login(alice)

    form = client.get(reverse("series_list"))
    assert "@rex" in form.text and "@bobs" not in form.text  # only my own characters to pick
    response = client.post(
        reverse("series_list"),
        {
            "title": "Rex at sea",
            "description": "",
            "characters": [rex.pk],
            "backend": official_offline.pk,
            "model": "sora-2",
            "seconds": "8",
            "size": "1280x720",
        },
    )

    series = Series.objects.get()
    assert response.url == reverse("series_detail", args=[series.pk])
    assert (series.owner, series.backend, series.seconds, series.size) == (alice, official_offline, 8, "1280x720")
    assert list(series.characters.all()) == [rex]


def test_defaults_no_backend_can_make_are_refused(client, alice, official_offline):
    client.force_login(alice)

    response = client.post(
        reverse("series_list"),
        {"title": "x", "backend": official_offline.pk, "model": "sora-2", "seconds": "4", "size": "1792x1024"},
    )

    assert response.status_code == 200
    assert "not 1792x1024" in response.text
    assert not Series.objects.exists()


def test_generate_all_starts_each_scene_and_reports_refusals(
    client, alice, official_offline, django_capture_on_commit_callbacks
):
    series = make_series(alice, "Rex at sea", backend=official_offline)
    client.force_login(alice)
    for prompt in ["A boat leaves the harbour", "@nobody waves from the shore", "The boat sinks"]:
        client.post(reverse("scene_add", args=[series.pk]), {"prompt": prompt})
    assert list(series.scenes.values_list("prompt", flat=True)) == [
        "A boat leaves the harbour",
        "@nobody waves from the shore",
        "The boat sinks",
    ]  # in the order added

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("series_generate_all", args=[series.pk]), follow=True)

    assert response.status_code == 200
    assert Generation.objects.filter(scene__series=series).count() == 2
    assert "Scene 2: No character called @nobody in your library." in response.text
    assert "Started 2 scenes." in response.text
    assert response.text.count('hx-trigger="every 2s"') == 2  # the two new takes, live

    with django_capture_on_commit_callbacks(execute=False):
        again = client.post(reverse("series_generate_all", args=[series.pk]), follow=True)
    assert Generation.objects.count() == 2  # running scenes are not started twice
    assert "Skipped 2 scenes already running or done" in again.text


def test_one_scene_can_be_regenerated_in_place(client, alice, official_offline, django_capture_on_commit_callbacks):
    series = make_series(alice, "Rex at sea", backend=official_offline)
    scene = Scene.objects.create(series=series, prompt="A boat")
    client.force_login(alice)

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("scene_generate", args=[scene.pk]), headers={"HX-Request": "true"})

    take = Generation.objects.get()
    assert take.scene == scene and take.seconds == series.seconds
    assert response.text.lstrip().startswith(f'<li id="scene-{scene.pk}"')
    assert f'id="gen-{take.pk}"' in response.text
    assert "Regenerate" in response.text


# --- Editing a series and its scenes ------------------------------------------------------------

HX = {"HX-Request": "true"}


def events(response) -> set[str]:
    """The client events an htmx response triggers (HX-Trigger is JSON)."""
    import json

    return set(json.loads(response.get("HX-Trigger") or "{}"))


VIDEO = b"\x00\x00\x00\x18ftypmp42 a take"


def make_take(scene, backend, *, status="completed", minutes_ago=0, prompt=None):
    from datetime import timedelta

    from django.utils import timezone

    done = status == "completed"
    return make_generation(
        scene.series.owner,
        backend,
        scene=scene,
        prompt=prompt or scene.prompt,
        status=status,
        created_at=timezone.now() - timedelta(minutes=minutes_ago),
        video=VIDEO + str(scene.pk).encode() if done else None,
        thumbnail=b"RIFF0000WEBP" if done else None,
    )


SERIES_FORM = {
    "title": "Rex at sea",
    "description": "",
    "backend": "",
    "model": "sora-2",
    "seconds": "4",
    "size": "720x1280",
}


def test_a_series_is_edited_and_the_page_shows_the_new_defaults(client, alice, official_offline):
    series = make_series(alice, "Rex at sea", backend=official_offline)
    rex = make_character(alice, "rex")
    client.force_login(alice)

    form = client.get(reverse("series_edit", args=[series.pk]))
    assert form.status_code == 200 and 'value="Rex at sea"' in form.text
    response = client.post(
        reverse("series_edit", args=[series.pk]),
        {
            **SERIES_FORM,
            "title": "Rex ashore",
            "description": "He walks now.",
            "characters": [rex.pk],
            "seconds": "8",
            "size": "1280x720",
        },
        follow=True,
    )

    assert response.redirect_chain[-1][0] == reverse("series_detail", args=[series.pk])
    assert "<h1>Rex ashore</h1>" in response.text
    assert "automatic backend · sora-2 · 8 s · 1280x720" in response.text
    assert "He walks now." in response.text and "@rex" in response.text


def test_someone_elses_character_or_garbage_is_an_error_next_to_its_field(client, alice, bob, official_offline):
    series = make_series(alice, "Rex at sea")
    make_character(alice, "rex")
    bobs = make_character(bob, "pip")
    client.force_login(alice)

    response = client.post(
        reverse("series_edit", args=[series.pk]),
        {**SERIES_FORM, "characters": [bobs.pk], "backend": "abc", "seconds": "x"},
    )

    assert response.status_code == 200
    assert 'class="field field-characters has-error"' in response.text
    assert 'class="field field-backend has-error"' in response.text
    assert 'class="field field-seconds has-error"' in response.text
    characters_field = response.text.split("field field-characters has-error")[1].split("</fieldset>")[0]
    assert f"Select a valid choice. {bobs.pk} is not one of the available choices." in characters_field
    assert "@rex" in response.text and "@pip" not in response.text
    assert list(Series.objects.get().characters.all()) == []


def scene_board(response) -> str:
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<section id="scene-board"')
    return response.text


def scene_order(text: str, prompts: list[str]) -> list[str]:
    return sorted(prompts, key=text.index)


def test_scenes_are_added_edited_reordered_and_deleted_in_place(client, alice, official_offline):
    series = make_series(alice, "Rex at sea", backend=official_offline)
    client.force_login(alice)
    add = reverse("scene_add", args=[series.pk])

    for prompt in ["The harbour", "The storm", "The island"]:
        board = client.post(add, {"prompt": prompt}, headers=HX)
        assert events(board) == {"scenesChanged"}  # the progress bar counts the new scene
    text = scene_board(board)
    assert "Added scene 3." in text
    assert scene_order(text, ["The harbour", "The storm", "The island"]) == ["The harbour", "The storm", "The island"]

    empty = client.post(add, {"prompt": "   "}, headers=HX)
    assert 'class="field field-prompt has-error"' in scene_board(empty)
    assert "This field is required." in empty.text
    assert series.scenes.count() == 3

    harbour, storm, island = series.scenes.all()
    editor = client.get(reverse("scene_edit", args=[storm.pk]), headers=HX)
    assert editor.text.lstrip().startswith(f'<li id="scene-{storm.pk}"')
    assert f'<label for="scene-{storm.pk}-prompt">Prompt</label>' in editor.text
    assert "The storm</textarea>" in editor.text
    blank = client.post(reverse("scene_edit", args=[storm.pk]), {"prompt": ""}, headers=HX)
    assert blank.status_code == 200 and "This field is required." in blank.text
    saved = client.post(reverse("scene_edit", args=[storm.pk]), {"prompt": "The great storm"}, headers=HX)
    assert saved.text.lstrip().startswith(f'<li id="scene-{storm.pk}"')
    assert "The great storm" in saved.text and "<textarea" not in saved.text

    moved = client.post(reverse("scene_move", args=[island.pk]), {"direction": "up"}, headers=HX)
    assert scene_order(scene_board(moved), ["The harbour", "The great storm", "The island"]) == [
        "The harbour",
        "The island",
        "The great storm",
    ]
    assert "Scene moved to position 2." in moved.text
    assert f'id="scene-{harbour.pk}-up" title="Move up"\n          aria-label="Move scene 1 up" disabled' in moved.text
    assert client.post(reverse("scene_move", args=[island.pk]), {"direction": "sideways"}).status_code == 400

    deleted = client.post(reverse("scene_delete", args=[harbour.pk]), headers=HX)
    text = scene_board(deleted)
    assert "Deleted scene 1." in text and "The harbour" not in text
    assert scene_order(text, ["The island", "The great storm"]) == ["The island", "The great storm"]
    assert "Scene 1" in text and "Scene 2" in text and "Scene 3" not in text


def test_scene_actions_work_without_javascript(client, alice, official_offline):
    series = make_series(alice, "Rex at sea", backend=official_offline)
    first = Scene.objects.create(series=series, prompt="First", position=0)
    second = Scene.objects.create(series=series, prompt="Second", position=1)
    client.force_login(alice)

    assert client.post(reverse("scene_move", args=[second.pk]), {"direction": "up"}).status_code == 302
    assert list(series.scenes.values_list("prompt", flat=True)) == ["Second", "First"]
    page = client.get(reverse("scene_edit", args=[first.pk]))
    assert page.status_code == 200 and "<textarea" in page.text and "Sora Studio" in page.text
    assert client.post(reverse("scene_edit", args=[first.pk]), {"prompt": "Uno"}).status_code == 302
    empty = client.post(reverse("scene_add", args=[series.pk]), {"prompt": ""})
    assert empty.status_code == 200 and "This field is required." in empty.text
    assert client.post(reverse("scene_delete", args=[first.pk])).status_code == 302
    assert list(series.scenes.values_list("prompt", flat=True)) == ["Second"]


def test_deleting_a_scene_keeps_its_takes_in_the_gallery(client, alice, official_offline):
    series = make_series(alice, "Rex at sea", backend=official_offline)
    scene = Scene.objects.create(series=series, prompt="A boat")
    take = make_take(scene, official_offline)
    client.force_login(alice)

    client.post(reverse("scene_delete", args=[scene.pk]), headers=HX)

    take.refresh_from_db()
    assert take.scene is None and take.deleted_at is None
    assert f'id="gen-{take.pk}"' in client.get(reverse("gallery")).text


# --- Takes ---------------------------------------------------------------------------------------


def test_regenerating_keeps_the_earlier_takes(client, alice, official_offline, django_capture_on_commit_callbacks):
    series = make_series(alice, "Rex at sea", backend=official_offline)
    scene = Scene.objects.create(series=series, prompt="A boat")
    first = make_take(scene, official_offline, minutes_ago=5)
    client.force_login(alice)

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("scene_generate", args=[scene.pk]), headers=HX)

    second = scene.takes.exclude(pk=first.pk).get()
    assert events(response) == {"scenesChanged"}  # the progress bar starts polling again
    assert f'id="gen-{first.pk}"' in response.text and f'id="gen-{second.pk}"' in response.text
    assert "2 takes" in response.text
    # The finished take stays the scene's until the new one is done (or another is chosen).
    assert response.text.index(f'id="gen-{second.pk}"') < response.text.index("Scene's take")
    assert 'hx-trigger="every 2s"' in response.text  # the new take's card is live
    assert first.pk in series.scenes.get().takes.values_list("pk", flat=True)


def test_a_refused_scene_says_why_next_to_it(client, alice, official_offline):
    series = make_series(alice, "Rex at sea", backend=official_offline)
    scene = Scene.objects.create(series=series, prompt="@nobody waves")
    client.force_login(alice)

    response = client.post(reverse("scene_generate", args=[scene.pk]), headers=HX)

    assert response.status_code == 200
    assert '<p class="error-text" role="alert">No character called @nobody in your library.</p>' in response.text
    assert "HX-Trigger" not in response


def test_generate_all_in_place_shows_each_refusal_by_its_scene(
    client, alice, official_offline, django_capture_on_commit_callbacks
):
    series = make_series(alice, "Rex at sea", backend=official_offline)
    Scene.objects.create(series=series, prompt="A boat", position=0)
    bad = Scene.objects.create(series=series, prompt="@nobody waves", position=1)
    client.force_login(alice)

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("series_generate_all", args=[series.pk]), headers=HX)

    text = scene_board(response)
    assert "Started 1 scene." in text and "1 scene could not start: see below." in text
    bad_scene = text[text.index(f'<li id="scene-{bad.pk}"') :]
    assert "No character called @nobody in your library." in bad_scene
    assert events(response) == {"scenesChanged"}


def test_choosing_a_take_changes_what_the_series_plays(client, alice, official_offline):
    series = make_series(alice, "Rex at sea", backend=official_offline)
    scene = Scene.objects.create(series=series, prompt="A boat")
    older = make_take(scene, official_offline, minutes_ago=10)
    newer = make_take(scene, official_offline, minutes_ago=5)
    running = make_take(scene, official_offline, status="in_progress")
    client.force_login(alice)
    watch = reverse("series_watch", args=[series.pk])

    assert f'src="{reverse("generation_video", args=[newer.pk])}"' in client.get(watch).text

    chosen = client.post(reverse("scene_choose_take", args=[scene.pk, older.pk]), headers=HX)
    assert chosen.text.lstrip().startswith(f'<li id="scene-{scene.pk}"')
    older_li = chosen.text[chosen.text.index(f'id="gen-{older.pk}"') :]
    assert older_li.index("chosen by you") < older_li.index("</li>")
    assert f'src="{reverse("generation_video", args=[older.pk])}"' in client.get(watch).text

    refused = client.post(reverse("scene_choose_take", args=[scene.pk, running.pk]), headers=HX)
    assert "Only a completed take can be the scene&#x27;s take." in refused.text
    other = Scene.objects.create(series=series, prompt="Elsewhere")
    assert client.post(reverse("scene_choose_take", args=[other.pk, older.pk])).status_code == 404
    assert Scene.objects.get(pk=scene.pk).chosen_take == older


def test_the_watch_page_plays_the_finished_takes_in_scene_order(client, alice, official_offline):
    series = make_series(alice, "Rex at sea", backend=official_offline)
    second = Scene.objects.create(series=series, prompt="Second scene", position=2)
    first = Scene.objects.create(series=series, prompt="First scene", position=1)
    unfinished = Scene.objects.create(series=series, prompt="Third scene", position=3)
    take_2, take_1 = make_take(second, official_offline), make_take(first, official_offline)
    make_take(unfinished, official_offline, status="failed")
    client.force_login(alice)

    page = client.get(reverse("series_watch", args=[series.pk])).text

    assert page.count("<video") == 1
    assert f'src="{reverse("generation_video", args=[take_1.pk])}"' in page
    sources = [reverse("generation_video", args=[t.pk]) for t in (take_1, take_2)]
    assert page.index(f'data-src="{sources[0]}"') < page.index(f'data-src="{sources[1]}"')
    assert "No finished take yet" in page and "2 of 3 scenes have a finished take" in page


def test_the_watch_page_says_so_when_nothing_is_finished(client, alice, official_offline):
    series = make_series(alice, "Rex at sea", backend=official_offline)
    Scene.objects.create(series=series, prompt="A boat")
    client.force_login(alice)

    page = client.get(reverse("series_watch", args=[series.pk]))

    assert page.status_code == 200 and "<video" not in page.text
    assert "Nothing to watch yet" in page.text


# --- Progress ------------------------------------------------------------------------------------


def test_the_progress_bar_polls_while_a_take_runs_and_stops_with_286(client, alice, official_offline):
    series = make_series(alice, "Rex at sea", backend=official_offline)
    done, running = Scene.objects.create(series=series, prompt="One"), Scene.objects.create(series=series, prompt="Two")
    make_take(done, official_offline)
    take = make_take(running, official_offline, status="in_progress")
    client.force_login(alice)
    url = reverse("series_progress", args=[series.pk])

    live = client.get(url, headers=HX)
    assert live.status_code == 200
    assert "1 of 2 scenes done · 1 running" in live.text
    assert 'hx-trigger="every 2s, scenesChanged from:body"' in live.text

    state = live.text.split("?seen=")[1].split('"')[0]
    Generation.objects.filter(pk=take.pk).update(status="completed")
    finished = client.get(url, {"seen": state}, headers=HX)
    assert finished.status_code == 286
    assert "2 of 2 scenes done" in finished.text and "every 2s" not in finished.text
    assert events(finished) == {"takesChanged"}  # the scenes refresh their take markers
    assert "HX-Trigger" not in client.get(url, {"seen": finished.text.split("?seen=")[1].split('"')[0]}, headers=HX)


def test_the_series_page_shows_progress_and_each_scenes_status(client, alice, official_offline):
    series = make_series(alice, "Rex at sea", backend=official_offline)
    failed = Scene.objects.create(series=series, prompt="One", position=0)
    Scene.objects.create(series=series, prompt="Two", position=1)
    take = make_take(failed, official_offline, status="failed")
    Generation.objects.filter(pk=take.pk).update(error_message="The provider refused the prompt.")
    client.force_login(alice)

    page = client.get(reverse("series_detail", args=[series.pk])).text

    assert "0 of 2 scenes done · " in page and "1 failed" in page
    assert 'hx-trigger="scenesChanged from:body"' in page  # idle: no polling until something starts
    assert "badge-failed" in page and "The provider refused the prompt." in page
    assert "Not generated yet." in page


def test_the_series_page_needs_the_same_queries_for_more_scenes(
    client, alice, official_offline, django_assert_max_num_queries
):
    series = make_series(alice, "Rex at sea", backend=official_offline)
    rex = make_character(alice, "rex")
    series.characters.add(rex)
    client.force_login(alice)

    def add_scenes(count):
        for n in range(count):
            scene = Scene.objects.create(series=series, prompt=f"Scene {n}")
            make_take(scene, official_offline).characters.add(rex)
            make_take(scene, official_offline, status="in_progress")

    add_scenes(2)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        client.get(reverse("series_detail", args=[series.pk]))
    add_scenes(6)
    with django_assert_max_num_queries(len(few)):
        client.get(reverse("series_detail", args=[series.pk]))


# --- Deleting a series, and other creators ------------------------------------------------------


def test_a_series_is_deleted_after_a_confirmation_and_its_takes_stay(client, alice, official_offline):
    series = make_series(alice, "Rex at sea", backend=official_offline)
    scene = Scene.objects.create(series=series, prompt="A boat")
    take = make_take(scene, official_offline)
    client.force_login(alice)

    confirm = client.get(reverse("series_delete", args=[series.pk]))
    assert "Delete “Rex at sea”?" in confirm.text and "Its 1 take stay in your gallery" in confirm.text
    assert Series.objects.exists()

    response = client.post(reverse("series_delete", args=[series.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("series_list")
    assert "Deleted “Rex at sea”." in response.text
    assert not Series.objects.exists() and Generation.objects.filter(pk=take.pk, deleted_at__isnull=True).exists()


def test_another_creator_gets_404_on_every_series_page(client, alice, bob, official_offline):
    series = make_series(alice, "Rex at sea", backend=official_offline)
    scene = Scene.objects.create(series=series, prompt="A boat")
    take = make_take(scene, official_offline)
    client.force_login(bob)

    for url in [
        reverse(name, args=[series.pk])
        for name in (
            "series_detail",
            "series_edit",
            "series_delete",
            "series_progress",
            "series_watch",
        )
    ] + [reverse(name, args=[scene.pk]) for name in ("scene_detail", "scene_edit")]:
        assert client.get(url).status_code == 404, url
        assert client.get(url, headers=HX).status_code == 404, url
    for url in (
        [
            reverse(name, args=[series.pk])
            for name in ("series_edit", "series_delete", "scene_add", "series_generate_all", "series_export")
        ]
        + [reverse(name, args=[scene.pk]) for name in ("scene_edit", "scene_delete", "scene_move", "scene_generate")]
        + [reverse("scene_choose_take", args=[scene.pk, take.pk])]
    ):
        assert client.post(url, {**SERIES_FORM, "prompt": "x", "direction": "up"}).status_code == 404, url
    assert Series.objects.get().title == "Rex at sea" and Scene.objects.count() == 1


def test_a_non_numeric_id_is_a_404_not_an_error(client, alice):
    client.force_login(alice)

    for url in [
        "/series/abc/",
        "/series/1x/watch/",
        "/series/x/export/",
        "/exports/x/",
        "/scenes/abc/edit/",
        "/scenes/1/takes/x/choose/",
    ]:
        assert client.get(url).status_code == 404, url
