import secrets
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from generations.providers import registry
from generations.providers.models import Backend, Price, PriceUnit

DEMO_PRICE_PER_SECOND = Decimal("0.10")


class Command(BaseCommand):
    help = "Seed the simulated backends, the demo logins and a demo character, @mossy (idempotent). Used by `make run`."

    def add_arguments(self, parser):
        parser.add_argument("--site-url", default=settings.SITE_URL)
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="demo")

    def handle(self, *args, **opts):
        site = opts["site_url"].rstrip("/")
        key = self.simulator_key()
        for spec in registry.specs():
            if not spec.simulator_path:
                continue
            name, protocol, base_url = spec.simulator_backend, spec.name, f"{site}/simulator/{spec.simulator_path}"
            existing = Backend.objects.filter(name=name).first()
            if existing is None:
                # A protocol without a public price list gets a demo price, so the simulated backend can be routed to.
                priced = any(row["unit"] in ("per_second", "per_request") for row in spec.default_prices)
                extra = {} if priced else {"price_per_second": DEMO_PRICE_PER_SECOND}
                call_command(
                    "add_backend", name, protocol=protocol, base_url=base_url, api_key=key, stdout=self.stdout, **extra
                )
            elif existing.base_url == base_url and existing.key != key:
                # Seeded before installs had their own key (or the key was changed): follow it.
                existing.api_key = key
                existing.save(update_fields=["api_key"])
            self.complete_offer(Backend.objects.get(name=name), spec)
        User = get_user_model()
        for username, password, admin in [(opts["username"], opts["password"], False), ("admin", "admin", True)]:
            user, created = User.objects.get_or_create(
                username=username, defaults={"is_staff": admin, "is_superuser": admin}
            )
            if created:
                user.set_password(password)
                user.save()
                self.stdout.write(f"Login: {username} / {password}" + (" (admin)" if admin else " (creator)"))

        self.seed_character(User.objects.get(username=opts["username"]))

    def complete_offer(self, backend: Backend, spec) -> None:
        """A simulated backend offers every model of its protocol's default offer (one added since the last seed,
        too: fal's image-to-video app) and can be routed to for each: a model without a price of its own gets
        the demo price."""
        if not backend.base_url.rstrip("/").endswith(f"/simulator/{spec.simulator_path}"):
            return  # an admin pointed it elsewhere: theirs to manage
        missing = {m: o for m, o in spec.default_offers.items() if m not in backend.offers}
        if missing:
            backend.offers = {**backend.offers, **missing}
            backend.save(update_fields=["offers"])
        for model in backend.offer():
            if not backend.price_for(PriceUnit.PER_SECOND, model) and not backend.price_for(
                PriceUnit.PER_REQUEST, model
            ):
                Price.objects.create(
                    backend=backend, model=model, unit=PriceUnit.PER_SECOND, amount=DEMO_PRICE_PER_SECOND
                )

    def simulator_key(self) -> str:
        """The key the simulated backends use: the configured one, or a new random one for this install,
        kept in the .env file that settings and honcho read (a shared default would be anyone's key)."""
        if settings.SIMULATOR_API_KEYS:
            return settings.SIMULATOR_API_KEYS[0]
        key = secrets.token_hex(24)
        path = settings.ENV_FILE
        text = path.read_text() if path.exists() else ""
        with path.open("a") as env_file:
            if text and not text.endswith("\n"):
                env_file.write("\n")
            env_file.write(
                f"# The API key of the simulator for this install, written by manage.py seed_demo.\n"
                f"SIMULATOR_API_KEYS={key}\n"
            )
        path.chmod(0o600)
        self.stdout.write(f"Simulator API key: a new random one, kept in {path.name}")
        return key

    def seed_character(self, owner):
        """@mossy, from a clip the simulator renders, on every backend that holds characters: registered
        once a worker runs (until the web server is up, the registration is retried), or ready at once
        where its stills travel as reference images. A backend added since the last seed gets it too."""
        from django.core.files.base import ContentFile
        from django.db import transaction

        from characters import avatars, registry
        from characters.models import Character
        from simulator.render import look_for, render_mp4

        mossy = Character.objects.filter(owner=owner, handle="mossy").first()
        if mossy is not None:
            with transaction.atomic():
                for backend in Backend.objects.for_characters().exclude(bindings__character=mossy):
                    registry.bind(mossy, backend)
            return
        mossy = Character(
            owner=owner,
            name="Mossy",
            handle="mossy",
            description="A small, friendly robot covered in moss (a demo character).",
        )
        mossy.source_clip.save(
            "clip.mp4", ContentFile(render_mp4(look_for("Mossy the robot", "1280x720", "clip"), 3)), save=False
        )
        with transaction.atomic():
            mossy.save()
            for backend in Backend.objects.for_characters():
                registry.bind(mossy, backend)
        avatars.ensure_avatar(mossy)
        self.stdout.write("Demo character: @mossy (registering on the simulated backends)")
