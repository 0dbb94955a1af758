from django.core.management.base import BaseCommand, CommandError

from generations.spending import month_report, parse_month
from sora_studio.cli import dump, get_user


class Command(BaseCommand):
    help = "What was spent in a month: charges minus refunds, per backend."

    def add_arguments(self, parser):
        parser.add_argument("--user")
        parser.add_argument("--month", help="YYYY-MM (default: this month)")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts):
        user = get_user(opts["user"]) if opts["user"] else None
        try:
            year, month = parse_month(opts["month"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        report = month_report(user, year, month)
        if opts["json"]:
            self.stdout.write(dump(report.as_json()))
            return
        self.stdout.write(f"Spending {report.label}" + (f" for {user.username}" if user else ""))
        for line in report.lines:
            self.stdout.write(f"  {line.backend:<28} charged ${line.charged:.2f}  refunded ${line.refunded:.2f}"
                              f"  net ${line.net:.2f}  ({line.jobs} generations)")
        self.stdout.write(f"  {'Total':<28} net ${report.net:.2f}")
