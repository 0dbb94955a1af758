"""The creator's whole afternoon in a real browser (Debian's chromium through Playwright), against
the live server, a real qcluster and the simulator: a character, a three-scene series that
mentions it, generate all, watch every card finish without reloading, play, export, spending."""

import io
import json
import re
import zipfile

import pytest

from tests.test_browser_smoke import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCENES = [
    "@pip wakes up in a lighthouse",
    "@pip climbs the spiral stairs",
    "@pip lights the lamp at dusk",
]


def test_a_series_from_character_to_export(chromium, studio, alice, shoot, tmp_path):
    page = chromium.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, studio)
    shoot(page, "gallery-empty")

    # A source video on the aggregator, then a character extracted from it on the same backend.
    page.goto(f"{studio}/generations/new/")
    page.fill("textarea[name=prompt]", "A small lighthouse keeper with a red scarf")
    page.select_option("select[name=backend]", label="Simulated aggregator")
    page.locator("main button[type=submit]", has_text="Generate").click()
    page.wait_for_url(re.compile(r".*/generations/\d+/$"))
    page.locator("video").wait_for(timeout=30_000)
    shoot(page, "source-video")

    page.fill("input[name=name]", "Pip")
    page.fill("input[name=handle]", "pip")
    page.locator("button", has_text="Make character").click()
    page.wait_for_url(re.compile(r".*/characters/\d+/$"))
    page.get_by_text("Ready").first.wait_for(timeout=30_000)  # the binding turns ready without a reload
    shoot(page, "character")

    # A series that mentions it, three scenes.
    page.goto(f"{studio}/series/")
    page.fill("input[name=title]", "Pip's lighthouse")
    page.get_by_label("@pip").check()
    page.select_option("select[name=seconds]", "10")
    page.locator("button", has_text="Create series").click()
    page.wait_for_url(re.compile(r".*/series/\d+/$"))
    for prompt in SCENES:
        page.fill("#scene-board textarea[name=prompt]", prompt)
        page.locator("#add-scene").click()
        page.get_by_text(prompt).first.wait_for()
    shoot(page, "series-planned")

    # Generate all: every take card turns completed, and the series progress says so, no reload.
    page.locator("#generate-all").click()
    page.wait_for_function(
        "() => document.querySelectorAll('#scene-board [data-status=completed]').length >= 3", timeout=60_000
    )
    page.wait_for_function("() => document.getElementById('series-progress').value == 100", timeout=15_000)
    shoot(page, "series-generated")

    # Watch: the chosen takes play as one playlist.
    page.goto(page.url + "watch/")
    page.wait_for_function("() => document.getElementById('series-player').readyState >= 2", timeout=15_000)
    page.evaluate("const v = document.getElementById('series-player'); v.muted = true; v.play()")
    page.wait_for_function("() => document.getElementById('series-player').currentTime > 0.3", timeout=15_000)
    shoot(page, "watching")

    # Export the series: a worker builds the zip while the export page shows its progress, then the link.
    page.go_back()
    page.locator("button", has_text="Export .zip").click()
    page.wait_for_url(re.compile(r".*/exports/\d+/$"))
    page.locator("a", has_text="Download").wait_for(timeout=30_000)  # htmx polled the status until ready
    shoot(page, "export-ready")
    with page.expect_download() as download:
        page.locator("a", has_text="Download").click()
    archive = zipfile.ZipFile(io.BytesIO(open(download.value.path(), "rb").read()))
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["series"]["title"] == "Pip's lighthouse"
    scenes = manifest["series"]["scenes"]
    assert [scene["prompt"] for scene in scenes] == SCENES
    assert {c["handle"] for c in manifest["characters"]} == {"@pip"}
    takes = [take for scene in scenes for take in scene["takes"]]
    assert len(manifest["playlist"]) == 3
    assert len(takes) == 3 and all(t["status"] == "completed" and t["cost_usd"] == "0.12" for t in takes)
    assert all(t["backend"] == "Simulated aggregator" and t["prompt_sent"].startswith("@char_") for t in takes)
    for take in takes:
        assert archive.read(take["video"])[4:8] == b"ftyp"

    # The spending page finds every cent: four videos at $0.12 on the aggregator.
    page.goto(f"{studio}/spending/")
    shoot(page, "spending")
    by_backend = page.locator("table", has=page.get_by_text("Simulated aggregator")).first
    assert "$0.48" in by_backend.inner_text()
    assert "$0.48" in page.locator(".tile.net").inner_text()

    page.goto(f"{studio}/")
    shoot(page, "gallery")
    assert page.locator("[data-status=completed]").count() == 4
    assert not errors, errors
    page.close()
