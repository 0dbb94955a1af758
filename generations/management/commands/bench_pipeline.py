"""Benchmark: jobs through the whole studio against a bare requests loop doing the same HTTP.

    manage.py bench_pipeline --jobs 200 --database sqlite|postgres --qclusters 1|3

On a throw-away database (a SQLite file under .bench/, or PostgreSQL + Redis at BENCH_POSTGRES_URL and
BENCH_REDIS_URL), with the simulator under gunicorn at SIMULATOR_SPEED=1000. See generations/bench/pipeline.py.
"""

from django.core.management.base import CommandError

from generations.bench import table
from generations.bench.command import BenchCommand
from generations.bench.pipeline import Options, PipelineBench, median_round, rounds_table


class Command(BenchCommand):
    help = "Time N jobs through lifecycle.start and real qcluster workers against a bare requests loop."
    uses_redis = True
    forwarded = (
        "jobs",
        "qclusters",
        "concurrency",
        "backend_slots",
        "idle_repeats",
        "speed",
        "simulator_workers",
        "simulator_threads",
        "timeout",
        "env",
        "shared_simulator_database",
        "no_floor",
        "rounds",
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--jobs", type=int, default=200)
        parser.add_argument("--qclusters", type=int, default=1, help="qcluster processes (each with Q_WORKERS).")
        parser.add_argument("--concurrency", type=int, default=3, help="The floor's threads.")
        parser.add_argument("--backend-slots", type=int, help="The studio backend's max_in_flight (--concurrency).")
        parser.add_argument(
            "--idle-repeats", type=int, default=3, help="Single jobs at idle (their median); 0: none, no warm-up."
        )
        parser.add_argument("--speed", type=float, default=1000, help="SIMULATOR_SPEED of the simulator.")
        parser.add_argument("--simulator-workers", type=int, default=2, help="gunicorn workers of the simulator.")
        parser.add_argument("--simulator-threads", type=int, default=4, help="gunicorn threads per worker.")
        parser.add_argument("--timeout", type=float, default=600, help="Seconds the studio gets for the jobs.")
        parser.add_argument(
            "--env", action="append", default=[], metavar="NAME=VALUE", help="For the studio's processes (repeat)."
        )
        parser.add_argument(
            "--shared-simulator-database",
            action="store_true",
            help="Keep the simulator's tables in the studio's database instead of its own SQLite file.",
        )
        parser.add_argument(
            "--no-floor",
            action="store_true",
            help="The studio alone: for a scale-out run (thousands of jobs in flight, a slower simulator).",
        )

        parser.add_argument(
            "--rounds",
            type=int,
            default=1,
            help="Floor and studio in turn this many times; the median round by jobs/s ratio is shown in full.",
        )

    def measure(self, opts) -> None:
        options = Options(
            jobs=opts["jobs"],
            qclusters=opts["qclusters"],
            concurrency=opts["concurrency"],
            backend_slots=opts["backend_slots"] or opts["concurrency"],
            idle_repeats=opts["idle_repeats"],
            speed=opts["speed"],
            simulator_workers=opts["simulator_workers"],
            simulator_threads=opts["simulator_threads"],
            timeout=opts["timeout"],
            own_simulator_database=not opts["shared_simulator_database"],
            workdir=opts["workdir"],
            extra_env=dict(item.partition("=")[::2] for item in opts["env"]),
            keep=opts["keep"],
            floor=not opts["no_floor"],
            rounds=max(1, opts["rounds"]),
        )
        self.stdout.write(
            f"Pipeline: {options.jobs} jobs, floor on {options.concurrency} threads, studio backend with "
            f"{options.backend_slots} slots · {table.machine_load()}"
        )
        bench = PipelineBench(options, self.stdout.write)
        rounds = bench.run()
        if len(rounds) > 1:
            self.stdout.write(rounds_table(rounds))
            middle = median_round(rounds)
            self.stdout.write(f"Round {rounds.index(middle) + 1}, the median by jobs/s ratio, in full:")
        else:
            middle = rounds[0]
        self.stdout.write(table.render(bench.rows(middle.floor, middle.studio)))
        failed = [number for number, r in enumerate(rounds, start=1) if not r.studio["checks"].ok]
        for number, r in enumerate(rounds, start=1):
            prefix = f"round {number}: " if len(rounds) > 1 else "ratio = studio / floor · "
            self.stdout.write(f"{prefix}{r.studio['checks'].describe()}")
        self.stdout.write(table.machine_load())
        if failed:
            raise CommandError("not every job ended completed, made once and charged once")
