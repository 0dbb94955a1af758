"""Every page at phone width in a real browser: nothing wider than the screen, every control labelled."""

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from characters.models import CharacterBinding
from generations.billing.models import CostEntry
from generations.jobs.models import Generation
from generations.storyboards.models import Export, ExportStatus, Scene
from tests.factories import make_character, make_generation, make_series
from tests.test_browser_smoke import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
  .filter(el => el.offsetParent !== null)
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                && !el.getAttribute('aria-labelledby') && !(el.tagName === 'BUTTON' && el.innerText.trim()))
  .map(el => el.outerHTML.slice(0, 120))"""


@pytest.fixture
def a_studio_with_things(alice, backend):
    character = make_character(alice, "rex", description="A brave dog")
    CharacterBinding.objects.create(character=character, backend=backend, remote_id="char_1", status="ready")
    series = make_series(alice, "Rex at sea, a very long series title that might overflow")
    series.characters.add(character)
    for i, status in enumerate(["completed", "failed", "in_progress"]):
        scene = Scene.objects.create(series=series, prompt=f"@rex scene {i} " + "with a long prompt " * 5, position=i)
        generation = make_generation(
            alice,
            backend,
            scene=scene,
            prompt=scene.prompt,
            prompt_sent=scene.prompt,
            status=status,
            progress=40,
            error_message="The simulated renderer failed." if i == 1 else "",
        )
        generation.characters.add(character)
        if status == "completed":
            generation.video.save("v.mp4", ContentFile(b"\x00\x00\x00\x18ftypmp42"))
            CostEntry.objects.record(kind="charge", amount="0.40", backend=backend, owner=alice, generation=generation)
    ready = Export.objects.create(
        created_by=alice, series=series, scope=f"series:{series.pk}", title=series.title, filename="rex-at-sea.zip",
        status=ExportStatus.READY, files_done=4, files_total=4, size=123_456, finished_at=timezone.now(),
    )  # fmt: skip
    ready.file.save("rex-at-sea.zip", ContentFile(b"PK"), save=True)
    building = Export.objects.create(
        created_by=alice, scope="all", title="All my work", filename="all.zip", status=ExportStatus.BUILDING,
        files_done=1200, files_total=4000, lease_until=timezone.now() + timedelta(minutes=5),
    )  # fmt: skip
    return {
        "character": character,
        "series": series,
        "generation": Generation.objects.first(),
        "exports": (ready, building),
    }


def test_every_page_fits_a_phone_and_labels_its_controls(chromium, live_server, alice, a_studio_with_things, shoot):
    things = a_studio_with_things
    pages = {
        "gallery": "/",
        "new-video": "/generations/new/",
        "video": f"/generations/{things['generation'].pk}/",
        "characters": "/characters/",
        "character": f"/characters/{things['character'].pk}/",
        "new-character": "/characters/new/",
        "series-list": "/series/",
        "series": f"/series/{things['series'].pk}/",
        "series-watch": f"/series/{things['series'].pk}/watch/",
        "spending": "/spending/",
        "exports": "/exports/",
        "export-ready": f"/exports/{things['exports'][0].pk}/",
        "export-building": f"/exports/{things['exports'][1].pk}/",
    }
    page = chromium.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    login(page, live_server.url)
    problems = []
    for name, path in pages.items():
        page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")
        shoot(page, f"phone-{name}")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        if overflow > 1:
            problems.append(f"{name}: {overflow}px wider than the screen")
        for control in page.evaluate(UNLABELLED):
            problems.append(f"{name}: unlabelled {control}")
    assert not problems, "\n".join(problems)
    page.close()
