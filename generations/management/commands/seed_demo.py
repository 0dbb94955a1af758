from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from generations.models import Backend


class Command(BaseCommand):
    help = "Seed the two simulated backends and a demo login (idempotent). Used by `make run`."

    def add_arguments(self, parser):
        parser.add_argument("--site-url", default=settings.SITE_URL)
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="demo")

    def handle(self, *args, **opts):
        site = opts["site_url"].rstrip("/")
        key = settings.SIMULATOR_API_KEYS[0]
        for name, protocol, path in [
            ("Simulated official", "openai_videos", "openai/v1"),
            ("Simulated aggregator", "task_api", "task/v1"),
        ]:
            if not Backend.objects.filter(name=name).exists():
                call_command("add_backend", name, protocol=protocol, base_url=f"{site}/simulator/{path}",
                             api_key=key, honours_idempotency_keys=True, stdout=self.stdout)
        User = get_user_model()
        for username, password, admin in [(opts["username"], opts["password"], False), ("admin", "admin", True)]:
            user, created = User.objects.get_or_create(username=username,
                                                       defaults={"is_staff": admin, "is_superuser": admin})
            if created:
                user.set_password(password)
                user.save()
                self.stdout.write(f"Login: {username} / {password}" + (" (admin)" if admin else " (creator)"))
