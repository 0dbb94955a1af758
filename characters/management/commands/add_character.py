import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_q.conf import Conf

from characters import registry
from characters.models import BindingStatus, Character
from generations.providers.models import Backend
from sora_studio import netguard
from sora_studio.cli import dump, get_backend, get_user


class Command(BaseCommand):
    help = "Add a character from a video URL and register it on a backend (or on every capable one)."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--handle", required=True)
        parser.add_argument("--video-url", required=True)
        parser.add_argument("--description", default="")
        parser.add_argument("--backend")
        parser.add_argument("--wait", action="store_true", help="Block until every registration ends.")
        parser.add_argument("--timeout", type=float, default=300)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts):
        user = get_user(opts["user"])
        backend = get_backend(opts["backend"])
        backends = [backend] if backend else list(Backend.objects.for_characters())
        if not backends:
            raise CommandError("No enabled backend can hold characters.")
        character = Character(
            owner=user,
            name=opts["name"],
            handle=opts["handle"].lstrip("@").lower(),
            description=opts["description"],
            source_url=opts["video_url"],
        )
        try:
            netguard.check(opts["video_url"])
        except netguard.UnsafeURL as exc:
            raise CommandError(f"--video-url: {exc}") from None
        try:
            character.full_clean()
        except ValidationError as exc:
            raise CommandError(" ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        with transaction.atomic():
            character.save()
            for b in backends:
                registry.bind(character, b)
        if opts["wait"]:
            deadline = time.monotonic() + opts["timeout"]
            while character.bindings.filter(status=BindingStatus.PROCESSING).exists():
                if time.monotonic() > deadline:
                    raise CommandError("Registration still running; check the character page later.")
                time.sleep(0.3 if not Conf.SYNC else 0)
        bindings = [
            {"backend": b.backend.name, "status": b.status, "remote_id": b.remote_id, "error": b.error or None}
            for b in character.bindings.select_related("backend")
        ]
        if opts["json"]:
            self.stdout.write(
                dump({"id": character.pk, "handle": character.handle, "name": character.name, "bindings": bindings})
            )
        else:
            for b in bindings:
                self.stdout.write(f"@{character.handle} on {b['backend']}: {b['status']} {b['error'] or ''}".rstrip())
        failed = [b for b in bindings if b["status"] == BindingStatus.FAILED]
        if opts["wait"] and failed:
            raise CommandError("; ".join(f"{b['backend']}: {b['error']}" for b in failed))
