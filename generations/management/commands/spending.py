from django.core.management.base import BaseCommand, CommandError

from generations.billing.reports.csv import write_csv
from generations.billing.reports.month import month_entries, month_report, parse_month
from sora_studio.cli import dump, get_user


class Command(BaseCommand):
    help = "What was spent in a month: estimated, charged, refunded and net, by backend, model, series, character."

    def add_arguments(self, parser):
        parser.add_argument("--user", help="One creator (default: everyone, with a per-user breakdown)")
        parser.add_argument("--month", help="YYYY-MM (default: this month)")
        output = parser.add_mutually_exclusive_group()
        output.add_argument("--json", action="store_true")
        output.add_argument("--csv", action="store_true", help="Every ledger entry of the month as CSV")

    def handle(self, *args, **opts):
        user = get_user(opts["user"]) if opts["user"] else None
        try:
            year, month = parse_month(opts["month"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if opts["csv"]:
            write_csv(self.stdout, month_entries(user, year, month))
            return
        report = month_report(user, year, month, staff_view=user is None)
        if opts["json"]:
            self.stdout.write(dump(report.as_json()))
            return
        self.stdout.write(f"Spending {report.label}" + (f" for {user.username}" if user else " (everyone)"))
        for line in report.lines:
            self.stdout.write(
                f"  {line.label:<28} charged ${line.charged:.2f}  refunded ${line.refunded:.2f}"
                f"  net ${line.net:.2f}  ({line.videos} video{'' if line.videos == 1 else 's'})"
            )
        self.stdout.write(f"  {'Total':<28} net ${report.net:.2f}")
