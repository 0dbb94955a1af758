"""A backend goes down in the middle of a 10-scene series: the rest falls back (or waits, for characters
nothing else can carry), and work goes back to it once its circuit closes. Real HTTP to the simulator."""

import time

import pytest

from characters.models import CharacterBinding
from generations.jobs import pump
from generations.jobs.models import Attempt
from generations.states import Status
from generations.storyboards import board
from generations.storyboards.models import Scene
from tests.factories import DISCARD_URL, make_backend, make_character, make_series

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def outage_settings(settings):
    settings.SIMULATOR_SPEED = 20
    settings.GENERATION_POLL_INTERVAL = 0.05
    settings.CIRCUIT_FAILURES = 2
    settings.CIRCUIT_COOLDOWN_SECONDS = 2


@pytest.fixture
def cheap(sim_openai_url, outage_settings):
    """The backend the cost policy prefers: a second simulated official, cheaper."""
    backend = make_backend("Cheap", "openai_videos", sim_openai_url, tier="aggregator")
    backend.prices.update(amount="0.01")
    return backend


def go_down(backend):
    backend.base_url = DISCARD_URL  # nothing answers there: every create fails before it is sent
    backend.save()


def come_back(backend, url):
    backend.base_url = url
    backend.save()


def run_until_ended(generations, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for generation in generations:
            generation.refresh_from_db()
        if all(g.is_terminal for g in generations):
            return generations
        pump.tick()
        time.sleep(0.05)
    stuck = [(g.pk, g.status, g.routing_reason[:120]) for g in generations if not g.is_terminal]
    raise AssertionError(f"still running after {timeout} s: {stuck}")


def scenes(series, count, start=1):
    return [
        Scene.objects.create(series=series, position=i, prompt=f"Scene {i}: the boat")
        for i in range(start, start + count)
    ]


def test_the_rest_of_the_series_falls_back_and_work_returns_when_the_circuit_closes(
    alice, official, cheap, sim_openai_url
):
    series = make_series(alice, routing_policy="cost")
    first = run_until_ended([board.generate_scene(s).generation for s in scenes(series, 3)])
    assert {g.backend.name for g in first} == {"Cheap"}

    go_down(cheap)
    rest = run_until_ended([board.generate_scene(s).generation for s in scenes(series, 7, start=4)])

    assert all(g.status == Status.COMPLETED for g in rest), [(g.pk, g.status, g.error_message) for g in rest]
    assert {g.backend.name for g in rest} == {"Simulated official"}
    # Scenes sent before its circuit opened made one try there and moved; later ones were routed around it.
    moved = set(Attempt.objects.filter(generation__in=rest, backend=cheap).values_list("generation", flat=True))
    routed_around = {g.pk for g in rest if "Cheap skipped: circuit open" in g.routing_reason}
    assert moved and routed_around
    assert moved | routed_around == {g.pk for g in rest} and not moved & routed_around
    cheap.refresh_from_db()
    assert cheap.circuit_open_until is not None, "the outage opened its circuit"
    for generation in rest:  # charged once, at the price of the backend that made it
        assert {e.backend.name for e in generation.cost_entries.all()} == {"Simulated official"}
        assert generation.cost_entries.filter(kind="charge").count() == 1

    come_back(cheap, sim_openai_url)
    time.sleep(2.2)  # the cooldown: the next job is its trial
    [after] = run_until_ended([board.generate_scene(Scene.objects.create(series=series, prompt="Scene 11")).generation])
    cheap.refresh_from_db()
    assert after.status == Status.COMPLETED and after.backend == cheap
    assert cheap.circuit_open_until is None, "the trial job closed the circuit"


def test_scenes_whose_character_lives_only_on_the_backend_that_went_down_wait_for_it(
    alice, official, cheap, sim_openai_url
):
    pip = make_character(alice, "pip", name="Pip")  # no clip, no stills: it cannot be bound anywhere else
    series = make_series(alice, routing_policy="cost")
    series.characters.add(pip)
    first = scenes(series, 1)[0]
    first.prompt = "@pip rows out"
    first.save()
    # Registered on Cheap by hand (as an extracted character would be), via the simulator for real.
    remote_id = cheap.client().create_character(name="Pip", description="", clip=_clip(), clip_url="")
    CharacterBinding.objects.create(character=pip, backend=cheap, remote_id=remote_id, status="ready")
    [done] = run_until_ended([board.generate_scene(first).generation])
    assert done.status == Status.COMPLETED and done.backend == cheap

    go_down(cheap)
    waiting = [
        board.generate_scene(
            Scene.objects.create(series=series, position=i, prompt=f"@pip rows on, part {i}")
        ).generation
        for i in (2, 3, 4)
    ]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(
        "waiting for a backend that can carry the characters" in g.routing_reason for g in waiting
    ):
        pump.tick()
        time.sleep(0.05)
        for generation in waiting:
            generation.refresh_from_db()
    assert all(g.status == Status.QUEUED and g.backend == cheap for g in waiting), [
        (g.status, g.routing_reason) for g in waiting
    ]
    assert not any(g.degraded for g in waiting)

    come_back(cheap, sim_openai_url)
    waiting = run_until_ended(waiting)
    assert all(g.status == Status.COMPLETED and g.backend == cheap for g in waiting)
    assert all(g.characters_sent == [remote_id] for g in waiting)
    for generation in waiting:
        assert generation.cost_entries.filter(kind="charge").count() == 1


def _clip():
    import io

    from simulator.render import look_for, render_mp4

    return io.BytesIO(render_mp4(look_for("pip", "1280x720", "clip"), 2))
