"""The pipeline benchmark: N jobs through the studio (lifecycle.start → real qcluster workers → the
simulator under gunicorn) against the floor, a bare requests loop doing the same HTTP to the same simulator.

Runs on the database this process is configured with (bench_pipeline creates a throw-away one first).
The floor runs before any qcluster is started, so idle workers do not slow it down. With several rounds the
two take turns (floor, studio, floor, studio …): on a shared machine whose load drifts, each studio run is
compared with the floor run just before it, and the median round is the one reported in full.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import sqlite3
import statistics
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, Max, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from generations.bench import databases, phases, processes
from generations.bench.accesslog import AccessLog
from generations.bench.floor import Floor
from generations.bench.table import Row
from generations.billing.models import CostEntry, CostKind
from generations.jobs import lifecycle, pump
from generations.jobs.models import Generation, PumpLease
from generations.providers.models import Backend
from generations.states import IN_FLIGHT, TERMINAL, Status

VIDEO = {"model": "sora-2", "seconds": 4, "size": "720x1280"}
IDLE_SECONDS = 5  # how long the idle workers' CPU is watched
# When a job ended: completed_at, else (a job that failed) the time of its last change.
FINISHED_AT = Coalesce("completed_at", "updated_at")


@dataclass
class Options:
    jobs: int = 200
    qclusters: int = 1
    concurrency: int = 3  # the floor's threads
    backend_slots: int = 3  # the studio backend's max_in_flight
    idle_repeats: int = 3
    speed: float = 1000
    simulator_workers: int = 2
    simulator_threads: int = 4
    timeout: float = 600
    own_simulator_database: bool = True  # False: the simulator's tables in the studio's database (tests)
    workdir: Path = databases.DEFAULT_WORKDIR
    extra_env: dict[str, str] = field(default_factory=dict)
    keep: bool = False  # leave the run's folder (logs, the simulator's database) in place
    floor: bool = True  # False: the studio alone (a scale-out run of thousands of jobs in flight)
    rounds: int = 1  # floor and studio in turn, this many times


@dataclass
class Round:
    """One floor run and the studio run right after it, and how busy the machine was by the end."""

    floor: dict
    studio: dict
    load: float

    @property
    def ratio(self) -> float | None:
        """Studio jobs/s over the floor's: what orders the rounds (the studio's own jobs/s with no floor)."""
        if not self.floor["jobs_per_s"]:
            return None
        return self.studio["jobs_per_s"] / self.floor["jobs_per_s"]

    @property
    def cpu_per_job_ms(self) -> float:
        return self.studio["cpu"] / self.studio["jobs"] * 1000

    @property
    def floor_cpu_per_job_ms(self) -> float | None:
        """The floor loop's CPU for as many jobs (None with no floor)."""
        return per_job(self.floor["cpu"], self.studio["jobs"] / 1000)


@dataclass
class Checks:
    jobs: int
    statuses: Counter
    provider_jobs: Counter  # provider jobs made per idempotency key of the batch
    creates_sent: int
    charged_once: int
    refunds: int

    @property
    def ok(self) -> bool:
        made_once = sum(1 for n in self.provider_jobs.values() if n == 1)
        return (
            self.statuses.get(Status.COMPLETED, 0) == self.jobs
            and made_once == self.jobs
            and self.creates_sent == self.jobs
            and self.charged_once == self.jobs
            and self.refunds == 0
        )

    def describe(self) -> str:
        made_once = sum(1 for n in self.provider_jobs.values() if n == 1)
        statuses = ", ".join(f"{status} {n}" for status, n in sorted(self.statuses.items()))
        return (
            f"checks: {statuses} of {self.jobs} · made once at the provider {made_once}/{self.jobs} "
            f"(creates sent {self.creates_sent}) · charged once {self.charged_once}/{self.jobs}, "
            f"refunds {self.refunds} · {'OK' if self.ok else 'FAILED'}"
        )


class PipelineBench:
    def __init__(self, options: Options, say):
        self.o = options
        self.say = say
        self.studio_key = secrets.token_hex(16)
        self.floor_key = secrets.token_hex(16)
        self.run_dir = options.workdir / f"pipeline-{os.getpid()}"
        self.access_log = AccessLog(self.run_dir / "simulator-access.log")
        self.processes = []

    # --- the run ----------------------------------------------------------------------------------

    def run(self) -> list[Round]:
        """The rounds, in the order they ran."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        finished = False
        rounds = []
        try:
            base = self.start_simulator()
            for number in range(1, self.o.rounds + 1):
                if self.o.rounds > 1:
                    self.say(f"round {number} of {self.o.rounds}")
                floor = self.measure_floor(base) if self.o.floor else NO_FLOOR
                studio = self.measure_studio(base)
                rounds.append(Round(floor, studio, os.getloadavg()[0]))
            finished = True
        finally:
            for process in self.processes:
                processes.stop(process)
            if not finished:
                self.say(f"The processes' logs are in {self.run_dir}")
            elif not self.o.keep:
                shutil.rmtree(self.run_dir, ignore_errors=True)
        return rounds

    def start_simulator(self) -> str:
        env = {
            **self.worker_env(),
            "REDIS_URL": "",
            "SIMULATOR_ENABLED": "true",
            "SIMULATOR_SPEED": str(self.o.speed),
            "SIMULATOR_API_KEYS": f"{self.studio_key},{self.floor_key}",
            "SIMULATOR_MAX_IN_FLIGHT": "100000",  # the clients' own concurrency is what is compared
            "MEDIA_ROOT": str(self.run_dir / "simulator-media"),
        }
        if self.o.own_simulator_database:
            # A provider is somewhere else: its writes must not land in the studio's database (or its counters).
            env["DATABASE_URL"] = f"sqlite:///{self.run_dir / 'simulator.sqlite3'}"
            migrate = databases.manage("migrate", "--noinput", "-v0", env=env)
            output, _ = migrate.communicate()
            if migrate.returncode:
                raise RuntimeError(f"migrating the simulator's database failed:\n{output}")
        self.simulator_url = env["DATABASE_URL"]
        port = processes.free_port()
        self.simulator = processes.gunicorn(
            env,
            port,
            workers=self.o.simulator_workers,
            threads=self.o.simulator_threads,
            access_log=self.access_log.path,
            log=self.run_dir / "simulator.log",
        )
        self.processes.append(self.simulator)
        base = f"http://127.0.0.1:{port}/simulator/openai/v1"
        processes.wait_until_up(f"{base}/videos", {"Authorization": f"Bearer {self.floor_key}"})
        return base

    def worker_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": databases.current_url(),
            "REDIS_URL": settings.REDIS_URL,
            "SECRET_KEY": settings.SECRET_KEY,
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "ALLOW_PRIVATE_FETCH": "true",
            "LOG_LEVEL": "WARNING",
            "Q_SYNC": "0",
            **self.o.extra_env,
        }

    # --- the floor --------------------------------------------------------------------------------

    def measure_floor(self, base: str) -> dict:
        floor = Floor(base, self.floor_key, **VIDEO)
        floor.run(1, 1)  # warm-up: first renders, imports, connections
        idle = statistics.median(floor.run(1, 1) for _ in range(self.o.idle_repeats)) if self.o.idle_repeats else None
        self.say(f"floor: {self.o.jobs} jobs on {self.o.concurrency} threads ...")
        mark, cpu, simulator_cpu = self.access_log.mark(), time.process_time(), self.simulator_cpu()
        elapsed = floor.run(self.o.jobs, self.o.concurrency)
        cpu = time.process_time() - cpu
        simulator_cpu = self.simulator_cpu() - simulator_cpu
        time.sleep(0.3)  # the last access-log lines
        return {
            "jobs_per_s": self.o.jobs / elapsed,
            "elapsed": elapsed,
            "idle": idle,
            "cpu": cpu,
            "simulator_cpu": simulator_cpu,
            "requests": self.access_log.since(mark),
            "phases": (floor.create_seconds, floor.rest_seconds),
        }

    # --- the studio -------------------------------------------------------------------------------

    def measure_studio(self, base: str) -> dict:
        user = get_user_model().objects.create_user(f"bench-{secrets.token_hex(4)}")
        backend = Backend(
            name=f"Bench simulator {secrets.token_hex(3)}",
            protocol="openai_videos",
            base_url=base,
            api_key=self.studio_key,
            max_in_flight=self.o.backend_slots,
        )
        backend.adopt_protocol_defaults()
        backend.save()
        backend.install_default_prices()
        env = self.worker_env()
        clusters = []
        for n in range(self.o.qclusters):
            clusters.append(processes.qcluster(env, self.run_dir / f"qcluster-{n}.log"))
        self.processes += clusters
        idle = idle_cpu = None
        if self.o.idle_repeats:  # none: a scale-out run, whose single jobs would take minutes at its speed
            self.wait(self.start_jobs(user, 1, "warm-up"), timeout=120)
            idle_cpu = self.cpu_at_idle([c.pid for c in clusters])
            idle = statistics.median(self.one_job_at_idle(user) for _ in range(self.o.idle_repeats))

        self.say(f"studio: {self.o.jobs} jobs, {self.o.qclusters} qcluster(s) ...")
        stats = self.pg_stats()
        cpu, mark = processes.cpu_seconds([c.pid for c in clusters]), self.access_log.mark()
        simulator_cpu = self.simulator_cpu()
        started = timezone.now()
        web_cpu = time.process_time()
        ids = self.start_jobs(user, self.o.jobs, "run")
        web_cpu = time.process_time() - web_cpu
        with counting_statements() as own:
            peak = self.wait(ids, timeout=self.o.timeout, progress=True)
        cpu = processes.cpu_seconds([c.pid for c in clusters]) - cpu
        simulator_cpu = self.simulator_cpu() - simulator_cpu
        for cluster in clusters:
            processes.stop(cluster)
        # The next round routes over one backend, its own, as this one did: a backend left enabled would be weighed
        # by every start of every later round.
        Backend.objects.filter(pk=backend.pk).update(enabled=False)
        # The pump they hosted died with them, holding its lease: the next round's first job would wait for that lease
        # to run out (a restart after a crash waits for it, or for the one-minute schedule).
        PumpLease.objects.filter(name=pump.LEASE_NAME).update(holder="", expires_at=timezone.now())
        connection.close()  # its statistics reach pg_stat_database when its session ends
        time.sleep(0.3)
        requests = self.access_log.since(mark)
        if stats is not None:
            time.sleep(1.5)
            after = self.pg_stats()
            stats = {name: after[name] - stats[name] for name in stats}
            stats["transactions"] -= own["statements"]  # this process's own waiting, not the pipeline's
        ended = Generation.objects.filter(pk__in=ids).aggregate(end=Max(FINISHED_AT))["end"]
        elapsed = (ended - started).total_seconds()
        return {
            "jobs": len(ids),
            "jobs_per_s": self.o.jobs / elapsed,
            "elapsed": elapsed,
            "idle": idle,
            "cpu": cpu,
            "web_cpu": web_cpu,
            "simulator_cpu": simulator_cpu,
            "idle_cpu": idle_cpu,
            "requests": requests,
            "pg": stats,
            "checks": self.checks(ids, requests),
            "phases": phases.studio(ids),
            "peak_in_flight": peak,
        }

    def simulator_cpu(self) -> float:
        """CPU seconds the simulator (gunicorn and its workers) has used so far: the provider's share of the machine."""
        return processes.cpu_seconds([self.simulator.pid])

    def cpu_at_idle(self, roots: list[int]) -> float:
        """CPU seconds per second the workers spend with nothing to do (the pump's checks, the broker's polls)."""
        time.sleep(1)
        before = processes.cpu_seconds(roots)
        time.sleep(IDLE_SECONDS)
        return (processes.cpu_seconds(roots) - before) / IDLE_SECONDS

    def start_jobs(self, user, count: int, label: str) -> list[int]:
        return [
            lifecycle.start(
                lifecycle.GenerationRequest(owner=user, prompt=f"Bench {label} {secrets.token_hex(4)}", **VIDEO)
            ).generation.pk
            for _ in range(count)
        ]

    def one_job_at_idle(self, user) -> float:
        started = timezone.now()
        [pk] = self.start_jobs(user, 1, "idle")
        self.wait([pk], timeout=120, interval=0.05)
        finished = Generation.objects.filter(pk=pk).values_list(FINISHED_AT, flat=True).get()
        return (finished - started).total_seconds()

    def wait(self, ids: list[int], *, timeout: float, interval: float = 0.5, progress: bool = False) -> int:
        """Until every job of `ids` ended; returns the most jobs seen in flight at once (at the provider).

        One query every `interval`: the bench shares the machine with what it measures, and when it ends is read
        from the jobs' own timestamps, so looking more often would only take CPU from the pipeline."""
        deadline = time.monotonic() + timeout
        said = time.monotonic()
        peak = 0
        jobs = Generation.objects.filter(pk__in=ids)
        while True:
            seen = jobs.aggregate(
                done=Count("pk", filter=Q(status__in=TERMINAL)),
                flying=Count("pk", filter=Q(status__in=[Status.SUBMITTING, *IN_FLIGHT])),
            )
            peak = max(peak, seen["flying"])
            if (done := seen["done"]) >= len(ids):
                return peak
            if time.monotonic() > deadline:
                left = Counter(jobs.values_list("status", flat=True))
                raise RuntimeError(f"only {done} of {len(ids)} jobs ended within {timeout:.0f} s: {dict(left)}")
            if progress and time.monotonic() - said > 10:
                self.say(f"  {done}/{len(ids)} ended")
                said = time.monotonic()
            time.sleep(interval)

    def pg_stats(self) -> dict[str, int] | None:
        """Transactions (committed + rolled back) and sessions opened on the studio's database so far,
        read from another database so that reading them adds nothing."""
        if connection.vendor != "postgresql":
            return None
        with databases.maintenance_connection(databases.current_url()) as conn:
            row = conn.execute(
                "SELECT xact_commit + xact_rollback, sessions FROM pg_stat_database WHERE datname = %s",
                [connection.settings_dict["NAME"]],
            ).fetchone()
        stats = {"transactions": row[0], "sessions": row[1]}
        if self.postmaster is not None:
            stats["server_cpu"] = processes.cpu_seconds([self.postmaster])
        return stats

    @functools.cached_property
    def postmaster(self) -> int | None:
        """The PostgreSQL server's main process if it runs on this machine (its CPU, backends included, is read
        from /proc beside the run's), else None."""
        host = connection.settings_dict["HOST"] or ""
        local = host in ("", "localhost", "127.0.0.1", "::1") or host.startswith("/")
        return processes.postmaster() if local else None

    def checks(self, ids: list[int], requests: Counter) -> Checks:
        generations = Generation.objects.filter(pk__in=ids)
        charges = Counter(
            dict(
                CostEntry.objects.filter(generation__in=ids, kind=CostKind.CHARGE)
                .values_list("generation")
                .annotate(n=Count("pk"))
                .values_list("generation", "n")
            )
        )
        return Checks(
            jobs=len(ids),
            statuses=Counter(generations.values_list("status", flat=True)),
            provider_jobs=self.provider_jobs(list(generations.values_list("idempotency_key", flat=True))),
            creates_sent=requests["create"],
            charged_once=sum(1 for n in charges.values() if n == 1),
            refunds=CostEntry.objects.filter(generation__in=ids, kind=CostKind.REFUND).count(),
        )

    def provider_jobs(self, keys: list[str]) -> Counter:
        """Jobs the simulator made per idempotency key: read from its tables, as a provider's dashboard would."""
        found = Counter(dict.fromkeys(keys, 0))
        sql = "SELECT sent_idempotency_key, COUNT(*) FROM simulator_job WHERE sent_idempotency_key IN ({}) GROUP BY 1"
        if self.o.own_simulator_database:
            with sqlite3.connect(self.simulator_url.removeprefix("sqlite:///")) as conn:
                rows = conn.execute(sql.format(", ".join("?" * len(keys))), keys).fetchall()
        else:
            with connection.cursor() as cursor:
                cursor.execute(sql.format(", ".join(["%s"] * len(keys))), keys)
                rows = cursor.fetchall()
        found.update(dict(rows))
        return found

    # --- the tables -------------------------------------------------------------------------------

    def rows(self, floor: dict, studio: dict) -> list[Row]:
        n = self.o.jobs
        measured = floor is not NO_FLOOR  # else every floor figure is a dash
        where = f"{connection.vendor}{' + Redis' if settings.REDIS_URL else ''}, {self.o.qclusters} qcluster(s)"
        rows = [
            Row(f"jobs/s, {where}", studio["jobs_per_s"], floor["jobs_per_s"], 2),
            Row("one job at idle, create → completed (s)", studio["idle"], floor["idle"], 3),
            Row("worker-side CPU per job (ms)", studio["cpu"] / n * 1000, per_job(floor["cpu"], n / 1000)),
            Row("web-side CPU per lifecycle.start() (ms)", studio["web_cpu"] / n * 1000),
            Row(
                "worker-side CPU while idle (ms per second)",
                per_job(studio["idle_cpu"], 1 / 1000),
                0.0 if measured else None,
            ),
            Row("HTTP requests to the provider per job", requests(studio) / n, per_job(requests(floor), n), 2),
            Row(
                "  of which polls",
                studio["requests"]["poll"] / n,
                floor["requests"]["poll"] / n if measured else None,
                2,
            ),
            Row("most jobs in flight at once (at the provider)", studio["peak_in_flight"], digits=0),
            Row(
                "simulator CPU per job (ms)",
                studio["simulator_cpu"] / n * 1000,
                per_job(floor["simulator_cpu"], n / 1000),
            ),
        ]
        if studio["pg"] is not None:
            rows += [
                Row("PostgreSQL transactions per job", studio["pg"]["transactions"] / n),
                Row("PostgreSQL sessions opened per job", studio["pg"]["sessions"] / n, digits=2),
            ]
            if "server_cpu" in studio["pg"]:  # a server on this machine: everything it did meanwhile
                rows.append(Row("PostgreSQL server CPU per job (ms)", studio["pg"]["server_cpu"] / n * 1000))
        rows.append(
            Row(
                "CPU per job, all of it (ms): workers, starts, database server, simulator (floor: loop, simulator)",
                whole_cpu(studio) / n * 1000,
                per_job(whole_cpu(floor), n / 1000),
            )
        )
        return rows + phases.rows(
            studio["phases"],
            self.o.backend_slots * studio["elapsed"],
            *floor["phases"],
            self.o.concurrency * (floor["elapsed"] or 0),
        )


def median_round(rounds: list[Round]) -> Round:
    """The round in the middle by jobs/s against its floor (of an even number, the lower of the middle two)."""
    ordered = sorted(rounds, key=lambda r: r.studio["jobs_per_s"] if r.ratio is None else r.ratio)
    return ordered[(len(ordered) - 1) // 2]


def rounds_table(rounds: list[Round]) -> str:
    """Each round's headline figures, then their medians: how much the machine's drift moved them."""

    def pair(studio, floor, digits: int) -> str:
        row = Row("", studio, floor, digits)
        return f"{row.cell(row.studio)} | {row.cell(row.floor)} | {row.ratio}"

    lines = [
        "| round | jobs/s studio | floor | ratio | worker CPU per job (ms) studio | floor | ratio | load average |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for number, r in enumerate(rounds, start=1):
        jobs = pair(r.studio["jobs_per_s"], r.floor["jobs_per_s"], 2)
        lines.append(f"| {number} | {jobs} | {pair(r.cpu_per_job_ms, r.floor_cpu_per_job_ms, 1)} | {r.load:.2f} |")
    measured = [r for r in rounds if r.ratio is not None]  # with a floor
    lines.append(
        f"| median | {_median([r.studio['jobs_per_s'] for r in rounds], 2)} | "
        f"{_median([r.floor['jobs_per_s'] for r in measured], 2)} | {_median([r.ratio for r in measured], 2)} | "
        f"{_median([r.cpu_per_job_ms for r in rounds], 1)} | "
        f"{_median([r.floor_cpu_per_job_ms for r in measured], 1)} | "
        f"{_median([r.cpu_per_job_ms / r.floor_cpu_per_job_ms for r in measured if r.floor_cpu_per_job_ms], 2)} | |"
    )
    return "\n".join(lines)


def _median(values: list[float], digits: int) -> str:
    return f"{statistics.median(values):,.{digits}f}" if values else "—"


def requests(run: dict) -> int | None:
    if run is NO_FLOOR:
        return None
    return sum(run["requests"][kind] for kind in ("create", "poll", "download", "other"))


def whole_cpu(run: dict) -> float | None:
    """Every CPU second the run cost this machine (the bench's own waiting aside): on a machine the simulator's
    renders keep busy, jobs/s follows it. The studio's includes the PostgreSQL server where it runs here."""
    if run is NO_FLOOR:
        return None
    parts = [run["cpu"], run["simulator_cpu"], run.get("web_cpu", 0.0)]
    if run.get("pg") and "server_cpu" in run["pg"]:
        parts.append(run["pg"]["server_cpu"])
    return sum(parts)


def per_job(total: float | None, jobs: int) -> float | None:
    return None if total is None else total / jobs


# A run without the floor (--no-floor): every floor figure shows a dash.
NO_FLOOR = {
    "jobs_per_s": None,
    "elapsed": None,
    "idle": None,
    "cpu": None,
    "simulator_cpu": None,
    "requests": Counter(),
    "phases": ([], []),
}


@contextmanager
def counting_statements():
    """How many statements this process ran meanwhile: each is one transaction in autocommit."""
    seen = {"statements": 0}

    def wrapper(execute, sql, params, many, context):
        seen["statements"] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield seen
