import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import URLValidator
from django.db import transaction

from generations.providers import registry
from generations.providers.models import Backend, Tier
from generations.providers.offers import OFFERS_EXAMPLE


class Command(BaseCommand):
    help = "Add (or update) a backend with the default prices and offer of its protocol."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--protocol", required=True, choices=list(registry.PROTOCOLS))
        parser.add_argument("--base-url", required=True)
        parser.add_argument("--api-key", required=True)
        parser.add_argument("--tier", choices=Tier.values)
        parser.add_argument("--max-in-flight", type=int, default=4)
        parser.add_argument("--honours-idempotency-keys", action="store_true")
        parser.add_argument("--offers", help=f"Models offered, as JSON (default: the protocol's): {OFFERS_EXAMPLE}")

    def handle(self, *args, **opts):
        try:
            URLValidator(schemes=["http", "https"])(opts["base_url"])
        except ValidationError:
            raise CommandError(f"--base-url {opts['base_url']!r} is not an http(s) URL.") from None
        backend = Backend.objects.filter(name=opts["name"]).first()
        created = backend is None
        backend = backend or Backend(name=opts["name"])
        backend.protocol = opts["protocol"]
        backend.adopt_protocol_defaults()
        for field, value in {
            "base_url": opts["base_url"].rstrip("/"), "api_key": opts["api_key"], "max_in_flight": opts["max_in_flight"],
            "honours_idempotency_keys": opts["honours_idempotency_keys"],
        }.items():
            setattr(backend, field, value)
        if opts["tier"]:
            backend.tier = opts["tier"]
        if opts["offers"] is not None:
            try:
                backend.offers = json.loads(opts["offers"])
            except ValueError as exc:
                raise CommandError(f"--offers is not JSON ({exc}); e.g. {OFFERS_EXAMPLE}") from None
        # The same checks as the admin's form, so the two cannot disagree about what may be saved.
        try:
            backend.full_clean()
        except ValidationError as exc:
            raise CommandError(" ".join(f"{field}: {' '.join(errors)}"
                                        for field, errors in exc.message_dict.items())) from None
        with transaction.atomic():
            backend.save()
            backend.install_default_prices()
        self.stdout.write(f"{'Added' if created else 'Updated'} backend {backend.name} ({backend.protocol}).")
