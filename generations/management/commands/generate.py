from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from generations.jobs import lifecycle, pump
from generations.jobs.models import Policy
from generations.states import Status
from sora_studio import files
from sora_studio.cli import dump, get_backend, get_user


def as_json(generation) -> dict:
    return {
        "id": generation.pk,
        "status": generation.status,
        "backend": generation.backend.name,
        "model": generation.model,
        "seconds": str(generation.seconds),  # as the offers write it
        "size": generation.size,
        "prompt_sent": generation.prompt_sent,
        "routing": generation.routing_reason,
        "cost_usd": f"{generation.charged():.2f}",
        "video_file": files.location(generation.video),  # a path, or a signed link on a bucket
        "error": generation.error_message or None,
    }


class Command(BaseCommand):
    help = "Generate a video, as a creator would from the form."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True)
        parser.add_argument("--prompt", required=True)
        parser.add_argument("--backend", help="Backend name; automatic routing if omitted.")
        parser.add_argument(
            "--policy",
            choices=Policy.values,
            help="How automatic routing picks the backend; the creator's default if omitted.",
        )
        parser.add_argument("--model", default="sora-2")
        parser.add_argument("--seconds", type=int, help="Defaults to the shortest the backend offers.")
        parser.add_argument("--size", default="720x1280")
        parser.add_argument("--wait", action="store_true", help="Block until the job ends (needs a worker).")
        parser.add_argument("--timeout", type=float, default=settings.GENERATION_TIMEOUT + 60)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts):
        user = get_user(opts["user"])
        backend = get_backend(opts["backend"])
        seconds = opts["seconds"]
        if seconds is None:
            offers = (backend.offer() if backend else {}).get(opts["model"], {})
            seconds = (offers.get("seconds") or ["4"])[0]
        seconds = int(seconds)
        try:
            generation = lifecycle.start(
                lifecycle.GenerationRequest(
                    user,
                    prompt=opts["prompt"],
                    model=opts["model"],
                    seconds=seconds,
                    size=opts["size"],
                    backend=backend,
                    policy=opts["policy"] or "",
                )
            ).generation
        except lifecycle.GenerationRefused as exc:
            raise CommandError(str(exc)) from None
        if opts["wait"]:
            generation = pump.wait_until_terminal(generation, opts["timeout"])
        self.stdout.write(
            dump(as_json(generation))
            if opts["json"]
            else f"Generation {generation.pk}: {generation.get_status_display()} on {generation.backend}"
        )
        if generation.status in (Status.FAILED, Status.TIMED_OUT, Status.CANCELLED, Status.UNKNOWN):
            raise CommandError(f"Generation {generation.pk} {generation.status}: {generation.error_message}")
        if opts["wait"] and not generation.is_terminal:
            raise CommandError(f"Generation {generation.pk} still {generation.status} after {opts['timeout']:.0f} s.")
