"""A provider's poll hint is followed from the create on, within the studio's bounds."""

import pytest

from generations.jobs import lifecycle, pacing
from generations.jobs.lifecycle import GenerationRequest
from generations.states import Status

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_first_poll_comes_when_the_create_answer_says(alice, official, settings, held_tasks):
    settings.SIMULATOR_SPEED = 20  # the simulator then hints 100 ms
    settings.GENERATION_POLL_INTERVAL = 2
    settings.GENERATION_MIN_POLL_INTERVAL = 0.25
    generation = lifecycle.start(
        GenerationRequest(alice, prompt="Quick", model="sora-2", seconds=4, size="720x1280", backend=official)
    ).generation
    lifecycle.submit(generation)

    generation.refresh_from_db()
    assert generation.status == Status.SUBMITTED
    delay = (generation.next_poll_at - generation.submitted_at).total_seconds()
    assert 0.2 < delay < 0.5, "the hint (100 ms), raised to the floor, not the 2 s interval"


def test_a_hint_is_bounded_and_its_absence_means_the_interval(settings):
    settings.GENERATION_POLL_INTERVAL = 2
    settings.GENERATION_MIN_POLL_INTERVAL = 0.25
    settings.GENERATION_MAX_POLL_INTERVAL = 30
    settings.WEBHOOK_POLL_FACTOR = 5
    assert pacing.next_poll(None, webhook=False) == 2
    assert pacing.next_poll(0, webhook=False) == 0.25
    assert pacing.next_poll(3600, webhook=False) == 30
    assert pacing.next_poll(1, webhook=True) == 5
