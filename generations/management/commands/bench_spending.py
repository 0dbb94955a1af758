"""Benchmark: the spending report over N ledger rows next to a hand-written SQL GROUP BY.

Run it on a throw-away database (`make bench` does): it fills the ledger with synthetic rows.
"""

import random
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from generations.billing import pricing
from generations.billing.models import CostEntry
from generations.billing.reports import month as report_month
from generations.jobs.models import Generation
from generations.providers import registry
from generations.providers.models import Backend, Price, PriceUnit

MONTH = (2026, 11)


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


class Command(BaseCommand):
    help = "Time the spending report over N cost entries against a hand-written SQL GROUP BY."

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=1_000_000)
        parser.add_argument("--repeat", type=int, default=5)
        parser.add_argument("--yes", action="store_true", help="Really fill this database with synthetic rows.")

    def handle(self, *args, **opts):
        if not opts["yes"]:
            raise CommandError("This fills the database with synthetic rows; use a throw-away DATABASE_URL and --yes.")
        rows = opts["rows"]
        if CostEntry.objects.count() < rows:
            self.fill(rows - CostEntry.objects.count())
        year, month = MONTH
        self.stdout.write(f"{connection.vendor}: {CostEntry.objects.count():,} cost entries in the ledger")
        creator = get_user_model().objects.get(username="bench-0")
        for label, user in [("one creator", creator), ("whole studio (staff view)", None)]:
            self.measure(label, user, year, month, opts["repeat"])

    def measure(self, label, user, year, month, repeat):
        entries = report_month.month_entries(user, year, month)
        self.stdout.write(f"\n{label}: {entries.count():,} entries in {year}-{month:02d}")
        report_time, report = timed(
            lambda: report_month.month_report(user, year, month, staff_view=user is None), repeat
        )
        orm_time, lines = timed(
            lambda: report_month._lines(report_month.month_entries(user, year, month), "backend__name"), repeat
        )
        sql_time, sql_rows = timed(lambda: self.hand_sql(user.pk if user else None, year, month), repeat)
        sql_net = {name: Decimal(str(charged)) - Decimal(str(refunded)) for name, charged, refunded in sql_rows}
        for line in lines:
            assert abs(line.net - sql_net[line.label]) < Decimal("0.01"), (line.label, line.net, sql_net[line.label])
        breakdowns = len(report.by)
        self.stdout.write(f"  full report (total + {breakdowns} breakdowns + daily): {report_time * 1000:8.1f} ms")
        self.stdout.write(f"  report by backend (ORM):                    {orm_time * 1000:8.1f} ms")
        self.stdout.write(f"  hand-written SQL GROUP BY backend:          {sql_time * 1000:8.1f} ms")
        self.stdout.write(f"  ratio ORM / SQL (by backend):               {orm_time / sql_time:8.2f}x")
        self.stdout.write(f"  ratio full report / SQL:                    {report_time / sql_time:8.2f}x")
        self.stdout.write(f"  net: ${report.net:,.2f}")

    def hand_sql(self, user_id, year, month):
        start = date(year, month, 1)
        end = date(year + (month == 12), month % 12 + 1, 1)
        owner = "e.owner_id = %s AND" if user_id else ""
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                SELECT b.name,
                       SUM(CASE WHEN e.kind = 'charge' THEN e.amount ELSE 0 END),
                       SUM(CASE WHEN e.kind = 'refund' THEN e.amount ELSE 0 END)
                FROM generations_costentry e JOIN generations_backend b ON b.id = e.backend_id
                WHERE {owner} e.day >= %s AND e.day < %s
                GROUP BY b.name
                """,
                ([user_id] if user_id else []) + [start, end],
            )
            return cursor.fetchall()

    @transaction.atomic
    def fill(self, count: int) -> None:
        self.stdout.write(f"Filling {count:,} cost entries ...")
        started = time.perf_counter()
        rng = random.Random(42)
        User = get_user_model()
        users = [User.objects.get_or_create(username=f"bench-{i}")[0] for i in range(20)]
        backends = []
        for spec in registry.specs():
            backend, _ = Backend.objects.get_or_create(
                name=f"Bench {spec.name}",
                defaults={"protocol": spec.name, "base_url": "http://127.0.0.1:9/v1", "api_key": "bench"},
            )
            backend.install_default_prices()
            if not backend.prices.exclude(unit=PriceUnit.PER_CHARACTER).exists():  # no public price list
                Price.objects.get_or_create(backend=backend, unit=PriceUnit.PER_SECOND, amount=Decimal("0.10"))
            backends.append(backend)
        # Every video this backend offers at its first size, with its price: what a month of real use holds
        # (a model with no price of its own, like fal's image-to-video app, is never routed to: left out).
        menus = {
            b.pk: [
                (model, seconds, pricing.quote(b, model, seconds, offer["sizes"][0]).amount)
                for model, offer in b.offer().items()
                for seconds in offer["seconds"]
                if b.price_for(PriceUnit.PER_SECOND, model) or b.price_for(PriceUnit.PER_REQUEST, model)
            ]
            for b in backends
        }
        # Three entries per video (estimate, charge, and a refund for one in ten): a video per 2.1 rows.
        videos = count // 2 + 1
        first = datetime(2026, 9, 1, tzinfo=UTC)
        span = (datetime(2026, 12, 1, tzinfo=UTC) - first).total_seconds()
        gen_rows, entry_rows = [], []
        next_id = (Generation.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
        for i in range(videos):
            backend = backends[i % len(backends)]
            user = users[rng.randrange(len(users))]
            model, seconds, amount = rng.choice(menus[backend.pk])
            at = first + timedelta(seconds=rng.random() * span)
            gen_id = next_id + i
            gen_rows.append((gen_id, f"bench-{gen_id}", user.pk, backend.pk, model, int(seconds), at))
            kinds = ["estimate", "charge"] + (["refund"] if i % 10 == 0 else [])
            for kind in kinds:
                entry_rows.append((user.pk, backend.pk, gen_id, kind, str(amount), at, at.date(), model))
            if len(entry_rows) >= count:
                break
        with connection.cursor() as cursor:
            # Every column of the table, from the model, so a new field cannot break the benchmark: the
            # bench's own values where it has them, each field's default otherwise.
            fields = [f for f in Generation._meta.concrete_fields if not f.primary_key]
            given = {
                "uuid": 1,
                "idempotency_key": 1,
                "owner": 2,
                "backend": 3,
                "model": 4,
                "seconds": 5,
                "created_at": 6,
                "updated_at": 6,
            }
            fixed = {"prompt": "bench", "size": "720x1280", "status": "completed", "progress": 100}
            columns = ["id"] + [f.column for f in fields]

            def row(g):
                values = [g[0]]
                for f in fields:
                    if f.name == "uuid":
                        value = f"{g[0]:032x}"
                    elif f.name in given:
                        value = g[given[f.name]]
                    else:
                        value = fixed.get(f.name, f.get_default())
                    values.append(f.get_db_prep_save(value, connection))
                return values

            cursor.executemany(
                f"INSERT INTO {Generation._meta.db_table} ({', '.join(columns)}) "
                f"VALUES ({', '.join(['%s'] * len(columns))})",
                [row(g) for g in gen_rows],
            )
            cursor.executemany(
                "INSERT INTO generations_costentry (owner_id, backend_id, generation_id, kind, amount, note, "
                "created_at, day, model) VALUES (%s, %s, %s, %s, %s, '', %s, %s, %s)",
                entry_rows[:count],
            )
        self.stdout.write(f"  filled in {time.perf_counter() - started:.1f} s")
