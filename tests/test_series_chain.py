"""A continuous series runs its scenes as a chain: each scene waits for the previous scene's take, then starts
from its last frame. Through the whole pipeline against the simulator over real HTTP: the hand-offs are seen
in the stored videos' frames; a failed scene stops the chain and "try again" resumes it; the hook that moves
the chain on makes one take per link however often it runs."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from characters import registry
from generations.jobs import pump
from generations.jobs.models import Generation
from generations.states import Status
from generations.storyboards import board, chain
from generations.storyboards.models import ChainState, Scene
from simulator.render import look_for, render_mp4
from tests.factories import make_character, make_series
from tests.frames import CLOSE, difference, first_frame, last_frame

pytestmark = pytest.mark.django_db(transaction=True)

PROMPTS = ["@rex sets sail at dawn", "@rex meets a whale", "@rex comes home at dusk"]


@pytest.fixture
def rex(alice, official):
    character = make_character(alice, "rex", clip=render_mp4(look_for("Rex", "720x1280", "clip"), 3))
    registry.bind(character, official)
    return character


@pytest.fixture
def series(alice, official, rex, settings):
    settings.SIMULATOR_SPEED = 10
    series = make_series(alice, "Rex at sea", continuous=True, backend=official)
    series.characters.add(rex)
    for prompt in PROMPTS:
        board.add_scene(series, prompt)
    return series


def scenes(series) -> list[Scene]:
    return list(series.scenes.all())


def takes_of(scene: Scene) -> list[Generation]:
    return list(scene.takes.order_by("created_at", "pk"))


def drive_chain(series, until, timeout=90.0):
    """Play the pump (tasks and the chain's hook run inline in tests) until `until()` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if until():
            return
        pump.tick()
        time.sleep(0.05)
    states = [(s.chain_state, s.chain_note, [t.status for t in takes_of(s)]) for s in scenes(series)]
    raise AssertionError(f"the chain did not get there in {timeout} s: {states}")


def all_done(series):
    return lambda: all(
        (take := board.take_for(s)) is not None and take.status == Status.COMPLETED for s in scenes(series)
    )


def video_of(generation) -> bytes:
    with generation.video.open("rb") as handle:
        return handle.read()


def stopped_at_the_second_scene(client, series) -> list[Scene]:
    """Generate the series with its second scene bound to fail, until the chain stops at the third. Its scenes."""
    first, second, third = scenes(series)
    Scene.objects.filter(pk=second.pk).update(prompt="@rex meets a whale #fail")
    client.post(reverse("series_generate_all", args=[series.pk]))
    drive_chain(series, lambda: Scene.objects.get(pk=third.pk).chain_state == ChainState.STOPPED)
    return [first, second, third]


def test_each_scene_starts_on_the_last_frame_of_the_scene_before(client, alice, series, rex):
    client.force_login(alice)
    response = client.post(reverse("series_generate_all", args=[series.pk]), headers={"HX-Request": "true"})
    assert "Queued 3 scenes as a chain" in response.text
    first, second, third = scenes(series)
    # Only the first scene runs; the others wait, and the board says for what.
    assert [len(takes_of(s)) for s in (first, second, third)] == [1, 0, 0]
    assert [s.chain_state for s in (second, third)] == [ChainState.WAITING] * 2
    assert "Waiting for scene 1" in response.text and "Waiting for scene 2" in response.text

    drive_chain(series, all_done(series))

    takes = [takes_of(s) for s in scenes(series)]
    assert [len(t) for t in takes] == [1, 1, 1], "one take per scene"
    takes = [t[0] for t in takes]
    assert all(rex in t.characters.all() for t in takes), "the character is in every scene"
    for before, after, scene in zip(takes[:-1], takes[1:], scenes(series)[1:], strict=True):
        assert after.created_at >= before.completed_at, "a scene starts only once the one before is done"
        assert scene.chained_from_id == before.pk
        kept = after.images.get(role="start")
        assert (kept.source, kept.note) == ("last_frame", f"the last frame of video #{before.pk}")
        hand_off = difference(first_frame(video_of(after)), last_frame(video_of(before)))
        assert hand_off < CLOSE, f"scene {after.pk} does not open where {before.pk} ended ({hand_off:.1f})"
    # Not just any two frames: the first scene's opening is not the second scene's ending.
    assert difference(first_frame(video_of(takes[0])), last_frame(video_of(takes[1]))) > CLOSE
    assert takes[0].images.count() == 0, "the first scene starts from its prompt alone"

    # Watching plays the takes back to back, in order.
    page = client.get(reverse("series_watch", args=[series.pk])).text
    positions = [page.index(reverse("generation_video", args=[t.pk])) for t in takes]
    assert positions == sorted(positions)


def test_a_failed_scene_stops_the_chain_with_its_reason_and_try_again_resumes_it(client, alice, series):
    client.force_login(alice)
    first, second, third = stopped_at_the_second_scene(client, series)
    failed = takes_of(second)[0]
    assert failed.status == Status.FAILED
    third.refresh_from_db()
    assert "Scene 2 did not finish" in third.chain_note and failed.error_message in third.chain_note
    assert takes_of(third) == [], "nothing after the failed scene was started"
    page = client.get(reverse("series_detail", args=[series.pk])).text
    assert "The chain stopped here: Scene 2 did not finish" in page
    assert "Try again" in page

    Scene.objects.filter(pk=second.pk).update(prompt="@rex meets a whale")
    response = client.post(reverse("scene_generate", args=[second.pk]), headers={"HX-Request": "true"})
    assert response.status_code == 200
    third.refresh_from_db()
    assert third.chain_state == ChainState.WAITING, "try again puts the rest of the chain back in line"

    drive_chain(series, all_done(series))
    retried = takes_of(second)[-1]
    assert [len(takes_of(s)) for s in scenes(series)] == [1, 2, 1]
    assert retried.images.get(role="start").note == f"the last frame of video #{takes_of(first)[0].pk}"
    assert Scene.objects.get(pk=third.pk).chained_from_id == retried.pk
    assert difference(first_frame(video_of(takes_of(third)[0])), last_frame(video_of(retried))) < CLOSE


def test_the_hook_running_twice_or_late_makes_one_take_per_link(client, alice, series):
    client.force_login(alice)
    first, second, third = scenes(series)
    client.post(reverse("series_generate_all", args=[series.pk]))
    drive_chain(series, lambda: bool(takes_of(second)))
    ended = takes_of(first)[0]
    for _ in range(3):  # the hook again, the schedule, a second worker: the link is taken already
        chain.take_ended(ended.pk)
        chain.advance_all()
        chain.advance(series.pk)
    assert len(takes_of(second)) == 1

    # Even a caller that read the scene as waiting before the link was taken (a concurrent hook) starts nothing.
    stale = Scene.objects.get(pk=second.pk)
    stale.chain_state, stale.chain_link = ChainState.WAITING, stale.chain_link
    chain._start_link(stale, ended)
    assert len(takes_of(second)) == 1

    drive_chain(series, all_done(series))
    for _ in range(2):
        chain.advance(series.pk)
    assert [len(takes_of(s)) for s in scenes(series)] == [1, 1, 1]


def test_rechoosing_an_earlier_take_offers_to_regenerate_the_scenes_after_it(client, alice, series):
    client.force_login(alice)
    first, second, third = scenes(series)
    client.post(reverse("series_generate_all", args=[series.pk]))
    drive_chain(series, all_done(series))
    # A second take of scene 1, then the creator goes back to the first one.
    chain.resume_from(first)
    drive_chain(series, lambda: len(takes_of(first)) == 2 and takes_of(first)[1].is_terminal)
    assert [len(takes_of(s)) for s in scenes(series)] == [2, 1, 1], "nothing after it was regenerated silently"
    page = client.get(reverse("series_detail", args=[series.pk])).text
    assert "did not start from scene 1’s take" in page

    original = takes_of(first)[0]
    response = client.post(
        reverse("scene_choose_take", args=[first.pk, takes_of(first)[1].pk]), headers={"HX-Request": "true"}
    )
    assert "Regenerate the 2 scenes after it" in response.text
    client.post(reverse("scene_choose_take", args=[first.pk, original.pk]), headers={"HX-Request": "true"})
    assert [len(takes_of(s)) for s in scenes(series)] == [2, 1, 1]

    response = client.post(reverse("scene_regenerate_after", args=[first.pk]), headers={"HX-Request": "true"})
    assert "Queued 2 scenes after scene 1 as a chain" in response.text
    drive_chain(series, lambda: len(takes_of(third)) == 2 and takes_of(third)[1].status == Status.COMPLETED)
    assert Scene.objects.get(pk=second.pk).chained_from_id == original.pk
    assert [len(takes_of(s)) for s in scenes(series)] == [2, 2, 2]


def test_the_series_form_and_edit_page_set_the_chain(client, alice, official_offline):
    client.force_login(alice)
    fields = {"title": "Rex at sea", "backend": official_offline.pk, "model": "sora-2", "seconds": "4"}
    assert "Each scene starts where the previous one ended" in client.get(reverse("series_list")).text
    client.post(reverse("series_list"), {**fields, "size": "720x1280", "continuous": "on"})
    series = alice.series.get()
    assert series.continuous
    page = client.get(reverse("series_detail", args=[series.pk])).text
    assert "Continuous: each scene starts where the previous one ended" in page

    edit = client.get(reverse("series_edit", args=[series.pk])).text
    assert 'name="continuous"' in edit and "checked" in edit.split('name="continuous"')[1].split(">")[0]
    board.add_scene(series, "A scene waiting in the chain")
    series.scenes.update(chain_state=ChainState.WAITING)
    client.post(reverse("series_edit", args=[series.pk]), {**fields, "size": "720x1280"})
    series.refresh_from_db()
    assert not series.continuous
    assert [s.chain_state for s in series.scenes.all()] == [ChainState.IDLE], "no longer waits for anything"


def test_the_chain_advanced_from_several_threads_at_once_starts_one_take(alice, series, monkeypatch):
    import threading

    from django.db import connection

    from sora_studio import queue
    from tests.conftest import drive

    monkeypatch.setattr(queue, "take_ended_on_commit", lambda generation_id: None)  # the hook is ours to run
    first, second, third = scenes(series)
    chain.generate_all(series)
    drive(takes_of(first)[0], timeout=30)
    assert takes_of(second) == []

    gate = threading.Barrier(4)
    failures = []

    def advance():
        try:
            gate.wait(10)
            chain.advance(series.pk)
        except Exception as exc:  # noqa: BLE001 - a thread cannot fail the test itself: reported below
            failures.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=advance) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert len(takes_of(second)) == 1 and takes_of(third) == []


def test_retrying_the_failed_take_from_its_card_resumes_the_chain_too(client, alice, series):
    from generations.jobs import lifecycle

    client.force_login(alice)
    first, second, third = stopped_at_the_second_scene(client, series)
    failed = takes_of(second)[0]
    Generation.objects.filter(pk=failed.pk).update(prompt="@rex meets a whale")  # what the retry sends

    retried = lifecycle.retry(Generation.objects.get(pk=failed.pk)).generation  # the card's "Retry"

    drive_chain(series, all_done(series))
    retried.refresh_from_db()
    assert retried.scene_id == second.pk and Scene.objects.get(pk=third.pk).chained_from_id == retried.pk
    assert difference(first_frame(video_of(takes_of(third)[0])), last_frame(video_of(retried))) < CLOSE


def test_a_backend_down_mid_chain_moves_the_next_scene_only_to_a_backend_that_takes_its_start_image(
    alice, official, aggregator, sim_openai_url, settings
):
    """Cheap (openai_videos) makes scene 1, then goes down. Scene 2 must start from scene 1's last frame, so its
    take falls back to a backend that takes a start image: the simulated official, never the aggregator (a
    task API with no image field), though the aggregator is the cheaper of the two."""
    from tests.factories import DISCARD_URL, make_backend

    settings.SIMULATOR_SPEED = 10
    settings.GENERATION_POLL_INTERVAL = 0.05
    cheap = make_backend("Cheap", "openai_videos", sim_openai_url, tier="aggregator")
    cheap.prices.update(amount="0.01")
    aggregator.prices.update(amount="0.05")  # a request: dearer than Cheap ($0.04), cheaper than official
    aggregator.offers = {"sora-2": {"seconds": ["4", "10", "15"], "sizes": ["720x1280", "1280x720"]}}
    aggregator.save()  # it could make the video, but takes no start image
    series = make_series(alice, "Down mid-chain", continuous=False, routing_policy="cost")
    for prompt in ["A boat sets sail", "A whale surfaces", "The boat comes home"]:
        board.add_scene(series, prompt)
    first, second, third = scenes(series)
    board.generate_scene(first)  # scene 1 is made on Cheap while it is up
    drive_chain(series, lambda: (t := board.take_for(first)) is not None and t.status == Status.COMPLETED)
    assert board.take_for(first).backend_id == cheap.pk

    cheap.base_url = DISCARD_URL  # then Cheap goes down (nothing answers there), and the chain runs on
    cheap.save()
    series.continuous = True
    series.save()
    chain.generate_all(series)
    drive_chain(series, all_done(series))

    second_take, third_take = board.take_for(second), board.take_for(third)
    assert second_take.backend_id == official.pk and third_take.backend_id == official.pk
    assert [a.backend_id for a in second_take.earlier_attempts.all()] == [cheap.pk], "tried on Cheap, then moved"
    for take in (second_take, third_take):
        assert "Simulated aggregator cannot take a start image" in take.routing_reason
    assert not Generation.objects.filter(scene__series=series, backend=aggregator).exists()
    assert difference(first_frame(video_of(second_take)), last_frame(video_of(board.take_for(first)))) < CLOSE
    assert difference(first_frame(video_of(third_take)), last_frame(video_of(second_take))) < CLOSE
