from django.core.management.base import BaseCommand

from generations.jobs import pump


class Command(BaseCommand):
    help = "Run the pump in the foreground (instead of inside qcluster): hands due jobs to the workers."

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, help="Stop after this long (default: run forever).")

    def handle(self, *args, **opts):
        if not pump.run(seconds=opts["seconds"]):
            self.stderr.write("Another pump holds the lease; this one stops.")
