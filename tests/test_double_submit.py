"""A double-click, a re-sent form, two requests at once: one video, one estimate, one submit."""

import threading

import pytest
from django.db import connection

from generations.billing.models import CostEntry
from generations.jobs import lifecycle
from generations.jobs.lifecycle import GenerationRequest
from generations.jobs.models import Generation

pytestmark = pytest.mark.django_db(transaction=True)


def start(owner, backend, token):
    return lifecycle.start(
        GenerationRequest(
            owner, prompt="Twice?", model="sora-2", seconds=4, size="720x1280", backend=backend, client_token=token
        )
    ).generation


def test_the_same_form_token_twice_returns_the_first_job(alice, official, held_tasks):
    first = start(alice, official, "form-1")
    again = lifecycle.start(
        GenerationRequest(
            alice, prompt="Twice?", model="sora-2", seconds=4, size="720x1280", backend=official, client_token="form-1"
        )
    )
    assert again.generation.pk == first.pk and not again.created and again.warnings == []
    assert Generation.objects.count() == 1 and CostEntry.objects.count() == 1
    assert [f for f, _ in held_tasks].count("generations.tasks.advance") == 1


def test_two_simultaneous_posts_of_one_form_make_one_job(alice, official, held_tasks):
    barrier = threading.Barrier(2)
    results, errors = [], []

    def post():
        try:
            barrier.wait()
            results.append(start(alice, official, "form-2").pk)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(set(results)) == 1
    assert Generation.objects.count() == 1


def test_tokens_are_per_creator(alice, bob, official, held_tasks):
    assert start(alice, official, "same").pk != start(bob, official, "same").pk


def test_a_deleted_video_leaves_the_gallery_but_keeps_its_ledger(alice, official):
    from tests.conftest import drive

    generation = drive(
        lifecycle.start(
            GenerationRequest(alice, prompt="Bye", model="sora-2", seconds=4, size="720x1280", backend=official)
        ).generation
    )
    video_path = generation.video.path
    note = lifecycle.delete(generation)

    assert "Also deleted on Simulated official" in note
    assert not Generation.objects.for_user(alice).exists()
    import os

    assert not os.path.exists(video_path)
    assert CostEntry.objects.filter(generation=generation, kind="charge").exists()


def test_retrying_or_remixing_twice_starts_one_job(alice, official, held_tasks):
    failed = start(alice, official, "form-3")
    Generation.objects.filter(pk=failed.pk).update(status="failed")
    failed.refresh_from_db()
    assert lifecycle.retry(failed).generation.pk == lifecycle.retry(failed).generation.pk

    Generation.objects.filter(pk=failed.pk).update(status="completed", remote_id="video_x")
    failed.refresh_from_db()
    first = lifecycle.remix(failed, "Now at night").generation
    assert lifecycle.remix(failed, "Now at night").generation.pk == first.pk
    assert lifecycle.remix(failed, "Now in the rain").generation.pk != first.pk
