"""Where a job's time goes: the studio's from each job's timeline (GenerationEvent), the floor's from its
own clock. In seconds."""

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
    """Means, because throughput follows them: jobs/s = slots × busy share / mean time in a slot. The 90th
    percentile shows whether a few slow jobs make the mean."""
    floor_jobs = [create + rest for create, rest in zip(floor_create, floor_rest, strict=True)]
    in_slot = studio_spans[SLOT[0]]
    return [
        Row(f"mean s per job {SLOT[0]}: submitting → completed (floor: a whole job)", mean(in_slot),
            mean(floor_jobs), 3),
        Row(f"  of which {CREATE[0]}", mean(studio_spans[CREATE[0]]), mean(floor_create), 3),
        Row(f"  of which {STORED[0]}", mean(studio_spans[STORED[0]]), mean(floor_rest), 3),
        Row(f"90th percentile s {SLOT[0]}", percentile(in_slot, 0.9), percentile(floor_jobs, 0.9), 3),
        Row("slots busy, share of the run (floor: its threads)", sum(in_slot) / studio_slots,
            sum(floor_jobs) / floor_slots if floor_slots else None, 2),
    ]  # fmt: skip


def mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]
