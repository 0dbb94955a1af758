import time

from django.core.management.base import BaseCommand, CommandError

from generations.billing import rollup


class Command(BaseCommand):
    help = (
        "Recompute the spending roll-ups from the ledger, one creator's month per transaction (writers wait "
        "for that one only). --check only compares them with the ledger."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--check", action="store_true", help="Compare the roll-ups with the ledger; exit 1 where they differ"
        )

    def handle(self, *args, **opts):
        if opts["check"]:
            found = rollup.differences()
            if found:
                for line in found:
                    self.stderr.write(line)
                raise CommandError("The spending roll-ups differ from the ledger: run `manage.py rebuild_spending`.")
            self.stdout.write("The spending roll-ups agree with the ledger.")
            return
        started = time.perf_counter()
        written = rollup.rebuild()
        rows = ", ".join(f"{count:,} {name}" for name, count in written.items())
        self.stdout.write(
            f"Rebuilt the spending roll-ups from the ledger in {time.perf_counter() - started:.1f} s: {rows}."
        )
