import json
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import URLValidator
from django.db import transaction

from generations.providers import registry
from generations.providers.models import Backend, Price, PriceUnit, Tier
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
        price = parser.add_mutually_exclusive_group()
        price.add_argument(
            "--price-per-second",
            type=Decimal,
            metavar="USD",
            help="Price every model at this rate per second of video (a new price row).",
        )
        price.add_argument(
            "--price-per-request",
            type=Decimal,
            metavar="USD",
            help="Price every video at this amount, whatever its length (a new price row).",
        )

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
        backend.base_url, backend.api_key = opts["base_url"].rstrip("/"), opts["api_key"]
        backend.max_in_flight = opts["max_in_flight"]
        if opts["honours_idempotency_keys"]:  # else the protocol's own answer (adopted above)
            backend.honours_idempotency_keys = True
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
            raise CommandError(
                " ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())
            ) from None
        price = self.price_row(backend, opts)
        with transaction.atomic():
            backend.save()
            # A price flag is the backend's price for videos: the protocol's defaults would be more
            # specific (per model) and win, so only its character fee is installed beside it.
            backend.install_default_prices(videos=price is None)
            if price is not None:
                price.backend = backend
                price.save()
        self.stdout.write(f"{'Added' if created else 'Updated'} backend {backend.name} ({backend.protocol}).")
        if not backend.prices.filter(unit__in=[PriceUnit.PER_SECOND, PriceUnit.PER_REQUEST]).exists():
            self.stdout.write(
                f"{backend.name} has no price yet: nothing is routed to it until one is added "
                "(--price-per-second or --price-per-request, or the admin)."
            )

    def price_row(self, backend: Backend, opts) -> Price | None:
        """The row the price flags ask for, checked like the admin checks it; None without a flag."""
        for unit, amount in [
            (PriceUnit.PER_SECOND, opts["price_per_second"]),
            (PriceUnit.PER_REQUEST, opts["price_per_request"]),
        ]:
            if amount is None:
                continue
            if not amount.is_finite() or amount < 0 or amount >= 10**6:
                raise CommandError(f"The price must be a non-negative amount in USD, not {amount}.")
            return Price(unit=unit, amount=amount)
        return None
