"""A continuous series in a real browser (Debian's chromium through Playwright), against the live server, a real
qcluster and the simulator: a character, three scenes that each start where the previous one ended, generate
all, watch the chain wait and move on without reloading, check the hand-offs in the stored frames, and play the
takes back to back."""

import re

import pytest

from characters import registry
from generations.jobs.models import Generation
from generations.states import Status
from simulator.render import look_for, render_mp4
from tests.factories import make_character
from tests.frames import CLOSE, difference, first_frame, last_frame
from tests.test_browser_smoke import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCENES = ["@rex sets sail at dawn", "@rex meets a whale", "@rex comes home at dusk"]


def video_of(generation) -> bytes:
    with generation.video.open("rb") as handle:
        return handle.read()


def test_a_continuous_series_plays_as_one_shot(chromium, studio, alice, official, shoot):
    rex = make_character(alice, "rex", clip=render_mp4(look_for("Rex", "720x1280", "clip"), 3))
    registry.bind(rex, official)
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, studio)

    page.goto(f"{studio}/series/")
    page.fill("input[name=title]", "Rex at sea")
    page.get_by_label("@rex").check()
    page.select_option("select[name=backend]", label="Simulated official")
    page.get_by_label("Each scene starts where the previous one ended").check()
    page.locator("button", has_text="Create series").click()
    page.wait_for_url(re.compile(r".*/series/\d+/$"))
    page.locator("#series-chain").wait_for()
    for prompt in SCENES:
        page.fill("#scene-board textarea[name=prompt]", prompt)
        page.locator("#add-scene").click()
        page.get_by_text(prompt).first.wait_for()
    shoot(page, "chain-planned")

    # Generate all: the scenes after the first wait in the chain, and the board says for what.
    page.locator("#generate-all").click()
    page.get_by_text("Queued 3 scenes as a chain").wait_for(timeout=15_000)
    assert page.locator("#scene-board [data-chain=waiting]").count() == 2
    assert page.get_by_text("Waiting for scene 1").count() == 1
    shoot(page, "chain-waiting")

    # The chain moves on by itself: every scene gets its take, no reload.
    page.wait_for_function(
        "() => document.querySelectorAll('#scene-board [data-status=completed]').length >= 3"
        " && document.querySelectorAll('#scene-board [data-chain=waiting]').length == 0",
        timeout=120_000,
    )
    page.wait_for_function("() => document.getElementById('series-progress').value == 100", timeout=15_000)
    shoot(page, "chain-generated")

    takes = [
        Generation.objects.get(scene__series__title="Rex at sea", scene__prompt=prompt, deleted_at__isnull=True)
        for prompt in SCENES
    ]
    assert all(t.status == Status.COMPLETED for t in takes)
    for before, after in zip(takes[:-1], takes[1:], strict=True):
        assert difference(first_frame(video_of(after)), last_frame(video_of(before))) < CLOSE

    # Watch: the playlist holds the three takes in order, and the player goes on to the next when one ends.
    page.goto(page.url + "watch/")
    sources = page.locator(".playlist-item").evaluate_all("items => items.map(item => item.dataset.src)")
    assert sources == [f"/generations/{t.pk}/video.mp4" for t in takes]
    page.wait_for_function("() => document.getElementById('series-player').readyState >= 2", timeout=15_000)
    page.evaluate(
        "const v = document.getElementById('series-player'); v.muted = true; v.currentTime = v.duration - 0.3; v.play()"
    )
    page.wait_for_function("() => document.getElementById('series-player').dataset.index === '1'", timeout=15_000)
    shoot(page, "chain-watching")
    assert errors == []
