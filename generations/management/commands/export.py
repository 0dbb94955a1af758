from django.core.management.base import BaseCommand, CommandError

from generations.storyboards import export
from generations.storyboards.models import ExportStatus, Series
from sora_studio.cli import dump, get_user


class Command(BaseCommand):
    help = "Export a series (or everything a creator made) as a zip of videos, clips and manifest.json."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True)
        parser.add_argument("--series", type=int, help="A series id (default: everything the user made)")
        parser.add_argument("--output", help="Also copy the zip to this file")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts):
        user = get_user(opts["user"])
        series = None
        if opts["series"] is not None:
            series = Series.objects.for_user(user).filter(pk=opts["series"]).first()
            if series is None:
                raise CommandError(f"{user.username} has no series #{opts['series']}.")
        done = export.build_here(user, series)
        if done.status != ExportStatus.READY:
            raise CommandError(f"The export did not finish: {done.error or done.get_status_display()}")
        if opts["output"]:
            with done.file.open("rb") as source, open(opts["output"], "wb") as target:
                while chunk := source.read(1024 * 1024):
                    target.write(chunk)
        result = {
            "id": done.pk,
            "title": done.title,
            "files": done.files_total,
            "missing_files": done.missing_files,
            "bytes": done.size,
            "output": opts["output"],
        }
        if opts["json"]:
            self.stdout.write(dump(result))
        else:
            self.stdout.write(
                f"Exported {done.title}: {done.files_total} files, {done.size} bytes (export #{done.pk})."
            )
