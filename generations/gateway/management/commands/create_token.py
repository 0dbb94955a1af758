from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError

from generations.gateway import tokens
from sora_studio.cli import get_user


class Command(BaseCommand):
    help = (
        "Make a personal API token for the /v1/ API and print it, once: the studio keeps only its fingerprint. "
        "TOKEN=$(manage.py create_token --user demo --name script)"
    )

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True)
        parser.add_argument("--name", required=True, help="What will use it (1–80 characters).")
        parser.add_argument("--cap", help="Monthly spending cap in USD for this token's videos (default: none).")

    def handle(self, *args, **opts):
        user = get_user(opts["user"])
        name = opts["name"].strip()
        if not 1 <= len(name) <= 80:
            raise CommandError("A token's name is 1 to 80 characters.")
        cap = None
        if opts["cap"] is not None:
            try:
                cap = Decimal(opts["cap"]).quantize(Decimal("0.01"))
            except InvalidOperation:
                raise CommandError(f"--cap is an amount in USD, like 25 or 25.50 (got {opts['cap']!r}).") from None
            if not cap.is_finite() or cap < 0 or cap >= 10**10:
                raise CommandError("--cap is an amount in USD from 0 up.")
        token, secret = tokens.issue(user, name, cap)
        self.stderr.write(f"Token “{token.name}” for {user}: shown once, keep it now.")
        self.stdout.write(secret)
