"""Benchmark: the gallery at 24 cards against a bare Django view, and "Load older" deep in a long history.

    manage.py bench_gallery --generations 200000 --database sqlite|postgres

See generations/bench/gallery.py for what is compared with what.
"""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from generations.bench import fill, table
from generations.bench.command import BenchCommand
from generations.bench.gallery import GalleryBench
from generations.jobs.models import Generation
from generations.providers.models import Backend

DISCARD_URL = "http://127.0.0.1:9/v1"  # never called: every generation is finished


class Command(BenchCommand):
    help = "Requests/s of the gallery against a bare view, and its first page against its last."
    forwarded = ("generations", "requests", "repeat")
    renders_pages = True

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--generations", type=int, default=200_000, help="The creator's history.")
        parser.add_argument("--requests", type=int, default=300, help="Requests timed for each req/s figure.")
        parser.add_argument("--repeat", type=int, default=30, help="Requests timed per page (the median is shown).")

    def measure(self, opts) -> None:
        self.stdout.write(f"Gallery on {connection.vendor}: {table.machine_load()}")
        creator = get_user_model().objects.create_user("bench-creator")
        backends = [self.backend(f"Bench {n}").pk for n in range(3)]
        self.stdout.write(f"Filling {opts['generations']:,} finished generations and their ledger ...")
        fill.finished_generations(
            opts["generations"],
            owners=[creator.pk],
            backends=backends,
            newest=timezone.now() - timedelta(minutes=5),
            ledger=True,
            say=self.stdout.write,
        )
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:  # what autovacuum does after a bulk load
                cursor.execute(f"ANALYZE {Generation._meta.db_table}")
                cursor.execute("ANALYZE generations_costentry")
        rows = GalleryBench(creator, requests=opts["requests"], repeat=opts["repeat"]).run()
        self.stdout.write(table.render(rows))
        self.stdout.write(f"ratio = studio / floor · {table.machine_load()}")

    def backend(self, name: str) -> Backend:
        backend = Backend(name=name, protocol="openai_videos", base_url=DISCARD_URL, api_key="bench")
        backend.adopt_protocol_defaults()
        backend.save()
        backend.install_default_prices()
        return backend
