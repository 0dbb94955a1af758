"""Benchmark: the spending report over N ledger rows, next to its floor, a hand-written SQL GROUP BY on
the ledger measured in the same run.

Run it on a throw-away database (`make bench` does): it fills the ledger with synthetic rows, then
builds the daily roll-ups from them (the rows bypass the ledger's write path, as an existing install's
did before the roll-ups: `rebuild_spending` is timed as that install's upgrade).
"""

import random
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from characters.models import Character
from generations.billing import pricing, rollup
from generations.billing.models import CharacterSpendingMonth, CostEntry, SpendingDay, SpendingMonth, VideoSpendingMonth
from generations.billing.reports import chart, elsewhere
from generations.billing.reports import month as report_month
from generations.jobs.models import Generation
from generations.providers import registry
from generations.providers.models import Backend, Price, PriceUnit
from generations.storyboards.models import Series

MONTH = (2026, 11)
GOAL_MS = 50


def timed(fn, repeat: int) -> tuple[float, object]:
    """The median of `repeat` runs, in seconds, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


class Command(BaseCommand):
    help = "Time the spending report over N cost entries against a hand-written SQL GROUP BY on the ledger."

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=1_000_000)
        parser.add_argument("--repeat", type=int, default=5)
        parser.add_argument("--yes", action="store_true", help="Really fill this database with synthetic rows.")

    def handle(self, *args, **opts):
        if not opts["yes"]:
            raise CommandError("This fills the database with synthetic rows; use a throw-away DATABASE_URL and --yes.")
        rows = opts["rows"]
        have = CostEntry.objects.count()
        if have < rows:
            self.fill(rows - have)
        if have < rows or not SpendingDay.objects.exists():
            started = time.perf_counter()
            rollup.rebuild()
            self.stdout.write(f"  roll-ups rebuilt from the ledger in {time.perf_counter() - started:.1f} s")
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:  # a bulk load leaves the planner's statistics stale
                    cursor.execute("ANALYZE")
        year, month = MONTH
        total = CostEntry.objects.count()
        self.stdout.write(f"{connection.vendor}: {total:,} cost entries in the ledger")
        creator = get_user_model().objects.get(username="bench-0")
        results = [
            self.measure(label, user, year, month, opts["repeat"])
            for label, user in [("one creator", creator), ("whole studio (staff view)", None)]
        ]
        self.table(f"{connection.vendor}, {total:,} ledger rows, {year}-{month:02d}", results)

    def measure(self, label, user, year, month, repeat) -> dict:
        staff = user is None
        entries = report_month.month_entries(user, year, month).count()
        rollup_rows = {
            model._meta.object_name: report_month.month_rollup(user, year, month, model).count()
            for model in (SpendingDay, SpendingMonth, CharacterSpendingMonth, VideoSpendingMonth)
        }
        report_time, report = timed(lambda: report_month.month_report(user, year, month, staff_view=staff), repeat)
        page_time, _ = timed(lambda: self.page(user, year, month, staff), repeat)
        floor_time, floor = timed(lambda: self.hand_sql(user.pk if user else None, year, month), repeat)
        self.check_agrees(report, floor)
        return {
            "scope": label,
            "entries": entries,
            "rollup": rollup_rows,
            "report": report_time,
            "page": page_time,
            "floor": floor_time,
            "net": report.net,
        }

    def page(self, user, year, month, staff):
        """Everything the spending page reads from the ledger's sums: report, chart, re-pricing, version."""
        report = report_month.month_report(user, year, month, staff_view=staff)
        chart.daily_chart(report, user)
        elsewhere.elsewhere(user, year, month)
        report_month.version(user, year, month)

    def check_agrees(self, report, floor) -> None:
        """The roll-up's figures per backend are the ledger's, summed by hand (to the cent: SQLite sums
        floats)."""
        lines = {line.label: line for line in report.by["backend"]}
        assert set(lines) == set(floor), (sorted(lines), sorted(floor))
        for name, (estimated, charged, refunded) in floor.items():
            line = lines[name]
            for got, want in [(line.estimated, estimated), (line.charged, charged), (line.refunded, refunded)]:
                assert abs(got - Decimal(str(want))) < Decimal("0.01"), (name, got, want)

    def table(self, title: str, results: list[dict]) -> None:
        self.stdout.write(f"\nSpending report — {title} (median of runs; goal: full report ≤ {GOAL_MS} ms)\n")
        header = (
            "| scope | ledger entries in month | roll-up rows (day / month / character / video) | full report | "
            "floor: hand SQL on the ledger | report / floor | whole page's reads | goal |"
        )
        self.stdout.write(header)
        self.stdout.write("|" + "---|" * header.count(" | ") + "---|")
        for r in results:
            rows = " / ".join(f"{count:,}" for count in r["rollup"].values())
            ok = "met" if r["report"] * 1000 <= GOAL_MS else "NOT met"
            self.stdout.write(
                f"| {r['scope']} | {r['entries']:,} | {rows} | {r['report'] * 1000:.1f} ms | "
                f"{r['floor'] * 1000:.1f} ms | {r['report'] / r['floor']:.2f}x | {r['page'] * 1000:.1f} ms | {ok} |"
            )
        self.stdout.write(
            "\nfloor: one GROUP BY backend over the month's ledger rows (estimated, charged, refunded), the "
            "least a report without a roll-up must read; whole page's reads: report + chart + re-pricing + "
            "version (not the budgets or the template)."
        )
        for r in results:
            self.stdout.write(f"net {r['scope']}: ${r['net']:,.2f}")

    def hand_sql(self, user_id, year, month) -> dict:
        start = date(year, month, 1)
        end = date(year + (month == 12), month % 12 + 1, 1)
        owner = "e.owner_id = %s AND" if user_id else ""
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                SELECT b.name,
                       SUM(CASE WHEN e.kind = 'estimate' THEN e.amount ELSE 0 END),
                       SUM(CASE WHEN e.kind = 'charge' THEN e.amount ELSE 0 END),
                       SUM(CASE WHEN e.kind = 'refund' THEN e.amount ELSE 0 END)
                FROM generations_costentry e JOIN generations_backend b ON b.id = e.backend_id
                WHERE {owner} e.day >= %s AND e.day < %s
                GROUP BY b.name
                """,
                ([user_id] if user_id else []) + [start, end],
            )
            return {name: (estimated, charged, refunded) for name, estimated, charged, refunded in cursor.fetchall()}

    @transaction.atomic
    def fill(self, count: int) -> None:
        self.stdout.write(f"Filling {count:,} cost entries ...")
        started = time.perf_counter()
        rng = random.Random(42)
        User = get_user_model()
        users = [User.objects.get_or_create(username=f"bench-{i}")[0] for i in range(20)]
        # Each creator has two series and three characters: a third of the videos are in a series, a
        # third have one or two characters, as a studio that uses both would.
        series = {
            u.pk: [Series.objects.get_or_create(owner=u, title=f"Bench series {u.pk}-{n}")[0].pk for n in range(2)]
            for u in users
        }
        characters = {
            u.pk: [Character.objects.get_or_create(owner=u, handle=f"bench_{u.pk}_{n}")[0].pk for n in range(3)]
            for u in users
        }
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
                (model, seconds, offer["sizes"][0], pricing.quote(b, model, seconds, offer["sizes"][0]).amount)
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
        gen_rows, entry_rows, link_rows = [], [], []
        next_id = (Generation.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
        for i in range(videos):
            backend = backends[i % len(backends)]
            user = users[rng.randrange(len(users))]
            model, seconds, size, amount = rng.choice(menus[backend.pk])
            at = first + timedelta(seconds=rng.random() * span)
            gen_id = next_id + i
            gen_rows.append((gen_id, f"bench-{gen_id}", user.pk, backend.pk, model, int(seconds), at, size))
            in_series = rng.choice(series[user.pk]) if rng.random() < 1 / 3 else None
            if rng.random() < 1 / 3:
                link_rows += [(gen_id, c) for c in rng.sample(characters[user.pk], rng.choice([1, 2]))]
            kinds = ["estimate", "charge"] + (["refund"] if i % 10 == 0 else [])
            for kind in kinds:
                entry_rows.append((user.pk, backend.pk, gen_id, kind, str(amount), at, at.date(), model, in_series))
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
                "size": 7,
            }
            fixed = {"prompt": "bench", "status": "completed", "progress": 100}
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
                f"INSERT INTO {Generation.characters.through._meta.db_table} (generation_id, character_id) "
                "VALUES (%s, %s)",
                link_rows,
            )
            cursor.executemany(
                "INSERT INTO generations_costentry (owner_id, backend_id, generation_id, kind, amount, note, "
                "created_at, day, model, series_id) VALUES (%s, %s, %s, %s, %s, '', %s, %s, %s, %s)",
                entry_rows[:count],
            )
        self.stdout.write(f"  filled in {time.perf_counter() - started:.1f} s")
