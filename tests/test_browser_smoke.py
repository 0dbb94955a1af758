"""In a real browser against the whole product: log in, generate, watch it finish, play it."""

import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def login(page, base, username="alice", password="alice-password"):
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/")


def test_a_creator_generates_a_video_and_plays_it_without_reloading(chromium, studio, alice, shoot):
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    login(page, studio)
    page.goto(f"{studio}/generations/new/")
    page.fill("textarea[name=prompt]", "A lighthouse at dawn")
    page.select_option("select[name=backend]", label="Simulated official")
    shoot(page, "new-video")
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r".*/generations/\d+/$"))
    shoot(page, "running")

    page.locator("video").wait_for(timeout=30_000)  # the live panel swaps the player in, no reload
    page.wait_for_function("() => document.querySelector('video').readyState >= 1", timeout=15_000)
    page.evaluate("document.querySelector('video').muted = true; document.querySelector('video').play()")
    page.wait_for_function("() => document.querySelector('video').currentTime > 0.2", timeout=15_000)
    shoot(page, "playing")
    assert "$0.40" in page.content()
    page.close()
