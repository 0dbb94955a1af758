"""The live touches, in a real browser: @ autocomplete by keyboard, the toast and the tab title."""

import re

import pytest

from characters.models import CharacterBinding
from tests.factories import make_character
from tests.test_browser_smoke import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_mention_autocomplete_works_from_the_keyboard(chromium, studio, alice, bob, official, shoot):
    for owner, handle in [(alice, "pip"), (alice, "pixel"), (alice, "rex"), (bob, "pia")]:
        character = make_character(owner, handle)
        CharacterBinding.objects.create(
            character=character, backend=official, remote_id=f"char_{handle}", status="ready"
        )
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    login(page, studio)
    page.goto(f"{studio}/generations/new/")

    page.locator("textarea[name=prompt]").press_sequentially("A walk with @pi", delay=30)
    listbox = page.locator("#mention-listbox [role=option]")
    listbox.first.wait_for()
    handles = sorted(listbox.evaluate_all("options => options.map(o => o.dataset.handle)"))
    assert handles == ["pip", "pixel"]  # bob's @pia is not offered, nor @rex
    shoot(page, "autocomplete-open")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert page.locator("textarea[name=prompt]").input_value() in ("A walk with @pip ", "A walk with @pixel ")
    assert page.locator("#mention-listbox").is_hidden()
    page.close()


def test_choosing_an_option_replaces_what_was_typed_while_the_options_were_asked_for(chromium, studio, alice, official):
    """The options for "@p" are on screen, "i" is typed, and Enter is pressed before the options for
    "@pi" arrive: the choice replaces "@pi" whole (not "@p", leaving a stray "i" behind)."""
    for handle in ("pip", "rex"):
        character = make_character(alice, handle)
        CharacterBinding.objects.create(
            character=character, backend=official, remote_id=f"char_{handle}", status="ready"
        )
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    login(page, studio)
    page.goto(f"{studio}/generations/new/")
    held = []
    page.route("**/generations/mentions/?q=pi", lambda route: held.append(route))  # the second answer never comes
    prompt = page.locator("textarea[name=prompt]")
    prompt.press_sequentially("A walk with @p", delay=30)
    page.locator("#mention-listbox [role=option]").first.wait_for()
    prompt.press("i")
    page.wait_for_function("() => true")  # let the keystroke's input handler run
    page.keyboard.press("Enter")
    assert prompt.input_value() == "A walk with @pip "
    page.close()


def test_a_finished_job_shows_a_toast_and_the_title_counts_running_jobs(chromium, studio, alice, settings, shoot):
    settings.SIMULATOR_SPEED = 3  # slow enough to see it running
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    login(page, studio)
    page.goto(f"{studio}/generations/new/")
    page.fill("textarea[name=prompt]", "A slow sunrise")
    page.select_option("select[name=backend]", label="Simulated official")
    page.locator("main button[type=submit]", has_text="Generate").click()
    page.wait_for_url(re.compile(r".*/generations/\d+/$"))
    video = page.url.removeprefix(studio)  # /generations/<pk>/
    pk = int(video.split("/")[2])
    page.goto(f"{studio}/")

    page.wait_for_function("() => document.title.startsWith('(1) ')", timeout=10_000)
    shoot(page, "running-title")
    toast = page.locator("#toasts .toast")
    toast.wait_for(timeout=30_000)
    assert toast.get_attribute("class") == "toast toast-completed"
    message = toast.locator("a")  # a link, since the page is not the video's own
    assert message.inner_text() == f"Video #{pk} is ready."
    assert message.get_attribute("href") == video
    shoot(page, "toast")
    page.wait_for_function("() => !document.title.startsWith('(')", timeout=5_000)
    page.close()
