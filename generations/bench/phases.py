"""Where a job's time goes: the studio's from each job's timeline (GenerationEvent), the floor's from its
own clock. Medians, in seconds."""

from __future__ import annotations

import statistics

from generations.bench.table import Row
from generations.jobs.models import GenerationEvent
from generations.states import Status

# (label, the state it starts at, the state it ends at)
CREATE = ("create: submitting → submitted", Status.SUBMITTING, Status.SUBMITTED)
STORED = ("accepted → video stored: submitted → completed", Status.SUBMITTED, Status.COMPLETED)
# A backend's slot is taken at `submitting` and given back at `completed`.
SLOT = ("in a slot", Status.SUBMITTING, Status.COMPLETED)


def studio(ids: list[int]) -> dict[str, list[float]]:
    """Seconds per job of each phase, from the first time it entered each state."""
    first: dict[int, dict[str, object]] = {}
    events = GenerationEvent.objects.filter(generation__in=ids).values_list("generation", "status", "at")
    for generation, status, at in events:
        first.setdefault(generation, {}).setdefault(status, at)  # ordered by (generation, at)
    return {
        label: [(t[end] - t[start]).total_seconds() for t in first.values() if start in t and end in t]
        for label, start, end in (CREATE, STORED, SLOT)
    }


def rows(
    studio_spans: dict[str, list[float]],
    studio_slots: float,
    floor_create: list[float],
    floor_rest: list[float],
    floor_slots: float,
) -> list[Row]:
    """The medians of the phases a job spends at the provider, and how busy the slots (the floor's threads)
    were over the whole run: what a job waits for between them shows there."""
    floor_busy = sum(floor_create) + sum(floor_rest)
    return [
        Row(f"median s per job, {CREATE[0]}", median(studio_spans[CREATE[0]]), median(floor_create), 3),
        Row(f"median s per job, {STORED[0]}", median(studio_spans[STORED[0]]), median(floor_rest), 3),
        Row("slots busy, share of the run (floor: its threads)", sum(studio_spans[SLOT[0]]) / studio_slots,
            floor_busy / floor_slots, 2),
    ]  # fmt: skip


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None
