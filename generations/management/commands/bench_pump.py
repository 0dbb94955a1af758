"""Benchmark: one pump.tick() with a handful of jobs in flight, over a short history and a long one.

    manage.py bench_pump --rows 1000000 --database sqlite|postgres

The pump ticks every PUMP_TICK_SECONDS for as long as the studio runs: its cost must follow the jobs in
flight, not the history. The floor is the same tick over 100 finished generations; the ratio should be ≈ 1.
"""

import statistics
import time
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from generations.bench import fill, table
from generations.bench.command import BenchCommand
from generations.jobs import pump
from generations.jobs.models import Generation
from generations.providers.models import Backend
from generations.states import TERMINAL, Status

DISCARD_URL = "http://127.0.0.1:9/v1"  # never called: the jobs in flight are not due
# Slow ticks are timed fewer times: at least MIN_TICKS, then until BUDGET_SECONDS are spent.
MIN_TICKS = 5
BUDGET_SECONDS = 20


class Command(BenchCommand):
    help = "Time pump.tick() with 100 finished generations in the table and with --rows of them."
    forwarded = ("rows", "small", "repeat")

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--rows", type=int, default=1_000_000, help="Finished generations in the long history.")
        parser.add_argument("--small", type=int, default=100, help="Finished generations in the short one.")
        parser.add_argument("--repeat", type=int, default=200, help="Ticks timed at each size (the median is shown).")

    def measure(self, opts) -> None:
        self.stdout.write(f"Pump on {connection.vendor}: {table.machine_load()}")
        owners = [get_user_model().objects.create_user(f"bench-{n}").pk for n in range(5)]
        full, other = self.backend("Bench full", 4), self.backend("Bench other", 4)
        newest = timezone.now() - timedelta(minutes=5)
        fill.finished_generations(opts["small"], owners=owners, backends=[full.pk, other.pk], newest=newest)
        in_flight = self.jobs_in_flight(owners[0], full, other)
        short = self.ticks(opts["repeat"])
        self.stdout.write(f"Filling the history up to {opts['rows']:,} finished generations ...")
        fill.finished_generations(
            opts["rows"] - opts["small"],
            owners=owners,
            backends=[full.pk, other.pk],
            newest=newest - opts["small"] * timedelta(seconds=30),
            say=self.stdout.write,
        )
        analyze()
        long = self.ticks(opts["repeat"])
        finished = Generation.objects.filter(status__in=TERMINAL).count()
        measure = f"pump.tick(), {in_flight} jobs active, {finished:,} finished (ms; floor: {opts['small']:,} finished)"
        rows = [table.Row(measure, long[0], short[0], 2), table.Row("queries per tick", long[1], short[1], 0)]
        self.stdout.write(table.render(rows))
        self.stdout.write(f"ratio = studio / floor · {table.machine_load()}")

    def backend(self, name: str, slots: int) -> Backend:
        backend = Backend(name=name, protocol="openai_videos", base_url=DISCARD_URL, api_key="bench")
        backend.max_in_flight = slots
        backend.adopt_protocol_defaults()
        backend.save()
        backend.install_default_prices()
        return backend

    def jobs_in_flight(self, owner_id: int, full: Backend, other: Backend) -> int:
        """A handful of active jobs the tick must look at and leave alone: the full backend's four running
        (polled in an hour) and three queued behind them (due, but no slot is free), one running elsewhere."""
        now = timezone.now()
        later = now + timedelta(hours=1)
        jobs = [(full, Status.IN_PROGRESS, later)] * 4 + [(full, Status.QUEUED, now)] * 3
        jobs += [(other, Status.SUBMITTED, later)]
        for n, (backend, status, next_poll_at) in enumerate(jobs):
            Generation.objects.create(
                owner_id=owner_id, backend=backend, prompt=f"In flight {n}", model="sora-2", seconds=4,
                size="720x1280", status=status, next_poll_at=next_poll_at,
                remote_id="" if status == Status.QUEUED else f"video_{n}",
            )  # fmt: skip
        return len(jobs)

    def ticks(self, repeat: int) -> tuple[float, int]:
        """Median ms of `repeat` ticks (after a few to warm up; fewer if they are slow), and the queries of one."""
        for _ in range(3):
            self.tick()
        with CaptureQueriesContext(connection) as captured:
            self.tick()
        queries = len(captured)
        times: list[float] = []
        while len(times) < repeat and (len(times) < MIN_TICKS or sum(times) < BUDGET_SECONDS):
            started = time.perf_counter()
            self.tick()
            times.append(time.perf_counter() - started)
        return statistics.median(times) * 1000, queries

    def tick(self) -> None:
        handed = pump.tick()
        if handed:
            raise RuntimeError(f"the tick handed out {handed} jobs: the bench's jobs in flight should never be due")


def analyze() -> None:
    """PostgreSQL's autovacuum analyses a table after a bulk load like this; do it now rather than maybe later.
    (SQLite has no such daemon and Django never runs ANALYZE: it plans without statistics, as in production.)"""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Generation._meta.db_table}")
