"""In a real browser: make an API token on its page, then watch a video a script makes with that token (through
the official `openai` package) arrive in the open gallery and finish there, live, while the script polls."""

import re
import threading

import pytest

from generations.jobs.models import Generation
from tests.factories import make_generation
from tests.gateway import sdk
from tests.test_browser_smoke import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_token_made_in_the_page_makes_a_video_that_arrives_live_in_the_gallery(
    chromium, studio, live_server, alice, official, settings, shoot
):
    settings.SIMULATOR_SPEED = 3  # slow enough to watch it run
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    login(page, studio)

    page.click("nav >> text=API tokens")
    page.wait_for_url(f"{studio}/api-tokens/")
    page.fill("input[name=name]", "notebook")
    page.fill("input[name=monthly_cap]", "20")
    page.click("main button[type=submit]:has-text('Create token')")
    secret = page.locator("#new-token").inner_text(timeout=10_000).strip()
    assert secret.startswith("sk-studio-")
    assert page.url == f"{studio}/api-tokens/"  # htmx swapped the panel in: a reload would not show it again
    assert page.locator("tr", has_text="notebook").locator("td").nth(1).inner_text().startswith("sk-studio-…")
    shoot(page, "api-tokens")

    make_generation(alice, official, prompt="An older video", status="completed")
    page.goto(f"{studio}/")
    page.locator(".card").first.wait_for()
    assert page.locator(".card").count() == 1

    outcome = {}

    def script():
        client = sdk(live_server, secret, timeout=60)
        try:
            outcome["video"] = client.videos.create_and_poll(prompt="A paper crane unfolds in the wind")
        except Exception as exc:  # noqa: BLE001 -- reported by the assertion below
            outcome["error"] = exc

    running = threading.Thread(target=script)
    running.start()
    try:
        card = page.locator(".card", has_text="A paper crane unfolds in the wind")
        card.wait_for(timeout=20_000)  # arrived without a reload, on top of the list
        assert page.locator(".card").first.get_attribute("id") == card.get_attribute("id")
        assert card.get_attribute("data-status") != "completed"  # it arrived while the script was still polling
        assert running.is_alive()
        shoot(page, "arrived-running")
        page.wait_for_selector(".card[data-status=completed] >> text=A paper crane", timeout=60_000)
        shoot(page, "finished")
    finally:
        running.join(90)
    assert "error" not in outcome, outcome.get("error")
    video = outcome["video"]
    assert video.status == "completed"
    generation = Generation.objects.get(uuid=video.id.removeprefix("video_"))
    assert card.get_attribute("id") == f"gen-{generation.pk}"
    assert re.search(r"\$0\.40", card.inner_text())
    page.close()
