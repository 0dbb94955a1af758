"""In a real browser (Debian's chromium through Playwright) against the live server and a real qcluster: a creator
starts a video from the last frame of one of their finished videos, sees the crop in the video's shape before
anything is sent, and finds the start image beside the new video on its page."""

import re

import pytest

from generations.jobs.models import Generation
from generations.states import Status
from simulator.render import look_for, render_mp4
from tests.factories import make_generation
from tests.frames import CLOSE, difference, first_frame, last_frame
from tests.test_browser_smoke import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PREVIEW_LOADED = (
    "() => { const img = document.querySelector('[data-frame-pick] [data-crop-preview]:not([hidden]) img');"
    " return img && img.complete && img.naturalWidth > 0; }"
)


def crop_frame_shape(page) -> float:
    box = page.locator("[data-frame-pick] .crop-frame").first.bounding_box()
    return box["width"] / box["height"]


def test_the_last_frame_of_a_finished_video_starts_the_next_with_its_crop_shown(
    chromium, studio, alice, official, aggregator, shoot
):
    aggregator.offers["sora-2"]["seconds"].append("4")  # able to make the video, but not from an image
    aggregator.save()
    earlier = make_generation(
        alice,
        official,
        prompt="A red kite over the dunes",
        size="1280x720",
        status=Status.COMPLETED,
        video=render_mp4(look_for("A red kite over the dunes", "1280x720", "x"), 2),
    )
    page = chromium.new_page(viewport={"width": 1280, "height": 1000})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, studio)
    page.goto(f"{studio}/generations/new/")
    page.fill("textarea[name=prompt]", "The kite lands on the sand")
    assert page.locator("[data-frame-upload]").first.is_hidden()  # shown only for "Upload an image…"

    page.select_option("select[name=start_image]", f"video:{earlier.pk}")
    page.wait_for_function(PREVIEW_LOADED, timeout=15_000)
    # The video is 720x1280 (the default size): the landscape frame is cropped to a portrait.
    assert abs(crop_frame_shape(page) - 720 / 1280) < 0.05
    caption = page.locator("[data-crop-caption]").first.inner_text()
    assert "Cropped to 720×1280, the video's size" in caption
    page.get_by_text("Simulated aggregator cannot take a start image").wait_for(timeout=15_000)
    shoot(page, "new-video-last-frame-crop-portrait")

    page.select_option("select[name=size]", "1280x720")  # re-cropped to the new shape at once
    page.wait_for_function(
        "() => { const f = document.querySelector('[data-frame-pick] .crop-frame');"
        " const r = f.getBoundingClientRect(); return r.width > r.height * 1.5; }",
        timeout=10_000,
    )
    page.wait_for_function(PREVIEW_LOADED, timeout=15_000)
    shoot(page, "new-video-last-frame-crop-landscape")

    page.locator("main button[type=submit]", has_text="Generate").click()
    page.wait_for_url(re.compile(r".*/generations/\d+/$"))
    page.locator("video.player").wait_for(timeout=30_000)
    figure = page.locator(".frames-sent figure").first
    assert "Start image" in figure.inner_text() and f"the last frame of video #{earlier.pk}" in figure.inner_text()
    page.wait_for_function(
        "() => { const img = document.querySelector('.frames-sent img'); return img && img.naturalWidth > 0; }",
        timeout=10_000,
    )
    shoot(page, "detail-with-start-image")
    assert errors == []

    made = Generation.objects.exclude(pk=earlier.pk).get()
    assert made.backend == official and made.images.get().note == f"the last frame of video #{earlier.pk}"
    with earlier.video.open("rb") as before, made.video.open("rb") as after:
        assert difference(first_frame(after.read()), last_frame(before.read())) < CLOSE


def test_an_uploaded_image_is_previewed_in_the_browser_before_it_is_sent(chromium, studio, alice, shoot, tmp_path):
    from tests.frames import picture

    path = tmp_path / "harbour.png"
    path.write_bytes(picture(900, 900, seed=3))
    page = chromium.new_page(viewport={"width": 1280, "height": 1000})
    login(page, studio)
    page.goto(f"{studio}/generations/new/")
    page.select_option("select[name=start_image]", "upload")
    page.locator("input[name=start_upload]").set_input_files(str(path))
    page.wait_for_function(PREVIEW_LOADED, timeout=10_000)
    assert page.evaluate("document.querySelector('[data-crop-preview] img').src.startsWith('data:image/png')")
    shoot(page, "new-video-upload-crop")

    text = tmp_path / "notes.png"
    text.write_text("Dear diary, this is not a picture.\n")
    page.fill("textarea[name=prompt]", "A harbour at dawn")
    page.locator("input[name=start_upload]").set_input_files(str(text))
    page.locator("main button[type=submit]", has_text="Generate").click()
    page.get_by_text("That file is a text file, which cannot be used").wait_for(timeout=10_000)
    shoot(page, "new-video-bad-image")
    assert not Generation.objects.exists()
