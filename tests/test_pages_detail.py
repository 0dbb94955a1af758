"""A generation's page: what was sent and why, costs, timeline, a live panel; cancel, retry, remix, delete."""

import json

import pytest
from django.urls import reverse

from generations.billing.models import CostEntry, CostKind
from generations.jobs import lifecycle
from generations.jobs.lifecycle import GenerationRequest
from generations.jobs.models import Generation, GenerationEvent
from tests.conftest import drive
from tests.factories import make_character, make_dead_backend, make_generation

pytestmark = pytest.mark.django_db


@pytest.fixture
def backend():
    return make_dead_backend("Aggregator", "task_api", prices=False)


def make(owner, backend, status, **extra):
    return make_generation(owner, backend, prompt="@rex sails away", seconds="10", status=status, **extra)


def test_it_shows_the_prompt_as_sent_the_routing_and_the_ledger(client, alice, backend):
    generation = make(
        alice,
        backend,
        "in_progress",
        prompt_sent="@char_123 sails away",
        progress=30,
        routing_reason="automatic: Aggregator, cheapest with @rex ready",
    )
    CostEntry.objects.record(kind=CostKind.ESTIMATE, amount="0.12", backend=backend, owner=alice, generation=generation)
    CostEntry.objects.record(
        kind=CostKind.CHARGE,
        amount="0.12",
        backend=backend,
        owner=alice,
        generation=generation,
        note="Charged when the provider accepted the job",
    )
    client.force_login(alice)

    response = client.get(reverse("generation_detail", args=[generation.pk]))

    assert "@rex sails away" in response.text and "@char_123 sails away" in response.text
    assert "automatic: Aggregator, cheapest with @rex ready" in response.text
    assert "Charged when the provider accepted the job" in response.text
    assert f'hx-get="{reverse("generation_detail", args=[generation.pk])}" hx-trigger="every 2s"' in response.text
    assert "<video" not in response.text  # not finished yet
    assert "new/?prompt=%40rex+sails+away" in response.text  # "New from this" prefills the form
    assert "HX-Request" in response["Vary"]


def test_the_live_panel_stops_polling_once_the_job_ends(client, alice, backend):
    generation = make(alice, backend, "failed", error_code="generation_failed", error_message="It fell apart.")
    client.force_login(alice)

    response = client.get(reverse("generation_detail", args=[generation.pk]), headers={"HX-Request": "true"})

    assert response.status_code == 286
    assert response.text.lstrip().startswith('<section id="live"')
    assert "hx-trigger" not in response.text
    assert "It fell apart." in response.text


def test_a_queued_job_can_be_cancelled(client, alice, backend):
    generation = make(alice, backend, "queued")
    client.force_login(alice)
    cancel_url = reverse("generation_cancel", args=[generation.pk])
    assert f'hx-post="{cancel_url}"' in client.get(reverse("generation_detail", args=[generation.pk])).text

    response = client.post(cancel_url, headers={"HX-Request": "true"})

    generation.refresh_from_db()
    assert generation.status == "cancelled"
    assert "Cancelled" in response.text and cancel_url not in response.text
    assert "Try again" in response.text  # a cancelled job can be started again


def test_a_job_already_sent_cannot_be_cancelled(client, alice, backend):
    generation = make(alice, backend, "in_progress")
    client.force_login(alice)

    response = client.post(reverse("generation_cancel", args=[generation.pk]), follow=True)

    generation.refresh_from_db()
    assert generation.status == "in_progress"
    assert "it can no longer be cancelled" in response.text


def test_a_video_not_stored_yet_is_404(client, alice, backend):
    generation = make(alice, backend, "in_progress")
    client.force_login(alice)

    assert client.get(reverse("generation_video", args=[generation.pk])).status_code == 404
    assert client.get(reverse("generation_thumbnail", args=[generation.pk])).status_code == 404


def test_the_timeline_lists_each_state_with_its_time(client, alice, backend):
    generation = make(alice, backend, "queued")
    GenerationEvent.objects.create(generation=generation, status="queued", note="automatic: Aggregator, cheapest")
    generation.fail("moderation", "The prompt was refused by moderation.")
    client.force_login(alice)

    response = client.get(reverse("generation_detail", args=[generation.pk]))

    timeline = response.text.split('<ol class="timeline">')[1].split("</ol>")[0]
    assert timeline.index("Queued") < timeline.index("Failed")
    assert "automatic: Aggregator, cheapest" in timeline
    assert "The prompt was refused by moderation." in timeline
    assert "<time datetime=" in timeline


def test_the_last_poll_of_the_live_panel_asks_for_a_toast(client, alice, backend):
    generation = make(alice, backend, "in_progress", progress=50)
    client.force_login(alice)
    url = reverse("generation_detail", args=[generation.pk])

    running = client.get(url, headers={"HX-Request": "true"})
    assert running.status_code == 200 and "HX-Trigger" not in running
    Generation.objects.filter(pk=generation.pk).update(status="completed", progress=100)
    done = client.get(url, headers={"HX-Request": "true"})

    assert done.status_code == 286
    assert json.loads(done["HX-Trigger"]) == {
        "jobFinished": {
            "id": generation.pk,
            "status": "completed",
            "message": f"Video #{generation.pk} is ready.",
            "url": url,
        }
    }
    assert "HX-Trigger" not in client.get(url)  # the full page is no poll


# --- Retry -------------------------------------------------------------------------------------------


@pytest.fixture
def priced():
    return make_dead_backend("Official", "openai_videos", supports_remix=True)


def made_on(owner, backend, status, **extra):
    fields = {"prompt": "A lighthouse at dawn", "model": "sora-2", "seconds": "4", "size": "720x1280"}
    fields.update(extra)
    return make_generation(owner, backend, status=status, **fields)


@pytest.mark.parametrize("status", ["failed", "timed_out", "cancelled"])
def test_a_job_that_ended_badly_can_be_tried_again(client, alice, priced, status, django_capture_on_commit_callbacks):
    old = made_on(alice, priced, status, error_message="It broke.")
    client.force_login(alice)
    assert "Try again" in client.get(reverse("generation_detail", args=[old.pk])).text

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(reverse("generation_retry", args=[old.pk]), follow=True)

    again = Generation.objects.exclude(pk=old.pk).get()
    assert response.redirect_chain[-1][0] == reverse("generation_detail", args=[again.pk])
    assert f"Trying again as video #{again.pk}." in response.text
    assert (again.prompt, again.backend, again.status) == (old.prompt, priced, "queued")
    assert Generation.objects.get(pk=old.pk).status == status  # the old one stays as it was
    assert callbacks


def test_retry_with_htmx_redirects_the_page(client, alice, priced, django_capture_on_commit_callbacks):
    old = made_on(alice, priced, "failed")
    client.force_login(alice)

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("generation_retry", args=[old.pk]), headers={"HX-Request": "true"})

    again = Generation.objects.exclude(pk=old.pk).get()
    assert response["HX-Redirect"] == reverse("generation_detail", args=[again.pk])


def test_a_completed_job_is_not_retried(client, alice, priced):
    done = made_on(alice, priced, "completed")
    client.force_login(alice)
    assert "Try again" not in client.get(reverse("generation_detail", args=[done.pk])).text

    response = client.post(reverse("generation_retry", args=[done.pk]), headers={"HX-Request": "true"})

    assert response.status_code == 286  # the finished panel, re-rendered with the reason
    assert "Only a failed, timed-out or cancelled video can be tried again." in response.text
    assert Generation.objects.count() == 1


def test_a_retry_the_studio_refuses_says_why(client, alice, priced):
    old = made_on(alice, priced, "failed", prompt="@gone waves")
    client.force_login(alice)

    response = client.post(reverse("generation_retry", args=[old.pk]), follow=True)

    assert response.status_code == 200
    assert "Could not try again: No character called @gone in your library." in response.text
    assert Generation.objects.count() == 1


# --- Remix -------------------------------------------------------------------------------------------


def test_remix_on_a_backend_that_remixes_uses_its_remix_endpoint(
    client, alice, priced, held_tasks, django_capture_on_commit_callbacks
):
    done = made_on(alice, priced, "completed", remote_id="video_abc")
    client.force_login(alice)
    page = client.get(reverse("generation_detail", args=[done.pk]))
    assert "What should change" in page.text and "Official remixes this video" in page.text
    assert f'hx-post="{reverse("generation_remix", args=[done.pk])}"' in page.text

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("generation_remix", args=[done.pk]), {"prompt": "The same shot at night"}, follow=True
        )

    remix = Generation.objects.exclude(pk=done.pk).get()
    assert (remix.remix_of, remix.backend, remix.prompt) == (done, priced, "The same shot at night")
    assert (remix.model, remix.seconds, remix.size) == ("sora-2", 4, "720x1280")
    assert f"Remixing video #{done.pk} as video #{remix.pk}." in response.text
    assert ("generations.tasks.advance", (remix.pk,)) in held_tasks  # the worker sends it, not the page


def test_remix_where_the_backend_cannot_starts_a_new_prefilled_video(
    client, alice, backend, django_capture_on_commit_callbacks
):
    backend.install_default_prices()
    done = made_on(alice, backend, "completed", remote_id="task_1", prompt="A fox in the snow", seconds="10")
    client.force_login(alice)
    page = client.get(reverse("generation_detail", args=[done.pk]))
    assert "Aggregator cannot remix, so this starts a new video" in page.text
    assert ">\nA fox in the snow</textarea>" in page.text  # prefilled with this video's prompt

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            reverse("generation_remix", args=[done.pk]), {"prompt": "A fox in the rain"}, headers={"HX-Request": "true"}
        )

    made = Generation.objects.exclude(pk=done.pk).get()
    assert response["HX-Redirect"] == reverse("generation_detail", args=[made.pk])
    assert made.remix_of is None and made.prompt == "A fox in the rain" and made.seconds == 10


def test_a_refused_remix_shows_the_error_next_to_its_prompt(client, alice, priced):
    done = made_on(alice, priced, "completed", remote_id="video_abc")
    client.force_login(alice)

    response = client.post(
        reverse("generation_remix", args=[done.pk]), {"prompt": "@nobody dances"}, headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    assert response.text.lstrip().startswith('<section id="remix"')
    assert "field-prompt has-error" in response.text
    assert "No character called @nobody in your library." in response.text
    assert Generation.objects.count() == 1


def test_an_empty_remix_prompt_is_an_error_on_the_whole_page_without_js(client, alice, priced):
    done = made_on(alice, priced, "completed", remote_id="video_abc")
    client.force_login(alice)

    response = client.post(reverse("generation_remix", args=[done.pk]), {"prompt": ""})

    assert response.status_code == 200
    assert "<html" in response.text and "field-prompt has-error" in response.text
    assert "This field is required." in response.text


def test_an_unfinished_video_cannot_be_remixed(client, alice, priced):
    running = made_on(alice, priced, "in_progress", remote_id="video_abc")
    client.force_login(alice)

    response = client.post(
        reverse("generation_remix", args=[running.pk]), {"prompt": "At night"}, headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    assert "Only a completed video can be remixed." in response.text
    assert Generation.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_remix_goes_through_the_providers_remix_endpoint_and_completes(client, alice, official):
    first = drive(
        lifecycle.start(
            GenerationRequest(
                alice, prompt="A lighthouse at dawn", model="sora-2", seconds=4, size="720x1280", backend=official
            )
        ).generation
    )
    client.force_login(alice)

    client.post(reverse("generation_remix", args=[first.pk]), {"prompt": "The lighthouse at night"})

    remix = drive(Generation.objects.exclude(pk=first.pk).get())
    assert remix.status == "completed" and remix.remix_of == first
    detail = client.get(reverse("generation_detail", args=[remix.pk]))
    assert "<video" in detail.text and "The lighthouse at night" in detail.text


# --- Delete ------------------------------------------------------------------------------------------


def test_delete_hides_the_video_and_keeps_its_costs(client, alice, backend):
    done = make(alice, backend, "completed")
    CostEntry.objects.record(kind=CostKind.CHARGE, amount="0.12", backend=backend, owner=alice, generation=done)
    client.force_login(alice)
    page = client.get(reverse("generation_detail", args=[done.pk]))
    assert '<summary class="button danger">Delete…</summary>' in page.text  # one step to confirm
    assert "What it cost stays in your spending." in page.text

    response = client.post(reverse("generation_delete", args=[done.pk]), follow=True)

    assert response.redirect_chain[-1][0] == reverse("gallery")
    assert f"Video #{done.pk} deleted." in response.text
    assert f'id="gen-{done.pk}"' not in response.text
    assert client.get(reverse("generation_detail", args=[done.pk])).status_code == 404
    assert CostEntry.objects.filter(generation=done, kind=CostKind.CHARGE).count() == 1


def test_delete_with_htmx_redirects_to_the_gallery(client, alice, backend):
    done = make(alice, backend, "failed")
    client.force_login(alice)

    response = client.post(reverse("generation_delete", args=[done.pk]), headers={"HX-Request": "true"})

    assert response["HX-Redirect"] == reverse("gallery")


def test_deleting_a_queued_job_cancels_it(client, alice, backend):
    queued = make(alice, backend, "queued")
    client.force_login(alice)

    client.post(reverse("generation_delete", args=[queued.pk]))

    queued.refresh_from_db()
    assert queued.status == "cancelled" and queued.deleted_at is not None


def test_a_running_job_is_not_deleted_and_the_page_says_why(client, alice, backend):
    running = make(alice, backend, "in_progress")
    client.force_login(alice)
    assert "Delete…" not in client.get(reverse("generation_detail", args=[running.pk])).text

    response = client.post(reverse("generation_delete", args=[running.pk]), follow=True)

    assert response.status_code == 200
    assert "Wait until the job ends (or cancel it while queued) before deleting it." in response.text
    running.refresh_from_db()
    assert running.deleted_at is None


def test_when_the_provider_cannot_delete_the_message_says_so(client, alice, priced):
    done = made_on(alice, priced, "completed", remote_id="video_abc")  # the provider is unreachable
    client.force_login(alice)

    response = client.post(reverse("generation_delete", args=[done.pk]), follow=True)

    assert f"Video #{done.pk} deleted. Could not delete it on Official: Could not reach Official." in response.text


@pytest.mark.django_db(transaction=True)
def test_delete_also_deletes_on_an_openai_videos_provider(client, alice, official):
    done = drive(
        lifecycle.start(
            GenerationRequest(
                alice, prompt="A lighthouse", model="sora-2", seconds=4, size="720x1280", backend=official
            )
        ).generation
    )
    client.force_login(alice)

    response = client.post(reverse("generation_delete", args=[done.pk]), follow=True)

    assert f"Video #{done.pk} deleted. Also deleted on Simulated official." in response.text
    assert CostEntry.objects.filter(generation=done, kind=CostKind.CHARGE).exists()


def test_nobody_else_can_act_on_my_video(client, alice, bob, backend):
    done = make(alice, backend, "failed")
    client.force_login(bob)

    for name in ["generation_retry", "generation_remix", "generation_delete", "generation_cancel"]:
        assert client.post(reverse(name, args=[done.pk]), {"prompt": "x"}).status_code == 404, name
    assert Generation.objects.count() == 1 and Generation.objects.get().deleted_at is None


def test_actions_need_a_post(client, alice, backend):
    done = make(alice, backend, "failed")
    client.force_login(alice)

    for name in ["generation_retry", "generation_remix", "generation_delete"]:
        assert client.get(reverse(name, args=[done.pk])).status_code == 405, name


def test_the_extract_form_is_still_offered_on_a_finished_video(client, alice, backend):
    make_character(alice, "rex")
    done = make(alice, backend, "completed", video="generations/1/x/video.mp4")
    client.force_login(alice)

    response = client.get(reverse("generation_detail", args=[done.pk]))

    assert "Make a character from this clip" in response.text
