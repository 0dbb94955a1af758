"""The Content-Security-Policy in a real browser: no page breaks it, and everything still works under it
(the @ autocomplete, the live estimate, polling, the toast, editing a scene in place, the admin)."""

import re

import pytest

from characters.models import CharacterBinding
from generations.storyboards.models import Scene
from tests.factories import make_character, make_series
from tests.test_browser_smoke import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Chromium logs every refusal to the console ("Refused to execute inline script because it violates the
# following Content Security Policy directive…"); the page's own event says which directive, to be sure.
REPORT_VIOLATIONS = """document.addEventListener("securitypolicyviolation", (event) =>
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI} at ${location.pathname}`));"""


def test_no_page_breaks_the_policy_and_everything_still_works(chromium, studio, alice, official, settings, shoot):
    settings.SIMULATOR_SPEED = 3  # slow enough to see the job running
    alice.is_staff = alice.is_superuser = True
    alice.save()
    pip = make_character(alice, "pip")
    CharacterBinding.objects.create(character=pip, backend=official, remote_id="char_pip", status="ready")
    series = make_series(alice, "Pip at sea")
    scene = Scene.objects.create(series=series, prompt="@pip sets sail", position=0)

    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    page.add_init_script(REPORT_VIOLATIONS)
    violations, errors = [], []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text)
            if ("Content Security Policy" in message.text or "CSP violation" in message.text)
            else None
        ),
    )
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, studio)

    # The @ autocomplete, then the live estimate asked again when the length changes.
    page.goto(f"{studio}/generations/new/")
    page.locator("textarea[name=prompt]").press_sequentially("A sunrise with @pi", delay=30)
    page.locator("#mention-listbox [role=option]").first.wait_for()
    page.keyboard.press("Enter")
    assert page.locator("textarea[name=prompt]").input_value() == "A sunrise with @pip "
    page.select_option("select[name=backend]", label="Simulated official")
    page.wait_for_load_state("networkidle")
    with page.expect_response(lambda response: "/generations/estimate/" in response.url):
        page.select_option("select[name=seconds]", "8")
    shoot(page, "new-video")

    # Generate (without the character, which the simulator does not know), then watch the gallery: the
    # card polls, the toast says when the job ends.
    page.fill("textarea[name=prompt]", "A slow sunrise")
    page.locator("main button[type=submit]", has_text="Generate").click()
    page.wait_for_url(re.compile(r".*/generations/\d+/$"))
    detail = page.url
    page.goto(f"{studio}/")
    page.locator("#toasts .toast").wait_for(timeout=30_000)
    assert page.locator("#toasts .toast a").inner_text() == f"Video #{detail.split('/')[-2]} is ready."
    shoot(page, "toast")
    page.goto(detail)
    page.locator("video").wait_for(timeout=15_000)

    # A scene edited in place; Escape puts it back.
    page.goto(f"{studio}/series/{series.pk}/")
    page.wait_for_load_state("networkidle")  # htmx has wired the page: the click edits in place
    page.locator(f"#scene-{scene.pk}-edit").click()
    page.locator(f"#scene-{scene.pk}.editing textarea[name=prompt]").focus()
    page.keyboard.press("Escape")
    page.locator(f"#scene-{scene.pk}-edit").wait_for()
    assert page.locator(f"#scene-{scene.pk} textarea").count() == 0

    for path in [
        "/characters/",
        f"/characters/{pip.pk}/",
        "/characters/new/",
        "/series/",
        f"/series/{series.pk}/watch/",
        "/spending/",
        "/admin/",
        "/admin/generations/generation/",
        f"/admin/generations/backend/{official.pk}/change/",
    ]:
        page.goto(studio + path)
        page.wait_for_load_state("networkidle")
    shoot(page, "admin")
    assert violations == [] and errors == []

    # The listener hears a refusal when there is one: an inline handler added by hand is refused.
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<img src=data:, onerror=\"window.ran = 1\">')")
    page.wait_for_timeout(300)
    assert page.evaluate("window.ran") is None
    assert violations and "script-src" in " ".join(violations)
    page.close()
