"""django-q2 tasks. Each takes ids, loads, calls the domain, and is safe to run twice."""

from django.conf import settings
from django_q.conf import Conf

from generations.jobs import lifecycle, pump
from generations.storyboards import chain, export
from sora_studio import queue


def advance(generation_id: int) -> None:
    lifecycle.advance(generation_id)
    ensure_pump()  # the job's next step is the pump's to hand out: one read while a pump runs


def run_pump() -> None:
    """A pump shift inside qcluster; hands over to a successor when the shift ends."""
    if pump.run(seconds=settings.PUMP_RUN_SECONDS, hand_over_at_end=True):
        queue.enqueue("generations.tasks.run_pump")


def ensure_pump() -> None:
    """Start a pump if none runs or is on its way (the one-minute Schedule and new jobs call this)."""
    if Conf.SYNC:
        return  # no cluster to host a long-lived pump: tests drive pump.tick() themselves
    if pump.claim_start():
        queue.enqueue("generations.tasks.run_pump")


def build_export(export_id: int) -> None:
    """Build a series' (or a whole library's) zip; safe to run twice (the export is leased)."""
    export.build(export_id)


def take_ended(generation_id: int) -> None:
    """A scene's take ended: its continuous series' chain moves on (safe to run twice: one take per link)."""
    chain.take_ended(generation_id)


def advance_chains() -> None:
    """The one-minute safety net: every chain with a waiting scene moves on if it can."""
    chain.advance_all()
